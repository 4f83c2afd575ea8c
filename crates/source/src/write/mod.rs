//! Writing to the tracked branch: revert commits ([`revert()`]) and commit files
//! ([`commit_files`]). The branch's history is read back with [`log`] (re-exported here; it is
//! defined with the other reading functions).
//!
//! rollgit records every rollback as a revert commit on the tracked branch so that Git and the
//! cluster agree. A write never loses a commit and never force-pushes:
//!
//! 1. The branch is fetched into the mirror [`crate::fetch`] keeps under the cache directory, but
//!    into its own ref (`refs/rollgit/write/<branch>`), so the daemon's next [`crate::fetch`]
//!    still reports every new remote commit as changed. A local repository path is read and
//!    written in place.
//! 2. The new tree is computed with gix on top of the fetched head: a three-way tree merge per
//!    reverted commit ([`revert()`]), or tree edits ([`commit_files`]). When the head already has
//!    that tree the outcome is [`WriteOutcome::NothingToDo`]: no empty commits.
//! 3. The commit object is written with gix, parent = the fetched head (or with
//!    `git commit-tree -S<key>` when the identity has a signing key: gix cannot sign).
//! 4. The commit is pushed with the `git` command: `git push --porcelain -- <url>
//!    <commit>:refs/heads/<branch>`, never `--force`, never a `+` refspec, so the remote only
//!    accepts a fast-forward. If the remote moved in between (`[rejected] (fetch first)`,
//!    `(non-fast-forward)`, or a server-side ref-lock race), the whole write is redone on the new
//!    head, up to `max_attempts` times, then [`WriteError::RemoteKeptMoving`].
//!
//! # Why the `git` command for the push
//!
//! gix cannot push. The `git` command supports every transport (https, ssh, git, file) and the
//! credential helpers and ssh configuration users already have, without a C dependency
//! (libgit2, openssl). It runs with its arguments as a list (no shell), `GIT_TERMINAL_PROMPT=0`
//! (never waits for a password on a terminal), `LC_ALL=C` (English messages to classify),
//! stdin closed, `protocol.ext.allow=never`, the caller's `GIT_DIR`-style variables removed, and
//! a time limit ([`PUSH_TIMEOUT`], [`COMMIT_TIMEOUT`]). For ssh URLs, `GIT_SSH_COMMAND` is set to
//! `ssh -o BatchMode=yes` (no password or host-key prompt) unless the user set `GIT_SSH_COMMAND`,
//! `GIT_SSH` or `core.sshCommand`.
//!
//! # Credentials
//!
//! [`RepoSpec::credentials`] (or the user-info of an `https://user:password@…` URL, as for
//! fetch) reach git through a **credential helper that reads environment variables**:
//! `-c credential.helper= -c credential.helper=!f() { … printf 'username=%s\npassword=%s\n'
//! "$ROLLGIT_GIT_USERNAME" "$ROLLGIT_GIT_PASSWORD"; }; f`. The first, empty `credential.helper`
//! clears the helpers from the user's configuration, so only these credentials are offered. The
//! values are in the environment of the git process only (readable by the same user, unlike the
//! command line), the URL handed to git has no user-info, and no temporary file is written.
//! Without configured credentials git uses the user's own credential helpers and ssh agent.
//! Every message taken from git's output is scrubbed of the credential values and the raw URL
//! (see [`crate::redact_url`]).
//!
//! Passwords in other URLs (`ssh://user:password@…`) are dropped from the URL handed to git.
//!
//! # Limits
//!
//! * A local repository path is written in place and pushed to with `git push <path>`; a
//!   worktree whose checked-out branch is the target refuses the update
//!   ([`WriteError::PushRejected`]); use a bare repository or a URL.
//! * A merge commit is reverted against its first parent; reverted commits are not checked to
//!   be ancestors of the head (the caller names commits of the branch's history).
//! * A push that times out kills `git` but not a helper it started (ssh, `git-remote-https`),
//!   which ends when its connection does.
//!
//! All functions here are blocking; call them from `spawn_blocking`, serialised per repository
//! like [`crate::fetch`].

mod branch;
mod commit;
mod diff;
mod process;
mod push;
mod revert;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rollgit_syntax::escape;

use crate::error::{RedactedError, SourceError};
use crate::git::{Location, OBJECT_CACHE_BYTES, ObjectId, RepoSpec, Secrets, fetch_for_write};

use push::{PushStatus, PushTarget};

/// The branch's history, read back; defined with the other reading functions.
pub use crate::log::{LogEntry, log};
pub use branch::{BranchOutcome, BranchRequest, commit_to_branch};
pub use commit::{commit_files, commit_files_with_hook};
pub use revert::{revert, revert_dry_run, revert_with_hook};

/// How long a `git push` may take before it is killed ([`WriteError::Timeout`], transient).
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `git commit-tree -S` (signing, possibly through an agent) may take.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(120);

/// Who makes the commit (author and committer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub name: String,
    pub email: String,
    /// When set, the commit is signed by `git commit-tree -S<key>`. An ssh key (`key::ssh-…`, a
    /// literal `ssh-…` public key, or the path of an existing key file) is used with
    /// `gpg.format=ssh`; anything else is a key id for the format the user's git configuration
    /// selects (OpenPGP by default).
    pub signing_key: Option<String>,
}

/// What [`revert()`] and [`revert_dry_run`] do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevertRequest {
    /// The commits to revert, newest first; each is reverted in turn and the result is ONE
    /// commit. A merge commit is reverted against its first parent (`git revert -m 1`).
    pub commits: Vec<ObjectId>,
    /// The full commit message (summary, body, trailers), as built by the caller.
    pub message: String,
    pub identity: Identity,
    /// Only revert the changes under these path prefixes (`apps/web` means that directory or
    /// that file); other paths keep the head's content. `None` reverts everything.
    pub paths: Option<Vec<String>>,
    /// How many times to fetch, redo the revert and push when the remote moved (at least 1).
    pub max_attempts: u32,
}

/// What [`commit_files`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitRequest {
    /// `/`-separated repository path → the file's new content. New files are regular files;
    /// an existing executable file stays executable.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The full commit message.
    pub message: String,
    pub identity: Identity,
    /// How many times to fetch, re-apply and push when the remote moved (at least 1).
    pub max_attempts: u32,
}

/// The result of a write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// `commit` is on the remote branch; `attempts` pushes were needed (1 when the remote did
    /// not move).
    Pushed { commit: ObjectId, attempts: u32 },
    /// The head already has the content the write would produce; nothing was committed.
    NothingToDo,
    /// [`revert_dry_run`]: the unified diff from the head to the reverted tree, and that tree
    /// (written to the object database, committed nowhere).
    DryRun { diff: String, commit_tree: ObjectId },
}

/// Errors of [`revert()`], [`revert_dry_run`] and [`commit_files`].
///
/// `repo` is the repository URL without user-info; no message contains a credential.
/// [`WriteError::is_transient`] tells whether the same write may succeed later unchanged.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The request cannot be carried out as given (no commits, a bad path, zero attempts, an
    /// identity git cannot record). Not transient.
    #[error("{repo}: invalid write request: {}", escape(reason))]
    InvalidRequest { repo: String, reason: String },
    /// Fetching the branch before writing failed; transient as the fetch error says.
    #[error("{repo}: cannot fetch branch {branch:?} before writing")]
    Fetch {
        repo: String,
        branch: String,
        #[source]
        source: Box<SourceError>,
    },
    /// A commit to revert is not in the repository. Not transient.
    #[error("{repo}: commit {commit} to revert not found")]
    CommitNotFound {
        repo: String,
        commit: ObjectId,
        #[source]
        source: RedactedError,
    },
    /// Reading a commit or tree failed. Not transient.
    #[error("{repo}: cannot read {}", escape(what))]
    Read {
        repo: String,
        what: String,
        #[source]
        source: RedactedError,
    },
    /// The three-way merge that reverts `commit` failed to run (not a conflict). Not transient.
    #[error("{repo}: cannot merge the revert of {commit}")]
    Merge {
        repo: String,
        commit: ObjectId,
        #[source]
        source: RedactedError,
    },
    /// The write conflicts with the head: a later commit changed the same lines, or (for
    /// [`commit_files`] after the remote moved) the same files. Nothing was pushed. Not
    /// transient: a person has to resolve it.
    #[error("{repo}: conflict on {head} in {}", escape(&paths.join(", ")))]
    Conflict {
        repo: String,
        /// The head the write was attempted on.
        head: ObjectId,
        /// The conflicting paths, sorted.
        paths: Vec<String>,
    },
    /// Writing a blob, tree or commit object failed (disk full, permissions). Transient.
    #[error("{repo}: cannot write {}", escape(what))]
    WriteObject {
        repo: String,
        what: String,
        #[source]
        source: RedactedError,
    },
    /// The `git` command could not be started (not installed?). Not transient.
    #[error("{repo}: cannot run `git {operation}`")]
    SpawnGit {
        repo: String,
        operation: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// `git <operation>` did not finish in time and was killed. Transient.
    #[error("{repo}: `git {operation}` timed out after {timeout:?}")]
    Timeout {
        repo: String,
        operation: &'static str,
        timeout: Duration,
    },
    /// `git commit-tree -S` (signing) failed. Not transient: check the key and git's signing
    /// configuration.
    #[error("{repo}: cannot create the signed commit")]
    Sign {
        repo: String,
        #[source]
        source: RedactedError,
    },
    /// `git push` failed before the remote decided (network, authentication, missing
    /// repository); `transient` says whether retrying later may help.
    #[error("{repo}: push to branch {branch:?} failed ({})", if *transient { "transient" } else { "not transient" })]
    Push {
        repo: String,
        branch: String,
        transient: bool,
        #[source]
        source: RedactedError,
    },
    /// The remote refused the update for another reason than having moved (a protected branch,
    /// a hook). Not transient.
    #[error(
        "{repo}: the remote refused the push to branch {branch:?}: {}",
        escape(reason)
    )]
    PushRejected {
        repo: String,
        branch: String,
        reason: String,
    },
    /// The remote branch moved on every one of `attempts` attempts. Transient.
    #[error("{repo}: branch {branch:?} kept moving; gave up after {attempts} attempts")]
    RemoteKeptMoving {
        repo: String,
        branch: String,
        attempts: u32,
    },
}

impl WriteError {
    /// `true` when the same write may succeed later without anyone changing the configuration
    /// or the repository.
    pub fn is_transient(&self) -> bool {
        match self {
            WriteError::Fetch { source, .. } => source.is_transient(),
            WriteError::Push { transient, .. } => *transient,
            WriteError::WriteObject { .. }
            | WriteError::Timeout { .. }
            | WriteError::RemoteKeptMoving { .. } => true,
            WriteError::InvalidRequest { .. }
            | WriteError::CommitNotFound { .. }
            | WriteError::Read { .. }
            | WriteError::Merge { .. }
            | WriteError::Conflict { .. }
            | WriteError::SpawnGit { .. }
            | WriteError::Sign { .. }
            | WriteError::PushRejected { .. } => false,
        }
    }
}

/// A write in progress: the spec, where to push, and how to redact.
struct Writer<'a> {
    spec: &'a RepoSpec,
    cache: &'a Path,
    display: String,
    secrets: Secrets,
    target: PushTarget,
}

/// The repository a write works in, after a fetch.
struct Ctx {
    repo: gix::Repository,
    git_dir: PathBuf,
    display: String,
}

type MakeTree<'f> = dyn FnMut(&Ctx, ObjectId) -> Result<Option<ObjectId>, WriteError> + 'f;

impl<'a> Writer<'a> {
    fn new(spec: &'a RepoSpec, cache: &'a Path) -> Result<Self, WriteError> {
        let display = spec.display_url();
        let fetch_error = |source| WriteError::Fetch {
            repo: display.clone(),
            branch: spec.branch.clone(),
            source: Box::new(source),
        };
        let target = PushTarget::new(spec, Location::parse(spec).map_err(fetch_error)?);
        if let Some(reason) = target.unusable_credentials() {
            return Err(WriteError::InvalidRequest {
                repo: display,
                reason: reason.into(),
            });
        }
        Ok(Writer {
            spec,
            cache,
            secrets: Secrets::of(spec),
            display,
            target,
        })
    }

    fn invalid(&self, reason: impl Into<String>) -> WriteError {
        WriteError::InvalidRequest {
            repo: self.display.clone(),
            reason: reason.into(),
        }
    }

    /// A `/`-separated relative path without empty, `.` or `..` components.
    fn check_path(&self, path: &str) -> Result<(), WriteError> {
        if path.is_empty()
            || path
                .split('/')
                .any(|c| c.is_empty() || c == "." || c == "..")
        {
            return Err(self.invalid(format!(
                "path {path:?} is not a relative path like \"apps/web/deploy.yaml\""
            )));
        }
        Ok(())
    }

    fn check_identity(&self, identity: &Identity, message: &str) -> Result<(), WriteError> {
        let bad = |s: &str| s.trim().is_empty() || s.contains(['<', '>', '\n', '\0']);
        if bad(&identity.name) || bad(&identity.email) {
            return Err(
                self.invalid("the identity needs a name and an email without '<', '>' or newlines")
            );
        }
        if message.trim().is_empty() {
            return Err(self.invalid("the commit message is empty"));
        }
        Ok(())
    }

    /// Fetch the branch (into the write ref) and open the repository.
    fn fetch(&self) -> Result<(Ctx, ObjectId), WriteError> {
        let fetched =
            fetch_for_write(self.spec, self.cache).map_err(|source| WriteError::Fetch {
                repo: self.display.clone(),
                branch: self.spec.branch.clone(),
                source: Box::new(source),
            })?;
        let mut repo = gix::open(&fetched.git_dir).map_err(|e| WriteError::Read {
            repo: self.display.clone(),
            what: format!("the repository at {}", fetched.git_dir.display()),
            source: RedactedError::new(&e, &self.secrets.pairs()),
        })?;
        repo.object_cache_size_if_unset(OBJECT_CACHE_BYTES);
        Ok((
            Ctx {
                repo,
                git_dir: fetched.git_dir,
                display: self.display.clone(),
            },
            fetched.head,
        ))
    }

    /// Fetch, make the tree, commit and push; redo all of it when the remote moved.
    fn push_loop(
        &self,
        message: &str,
        identity: &Identity,
        max_attempts: u32,
        make_tree: &mut MakeTree<'_>,
        before_push: &mut dyn FnMut(u32),
    ) -> Result<WriteOutcome, WriteError> {
        if max_attempts == 0 {
            return Err(self.invalid("max_attempts must be at least 1"));
        }
        self.check_identity(identity, message)?;
        let mut message = message.to_owned();
        if !message.ends_with('\n') {
            message.push('\n');
        }
        for attempt in 1..=max_attempts {
            let (ctx, head) = self.fetch()?;
            let Some(tree) = make_tree(&ctx, head)? else {
                tracing::info!(
                    repo = self.display.as_str(),
                    branch = self.spec.branch.as_str(),
                    %head,
                    "nothing to write: the head already has the content"
                );
                return Ok(WriteOutcome::NothingToDo);
            };
            let commit = self.create_commit(&ctx, tree, head, &message, identity)?;
            before_push(attempt);
            match self.push(&ctx, commit)? {
                PushStatus::Pushed => {
                    tracing::info!(
                        repo = self.display.as_str(),
                        branch = self.spec.branch.as_str(),
                        %commit,
                        parent = %head,
                        attempt,
                        "pushed"
                    );
                    return Ok(WriteOutcome::Pushed {
                        commit,
                        attempts: attempt,
                    });
                }
                PushStatus::RemoteMoved { reason } => {
                    tracing::info!(
                        repo = self.display.as_str(),
                        branch = self.spec.branch.as_str(),
                        attempt,
                        max_attempts,
                        reason = reason.as_str(),
                        "the remote branch moved; redoing the write on the new head"
                    );
                }
            }
        }
        Err(WriteError::RemoteKeptMoving {
            repo: self.display.clone(),
            branch: self.spec.branch.clone(),
            attempts: max_attempts,
        })
    }
}

impl Ctx {
    fn read_error(
        &self,
        what: impl Into<String>,
        e: &(dyn std::error::Error + 'static),
    ) -> WriteError {
        WriteError::Read {
            repo: self.display.clone(),
            what: what.into(),
            source: RedactedError::new(e, &[]),
        }
    }

    fn write_error(&self, what: &str, e: &(dyn std::error::Error + 'static)) -> WriteError {
        WriteError::WriteObject {
            repo: self.display.clone(),
            what: what.to_owned(),
            source: RedactedError::new(e, &[]),
        }
    }

    fn commit_tree(&self, commit: ObjectId) -> Result<ObjectId, WriteError> {
        self.repo
            .find_commit(commit)
            .and_then(|c| c.tree_id())
            .map(|id| id.detach())
            .map_err(|e| self.read_error(format!("the tree of commit {commit}"), &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::Credentials;

    #[test]
    fn credentials_with_line_breaks_are_refused() {
        let spec = RepoSpec {
            url: "https://example.com/a.git".into(),
            branch: "main".into(),
            credentials: Some(Credentials::Token("tok\nurl=https://evil.example".into())),
        };
        let err = Writer::new(&spec, Path::new("/nonexistent")).err();
        assert!(
            matches!(err, Some(WriteError::InvalidRequest { .. })),
            "{err:?}"
        );
        let text = format!("{err:?}");
        assert!(!text.contains("evil"), "{text}");
    }
}

#[cfg(test)]
mod error_display_tests {
    use super::*;

    /// Conflicting paths and what the remote refused with are shown escaped.
    #[test]
    fn write_errors_show_user_controlled_text_escaped() {
        let head = ObjectId::null(gix::hash::Kind::Sha1);
        let rows: Vec<(&str, WriteError, String)> = vec![
            (
                "conflicting path with a newline and an ANSI escape",
                WriteError::Conflict {
                    repo: "r".into(),
                    head,
                    paths: vec!["apps/a\nb.yaml".into(), "apps/\x1b[2Jc.yaml".into()],
                },
                format!("r: conflict on {head} in apps/a\\nb.yaml, apps/\\u{{1b}}[2Jc.yaml"),
            ),
            (
                "push rejected by a hook that prints escapes",
                WriteError::PushRejected {
                    repo: "r".into(),
                    branch: "main".into(),
                    reason: "pre-receive hook declined\n\x1b[32mremote: ok".into(),
                },
                "r: the remote refused the push to branch \"main\": pre-receive hook declined\\n\\u{1b}[32mremote: ok".into(),
            ),
            (
                "invalid request naming a path",
                WriteError::InvalidRequest {
                    repo: "r".into(),
                    reason: "apps/\u{202e}lmay.yaml: not a directory".into(),
                },
                "r: invalid write request: apps/\\u{202e}lmay.yaml: not a directory".into(),
            ),
        ];
        for (case, e, want) in rows {
            assert_eq!(e.to_string(), want, "{case}");
        }
    }
}
