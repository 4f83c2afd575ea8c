//! File-system watch on the refs of a local repository.

use std::path::{Path, PathBuf};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::error::SourceError;
use crate::git::open_error;
use crate::trigger::Trigger;

/// Keeps a local repository's refs watched; dropping it stops the watch.
pub struct RepoWatcher {
    _watcher: notify::RecommendedWatcher,
    git_dir: PathBuf,
}

impl std::fmt::Debug for RepoWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoWatcher")
            .field("git_dir", &self.git_dir)
            .finish()
    }
}

impl RepoWatcher {
    /// The git directory being watched.
    pub fn git_dir(&self) -> &Path {
        &self.git_dir
    }
}

/// Watch the local repository at `path` (a worktree or a bare repository) and
/// [`notify`](Trigger::notify) `trigger` whenever `refs/heads/<branch>`, `packed-refs` or `HEAD`
/// changes: a `git commit`, `git push` into it, `git reset`, `git pack-refs`, a branch switch.
///
/// Directories are watched, not the ref files themselves, because Git replaces refs by renaming
/// a lock file over them. For a worktree, `.git/` (non-recursively) and `.git/refs/heads/`
/// (recursively, for branch names with `/`) are watched; for a bare repository, the repository
/// directory and `refs/`. Read-only access events are ignored, so the daemon reading the
/// repository does not trigger itself. The event is delivered by inotify as soon as Git renames
/// the ref into place, typically well under 100 ms after `git commit` returns.
///
/// The watch is a hint like a webhook: the fetch it triggers resolves the branch itself.
pub fn watch_local_repo(
    path: &Path,
    branch: &str,
    trigger: Trigger,
) -> Result<RepoWatcher, SourceError> {
    let display = path.display().to_string();
    let repo = gix::open(path).map_err(|e| open_error(&display, path, &e))?;
    let git_dir = repo
        .git_dir()
        .canonicalize()
        .map_err(|source| SourceError::Cache {
            path: repo.git_dir().to_owned(),
            source,
        })?;
    let refs_dir = if repo.is_bare() {
        git_dir.join("refs")
    } else {
        git_dir.join("refs").join("heads")
    };
    let interesting = [
        git_dir.join("HEAD"),
        git_dir.join("packed-refs"),
        git_dir.join("refs").join("heads").join(branch),
    ];

    let watch_error = |path: &Path| {
        let path = path.to_owned();
        move |source| SourceError::Watch { path, source }
    };
    let handler_dir = git_dir.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        match event {
            Ok(event) => {
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                if event.paths.iter().any(|p| interesting.iter().any(|i| p == i)) {
                    tracing::debug!(git_dir = %handler_dir.display(), kind = ?event.kind, "ref changed");
                    trigger.notify();
                }
            }
            Err(e) => {
                // Lost events (queue overflow) or a removed directory: fetch to be safe.
                tracing::warn!(git_dir = %handler_dir.display(), error = %e, "file-system watch error");
                trigger.notify();
            }
        }
    })
    .map_err(watch_error(&git_dir))?;
    watcher
        .watch(&git_dir, RecursiveMode::NonRecursive)
        .map_err(watch_error(&git_dir))?;
    watcher
        .watch(&refs_dir, RecursiveMode::Recursive)
        .map_err(watch_error(&refs_dir))?;
    tracing::debug!(git_dir = %git_dir.display(), branch, "watching local repository");
    Ok(RepoWatcher {
        _watcher: watcher,
        git_dir,
    })
}
