//! The OpenKruise CloneSet controller (`apps.kruise.io/v1alpha1`, served once its CRD is
//! installed): Pods `<name>-<5 random chars>`, in-place updates of container images,
//! `updateStrategy.partition` (Pods kept on the old revision, int or percent rounded up),
//! `maxUnavailable`, `paused`, and the CloneSet status.

use super::client::ClientError;
use super::events::{self, Kind};
use super::replicaset::{deletion_order, pod_from_template};
use super::statefulset::{REVISION_LABEL, TemplateRevisions};
use super::util::{
    self, int, owned, partition_count, pod_available, random_suffix, resolve_int_or_percent,
};
use super::{CONTROLLER_MANAGER, Outcome, Sim, create_pod, gr, live_object, write_status};
use crate::store::ObjKey;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const INSTANCE_ID: &str = "apps.kruise.io/cloneset-instance-id";
const COMPONENT: &str = "cloneset-controller";

fn revision_of(pod: &Value) -> &str {
    pod["metadata"]["labels"][REVISION_LABEL]
        .as_str()
        .unwrap_or_default()
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

/// Reconciles one CloneSet.
pub async fn reconcile(sim: &mut Sim, k: &ObjKey) -> Result<Outcome, ClientError> {
    let mut out = Outcome::default();
    let Some((cs, uid)) = live_object(sim, k) else {
        return Ok(out);
    };
    let replicas = cs["spec"]["replicas"].as_i64().unwrap_or(1);
    let revisions = TemplateRevisions::ensure(sim, &cs).await?;
    let template = revisions.template.clone();
    let update_rev = revisions.update.clone();
    let current_rev = revisions.current.clone();
    let template_of = |rev: &str| revisions.template_of(rev);
    let strategy = &cs["spec"]["updateStrategy"];
    let partition = partition_count(&strategy["partition"], replicas);
    let paused = strategy["paused"] == true;
    let max_unavailable = resolve_int_or_percent(
        strategy.get("maxUnavailable").unwrap_or(&json!("20%")),
        replicas,
        true,
    )
    .unwrap_or(1)
    .max(1);
    let min_ready = Duration::from_secs(int(&cs["spec"]["minReadySeconds"]).max(0) as u64);
    let expected_updated = replicas - partition;
    let mut pods = owned(&sim.store, &uid, "", "pods");
    let pods_gr = gr("", "pods");
    let have = pods.len() as i64;
    let mut updated_now = pods
        .iter()
        .filter(|(_, p)| revision_of(p) == update_rev)
        .count() as i64;
    if have < replicas {
        for _ in have..replicas {
            let id = random_suffix();
            let name = format!("{}-{id}", k.name);
            // New Pods take the update revision unless the partition keeps them on the current one.
            let rev = if updated_now < expected_updated {
                update_rev.clone()
            } else {
                current_rev.clone()
            };
            if rev == update_rev {
                updated_now += 1;
            }
            let pod = pod_from_template(
                sim,
                &cs,
                &template_of(&rev),
                &name,
                Some(&format!("{}-", k.name)),
                &[(REVISION_LABEL, rev.as_str()), (INSTANCE_ID, id.as_str())],
            );
            if !create_pod(
                sim,
                &cs,
                &k.namespace,
                &pod,
                &format!("succeed to create pod {name}"),
                COMPONENT,
            )
            .await?
            {
                out.retry = true;
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
                &cs,
                &pk.namespace,
                &pk.name,
                &format!("succeed to delete pod {}", pk.name),
                COMPONENT,
            )
            .await?;
        }
    }
    // In-place update: change images (and the revision label) of old Pods, keeping
    // `partition` of them, with at most maxUnavailable Pods not ready at once.
    if !paused && have >= replicas {
        let updated = pods
            .iter()
            .filter(|(_, p)| revision_of(p) == update_rev)
            .count() as i64;
        let unavailable = pods.iter().filter(|(_, p)| !util::pod_ready(p)).count() as i64;
        let budget = (max_unavailable - unavailable).min(expected_updated - updated);
        if budget > 0 {
            let mut candidates: Vec<&(ObjKey, Value)> = pods
                .iter()
                .filter(|(_, p)| revision_of(p) != update_rev)
                .collect();
            candidates.sort_by_key(|(pk, p)| (util::pod_ready(p), pk.name.clone()));
            for (pk, p) in candidates.into_iter().take(budget as usize) {
                let mut v = p.clone();
                for c in v["spec"]["containers"].as_array_mut().into_iter().flatten() {
                    let want = template["spec"]["containers"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|t| t["name"] == c["name"])
                        .map(|t| t["image"].clone());
                    if let Some(img) = want {
                        c["image"] = img;
                    }
                }
                v["metadata"]["labels"][REVISION_LABEL] = json!(update_rev);
                if !v["metadata"]["annotations"].is_object() {
                    v["metadata"]["annotations"] = json!({});
                }
                v["metadata"]["annotations"]["apps.kruise.io/inplace-update-state"] = json!(
                    json!({
                        "revision": update_rev,
                        "updateTimestamp": crate::time::now_rfc3339(),
                        "lastContainerStatuses": {},
                    })
                    .to_string()
                );
                sim.client
                    .update(&pods_gr, &pk.namespace, &v, CONTROLLER_MANAGER)
                    .await?;
                events::record(
                    &sim.client,
                    &cs,
                    Kind::Normal,
                    "SuccessfulUpdatePodInPlace",
                    &format!(
                        "successfully update pod {} in-place(revision {update_rev})",
                        pk.name
                    ),
                    COMPONENT,
                    None,
                )
                .await;
            }
        }
    }
    let now = SystemTime::now();
    let (mut ready, mut available, mut updated, mut updated_ready) = (0, 0, 0, 0);
    for (_, p) in &pods {
        let r = util::pod_ready(p);
        let up = revision_of(p) == update_rev;
        ready += i64::from(r);
        updated += i64::from(up);
        updated_ready += i64::from(r && up);
        let (ok, wait) = pod_available(p, min_ready, now);
        available += i64::from(ok);
        if let Some(w) = wait {
            out.after(w + Duration::from_millis(50));
        }
    }
    let current_rev = if updated == replicas && pods.len() as i64 == replicas {
        update_rev.clone()
    } else {
        current_rev
    };
    let status = json!({
        "observedGeneration": int(&cs["metadata"]["generation"]),
        "replicas": pods.len(),
        "readyReplicas": ready,
        "availableReplicas": available,
        "updatedReplicas": updated,
        "updatedReadyReplicas": updated_ready,
        "expectedUpdatedReplicas": expected_updated,
        "updateRevision": update_rev,
        "currentRevision": current_rev,
        "collisionCount": int(&cs["status"]["collisionCount"]),
        "labelSelector": selector_string(&cs["spec"]["selector"]),
    });
    write_status(sim, k, &cs, status).await?;
    Ok(out)
}
