//! The render stage: an app's files to Kubernetes objects, component revisions and the
//! Application's description.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::discover::is_manifest_path;
use crate::error::{RenderError, RenderErrors};
use crate::kinds::{ObjectKey, Scope, apply_rank, check_name, group_of, name_rule, scope_of};
use crate::kruise::{KRUISE_ROLLOUT_GROUP, KruiseRolloutInfo, held_workloads};
use crate::oam::{self, ComponentOutput, RefTarget};
use crate::refs::RefLookup;
use crate::revision::{
    APP_COMPONENT_LABEL, APP_NAME_LABEL, AppRevision, ComponentRevision,
    PUBLISH_VERSION_ANNOTATION, RevisionState, canonical_json, hex_sha256, next_publish_version,
    plan_app_revision, plan_revision,
};
use crate::rollout::{
    AppRolloutInfo, ROLLOUT_TEMPLATE_ANNOTATION, RolloutTrait, check_target_revision,
    check_trait_batches, parse_app_rollout, resolve_app_rollouts,
};
use crate::workflow::{OamDoc, check_policy_docs, check_workflow_docs, parse_delivery};
use crate::yaml::{Located, Node, parse_documents};

/// One file of an app at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Repository-relative path.
    pub path: String,
    /// File content.
    pub content: Vec<u8>,
}

impl SourceFile {
    /// A file from a path and text.
    pub fn new(path: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        SourceFile {
            path: path.into(),
            content: content.into(),
        }
    }
}

/// Where something was written.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct SourceLocation {
    /// File path.
    pub path: String,
    /// 1-based line.
    pub line: u32,
}

impl std::fmt::Display for SourceLocation {
    /// `path:line`, the path's control characters escaped ([`rollgit_syntax::escape`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", rollgit_syntax::escape(&self.path), self.line)
    }
}

/// One object to apply.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RenderedObject {
    /// The object (apiVersion, kind, metadata, ...), namespace defaulted where known.
    pub object: Value,
    /// Its identity.
    pub key: ObjectKey,
    /// Its scope as far as rollgit knows.
    pub scope: Scope,
    /// The document it came from (for a component's outputs: the component entry).
    pub source: SourceLocation,
    /// The component that produced it, if any.
    pub component: Option<String>,
    /// True for a component's workload (Deployment, CloneSet, or a workload kind among
    /// `ref-objects`): it carries `app.oam.dev/publishVersion`.
    pub workload: bool,
    /// True for the workload of a component whose workload a rollout owns (see
    /// [`ComponentInfo::rollout_owned`]): the rollout stage, not a plain apply, rolls it out.
    /// The component's other objects (Service, ...) are applied as usual.
    pub rollout_owned: bool,
}

/// An Argo Rollout of the app: the object's key and what it says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ArgoRolloutInfo {
    /// The Rollout object's key (namespace defaulted as for any namespaced object).
    pub key: ObjectKey,
    /// The Rollout, read ([`crate::ArgoRollout::unsupported`] lists what rollgit's executor
    /// does not run).
    pub rollout: crate::argo::ArgoRollout,
}

/// One component of an Application.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentInfo {
    /// Component name.
    pub name: String,
    /// Component type (`webservice`, `worker`, `cloneset`, `ref-objects`).
    #[serde(rename = "type")]
    pub component_type: String,
    /// `externalRevision`, if set in Git.
    #[serde(rename = "externalRevision")]
    pub external_revision: Option<String>,
    /// `properties` as written.
    pub properties: Value,
    /// `traits` as written (a list; the `rollout` trait is also parsed into `rollout`).
    pub traits: Value,
    /// The component's `rollout` trait, validated.
    pub rollout: Option<RolloutTrait>,
    /// True when a rollout owns the component's workload: it has a `rollout` trait, an
    /// AppRollout of the app rolls it, or its Application is annotated
    /// `app.oam.dev/rollout-template: "true"`. Only components with a workload.
    pub rollout_owned: bool,
    /// The workload object, if the component renders one.
    pub workload: Option<ObjectKey>,
    /// The revision decided for it ([`ComponentRevision::name`]).
    pub revision: Option<String>,
    /// Where the component is written.
    pub source: SourceLocation,
}

impl ComponentInfo {
    /// The properties of the component's first trait of `trait_type`, if any.
    pub fn trait_properties(&self, trait_type: &str) -> Option<&Value> {
        self.traits.as_array()?.iter().find_map(|t| {
            (t.get("type")?.as_str()? == trait_type)
                .then(|| t.get("properties").unwrap_or(&Value::Null))
        })
    }
}

/// A KubeVela Application found in the app. It is not applied (there is no KubeVela
/// controller); the daemon records its status and later stages run its rollouts and workflow.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApplicationInfo {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`, or the app's namespace.
    pub namespace: String,
    /// Components, in order.
    pub components: Vec<ComponentInfo>,
    /// `spec.policies` as written (`null` when absent).
    pub policies: Value,
    /// `spec.workflow` as written (`null` when absent).
    pub workflow: Value,
    /// Its delivery to the fleet (topology policies and workflow), when it has one
    /// ([`crate::workflow`]).
    pub delivery: Option<crate::workflow::Delivery>,
    /// `metadata.annotations` (string values).
    pub annotations: BTreeMap<String, String>,
    /// `metadata.labels` (string values).
    pub labels: BTreeMap<String, String>,
    /// Where the Application is written.
    pub source: SourceLocation,
}

/// The result of rendering one app.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rendered {
    /// The rollgit app name.
    pub app: String,
    /// Objects to apply, in apply order (Namespaces, CRDs, cluster-scoped, namespaced known
    /// kinds, unknown kinds, admission webhooks; then kind, namespace, name).
    pub objects: Vec<RenderedObject>,
    /// KubeVela Applications (not applied).
    pub applications: Vec<ApplicationInfo>,
    /// Other `core.oam.dev` documents (Policy, Workflow, ...): not applied, kept for the
    /// workflow stage.
    pub oam_objects: Vec<RenderedObject>,
    /// One revision per component that renders a workload spec, in component order.
    pub revisions: Vec<ComponentRevision>,
    /// One app revision per Application, in Application order.
    pub app_revisions: Vec<AppRevision>,
    /// The AppRollout documents (also in `oam_objects`), validated and resolved, in source
    /// order.
    pub app_rollouts: Vec<AppRolloutInfo>,
    /// The Argo Rollouts (`argoproj.io` `Rollout`, also in `objects`), read and validated,
    /// in source order.
    pub argo_rollouts: Vec<ArgoRolloutInfo>,
    /// The OpenKruise Rollouts (also in `objects`: they are applied), validated, with the
    /// workload of this app each one holds, in source order.
    pub kruise_rollouts: Vec<KruiseRolloutInfo>,
    /// The app's `app.oam.dev/publishVersion`.
    pub publish_version: String,
    /// Whether it differs from [`RevisionState::publish`].
    pub publish_version_changed: bool,
    /// sha256 (hex) over the canonical JSON of the objects (before the publishVersion
    /// annotation is added), the Applications and the other `core.oam.dev` documents.
    pub content_hash: String,
    /// Files outside the app that `ref-objects` read (feed them to
    /// [`crate::AppDir::referenced`]).
    pub referenced_paths: Vec<String>,
    /// Problems that do not reject the render (ignored properties, ...), `path:line: message`.
    pub warnings: Vec<RenderError>,
}

impl Rendered {
    /// The rendered object with this key.
    pub fn object(&self, key: &ObjectKey) -> Option<&RenderedObject> {
        self.objects.iter().find(|o| &o.key == key)
    }
}

/// An object on its way through the render.
struct Item {
    object: Value,
    key: ObjectKey,
    scope: Scope,
    source: SourceLocation,
    component: Option<String>,
    workload: bool,
    rollout_owned: bool,
    absorbed: bool,
}

pub(crate) struct Sink {
    pub errors: Vec<RenderError>,
    pub warnings: Vec<RenderError>,
    /// What the upstream system accepts but rollgit's executor does not run (errors only when
    /// rollgit is the controller; taken by the reader of the object that has them).
    pub unsupported: Vec<RenderError>,
}

impl Sink {
    pub fn error(&mut self, e: RenderError) {
        self.errors.push(e);
    }
    pub fn warn(&mut self, e: RenderError) {
        self.warnings.push(e);
    }
}

/// Header fields every document needs.
struct Header {
    api_version: String,
    kind: String,
    name: String,
    namespace: Option<(String, u32)>,
}

fn header(path: &str, doc: &Located, sink: &mut Sink) -> Option<Header> {
    if !matches!(doc.node, Node::Map(_)) {
        sink.error(RenderError::new(
            path,
            doc.line,
            format!(
                "a Kubernetes object must be a mapping, got {}",
                doc.node.type_name()
            ),
        ));
        return None;
    }
    let mut ok = true;
    let string_field = |key: &str, sink: &mut Sink| -> Option<String> {
        match doc.get(key) {
            None => {
                sink.error(
                    RenderError::new(path, doc.line, format!("missing {key}")).with_field(key),
                );
                None
            }
            Some(v) => match v.as_str() {
                Some(s) if !s.is_empty() => Some(s.to_owned()),
                _ => {
                    sink.error(
                        RenderError::new(
                            path,
                            v.line,
                            format!(
                                "{key} must be a non-empty string, got {}",
                                v.node.type_name()
                            ),
                        )
                        .with_field(key),
                    );
                    None
                }
            },
        }
    };
    let api_version = string_field("apiVersion", sink);
    let kind = string_field("kind", sink);
    let mut name = None;
    let mut namespace = None;
    match doc.get("metadata") {
        None => {
            sink.error(
                RenderError::new(path, doc.line, "missing metadata.name")
                    .with_field("metadata.name"),
            );
            ok = false;
        }
        Some(meta) if !matches!(meta.node, Node::Map(_)) => {
            sink.error(
                RenderError::new(
                    path,
                    meta.line,
                    format!("metadata must be a mapping, got {}", meta.node.type_name()),
                )
                .with_field("metadata"),
            );
            ok = false;
        }
        Some(meta) => {
            match meta.get("name") {
                None => {
                    let hint = if meta.get("generateName").is_some() {
                        " (generateName is not supported: rollgit applies objects by name)"
                    } else {
                        ""
                    };
                    sink.error(
                        RenderError::new(path, meta.line, format!("missing metadata.name{hint}"))
                            .with_field("metadata.name"),
                    );
                    ok = false;
                }
                Some(n) => match n.as_str() {
                    Some(s) => name = Some((s.to_owned(), n.line)),
                    None => {
                        sink.error(
                            RenderError::new(
                                path,
                                n.line,
                                format!(
                                    "metadata.name must be a string, got {}",
                                    n.node.type_name()
                                ),
                            )
                            .with_field("metadata.name"),
                        );
                        ok = false;
                    }
                },
            }
            if let Some(ns) = meta.get("namespace") {
                match ns.as_str() {
                    Some(s) => {
                        if let Err(why) = check_name(crate::kinds::NameRule::Label, s) {
                            sink.error(
                                RenderError::new(
                                    path,
                                    ns.line,
                                    format!("invalid metadata.namespace \"{s}\": {why}"),
                                )
                                .with_field("metadata.namespace"),
                            );
                            ok = false;
                        } else {
                            namespace = Some((s.to_owned(), ns.line));
                        }
                    }
                    None => {
                        sink.error(
                            RenderError::new(
                                path,
                                ns.line,
                                format!(
                                    "metadata.namespace must be a string, got {}",
                                    ns.node.type_name()
                                ),
                            )
                            .with_field("metadata.namespace"),
                        );
                        ok = false;
                    }
                }
            }
        }
    }
    let (api_version, kind, (name, name_line)) = (api_version?, kind?, name?);
    if !ok {
        return None;
    }
    if let Err(why) = check_name(name_rule(&api_version, &kind), &name) {
        sink.error(
            RenderError::new(
                path,
                name_line,
                format!("invalid metadata.name \"{name}\": {why}"),
            )
            .with_field("metadata.name"),
        );
        return None;
    }
    Some(Header {
        api_version,
        kind,
        name,
        namespace,
    })
}

/// Sets `metadata.namespace` (or removes it with `None`).
pub(crate) fn set_namespace(object: &mut Value, namespace: Option<&str>) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        match namespace {
            Some(ns) => {
                meta.insert("namespace".into(), json!(ns));
            }
            None => {
                meta.remove("namespace");
            }
        }
    }
}

/// Adds string entries to `metadata.<field>` (labels or annotations).
pub(crate) fn add_metadata_map(object: &mut Value, field: &str, entries: &[(&str, &str)]) {
    let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) else {
        return;
    };
    let slot = meta
        .entry(field.to_owned())
        .or_insert_with(|| Value::Object(Map::new()));
    if !slot.is_object() {
        *slot = Value::Object(Map::new());
    }
    if let Some(map) = slot.as_object_mut() {
        for (k, v) in entries {
            map.insert((*k).to_owned(), json!(v));
        }
    }
}

fn string_map(v: Option<&Value>) -> BTreeMap<String, String> {
    v.and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|s| (k.clone(), s.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

fn is_oam_group(api_version: &str) -> bool {
    group_of(api_version) == "core.oam.dev"
}

/// Scopes declared by the CRDs of the app: (group, kind) → scope.
fn crd_scopes(docs: &[(&str, Located)]) -> BTreeMap<(String, String), Scope> {
    let mut out = BTreeMap::new();
    for (_, doc) in docs {
        let v = doc.to_json();
        if v.get("kind").and_then(Value::as_str) != Some("CustomResourceDefinition") {
            continue;
        }
        let spec = v.get("spec");
        let group = spec.and_then(|s| s.get("group")).and_then(Value::as_str);
        let kind = spec
            .and_then(|s| s.get("names"))
            .and_then(|n| n.get("kind"))
            .and_then(Value::as_str);
        let scope = match spec.and_then(|s| s.get("scope")).and_then(Value::as_str) {
            Some("Cluster") => Scope::Cluster,
            Some("Namespaced") => Scope::Namespaced,
            _ => continue,
        };
        if let (Some(g), Some(k)) = (group, kind) {
            out.insert((g.to_owned(), k.to_owned()), scope);
        }
    }
    out
}

fn resolve_scope(api_version: &str, kind: &str, crds: &BTreeMap<(String, String), Scope>) -> Scope {
    match scope_of(api_version, kind) {
        Scope::Unknown => crds
            .get(&(group_of(api_version).to_owned(), kind.to_owned()))
            .copied()
            .unwrap_or(Scope::Unknown),
        s => s,
    }
}

/// Server-populated fields that must not be applied from Git.
fn strip_server_fields(object: &mut Value) {
    if let Some(map) = object.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for f in [
            "uid",
            "resourceVersion",
            "generation",
            "creationTimestamp",
            "deletionTimestamp",
            "managedFields",
            "selfLink",
            "ownerReferences",
        ] {
            meta.remove(f);
        }
    }
}

/// Renders one app: see the crate docs.
///
/// * `app`: the rollgit app name (an invalid one, [`crate::check_app_name`], is an error at
///   line 1 of the app's first file); `namespace`: the namespace given to namespaced objects
///   (and Applications) that do not name one;
/// * `files`: the app's files (non-manifest files are ignored);
/// * `refs`: the repository's objects, for `ref-objects` ([`crate::ObjectIndex`]);
/// * `prev`: what the cluster holds (existing revisions, last publishVersion).
///
/// Every error of the app is returned at once; a render never panics.
pub fn render_app(
    app: &str,
    namespace: &str,
    files: &[SourceFile],
    refs: &dyn RefLookup,
    prev: &RevisionState,
) -> Result<Rendered, RenderErrors> {
    let mut sink = Sink {
        errors: Vec::new(),
        warnings: Vec::new(),
        unsupported: Vec::new(),
    };
    let mut sorted: Vec<&SourceFile> = files.iter().filter(|f| is_manifest_path(&f.path)).collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let app_paths: BTreeSet<&str> = sorted.iter().map(|f| f.path.as_str()).collect();
    if let Err(e) = crate::discover::check_app_name(app) {
        match crate::naming::app_naming(files) {
            crate::naming::AppNaming::Application { name, at, .. } if name == app => {
                sink.error(
                    RenderError::new(
                        &at.path,
                        at.line,
                        format!(
                            "the app is named after this KubeVela Application, and {name:?} cannot name an app: an app's name is the value of its rollgit.dev/app label and the name of its status object, so it must be at most 63 lower-case letters, digits, '-' or '.', starting and ending with a letter or digit; rename the Application"
                        ),
                    )
                    .with_field("metadata.name"),
                );
            }
            _ => {
                let path = sorted.first().map_or(app, |f| f.path.as_str());
                sink.error(RenderError::new(path, 1, e.to_string()));
            }
        }
    }
    // Kustomize and Helm input is refused whole, before anything is read as plain YAML: a
    // chart's templates and a kustomization's patches are not objects, and their errors would
    // only hide the reason.
    let tools: Vec<RenderError> = sorted
        .iter()
        .filter_map(|f| {
            let tool = crate::discover::unsupported_tool(&f.path)?;
            let (what, how) = if tool == "Helm" {
                ("a Helm chart", "`helm template`")
            } else {
                ("a Kustomize kustomization", "`kustomize build`")
            };
            Some(RenderError::new(
                &f.path,
                1,
                format!(
                    "{what}: {tool} is not rendered by rollgit yet; commit plain YAML (the output of {how}) or a KubeVela Application instead"
                ),
            ))
        })
        .collect();
    if !tools.is_empty() {
        return Err(RenderErrors(tools));
    }

    let mut docs: Vec<(&str, Located)> = Vec::new();
    for f in &sorted {
        match parse_documents(&f.content) {
            Ok(parsed) => docs.extend(parsed.into_iter().map(|d| (f.path.as_str(), d))),
            Err(e) => sink.error(RenderError::new(&f.path, e.line, e.message)),
        }
    }
    let crds = crd_scopes(&docs);

    let mut items: Vec<Item> = Vec::new();
    let mut oam_items: Vec<Item> = Vec::new();
    let mut app_docs: Vec<(&str, &Located, Header)> = Vec::new();
    let mut rollout_docs: Vec<(&str, &Located, String)> = Vec::new();
    let mut argo_rollouts: Vec<ArgoRolloutInfo> = Vec::new();
    let mut kruise_docs: Vec<(&str, &Located, String)> = Vec::new();
    let mut policy_docs: Vec<OamDoc> = Vec::new();
    let mut workflow_docs: Vec<OamDoc> = Vec::new();
    for (path, doc) in &docs {
        let Some(h) = header(path, doc, &mut sink) else {
            continue;
        };
        if is_oam_group(&h.api_version) && h.kind == "Application" {
            app_docs.push((path, doc, h));
            continue;
        }
        let mut object = doc.to_json();
        let scope = resolve_scope(&h.api_version, &h.kind, &crds);
        let ns = match (scope, &h.namespace) {
            (Scope::Cluster, Some((ns, line))) => {
                sink.warn(RenderError::new(
                    path,
                    *line,
                    format!(
                        "{} is cluster-scoped: metadata.namespace \"{ns}\" is ignored",
                        h.kind
                    ),
                ));
                set_namespace(&mut object, None);
                None
            }
            (Scope::Cluster, None) => None,
            (_, Some((ns, _))) => Some(ns.clone()),
            (Scope::Namespaced, None) => {
                set_namespace(&mut object, Some(namespace));
                Some(namespace.to_owned())
            }
            (Scope::Unknown, None) => None,
        };
        let item = Item {
            key: ObjectKey {
                group: group_of(&h.api_version).to_owned(),
                kind: h.kind.clone(),
                namespace: ns,
                name: h.name.clone(),
            },
            object,
            scope,
            source: SourceLocation {
                path: (*path).to_owned(),
                line: doc.line.max(1),
            },
            component: None,
            workload: false,
            rollout_owned: false,
            absorbed: false,
        };
        if group_of(&h.api_version) == crate::argo::ARGO_GROUP
            && h.kind == "Rollout"
            && let Some(rollout) = crate::argo::read_argo_rollout(path, doc, &mut sink)
        {
            argo_rollouts.push(ArgoRolloutInfo {
                key: item.key.clone(),
                rollout,
            });
        }
        if group_of(&h.api_version) == KRUISE_ROLLOUT_GROUP && h.kind == "Rollout" {
            let ns = item
                .key
                .namespace
                .clone()
                .unwrap_or_else(|| namespace.to_owned());
            kruise_docs.push((path, doc, ns));
        }
        if is_oam_group(&h.api_version) {
            if h.kind == "AppRollout" {
                rollout_docs.push((path, doc, h.name.clone()));
            } else if matches!(h.kind.as_str(), "Policy" | "Workflow") {
                let d = OamDoc {
                    path,
                    doc,
                    name: h.name.clone(),
                    namespace: item
                        .key
                        .namespace
                        .clone()
                        .unwrap_or_else(|| namespace.to_owned()),
                };
                if h.kind == "Policy" {
                    policy_docs.push(d);
                } else {
                    workflow_docs.push(d);
                }
            } else {
                sink.warn(RenderError::new(
                    path,
                    doc.line,
                    format!(
                        "{} {} is not applied: rollgit runs no KubeVela controller",
                        h.kind, h.name
                    ),
                ));
            }
            oam_items.push(item);
        } else {
            items.push(item);
        }
    }

    check_policy_docs(&policy_docs, &mut sink);
    check_workflow_docs(&workflow_docs, &mut sink);

    // Applications.
    let mut applications: Vec<ApplicationInfo> = Vec::new();
    let mut revisions: Vec<ComponentRevision> = Vec::new();
    let mut referenced_paths: BTreeSet<String> = BTreeSet::new();
    let mut component_names: BTreeMap<String, SourceLocation> = BTreeMap::new();
    let mut explicit_publish: Option<String> = None;
    for (path, doc, h) in &app_docs {
        let app_ns = h
            .namespace
            .as_ref()
            .map_or(namespace.to_owned(), |(ns, _)| ns.clone());
        let Some(parsed) = oam::parse_application(path, doc, &h.name, &app_ns, &mut sink) else {
            continue;
        };
        let meta = doc.get("metadata").map(Located::to_json);
        let annotations = string_map(meta.as_ref().and_then(|m| m.get("annotations")));
        if explicit_publish.is_none() {
            explicit_publish = annotations.get(PUBLISH_VERSION_ANNOTATION).cloned();
        }
        let rollout_template = annotations
            .get(ROLLOUT_TEMPLATE_ANNOTATION)
            .is_some_and(|v| v == "true");
        let mut info = ApplicationInfo {
            name: h.name.clone(),
            namespace: app_ns.clone(),
            components: Vec::new(),
            policies: parsed.policies,
            workflow: parsed.workflow,
            delivery: parse_delivery(
                path,
                doc,
                &h.name,
                &app_ns,
                &policy_docs,
                &workflow_docs,
                &mut sink,
            ),
            annotations,
            labels: string_map(meta.as_ref().and_then(|m| m.get("labels"))),
            source: SourceLocation {
                path: (*path).to_owned(),
                line: doc.line.max(1),
            },
        };
        for comp in parsed.components {
            let source = SourceLocation {
                path: (*path).to_owned(),
                line: comp.line,
            };
            if let Some(first) = component_names.get(&comp.name) {
                sink.error(RenderError::new(
                    path,
                    comp.line,
                    format!(
                        "duplicate component name \"{}\" (also defined at {first})",
                        comp.name
                    ),
                ));
                continue;
            }
            component_names.insert(comp.name.clone(), source.clone());
            let mut outputs: Vec<Item> = Vec::new();
            let mut workload_key = None;
            let mut data: Option<Value> = None;
            match comp.output {
                ComponentOutput::Objects(objs) => {
                    for (i, obj) in objs.into_iter().enumerate() {
                        let api_version = obj
                            .get("apiVersion")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let kind = obj
                            .get("kind")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let name = obj
                            .pointer("/metadata/name")
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_owned();
                        let key = ObjectKey {
                            group: group_of(&api_version).to_owned(),
                            kind: kind.clone(),
                            namespace: Some(app_ns.clone()),
                            name,
                        };
                        if i == 0 {
                            workload_key = Some(key.clone());
                            data = Some(obj.clone());
                        }
                        outputs.push(Item {
                            scope: scope_of(&api_version, &kind),
                            key,
                            object: obj,
                            source: source.clone(),
                            component: Some(comp.name.clone()),
                            workload: i == 0,
                            rollout_owned: false,
                            absorbed: false,
                        });
                    }
                }
                ComponentOutput::Refs(targets) => {
                    let mut objs = Vec::new();
                    for t in targets {
                        if t.selector.is_some() {
                            for item in resolve_selected(
                                &t,
                                &comp.name,
                                &h.name,
                                &app_ns,
                                path,
                                &mut items,
                                &app_paths,
                                refs,
                                &crds,
                                &mut referenced_paths,
                                &mut sink,
                            ) {
                                objs.push(item.object.clone());
                                outputs.push(item);
                            }
                            continue;
                        }
                        if let Some(item) = resolve_ref(
                            &t,
                            &comp.name,
                            &h.name,
                            &app_ns,
                            path,
                            &mut items,
                            &app_paths,
                            refs,
                            &crds,
                            &mut referenced_paths,
                            &mut sink,
                        ) {
                            objs.push(item.object.clone());
                            outputs.push(item);
                        }
                    }
                    data = Some(json!({ "objects": objs }));
                }
                ComponentOutput::Invalid => {}
            }
            let mut revision_name = None;
            if let Some(d) = &data {
                let existing = prev
                    .components
                    .get(&comp.name)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                match plan_revision(
                    &h.name,
                    Some(&app_ns),
                    &comp.name,
                    comp.external_revision.as_deref(),
                    d,
                    existing,
                ) {
                    Ok(r) => {
                        if let Some(rollout) = &comp.rollout {
                            let mut known: Vec<(u64, String)> = existing
                                .iter()
                                .map(|e| (e.number, e.name.clone()))
                                .collect();
                            known.push((r.number, r.name.clone()));
                            check_target_revision(rollout, &comp.name, &known, &mut sink);
                            check_trait_batches(rollout, &r.name, r.is_new, &mut sink);
                        }
                        revision_name = Some(r.name.clone());
                        revisions.push(r);
                    }
                    Err(e) => sink.error(
                        RenderError::new(path, comp.external_revision_line, e.to_string())
                            .with_field(format!("{}.externalRevision", comp.field)),
                    ),
                }
            }
            info.components.push(ComponentInfo {
                name: comp.name.clone(),
                component_type: comp.component_type.clone(),
                external_revision: comp.external_revision.clone(),
                properties: comp.properties,
                traits: comp.traits,
                rollout_owned: workload_key.is_some()
                    && (comp.rollout.is_some() || rollout_template),
                rollout: comp.rollout.map(|r| r.rollout),
                workload: workload_key,
                revision: revision_name,
                source,
            });
            items.extend(outputs);
        }
        applications.push(info);
    }

    // rollgit runs one workflow per app.
    let delivered: Vec<&ApplicationInfo> = applications
        .iter()
        .filter(|a| a.delivery.is_some())
        .collect();
    if let [first, _, ..] = delivered.as_slice() {
        for a in &delivered[1..] {
            sink.error(RenderError::new(
                &a.source.path,
                a.source.line,
                format!(
                    "Application {:?}: rollgit runs one workflow per app, and Application {:?} at {} has one too: put each in its own app directory",
                    a.name, first.name, first.source
                ),
            ));
        }
    }

    // Application revisions, then the AppRollouts that name them.
    let app_revisions: Vec<AppRevision> = applications
        .iter()
        .map(|a| {
            let components: BTreeMap<String, String> = a
                .components
                .iter()
                .filter_map(|c| Some((c.name.clone(), c.revision.clone()?)))
                .collect();
            let existing = prev
                .applications
                .get(&a.name)
                .map(Vec::as_slice)
                .unwrap_or_default();
            plan_app_revision(&a.name, Some(&a.namespace), &components, existing)
        })
        .collect();
    let parsed_rollouts: Vec<_> = rollout_docs
        .iter()
        .filter_map(|(path, doc, name)| parse_app_rollout(path, doc, name, &mut sink))
        .collect();
    let app_rollouts = resolve_app_rollouts(
        parsed_rollouts,
        &mut applications,
        &app_revisions,
        prev,
        &mut sink,
    );
    let owned: BTreeSet<(&str, &ObjectKey)> = applications
        .iter()
        .flat_map(|a| a.components.iter())
        .filter(|c| c.rollout_owned)
        .filter_map(|c| Some((c.name.as_str(), c.workload.as_ref()?)))
        .collect();
    for item in items.iter_mut() {
        if let Some(c) = &item.component {
            item.rollout_owned = owned.contains(&(c.as_str(), &item.key));
        }
    }

    let mut items: Vec<Item> = items.into_iter().filter(|i| !i.absorbed).collect();
    let keys: Vec<ObjectKey> = items.iter().map(|i| i.key.clone()).collect();
    let kruise_rollouts = held_workloads(&kruise_docs, &keys, &mut sink);

    // Duplicates, in source order.
    let mut order: Vec<usize> = (0..items.len()).collect();
    order.sort_by(|a, b| items[*a].source.cmp(&items[*b].source));
    let mut seen: BTreeMap<&ObjectKey, &SourceLocation> = BTreeMap::new();
    for i in order {
        let item = &items[i];
        if let Some(first) = seen.get(&item.key) {
            sink.error(RenderError::new(
                &item.source.path,
                item.source.line,
                format!("duplicate object {} (also defined at {first})", item.key),
            ));
        } else {
            seen.insert(&item.key, &item.source);
        }
    }

    if !sink.errors.is_empty() {
        let mut errors = sink.errors;
        errors.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
        errors.dedup();
        return Err(RenderErrors(errors));
    }

    items.sort_by(|a, b| apply_sort_key(a).cmp(&apply_sort_key(b)));
    oam_items.sort_by(|a, b| apply_sort_key(a).cmp(&apply_sort_key(b)));

    let content = json!({
        "objects": items.iter().map(|i| &i.object).collect::<Vec<_>>(),
        "applications": applications,
        "oam": oam_items.iter().map(|i| &i.object).collect::<Vec<_>>(),
    });
    let content_hash = hex_sha256(canonical_json(&content).as_bytes());
    let prev_publish = prev.publish.as_ref().map(|(v, h)| (v.as_str(), h.as_str()));
    let (publish_version, publish_version_changed) = match explicit_publish {
        Some(v) => {
            let changed = prev_publish.is_none_or(|(pv, _)| pv != v);
            (v, changed)
        }
        None => next_publish_version(prev_publish, &content_hash),
    };
    for item in items.iter_mut().filter(|i| i.workload) {
        add_metadata_map(
            &mut item.object,
            "annotations",
            &[(PUBLISH_VERSION_ANNOTATION, &publish_version)],
        );
    }

    let into_rendered = |i: Item| RenderedObject {
        object: i.object,
        key: i.key,
        scope: i.scope,
        source: i.source,
        component: i.component,
        workload: i.workload,
        rollout_owned: i.rollout_owned,
    };
    let mut warnings = sink.warnings;
    warnings.sort_by(|a, b| (&a.path, a.line).cmp(&(&b.path, b.line)));
    Ok(Rendered {
        app: app.to_owned(),
        objects: items.into_iter().map(into_rendered).collect(),
        applications,
        oam_objects: oam_items.into_iter().map(into_rendered).collect(),
        revisions,
        app_revisions,
        app_rollouts,
        argo_rollouts,
        kruise_rollouts,
        publish_version,
        publish_version_changed,
        content_hash,
        referenced_paths: referenced_paths.into_iter().collect(),
        warnings,
    })
}

fn apply_sort_key(i: &Item) -> impl Ord + '_ {
    let api_version = i
        .object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    (
        apply_rank(api_version, &i.key.kind, i.scope),
        &i.key.kind,
        &i.key.group,
        &i.key.namespace,
        &i.key.name,
        &i.source,
    )
}

const WORKLOAD_KINDS: &[(&str, &str)] = &[
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps.kruise.io", "CloneSet"),
];

fn labels_match(object: &Value, selector: &BTreeMap<String, String>) -> bool {
    let labels = object.pointer("/metadata/labels");
    selector
        .iter()
        .all(|(k, v)| labels.and_then(|l| l.get(k)).and_then(Value::as_str) == Some(v.as_str()))
}

/// The objects a `ref-objects` entry with a `labelSelector` selects: those of its kind in the
/// wanted namespace (or cluster-scoped) whose labels include the selector's, among the app's
/// own documents and the rest of the repository, in source order. Selecting nothing is an
/// error.
#[allow(clippy::too_many_arguments)]
fn resolve_selected(
    t: &RefTarget,
    component: &str,
    application: &str,
    app_ns: &str,
    app_path: &str,
    items: &mut [Item],
    app_paths: &BTreeSet<&str>,
    refs: &dyn RefLookup,
    crds: &BTreeMap<(String, String), Scope>,
    referenced_paths: &mut BTreeSet<String>,
    sink: &mut Sink,
) -> Vec<Item> {
    let Some(selector) = &t.selector else {
        return Vec::new();
    };
    let group = group_of(&t.api_version).to_owned();
    let scope = resolve_scope(&t.api_version, &t.kind, crds);
    let wanted_ns = match scope {
        Scope::Cluster => None,
        _ => Some(t.namespace.clone().unwrap_or_else(|| app_ns.to_owned())),
    };
    let labels = [
        (APP_NAME_LABEL, application),
        (APP_COMPONENT_LABEL, component),
    ];
    let workload = WORKLOAD_KINDS
        .iter()
        .any(|(g, k)| *g == group && *k == t.kind);
    let mut out = Vec::new();
    for own in items.iter_mut().filter(|i| {
        i.component.is_none()
            && i.key.group == group
            && i.key.kind == t.kind
            && (scope == Scope::Cluster
                || i.key.namespace.is_none()
                || i.key.namespace == wanted_ns)
            && labels_match(&i.object, selector)
    }) {
        own.absorbed = true;
        let mut object = own.object.clone();
        set_namespace(&mut object, wanted_ns.as_deref());
        add_metadata_map(&mut object, "labels", &labels);
        out.push(Item {
            object,
            key: ObjectKey {
                namespace: wanted_ns.clone(),
                ..own.key.clone()
            },
            scope: own.scope,
            source: own.source.clone(),
            component: Some(component.to_owned()),
            workload,
            rollout_owned: false,
            absorbed: false,
        });
    }
    for found in refs
        .objects_of_kind(&group, &t.kind)
        .into_iter()
        .filter(|c| !app_paths.contains(c.path.as_str()))
        .filter(|c| {
            let ns = c
                .object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str);
            scope == Scope::Cluster || ns.is_none() || ns == wanted_ns.as_deref()
        })
        .filter(|c| labels_match(&c.object, selector))
    {
        let name = found
            .object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let mut object = found.object.clone();
        strip_server_fields(&mut object);
        set_namespace(&mut object, wanted_ns.as_deref());
        add_metadata_map(&mut object, "labels", &labels);
        referenced_paths.insert(found.path.clone());
        out.push(Item {
            object,
            key: ObjectKey {
                group: group.clone(),
                kind: t.kind.clone(),
                namespace: wanted_ns.clone(),
                name,
            },
            scope,
            source: SourceLocation {
                path: found.path.clone(),
                line: found.line,
            },
            component: Some(component.to_owned()),
            workload,
            rollout_owned: false,
            absorbed: false,
        });
    }
    if out.is_empty() {
        let sel: Vec<String> = selector.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let place = wanted_ns
            .as_deref()
            .map(|ns| format!(" in namespace {ns}"))
            .unwrap_or_default();
        sink.error(
            RenderError::new(
                app_path,
                t.line,
                format!(
                    "component \"{component}\": ref-objects: labelSelector {} matches no {}{place} in the repository",
                    sel.join(","),
                    t.kind
                ),
            )
            .with_field(t.field.clone()),
        );
    }
    out
}

#[allow(clippy::too_many_arguments)]
fn resolve_ref(
    t: &RefTarget,
    component: &str,
    application: &str,
    app_ns: &str,
    app_path: &str,
    items: &mut [Item],
    app_paths: &BTreeSet<&str>,
    refs: &dyn RefLookup,
    crds: &BTreeMap<(String, String), Scope>,
    referenced_paths: &mut BTreeSet<String>,
    sink: &mut Sink,
) -> Option<Item> {
    let group = group_of(&t.api_version).to_owned();
    let scope = resolve_scope(&t.api_version, &t.kind, crds);
    let wanted_ns = match scope {
        Scope::Cluster => None,
        _ => Some(t.namespace.clone().unwrap_or_else(|| app_ns.to_owned())),
    };
    let display = ObjectKey {
        group: group.clone(),
        kind: t.kind.clone(),
        namespace: wanted_ns.clone(),
        name: t.name.clone(),
    };
    let labels = [
        (APP_NAME_LABEL, application),
        (APP_COMPONENT_LABEL, component),
    ];
    let workload = WORKLOAD_KINDS
        .iter()
        .any(|(g, k)| *g == group && *k == t.kind);
    // 1. The app's own documents.
    if let Some(own) = items.iter_mut().find(|i| {
        i.component.is_none()
            && i.key.group == group
            && i.key.kind == t.kind
            && i.key.name == t.name
            && (scope == Scope::Cluster
                || i.key.namespace.is_none()
                || i.key.namespace == wanted_ns)
    }) {
        own.absorbed = true;
        let mut object = own.object.clone();
        set_namespace(&mut object, wanted_ns.as_deref());
        add_metadata_map(&mut object, "labels", &labels);
        return Some(Item {
            object,
            key: display,
            scope: own.scope,
            source: own.source.clone(),
            component: Some(component.to_owned()),
            workload,
            rollout_owned: false,
            absorbed: false,
        });
    }
    // 2. The rest of the repository.
    let candidates: Vec<_> = refs
        .find_objects(&group, &t.kind, &t.name)
        .into_iter()
        .filter(|c| !app_paths.contains(c.path.as_str()))
        .filter(|c| {
            let ns = c
                .object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str);
            scope == Scope::Cluster || ns.is_none() || ns == wanted_ns.as_deref()
        })
        .collect();
    match candidates.as_slice() {
        [] => {
            sink.error(
                RenderError::new(
                    app_path,
                    t.line,
                    format!(
                        "component \"{component}\": ref-objects: {display} not found in the repository"
                    ),
                )
                .with_field(t.field.clone()),
            );
            None
        }
        [found] => {
            let mut object = found.object.clone();
            strip_server_fields(&mut object);
            set_namespace(&mut object, wanted_ns.as_deref());
            add_metadata_map(&mut object, "labels", &labels);
            referenced_paths.insert(found.path.clone());
            Some(Item {
                object,
                key: display,
                scope,
                source: SourceLocation {
                    path: found.path.clone(),
                    line: found.line,
                },
                component: Some(component.to_owned()),
                workload,
                rollout_owned: false,
                absorbed: false,
            })
        }
        many => {
            let places: Vec<String> = many
                .iter()
                .map(|c| format!("{}:{}", c.path, c.line))
                .collect();
            sink.error(
                RenderError::new(
                    app_path,
                    t.line,
                    format!(
                        "component \"{component}\": ref-objects: {display} is ambiguous, found at {}",
                        places.join(", ")
                    ),
                )
                .with_field(t.field.clone()),
            );
            None
        }
    }
}
