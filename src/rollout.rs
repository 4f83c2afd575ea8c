//! The **rollout** stage's I/O shell: runs each `rollouts.rollgit.dev` Rollout to completion.
//!
//! The daemon applies one Rollout per component that has a KubeVela `rollout` trait or is
//! listed by an AppRollout (its spec comes from Git). This controller watches the Rollouts and
//! the workloads they own, and on every event for a Rollout makes one pass:
//!
//! ```text
//! observe (GET the Rollout, LIST its workloads) → decide (rollgit_core::batch::reconcile)
//!         → act (server-side apply / scale / partition / delete) → record (status subresource)
//! ```
//!
//! The decision is pure and every action is absolute, so the state recorded in the Rollout's
//! status is all a restarted daemon needs: the watch's first listing replays every Rollout and
//! each resumes its batch. Progress is watch-driven: a batch's workloads becoming ready is a
//! watch event, which starts the next batch's patch at once; timers only wake a batch at its
//! progress deadline.

use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::{WatchStreamExt, watcher};
use rollgit_core::batch::{self, Action, Observation, State, Style, Workload};
use rollgit_core::intstr::IntOrString;
use rollgit_core::kubevela::RolloutStrategy;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The Rollout CRD, as YAML (also `deploy/crds/rollouts.rollgit.dev.yaml`).
pub const ROLLOUT_CRD_YAML: &str = include_str!("../deploy/crds/rollouts.rollgit.dev.yaml");
/// The Rollout CRD's name.
pub const ROLLOUT_CRD_NAME: &str = "rollouts.rollgit.dev";
/// Kind of the rollout resource.
pub const KIND: &str = "Rollout";
/// Field manager of the rollout stage's writes to workloads.
pub const FIELD_MANAGER: &str = "rollgit-rollout";
/// Label on the workloads a Rollout owns: the Rollout's name.
pub const ROLLOUT_LABEL: &str = "rollgit.dev/rollout";
/// Label (Deployments: also in the selector and pod template) naming the component revision.
pub const REVISION_LABEL: &str = "rollgit.dev/revision";
/// Annotation naming the revision a workload's template runs (in-place workloads).
pub const REVISION_ANNOTATION: &str = "rollgit.dev/revision";
/// Default progress deadline of a batch.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

/// The API resource of `rollouts.rollgit.dev`.
pub fn rollout_resource() -> ApiResource {
    ApiResource {
        group: crate::apply::status::GROUP.into(),
        version: crate::apply::status::VERSION.into(),
        api_version: format!(
            "{}/{}",
            crate::apply::status::GROUP,
            crate::apply::status::VERSION
        ),
        kind: KIND.into(),
        plural: "rollouts".into(),
    }
}

/// Errors of one rollout pass. Every one is transient (the pass is retried with backoff) except
/// where the message says the spec is invalid.
#[derive(Debug, thiserror::Error)]
pub enum RolloutError {
    /// Reading the Rollout or its workloads failed.
    #[error("reading {what} for rollout {namespace}/{name}")]
    Observe {
        what: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// The component revision to run does not exist.
    #[error("component revision {namespace}/{revision} (ControllerRevision) not found")]
    RevisionMissing { namespace: String, revision: String },
    /// A revision's data is not a workload.
    #[error("component revision {namespace}/{revision} holds no workload in .data")]
    RevisionData { namespace: String, revision: String },
    /// Changing a workload failed.
    #[error("{action} for rollout {namespace}/{name}")]
    Act {
        action: String,
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
    /// Recording the status failed.
    #[error("writing the status of rollout {namespace}/{name}")]
    Record {
        namespace: String,
        name: String,
        #[source]
        source: kube::Error,
    },
}

/// The workload kind a Rollout drives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `apps/v1`, `apps.kruise.io/v1alpha1`, ...
    pub api_version: String,
    /// `Deployment`, `CloneSet`, `StatefulSet`.
    pub kind: String,
}

impl WorkloadRef {
    fn style(&self) -> Style {
        if self.kind == "Deployment" {
            Style::Deployments
        } else {
            Style::Partition
        }
    }

    fn resource(&self) -> ApiResource {
        let (group, version) = match self.api_version.split_once('/') {
            Some((g, v)) => (g.to_string(), v.to_string()),
            None => (String::new(), self.api_version.clone()),
        };
        ApiResource {
            group,
            version,
            api_version: self.api_version.clone(),
            kind: self.kind.clone(),
            plural: format!("{}s", self.kind.to_ascii_lowercase()),
        }
    }

    /// JSON path of the partition in `spec` (CloneSet: `updateStrategy.partition`;
    /// StatefulSet: `updateStrategy.rollingUpdate.partition`).
    fn partition_patch(&self, partition: i64) -> Value {
        if self.kind == "StatefulSet" {
            json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": partition}}}})
        } else {
            json!({"spec": {"updateStrategy": {"partition": partition}}})
        }
    }

    fn partition_of(&self, w: &Value, replicas: i64) -> i64 {
        let p = if self.kind == "StatefulSet" {
            &w["spec"]["updateStrategy"]["rollingUpdate"]["partition"]
        } else {
            &w["spec"]["updateStrategy"]["partition"]
        };
        match p {
            Value::Number(n) => n.as_i64().unwrap_or(0),
            Value::String(s) => {
                rollgit_core::intstr::lenient(&IntOrString::Str(s.clone()), replicas, true)
                    .unwrap_or(0)
            }
            _ => 0,
        }
    }
}

/// One batch of a rollout plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchSpec {
    /// Pods in the batch (int, or percent of the rollout size).
    pub replicas: IntOrString,
}

/// A rollout plan as Git writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PlanSpec {
    /// `IncreaseFirst` (default) or `DecreaseFirst`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_strategy: Option<String>,
    /// Batches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollout_batches: Vec<BatchSpec>,
    /// Hold after this batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_partition: Option<i64>,
    /// Nothing moves while true.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub paused: bool,
    /// Pods that may be unready when a batch is judged ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_unavailable: Option<IntOrString>,
}

/// The spec of a `rollouts.rollgit.dev` Rollout.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RolloutSpec {
    /// The rollgit app (directory).
    pub app: String,
    /// The KubeVela Application (or AppRollout) it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Component name.
    pub component: String,
    /// Workload kind.
    pub workload: WorkloadRef,
    /// Revision to run.
    pub target_revision: String,
    /// Explicit source revision (AppRollout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// Pods wanted.
    pub target_size: i64,
    /// Batches and hold points.
    pub rollout_plan: PlanSpec,
    /// Seconds a batch may take to become ready.
    pub progress_deadline_seconds: i64,
    /// Git commit that set this spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The repository (as configured in rollgit) the app comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The app's directory in the repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

impl RolloutSpec {
    /// The pure core's view of this spec.
    pub fn core(&self) -> batch::Spec {
        batch::Spec {
            target_revision: self.target_revision.clone(),
            source_revision: self.source_revision.clone(),
            target_size: self.target_size,
            batches: self
                .rollout_plan
                .rollout_batches
                .iter()
                .map(|b| b.replicas.clone())
                .collect(),
            batch_partition: self.rollout_plan.batch_partition,
            strategy: RolloutStrategy::parse(self.rollout_plan.rollout_strategy.as_deref())
                .unwrap_or_default(),
            paused: self.rollout_plan.paused,
            max_unavailable: self.rollout_plan.max_unavailable.clone(),
            progress_deadline_secs: self.progress_deadline_seconds.max(1),
            style: self.workload.style(),
            commit: self.commit.clone(),
        }
    }

    /// The Rollout object to server-side apply (the daemon adds owner and repo labels).
    pub fn object(&self, namespace: &str) -> Value {
        json!({
            "apiVersion": format!("{}/{}", crate::apply::status::GROUP, crate::apply::status::VERSION),
            "kind": KIND,
            "metadata": {
                "name": self.component,
                "namespace": namespace,
                "labels": {
                    crate::apply::APP_LABEL: self.app,
                    "app.oam.dev/component": self.component,
                    "app.kubernetes.io/managed-by": "rollgit",
                },
            },
            "spec": self,
        })
    }
}

/// Annotation on an Application overriding the progress deadline of its rollouts.
pub const PROGRESS_DEADLINE_ANNOTATION: &str = "rollgit.dev/progress-deadline";

/// The Rollouts one render asks for: one per component with a `rollout` trait, and one per
/// component an AppRollout rolls (a trait wins over an AppRollout for the same component).
/// Errors are `path:line: message`, like render errors: the commit is rejected whole.
pub fn specs_for(
    r: &rollgit_render::Rendered,
    app: &str,
    commit: &str,
    default_deadline: Duration,
) -> Result<Vec<(String, RolloutSpec)>, Vec<String>> {
    let mut out: Vec<(String, RolloutSpec)> = Vec::new();
    let mut errors = Vec::new();
    let workload_of =
        |key: &Option<rollgit_render::ObjectKey>| -> Option<(WorkloadRef, Value, String)> {
            let key = key.as_ref()?;
            let o = r.objects.iter().find(|o| o.key == *key)?;
            Some((
                WorkloadRef {
                    api_version: o.object["apiVersion"].as_str()?.to_string(),
                    kind: o.object["kind"].as_str()?.to_string(),
                },
                o.object.clone(),
                o.object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
            ))
        };
    for a in &r.applications {
        let deadline = match a.annotations.get(PROGRESS_DEADLINE_ANNOTATION) {
            None => default_deadline,
            Some(v) => match crate::config::parse_duration(v) {
                Ok(d) if d >= Duration::from_secs(1) => d,
                Ok(_) => {
                    errors.push(format!(
                        "{}: metadata.annotations.{PROGRESS_DEADLINE_ANNOTATION}: {v:?} is shorter than 1s",
                        a.source
                    ));
                    continue;
                }
                Err(m) => {
                    errors.push(format!(
                        "{}: metadata.annotations.{PROGRESS_DEADLINE_ANNOTATION}: {m}",
                        a.source
                    ));
                    continue;
                }
            },
        };
        let deadline = i64::try_from(deadline.as_secs()).unwrap_or(i64::MAX);
        for c in &a.components {
            let Some(t) = &c.rollout else { continue };
            let Some((workload, _, ns)) = workload_of(&c.workload) else {
                continue;
            };
            let Some(target) = t.target_revision.clone().or(c.revision.clone()) else {
                continue;
            };
            out.push((
                ns,
                RolloutSpec {
                    app: app.into(),
                    application: Some(a.name.clone()),
                    component: c.name.clone(),
                    workload,
                    target_revision: target,
                    source_revision: None,
                    target_size: t.target_size,
                    rollout_plan: PlanSpec {
                        rollout_strategy: t.rollout_strategy.clone(),
                        rollout_batches: t
                            .rollout_batches
                            .iter()
                            .map(|b| BatchSpec {
                                replicas: b.clone(),
                            })
                            .collect(),
                        batch_partition: t.batch_partition,
                        paused: false,
                        max_unavailable: None,
                    },
                    progress_deadline_seconds: deadline,
                    commit: Some(commit.into()),
                    repo: None,
                    path: None,
                },
            ));
        }
        for ar in &r.app_rollouts {
            for rc in &ar.components {
                if out.iter().any(|(_, s)| s.component == rc.component) {
                    continue;
                }
                let Some(c) = a.components.iter().find(|c| c.name == rc.component) else {
                    continue;
                };
                let Some((workload, object, ns)) = workload_of(&c.workload) else {
                    continue;
                };
                let size = ar
                    .plan
                    .target_size
                    .or(object["spec"]["replicas"].as_i64())
                    .unwrap_or(1);
                out.push((
                    ns,
                    RolloutSpec {
                        app: app.into(),
                        application: Some(a.name.clone()),
                        component: rc.component.clone(),
                        workload,
                        target_revision: rc.target_revision.clone(),
                        source_revision: rc.source_revision.clone(),
                        target_size: size,
                        rollout_plan: PlanSpec {
                            rollout_strategy: ar.plan.rollout_strategy.clone(),
                            rollout_batches: ar
                                .plan
                                .rollout_batches
                                .iter()
                                .map(|b| BatchSpec {
                                    replicas: b.replicas.clone(),
                                })
                                .collect(),
                            batch_partition: ar.plan.batch_partition,
                            paused: ar.plan.paused,
                            max_unavailable: None,
                        },
                        progress_deadline_seconds: deadline,
                        commit: Some(commit.into()),
                        repo: None,
                        path: None,
                    },
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// A rollback the rollout stage performed, for the record stage (Git revert, history).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackEvent {
    /// Namespace of the Rollout.
    pub namespace: String,
    /// Rollout (component) name.
    pub rollout: String,
    /// The rollgit app.
    pub app: String,
    /// Component.
    pub component: String,
    /// The revision that failed.
    pub from: String,
    /// The revision rolled back to.
    pub to: String,
    /// Why.
    pub reason: String,
    /// The repository (rollgit's name for it) the app comes from.
    pub repo: Option<String>,
    /// The app's directory in the repository.
    pub path: Option<String>,
    /// The commit of the spec in effect when the rollback started.
    pub spec_commit: Option<String>,
    /// The commit whose spec asked for the failed revision.
    pub failed_commit: Option<String>,
    /// The commit whose spec last rolled out the revision rolled back to.
    pub good_commit: Option<String>,
}

/// Told about every rollback the rollout stage starts (the record stage writes it to Git).
pub trait RollbackHook: Send + Sync {
    /// A rollback started.
    fn rolled_back(&self, event: RollbackEvent);
}

/// The Rollout's status as written to the cluster: the core's [`State`] with Kubernetes-style
/// conditions, and the generation it describes.
pub fn status_of(state: &State, generation: i64) -> Value {
    let mut v = serde_json::to_value(state).unwrap_or_else(|_| json!({}));
    let conditions: Vec<Value> = state
        .conditions
        .iter()
        .map(|c| {
            json!({
                "type": c.kind,
                "status": if c.status { "True" } else { "False" },
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": rfc3339(c.at),
            })
        })
        .collect();
    v["conditions"] = json!(conditions);
    v["observedGeneration"] = json!(generation);
    if let Some(t) = state.batch_started_at {
        v["batchStartedAt"] = json!(rfc3339(t));
    }
    v["lastTargetRevision"] = json!(state.stable_revision);
    v
}

/// Reads a recorded status back into the core's [`State`] (missing fields take defaults).
pub fn state_of(status: &Value) -> State {
    let mut v = status.clone();
    if let Some(conds) = status["conditions"].as_array() {
        let back: Vec<Value> = conds
            .iter()
            .map(|c| {
                json!({
                    "type": c["type"],
                    "status": c["status"] == "True",
                    "reason": c["reason"].as_str().unwrap_or_default(),
                    "message": c["message"].as_str().unwrap_or_default(),
                    "at": c["lastTransitionTime"].as_str().map_or(0, parse_rfc3339),
                })
            })
            .collect();
        v["conditions"] = json!(back);
    }
    v["batchStartedAt"] = match status["batchStartedAt"].as_str() {
        Some(t) => json!(parse_rfc3339(t)),
        None => Value::Null,
    };
    if let Some(m) = v.as_object_mut() {
        m.remove("observedGeneration");
        m.remove("lastTargetRevision");
    }
    serde_json::from_value(v).unwrap_or_default()
}

fn rfc3339(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn parse_rfc3339(s: &str) -> i64 {
    s.parse::<k8s_openapi::jiff::Timestamp>()
        .map(|t| t.as_second())
        .unwrap_or(0)
}

fn now_unix() -> i64 {
    k8s_openapi::jiff::Timestamp::now().as_second()
}

type Key = (String, String);

/// Starts the rollout controller for one cluster. It runs until the process ends.
pub fn spawn(client: kube::Client, hook: Arc<dyn RollbackHook>) {
    let (tx, rx) = mpsc::unbounded_channel::<Key>();
    let ctl = Arc::new(Ctl {
        client,
        hook,
        tx,
        watched: Mutex::new(BTreeSet::new()),
        rollbacks_told: Mutex::new(BTreeSet::new()),
    });
    tokio::spawn(ctl.clone().watch_rollouts());
    tokio::spawn(ctl.run(rx));
}

struct Ctl {
    client: kube::Client,
    hook: Arc<dyn RollbackHook>,
    tx: mpsc::UnboundedSender<Key>,
    /// Workload kinds watched so far.
    watched: Mutex<BTreeSet<(String, String)>>,
    /// Rollbacks handed to the record stage: (namespace, name, failed revision, spec commit).
    rollbacks_told: Mutex<BTreeSet<(String, String, String, String)>>,
}

impl Ctl {
    async fn watch_rollouts(self: Arc<Self>) {
        let api: Api<DynamicObject> = Api::all_with(self.client.clone(), &rollout_resource());
        let mut stream = watcher(api, watcher::Config::default())
            .default_backoff()
            .boxed();
        while let Some(ev) = stream.next().await {
            let obj = match ev {
                Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
                Ok(_) => continue,
                Err(e) => {
                    tracing::debug!(error = %e, "rollout watch error; the watcher retries");
                    continue;
                }
            };
            let (Some(ns), Some(name)) =
                (obj.metadata.namespace.clone(), obj.metadata.name.clone())
            else {
                continue;
            };
            if let Ok(w) =
                serde_json::from_value::<WorkloadRef>(obj.data["spec"]["workload"].clone())
            {
                self.ensure_workload_watch(&w);
            }
            let _ = self.tx.send((ns, name));
        }
    }

    fn ensure_workload_watch(self: &Arc<Self>, w: &WorkloadRef) {
        let key = (w.api_version.clone(), w.kind.clone());
        {
            let Ok(mut watched) = self.watched.lock() else {
                return;
            };
            if !watched.insert(key) {
                return;
            }
        }
        let ar = w.resource();
        let client = self.client.clone();
        let tx = self.tx.clone();
        let kind = w.kind.clone();
        tokio::spawn(async move {
            let api: Api<DynamicObject> = Api::all_with(client, &ar);
            let cfg = watcher::Config::default().labels(ROLLOUT_LABEL);
            let mut stream = watcher(api, cfg).default_backoff().boxed();
            while let Some(ev) = stream.next().await {
                let obj = match ev {
                    Ok(watcher::Event::Apply(o))
                    | Ok(watcher::Event::InitApply(o))
                    | Ok(watcher::Event::Delete(o)) => o,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(%kind, error = %e, "workload watch error; the watcher retries");
                        continue;
                    }
                };
                let rollout = obj
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ROLLOUT_LABEL))
                    .cloned();
                if let (Some(ns), Some(r)) = (obj.metadata.namespace.clone(), rollout) {
                    let _ = tx.send((ns, r));
                }
            }
        });
    }

    async fn run(self: Arc<Self>, mut rx: mpsc::UnboundedReceiver<Key>) {
        let failures: Arc<Mutex<BTreeMap<Key, u32>>> = Arc::default();
        while let Some(first) = rx.recv().await {
            // Coalesce a burst: each Rollout once, distinct Rollouts concurrently.
            let mut keys = BTreeSet::from([first]);
            while let Ok(k) = rx.try_recv() {
                keys.insert(k);
            }
            let passes: Vec<_> = keys
                .into_iter()
                .map(|key| {
                    let ctl = self.clone();
                    let failures = failures.clone();
                    async move {
                        let result = ctl.pass(&key.0, &key.1).await;
                        let delay = match result {
                            Ok(requeue) => {
                                if let Ok(mut f) = failures.lock() {
                                    f.remove(&key);
                                }
                                requeue
                            }
                            Err(e) => {
                                let n = failures
                                    .lock()
                                    .map(|mut f| {
                                        let n = f.entry(key.clone()).or_insert(0);
                                        *n += 1;
                                        *n
                                    })
                                    .unwrap_or(1);
                                let backoff = Duration::from_millis(200)
                                    .saturating_mul(1 << n.min(8))
                                    .min(Duration::from_secs(30));
                                tracing::warn!(namespace = %key.0, rollout = %key.1, error = %format!("{e:#}"), retry_in = ?backoff, "rollout pass failed");
                                Some(backoff)
                            }
                        };
                        if let Some(d) = delay {
                            let tx = ctl.tx.clone();
                            tokio::spawn(async move {
                                tokio::time::sleep(d).await;
                                let _ = tx.send(key);
                            });
                        }
                    }
                })
                .collect();
            futures::stream::iter(passes)
                .buffer_unordered(16)
                .collect::<Vec<()>>()
                .await;
        }
    }

    /// One observe → decide → act → record pass. Returns when to look again without an event.
    async fn pass(&self, ns: &str, name: &str) -> Result<Option<Duration>, RolloutError> {
        let observe_err = |what: &str| {
            let (what, namespace, name) = (what.to_string(), ns.to_string(), name.to_string());
            move |source| RolloutError::Observe {
                what,
                namespace,
                name,
                source,
            }
        };
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &rollout_resource());
        let Some(obj) = api
            .get_opt(name)
            .await
            .map_err(observe_err("the Rollout"))?
        else {
            return Ok(None);
        };
        if obj.metadata.deletion_timestamp.is_some() {
            return Ok(None);
        }
        let generation = obj.metadata.generation.unwrap_or(0);
        let spec: RolloutSpec = match serde_json::from_value(obj.data["spec"].clone()) {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(namespace = ns, rollout = name, error = %e, "invalid Rollout spec");
                return Ok(None);
            }
        };
        let recorded = obj.data.get("status").cloned().unwrap_or(Value::Null);
        let state = state_of(&recorded);
        let core = spec.core();
        let now = now_unix();
        let deadline_near = state
            .batch_started_at
            .is_some_and(|t| now >= t + core.progress_deadline_secs);
        let obs = self
            .observe(
                ns,
                name,
                &spec,
                // The run's target (a rollback's differs from Git's), for its pods.
                state
                    .target_revision
                    .as_deref()
                    .unwrap_or(&spec.target_revision),
                deadline_near,
            )
            .await
            .map_err(observe_err("workloads"))?;
        let decision = batch::reconcile(&core, &state, &obs, now);
        for action in &decision.actions {
            self.act(ns, name, &obj, &spec, action).await?;
        }
        let mut status = status_of(&decision.state, generation);
        // `record` is the record stage's (Git write-back); it is dropped once a new commit
        // changed the spec.
        let mut recorded = recorded;
        let has_record = recorded.get("record").is_some_and(|r| !r.is_null());
        let stale_record = recorded
            .get("record")
            .is_some_and(|r| !r.is_null() && r["specCommit"].as_str() != spec.commit.as_deref());
        if let Some(m) = recorded.as_object_mut() {
            m.remove("record");
        }
        if stale_record {
            status["record"] = Value::Null;
        }
        if status != recorded {
            api.patch_status(
                name,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": status})),
            )
            .await
            .map_err(|source| RolloutError::Record {
                namespace: ns.into(),
                name: name.into(),
                source,
            })?;
            if decision.state.rolling_state != state.rolling_state {
                tracing::info!(namespace = ns, rollout = name, target = ?decision.state.target_revision, from = state.rolling_state.as_str(), to = decision.state.rolling_state.as_str(), batch = decision.state.current_batch, "rollout state");
                self.event(ns, name, &decision.state).await;
            }
        }
        // A rollback not yet written to Git (or whose record a newer commit made stale) goes
        // to the record stage: once per (rollback, commit), and again after a restart.
        if let Some(rb) = &decision.state.rollback
            && (!has_record || stale_record)
        {
            let key = (
                ns.to_string(),
                name.to_string(),
                rb.from.clone(),
                spec.commit.clone().unwrap_or_default(),
            );
            let first = self
                .rollbacks_told
                .lock()
                .map(|mut told| told.insert(key))
                .unwrap_or(false);
            if first {
                self.hook.rolled_back(RollbackEvent {
                    namespace: ns.into(),
                    rollout: name.into(),
                    app: spec.app.clone(),
                    component: spec.component.clone(),
                    from: rb.from.clone(),
                    to: rb.to.clone(),
                    reason: rb.reason.clone(),
                    repo: spec.repo.clone(),
                    path: spec.path.clone(),
                    spec_commit: spec.commit.clone(),
                    failed_commit: decision.state.failed_commit.clone(),
                    good_commit: decision.state.stable_commit.clone(),
                });
            }
        }
        Ok(decision
            .requeue_after
            .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(1).max(1))))
    }

    async fn observe(
        &self,
        ns: &str,
        name: &str,
        spec: &RolloutSpec,
        target: &str,
        with_pods: bool,
    ) -> Result<Observation, kube::Error> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &spec.workload.resource());
        let mut obs = Observation::default();
        let mut selectors = Vec::new();
        match spec.workload.style() {
            Style::Deployments => {
                let list = api
                    .list(&ListParams::default().labels(&format!("{ROLLOUT_LABEL}={name}")))
                    .await?;
                for w in list.items {
                    let v = serde_json::to_value(&w).unwrap_or_default();
                    let Some(rev) = v["metadata"]["labels"][REVISION_LABEL].as_str() else {
                        continue;
                    };
                    if rev == target {
                        selectors.push(v["spec"]["selector"]["matchLabels"].clone());
                    }
                    obs.workloads.push(workload_of(&spec.workload, rev, &v));
                }
            }
            Style::Partition => {
                if let Some(w) = api.get_opt(&spec.component).await? {
                    let v = serde_json::to_value(&w).unwrap_or_default();
                    let rev = v["metadata"]["annotations"][REVISION_ANNOTATION]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    selectors.push(v["spec"]["selector"]["matchLabels"].clone());
                    obs.workloads.push(workload_of(&spec.workload, &rev, &v));
                }
            }
        }
        if with_pods {
            let pods: Api<k8s_openapi::api::core::v1::Pod> =
                Api::namespaced(self.client.clone(), ns);
            for sel in selectors {
                let Some(m) = sel.as_object() else { continue };
                let labels: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                    .collect();
                let list = pods
                    .list(&ListParams::default().labels(&labels.join(",")))
                    .await?;
                for p in list.items {
                    let ready = p
                        .status
                        .as_ref()
                        .and_then(|s| s.conditions.as_ref())
                        .is_some_and(|c| {
                            c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                        });
                    if !ready {
                        obs.not_ready_pods.push(p.metadata.name.unwrap_or_default());
                    }
                }
            }
            obs.not_ready_pods.sort();
        }
        Ok(obs)
    }

    async fn act(
        &self,
        ns: &str,
        name: &str,
        owner: &DynamicObject,
        spec: &RolloutSpec,
        action: &Action,
    ) -> Result<(), RolloutError> {
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), ns, &spec.workload.resource());
        let act_err = |what: String| {
            let (namespace, name) = (ns.to_string(), name.to_string());
            move |source| RolloutError::Act {
                action: what,
                namespace,
                name,
                source,
            }
        };
        let workload_name = |revision: &str| match spec.workload.style() {
            Style::Deployments => revision.to_string(),
            Style::Partition => spec.component.clone(),
        };
        let merge = PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        match action {
            Action::ApplyWorkload {
                revision,
                replicas,
                partition,
            } => {
                let obj = self
                    .workload_from_revision(ns, name, owner, spec, revision, *replicas, *partition)
                    .await?;
                let wname = workload_name(revision);
                api.patch(
                    &wname,
                    &PatchParams::apply(FIELD_MANAGER).force(),
                    &Patch::Apply(&obj),
                )
                .await
                .map_err(act_err(format!(
                    "applying {} {wname} ({revision}, {replicas} replicas)",
                    spec.workload.kind
                )))?;
            }
            Action::Scale { revision, replicas } => {
                let wname = workload_name(revision);
                api.patch(
                    &wname,
                    &merge,
                    &Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await
                .map_err(act_err(format!(
                    "scaling {} {wname} to {replicas}",
                    spec.workload.kind
                )))?;
            }
            Action::SetPartition { partition } => {
                api.patch(
                    &spec.component,
                    &merge,
                    &Patch::Merge(spec.workload.partition_patch(*partition)),
                )
                .await
                .map_err(act_err(format!(
                    "setting the partition of {} {} to {partition}",
                    spec.workload.kind, spec.component
                )))?;
            }
            Action::Delete { revision } => {
                let wname = workload_name(revision);
                match api.delete(&wname, &DeleteParams::background()).await {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        return Err(act_err(format!("deleting {} {wname}", spec.workload.kind))(
                            e,
                        ));
                    }
                }
            }
            // Told to the record stage once the state is recorded (see `pass`).
            Action::Rollback { .. } => {}
        }
        Ok(())
    }

    /// The workload of `revision`, built from its ControllerRevision's data.
    #[allow(clippy::too_many_arguments)]
    async fn workload_from_revision(
        &self,
        ns: &str,
        name: &str,
        owner: &DynamicObject,
        spec: &RolloutSpec,
        revision: &str,
        replicas: i64,
        partition: Option<i64>,
    ) -> Result<Value, RolloutError> {
        let revs: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
            Api::namespaced(self.client.clone(), ns);
        let cr = revs
            .get_opt(revision)
            .await
            .map_err(|source| RolloutError::Observe {
                what: format!("ControllerRevision {revision}"),
                namespace: ns.into(),
                name: name.into(),
                source,
            })?
            .ok_or_else(|| RolloutError::RevisionMissing {
                namespace: ns.into(),
                revision: revision.into(),
            })?;
        let data = cr.data.map(|d| d.0).unwrap_or(Value::Null);
        if !data["spec"]["template"].is_object() {
            return Err(RolloutError::RevisionData {
                namespace: ns.into(),
                revision: revision.into(),
            });
        }
        Ok(build_workload(
            &data, spec, name, ns, owner, revision, replicas, partition,
        ))
    }

    async fn event(&self, ns: &str, name: &str, state: &State) {
        let (reason, type_, message) = match state.rolling_state {
            rollgit_core::kubevela::RollingState::RolloutSucceed => (
                "RolloutSucceed",
                "Normal",
                format!(
                    "{} runs {} replicas",
                    state.target_revision.as_deref().unwrap_or("-"),
                    state.rollout_target_size
                ),
            ),
            rollgit_core::kubevela::RollingState::RolloutFailed => (
                "RolloutFailed",
                "Warning",
                state
                    .condition("RolloutFailed")
                    .map(|c| c.message.clone())
                    .unwrap_or_default(),
            ),
            rollgit_core::kubevela::RollingState::RollingInBatches => (
                "RollingInBatches",
                "Normal",
                format!(
                    "rolling {} to {} replicas{}",
                    state.target_revision.as_deref().unwrap_or("-"),
                    state.rollout_target_size,
                    if state.rolling_back {
                        " (rollback)"
                    } else {
                        ""
                    }
                ),
            ),
            _ => return,
        };
        crate::record::emit_event(
            &self.client,
            crate::record::rollout_ref(ns, name),
            reason,
            type_,
            &message,
        )
        .await;
    }
}

fn int(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn workload_of(kind: &WorkloadRef, revision: &str, v: &Value) -> Workload {
    let spec_replicas = v["spec"]["replicas"].as_i64().unwrap_or(1);
    let status = &v["status"];
    let updated = int(&status["updatedReplicas"]);
    let ready = int(&status["readyReplicas"]);
    let status_replicas = int(&status["replicas"]);
    let updated_ready = match status.get("updatedReadyReplicas") {
        Some(n) => int(n),
        // Deployments and StatefulSets do not report it: ready pods that are all updated.
        None if updated >= status_replicas => ready,
        None => ready.min(updated),
    };
    Workload {
        revision: revision.to_string(),
        spec_replicas,
        status_replicas,
        ready_replicas: ready,
        updated_replicas: updated,
        updated_ready_replicas: updated_ready,
        partition: kind.partition_of(v, spec_replicas),
        observed: int(&status["observedGeneration"]) >= int(&v["metadata"]["generation"]),
    }
}

/// The workload object to apply for `revision`: the revision's data, named (Deployments: after
/// the revision, with the revision in its selector and pod labels), labelled for the Rollout,
/// owned by it, at `replicas` (and `partition`).
#[allow(clippy::too_many_arguments)]
fn build_workload(
    data: &Value,
    spec: &RolloutSpec,
    rollout: &str,
    ns: &str,
    owner: &DynamicObject,
    revision: &str,
    replicas: i64,
    partition: Option<i64>,
) -> Value {
    let mut w = data.clone();
    let style = spec.workload.style();
    let mut meta = serde_json::Map::new();
    let name = match style {
        Style::Deployments => revision.to_string(),
        Style::Partition => data["metadata"]["name"]
            .as_str()
            .unwrap_or(&spec.component)
            .to_string(),
    };
    meta.insert("name".into(), json!(name));
    meta.insert("namespace".into(), json!(ns));
    let mut labels = data["metadata"]["labels"].clone();
    if !labels.is_object() {
        labels = json!({});
    }
    labels[ROLLOUT_LABEL] = json!(rollout);
    labels[REVISION_LABEL] = json!(revision);
    labels[crate::apply::APP_LABEL] = json!(spec.app);
    meta.insert("labels".into(), labels);
    let mut annotations = data["metadata"]["annotations"].clone();
    if !annotations.is_object() {
        annotations = json!({});
    }
    annotations[REVISION_ANNOTATION] = json!(revision);
    meta.insert("annotations".into(), annotations);
    if let (Some(uid), Some(oname)) = (&owner.metadata.uid, &owner.metadata.name) {
        meta.insert(
            "ownerReferences".into(),
            json!([{
                "apiVersion": rollout_resource().api_version,
                "kind": KIND,
                "name": oname,
                "uid": uid,
            }]),
        );
    }
    w["metadata"] = Value::Object(meta);
    w["spec"]["replicas"] = json!(replicas);
    if style == Style::Deployments {
        w["spec"]["selector"]["matchLabels"][REVISION_LABEL] = json!(revision);
        w["spec"]["template"]["metadata"]["labels"][REVISION_LABEL] = json!(revision);
    }
    if let Some(p) = partition {
        if spec.workload.kind == "StatefulSet" {
            w["spec"]["updateStrategy"]["type"] = json!("RollingUpdate");
            w["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = json!(p);
        } else {
            w["spec"]["updateStrategy"]["partition"] = json!(p);
        }
    }
    if let Some(m) = w.as_object_mut() {
        m.remove("status");
    }
    w
}
