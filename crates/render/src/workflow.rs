//! KubeVela multi-cluster delivery: topology `Policy` documents and `spec.policies` entries,
//! `Workflow` documents and inline `spec.workflow` (ROLLOUT-SEMANTICS.md C.5, seed 003).
//!
//! Render reads them into a [`Delivery`] per Application (pure, `path:line` errors); the
//! clusters they name are checked against the fleet by [`resolve_delivery`], which the plan
//! stage calls with the configuration's clusters, so a commit naming an unknown cluster is
//! rejected whole before anything is applied.
//!
//! What rollgit accepts, and what it refuses (never drops):
//!
//! * **Policies**: type `topology` only, with `properties.clusters` (names), `clusterLabelSelector`
//!   (labels given to clusters in the configuration) and `namespace` (the target namespace in
//!   those clusters). `local` is the repository's own cluster. Any other policy type (override,
//!   garbage-collect, ...) is an error naming the supported one.
//! * **Workflow**: `steps` of type `deploy` (`policies`, `auto` default true, `parallelism`
//!   default 5) and `suspend` (`duration`, a Go duration as `time.ParseDuration` reads it:
//!   `1min` and a bare `10` are errors, as in KubeVela; `message`). Other step types, step
//!   fields (`if`, `dependsOn`, `timeout`, `inputs`, `outputs`, `subSteps`) and modes other than
//!   `StepByStep` are errors.
//! * An Application with `spec.workflow.ref` uses the `Workflow` of that name in its namespace
//!   (a document of the app); inline `spec.workflow.steps` are its own. Without a workflow, an
//!   Application with topology policies in `spec.policies` deploys to all of them in one step
//!   named `deploy-topology`.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::error::RenderError;
use crate::render::{Sink, SourceLocation};
use crate::yaml::{Located, Node};

/// The step types rollgit runs.
pub const STEP_TYPES: &[&str] = &["deploy", "suspend"];
/// The policy types rollgit runs.
pub const POLICY_TYPES: &[&str] = &["topology"];
/// The cluster every repository's own cluster is called in topology policies.
pub const LOCAL_CLUSTER: &str = "local";
/// The name of the one step an Application with topology policies and no workflow runs.
pub const IMPLICIT_STEP: &str = "deploy-topology";
/// KubeVela's default `parallelism` of a deploy step.
pub const DEFAULT_PARALLELISM: u32 = 5;

/// A cluster named in a topology policy, and where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClusterName {
    /// The name.
    pub name: String,
    /// Where it is written.
    pub source: SourceLocation,
}

/// A `topology` policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopologyPolicy {
    /// The policy's name.
    pub name: String,
    /// `properties.clusters`.
    pub clusters: Vec<ClusterName>,
    /// `properties.clusterLabelSelector` (every label must match).
    pub cluster_label_selector: BTreeMap<String, String>,
    /// `properties.namespace`: the namespace the app's objects go to in these clusters.
    pub namespace: Option<String>,
    /// Where the policy is written.
    pub source: SourceLocation,
}

/// What one step does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum StepSpec {
    /// Deliver the app's components to the clusters of `policies`.
    Deploy {
        /// Topology policies (names).
        policies: Vec<ClusterName>,
        /// `false`: wait for `rollgit workflow resume` before the step.
        auto: bool,
        /// How many clusters are applied at once.
        parallelism: u32,
    },
    /// Wait for a resume, or `duration`.
    Suspend {
        /// The duration as written, and in nanoseconds.
        duration: Option<(String, i64)>,
        /// Shown while suspended.
        message: Option<String>,
    },
}

/// One workflow step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StepInfo {
    /// The step's name.
    pub name: String,
    /// What it does.
    pub spec: StepSpec,
    /// Where it is written.
    pub source: SourceLocation,
}

/// How an Application is delivered to the fleet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// The Application.
    pub application: String,
    /// Its namespace.
    pub namespace: String,
    /// The workflow's steps, in order.
    pub steps: Vec<StepInfo>,
    /// The `Workflow` document used (`spec.workflow.ref`), if any.
    pub workflow_ref: Option<String>,
    /// Every topology policy the steps name, by name.
    pub policies: BTreeMap<String, TopologyPolicy>,
    /// Where the Application is written.
    pub source: SourceLocation,
}

/// A standalone `Policy` or `Workflow` document of the app.
pub(crate) struct OamDoc<'a> {
    pub path: &'a str,
    pub doc: &'a Located,
    pub name: String,
    pub namespace: String,
}

fn err(path: &str, line: u32, field: &str, message: String) -> RenderError {
    RenderError::new(path, line, message).with_field(field)
}

fn loc(path: &str, line: u32) -> SourceLocation {
    SourceLocation {
        path: path.to_owned(),
        line: line.max(1),
    }
}

/// Checks a Go duration as `time.ParseDuration` does, with Go's message on error.
pub fn check_go_duration(s: &str) -> Result<i64, String> {
    match rollgit_syntax::parse_go_duration(s) {
        Some(ns) if ns < 0 => Err(format!("invalid duration {s:?}: must not be negative")),
        Some(ns) => Ok(ns),
        None => {
            let trimmed = s.trim_start_matches(['-', '+']);
            let why = if !trimmed.is_empty()
                && trimmed.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            {
                format!("time: missing unit in duration {s:?}")
            } else {
                let unit: String = trimmed
                    .chars()
                    .skip_while(|c| c.is_ascii_digit() || *c == '.')
                    .take_while(|c| !c.is_ascii_digit() && *c != '.')
                    .collect();
                if unit.is_empty() || trimmed.is_empty() {
                    format!("time: invalid duration {s:?}")
                } else {
                    format!("time: unknown unit {unit:?} in duration {s:?}")
                }
            };
            Err(format!(
                "{why} (a Go duration: units ns, us, ms, s, m, h, such as 30s or 1h30m)"
            ))
        }
    }
}

/// A string list (`["a", "b"]`) under `field`, reporting other shapes.
fn string_list(
    path: &str,
    v: &Located,
    field: &str,
    what: &str,
    sink: &mut Sink,
) -> Option<Vec<ClusterName>> {
    let Node::Seq(items) = &v.node else {
        sink.error(err(
            path,
            v.line,
            field,
            format!(
                "{what} must be a list of strings, got {}",
                v.node.type_name()
            ),
        ));
        return None;
    };
    let mut out = Vec::new();
    let mut ok = true;
    for (i, item) in items.iter().enumerate() {
        match item.as_str() {
            Some(s) if !s.is_empty() => out.push(ClusterName {
                name: s.to_owned(),
                source: loc(path, item.line),
            }),
            _ => {
                sink.error(err(
                    path,
                    item.line,
                    &format!("{field}[{i}]"),
                    format!(
                        "{what}[{i}] must be a non-empty string, got {}",
                        item.node.type_name()
                    ),
                ));
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn unknown_fields(
    path: &str,
    node: &Located,
    known: &[&str],
    field: &str,
    what: &str,
    sink: &mut Sink,
) -> bool {
    let Node::Map(entries) = &node.node else {
        return true;
    };
    let mut ok = true;
    for (k, v) in entries {
        if !known.contains(&k.as_str()) {
            sink.error(err(
                path,
                v.key_line.max(v.line),
                &if field.is_empty() {
                    k.clone()
                } else {
                    format!("{field}.{k}")
                },
                format!(
                    "{what}: {k:?} is not supported by rollgit (supported: {})",
                    known.join(", ")
                ),
            ));
            ok = false;
        }
    }
    ok
}

/// Reads a policy (`type`, `properties`) written at `node` (a `Policy` document, or an entry of
/// `spec.policies`). `None` when it is not valid (reported).
fn parse_policy(
    path: &str,
    node: &Located,
    name: &str,
    field: &str,
    sink: &mut Sink,
) -> Option<TopologyPolicy> {
    let at = |k: &str| {
        if field.is_empty() {
            k.to_owned()
        } else {
            format!("{field}.{k}")
        }
    };
    let ptype = match node.get("type") {
        None => {
            sink.error(err(
                path,
                node.line,
                &at("type"),
                format!("policy {name:?}: missing type (supported: topology)"),
            ));
            return None;
        }
        Some(t) => match t.as_str() {
            Some(s) if POLICY_TYPES.contains(&s) => s,
            Some(s) => {
                sink.error(err(
                    path,
                    t.line,
                    &at("type"),
                    format!(
                        "policy {name:?}: unsupported policy type {s:?} (supported: {})",
                        POLICY_TYPES.join(", ")
                    ),
                ));
                return None;
            }
            None => {
                sink.error(err(
                    path,
                    t.line,
                    &at("type"),
                    format!(
                        "policy {name:?}: type must be a string, got {}",
                        t.node.type_name()
                    ),
                ));
                return None;
            }
        },
    };
    debug_assert_eq!(ptype, "topology");
    let mut policy = TopologyPolicy {
        name: name.to_owned(),
        clusters: Vec::new(),
        cluster_label_selector: BTreeMap::new(),
        namespace: None,
        source: loc(path, node.line),
    };
    let Some(props) = node.get("properties") else {
        sink.error(err(
            path,
            node.line,
            &at("properties"),
            format!("policy {name:?}: a topology policy needs properties.clusters or properties.clusterLabelSelector"),
        ));
        return None;
    };
    if !matches!(props.node, Node::Map(_)) {
        sink.error(err(
            path,
            props.line,
            &at("properties"),
            format!(
                "policy {name:?}: properties must be a mapping, got {}",
                props.node.type_name()
            ),
        ));
        return None;
    }
    let pf = at("properties");
    let mut ok = unknown_fields(
        path,
        props,
        &["clusters", "clusterLabelSelector", "namespace"],
        &pf,
        &format!("topology policy {name:?}"),
        sink,
    );
    if let Some(c) = props.get("clusters") {
        match string_list(
            path,
            c,
            &format!("{pf}.clusters"),
            &format!("policy {name:?}: clusters"),
            sink,
        ) {
            Some(list) => policy.clusters = list,
            None => ok = false,
        }
    }
    if let Some(sel) = props.get("clusterLabelSelector") {
        match &sel.node {
            Node::Map(entries) => {
                for (k, v) in entries {
                    match v.as_str() {
                        Some(s) => {
                            policy
                                .cluster_label_selector
                                .insert(k.clone(), s.to_owned());
                        }
                        None => {
                            sink.error(err(
                                path,
                                v.line,
                                &format!("{pf}.clusterLabelSelector.{k}"),
                                format!(
                                    "policy {name:?}: clusterLabelSelector values must be strings, got {}",
                                    v.node.type_name()
                                ),
                            ));
                            ok = false;
                        }
                    }
                }
            }
            other => {
                sink.error(err(
                    path,
                    sel.line,
                    &format!("{pf}.clusterLabelSelector"),
                    format!(
                        "policy {name:?}: clusterLabelSelector must be a mapping, got {}",
                        other.type_name()
                    ),
                ));
                ok = false;
            }
        }
    }
    if let Some(ns) = props.get("namespace") {
        match ns.as_str() {
            Some(s) if crate::kinds::is_dns1123_label(s) => policy.namespace = Some(s.to_owned()),
            _ => {
                sink.error(err(
                    path,
                    ns.line,
                    &format!("{pf}.namespace"),
                    format!("policy {name:?}: namespace must be a namespace name (RFC 1123 label)"),
                ));
                ok = false;
            }
        }
    }
    if ok && policy.clusters.is_empty() && policy.cluster_label_selector.is_empty() {
        sink.error(err(
            path,
            props.line,
            &pf,
            format!("policy {name:?}: a topology policy needs clusters or clusterLabelSelector"),
        ));
        ok = false;
    }
    ok.then_some(policy)
}

/// Reads the steps under `steps` (a `Workflow` document's or `spec.workflow.steps`).
fn parse_steps(path: &str, steps: &Located, field: &str, sink: &mut Sink) -> Option<Vec<StepInfo>> {
    let Node::Seq(items) = &steps.node else {
        sink.error(err(
            path,
            steps.line,
            field,
            format!(
                "workflow steps must be a list, got {}",
                steps.node.type_name()
            ),
        ));
        return None;
    };
    let mut out: Vec<StepInfo> = Vec::new();
    let mut ok = true;
    let mut names: BTreeMap<String, u32> = BTreeMap::new();
    for (i, s) in items.iter().enumerate() {
        let sf = format!("{field}[{i}]");
        if !matches!(s.node, Node::Map(_)) {
            sink.error(err(
                path,
                s.line,
                &sf,
                format!(
                    "a workflow step must be a mapping, got {}",
                    s.node.type_name()
                ),
            ));
            ok = false;
            continue;
        }
        ok &= unknown_fields(
            path,
            s,
            &["name", "type", "properties", "meta"],
            &sf,
            &format!("workflow step {i}"),
            sink,
        );
        let name = match s.get("name").and_then(Located::as_str) {
            Some(n) if !n.is_empty() => n.to_owned(),
            _ => {
                sink.error(err(
                    path,
                    s.get("name").map_or(s.line, |n| n.line),
                    &format!("{sf}.name"),
                    format!("workflow step {i} needs a name (a non-empty string)"),
                ));
                ok = false;
                continue;
            }
        };
        if let Some(first) = names.get(&name) {
            sink.error(err(
                path,
                s.line,
                &format!("{sf}.name"),
                format!("duplicate workflow step name {name:?} (also at line {first})"),
            ));
            ok = false;
            continue;
        }
        names.insert(name.clone(), s.line);
        let stype = match s.get("type") {
            Some(t) => match t.as_str() {
                Some(x) if STEP_TYPES.contains(&x) => x.to_owned(),
                Some(x) => {
                    sink.error(err(
                        path,
                        t.line,
                        &format!("{sf}.type"),
                        format!(
                            "workflow step {name:?}: unsupported step type {x:?} (supported: {})",
                            STEP_TYPES.join(", ")
                        ),
                    ));
                    ok = false;
                    continue;
                }
                None => {
                    sink.error(err(
                        path,
                        t.line,
                        &format!("{sf}.type"),
                        format!(
                            "workflow step {name:?}: type must be a string (supported: {})",
                            STEP_TYPES.join(", ")
                        ),
                    ));
                    ok = false;
                    continue;
                }
            },
            None => {
                sink.error(err(
                    path,
                    s.line,
                    &format!("{sf}.type"),
                    format!(
                        "workflow step {name:?}: missing type (supported: {})",
                        STEP_TYPES.join(", ")
                    ),
                ));
                ok = false;
                continue;
            }
        };
        let pf = format!("{sf}.properties");
        let props = s
            .get("properties")
            .filter(|p| !matches!(p.node, Node::Null));
        if let Some(p) = props
            && !matches!(p.node, Node::Map(_))
        {
            sink.error(err(
                path,
                p.line,
                &pf,
                format!(
                    "workflow step {name:?}: properties must be a mapping, got {}",
                    p.node.type_name()
                ),
            ));
            ok = false;
            continue;
        }
        let what = format!("workflow step {name:?}");
        let spec = if stype == "deploy" {
            let mut step_ok = true;
            let mut policies = Vec::new();
            let mut auto = true;
            let mut parallelism = DEFAULT_PARALLELISM;
            if let Some(p) = props {
                step_ok &= unknown_fields(
                    path,
                    p,
                    &[
                        "policies",
                        "auto",
                        "parallelism",
                        "ignoreTerraformComponent",
                    ],
                    &pf,
                    &what,
                    sink,
                );
                if let Some(v) = p.get("policies") {
                    match string_list(
                        path,
                        v,
                        &format!("{pf}.policies"),
                        &format!("{what}: policies"),
                        sink,
                    ) {
                        Some(l) => policies = l,
                        None => step_ok = false,
                    }
                }
                if let Some(v) = p.get("auto") {
                    match v.node {
                        Node::Bool(b) => auto = b,
                        _ => {
                            sink.error(err(
                                path,
                                v.line,
                                &format!("{pf}.auto"),
                                format!(
                                    "{what}: auto must be true or false, got {}",
                                    v.node.type_name()
                                ),
                            ));
                            step_ok = false;
                        }
                    }
                }
                if let Some(v) = p.get("parallelism") {
                    match &v.node {
                        Node::Num(n)
                            if n.as_u64()
                                .is_some_and(|x| (1..=i32::MAX as u64).contains(&x)) =>
                        {
                            parallelism = n.as_u64().map_or(DEFAULT_PARALLELISM, |x| x as u32);
                        }
                        _ => {
                            sink.error(err(
                                path,
                                v.line,
                                &format!("{pf}.parallelism"),
                                format!(
                                    "{what}: parallelism must be an integer from 1 to 2147483647"
                                ),
                            ));
                            step_ok = false;
                        }
                    }
                }
                if let Some(v) = p.get("ignoreTerraformComponent")
                    && !matches!(v.node, Node::Bool(_))
                {
                    sink.error(err(
                        path,
                        v.line,
                        &format!("{pf}.ignoreTerraformComponent"),
                        format!("{what}: ignoreTerraformComponent must be true or false"),
                    ));
                    step_ok = false;
                }
            }
            if !step_ok {
                ok = false;
                continue;
            }
            StepSpec::Deploy {
                policies,
                auto,
                parallelism,
            }
        } else {
            let mut step_ok = true;
            let mut duration = None;
            let mut message = None;
            if let Some(p) = props {
                step_ok &= unknown_fields(path, p, &["duration", "message"], &pf, &what, sink);
                if let Some(v) = p.get("duration") {
                    match &v.node {
                        Node::Str(d) => match check_go_duration(d) {
                            Ok(ns) => duration = Some((d.clone(), ns)),
                            Err(e) => {
                                sink.error(err(
                                    path,
                                    v.line,
                                    &format!("{pf}.duration"),
                                    format!("{what}: duration: {e}"),
                                ));
                                step_ok = false;
                            }
                        },
                        other => {
                            let shown = match other {
                                Node::Num(n) => format!(" {n}"),
                                _ => String::new(),
                            };
                            sink.error(err(
                                path,
                                v.line,
                                &format!("{pf}.duration"),
                                format!(
                                    "{what}: duration must be a Go duration string such as \"30s\" or \"1h30m\", got {}{shown} (a bare number has no unit)",
                                    other.type_name()
                                ),
                            ));
                            step_ok = false;
                        }
                    }
                }
                if let Some(v) = p.get("message") {
                    match v.as_str() {
                        Some(m) => message = Some(m.to_owned()),
                        None => {
                            sink.error(err(
                                path,
                                v.line,
                                &format!("{pf}.message"),
                                format!(
                                    "{what}: message must be a string, got {}",
                                    v.node.type_name()
                                ),
                            ));
                            step_ok = false;
                        }
                    }
                }
            }
            if !step_ok {
                ok = false;
                continue;
            }
            StepSpec::Suspend { duration, message }
        };
        out.push(StepInfo {
            name,
            spec,
            source: loc(path, s.line),
        });
    }
    if ok && out.is_empty() {
        sink.error(err(
            path,
            steps.line,
            field,
            "a workflow needs at least one step".into(),
        ));
        return None;
    }
    ok.then_some(out)
}

/// Reads a standalone `Workflow` document's steps.
fn workflow_doc_steps(w: &OamDoc<'_>, sink: &mut Sink) -> Option<Vec<StepInfo>> {
    let mut ok = unknown_fields(
        w.path,
        w.doc,
        &["apiVersion", "kind", "metadata", "steps", "mode"],
        "",
        &format!("Workflow {:?}", w.name),
        sink,
    );
    ok &= check_mode(w.path, w.doc.get("mode"), "mode", sink);
    let Some(steps) = w.doc.get("steps") else {
        sink.error(err(
            w.path,
            w.doc.line,
            "steps",
            format!("Workflow {:?}: missing steps", w.name),
        ));
        return None;
    };
    let steps = parse_steps(w.path, steps, "steps", sink)?;
    ok.then_some(steps)
}

/// `mode: {steps: StepByStep}` is what rollgit runs; DAG is refused.
fn check_mode(path: &str, mode: Option<&Located>, field: &str, sink: &mut Sink) -> bool {
    let Some(mode) = mode.filter(|m| !matches!(m.node, Node::Null)) else {
        return true;
    };
    let Node::Map(entries) = &mode.node else {
        sink.error(err(
            path,
            mode.line,
            field,
            format!(
                "workflow mode must be a mapping, got {}",
                mode.node.type_name()
            ),
        ));
        return false;
    };
    let mut ok = true;
    for (k, v) in entries {
        let good = matches!(k.as_str(), "steps" | "subSteps") && v.as_str() == Some("StepByStep");
        if !good {
            sink.error(err(
                path,
                v.line,
                &format!("{field}.{k}"),
                format!("workflow mode {k}: {:?} is not supported by rollgit (supported: steps: StepByStep)", v.as_str().unwrap_or("?")),
            ));
            ok = false;
        }
    }
    ok
}

/// Reads the delivery of one Application: its topology policies and workflow. `spec` is the
/// Application's spec; `policy_docs` and `workflow_docs` the app's `Policy` and `Workflow`
/// documents. `None` when the Application has neither a workflow nor a topology policy, or
/// when something is wrong (reported).
pub(crate) fn parse_delivery(
    path: &str,
    app: &Located,
    application: &str,
    namespace: &str,
    policy_docs: &[OamDoc<'_>],
    workflow_docs: &[OamDoc<'_>],
    sink: &mut Sink,
) -> Option<Delivery> {
    let spec = app.get("spec")?;
    let errors_before = sink.errors.len();
    // Inline policies.
    let mut inline: BTreeMap<String, TopologyPolicy> = BTreeMap::new();
    if let Some(p) = spec
        .get("policies")
        .filter(|p| !matches!(p.node, Node::Null))
    {
        match &p.node {
            Node::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    let f = format!("spec.policies[{i}]");
                    if !matches!(item.node, Node::Map(_)) {
                        sink.error(err(
                            path,
                            item.line,
                            &f,
                            format!("a policy must be a mapping, got {}", item.node.type_name()),
                        ));
                        continue;
                    }
                    unknown_fields(
                        path,
                        item,
                        &["name", "type", "properties"],
                        &f,
                        &format!("policy {i}"),
                        sink,
                    );
                    let Some(name) = item
                        .get("name")
                        .and_then(Located::as_str)
                        .filter(|n| !n.is_empty())
                    else {
                        sink.error(err(
                            path,
                            item.line,
                            &format!("{f}.name"),
                            format!("policy {i} needs a name"),
                        ));
                        continue;
                    };
                    if inline.contains_key(name) {
                        sink.error(err(
                            path,
                            item.line,
                            &format!("{f}.name"),
                            format!("duplicate policy name {name:?}"),
                        ));
                        continue;
                    }
                    if let Some(tp) = parse_policy(path, item, name, &f, sink) {
                        inline.insert(name.to_owned(), tp);
                    }
                }
            }
            other => {
                sink.error(err(
                    path,
                    p.line,
                    "spec.policies",
                    format!("spec.policies must be a list, got {}", other.type_name()),
                ));
            }
        }
    }
    // Standalone policies of the Application's namespace.
    let standalone = |name: &str, sink: &mut Sink| -> Option<TopologyPolicy> {
        let d = policy_docs
            .iter()
            .find(|d| d.name == name && d.namespace == namespace)?;
        parse_policy(d.path, d.doc, name, "", sink)
    };
    // The workflow.
    let mut workflow_ref = None;
    let steps: Option<Vec<StepInfo>> = match spec
        .get("workflow")
        .filter(|w| !matches!(w.node, Node::Null))
    {
        None => None,
        Some(w) if !matches!(w.node, Node::Map(_)) => {
            sink.error(err(
                path,
                w.line,
                "spec.workflow",
                format!(
                    "spec.workflow must be a mapping, got {}",
                    w.node.type_name()
                ),
            ));
            return None;
        }
        Some(w) => {
            unknown_fields(
                path,
                w,
                &["ref", "steps", "mode"],
                "spec.workflow",
                "spec.workflow",
                sink,
            );
            check_mode(path, w.get("mode"), "spec.workflow.mode", sink);
            match (w.get("ref"), w.get("steps")) {
                (Some(r), Some(_)) => {
                    sink.error(err(
                        path,
                        r.line,
                        "spec.workflow.ref",
                        "spec.workflow: give either ref or steps, not both".into(),
                    ));
                    return None;
                }
                (Some(r), None) => {
                    let Some(name) = r.as_str().filter(|n| !n.is_empty()) else {
                        sink.error(err(
                            path,
                            r.line,
                            "spec.workflow.ref",
                            "spec.workflow.ref must be a Workflow's name".into(),
                        ));
                        return None;
                    };
                    let Some(wd) = workflow_docs
                        .iter()
                        .find(|d| d.name == name && d.namespace == namespace)
                    else {
                        let known: Vec<&str> = workflow_docs
                            .iter()
                            .filter(|d| d.namespace == namespace)
                            .map(|d| d.name.as_str())
                            .collect();
                        sink.error(err(
                            path,
                            r.line,
                            "spec.workflow.ref",
                            format!(
                                "spec.workflow.ref: no Workflow {name:?} in namespace {namespace:?} among the app's files (found: {})",
                                if known.is_empty() { "none".to_owned() } else { known.join(", ") }
                            ),
                        ));
                        return None;
                    };
                    workflow_ref = Some(name.to_owned());
                    workflow_doc_steps(wd, sink)
                }
                (None, Some(s)) => parse_steps(path, s, "spec.workflow.steps", sink),
                (None, None) => {
                    sink.error(err(
                        path,
                        w.line,
                        "spec.workflow",
                        "spec.workflow needs ref or steps".into(),
                    ));
                    return None;
                }
            }
        }
    };
    let had_workflow = spec
        .get("workflow")
        .is_some_and(|w| !matches!(w.node, Node::Null));
    if had_workflow && steps.is_none() {
        return None;
    }
    let steps = match steps {
        Some(s) => s,
        None => {
            if inline.is_empty() {
                return None;
            }
            vec![StepInfo {
                name: IMPLICIT_STEP.to_owned(),
                spec: StepSpec::Deploy {
                    policies: inline
                        .values()
                        .map(|p| ClusterName {
                            name: p.name.clone(),
                            source: p.source.clone(),
                        })
                        .collect(),
                    auto: true,
                    parallelism: DEFAULT_PARALLELISM,
                },
                source: loc(path, spec.line),
            }]
        }
    };
    // Every policy a deploy step names must be a topology policy of the app.
    let mut policies: BTreeMap<String, TopologyPolicy> = BTreeMap::new();
    for s in &steps {
        if let StepSpec::Deploy {
            policies: names, ..
        } = &s.spec
        {
            for n in names {
                if policies.contains_key(&n.name) {
                    continue;
                }
                let found = inline
                    .get(&n.name)
                    .cloned()
                    .or_else(|| standalone(&n.name, sink));
                match found {
                    Some(p) => {
                        policies.insert(n.name.clone(), p);
                    }
                    None if policy_docs
                        .iter()
                        .any(|d| d.name == n.name && d.namespace == namespace) =>
                    {
                        // Found but invalid: reported by parse_policy.
                    }
                    None => {
                        let mut known: BTreeSet<&str> = inline.keys().map(String::as_str).collect();
                        known.extend(
                            policy_docs
                                .iter()
                                .filter(|d| d.namespace == namespace)
                                .map(|d| d.name.as_str()),
                        );
                        sink.error(err(
                            &n.source.path,
                            n.source.line,
                            "properties.policies",
                            format!(
                                "workflow step {:?}: no policy {:?} in namespace {namespace:?} (known: {})",
                                s.name,
                                n.name,
                                if known.is_empty() { "none".to_owned() } else { known.into_iter().collect::<Vec<_>>().join(", ") }
                            ),
                        ));
                    }
                }
            }
        }
    }
    if sink.errors.len() > errors_before {
        return None;
    }
    Some(Delivery {
        application: application.to_owned(),
        namespace: namespace.to_owned(),
        steps,
        workflow_ref,
        policies,
        source: loc(path, app.line),
    })
}

/// Checks every standalone `Policy` document (its type must be one rollgit runs) even when
/// no Application uses it: an override policy would otherwise be dropped in silence.
pub(crate) fn check_policy_docs(policy_docs: &[OamDoc<'_>], sink: &mut Sink) {
    for d in policy_docs {
        let _ = parse_policy(d.path, d.doc, &d.name, "", sink);
        unknown_fields(
            d.path,
            d.doc,
            &["apiVersion", "kind", "metadata", "type", "properties"],
            "",
            &format!("Policy {:?}", d.name),
            sink,
        );
    }
}

/// Checks every standalone `Workflow` document, used or not.
pub(crate) fn check_workflow_docs(workflow_docs: &[OamDoc<'_>], sink: &mut Sink) {
    for d in workflow_docs {
        let _ = workflow_doc_steps(d, sink);
    }
}

// ---------------------------------------------------------------------------------------------
// Against the fleet.

/// A cluster of the configuration, as topology policies see it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FleetCluster {
    /// Its name in the configuration.
    pub name: String,
    /// Its labels (`clusters[].labels`).
    pub labels: BTreeMap<String, String>,
}

/// One place a step delivers to: a cluster, and the namespace override of its policy.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Target {
    /// The configuration's cluster name (`local` resolved to the repository's cluster).
    pub cluster: String,
    /// The namespace the app's namespaced objects go to there (`None`: as written).
    pub namespace: Option<String>,
}

/// A step with its targets resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedStep {
    /// The step's name.
    pub name: String,
    /// Deploy: where to; suspend: empty.
    pub targets: Vec<Target>,
    /// What it does.
    pub spec: StepSpec,
}

/// Resolves the clusters of a delivery against the fleet (`local`: the repository's cluster).
/// Every unknown cluster name, and every label selector that matches no cluster, is an error
/// at its `path:line`.
pub fn resolve_delivery(
    d: &Delivery,
    fleet: &[FleetCluster],
    local: &str,
) -> Result<Vec<ResolvedStep>, Vec<RenderError>> {
    let mut errors = Vec::new();
    let known: Vec<&str> = std::iter::once(LOCAL_CLUSTER)
        .chain(fleet.iter().map(|c| c.name.as_str()))
        .collect();
    let mut by_policy: BTreeMap<&str, Vec<Target>> = BTreeMap::new();
    for (name, p) in &d.policies {
        let mut targets = BTreeSet::new();
        for c in &p.clusters {
            let resolved = if c.name == LOCAL_CLUSTER {
                Some(local)
            } else {
                fleet
                    .iter()
                    .find(|f| f.name == c.name)
                    .map(|f| f.name.as_str())
            };
            match resolved {
                Some(r) => {
                    targets.insert(Target {
                        cluster: r.to_owned(),
                        namespace: p.namespace.clone(),
                    });
                }
                None => errors.push(
                    RenderError::new(
                        &c.source.path,
                        c.source.line,
                        format!(
                            "policy {name:?}: unknown cluster {:?} (the fleet: {})",
                            c.name,
                            known.join(", ")
                        ),
                    )
                    .with_field("properties.clusters"),
                ),
            }
        }
        if !p.cluster_label_selector.is_empty() {
            let matched: Vec<&FleetCluster> = fleet
                .iter()
                .filter(|f| {
                    p.cluster_label_selector
                        .iter()
                        .all(|(k, v)| f.labels.get(k) == Some(v))
                })
                .collect();
            if matched.is_empty() {
                let sel: Vec<String> = p
                    .cluster_label_selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                errors.push(
                    RenderError::new(
                        &p.source.path,
                        p.source.line,
                        format!(
                            "policy {name:?}: clusterLabelSelector {} matches no cluster of the fleet",
                            sel.join(",")
                        ),
                    )
                    .with_field("properties.clusterLabelSelector"),
                );
            }
            for f in matched {
                targets.insert(Target {
                    cluster: f.name.clone(),
                    namespace: p.namespace.clone(),
                });
            }
        }
        by_policy.insert(name.as_str(), targets.into_iter().collect());
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(d.steps
        .iter()
        .map(|s| {
            let targets = match &s.spec {
                StepSpec::Deploy { policies, .. } if policies.is_empty() => vec![Target {
                    cluster: local.to_owned(),
                    namespace: None,
                }],
                StepSpec::Deploy { policies, .. } => {
                    let mut t: BTreeSet<Target> = BTreeSet::new();
                    for p in policies {
                        t.extend(by_policy.get(p.name.as_str()).cloned().unwrap_or_default());
                    }
                    t.into_iter().collect()
                }
                StepSpec::Suspend { .. } => Vec::new(),
            };
            ResolvedStep {
                name: s.name.clone(),
                targets,
                spec: s.spec.clone(),
            }
        })
        .collect())
}
