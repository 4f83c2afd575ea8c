//! The workload a Kruise Rollout points at: how it is read into the core's [`WorkloadObs`],
//! and how the executor's workload actions are carried out on it, as Kruise's BatchRelease
//! controls and its own Deployment controller do:
//!
//! * **Deployment, canary style**: the Deployment stays paused on its stable pods; a canary
//!   Deployment `<name>-canary` (label `rollouts.kruise.io/canary-deployment: <name>`, owned by
//!   the Rollout) runs the new template and grows step by step; at the end the Deployment is
//!   resumed (its own rolling update replaces the pods) and the canary deleted.
//! * **Deployment, partition style**: the Deployment stays paused with the `Recreate` strategy
//!   (its own controller moves nothing) and its rolling update in
//!   `rollouts.kruise.io/deployment-strategy` with the partition; rollgit creates the new
//!   ReplicaSet and moves both ReplicaSets batch by batch
//!   ([`rollgit_core::kruise_run::partition_deployment_scale`]).
//! * **CloneSet, StatefulSet**: their partition.
//!
//! Every write is a merge patch under the field manager `rollgit-kruise` on fields the apply
//! stage does not own (the plan stage leaves them out of what it applies).

use crate::k8s::kruise::{
    ADVANCED_DEPLOYMENT_LABEL, CANARY_DEPLOYMENT_LABEL, COMMIT_ANNOTATION, CONTROL_ANNOTATION,
    DEPLOYMENT_STRATEGY_ANNOTATION, FIELD_MANAGER_KRUISE, GIT_STRATEGY_ANNOTATION,
    HOLD_FOR_ANNOTATION, IN_PROGRESSING, STABLE_REVISION_LABEL, TEMPLATE_HASH_ANNOTATION,
};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::ApiResource;
use rollgit_core::intstr::{self, IntOrString};
use rollgit_core::kruise::{self, RollingStyle, WorkloadKind};
use rollgit_core::kruise_run::{
    CONTROLLER_REVISION_HASH, POD_TEMPLATE_HASH, ReplicaSetObs, WorkloadObs, deployment_fenceposts,
    partition_deployment_scale,
};
use serde_json::{Value, json};

/// The kinds the executor rolls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps.kruise.io CloneSet.
    CloneSet,
}

impl Kind {
    /// The kind a `workloadRef` names.
    pub fn of(kind: &str) -> Option<Self> {
        match kind {
            "Deployment" => Some(Self::Deployment),
            "StatefulSet" => Some(Self::StatefulSet),
            "CloneSet" => Some(Self::CloneSet),
            _ => None,
        }
    }

    /// The core's workload kind.
    pub fn core(self) -> WorkloadKind {
        match self {
            Self::Deployment => WorkloadKind::Deployment,
            Self::StatefulSet => WorkloadKind::StatefulSet,
            Self::CloneSet => WorkloadKind::CloneSet,
        }
    }

    /// The API resource.
    pub fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Self::Deployment => ("apps", "v1", "Deployment", "deployments"),
            Self::StatefulSet => ("apps", "v1", "StatefulSet", "statefulsets"),
            Self::CloneSet => ("apps.kruise.io", "v1alpha1", "CloneSet", "clonesets"),
        };
        ApiResource {
            group: group.into(),
            version: version.into(),
            api_version: format!("{group}/{version}"),
            kind: kind.into(),
            plural: plural.into(),
        }
    }

    /// The label naming a pod's revision (Kruise's `RevisionLabelKey`).
    pub fn revision_label(self) -> &'static str {
        match self {
            Self::Deployment => POD_TEMPLATE_HASH,
            Self::StatefulSet | Self::CloneSet => CONTROLLER_REVISION_HASH,
        }
    }
}

fn replica_set_resource() -> ApiResource {
    ApiResource {
        group: "apps".into(),
        version: "v1".into(),
        api_version: "apps/v1".into(),
        kind: "ReplicaSet".into(),
        plural: "replicasets".into(),
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// A copy of `v` without `null`s (what the API server stores).
pub fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, x)| !x.is_null())
                .map(|(k, x)| (k.clone(), strip_nulls(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        other => other.clone(),
    }
}

fn without_hash(template: &Value) -> Value {
    let mut t = strip_nulls(template);
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove(POD_TEMPLATE_HASH);
    }
    t
}

/// The revision of a pod template (Kruise's `canaryRevision`): a hash of it, without nulls
/// and without `pod-template-hash`.
pub fn template_revision(template: &Value) -> String {
    let h = rollgit_render::spec_hash(&without_hash(template));
    h.get(..10).unwrap_or(&h).to_string()
}

fn same_template(a: &Value, b: &Value) -> bool {
    without_hash(a) == without_hash(b)
}

fn annotation<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["annotations"][key].as_str()
}

fn label<'a>(o: &'a Value, key: &str) -> Option<&'a str> {
    o["metadata"]["labels"][key].as_str()
}

fn owned_by(o: &Value, uid: &str) -> bool {
    o["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|refs| refs.iter().any(|r| r["uid"] == uid))
}

fn selector_string(sel: &Value) -> String {
    sel["matchLabels"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect::<Vec<_>>()
        .join(",")
}

fn to_value(o: &DynamicObject) -> Value {
    serde_json::to_value(o).unwrap_or(Value::Null)
}

/// Everything read of the workload in one pass (for the actions that follow).
#[derive(Debug, Clone)]
pub struct Live {
    /// The workload's kind.
    pub kind: Kind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The Rollout's style.
    pub style: RollingStyle,
    /// The workload.
    pub object: Value,
    /// Its ReplicaSets (Deployment).
    pub replica_sets: Vec<Value>,
    /// The canary Deployment (canary style), if it exists.
    pub canary: Option<Value>,
}

impl Live {
    fn replicas(&self) -> i64 {
        self.object["spec"]["replicas"].as_i64().unwrap_or(1)
    }

    fn template(&self) -> &Value {
        &self.object["spec"]["template"]
    }

    /// The canary Deployment's name.
    pub fn canary_name(&self) -> String {
        format!("{}-canary", self.name)
    }

    /// `metadata.generation`.
    pub fn generation(&self) -> i64 {
        int(&self.object["metadata"]["generation"])
    }

    fn new_rs(&self) -> Option<&Value> {
        let uid = self.object["metadata"]["uid"].as_str().unwrap_or_default();
        self.replica_sets
            .iter()
            .find(|rs| owned_by(rs, uid) && same_template(&rs["spec"]["template"], self.template()))
    }

    fn old_rs(&self) -> Vec<&Value> {
        let uid = self.object["metadata"]["uid"].as_str().unwrap_or_default();
        self.replica_sets
            .iter()
            .filter(|rs| {
                owned_by(rs, uid) && !same_template(&rs["spec"]["template"], self.template())
            })
            .collect()
    }

    fn partition(&self) -> Value {
        match self.kind {
            Kind::StatefulSet => {
                self.object["spec"]["updateStrategy"]["rollingUpdate"]["partition"].clone()
            }
            _ => self.object["spec"]["updateStrategy"]["partition"].clone(),
        }
    }

    fn partition_count(&self) -> i64 {
        match self.partition() {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::String(s) => {
                intstr::lenient(&IntOrString::Str(s), self.replicas(), true).unwrap_or(0)
            }
            _ => 0,
        }
    }

    /// The revision label value and the revision of the pods the live template makes.
    pub fn canary_hash(&self) -> Option<String> {
        match (self.kind, self.style) {
            (Kind::Deployment, RollingStyle::Canary) => {
                let c = self.canary.as_ref()?;
                if !same_template(&c["spec"]["template"], self.template()) {
                    return None;
                }
                let uid = c["metadata"]["uid"].as_str().unwrap_or_default();
                self.replica_sets
                    .iter()
                    .find(|rs| owned_by(rs, uid))
                    .and_then(|rs| label(rs, POD_TEMPLATE_HASH))
                    .map(str::to_string)
            }
            (Kind::Deployment, _) => self
                .new_rs()
                .and_then(|rs| label(rs, POD_TEMPLATE_HASH))
                .map(str::to_string),
            _ => self.object["status"]["updateRevision"]
                .as_str()
                .map(str::to_string),
        }
    }

    fn stable_hash(&self) -> Option<String> {
        if let Some(l) = label(&self.object, STABLE_REVISION_LABEL) {
            return Some(l.to_string());
        }
        self.current_hash()
    }

    /// The revision label value of the pods the workload runs now (before a release: the
    /// stable ones).
    pub fn current_hash(&self) -> Option<String> {
        match self.kind {
            Kind::Deployment => {
                if let Some(h) = self.new_rs().and_then(|rs| label(rs, POD_TEMPLATE_HASH)) {
                    return Some(h.to_string());
                }
                self.old_rs()
                    .into_iter()
                    .filter(|rs| int(&rs["spec"]["replicas"]) > 0)
                    .max_by_key(|rs| int(&rs["spec"]["replicas"]))
                    .and_then(|rs| label(rs, POD_TEMPLATE_HASH))
                    .map(str::to_string)
            }
            _ => self.object["status"]["currentRevision"]
                .as_str()
                .or(self.object["status"]["updateRevision"].as_str())
                .map(str::to_string),
        }
    }
}

/// Reads the workload `kind/name` (and, for a Deployment, its ReplicaSets and, canary style,
/// its canary Deployment); `None` when it does not exist.
pub async fn read(
    client: &kube::Client,
    namespace: &str,
    kind: Kind,
    name: &str,
    style: RollingStyle,
) -> Result<Option<Live>, kube::Error> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), namespace, &kind.resource());
    let Some(o) = api.get_opt(name).await? else {
        return Ok(None);
    };
    let object = to_value(&o);
    let mut live = Live {
        kind,
        namespace: namespace.to_string(),
        name: name.to_string(),
        style,
        object,
        replica_sets: Vec::new(),
        canary: None,
    };
    if kind == Kind::Deployment {
        let rs_api: Api<DynamicObject> =
            Api::namespaced_with(client.clone(), namespace, &replica_set_resource());
        let sel = selector_string(&live.object["spec"]["selector"]);
        let lp = if sel.is_empty() {
            ListParams::default()
        } else {
            ListParams::default().labels(&sel)
        };
        live.replica_sets = rs_api.list(&lp).await?.items.iter().map(to_value).collect();
        if style == RollingStyle::Canary {
            live.canary = api
                .get_opt(&live.canary_name())
                .await?
                .map(|c| to_value(&c))
                .filter(|c| label(c, CANARY_DEPLOYMENT_LABEL) == Some(name));
        }
    }
    Ok(Some(live))
}

impl Live {
    /// The Git template hash the workload was applied with, if any.
    pub fn template_hash(&self) -> Option<&str> {
        annotation(&self.object, TEMPLATE_HASH_ANNOTATION)
    }

    /// `spec.replicas` (1 when unset).
    pub fn spec_replicas(&self) -> i64 {
        self.replicas()
    }
}

/// Reads the workload into the core's observation; `None` when it does not exist.
/// `not_ready` gets the canary's pods that are not ready.
pub async fn observe(
    client: &kube::Client,
    namespace: &str,
    kind: Kind,
    name: &str,
    style: RollingStyle,
    not_ready: &mut Vec<String>,
) -> Result<Option<(WorkloadObs, Live)>, kube::Error> {
    let Some(live) = read(client, namespace, kind, name, style).await? else {
        return Ok(None);
    };
    let o = &live.object;
    let replicas = live.replicas();
    let status = &o["status"];
    let template = live.template().clone();
    let (updated, updated_ready) = match (kind, style) {
        (Kind::Deployment, RollingStyle::Canary) => match &live.canary {
            Some(c) if same_template(&c["spec"]["template"], &template) => (
                int(&c["status"]["replicas"]),
                int(&c["status"]["availableReplicas"]),
            ),
            _ => (0, 0),
        },
        (Kind::Deployment, _) => live.new_rs().map_or((0, 0), |rs| {
            (
                int(&rs["status"]["replicas"]),
                int(&rs["status"]["availableReplicas"]),
            )
        }),
        (Kind::CloneSet, _) => (
            int(&status["updatedReplicas"]),
            int(&status["updatedReadyReplicas"]),
        ),
        (Kind::StatefulSet, _) => (int(&status["updatedReplicas"]), -1),
    };
    let canary_pod_hash = live.canary_hash();
    // The canary's pods: their readiness (StatefulSets do not count it) and who is not ready.
    let mut ready_canary = 0;
    if let Some(h) = &canary_pod_hash {
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), namespace);
        let mut sel = selector_string(&o["spec"]["selector"]);
        if !sel.is_empty() {
            sel.push(',');
        }
        sel.push_str(&format!("{}={h}", kind.revision_label()));
        for p in pods.list(&ListParams::default().labels(&sel)).await?.items {
            let ready = p
                .status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
            if ready {
                ready_canary += 1;
            } else {
                not_ready.push(p.metadata.name.unwrap_or_default());
            }
        }
        not_ready.sort();
    }
    let updated_ready = if updated_ready < 0 {
        ready_canary.min(updated)
    } else {
        updated_ready
    };
    let observed = int(&status["observedGeneration"]) >= int(&o["metadata"]["generation"]);
    let paused = match kind {
        Kind::Deployment => o["spec"]["paused"] == true,
        _ => live.partition_count() > 0,
    };
    let promoted = observed
        && !paused
        && match kind {
            // Stricter than Kruise's `waitAllUpdatedAndReady` (which tolerates maxUnavailable):
            // the canary Deployment goes only once every pod of the Deployment is available.
            Kind::Deployment => {
                let created = int(&status["replicas"]);
                created == replicas
                    && int(&status["updatedReplicas"]) == replicas
                    && int(&status["availableReplicas"]) >= replicas
            }
            Kind::CloneSet => {
                int(&status["updatedReplicas"]) == replicas
                    && int(&status["updatedReadyReplicas"]) == replicas
            }
            Kind::StatefulSet => {
                int(&status["updatedReplicas"]) == replicas
                    && int(&status["readyReplicas"]) == replicas
            }
        };
    let pod_hash = match kind {
        Kind::Deployment => live
            .new_rs()
            .and_then(|rs| label(rs, POD_TEMPLATE_HASH))
            .map(str::to_string),
        _ => status["updateRevision"].as_str().map(str::to_string),
    };
    let hold_for = annotation(o, HOLD_FOR_ANNOTATION);
    let obs = WorkloadObs {
        replicas,
        consistent: observed,
        revision: template_revision(&template),
        pod_hash,
        canary_pod_hash,
        stable_pod_hash: live.stable_hash(),
        held: annotation(o, IN_PROGRESSING).is_some(),
        hold_pending: hold_for.is_some() && hold_for != annotation(o, TEMPLATE_HASH_ANNOTATION),
        paused,
        under_control: annotation(o, CONTROL_ANNOTATION).is_some(),
        updated,
        updated_ready,
        promoted,
        canary_workload: live
            .canary
            .as_ref()
            .map(|c| c["spec"]["replicas"].as_i64().unwrap_or(1)),
        commit: annotation(o, COMMIT_ANNOTATION).map(str::to_string),
    };
    Ok(Some((obs, live)))
}

/// Who is acting, for owner references and annotations.
#[derive(Debug, Clone)]
pub struct Owner {
    /// The Rollout's name.
    pub name: String,
    /// Its uid.
    pub uid: String,
}

impl Owner {
    /// An owner reference to the Rollout.
    pub fn reference(&self) -> Value {
        json!({
            "apiVersion": format!("{}/{}", crate::k8s::kruise::GROUP, crate::k8s::kruise::VERSION),
            "kind": "Rollout",
            "name": self.name,
            "uid": self.uid,
            "controller": true,
            "blockOwnerDeletion": true,
        })
    }
}

fn pp() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER_KRUISE.into()),
        ..PatchParams::default()
    }
}

async fn merge(api: &Api<DynamicObject>, name: &str, patch: Value) -> Result<(), kube::Error> {
    api.patch(name, &pp(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}

async fn delete(api: &Api<DynamicObject>, name: &str) -> Result<(), kube::Error> {
    match api.delete(name, &DeleteParams::background()).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Git's `spec.strategy` of a partition-style Deployment, with the API server's defaults.
pub fn git_strategy(o: &Value) -> Value {
    let git: Value = annotation(o, GIT_STRATEGY_ANNOTATION)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| json!({}));
    if git["type"] == "Recreate" {
        return json!({"type": "Recreate"});
    }
    let mut ru = json!({"maxSurge": "25%", "maxUnavailable": "25%"});
    if let Some(m) = git["rollingUpdate"].as_object() {
        for (k, v) in m {
            ru[k] = v.clone();
        }
    }
    json!({"type": "RollingUpdate", "rollingUpdate": ru})
}

/// A partition-style Deployment at rest gets Git's strategy (the executor owns the field).
pub async fn sync_strategy(client: &kube::Client, live: &Live) -> Result<(), kube::Error> {
    if live.kind != Kind::Deployment
        || live.style != RollingStyle::Partition
        || annotation(&live.object, GIT_STRATEGY_ANNOTATION).is_none()
        || annotation(&live.object, CONTROL_ANNOTATION).is_some()
        || annotation(&live.object, IN_PROGRESSING).is_some()
    {
        return Ok(());
    }
    let want = git_strategy(&live.object);
    let have = strip_nulls(&live.object["spec"]["strategy"]);
    if want == have {
        return Ok(());
    }
    let mut patch = want.clone();
    if want["type"] == "Recreate" {
        patch["rollingUpdate"] = Value::Null;
    }
    let api = Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    merge(&api, &live.name, json!({"spec": {"strategy": patch}})).await
}

/// The partition-style Deployment's strategy annotation (`partition`, `rollingUpdate`).
fn kruise_strategy(o: &Value) -> Value {
    annotation(o, DEPLOYMENT_STRATEGY_ANNOTATION)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_else(|| json!({}))
}

/// Holds the workload for a release, as Kruise's webhook does: paused (a CloneSet's or
/// StatefulSet's partition at every pod), `in-progressing`, and the stable revision.
pub async fn hold(
    client: &kube::Client,
    live: &Live,
    rollout: &str,
    stable_revision: &str,
    hold_for: Option<&str>,
) -> Result<(), kube::Error> {
    let api = Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    let o = &live.object;
    let mut patch = json!({"metadata": {"annotations": {}}});
    let mut changed = false;
    if annotation(o, IN_PROGRESSING).is_none() {
        patch["metadata"]["annotations"][IN_PROGRESSING] =
            json!(json!({"rolloutName": rollout}).to_string());
        changed = true;
    }
    if let Some(h) = hold_for
        && annotation(o, HOLD_FOR_ANNOTATION) != Some(h)
    {
        patch["metadata"]["annotations"][HOLD_FOR_ANNOTATION] = json!(h);
        changed = true;
    }
    if !stable_revision.is_empty() && label(o, STABLE_REVISION_LABEL).is_none() {
        patch["metadata"]["labels"] = json!({STABLE_REVISION_LABEL: stable_revision});
        changed = true;
    }
    match live.kind {
        Kind::Deployment => {
            if o["spec"]["paused"] != true {
                patch["spec"] = json!({"paused": true});
                changed = true;
            }
        }
        Kind::CloneSet => {
            if live.partition() != json!("100%") {
                patch["spec"] = json!({"updateStrategy": {"partition": "100%"}});
                changed = true;
            }
        }
        Kind::StatefulSet => {
            if live.partition_count() < live.replicas() {
                patch["spec"] = json!({"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": live.replicas()}}});
                changed = true;
            }
        }
    }
    if changed {
        merge(&api, &live.name, patch).await?;
    }
    Ok(())
}

/// Lets go of a hold whose template was not applied (its `rollgit.dev/hold-for` names a
/// template the workload does not have): the executor then resumes it.
pub async fn let_go(client: &kube::Client, live: &Live) -> Result<(), kube::Error> {
    let o = &live.object;
    let Some(hold_for) = annotation(o, HOLD_FOR_ANNOTATION) else {
        return Ok(());
    };
    if Some(hold_for) == annotation(o, TEMPLATE_HASH_ANNOTATION) {
        return Ok(());
    }
    let api = Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    merge(
        &api,
        &live.name,
        json!({"metadata": {"annotations": {HOLD_FOR_ANNOTATION: null}}}),
    )
    .await
}

/// Takes control of the workload for the release (Kruise's BatchRelease `Initialize`).
pub async fn initialize(
    client: &kube::Client,
    live: &Live,
    owner: &Owner,
) -> Result<(), kube::Error> {
    let api = Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    let control = owner.reference().to_string();
    if live.kind == Kind::Deployment && live.style == RollingStyle::Partition {
        let o = &live.object;
        let git = git_strategy(o);
        let rolling = if git["rollingUpdate"].is_object() {
            git["rollingUpdate"].clone()
        } else if o["spec"]["strategy"]["rollingUpdate"].is_object() {
            o["spec"]["strategy"]["rollingUpdate"].clone()
        } else {
            json!({"maxSurge": "25%", "maxUnavailable": "25%"})
        };
        let strategy = json!({"rollingStyle": "Partition", "rollingUpdate": rolling, "partition": 0, "paused": false});
        return merge(
            &api,
            &live.name,
            json!({
                "metadata": {
                    "labels": {ADVANCED_DEPLOYMENT_LABEL: "true"},
                    "annotations": {
                        CONTROL_ANNOTATION: control,
                        DEPLOYMENT_STRATEGY_ANNOTATION: strategy.to_string(),
                    },
                },
                "spec": {"paused": true, "strategy": {"type": "Recreate", "rollingUpdate": null}},
            }),
        )
        .await;
    }
    merge(
        &api,
        &live.name,
        json!({"metadata": {"annotations": {CONTROL_ANNOTATION: control}}}),
    )
    .await
}

/// Brings the current step's batch about (only towards more new pods).
pub async fn upgrade_batch(
    client: &kube::Client,
    live: &Live,
    owner: &Owner,
    desired_updated: i64,
    partition: &IntOrString,
) -> Result<(), kube::Error> {
    let api = Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    match (live.kind, live.style) {
        (Kind::Deployment, RollingStyle::Canary) => {
            ensure_canary(client, live, owner, desired_updated).await
        }
        (Kind::Deployment, _) => {
            let mut strategy = kruise_strategy(&live.object);
            let current: IntOrString = serde_json::from_value(strategy["partition"].clone())
                .unwrap_or(IntOrString::Int(0));
            let mut effective = current.clone();
            if kruise::should_patch_deployment_partition(&current, partition) {
                strategy["partition"] = serde_json::to_value(partition).unwrap_or(json!(0));
                merge(
                    &api,
                    &live.name,
                    json!({"metadata": {"annotations": {DEPLOYMENT_STRATEGY_ANNOTATION: strategy.to_string()}}}),
                )
                .await?;
                effective = partition.clone();
            }
            let limit = kruise::deployment_new_rs_limit(&effective, live.replicas());
            scale_replica_sets(client, live, &strategy, limit).await
        }
        (Kind::CloneSet, _) => {
            let current: IntOrString = serde_json::from_value(live.partition())
                .unwrap_or(IntOrString::Int(live.replicas()));
            if kruise::should_patch_cloneset_partition(&current, partition, live.replicas()) {
                merge(
                    &api,
                    &live.name,
                    json!({"spec": {"updateStrategy": {"partition": partition}}}),
                )
                .await?;
            }
            Ok(())
        }
        (Kind::StatefulSet, _) => {
            let want = intstr::lenient(partition, live.replicas(), true).unwrap_or(0);
            if live.partition_count() > want {
                merge(
                    &api,
                    &live.name,
                    json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": want}}}}),
                )
                .await?;
            }
            Ok(())
        }
    }
}

/// The canary Deployment `<name>-canary` at `replicas` (created from the Deployment, grown,
/// never shrunk; one with another template is deleted first).
async fn ensure_canary(
    client: &kube::Client,
    live: &Live,
    owner: &Owner,
    replicas: i64,
) -> Result<(), kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    let name = live.canary_name();
    match &live.canary {
        Some(c) if !same_template(&c["spec"]["template"], live.template()) => {
            delete(&api, &name).await
        }
        Some(c) => {
            if c["spec"]["replicas"].as_i64().unwrap_or(1) < replicas {
                merge(&api, &name, json!({"spec": {"replicas": replicas}})).await?;
            }
            Ok(())
        }
        None => {
            let mut spec = strip_nulls(&live.object["spec"]);
            spec["replicas"] = json!(replicas);
            if let Some(m) = spec.as_object_mut() {
                m.remove("paused");
            }
            let canary = json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": live.namespace,
                    "labels": {CANARY_DEPLOYMENT_LABEL: live.name},
                    "annotations": {CONTROL_ANNOTATION: owner.reference().to_string()},
                    "ownerReferences": [owner.reference()],
                },
                "spec": spec,
            });
            let obj: DynamicObject =
                serde_json::from_value(canary).map_err(kube::Error::SerdeError)?;
            match api.create(&PostParams::default(), &obj).await {
                Ok(_) => Ok(()),
                Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
                Err(e) => Err(e),
            }
        }
    }
}

/// One move of a partition-style Deployment's ReplicaSets towards `limit` new pods.
async fn scale_replica_sets(
    client: &kube::Client,
    live: &Live,
    strategy: &Value,
    limit: i64,
) -> Result<(), kube::Error> {
    let rs_api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), &live.namespace, &replica_set_resource());
    let iv = |v: &Value| serde_json::from_value::<IntOrString>(v.clone()).ok();
    let ru = &strategy["rollingUpdate"];
    let (surge, unavailable) = deployment_fenceposts(
        iv(&ru["maxSurge"]).as_ref(),
        iv(&ru["maxUnavailable"]).as_ref(),
        live.replicas(),
    );
    let obs = |rs: &Value| ReplicaSetObs {
        replicas: int(&rs["spec"]["replicas"]),
        available: int(&rs["status"]["availableReplicas"]),
    };
    let new = live.new_rs().cloned();
    if new.is_none() && limit <= 0 {
        return Ok(());
    }
    let olds = live.old_rs();
    let (new_target, old_targets) = partition_deployment_scale(
        live.replicas(),
        surge,
        unavailable,
        limit,
        new.as_ref().map(obs).unwrap_or_default(),
        &olds.iter().map(|r| obs(r)).collect::<Vec<_>>(),
    );
    match &new {
        Some(rs) => {
            if obs(rs).replicas != new_target {
                let name = rs["metadata"]["name"].as_str().unwrap_or_default();
                merge(&rs_api, name, json!({"spec": {"replicas": new_target}})).await?;
            }
        }
        None => {
            create_replica_set(&rs_api, live, new_target).await?;
        }
    }
    for (rs, to) in olds.iter().zip(old_targets) {
        if obs(rs).replicas != to {
            let name = rs["metadata"]["name"].as_str().unwrap_or_default();
            merge(&rs_api, name, json!({"spec": {"replicas": to}})).await?;
        }
    }
    Ok(())
}

/// The new ReplicaSet of a partition-style Deployment, as its controller would make it: the
/// Deployment's template labelled with its `pod-template-hash`, owned by the Deployment (which
/// adopts it when resumed: it finds its new ReplicaSet by template).
async fn create_replica_set(
    api: &Api<DynamicObject>,
    live: &Live,
    replicas: i64,
) -> Result<(), kube::Error> {
    let hash = template_revision(live.template());
    let mut template = strip_nulls(live.template());
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut selector = strip_nulls(&live.object["spec"]["selector"]);
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    let revision = live
        .replica_sets
        .iter()
        .filter_map(|rs| {
            annotation(rs, "deployment.kubernetes.io/revision").and_then(|r| r.parse::<i64>().ok())
        })
        .max()
        .unwrap_or(0)
        + 1;
    let o = &live.object;
    let rs = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{}-{hash}", live.name),
            "namespace": live.namespace,
            "labels": template["metadata"]["labels"],
            "annotations": {
                "deployment.kubernetes.io/revision": revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": live.replicas().to_string(),
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": live.name,
                "uid": o["metadata"]["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {
            "replicas": replicas,
            "minReadySeconds": int(&o["spec"]["minReadySeconds"]),
            "selector": selector,
            "template": template,
        },
    });
    let obj: DynamicObject = serde_json::from_value(rs).map_err(kube::Error::SerdeError)?;
    match api.create(&PostParams::default(), &obj).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

/// Removes the canary's pods after a failure (the workload stays held).
pub async fn scale_canary_away(client: &kube::Client, live: &Live) -> Result<(), kube::Error> {
    let api = Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    match (live.kind, live.style) {
        (Kind::Deployment, RollingStyle::Canary) => delete(&api, &live.canary_name()).await,
        (Kind::Deployment, _) => {
            let mut strategy = kruise_strategy(&live.object);
            if strategy["partition"] != json!(0) {
                strategy["partition"] = json!(0);
                merge(
                    &api,
                    &live.name,
                    json!({"metadata": {"annotations": {DEPLOYMENT_STRATEGY_ANNOTATION: strategy.to_string()}}}),
                )
                .await?;
            }
            scale_replica_sets(client, live, &strategy, 0).await
        }
        (Kind::CloneSet, _) => {
            merge(
                &api,
                &live.name,
                json!({"spec": {"updateStrategy": {"partition": "100%"}}}),
            )
            .await
        }
        (Kind::StatefulSet, _) => {
            merge(
                &api,
                &live.name,
                json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": live.replicas()}}}}),
            )
            .await
        }
    }
}

/// Lets the workload's own controller run it again (Kruise's `Finalize`: unpaused, the
/// strategy or partition restored).
pub async fn resume(client: &kube::Client, live: &Live) -> Result<(), kube::Error> {
    let api = Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    match (live.kind, live.style) {
        (Kind::Deployment, RollingStyle::Canary) => {
            merge(&api, &live.name, json!({"spec": {"paused": false}})).await
        }
        (Kind::Deployment, _) => {
            let mut strategy = git_strategy(&live.object);
            if annotation(&live.object, GIT_STRATEGY_ANNOTATION).is_none() {
                let saved = kruise_strategy(&live.object);
                if saved["rollingUpdate"].is_object() {
                    strategy["rollingUpdate"] = saved["rollingUpdate"].clone();
                }
            }
            if strategy["type"] == "Recreate" {
                strategy["rollingUpdate"] = Value::Null;
            }
            merge(
                &api,
                &live.name,
                json!({"spec": {"paused": false, "strategy": strategy}}),
            )
            .await
        }
        (Kind::CloneSet, _) => {
            merge(
                &api,
                &live.name,
                json!({"spec": {"updateStrategy": {"partition": null}}}),
            )
            .await
        }
        (Kind::StatefulSet, _) => {
            merge(
                &api,
                &live.name,
                json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": null}}}}),
            )
            .await
        }
    }
}

/// Ends rollgit's control of the workload: Kruise's annotations and labels removed, a
/// CloneSet's or StatefulSet's partition removed, the canary Deployment deleted.
pub async fn release(client: &kube::Client, live: &Live) -> Result<(), kube::Error> {
    let api = Api::namespaced_with(client.clone(), &live.namespace, &live.kind.resource());
    if live.canary.is_some() {
        delete(&api, &live.canary_name()).await?;
    }
    // Kruise's Finalize of a partition: none left (Git's leaves it out).
    let spec = match live.kind {
        Kind::Deployment => json!({}),
        Kind::CloneSet => json!({"updateStrategy": {"partition": null}}),
        Kind::StatefulSet => json!({"updateStrategy": {"rollingUpdate": {"partition": null}}}),
    };
    merge(
        &api,
        &live.name,
        json!({"spec": spec, "metadata": {
            "annotations": {
                IN_PROGRESSING: null,
                CONTROL_ANNOTATION: null,
                DEPLOYMENT_STRATEGY_ANNOTATION: null,
                HOLD_FOR_ANNOTATION: null,
            },
            "labels": {STABLE_REVISION_LABEL: null, ADVANCED_DEPLOYMENT_LABEL: null},
        }}),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_revision_ignores_nulls_and_the_hash_label() {
        let a = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}});
        let b = json!({"metadata": {"labels": {"app": "a", "pod-template-hash": "x"}, "annotations": null}, "spec": {"containers": [{"name": "c", "image": "i:1"}]}});
        let c = json!({"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [{"name": "c", "image": "i:2"}]}});
        assert_eq!(template_revision(&a), template_revision(&b));
        assert_ne!(template_revision(&a), template_revision(&c));
        assert_eq!(template_revision(&a).len(), 10);
    }

    #[test]
    fn git_strategy_has_the_defaults() {
        let o = |s: &str| json!({"metadata": {"annotations": {GIT_STRATEGY_ANNOTATION: s}}});
        assert_eq!(
            git_strategy(&o("{}")),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}})
        );
        assert_eq!(
            git_strategy(&o(r#"{"rollingUpdate": {"maxSurge": 0}}"#)),
            json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "25%"}})
        );
        assert_eq!(
            git_strategy(&o(r#"{"type": "Recreate"}"#)),
            json!({"type": "Recreate"})
        );
    }
}
