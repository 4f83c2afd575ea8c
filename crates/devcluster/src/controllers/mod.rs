//! Simulated controllers and kubelet: Deployment → ReplicaSet → Pod readiness, StatefulSets,
//! DaemonSets, OpenKruise CloneSets, Jobs (Pods run to completion), Nodes, Events, and fault
//! injection.
//!
//! Everything runs in one task that is driven by the store's change broadcast: each change
//! queues the keys it affects (the object and its controller), and deadlines (readiness delays,
//! `minReadySeconds`, `progressDeadlineSeconds`, crash-loop restarts) queue a key when they
//! fall due. At rest nothing runs. Controllers read from the store and write through the API
//! handler in process ([`client::Client`]), so admission, managedFields, generation and
//! resourceVersion conflicts apply to them as to kubectl; a conflict requeues the key.
//!
//! # Fault injection
//!
//! - At start: [`SimConfig::fail_images`] (`rollgit devcluster --fail-image PATTERN`, repeatable).
//!   A pattern with `*` or `?` is a glob over the whole image reference (`*:bad`); any other
//!   pattern matches as a substring. Pods with a matching container image never become Ready:
//!   their containers go into `CrashLoopBackOff` with a restartCount growing on the kubelet's
//!   back-off (10 s doubling to 5 min).
//! - At run time, per Pod (or Pod template), the annotation `devcluster.rollgit.dev/fail`:
//!   `crash` (never Ready, crash loop) or `after=30s` (Ready, then crashes 30 s later).
//! - At run time, cluster-wide, the ConfigMap `devcluster-faults` in `kube-system`, data keys
//!   `fail-images` (patterns, one per line or comma-separated), `fail-after` (lines
//!   `PATTERN=DURATION`: Ready, then crash after DURATION) and `ready-delays` (lines
//!   `PATTERN=DURATION`). Edits take effect immediately for every Pod.
//! - Readiness delay: [`SimConfig::ready_delay`] (`--ready-delay`, default 1 s), per image
//!   pattern [`SimConfig::image_ready_delays`], per Pod the annotation
//!   `devcluster.rollgit.dev/ready-after: 500ms`.

pub mod client;
pub mod cloneset;
pub mod daemonset;
pub mod deployment;
pub mod events;
pub mod job;
pub mod kubelet;
pub mod replicaset;
pub mod statefulset;
pub mod util;

use crate::api::Server;
use crate::resources::GroupResource;
use crate::store::{EventType, ObjKey, Store, WatchEvent};
use client::Client;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::TryRecvError;
use tokio::time::Instant;

/// Annotation: per-Pod readiness delay (`500ms`, `2s`).
pub const READY_AFTER_ANNOTATION: &str = "devcluster.rollgit.dev/ready-after";
/// Annotation: per-Pod fault (`crash`, `after=30s`).
pub const FAIL_ANNOTATION: &str = "devcluster.rollgit.dev/fail";
/// The run-time fault switch: a ConfigMap of this name in `kube-system`.
pub const FAULTS_CONFIGMAP: &str = "devcluster-faults";
/// Field manager of the simulated controllers.
pub const CONTROLLER_MANAGER: &str = "kube-controller-manager";
/// Field manager of the simulated kubelet.
pub const KUBELET: &str = "kubelet";

/// How the simulation behaves.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// Run the controllers and the kubelet at all.
    pub enabled: bool,
    /// How long a Pod takes from creation to Ready.
    pub ready_delay: Duration,
    /// Names of the simulated Nodes.
    pub nodes: Vec<String>,
    /// Image patterns whose Pods crash-loop and never become Ready.
    pub fail_images: Vec<String>,
    /// Readiness delay per image pattern (first match wins).
    pub image_ready_delays: Vec<(String, Duration)>,
    /// First crash-loop back-off (the kubelet's is 10 s, doubling up to 5 min).
    pub crash_backoff: Duration,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            ready_delay: Duration::from_secs(1),
            nodes: default_nodes(3),
            fail_images: Vec::new(),
            image_ready_delays: Vec::new(),
            crash_backoff: Duration::from_secs(10),
        }
    }
}

/// Node names `devcluster-node-1` .. `devcluster-node-N`.
pub fn default_nodes(n: usize) -> Vec<String> {
    (1..=n).map(|i| format!("devcluster-node-{i}")).collect()
}

/// Creates `pod` in `namespace` for `owner` and records `SuccessfulCreate` with `message` on the
/// owner, as the owner's controller (`component`) does. `Ok(false)`: a Pod of that name exists
/// already (a conflict: reconcile again).
pub async fn create_pod(
    sim: &Sim,
    owner: &Value,
    namespace: &str,
    pod: &Value,
    message: &str,
    component: &str,
) -> Result<bool, client::ClientError> {
    match sim
        .client
        .create(&gr("", "pods"), namespace, pod, CONTROLLER_MANAGER)
        .await
    {
        Ok(_) => {
            events::record(
                &sim.client,
                owner,
                events::Kind::Normal,
                "SuccessfulCreate",
                message,
                component,
                None,
            )
            .await;
            Ok(true)
        }
        Err(e) if e.is_conflict() => Ok(false),
        Err(e) => Err(e),
    }
}

/// Deletes the Pod `namespace/name` owned by `owner` and records `SuccessfulDelete` with
/// `message` on the owner, as the owner's controller (`component`) does.
pub async fn delete_pod(
    sim: &Sim,
    owner: &Value,
    namespace: &str,
    name: &str,
    message: &str,
    component: &str,
) -> Result<(), client::ClientError> {
    sim.client
        .delete(&gr("", "pods"), namespace, name, CONTROLLER_MANAGER)
        .await?;
    events::record(
        &sim.client,
        owner,
        events::Kind::Normal,
        "SuccessfulDelete",
        message,
        component,
        None,
    )
    .await;
    Ok(())
}

/// The object a reconcile works on, as the store has it: its value and uid, or `None` when it
/// is gone or being deleted (then there is nothing to reconcile; the garbage collector and
/// finalizers finish it).
pub fn live_object(sim: &Sim, k: &ObjKey) -> Option<(Value, String)> {
    let e = sim.store.get(k)?;
    if e.meta.deleting {
        return None;
    }
    Some((e.value(), e.meta.uid.clone()))
}

/// Writes `status` to the status subresource of `obj` (stored under `k`) as the controllers'
/// field manager, unless `obj` has that status already.
pub async fn write_status(
    sim: &Sim,
    k: &ObjKey,
    obj: &Value,
    status: Value,
) -> Result<(), client::ClientError> {
    if status != obj["status"] {
        let mut v = obj.clone();
        v["status"] = status;
        sim.client
            .update_status(&k.gr, &k.namespace, &v, CONTROLLER_MANAGER)
            .await?;
    }
    Ok(())
}

/// A storage key for a built-in or known resource.
pub fn gr(group: &str, resource: &str) -> GroupResource {
    GroupResource {
        group: group.into(),
        resource: resource.into(),
    }
}

/// The key of an object.
pub fn key(group: &str, resource: &str, namespace: &str, name: &str) -> ObjKey {
    ObjKey {
        gr: gr(group, resource),
        namespace: namespace.into(),
        name: name.into(),
    }
}

/// The resources that controllers reconcile, by the kind in an ownerReference.
fn gr_of_kind(kind: &str, api_version: &str) -> Option<GroupResource> {
    Some(match (kind, api_version) {
        ("ReplicaSet", "apps/v1") => gr("apps", "replicasets"),
        ("Deployment", "apps/v1") => gr("apps", "deployments"),
        ("StatefulSet", "apps/v1") => gr("apps", "statefulsets"),
        ("DaemonSet", "apps/v1") => gr("apps", "daemonsets"),
        ("CloneSet", v) if v.starts_with("apps.kruise.io/") => gr("apps.kruise.io", "clonesets"),
        ("Job", "batch/v1") => gr("batch", "jobs"),
        _ => return None,
    })
}

fn reconciled() -> [GroupResource; 7] {
    [
        gr("", "pods"),
        gr("apps", "replicasets"),
        gr("apps", "deployments"),
        gr("apps", "statefulsets"),
        gr("apps", "daemonsets"),
        gr("apps.kruise.io", "clonesets"),
        gr("batch", "jobs"),
    ]
}

/// What a reconcile asks of the loop.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Reconcile again at this instant.
    pub requeue_at: Option<Instant>,
    /// Reconcile again soon (a write lost a race).
    pub retry: bool,
}

impl Outcome {
    /// Reconcile again at `at`, keeping an earlier request.
    pub fn at(&mut self, at: Instant) {
        self.requeue_at = Some(self.requeue_at.map_or(at, |t| t.min(at)));
    }

    /// Reconcile again after `d`.
    pub fn after(&mut self, d: Duration) {
        self.at(Instant::now() + d);
    }
}

/// The simulation's state, owned by its task.
pub struct Sim {
    /// The API server.
    pub srv: Arc<Server>,
    /// Its store.
    pub store: Arc<Store>,
    /// The in-process client.
    pub client: Client,
    /// Static configuration.
    pub cfg: SimConfig,
    /// Faults switched on at run time.
    pub faults: kubelet::Faults,
    /// Per-Pod kubelet state.
    pub kubelet: kubelet::State,
    queue: VecDeque<ObjKey>,
    queued: HashSet<ObjKey>,
    timers: BTreeSet<(Instant, ObjKey)>,
    deadlines: HashMap<ObjKey, Instant>,
}

impl Sim {
    fn new(srv: Arc<Server>, cfg: SimConfig) -> Self {
        Self {
            store: srv.store.clone(),
            client: Client::new(srv.clone()),
            srv,
            faults: kubelet::Faults::default(),
            kubelet: kubelet::State::default(),
            cfg,
            queue: VecDeque::new(),
            queued: HashSet::new(),
            timers: BTreeSet::new(),
            deadlines: HashMap::new(),
        }
    }

    /// Queues `key` for a reconcile.
    pub fn enqueue(&mut self, key: ObjKey) {
        if self.queued.insert(key.clone()) {
            self.queue.push_back(key);
        }
    }

    fn schedule(&mut self, key: ObjKey, at: Instant) {
        if let Some(cur) = self.deadlines.get(&key) {
            if *cur <= at {
                return;
            }
            self.timers.remove(&(*cur, key.clone()));
        }
        self.deadlines.insert(key.clone(), at);
        self.timers.insert((at, key));
    }

    fn fire_due(&mut self) {
        let now = Instant::now();
        while let Some((at, _)) = self.timers.first() {
            if *at > now {
                break;
            }
            if let Some((_, key)) = self.timers.pop_first() {
                self.deadlines.remove(&key);
                self.enqueue(key);
            }
        }
    }

    fn route(&mut self, ev: &WatchEvent) {
        let key = &ev.key;
        let g = &key.gr;
        if g.group.is_empty() && g.resource == "configmaps" {
            if key.namespace == "kube-system" && key.name == FAULTS_CONFIGMAP {
                let data = if ev.etype == EventType::Deleted {
                    Value::Null
                } else {
                    ev.entry.value()["data"].clone()
                };
                self.faults = kubelet::Faults::from_data(&data);
                self.resync_resource(&gr("", "pods"));
            }
            return;
        }
        if g.group.is_empty() && g.resource == "nodes" {
            self.resync_resource(&gr("apps", "daemonsets"));
            return;
        }
        if !reconciled().contains(g) {
            return;
        }
        if ev.etype == EventType::Deleted && g.resource == "pods" {
            self.kubelet.forget(&ev.entry.meta.uid);
        }
        if ev.etype != EventType::Deleted || g.resource != "pods" {
            self.enqueue(key.clone());
        }
        if ev.entry.meta.owners.is_empty() {
            return;
        }
        let v = ev.entry.value();
        for o in v["metadata"]["ownerReferences"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if o["controller"] != true {
                continue;
            }
            let (Some(kind), Some(av), Some(name)) = (
                o["kind"].as_str(),
                o["apiVersion"].as_str(),
                o["name"].as_str(),
            ) else {
                continue;
            };
            if let Some(og) = gr_of_kind(kind, av) {
                self.enqueue(ObjKey {
                    gr: og,
                    namespace: key.namespace.clone(),
                    name: name.to_string(),
                });
            }
        }
    }

    fn resync_resource(&mut self, g: &GroupResource) {
        let (_, items) = self.store.list(g, None, None);
        for (k, _) in items {
            self.enqueue(k);
        }
    }

    fn resync(&mut self) {
        for g in reconciled() {
            self.resync_resource(&g);
        }
    }

    async fn reconcile(&mut self, key: ObjKey) {
        let res = match (key.gr.group.as_str(), key.gr.resource.as_str()) {
            ("", "pods") => kubelet::reconcile(self, &key).await,
            ("apps", "replicasets") => replicaset::reconcile(self, &key).await,
            ("apps", "deployments") => deployment::reconcile(self, &key).await,
            ("apps", "statefulsets") => statefulset::reconcile(self, &key).await,
            ("apps", "daemonsets") => daemonset::reconcile(self, &key).await,
            ("apps.kruise.io", "clonesets") => cloneset::reconcile(self, &key).await,
            ("batch", "jobs") => job::reconcile(self, &key).await,
            _ => Ok(Outcome::default()),
        };
        match res {
            Ok(o) => {
                if o.retry {
                    self.schedule(key.clone(), Instant::now() + Duration::from_millis(20));
                }
                if let Some(at) = o.requeue_at {
                    self.schedule(key, at);
                }
            }
            Err(e) if e.is_conflict() || e.is_not_found() => {
                tracing::debug!(?key, error = %e, "reconcile lost a race; retrying");
                self.schedule(key, Instant::now() + Duration::from_millis(20));
            }
            Err(e) => {
                tracing::warn!(?key, error = %e, "reconcile failed; retrying");
                self.schedule(key, Instant::now() + Duration::from_millis(500));
            }
        }
    }
}

/// Registers the simulated Nodes, then spawns the simulation (until the task is aborted).
pub async fn start(srv: Arc<Server>, cfg: SimConfig) -> tokio::task::JoinHandle<()> {
    let rx = srv.store.subscribe();
    let sim = Sim::new(srv, cfg);
    kubelet::register_nodes(&sim).await;
    tokio::spawn(run(sim, rx))
}

async fn run(mut sim: Sim, mut rx: tokio::sync::broadcast::Receiver<Arc<WatchEvent>>) {
    if let Some(e) = sim
        .store
        .get(&key("", "configmaps", "kube-system", FAULTS_CONFIGMAP))
    {
        sim.faults = kubelet::Faults::from_data(&e.value()["data"]);
    }
    sim.resync();
    loop {
        loop {
            match rx.try_recv() {
                Ok(ev) => sim.route(&ev),
                Err(TryRecvError::Lagged(n)) => {
                    tracing::debug!(missed = n, "simulation lagged behind the store; resyncing");
                    sim.resync();
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Closed) => return,
            }
        }
        sim.fire_due();
        if let Some(k) = sim.queue.pop_front() {
            sim.queued.remove(&k);
            sim.reconcile(k).await;
            continue;
        }
        let next = sim.timers.first().map(|(at, _)| *at);
        tokio::select! {
            ev = rx.recv() => match ev {
                Ok(ev) => sim.route(&ev),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => sim.resync(),
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = async {
                match next {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            } => sim.fire_due(),
        }
    }
}

/// Parses a duration such as `500ms`, `1s`, `2m` (for flags and annotations); kept here for
/// callers that named it `controllers::parse_duration`.
pub use rollgit_syntax::parse_duration;
