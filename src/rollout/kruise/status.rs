//! A Kruise Rollout's `status` in Kruise's format, and the pure core's [`RunState`], converted
//! both ways.
//!
//! Kruise's fields: `observedGeneration`, `phase`, `message`, `currentStepIndex` and
//! `currentStepState` (v1beta1's printer columns), `conditions` (`Progressing`, `Succeeded`),
//! `canaryStatus` (`stableRevision`, `canaryRevision`, `podTemplateHash`, `canaryReplicas`,
//! `canaryReadyReplicas`, `currentStepIndex`, `nextStepIndex`, `currentStepState` (v1alpha1's
//! printer columns, and what `kubectl-kruise rollout approve` patches), `lastUpdateTime`,
//! `finalisingStep`, `rolloutHash`). rollgit's own, under `status.rollgit`: the stable and
//! target commits, a failure, and the end of a grace period. `status.record` is the record
//! stage's (the revert commit of a failure). A status that does not describe a state is an
//! error naming the field, never a default.

use crate::rollout::status::rfc3339;
use k8s_openapi::jiff::Timestamp;
use rollgit_core::kruise::{CanaryStatus, StepState};
use rollgit_core::kruise_run::{CanaryRun, Cond, Failure, FinalisingStep, Phase, RunState};
use serde_json::{Map, Value, json};

fn time(v: &Value, field: &str) -> Result<Option<i64>, String> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => s
            .parse::<Timestamp>()
            .map(|t| Some(t.as_second()))
            .map_err(|e| format!("{field}: {s:?} is not an RFC 3339 time: {e}")),
        other => Err(format!("{field}: must be an RFC 3339 time, got {other}")),
    }
}

fn string(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn opt_string(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

fn cond_json(type_: &str, c: &Cond) -> Value {
    json!({
        "type": type_,
        "status": if c.status { "True" } else { "False" },
        "reason": c.reason,
        "message": c.message,
        "lastUpdateTime": rfc3339(c.last_update),
        "lastTransitionTime": rfc3339(c.last_transition),
    })
}

fn cond_of(v: &Value, i: usize) -> Result<Cond, String> {
    let status = match v["status"].as_str() {
        Some("True") => true,
        Some("False") | Some("Unknown") => false,
        other => {
            return Err(format!(
                "conditions[{i}].status: {other:?} is not True or False"
            ));
        }
    };
    Ok(Cond {
        status,
        reason: string(&v["reason"]),
        message: string(&v["message"]),
        last_update: time(
            &v["lastUpdateTime"],
            &format!("conditions[{i}].lastUpdateTime"),
        )?
        .unwrap_or(0),
        last_transition: time(
            &v["lastTransitionTime"],
            &format!("conditions[{i}].lastTransitionTime"),
        )?
        .unwrap_or(0),
    })
}

/// The status to write for `s`, describing the spec at `generation` and the workload at
/// `workload_generation`. `record` (the record stage's) is left out.
pub fn status_of(s: &RunState, generation: i64, workload_generation: i64) -> Value {
    let mut out = Map::new();
    out.insert("observedGeneration".into(), json!(generation));
    out.insert(
        "phase".into(),
        json!(s.phase.map(Phase::as_str).unwrap_or("Initial")),
    );
    out.insert("message".into(), json!(s.message));
    let mut conditions = Vec::new();
    if let Some(c) = &s.progressing {
        conditions.push(cond_json("Progressing", c));
    }
    if let Some(c) = &s.succeeded {
        conditions.push(cond_json("Succeeded", c));
    }
    out.insert("conditions".into(), Value::Array(conditions));
    match &s.canary {
        Some(c) => {
            out.insert("currentStepIndex".into(), json!(c.step.current_step_index));
            out.insert("currentStepState".into(), json!(c.step.state.as_str()));
            out.insert(
                "canaryStatus".into(),
                json!({
                    "observedWorkloadGeneration": workload_generation,
                    "rolloutHash": c.rollout_hash,
                    "stableRevision": c.stable_revision,
                    "canaryRevision": c.canary_revision,
                    "podTemplateHash": c.pod_template_hash,
                    "canaryReplicas": c.canary_replicas,
                    "canaryReadyReplicas": c.canary_ready_replicas,
                    "currentStepIndex": c.step.current_step_index,
                    "nextStepIndex": c.step.next_step_index,
                    "currentStepState": c.step.state.as_str(),
                    "message": c.message,
                    "lastUpdateTime": rfc3339(c.step.last_update_time),
                    "finalisingStep": c.finalising_step.map(FinalisingStep::as_str).unwrap_or(""),
                }),
            );
        }
        None => {
            out.insert("currentStepIndex".into(), json!(0));
            out.insert("currentStepState".into(), json!(""));
            out.insert("canaryStatus".into(), Value::Null);
        }
    }
    out.insert(
        "rollgit".into(),
        json!({
            "stableCommit": s.stable_commit,
            "targetCommit": s.target_commit,
            "failure": s.failure.as_ref().map(|f| json!({"revision": f.revision, "reason": f.reason})),
            "waitUntil": s.wait_until.map(rfc3339),
        }),
    );
    Value::Object(out)
}

/// The state a recorded status describes (an absent or empty status is the start).
pub fn state_of(status: &Value) -> Result<RunState, String> {
    if status.is_null() {
        return Ok(RunState::default());
    }
    let phase = match status["phase"].as_str() {
        None | Some("") => None,
        Some(p) => Some(Phase::parse(p).ok_or_else(|| format!("phase: unknown phase {p:?}"))?),
    };
    let mut s = RunState {
        phase,
        message: string(&status["message"]),
        ..RunState::default()
    };
    for (i, c) in status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        match c["type"].as_str() {
            Some("Progressing") => s.progressing = Some(cond_of(c, i)?),
            Some("Succeeded") => s.succeeded = Some(cond_of(c, i)?),
            _ => {}
        }
    }
    let c = &status["canaryStatus"];
    if c.is_object() {
        let state = match c["currentStepState"].as_str() {
            Some(st) => StepState::parse(st)
                .ok_or_else(|| format!("canaryStatus.currentStepState: unknown state {st:?}"))?,
            None => return Err("canaryStatus.currentStepState: is required".into()),
        };
        let finalising_step = match c["finalisingStep"].as_str() {
            None | Some("") => None,
            Some(f) => Some(
                FinalisingStep::parse(f)
                    .ok_or_else(|| format!("canaryStatus.finalisingStep: unknown step {f:?}"))?,
            ),
        };
        s.canary = Some(CanaryRun {
            rollout_hash: string(&c["rolloutHash"]),
            stable_revision: string(&c["stableRevision"]),
            canary_revision: string(&c["canaryRevision"]),
            pod_template_hash: string(&c["podTemplateHash"]),
            canary_replicas: c["canaryReplicas"].as_i64().unwrap_or(0),
            canary_ready_replicas: c["canaryReadyReplicas"].as_i64().unwrap_or(0),
            step: CanaryStatus {
                current_step_index: c["currentStepIndex"].as_i64().unwrap_or(1),
                next_step_index: c["nextStepIndex"].as_i64().unwrap_or(-1),
                state,
                last_update_time: time(&c["lastUpdateTime"], "canaryStatus.lastUpdateTime")?
                    .unwrap_or(0),
            },
            message: string(&c["message"]),
            finalising_step,
        });
    } else if !c.is_null() {
        return Err("canaryStatus: must be an object".into());
    }
    let r = &status["rollgit"];
    s.stable_commit = opt_string(&r["stableCommit"]);
    s.target_commit = opt_string(&r["targetCommit"]);
    s.failure = r["failure"].as_object().map(|f| Failure {
        revision: f
            .get("revision")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into(),
        reason: f
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .into(),
    });
    s.wait_until = time(&r["waitUntil"], "rollgit.waitUntil")?;
    Ok(s)
}

/// The part of a live status [`status_of`] writes (everything but `record`), to compare.
pub fn comparable(status: &Value) -> Value {
    let mut v = status.clone();
    if let Some(m) = v.as_object_mut() {
        m.remove("record");
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn progressing() -> RunState {
        RunState {
            phase: Some(Phase::Progressing),
            message:
                "Rollout is in step(1/3), and you need manually confirm to enter the next step"
                    .into(),
            progressing: Some(Cond {
                status: true,
                reason: "InRolling".into(),
                message: "m".into(),
                last_update: 1_700_000_000,
                last_transition: 1_699_999_000,
            }),
            succeeded: None,
            canary: Some(CanaryRun {
                rollout_hash: "h".into(),
                stable_revision: "6d5b4".into(),
                canary_revision: "abc".into(),
                pod_template_hash: "7f8e9".into(),
                canary_replicas: 1,
                canary_ready_replicas: 1,
                step: CanaryStatus {
                    current_step_index: 1,
                    next_step_index: 2,
                    state: StepState::StepPaused,
                    last_update_time: 1_700_000_000,
                },
                message: String::new(),
                finalising_step: Some(FinalisingStep::RouteTrafficToStable),
            }),
            stable_commit: Some("a".repeat(40)),
            target_commit: Some("b".repeat(40)),
            failure: Some(Failure {
                revision: "abc".into(),
                reason: "why".into(),
            }),
            wait_until: Some(1_700_000_003),
        }
    }

    #[test]
    fn a_state_survives_the_round_trip_through_the_cluster() {
        for s in [RunState::default(), progressing()] {
            let v = status_of(&s, 3, 7);
            let back = state_of(&v).expect("parses");
            let mut want = s.clone();
            if want.phase.is_none() {
                want.phase = Some(Phase::Initial);
            }
            assert_eq!(back, want);
        }
    }

    #[test]
    fn the_wire_is_kruises() {
        let v = status_of(&progressing(), 3, 7);
        assert_eq!(v["observedGeneration"], 3);
        assert_eq!(v["phase"], "Progressing");
        assert_eq!(v["currentStepIndex"], 1);
        assert_eq!(v["currentStepState"], "StepPaused");
        assert_eq!(v["canaryStatus"]["currentStepState"], "StepPaused");
        assert_eq!(v["canaryStatus"]["observedWorkloadGeneration"], 7);
        assert_eq!(v["canaryStatus"]["lastUpdateTime"], "2023-11-14T22:13:20Z");
        assert_eq!(v["conditions"][0]["type"], "Progressing");
        assert_eq!(v["conditions"][0]["status"], "True");
        assert_eq!(v["rollgit"]["waitUntil"], "2023-11-14T22:13:23Z");
    }

    #[test]
    fn approve_is_read_from_the_canary_status() {
        let mut v = status_of(&progressing(), 3, 7);
        v["canaryStatus"]["currentStepState"] = json!("StepReady");
        let s = state_of(&v).expect("parses");
        assert_eq!(s.canary.map(|c| c.step.state), Some(StepState::StepReady));
    }

    #[test]
    fn a_status_that_describes_no_state_is_an_error_naming_the_field() {
        let bad = |f: fn(&mut Value)| {
            let mut v = status_of(&progressing(), 1, 1);
            f(&mut v);
            state_of(&v).expect_err("must not parse")
        };
        assert!(bad(|v| v["phase"] = json!("Sailing")).starts_with("phase:"));
        assert!(
            bad(|v| v["canaryStatus"]["currentStepState"] = json!("Nap"))
                .starts_with("canaryStatus.currentStepState:")
        );
        assert!(
            bad(|v| v["canaryStatus"]["lastUpdateTime"] = json!("soon"))
                .starts_with("canaryStatus.lastUpdateTime:")
        );
        assert!(
            bad(|v| v["conditions"][0]["status"] = json!("Maybe"))
                .starts_with("conditions[0].status")
        );
    }
}
