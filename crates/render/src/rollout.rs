//! Typed, validated rollout inputs for the rollout stage: a component's `rollout` trait
//! ([`RolloutTrait`]).
//!
//! Render only checks what it can know from Git and the revision state: types, ranges, and
//! that the revisions named exist. Whether the batches add up to the size is checked by the rollout stage (for a scale
//! it depends on the cluster's current size).

use std::fmt::Display;

use rollgit_core::intstr::{self, IntOrString};
use rollgit_core::kubevela::RolloutStrategy;
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::error::RenderError;
use crate::render::{Sink, SourceLocation};
use crate::yaml::{Located, Node};

/// The trait type KubeVela's rollout trait is written with.
pub const ROLLOUT_TRAIT: &str = "rollout";
/// Application annotation (value `"true"`): every component's workload is owned by an
/// AppRollout (KubeVela v1.0/v1.1's rollout template).
pub const ROLLOUT_TEMPLATE_ANNOTATION: &str = "app.oam.dev/rollout-template";

/// A component's `rollout` trait (`standard.oam.dev` Rollout, ROLLOUT-SEMANTICS.md C.4),
/// validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RolloutTrait {
    /// `properties.targetRevision`: the component revision to roll to (a rollback when it is
    /// not the latest). `None` means the revision decided in this render
    /// ([`crate::ComponentInfo::revision`]). Always a revision of this component.
    pub target_revision: Option<String>,
    /// `properties.targetSize` (required, ≥ 0).
    pub target_size: i64,
    /// `properties.rolloutBatches[].replicas`: ints, or strings read as lenient KubeVela
    /// percents (`"50%"`; `"30"` is 30%). Empty when not written (a scale without batches).
    /// Serialised as the int or the string.
    #[serde(serialize_with = "ser_int_or_strings")]
    pub rollout_batches: Vec<IntOrString>,
    /// `properties.batchPartition` (≥ 0): 0-based index of the last batch allowed to roll.
    pub batch_partition: Option<i64>,
    /// `properties.rolloutStrategy` as written (`IncreaseFirst` or `DecreaseFirst`); `None`
    /// means `IncreaseFirst`, which the trait renders.
    pub rollout_strategy: Option<String>,
    /// Where the trait is written (its `- type: rollout` entry).
    pub source: SourceLocation,
}

impl RolloutTrait {
    /// The strategy, `IncreaseFirst` when not written.
    pub fn strategy(&self) -> RolloutStrategy {
        RolloutStrategy::parse(self.rollout_strategy.as_deref()).unwrap_or_default()
    }
}

fn int_or_string_json(v: &IntOrString) -> Value {
    match v {
        IntOrString::Int(i) => json!(i),
        IntOrString::Str(s) => json!(s),
    }
}

fn ser_int_or_strings<S: Serializer>(v: &[IntOrString], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(int_or_string_json))
}

/// What a value is, for "got X" in messages: numbers and strings as written, else the type.
fn got(v: &Located) -> String {
    match &v.node {
        Node::Num(n) => n.to_string(),
        Node::Str(s) => format!("{s:?}"),
        other => other.type_name().to_owned(),
    }
}

/// Reads the fields of one mapping, reporting into the sink. Messages are
/// `<prefix><rel><key><tail>`; fields `<field>.<key>`.
struct Reader<'a, 's> {
    path: &'a str,
    prefix: &'a str,
    /// The mapping's dotted field path.
    field: String,
    /// The mapping's name in messages (`rolloutBatches[1].`), empty at the top.
    rel: String,
    node: Option<&'a Located>,
    /// The line for a missing key.
    line: u32,
    sink: &'s mut Sink,
    ok: bool,
}

impl<'a> Reader<'a, '_> {
    fn sub<'b>(&'b mut self, key: &str, node: &'a Located) -> Reader<'a, 'b> {
        Reader {
            path: self.path,
            prefix: self.prefix,
            field: format!("{}.{key}", self.field),
            rel: format!("{}{key}.", self.rel),
            node: Some(node),
            line: node.line,
            sink: &mut *self.sink,
            ok: true,
        }
    }

    fn get(&self, key: &str) -> Option<&'a Located> {
        self.node
            .and_then(|n| n.get(key))
            .filter(|v| v.node != Node::Null)
    }

    fn error(&mut self, line: u32, key: &str, tail: impl Display) {
        self.ok = false;
        let message = format!("{}{}{key}{tail}", self.prefix, self.rel);
        self.sink.error(
            RenderError::new(self.path, line, message).with_field(format!("{}.{key}", self.field)),
        );
    }

    fn warn_unknown(&mut self, known: &[&str]) {
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
                    RenderError::new(self.path, v.line, message)
                        .with_field(format!("{}.{k}", self.field)),
                );
            }
        }
    }

    fn required(&mut self, key: &str) -> Option<&'a Located> {
        let v = self.get(key);
        if v.is_none() {
            self.error(self.line, key, " is required");
        }
        v
    }

    fn string_of(&mut self, key: &str, v: &Located) -> Option<(String, u32)> {
        match v.as_str() {
            Some(s) => Some((s.to_owned(), v.line)),
            None => {
                self.error(
                    v.line,
                    key,
                    format!(" must be a string, got {}", v.node.type_name()),
                );
                None
            }
        }
    }

    fn string(&mut self, key: &str) -> Option<(String, u32)> {
        let v = self.get(key)?;
        self.string_of(key, v)
    }

    fn int_of(&mut self, key: &str, v: &Located) -> Option<i64> {
        match &v.node {
            Node::Num(n) if n.as_i64().is_some_and(|i| i >= 0) => n.as_i64(),
            _ => {
                self.error(
                    v.line,
                    key,
                    format!(" must be an integer >= 0, got {}", got(v)),
                );
                None
            }
        }
    }

    /// An optional integer ≥ 0.
    fn count(&mut self, key: &str) -> Option<i64> {
        let v = self.get(key)?;
        self.int_of(key, v)
    }

    fn required_count(&mut self, key: &str) -> Option<i64> {
        let v = self.required(key)?;
        self.int_of(key, v)
    }

    fn list(&mut self, key: &str) -> Option<&'a [Located]> {
        let v = self.get(key)?;
        match &v.node {
            Node::Seq(items) => Some(items),
            _ => {
                self.error(
                    v.line,
                    key,
                    format!(" must be a list, got {}", v.node.type_name()),
                );
                None
            }
        }
    }

    /// Whether list item `key` (`rolloutBatches[1]`) is a mapping; reports it when not.
    fn is_mapping(&mut self, key: &str, item: &Located) -> bool {
        if matches!(item.node, Node::Map(_)) {
            return true;
        }
        self.error(
            item.line,
            key,
            format!(" must be a mapping, got {}", item.node.type_name()),
        );
        false
    }

    /// `replicas` of a batch: an int, or a string KubeVela reads as a percent (leniently: every
    /// `%` removed, then a base-10 integer); never negative.
    fn replicas(&mut self) -> Option<IntOrString> {
        let v = self.required("replicas")?;
        let value = match &v.node {
            Node::Num(n) => match n.as_i64() {
                Some(i) => IntOrString::Int(i),
                None => {
                    self.error(
                        v.line,
                        "replicas",
                        format!(": {n} is not an integer or percent"),
                    );
                    return None;
                }
            },
            Node::Str(s) => IntOrString::Str(s.clone()),
            other => {
                self.error(
                    v.line,
                    "replicas",
                    format!(
                        ": must be an integer or a percent, got {}",
                        other.type_name()
                    ),
                );
                return None;
            }
        };
        match intstr::lenient_parts(&value) {
            Ok((n, _)) if n >= 0 => Some(value),
            Ok(_) => {
                self.error(v.line, "replicas", format!(": {value} is negative"));
                None
            }
            Err(_) => {
                self.error(
                    v.line,
                    "replicas",
                    format!(": {value} is not an integer or percent"),
                );
                None
            }
        }
    }
}

/// A parsed `rollout` trait and where its `targetRevision` is, checked once the component's
/// revision is decided ([`check_target_revision`]).
pub(crate) struct ParsedRolloutTrait {
    pub rollout: RolloutTrait,
    /// The trait's field (`spec.components[0].traits[0]`).
    pub trait_field: String,
    pub target_revision_line: u32,
    pub target_revision_field: String,
}

/// Parses the first trait of `type: rollout` among `traits` (a second one is an error).
/// `comp_field` is the component's field (`spec.components[0]`).
pub(crate) fn parse_rollout_trait(
    path: &str,
    comp_field: &str,
    comp: &str,
    traits: &[Located],
    sink: &mut Sink,
) -> Option<ParsedRolloutTrait> {
    let mut found: Option<(usize, &Located)> = None;
    for (j, t) in traits.iter().enumerate() {
        if t.get("type").and_then(Located::as_str) != Some(ROLLOUT_TRAIT) {
            continue;
        }
        match found {
            Some((_, first)) => sink.error(
                RenderError::new(
                    path,
                    t.line,
                    format!(
                        "component \"{comp}\": more than one rollout trait (the first is at line {})",
                        first.line
                    ),
                )
                .with_field(format!("{comp_field}.traits[{j}]")),
            ),
            None => found = Some((j, t)),
        }
    }
    let (j, t) = found?;
    let prefix = format!("component \"{comp}\": rollout trait: ");
    let field = format!("{comp_field}.traits[{j}].properties");
    let props = t.get("properties");
    if let Some(p) = props
        && !matches!(p.node, Node::Map(_) | Node::Null)
    {
        sink.error(
            RenderError::new(
                path,
                p.line,
                format!(
                    "{prefix}properties must be a mapping, got {}",
                    p.node.type_name()
                ),
            )
            .with_field(field),
        );
        return None;
    }
    let node = props.filter(|p| matches!(p.node, Node::Map(_)));
    let mut r = Reader {
        path,
        prefix: &prefix,
        field: field.clone(),
        rel: String::new(),
        node,
        line: node.map_or(t.line, |p| p.line),
        sink,
        ok: true,
    };
    r.warn_unknown(&[
        "targetRevision",
        "targetSize",
        "rolloutBatches",
        "batchPartition",
        "rolloutStrategy",
    ]);
    let target_revision = r.string("targetRevision");
    let target_size = r.required_count("targetSize");
    let batch_partition = r.count("batchPartition");
    let rollout_strategy = r.string("rolloutStrategy");
    if let Some((s, line)) = &rollout_strategy
        && RolloutStrategy::parse(Some(s)).is_err()
    {
        r.error(
            *line,
            "rolloutStrategy",
            format!(" must be IncreaseFirst or DecreaseFirst, got {s:?}"),
        );
    }
    let mut rollout_batches = Vec::new();
    for (i, item) in r
        .list("rolloutBatches")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let key = format!("rolloutBatches[{i}]");
        if !r.is_mapping(&key, item) {
            continue;
        }
        let mut sub = r.sub(&key, item);
        sub.warn_unknown(&["replicas"]);
        let replicas = sub.replicas();
        let ok = sub.ok;
        r.ok &= ok;
        rollout_batches.extend(replicas);
    }
    if !r.ok {
        return None;
    }
    let target_revision_line = target_revision.as_ref().map_or(t.line, |(_, l)| *l);
    Some(ParsedRolloutTrait {
        rollout: RolloutTrait {
            target_revision: target_revision.map(|(s, _)| s),
            target_size: target_size?,
            rollout_batches,
            batch_partition,
            rollout_strategy: rollout_strategy.map(|(s, _)| s),
            source: SourceLocation {
                path: path.to_owned(),
                line: t.line.max(1),
            },
        },
        trait_field: format!("{comp_field}.traits[{j}]"),
        target_revision_line,
        target_revision_field: format!("{field}.targetRevision"),
    })
}

/// Checks that the trait's `targetRevision` names a revision of the component: one of
/// `known` (`(number, name)`: the existing ones and the one decided in this render).
pub(crate) fn check_target_revision(
    parsed: &ParsedRolloutTrait,
    comp: &str,
    known: &[(u64, String)],
    sink: &mut Sink,
) {
    let Some(target) = &parsed.rollout.target_revision else {
        return;
    };
    if known.iter().any(|(_, n)| n == target) {
        return;
    }
    let mut known = known.to_vec();
    known.sort();
    known.dedup();
    let list = names_or_none(known.iter().map(|(_, n)| n.as_str()));
    sink.error(
        RenderError::new(
            &parsed.rollout.source.path,
            parsed.target_revision_line,
            format!(
                "component \"{comp}\": rollout trait: targetRevision \"{target}\" is not a revision of component \"{comp}\" (known: {list})"
            ),
        )
        .with_field(parsed.target_revision_field.clone()),
    );
}

fn names_or_none<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = names.collect();
    if v.is_empty() {
        "none".to_owned()
    } else {
        v.join(", ")
    }
}
