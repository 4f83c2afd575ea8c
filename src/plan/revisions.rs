//! The revisions the cluster holds for an app (its ControllerRevisions), which the render
//! stage numbers new revisions after and reuses for unchanged content.

use crate::k8s::APP_LABEL;
use kube::api::{Api, ListParams};
use rollgit_render::RevisionState;

/// The component and app revisions of `app` in `namespace`, read from its ControllerRevisions
/// (selected by rollgit's app label: `app.oam.dev/name` carries the KubeVela Application's
/// name, which need not be the rollgit app's). `publish` is the app's last recorded
/// `(publishVersion, contentHash)`.
pub async fn revision_state(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    publish: Option<(String, String)>,
) -> Result<RevisionState, kube::Error> {
    let api: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{APP_LABEL}={app}")))
        .await?;
    let mut state = RevisionState {
        publish,
        ..RevisionState::default()
    };
    for cr in list.items {
        let Ok(v) = serde_json::to_value(&cr) else {
            continue;
        };
        if let Some((component, existing)) = rollgit_render::existing_revision_from_object(&v) {
            state.push(&component, existing);
        } else if let Some((application, existing)) =
            rollgit_render::existing_app_revision_from_object(&v)
        {
            state.push_app(&application, existing);
        }
    }
    Ok(state)
}
