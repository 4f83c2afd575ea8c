//! Argo Rollouts `Rollout` documents (`argoproj.io/v1alpha1`), canary strategy: read into
//! rollgit-core's typed [`CanarySpec`] and validated with Argo's rules
//! (`pkg/apis/rollouts/validation/validation.go`, ROLLOUT-SEMANTICS.md A.1 and A.6), plus
//! rollgit's: `maxSurge`/`maxUnavailable` must be values Argo's controller can resolve
//! (see [`rollgit_core::argo::validate`]).
//!
//! Errors are `path:line: argo: field: rule broken`, the field relative to
//! `spec.strategy.canary` (`steps[1].pause.duration`), or `spec.replicas`; the whole field is in
//! [`crate::RenderError::field`].

use std::collections::BTreeMap;

use rollgit_core::argo::{self, ArgoError, CanarySpec, CanaryStep, SetCanaryScale};
use rollgit_core::argo_exec::ScaleDown;
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
    /// `canaryService`, `stableService` and the traffic routers.
    pub routing: ArgoRouting,
    /// `spec.workloadRef`.
    pub workload_ref: Option<ArgoWorkloadRef>,
    /// `spec.progressDeadlineSeconds`.
    pub progress_deadline_seconds: Option<i64>,
    /// `spec.progressDeadlineAbort`.
    pub progress_deadline_abort: bool,
    /// `spec.paused`.
    pub paused: bool,
    /// `spec.revisionHistoryLimit`.
    pub revision_history_limit: Option<i64>,
    /// What Argo Rollouts accepts but rollgit's executor does not run (analysis and
    /// experiment steps, header and mirror routes, blue-green, other traffic routers, ...):
    /// errors when rollgit is the Rollout's controller, nothing when Argo's own controller
    /// runs it. Empty from [`parse_argo_rollout`] (`rollgit plan` reports none).
    pub unsupported: Vec<RenderError>,
}

/// How traffic reaches the canary and the stable ReplicaSets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ArgoRouting {
    /// `canary.canaryService`.
    pub canary_service: Option<String>,
    /// `canary.stableService`.
    pub stable_service: Option<String>,
    /// `canary.trafficRouting.nginx`.
    pub nginx: Option<NginxRouting>,
    /// `canary.trafficRouting.plugins["argoproj-labs/gatewayAPI"]`.
    pub gateway_api: Option<GatewayApiRouting>,
}

/// The NGINX Ingress traffic router: a canary Ingress `<rollout>-<stableIngress>-canary` per
/// stable Ingress.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct NginxRouting {
    /// `stableIngress`, or `stableIngresses`.
    pub stable_ingresses: Vec<String>,
    /// `annotationPrefix` (default `nginx.ingress.kubernetes.io`).
    pub annotation_prefix: String,
    /// `additionalIngressAnnotations` (prefixed unless they already are).
    pub additional_ingress_annotations: BTreeMap<String, String>,
    /// `canaryIngressAnnotations` (as written).
    pub canary_ingress_annotations: BTreeMap<String, String>,
}

/// The Gateway API traffic router plugin: weights on the `backendRefs` of HTTPRoutes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct GatewayApiRouting {
    /// `httpRoute`, or the names of `httpRoutes`.
    pub http_routes: Vec<String>,
    /// `namespace` (default: the Rollout's).
    pub namespace: Option<String>,
}

/// `spec.workloadRef`: the Deployment whose pod template the Rollout runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ArgoWorkloadRef {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `name`.
    pub name: String,
    /// `scaleDown`: `never` (default), `onsuccess` or `progressively`.
    #[serde(skip)]
    pub scale_down: ScaleDown,
}

/// The NGINX annotation prefix Argo uses by default.
pub const NGINX_ANNOTATION_PREFIX: &str = "nginx.ingress.kubernetes.io";
/// The name of the Gateway API traffic router plugin.
pub const GATEWAY_API_PLUGIN: &str = "argoproj-labs/gatewayAPI";

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
        routing: ArgoRouting::default(),
        workload_ref: None,
        progress_deadline_seconds: None,
        progress_deadline_abort: false,
        paused: false,
        revision_history_limit: None,
        unsupported: Vec::new(),
    })
}

/// What rollgit's executor refuses, for people: how to run it anyway.
const UNSUPPORTED_HINT: &str = "run Argo Rollouts' own controller next to rollgit (rolloutControllers.argo: external) to use it";

fn unsupported(path: &str, line: u32, field: &str, what: &str) -> RenderError {
    RenderError::new(
        path,
        line,
        format!("{PREFIX}{field}: {what}; {UNSUPPORTED_HINT}"),
    )
    .with_field(field)
}

/// Reads an Argo `Rollout` of an app (the render stage): [`parse_argo_rollout`]'s rules, then
/// what rollgit's executor needs (the pod template or `workloadRef`, the selector, the
/// Services and traffic routers) and what it does not run ([`ArgoRollout::unsupported`]).
/// A blue-green Rollout is read as an empty canary with one unsupported entry.
pub(crate) fn read_argo_rollout(path: &str, doc: &Located, sink: &mut Sink) -> Option<ArgoRollout> {
    let spec = doc.get("spec");
    let strategy = spec.and_then(|s| s.get("strategy"));
    if let Some(bg) = strategy.and_then(|s| s.get("blueGreen"))
        && strategy.and_then(|s| s.get("canary")).is_none()
    {
        let name = doc
            .get("metadata")
            .and_then(|m| m.get("name"))
            .and_then(Located::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut r = ArgoRollout {
            name,
            canary: CanarySpec::default(),
            source: SourceLocation {
                path: path.to_owned(),
                line: doc.line.max(1),
            },
            routing: ArgoRouting::default(),
            workload_ref: None,
            progress_deadline_seconds: None,
            progress_deadline_abort: false,
            paused: false,
            revision_history_limit: None,
            unsupported: Vec::new(),
        };
        r.unsupported.push(unsupported(
            path,
            bg.key_line,
            "spec.strategy.blueGreen",
            "the blue-green strategy is not run by rollgit's Argo Rollouts executor (it runs canaries)",
        ));
        return Some(r);
    }
    let before = sink.errors.len();
    let mut rollout = parse_argo_rollout(path, doc, sink)?;
    let spec = spec?;
    let canary = strategy.and_then(|s| s.get("canary"))?;
    let mut r = Reader {
        path,
        prefix: PREFIX,
        sep: ": ",
        field: "spec".to_owned(),
        rel: "spec.".to_owned(),
        node: Some(spec),
        line: spec.key_line,
        sink: &mut *sink,
        ok: true,
    };
    rollout.progress_deadline_seconds = r.int("progressDeadlineSeconds");
    rollout.progress_deadline_abort = r.boolean("progressDeadlineAbort").unwrap_or(false);
    rollout.paused = r.boolean("paused").unwrap_or(false);
    rollout.revision_history_limit = r.int("revisionHistoryLimit");
    let template = r.mapping("template");
    let selector = r.mapping("selector");
    if let Some(w) = r.mapping("workloadRef") {
        rollout.workload_ref = r.within("workloadRef", w, read_workload_ref);
        if let Some(t) = template {
            r.error(
                t.key_line,
                "template",
                "template must be empty for workload reference rollout",
            );
        }
    } else {
        match (template, selector) {
            (None, _) => r.error(spec.key_line, "template", "is required (or workloadRef)"),
            (_, None) => r.error(spec.key_line, "selector", "is required"),
            (Some(t), Some(sel)) => {
                let labels = t.get("metadata").and_then(|m| m.get("labels"));
                let matches = sel.get("matchLabels").is_none_or(|want| match &want.node {
                    Node::Map(entries) => entries.iter().all(|(k, v)| {
                        labels.and_then(|l| l.get(k)).map(Located::to_json) == Some(v.to_json())
                    }),
                    _ => true,
                });
                if !matches {
                    r.error(
                        sel.key_line,
                        "selector",
                        "`selector` does not match template `labels`",
                    );
                }
            }
        }
    }
    if let Some(v) = spec.get("restartAt") {
        rollout.unsupported.push(unsupported(
            path,
            v.key_line,
            "spec.restartAt",
            "restarting pods is not implemented by rollgit's Argo Rollouts executor",
        ));
    }
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
    rollout.routing.canary_service = c.string("canaryService").map(|(s, _)| s);
    rollout.routing.stable_service = c.string("stableService").map(|(s, _)| s);
    if let Some(t) = c.mapping("trafficRouting") {
        c.within("trafficRouting", t, |t| {
            read_traffic_routing(t, &mut rollout.routing, &mut rollout.unsupported)
        });
        let (canary_svc, stable_svc) = (
            rollout.routing.canary_service.clone(),
            rollout.routing.stable_service.clone(),
        );
        match (canary_svc, stable_svc) {
            (Some(a), Some(b)) if a == b => c.error(
                canary
                    .get("stableService")
                    .map_or(t.key_line, |v| v.key_line),
                "stableService",
                "Canary service and Stable service must be different",
            ),
            (Some(_), Some(_)) => {}
            _ => c.error(
                t.key_line,
                "trafficRouting",
                "Canary service and Stable service must to be set to use Traffic Routing",
            ),
        }
    }
    const CANARY_UNSUPPORTED: &[(&str, &str)] = &[
        (
            "analysis",
            "background analysis is not run by rollgit's Argo Rollouts executor yet (it comes with the analysis issue)",
        ),
        (
            "antiAffinity",
            "anti-affinity between ReplicaSets is not implemented by rollgit's Argo Rollouts executor",
        ),
        (
            "canaryMetadata",
            "ephemeral metadata is not implemented by rollgit's Argo Rollouts executor",
        ),
        (
            "stableMetadata",
            "ephemeral metadata is not implemented by rollgit's Argo Rollouts executor",
        ),
        (
            "pingPong",
            "ping-pong Services are not implemented by rollgit's Argo Rollouts executor",
        ),
        (
            "replicaProgressThreshold",
            "replicaProgressThreshold is not implemented by rollgit's Argo Rollouts executor",
        ),
        (
            "scaleDownDelayRevisionLimit",
            "scaleDownDelayRevisionLimit is not implemented by rollgit's Argo Rollouts executor",
        ),
    ];
    for (key, what) in CANARY_UNSUPPORTED {
        if let Some(v) = canary.get(key) {
            rollout.unsupported.push(unsupported(
                path,
                v.key_line,
                &format!("spec.strategy.canary.{key}"),
                what,
            ));
        }
    }
    if let Some(Located {
        node: Node::Seq(steps),
        ..
    }) = canary.get("steps")
    {
        const STEP_UNSUPPORTED: &[(&str, &str)] = &[
            (
                "analysis",
                "analysis steps are not run by rollgit's Argo Rollouts executor yet (they come with the analysis issue)",
            ),
            (
                "experiment",
                "experiment steps are not run by rollgit's Argo Rollouts executor yet (they come with the analysis issue)",
            ),
            (
                "setHeaderRoute",
                "header routes are not implemented by rollgit's Argo Rollouts executor",
            ),
            (
                "setMirrorRoute",
                "mirror routes are not implemented by rollgit's Argo Rollouts executor",
            ),
            (
                "plugin",
                "step plugins are not implemented by rollgit's Argo Rollouts executor",
            ),
        ];
        for (i, step) in steps.iter().enumerate() {
            for (key, what) in STEP_UNSUPPORTED {
                if let Some(v) = step.get(key) {
                    rollout.unsupported.push(unsupported(
                        path,
                        v.key_line,
                        &format!("spec.strategy.canary.steps[{i}].{key}"),
                        what,
                    ));
                }
            }
        }
    }
    if sink.errors.len() > before {
        return None;
    }
    Some(rollout)
}

fn read_workload_ref(w: &mut Reader) -> Option<ArgoWorkloadRef> {
    let api_version = w.required_string("apiVersion").map(|(s, _)| s);
    let kind = w.required_string("kind");
    let name = w.required_string("name").map(|(s, _)| s);
    let scale_down = match w.string("scaleDown") {
        None => ScaleDown::Never,
        Some((s, line)) => match s.as_str() {
            "never" => ScaleDown::Never,
            "onsuccess" => ScaleDown::OnSuccess,
            "progressively" => ScaleDown::Progressively,
            other => {
                w.error(
                    line,
                    "scaleDown",
                    format!("must be never, onsuccess or progressively, got {other:?}"),
                );
                ScaleDown::Never
            }
        },
    };
    if let Some((k, line)) = &kind
        && k != "Deployment"
    {
        w.error(
            *line,
            "kind",
            format!(
                "rollgit's Argo Rollouts executor reads the pod template of a Deployment, got {k:?}"
            ),
        );
    }
    Some(ArgoWorkloadRef {
        api_version: api_version?,
        kind: kind?.0,
        name: name?,
        scale_down,
    })
}

fn string_map(r: &mut Reader, key: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some(m) = r.mapping(key) else {
        return out;
    };
    if let Node::Map(entries) = &m.node {
        for (k, v) in entries {
            match v.as_str() {
                Some(s) => {
                    out.insert(k.clone(), s.to_owned());
                }
                None => r.error(
                    v.line,
                    &format!("{key}.{k}"),
                    format!("must be a string, got {}", v.node.type_name()),
                ),
            }
        }
    }
    out
}

fn read_traffic_routing(
    t: &mut Reader,
    routing: &mut ArgoRouting,
    unsupported_out: &mut Vec<RenderError>,
) {
    let Some(Located {
        node: Node::Map(entries),
        ..
    }) = t.node
    else {
        return;
    };
    for (key, v) in entries {
        match key.as_str() {
            "maxTrafficWeight" => {}
            "nginx" => {
                if !t.is_mapping("nginx", v) {
                    continue;
                }
                let nginx = t.within("nginx", v, |n| {
                    let mut ingresses = Vec::new();
                    if let Some((s, _)) = n.string("stableIngress") {
                        ingresses.push(s);
                    }
                    for (i, item) in n.list("stableIngresses").unwrap_or_default().iter().enumerate() {
                        match item.as_str() {
                            Some(s) => ingresses.push(s.to_owned()),
                            None => n.error(
                                item.line,
                                &format!("stableIngresses[{i}]"),
                                "must be a string",
                            ),
                        }
                    }
                    if ingresses.is_empty() {
                        n.error(n.line, "stableIngress", "is required");
                    }
                    NginxRouting {
                        stable_ingresses: ingresses,
                        annotation_prefix: n
                            .string("annotationPrefix")
                            .map_or_else(|| NGINX_ANNOTATION_PREFIX.to_owned(), |(s, _)| s),
                        additional_ingress_annotations: string_map(n, "additionalIngressAnnotations"),
                        canary_ingress_annotations: string_map(n, "canaryIngressAnnotations"),
                    }
                });
                routing.nginx = Some(nginx);
            }
            "plugins" => {
                if !t.is_mapping("plugins", v) {
                    continue;
                }
                let Node::Map(plugins) = &v.node else { continue };
                for (name, cfg) in plugins {
                    if name != GATEWAY_API_PLUGIN {
                        unsupported_out.push(unsupported(
                            t.path,
                            cfg.key_line,
                            &format!("spec.strategy.canary.trafficRouting.plugins.{name}"),
                            &format!("the traffic router plugin {name:?} is not implemented by rollgit's Argo Rollouts executor (it implements {GATEWAY_API_PLUGIN})"),
                        ));
                        continue;
                    }
                    let key = format!("plugins.{name}");
                    if !t.is_mapping(&key, cfg) {
                        continue;
                    }
                    let gw = t.within(&key, cfg, |g| {
                        let mut routes = Vec::new();
                        if let Some((s, _)) = g.string("httpRoute") {
                            routes.push(s);
                        }
                        for (i, item) in g.list("httpRoutes").unwrap_or_default().iter().enumerate() {
                            match item.get("name").and_then(Located::as_str) {
                                Some(s) => routes.push(s.to_owned()),
                                None => g.error(item.line, &format!("httpRoutes[{i}].name"), "is required"),
                            }
                        }
                        for other in ["grpcRoute", "grpcRoutes", "tcpRoute", "tcpRoutes", "tlsRoute", "tlsRoutes"] {
                            if let Some(x) = g.get(other) {
                                unsupported_out.push(unsupported(
                                    g.path,
                                    x.key_line,
                                    &g.field_of(other),
                                    "only HTTPRoutes are weighted by rollgit's Gateway API router",
                                ));
                            }
                        }
                        if routes.is_empty() {
                            g.error(g.line, "httpRoute", "is required");
                        }
                        GatewayApiRouting {
                            http_routes: routes,
                            namespace: g.string("namespace").map(|(s, _)| s),
                        }
                    });
                    routing.gateway_api = Some(gw);
                }
            }
            "managedRoutes" => unsupported_out.push(unsupported(
                t.path,
                v.key_line,
                "spec.strategy.canary.trafficRouting.managedRoutes",
                "header and mirror routes are not implemented by rollgit's Argo Rollouts executor",
            )),
            other => unsupported_out.push(unsupported(
                t.path,
                v.key_line,
                &format!("spec.strategy.canary.trafficRouting.{other}"),
                &format!("the {other} traffic router is not implemented by rollgit's Argo Rollouts executor (it implements nginx and the Gateway API plugin)"),
            )),
        }
    }
}

/// One `steps[i]` mapping.
fn read_step(s: &mut Reader) -> CanaryStep {
    s.reject_unknown(&[
        "setWeight",
        "pause",
        "setCanaryScale",
        "analysis",
        "experiment",
        "setHeaderRoute",
        "setMirrorRoute",
        "plugin",
    ]);
    let mut step = CanaryStep {
        set_weight: s.int("setWeight"),
        ..Default::default()
    };
    if s.has("pause") {
        step.pause = Some(match s.mapping("pause") {
            Some(p) => s.within("pause", p, |p| {
                p.reject_unknown(&["duration"]);
                p.int_or_string("duration")
            }),
            None => None,
        });
    }
    if let Some(cs) = s.mapping("setCanaryScale") {
        step.set_canary_scale = Some(s.within("setCanaryScale", cs, |cs| {
            cs.reject_unknown(&["replicas", "weight", "matchTrafficWeight"]);
            SetCanaryScale {
                replicas: cs.int("replicas"),
                weight: cs.int("weight"),
                match_traffic_weight: cs.boolean("matchTrafficWeight").unwrap_or(false),
            }
        }));
    }
    step.other = OTHER_STEP_KINDS.iter().any(|k| s.has(k));
    step
}

/// Reads a Rollout object as the cluster holds it (JSON) with the same rules as a file of an
/// app; errors are `<what>:<line of the pretty-printed JSON>: message`.
pub fn read_argo_object(
    what: &str,
    object: &serde_json::Value,
) -> Result<ArgoRollout, crate::RenderErrors> {
    let text = serde_json::to_string_pretty(object).unwrap_or_default();
    let mut sink = Sink {
        errors: Vec::new(),
        warnings: Vec::new(),
        unsupported: Vec::new(),
    };
    let docs = crate::yaml::parse_documents(text.as_bytes())
        .map_err(|e| crate::RenderErrors(vec![RenderError::new(what, e.line, e.message)]))?;
    let read = docs
        .first()
        .and_then(|doc| read_argo_rollout(what, doc, &mut sink));
    match read {
        Some(r) if sink.errors.is_empty() => Ok(r),
        _ => {
            if sink.errors.is_empty() {
                sink.errors
                    .push(RenderError::new(what, 1, format!("{PREFIX}not a Rollout")));
            }
            Err(crate::RenderErrors(sink.errors))
        }
    }
}
