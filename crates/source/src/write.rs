//! Writing to the tracked branch: revert commits ([`revert`]) and commit files
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
//!    reverted commit ([`revert`]), or tree edits ([`commit_files`]). When the head already has
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

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use gix::bstr::{BStr, ByteSlice};
use gix::objs::tree::EntryKind;

use crate::error::{RedactedError, SourceError};
use crate::git::{
    Credentials, Location, ObjectId, RepoSpec, Secrets, fetch_for_write, is_file, redact_url,
};

pub use crate::log::{LogEntry, log};

/// How long a `git push` may take before it is killed ([`WriteError::Timeout`], transient).
pub const PUSH_TIMEOUT: Duration = Duration::from_secs(300);
/// How long `git commit-tree -S` (signing, possibly through an agent) may take.
pub const COMMIT_TIMEOUT: Duration = Duration::from_secs(120);

/// The environment variables the credential helper reads.
const USERNAME_VAR: &str = "ROLLGIT_GIT_USERNAME";
const PASSWORD_VAR: &str = "ROLLGIT_GIT_PASSWORD";
/// A git credential helper (run by git through the shell) answering `get` from the environment.
const CREDENTIAL_HELPER: &str = "credential.helper=!f() { test \"$1\" = get || exit 0; printf 'username=%s\\npassword=%s\\n' \"$ROLLGIT_GIT_USERNAME\" \"$ROLLGIT_GIT_PASSWORD\"; }; f";
/// Environment variables of the caller that would redirect git away from the mirror.
const GIT_LOCATION_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_QUARANTINE_PATH",
    "GIT_COMMON_DIR",
];

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

/// What [`revert`] and [`revert_dry_run`] do.
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

/// Errors of [`revert`], [`revert_dry_run`] and [`commit_files`].
///
/// `repo` is the repository URL without user-info; no message contains a credential.
/// [`WriteError::is_transient`] tells whether the same write may succeed later unchanged.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The request cannot be carried out as given (no commits, a bad path, zero attempts, an
    /// identity git cannot record). Not transient.
    #[error("{repo}: invalid write request: {reason}")]
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
    #[error("{repo}: cannot read {what}")]
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
    #[error("{repo}: conflict on {head} in {}", paths.join(", "))]
    Conflict {
        repo: String,
        /// The head the write was attempted on.
        head: ObjectId,
        /// The conflicting paths, sorted.
        paths: Vec<String>,
    },
    /// Writing a blob, tree or commit object failed (disk full, permissions). Transient.
    #[error("{repo}: cannot write {what}")]
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
    #[error("{repo}: the remote refused the push to branch {branch:?}: {reason}")]
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

/// Revert `req.commits` on top of the remote branch's head as one commit and push it.
///
/// Each commit `C` is reverted by a three-way tree merge with gix: base = `C`'s tree, ours = the
/// head's tree (or the result of reverting the previous commit), theirs = the tree of `C`'s
/// first parent (restricted to `req.paths`). Unresolved conflicts are
/// [`WriteError::Conflict`] and nothing is pushed. A head that already has the reverted content
/// gives [`WriteOutcome::NothingToDo`]. When the remote moved before the push, the revert is
/// redone on the new head (see the [module documentation](self)).
pub fn revert(
    spec: &RepoSpec,
    cache: &Path,
    req: &RevertRequest,
) -> Result<WriteOutcome, WriteError> {
    revert_with_hook(spec, cache, req, &mut |_| {})
}

/// [`revert`], calling `before_push(attempt)` right before each push. For tests that make the
/// remote move between the fetch and the push.
#[doc(hidden)]
pub fn revert_with_hook(
    spec: &RepoSpec,
    cache: &Path,
    req: &RevertRequest,
    before_push: &mut dyn FnMut(u32),
) -> Result<WriteOutcome, WriteError> {
    let w = Writer::new(spec, cache)?;
    let paths = w.check_revert(req)?;
    w.push_loop(
        &req.message,
        &req.identity,
        req.max_attempts,
        &mut |ctx, head| {
            let head_tree = ctx.commit_tree(head)?;
            let tree = ctx.revert_tree(head, head_tree, &req.commits, paths.as_deref())?;
            Ok((tree != head_tree).then_some(tree))
        },
        before_push,
    )
}

/// What [`revert`] would do, without committing or pushing: the unified diff (`diff --git`
/// style, 3 lines of context) from the remote head's tree to the reverted tree, or
/// [`WriteOutcome::NothingToDo`]. Conflicts are [`WriteError::Conflict`] as for [`revert`].
pub fn revert_dry_run(
    spec: &RepoSpec,
    cache: &Path,
    req: &RevertRequest,
) -> Result<WriteOutcome, WriteError> {
    let w = Writer::new(spec, cache)?;
    let paths = w.check_revert(req)?;
    let (ctx, head) = w.fetch()?;
    let head_tree = ctx.commit_tree(head)?;
    let tree = ctx.revert_tree(head, head_tree, &req.commits, paths.as_deref())?;
    if tree == head_tree {
        return Ok(WriteOutcome::NothingToDo);
    }
    Ok(WriteOutcome::DryRun {
        diff: ctx.unified_diff(head_tree, tree)?,
        commit_tree: tree,
    })
}

/// Write `req.files` on top of the remote branch's head as one commit and push it; used to
/// write revision bumps back to Git.
///
/// Files that already have that content on the head give [`WriteOutcome::NothingToDo`]. When
/// the remote moved before the push, the same contents are applied to the new head, unless a
/// commit in between changed one of those files ([`WriteError::Conflict`] naming them).
pub fn commit_files(
    spec: &RepoSpec,
    cache: &Path,
    req: &CommitRequest,
) -> Result<WriteOutcome, WriteError> {
    commit_files_with_hook(spec, cache, req, &mut |_| {})
}

/// [`commit_files`], calling `before_push(attempt)` right before each push.
#[doc(hidden)]
pub fn commit_files_with_hook(
    spec: &RepoSpec,
    cache: &Path,
    req: &CommitRequest,
    before_push: &mut dyn FnMut(u32),
) -> Result<WriteOutcome, WriteError> {
    let w = Writer::new(spec, cache)?;
    if req.files.is_empty() {
        return Err(w.invalid("no files to commit"));
    }
    for path in req.files.keys() {
        w.check_path(path)?;
    }
    // The blob ids of the files on the head of the first attempt: a later head that changed
    // any of them conflicts with what the caller computed.
    let mut first: Option<(ObjectId, Vec<Option<ObjectId>>)> = None;
    w.push_loop(
        &req.message,
        &req.identity,
        req.max_attempts,
        &mut |ctx, head| {
            let head_tree = ctx.commit_tree(head)?;
            let tree = ctx.files_tree(head_tree, &req.files)?;
            if tree == head_tree {
                return Ok(None);
            }
            let current = ctx.blob_ids(head_tree, req.files.keys())?;
            match &first {
                None => first = Some((head, current)),
                Some((_, before)) => {
                    let changed: Vec<String> = req
                        .files
                        .keys()
                        .zip(before.iter().zip(&current))
                        .filter(|(_, (a, b))| a != b)
                        .map(|(path, _)| path.clone())
                        .collect();
                    if !changed.is_empty() {
                        return Err(WriteError::Conflict {
                            repo: ctx.display.clone(),
                            head,
                            paths: changed,
                        });
                    }
                }
            }
            Ok(Some(tree))
        },
        before_push,
    )
}

/// A write in progress: the spec, where to push, and how to redact.
struct Writer<'a> {
    spec: &'a RepoSpec,
    cache: &'a Path,
    display: String,
    secrets: Secrets,
    target: PushTarget,
}

/// Where and how `git push` sends the commit.
struct PushTarget {
    /// The URL without user-info (http/https) or as configured (ssh, git, file, local path).
    url: String,
    credentials: Option<Credentials>,
    ssh: bool,
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
        let target = match Location::parse(spec).map_err(fetch_error)? {
            Location::Local(_) => PushTarget {
                url: spec.url.clone(),
                credentials: None,
                ssh: false,
            },
            Location::Remote(url) => match url.scheme {
                gix::url::Scheme::Http | gix::url::Scheme::Https => PushTarget {
                    url: push_url(&spec.url, true),
                    credentials: spec.credentials.clone().or_else(|| Secrets::embedded(spec)),
                    ssh: false,
                },
                scheme => PushTarget {
                    url: push_url(&spec.url, false),
                    credentials: None,
                    ssh: scheme == gix::url::Scheme::Ssh,
                },
            },
        };
        if let Some(c) = &target.credentials
            && [c.username(), c.password()]
                .iter()
                .any(|v| v.contains(['\n', '\r', '\0']))
        {
            return Err(WriteError::InvalidRequest {
                repo: display,
                reason: "the credentials contain a line break or NUL, which git's credential \
                         protocol cannot carry"
                    .into(),
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

    /// Validate a revert request; returns the normalised path prefixes.
    fn check_revert(&self, req: &RevertRequest) -> Result<Option<Vec<String>>, WriteError> {
        if req.commits.is_empty() {
            return Err(self.invalid("no commits to revert"));
        }
        let Some(paths) = &req.paths else {
            return Ok(None);
        };
        if paths.is_empty() {
            return Err(self.invalid("an empty list of paths would revert nothing"));
        }
        paths
            .iter()
            .map(|p| {
                let p = p.trim_matches('/');
                self.check_path(p)?;
                Ok(p.to_owned())
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
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
        repo.object_cache_size_if_unset(16 * 1024 * 1024);
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

    fn create_commit(
        &self,
        ctx: &Ctx,
        tree: ObjectId,
        parent: ObjectId,
        message: &str,
        identity: &Identity,
    ) -> Result<ObjectId, WriteError> {
        if let Some(key) = &identity.signing_key {
            return self.create_signed_commit(ctx, tree, parent, message, identity, key);
        }
        let signature = gix::actor::Signature {
            name: identity.name.as_str().into(),
            email: identity.email.as_str().into(),
            time: gix::date::Time::now_local_or_utc(),
        };
        let commit = gix::objs::Commit {
            tree,
            parents: std::iter::once(parent).collect(),
            author: signature.clone(),
            committer: signature,
            encoding: None,
            message: message.into(),
            extra_headers: Vec::new(),
        };
        ctx.repo
            .write_object(&commit)
            .map(|id| id.detach())
            .map_err(|e| WriteError::WriteObject {
                repo: ctx.display.clone(),
                what: "the commit".into(),
                source: RedactedError::new(&e, &[]),
            })
    }

    /// `git commit-tree <tree> -p <parent> -S<key> -F -` with the message on stdin.
    fn create_signed_commit(
        &self,
        ctx: &Ctx,
        tree: ObjectId,
        parent: ObjectId,
        message: &str,
        identity: &Identity,
        key: &str,
    ) -> Result<ObjectId, WriteError> {
        let mut cmd = git_command(&ctx.git_dir);
        let ssh_key =
            key.starts_with("key::") || key.starts_with("ssh-") || Path::new(key).is_file();
        if ssh_key {
            cmd.args(["-c", "gpg.format=ssh"]);
        }
        cmd.env("GIT_AUTHOR_NAME", &identity.name)
            .env("GIT_AUTHOR_EMAIL", &identity.email)
            .env("GIT_COMMITTER_NAME", &identity.name)
            .env("GIT_COMMITTER_EMAIL", &identity.email)
            .arg("commit-tree")
            .arg(tree.to_string())
            .arg("-p")
            .arg(parent.to_string())
            .arg(format!("-S{key}"))
            .args(["-F", "-"]);
        let out = self.run(cmd, Some(message.as_bytes()), "commit-tree", COMMIT_TIMEOUT)?;
        let sha = out.stdout.trim();
        match ObjectId::from_hex(sha.as_bytes()) {
            Ok(id) if out.status.success() => Ok(id),
            _ => Err(WriteError::Sign {
                repo: self.display.clone(),
                source: RedactedError::from_text(
                    format!("{}: {}", out.status, out.stderr.trim()),
                    &self.secrets.pairs(),
                ),
            }),
        }
    }

    /// `git push --porcelain -- <url> <commit>:refs/heads/<branch>`.
    fn push(&self, ctx: &Ctx, commit: ObjectId) -> Result<PushStatus, WriteError> {
        let branch = &self.spec.branch;
        let dst = format!("refs/heads/{branch}");
        let mut cmd = git_command(&ctx.git_dir);
        if let Some(c) = &self.target.credentials {
            cmd.args(["-c", "credential.helper=", "-c", CREDENTIAL_HELPER])
                .env(USERNAME_VAR, c.username())
                .env(PASSWORD_VAR, c.password());
        }
        if self.target.ssh && !user_set_ssh_command(&ctx.repo) {
            cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        }
        cmd.args([
            "-c",
            "push.recurseSubmodules=no",
            "push",
            "--porcelain",
            "--",
        ])
        .arg(&self.target.url)
        .arg(format!("{commit}:{dst}"));
        let out = self.run(cmd, None, "push", PUSH_TIMEOUT)?;
        let redact = |text: &str| {
            RedactedError::from_text(text.to_owned(), &self.secrets.pairs())
                .message()
                .to_owned()
        };
        match classify_push(&out.stdout, &out.stderr, out.status.success(), &dst) {
            PushClass::Pushed => Ok(PushStatus::Pushed),
            PushClass::RemoteMoved(reason) => Ok(PushStatus::RemoteMoved {
                reason: redact(&reason),
            }),
            PushClass::Rejected(reason) => Err(WriteError::PushRejected {
                repo: self.display.clone(),
                branch: branch.clone(),
                reason: redact(&reason),
            }),
            PushClass::Failed { transient, message } => Err(WriteError::Push {
                repo: self.display.clone(),
                branch: branch.clone(),
                transient,
                source: RedactedError::from_text(message, &self.secrets.pairs()),
            }),
        }
    }

    fn run(
        &self,
        cmd: Command,
        input: Option<&[u8]>,
        operation: &'static str,
        timeout: Duration,
    ) -> Result<GitOutput, WriteError> {
        match run_with_timeout(cmd, input, timeout) {
            Ok(Some(out)) => Ok(out),
            Ok(None) => Err(WriteError::Timeout {
                repo: self.display.clone(),
                operation,
                timeout,
            }),
            Err(source) => Err(WriteError::SpawnGit {
                repo: self.display.clone(),
                operation,
                source,
            }),
        }
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

    /// Revert `commits` in turn on top of `head_tree`, the tree of the commit `head`.
    fn revert_tree(
        &self,
        head: ObjectId,
        head_tree: ObjectId,
        commits: &[ObjectId],
        paths: Option<&[String]>,
    ) -> Result<ObjectId, WriteError> {
        let options = self
            .repo
            .tree_merge_options()
            .map_err(|e| self.read_error("the merge configuration", &e))?;
        let how = gix::merge::tree::TreatAsUnresolved::git();
        let mut ours = head_tree;
        for &commit in commits {
            let c = self
                .repo
                .find_commit(commit)
                .map_err(|e| WriteError::CommitNotFound {
                    repo: self.display.clone(),
                    commit,
                    source: RedactedError::new(&e, &[]),
                })?;
            let base = c
                .tree_id()
                .map_err(|e| self.read_error(format!("the tree of commit {commit}"), &e))?
                .detach();
            let parent = c.parent_ids().next().map(|id| id.detach());
            let parent_tree = match parent {
                Some(parent) => self.commit_tree(parent)?,
                None => self
                    .repo
                    .write_object(gix::objs::Tree::empty())
                    .map_err(|e| self.write_error("the empty tree", &e))?
                    .detach(),
            };
            let theirs = match paths {
                None => parent_tree,
                Some(prefixes) => self.restrict(base, parent_tree, prefixes)?,
            };
            if theirs == base {
                // Nothing of this commit is under the paths.
                continue;
            }
            let labels = gix::merge::blob::builtin_driver::text::Labels {
                ancestor: Some(b"reverted".as_bstr()),
                current: Some(b"head".as_bstr()),
                other: Some(b"parent of reverted".as_bstr()),
            };
            let mut outcome = self
                .repo
                .merge_trees(base, ours, theirs, labels, options.clone())
                .map_err(|e| WriteError::Merge {
                    repo: self.display.clone(),
                    commit,
                    source: RedactedError::new(&e, &[]),
                })?;
            if outcome.has_unresolved_conflicts(how) {
                let mut conflicting: Vec<String> = outcome
                    .conflicts
                    .iter()
                    .filter(|c| c.is_unresolved(how))
                    .flat_map(|c| {
                        [
                            c.ours.location(),
                            c.ours.source_location(),
                            c.theirs.location(),
                            c.theirs.source_location(),
                        ]
                    })
                    .map(|p: &BStr| p.to_str_lossy().into_owned())
                    .collect();
                conflicting.sort_unstable();
                conflicting.dedup();
                return Err(WriteError::Conflict {
                    repo: self.display.clone(),
                    head,
                    paths: conflicting,
                });
            }
            ours = outcome
                .tree
                .write()
                .map_err(|e| self.write_error("the merged tree", &e))?
                .detach();
        }
        Ok(ours)
    }

    /// `base` with the entries at `prefixes` taken from `parent`: reverting to it reverts only
    /// what changed under the prefixes.
    fn restrict(
        &self,
        base: ObjectId,
        parent: ObjectId,
        prefixes: &[String],
    ) -> Result<ObjectId, WriteError> {
        let parent_tree = self
            .repo
            .find_tree(parent)
            .map_err(|e| self.read_error(format!("tree {parent}"), &e))?;
        let mut editor = self
            .repo
            .edit_tree(base)
            .map_err(|e| self.read_error(format!("tree {base}"), &e))?;
        for prefix in prefixes {
            let entry = parent_tree
                .lookup_entry_by_path(prefix)
                .map_err(|e| self.read_error(format!("{prefix} in tree {parent}"), &e))?;
            let edited = match entry {
                Some(entry) => editor.upsert(prefix, entry.mode().kind(), entry.object_id()),
                None => editor.remove(prefix),
            };
            edited.map_err(|e| self.write_error("the path-restricted tree", &e))?;
        }
        editor
            .write()
            .map(|id| id.detach())
            .map_err(|e| self.write_error("the path-restricted tree", &e))
    }

    /// `head_tree` with `files` written in.
    fn files_tree(
        &self,
        head_tree: ObjectId,
        files: &BTreeMap<String, Vec<u8>>,
    ) -> Result<ObjectId, WriteError> {
        let tree = self
            .repo
            .find_tree(head_tree)
            .map_err(|e| self.read_error(format!("tree {head_tree}"), &e))?;
        let mut editor = self
            .repo
            .edit_tree(head_tree)
            .map_err(|e| self.read_error(format!("tree {head_tree}"), &e))?;
        for (path, bytes) in files {
            let lookup = |p: &str| {
                tree.lookup_entry_by_path(p)
                    .map_err(|e| self.read_error(format!("{p} in tree {head_tree}"), &e))
            };
            // Writing below a file would replace the file with a directory.
            for (slash, _) in path.match_indices('/') {
                let dir = &path[..slash];
                if let Some(entry) = lookup(dir)?
                    && !entry.mode().is_tree()
                {
                    return Err(WriteError::InvalidRequest {
                        repo: self.display.clone(),
                        reason: format!("{path}: {dir} is not a directory on the head"),
                    });
                }
            }
            let kind = match lookup(path)? {
                None => EntryKind::Blob,
                Some(entry) if entry.mode().kind() == EntryKind::BlobExecutable => {
                    EntryKind::BlobExecutable
                }
                Some(entry) if is_file(entry.mode()) => EntryKind::Blob,
                Some(_) => {
                    return Err(WriteError::InvalidRequest {
                        repo: self.display.clone(),
                        reason: format!(
                            "{path} is a directory, symlink or submodule on the head, not a file"
                        ),
                    });
                }
            };
            let blob = self
                .repo
                .write_blob(bytes)
                .map_err(|e| self.write_error(&format!("the blob for {path}"), &e))?;
            editor
                .upsert(path, kind, blob)
                .map_err(|e| self.write_error(&format!("the tree entry for {path}"), &e))?;
        }
        editor
            .write()
            .map(|id| id.detach())
            .map_err(|e| self.write_error("the tree", &e))
    }

    /// The object id at each path of `tree` (`None` where there is nothing).
    fn blob_ids<'p>(
        &self,
        tree: ObjectId,
        paths: impl Iterator<Item = &'p String>,
    ) -> Result<Vec<Option<ObjectId>>, WriteError> {
        let tree_obj = self
            .repo
            .find_tree(tree)
            .map_err(|e| self.read_error(format!("tree {tree}"), &e))?;
        paths
            .map(|p| {
                tree_obj
                    .lookup_entry_by_path(p)
                    .map(|e| e.map(|e| e.object_id()))
                    .map_err(|e| self.read_error(format!("{p} in tree {tree}"), &e))
            })
            .collect()
    }

    /// A `diff --git`-style unified diff of every file that differs between two trees.
    fn unified_diff(&self, from: ObjectId, to: ObjectId) -> Result<String, WriteError> {
        let old = self
            .repo
            .find_tree(from)
            .map_err(|e| self.read_error(format!("tree {from}"), &e))?;
        let new = self
            .repo
            .find_tree(to)
            .map_err(|e| self.read_error(format!("tree {to}"), &e))?;
        let mut recorder = gix::diff::tree::Recorder::default();
        gix::diff::tree(
            gix::objs::TreeRefIter::from_bytes(&old.data, old.id.kind()),
            gix::objs::TreeRefIter::from_bytes(&new.data, new.id.kind()),
            gix::diff::tree::State::default(),
            &self.repo.objects,
            &mut recorder,
        )
        .map_err(|e| self.read_error(format!("the diff {from}..{to}"), &e))?;
        type Side = Option<(gix::objs::tree::EntryMode, ObjectId)>;
        let mut files: Vec<(String, Side, Side)> = Vec::new();
        for change in recorder.records {
            use gix::diff::tree::recorder::Change;
            let (path, old, new) = match change {
                Change::Addition {
                    entry_mode,
                    oid,
                    path,
                    ..
                } => (path, None, Some((entry_mode, oid))),
                Change::Deletion {
                    entry_mode,
                    oid,
                    path,
                    ..
                } => (path, Some((entry_mode, oid)), None),
                Change::Modification {
                    previous_entry_mode,
                    previous_oid,
                    entry_mode,
                    oid,
                    path,
                } => (
                    path,
                    Some((previous_entry_mode, previous_oid)),
                    Some((entry_mode, oid)),
                ),
            };
            let not_tree = |side: &Side| side.filter(|(mode, _)| !mode.is_tree());
            let (old, new) = (not_tree(&old), not_tree(&new));
            if old.is_some() || new.is_some() {
                files.push((path.to_str_lossy().into_owned(), old, new));
            }
        }
        files.sort_by(|a, b| a.0.cmp(&b.0));
        let mut out = String::new();
        for (path, old, new) in files {
            let old_text = self.side_content(&path, old)?;
            let new_text = self.side_content(&path, new)?;
            out.push_str(&format!("diff --git a/{path} b/{path}\n"));
            match (old, new) {
                (None, Some((mode, _))) => {
                    out.push_str(&format!("new file mode {:o}\n", mode.value()))
                }
                (Some((mode, _)), None) => {
                    out.push_str(&format!("deleted file mode {:o}\n", mode.value()))
                }
                (Some((a, _)), Some((b, _))) if a != b => out.push_str(&format!(
                    "old mode {:o}\nnew mode {:o}\n",
                    a.value(),
                    b.value()
                )),
                _ => {}
            }
            let a = if old.is_some() {
                format!("a/{path}")
            } else {
                "/dev/null".to_owned()
            };
            let b = if new.is_some() {
                format!("b/{path}")
            } else {
                "/dev/null".to_owned()
            };
            match (old_text, new_text) {
                (Some(old_text), Some(new_text)) => {
                    if old_text != new_text {
                        out.push_str(
                            &similar::TextDiff::from_lines(&old_text, &new_text)
                                .unified_diff()
                                .context_radius(3)
                                .header(&a, &b)
                                .to_string(),
                        );
                    }
                }
                _ => out.push_str(&format!("Binary files {a} and {b} differ\n")),
            }
        }
        Ok(out)
    }

    /// The text of one side of a file diff: empty when absent, `None` when binary.
    fn side_content(
        &self,
        path: &str,
        side: Option<(gix::objs::tree::EntryMode, ObjectId)>,
    ) -> Result<Option<String>, WriteError> {
        let Some((mode, oid)) = side else {
            return Ok(Some(String::new()));
        };
        if mode.kind() == EntryKind::Commit {
            return Ok(Some(format!("Subproject commit {oid}\n")));
        }
        let blob = self
            .repo
            .find_blob(oid)
            .map_err(|e| self.read_error(format!("{path} ({oid})"), &e))?;
        if blob.data.contains(&0) {
            return Ok(None);
        }
        Ok(String::from_utf8(blob.data.clone()).ok())
    }
}

/// The URL handed to git: never with a password (it would be visible in the process list);
/// for http(s) without any user-info, which the credential helper supplies instead.
fn push_url(url: &str, http: bool) -> String {
    if http {
        return redact_url(url);
    }
    // scp-like `user@host:path` cannot carry a password.
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let start = scheme_end + 3;
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..authority_end];
    match authority
        .rfind('@')
        .and_then(|at| Some((at, authority[..at].split_once(':')?.0)))
    {
        Some((at, user)) => format!(
            "{}{user}@{}{}",
            &url[..start],
            &authority[at + 1..],
            &rest[authority_end..]
        ),
        None => url.to_owned(),
    }
}

/// `true` when the user chose how git runs ssh (environment or configuration).
fn user_set_ssh_command(repo: &gix::Repository) -> bool {
    std::env::var_os("GIT_SSH_COMMAND").is_some()
        || std::env::var_os("GIT_SSH").is_some()
        || repo.config_snapshot().string("core.sshCommand").is_some()
}

/// `git --git-dir=<dir>` with a clean, non-interactive environment.
fn git_command(git_dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    let mut dir_arg = OsString::from("--git-dir=");
    dir_arg.push(git_dir);
    cmd.arg(dir_arg)
        .args(["-c", "protocol.ext.allow=never"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    for var in GIT_LOCATION_VARS {
        cmd.env_remove(var);
    }
    cmd
}

struct GitOutput {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Run `cmd` with `input` on stdin (or stdin closed), collecting its output; `Ok(None)` when it
/// did not finish within `timeout` (it is then killed).
fn run_with_timeout(
    mut cmd: Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<Option<GitOutput>> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            // A child that exits without reading its input is reported by its exit status.
            let _ = stdin.write_all(&input);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel::<(bool, Vec<u8>)>();
    let pipes: [(bool, Option<Box<dyn Read + Send>>); 2] = [
        (
            false,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ];
    for (is_stderr, pipe) in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            let _ = tx.send((is_stderr, buf));
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((true, buf)) => stderr = Some(buf),
            Ok((false, buf)) => stdout = Some(buf),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
        }
    }
    let status = child.wait()?;
    Ok(Some(GitOutput {
        status,
        stdout: String::from_utf8_lossy(&stdout.unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.unwrap_or_default()).into_owned(),
    }))
}

enum PushStatus {
    Pushed,
    RemoteMoved { reason: String },
}

/// What `git push --porcelain` said about the ref `dst`.
#[derive(Debug, PartialEq, Eq)]
enum PushClass {
    Pushed,
    /// The remote has commits we do not: fetch and redo.
    RemoteMoved(String),
    /// The remote refused for another reason.
    Rejected(String),
    /// No decision from the remote (connection, authentication, missing repository).
    Failed {
        transient: bool,
        message: String,
    },
}

/// Classify the result of `git push --porcelain` for the ref `dst`. Porcelain lines are
/// `<flag>\t<src>:<dst>\t<summary>`; flags: ` ` fast-forward, `*` new ref, `=` up to date,
/// `!` rejected.
fn classify_push(stdout: &str, stderr: &str, success: bool, dst: &str) -> PushClass {
    let line = stdout.lines().find_map(|line| {
        let mut parts = line.splitn(3, '\t');
        let flag = parts.next()?;
        let refs = parts.next()?;
        let summary = parts.next()?;
        (flag.len() == 1 && refs.rsplit_once(':').is_some_and(|(_, to)| to == dst))
            .then(|| (flag.to_owned(), summary.to_owned()))
    });
    let remote_lines: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("remote:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match line {
        Some((flag, _)) if matches!(flag.as_str(), " " | "*" | "=") => PushClass::Pushed,
        Some((flag, summary)) if flag == "!" => {
            let moved = [
                "(fetch first)",
                "(non-fast-forward)",
                "failed to update ref",
                "cannot lock ref",
                "incorrect old value",
            ];
            let remote_said = remote_lines.join(" / ");
            let reason = if remote_said.is_empty() {
                summary.clone()
            } else {
                format!("{summary}: {remote_said}")
            };
            if moved.iter().any(|m| summary.contains(m)) {
                PushClass::RemoteMoved(reason)
            } else {
                PushClass::Rejected(reason)
            }
        }
        Some((flag, summary)) => PushClass::Failed {
            transient: false,
            message: format!("unexpected push status {flag:?}: {summary}"),
        },
        None => {
            let message: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
                .collect();
            let message = message.join("\n");
            if success {
                return PushClass::Failed {
                    transient: false,
                    message: format!("git push reported no status for {dst}: {message}"),
                };
            }
            PushClass::Failed {
                transient: is_transient_push_failure(&message),
                message,
            }
        }
    }
}

/// Network trouble is worth a retry; authentication, a missing repository or a TLS problem
/// need a person. Unknown failures are treated as transient, like fetch errors.
fn is_transient_push_failure(stderr: &str) -> bool {
    let text = stderr.to_ascii_lowercase();
    const TRANSIENT: &[&str] = &[
        "could not resolve host",
        "could not resolve hostname",
        "failed to connect",
        "connection refused",
        "connection timed out",
        "connection reset",
        "connect to host",
        "connection closed by",
        "timed out",
        "operation too slow",
        "early eof",
        "the remote end hung up unexpectedly",
        "returned error: 5",
        "rpc failed",
        "temporary failure",
        "cannot lock ref",
    ];
    const PERMANENT: &[&str] = &[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "permission denied",
        "access denied",
        "invalid username or password",
        "returned error: 401",
        "returned error: 403",
        "returned error: 404",
        "repository not found",
        "does not appear to be a git repository",
        "not found",
        "host key verification failed",
        "ssl certificate problem",
        "certificate verify failed",
        "unsupported protocol",
        "transport 'ext' not allowed",
        "not allowed",
        "insufficient permission",
        "read-only file system",
    ];
    if TRANSIENT.iter().any(|t| text.contains(t)) {
        return true;
    }
    !PERMANENT.iter().any(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: &str = "refs/heads/main";

    #[test]
    fn classify_push_table() {
        let sha = "e3c4f22e411d9d4107ce6a51784154cc3726e552";
        let line = |flag: &str, summary: &str| {
            format!("To ../r.git\n{flag}\t{sha}:{DST}\t{summary}\nDone\n")
        };
        let cases: Vec<(&str, String, &str, bool, PushClass)> = vec![
            (
                "fast_forward",
                line(" ", "aaaa..bbbb"),
                "",
                true,
                PushClass::Pushed,
            ),
            ("up_to_date", line("=", "[up to date]"), "", true, PushClass::Pushed),
            (
                "fetch_first",
                line("!", "[rejected] (fetch first)"),
                "hint: pull first",
                false,
                PushClass::RemoteMoved("[rejected] (fetch first)".into()),
            ),
            (
                "non_fast_forward",
                line("!", "[rejected] (non-fast-forward)"),
                "",
                false,
                PushClass::RemoteMoved("[rejected] (non-fast-forward)".into()),
            ),
            (
                "server_side_race",
                line("!", "[remote rejected] (failed to update ref)"),
                "remote: error: cannot lock ref 'refs/heads/main': is at 1 but expected 2",
                false,
                PushClass::RemoteMoved(
                    "[remote rejected] (failed to update ref): error: cannot lock ref 'refs/heads/main': is at 1 but expected 2".into(),
                ),
            ),
            (
                "hook_declined",
                line("!", "[remote rejected] (pre-receive hook declined)"),
                "remote: protected branch        \nerror: failed to push some refs",
                false,
                PushClass::Rejected(
                    "[remote rejected] (pre-receive hook declined): protected branch".into(),
                ),
            ),
            (
                "connection_refused",
                String::new(),
                "fatal: unable to access 'https://example.com/a.git/': Failed to connect to example.com port 443: Connection refused",
                false,
                PushClass::Failed {
                    transient: true,
                    message: "fatal: unable to access 'https://example.com/a.git/': Failed to connect to example.com port 443: Connection refused".into(),
                },
            ),
            (
                "authentication",
                String::new(),
                "remote: Invalid credentials\nfatal: Authentication failed for 'https://example.com/a.git/'",
                false,
                PushClass::Failed {
                    transient: false,
                    message: "remote: Invalid credentials\nfatal: Authentication failed for 'https://example.com/a.git/'".into(),
                },
            ),
            (
                "missing_repository",
                String::new(),
                "fatal: '/nope.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights",
                false,
                PushClass::Failed {
                    transient: false,
                    message: "fatal: '/nope.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\nPlease make sure you have the correct access rights".into(),
                },
            ),
            (
                "ssh_unreachable",
                String::new(),
                "ssh: connect to host 127.0.0.1 port 1: Connection refused\nfatal: Could not read from remote repository.",
                false,
                PushClass::Failed {
                    transient: true,
                    message: "ssh: connect to host 127.0.0.1 port 1: Connection refused\nfatal: Could not read from remote repository.".into(),
                },
            ),
            (
                "other_ref_only",
                format!("To x\n \t{sha}:refs/heads/other\taaaa..bbbb\nDone\n"),
                "",
                true,
                PushClass::Failed {
                    transient: false,
                    message: format!("git push reported no status for {DST}: "),
                },
            ),
        ];
        for (name, stdout, stderr, success, want) in cases {
            assert_eq!(
                classify_push(&stdout, stderr, success, DST),
                want,
                "case {name}"
            );
        }
    }

    #[test]
    fn push_url_never_carries_a_password() {
        let cases = [
            (
                "https_userinfo",
                "https://u:pw@example.com/a.git",
                true,
                "https://example.com/a.git",
            ),
            (
                "https_token",
                "https://tok@example.com/a.git",
                true,
                "https://example.com/a.git",
            ),
            (
                "ssh_user_kept",
                "ssh://git@example.com:22/a.git",
                false,
                "ssh://git@example.com:22/a.git",
            ),
            (
                "ssh_password_dropped",
                "ssh://git:pw@example.com/a.git",
                false,
                "ssh://git@example.com/a.git",
            ),
            (
                "scp_like",
                "git@example.com:org/a.git",
                false,
                "git@example.com:org/a.git",
            ),
            ("file", "file:///srv/a.git", false, "file:///srv/a.git"),
            ("local", "/srv/a.git", false, "/srv/a.git"),
        ];
        for (name, url, http, want) in cases {
            assert_eq!(push_url(url, http), want, "case {name}");
        }
    }

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

    #[test]
    fn run_with_timeout_kills_a_hanging_command() {
        let mut cmd = Command::new("tail");
        cmd.args(["-f", "/dev/null"]);
        let started = Instant::now();
        let out = run_with_timeout(cmd, None, Duration::from_millis(200)).expect("spawns");
        assert!(out.is_none(), "timed out");
        assert!(started.elapsed() < Duration::from_secs(20));

        let mut cmd = Command::new("cat");
        cmd.arg("-");
        let out = run_with_timeout(cmd, Some(b"input"), Duration::from_secs(30)).expect("spawns");
        let out = out.expect("cat finishes");
        assert!(out.status.success());
        assert_eq!(out.stdout, "input");
    }
}
