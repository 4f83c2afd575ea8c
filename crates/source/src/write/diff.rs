//! The unified diff a dry run shows ([`super::revert_dry_run`]): every file that differs
//! between two trees, `diff --git` style.

use gix::bstr::ByteSlice;
use gix::objs::tree::EntryKind;

use super::{Ctx, WriteError};
use crate::git::{ObjectId, tree_changes};

impl Ctx {
    /// A `diff --git`-style unified diff of every file that differs between two trees.
    pub(super) fn unified_diff(&self, from: ObjectId, to: ObjectId) -> Result<String, WriteError> {
        let old = self
            .repo
            .find_tree(from)
            .map_err(|e| self.read_error(format!("tree {from}"), &e))?;
        let new = self
            .repo
            .find_tree(to)
            .map_err(|e| self.read_error(format!("tree {to}"), &e))?;
        let changes = tree_changes(&self.repo, &old, &new)
            .map_err(|e| self.read_error(format!("the diff {from}..{to}"), &e))?;
        type Side = Option<(gix::objs::tree::EntryMode, ObjectId)>;
        let mut files: Vec<(String, Side, Side)> = Vec::new();
        for change in changes {
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
