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
use crate::apply::{Applier, ApplyError};
use crate::clock::SharedClock;
use crate::config::Repo;
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
    /// Reading or creating its status object failed.
    #[error(transparent)]
    Status(#[from] StatusError),
    /// The apply stage failed as a whole.
    #[error(transparent)]
    Apply(#[from] ApplyError),
    /// Objects failed to apply (the status names them).
    #[error("{0} object(s) failed to apply")]
    Objects(usize, ErrorClass),
    /// A workload could not be held for its Kruise Rollout before the apply.
    #[error(transparent)]
    Hold(#[from] crate::rollout::kruise::HoldError),
}

impl AppError {
    /// How it is retried.
    pub fn class(&self) -> ErrorClass {
        match self {
            AppError::Revisions(e) => ErrorClass::of_kube(e),
            AppError::Status(e) => e.class(),
            AppError::Apply(e) => e.class(),
            AppError::Objects(_, class) => *class,
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
    /// Whether rollgit runs Kruise Rollouts (then it holds their workloads before an apply).
    kruise_hold: bool,
}

impl RepoWorker {
    /// A worker for `repo`, fetching into `cache`, applying through `client`.
    pub fn new(
        repo: Repo,
        cache: PathBuf,
        client: kube::Client,
        trigger: Trigger,
        metrics: Arc<Metrics>,
        clock: SharedClock,
        writer: RepoWriter,
    ) -> Self {
        Self {
            spec: repo.source_spec(),
            applier: Applier::new(client.clone()),
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
            kruise_hold: false,
        }
    }

    /// Holds the workloads of Kruise Rollouts before applying a new template (when rollgit,
    /// not Kruise, runs them).
    pub fn with_kruise_hold(mut self, hold: bool) -> Self {
        self.kruise_hold = hold;
        self
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

    async fn sync(&mut self) {
        self.retry_at = None;
        let started = Instant::now();
        match self.try_sync().await {
            Ok(changed) => {
                self.backoff = None;
                if changed {
                    self.metrics
                        .sync(&self.repo.name, "applied", started.elapsed());
                }
            }
            Err(e) => {
                self.metrics
                    .sync(&self.repo.name, "error", started.elapsed());
                let class = e.class();
                let retry_in = match class {
                    ErrorClass::Transient => {
                        let policy = self.backoff_policy();
                        let next = self
                            .backoff
                            .get_or_insert_with(|| policy.build())
                            .next()
                            .unwrap_or(self.repo.interval);
                        Some(next)
                    }
                    ErrorClass::Requeue(d) => Some(d),
                    ErrorClass::Terminal => None,
                };
                self.retry_at = retry_in.map(|d| tokio::time::Instant::now() + d);
                tracing::warn!(repo = %self.repo.name, error = %crate::error_chain(&e), ?class, ?retry_in, "sync failed; the cluster keeps its last good state");
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
        if self.last_head == Some(fetched.head) && !retrying {
            return Ok(false);
        }
        let head = fetched.head;
        let known: BTreeMap<String, (bool, Option<AppDir>)> = self
            .apps
            .iter()
            .map(|(n, r)| {
                // A terminal failure waits for a change of the app; others are tried again.
                let retry = r.failed.is_some_and(|c| c != ErrorClass::Terminal);
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
        for name in gone {
            if let Some(rec) = self.apps.remove(&name) {
                if self.repo.prune
                    && let Err(e) = self
                        .applier
                        .apply_app(&name, &[], true, &rec.inventory)
                        .await
                {
                    tracing::warn!(app = %name, error = %crate::error_chain(&e), "pruning a removed app failed");
                }
                if let Err(e) =
                    app_status::delete_status(&self.client, &self.repo.namespace, &name).await
                {
                    tracing::warn!(app = %name, error = %crate::error_chain(&e), "deleting the status of a removed app failed");
                }
            }
        }
        tracing::info!(repo = %self.repo.name, commit = %commit, summary = %snapshot.summary, affected = snapshot.read.len(), apps = names.len(), "new commit");
        let mut failed = Vec::new();
        for (app, files) in snapshot.read {
            let name = app.name.clone();
            let result = self
                .sync_app(&app, files, snapshot.index.as_ref(), &commit)
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
        }
    }

    async fn sync_app(
        &mut self,
        app: &AppDir,
        files: Vec<SourceFile>,
        index: Option<&ObjectIndex>,
        commit: &str,
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
                self.reject(app, dir, commit, &lines).await;
                return Ok(());
            }
        };
        dir.referenced = rendered.referenced_paths.clone();
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
        let ctx = PlanContext {
            app: &name,
            repo: &self.repo.name,
            dir: &app.dir,
            commit,
            progress_deadline: self.repo.progress_deadline,
            owner: owner.as_ref(),
        };
        let mut plan = match plan::desired(&rendered, &ctx) {
            Ok(p) => p,
            Err(lines) => {
                self.reject(app, dir, commit, &lines).await;
                return Ok(());
            }
        };
        if self.kruise_hold {
            crate::rollout::kruise::hold(&self.client, &mut plan).await?;
        }
        let rec = self.apps.entry(name.clone()).or_default();
        rec.dir = Some(dir);
        let prev_inventory = rec.inventory.clone();
        let report = self
            .applier
            .apply_app(&name, &plan.objects, self.repo.prune, &prev_inventory)
            .await?;
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
            rec.inventory = plan.inventory.clone();
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
        let status = status.with_health(health);
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

    async fn write_status(&self, app: &str, spec: &ApplicationSpec, status: &AppStatus) {
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
    async fn reject(&mut self, app: &AppDir, dir: AppDir, commit: &str, lines: &[String]) {
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
        let spec = self.status_spec(app);
        self.write_status(&name, &spec, &status).await;
        let rec = self.apps.entry(name.clone()).or_default();
        rec.status = Some(status);
        rec.status_spec = spec;
        self.metrics.render_error(&self.repo.name);
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
        let report = match self
            .applier
            .apply_app(app, &desired, false, &inventory)
            .await
        {
            Ok(report) => report,
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

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
