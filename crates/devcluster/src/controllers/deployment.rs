//! The Deployment controller, after kubernetes `pkg/controller/deployment`: ReplicaSets named
//! `<name>-<pod-template-hash>`, RollingUpdate and Recreate, pause, revisions and their history
//! limit, and the Available/Progressing conditions with a progress deadline.

use super::client::ClientError;
use super::events::{self, Kind};
use super::util::{
    self, OldRs, cleanup_unhealthy, controller_ref, int, new_rs_new_replicas, owned, parse_time,
    resolve_fenceposts, scale_down_old, template_hash, without_label,
};
use super::{CONTROLLER_MANAGER, Outcome, Sim, gr, live_object, write_status};
use crate::store::ObjKey;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// `pod-template-hash`.
pub const HASH_LABEL: &str = "pod-template-hash";
/// `deployment.kubernetes.io/revision`.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
const DESIRED: &str = "deployment.kubernetes.io/desired-replicas";
const MAX: &str = "deployment.kubernetes.io/max-replicas";
const SKIP_ANNOTATIONS: [&str; 6] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    DESIRED,
    MAX,
    "deprecated.deployment.rollback.to",
];
const COMPONENT: &str = "deployment-controller";
/// `progressDeadlineSeconds` that means "no deadline" (MaxInt32).
const NO_DEADLINE: i64 = i32::MAX as i64;

fn revision(rs: &Value) -> i64 {
    rs["metadata"]["annotations"][REVISION]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

struct Strategy {
    recreate: bool,
    surge: i64,
    unavailable: i64,
}

fn strategy(d: &Value) -> Strategy {
    let replicas = int(&d["spec"]["replicas"]);
    let s = &d["spec"]["strategy"];
    if s["type"] == "Recreate" {
        return Strategy {
            recreate: true,
            surge: 0,
            unavailable: 0,
        };
    }
    let ru = &s["rollingUpdate"];
    let (surge, unavailable) = resolve_fenceposts(&ru["maxSurge"], &ru["maxUnavailable"], replicas);
    Strategy {
        recreate: false,
        surge,
        unavailable: if replicas == 0 {
            0
        } else {
            unavailable.min(replicas)
        },
    }
}

fn condition<'a>(status: &'a Value, t: &str) -> Option<&'a Value> {
    status["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == t)
}

/// `SetDeploymentCondition`: no change when status and reason are the same; keeps
/// lastTransitionTime when only the reason changes.
fn set_condition(status: &mut Value, t: &str, s: &str, reason: &str, message: &str, force: bool) {
    let now = crate::time::now_rfc3339();
    let mut cond = json!({"type": t, "status": s, "lastUpdateTime": now, "lastTransitionTime": now, "reason": reason, "message": message});
    if let Some(cur) = condition(status, t) {
        if !force && cur["status"] == s && cur["reason"] == reason {
            return;
        }
        if cur["status"] == s {
            cond["lastTransitionTime"] = cur["lastTransitionTime"].clone();
        }
    }
    let mut list: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    list.retain(|c| c["type"] != t);
    list.push(cond);
    status["conditions"] = Value::Array(list);
}

type Rs = (ObjKey, Value);

async fn scale_rs(
    sim: &Sim,
    d: &Value,
    rs: &mut Rs,
    to: i64,
    max_replicas: i64,
) -> Result<bool, ClientError> {
    let from = int(&rs.1["spec"]["replicas"]);
    let desired = int(&d["spec"]["replicas"]).to_string();
    let max = max_replicas.to_string();
    let ann = &rs.1["metadata"]["annotations"];
    if from == to && ann[DESIRED] == desired.as_str() && ann[MAX] == max.as_str() {
        return Ok(false);
    }
    let mut v = rs.1.clone();
    v["spec"]["replicas"] = json!(to);
    if !v["metadata"]["annotations"].is_object() {
        v["metadata"]["annotations"] = json!({});
    }
    v["metadata"]["annotations"][DESIRED] = json!(desired);
    v["metadata"]["annotations"][MAX] = json!(max);
    rs.1 = sim
        .client
        .update(&rs.0.gr, &rs.0.namespace, &v, CONTROLLER_MANAGER)
        .await?;
    if from != to {
        let op = if to > from { "up" } else { "down" };
        events::record(
            &sim.client,
            d,
            Kind::Normal,
            "ScalingReplicaSet",
            &format!("Scaled {op} replica set {} from {from} to {to}", rs.0.name),
            COMPONENT,
            None,
        )
        .await;
    }
    Ok(from != to)
}

fn copy_annotations(d: &Value, rs: &mut Value) {
    if !rs["metadata"]["annotations"].is_object() {
        rs["metadata"]["annotations"] = json!({});
    }
    for (k, v) in d["metadata"]["annotations"]
        .as_object()
        .into_iter()
        .flatten()
    {
        if !SKIP_ANNOTATIONS.contains(&k.as_str()) {
            rs["metadata"]["annotations"][k] = v.clone();
        }
    }
}

/// Reconciles one Deployment.
pub async fn reconcile(sim: &mut Sim, k: &ObjKey) -> Result<Outcome, ClientError> {
    let mut out = Outcome::default();
    let Some((mut d, uid)) = live_object(sim, k) else {
        return Ok(out);
    };
    let replicas = int(&d["spec"]["replicas"]);
    let template = util::strip_nulls(&d["spec"]["template"]);
    let paused = d["spec"]["paused"] == true;
    let strat = strategy(&d);
    let max_replicas = replicas + strat.surge;
    let rs_gr = gr("apps", "replicasets");
    let all = owned(&sim.store, &uid, "apps", "replicasets");
    let new_pos = all
        .iter()
        .position(|(_, rs)| without_label(&rs["spec"]["template"], HASH_LABEL) == template);
    let mut new_rs: Option<Rs> = new_pos.map(|i| all[i].clone());
    let mut olds: Vec<Rs> = all
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != new_pos)
        .map(|(_, r)| r.clone())
        .collect();
    let max_old = olds.iter().map(|(_, r)| revision(r)).max().unwrap_or(0);
    let mut status = d["status"].clone();
    if !status.is_object() {
        status = json!({});
    }
    let has_deadline = int(&d["spec"]["progressDeadlineSeconds"]) != NO_DEADLINE
        && d["spec"]["progressDeadlineSeconds"].is_number();

    // Paused conditions (checkPausedConditions).
    if has_deadline {
        let reason = condition(&status, "Progressing").map(|c| c["reason"].clone());
        if paused && reason.as_ref().is_none_or(|r| r != "DeploymentPaused") {
            set_condition(
                &mut status,
                "Progressing",
                "Unknown",
                "DeploymentPaused",
                "Deployment is paused",
                false,
            );
        } else if !paused && reason.is_some_and(|r| r == "DeploymentPaused") {
            set_condition(
                &mut status,
                "Progressing",
                "Unknown",
                "DeploymentResumed",
                "Deployment is resumed",
                false,
            );
        }
    }

    // Sync the new ReplicaSet's revision, or create it.
    let new_revision = max_old + 1;
    if let Some(rs) = new_rs.as_mut() {
        if revision(&rs.1) < new_revision {
            let mut v = rs.1.clone();
            copy_annotations(&d, &mut v);
            v["metadata"]["annotations"][REVISION] = json!(new_revision.to_string());
            rs.1 = sim
                .client
                .update(&rs_gr, &k.namespace, &v, CONTROLLER_MANAGER)
                .await?;
        }
        if has_deadline && condition(&status, "Progressing").is_none() {
            set_condition(
                &mut status,
                "Progressing",
                "True",
                "FoundNewReplicaSet",
                &format!("Found new replica set \"{}\"", rs.0.name),
                false,
            );
        }
    } else if !paused {
        let old_running = olds
            .iter()
            .any(|(_, r)| int(&r["spec"]["replicas"]) > 0 || int(&r["status"]["replicas"]) > 0);
        if !strat.recreate || !old_running {
            let collision = d["status"]["collisionCount"].as_i64();
            let hash = template_hash(&template, collision);
            let name = format!("{}-{hash}", k.name);
            let mut t = template.clone();
            if !t["metadata"]["labels"].is_object() {
                t["metadata"]["labels"] = json!({});
            }
            t["metadata"]["labels"][HASH_LABEL] = json!(hash);
            let mut selector = d["spec"]["selector"].clone();
            if !selector["matchLabels"].is_object() {
                selector["matchLabels"] = json!({});
            }
            selector["matchLabels"][HASH_LABEL] = json!(hash);
            let current: i64 = olds.iter().map(|(_, r)| int(&r["spec"]["replicas"])).sum();
            let want = if strat.recreate {
                replicas
            } else {
                new_rs_new_replicas(replicas, strat.surge, current, 0)
            };
            let mut rs = json!({
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": name,
                    "namespace": k.namespace,
                    "labels": t["metadata"]["labels"],
                    "annotations": {},
                    "ownerReferences": [controller_ref(&d)],
                },
                "spec": {
                    "replicas": want,
                    "minReadySeconds": int(&d["spec"]["minReadySeconds"]),
                    "selector": selector,
                    "template": t,
                },
            });
            copy_annotations(&d, &mut rs);
            rs["metadata"]["annotations"][REVISION] = json!(new_revision.to_string());
            rs["metadata"]["annotations"][DESIRED] = json!(replicas.to_string());
            rs["metadata"]["annotations"][MAX] = json!(max_replicas.to_string());
            match sim
                .client
                .create(&rs_gr, &k.namespace, &rs, CONTROLLER_MANAGER)
                .await
            {
                Ok(created) => {
                    if want > 0 {
                        events::record(
                            &sim.client,
                            &d,
                            Kind::Normal,
                            "ScalingReplicaSet",
                            &format!("Scaled up replica set {name} from 0 to {want}"),
                            COMPONENT,
                            None,
                        )
                        .await;
                    }
                    if has_deadline {
                        set_condition(
                            &mut status,
                            "Progressing",
                            "True",
                            "NewReplicaSetCreated",
                            &format!("Created new replica set \"{name}\""),
                            false,
                        );
                    }
                    new_rs = Some((
                        super::key("apps", "replicasets", &k.namespace, &name),
                        created,
                    ));
                }
                Err(e) if e.is_conflict() => {
                    // A ReplicaSet of that name with another template: a hash collision.
                    let other =
                        sim.store
                            .get(&super::key("apps", "replicasets", &k.namespace, &name));
                    let ours = other.as_ref().is_some_and(|o| {
                        let v = o.value();
                        without_label(&v["spec"]["template"], HASH_LABEL) == template
                            && o.meta.owners.contains(&uid)
                    });
                    if !ours {
                        let mut v = d.clone();
                        v["status"]["collisionCount"] = json!(collision.unwrap_or(0) + 1);
                        sim.client
                            .update_status(&k.gr, &k.namespace, &v, CONTROLLER_MANAGER)
                            .await?;
                    }
                    out.retry = true;
                    return Ok(out);
                }
                Err(e) => return Err(e),
            }
        }
    }

    // The Deployment's revision annotation follows the new ReplicaSet's.
    if let Some((_, rs)) = &new_rs {
        let rev = revision(rs).to_string();
        if d["metadata"]["annotations"][REVISION] != rev.as_str() {
            let mut v = d.clone();
            if !v["metadata"]["annotations"].is_object() {
                v["metadata"]["annotations"] = json!({});
            }
            v["metadata"]["annotations"][REVISION] = json!(rev);
            let st = status.clone();
            d = sim
                .client
                .update(&k.gr, &k.namespace, &v, CONTROLLER_MANAGER)
                .await?;
            status = st;
        }
    }

    if paused {
        // sync(): scale only, no rollout.
        if let Some(rs) = new_rs.as_mut()
            && olds.iter().all(|(_, r)| int(&r["spec"]["replicas"]) == 0)
        {
            scale_rs(sim, &d, rs, replicas, max_replicas).await?;
        }
    } else if strat.recreate {
        let mut scaled = false;
        for rs in olds.iter_mut() {
            if int(&rs.1["spec"]["replicas"]) > 0 {
                scaled |= scale_rs(sim, &d, rs, 0, replicas).await?;
            }
        }
        let old_pods = olds.iter().any(|(_, r)| {
            int(&r["status"]["replicas"]) > 0
                || !owned(
                    &sim.store,
                    r["metadata"]["uid"].as_str().unwrap_or_default(),
                    "",
                    "pods",
                )
                .is_empty()
        });
        if !scaled && !old_pods {
            if let Some(rs) = new_rs.as_mut() {
                scale_rs(sim, &d, rs, replicas, replicas).await?;
            } else {
                out.retry = true;
            }
        }
    } else if let Some(new) = new_rs.as_mut() {
        // reconcileNewReplicaSet.
        let new_replicas = int(&new.1["spec"]["replicas"]);
        let current: i64 = olds
            .iter()
            .map(|(_, r)| int(&r["spec"]["replicas"]))
            .sum::<i64>()
            + new_replicas;
        let target = if new_replicas > replicas {
            replicas
        } else {
            new_rs_new_replicas(replicas, strat.surge, current, new_replicas)
        };
        let scaled_new = scale_rs(sim, &d, new, target, max_replicas).await?;
        // reconcileOldReplicaSets.
        let old_pods: i64 = olds.iter().map(|(_, r)| int(&r["spec"]["replicas"])).sum();
        if !scaled_new && old_pods > 0 {
            let all_pods = old_pods + int(&new.1["spec"]["replicas"]);
            let min_available = replicas - strat.unavailable;
            let new_unavailable =
                int(&new.1["spec"]["replicas"]) - int(&new.1["status"]["availableReplicas"]);
            let budget = util::max_scaled_down(all_pods, min_available, new_unavailable);
            if budget > 0 {
                let view: Vec<OldRs> = olds
                    .iter()
                    .map(|(_, r)| OldRs {
                        replicas: int(&r["spec"]["replicas"]),
                        available: int(&r["status"]["availableReplicas"]),
                    })
                    .collect();
                let (after, _) = cleanup_unhealthy(&view, budget);
                for (rs, to) in olds.iter_mut().zip(&after) {
                    scale_rs(sim, &d, rs, *to, max_replicas).await?;
                }
                let all_available: i64 = olds
                    .iter()
                    .chain(std::iter::once(&*new))
                    .map(|(_, r)| int(&r["status"]["availableReplicas"]))
                    .sum();
                let (after2, _) = scale_down_old(&after, all_available, min_available);
                for (rs, to) in olds.iter_mut().zip(&after2) {
                    scale_rs(sim, &d, rs, *to, max_replicas).await?;
                }
            }
        }
    }

    // calculateStatus.
    let all_rs: Vec<&Value> = olds.iter().chain(new_rs.iter()).map(|(_, r)| r).collect();
    let sum = |f: &dyn Fn(&Value) -> i64| all_rs.iter().map(|r| f(r)).sum::<i64>();
    let available = sum(&|r| int(&r["status"]["availableReplicas"]));
    let total = sum(&|r| int(&r["spec"]["replicas"]));
    let actual = sum(&|r| int(&r["status"]["replicas"]));
    let ready = sum(&|r| int(&r["status"]["readyReplicas"]));
    let updated = new_rs
        .as_ref()
        .map_or(0, |(_, r)| int(&r["status"]["replicas"]));
    let old_status = d["status"].clone();
    let mut ns = json!({});
    let put = |s: &mut Value, f: &str, n: i64| {
        if n != 0 {
            s[f] = json!(n);
        }
    };
    put(
        &mut ns,
        "observedGeneration",
        int(&d["metadata"]["generation"]),
    );
    put(&mut ns, "replicas", actual);
    put(&mut ns, "updatedReplicas", updated);
    put(&mut ns, "readyReplicas", ready);
    put(&mut ns, "availableReplicas", available);
    put(&mut ns, "unavailableReplicas", (total - available).max(0));
    if let Some(c) = status.get("collisionCount") {
        ns["collisionCount"] = c.clone();
    }
    if let Some(c) = status.get("conditions") {
        ns["conditions"] = c.clone();
    }
    if available >= replicas - strat.unavailable {
        set_condition(
            &mut ns,
            "Available",
            "True",
            "MinimumReplicasAvailable",
            "Deployment has minimum availability.",
            false,
        );
    } else {
        set_condition(
            &mut ns,
            "Available",
            "False",
            "MinimumReplicasUnavailable",
            "Deployment does not have minimum availability.",
            false,
        );
    }

    // syncRolloutStatus.
    let deadline = Duration::from_secs(int(&d["spec"]["progressDeadlineSeconds"]).max(0) as u64);
    if !paused {
        if !has_deadline && let Some(list) = ns["conditions"].as_array_mut() {
            list.retain(|c| c["type"] != "Progressing");
        }
        let cur = condition(&status, "Progressing").cloned();
        let complete_already = int(&ns["replicas"]) == int(&ns["updatedReplicas"])
            && cur
                .as_ref()
                .is_some_and(|c| c["reason"] == "NewReplicaSetAvailable");
        let rs_name = new_rs.as_ref().map(|(k, _)| k.name.clone());
        let subject = |verb: &str| match &rs_name {
            Some(n) => format!("ReplicaSet \"{n}\" {verb}"),
            None => format!("Deployment \"{}\" {verb}", k.name),
        };
        let gen_ok = int(&ns["observedGeneration"]) >= int(&d["metadata"]["generation"]);
        let complete = updated == replicas && actual == replicas && available == replicas && gen_ok;
        let old_old = int(&old_status["replicas"]) - int(&old_status["updatedReplicas"]);
        let new_old = actual - updated;
        let progressing = updated > int(&old_status["updatedReplicas"])
            || new_old < old_old
            || ready > int(&old_status["readyReplicas"])
            || available > int(&old_status["availableReplicas"]);
        if has_deadline && !complete_already {
            if complete {
                set_condition(
                    &mut ns,
                    "Progressing",
                    "True",
                    "NewReplicaSetAvailable",
                    &subject("has successfully progressed."),
                    false,
                );
            } else if progressing {
                set_condition(
                    &mut ns,
                    "Progressing",
                    "True",
                    "ReplicaSetUpdated",
                    &subject("is progressing."),
                    true,
                );
            } else if let Some(c) = condition(&ns, "Progressing").cloned() {
                let timed_out = c["reason"] == "ProgressDeadlineExceeded"
                    || (c["reason"] != "NewReplicaSetAvailable"
                        && parse_time(&c["lastUpdateTime"])
                            .is_some_and(|t| t + deadline < SystemTime::now()));
                if timed_out {
                    set_condition(
                        &mut ns,
                        "Progressing",
                        "False",
                        "ProgressDeadlineExceeded",
                        &subject("has timed out progressing."),
                        false,
                    );
                }
            }
        }
        // requeueStuckDeployment.
        if has_deadline
            && !complete
            && let Some(c) = condition(&ns, "Progressing")
            && c["reason"] != "ProgressDeadlineExceeded"
            && c["reason"] != "NewReplicaSetAvailable"
            && let Some(t) = parse_time(&c["lastUpdateTime"])
        {
            let at = t + deadline + Duration::from_secs(1);
            let wait = at.duration_since(SystemTime::now()).unwrap_or_default();
            out.at(Instant::now() + wait);
        }
        // cleanupDeployment: keep revisionHistoryLimit old ReplicaSets.
        if complete {
            let limit = d["spec"]["revisionHistoryLimit"].as_i64().unwrap_or(10);
            let mut cleanable: Vec<&Rs> = olds.iter().collect();
            cleanable.sort_by_key(|(_, r)| revision(r));
            let diff = cleanable.len() as i64 - limit;
            for (rk, r) in cleanable.iter().take(diff.max(0) as usize) {
                if int(&r["status"]["replicas"]) != 0
                    || int(&r["spec"]["replicas"]) != 0
                    || int(&r["metadata"]["generation"]) > int(&r["status"]["observedGeneration"])
                {
                    continue;
                }
                sim.client
                    .delete(&rs_gr, &rk.namespace, &rk.name, CONTROLLER_MANAGER)
                    .await?;
            }
        }
    }
    write_status(sim, k, &d, ns).await?;
    Ok(out)
}
