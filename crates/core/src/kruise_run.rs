//! The OpenKruise Rollout executor's decisions: one pure function, [`reconcile`], that moves a
//! `rollouts.kruise.io` Rollout one transition on, the way Kruise's rollout controller does
//! (`pkg/controller/rollout`, ROLLOUT-SEMANTICS.md §B), with the step machine of
//! [`crate::kruise::step`] and the batch arithmetic of [`crate::kruise`].
//!
//! Each pass is **observe → decide → act → record**: the shell observes the workload, its
//! canary and the traffic objects ([`Observation`]), [`reconcile`] returns the next
//! [`RunState`] (written as the Rollout's `status`) and the [`Action`]s that lead there. Every
//! action is absolute and idempotent, so a pass cut short after acting and before recording is
//! repeated, and a restarted daemon resumes where the status says.
//!
//! # Phases (`status.phase`, the Progressing condition's reason)
//!
//! ```text
//! Initial → Healthy ──(workload template changed and held)──► Progressing/Initializing
//!   Initializing → InRolling ──(steps …, Completed)──► Finalising ──► Completed → Healthy
//!   InRolling ──(template back to the stable one)──► Cancelling ──► Completed → Healthy
//!   InRolling ──(another new template)──► reset ──► Initializing
//!   InRolling ⇄ Paused (spec.strategy.paused)
//!   InRolling ──(a batch not ready within the progress deadline)──► Cancelling (failed)
//!             ──► RolledBack (rollgit's: traffic on stable, canary away, Git reverted)
//! ```
//!
//! # Steps (`status.canaryStatus.currentStepState`)
//!
//! `BeforeStepUpgrade → StepUpgrade → StepTrafficRouting → StepMetricsAnalysis → StepPaused →
//! StepReady`, then the next step or `Completed`. Messages are Kruise's: `Rollout is in
//! step(1/3), and upgrade workload to new version`, `… and you need manually confirm to enter
//! the next step`, `… and wait duration(60 seconds) to enter the next step`.
//!
//! # Waiting
//!
//! Kruise waits `gracePeriodSeconds` (default 3) after each change of a Service or Ingress, so
//! that the network consumes it; rollgit waits the same on the injected clock
//! ([`RunState::wait_until`]). Timed pauses end at `lastUpdateTime + duration`.
//!
//! # Failure (rollgit's addition; Kruise waits forever)
//!
//! A step whose batch is not ready `progress_deadline_secs` after its upgrade started fails:
//! traffic goes back to the stable revision, the canary is scaled away (the workload stays
//! held, its template being the failed one), and [`Action::Rollback`] asks the record stage to
//! revert Git. While the workload's template is the failed one nothing is retried; the revert
//! (the stable template again) ends the rollout as canceled, another template starts anew.

use std::collections::BTreeMap;

use crate::intstr::{self, IntOrString};
use crate::kruise::{
    self, BatchObservation, CanaryStatus, KruiseAction, KruiseEvent, KruiseStep, RollingStyle,
    StepContext, StepState, WorkloadKind,
};
use crate::kruise_gateway::{RouteWant, http_route_rules};

/// The canary Service of the stable Service `service` (`<service>-canary`).
///
/// ```
/// assert_eq!(rollgit_core::kruise_run::canary_service_name("web"), "web-canary");
/// ```
pub fn canary_service_name(service: &str) -> String {
    format!("{service}-canary")
}

/// Kruise's default `gracePeriodSeconds` of a traffic routing.
pub const DEFAULT_GRACE_SECS: i64 = 3;

/// The label of a Deployment's pods that names their template (Kruise's `RevisionLabelKey`).
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";
/// The label of a CloneSet's or StatefulSet's pods that names their revision.
pub const CONTROLLER_REVISION_HASH: &str = "controller-revision-hash";

// ---------------------------------------------------------------------------------------------
// Spec

/// One header of a `matches` entry (Gateway API `HTTPHeaderMatch`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HeaderMatch {
    /// Header name.
    pub name: String,
    /// Value (a regular expression when `regex`).
    pub value: String,
    /// `type: RegularExpression` (else `Exact`).
    pub regex: bool,
}

/// One entry of a step's `matches`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RouteMatch {
    /// `headers`.
    pub headers: Vec<HeaderMatch>,
}

/// `trafficRoutings[].ingress.classType`: whose canary annotations to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IngressClass {
    /// `nginx` (the default): `nginx.ingress.kubernetes.io/canary*`.
    #[default]
    Nginx,
    /// `aliyun-alb`: `alb.ingress.kubernetes.io/canary*`.
    AliyunAlb,
    /// `mse`: nginx's annotations plus MSE's `mse.ingress.kubernetes.io/*`.
    Mse,
}

impl IngressClass {
    /// The class a `classType` names (`""` is nginx).
    ///
    /// ```
    /// use rollgit_core::kruise_run::IngressClass;
    /// assert_eq!(IngressClass::parse(""), Some(IngressClass::Nginx));
    /// assert_eq!(IngressClass::parse("aliyun-alb"), Some(IngressClass::AliyunAlb));
    /// assert_eq!(IngressClass::parse("traefik"), None);
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "" | "nginx" => Some(Self::Nginx),
            "aliyun-alb" => Some(Self::AliyunAlb),
            "mse" => Some(Self::Mse),
            _ => None,
        }
    }
}

/// `trafficRoutings[0]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrafficRouting {
    /// The stable Service.
    pub service: String,
    /// The Ingress and its class, if routed through one.
    pub ingress: Option<(String, IngressClass)>,
    /// `gateway.httpRouteName`: the Gateway API HTTPRoute, if routed through one.
    pub http_route: Option<String>,
    /// Seconds to wait after changing a Service or the Ingress.
    pub grace_secs: i64,
}

/// What the executor needs of a Rollout's spec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSpec {
    /// `steps`, in the v1beta1 shape.
    pub steps: Vec<KruiseStep>,
    /// Each step's `matches` (same length as `steps`).
    pub matches: Vec<Vec<RouteMatch>>,
    /// Canary (extra Deployment) or partition style.
    pub style: RollingStyle,
    /// The workload's kind.
    pub kind: WorkloadKind,
    /// `trafficRoutings[0]`, if any.
    pub traffic: Option<TrafficRouting>,
    /// `spec.strategy.paused`.
    pub paused: bool,
    /// `failureThreshold`.
    pub failure_threshold: Option<IntOrString>,
    /// Seconds a step's batch may take to become ready.
    pub progress_deadline_secs: i64,
    /// A hash of the steps without their pauses (Kruise's `rolloutHash`).
    pub rollout_hash: String,
}

impl RunSpec {
    fn step(&self, index: i64) -> (KruiseStep, &[RouteMatch]) {
        let i = usize::try_from(index - 1)
            .unwrap_or(0)
            .min(self.steps.len().saturating_sub(1));
        (
            self.steps.get(i).cloned().unwrap_or_default(),
            self.matches.get(i).map(Vec::as_slice).unwrap_or_default(),
        )
    }

    fn has_traffic(&self, index: i64) -> bool {
        let (s, m) = self.step(index);
        self.traffic.is_some() && (s.traffic.is_some() || !m.is_empty())
    }

    fn grace(&self) -> i64 {
        self.traffic
            .as_ref()
            .map_or(DEFAULT_GRACE_SECS, |t| t.grace_secs.max(0))
    }
}

// ---------------------------------------------------------------------------------------------
// Observation

/// The workload the Rollout points at, as the shell read it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WorkloadObs {
    /// `spec.replicas` (R).
    pub replicas: i64,
    /// `status.observedGeneration ≥ metadata.generation`.
    pub consistent: bool,
    /// A hash of the live pod template (Kruise's `canaryRevision` of a release).
    pub revision: String,
    /// The revision label value of the workload's own pods of the live template, once some
    /// exist (a Deployment: the `pod-template-hash` of its ReplicaSet with the live template).
    /// When it is the stable revision, the workload was rolled back.
    pub pod_hash: Option<String>,
    /// The revision label value of the canary pods (canary style: the canary Deployment's;
    /// otherwise [`WorkloadObs::pod_hash`]).
    pub canary_pod_hash: Option<String>,
    /// The revision label value of the pods that ran before the release (the
    /// `rollouts.kruise.io/stable-revision` label, else the active ReplicaSet of another
    /// template).
    pub stable_pod_hash: Option<String>,
    /// The workload is held for a release (`rollouts.kruise.io/in-progressing`).
    pub held: bool,
    /// Held for a template that has not been applied yet (the hold comes first).
    pub hold_pending: bool,
    /// The native controller is stopped (`spec.paused`, or the partition holds every pod).
    pub paused: bool,
    /// rollgit has taken control of it for the release (the control annotation).
    pub under_control: bool,
    /// Pods of the live template (canary style: the canary Deployment's pods).
    pub updated: i64,
    /// Of those, ready (available).
    pub updated_ready: i64,
    /// The workload runs the live template everywhere, as its own rollout requires.
    pub promoted: bool,
    /// The canary Deployment's `spec.replicas` (canary style), if it exists.
    pub canary_workload: Option<i64>,
    /// The Git commit of the workload (`rollgit.dev/commit`), if known.
    pub commit: Option<String>,
}

/// A Service as far as traffic routing cares.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceObs {
    /// The value of the revision label in its selector, if any.
    pub revision: Option<String>,
}

/// The Gateway API HTTPRoute of `gateway.httpRouteName`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpRouteObs {
    /// Its live `spec.rules` (`[]` when it has none).
    pub rules: serde_json::Value,
    /// Git's `spec.rules` when the route is in the Rollout's app (the executor owns the field,
    /// and Git's rules are what it restores and keeps between releases).
    pub git_rules: Option<serde_json::Value>,
}

/// The traffic objects.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TrafficObs {
    /// The stable Service (`None`: not found).
    pub stable_service: Option<ServiceObs>,
    /// `<service>-canary`.
    pub canary_service: Option<ServiceObs>,
    /// The stable Ingress exists.
    pub ingress: bool,
    /// `<ingress>-canary`'s annotations, if it exists.
    pub canary_ingress: Option<BTreeMap<String, String>>,
    /// The HTTPRoute, if routed through one and it exists.
    pub http_route: Option<HttpRouteObs>,
}

/// What the shell saw this pass.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Observation {
    /// The workload (`None`: not found).
    pub workload: Option<WorkloadObs>,
    /// Traffic objects.
    pub traffic: TrafficObs,
    /// Names of the canary's pods that are not ready (for the failure message).
    pub not_ready_pods: Vec<String>,
}

// ---------------------------------------------------------------------------------------------
// State

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Initial
    Initial,
    /// Healthy
    Healthy,
    /// Progressing
    Progressing,
}

impl Phase {
    /// The status string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initial => "Initial",
            Self::Healthy => "Healthy",
            Self::Progressing => "Progressing",
        }
    }

    /// The phase a status string names.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Initial, Self::Healthy, Self::Progressing]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// The Progressing condition's reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Initializing
    Initializing,
    /// InRolling
    InRolling,
    /// Finalising
    Finalising,
    /// Completed
    Completed,
    /// Cancelling
    Cancelling,
    /// Paused
    Paused,
    /// RolledBack (rollgit's): a failed step was rolled back, Git is asked to revert.
    RolledBack,
}

impl Progress {
    /// The reason string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Initializing => "Initializing",
            Self::InRolling => "InRolling",
            Self::Finalising => "Finalising",
            Self::Completed => "Completed",
            Self::Cancelling => "Cancelling",
            Self::Paused => "Paused",
            Self::RolledBack => "RolledBack",
        }
    }

    /// The reason a string names.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Initializing,
            Self::InRolling,
            Self::Finalising,
            Self::Completed,
            Self::Cancelling,
            Self::Paused,
            Self::RolledBack,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// `status.canaryStatus.finalisingStep`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinalisingStep {
    /// RestoreStableService
    RestoreStableService,
    /// RouteTrafficToStable
    RouteTrafficToStable,
    /// RemoveCanaryService
    RemoveCanaryService,
    /// ResumeWorkload
    ResumeWorkload,
    /// ReleaseWorkloadControl
    ReleaseWorkloadControl,
    /// ScaleCanaryAway (rollgit's, after a failure)
    ScaleCanaryAway,
    /// END
    End,
}

impl FinalisingStep {
    /// The status string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::RestoreStableService => "RestoreStableService",
            Self::RouteTrafficToStable => "RouteTrafficToStable",
            Self::RemoveCanaryService => "RemoveCanaryService",
            Self::ResumeWorkload => "ResumeWorkload",
            Self::ReleaseWorkloadControl => "ReleaseWorkloadControl",
            Self::ScaleCanaryAway => "ScaleCanaryAway",
            Self::End => "END",
        }
    }

    /// The step a string names.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::RestoreStableService,
            Self::RouteTrafficToStable,
            Self::RemoveCanaryService,
            Self::ResumeWorkload,
            Self::ReleaseWorkloadControl,
            Self::ScaleCanaryAway,
            Self::End,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
    }
}

/// Why the rollout finalises, which orders the finalising steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FinaliseReason {
    /// All steps done.
    Success,
    /// The workload went back to the stable template.
    Rollback,
    /// A step failed (rollgit's): the canary goes away, the workload stays held.
    Failed,
    /// Another new template mid-rollout: clear the canary before starting again.
    Continuous,
}

impl FinaliseReason {
    /// The finalising steps, in order (Kruise's `nextCanaryTask` and `doProgressingReset`).
    pub fn sequence(self) -> &'static [FinalisingStep] {
        use FinalisingStep::*;
        match self {
            Self::Success => &[
                RestoreStableService,
                RouteTrafficToStable,
                RemoveCanaryService,
                ResumeWorkload,
                ReleaseWorkloadControl,
            ],
            Self::Rollback => &[
                RouteTrafficToStable,
                ResumeWorkload,
                ReleaseWorkloadControl,
                RestoreStableService,
                RemoveCanaryService,
            ],
            Self::Failed => &[
                RouteTrafficToStable,
                ScaleCanaryAway,
                RestoreStableService,
                RemoveCanaryService,
            ],
            Self::Continuous => &[RouteTrafficToStable, ScaleCanaryAway, RemoveCanaryService],
        }
    }

    fn next(self, current: Option<FinalisingStep>) -> FinalisingStep {
        let seq = self.sequence();
        match current {
            None => seq[0],
            Some(c) => seq
                .iter()
                .position(|s| *s == c)
                .and_then(|i| seq.get(i + 1))
                .copied()
                .unwrap_or(FinalisingStep::End),
        }
    }
}

/// A condition (`Progressing` or `Succeeded`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cond {
    /// `True` or `False`.
    pub status: bool,
    /// Reason.
    pub reason: String,
    /// Message.
    pub message: String,
    /// `lastUpdateTime` (unix seconds).
    pub last_update: i64,
    /// `lastTransitionTime` (unix seconds).
    pub last_transition: i64,
}

impl Cond {
    fn set(slot: &mut Option<Cond>, status: bool, reason: &str, message: &str, now: i64) {
        match slot {
            Some(c) if c.status == status && c.reason == reason && c.message == message => {}
            Some(c) => {
                if c.status != status {
                    c.last_transition = now;
                }
                c.status = status;
                c.reason = reason.into();
                c.message = message.into();
                c.last_update = now;
            }
            None => {
                *slot = Some(Cond {
                    status,
                    reason: reason.into(),
                    message: message.into(),
                    last_update: now,
                    last_transition: now,
                })
            }
        }
    }
}

/// `status.canaryStatus`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CanaryRun {
    /// `rolloutHash`.
    pub rollout_hash: String,
    /// `stableRevision`: the revision label value of the stable pods.
    pub stable_revision: String,
    /// `canaryRevision`: the workload template's revision this run rolls out.
    pub canary_revision: String,
    /// `podTemplateHash`: the revision label value of the canary pods, once known.
    pub pod_template_hash: String,
    /// `canaryReplicas`.
    pub canary_replicas: i64,
    /// `canaryReadyReplicas`.
    pub canary_ready_replicas: i64,
    /// Step index (1-based), next index, state and `lastUpdateTime`.
    pub step: CanaryStatus,
    /// `message`.
    pub message: String,
    /// `finalisingStep`.
    pub finalising_step: Option<FinalisingStep>,
}

/// A failed step (rollgit's).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The template revision that failed.
    pub revision: String,
    /// Why.
    pub reason: String,
}

/// The Rollout's status as the executor records it between passes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RunState {
    /// `phase` (`None` before the first pass).
    pub phase: Option<Phase>,
    /// `message`.
    pub message: String,
    /// The `Progressing` condition.
    pub progressing: Option<Cond>,
    /// The `Succeeded` condition.
    pub succeeded: Option<Cond>,
    /// `canaryStatus`.
    pub canary: Option<CanaryRun>,
    /// The commit whose template is the stable one (rollgit's).
    pub stable_commit: Option<String>,
    /// The commit whose template this run rolls out (rollgit's).
    pub target_commit: Option<String>,
    /// The failed step, if any (rollgit's).
    pub failure: Option<Failure>,
    /// Nothing moves before this time (a grace period; rollgit's).
    pub wait_until: Option<i64>,
}

impl RunState {
    /// The reason of the Progressing condition, if it names one.
    pub fn progress(&self) -> Option<Progress> {
        self.progressing
            .as_ref()
            .and_then(|c| Progress::parse(&c.reason))
    }

    fn set_progress(&mut self, status: bool, p: Progress, message: &str, now: i64) {
        let message = if message.is_empty() {
            self.progressing
                .as_ref()
                .map(|c| c.message.clone())
                .unwrap_or_default()
        } else {
            message.to_string()
        };
        Cond::set(&mut self.progressing, status, p.as_str(), &message, now);
        self.message = message;
    }

    fn set_message(&mut self, message: String, now: i64) {
        if let Some(c) = self.progressing.as_mut()
            && c.message != message
        {
            c.message = message.clone();
            c.last_update = now;
        }
        self.message = message;
    }
}

// ---------------------------------------------------------------------------------------------
// Decision

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Hold the workload for the release: paused (a CloneSet or StatefulSet: its partition at
    /// every pod), `rollouts.kruise.io/in-progressing`, the stable-revision label.
    Hold {
        /// The stable pods' revision label value.
        stable_revision: String,
    },
    /// Take control of the workload for the release (partition style: the strategy goes to an
    /// annotation, `Recreate`; canary style: the control annotation).
    Initialize,
    /// Bring the batch of the current step about: canary style, the canary Deployment *to*
    /// `desired_updated` pods (only up); partition style, the partition (only towards more
    /// updated pods).
    UpgradeBatch {
        /// Pods of the new template once the batch settles.
        desired_updated: i64,
        /// The partition of the step (see [`kruise::partition_batch_context`]).
        partition: IntOrString,
    },
    /// Remove the canary's pods: the canary Deployment deleted, or the partition back to all
    /// stable pods.
    ScaleCanaryAway,
    /// Let the workload's own controller run it again (unpaused, the strategy or partition
    /// restored).
    Resume,
    /// Remove rollgit's control of the workload (annotations, labels; the canary Deployment).
    Release,
    /// Select only the stable pods with the stable Service.
    PatchStableService {
        /// Revision label value of the stable pods.
        revision: String,
    },
    /// The stable Service selects every version again.
    RestoreStableService,
    /// Create `<service>-canary` (or point it at `revision`).
    EnsureCanaryService {
        /// Revision label value of the canary pods.
        revision: String,
    },
    /// Delete `<service>-canary`.
    RemoveCanaryService,
    /// Create `<ingress>-canary` from the stable Ingress with these annotations.
    CreateCanaryIngress {
        /// Its annotations.
        annotations: BTreeMap<String, String>,
    },
    /// Set `<ingress>-canary`'s annotations.
    PatchCanaryIngress {
        /// All its annotations.
        annotations: BTreeMap<String, String>,
    },
    /// Delete `<ingress>-canary`.
    RemoveCanaryIngress,
    /// Set the HTTPRoute's `spec.rules` (see [`crate::kruise_gateway`]).
    SetHttpRouteRules {
        /// All its rules.
        rules: serde_json::Value,
    },
    /// A step failed and was rolled back; the shell tells the record stage (Git revert).
    Rollback {
        /// Why.
        reason: String,
    },
}

/// The result of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The status to record after the actions succeeded.
    pub state: RunState,
    /// Actions, in order.
    pub actions: Vec<Action>,
    /// Look again at this time even without an event (a pause, a grace period, a deadline).
    pub requeue_at: Option<i64>,
}

/// The message of a step that upgrades its batch.
pub fn upgrade_message(step: i64, steps: usize) -> String {
    format!("Rollout is in step({step}/{steps}), and upgrade workload to new version")
}

/// The message of a step that waits for `kubectl-kruise rollout approve` (or `rollgit approve`).
pub fn approval_message(step: i64, steps: usize) -> String {
    format!(
        "Rollout is in step({step}/{steps}), and you need manually confirm to enter the next step"
    )
}

/// The message of a step that waits `secs`.
pub fn duration_message(step: i64, steps: usize, secs: i64) -> String {
    format!(
        "Rollout is in step({step}/{steps}), and wait duration({secs} seconds) to enter the next step"
    )
}

/// The canary Ingress's annotations for a step, from its current ones (Kruise's
/// `lua_configuration/trafficrouting_ingress/<class>.lua`): `weight` `None` removes the canary
/// weight; each match sets the header (the first header of each match, later matches win).
///
/// ```
/// use rollgit_core::kruise_run::*;
/// let m = RouteMatch { headers: vec![HeaderMatch { name: "User-Agent".into(), value: "Andriod".into(), regex: false }] };
/// let a = canary_ingress_annotations(IngressClass::Nginx, &Default::default(), None, &[m]);
/// assert_eq!(a["nginx.ingress.kubernetes.io/canary"], "true");
/// assert_eq!(a["nginx.ingress.kubernetes.io/canary-by-header"], "User-Agent");
/// assert_eq!(a["nginx.ingress.kubernetes.io/canary-by-header-value"], "Andriod");
/// assert!(!a.contains_key("nginx.ingress.kubernetes.io/canary-weight"));
/// ```
pub fn canary_ingress_annotations(
    class: IngressClass,
    current: &BTreeMap<String, String>,
    weight: Option<i64>,
    matches: &[RouteMatch],
) -> BTreeMap<String, String> {
    let mut a = current.clone();
    let prefix = match class {
        IngressClass::AliyunAlb => "alb.ingress.kubernetes.io",
        IngressClass::Nginx | IngressClass::Mse => "nginx.ingress.kubernetes.io",
    };
    let key = |k: &str| format!("{prefix}/{k}");
    a.insert(key("canary"), "true".into());
    for k in [
        "canary-by-cookie",
        "canary-by-header",
        "canary-by-header-pattern",
        "canary-by-header-value",
        "canary-weight",
    ] {
        a.remove(&key(k));
    }
    match class {
        IngressClass::AliyunAlb => {
            a.insert(key("order"), "1".into());
        }
        IngressClass::Mse => {
            for k in [
                "canary-by-query",
                "canary-by-query-pattern",
                "canary-by-query-value",
            ] {
                a.remove(&format!("mse.ingress.kubernetes.io/{k}"));
            }
            if a.contains_key("mse.ingress.kubernetes.io/service-subset") {
                a.insert(
                    "mse.ingress.kubernetes.io/service-subset".into(),
                    "gray".into(),
                );
            }
        }
        IngressClass::Nginx => {}
    }
    if let Some(w) = weight {
        a.insert(key("canary-weight"), w.to_string());
    }
    for m in matches {
        let Some(h) = m.headers.first() else {
            continue;
        };
        if h.name == "canary-by-cookie" {
            a.insert(key("canary-by-cookie"), h.value.clone());
        } else {
            a.insert(key("canary-by-header"), h.name.clone());
            let k = if h.regex {
                "canary-by-header-pattern"
            } else {
                "canary-by-header-value"
            };
            a.insert(key(k), h.value.clone());
        }
    }
    a
}

/// The traffic weight of a step (`traffic: "50%"` → 50), if it sets one.
pub fn step_weight(step: &KruiseStep) -> Option<i64> {
    step.traffic
        .as_ref()
        .and_then(|t| intstr::strict(&IntOrString::Str(t.clone()), 100, true).ok())
}

/// One pass: see the module documentation.
pub fn reconcile(spec: &RunSpec, prev: &RunState, obs: &Observation, now: i64) -> Decision {
    let mut p = Pass {
        spec,
        obs,
        now,
        s: prev.clone(),
        actions: Vec::new(),
        requeue_at: None,
    };
    p.run();
    Decision {
        state: p.s,
        actions: p.actions,
        requeue_at: p.requeue_at,
    }
}

/// Whether a finalising step is done.
enum StepDone {
    /// Done: go on.
    Yes,
    /// Not yet (acted, or waiting for the workload).
    No,
}

struct Pass<'a> {
    spec: &'a RunSpec,
    obs: &'a Observation,
    now: i64,
    s: RunState,
    actions: Vec<Action>,
    requeue_at: Option<i64>,
}

impl Pass<'_> {
    fn requeue(&mut self, at: i64) {
        self.requeue_at = Some(self.requeue_at.map_or(at, |r| r.min(at)));
    }

    /// Waits the grace period from now (after changing a Service or Ingress).
    fn grace(&mut self) {
        let g = self.spec.grace();
        if g > 0 {
            self.s.wait_until = Some(self.now + g);
            self.requeue(self.now + g);
        }
    }

    fn run(&mut self) {
        let Some(w) = self.obs.workload.clone() else {
            self.s.phase = Some(Phase::Initial);
            self.s.message = "Workload Not Found".into();
            return;
        };
        if !w.consistent {
            return;
        }
        if let Some(t) = self.s.wait_until {
            if self.now < t {
                self.requeue(t);
                return;
            }
            self.s.wait_until = None;
        }
        match self.s.phase {
            None | Some(Phase::Initial) => {
                self.s.phase = Some(Phase::Healthy);
                self.s.message = "rollout is healthy".into();
            }
            Some(Phase::Healthy) => self.healthy(&w),
            Some(Phase::Progressing) => self.progressing(&w),
        }
    }

    fn healthy(&mut self, w: &WorkloadObs) {
        // Between releases an HTTPRoute of the app follows Git's rules.
        if let Some(r) = &self.obs.traffic.http_route
            && let Some(git) = &r.git_rules
            && *git != r.rules
        {
            self.actions
                .push(Action::SetHttpRouteRules { rules: git.clone() });
        }
        if w.hold_pending {
            // Held for a template on its way (the apply follows the hold).
            return;
        }
        let Some(c) = self.s.canary.clone() else {
            // The first deployment: recorded as completed (Kruise does so that a platform can
            // tell the release is done).
            let n = self.spec.steps.len() as i64;
            self.s.canary = Some(CanaryRun {
                rollout_hash: self.spec.rollout_hash.clone(),
                stable_revision: w.pod_hash.clone().unwrap_or_default(),
                canary_revision: w.revision.clone(),
                pod_template_hash: w.pod_hash.clone().unwrap_or_default(),
                canary_replicas: 0,
                canary_ready_replicas: 0,
                step: CanaryStatus {
                    current_step_index: n,
                    next_step_index: -1,
                    state: StepState::Completed,
                    last_update_time: self.now,
                },
                message: String::new(),
                finalising_step: None,
            });
            self.s.message = "workload deployment is completed".into();
            self.s.stable_commit = w.commit.clone();
            if w.held {
                self.actions.push(Action::Resume);
                self.actions.push(Action::Release);
            }
            return;
        };
        if w.revision == c.canary_revision {
            if w.held || w.under_control {
                // Held for a change that never came (the apply after the hold failed).
                self.actions.push(Action::Resume);
                self.actions.push(Action::Release);
            }
            return;
        }
        if !w.held {
            // Changed without a hold (an object created before its Rollout, a hand edit the
            // workload's controller already rolled): adopted as it is, as Kruise does.
            if let Some(c) = self.s.canary.as_mut() {
                c.canary_revision = w.revision.clone();
                if let Some(h) = &w.pod_hash {
                    c.pod_template_hash = h.clone();
                }
            }
            return;
        }
        if w.replicas == 0 {
            // Nothing to roll: Kruise lets a workload without pods through.
            self.actions.push(Action::Resume);
            self.actions.push(Action::Release);
            if let Some(c) = self.s.canary.as_mut() {
                c.canary_revision = w.revision.clone();
            }
            return;
        }
        self.s.phase = Some(Phase::Progressing);
        self.s.succeeded = None;
        self.s.failure = None;
        self.s.target_commit = w.commit.clone();
        self.s.progressing = None;
        self.s.set_progress(
            true,
            Progress::Initializing,
            "Rollout is in Progressing",
            self.now,
        );
    }

    fn progressing(&mut self, w: &WorkloadObs) {
        let Some(progress) = self.s.progress() else {
            self.s.set_progress(
                true,
                Progress::Initializing,
                "Rollout is in Progressing",
                self.now,
            );
            return;
        };
        match progress {
            Progress::Initializing => self.initializing(w),
            Progress::InRolling => self.in_rolling(w),
            Progress::Paused => {
                if !self.spec.paused {
                    self.s.set_progress(
                        true,
                        Progress::InRolling,
                        "Rollout is in Progressing",
                        self.now,
                    );
                }
            }
            Progress::Finalising => {
                if self.finalise(FinaliseReason::Success, w) {
                    self.s.stable_commit = self.s.target_commit.clone();
                    self.s.set_progress(
                        false,
                        Progress::Completed,
                        "Rollout progressing has been completed",
                        self.now,
                    );
                    Cond::set(&mut self.s.succeeded, true, "", "", self.now);
                }
            }
            Progress::Cancelling => {
                let failed = self.s.failure.is_some();
                let reason = if failed {
                    FinaliseReason::Failed
                } else {
                    FinaliseReason::Rollback
                };
                if self.finalise(reason, w) {
                    if failed {
                        let message = self.failed_message();
                        self.s
                            .set_progress(false, Progress::RolledBack, &message, self.now);
                        Cond::set(
                            &mut self.s.succeeded,
                            false,
                            Progress::RolledBack.as_str(),
                            &message,
                            self.now,
                        );
                    } else {
                        self.s.set_progress(
                            false,
                            Progress::Completed,
                            "Rollout progressing has been canceled",
                            self.now,
                        );
                        Cond::set(&mut self.s.succeeded, false, "", "", self.now);
                    }
                }
            }
            Progress::RolledBack => self.rolled_back(w),
            Progress::Completed => {
                self.s.phase = Some(Phase::Healthy);
            }
        }
    }

    fn failed_message(&self) -> String {
        let why = self
            .s
            .failure
            .as_ref()
            .map(|f| f.reason.clone())
            .unwrap_or_default();
        format!(
            "{why}; traffic is back on the stable revision and the canary is scaled away; waiting for Git to revert"
        )
    }

    fn stable_revision(&self, w: &WorkloadObs) -> String {
        w.stable_pod_hash
            .clone()
            .or_else(|| self.s.canary.as_ref().map(|c| c.stable_revision.clone()))
            .unwrap_or_default()
    }

    fn initializing(&mut self, w: &WorkloadObs) {
        // A continuous release keeps the stable revision of the run it replaces.
        let stable = match &self.s.canary {
            Some(c) if !c.stable_revision.is_empty() && c.finalising_step.is_some() => {
                c.stable_revision.clone()
            }
            _ => self.stable_revision(w),
        };
        self.actions.push(Action::Hold {
            stable_revision: stable.clone(),
        });
        if let Some(tr) = &self.spec.traffic {
            let missing = if self.obs.traffic.stable_service.is_none() {
                Some(format!("Service {}", tr.service))
            } else if tr.ingress.is_some() && !self.obs.traffic.ingress {
                tr.ingress.as_ref().map(|(n, _)| format!("Ingress {n}"))
            } else if tr.http_route.is_some() && self.obs.traffic.http_route.is_none() {
                tr.http_route.as_ref().map(|n| format!("HTTPRoute {n}"))
            } else {
                None
            };
            if let Some(what) = missing {
                let m = format!("waiting for the traffic routing's {what}, which does not exist");
                self.s.set_message(m, self.now);
                return;
            }
        }
        let n = self.spec.steps.len();
        self.s.canary = Some(CanaryRun {
            rollout_hash: self.spec.rollout_hash.clone(),
            stable_revision: stable,
            canary_revision: w.revision.clone(),
            pod_template_hash: String::new(),
            canary_replicas: 0,
            canary_ready_replicas: 0,
            step: CanaryStatus::start(n, self.now),
            message: String::new(),
            finalising_step: None,
        });
        self.s.failure = None;
        self.s.target_commit = w.commit.clone().or(self.s.target_commit.clone());
        self.s.set_progress(
            true,
            Progress::InRolling,
            "Rollout is in Progressing",
            self.now,
        );
    }

    fn in_rollback(&self, w: &WorkloadObs) -> bool {
        self.s.canary.as_ref().is_some_and(|c| {
            w.revision != c.canary_revision
                && !c.stable_revision.is_empty()
                && w.pod_hash.as_deref() == Some(c.stable_revision.as_str())
        })
    }

    fn in_rolling(&mut self, w: &WorkloadObs) {
        let Some(c) = self.s.canary.clone() else {
            self.s.set_progress(
                true,
                Progress::Initializing,
                "Rollout is in Progressing",
                self.now,
            );
            return;
        };
        // 1. Rolled back to the stable template: cancel quickly.
        if self.in_rollback(w) {
            if let Some(c) = self.s.canary.as_mut() {
                c.canary_revision = w.revision.clone();
                c.finalising_step = None;
            }
            self.s.set_progress(
                true,
                Progress::Cancelling,
                "The workload has been rolled back and the rollout process will be canceled",
                self.now,
            );
            return;
        }
        // 2. Paused by the spec.
        if self.spec.paused {
            self.s.set_progress(
                true,
                Progress::Paused,
                "Rollout has been paused, you can resume it by kube-cli",
                self.now,
            );
            return;
        }
        // 3. Another new template: clear the canary, then start again.
        if w.revision != c.canary_revision {
            if self.finalise(FinaliseReason::Continuous, w) {
                if let Some(c) = self.s.canary.as_mut() {
                    c.finalising_step = Some(FinalisingStep::End);
                }
                self.s.set_progress(
                    true,
                    Progress::Initializing,
                    "Workload is continuous release",
                    self.now,
                );
            }
            return;
        }
        // 4. The steps changed: go on from the first step that covers what is updated.
        if c.rollout_hash != self.spec.rollout_hash && !c.rollout_hash.is_empty() {
            self.replan(w, &c);
            return;
        }
        if c.step.state == StepState::Completed {
            self.s.set_progress(
                true,
                Progress::Finalising,
                "Rollout has been completed and some closing work is being done",
                self.now,
            );
            return;
        }
        self.run_canary(w, c);
    }

    fn replan(&mut self, w: &WorkloadObs, c: &CanaryRun) {
        let target = kruise::recalculate_step(&self.spec.steps, w.replicas, w.updated);
        let n = self.spec.steps.len();
        let mut run = c.clone();
        run.rollout_hash = self.spec.rollout_hash.clone();
        if target == c.step.next_step_index {
            run.step.state = StepState::StepReady;
        } else {
            let (st, _) = kruise::step(
                &StepContext {
                    steps: self.spec.steps.clone(),
                    replicas: w.replicas,
                    style: self.spec.style,
                },
                &run.step,
                KruiseEvent::Jump {
                    next_step_index: target,
                    updated_replicas: w.updated,
                },
                self.now,
            )
            .unwrap_or_else(|_| (run.step.clone(), Vec::new()));
            run.step = st;
        }
        if run.step.current_step_index > n as i64 {
            run.step.current_step_index = n as i64;
        }
        run.step.last_update_time = self.now;
        self.s.canary = Some(run);
    }

    fn stable_selected(&self, revision: &str) -> bool {
        self.obs
            .traffic
            .stable_service
            .as_ref()
            .is_none_or(|s| s.revision.as_deref() == Some(revision))
    }

    fn stable_restored(&self) -> bool {
        self.obs
            .traffic
            .stable_service
            .as_ref()
            .is_none_or(|s| s.revision.is_none())
    }

    fn traffic_artifacts(&self) -> bool {
        self.spec.traffic.is_some()
            && (!self.stable_restored()
                || self.obs.traffic.canary_ingress.is_some()
                || self.obs.traffic.canary_service.is_some()
                || self.restored_route().is_some())
    }

    /// The HTTPRoute's rules with every request to the stable Service, when they are not
    /// already: Git's rules for a route of the app, else Kruise's restore of the live ones.
    fn restored_route(&self) -> Option<serde_json::Value> {
        let tr = self.spec.traffic.as_ref()?;
        tr.http_route.as_ref()?;
        let r = self.obs.traffic.http_route.as_ref()?;
        let want = match &r.git_rules {
            Some(git) => git.clone(),
            None => http_route_rules(
                &r.rules,
                &tr.service,
                &canary_service_name(&tr.service),
                RouteWant::Stable,
            ),
        };
        (want != r.rules).then_some(want)
    }

    fn run_canary(&mut self, w: &WorkloadObs, mut c: CanaryRun) {
        let n = self.spec.steps.len();
        let index = c.step.current_step_index;
        let (step, _) = self.spec.step(index);
        let has_traffic = self.spec.has_traffic(index);
        // A step without traffic after steps with traffic: clear the routing first.
        if !has_traffic && self.traffic_artifacts() {
            self.clear_traffic();
            return;
        }
        if c.pod_template_hash.is_empty()
            && let Some(h) = &w.canary_pod_hash
            && Some(h) != Some(&c.stable_revision)
        {
            c.pod_template_hash = h.clone();
        }
        let ctx = StepContext {
            steps: self.spec.steps.clone(),
            replicas: w.replicas,
            style: self.spec.style,
        };
        let replicas = step
            .replicas
            .as_ref()
            .map_or(0, |r| kruise::calculate_batch_replicas(r, w.replicas));
        let full_partition = self.spec.style == RollingStyle::Partition && replicas >= w.replicas;
        let mut batch_ready = false;
        let mut traffic_done = true;
        match c.step.state {
            StepState::BeforeStepUpgrade => {
                if has_traffic {
                    if full_partition && !self.stable_restored() {
                        self.actions.push(Action::RestoreStableService);
                        self.s.canary = Some(c);
                        self.grace();
                        return;
                    }
                    if index == 1 && !self.stable_selected(&c.stable_revision) {
                        self.actions.push(Action::PatchStableService {
                            revision: c.stable_revision.clone(),
                        });
                        self.s.canary = Some(c);
                        self.grace();
                        return;
                    }
                }
            }
            StepState::StepUpgrade => {
                self.s.set_message(upgrade_message(index, n), self.now);
                if !w.under_control {
                    self.actions.push(Action::Initialize);
                }
                let bc = if self.spec.style == RollingStyle::Canary {
                    let d = kruise::canary_style_replicas(
                        step.replicas.as_ref().unwrap_or(&IntOrString::Int(0)),
                        w.replicas,
                    );
                    (d, IntOrString::Int(d))
                } else {
                    let b = kruise::partition_batch_context(
                        self.spec.kind,
                        step.replicas.as_ref().unwrap_or(&IntOrString::Int(0)),
                        w.replicas,
                        0,
                    );
                    (b.desired_updated, b.desired_partition)
                };
                self.actions.push(Action::UpgradeBatch {
                    desired_updated: bc.0,
                    partition: bc.1,
                });
                c.canary_replicas = w.updated;
                c.canary_ready_replicas = w.updated_ready;
                batch_ready = kruise::is_batch_ready(
                    bc.0,
                    &BatchObservation {
                        updated: w.updated,
                        updated_ready: w.updated_ready,
                        failure_threshold: self.spec.failure_threshold.clone(),
                        rollout_id_pods: None,
                    },
                );
                if batch_ready {
                    if let Some(h) = &w.canary_pod_hash {
                        c.pod_template_hash = h.clone();
                    }
                } else {
                    let deadline = c.step.last_update_time + self.spec.progress_deadline_secs;
                    if self.now >= deadline {
                        self.fail(w, c, index, bc.0);
                        return;
                    }
                    self.requeue(deadline);
                }
            }
            StepState::StepTrafficRouting => {
                if has_traffic {
                    if self.now < c.step.last_update_time + self.spec.grace() {
                        let t = c.step.last_update_time + self.spec.grace();
                        self.s.wait_until = Some(t);
                        self.requeue(t);
                        self.s.canary = Some(c);
                        return;
                    }
                    if self.route(&c, &step, index) {
                        c.step.last_update_time = self.now;
                        self.s.canary = Some(c);
                        self.grace();
                        return;
                    }
                }
                traffic_done = true;
            }
            StepState::StepPaused => {
                let last_full =
                    index == n as i64 && step.replicas == Some(IntOrString::str("100%"));
                if !last_full {
                    let m = match step.pause_duration {
                        None => approval_message(index, n),
                        Some(d) => duration_message(index, n, d),
                    };
                    self.s.set_message(m, self.now);
                }
            }
            StepState::StepMetricsAnalysis | StepState::StepReady | StepState::Completed => {}
        }
        let before = c.step.clone();
        let (next, actions) = match kruise::step(
            &ctx,
            &c.step,
            KruiseEvent::Reconcile {
                batch_ready,
                traffic_done,
            },
            self.now,
        ) {
            Ok(r) => r,
            Err(_) => (c.step.clone(), Vec::new()),
        };
        for a in actions {
            if let KruiseAction::RequeueAt(t) = a {
                self.requeue(t);
            }
        }
        c.step = next;
        if c.step != before && c.step.state == StepState::StepUpgrade {
            // A new batch: its deadline counts from now.
            c.step.last_update_time = self.now;
        }
        self.s.canary = Some(c);
    }

    /// Makes the traffic objects what this step wants; true when something changed.
    fn route(&mut self, c: &CanaryRun, step: &KruiseStep, index: i64) -> bool {
        let Some(tr) = self.spec.traffic.clone() else {
            return false;
        };
        let canary_rev = if c.pod_template_hash.is_empty() {
            None
        } else {
            Some(c.pod_template_hash.clone())
        };
        let mut changed = false;
        if let Some(rev) = &canary_rev {
            let svc_ok = self
                .obs
                .traffic
                .canary_service
                .as_ref()
                .is_some_and(|s| s.revision.as_deref() == Some(rev.as_str()));
            if !svc_ok {
                self.actions.push(Action::EnsureCanaryService {
                    revision: rev.clone(),
                });
                changed = true;
            }
            if !self.stable_selected(&c.stable_revision) && !c.stable_revision.is_empty() {
                self.actions.push(Action::PatchStableService {
                    revision: c.stable_revision.clone(),
                });
                changed = true;
            }
        }
        if changed {
            return true;
        }
        let (_, matches) = self.spec.step(index);
        let weight = step_weight(step);
        if let Some((_, class)) = tr.ingress {
            match &self.obs.traffic.canary_ingress {
                None => {
                    let annotations =
                        canary_ingress_annotations(class, &BTreeMap::new(), Some(0), &[]);
                    self.actions
                        .push(Action::CreateCanaryIngress { annotations });
                    return true;
                }
                Some(current) => {
                    let want = canary_ingress_annotations(class, current, weight, matches);
                    if &want != current {
                        self.actions
                            .push(Action::PatchCanaryIngress { annotations: want });
                        return true;
                    }
                }
            }
        }
        if tr.http_route.is_some()
            && let Some(r) = &self.obs.traffic.http_route
        {
            // Matches win over a weight (the Gateway API cannot do both in one rule).
            let want = if !matches.is_empty() {
                RouteWant::Matches(matches)
            } else if let Some(w) = weight {
                RouteWant::Weight(w)
            } else {
                return false;
            };
            let rules = http_route_rules(
                &r.rules,
                &tr.service,
                &canary_service_name(&tr.service),
                want,
            );
            if rules != r.rules {
                self.actions.push(Action::SetHttpRouteRules { rules });
                return true;
            }
        }
        false
    }

    /// Kruise's `FinalisingTrafficRouting`: stable Service restored, canary Ingress and
    /// Service removed, one change (and grace period) at a time.
    fn clear_traffic(&mut self) {
        if !self.stable_restored() {
            self.actions.push(Action::RestoreStableService);
        } else if self.obs.traffic.canary_ingress.is_some() {
            self.actions.push(Action::RemoveCanaryIngress);
        } else if let Some(rules) = self.restored_route() {
            self.actions.push(Action::SetHttpRouteRules { rules });
        } else if self.obs.traffic.canary_service.is_some() {
            self.actions.push(Action::RemoveCanaryService);
        }
        self.grace();
    }

    fn fail(&mut self, w: &WorkloadObs, mut c: CanaryRun, index: i64, desired: i64) {
        let n = self.spec.steps.len();
        let pods = if self.obs.not_ready_pods.is_empty() {
            String::new()
        } else {
            format!("; not ready: {}", self.obs.not_ready_pods.join(", "))
        };
        let reason = format!(
            "Rollout failed in step({index}/{n}): {} of {desired} canary pods ready within {}s{pods}",
            w.updated_ready.min(desired),
            self.spec.progress_deadline_secs
        );
        c.finalising_step = None;
        self.s.canary = Some(c);
        self.s.failure = Some(Failure {
            revision: w.revision.clone(),
            reason: reason.clone(),
        });
        self.s
            .set_progress(true, Progress::Cancelling, &reason, self.now);
        self.actions.push(Action::Rollback { reason });
    }

    fn rolled_back(&mut self, w: &WorkloadObs) {
        let failed = self.s.failure.as_ref().map(|f| f.revision.clone());
        if failed.as_deref() == Some(w.revision.as_str()) {
            return;
        }
        let Some(c) = self.s.canary.clone() else {
            return;
        };
        if w.pod_hash.as_deref() == Some(c.stable_revision.as_str()) {
            // Git was reverted: the workload runs the stable template again.
            self.s.failure = None;
            if let Some(c) = self.s.canary.as_mut() {
                c.canary_revision = w.revision.clone();
                c.finalising_step = None;
            }
            self.s.set_progress(
                true,
                Progress::Cancelling,
                "The workload has been rolled back and the rollout process will be canceled",
                self.now,
            );
        } else {
            // Another template: a new run from the stable revision.
            self.s.failure = None;
            if let Some(c) = self.s.canary.as_mut() {
                c.finalising_step = Some(FinalisingStep::End);
            }
            self.s.target_commit = w.commit.clone();
            self.s.set_progress(
                true,
                Progress::Initializing,
                "Workload is continuous release",
                self.now,
            );
        }
    }

    /// Runs the finalising steps of `reason`, one change at a time; true once all are done.
    fn finalise(&mut self, reason: FinaliseReason, w: &WorkloadObs) -> bool {
        let Some(mut c) = self.s.canary.clone() else {
            return true;
        };
        if c.finalising_step.is_none() || c.finalising_step == Some(FinalisingStep::End) {
            if c.finalising_step == Some(FinalisingStep::End) && reason != FinaliseReason::Success {
                // A finished sequence of another kind: start this one.
                c.finalising_step = None;
            }
            if c.finalising_step.is_none() {
                c.finalising_step = Some(reason.next(None));
                c.step.last_update_time = self.now;
            }
        }
        // At most one step per pass moves on without acting (each change waits its grace).
        for _ in 0..reason.sequence().len() + 1 {
            let Some(step) = c.finalising_step else {
                break;
            };
            if step == FinalisingStep::End {
                self.s.canary = Some(c);
                return true;
            }
            match self.finalising(step, w) {
                StepDone::Yes => {
                    c.finalising_step = Some(reason.next(Some(step)));
                    c.step.last_update_time = self.now;
                    if c.finalising_step == Some(FinalisingStep::End) {
                        self.s.canary = Some(c);
                        return true;
                    }
                }
                StepDone::No => break,
            }
        }
        self.s.canary = Some(c);
        false
    }

    fn finalising(&mut self, step: FinalisingStep, w: &WorkloadObs) -> StepDone {
        use FinalisingStep::*;
        let canary_style = self.spec.style == RollingStyle::Canary;
        match step {
            RestoreStableService => {
                if self.spec.traffic.is_some() && !self.stable_restored() {
                    self.actions.push(Action::RestoreStableService);
                    self.grace();
                    return StepDone::No;
                }
            }
            RouteTrafficToStable => {
                if self.obs.traffic.canary_ingress.is_some() {
                    self.actions.push(Action::RemoveCanaryIngress);
                    self.grace();
                    return StepDone::No;
                }
                if let Some(rules) = self.restored_route() {
                    self.actions.push(Action::SetHttpRouteRules { rules });
                    self.grace();
                    return StepDone::No;
                }
            }
            RemoveCanaryService => {
                if self.obs.traffic.canary_service.is_some() {
                    self.actions.push(Action::RemoveCanaryService);
                    self.grace();
                    return StepDone::No;
                }
            }
            ScaleCanaryAway => {
                let canary_left = if canary_style {
                    w.canary_workload.is_some()
                } else {
                    w.updated > 0
                };
                if canary_left {
                    self.actions.push(Action::ScaleCanaryAway);
                    return StepDone::No;
                }
            }
            ResumeWorkload => {
                if w.paused {
                    self.actions.push(Action::Resume);
                    return StepDone::No;
                }
                if !w.promoted {
                    return StepDone::No;
                }
            }
            ReleaseWorkloadControl => {
                if w.held || w.under_control || w.canary_workload.is_some() {
                    self.actions.push(Action::Release);
                    return StepDone::No;
                }
            }
            End => {}
        }
        StepDone::Yes
    }
}

// ---------------------------------------------------------------------------------------------
// The partition-style Deployment: rollgit moves its ReplicaSets, as Kruise's own Deployment
// controller does (`pkg/controller/deployment/rolling.go`).

/// One ReplicaSet of a partition-style Deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReplicaSetObs {
    /// `spec.replicas`.
    pub replicas: i64,
    /// `status.availableReplicas`.
    pub available: i64,
}

/// `maxSurge` and `maxUnavailable` of a Deployment's rolling update as the Deployment
/// controller resolves them (`ResolveFenceposts`): percents strict, surge up, unavailable
/// down, both 0 makes unavailable 1; the defaults are 25%.
///
/// ```
/// use rollgit_core::{intstr::IntOrString, kruise_run::deployment_fenceposts};
/// assert_eq!(deployment_fenceposts(None, None, 4), (1, 1));
/// assert_eq!(deployment_fenceposts(Some(&IntOrString::Int(0)), Some(&IntOrString::Int(0)), 4), (0, 1));
/// ```
pub fn deployment_fenceposts(
    max_surge: Option<&IntOrString>,
    max_unavailable: Option<&IntOrString>,
    replicas: i64,
) -> (i64, i64) {
    let quarter = IntOrString::str("25%");
    let surge = intstr::strict(max_surge.unwrap_or(&quarter), replicas, true).unwrap_or(0);
    let unavailable =
        intstr::strict(max_unavailable.unwrap_or(&quarter), replicas, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// One reconcile of a partition-style Deployment (Kruise's `rolloutRolling` with its partition
/// `limit` of new pods): the new ReplicaSet's and each old one's next `spec.replicas`. The new
/// one scales up first within the surge and the limit; the old ones scale down (the unhealthy
/// pods first) while availability allows, and scale up when the limit was lowered.
///
/// ```
/// use rollgit_core::kruise_run::{ReplicaSetObs, partition_deployment_scale};
/// let old = ReplicaSetObs { replicas: 4, available: 4 };
/// // 4 pods, limit 1, surge 1, unavailable 1: the new ReplicaSet goes to 1 first ...
/// assert_eq!(partition_deployment_scale(4, 1, 1, 1, ReplicaSetObs::default(), &[old]), (1, vec![4]));
/// // ... and once it is available, the old one goes to 3.
/// let new = ReplicaSetObs { replicas: 1, available: 1 };
/// assert_eq!(partition_deployment_scale(4, 1, 1, 1, new, &[old]), (1, vec![3]));
/// ```
pub fn partition_deployment_scale(
    replicas: i64,
    surge: i64,
    unavailable: i64,
    limit: i64,
    new: ReplicaSetObs,
    olds: &[ReplicaSetObs],
) -> (i64, Vec<i64>) {
    let mut old: Vec<i64> = olds.iter().map(|o| o.replicas).collect();
    let old_total: i64 = old.iter().sum();
    let all = old_total + new.replicas;
    let limit = limit.clamp(0, replicas);
    if new.replicas > limit && !olds.is_empty() {
        // The limit was lowered (rollgit scales a failed canary away): the old pods come back
        // first, then the new ones go.
        let want_old = replicas - limit;
        if old_total < want_old {
            if let Some(i) = (0..old.len()).max_by_key(|i| (old[*i], std::cmp::Reverse(*i))) {
                old[i] += want_old - old_total;
            }
            return (new.replicas, old);
        }
        return (limit, old);
    }
    // reconcileNewReplicaSet.
    let new_target = if new.replicas > replicas {
        replicas
    } else if all > new.replicas {
        if new.replicas >= limit {
            new.replicas
        } else {
            let max_total = replicas + surge;
            if all >= max_total {
                new.replicas
            } else {
                let up = (max_total - all).min(replicas - new.replicas);
                (new.replicas + up).min(limit)
            }
        }
    } else {
        // Only the new ReplicaSet is active.
        replicas.min(limit.max(new.replicas))
    };
    if new_target != new.replicas {
        return (new_target, old);
    }
    if old_total == 0 {
        return (new.replicas, old);
    }
    // reconcileOldReplicaSets: the partition's limit for the old ones.
    let new_desired = limit.max(new.replicas);
    let old_desired = replicas - new_desired;
    let scale_down_limit = old_total - old_desired;
    if scale_down_limit <= 0 {
        // The limit was lowered: give the old pods back, to the biggest ReplicaSet.
        let up = -scale_down_limit;
        if up > 0
            && let Some(i) = (0..old.len()).max_by_key(|i| (old[*i], std::cmp::Reverse(*i)))
        {
            old[i] += up;
        }
        return (new.replicas, old);
    }
    let min_available = replicas - unavailable;
    let new_unavailable = new.replicas - new.available;
    let mut budget = (all - min_available - new_unavailable).min(scale_down_limit);
    if budget <= 0 {
        return (new.replicas, old);
    }
    // Unhealthy old pods first.
    for (i, o) in olds.iter().enumerate() {
        if budget <= 0 {
            break;
        }
        let unhealthy = (o.replicas - o.available).max(0).min(budget);
        old[i] -= unhealthy;
        budget -= unhealthy;
    }
    // Then available ones, while availability allows.
    let available: i64 = olds
        .iter()
        .zip(&old)
        .map(|(o, r)| o.available.min(*r))
        .sum::<i64>()
        + new.available;
    let mut down = (available - min_available).min(budget).max(0);
    for r in old.iter_mut() {
        if down <= 0 {
            break;
        }
        let d = (*r).min(down);
        *r -= d;
        down -= d;
    }
    (new.replicas, old)
}
