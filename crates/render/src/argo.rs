//! Argo Rollouts `Rollout` documents (`argoproj.io/v1alpha1`), canary strategy: read into
//! rollgit-core's typed [`CanarySpec`] and validated with Argo's rules
//! (`pkg/apis/rollouts/validation/validation.go`, ROLLOUT-SEMANTICS.md A.1 and A.6), plus
//! rollgit's: `maxSurge`/`maxUnavailable` must be values Argo's controller can resolve
//! (see [`rollgit_core::argo::validate`]).
//!
//! Errors are `path:line: argo: field: rule broken`, the field relative to
//! `spec.strategy.canary` (`steps[1].pause.duration`), or `spec.replicas`; the whole field is in
//! [`crate::RenderError::field`].

use rollgit_core::argo::{self, ArgoError, CanarySpec, CanaryStep, SetCanaryScale};
use serde::Serialize;

use crate::error::RenderError;
use crate::reader::Reader;
use crate::render::{Sink, SourceLocation};
use crate::yaml::{Located, Node};

/// The API group of Argo Rollouts.
pub const ARGO_GROUP: &str = "argoproj.io";

const PREFIX: &str = "argo: ";

/// A canary `Rollout` of Argo Rollouts, validated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgoRollout {
    /// `metadata.name` (empty when not written).
    pub name: String,
    /// `spec.strategy.canary`, with `replicas` = `spec.replicas` (default 1).
    #[serde(skip)]
    pub canary: CanarySpec,
    /// Where the Rollout is written.
    pub source: SourceLocation,
}

/// Where the fields of a read canary are, for the rules checked after reading.
struct Lines<'a> {
    spec: &'a Located,
    replicas: Option<&'a Located>,
    canary: &'a Located,
    steps: Vec<&'a Located>,
}

impl Lines<'_> {
    fn canary_key(&self, key: &str) -> u32 {
        self.canary
            .get(key)
            .map_or(self.canary.key_line, |v| v.key_line)
    }

    fn step_key(&self, index: usize, keys: &[&str]) -> u32 {
        let Some(step) = self.steps.get(index) else {
            return self.canary_key("steps");
        };
        let mut node: &Located = step;
        for k in keys {
            match node.get(k) {
                Some(v) => node = v,
                None => break,
            }
        }
        node.key_line
    }

    /// The field (under `spec.strategy.canary`, or `spec.replicas`) and line of a rule broken.
    fn place(&self, e: &ArgoError) -> (String, u32) {
        const CANARY: &str = "spec.strategy.canary";
        match e {
            ArgoError::EmptyStep(i) => (format!("{CANARY}.steps[{i}]"), self.step_key(*i, &[])),
            ArgoError::SetWeightOutOfRange { index, .. } => (
                format!("{CANARY}.steps[{index}].setWeight"),
                self.step_key(*index, &["setWeight"]),
            ),
            ArgoError::BadPauseDuration { index, .. } => (
                format!("{CANARY}.steps[{index}].pause.duration"),
                self.step_key(*index, &["pause", "duration"]),
            ),
            ArgoError::CanaryScaleWithoutRouting(i) => (
                format!("{CANARY}.steps[{i}].setCanaryScale"),
                self.step_key(*i, &["setCanaryScale"]),
            ),
            ArgoError::BadFencepost { field, .. } => {
                (format!("{CANARY}.{field}"), self.canary_key(field))
            }
            ArgoError::BothFencepostsZero => {
                (format!("{CANARY}.maxSurge"), self.canary_key("maxSurge"))
            }
            ArgoError::DynamicStableScaleWithoutRouting
            | ArgoError::DynamicStableScaleWithDelay => (
                format!("{CANARY}.dynamicStableScale"),
                self.canary_key("dynamicStableScale"),
            ),
            ArgoError::NegativeReplicas(_) => (
                "spec.replicas".to_owned(),
                self.replicas.map_or(self.spec.key_line, |r| r.key_line),
            ),
        }
    }
}

/// The step kinds Argo knows that rollgit's arithmetic does not use: a step with one of them is
/// not empty.
const OTHER_STEP_KINDS: &[&str] = &[
    "experiment",
    "analysis",
    "setHeaderRoute",
    "setMirrorRoute",
    "plugin",
];

/// Reads and validates an Argo `Rollout` document; `None` when it has errors (in the sink).
pub(crate) fn parse_argo_rollout(
    path: &str,
    doc: &Located,
    sink: &mut Sink,
) -> Option<ArgoRollout> {
    let name = doc
        .get("metadata")
        .and_then(|m| m.get("name"))
        .and_then(Located::as_str)
        .unwrap_or_default()
        .to_owned();
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
    let replicas = r.int("replicas");
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
    let mut lines = Lines {
        spec,
        replicas: spec.get("replicas"),
        canary,
        steps: Vec::new(),
    };
    let max_surge = c.int_or_string("maxSurge");
    let max_unavailable = c.int_or_string("maxUnavailable");
    let routing = c.get("trafficRouting");
    let max_weight = match routing {
        Some(t) if c.is_mapping("trafficRouting", t) => {
            c.within("trafficRouting", t, |t| t.int("maxTrafficWeight"))
        }
        _ => None,
    };
    let mut spec_out = CanarySpec {
        replicas: replicas.unwrap_or(1),
        max_surge,
        max_unavailable,
        traffic_routing: routing.is_some(),
        max_weight: max_weight.unwrap_or(100),
        dynamic_stable_scale: c.boolean("dynamicStableScale").unwrap_or(false),
        abort_scale_down_delay_seconds: c.int("abortScaleDownDelaySeconds"),
        scale_down_delay_seconds: c.int("scaleDownDelaySeconds"),
        min_pods_per_replica_set: c.int("minPodsPerReplicaSet"),
        steps: Vec::new(),
    };
    for (i, item) in c.list("steps").unwrap_or_default().iter().enumerate() {
        let key = format!("steps[{i}]");
        lines.steps.push(item);
        if !c.is_mapping(&key, item) {
            continue;
        }
        let step = c.within(&key, item, read_step);
        spec_out.steps.push(step);
    }
    if !(spec_ok && c.ok) {
        return None;
    }
    if let Err(e) = argo::validate(&spec_out) {
        let (field, line) = lines.place(&e);
        c.sink
            .error(RenderError::new(path, line, format!("{PREFIX}{e}")).with_field(field));
        return None;
    }
    Some(ArgoRollout {
        name,
        canary: spec_out,
        source: SourceLocation {
            path: path.to_owned(),
            line: doc.line.max(1),
        },
    })
}

/// One `steps[i]` mapping.
fn read_step(s: &mut Reader) -> CanaryStep {
    let mut step = CanaryStep {
        set_weight: s.int("setWeight"),
        ..Default::default()
    };
    if s.has("pause") {
        step.pause = Some(match s.mapping("pause") {
            Some(p) => s.within("pause", p, |p| p.int_or_string("duration")),
            None => None,
        });
    }
    if let Some(cs) = s.mapping("setCanaryScale") {
        step.set_canary_scale = Some(s.within("setCanaryScale", cs, |cs| SetCanaryScale {
            replicas: cs.int("replicas"),
            weight: cs.int("weight"),
            match_traffic_weight: cs.boolean("matchTrafficWeight").unwrap_or(false),
        }));
    }
    step.other = OTHER_STEP_KINDS.iter().any(|k| s.has(k));
    step
}
