//! Bump write-back: the revisions and publishVersion rollgit decided for an app, committed to
//! `<app>/.rollgit-revisions` (opt-in, `writeBack.bumps`), one commit per change, so
//! `git log -p` on that file is the app's revision history. The file is not a manifest, so
//! rendering the commit again decides nothing new: no commit loop.

use super::revert::{MAX_PUSH_ATTEMPTS, short};
use super::rollback::RepoWriter;
use crate::k8s::events::{Events, Severity, reference};
use crate::k8s::{API_VERSION, Application};
use crate::plan::bumps::bump_path;
use kube::Resource;
use rollgit_source::write::{self, WriteOutcome};
use std::collections::BTreeMap;

/// One bump file to commit.
#[derive(Debug, Clone)]
pub struct Bump {
    /// The app.
    pub app: String,
    /// Its namespace (the status object's, for the Event).
    pub namespace: String,
    /// Its directory.
    pub dir: String,
    /// The commit whose render decided the revisions.
    pub commit: String,
    /// The file's content ([`crate::plan::bumps::bump_file`]).
    pub content: String,
}

/// Commits the bump file (in the background): one commit when the decisions changed, none
/// when Git already has them. A `Normal` Event `RevisionsWrittenBack` on the app's status
/// object names the commit.
pub fn write_bumps(events: Events, writer: RepoWriter, bump: Bump) {
    tokio::spawn(async move {
        let path = bump_path(&bump.dir);
        let app = bump.app.clone();
        let at = short(&bump.commit).to_string();
        let summary = bump
            .content
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::trim)
            .collect::<Vec<_>>()
            .join(", ");
        let req = write::CommitRequest {
            files: BTreeMap::from([(path.clone(), bump.content.into_bytes())]),
            message: format!(
                "rollgit: {app} revisions for {at}\n\n{summary}\n\nRollgit-App: {app}\nRollgit-Bump: {at}\n"
            ),
            identity: writer.writer.identity.clone(),
            max_attempts: MAX_PUSH_ATTEMPTS,
        };
        let spec = writer.writer.spec.clone();
        let cache = writer.writer.cache.clone();
        match tokio::task::spawn_blocking(move || write::commit_files(&spec, &cache, &req)).await {
            Ok(Ok(WriteOutcome::Pushed { commit, .. })) => {
                tracing::info!(app, file = %path, commit = %commit, "revisions written to Git");
                events
                    .publish(
                        &reference(
                            API_VERSION,
                            &Application::kind(&()),
                            Some(&bump.namespace),
                            &app,
                        ),
                        Severity::Normal,
                        "RevisionsWrittenBack",
                        "Record",
                        &format!("{path} committed to Git as {commit}"),
                    )
                    .await;
                writer.trigger.notify();
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::warn!(app, file = %path, error = %crate::error_chain(&e), "writing revisions to Git failed")
            }
            Err(e) => {
                tracing::warn!(app, error = %crate::error_chain(&e), "writing revisions to Git failed")
            }
        }
    });
}
