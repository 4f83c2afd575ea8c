//! What each step of a rollout will do, computed from a typed spec with the arithmetic of the
//! system whose format it is written in: the steps `rollgit plan` prints. The spec is read (and
//! validated as the daemon reads it) by `rollgit_render::plan`; the table and the JSON are
//! printed by the CLI. Everything here is pure.
//!
//! Semantics where the source systems are silent (documented choices):
//! * `index` is 0-based for every flavour; one row per spec step/batch (no synthetic rows).
//! * KubeVela rollout: `new` = cumulative target, `old` = R − new. KubeVela scale
//!   (`from` given): `new` = workload size after the batch, `old` = 0. The batches are checked
//!   against the size first. (A `rollout` trait without batches reaches [`kubevela_plan`] as
//!   one batch of |R − from|, from = 0 when not given, as KubeVela's Rollout controller writes
//!   for scales; an AppRollout without batches is rejected at admission.) `pause` is "manual"
//!   on the batch equal to `batchPartition` unless it is the last batch (the rollout then
//!   finishes instead of waiting).
//! * Argo: each step shows the settled counts of the weight in force at that step
//!   (`GetCurrentSetWeight` walks back, so a pause step repeats the previous weight; before any
//!   setWeight the weight is 0). Basic canary uses the closest-fit targets (A.3); traffic
//!   routing uses A.5 (stable stays R unless dynamicStableScale).
//! * Kruise: `new` = the batch's desired updated pods for the workload kind (Deployment
//!   partition style applies the R−1 cap), `old` = R − new, except canary style where the
//!   stable keeps R until the final step. A last step that reaches R shows old = 0. `weight`
//!   is the step's traffic percent. Steps without a pause duration are "manual", except a last
//!   step of exactly "100%", which proceeds on its own.

use crate::argo::{self, CanarySpec, WeightStatus};
use crate::intstr::IntOrString;
use crate::kruise::{self, KruiseStep, RollingStyle, WorkloadKind};
use crate::kubevela::{self, KubeVelaError};

/// Which system's rules the plan follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// KubeVela rollout plan.
    KubeVela,
    /// Argo Rollouts canary.
    Argo,
    /// OpenKruise Rollout.
    Kruise,
}

impl Flavor {
    /// `kubevela` / `argo` / `kruise`.
    pub fn as_str(self) -> &'static str {
        match self {
            Flavor::KubeVela => "kubevela",
            Flavor::Argo => "argo",
            Flavor::Kruise => "kruise",
        }
    }
}

/// Where a step waits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pause {
    /// Until a person approves / promotes.
    Manual,
    /// This many seconds.
    Seconds(i64),
}

/// One step of a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanStep {
    /// 0-based index.
    pub index: usize,
    /// New-version replicas once the step has settled.
    pub new: i64,
    /// Old-version replicas once the step has settled.
    pub old: i64,
    /// Traffic weight, where the flavour has one.
    pub weight: Option<i64>,
    /// The wait after this step.
    pub pause: Option<Pause>,
}

/// What a rollout will do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The flavour.
    pub flavor: Flavor,
    /// Desired replicas R.
    pub replicas: i64,
    /// Resolved maxSurge (Argo only).
    pub max_surge: Option<i64>,
    /// Resolved maxUnavailable (Argo only).
    pub max_unavailable: Option<i64>,
    /// The steps.
    pub steps: Vec<PlanStep>,
}

// ---------------------------------------------------------------------------------------
// The steps of each flavour, from typed specs
// ---------------------------------------------------------------------------------------

/// The plan of a KubeVela rollout plan of `size` replicas: `from = None` is a rollout (`new` =
/// the cumulative target, `old` = size − new), `from = Some(f)` a scale from `f` (`new` = the
/// workload size after the batch, `old` = 0). The batches are checked against the size first
/// (`verifyBatchesWithRollout` / `verifyBatchesWithScale`); the batch equal to
/// `batchPartition` waits for a person unless it is the last.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, plan::{kubevela_plan, Pause}};
/// let p = kubevela_plan(&[IntOrString::Int(2), IntOrString::Int(3)], Some(0), 5, None).unwrap();
/// let rows: Vec<_> = p.steps.iter().map(|s| (s.new, s.old, s.pause)).collect();
/// assert_eq!(rows, [(2, 3, Some(Pause::Manual)), (5, 0, None)]);
/// assert!(kubevela_plan(&[IntOrString::Int(2), IntOrString::Int(3)], None, 6, None).is_err());
/// ```
pub fn kubevela_plan(
    batches: &[IntOrString],
    batch_partition: Option<i64>,
    size: i64,
    from: Option<i64>,
) -> Result<Plan, KubeVelaError> {
    let counts: Vec<(i64, i64)> = match from {
        Some(f) => {
            kubevela::verify_batches_with_scale(batches, f, size)?;
            kubevela::cumulative_targets(batches, f, size)
                .into_iter()
                .map(|n| (n, 0))
                .collect()
        }
        None => {
            kubevela::verify_batches_with_rollout(batches, size)?;
            kubevela::cumulative_targets(batches, 0, size)
                .into_iter()
                .map(|n| (n, kubevela::source_goal(size, n)))
                .collect()
        }
    };
    let last = counts.len().saturating_sub(1);
    let steps = counts
        .into_iter()
        .enumerate()
        .map(|(index, (new, old))| PlanStep {
            index,
            new,
            old,
            weight: None,
            pause: (batch_partition == Some(index as i64) && index < last).then_some(Pause::Manual),
        })
        .collect();
    Ok(Plan {
        flavor: Flavor::KubeVela,
        replicas: size,
        max_surge: None,
        max_unavailable: None,
        steps,
    })
}

/// The plan of a validated ([`argo::validate`]) Argo canary: each step shows the settled
/// counts of the weight in force at that step. Basic canary uses the closest-fit targets
/// (A.3), traffic routing A.5.
///
/// ```
/// use rollgit_core::{argo::{CanarySpec, CanaryStep}, plan::{argo_plan, Pause}};
/// let spec = CanarySpec { replicas: 10, steps: vec![CanaryStep::weight(10), CanaryStep::pause(None)], ..Default::default() };
/// let p = argo_plan(&spec);
/// assert_eq!((p.max_surge, p.max_unavailable), (Some(3), Some(2)));
/// let rows: Vec<_> = p.steps.iter().map(|s| (s.new, s.old, s.weight, s.pause)).collect();
/// assert_eq!(rows, [(1, 9, Some(10), None), (1, 9, Some(10), Some(Pause::Manual))]);
/// ```
pub fn argo_plan(spec: &CanarySpec) -> Plan {
    let r = spec.replicas;
    let surge = argo::max_surge(spec);
    let unavail = argo::max_unavailable(spec);
    let steps = spec
        .steps
        .iter()
        .enumerate()
        .map(|(i, st)| {
            let weight = argo::current_set_weight(&spec.steps, i, false, spec.max_weight);
            let (new, old) = if spec.traffic_routing {
                let ws = WeightStatus {
                    current_step_index: i,
                    has_stable: true,
                    ..Default::default()
                };
                argo::traffic_routed_counts(spec, &ws, None)
            } else {
                argo::approximate_weighted_counts(r, weight, surge)
            };
            let pause = st.pause.as_ref().map(|d| match d {
                None => Pause::Manual,
                Some(d) => Pause::Seconds(argo::pause_duration_seconds(Some(d))),
            });
            PlanStep {
                index: i,
                new,
                old,
                weight: Some(weight),
                pause,
            }
        })
        .collect();
    Plan {
        flavor: Flavor::Argo,
        replicas: r,
        max_surge: Some(surge),
        max_unavailable: Some(unavail),
        steps,
    }
}

/// The plan of validated ([`kruise::validate_steps`]) Kruise steps on a workload of `kind` with
/// `replicas` pods: `new` is the batch's desired updated pods for the kind (a Deployment in
/// partition style is capped at R−1 below "100%"), `old` = R − new, except in canary style
/// where the stable keeps R until the final step. A last step that reaches R shows old = 0.
/// Steps without a pause duration wait for a person, except a last step of exactly "100%".
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::*, plan::{kruise_plan, Pause}};
/// let step = |r: &str, d: Option<i64>| KruiseStep { replicas: Some(r.into()), pause_duration: d, ..Default::default() };
/// let p = kruise_plan(&[step("50%", Some(60)), step("100%", None)], WorkloadKind::Deployment, RollingStyle::Partition, 5);
/// let rows: Vec<_> = p.steps.iter().map(|s| (s.new, s.old, s.pause)).collect();
/// assert_eq!(rows, [(3, 2, Some(Pause::Seconds(60))), (5, 0, None)]);
/// ```
pub fn kruise_plan(
    steps: &[KruiseStep],
    kind: WorkloadKind,
    style: RollingStyle,
    replicas: i64,
) -> Plan {
    let r = replicas;
    let canary_style = style == RollingStyle::Canary;
    let n = steps.len();
    let rows = steps
        .iter()
        .enumerate()
        .map(|(index, s)| {
            let rep = s.replicas.clone().unwrap_or(IntOrString::Int(0));
            let (mut new, mut old) = if canary_style {
                (kruise::canary_style_replicas(&rep, r), r)
            } else {
                let c = kruise::partition_batch_context(kind, &rep, r, 0);
                (c.desired_updated, c.desired_stable)
            };
            let last = index + 1 == n;
            if last && new >= r {
                new = r;
                old = 0;
            }
            let weight = s
                .traffic
                .as_ref()
                .and_then(|t| crate::intstr::strict(&IntOrString::Str(t.clone()), 100, true).ok());
            let pause = if last && rep == IntOrString::str("100%") {
                None
            } else {
                Some(s.pause_duration.map_or(Pause::Manual, Pause::Seconds))
            };
            PlanStep {
                index,
                new,
                old,
                weight,
                pause,
            }
        })
        .collect();
    Plan {
        flavor: Flavor::Kruise,
        replicas: r,
        max_surge: None,
        max_unavailable: None,
        steps: rows,
    }
}
