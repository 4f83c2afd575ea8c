//! Every rollback the rollout stage makes becomes a `git revert` commit on the tracked branch,
//! pushed to the remote, so Git and the cluster agree again ([`GitRecorder`], the rollout
//! stage's [`RollbackHook`]).
//!
//! The commits reverted are those of the branch's first-parent line after the commit that
//! last rolled out the good revision, up to the commit that asked for the failed one, that
//! changed the app's directory ([`super::revert::revert_app`]). A revert that conflicts with
//! newer commits is not pushed: the cluster stays rolled back, the Rollout records `Stalled`
//! with the conflicting paths (the app's health says so), and nothing is retried until a new
//! commit arrives.
//!
//! The failed revision is never deployed again because of the same change: the rollout stage
//! refuses it while Git asks for it, and after the revert Git asks for the good one.

use super::revert::{self, Range, Reverted, Undone, Writer};
use crate::k8s::crds::RecordStatus;
use crate::k8s::events::{Events, Severity, reference};
use crate::k8s::{API_VERSION, RECORD_FIELD_MANAGER, Rollout};
use crate::rollout::{RollbackEvent, RollbackHook, RollbackTarget};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use rollgit_source::write::WriteError;
use rollgit_source::{ObjectId, Trigger};
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Where and as whom one repository's rollbacks are written.
#[derive(Debug, Clone)]
pub struct RepoWriter {
    /// The repository, its mirror and the commits' identity.
    pub writer: Writer,
    /// Whether rollbacks are written to Git at all.
    pub revert_rollbacks: bool,
    /// Asks the repository's worker to fetch (so a pushed commit is applied at once).
    pub trigger: Trigger,
}

/// Writes rollbacks to Git ([`RollbackHook`]).
#[derive(Clone)]
pub struct GitRecorder {
    client: kube::Client,
    events: Events,
    repos: Arc<BTreeMap<String, RepoWriter>>,
    metrics: Option<Arc<crate::metrics::Metrics>>,
}

impl GitRecorder {
    /// A recorder for the repositories by name.
    pub fn new(client: kube::Client, repos: BTreeMap<String, RepoWriter>) -> Self {
        Self {
            events: Events::new(client.clone()),
            client,
            repos: Arc::new(repos),
            metrics: None,
        }
    }

    /// Counts rollouts, rollbacks and step durations in `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<crate::metrics::Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }
}

/// The `kind` label of a rollback's Rollout.
fn kind_label(target: &RollbackTarget) -> &'static str {
    match target {
        RollbackTarget::RollgitRollout => "batch",
        RollbackTarget::ArgoRollout => "argo",
        RollbackTarget::KruiseRollout(_) => "kruise",
    }
}

impl RollbackHook for GitRecorder {
    fn rolled_back(&self, event: RollbackEvent) {
        tracing::info!(namespace = %event.namespace, rollout = %event.rollout, app = %event.app, from = %event.from, to = %event.to, reason = %event.reason.trim(), "rolling back: writing the revert to Git");
        if let Some(m) = &self.metrics {
            m.rollback(kind_label(&event.target), &event.namespace, &event.rollout);
        }
        let me = self.clone();
        tokio::spawn(async move { me.record(event).await });
    }

    fn rollout_finished(&self, kind: &str, namespace: &str, rollout: &str, succeeded: bool) {
        if let Some(m) = &self.metrics {
            m.rollout_finished(kind, namespace, rollout, succeeded);
        }
    }

    fn step_done(&self, kind: &str, seconds: f64) {
        if let Some(m) = &self.metrics {
            m.step_done(kind, seconds);
        }
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
    /// The Rollout's `status.record` for this outcome of `e`.
    pub fn to_status(&self, e: &RollbackEvent) -> RecordStatus {
        let mut r = RecordStatus {
            from: e.from.clone(),
            to: e.to.clone(),
            spec_commit: e.spec_commit.clone(),
            ..RecordStatus::default()
        };
        match self {
            Recorded::Reverted { commit, reverts } => {
                r.state = "Reverted".into();
                r.commit = Some(commit.clone());
                r.reverts = reverts.clone();
                r.message = format!("rollback written to Git as {}", revert::short(commit));
            }
            Recorded::AlreadyReverted => {
                r.state = "Reverted".into();
                r.message = "Git already holds the last good content".into();
            }
            Recorded::Stalled { paths, message } => {
                r.state = "Stalled".into();
                r.paths = paths.clone();
                r.message = message.clone();
            }
            Recorded::NotRecorded { message } => {
                r.state = "NotRecorded".into();
                r.message = message.clone();
            }
        }
        r
    }
}

impl GitRecorder {
    async fn record(&self, e: RollbackEvent) {
        tracing::debug!(rollout = %e.rollout, from = %e.from, failed = ?e.failed_commit, good = ?e.good_commit, "writing a rollback to Git");
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
        let pp = PatchParams {
            field_manager: Some(RECORD_FIELD_MANAGER.into()),
            ..PatchParams::default()
        };
        let written = match &e.target {
            RollbackTarget::KruiseRollout(resource) => {
                let api: Api<DynamicObject> =
                    Api::namespaced_with(self.client.clone(), &e.namespace, resource);
                api.patch_status(
                    &e.rollout,
                    &pp,
                    &Patch::Merge(json!({"status": {"record": status}})),
                )
                .await
                .map(|_| ())
            }
            RollbackTarget::RollgitRollout => {
                let api: Api<Rollout> = Api::namespaced(self.client.clone(), &e.namespace);
                api.patch_status(
                    &e.rollout,
                    &pp,
                    &Patch::Merge(json!({"status": {"record": status}})),
                )
                .await
                .map(|_| ())
            }
            RollbackTarget::ArgoRollout => {
                // An annotation: Argo's own CRD schema would prune an unknown status field.
                let api: Api<DynamicObject> = Api::namespaced_with(
                    self.client.clone(),
                    &e.namespace,
                    &crate::rollout::argo::resource(),
                );
                let record = serde_json::to_string(&status).unwrap_or_default();
                api.patch(
                    &e.rollout,
                    &pp,
                    &Patch::Merge(json!({"metadata": {"annotations": {
                        crate::rollout::argo::RECORD_ANNOTATION: record
                    }}})),
                )
                .await
                .map(|_| ())
            }
        };
        if let Err(err) = written {
            tracing::warn!(rollout = %e.rollout, error = %crate::error_chain(&err), "recording the rollback in the Rollout failed");
        }
        let (reason, severity) = match &outcome {
            Recorded::Reverted { .. } | Recorded::AlreadyReverted => {
                ("RollbackRecorded", Severity::Normal)
            }
            Recorded::Stalled { .. } => ("RevertConflict", Severity::Warning),
            Recorded::NotRecorded { .. } => ("RollbackNotRecorded", Severity::Warning),
        };
        let api_version = match &e.target {
            RollbackTarget::RollgitRollout => API_VERSION,
            RollbackTarget::ArgoRollout => crate::rollout::argo::API_VERSION,
            RollbackTarget::KruiseRollout(resource) => resource.api_version.as_str(),
        };
        self.events
            .publish(
                &reference(api_version, "Rollout", Some(&e.namespace), &e.rollout),
                severity,
                reason,
                "Record",
                &status.message,
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
        let policy = backon::ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(500))
            .with_max_times(3);
        let attempt = || {
            let writer = repo.writer.clone();
            let event = e.clone();
            async move {
                tracing::debug!(rollout = %event.rollout, "reverting in Git");
                let r = tokio::task::spawn_blocking(move || {
                    revert_rollback(&writer, &event, failed, good)
                })
                .await;
                tracing::debug!(ok = matches!(r, Ok(Ok(_))), "revert attempt finished");
                match r {
                    Ok(r) => r.map_err(Failure::Write),
                    Err(join) => Err(Failure::Join(join.to_string())),
                }
            }
        };
        use backon::Retryable;
        let result = attempt
            .retry(policy)
            .when(|f| matches!(f, Failure::Write(w) if w.is_transient()))
            .notify(|err: &Failure, delay| {
                tracing::warn!(rollout = %e.rollout, error = %crate::error_chain(err), retry_in = ?delay, "writing the rollback to Git failed; retrying");
            })
            .await;
        match result {
            Ok(Reverted::Pushed { commit, undone }) => Recorded::Reverted {
                commit,
                reverts: undone.into_iter().map(|u| u.sha).collect(),
            },
            Ok(Reverted::NothingToDo | Reverted::DryRun { .. }) => Recorded::AlreadyReverted,
            Err(Failure::Write(WriteError::Conflict { paths, .. })) => Recorded::Stalled {
                message: format!(
                    "{}the revert of {} conflicts with newer commits in {}; the cluster stays on {}, fix Git by hand (a new commit ends the stall)",
                    crate::k8s::STALLED,
                    e.from,
                    paths
                        .iter()
                        .map(|p| rollgit_syntax::escape(p))
                        .collect::<Vec<_>>()
                        .join(", "),
                    e.to
                ),
                paths: paths
                    .iter()
                    .map(|p| rollgit_syntax::escape(p).into_owned())
                    .collect(),
            },
            Err(Failure::Write(err)) => Recorded::NotRecorded {
                message: format!(
                    "writing the rollback to Git failed: {}",
                    crate::error_chain(&err)
                ),
            },
            Err(Failure::Join(message)) => Recorded::NotRecorded {
                message: format!("writing the rollback to Git failed: {message}"),
            },
        }
    }
}

/// Why one attempt to write a rollback failed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error(transparent)]
    Write(WriteError),
    #[error("the write task ended: {0}")]
    Join(String),
}

fn parse_id(s: &str) -> Option<ObjectId> {
    ObjectId::from_hex(s.as_bytes()).ok()
}

/// The blocking part: revert what came after the good commit up to the failed one.
fn revert_rollback(
    writer: &Writer,
    e: &RollbackEvent,
    failed: ObjectId,
    good: Option<ObjectId>,
) -> Result<Reverted, WriteError> {
    // Another replica (a leader killed after its push, before it recorded the outcome) or
    // this one before a restart may have written this very rollback already: its commit is
    // the record, and nothing is pushed again.
    if let Some(done) = existing_revert(writer, e, failed)? {
        tracing::info!(rollout = %e.rollout, app = %e.app, commit = %done.commit, "the rollback is already in Git (written before a failover or restart); not reverting again");
        return Ok(Reverted::Pushed {
            commit: done.commit.to_string(),
            undone: done
                .reverts
                .iter()
                .map(|c| Undone {
                    sha: c.to_string(),
                    summary: String::new(),
                })
                .collect(),
        });
    }
    // The failed and the good commit were fetched by the daemon already: walk the mirror as
    // it is (the revert fetches the branch's newest head itself, into its own ref).
    let repo = rollgit_source::Repo::open(&writer.spec, &writer.cache)
        .map_err(|err| writer.fetch_error(err))?;
    let path = e.path.clone().unwrap_or_default();
    let range = Range {
        path: &path,
        after: good,
        upto: failed,
    };
    revert::revert_app(
        writer,
        &repo,
        range,
        &|undone| revert_message(e, undone),
        false,
    )
}

/// The revert of this rollback already on the remote branch: a commit newer than the failed
/// one whose trailers name the same Rollout (`Rollgit-Rollout:`), failed revision
/// (`Rollgit-Failed-Revision:`) and failed commit (`Reverts:`), as [`revert_message`] writes
/// them. Blocking: fetches the branch (into the write ref).
fn existing_revert(
    writer: &Writer,
    e: &RollbackEvent,
    failed: ObjectId,
) -> Result<Option<rollgit_source::write::LogEntry>, WriteError> {
    let log = rollgit_source::write::log(&writer.spec, &writer.cache, revert::MAX_WALK)
        .map_err(|err| writer.fetch_error(err))?;
    let rollout = format!("{}/{}", e.namespace, e.rollout);
    Ok(log
        .into_iter()
        .take_while(|c| c.commit != failed)
        .find(|c| is_revert_of(c, &rollout, &e.from, failed)))
}

/// Whether `c` is rollgit's revert of `failed` for Rollout `rollout` (`namespace/name`) whose
/// failed revision was `from`.
fn is_revert_of(
    c: &rollgit_source::write::LogEntry,
    rollout: &str,
    from: &str,
    failed: ObjectId,
) -> bool {
    let trailer = |token: &str| {
        c.trailers
            .iter()
            .find(|(t, _)| t.eq_ignore_ascii_case(token))
            .map(|(_, v)| v.trim())
    };
    c.reverts.contains(&failed)
        && c.rollout.as_deref().map(str::trim) == Some(rollout)
        && trailer("Rollgit-Failed-Revision") == Some(from)
}

/// The revert commit's message: what, why, and trailers linking back.
pub fn revert_message(e: &RollbackEvent, undone: &[Undone]) -> String {
    let (list, trailers) = revert::undone_text(undone);
    if matches!(e.target, RollbackTarget::ArgoRollout) {
        return format!(
            "Revert {app}: canary {from} aborted, back to {to}\n\n\
             rollgit aborted the Argo Rollouts canary {ns}/{rollout} of app {app}: traffic and replicas went back to {to}.\n\
             Why: {reason}\n\n\
             {list}\n{trailers}Rollgit-App: {app}\nRollgit-Rollout: {ns}/{rollout}\nRollgit-Failed-Revision: {from}\n",
            app = e.app,
            from = e.from,
            to = e.to,
            reason = e.reason,
            ns = e.namespace,
            rollout = e.rollout,
        );
    }
    format!(
        "Revert {app}: {from} failed, rolled back to {to}\n\n\
         rollgit rolled component {component} of app {app} back from {from} to {to} because the rollout failed:\n{reason}\n\n\
         {list}\n{trailers}Rollgit-App: {app}\nRollgit-Rollout: {ns}/{rollout}\nRollgit-Failed-Revision: {from}\n",
        app = e.app,
        from = e.from,
        to = e.to,
        component = e.component,
        reason = e.reason,
        ns = e.namespace,
        rollout = e.rollout,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event() -> RollbackEvent {
        RollbackEvent {
            namespace: "default".into(),
            rollout: "web".into(),
            app: "shop".into(),
            component: "web".into(),
            from: "web-v2".into(),
            to: "web-v1".into(),
            reason: "batch 1 of 2 (web-v2) was not ready within 3s".into(),
            repo: Some("platform".into()),
            path: Some("apps/shop".into()),
            spec_commit: Some("c".repeat(40)),
            failed_commit: Some("b".repeat(40)),
            good_commit: Some("a".repeat(40)),
            target: crate::rollout::RollbackTarget::RollgitRollout,
        }
    }

    #[test]
    fn the_revert_message_says_what_and_why_with_trailers() {
        let undone = [Undone {
            sha: "b".repeat(40),
            summary: "web 2".into(),
        }];
        let m = revert_message(&event(), &undone);
        assert!(
            m.starts_with("Revert shop: web-v2 failed, rolled back to web-v1\n\n"),
            "{m}"
        );
        assert!(
            m.contains(
                "because the rollout failed:\nbatch 1 of 2 (web-v2) was not ready within 3s\n"
            ),
            "{m}"
        );
        assert!(m.contains(&format!("  {} web 2\n", "b".repeat(12))), "{m}");
        assert!(
            m.ends_with(&format!(
                "Reverts: {}\nRollgit-App: shop\nRollgit-Rollout: default/web\nRollgit-Failed-Revision: web-v2\n",
                "b".repeat(40)
            )),
            "{m}"
        );
    }

    #[test]
    fn a_revert_already_in_git_is_found_by_its_trailers() {
        let failed = parse_id(&"b".repeat(40)).expect("an id");
        let other = parse_id(&"e".repeat(40)).expect("an id");
        let entry = |rollout: &str, from: &str, reverts: ObjectId| rollgit_source::LogEntry {
            commit: parse_id(&"d".repeat(40)).expect("an id"),
            summary: "Revert shop: web-v2 failed, rolled back to web-v1".into(),
            message: String::new(),
            author: "rollgit <rollgit@localhost>".into(),
            time: 0,
            trailers: vec![
                ("Reverts".into(), reverts.to_string()),
                ("Rollgit-App".into(), "shop".into()),
                ("Rollgit-Rollout".into(), rollout.into()),
                ("Rollgit-Failed-Revision".into(), from.into()),
            ],
            reverts: vec![reverts],
            rollout: Some(rollout.into()),
        };
        let cases = [
            (
                "the same rollback",
                entry("default/web", "web-v2", failed),
                true,
            ),
            (
                "another Rollout",
                entry("default/api", "web-v2", failed),
                false,
            ),
            (
                "another failed revision",
                entry("default/web", "web-v3", failed),
                false,
            ),
            (
                "another commit reverted",
                entry("default/web", "web-v2", other),
                false,
            ),
        ];
        for (name, c, want) in cases {
            assert_eq!(
                is_revert_of(&c, "default/web", "web-v2", failed),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn outcomes_become_the_record_status() {
        let e = event();
        let cases = [
            (
                Recorded::Reverted {
                    commit: "d".repeat(40),
                    reverts: vec!["b".repeat(40)],
                },
                "Reverted",
                format!("rollback written to Git as {}", "d".repeat(12)),
            ),
            (
                Recorded::AlreadyReverted,
                "Reverted",
                "Git already holds the last good content".to_string(),
            ),
            (
                Recorded::Stalled {
                    paths: vec!["apps/shop/app.yaml".into()],
                    message: "Stalled: x".into(),
                },
                "Stalled",
                "Stalled: x".to_string(),
            ),
        ];
        for (outcome, state, message) in cases {
            let r = outcome.to_status(&e);
            assert_eq!(r.state, state);
            assert_eq!(r.message, message);
            assert_eq!(r.from, "web-v2");
            assert_eq!(r.spec_commit, e.spec_commit);
        }
    }
}
