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
use crate::apply::{Applier, ApplyError, ApplyOptions, ApplyOutcome, Refused};
use crate::clock::SharedClock;
use crate::config::Repo;
use crate::daemon::requests::{self, AppEvent, SyncRequest};
use crate::k8s::crds::{AppSource, ApplicationSpec};
use crate::k8s::events::{Events, Severity};
use crate::k8s::{Inventory, ObjRef};
use crate::metrics::Metrics;
use crate::plan::read::{Snapshot, Which};
use crate::plan::{self, PlanContext};
use crate::record::bumps::{Bump, write_bumps};
use crate::record::rollback::RepoWriter;
use crate::record::status::{self as app_status, AppStatus, StatusError};
use backon::BackoffBuilder;
use rollgit_render::{AppDir, ObjectIndex, SourceFile};
use rollgit_source::{ObjectId, RepoSpec, Trigger};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

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
            SyncError::Source(_) | SyncError::Join(_) => ErrorClass::Terminal,
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
    /// The status object's spec.
    status_spec: ApplicationSpec,
    /// Taken over from the status object (once per app and daemon run).
    taken_over: bool,
    /// The app's directory left Git and its prune waits for confirmation.
    gone: bool,
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
    /// Whether rollgit runs Kruise Rollouts in the cluster (then it holds their workloads
    /// before an apply); decided with the CRDs.
    kruise_hold: Arc<std::sync::atomic::AtomicBool>,
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
            kruise_hold: Arc::default(),
            render_error_commit: None,
            rejected_in_pass: false,
            suspended: BTreeSet::new(),
            resumed: BTreeSet::new(),
        }
    }

    /// Holds the workloads of Kruise Rollouts before applying a new template, once `hold` is
    /// true (rollgit, not Kruise, runs them).
    pub fn with_kruise_hold(mut self, hold: Arc<std::sync::atomic::AtomicBool>) -> Self {
        self.kruise_hold = hold;
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
        let poller = tokio::spawn(rollgit_source::poll(self.trigger.clone(), schedule));
        let _poller = AbortOnDrop(poller.abort_handle());
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
        let (drift, mut drift_rx) = DriftWatches::new(self.client.clone(), &self.repo.name);
        self.drift = Some(drift);
        let (requests_task, mut requests_rx) =
            requests::watch(self.client.clone(), &self.repo.namespace, &self.repo.name);
        let _requests = AbortOnDrop(requests_task.abort_handle());
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
        loop {
            let retry_at = self.retry_at;
            let retry = async move {
                match retry_at {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = self.trigger.wait() => self.sync().await,
                _ = retry => self.sync().await,
                Some(first) = requests_rx.recv() => {
                    let mut events = vec![first];
                    while let Ok(e) = requests_rx.try_recv() {
                        events.push(e);
                    }
                    if self.app_events(events).await {
                        self.sync().await;
                    }
                }
                Some(first) = drift_rx.recv() => {
                    // Coalesce a burst of watch events: the latest object per app and key, then
                    // at most one re-apply (or one health refresh) per app.
                    let mut by_app: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
                    let mut add = |c: Changed| {
                        by_app.entry(c.app).or_default().insert(object_key(&c.object), c.object);
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
        if let Err(e) = self.take_over(&name).await {
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
        self.write_status(&name, &spec, &status).await;
        if let Some(rec) = self.apps.get_mut(&name) {
            rec.status = Some(status);
        }
    }

    async fn sync(&mut self) {
        self.retry_at = None;
        self.rejected_in_pass = false;
        let started = Instant::now();
        match self.try_sync().await {
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
        let snapshot: Snapshot = tokio::task::spawn_blocking(move || {
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
        .await??;
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
        for (app, files) in snapshot.read {
            let name = app.name.clone();
            let request = requested.get(&name);
            if self.suspended.contains(&name) {
                tracing::info!(repo = %self.repo.name, app = %name, commit = %commit, "app suspended: not applied");
                self.show_suspended(&app, request).await;
                continue;
            }
            let result = self
                .sync_app(&app, files, snapshot.index.as_ref(), &commit, request)
                .await;
            let rec = self.apps.entry(name.clone()).or_default();
            match result {
                Ok(()) => rec.failed = None,
                Err(e) => {
                    rec.failed = Some(e.class());
                    failed.push((name, e));
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
                self.write_status(name, &spec, &status).await;
                if let Some(rec) = self.apps.get_mut(name) {
                    rec.status = Some(status);
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
        self.apps.remove(name);
        self.metrics.app_gone(&self.repo.namespace, name);
        app_status::delete_status(&self.client, &self.repo.namespace, name).await?;
        Ok(())
    }

    async fn held_prune_event(&self, app: &str, count: usize) {
        let reference = crate::k8s::events::reference(
            crate::k8s::API_VERSION,
            "Application",
            Some(&self.repo.namespace),
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

    /// Takes over what a previous run recorded for an app (once).
    async fn take_over(&mut self, name: &str) -> Result<(), StatusError> {
        if self.apps.get(name).is_some_and(|r| r.taken_over) {
            return Ok(());
        }
        let recorded = app_status::read_recorded(&self.client, &self.repo.namespace, name).await?;
        let rec = self.apps.entry(name.to_string()).or_default();
        if let Some(r) = recorded {
            rec.inventory = r.inventory;
            rec.publish = r.publish;
            rec.last_applied_commit = r.last_applied_commit;
            rec.drift_corrections = r.drift_corrections;
        }
        rec.taken_over = true;
        Ok(())
    }

    fn status_spec(&self, app: &AppDir) -> ApplicationSpec {
        ApplicationSpec {
            source: AppSource {
                repo: self.repo.name.clone(),
                url: rollgit_source::redact_url(&self.repo.url),
                branch: self.repo.branch.clone(),
                path: app.dir.clone(),
            },
            app: app.name.clone(),
            suspend: false,
        }
    }

    async fn sync_app(
        &mut self,
        app: &AppDir,
        files: Vec<SourceFile>,
        index: Option<&ObjectIndex>,
        commit: &str,
        request: Option<&SyncRequest>,
    ) -> Result<(), AppError> {
        let name = app.name.clone();
        self.take_over(&name).await?;
        let publish = self.apps.get(&name).and_then(|r| r.publish.clone());
        let prev =
            plan::revisions::revision_state(&self.client, &self.repo.namespace, &name, publish)
                .await
                .map_err(AppError::Revisions)?;
        let mut dir = app.clone();
        let rendered = match plan::render(app, &self.repo.namespace, &files, index, &prev) {
            Ok(r) => r,
            Err(lines) => {
                self.count_render_error(commit);
                self.reject(app, dir, commit, &lines, request).await;
                return Ok(());
            }
        };
        dir.referenced = rendered.referenced_paths.clone();
        if self.repo.create_namespace {
            let wanted = crate::apply::namespaces::wanted_namespaces(
                rendered.objects.iter().map(|o| &o.object),
                &self.repo.namespace,
            );
            crate::apply::namespaces::create_missing(&self.client, &name, &wanted)
                .await
                .map_err(AppError::Namespace)?;
        }
        let spec = self.status_spec(app);
        let owner = if rendered.revisions.is_empty() && rendered.app_revisions.is_empty() {
            None
        } else {
            Some(
                app_status::application_owner(
                    &self.client,
                    &self.repo.namespace,
                    &name,
                    &spec,
                    self.clock.now(),
                )
                .await?,
            )
        };
        let argo_external = crate::rollout::argo::detect::prepare(
            &self.client,
            self.repo.argo_controller,
            &rendered.argo_rollouts,
        )
        .await;
        let ctx = PlanContext {
            app: &name,
            repo: &self.repo.name,
            dir: &app.dir,
            commit,
            progress_deadline: self.repo.progress_deadline,
            owner: owner.as_ref(),
            argo_external,
        };
        let mut plan = match plan::desired(&rendered, &ctx) {
            Ok(p) => p,
            Err(lines) => {
                self.count_render_error(commit);
                self.reject(app, dir, commit, &lines, request).await;
                return Ok(());
            }
        };
        let kruise_hold = self.kruise_hold.load(std::sync::atomic::Ordering::Relaxed);
        if kruise_hold {
            crate::rollout::kruise::hold(&self.client, &mut plan).await?;
        }
        let rec = self.apps.entry(name.clone()).or_default();
        rec.dir = Some(dir.clone());
        rec.gone = false;
        let prev_inventory = rec.inventory.clone();
        let opts = self.apply_options(request.is_some_and(|r| r.allow_mass_prune));
        let outcome = self
            .applier
            .apply_app(&name, &plan.objects, &prev_inventory, &opts)
            .await?;
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
                self.reject(app, dir, commit, &lines, request).await;
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
                    namespace: self.repo.namespace.clone(),
                    dir: app.dir.clone(),
                    commit: commit.to_string(),
                    content,
                },
            );
        }
        let rec = self.apps.entry(name.clone()).or_default();
        if ok {
            rec.inventory = without_revisions(&report.inventory);
            rec.desired = Desired::new(&plan.objects);
            rec.publish = Some((
                rendered.publish_version.clone(),
                rendered.content_hash.clone(),
            ));
            rec.last_applied_commit = Some(commit.to_string());
        }
        for o in &report.live {
            rec.seen.insert(object_key(o), change_mark(o));
        }
        let status = AppStatus::applied(
            commit,
            rec.last_applied_commit.as_deref(),
            &rendered,
            &report,
            &rec.inventory,
            rec.drift_corrections,
        );
        let health = self.applier.app_health(&plan.objects).await;
        let mut status = status.with_health(health);
        status.last_sync_request = request.map(|r| r.token.clone());
        self.write_status(&name, &spec, &status).await;
        let rec = self.apps.entry(name.clone()).or_default();
        rec.status = Some(status);
        rec.status_spec = spec;
        tracing::info!(app = %name, commit, applied = report.applied.len(), changed = report.changed.len(), pruned = report.pruned.len(), errors = report.errors.len(), "applied");
        if ok {
            Ok(())
        } else {
            let class = if report.transient {
                ErrorClass::Transient
            } else {
                ErrorClass::Terminal
            };
            Err(AppError::Objects(report.errors.len(), class))
        }
    }

    /// Counts a commit that does not render, once per commit whatever the number of its apps
    /// and passes.
    fn count_render_error(&mut self, commit: &str) {
        if self.render_error_commit.as_deref() != Some(commit) {
            self.render_error_commit = Some(commit.to_string());
            self.metrics.render_error(&self.repo.name);
        }
    }

    async fn write_status(&self, app: &str, spec: &ApplicationSpec, status: &AppStatus) {
        self.metrics.app_info(
            &self.repo.namespace,
            app,
            status.phase.as_str(),
            status.health.status.as_str(),
        );
        if let Err(e) = app_status::write_status(
            &self.client,
            &self.repo.namespace,
            app,
            spec,
            status,
            self.clock.now(),
        )
        .await
        {
            tracing::warn!(app, error = %crate::error_chain(&e), "writing status failed");
        }
    }

    /// Rejects a commit for `app` whole: logs the errors, records them in its status, and keeps
    /// what the last good commit applied.
    async fn reject(
        &mut self,
        app: &AppDir,
        dir: AppDir,
        commit: &str,
        lines: &[String],
        request: Option<&SyncRequest>,
    ) {
        let name = app.name.clone();
        for l in lines {
            tracing::warn!(app = %name, commit, "{l}");
        }
        let rec = self.apps.entry(name.clone()).or_default();
        rec.dir = Some(dir);
        let mut status = AppStatus::rejected(
            commit,
            rec.last_applied_commit.as_deref(),
            lines,
            &rec.inventory,
        );
        // Keep the version state of the last good commit.
        if let Some((v, h)) = &rec.publish {
            status.publish_version = Some(v.clone());
            status.content_hash = Some(h.clone());
        }
        status.drift_corrections = rec.drift_corrections;
        status.last_sync_request = request.map(|r| r.token.clone());
        let spec = self.status_spec(app);
        self.write_status(&name, &spec, &status).await;
        let rec = self.apps.entry(name.clone()).or_default();
        rec.status = Some(status);
        rec.status_spec = spec;
        self.rejected_in_pass = true;
    }

    /// Watches every kind rollgit applied, to notice drift.
    fn ensure_drift_watches(&mut self) {
        if !self.repo.self_heal {
            return;
        }
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

    async fn correct_drift(&mut self, app: &str, objects: Vec<Value>) {
        if self.suspended.contains(app) {
            return;
        }
        let mut drifted = false;
        for obj in &objects {
            let key = object_key(obj);
            let deleted = obj["metadata"]["deletionTimestamp"].is_string();
            let exists = matches!(self.applier.live(obj).await, Ok(Some(_)));
            let Some(rec) = self.apps.get_mut(app) else {
                return;
            };
            if !rec.desired.keys.contains(&key) {
                continue;
            }
            let mark = change_mark(obj);
            if !exists || deleted || rec.seen.get(&key).is_some_and(|m| *m != mark) {
                drifted = true;
            }
            if exists {
                rec.seen.insert(key, mark);
            }
        }
        let Some(rec) = self.apps.get(app) else {
            return;
        };
        if rec.desired.is_empty() {
            return;
        }
        if !drifted {
            self.refresh_health(app).await;
            return;
        }
        let desired = rec.desired.objects();
        let inventory = rec.inventory.clone();
        let opts = self.apply_options(false).prune(false);
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
        if report.changed.is_empty() {
            return;
        }
        rec.drift_corrections += report.changed.len() as u64;
        let n = rec.drift_corrections;
        // The next status write (a health refresh) starts from the remembered status: it must
        // carry the count, or it would erase what record_drift wrote.
        if let Some(status) = rec.status.as_mut() {
            status.drift_corrections = n;
        }
        let commit = rec.last_applied_commit.clone().unwrap_or_default();
        for r in &report.changed {
            self.metrics.drift_corrected(&self.repo.name, app);
            tracing::info!(app, object = %r, "drift corrected");
            self.drift_event(r, &commit).await;
        }
        if let Err(e) =
            app_status::record_drift(&self.client, &self.repo.namespace, app, n, &report.changed)
                .await
        {
            tracing::warn!(app, error = %crate::error_chain(&e), "recording drift in status failed");
        }
    }

    /// Re-reads the health of an app's objects and writes status if it changed (writing the
    /// same status is a no-op, so this never loops).
    async fn refresh_health(&mut self, app: &str) {
        let Some(rec) = self.apps.get(app) else {
            return;
        };
        let Some(status) = rec.status.clone() else {
            return;
        };
        if rec.desired.is_empty() {
            return;
        }
        let health = self.applier.app_health(&rec.desired.objects()).await;
        if health == status.health {
            return;
        }
        let status = status.with_health(health);
        let spec = rec.status_spec.clone();
        self.write_status(app, &spec, &status).await;
        if let Some(rec) = self.apps.get_mut(app) {
            rec.status = Some(status);
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

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
