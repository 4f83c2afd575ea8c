//! [`commit_to_branch`]: file edits on top of the tracked branch's head, committed and pushed
//! to **another** branch (a promotion's pull request branch). The push is a plain one (never
//! forced): when the branch already exists the remote refuses it and the outcome says so.

use std::collections::BTreeMap;
use std::path::Path;

use gix::objs::tree::EntryKind;

use super::push::PushStatus;
use super::{Identity, WriteError, Writer};
use crate::git::{ObjectId, RepoSpec};

/// What [`commit_to_branch`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchRequest {
    /// `/`-separated repository path → new content (`None`: delete the file).
    pub edits: BTreeMap<String, Option<Vec<u8>>>,
    /// The branch to create (`rollgit/promote/...`), without `refs/heads/`.
    pub branch: String,
    /// The full commit message.
    pub message: String,
    pub identity: Identity,
}

/// The result of [`commit_to_branch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchOutcome {
    /// `commit` (child of `parent`, the tracked branch's head) is the new branch's head.
    Pushed { commit: ObjectId, parent: ObjectId },
    /// The branch already exists on the remote at another commit (an earlier attempt pushed
    /// it); it is left as it is. (The very same commit again is `Pushed`.)
    Exists,
    /// The head already has that content.
    NothingToDo,
}

/// Applies `req.edits` on the head of `spec.branch`, commits, and pushes the commit to
/// `req.branch` (a new branch). Blocking; call it from `spawn_blocking`.
pub fn commit_to_branch(
    spec: &RepoSpec,
    cache: &Path,
    req: &BranchRequest,
) -> Result<BranchOutcome, WriteError> {
    let w = Writer::new(spec, cache)?;
    if req.edits.is_empty() {
        return Err(w.invalid("no files to commit"));
    }
    for path in req.edits.keys() {
        w.check_path(path)?;
    }
    if req.branch.is_empty()
        || req.branch == spec.branch
        || req
            .branch
            .split('/')
            .any(|c| c.is_empty() || c == "." || c == ".." || c.starts_with('-'))
        || req
            .branch
            .contains([' ', '~', '^', ':', '?', '*', '[', '\\', '\n'])
    {
        return Err(w.invalid(format!("{:?} is not a new branch name", req.branch)));
    }
    w.check_identity(&req.identity, &req.message)?;
    let (ctx, head) = w.fetch()?;
    let head_tree = ctx.commit_tree(head)?;
    let tree_obj = ctx
        .repo
        .find_tree(head_tree)
        .map_err(|e| ctx.read_error(format!("tree {head_tree}"), &e))?;
    let mut editor = ctx
        .repo
        .edit_tree(head_tree)
        .map_err(|e| ctx.read_error(format!("tree {head_tree}"), &e))?;
    for (path, content) in &req.edits {
        match content {
            Some(bytes) => {
                let kind = match tree_obj
                    .lookup_entry_by_path(path)
                    .map_err(|e| ctx.read_error(format!("{path} in tree {head_tree}"), &e))?
                {
                    Some(entry) if entry.mode().kind() == EntryKind::BlobExecutable => {
                        EntryKind::BlobExecutable
                    }
                    _ => EntryKind::Blob,
                };
                let blob = ctx
                    .repo
                    .write_blob(bytes)
                    .map_err(|e| ctx.write_error(&format!("the blob for {path}"), &e))?;
                editor
                    .upsert(path.as_str(), kind, blob)
                    .map_err(|e| ctx.write_error(&format!("the tree entry for {path}"), &e))?;
            }
            None => {
                editor
                    .remove(path.as_str())
                    .map_err(|e| ctx.write_error(&format!("the removal of {path}"), &e))?;
            }
        }
    }
    let tree = editor
        .write()
        .map(|id| id.detach())
        .map_err(|e| ctx.write_error("the tree", &e))?;
    if tree == head_tree {
        return Ok(BranchOutcome::NothingToDo);
    }
    let mut message = req.message.clone();
    if !message.ends_with('\n') {
        message.push('\n');
    }
    let commit = w.create_commit(&ctx, tree, head, &message, &req.identity)?;
    match w.push_to(&ctx, commit, &req.branch)? {
        PushStatus::Pushed => {
            tracing::info!(
                repo = w.display.as_str(),
                branch = req.branch.as_str(),
                %commit,
                parent = %head,
                "pushed the branch"
            );
            Ok(BranchOutcome::Pushed {
                commit,
                parent: head,
            })
        }
        PushStatus::RemoteMoved { .. } => Ok(BranchOutcome::Exists),
    }
}
