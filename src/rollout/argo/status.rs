//! An Argo Rollout's `status` in Argo's format and the core's [`Status`], converted both ways.
//!
//! The fields are Argo's (`pkg/apis/rollouts/v1alpha1/types.go` `RolloutStatus`), written as
//! Go's `encoding/json` writes them: zero values of `omitempty` fields are left out
//! (`replicas: 0`, `abort: false`), `currentStepIndex` is there when the canary has steps (even
//! at 0), `observedGeneration` is a string, `canary` and `blueGreen` are always objects, times
//! are RFC 3339. Fields rollgit does not model (`restartedAt`, `collisionCount`, ...) are kept as
//! they are. A status that does not describe a state (an unknown phase, a bad time) is an error
//! naming the field, never a default.

use k8s_openapi::jiff::Timestamp;
use rollgit_core::argo::PauseCondition;
use rollgit_core::argo_exec::{
    Condition, Phase, Status, WeightDestination, Weights, parse_pause_reason, pause_reason_str,
};
use serde_json::{Map, Value, json};

/// RFC 3339 in UTC of Unix seconds.
pub fn rfc3339(unix: i64) -> String {
    crate::rollout::status::rfc3339(unix)
}

fn parse_time(field: &str, v: &Value) -> Result<i64, String> {
    let s = v
        .as_str()
        .ok_or_else(|| format!("{field}: {v} is not an RFC 3339 time"))?;
    s.parse::<Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| format!("{field}: {s:?} is not an RFC 3339 time: {e}"))
}

fn int(field: &str, v: &Value) -> Result<i64, String> {
    match v {
        Value::Null => Ok(0),
        v => v
            .as_i64()
            .ok_or_else(|| format!("{field}: {v} is not an integer")),
    }
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn destination(v: &Value) -> Result<WeightDestination, String> {
    Ok(WeightDestination {
        weight: int("canary.weights.weight", &v["weight"])?,
        pod_template_hash: string(&v["podTemplateHash"]),
        service_name: string(&v["serviceName"]),
    })
}

/// The core's view of a live `status` (`Value::Null`: nothing recorded yet).
pub fn status_of(v: &Value) -> Result<Status, String> {
    if v.is_null() {
        return Ok(Status::default());
    }
    let mut pause_conditions = Vec::new();
    for (i, c) in v["pauseConditions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let reason = c["reason"].as_str().unwrap_or_default();
        pause_conditions.push(PauseCondition {
            reason: parse_pause_reason(reason)
                .ok_or_else(|| format!("pauseConditions[{i}].reason: unknown reason {reason:?}"))?,
            start_time: parse_time(&format!("pauseConditions[{i}].startTime"), &c["startTime"])?,
        });
    }
    let mut conditions = Vec::new();
    for (i, c) in v["conditions"].as_array().into_iter().flatten().enumerate() {
        let at = |k: &str| -> Result<i64, String> {
            match &c[k] {
                Value::Null => Ok(0),
                t => parse_time(&format!("conditions[{i}].{k}"), t),
            }
        };
        conditions.push(Condition {
            kind: string(&c["type"]),
            status: string(&c["status"]),
            reason: string(&c["reason"]),
            message: string(&c["message"]),
            last_update: at("lastUpdateTime")?,
            last_transition: at("lastTransitionTime")?,
        });
    }
    let weights = match &v["canary"]["weights"] {
        Value::Null => None,
        w => Some(Weights {
            canary: destination(&w["canary"])?,
            stable: destination(&w["stable"])?,
        }),
    };
    let phase = match v["phase"].as_str() {
        None | Some("") => Phase::Progressing,
        Some(p) => Phase::parse(p).ok_or_else(|| format!("phase: unknown phase {p:?}"))?,
    };
    let observed_generation = match &v["observedGeneration"] {
        Value::Null => None,
        Value::String(s) => s.parse().ok(),
        n => n.as_i64(),
    };
    let current_step_index = match &v["currentStepIndex"] {
        Value::Null => None,
        n => Some(
            n.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("currentStepIndex: {n} is not an index"))?,
        ),
    };
    Ok(Status {
        abort: v["abort"].as_bool().unwrap_or(false),
        aborted_at: match &v["abortedAt"] {
            Value::Null => None,
            t => Some(parse_time("abortedAt", t)?),
        },
        pause_conditions,
        controller_pause: v["controllerPause"].as_bool().unwrap_or(false),
        current_pod_hash: string(&v["currentPodHash"]),
        current_step_hash: string(&v["currentStepHash"]),
        current_step_index,
        stable_rs: string(&v["stableRS"]),
        promote_full: v["promoteFull"].as_bool().unwrap_or(false),
        replicas: int("replicas", &v["replicas"])?,
        updated_replicas: int("updatedReplicas", &v["updatedReplicas"])?,
        ready_replicas: int("readyReplicas", &v["readyReplicas"])?,
        available_replicas: int("availableReplicas", &v["availableReplicas"])?,
        hpa_replicas: int("HPAReplicas", &v["HPAReplicas"])?,
        weights,
        conditions,
        phase,
        message: string(&v["message"]),
        observed_generation,
    })
}

fn put(m: &mut Map<String, Value>, k: &str, v: Value) {
    let empty = match &v {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_i64() == Some(0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(_) => false,
    };
    if empty {
        m.remove(k);
    } else {
        m.insert(k.into(), v);
    }
}

fn destination_json(d: &WeightDestination) -> Value {
    let mut m = Map::new();
    m.insert("weight".into(), json!(d.weight));
    put(&mut m, "serviceName", json!(d.service_name));
    put(&mut m, "podTemplateHash", json!(d.pod_template_hash));
    Value::Object(m)
}

/// What the status records besides the core's state.
#[derive(Debug, Clone, Default)]
pub struct Extras {
    /// `selector`: the Rollout's label selector as a string (`app=nginx`).
    pub selector: String,
    /// `workloadObservedGeneration`: the `workloadRef` Deployment's generation.
    pub workload_generation: Option<i64>,
}

/// The `status` to write: `live` (kept for fields rollgit does not model) with the state's.
pub fn status_json(live: &Value, s: &Status, extras: &Extras) -> Value {
    let mut m = live.as_object().cloned().unwrap_or_default();
    put(&mut m, "abort", json!(s.abort));
    put(
        &mut m,
        "abortedAt",
        s.aborted_at.map_or(Value::Null, |t| json!(rfc3339(t))),
    );
    put(
        &mut m,
        "pauseConditions",
        Value::Array(
            s.pause_conditions
                .iter()
                .map(|c| json!({"reason": pause_reason_str(c.reason), "startTime": rfc3339(c.start_time)}))
                .collect(),
        ),
    );
    put(&mut m, "controllerPause", json!(s.controller_pause));
    put(&mut m, "currentPodHash", json!(s.current_pod_hash));
    put(&mut m, "currentStepHash", json!(s.current_step_hash));
    match s.current_step_index {
        Some(i) => {
            m.insert("currentStepIndex".into(), json!(i));
        }
        None => {
            m.remove("currentStepIndex");
        }
    }
    put(&mut m, "stableRS", json!(s.stable_rs));
    put(&mut m, "promoteFull", json!(s.promote_full));
    put(&mut m, "replicas", json!(s.replicas));
    put(&mut m, "updatedReplicas", json!(s.updated_replicas));
    put(&mut m, "readyReplicas", json!(s.ready_replicas));
    put(&mut m, "availableReplicas", json!(s.available_replicas));
    put(&mut m, "HPAReplicas", json!(s.hpa_replicas));
    put(&mut m, "selector", json!(extras.selector));
    put(
        &mut m,
        "observedGeneration",
        s.observed_generation
            .map_or(Value::Null, |g| json!(g.to_string())),
    );
    put(
        &mut m,
        "workloadObservedGeneration",
        extras
            .workload_generation
            .map_or(Value::Null, |g| json!(g.to_string())),
    );
    put(&mut m, "phase", json!(s.phase.as_str()));
    put(&mut m, "message", json!(s.message));
    let conditions: Vec<Value> = s
        .conditions
        .iter()
        .map(|c| {
            json!({
                "type": c.kind,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastUpdateTime": rfc3339(c.last_update),
                "lastTransitionTime": rfc3339(c.last_transition),
            })
        })
        .collect();
    put(&mut m, "conditions", Value::Array(conditions));
    let mut canary = m
        .get("canary")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    match &s.weights {
        Some(w) => {
            canary.insert(
                "weights".into(),
                json!({"canary": destination_json(&w.canary), "stable": destination_json(&w.stable)}),
            );
        }
        None => {
            canary.remove("weights");
        }
    }
    m.insert("canary".into(), Value::Object(canary));
    if !m.get("blueGreen").is_some_and(Value::is_object) {
        m.insert("blueGreen".into(), json!({}));
    }
    Value::Object(m)
}

/// The JSON merge patch (RFC 7386) that turns `old` into `new` (`None` when equal).
pub fn merge_patch(old: &Value, new: &Value) -> Option<Value> {
    if old == new {
        return None;
    }
    match (old, new) {
        (Value::Object(o), Value::Object(n)) => {
            let mut patch = Map::new();
            for (k, v) in n {
                match o.get(k) {
                    Some(ov) => {
                        if let Some(p) = merge_patch(ov, v) {
                            patch.insert(k.clone(), p);
                        }
                    }
                    None => {
                        patch.insert(k.clone(), v.clone());
                    }
                }
            }
            for k in o.keys() {
                if !n.contains_key(k) {
                    patch.insert(k.clone(), Value::Null);
                }
            }
            (!patch.is_empty()).then_some(Value::Object(patch))
        }
        _ => Some(new.clone()),
    }
}

/// The label selector of a Rollout as a string, as `metav1.FormatLabelSelector` writes it
/// (`matchLabels` sorted, then `matchExpressions`).
pub fn selector_string(selector: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(m) = selector["matchLabels"].as_object() {
        let mut kv: Vec<(&String, &Value)> = m.iter().collect();
        kv.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in kv {
            parts.push(format!("{k}={}", v.as_str().unwrap_or_default()));
        }
    }
    for e in selector["matchExpressions"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let key = e["key"].as_str().unwrap_or_default();
        let values: Vec<&str> = e["values"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        parts.push(match e["operator"].as_str().unwrap_or_default() {
            "In" => format!("{key} in ({})", values.join(",")),
            "NotIn" => format!("{key} notin ({})", values.join(",")),
            "Exists" => key.to_string(),
            "DoesNotExist" => format!("!{key}"),
            other => format!("{key} {other}"),
        });
    }
    parts.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollgit_core::argo::PauseReason;

    fn paused() -> Status {
        Status {
            current_pod_hash: "abc".into(),
            current_step_hash: "def".into(),
            current_step_index: Some(1),
            stable_rs: "xyz".into(),
            pause_conditions: vec![PauseCondition {
                reason: PauseReason::CanaryPauseStep,
                start_time: 1_700_000_000,
            }],
            controller_pause: true,
            replicas: 11,
            updated_replicas: 1,
            ready_replicas: 11,
            available_replicas: 11,
            hpa_replicas: 11,
            conditions: vec![Condition {
                kind: "Paused".into(),
                status: "True".into(),
                reason: "RolloutPaused".into(),
                message: "Rollout is paused".into(),
                last_update: 1_700_000_000,
                last_transition: 1_700_000_000,
            }],
            phase: Phase::Paused,
            message: "CanaryPauseStep".into(),
            observed_generation: Some(2),
            ..Status::default()
        }
    }

    #[test]
    fn the_status_is_written_in_argos_format_and_read_back() {
        let extras = Extras {
            selector: "app=nginx".into(),
            workload_generation: None,
        };
        let v = status_json(&Value::Null, &paused(), &extras);
        assert_eq!(v["observedGeneration"], "2", "a string, as Argo writes it");
        assert_eq!(v["currentStepIndex"], 1);
        assert_eq!(v["pauseConditions"][0]["reason"], "CanaryPauseStep");
        assert_eq!(v["pauseConditions"][0]["startTime"], "2023-11-14T22:13:20Z");
        assert_eq!(v["stableRS"], "xyz");
        assert_eq!(v["HPAReplicas"], 11);
        assert_eq!(v["selector"], "app=nginx");
        assert_eq!(v["canary"], json!({}));
        assert_eq!(v["blueGreen"], json!({}));
        assert!(
            v.get("abort").is_none(),
            "false is left out, as omitempty does"
        );
        assert!(v.get("promoteFull").is_none());
        assert_eq!(status_of(&v), Ok(paused()));
    }

    #[test]
    fn unmodelled_fields_are_kept_and_removed_ones_become_null_in_the_patch() {
        let live = json!({"restartedAt": "2024-01-01T00:00:00Z", "abort": true, "replicas": 3});
        let new = status_json(&live, &paused(), &Extras::default());
        assert_eq!(new["restartedAt"], "2024-01-01T00:00:00Z");
        let p = merge_patch(&live, &new).expect("a change");
        assert_eq!(p["abort"], Value::Null);
        assert_eq!(p["replicas"], 11);
        assert!(p.get("restartedAt").is_none());
        assert_eq!(merge_patch(&new, &new), None);
    }

    #[test]
    fn a_status_that_describes_no_state_is_an_error_naming_the_field() {
        let bad = |v: Value| status_of(&v).expect_err("must not parse");
        assert!(bad(json!({"phase": "Sailing"})).starts_with("phase:"));
        assert!(
            bad(json!({"pauseConditions": [{"reason": "Lunch", "startTime": "2024-01-01T00:00:00Z"}]}))
                .starts_with("pauseConditions[0].reason")
        );
        assert!(bad(json!({"abortedAt": "yesterday"})).starts_with("abortedAt:"));
        assert!(bad(json!({"currentStepIndex": -1})).starts_with("currentStepIndex:"));
    }

    #[test]
    fn selectors_are_formatted_as_kubernetes_formats_them() {
        let s = json!({"matchLabels": {"b": "2", "a": "1"}, "matchExpressions": [{"key": "t", "operator": "In", "values": ["x", "y"]}]});
        assert_eq!(selector_string(&s), "a=1,b=2,t in (x,y)");
    }
}
