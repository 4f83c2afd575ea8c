//! The Argo Rollouts executor: rollgit is the controller of the `argoproj.io/v1alpha1`
//! `Rollout`s (canary strategy) its apps apply, unless Argo Rollouts' own controller runs in
//! the cluster ([`detect`]).
//!
//! The apply stage applies the Rollout from Git like any object (its spec); this stage owns
//! everything a Rollout controller owns: the Rollout's `status` (Argo's format, [`status`]),
//! its ReplicaSets `<rollout>-<pod-template-hash>` ([`replicasets`]), the
//! `rollouts-pod-template-hash` selector of its Services, the canary Ingress of the NGINX router
//! and the weights of the Gateway API router ([`traffic`]), and the `spec.replicas` of a
//! `workloadRef` Deployment that scales down. Each pass of the [`controller`] observes the
//! cluster, lets the pure `rollgit_core::argo_exec::reconcile` decide with the injected clock's
//! `now`, acts (absolute actions) and writes the status once. An aborted canary leaves this
//! stage through the [`RollbackHook`](super::RollbackHook) like a failed batch rollout: the
//! record stage reverts the commits that brought its template.
//!
//! The gates (`rollgit promote|abort|retry`) patch what the `kubectl argo rollouts` plugin
//! patches ([`gates`]), so either works against either controller. When rollgit runs its
//! Rollouts it installs the CRD ([`crd`]) if the cluster has none.

pub mod controller;
pub mod crd;
pub mod detect;
pub mod gates;
pub mod replicasets;
pub mod status;
pub mod traffic;

pub use controller::run;
pub use crd::{CrdError, ensure_crd};
pub use detect::{Detector, argo_controller_running};

use crate::ErrorClass;
use kube::core::ApiResource;
use std::time::Duration;

/// The API group.
pub const GROUP: &str = "argoproj.io";
/// The API version.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";
/// The kind.
pub const KIND: &str = "Rollout";
/// The CRD's name.
pub const CRD_NAME: &str = "rollouts.argoproj.io";
/// The label (on ReplicaSets, their pods and the Services' selectors) naming a template.
pub const HASH_LABEL: &str = "rollouts-pod-template-hash";
/// A ReplicaSet's (and the Rollout's) revision.
pub const REVISION_ANNOTATION: &str = "rollout.argoproj.io/revision";
/// The Rollout's `spec.replicas` when a ReplicaSet was last scaled.
pub const DESIRED_REPLICAS_ANNOTATION: &str = "rollout.argoproj.io/desired-replicas";
/// When an old ReplicaSet is scaled down (RFC 3339).
pub const SCALE_DOWN_DEADLINE_ANNOTATION: &str = "scale-down-deadline";
/// On a Service whose selector the Rollout manages.
pub const MANAGED_BY_ROLLOUTS_ANNOTATION: &str = "argo-rollouts.argoproj.io/managed-by-rollouts";
pub use crate::k8s::argo::{
    COMMIT_ANNOTATION, HTTP_ROUTES_ANNOTATION, PATH_ANNOTATION, SERVICE_SELECTORS_ANNOTATION,
};
/// The commit that brought the current pod template (set by the executor).
pub const CANARY_COMMIT_ANNOTATION: &str = "rollgit.dev/canary-commit";
/// The commit whose template is stable (set by the executor).
pub const STABLE_COMMIT_ANNOTATION: &str = "rollgit.dev/stable-commit";
/// What the record stage wrote to Git about the last abort (JSON, set by the record stage).
pub const RECORD_ANNOTATION: &str = "rollgit.dev/record";
/// The field manager of the executor's writes.
pub const FIELD_MANAGER: &str = crate::k8s::ROLLOUT_FIELD_MANAGER;

/// The API resource of Argo Rollouts.
pub fn resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: "v1alpha1".into(),
        api_version: API_VERSION.into(),
        kind: KIND.into(),
        plural: "rollouts".into(),
    }
}

/// The API resource of ReplicaSets.
pub fn replica_set_resource() -> ApiResource {
    ApiResource::erase::<k8s_openapi::api::apps::v1::ReplicaSet>(&())
}

/// How long a pass waits before looking again for something on its way (a `workloadRef`
/// Deployment not applied yet).
pub const RETRY: Duration = Duration::from_secs(2);

/// Errors of one pass of the Argo executor.
#[derive(Debug, thiserror::Error)]
pub enum ArgoExecError {
    /// Reading the Rollout or what it owns failed.
    #[error("reading {what} for Argo Rollout {namespace}/{name}")]
    Observe {
        what: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The Rollout's pod template is not there (yet): a `workloadRef` Deployment missing.
    #[error("Argo Rollout {namespace}/{name}: {message}")]
    Template {
        namespace: String,
        name: String,
        message: String,
    },
    /// The recorded status does not parse.
    #[error("the status of Argo Rollout {namespace}/{name} does not parse: {message}")]
    InvalidStatus {
        namespace: String,
        name: String,
        message: String,
    },
    /// Changing the cluster failed.
    #[error("{action} for Argo Rollout {namespace}/{name}")]
    Act {
        action: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The traffic router could not route (a stable Ingress without the stable Service, ...).
    #[error("Argo Rollout {namespace}/{name}: {message}")]
    Traffic {
        namespace: String,
        name: String,
        message: String,
    },
    /// Recording the status failed.
    #[error("writing the status of Argo Rollout {namespace}/{name}")]
    Record {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

impl ArgoExecError {
    /// How the controller retries it.
    pub fn class(&self) -> ErrorClass {
        match self {
            ArgoExecError::Observe { source, .. }
            | ArgoExecError::Act { source, .. }
            | ArgoExecError::Record { source, .. } => ErrorClass::of_kube(source),
            ArgoExecError::Template { .. } => ErrorClass::Requeue(RETRY),
            // A router whose objects are wrong waits for them to change (they come from Git).
            ArgoExecError::Traffic { .. } => ErrorClass::Requeue(Duration::from_secs(10)),
            ArgoExecError::InvalidStatus { .. } => ErrorClass::Terminal,
        }
    }
}
