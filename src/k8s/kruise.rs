//! What rollgit writes for OpenKruise Rollouts (`rollouts.kruise.io`): the names of Kruise's
//! annotations and labels it sets on the workloads it holds, rollgit's own ones, and the
//! Rollout CustomResourceDefinition rollgit installs when the cluster has none (written here:
//! Kruise's group, versions and printer columns; the schema keeps what it is given, as the
//! objects are read with rollgit's own parser).

use super::{FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;

/// `rollouts.kruise.io`.
pub const GROUP: &str = "rollouts.kruise.io";
/// The version rollgit reads and writes (the CRD's storage version).
pub const VERSION: &str = "v1beta1";
/// The CRD's name.
pub const CRD_NAME: &str = "rollouts.rollouts.kruise.io";

/// The field manager of the Kruise executor's writes (workloads, traffic objects, status).
pub const FIELD_MANAGER_KRUISE: &str = "rollgit-kruise";

/// On a workload held for a release: `{"rolloutName": NAME}` (Kruise's webhook sets it).
pub const IN_PROGRESSING: &str = "rollouts.kruise.io/in-progressing";
/// On a held workload: the revision label value of its stable pods.
pub const STABLE_REVISION_LABEL: &str = "rollouts.kruise.io/stable-revision";
/// On a workload under a release's control (Kruise: the BatchRelease's; rollgit: the
/// Rollout's owner reference).
pub const CONTROL_ANNOTATION: &str = "batchrelease.rollouts.kruise.io/control-info";
/// A partition-style Deployment's strategy while Kruise rolls it (`rollingStyle`,
/// `rollingUpdate`, `partition`, `paused`).
pub const DEPLOYMENT_STRATEGY_ANNOTATION: &str = "rollouts.kruise.io/deployment-strategy";
/// On a partition-style Deployment whose ReplicaSets Kruise (here: rollgit) moves.
pub const ADVANCED_DEPLOYMENT_LABEL: &str =
    "rollouts.kruise.io/controlled-by-advanced-deployment-controller";
/// On a canary Deployment: the stable Deployment's name.
pub const CANARY_DEPLOYMENT_LABEL: &str = "rollouts.kruise.io/canary-deployment";
/// `rollouts.kruise.io/rolling-style` (v1alpha1).
pub const ROLLING_STYLE_ANNOTATION: &str = "rollouts.kruise.io/rolling-style";

/// rollgit's: on a held workload, a hash of the pod template Git asks for (set by the apply).
pub const TEMPLATE_HASH_ANNOTATION: &str = "rollgit.dev/template-hash";
/// rollgit's: on a held workload, the template hash the hold waits for (the apply follows).
pub const HOLD_FOR_ANNOTATION: &str = "rollgit.dev/hold-for";
/// rollgit's: on a held workload, the Git commit it was applied from.
pub const COMMIT_ANNOTATION: &str = "rollgit.dev/commit";
/// rollgit's: on a Kruise Rollout, the app's directory in the repository.
pub const PATH_ANNOTATION: &str = "rollgit.dev/path";
/// rollgit's: on a partition-style held Deployment, the `spec.strategy` Git writes (the
/// executor owns the field: `Recreate` while it rolls, Git's otherwise).
pub const GIT_STRATEGY_ANNOTATION: &str = "rollgit.dev/deployment-strategy";
/// rollgit's: on a Kruise Rollout's stable Service, the `spec.selector` Git writes (the
/// executor owns the field once the Service exists: Git's selector, narrowed to the stable
/// pods while a release routes traffic).
pub const GIT_SELECTOR_ANNOTATION: &str = "rollgit.dev/selector";
/// rollgit's: on the Gateway API HTTPRoute of a Kruise Rollout (`gateway.httpRouteName`) in
/// the same app, the `spec.rules` Git writes as JSON (the executor owns the field once the
/// route exists: Git's rules between releases, the steps' routes during one).
pub const GIT_RULES_ANNOTATION: &str = "rollgit.dev/rules";

/// The API resource of Kruise Rollouts, at the version rollgit reads.
pub fn rollout_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: "Rollout".into(),
        plural: "rollouts".into(),
    }
}

fn version(name: &str, storage: bool, step: &str, state: &str) -> serde_json::Value {
    json!({
        "name": name,
        "served": true,
        "storage": storage,
        "additionalPrinterColumns": [
            {"name": "STATUS", "type": "string", "jsonPath": ".status.phase", "description": "The rollout status phase"},
            {"name": "CANARY_STEP", "type": "integer", "jsonPath": step, "description": "The rollout canary status step"},
            {"name": "CANARY_STATE", "type": "string", "jsonPath": state, "description": "The rollout canary status step state"},
            {"name": "MESSAGE", "type": "string", "jsonPath": ".status.message", "description": "The rollout canary status message"},
            {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
        ],
        "schema": {"openAPIV3Schema": {
            "description": "Rollout is the Schema for the rollouts API (OpenKruise Rollout, run by rollgit)",
            "type": "object",
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "metadata": {"type": "object"},
                "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            },
        }},
        "subresources": {"status": {}},
    })
}

/// The Rollout CRD rollgit installs: Kruise's group, `v1alpha1` and `v1beta1` served
/// (`v1beta1` stored), Kruise's printer columns (STATUS CANARY_STEP CANARY_STATE MESSAGE AGE),
/// the status subresource, conversion by `apiVersion` only (rollgit reads either shape).
pub fn crd() -> CustomResourceDefinition {
    let v = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {"rollgit.dev/note": "OpenKruise's Rollout API, installed by rollgit, which runs these Rollouts itself"},
        },
        "spec": {
            "group": GROUP,
            "names": {"kind": "Rollout", "listKind": "RolloutList", "plural": "rollouts", "singular": "rollout"},
            "scope": "Namespaced",
            "versions": [
                version("v1alpha1", false, ".status.canaryStatus.currentStepIndex", ".status.canaryStatus.currentStepState"),
                version("v1beta1", true, ".status.currentStepIndex", ".status.currentStepState"),
            ],
            "conversion": {"strategy": "None"},
        },
    });
    serde_json::from_value(v).expect("the Kruise Rollout CRD is a CustomResourceDefinition")
}

/// The name of Kruise Rollout's controller Deployment (`namePrefix: kruise-rollout-` on
/// `controller-manager` in its manifests and Helm chart).
pub const CONTROLLER_NAME: &str = "kruise-rollout-controller-manager";

/// Whether OpenKruise's own Rollout controller is in the cluster: its Rollout CRD (not
/// rollgit's), or its controller Deployment ([`CONTROLLER_NAME`], any namespace).
pub async fn kruise_controller_running(client: &kube::Client) -> Result<bool, kube::Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if let Some(crd) = crds.get_opt(CRD_NAME).await? {
        let ours = crd
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .is_some_and(|v| v == MANAGED_BY);
        if !ours {
            return Ok(true);
        }
    }
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = Api::all(client.clone());
    let named = match deployments
        .list(
            &kube::api::ListParams::default()
                .fields(&format!("metadata.name={CONTROLLER_NAME}"))
                .limit(1),
        )
        .await
    {
        Ok(named) => named,
        // An identity with namespaced rights cannot list Deployments cluster-wide: it cannot
        // see a controller elsewhere, and the CRD (checked above, the stronger sign: Kruise
        // installs its own) said none.
        Err(kube::Error::Api(s)) if s.code == 403 => {
            tracing::debug!(
                "listing Deployments cluster-wide is forbidden; Kruise's controller is detected by its CRD only"
            );
            return Ok(false);
        }
        Err(e) => return Err(e),
    };
    Ok(!named.items.is_empty())
}

/// Who runs the cluster's Kruise Rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    /// rollgit (its CRD is installed, or was by rollgit).
    Rollgit,
    /// Kruise's own controller (its CRD is there, not rollgit's, or the configuration says so):
    /// rollgit only applies the Rollouts from Git.
    External,
}

/// Errors of installing the CRD.
#[derive(Debug, thiserror::Error)]
pub enum KruiseCrdError {
    /// Looking for Kruise's controller (its CRD, its Deployment) failed.
    #[error(
        "looking for OpenKruise's Rollout controller (CRD {CRD_NAME}, Deployment {CONTROLLER_NAME})"
    )]
    Read(#[source] kube::Error),
    /// Applying the CRD failed.
    #[error("applying CRD {CRD_NAME}")]
    Apply(#[source] kube::Error),
    /// It did not become Established in time.
    #[error("CRD {CRD_NAME} not Established within {}s", super::crds::CRD_TIMEOUT.as_secs())]
    NotEstablished,
    /// Watching it failed.
    #[error("waiting for CRD {CRD_NAME} to be Established")]
    Wait(#[source] kube::runtime::wait::Error),
}

/// Decides who runs Kruise Rollouts in this cluster at start, and installs rollgit's CRD when
/// rollgit does: `external` (configured) is Kruise; otherwise a Rollout CRD not installed by
/// rollgit, or Kruise's controller Deployment, means Kruise's controller is there; otherwise
/// rollgit installs (or updates) its CRD. (Who runs them is asked again on every pass:
/// `rollout::kruise::detect`.)
///
/// With `install` false (or when the API server forbids rollgit to change CRDs), rollgit runs
/// Kruise Rollouts only when the installed CRD is its own, and otherwise leaves them alone.
pub async fn ensure(
    client: &kube::Client,
    configured_external: bool,
    install: bool,
) -> Result<Controller, KruiseCrdError> {
    if configured_external {
        return Ok(Controller::External);
    }
    if kruise_controller_running(client)
        .await
        .map_err(KruiseCrdError::Read)?
    {
        return Ok(Controller::External);
    }
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let existing = api.get_opt(CRD_NAME).await.map_err(KruiseCrdError::Read)?;
    if let Some(existing) = &existing {
        let ours = existing
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .is_some_and(|v| v == MANAGED_BY);
        if !ours {
            return Ok(Controller::External);
        }
    }
    let installed = |existing: &Option<CustomResourceDefinition>| match existing {
        Some(_) => Controller::Rollgit,
        None => {
            tracing::info!(
                crd = CRD_NAME,
                "the OpenKruise Rollout CRD is not installed and rollgit does not install CRDs: Kruise Rollouts in Git cannot be applied"
            );
            Controller::External
        }
    };
    if !install {
        return Ok(installed(&existing));
    }
    match api
        .patch(
            CRD_NAME,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd()),
        )
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 403 => return Ok(installed(&existing)),
        Err(e) => return Err(KruiseCrdError::Apply(e)),
    }
    match tokio::time::timeout(
        super::crds::CRD_TIMEOUT,
        await_condition(api, CRD_NAME, conditions::is_crd_established()),
    )
    .await
    {
        Ok(Ok(_)) => Ok(Controller::Rollgit),
        Ok(Err(e)) => Err(KruiseCrdError::Wait(e)),
        Err(_) => Err(KruiseCrdError::NotEstablished),
    }
}
