//! OpenKruise `Rollout` documents (`rollouts.kruise.io/v1alpha1` and `v1beta1`), canary
//! strategy: read into rollgit-core's typed [`KruiseStep`]s (v1alpha1 converted to v1beta1 as
//! Kruise's conversion does) and validated with the Kruise webhook's step rules
//! (`pkg/webhook/rollout/validating/rollout_create_update_handler.go`, ROLLOUT-SEMANTICS.md B.1).
//!
//! Errors are `path:line: kruise: field: rule broken`, the field relative to
//! `spec.strategy.canary` (`steps[1].replicas`); the whole field is in
//! [`crate::RenderError::field`].

use rollgit_core::kruise::{self, KruiseError, KruiseStep, RollingStyle};
use serde::Serialize;

use crate::error::RenderError;
use crate::reader::Reader;
use crate::render::{Sink, SourceLocation};
use crate::yaml::{Located, Node};

/// The API group of OpenKruise Rollouts.
pub const KRUISE_ROLLOUT_GROUP: &str = "rollouts.kruise.io";
/// v1alpha1 annotation that selects partition style for a Deployment.
pub const ROLLING_STYLE_ANNOTATION: &str = "rollouts.kruise.io/rolling-style";
/// The webhook's `--partition-percent-limit` default (v1beta1).
pub const PARTITION_PERCENT_LIMIT: i64 = 50;

const PREFIX: &str = "kruise: ";

/// The workload a Kruise Rollout rolls (`workloadRef`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkloadRef {
    /// `apiVersion`, if written.
    pub api_version: Option<String>,
    /// `kind` (`Deployment` when not written).
    pub kind: String,
    /// `name`, if written.
    pub name: Option<String>,
}

/// A canary `Rollout` of OpenKruise, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KruiseRollout {
    /// `metadata.name` (empty when not written).
    pub name: String,
    /// True for `rollouts.kruise.io/v1alpha1` (its steps are converted to v1beta1).
    pub v1alpha1: bool,
    /// `spec.objectRef.workloadRef` (v1alpha1) or `spec.workloadRef` (v1beta1).
    pub workload: WorkloadRef,
    /// How the workload is released: canary style (an extra canary Deployment) only for a
    /// Deployment with v1alpha1 without the `rolling-style: partition` annotation, or v1beta1
    /// `enableExtraWorkloadForCanary: true`; partition style otherwise.
    #[serde(skip)]
    pub style: RollingStyle,
    /// `spec.strategy.canary.steps`, in the v1beta1 shape.
    #[serde(skip)]
    pub steps: Vec<KruiseStep>,
    /// Where the Rollout is written.
    pub source: SourceLocation,
}

/// Whether Kruise treats a `workloadRef.kind` as a Deployment (every kind but the ones with a
/// native partition).
pub fn is_deployment_kind(kind: &str) -> bool {
    !matches!(kind, "CloneSet" | "StatefulSet" | "DaemonSet")
}

/// Where each step's fields are, for the rules checked after reading.
struct Lines<'a> {
    canary: &'a Located,
    steps: Vec<&'a Located>,
}

impl Lines<'_> {
    fn step_key(&self, index: usize, key: &str) -> (String, u32) {
        let field = format!("spec.strategy.canary.steps[{index}]");
        match self.steps.get(index) {
            Some(step) => match step.get(key) {
                Some(v) => (format!("{field}.{key}"), v.key_line),
                None => (format!("{field}.{key}"), step.line),
            },
            None => (field, self.canary.key_line),
        }
    }

    fn place(&self, e: &KruiseError, v1alpha1: bool) -> (String, u32) {
        match e {
            KruiseError::NoSteps => (
                "spec.strategy.canary.steps".to_owned(),
                self.canary
                    .get("steps")
                    .map_or(self.canary.key_line, |s| s.key_line),
            ),
            KruiseError::MissingReplicas(i)
            | KruiseError::BadReplicas { index: i, .. }
            | KruiseError::PartitionPercentLimit { index: i, .. }
            | KruiseError::Decreasing { index: i, .. } => self.step_key(*i, "replicas"),
            KruiseError::BadTraffic { index, .. } => {
                self.step_key(*index, if v1alpha1 { "weight" } else { "traffic" })
            }
            KruiseError::NotPaused(_) | KruiseError::JumpOutOfRange { .. } => {
                ("spec.strategy.canary".to_owned(), self.canary.key_line)
            }
        }
    }
}

/// Reads and validates a Kruise `Rollout` document; `None` when it has errors (in the sink).
pub(crate) fn parse_kruise_rollout(
    path: &str,
    doc: &Located,
    sink: &mut Sink,
) -> Option<KruiseRollout> {
    let v1alpha1 = doc
        .get("apiVersion")
        .and_then(Located::as_str)
        .is_some_and(|v| v.ends_with("/v1alpha1"));
    let meta = doc.get("metadata");
    let name = meta
        .and_then(|m| m.get("name"))
        .and_then(Located::as_str)
        .unwrap_or_default()
        .to_owned();
    let annotated_partition = meta
        .and_then(|m| m.get("annotations"))
        .and_then(|a| a.get(ROLLING_STYLE_ANNOTATION))
        .and_then(Located::as_str)
        == Some("partition");
    let mut top = Reader {
        path,
        prefix: PREFIX,
        sep: ": ",
        field: String::new(),
        rel: String::new(),
        node: Some(doc),
        line: doc.line,
        sink,
        ok: true,
    };
    let spec = match top.get("spec") {
        Some(s) if matches!(s.node, Node::Map(_)) => s,
        Some(s) => {
            top.error(
                s.key_line,
                "spec",
                format!("must be a mapping, got {}", s.node.type_name()),
            );
            return None;
        }
        None => {
            top.error(doc.line, "spec", "is required");
            return None;
        }
    };
    let mut r = Reader {
        path,
        prefix: PREFIX,
        sep: ": ",
        field: "spec".to_owned(),
        rel: "spec.".to_owned(),
        node: Some(spec),
        line: spec.key_line,
        sink: &mut *top.sink,
        ok: true,
    };
    let workload = if v1alpha1 {
        match r.mapping("objectRef") {
            Some(o) => r.within("objectRef", o, |o| match o.mapping("workloadRef") {
                Some(w) => o.within("workloadRef", w, read_workload_ref),
                None => None,
            }),
            None => None,
        }
    } else {
        match r.mapping("workloadRef") {
            Some(w) => r.within("workloadRef", w, read_workload_ref),
            None => None,
        }
    }
    .unwrap_or(WorkloadRef {
        api_version: None,
        kind: "Deployment".to_owned(),
        name: None,
    });
    let strategy = r.mapping("strategy");
    let canary = strategy
        .and_then(|s| s.get("canary"))
        .filter(|c| c.node != Node::Null);
    let canary = match canary {
        Some(c) if matches!(c.node, Node::Map(_)) => c,
        Some(c) => {
            r.error(
                c.key_line,
                "strategy.canary",
                format!("must be a mapping, got {}", c.node.type_name()),
            );
            return None;
        }
        None => {
            if r.ok {
                let line = strategy.map_or(spec.key_line, |s| s.key_line);
                r.error(
                    line,
                    "strategy.canary",
                    "is required (rollgit reads the canary strategy; blue-green is not supported)",
                );
            }
            return None;
        }
    };
    let spec_ok = r.ok;
    let mut c = Reader {
        path,
        prefix: PREFIX,
        sep: ": ",
        field: "spec.strategy.canary".to_owned(),
        rel: String::new(),
        node: Some(canary),
        line: canary.key_line,
        sink: &mut *r.sink,
        ok: true,
    };
    let extra_workload = if v1alpha1 {
        false
    } else {
        c.boolean("enableExtraWorkloadForCanary").unwrap_or(false)
    };
    let canary_style = is_deployment_kind(&workload.kind)
        && if v1alpha1 {
            !annotated_partition
        } else {
            extra_workload
        };
    let style = if canary_style {
        RollingStyle::Canary
    } else {
        RollingStyle::Partition
    };
    let mut lines = Lines {
        canary,
        steps: Vec::new(),
    };
    let mut steps = Vec::new();
    for (i, item) in c.list("steps").unwrap_or_default().iter().enumerate() {
        let key = format!("steps[{i}]");
        lines.steps.push(item);
        if !c.is_mapping(&key, item) {
            continue;
        }
        if let Some(step) = c.within(&key, item, |s| read_step(s, v1alpha1)) {
            steps.push(step);
        }
    }
    if !(spec_ok && c.ok) {
        return None;
    }
    let limit = if v1alpha1 {
        i64::MAX
    } else {
        PARTITION_PERCENT_LIMIT
    };
    if let Err(e) = kruise::validate_steps(&steps, style, limit) {
        let (field, line) = lines.place(&e, v1alpha1);
        c.sink
            .error(RenderError::new(path, line, format!("{PREFIX}{e}")).with_field(field));
        return None;
    }
    Some(KruiseRollout {
        name,
        v1alpha1,
        workload,
        style,
        steps,
        source: SourceLocation {
            path: path.to_owned(),
            line: doc.line.max(1),
        },
    })
}

fn read_workload_ref(w: &mut Reader) -> Option<WorkloadRef> {
    let api_version = w.string("apiVersion").map(|(s, _)| s);
    let kind = w
        .string("kind")
        .map_or_else(|| "Deployment".to_owned(), |(s, _)| s);
    let name = w.string("name").map(|(s, _)| s);
    Some(WorkloadRef {
        api_version,
        kind,
        name,
    })
}

/// One `steps[i]` mapping, converted to the v1beta1 shape.
fn read_step(s: &mut Reader, v1alpha1: bool) -> Option<KruiseStep> {
    let replicas = s.int_or_string("replicas");
    let has_matches = s.list("matches").is_some_and(|m| !m.is_empty());
    let pause_duration = match s.mapping("pause") {
        Some(p) => s.within("pause", p, |p| p.int("duration")),
        None => None,
    };
    if v1alpha1 {
        let weight = s.int("weight");
        return Some(KruiseStep::from_v1alpha1(
            replicas,
            weight,
            has_matches,
            pause_duration,
        ));
    }
    let traffic = match s.get("traffic") {
        None => None,
        Some(t) => match &t.node {
            Node::Str(x) => Some(x.clone()),
            // An integer is read as written and then fails the percent rule.
            Node::Num(n) if n.is_i64() => Some(n.to_string()),
            other => {
                s.error(
                    t.key_line,
                    "traffic",
                    format!("must be a string like \"20%\", got {}", other.type_name()),
                );
                None
            }
        },
    };
    Some(KruiseStep {
        replicas,
        traffic,
        has_matches,
        pause_duration,
    })
}
