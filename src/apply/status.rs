//! The status resource: one `applications.rollgit.dev` (`Application`, short names `app`,
//! `rga`) per app, in the app's namespace, whose `kubectl get app` columns are those of seed
//! 000: NAME COMPONENT TYPE PHASE HEALTHY STATUS AGE.
//!
//! [`write_status`] server-side applies the object (spec: the app's source) only when its spec
//! differs, and patches `/status` only when the status differs from the live one. Condition
//! `lastTransitionTime`s change only when a condition's status changes, and nothing else in
//! the status depends on the clock, so an unchanged app causes no write (no hot loops).

use super::{ApplyReport, FIELD_MANAGER, Health, Inventory, MANAGED_BY_LABEL, ObjRef};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::Client;
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::{await_condition, conditions};
use rollgit_render::Rendered;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::time::Duration;
use tracing::{debug, info};

/// The CRD of the status resource, as YAML (also `deploy/crds/applications.rollgit.dev.yaml`).
pub const APPLICATION_CRD_YAML: &str =
    include_str!("../../deploy/crds/applications.rollgit.dev.yaml");
/// The CRD's name.
pub const APPLICATION_CRD_NAME: &str = "applications.rollgit.dev";
/// Group of the status resource.
pub const GROUP: &str = "rollgit.dev";
/// Version of the status resource.
pub const VERSION: &str = "v1alpha1";
/// Kind of the status resource.
pub const KIND: &str = "Application";
/// How long [`ensure_crds`] waits for the CRD to be Established.
pub const CRD_TIMEOUT: Duration = Duration::from_secs(30);

/// Errors of the status writer.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// The built-in CRD YAML does not parse (a bug).
    #[error("parsing the built-in CRD {crd}")]
    ParseCrd {
        crd: &'static str,
        #[source]
        source: Box<serde_saphyr::Error>,
    },
    /// Applying the CRD failed.
    #[error("applying CRD {crd}")]
    ApplyCrd {
        crd: &'static str,
        #[source]
        source: kube::Error,
    },
    /// The CRD did not become Established in time.
    #[error("CRD {crd} not Established within {}s", CRD_TIMEOUT.as_secs())]
    CrdNotEstablished { crd: &'static str },
    /// Watching the CRD failed.
    #[error("waiting for CRD {crd} to be Established")]
    WaitCrd {
        crd: &'static str,
        #[source]
        source: kube::runtime::wait::Error,
    },
    /// Reading the Application failed.
    #[error("reading Application {namespace}/{app}")]
    Read {
        namespace: String,
        app: String,
        #[source]
        source: kube::Error,
    },
    /// Applying the Application's spec failed.
    #[error("applying Application {namespace}/{app}")]
    ApplySpec {
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
    /// Serializing the status failed (a bug).
    #[error("serializing the status of Application {app}")]
    Serialize {
        app: String,
        #[source]
        source: serde_json::Error,
    },
}

/// An app's phase, named as KubeVela's `status.status` where one applies (ROLLOUT-SEMANTICS
/// C.5); `failed` is rollgit's own (KubeVela has no phase for a commit that failed to render
/// or apply).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Seen, nothing done yet.
    Starting,
    /// Rendering a new commit.
    Rendering,
    /// Applying, or a rollout in progress.
    RunningWorkflow,
    /// Applied and healthy.
    Running,
    /// Applied, not (yet) healthy.
    Unhealthy,
    /// The last commit was rejected (render) or failed to apply.
    Failed,
    /// Being deleted.
    Deleting,
    /// Waiting for a person: a rollback could not be written to Git (the revert conflicts).
    Stalled,
}

impl Phase {
    /// The phase's text in the status (`running`, `runningWorkflow`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Rendering => "rendering",
            Self::RunningWorkflow => "runningWorkflow",
            Self::Running => "running",
            Self::Unhealthy => "unhealthy",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Stalled => "stalled",
        }
    }

    /// `running` when healthy, `stalled` when an object says it waits for a person
    /// (its health message holds [`STALLED`]), `unhealthy` otherwise.
    pub fn from_health(h: &Health) -> Self {
        if h.is_healthy() {
            Self::Running
        } else if h.message.contains(STALLED) {
            Self::Stalled
        } else {
            Self::Unhealthy
        }
    }
}

/// How a health message says that an object waits for a person (see [`Phase::Stalled`]).
pub const STALLED: &str = "Stalled: ";

/// One component of an app, with its revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Component name.
    pub name: String,
    /// Component type (`webservice`, `worker`, `cloneset`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// Current revision name (`express-server-v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Current revision number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_number: Option<u64>,
    /// Whether the component's workload is healthy.
    pub healthy: bool,
    /// Why not, in a few words (empty when healthy).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
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
}

/// The status object as stored (conditions without times; times are merged in from the live
/// object by [`desired_status`]).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a> {
    phase: &'static str,
    healthy: bool,
    message: &'a str,
    component: &'a str,
    component_type: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_applied_commit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_attempted_commit: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    publish_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    last_error: &'a [String],
    conditions: Vec<Value>,
    #[serde(skip_serializing_if = "<[ComponentStatus]>::is_empty")]
    components: &'a [ComponentStatus],
    inventory: &'a Inventory,
    #[serde(skip_serializing_if = "is_zero")]
    drift_corrections: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Status keys [`record_drift`] owns, kept by [`write_status`].
const DRIFT_KEYS: &[&str] = &["lastDriftCorrection"];

fn condition(type_: &str, ok: bool, reason: &str, message: &str) -> Value {
    let mut c = json!({
        "type": type_,
        "status": if ok { "True" } else { "False" },
        "reason": reason,
    });
    if !message.is_empty() {
        c["message"] = json!(message);
    }
    c
}

/// The conditions of a status: `Ready` (from health) and `Synced` (from the commits and
/// errors), without `lastTransitionTime`.
fn conditions_of(s: &AppStatus) -> Vec<Value> {
    let ready = condition(
        "Ready",
        s.health.is_healthy(),
        s.health.status.as_str(),
        &s.health.message,
    );
    let synced = if let Some(first) = s.last_error.first() {
        condition("Synced", false, "SyncFailed", first)
    } else if s.last_applied_commit.is_some() && s.last_applied_commit == s.last_attempted_commit {
        condition("Synced", true, "Applied", "")
    } else {
        condition("Synced", false, "Pending", "")
    };
    vec![ready, synced]
}

/// The status to store, with each condition's `lastTransitionTime` kept from `live` when its
/// status did not change, and `now` otherwise.
fn desired_status(
    s: &AppStatus,
    live: Option<&Value>,
    now: &str,
) -> Result<Value, serde_json::Error> {
    let (component, component_type) = s
        .components
        .first()
        .map_or(("-", "-"), |c| (c.name.as_str(), c.type_.as_str()));
    let mut conds = conditions_of(s);
    for c in &mut conds {
        let prev = live
            .and_then(|l| l["conditions"].as_array())
            .and_then(|cs| cs.iter().find(|p| p["type"] == c["type"]));
        let time = match prev {
            Some(p) if p["status"] == c["status"] && p["lastTransitionTime"].is_string() => {
                p["lastTransitionTime"].clone()
            }
            _ => json!(now),
        };
        c["lastTransitionTime"] = time;
    }
    serde_json::to_value(StatusBody {
        phase: s.phase.as_str(),
        healthy: s.health.is_healthy(),
        message: &s.message,
        component,
        component_type,
        last_applied_commit: s.last_applied_commit.as_deref(),
        last_attempted_commit: s.last_attempted_commit.as_deref(),
        publish_version: s.publish_version.as_deref(),
        content_hash: s.content_hash.as_deref(),
        last_error: &s.last_error,
        conditions: conds,
        components: &s.components,
        inventory: &s.inventory,
        drift_corrections: s.drift_corrections,
    })
}

/// The CRD of the status resource.
pub fn application_crd() -> Result<CustomResourceDefinition, StatusError> {
    parse_crd(APPLICATION_CRD_NAME, APPLICATION_CRD_YAML)
}

fn parse_crd(crd: &'static str, yaml: &str) -> Result<CustomResourceDefinition, StatusError> {
    serde_saphyr::from_str(yaml).map_err(|source| StatusError::ParseCrd {
        crd,
        source: Box::new(source),
    })
}

/// The API resource of `applications.rollgit.dev`.
pub fn application_resource() -> ApiResource {
    ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(GROUP, VERSION, KIND), "applications")
}

/// Installs (server-side applies) rollgit's CRDs (app status, rollouts) and waits, bounded,
/// until they are Established.
pub async fn ensure_crds(client: &Client) -> Result<(), StatusError> {
    for (name, yaml) in [
        (APPLICATION_CRD_NAME, APPLICATION_CRD_YAML),
        (
            crate::rollout::ROLLOUT_CRD_NAME,
            crate::rollout::ROLLOUT_CRD_YAML,
        ),
    ] {
        ensure_crd(client, name, yaml).await?;
    }
    Ok(())
}

async fn ensure_crd(client: &Client, crd: &'static str, yaml: &str) -> Result<(), StatusError> {
    let def = parse_crd(crd, yaml)?;
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.patch(
        crd,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&def),
    )
    .await
    .map_err(|source| StatusError::ApplyCrd { crd, source })?;
    match tokio::time::timeout(
        CRD_TIMEOUT,
        await_condition(api, crd, conditions::is_crd_established()),
    )
    .await
    {
        Ok(Ok(_)) => {
            debug!("CRD {crd} established");
            Ok(())
        }
        Ok(Err(source)) => Err(StatusError::WaitCrd { crd, source }),
        Err(_) => Err(StatusError::CrdNotEstablished { crd }),
    }
}

fn now_rfc3339() -> String {
    let now = k8s_openapi::jiff::Timestamp::now();
    k8s_openapi::jiff::Timestamp::from_second(now.as_second())
        .map(|t| t.to_string())
        .unwrap_or_else(|_| now.to_string())
}

/// Records `status` in the Application `namespace/app`, creating it when missing. `spec` is
/// the Application's spec (by convention `{"source": {"repo", "url", "branch", "path"}}`); it
/// is server-side applied only when it differs from the live one, and `/status` is patched
/// only when the status differs. Returns `true` when anything was written.
pub async fn write_status(
    client: &Client,
    namespace: &str,
    app: &str,
    spec: &Value,
    status: &AppStatus,
) -> Result<bool, StatusError> {
    let api = application_api(client, namespace);
    let live = api.get_opt(app).await.map_err(|source| StatusError::Read {
        namespace: namespace.into(),
        app: app.into(),
        source,
    })?;
    let mut wrote = false;
    let labelled = live.as_ref().is_some_and(|l| {
        l.metadata
            .labels
            .as_ref()
            .and_then(|ls| ls.get(MANAGED_BY_LABEL))
            .is_some_and(|v| v == FIELD_MANAGER)
    });
    let live = match live {
        Some(l) if l.data.get("spec") == Some(spec) && labelled => l,
        _ => {
            let body = json!({
                "apiVersion": format!("{GROUP}/{VERSION}"),
                "kind": KIND,
                "metadata": {"name": app, "namespace": namespace,
                    "labels": {MANAGED_BY_LABEL: FIELD_MANAGER}},
                "spec": spec,
            });
            wrote = true;
            api.patch(
                app,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(|source| StatusError::ApplySpec {
                namespace: namespace.into(),
                app: app.into(),
                source,
            })?
        }
    };
    let live_status = live.data.get("status").filter(|s| s.is_object());
    let mut desired = desired_status(status, live_status, &now_rfc3339()).map_err(|source| {
        StatusError::Serialize {
            app: app.to_string(),
            source,
        }
    })?;
    // Keep what record_drift wrote.
    if let (Some(old), Some(new)) = (
        live_status.and_then(Value::as_object),
        desired.as_object_mut(),
    ) {
        for k in DRIFT_KEYS {
            if let Some(v) = old.get(*k) {
                new.insert((*k).to_string(), v.clone());
            }
        }
    }
    if live_status == Some(&desired) {
        debug!(namespace, app, "status unchanged");
        return Ok(wrote);
    }
    // A merge patch of the whole status; keys no longer present are removed with null.
    let mut patch = desired.as_object().cloned().unwrap_or_default();
    if let Some(old) = live_status.and_then(Value::as_object) {
        for k in old.keys() {
            if !patch.contains_key(k) {
                patch.insert(k.clone(), Value::Null);
            }
        }
    }
    let mut body = Map::new();
    body.insert("status".into(), Value::Object(patch));
    api.patch_status(
        app,
        &PatchParams::default(),
        &Patch::Merge(Value::Object(body)),
    )
    .await
    .map_err(|source| StatusError::PatchStatus {
        namespace: namespace.into(),
        app: app.into(),
        source,
    })?;
    info!(
        namespace,
        app,
        phase = status.phase.as_str(),
        healthy = status.health.is_healthy(),
        "status written"
    );
    Ok(true)
}

fn application_api(client: &Client, namespace: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), namespace, &application_resource())
}

/// An ownerReference to the Application `namespace/app`, creating it (phase `starting`) when it
/// does not exist yet, so that objects rollgit creates for the app (its ControllerRevisions)
/// show the app as their controller, as KubeVela's do.
pub async fn application_owner(
    client: &Client,
    namespace: &str,
    app: &str,
    spec: &Value,
) -> Result<Value, StatusError> {
    let api = application_api(client, namespace);
    let existing = api.get_opt(app).await.map_err(|source| StatusError::Read {
        namespace: namespace.into(),
        app: app.into(),
        source,
    })?;
    let obj = match existing {
        Some(o) => o,
        None => {
            let starting = AppStatus {
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
            };
            write_status(client, namespace, app, spec, &starting).await?;
            api.get(app).await.map_err(|source| StatusError::Read {
                namespace: namespace.into(),
                app: app.into(),
                source,
            })?
        }
    };
    Ok(json!({
        "apiVersion": format!("{GROUP}/{VERSION}"),
        "kind": KIND,
        "name": app,
        "uid": obj.metadata.uid.unwrap_or_default(),
        "controller": true,
        "blockOwnerDeletion": true,
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
}

/// Reads [`Recorded`] from the Application `namespace/app` (`None` when it does not exist or
/// cannot be read).
pub async fn read_recorded(client: &Client, namespace: &str, app: &str) -> Option<Recorded> {
    let obj = application_api(client, namespace)
        .get_opt(app)
        .await
        .ok()??;
    Some(recorded_from_status(&obj.data["status"]))
}

/// [`Recorded`] from a status object (pure, for tests).
pub fn recorded_from_status(status: &Value) -> Recorded {
    let publish = match (
        status["publishVersion"].as_str(),
        status["contentHash"].as_str(),
    ) {
        (Some(v), Some(h)) => Some((v.to_string(), h.to_string())),
        _ => None,
    };
    Recorded {
        inventory: serde_json::from_value(status["inventory"].clone()).unwrap_or_default(),
        publish,
        last_applied_commit: status["lastAppliedCommit"].as_str().map(str::to_string),
        drift_corrections: status["driftCorrections"].as_u64().unwrap_or(0),
    }
}

/// Deletes the Application `namespace/app` (its app left Git). Missing is fine.
pub async fn delete_status(client: &Client, namespace: &str, app: &str) -> Result<(), StatusError> {
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
    client: &Client,
    namespace: &str,
    app: &str,
    total: u64,
    corrected: &[ObjRef],
) -> Result<(), StatusError> {
    let objects: Vec<String> = corrected.iter().map(ToString::to_string).collect();
    let body = json!({"status": {"driftCorrections": total, "lastDriftCorrection": objects}});
    application_api(client, namespace)
        .patch_status(app, &PatchParams::default(), &Patch::Merge(body))
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
        }
    }

    /// Sets the aggregate health: phase `running`/`unhealthy` (unless `failed`), HEALTHY, and
    /// the STATUS message when nothing failed.
    pub fn with_health(mut self, health: Health) -> Self {
        if matches!(
            self.phase,
            Phase::Running | Phase::Unhealthy | Phase::Starting
        ) {
            self.phase = Phase::from_health(&health);
        }
        if self.last_error.is_empty() {
            self.message = health.message.clone();
        }
        self.health = health;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        }
    }

    #[test]
    fn crd_yaml_parses_with_the_seed_columns() {
        let crd = application_crd().expect("parses");
        assert_eq!(crd.metadata.name.as_deref(), Some(APPLICATION_CRD_NAME));
        assert_eq!(
            crd.spec.names.short_names,
            Some(vec!["app".into(), "rga".into()])
        );
        let cols: Vec<String> = crd.spec.versions[0]
            .additional_printer_columns
            .as_ref()
            .expect("columns")
            .iter()
            .map(|c| c.name.clone())
            .collect();
        assert_eq!(
            cols,
            ["COMPONENT", "TYPE", "PHASE", "HEALTHY", "STATUS", "AGE"]
        );
    }

    #[test]
    fn desired_status_for_a_plain_yaml_app() {
        let s = desired_status(&sample(), None, "2025-01-01T00:00:00Z").expect("serializes");
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
        let first = desired_status(&sample(), None, "T1").expect("serializes");
        let again = desired_status(&sample(), Some(&first), "T2").expect("serializes");
        assert_eq!(first, again, "same status, same times: no write");

        let mut failing = sample();
        failing.last_attempted_commit = Some("def456".into());
        failing.last_error = vec!["web.yaml:3: did not find expected key".into()];
        failing.phase = Phase::Failed;
        let third = desired_status(&failing, Some(&again), "T3").expect("serializes");
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
        let v = desired_status(&s, None, "T").expect("serializes");
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
