//! OpenKruise Rollouts in `rollgit get rollouts` (Kruise's columns: NAME STATUS CANARY_STEP
//! CANARY_STATE MESSAGE AGE) and in `rollgit rollout status APP` (the steps, with their
//! replicas, traffic and pause, and where the release stands). The rendering is pure
//! ([`kruise_table`], [`kruise_view`], [`kruise_verdict`]); the steps are read with rollgit's
//! own parser and their replicas computed by `rollgit-core`.

use super::rollout_status::{Verdict, bar};
use super::table::{age, format_table};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams};
use rollgit::k8s::kruise::rollout_resource;
use rollgit_core::kruise::calculate_batch_replicas;
use rollgit_core::kruise_run::step_weight;
use serde_json::Value;

/// Lists Kruise Rollouts in `namespace` (or all); none when the cluster does not serve them.
pub async fn list_kruise(
    client: &kube::Client,
    namespace: &str,
    all_namespaces: bool,
    selector: Option<&str>,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let ar = rollout_resource();
    let api: Api<DynamicObject> = if all_namespaces {
        Api::all_with(client.clone(), &ar)
    } else {
        Api::namespaced_with(client.clone(), namespace, &ar)
    };
    let mut lp = ListParams::default();
    if let Some(s) = selector {
        lp = lp.labels(s);
    }
    match api.list(&lp).await {
        Ok(l) => Ok(l.items),
        Err(kube::Error::Api(e)) if e.code == 404 => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// The header of Kruise's table.
pub const KRUISE_HEADER: [&str; 6] = [
    "NAME",
    "STATUS",
    "CANARY_STEP",
    "CANARY_STATE",
    "MESSAGE",
    "AGE",
];

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Kruise Rollouts as `kubectl get rollouts.rollouts.kruise.io` lays them out (v1beta1's
/// printer columns; `-A` adds NAMESPACE).
pub fn kruise_table(items: &[DynamicObject], all_namespaces: bool, now: Timestamp) -> String {
    let mut header: Vec<String> = KRUISE_HEADER.iter().map(|s| s.to_string()).collect();
    if all_namespaces {
        header.insert(0, "NAMESPACE".into());
    }
    let mut sorted: Vec<&DynamicObject> = items.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let mut rows = vec![header];
    for o in sorted {
        let s = &o.data["status"];
        let mut row = vec![
            o.metadata.name.clone().unwrap_or_default(),
            cell(&s["phase"]),
            cell(&s["currentStepIndex"]),
            cell(&s["currentStepState"]),
            cell(&s["message"]),
            age(o.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        ];
        if all_namespaces {
            row.insert(0, o.metadata.namespace.clone().unwrap_or_default());
        }
        rows.push(row);
    }
    format_table(&rows)
}

/// Where a Kruise Rollout stands: succeeded when Healthy for its latest spec, failed when a
/// failed step was rolled back, unfinished otherwise.
pub fn kruise_verdict(o: &Value) -> Verdict {
    let s = &o["status"];
    let generation = o["metadata"]["generation"].as_i64().unwrap_or(0);
    if s["observedGeneration"].as_i64().unwrap_or(-1) < generation {
        return Verdict::Unfinished(
            "waiting for the rollout controller to observe the latest spec".into(),
        );
    }
    let rolled_back = s["conditions"].as_array().into_iter().flatten().find(|c| {
        c["type"] == "Succeeded" && c["status"] == "False" && c["reason"] == "RolledBack"
    });
    if let Some(c) = rolled_back {
        return Verdict::Failed(format!(
            "failed (RolledBack): {}",
            c["message"].as_str().unwrap_or_default()
        ));
    }
    match s["phase"].as_str() {
        Some("Healthy") => Verdict::Succeeded,
        Some(p) => Verdict::Unfinished(format!(
            "{p}, step {} {}",
            cell(&s["currentStepIndex"]),
            cell(&s["currentStepState"])
        )),
        None => Verdict::Unfinished("waiting for the rollout controller to record a status".into()),
    }
}

/// `rollgit rollout status`'s lines for a Kruise Rollout: a header, one line per step, and
/// the message. `replicas` is the workload's (to size the steps).
pub fn kruise_view(o: &Value, replicas: Option<i64>) -> Vec<String> {
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let s = &o["status"];
    let phase = s["phase"].as_str().unwrap_or("Initial");
    let canary = &s["canaryStatus"];
    let state = canary["currentStepState"].as_str().unwrap_or("");
    let current = canary["currentStepIndex"].as_i64().unwrap_or(0);
    let ready = canary["canaryReadyReplicas"].as_i64().unwrap_or(0);
    let parsed = rollgit_render::parse_kruise_rollout_value(name, o);
    let mut out = Vec::new();
    let Ok(r) = parsed else {
        out.push(format!("{name}: {phase} (its spec does not parse)"));
        return out;
    };
    let r_text = replicas.map_or("? replicas".to_string(), |n| {
        if n == 1 {
            "1 replica".into()
        } else {
            format!("{n} replicas")
        }
    });
    let style = match r.style {
        rollgit_core::kruise::RollingStyle::Canary => "canary style",
        _ => "partition style",
    };
    let state_text = if state.is_empty() {
        phase.to_string()
    } else {
        format!("{phase} ({state})")
    };
    out.push(format!(
        "{name}: {} {}, {r_text}, {style}, {state_text}",
        r.workload.kind,
        r.workload.name.as_deref().unwrap_or("-")
    ));
    let n = r.steps.len();
    let progressing = phase == "Progressing";
    for (i, step) in r.steps.iter().enumerate() {
        let index = i as i64 + 1;
        let goal = match (replicas, &step.replicas) {
            (Some(rep), Some(v)) => calculate_batch_replicas(v, rep),
            _ => 0,
        };
        let traffic = match (step_weight(step), r.matches.get(i).and_then(|m| m.first())) {
            (_, Some(m)) if !m.headers.is_empty() => {
                let h = &m.headers[0];
                let op = if h.regex { "~" } else { "=" };
                format!("header {}{op}{}", h.name, h.value)
            }
            (Some(w), _) => format!("weight {w}%"),
            _ => "no traffic".into(),
        };
        let pause = match step.pause_duration {
            None => "manual approval".to_string(),
            Some(d) => format!("pause {d}s"),
        };
        let (done, shown_ready, note) = if phase == "Healthy" && state == "Completed" {
            (true, goal, "done".to_string())
        } else if !progressing || index > current {
            (false, 0, "pending".to_string())
        } else if index < current || state == "Completed" {
            (true, goal, "done".to_string())
        } else {
            let note = match state {
                "StepPaused" if step.pause_duration.is_none() => {
                    format!("waiting for approval (rollgit approve {name})")
                }
                other => other.to_string(),
            };
            (state == "StepReady", ready.min(goal), note)
        };
        out.push(format!(
            "  step {index}/{n}  [{}]  {shown_ready}/{goal} ready   {traffic}, {pause}   {note}",
            bar(shown_ready, goal, done)
        ));
    }
    if let Some(m) = s["message"].as_str().filter(|m| !m.is_empty()) {
        out.push(format!("  {m}"));
    }
    if let Some(m) = s["record"]["message"].as_str().filter(|m| !m.is_empty()) {
        out.push(format!("  record: {m}"));
    }
    out
}

/// The `spec.replicas` of Kruise Rollout `o`'s workload (to size its steps), if it exists.
pub async fn replicas_of(client: &kube::Client, ns: &str, o: &Value) -> Option<i64> {
    let r = rollgit_render::parse_kruise_rollout_value("", o).ok()?;
    let kind = rollgit::rollout::kruise::workload::Kind::of(&r.workload.kind)?;
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &kind.resource());
    let w = api.get_opt(r.workload.name.as_deref()?).await.ok()??;
    Some(w.data["spec"]["replicas"].as_i64().unwrap_or(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed(status: Value) -> Value {
        json!({
            "apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout",
            "metadata": {"name": "rollouts-demo", "generation": 1, "creationTimestamp": "2024-01-01T00:00:00Z"},
            "spec": {"objectRef": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "echoserver"}},
                "strategy": {"canary": {
                    "steps": [
                        {"matches": [{"headers": [{"type": "Exact", "name": "User-Agent", "value": "Andriod"}]}], "pause": {}, "replicas": 1},
                        {"weight": 50, "replicas": "50%", "pause": {"duration": 60}},
                        {"weight": 100, "replicas": "100%", "pause": {"duration": 60}}],
                    "trafficRoutings": [{"service": "echoserver", "ingress": {"name": "echoserver"}}]}}},
            "status": status,
        })
    }

    fn paused() -> Value {
        seed(json!({
            "observedGeneration": 1, "phase": "Progressing", "currentStepIndex": 1,
            "currentStepState": "StepPaused",
            "message": "Rollout is in step(1/3), and you need manually confirm to enter the next step",
            "canaryStatus": {"currentStepIndex": 1, "currentStepState": "StepPaused", "canaryReadyReplicas": 1},
        }))
    }

    #[test]
    fn the_table_has_kruises_columns() {
        let o: DynamicObject = serde_json::from_value(paused()).expect("object");
        let now: Timestamp = "2024-01-01T00:41:00Z".parse().expect("time");
        let t = kruise_table(&[o], false, now);
        assert_eq!(
            t,
            "NAME            STATUS        CANARY_STEP   CANARY_STATE   MESSAGE                                                                         AGE\n\
             rollouts-demo   Progressing   1             StepPaused     Rollout is in step(1/3), and you need manually confirm to enter the next step   41m\n"
        );
    }

    #[test]
    fn the_view_shows_steps_traffic_and_what_it_waits_for() {
        let lines = kruise_view(&paused(), Some(4));
        assert_eq!(
            lines,
            [
                "rollouts-demo: Deployment echoserver, 4 replicas, canary style, Progressing (StepPaused)",
                "  step 1/3  [##########]  1/1 ready   header User-Agent=Andriod, manual approval   waiting for approval (rollgit approve rollouts-demo)",
                "  step 2/3  [----------]  0/2 ready   weight 50%, pause 60s   pending",
                "  step 3/3  [----------]  0/4 ready   weight 100%, pause 60s   pending",
                "  Rollout is in step(1/3), and you need manually confirm to enter the next step",
            ]
        );
        assert!(matches!(kruise_verdict(&paused()), Verdict::Unfinished(_)));
    }

    #[test]
    fn verdicts() {
        let done = seed(json!({"observedGeneration": 1, "phase": "Healthy",
            "canaryStatus": {"currentStepIndex": 3, "currentStepState": "Completed"}}));
        assert_eq!(kruise_verdict(&done), Verdict::Succeeded);
        assert!(kruise_view(&done, Some(4))[1].ends_with("done"));
        let failed = seed(json!({"observedGeneration": 1, "phase": "Progressing",
            "conditions": [{"type": "Succeeded", "status": "False", "reason": "RolledBack", "message": "m"}]}));
        assert_eq!(
            kruise_verdict(&failed),
            Verdict::Failed("failed (RolledBack): m".into())
        );
        let stale = seed(json!({"observedGeneration": 0, "phase": "Healthy"}));
        assert!(matches!(kruise_verdict(&stale), Verdict::Unfinished(_)));
    }
}
