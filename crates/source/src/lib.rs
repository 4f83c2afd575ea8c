//! rollgit's source stage: follow Git repositories and tell the rest of the pipeline what changed.
//!
//! * [`fetch`] keeps a bare mirror of a remote (`https://`, `ssh://`/scp-like, `git://`, `file://`)
//!   under a cache directory, or reads a **local repository path** in place, and resolves
//!   `refs/heads/<branch>` to a commit ([`FetchResult`]).
//! * [`Repo`] reads a commit: [`Repo::list_files`], [`Repo::read_files`], [`Repo::read_file`],
//!   [`Repo::changed_paths`] (tree diff) and [`Repo::commit_info`].
//! * [`Trigger`] coalesces fetch requests (poll, webhook, file-system watch) so that any number of
//!   requests while a fetch is pending or running produce exactly one more fetch; [`PollSchedule`]
//!   and [`poll`] drive it on an interval with deterministic jitter; [`watch_local_repo`] drives it
//!   from the refs of a local repository.
//! * [`write`](mod@write) records rollbacks and revision bumps on the tracked branch: [`write::revert`]
//!   (a three-way tree merge with gix), [`write::commit_files`], pushed with the `git` command
//!   as fast-forwards only, redone on the new head when the remote moved.
//! * [`log()`] and [`Repo::log`] read the branch's history back, each commit with its
//!   `Reverts:`/`Rollgit-Rollout:` trailers ([`LogEntry`]).
//! * [`webhook`] verifies GitHub, Gitea, GitLab and generic HMAC webhooks in constant time.
//!   Webhooks are hints only: the daemon always fetches from the remote and never trusts a payload.
//!
//! All git operations are blocking (gix); the daemon runs them in `tokio::task::spawn_blocking`.
//! Credentials are never logged and never appear in errors: every message is scrubbed of the
//! credential values and the URL's user-info (see [`redact_url`]).

mod error;
mod git;
mod log;
mod trigger;
mod watch;
pub mod webhook;
pub mod write;

pub use error::{RedactedError, SourceError};
pub use git::{
    CommitInfo, Credentials, FetchResult, ObjectId, Repo, RepoSpec, fetch, fetch_for_write,
    mirror_path, redact_url,
};
pub use log::{LogEntry, log};
pub use trigger::{PollSchedule, Trigger, poll};
pub use watch::{RepoWatcher, watch_local_repo};
