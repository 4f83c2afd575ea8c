//! The Job controller: runs up to `parallelism` Pods at a time until `completions` of them
//! have succeeded (the kubelet runs a Pod with `restartPolicy: Never` or `OnFailure` to
//! completion), fails the Job past `backoffLimit` failed Pods or `activeDeadlineSeconds`, and
//! writes the status and conditions kube-controller-manager writes (`SuccessCriteriaMet` then
//! `Complete`; `FailureTarget` then `Failed`), so `kubectl wait --for=condition=complete`
//! works. A finished Job with `ttlSecondsAfterFinished` is deleted when that time has passed.
//!
//! Not simulated: the `batch.kubernetes.io/job-tracking` Pod finalizer (counts are taken from
//! the Pods that exist, never lowered), Indexed completion mode's per-index bookkeeping, pod
//! failure policies and success policies.

use super::client::ClientError;
use super::events::{self, Kind};
use super::replicaset::pod_from_template;
use super::util::{int, owned, parse_time, random_suffix};
use super::{CONTROLLER_MANAGER, Outcome, Sim, create_pod, delete_pod, live_object, write_status};
use crate::store::ObjKey;
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

const COMPONENT: &str = "job-controller";

fn condition_true(st: &Value, ty: &str) -> bool {
    st["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

fn condition(ty: &str, reason: &str, message: &str, now: &str) -> Value {
    json!({
        "type": ty,
        "status": "True",
        "lastProbeTime": now,
        "lastTransitionTime": now,
        "reason": reason,
        "message": message,
    })
}

fn phase(p: &Value) -> &str {
    p["status"]["phase"].as_str().unwrap_or("Pending")
}

fn ready(p: &Value) -> bool {
    super::util::pod_ready(p)
}

/// Reconciles one Job.
pub async fn reconcile(sim: &mut Sim, k: &ObjKey) -> Result<Outcome, ClientError> {
    let mut out = Outcome::default();
    let Some((job, uid)) = live_object(sim, k) else {
        return Ok(out);
    };
    let spec = &job["spec"];
    let old = &job["status"];
    let now_text = crate::time::now_rfc3339();
    let now = SystemTime::now();
    if condition_true(old, "Complete") || condition_true(old, "Failed") {
        return finished(sim, k, &job, &mut out).await.map(|()| out);
    }
    let pods = owned(&sim.store, &uid, "", "pods");
    let observed_succeeded = pods.iter().filter(|(_, p)| phase(p) == "Succeeded").count() as i64;
    let observed_failed = pods.iter().filter(|(_, p)| phase(p) == "Failed").count() as i64;
    let succeeded = observed_succeeded.max(int(&old["succeeded"]));
    let failed = observed_failed.max(int(&old["failed"]));
    let mut active: Vec<&(ObjKey, Value)> = pods
        .iter()
        .filter(|(_, p)| !matches!(phase(p), "Succeeded" | "Failed"))
        .collect();
    let completions = spec["completions"].as_i64();
    let parallelism = spec["parallelism"].as_i64().unwrap_or(1).max(0);
    let backoff_limit = spec["backoffLimit"].as_i64().unwrap_or(6);
    let suspended = spec["suspend"].as_bool() == Some(true);
    let start = old["startTime"]
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| now_text.clone());
    let mut conditions: Vec<Value> = old["conditions"].as_array().cloned().unwrap_or_default();
    let mut completion_time = None;
    let deadline_passed = spec["activeDeadlineSeconds"].as_i64().is_some_and(|d| {
        parse_time(&json!(start)).is_some_and(|s| {
            now.duration_since(s).unwrap_or_default() >= Duration::from_secs(d.max(0) as u64)
        })
    });
    let done = match completions {
        Some(c) => succeeded >= c,
        None => succeeded > 0 && active.is_empty(),
    };
    // With `restartPolicy: OnFailure` the kubelet restarts failed containers in place: the
    // restarts count against the backoff limit.
    let restarts: i64 = active
        .iter()
        .flat_map(|(_, p)| {
            p["status"]["containerStatuses"]
                .as_array()
                .into_iter()
                .flatten()
        })
        .map(|c| int(&c["restartCount"]))
        .sum();
    let on_failure = spec["template"]["spec"]["restartPolicy"] == "OnFailure";
    let failure = if failed > backoff_limit || (on_failure && failed + restarts > backoff_limit) {
        Some((
            "BackoffLimitExceeded",
            "Job has reached the specified backoff limit",
        ))
    } else if deadline_passed {
        Some((
            "DeadlineExceeded",
            "Job was active longer than specified deadline",
        ))
    } else {
        None
    };
    if let Some((reason, message)) = failure {
        for (pk, _) in &active {
            delete_pod(
                sim,
                &job,
                &pk.namespace,
                &pk.name,
                &format!("Deleted pod: {}", pk.name),
                COMPONENT,
            )
            .await?;
        }
        active.clear();
        conditions.push(condition("FailureTarget", reason, message, &now_text));
        conditions.push(condition("Failed", reason, message, &now_text));
        events::record(
            &sim.client,
            &job,
            Kind::Warning,
            reason,
            message,
            COMPONENT,
            None,
        )
        .await;
    } else if done {
        let message = "Reached expected number of succeeded pods";
        conditions.push(condition(
            "SuccessCriteriaMet",
            "CompletionsReached",
            message,
            &now_text,
        ));
        conditions.push(condition(
            "Complete",
            "CompletionsReached",
            message,
            &now_text,
        ));
        completion_time = Some(now_text.clone());
        events::record(
            &sim.client,
            &job,
            Kind::Normal,
            "Completed",
            "Job completed",
            COMPONENT,
            None,
        )
        .await;
    } else if suspended {
        for (pk, _) in &active {
            delete_pod(
                sim,
                &job,
                &pk.namespace,
                &pk.name,
                &format!("Deleted pod: {}", pk.name),
                COMPONENT,
            )
            .await?;
        }
        active.clear();
    } else {
        let want = match completions {
            Some(c) => parallelism.min(c - succeeded),
            None if succeeded > 0 => 0,
            None => parallelism,
        }
        .max(0);
        let have = active.len() as i64;
        for _ in have..want {
            let name = format!("{}-{}", k.name, random_suffix());
            let pod = pod_from_template(
                sim,
                &job,
                &spec["template"],
                &name,
                Some(&format!("{}-", k.name)),
                &[],
            );
            match create_pod(
                sim,
                &job,
                &k.namespace,
                &pod,
                &format!("Created pod: {name}"),
                COMPONENT,
            )
            .await
            {
                Ok(true) => {}
                Ok(false) => out.retry = true,
                Err(e) => {
                    events::record(
                        &sim.client,
                        &job,
                        Kind::Warning,
                        "FailedCreate",
                        &format!("Error creating: {e}"),
                        COMPONENT,
                        None,
                    )
                    .await;
                    return Err(e);
                }
            }
        }
        if let Some(d) = spec["activeDeadlineSeconds"].as_i64()
            && let Some(s) = parse_time(&json!(start))
        {
            let at = s + Duration::from_secs(d.max(0) as u64);
            let wait = at.duration_since(now).unwrap_or_default();
            out.after(wait + Duration::from_millis(50));
        }
    }
    // What the status counts after this pass (created Pods are not seen yet: the next pass,
    // which their creation triggers, counts them).
    let active_count = active.len() as i64;
    let ready_count = active.iter().filter(|(_, p)| ready(p)).count() as i64;
    let mut status = json!({"startTime": start, "ready": ready_count, "terminating": 0, "uncountedTerminatedPods": {}});
    if active_count > 0 {
        status["active"] = json!(active_count);
    }
    if succeeded > 0 {
        status["succeeded"] = json!(succeeded);
    }
    if failed > 0 {
        status["failed"] = json!(failed);
    }
    if !conditions.is_empty() {
        status["conditions"] = Value::Array(conditions);
    }
    if let Some(t) = completion_time {
        status["completionTime"] = json!(t);
    }
    write_status(sim, k, &job, status).await?;
    Ok(out)
}

/// A finished Job: deleted once `ttlSecondsAfterFinished` has passed.
async fn finished(
    sim: &Sim,
    k: &ObjKey,
    job: &Value,
    out: &mut Outcome,
) -> Result<(), ClientError> {
    let Some(ttl) = job["spec"]["ttlSecondsAfterFinished"].as_i64() else {
        return Ok(());
    };
    let st = &job["status"];
    let end = st["completionTime"]
        .as_str()
        .or_else(|| {
            st["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Failed")
                .and_then(|c| c["lastTransitionTime"].as_str())
        })
        .and_then(|t| parse_time(&json!(t)));
    let Some(end) = end else {
        return Ok(());
    };
    let at = end + Duration::from_secs(ttl.max(0) as u64);
    match at.duration_since(SystemTime::now()) {
        Ok(wait) if !wait.is_zero() => {
            out.after(wait + Duration::from_millis(50));
            Ok(())
        }
        _ => {
            sim.client
                .delete(&k.gr, &k.namespace, &k.name, CONTROLLER_MANAGER)
                .await
        }
    }
}
