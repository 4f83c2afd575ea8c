//! Drift: watches on the kinds an app applied, so that a change someone makes to what rollgit
//! manages (`kubectl scale`, `set image`, `edit`, `delete`) reaches the daemon as a typed
//! [`Changed`] event, and the marks that tell a real change from an echo of rollgit's own
//! apply.

use crate::k8s::{APP_LABEL, REPO_LABEL};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, GroupVersionKind};
use kube::runtime::watcher;
use serde_json::Value;
use std::collections::BTreeMap;
use tokio::sync::mpsc;

/// An object of an app changed (or was deleted) in the cluster.
#[derive(Debug, Clone)]
pub struct Changed {
    /// The app (the object's `rollgit.dev/app` label).
    pub app: String,
    /// The object as the watch saw it (may hold Secret data: never log it).
    pub object: Value,
    /// The watch saw it deleted.
    pub deleted: bool,
}

/// The watches of one repository's objects, one per kind, started as kinds appear.
pub struct DriftWatches {
    client: kube::Client,
    repo: String,
    tx: mpsc::UnboundedSender<Changed>,
    watched: BTreeMap<(String, String, String), tokio::task::AbortHandle>,
    scope: crate::config::WatchScope,
}

impl DriftWatches {
    /// Watches for the objects of repository `repo`; changes arrive on the receiver.
    pub fn new(
        client: kube::Client,
        repo: &str,
        scope: crate::config::WatchScope,
    ) -> (Self, mpsc::UnboundedReceiver<Changed>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Self {
                client,
                repo: repo.to_string(),
                tx,
                watched: BTreeMap::new(),
                scope,
            },
            rx,
        )
    }

    /// Makes sure each `(group, version, kind)` is watched (objects labelled with the
    /// repository only; small pages, the first listing holding full objects).
    pub fn ensure(&mut self, kinds: impl IntoIterator<Item = (String, String, String)>) {
        for k in kinds {
            if self.watched.contains_key(&k) {
                continue;
            }
            let (group, version, kind) = k.clone();
            let client = self.client.clone();
            let tx = self.tx.clone();
            let selector = format!("{REPO_LABEL}={}", self.repo);
            let scope = self.scope.clone();
            let task = tokio::spawn(async move {
                let gvk = GroupVersionKind::gvk(&group, &version, &kind);
                let mut backoff = crate::k8s::WatchBackoff::default();
                let mut repeats = crate::Repeats::default();
                let (ar, caps) = loop {
                    match kube::discovery::pinned_kind(&client, &gvk).await {
                        Ok(found) => break found,
                        Err(e) => {
                            let text = crate::error_chain(&e);
                            if let Some(times) = repeats.note(&text) {
                                tracing::warn!(%kind, error = %text, times, "cannot discover a kind to watch; retrying");
                            }
                            let delay = backoff.next().unwrap_or(crate::k8s::WATCH_BACKOFF_MAX);
                            tokio::time::sleep(delay).await;
                        }
                    }
                };
                // Namespaced kinds are watched in the watched namespaces only (a Role per
                // namespace suffices); cluster-scoped ones over the cluster.
                let apis = if caps.scope == kube::discovery::Scope::Namespaced {
                    scope.apis(|ns| match ns {
                        Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar),
                        None => Api::all_with(client.clone(), &ar),
                    })
                } else {
                    vec![Api::all_with(client.clone(), &ar)]
                };
                let cfg = watcher::Config::default().labels(&selector).page_size(50);
                let mut stream = crate::k8s::scope::watch_all(apis, cfg);
                while let Some(ev) = stream.next().await {
                    // The first listing counts too: a change between the apply and the start of
                    // the watch (a status turning healthy) is only seen there.
                    let (obj, deleted) = match ev {
                        Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => {
                            (o, false)
                        }
                        Ok(watcher::Event::Delete(o)) => (o, true),
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::debug!(%kind, error = %crate::error_chain(&e), "drift watch error; the watcher retries");
                            continue;
                        }
                    };
                    let Some(app) = obj.metadata.labels.as_ref().and_then(|l| l.get(APP_LABEL))
                    else {
                        continue;
                    };
                    let app = app.clone();
                    // Neither health nor the change mark reads managedFields: not converted
                    // (a third of the conversion of each event of an initial sync).
                    let mut obj = obj;
                    obj.metadata.managed_fields = None;
                    let object = serde_json::to_value(&obj).unwrap_or(Value::Null);
                    if tx
                        .send(Changed {
                            app,
                            object,
                            deleted,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
            });
            self.watched.insert(k, task.abort_handle());
        }
    }
}

impl Drop for DriftWatches {
    fn drop(&mut self) {
        for task in self.watched.values() {
            task.abort();
        }
    }
}

/// `apiVersion/kind/namespace/name` of an object.
pub fn object_key(v: &Value) -> String {
    format!(
        "{}/{}/{}/{}",
        v["apiVersion"].as_str().unwrap_or_default(),
        v["kind"].as_str().unwrap_or_default(),
        v["metadata"]["namespace"].as_str().unwrap_or_default(),
        v["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// What identifies a user-visible change of an object: its generation where it has one,
/// else a hash of everything but status and server-managed metadata (written straight from
/// the object: no copy of it, which for the ten thousand objects of an initial sync, each
/// marked once from its apply response and once from its watch event, was a tenth of the
/// daemon's allocations).
pub fn change_mark(v: &Value) -> String {
    if let Some(g) = v["metadata"]["generation"].as_i64() {
        return format!("g{g}");
    }
    const SERVER_MANAGED: [&str; 5] = [
        "resourceVersion",
        "managedFields",
        "generation",
        "uid",
        "creationTimestamp",
    ];
    let mut out = String::with_capacity(512);
    match v.as_object() {
        Some(map) => {
            let mut keys: Vec<&String> = map.keys().filter(|k| *k != "status").collect();
            keys.sort_unstable();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                rollgit_render::write_json_string(k, &mut out);
                out.push(':');
                match (k.as_str(), &map[*k]) {
                    ("metadata", Value::Object(meta)) => {
                        rollgit_render::write_canonical_object(meta, &mut out, |k| {
                            SERVER_MANAGED.contains(&k)
                        });
                    }
                    (_, child) => rollgit_render::write_canonical(child, &mut out),
                }
            }
            out.push('}');
        }
        None => rollgit_render::write_canonical(v, &mut out),
    }
    format!("h{}", rollgit_render::hex_sha256(out.as_bytes()))
}

/// [`change_mark`] as it was first written (a copy without the server's fields, hashed): the
/// oracle of its test.
#[cfg(test)]
fn change_mark_by_copy(v: &Value) -> String {
    if let Some(g) = v["metadata"]["generation"].as_i64() {
        return format!("g{g}");
    }
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("status");
    }
    if let Some(m) = c["metadata"].as_object_mut() {
        for k in [
            "resourceVersion",
            "managedFields",
            "generation",
            "uid",
            "creationTimestamp",
        ] {
            m.remove(k);
        }
    }
    format!("h{}", rollgit_render::spec_hash(&c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn change_marks_ignore_what_the_server_manages() {
        let a = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "1"}, "data": {"k": "v"}});
        let b = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "resourceVersion": "2"}, "data": {"k": "v"}});
        let c = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"k": "w"}});
        assert_eq!(change_mark(&a), change_mark(&b));
        assert_ne!(change_mark(&a), change_mark(&c));
        let d = json!({"metadata": {"generation": 3}, "spec": {}});
        assert_eq!(change_mark(&d), "g3");
        assert_eq!(object_key(&a), "v1/ConfigMap//c");
    }

    #[test]
    fn change_marks_are_those_of_a_copy_without_the_servers_fields() {
        let cases = [
            (
                "a ConfigMap",
                json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "n", "resourceVersion": "7", "uid": "u",
                    "creationTimestamp": "t", "managedFields": [{"manager": "rollgit"}],
                    "labels": {"rollgit.dev/app": "a"}},
                "data": {"k": "v", "z\"q": "w"}}),
            ),
            (
                "a Service with a status",
                json!({"apiVersion": "v1", "kind": "Service",
                "metadata": {"name": "s"}, "spec": {"ports": [{"port": 80}]},
                "status": {"loadBalancer": {}}}),
            ),
            (
                "metadata that is not an object",
                json!({"kind": "X", "metadata": 3}),
            ),
            ("a generation", json!({"metadata": {"generation": 4}})),
        ];
        for (name, v) in cases {
            assert_eq!(change_mark(&v), change_mark_by_copy(&v), "{name}");
        }
        // Shapes no API server returns (the copy added `"metadata": null`, or panicked): the
        // mark only has to tell a change.
        for (a, b) in [
            (json!({"kind": "X"}), json!({"kind": "Y"})),
            (json!([1, 2]), json!([1, 3])),
        ] {
            assert_eq!(change_mark(&a), change_mark(&a.clone()));
            assert_ne!(change_mark(&a), change_mark(&b));
        }
    }
}
