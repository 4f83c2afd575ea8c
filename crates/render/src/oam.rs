//! KubeVela `Application` components rendered the way KubeVela's built-in definitions
//! (`vela-templates/definitions/internal/component/{webservice,worker}.cue`) and the Kruise
//! addon's `cloneset` render them (`clonesetservice`, the name of the same definition in
//! KubeVela's AppRollout docs, renders exactly like `cloneset`).

use serde_json::{Map, Value, json};

use crate::error::RenderError;
use crate::kinds::{NameRule, check_name, is_dns1123_subdomain};
use crate::render::Sink;
use crate::revision::{APP_COMPONENT_LABEL, APP_NAME_LABEL};
use crate::rollout::{ParsedRolloutTrait, ROLLOUT_TRAIT, parse_rollout_trait};
use crate::yaml::{Located, Node};

/// The component types rollgit renders.
pub const COMPONENT_TYPES: &[&str] = &[
    "webservice",
    "worker",
    "cloneset",
    "clonesetservice",
    "ref-objects",
];

/// The trait types rollgit renders. A component's other traits (KubeVela's `scaler`,
/// `gateway`, `expose`, `annotations`, ...) would change what KubeVela deploys, so they are
/// rejected rather than dropped.
pub const TRAIT_TYPES: &[&str] = &[ROLLOUT_TRAIT];

/// Checks that every trait of a component (`traits`, under the component field `comp_field`)
/// has a string `type` that rollgit renders ([`TRAIT_TYPES`]), reporting each that does not
/// at its line. Returns whether all do.
pub(crate) fn check_trait_types(
    path: &str,
    comp_field: &str,
    comp: &str,
    traits: &[Located],
    sink: &mut Sink,
) -> bool {
    let mut ok = true;
    for (j, tr) in traits.iter().enumerate() {
        let field = format!("{comp_field}.traits[{j}].type");
        match tr.get("type") {
            Some(t) => match t.as_str() {
                Some(kind) if TRAIT_TYPES.contains(&kind) => {}
                Some(kind) => {
                    sink.error(err(
                        path,
                        t.line,
                        &field,
                        format!(
                            "component \"{comp}\": unknown trait type {kind:?} (supported: {})",
                            TRAIT_TYPES.join(", ")
                        ),
                    ));
                    ok = false;
                }
                None => {
                    sink.error(err(
                        path,
                        t.line,
                        &field,
                        format!("component \"{comp}\": trait {j} needs a string type"),
                    ));
                    ok = false;
                }
            },
            None => {
                sink.error(err(
                    path,
                    tr.line,
                    &field,
                    format!("component \"{comp}\": trait {j} needs a string type"),
                ));
                ok = false;
            }
        }
    }
    ok
}

/// The component types that render an OpenKruise CloneSet (`clonesetservice` is the name
/// KubeVela's rollout docs give the same definition).
fn is_cloneset(kind: &str) -> bool {
    matches!(kind, "cloneset" | "clonesetservice")
}

/// Label KubeVela puts on workloads: the component type.
pub const WORKLOAD_TYPE_LABEL: &str = "workload.oam.dev/type";

pub(crate) struct ParsedApplication {
    pub components: Vec<ParsedComponent>,
    pub policies: Value,
    pub workflow: Value,
}

pub(crate) struct ParsedComponent {
    pub name: String,
    pub component_type: String,
    pub external_revision: Option<String>,
    pub external_revision_line: u32,
    pub line: u32,
    pub field: String,
    pub properties: Value,
    pub traits: Value,
    pub rollout: Option<ParsedRolloutTrait>,
    pub output: ComponentOutput,
}

pub(crate) enum ComponentOutput {
    /// Workload first, then auxiliary objects (Service).
    Objects(Vec<Value>),
    /// `ref-objects` targets, resolved by the caller.
    Refs(Vec<RefTarget>),
    /// The component has errors (already reported).
    Invalid,
}

pub(crate) struct RefTarget {
    pub api_version: String,
    pub kind: String,
    /// The name (empty when `selector` selects).
    pub name: String,
    /// `labelSelector`: every object of the kind (in the namespace) with these labels.
    pub selector: Option<std::collections::BTreeMap<String, String>>,
    pub namespace: Option<String>,
    pub line: u32,
    pub field: String,
}

fn err(path: &str, line: u32, field: &str, message: String) -> RenderError {
    RenderError::new(path, line, message).with_field(field)
}

pub(crate) fn parse_application(
    path: &str,
    doc: &Located,
    app_name: &str,
    app_ns: &str,
    sink: &mut Sink,
) -> Option<ParsedApplication> {
    let Some(spec) = doc.get("spec") else {
        sink.error(err(
            path,
            doc.line,
            "spec",
            "Application: missing spec".into(),
        ));
        return None;
    };
    let Node::Map(_) = &spec.node else {
        sink.error(err(
            path,
            spec.line,
            "spec",
            format!(
                "Application: spec must be a mapping, got {}",
                spec.node.type_name()
            ),
        ));
        return None;
    };
    let components = match spec.get("components") {
        None => {
            sink.error(err(
                path,
                spec.line,
                "spec.components",
                "Application: missing spec.components".into(),
            ));
            return None;
        }
        Some(Located {
            node: Node::Seq(items),
            ..
        }) => items,
        Some(other) => {
            sink.error(err(
                path,
                other.line,
                "spec.components",
                format!(
                    "Application: spec.components must be a list, got {}",
                    other.node.type_name()
                ),
            ));
            return None;
        }
    };
    let mut out = Vec::new();
    for (i, c) in components.iter().enumerate() {
        if let Some(pc) = parse_component(path, i, c, app_name, app_ns, sink) {
            out.push(pc);
        }
    }
    Some(ParsedApplication {
        components: out,
        policies: spec.get("policies").map_or(Value::Null, Located::to_json),
        workflow: spec.get("workflow").map_or(Value::Null, Located::to_json),
    })
}

fn parse_component(
    path: &str,
    index: usize,
    c: &Located,
    app_name: &str,
    app_ns: &str,
    sink: &mut Sink,
) -> Option<ParsedComponent> {
    let field = format!("spec.components[{index}]");
    if !matches!(c.node, Node::Map(_)) {
        sink.error(err(
            path,
            c.line,
            &field,
            format!("component must be a mapping, got {}", c.node.type_name()),
        ));
        return None;
    }
    let name = match c.get("name") {
        None => {
            sink.error(err(
                path,
                c.line,
                &format!("{field}.name"),
                "component: missing name".into(),
            ));
            return None;
        }
        Some(n) => match n.as_str() {
            Some(s) => {
                if let Err(why) = check_name(NameRule::Label, s) {
                    sink.error(err(
                        path,
                        n.line,
                        &format!("{field}.name"),
                        format!("invalid component name \"{s}\": {why}"),
                    ));
                    return None;
                }
                s.to_owned()
            }
            None => {
                sink.error(err(
                    path,
                    n.line,
                    &format!("{field}.name"),
                    format!(
                        "component name must be a string, got {}",
                        n.node.type_name()
                    ),
                ));
                return None;
            }
        },
    };
    let component_type = match c.get("type") {
        None => {
            sink.error(err(
                path,
                c.line,
                &format!("{field}.type"),
                format!("component \"{name}\": missing type"),
            ));
            return None;
        }
        Some(t) => match t.as_str() {
            Some(s) if COMPONENT_TYPES.contains(&s) => s.to_owned(),
            Some(s) => {
                sink.error(err(
                    path,
                    t.line,
                    &format!("{field}.type"),
                    format!(
                        "unknown component type \"{s}\" (supported: {})",
                        COMPONENT_TYPES.join(", ")
                    ),
                ));
                return None;
            }
            None => {
                sink.error(err(
                    path,
                    t.line,
                    &format!("{field}.type"),
                    format!(
                        "component \"{name}\": type must be a string, got {}",
                        t.node.type_name()
                    ),
                ));
                return None;
            }
        },
    };
    let mut ok = true;
    let (external_revision, external_revision_line) = match c.get("externalRevision") {
        None
        | Some(Located {
            node: Node::Null, ..
        }) => (None, c.line),
        Some(r) => match r.as_str() {
            Some(s) if is_dns1123_subdomain(s) => (Some(s.to_owned()), r.line),
            Some(s) => {
                sink.error(err(
                    path,
                    r.line,
                    &format!("{field}.externalRevision"),
                    format!(
                        "component \"{name}\": invalid externalRevision \"{s}\": must be a lowercase RFC 1123 subdomain"
                    ),
                ));
                ok = false;
                (None, r.line)
            }
            None => {
                sink.error(err(
                    path,
                    r.line,
                    &format!("{field}.externalRevision"),
                    format!(
                        "component \"{name}\": externalRevision must be a string, got {}",
                        r.node.type_name()
                    ),
                ));
                ok = false;
                (None, r.line)
            }
        },
    };
    let traits = match c.get("traits") {
        None
        | Some(Located {
            node: Node::Null, ..
        }) => Value::Array(Vec::new()),
        Some(t) => {
            if let Node::Seq(items) = &t.node {
                ok &= check_trait_types(path, &field, &name, items, sink);
            } else {
                sink.error(err(
                    path,
                    t.line,
                    &format!("{field}.traits"),
                    format!(
                        "component \"{name}\": traits must be a list, got {}",
                        t.node.type_name()
                    ),
                ));
                ok = false;
            }
            t.to_json()
        }
    };
    let rollout = match c.get("traits") {
        Some(Located {
            node: Node::Seq(items),
            ..
        }) => parse_rollout_trait(path, &field, &name, items, sink),
        _ => None,
    };
    if let Some(r) = &rollout
        && component_type == "ref-objects"
    {
        sink.error(err(
            path,
            r.rollout.source.line,
            &r.trait_field,
            format!(
                "component \"{name}\": the rollout trait needs a component with one workload (webservice, worker, cloneset, clonesetservice), not ref-objects"
            ),
        ));
        ok = false;
    }
    let props_node = c.get("properties");
    if let Some(p) = props_node
        && !matches!(p.node, Node::Map(_) | Node::Null)
    {
        sink.error(err(
            path,
            p.line,
            &format!("{field}.properties"),
            format!(
                "component \"{name}\": properties must be a mapping, got {}",
                p.node.type_name()
            ),
        ));
        return None;
    }
    let mut props = Props {
        path,
        comp: &name,
        field: format!("{field}.properties"),
        node: props_node.filter(|p| matches!(p.node, Node::Map(_))),
        line: props_node.map_or(c.line, |p| p.line),
        sink,
        ok: true,
    };
    let output = match component_type.as_str() {
        "ref-objects" => ref_objects(&mut props),
        kind => workload(&mut props, kind, app_name, app_ns),
    };
    let output = if props.ok && ok {
        output
    } else {
        ComponentOutput::Invalid
    };
    Some(ParsedComponent {
        name: name.clone(),
        component_type,
        external_revision,
        external_revision_line,
        line: c.line,
        field,
        properties: props_node.map_or(Value::Null, Located::to_json),
        traits,
        rollout,
        output,
    })
}

/// Reads a component's properties, reporting wrong types and unknown properties.
struct Props<'a> {
    path: &'a str,
    comp: &'a str,
    field: String,
    node: Option<&'a Located>,
    line: u32,
    sink: &'a mut Sink,
    ok: bool,
}

impl<'a> Props<'a> {
    /// The properties of one list item `item` under field `key` (such as `ports[0]`), reporting
    /// into the same sink.
    fn item<'b>(&'b mut self, key: &str, item: &'a Located) -> Props<'b>
    where
        'a: 'b,
    {
        Props {
            path: self.path,
            comp: self.comp,
            field: format!("{}.{key}", self.field),
            node: Some(item),
            line: item.line,
            sink: &mut *self.sink,
            ok: true,
        }
    }

    fn get(&self, key: &str) -> Option<&'a Located> {
        self.node
            .and_then(|n| n.get(key))
            .filter(|v| v.node != Node::Null)
    }

    fn type_error(&mut self, line: u32, key: &str, expected: &str, got: &Located) {
        self.ok = false;
        let message = format!(
            "component \"{}\": property \"{key}\" must be {expected}, got {}",
            self.comp,
            got.node.type_name()
        );
        self.sink.error(err(
            self.path,
            line,
            &format!("{}.{key}", self.field),
            message,
        ));
    }

    fn invalid(&mut self, line: u32, key: &str, message: String) {
        self.ok = false;
        let message = format!("component \"{}\": property \"{key}\" {message}", self.comp);
        self.sink.error(err(
            self.path,
            line,
            &format!("{}.{key}", self.field),
            message,
        ));
    }

    fn check_unknown(&mut self, known: &[&str]) {
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
                    "component \"{}\": property \"{k}\" is not supported by rollgit and is ignored",
                    self.comp
                );
                self.sink.warn(
                    RenderError::new(self.path, v.line, message)
                        .with_field(format!("{}.{k}", self.field)),
                );
            }
        }
    }

    fn string(&mut self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        match v.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.type_error(v.line, key, "a string", v);
                None
            }
        }
    }

    fn required_string(&mut self, key: &str) -> Option<String> {
        if self.get(key).is_none() {
            self.ok = false;
            let message = format!(
                "component \"{}\": missing required property \"{key}\"",
                self.comp
            );
            self.sink.error(err(
                self.path,
                self.line,
                &format!("{}.{key}", self.field),
                message,
            ));
            return None;
        }
        self.string(key)
    }

    /// A quantity: a string, or a number written bare (`cpu: 0.5`).
    fn quantity(&mut self, key: &str) -> Option<String> {
        let v = self.get(key)?;
        match &v.node {
            Node::Str(s) => Some(s.clone()),
            Node::Num(n) => Some(n.to_string()),
            _ => {
                self.type_error(v.line, key, "a string or number", v);
                None
            }
        }
    }

    fn int(&mut self, key: &str, min: i64, max: i64) -> Option<i64> {
        let v = self.get(key)?;
        match &v.node {
            Node::Num(n) if n.as_i64().is_some_and(|i| (min..=max).contains(&i)) => n.as_i64(),
            Node::Num(n) if n.as_i64().is_some() || n.as_u64().is_some() => {
                self.invalid(
                    v.line,
                    key,
                    format!("must be between {min} and {max}, got {n}"),
                );
                None
            }
            _ => {
                self.type_error(v.line, key, "an integer", v);
                None
            }
        }
    }

    fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        let v = self.get(key)?;
        let Node::Seq(items) = &v.node else {
            self.type_error(v.line, key, "a list of strings", v);
            return None;
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            match &item.node {
                Node::Str(s) => out.push(s.clone()),
                _ => {
                    self.type_error(item.line, &format!("{key}[{i}]"), "a string", item);
                    return None;
                }
            }
        }
        Some(out)
    }

    fn string_map(&mut self, key: &str) -> Option<Map<String, Value>> {
        let v = self.get(key)?;
        let Node::Map(entries) = &v.node else {
            self.type_error(v.line, key, "a mapping of strings", v);
            return None;
        };
        let mut out = Map::new();
        for (k, item) in entries {
            match &item.node {
                Node::Str(s) => {
                    out.insert(k.clone(), json!(s));
                }
                _ => {
                    self.type_error(item.line, &format!("{key}.{k}"), "a string", item);
                    return None;
                }
            }
        }
        Some(out)
    }

    fn mapping(&mut self, key: &str) -> Option<Value> {
        let v = self.get(key)?;
        if matches!(v.node, Node::Map(_)) {
            Some(v.to_json())
        } else {
            self.type_error(v.line, key, "a mapping", v);
            None
        }
    }

    fn one_of(&mut self, key: &str, allowed: &[&str]) -> Option<String> {
        let line = self.get(key)?.line;
        let s = self.string(key)?;
        if allowed.contains(&s.as_str()) {
            Some(s)
        } else {
            self.invalid(
                line,
                key,
                format!("must be one of {}, got \"{s}\"", allowed.join(", ")),
            );
            None
        }
    }
}

const WORKLOAD_PROPERTIES: &[&str] = &[
    "image",
    "imagePullPolicy",
    "imagePullSecrets",
    "cmd",
    "args",
    "env",
    "port",
    "ports",
    "exposeType",
    "cpu",
    "memory",
    "labels",
    "annotations",
    "replicas",
    "livenessProbe",
    "readinessProbe",
];

struct Port {
    port: i64,
    name: Option<String>,
    protocol: Option<String>,
    expose: bool,
}

fn ports(p: &mut Props) -> (Vec<Value>, Vec<Port>) {
    let mut container_ports = Vec::new();
    let mut exposed = Vec::new();
    if let Some(v) = p.get("ports") {
        let Node::Seq(items) = &v.node else {
            p.type_error(v.line, "ports", "a list", v);
            return (container_ports, exposed);
        };
        for (i, item) in items.iter().enumerate() {
            let key = format!("ports[{i}]");
            if !matches!(item.node, Node::Map(_)) {
                p.type_error(item.line, &key, "a mapping", item);
                continue;
            }
            let mut sub = p.item(&key, item);
            let port = if sub.get("port").is_none() {
                sub.required_string("port");
                None
            } else {
                sub.int("port", 1, 65535)
            };
            let name = sub.string("name");
            let protocol = sub.one_of("protocol", &["TCP", "UDP", "SCTP"]);
            let expose = match sub.get("expose") {
                None => false,
                Some(Located {
                    node: Node::Bool(b),
                    ..
                }) => *b,
                Some(other) => {
                    sub.type_error(other.line, "expose", "a boolean", other);
                    false
                }
            };
            sub.check_unknown(&["port", "name", "protocol", "expose"]);
            if !sub.ok {
                p.ok = false;
                continue;
            }
            let Some(port) = port else { continue };
            let port_name = name.clone().unwrap_or_else(|| format!("port-{port}"));
            container_ports.push(json!({
                "containerPort": port,
                "protocol": protocol.clone().unwrap_or_else(|| "TCP".to_owned()),
                "name": port_name,
            }));
            if expose {
                exposed.push(Port {
                    port,
                    name,
                    protocol,
                    expose,
                });
            }
        }
    } else if let Some(port) = p.int("port", 1, 65535) {
        // The older form: a container port, not exposed.
        container_ports.push(json!({ "containerPort": port }));
    }
    (container_ports, exposed)
}

fn workload(p: &mut Props, kind: &str, app_name: &str, app_ns: &str) -> ComponentOutput {
    let comp = p.comp.to_owned();
    let mut known: Vec<&str> = WORKLOAD_PROPERTIES.to_vec();
    if is_cloneset(kind) {
        known.push("updateStrategyType");
    }
    p.check_unknown(&known);
    let image = p.required_string("image");
    let image_pull_policy = p.one_of("imagePullPolicy", &["Always", "Never", "IfNotPresent"]);
    let image_pull_secrets = p.string_list("imagePullSecrets");
    let cmd = p.string_list("cmd");
    let args = p.string_list("args");
    let env = env(p);
    let (container_ports, exposed) = ports(p);
    let expose_type = p.one_of(
        "exposeType",
        &["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"],
    );
    let cpu = p.quantity("cpu");
    let memory = p.quantity("memory");
    let labels = p.string_map("labels");
    let annotations = p.string_map("annotations");
    let replicas = p.int("replicas", 0, i64::from(i32::MAX));
    let liveness = p.mapping("livenessProbe");
    let readiness = p.mapping("readinessProbe");
    let update_strategy = if is_cloneset(kind) {
        p.one_of(
            "updateStrategyType",
            &["ReCreate", "InPlaceIfPossible", "InPlaceOnly"],
        )
    } else {
        None
    };
    let Some(image) = image else {
        return ComponentOutput::Invalid;
    };
    if !p.ok {
        return ComponentOutput::Invalid;
    }

    let mut container = Map::new();
    container.insert("name".into(), json!(comp));
    container.insert("image".into(), json!(image));
    if !container_ports.is_empty() {
        container.insert("ports".into(), Value::Array(container_ports));
    }
    if let Some(v) = image_pull_policy {
        container.insert("imagePullPolicy".into(), json!(v));
    }
    if let Some(v) = cmd {
        container.insert("command".into(), json!(v));
    }
    if let Some(v) = args {
        container.insert("args".into(), json!(v));
    }
    if let Some(v) = env {
        container.insert("env".into(), Value::Array(v));
    }
    if cpu.is_some() || memory.is_some() {
        let mut q = Map::new();
        if let Some(c) = &cpu {
            q.insert("cpu".into(), json!(c));
        }
        if let Some(m) = &memory {
            q.insert("memory".into(), json!(m));
        }
        container.insert(
            "resources".into(),
            json!({ "limits": Value::Object(q.clone()), "requests": Value::Object(q) }),
        );
    }
    if let Some(v) = liveness {
        container.insert("livenessProbe".into(), v);
    }
    if let Some(v) = readiness {
        container.insert("readinessProbe".into(), v);
    }

    let mut pod_labels = labels.clone().unwrap_or_default();
    pod_labels.insert(APP_NAME_LABEL.into(), json!(app_name));
    pod_labels.insert(APP_COMPONENT_LABEL.into(), json!(comp));
    let mut pod_meta = Map::new();
    pod_meta.insert("labels".into(), Value::Object(pod_labels));
    if let Some(a) = &annotations {
        pod_meta.insert("annotations".into(), Value::Object(a.clone()));
    }
    let mut pod_spec = Map::new();
    pod_spec.insert("containers".into(), json!([Value::Object(container)]));
    if let Some(secrets) = image_pull_secrets {
        pod_spec.insert(
            "imagePullSecrets".into(),
            Value::Array(secrets.iter().map(|s| json!({ "name": s })).collect()),
        );
    }

    let mut meta_labels = labels.unwrap_or_default();
    meta_labels.insert(APP_NAME_LABEL.into(), json!(app_name));
    meta_labels.insert(APP_COMPONENT_LABEL.into(), json!(comp));
    meta_labels.insert(WORKLOAD_TYPE_LABEL.into(), json!(kind));
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(comp));
    metadata.insert("namespace".into(), json!(app_ns));
    metadata.insert("labels".into(), Value::Object(meta_labels));
    if let Some(a) = annotations {
        metadata.insert("annotations".into(), Value::Object(a));
    }

    let mut spec = Map::new();
    if let Some(r) = replicas {
        spec.insert("replicas".into(), json!(r));
    }
    spec.insert(
        "selector".into(),
        json!({ "matchLabels": { APP_COMPONENT_LABEL: comp } }),
    );
    spec.insert(
        "template".into(),
        json!({ "metadata": Value::Object(pod_meta), "spec": Value::Object(pod_spec) }),
    );
    if let Some(t) = update_strategy {
        spec.insert("updateStrategy".into(), json!({ "type": t }));
    }
    let (api_version, k) = if is_cloneset(kind) {
        ("apps.kruise.io/v1alpha1", "CloneSet")
    } else {
        ("apps/v1", "Deployment")
    };
    let workload = json!({
        "apiVersion": api_version,
        "kind": k,
        "metadata": Value::Object(metadata),
        "spec": Value::Object(spec),
    });
    let mut out = vec![workload];
    if kind != "worker" && !exposed.is_empty() {
        let service_ports: Vec<Value> = exposed
            .iter()
            .filter(|x| x.expose)
            .map(|x| {
                let mut m = Map::new();
                m.insert(
                    "name".into(),
                    json!(x.name.clone().unwrap_or_else(|| format!("port-{}", x.port))),
                );
                m.insert("port".into(), json!(x.port));
                m.insert("targetPort".into(), json!(x.port));
                if let Some(proto) = x.protocol.as_deref().filter(|p| *p != "TCP") {
                    m.insert("protocol".into(), json!(proto));
                }
                Value::Object(m)
            })
            .collect();
        out.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {
                "name": comp,
                "namespace": app_ns,
                "labels": { APP_NAME_LABEL: app_name, APP_COMPONENT_LABEL: comp },
            },
            "spec": {
                "selector": { APP_COMPONENT_LABEL: comp },
                "ports": service_ports,
                "type": expose_type.unwrap_or_else(|| "ClusterIP".to_owned()),
            },
        }));
    }
    ComponentOutput::Objects(out)
}

fn env(p: &mut Props) -> Option<Vec<Value>> {
    let v = p.get("env")?;
    let Node::Seq(items) = &v.node else {
        p.type_error(v.line, "env", "a list", v);
        return None;
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("env[{i}]");
        if !matches!(item.node, Node::Map(_)) {
            p.type_error(item.line, &key, "a mapping", item);
            continue;
        }
        let mut sub = p.item(&key, item);
        let name = sub.required_string("name");
        let value = sub.string("value");
        let value_from = sub.mapping("valueFrom");
        sub.check_unknown(&["name", "value", "valueFrom"]);
        if !sub.ok {
            p.ok = false;
            continue;
        }
        let Some(name) = name else { continue };
        let mut e = Map::new();
        e.insert("name".into(), json!(name));
        if let Some(v) = value {
            e.insert("value".into(), json!(v));
        }
        if let Some(v) = value_from {
            e.insert("valueFrom".into(), v);
        }
        out.push(Value::Object(e));
    }
    Some(out)
}

fn ref_objects(p: &mut Props) -> ComponentOutput {
    p.check_unknown(&["objects"]);
    let Some(v) = p.get("objects") else {
        p.required_string("objects");
        return ComponentOutput::Invalid;
    };
    let Node::Seq(items) = &v.node else {
        p.type_error(v.line, "objects", "a list", v);
        return ComponentOutput::Invalid;
    };
    let mut targets = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let key = format!("objects[{i}]");
        if !matches!(item.node, Node::Map(_)) {
            p.type_error(item.line, &key, "a mapping", item);
            continue;
        }
        let field = format!("{}.{key}", p.field);
        let mut sub = p.item(&key, item);
        let api_version = sub.required_string("apiVersion");
        let kind = sub.required_string("kind");
        let selector = sub.string_map("labelSelector").map(|m| {
            m.into_iter()
                .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_owned()))
                .collect::<std::collections::BTreeMap<String, String>>()
        });
        let name = match (&selector, sub.get("name")) {
            (Some(_), None) => Some(String::new()),
            (Some(_), Some(n)) => {
                sub.invalid(
                    n.line,
                    "name",
                    "and labelSelector cannot be given together: name one object, or select them by labels".into(),
                );
                None
            }
            (None, _) => sub.required_string("name"),
        };
        if selector.as_ref().is_some_and(|s| s.is_empty()) {
            let line = sub.get("labelSelector").map_or(item.line, |v| v.line);
            sub.invalid(
                line,
                "labelSelector",
                "must name at least one label (an empty selector would take every object of the kind)".into(),
            );
        }
        let namespace = sub.string("namespace");
        sub.check_unknown(&["apiVersion", "kind", "name", "namespace", "labelSelector"]);
        if !sub.ok {
            p.ok = false;
            continue;
        }
        if let (Some(api_version), Some(kind), Some(name)) = (api_version, kind, name) {
            targets.push(RefTarget {
                api_version,
                kind,
                name,
                selector,
                namespace,
                line: item.line,
                field,
            });
        }
    }
    if p.ok {
        ComponentOutput::Refs(targets)
    } else {
        ComponentOutput::Invalid
    }
}
