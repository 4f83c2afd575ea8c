//! Argo Rollouts in `rollgit get rollouts` (the columns of `kubectl argo rollouts list
//! rollouts`: NAME STRATEGY STATUS STEP SET-WEIGHT READY DESIRED UP-TO-DATE AVAILABLE) and in
//! `rollgit rollout status APP` (what `kubectl argo rollouts get rollout` shows: the status,
//! step, weights and replica counts, the steps with the current one marked, and the
//! ReplicaSets with their revision, role and pods). The rendering is pure ([`argo_table`],
//! [`argo_view`], [`argo_verdict`]); the I/O lists the Rollouts and their ReplicaSets.

use super::rollout_status::Verdict;
use super::table::format_table;
use kube::api::{Api, DynamicObject, ListParams};
use rollgit::rollout::argo::{HASH_LABEL, REVISION_ANNOTATION, resource};
use serde_json::Value;

/// Lists Argo Rollouts in `namespace` (or all, or those matching `selector`); none when the
/// cluster does not serve them.
pub async fn list_argo(
    client: &kube::Client,
    namespace: &str,
    all_namespaces: bool,
    selector: Option<&str>,
) -> Result<Vec<DynamicObject>, kube::Error> {
    let ar = resource();
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

/// The header of `kubectl argo rollouts list rollouts`.
pub const ARGO_HEADER: [&str; 9] = [
    "NAME",
    "STRATEGY",
    "STATUS",
    "STEP",
    "SET-WEIGHT",
    "READY",
    "DESIRED",
    "UP-TO-DATE",
    "AVAILABLE",
];

/// The plugin pads each value (`%-10s\t%-9s\t%-12s\t%-4s\t%-10s\t%-5s\t%-7d\t%-10d\t%-9d`,
/// `%-9s` for the namespace) before its tabwriter aligns the columns.
const ARGO_PAD: [usize; 9] = [10, 9, 12, 4, 10, 5, 7, 10, 9];

fn int(v: &Value) -> i64 {
    match v {
        Value::String(s) => s.parse().unwrap_or(0),
        v => v.as_i64().unwrap_or(0),
    }
}

fn steps(o: &Value) -> &[Value] {
    o["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn step_index(o: &Value) -> Option<usize> {
    o["status"]["currentStepIndex"]
        .as_u64()
        .and_then(|i| usize::try_from(i).ok())
}

/// `canary.trafficRouting.maxTrafficWeight`, else 100.
fn max_weight(o: &Value) -> i64 {
    o["spec"]["strategy"]["canary"]["trafficRouting"]["maxTrafficWeight"]
        .as_i64()
        .unwrap_or(100)
}

/// The weight the current step sets (Argo's `GetCurrentSetWeight`): 0 when aborted, the
/// maximum past the last step (or without steps), else the last `setWeight` at or before the
/// current step.
pub fn set_weight(o: &Value) -> i64 {
    if o["status"]["abort"].as_bool().unwrap_or(false) {
        return 0;
    }
    let steps = steps(o);
    let index = step_index(o).unwrap_or(0);
    if steps.is_empty() || index >= steps.len() {
        return max_weight(o);
    }
    steps[..=index]
        .iter()
        .rev()
        .find_map(|s| s["setWeight"].as_i64())
        .unwrap_or(0)
}

/// The phase and message as the plugin shows them (Argo's `GetRolloutPhase`): Progressing
/// while the controller has not observed the spec or an unpause, else the recorded ones.
pub fn phase(o: &Value) -> (String, String) {
    let s = &o["status"];
    let generation = o["metadata"]["generation"].as_i64().unwrap_or(0);
    let observed = match &s["observedGeneration"] {
        Value::String(g) => g.parse::<i64>().ok(),
        v => v.as_i64(),
    };
    if s.is_null() || observed.is_some_and(|g| g < generation) {
        return (
            "Progressing".into(),
            "waiting for rollout spec update to be observed".into(),
        );
    }
    let pauses = s["pauseConditions"]
        .as_array()
        .is_some_and(|p| !p.is_empty());
    if s["controllerPause"].as_bool().unwrap_or(false) && !pauses {
        return (
            "Progressing".into(),
            "waiting for rollout to unpause".into(),
        );
    }
    let phase = s["phase"].as_str().unwrap_or("Progressing");
    (
        phase.to_string(),
        s["message"].as_str().unwrap_or_default().to_string(),
    )
}

fn strategy(o: &Value) -> &'static str {
    let s = &o["spec"]["strategy"];
    if s["canary"].is_object() {
        "Canary"
    } else if s["blueGreen"].is_object() {
        "BlueGreen"
    } else {
        "unknown"
    }
}

/// One row of `kubectl argo rollouts list rollouts`.
fn argo_row(o: &Value) -> Vec<String> {
    let s = &o["status"];
    let canary = strategy(o) == "Canary";
    let steps = steps(o);
    let step = match step_index(o) {
        Some(i) if canary && !steps.is_empty() => format!("{i}/{}", steps.len()),
        _ => "-".into(),
    };
    let weight = if canary {
        set_weight(o).to_string()
    } else {
        "-".into()
    };
    vec![
        o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        strategy(o).to_string(),
        phase(o).0,
        step,
        weight,
        format!("{}/{}", int(&s["readyReplicas"]), int(&s["replicas"])),
        o["spec"]["replicas"].as_i64().unwrap_or(1).to_string(),
        int(&s["updatedReplicas"]).to_string(),
        int(&s["availableReplicas"]).to_string(),
    ]
}

/// Argo Rollouts as `kubectl argo rollouts list rollouts` lays them out (`-A` adds NAMESPACE):
/// each value padded as the plugin pads it, then columns two spaces apart (its tabwriter);
/// rows sorted by namespace and name.
pub fn argo_table(items: &[DynamicObject], all_namespaces: bool) -> String {
    let mut sorted: Vec<&DynamicObject> = items.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let mut pad: Vec<usize> = ARGO_PAD.to_vec();
    let mut rows: Vec<Vec<String>> = vec![ARGO_HEADER.iter().map(|s| s.to_string()).collect()];
    if all_namespaces {
        pad.insert(0, 9);
        rows[0].insert(0, "NAMESPACE".into());
    }
    for o in sorted {
        let v = serde_json::to_value(o).unwrap_or(Value::Null);
        let mut row = argo_row(&v);
        if all_namespaces {
            row.insert(0, o.metadata.namespace.clone().unwrap_or_default());
        }
        rows.push(
            row.into_iter()
                .zip(&pad)
                .map(|(c, &w)| format!("{c:<w$}"))
                .collect(),
        );
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
                + 2
        })
        .collect();
    let mut out = String::new();
    for r in &rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let n = widths[i].saturating_sub(c.chars().count());
                line.push_str(&" ".repeat(n));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// Where an Argo Rollout stands, as `kubectl argo rollouts status` decides: Healthy succeeded,
/// Degraded failed (an abort, a progress deadline, a spec rollgit cannot run), anything else
/// unfinished.
pub fn argo_verdict(o: &Value) -> Verdict {
    let (phase, message) = phase(o);
    let text = if message.is_empty() {
        phase.clone()
    } else {
        format!("{phase} - {message}")
    };
    match phase.as_str() {
        "Healthy" => Verdict::Succeeded,
        "Degraded" => Verdict::Failed(format!("is degraded: {message}")),
        _ => Verdict::Unfinished(text),
    }
}

/// `CanaryStepString` of the plugin: `setWeight: 10`, `pause: 1h`, `pause`, ...
pub fn step_text(s: &Value) -> String {
    if let Some(w) = s["setWeight"].as_i64() {
        return format!("setWeight: {w}");
    }
    if s.get("pause").is_some_and(|p| !p.is_null()) {
        return match &s["pause"]["duration"] {
            Value::Null => "pause".into(),
            Value::String(d) => format!("pause: {d}"),
            d => format!("pause: {d}"),
        };
    }
    if s.get("experiment").is_some() {
        return "experiment".into();
    }
    if s.get("analysis").is_some() {
        return "analysis".into();
    }
    let scale = &s["setCanaryScale"];
    if scale.is_object() {
        if let Some(w) = scale["weight"].as_i64() {
            return format!("setCanaryScale{{weight: {w}}}");
        }
        if scale["matchTrafficWeight"].as_bool().unwrap_or(false) {
            return "setCanaryScale{matchTrafficWeight: true}".into();
        }
        if let Some(r) = scale["replicas"].as_i64() {
            return format!("setCanaryScale{{replicas: {r}}}");
        }
    }
    for (key, label) in [
        ("plugin", "plugin"),
        ("setHeaderRoute", "setHeaderRoute"),
        ("setMirrorRoute", "setMirrorRoute"),
    ] {
        if let Some(n) = s[key]["name"].as_str() {
            return format!("{label}: {n}");
        }
    }
    "invalid".into()
}

/// A ReplicaSet of a Rollout as `rollout status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RsInfo {
    /// Its name.
    pub name: String,
    /// Its `rollouts-pod-template-hash`.
    pub hash: String,
    /// `rollout.argoproj.io/revision`.
    pub revision: i64,
    /// `spec.replicas`.
    pub desired: i64,
    /// `status.readyReplicas`.
    pub ready: i64,
    /// `status.availableReplicas`.
    pub available: i64,
    /// Whether the ReplicaSet controller observed its spec.
    pub observed: bool,
    /// Its containers' images.
    pub images: Vec<String>,
}

impl RsInfo {
    /// Reads a live ReplicaSet.
    pub fn of(rs: &Value) -> Self {
        let generation = rs["metadata"]["generation"].as_i64().unwrap_or(0);
        RsInfo {
            name: rs["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            hash: rs["metadata"]["labels"][HASH_LABEL]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            revision: int(&rs["metadata"]["annotations"][REVISION_ANNOTATION]),
            desired: rs["spec"]["replicas"].as_i64().unwrap_or(1),
            ready: int(&rs["status"]["readyReplicas"]),
            available: int(&rs["status"]["availableReplicas"]),
            observed: rs["status"]["observedGeneration"].as_i64().unwrap_or(0) >= generation,
            images: rs["spec"]["template"]["spec"]["containers"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c["image"].as_str().map(str::to_string))
                .collect(),
        }
    }

    /// The plugin's ReplicaSet health: Progressing until all its pods are available,
    /// ScaledDown at 0, else Healthy.
    pub fn health(&self) -> &'static str {
        if !self.observed || self.available < self.desired {
            "Progressing"
        } else if self.desired == 0 {
            "ScaledDown"
        } else {
            "Healthy"
        }
    }
}

/// `rollgit rollout status`'s lines for an Argo Rollout (pure): a header with the status,
/// step, weights and replica counts as `kubectl argo rollouts get rollout` has them, the
/// message, one line per step (`✔` done, `▶` the current one), and the ReplicaSets, newest
/// revision first, with their role (stable, canary), health, ready pods and images.
///
/// ```text
/// example-rollout: Canary, Paused, step 1/4, set weight 10, actual weight 10
///   replicas: desired 10, current 10, updated 1, ready 10, available 10
///   message: CanaryPauseStep
///   ✔ step 0  setWeight: 10
///   ▶ step 1  pause: 1h   paused (rollgit promote example-rollout)
///     step 2  setWeight: 20
///     step 3  pause
///   REVISION   REPLICASET                  ROLE     STATUS    PODS   IMAGES
///   2          example-rollout-57d8c4f8c   canary   Healthy   1/1    nginx:1.16.0
///   1          example-rollout-6cd5fdd4d   stable   Healthy   9/9    nginx:1.15.4
/// ```
pub fn argo_view(o: &Value, replica_sets: &[RsInfo]) -> Vec<String> {
    let name = o["metadata"]["name"].as_str().unwrap_or_default();
    let s = &o["status"];
    let (phase, message) = phase(o);
    let steps = steps(o);
    let strategy = strategy(o);
    let mut header = format!("{name}: {strategy}, {phase}");
    let current = step_index(o);
    if strategy == "Canary" {
        if let Some(i) = current.filter(|_| !steps.is_empty()) {
            header.push_str(&format!(", step {i}/{}", steps.len()));
        }
        let actual = match &s["canary"]["weights"]["canary"]["weight"] {
            Value::Null => {
                if current.is_none_or(|i| i >= steps.len()) {
                    max_weight(o)
                } else {
                    let canary = replica_sets
                        .iter()
                        .find(|r| Some(r.hash.as_str()) == s["currentPodHash"].as_str())
                        .filter(|r| Some(r.hash.as_str()) != s["stableRS"].as_str())
                        .map_or(0, |r| r.available);
                    let available = int(&s["availableReplicas"]);
                    if available > 0 {
                        canary * max_weight(o) / available
                    } else {
                        0
                    }
                }
            }
            w => int(w),
        };
        header.push_str(&format!(
            ", set weight {}, actual weight {actual}",
            set_weight(o)
        ));
    }
    let mut out = vec![header];
    out.push(format!(
        "  replicas: desired {}, current {}, updated {}, ready {}, available {}",
        o["spec"]["replicas"].as_i64().unwrap_or(1),
        int(&s["replicas"]),
        int(&s["updatedReplicas"]),
        int(&s["readyReplicas"]),
        int(&s["availableReplicas"]),
    ));
    if !message.is_empty() {
        out.push(format!("  message: {message}"));
    }
    let paused = s["pauseConditions"]
        .as_array()
        .is_some_and(|p| !p.is_empty())
        || o["spec"]["paused"].as_bool().unwrap_or(false);
    let aborted = s["abort"].as_bool().unwrap_or(false);
    for (i, step) in steps.iter().enumerate() {
        let (mark, note) = match current {
            Some(c) if i < c => ("✔", String::new()),
            Some(c) if i == c => {
                let note = if aborted {
                    format!("aborted (rollgit retry {name})")
                } else if paused {
                    format!("paused (rollgit promote {name})")
                } else {
                    String::new()
                };
                ("▶", note)
            }
            _ => (" ", String::new()),
        };
        let text = step_text(step);
        let line = if note.is_empty() {
            format!("  {mark} step {i}  {text}")
        } else {
            format!("  {mark} step {i}  {text}   {note}")
        };
        out.push(line);
    }
    if !replica_sets.is_empty() {
        let mut sorted: Vec<&RsInfo> = replica_sets.iter().collect();
        sorted.sort_by(|a, b| b.revision.cmp(&a.revision).then(a.name.cmp(&b.name)));
        let mut rows = vec![
            ["REVISION", "REPLICASET", "ROLE", "STATUS", "PODS", "IMAGES"]
                .map(String::from)
                .to_vec(),
        ];
        for r in sorted {
            let role = if Some(r.hash.as_str()) == s["stableRS"].as_str() {
                "stable"
            } else if Some(r.hash.as_str()) == s["currentPodHash"].as_str() {
                "canary"
            } else {
                "-"
            };
            rows.push(vec![
                r.revision.to_string(),
                r.name.clone(),
                role.into(),
                r.health().into(),
                format!("{}/{}", r.ready, r.desired),
                r.images.join(","),
            ]);
        }
        for l in format_table(&rows).lines() {
            out.push(format!("  {l}"));
        }
    }
    out
}

/// The ReplicaSets of Argo Rollout `o` (those it controls), read from the cluster.
pub async fn replica_sets_of(client: &kube::Client, ns: &str, o: &Value) -> Vec<RsInfo> {
    let uid = o["metadata"]["uid"].as_str().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        ns,
        &rollgit::rollout::argo::replica_set_resource(),
    );
    let listed = match api.list(&ListParams::default().labels(HASH_LABEL)).await {
        Ok(l) => l.items,
        Err(e) => {
            tracing::warn!(error = %rollgit::error_chain(&e), "listing the ReplicaSets of an Argo Rollout failed");
            return Vec::new();
        }
    };
    listed
        .iter()
        .map(|rs| serde_json::to_value(rs).unwrap_or(Value::Null))
        .filter(|rs| {
            rs["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|r| r["uid"] == uid && r["kind"] == "Rollout")
        })
        .map(|rs| RsInfo::of(&rs))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed(status: Value) -> Value {
        json!({
            "apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
            "metadata": {"name": "example-rollout", "namespace": "default", "generation": 2},
            "spec": {"replicas": 10, "strategy": {"canary": {"maxSurge": "25%", "maxUnavailable": 0,
                "steps": [{"setWeight": 10}, {"pause": {"duration": "1h"}}, {"setWeight": 20}, {"pause": {}}]}}},
            "status": status,
        })
    }

    fn paused() -> Value {
        seed(json!({
            "observedGeneration": "2", "phase": "Paused", "message": "CanaryPauseStep",
            "currentStepIndex": 1, "controllerPause": true, "currentPodHash": "57d8c4f8c",
            "stableRS": "6cd5fdd4d", "replicas": 10, "updatedReplicas": 1, "readyReplicas": 10,
            "availableReplicas": 10,
            "pauseConditions": [{"reason": "CanaryPauseStep", "startTime": "2024-01-01T00:00:00Z"}],
        }))
    }

    fn rs(hash: &str, revision: i64, desired: i64, image: &str) -> RsInfo {
        RsInfo {
            name: format!("example-rollout-{hash}"),
            hash: hash.into(),
            revision,
            desired,
            ready: desired,
            available: desired,
            observed: true,
            images: vec![image.into()],
        }
    }

    #[test]
    fn the_list_has_the_plugins_columns_and_padding() {
        let o: DynamicObject = serde_json::from_value(paused()).expect("object");
        assert_eq!(
            argo_table(std::slice::from_ref(&o), false),
            "NAME             STRATEGY   STATUS        STEP  SET-WEIGHT  READY  DESIRED  UP-TO-DATE  AVAILABLE\n\
             example-rollout  Canary     Paused        1/4   10          10/10  10       1           10\n"
        );
        let t = argo_table(&[o], true);
        assert!(t.starts_with("NAMESPACE  NAME             STRATEGY"), "{t}");
        assert!(t.contains("\ndefault    example-rollout  Canary"), "{t}");
    }

    #[test]
    fn set_weight_is_the_last_set_weight_up_to_the_current_step() {
        assert_eq!(set_weight(&paused()), 10);
        let mut o = paused();
        o["status"]["currentStepIndex"] = json!(3);
        assert_eq!(set_weight(&o), 20);
        o["status"]["currentStepIndex"] = json!(4);
        assert_eq!(set_weight(&o), 100, "past the last step: full weight");
        o["status"]["abort"] = json!(true);
        assert_eq!(set_weight(&o), 0, "aborted: no weight");
    }

    #[test]
    fn the_view_marks_the_current_step_and_lists_the_replica_sets() {
        let rss = [
            rs("6cd5fdd4d", 1, 9, "nginx:1.15.4"),
            rs("57d8c4f8c", 2, 1, "nginx:1.16.0"),
        ];
        assert_eq!(
            argo_view(&paused(), &rss),
            [
                "example-rollout: Canary, Paused, step 1/4, set weight 10, actual weight 10",
                "  replicas: desired 10, current 10, updated 1, ready 10, available 10",
                "  message: CanaryPauseStep",
                "  ✔ step 0  setWeight: 10",
                "  ▶ step 1  pause: 1h   paused (rollgit promote example-rollout)",
                "    step 2  setWeight: 20",
                "    step 3  pause",
                "  REVISION   REPLICASET                  ROLE     STATUS    PODS   IMAGES",
                "  2          example-rollout-57d8c4f8c   canary   Healthy   1/1    nginx:1.16.0",
                "  1          example-rollout-6cd5fdd4d   stable   Healthy   9/9    nginx:1.15.4",
            ]
        );
    }

    #[test]
    fn verdicts_follow_the_plugins_status_command() {
        assert!(
            matches!(argo_verdict(&paused()), Verdict::Unfinished(w) if w == "Paused - CanaryPauseStep")
        );
        let healthy =
            seed(json!({"observedGeneration": "2", "phase": "Healthy", "currentStepIndex": 4}));
        assert_eq!(argo_verdict(&healthy), Verdict::Succeeded);
        let stale = seed(json!({"observedGeneration": "1", "phase": "Healthy"}));
        assert!(matches!(argo_verdict(&stale), Verdict::Unfinished(w) if w.contains("observed")));
        let degraded = seed(
            json!({"observedGeneration": "2", "phase": "Degraded", "message": "RolloutAborted: Rollout aborted update to revision 2", "abort": true, "currentStepIndex": 0}),
        );
        assert_eq!(
            argo_verdict(&degraded),
            Verdict::Failed(
                "is degraded: RolloutAborted: Rollout aborted update to revision 2".into()
            )
        );
        assert_eq!(
            argo_view(&degraded, &[])[3],
            "  ▶ step 0  setWeight: 10   aborted (rollgit retry example-rollout)"
        );
        let mut unpausing = paused();
        unpausing["status"]["pauseConditions"] = json!([]);
        assert_eq!(phase(&unpausing).0, "Progressing");
    }
}
