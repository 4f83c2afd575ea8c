//! The **apply** stage: server-side apply of an app's rendered objects under one field manager,
//! in a stable order, then prune of what left Git.
//!
//! ```text
//! apply_app(app, objects, prune, prev_inventory)
//!   1. Namespaces                      ┐ each phase applied concurrently (bounded),
//!   2. CustomResourceDefinitions       │ phases one after another;
//!      └─ wait until Established       │ discovery refreshed for their groups
//!   3. everything else                 │
//!   4. admission webhook configurations┘
//!   5. prune: prev_inventory − new set, deleted with propagationPolicy Background
//!      (namespaced objects first, then CRDs, then Namespaces)
//! ```
//!
//! Every applied object is labelled `app.kubernetes.io/managed-by: rollgit` and
//! `rollgit.dev/app: <app>`, and applied with `PatchParams::apply("rollgit").force()`. A no-op
//! apply does not change the object; an object counts as **changed** when its resourceVersion
//! before the apply (read with a metadata-only GET) differs from the one the apply returned, so a
//! status update by a controller in that window can, rarely, count as a change.
//!
//! Per-object failures (validation, unknown kind, conflicts) are collected in the
//! [`ApplyReport`]; the other objects are still applied. Error texts name the object and never
//! include Secret data (for Secrets only the reason and the field paths are kept).
//!
//! Prune deletes an object only when its live copy still carries `rollgit.dev/app: <app>` (an
//! object another app took over is left alone), and only when every new object's kind could be
//! resolved (otherwise the new set is uncertain and nothing is pruned in that pass).
//!
//! Health ([`health`]) and the status resource ([`status`]) live in submodules.

// The daemon loop (src/daemon.rs) wires this module in; until then nothing in the binary calls
// it. The lead removes this allow when wiring.

pub mod health;
pub mod inventory;
pub mod status;

pub use health::{Health, HealthStatus, aggregate, health};
pub use inventory::{Inventory, ObjRef};
pub use status::{
    AppStatus, ComponentStatus, Phase, Recorded, StatusError, application_crd, application_owner,
    delete_status, ensure_crds, read_recorded, record_drift, recorded_from_status, write_status,
};

use futures::{StreamExt, future};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersion};
use kube::discovery::{self, ApiCapabilities, Scope};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::{debug, info, warn};

/// The one field manager rollgit applies with.
pub const FIELD_MANAGER: &str = "rollgit";
/// Label on every applied object: `app.kubernetes.io/managed-by: rollgit`.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// Label on every applied object naming its app.
pub const APP_LABEL: &str = "rollgit.dev/app";
/// Default bound on concurrent requests of one apply.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Default bound on waiting for a CRD to be Established.
pub const DEFAULT_CRD_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the apply stage as a whole (per-object failures go into [`ApplyReport::errors`]).
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The API server could not be reached for discovery (transient: retry with backoff).
    #[error("discovering the API resources of {api_version}")]
    Discover {
        api_version: String,
        #[source]
        source: kube::Error,
    },
    /// Reading an object failed.
    #[error("reading {object}")]
    Read {
        object: String,
        #[source]
        source: kube::Error,
    },
    /// The app name is not a valid label value.
    #[error("app name {app:?} is not a valid label value")]
    InvalidAppName { app: String },
}

impl ApplyError {
    /// True when retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Discover { .. } | Self::Read { .. })
    }
}

/// What one [`Applier::apply_app`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Every object applied successfully (changed or not), in input order.
    pub applied: Vec<ObjRef>,
    /// The applied objects whose resourceVersion changed (created or updated), in input order.
    pub changed: Vec<ObjRef>,
    /// Objects deleted because they left the app.
    pub pruned: Vec<ObjRef>,
    /// Objects that failed, with a message naming the failure (never Secret data).
    pub errors: Vec<(ObjRef, String)>,
    /// The inventory to record: the new set, plus objects that left but were not pruned
    /// (prune off, or the delete failed), so that a later prune still finds them.
    pub inventory: Inventory,
    /// The applied objects as the server returned them (in input order; may hold Secret data:
    /// never log them).
    pub live: Vec<Value>,
}

impl ApplyReport {
    /// True when nothing failed.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// Served resources of one `apiVersion`.
type Resources = Arc<Vec<(ApiResource, ApiCapabilities)>>;

/// Applies apps' objects to one cluster. Cheap to share (`&self` everywhere); the discovery
/// cache is per `apiVersion` and refreshed when a kind is not found in it.
pub struct Applier {
    client: Client,
    discovery: RwLock<HashMap<String, Resources>>,
    concurrency: usize,
    crd_timeout: Duration,
}

/// One object ready to apply.
struct Prepared {
    index: usize,
    oref: ObjRef,
    ar: ApiResource,
    is_secret: bool,
    object: Value,
}

enum Outcome {
    Applied {
        index: usize,
        oref: ObjRef,
        changed: bool,
        live: Box<Value>,
    },
    Failed {
        index: usize,
        oref: ObjRef,
        message: String,
    },
}

fn phase_of(obj: &Value) -> u8 {
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    let (group, _) = inventory::split_api_version(api_version);
    match (group, obj["kind"].as_str().unwrap_or("")) {
        ("", "Namespace") => 0,
        ("apiextensions.k8s.io", "CustomResourceDefinition") => 1,
        ("admissionregistration.k8s.io", k) if k.ends_with("WebhookConfiguration") => 3,
        _ => 2,
    }
}

fn is_label_value(s: &str) -> bool {
    s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && s.bytes().next().is_none_or(|b| b.is_ascii_alphanumeric())
        && s.bytes().last().is_none_or(|b| b.is_ascii_alphanumeric())
}

/// Text of a kube error for a report: the API status (reason, code, message) or the transport
/// error. For Secrets only the reason, code and field paths of the causes.
pub(crate) fn error_text(e: &kube::Error, is_secret: bool) -> String {
    match e {
        kube::Error::Api(s) if is_secret => {
            let fields: Vec<String> = s
                .details
                .as_ref()
                .map(|d| {
                    d.causes
                        .iter()
                        .map(|c| format!("{} ({})", c.field, c.reason))
                        .collect()
                })
                .unwrap_or_default();
            if fields.is_empty() {
                format!("{} ({})", s.reason, s.code)
            } else {
                format!("{} ({}): {}", s.reason, s.code, fields.join(", "))
            }
        }
        kube::Error::Api(s) => format!("{} ({}): {}", s.reason, s.code, s.message),
        other if is_secret => "request failed".to_string() + &transport_kind(other),
        other => other.to_string(),
    }
}

fn transport_kind(e: &kube::Error) -> String {
    match e {
        kube::Error::HyperError(_) | kube::Error::Service(_) => ": transport error".into(),
        _ => String::new(),
    }
}

/// The object as it is applied: server-populated metadata removed, rollgit's labels added.
fn prepare_object(obj: &Value, app: &str, namespace: Option<&str>) -> Value {
    let mut obj = obj.clone();
    if let Some(meta) = obj.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "managedFields",
            "selfLink",
        ] {
            meta.remove(k);
        }
        match namespace {
            Some(ns) => {
                meta.insert("namespace".into(), Value::String(ns.into()));
            }
            None => {
                meta.remove("namespace");
            }
        }
        let labels = meta
            .entry("labels")
            .or_insert_with(|| Value::Object(Map::new()));
        if !labels.is_object() {
            *labels = Value::Object(Map::new());
        }
        if let Some(labels) = labels.as_object_mut() {
            labels.insert(MANAGED_BY_LABEL.into(), Value::String(FIELD_MANAGER.into()));
            labels.insert(APP_LABEL.into(), Value::String(app.into()));
        }
    }
    obj
}

impl Applier {
    /// An applier for the cluster behind `client`.
    pub fn new(client: Client) -> Self {
        Self {
            client,
            discovery: RwLock::new(HashMap::new()),
            concurrency: DEFAULT_CONCURRENCY,
            crd_timeout: DEFAULT_CRD_TIMEOUT,
        }
    }

    /// At most `n` requests in flight per phase (at least 1).
    pub fn with_concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How long to wait for an applied CRD to be Established.
    pub fn with_crd_timeout(mut self, timeout: Duration) -> Self {
        self.crd_timeout = timeout;
        self
    }

    /// The client this applier uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    fn cached(&self, api_version: &str) -> Option<Resources> {
        self.discovery
            .read()
            .ok()
            .and_then(|c| c.get(api_version).cloned())
    }

    fn forget(&self, api_version: &str) {
        if let Ok(mut c) = self.discovery.write() {
            c.remove(api_version);
        }
    }

    /// Fetches the resources of `api_version` into the cache. `Ok(None)` when the server does
    /// not serve it (404).
    async fn refresh(&self, api_version: &str) -> Result<Option<Resources>, ApplyError> {
        let gv: GroupVersion = match api_version.parse() {
            Ok(gv) => gv,
            Err(_) => return Ok(None),
        };
        match discovery::pinned_group(&self.client, &gv).await {
            Ok(group) => {
                let res: Resources = Arc::new(group.versioned_resources(&gv.version));
                debug!(api_version, kinds = res.len(), "discovered");
                if let Ok(mut c) = self.discovery.write() {
                    c.insert(api_version.to_string(), res.clone());
                }
                Ok(Some(res))
            }
            Err(kube::Error::Api(s)) if s.code == 404 => {
                self.forget(api_version);
                Ok(None)
            }
            Err(source) => Err(ApplyError::Discover {
                api_version: api_version.to_string(),
                source,
            }),
        }
    }

    /// Makes sure every `(apiVersion, kind)` needed is in the cache, refreshing each
    /// `apiVersion` that is missing or lacks a kind (once per call).
    async fn ensure_discovered(
        &self,
        needed: &BTreeSet<(String, String)>,
    ) -> Result<(), ApplyError> {
        // Owned strings and `async move` blocks: futures built by closures over borrowed `&str`
        // are not `Send` for every lifetime, and the daemon spawns this on a multi-thread runtime.
        let stale: BTreeSet<String> = needed
            .iter()
            .filter(|(av, kind)| {
                self.cached(av)
                    .is_none_or(|res| !res.iter().any(|(ar, _)| &ar.kind == kind))
            })
            .map(|(av, _)| av.clone())
            .collect();
        let results = future::join_all(
            stale
                .into_iter()
                .map(|av| async move { self.refresh(&av).await }),
        )
        .await;
        for r in results {
            r?;
        }
        Ok(())
    }

    /// The resource of `(apiVersion, kind)` from the cache.
    fn resolve(&self, api_version: &str, kind: &str) -> Option<(ApiResource, ApiCapabilities)> {
        self.cached(api_version)?
            .iter()
            .find(|(ar, _)| ar.kind == kind)
            .cloned()
    }

    fn api_for(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
        match namespace {
            Some(ns) => Api::namespaced_with(self.client.clone(), ns, ar),
            None => Api::all_with(self.client.clone(), ar),
        }
    }

    /// Resolves an object's resource and namespace and prepares it, or says why not.
    fn prepare(
        &self,
        index: usize,
        obj: &Value,
        app: &str,
    ) -> Result<Prepared, Box<(ObjRef, String)>> {
        let Some(raw) = ObjRef::from_object(obj) else {
            let oref = ObjRef {
                group: String::new(),
                version: String::new(),
                kind: obj["kind"].as_str().unwrap_or("").to_string(),
                namespace: None,
                name: format!("#{index}"),
            };
            return Err(Box::new((
                oref,
                "object has no apiVersion, kind or metadata.name".into(),
            )));
        };
        let api_version = raw.api_version();
        let Some((ar, caps)) = self.resolve(&api_version, &raw.kind) else {
            return Err(Box::new((
                raw.clone(),
                format!(
                    "the server does not serve kind {} in {api_version}",
                    raw.kind
                ),
            )));
        };
        let namespace = match caps.scope {
            Scope::Namespaced => Some(
                raw.namespace
                    .clone()
                    .unwrap_or_else(|| self.client.default_namespace().to_string()),
            ),
            Scope::Cluster => {
                if raw.namespace.is_some() {
                    warn!(object = %raw, "namespace ignored on a cluster-scoped object");
                }
                None
            }
        };
        let oref = ObjRef {
            namespace: namespace.clone(),
            ..raw
        };
        let object = prepare_object(obj, app, namespace.as_deref());
        Ok(Prepared {
            index,
            is_secret: oref.group.is_empty() && oref.kind == "Secret",
            oref,
            ar,
            object,
        })
    }

    async fn apply_one(&self, p: Prepared) -> Outcome {
        let api = self.api_for(&p.ar, p.oref.namespace.as_deref());
        let name = p.oref.name.as_str();
        let fail = |e: &kube::Error, what: &str| Outcome::Failed {
            index: p.index,
            oref: p.oref.clone(),
            message: format!("{what}: {}", error_text(e, p.is_secret)),
        };
        let before = match api.get_metadata_opt(name).await {
            Ok(m) => m.and_then(|m| m.metadata.resource_version),
            Err(e) => return fail(&e, "reading before apply"),
        };
        let data: DynamicObject = match serde_json::from_value(p.object.clone()) {
            Ok(d) => d,
            Err(e) => {
                return Outcome::Failed {
                    index: p.index,
                    oref: p.oref.clone(),
                    message: format!("not a Kubernetes object: {e}"),
                };
            }
        };
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        match api.patch(name, &pp, &Patch::Apply(&data)).await {
            Ok(after) => {
                let changed = before.is_none() || after.metadata.resource_version != before;
                if changed {
                    info!(object = %p.oref, created = before.is_none(), "applied");
                } else {
                    debug!(object = %p.oref, "unchanged");
                }
                Outcome::Applied {
                    index: p.index,
                    oref: p.oref,
                    changed,
                    live: Box::new(serde_json::to_value(&after).unwrap_or(Value::Null)),
                }
            }
            Err(e) => {
                let o = fail(&e, "apply");
                if let Outcome::Failed { message, .. } = &o {
                    warn!(object = %p.oref, error = %message, "apply failed");
                }
                o
            }
        }
    }

    /// Applies one phase concurrently; outcomes in completion order.
    async fn apply_phase(&self, items: Vec<Prepared>) -> Vec<Outcome> {
        // The futures are built into a Vec first: a stream that maps with a closure producing
        // borrowing futures is not `Send` for every lifetime (rust-lang/rust#102211), and the
        // daemon runs this on a multi-thread runtime.
        let futs: Vec<_> = items.into_iter().map(|p| self.apply_one(p)).collect();
        futures::stream::iter(futs)
            .buffer_unordered(self.concurrency)
            .collect()
            .await
    }

    /// Waits (bounded) until the CRD `name` is Established.
    async fn wait_established(&self, name: &str) -> Result<(), String> {
        let api: Api<CustomResourceDefinition> = Api::all(self.client.clone());
        match tokio::time::timeout(
            self.crd_timeout,
            await_condition(api, name, conditions::is_crd_established()),
        )
        .await
        {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("waiting for Established: {e}")),
            Err(_) => Err(format!(
                "not Established within {}s",
                self.crd_timeout.as_secs()
            )),
        }
    }

    /// Applies `objects` (in render's order) as app `app`, then prunes what left
    /// `prev_inventory` when `prune` is true. See the module documentation.
    pub async fn apply_app(
        &self,
        app: &str,
        objects: &[Value],
        prune: bool,
        prev_inventory: &Inventory,
    ) -> Result<ApplyReport, ApplyError> {
        if app.is_empty() || !is_label_value(app) {
            return Err(ApplyError::InvalidAppName { app: app.into() });
        }
        let mut phases: [Vec<(usize, &Value)>; 4] = Default::default();
        for (i, obj) in objects.iter().enumerate() {
            phases[usize::from(phase_of(obj))].push((i, obj));
        }
        let mut done: Vec<Outcome> = Vec::with_capacity(objects.len());
        let mut unresolved = false;
        for (n, phase) in phases.iter().enumerate() {
            if phase.is_empty() {
                continue;
            }
            let needed: BTreeSet<(String, String)> = phase
                .iter()
                .filter_map(|(_, o)| ObjRef::from_object(o))
                .map(|r| (r.api_version(), r.kind))
                .collect();
            self.ensure_discovered(&needed).await?;
            let mut ready = Vec::with_capacity(phase.len());
            for (i, obj) in phase {
                match self.prepare(*i, obj, app) {
                    Ok(p) => ready.push(p),
                    Err(failed) => {
                        let (oref, message) = *failed;
                        unresolved = true;
                        warn!(object = %oref, error = %message, "cannot apply");
                        done.push(Outcome::Failed {
                            index: *i,
                            oref,
                            message,
                        });
                    }
                }
            }
            let mut outcomes = self.apply_phase(ready).await;
            if n == 1 {
                // CRDs: wait until Established, then forget the discovery of their groups so
                // that their custom resources resolve.
                let waits = outcomes.iter().filter_map(|o| match o {
                    Outcome::Applied { oref, index, .. } => Some((*index, oref.name.clone())),
                    Outcome::Failed { .. } => None,
                });
                let waits: Vec<(usize, String)> = waits.collect();
                let results = future::join_all(waits.iter().map(|(_, name)| {
                    let name = name.clone();
                    async move { self.wait_established(&name).await }
                }))
                .await;
                for ((index, _), r) in waits.iter().zip(results) {
                    forget_crd_versions(self, &objects[*index]);
                    if let Err(message) = r
                        && let Some(slot) = outcomes
                            .iter_mut()
                            .find(|o| matches!(o, Outcome::Applied { index: i, .. } if i == index))
                        && let Outcome::Applied { oref, .. } = slot
                    {
                        warn!(object = %oref, error = %message, "CRD not established");
                        *slot = Outcome::Failed {
                            index: *index,
                            oref: oref.clone(),
                            message,
                        };
                    }
                }
            }
            done.extend(outcomes);
        }
        done.sort_by_key(|o| match o {
            Outcome::Applied { index, .. } | Outcome::Failed { index, .. } => *index,
        });

        let mut report = ApplyReport::default();
        let mut new_refs = Vec::with_capacity(done.len());
        for o in done {
            match o {
                Outcome::Applied {
                    oref,
                    changed,
                    live,
                    ..
                } => {
                    if changed {
                        report.changed.push(oref.clone());
                    }
                    report.live.push(*live);
                    new_refs.push(oref.clone());
                    report.applied.push(oref);
                }
                Outcome::Failed { oref, message, .. } => {
                    new_refs.push(oref.clone());
                    report.errors.push((oref, message));
                }
            }
        }
        let new_inventory = Inventory::from_refs(new_refs.clone());
        let gone = prev_inventory.diff(&new_inventory);
        let mut kept = Vec::new();
        if !gone.is_empty() {
            if !prune {
                debug!(
                    app,
                    count = gone.len(),
                    "prune disabled: objects that left are kept"
                );
                kept = gone;
            } else if unresolved {
                warn!(
                    app,
                    "some objects could not be resolved: prune skipped this pass"
                );
                kept = gone;
            } else {
                let (pruned, failed) = self.prune(app, gone).await?;
                report.pruned = pruned;
                for (oref, message) in failed {
                    kept.push(oref.clone());
                    report.errors.push((oref, message));
                }
            }
        }
        report.inventory = Inventory::from_refs(new_refs.into_iter().chain(kept));
        info!(
            app,
            applied = report.applied.len(),
            changed = report.changed.len(),
            pruned = report.pruned.len(),
            errors = report.errors.len(),
            "apply finished"
        );
        Ok(report)
    }

    /// Deletes `gone` (namespaced first, then CRDs, then Namespaces). Returns what was deleted
    /// and what failed.
    async fn prune(
        &self,
        app: &str,
        gone: Vec<ObjRef>,
    ) -> Result<(Vec<ObjRef>, Vec<(ObjRef, String)>), ApplyError> {
        let needed: BTreeSet<(String, String)> = gone
            .iter()
            .map(|r| (r.api_version(), r.kind.clone()))
            .collect();
        self.ensure_discovered(&needed).await?;
        let mut stages: [Vec<ObjRef>; 3] = Default::default();
        for r in gone {
            let stage = match (r.group.as_str(), r.kind.as_str()) {
                ("", "Namespace") => 2,
                ("apiextensions.k8s.io", "CustomResourceDefinition") => 1,
                _ => 0,
            };
            stages[stage].push(r);
        }
        let mut pruned = Vec::new();
        let mut failed = Vec::new();
        for stage in stages {
            let futs: Vec<_> = stage
                .into_iter()
                .map(|r| async move {
                    let res = self.prune_one(app, &r).await;
                    (r, res)
                })
                .collect();
            let results: Vec<(ObjRef, Result<bool, String>)> = futures::stream::iter(futs)
                .buffer_unordered(self.concurrency)
                .collect()
                .await;
            for (r, res) in results {
                match res {
                    Ok(true) => pruned.push(r),
                    Ok(false) => {}
                    Err(message) => failed.push((r, message)),
                }
            }
        }
        pruned.sort();
        failed.sort();
        Ok((pruned, failed))
    }

    /// Deletes one object if it is still this app's. `Ok(false)` when it is gone already or
    /// belongs to someone else now.
    async fn prune_one(&self, app: &str, r: &ObjRef) -> Result<bool, String> {
        let is_secret = r.group.is_empty() && r.kind == "Secret";
        let Some((ar, _)) = self.resolve(&r.api_version(), &r.kind) else {
            // The kind is no longer served (its CRD left): nothing to delete.
            debug!(object = %r, "kind no longer served: nothing to prune");
            return Ok(false);
        };
        let api = self.api_for(&ar, r.namespace.as_deref());
        let meta = match api.get_metadata_opt(&r.name).await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(false),
            Err(e) => {
                return Err(format!(
                    "reading before prune: {}",
                    error_text(&e, is_secret)
                ));
            }
        };
        let owner = meta
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(APP_LABEL))
            .map(String::as_str);
        if owner != Some(app) {
            warn!(object = %r, owner = owner.unwrap_or(""), "not pruned: not labelled as this app's");
            return Ok(false);
        }
        match api.delete(&r.name, &DeleteParams::background()).await {
            Ok(_) => {
                info!(object = %r, "pruned");
                Ok(true)
            }
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
            Err(e) => Err(format!("prune: {}", error_text(&e, is_secret))),
        }
    }
}

impl Applier {
    /// The API of `obj`'s kind in its namespace (the client's default namespace when it has
    /// none), with the object's reference; `None` when its kind is not served.
    async fn target(
        &self,
        obj: &Value,
    ) -> Result<Option<(ObjRef, Api<DynamicObject>)>, ApplyError> {
        let Some(r) = ObjRef::from_object(obj) else {
            return Ok(None);
        };
        let needed = BTreeSet::from([(r.api_version(), r.kind.clone())]);
        self.ensure_discovered(&needed).await?;
        let Some((ar, caps)) = self.resolve(&r.api_version(), &r.kind) else {
            return Ok(None);
        };
        let ns = match caps.scope {
            Scope::Namespaced => Some(
                r.namespace
                    .clone()
                    .unwrap_or_else(|| self.client.default_namespace().to_string()),
            ),
            Scope::Cluster => None,
        };
        let api = self.api_for(&ar, ns.as_deref());
        Ok(Some((r, api)))
    }

    /// The live copy of `obj` (`None` when missing or its kind is not served).
    pub async fn live(&self, obj: &Value) -> Result<Option<Value>, ApplyError> {
        let Some((r, api)) = self.target(obj).await? else {
            return Ok(None);
        };
        match api.get_opt(&r.name).await {
            Ok(o) => Ok(o.map(|o| serde_json::to_value(o).unwrap_or(Value::Null))),
            Err(source) => Err(ApplyError::Read {
                object: r.to_string(),
                source,
            }),
        }
    }

    /// The aggregate health of an app's objects (read live, concurrently, bounded). An object
    /// that cannot be read counts as Missing.
    pub async fn app_health(&self, objects: &[Value]) -> Health {
        let futs: Vec<_> = objects
            .iter()
            .map(|o| async move {
                let who = ObjRef::from_object(o).map_or_else(String::new, |r| r.to_string());
                let h = match self.live(o).await {
                    Ok(Some(live)) => health::health(&live),
                    Ok(None) => Health::missing(),
                    Err(e) => {
                        debug!(object = %who, error = %e, "health: cannot read");
                        Health::missing()
                    }
                };
                (who, h)
            })
            .collect();
        let healths: Vec<(String, Health)> = futures::stream::iter(futs)
            .buffered(self.concurrency)
            .collect()
            .await;
        aggregate(healths.iter().map(|(w, h)| (w.as_str(), h)))
    }
}

/// The aggregate health of an app's objects in the cluster behind `client` (see
/// [`Applier::app_health`]; discovery is not cached across calls).
pub async fn app_health(client: &Client, objects: &[Value]) -> Health {
    Applier::new(client.clone()).app_health(objects).await
}

/// True when `obj` exists in the cluster behind `client` (false when it cannot be read).
pub async fn exists(client: &Client, obj: &Value) -> bool {
    matches!(Applier::new(client.clone()).live(obj).await, Ok(Some(_)))
}

/// Drops the cached discovery of the group versions a CRD serves.
fn forget_crd_versions(applier: &Applier, crd: &Value) {
    let Some(group) = crd["spec"]["group"].as_str() else {
        return;
    };
    for v in crd["spec"]["versions"].as_array().into_iter().flatten() {
        if let Some(version) = v["name"].as_str() {
            applier.forget(&format!("{group}/{version}"));
        }
    }
}

impl Applier {
    /// What the server would store if `obj` were applied now (server-side apply with
    /// `dryRun=All`, rollgit's field manager, force): the desired side of `rollgit diff`, as
    /// `kubectl diff` computes it. `None` when the kind is not served.
    pub async fn dry_run_apply(&self, obj: &Value) -> Result<Option<Value>, ApplyError> {
        let Some((r, api)) = self.target(obj).await? else {
            return Ok(None);
        };
        let pp = kube::api::PatchParams::apply(FIELD_MANAGER)
            .force()
            .dry_run();
        match api.patch(&r.name, &pp, &kube::api::Patch::Apply(obj)).await {
            Ok(o) => Ok(Some(serde_json::to_value(o).unwrap_or(Value::Null))),
            Err(source) => Err(ApplyError::Read {
                object: r.to_string(),
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phases_put_namespaces_and_crds_first_and_webhooks_last() {
        let cases = [
            (
                "namespace",
                json!({"apiVersion": "v1", "kind": "Namespace"}),
                0,
            ),
            (
                "crd",
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}),
                1,
            ),
            (
                "deployment",
                json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
                2,
            ),
            (
                "custom resource",
                json!({"apiVersion": "example.com/v1", "kind": "Namespace"}),
                2,
            ),
            (
                "webhook",
                json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration"}),
                3,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(phase_of(&obj), want, "case {name}");
        }
    }

    #[test]
    fn prepare_object_labels_and_strips_server_fields() {
        let obj = json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "c", "namespace": "x", "resourceVersion": "7", "uid": "u",
                "labels": {"team": "blue"}},
            "data": {"k": "v"},
        });
        let out = prepare_object(&obj, "demo", Some("x"));
        assert_eq!(
            out,
            json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "c", "namespace": "x", "labels": {
                    "team": "blue", MANAGED_BY_LABEL: "rollgit", APP_LABEL: "demo"}},
                "data": {"k": "v"},
            })
        );
        let ns = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "n", "namespace": "bogus"}});
        assert_eq!(
            prepare_object(&ns, "demo", None)["metadata"],
            json!({"name": "n", "labels": {MANAGED_BY_LABEL: "rollgit", APP_LABEL: "demo"}})
        );
    }

    #[test]
    fn label_values() {
        for (v, ok) in [
            ("demo", true),
            ("my-app.v1_x", true),
            ("-x", false),
            ("x-", false),
            ("a/b", false),
            (&"a".repeat(64), false),
        ] {
            assert_eq!(is_label_value(v), ok, "{v}");
        }
    }

    #[test]
    fn secret_errors_keep_only_reason_and_fields() {
        let status = kube::core::Status::failure(
            r#"Secret "s" is invalid: data[bad key]: Invalid value: "hunter2""#,
            "Invalid",
        )
        .with_code(422);
        let mut status = status;
        status.details = Some(kube::core::response::StatusDetails {
            causes: vec![kube::core::response::StatusCause {
                field: "data[bad key]".into(),
                reason: "FieldValueInvalid".into(),
                message: "Invalid value: \"hunter2\"".into(),
            }],
            name: "s".into(),
            group: String::new(),
            kind: "secrets".into(),
            uid: String::new(),
            retry_after_seconds: 0,
        });
        let e = kube::Error::Api(Box::new(status));
        let secret = error_text(&e, true);
        assert_eq!(secret, "Invalid (422): data[bad key] (FieldValueInvalid)");
        assert!(!secret.contains("hunter2"));
        assert!(error_text(&e, false).contains("is invalid"));
    }
}
