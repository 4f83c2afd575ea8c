//! The per-repository worker: one task owns one repository's state, so nothing is locked
//! across repositories.
//!
//! Triggers (poll, webhook, file-system watch) coalesce into one fetch; an unchanged head
//! renders nothing; the tree diff since the last applied commit picks the apps to re-render;
//! a bad app is rejected whole and keeps its last good state. Drift events from the apply
//! stage's watches re-apply what someone changed.
//!
//! One retry policy (backon, exponential with jitter, capped at the poll interval) follows
//! the class of what failed: a transient error is retried after a backoff (one retry timer per
//! repository, whatever triggers arrive meanwhile), a requeue after the delay it names, and a
//! terminal one waits for the next commit.

use crate::ErrorClass;
use crate::apply::drift::{Changed, DriftWatches, change_mark, object_key};
use crate::apply::{
    Applier, ApplyError, ApplyOptions, ApplyOutcome, ApplyReport, Health, Refused, SharedLookup,
};
use crate::clock::SharedClock;
use crate::config::Repo;
use crate::daemon::requests::{self, AppEvent, SyncRequest, WorkflowRequest};
use crate::k8s::crds::{AppSource, ApplicationSpec};
use crate::k8s::events::{Events, Severity};
use crate::k8s::{Inventory, ObjRef};
use crate::metrics::Metrics;
use crate::plan::read::{Snapshot, Which};
use crate::plan::{self, PlanContext};
use crate::record::bumps::{Bump, write_bumps};
use crate::record::rollback::RepoWriter;
use crate::record::status::{self as app_status, AppStatus, StatusError};
use crate::rollout::workflow::{Fleet, WorkflowRun};
use backon::BackoffBuilder;
use futures::StreamExt;
use kube::api::DynamicObject;
use rollgit_render::{AppDir, ObjectIndex, SourceFile};
use rollgit_source::{ObjectId, RepoSpec, Trigger};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A sync of more apps than this looks their objects up once for all of them (a LIST per kind
/// and namespace) rather than per app.
pub const SHARED_LOOKUP_APPS: usize = 8;

/// How long the first sync waits for the list of the apps' status objects (their
/// suspensions).
pub const LIST_WAIT: Duration = Duration::from_secs(5);

/// The longest the worker waits before it tries a failing cluster again.
pub const CLUSTER_RETRY_MAX: Duration = Duration::from_secs(3);

/// Errors of one sync of a repository.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Fetching or reading Git failed.
    #[error("git")]
    Source(#[from] rollgit_source::SourceError),
    /// Two apps of the commit would have one name: the commit is rejected whole.
    #[error(transparent)]
    Names(crate::plan::read::ReadError),
    /// A blocking task panicked or was cancelled.
    #[error("internal: a blocking task ended")]
    Join(#[from] tokio::task::JoinError),
    /// Some apps could not be synced; each is retried as its error's class says.
    #[error("{} app(s) not synced: {}", .0.len(), .0.iter().map(|(a, e)| format!("{a}: {}", crate::error_chain(e))).collect::<Vec<_>>().join("; "))]
    Apps(Vec<(String, AppError)>),
}

impl SyncError {
    /// How the worker retries it: the most urgent class among the apps'.
    pub fn class(&self) -> ErrorClass {
        match self {
            SyncError::Source(e) if e.is_transient() => ErrorClass::Transient,
            SyncError::Source(_) | SyncError::Names(_) | SyncError::Join(_) => ErrorClass::Terminal,
            SyncError::Apps(apps) => apps
                .iter()
                .map(|(_, e)| e.class())
                .min()
                .unwrap_or(ErrorClass::Terminal),
        }
    }
}

/// Why one app could not be synced (its commit was not rejected: it could not be tried).
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Reading the cluster's revisions of the app failed.
    #[error("listing its ControllerRevisions")]
    Revisions(#[source] kube::Error),
    /// Creating a missing target namespace (`createNamespace`) failed.
    #[error("creating its missing namespaces (createNamespace)")]
    Namespace(#[source] kube::Error),
    /// Reading or creating its status object failed.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// The apply stage failed as a whole.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Objects failed to apply (the status names them).
    #[error("{0} object(s) failed to apply")]
    Objects(usize, ErrorClass),
    /// The cluster refused the commit (its status names the objects); it may pass later.
    #[error("the cluster refused {0} object(s) of the commit")]
    Refused(usize, ErrorClass),
    /// A workload could not be held for its Kruise Rollout before the apply.
    #[error(transparent)]
    Hold(#[from] crate::rollout::kruise::HoldError),
}

impl AppError {
    /// How it is retried.
    pub fn class(&self) -> ErrorClass {
        match self {
            AppError::Revisions(e) | AppError::Namespace(e) => ErrorClass::of_kube(e),
            AppError::Status(e) => e.class(),
            AppError::Apply(e) => e.class(),
            AppError::Objects(_, class) | AppError::Refused(_, class) => *class,
            AppError::Hold(e) => e.class(),
        }
    }
}

/// What the daemon remembers of one app between syncs.
#[derive(Default)]
struct AppRecord {
    dir: Option<AppDir>,
    /// Objects of the last good render (re-applied on drift), kept as compact JSON: parsed
    /// values cost about ten times their text, and 10,000 of them are held at once.
    desired: Desired,
    inventory: Inventory,
    publish: Option<(String, String)>,
    /// Why the last sync of this app did not finish, if it did not.
    failed: Option<ErrorClass>,
    last_applied_commit: Option<String>,
    drift_corrections: u64,
    /// Generation (or content hash) of each applied object, by `kind/namespace/name`.
    seen: HashMap<String, String>,
    /// The last status written (health is refreshed on it as the cluster changes).
    status: Option<AppStatus>,
    /// The Application (status object) as last read or written, so that a status write
    /// needs no read first.
    status_object: StatusObject,
    /// The health of each applied object, by `apiVersion/kind/namespace/name`: from the apply
    /// responses, then from the watch events (never read again).
    healths: BTreeMap<String, (String, Health)>,
    /// The status object's spec.
    status_spec: ApplicationSpec,
    /// A namespace where the app's status object was before it moved home (a rollgit that
    /// kept status objects in the repository's namespace, or an Application that changed
    /// namespace): deleted once a sync applied the app fully, so that its Rollouts and
    /// revisions were applied with the new owner first.
    moved_from: Option<String>,
    /// Taken over from the status object (once per app and daemon run).
    taken_over: bool,
    /// The app's directory left Git and its prune waits for confirmation.
    gone: bool,
    /// The app's workflow run (topology policies or a workflow).
    workflow: Option<WorkflowRun>,
    /// The health of what the app applies to its own cluster (the workflow's clusters are
    /// added to it in the status).
    local_health: Option<crate::apply::Health>,
    /// The workflow run and clusters a previous daemon recorded (taken over at the first
    /// render).
    recorded_workflow: Option<(
        crate::k8s::crds::WorkflowStatus,
        Vec<crate::k8s::crds::ClusterStatus>,
    )>,
}

/// The app's Application as the worker last saw it.
#[derive(Default, Clone)]
enum StatusObject {
    /// Not read yet: a write reads it first.
    #[default]
    Unknown,
    /// It does not exist.
    Missing,
    /// As last read or written.
    Live(Box<DynamicObject>),
}

impl StatusObject {
    fn of(obj: Option<DynamicObject>) -> Self {
        obj.map_or(Self::Missing, |o| Self::Live(Box::new(o)))
    }

    /// The object as known in namespace `home`, and the namespace it was found in when that
    /// is another (it is then not known at home: read it first).
    fn at_home(self, home: &str) -> (Self, Option<String>) {
        match self {
            Self::Live(o) if o.metadata.namespace.as_deref() != Some(home) => {
                (Self::Unknown, o.metadata.namespace.clone())
            }
            other => (other, None),
        }
    }

    /// Whether it exists as last written or read.
    fn is_live(&self) -> bool {
        matches!(self, Self::Live(_))
    }
}

/// What one app's sync needs of the worker's memory of it, taken before the apps of a commit
/// are synced concurrently.
struct AppInput {
    app: AppDir,
    files: Vec<SourceFile>,
    request: Option<SyncRequest>,
    prev_inventory: Inventory,
    publish: Option<(String, String)>,
    last_applied_commit: Option<String>,
    drift_corrections: u64,
    status_object: StatusObject,
    /// The namespace of a status object to delete once the app's status is written at home.
    moved_from: Option<String>,
    /// The app's ControllerRevisions when the sync listed them for every app at once.
    revisions: Option<Vec<Value>>,
}

/// What the worker remembers of an app's last good commit, as a rejection records it.
struct Memory {
    last_applied_commit: Option<String>,
    inventory: Inventory,
    publish: Option<(String, String)>,
    drift_corrections: u64,
}

/// One app's sync: what it did and how it ended.
struct AppOutcome {
    name: String,
    /// The app's directory once it was planned.
    dir: Option<AppDir>,
    done: Option<AppDone>,
    result: Result<(), AppError>,
}

/// What one app's sync did, recorded in the worker's memory afterwards.
struct AppDone {
    dir: AppDir,
    /// Set when the commit was applied (fully or not).
    applied: Option<Applied>,
    /// The status written.
    status: AppStatus,
    spec: ApplicationSpec,
    status_object: StatusObject,
    /// The commit was rejected (a render error or the cluster's refusal).
    rejected: bool,
    /// The app's workflow plan to take up (`Some(None)`: the app has no workflow any more),
    /// when the commit was applied.
    workflow: Option<Option<crate::plan::workflow::WorkflowPlan>>,
    /// The commit, for the workflow.
    commit: String,
    /// The status object's old copy in another namespace was deleted (it moved home).
    moved: bool,
}

/// What an applied commit leaves in the worker's memory.
struct Applied {
    /// Nothing failed: the commit is the app's last good state.
    ok: bool,
    inventory: Inventory,
    desired: Desired,
    publish: (String, String),
    commit: String,
    marks: Vec<(String, String)>,
    healths: BTreeMap<String, (String, Health)>,
}

/// The health of each object of an apply report, by key: the apply responses, and the
/// objects that failed as missing.
fn report_healths(report: &ApplyReport) -> BTreeMap<String, (String, Health)> {
    let mut out = BTreeMap::new();
    for o in &report.live {
        let who = ObjRef::from_object(o).map_or_else(String::new, |r| r.to_string());
        out.insert(object_key(o), (who, crate::apply::health(o)));
    }
    for (r, _) in &report.errors {
        let key = format!(
            "{}/{}/{}/{}",
            r.api_version(),
            r.kind,
            r.namespace.as_deref().unwrap_or_default(),
            r.name
        );
        out.entry(key)
            .or_insert_with(|| (r.to_string(), Health::missing()));
    }
    out
}

fn aggregate_healths(healths: &BTreeMap<String, (String, Health)>) -> Health {
    crate::apply::aggregate(healths.values().map(|(w, h)| (w.as_str(), h)))
}

/// An app's desired objects as compact JSON, with their keys for quick membership checks.
#[derive(Default)]
struct Desired {
    json: Vec<u8>,
    keys: BTreeSet<String>,
}

impl Desired {
    fn new(objects: &[Value]) -> Self {
        Self {
            json: serde_json::to_vec(objects).unwrap_or_default(),
            keys: objects.iter().map(object_key).collect(),
        }
    }

    fn objects(&self) -> Vec<Value> {
        serde_json::from_slice(&self.json).unwrap_or_default()
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// One repository's worker.
pub struct RepoWorker {
    repo: Repo,
    spec: RepoSpec,
    cache: PathBuf,
    client: kube::Client,
    applier: Applier,
    trigger: Trigger,
    metrics: Arc<Metrics>,
    clock: SharedClock,
    events: Events,
    writer: RepoWriter,
    apps: BTreeMap<String, AppRecord>,
    last_head: Option<ObjectId>,
    drift: Option<DriftWatches>,
    /// When the next retry of a failed sync is due (one timer, whatever else triggers).
    retry_at: Option<tokio::time::Instant>,
    backoff: Option<backon::ExponentialBackoff>,
    /// `rollgit sync` requests not handled yet, by app.
    requests: BTreeMap<String, SyncRequest>,
    /// The failure that keeps coming back, logged at each doubling.
    repeats: crate::Repeats,
    /// Set once the repository's apps were synced (for `/readyz`).
    ready: Arc<std::sync::atomic::AtomicBool>,
    /// True once the cluster has rollgit's CRDs.
    crds: tokio::sync::watch::Receiver<bool>,
    /// Who runs Kruise Rollouts in the cluster: when rollgit does, it holds their workloads
    /// before an apply and refuses what its executor cannot run; `None`: nobody (no holds).
    kruise: Option<Arc<crate::rollout::kruise::Detector>>,
    /// The clusters workflows deliver to.
    fleet: Fleet,
    /// The drift watches of what workflows delivered, by cluster of the fleet.
    fleet_drift: BTreeMap<String, DriftWatches>,
    /// The fleet as topology policies see it.
    fleet_clusters: Vec<rollgit_render::workflow::FleetCluster>,
    /// The repository's cluster (`local`).
    cluster: String,
    /// `rollgit workflow` requests not handled yet.
    wf_requests: Vec<(String, WorkflowRequest)>,
    /// The namespaces rollgit watches (and so may write to).
    scope: crate::config::WatchScope,
    /// The last commit counted in `rollgit_render_errors_total` (once per commit).
    render_error_commit: Option<String>,
    /// An app's commit was rejected during the current pass (the sync counts as an error).
    rejected_in_pass: bool,
    /// Apps `rollgit suspend` holds: not applied, drift not corrected.
    suspended: BTreeSet<String>,
    /// Apps resumed since the last pass (synced again even when the head did not move).
    resumed: BTreeSet<String>,
}

impl RepoWorker {
    /// Watches (and writes) only in `scope`'s namespaces.
    pub fn with_scope(mut self, scope: crate::config::WatchScope) -> Self {
        self.scope = scope;
        self
    }

    /// Applies, prunes and reads health through `client` (an impersonating one).
    pub fn with_apply_client(mut self, client: kube::Client) -> Self {
        self.applier = Applier::new(client).with_namespace(&self.repo.namespace);
        self
    }

    /// A worker for `repo`, fetching into `cache`, applying through `client`.
    pub fn new(
        repo: Repo,
        cache: PathBuf,
        client: kube::Client,
        trigger: Trigger,
        opts: &crate::daemon::Options,
        writer: RepoWriter,
        crds: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        let (metrics, clock) = (opts.metrics.clone(), opts.clock.clone());
        Self {
            spec: repo.source_spec(),
            applier: Applier::new(client.clone()).with_namespace(&repo.namespace),
            events: Events::new(client.clone()),
            repo,
            cache,
            client,
            trigger,
            metrics,
            clock,
            writer,
            apps: BTreeMap::new(),
            last_head: None,
            drift: None,
            retry_at: None,
            backoff: None,
            requests: BTreeMap::new(),
            repeats: crate::Repeats::default(),
            ready: Arc::default(),
            crds,
            kruise: None,
            fleet: Fleet::default(),
            fleet_drift: BTreeMap::new(),
            fleet_clusters: Vec::new(),
            cluster: "default".into(),
            wf_requests: Vec::new(),
            scope: crate::config::WatchScope::Cluster,
            render_error_commit: None,
            rejected_in_pass: false,
            suspended: BTreeSet::new(),
            resumed: BTreeSet::new(),
        }
    }

    /// The fleet workflows deliver to (`clusters`: as topology policies see them), and the
    /// repository's cluster's name.
    pub fn with_fleet(
        mut self,
        fleet: Fleet,
        clusters: Vec<rollgit_render::workflow::FleetCluster>,
        cluster: &str,
    ) -> Self {
        self.fleet = fleet;
        self.fleet_clusters = clusters;
        self.cluster = cluster.to_string();
        self
    }

    /// Holds the workloads of Kruise Rollouts before applying a new template whenever
    /// `detector` says rollgit, not Kruise's own controller, runs them.
    pub fn with_kruise(mut self, detector: Arc<crate::rollout::kruise::Detector>) -> Self {
        self.kruise = Some(detector);
        self
    }

    /// A flag that turns true once this repository's apps were synced (its head applied, or
    /// every failure left is one only a new commit can fix).
    pub fn readiness(&self) -> Arc<std::sync::atomic::AtomicBool> {
        self.ready.clone()
    }

    /// How this repository's apps are applied and pruned (`allow_mass_prune`: confirmed for
    /// this sync by `rollgit sync --allow-mass-prune`).
    fn apply_options(&self, allow_mass_prune: bool) -> ApplyOptions {
        let mut opts = ApplyOptions::new().prune(self.repo.prune);
        opts.prune_adopted = self.repo.prune_adopted;
        opts.allow_mass_prune = self.repo.allow_mass_prune || allow_mass_prune;
        // rollgit's own namespace, when it runs in a cluster.
        if let Ok(ns) = std::env::var("POD_NAMESPACE")
            && !ns.is_empty()
        {
            opts.protected_namespaces.push(ns);
        }
        opts
    }

    fn backoff_policy(&self) -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_delay(self.repo.interval.max(Duration::from_millis(500)))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }

    /// Runs until the task is dropped: poll (with deterministic jitter), watch a local
    /// repository's refs, and serve triggers, retries and drift events.
    pub async fn run(mut self) {
        // Nothing is applied before the cluster has rollgit's CRDs (its API may be down).
        if self.crds.wait_for(|ready| *ready).await.is_err() {
            return;
        }
        let schedule = rollgit_source::PollSchedule::new(&self.repo.url, self.repo.interval);
        // Polls have their own trigger (webhooks, the file-system watch and `rollgit sync`
        // share the repository's).
        let polled = rollgit_source::Trigger::new();
        let poller = tokio::spawn(rollgit_source::poll(polled.clone(), schedule));
        let _poller = crate::AbortOnDrop(poller.abort_handle());
        let _watch = if self.spec.is_local_path() {
            match rollgit_source::watch_local_repo(
                std::path::Path::new(&self.repo.url),
                &self.repo.branch,
                self.trigger.clone(),
            ) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(repo = %self.repo.name, error = %crate::error_chain(&e), "cannot watch the local repository; polling only");
                    None
                }
            }
        } else {
            None
        };
        let (drift, mut drift_rx) =
            DriftWatches::new(self.client.clone(), &self.repo.name, self.scope.clone());
        self.drift = Some(drift);
        // What workflows deliver to the fleet is watched in each cluster too.
        let (fleet_tx, mut fleet_rx) = tokio::sync::mpsc::unbounded_channel::<(String, Changed)>();
        let mut _fleet_forwards = Vec::new();
        for (cluster, member) in self.fleet.members.iter() {
            let (watches, mut rx) =
                DriftWatches::new(member.client.clone(), &self.repo.name, self.scope.clone());
            self.fleet_drift.insert(cluster.clone(), watches);
            let (tx, cluster) = (fleet_tx.clone(), cluster.clone());
            let forward = tokio::spawn(async move {
                while let Some(c) = rx.recv().await {
                    if tx.send((cluster.clone(), c)).is_err() {
                        return;
                    }
                }
            });
            _fleet_forwards.push(crate::AbortOnDrop(forward.abort_handle()));
        }
        self.ensure_fleet_watches();
        let (requests_task, mut requests_rx) = requests::watch(
            self.client.clone(),
            &self.scope,
            &self.repo.namespace,
            &self.repo.name,
        );
        let _requests = crate::AbortOnDrop(requests_task.abort_handle());
        // The first sync waits (bounded) for the apps' suspensions, so that a suspended app is
        // not applied when the daemon starts.
        let listed_by = tokio::time::Instant::now() + LIST_WAIT;
        loop {
            match tokio::time::timeout_at(listed_by, requests_rx.recv()).await {
                Ok(Some(AppEvent::Listed)) | Ok(None) | Err(_) => break,
                Ok(Some(ev)) => {
                    self.app_events(vec![ev]).await;
                }
            }
        }
        self.trigger.notify();
        let mut jumps = self.clock.jumps();
        loop {
            let retry_at = self.retry_at;
            let retry = async move {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            let wf_in = self.workflow_wait();
            let wf_timer = async move {
                match wf_in {
                    Some(d) => tokio::time::sleep(d).await,
                    None => std::future::pending().await,
                }
            };
            let jumped = async {
                match jumps.as_mut() {
                    Some(j) => futures::StreamExt::next(j).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.trigger.wait() => self.sync().await,
                _ = polled.wait() => {
                    // While a failed sync waits for its retry (at most the poll interval away),
                    // the poll does not start a second chain of attempts: the retry fetches.
                    if self.retry_at.is_none() {
                        self.sync().await;
                    }
                }
                _ = retry => self.sync().await,
                _ = wf_timer => self.workflow_passes().await,
                Some(()) = jumped => self.workflow_passes().await,
                Some(first) = requests_rx.recv() => {
                    let mut events = vec![first];
                    while let Ok(e) = requests_rx.try_recv() {
                        events.push(e);
                    }
                    if self.app_events(events).await {
                        self.sync().await;
                    }
                    self.handle_workflow_requests().await;
                }
                Some((cluster, first)) = fleet_rx.recv() => {
                    let mut by_app: BTreeMap<(String, String), Vec<Changed>> = BTreeMap::new();
                    by_app.entry((cluster, first.app.clone())).or_default().push(first);
                    while let Ok((cluster, c)) = fleet_rx.try_recv() {
                        by_app.entry((cluster, c.app.clone())).or_default().push(c);
                    }
                    for ((cluster, app), changes) in by_app {
                        self.correct_fleet_drift(&cluster, &app, changes).await;
                    }
                }
                Some(first) = drift_rx.recv() => {
                    // Coalesce a burst of watch events: the latest object per app and key, then
                    // at most one re-apply (or one health refresh) per app.
                    let mut by_app: BTreeMap<String, BTreeMap<String, Changed>> = BTreeMap::new();
                    let mut add = |c: Changed| {
                        by_app.entry(c.app.clone()).or_default().insert(object_key(&c.object), c);
                    };
                    add(first);
                    while let Ok(c) = drift_rx.try_recv() {
                        add(c);
                    }
                    for (app, objs) in by_app {
                        self.correct_drift(&app, objs.into_values().collect()).await;
                    }
                }
            }
        }
    }

    /// Takes in what the watch of the apps' status objects told; true when a sync is due (a
    /// `rollgit sync` request, or an app resumed).
    async fn app_events(&mut self, events: Vec<AppEvent>) -> bool {
        let mut sync = false;
        for ev in events {
            match ev {
                AppEvent::Sync(r) => {
                    self.requests.insert(r.app.clone(), r);
                    sync = true;
                }
                AppEvent::Workflow(app, r) => self.wf_requests.push((app, r)),
                AppEvent::Suspend {
                    app,
                    suspended: true,
                } => {
                    if self.suspended.insert(app.clone()) {
                        tracing::info!(repo = %self.repo.name, app = %app, "app suspended: not synced until `rollgit resume`");
                        self.resumed.remove(&app);
                        let dir = self.apps.get(&app).and_then(|r| r.dir.clone());
                        if let Some(dir) = dir {
                            self.show_suspended(&dir, None).await;
                        }
                    }
                }
                AppEvent::Suspend {
                    app,
                    suspended: false,
                } => {
                    if self.suspended.remove(&app) {
                        tracing::info!(repo = %self.repo.name, app = %app, "app resumed: syncing it");
                        self.resumed.insert(app);
                        sync = true;
                    }
                }
                AppEvent::Listed => {}
            }
        }
        sync
    }

    /// Records that a suspended app is not synced: its directory (to sync it on resume) and a
    /// status saying so (answering a `rollgit sync` request, if one came).
    async fn show_suspended(&mut self, app: &AppDir, request: Option<&SyncRequest>) {
        let name = app.name.clone();
        let home = self.home(app).to_string();
        if let Err(e) = self.take_over(&name, &home).await {
            tracing::warn!(app = %name, error = %crate::error_chain(&e), "reading the recorded status of a suspended app failed");
        }
        let spec = self.status_spec(app);
        let rec = self.apps.entry(name.clone()).or_default();
        if rec.dir.is_none() {
            rec.dir = Some(app.clone());
        }
        let mut status = rec.status.clone().unwrap_or_else(|| {
            let mut s = AppStatus::starting();
            s.health = crate::apply::Health {
                status: crate::apply::HealthStatus::Unknown,
                message: "not checked while suspended".into(),
            };
            s.inventory = rec.inventory.clone();
            s.last_applied_commit = rec.last_applied_commit.clone();
            s.last_attempted_commit = rec.last_applied_commit.clone();
            if let Some((v, h)) = &rec.publish {
                s.publish_version = Some(v.clone());
                s.content_hash = Some(h.clone());
            }
            s.drift_corrections = rec.drift_corrections;
            s
        });
        status.suspended = true;
        if let Some(r) = request {
            status.last_sync_request = Some(r.token.clone());
        }
        rec.status_spec = spec.clone();
        rec.status = Some(status.clone());
        if let Some(d) = rec.dir.as_mut() {
            // Where its status object lives follows the Application.
            d.namespace = app.namespace.clone();
        }
        self.write_app_status(&name, &spec, &status).await;
    }

    async fn sync(&mut self) {
        self.retry_at = None;
        self.rejected_in_pass = false;
        let started = Instant::now();
        let result = self.try_sync().await;
        if !self.wf_requests.is_empty() {
            self.handle_workflow_requests().await;
        }
        match result {
            Ok(changed) => {
                self.backoff = None;
                self.repeats.clear();
                self.ready.store(true, std::sync::atomic::Ordering::Relaxed);
                if changed {
                    // A commit rejected whole is a failed apply, though nothing is retried.
                    let result = if self.rejected_in_pass {
                        "error"
                    } else {
                        "applied"
                    };
                    self.metrics
                        .sync(&self.repo.name, result, started.elapsed());
                }
            }
            Err(e) => {
                self.metrics
                    .sync(&self.repo.name, "error", started.elapsed());
                let class = e.class();
                // A cluster that comes back is used within seconds; a Git remote is asked no
                // more often than the poll interval once it keeps failing.
                let cap = match e {
                    SyncError::Source(_) => self.repo.interval,
                    _ => CLUSTER_RETRY_MAX.min(self.repo.interval),
                };
                let retry_in = match class {
                    ErrorClass::Transient => {
                        let policy = self.backoff_policy();
                        let next = self
                            .backoff
                            .get_or_insert_with(|| policy.build())
                            .next()
                            .unwrap_or(cap);
                        Some(next.min(cap))
                    }
                    ErrorClass::Requeue(d) => Some(d),
                    ErrorClass::Terminal => {
                        // Nothing to wait for but a new commit: caught up.
                        self.ready.store(true, std::sync::atomic::Ordering::Relaxed);
                        None
                    }
                };
                self.retry_at = retry_in.map(|d| tokio::time::Instant::now() + d);
                let text = crate::error_chain(&e);
                if let Some(times) = self.repeats.note(&text) {
                    tracing::warn!(repo = %self.repo.name, error = %text, ?class, ?retry_in, times, "sync failed; the cluster keeps its last good state");
                } else {
                    tracing::debug!(repo = %self.repo.name, error = %text, ?retry_in, "sync failed again");
                }
            }
        }
    }

    /// One pass: fetch, and if the head moved (or an app waits for a retry), render and apply
    /// what changed. Returns whether anything was rendered.
    async fn try_sync(&mut self) -> Result<bool, SyncError> {
        let spec = self.spec.clone();
        let cache = self.cache.clone();
        let fetched =
            tokio::task::spawn_blocking(move || rollgit_source::fetch(&spec, &cache)).await??;
        let retrying = self
            .apps
            .values()
            .any(|a| a.failed.is_some_and(|c| c != ErrorClass::Terminal));
        let requested: BTreeMap<String, SyncRequest> = std::mem::take(&mut self.requests);
        let resumed: BTreeSet<String> = std::mem::take(&mut self.resumed);
        if self.last_head == Some(fetched.head)
            && !retrying
            && requested.is_empty()
            && resumed.is_empty()
        {
            return Ok(false);
        }
        let head = fetched.head;
        let known: BTreeMap<String, (bool, Option<AppDir>)> = self
            .apps
            .iter()
            // An app that left Git (its prune held) no longer names its directory, which may
            // hold the app it was renamed to.
            .filter(|(_, r)| !r.gone)
            .map(|(n, r)| {
                // A terminal failure waits for a change of the app (or a `rollgit sync`);
                // others are tried again.
                let retry = r.failed.is_some_and(|c| c != ErrorClass::Terminal)
                    || requested.contains_key(n)
                    || resumed.contains(n);
                (n.clone(), (retry, r.dir.clone()))
            })
            .collect();
        let (spec, cache, roots, prev) = (
            self.spec.clone(),
            self.cache.clone(),
            self.repo.paths.clone(),
            self.last_head,
        );
        let snapshot: Result<Snapshot, crate::plan::read::ReadError> =
            tokio::task::spawn_blocking(move || {
                let repo = rollgit_source::Repo::open(&spec, &cache)?;
                let which = match prev {
                    None => Which::All,
                    Some(prev) => Which::Changed {
                        prev,
                        known: &known,
                    },
                };
                crate::plan::read::read_apps(&repo, head, &roots, which)
            })
            .await?;
        let snapshot = match snapshot {
            Ok(s) => s,
            Err(crate::plan::read::ReadError::Source(e)) => return Err(SyncError::Source(e)),
            Err(e) => {
                if let crate::plan::read::ReadError::NameClash(clashes) = &e {
                    self.show_name_clash(&head.to_string(), clashes).await;
                }
                return Err(SyncError::Names(e));
            }
        };
        let commit = head.to_string();
        // Apps whose directory left Git: prune what they applied.
        let names: BTreeSet<String> = snapshot.apps.iter().map(|a| a.name.clone()).collect();
        let gone: Vec<String> = self
            .apps
            .keys()
            .filter(|n| !names.contains(*n))
            .cloned()
            .collect();
        tracing::info!(repo = %self.repo.name, commit = %commit, summary = %snapshot.summary, affected = snapshot.read.len(), apps = names.len(), "new commit");
        let mut failed = Vec::new();
        for name in gone {
            if self.suspended.contains(&name) {
                continue;
            }
            let request = requested.get(&name);
            if let Err(e) = self.remove_app(&name, request).await {
                failed.push((name, e));
            }
        }
        // What each app needs of the cluster's records, read once for all of them (one LIST of
        // Applications, one of ControllerRevisions) when several apps are synced.
        let homes: Vec<(String, String)> = snapshot
            .read
            .iter()
            .map(|(a, _)| (a.name.clone(), self.home(a).to_string()))
            .collect();
        let not_taken_over = self.take_over_all(&homes).await;
        let revisions = if snapshot.read.len() > 1 {
            let namespaces: BTreeSet<&str> = homes.iter().map(|(_, ns)| ns.as_str()).collect();
            let mut all: Option<HashMap<(String, String), Vec<Value>>> = Some(HashMap::new());
            for ns in namespaces {
                match plan::revisions::list_by_app(&self.client, ns).await {
                    Ok(r) => {
                        if let Some(all) = all.as_mut() {
                            all.extend(r.into_iter().map(|(app, v)| ((ns.to_string(), app), v)));
                        }
                    }
                    Err(e) => {
                        tracing::debug!(repo = %self.repo.name, namespace = ns, error = %crate::error_chain(&e), "listing ControllerRevisions failed; each app lists its own");
                        all = None;
                        break;
                    }
                }
            }
            all
        } else {
            None
        };
        let mut inputs = Vec::with_capacity(snapshot.read.len());
        for (app, files) in snapshot.read {
            let name = app.name.clone();
            if not_taken_over.iter().any(|(n, _)| *n == name) {
                continue;
            }
            if self.suspended.contains(&name) {
                tracing::info!(repo = %self.repo.name, app = %name, commit = %commit, "app suspended: not applied");
                self.show_suspended(&app, requested.get(&name)).await;
                continue;
            }
            let home = self.home(&app).to_string();
            let rec = self.apps.entry(name.clone()).or_default();
            // A status object elsewhere (written by a rollgit that kept them in the
            // repository's namespace, or before the Application moved) is written anew at
            // home, then deleted.
            let (status_object, moved) = rec.status_object.clone().at_home(&home);
            if moved.is_some() {
                rec.moved_from = moved;
            }
            let moved_from = rec.moved_from.clone().filter(|m| *m != home);
            inputs.push(AppInput {
                request: requested.get(&name).cloned(),
                prev_inventory: rec.inventory.clone(),
                publish: rec.publish.clone(),
                last_applied_commit: rec.last_applied_commit.clone(),
                drift_corrections: rec.drift_corrections,
                status_object,
                moved_from,
                revisions: revisions.as_ref().map(|r| {
                    r.get(&(home.clone(), name.clone()))
                        .cloned()
                        .unwrap_or_default()
                }),
                app,
                files,
            });
        }
        for (name, e) in not_taken_over {
            self.apps.entry(name.clone()).or_default().failed = Some(e.class());
            failed.push((name, e));
        }
        // The apps are planned, applied and recorded concurrently (bounded); what the worker
        // remembers of them is updated afterwards.
        let index = snapshot.index.as_ref();
        // Many apps at once (the first sync, a change to many): each kind and namespace is
        // looked up once for all of them.
        let lookup = (inputs.len() > SHARED_LOOKUP_APPS).then(SharedLookup::new);
        let this = &*self;
        let futs: Vec<_> = inputs
            .into_iter()
            .map(|input| this.sync_app(input, index, &commit, lookup.clone()))
            .collect();
        let outcomes: Vec<AppOutcome> = futures::stream::iter(futs)
            .buffer_unordered(self.repo.concurrent_apps.max(1))
            .collect()
            .await;
        for mut o in outcomes {
            let workflow = o.done.as_mut().and_then(|d| {
                d.workflow
                    .take()
                    .map(|plan| (plan, d.dir.clone(), d.commit.clone()))
            });
            self.record(o.name.clone(), o.dir, o.done);
            if let Some((plan, dir, commit)) = workflow {
                self.update_workflow(&o.name, &dir, plan, &commit).await;
            }
            if self.apps.get(&o.name).is_some_and(|r| r.workflow.is_some()) {
                self.workflow_pass(&o.name).await;
            }
            let rec = self.apps.entry(o.name.clone()).or_default();
            match o.result {
                Ok(()) => rec.failed = None,
                Err(e) => {
                    rec.failed = Some(e.class());
                    failed.push((o.name, e));
                }
            }
        }
        self.last_head = Some(head);
        self.ensure_drift_watches();
        if failed.is_empty() {
            Ok(true)
        } else {
            Err(SyncError::Apps(failed))
        }
    }

    /// Says on the status object of each known app whose name the commit gives twice that the
    /// commit is rejected, and why (naming each Application's file and line and each
    /// directory); the app keeps running what it ran.
    async fn show_name_clash(&mut self, commit: &str, clashes: &[(String, Vec<String>)]) {
        for (name, by) in clashes {
            let Some(rec) = self.apps.get(name) else {
                continue;
            };
            let Some(mut status) = rec.status.clone() else {
                continue;
            };
            let line = format!(
                "app name {name:?} is given by {}; an app's name must be unique in its repository: rename the Application (metadata.name) or the directory",
                by.join(" and by ")
            );
            if status.last_attempted_commit.as_deref() == Some(commit)
                && status.last_error.first() == Some(&line)
            {
                continue;
            }
            status.phase = crate::k8s::crds::Phase::Failed;
            status.message = format!(
                "commit {} rejected: {line}",
                commit.chars().take(12).collect::<String>()
            );
            status.last_attempted_commit = Some(commit.to_string());
            status.last_error = vec![line];
            let spec = rec.status_spec.clone();
            if let Some(rec) = self.apps.get_mut(name) {
                rec.status = Some(status.clone());
                // Synced again at the next commit (whether its files change or not), which
                // replaces this status.
                rec.failed = Some(ErrorClass::Transient);
            }
            self.write_app_status(name, &spec, &status).await;
        }
    }

    /// Prunes what an app whose directory left Git applied, then deletes its status object.
    /// A prune of everything waits for `rollgit sync APP --allow-mass-prune` (unless the
    /// repository allows it): until then the app and its status stay, saying so.
    async fn remove_app(
        &mut self,
        name: &str,
        request: Option<&SyncRequest>,
    ) -> Result<(), AppError> {
        let Some(rec) = self.apps.get(name) else {
            return Ok(());
        };
        let inventory = rec.inventory.clone();
        if self.repo.prune && !inventory.is_empty() {
            let opts = self.apply_options(request.is_some_and(|r| r.allow_mass_prune));
            let report = match self.applier.apply_app(name, &[], &inventory, &opts).await? {
                ApplyOutcome::Applied(report) => report,
                ApplyOutcome::Refused(_) => return Ok(()),
            };
            if report.held_prune.is_some() {
                let rec = self.apps.entry(name.to_string()).or_default();
                rec.gone = true;
                let mut status = rec.status.clone().unwrap_or_else(AppStatus::starting);
                status.held_prune = AppStatus::applied_held(&report);
                status.last_sync_request = request.map(|r| r.token.clone());
                status.message = format!(
                    "the app left Git; pruning its {} objects waits for `rollgit sync {name} --allow-mass-prune`",
                    inventory.len()
                );
                let spec = rec.status_spec.clone();
                let known = rec.status_object.clone();
                let home = self.home_of(name);
                let obj = self.write_status(name, &home, &spec, &status, known).await;
                if let Some(rec) = self.apps.get_mut(name) {
                    rec.status = Some(status);
                    rec.status_object = obj;
                }
                self.held_prune_event(name, inventory.len()).await;
                return Ok(());
            }
            if !report.errors.is_empty() {
                let class = if report.transient {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Terminal
                };
                return Err(AppError::Objects(report.errors.len(), class));
            }
        }
        // What its workflow delivered to the fleet goes too.
        let delivered: Vec<(String, Inventory)> = self
            .apps
            .get(name)
            .map(|r| match (&r.workflow, &r.recorded_workflow) {
                (Some(run), _) => run
                    .clusters
                    .values()
                    .map(|c| (c.name.clone(), c.inventory.clone()))
                    .collect(),
                (None, Some((_, clusters))) => clusters
                    .iter()
                    .map(|c| (c.name.clone(), c.inventory.clone()))
                    .collect(),
                (None, None) => Vec::new(),
            })
            .unwrap_or_default();
        if self.repo.prune {
            for (cluster, inv) in delivered.into_iter().filter(|(_, i)| !i.is_empty()) {
                let Some(member) = self.fleet.members.get(&cluster).cloned() else {
                    continue;
                };
                let opts = self.apply_options(request.is_some_and(|r| r.allow_mass_prune));
                let report = match member.applier.apply_app(name, &[], &inv, &opts).await? {
                    ApplyOutcome::Applied(report) => report,
                    ApplyOutcome::Refused(_) => return Ok(()),
                };
                if report.held_prune.is_some() {
                    let rec = self.apps.entry(name.to_string()).or_default();
                    rec.gone = true;
                    let mut status = rec.status.clone().unwrap_or_else(AppStatus::starting);
                    status.held_prune = AppStatus::applied_held(&report);
                    status.last_sync_request = request.map(|r| r.token.clone());
                    status.message = format!(
                        "the app left Git; pruning its {} objects in cluster {cluster} waits for `rollgit sync {name} --allow-mass-prune`",
                        inv.len()
                    );
                    let spec = rec.status_spec.clone();
                    self.write_app_status(name, &spec, &status).await;
                    if let Some(rec) = self.apps.get_mut(name) {
                        rec.status = Some(status);
                    }
                    self.held_prune_event(name, inv.len()).await;
                    return Ok(());
                }
                if !report.errors.is_empty() {
                    let class = if report.transient {
                        ErrorClass::Transient
                    } else {
                        ErrorClass::Terminal
                    };
                    return Err(AppError::Objects(report.errors.len(), class));
                }
                // Pruned there: a retry of the removal does not go back.
                if let Some(rec) = self.apps.get_mut(name) {
                    if let Some(run) = rec.workflow.as_mut()
                        && let Some(c) = run.clusters.get_mut(&cluster)
                    {
                        c.inventory = Inventory::default();
                    }
                    if let Some((_, clusters)) = rec.recorded_workflow.as_mut() {
                        for c in clusters.iter_mut().filter(|c| c.name == cluster) {
                            c.inventory = Inventory::default();
                        }
                    }
                }
                tracing::info!(app = name, cluster = %cluster, pruned = report.pruned.len(), "the app left Git: pruned what its workflow delivered there");
            }
        }
        let home = self.home_of(name);
        if let Some(old) = self.apps.get(name).and_then(|r| r.moved_from.clone()) {
            self.metrics.app_gone(&old, name);
            app_status::delete_status(&self.client, &old, name).await?;
        }
        self.apps.remove(name);
        self.metrics.app_gone(&home, name);
        app_status::delete_status(&self.client, &home, name).await?;
        Ok(())
    }

    async fn held_prune_event(&self, app: &str, count: usize) {
        let reference = crate::k8s::events::reference(
            crate::k8s::API_VERSION,
            "Application",
            Some(&self.home_of(app)),
            app,
        );
        self.events
            .publish(
                &reference,
                Severity::Warning,
                "PruneHeld",
                "Prune",
                &format!(
                    "a prune of {count} objects would delete more than half of app {app}; run `rollgit sync {app} --allow-mass-prune` to let it"
                ),
            )
            .await;
    }

    /// Takes over what a previous run recorded for an app (once), from its status object in
    /// namespace `home`, else (a rollgit that kept them in the repository's namespace) from
    /// the repository's namespace.
    async fn take_over(&mut self, name: &str, home: &str) -> Result<(), StatusError> {
        if self.apps.get(name).is_some_and(|r| r.taken_over) {
            return Ok(());
        }
        let mut obj = app_status::read_application(&self.client, home, name).await?;
        if obj.is_none() && home != self.repo.namespace {
            obj = app_status::read_application(&self.client, &self.repo.namespace, name)
                .await?
                .filter(|o| self.is_ours(o));
        }
        self.take_over_from(name, obj)
    }

    /// Whether an Application is the status object of one of this repository's apps.
    fn is_ours(&self, o: &DynamicObject) -> bool {
        o.data["spec"]["source"]["repo"].as_str() == Some(self.repo.name.as_str())
    }

    /// Takes over what the Application `obj` records for app `name`.
    fn take_over_from(
        &mut self,
        name: &str,
        obj: Option<DynamicObject>,
    ) -> Result<(), StatusError> {
        let recorded = match &obj {
            Some(o) => {
                let ns = o.metadata.namespace.as_deref().unwrap_or_default();
                app_status::recorded_of(o, ns, name)?
            }
            None => None,
        };
        let rec = self.apps.entry(name.to_string()).or_default();
        if let Some(r) = recorded {
            rec.inventory = r.inventory;
            rec.publish = r.publish;
            rec.last_applied_commit = r.last_applied_commit;
            rec.drift_corrections = r.drift_corrections;
            rec.recorded_workflow = r.workflow.map(|w| (w, r.clusters));
        }
        rec.status_object = StatusObject::of(obj);
        rec.taken_over = true;
        Ok(())
    }

    /// Takes over the apps `homes` (name, namespace of its status object) not taken over
    /// yet: one LIST of Applications per namespace when there are several (else, or when one
    /// fails, a GET each). Returns the apps whose record could not be read.
    async fn take_over_all(&mut self, homes: &[(String, String)]) -> Vec<(String, AppError)> {
        let pending: Vec<&(String, String)> = homes
            .iter()
            .filter(|(n, _)| !self.apps.get(n).is_some_and(|r| r.taken_over))
            .collect();
        let mut failed = Vec::new();
        if pending.len() > 1 {
            // The repository's namespace is listed too when an app lives elsewhere: that is
            // where an older rollgit kept its status object.
            let mut namespaces: BTreeSet<&str> = pending.iter().map(|(_, h)| h.as_str()).collect();
            if namespaces.iter().any(|h| *h != self.repo.namespace) {
                namespaces.insert(&self.repo.namespace);
            }
            let mut listed: BTreeMap<String, BTreeMap<String, DynamicObject>> = BTreeMap::new();
            let mut all = true;
            for ns in namespaces {
                match app_status::list_applications(&self.client, ns).await {
                    Ok(found) => {
                        listed.insert(ns.to_string(), found);
                    }
                    Err(e) => {
                        tracing::debug!(repo = %self.repo.name, namespace = ns, error = %crate::error_chain(&e), "listing Applications failed; reading each");
                        all = false;
                        break;
                    }
                }
            }
            if all {
                for (n, home) in pending {
                    let mut obj = listed.get_mut(home).and_then(|f| f.remove(n.as_str()));
                    if obj.is_none() && *home != self.repo.namespace {
                        obj = listed
                            .get_mut(&self.repo.namespace)
                            .and_then(|f| f.remove(n.as_str()))
                            .filter(|o| self.is_ours(o));
                    }
                    if let Err(e) = self.take_over_from(n, obj) {
                        failed.push((n.clone(), AppError::Status(e)));
                    }
                }
                return failed;
            }
        }
        for (n, home) in pending {
            if let Err(e) = self.take_over(n, home).await {
                failed.push((n.clone(), AppError::Status(e)));
            }
        }
        failed
    }

    /// The namespace of app `app`'s status object: its KubeVela Application's, else (or when
    /// rollgit does not watch that namespace, or the repository may not write there) the
    /// repository's.
    fn home<'a>(&'a self, app: &'a AppDir) -> &'a str {
        match app.namespace.as_deref() {
            Some(ns)
                if self.scope.contains(ns)
                    && self
                        .repo
                        .allow
                        .namespaces
                        .as_ref()
                        .is_none_or(|globs| globs.iter().any(|g| g.is_match(ns))) =>
            {
                ns
            }
            _ => &self.repo.namespace,
        }
    }

    /// [`Self::home`] of the app named `name`, as the worker last read it.
    fn home_of(&self, name: &str) -> String {
        self.apps
            .get(name)
            .and_then(|r| r.dir.as_ref())
            .map_or_else(|| self.repo.namespace.clone(), |d| self.home(d).to_string())
    }

    fn status_spec(&self, app: &AppDir) -> ApplicationSpec {
        ApplicationSpec {
            source: AppSource {
                repo: self.repo.name.clone(),
                url: rollgit_source::redact_url(&self.repo.url),
                branch: self.repo.branch.clone(),
                path: app.dir.clone(),
                namespace: self.repo.namespace.clone(),
            },
            app: app.name.clone(),
            suspend: false,
        }
    }

    /// Records what one app's sync did in the worker's memory.
    fn record(&mut self, name: String, dir: Option<AppDir>, done: Option<AppDone>) {
        let rec = self.apps.entry(name).or_default();
        if let Some(dir) = dir {
            rec.dir = Some(dir);
            rec.gone = false;
        }
        let Some(done) = done else {
            return;
        };
        rec.dir = Some(done.dir);
        if let Some(a) = done.applied {
            rec.gone = false;
            if a.ok {
                rec.inventory = a.inventory;
                rec.desired = a.desired;
                rec.publish = Some(a.publish);
                rec.last_applied_commit = Some(a.commit);
            }
            rec.seen.extend(a.marks);
            rec.healths = a.healths;
            rec.local_health = Some(aggregate_healths(&rec.healths));
        }
        rec.status = Some(done.status);
        rec.status_spec = done.spec;
        rec.status_object = done.status_object;
        if done.moved {
            rec.moved_from = None;
        }
        if done.rejected {
            // A commit rejected whole counts once, whatever the number of its apps and passes.
            self.rejected_in_pass = true;
            if self.render_error_commit.as_deref() != Some(done.commit.as_str()) {
                self.metrics.render_error(&self.repo.name);
                self.render_error_commit = Some(done.commit);
            }
        }
    }

    /// Syncs one app (concurrently with others: it only reads the worker): plan, apply, and
    /// write its status once.
    async fn sync_app(
        &self,
        input: AppInput,
        index: Option<&ObjectIndex>,
        commit: &str,
        lookup: Option<Arc<SharedLookup>>,
    ) -> AppOutcome {
        let mut out = AppOutcome {
            name: input.app.name.clone(),
            dir: None,
            done: None,
            result: Ok(()),
        };
        let moved_from = input.moved_from.clone();
        out.result = self
            .try_sync_app(input, index, commit, lookup, &mut out)
            .await;
        if let (Some(old), Some(done)) = (moved_from, &mut out.done)
            && done.status_object.is_live()
            && done.applied.as_ref().is_some_and(|a| a.ok)
        {
            done.moved = self.delete_moved_status(&out.name, &old).await;
        }
        out
    }

    /// Deletes the status object app `name` had in namespace `old` (its status is written
    /// at home now). Its dependents were applied with the new owner first.
    /// Returns whether it is gone.
    async fn delete_moved_status(&self, name: &str, old: &str) -> bool {
        self.metrics.app_gone(old, name);
        match app_status::delete_status(&self.client, old, name).await {
            Ok(()) => {
                tracing::info!(
                    app = name,
                    from = old,
                    "status object moved to the KubeVela Application's namespace"
                );
                true
            }
            Err(e) => {
                tracing::warn!(app = name, namespace = old, error = %crate::error_chain(&e), "deleting the app's status object from its old namespace failed; tried again at the next sync");
                false
            }
        }
    }

    async fn try_sync_app(
        &self,
        input: AppInput,
        index: Option<&ObjectIndex>,
        commit: &str,
        lookup: Option<Arc<SharedLookup>>,
        out: &mut AppOutcome,
    ) -> Result<(), AppError> {
        let AppInput {
            app,
            files,
            request,
            prev_inventory,
            publish,
            last_applied_commit,
            drift_corrections,
            mut status_object,
            moved_from: _,
            revisions,
        } = input;
        let memory = Memory {
            last_applied_commit: last_applied_commit.clone(),
            inventory: prev_inventory.clone(),
            publish: publish.clone(),
            drift_corrections,
        };
        let request = request.as_ref();
        let name = app.name.clone();
        let home = self.home(&app).to_string();
        let prev = match revisions {
            Some(items) => plan::revisions::state_of(&items, publish),
            None => plan::revisions::revision_state(&self.client, &home, &name, publish)
                .await
                .map_err(AppError::Revisions)?,
        };
        let mut dir = app.clone();
        let rendered = match plan::render(&app, &self.repo.namespace, &files, index, &prev) {
            Ok(r) => r,
            Err(lines) => {
                out.done = Some(
                    self.reject(&app, dir, commit, &lines, request, &memory, status_object)
                        .await,
                );
                return Ok(());
            }
        };
        dir.referenced = rendered.referenced_paths.clone();
        let refused = self.check_allowed(&rendered).await;
        if !refused.is_empty() {
            out.done = Some(
                self.reject(&app, dir, commit, &refused, request, &memory, status_object)
                    .await,
            );
            return Ok(());
        }
        if self.repo.create_namespace {
            let wanted = crate::apply::namespaces::wanted_namespaces(
                rendered.objects.iter().map(|o| &o.object),
                &self.repo.namespace,
            );
            crate::apply::namespaces::create_missing(&self.client, &name, &wanted)
                .await
                .map_err(AppError::Namespace)?;
        }
        let spec = self.status_spec(&app);
        let owner = if rendered.revisions.is_empty() && rendered.app_revisions.is_empty() {
            None
        } else {
            // The Application exists (spec only; its status is written once, at the end) so
            // that the revisions and Rollouts can name it as their owner.
            let live = self
                .status_object_now(&name, &home, status_object.clone())
                .await?;
            match app_status::ensure_application(&self.client, &home, &name, &spec, live).await {
                Ok((_, obj)) => {
                    let owner = app_status::owner_reference(&obj, &name);
                    status_object = StatusObject::Live(Box::new(obj));
                    Some(owner)
                }
                // The Application's namespace does not exist: neither do the revisions' and
                // Rollouts', whose apply says so (in a status written elsewhere).
                Err(e) if home != self.repo.namespace && is_not_found(&e) => None,
                Err(e) => return Err(e.into()),
            }
        };
        let argo_external = crate::rollout::argo::detect::prepare(
            &self.client,
            self.repo.argo_controller,
            &self.scope,
            &rendered.argo_rollouts,
        )
        .await;
        let kruise_external = match (&self.kruise, rendered.kruise_rollouts.is_empty()) {
            (_, true) | (None, _) => true,
            (Some(d), false) => d.external().await,
        };
        let ctx = PlanContext {
            app: &name,
            repo: &self.repo.name,
            dir: &app.dir,
            commit,
            progress_deadline: self.repo.progress_deadline,
            owner: owner.as_ref().map(|reference| crate::plan::Owner {
                reference,
                namespace: &home,
            }),
            argo_external,
            kruise_external,
            fleet: &self.fleet_clusters,
            cluster: &self.cluster,
        };
        let mut plan = match plan::desired(&rendered, &ctx) {
            Ok(p) => p,
            Err(lines) => {
                out.done = Some(
                    self.reject(&app, dir, commit, &lines, request, &memory, status_object)
                        .await,
                );
                return Ok(());
            }
        };
        let kruise_hold = !kruise_external;
        if kruise_hold {
            crate::rollout::kruise::hold(&self.client, &mut plan).await?;
        }
        out.dir = Some(dir.clone());
        let mut opts = self.apply_options(request.is_some_and(|r| r.allow_mass_prune));
        opts.lookup = lookup;
        let outcome = match self
            .applier
            .apply_app(&name, &plan.objects, &prev_inventory, &opts)
            .await
        {
            Ok(o) => o,
            // A read rollgit (or the tenant's ServiceAccount) may not make: the commit cannot
            // be applied as this identity; the status says which permission is missing, and
            // the sync is retried (rights may be granted without a new commit).
            Err(
                ref e @ crate::apply::ApplyError::Read {
                    source: kube::Error::Api(ref s),
                    ..
                },
            ) if s.code == 403 => {
                let lines = [crate::error_chain(e)];
                out.done = Some(
                    self.reject(&app, dir, commit, &lines, request, &memory, status_object)
                        .await,
                );
                return Err(AppError::Refused(1, ErrorClass::Transient));
            }
            Err(e) => return Err(e.into()),
        };
        if kruise_hold {
            // A hold whose template did not land (refused, failed) is let go.
            crate::rollout::kruise::release_unapplied_holds(&self.client, &plan).await;
        }
        let report = match outcome {
            ApplyOutcome::Applied(report) => report,
            ApplyOutcome::Refused(refused) => {
                let lines = refusal_lines(&refused, &plan.sources);
                let class = if refused.iter().any(|r| r.transient) {
                    ErrorClass::Transient
                } else {
                    ErrorClass::Terminal
                };
                out.done = Some(
                    self.reject(&app, dir, commit, &lines, request, &memory, status_object)
                        .await,
                );
                return Err(AppError::Refused(refused.len(), class));
            }
        };
        if report.held_prune.is_some() {
            self.held_prune_event(&name, prev_inventory.len()).await;
        }
        let ok = report.errors.is_empty();
        if ok
            && self.repo.write_back_bumps
            && let Some(content) = plan.bumps.clone()
        {
            write_bumps(
                self.events.clone(),
                self.writer.clone(),
                Bump {
                    app: name.clone(),
                    namespace: home.clone(),
                    dir: app.dir.clone(),
                    commit: commit.to_string(),
                    content,
                },
            );
        }
        let (inventory, last_applied) = if ok {
            (
                without_revisions(&report.inventory),
                Some(commit.to_string()),
            )
        } else {
            (prev_inventory, last_applied_commit)
        };
        let status = AppStatus::applied(
            commit,
            last_applied.as_deref(),
            &rendered,
            &report,
            &inventory,
            drift_corrections,
        );
        // Health from the apply responses; the watches update it from here on.
        let healths = report_healths(&report);
        let mut status = status.with_health(aggregate_healths(&healths));
        status.last_sync_request = request.map(|r| r.token.clone());
        // A workflow's plan (or its end) is taken up when the outcome is recorded; the
        // workflow then writes the status, with its clusters.
        let workflow = ok.then(|| plan.workflow.take());
        let has_workflow = match &workflow {
            Some(plan) => plan.is_some(),
            None => self.apps.get(&name).is_some_and(|r| r.workflow.is_some()),
        };
        let status_object = if has_workflow {
            status_object
        } else {
            self.write_status(&name, &home, &spec, &status, status_object)
                .await
        };
        tracing::info!(app = %name, commit, applied = report.applied.len(), changed = report.changed.len(), pruned = report.pruned.len(), errors = report.errors.len(), "applied");
        let result = if ok {
            Ok(())
        } else {
            let class = if report.transient {
                ErrorClass::Transient
            } else {
                ErrorClass::Terminal
            };
            Err(AppError::Objects(report.errors.len(), class))
        };
        out.done = Some(AppDone {
            dir,
            applied: Some(Applied {
                ok,
                inventory,
                desired: Desired::new(&plan.objects),
                publish: (
                    rendered.publish_version.clone(),
                    rendered.content_hash.clone(),
                ),
                commit: commit.to_string(),
                marks: report
                    .live
                    .iter()
                    .map(|o| (object_key(o), change_mark(o)))
                    .collect(),
                healths,
            }),
            status,
            spec,
            status_object,
            rejected: false,
            workflow,
            commit: commit.to_string(),
            moved: false,
        });
        result
    }

    /// The app's Application now: as remembered, or read when it is not known.
    async fn status_object_now(
        &self,
        app: &str,
        home: &str,
        known: StatusObject,
    ) -> Result<Option<DynamicObject>, StatusError> {
        match known.at_home(home).0 {
            StatusObject::Live(o) => Ok(Some(*o)),
            StatusObject::Missing => Ok(None),
            StatusObject::Unknown => app_status::read_application(&self.client, home, app).await,
        }
    }

    /// Starts or continues the app's workflow run for a render whose plan is `plan` at
    /// `commit`. The same publishVersion continues the run (a changed content under an explicit
    /// publishVersion is not delivered: the run keeps delivering its own commit, as KubeVela
    /// renders from the stored revision); a new one runs the workflow again from the first
    /// step. A previous daemon's run is taken over from the status.
    async fn update_workflow(
        &mut self,
        name: &str,
        app: &AppDir,
        plan: Option<crate::plan::workflow::WorkflowPlan>,
        commit: &str,
    ) {
        let now = self.clock.now_unix();
        let Some(rec) = self.apps.get_mut(name) else {
            return;
        };
        let Some(plan) = plan else {
            rec.workflow = None;
            rec.recorded_workflow = None;
            return;
        };
        let recorded = rec.recorded_workflow.take();
        let mut run = match rec.workflow.take() {
            Some(run) => Some(run),
            None => match recorded {
                Some((ws, clusters)) => match crate::rollout::workflow::status::state_of(&ws) {
                    Ok(state) => Some(WorkflowRun {
                        plan: plan.clone(),
                        commit: ws.commit.clone(),
                        state,
                        clusters: clusters.into_iter().map(|c| (c.name.clone(), c)).collect(),
                        last_request: ws.last_request.clone(),
                        last_request_error: ws.last_request_error.clone(),
                        last_command: ws.last_command.clone(),
                        wake_at: None,
                        failures: 0,
                        applied_at: BTreeMap::new(),
                        marks: BTreeMap::new(),
                    })
                    .map(|mut r| {
                        // Which plan the recorded run delivers is decided below.
                        r.plan.content_hash = ws.content_hash.clone();
                        r.plan.objects.clear();
                        r.plan.sources.clear();
                        r
                    }),
                    Err(e) => {
                        tracing::warn!(app = name, error = %e, "the recorded workflow does not parse; the workflow runs again from the first step");
                        None
                    }
                },
                None => None,
            },
        };
        let same_key = run
            .as_ref()
            .is_some_and(|r| r.state.key == plan.publish_version);
        match run.as_mut() {
            Some(r) if same_key => {
                if r.plan.content_hash == plan.content_hash || !plan.explicit_publish_version {
                    r.plan = plan;
                    r.commit = commit.to_string();
                } else if r.plan.objects.is_empty() {
                    // Taken over: the run's objects are those of its own commit.
                    match self.workflow_plan_at(app, &r.commit).await {
                        Some(p) => r.plan = p,
                        None => {
                            tracing::warn!(app = name, commit = %r.commit, "cannot render the workflow's commit again; delivering the head's objects");
                            r.plan = plan;
                        }
                    }
                } else {
                    tracing::info!(app = name, publish_version = %plan.publish_version, "the app changed but its publishVersion did not: the change is delivered when the publishVersion changes");
                }
            }
            _ => {
                let clusters = run.map(|r| r.clusters).unwrap_or_default();
                let steps = plan.core_steps();
                tracing::info!(app = name, publish_version = %plan.publish_version, "workflow: a new run from the first step");
                run = Some(WorkflowRun {
                    state: rollgit_core::workflow::start(&plan.publish_version, &steps, now),
                    plan,
                    commit: commit.to_string(),
                    clusters,
                    last_request: None,
                    last_request_error: String::new(),
                    last_command: None,
                    wake_at: None,
                    failures: 0,
                    applied_at: BTreeMap::new(),
                    marks: BTreeMap::new(),
                });
            }
        }
        if let Some(rec) = self.apps.get_mut(name) {
            if let (Some(r), Some(prev)) = (run.as_mut(), rec.status.as_ref())
                && r.last_request.is_none()
            {
                r.last_request = prev.workflow.as_ref().and_then(|w| w.last_request.clone());
            }
            rec.workflow = run;
        }
    }

    /// The workflow plan of `app` at `commit` (rendered again from Git), for a run taken over
    /// from a previous daemon whose commit is not the head.
    async fn workflow_plan_at(
        &self,
        app: &AppDir,
        commit: &str,
    ) -> Option<crate::plan::workflow::WorkflowPlan> {
        let id = rollgit_source::ObjectId::from_hex(commit.as_bytes()).ok()?;
        let (spec, cache, roots) = (
            self.spec.clone(),
            self.cache.clone(),
            self.repo.paths.clone(),
        );
        let (name, dir) = (app.name.clone(), app.dir.clone());
        let read = tokio::task::spawn_blocking(move || {
            let repo = rollgit_source::Repo::open(&spec, &cache)?;
            crate::plan::read::read_app_at(&repo, id, &roots, &name, &dir)
        })
        .await
        .ok()?
        .ok()?;
        let (dir, files, index) = read;
        let prev = plan::revisions::revision_state(&self.client, self.home(&dir), &dir.name, None)
            .await
            .ok()?;
        let rendered =
            plan::render(&dir, &self.repo.namespace, &files, index.as_ref(), &prev).ok()?;
        let ctx = PlanContext {
            app: &dir.name,
            repo: &self.repo.name,
            dir: &dir.dir,
            commit,
            progress_deadline: self.repo.progress_deadline,
            owner: None,
            argo_external: false,
            // Only the workflow is read here: nothing about Kruise Rollouts is refused.
            kruise_external: true,
            fleet: &self.fleet_clusters,
            cluster: &self.cluster,
        };
        plan::desired(&rendered, &ctx).ok()?.workflow
    }

    /// One workflow pass of an app (decide, deliver, record), with an Event per step that
    /// changed phase.
    async fn workflow_pass(&mut self, name: &str) {
        let now = self.clock.now_unix();
        let Some(mut run) = self.apps.get_mut(name).and_then(|r| r.workflow.take()) else {
            return;
        };
        let changes = run.pass(&self.fleet, name, now).await;
        for c in &changes {
            let (severity, reason) = match c.phase {
                rollgit_core::workflow::StepPhase::Succeeded => {
                    (Severity::Normal, "WorkflowStepSucceeded")
                }
                rollgit_core::workflow::StepPhase::Suspending => {
                    (Severity::Normal, "WorkflowStepSuspending")
                }
                rollgit_core::workflow::StepPhase::Running => {
                    (Severity::Normal, "WorkflowStepRunning")
                }
                rollgit_core::workflow::StepPhase::Failed => {
                    (Severity::Warning, "WorkflowStepFailed")
                }
                _ => continue,
            };
            let note = if c.message.is_empty() {
                format!("step {} is {}", c.step, c.phase.as_str())
            } else {
                format!("step {} is {}: {}", c.step, c.phase.as_str(), c.message)
            };
            tracing::info!(app = name, step = %c.step, phase = c.phase.as_str(), message = %c.message, "workflow step");
            self.app_event(name, severity, reason, "Workflow", &note)
                .await;
        }
        self.record_workflow(name, run).await;
        self.ensure_fleet_watches();
    }

    /// Watches, in each cluster of the fleet, the kinds the workflows delivered there.
    fn ensure_fleet_watches(&mut self) {
        let mut kinds: BTreeMap<&str, BTreeSet<(String, String, String)>> = BTreeMap::new();
        for run in self.apps.values().filter_map(|r| r.workflow.as_ref()) {
            for (cluster, c) in &run.clusters {
                kinds.entry(cluster.as_str()).or_default().extend(
                    c.inventory
                        .entries()
                        .iter()
                        .map(|r| (r.group.clone(), r.version.clone(), r.kind.clone())),
                );
            }
        }
        for (cluster, kinds) in kinds {
            if let Some(w) = self.fleet_drift.get_mut(cluster) {
                w.ensure(kinds);
            }
        }
    }

    /// Corrects what someone changed or deleted of what app `app`'s workflow delivered to
    /// cluster `cluster` (self-heal, as on the repository's own cluster), and records it.
    async fn correct_fleet_drift(&mut self, cluster: &str, app: &str, changes: Vec<Changed>) {
        if !self.repo.self_heal || self.suspended.contains(app) {
            return;
        }
        let Some(mut run) = self.apps.get_mut(app).and_then(|r| r.workflow.take()) else {
            return;
        };
        let drifted = match run.correct(&self.fleet, app, cluster, &changes).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(app, cluster, error = %e, "correcting drift in a workflow's cluster failed; tried again at the next change or pass");
                Vec::new()
            }
        };
        if drifted.is_empty() {
            if let Some(rec) = self.apps.get_mut(app) {
                rec.workflow = Some(run);
            }
            return;
        }
        let Some(rec) = self.apps.get_mut(app) else {
            return;
        };
        rec.drift_corrections += drifted.len() as u64;
        let n = rec.drift_corrections;
        if let Some(status) = rec.status.as_mut() {
            status.drift_corrections = n;
        }
        for key in &drifted {
            self.metrics.drift_corrected(&self.repo.name, app);
            tracing::info!(app, cluster, object = %key, "drift corrected in a workflow's cluster");
        }
        self.record_workflow(app, run).await;
    }

    /// Puts the run back in the app's record and writes the status with it.
    async fn record_workflow(&mut self, name: &str, run: WorkflowRun) {
        let Some(rec) = self.apps.get_mut(name) else {
            return;
        };
        let mut status = rec.status.clone().unwrap_or_else(AppStatus::starting);
        status.workflow = Some(crate::rollout::workflow::status::status_of(&run));
        status.clusters = run.clusters.values().cloned().collect();
        if status.last_error.is_empty()
            && !matches!(
                status.phase,
                crate::k8s::crds::Phase::Failed | crate::k8s::crds::Phase::Stalled
            )
        {
            status.phase = crate::rollout::workflow::status::app_phase(&run.state);
            let failed = run
                .state
                .steps
                .iter()
                .find(|s| s.phase == rollgit_core::workflow::StepPhase::Failed);
            status.message = match failed {
                Some(f) if !run.state.terminated => format!("step {}: {}", f.name, f.message),
                _ => String::new(),
            };
            let unhealthy: Vec<String> = run
                .clusters
                .values()
                .filter(|c| !c.healthy && c.applied_commit.is_some())
                .map(|c| format!("cluster {}: {}", c.name, c.message))
                .collect();
            let local = rec
                .local_health
                .clone()
                .unwrap_or_else(crate::apply::Health::healthy);
            status.health = if !unhealthy.is_empty() && local.is_healthy() {
                crate::apply::Health {
                    status: crate::apply::HealthStatus::Progressing,
                    message: unhealthy.join("; "),
                }
            } else {
                local
            };
        }
        rec.workflow = Some(run);
        rec.status = Some(status.clone());
        let spec = rec.status_spec.clone();
        self.write_app_status(name, &spec, &status).await;
    }

    /// Workflow passes of every app whose run may move (a clock jump, a timer).
    async fn workflow_passes(&mut self) {
        let names: Vec<String> = self
            .apps
            .iter()
            .filter(|(_, r)| r.workflow.is_some())
            .map(|(n, _)| n.clone())
            .collect();
        for n in names {
            self.workflow_pass(&n).await;
        }
    }

    /// How long until a workflow run should be looked at again without being told (health,
    /// a retry after a failed deploy, a timed suspend step on the clock).
    fn workflow_wait(&self) -> Option<Duration> {
        let now = self.clock.now_unix();
        self.apps
            .values()
            .filter_map(|r| r.workflow.as_ref())
            .filter_map(|run| {
                let clock = run
                    .wake_at
                    .map(|at| Duration::from_secs(u64::try_from(at - now).unwrap_or(0)));
                match (run.retry_in(), clock) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                }
            })
            .min()
    }

    /// Carries out the `rollgit workflow` requests received: the command on the run, the
    /// request recorded in the status (its refusal too), an Event naming who asked.
    async fn handle_workflow_requests(&mut self) {
        let requests = std::mem::take(&mut self.wf_requests);
        for (app, req) in requests {
            let Some(mut run) = self.apps.get_mut(&app).and_then(|r| r.workflow.take()) else {
                if self.apps.get(&app).is_some_and(|r| r.status.is_some()) {
                    self.refuse_request(&app, &req, "the app has no workflow")
                        .await;
                } else {
                    // Not synced yet (a restart): handled after its first sync.
                    tracing::debug!(app, "a workflow request for an app not synced yet");
                    self.wf_requests.push((app, req));
                }
                continue;
            };
            if run.last_request.as_deref() == Some(req.token.as_str()) {
                self.apps.entry(app.clone()).or_default().workflow = Some(run);
                continue;
            }
            let now = self.clock.now_unix();
            let cmd = match req.command.as_str() {
                "resume" => Ok(rollgit_core::workflow::Command::Resume {
                    step: req.step.clone(),
                }),
                "suspend" => Ok(rollgit_core::workflow::Command::Suspend),
                "terminate" => Ok(rollgit_core::workflow::Command::Terminate),
                "restart" => Ok(rollgit_core::workflow::Command::Restart),
                other => Err(format!(
                    "unknown workflow command {other:?} (resume, suspend, terminate, restart)"
                )),
            };
            let steps = run.plan.core_steps();
            let result = cmd.and_then(|c| {
                rollgit_core::workflow::command(&steps, &run.state, &c, now)
                    .map_err(|e| e.to_string())
            });
            run.last_request = Some(req.token.clone());
            let user = if req.user.is_empty() {
                "unknown".to_string()
            } else {
                req.user.clone()
            };
            match result {
                Ok(state) => {
                    run.state = state;
                    run.failures = 0;
                    run.last_request_error.clear();
                    run.last_command = Some(crate::k8s::crds::WorkflowCommandRecord {
                        command: req.command.clone(),
                        step: req.step.clone(),
                        user: user.clone(),
                        time: crate::rollout::workflow::status::time(now),
                    });
                    let step = req
                        .step
                        .as_ref()
                        .map(|s| format!(" (step {s})"))
                        .unwrap_or_default();
                    tracing::info!(app, command = %req.command, user = %user, "workflow command");
                    let reason = match req.command.as_str() {
                        "resume" => "WorkflowResumed",
                        "suspend" => "WorkflowSuspended",
                        "terminate" => "WorkflowTerminated",
                        _ => "WorkflowRestarted",
                    };
                    self.app_event(
                        &app,
                        Severity::Normal,
                        reason,
                        "Workflow",
                        &format!("{} by {user}{step}", req.command),
                    )
                    .await;
                    self.apps.entry(app.clone()).or_default().workflow = Some(run);
                    self.workflow_pass(&app).await;
                }
                Err(e) => {
                    tracing::warn!(app, command = %req.command, user = %user, error = %e, "workflow command refused");
                    run.last_request_error = e;
                    self.record_workflow(&app, run).await;
                }
            }
        }
    }

    /// Records a refused request in the status of an app without a run.
    async fn refuse_request(&mut self, app: &str, req: &WorkflowRequest, why: &str) {
        let Some(rec) = self.apps.get_mut(app) else {
            return;
        };
        let Some(mut status) = rec.status.clone() else {
            return;
        };
        let mut ws = status.workflow.clone().unwrap_or_default();
        ws.last_request = Some(req.token.clone());
        ws.last_request_error = why.to_string();
        status.workflow = Some(ws);
        rec.status = Some(status.clone());
        let spec = rec.status_spec.clone();
        self.write_app_status(app, &spec, &status).await;
    }

    /// An Event on the app's status object.
    async fn app_event(
        &self,
        app: &str,
        severity: Severity,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let reference = crate::k8s::events::reference(
            crate::k8s::API_VERSION,
            "Application",
            Some(&self.home_of(app)),
            app,
        );
        self.events
            .publish(&reference, severity, reason, action, note)
            .await;
    }

    /// The lines of the objects the repository's `allow` rules and rollgit's watched
    /// namespaces refuse (see [`plan::allow`]); the scope of a kind rollgit does not know is
    /// asked of discovery (a kind not served counts as cluster-scoped: the strict reading).
    async fn check_allowed(&self, rendered: &rollgit_render::Rendered) -> Vec<String> {
        if self.repo.allow.is_open() && self.scope == crate::config::WatchScope::Cluster {
            return Vec::new();
        }
        let mut namespaced = BTreeMap::new();
        for o in &rendered.objects {
            if o.key.namespace.is_none() && o.scope == rollgit_render::Scope::Unknown {
                let api_version = o.object["apiVersion"].as_str().unwrap_or_default();
                let kind = o.key.kind.as_str();
                if namespaced.contains_key(&(api_version, kind)) {
                    continue;
                }
                let is = match self.applier.is_namespaced(api_version, kind).await {
                    Ok(v) => v.unwrap_or(false),
                    Err(e) => {
                        tracing::debug!(kind, error = %crate::error_chain(&e), "discovery failed; the kind counts as cluster-scoped");
                        false
                    }
                };
                namespaced.insert((api_version, kind), is);
            }
        }
        let default_ns = self.repo.namespace.as_str();
        let mut policies = plan::allow::check_policies(&self.repo.name, rendered, &self.repo.allow);
        policies.extend(plan::allow::check(
            &self.repo.name,
            &rendered.objects,
            &self.repo.allow,
            &self.scope,
            |o| match (&o.key.namespace, o.scope) {
                (Some(ns), _) => plan::allow::Placement::Namespace(ns),
                (None, rollgit_render::Scope::Unknown)
                    if namespaced
                        .get(&(
                            o.object["apiVersion"].as_str().unwrap_or_default(),
                            o.key.kind.as_str(),
                        ))
                        .copied()
                        .unwrap_or(false) =>
                {
                    plan::allow::Placement::Namespace(default_ns)
                }
                _ => plan::allow::Placement::Cluster,
            },
        ));
        policies
    }

    /// Writes an app's status over its Application as the worker remembers it (the
    /// workflow's writes).
    async fn write_app_status(&mut self, app: &str, spec: &ApplicationSpec, status: &AppStatus) {
        let known = self
            .apps
            .get(app)
            .map(|r| r.status_object.clone())
            .unwrap_or_default();
        let home = self.home_of(app);
        let (_, moved) = known.clone().at_home(&home);
        let obj = self.write_status(app, &home, spec, status, known).await;
        if let Some(rec) = self.apps.get_mut(app) {
            rec.status_object = obj;
            if moved.is_some() {
                rec.moved_from = moved;
            }
        }
    }

    /// Writes an app's status over its Application as last seen (`known`); returns the
    /// Application as it is now (unknown after a failure: the next write reads it first).
    async fn write_status(
        &self,
        app: &str,
        home: &str,
        spec: &ApplicationSpec,
        status: &AppStatus,
        known: StatusObject,
    ) -> StatusObject {
        self.metrics.app_info(
            home,
            app,
            status.phase.as_str(),
            status.health.status.as_str(),
        );
        let mut written = self
            .write_status_in(app, home, spec, status, known.clone())
            .await;
        if home != self.repo.namespace
            && let Err(e) = &written
            && is_not_found(e)
        {
            // The Application's namespace does not exist (yet): the status (a refusal, say)
            // is written in the repository's namespace, and moves home once it can.
            tracing::info!(
                app,
                namespace = home,
                "the app's namespace does not exist: its status is written in the repository's namespace"
            );
            written = self
                .write_status_in(app, &self.repo.namespace, spec, status, known)
                .await;
        }
        match written {
            Ok(obj) => StatusObject::Live(Box::new(obj)),
            Err(e) => {
                tracing::warn!(app, error = %crate::error_chain(&e), "writing status failed");
                StatusObject::Unknown
            }
        }
    }

    /// Writes an app's status in namespace `ns` over its Application as last seen (`known`).
    async fn write_status_in(
        &self,
        app: &str,
        ns: &str,
        spec: &ApplicationSpec,
        status: &AppStatus,
        known: StatusObject,
    ) -> Result<DynamicObject, StatusError> {
        let live = self.status_object_now(app, ns, known).await?;
        let (_, obj) = app_status::write_status_over(
            &self.client,
            ns,
            app,
            spec,
            status,
            self.clock.now(),
            live,
        )
        .await?;
        Ok(obj)
    }

    /// Rejects a commit for `app` whole: logs the errors, records them in its status, and keeps
    /// what the last good commit applied.
    #[allow(clippy::too_many_arguments)]
    async fn reject(
        &self,
        app: &AppDir,
        dir: AppDir,
        commit: &str,
        lines: &[String],
        request: Option<&SyncRequest>,
        memory: &Memory,
        status_object: StatusObject,
    ) -> AppDone {
        let name = app.name.clone();
        for l in lines {
            tracing::warn!(app = %name, commit, "{l}");
        }
        let mut status = AppStatus::rejected(
            commit,
            memory.last_applied_commit.as_deref(),
            lines,
            &memory.inventory,
        );
        // Keep the version state of the last good commit.
        if let Some((v, h)) = &memory.publish {
            status.publish_version = Some(v.clone());
            status.content_hash = Some(h.clone());
        }
        status.drift_corrections = memory.drift_corrections;
        status.last_sync_request = request.map(|r| r.token.clone());
        // The workflow goes on with what it delivers (the rejected commit changes nothing).
        if let Some(rec) = self.apps.get(&name) {
            if let Some(run) = &rec.workflow {
                status.workflow = Some(crate::rollout::workflow::status::status_of(run));
                status.clusters = run.clusters.values().cloned().collect();
            } else if let Some((w, c)) = &rec.recorded_workflow {
                status.workflow = Some(w.clone());
                status.clusters = c.clone();
            }
        }
        let spec = self.status_spec(app);
        let status_object = self
            .write_status(&name, self.home(app), &spec, &status, status_object)
            .await;
        AppDone {
            dir,
            applied: None,
            status,
            spec,
            status_object,
            rejected: true,
            workflow: None,
            commit: commit.to_string(),
            moved: false,
        }
    }

    /// Watches every kind rollgit applied: the health of what it applied comes from these
    /// watches, and with self-heal on, drift is corrected.
    fn ensure_drift_watches(&mut self) {
        let kinds: BTreeSet<(String, String, String)> = self
            .apps
            .values()
            .flat_map(|rec| rec.inventory.entries().iter())
            .map(|r| (r.group.clone(), r.version.clone(), r.kind.clone()))
            .collect();
        if let Some(d) = self.drift.as_mut() {
            d.ensure(kinds);
        }
    }

    async fn correct_drift(&mut self, app: &str, changes: Vec<Changed>) {
        if self.suspended.contains(app) {
            return;
        }
        let mut drifted = false;
        let self_heal = self.repo.self_heal;
        let Some(rec) = self.apps.get_mut(app) else {
            return;
        };
        for c in &changes {
            let obj = &c.object;
            let key = object_key(obj);
            if let Some(slot) = rec.healths.get_mut(&key) {
                slot.1 = if c.deleted {
                    Health::missing()
                } else {
                    crate::apply::health(obj)
                };
            }
            if !self_heal || !rec.desired.keys.contains(&key) {
                continue;
            }
            let deleted = c.deleted || obj["metadata"]["deletionTimestamp"].is_string();
            let mark = change_mark(obj);
            if deleted || rec.seen.get(&key).is_some_and(|m| *m != mark) {
                drifted = true;
            }
            if !c.deleted {
                rec.seen.insert(key, mark);
            }
        }
        if rec.desired.is_empty() {
            return;
        }
        if !drifted {
            self.refresh_health(app).await;
            return;
        }
        let desired = rec.desired.objects();
        let inventory = rec.inventory.clone();
        let mut opts = self.apply_options(false).prune(false);
        // The last good commit's objects, which passed their dry run with it.
        opts.dry_run = false;
        let report = match self
            .applier
            .apply_app(app, &desired, &inventory, &opts)
            .await
        {
            Ok(ApplyOutcome::Applied(report)) => report,
            Ok(ApplyOutcome::Refused(refused)) => {
                for r in &refused {
                    tracing::warn!(app, object = %r.object, error = %r.message, "drift correction refused");
                }
                return;
            }
            Err(e) => {
                tracing::warn!(app, error = %crate::error_chain(&e), "drift correction failed");
                return;
            }
        };
        let rec = self.apps.entry(app.to_string()).or_default();
        for o in &report.live {
            rec.seen.insert(object_key(o), change_mark(o));
        }
        rec.healths.extend(report_healths(&report));
        if report.changed.is_empty() {
            self.refresh_health(app).await;
            return;
        }
        rec.drift_corrections += report.changed.len() as u64;
        let n = rec.drift_corrections;
        // The next status write (a health refresh) starts from the remembered status: it must
        // carry the count, or it would erase what record_drift wrote.
        if let Some(status) = rec.status.as_mut() {
            status.drift_corrections = n;
        }
        // record_drift changes the Application behind the remembered copy: the next status
        // write reads it first.
        rec.status_object = StatusObject::Unknown;
        let commit = rec.last_applied_commit.clone().unwrap_or_default();
        for r in &report.changed {
            self.metrics.drift_corrected(&self.repo.name, app);
            tracing::info!(app, object = %r, "drift corrected");
            self.drift_event(r, &commit).await;
        }
        let home = self.home_of(app);
        if let Err(e) = app_status::record_drift(&self.client, &home, app, n, &report.changed).await
        {
            tracing::warn!(app, error = %crate::error_chain(&e), "recording drift in status failed");
        }
    }

    /// Writes the status again when the health the watches and applies reported changed
    /// (writing the same status is a no-op, so this never loops). Nothing is read.
    async fn refresh_health(&mut self, app: &str) {
        let Some(rec) = self.apps.get(app) else {
            return;
        };
        let Some(status) = rec.status.clone() else {
            return;
        };
        if rec.healths.is_empty() {
            return;
        }
        let health = aggregate_healths(&rec.healths);
        if let Some(rec) = self.apps.get_mut(app) {
            rec.local_health = Some(health.clone());
            if let Some(run) = rec.workflow.take() {
                // The workflow's clusters count too.
                self.record_workflow(app, run).await;
                return;
            }
        }
        if health == status.health {
            return;
        }
        let status = status.with_health(health);
        let (spec, known) = self
            .apps
            .get(app)
            .map(|r| (r.status_spec.clone(), r.status_object.clone()))
            .unwrap_or_default();
        let home = self.home_of(app);
        let obj = self.write_status(app, &home, &spec, &status, known).await;
        if let Some(rec) = self.apps.get_mut(app) {
            rec.status = Some(status);
            rec.status_object = obj;
        }
    }

    /// Records a correction as a Kubernetes Event on the object.
    async fn drift_event(&self, r: &ObjRef, commit: &str) {
        let short = commit.get(..12).unwrap_or(commit);
        let reference = crate::k8s::events::reference(
            &r.api_version(),
            &r.kind,
            Some(r.namespace.as_deref().unwrap_or("default")),
            &r.name,
        );
        self.events
            .publish(
                &reference,
                Severity::Normal,
                "DriftCorrected",
                "Apply",
                &format!(
                    "rollgit re-applied {} {} from Git commit {short}",
                    r.kind, r.name
                ),
            )
            .await;
    }
}

/// Whether the API server answered 404 somewhere in `e`'s chain (a missing namespace).
fn is_not_found(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(kube::Error::Api(s)) = err.downcast_ref::<kube::Error>()
            && s.code == 404
        {
            return true;
        }
        cur = err.source();
    }
    false
}

/// The lines a refused commit shows: `path:line: Kind namespace/name: message` (the place in
/// Git when the object comes from one).
fn refusal_lines(refused: &[Refused], sources: &[Option<String>]) -> Vec<String> {
    refused
        .iter()
        .map(|r| {
            let place = r
                .index
                .and_then(|i| sources.get(i).cloned().flatten())
                .map(|s| format!("{s}: "))
                .unwrap_or_default();
            format!("{place}{}: {}", r.object, r.message)
        })
        .collect()
}

/// The inventory without ControllerRevisions: component revisions are history (a rollback
/// needs the earlier ones), never pruned when a newer revision replaces them; they go with the
/// app, through their ownerReference to its status object.
fn without_revisions(inv: &Inventory) -> Inventory {
    let keep = |r: &&ObjRef| !(r.group == "apps" && r.kind == "ControllerRevision");
    let mut out = Inventory::from_refs(inv.entries().iter().filter(keep).cloned());
    out.adopted = inv.adopted.iter().filter(keep).cloned().collect();
    out
}
