//! The multi-cluster workflow executor (seed 003): delivers an app's components to the
//! clusters of its workflow's deploy steps, in order, waiting for approval where a step says
//! `auto: false`.
//!
//! Each pass is observe → decide → act → record: the run's state (read back from the app's
//! status object after a restart, [`status`]) and what the targets of the current deploy step
//! report go to the pure `rollgit_core::workflow::reconcile`; a deploy is a server-side apply of
//! the step's objects to each target cluster (the target namespace created when missing, as
//! KubeVela does; prune against what the cluster's status records), then its health; the state
//! is recorded in `status.workflow` and `status.clusters` by the caller, once per pass.
//!
//! An unreachable cluster fails its step with the error (the other targets are applied all
//! the same) and the step is delivered again with backoff ([`WorkflowRun::retry_in`]).

pub mod status;

use crate::apply::drift::{Changed, change_mark, object_key};
use crate::apply::{Applier, ApplyOptions, ApplyOutcome};
use crate::k8s::crds::ClusterStatus;
use crate::plan::workflow::WorkflowPlan;
use futures::StreamExt;
use kube::api::{Api, PostParams};
use rollgit_core::workflow::{Observed, RunState, StepPhase, TargetResult, reconcile};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// One cluster of the fleet.
pub struct Member {
    /// Its client.
    pub client: kube::Client,
    /// Its applier (discovery cached).
    pub applier: Applier,
}

/// The clusters a workflow delivers to, by name.
#[derive(Clone, Default)]
pub struct Fleet {
    /// By name.
    pub members: Arc<BTreeMap<String, Arc<Member>>>,
}

impl Fleet {
    /// A fleet of these clients (name, client).
    pub fn new(clients: impl IntoIterator<Item = (String, kube::Client)>) -> Self {
        Self {
            members: Arc::new(
                clients
                    .into_iter()
                    .map(|(n, c)| {
                        let m = Member {
                            applier: Applier::new(c.clone()),
                            client: c,
                        };
                        (n, Arc::new(m))
                    })
                    .collect(),
            ),
        }
    }
}

impl Fleet {
    /// This fleet with cluster `name` reached through `client` instead (a tenant's
    /// impersonating client: what a workflow delivers there is applied as the repository's
    /// ServiceAccount, so the tenant's own RBAC decides).
    pub fn with_client(&self, name: &str, client: kube::Client) -> Self {
        let mut members: BTreeMap<String, Arc<Member>> = (*self.members).clone();
        members.insert(
            name.to_string(),
            Arc::new(Member {
                applier: Applier::new(client.clone()),
                client,
            }),
        );
        Self {
            members: Arc::new(members),
        }
    }
}

/// The shortest and longest wait before a failed deploy is tried again.
pub const RETRY_MIN: Duration = Duration::from_millis(500);
/// See [`RETRY_MIN`].
pub const RETRY_MAX: Duration = Duration::from_secs(10);
/// How often a deploy step waiting for its clusters' health looks again.
pub const HEALTH_POLL: Duration = Duration::from_millis(500);

/// A workflow run of one app: what it delivers and where it is.
#[derive(Debug, Clone)]
pub struct WorkflowRun {
    /// What the run delivers.
    pub plan: WorkflowPlan,
    /// The commit it delivers.
    pub commit: String,
    /// The state machine's state.
    pub state: RunState,
    /// What each cluster holds.
    pub clusters: BTreeMap<String, ClusterStatus>,
    /// The last `rollgit workflow` request handled, its refusal, and the last command done.
    pub last_request: Option<String>,
    /// Why the last request was refused.
    pub last_request_error: String,
    /// The last command carried out.
    pub last_command: Option<crate::k8s::crds::WorkflowCommandRecord>,
    /// When a timed suspend step resumes by itself (clock seconds).
    pub wake_at: Option<i64>,
    /// Failed deploys in a row (for the backoff).
    pub failures: u32,
    /// When each cluster was last applied this run's objects (in memory: a restarted daemon
    /// applies again once). While a step waits for a cluster's health, the cluster is only
    /// read, and applied again at most every [`REAPPLY_EVERY`] (someone may have deleted or
    /// changed what was delivered).
    pub applied_at: BTreeMap<String, (String, std::time::Instant)>,
    /// What each cluster's objects looked like when rollgit last applied them (by cluster,
    /// then [`object_key`]: the [`change_mark`] of each apply response), so that a watch event
    /// tells someone's change from the echo of rollgit's own apply (in memory: a restarted
    /// daemon's first pass applies again and fills it).
    pub marks: BTreeMap<String, BTreeMap<String, String>>,
}

/// How often a deploy step waiting for a cluster's health applies its objects there again.
pub const REAPPLY_EVERY: Duration = Duration::from_secs(10);

/// A step whose phase changed in a pass (for Events).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepChange {
    /// The step.
    pub step: String,
    /// Its new phase.
    pub phase: StepPhase,
    /// Its message.
    pub message: String,
}

impl WorkflowRun {
    /// When to look again without being told: a deploy step waiting for health soon, a failed
    /// one after a backoff; `None` when only a command, a commit or the clock can move it.
    pub fn retry_in(&self) -> Option<Duration> {
        if self.state.terminated || self.state.suspended {
            return None;
        }
        let current = self
            .state
            .steps
            .iter()
            .find(|s| !matches!(s.phase, StepPhase::Succeeded | StepPhase::Skipped))?;
        match current.phase {
            StepPhase::Running => Some(HEALTH_POLL),
            StepPhase::Failed => {
                let exp = 2u32.saturating_pow(self.failures.saturating_sub(1).min(8));
                Some((RETRY_MIN * exp).min(RETRY_MAX))
            }
            _ => None,
        }
    }

    /// One pass at `now` (clock seconds): decide, deliver, decide again, until the run waits.
    /// Returns the steps whose phase changed.
    pub async fn pass(&mut self, fleet: &Fleet, app: &str, now: i64) -> Vec<StepChange> {
        let steps = self.plan.core_steps();
        let before: Vec<(String, StepPhase)> = self
            .state
            .steps
            .iter()
            .map(|s| (s.name.clone(), s.phase))
            .collect();
        let mut observed = Observed::default();
        // Each step is delivered at most once per pass.
        for _ in 0..=steps.len() * 2 {
            let d = reconcile(&steps, &self.state, &observed, now);
            self.state = d.state;
            self.wake_at = d.wake_at;
            match d.deploy {
                Some((i, targets)) if observed.step != Some(i) => {
                    let results = self.deliver(fleet, app, i, &targets).await;
                    if results
                        .iter()
                        .any(|(_, r)| matches!(r, TargetResult::Failed(_)))
                    {
                        self.failures = self.failures.saturating_add(1);
                    } else {
                        self.failures = 0;
                    }
                    observed = Observed {
                        step: Some(i),
                        targets: results,
                    };
                }
                _ => break,
            }
        }
        self.state
            .steps
            .iter()
            .filter(|s| {
                before
                    .iter()
                    .find(|(n, _)| n == &s.name)
                    .is_none_or(|(_, p)| *p != s.phase)
            })
            .map(|s| StepChange {
                step: s.name.clone(),
                phase: s.phase,
                message: s.message.clone(),
            })
            .collect()
    }

    /// The objects of `changes` (a watch of cluster `cluster`) that someone changed or deleted
    /// since rollgit delivered them there (pure: echoes of rollgit's own applies, and objects
    /// it did not deliver, are not drift).
    pub fn drifted(&self, cluster: &str, changes: &[Changed]) -> Vec<String> {
        self.marks
            .get(cluster)
            .map_or_else(Vec::new, |marks| drifted(marks, changes))
    }

    /// The deploy step whose objects cluster `cluster` holds: the last succeeded deploy step
    /// that targets it (`None` while its delivery is not done: the pass applies it).
    pub fn delivered_by(&self, cluster: &str) -> Option<usize> {
        (0..self.plan.steps.len()).rev().find(|&i| {
            let step = &self.plan.steps[i];
            matches!(step.spec, rollgit_render::workflow::StepSpec::Deploy { .. })
                && step.targets.iter().any(|t| t.cluster == cluster)
                && self
                    .state
                    .steps
                    .get(i)
                    .is_some_and(|s| s.phase == StepPhase::Succeeded)
        })
    }

    /// Corrects drift in cluster `cluster`: when [`Self::drifted`] finds changed or deleted
    /// objects rollgit delivered there, applies that cluster's objects again (as its deploy
    /// step did). Returns what drifted (empty: nothing to correct). A run taken over from a
    /// previous daemon has no marks of a finished step's cluster: its first change there (the
    /// watch's first listing) applies the objects once, which is not counted as drift, and
    /// records them.
    pub async fn correct(
        &mut self,
        fleet: &Fleet,
        app: &str,
        cluster: &str,
        changes: &[Changed],
    ) -> Result<Vec<String>, String> {
        if self.state.terminated {
            return Ok(Vec::new());
        }
        let known = self.marks.contains_key(cluster);
        let drifted = self.drifted(cluster, changes);
        let Some(step) = self.delivered_by(cluster) else {
            return Ok(Vec::new());
        };
        if known && drifted.is_empty() {
            return Ok(drifted);
        }
        let member = fleet
            .members
            .get(cluster)
            .cloned()
            .ok_or_else(|| format!("cluster {cluster:?} is not in the fleet"))?;
        let objects = self.plan.objects_for(cluster, step);
        let prev = self.held(cluster);
        let d = deliver_to(&member, app, &objects, &prev).await?;
        self.marks.insert(cluster.to_string(), d.marks);
        if let Some(entry) = self.clusters.get_mut(cluster) {
            entry.inventory = d.inventory;
            entry.healthy = d.healthy;
            entry.message = d.message;
        }
        Ok(drifted)
    }

    /// What cluster `cluster` holds of the app (as its status records).
    fn held(&self, cluster: &str) -> crate::k8s::Inventory {
        self.clusters
            .get(cluster)
            .map(|c| c.inventory.clone())
            .unwrap_or_default()
    }

    /// Applies step `step`'s objects to each target (at most `parallelism` at once) and
    /// reports each target's result.
    async fn deliver(
        &mut self,
        fleet: &Fleet,
        app: &str,
        step: usize,
        targets: &[String],
    ) -> Vec<(String, TargetResult)> {
        let parallelism = match self.plan.steps.get(step).map(|s| &s.spec) {
            Some(rollgit_render::workflow::StepSpec::Deploy { parallelism, .. }) => {
                (*parallelism).max(1) as usize
            }
            _ => 1,
        };
        let jobs: Vec<_> = targets
            .iter()
            .map(|cluster| {
                let member = fleet.members.get(cluster).cloned();
                let objects = self.plan.objects_for(cluster, step);
                let prev = self.held(cluster);
                let key = format!("{}/{}", self.commit, self.plan.content_hash);
                let fresh = self.applied_at.get(cluster).is_some_and(|(k, at)| {
                    *k == key && at.elapsed() < REAPPLY_EVERY && !prev.is_empty()
                });
                let cluster = cluster.clone();
                async move {
                    let out = match member {
                        None => Err(format!("cluster {cluster:?} is not in the fleet")),
                        Some(m) if fresh => {
                            let health = m.applier.app_health(&objects).await;
                            Ok((
                                Delivered {
                                    inventory: prev,
                                    healthy: health.is_healthy(),
                                    message: health.message,
                                    marks: BTreeMap::new(),
                                },
                                false,
                            ))
                        }
                        Some(m) => deliver_to(&m, app, &objects, &prev)
                            .await
                            .map(|d| (d, true)),
                    };
                    (cluster, out)
                }
            })
            .collect();
        let results: Vec<(String, TargetOutcome)> = futures::stream::iter(jobs)
            .buffer_unordered(parallelism)
            .collect()
            .await;
        let mut out = Vec::new();
        for (cluster, r) in results {
            let entry = self
                .clusters
                .entry(cluster.clone())
                .or_insert_with(|| ClusterStatus {
                    name: cluster.clone(),
                    ..ClusterStatus::default()
                });
            match r {
                Ok((d, applied)) => {
                    if applied {
                        self.marks.insert(cluster.clone(), d.marks.clone());
                        self.applied_at.insert(
                            cluster.clone(),
                            (
                                format!("{}/{}", self.commit, self.plan.content_hash),
                                std::time::Instant::now(),
                            ),
                        );
                    }
                    entry.applied_commit = Some(self.commit.clone());
                    entry.publish_version = Some(self.plan.publish_version.clone());
                    entry.inventory = d.inventory;
                    entry.healthy = d.healthy;
                    entry.message = d.message.clone();
                    out.push((
                        cluster,
                        if d.healthy {
                            TargetResult::Healthy
                        } else {
                            TargetResult::Progressing(d.message)
                        },
                    ));
                }
                Err(e) => {
                    tracing::warn!(app, cluster = %cluster, error = %e, "workflow: delivering to the cluster failed; tried again with backoff");
                    entry.healthy = false;
                    entry.message = e.clone();
                    out.push((cluster, TargetResult::Failed(e)));
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// The keys of the objects of `changes` that `marks` (what rollgit last applied) holds and
/// that were deleted or changed since (pure).
pub fn drifted(marks: &BTreeMap<String, String>, changes: &[Changed]) -> Vec<String> {
    changes
        .iter()
        .filter_map(|c| {
            let key = object_key(&c.object);
            let mark = marks.get(&key)?;
            let deleted = c.deleted || c.object["metadata"]["deletionTimestamp"].is_string();
            (deleted || *mark != change_mark(&c.object)).then_some(key)
        })
        .collect()
}

/// What delivering to one target gave: what is there and whether it was applied this time
/// (or only read), or the error.
type TargetOutcome = Result<(Delivered, bool), String>;

struct Delivered {
    inventory: crate::k8s::Inventory,
    healthy: bool,
    message: String,
    /// The [`change_mark`] of each object applied, by [`object_key`].
    marks: BTreeMap<String, String>,
}

/// The namespaces of `objects` that the cluster lacks are created (as KubeVela creates the
/// target namespace), then the objects are applied as the app's, pruning what left it.
async fn deliver_to(
    m: &Member,
    app: &str,
    objects: &[Value],
    prev: &crate::k8s::Inventory,
) -> Result<Delivered, String> {
    let mut namespaces: Vec<&str> = objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .collect();
    namespaces.sort_unstable();
    namespaces.dedup();
    for ns in namespaces {
        ensure_namespace(&m.client, ns)
            .await
            .map_err(|e| format!("creating namespace {ns}: {}", crate::error_chain(&e)))?;
    }
    let opts = ApplyOptions::new();
    match m.applier.apply_app(app, objects, prev, &opts).await {
        Ok(ApplyOutcome::Applied(report)) if report.errors.is_empty() => {
            let health = m.applier.app_health(objects).await;
            Ok(Delivered {
                inventory: report.inventory,
                healthy: health.is_healthy(),
                message: health.message,
                marks: report
                    .live
                    .iter()
                    .map(|o| (object_key(o), change_mark(o)))
                    .collect(),
            })
        }
        Ok(ApplyOutcome::Applied(report)) => Err(report
            .errors
            .iter()
            .map(|(o, m)| format!("{o}: {m}"))
            .collect::<Vec<_>>()
            .join("; ")),
        Ok(ApplyOutcome::Refused(refused)) => Err(refused
            .iter()
            .map(|r| format!("{}: {}", r.object, r.message))
            .collect::<Vec<_>>()
            .join("; ")),
        Err(e) => Err(crate::error_chain(&e)),
    }
}

async fn ensure_namespace(client: &kube::Client, ns: &str) -> Result<(), kube::Error> {
    let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(client.clone());
    match api.get_opt(ns).await {
        Ok(Some(_)) => return Ok(()),
        Ok(None) => {}
        // A tenant's ServiceAccount may not read Namespaces: the apply finds out whether the
        // namespace is there (and whether it may write in it).
        Err(kube::Error::Api(s)) if s.code == 403 => return Ok(()),
        Err(e) => return Err(e),
    }
    let body = k8s_openapi::api::core::v1::Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(ns.to_string()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&PostParams::default(), &body).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn drift_is_a_change_or_a_deletion_of_what_rollgit_applied() {
        let deploy = |generation: i64| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "demo", "namespace": "demo", "generation": generation}})
        };
        let marks: BTreeMap<String, String> =
            [(object_key(&deploy(1)), change_mark(&deploy(1)))].into();
        let change = |object: Value, deleted: bool| Changed {
            app: "demo".into(),
            object,
            deleted,
        };
        let mut terminating = deploy(1);
        terminating["metadata"]["deletionTimestamp"] = json!("2026-12-04T00:00:00Z");
        let key = object_key(&deploy(1));
        let cases = [
            (
                "the echo of rollgit's apply",
                change(deploy(1), false),
                vec![],
            ),
            (
                "someone changed its spec",
                change(deploy(2), false),
                vec![key.clone()],
            ),
            ("deleted", change(deploy(1), true), vec![key.clone()]),
            (
                "being deleted",
                change(terminating, false),
                vec![key.clone()],
            ),
            (
                "an object rollgit did not deliver",
                change(
                    json!({"apiVersion": "v1", "kind": "ConfigMap",
                        "metadata": {"name": "other", "namespace": "demo"}}),
                    true,
                ),
                vec![],
            ),
        ];
        for (name, c, want) in cases {
            assert_eq!(drifted(&marks, &[c]), want, "{name}");
        }
    }
}
