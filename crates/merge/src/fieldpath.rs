//! Field paths and field sets in the structured-merge-diff model, and their
//! `FieldsV1` wire format (`f:`, `k:`, `v:`, `i:` and `.`).

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::MergeError;

/// One step of a field path.
///
/// The ordering (fields, then keys, then values, then indexes) matches the
/// order in which the real API server serialises `FieldsV1`.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PathElement {
    /// A named field of a struct or an entry of a map (`f:name`).
    Field(String),
    /// An item of a list of type `map`, identified by its key fields: the
    /// compact JSON object of the key fields, sorted by field name
    /// (`k:{"name":"nginx"}`).
    Key(String),
    /// An item of a list of type `set`: its compact JSON value (`v:"a"`).
    Value(String),
    /// An item of an atomic list by position (`i:0`); rarely used.
    Index(usize),
}

impl PathElement {
    /// Builds a `Key` element from `(field, value)` pairs (sorted by field name here).
    pub fn key(mut fields: Vec<(String, Value)>) -> PathElement {
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        let mut m = Map::new();
        for (k, v) in fields {
            m.insert(k, v);
        }
        PathElement::Key(Value::Object(m).to_string())
    }

    /// Builds a `Value` element for a set item.
    pub fn value(v: &Value) -> PathElement {
        PathElement::Value(v.to_string())
    }

    /// The `FieldsV1` key of this element (`f:x`, `k:{..}`, `v:..`, `i:N`).
    pub fn to_fields_v1_key(&self) -> String {
        match self {
            PathElement::Field(f) => format!("f:{f}"),
            PathElement::Key(k) => format!("k:{k}"),
            PathElement::Value(v) => format!("v:{v}"),
            PathElement::Index(i) => format!("i:{i}"),
        }
    }

    /// Parses a `FieldsV1` key. `.` is not a path element and is rejected.
    pub fn from_fields_v1_key(s: &str) -> Result<PathElement, MergeError> {
        let bad = || MergeError::InvalidFieldsV1(format!("invalid path element {s:?}"));
        let (prefix, rest) = s.split_once(':').ok_or_else(bad)?;
        match prefix {
            "f" => Ok(PathElement::Field(rest.to_string())),
            "k" => {
                let v: Value = serde_json::from_str(rest).map_err(|_| bad())?;
                let Value::Object(m) = v else {
                    return Err(bad());
                };
                Ok(PathElement::key(m.into_iter().collect()))
            }
            "v" => {
                let v: Value = serde_json::from_str(rest).map_err(|_| bad())?;
                Ok(PathElement::value(&v))
            }
            "i" => rest.parse().map(PathElement::Index).map_err(|_| bad()),
            _ => Err(bad()),
        }
    }
}

impl fmt::Display for PathElement {
    /// Formats like structured-merge-diff's `PathElement.String()`:
    /// `.name`, `[name="nginx",x=1]`, `[="value"]`, `[3]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathElement::Field(name) => write!(f, ".{name}"),
            PathElement::Key(k) => {
                let parsed: Value = serde_json::from_str(k).unwrap_or(Value::Null);
                let parts: Vec<String> = match parsed {
                    Value::Object(m) => m.iter().map(|(k, v)| format!("{k}={v}")).collect(),
                    _ => vec![k.clone()],
                };
                write!(f, "[{}]", parts.join(","))
            }
            PathElement::Value(v) => write!(f, "[={v}]"),
            PathElement::Index(i) => write!(f, "[{i}]"),
        }
    }
}

/// A path from the object root, e.g. `.spec.template.spec.containers[name="nginx"].image`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FieldPath(pub Vec<PathElement>);

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pe in &self.0 {
            write!(f, "{pe}")?;
        }
        Ok(())
    }
}

/// A set of field paths, stored as a trie. A node is a *member* when the path
/// leading to it is itself in the set (serialised as `".": {}` when the node
/// also has children, or as `{}` when it is a leaf).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet {
    member: bool,
    children: BTreeMap<PathElement, FieldSet>,
}

impl FieldSet {
    /// The empty set.
    pub fn new() -> FieldSet {
        FieldSet::default()
    }

    /// True when no path is a member.
    pub fn is_empty(&self) -> bool {
        !self.member && self.children.values().all(FieldSet::is_empty)
    }

    /// Inserts a path.
    pub fn insert(&mut self, path: &[PathElement]) {
        let mut node = self;
        for pe in path {
            node = node.children.entry(pe.clone()).or_default();
        }
        node.member = true;
    }

    /// True when `path` is a member.
    pub fn has(&self, path: &[PathElement]) -> bool {
        let mut node = self;
        for pe in path {
            match node.children.get(pe) {
                Some(n) => node = n,
                None => return false,
            }
        }
        node.member
    }

    /// Whether the node for this path (relative to `self`) is itself a member.
    pub(crate) fn is_member(&self) -> bool {
        self.member
    }

    pub(crate) fn set_member(&mut self, m: bool) {
        self.member = m;
    }

    /// The sub-trie below one element, if any.
    pub fn child(&self, pe: &PathElement) -> Option<&FieldSet> {
        self.children.get(pe)
    }

    pub(crate) fn child_mut(&mut self, pe: PathElement) -> &mut FieldSet {
        self.children.entry(pe).or_default()
    }

    /// The children of this node, in serialisation order.
    pub fn children(&self) -> impl Iterator<Item = (&PathElement, &FieldSet)> {
        self.children.iter()
    }

    pub(crate) fn remove_child(&mut self, pe: &PathElement) -> Option<FieldSet> {
        self.children.remove(pe)
    }

    /// Removes non-member leaves left behind by set operations.
    pub(crate) fn prune(&mut self) {
        self.children.retain(|_, c| {
            c.prune();
            c.member || !c.children.is_empty()
        });
    }

    /// Set union.
    pub fn union(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.union_in_place(other);
        out
    }

    /// Adds every member of `other` to `self`.
    pub fn union_in_place(&mut self, other: &FieldSet) {
        self.member |= other.member;
        for (pe, c) in &other.children {
            self.children
                .entry(pe.clone())
                .or_default()
                .union_in_place(c);
        }
    }

    /// Set difference: members of `self` that are not members of `other`.
    pub fn difference(&self, other: &FieldSet) -> FieldSet {
        let mut out = self.clone();
        out.difference_in_place(other);
        out
    }

    fn difference_in_place(&mut self, other: &FieldSet) {
        self.diff_rec(other);
        self.prune();
    }

    fn diff_rec(&mut self, other: &FieldSet) {
        if other.member {
            self.member = false;
        }
        for (pe, oc) in &other.children {
            if let Some(c) = self.children.get_mut(pe) {
                c.diff_rec(oc);
            }
        }
    }

    /// Set intersection.
    pub fn intersection(&self, other: &FieldSet) -> FieldSet {
        let mut out = FieldSet {
            member: self.member && other.member,
            children: BTreeMap::new(),
        };
        for (pe, c) in &self.children {
            if let Some(oc) = other.children.get(pe) {
                let i = c.intersection(oc);
                if !i.is_empty() {
                    out.children.insert(pe.clone(), i);
                }
            }
        }
        out
    }

    /// Every member path, in serialisation order.
    pub fn paths(&self) -> Vec<FieldPath> {
        let mut out = Vec::new();
        let mut prefix = Vec::new();
        self.collect(&mut prefix, &mut out);
        out
    }

    fn collect(&self, prefix: &mut Vec<PathElement>, out: &mut Vec<FieldPath>) {
        if self.member && !prefix.is_empty() {
            out.push(FieldPath(prefix.clone()));
        }
        for (pe, c) in &self.children {
            prefix.push(pe.clone());
            c.collect(prefix, out);
            prefix.pop();
        }
    }

    /// Serialises to the `fieldsV1` JSON object.
    pub fn to_fields_v1(&self) -> Value {
        let mut m = Map::new();
        if self.member && !self.children.is_empty() {
            m.insert(".".to_string(), Value::Object(Map::new()));
        }
        for (pe, c) in &self.children {
            if c.is_empty() {
                continue;
            }
            m.insert(pe.to_fields_v1_key(), c.to_fields_v1());
        }
        Value::Object(m)
    }

    /// Parses a `fieldsV1` JSON object.
    pub fn from_fields_v1(v: &Value) -> Result<FieldSet, MergeError> {
        let Value::Object(m) = v else {
            return Err(MergeError::InvalidFieldsV1(
                "fieldsV1 must be a JSON object".to_string(),
            ));
        };
        let mut out = FieldSet::new();
        for (k, c) in m {
            if k == "." {
                out.member = true;
                continue;
            }
            let pe = PathElement::from_fields_v1_key(k)?;
            let mut child = FieldSet::from_fields_v1(c)?;
            let is_leaf = matches!(c, Value::Object(cm) if cm.is_empty());
            if is_leaf {
                child.member = true;
            }
            out.children.insert(pe, child);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_v1_round_trip_and_order() {
        let v = json!({
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {".": {}, "f:image": {}, "f:name": {}}},
                       "f:finalizers": {"v:\"a\"": {}}}
        });
        let s = FieldSet::from_fields_v1(&v).expect("parse");
        assert_eq!(s.to_fields_v1(), v);
        let paths: Vec<String> = s.paths().iter().map(|p| p.to_string()).collect();
        assert_eq!(
            paths,
            vec![
                ".metadata.labels",
                ".metadata.labels.app",
                ".spec.containers[name=\"nginx\"]",
                ".spec.containers[name=\"nginx\"].image",
                ".spec.containers[name=\"nginx\"].name",
                ".spec.finalizers[=\"a\"]",
            ]
        );
    }

    #[test]
    fn key_fields_are_sorted_and_compact() {
        let pe = PathElement::key(vec![
            ("protocol".to_string(), json!("TCP")),
            ("containerPort".to_string(), json!(80)),
        ]);
        assert_eq!(
            pe.to_fields_v1_key(),
            "k:{\"containerPort\":80,\"protocol\":\"TCP\"}"
        );
        assert_eq!(pe.to_string(), "[containerPort=80,protocol=\"TCP\"]");
    }

    #[test]
    fn set_operations() {
        let mut a = FieldSet::new();
        let p = |s: &[&str]| -> Vec<PathElement> {
            s.iter()
                .map(|x| PathElement::Field(x.to_string()))
                .collect()
        };
        a.insert(&p(&["spec", "replicas"]));
        a.insert(&p(&["spec", "paused"]));
        let mut b = FieldSet::new();
        b.insert(&p(&["spec", "replicas"]));
        assert!(a.difference(&b).has(&p(&["spec", "paused"])));
        assert!(!a.difference(&b).has(&p(&["spec", "replicas"])));
        assert!(a.intersection(&b).has(&p(&["spec", "replicas"])));
        assert!(!a.intersection(&b).has(&p(&["spec", "paused"])));
        assert!(a.difference(&a).is_empty());
        assert_eq!(b.union(&a), a);
    }

    #[test]
    fn invalid_fields_v1_is_an_error() {
        for bad in [json!([]), json!({"x:y": {}}), json!({"k:notjson": {}})] {
            assert!(FieldSet::from_fields_v1(&bad).is_err(), "{bad}");
        }
    }
}
