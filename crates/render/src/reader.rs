//! Typed reading of one YAML mapping with `path:line` errors: the field reader every rollout
//! parser of render uses (the KubeVela `rollout` trait and AppRollout, Argo and Kruise
//! Rollouts), so that each field is read, and each mistake reported, in one way.

use std::fmt::Display;

use rollgit_core::intstr::IntOrString;

use crate::error::RenderError;
use crate::render::Sink;
use crate::yaml::{Located, Node};

/// The largest value of a Kubernetes `int32` field: every count, size, weight, duration and
/// `IntOrString` int of the rollout formats is one in their Go types, so a larger value cannot
/// even be decoded by their controllers (and would overflow rollgit's arithmetic).
pub(crate) const INT32_MAX: i64 = i32::MAX as i64;
/// The smallest value of an `int32` field.
pub(crate) const INT32_MIN: i64 = i32::MIN as i64;
/// The values of an `int32` field.
pub(crate) const INT32: std::ops::RangeInclusive<i64> = INT32_MIN..=INT32_MAX;

/// What a value is, for "got X" in messages: numbers and strings as written, else the type.
pub(crate) fn got(v: &Located) -> String {
    match &v.node {
        Node::Num(n) => n.to_string(),
        Node::Str(s) => format!("{s:?}"),
        other => other.type_name().to_owned(),
    }
}

/// Reads the fields of one mapping, reporting into the sink. Messages are
/// `<prefix><rel><key><sep><rule>`; fields `<field>.<key>`.
pub(crate) struct Reader<'a, 's> {
    pub path: &'a str,
    pub prefix: &'a str,
    /// Between a field's name and the rule it breaks: `" "` (`targetSize is required`, the
    /// KubeVela messages) or `": "` (`steps[0].setWeight: must be an integer`, the Argo and
    /// Kruise messages, `flavour: field: rule`).
    pub sep: &'static str,
    /// The mapping's dotted field path.
    pub field: String,
    /// The mapping's name in messages (`rolloutBatches[1].`), empty at the top.
    pub rel: String,
    pub node: Option<&'a Located>,
    /// The line for a missing key.
    pub line: u32,
    pub sink: &'s mut Sink,
    /// False once an error was reported through this reader.
    pub ok: bool,
}

impl<'a> Reader<'a, '_> {
    /// A reader of `node`, the value of `key` (a mapping or a list item such as `steps[1]`).
    pub fn sub<'b>(&'b mut self, key: &str, node: &'a Located) -> Reader<'a, 'b> {
        Reader {
            path: self.path,
            prefix: self.prefix,
            sep: self.sep,
            field: self.field_of(key),
            rel: format!("{}{key}.", self.rel),
            node: Some(node),
            line: node.line,
            sink: &mut *self.sink,
            ok: true,
        }
    }

    /// Runs `f` on a sub-reader of `node` and carries its errors over.
    pub fn within<T>(
        &mut self,
        key: &str,
        node: &'a Located,
        f: impl FnOnce(&mut Reader<'a, '_>) -> T,
    ) -> T {
        let mut sub = self.sub(key, node);
        let out = f(&mut sub);
        let ok = sub.ok;
        self.ok &= ok;
        out
    }

    /// The value of `key`, unless absent or null.
    pub fn get(&self, key: &str) -> Option<&'a Located> {
        self.node
            .and_then(|n| n.get(key))
            .filter(|v| v.node != Node::Null)
    }

    /// Whether `key` is written, even as null (`pause:`).
    pub fn has(&self, key: &str) -> bool {
        self.node.and_then(|n| n.get(key)).is_some()
    }

    /// The dotted field of `key` (`spec.strategy.canary.steps[0].setWeight`).
    pub fn field_of(&self, key: &str) -> String {
        if self.field.is_empty() {
            key.to_owned()
        } else {
            format!("{}.{key}", self.field)
        }
    }

    /// Reports `<prefix><rel><key><tail>` at `line`, `tail` as given.
    pub fn error_raw(&mut self, line: u32, key: &str, tail: impl Display) {
        self.ok = false;
        let message = format!("{}{}{key}{tail}", self.prefix, self.rel);
        self.sink
            .error(RenderError::new(self.path, line, message).with_field(self.field_of(key)));
    }

    /// Reports that `key` breaks `rule`, at `line`.
    pub fn error(&mut self, line: u32, key: &str, rule: impl Display) {
        let sep = self.sep;
        self.error_raw(line, key, format!("{sep}{rule}"));
    }

    /// Records that `key` is something rollgit's executor does not run (`rule` says what), at
    /// `line`: an error only when rollgit is the controller, so the reading goes on.
    pub fn unsupported(&mut self, line: u32, key: &str, rule: impl Display) {
        let message = format!("{}{}{key}{}{rule}", self.prefix, self.rel, self.sep);
        self.sink
            .unsupported
            .push(RenderError::new(self.path, line, message).with_field(self.field_of(key)));
    }

    /// Rejects every key of the mapping that is not in `known` (what the upstream CRD's schema
    /// refuses: a typo is an error at its line, never a silently ignored field).
    pub fn reject_unknown(&mut self, known: &[&str]) {
        let Some(Located {
            node: Node::Map(entries),
            ..
        }) = self.node
        else {
            return;
        };
        let unknown: Vec<(String, u32)> = entries
            .iter()
            .filter(|(k, _)| !known.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.key_line))
            .collect();
        for (k, line) in unknown {
            self.error(
                line,
                &k,
                format!("unknown field (known: {})", known.join(", ")),
            );
        }
    }

    /// Warns about every key of the mapping that is not in `known`.
    pub fn warn_unknown(&mut self, known: &[&str]) {
        let Some(Located {
            node: Node::Map(entries),
            ..
        }) = self.node
        else {
            return;
        };
        for (k, v) in entries {
            if !known.contains(&k.as_str()) {
                let message = format!(
                    "{}{}{k} is not supported by rollgit and is ignored",
                    self.prefix, self.rel
                );
                self.sink.warn(
                    RenderError::new(self.path, v.line, message).with_field(self.field_of(k)),
                );
            }
        }
    }

    /// The value of `key`, reported when absent.
    pub fn required(&mut self, key: &str) -> Option<&'a Located> {
        let v = self.get(key);
        if v.is_none() {
            self.error(self.line, key, "is required");
        }
        v
    }

    pub fn string_of(&mut self, key: &str, v: &Located) -> Option<(String, u32)> {
        match v.as_str() {
            Some(s) => Some((s.to_owned(), v.line)),
            None => {
                self.error(
                    v.line,
                    key,
                    format!("must be a string, got {}", v.node.type_name()),
                );
                None
            }
        }
    }

    /// An optional string, with its line.
    pub fn string(&mut self, key: &str) -> Option<(String, u32)> {
        let v = self.get(key)?;
        self.string_of(key, v)
    }

    /// A required string, with its line.
    pub fn required_string(&mut self, key: &str) -> Option<(String, u32)> {
        let v = self.required(key)?;
        self.string_of(key, v)
    }

    fn count_of(&mut self, key: &str, v: &Located) -> Option<i64> {
        match &v.node {
            Node::Num(n) if n.as_i64().is_some_and(|i| (0..=INT32_MAX).contains(&i)) => n.as_i64(),
            Node::Num(n) if n.as_i64().is_some_and(|i| i > INT32_MAX) || n.as_u64().is_some() => {
                self.error(
                    v.line,
                    key,
                    format!("must be at most {INT32_MAX} (an int32), got {n}"),
                );
                None
            }
            _ => {
                self.error(
                    v.line,
                    key,
                    format!("must be an integer >= 0, got {}", got(v)),
                );
                None
            }
        }
    }

    /// An optional integer from 0 to [`INT32_MAX`].
    pub fn count(&mut self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        self.count_of(key, v)
    }

    /// A required integer from 0 to [`INT32_MAX`].
    pub fn required_count(&mut self, key: &str) -> Option<i64> {
        let v = self.required(key)?;
        self.count_of(key, v)
    }

    /// Reports an integer outside int32 at `v`'s key line.
    fn int32_range_error(&mut self, key: &str, v: &Located, n: &serde_json::Number) {
        self.error(
            v.key_line,
            key,
            format!("must be an int32 (from {INT32_MIN} to {INT32_MAX}), got {n}"),
        );
    }

    /// An optional integer, any sign within int32 (the rules of the format check its range).
    pub fn int(&mut self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        match &v.node {
            Node::Num(n) if n.as_i64().is_some_and(|i| INT32.contains(&i)) => n.as_i64(),
            Node::Num(n) if n.as_i64().is_some() || n.as_u64().is_some() => {
                self.int32_range_error(key, v, n);
                None
            }
            _ => {
                self.error(
                    v.key_line,
                    key,
                    format!("must be an integer, got {}", got(v)),
                );
                None
            }
        }
    }

    /// An optional int-or-string (`maxSurge: 1`, `replicas: "20%"`), as written: what the
    /// string means is the format's rule; the int is an int32, as in `intstr.IntOrString`.
    pub fn int_or_string(&mut self, key: &str) -> Option<IntOrString> {
        let v = self.get(key)?;
        match &v.node {
            Node::Num(n) if n.as_i64().is_some_and(|i| INT32.contains(&i)) => {
                n.as_i64().map(IntOrString::Int)
            }
            Node::Num(n) if n.as_i64().is_some() || n.as_u64().is_some() => {
                self.int32_range_error(key, v, n);
                None
            }
            Node::Str(s) => Some(IntOrString::Str(s.clone())),
            _ => {
                self.error(
                    v.key_line,
                    key,
                    format!("must be an integer or a string, got {}", got(v)),
                );
                None
            }
        }
    }

    /// An optional boolean.
    pub fn boolean(&mut self, key: &str) -> Option<bool> {
        let v = self.get(key)?;
        match v.node {
            Node::Bool(b) => Some(b),
            _ => {
                self.error(
                    v.line,
                    key,
                    format!("must be a boolean, got {}", v.node.type_name()),
                );
                None
            }
        }
    }

    /// An optional list.
    pub fn list(&mut self, key: &str) -> Option<&'a [Located]> {
        let v = self.get(key)?;
        match &v.node {
            Node::Seq(items) => Some(items),
            _ => {
                self.error(
                    v.line,
                    key,
                    format!("must be a list, got {}", v.node.type_name()),
                );
                None
            }
        }
    }

    /// An optional mapping.
    pub fn mapping(&mut self, key: &str) -> Option<&'a Located> {
        let v = self.get(key)?;
        self.is_mapping(key, v).then_some(v)
    }

    /// Whether list item or value `key` (`rolloutBatches[1]`) is a mapping; reports it when not.
    pub fn is_mapping(&mut self, key: &str, item: &Located) -> bool {
        if matches!(item.node, Node::Map(_)) {
            return true;
        }
        self.error(
            item.line,
            key,
            format!("must be a mapping, got {}", item.node.type_name()),
        );
        false
    }
}
