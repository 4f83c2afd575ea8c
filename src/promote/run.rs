//! The promoter: one task that runs a pass over every pipeline step on a short interval and
//! on every clock jump (tests move the clock through soaks): **observe** the stage's app
//! status object, its Git history (was the newest change an automatic revert?) and the
//! recorded pull request on the forge; **decide** with [`super::core::decide`]; **act**
//! (replay and push a branch, open, comment, close, merge); **record** `status.promotion` on
//! the stage's app status object, once, when it changed.
//!
//! A pull request is opened only after the forge was asked for an open one of the same
//! branch (the branch name is derived from the commit), so a daemon restarted between the
//! push and the status write finds it instead of opening a second one.

use super::core::{self, Action, Evidence, Input, PrState, StageView};
use super::forge::{ForgeClient, ForgeError, NewPullRequest};
use super::replay::{self, Files, Replay};
use crate::clock::SharedClock;
use crate::config::{Config, Pipeline, Repo};
use crate::k8s::crds::{ApplicationStatus, PromotionStatus, PullRequestStatus};
use crate::k8s::{MANAGED_BY, MANAGED_BY_LABEL};
use crate::record::status::{application_resource, merge_patch};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use rollgit_source::write::{BranchOutcome, BranchRequest, WriteError};
use rollgit_source::{ObjectId, SourceError};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

/// The annotation `rollgit promote-stage APP --to STAGE` sets on the stage's Application:
/// `<to-stage>@<RFC 3339 time>`; a value not handled yet opens the pull request now.
pub const PROMOTE_REQUEST_ANNOTATION: &str = "rollgit.dev/promote-requested";

/// How often the promoter looks at the stages (and the forge's pull requests).
pub const PASS_INTERVAL: Duration = Duration::from_secs(2);

/// A failed promotion step (no message holds a token).
#[derive(Debug, thiserror::Error)]
pub enum PromoteError {
    /// The stage's app status does not parse (written by hand, or by another version): its
    /// promotion record is not guessed.
    #[error("pipeline {pipeline}: the status of {namespace}/{app} does not parse: {message}")]
    ParseStatus {
        /// The pipeline.
        pipeline: String,
        /// The app's namespace.
        namespace: String,
        /// The stage's app.
        app: String,
        /// The parser's message.
        message: String,
    },
    /// Recording `status.promotion` failed.
    #[error("pipeline {pipeline}: cannot record the promotion in {namespace}/{app}")]
    Record {
        /// The pipeline.
        pipeline: String,
        /// The app's namespace.
        namespace: String,
        /// The stage's app.
        app: String,
        /// The cause.
        #[source]
        source: kube::Error,
    },
    /// Reading the repository failed.
    #[error("pipeline {pipeline}: cannot read Git")]
    Git {
        /// The pipeline.
        pipeline: String,
        /// The cause.
        #[source]
        source: SourceError,
    },
    /// Pushing the promotion branch failed.
    #[error("pipeline {pipeline}: cannot push the promotion branch {branch}")]
    Push {
        /// The pipeline.
        pipeline: String,
        /// The branch.
        branch: String,
        /// The cause.
        #[source]
        source: WriteError,
    },
    /// The forge refused or did not answer.
    #[error("pipeline {pipeline}: forge")]
    Forge {
        /// The pipeline.
        pipeline: String,
        /// The cause.
        #[source]
        source: ForgeError,
    },
    /// A blocking Git task panicked or was cancelled.
    #[error("pipeline {pipeline}: a Git task did not finish")]
    Task {
        /// The pipeline.
        pipeline: String,
    },
}

/// One pipeline step's forge client.
type Forges = Vec<Option<ForgeClient>>;

/// The promoter of a configuration's pipelines.
pub struct Promoter {
    pipelines: Vec<(Pipeline, Forges)>,
    repos: BTreeMap<String, Repo>,
    clients: BTreeMap<String, kube::Client>,
    clock: SharedClock,
    cache: PathBuf,
    /// Whether the newest change of a directory at a commit is an automatic revert, by
    /// `(repo, dir, commit)`: commits do not change.
    reverted: Mutex<BTreeMap<(String, String, String), bool>>,
    /// The last state the forge reported of a pull request, by `(pipeline, to, number)`, and
    /// when: asked again only after the forge's `pollInterval` (rate limits).
    polled: Mutex<BTreeMap<PolledKey, (tokio::time::Instant, PrState)>>,
    /// The namespaces rollgit watches.
    scope: crate::config::WatchScope,
}

/// The Applications of each cluster (by index) the pipelines' repositories are in, kept by a
/// watch of the namespaces rollgit watches (all of them by default): an app's status object
/// lives in its KubeVela Application's namespace, or the repository's.
pub type Stores = BTreeMap<usize, Store<DynamicObject>>;

/// `(pipeline, to-stage, pull request number)`.
type PolledKey = (String, String, u64);

/// How many commits' revert verdicts are remembered.
const REVERTED_CACHE: usize = 1024;

impl std::fmt::Debug for Promoter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Promoter")
            .field("pipelines", &self.pipelines.len())
            .finish()
    }
}

impl Promoter {
    /// The promoter of `cfg`'s pipelines whose stages are all among `cfg`'s repositories (a
    /// shard's), with `clients[i]` the client of `cfg.clusters[i]`.
    pub fn new(cfg: &Config, clients: &[kube::Client], clock: SharedClock) -> Self {
        let repos: BTreeMap<String, Repo> = cfg
            .repos
            .iter()
            .map(|r| (r.name.clone(), r.clone()))
            .collect();
        let clients = cfg
            .repos
            .iter()
            .filter_map(|r| Some((r.name.clone(), clients.get(r.cluster)?.clone())))
            .collect();
        let mut pipelines = Vec::new();
        for p in &cfg.promotion {
            let here = p
                .stages
                .iter()
                .filter(|s| repos.contains_key(&s.repo))
                .count();
            if here < p.stages.len() {
                if here > 0 {
                    tracing::warn!(
                        pipeline = p.app.as_str(),
                        "the pipeline's repositories are in different shards: it is not promoted; put them in one shard"
                    );
                }
                continue; // another shard's
            }
            let mut forges = Vec::new();
            for s in &p.stages {
                forges.push(match &s.forge {
                    None => None,
                    Some(f) => match ForgeClient::new(f.clone()) {
                        Ok(c) => Some(c),
                        Err(e) => {
                            tracing::error!(pipeline = p.app.as_str(), stage = s.name.as_str(), error = %crate::error_chain(&e), "cannot build the forge client; the stage is not promoted to");
                            None
                        }
                    },
                });
            }
            pipelines.push((p.clone(), forges));
        }
        Self {
            pipelines,
            repos,
            clients,
            clock,
            cache: cfg.state_dir.join("promotion"),
            reverted: Mutex::new(BTreeMap::new()),
            polled: Mutex::new(BTreeMap::new()),
            scope: cfg.watch.clone(),
        }
    }

    /// A store of the Applications of each cluster the pipelines' repositories are in, and
    /// the tasks whose watches fill them (they stop when dropped).
    fn watch_applications(&self) -> (Stores, Vec<crate::AbortOnDrop>) {
        let resource = application_resource();
        let cfg = watcher::Config::default().labels(&format!("{MANAGED_BY_LABEL}={MANAGED_BY}"));
        let mut stores = Stores::new();
        let mut tasks = Vec::new();
        for (name, client) in &self.clients {
            let Some(repo) = self.repos.get(name) else {
                continue;
            };
            if stores.contains_key(&repo.cluster) {
                continue;
            }
            let apis = self.scope.apis(|ns| match ns {
                Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
                None => Api::all_with(client.clone(), &resource),
            });
            let (store, stream) = crate::k8s::scope::reflect(apis, cfg.clone(), resource.clone());
            let task = tokio::spawn(stream.for_each(|_| std::future::ready(())));
            tasks.push(crate::AbortOnDrop(task.abort_handle()));
            stores.insert(repo.cluster, store);
        }
        (stores, tasks)
    }

    /// Whether there is anything to promote.
    pub fn is_empty(&self) -> bool {
        self.pipelines.is_empty()
    }

    /// Runs passes until the task is dropped.
    pub async fn run(self) {
        let mut jumps = self.clock.jumps();
        let mut repeats: BTreeMap<String, crate::Repeats> = BTreeMap::new();
        let (stores, _watches) = self.watch_applications();
        loop {
            for (p, _) in &self.pipelines {
                for i in 0..p.stages.len().saturating_sub(1) {
                    let key = format!("{}/{}", p.app, p.stages[i].name);
                    let r = repeats.entry(key).or_default();
                    match self.step(p, i, &stores).await {
                        Ok(()) => r.clear(),
                        Err(e) => {
                            let text = crate::error_chain(&e);
                            if let Some(times) = r.note(&text) {
                                tracing::warn!(pipeline = p.app.as_str(), from = p.stages[i].name.as_str(), error = %text, times, "promotion step failed; trying again");
                            }
                        }
                    }
                }
            }
            let tick = tokio::time::sleep(PASS_INTERVAL);
            match jumps.as_mut() {
                Some(j) => {
                    tokio::select! {
                        _ = tick => {}
                        _ = j.next() => {}
                    }
                }
                None => tick.await,
            }
        }
    }

    fn forge(&self, p: &Pipeline, i: usize) -> Option<&ForgeClient> {
        self.pipelines
            .iter()
            .find(|(q, _)| q.app == p.app)
            .and_then(|(_, f)| f.get(i)?.as_ref())
    }

    /// The Applications of `repo`'s cluster (empty until its watch listed them).
    fn applications(stores: &Stores, repo: &Repo) -> Vec<std::sync::Arc<DynamicObject>> {
        stores
            .get(&repo.cluster)
            .map(Store::state)
            .unwrap_or_default()
    }

    /// One pass of the step from stage `i` to stage `i + 1` of `p` (`stores`: the
    /// Applications of each cluster).
    pub async fn step(&self, p: &Pipeline, i: usize, stores: &Stores) -> Result<(), PromoteError> {
        let (from, to) = (&p.stages[i], &p.stages[i + 1]);
        let (Some(from_repo), Some(to_repo), Some(client)) = (
            self.repos.get(&from.repo),
            self.repos.get(&to.repo),
            self.clients.get(&from.repo),
        ) else {
            return Ok(());
        };
        let Some(forge) = self.forge(p, i + 1) else {
            return Ok(());
        };
        let pipeline = p.app.clone();
        let apps = Self::applications(stores, from_repo);
        let Some(obj) = apps.iter().find(|o| {
            o.data.pointer("/spec/source/repo").and_then(|v| v.as_str()) == Some(&from_repo.name)
                && o.data.pointer("/spec/source/path").and_then(|v| v.as_str())
                    == Some(from.path.as_str())
        }) else {
            return Ok(()); // the stage's app is not deployed yet
        };
        let app_name = &obj.metadata.name.clone().unwrap_or_default();
        let app_namespace = obj
            .metadata
            .namespace
            .clone()
            .unwrap_or_else(|| from_repo.namespace.clone());
        let status: ApplicationStatus = match obj.data.get("status") {
            None => ApplicationStatus::default(),
            Some(s) => {
                serde_json::from_value(s.clone()).map_err(|e| PromoteError::ParseStatus {
                    pipeline: pipeline.clone(),
                    namespace: app_namespace.clone(),
                    app: app_name.clone(),
                    message: e.to_string(),
                })?
            }
        };
        let live = status.promotion.clone();
        let mut rec = match live.clone() {
            Some(r) if r.to == to.name && r.pipeline == p.app => r,
            _ => PromotionStatus {
                pipeline: p.app.clone(),
                from: from.name.clone(),
                to: to.name.clone(),
                ..Default::default()
            },
        };
        // The next stage's app (for `rollgit promotion status`).
        rec.to_app = Self::applications(stores, to_repo)
            .iter()
            .find(|o| {
                o.data.pointer("/spec/source/repo").and_then(|v| v.as_str()) == Some(&to_repo.name)
                    && o.data.pointer("/spec/source/path").and_then(|v| v.as_str())
                        == Some(to.path.as_str())
            })
            .and_then(|o| o.metadata.name.clone())
            .or(rec.to_app.take());
        let request = obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(PROMOTE_REQUEST_ANNOTATION))
            .filter(|v| v.split('@').next() == Some(to.name.as_str()))
            .cloned();
        let manual = request.is_some() && request != rec.last_request;
        if manual {
            rec.last_request = request;
        }
        let pr_state = match &rec.pull_request {
            Some(pr) => Some(self.pr_state(forge, &pipeline, &to.name, pr.number).await?),
            None => None,
        };
        let deployed = status.last_applied_commit.clone();
        let settled = deployed.is_some()
            && status.last_applied_commit == status.last_attempted_commit
            && status.phase == crate::k8s::crds::Phase::Running;
        let reverted = match &deployed {
            Some(d) => self.reverted(&pipeline, from_repo, &from.path, d).await?,
            None => false,
        };
        let input = Input {
            soak_secs: from.soak.as_secs(),
            auto_merge: to.auto_merge,
            stage: StageView {
                deployed: deployed.clone(),
                settled,
                healthy: status.healthy,
                reverted,
            },
            pr: pr_state,
            manual,
        };
        let now = self.clock.now_unix();
        let (mut next, actions) = core::decide(&rec, &input, now);
        for action in actions {
            match action {
                Action::Close { pr, comment } => {
                    self.close(forge, &pipeline, &pr, &comment).await?;
                }
                Action::Merge { pr } => {
                    forge
                        .merge(pr.number)
                        .await
                        .map_err(|source| PromoteError::Forge {
                            pipeline: pipeline.clone(),
                            source,
                        })?;
                    // Asked again on the next pass: merged now.
                    self.polled
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&(pipeline.clone(), to.name.clone(), pr.number));
                    tracing::info!(
                        pipeline = pipeline.as_str(),
                        to = to.name.as_str(),
                        pr = pr.number,
                        "merged the promotion pull request (autoMerge)"
                    );
                }
                Action::Open {
                    source,
                    base,
                    manual,
                    supersedes,
                } => {
                    next = self
                        .open(
                            p, i, &next, &status, from_repo, to_repo, forge, &source, &base, manual,
                        )
                        .await?;
                    if let (Some(old), Some(new)) = (supersedes, &next.pull_request)
                        && old.number != new.number
                    {
                        self.close(forge, &pipeline, &old, &core::superseded_comment(new))
                            .await?;
                    }
                }
            }
        }
        if live.as_ref() != Some(&next) {
            record(client, &app_namespace, app_name, live.as_ref(), &next)
                .await
                .map_err(|source| PromoteError::Record {
                    pipeline,
                    namespace: app_namespace.clone(),
                    app: app_name.clone(),
                    source,
                })?;
        }
        Ok(())
    }

    async fn close(
        &self,
        forge: &ForgeClient,
        pipeline: &str,
        pr: &PullRequestStatus,
        comment: &str,
    ) -> Result<(), PromoteError> {
        let err = |source| PromoteError::Forge {
            pipeline: pipeline.to_string(),
            source,
        };
        forge.comment(pr.number, comment).await.map_err(err)?;
        forge.close(pr.number).await.map_err(err)?;
        tracing::info!(
            pipeline,
            pr = pr.number,
            "closed the promotion pull request"
        );
        Ok(())
    }

    /// Whether the newest change of `dir` at `commit` is an automatic revert.
    async fn reverted(
        &self,
        pipeline: &str,
        repo: &Repo,
        dir: &str,
        commit: &str,
    ) -> Result<bool, PromoteError> {
        let key = (repo.name.clone(), dir.to_string(), commit.to_string());
        if let Some(v) = self
            .reverted
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(*v);
        }
        let (spec, cache, dir, commit) = (
            repo.source_spec(),
            self.cache.clone(),
            dir.to_string(),
            commit.to_string(),
        );
        let v = blocking(pipeline, move || {
            let git = open_at(&spec, &cache, &commit)?;
            let Some(id) = git.1 else { return Ok(false) };
            let newest = git.0.commits_touching(None, id, &[dir], 500)?;
            let Some(newest) = newest.first() else {
                return Ok(false);
            };
            let entry = git.0.log(*newest, 1)?;
            Ok(entry.first().is_some_and(|e| e.rollout.is_some()))
        })
        .await?;
        let mut cache = self.reverted.lock().unwrap_or_else(|p| p.into_inner());
        if cache.len() >= REVERTED_CACHE {
            cache.clear();
        }
        cache.insert(key, v);
        Ok(v)
    }

    /// What the forge says of pull request `number` (at most once per `pollInterval`); a pull
    /// request the forge no longer has (404) counts as closed.
    async fn pr_state(
        &self,
        forge: &ForgeClient,
        pipeline: &str,
        to: &str,
        number: u64,
    ) -> Result<PrState, PromoteError> {
        let key = (pipeline.to_string(), to.to_string(), number);
        let now = tokio::time::Instant::now();
        if let Some((at, state)) = self
            .polled
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            && now.duration_since(*at) < forge.poll_interval()
        {
            return Ok(*state);
        }
        let state = match forge.state(number).await {
            Ok(s) => s,
            Err(ForgeError::Status { status: 404, .. }) => PrState::Closed,
            Err(source) => {
                return Err(PromoteError::Forge {
                    pipeline: pipeline.to_string(),
                    source,
                });
            }
        };
        let mut polled = self.polled.lock().unwrap_or_else(|p| p.into_inner());
        polled.retain(|(p, t, _), _| !(p == pipeline && t == to));
        polled.insert(key, (now, state));
        Ok(state)
    }

    /// Replays, pushes and opens (or finds) the pull request for `source`.
    #[allow(clippy::too_many_arguments)]
    async fn open(
        &self,
        p: &Pipeline,
        i: usize,
        rec: &PromotionStatus,
        status: &ApplicationStatus,
        from_repo: &Repo,
        to_repo: &Repo,
        forge: &ForgeClient,
        source: &str,
        base: &str,
        manual: bool,
    ) -> Result<PromotionStatus, PromoteError> {
        let (from, to) = (&p.stages[i], &p.stages[i + 1]);
        let pipeline = p.app.clone();
        let branch = core::branch_name(&p.app, &to.name, source);
        // A restart between the push and the status write: the pull request is there.
        if let Some(found) =
            forge
                .find_open(&branch)
                .await
                .map_err(|source| PromoteError::Forge {
                    pipeline: pipeline.clone(),
                    source,
                })?
        {
            tracing::info!(
                pipeline = pipeline.as_str(),
                pr = found.number,
                branch = branch.as_str(),
                "found the open promotion pull request"
            );
            return Ok(core::opened(
                rec,
                PullRequestStatus {
                    number: found.number,
                    url: found.url,
                    branch,
                    source_commit: source.to_string(),
                    manual,
                },
            ));
        }
        let (from_spec, to_spec, cache) = (
            from_repo.source_spec(),
            to_repo.source_spec(),
            self.cache.clone(),
        );
        let (from_dir, to_dir) = (from.path.clone(), to.path.clone());
        let (src, base_c) = (source.to_string(), base.to_string());
        let (exclude, images) = (to.exclude.clone(), to.images);
        let (replayed, summary) = blocking(&pipeline, move || {
            let (from_git, src_id) = open_at(&from_spec, &cache, &src)?;
            let (_, base_id) = open_at(&from_spec, &cache, &base_c)?;
            let (Some(src_id), Some(base_id)) = (src_id, base_id) else {
                return Ok((Replay::default(), String::new()));
            };
            let theirs = files_under(&from_git, src_id, &from_dir)?;
            let base_files = files_under(&from_git, base_id, &from_dir)?;
            let fetched = rollgit_source::fetch(&to_spec, &cache)?;
            let to_git = rollgit_source::Repo::open(&to_spec, &cache)?;
            let ours = files_under(&to_git, fetched.head, &to_dir)?;
            let replayed = if images {
                replay::replay_images(&base_files, &theirs, &ours)
            } else {
                replay::replay(&base_files, &theirs, &ours, &exclude)
            };
            let summary = from_git.commit_info(src_id)?.summary;
            Ok((replayed, summary))
        })
        .await?;
        if !replayed.conflicts.is_empty() {
            tracing::warn!(pipeline = pipeline.as_str(), to = to.name.as_str(), conflicts = ?replayed.conflicts, "the promotion conflicts; no pull request");
            return Ok(core::conflicted(rec, source, &replayed.conflicts));
        }
        if replayed.edits.is_empty() {
            return Ok(core::nothing_to_promote(rec, source));
        }
        let evidence = Evidence {
            app: p.app.clone(),
            from: from.name.clone(),
            to: to.name.clone(),
            commit: source.to_string(),
            summary,
            commit_url: forge.commit_url(source),
            files: replayed
                .files
                .iter()
                .map(|(f, k)| (f.clone(), k.as_str()))
                .collect(),
            images: replayed
                .images
                .iter()
                .map(|c| (c.name.clone(), c.from.clone(), c.to.clone()))
                .collect(),
            rollouts: rollout_results(self.clients.get(&from.repo), status).await,
            health: if manual {
                "healthy".to_string()
            } else {
                format!(
                    "healthy since {} (soak {})",
                    rec.healthy_since.as_deref().unwrap_or("-"),
                    humantime::format_duration(from.soak)
                )
            },
            manual,
            images_only: to.images,
        };
        let title = core::title(&evidence);
        let body = core::body(&evidence);
        let edits: BTreeMap<String, Option<Vec<u8>>> = replayed
            .edits
            .into_iter()
            .map(|(rel, c)| {
                let full = if to.path.is_empty() {
                    rel
                } else {
                    format!("{}/{rel}", to.path)
                };
                (full, c)
            })
            .collect();
        let req = BranchRequest {
            edits,
            branch: branch.clone(),
            message: format!(
                "{title}\n\nRollgit-Promotion: {}/{}\nRollgit-Promoted-From: {}@{source}\n",
                p.app, to.name, from.name
            ),
            identity: to_repo.identity.clone(),
        };
        let (to_spec, cache, b) = (to_repo.source_spec(), self.cache.clone(), branch.clone());
        let pushed = tokio::task::spawn_blocking(move || {
            rollgit_source::write::commit_to_branch(&to_spec, &cache, &req)
        })
        .await
        .map_err(|_| PromoteError::Task {
            pipeline: pipeline.clone(),
        })?
        .map_err(|source| PromoteError::Push {
            pipeline: pipeline.clone(),
            branch: b,
            source,
        })?;
        if pushed == BranchOutcome::NothingToDo {
            return Ok(core::nothing_to_promote(rec, source));
        }
        let pr = forge
            .open(&NewPullRequest {
                head: &branch,
                base: &to_repo.branch,
                title: &title,
                body: &body,
            })
            .await
            .map_err(|source| PromoteError::Forge {
                pipeline: pipeline.clone(),
                source,
            })?;
        tracing::info!(
            pipeline = pipeline.as_str(),
            from = from.name.as_str(),
            to = to.name.as_str(),
            pr = pr.number,
            branch = branch.as_str(),
            "opened the promotion pull request"
        );
        Ok(core::opened(
            rec,
            PullRequestStatus {
                number: pr.number,
                url: pr.url,
                branch,
                source_commit: source.to_string(),
                manual,
            },
        ))
    }
}

/// Each rollout of the stage's app (the Rollouts of its inventory: rollgit's, Argo's,
/// Kruise's) with its state and, where its conditions tell, how long its last run took; else
/// each component's revision and health.
async fn rollout_results(
    client: Option<&kube::Client>,
    status: &ApplicationStatus,
) -> Vec<(String, String, Option<u64>)> {
    let mut out = Vec::new();
    for e in &status.inventory.entries {
        let (Some(client), Some(ns)) = (client, &e.namespace) else {
            continue;
        };
        if e.kind != "Rollout"
            || !matches!(
                e.group.as_str(),
                "rollgit.dev" | "argoproj.io" | "rollouts.kruise.io"
            )
        {
            continue;
        }
        let ar = kube::core::ApiResource {
            group: e.group.clone(),
            version: e.version.clone(),
            api_version: format!("{}/{}", e.group, e.version),
            kind: e.kind.clone(),
            plural: "rollouts".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &ar);
        let Ok(Some(o)) = api.get_opt(&e.name).await else {
            continue;
        };
        let st = &o.data["status"];
        let text = |k: &str| {
            st.get(k)
                .and_then(|v| v.as_str())
                .unwrap_or("-")
                .to_string()
        };
        let result = if e.group == "rollgit.dev" {
            format!("{} ({})", text("rollingState"), text("stableRevision"))
        } else {
            text("phase")
        };
        // From the first to the last change of its conditions: the last run.
        let times: Vec<i64> = st
            .get("conditions")
            .and_then(|c| c.as_array())
            .map(|cs| {
                cs.iter()
                    .filter_map(|c| c.get("lastTransitionTime")?.as_str())
                    .filter_map(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
                    .map(|t| t.as_second())
                    .collect()
            })
            .unwrap_or_default();
        let secs = match (times.iter().min(), times.iter().max()) {
            (Some(a), Some(b)) if b > a => u64::try_from(b - a).ok(),
            _ => None,
        };
        out.push((e.name.clone(), result, secs));
    }
    if out.is_empty() {
        out = status
            .components
            .iter()
            .map(|c| {
                let result = match (&c.revision, c.healthy) {
                    (Some(r), true) => format!("healthy at {r}"),
                    (None, true) => "healthy".to_string(),
                    (_, false) => format!("not healthy: {}", c.message),
                };
                (c.name.clone(), result, None)
            })
            .collect();
    }
    out
}

/// Runs `f` on the blocking pool.
async fn blocking<T: Send + 'static>(
    pipeline: &str,
    f: impl FnOnce() -> Result<T, SourceError> + Send + 'static,
) -> Result<T, PromoteError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| PromoteError::Task {
            pipeline: pipeline.to_string(),
        })?
        .map_err(|source| PromoteError::Git {
            pipeline: pipeline.to_string(),
            source,
        })
}

/// The repository (fetched into the promoter's mirror when it lacks `commit`) and the id of
/// `commit` (`None` when it is not a commit id).
fn open_at(
    spec: &rollgit_source::RepoSpec,
    cache: &std::path::Path,
    commit: &str,
) -> Result<(rollgit_source::Repo, Option<ObjectId>), SourceError> {
    let Ok(id) = ObjectId::from_hex(commit.as_bytes()) else {
        return Ok((
            rollgit_source::Repo::open(spec, cache).or_else(|_| {
                rollgit_source::fetch(spec, cache)?;
                rollgit_source::Repo::open(spec, cache)
            })?,
            None,
        ));
    };
    if let Ok(repo) = rollgit_source::Repo::open(spec, cache)
        && repo.commit_info(id).is_ok()
    {
        return Ok((repo, Some(id)));
    }
    rollgit_source::fetch(spec, cache)?;
    let repo = rollgit_source::Repo::open(spec, cache)?;
    Ok((repo, Some(id)))
}

/// The files under `dir` at `commit`, by path relative to `dir`.
fn files_under(
    repo: &rollgit_source::Repo,
    commit: ObjectId,
    dir: &str,
) -> Result<Files, SourceError> {
    let prefix = if dir.is_empty() {
        String::new()
    } else {
        format!("{dir}/")
    };
    Ok(repo
        .read_files(commit, dir)?
        .into_iter()
        .filter_map(|(p, c)| Some((p.strip_prefix(&prefix)?.to_string(), c)))
        .collect())
}

/// Writes `status.promotion` of the Application `namespace/app`: a merge patch of that key
/// only (the rest of the status is the worker's), from `live` to `rec`.
async fn record(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    live: Option<&PromotionStatus>,
    rec: &PromotionStatus,
) -> Result<(), kube::Error> {
    let new = serde_json::to_value(rec).unwrap_or(serde_json::Value::Null);
    let patch = match live.and_then(|l| serde_json::to_value(l).ok()) {
        Some(old) => merge_patch(&old, &new),
        None => new,
    };
    let body = serde_json::json!({ "promotion": patch });
    crate::record::status::patch_application_status(client, namespace, app, &body).await?;
    tracing::info!(
        namespace,
        app,
        state = rec.state.as_str(),
        message = rec.message.as_str(),
        "promotion recorded"
    );
    Ok(())
}
