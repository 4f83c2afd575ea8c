//! The annotations the plan stage writes on an Argo Rollout for its executor
//! ([`crate::rollout::argo`]): kept here, below both, so that the plan stage does not import
//! the rollout stage.

/// The Git commit of the app's last applied render (set by the plan stage).
pub const COMMIT_ANNOTATION: &str = "rollgit.dev/commit";
/// The app's directory in its repository (set by the plan stage).
pub const PATH_ANNOTATION: &str = "rollgit.dev/path";
/// HTTPRoutes from Git whose weights the executor sets (set by the plan stage, JSON list).
pub const HTTP_ROUTES_ANNOTATION: &str = "rollgit.dev/http-routes";
/// The Git selectors of the canary and stable Services from the app (set by the plan stage,
/// JSON `{service: selector}`): the executor owns those selectors (Kubernetes merges a
/// Service's selector as one atomic map, so the apply stage would drop the hash otherwise).
pub const SERVICE_SELECTORS_ANNOTATION: &str = "rollgit.dev/service-selectors";
