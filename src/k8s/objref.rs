//! References to objects ([`ObjRef`]) and an app's inventory: which objects it applied, kept
//! in the cluster (in the app's `applications.rollgit.dev` status) so that a restarted daemon
//! still knows what to prune.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

/// A reference to one object in the cluster.
///
/// Identity ([`ObjRef::same_object`], [`Inventory::diff`]) ignores `version`: `apps/v1beta2`
/// and `apps/v1` Deployments of one name are the same object.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
pub struct ObjRef {
    /// API group (`` for the core group).
    #[serde(default)]
    pub group: String,
    /// API version (`v1`).
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Namespace, `None` for cluster-scoped objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl ObjRef {
    /// The reference of an object (`apiVersion`, `kind`, `metadata.namespace`,
    /// `metadata.name`); `None` when one of `apiVersion`, `kind` or `metadata.name` is missing.
    pub fn from_object(obj: &Value) -> Option<Self> {
        let api_version = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        let name = obj.get("metadata")?.get("name")?.as_str()?;
        let namespace = obj["metadata"]
            .get("namespace")
            .and_then(Value::as_str)
            .filter(|ns| !ns.is_empty())
            .map(str::to_string);
        let (group, version) = split_api_version(api_version);
        Some(Self {
            group: group.to_string(),
            version: version.to_string(),
            kind: kind.to_string(),
            namespace,
            name: name.to_string(),
        })
    }

    /// `apps/v1`, or `v1` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The identity of the object, without its version.
    fn identity(&self) -> (&str, &str, Option<&str>, &str) {
        (
            &self.group,
            &self.kind,
            self.namespace.as_deref(),
            &self.name,
        )
    }

    /// True when both refer to the same object (versions may differ).
    pub fn same_object(&self, other: &Self) -> bool {
        self.identity() == other.identity()
    }
}

/// `(group, version)` of an `apiVersion`.
pub(crate) fn split_api_version(api_version: &str) -> (&str, &str) {
    match api_version.rsplit_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    }
}

impl fmt::Display for ObjRef {
    /// `Deployment.apps demo/web`, `Service demo/web`, `Namespace demo` (as render's keys).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.kind)?;
        if !self.group.is_empty() {
            write!(f, ".{}", self.group)?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " {ns}/{}", self.name),
            None => write!(f, " {}", self.name),
        }
    }
}

/// What an app applied: one entry per object, sorted, without duplicates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Inventory {
    /// The objects, sorted by group, version, kind, namespace, name.
    #[serde(default)]
    pub entries: Vec<ObjRef>,
    /// Those of them that existed before rollgit first applied them (adopted, not created):
    /// prune leaves them unless the app opts in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adopted: Vec<ObjRef>,
}

impl Inventory {
    /// The inventory of these references (sorted, duplicates removed).
    pub fn from_refs(refs: impl IntoIterator<Item = ObjRef>) -> Self {
        let set: BTreeSet<ObjRef> = refs.into_iter().collect();
        let mut entries: Vec<ObjRef> = Vec::with_capacity(set.len());
        for r in set {
            if !entries.iter().any(|e| e.same_object(&r)) {
                entries.push(r);
            }
        }
        Self {
            entries,
            adopted: Vec::new(),
        }
    }

    /// True when rollgit adopted the object (any version) rather than created it.
    pub fn is_adopted(&self, r: &ObjRef) -> bool {
        self.adopted.iter().any(|e| e.same_object(r))
    }

    /// The inventory of these objects as written (objects without `apiVersion`, `kind` or
    /// `metadata.name` are skipped; a missing namespace stays `None`).
    pub fn from_objects(objects: &[Value]) -> Self {
        Self::from_refs(objects.iter().filter_map(ObjRef::from_object))
    }

    /// True when the inventory holds the object (any version).
    pub fn contains(&self, r: &ObjRef) -> bool {
        self.entries.iter().any(|e| e.same_object(r))
    }

    /// The entries of `self` that `next` does not hold: what left (to prune), in the order of
    /// `self`.
    pub fn diff(&self, next: &Inventory) -> Vec<ObjRef> {
        let next: BTreeSet<_> = next.entries.iter().map(ObjRef::identity).collect();
        self.entries
            .iter()
            .filter(|e| !next.contains(&e.identity()))
            .cloned()
            .collect()
    }

    /// The entries, sorted.
    pub fn entries(&self) -> &[ObjRef] {
        &self.entries
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when there are no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjRef {
        let (g, v) = split_api_version(api_version);
        ObjRef {
            group: g.into(),
            version: v.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
        }
    }

    #[test]
    fn from_objects_reads_refs_sorted_and_deduplicated() {
        let objs = vec![
            json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "web", "namespace": "demo"}}),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "demo"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "demo"}}),
            json!({"kind": "Broken", "metadata": {"name": "x"}}),
        ];
        let inv = Inventory::from_objects(&objs);
        let shown: Vec<String> = inv.entries.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                "Namespace demo",
                "Service demo/web",
                "Deployment.apps demo/web"
            ]
        );
    }

    #[test]
    fn diff_lists_what_left_ignoring_versions() {
        let prev = Inventory::from_refs([
            r("apps/v1", "Deployment", Some("demo"), "web"),
            r("v1", "Service", Some("demo"), "web"),
            r("v1", "ConfigMap", Some("demo"), "old"),
            r("v1", "Namespace", None, "demo"),
        ]);
        let next = Inventory::from_refs([
            r("apps/v1beta2", "Deployment", Some("demo"), "web"),
            r("v1", "Service", Some("demo"), "web"),
            r("v1", "Namespace", None, "demo"),
            r("v1", "ConfigMap", Some("other"), "old"),
        ]);
        assert_eq!(
            prev.diff(&next),
            [r("v1", "ConfigMap", Some("demo"), "old")]
        );
        assert!(next.contains(&r("apps/v1", "Deployment", Some("demo"), "web")));
        assert_eq!(Inventory::default().diff(&next), []);
    }

    #[test]
    fn serde_round_trip_is_camel_free_and_omits_cluster_namespace() {
        let inv = Inventory::from_refs([
            r("v1", "Namespace", None, "demo"),
            r("apps/v1", "Deployment", Some("demo"), "web"),
        ]);
        let v = serde_json::to_value(&inv).expect("serialize");
        assert_eq!(
            v,
            json!({"entries": [
                {"group": "", "version": "v1", "kind": "Namespace", "name": "demo"},
                {"group": "apps", "version": "v1", "kind": "Deployment", "namespace": "demo", "name": "web"},
            ]})
        );
        let back: Inventory = serde_json::from_value(v).expect("deserialize");
        assert_eq!(back, inv);
    }
}
