//! Workloads a Rollout drives: how to address them (kind, partition field), how to read
//! them into the core's [`Workload`] observation, and how to build the workload of a revision
//! from its ControllerRevision.

use crate::k8s::crds::{RolloutSpec, WorkloadRef};
use crate::k8s::{APP_LABEL, REVISION_LABEL, ROLLOUT_LABEL};
use kube::Resource;
use kube::discovery::ApiResource;
use rollgit_core::batch::{Style, Workload};
use rollgit_core::intstr::IntOrString;
use serde_json::{Value, json};

/// The annotation naming the revision a workload's template runs (in-place workloads).
pub const REVISION_ANNOTATION: &str = REVISION_LABEL;

/// The pure core's style of a workload kind: a Deployment per revision, or one workload
/// updated in place through its partition.
pub fn style(w: &WorkloadRef) -> Style {
    if w.kind == "Deployment" {
        Style::Deployments
    } else {
        Style::Partition
    }
}

/// The API resource of a workload kind.
pub fn resource(w: &WorkloadRef) -> ApiResource {
    let (group, version) = match w.api_version.split_once('/') {
        Some((g, v)) => (g.to_string(), v.to_string()),
        None => (String::new(), w.api_version.clone()),
    };
    ApiResource {
        group,
        version,
        api_version: w.api_version.clone(),
        kind: w.kind.clone(),
        plural: format!("{}s", w.kind.to_ascii_lowercase()),
    }
}

/// The merge patch that sets the partition (CloneSet: `updateStrategy.partition`;
/// StatefulSet: `updateStrategy.rollingUpdate.partition`).
pub fn partition_patch(w: &WorkloadRef, partition: i64) -> Value {
    if w.kind == "StatefulSet" {
        json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}})
    } else {
        json!({"spec": {"updateStrategy": {"partition": partition}}})
    }
}

fn partition_of(w: &WorkloadRef, obj: &Value, replicas: i64) -> i64 {
    let p = if w.kind == "StatefulSet" {
        &obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
    } else {
        &obj["spec"]["updateStrategy"]["partition"]
    };
    match p {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => {
            rollgit_core::intstr::lenient(&IntOrString::Str(s.clone()), replicas, true).unwrap_or(0)
        }
        _ => 0,
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The core's observation of one live workload running `revision`.
pub fn workload_of(kind: &WorkloadRef, revision: &str, v: &Value) -> Workload {
    let spec_replicas = v["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &v["status"];
    let updated = int(&status["updatedReplicas"]);
    let ready = int(&status["readyReplicas"]);
    let status_replicas = int(&status["replicas"]);
    let updated_ready = match status.get("updatedReadyReplicas") {
        Some(n) => int(n),
        // Deployments and StatefulSets do not report it: ready pods that are all updated.
        None if updated >= status_replicas => ready,
        None => ready.min(updated),
    };
    Workload {
        revision: revision.to_string(),
        spec_replicas,
        status_replicas,
        ready_replicas: ready,
        updated_replicas: updated,
        updated_ready_replicas: updated_ready,
        partition: partition_of(kind, v, spec_replicas),
        observed: int(&status["observedGeneration"]) >= int(&v["metadata"]["generation"]),
    }
}

/// The workload object to apply for `revision`: the revision's data, named (Deployments: after
/// the revision, with the revision in its selector and pod labels), labelled for the Rollout,
/// owned by it, at `replicas` (and `partition`).
#[allow(clippy::too_many_arguments)]
pub fn build_workload(
    data: &Value,
    spec: &RolloutSpec,
    rollout: &str,
    ns: &str,
    owner: &crate::k8s::Rollout,
    revision: &str,
    replicas: i64,
    partition: Option<i64>,
) -> Value {
    let mut w = data.clone();
    let style = style(&spec.workload);
    let mut meta = serde_json::Map::new();
    let name = match style {
        Style::Deployments => revision.to_string(),
        Style::Partition => data["metadata"]["name"]
            .as_str()
            .unwrap_or(&spec.component)
            .to_string(),
    };
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(ns));
    let mut labels = data["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels[ROLLOUT_LABEL] = json!(rollout);
    labels[REVISION_LABEL] = json!(revision);
    labels[APP_LABEL] = json!(spec.app);
    meta.insert("labels".into(), labels);
    let mut annotations = data["metadata"]["annotations"].clone();
    if !annotations.is_object() {
        annotations = json!({});
    }
    annotations[REVISION_ANNOTATION] = json!(revision);
    meta.insert("annotations".into(), annotations);
    if let (Some(uid), Some(oname)) = (&owner.metadata.uid, &owner.metadata.name) {
        meta.insert(
            "ownerReferences".into(),
            json!([{
                "apiVersion": crate::k8s::API_VERSION,
                "kind": crate::k8s::Rollout::kind(&()),
                "name": oname,
                "uid": uid,
            }]),
        );
    }
    w["metadata"] = Value::Object(meta);
    w["spec"]["replicas"] = json!(replicas);
    if style == Style::Deployments {
        w["spec"]["selector"]["matchLabels"][REVISION_LABEL] = json!(revision);
        w["spec"]["template"]["metadata"]["labels"][REVISION_LABEL] = json!(revision);
    }
    if let Some(p) = partition {
        if spec.workload.kind == "StatefulSet" {
            w["spec"]["updateStrategy"]["type"] = json!("RollingUpdate");
            w["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(p);
        } else {
            w["spec"]["updateStrategy"]["partition"] = json!(p);
        }
    }
    if let Some(m) = w.as_object_mut() {
        m.remove("status");
    }
    w
}
