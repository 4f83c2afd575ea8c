//! The app's status object: one `applications.rollgit.dev` Application per app, in the app's
//! namespace, whose `kubectl get app` columns are those of seed 000 (NAME COMPONENT TYPE PHASE
//! HEALTHY STATUS AGE).
//!
//! [`write_status`] creates a missing Application with its status (one request), server-side
//! applies the spec (the app's source) only when it differs, and merge-patches the status only
//! when it differs from the live one. Condition `lastTransitionTime`s change only when a
//! condition's status changes, and nothing else in the status depends on the clock, so an
//! unchanged app causes no write (no hot loops).
//!
//! The Application CRD has no status subresource (as Argo CD's Application), so a create
//! carries the status and a status write is one merge patch of the object's `status` key,
//! which leaves `spec.suspend`, the annotations and `status.promotion` (others' fields) alone.
//! A cluster whose installed CRD still has the subresource (an older rollgit's, or one an admin
//! installed) ignores `status` in both; each write checks that its response holds what it
//! wrote and, when not, writes `applications/status` as well and remembers
//! ([`crate::k8s::crds::set_status_subresource`]) to go there first.

use crate::apply::{ApplyReport, Health};
use crate::k8s::crds::{
    ApplicationSpec, ApplicationStatus, ComponentStatus, Condition, HeldPruneStatus, Phase,
    set_status_subresource, status_subresource,
};
use crate::k8s::{Application, FIELD_MANAGER, Inventory, MANAGED_BY, MANAGED_BY_LABEL, ObjRef};
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use rollgit_render::Rendered;
use serde_json::{Map, Value, json};
use tracing::{debug, info};

/// Errors of the status writer.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// Reading the Application failed.
    #[error("reading Application {namespace}/{app}")]
    Read {
        namespace: String,
        app: String,
        #[source]
        source: kube::Error,
    },
    /// The Application's status does not parse (edited by hand, or by another tool).
    #[error("the status of Application {namespace}/{app} does not parse: {message}")]
    Parse {
        namespace: String,
        app: String,
        message: String,
    },
    /// Applying the Application's spec failed.
    #[error("applying Application {namespace}/{app}")]
    ApplySpec {
        namespace: String,
        app: String,
        #[source]
        source: kube::Error,
    },
    /// Creating the Application (with its status) failed.
    #[error("creating Application {namespace}/{app}")]
    Create {
        namespace: String,
        app: String,
        #[source]
        source: kube::Error,
    },
    /// Patching the Application's status failed.
    #[error("patching the status of Application {namespace}/{app}")]
    PatchStatus {
        namespace: String,
        app: String,
        #[source]
        source: kube::Error,
    },
    /// Deleting the Application failed.
    #[error("deleting Application {namespace}/{app}")]
    Delete {
        namespace: String,
        app: String,
        #[source]
        source: kube::Error,
    },
}

impl StatusError {
    /// How a caller retries it.
    pub fn class(&self) -> crate::ErrorClass {
        match self {
            StatusError::Read { source, .. }
            | StatusError::ApplySpec { source, .. }
            | StatusError::Create { source, .. }
            | StatusError::PatchStatus { source, .. }
            | StatusError::Delete { source, .. } => crate::ErrorClass::of_kube(source),
            StatusError::Parse { .. } => crate::ErrorClass::Terminal,
        }
    }
}

/// `running` when healthy (or when rollgit cannot tell: an `Unknown` health keeps HEALTHY
/// false and says why in STATUS), `stalled` when an object says it waits for a person (its
/// health message holds [`crate::k8s::STALLED`]), `unhealthy` otherwise.
pub fn phase_from_health(h: &Health) -> Phase {
    if h.is_healthy() || h.status == crate::apply::HealthStatus::Unknown {
        Phase::Running
    } else if h.message.contains(crate::k8s::STALLED) {
        Phase::Stalled
    } else {
        Phase::Unhealthy
    }
}

/// Everything [`write_status`] records for an app. The daemon builds it each pass; the same
/// value twice writes nothing the second time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppStatus {
    /// The phase.
    pub phase: Phase,
    /// Aggregate health ([`super::aggregate`], [`super::app_health`]).
    pub health: Health,
    /// The STATUS column: a short message, empty when all is well (as in seed 000).
    pub message: String,
    /// The commit whose objects are in the cluster.
    pub last_applied_commit: Option<String>,
    /// The last commit rollgit tried (equal to the applied one unless it failed).
    pub last_attempted_commit: Option<String>,
    /// The errors of the last attempt (`path:line: message`, or `object: message`); empty
    /// when it succeeded.
    pub last_error: Vec<String>,
    /// What the app applied.
    pub inventory: Inventory,
    /// `app.oam.dev/publishVersion`.
    pub publish_version: Option<String>,
    /// Hash of everything the app rendered at `publish_version` (so a restarted daemon knows
    /// whether the next render is a new version).
    pub content_hash: Option<String>,
    /// Components (KubeVela apps), first one shown in the COMPONENT and TYPE columns.
    pub components: Vec<ComponentStatus>,
    /// How many drift corrections rollgit made for this app since it started.
    pub drift_corrections: u64,
    /// A prune held back for confirmation.
    pub held_prune: Option<HeldPruneStatus>,
    /// The last `rollgit sync` request handled.
    pub last_sync_request: Option<String>,
    /// `rollgit suspend` holds the app: phase `suspended`, nothing applied.
    pub suspended: bool,
    /// The workflow run, for an app with topology policies or a workflow.
    pub workflow: Option<crate::k8s::crds::WorkflowStatus>,
    /// What the workflow delivered to each cluster.
    pub clusters: Vec<crate::k8s::crds::ClusterStatus>,
}

fn condition(type_: &str, ok: bool, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.into(),
        status: if ok { "True" } else { "False" }.into(),
        reason: reason.into(),
        message: message.into(),
        last_transition_time: None,
    }
}

/// The conditions of a status: `Ready` (from health) and `Synced` (from the commits and
/// errors), without `lastTransitionTime`.
fn conditions_of(s: &AppStatus) -> Vec<Condition> {
    let mut ready = condition(
        "Ready",
        s.health.is_healthy(),
        s.health.status.as_str(),
        &s.health.message,
    );
    if s.health.status == crate::apply::HealthStatus::Unknown {
        ready.status = "Unknown".into();
    }
    let synced = if s.suspended {
        condition("Synced", false, "Suspended", SUSPENDED_MESSAGE)
    } else if let Some(first) = s.last_error.first() {
        condition("Synced", false, "SyncFailed", first)
    } else if let Some(h) = &s.held_prune {
        condition(
            "Synced",
            false,
            "PruneHeld",
            &format!(
                "a prune of {} of the app's {} objects waits for `rollgit sync APP --allow-mass-prune`",
                h.count, h.inventory
            ),
        )
    } else if s.last_applied_commit.is_some() && s.last_applied_commit == s.last_attempted_commit {
        condition("Synced", true, "Applied", "")
    } else {
        condition("Synced", false, "Pending", "")
    };
    vec![ready, synced]
}

/// The status to store, with each condition's `lastTransitionTime` kept from `live` when its
/// status did not change, and `now` otherwise; the drift fields [`record_drift`] owns are
/// kept from `live`.
pub fn desired_status(
    s: &AppStatus,
    live: Option<&ApplicationStatus>,
    now: &str,
) -> ApplicationStatus {
    let (component, component_type) = s
        .components
        .first()
        .map_or(("-", "-"), |c| (c.name.as_str(), c.type_.as_str()));
    let mut conditions = conditions_of(s);
    for c in &mut conditions {
        let prev = live.and_then(|l| l.conditions.iter().find(|p| p.type_ == c.type_));
        c.last_transition_time = match prev {
            Some(p) if p.status == c.status && p.last_transition_time.is_some() => {
                p.last_transition_time.clone()
            }
            _ => Some(now.to_string()),
        };
    }
    ApplicationStatus {
        phase: if s.suspended {
            Phase::Suspended
        } else {
            s.phase
        },
        healthy: s.health.is_healthy(),
        message: if s.suspended {
            SUSPENDED_MESSAGE.to_string()
        } else {
            s.message.clone()
        },
        component: component.into(),
        component_type: component_type.into(),
        last_applied_commit: s.last_applied_commit.clone(),
        last_attempted_commit: s.last_attempted_commit.clone(),
        publish_version: s.publish_version.clone(),
        content_hash: s.content_hash.clone(),
        last_error: s.last_error.clone(),
        conditions,
        components: s.components.clone(),
        inventory: s.inventory.clone(),
        drift_corrections: s.drift_corrections,
        last_drift_correction: live
            .map(|l| l.last_drift_correction.clone())
            .unwrap_or_default(),
        held_prune: s.held_prune.clone(),
        last_sync_request: s
            .last_sync_request
            .clone()
            .or_else(|| live.and_then(|l| l.last_sync_request.clone())),
        workflow: s.workflow.clone(),
        clusters: s.clusters.clone(),
        // The promoter's, written by it alone (`write_status_over` leaves it out of its patch).
        promotion: live.and_then(|l| l.promotion.clone()),
    }
}

/// The STATUS of a suspended app.
pub const SUSPENDED_MESSAGE: &str =
    "suspended: rollgit neither applies new commits nor corrects drift (rollgit resume APP)";

/// The spec of a live Application as rollgit writes it: without `suspend`, which belongs to
/// `rollgit suspend`/`resume`.
fn rollgit_spec(live: &DynamicObject) -> Option<Value> {
    let mut spec = live.data.get("spec")?.clone();
    if let Some(m) = spec.as_object_mut() {
        m.remove("suspend");
    }
    Some(spec)
}

/// Whether a live Application is suspended (`spec.suspend: true`).
pub fn is_suspended(live: &DynamicObject) -> bool {
    live.data["spec"]["suspend"].as_bool() == Some(true)
}

/// The API resource of `applications.rollgit.dev`.
pub fn application_resource() -> ApiResource {
    ApiResource::erase::<Application>(&())
}

fn application_api(client: &kube::Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &application_resource())
}

/// The Application's status as stored, typed (`None` when it has none).
fn parse_status(
    o: &DynamicObject,
    namespace: &str,
    app: &str,
) -> Result<Option<ApplicationStatus>, StatusError> {
    match o.data.get("status").filter(|s| s.is_object()) {
        None => Ok(None),
        Some(v) => serde_json::from_value(v.clone())
            .map(Some)
            .map_err(|e| StatusError::Parse {
                namespace: namespace.into(),
                app: app.into(),
                message: e.to_string(),
            }),
    }
}

/// RFC 3339 of `now` in whole seconds.
pub fn rfc3339(now: Timestamp) -> String {
    Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

/// Records `status` in the Application `namespace/app`, creating it when missing. `spec` is
/// server-side applied only when it differs from the live one, and `/status` is patched only
/// when the status differs. `now` stamps conditions that change. Returns `true` when anything
/// was written.
pub async fn write_status(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    spec: &ApplicationSpec,
    status: &AppStatus,
    now: Timestamp,
) -> Result<bool, StatusError> {
    let live = application_api(client, namespace)
        .get_opt(app)
        .await
        .map_err(|source| StatusError::Read {
            namespace: namespace.into(),
            app: app.into(),
            source,
        })?;
    let (wrote, _) = write_status_over(client, namespace, app, spec, status, now, live).await?;
    Ok(wrote)
}

/// [`write_status`] over `live`, the Application as the caller last read or wrote it (`None`:
/// it does not exist), without reading it first: one request when only the status changed or
/// the Application is created (two when the installed CRD has a status subresource), none
/// when nothing changed. Returns whether anything was written and the Application as it is
/// now. An Application deleted meanwhile is created again; one created meanwhile is read and
/// written over.
pub async fn write_status_over(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    spec: &ApplicationSpec,
    status: &AppStatus,
    now: Timestamp,
    live: Option<DynamicObject>,
) -> Result<(bool, DynamicObject), StatusError> {
    let live = match live {
        Some(l) => l,
        None => match create_with_status(client, namespace, app, spec, status, now).await? {
            Created::New(o) => return Ok((true, o)),
            Created::Existed(o) => o,
        },
    };
    let (mut wrote, live) = ensure_application(client, namespace, app, spec, Some(live)).await?;
    // A live status that does not parse is replaced whole.
    let live_status = parse_status(&live, namespace, app).unwrap_or(None);
    let desired = desired_status(status, live_status.as_ref(), &rfc3339(now));
    if live_status.as_ref() == Some(&desired) {
        debug!(namespace, app, "status unchanged");
        return Ok((wrote, live));
    }
    let desired = serde_json::to_value(&desired).unwrap_or(Value::Null);
    // A merge patch of the whole status; keys no longer present are removed with null, at
    // every depth (`status.workflow.endTime` of a restarted workflow too).
    let mut patch = match live.data.get("status") {
        Some(old) => merge_patch(old, &desired),
        None => desired,
    };
    // `promotion` is the promoter's (`crate::promote`): never written from a copy that may be
    // older than its last write.
    if let Value::Object(m) = &mut patch {
        m.remove("promotion");
    }
    let written = match patch_application_status(client, namespace, app, &patch).await {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            // Deleted since the caller saw it: created again, with its status.
            match create_with_status(client, namespace, app, spec, status, now).await? {
                Created::New(o) => Ok(o),
                Created::Existed(_) => {
                    patch_application_status(client, namespace, app, &patch).await
                }
            }
        }
        other => other,
    }
    .map_err(|source| StatusError::PatchStatus {
        namespace: namespace.into(),
        app: app.into(),
        source,
    })?;
    wrote = true;
    info!(
        namespace,
        app,
        phase = status.phase.as_str(),
        healthy = status.health.is_healthy(),
        "status written"
    );
    Ok((wrote, written))
}

/// Whether `target` already holds what the JSON merge patch `patch` writes (pure): every
/// non-null value of `patch` is in `target` at the same place (objects recursively, anything
/// else equal), and every key `patch` sets to null is absent. Keys of `target` that `patch`
/// does not name do not matter (the server's defaults, others' fields).
pub fn satisfies(target: Option<&Value>, patch: &Value) -> bool {
    match patch {
        Value::Object(p) => {
            let t = target.and_then(Value::as_object);
            p.iter().all(|(k, v)| {
                let at = t.and_then(|t| t.get(k)).filter(|x| !x.is_null());
                match v {
                    Value::Null => at.is_none(),
                    Value::Object(_) => at.is_some_and(Value::is_object) && satisfies(at, v),
                    _ => at == Some(v),
                }
            })
        }
        other => target == Some(other),
    }
}

/// Merge-patches the status of the Application `namespace/app` with `patch` (the value of its
/// `status` key): one PATCH of the object where the CRD has no status subresource, of
/// `applications/status` where it has one. The response tells which: a PATCH of the object
/// whose response lacks what it wrote went to a CRD with the subresource, which ignored it; a
/// 404 of `applications/status` went to one without it (or to a deleted Application, which the
/// PATCH of the object then reports as 404). Fields the patch does not name are left alone.
pub async fn patch_application_status(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    patch: &Value,
) -> Result<DynamicObject, kube::Error> {
    let api = application_api(client, namespace);
    let body = json!({ "status": patch });
    let pp = PatchParams::default();
    if !status_subresource() {
        let o = api.patch(app, &pp, &Patch::Merge(&body)).await?;
        if satisfies(o.data.get("status"), patch) {
            return Ok(o);
        }
        return match api.patch_status(app, &pp, &Patch::Merge(&body)).await {
            Ok(written) => {
                set_status_subresource(true);
                Ok(written)
            }
            // No subresource after all: the object's schema dropped a part of the patch.
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(o),
            Err(e) => Err(e),
        };
    }
    match api.patch_status(app, &pp, &Patch::Merge(&body)).await {
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let o = api.patch(app, &pp, &Patch::Merge(&body)).await?;
            if satisfies(o.data.get("status"), patch) {
                set_status_subresource(false);
            }
            Ok(o)
        }
        other => other,
    }
}

/// What [`create_with_status`] found.
enum Created {
    /// Created by this call, with the status.
    New(DynamicObject),
    /// It existed already (created by someone else since the caller looked): as read now.
    Existed(DynamicObject),
}

/// Creates the Application `namespace/app` with `spec`, rollgit's label and `status` (one
/// POST; a second request, to `applications/status`, when the installed CRD has a status
/// subresource, which a create ignores).
async fn create_with_status(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    spec: &ApplicationSpec,
    status: &AppStatus,
    now: Timestamp,
) -> Result<Created, StatusError> {
    let api = application_api(client, namespace);
    let mut desired =
        serde_json::to_value(desired_status(status, None, &rfc3339(now))).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut desired {
        m.remove("promotion");
    }
    let mut obj = DynamicObject::new(app, &application_resource()).within(namespace);
    obj.metadata.labels = Some([(MANAGED_BY_LABEL.to_string(), MANAGED_BY.to_string())].into());
    obj.data = json!({
        "spec": serde_json::to_value(spec).unwrap_or(Value::Null),
        "status": desired,
    });
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..PostParams::default()
    };
    let created = match api.create(&pp, &obj).await {
        Ok(o) => o,
        Err(kube::Error::Api(s)) if s.code == 409 => {
            let o = read_application(client, namespace, app)
                .await?
                .ok_or_else(|| StatusError::Create {
                    namespace: namespace.into(),
                    app: app.into(),
                    source: kube::Error::Api(s),
                })?;
            return Ok(Created::Existed(o));
        }
        Err(source) => {
            return Err(StatusError::Create {
                namespace: namespace.into(),
                app: app.into(),
                source,
            });
        }
    };
    let desired = &obj.data["status"];
    let created = if satisfies(created.data.get("status"), desired) {
        created
    } else {
        let body = json!({ "status": desired });
        match api
            .patch_status(app, &PatchParams::default(), &Patch::Merge(&body))
            .await
        {
            Ok(written) => {
                set_status_subresource(true);
                written
            }
            // No subresource after all: the object's schema dropped a part of the status.
            Err(kube::Error::Api(s)) if s.code == 404 => created,
            Err(source) => {
                return Err(StatusError::PatchStatus {
                    namespace: namespace.into(),
                    app: app.into(),
                    source,
                });
            }
        }
    };
    info!(
        namespace,
        app,
        phase = status.phase.as_str(),
        healthy = status.health.is_healthy(),
        "status object created"
    );
    Ok(Created::New(created))
}

/// The Application `namespace/app` with `spec` and rollgit's label: `live` when it already
/// has them, else server-side applied (one request). Returns whether it was written.
pub async fn ensure_application(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    spec: &ApplicationSpec,
    live: Option<DynamicObject>,
) -> Result<(bool, DynamicObject), StatusError> {
    let spec_value = serde_json::to_value(spec).unwrap_or(Value::Null);
    let labelled = live.as_ref().is_some_and(|l| {
        l.metadata
            .labels
            .as_ref()
            .and_then(|ls| ls.get(MANAGED_BY_LABEL))
            .is_some_and(|v| v == MANAGED_BY)
    });
    match live {
        Some(l) if rollgit_spec(&l).as_ref() == Some(&spec_value) && labelled => Ok((false, l)),
        _ => {
            let body = json!({
                "apiVersion": Application::api_version(&()),
                "kind": Application::kind(&()),
                "metadata": {"name": app, "namespace": namespace,
                    "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
                "spec": spec_value,
            });
            let applied = application_api(client, namespace)
                .patch(
                    app,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&body),
                )
                .await
                .map_err(|source| StatusError::ApplySpec {
                    namespace: namespace.into(),
                    app: app.into(),
                    source,
                })?;
            Ok((true, applied))
        }
    }
}

/// The Application `namespace/app` (`None` when it does not exist).
pub async fn read_application(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<Option<DynamicObject>, StatusError> {
    application_api(client, namespace)
        .get_opt(app)
        .await
        .map_err(|source| StatusError::Read {
            namespace: namespace.into(),
            app: app.into(),
            source,
        })
}

/// The Applications in `namespace` (one LIST), by name: what a starting daemon takes over.
pub async fn list_applications(
    client: &kube::Client,
    namespace: &str,
) -> Result<std::collections::BTreeMap<String, DynamicObject>, StatusError> {
    let api = application_api(client, namespace);
    let mut out = std::collections::BTreeMap::new();
    let mut lp = kube::api::ListParams::default().limit(500);
    loop {
        let page = api.list(&lp).await.map_err(|source| StatusError::Read {
            namespace: namespace.into(),
            app: "*".into(),
            source,
        })?;
        for o in page.items {
            if let Some(name) = o.metadata.name.clone() {
                out.insert(name, o);
            }
        }
        match page.metadata.continue_ {
            Some(c) if !c.is_empty() => lp = lp.continue_token(&c),
            _ => break,
        }
    }
    Ok(out)
}

/// What the Application `obj` records (`None` when it has no status yet).
pub fn recorded_of(
    obj: &DynamicObject,
    namespace: &str,
    app: &str,
) -> Result<Option<Recorded>, StatusError> {
    Ok(parse_status(obj, namespace, app)?.map(|s| Recorded::from_status(&s)))
}

/// An ownerReference (controller) to the Application `obj`.
pub fn owner_reference(obj: &DynamicObject, app: &str) -> Value {
    json!({
        "apiVersion": Application::api_version(&()),
        "kind": Application::kind(&()),
        "name": app,
        "uid": obj.metadata.uid.clone().unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new`: `new`'s values, with `null`
/// for every key of an object in `old` that `new`'s object at the same place lacks (lists are
/// replaced whole, as merge patches do).
pub fn merge_patch(old: &Value, new: &Value) -> Value {
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut out = Map::new();
            for (k, v) in n {
                let patched = match o.get(k) {
                    Some(ov) if ov.is_object() && v.is_object() => merge_patch(ov, v),
                    _ => v.clone(),
                };
                out.insert(k.clone(), patched);
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    out.insert(k.clone(), Value::Null);
                }
            }
            Value::Object(out)
        }
        _ => new.clone(),
    }
}

/// An ownerReference to the Application `namespace/app`, creating it (phase `starting`) when it
/// does not exist yet, so that objects rollgit creates for the app (its revisions and
/// Rollouts) show the app as their controller, as KubeVela's do.
pub async fn application_owner(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    spec: &ApplicationSpec,
    now: Timestamp,
) -> Result<Value, StatusError> {
    if let Some(owner) = existing_owner(client, namespace, app).await? {
        return Ok(owner);
    }
    write_status(client, namespace, app, spec, &AppStatus::starting(), now).await?;
    existing_owner(client, namespace, app)
        .await?
        .ok_or_else(|| StatusError::Read {
            namespace: namespace.into(),
            app: app.into(),
            source: kube::Error::Api(Box::new(
                kube::core::Status::failure("created but not found", "NotFound").with_code(404),
            )),
        })
}

/// An ownerReference to the Application `namespace/app`, `None` when it does not exist.
pub async fn existing_owner(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<Option<Value>, StatusError> {
    let obj = application_api(client, namespace)
        .get_opt(app)
        .await
        .map_err(|source| StatusError::Read {
            namespace: namespace.into(),
            app: app.into(),
            source,
        })?;
    Ok(obj.map(|o| {
        json!({
            "apiVersion": Application::api_version(&()),
            "kind": Application::kind(&()),
            "name": app,
            "uid": o.metadata.uid.unwrap_or_default(),
            "controller": true,
            "blockOwnerDeletion": true,
        })
    }))
}

/// What a previous run recorded for an app, read back from its Application's status, so that a
/// restarted daemon prunes and versions as if it had never stopped.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recorded {
    /// What the app applied.
    pub inventory: Inventory,
    /// `(publishVersion, contentHash)`.
    pub publish: Option<(String, String)>,
    /// The commit whose objects are in the cluster.
    pub last_applied_commit: Option<String>,
    /// Drift corrections so far.
    pub drift_corrections: u64,
    /// The workflow run.
    pub workflow: Option<crate::k8s::crds::WorkflowStatus>,
    /// What the workflow delivered to each cluster.
    pub clusters: Vec<crate::k8s::crds::ClusterStatus>,
}

impl Recorded {
    /// What a status records.
    pub fn from_status(status: &ApplicationStatus) -> Self {
        let publish = match (&status.publish_version, &status.content_hash) {
            (Some(v), Some(h)) => Some((v.clone(), h.clone())),
            _ => None,
        };
        Recorded {
            inventory: status.inventory.clone(),
            publish,
            last_applied_commit: status.last_applied_commit.clone(),
            drift_corrections: status.drift_corrections,
            workflow: status.workflow.clone(),
            clusters: status.clusters.clone(),
        }
    }
}

/// Reads [`Recorded`] from the Application `namespace/app` (`None` when it does not exist or
/// has no status yet). A status that does not parse is an error: its inventory is what
/// prune needs.
pub async fn read_recorded(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<Option<Recorded>, StatusError> {
    let Some(obj) = application_api(client, namespace)
        .get_opt(app)
        .await
        .map_err(|source| StatusError::Read {
            namespace: namespace.into(),
            app: app.into(),
            source,
        })?
    else {
        return Ok(None);
    };
    Ok(parse_status(&obj, namespace, app)?.map(|s| Recorded::from_status(&s)))
}

/// Deletes the Application `namespace/app` (its app left Git). Missing is fine.
pub async fn delete_status(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<(), StatusError> {
    match application_api(client, namespace)
        .delete(app, &DeleteParams::background())
        .await
    {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(source) => Err(StatusError::Delete {
            namespace: namespace.into(),
            app: app.into(),
            source,
        }),
    }
}

/// Records drift corrections in the status: `driftCorrections` (the running count) and
/// `lastDriftCorrection` (the objects corrected last). Idempotent for the same inputs.
pub async fn record_drift(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    total: u64,
    corrected: &[ObjRef],
) -> Result<(), StatusError> {
    let objects: Vec<String> = corrected.iter().map(ToString::to_string).collect();
    let body = json!({"driftCorrections": total, "lastDriftCorrection": objects});
    patch_application_status(client, namespace, app, &body)
        .await
        .map_err(|source| StatusError::PatchStatus {
            namespace: namespace.into(),
            app: app.into(),
            source,
        })?;
    Ok(())
}

fn short(commit: &str) -> &str {
    commit.get(..12).unwrap_or(commit)
}

impl AppStatus {
    /// The status of an app seen, nothing done yet.
    pub fn starting() -> Self {
        Self {
            phase: Phase::Starting,
            health: Health::healthy(),
            message: String::new(),
            last_applied_commit: None,
            last_attempted_commit: None,
            last_error: Vec::new(),
            inventory: Inventory::default(),
            publish_version: None,
            content_hash: None,
            components: Vec::new(),
            drift_corrections: 0,
            held_prune: None,
            last_sync_request: None,
            suspended: false,
            workflow: None,
            clusters: Vec::new(),
        }
    }

    /// The status after `commit` was rejected (render errors `errors`, `path:line: message`):
    /// phase `failed`, the cluster keeps `last_applied` and `inventory`.
    pub fn rejected(
        commit: &str,
        last_applied: Option<&str>,
        errors: &[String],
        inventory: &Inventory,
    ) -> Self {
        let first = errors.first().map_or("", String::as_str);
        Self {
            phase: Phase::Failed,
            health: Health::healthy(),
            message: format!("commit {} rejected: {first}", short(commit)),
            last_applied_commit: last_applied.map(str::to_string),
            last_attempted_commit: Some(commit.to_string()),
            last_error: errors.to_vec(),
            inventory: inventory.clone(),
            publish_version: None,
            content_hash: None,
            components: Vec::new(),
            drift_corrections: 0,
            held_prune: None,
            last_sync_request: None,
            suspended: false,
            workflow: None,
            clusters: Vec::new(),
        }
    }

    /// The status after `commit` was rendered as `rendered` and applied with `report`.
    /// `last_applied` is the commit now in the cluster (equal to `commit` unless objects
    /// failed). Phase `running` until [`AppStatus::with_health`] says otherwise; `failed` when
    /// the report has errors.
    pub fn applied(
        commit: &str,
        last_applied: Option<&str>,
        rendered: &Rendered,
        report: &ApplyReport,
        inventory: &Inventory,
        drift_corrections: u64,
    ) -> Self {
        let last_error: Vec<String> = report
            .errors
            .iter()
            .map(|(r, m)| format!("{r}: {m}"))
            .collect();
        let components = rendered
            .applications
            .iter()
            .flat_map(|a| a.components.iter())
            .map(|c| {
                let rev = rendered.revisions.iter().find(|r| r.component == c.name);
                ComponentStatus {
                    name: c.name.clone(),
                    type_: c.component_type.clone(),
                    revision: c.revision.clone().or_else(|| rev.map(|r| r.name.clone())),
                    revision_number: rev.map(|r| r.number),
                    healthy: true,
                    message: String::new(),
                }
            })
            .collect();
        let (phase, message) = match last_error.first() {
            Some(first) => (Phase::Failed, format!("apply failed: {first}")),
            None => (Phase::Running, String::new()),
        };
        Self {
            phase,
            health: Health::healthy(),
            message,
            last_applied_commit: last_applied.map(str::to_string),
            last_attempted_commit: Some(commit.to_string()),
            last_error,
            inventory: inventory.clone(),
            publish_version: (!rendered.publish_version.is_empty())
                .then(|| rendered.publish_version.clone()),
            content_hash: (!rendered.content_hash.is_empty())
                .then(|| rendered.content_hash.clone()),
            components,
            drift_corrections,
            held_prune: Self::applied_held(report),
            last_sync_request: None,
            suspended: false,
            workflow: None,
            clusters: Vec::new(),
        }
    }

    /// The held prune of a report, as the status shows it (the first 20 objects).
    pub fn applied_held(report: &ApplyReport) -> Option<HeldPruneStatus> {
        report.held_prune.as_ref().map(|h| HeldPruneStatus {
            count: h.objects.len(),
            inventory: h.inventory,
            objects: h.objects.iter().take(20).map(ToString::to_string).collect(),
        })
    }

    /// Sets the aggregate health: phase `running`/`unhealthy` (unless `failed`), HEALTHY, and
    /// the STATUS message when nothing failed.
    pub fn with_health(mut self, health: Health) -> Self {
        if matches!(
            self.phase,
            Phase::Running | Phase::Unhealthy | Phase::Starting
        ) {
            self.phase = phase_from_health(&health);
        }
        if self.last_error.is_empty() {
            self.message = match &self.held_prune {
                Some(h) => format!(
                    "prune held: it would delete {} of the app's {} objects; run `rollgit sync APP --allow-mass-prune` to let it",
                    h.count, h.inventory
                ),
                None => health.message.clone(),
            };
        }
        self.health = health;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_patches_remove_keys_left_out_at_every_depth() {
        let old = json!({"phase": "x", "workflow": {"endTime": "t", "held": true, "steps": [1, 2]}, "gone": 1});
        let new = json!({"phase": "y", "workflow": {"steps": [3]}});
        assert_eq!(
            merge_patch(&old, &new),
            json!({"phase": "y", "workflow": {"steps": [3], "endTime": null, "held": null}, "gone": null})
        );
        assert_eq!(merge_patch(&json!(1), &new), new);
    }

    #[test]
    fn a_response_satisfies_a_merge_patch_only_when_it_holds_what_the_patch_wrote() {
        let cases: [(&str, Option<Value>, Value, bool); 11] = [
            ("no status at all", None, json!({"phase": "running"}), false),
            (
                "the same value",
                Some(json!({"phase": "running"})),
                json!({"phase": "running"}),
                true,
            ),
            (
                "another value",
                Some(json!({"phase": "failed"})),
                json!({"phase": "running"}),
                false,
            ),
            (
                "keys the patch does not name do not matter",
                Some(json!({"phase": "running", "promotion": {"state": "open"}})),
                json!({"phase": "running"}),
                true,
            ),
            (
                "a null removes the key",
                Some(json!({"a": 1})),
                json!({"a": null}),
                false,
            ),
            (
                "a removed key is absent",
                Some(json!({"b": 1})),
                json!({"a": null}),
                true,
            ),
            (
                "nested objects are compared key by key",
                Some(json!({"w": {"endTime": "t", "steps": [1]}})),
                json!({"w": {"steps": [1], "held": null}}),
                true,
            ),
            (
                "a nested value that differs",
                Some(json!({"w": {"steps": [1, 2]}})),
                json!({"w": {"steps": [1]}}),
                false,
            ),
            (
                "an object where the patch has one",
                Some(json!({"w": 1})),
                json!({"w": {}}),
                false,
            ),
            ("an empty patch", None, json!({}), true),
            (
                "the status a CRD with a subresource kept (create ignored it)",
                Some(json!({})),
                json!({"phase": "running", "healthy": true}),
                false,
            ),
        ];
        for (name, target, patch, want) in cases {
            assert_eq!(satisfies(target.as_ref(), &patch), want, "{name}");
        }
    }

    fn desired_value(s: &AppStatus, live: Option<&Value>, now: &str) -> Value {
        let live: Option<ApplicationStatus> =
            live.map(|l| serde_json::from_value(l.clone()).expect("a status"));
        serde_json::to_value(desired_status(s, live.as_ref(), now)).expect("serializes")
    }

    fn sample() -> AppStatus {
        AppStatus {
            phase: Phase::Running,
            health: Health::healthy(),
            message: String::new(),
            last_applied_commit: Some("abc123".into()),
            last_attempted_commit: Some("abc123".into()),
            last_error: Vec::new(),
            inventory: Inventory::default(),
            publish_version: None,
            content_hash: None,
            components: Vec::new(),
            drift_corrections: 0,
            held_prune: None,
            last_sync_request: None,
            suspended: false,
            workflow: None,
            clusters: Vec::new(),
        }
    }

    #[test]
    fn desired_status_for_a_plain_yaml_app() {
        let s = desired_value(&sample(), None, "2025-01-01T00:00:00Z");
        assert_eq!(
            s,
            json!({
                "phase": "running", "healthy": true, "message": "",
                "component": "-", "componentType": "-",
                "lastAppliedCommit": "abc123", "lastAttemptedCommit": "abc123",
                "conditions": [
                    {"type": "Ready", "status": "True", "reason": "Healthy", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                    {"type": "Synced", "status": "True", "reason": "Applied", "lastTransitionTime": "2025-01-01T00:00:00Z"},
                ],
                "inventory": {"entries": []},
            })
        );
    }

    #[test]
    fn transition_times_survive_unless_the_status_flips() {
        let first = desired_value(&sample(), None, "T1");
        let again = desired_value(&sample(), Some(&first), "T2");
        assert_eq!(first, again, "same status, same times: no write");

        let mut failing = sample();
        failing.last_attempted_commit = Some("def456".into());
        failing.last_error = vec!["web.yaml:3: did not find expected key".into()];
        failing.phase = Phase::Failed;
        let third = desired_value(&failing, Some(&again), "T3");
        assert_eq!(third["conditions"][0]["lastTransitionTime"], "T1");
        assert_eq!(
            third["conditions"][1],
            json!({"type": "Synced", "status": "False", "reason": "SyncFailed",
                "message": "web.yaml:3: did not find expected key", "lastTransitionTime": "T3"})
        );
        assert_eq!(third["phase"], "failed");
        assert_eq!(
            third["lastError"],
            json!(["web.yaml:3: did not find expected key"])
        );
    }

    #[test]
    fn first_component_fills_the_columns() {
        let mut s = sample();
        s.components = vec![
            ComponentStatus {
                name: "express-server".into(),
                type_: "webservice".into(),
                revision: Some("express-server-v1".into()),
                revision_number: Some(1),
                healthy: true,
                message: String::new(),
            },
            ComponentStatus {
                name: "worker".into(),
                type_: "worker".into(),
                revision: None,
                revision_number: None,
                healthy: false,
                message: "0 of 1 updated replicas".into(),
            },
        ];
        let v = desired_value(&s, None, "T");
        assert_eq!(v["component"], "express-server");
        assert_eq!(v["componentType"], "webservice");
        assert_eq!(
            v["components"][0],
            json!({"name": "express-server", "type": "webservice", "revision": "express-server-v1", "revisionNumber": 1, "healthy": true})
        );
    }

    #[test]
    fn phases_use_kubevela_names() {
        let names: Vec<&str> = [
            Phase::Starting,
            Phase::Rendering,
            Phase::RunningWorkflow,
            Phase::Running,
            Phase::Unhealthy,
            Phase::Failed,
            Phase::Deleting,
        ]
        .iter()
        .map(|p| p.as_str())
        .collect();
        assert_eq!(
            names,
            [
                "starting",
                "rendering",
                "runningWorkflow",
                "running",
                "unhealthy",
                "failed",
                "deleting"
            ]
        );
    }
}
