//! A YAML value tree that remembers the line of every node and every map key.
//!
//! The plan parser reads manifests through this tree so that every field error can be
//! reported as `LINE: field: message`, as the CLI prints `FILE:LINE: message`.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;
use std::fmt;

/// One YAML node with the 1-based line it starts on (0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// 1-based line of the node.
    pub line: u64,
    /// The node's value.
    pub kind: NodeKind,
}

/// The value of a [`Node`].
#[derive(Debug, Clone, PartialEq)]
pub enum NodeKind {
    /// `~`, `null` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer that fits in `i64`.
    Int(i64),
    /// A float (or an integer too large for `i64`).
    Float(f64),
    /// A string.
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in document order; each entry keeps the line of its key.
    Map(Vec<Entry>),
}

/// One `key: value` entry of a mapping.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key, as a string.
    pub key: String,
    /// 1-based line of the key.
    pub key_line: u64,
    /// The value.
    pub value: Node,
}

/// A YAML syntax error with its line.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("invalid YAML: {message}")]
pub struct YamlError {
    /// 1-based line, 0 when the parser did not report one.
    pub line: u64,
    /// The parser's message.
    pub message: String,
}

impl Node {
    /// Look up `key` in a mapping node.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        match &self.kind {
            NodeKind::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// Follow a path of keys through nested mappings.
    pub fn path(&self, keys: &[&str]) -> Option<&Entry> {
        let (first, rest) = keys.split_first()?;
        let mut entry = self.get(first)?;
        for k in rest {
            entry = entry.value.get(k)?;
        }
        Some(entry)
    }

    /// The string value, if this is a string node.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            NodeKind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// True for `null` / empty values.
    pub fn is_null(&self) -> bool {
        matches!(self.kind, NodeKind::Null)
    }

    /// A short name of the node's type, for error messages.
    pub fn type_name(&self) -> &'static str {
        match &self.kind {
            NodeKind::Null => "null",
            NodeKind::Bool(_) => "bool",
            NodeKind::Int(_) => "int",
            NodeKind::Float(_) => "float",
            NodeKind::Str(_) => "string",
            NodeKind::Seq(_) => "sequence",
            NodeKind::Map(_) => "mapping",
        }
    }
}

/// Parse every document of a multi-document YAML text. Empty documents are dropped.
///
/// ```
/// use rollgit_core::yaml::{parse_documents, NodeKind};
/// let docs = parse_documents("a: 1\n---\nb:\n  c: x\n").unwrap();
/// assert_eq!(docs.len(), 2);
/// let c = docs[1].path(&["b", "c"]).unwrap();
/// assert_eq!(c.key_line, 4);
/// assert_eq!(c.value.kind, NodeKind::Str("x".into()));
/// ```
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let docs: Vec<Node> = serde_saphyr::from_multiple(text).map_err(|e| YamlError {
        line: e.location().map(|l| l.line()).unwrap_or(0),
        message: first_line(&e.to_string()),
    })?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or("").trim().to_string()
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Spanned::<NodeKind>::deserialize(d)?;
        Ok(Node {
            line: s.referenced.line(),
            kind: s.value,
        })
    }
}

/// A map key: any scalar, kept as a string.
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match NodeKind::deserialize(d)? {
            NodeKind::Str(s) => Ok(Key(s)),
            NodeKind::Int(i) => Ok(Key(i.to_string())),
            NodeKind::Bool(b) => Ok(Key(b.to_string())),
            NodeKind::Float(f) => Ok(Key(f.to_string())),
            NodeKind::Null => Ok(Key(String::new())),
            NodeKind::Seq(_) | NodeKind::Map(_) => {
                Err(de::Error::custom("a mapping key must be a scalar"))
            }
        }
    }
}

struct KindVisitor;

impl<'de> Visitor<'de> for KindVisitor {
    type Value = NodeKind;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeKind, E> {
        Ok(NodeKind::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeKind, E> {
        Ok(NodeKind::Int(v))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<NodeKind, E> {
        Ok(i64::try_from(v).map_or(NodeKind::Float(v as f64), NodeKind::Int))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeKind, E> {
        Ok(i64::try_from(v).map_or(NodeKind::Float(v as f64), NodeKind::Int))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<NodeKind, E> {
        Ok(i64::try_from(v).map_or(NodeKind::Float(v as f64), NodeKind::Int))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeKind, E> {
        Ok(NodeKind::Float(v))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v.to_string()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<NodeKind, E> {
        Ok(NodeKind::Str(v))
    }
    fn visit_unit<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<NodeKind, E> {
        Ok(NodeKind::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<NodeKind, D::Error> {
        NodeKind::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeKind, A::Error> {
        let mut out = Vec::new();
        while let Some(n) = seq.next_element::<Node>()? {
            out.push(n);
        }
        Ok(NodeKind::Seq(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeKind, A::Error> {
        let mut out = Vec::new();
        while let Some(k) = map.next_key::<Spanned<Key>>()? {
            let value = map.next_value::<Node>()?;
            out.push(Entry {
                key: k.value.0,
                key_line: k.referenced.line(),
                value,
            });
        }
        Ok(NodeKind::Map(out))
    }
}

impl<'de> Deserialize<'de> for NodeKind {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(KindVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_keys_and_values() {
        let docs = parse_documents("kind: X\nspec:\n  steps:\n  - setWeight: 10\n  - pause: {}\n")
            .unwrap();
        let steps = docs[0].path(&["spec", "steps"]).unwrap();
        assert_eq!(steps.key_line, 3);
        let NodeKind::Seq(items) = &steps.value.kind else {
            panic!("not a seq")
        };
        assert_eq!(items[0].get("setWeight").unwrap().key_line, 4);
        assert_eq!(items[1].get("pause").unwrap().key_line, 5);
    }

    #[test]
    fn scalars_keep_their_types() {
        let docs = parse_documents("a: 50%\nb: 10\nc: \"10\"\nd: 1h\ne:\nf: true\n").unwrap();
        let d = &docs[0];
        assert_eq!(d.get("a").unwrap().value.kind, NodeKind::Str("50%".into()));
        assert_eq!(d.get("b").unwrap().value.kind, NodeKind::Int(10));
        assert_eq!(d.get("c").unwrap().value.kind, NodeKind::Str("10".into()));
        assert_eq!(d.get("d").unwrap().value.kind, NodeKind::Str("1h".into()));
        assert_eq!(d.get("e").unwrap().value.kind, NodeKind::Null);
        assert_eq!(d.get("f").unwrap().value.kind, NodeKind::Bool(true));
    }

    #[test]
    fn syntax_error_has_a_line() {
        let err = parse_documents("a: 1\nb: [1, 2\nc: 3\n").unwrap_err();
        assert!(err.line >= 2, "{err:?}");
    }

    #[test]
    fn empty_documents_are_dropped() {
        let docs = parse_documents("---\na: 1\n---\n---\nb: 2\n").unwrap();
        assert_eq!(docs.len(), 2);
    }
}
