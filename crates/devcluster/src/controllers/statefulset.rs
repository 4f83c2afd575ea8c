//! The StatefulSet controller: ordinal Pods `<name>-N`, OrderedReady (or Parallel) management,
//! ControllerRevisions `<name>-<hash>` with the `controller-revision-hash` Pod label, and
//! RollingUpdate with `partition` (ordinals ≥ partition updated, highest first, one at a time).

use super::client::ClientError;
use super::replicaset::pod_from_template;
use super::util::{self, controller_ref, int, owned, pod_available, strip_nulls, template_hash};
use super::{CONTROLLER_MANAGER, Outcome, Sim, create_pod, gr, live_object, write_status};
use crate::store::ObjKey;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// The Pod label naming a Pod's revision.
pub const REVISION_LABEL: &str = "controller-revision-hash";
const COMPONENT: &str = "statefulset-controller";

/// Ensures a ControllerRevision for `template` exists, owned by `owner`; returns its name.
/// `data` is what the revision stores; `extra_labels` are copied from the owner's selector.
/// A workload's pod-template revisions (ControllerRevisions holding `spec.template`, as the
/// StatefulSet, DaemonSet and CloneSet controllers keep them): the current template, the
/// revision it is at (update), the revision the status says is current, and the template of
/// any revision.
pub struct TemplateRevisions {
    /// `spec.template` without nulls.
    pub template: Value,
    /// The revision of `template`.
    pub update: String,
    /// `status.currentRevision` if it still exists, else `update`.
    pub current: String,
    revisions: Vec<(ObjKey, Value)>,
}

impl TemplateRevisions {
    /// Ensures the revision of `owner`'s template exists and reads the others.
    pub async fn ensure(sim: &Sim, owner: &Value) -> Result<Self, ClientError> {
        let template = strip_nulls(&owner["spec"]["template"]);
        let mut data_t = template.clone();
        data_t["$patch"] = json!("replace");
        let (update, revisions) =
            ensure_revision(sim, owner, &template, json!({"spec": {"template": data_t}})).await?;
        let current = owner["status"]["currentRevision"]
            .as_str()
            .filter(|r| revisions.iter().any(|(k, _)| k.name == *r))
            .unwrap_or(&update)
            .to_string();
        Ok(Self {
            template,
            update,
            current,
            revisions,
        })
    }

    /// The pod template stored in revision `rev` (the current template when it is unknown).
    pub fn template_of(&self, rev: &str) -> Value {
        self.revisions
            .iter()
            .find(|(k, _)| k.name == rev)
            .map(|(_, r)| {
                let mut t = r["data"]["spec"]["template"].clone();
                if let Some(m) = t.as_object_mut() {
                    m.remove("$patch");
                }
                t
            })
            .unwrap_or_else(|| self.template.clone())
    }
}

pub async fn ensure_revision(
    sim: &Sim,
    owner: &Value,
    template: &Value,
    data: Value,
) -> Result<(String, Vec<(ObjKey, Value)>), ClientError> {
    let uid = owner["metadata"]["uid"].as_str().unwrap_or_default();
    let ns = owner["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = owner["metadata"]["name"].as_str().unwrap_or_default();
    let revs = owned(&sim.store, uid, "apps", "controllerrevisions");
    let hash = template_hash(
        template,
        owner["status"]["collisionCount"]
            .as_i64()
            .filter(|c| *c > 0),
    );
    let rev_name = format!("{name}-{hash}");
    if revs.iter().any(|(k, _)| k.name == rev_name) {
        return Ok((rev_name, revs));
    }
    let max = revs
        .iter()
        .map(|(_, r)| int(&r["revision"]))
        .max()
        .unwrap_or(0);
    let mut labels = template["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels["controller.kubernetes.io/hash"] = json!(hash);
    let cr = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": rev_name, "namespace": ns, "labels": labels, "ownerReferences": [controller_ref(owner)]},
        "data": data,
        "revision": max + 1,
    });
    match sim
        .client
        .create(
            &gr("apps", "controllerrevisions"),
            ns,
            &cr,
            CONTROLLER_MANAGER,
        )
        .await
    {
        Ok(_) => {}
        Err(e) if e.is_conflict() => {}
        Err(e) => return Err(e),
    }
    let revs = owned(&sim.store, uid, "apps", "controllerrevisions");
    Ok((rev_name, revs))
}

fn revision_of(pod: &Value) -> &str {
    pod["metadata"]["labels"][REVISION_LABEL]
        .as_str()
        .unwrap_or_default()
}

fn ordinal(set: &str, pod: &str) -> Option<i64> {
    pod.strip_prefix(set)?.strip_prefix('-')?.parse().ok()
}

/// Reconciles one StatefulSet.
pub async fn reconcile(sim: &mut Sim, k: &ObjKey) -> Result<Outcome, ClientError> {
    let mut out = Outcome::default();
    let Some((sts, uid)) = live_object(sim, k) else {
        return Ok(out);
    };
    let replicas = int(&sts["spec"]["replicas"]);
    let revisions = TemplateRevisions::ensure(sim, &sts).await?;
    let update_rev = revisions.update.clone();
    let current_rev = revisions.current.clone();
    let template_of = |rev: &str| revisions.template_of(rev);
    let rolling = sts["spec"]["updateStrategy"]["type"] != "OnDelete";
    let partition = if rolling {
        int(&sts["spec"]["updateStrategy"]["rollingUpdate"]["partition"]).clamp(0, replicas.max(0))
    } else {
        0
    };
    let parallel = sts["spec"]["podManagementPolicy"] == "Parallel";
    let min_ready = Duration::from_secs(int(&sts["spec"]["minReadySeconds"]).max(0) as u64);
    let pods: HashMap<i64, (ObjKey, Value)> = owned(&sim.store, &uid, "", "pods")
        .into_iter()
        .filter_map(|(pk, p)| Some((ordinal(&k.name, &pk.name)?, (pk, p))))
        .collect();
    let service = sts["spec"]["serviceName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let mut acted = false;
    let mut all_ready = true;
    for ord in 0..replicas {
        match pods.get(&ord) {
            None => {
                let rev = if ord < partition {
                    &current_rev
                } else {
                    &update_rev
                };
                let name = format!("{}-{ord}", k.name);
                let ord_s = ord.to_string();
                let mut pod = pod_from_template(
                    sim,
                    &sts,
                    &template_of(rev),
                    &name,
                    None,
                    &[
                        (REVISION_LABEL, rev.as_str()),
                        ("statefulset.kubernetes.io/pod-name", name.as_str()),
                        ("apps.kubernetes.io/pod-index", ord_s.as_str()),
                    ],
                );
                pod["spec"]["hostname"] = json!(name);
                if !service.is_empty() {
                    pod["spec"]["subdomain"] = json!(service);
                }
                if !create_pod(
                    sim,
                    &sts,
                    &k.namespace,
                    &pod,
                    &format!("create Pod {name} in StatefulSet {} successful", k.name),
                    COMPONENT,
                )
                .await?
                {
                    out.retry = true;
                }
                acted = true;
                all_ready = false;
                if !parallel {
                    break;
                }
            }
            Some((_, p)) => {
                if !util::pod_ready(p) {
                    all_ready = false;
                    if !parallel {
                        break;
                    }
                }
            }
        }
    }
    // Scale down: the highest ordinal first, one at a time once the rest are ready.
    if !acted && (all_ready || parallel) {
        let mut condemned: Vec<(&i64, &(ObjKey, Value))> =
            pods.iter().filter(|(o, _)| **o >= replicas).collect();
        condemned.sort_by_key(|(o, _)| std::cmp::Reverse(**o));
        for (_, (pk, _)) in condemned.iter().take(if parallel { usize::MAX } else { 1 }) {
            super::delete_pod(
                sim,
                &sts,
                &pk.namespace,
                &pk.name,
                &format!(
                    "delete Pod {} in StatefulSet {} successful",
                    pk.name, k.name
                ),
                COMPONENT,
            )
            .await?;
            acted = true;
        }
    }
    // Rolling update: ordinals ≥ partition, highest first, one at a time, all others Ready.
    if !acted && all_ready && rolling {
        for ord in (partition..replicas).rev() {
            if let Some((pk, p)) = pods.get(&ord)
                && revision_of(p) != update_rev
            {
                {
                    super::delete_pod(
                        sim,
                        &sts,
                        &pk.namespace,
                        &pk.name,
                        &format!(
                            "delete Pod {} in StatefulSet {} successful",
                            pk.name, k.name
                        ),
                        COMPONENT,
                    )
                    .await?;
                    break;
                }
            }
        }
    }
    let now = SystemTime::now();
    let live: Vec<&Value> = pods
        .iter()
        .filter(|(o, _)| **o < replicas)
        .map(|(_, (_, p))| p)
        .collect();
    let mut ready = 0;
    let mut available = 0;
    for p in &live {
        if util::pod_ready(p) {
            ready += 1;
        }
        let (ok, wait) = pod_available(p, min_ready, now);
        if ok {
            available += 1;
        } else if let Some(w) = wait {
            out.after(w + Duration::from_millis(50));
        }
    }
    let updated = live.iter().filter(|p| revision_of(p) == update_rev).count() as i64;
    let mut current_rev = current_rev;
    let mut current = live
        .iter()
        .filter(|p| revision_of(p) == current_rev)
        .count() as i64;
    if updated == replicas && ready == replicas && live.len() as i64 == replicas {
        current_rev = update_rev.clone();
        current = updated;
    }
    let status = json!({
        "observedGeneration": int(&sts["metadata"]["generation"]),
        "replicas": live.len(),
        "readyReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_rev,
        "updateRevision": update_rev,
        "collisionCount": int(&sts["status"]["collisionCount"]),
        "availableReplicas": available,
    });
    write_status(sim, k, &sts, status).await?;
    Ok(out)
}
