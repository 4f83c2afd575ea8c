//! The **record** stage's Git half: every rollback the rollout stage makes becomes a
//! `git revert` commit on the tracked branch, pushed to the remote, so Git and the cluster
//! agree again.
//!
//! When a rollout fails and is rolled back ([`crate::rollout::RollbackHook`]), the commits that
//! introduced the failed revision are the ones on the branch's first-parent line after the
//! commit that last rolled out the good revision, up to the commit that asked for the failed
//! one, that changed the app's directory. They are reverted, newest first, in one commit
//! restricted to the app's directory (a three-way tree merge with gix), with trailers naming
//! what was reverted and why, and pushed with the `git` command as a fast-forward: never a force
//! push; when the remote moved, the revert is redone on the new head (bounded). A revert that
//! conflicts with newer commits is not pushed: the cluster stays rolled back, the Rollout
//! records `Stalled` with the conflicting paths (the app's health says so), and nothing is
//! retried until a new commit arrives.
//!
//! The failed revision is never deployed again because of the same change: the rollout stage
//! refuses it while Git asks for it, and after the revert Git asks for the good one.

use crate::rollout::{RollbackEvent, RollbackHook, rollout_resource};
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use rollgit_source::write::{self, Identity, RevertRequest, WriteError, WriteOutcome};
use rollgit_source::{ObjectId, RepoSpec, Trigger};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How many times a push is redone when the remote keeps moving.
pub const MAX_PUSH_ATTEMPTS: u32 = 5;
/// How many commits back a revert looks for the good commit.
const MAX_WALK: usize = 1_000;

/// Where and as whom one repository's rollbacks are written.
#[derive(Clone)]
pub struct RepoWriter {
    /// The repository (with its credentials).
    pub spec: RepoSpec,
    /// The daemon's mirror cache.
    pub cache: PathBuf,
    /// Author and committer (and signing key) of the commits.
    pub identity: Identity,
    /// Whether rollbacks are written to Git at all.
    pub revert_rollbacks: bool,
    /// Asks the repository's worker to fetch (so a pushed revert is applied at once).
    pub trigger: Trigger,
}

/// Writes rollbacks to Git ([`RollbackHook`]).
#[derive(Clone)]
pub struct GitRecorder {
    client: kube::Client,
    repos: Arc<BTreeMap<String, RepoWriter>>,
}

impl GitRecorder {
    /// A recorder for the repositories by name.
    pub fn new(client: kube::Client, repos: BTreeMap<String, RepoWriter>) -> Self {
        Self {
            client,
            repos: Arc::new(repos),
        }
    }
}

impl RollbackHook for GitRecorder {
    fn rolled_back(&self, event: RollbackEvent) {
        let me = self.clone();
        tokio::spawn(async move { me.record(event).await });
    }
}

/// What the record stage says about a rollback, in the Rollout's `status.record`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Recorded {
    /// The revert commit is on the remote branch.
    Reverted {
        commit: String,
        reverts: Vec<String>,
    },
    /// Git already had the last good content.
    AlreadyReverted,
    /// The revert conflicts with newer commits: nothing was pushed.
    Stalled { paths: Vec<String>, message: String },
    /// Writing failed (after retries) or is switched off.
    NotRecorded { message: String },
}

impl Recorded {
    fn to_status(&self, e: &RollbackEvent) -> Value {
        let base = json!({
            "from": e.from,
            "to": e.to,
            "specCommit": e.spec_commit,
        });
        let mut v = base;
        match self {
            Recorded::Reverted { commit, reverts } => {
                v["state"] = json!("Reverted");
                v["commit"] = json!(commit);
                v["reverts"] = json!(reverts);
                v["message"] = json!(format!(
                    "rollback written to Git as {}",
                    commit.get(..12).unwrap_or(commit)
                ));
            }
            Recorded::AlreadyReverted => {
                v["state"] = json!("Reverted");
                v["message"] = json!("Git already holds the last good content");
            }
            Recorded::Stalled { paths, message } => {
                v["state"] = json!("Stalled");
                v["paths"] = json!(paths);
                v["message"] = json!(message);
            }
            Recorded::NotRecorded { message } => {
                v["state"] = json!("NotRecorded");
                v["message"] = json!(message);
            }
        }
        v
    }
}

impl GitRecorder {
    async fn record(&self, e: RollbackEvent) {
        let outcome = self.write(&e).await;
        match &outcome {
            Recorded::Reverted { commit, .. } => {
                tracing::info!(rollout = %e.rollout, app = %e.app, commit = %commit, "rollback written to Git");
            }
            Recorded::AlreadyReverted => {}
            Recorded::Stalled { message, .. } | Recorded::NotRecorded { message } => {
                tracing::warn!(rollout = %e.rollout, app = %e.app, "{message}");
            }
        }
        let status = outcome.to_status(&e);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.client.clone(), &e.namespace, &rollout_resource());
        if let Err(err) = api
            .patch_status(
                &e.rollout,
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"record": status}})),
            )
            .await
        {
            tracing::warn!(rollout = %e.rollout, error = %err, "recording the rollback in the Rollout failed");
        }
        let (reason, type_) = match &outcome {
            Recorded::Reverted { .. } | Recorded::AlreadyReverted => ("RollbackRecorded", "Normal"),
            Recorded::Stalled { .. } => ("RevertConflict", "Warning"),
            Recorded::NotRecorded { .. } => ("RollbackNotRecorded", "Warning"),
        };
        let message = status["message"].as_str().unwrap_or_default().to_string();
        emit_event(
            &self.client,
            rollout_ref(&e.namespace, &e.rollout),
            reason,
            type_,
            &message,
        )
        .await;
        if matches!(outcome, Recorded::Reverted { .. })
            && let Some(r) = e.repo.as_ref().and_then(|r| self.repos.get(r))
        {
            r.trigger.notify();
        }
    }

    async fn write(&self, e: &RollbackEvent) -> Recorded {
        let Some(repo) = e.repo.as_ref().and_then(|r| self.repos.get(r)).cloned() else {
            return Recorded::NotRecorded {
                message: format!(
                    "rollback of {} not written to Git: repository {:?} is not configured",
                    e.rollout, e.repo
                ),
            };
        };
        if !repo.revert_rollbacks {
            return Recorded::NotRecorded {
                message: "writing rollbacks to Git is switched off for this repository".into(),
            };
        }
        let Some(failed) = e.failed_commit.as_deref().and_then(parse_id) else {
            return Recorded::NotRecorded {
                message: "the commit that asked for the failed revision is not known".into(),
            };
        };
        let good = e.good_commit.as_deref().and_then(parse_id);
        let mut delay = Duration::from_millis(500);
        for attempt in 1..=4 {
            let job = RevertJob {
                repo: repo.clone(),
                event: e.clone(),
                failed,
                good,
            };
            match tokio::task::spawn_blocking(move || job.run()).await {
                Ok(Ok(r)) => return r,
                Ok(Err(err)) if err.is_transient() && attempt < 4 => {
                    tracing::warn!(rollout = %e.rollout, error = %err, retry_in = ?delay, "writing the rollback to Git failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Ok(Err(WriteError::Conflict { paths, .. })) => {
                    return Recorded::Stalled {
                        message: format!(
                            "Stalled: the revert of {} conflicts with newer commits in {}; the cluster stays on {}, fix Git by hand (a new commit ends the stall)",
                            e.from,
                            paths.join(", "),
                            e.to
                        ),
                        paths,
                    };
                }
                Ok(Err(err)) => {
                    return Recorded::NotRecorded {
                        message: format!("writing the rollback to Git failed: {err}"),
                    };
                }
                Err(join) => {
                    return Recorded::NotRecorded {
                        message: format!("writing the rollback to Git failed: {join}"),
                    };
                }
            }
        }
        Recorded::NotRecorded {
            message: "writing the rollback to Git failed".into(),
        }
    }
}

fn parse_id(s: &str) -> Option<ObjectId> {
    ObjectId::from_hex(s.as_bytes()).ok()
}

/// The blocking part: find the commits, build the message, revert and push.
struct RevertJob {
    repo: RepoWriter,
    event: RollbackEvent,
    failed: ObjectId,
    good: Option<ObjectId>,
}

impl RevertJob {
    fn run(self) -> Result<Recorded, WriteError> {
        let spec = &self.repo.spec;
        let cache = &self.repo.cache;
        let e = &self.event;
        let fetch_err = |source: rollgit_source::SourceError| WriteError::Fetch {
            repo: spec.display_url(),
            branch: spec.branch.clone(),
            source: Box::new(source),
        };
        // The failed and the good commit were fetched by the daemon already: walk the mirror
        // as it is (the revert fetches the branch's newest head itself, into its own ref).
        let r = rollgit_source::Repo::open(spec, cache).map_err(fetch_err)?;
        let paths = vec![e.path.clone().unwrap_or_default()];
        let commits = r
            .commits_touching(self.good, self.failed, &paths, MAX_WALK)
            .map_err(fetch_err)?;
        if commits.is_empty() {
            return Ok(Recorded::AlreadyReverted);
        }
        let mut summaries = Vec::new();
        for c in &commits {
            let info = r.commit_info(*c).map_err(fetch_err)?;
            summaries.push(format!(
                "  {} {}",
                &info.sha[..12.min(info.sha.len())],
                info.summary
            ));
        }
        let message = revert_message(e, &commits, &summaries);
        let req = RevertRequest {
            commits: commits.clone(),
            message,
            identity: self.repo.identity.clone(),
            paths: Some(paths),
            max_attempts: MAX_PUSH_ATTEMPTS,
        };
        Ok(match write::revert(spec, cache, &req)? {
            WriteOutcome::Pushed { commit, .. } => Recorded::Reverted {
                commit: commit.to_string(),
                reverts: commits.iter().map(ToString::to_string).collect(),
            },
            WriteOutcome::NothingToDo | WriteOutcome::DryRun { .. } => Recorded::AlreadyReverted,
        })
    }
}

/// The file, in an app's directory, where rollgit writes back the revisions it decided (not a
/// manifest: the renderer never reads it).
pub const BUMP_FILE: &str = ".rollgit-revisions";

/// The path of the bump file of the app in `dir`.
pub fn bump_path(dir: &str) -> String {
    if dir.is_empty() {
        BUMP_FILE.to_string()
    } else {
        format!("{}/{BUMP_FILE}", dir.trim_end_matches('/'))
    }
}

/// Whether a render decided something new that the bump file should record.
pub fn has_bumps(r: &rollgit_render::Rendered) -> bool {
    r.publish_version_changed
        || r.revisions.iter().any(|v| v.is_new)
        || r.app_revisions.iter().any(|v| v.is_new)
}

/// The bump file's content for a render: the revisions and publishVersion in effect, sorted,
/// so the same decisions give the same bytes (and an unchanged render, no commit).
pub fn bump_file(r: &rollgit_render::Rendered) -> String {
    let mut out = String::from(
        "# Written by rollgit: the revisions it decided for this app, one commit per change.\n# `git log -p` on this file is the app's revision history. Do not edit.\n",
    );
    out.push_str(&format!("publishVersion: {}\n", r.publish_version));
    let components: BTreeMap<&str, &str> = r
        .revisions
        .iter()
        .map(|v| (v.component.as_str(), v.name.as_str()))
        .collect();
    if !components.is_empty() {
        out.push_str("components:\n");
        for (c, v) in components {
            out.push_str(&format!("  {c}: {v}\n"));
        }
    }
    let apps: BTreeMap<&str, &str> = r
        .app_revisions
        .iter()
        .map(|v| (v.application.as_str(), v.name.as_str()))
        .collect();
    if !apps.is_empty() {
        out.push_str("applications:\n");
        for (a, v) in apps {
            out.push_str(&format!("  {a}: {v}\n"));
        }
    }
    out
}

/// Commits the bump file of `app` (in the background): one commit when the decisions changed,
/// none when Git already has them. The commit changes only that file, which the renderer does
/// not read, so rendering it again decides nothing new: no commit loop.
/// A `Normal` Event `RevisionsWrittenBack` on the app's status object names the commit.
pub fn write_bumps(
    client: kube::Client,
    namespace: String,
    writer: RepoWriter,
    app: String,
    dir: String,
    commit: String,
    content: String,
) {
    tokio::spawn(async move {
        let path = bump_path(&dir);
        let short = commit.get(..12).unwrap_or(&commit).to_string();
        let summary = content
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(", ");
        let req = write::CommitRequest {
            files: BTreeMap::from([(path.clone(), content.into_bytes())]),
            message: format!(
                "rollgit: {app} revisions for {short}\n\n{summary}\n\nRollgit-App: {app}\nRollgit-Bump: {short}\n"
            ),
            identity: writer.identity.clone(),
            max_attempts: MAX_PUSH_ATTEMPTS,
        };
        let spec = writer.spec.clone();
        let cache = writer.cache.clone();
        match tokio::task::spawn_blocking(move || write::commit_files(&spec, &cache, &req)).await {
            Ok(Ok(WriteOutcome::Pushed { commit, .. })) => {
                tracing::info!(app, file = %path, commit = %commit, "revisions written to Git");
                let status = crate::apply::status::application_resource();
                emit_event(
                    &client,
                    k8s_openapi::api::core::v1::ObjectReference {
                        api_version: Some(status.api_version),
                        kind: Some(status.kind),
                        name: Some(app.clone()),
                        namespace: Some(namespace),
                        ..Default::default()
                    },
                    "RevisionsWrittenBack",
                    "Normal",
                    &format!("{path} committed to Git as {commit}"),
                )
                .await;
                writer.trigger.notify();
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(app, file = %path, error = %e, "writing revisions to Git failed")
            }
            Err(e) => tracing::warn!(app, error = %e, "writing revisions to Git failed"),
        }
    });
}

/// The revert commit's message: what, why, and trailers linking back.
pub fn revert_message(e: &RollbackEvent, commits: &[ObjectId], summaries: &[String]) -> String {
    let mut m = format!(
        "Revert {}: {} failed, rolled back to {}\n\n",
        e.app, e.from, e.to
    );
    m.push_str(&format!(
        "rollgit rolled component {} of app {} back from {} to {} because the rollout failed:\n{}\n\n",
        e.component, e.app, e.from, e.to, e.reason
    ));
    m.push_str(if commits.len() == 1 {
        "This reverts, in the app's directory:\n"
    } else {
        "This reverts, in the app's directory, newest first:\n"
    });
    for s in summaries {
        m.push_str(s);
        m.push('\n');
    }
    m.push('\n');
    for c in commits {
        m.push_str(&format!("Reverts: {c}\n"));
    }
    m.push_str(&format!("Rollgit-App: {}\n", e.app));
    m.push_str(&format!("Rollgit-Rollout: {}/{}\n", e.namespace, e.rollout));
    m.push_str(&format!("Rollgit-Failed-Revision: {}\n", e.from));
    m
}

/// Records a Kubernetes Event on `involved` (best effort: a failure is logged at debug).
pub async fn emit_event(
    client: &kube::Client,
    involved: k8s_openapi::api::core::v1::ObjectReference,
    reason: &str,
    type_: &str,
    message: &str,
) {
    let ns = involved
        .namespace
        .clone()
        .unwrap_or_else(|| "default".into());
    let name = involved.name.clone().unwrap_or_default();
    let api: Api<k8s_openapi::api::core::v1::Event> = Api::namespaced(client.clone(), &ns);
    let now =
        k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(k8s_openapi::jiff::Timestamp::now());
    let ev = k8s_openapi::api::core::v1::Event {
        metadata: kube::api::ObjectMeta {
            generate_name: Some(format!("{name}.")),
            namespace: Some(ns),
            ..Default::default()
        },
        involved_object: involved,
        reason: Some(reason.into()),
        message: Some(message.into()),
        type_: Some(type_.into()),
        source: Some(k8s_openapi::api::core::v1::EventSource {
            component: Some("rollgit".into()),
            ..Default::default()
        }),
        first_timestamp: Some(now.clone()),
        last_timestamp: Some(now),
        count: Some(1),
        reporting_component: Some("rollgit".into()),
        ..Default::default()
    };
    if let Err(e) = api.create(&PostParams::default(), &ev).await {
        tracing::debug!(error = %e, "recording an event failed");
    }
}

/// The reference of a Rollout, for its events.
pub fn rollout_ref(ns: &str, name: &str) -> k8s_openapi::api::core::v1::ObjectReference {
    k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(rollout_resource().api_version),
        kind: Some(crate::rollout::KIND.into()),
        name: Some(name.into()),
        namespace: Some(ns.into()),
        ..Default::default()
    }
}
