//! `rollgit approve ROLLOUT`: what `kubectl-kruise rollout approve` does, so either works
//! against rollgit. A merge patch of the Rollout's **status subresource** moves
//! `status.canaryStatus.currentStepState` from `StepPaused` to `StepReady`; in any other state
//! nothing is written and the error says the state. The patch carries the resourceVersion
//! read, so a Rollout that moved on meanwhile is not approved by mistake.

use crate::k8s::kruise::{FIELD_MANAGER_KRUISE, rollout_resource};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::json;

/// Why a Rollout was not approved.
#[derive(Debug, thiserror::Error)]
pub enum ApproveError {
    /// The Rollout does not exist.
    #[error("rollouts.rollouts.kruise.io {namespace}/{name} not found")]
    NotFound { namespace: String, name: String },
    /// It is not waiting for approval.
    #[error(
        "rollout {namespace}/{name} is not waiting for approval: its canary state is {state} (step {step}), only StepPaused can be approved"
    )]
    NotPaused {
        namespace: String,
        name: String,
        state: String,
        step: String,
    },
    /// Reading or patching failed.
    #[error("approving rollout {namespace}/{name}")]
    Api {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// Approves the paused step of Rollout `namespace/name`; returns the step approved.
pub async fn approve(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<i64, ApproveError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &rollout_resource());
    let api_err = |source| ApproveError::Api {
        namespace: namespace.into(),
        name: name.into(),
        source,
    };
    let Some(o) = api.get_opt(name).await.map_err(api_err)? else {
        return Err(ApproveError::NotFound {
            namespace: namespace.into(),
            name: name.into(),
        });
    };
    let canary = &o.data["status"]["canaryStatus"];
    let state = canary["currentStepState"].as_str().unwrap_or_default();
    let step = canary["currentStepIndex"].as_i64();
    if state != "StepPaused" {
        return Err(ApproveError::NotPaused {
            namespace: namespace.into(),
            name: name.into(),
            state: if state.is_empty() {
                "not set (no release in progress)".into()
            } else {
                state.into()
            },
            step: step.map_or("-".into(), |s| s.to_string()),
        });
    }
    let patch = json!({
        "metadata": {"resourceVersion": o.metadata.resource_version},
        "status": {"canaryStatus": {"currentStepState": "StepReady"}},
    });
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER_KRUISE.into()),
        ..PatchParams::default()
    };
    api.patch_status(name, &pp, &Patch::Merge(&patch))
        .await
        .map_err(api_err)?;
    Ok(step.unwrap_or(0))
}
