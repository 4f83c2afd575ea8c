//! The daemon: for each repository, observe Git (poll, webhook, file-system watch), render the
//! apps a commit affects, apply them, correct drift, and record status in the cluster.
//!
//! One task per repository owns that repository's state, so there is no locking across repos:
//! triggers (poll, webhook, watch) coalesce into one fetch; an unchanged head renders nothing;
//! the tree diff since the last applied commit picks the apps to re-render; a bad app is rejected
//! whole and keeps its last good state.

use crate::apply::{self, Applier, Inventory};
use crate::config::{Config, Repo};
use crate::metrics::Metrics;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::discovery::ApiResource;
use kube::runtime::watcher;
use rollgit_render::{AppDir, RevisionState, SourceFile};
use rollgit_source::{ObjectId, RepoSpec, Trigger};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Label on every object rollgit applies: which repository it came from.
pub const REPO_LABEL: &str = "rollgit.dev/repo";
/// Label on every object rollgit applies: which app.
pub const APP_LABEL: &str = "rollgit.dev/app";

/// Errors of one sync that concern the whole repository.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    /// Fetching or reading Git failed.
    #[error("git: {0}")]
    Source(#[from] rollgit_source::SourceError),
    /// A blocking task panicked or was cancelled.
    #[error("internal: {0}")]
    Join(#[from] tokio::task::JoinError),
    /// The Kubernetes API failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),
}

impl SyncError {
    /// Whether retrying later may succeed.
    pub fn is_transient(&self) -> bool {
        match self {
            SyncError::Source(e) => e.is_transient(),
            SyncError::Join(_) => false,
            SyncError::Kube(_) => true,
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
    failed: bool,
    last_applied_commit: Option<String>,
    drift_corrections: u64,
    /// Generation (or content hash) of each applied object, by `kind/namespace/name`.
    seen: HashMap<String, String>,
    /// The last status written (health is refreshed on it as the cluster changes).
    status: Option<apply::AppStatus>,
    /// The status object's spec.
    status_spec: Value,
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

/// Handles to the per-repository tasks, for the webhook server.
#[derive(Clone, Default)]
pub struct Triggers {
    /// Repo name → (trigger, webhook secret).
    pub repos: Arc<BTreeMap<String, (Trigger, Option<crate::config::Secret>)>>,
}

/// Starts a task per repository and returns the triggers (for webhooks).
pub async fn start(cfg: &Config, metrics: Arc<Metrics>) -> anyhow::Result<Triggers> {
    let mut clients = Vec::new();
    for c in &cfg.clusters {
        clients.push(crate::kubeclient::client_for(c).await?);
    }
    for client in &clients {
        apply::ensure_crds(client).await?;
    }
    let mut map = BTreeMap::new();
    let mut writers: Vec<BTreeMap<String, crate::record::RepoWriter>> =
        clients.iter().map(|_| BTreeMap::new()).collect();
    let cache = cfg.state_dir.join("repos");
    for repo in &cfg.repos {
        let trigger = Trigger::new();
        map.insert(
            repo.name.clone(),
            (trigger.clone(), repo.webhook_secret.clone()),
        );
        writers[repo.cluster].insert(repo.name.clone(), repo_writer(repo, &cache, &trigger));
        let client = clients[repo.cluster].clone();
        let worker = RepoWorker::new(
            repo.clone(),
            cache.clone(),
            client,
            trigger,
            metrics.clone(),
        );
        tokio::spawn(worker.run());
    }
    // One rollout controller per cluster; its rollbacks are written to the apps' repositories.
    for (client, writers) in clients.iter().zip(writers) {
        let recorder = crate::record::GitRecorder::new(client.clone(), writers);
        crate::rollout::spawn(client.clone(), Arc::new(recorder));
    }
    Ok(Triggers {
        repos: Arc::new(map),
    })
}

struct RepoWorker {
    repo: Repo,
    spec: RepoSpec,
    cache: PathBuf,
    client: kube::Client,
    applier: Applier,
    trigger: Trigger,
    metrics: Arc<Metrics>,
    apps: BTreeMap<String, AppRecord>,
    last_head: Option<ObjectId>,
    failures: u32,
    watched_kinds: BTreeSet<(String, String, String)>,
    drift_tx: mpsc::UnboundedSender<String>,
    drift_rx: Option<mpsc::UnboundedReceiver<String>>,
}

fn object_key(v: &Value) -> String {
    format!(
        "{}/{}/{}/{}",
        v["apiVersion"].as_str().unwrap_or_default(),
        v["kind"].as_str().unwrap_or_default(),
        v["metadata"]["namespace"].as_str().unwrap_or_default(),
        v["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// What identifies a user-visible change of an object: its generation where it has one,
/// else a hash of everything but status and server-managed metadata.
fn change_mark(v: &Value) -> String {
    if let Some(g) = v["metadata"]["generation"].as_i64() {
        return format!("g{g}");
    }
    let mut c = v.clone();
    if let Some(m) = c.as_object_mut() {
        m.remove("status");
    }
    if let Some(m) = c["metadata"].as_object_mut() {
        for k in [
            "resourceVersion",
            "managedFields",
            "generation",
            "uid",
            "creationTimestamp",
        ] {
            m.remove(k);
        }
    }
    format!("h{}", rollgit_render::spec_hash(&c))
}

/// The source stage's view of a configured repository (with its credentials).
pub fn repo_spec(repo: &Repo) -> RepoSpec {
    let mut spec = RepoSpec::new(repo.url.clone(), repo.branch.clone());
    spec.credentials = repo.credentials.as_ref().map(|(user, secret)| match user {
        Some(u) => rollgit_source::Credentials::UserPassword {
            username: u.clone(),
            password: secret.expose().to_string(),
        },
        None => rollgit_source::Credentials::Token(secret.expose().to_string()),
    });
    spec
}

/// How a configured repository's write-backs (reverts, bumps) are made.
fn repo_writer(
    repo: &Repo,
    cache: &std::path::Path,
    trigger: &Trigger,
) -> crate::record::RepoWriter {
    crate::record::RepoWriter {
        spec: repo_spec(repo),
        cache: cache.to_path_buf(),
        identity: repo.identity.clone(),
        revert_rollbacks: repo.revert_rollbacks,
        trigger: trigger.clone(),
    }
}

/// Everything one sync needs from Git, read in one blocking task (gix repositories stay on
/// the thread that opened them).
struct ReadJob {
    spec: RepoSpec,
    cache: PathBuf,
    head: ObjectId,
    prev: Option<ObjectId>,
    roots: Vec<String>,
    /// Known apps: name → (failed last time, last directory with its referenced paths).
    known: BTreeMap<String, (bool, Option<AppDir>)>,
}

struct Snapshot {
    apps: Vec<AppDir>,
    affected: Vec<(AppDir, Vec<SourceFile>)>,
    index: Option<rollgit_render::ObjectIndex>,
    summary: String,
}

impl ReadJob {
    fn read(self) -> Result<Snapshot, rollgit_source::SourceError> {
        let repo = rollgit_source::Repo::open(&self.spec, &self.cache)?;
        let files = repo.list_files(self.head)?;
        let mut apps = rollgit_render::discover_apps(&files, &self.roots);
        for a in &mut apps {
            if let Some((_, Some(d))) = self.known.get(&a.name) {
                a.referenced = d.referenced.clone();
            }
        }
        let mut affected: BTreeSet<String> = match self.prev {
            None => apps.iter().map(|a| a.name.clone()).collect(),
            Some(p) => {
                let changed = repo.changed_paths(p, self.head)?;
                rollgit_render::affected_apps(&changed, &apps)
                    .into_iter()
                    .collect()
            }
        };
        for a in &apps {
            match self.known.get(&a.name) {
                None | Some((true, _)) => {
                    affected.insert(a.name.clone());
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        let mut needs_refs = false;
        for a in apps.iter().filter(|a| affected.contains(&a.name)) {
            let files: Vec<SourceFile> = repo
                .read_files(self.head, &a.dir)?
                .into_iter()
                .filter(|(p, _)| rollgit_render::belongs_to(p, a, &apps))
                .map(|(p, c)| SourceFile::new(p, c))
                .collect();
            needs_refs |= files
                .iter()
                .any(|f| f.content.windows(11).any(|w| w == b"ref-objects"));
            out.push((a.clone(), files));
        }
        let index = if needs_refs {
            let paths: Vec<String> = files
                .iter()
                .filter(|p| rollgit_render::is_manifest_path(p))
                .cloned()
                .collect();
            let head = self.head;
            Some(rollgit_render::ObjectIndex::build(&paths, &|p: &str| {
                repo.read_file(head, p).ok().flatten()
            }))
        } else {
            None
        };
        let summary = repo.commit_info(self.head)?.summary;
        Ok(Snapshot {
            apps,
            affected: out,
            index,
            summary,
        })
    }
}

impl RepoWorker {
    fn new(
        repo: Repo,
        cache: PathBuf,
        client: kube::Client,
        trigger: Trigger,
        metrics: Arc<Metrics>,
    ) -> Self {
        let spec = repo_spec(&repo);
        let (drift_tx, drift_rx) = mpsc::unbounded_channel();
        Self {
            applier: Applier::new(client.clone()),
            repo,
            spec,
            cache,
            client,
            trigger,
            metrics,
            apps: BTreeMap::new(),
            last_head: None,
            failures: 0,
            watched_kinds: BTreeSet::new(),
            drift_tx,
            drift_rx: Some(drift_rx),
        }
    }

    async fn run(mut self) {
        // Poll on an interval (with deterministic jitter); watch a local repository's refs.
        let schedule = rollgit_source::PollSchedule::new(&self.repo.url, self.repo.interval);
        tokio::spawn(rollgit_source::poll(self.trigger.clone(), schedule));
        let _watch = if self.spec.is_local_path() {
            match rollgit_source::watch_local_repo(
                std::path::Path::new(&self.repo.url),
                &self.repo.branch,
                self.trigger.clone(),
            ) {
                Ok(w) => Some(w),
                Err(e) => {
                    tracing::warn!(repo = %self.repo.name, error = %e, "cannot watch the local repository; polling only");
                    None
                }
            }
        } else {
            None
        };
        self.trigger.notify();
        let Some(mut drift_rx) = self.drift_rx.take() else {
            return;
        };
        loop {
            tokio::select! {
                _ = self.trigger.wait() => self.sync().await,
                Some(first) = drift_rx.recv() => {
                    // Coalesce a burst of watch events: the latest object per app and key, then
                    // at most one re-apply (or one health refresh) per app.
                    let mut by_app: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
                    let mut add = |msg: String| {
                        if let Some((app, obj)) = msg.split_once('\u{0}') {
                            let obj: Value = serde_json::from_str(obj).unwrap_or(Value::Null);
                            by_app.entry(app.to_string()).or_default().insert(object_key(&obj), obj);
                        }
                    };
                    add(first);
                    while let Ok(m) = drift_rx.try_recv() {
                        add(m);
                    }
                    for (app, objs) in by_app {
                        self.correct_drift(&app, objs.into_values().collect()).await;
                    }
                }
            }
        }
    }

    async fn sync(&mut self) {
        let started = Instant::now();
        match self.try_sync().await {
            Ok(changed) => {
                self.failures = 0;
                if changed {
                    self.metrics
                        .sync(&self.repo.name, "applied", started.elapsed());
                }
            }
            Err(e) => {
                self.failures += 1;
                self.metrics
                    .sync(&self.repo.name, "error", started.elapsed());
                let backoff = Duration::from_millis(500)
                    .saturating_mul(1 << self.failures.min(7))
                    .min(self.repo.interval);
                tracing::warn!(repo = %self.repo.name, error = %e, transient = e.is_transient(), retry_in = ?backoff, "sync failed; the cluster keeps its last good state");
                let trigger = self.trigger.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(backoff).await;
                    trigger.notify();
                });
            }
        }
    }

    /// One pass: fetch, and if the head moved, render and apply what changed. Returns whether
    /// anything was rendered.
    async fn try_sync(&mut self) -> Result<bool, SyncError> {
        let spec = self.spec.clone();
        let cache = self.cache.clone();
        let fetched =
            tokio::task::spawn_blocking(move || rollgit_source::fetch(&spec, &cache)).await??;
        if self.last_head == Some(fetched.head) && !self.apps.values().any(|a| a.failed) {
            return Ok(false);
        }
        let head = fetched.head;
        let job = ReadJob {
            spec: self.spec.clone(),
            cache: self.cache.clone(),
            head,
            prev: self.last_head,
            roots: self.repo.paths.clone(),
            known: self
                .apps
                .iter()
                .map(|(n, r)| (n.clone(), (r.failed, r.dir.clone())))
                .collect(),
        };
        let snapshot = tokio::task::spawn_blocking(move || job.read()).await??;
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
                    tracing::warn!(app = %name, error = %e, "pruning a removed app failed");
                }
                if let Err(e) =
                    apply::delete_status(&self.client, &self.repo.namespace, &name).await
                {
                    tracing::warn!(app = %name, error = %e, "deleting the status of a removed app failed");
                }
            }
        }
        tracing::info!(repo = %self.repo.name, commit = %commit, summary = %snapshot.summary, affected = snapshot.affected.len(), apps = names.len(), "new commit");
        for (app, files) in snapshot.affected {
            self.sync_app(&app, files, snapshot.index.as_ref(), &commit)
                .await;
        }
        self.last_head = Some(head);
        self.ensure_drift_watches();
        Ok(true)
    }

    async fn revision_state(&self, app: &str) -> RevisionState {
        let mut state = revision_state(&self.client, &self.repo.namespace, app).await;
        state.publish = self.apps.get(app).and_then(|r| r.publish.clone());
        state
    }

    async fn sync_app(
        &mut self,
        app: &AppDir,
        files: Vec<SourceFile>,
        index: Option<&rollgit_render::ObjectIndex>,
        commit: &str,
    ) {
        let name = app.name.clone();
        if !self.apps.contains_key(&name) {
            // First sight since start: take over what a previous run recorded.
            if let Some(r) = apply::read_recorded(&self.client, &self.repo.namespace, &name).await {
                let rec = self.apps.entry(name.clone()).or_default();
                rec.inventory = r.inventory;
                rec.publish = r.publish;
                rec.last_applied_commit = r.last_applied_commit;
                rec.drift_corrections = r.drift_corrections;
            }
        }
        let prev = self.revision_state(&name).await;
        let rendered = match index {
            Some(ix) => rollgit_render::render_app(&name, &self.repo.namespace, &files, ix, &prev),
            None => rollgit_render::render_app(
                &name,
                &self.repo.namespace,
                &files,
                &rollgit_render::NoRefs,
                &prev,
            ),
        };
        self.apps.entry(name.clone()).or_default();
        let mut dir = app.clone();
        match rendered {
            Err(errs) => {
                let lines: Vec<String> = errs.0.iter().map(ToString::to_string).collect();
                self.reject(app, dir, commit, &lines).await;
            }
            Ok(r) => {
                dir.referenced = r.referenced_paths.clone();
                let rollouts =
                    match crate::rollout::specs_for(&r, &name, commit, self.repo.progress_deadline)
                    {
                        Ok(s) => s,
                        Err(lines) => {
                            self.reject(app, dir, commit, &lines).await;
                            return;
                        }
                    };
                let rec = self.apps.entry(name.clone()).or_default();
                // Workloads a rollout owns are the rollout stage's: it creates and scales them.
                let mut objects: Vec<Value> = r
                    .objects
                    .iter()
                    .filter(|o| !o.rollout_owned)
                    .map(|o| o.object.clone())
                    .collect();
                let prev_inventory = without_revisions(&rec.inventory);
                let owner = if r.revisions.is_empty() && r.app_revisions.is_empty() {
                    None
                } else {
                    let spec = self.status_spec(&name, app);
                    match apply::application_owner(&self.client, &self.repo.namespace, &name, &spec)
                        .await
                    {
                        Ok(o) => Some(o),
                        Err(e) => {
                            tracing::warn!(app = %name, error = %e, "cannot own revisions by the app's status object");
                            None
                        }
                    }
                };
                let revisions = r
                    .revisions
                    .iter()
                    .map(|rev| &rev.controller_revision)
                    .chain(r.app_revisions.iter().map(|rev| &rev.controller_revision));
                for cr in revisions {
                    let mut cr = cr.clone();
                    if let Some(o) = &owner {
                        cr["metadata"]["ownerReferences"] = json!([o]);
                    }
                    objects.push(cr);
                }
                for (ns, spec) in &rollouts {
                    let mut spec = spec.clone();
                    spec.repo = Some(self.repo.name.clone());
                    spec.path = Some(app.dir.clone());
                    let mut ro = spec.object(ns);
                    if let Some(o) = &owner {
                        ro["metadata"]["ownerReferences"] = json!([o]);
                    }
                    objects.push(ro);
                }
                for o in &mut objects {
                    o["metadata"]["labels"][REPO_LABEL] = json!(self.repo.name);
                }
                let prune = self.repo.prune;
                let report = self
                    .applier
                    .apply_app(&name, &objects, prune, &prev_inventory)
                    .await;
                let rec = self.apps.entry(name.clone()).or_default();
                rec.dir = Some(dir);
                match report {
                    Ok(report) => {
                        let ok = report.errors.is_empty();
                        if ok && self.repo.write_back_bumps && crate::record::has_bumps(&r) {
                            crate::record::write_bumps(
                                self.client.clone(),
                                self.repo.namespace.clone(),
                                self.writer(),
                                name.clone(),
                                app.dir.clone(),
                                commit.to_string(),
                                crate::record::bump_file(&r),
                            );
                        }
                        let rec = self.apps.entry(name.clone()).or_default();
                        rec.failed = !ok;
                        if ok {
                            rec.inventory = without_revisions(&Inventory::from_objects(&objects));
                            rec.desired = Desired::new(&objects);
                            rec.publish = Some((r.publish_version.clone(), r.content_hash.clone()));
                            rec.last_applied_commit = Some(commit.to_string());
                        }
                        for o in &report.live {
                            rec.seen.insert(object_key(o), change_mark(o));
                        }
                        let status = apply::AppStatus::applied(
                            commit,
                            rec.last_applied_commit.as_deref(),
                            &r,
                            &report,
                            &rec.inventory,
                            rec.drift_corrections,
                        );
                        let spec = self.status_spec(&name, app);
                        let health = self.applier.app_health(&objects).await;
                        let status = status.with_health(health);
                        if let Err(e) = apply::write_status(
                            &self.client,
                            &self.repo.namespace,
                            &name,
                            &spec,
                            &status,
                        )
                        .await
                        {
                            tracing::warn!(app = %name, error = %e, "writing status failed");
                        }
                        let rec = self.apps.entry(name.clone()).or_default();
                        rec.status = Some(status);
                        rec.status_spec = spec;
                        tracing::info!(app = %name, commit, applied = report.applied.len(), changed = report.changed.len(), pruned = report.pruned.len(), errors = report.errors.len(), "applied");
                    }
                    Err(e) => {
                        rec.failed = true;
                        tracing::warn!(app = %name, error = %e, "apply failed; will retry on the next trigger");
                        let trigger = self.trigger.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            trigger.notify();
                        });
                    }
                }
            }
        }
    }

    /// How this repository's write-backs are made.
    fn writer(&self) -> crate::record::RepoWriter {
        repo_writer(&self.repo, &self.cache, &self.trigger)
    }

    /// Rejects a commit for `app` whole: logs the errors, records them in its status, and keeps
    /// what the last good commit applied.
    async fn reject(&mut self, app: &AppDir, dir: AppDir, commit: &str, lines: &[String]) {
        let name = app.name.clone();
        for l in lines {
            tracing::warn!(app = %name, commit, "{l}");
        }
        let rec = self.apps.entry(name.clone()).or_default();
        rec.failed = true;
        rec.dir = Some(dir);
        let mut status = apply::AppStatus::rejected(
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
        let spec = self.status_spec(&name, app);
        if let Err(e) =
            apply::write_status(&self.client, &self.repo.namespace, &name, &spec, &status).await
        {
            tracing::warn!(app = %name, error = %e, "writing status failed");
        }
        let rec = self.apps.entry(name.clone()).or_default();
        rec.status = Some(status);
        rec.status_spec = spec;
        self.metrics.render_error(&self.repo.name);
    }

    fn status_spec(&self, app: &str, dir: &AppDir) -> Value {
        json!({
            "source": {"repo": self.repo.name, "url": rollgit_source::redact_url(&self.repo.url), "branch": self.repo.branch, "path": dir.dir},
            "app": app,
        })
    }

    /// Starts a watch per kind that rollgit applied, to notice drift.
    fn ensure_drift_watches(&mut self) {
        if !self.repo.self_heal {
            return;
        }
        let mut kinds = BTreeSet::new();
        for rec in self.apps.values() {
            for r in rec.inventory.entries() {
                kinds.insert((r.group.clone(), r.version.clone(), r.kind.clone()));
            }
        }
        for k in kinds {
            if self.watched_kinds.contains(&k) {
                continue;
            }
            self.watched_kinds.insert(k.clone());
            let (group, version, kind) = k;
            let client = self.client.clone();
            let tx = self.drift_tx.clone();
            let repo = self.repo.name.clone();
            tokio::spawn(async move {
                let gvk = kube::api::GroupVersionKind::gvk(&group, &version, &kind);
                let (ar, _) = match kube::discovery::pinned_kind(&client, &gvk).await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(%kind, error = %e, "cannot watch kind for drift");
                        return;
                    }
                };
                let api: Api<DynamicObject> = Api::all_with(client, &ar);
                // Small pages: the first listing of a watch holds a page of full objects at once.
                let cfg = watcher::Config::default()
                    .labels(&format!("{REPO_LABEL}={repo}"))
                    .page_size(50);
                let mut stream = watcher(api, cfg).boxed();
                while let Some(ev) = stream.next().await {
                    let obj = match ev {
                        Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::Delete(o)) => o,
                        Ok(_) => continue,
                        Err(e) => {
                            tracing::debug!(%kind, error = %e, "drift watch error; the watcher retries");
                            continue;
                        }
                    };
                    if let Some(app) = obj.metadata.labels.as_ref().and_then(|l| l.get(APP_LABEL)) {
                        let _ = tx.send(format!(
                            "{app}\u{0}{}",
                            serde_json::to_string(&obj).unwrap_or_default()
                        ));
                    }
                }
            });
        }
    }

    async fn correct_drift(&mut self, app: &str, objects: Vec<Value>) {
        let mut drifted = false;
        for obj in &objects {
            let key = object_key(obj);
            let deleted = obj["metadata"]["deletionTimestamp"].is_string();
            let exists = apply::exists(&self.client, obj).await;
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
        match self
            .applier
            .apply_app(app, &desired, false, &inventory)
            .await
        {
            Ok(report) => {
                let rec = self.apps.entry(app.to_string()).or_default();
                for o in &report.live {
                    rec.seen.insert(object_key(o), change_mark(o));
                }
                if report.changed.is_empty() {
                    return;
                }
                rec.drift_corrections += report.changed.len() as u64;
                let commit = rec.last_applied_commit.clone().unwrap_or_default();
                for r in &report.changed {
                    self.metrics.drift_corrected(&self.repo.name, app);
                    tracing::info!(app, object = %r, "drift corrected");
                    record_event(&self.client, r, &commit).await;
                }
                let rec = self.apps.entry(app.to_string()).or_default();
                let n = rec.drift_corrections;
                // The next status write (a health refresh) starts from the remembered status:
                // it must carry the count, or it would erase what record_drift wrote.
                if let Some(status) = rec.status.as_mut() {
                    status.drift_corrections = n;
                }
                if let Err(e) =
                    apply::record_drift(&self.client, &self.repo.namespace, app, n, &report.changed)
                        .await
                {
                    tracing::warn!(app, error = %e, "recording drift in status failed");
                }
            }
            Err(e) => tracing::warn!(app, error = %e, "drift correction failed"),
        }
    }
}

impl RepoWorker {
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
        if let Err(e) =
            apply::write_status(&self.client, &self.repo.namespace, app, &spec, &status).await
        {
            tracing::warn!(app, error = %e, "writing status failed");
        }
        if let Some(rec) = self.apps.get_mut(app) {
            rec.status = Some(status);
        }
    }
}

/// The inventory without ControllerRevisions: component revisions are history (a rollback
/// needs the earlier ones), never pruned when a newer revision replaces them; they go with the
/// app, through their ownerReference to its status object.
fn without_revisions(inv: &Inventory) -> Inventory {
    Inventory::from_refs(
        inv.entries()
            .iter()
            .filter(|r| !(r.group == "apps" && r.kind == "ControllerRevision"))
            .cloned(),
    )
}

/// The component revisions of an app, read from its ControllerRevisions.
pub async fn revision_state(client: &kube::Client, namespace: &str, app: &str) -> RevisionState {
    let mut state = RevisionState::default();
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &ApiResource::erase::<k8s_openapi::api::apps::v1::ControllerRevision>(&()),
    );
    // Selected by rollgit's own app label: `app.oam.dev/name` carries the KubeVela
    // Application's name, which need not be the rollgit app's (its directory).
    let lp = ListParams::default().labels(&format!("{}={app}", apply::APP_LABEL));
    match api.list(&lp).await {
        Ok(list) => {
            for cr in list.items {
                let Ok(v) = serde_json::to_value(&cr) else {
                    continue;
                };
                if let Some((component, existing)) =
                    rollgit_render::existing_revision_from_object(&v)
                {
                    state.push(&component, existing);
                } else if let Some((application, existing)) =
                    rollgit_render::existing_app_revision_from_object(&v)
                {
                    state.push_app(&application, existing);
                }
            }
        }
        Err(e) => tracing::warn!(app, error = %e, "cannot list ControllerRevisions"),
    }
    state
}

/// Records a correction as a Kubernetes Event on the object.
async fn record_event(client: &kube::Client, r: &apply::ObjRef, commit: &str) {
    let short = commit.get(..12).unwrap_or(commit);
    crate::record::emit_event(
        client,
        k8s_openapi::api::core::v1::ObjectReference {
            api_version: Some(r.api_version()),
            kind: Some(r.kind.clone()),
            name: Some(r.name.clone()),
            namespace: Some(r.namespace.clone().unwrap_or_else(|| "default".into())),
            ..Default::default()
        },
        "DriftCorrected",
        "Normal",
        &format!(
            "rollgit re-applied {} {} from Git commit {short}",
            r.kind, r.name
        ),
    )
    .await;
}
