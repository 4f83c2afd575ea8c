//! OpenKruise Rollout (rollouts.kruise.io v1beta1; v1alpha1 converted): step validation,
//! batch replicas, partitions per workload kind, batch readiness and the canary step machine.
//!
//! Steps are **absolute cumulative** targets, percents are strict (`"50"` is invalid) and
//! round up, and every batch size is clamped to `[0, R]`.

use crate::intstr::{self, IntOrString};

/// One Kruise validation failure, with the webhook's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KruiseError {
    /// No steps.
    #[error("steps: The number of Canary.Steps cannot be empty")]
    NoSteps,
    /// A step without replicas.
    #[error("steps[{0}].replicas: replicas cannot be empty")]
    MissingReplicas(usize),
    /// replicas ≤ 0, or a percent outside (0%, 100%], or not "N%".
    #[error(
        "steps[{index}].replicas: replicas must be positive number, or a percentage with \"0%\" < canaryReplicas <= \"100%\", got {value}"
    )]
    BadReplicas {
        /// Step index (0-based).
        index: usize,
        /// The value.
        value: IntOrString,
    },
    /// Partition style, traffic or matches, and a percent above the limit.
    #[error(
        "steps[{index}].replicas: For partition style rollout: step[x].replicas must not greater than partition-percent-limit ({limit}%) if traffic specified, got {value}"
    )]
    PartitionPercentLimit {
        /// Step index.
        index: usize,
        /// The value.
        value: IntOrString,
        /// The limit (default 50).
        limit: i64,
    },
    /// traffic outside (0%, 100%] (canary) or [0%, 100%] (blue-green).
    #[error(
        "steps[{index}].traffic: traffic must be percentage with \"0%\" {lower} traffic <= \"100%\" in {style} strategy, got {value:?}"
    )]
    BadTraffic {
        /// Step index.
        index: usize,
        /// The value.
        value: String,
        /// `<` or `<=`.
        lower: &'static str,
        /// canary / blueGreen.
        style: &'static str,
    },
    /// Replicas decrease between comparable steps.
    #[error(
        "steps[{index}].replicas: Steps.CanaryReplicas must be a non decreasing sequence ({prev} then {curr})"
    )]
    Decreasing {
        /// Index of the later step.
        index: usize,
        /// The earlier value.
        prev: IntOrString,
        /// The later value.
        curr: IntOrString,
    },
    /// Approve outside StepPaused.
    #[error("approve: current step state is {0}, only a rollout in StepPaused can be approved")]
    NotPaused(&'static str),
    /// Jump to an index out of 1..=len.
    #[error("nextStepIndex: {index} is out of range 1..={len}")]
    JumpOutOfRange {
        /// Requested index.
        index: i64,
        /// Number of steps.
        len: usize,
    },
}

/// Release style.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollingStyle {
    /// Partition the workload in place (Kruise's "real partition").
    Partition,
    /// An extra canary Deployment.
    Canary,
    /// Blue-green.
    BlueGreen,
}

/// Workload kinds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadKind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps.kruise.io CloneSet.
    CloneSet,
    /// apps/v1 StatefulSet, or Advanced StatefulSet without unorderedUpdate.
    StatefulSet,
    /// Advanced StatefulSet with unorderedUpdate (behaves like CloneSet, int partition).
    AdvancedStatefulSetUnordered,
    /// DaemonSet (Advanced or native OnDelete).
    DaemonSet,
}

/// One step (v1beta1 shape).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct KruiseStep {
    /// `replicas`.
    pub replicas: Option<IntOrString>,
    /// `traffic` ("N%").
    pub traffic: Option<String>,
    /// `matches` is non-empty.
    pub has_matches: bool,
    /// `pause.duration` in seconds; `None` means manual approval.
    pub pause_duration: Option<i64>,
}

impl KruiseStep {
    /// v1alpha1 → v1beta1: a `weight` becomes `traffic: "W%"` and, when replicas is unset,
    /// `replicas: "W%"`.
    ///
    /// ```
    /// use rollgit_core::{intstr::IntOrString, kruise::KruiseStep};
    /// let s = KruiseStep::from_v1alpha1(None, Some(20), false, None);
    /// assert_eq!(s.replicas, Some(IntOrString::str("20%")));
    /// assert_eq!(s.traffic.as_deref(), Some("20%"));
    /// ```
    pub fn from_v1alpha1(
        replicas: Option<IntOrString>,
        weight: Option<i64>,
        has_matches: bool,
        pause_duration: Option<i64>,
    ) -> Self {
        let traffic = weight.map(|w| format!("{w}%"));
        let replicas = replicas.or_else(|| weight.map(|w| IntOrString::Str(format!("{w}%"))));
        KruiseStep {
            replicas,
            traffic,
            has_matches,
            pause_duration,
        }
    }
}

fn is_percent_type(v: Option<&IntOrString>) -> bool {
    v.is_none_or(IntOrString::is_str)
}

/// The webhook's step rules (`validateRolloutSpecCanarySteps`). `partition_percent_limit` is
/// the controller flag (default 50).
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::*};
/// let step = |r: IntOrString| KruiseStep { replicas: Some(r), ..Default::default() };
/// assert!(validate_steps(&[step(1.into()), step("50%".into())], RollingStyle::Partition, 50).is_ok());
/// assert!(validate_steps(&[step("50".into())], RollingStyle::Partition, 50).is_err());
/// ```
pub fn validate_steps(
    steps: &[KruiseStep],
    style: RollingStyle,
    partition_percent_limit: i64,
) -> Result<(), KruiseError> {
    if steps.is_empty() {
        return Err(KruiseError::NoSteps);
    }
    for (index, s) in steps.iter().enumerate() {
        let Some(r) = &s.replicas else {
            return Err(KruiseError::MissingReplicas(index));
        };
        match intstr::strict(r, 100, true) {
            Ok(v) if v > 0 && !(v > 100 && r.is_str()) => {}
            _ => {
                return Err(KruiseError::BadReplicas {
                    index,
                    value: r.clone(),
                });
            }
        }
        if s.traffic.is_none() && !s.has_matches {
            continue;
        }
        if style == RollingStyle::Partition && r.is_str() {
            let v = intstr::strict(r, 100, true).unwrap_or(0);
            if v > partition_percent_limit {
                return Err(KruiseError::PartitionPercentLimit {
                    index,
                    value: r.clone(),
                    limit: partition_percent_limit,
                });
            }
        }
        if let Some(t) = &s.traffic {
            let w = intstr::strict(&IntOrString::Str(t.clone()), 100, true);
            let (ok, lower, style_name) = match style {
                RollingStyle::BlueGreen => (
                    matches!(w, Ok(x) if (0..=100).contains(&x)),
                    "<=",
                    "blueGreen",
                ),
                _ => (matches!(w, Ok(x) if x > 0 && x <= 100), "<", "canary"),
            };
            if !ok {
                return Err(KruiseError::BadTraffic {
                    index,
                    value: t.clone(),
                    lower,
                    style: style_name,
                });
            }
        }
    }
    for index in 1..steps.len() {
        let (prev, curr) = (
            steps[index - 1].replicas.as_ref(),
            steps[index].replicas.as_ref(),
        );
        if is_percent_type(prev) != is_percent_type(curr) {
            continue;
        }
        let p = prev.map_or(0, |v| intstr::strict(v, 100, true).unwrap_or(0));
        let c = curr.map_or(0, |v| intstr::strict(v, 100, true).unwrap_or(0));
        if c < p {
            return Err(KruiseError::Decreasing {
                index,
                prev: prev.cloned().unwrap_or(IntOrString::Int(0)),
                curr: curr.cloned().unwrap_or(IntOrString::Int(0)),
            });
        }
    }
    Ok(())
}

/// `CalculateBatchReplicas`: ceil(pct·R) with the strict parser (an int as-is; a parse error
/// counts as 0), clamped to `[0, R]`.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::calculate_batch_replicas};
/// assert_eq!(calculate_batch_replicas(&IntOrString::str("50%"), 5), 3);
/// assert_eq!(calculate_batch_replicas(&IntOrString::str("200%"), 5), 5);
/// assert_eq!(calculate_batch_replicas(&IntOrString::Int(200), 5), 5);
/// assert_eq!(calculate_batch_replicas(&IntOrString::str("50"), 5), 0);
/// ```
pub fn calculate_batch_replicas(replicas: &IntOrString, workload_replicas: i64) -> i64 {
    let v = intstr::strict(replicas, workload_replicas, true).unwrap_or(0);
    v.clamp(0, workload_replicas.max(0))
}

/// The counts a batch aims at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchContext {
    /// CalculateBatchReplicas(R): the pods that should carry the rollout-id label.
    pub planned_updated: i64,
    /// Pods on the new revision once the batch has settled.
    pub desired_updated: i64,
    /// Pods kept on the old revision.
    pub desired_stable: i64,
    /// The partition to write (its meaning depends on the workload kind).
    pub desired_partition: IntOrString,
}

/// `ParseIntegerAsPercentageIfPossible`: the CloneSet percent partition for `stable` old pods.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::percent_partition};
/// assert_eq!(percent_partition(7, 10, &IntOrString::str("30%")), IntOrString::str("70%"));
/// assert_eq!(percent_partition(1, 200, &IntOrString::str("99%")), IntOrString::str("1%"));
/// assert_eq!(percent_partition(0, 10, &IntOrString::str("100%")), IntOrString::str("0%"));
/// ```
pub fn percent_partition(stable: i64, all: i64, canary_replicas: &IntOrString) -> IntOrString {
    if stable >= all {
        return IntOrString::str("100%");
    }
    if stable <= 0 {
        return IntOrString::str("0%");
    }
    let p = stable * 100 / all;
    let percent = IntOrString::Str(format!("{p}%"));
    let restored = intstr::strict(&percent, all, true).unwrap_or(0);
    if restored <= 0 && *canary_replicas != IntOrString::str("100%") {
        return IntOrString::str("1%");
    }
    percent
}

/// `CalculateBatchContext` for partition-style workloads. `no_need_update` is the
/// rollback-in-batches count (`noNeedUpdateReplicas`), 0 when unset.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::*};
/// let c = partition_batch_context(WorkloadKind::CloneSet, &IntOrString::str("20%"), 20, 10);
/// assert_eq!((c.desired_updated, c.desired_stable), (12, 8));
/// let c = partition_batch_context(WorkloadKind::CloneSet, &IntOrString::str("30%"), 10, 0);
/// assert_eq!(c.desired_partition, IntOrString::str("70%"));
/// ```
pub fn partition_batch_context(
    kind: WorkloadKind,
    step_replicas: &IntOrString,
    replicas: i64,
    no_need_update: i64,
) -> BatchContext {
    let planned = calculate_batch_replicas(step_replicas, replicas);
    let (mut desired_updated, mut desired_stable) = (planned, replicas - planned);
    if no_need_update > 0 {
        let size = calculate_batch_replicas(step_replicas, replicas - no_need_update);
        desired_stable = replicas - no_need_update - size;
        desired_updated = replicas - desired_stable;
    }
    let desired_partition = match kind {
        WorkloadKind::CloneSet => {
            if step_replicas.is_str() {
                percent_partition(desired_stable, replicas, step_replicas)
            } else {
                IntOrString::Int(desired_stable)
            }
        }
        WorkloadKind::AdvancedStatefulSetUnordered => IntOrString::Int(desired_stable),
        WorkloadKind::StatefulSet => {
            if no_need_update > 0 {
                desired_stable += no_need_update;
                desired_updated = replicas - desired_stable + no_need_update;
            }
            IntOrString::Int(desired_stable)
        }
        WorkloadKind::DaemonSet => IntOrString::Int(desired_stable.max(0)),
        WorkloadKind::Deployment => {
            let limit = deployment_new_rs_limit(step_replicas, replicas);
            desired_updated = limit;
            desired_stable = replicas - limit;
            step_replicas.clone()
        }
    };
    BatchContext {
        planned_updated: planned,
        desired_updated,
        desired_stable,
        desired_partition,
    }
}

/// `NewRSReplicasLimit` for the Kruise-patched Deployment (partition = pods to **update**):
/// clamp(ceil(pct·R), 0, R), and a percent other than "100%" is capped at R−1 when R > 1.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::deployment_new_rs_limit};
/// assert_eq!(deployment_new_rs_limit(&IntOrString::str("90%"), 5), 4);
/// assert_eq!(deployment_new_rs_limit(&IntOrString::str("100%"), 5), 5);
/// assert_eq!(deployment_new_rs_limit(&IntOrString::Int(5), 5), 5);
/// ```
pub fn deployment_new_rs_limit(partition: &IntOrString, replicas: i64) -> i64 {
    let v = calculate_batch_replicas(partition, replicas);
    if replicas > 1 && partition.is_str() && *partition != IntOrString::str("100%") {
        v.min(replicas - 1)
    } else {
        v
    }
}

/// A CloneSet percent partition is patched only when it lowers the partition (never back up).
/// Both sides are scaled against `R` (rounded up, as CloneSet reads percents).
pub fn should_patch_cloneset_partition(
    current: &IntOrString,
    desired: &IntOrString,
    replicas: i64,
) -> bool {
    let c = intstr::lenient(current, replicas, true).unwrap_or(0);
    let d = intstr::lenient(desired, replicas, true).unwrap_or(0);
    c > d
}

/// The Deployment partition is patched only when it raises the limit; both scaled
/// against 10^7.
pub fn should_patch_deployment_partition(current: &IntOrString, desired: &IntOrString) -> bool {
    const SCALE: i64 = 10_000_000;
    calculate_batch_replicas(current, SCALE) < calculate_batch_replicas(desired, SCALE)
}

/// Canary style: the canary Deployment's size for a step, out of the stable's spec.replicas.
pub fn canary_style_replicas(step_replicas: &IntOrString, stable_spec: i64) -> i64 {
    calculate_batch_replicas(step_replicas, stable_spec)
}

/// What `IsBatchReady` looks at.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchObservation {
    /// Updated replicas.
    pub updated: i64,
    /// Updated and ready replicas.
    pub updated_ready: i64,
    /// `failureThreshold` (a percent), if set.
    pub failure_threshold: Option<IntOrString>,
    /// With a rolloutID: (planned updated, live pods carrying the rollout-id label).
    pub rollout_id_pods: Option<(i64, i64)>,
}

/// `BatchContext.IsBatchReady`.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::*};
/// let obs = BatchObservation { updated: 5, updated_ready: 4,
///     failure_threshold: Some(IntOrString::str("20%")), rollout_id_pods: None };
/// assert!(is_batch_ready(5, &obs));
/// assert!(!is_batch_ready(6, &obs));
/// ```
pub fn is_batch_ready(desired_updated: i64, obs: &BatchObservation) -> bool {
    if obs.updated < desired_updated {
        return false;
    }
    let tolerated = obs
        .failure_threshold
        .as_ref()
        .map_or(0, |t| intstr::strict(t, obs.updated, true).unwrap_or(0));
    if tolerated + obs.updated_ready < desired_updated {
        return false;
    }
    if desired_updated > 0 && obs.updated_ready <= 0 {
        return false;
    }
    if let Some((planned, labeled)) = obs.rollout_id_pods
        && labeled < planned
    {
        return false;
    }
    true
}

// ---------------------------------------------------------------------------------------
// Step machine (B.4, B.5)
// ---------------------------------------------------------------------------------------

/// `status.canaryStatus.currentStepState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    /// BeforeStepUpgrade
    BeforeStepUpgrade,
    /// StepUpgrade
    StepUpgrade,
    /// StepTrafficRouting
    StepTrafficRouting,
    /// StepMetricsAnalysis
    StepMetricsAnalysis,
    /// StepPaused
    StepPaused,
    /// StepReady
    StepReady,
    /// Completed
    Completed,
}

impl StepState {
    /// The status string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BeforeStepUpgrade => "BeforeStepUpgrade",
            Self::StepUpgrade => "StepUpgrade",
            Self::StepTrafficRouting => "StepTrafficRouting",
            Self::StepMetricsAnalysis => "StepMetricsAnalysis",
            Self::StepPaused => "StepPaused",
            Self::StepReady => "StepReady",
            Self::Completed => "Completed",
        }
    }

    /// The state a status string names (`None` for anything else).
    ///
    /// ```
    /// use rollgit_core::kruise::StepState;
    /// assert_eq!(StepState::parse("StepPaused"), Some(StepState::StepPaused));
    /// assert_eq!(StepState::parse("paused"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::BeforeStepUpgrade,
            Self::StepUpgrade,
            Self::StepTrafficRouting,
            Self::StepMetricsAnalysis,
            Self::StepPaused,
            Self::StepReady,
            Self::Completed,
        ]
        .into_iter()
        .find(|st| st.as_str() == s)
    }
}

/// The canary status the machine owns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryStatus {
    /// currentStepIndex, **1-based**.
    pub current_step_index: i64,
    /// nextStepIndex: current+1, or −1 at the last step. A user may patch it to jump.
    pub next_step_index: i64,
    /// currentStepState.
    pub state: StepState,
    /// lastUpdateTime (unix seconds) of the state.
    pub last_update_time: i64,
}

impl CanaryStatus {
    /// A fresh rollout at step 1.
    pub fn start(steps: usize, now: i64) -> Self {
        CanaryStatus {
            current_step_index: 1,
            next_step_index: natural_next(1, steps),
            state: StepState::BeforeStepUpgrade,
            last_update_time: now,
        }
    }
}

fn natural_next(current: i64, steps: usize) -> i64 {
    if current >= steps as i64 {
        -1
    } else {
        current + 1
    }
}

/// The fixed context of the rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepContext {
    /// The steps.
    pub steps: Vec<KruiseStep>,
    /// Workload replicas R.
    pub replicas: i64,
    /// Release style.
    pub style: RollingStyle,
}

/// What one pass observed, or what the user did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KruiseEvent {
    /// A reconcile: the BatchRelease is Ready for this step (consistent generation and plan
    /// hash), and the traffic routing for this step is done.
    Reconcile {
        /// BatchRelease `Ready` for the current step.
        batch_ready: bool,
        /// Traffic routing for the current step finished.
        traffic_done: bool,
    },
    /// `kubectl-kruise rollout approve`: StepPaused → StepReady (status subresource).
    Approve,
    /// The user patched `nextStepIndex`; `updated_replicas` is what is already updated.
    Jump {
        /// The requested 1-based step.
        next_step_index: i64,
        /// Replicas already on the new revision.
        updated_replicas: i64,
    },
}

/// What the controller should do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KruiseAction {
    /// Patch the stable Service selector (before step 1 with traffic).
    PatchStableServiceSelector,
    /// Restore the stable Service (partition style, replicas ≥ R).
    RestoreStableService,
    /// Write the BatchRelease with batchPartition = step − 1.
    UpgradeBatch {
        /// BatchRelease batchPartition (0-based).
        batch_partition: i64,
    },
    /// Route traffic for this step.
    RouteTraffic,
    /// Requeue at this time (timed pause).
    RequeueAt(i64),
    /// Wait for approval.
    WaitForApproval,
    /// All steps done: finalise.
    Finalise,
}

fn step_has_traffic(s: &KruiseStep) -> bool {
    s.traffic.is_some() || s.has_matches
}

/// One pass of the Kruise canary step machine.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::*};
/// let ctx = StepContext { replicas: 4, style: RollingStyle::Partition, steps: vec![
///     KruiseStep { replicas: Some(IntOrString::Int(1)), ..Default::default() },
///     KruiseStep { replicas: Some(IntOrString::str("100%")), ..Default::default() }] };
/// let mut s = CanaryStatus::start(2, 0);
/// let ev = KruiseEvent::Reconcile { batch_ready: true, traffic_done: true };
/// for _ in 0..4 { s = step(&ctx, &s, ev, 0).unwrap().0; }
/// assert_eq!(s.state, StepState::StepPaused);
/// s = step(&ctx, &s, KruiseEvent::Approve, 1).unwrap().0;
/// assert_eq!(s.state, StepState::StepReady);
/// ```
pub fn step(
    ctx: &StepContext,
    status: &CanaryStatus,
    event: KruiseEvent,
    now: i64,
) -> Result<(CanaryStatus, Vec<KruiseAction>), KruiseError> {
    let mut s = status.clone();
    let mut actions = Vec::new();
    let n = ctx.steps.len();
    let idx = usize::try_from(s.current_step_index - 1)
        .unwrap_or(0)
        .min(n.saturating_sub(1));
    let cur = ctx.steps.get(idx).cloned().unwrap_or_default();
    let cur_replicas = cur
        .replicas
        .as_ref()
        .map_or(0, |r| calculate_batch_replicas(r, ctx.replicas));
    let full_partition = ctx.style == RollingStyle::Partition && cur_replicas >= ctx.replicas;
    let set = |s: &mut CanaryStatus, st: StepState| {
        s.state = st;
        s.last_update_time = now;
    };
    match event {
        KruiseEvent::Approve => {
            if s.state != StepState::StepPaused {
                return Err(KruiseError::NotPaused(s.state.as_str()));
            }
            set(&mut s, StepState::StepReady);
        }
        KruiseEvent::Jump {
            next_step_index,
            updated_replicas,
        } => {
            if next_step_index == natural_next(s.current_step_index, n) {
                return Ok((s, actions));
            }
            if next_step_index < 1 || next_step_index > n as i64 {
                return Err(KruiseError::JumpOutOfRange {
                    index: next_step_index,
                    len: n,
                });
            }
            let target = &ctx.steps[(next_step_index - 1) as usize];
            let target_replicas = target
                .replicas
                .as_ref()
                .map_or(0, |r| calculate_batch_replicas(r, ctx.replicas));
            s.current_step_index = next_step_index;
            s.next_step_index = natural_next(next_step_index, n);
            let st = if target_replicas == updated_replicas {
                StepState::StepTrafficRouting
            } else {
                StepState::BeforeStepUpgrade
            };
            set(&mut s, st);
        }
        KruiseEvent::Reconcile {
            batch_ready,
            traffic_done,
        } => match s.state {
            StepState::BeforeStepUpgrade => {
                if step_has_traffic(&cur) {
                    if s.current_step_index == 1 {
                        actions.push(KruiseAction::PatchStableServiceSelector);
                    }
                    if full_partition {
                        actions.push(KruiseAction::RestoreStableService);
                    }
                }
                set(&mut s, StepState::StepUpgrade);
            }
            StepState::StepUpgrade => {
                actions.push(KruiseAction::UpgradeBatch {
                    batch_partition: s.current_step_index - 1,
                });
                if batch_ready {
                    let next = if full_partition {
                        StepState::StepMetricsAnalysis
                    } else {
                        StepState::StepTrafficRouting
                    };
                    set(&mut s, next);
                }
            }
            StepState::StepTrafficRouting => {
                if step_has_traffic(&cur) && !traffic_done {
                    actions.push(KruiseAction::RouteTraffic);
                } else {
                    set(&mut s, StepState::StepMetricsAnalysis);
                }
            }
            StepState::StepMetricsAnalysis => set(&mut s, StepState::StepPaused),
            StepState::StepPaused => {
                let last_full = idx + 1 == n && cur.replicas == Some(IntOrString::str("100%"));
                match (last_full, cur.pause_duration) {
                    (true, _) => set(&mut s, StepState::StepReady),
                    (false, None) => actions.push(KruiseAction::WaitForApproval),
                    (false, Some(d)) => {
                        if now >= s.last_update_time + d {
                            set(&mut s, StepState::StepReady);
                        } else {
                            actions.push(KruiseAction::RequeueAt(s.last_update_time + d));
                        }
                    }
                }
            }
            StepState::StepReady => {
                if s.current_step_index >= n as i64 {
                    set(&mut s, StepState::Completed);
                    actions.push(KruiseAction::Finalise);
                } else {
                    s.current_step_index += 1;
                    s.next_step_index = natural_next(s.current_step_index, n);
                    set(&mut s, StepState::BeforeStepUpgrade);
                }
            }
            StepState::Completed => {}
        },
    }
    Ok((s, actions))
}

/// `recalculateCanaryStep`: after the steps change mid-rollout, the first (1-based) step
/// whose scaled replicas ≥ the BatchRelease's current batch replicas (the last step if none).
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise::*};
/// let steps: Vec<KruiseStep> = ["20%", "50%", "100%"].iter().map(|r| KruiseStep {
///     replicas: Some(IntOrString::str(r)), ..Default::default() }).collect();
/// assert_eq!(recalculate_step(&steps, 10, 3), 2);
/// ```
pub fn recalculate_step(steps: &[KruiseStep], replicas: i64, batch_replicas: i64) -> i64 {
    steps
        .iter()
        .position(|s| {
            s.replicas
                .as_ref()
                .is_some_and(|r| calculate_batch_replicas(r, replicas) >= batch_replicas)
        })
        .map_or(steps.len() as i64, |i| i as i64 + 1)
}
