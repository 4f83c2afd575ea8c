//! The ReplicaSets of an Argo Rollout: the hashes that name them, how they are built from the
//! pod template, and how a live one is read into the core's [`ObservedRs`].
//!
//! A ReplicaSet is `<rollout>-<hash>`, labelled (and selected, and its pods labelled) with
//! `rollouts-pod-template-hash: <hash>`, annotated with its revision, and controlled by the
//! Rollout (ownerReference), as Argo makes them. The hash is rollgit's own: the first 32 bits
//! of the SHA-256 of the template's canonical JSON, in decimal, written with Kubernetes'
//! `SafeEncodeString` alphabet (so it looks like the hashes users know and never spells a word).

use super::{
    API_VERSION, DESIRED_REPLICAS_ANNOTATION, HASH_LABEL, KIND, REVISION_ANNOTATION,
    SCALE_DOWN_DEADLINE_ANNOTATION,
};
use rollgit_core::argo_exec::ObservedRs;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Kubernetes' `SafeEncodeString` alphabet: no vowels, no `0`, `1` or `3`.
const ALPHANUMS: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// The hash naming a value (a pod template, the steps).
///
/// ```
/// use rollgit::rollout::argo::replicasets::hash_of;
/// let h = hash_of(&serde_json::json!({"spec": {"containers": [{"image": "nginx:1"}]}}));
/// assert!(h.len() >= 8 && h.bytes().all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b)));
/// assert_eq!(h, hash_of(&serde_json::json!({"spec": {"containers": [{"image": "nginx:1"}]}})));
/// ```
pub fn hash_of(v: &Value) -> String {
    let canonical = rollgit_render::canonical_json(v);
    let digest = Sha256::digest(canonical.as_bytes());
    let n = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]);
    n.to_string()
        .bytes()
        .map(|b| ALPHANUMS[usize::from(b) % ALPHANUMS.len()] as char)
        .collect()
}

/// The template the hash is computed over: the pod template without the hash label.
pub fn pod_template_hash(template: &Value) -> String {
    let mut t = template.clone();
    if let Some(labels) = t["metadata"]["labels"].as_object_mut() {
        labels.remove(HASH_LABEL);
    }
    hash_of(&t)
}

/// The ReplicaSet of `hash` for `rollout` (the live Rollout object) running `template`.
pub fn build(
    rollout: &Value,
    template: &Value,
    selector: &Value,
    hash: &str,
    revision: i64,
    replicas: i64,
) -> Value {
    let name = rollout["metadata"]["name"].as_str().unwrap_or_default();
    let ns = rollout["metadata"]["namespace"]
        .as_str()
        .unwrap_or_default();
    let mut template = template.clone();
    if !template["metadata"].is_object() {
        template["metadata"] = json!({});
    }
    if !template["metadata"]["labels"].is_object() {
        template["metadata"]["labels"] = json!({});
    }
    template["metadata"]["labels"][HASH_LABEL] = json!(hash);
    let mut labels = template["metadata"]["labels"].clone();
    if let Some(m) = labels.as_object_mut() {
        m.insert(HASH_LABEL.into(), json!(hash));
    }
    let mut selector = if selector.is_object() {
        selector.clone()
    } else {
        json!({})
    };
    if !selector["matchLabels"].is_object() {
        selector["matchLabels"] = json!({});
    }
    selector["matchLabels"][HASH_LABEL] = json!(hash);
    let mut spec = Map::new();
    spec.insert("replicas".into(), json!(replicas));
    spec.insert("selector".into(), selector);
    spec.insert("template".into(), template);
    if let Some(m) = rollout["spec"]["minReadySeconds"].as_i64() {
        spec.insert("minReadySeconds".into(), json!(m));
    }
    let owner = json!({
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": rollout["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    });
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": rollgit_core::argo_exec::replica_set_name(name, hash),
            "namespace": ns,
            "labels": labels,
            "annotations": {
                REVISION_ANNOTATION: revision.to_string(),
                DESIRED_REPLICAS_ANNOTATION: rollout["spec"]["replicas"].as_i64().unwrap_or(1).to_string(),
            },
            "ownerReferences": [owner],
        },
        "spec": spec,
    })
}

/// Whether a ReplicaSet is controlled by the Rollout with `uid`.
pub fn controlled_by(rs: &Value, uid: &str) -> bool {
    rs["metadata"]["ownerReferences"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|o| o["uid"] == uid && o["controller"] == true)
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// A live ReplicaSet as the core sees it (`None` without the hash label).
pub fn observe(rs: &Value) -> Option<ObservedRs> {
    let hash = rs["metadata"]["labels"][HASH_LABEL].as_str()?.to_string();
    let annotations = &rs["metadata"]["annotations"];
    let revision = annotations[REVISION_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let scale_down_deadline = annotations[SCALE_DOWN_DEADLINE_ANNOTATION]
        .as_str()
        .and_then(|s| s.parse::<k8s_openapi::jiff::Timestamp>().ok())
        .map(|t| t.as_second());
    let status = &rs["status"];
    Some(ObservedRs {
        hash,
        revision,
        spec: rs["spec"]["replicas"].as_i64().unwrap_or(1),
        replicas: int(&status["replicas"]),
        ready: int(&status["readyReplicas"]),
        available: int(&status["availableReplicas"]),
        scale_down_deadline,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replicaset_is_named_labelled_selected_and_owned_as_argo_makes_it() {
        let rollout = json!({
            "metadata": {"name": "web", "namespace": "default", "uid": "u1"},
            "spec": {"replicas": 10, "minReadySeconds": 5},
        });
        let template =
            json!({"metadata": {"labels": {"app": "nginx"}}, "spec": {"containers": []}});
        let rs = build(
            &rollout,
            &template,
            &json!({"matchLabels": {"app": "nginx"}}),
            "abc",
            2,
            1,
        );
        assert_eq!(rs["metadata"]["name"], "web-abc");
        assert_eq!(rs["metadata"]["labels"][HASH_LABEL], "abc");
        assert_eq!(rs["spec"]["selector"]["matchLabels"][HASH_LABEL], "abc");
        assert_eq!(rs["spec"]["selector"]["matchLabels"]["app"], "nginx");
        assert_eq!(
            rs["spec"]["template"]["metadata"]["labels"][HASH_LABEL],
            "abc"
        );
        assert_eq!(rs["spec"]["minReadySeconds"], 5);
        assert_eq!(rs["metadata"]["annotations"][REVISION_ANNOTATION], "2");
        assert!(controlled_by(&rs, "u1"));
        let o = observe(&rs).expect("labelled");
        assert_eq!((o.hash.as_str(), o.revision, o.spec), ("abc", 2, 1));
    }

    #[test]
    fn the_hash_ignores_the_hash_label_and_follows_the_template() {
        let a =
            json!({"metadata": {"labels": {"app": "x"}}, "spec": {"containers": [{"image": "a"}]}});
        let mut b = a.clone();
        b["metadata"]["labels"][HASH_LABEL] = json!("zzz");
        assert_eq!(pod_template_hash(&a), pod_template_hash(&b));
        let mut c = a.clone();
        c["spec"]["containers"][0]["image"] = json!("b");
        assert_ne!(pod_template_hash(&a), pod_template_hash(&c));
    }
}
