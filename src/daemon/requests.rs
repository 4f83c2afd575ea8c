//! Sync requests made through the Kubernetes API, so they work from any machine with a
//! kubeconfig: `rollgit sync APP` sets the annotation [`SYNC_REQUESTED`] on the app's
//! `applications.rollgit.dev` object to a new token (and [`ALLOW_MASS_PRUNE`] to the same
//! token to let a held prune proceed). The daemon watches its apps' objects and syncs an app
//! whose request it has not handled yet; the status records the last token handled
//! (`status.lastSyncRequest`), which is what `rollgit sync` waits for.
//!
//! The same watch reports `spec.suspend` (`rollgit suspend APP` / `rollgit resume APP`): the
//! worker neither applies a suspended app nor corrects its drift.

use crate::k8s::{MANAGED_BY, MANAGED_BY_LABEL};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use tokio::sync::mpsc;

/// Annotation: a token naming one sync request.
pub const SYNC_REQUESTED: &str = "rollgit.dev/sync-requested";
/// Annotation: the token of the request that lets a held prune proceed.
pub const ALLOW_MASS_PRUNE: &str = "rollgit.dev/allow-mass-prune";

/// A request to sync one app now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncRequest {
    /// The app.
    pub app: String,
    /// The request's token.
    pub token: String,
    /// Whether the request lets a held prune proceed.
    pub allow_mass_prune: bool,
}

/// What the watch of the apps' status objects tells the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppEvent {
    /// A sync request not handled yet.
    Sync(SyncRequest),
    /// Whether an app is suspended (sent for every app seen, and on every change).
    Suspend {
        /// The app.
        app: String,
        /// `spec.suspend`.
        suspended: bool,
    },
    /// A `rollgit workflow ...` request for an app.
    Workflow(String, WorkflowRequest),
    /// The watch listed every app once (suspensions are known).
    Listed,
}

/// Whether an Application object of repository `repo` is suspended (pure); `None` for another
/// repository's.
pub fn suspension(o: &DynamicObject, repo: &str) -> Option<(String, bool)> {
    if o.data["spec"]["source"]["repo"].as_str() != Some(repo) {
        return None;
    }
    Some((
        o.metadata.name.clone()?,
        crate::record::status::is_suspended(o),
    ))
}

/// Annotation: a `rollgit workflow` command (JSON [`WorkflowRequest`]).
pub const WORKFLOW_REQUESTED: &str = "rollgit.dev/workflow-request";

/// A `rollgit workflow resume|suspend|terminate|restart` request, as the annotation
/// [`WORKFLOW_REQUESTED`] carries it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkflowRequest {
    /// The request's token (`status.workflow.lastRequest` once handled).
    pub token: String,
    /// `resume`, `suspend`, `terminate` or `restart`.
    pub command: String,
    /// `--step` of `resume`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Who asked (the kubeconfig user, from a SelfSubjectReview).
    #[serde(default)]
    pub user: String,
}

/// The workflow request an Application object carries that its status has not handled yet
/// (pure). A value that does not parse is logged and ignored (only a hand edit makes one).
pub fn pending_workflow_request(
    o: &DynamicObject,
    repo: &str,
) -> Option<(String, WorkflowRequest)> {
    if o.data["spec"]["source"]["repo"].as_str() != Some(repo) {
        return None;
    }
    let text = o.metadata.annotations.as_ref()?.get(WORKFLOW_REQUESTED)?;
    let app = o.metadata.name.clone()?;
    let req: WorkflowRequest = match serde_json::from_str(text) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(app, annotation = WORKFLOW_REQUESTED, error = %e, "the workflow request does not parse; ignored");
            return None;
        }
    };
    if req.token.is_empty()
        || o.data["status"]["workflow"]["lastRequest"].as_str() == Some(req.token.as_str())
    {
        return None;
    }
    Some((app, req))
}

/// The request an Application object carries that its status has not handled yet (pure).
pub fn pending_request(o: &DynamicObject, repo: &str) -> Option<SyncRequest> {
    if o.data["spec"]["source"]["repo"].as_str() != Some(repo) {
        return None;
    }
    let annotations = o.metadata.annotations.as_ref()?;
    let token = annotations.get(SYNC_REQUESTED)?;
    if token.is_empty() || o.data["status"]["lastSyncRequest"].as_str() == Some(token.as_str()) {
        return None;
    }
    Some(SyncRequest {
        app: o.metadata.name.clone()?,
        token: token.clone(),
        allow_mass_prune: annotations.get(ALLOW_MASS_PRUNE) == Some(token),
    })
}

/// Watches the status objects of repository `repo`'s apps (in every namespace `scope`
/// watches, and `namespace`, the repository's: an app's status object lives in its KubeVela
/// Application's namespace) and sends each request not handled yet (again after a restart,
/// until handled), each app's suspension, and [`AppEvent::Listed`] once every namespace was
/// listed.
pub fn watch(
    client: kube::Client,
    scope: &crate::config::WatchScope,
    namespace: &str,
    repo: &str,
) -> (
    tokio::task::JoinHandle<()>,
    mpsc::UnboundedReceiver<AppEvent>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let resource = crate::record::status::application_resource();
    let apis: Vec<Api<DynamicObject>> = match scope.namespaces() {
        None => vec![Api::all_with(client, &resource)],
        Some(mut list) => {
            if !list.iter().any(|n| n == namespace) {
                list.push(namespace.to_string());
            }
            list.iter()
                .map(|ns| Api::namespaced_with(client.clone(), ns, &resource))
                .collect()
        }
    };
    let repo = repo.to_string();
    let task = tokio::spawn(async move {
        let cfg = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        let mut unlisted = apis.len();
        let mut stream = crate::k8s::scope::watch_all(apis, cfg);
        while let Some(ev) = stream.next().await {
            let o = match ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
                Ok(watcher::Event::InitDone) => {
                    // Once per namespace (and again after a relist: only the first Listed matters).
                    unlisted = unlisted.saturating_sub(1);
                    if unlisted == 0 && tx.send(AppEvent::Listed).is_err() {
                        return;
                    }
                    continue;
                }
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %crate::error_chain(&e), "watching apps for sync requests; the watcher retries");
                    continue;
                }
            };
            if let Some((app, suspended)) = suspension(&o, &repo)
                && tx.send(AppEvent::Suspend { app, suspended }).is_err()
            {
                return;
            }
            if let Some(r) = pending_request(&o, &repo)
                && tx.send(AppEvent::Sync(r)).is_err()
            {
                return;
            }
            if let Some((app, r)) = pending_workflow_request(&o, &repo)
                && tx.send(AppEvent::Workflow(app, r)).is_err()
            {
                return;
            }
        }
    });
    (task, rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn app(annotations: &[(&str, &str)], handled: Option<&str>, repo: &str) -> DynamicObject {
        let mut o = DynamicObject::new("shop", &crate::record::status::application_resource());
        o.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        o.data =
            json!({"spec": {"source": {"repo": repo}}, "status": {"lastSyncRequest": handled}});
        o
    }

    #[test]
    fn pending_requests_table() {
        let req = |allow| {
            Some(SyncRequest {
                app: "shop".into(),
                token: "t2".into(),
                allow_mass_prune: allow,
            })
        };
        let cases = [
            (
                "new request",
                app(&[(SYNC_REQUESTED, "t2")], Some("t1"), "deploy"),
                req(false),
            ),
            (
                "handled",
                app(&[(SYNC_REQUESTED, "t2")], Some("t2"), "deploy"),
                None,
            ),
            (
                "no status yet",
                app(&[(SYNC_REQUESTED, "t2")], None, "deploy"),
                req(false),
            ),
            (
                "with prune allowed",
                app(
                    &[(SYNC_REQUESTED, "t2"), (ALLOW_MASS_PRUNE, "t2")],
                    None,
                    "deploy",
                ),
                req(true),
            ),
            (
                "an old allowance does not carry over",
                app(
                    &[(SYNC_REQUESTED, "t2"), (ALLOW_MASS_PRUNE, "t1")],
                    None,
                    "deploy",
                ),
                req(false),
            ),
            (
                "another repository's app",
                app(&[(SYNC_REQUESTED, "t2")], None, "other"),
                None,
            ),
            ("no request", app(&[], None, "deploy"), None),
        ];
        for (name, o, want) in cases {
            assert_eq!(pending_request(&o, "deploy"), want, "{name}");
        }
    }

    #[test]
    fn suspension_is_read_from_the_spec() {
        let mut o = app(&[], None, "deploy");
        assert_eq!(suspension(&o, "deploy"), Some(("shop".into(), false)));
        o.data["spec"]["suspend"] = json!(true);
        assert_eq!(suspension(&o, "deploy"), Some(("shop".into(), true)));
        assert_eq!(suspension(&o, "other"), None, "another repository's app");
    }
}
