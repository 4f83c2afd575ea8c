//! The batch rollout executor's decisions: KubeVela's rollout trait and AppRollout semantics
//! (ROLLOUT-SEMANTICS.md §C) as one pure function, [`reconcile`].
//!
//! Each pass is **observe → decide → act → record**: the shell observes the component's
//! workloads, [`reconcile`] returns the next [`State`] and the [`Action`]s that lead there, the
//! shell performs the actions, then records the state (in the `rollouts.rollgit.dev` status).
//! Every action is absolute and idempotent (scale *to* n, set the partition *to* p), so a pass
//! that is cut short after acting and before recording is simply repeated: a restarted daemon
//! resumes the batch it was in, never redoing or skipping one.
//!
//! # Runs
//!
//! A **run** moves the component to one target revision at one size. A new run starts when the
//! wanted `(target revision, size, rolling back)` differs from the current run's. A run that is
//! still going is abandoned first (`rollingInBatches → rolloutAbandoning → reset`, as KubeVela
//! does) and the new run starts from whatever the workloads hold: its sources are **every**
//! other revision with pods, drained the abandoned one first, so an interrupted v1→v2 followed
//! by v3 does not keep three revisions running longer than one batch needs.
//!
//! * **Rollout** (the target differs from what runs): the cumulative batch targets of
//!   `calculateNewBatchTarget` on `0 → size`.
//!   * [`Style::Deployments`] (webservice, worker): one Deployment per revision; IncreaseFirst
//!     or DecreaseFirst exactly as `deployment_batch_pass`; the other revisions are deleted once
//!     the rollout succeeds.
//!   * [`Style::Partition`] (CloneSet, StatefulSet): one workload updated in place; the template
//!     is set to the target with `partition = size`, then each batch sets `partition = size −
//!     goal` (never raised); a batch is ready when `updatedReady + maxUnavailable ≥ goal`.
//! * **Scale** (the target already runs and nothing else does, or it is the first release):
//!   `scale_batches(original → size)`, one batch of the difference when none is given.
//!
//! # Failure
//!
//! A batch that is not ready `progress_deadline_secs` after it started fails the run
//! (`batchVerifyFailed`, `rolloutFailed`, with the pods that are not ready). The failed revision
//! is remembered; while Git still asks for it, rollgit runs the **last good revision** instead,
//! in batches ([`Action::Rollback`] tells the shell, which records it in Git), and ends in
//! `rolloutFailed` with reason `RolledBack`. A rollback that fails is not rolled back again.
//! Git naming another revision (or the reverted one) starts a normal run.

use crate::intstr::{self, IntOrString};
use crate::kubevela::{
    self, BatchRollingState, RollingState, RolloutEvent, RolloutStatus, RolloutStrategy,
};
use serde::{Deserialize, Serialize};

/// How the component's workload is rolled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Style {
    /// One Deployment per revision, named after it (webservice, worker).
    #[default]
    Deployments,
    /// One workload updated in place through its partition (CloneSet, StatefulSet).
    Partition,
}

/// What Git asks for one component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// The revision to run (`targetRevision`, or the component's current revision).
    pub target_revision: String,
    /// An explicit source (AppRollout `sourceAppRevisionName`); otherwise the last good one.
    pub source_revision: Option<String>,
    /// Pods wanted.
    pub target_size: i64,
    /// `rolloutBatches[].replicas`.
    pub batches: Vec<IntOrString>,
    /// Hold after this batch (0-based) until it is lifted.
    pub batch_partition: Option<i64>,
    /// IncreaseFirst or DecreaseFirst.
    pub strategy: RolloutStrategy,
    /// `paused: true`: nothing moves.
    pub paused: bool,
    /// Pods that may be unready when a batch is judged ready (int or percent of the size).
    pub max_unavailable: Option<IntOrString>,
    /// Seconds a batch may take to become ready.
    pub progress_deadline_secs: i64,
    /// Workload style.
    pub style: Style,
    /// The Git commit this spec comes from (opaque here; recorded with the revision it rolls
    /// out, so a rollback knows which commits introduced the failed revision).
    pub commit: Option<String>,
}

/// One observed workload.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Workload {
    /// The revision it runs (Deployments: the one it is named after; Partition: its template's).
    pub revision: String,
    /// `spec.replicas`.
    pub spec_replicas: i64,
    /// `status.replicas`.
    pub status_replicas: i64,
    /// `status.readyReplicas`.
    pub ready_replicas: i64,
    /// `status.updatedReplicas` (pods of the template's revision).
    pub updated_replicas: i64,
    /// `status.updatedReadyReplicas` (Deployments: ready when every pod is updated).
    pub updated_ready_replicas: i64,
    /// `spec.updateStrategy.partition` (Partition style).
    pub partition: i64,
    /// `status.observedGeneration >= metadata.generation`: the status describes the spec.
    pub observed: bool,
}

/// What the shell saw in the cluster this pass.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observation {
    /// Deployments style: one per revision of the component that exists. Partition style: the
    /// workload, if it exists.
    pub workloads: Vec<Workload>,
    /// Names of the target's pods that are not ready (for failure messages).
    pub not_ready_pods: Vec<String>,
}

impl Observation {
    fn get(&self, revision: &str) -> Option<&Workload> {
        self.workloads.iter().find(|w| w.revision == revision)
    }
}

/// A condition recorded in status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// Condition type (`RolloutInBatches`, `RolloutFailed`, ...).
    #[serde(rename = "type")]
    pub kind: String,
    /// True or false.
    pub status: bool,
    /// CamelCase reason.
    pub reason: String,
    /// What happened.
    pub message: String,
    /// Unix seconds of the last change.
    pub at: i64,
}

/// A rollback rollgit decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Rollback {
    /// The revision that failed.
    pub from: String,
    /// The last good revision, rolled back to.
    pub to: String,
    /// Why (batch, ready counts, pods).
    pub reason: String,
    /// True once the workloads run `to` again.
    pub done: bool,
}

/// The rollout's state, recorded in the cluster between passes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct State {
    /// `rollingState`.
    #[serde(with = "rolling_state_str")]
    pub rolling_state: RollingState,
    /// `batchRollingState`.
    #[serde(with = "batch_state_str")]
    pub batch_rolling_state: BatchRollingState,
    /// 0-based batch.
    pub current_batch: i64,
    /// Pods of the target revision.
    pub upgraded_replicas: i64,
    /// Ready pods of the target revision.
    pub upgraded_ready_replicas: i64,
    /// Size of the current run (−1 before one starts).
    pub rollout_target_size: i64,
    /// Target of the current run.
    pub target_revision: Option<String>,
    /// Source of the current run.
    pub source_revision: Option<String>,
    /// Size the run started from (scale runs).
    pub original_size: i64,
    /// The current run is a scale of one revision.
    pub scale: bool,
    /// The current run rolls back a failed revision.
    pub rolling_back: bool,
    /// The last revision rolled out completely (KubeVela's `lastTargetRevision`).
    pub stable_revision: Option<String>,
    /// The commit whose spec rolled out `stable_revision`.
    pub stable_commit: Option<String>,
    /// A revision that failed; not run again while Git asks for it.
    pub failed_revision: Option<String>,
    /// The commit whose spec asked for `failed_revision`.
    pub failed_commit: Option<String>,
    /// Unix seconds when the current batch started.
    pub batch_started_at: Option<i64>,
    /// The latest condition per type, in order of first appearance.
    pub conditions: Vec<Condition>,
    /// The last rollback decided.
    pub rollback: Option<Rollback>,
}

impl Default for State {
    fn default() -> Self {
        State {
            rolling_state: RollingState::LocatingTargetApp,
            batch_rolling_state: BatchRollingState::BatchInitializing,
            current_batch: 0,
            upgraded_replicas: 0,
            upgraded_ready_replicas: 0,
            rollout_target_size: -1,
            target_revision: None,
            source_revision: None,
            original_size: 0,
            scale: false,
            rolling_back: false,
            stable_revision: None,
            stable_commit: None,
            failed_revision: None,
            failed_commit: None,
            batch_started_at: None,
            conditions: Vec::new(),
            rollback: None,
        }
    }
}

impl State {
    /// True when the rollout rests (succeeded or failed) and no batch is moving.
    pub fn is_terminal(&self) -> bool {
        self.rolling_state.is_terminal()
    }

    /// The condition of `kind`, if recorded.
    pub fn condition(&self, kind: &str) -> Option<&Condition> {
        self.conditions.iter().find(|c| c.kind == kind)
    }

    fn machine(&self) -> RolloutStatus {
        RolloutStatus {
            rolling_state: self.rolling_state,
            batch_state: self.batch_rolling_state,
            current_batch: self.current_batch,
            upgraded_replicas: self.upgraded_replicas,
            rollout_target_size: self.rollout_target_size,
            condition: None,
        }
    }

    fn set_condition(&mut self, kind: &str, status: bool, reason: &str, message: &str, now: i64) {
        if let Some(c) = self.conditions.iter_mut().find(|c| c.kind == kind) {
            if c.status != status || c.reason != reason || c.message != message {
                *c = Condition {
                    kind: kind.into(),
                    status,
                    reason: reason.into(),
                    message: message.into(),
                    at: now,
                };
            }
        } else {
            self.conditions.push(Condition {
                kind: kind.into(),
                status,
                reason: reason.into(),
                message: message.into(),
                at: now,
            });
        }
    }
}

/// Whether a condition type is one of a run's rolling states' (KubeVela's condition per
/// `RollingState`), which a new run replaces.
fn is_run_condition(kind: &str) -> bool {
    RollingState::ALL.iter().any(|s| s.condition_type() == kind)
}

/// What the shell must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Create or update the workload of `revision` from its ControllerRevision, with this many
    /// replicas (and, Partition style, this partition).
    ApplyWorkload {
        /// Revision name.
        revision: String,
        /// `spec.replicas`.
        replicas: i64,
        /// Partition style: `spec.updateStrategy.partition`.
        partition: Option<i64>,
    },
    /// Set the replicas of the workload running `revision`.
    Scale {
        /// Revision name.
        revision: String,
        /// `spec.replicas`.
        replicas: i64,
    },
    /// Partition style: set the partition.
    SetPartition {
        /// Pods kept on the previous revision.
        partition: i64,
    },
    /// Delete the workload of `revision` (Deployments style).
    Delete {
        /// Revision name.
        revision: String,
    },
    /// rollgit rolls back `from` to `to`; the shell records it (Git revert, event).
    Rollback {
        /// Failed revision.
        from: String,
        /// Last good revision.
        to: String,
        /// Why.
        reason: String,
    },
}

/// The result of one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// State to record after the actions succeeded.
    pub state: State,
    /// Actions to perform, in order.
    pub actions: Vec<Action>,
    /// Seconds after which to look again even without a watch event (a progress deadline).
    pub requeue_after: Option<i64>,
}

/// One pass of the rollout: see the module documentation.
pub fn reconcile(spec: &Spec, prev: &State, obs: &Observation, now: i64) -> Decision {
    let mut p = Pass {
        spec,
        obs,
        now,
        s: prev.clone(),
        actions: Vec::new(),
        requeue_after: None,
    };
    // A revision that failed is not run again while Git asks for it; any other is.
    if p.s.failed_revision.as_deref() != Some(spec.target_revision.as_str()) {
        p.s.failed_revision = None;
        p.s.failed_commit = None;
    }
    // Two rounds at most: a failure in the first may start a rollback in the second.
    for _ in 0..2 {
        p.start_run_if_needed();
        let failed_before = p.s.failed_revision.clone();
        p.drive();
        if p.s.failed_revision == failed_before || p.s.rolling_state != RollingState::RolloutFailed
        {
            break;
        }
    }
    p.observe_progress();
    Decision {
        state: p.s,
        actions: p.actions,
        requeue_after: p.requeue_after,
    }
}

/// The batches of the run `state` describes (its size, and for a scale its original size):
/// a scale run's are [`kubevela::scale_batches`] (one empty batch when nothing moves), a
/// rollout's are the spec's, or one batch of the whole size when the spec has none.
pub fn run_batches(spec: &Spec, state: &State) -> Vec<IntOrString> {
    let size = state.rollout_target_size.max(0);
    if state.scale && state.original_size == size {
        // Nothing to move: one empty batch.
        vec![IntOrString::Int(0)]
    } else if state.scale {
        kubevela::scale_batches(&spec.batches, state.original_size, size)
    } else if spec.batches.is_empty() {
        vec![IntOrString::Int(size)]
    } else {
        spec.batches.clone()
    }
}

/// The cumulative pod goal of the target revision after each batch of the run `state`
/// describes ([`kubevela::cumulative_targets`] of [`run_batches`], from the original size for a
/// scale, from 0 for a rollout).
///
/// ```
/// use rollgit_core::batch::{State, Spec, Style, batch_goals};
/// use rollgit_core::intstr::IntOrString;
/// let spec = Spec {
///     target_revision: "v2".into(),
///     source_revision: None,
///     target_size: 5,
///     batches: vec![IntOrString::Int(2), IntOrString::Int(3)],
///     batch_partition: None,
///     strategy: Default::default(),
///     paused: false,
///     max_unavailable: None,
///     progress_deadline_secs: 600,
///     style: Style::Deployments,
///     commit: None,
/// };
/// let rollout = State { rollout_target_size: 5, ..State::default() };
/// assert_eq!(batch_goals(&spec, &rollout), [2, 5]);
/// // A scale 5 → 7 without batches: one batch of the difference.
/// let unbatched = Spec { batches: vec![], ..spec };
/// let scale = State { rollout_target_size: 7, scale: true, original_size: 5, ..State::default() };
/// assert_eq!(batch_goals(&unbatched, &scale), [7]);
/// ```
pub fn batch_goals(spec: &Spec, state: &State) -> Vec<i64> {
    let original = if state.scale { state.original_size } else { 0 };
    kubevela::cumulative_targets(
        &run_batches(spec, state),
        original,
        state.rollout_target_size,
    )
}

struct Pass<'a> {
    spec: &'a Spec,
    obs: &'a Observation,
    now: i64,
    s: State,
    actions: Vec<Action>,
    requeue_after: Option<i64>,
}

enum Verdict {
    Ready,
    Wait,
}

impl Pass<'_> {
    fn fire(&mut self, event: RolloutEvent) {
        let (next, _) = kubevela::step(&self.s.machine(), &event, self.now);
        self.s.rolling_state = next.rolling_state;
        self.s.batch_rolling_state = next.batch_state;
        self.s.current_batch = next.current_batch;
        if let Some(c) = next.condition
            && next.rolling_state != RollingState::RolloutAbandoning
        {
            let reason = if c.status {
                event_reason(&event)
            } else {
                "Failed"
            };
            self.s
                .set_condition(c.kind, c.status, reason, &c.message, self.now);
        }
    }

    /// The run Git (or a failure) asks for: `(target, rolling back)`.
    fn wanted(&self) -> (String, bool) {
        let spec_target = &self.spec.target_revision;
        match (&self.s.failed_revision, &self.s.stable_revision) {
            (Some(f), Some(stable)) if f == spec_target && stable != f => (stable.clone(), true),
            _ => (spec_target.clone(), false),
        }
    }

    fn start_run_if_needed(&mut self) {
        let (target, rolling_back) = self.wanted();
        let size = self.spec.target_size.max(0);
        // A run that failed its spec check is checked again (the plan may have been fixed).
        let spec_failed = self.s.rolling_state == RollingState::RolloutFailed
            && self.s.failed_revision.is_none()
            && self.s.rollback.is_none();
        let same = self.s.target_revision.as_deref() == Some(target.as_str())
            && self.s.rollout_target_size == size
            && self.s.rolling_back == rolling_back
            && !spec_failed;
        if same {
            return;
        }
        if self.s.target_revision.is_some() {
            let terminal = self.s.is_terminal();
            // The conditions describe the current run: the previous run's (its RolloutFailed or
            // RolloutSucceed, its batches) go, so that no two terminal conditions are True at
            // once. A rollback run continues the failed one (its RolloutFailed stays); what a
            // rollback decided stays in `rollback`.
            if !rolling_back {
                self.s.conditions.retain(|c| !is_run_condition(&c.kind));
            }
            self.fire(RolloutEvent::RollingModified);
            if !terminal {
                // Abandoned: the new run starts from what the workloads hold.
                self.fire(RolloutEvent::RollingFinalized);
            }
        }
        let failed = self.s.failed_revision.clone();
        let stable = self.s.stable_revision.clone();
        let others_with_pods = self
            .obs
            .workloads
            .iter()
            .filter(|w| w.revision != target && w.spec_replicas > 0)
            .max_by_key(|w| w.spec_replicas)
            .map(|w| w.revision.clone());
        let source = if rolling_back {
            failed
        } else {
            self.spec
                .source_revision
                .clone()
                .filter(|s| *s != target)
                .or(stable.filter(|s| *s != target))
        };
        let (scale, original) = match self.spec.style {
            Style::Deployments => {
                let source = source.clone().or(others_with_pods);
                let scale = source.is_none();
                let original = self.obs.get(&target).map_or(0, |w| w.spec_replicas);
                self.s.source_revision = source;
                (scale, if scale { original } else { 0 })
            }
            Style::Partition => {
                self.s.source_revision = source;
                match self.obs.workloads.first() {
                    None => (true, 0),
                    Some(w) if w.revision == target => (true, w.spec_replicas),
                    Some(w) => {
                        if self.s.source_revision.is_none() {
                            self.s.source_revision = Some(w.revision.clone());
                        }
                        (false, 0)
                    }
                }
            }
        };
        self.s.target_revision = Some(target.clone());
        self.s.rolling_back = rolling_back;
        self.s.scale = scale;
        self.s.original_size = original;
        self.s.rollout_target_size = size;
        self.s.current_batch = 0;
        self.s.batch_started_at = None;
        self.s.upgraded_replicas = 0;
        self.s.upgraded_ready_replicas = 0;
        if !rolling_back {
            self.s.rollback = None;
        }
        self.fire(RolloutEvent::AppLocated);
        let verified = if scale && original > 0 {
            kubevela::verify_batches_with_scale(&self.batches(), original, size)
        } else {
            kubevela::verify_batches_with_rollout(&self.batches(), size)
        };
        if let Err(e) = verified {
            self.fire(RolloutEvent::Failed(e.to_string()));
            return;
        }
        self.fire(RolloutEvent::RollingSpecVerified);
        let current = self.obs.get(&target);
        match (self.spec.style, scale) {
            (Style::Deployments, _) => self.actions.push(Action::ApplyWorkload {
                revision: target.clone(),
                replicas: current.map_or(0, |w| w.spec_replicas),
                partition: None,
            }),
            (Style::Partition, true) => {
                if self.obs.workloads.is_empty() {
                    self.actions.push(Action::ApplyWorkload {
                        revision: target.clone(),
                        replicas: 0,
                        partition: Some(0),
                    });
                }
            }
            (Style::Partition, false) => self.actions.push(Action::ApplyWorkload {
                revision: target.clone(),
                replicas: size,
                partition: Some(size),
            }),
        }
        self.fire(RolloutEvent::RollingInitialized);
    }

    /// The batches of the current run.
    fn batches(&self) -> Vec<IntOrString> {
        run_batches(self.spec, &self.s)
    }

    fn goal(&self) -> i64 {
        let batches = self.batches();
        let original = if self.s.scale {
            self.s.original_size
        } else {
            0
        };
        let batch = usize::try_from(self.s.current_batch).unwrap_or(0);
        kubevela::calculate_new_batch_target(&batches, original, self.s.rollout_target_size, batch)
    }

    fn is_last_batch(&self) -> bool {
        self.s.current_batch + 1 >= self.batches().len() as i64
    }

    fn max_unavailable(&self) -> i64 {
        self.spec
            .max_unavailable
            .as_ref()
            .map(|m| intstr::lenient(m, self.s.rollout_target_size, true).unwrap_or(0))
            .unwrap_or(0)
    }

    fn target(&self) -> Option<&Workload> {
        let t = self.s.target_revision.as_deref()?;
        match self.spec.style {
            Style::Deployments => self.obs.get(t),
            Style::Partition => self.obs.workloads.first(),
        }
    }

    fn drive(&mut self) {
        for _ in 0..32 {
            let acted = !self.actions.is_empty();
            match (self.s.rolling_state, self.s.batch_rolling_state) {
                (RollingState::RollingInBatches, BatchRollingState::BatchInitializing) => {
                    if self.spec.paused {
                        self.s.set_condition(
                            "BatchPaused",
                            true,
                            "Paused",
                            "the rollout plan is paused",
                            self.now,
                        );
                        return;
                    }
                    self.s.conditions.retain(|c| c.kind != "BatchPaused");
                    self.fire(RolloutEvent::InitializedOneBatch);
                    self.s.batch_started_at = Some(self.now);
                }
                (RollingState::RollingInBatches, BatchRollingState::BatchInRolling) => {
                    self.roll_batch();
                    self.fire(RolloutEvent::RolloutOneBatch);
                }
                (RollingState::RollingInBatches, BatchRollingState::BatchVerifying) => {
                    if acted {
                        // What was just asked for is not in the observation yet.
                        self.wait_for_deadline();
                        return;
                    }
                    match self.verify_batch() {
                        Verdict::Ready => self.fire(RolloutEvent::OneBatchAvailable),
                        Verdict::Wait => {
                            if !self.actions.is_empty() {
                                self.wait_for_deadline();
                            } else if self.deadline_passed() {
                                self.fail_batch();
                            } else {
                                self.wait_for_deadline();
                            }
                            return;
                        }
                    }
                }
                (RollingState::RollingInBatches, BatchRollingState::BatchFinalizing) => {
                    if self.is_last_batch() {
                        self.fire(RolloutEvent::AllBatchFinished);
                    } else {
                        self.fire(RolloutEvent::FinishedOneBatch);
                    }
                }
                (RollingState::RollingInBatches, BatchRollingState::BatchReady)
                    if kubevela::batch_partition_allows_next(
                        self.spec.batch_partition,
                        self.s.current_batch,
                    ) =>
                {
                    self.fire(RolloutEvent::BatchRolloutApproved);
                }
                (RollingState::Finalising, _) => {
                    self.delete_others();
                    if !self.s.rolling_back {
                        self.s.stable_commit = self.spec.commit.clone();
                    }
                    self.s.stable_revision = self.s.target_revision.clone();
                    self.s.batch_started_at = None;
                    self.fire(RolloutEvent::RollingFinalized);
                    if self.s.rolling_back {
                        self.s.rolling_state = RollingState::RolloutFailed;
                        let message = match &mut self.s.rollback {
                            Some(r) => {
                                r.done = true;
                                format!(
                                    "rolled back to {} after {} failed: {}",
                                    r.to, r.from, r.reason
                                )
                            }
                            None => "rolled back".to_string(),
                        };
                        self.s.set_condition(
                            RollingState::RolloutFailed.condition_type(),
                            true,
                            "RolledBack",
                            &message,
                            self.now,
                        );
                    }
                    return;
                }
                (RollingState::RolloutSucceed, _) => {
                    self.keep_succeeded();
                    return;
                }
                _ => return,
            }
        }
    }

    /// The first half of a batch: what to change so the batch can become ready.
    fn roll_batch(&mut self) {
        let goal = self.goal();
        let Some(target) = self.s.target_revision.clone() else {
            return;
        };
        if self.s.scale {
            let current = self.target().map_or(0, |w| w.spec_replicas);
            if current != goal {
                self.actions.push(Action::Scale {
                    revision: target,
                    replicas: goal,
                });
            }
            return;
        }
        match self.spec.style {
            Style::Partition => self.lower_partition(goal),
            Style::Deployments => {
                let _ = self.deployment_pass(goal);
            }
        }
    }

    fn lower_partition(&mut self, goal: i64) {
        let partition = (self.s.rollout_target_size - goal).max(0);
        let current = self.target().map(|w| w.partition);
        // Never raised: a partition only goes down during a run.
        if current.is_none_or(|c| c > partition) {
            self.actions.push(Action::SetPartition { partition });
        }
    }

    /// One `deployment_batch_pass` on the observation; pushes its action. Returns whether the
    /// batch is verified.
    fn deployment_pass(&mut self, goal: i64) -> bool {
        let Some(target) = self.s.target_revision.clone() else {
            return false;
        };
        let t = self.obs.get(&target);
        let sources: Vec<&Workload> = self
            .obs
            .workloads
            .iter()
            .filter(|w| w.revision != target)
            .collect();
        let ob = kubevela::DeploymentObservation {
            target_spec: t.map_or(0, |w| w.spec_replicas),
            target_ready: t.map_or(0, |w| w.ready_replicas),
            source_spec: sources.iter().map(|w| w.spec_replicas).sum(),
            source_status: sources.iter().map(|w| w.status_replicas).sum(),
        };
        let total = self.s.rollout_target_size;
        match kubevela::deployment_batch_pass(
            self.spec.strategy,
            total,
            goal,
            self.max_unavailable(),
            ob,
        ) {
            kubevela::DeploymentAction::ScaleTarget(n) => {
                self.actions.push(Action::Scale {
                    revision: target,
                    replicas: n,
                });
                false
            }
            kubevela::DeploymentAction::ScaleSource(n) => {
                self.scale_sources(&target, n);
                false
            }
            kubevela::DeploymentAction::Wait => false,
            kubevela::DeploymentAction::BatchVerified => true,
        }
    }

    /// Scales the non-target Deployments down to `total` pods between them, the run's source
    /// keeping its pods longest (abandoned revisions drain first).
    fn scale_sources(&mut self, target: &str, total: i64) {
        let mut sources: Vec<&Workload> = self
            .obs
            .workloads
            .iter()
            .filter(|w| w.revision != target)
            .collect();
        let main = self.s.source_revision.clone();
        sources.sort_by_key(|w| (Some(&w.revision) != main.as_ref(), w.revision.clone()));
        let mut keep = total.max(0);
        for w in sources {
            let n = w.spec_replicas.min(keep);
            keep -= n;
            if n != w.spec_replicas {
                self.actions.push(Action::Scale {
                    revision: w.revision.clone(),
                    replicas: n,
                });
            }
        }
    }

    fn verify_batch(&mut self) -> Verdict {
        let goal = self.goal();
        let Some(t) = self.target().cloned() else {
            return Verdict::Wait;
        };
        if self.s.scale {
            // Not observed yet, or not at the goal yet: the watch brings the next look.
            if !t.observed || t.spec_replicas != goal {
                if t.spec_replicas != goal {
                    self.roll_batch();
                }
                return Verdict::Wait;
            }
            let ready = if goal >= self.s.original_size {
                t.ready_replicas + self.max_unavailable() >= goal && t.status_replicas >= goal
            } else {
                t.status_replicas <= goal
            };
            return if ready { Verdict::Ready } else { Verdict::Wait };
        }
        match self.spec.style {
            Style::Partition => {
                let partition = (self.s.rollout_target_size - goal).max(0);
                if self.s.target_revision.as_deref() != Some(t.revision.as_str()) {
                    return Verdict::Wait;
                }
                if t.partition > partition {
                    self.lower_partition(goal);
                    return Verdict::Wait;
                }
                if t.observed
                    && t.updated_replicas >= goal
                    && t.updated_ready_replicas + self.max_unavailable() >= goal
                {
                    Verdict::Ready
                } else {
                    Verdict::Wait
                }
            }
            Style::Deployments => {
                let all_observed = self.obs.workloads.iter().all(|w| w.observed);
                if self.deployment_pass(goal) && all_observed {
                    Verdict::Ready
                } else {
                    Verdict::Wait
                }
            }
        }
    }

    fn deadline_passed(&self) -> bool {
        self.s
            .batch_started_at
            .is_some_and(|t0| self.now >= t0.saturating_add(self.spec.progress_deadline_secs))
    }

    fn wait_for_deadline(&mut self) {
        if let Some(t0) = self.s.batch_started_at {
            let left = t0
                .saturating_add(self.spec.progress_deadline_secs)
                .saturating_sub(self.now);
            self.requeue_after = Some(left.max(1));
        }
    }

    fn fail_batch(&mut self) {
        let goal = self.goal();
        let ready = self
            .target()
            .map_or(0, |w| match (self.spec.style, self.s.scale) {
                (Style::Partition, false) => w.updated_ready_replicas,
                _ => w.ready_replicas,
            });
        let target = self.s.target_revision.clone().unwrap_or_default();
        let mut reason = format!(
            "batch {} of {} ({target}) was not ready within {}s: {ready} of {goal} pods ready",
            self.s.current_batch + 1,
            self.batches().len(),
            self.spec.progress_deadline_secs,
        );
        if !self.obs.not_ready_pods.is_empty() {
            let shown: Vec<&str> = self
                .obs
                .not_ready_pods
                .iter()
                .take(10)
                .map(String::as_str)
                .collect();
            reason.push_str(&format!("; not ready: {}", shown.join(", ")));
            if self.obs.not_ready_pods.len() > shown.len() {
                reason.push_str(&format!(
                    " and {} more",
                    self.obs.not_ready_pods.len() - shown.len()
                ));
            }
        }
        self.fire(RolloutEvent::BatchRolloutFailed);
        self.s.set_condition(
            RollingState::RolloutFailed.condition_type(),
            false,
            "ProgressDeadlineExceeded",
            &reason,
            self.now,
        );
        self.s.batch_started_at = None;
        if self.s.rolling_back {
            // A failed rollback is not rolled back again; the failed revision stays recorded.
            return;
        }
        self.s.failed_revision = Some(target.clone());
        self.s.failed_commit = self.spec.commit.clone();
        match self.s.stable_revision.clone() {
            Some(stable) if stable != target => {
                self.actions.push(Action::Rollback {
                    from: target.clone(),
                    to: stable.clone(),
                    reason: reason.clone(),
                });
                self.s.rollback = Some(Rollback {
                    from: target,
                    to: stable,
                    reason,
                    done: false,
                });
            }
            _ => {}
        }
    }

    fn delete_others(&mut self) {
        if self.spec.style != Style::Deployments {
            return;
        }
        let target = self.s.target_revision.clone().unwrap_or_default();
        for w in &self.obs.workloads {
            if w.revision != target {
                self.actions.push(Action::Delete {
                    revision: w.revision.clone(),
                });
            }
        }
    }

    /// A succeeded rollout keeps its size, and no other revision comes back (drift).
    fn keep_succeeded(&mut self) {
        let Some(target) = self.s.target_revision.clone() else {
            return;
        };
        let size = self.s.rollout_target_size;
        match self.target() {
            Some(w) if w.spec_replicas != size => self.actions.push(Action::Scale {
                revision: target,
                replicas: size,
            }),
            Some(_) => {}
            None => self.actions.push(Action::ApplyWorkload {
                revision: target,
                replicas: size,
                partition: (self.spec.style == Style::Partition).then_some(0),
            }),
        }
        self.delete_others();
    }

    /// Upgraded and ready counts as the cluster shows them.
    fn observe_progress(&mut self) {
        let Some(t) = self.target().cloned() else {
            self.s.upgraded_replicas = 0;
            self.s.upgraded_ready_replicas = 0;
            return;
        };
        let (up, ready) = match (self.spec.style, self.s.scale) {
            (Style::Partition, false) => (t.updated_replicas, t.updated_ready_replicas),
            _ => (t.status_replicas, t.ready_replicas),
        };
        self.s.upgraded_replicas = up;
        self.s.upgraded_ready_replicas = ready;
    }
}

fn event_reason(event: &RolloutEvent) -> &'static str {
    match event {
        RolloutEvent::AppLocated => "AppLocated",
        RolloutEvent::RollingSpecVerified => "SpecVerified",
        RolloutEvent::RollingInitialized => "Initialized",
        RolloutEvent::AllBatchFinished | RolloutEvent::RollingFinalized => "Finalized",
        _ => "StateChanged",
    }
}

mod rolling_state_str {
    use super::RollingState;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &RollingState, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<RollingState, D::Error> {
        let s = String::deserialize(d)?;
        RollingState::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown rollingState {s:?}")))
    }
}

mod batch_state_str {
    use super::BatchRollingState;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &BatchRollingState, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(v.as_str())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<BatchRollingState, D::Error> {
        let s = String::deserialize(d)?;
        BatchRollingState::parse(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("unknown batchRollingState {s:?}")))
    }
}
