//! The Kruise Rollout controller: `kube::runtime::Controller` over `rollouts.kruise.io`
//! Rollouts (read at v1beta1), woken by their own changes, by changes of the workloads they
//! point at (Deployments, StatefulSets, and CloneSets once a Rollout names one: watched and
//! mapped to their Rollouts by name), by its requeue timers, and by jumps of the injected
//! clock.
//!
//! One reconcile is one pass:
//!
//! ```text
//! observe (GET the Rollout, its workload and canary, the traffic objects)
//!   → decide (rollgit_core::kruise_run::reconcile, with the clock's now)
//!   → act (workload and traffic actions, absolute)
//!   → record (the status subresource, in Kruise's format, only when it changed)
//! ```
//!
//! A failed step's rollback is told to the record stage ([`RollbackHook`]: a revert commit),
//! once per failure and again after a restart until `status.record` says it was written.

use super::KruiseRolloutError;
use super::detect::Detector;
use super::status::{comparable, state_of, status_of};
use super::traffic;
use super::workload::{self, Kind, Live, Owner};
use crate::clock::SharedClock;
use crate::k8s::events::{Events, Severity, reference};
use crate::k8s::kruise::{FIELD_MANAGER_KRUISE, PATH_ANNOTATION, rollout_resource};
use crate::k8s::{APP_LABEL, PROGRESS_DEADLINE_ANNOTATION, REPO_LABEL};
use crate::rollout::{RollbackEvent, RollbackHook};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::core::ApiResource;
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;
use rollgit_core::kruise::StepState;
use rollgit_core::kruise_run::{
    self, Action as CoreAction, Observation, Phase, RunSpec, RunState, TrafficRouting,
};
use rollgit_render::KruiseRollout;
use serde_json::{Value, json};
use std::collections::{BTreeSet, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Rollouts reconciled at once.
pub const CONCURRENCY: u16 = 16;
/// The progress deadline of a step when the Rollout names none (the daemon's default).
pub const DEFAULT_DEADLINE_SECS: i64 = 600;

/// What every pass needs.
pub struct Ctx {
    /// The cluster.
    pub client: kube::Client,
    /// The time the core decides with.
    pub clock: SharedClock,
    /// Events on the Rollouts.
    pub events: Events,
    /// Told of every rollback (the record stage writes it to Git).
    pub hook: Arc<dyn RollbackHook>,
    /// Whether OpenKruise's own controller runs the Rollouts (then rollgit leaves them alone).
    pub detector: Arc<Detector>,
    resource: ApiResource,
    store: Store<DynamicObject>,
    wake: mpsc::UnboundedSender<ObjectRef<DynamicObject>>,
    watched: Mutex<HashMap<&'static str, tokio::task::AbortHandle>>,
    /// The namespaces watched.
    scope: crate::config::WatchScope,
    told: Mutex<BTreeSet<(String, String, String)>>,
    failures: crate::rollout::retry::Failures<ObjectRef<DynamicObject>>,
}

/// The stable Service a Rollout routes through, if any.
fn service_name(o: &DynamicObject) -> Option<String> {
    o.data["spec"]["strategy"]["canary"]["trafficRoutings"][0]["service"]
        .as_str()
        .map(str::to_string)
}

fn http_route_name(o: &DynamicObject) -> Option<String> {
    o.data["spec"]["strategy"]["canary"]["trafficRoutings"][0]["gateway"]["httpRouteName"]
        .as_str()
        .map(str::to_string)
}

fn workload_name(o: &DynamicObject) -> Option<(String, String)> {
    let spec = &o.data["spec"];
    let w = if spec["objectRef"].is_object() {
        &spec["objectRef"]["workloadRef"]
    } else {
        &spec["workloadRef"]
    };
    Some((
        w["kind"].as_str().unwrap_or("Deployment").to_string(),
        w["name"].as_str()?.to_string(),
    ))
}

impl Ctx {
    /// Watches a workload kind (once): a change of a workload (or of a canary Deployment)
    /// wakes the Rollouts that point at it.
    fn ensure_watch(&self, kind: Kind) {
        let key = match kind {
            Kind::Deployment => "Deployment",
            Kind::StatefulSet => "StatefulSet",
            Kind::CloneSet => "CloneSet",
        };
        self.watch(key, kind.resource());
    }

    /// Watches `resource` (once, as `key`): a change of an object wakes the Rollouts that
    /// point at it (workloads by `workloadRef`, canary Deployments by their label, Services
    /// and HTTPRoutes by `trafficRoutings`).
    fn watch(&self, key: &'static str, resource: ApiResource) {
        let mut watched = self.watched.lock().unwrap_or_else(|p| p.into_inner());
        if watched.contains_key(key) {
            return;
        }
        let apis = self.scope.apis(|ns| match ns {
            Some(ns) => Api::<DynamicObject>::namespaced_with(self.client.clone(), ns, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        });
        let wake = self.wake.clone();
        let store = self.store.clone();
        let ar = self.resource.clone();
        let kind_name = resource.kind.clone();
        let task = tokio::spawn(async move {
            let mut stream = crate::k8s::scope::watch_all(apis, watcher::Config::default());
            while let Some(ev) = stream.next().await {
                let obj = match ev {
                    Ok(watcher::Event::Apply(o))
                    | Ok(watcher::Event::InitApply(o))
                    | Ok(watcher::Event::Delete(o)) => o,
                    Ok(_) => continue,
                    Err(e) => {
                        tracing::debug!(kind = %kind_name, error = %crate::error_chain(&e), "workload watch error; the watcher retries");
                        continue;
                    }
                };
                let Some(ns) = obj.metadata.namespace.clone() else {
                    continue;
                };
                let name = obj.metadata.name.clone().unwrap_or_default();
                let canary_of = obj
                    .metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get(crate::k8s::kruise::CANARY_DEPLOYMENT_LABEL))
                    .cloned();
                for r in store.state() {
                    if r.metadata.namespace.as_deref() != Some(ns.as_str()) {
                        continue;
                    }
                    let hit = if kind_name == "Service" {
                        service_name(&r).as_deref() == Some(name.as_str())
                    } else if kind_name == "HTTPRoute" {
                        http_route_name(&r).as_deref() == Some(name.as_str())
                    } else {
                        let Some((k, n)) = workload_name(&r) else {
                            continue;
                        };
                        (k == kind_name && n == name)
                            || (kind_name == "Deployment"
                                && canary_of.as_deref() == Some(n.as_str()))
                    };
                    if hit && let Some(rn) = &r.metadata.name {
                        let _ = wake.send(ObjectRef::new_with(rn, ar.clone()).within(&ns));
                    }
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

/// Runs the Kruise Rollout controller of one cluster until `shutdown` resolves. Every pass
/// first asks `detector` whether OpenKruise's own controller runs the Rollouts (delegate
/// mode), and then does nothing.
pub async fn run(
    client: kube::Client,
    clock: SharedClock,
    hook: Arc<dyn RollbackHook>,
    target: crate::k8s::scope::Target,
    detector: Arc<Detector>,
    shutdown: impl Future<Output = ()> + Send + Sync + 'static,
) {
    let ar = rollout_resource();
    let (wake, woken) = mpsc::unbounded_channel();
    let apis = target.namespaces.apis(|ns| match ns {
        Some(ns) => Api::<DynamicObject>::namespaced_with(client.clone(), ns, &ar),
        None => Api::all_with(client.clone(), &ar),
    });
    let (store, objects) = crate::k8s::scope::reflect(apis, target.config(), ar.clone());
    let woken = futures::stream::unfold(
        woken,
        |mut rx| async move { rx.recv().await.map(|r| (r, rx)) },
    );
    let mut controller = Controller::for_stream_with(objects, store.clone(), ar.clone())
        .with_config(ControllerConfig::default().concurrency(CONCURRENCY))
        .reconcile_on(woken);
    if let Some(jumps) = clock.jumps() {
        controller = controller.reconcile_all_on(jumps);
    }
    let ctx = Arc::new(Ctx {
        events: Events::new(client.clone()),
        client,
        clock,
        hook,
        detector,
        resource: ar,
        store,
        scope: target.namespaces.clone(),
        wake,
        watched: Mutex::new(HashMap::new()),
        told: Mutex::new(BTreeSet::new()),
        failures: Default::default(),
    });
    ctx.ensure_watch(Kind::Deployment);
    ctx.ensure_watch(Kind::StatefulSet);
    ctx.watch(
        "Service",
        ApiResource::erase::<k8s_openapi::api::core::v1::Service>(&()),
    );
    controller
        .graceful_shutdown_on(shutdown)
        .run(reconcile, error_policy, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %crate::error_chain(&e), "kruise rollout controller");
            }
        })
        .await;
}

async fn reconcile(obj: Arc<DynamicObject>, ctx: Arc<Ctx>) -> Result<Action, KruiseRolloutError> {
    let key = ObjectRef::from_obj_with(obj.as_ref(), ctx.resource.clone());
    let requeue = match pass(&obj, &ctx).await {
        Ok(r) => r,
        Err(e) => {
            // A Rollout rollgit cannot run says so in its status (and so in the app's health),
            // not only in the log.
            if let KruiseRolloutError::InvalidSpec { message, .. } = &e {
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

fn error_policy(obj: Arc<DynamicObject>, error: &KruiseRolloutError, ctx: Arc<Ctx>) -> Action {
    let key = ObjectRef::from_obj_with(obj.as_ref(), ctx.resource.clone());
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
            "kruise rollout pass failed"
        );
    }
    retry.action()
}

/// Records an `InvalidSpec` condition (status True, Kruise's condition shape) and the message
/// `InvalidSpec: message` in the status of the Rollout `cached` names, for its generation;
/// unchanged when it already says so (no timestamp churn). Best effort: a failure is logged.
/// The next pass that runs the Rollout writes its status without the condition.
async fn record_invalid(cached: &DynamicObject, ctx: &Ctx, message: &str) {
    let ns = cached.metadata.namespace.clone().unwrap_or_default();
    let name = cached.metadata.name.clone().unwrap_or_default();
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ctx.resource);
    let live = match api.get_opt(&name).await {
        Ok(Some(live)) => live,
        Ok(None) => return,
        Err(e) => {
            tracing::warn!(namespace = %ns, rollout = %name, error = %crate::error_chain(&e), "reading the Kruise Rollout to record InvalidSpec failed");
            return;
        }
    };
    let status = &live.data["status"];
    let generation = live.metadata.generation.unwrap_or(0);
    let mut conditions: Vec<Value> = status["conditions"].as_array().cloned().unwrap_or_default();
    let same = conditions
        .iter()
        .any(|c| c["type"] == INVALID_SPEC && c["status"] == "True" && c["message"] == message)
        && status["observedGeneration"].as_i64() == Some(generation);
    if same {
        return;
    }
    let now = crate::rollout::status::rfc3339(ctx.clock.now_unix());
    conditions.retain(|c| c["type"] != INVALID_SPEC);
    conditions.push(json!({
        "type": INVALID_SPEC,
        "status": "True",
        "reason": INVALID_SPEC,
        "message": message,
        "lastUpdateTime": now,
        "lastTransitionTime": now,
    }));
    let patch = json!({"status": {
        "observedGeneration": generation,
        "message": format!("{INVALID_SPEC}: {message}"),
        "conditions": conditions,
    }});
    let pp = PatchParams {
        field_manager: Some(FIELD_MANAGER_KRUISE.into()),
        ..PatchParams::default()
    };
    match api.patch_status(&name, &pp, &Patch::Merge(&patch)).await {
        Ok(_) => {
            ctx.events
                .publish(
                    &reference(
                        &format!(
                            "{}/{}",
                            crate::k8s::kruise::GROUP,
                            crate::k8s::kruise::VERSION
                        ),
                        "Rollout",
                        Some(&ns),
                        &name,
                    ),
                    Severity::Warning,
                    INVALID_SPEC,
                    "Rollout",
                    message,
                )
                .await;
        }
        Err(e) => {
            tracing::warn!(namespace = %ns, rollout = %name, error = %crate::error_chain(&e), "recording InvalidSpec failed");
        }
    }
}

/// The condition of a Rollout rollgit's executor cannot run.
pub const INVALID_SPEC: &str = "InvalidSpec";

/// A hash of the steps without their pauses (Kruise's `rolloutHash`: a change of the steps
/// recalculates the current one).
fn rollout_hash(obj: &Value) -> String {
    let canary = &obj["spec"]["strategy"]["canary"];
    let mut steps = canary["steps"].clone();
    for s in steps.as_array_mut().into_iter().flatten() {
        if let Some(m) = s.as_object_mut() {
            m.remove("pause");
        }
    }
    let h = rollgit_render::spec_hash(
        &json!({"steps": steps, "trafficRoutings": canary["trafficRoutings"]}),
    );
    h.get(..10).unwrap_or(&h).to_string()
}

fn run_spec(r: &KruiseRollout, kind: Kind, obj: &Value) -> Result<RunSpec, String> {
    let deadline = match obj["metadata"]["annotations"][PROGRESS_DEADLINE_ANNOTATION].as_str() {
        None => DEFAULT_DEADLINE_SECS,
        Some(v) => rollgit_syntax::parse_duration(v)
            .map_err(|m| format!("metadata.annotations.{PROGRESS_DEADLINE_ANNOTATION}: {m}"))?
            .as_secs()
            .try_into()
            .unwrap_or(i64::MAX)
            .max(1),
    };
    Ok(RunSpec {
        steps: r.steps.clone(),
        matches: r.matches.clone(),
        style: r.style,
        kind: kind.core(),
        traffic: r.traffic_routings.first().map(|t| TrafficRouting {
            service: t.service.clone(),
            ingress: t.ingress.clone().map(|i| (i, t.class)),
            http_route: t.http_route.clone(),
            grace_secs: t.grace_period_seconds,
        }),
        paused: r.paused,
        failure_threshold: r.failure_threshold.clone(),
        progress_deadline_secs: deadline,
        rollout_hash: rollout_hash(obj),
    })
}

/// One observe → decide → act → record pass. Returns when to look again without an event.
async fn pass(cached: &DynamicObject, ctx: &Ctx) -> Result<Option<Duration>, KruiseRolloutError> {
    let ns = cached.metadata.namespace.clone().unwrap_or_default();
    let name = cached.metadata.name.clone().unwrap_or_default();
    let observe_err = |what: &str| {
        let (what, namespace, name) = (what.to_string(), ns.clone(), name.clone());
        move |source| KruiseRolloutError::Observe {
            what,
            namespace,
            name,
            source,
        }
    };
    let invalid = |message: String| KruiseRolloutError::InvalidSpec {
        namespace: ns.clone(),
        name: name.clone(),
        message,
    };
    if ctx.detector.external().await {
        return Ok(None);
    }
    let api: Api<DynamicObject> = Api::namespaced_with(ctx.client.clone(), &ns, &ctx.resource);
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
    let value = serde_json::to_value(&obj).unwrap_or(Value::Null);
    let rollout = rollgit_render::parse_kruise_rollout_value(&format!("{ns}/{name}"), &value)
        .map_err(|errs| {
            invalid(
                errs.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })?;
    if !rollout.unsupported.is_empty() {
        return Err(invalid(
            rollout
                .unsupported
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    let Some(wname) = rollout.workload.name.clone() else {
        return Err(invalid("workloadRef.name is required".into()));
    };
    let Some(kind) = Kind::of(&rollout.workload.kind) else {
        return Err(invalid(format!(
            "workloadRef.kind {} is not one rollgit rolls (Deployment, StatefulSet, CloneSet)",
            rollout.workload.kind
        )));
    };
    if kind == Kind::CloneSet {
        ctx.ensure_watch(kind);
    }
    let spec = run_spec(&rollout, kind, &value).map_err(invalid)?;
    if spec
        .traffic
        .as_ref()
        .is_some_and(|t| t.http_route.is_some())
    {
        // Git's rules of the route change through its annotation: wake the Rollout then.
        ctx.watch(
            "HTTPRoute",
            crate::rollout::argo::traffic::http_route_resource("v1"),
        );
    }
    let recorded =
        state_of(&value["status"]).map_err(|message| KruiseRolloutError::InvalidStatus {
            namespace: ns.clone(),
            name: name.clone(),
            message,
        })?;

    // Observe.
    let mut not_ready = Vec::new();
    let observed = workload::observe(&ctx.client, &ns, kind, &wname, spec.style, &mut not_ready)
        .await
        .map_err(observe_err("the workload"))?;
    let traffic = match &spec.traffic {
        Some(tr) => traffic::observe(&ctx.client, &ns, tr, kind.revision_label())
            .await
            .map_err(observe_err("the traffic objects"))?,
        None => Default::default(),
    };
    let (wobs, live) = match observed {
        Some((o, l)) => (Some(o), Some(l)),
        None => (None, None),
    };
    let obs = Observation {
        workload: wobs,
        traffic: traffic.clone(),
        not_ready_pods: not_ready,
    };

    // Decide.
    let now = ctx.clock.now_unix();
    let decision = kruise_run::reconcile(&spec, &recorded, &obs, now);

    // Act.
    let owner = Owner {
        name: name.clone(),
        uid: obj.metadata.uid.clone().unwrap_or_default(),
    };
    let mut rollback = None;
    if let Some(live) = &live {
        for action in &decision.actions {
            if let CoreAction::Rollback { reason } = action {
                rollback = Some(reason.clone());
                continue;
            }
            act(ctx, &ns, &name, &spec, live, &owner, &traffic, action).await?;
        }
        if let Some(tr) = &spec.traffic {
            traffic::sync_selector(&ctx.client, &ns, &tr.service, kind.revision_label())
                .await
                .map_err(|source| KruiseRolloutError::Act {
                    action: format!("setting Git's selector of Service {}", tr.service),
                    namespace: ns.clone(),
                    name: name.clone(),
                    source,
                })?;
        }
        if decision.state.phase == Some(Phase::Healthy) {
            workload::sync_strategy(&ctx.client, live)
                .await
                .map_err(|source| KruiseRolloutError::Act {
                    action: format!("setting Git's strategy of Deployment {wname}"),
                    namespace: ns.clone(),
                    name: name.clone(),
                    source,
                })?;
        }
    }

    // Record.
    let generation = obj.metadata.generation.unwrap_or(0);
    let wgen = live.as_ref().map_or(0, Live::generation);
    let status = status_of(&decision.state, generation, wgen);
    if comparable(&value["status"]) != status {
        let patch = json!({
            "metadata": {"resourceVersion": obj.metadata.resource_version},
            "status": status,
        });
        let pp = PatchParams {
            field_manager: Some(FIELD_MANAGER_KRUISE.into()),
            ..PatchParams::default()
        };
        api.patch_status(&name, &pp, &Patch::Merge(&patch))
            .await
            .map_err(|source| KruiseRolloutError::Record {
                namespace: ns.clone(),
                name: name.clone(),
                source,
            })?;
        announce(ctx, &ns, &name, &recorded, &decision.state, &spec).await;
    }

    // A failure not yet written to Git goes to the record stage (once, and after a restart
    // while the status has no record of it).
    if let Some(f) = &decision.state.failure {
        let recorded_revert = value["status"]["record"]["from"]
            .as_str()
            .is_some_and(|from| from.ends_with(&f.revision));
        if rollback.is_some() || !recorded_revert {
            tell(
                ctx,
                &ns,
                &name,
                &obj,
                &decision.state,
                &wname,
                live.as_ref(),
            );
        }
    }
    let requeue = decision
        .requeue_at
        .map(|t| Duration::from_secs(u64::try_from(t - now).unwrap_or(1).max(1)));
    Ok(requeue)
}

#[allow(clippy::too_many_arguments)]
async fn act(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    spec: &RunSpec,
    live: &Live,
    owner: &Owner,
    traffic_obs: &rollgit_core::kruise_run::TrafficObs,
    action: &CoreAction,
) -> Result<(), KruiseRolloutError> {
    let c = &ctx.client;
    let label = live.kind.revision_label();
    let tr = spec.traffic.clone().unwrap_or_default();
    let what = |s: String| {
        let (namespace, name) = (ns.to_string(), name.to_string());
        move |source| KruiseRolloutError::Act {
            action: s,
            namespace,
            name,
            source,
        }
    };
    let wl = format!("{:?} {}", live.kind, live.name);
    match action {
        CoreAction::Hold { stable_revision } => {
            workload::hold(c, live, name, stable_revision, None)
                .await
                .map_err(what(format!("holding {wl}")))
        }
        CoreAction::Initialize => workload::initialize(c, live, owner)
            .await
            .map_err(what(format!("taking control of {wl}"))),
        CoreAction::UpgradeBatch {
            desired_updated,
            partition,
        } => workload::upgrade_batch(c, live, owner, *desired_updated, partition)
            .await
            .map_err(what(format!(
                "upgrading {wl} to {desired_updated} new pods"
            ))),
        CoreAction::ScaleCanaryAway => workload::scale_canary_away(c, live)
            .await
            .map_err(what(format!("scaling the canary of {wl} away"))),
        CoreAction::Resume => workload::resume(c, live)
            .await
            .map_err(what(format!("resuming {wl}"))),
        CoreAction::Release => workload::release(c, live)
            .await
            .map_err(what(format!("releasing {wl}"))),
        CoreAction::PatchStableService { revision } => {
            traffic::set_stable_selector(c, ns, &tr.service, label, Some(revision))
                .await
                .map_err(what(format!(
                    "selecting the stable pods with Service {}",
                    tr.service
                )))
        }
        CoreAction::RestoreStableService => {
            traffic::set_stable_selector(c, ns, &tr.service, label, None)
                .await
                .map_err(what(format!("restoring Service {}", tr.service)))
        }
        CoreAction::EnsureCanaryService { revision } => {
            traffic::ensure_canary_service(c, ns, &tr.service, label, revision, owner)
                .await
                .map_err(what(format!(
                    "pointing Service {} at the canary pods",
                    traffic::canary_service(&tr.service)
                )))
        }
        CoreAction::RemoveCanaryService => traffic::remove_canary_service(c, ns, &tr.service)
            .await
            .map_err(what(format!(
                "deleting Service {}",
                traffic::canary_service(&tr.service)
            ))),
        CoreAction::CreateCanaryIngress { annotations } => {
            traffic::create_canary_ingress(c, ns, &tr, annotations, owner)
                .await
                .map_err(what("creating the canary Ingress".into()))
        }
        CoreAction::PatchCanaryIngress { annotations } => {
            let Some((ingress, _)) = &tr.ingress else {
                return Ok(());
            };
            let current = traffic_obs.canary_ingress.clone().unwrap_or_default();
            traffic::patch_canary_ingress(c, ns, ingress, &current, annotations)
                .await
                .map_err(what(format!(
                    "routing Ingress {}",
                    traffic::canary_ingress(ingress)
                )))
        }
        CoreAction::RemoveCanaryIngress => {
            let Some((ingress, _)) = &tr.ingress else {
                return Ok(());
            };
            traffic::remove_canary_ingress(c, ns, ingress)
                .await
                .map_err(what(format!(
                    "deleting Ingress {}",
                    traffic::canary_ingress(ingress)
                )))
        }
        CoreAction::SetHttpRouteRules { rules } => {
            let Some(route) = &tr.http_route else {
                return Ok(());
            };
            traffic::set_route_rules(c, ns, route, rules)
                .await
                .map_err(what(format!("routing HTTPRoute {route}")))
        }
        CoreAction::Rollback { .. } => Ok(()),
    }
}

/// Events (and a log line) when the phase or the step moves.
async fn announce(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    before: &RunState,
    after: &RunState,
    spec: &RunSpec,
) {
    let step = |s: &RunState| {
        s.canary
            .as_ref()
            .map(|c| (c.step.current_step_index, c.step.state))
    };
    let moved = before.phase != after.phase
        || before.progress() != after.progress()
        || step(before) != step(after);
    if !moved {
        return;
    }
    let (index, state) = step(after).unwrap_or((0, StepState::BeforeStepUpgrade));
    tracing::info!(namespace = %ns, rollout = %name, phase = after.phase.map(Phase::as_str).unwrap_or(""), step = index, state = state.as_str(), message = %after.message, "kruise rollout");
    if after.failure.is_some() && before.failure.is_none() {
        ctx.hook.rollout_finished("kruise", ns, name, false);
    } else if after.phase == Some(Phase::Healthy) && before.phase != Some(Phase::Healthy) {
        ctx.hook.rollout_finished("kruise", ns, name, true);
    }
    let (severity, reason) = if after.failure.is_some() && before.failure.is_none() {
        (Severity::Warning, "RolloutFailed")
    } else if after.phase == Some(Phase::Healthy) && before.phase != Some(Phase::Healthy) {
        (Severity::Normal, "Healthy")
    } else if step(before) != step(after) && state != StepState::Completed {
        (Severity::Normal, "Progressing")
    } else {
        return;
    };
    let message = if after.message.is_empty() {
        format!("step {index}/{} {}", spec.steps.len(), state.as_str())
    } else {
        after.message.clone()
    };
    ctx.events
        .publish(
            &reference(&ctx.resource.api_version, "Rollout", Some(ns), name),
            severity,
            reason,
            "Rollout",
            &message,
        )
        .await;
}

/// Tells the record stage about a failed step (once per rollout, failed revision and commit).
fn tell(
    ctx: &Ctx,
    ns: &str,
    name: &str,
    obj: &DynamicObject,
    state: &RunState,
    workload: &str,
    live: Option<&Live>,
) {
    let Some(f) = &state.failure else {
        return;
    };
    let key = (
        format!("{ns}/{name}"),
        f.revision.clone(),
        state.target_commit.clone().unwrap_or_default(),
    );
    let first = ctx
        .told
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(key);
    if !first {
        return;
    }
    let labels = obj.metadata.labels.clone().unwrap_or_default();
    let annotations = obj.metadata.annotations.clone().unwrap_or_default();
    let c = state.canary.as_ref();
    let revision = |hash: Option<&str>, fallback: &str| {
        format!(
            "{workload}-{}",
            hash.filter(|h| !h.is_empty()).unwrap_or(fallback)
        )
    };
    let from = revision(c.map(|c| c.pod_template_hash.as_str()), &f.revision);
    let to = revision(c.map(|c| c.stable_revision.as_str()), "stable");
    tracing::info!(namespace = %ns, rollout = %name, %from, %to, "kruise rollout failed and was rolled back; asking the record stage to revert Git");
    ctx.hook.rolled_back(RollbackEvent {
        namespace: ns.to_string(),
        rollout: name.to_string(),
        app: labels.get(APP_LABEL).cloned().unwrap_or_default(),
        component: workload.to_string(),
        from,
        to,
        reason: f.reason.clone(),
        repo: labels.get(REPO_LABEL).cloned(),
        path: annotations.get(PATH_ANNOTATION).cloned(),
        spec_commit: live.and_then(|l| {
            l.object["metadata"]["annotations"][crate::k8s::kruise::COMMIT_ANNOTATION]
                .as_str()
                .map(str::to_string)
        }),
        failed_commit: state.target_commit.clone(),
        good_commit: state.stable_commit.clone(),
        target: crate::rollout::RollbackTarget::KruiseRollout(ctx.resource.clone()),
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rollout_hash_ignores_pauses() {
        let a =
            json!({"spec": {"strategy": {"canary": {"steps": [{"replicas": 1, "pause": {}}]}}}});
        let b = json!({"spec": {"strategy": {"canary": {"steps": [{"replicas": 1, "pause": {"duration": 5}}]}}}});
        let c = json!({"spec": {"strategy": {"canary": {"steps": [{"replicas": 2}]}}}});
        assert_eq!(rollout_hash(&a), rollout_hash(&b));
        assert_ne!(rollout_hash(&a), rollout_hash(&c));
    }

    #[test]
    fn the_workload_name_is_read_in_both_shapes() {
        let v1a: DynamicObject = serde_json::from_value(json!({"apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout", "metadata": {"name": "r"}, "spec": {"objectRef": {"workloadRef": {"kind": "Deployment", "name": "echo"}}}})).expect("object");
        let v1b: DynamicObject = serde_json::from_value(json!({"apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout", "metadata": {"name": "r"}, "spec": {"workloadRef": {"kind": "CloneSet", "name": "cs"}}})).expect("object");
        assert_eq!(
            workload_name(&v1a),
            Some(("Deployment".into(), "echo".into()))
        );
        assert_eq!(workload_name(&v1b), Some(("CloneSet".into(), "cs".into())));
    }
}
