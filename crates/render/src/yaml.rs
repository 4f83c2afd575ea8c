//! YAML (and JSON) parsing into a tree that remembers the line of every node.
//!
//! serde-saphyr reports locations through [`serde_saphyr::Spanned`]; [`Located`] wraps every
//! node in one so that later stages can say `path:line: message` for any field.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use serde_saphyr::{MessageFormatter, Spanned};

/// A YAML node and the 1-based line it starts on (0 when unknown).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Located {
    pub line: u32,
    /// The line of the key this node is the value of (`steps:` for the list under it); the
    /// node's own line for documents and list items.
    pub key_line: u32,
    pub node: Node,
}

/// The value of a YAML node.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Num(Number),
    Str(String),
    Seq(Vec<Located>),
    Map(Vec<(String, Located)>),
}

impl Node {
    /// The name of this node's type, for "expected X, got Y" messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Num(n) if n.is_f64() => "a number",
            Node::Num(_) => "an integer",
            Node::Str(_) => "a string",
            Node::Seq(_) => "a list",
            Node::Map(_) => "a mapping",
        }
    }
}

impl Located {
    /// The value under `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Located> {
        match &self.node {
            Node::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// The string value of this node, if it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match &self.node {
            Node::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Converts this node into JSON, dropping the locations.
    pub fn to_json(&self) -> Value {
        match &self.node {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(*b),
            Node::Num(n) => Value::Number(n.clone()),
            Node::Str(s) => Value::String(s.clone()),
            Node::Seq(items) => Value::Array(items.iter().map(Located::to_json).collect()),
            Node::Map(entries) => {
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k.clone(), v.to_json());
                }
                Value::Object(map)
            }
        }
    }
}

/// Stack left below which a nested node is read on a new stack segment: more than one
/// nesting level of serde-saphyr and this visitor takes (about 32 KiB in a debug build).
const STACK_RED_ZONE: usize = 256 * 1024;
/// The size of each new stack segment.
const STACK_SEGMENT: usize = 4 * 1024 * 1024;

impl<'de> Deserialize<'de> for Located {
    /// Every nesting level passes here: a document as deep as the parser's depth budget allows
    /// is read on whatever stack the caller has (a 2 MiB tokio blocking thread, a test thread),
    /// growing it on the heap when it runs low instead of overflowing it.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = stacker::maybe_grow(STACK_RED_ZONE, STACK_SEGMENT, || {
            Spanned::<Node>::deserialize(deserializer)
        })?;
        let line = u32::try_from(spanned.referenced.line()).unwrap_or(u32::MAX);
        Ok(Located {
            line,
            key_line: line,
            node: spanned.value,
        })
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Bool(v))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Num(v.into()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Num(v.into()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        match i64::try_from(v) {
            Ok(i) => Ok(Node::Num(i.into())),
            Err(_) => match u64::try_from(v) {
                Ok(u) => Ok(Node::Num(u.into())),
                Err(_) => Ok(Node::Str(v.to_string())),
            },
        }
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        match u64::try_from(v) {
            Ok(u) => Ok(Node::Num(u.into())),
            Err(_) => Ok(Node::Str(v.to_string())),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        // JSON has no NaN or infinities; Kubernetes would reject them anyway.
        Ok(Number::from_f64(v).map_or(Node::Null, Node::Num))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Node, E> {
        Ok(Node::Str(String::from_utf8_lossy(v).into_owned()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Located>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Located)> = Vec::new();
        while let Some(key) = map.next_key::<Spanned<Key>>()? {
            let key_line = u32::try_from(key.referenced.line()).unwrap_or(u32::MAX);
            let key = key.value;
            let mut value = map.next_value::<Located>()?;
            value.key_line = key_line;
            // Duplicate keys are rejected by the parser; keep the last one if not.
            if let Some(slot) = entries.iter_mut().find(|(k, _)| *k == key.0) {
                slot.1 = value;
            } else {
                entries.push((key.0, value));
            }
        }
        Ok(Node::Map(entries))
    }
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

/// A mapping key: any scalar, as a string (as Kubernetes' YAML-to-JSON conversion does).
struct Key(String);

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Node::deserialize(deserializer)? {
            Node::Str(s) => Ok(Key(s)),
            Node::Bool(b) => Ok(Key(b.to_string())),
            Node::Num(n) => Ok(Key(n.to_string())),
            Node::Null => Ok(Key("null".to_owned())),
            Node::Seq(_) | Node::Map(_) => Err(de::Error::custom(
                "a mapping key must be a scalar, not a list or mapping",
            )),
        }
    }
}

/// A YAML syntax (or structure) error at a line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParseError {
    pub line: u32,
    pub message: String,
}

/// Parser options: YAML 1.1 octals (`0644`, as Kubernetes' go-yaml reads `defaultMode`), but
/// only YAML 1.2 booleans (`true`/`false`): `n`, `no`, `on` stay strings (the "Norway problem").
fn options() -> serde_saphyr::Options {
    serde_saphyr::options! {
        legacy_octal_numbers: true,
        strict_booleans: true,
        with_snippet: false,
    }
}

/// Parses every document of a YAML (or JSON) file. Empty and null documents are skipped.
pub(crate) fn parse_documents(content: &[u8]) -> Result<Vec<Located>, ParseError> {
    let text = match std::str::from_utf8(content) {
        Ok(t) => t,
        Err(e) => {
            let before = &content[..e.valid_up_to()];
            let line = before.iter().filter(|b| **b == b'\n').count() + 1;
            return Err(ParseError {
                line: u32::try_from(line).unwrap_or(u32::MAX),
                message: "file is not valid UTF-8".to_owned(),
            });
        }
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match serde_saphyr::from_multiple_with_options::<Located>(text, options()) {
        Ok(docs) => Ok(docs.into_iter().filter(|d| d.node != Node::Null).collect()),
        Err(err) => {
            let line = err
                .location()
                .map_or(1, |l| u32::try_from(l.line().max(1)).unwrap_or(u32::MAX));
            let message = serde_saphyr::DefaultMessageFormatter
                .format_message(&err)
                .chars()
                .map(|c| if c.is_control() { ' ' } else { c })
                .collect::<String>();
            Err(ParseError {
                line,
                message: format!("invalid YAML: {}", message.trim()),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_of_nested_nodes() {
        let docs = parse_documents(b"a: 1\nb:\n  c: [1, 2]\n---\n---\nx: y\n").expect("parses");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].line, 1);
        let b = docs[0].get("b").expect("b");
        assert_eq!(b.line, 3);
        assert_eq!(b.get("c").expect("c").line, 3);
        assert_eq!(docs[1].line, 6);
        assert_eq!(docs[1].get("x").expect("x").line, 6);
    }

    #[test]
    fn key_lines_of_block_values() {
        let docs = parse_documents(
            b"kind: X\nspec:\n  steps:\n  - setWeight: 10\n  - pause:\n      duration: 1h\n",
        )
        .expect("parses");
        let steps = docs[0]
            .get("spec")
            .and_then(|s| s.get("steps"))
            .expect("steps");
        assert_eq!((steps.key_line, steps.line), (3, 4));
        let Node::Seq(items) = &steps.node else {
            panic!("not a list")
        };
        assert_eq!((items[0].key_line, items[0].line), (4, 4));
        let pause = items[1].get("pause").expect("pause");
        assert_eq!((pause.key_line, pause.line), (5, 6));
        assert_eq!(pause.get("duration").expect("duration").key_line, 6);
    }

    #[test]
    fn scalars_keep_their_types_and_yaml_1_2_booleans() {
        let docs = parse_documents(b"a: 50%\nb: 10\nc: \"10\"\nd: 1h\ne:\nf: true\ng: no\n")
            .expect("parses");
        let d = &docs[0];
        let get = |k: &str| d.get(k).map(|v| v.node.clone());
        assert_eq!(get("a"), Some(Node::Str("50%".into())));
        assert_eq!(get("b"), Some(Node::Num(10.into())));
        assert_eq!(get("c"), Some(Node::Str("10".into())));
        assert_eq!(get("d"), Some(Node::Str("1h".into())));
        assert_eq!(get("e"), Some(Node::Null));
        assert_eq!(get("f"), Some(Node::Bool(true)));
        assert_eq!(get("g"), Some(Node::Str("no".into())));
    }

    #[test]
    fn empty_documents_are_dropped() {
        let docs = parse_documents(b"---\na: 1\n---\n---\nb: 2\n").expect("parses");
        assert_eq!(docs.len(), 2);
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = parse_documents(b"a: 1\nb: 2\na: 3\n").expect_err("duplicate");
        assert!(err.line >= 1, "{err:?}");
    }

    #[test]
    fn syntax_error_has_line() {
        let err = parse_documents(b"a: 1\nb: [1, 2\nc: 3\n").expect_err("bad");
        assert!(err.line >= 2, "{err:?}");
        assert!(err.message.starts_with("invalid YAML: "), "{err:?}");
    }

    /// Regression: 64 nested block mappings (within serde-saphyr's depth budget) overflowed a
    /// 2 MiB thread stack in a debug build and aborted the process; now they parse, and a
    /// deeper document is a budget error, on a thread with a small stack too.
    #[test]
    fn deep_nesting_does_not_overflow_the_stack() {
        let block = |depth: usize| -> String {
            (0..depth)
                .map(|d| format!("{}a:\n", " ".repeat(d)))
                .collect()
        };
        let flow_maps = |depth: usize| format!("a: {}1{}", "{a: ".repeat(depth), "}".repeat(depth));
        let flow_seqs = |depth: usize| format!("a: {}{}", "[".repeat(depth), "]".repeat(depth));
        // (case, document, parses)
        let rows: Vec<(&str, String, bool)> = vec![
            ("block mappings at the budget", block(64), true),
            ("flow mappings at the budget", flow_maps(63), true),
            ("flow sequences at the budget", flow_seqs(63), true),
            ("block mappings past the budget", block(200), false),
            ("flow mappings past the budget", flow_maps(5000), false),
            ("flow sequences past the budget", flow_seqs(100_000), false),
        ];
        let handle = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(move || {
                for (case, doc, parses) in rows {
                    let got = parse_documents(doc.as_bytes());
                    assert_eq!(got.is_ok(), parses, "{case}: {:?}", got.err());
                }
            })
            .expect("thread");
        handle.join().expect("no overflow, no panic");
    }

    #[test]
    fn octal_and_json() {
        let docs = parse_documents(b"mode: 0644\n").expect("parses");
        assert_eq!(docs[0].to_json(), serde_json::json!({"mode": 420}));
        let docs = parse_documents(b"{\"a\": [1, \"x\"]}").expect("parses");
        assert_eq!(docs[0].to_json(), serde_json::json!({"a": [1, "x"]}));
    }
}
