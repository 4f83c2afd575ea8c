//! The garbage collector and namespace controller: cascading deletion through ownerReferences
//! (background and foreground), orphaning, and emptying namespaces that are being deleted.

use crate::resources::GroupResource;
use crate::store::{Change, EventType, ObjKey, Store, WatchEvent};
use serde_json::{Value, json};
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

fn namespaces() -> GroupResource {
    GroupResource {
        group: String::new(),
        resource: "namespaces".into(),
    }
}

fn finalizers(v: &Value) -> Vec<Value> {
    v["metadata"]["finalizers"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Deletes one object as a background deletion would: objects with finalizers only get a
/// deletionTimestamp; the rest are removed.
pub fn delete_key(store: &Store, key: &ObjKey) {
    let res = store.write(key, false, |cur, _| {
        let Some(cur) = cur else {
            return Ok(Change::Unchanged);
        };
        let mut v = cur.value();
        if finalizers(&v).is_empty() && key.gr != namespaces() {
            return Ok(Change::Delete);
        }
        if cur.meta.deleting {
            return Ok(Change::Unchanged);
        }
        v["metadata"]["deletionTimestamp"] = json!(crate::time::now_rfc3339());
        v["metadata"]["deletionGracePeriodSeconds"] = json!(0);
        if key.gr == namespaces() {
            v["status"]["phase"] = json!("Terminating");
        }
        Ok(Change::Put(v))
    });
    if let Err(e) = res {
        tracing::warn!(?key, error = %e, "garbage collector could not delete");
    }
}

fn remove_finalizer(store: &Store, key: &ObjKey, finalizer: &str) {
    let res = store.write(key, false, |cur, _| {
        let Some(cur) = cur else {
            return Ok(Change::Unchanged);
        };
        let mut v = cur.value();
        let mut fs = finalizers(&v);
        let before = fs.len();
        fs.retain(|f| f != finalizer);
        if fs.len() == before {
            return Ok(Change::Unchanged);
        }
        if fs.is_empty() {
            if cur.meta.deleting {
                return Ok(Change::Delete);
            }
            if let Some(m) = v["metadata"].as_object_mut() {
                m.remove("finalizers");
            }
        } else {
            v["metadata"]["finalizers"] = Value::Array(fs);
        }
        Ok(Change::Put(v))
    });
    if let Err(e) = res {
        tracing::warn!(?key, error = %e, "garbage collector could not remove a finalizer");
    }
}

/// Removes the ownerReferences to `owner_uid` from its dependents (the Orphan policy).
pub fn orphan_dependents(store: &Store, owner_uid: &str) {
    for dep in store.dependents_of(owner_uid) {
        let res = store.write(&dep, false, |cur, _| {
            let Some(cur) = cur else {
                return Ok(Change::Unchanged);
            };
            let mut v = cur.value();
            if let Some(refs) = v["metadata"]["ownerReferences"].as_array_mut() {
                refs.retain(|r| r["uid"] != owner_uid);
                if refs.is_empty()
                    && let Some(m) = v["metadata"].as_object_mut()
                {
                    m.remove("ownerReferences");
                }
            }
            Ok(Change::Put(v))
        });
        if let Err(e) = res {
            tracing::warn!(?dep, error = %e, "could not orphan a dependent");
        }
    }
}

/// What an owner reference of an object in namespace `dependent_ns` (`""`: cluster-scoped)
/// resolves to, as kube-controller-manager's garbage collector decides: an owner is looked
/// up in the dependent's namespace, so a namespaced owner elsewhere is absent (the dependent
/// is collected once all its owners are absent), and a cluster-scoped dependent naming a
/// namespaced owner can never be resolved (it is never collected).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnerRef {
    Present,
    Absent,
    Unresolvable,
}

fn resolve_owner(store: &Store, owner_uid: &str, dependent_ns: &str) -> OwnerRef {
    match store.key_of_uid(owner_uid) {
        None => OwnerRef::Absent,
        Some(k) if k.namespace.is_empty() || k.namespace == dependent_ns => OwnerRef::Present,
        Some(_) if dependent_ns.is_empty() => OwnerRef::Unresolvable,
        Some(k) => {
            tracing::warn!(
                dependent_namespace = dependent_ns,
                owner_namespace = %k.namespace,
                owner = %k.name,
                "OwnerRefInvalidNamespace: an ownerReference names an owner in another namespace; it is treated as absent"
            );
            OwnerRef::Absent
        }
    }
}

/// Whether every owner of the object `key` is absent; `gone` is an owner just deleted (its
/// uid and namespace).
fn orphaned(store: &Store, key: &ObjKey, owners: &[String], gone: Option<(&str, &str)>) -> bool {
    owners.iter().all(|o| match gone {
        Some((uid, owner_ns)) if uid == o => owner_ns.is_empty() || !key.namespace.is_empty(),
        _ => resolve_owner(store, o, &key.namespace) == OwnerRef::Absent,
    })
}

fn collect_dependents(store: &Store, owner: &ObjKey, owner_uid: &str) {
    for dep in store.dependents_of(owner_uid) {
        let Some(e) = store.get(&dep) else { continue };
        if orphaned(
            store,
            &dep,
            &e.meta.owners,
            Some((owner_uid, &owner.namespace)),
        ) {
            delete_key(store, &dep);
        }
    }
}

fn finish_namespace(store: &Store, ns: &str) {
    let key = ObjKey {
        gr: namespaces(),
        namespace: String::new(),
        name: ns.to_string(),
    };
    let Some(e) = store.get(&key) else { return };
    if !e.meta.deleting {
        return;
    }
    let remaining = store.keys_in_namespace(ns);
    if remaining.is_empty() {
        let res = store.write(&key, false, |cur, _| {
            Ok(if cur.is_some() {
                Change::Delete
            } else {
                Change::Unchanged
            })
        });
        if let Err(e) = res {
            tracing::warn!(namespace = ns, error = %e, "could not finish deleting a namespace");
        }
    } else {
        for k in remaining {
            delete_key(store, &k);
        }
    }
}

fn handle(store: &Store, ev: &WatchEvent) {
    let meta = &ev.entry.meta;
    match ev.etype {
        EventType::Deleted => {
            if !meta.uid.is_empty() {
                collect_dependents(store, &ev.key, &meta.uid);
            }
            // Owners waiting in foreground deletion may now be free.
            for owner in &meta.owners {
                if let Some(okey) = store.key_of_uid(owner)
                    && store.dependents_of(owner).is_empty()
                    && let Some(oe) = store.get(&okey)
                    && oe.meta.deleting
                {
                    remove_finalizer(store, &okey, "foregroundDeletion");
                }
            }
            if !ev.key.namespace.is_empty() {
                finish_namespace(store, &ev.key.namespace);
            }
            if ev.key.gr.group == "apiextensions.k8s.io" {
                let v = ev.entry.value();
                let gr = GroupResource {
                    group: v["spec"]["group"].as_str().unwrap_or_default().to_string(),
                    resource: v["spec"]["names"]["plural"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string(),
                };
                for (k, _) in store.list(&gr, None, None).1 {
                    delete_key(store, &k);
                }
            }
        }
        // An object whose owners are all absent (deleted before it was written, or in
        // another namespace) is collected as soon as it is seen.
        EventType::Added | EventType::Modified
            if !meta.deleting
                && !meta.owners.is_empty()
                && orphaned(store, &ev.key, &meta.owners, None) =>
        {
            delete_key(store, &ev.key);
        }
        EventType::Added | EventType::Modified if meta.deleting => {
            if ev.key.gr == namespaces() {
                finish_namespace(store, &ev.key.name);
                return;
            }
            let v = ev.entry.value();
            let fs = finalizers(&v);
            if fs.iter().any(|f| f == "orphan") {
                orphan_dependents(store, &meta.uid);
                remove_finalizer(store, &ev.key, "orphan");
            } else if fs.iter().any(|f| f == "foregroundDeletion") {
                let deps = store.dependents_of(&meta.uid);
                if deps.is_empty() {
                    remove_finalizer(store, &ev.key, "foregroundDeletion");
                } else {
                    for d in deps {
                        delete_key(store, &d);
                    }
                }
            }
        }
        _ => {}
    }
}

/// Collects every object whose owners are all gone (after missed events).
fn resync(store: &Store) {
    for (key, owners) in store.owned_objects() {
        if orphaned(store, &key, &owners, None) {
            delete_key(store, &key);
        }
    }
}

/// Runs the garbage collector until the store's event stream closes. Missed events (when it
/// lags behind a burst of writes) are made up by one resync once the burst has been read.
pub async fn run(store: Arc<Store>) {
    let mut rx = store.subscribe();
    let mut missed = false;
    loop {
        match rx.recv().await {
            Ok(ev) => handle(&store, &ev),
            Err(RecvError::Lagged(n)) => {
                tracing::debug!(missed = n, "garbage collector lagged; will resync");
                missed = true;
            }
            Err(RecvError::Closed) => return,
        }
        if missed && rx.is_empty() {
            resync(&store);
            missed = false;
        }
    }
}
