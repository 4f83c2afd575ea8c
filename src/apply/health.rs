//! Health per kind, as pure functions of the live object (what `kubectl get -o json` shows).
//!
//! | kind | Healthy when | Degraded when |
//! |---|---|---|
//! | Deployment | `observedGeneration ≥ generation`, `updatedReplicas`, `availableReplicas` (and `replicas`) all equal `spec.replicas` | `Progressing` condition with reason `ProgressDeadlineExceeded` |
//! | StatefulSet | `observedGeneration ≥ generation`, `readyReplicas` and `updatedReplicas` equal `spec.replicas` (for `RollingUpdate` with a partition: the replicas above it) | — |
//! | DaemonSet | `observedGeneration ≥ generation`, `updatedNumberScheduled` and `numberAvailable` equal `desiredNumberScheduled` | — |
//! | CloneSet (`apps.kruise.io`) | `observedGeneration ≥ generation`, `updatedReplicas ≥ replicas − partition`, `readyReplicas` (and `availableReplicas` when reported) equal `spec.replicas` | — |
//! | Job | a `Complete` condition is True | a `Failed` condition is True |
//! | Service | always, except `type: LoadBalancer` without `status.loadBalancer.ingress` (Progressing) | — |
//! | Rollout (`argoproj.io`) | Argo CD's rules: the status observes the spec, no pause, `updatedReplicas` and `availableReplicas` reach `spec.replicas`, no old replicas left (canary), `stableRS` is `currentPodHash` | `InvalidSpec`, or `Progressing` with reason `RolloutAborted` or `ProgressDeadlineExceeded`; a paused one (Argo CD's Suspended) is Progressing with `Suspended: …` |
//! | OpenKruise Rollout (`rollouts.kruise.io`) | `status.phase` is `Healthy` | `InvalidSpec` True (rollgit's executor cannot run it), a failed step rolled back (`Succeeded` False, reason `RolledBack`), or its revert stalled |
//! | anything with a `Ready` condition | `Ready` is True | `Ready` is False with a reason containing `Fail`/`Error` |
//! | other built-in kinds (ConfigMap, Secret, Role, CRD, ...) | once it exists | — |
//! | other custom resources | never: `Unknown` (rollgit has no health check for them) | — |
//!
//! `spec.replicas` defaults to 1 where Kubernetes defaults it. A paused Deployment counts as
//! Healthy once its observed generation is current (nothing more will happen without a resume).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// Health status of an object or an app, ordered from best to worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum HealthStatus {
    /// Running as desired.
    Healthy,
    /// rollgit cannot tell: a custom resource it has no health check for (and no `Ready`
    /// condition). An app with one is never reported healthy.
    Unknown,
    /// Converging: a rollout is in progress, a load balancer is being provisioned.
    Progressing,
    /// Failed or stuck (progress deadline exceeded, Job failed, Ready=False with a failure).
    Degraded,
    /// The object does not exist.
    Missing,
}

impl HealthStatus {
    /// `Healthy`, `Unknown`, `Progressing`, `Degraded`, `Missing`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Healthy => "Healthy",
            Self::Unknown => "Unknown",
            Self::Progressing => "Progressing",
            Self::Degraded => "Degraded",
            Self::Missing => "Missing",
        }
    }
}

impl fmt::Display for HealthStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Health of one object (or of an app, from [`aggregate`]): a status and a short message
/// (empty when Healthy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// The status.
    pub status: HealthStatus,
    /// Why, in a few words (empty when Healthy).
    pub message: String,
}

impl Health {
    /// Healthy, no message.
    pub fn healthy() -> Self {
        Self {
            status: HealthStatus::Healthy,
            message: String::new(),
        }
    }

    fn progressing(message: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Progressing,
            message: message.into(),
        }
    }

    fn degraded(message: impl Into<String>) -> Self {
        Self {
            status: HealthStatus::Degraded,
            message: message.into(),
        }
    }

    /// The health of an object that does not exist.
    pub fn missing() -> Self {
        Self {
            status: HealthStatus::Missing,
            message: "not found".to_string(),
        }
    }

    /// True when Healthy.
    pub fn is_healthy(&self) -> bool {
        self.status == HealthStatus::Healthy
    }
}

fn int(v: &Value, path: &[&str]) -> Option<i64> {
    let mut cur = v;
    for p in path {
        cur = cur.get(p)?;
    }
    cur.as_i64()
}

fn int_or(v: &Value, path: &[&str], default: i64) -> i64 {
    int(v, path).unwrap_or(default)
}

/// The condition of `type_` in `status.conditions`.
fn condition<'a>(obj: &'a Value, type_: &str) -> Option<&'a Value> {
    obj["status"]["conditions"]
        .as_array()?
        .iter()
        .find(|c| c["type"].as_str() == Some(type_))
}

fn condition_true(obj: &Value, type_: &str) -> bool {
    condition(obj, type_).is_some_and(|c| c["status"].as_str() == Some("True"))
}

/// `None` when the controller has seen the latest spec, else a Progressing health.
fn generation_pending(obj: &Value) -> Option<Health> {
    let generation = int(obj, &["metadata", "generation"])?;
    let observed = int_or(obj, &["status", "observedGeneration"], 0);
    (observed < generation)
        .then(|| Health::progressing("waiting for the controller to observe the latest spec"))
}

/// The health of a live object. Dispatches on `apiVersion` group and `kind`; see the module
/// documentation for the rules.
pub fn health(obj: &Value) -> Health {
    if obj.is_null() {
        return Health::missing();
    }
    let api_version = obj["apiVersion"].as_str().unwrap_or("");
    let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
    let kind = obj["kind"].as_str().unwrap_or("");
    match (group, kind) {
        ("apps", "Deployment") | ("extensions", "Deployment") => deployment(obj),
        ("apps", "StatefulSet") => statefulset(obj),
        ("apps", "DaemonSet") | ("extensions", "DaemonSet") => daemonset(obj),
        ("apps.kruise.io", "CloneSet") => cloneset(obj),
        ("batch", "Job") => job(obj),
        ("", "Service") => service(obj),
        ("rollgit.dev", "Rollout") => rollout(obj),
        ("argoproj.io", "Rollout") => argo_rollout(obj),
        ("rollouts.kruise.io", "Rollout") => kruise_rollout(obj),
        _ if condition(obj, "Ready").is_some() || built_in(group) => ready_condition(obj),
        _ => Health {
            status: HealthStatus::Unknown,
            message: format!(
                "health unknown: rollgit has no health check for {kind}{} and it has no Ready condition",
                if group.is_empty() {
                    String::new()
                } else {
                    format!(".{group}")
                }
            ),
        },
    }
}

/// Whether `group` is one of Kubernetes' own API groups (its kinds without a health rule are
/// healthy once they exist); any other group is a custom resource's.
fn built_in(group: &str) -> bool {
    const K8S_IO: &[&str] = &[
        "admissionregistration.k8s.io",
        "apiextensions.k8s.io",
        "apiregistration.k8s.io",
        "authentication.k8s.io",
        "authorization.k8s.io",
        "certificates.k8s.io",
        "coordination.k8s.io",
        "discovery.k8s.io",
        "events.k8s.io",
        "flowcontrol.apiserver.k8s.io",
        "internal.apiserver.k8s.io",
        "networking.k8s.io",
        "node.k8s.io",
        "rbac.authorization.k8s.io",
        "resource.k8s.io",
        "scheduling.k8s.io",
        "storage.k8s.io",
        "storagemigration.k8s.io",
    ];
    !group.contains('.') || K8S_IO.contains(&group)
}

/// A rollgit Rollout: healthy once the spec's generation is rolled out (`rolloutSucceed`),
/// degraded when it failed (also after rolling back), progressing otherwise.
fn rollout(obj: &Value) -> Health {
    if let Some(h) = generation_pending(obj) {
        return h;
    }
    let record = &obj["status"]["record"];
    if record["state"] == "Stalled" {
        let message = record["message"].as_str().unwrap_or_default();
        return Health::degraded(if message.contains(crate::k8s::STALLED) {
            message.to_string()
        } else {
            format!("{}{message}", crate::k8s::STALLED)
        });
    }
    let state = obj["status"]["rollingState"].as_str().unwrap_or("");
    let target = obj["status"]["targetRevision"].as_str().unwrap_or("-");
    match state {
        "rolloutSucceed" => Health::healthy(),
        "rolloutFailed" => {
            let why = obj["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "RolloutFailed"))
                .and_then(|c| c["message"].as_str())
                .unwrap_or("the rollout failed");
            Health::degraded(why)
        }
        "" => Health::progressing("waiting for the rollout to start"),
        s => Health::progressing(format!(
            "rolling out {target}: batch {} ({s}, {})",
            int_or(obj, &["status", "currentBatch"], 0) + 1,
            obj["status"]["batchRollingState"].as_str().unwrap_or("-")
        )),
    }
}

/// An Argo Rollout, with Argo CD's health rules (`resource_customizations/argoproj.io/Rollout`),
/// whichever controller runs it: rollgit's or Argo's own.
fn argo_rollout(obj: &Value) -> Health {
    let st = &obj["status"];
    let observed = match &st["observedGeneration"] {
        Value::String(s) => s.parse::<i64>().ok(),
        v => v.as_i64(),
    };
    let generation = int(obj, &["metadata", "generation"]);
    if st["observedGeneration"].is_null() || (observed.is_some() && observed != generation) {
        return Health::progressing("Waiting for rollout spec update to be observed");
    }
    for c in st["conditions"].as_array().into_iter().flatten() {
        let message = c["message"].as_str().unwrap_or_default();
        if c["type"] == "InvalidSpec" {
            return Health::degraded(message);
        }
        if c["type"] == "Progressing"
            && (c["reason"] == "RolloutAborted" || c["reason"] == "ProgressDeadlineExceeded")
        {
            return Health::degraded(message);
        }
    }
    let paused = st["pauseConditions"]
        .as_array()
        .is_some_and(|p| !p.is_empty())
        || obj["spec"]["paused"].as_bool().unwrap_or(false);
    if paused {
        let reason = st["pauseConditions"][0]["reason"]
            .as_str()
            .unwrap_or("spec.paused");
        return Health::progressing(format!("Suspended: Rollout is paused ({reason})"));
    }
    if st["currentPodHash"].is_null() {
        return Health::progressing(
            "Waiting for rollout to finish: status has not been reconciled.",
        );
    }
    let desired = int_or(obj, &["spec", "replicas"], 1);
    let replicas = int_or(st, &["replicas"], 0);
    let updated = int_or(st, &["updatedReplicas"], 0);
    let available = int_or(st, &["availableReplicas"], 0);
    if updated < desired {
        return Health::progressing(
            "Waiting for roll out to finish: More replicas need to be updated",
        );
    }
    if available < updated {
        return Health::progressing(
            "Waiting for roll out to finish: updated replicas are still becoming available",
        );
    }
    if obj["spec"]["strategy"]["canary"].is_object() {
        if replicas > updated {
            return Health::progressing(
                "Waiting for roll out to finish: old replicas are pending termination",
            );
        }
        if st["stableRS"].is_null() || st["stableRS"] != st["currentPodHash"] {
            return Health::progressing("Waiting for rollout to finish steps");
        }
    }
    Health::healthy()
}

/// An OpenKruise Rollout (run by rollgit or by Kruise): healthy in phase `Healthy`, degraded
/// when rollgit rolled a failed step back (`Succeeded` False, reason `RolledBack`) or its
/// revert is stalled, progressing otherwise (the message says the step and what it waits for).
fn kruise_rollout(obj: &Value) -> Health {
    if let Some(h) = generation_pending(obj) {
        return h;
    }
    let status = &obj["status"];
    let record = &status["record"];
    if record["state"] == "Stalled" {
        let message = record["message"].as_str().unwrap_or_default();
        return Health::degraded(if message.contains(crate::k8s::STALLED) {
            message.to_string()
        } else {
            format!("{}{message}", crate::k8s::STALLED)
        });
    }
    if let Some(c) = condition(obj, "InvalidSpec")
        && c["status"] == "True"
    {
        return Health::degraded(format!(
            "InvalidSpec: {}",
            c["message"].as_str().unwrap_or_default()
        ));
    }
    if let Some(c) = condition(obj, "Succeeded")
        && c["status"] == "False"
        && c["reason"] == "RolledBack"
    {
        return Health::degraded(c["message"].as_str().unwrap_or("the rollout failed"));
    }
    match status["phase"].as_str().unwrap_or("") {
        "Healthy" => Health::healthy(),
        "" | "Initial" => Health::progressing("waiting for the rollout controller"),
        phase => {
            let message = status["message"].as_str().unwrap_or_default();
            Health::progressing(format!(
                "{phase}: step {} {}: {message}",
                int_or(obj, &["status", "currentStepIndex"], 0),
                status["currentStepState"].as_str().unwrap_or("-"),
            ))
        }
    }
}

fn deployment(obj: &Value) -> Health {
    if let Some(c) = condition(obj, "Progressing")
        && c["reason"].as_str() == Some("ProgressDeadlineExceeded")
    {
        let name = obj["metadata"]["name"].as_str().unwrap_or("");
        return Health::degraded(format!(
            "deployment {name:?} exceeded its progress deadline"
        ));
    }
    if let Some(h) = generation_pending(obj) {
        return h;
    }
    if obj["spec"]["paused"].as_bool() == Some(true) {
        return Health::healthy();
    }
    let want = int_or(obj, &["spec", "replicas"], 1);
    let status = &obj["status"];
    let replicas = int_or(status, &["replicas"], 0);
    let updated = int_or(status, &["updatedReplicas"], 0);
    let available = int_or(status, &["availableReplicas"], 0);
    if updated < want {
        return Health::progressing(format!("{updated} of {want} updated replicas"));
    }
    if replicas > updated {
        return Health::progressing(format!(
            "{} old replicas pending termination",
            replicas - updated
        ));
    }
    if available < updated {
        return Health::progressing(format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    Health::healthy()
}

fn statefulset(obj: &Value) -> Health {
    if let Some(h) = generation_pending(obj) {
        return h;
    }
    let want = int_or(obj, &["spec", "replicas"], 1);
    let status = &obj["status"];
    let ready = int_or(status, &["readyReplicas"], 0);
    if ready < want {
        return Health::progressing(format!("{ready} of {want} replicas ready"));
    }
    let strategy = &obj["spec"]["updateStrategy"];
    if strategy["type"].as_str() == Some("OnDelete") {
        return Health::healthy();
    }
    let partition = int_or(strategy, &["rollingUpdate", "partition"], 0);
    let updated = int_or(status, &["updatedReplicas"], 0);
    let want_updated = (want - partition).max(0);
    if updated < want_updated {
        return Health::progressing(format!("{updated} of {want_updated} replicas updated"));
    }
    if partition == 0
        && let (Some(cur), Some(upd)) = (
            status["currentRevision"].as_str(),
            status["updateRevision"].as_str(),
        )
        && cur != upd
    {
        return Health::progressing("waiting for the rolling update to finish");
    }
    Health::healthy()
}

fn daemonset(obj: &Value) -> Health {
    if let Some(h) = generation_pending(obj) {
        return h;
    }
    let status = &obj["status"];
    let desired = int_or(status, &["desiredNumberScheduled"], 0);
    let updated = int_or(status, &["updatedNumberScheduled"], 0);
    let available = int_or(status, &["numberAvailable"], 0);
    if obj["spec"]["updateStrategy"]["type"].as_str() != Some("OnDelete") && updated < desired {
        return Health::progressing(format!("{updated} of {desired} pods updated"));
    }
    if available < desired {
        return Health::progressing(format!("{available} of {desired} pods available"));
    }
    Health::healthy()
}

fn cloneset(obj: &Value) -> Health {
    if let Some(h) = generation_pending(obj) {
        return h;
    }
    let want = int_or(obj, &["spec", "replicas"], 1);
    let status = &obj["status"];
    // The partition is the number (or percent) of pods kept at the old revision.
    let partition = match &obj["spec"]["updateStrategy"]["partition"] {
        Value::Number(n) => n.as_i64().unwrap_or(0),
        Value::String(s) => s
            .strip_suffix('%')
            .and_then(|p| p.parse::<i64>().ok())
            .map_or(0, |p| (want * p) / 100),
        _ => 0,
    };
    let want_updated = (want - partition).max(0);
    let updated = int_or(status, &["updatedReplicas"], 0);
    if updated < want_updated {
        return Health::progressing(format!("{updated} of {want_updated} replicas updated"));
    }
    let ready = int_or(status, &["readyReplicas"], 0);
    if ready < want {
        return Health::progressing(format!("{ready} of {want} replicas ready"));
    }
    if let Some(available) = int(status, &["availableReplicas"])
        && available < want
    {
        return Health::progressing(format!("{available} of {want} replicas available"));
    }
    Health::healthy()
}

fn job(obj: &Value) -> Health {
    if condition_true(obj, "Failed") {
        let msg = condition(obj, "Failed")
            .and_then(|c| c["message"].as_str().or(c["reason"].as_str()))
            .unwrap_or("job failed");
        return Health::degraded(msg.to_string());
    }
    if condition_true(obj, "Complete") {
        return Health::healthy();
    }
    let active = int_or(obj, &["status", "active"], 0);
    Health::progressing(format!("{active} active pods, not complete"))
}

fn service(obj: &Value) -> Health {
    if obj["spec"]["type"].as_str() == Some("LoadBalancer") {
        let has_ingress = obj["status"]["loadBalancer"]["ingress"]
            .as_array()
            .is_some_and(|i| !i.is_empty());
        if !has_ingress {
            return Health::progressing("waiting for the load balancer");
        }
    }
    Health::healthy()
}

fn ready_condition(obj: &Value) -> Health {
    let Some(c) = condition(obj, "Ready") else {
        return Health::healthy();
    };
    let reason = c["reason"].as_str().unwrap_or("");
    let message = c["message"].as_str().unwrap_or("");
    let text = match (reason, message) {
        ("", "") => "not ready".to_string(),
        (r, "") => r.to_string(),
        ("", m) => m.to_string(),
        (r, m) => format!("{r}: {m}"),
    };
    match c["status"].as_str() {
        Some("True") => Health::healthy(),
        Some("False") if reason.contains("Fail") || reason.contains("Error") => {
            Health::degraded(text)
        }
        _ => Health::progressing(text),
    }
}

/// The health of an app: the worst of its objects' (Missing counts as Degraded for the app),
/// with the message of the first object at that status, prefixed by the object.
/// An app with no objects is Healthy.
pub fn aggregate<'a, I, S>(healths: I) -> Health
where
    I: IntoIterator<Item = (S, &'a Health)>,
    S: fmt::Display,
{
    let mut worst: Option<(HealthStatus, String)> = None;
    for (who, h) in healths {
        let status = match h.status {
            HealthStatus::Missing => HealthStatus::Degraded,
            s => s,
        };
        if status == HealthStatus::Healthy {
            continue;
        }
        if worst.as_ref().is_none_or(|(w, _)| status > *w) {
            let msg = if h.message.is_empty() {
                format!("{who}: {}", h.status)
            } else {
                format!("{who}: {}", h.message)
            };
            worst = Some((status, msg));
        }
    }
    match worst {
        None => Health::healthy(),
        Some((status, message)) => Health { status, message },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use HealthStatus::*;
    use serde_json::json;

    fn deploy(generation: i64, spec_replicas: Option<i64>, status: Value) -> Value {
        let mut d = json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web", "generation": generation},
            "spec": {},
            "status": status,
        });
        if let Some(r) = spec_replicas {
            d["spec"]["replicas"] = json!(r);
        }
        d
    }

    #[test]
    fn deployment_table() {
        let cases: Vec<(&str, Value, HealthStatus)> = vec![
            (
                "rolled out",
                deploy(
                    2,
                    Some(3),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                Healthy,
            ),
            (
                "replicas defaults to one",
                deploy(
                    1,
                    None,
                    json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1}),
                ),
                Healthy,
            ),
            (
                "scaled to zero",
                deploy(1, Some(0), json!({"observedGeneration": 1})),
                Healthy,
            ),
            (
                "generation not observed",
                deploy(
                    3,
                    Some(3),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3}),
                ),
                Progressing,
            ),
            (
                "no status yet",
                deploy(1, Some(2), Value::Null),
                Progressing,
            ),
            (
                "half updated",
                deploy(
                    2,
                    Some(4),
                    json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 2, "availableReplicas": 4}),
                ),
                Progressing,
            ),
            (
                "old replicas terminating",
                deploy(
                    2,
                    Some(2),
                    json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2, "availableReplicas": 2}),
                ),
                Progressing,
            ),
            (
                "updated but not available",
                deploy(
                    2,
                    Some(2),
                    json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2, "availableReplicas": 1}),
                ),
                Progressing,
            ),
            (
                "progress deadline exceeded",
                deploy(
                    2,
                    Some(2),
                    json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 1, "availableReplicas": 1,
                    "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}),
                ),
                Degraded,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(health(&obj).status, want, "case {name}: {:?}", health(&obj));
        }
    }

    #[test]
    fn deployment_messages() {
        let h = health(&deploy(
            2,
            Some(4),
            json!({"observedGeneration": 2, "replicas": 4, "updatedReplicas": 2}),
        ));
        assert_eq!(h.message, "2 of 4 updated replicas");
        assert_eq!(
            health(&deploy(
                1,
                Some(1),
                json!({"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1})
            )),
            Health::healthy()
        );
    }

    fn sts(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "db", "generation": 1}, "spec": spec, "status": status})
    }

    #[test]
    fn statefulset_table() {
        let cases: Vec<(&str, Value, HealthStatus)> = vec![
            (
                "ready",
                sts(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "a", "updateRevision": "a"}),
                ),
                Healthy,
            ),
            (
                "not ready",
                sts(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "readyReplicas": 2, "updatedReplicas": 3}),
                ),
                Progressing,
            ),
            (
                "not updated",
                sts(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1}),
                ),
                Progressing,
            ),
            (
                "partition holds two",
                sts(
                    json!({"replicas": 3, "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 2}}}),
                    json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 1, "currentRevision": "a", "updateRevision": "b"}),
                ),
                Healthy,
            ),
            (
                "revisions differ",
                sts(
                    json!({"replicas": 3}),
                    json!({"observedGeneration": 1, "readyReplicas": 3, "updatedReplicas": 3, "currentRevision": "a", "updateRevision": "b"}),
                ),
                Progressing,
            ),
            (
                "on delete",
                sts(
                    json!({"replicas": 1, "updateStrategy": {"type": "OnDelete"}}),
                    json!({"observedGeneration": 1, "readyReplicas": 1, "updatedReplicas": 0}),
                ),
                Healthy,
            ),
            (
                "old generation",
                sts(
                    json!({"replicas": 1}),
                    json!({"observedGeneration": 0, "readyReplicas": 1}),
                ),
                Progressing,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(health(&obj).status, want, "case {name}");
        }
    }

    fn ds(status: Value) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
            "metadata": {"name": "agent", "generation": 1}, "spec": {}, "status": status})
    }

    #[test]
    fn daemonset_table() {
        let cases: Vec<(&str, Value, HealthStatus)> = vec![
            (
                "all nodes",
                ds(
                    json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 3}),
                ),
                Healthy,
            ),
            (
                "updating",
                ds(
                    json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 1, "numberAvailable": 3}),
                ),
                Progressing,
            ),
            (
                "unavailable",
                ds(
                    json!({"observedGeneration": 1, "desiredNumberScheduled": 3, "updatedNumberScheduled": 3, "numberAvailable": 2}),
                ),
                Progressing,
            ),
            (
                "not observed",
                ds(json!({"observedGeneration": 0})),
                Progressing,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(health(&obj).status, want, "case {name}");
        }
    }

    fn cs(spec: Value, status: Value) -> Value {
        json!({"apiVersion": "apps.kruise.io/v1alpha1", "kind": "CloneSet",
            "metadata": {"name": "cloneset-server", "generation": 2}, "spec": spec, "status": status})
    }

    #[test]
    fn cloneset_table() {
        let cases: Vec<(&str, Value, HealthStatus)> = vec![
            (
                "all updated and ready",
                cs(
                    json!({"replicas": 5}),
                    json!({"observedGeneration": 2, "replicas": 5, "updatedReplicas": 5, "readyReplicas": 5, "availableReplicas": 5}),
                ),
                Healthy,
            ),
            (
                "partition keeps three old",
                cs(
                    json!({"replicas": 5, "updateStrategy": {"partition": 3}}),
                    json!({"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 5}),
                ),
                Healthy,
            ),
            (
                "percent partition",
                cs(
                    json!({"replicas": 4, "updateStrategy": {"partition": "50%"}}),
                    json!({"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 4}),
                ),
                Healthy,
            ),
            (
                "updating",
                cs(
                    json!({"replicas": 5}),
                    json!({"observedGeneration": 2, "updatedReplicas": 2, "readyReplicas": 5}),
                ),
                Progressing,
            ),
            (
                "not ready",
                cs(
                    json!({"replicas": 5}),
                    json!({"observedGeneration": 2, "updatedReplicas": 5, "readyReplicas": 4}),
                ),
                Progressing,
            ),
            (
                "not available",
                cs(
                    json!({"replicas": 5}),
                    json!({"observedGeneration": 2, "updatedReplicas": 5, "readyReplicas": 5, "availableReplicas": 3}),
                ),
                Progressing,
            ),
            (
                "not observed",
                cs(
                    json!({"replicas": 5}),
                    json!({"observedGeneration": 1, "updatedReplicas": 5, "readyReplicas": 5}),
                ),
                Progressing,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(health(&obj).status, want, "case {name}");
        }
    }

    fn job_with(conditions: Value) -> Value {
        json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "migrate"},
            "status": {"active": 1, "conditions": conditions}})
    }

    #[test]
    fn job_table() {
        let cases: Vec<(&str, Value, HealthStatus)> = vec![
            (
                "complete",
                job_with(json!([{"type": "Complete", "status": "True"}])),
                Healthy,
            ),
            (
                "failed",
                job_with(
                    json!([{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]),
                ),
                Degraded,
            ),
            ("running", job_with(json!([])), Progressing),
            (
                "complete false",
                job_with(json!([{"type": "Complete", "status": "False"}])),
                Progressing,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(health(&obj).status, want, "case {name}");
        }
        assert_eq!(
            health(&job_with(json!([{"type": "Failed", "status": "True", "message": "Job has reached the specified backoff limit"}]))).message,
            "Job has reached the specified backoff limit"
        );
    }

    #[test]
    fn service_table() {
        let cases: Vec<(&str, Value, HealthStatus)> = vec![
            (
                "cluster ip",
                json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "ClusterIP"}}),
                Healthy,
            ),
            (
                "no type",
                json!({"apiVersion": "v1", "kind": "Service", "spec": {}}),
                Healthy,
            ),
            (
                "lb without ingress",
                json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {}}}),
                Progressing,
            ),
            (
                "lb with ingress",
                json!({"apiVersion": "v1", "kind": "Service", "spec": {"type": "LoadBalancer"}, "status": {"loadBalancer": {"ingress": [{"ip": "10.0.0.1"}]}}}),
                Healthy,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(health(&obj).status, want, "case {name}");
        }
    }

    #[test]
    fn ready_condition_and_others_table() {
        let cr = |cond: Value| {
            json!({"apiVersion": "example.com/v1", "kind": "Certificate", "metadata": {"name": "c"},
                "status": {"conditions": [cond]}})
        };
        let cases: Vec<(&str, Value, HealthStatus)> = vec![
            (
                "ready true",
                cr(json!({"type": "Ready", "status": "True"})),
                Healthy,
            ),
            (
                "ready false",
                cr(json!({"type": "Ready", "status": "False", "reason": "Issuing"})),
                Progressing,
            ),
            (
                "ready unknown",
                cr(json!({"type": "Ready", "status": "Unknown"})),
                Progressing,
            ),
            (
                "ready failed",
                cr(json!({"type": "Ready", "status": "False", "reason": "IssuanceFailed"})),
                Degraded,
            ),
            (
                "a custom resource with another condition only",
                cr(json!({"type": "Synced", "status": "False"})),
                Unknown,
            ),
            (
                "a custom resource with no status",
                json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}),
                Unknown,
            ),
            (
                "a Gateway API route (a CRD, not built in)",
                json!({"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "r"}}),
                Unknown,
            ),
            (
                "a built-in kind of a k8s.io group",
                json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"}}),
                Healthy,
            ),
            (
                "a CRD",
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "r"}}),
                Healthy,
            ),
            (
                "configmap",
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}),
                Healthy,
            ),
            ("missing", Value::Null, Missing),
        ];
        for (name, obj, want) in cases {
            assert_eq!(health(&obj).status, want, "case {name}");
        }
    }

    #[test]
    fn argo_rollouts_follow_argo_cds_rules() {
        let ro = |generation: i64, replicas: i64, status: Value| {
            json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                "metadata": {"generation": generation},
                "spec": {"replicas": replicas, "strategy": {"canary": {}}}, "status": status})
        };
        let healthy = json!({"observedGeneration": "2", "currentPodHash": "a", "stableRS": "a",
            "replicas": 3, "updatedReplicas": 3, "availableReplicas": 3});
        let with = |patch: Value| {
            let mut s = healthy.clone();
            for (k, v) in patch.as_object().expect("an object") {
                s[k] = v.clone();
            }
            s
        };
        let cases = [
            ("healthy", ro(2, 3, healthy.clone()), Healthy, ""),
            (
                "no status yet",
                ro(1, 3, Value::Null),
                Progressing,
                "Waiting for rollout spec update to be observed",
            ),
            (
                "an older generation",
                ro(3, 3, healthy.clone()),
                Progressing,
                "Waiting for rollout spec update to be observed",
            ),
            (
                "paused at a step",
                ro(
                    2,
                    3,
                    with(json!({"pauseConditions": [{"reason": "CanaryPauseStep"}]})),
                ),
                Progressing,
                "Suspended: Rollout is paused (CanaryPauseStep)",
            ),
            (
                "aborted",
                ro(
                    2,
                    3,
                    with(
                        json!({"conditions": [{"type": "Progressing", "reason": "RolloutAborted", "message": "Rollout aborted update to revision 2"}]}),
                    ),
                ),
                Degraded,
                "Rollout aborted update to revision 2",
            ),
            (
                "past its progress deadline",
                ro(
                    2,
                    3,
                    with(
                        json!({"conditions": [{"type": "Progressing", "reason": "ProgressDeadlineExceeded", "message": "too slow"}]}),
                    ),
                ),
                Degraded,
                "too slow",
            ),
            (
                "invalid",
                ro(
                    2,
                    3,
                    with(json!({"conditions": [{"type": "InvalidSpec", "message": "bad"}]})),
                ),
                Degraded,
                "bad",
            ),
            (
                "canary pods missing",
                ro(2, 3, with(json!({"updatedReplicas": 1}))),
                Progressing,
                "Waiting for roll out to finish: More replicas need to be updated",
            ),
            (
                "old pods left",
                ro(2, 3, with(json!({"replicas": 4}))),
                Progressing,
                "Waiting for roll out to finish: old replicas are pending termination",
            ),
            (
                "steps left",
                ro(2, 3, with(json!({"stableRS": "b"}))),
                Progressing,
                "Waiting for rollout to finish steps",
            ),
        ];
        for (name, obj, status, message) in cases {
            let h = health(&obj);
            assert_eq!((h.status, h.message.as_str()), (status, message), "{name}");
        }
    }

    #[test]
    fn kruise_rollout_table() {
        let ro = |status: Value| {
            json!({"apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout",
                "metadata": {"name": "r", "generation": 1}, "status": status})
        };
        let cases: Vec<(&str, Value, HealthStatus, &str)> = vec![
            (
                "healthy",
                ro(json!({"observedGeneration": 1, "phase": "Healthy"})),
                Healthy,
                "",
            ),
            (
                "no status yet",
                ro(json!(null)),
                Progressing,
                "waiting for the controller to observe the latest spec",
            ),
            (
                "waiting for approval",
                ro(
                    json!({"observedGeneration": 1, "phase": "Progressing", "currentStepIndex": 1,
                    "currentStepState": "StepPaused",
                    "message": "Rollout is in step(1/3), and you need manually confirm to enter the next step"}),
                ),
                Progressing,
                "Progressing: step 1 StepPaused: Rollout is in step(1/3), and you need manually confirm to enter the next step",
            ),
            (
                "rolled back",
                ro(
                    json!({"observedGeneration": 1, "phase": "Progressing", "conditions": [
                    {"type": "Succeeded", "status": "False", "reason": "RolledBack", "message": "Rollout failed in step(1/3)"}]}),
                ),
                Degraded,
                "Rollout failed in step(1/3)",
            ),
            (
                "revert stalled",
                ro(
                    json!({"observedGeneration": 1, "phase": "Progressing", "record": {"state": "Stalled", "message": "conflict"}}),
                ),
                Degraded,
                "Stalled: conflict",
            ),
            (
                "a spec rollgit's executor cannot run",
                ro(
                    json!({"observedGeneration": 1, "phase": "Healthy", "conditions": [
                    {"type": "InvalidSpec", "status": "True", "reason": "InvalidSpec", "message": "r: strategy.blueGreen is not run"}]}),
                ),
                Degraded,
                "InvalidSpec: r: strategy.blueGreen is not run",
            ),
        ];
        for (name, obj, want, message) in cases {
            let h = health(&obj);
            assert_eq!(h.status, want, "{name}");
            assert_eq!(h.message, message, "{name}");
        }
    }

    #[test]
    fn aggregate_takes_the_worst() {
        let ok = Health::healthy();
        let prog = Health::progressing("1 of 2 updated replicas");
        let missing = Health::missing();
        assert_eq!(aggregate(Vec::<(&str, &Health)>::new()), Health::healthy());
        assert_eq!(aggregate([("a", &ok), ("b", &ok)]), Health::healthy());
        assert_eq!(
            aggregate([("a", &ok), ("Deployment.apps demo/web", &prog)]),
            Health::progressing("Deployment.apps demo/web: 1 of 2 updated replicas")
        );
        assert_eq!(
            aggregate([("x", &prog), ("ConfigMap demo/c", &missing)]),
            Health::degraded("ConfigMap demo/c: not found")
        );
        let unknown = health(&json!({"apiVersion": "example.com/v1", "kind": "Widget"}));
        let app = aggregate([("a", &ok), ("Widget.example.com demo/w", &unknown)]);
        assert_eq!(
            app.status, Unknown,
            "an unknown kind is never reported healthy"
        );
        assert!(!app.is_healthy());
        assert_eq!(
            app.message,
            "Widget.example.com demo/w: health unknown: rollgit has no health check for Widget.example.com and it has no Ready condition"
        );
        assert_eq!(
            aggregate([("w", &unknown), ("d", &prog)]).status,
            Progressing,
            "what rollgit knows is worse than what it cannot tell"
        );
    }
}
