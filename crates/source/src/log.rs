//! Reading a branch's history: each commit with its message, author, time and trailers
//! (`Reverts:`, `Rollgit-Rollout:`), newest first.
//!
//! This is the read side of [`crate::write`]: rollbacks are recorded as commits with trailers,
//! and the daemon and the command-line tools read them back from here.

use std::path::Path;

use crate::error::SourceError;
use crate::git::{ObjectId, Repo, RepoSpec, fetch_for_write};

/// One commit of [`log`] or [`Repo::log`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub commit: ObjectId,
    /// The first line of the message.
    pub summary: String,
    /// The whole message.
    pub message: String,
    /// `Name <email>`.
    pub author: String,
    /// Author time, seconds since the Unix epoch.
    pub time: i64,
    /// Every `Token: value` trailer of the message's last paragraph, in order.
    pub trailers: Vec<(String, String)>,
    /// The values of the `Reverts:` trailers that are commit ids.
    pub reverts: Vec<ObjectId>,
    /// The value of the `Rollgit-Rollout:` trailer.
    pub rollout: Option<String>,
}

/// The `max` most recent commits of the remote branch (fetched first, like
/// [`fetch_for_write`], so the daemon's next [`crate::fetch`] still reports them as changed),
/// newest first by commit time, following all parents like `git log`, with their trailers
/// parsed.
pub fn log(spec: &RepoSpec, cache: &Path, max: usize) -> Result<Vec<LogEntry>, SourceError> {
    let fetched = fetch_for_write(spec, cache)?;
    Repo::open_path(spec.display_url(), &fetched.git_dir)?.log(fetched.head, max)
}

impl Repo {
    /// The `max` most recent commits reachable from `head`, newest first by commit time,
    /// following all parents like `git log`, with their trailers parsed.
    pub fn log(&self, head: ObjectId, max: usize) -> Result<Vec<LogEntry>, SourceError> {
        let repo = self.local();
        let walk_error =
            |e: &(dyn std::error::Error + 'static)| self.read_error(head, "the history", e);
        let walk = repo
            .rev_walk([head])
            .sorting(gix::revision::walk::Sorting::ByCommitTime(
                gix::traverse::commit::simple::CommitTimeOrder::NewestFirst,
            ))
            .all()
            .map_err(|e| walk_error(&e))?;
        let mut entries = Vec::new();
        for info in walk.take(max) {
            let info = info.map_err(|e| walk_error(&e))?;
            entries.push(self.log_entry(info.id)?);
        }
        Ok(entries)
    }

    /// `commit` with its whole message and trailers (`Reverts:`, `Rollgit-Rollout:`, ...), as
    /// [`log`] reports each commit.
    pub fn log_entry(&self, commit: ObjectId) -> Result<LogEntry, SourceError> {
        let repo = self.local();
        let c = self.commit(&repo, commit)?;
        log_entry_of(commit, &c).map_err(|e| self.read_error(commit, "the commit", &e))
    }
}

/// The [`LogEntry`] of a commit: summary, message, author, time and trailers.
fn log_entry_of(id: ObjectId, commit: &gix::Commit<'_>) -> gix::Result<LogEntry> {
    let message = commit.message()?;
    let summary = message.summary().to_string();
    let trailers: Vec<(String, String)> = message
        .body()
        .map(|body| {
            body.trailers()
                .map(|t| (t.token.to_string(), t.value.to_string()))
                .collect()
        })
        .unwrap_or_default();
    let reverts = trailers
        .iter()
        .filter(|(token, _)| token.eq_ignore_ascii_case("Reverts"))
        .filter_map(|(_, value)| ObjectId::from_hex(value.trim().as_bytes()).ok())
        .collect();
    let rollout = trailers
        .iter()
        .find(|(token, _)| token.eq_ignore_ascii_case("Rollgit-Rollout"))
        .map(|(_, value)| value.clone());
    let author = commit.author()?;
    let author_text = format!("{} <{}>", author.name, author.email);
    let time = commit.time()?.seconds;
    let full = commit.message_raw()?.to_string();
    Ok(LogEntry {
        commit: id,
        summary,
        message: full,
        author: author_text,
        time,
        trailers,
        reverts,
        rollout,
    })
}
