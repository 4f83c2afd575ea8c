//! `rollgit plan`: read a rollout spec (KubeVela Application with a `rollout` trait, AppRollout,
//! KubeVela Rollout CR, Argo Rollout, Kruise Rollout v1alpha1/v1beta1) and say what each step
//! will do, with the arithmetic of the system whose format the file uses.
//!
//! Semantics where the source systems are silent (documented choices):
//! * `index` is 0-based for every flavour; one row per spec step/batch (no synthetic rows).
//! * KubeVela rollout: `new` = cumulative target, `old` = R − new. KubeVela scale
//!   (`from_replicas` set): `new` = workload size after the batch, `old` = 0. A plan with no
//!   batches is one batch of |R − from| (from = 0 when not given), as the controller writes
//!   for scales. `pause` is "manual" on the batch equal to `batchPartition` unless it is the
//!   last batch (the rollout then finishes instead of waiting).
//! * Argo: each step shows the settled counts of the weight in force at that step
//!   (`GetCurrentSetWeight` walks back, so a pause step repeats the previous weight; before any
//!   setWeight the weight is 0). Basic canary uses the closest-fit targets (A.3); traffic
//!   routing uses A.5 (stable stays R unless dynamicStableScale).
//! * Kruise: `new` = the batch's desired updated pods for the workload kind (Deployment
//!   partition style applies the R−1 cap), `old` = R − new, except canary style where the
//!   stable keeps R until the final step. A last step that reaches R shows old = 0. `weight`
//!   is the step's traffic percent. Steps without a pause duration are "manual", except a last
//!   step of exactly "100%", which proceeds on its own.

use crate::argo::{self, ArgoError, CanarySpec, CanaryStep, SetCanaryScale, WeightStatus};
use crate::intstr::IntOrString;
use crate::kruise::{self, KruiseError, KruiseStep, RollingStyle, WorkloadKind};
use crate::kubevela::{self, KubeVelaError, RolloutBatch, RolloutPlan};
use crate::yaml::{self, Entry, Node, NodeKind, YamlError};
use serde_json::{Value, json};
use std::fmt::Write as _;

/// CLI overrides.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// `--replicas`: overrides the workload size / targetSize.
    pub replicas: Option<u32>,
    /// `--from-replicas`: the current size, for KubeVela scale plans.
    pub from_replicas: Option<u32>,
}

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

/// Why a plan could not be made. [`PlanError::line`] gives the 1-based line when known.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlanError {
    /// The text is not YAML.
    #[error(transparent)]
    Yaml(#[from] YamlError),
    /// A field has the wrong shape.
    #[error("{field}: {message}")]
    Field {
        /// 1-based line.
        line: u64,
        /// Field path.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A KubeVela rule is broken.
    #[error("kubevela: {source}")]
    KubeVela {
        /// 1-based line.
        line: u64,
        /// The rule.
        #[source]
        source: KubeVelaError,
    },
    /// An Argo Rollouts rule is broken.
    #[error("argo: {source}")]
    Argo {
        /// 1-based line.
        line: u64,
        /// The rule.
        #[source]
        source: ArgoError,
    },
    /// An OpenKruise rule is broken.
    #[error("kruise: {source}")]
    Kruise {
        /// 1-based line.
        line: u64,
        /// The rule.
        #[source]
        source: KruiseError,
    },
    /// No supported rollout in the file.
    #[error(
        "no rollout found: expected a KubeVela Application with a rollout trait, an AppRollout, an Argo Rollout or a Kruise Rollout"
    )]
    NoRollout,
    /// The replica count is unknown.
    #[error("{0}: the replica count is unknown; put the workload in the file or pass --replicas")]
    UnknownReplicas(String),
}

impl PlanError {
    /// The 1-based line of the error, when known.
    pub fn line(&self) -> Option<u64> {
        let l = match self {
            PlanError::Yaml(e) => e.line,
            PlanError::Field { line, .. }
            | PlanError::KubeVela { line, .. }
            | PlanError::Argo { line, .. }
            | PlanError::Kruise { line, .. } => *line,
            PlanError::NoRollout | PlanError::UnknownReplicas(_) => 0,
        };
        (l > 0).then_some(l)
    }
}

impl Plan {
    /// The JSON form printed by `rollgit plan -o json`.
    ///
    /// ```
    /// use rollgit_core::plan::{plan_from_yaml, PlanOptions};
    /// let y = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec:\n  replicas: 10\n  strategy:\n    canary:\n      steps:\n      - setWeight: 10\n      - pause: {}\n";
    /// let j = plan_from_yaml(y, &PlanOptions::default()).unwrap().to_json();
    /// assert_eq!(j["steps"][1]["pause"], "manual");
    /// assert_eq!(j["steps"][0]["new"], 1);
    /// ```
    pub fn to_json(&self) -> Value {
        let steps: Vec<Value> = self
            .steps
            .iter()
            .map(|s| {
                let pause = match s.pause {
                    None => Value::Null,
                    Some(Pause::Manual) => json!("manual"),
                    Some(Pause::Seconds(n)) => json!(n),
                };
                json!({"index": s.index, "new": s.new, "old": s.old, "weight": s.weight, "pause": pause})
            })
            .collect();
        json!({
            "flavor": self.flavor.as_str(),
            "replicas": self.replicas,
            "maxSurge": self.max_surge,
            "maxUnavailable": self.max_unavailable,
            "steps": steps,
        })
    }

    /// A human table: a summary line, then STEP NEW OLD WEIGHT PAUSE.
    ///
    /// ```
    /// use rollgit_core::plan::{plan_from_yaml, PlanOptions};
    /// let y = "apiVersion: argoproj.io/v1alpha1\nkind: Rollout\nspec:\n  replicas: 10\n  strategy:\n    canary:\n      steps:\n      - setWeight: 10\n";
    /// let t = plan_from_yaml(y, &PlanOptions::default()).unwrap().render_table();
    /// assert!(t.contains("STEP"));
    /// ```
    pub fn render_table(&self) -> String {
        let opt = |v: Option<i64>| v.map_or("-".to_string(), |n| n.to_string());
        let mut out = format!(
            "flavor: {}  replicas: {}  maxSurge: {}  maxUnavailable: {}\n",
            self.flavor.as_str(),
            self.replicas,
            opt(self.max_surge),
            opt(self.max_unavailable)
        );
        let rows: Vec<[String; 5]> = self
            .steps
            .iter()
            .map(|s| {
                [
                    s.index.to_string(),
                    s.new.to_string(),
                    s.old.to_string(),
                    s.weight.map_or("-".into(), |w| format!("{w}%")),
                    match s.pause {
                        None => "-".into(),
                        Some(Pause::Manual) => "manual".into(),
                        Some(Pause::Seconds(n)) => format!("{n}s"),
                    },
                ]
            })
            .collect();
        let header = ["STEP", "NEW", "OLD", "WEIGHT", "PAUSE"];
        let mut widths = header.map(str::len);
        for r in &rows {
            for (w, c) in widths.iter_mut().zip(r) {
                *w = (*w).max(c.len());
            }
        }
        let mut line = |cells: [&str; 5]| {
            let mut l = String::new();
            for (i, c) in cells.iter().enumerate() {
                if i + 1 == cells.len() {
                    l.push_str(c);
                } else {
                    let _ = write!(l, "{c:<w$}  ", w = widths[i]);
                }
            }
            out.push_str(l.trim_end());
            out.push('\n');
        };
        line(header);
        for r in &rows {
            line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
        }
        out
    }
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

// ---------------------------------------------------------------------------------------
// Field helpers
// ---------------------------------------------------------------------------------------

fn field_err(line: u64, field: &str, message: impl Into<String>) -> PlanError {
    PlanError::Field {
        line,
        field: field.to_string(),
        message: message.into(),
    }
}

fn int_of(e: &Entry, field: &str) -> Result<i64, PlanError> {
    match &e.value.kind {
        NodeKind::Int(i) => Ok(*i),
        other => Err(field_err(
            e.key_line,
            field,
            format!(
                "must be an integer, got {}",
                Node {
                    line: 0,
                    kind: other.clone()
                }
                .type_name()
            ),
        )),
    }
}

fn opt_int(node: &Node, key: &str, field: &str) -> Result<Option<i64>, PlanError> {
    match node.get(key) {
        None => Ok(None),
        Some(e) if e.value.is_null() => Ok(None),
        Some(e) => int_of(e, field).map(Some),
    }
}

fn intstr_of(e: &Entry, field: &str) -> Result<IntOrString, PlanError> {
    match &e.value.kind {
        NodeKind::Int(i) => Ok(IntOrString::Int(*i)),
        NodeKind::Str(s) => Ok(IntOrString::Str(s.clone())),
        _ => Err(field_err(
            e.key_line,
            field,
            format!(
                "must be an integer or a string, got {}",
                e.value.type_name()
            ),
        )),
    }
}

fn opt_intstr(node: &Node, key: &str, field: &str) -> Result<Option<IntOrString>, PlanError> {
    match node.get(key) {
        None => Ok(None),
        Some(e) if e.value.is_null() => Ok(None),
        Some(e) => intstr_of(e, field).map(Some),
    }
}

fn opt_str<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.get(key).and_then(|e| e.value.as_str())
}

fn seq_of<'a>(e: &'a Entry, field: &str) -> Result<&'a [Node], PlanError> {
    match &e.value.kind {
        NodeKind::Seq(items) => Ok(items),
        NodeKind::Null => Ok(&[]),
        _ => Err(field_err(
            e.key_line,
            field,
            format!("must be a list, got {}", e.value.type_name()),
        )),
    }
}

fn opt_bool(node: &Node, key: &str) -> bool {
    matches!(
        node.get(key).map(|e| &e.value.kind),
        Some(NodeKind::Bool(true))
    )
}

fn api_version(doc: &Node) -> &str {
    opt_str(doc, "apiVersion").unwrap_or("")
}

fn kind(doc: &Node) -> &str {
    opt_str(doc, "kind").unwrap_or("")
}

fn group(doc: &Node) -> &str {
    api_version(doc).split('/').next().unwrap_or("")
}

fn name(doc: &Node) -> Option<&str> {
    doc.get("metadata").and_then(|m| opt_str(&m.value, "name"))
}

fn to_u(v: Option<u32>) -> Option<i64> {
    v.map(i64::from)
}

fn check_replicas(r: i64, line: u64, field: &str) -> Result<i64, PlanError> {
    if r < 0 {
        Err(field_err(line, field, format!("must be >= 0, got {r}")))
    } else {
        Ok(r)
    }
}

// ---------------------------------------------------------------------------------------
// Entry point
// ---------------------------------------------------------------------------------------

/// Plan the rollout described in a multi-document YAML text.
///
/// ```
/// use rollgit_core::plan::{plan_from_yaml, PlanOptions, Pause};
/// let y = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nspec:\n  components:\n  - name: s\n    type: webservice\n    traits:\n    - type: rollout\n      properties:\n        targetSize: 5\n        batchPartition: 0\n        rolloutBatches:\n        - replicas: 2\n        - replicas: 3\n";
/// let p = plan_from_yaml(y, &PlanOptions::default()).unwrap();
/// assert_eq!((p.steps[0].new, p.steps[0].old, p.steps[0].pause), (2, 3, Some(Pause::Manual)));
/// assert_eq!((p.steps[1].new, p.steps[1].old), (5, 0));
/// ```
pub fn plan_from_yaml(text: &str, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let docs = yaml::parse_documents(text)?;
    for doc in &docs {
        let (g, k) = (group(doc), kind(doc));
        match (g, k) {
            ("argoproj.io", "Rollout") => return plan_argo(doc, opts),
            ("rollouts.kruise.io", "Rollout") => return plan_kruise(doc, &docs, opts),
            ("core.oam.dev", "AppRollout") => return plan_app_rollout(doc, &docs, opts),
            ("standard.oam.dev", "Rollout") => {
                let spec = doc.get("spec").map(|e| &e.value);
                if let Some(plan) = spec.and_then(|s| s.get("rolloutPlan")) {
                    return plan_kubevela_plan(plan, None, None, opts);
                }
            }
            ("core.oam.dev", "Application") => {
                if let Some(p) = plan_application(doc, opts)? {
                    return Ok(p);
                }
            }
            _ => {}
        }
    }
    Err(PlanError::NoRollout)
}

// ---------------------------------------------------------------------------------------
// KubeVela
// ---------------------------------------------------------------------------------------

fn parse_rollout_plan(plan: &Entry) -> Result<(RolloutPlan, u64), PlanError> {
    let node = &plan.value;
    let mut p = RolloutPlan {
        rollout_strategy: opt_str(node, "rolloutStrategy").map(str::to_string),
        target_size: opt_int(node, "targetSize", "rolloutPlan.targetSize")?,
        num_batches: opt_int(node, "numBatches", "rolloutPlan.numBatches")?,
        batch_partition: opt_int(node, "batchPartition", "rolloutPlan.batchPartition")?,
        paused: opt_bool(node, "paused"),
        ..Default::default()
    };
    let mut batches_line = plan.key_line;
    if let Some(e) = node.get("rolloutBatches") {
        batches_line = e.key_line;
        for (i, b) in seq_of(e, "rolloutBatches")?.iter().enumerate() {
            let field = format!("rolloutBatches[{i}].replicas");
            let Some(r) = b.get("replicas") else {
                return Err(field_err(b.line, &field, "is required"));
            };
            let mut batch = RolloutBatch::new(intstr_of(r, &field)?);
            if let Some(w) = b.get("batchRolloutWebhooks") {
                for h in seq_of(w, "batchRolloutWebhooks")? {
                    batch
                        .webhook_types
                        .push(opt_str(h, "type").unwrap_or("").to_string());
                }
            }
            p.rollout_batches.push(batch);
        }
    }
    if let Some(w) = node.get("rolloutWebhooks") {
        for h in seq_of(w, "rolloutWebhooks")? {
            p.webhook_types
                .push(opt_str(h, "type").unwrap_or("").to_string());
        }
    }
    Ok((p, batches_line))
}

fn kv_err(line: u64) -> impl Fn(KubeVelaError) -> PlanError {
    move |source| PlanError::KubeVela { line, source }
}

fn plan_kubevela_plan(
    plan_entry: &Entry,
    fallback_replicas: Option<i64>,
    what: Option<&str>,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    let (mut plan, batches_line) = parse_rollout_plan(plan_entry)?;
    let r = to_u(opts.replicas)
        .or(plan.target_size)
        .or(fallback_replicas)
        .ok_or_else(|| PlanError::UnknownReplicas(what.unwrap_or("rolloutPlan").to_string()))?;
    let r = check_replicas(r, plan_entry.key_line, "targetSize")?;
    if plan.target_size.is_some() || opts.replicas.is_some() {
        plan.target_size = Some(r);
    }
    kubevela_steps(&mut plan, r, batches_line, plan_entry.key_line, opts)
}

fn kubevela_steps(
    plan: &mut RolloutPlan,
    r: i64,
    batches_line: u64,
    plan_line: u64,
    opts: &PlanOptions,
) -> Result<Plan, PlanError> {
    kubevela::default_plan(plan);
    let from = to_u(opts.from_replicas);
    if plan.rollout_batches.is_empty() {
        plan.rollout_batches = vec![RolloutBatch::new(IntOrString::Int(
            (r - from.unwrap_or(0)).abs(),
        ))];
    }
    kubevela::validate_plan(plan).map_err(kv_err(plan_line))?;
    kubevela_plan(&plan.replicas(), plan.batch_partition, r, from).map_err(kv_err(batches_line))
}

fn plan_application(doc: &Node, opts: &PlanOptions) -> Result<Option<Plan>, PlanError> {
    let Some(comps) = doc.path(&["spec", "components"]) else {
        return Ok(None);
    };
    for c in seq_of(comps, "spec.components")? {
        let Some(traits) = c.get("traits") else {
            continue;
        };
        for t in seq_of(traits, "traits")? {
            if opt_str(t, "type") != Some("rollout") {
                continue;
            }
            let props = t.get("properties");
            let line = props.map_or(t.line, |p| p.key_line);
            let empty = Node {
                line,
                kind: NodeKind::Map(Vec::new()),
            };
            let pnode = props.map_or(&empty, |p| &p.value);
            let target_size = opt_int(pnode, "targetSize", "rollout.targetSize")?;
            let r = to_u(opts.replicas).or(target_size).ok_or_else(|| {
                field_err(
                    line,
                    "rollout.targetSize",
                    "is required by the rollout trait",
                )
            })?;
            let r = check_replicas(r, line, "rollout.targetSize")?;
            let entry = Entry {
                key: "properties".into(),
                key_line: line,
                value: pnode.clone(),
            };
            let (mut plan, batches_line) = parse_rollout_plan(&entry)?;
            plan.rollout_strategy = Some("IncreaseFirst".into());
            plan.target_size = Some(r);
            return kubevela_steps(&mut plan, r, batches_line, line, opts).map(Some);
        }
    }
    Ok(None)
}

fn component_replicas(docs: &[Node], components: &[String]) -> Option<i64> {
    for doc in docs {
        if kind(doc) == "Application"
            && let Some(cs) = doc.path(&["spec", "components"])
            && let NodeKind::Seq(items) = &cs.value.kind
        {
            for c in items {
                let n = opt_str(c, "name").unwrap_or("");
                if (components.is_empty() || components.iter().any(|x| x == n))
                    && let Some(e) = c.path(&["properties", "replicas"])
                    && let NodeKind::Int(i) = e.value.kind
                {
                    return Some(i);
                }
            }
        }
    }
    workload_replicas(docs, None)
}

fn plan_app_rollout(doc: &Node, docs: &[Node], opts: &PlanOptions) -> Result<Plan, PlanError> {
    let Some(plan) = doc.path(&["spec", "rolloutPlan"]) else {
        return Err(field_err(doc.line, "spec.rolloutPlan", "is required"));
    };
    let comps: Vec<String> = doc
        .path(&["spec", "componentList"])
        .and_then(|e| match &e.value.kind {
            NodeKind::Seq(items) => Some(
                items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .unwrap_or_default();
    plan_kubevela_plan(
        plan,
        component_replicas(docs, &comps),
        Some("AppRollout"),
        opts,
    )
}

// ---------------------------------------------------------------------------------------
// Workloads
// ---------------------------------------------------------------------------------------

fn workload_kind(doc: &Node) -> Option<WorkloadKind> {
    match (group(doc), kind(doc)) {
        ("apps", "Deployment") => Some(WorkloadKind::Deployment),
        ("apps.kruise.io", "CloneSet") => Some(WorkloadKind::CloneSet),
        ("apps.kruise.io", "StatefulSet") => {
            let unordered =
                doc.path(&["spec", "updateStrategy", "rollingUpdate", "unorderedUpdate"]);
            Some(if unordered.is_some() {
                WorkloadKind::AdvancedStatefulSetUnordered
            } else {
                WorkloadKind::StatefulSet
            })
        }
        ("apps", "StatefulSet") => Some(WorkloadKind::StatefulSet),
        ("apps", "DaemonSet") | ("apps.kruise.io", "DaemonSet") => Some(WorkloadKind::DaemonSet),
        _ => None,
    }
}

/// spec.replicas of the first workload (optionally of this kind and name); default 1.
fn workload_replicas(docs: &[Node], want: Option<(&str, &str)>) -> Option<i64> {
    docs.iter()
        .filter(|d| workload_kind(d).is_some())
        .find(|d| want.is_none_or(|(k, n)| kind(d) == k && name(d) == Some(n)))
        .map(
            |d| match d.path(&["spec", "replicas"]).map(|e| &e.value.kind) {
                Some(NodeKind::Int(i)) => *i,
                _ => 1,
            },
        )
}

// ---------------------------------------------------------------------------------------
// Argo
// ---------------------------------------------------------------------------------------

fn argo_err(line: u64) -> impl Fn(ArgoError) -> PlanError {
    move |source| PlanError::Argo { line, source }
}

fn plan_argo(doc: &Node, opts: &PlanOptions) -> Result<Plan, PlanError> {
    let spec_e = doc
        .get("spec")
        .ok_or_else(|| field_err(doc.line, "spec", "is required"))?;
    let spec = &spec_e.value;
    let Some(canary_e) = spec.path(&["strategy", "canary"]) else {
        return Err(field_err(
            spec_e.key_line,
            "spec.strategy.canary",
            "is required (blue-green is not planned)",
        ));
    };
    let canary = &canary_e.value;
    let r = match to_u(opts.replicas) {
        Some(r) => r,
        None => check_replicas(
            opt_int(spec, "replicas", "spec.replicas")?.unwrap_or(1),
            spec_e.key_line,
            "spec.replicas",
        )?,
    };
    let routing = canary.get("trafficRouting").filter(|e| !e.value.is_null());
    let max_weight = match routing {
        Some(t) => opt_int(
            &t.value,
            "maxTrafficWeight",
            "trafficRouting.maxTrafficWeight",
        )?
        .unwrap_or(100),
        None => 100,
    };
    let mut cs = CanarySpec {
        replicas: r,
        max_surge: opt_intstr(canary, "maxSurge", "canary.maxSurge")?,
        max_unavailable: opt_intstr(canary, "maxUnavailable", "canary.maxUnavailable")?,
        traffic_routing: routing.is_some(),
        max_weight,
        dynamic_stable_scale: opt_bool(canary, "dynamicStableScale"),
        abort_scale_down_delay_seconds: opt_int(
            canary,
            "abortScaleDownDelaySeconds",
            "canary.abortScaleDownDelaySeconds",
        )?,
        scale_down_delay_seconds: opt_int(
            canary,
            "scaleDownDelaySeconds",
            "canary.scaleDownDelaySeconds",
        )?,
        min_pods_per_replica_set: opt_int(
            canary,
            "minPodsPerReplicaSet",
            "canary.minPodsPerReplicaSet",
        )?,
        steps: Vec::new(),
    };
    let mut lines = Vec::new();
    if let Some(steps_e) = canary.get("steps") {
        for (i, s) in seq_of(steps_e, "canary.steps")?.iter().enumerate() {
            let f = |k: &str| format!("steps[{i}].{k}");
            let mut step = CanaryStep {
                set_weight: opt_int(s, "setWeight", &f("setWeight"))?,
                ..Default::default()
            };
            if let Some(p) = s.get("pause") {
                step.pause = Some(opt_intstr(&p.value, "duration", &f("pause.duration"))?);
            }
            if let Some(c) = s.get("setCanaryScale") {
                step.set_canary_scale = Some(SetCanaryScale {
                    replicas: opt_int(&c.value, "replicas", &f("setCanaryScale.replicas"))?,
                    weight: opt_int(&c.value, "weight", &f("setCanaryScale.weight"))?,
                    match_traffic_weight: opt_bool(&c.value, "matchTrafficWeight"),
                });
            }
            step.other = [
                "experiment",
                "analysis",
                "setHeaderRoute",
                "setMirrorRoute",
                "plugin",
            ]
            .iter()
            .any(|k| s.get(k).is_some());
            lines.push(s.get("pause").map_or(s.line, |p| p.key_line).max(s.line));
            cs.steps.push(step);
        }
    }
    argo::validate(&cs).map_err(|e| {
        let line = match &e {
            ArgoError::EmptyStep(i)
            | ArgoError::CanaryScaleWithoutRouting(i)
            | ArgoError::SetWeightOutOfRange { index: i, .. }
            | ArgoError::BadPauseDuration { index: i, .. } => {
                lines.get(*i).copied().unwrap_or(canary_e.key_line)
            }
            _ => canary_e.key_line,
        };
        argo_err(line)(e)
    })?;
    Ok(argo_plan(&cs))
}

// ---------------------------------------------------------------------------------------
// Kruise
// ---------------------------------------------------------------------------------------

fn kruise_err(line: u64) -> impl Fn(KruiseError) -> PlanError {
    move |source| PlanError::Kruise { line, source }
}

fn plan_kruise(doc: &Node, docs: &[Node], opts: &PlanOptions) -> Result<Plan, PlanError> {
    let v1alpha1 = api_version(doc).ends_with("/v1alpha1");
    let spec_e = doc
        .get("spec")
        .ok_or_else(|| field_err(doc.line, "spec", "is required"))?;
    let spec = &spec_e.value;
    let wref = if v1alpha1 {
        spec.path(&["objectRef", "workloadRef"])
    } else {
        spec.get("workloadRef")
    };
    let wkind = wref
        .and_then(|w| opt_str(&w.value, "kind"))
        .unwrap_or("Deployment");
    let wname = wref.and_then(|w| opt_str(&w.value, "name"));
    let Some(canary_e) = spec.path(&["strategy", "canary"]) else {
        return Err(field_err(
            spec_e.key_line,
            "spec.strategy.canary",
            "is required (blue-green is not planned)",
        ));
    };
    let canary = &canary_e.value;
    let kind = match wkind {
        "CloneSet" => WorkloadKind::CloneSet,
        "StatefulSet" => docs
            .iter()
            .find(|d| self::kind(d) == "StatefulSet" && (wname.is_none() || name(d) == wname))
            .and_then(workload_kind)
            .unwrap_or(WorkloadKind::StatefulSet),
        "DaemonSet" => WorkloadKind::DaemonSet,
        _ => WorkloadKind::Deployment,
    };
    let annotated_partition = doc
        .path(&[
            "metadata",
            "annotations",
            "rollouts.kruise.io/rolling-style",
        ])
        .and_then(|e| e.value.as_str())
        == Some("partition");
    let canary_style = kind == WorkloadKind::Deployment
        && if v1alpha1 {
            !annotated_partition
        } else {
            opt_bool(canary, "enableExtraWorkloadForCanary")
        };
    let style = if canary_style {
        RollingStyle::Canary
    } else {
        RollingStyle::Partition
    };
    let r = match to_u(opts.replicas) {
        Some(r) => r,
        None => workload_replicas(docs, wname.map(|n| (wkind, n)))
            .or_else(|| workload_replicas(docs, None))
            .ok_or_else(|| {
                PlanError::UnknownReplicas(format!("{wkind} {}", wname.unwrap_or("")))
            })?,
    };
    let r = check_replicas(r, spec_e.key_line, "replicas")?;
    let mut steps = Vec::new();
    let mut lines = Vec::new();
    let steps_e = canary.get("steps");
    if let Some(se) = steps_e {
        for (i, s) in seq_of(se, "canary.steps")?.iter().enumerate() {
            let f = |k: &str| format!("steps[{i}].{k}");
            let replicas = opt_intstr(s, "replicas", &f("replicas"))?;
            let has_matches = matches!(s.get("matches").map(|e| &e.value.kind), Some(NodeKind::Seq(m)) if !m.is_empty());
            let pause_duration = match s.get("pause") {
                Some(p) => opt_int(&p.value, "duration", &f("pause.duration"))?,
                None => None,
            };
            let step = if v1alpha1 {
                KruiseStep::from_v1alpha1(
                    replicas,
                    opt_int(s, "weight", &f("weight"))?,
                    has_matches,
                    pause_duration,
                )
            } else {
                let traffic = match s.get("traffic") {
                    None => None,
                    Some(t) => Some(match &t.value.kind {
                        NodeKind::Str(x) => x.clone(),
                        NodeKind::Int(x) => x.to_string(),
                        _ => {
                            return Err(field_err(
                                t.key_line,
                                &f("traffic"),
                                "must be a string like \"20%\"",
                            ));
                        }
                    }),
                };
                KruiseStep {
                    replicas,
                    traffic,
                    has_matches,
                    pause_duration,
                }
            };
            lines.push(s.get("replicas").map_or(s.line, |e| e.key_line).max(s.line));
            steps.push(step);
        }
    }
    let limit = if v1alpha1 { i64::MAX } else { 50 };
    kruise::validate_steps(&steps, style, limit).map_err(|e| {
        let line = match &e {
            KruiseError::MissingReplicas(i)
            | KruiseError::BadReplicas { index: i, .. }
            | KruiseError::PartitionPercentLimit { index: i, .. }
            | KruiseError::BadTraffic { index: i, .. }
            | KruiseError::Decreasing { index: i, .. } => lines.get(*i).copied(),
            _ => None,
        };
        kruise_err(
            line.or(steps_e.map(|s| s.key_line))
                .unwrap_or(canary_e.key_line),
        )(e)
    })?;
    Ok(kruise_plan(&steps, kind, style, r))
}
