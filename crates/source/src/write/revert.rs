//! Reverting commits: a gix three-way tree merge per commit on top of the head, optionally
//! restricted to some paths; conflicts are reported, never committed.

use std::path::Path;

use gix::bstr::{BStr, ByteSlice};

use super::{Ctx, RevertRequest, WriteError, WriteOutcome, Writer};
use crate::error::RedactedError;
use crate::git::{ObjectId, RepoSpec};

/// Revert `req.commits` on top of the remote branch's head as one commit and push it.
///
/// Each commit `C` is reverted by a three-way tree merge with gix: base = `C`'s tree, ours = the
/// head's tree (or the result of reverting the previous commit), theirs = the tree of `C`'s
/// first parent (restricted to `req.paths`). Unresolved conflicts are
/// [`WriteError::Conflict`] and nothing is pushed. A head that already has the reverted content
/// gives [`WriteOutcome::NothingToDo`]. When the remote moved before the push, the revert is
/// redone on the new head (see the [module documentation](super)).
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

impl Writer<'_> {
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
}

impl Ctx {
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
}
