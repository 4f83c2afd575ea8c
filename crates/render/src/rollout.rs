//! Typed, validated rollout inputs for the rollout stage: a component's `rollout` trait
//! ([`RolloutTrait`]) and `AppRollout` documents ([`AppRolloutInfo`]).
//!
//! Render only checks what it can know from Git and the [`RevisionState`]: types, ranges
//! (int32s, percents within 0–100%, at most [`MAX_BATCHES`] batches), KubeVela's plan rules
//! (`default_plan` + `validate_plan`), that the revisions named exist, and whether the batches
//! add up to the size when the run is certainly a rollout: the revision rolled out to is one
//! this render creates ([`check_trait_batches`]). Otherwise the run may be a scale, whose
//! batches add up to the size change, and the rollout stage checks them (only the cluster
//! knows the current size).

use std::collections::BTreeMap;

use rollgit_core::intstr::{self, IntOrString};
use rollgit_core::kubevela::{self, KubeVelaError, RolloutBatch, RolloutPlan, RolloutStrategy};
use serde::{Serialize, Serializer};
use serde_json::{Value, json};

use crate::error::RenderError;
use crate::reader::{INT32_MAX, Reader};
use crate::render::{ApplicationInfo, Sink, SourceLocation};
use crate::revision::{AppRevision, RevisionState};
use crate::yaml::{Located, Node};

/// The trait type KubeVela's rollout trait is written with.
pub const ROLLOUT_TRAIT: &str = "rollout";
/// The most batches a rollout plan may have (`rolloutBatches`, or `numBatches` handing the size
/// out): rollgit's own limit, not KubeVela's. KubeVela's defaulting webhook allocates
/// `numBatches` batches and its batch arithmetic is quadratic in their number, so an int32
/// `numBatches` would exhaust the memory of the webhook and of rollgit alike; no real plan
/// comes near 1000.
pub const MAX_BATCHES: usize = 1000;
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

/// An `AppRollout` document (`core.oam.dev/v1beta1`), validated and resolved against the
/// app revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppRolloutInfo {
    /// `metadata.name`.
    pub name: String,
    /// `spec.sourceAppRevisionName`: an existing app revision or the one decided in this render.
    pub source_app_revision: Option<String>,
    /// `spec.targetAppRevisionName` (required): an existing app revision or the one decided in
    /// this render.
    pub target_app_revision: String,
    /// `spec.componentList` as written; empty means every component of the target app
    /// revision that has a workload.
    pub component_list: Vec<String>,
    /// `spec.rolloutPlan`, after KubeVela's defaulting (`numBatches` + `targetSize` without
    /// batches hands out the size) and validation.
    #[serde(serialize_with = "ser_plan")]
    pub plan: RolloutPlan,
    /// The components rolled, in `componentList` order (or the Application's component order
    /// when the list is empty).
    pub components: Vec<AppRolloutComponent>,
    /// Where the AppRollout is written.
    pub source: SourceLocation,
}

/// One component an [`AppRolloutInfo`] rolls, with its revisions in the source and target app
/// revisions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppRolloutComponent {
    /// Component name.
    pub component: String,
    /// Its component revision in the source app revision (`None` without a source, or when
    /// the source app revision does not have the component).
    pub source_revision: Option<String>,
    /// Its component revision in the target app revision.
    pub target_revision: String,
    /// Its component type (`clonesetservice`, `webservice`, ...).
    pub component_type: String,
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

fn ser_plan<S: Serializer>(plan: &RolloutPlan, s: S) -> Result<S::Ok, S::Error> {
    let batches: Vec<Value> = plan
        .rollout_batches
        .iter()
        .map(|b| json!({ "replicas": int_or_string_json(&b.replicas), "webhook_types": b.webhook_types }))
        .collect();
    json!({
        "rollout_strategy": plan.rollout_strategy,
        "target_size": plan.target_size,
        "num_batches": plan.num_batches,
        "rollout_batches": batches,
        "batch_partition": plan.batch_partition,
        "paused": plan.paused,
        "webhook_types": plan.webhook_types,
    })
    .serialize(s)
}

impl<'a> Reader<'a, '_> {
    /// `replicas` of a batch: an int32, or a string KubeVela reads as a percent (leniently:
    /// every `%` removed, then a base-10 integer) of at most 100%; never negative.
    fn replicas(&mut self) -> Option<IntOrString> {
        let v = self.required("replicas")?;
        let value = match &v.node {
            Node::Num(n) => match n.as_i64() {
                Some(i) if i <= INT32_MAX => IntOrString::Int(i),
                // Past int32, up to u64: an integer too large for KubeVela's `IntOrString`.
                _ if n.as_u64().is_some() => {
                    self.error_raw(
                        v.line,
                        "replicas",
                        format!(": {n} is more than {INT32_MAX} (an int32)"),
                    );
                    return None;
                }
                _ => {
                    self.error_raw(
                        v.line,
                        "replicas",
                        format!(": {n} is not an integer or percent"),
                    );
                    return None;
                }
            },
            Node::Str(s) => IntOrString::Str(s.clone()),
            other => {
                self.error_raw(
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
            Ok((n, true)) if n > 100 => {
                self.error_raw(v.line, "replicas", format!(": {value} is more than 100%"));
                None
            }
            Ok((n, _)) if n >= 0 => Some(value),
            Ok(_) => {
                self.error_raw(v.line, "replicas", format!(": {value} is negative"));
                None
            }
            Err(_) => {
                self.error_raw(
                    v.line,
                    "replicas",
                    format!(": {value} is not an integer or percent"),
                );
                None
            }
        }
    }

    /// `rolloutBatches`, empty when absent, mistyped, empty (reported unless `numBatches`) or
    /// longer than [`MAX_BATCHES`] (reported).
    fn batch_list(&mut self) -> &'a [Located] {
        let list = self.list("rolloutBatches").unwrap_or_default();
        // KubeVela requires batches when the key is there (`rolloutBatches is required`), unless
        // `numBatches` hands the size out; leaving the key out is one batch of the whole size.
        if list.is_empty()
            && self.get("numBatches").is_none()
            && let Some(v) = self.get("rolloutBatches")
            && matches!(v.node, Node::Seq(_))
        {
            let line = v.key_line;
            self.error(
                line,
                "rolloutBatches",
                "is empty: KubeVela rejects a plan without batches (leave rolloutBatches out for one batch of the whole size, or give numBatches)",
            );
        }
        if list.len() > MAX_BATCHES {
            let line = self.get("rolloutBatches").map_or(self.line, |v| v.key_line);
            self.error(
                line,
                "rolloutBatches",
                format!(
                    "has {} batches, more than {MAX_BATCHES} (rollgit's limit)",
                    list.len()
                ),
            );
            return &[];
        }
        list
    }

    /// The `type` of each webhook in the list `key`.
    fn webhook_types(&mut self, key: &str) -> Vec<String> {
        let mut out = Vec::new();
        for (i, item) in self.list(key).unwrap_or_default().iter().enumerate() {
            let k = format!("{key}[{i}]");
            if !self.is_mapping(&k, item) {
                continue;
            }
            let mut sub = self.sub(&k, item);
            let t = sub.required_string("type");
            let ok = sub.ok;
            self.ok &= ok;
            out.extend(t.map(|(t, _)| t));
        }
        out
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
    /// Where the batch rules' errors are reported: `rolloutBatches` (its field and key line),
    /// else the trait's `properties`.
    pub batches_place: (String, u32),
    /// `component "<name>": rollout trait: `.
    pub prefix: String,
}

/// Where a rule on a plan's batches is reported: the `rolloutBatches` key under `node` (the
/// plan, or a trait's properties) and its field, else `node` itself (`field`) at its key line,
/// else `fallback`.
pub(crate) fn batches_place(node: Option<&Located>, field: &str, fallback: u32) -> (String, u32) {
    match node.and_then(|n| n.get("rolloutBatches")) {
        Some(b) => (format!("{field}.rolloutBatches"), b.key_line),
        None => (field.to_owned(), node.map_or(fallback, |n| n.key_line)),
    }
}

/// KubeVela's `verifyBatchesWithRollout` (`pkg/controller/common/rollout/workloads/common.go`,
/// v1.3.10) on a plan rolled out to a new revision: the batches before the last must add up
/// (each rounded up) to less than `total`, and when the last batch is an int, all of them to
/// exactly `total`. Reported as `<prefix>rolloutBatches: <rule>` at `place`. Returns whether
/// the batches pass (an empty list passes: the executor then rolls one batch of the size).
pub(crate) fn check_batches_with_rollout(
    path: &str,
    prefix: &str,
    batches: &[IntOrString],
    total: i64,
    (field, line): &(String, u32),
    sink: &mut Sink,
) -> bool {
    if batches.is_empty() {
        return true;
    }
    match kubevela::verify_batches_with_rollout(batches, total) {
        Ok(()) => true,
        Err(e) => {
            sink.error(RenderError::new(path, *line, format!("{prefix}{e}")).with_field(field));
            false
        }
    }
}

/// The batch sum rule on a `rollout` trait, applied exactly when the trait rolls the component
/// out to a revision this render creates (`revision` is new and the trait's `targetRevision` is
/// unset or names it): no workload can run that revision yet, so rollgit's executor (as
/// KubeVela's controller) treats the run as a rollout of `targetSize` pods and checks
/// [`check_batches_with_rollout`] when it starts. Any other run may be a scale of the revision
/// already running, whose batches add up to the size change instead (`verifyBatchesWithScale`):
/// that depends on the cluster, and the executor checks it.
pub(crate) fn check_trait_batches(
    parsed: &ParsedRolloutTrait,
    revision: &str,
    revision_is_new: bool,
    sink: &mut Sink,
) -> bool {
    let r = &parsed.rollout;
    let target = r.target_revision.as_deref().unwrap_or(revision);
    if !revision_is_new || target != revision {
        return true;
    }
    check_batches_with_rollout(
        &r.source.path,
        &parsed.prefix,
        &r.rollout_batches,
        r.target_size,
        &parsed.batches_place,
        sink,
    )
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
        sep: " ",
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
            format!("must be IncreaseFirst or DecreaseFirst, got {s:?}"),
        );
    }
    let mut rollout_batches = Vec::new();
    for (i, item) in r.batch_list().iter().enumerate() {
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
    let place = batches_place(node, &field, t.line);
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
        batches_place: place,
        prefix,
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

/// A parsed AppRollout, before its app revisions are resolved.
pub(crate) struct ParsedAppRollout {
    pub info: AppRolloutInfo,
    target_line: u32,
    source_line: u32,
    /// `componentList` entries with their lines.
    list: Vec<(String, u32)>,
    /// Where the batch rules' errors are reported ([`batches_place`]).
    pub batches_place: (String, u32),
}

/// An AppRollout whose fields are read (types and ranges) but whose plan KubeVela's admission
/// webhooks have not seen yet ([`admit_rollout_plan`]).
pub(crate) struct ReadAppRollout<'a> {
    pub parsed: ParsedAppRollout,
    /// `spec.rolloutPlan`.
    pub plan_node: &'a Located,
    /// `AppRollout "<name>": `.
    pub prefix: String,
}

/// Parses and validates an AppRollout document (`name` is its `metadata.name`): its fields,
/// then KubeVela's admission of its plan.
pub(crate) fn parse_app_rollout(
    path: &str,
    doc: &Located,
    name: &str,
    sink: &mut Sink,
) -> Option<ParsedAppRollout> {
    let mut read = read_app_rollout(path, doc, name, sink)?;
    admit_rollout_plan(
        path,
        &read.prefix,
        &mut read.parsed.info.plan,
        read.plan_node,
        sink,
    )
    .then_some(read.parsed)
}

/// KubeVela's admission webhooks on a rollout plan: the defaulting webhook
/// (`DefaultRolloutBatches`: `numBatches` and `targetSize` without batches hand out the size),
/// then the validating one (`ValidateCreate`), whose error is reported at its field. Returns
/// whether the plan is admitted.
pub(crate) fn admit_rollout_plan(
    path: &str,
    prefix: &str,
    plan: &mut RolloutPlan,
    plan_node: &Located,
    sink: &mut Sink,
) -> bool {
    kubevela::default_plan(plan);
    match kubevela::validate_plan(plan) {
        Ok(()) => true,
        Err(e) => {
            let (key, line) = plan_error_place(&e, plan_node);
            sink.error(
                RenderError::new(path, line, format!("{prefix}{e}"))
                    .with_field(format!("spec.rolloutPlan.{key}")),
            );
            false
        }
    }
}

/// Reads an AppRollout document's fields; see [`parse_app_rollout`].
pub(crate) fn read_app_rollout<'a>(
    path: &str,
    doc: &'a Located,
    name: &str,
    sink: &mut Sink,
) -> Option<ReadAppRollout<'a>> {
    let prefix = format!("AppRollout \"{name}\": ");
    let spec = match doc.get("spec") {
        Some(s) if matches!(s.node, Node::Map(_)) => s,
        other => {
            let (line, what) = match other {
                Some(s) => (
                    s.line,
                    format!("must be a mapping, got {}", s.node.type_name()),
                ),
                None => (doc.line, "is required".to_owned()),
            };
            sink.error(
                RenderError::new(path, line, format!("{prefix}spec {what}")).with_field("spec"),
            );
            return None;
        }
    };
    let mut r = Reader {
        path,
        prefix: &prefix,
        sep: " ",
        field: "spec".to_owned(),
        rel: String::new(),
        node: Some(spec),
        line: spec.line,
        sink,
        ok: true,
    };
    r.warn_unknown(&[
        "sourceAppRevisionName",
        "targetAppRevisionName",
        "componentList",
        "rolloutPlan",
    ]);
    let source = r.string("sourceAppRevisionName");
    let target = r.required_string("targetAppRevisionName");
    let mut list = Vec::new();
    for (i, item) in r
        .list("componentList")
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        if let Some(entry) = r.string_of(&format!("componentList[{i}]"), item) {
            list.push(entry);
        }
    }
    let plan_node = match r.required("rolloutPlan") {
        Some(p) if matches!(p.node, Node::Map(_)) => Some(p),
        Some(p) => {
            r.error(
                p.line,
                "rolloutPlan",
                format!("must be a mapping, got {}", p.node.type_name()),
            );
            None
        }
        None => None,
    };
    let plan = plan_node.and_then(|p| {
        let mut sub = r.sub("rolloutPlan", p);
        // Plan fields are named like KubeVela's messages: `rolloutBatches[1].replicas`.
        sub.rel = String::new();
        let plan = read_plan(&mut sub);
        let ok = sub.ok;
        r.ok &= ok;
        plan
    });
    if !r.ok {
        return None;
    }
    let (plan, _) = (plan?, plan_node?);
    let (target, target_line) = target?;
    // The same node, borrowed from the document rather than from the reader.
    let plan_node = spec.get("rolloutPlan")?;
    let parsed = ParsedAppRollout {
        info: AppRolloutInfo {
            name: name.to_owned(),
            source_app_revision: source.as_ref().map(|(s, _)| s.clone()),
            target_app_revision: target,
            component_list: list.iter().map(|(c, _)| c.clone()).collect(),
            plan,
            components: Vec::new(),
            source: SourceLocation {
                path: path.to_owned(),
                line: doc.line.max(1),
            },
        },
        target_line,
        source_line: source.map_or(spec.line, |(_, l)| l),
        list,
        batches_place: batches_place(Some(plan_node), "spec.rolloutPlan", doc.line),
    };
    Some(ReadAppRollout {
        parsed,
        plan_node,
        prefix,
    })
}

/// Reads a KubeVela `rolloutPlan` mapping (types and ranges) as the AppRollout's is read:
/// `field` is its dotted field (`spec.rolloutPlan`), messages start with `prefix`.
pub(crate) fn read_rollout_plan(
    path: &str,
    prefix: &str,
    field: &str,
    node: &Located,
    sink: &mut Sink,
) -> Option<RolloutPlan> {
    if !matches!(node.node, Node::Map(_)) {
        sink.error(
            RenderError::new(
                path,
                node.line,
                format!(
                    "{prefix}rolloutPlan must be a mapping, got {}",
                    node.node.type_name()
                ),
            )
            .with_field(field),
        );
        return None;
    }
    let mut r = Reader {
        path,
        prefix,
        sep: " ",
        field: field.to_owned(),
        rel: String::new(),
        node: Some(node),
        line: node.line,
        sink,
        ok: true,
    };
    read_plan(&mut r)
}

/// Reads `spec.rolloutPlan` (types and ranges; KubeVela's rules are checked after).
fn read_plan(r: &mut Reader) -> Option<RolloutPlan> {
    r.warn_unknown(&[
        "rolloutStrategy",
        "targetSize",
        "numBatches",
        "rolloutBatches",
        "batchPartition",
        "paused",
        "rolloutWebhooks",
    ]);
    let rollout_strategy = r.string("rolloutStrategy").map(|(s, _)| s);
    let target_size = r.count("targetSize");
    let num_batches = r.count("numBatches");
    if let Some(n) = num_batches
        && n > MAX_BATCHES as i64
    {
        let line = r.get("numBatches").map_or(r.line, |v| v.line);
        r.error(
            line,
            "numBatches",
            format!("must be at most {MAX_BATCHES} (rollgit's limit on batches), got {n}"),
        );
    }
    let batch_partition = r.count("batchPartition");
    let paused = r.boolean("paused").unwrap_or(false);
    let webhook_types = r.webhook_types("rolloutWebhooks");
    let mut rollout_batches = Vec::new();
    for (i, item) in r.batch_list().iter().enumerate() {
        let key = format!("rolloutBatches[{i}]");
        if !r.is_mapping(&key, item) {
            continue;
        }
        let mut sub = r.sub(&key, item);
        sub.warn_unknown(&["replicas", "batchRolloutWebhooks"]);
        let replicas = sub.replicas();
        let webhook_types = sub.webhook_types("batchRolloutWebhooks");
        let ok = sub.ok;
        r.ok &= ok;
        rollout_batches.extend(replicas.map(|replicas| RolloutBatch {
            replicas,
            webhook_types,
        }));
    }
    r.ok.then_some(RolloutPlan {
        rollout_strategy,
        target_size,
        num_batches,
        rollout_batches,
        batch_partition,
        paused,
        webhook_types,
    })
}

/// The field (under `spec.rolloutPlan`) and line a `validate_plan` error is about.
fn plan_error_place(e: &KubeVelaError, plan: &Located) -> (String, u32) {
    let line_of = |key: &str| plan.get(key).map_or(plan.line, |v| v.line);
    let item = |list: &str, index: usize| {
        plan.get(list).and_then(|l| match &l.node {
            Node::Seq(items) => items.get(index),
            _ => None,
        })
    };
    let webhook_index = |list: Option<&Located>, kind: &str| -> Option<(usize, u32)> {
        let Node::Seq(items) = &list?.node else {
            return None;
        };
        items.iter().enumerate().find_map(|(i, w)| {
            (w.get("type").and_then(Located::as_str) == Some(kind)).then_some((i, w.line))
        })
    };
    match e {
        KubeVelaError::NegativeBatchPartition(_) => {
            ("batchPartition".into(), line_of("batchPartition"))
        }
        KubeVelaError::NumBatchesMismatch { .. } => ("numBatches".into(), line_of("numBatches")),
        KubeVelaError::BadStrategy(_) => ("rolloutStrategy".into(), line_of("rolloutStrategy")),
        KubeVelaError::BadBatchReplicas { index, .. } => (
            format!("rolloutBatches[{index}].replicas"),
            item("rolloutBatches", *index)
                .and_then(|b| b.get("replicas"))
                .map_or(line_of("rolloutBatches"), |v| v.line),
        ),
        KubeVelaError::BadRolloutWebhook(kind) => {
            match webhook_index(plan.get("rolloutWebhooks"), kind) {
                Some((i, line)) => (format!("rolloutWebhooks[{i}].type"), line),
                None => ("rolloutWebhooks".into(), line_of("rolloutWebhooks")),
            }
        }
        KubeVelaError::BadBatchWebhook { index, kind } => {
            let batch = item("rolloutBatches", *index);
            match webhook_index(batch.and_then(|b| b.get("batchRolloutWebhooks")), kind) {
                Some((i, line)) => (
                    format!("rolloutBatches[{index}].batchRolloutWebhooks[{i}].type"),
                    line,
                ),
                None => (
                    format!("rolloutBatches[{index}]"),
                    batch.map_or(line_of("rolloutBatches"), |b| b.line),
                ),
            }
        }
        _ => ("rolloutBatches".into(), line_of("rolloutBatches")),
    }
}

/// An app revision the render knows: existing in the cluster or decided now.
struct KnownAppRevision<'a> {
    application: &'a str,
    name: &'a str,
    number: u64,
    components: &'a BTreeMap<String, String>,
}

fn known_app_revisions<'a>(
    prev: &'a RevisionState,
    decided: &'a [AppRevision],
) -> Vec<KnownAppRevision<'a>> {
    let mut out: Vec<KnownAppRevision> = decided
        .iter()
        .map(|r| KnownAppRevision {
            application: &r.application,
            name: &r.name,
            number: r.number,
            components: &r.components,
        })
        .collect();
    for (application, revisions) in &prev.applications {
        for r in revisions {
            if !out.iter().any(|k| k.name == r.name) {
                out.push(KnownAppRevision {
                    application,
                    name: &r.name,
                    number: r.number,
                    components: &r.components,
                });
            }
        }
    }
    out.sort_by(|a, b| (a.application, a.number, a.name).cmp(&(b.application, b.number, b.name)));
    out
}

/// Resolves each AppRollout's app revisions to component revisions, checks its
/// `componentList`, and marks the components it rolls `rollout_owned`.
pub(crate) fn resolve_app_rollouts(
    parsed: Vec<ParsedAppRollout>,
    applications: &mut [ApplicationInfo],
    decided: &[AppRevision],
    prev: &RevisionState,
    sink: &mut Sink,
) -> Vec<AppRolloutInfo> {
    let known = known_app_revisions(prev, decided);
    let known_list = names_or_none(known.iter().map(|k| k.name));
    let mut out = Vec::new();
    for p in parsed {
        let mut info = p.info;
        let path = info.source.path.clone();
        let prefix = format!("AppRollout \"{}\": ", info.name);
        let mut error = |line: u32, field: &str, message: String| {
            sink.error(
                RenderError::new(&path, line, format!("{prefix}{message}"))
                    .with_field(format!("spec.{field}")),
            );
        };
        let mut ok = true;
        let find = |name: &str| known.iter().find(|k| k.name == name);
        let target = find(&info.target_app_revision);
        if target.is_none() {
            error(
                p.target_line,
                "targetAppRevisionName",
                format!(
                    "targetAppRevisionName \"{}\" is not a revision of an Application in this app (known: {known_list})",
                    info.target_app_revision
                ),
            );
            ok = false;
        }
        let source = match &info.source_app_revision {
            None => None,
            Some(name) => {
                let found = find(name);
                if found.is_none() {
                    error(
                        p.source_line,
                        "sourceAppRevisionName",
                        format!(
                            "sourceAppRevisionName \"{name}\" is not a revision of an Application in this app (known: {known_list})"
                        ),
                    );
                    ok = false;
                }
                found
            }
        };
        if let (Some(s), Some(t)) = (source, target)
            && s.application != t.application
        {
            error(
                p.source_line,
                "sourceAppRevisionName",
                format!(
                    "sourceAppRevisionName \"{}\" is a revision of Application \"{}\", but targetAppRevisionName \"{}\" is one of \"{}\"",
                    s.name, s.application, t.name, t.application
                ),
            );
            ok = false;
        }
        let app_index =
            target.and_then(|t| applications.iter().position(|a| a.name == t.application));
        if let (Some(t), None) = (target, app_index) {
            error(
                p.target_line,
                "targetAppRevisionName",
                format!(
                    "targetAppRevisionName \"{}\" is a revision of Application \"{}\", which is not in this app",
                    t.name, t.application
                ),
            );
            ok = false;
        }
        let all_components = names_or_none(
            applications
                .iter()
                .flat_map(|a| a.components.iter().map(|c| c.name.as_str())),
        );
        let mut names: Vec<String> = Vec::new();
        for (i, (c, line)) in p.list.iter().enumerate() {
            let field = format!("componentList[{i}]");
            let Some(comp) = applications
                .iter()
                .flat_map(|a| a.components.iter())
                .find(|x| &x.name == c)
            else {
                error(
                    *line,
                    &field,
                    format!(
                        "{field}: \"{c}\" is not a component of an Application in this app (components: {all_components})"
                    ),
                );
                ok = false;
                continue;
            };
            if comp.workload.is_none() {
                error(
                    *line,
                    &field,
                    format!(
                        "{field}: component \"{c}\" ({}) has no workload to roll out",
                        comp.component_type
                    ),
                );
                ok = false;
                continue;
            }
            if comp.revision.is_none() {
                // The component has errors of its own (already reported).
                ok = false;
                continue;
            }
            if let Some(t) = target
                && !t.components.contains_key(c)
            {
                error(
                    *line,
                    &field,
                    format!(
                        "{field}: component \"{c}\" is not in app revision \"{}\"",
                        t.name
                    ),
                );
                ok = false;
                continue;
            }
            names.push(c.clone());
        }
        let (Some(t), Some(ai), true) = (target, app_index, ok) else {
            continue;
        };
        if p.list.is_empty() {
            names = applications[ai]
                .components
                .iter()
                .filter(|c| c.workload.is_some() && t.components.contains_key(&c.name))
                .map(|c| c.name.clone())
                .collect();
        }
        for name in names {
            let (Some(comp), Some(target_revision)) = (
                applications[ai]
                    .components
                    .iter_mut()
                    .find(|c| c.name == name),
                t.components.get(&name),
            ) else {
                continue;
            };
            comp.rollout_owned = true;
            info.components.push(AppRolloutComponent {
                source_revision: source.and_then(|s| s.components.get(&name).cloned()),
                target_revision: target_revision.clone(),
                component_type: comp.component_type.clone(),
                component: name,
            });
        }
        // The batch sum rule, when a rolled component goes to a component revision this render
        // creates (see `check_trait_batches`) and the plan says its size.
        let is_new = |c: &AppRolloutComponent| {
            prev.components
                .get(&c.component)
                .is_none_or(|existing| existing.iter().all(|e| e.name != c.target_revision))
        };
        if let Some(total) = info.plan.target_size
            && info.components.iter().any(is_new)
            && !check_batches_with_rollout(
                &path,
                &prefix,
                &info.plan.replicas(),
                total,
                &p.batches_place,
                sink,
            )
        {
            continue;
        }
        out.push(info);
    }
    out
}
