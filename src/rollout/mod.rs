//! The **rollout** stage: runs each `rollouts.rollgit.dev` Rollout to completion.
//!
//! The daemon applies one Rollout per component that has a KubeVela `rollout` trait or is
//! listed by an AppRollout (the plan stage builds its spec from Git). The [`controller`]
//! watches the Rollouts and the workloads they own and makes one pass per change:
//! observe → decide (the pure `rollgit_core::batch::reconcile`) → act → record the state in
//! the Rollout's status ([`status`]). The decision is pure and every action is absolute
//! (scale *to* n), so the recorded state is all a restarted daemon needs: the first listing
//! replays every Rollout and each resumes its batch. Progress is watch-driven; timers only
//! wake a batch at its progress deadline, and they run on the injected clock.
//!
//! Rollbacks leave this stage only through [`RollbackHook`] (the record stage implements it
//! and writes them to Git).
//!
//! Another executor is a sibling module with its own controller over the upstream kind, the
//! same shape (observe → pure decide → act → record), its workload builders, and the same
//! [`RollbackHook`]: [`argo`] runs Argo Rollouts canaries, [`kruise`] OpenKruise Rollouts.

pub mod argo;
pub mod controller;
pub mod kruise;
pub mod retry;
pub mod status;
pub mod workflow;
pub mod workload;

pub use controller::{core_spec, run};
pub use status::{state_of, status_of};

use crate::ErrorClass;

/// Errors of one rollout pass.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// Reading the Rollout or its workloads failed.
    #[error("reading {what} for rollout {namespace}/{name}")]
    Observe {
        what: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The Rollout's status does not describe a state (written by hand or by another tool).
    #[error("the status of rollout {namespace}/{name} does not parse: {message}")]
    InvalidStatus {
        namespace: String,
        name: String,
        message: String,
    },
    /// The component revision to run does not exist (yet).
    #[error("component revision {namespace}/{revision} (ControllerRevision) not found")]
    RevisionMissing { namespace: String, revision: String },
    /// A revision's data is not a workload.
    #[error("component revision {namespace}/{revision} holds no workload in .data")]
    RevisionData { namespace: String, revision: String },
    /// Changing a workload failed.
    #[error("{action} for rollout {namespace}/{name}")]
    Act {
        action: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Serializing the status failed (a bug).
    #[error("serializing the status of rollout {namespace}/{name}: {message}")]
    Serialize {
        namespace: String,
        name: String,
        message: String,
    },
    /// Recording the status failed.
    #[error("writing the status of rollout {namespace}/{name}")]
    Record {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl RolloutError {
    /// How the controller retries it.
    pub fn class(&self) -> ErrorClass {
        match self {
            RolloutError::Observe { source, .. }
            | RolloutError::Act { source, .. }
            | RolloutError::Record { source, .. } => ErrorClass::of_kube(source),
            // The daemon applies revisions before the Rollout that names them; one missing
            // now is most likely on its way.
            RolloutError::RevisionMissing { .. } => ErrorClass::Requeue(controller::REVISION_RETRY),
            RolloutError::InvalidStatus { .. }
            | RolloutError::RevisionData { .. }
            | RolloutError::Serialize { .. } => ErrorClass::Terminal,
        }
    }
}

/// A rollback the rollout stage performed, for the record stage (Git revert, history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackEvent {
    /// Namespace of the Rollout.
    pub namespace: String,
    /// Rollout (component) name.
    pub rollout: String,
    /// The rollgit app.
    pub app: String,
    /// Component.
    pub component: String,
    /// The revision that failed.
    pub from: String,
    /// The revision rolled back to.
    pub to: String,
    /// Why.
    pub reason: String,
    /// The repository (rollgit's name for it) the app comes from.
    pub repo: Option<String>,
    /// The app's directory in the repository.
    pub path: Option<String>,
    /// The commit of the spec in effect when the rollback started.
    pub spec_commit: Option<String>,
    /// The commit whose spec asked for the failed revision.
    pub failed_commit: Option<String>,
    /// The commit whose spec last rolled out the revision rolled back to.
    pub good_commit: Option<String>,
    /// Which kind of Rollout rolled back (where the record stage writes what it did).
    pub target: RollbackTarget,
}

/// The kind of Rollout a rollback comes from.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum RollbackTarget {
    /// A `rollouts.rollgit.dev` Rollout (batches): the record goes to its `status.record`.
    #[default]
    RollgitRollout,
    /// An `argoproj.io` Rollout (an aborted canary): the record goes to its
    /// `rollgit.dev/record` annotation.
    ArgoRollout,
    /// An OpenKruise Rollout of this resource (the version rollgit serves): the record goes to
    /// its `status.record`.
    KruiseRollout(kube::core::ApiResource),
}

/// Told about every rollback the rollout stage starts (the record stage writes it to Git).
pub trait RollbackHook: Send + Sync {
    /// A rollback started.
    fn rolled_back(&self, event: RollbackEvent);
    /// A rollout finished (`kind`: `batch`, `argo`, `kruise`), for metrics.
    fn rollout_finished(&self, _kind: &str, _namespace: &str, _rollout: &str, _succeeded: bool) {}
    /// A rollout step (a batch, a canary step) completed after `seconds`, for metrics.
    fn step_done(&self, _kind: &str, _seconds: f64) {}
}
