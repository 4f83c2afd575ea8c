//! The Argo Rollouts controller: `kube::runtime::Controller` over the `argoproj.io` Rollouts,
//! woken by their changes (spec, status, the gates), by changes of the ReplicaSets they control,
//! by changes of the Deployments their `workloadRef`s name (watched lazily, once one is named),
//! by its timers (a timed pause's end, a progress or scale-down deadline) and by jumps of the
//! injected clock.
//!
//! One reconcile is one pass:
//!
//! ```text
//! observe (GET the Rollout; read it with rollgit_render's Argo parser; its template or
//!          workloadRef Deployment; LIST its ReplicaSets; GET its Services)
//!   → decide (rollgit_core::argo_exec::reconcile, with the clock's now)
//!   → act (create/scale ReplicaSets, Service selectors, traffic weights, the Deployment)
//!   → record (one merge patch of the status subresource, guarded by resourceVersion; the
//!             Git bookkeeping annotations; Events; an abort to the record stage)
//! ```
//!
//! Nothing happens while Argo's own controller runs the cluster's Rollouts ([`Detector`]). A
//! Rollout rollgit cannot run (it does not read, or uses what rollgit does not implement) gets
//! Argo's `InvalidSpec` condition and is left alone until it changes.

use super::status::{Extras, merge_patch, selector_string, status_json, status_of};
use super::traffic::{self, Route};
use super::{
    ArgoExecError, CANARY_COMMIT_ANNOTATION, COMMIT_ANNOTATION, CRD_NAME,
    DESIRED_REPLICAS_ANNOTATION, Detector, FIELD_MANAGER, HASH_LABEL, PATH_ANNOTATION,
    RECORD_ANNOTATION, REVISION_ANNOTATION, SCALE_DOWN_DEADLINE_ANNOTATION,
    STABLE_COMMIT_ANNOTATION, replica_set_resource, replicasets, resource,
};
use crate::clock::SharedClock;
use crate::config::ArgoController;
use crate::k8s::events::{Events, Severity, reference};
use crate::k8s::{APP_LABEL, REPO_LABEL};
use crate::rollout::{RollbackEvent, RollbackHook, RollbackTarget};
use futures::StreamExt;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::wait::{await_condition, conditions};
use kube::runtime::{WatchStreamExt, watcher};
use rollgit_core::argo_exec::{self, Action as CoreAction, ExecSpec, ObservedRs, WorkloadObs};
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Rollouts reconciled at once.
pub const CONCURRENCY: u16 = 16;

type Key = ObjectRef<DynamicObject>;

/// `(namespace, Deployment)` → the Rollouts whose `workloadRef` names it.
type WorkloadRefs = Arc<Mutex<HashMap<(String, String), BTreeSet<String>>>>;

/// What every pass needs.
pub struct Ctx {
    /// The cluster.
    pub client: kube::Client,
    /// The time the core decides with.
    pub clock: SharedClock,
    /// Events on the Rollouts.
    pub events: Events,
    /// Told of every abort (the record stage writes it to Git).
    pub hook: Arc<dyn RollbackHook>,
    /// Whether Argo's own controller runs the Rollouts.
    pub detector: Detector,
    wake: mpsc::UnboundedSender<Key>,
    /// `workloadRef` Deployments → the Rollouts naming them, and the watch task.
    workload_refs: WorkloadRefs,
    deployment_watch: Mutex<Option<tokio::task::AbortHandle>>,
    /// The namespaces watched.
    scope: crate::config::WatchScope,
    /// Aborts handed to the record stage: (namespace, name, canary hash).
    told: Mutex<BTreeSet<(String, String, String)>>,
    failures: crate::rollout::retry::Failures<Key>,
}

impl Ctx {
    /// Remembers that Rollout `ns/name` runs the template of Deployment `ns/deployment`, and
    /// watches Deployments (once) so that a change of it wakes the Rollout.
    fn note_workload_ref(&self, ns: &str, name: &str, deployment: &str) {
        self.workload_refs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry((ns.to_string(), deployment.to_string()))
            .or_default()
            .insert(name.to_string());
        let mut watch = self
            .deployment_watch
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if watch.is_some() {
            return;
        }
        let apis = self.scope.apis(|ns| match ns {
            Some(ns) => {
                Api::<k8s_openapi::api::apps::v1::Deployment>::namespaced(self.client.clone(), ns)
            }
            None => Api::all(self.client.clone()),
        });
        let refs = self.workload_refs.clone();
        let wake = self.wake.clone();
        let task = tokio::spawn(async move {
            let mut stream = crate::k8s::scope::watch_all(apis, watcher::Config::default());
            while let Some(ev) = stream.next().await {
                let d = match ev {
                    Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::Delete(d)) => d,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(error = %crate::error_chain(&e), "Deployment watch error; the watcher retries");
                        continue;
                    }
                };
                let (Some(ns), Some(n)) = (d.metadata.namespace, d.metadata.name) else {
                    continue;
                };
                let names = refs
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&(ns.clone(), n))
                    .cloned()
                    .unwrap_or_default();
                for r in names {
                    let _ = wake.send(ObjectRef::new_with(&r, resource()).within(&ns));
                }
            }
        });
        *watch = Some(task.abort_handle());
    }
}

impl Drop for Ctx {
    fn drop(&mut self) {
        if let Some(t) = self
            .deployment_watch
            .get_mut()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            t.abort();
        }
    }
}

/// Runs the Argo Rollouts controller of one cluster until `shutdown` resolves: it waits for
/// the `rollouts.argoproj.io` CRD to be served (the daemon installs it when an app needs it),
/// then reconciles every Argo Rollout.
pub async fn run<S>(
    client: kube::Client,
    clock: SharedClock,
    hook: Arc<dyn RollbackHook>,
    configured: ArgoController,
    target: crate::k8s::scope::Target,
    shutdown: S,
) where
    S: Future<Output = ()> + Clone + Send + Sync + 'static,
{
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    // The API server may come and go while the CRD is awaited: a failed watch is retried
    // (at most every 3 s, as every watch of rollgit's), never given up.
    let mut failures = 0u32;
    loop {
        tokio::select! {
            served = await_condition(crds.clone(), CRD_NAME, conditions::is_crd_established()) => {
                match served {
                    Ok(_) => break,
                    Err(e) => {
                        failures = failures.saturating_add(1);
                        if failures.is_power_of_two() {
                            tracing::warn!(error = %crate::error_chain(&e), failures, "watching for the Argo Rollouts CRD failed; retrying");
                        }
                    }
                }
            }
            () = shutdown.clone() => return,
        }
        let pause = Duration::from_millis(100u64 << failures.min(5)).min(Duration::from_secs(3));
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = shutdown.clone() => return,
        }
    }
    tracing::info!("running Argo Rollouts canaries");
    let (wake, woken) = mpsc::unbounded_channel();
    let ctx = Arc::new(Ctx {
        events: Events::new(client.clone()),
        detector: Detector::new(client.clone(), configured, target.namespaces.clone()),
        client: client.clone(),
        clock: clock.clone(),
        hook,
        wake,
        workload_refs: Arc::default(),
        deployment_watch: Mutex::new(None),
        scope: target.namespaces.clone(),
        told: Mutex::new(BTreeSet::new()),
        failures: Default::default(),
    });
    let woken = futures::stream::unfold(
        woken,
        |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
    );
    let ar = resource();
    let rs_ar = replica_set_resource();
    let in_scope = |r: &kube::core::ApiResource| {
        target.namespaces.apis(|ns| match ns {
            Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, r),
            None => Api::all_with(client.clone(), r),
        })
    };
    let (store, objects) = crate::k8s::scope::reflect(in_scope(&ar), target.config(), ar.clone());
    let replica_sets = crate::k8s::scope::watch_all(
        in_scope(&rs_ar),
        watcher::Config::default().labels(HASH_LABEL),
    )
    .applied_objects();
    let mut controller = Controller::for_stream_with(objects, store, ar)
        .owns_stream_with(replica_sets, rs_ar)
        .with_config(ControllerConfig::default().concurrency(CONCURRENCY))
        .trigger_backoff(crate::k8s::WatchBackoff::default())
        .reconcile_on(woken);
    if let Some(jumps) = clock.jumps() {
        controller = controller.reconcile_all_on(jumps);
    }
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %crate::error_chain(&e), "Argo Rollouts controller");
            }
        })
        .await;
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, ArgoExecError> {
    let key = ObjectRef::from_obj_with(obj.as_ref(), resource());
    let requeue = match pass(&obj, &ctx).await {
        Ok(r) => r,
        Err(e) => {
            // What only a change of the Rollout or of what it names can fix is the Rollout's
            // `InvalidSpec`, as Argo records a workloadRef or router it cannot resolve: the
            // status and the app's health say it, not only the log.
            if let ArgoExecError::Template { message, .. }
            | ArgoExecError::Traffic { message, .. } = &e
            {
                record_invalid(&obj, &ctx, message).await;
            }
            return Err(e);
        }
    };
    ctx.failures.succeeded(&key);
    Ok(match requeue {
        Some(d) => Action::requeue(d),
        None => Action::await_change(),
    })
}

fn error_policy(obj: Arc<DynamicObject>, error: &ArgoExecError, ctx: Arc<Ctx>) -> Action {
    let key = ObjectRef::from_obj_with(obj.as_ref(), resource());
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
            "Argo Rollout pass failed"
        );
    }
    retry.action()
}

/// One pass. Returns when to look again without an event.
async fn pass(cached: &DynamicObject, ctx: &Ctx) -> Result<Option<Duration>, ArgoExecError> {
    let ns = cached.metadata.namespace.clone().unwrap_or_default();
    let name = cached.metadata.name.clone().unwrap_or_default();
    let observe = |what: &str| {
        let (what, namespace, name) = (what.to_string(), ns.clone(), name.clone());
        move |source| ArgoExecError::Observe {
            what,
            namespace,
            name,
            source,
        }
    };
    if ctx.detector.external().await {
        return Ok(None);
    }
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &resource());
    let Some(live) = api.get_opt(&name).await.map_err(observe("the Rollout"))? else {
        return Ok(None);
    };
    if live.metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let obj = serde_json::to_value(&live).unwrap_or_default();
    let now = ctx.clock.now_unix();
    tracing::debug!(namespace = %ns, rollout = %name, now, "Argo Rollout pass");
    let generation = live.metadata.generation.unwrap_or(0);
    let live_status = obj["status"].clone();
    let prev = status_of(&live_status).map_err(|message| ArgoExecError::InvalidStatus {
        namespace: ns.clone(),
        name: name.clone(),
        message,
    })?;
    let resource_version = live.metadata.resource_version.clone().unwrap_or_default();

    // The spec, read by the one Argo parser.
    let what = format!("rollouts.argoproj.io/{ns}/{name}");
    let rollout = match rollgit_render::read_argo_object(&what, &obj) {
        Ok(r) if r.unsupported.is_empty() => r,
        Ok(r) => {
            let message = r
                .unsupported
                .iter()
                .map(|e| e.message.trim_start_matches("argo: ").to_string())
                .collect::<Vec<_>>()
                .join("; ");
            return invalid(
                ctx, &api, &ns, &name, &obj, &prev, &message, generation, now,
            )
            .await;
        }
        Err(errors) => {
            let message = errors
                .0
                .iter()
                .map(|e| e.message.trim_start_matches("argo: ").to_string())
                .collect::<Vec<_>>()
                .join("; ");
            return invalid(
                ctx, &api, &ns, &name, &obj, &prev, &message, generation, now,
            )
            .await;
        }
    };

    // The pod template: the Rollout's, or its workloadRef Deployment's.
    let (template, selector, workload, workload_generation) = match &rollout.workload_ref {
        None => (
            obj["spec"]["template"].clone(),
            obj["spec"]["selector"].clone(),
            None,
            None,
        ),
        Some(w) => {
            ctx.note_workload_ref(&ns, &name, &w.name);
            let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
                Api::namespaced(ctx.client.clone(), &ns);
            let d = deployments
                .get_opt(&w.name)
                .await
                .map_err(observe("the workloadRef Deployment"))?
                .ok_or_else(|| ArgoExecError::Template {
                    namespace: ns.clone(),
                    name: name.clone(),
                    message: format!("the workloadRef Deployment {} does not exist (yet)", w.name),
                })?;
            let dv = serde_json::to_value(&d).unwrap_or_default();
            let selector = match &obj["spec"]["selector"] {
                Value::Null => dv["spec"]["selector"].clone(),
                s => s.clone(),
            };
            (
                dv["spec"]["template"].clone(),
                selector,
                Some(WorkloadObs {
                    scale_down: w.scale_down,
                    replicas: dv["spec"]["replicas"].as_i64().unwrap_or(1),
                }),
                d.metadata.generation,
            )
        }
    };
    let pod_hash = replicasets::pod_template_hash(&template);
    let step_hash = replicasets::hash_of(&obj["spec"]["strategy"]["canary"]["steps"]);

    // The ReplicaSets it controls.
    let uid = live.metadata.uid.clone().unwrap_or_default();
    let rs_api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ns, &replica_set_resource());
    let listed = rs_api
        .list(&ListParams::default().labels(HASH_LABEL))
        .await
        .map_err(observe("ReplicaSets"))?;
    let mut rss: Vec<ObservedRs> = Vec::new();
    for rs in &listed.items {
        let v = serde_json::to_value(rs).unwrap_or_default();
        if rs.metadata.deletion_timestamp.is_none()
            && replicasets::controlled_by(&v, &uid)
            && let Some(o) = replicasets::observe(&v)
        {
            rss.push(o);
        }
    }

    // Its Services; those of the app get Git's selector (the executor owns it).
    let git_selectors = traffic::git_selectors(&obj);
    for (svc, git) in &git_selectors {
        let (same, hash) = traffic::base_selector_is(&ctx.client, &ns, svc, git)
            .await
            .map_err(observe(&format!("Service {svc}")))?;
        if !same {
            traffic::set_service_selector(&ctx.client, &ns, &name, svc, Some(git), hash.as_deref())
                .await
                .map_err(|e| traffic_error(&ns, &name, e))?;
        }
    }
    let mut stable_service = None;
    let mut canary_service = None;
    for (slot, svc) in [
        (&mut stable_service, &rollout.routing.stable_service),
        (&mut canary_service, &rollout.routing.canary_service),
    ] {
        if let Some(s) = svc {
            *slot = Some(
                traffic::observe_service(&ctx.client, &ns, s)
                    .await
                    .map_err(observe(&format!("Service {s}")))?
                    .ok_or_else(|| ArgoExecError::Template {
                        namespace: ns.clone(),
                        name: name.clone(),
                        message: format!("the Service {s} does not exist (yet)"),
                    })?,
            );
        }
    }

    let spec = ExecSpec {
        name: name.clone(),
        canary: rollout.canary.clone(),
        paused: rollout.paused,
        progress_deadline_seconds: rollout
            .progress_deadline_seconds
            .unwrap_or(argo_exec::DEFAULT_PROGRESS_DEADLINE_SECONDS),
        progress_deadline_abort: rollout.progress_deadline_abort,
        pod_hash: pod_hash.clone(),
        step_hash,
        generation,
        revision_history_limit: rollout
            .revision_history_limit
            .and_then(|l| usize::try_from(l).ok())
            .unwrap_or(argo_exec::DEFAULT_REVISION_HISTORY_LIMIT),
        stable_service,
        canary_service,
        workload,
    };
    let decision = argo_exec::reconcile(&spec, &prev, &rss, now);

    // Act.
    let acts = Acts {
        ctx,
        ns: &ns,
        name: &name,
        obj: &obj,
        template: &template,
        selector: &selector,
        route: Route {
            rollout: &obj,
            routing: &rollout.routing,
            max_weight: rollout.canary.max_weight,
        },
        workload_name: rollout.workload_ref.as_ref().map(|w| w.name.as_str()),
    };
    for a in &decision.actions {
        acts.act(a).await?;
    }

    // Record.
    let extras = Extras {
        selector: selector_string(&selector),
        workload_generation,
    };
    let new_status = status_json(&live_status, &decision.status, &extras);
    if let Some(patch) = merge_patch(&live_status, &new_status) {
        let body = json!({
            "metadata": {"resourceVersion": resource_version},
            "status": patch,
        });
        api.patch_status(
            &name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&body),
        )
        .await
        .map_err(|source| ArgoExecError::Record {
            namespace: ns.clone(),
            name: name.clone(),
            source,
        })?;
        if decision.status.phase != prev.phase
            || decision.status.current_step_index != prev.current_step_index
        {
            tracing::info!(namespace = %ns, rollout = %name, phase = decision.status.phase.as_str(), step = ?decision.status.current_step_index, stable = %decision.status.stable_rs, current = %decision.status.current_pod_hash, "Argo Rollout");
            if decision.status.phase != prev.phase {
                match decision.status.phase {
                    argo_exec::Phase::Healthy => {
                        ctx.hook.rollout_finished("argo", &ns, &name, true)
                    }
                    argo_exec::Phase::Degraded => {
                        ctx.hook.rollout_finished("argo", &ns, &name, false)
                    }
                    _ => {}
                }
            }
        }
    }
    for e in &decision.events {
        let severity = if e.warning {
            Severity::Warning
        } else {
            Severity::Normal
        };
        ctx.events
            .publish(
                &reference(super::API_VERSION, super::KIND, Some(&ns), &name),
                severity,
                &e.reason,
                "Rollout",
                &e.message,
            )
            .await;
    }
    bookkeeping(ctx, &api, &ns, &name, &obj, &prev, &decision.status).await?;
    if let Some(aborted) = &decision.aborted {
        tell_abort(ctx, &ns, &name, &obj, aborted);
    }
    Ok(decision
        .requeue_at
        .map(|at| Duration::from_secs(u64::try_from(at - now).unwrap_or(1).max(1))))
}

/// Records `InvalidSpec: message` in the status of the Rollout `cached` names (best effort:
/// a failure is logged, the pass's error is retried anyway).
async fn record_invalid(cached: &DynamicObject, ctx: &Ctx, message: &str) {
    let ns = cached.metadata.namespace.clone().unwrap_or_default();
    let name = cached.metadata.name.clone().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &resource());
    let live = match api.get_opt(&name).await {
        Ok(Some(live)) => live,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(namespace = %ns, rollout = %name, error = %crate::error_chain(&e), "reading the Argo Rollout to record InvalidSpec failed");
            return;
        }
    };
    let obj = serde_json::to_value(&live).unwrap_or_default();
    let Ok(prev) = status_of(&obj["status"]) else {
        return;
    };
    let generation = live.metadata.generation.unwrap_or(0);
    let now = ctx.clock.now_unix();
    if let Err(e) = invalid(ctx, &api, &ns, &name, &obj, &prev, message, generation, now).await {
        tracing::warn!(namespace = %ns, rollout = %name, error = %crate::error_chain(&e), "recording InvalidSpec failed");
    }
}

/// Records Argo's `InvalidSpec` for a Rollout rollgit cannot run, and leaves it alone.
#[allow(clippy::too_many_arguments)]
async fn invalid(
    ctx: &Ctx,
    api: &Api<DynamicObject>,
    ns: &str,
    name: &str,
    obj: &Value,
    prev: &argo_exec::Status,
    message: &str,
    generation: i64,
    now: i64,
) -> Result<Option<Duration>, ArgoExecError> {
    let status = argo_exec::invalid_spec(prev, message, generation, now);
    let live = &obj["status"];
    let extras = Extras {
        selector: selector_string(&obj["spec"]["selector"]),
        workload_generation: None,
    };
    let new = status_json(live, &status, &extras);
    if let Some(patch) = merge_patch(live, &new) {
        tracing::warn!(namespace = %ns, rollout = %name, "rollgit does not run this Argo Rollout: {message}");
        api.patch_status(
            name,
            &PatchParams {
                field_manager: Some(FIELD_MANAGER.into()),
                ..Default::default()
            },
            &Patch::Merge(&json!({"status": patch})),
        )
        .await
        .map_err(|source| ArgoExecError::Record {
            namespace: ns.to_string(),
            name: name.to_string(),
            source,
        })?;
        ctx.events
            .publish(
                &reference(super::API_VERSION, super::KIND, Some(ns), name),
                Severity::Warning,
                "InvalidSpec",
                "Rollout",
                message,
            )
            .await;
    }
    Ok(None)
}

/// The Git bookkeeping of a Rollout: which commit brought the current template and which
/// commit's template is stable (annotations, so a restarted rollgit knows them).
async fn bookkeeping(
    ctx: &Ctx,
    api: &Api<DynamicObject>,
    ns: &str,
    name: &str,
    obj: &Value,
    prev: &argo_exec::Status,
    next: &argo_exec::Status,
) -> Result<(), ArgoExecError> {
    let annotations = &obj["metadata"]["annotations"];
    let commit = annotations[COMMIT_ANNOTATION].as_str();
    let mut canary_commit = annotations[CANARY_COMMIT_ANNOTATION]
        .as_str()
        .map(str::to_string);
    let mut stable_commit = annotations[STABLE_COMMIT_ANNOTATION]
        .as_str()
        .map(str::to_string);
    if prev.current_pod_hash != next.current_pod_hash || canary_commit.is_none() {
        canary_commit = commit.map(str::to_string);
    }
    if !next.stable_rs.is_empty()
        && next.stable_rs == next.current_pod_hash
        && (prev.stable_rs != next.stable_rs || stable_commit.is_none())
    {
        stable_commit = canary_commit.clone();
    }
    let changed = annotations[CANARY_COMMIT_ANNOTATION].as_str() != canary_commit.as_deref()
        || annotations[STABLE_COMMIT_ANNOTATION].as_str() != stable_commit.as_deref();
    if !changed {
        return Ok(());
    }
    let patch = json!({"metadata": {"annotations": {
        CANARY_COMMIT_ANNOTATION: canary_commit,
        STABLE_COMMIT_ANNOTATION: stable_commit,
    }}});
    api.patch(
        name,
        &PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(&patch),
    )
    .await
    .map(|_| ())
    .map_err(|source| ArgoExecError::Act {
        action: "recording the canary's commits".into(),
        namespace: ns.to_string(),
        name: name.to_string(),
        source,
    })?;
    let _ = ctx;
    Ok(())
}

/// Hands an aborted canary to the record stage once (per canary, and again after a restart
/// unless the record stage already wrote it).
fn tell_abort(ctx: &Ctx, ns: &str, name: &str, obj: &Value, aborted: &argo_exec::Aborted) {
    let from = argo_exec::replica_set_name(name, &aborted.canary_hash);
    let recorded = obj["metadata"]["annotations"][RECORD_ANNOTATION]
        .as_str()
        .and_then(|s| serde_json::from_str::<Value>(s).ok())
        .is_some_and(|r| r["from"] == from.as_str());
    if recorded {
        return;
    }
    let first = ctx.told.lock().unwrap_or_else(|p| p.into_inner()).insert((
        ns.to_string(),
        name.to_string(),
        aborted.canary_hash.clone(),
    ));
    if !first {
        return;
    }
    let labels = &obj["metadata"]["labels"];
    let annotations = &obj["metadata"]["annotations"];
    let s = |v: &Value| v.as_str().map(str::to_string);
    let reason = if aborted.message.is_empty() {
        "the canary was aborted".to_string()
    } else {
        aborted.message.clone()
    };
    tracing::info!(namespace = %ns, rollout = %name, from = %from, "Argo canary aborted: writing the revert to Git");
    ctx.hook.rolled_back(RollbackEvent {
        namespace: ns.to_string(),
        rollout: name.to_string(),
        app: labels[APP_LABEL].as_str().unwrap_or_default().to_string(),
        component: name.to_string(),
        from,
        to: argo_exec::replica_set_name(name, &aborted.stable_hash),
        reason,
        repo: s(&labels[REPO_LABEL]),
        path: s(&annotations[PATH_ANNOTATION]),
        spec_commit: s(&annotations[COMMIT_ANNOTATION]),
        failed_commit: s(&annotations[CANARY_COMMIT_ANNOTATION]),
        good_commit: s(&annotations[STABLE_COMMIT_ANNOTATION]),
        target: RollbackTarget::ArgoRollout,
    });
}

fn traffic_error(ns: &str, name: &str, e: traffic::TrafficError) -> ArgoExecError {
    match e {
        traffic::TrafficError::Kube { what, source } => ArgoExecError::Act {
            action: what,
            namespace: ns.to_string(),
            name: name.to_string(),
            source,
        },
        traffic::TrafficError::Invalid(message) => ArgoExecError::Traffic {
            namespace: ns.to_string(),
            name: name.to_string(),
            message,
        },
    }
}

/// Performs the core's actions for one Rollout.
struct Acts<'a> {
    ctx: &'a Ctx,
    ns: &'a str,
    name: &'a str,
    obj: &'a Value,
    template: &'a Value,
    selector: &'a Value,
    route: Route<'a>,
    workload_name: Option<&'a str>,
}

impl Acts<'_> {
    fn err(&self, action: String) -> impl FnOnce(kube::Error) -> ArgoExecError + '_ {
        move |source| ArgoExecError::Act {
            action,
            namespace: self.ns.to_string(),
            name: self.name.to_string(),
            source,
        }
    }

    fn traffic_err(&self, e: traffic::TrafficError) -> ArgoExecError {
        traffic_error(self.ns, self.name, e)
    }

    fn merge(&self) -> PatchParams {
        PatchParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        }
    }

    async fn act(&self, a: &CoreAction) -> Result<(), ArgoExecError> {
        let rs_api: Api<DynamicObject> =
            Api::namespaced_with(self.ctx.client.clone(), self.ns, &replica_set_resource());
        let rs_name = |hash: &str| argo_exec::replica_set_name(self.name, hash);
        let replicas = self.obj["spec"]["replicas"].as_i64().unwrap_or(1);
        match a {
            CoreAction::CreateReplicaSet {
                hash,
                revision,
                replicas: n,
            } => {
                let rs =
                    replicasets::build(self.obj, self.template, self.selector, hash, *revision, *n);
                let obj: DynamicObject =
                    serde_json::from_value(rs).map_err(|e| ArgoExecError::Template {
                        namespace: self.ns.to_string(),
                        name: self.name.to_string(),
                        message: format!("building ReplicaSet {}: {e}", rs_name(hash)),
                    })?;
                match rs_api.create(&PostParams::default(), &obj).await {
                    Ok(_) => {
                        tracing::info!(namespace = %self.ns, replicaset = %rs_name(hash), revision, "ReplicaSet created")
                    }
                    Err(kube::Error::Api(e)) if e.code == 409 => {}
                    Err(e) => {
                        return Err(self.err(format!("creating ReplicaSet {}", rs_name(hash)))(
                            e,
                        ));
                    }
                }
            }
            CoreAction::SetRevision { hash, revision } => {
                let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision.to_string()}}});
                rs_api
                    .patch(&rs_name(hash), &self.merge(), &Patch::Merge(&patch))
                    .await
                    .map_err(self.err(format!("setting the revision of {}", rs_name(hash))))?;
            }
            CoreAction::ScaleReplicaSet { hash, replicas: n } => {
                let patch = json!({
                    "metadata": {"annotations": {DESIRED_REPLICAS_ANNOTATION: replicas.to_string()}},
                    "spec": {"replicas": n},
                });
                rs_api
                    .patch(&rs_name(hash), &self.merge(), &Patch::Merge(&patch))
                    .await
                    .map_err(self.err(format!("scaling ReplicaSet {} to {n}", rs_name(hash))))?;
                tracing::debug!(namespace = %self.ns, replicaset = %rs_name(hash), replicas = n, "scaled");
            }
            CoreAction::SetScaleDownDeadline { hash, at } => {
                let v = at.map(super::status::rfc3339);
                let patch =
                    json!({"metadata": {"annotations": {SCALE_DOWN_DEADLINE_ANNOTATION: v}}});
                rs_api
                    .patch(&rs_name(hash), &self.merge(), &Patch::Merge(&patch))
                    .await
                    .map_err(self.err(format!(
                        "setting the scale-down deadline of {}",
                        rs_name(hash)
                    )))?;
            }
            CoreAction::DeleteReplicaSet { hash } => {
                match rs_api
                    .delete(&rs_name(hash), &DeleteParams::background())
                    .await
                {
                    Ok(_) => {}
                    Err(kube::Error::Api(e)) if e.code == 404 => {}
                    Err(e) => {
                        return Err(self.err(format!("deleting ReplicaSet {}", rs_name(hash)))(
                            e,
                        ));
                    }
                }
            }
            CoreAction::SetServiceSelector { service, hash } => {
                let git = traffic::git_selectors(self.obj);
                traffic::set_service_selector(
                    &self.ctx.client,
                    self.ns,
                    self.name,
                    service,
                    git.get(service),
                    Some(hash),
                )
                .await
                .map_err(|e| self.traffic_err(e))?;
            }
            CoreAction::SetCanaryWeight { weight, .. } => {
                traffic::set_weight(&self.ctx.client, &self.route, *weight)
                    .await
                    .map_err(|e| self.traffic_err(e))?;
            }
            CoreAction::RemoveCanaryRoute => {
                traffic::remove_canary_route(&self.ctx.client, &self.route)
                    .await
                    .map_err(|e| self.traffic_err(e))?;
            }
            CoreAction::ScaleWorkload { replicas: n } => {
                let Some(d) = self.workload_name else {
                    return Ok(());
                };
                let api: Api<k8s_openapi::api::apps::v1::Deployment> =
                    Api::namespaced(self.ctx.client.clone(), self.ns);
                api.patch(
                    d,
                    &self.merge(),
                    &Patch::Merge(&json!({"spec": {"replicas": n}})),
                )
                .await
                .map_err(self.err(format!("scaling the workloadRef Deployment {d} to {n}")))?;
            }
        }
        Ok(())
    }
}
