//! Delegate mode: whether Argo Rollouts' own controller runs the cluster's Rollouts, so that
//! there are never two controllers on one Rollout. It does when `rolloutControllers.argo` says
//! `external`, or (`auto`, the default) when the cluster has the `rollouts.argoproj.io` CRD and
//! a Deployment of Argo's controller (labelled `app.kubernetes.io/name=argo-rollouts`, as its
//! install manifests label it, or named `argo-rollouts`) in any namespace.

use super::CRD_NAME;
use crate::config::{ArgoController, WatchScope};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, ListParams};
use std::sync::Mutex;
use std::time::Duration;

/// The label Argo's install manifests put on its controller's Deployment.
pub const CONTROLLER_LABEL: &str = "app.kubernetes.io/name=argo-rollouts";
/// The name of Argo's controller Deployment in its install manifests.
pub const CONTROLLER_NAME: &str = "argo-rollouts";
/// How long a detection is trusted by [`Detector`].
pub const CACHE: Duration = Duration::from_secs(5);

/// Whether Argo Rollouts' controller is installed in the cluster (its CRD and its Deployment).
/// Limited to rollgit's watched namespaces (`scope`) when it is scoped to namespaces.
pub async fn argo_controller_running(
    client: &kube::Client,
    scope: &WatchScope,
) -> Result<bool, kube::Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    if crds.get_opt(CRD_NAME).await?.is_none() {
        return Ok(false);
    }
    for deployments in scope.apis(|ns| match ns {
        Some(ns) => Api::<Deployment>::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    }) {
        let labelled = deployments
            .list(&ListParams::default().labels(CONTROLLER_LABEL).limit(1))
            .await?;
        if !labelled.items.is_empty() {
            return Ok(true);
        }
        let named = deployments
            .list(
                &ListParams::default()
                    .fields(&format!("metadata.name={CONTROLLER_NAME}"))
                    .limit(1),
            )
            .await?;
        if !named.items.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Whether Argo's controller runs a cluster's Rollouts (`configured`, else detected).
pub async fn external(
    client: &kube::Client,
    configured: ArgoController,
    scope: &WatchScope,
) -> bool {
    match configured {
        ArgoController::External => true,
        ArgoController::Rollgit => false,
        ArgoController::Auto => match argo_controller_running(client, scope).await {
            Ok(found) => found,
            Err(e) => {
                // Acting as a second controller is worse than waiting: say external.
                tracing::warn!(error = %crate::error_chain(&e), "detecting Argo Rollouts' controller failed; leaving Argo Rollouts alone this time");
                true
            }
        },
    }
}

/// [`external`], remembered for [`CACHE`] (the executor asks on every pass).
pub struct Detector {
    client: kube::Client,
    configured: ArgoController,
    scope: WatchScope,
    last: Mutex<Option<(tokio::time::Instant, bool)>>,
}

impl Detector {
    /// A detector for a cluster.
    pub fn new(client: kube::Client, configured: ArgoController, scope: WatchScope) -> Self {
        Self {
            client,
            configured,
            scope,
            last: Mutex::new(None),
        }
    }

    /// Whether Argo's own controller runs the Rollouts now.
    pub async fn external(&self) -> bool {
        let now = tokio::time::Instant::now();
        if let Some((at, v)) = *self.last.lock().unwrap_or_else(|p| p.into_inner())
            && now.duration_since(at) < CACHE
        {
            return v;
        }
        let v = external(&self.client, self.configured, &self.scope).await;
        *self.last.lock().unwrap_or_else(|p| p.into_inner()) = Some((now, v));
        v
    }
}

/// Before an app with Argo Rollouts is planned: whether Argo's own controller runs them
/// (delegate mode), and when it does not, the `rollouts.argoproj.io` CRD installed so that the
/// Rollouts can be applied. A CRD that cannot be installed is logged with its cause (the
/// apply of the Rollouts then fails, naming them).
pub async fn prepare(
    client: &kube::Client,
    configured: ArgoController,
    scope: &WatchScope,
    rollouts: &[rollgit_render::ArgoRolloutInfo],
) -> bool {
    if rollouts.is_empty() {
        return false;
    }
    let external = external(client, configured, scope).await;
    if !external && let Err(e) = super::ensure_crd(client).await {
        tracing::warn!(error = %crate::error_chain(&e), "installing the Argo Rollouts CRD failed");
    }
    external
}
