//! Finding the objects `ref-objects` components refer to.
//!
//! A `ref-objects` component names objects by `apiVersion`, `kind`, `name` (and optionally
//! `namespace`). rollgit looks for them in Git, not in the cluster:
//!
//! 1. first among the app's own documents: such an object is emitted once, as part of the
//!    component (it is not a duplicate of itself);
//! 2. then through a [`RefLookup`], normally an [`ObjectIndex`] of every YAML file of the
//!    repository at the same commit, which the daemon builds once per commit
//!    ([`ObjectIndex::build`] with its file-read function) and updates for changed paths
//!    ([`ObjectIndex::insert_file`], [`ObjectIndex::remove_file`]).
//!
//! A candidate matches when its API group, kind and name are equal and its namespace is the
//! wanted one (the ref's `namespace`, else the Application's) or unset. No match is an error;
//! several matches in different places are an error listing them.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::SourceFile;
use crate::discover::is_manifest_path;
use crate::kinds::group_of;
use crate::yaml::parse_documents;

/// An object found in the repository.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexedObject {
    /// File path.
    pub path: String,
    /// Line of the document.
    pub line: u32,
    /// The object as written.
    pub object: Value,
}

/// Finds repository objects by API group, kind and name.
pub trait RefLookup {
    /// Every object in the repository with this group, kind and name (any namespace).
    fn find_objects(&self, group: &str, kind: &str, name: &str) -> Vec<IndexedObject>;

    /// Every object in the repository with this group and kind (for a `labelSelector`).
    fn objects_of_kind(&self, _group: &str, _kind: &str) -> Vec<IndexedObject> {
        Vec::new()
    }
}

/// A lookup that finds nothing (apps without `ref-objects` to other files).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoRefs;

impl RefLookup for NoRefs {
    fn find_objects(&self, _: &str, _: &str, _: &str) -> Vec<IndexedObject> {
        Vec::new()
    }
}

/// Every object of a repository's YAML files by (group, kind, name). Files that do not parse
/// are skipped here: they are reported by the render of the app that owns them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObjectIndex {
    by_key: BTreeMap<(String, String, String), Vec<IndexedObject>>,
}

impl ObjectIndex {
    /// Indexes the given files (non-manifest paths are skipped).
    pub fn from_files(files: &[SourceFile]) -> Self {
        let mut index = ObjectIndex::default();
        for f in files {
            index.insert_file(&f.path, &f.content);
        }
        index
    }

    /// Indexes the manifests among `paths`, reading each with `read`.
    pub fn build(paths: &[String], read: &dyn Fn(&str) -> Option<Vec<u8>>) -> Self {
        let mut index = ObjectIndex::default();
        for p in paths.iter().filter(|p| is_manifest_path(p)) {
            if let Some(content) = read(p) {
                index.insert_file(p, &content);
            }
        }
        index
    }

    /// Adds (or replaces) one file's objects.
    pub fn insert_file(&mut self, path: &str, content: &[u8]) {
        self.remove_file(path);
        if !is_manifest_path(path) {
            return;
        }
        let Ok(docs) = parse_documents(content) else {
            return;
        };
        for doc in docs {
            let object = doc.to_json();
            let (Some(api_version), Some(kind), Some(name)) = (
                object.get("apiVersion").and_then(Value::as_str),
                object.get("kind").and_then(Value::as_str),
                object
                    .get("metadata")
                    .and_then(|m| m.get("name"))
                    .and_then(Value::as_str),
            ) else {
                continue;
            };
            let key = (
                group_of(api_version).to_owned(),
                kind.to_owned(),
                name.to_owned(),
            );
            let entry = self.by_key.entry(key).or_default();
            entry.push(IndexedObject {
                path: path.to_owned(),
                line: doc.line.max(1),
                object,
            });
            entry.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        }
    }

    /// Removes one file's objects.
    pub fn remove_file(&mut self, path: &str) {
        self.by_key.retain(|_, objs| {
            objs.retain(|o| o.path != path);
            !objs.is_empty()
        });
    }

    /// Number of indexed objects.
    pub fn len(&self) -> usize {
        self.by_key.values().map(Vec::len).sum()
    }

    /// Whether nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

impl RefLookup for ObjectIndex {
    fn find_objects(&self, group: &str, kind: &str, name: &str) -> Vec<IndexedObject> {
        self.by_key
            .get(&(group.to_owned(), kind.to_owned(), name.to_owned()))
            .cloned()
            .unwrap_or_default()
    }

    fn objects_of_kind(&self, group: &str, kind: &str) -> Vec<IndexedObject> {
        self.by_key
            .iter()
            .filter(|((g, k, _), _)| g == group && k == kind)
            .flat_map(|(_, objs)| objs.iter().cloned())
            .collect()
    }
}
