//! Delegate mode: whether OpenKruise's own Rollout controller runs the cluster's Kruise
//! Rollouts, so that there are never two controllers on one Rollout. It does when
//! `rolloutControllers.kruise` says `external`, or (`auto`, the default) when the cluster has
//! the `rollouts.rollouts.kruise.io` CRD not installed by rollgit, or a Deployment of Kruise's
//! controller (`kruise-rollout-controller-manager`, as Kruise's kustomize manifests and Helm
//! chart name it, in any namespace; `kruise-rollout` by default). It is asked again on every
//! pass and before every apply (remembered for [`CACHE`]), so installing Kruise next to a
//! running rollgit hands its Rollouts over at once.

use crate::config::RolloutController;
pub use crate::k8s::kruise::{CONTROLLER_NAME, kruise_controller_running};
use std::sync::Mutex;
use std::time::Duration;

/// How long a detection is trusted by [`Detector`].
pub const CACHE: Duration = Duration::from_secs(5);

/// Whether Kruise's controller runs a cluster's Kruise Rollouts (`configured`, else detected).
pub async fn external(client: &kube::Client, configured: RolloutController) -> bool {
    match configured {
        RolloutController::External => true,
        // `rollgit` too leaves the Rollouts to a Kruise controller it finds (with an error in
        // the log): never two controllers on one Rollout.
        RolloutController::Rollgit | RolloutController::Detect => {
            match kruise_controller_running(client).await {
                Ok(true) if configured == RolloutController::Rollgit => {
                    tracing::error!(
                        "rolloutControllers.kruise is rollgit, but the cluster has OpenKruise's own Rollout controller: rollgit leaves the Kruise Rollouts to it; set rolloutControllers.kruise to external, or remove Kruise"
                    );
                    true
                }
                Ok(found) => found,
                Err(e) => {
                    // Acting as a second controller is worse than waiting: say external.
                    tracing::warn!(error = %crate::error_chain(&e), "detecting OpenKruise's Rollout controller failed; leaving Kruise Rollouts alone this time");
                    true
                }
            }
        }
    }
}

/// [`external`], remembered for [`CACHE`] (the executor asks on every pass, the workers
/// before every apply of an app with Kruise Rollouts).
pub struct Detector {
    client: kube::Client,
    configured: RolloutController,
    last: Mutex<Option<(tokio::time::Instant, bool)>>,
}

impl Detector {
    /// A detector for a cluster.
    pub fn new(client: kube::Client, configured: RolloutController) -> Self {
        Self {
            client,
            configured,
            last: Mutex::new(None),
        }
    }

    /// Whether Kruise's own controller runs the Rollouts now.
    pub async fn external(&self) -> bool {
        let now = tokio::time::Instant::now();
        if let Some((at, v)) = *self.last.lock().unwrap_or_else(|p| p.into_inner())
            && now.duration_since(at) < CACHE
        {
            return v;
        }
        let v = external(&self.client, self.configured).await;
        let was = self
            .last
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace((now, v))
            .map(|(_, w)| w);
        if was.is_some_and(|w| w != v) {
            if v {
                tracing::info!(
                    "OpenKruise's own Rollout controller runs the Kruise Rollouts now: rollgit only applies them"
                );
            } else {
                tracing::info!(
                    "OpenKruise's Rollout controller is gone: rollgit runs the Kruise Rollouts"
                );
            }
        }
        v
    }
}
