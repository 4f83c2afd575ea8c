//! The DaemonSet controller: one Pod per simulated Node, RollingUpdate (delete old Pods up to
//! `maxUnavailable`, then recreate), ControllerRevisions, and the DaemonSet status.

use super::client::ClientError;
use super::replicaset::pod_from_template;
use super::statefulset::{REVISION_LABEL, TemplateRevisions};
use super::util::{self, int, owned, pod_available, random_suffix, resolve_int_or_percent};
use super::{Outcome, Sim, create_pod, live_object, write_status};
use crate::store::ObjKey;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

const COMPONENT: &str = "daemonset-controller";

/// Reconciles one DaemonSet.
pub async fn reconcile(sim: &mut Sim, k: &ObjKey) -> Result<Outcome, ClientError> {
    let mut out = Outcome::default();
    let Some((ds, uid)) = live_object(sim, k) else {
        return Ok(out);
    };
    let revisions = TemplateRevisions::ensure(sim, &ds).await?;
    let template = revisions.template.clone();
    let rev = revisions.update.clone();
    let nodes = sim.cfg.nodes.clone();
    let desired = nodes.len() as i64;
    let mut by_node: BTreeMap<String, Vec<(ObjKey, Value)>> = BTreeMap::new();
    for (pk, p) in owned(&sim.store, &uid, "", "pods") {
        let n = p["spec"]["nodeName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        by_node.entry(n).or_default().push((pk, p));
    }
    let mut acted = false;
    for (node, pods) in &by_node {
        let keep = usize::from(nodes.contains(node));
        for (pk, _) in pods.iter().skip(keep) {
            super::delete_pod(
                sim,
                &ds,
                &pk.namespace,
                &pk.name,
                &format!("Deleted pod: {}", pk.name),
                COMPONENT,
            )
            .await?;
            acted = true;
        }
    }
    for node in &nodes {
        if by_node.get(node).is_some_and(|p| !p.is_empty()) {
            continue;
        }
        let name = format!("{}-{}", k.name, random_suffix());
        let mut t = template.clone();
        t["spec"]["nodeName"] = json!(node);
        let generation = int(&ds["metadata"]["generation"]).to_string();
        let pod = pod_from_template(
            sim,
            &ds,
            &t,
            &name,
            Some(&format!("{}-", k.name)),
            &[
                (REVISION_LABEL, rev.as_str()),
                ("pod-template-generation", generation.as_str()),
            ],
        );
        if !create_pod(
            sim,
            &ds,
            &k.namespace,
            &pod,
            &format!("Created pod: {name}"),
            COMPONENT,
        )
        .await?
        {
            out.retry = true;
        }
        acted = true;
    }
    let on_nodes: Vec<&Value> = nodes
        .iter()
        .filter_map(|n| by_node.get(n).and_then(|p| p.first()).map(|(_, p)| p))
        .collect();
    let rolling = ds["spec"]["updateStrategy"]["type"] != "OnDelete";
    if !acted && rolling {
        let max_unavailable = resolve_int_or_percent(
            &ds["spec"]["updateStrategy"]["rollingUpdate"]["maxUnavailable"],
            desired,
            true,
        )
        .unwrap_or(1)
        .max(1);
        let unavailable = on_nodes.iter().filter(|p| !util::pod_ready(p)).count() as i64;
        let budget = max_unavailable - unavailable;
        let mut old: Vec<&&Value> = on_nodes
            .iter()
            .filter(|p| p["metadata"]["labels"][REVISION_LABEL] != rev.as_str())
            .collect();
        old.sort_by_key(|p| util::pod_ready(p));
        for p in old.into_iter().take(budget.max(0) as usize) {
            let name = p["metadata"]["name"].as_str().unwrap_or_default();
            super::delete_pod(
                sim,
                &ds,
                &k.namespace,
                name,
                &format!("Deleted pod: {name}"),
                COMPONENT,
            )
            .await?;
        }
    }
    let min_ready = Duration::from_secs(int(&ds["spec"]["minReadySeconds"]).max(0) as u64);
    let now = SystemTime::now();
    let (mut ready, mut available, mut updated) = (0i64, 0i64, 0i64);
    for p in &on_nodes {
        ready += i64::from(util::pod_ready(p));
        let (ok, wait) = pod_available(p, min_ready, now);
        available += i64::from(ok);
        if let Some(w) = wait {
            out.after(w + Duration::from_millis(50));
        }
        updated += i64::from(p["metadata"]["labels"][REVISION_LABEL] == rev.as_str());
    }
    let mut status = json!({
        "currentNumberScheduled": on_nodes.len(),
        "desiredNumberScheduled": desired,
        "numberMisscheduled": 0,
        "numberReady": ready,
        "observedGeneration": int(&ds["metadata"]["generation"]),
        "updatedNumberScheduled": updated,
        "numberAvailable": available,
    });
    if desired - available > 0 {
        status["numberUnavailable"] = json!(desired - available);
    }
    write_status(sim, k, &ds, status).await?;
    Ok(out)
}
