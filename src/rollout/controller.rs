//! The rollout controller: `kube::runtime::Controller` over the `rollouts.rollgit.dev`
//! Rollouts, woken by their own changes, by changes of the workloads they own (watched per
//! kind, lazily, once a Rollout names the kind), by its requeue timers, and by jumps of the
//! injected clock.
//!
//! One reconcile is one pass:
//!
//! ```text
//! observe (GET the Rollout, LIST its workloads) → decide (rollgit_core::batch::reconcile)
//!         → act (server-side apply / scale / partition / delete) → record (status subresource)
//! ```
//!
//! The controller never runs two passes of one Rollout at once and folds a burst of wake-ups
//! into one pass. Errors follow their class ([`crate::ErrorClass`]): transient ones are retried
//! with a capped exponential backoff per Rollout (backon), a missing revision is looked at
//! again after a pause, and a status that does not parse waits for the object to change.

use super::status::{record_is_stale, record_spec_moved, state_of, status_of};
use super::workload::{self, REVISION_ANNOTATION, build_workload, workload_of};
use super::{RollbackEvent, RollbackHook, RolloutError};
use crate::clock::SharedClock;
use crate::k8s::crds::{Checked, RolloutSpec, WorkloadRef};
use crate::k8s::events::{Events, Severity, reference};
use crate::k8s::{API_VERSION, REVISION_LABEL, ROLLOUT_FIELD_MANAGER, ROLLOUT_LABEL, Rollout};
use futures::StreamExt;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use rollgit_core::batch::{self, Action as CoreAction, Observation, State, Style};
use rollgit_core::kubevela::{BatchRollingState, RollingState, RolloutStrategy};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Rollouts reconciled at once.
pub const CONCURRENCY: u16 = 16;
pub use super::retry::RETRY_MAX;
/// How long a pass waits before looking again for a component revision the daemon has not
/// applied yet.
pub const REVISION_RETRY: Duration = Duration::from_secs(2);

/// What every pass needs: the cluster, the clock, the event recorder and the record stage.
pub struct Ctx {
    /// The cluster.
    pub client: kube::Client,
    /// The time the core decides with.
    pub clock: SharedClock,
    /// Events on the Rollouts.
    pub events: Events,
    /// Told of every rollback (the record stage writes it to Git).
    pub hook: Arc<dyn RollbackHook>,
    /// Wakes the passes of Rollouts whose workloads changed.
    wake: mpsc::UnboundedSender<ObjectRef<Rollout>>,
    /// Workload kinds watched so far, and their watch tasks.
    watched: Mutex<HashMap<(String, String), tokio::task::AbortHandle>>,
    /// The namespaces watched.
    scope: crate::config::WatchScope,
    /// Rollbacks handed to the record stage: (namespace, name, failed revision, spec commit).
    rollbacks_told: Mutex<BTreeSet<(String, String, String, String)>>,
    /// The retry delays of failing Rollouts, and their repeated errors.
    failures: super::retry::Failures<ObjectRef<Rollout>>,
}

impl Ctx {
    /// Starts a watch on a workload kind (once): every change of a workload labelled
    /// `rollgit.dev/rollout` wakes its Rollout.
    fn ensure_workload_watch(&self, w: &WorkloadRef) {
        let key = (w.api_version.clone(), w.kind.clone());
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        if watched.contains_key(&key) {
            return;
        }
        let ar = workload::resource(w);
        let apis = self.scope.apis(|ns| match ns {
            Some(ns) => Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &ar),
            None => Api::all_with(self.client.clone(), &ar),
        });
        let wake = self.wake.clone();
        let kind = w.kind.clone();
        let task = tokio::spawn(async move {
            let cfg = watcher::Config::default().labels(ROLLOUT_LABEL);
            let mut stream = crate::k8s::scope::watch_all(apis, cfg);
            while let Some(ev) = stream.next().await {
                let obj = match ev {
                    Ok(watcher::Event::Apply(o))
                    | Ok(watcher::Event::InitApply(o))
                    | Ok(watcher::Event::Delete(o)) => o,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(%kind, error = %crate::error_chain(&e), "workload watch error; the watcher retries");
                        continue;
                    }
                };
                let rollout = obj
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(ROLLOUT_LABEL));
                if let (Some(ns), Some(r)) = (obj.metadata.namespace.as_deref(), rollout) {
                    tracing::trace!(%kind, workload = obj.metadata.name.as_deref().unwrap_or_default(), rollout = %r, "workload changed");
                    let _ = wake.send(ObjectRef::new(r).within(ns));
                }
            }
        });
        watched.insert(key, task.abort_handle());
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        let watched = self.watched.get_mut().unwrap_or_else(|p| p.into_inner());
        for (_, task) in watched.drain() {
            task.abort();
        }
    }
}

/// Runs the rollout controller of one cluster until `shutdown` resolves (then finishes the
/// passes in flight and returns).
pub async fn run(
    client: kube::Client,
    clock: SharedClock,
    hook: Arc<dyn RollbackHook>,
    target: crate::k8s::scope::Target,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let (wake, woken) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        events: Events::new(client.clone()),
        client: client.clone(),
        clock: clock.clone(),
        hook,
        wake,
        watched: Mutex::new(HashMap::new()),
        scope: target.namespaces.clone(),
        rollbacks_told: Mutex::new(BTreeSet::new()),
        failures: Default::default(),
    });
    let woken = futures::stream::unfold(
        woken,
        |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
    );
    let apis = target.namespaces.apis(|ns| match ns {
        Some(ns) => Api::<Rollout>::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    });
    let (store, objects) = crate::k8s::scope::reflect(apis, target.config(), ());
    let mut controller = Controller::for_stream(objects, store)
        .with_config(ControllerConfig::default().concurrency(CONCURRENCY))
        .trigger_backoff(crate::k8s::WatchBackoff::default())
        .reconcile_on(woken);
    if let Some(jumps) = clock.jumps() {
        controller = controller.reconcile_all_on(jumps);
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx.clone())
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %crate::error_chain(&e), "rollout controller");
            }
        })
        .await;
}

async fn reconcile(rollout: Arc<Rollout>, ctx: Arc<Ctx>) -> Result<Action, RolloutError> {
    let key = ObjectRef::from_obj(rollout.as_ref());
    let requeue = pass(&rollout, &ctx).await?;
    ctx.failures.succeeded(&key);
    Ok(match requeue {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

fn error_policy(rollout: Arc<Rollout>, error: &RolloutError, ctx: Arc<Ctx>) -> Action {
    let key = ObjectRef::from_obj(rollout.as_ref());
    let class = error.class();
    let text = crate::error_chain(error);
    let retry = ctx.failures.failed(&key, &text, class);
    if let Some(times) = retry.log {
        tracing::warn!(
            namespace = key.namespace.as_deref().unwrap_or_default(),
            rollout = %key.name,
            error = %text,
            ?class,
            times,
            "rollout pass failed"
        );
    }
    retry.action()
}

/// One observe → decide → act → record pass. Returns when to look again without an event.
async fn pass(cached: &Rollout, ctx: &Ctx) -> Result<Option<Duration>, RolloutError> {
    let ns = cached.metadata.namespace.clone().unwrap_or_default();
    let name = cached.metadata.name.clone().unwrap_or_default();
    let observe_err = |what: &str| {
        let (what, namespace, name) = (what.to_string(), ns.clone(), name.clone());
        move |source| RolloutError::Observe {
            what,
            namespace,
            name,
            source,
        }
    };
    // The cache may trail the status this controller wrote a moment ago: decide from the
    // live object, so a pass never acts on an older state.
    let api: Api<Rollout> = Api::namespaced(ctx.client.clone(), &ns);
    let Some(obj) = api
        .get_opt(&name)
        .await
        .map_err(observe_err("the Rollout"))?
    else {
        return Ok(None);
    };
    if obj.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let generation = obj.metadata.generation.unwrap_or(0);
    let spec = &obj.spec;
    ctx.ensure_workload_watch(&spec.workload);
    let recorded = match &obj.status {
        None => None,
        Some(Checked::Valid(s)) => Some(s.clone()),
        Some(Checked::Invalid { error, .. }) => {
            return Err(RolloutError::InvalidStatus {
                namespace: ns,
                name,
                message: error.clone(),
            });
        }
    };
    let state = match &recorded {
        None => State::default(),
        Some(s) => state_of(s).map_err(|message| RolloutError::InvalidStatus {
            namespace: ns.clone(),
            name: name.clone(),
            message,
        })?,
    };
    let core = core_spec(spec);
    let now = ctx.clock.now_unix();
    let deadline_near = state
        .batch_started_at
        .is_some_and(|t| now >= t + core.progress_deadline_secs);
    // The run's target (a rollback's differs from Git's), for its pods.
    let target = state
        .target_revision
        .as_deref()
        .unwrap_or(&spec.target_revision);
    let obs = observe(ctx, &ns, &name, spec, target, deadline_near)
        .await
        .map_err(observe_err("workloads"))?;
    let decision = batch::reconcile(&core, &state, &obs, now);
    tracing::debug!(namespace = %ns, rollout = %name, state = state.rolling_state.as_str(), batch_state = state.batch_rolling_state.as_str(), next = decision.state.batch_rolling_state.as_str(), actions = decision.actions.len(), requeue = ?decision.requeue_after, "rollout pass");
    for action in &decision.actions {
        act(ctx, &ns, &name, &obj, spec, action).await?;
    }

    // `record` is the record stage's (Git write-back); it is cleared once a new commit
    // changed the spec (the revert commit it wrote is not new) and that spec's rollout to
    // another revision succeeded.
    let old_record = recorded.as_ref().and_then(|s| s.record.clone());
    let stale_record = old_record
        .as_ref()
        .is_some_and(|r| record_is_stale(r, spec.commit.as_deref(), &decision.state));
    let mut status = status_of(&decision.state, generation);
    status.record = if stale_record {
        None
    } else {
        old_record.clone()
    };
    if recorded.as_ref() != Some(&status) {
        let mut body = serde_json::to_value(&status).map_err(|e| RolloutError::Serialize {
            namespace: ns.clone(),
            name: name.clone(),
            message: e.to_string(),
        })?;
        if !stale_record && let Some(m) = body.as_object_mut() {
            // Never overwrite what the record stage writes concurrently.
            m.remove("record");
        }
        api.patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": body })),
        )
        .await
        .map_err(|source| RolloutError::Record {
            namespace: ns.clone(),
            name: name.clone(),
            source,
        })?;
        // Counted as soon as the state is recorded (before the Event's round trip).
        observe_steps(ctx, &ns, &name, &state, &decision.state);
        if decision.state.rolling_state != state.rolling_state {
            tracing::info!(namespace = %ns, rollout = %name, target = ?decision.state.target_revision, from = state.rolling_state.as_str(), to = decision.state.rolling_state.as_str(), batch = decision.state.current_batch, "rollout state");
            publish_event(ctx, &ns, &name, &decision.state).await;
        }
    }
    // A rollback not yet written to Git (the record describes no rollback, or an earlier one:
    // another failed revision, or a spec a newer commit replaced) goes to the record stage:
    // once per (rollback, commit), and again after a restart.
    if let Some(rb) = &decision.state.rollback
        && old_record.as_ref().is_none_or(|r| {
            stale_record || r.from != rb.from || record_spec_moved(r, spec.commit.as_deref())
        })
    {
        let key = (
            ns.clone(),
            name.clone(),
            rb.from.clone(),
            spec.commit.clone().unwrap_or_default(),
        );
        let first = ctx
            .rollbacks_told
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key);
        tracing::debug!(namespace = %ns, rollout = %name, from = %rb.from, first, "rollback for the record stage");
        if first {
            ctx.hook.rolled_back(RollbackEvent {
                namespace: ns.clone(),
                rollout: name.clone(),
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
                target: super::RollbackTarget::RollgitRollout,
            });
        }
    }
    Ok(decision
        .requeue_after
        .map(|s| Duration::from_secs(u64::try_from(s).unwrap_or(1).max(1))))
}

/// Logs each batch that starts or completes, and tells the hook (metrics) of completed
/// batches and finished rollouts.
fn observe_steps(ctx: &Ctx, ns: &str, name: &str, before: &State, after: &State) {
    let batch_moved = after.current_batch != before.current_batch
        || after.batch_rolling_state != before.batch_rolling_state;
    if batch_moved && after.rolling_state == RollingState::RollingInBatches {
        tracing::info!(namespace = %ns, rollout = %name, target = ?after.target_revision, batch = after.current_batch + 1, batch_state = after.batch_rolling_state.as_str(), ready = after.upgraded_ready_replicas, rolling_back = after.rolling_back, "rollout batch");
    }
    let completed = before.rolling_state == RollingState::RollingInBatches
        && before.batch_rolling_state != BatchRollingState::BatchReady
        && before.batch_rolling_state != BatchRollingState::BatchVerifyFailed
        && after.failed_revision == before.failed_revision
        && (after.batch_rolling_state == BatchRollingState::BatchReady
            || after.current_batch != before.current_batch
            || after.rolling_state != RollingState::RollingInBatches);
    if completed && let Some(started) = before.batch_started_at {
        let now = ctx.clock.now().as_millisecond() as f64 / 1000.0;
        ctx.hook.step_done("batch", now - started as f64);
    }
    if after.failed_revision.is_some() && after.failed_revision != before.failed_revision {
        ctx.hook.rollout_finished("batch", ns, name, false);
    } else if after.rolling_state == RollingState::RolloutSucceed
        && before.rolling_state != RollingState::RolloutSucceed
        && !after.rolling_back
    {
        ctx.hook.rollout_finished("batch", ns, name, true);
    }
}

/// The pure core's view of a Rollout's spec.
pub fn core_spec(spec: &RolloutSpec) -> batch::Spec {
    batch::Spec {
        target_revision: spec.target_revision.clone(),
        source_revision: spec.source_revision.clone(),
        target_size: spec.target_size,
        batches: spec
            .rollout_plan
            .rollout_batches
            .iter()
            .map(|b| b.replicas.clone())
            .collect(),
        batch_partition: spec.rollout_plan.batch_partition,
        strategy: RolloutStrategy::parse(spec.rollout_plan.rollout_strategy.as_deref())
            .unwrap_or_default(),
        paused: spec.rollout_plan.paused,
        max_unavailable: spec.rollout_plan.max_unavailable.clone(),
        progress_deadline_secs: spec.progress_deadline_seconds.max(1),
        style: workload::style(&spec.workload),
        commit: spec.commit.clone(),
    }
}

async fn observe(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    spec: &RolloutSpec,
    target: &str,
    with_pods: bool,
) -> Result<Observation, kube::Error> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &workload::resource(&spec.workload));
    let mut obs = Observation::default();
    let mut selectors = Vec::new();
    match workload::style(&spec.workload) {
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
        let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(ctx.client.clone(), ns);
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
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
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
    ctx: &Ctx,
    ns: &str,
    name: &str,
    owner: &Rollout,
    spec: &RolloutSpec,
    action: &CoreAction,
) -> Result<(), RolloutError> {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), ns, &workload::resource(&spec.workload));
    let act_err = |what: String| {
        let (namespace, name) = (ns.to_string(), name.to_string());
        move |source| RolloutError::Act {
            action: what,
            namespace,
            name,
            source,
        }
    };
    let workload_name = |revision: &str| match workload::style(&spec.workload) {
        Style::Deployments => revision.to_string(),
        Style::Partition => spec.component.clone(),
    };
    let merge = PatchParams {
        field_manager: Some(ROLLOUT_FIELD_MANAGER.into()),
        ..Default::default()
    };
    match action {
        CoreAction::ApplyWorkload {
            revision,
            replicas,
            partition,
        } => {
            let obj = workload_from_revision(ctx, ns, name, owner, revision, *replicas, *partition)
                .await?;
            let wname = workload_name(revision);
            api.patch(
                &wname,
                &PatchParams::apply(ROLLOUT_FIELD_MANAGER).force(),
                &Patch::Apply(&obj),
            )
            .await
            .map_err(act_err(format!(
                "applying {} {wname} ({revision}, {replicas} replicas)",
                spec.workload.kind
            )))?;
        }
        CoreAction::Scale { revision, replicas } => {
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
        CoreAction::SetPartition { partition } => {
            api.patch(
                &spec.component,
                &merge,
                &Patch::Merge(workload::partition_patch(&spec.workload, *partition)),
            )
            .await
            .map_err(act_err(format!(
                "setting the partition of {} {} to {partition}",
                spec.workload.kind, spec.component
            )))?;
        }
        CoreAction::Delete { revision } => {
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
        CoreAction::Rollback { .. } => {}
    }
    Ok(())
}

/// The workload of `revision`, built from its ControllerRevision's data.
async fn workload_from_revision(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    owner: &Rollout,
    revision: &str,
    replicas: i64,
    partition: Option<i64>,
) -> Result<Value, RolloutError> {
    let revs: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(ctx.client.clone(), ns);
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
        &data,
        &owner.spec,
        name,
        ns,
        owner,
        revision,
        replicas,
        partition,
    ))
}

async fn publish_event(ctx: &Ctx, ns: &str, name: &str, state: &State) {
    let (reason, severity, message) = match state.rolling_state {
        RollingState::RolloutSucceed => (
            "RolloutSucceed",
            Severity::Normal,
            format!(
                "{} runs {} replicas",
                state.target_revision.as_deref().unwrap_or("-"),
                state.rollout_target_size
            ),
        ),
        RollingState::RolloutFailed => (
            "RolloutFailed",
            Severity::Warning,
            state
                .condition("RolloutFailed")
                .map(|c| c.message.clone())
                .unwrap_or_default(),
        ),
        RollingState::RollingInBatches => (
            "RollingInBatches",
            Severity::Normal,
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
    ctx.events
        .publish(
            &reference(API_VERSION, "Rollout", Some(ns), name),
            severity,
            reason,
            "Rollout",
            &message,
        )
        .await;
}
