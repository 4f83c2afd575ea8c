//! Helpers shared by the controllers: pure arithmetic (int-or-percent resolution, rolling-update
//! steps, partitions), template hashing, and Pod readiness.

use crate::store::{ObjKey, Store};
use serde_json::{Map, Value, json};
use std::time::{Duration, SystemTime};

/// The alphabet Kubernetes uses for generated names and hashes (no vowels, no confusables).
pub const SAFE_ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

/// Five random safe characters, as `generateName` appends.
pub fn random_suffix() -> String {
    let u = uuid::Uuid::new_v4();
    u.as_bytes()[..5]
        .iter()
        .map(|b| SAFE_ALPHABET[*b as usize % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// `rand.SafeEncodeString`: each byte mapped into the safe alphabet.
pub fn safe_encode(s: &str) -> String {
    s.bytes()
        .map(|b| SAFE_ALPHABET[b as usize % SAFE_ALPHABET.len()] as char)
        .collect()
}

/// The value with object keys sorted at every level, so hashing does not depend on key order.
pub fn canonical(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            let mut out = Map::new();
            for k in keys {
                out.insert(k.clone(), canonical(&m[k]));
            }
            Value::Object(out)
        }
        Value::Array(a) => Value::Array(a.iter().map(canonical).collect()),
        _ => v.clone(),
    }
}

/// FNV-1a, 32 bits.
pub fn fnv32a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in data {
        h ^= u32::from(*b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The hash of a pod template as the Deployment controller names ReplicaSets: FNV-32a of the
/// template (and the collision count, if any), printed in decimal and safe-encoded.
pub fn template_hash(template: &Value, collision_count: Option<i64>) -> String {
    let mut data = canonical(&strip_nulls(template)).to_string().into_bytes();
    if let Some(c) = collision_count {
        data.extend_from_slice(c.to_string().as_bytes());
    }
    safe_encode(&fnv32a(&data).to_string())
}

/// The value without null fields at any level (Go decodes a null and an absent field alike).
pub fn strip_nulls(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), strip_nulls(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_nulls).collect()),
        _ => v.clone(),
    }
}

/// A template without the label that names its hash (and without null fields), for comparing
/// templates as `EqualIgnoreHash` does.
pub fn without_label(template: &Value, label: &str) -> Value {
    let mut t = strip_nulls(template);
    if let Some(l) = t["metadata"]["labels"].as_object_mut() {
        l.remove(label);
    }
    t
}

/// Resolves an int-or-percent against `total`, rounding percents up or down
/// (`intstr.GetScaledValueFromIntOrPercent`). Missing values are 0; malformed ones are `None`.
///
/// ```
/// use rollgit_devcluster::controllers::util::resolve_int_or_percent;
/// use serde_json::json;
/// assert_eq!(resolve_int_or_percent(&json!("25%"), 10, true), Some(3));
/// assert_eq!(resolve_int_or_percent(&json!("25%"), 10, false), Some(2));
/// assert_eq!(resolve_int_or_percent(&json!(4), 10, false), Some(4));
/// ```
pub fn resolve_int_or_percent(v: &Value, total: i64, round_up: bool) -> Option<i64> {
    match v {
        Value::Null => Some(0),
        Value::Number(n) => n.as_i64(),
        Value::String(s) => {
            if let Some(p) = s.strip_suffix('%') {
                let p: i64 = p.parse().ok()?;
                let scaled = p * total;
                Some(if round_up {
                    (scaled + 99).div_euclid(100)
                } else {
                    scaled.div_euclid(100)
                })
            } else {
                s.parse().ok()
            }
        }
        _ => None,
    }
}

/// `deploymentutil.ResolveFenceposts`: (maxSurge, maxUnavailable) for `replicas`, surge rounded
/// up, unavailable rounded down, and unavailable 1 when both come out 0.
pub fn resolve_fenceposts(max_surge: &Value, max_unavailable: &Value, replicas: i64) -> (i64, i64) {
    let surge = resolve_int_or_percent(max_surge, replicas, true).unwrap_or(0);
    let unavailable = resolve_int_or_percent(max_unavailable, replicas, false).unwrap_or(0);
    if surge == 0 && unavailable == 0 {
        (0, 1)
    } else {
        (surge, unavailable)
    }
}

/// `deploymentutil.MaxUnavailable`: unavailable from the fenceposts, never above replicas.
pub fn max_unavailable(max_surge: &Value, max_unavailable: &Value, replicas: i64) -> i64 {
    if replicas == 0 {
        return 0;
    }
    let (_, u) = resolve_fenceposts(max_surge, max_unavailable, replicas);
    u.min(replicas)
}

/// `deploymentutil.NewRSNewReplicas` for RollingUpdate: how many replicas the new ReplicaSet
/// may have, given the sum of all ReplicaSets' spec replicas.
///
/// ```
/// use rollgit_devcluster::controllers::util::new_rs_new_replicas;
/// // 10 replicas, maxSurge 3, 10 old + 0 new: scale the new ReplicaSet up to 3.
/// assert_eq!(new_rs_new_replicas(10, 3, 10, 0), 3);
/// ```
pub fn new_rs_new_replicas(replicas: i64, max_surge: i64, current_pods: i64, new_rs: i64) -> i64 {
    let max_total = replicas + max_surge;
    if current_pods >= max_total {
        return new_rs;
    }
    let up = (max_total - current_pods).min(replicas - new_rs).max(0);
    new_rs + up
}

/// `reconcileOldReplicaSets`: how many old replicas may be scaled down in total, given all
/// ReplicaSets' spec replicas, the minimum available, and the new ReplicaSet's unavailable pods.
pub fn max_scaled_down(all_pods: i64, min_available: i64, new_rs_unavailable: i64) -> i64 {
    all_pods - min_available - new_rs_unavailable
}

/// An old ReplicaSet as the scale-down steps see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OldRs {
    /// spec.replicas.
    pub replicas: i64,
    /// status.availableReplicas.
    pub available: i64,
}

/// `cleanupUnhealthyReplicas`: scales down unavailable replicas of old ReplicaSets (oldest
/// first) up to `max_cleanup`; returns the new replica counts and the total scaled down.
pub fn cleanup_unhealthy(old: &[OldRs], max_cleanup: i64) -> (Vec<i64>, i64) {
    let mut total = 0;
    let mut out = Vec::with_capacity(old.len());
    for rs in old {
        if total >= max_cleanup || rs.replicas == 0 || rs.replicas == rs.available {
            out.push(rs.replicas);
            continue;
        }
        let down = (max_cleanup - total).min(rs.replicas - rs.available).max(0);
        total += down;
        out.push(rs.replicas - down);
    }
    (out, total)
}

/// `scaleDownOldReplicaSetsForRollingUpdate`: scales old ReplicaSets (oldest first) down by
/// as many as are available above `min_available` (counted over all ReplicaSets).
pub fn scale_down_old(old: &[i64], all_available: i64, min_available: i64) -> (Vec<i64>, i64) {
    if all_available <= min_available {
        return (old.to_vec(), 0);
    }
    let budget = all_available - min_available;
    let mut total = 0;
    let mut out = Vec::with_capacity(old.len());
    for r in old {
        if total >= budget || *r == 0 {
            out.push(*r);
            continue;
        }
        let down = (*r).min(budget - total);
        total += down;
        out.push(r - down);
    }
    (out, total)
}

/// Pods a partition keeps on the old revision, `int` or percent of `replicas` rounded up
/// (OpenKruise), never more than `replicas`.
pub fn partition_count(partition: &Value, replicas: i64) -> i64 {
    resolve_int_or_percent(partition, replicas, true)
        .unwrap_or(0)
        .clamp(0, replicas.max(0))
}

/// Parses an RFC 3339 timestamp.
pub fn parse_time(v: &Value) -> Option<SystemTime> {
    v.as_str()
        .and_then(|s| humantime::parse_rfc3339_weak(s).ok())
}

/// A Pod's condition of `type_`.
pub fn condition<'a>(pod: &'a Value, type_: &str) -> Option<&'a Value> {
    pod["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"] == type_)
}

/// Whether a Pod is Ready.
pub fn pod_ready(pod: &Value) -> bool {
    condition(pod, "Ready").is_some_and(|c| c["status"] == "True")
}

/// Since when a Ready Pod has been Ready.
pub fn ready_since(pod: &Value) -> Option<SystemTime> {
    condition(pod, "Ready")
        .filter(|c| c["status"] == "True")
        .and_then(|c| parse_time(&c["lastTransitionTime"]))
}

/// Whether a Pod is available (Ready for at least `min_ready`), and if it is Ready but not yet
/// available, how long until it will be.
pub fn pod_available(
    pod: &Value,
    min_ready: Duration,
    now: SystemTime,
) -> (bool, Option<Duration>) {
    if !pod_ready(pod) {
        return (false, None);
    }
    if min_ready.is_zero() {
        return (true, None);
    }
    let Some(since) = ready_since(pod) else {
        return (true, None);
    };
    let at = since + min_ready;
    match at.duration_since(now) {
        Ok(d) if !d.is_zero() => (false, Some(d)),
        _ => (true, None),
    }
}

/// Live (not deleting) objects of `resource` that `owner_uid` controls, parsed.
pub fn owned(store: &Store, owner_uid: &str, group: &str, resource: &str) -> Vec<(ObjKey, Value)> {
    let mut out: Vec<(ObjKey, Value)> = store
        .dependents_of(owner_uid)
        .into_iter()
        .filter(|k| k.gr.group == group && k.gr.resource == resource)
        .filter_map(|k| {
            let e = store.get(&k)?;
            if e.meta.deleting {
                return None;
            }
            let v = e.value();
            let controlled = v["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|o| o["uid"] == owner_uid && o["controller"] == true);
            controlled.then_some((k, v))
        })
        .collect();
    out.sort_by(|a, b| {
        let ta = a.1["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default();
        let tb = b.1["metadata"]["creationTimestamp"]
            .as_str()
            .unwrap_or_default();
        ta.cmp(tb).then_with(|| a.0.name.cmp(&b.0.name))
    });
    out
}

/// A controller ownerReference to `owner`.
pub fn controller_ref(owner: &Value) -> Value {
    json!({
        "apiVersion": owner["apiVersion"],
        "kind": owner["kind"],
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": true,
        "blockOwnerDeletion": true,
    })
}

/// An i64 at a JSON location, 0 when absent.
pub fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// The time since `t`, saturating at zero.
pub fn since(t: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(t).unwrap_or_default()
}

/// Upserts a status condition, keeping lastTransitionTime when the status did not change.
/// Returns the new conditions list.
pub fn set_condition(conds: &Value, mut cond: Value) -> Value {
    let mut list: Vec<Value> = conds.as_array().cloned().unwrap_or_default();
    if let Some(old) = list.iter().find(|c| c["type"] == cond["type"])
        && old["status"] == cond["status"]
        && cond.get("lastTransitionTime").is_some()
    {
        cond["lastTransitionTime"] = old["lastTransitionTime"].clone();
    }
    list.retain(|c| c["type"] != cond["type"]);
    list.push(cond);
    Value::Array(list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_int_or_percent_table() {
        let cases = [
            ("int", json!(3), 10, true, Some(3)),
            ("percent rounded up", json!("25%"), 10, true, Some(3)),
            ("percent rounded down", json!("25%"), 10, false, Some(2)),
            ("percent exact", json!("50%"), 4, false, Some(2)),
            ("zero percent", json!("0%"), 10, true, Some(0)),
            ("hundred percent", json!("100%"), 7, false, Some(7)),
            ("string int", json!("2"), 10, false, Some(2)),
            ("null", Value::Null, 10, true, Some(0)),
            ("garbage", json!("x%"), 10, true, None),
            (
                "one percent of one rounded up",
                json!("1%"),
                1,
                true,
                Some(1),
            ),
        ];
        for (name, v, total, up, want) in cases {
            assert_eq!(resolve_int_or_percent(&v, total, up), want, "{name}");
        }
    }

    #[test]
    fn fenceposts_table() {
        let cases = [
            (
                "defaults 25%/25% of 4",
                json!("25%"),
                json!("25%"),
                4,
                (1, 1),
            ),
            (
                "defaults 25%/25% of 10",
                json!("25%"),
                json!("25%"),
                10,
                (3, 2),
            ),
            (
                "defaults 25%/25% of 1",
                json!("25%"),
                json!("25%"),
                1,
                (1, 0),
            ),
            (
                "both zero means unavailable 1",
                json!(0),
                json!(0),
                5,
                (0, 1),
            ),
            (
                "both zero percent of 3",
                json!("0%"),
                json!("10%"),
                3,
                (0, 1),
            ),
            ("ints", json!(2), json!(1), 5, (2, 1)),
        ];
        for (name, s, u, r, want) in cases {
            assert_eq!(resolve_fenceposts(&s, &u, r), want, "{name}");
        }
        assert_eq!(
            max_unavailable(&json!(0), &json!(10), 5),
            5,
            "capped at replicas"
        );
        assert_eq!(max_unavailable(&json!(1), &json!(1), 0), 0, "zero replicas");
    }

    #[test]
    fn new_rs_new_replicas_table() {
        let cases = [
            ("start of rollout", 10, 3, 10, 0, 3),
            ("at the surge limit", 10, 3, 13, 3, 3),
            ("room after old scaled down", 10, 3, 11, 3, 5),
            ("never above replicas", 5, 5, 5, 4, 5),
            ("no surge", 5, 0, 5, 0, 0),
            ("scale up fresh", 5, 2, 0, 0, 5),
        ];
        for (name, r, s, cur, new, want) in cases {
            assert_eq!(new_rs_new_replicas(r, s, cur, new), want, "{name}");
        }
    }

    #[test]
    fn cleanup_unhealthy_table() {
        let rs = |replicas, available| OldRs {
            replicas,
            available,
        };
        let cases = [
            ("nothing unhealthy", vec![rs(3, 3)], 2, (vec![3], 0)),
            (
                "cleans oldest first",
                vec![rs(3, 1), rs(2, 0)],
                3,
                (vec![1, 1], 3),
            ),
            ("skips empty", vec![rs(0, 0), rs(2, 0)], 5, (vec![0, 0], 2)),
            ("no budget", vec![rs(3, 0)], 0, (vec![3], 0)),
        ];
        for (name, old, max, want) in cases {
            assert_eq!(cleanup_unhealthy(&old, max), want, "{name}");
        }
    }

    #[test]
    fn scale_down_old_table() {
        let cases = [
            ("nothing above minimum", vec![5], 4, 4, (vec![5], 0)),
            ("scale by the surplus", vec![5], 6, 4, (vec![3], 2)),
            ("oldest first", vec![1, 5], 6, 3, (vec![0, 3], 3)),
            ("skips empty", vec![0, 2], 5, 4, (vec![0, 1], 1)),
        ];
        for (name, old, avail, min, want) in cases {
            assert_eq!(scale_down_old(&old, avail, min), want, "{name}");
        }
    }

    #[test]
    fn partition_table() {
        let cases = [
            ("int", json!(2), 5, 2),
            ("percent rounds up", json!("50%"), 5, 3),
            ("above replicas", json!(9), 5, 5),
            ("absent", Value::Null, 5, 0),
            ("negative", json!(-1), 5, 0),
            ("hundred percent", json!("100%"), 4, 4),
        ];
        for (name, p, r, want) in cases {
            assert_eq!(partition_count(&p, r), want, "{name}");
        }
    }

    #[test]
    fn template_hash_is_stable_and_safe() {
        let a = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}});
        let b = json!({"spec": {"containers": [{"image": "nginx", "name": "c"}]}, "metadata": {"labels": {"app": "web"}}});
        assert_eq!(template_hash(&a, None), template_hash(&b, None));
        assert_ne!(template_hash(&a, None), template_hash(&a, Some(1)));
        assert!(
            template_hash(&a, None)
                .bytes()
                .all(|c| SAFE_ALPHABET.contains(&c))
        );
    }
}
