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

pub mod discovery;
pub mod drift;
pub mod health;
pub mod order;
pub mod prune;

pub use health::{Health, HealthStatus, aggregate, health};

use crate::ErrorClass;
use crate::k8s::{APP_LABEL, FIELD_MANAGER, Inventory, MANAGED_BY, MANAGED_BY_LABEL, ObjRef};
use discovery::forget_crd_versions;
use futures::{StreamExt, future};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::discovery::{ApiCapabilities, Scope};
use kube::runtime::wait::{await_condition, conditions};
use order::Phase;
use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tracing::{debug, info, warn};

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
    /// How a caller retries it.
    pub fn class(&self) -> ErrorClass {
        match self {
            Self::Discover { source, .. } | Self::Read { source, .. } => {
                ErrorClass::of_kube(source)
            }
            Self::InvalidAppName { .. } => ErrorClass::Terminal,
        }
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
    /// Whether some error may go away when tried again (a transport error, a kind not served
    /// yet); the others fail the same way until the input changes.
    pub transient: bool,
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
pub(crate) type Resources = Arc<Vec<(ApiResource, ApiCapabilities)>>;

/// Applies apps' objects to one cluster. Cheap to share (`&self` everywhere); the discovery
/// cache is per `apiVersion` and refreshed when a kind is not found in it.
pub struct Applier {
    client: Client,
    pub(crate) discovery: RwLock<HashMap<String, Resources>>,
    pub(crate) concurrency: usize,
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
        /// Whether trying again later may succeed.
        transient: bool,
    },
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
            labels.insert(MANAGED_BY_LABEL.into(), Value::String(MANAGED_BY.into()));
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

    pub(crate) fn api_for(&self, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
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
            transient: ErrorClass::of_kube(e) == ErrorClass::Transient,
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
                    transient: false,
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
            Ok(Err(e)) => Err(format!(
                "waiting for Established: {}",
                crate::error_chain(&e)
            )),
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
        if app.is_empty() || !rollgit_syntax::is_label_value(app) {
            return Err(ApplyError::InvalidAppName { app: app.into() });
        }
        let mut phases: [Vec<(usize, &Value)>; 4] = Default::default();
        for (i, obj) in objects.iter().enumerate() {
            phases[Phase::of_object(obj).index()].push((i, obj));
        }
        for phase in &mut phases {
            phase.sort_by(|(_, a), (_, b)| {
                let key = |o: &Value| {
                    (
                        o["metadata"]["namespace"]
                            .as_str()
                            .unwrap_or("")
                            .to_string(),
                        o["metadata"]["name"].as_str().unwrap_or("").to_string(),
                    )
                };
                key(a).cmp(&key(b))
            });
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
                        // An unknown kind may be served soon (its CRD applied by another app).
                        done.push(Outcome::Failed {
                            index: *i,
                            oref,
                            message,
                            transient: true,
                        });
                    }
                }
            }
            let mut outcomes = self.apply_phase(ready).await;
            if n == Phase::Definitions.index() {
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
                            transient: true,
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
                Outcome::Failed {
                    oref,
                    message,
                    transient,
                    ..
                } => {
                    new_refs.push(oref.clone());
                    report.transient |= transient;
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
                    report.transient = true;
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
                        debug!(object = %who, error = %crate::error_chain(&e), "health: cannot read");
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

/// One object of [`Applier::dry_run_app`]: what is live and what an apply would store.
#[derive(Debug, Clone)]
pub struct DryRun {
    /// The object (namespace resolved as the apply resolves it).
    pub oref: ObjRef,
    /// Whether it is a Secret (its data must be masked when shown).
    pub is_secret: bool,
    /// The live object, `None` when it does not exist.
    pub live: Option<Value>,
    /// What the server would store if it were applied now (server-side apply with
    /// `dryRun=All`, rollgit's field manager, force: what `kubectl diff` computes), or why it
    /// cannot be applied.
    pub desired: Result<Value, String>,
}

impl Applier {
    /// What applying `objects` as app `app` would change, object by object, prepared exactly
    /// as [`Applier::apply_app`] prepares them (labels, namespace): the desired side of
    /// `rollgit diff`. Nothing is changed in the cluster.
    pub async fn dry_run_app(
        &self,
        app: &str,
        objects: &[Value],
    ) -> Result<Vec<DryRun>, ApplyError> {
        let needed: BTreeSet<(String, String)> = objects
            .iter()
            .filter_map(ObjRef::from_object)
            .map(|r| (r.api_version(), r.kind))
            .collect();
        self.ensure_discovered(&needed).await?;
        let mut out = Vec::with_capacity(objects.len());
        for (i, obj) in objects.iter().enumerate() {
            let p = match self.prepare(i, obj, app) {
                Ok(p) => p,
                Err(failed) => {
                    let (oref, message) = *failed;
                    out.push(DryRun {
                        is_secret: oref.group.is_empty() && oref.kind == "Secret",
                        oref,
                        live: None,
                        desired: Err(message),
                    });
                    continue;
                }
            };
            let api = self.api_for(&p.ar, p.oref.namespace.as_deref());
            let live = api
                .get_opt(&p.oref.name)
                .await
                .map_err(|source| ApplyError::Read {
                    object: p.oref.to_string(),
                    source,
                })?
                .map(|o| serde_json::to_value(o).unwrap_or(Value::Null));
            let pp = PatchParams::apply(FIELD_MANAGER).force().dry_run();
            let desired = match api.patch(&p.oref.name, &pp, &Patch::Apply(&p.object)).await {
                Ok(o) => Ok(serde_json::to_value(o).unwrap_or(Value::Null)),
                Err(e) => Err(error_text(&e, p.is_secret)),
            };
            out.push(DryRun {
                oref: p.oref,
                is_secret: p.is_secret,
                live,
                desired,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
