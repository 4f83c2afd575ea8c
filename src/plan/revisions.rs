//! The revisions the cluster holds for an app (its ControllerRevisions), which the render
//! stage numbers new revisions after and reuses for unchanged content.

use crate::k8s::APP_LABEL;
use k8s_openapi::api::apps::v1::ControllerRevision;
use kube::api::{Api, ListParams};
use rollgit_render::RevisionState;
use serde_json::Value;
use std::collections::HashMap;

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
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), namespace);
    let list = api
        .list(&ListParams::default().labels(&format!("{APP_LABEL}={app}")))
        .await?;
    let items: Vec<Value> = list
        .items
        .iter()
        .filter_map(|cr| serde_json::to_value(cr).ok())
        .collect();
    Ok(state_of(&items, publish))
}

/// Every app's ControllerRevisions in `namespace`, by app (one paged LIST for all of them,
/// when a sync plans many apps at once).
pub async fn list_by_app(
    client: &kube::Client,
    namespace: &str,
) -> Result<HashMap<String, Vec<Value>>, kube::Error> {
    let api: Api<ControllerRevision> = Api::namespaced(client.clone(), namespace);
    let mut lp = ListParams::default().labels(APP_LABEL).limit(500);
    let mut out: HashMap<String, Vec<Value>> = HashMap::new();
    loop {
        let page = api.list(&lp).await?;
        for cr in &page.items {
            let Some(app) = cr.metadata.labels.as_ref().and_then(|l| l.get(APP_LABEL)) else {
                continue;
            };
            if let Ok(v) = serde_json::to_value(cr) {
                out.entry(app.clone()).or_default().push(v);
            }
        }
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    Ok(out)
}

/// The revision state of an app's ControllerRevisions `items`.
pub fn state_of(items: &[Value], publish: Option<(String, String)>) -> RevisionState {
    let mut state = RevisionState {
        publish,
        ..RevisionState::default()
    };
    for v in items {
        if let Some((component, existing)) = rollgit_render::existing_revision_from_object(v) {
            state.push(&component, existing);
        } else if let Some((application, existing)) =
            rollgit_render::existing_app_revision_from_object(v)
        {
            state.push_app(&application, existing);
        }
    }
    state
}
