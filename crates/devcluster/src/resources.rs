//! The resource types the dev cluster serves: built-in kinds, and those that CRDs add at run time.

use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Where a scalable resource keeps its replica counts (the scale subresource).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScalePaths {
    /// Dotted path of the desired replicas, such as `.spec.replicas`.
    pub spec_replicas: String,
    /// Dotted path of the observed replicas, such as `.status.replicas`.
    pub status_replicas: String,
    /// Dotted path of the label selector string, if any.
    pub label_selector: Option<String>,
}

/// One column of a CRD's `additionalPrinterColumns`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrinterColumn {
    /// Column header.
    pub name: String,
    /// OpenAPI type (`string`, `integer`, `date`, ...).
    pub type_: String,
    /// Format hint.
    pub format: String,
    /// Column description.
    pub description: String,
    /// 0 for default output, more for `-o wide`.
    pub priority: i64,
    /// JSONPath of the cell, such as `.status.phase`.
    pub json_path: String,
}

/// What a custom resource's definition says about validation and printing.
#[derive(Debug, Clone)]
pub struct CrdVersionInfo {
    /// The version's `openAPIV3Schema`, if any.
    pub schema: Option<Value>,
    /// `additionalPrinterColumns`.
    pub columns: Vec<PrinterColumn>,
}

/// A resource type served at one group/version.
#[derive(Debug, Clone)]
pub struct ResourceType {
    /// API group; empty for core.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name, as in the URL.
    pub plural: String,
    /// Singular name.
    pub singular: String,
    /// Kind.
    pub kind: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// `kubectl` short names.
    pub short_names: Vec<String>,
    /// Categories such as `all`.
    pub categories: Vec<String>,
    /// Whether a `/status` subresource exists.
    pub status: bool,
    /// The `/scale` subresource, if any.
    pub scale: Option<ScalePaths>,
    /// Set for custom resources.
    pub crd: Option<CrdVersionInfo>,
    /// The storage key group (events.k8s.io events share storage with core events).
    pub storage_group: String,
    /// A review API (SubjectAccessReview, TokenReview, ...): `create` only, nothing stored.
    pub create_only: bool,
}

impl ResourceType {
    /// `apiVersion` of this type, such as `apps/v1` or `v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// The storage key of this resource: (group, plural).
    pub fn storage_key(&self) -> GroupResource {
        GroupResource {
            group: self.storage_group.clone(),
            resource: self.plural.clone(),
        }
    }

    /// Verbs advertised in discovery.
    pub fn verbs(&self) -> Vec<&'static str> {
        if self.create_only {
            return vec!["create"];
        }
        vec![
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch",
        ]
    }
}

/// A group and resource, the key of a storage bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GroupResource {
    /// API group (empty for core).
    pub group: String,
    /// Plural resource.
    pub resource: String,
}

// A row of the built-in type table: positional on purpose, so the table reads as one line per kind.
#[allow(clippy::too_many_arguments)]
fn builtin(
    group: &str,
    version: &str,
    plural: &str,
    kind: &str,
    namespaced: bool,
    short: &[&str],
    all: bool,
    status: bool,
    scale: bool,
) -> ResourceType {
    ResourceType {
        group: group.into(),
        version: version.into(),
        plural: plural.into(),
        singular: kind.to_lowercase(),
        kind: kind.into(),
        namespaced,
        short_names: short.iter().map(|s| s.to_string()).collect(),
        categories: if all { vec!["all".into()] } else { vec![] },
        status,
        scale: scale.then(|| ScalePaths {
            spec_replicas: ".spec.replicas".into(),
            status_replicas: ".status.replicas".into(),
            label_selector: Some(".status.selector".into()),
        }),
        crd: None,
        storage_group: group.into(),
        create_only: false,
    }
}

/// A review API type: created, never stored.
fn review(group: &str, plural: &str, kind: &str, namespaced: bool) -> ResourceType {
    let mut t = builtin(
        group,
        "v1",
        plural,
        kind,
        namespaced,
        &[],
        false,
        false,
        false,
    );
    t.create_only = true;
    t
}

/// The built-in resource types, in discovery order.
pub fn builtins() -> Vec<ResourceType> {
    let mut v = vec![
        builtin(
            "",
            "v1",
            "namespaces",
            "Namespace",
            false,
            &["ns"],
            false,
            true,
            false,
        ),
        builtin(
            "",
            "v1",
            "configmaps",
            "ConfigMap",
            true,
            &["cm"],
            false,
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "secrets",
            "Secret",
            true,
            &[],
            false,
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "services",
            "Service",
            true,
            &["svc"],
            true,
            true,
            false,
        ),
        builtin(
            "",
            "v1",
            "serviceaccounts",
            "ServiceAccount",
            true,
            &["sa"],
            false,
            false,
            false,
        ),
        builtin("", "v1", "pods", "Pod", true, &["po"], true, true, false),
        builtin(
            "",
            "v1",
            "events",
            "Event",
            true,
            &["ev"],
            false,
            false,
            false,
        ),
        builtin(
            "",
            "v1",
            "nodes",
            "Node",
            false,
            &["no"],
            false,
            true,
            false,
        ),
        builtin(
            "apps",
            "v1",
            "deployments",
            "Deployment",
            true,
            &["deploy"],
            true,
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "replicasets",
            "ReplicaSet",
            true,
            &["rs"],
            true,
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "statefulsets",
            "StatefulSet",
            true,
            &["sts"],
            true,
            true,
            true,
        ),
        builtin(
            "apps",
            "v1",
            "daemonsets",
            "DaemonSet",
            true,
            &["ds"],
            true,
            true,
            false,
        ),
        builtin(
            "apps",
            "v1",
            "controllerrevisions",
            "ControllerRevision",
            true,
            &[],
            false,
            false,
            false,
        ),
        builtin("batch", "v1", "jobs", "Job", true, &[], true, true, false),
        builtin(
            "batch",
            "v1",
            "cronjobs",
            "CronJob",
            true,
            &["cj"],
            true,
            true,
            false,
        ),
        builtin(
            "networking.k8s.io",
            "v1",
            "ingresses",
            "Ingress",
            true,
            &["ing"],
            false,
            true,
            false,
        ),
        builtin(
            "coordination.k8s.io",
            "v1",
            "leases",
            "Lease",
            true,
            &[],
            false,
            false,
            false,
        ),
        builtin(
            "apiextensions.k8s.io",
            "v1",
            "customresourcedefinitions",
            "CustomResourceDefinition",
            false,
            &["crd", "crds"],
            false,
            true,
            false,
        ),
    ];
    for (plural, kind, namespaced) in [
        ("clusterrolebindings", "ClusterRoleBinding", false),
        ("clusterroles", "ClusterRole", false),
        ("rolebindings", "RoleBinding", true),
        ("roles", "Role", true),
    ] {
        v.push(builtin(
            "rbac.authorization.k8s.io",
            "v1",
            plural,
            kind,
            namespaced,
            &[],
            false,
            false,
            false,
        ));
    }
    for (group, plural, kind, namespaced) in [
        (
            "authentication.k8s.io",
            "selfsubjectreviews",
            "SelfSubjectReview",
            false,
        ),
        (
            "authentication.k8s.io",
            "tokenreviews",
            "TokenReview",
            false,
        ),
        (
            "authorization.k8s.io",
            "localsubjectaccessreviews",
            "LocalSubjectAccessReview",
            true,
        ),
        (
            "authorization.k8s.io",
            "selfsubjectaccessreviews",
            "SelfSubjectAccessReview",
            false,
        ),
        (
            "authorization.k8s.io",
            "selfsubjectrulesreviews",
            "SelfSubjectRulesReview",
            false,
        ),
        (
            "authorization.k8s.io",
            "subjectaccessreviews",
            "SubjectAccessReview",
            false,
        ),
    ] {
        v.push(review(group, plural, kind, namespaced));
    }
    let mut events = builtin(
        "events.k8s.io",
        "v1",
        "events",
        "Event",
        true,
        &["ev"],
        false,
        false,
        false,
    );
    events.storage_group = String::new();
    v.push(events);
    v
}

/// Reads `additionalPrinterColumns` of a CRD version.
fn printer_columns(version: &Value) -> Vec<PrinterColumn> {
    version
        .get("additionalPrinterColumns")
        .and_then(Value::as_array)
        .map(|cols| {
            cols.iter()
                .map(|c| PrinterColumn {
                    name: str_at(c, "name"),
                    type_: str_at(c, "type"),
                    format: str_at(c, "format"),
                    description: str_at(c, "description"),
                    priority: c.get("priority").and_then(Value::as_i64).unwrap_or(0),
                    json_path: str_at(c, "jsonPath"),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn str_at(v: &Value, key: &str) -> String {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn strings_at(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The resource types a (validated) CRD object defines: one per served version.
pub fn from_crd(crd: &Value) -> Vec<ResourceType> {
    let spec = &crd["spec"];
    let names = &spec["names"];
    let group = str_at(spec, "group");
    let plural = str_at(names, "plural");
    let kind = str_at(names, "kind");
    let singular = match str_at(names, "singular") {
        s if s.is_empty() => kind.to_lowercase(),
        s => s,
    };
    let namespaced = spec.get("scope").and_then(Value::as_str) != Some("Cluster");
    let mut out = Vec::new();
    for version in spec["versions"].as_array().into_iter().flatten() {
        if version.get("served").and_then(Value::as_bool) == Some(false) {
            continue;
        }
        let subresources = &version["subresources"];
        let scale = subresources.get("scale").map(|s| ScalePaths {
            spec_replicas: str_at(s, "specReplicasPath"),
            status_replicas: str_at(s, "statusReplicasPath"),
            label_selector: s
                .get("labelSelectorPath")
                .and_then(Value::as_str)
                .map(str::to_string),
        });
        out.push(ResourceType {
            group: group.clone(),
            version: str_at(version, "name"),
            plural: plural.clone(),
            singular: singular.clone(),
            kind: kind.clone(),
            namespaced,
            short_names: strings_at(names, "shortNames"),
            categories: strings_at(names, "categories"),
            status: subresources.get("status").is_some(),
            scale,
            crd: Some(CrdVersionInfo {
                schema: version
                    .get("schema")
                    .and_then(|s| s.get("openAPIV3Schema"))
                    .cloned(),
                columns: printer_columns(version),
            }),
            storage_group: group.clone(),
            create_only: false,
        });
    }
    out
}

/// All served types, indexed for lookup.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    types: Vec<Arc<ResourceType>>,
    by_path: BTreeMap<(String, String, String), Arc<ResourceType>>,
    /// CRD name → the group/version/plural keys it added.
    by_crd: BTreeMap<String, Vec<(String, String, String)>>,
}

impl Registry {
    /// A registry with the built-in types.
    pub fn new() -> Self {
        let mut r = Self::default();
        for t in builtins() {
            r.insert(t);
        }
        r
    }

    fn insert(&mut self, t: ResourceType) {
        let t = Arc::new(t);
        self.by_path.insert(
            (t.group.clone(), t.version.clone(), t.plural.clone()),
            t.clone(),
        );
        self.types.push(t);
    }

    /// Looks a resource up by its URL parts.
    pub fn get(&self, group: &str, version: &str, plural: &str) -> Option<Arc<ResourceType>> {
        self.by_path
            .get(&(group.to_string(), version.to_string(), plural.to_string()))
            .cloned()
    }

    /// Looks a resource up by apiVersion and kind.
    pub fn by_kind(&self, api_version: &str, kind: &str) -> Option<Arc<ResourceType>> {
        self.types
            .iter()
            .find(|t| t.kind == kind && t.api_version() == api_version)
            .cloned()
    }

    /// Every served type.
    pub fn all(&self) -> &[Arc<ResourceType>] {
        &self.types
    }

    /// Groups with their versions, core excluded, in first-seen order.
    pub fn groups(&self) -> Vec<(String, Vec<String>)> {
        let mut out: Vec<(String, Vec<String>)> = Vec::new();
        for t in &self.types {
            if t.group.is_empty() {
                continue;
            }
            match out.iter_mut().find(|(g, _)| *g == t.group) {
                Some((_, versions)) => {
                    if !versions.contains(&t.version) {
                        versions.push(t.version.clone());
                    }
                }
                None => out.push((t.group.clone(), vec![t.version.clone()])),
            }
        }
        out
    }

    /// Whether any type is served at group/version.
    pub fn has_group_version(&self, group: &str, version: &str) -> bool {
        self.types
            .iter()
            .any(|t| t.group == group && t.version == version)
    }

    /// Replaces the types a CRD named `crd_name` serves.
    pub fn set_crd(&mut self, crd_name: &str, types: Vec<ResourceType>) {
        self.remove_crd(crd_name);
        let keys = types
            .iter()
            .map(|t| (t.group.clone(), t.version.clone(), t.plural.clone()))
            .collect();
        for t in types {
            self.insert(t);
        }
        self.by_crd.insert(crd_name.to_string(), keys);
    }

    /// Stops serving what a CRD served.
    pub fn remove_crd(&mut self, crd_name: &str) {
        if let Some(keys) = self.by_crd.remove(crd_name) {
            for k in &keys {
                self.by_path.remove(k);
            }
            self.types.retain(|t| {
                !keys.contains(&(t.group.clone(), t.version.clone(), t.plural.clone()))
            });
        }
    }
}
