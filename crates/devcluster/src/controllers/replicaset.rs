//! The ReplicaSet controller: keeps `spec.replicas` Pods named `<rs>-<5 random chars>`,
//! deletes the least useful Pods first when scaling down, and reports status.

use super::client::ClientError;
use super::events::{self, Kind};
use super::util::{self, controller_ref, int, owned, pod_available, random_suffix};
use super::{Outcome, Sim, create_pod, kubelet, live_object, write_status};
use crate::store::ObjKey;
use serde_json::{Map, Value, json};
use std::cmp::Reverse;
use std::time::{Duration, SystemTime};

/// Builds a Pod from a template, owned by `owner`, with extra labels, bound to a node.
pub fn pod_from_template(
    sim: &Sim,
    owner: &Value,
    template: &Value,
    name: &str,
    generate_name: Option<&str>,
    extra_labels: &[(&str, &str)],
) -> Value {
    let namespace = owner["metadata"]["namespace"].clone();
    let mut labels = template["metadata"]["labels"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    for (k, v) in extra_labels {
        labels.insert((*k).to_string(), json!(v));
    }
    let mut meta = Map::new();
    meta.insert("name".into(), json!(name));
    if let Some(g) = generate_name {
        meta.insert("generateName".into(), json!(g));
    }
    meta.insert("namespace".into(), namespace);
    meta.insert("labels".into(), Value::Object(labels));
    if let Some(a) = template["metadata"]["annotations"].as_object() {
        meta.insert("annotations".into(), Value::Object(a.clone()));
    }
    meta.insert("ownerReferences".into(), json!([controller_ref(owner)]));
    let mut spec = template["spec"].clone();
    if spec["nodeName"].as_str().is_none_or(str::is_empty)
        && let Some(n) = kubelet::pick_node(sim, name)
    {
        spec["nodeName"] = json!(n);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": spec})
}

/// Whether `pod` carries every label of `template`.
pub fn fully_labeled(pod: &Value, template: &Value) -> bool {
    template["metadata"]["labels"]
        .as_object()
        .into_iter()
        .flatten()
        .all(|(k, v)| pod["metadata"]["labels"][k] == *v)
}

fn phase_rank(pod: &Value) -> u8 {
    match pod["status"]["phase"].as_str() {
        Some("Pending") => 0,
        Some("Unknown") => 1,
        Some("Running") => 2,
        _ => 0,
    }
}

/// Orders Pods so the first are the best to delete (`controller.ActivePods`).
pub fn deletion_order(pods: &mut [(ObjKey, Value)]) {
    pods.sort_by_key(|(_, p)| {
        let assigned = p["spec"]["nodeName"]
            .as_str()
            .is_some_and(|n| !n.is_empty());
        let ready = util::pod_ready(p);
        let since = util::ready_since(p).map(Reverse);
        let restarts: i64 = p["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| int(&c["restartCount"]))
            .max()
            .unwrap_or(0);
        let created = p["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        (
            assigned,
            phase_rank(p),
            ready,
            since,
            Reverse(restarts),
            Reverse(created),
        )
    });
}

/// Reconciles one ReplicaSet.
pub async fn reconcile(sim: &mut Sim, k: &ObjKey) -> Result<Outcome, ClientError> {
    let mut out = Outcome::default();
    let Some((rs, uid)) = live_object(sim, k) else {
        return Ok(out);
    };
    let replicas = int(&rs["spec"]["replicas"]);
    let min_ready = Duration::from_secs(int(&rs["spec"]["minReadySeconds"]).max(0) as u64);
    let template = &rs["spec"]["template"];
    let mut pods = owned(&sim.store, &uid, "", "pods");
    let have = pods.len() as i64;
    let mut created = 0;
    if have < replicas {
        for _ in have..replicas {
            let name = format!("{}-{}", k.name, random_suffix());
            let pod = pod_from_template(
                sim,
                &rs,
                template,
                &name,
                Some(&format!("{}-", k.name)),
                &[],
            );
            match create_pod(
                sim,
                &rs,
                &k.namespace,
                &pod,
                &format!("Created pod: {name}"),
                "replicaset-controller",
            )
            .await
            {
                Ok(true) => created += 1,
                Ok(false) => out.retry = true,
                Err(e) => {
                    events::record(
                        &sim.client,
                        &rs,
                        Kind::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                        "replicaset-controller",
                        None,
                    )
                    .await;
                    return Err(e);
                }
            }
        }
    } else if have > replicas {
        deletion_order(&mut pods);
        let doomed: Vec<ObjKey> = pods
            .drain(..(have - replicas) as usize)
            .map(|(k, _)| k)
            .collect();
        for pk in doomed {
            super::delete_pod(
                sim,
                &rs,
                &pk.namespace,
                &pk.name,
                &format!("Deleted pod: {}", pk.name),
                "replicaset-controller",
            )
            .await?;
        }
    }
    // Status counts the Pods as they are after this pass: deleted ones are gone, created ones
    // exist but are not ready.
    let have = pods.len() as i64 + created;
    let now = SystemTime::now();
    let mut ready = 0;
    let mut available = 0;
    let mut labeled = 0;
    for (_, p) in &pods {
        if util::pod_ready(p) {
            ready += 1;
        }
        let (ok, wait) = pod_available(p, min_ready, now);
        if ok {
            available += 1;
        } else if let Some(w) = wait {
            out.after(w + Duration::from_millis(50));
        }
        if fully_labeled(p, template) {
            labeled += 1;
        }
    }
    let mut status = json!({"replicas": have});
    let put = |s: &mut Value, f: &str, n: i64| {
        if n != 0 {
            s[f] = json!(n);
        }
    };
    put(&mut status, "fullyLabeledReplicas", labeled);
    put(&mut status, "readyReplicas", ready);
    put(&mut status, "availableReplicas", available);
    put(
        &mut status,
        "observedGeneration",
        int(&rs["metadata"]["generation"]),
    );
    if let Some(c) = rs["status"].get("conditions") {
        status["conditions"] = c.clone();
    }
    write_status(sim, k, &rs, status).await?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pod(name: &str, node: &str, phase: &str, ready: bool, created: &str) -> (ObjKey, Value) {
        (
            super::super::key("", "pods", "default", name),
            json!({
                "metadata": {"name": name, "creationTimestamp": created},
                "spec": {"nodeName": node},
                "status": {"phase": phase, "conditions": [{"type": "Ready", "status": if ready { "True" } else { "False" }, "lastTransitionTime": created}]},
            }),
        )
    }

    #[test]
    fn scale_down_deletes_not_ready_pods_first() {
        let mut pods = vec![
            pod("ready-old", "n", "Running", true, "2024-01-01T00:00:00Z"),
            pod("not-ready", "n", "Running", false, "2024-01-01T00:00:00Z"),
            pod("pending", "n", "Pending", false, "2024-01-01T00:00:00Z"),
            pod("ready-new", "n", "Running", true, "2024-01-02T00:00:00Z"),
            pod("unassigned", "", "Pending", false, "2024-01-01T00:00:00Z"),
        ];
        deletion_order(&mut pods);
        let names: Vec<&str> = pods.iter().map(|(k, _)| k.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "unassigned",
                "pending",
                "not-ready",
                "ready-new",
                "ready-old"
            ]
        );
    }
}
