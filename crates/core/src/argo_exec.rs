//! One pass of rollgit's controller of Argo Rollouts canaries: the pure decision.
//!
//! The shell observes a Rollout (its spec, its recorded status, the ReplicaSets it owns, its
//! Services and the Deployment of a `workloadRef`), calls [`reconcile`] with `now`, performs
//! the absolute [`Action`]s in order and writes the returned [`Status`] once. The rules are
//! Argo Rollouts' (`rollout/canary.go`, `rollout/replicaset.go`, `rollout/service.go`,
//! `rollout/trafficrouting.go`, `rollout/pause.go`, `rollout/sync.go`,
//! `utils/conditions/conditions.go`, `utils/rollout/rolloututil.go`; ROLLOUT-SEMANTICS.md A):
//!
//! 1. A new pod template or new steps reset the status (pauses, abort, `promoteFull` cleared,
//!    `currentStepIndex` 0, or `len(steps)` when the template is the stable one again) and
//!    create the ReplicaSet of the template at 0 replicas; that pass does nothing else.
//! 2. Services: the stable Service selects the stable ReplicaSet, the canary Service the new
//!    one (the canary Service returns to stable on an abort without traffic routing); a Service
//!    not yet managed switches only to a fully available ReplicaSet, a managed one to a
//!    partially available one.
//! 3. Traffic routing: the weight of the last completed `setWeight` while the step's replica
//!    counts are not reached, the step's weight once they are, 100 after the last step; 0 while
//!    aborted (walked down through the steps with `dynamicStableScale`) or while the canary has
//!    no available pod; the canary route is removed once the rollout is fully promoted. A weight
//!    is only set when the stable ReplicaSet can take the rest of the traffic.
//! 4. ReplicaSets, one kind of change per pass: the stable ReplicaSet, else the new one, else
//!    the older ones (unhealthy pods first, then at most `available − (R − maxUnavailable)`),
//!    with the counts of [`argo::basic_canary_counts`] or [`argo::traffic_routed_counts`]. With
//!    traffic routing (and without `dynamicStableScale`) an aborted canary is scaled down
//!    `abortScaleDownDelaySeconds` (default 30) after the stable ReplicaSet is fully available,
//!    and a replaced stable `scaleDownDelaySeconds` (default 30) after the promotion; both
//!    deadlines are annotations on the ReplicaSet and timers of the pass.
//! 5. Pause steps add the `CanaryPauseStep` pause condition when nothing was scaled; a timed
//!    pause completes once `now` is past its start plus the duration (the pass asks to be
//!    woken then), an indefinite one when a promote removed the condition.
//! 6. Status: `promoteFull` jumps to the end; the new ReplicaSet becomes stable when every step
//!    is done (or at once on the first deploy) and it is fully available; an abort resets the
//!    step index; a completed step advances it. Then the progress deadline (and with
//!    `progressDeadlineAbort` the abort it causes), the abort and pause fields, the conditions
//!    (`Progressing`, `Available`, `Healthy`, `Completed`, `Paused`) and `phase`/`message`.
//!
//! Times are Unix seconds. The same inputs give the same output: timestamps change only when
//! what they date changes, so a pass that changes nothing writes nothing.

use crate::argo::{self, BasicCanaryInput, CanarySpec, PauseReason, ReplicaSet, WeightStatus};
use crate::intstr as argo_intstr;

/// Argo's default `progressDeadlineSeconds`.
pub const DEFAULT_PROGRESS_DEADLINE_SECONDS: i64 = 600;
/// Argo's default `scaleDownDelaySeconds` (traffic routing) and `abortScaleDownDelaySeconds`.
pub const DEFAULT_SCALE_DOWN_DELAY_SECONDS: i64 = 30;
/// Argo's default `revisionHistoryLimit`.
pub const DEFAULT_REVISION_HISTORY_LIMIT: usize = 10;

/// How a `workloadRef`'s Deployment is scaled down (`workloadRef.scaleDown`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ScaleDown {
    /// `never` (Argo's default): the Deployment is left alone.
    #[default]
    Never,
    /// `onsuccess`: scaled to 0 once the first revision is healthy.
    OnSuccess,
    /// `progressively`: scaled down as the first revision's pods become ready.
    Progressively,
}

/// The Deployment a `workloadRef` names, as observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadObs {
    /// `workloadRef.scaleDown`.
    pub scale_down: ScaleDown,
    /// Its `spec.replicas`.
    pub replicas: i64,
}

/// A ReplicaSet the Rollout owns, as observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ObservedRs {
    /// Its `rollouts-pod-template-hash`.
    pub hash: String,
    /// Its `rollout.argoproj.io/revision`.
    pub revision: i64,
    /// `spec.replicas`.
    pub spec: i64,
    /// `status.replicas`.
    pub replicas: i64,
    /// `status.readyReplicas`.
    pub ready: i64,
    /// `status.availableReplicas`.
    pub available: i64,
    /// Its `scale-down-deadline` annotation (Unix seconds).
    pub scale_down_deadline: Option<i64>,
}

impl ObservedRs {
    fn arith(&self) -> ReplicaSet {
        ReplicaSet::new(self.spec, self.available)
    }
}

/// A Service the canary names (`stableService`, `canaryService`), as observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ServiceObs {
    /// Its name.
    pub name: String,
    /// Its selector's `rollouts-pod-template-hash`, if any.
    pub selector: Option<String>,
    /// It carries the `argo-rollouts.argoproj.io/managed-by-rollouts` annotation.
    pub managed: bool,
}

/// What a pass knows of the Rollout's spec (and what it observed besides ReplicaSets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSpec {
    /// The Rollout's name (ReplicaSets are `<name>-<hash>`).
    pub name: String,
    /// The canary strategy, with `replicas`.
    pub canary: CanarySpec,
    /// `spec.paused`.
    pub paused: bool,
    /// `progressDeadlineSeconds` (default [`DEFAULT_PROGRESS_DEADLINE_SECONDS`]).
    pub progress_deadline_seconds: i64,
    /// `progressDeadlineAbort`.
    pub progress_deadline_abort: bool,
    /// The hash of the pod template in effect (the new ReplicaSet's).
    pub pod_hash: String,
    /// The hash of the steps (`currentStepHash`).
    pub step_hash: String,
    /// `metadata.generation`.
    pub generation: i64,
    /// `revisionHistoryLimit` (default [`DEFAULT_REVISION_HISTORY_LIMIT`]).
    pub revision_history_limit: usize,
    /// `canary.stableService`, observed.
    pub stable_service: Option<ServiceObs>,
    /// `canary.canaryService`, observed.
    pub canary_service: Option<ServiceObs>,
    /// The `workloadRef` Deployment, observed.
    pub workload: Option<WorkloadObs>,
}

impl ExecSpec {
    /// A spec with defaults for everything but the canary strategy and the hashes.
    pub fn new(name: &str, canary: CanarySpec, pod_hash: &str, step_hash: &str) -> Self {
        ExecSpec {
            name: name.to_string(),
            canary,
            paused: false,
            progress_deadline_seconds: DEFAULT_PROGRESS_DEADLINE_SECONDS,
            progress_deadline_abort: false,
            pod_hash: pod_hash.to_string(),
            step_hash: step_hash.to_string(),
            generation: 1,
            revision_history_limit: DEFAULT_REVISION_HISTORY_LIMIT,
            stable_service: None,
            canary_service: None,
            workload: None,
        }
    }
}

/// One end of the traffic split (`status.canary.weights.{canary,stable}`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct WeightDestination {
    /// The weight.
    pub weight: i64,
    /// The ReplicaSet's hash.
    pub pod_template_hash: String,
    /// The Service.
    pub service_name: String,
}

/// `status.canary.weights`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Weights {
    /// To the canary.
    pub canary: WeightDestination,
    /// To the stable.
    pub stable: WeightDestination,
}

/// A `status.conditions[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// `Progressing`, `Available`, `Healthy`, `Completed`, `Paused`, `InvalidSpec`,
    /// `ReplicaFailure`.
    pub kind: String,
    /// `True`, `False` or `Unknown`.
    pub status: String,
    /// CamelCase reason.
    pub reason: String,
    /// For people.
    pub message: String,
    /// `lastUpdateTime`.
    pub last_update: i64,
    /// `lastTransitionTime`.
    pub last_transition: i64,
}

/// `status.phase`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// Healthy.
    Healthy,
    /// Progressing.
    #[default]
    Progressing,
    /// Paused.
    Paused,
    /// Degraded.
    Degraded,
}

impl Phase {
    /// The phase as Argo writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Healthy => "Healthy",
            Phase::Progressing => "Progressing",
            Phase::Paused => "Paused",
            Phase::Degraded => "Degraded",
        }
    }

    /// The phase Argo wrote, if any.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "Healthy" => Phase::Healthy,
            "Progressing" => Phase::Progressing,
            "Paused" => Phase::Paused,
            "Degraded" => Phase::Degraded,
            _ => return None,
        })
    }
}

/// The status fields the controller owns, typed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Status {
    /// `abort`.
    pub abort: bool,
    /// `abortedAt`.
    pub aborted_at: Option<i64>,
    /// `pauseConditions`.
    pub pause_conditions: Vec<argo::PauseCondition>,
    /// `controllerPause`.
    pub controller_pause: bool,
    /// `currentPodHash`.
    pub current_pod_hash: String,
    /// `currentStepHash`.
    pub current_step_hash: String,
    /// `currentStepIndex` (absent without steps).
    pub current_step_index: Option<usize>,
    /// `stableRS`.
    pub stable_rs: String,
    /// `promoteFull`.
    pub promote_full: bool,
    /// `replicas`.
    pub replicas: i64,
    /// `updatedReplicas`.
    pub updated_replicas: i64,
    /// `readyReplicas`.
    pub ready_replicas: i64,
    /// `availableReplicas`.
    pub available_replicas: i64,
    /// `HPAReplicas`.
    pub hpa_replicas: i64,
    /// `canary.weights` (traffic routing only).
    pub weights: Option<Weights>,
    /// `conditions`.
    pub conditions: Vec<Condition>,
    /// `phase`.
    pub phase: Phase,
    /// `message`.
    pub message: String,
    /// `observedGeneration`.
    pub observed_generation: Option<i64>,
}

impl Status {
    /// The condition of `kind`.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    fn pause_condition(&self, reason: PauseReason) -> Option<&argo::PauseCondition> {
        self.pause_conditions.iter().find(|c| c.reason == reason)
    }
}

/// What the shell does, in order. Every action is absolute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create the ReplicaSet of the current template (`<rollout>-<hash>`).
    CreateReplicaSet {
        /// Its hash.
        hash: String,
        /// Its `rollout.argoproj.io/revision`.
        revision: i64,
        /// Its `spec.replicas`.
        replicas: i64,
    },
    /// Set a ReplicaSet's revision (a template that comes back gets the next revision).
    SetRevision {
        /// Its hash.
        hash: String,
        /// The revision.
        revision: i64,
    },
    /// Scale a ReplicaSet to `replicas`.
    ScaleReplicaSet {
        /// Its hash.
        hash: String,
        /// The count.
        replicas: i64,
    },
    /// Set (or, with `None`, remove) a ReplicaSet's `scale-down-deadline` annotation.
    SetScaleDownDeadline {
        /// Its hash.
        hash: String,
        /// Unix seconds.
        at: Option<i64>,
    },
    /// Delete an old, empty ReplicaSet (`revisionHistoryLimit`).
    DeleteReplicaSet {
        /// Its hash.
        hash: String,
    },
    /// Point a Service's `rollouts-pod-template-hash` selector at a ReplicaSet.
    SetServiceSelector {
        /// The Service.
        service: String,
        /// The hash.
        hash: String,
    },
    /// Route `weight` of the traffic to the canary (the rest to the stable).
    SetCanaryWeight {
        /// The canary's weight.
        weight: i64,
        /// Where the canary weight goes.
        canary_hash: String,
        /// Where the rest goes.
        stable_hash: String,
    },
    /// The rollout is fully promoted: remove the canary route (all traffic to stable).
    RemoveCanaryRoute,
    /// Scale the `workloadRef` Deployment.
    ScaleWorkload {
        /// The count.
        replicas: i64,
    },
}

/// An Event to record on the Rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// CamelCase reason.
    pub reason: String,
    /// For people.
    pub message: String,
    /// Warning (else Normal).
    pub warning: bool,
}

/// An aborted canary, for the record stage (Git revert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aborted {
    /// The canary's hash.
    pub canary_hash: String,
    /// The stable's hash.
    pub stable_hash: String,
    /// Why (the `Progressing` condition's message).
    pub message: String,
}

/// The result of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// What to do, in order.
    pub actions: Vec<Action>,
    /// The status to record.
    pub status: Status,
    /// Wake the pass at this time (a timed pause, a deadline), if nothing else does.
    pub requeue_at: Option<i64>,
    /// Events.
    pub events: Vec<Event>,
    /// The canary is aborted (set on every pass while it is).
    pub aborted: Option<Aborted>,
}

// ---------------------------------------------------------------------------------------
// Messages (`utils/conditions/conditions.go`)
// ---------------------------------------------------------------------------------------

const PROGRESSING: &str = "Progressing";
const AVAILABLE: &str = "Available";
const HEALTHY: &str = "Healthy";
const COMPLETED: &str = "Completed";
const PAUSED: &str = "Paused";
const INVALID_SPEC: &str = "InvalidSpec";

const ABORTED_REASON: &str = "RolloutAborted";
const TIMED_OUT_REASON: &str = "ProgressDeadlineExceeded";
const PAUSED_REASON: &str = "RolloutPaused";
const RESUMED_REASON: &str = "RolloutResumed";
const RETRY_REASON: &str = "RolloutRetry";
const NEW_RS_AVAILABLE_REASON: &str = "NewReplicaSetAvailable";
const RS_UPDATED_REASON: &str = "ReplicaSetUpdated";
const RS_NOT_AVAILABLE_REASON: &str = "ReplicaSetNotAvailable";

/// The `rollouts-pod-template-hash` ReplicaSet name of a Rollout.
pub fn replica_set_name(rollout: &str, hash: &str) -> String {
    format!("{rollout}-{hash}")
}

/// `CanaryStepString`: how an event names a step.
pub fn step_string(step: &argo::CanaryStep) -> String {
    if let Some(w) = step.set_weight {
        return format!("setWeight: {w}");
    }
    if let Some(p) = &step.pause {
        return match p {
            None => "pause".to_string(),
            Some(argo_intstr::IntOrString::Int(i)) => format!("pause: {i}"),
            Some(argo_intstr::IntOrString::Str(d)) => format!("pause: {d}"),
        };
    }
    if let Some(s) = &step.set_canary_scale {
        if let Some(r) = s.replicas {
            return format!("setCanaryScale{{replicas: {r}}}");
        }
        if let Some(w) = s.weight {
            return format!("setCanaryScale{{weight: {w}}}");
        }
        return "setCanaryScale{matchTrafficWeight: true}".to_string();
    }
    "unknown step".to_string()
}

// ---------------------------------------------------------------------------------------
// The pass
// ---------------------------------------------------------------------------------------

/// What a pass collects about pauses and the abort before writing them
/// (`rollout/pause.go`'s pauseContext).
#[derive(Default)]
struct PauseCtx {
    add: Vec<PauseReason>,
    remove: Vec<PauseReason>,
    clear: bool,
    add_abort: Option<String>,
    remove_abort: bool,
}

struct Pass<'a> {
    spec: &'a ExecSpec,
    prev: &'a Status,
    now: i64,
    r: i64,
    n: usize,
    new_rs: Option<&'a ObservedRs>,
    stable_rs: Option<&'a ObservedRs>,
    others: Vec<&'a ObservedRs>,
    all: &'a [ObservedRs],
    surge: i64,
    unavailable: i64,
    pause: PauseCtx,
    out: Decision,
}

/// One pass of the canary controller. See the module documentation for the order of things.
///
/// ```
/// use rollgit_core::argo::{CanarySpec, CanaryStep};
/// use rollgit_core::argo_exec::*;
/// let canary = CanarySpec { replicas: 3, steps: vec![CanaryStep::weight(50)], ..Default::default() };
/// let spec = ExecSpec::new("web", canary, "abc", "s1");
/// // The first pass creates the ReplicaSet of the template and records its hash.
/// let d = reconcile(&spec, &Status::default(), &[], 100);
/// assert_eq!(d.actions, vec![Action::CreateReplicaSet { hash: "abc".into(), revision: 1, replicas: 0 }]);
/// assert_eq!(d.status.current_pod_hash, "abc");
/// ```
pub fn reconcile(spec: &ExecSpec, prev: &Status, rss: &[ObservedRs], now: i64) -> Decision {
    let r = spec.canary.replicas;
    let (surge, _) = argo::resolve_fenceposts(
        spec.canary.max_surge.as_ref(),
        spec.canary.max_unavailable.as_ref(),
        r,
    );
    let new_rs = rss.iter().find(|rs| rs.hash == spec.pod_hash);
    let stable_rs = (!prev.stable_rs.is_empty())
        .then(|| rss.iter().find(|rs| rs.hash == prev.stable_rs))
        .flatten();
    let mut others: Vec<&ObservedRs> = rss
        .iter()
        .filter(|rs| rs.hash != spec.pod_hash && rs.hash != prev.stable_rs)
        .collect();
    // Newest first, as Argo scales older ReplicaSets down.
    others.sort_by(|a, b| b.revision.cmp(&a.revision).then(a.hash.cmp(&b.hash)));
    let mut pass = Pass {
        spec,
        prev,
        now,
        r,
        n: spec.canary.steps.len(),
        new_rs,
        stable_rs,
        others,
        all: rss,
        surge,
        unavailable: argo::max_unavailable(&spec.canary),
        pause: PauseCtx::default(),
        out: Decision {
            actions: Vec::new(),
            status: prev.clone(),
            requeue_at: None,
            events: Vec::new(),
            aborted: None,
        },
    };
    pass.run();
    pass.out
}

impl<'a> Pass<'a> {
    fn act(&mut self, a: Action) {
        self.out.actions.push(a);
    }

    fn event(&mut self, reason: &str, message: String, warning: bool) {
        self.out.events.push(Event {
            reason: reason.to_string(),
            message,
            warning,
        });
    }

    fn wake_at(&mut self, at: i64) {
        self.out.requeue_at = Some(self.out.requeue_at.map_or(at, |t| t.min(at)));
    }

    fn aborted(&self) -> bool {
        self.pause.add_abort.is_some() || (!self.pause.remove_abort && self.prev.abort)
    }

    fn routed(&self) -> bool {
        self.spec.canary.traffic_routing
    }

    fn dynamic(&self) -> bool {
        self.routed() && self.spec.canary.dynamic_stable_scale
    }

    fn max_weight(&self) -> i64 {
        self.spec.canary.max_weight
    }

    fn fully_promoted(&self) -> bool {
        !self.prev.stable_rs.is_empty() && self.prev.stable_rs == self.spec.pod_hash
    }

    fn revision(&self) -> i64 {
        self.new_rs.map_or(0, |rs| rs.revision)
    }

    /// The stable ReplicaSet when it exists and is not the new one (`CheckStableRSExists`).
    fn distinct_stable(&self) -> Option<&'a ObservedRs> {
        match (self.stable_rs, self.new_rs) {
            (Some(s), Some(n)) if s.hash == n.hash => None,
            (s, _) => s,
        }
    }

    fn weight_status(&self, status: &Status) -> WeightStatus {
        WeightStatus {
            current_step_index: status.current_step_index.unwrap_or(0),
            promote_full: status.promote_full,
            aborted: self.aborted(),
            has_stable: self.stable_rs.is_some(),
            current_is_stable: self.fully_promoted(),
        }
    }

    /// (canary, stable) counts for this pass, with `weights` for traffic routing.
    fn counts(&self, weights: Option<&Weights>) -> (i64, i64) {
        let ws = self.weight_status(self.prev);
        if self.routed() {
            let tw = weights.map(|w| argo::TrafficWeights {
                canary: w.canary.weight,
                stable: w.stable.weight,
            });
            return argo::traffic_routed_counts(&self.spec.canary, &ws, tw);
        }
        let (_, weight) = argo::canary_replicas_or_weight(&self.spec.canary, &ws);
        let input = BasicCanaryInput {
            replicas: self.r,
            weight,
            max_surge: self.surge,
            max_unavailable: self.unavailable,
            new_rs: self.new_rs.map(ObservedRs::arith),
            stable_rs: self.distinct_stable().map(ObservedRs::arith),
            older: self.others.iter().map(|rs| rs.arith()).collect(),
        };
        argo::basic_canary_counts(&input)
    }

    fn run(&mut self) {
        let hash = self.spec.pod_hash.clone();
        let changed = self.prev.current_pod_hash != hash
            || self.prev.current_step_hash != self.spec.step_hash;
        if self.new_rs.is_none() {
            let revision = self.all.iter().map(|rs| rs.revision).max().unwrap_or(0) + 1;
            self.act(Action::CreateReplicaSet {
                hash: hash.clone(),
                revision,
                replicas: 0,
            });
            let name = replica_set_name(&self.spec.name, &hash);
            self.event(
                "NewReplicaSetCreated",
                format!("Created ReplicaSet {name} (revision {revision})"),
                false,
            );
        } else if let Some(rs) = self.new_rs {
            let max_other = self.all.iter().map(|r| r.revision).max().unwrap_or(0);
            if rs.revision < max_other {
                self.act(Action::SetRevision {
                    hash: hash.clone(),
                    revision: max_other + 1,
                });
            }
        }
        if changed {
            self.reset_status();
            self.persist();
            return;
        }
        if self.new_rs.is_none() {
            self.persist();
            return;
        }
        self.revision_history();
        self.services();
        if self.routed() {
            self.traffic();
        }
        let scaled = self.replica_sets();
        if !scaled {
            self.canary_pause();
        }
        self.sync_status();
    }

    /// `resetRolloutStatus` for a new template or new steps.
    fn reset_status(&mut self) {
        let st = &mut self.out.status;
        st.current_pod_hash = self.spec.pod_hash.clone();
        st.current_step_hash = self.spec.step_hash.clone();
        st.promote_full = false;
        st.current_step_index = (self.n > 0).then_some(0);
        self.pause.clear = true;
        self.pause.remove_abort = true;
        if self.n > 0 && self.new_rs.is_some() && self.prev.stable_rs == self.spec.pod_hash {
            st.current_step_index = Some(self.n);
            self.event(
                "SkipSteps",
                "Rollback to stable ReplicaSets".to_string(),
                false,
            );
        }
        if self.prev.current_pod_hash != self.spec.pod_hash
            && !self.prev.current_pod_hash.is_empty()
        {
            let max = self.all.iter().map(|rs| rs.revision).max().unwrap_or(0);
            let revision = match self.new_rs {
                Some(rs) if rs.revision >= max => rs.revision,
                _ => max + 1,
            };
            self.event(
                "RolloutUpdated",
                format!("Rollout updated to revision {revision}"),
                false,
            );
        }
    }

    /// `reconcileRevisionHistoryLimit`: delete the oldest empty ReplicaSets beyond the limit.
    fn revision_history(&mut self) {
        let mut old: Vec<&ObservedRs> = self.others.clone();
        old.sort_by(|a, b| a.revision.cmp(&b.revision).then(a.hash.cmp(&b.hash)));
        let limit = self.spec.revision_history_limit;
        if old.len() <= limit {
            return;
        }
        let excess = old.len() - limit;
        for rs in old.into_iter().take(excess) {
            if rs.spec == 0 && rs.replicas == 0 {
                self.act(Action::DeleteReplicaSet {
                    hash: rs.hash.clone(),
                });
            }
        }
    }

    /// `ensureSVCTargets`: point `svc` at `rs`.
    fn ensure_service(&mut self, svc: Option<&ServiceObs>, rs: Option<&ObservedRs>, check: bool) {
        let (Some(svc), Some(rs)) = (svc, rs) else {
            return;
        };
        if svc.selector.as_deref() == Some(rs.hash.as_str()) {
            return;
        }
        // Adopting a Service: only onto a fully available ReplicaSet.
        let fully = rs.spec != 0 && rs.available != 0 && rs.spec <= rs.available;
        if !svc.managed && check && !fully {
            return;
        }
        if check && rs.available <= 0 {
            return;
        }
        self.act(Action::SetServiceSelector {
            service: svc.name.clone(),
            hash: rs.hash.clone(),
        });
    }

    /// `reconcileStableAndCanaryService`.
    fn services(&mut self) {
        let stable_svc = self.spec.stable_service.clone();
        let canary_svc = self.spec.canary_service.clone();
        self.ensure_service(stable_svc.as_ref(), self.stable_rs, true);
        if self.aborted() && !self.routed() {
            self.ensure_service(canary_svc.as_ref(), self.stable_rs, true);
            return;
        }
        // Argo points the canary Service at the new ReplicaSet here and the traffic router
        // points it back at the stable while aborted, two writes per pass; rollgit leaves it
        // to the traffic router.
        if self.rolling_back_dynamically().is_some() || self.aborted() {
            return;
        }
        self.ensure_service(canary_svc.as_ref(), self.new_rs, true);
    }

    /// `IsDynamicallyRollingBackToStable`: the template went back to the stable one mid-update
    /// with `dynamicStableScale`; returns the previous canary's hash.
    fn rolling_back_dynamically(&self) -> Option<String> {
        if !self.fully_promoted() || !self.dynamic() {
            return None;
        }
        let w = self.prev.weights.as_ref()?;
        let current = &w.canary.pod_template_hash;
        if *current == self.spec.pod_hash {
            return None;
        }
        let new = self.new_rs?;
        if new.available >= self.r {
            return None;
        }
        Some(current.clone())
    }

    /// `calculateDesiredWeightOnAbortOrStableRollback`.
    fn abort_weight(&self) -> i64 {
        let (Some(stable), Some(new)) = (self.stable_rs, self.new_rs) else {
            return 0;
        };
        if !self.dynamic() || self.r == 0 {
            return 0;
        }
        let m = self.max_weight();
        let desired =
            argo::abort_walk_down_weight(&self.spec.canary, stable.available, new.available);
        let expected = (m - (m * stable.available) / self.r).max(0);
        let Some(w) = &self.prev.weights else {
            return expected.max(desired);
        };
        let current = w.canary.weight;
        if desired <= 0 {
            return expected.min(current);
        }
        let stable_weight = (m * stable.available) / self.r;
        if stable_weight < m - desired {
            return current;
        }
        desired.min(current)
    }

    /// `checkReplicasAvailable`: can `rs` take `weight` of the traffic?
    fn can_take(&self, rs: Option<&ObservedRs>, weight: i64) -> bool {
        let Some(rs) = rs else { return false };
        let desired = (weight * self.r) / self.max_weight().max(1);
        rs.available >= desired
    }

    /// `reconcileTrafficRouting` (one router: the shell applies the weight to each).
    fn traffic(&mut self) {
        let m = self.max_weight();
        let index = self.prev.current_step_index;
        let mut canary_hash = self.new_rs.map(|r| r.hash.clone()).unwrap_or_default();
        let stable_hash = self.stable_rs.map(|r| r.hash.clone()).unwrap_or_default();
        let mut remove = false;
        let mut desired = 0;
        if let Some(prev_canary) = self.rolling_back_dynamically() {
            desired = self.abort_weight();
            canary_hash = prev_canary;
        } else if self.fully_promoted() {
            remove = true;
        } else if self.aborted() {
            desired = self.abort_weight();
            if !self.dynamic() || desired == 0 {
                let svc = self.spec.canary_service.clone();
                self.ensure_service(svc.as_ref(), self.stable_rs, false);
            }
        } else if self.new_rs.is_none_or(|r| r.available == 0) {
            desired = 0;
        } else if self.prev.promote_full {
            if self.dynamic() {
                desired = (m * self.new_rs.map_or(0, |r| r.available)) / self.r.max(1);
            } else if let Some(w) = &self.prev.weights {
                desired = w.canary.weight;
            }
        } else if let Some(i) = index.filter(|_| self.n > 0) {
            if !self.at_desired_counts(self.prev.weights.as_ref()) {
                desired = self.spec.canary.steps[..i.min(self.n)]
                    .iter()
                    .rev()
                    .find_map(|s| s.set_weight)
                    .unwrap_or(0);
            } else if i != self.n {
                desired = argo::current_set_weight(&self.spec.canary.steps, i, false, m);
            } else {
                desired = m;
            }
        } else if self.n == 0 {
            // No steps: a rolling update; weight follows the end of the steps.
            desired = m;
        }
        if !self.can_take(self.stable_rs, m - desired) {
            return;
        }
        if remove {
            self.act(Action::RemoveCanaryRoute);
        } else {
            self.act(Action::SetCanaryWeight {
                weight: desired,
                canary_hash: canary_hash.clone(),
                stable_hash: stable_hash.clone(),
            });
        }
        let svc = |s: &Option<ServiceObs>| s.as_ref().map(|s| s.name.clone()).unwrap_or_default();
        let weights = Weights {
            canary: WeightDestination {
                weight: desired,
                pod_template_hash: canary_hash,
                service_name: svc(&self.spec.canary_service),
            },
            stable: WeightDestination {
                weight: m - desired,
                pod_template_hash: stable_hash,
                service_name: svc(&self.spec.stable_service),
            },
        };
        if self.out.status.weights.as_ref() != Some(&weights) {
            let prev = self
                .out
                .status
                .weights
                .as_ref()
                .map_or(0, |w| w.canary.weight);
            if prev != desired || self.out.status.weights.is_none() {
                self.event(
                    "TrafficWeightUpdated",
                    format!("Traffic weight updated from {prev} to {desired}"),
                    false,
                );
            }
            self.out.status.weights = Some(weights);
        }
    }

    /// `AtDesiredReplicaCountsForCanary`.
    fn at_desired_counts(&self, weights: Option<&Weights>) -> bool {
        let (dn, ds) = self.counts(weights);
        let Some(new) = self.new_rs else { return false };
        if !(dn == new.spec && dn == new.available) {
            return false;
        }
        if !self.dynamic() {
            let Some(stable) = self.stable_rs else {
                return false;
            };
            if !(ds == stable.spec && ds == stable.replicas) {
                return false;
            }
        }
        if !self.routed() && self.others.iter().map(|rs| rs.available).sum::<i64>() != 0 {
            return false;
        }
        true
    }

    /// `shouldDelayScaleDownOnAbort`: the abort delay in seconds, when one applies.
    fn abort_delay(&self) -> Option<i64> {
        if !self.aborted() || self.stable_rs.is_none() || !self.routed() {
            return None;
        }
        let explicit = self.spec.canary.abort_scale_down_delay_seconds;
        if explicit == Some(0) {
            return None;
        }
        if self.dynamic() && explicit.is_none() {
            return None;
        }
        Some(explicit.unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS))
    }

    /// `reconcileCanaryReplicaSets`: true when something was scaled.
    fn replica_sets(&mut self) -> bool {
        if self.spec.paused {
            return false;
        }
        // removeScaleDownDeadlines: ReplicaSets in use again lose their deadline.
        let mut keep: Vec<&ObservedRs> = Vec::new();
        if let Some(n) = self.new_rs
            && self.abort_delay().is_none()
        {
            keep.push(n);
        }
        if let Some(s) = self.stable_rs
            && !keep.iter().any(|k| k.hash == s.hash)
        {
            keep.push(s);
        }
        for rs in keep {
            if rs.scale_down_deadline.is_some() {
                self.act(Action::SetScaleDownDeadline {
                    hash: rs.hash.clone(),
                    at: None,
                });
            }
        }
        // The stable ReplicaSet first (weights as recorded, so it lags the traffic shift).
        if let Some(stable) = self.distinct_stable() {
            let (_, ds) = self.counts(self.prev.weights.as_ref());
            if stable.spec != ds {
                self.act(Action::ScaleReplicaSet {
                    hash: stable.hash.clone(),
                    replicas: ds,
                });
                return true;
            }
        }
        if self.new_replica_set() {
            return true;
        }
        self.older_replica_sets()
    }

    /// `reconcileNewReplicaSet`.
    fn new_replica_set(&mut self) -> bool {
        let Some(new) = self.new_rs else {
            return false;
        };
        let weights = self.out.status.weights.clone();
        let (mut dn, _) = self.counts(weights.as_ref());
        if let Some(delay) = self.abort_delay() {
            match new.scale_down_deadline {
                Some(at) if at > self.now => {
                    self.wake_at(at);
                    return false;
                }
                Some(_) => dn = 0,
                None => {
                    let stable_ready = self.stable_rs.is_some_and(|s| s.available >= self.r);
                    if stable_ready {
                        let at = self.now + delay;
                        self.act(Action::SetScaleDownDeadline {
                            hash: new.hash.clone(),
                            at: Some(at),
                        });
                        self.wake_at(at);
                    }
                    return false;
                }
            }
        }
        let scaled = new.spec != dn;
        if scaled {
            self.act(Action::ScaleReplicaSet {
                hash: new.hash.clone(),
                replicas: dn,
            });
        }
        if new.revision == 1
            && let Some(w) = self.spec.workload
            && w.scale_down == ScaleDown::Progressively
        {
            let target = if self.prev.phase == Phase::Healthy {
                Some(0)
            } else if self.prev.ready_replicas > 0 || new.spec > dn {
                Some(self.r - self.prev.ready_replicas)
            } else {
                None
            };
            if let Some(t) = target.map(|t| t.max(0))
                && t != w.replicas
            {
                self.act(Action::ScaleWorkload { replicas: t });
            }
        }
        scaled
    }

    /// `reconcileOtherReplicaSets` → `scaleDownOldReplicaSetsForCanary`.
    fn older_replica_sets(&mut self) -> bool {
        let others: Vec<&ObservedRs> = self
            .others
            .iter()
            .copied()
            .filter(|rs| rs.spec > 0)
            .collect();
        if others.is_empty() {
            return false;
        }
        let mut scaled_down = 0;
        let mut specs: Vec<(String, i64)> = Vec::new();
        // cleanupUnhealthyReplicas: unavailable pods of old ReplicaSets go first.
        for rs in &others {
            let mut spec = rs.spec;
            if rs.spec > rs.available {
                scaled_down += rs.spec - rs.available;
                spec = rs.available;
                self.act(Action::ScaleReplicaSet {
                    hash: rs.hash.clone(),
                    replicas: spec,
                });
            }
            specs.push((rs.hash.clone(), spec));
        }
        let available: i64 = self.all.iter().map(|rs| rs.available).sum();
        let min_available = self.r - self.unavailable;
        let mut max_down = available - min_available;
        if max_down > 0 {
            let referenced = |hash: &str| {
                self.prev.weights.as_ref().is_some_and(|w| {
                    w.canary.pod_template_hash == hash || w.stable.pod_template_hash == hash
                })
            };
            for (rs, (hash, spec)) in others.iter().zip(specs) {
                if spec == 0 || (self.routed() && referenced(&hash)) {
                    continue;
                }
                let desired = if !self.routed() {
                    if max_down <= 0 {
                        break;
                    }
                    (spec - max_down).max(0)
                } else if self.fully_promoted() || rs.scale_down_deadline.is_some() {
                    if self.dynamic() {
                        0
                    } else {
                        match rs.scale_down_deadline {
                            Some(at) if at > self.now => {
                                self.wake_at(at);
                                spec
                            }
                            Some(_) => 0,
                            None => {
                                let delay = self
                                    .spec
                                    .canary
                                    .scale_down_delay_seconds
                                    .unwrap_or(DEFAULT_SCALE_DOWN_DELAY_SECONDS);
                                if delay <= 0 {
                                    0
                                } else {
                                    let at = self.now + delay;
                                    self.act(Action::SetScaleDownDeadline {
                                        hash: hash.clone(),
                                        at: Some(at),
                                    });
                                    self.wake_at(at);
                                    spec
                                }
                            }
                        }
                    }
                } else {
                    // An intermediate canary replaced mid-update: no traffic goes to it.
                    0
                };
                if desired == spec {
                    continue;
                }
                if max_down <= 0 {
                    break;
                }
                self.act(Action::ScaleReplicaSet {
                    hash: hash.clone(),
                    replicas: desired,
                });
                max_down -= spec - desired;
                scaled_down += spec - desired;
            }
        }
        scaled_down > 0
    }

    /// `reconcileCanaryPause`.
    fn canary_pause(&mut self) {
        if self.spec.paused || self.prev.promote_full || self.n == 0 {
            return;
        }
        let Some(i) = self.prev.current_step_index.filter(|i| *i < self.n) else {
            return;
        };
        let Some(pause) = &self.spec.canary.steps[i].pause else {
            return;
        };
        match self.prev.pause_condition(PauseReason::CanaryPauseStep) {
            None => {
                if !self.prev.controller_pause {
                    self.pause.add.push(PauseReason::CanaryPauseStep);
                    if let Some(d) = pause {
                        self.wake_at(self.now + argo::pause_duration_seconds(Some(d)) + 1);
                    }
                }
            }
            Some(c) => {
                if let Some(d) = pause {
                    let expires = c.start_time + argo::pause_duration_seconds(Some(d));
                    if self.now <= expires {
                        self.wake_at(expires + 1);
                    }
                }
            }
        }
    }

    /// `completedCurrentCanaryStep`.
    fn completed_current_step(&self) -> bool {
        if self.spec.paused {
            return false;
        }
        let Some(i) = self.prev.current_step_index.filter(|i| *i < self.n) else {
            return false;
        };
        let step = &self.spec.canary.steps[i];
        if let Some(pause) = &step.pause {
            let cond = self.prev.pause_condition(PauseReason::CanaryPauseStep);
            if self.prev.controller_pause && cond.is_none() {
                return true;
            }
            if let (Some(d), Some(c)) = (pause, cond) {
                return self.now > c.start_time + argo::pause_duration_seconds(Some(d));
            }
            return false;
        }
        if step.set_canary_scale.is_some() || step.set_weight.is_some() {
            return self.at_desired_counts(self.out.status.weights.as_ref());
        }
        false
    }

    /// `shouldFullPromote`: why the new ReplicaSet becomes stable now, if it does.
    fn full_promote_reason(&self) -> Option<String> {
        if self.stable_rs.is_none() {
            return Some("Initial deploy".to_string());
        }
        if self.aborted() {
            return None;
        }
        let new = self.new_rs?;
        if new.available < self.r {
            return None;
        }
        if self.prev.promote_full {
            return Some("Full promotion requested".to_string());
        }
        let done = self.n == 0 || self.out.status.current_step_index == Some(self.n);
        done.then(|| format!("Completed all {} canary steps", self.n))
    }

    /// `syncRolloutStatusCanary`.
    fn sync_status(&mut self) {
        let n = self.n;
        if self.prev.promote_full {
            self.pause.clear = true;
            self.pause.remove_abort = true;
            if n > 0 {
                self.out.status.current_step_index = Some(n);
            }
        }
        if let Some(reason) = self.full_promote_reason() {
            self.promote_stable(&reason);
            self.persist();
            return;
        }
        if self.aborted() {
            if n > 0 {
                self.out.status.current_step_index =
                    Some(if self.fully_promoted() { n } else { 0 });
            }
            self.persist();
            return;
        }
        if self.completed_current_step() {
            let i = self.prev.current_step_index.unwrap_or(0);
            let text = step_string(&self.spec.canary.steps[i]);
            self.out.status.current_step_index = Some(i + 1);
            self.event(
                "RolloutStepCompleted",
                format!("Rollout step {}/{n} completed ({text})", i + 1),
                false,
            );
            self.pause.remove.push(PauseReason::CanaryPauseStep);
        }
        self.persist();
    }

    /// `promoteStable`.
    fn promote_stable(&mut self, reason: &str) {
        self.pause.clear = true;
        self.pause.remove_abort = true;
        let st = &mut self.out.status;
        st.promote_full = false;
        st.current_step_index = (self.n > 0).then_some(self.n);
        if st.stable_rs != st.current_pod_hash {
            st.stable_rs = st.current_pod_hash.clone();
            let message = format!(
                "Rollout completed update to revision {} ({}): {reason}",
                self.revision(),
                self.spec.pod_hash
            );
            self.event("RolloutCompleted", message, false);
        }
        if self.revision() == 1
            && self.prev.phase == Phase::Healthy
            && let Some(w) = self.spec.workload
            && w.scale_down == ScaleDown::OnSuccess
            && w.replicas != 0
        {
            self.act(Action::ScaleWorkload { replicas: 0 });
        }
    }

    // -----------------------------------------------------------------------------------
    // persistRolloutStatus
    // -----------------------------------------------------------------------------------

    fn persist(&mut self) {
        let hash = self.spec.pod_hash.clone();
        let new_hash_rs = self.all.iter().find(|rs| rs.hash == hash);
        let routed = self.routed();
        let st = &mut self.out.status;
        st.current_pod_hash = hash;
        st.current_step_hash = self.spec.step_hash.clone();
        st.replicas = self.all.iter().map(|rs| rs.replicas).sum();
        st.hpa_replicas = st.replicas;
        st.updated_replicas = new_hash_rs.map_or(0, |rs| rs.replicas);
        st.ready_replicas = self.all.iter().map(|rs| rs.ready).sum();
        st.available_replicas = self.all.iter().map(|rs| rs.available).sum();
        st.promote_full = st.current_pod_hash != st.stable_rs && st.promote_full;
        if self.n == 0 {
            st.current_step_index = None;
        }
        st.observed_generation = Some(self.spec.generation);
        if !routed {
            st.weights = None;
        }
        self.progress_deadline_abort();
        self.pause_status();
        self.conditions();
        let (phase, message) = phase_of(self.spec, &self.out.status);
        self.out.status.phase = phase;
        self.out.status.message = message;
        if self.out.status.abort && self.out.status.stable_rs != self.out.status.current_pod_hash {
            let message = self
                .out
                .status
                .condition(PROGRESSING)
                .filter(|c| c.reason == ABORTED_REASON)
                .map(|c| c.message.clone())
                .unwrap_or_default();
            self.out.aborted = Some(Aborted {
                canary_hash: self.out.status.current_pod_hash.clone(),
                stable_hash: self.out.status.stable_rs.clone(),
                message,
            });
        }
        self.requeue_stuck();
    }

    fn progressing(&self) -> bool {
        progressing(self.prev, &self.out.status)
    }

    /// Steps that do not count against the progress deadline (`isIndefiniteStep`).
    fn indefinite_step(&self) -> bool {
        let step = self
            .prev
            .current_step_index
            .and_then(|i| self.spec.canary.steps.get(i));
        if step.is_some_and(|s| s.pause.is_some()) {
            return true;
        }
        self.prev
            .condition(PAUSED)
            .is_some_and(|c| c.status == "True")
    }

    fn waiting_for_scale_down(&self) -> bool {
        self.others
            .iter()
            .any(|rs| rs.scale_down_deadline.is_some())
    }

    fn timed_out(&self, status: &Status) -> bool {
        let Some(c) = status.condition(PROGRESSING) else {
            return false;
        };
        if c.reason == ABORTED_REASON || c.reason == PAUSED_REASON {
            return false;
        }
        if c.reason == TIMED_OUT_REASON {
            return true;
        }
        c.last_update + self.spec.progress_deadline_seconds < self.now
    }

    fn completed(status: &Status) -> bool {
        !status.stable_rs.is_empty() && status.stable_rs == status.current_pod_hash
    }

    /// `evaluateProgressDeadlineAbort`.
    fn progress_deadline_abort(&mut self) {
        if !self.spec.progress_deadline_abort || self.aborted() {
            return;
        }
        if Self::completed(&self.out.status) || self.progressing() {
            return;
        }
        if self.indefinite_step() || self.waiting_for_scale_down() {
            return;
        }
        if !self.timed_out(self.prev) {
            return;
        }
        let message = self.timeout_message();
        self.event(ABORTED_REASON, message.clone(), true);
        self.pause.add_abort = Some(message);
    }

    fn timeout_message(&self) -> String {
        format!(
            "ReplicaSet \"{}\" has timed out progressing.",
            self.rs_name()
        )
    }

    fn rs_name(&self) -> String {
        replica_set_name(&self.spec.name, &self.spec.pod_hash)
    }

    /// `CalculatePauseStatus`.
    fn pause_status(&mut self) {
        let now = self.now;
        let st = &mut self.out.status;
        if self.pause.add_abort.is_some() || (!self.pause.remove_abort && self.prev.abort) {
            st.abort = true;
            st.aborted_at = Some(self.prev.aborted_at.unwrap_or(now));
            st.pause_conditions.clear();
            st.controller_pause = false;
            return;
        }
        st.abort = false;
        st.aborted_at = None;
        if self.pause.clear {
            st.pause_conditions.clear();
            st.controller_pause = false;
            return;
        }
        let mut controller_pause = self.prev.controller_pause;
        let mut conds: Vec<argo::PauseCondition> = self
            .prev
            .pause_conditions
            .iter()
            .filter(|c| !self.pause.remove.contains(&c.reason))
            .copied()
            .collect();
        for reason in &self.pause.add {
            if !self
                .prev
                .pause_conditions
                .iter()
                .any(|c| c.reason == *reason)
            {
                conds.push(argo::PauseCondition {
                    reason: *reason,
                    start_time: now,
                });
                controller_pause = true;
            }
        }
        if conds.is_empty() {
            st.pause_conditions.clear();
            st.controller_pause = false;
            return;
        }
        st.pause_conditions = conds;
        st.controller_pause = controller_pause;
    }

    fn set_condition(&mut self, kind: &str, status: &str, reason: &str, message: String) -> bool {
        set_condition(
            &mut self.out.status.conditions,
            kind,
            status,
            reason,
            message,
            self.now,
        )
    }

    /// `checkPausedConditions` and `calculateRolloutConditions`, on the new status.
    fn conditions(&mut self) {
        // A spec that reads again is valid again.
        self.out
            .status
            .conditions
            .retain(|c| c.kind != INVALID_SPEC);
        let is_paused = !self.out.status.pause_conditions.is_empty() || self.spec.paused;
        let aborted = self.out.status.abort;
        let rs_name = self.rs_name();
        let prev_prog = self.prev.condition(PROGRESSING).cloned();
        let abort_cond = prev_prog
            .as_ref()
            .is_some_and(|c| c.reason == ABORTED_REASON);
        let completed = Self::completed(&self.out.status);
        let healthy = rollout_healthy(self.spec, &self.out.status);
        let mut became_unhealthy = false;
        if !is_paused && healthy {
            self.set_condition(
                HEALTHY,
                "True",
                "RolloutHealthy",
                "Rollout is healthy".into(),
            );
        } else if self.prev.condition(HEALTHY).is_some() {
            became_unhealthy = self.set_condition(
                HEALTHY,
                "False",
                "RolloutHealthy",
                "Rollout is not healthy".into(),
            );
        }
        if aborted {
            let revision = self.revision();
            let mut message = format!("Rollout aborted update to revision {revision}");
            if let Some(m) = &self.pause.add_abort {
                message = format!("{message}: {m}");
            } else if let Some(c) = prev_prog.as_ref().filter(|c| c.reason == ABORTED_REASON) {
                message = c.message.clone();
            }
            if self.set_condition(PROGRESSING, "False", ABORTED_REASON, message.clone()) {
                self.event(ABORTED_REASON, message, true);
            }
        } else if !abort_cond && is_paused && !completed {
            self.set_condition(
                PROGRESSING,
                "Unknown",
                PAUSED_REASON,
                "Rollout is paused".into(),
            );
        } else {
            let was_paused = prev_prog
                .as_ref()
                .is_some_and(|c| c.reason == PAUSED_REASON);
            if abort_cond {
                self.set_condition(
                    PROGRESSING,
                    "Unknown",
                    RETRY_REASON,
                    "Retrying Rollout after abort".into(),
                );
            } else if was_paused {
                self.set_condition(
                    PROGRESSING,
                    "Unknown",
                    RESUMED_REASON,
                    "Rollout is resumed".into(),
                );
            }
            {
                if healthy {
                    self.set_condition(
                        PROGRESSING,
                        "True",
                        NEW_RS_AVAILABLE_REASON,
                        format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                    );
                } else if self.progressing() || became_unhealthy || was_paused || abort_cond {
                    let (reason, message) = if completed && became_unhealthy {
                        (
                            RS_NOT_AVAILABLE_REASON,
                            "Rollout does not have minimum availability".to_string(),
                        )
                    } else {
                        (
                            RS_UPDATED_REASON,
                            format!("ReplicaSet \"{rs_name}\" is progressing."),
                        )
                    };
                    // Progress refreshes lastUpdateTime; the transition time stays while True.
                    let now = self.now;
                    let conds = &mut self.out.status.conditions;
                    let kept = conds
                        .iter()
                        .find(|c| c.kind == PROGRESSING && c.status == "True")
                        .map(|c| c.last_transition);
                    conds.retain(|c| c.kind != PROGRESSING);
                    conds.push(Condition {
                        kind: PROGRESSING.into(),
                        status: "True".into(),
                        reason: reason.into(),
                        message,
                        last_update: now,
                        last_transition: kept.unwrap_or(now),
                    });
                } else if !self.indefinite_step()
                    && !self.waiting_for_scale_down()
                    && self.timed_out(&self.out.status.clone())
                {
                    let message = self.timeout_message();
                    if self.set_condition(PROGRESSING, "False", TIMED_OUT_REASON, message.clone()) {
                        self.event(TIMED_OUT_REASON, message, true);
                    }
                }
            }
        }
        let available = self.out.status.available_replicas >= self.r;
        if available {
            self.set_condition(
                AVAILABLE,
                "True",
                "AvailableReason",
                "Rollout has minimum availability".into(),
            );
        } else {
            self.set_condition(
                AVAILABLE,
                "False",
                "AvailableReason",
                "Rollout does not have minimum availability".into(),
            );
        }
        if completed {
            self.set_condition(
                COMPLETED,
                "True",
                "RolloutCompleted",
                "RolloutCompleted".into(),
            );
        } else {
            self.set_condition(
                COMPLETED,
                "False",
                "RolloutCompleted",
                "RolloutCompleted".into(),
            );
        }
        let paused_true = self
            .prev
            .condition(PAUSED)
            .is_some_and(|c| c.status == "True");
        if is_paused != paused_true && !abort_cond {
            let status = if is_paused { "True" } else { "False" };
            self.set_condition(PAUSED, status, PAUSED_REASON, "Rollout is paused".into());
        }
    }

    /// `requeueStuckRollout`: wake the pass when the progress deadline would pass.
    fn requeue_stuck(&mut self) {
        let Some(c) = self.out.status.condition(PROGRESSING).cloned() else {
            return;
        };
        let paused = !self.out.status.pause_conditions.is_empty() || self.spec.paused;
        if rollout_healthy(self.spec, &self.out.status)
            || c.reason == TIMED_OUT_REASON
            || c.reason == ABORTED_REASON
            || paused
            || self.out.status.abort
            || self.indefinite_step()
        {
            return;
        }
        self.wake_at(c.last_update + self.spec.progress_deadline_seconds + 1);
    }
}

/// The status of a Rollout whose spec rollgit cannot run (Argo's `InvalidSpec` condition):
/// nothing else changes, the phase is Degraded with the message.
///
/// ```
/// use rollgit_core::argo_exec::*;
/// let s = invalid_spec(&Status::default(), "steps[0]: bad", 3, 100);
/// assert_eq!(s.phase, Phase::Degraded);
/// assert_eq!(s.message, "InvalidSpec: steps[0]: bad");
/// assert_eq!(invalid_spec(&s, "steps[0]: bad", 3, 200), s, "no timestamp churn");
/// ```
pub fn invalid_spec(prev: &Status, message: &str, generation: i64, now: i64) -> Status {
    let mut st = prev.clone();
    set_condition(
        &mut st.conditions,
        INVALID_SPEC,
        "True",
        INVALID_SPEC,
        message.to_string(),
        now,
    );
    st.phase = Phase::Degraded;
    st.message = format!("{INVALID_SPEC}: {message}");
    st.observed_generation = Some(generation);
    st
}

/// `SetRolloutCondition`: true when the condition changed.
fn set_condition(
    conds: &mut Vec<Condition>,
    kind: &str,
    status: &str,
    reason: &str,
    message: String,
    now: i64,
) -> bool {
    if let Some(c) = conds.iter_mut().find(|c| c.kind == kind) {
        if c.status == status && c.reason == reason && c.message == message {
            return false;
        }
        let transition = if c.status == status {
            c.last_transition
        } else {
            now
        };
        *c = Condition {
            kind: kind.into(),
            status: status.into(),
            reason: reason.into(),
            message,
            last_update: now,
            last_transition: transition,
        };
        return true;
    }
    conds.push(Condition {
        kind: kind.into(),
        status: status.into(),
        reason: reason.into(),
        message,
        last_update: now,
        last_transition: now,
    });
    true
}

/// `RolloutProgressing`: did anything move between `old` and `new`?
fn progressing(old: &Status, new: &Status) -> bool {
    let index_moved =
        matches!((old.current_step_index, new.current_step_index), (Some(a), Some(b)) if a != b);
    let strategy = new.stable_rs != old.stable_rs
        || index_moved
        || new.current_step_hash != old.current_step_hash;
    let old_old = old.replicas - old.updated_replicas;
    let new_old = new.replicas - new.updated_replicas;
    new.updated_replicas != old.updated_replicas
        || new_old < old_old
        || new.ready_replicas > old.ready_replicas
        || new.available_replicas > old.available_replicas
        || strategy
}

/// `RolloutHealthy`.
fn rollout_healthy(spec: &ExecSpec, st: &Status) -> bool {
    let r = spec.canary.replicas;
    let n = spec.canary.steps.len();
    let all_steps = n == 0 || st.current_step_index.is_none_or(|i| i == n);
    let stable_current = !st.stable_rs.is_empty() && st.stable_rs == st.current_pod_hash;
    st.updated_replicas == r
        && st.available_replicas == r
        && all_steps
        && stable_current
        && st.replicas == r
}

/// `CalculateRolloutPhase`: the phase and message of a status.
pub fn phase_of(spec: &ExecSpec, st: &Status) -> (Phase, String) {
    for c in &st.conditions {
        if c.kind == INVALID_SPEC {
            return (Phase::Degraded, format!("{INVALID_SPEC}: {}", c.message));
        }
        if c.reason == ABORTED_REASON || c.reason == TIMED_OUT_REASON {
            return (Phase::Degraded, format!("{}: {}", c.reason, c.message));
        }
    }
    if spec.paused {
        return (Phase::Paused, "manually paused".into());
    }
    if let Some(c) = st.pause_conditions.first() {
        return (Phase::Paused, pause_reason_str(c.reason).into());
    }
    let r = spec.canary.replicas;
    if st.updated_replicas < r {
        return (
            Phase::Progressing,
            "more replicas need to be updated".into(),
        );
    }
    if st.available_replicas < st.updated_replicas {
        return (
            Phase::Progressing,
            "updated replicas are still becoming available".into(),
        );
    }
    if !spec.canary.traffic_routing && st.replicas > st.updated_replicas {
        return (
            Phase::Progressing,
            "old replicas are pending termination".into(),
        );
    }
    if st.stable_rs.is_empty() || st.stable_rs != st.current_pod_hash {
        return (
            Phase::Progressing,
            "waiting for all steps to complete".into(),
        );
    }
    (Phase::Healthy, String::new())
}

/// The wire name of a pause reason.
pub fn pause_reason_str(r: PauseReason) -> &'static str {
    match r {
        PauseReason::CanaryPauseStep => "CanaryPauseStep",
        PauseReason::BlueGreenPause => "BlueGreenPause",
        PauseReason::InconclusiveAnalysisRun => "InconclusiveAnalysisRun",
        PauseReason::InconclusiveExperiment => "InconclusiveExperiment",
    }
}

/// A pause reason from its wire name.
pub fn parse_pause_reason(s: &str) -> Option<PauseReason> {
    Some(match s {
        "CanaryPauseStep" => PauseReason::CanaryPauseStep,
        "BlueGreenPause" => PauseReason::BlueGreenPause,
        "InconclusiveAnalysisRun" => PauseReason::InconclusiveAnalysisRun,
        "InconclusiveExperiment" => PauseReason::InconclusiveExperiment,
        _ => return None,
    })
}

/// The weight the canary gets at a step for `rollgit rollout status` (the last `setWeight`
/// at or before `index`; `max_weight` past the last step).
pub fn step_weight(spec: &CanarySpec, index: usize) -> i64 {
    argo::current_set_weight(&spec.steps, index, false, spec.max_weight)
}
