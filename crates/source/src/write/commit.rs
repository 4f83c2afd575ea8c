//! Committing: [`commit_files`] (tree edits on the head), and writing the commit object, with
//! gix or, to sign it, with `git commit-tree -S`.

use std::collections::BTreeMap;
use std::path::Path;

use gix::objs::tree::EntryKind;

use super::process::git_command;
use super::{COMMIT_TIMEOUT, CommitRequest, Ctx, Identity, WriteError, WriteOutcome, Writer};
use crate::error::RedactedError;
use crate::git::{ObjectId, RepoSpec, is_file};

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

impl Writer<'_> {
    pub(super) fn create_commit(
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
}

impl Ctx {
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
}
