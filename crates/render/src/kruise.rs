//! OpenKruise `Rollout` documents (`rollouts.kruise.io/v1alpha1` and `v1beta1`), canary
//! strategy: read into rollgit-core's typed [`KruiseStep`]s (v1alpha1 converted to v1beta1 as
//! Kruise's conversion does) and validated with the Kruise webhook's step rules
//! (`pkg/webhook/rollout/validating/rollout_create_update_handler.go`, ROLLOUT-SEMANTICS.md B.1).
//!
//! Errors are `path:line: kruise: field: rule broken`, the field relative to
//! `spec.strategy.canary` (`steps[1].replicas`); the whole field is in
//! [`crate::RenderError::field`].

use rollgit_core::intstr::IntOrString;
use rollgit_core::kruise::{self, KruiseError, KruiseStep, RollingStyle};
use rollgit_core::kruise_run::{HeaderMatch, IngressClass, RouteMatch};
use serde::Serialize;

use crate::error::RenderError;
use crate::kinds::{ObjectKey, group_of};
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

/// `trafficRoutings[i]`: the stable Service and the Ingress or Gateway API HTTPRoute Kruise
/// routes through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrafficRoutingRef {
    /// `service`: the stable Service.
    pub service: String,
    /// `gracePeriodSeconds` (Kruise's default, 3, when not written).
    pub grace_period_seconds: i64,
    /// `ingress.name`, if routed through an Ingress.
    pub ingress: Option<String>,
    /// `ingress.classType` (`nginx` when not written).
    #[serde(skip)]
    pub class: IngressClass,
    /// `gateway.httpRouteName`, if routed through a Gateway API HTTPRoute (in the Rollout's
    /// namespace).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http_route: Option<String>,
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
    /// Each step's `matches` (same length as `steps`).
    #[serde(skip)]
    pub matches: Vec<Vec<RouteMatch>>,
    /// `spec.strategy.canary.trafficRoutings` (Kruise allows one).
    pub traffic_routings: Vec<TrafficRoutingRef>,
    /// `spec.strategy.canary.failureThreshold`.
    #[serde(skip)]
    pub failure_threshold: Option<IntOrString>,
    /// `spec.strategy.paused`.
    pub paused: bool,
    /// `spec.disabled`.
    pub disabled: bool,
    /// Where the Rollout is written.
    pub source: SourceLocation,
    /// What OpenKruise accepts but rollgit's executor does not run (a blue-green strategy,
    /// custom network routes, path and query matches, another Ingress class,
    /// `disabled: true`, a workload kind rollgit does not roll): errors when rollgit is the
    /// Rollout's controller, nothing when Kruise's own controller runs it (delegate mode).
    #[serde(skip)]
    pub unsupported: Vec<RenderError>,
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
    let unsupported_from = sink.unsupported.len();
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
    let disabled = r.boolean("disabled").unwrap_or(false);
    let strategy = r.mapping("strategy");
    let paused = match strategy {
        Some(st) => r.within("strategy", st, |st| st.boolean("paused").unwrap_or(false)),
        None => false,
    };
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
            let blue_green = strategy.and_then(|s| s.get("blueGreen"));
            if let Some(bg) = blue_green.filter(|b| matches!(b.node, Node::Map(_))) {
                // Kruise runs it; rollgit's executor does not.
                r.unsupported(
                    bg.key_line,
                    "strategy.blueGreen",
                    "is not run by rollgit's Kruise Rollout executor (it runs the canary strategy)",
                );
                if !r.ok {
                    return None;
                }
                let unsupported = r.sink.unsupported.split_off(unsupported_from);
                return Some(KruiseRollout {
                    name,
                    v1alpha1,
                    workload,
                    style: RollingStyle::Partition,
                    steps: Vec::new(),
                    matches: Vec::new(),
                    traffic_routings: Vec::new(),
                    failure_threshold: None,
                    paused,
                    disabled,
                    source: SourceLocation {
                        path: path.to_owned(),
                        line: doc.line.max(1),
                    },
                    unsupported,
                });
            }
            if r.ok {
                let line = strategy.map_or(spec.key_line, |s| s.key_line);
                r.error(
                    line,
                    "strategy.canary",
                    "is required (or strategy.blueGreen)",
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
    let mut matches = Vec::new();
    for (i, item) in c.list("steps").unwrap_or_default().iter().enumerate() {
        let key = format!("steps[{i}]");
        lines.steps.push(item);
        if !c.is_mapping(&key, item) {
            continue;
        }
        if let Some((step, m)) = c.within(&key, item, |s| read_step(s, v1alpha1)) {
            steps.push(step);
            matches.push(m);
        }
    }
    let failure_threshold = c.int_or_string("failureThreshold");
    let mut traffic_routings = Vec::new();
    let routings = c.list("trafficRoutings").unwrap_or_default();
    if routings.len() > 1 {
        c.error(
            routings[1].line,
            "trafficRoutings",
            "Rollout currently only support single TrafficRouting.",
        );
    }
    for (i, item) in routings.iter().enumerate() {
        let key = format!("trafficRoutings[{i}]");
        if !c.is_mapping(&key, item) {
            continue;
        }
        if let Some(t) = c.within(&key, item, read_traffic_routing) {
            traffic_routings.push(t);
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
        matches,
        traffic_routings,
        failure_threshold,
        paused,
        disabled,
        source: SourceLocation {
            path: path.to_owned(),
            line: doc.line.max(1),
        },
        unsupported: c.sink.unsupported.split_off(unsupported_from),
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

fn read_traffic_routing(t: &mut Reader) -> Option<TrafficRoutingRef> {
    let service = t.required_string("service").map(|(s, _)| s);
    if service.as_deref() == Some("") {
        t.error(t.line, "service", "TrafficRouting.Service cannot be empty");
    }
    let grace = match t.int("gracePeriodSeconds") {
        Some(g) if g < 0 => {
            t.error(
                t.line,
                "gracePeriodSeconds",
                "TrafficRouting.GracePeriodSeconds cannot be negative",
            );
            0
        }
        Some(g) => g,
        None => rollgit_core::kruise_run::DEFAULT_GRACE_SECS,
    };
    if let Some(v) = t.get("customNetworkRefs") {
        t.unsupported(
            v.key_line,
            "customNetworkRefs",
            "is not run by rollgit's Kruise Rollout executor (it routes through a Service and an Ingress or a Gateway API HTTPRoute)",
        );
    }
    let mut http_route = None;
    if let Some(g) = t.mapping("gateway") {
        t.within("gateway", g, |g| match g.string("httpRouteName") {
            Some((n, _)) if !n.is_empty() => http_route = Some(n),
            _ => g.error(
                g.line,
                "httpRouteName",
                "TrafficRouting.Gateway must set the name of HTTPRoute or HTTPsRoute",
            ),
        });
    }
    let mut ingress = None;
    let mut class = IngressClass::Nginx;
    match t.mapping("ingress") {
        Some(i) => t.within("ingress", i, |i| {
            match i.required_string("name") {
                Some((n, _)) if n.is_empty() => i.error(
                    i.line,
                    "name",
                    "TrafficRouting.Ingress.Ingress cannot be empty",
                ),
                Some((n, _)) => ingress = Some(n),
                None => {}
            }
            if let Some((c, line)) = i.string("classType") {
                match IngressClass::parse(&c) {
                    Some(k) => class = k,
                    None => i.unsupported(
                        line,
                        "classType",
                        format!("{c:?} is not run by rollgit's Kruise Rollout executor (nginx, aliyun-alb or mse)"),
                    ),
                }
            }
        }),
        None => {
            let custom = t.get("gateway").is_some() || t.get("customNetworkRefs").is_some();
            if t.ok && !custom {
                t.error(t.line, "ingress", "TrafficRoutings are not set");
            }
        }
    }
    let service = service?;
    t.ok.then_some(TrafficRoutingRef {
        service,
        grace_period_seconds: grace,
        ingress,
        class,
        http_route,
    })
}

/// One `matches[i]` entry: its headers (`type: Exact` or `RegularExpression`).
fn read_match(m: &mut Reader) -> RouteMatch {
    for unsupported in ["path", "queryParams"] {
        if let Some(v) = m.get(unsupported) {
            m.unsupported(
                v.key_line,
                unsupported,
                "is not run by rollgit's Kruise Rollout executor (it matches headers)",
            );
        }
    }
    let mut headers = Vec::new();
    for (i, h) in m.list("headers").unwrap_or_default().iter().enumerate() {
        let key = format!("headers[{i}]");
        if !m.is_mapping(&key, h) {
            continue;
        }
        let header = m.within(&key, h, |h| {
            let name = h.required_string("name").map(|(s, _)| s);
            let value = h.required_string("value").map(|(s, _)| s);
            let regex = match h.string("type") {
                None => false,
                Some((t, _)) if t == "Exact" => false,
                Some((t, _)) if t == "RegularExpression" => true,
                Some((t, line)) => {
                    h.error(
                        line,
                        "type",
                        format!("must be Exact or RegularExpression, got {t:?}"),
                    );
                    false
                }
            };
            Some(HeaderMatch {
                name: name?,
                value: value?,
                regex,
            })
        });
        headers.extend(header);
    }
    RouteMatch { headers }
}

/// One `steps[i]` mapping, converted to the v1beta1 shape, and its `matches`.
fn read_step(s: &mut Reader, v1alpha1: bool) -> Option<(KruiseStep, Vec<RouteMatch>)> {
    let replicas = s.int_or_string("replicas");
    let mut matches = Vec::new();
    for (i, m) in s.list("matches").unwrap_or_default().iter().enumerate() {
        let key = format!("matches[{i}]");
        if s.is_mapping(&key, m) {
            matches.push(s.within(&key, m, read_match));
        }
    }
    let has_matches = !matches.is_empty();
    let pause_duration = match s.mapping("pause") {
        Some(p) => s.within("pause", p, |p| p.int("duration")),
        None => None,
    };
    if v1alpha1 {
        let weight = s.int("weight");
        return Some((
            KruiseStep::from_v1alpha1(replicas, weight, has_matches, pause_duration),
            matches,
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
    Some((
        KruiseStep {
            replicas,
            traffic,
            has_matches,
            pause_duration,
        },
        matches,
    ))
}

/// A Kruise Rollout of an app and the workload of the same app it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KruiseRolloutInfo {
    /// The Rollout, validated.
    pub rollout: KruiseRollout,
    /// Its namespace.
    pub namespace: String,
    /// The app's object its `workloadRef` names, if the app has it: rollgit's Kruise executor
    /// rolls its template changes out in the Rollout's steps.
    pub workload: Option<ObjectKey>,
}

/// The workload kinds rollgit's Kruise executor rolls: (group, kind).
pub const SUPPORTED_WORKLOADS: [(&str, &str); 3] = [
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps.kruise.io", "CloneSet"),
];

/// Reads the app's Kruise Rollouts (`docs`: path, document, namespace) and finds the workload
/// among `objects` each one holds. Errors: an invalid Rollout, a `workloadRef` without a name
/// or of a kind rollgit does not roll, two Rollouts of one workload, `disabled: true`.
pub(crate) fn held_workloads(
    docs: &[(&str, &Located, String)],
    objects: &[ObjectKey],
    sink: &mut Sink,
) -> Vec<KruiseRolloutInfo> {
    let mut out: Vec<KruiseRolloutInfo> = Vec::new();
    for (path, doc, namespace) in docs {
        let Some(mut rollout) = parse_kruise_rollout(path, doc, sink) else {
            continue;
        };
        let spec_field = if rollout.v1alpha1 {
            "spec.objectRef.workloadRef"
        } else {
            "spec.workloadRef"
        };
        let line = rollout.source.line;
        let at = |sink: &mut Sink, field: &str, message: String| {
            sink.error(
                RenderError::new(path, line, format!("{PREFIX}{field}: {message}"))
                    .with_field(field.to_owned()),
            );
        };
        let unsupported = |field: &str, message: String| {
            RenderError::new(path, line, format!("{PREFIX}{field}: {message}"))
                .with_field(field.to_owned())
        };
        let Some(name) = rollout.workload.name.clone() else {
            at(sink, &format!("{spec_field}.name"), "is required".into());
            continue;
        };
        if rollout.disabled {
            let e = unsupported(
                "spec.disabled",
                "true is not run by rollgit's Kruise Rollout executor (remove the Rollout to stop rolling in steps)"
                    .into(),
            );
            rollout.unsupported.push(e);
        }
        let group = rollout
            .workload
            .api_version
            .as_deref()
            .map(group_of)
            .unwrap_or("apps")
            .to_owned();
        let kind = rollout.workload.kind.clone();
        if !SUPPORTED_WORKLOADS
            .iter()
            .any(|(g, k)| *g == group && *k == kind)
        {
            let e = unsupported(
                spec_field,
                format!(
                    "{kind} ({}) is not rolled by rollgit's Kruise Rollout executor (apps/v1 Deployment or StatefulSet, apps.kruise.io CloneSet)",
                    rollout.workload.api_version.as_deref().unwrap_or("apps/v1")
                ),
            );
            rollout.unsupported.push(e);
        }
        if let Some(other) = out.iter().find(|o| {
            o.namespace == *namespace
                && o.rollout.workload.kind == kind
                && o.rollout.workload.name.as_deref() == Some(name.as_str())
        }) {
            at(
                sink,
                spec_field,
                format!(
                    "{kind} {name} is already rolled by Rollout {} ({})",
                    other.rollout.name, other.rollout.source
                ),
            );
            continue;
        }
        let workload = objects
            .iter()
            .find(|k| {
                k.group == group
                    && k.kind == kind
                    && k.name == name
                    && k.namespace.as_deref().is_none_or(|ns| ns == namespace)
            })
            .cloned();
        // What rollgit's executor does not run holds nothing (Kruise's own controller may).
        let workload = workload.filter(|_| rollout.unsupported.is_empty());
        if workload.is_none() && rollout.unsupported.is_empty() {
            sink.warn(RenderError::new(
                path,
                rollout.source.line,
                format!(
                    "{PREFIX}{kind} {name} is not in this app: rollgit rolls its changes in steps only when the same app applies it"
                ),
            ));
        }
        out.push(KruiseRolloutInfo {
            rollout,
            namespace: namespace.clone(),
            workload,
        });
    }
    out
}

/// Reads a Kruise Rollout as the cluster serves it (`what` names it in errors). The CRD
/// rollgit installs converts between versions by `apiVersion` only, so a Rollout written as
/// v1alpha1 reads back in the v1alpha1 shape whatever version it is read at: its shape decides
/// (`spec.objectRef` is v1alpha1's), and it is converted as Kruise converts it.
pub fn parse_kruise_rollout_value(
    what: &str,
    object: &serde_json::Value,
) -> Result<KruiseRollout, Vec<RenderError>> {
    let mut object = object.clone();
    if object["spec"].get("objectRef").is_some() {
        object["apiVersion"] = serde_json::json!(format!("{KRUISE_ROLLOUT_GROUP}/v1alpha1"));
    }
    let text = serde_json::to_string(&object).unwrap_or_default();
    let mut sink = Sink {
        errors: Vec::new(),
        warnings: Vec::new(),
        unsupported: Vec::new(),
    };
    let docs = match crate::yaml::parse_documents(text.as_bytes()) {
        Ok(d) => d,
        Err(e) => return Err(vec![RenderError::new(what, e.line, e.message)]),
    };
    let parsed = docs
        .first()
        .and_then(|doc| parse_kruise_rollout(what, doc, &mut sink));
    match parsed {
        Some(r) if sink.errors.is_empty() => Ok(r),
        _ => Err(sink.errors),
    }
}
