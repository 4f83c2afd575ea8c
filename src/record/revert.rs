//! The one revert: an app's directory returned to its state at a commit, as ONE commit that
//! reverts every later commit of the branch's first-parent line that changed the directory
//! (newest first, a three-way tree merge with gix, restricted to the directory), pushed with
//! the `git` command as a fast-forward (redone on the new head when the remote moved; never
//! forced). The automatic rollback ([`super::rollback`]) and `rollgit rollback`
//! ([`super::history`]) both call [`revert_app`]; only their messages differ.
//!
//! Blocking (gix, git): call from `spawn_blocking`.

use rollgit_source::write::{self, Identity, RevertRequest, WriteError, WriteOutcome};
use rollgit_source::{ObjectId, Repo, RepoSpec, SourceError};
use std::path::PathBuf;

/// How many times a push is redone when the remote keeps moving.
pub const MAX_PUSH_ATTEMPTS: u32 = 5;
/// How many commits of the first-parent line a revert (or `rollgit history`) looks through.
pub const MAX_WALK: usize = 1_000;
/// Hex digits of a short commit id.
pub const SHORT: usize = 12;

/// The first [`SHORT`] hex digits of a commit id.
pub fn short(sha: &str) -> &str {
    sha.get(..SHORT).unwrap_or(sha)
}

/// Where and as whom one repository's commits are written.
#[derive(Debug, Clone)]
pub struct Writer {
    /// The repository (with its credentials).
    pub spec: RepoSpec,
    /// The mirror cache (`<stateDir>/repos`).
    pub cache: PathBuf,
    /// Author and committer (and signing key) of the commits.
    pub identity: Identity,
}

impl Writer {
    /// The writer of a configured repository.
    pub fn of(repo: &crate::config::Repo, cache: PathBuf) -> Self {
        Writer {
            spec: repo.source_spec(),
            cache,
            identity: repo.identity.clone(),
        }
    }

    /// A source error while reading for a write, as a write error naming the repository.
    pub fn fetch_error(&self, source: SourceError) -> WriteError {
        WriteError::Fetch {
            repo: self.spec.display_url(),
            branch: self.spec.branch.clone(),
            source: Box::new(source),
        }
    }
}

/// One commit a revert undoes: its id and summary line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undone {
    /// Full hex id.
    pub sha: String,
    /// First line of its message.
    pub summary: String,
}

/// What [`revert_app`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reverted {
    /// No commit after the target changed the directory, or the directory already has the
    /// target's content.
    NothingToDo,
    /// The revert commit is on the remote branch.
    Pushed {
        /// The revert commit.
        commit: String,
        /// What it reverts, newest first.
        undone: Vec<Undone>,
    },
    /// A dry run: what would be reverted, and the diff.
    DryRun {
        /// Unified diff of the revert.
        diff: String,
        /// What it would revert, newest first.
        undone: Vec<Undone>,
    },
}

/// What to revert: the commits of `repo`'s first-parent line after `after` (exclusive; `None`:
/// from the start of the walk) up to `upto` (inclusive) that changed `path` (`""`: the whole
/// repository).
#[derive(Debug, Clone, Copy)]
pub struct Range<'a> {
    /// The app's directory.
    pub path: &'a str,
    /// The commit whose state the directory returns to.
    pub after: Option<ObjectId>,
    /// The newest commit reverted.
    pub upto: ObjectId,
}

/// Reverts `range` in one commit whose message `message` writes from what it undoes, and
/// pushes it (or, with `dry_run`, only computes it). `repo` is the mirror holding the
/// commits; the revert itself fetches the branch's newest head.
pub fn revert_app(
    writer: &Writer,
    repo: &Repo,
    range: Range<'_>,
    message: &dyn Fn(&[Undone]) -> String,
    dry_run: bool,
) -> Result<Reverted, WriteError> {
    let prefixes = vec![range.path.to_string()];
    let commits = repo
        .commits_touching(range.after, range.upto, &prefixes, MAX_WALK)
        .map_err(|e| writer.fetch_error(e))?;
    if commits.is_empty() {
        return Ok(Reverted::NothingToDo);
    }
    let mut undone = Vec::with_capacity(commits.len());
    for c in &commits {
        let info = repo.commit_info(*c).map_err(|e| writer.fetch_error(e))?;
        undone.push(Undone {
            sha: info.sha,
            summary: info.summary,
        });
    }
    let req = RevertRequest {
        commits,
        message: message(&undone),
        identity: writer.identity.clone(),
        paths: (!range.path.is_empty()).then(|| vec![range.path.to_string()]),
        max_attempts: MAX_PUSH_ATTEMPTS,
    };
    let outcome = if dry_run {
        write::revert_dry_run(&writer.spec, &writer.cache, &req)?
    } else {
        write::revert(&writer.spec, &writer.cache, &req)?
    };
    Ok(match outcome {
        WriteOutcome::NothingToDo => Reverted::NothingToDo,
        WriteOutcome::DryRun { diff, .. } => Reverted::DryRun { diff, undone },
        WriteOutcome::Pushed { commit, .. } => Reverted::Pushed {
            commit: commit.to_string(),
            undone,
        },
    })
}

/// The list of undone commits in a message: one `  <short> <summary>` line each, under a
/// heading, and one `Reverts: <sha>` trailer each (returned separately: trailers go last).
pub fn undone_text(undone: &[Undone]) -> (String, String) {
    let mut list = String::from(if undone.len() == 1 {
        "This reverts, in the app's directory:\n"
    } else {
        "This reverts, in the app's directory, newest first:\n"
    });
    let mut trailers = String::new();
    for u in undone {
        list.push_str(&format!("  {} {}\n", short(&u.sha), u.summary));
        trailers.push_str(&format!("Reverts: {}\n", u.sha));
    }
    (list, trailers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undone_commits_become_a_list_and_trailers() {
        let one = [Undone {
            sha: "a".repeat(40),
            summary: "web 2".into(),
        }];
        let (list, trailers) = undone_text(&one);
        assert_eq!(
            list,
            format!(
                "This reverts, in the app's directory:\n  {} web 2\n",
                "a".repeat(12)
            )
        );
        assert_eq!(trailers, format!("Reverts: {}\n", "a".repeat(40)));
        let two = [one[0].clone(), one[0].clone()];
        assert!(undone_text(&two).0.contains("newest first"));
    }
}
