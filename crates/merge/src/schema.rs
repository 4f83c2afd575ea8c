//! How lists and maps merge: list types for server-side apply, patch
//! strategies for strategic merge patch, atomic maps, key defaults.
//!
//! Paths are field names from the object root; list items are not part of the
//! path (`["spec", "template", "spec", "containers", "image"]`).

use serde_json::{Map, Value};

/// The server-side apply type of a list (`x-kubernetes-list-type` / `+listType`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ListType {
    /// Replaced as a whole; owned as one field.
    Atomic,
    /// A set of scalars; items owned individually (`v:` path elements).
    Set,
    /// A list of objects identified by key fields (`k:` path elements).
    Map {
        /// The key fields (`+listMapKey`), in declaration order.
        keys: Vec<String>,
    },
}

/// The strategic merge patch strategy of a field (`patchStrategy`/`patchMergeKey`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PatchStrategy {
    /// Lists: the patch value replaces the list. Maps: ordinary recursive merge.
    Replace,
    /// Lists: merge items (by `merge_key` for lists of objects, as a set for
    /// lists of scalars).
    Merge {
        /// `patchMergeKey`, for lists of objects.
        merge_key: Option<String>,
        /// `patchStrategy:"merge,retainKeys"`: items honour `$retainKeys`.
        retain_keys: bool,
    },
    /// A struct with `patchStrategy:"retainKeys"` (a union such as Deployment `spec.strategy`).
    RetainKeys,
}

/// Everything the merge algorithms need to know about one field.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldInfo {
    /// SSA list type, when the field is a list.
    pub list_type: ListType,
    /// Strategic merge patch strategy.
    pub patch_strategy: PatchStrategy,
    /// The field is an object that is atomic (`+structType=atomic` / `+mapType=atomic`).
    pub atomic_map: bool,
    /// The field is an entry of a `map[string]T` (or of an unknown object) rather
    /// than a declared struct field: such entries are always owned themselves.
    pub map_element: bool,
    /// The field exists in the Go zero value of its parent (a non-pointer
    /// struct or a non-omitempty list), so the real server never records it
    /// as "added" on its own (no `.` in Update field sets).
    pub zero_present: bool,
    /// Defaults of map-list key fields (e.g. container port `protocol` = `"TCP"`).
    pub key_defaults: Vec<(String, Value)>,
}

impl Default for FieldInfo {
    fn default() -> Self {
        FieldInfo {
            list_type: ListType::Atomic,
            patch_strategy: PatchStrategy::Replace,
            atomic_map: false,
            map_element: false,
            zero_present: false,
            key_defaults: Vec::new(),
        }
    }
}

/// Schema information consulted by [`crate::strategic_merge`], [`crate::apply`] and
/// [`crate::update`].
pub trait Schema {
    /// Information about the field at `path`. Unknown fields get the defaults
    /// (lists atomic and replaced by patches, objects granular).
    fn field(&self, path: &[&str]) -> FieldInfo;

    /// Whether the kind accepts `application/strategic-merge-patch+json`
    /// (built-in kinds do; custom resources answer 415).
    fn supports_strategic_merge(&self) -> bool;

    /// SSA list type at `path`.
    fn list_type(&self, path: &[&str]) -> ListType {
        self.field(path).list_type
    }

    /// Strategic merge patch strategy at `path`.
    fn patch_strategy(&self, path: &[&str]) -> PatchStrategy {
        self.field(path).patch_strategy
    }

    /// Whether the object at `path` is atomic (replaced and owned as a whole).
    fn is_atomic_map(&self, path: &[&str]) -> bool {
        self.field(path).atomic_map
    }

    /// Whether a map or list that server-side apply empties, by removing the fields its
    /// manager no longer applies, becomes `null` (kept in its parent) instead of going away.
    /// structured-merge-diff before v4.6 (Kubernetes 1.33) does so, and a custom resource
    /// whose schema types the field then fails validation (`spec.x in body must be of type
    /// object: "null"`); built-in kinds drop the `null` when decoded into their Go types.
    fn emptied_becomes_null(&self) -> bool {
        false
    }
}

// ---------------------------------------------------------------------------
// Built-in kinds
// ---------------------------------------------------------------------------

/// Kind of a field in the built-in type tables.
#[derive(Clone, Copy)]
enum K {
    /// A nested struct of the named type (pointer / omitempty: not zero-present).
    S(&'static str),
    /// A nested value struct of the named type, present in the zero value.
    Z(&'static str),
    /// A value struct with `patchStrategy:"retainKeys"`.
    RetainZ(&'static str),
    /// An atomic object (`structType=atomic` or `mapType=atomic`).
    AtomicMap,
    /// A `listType=set` of scalars; `smp_merge` when `patchStrategy:"merge"`.
    Set { smp_merge: bool },
    /// A `listType=map`.
    ListMap {
        keys: &'static [&'static str],
        smp_key: Option<&'static str>,
        retain: bool,
        ty: &'static str,
        zero: bool,
    },
}

type Fields = &'static [(&'static str, K)];

const fn lm(keys: &'static [&'static str], smp_key: &'static str, ty: &'static str) -> K {
    K::ListMap {
        keys,
        smp_key: Some(smp_key),
        retain: false,
        ty,
        zero: false,
    }
}

const CONDITIONS: K = lm(&["type"], "type", "");

fn type_fields(ty: &str) -> Fields {
    match ty {
        "ObjectMeta" => {
            const {
                &[
                    ("finalizers", K::Set { smp_merge: true }),
                    ("ownerReferences", lm(&["uid"], "uid", "")),
                ]
            }
        }
        "Pod" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("PodSpec")),
                    ("status", K::Z("PodStatus")),
                ]
            }
        }
        "PodTemplateSpec" => {
            const { &[("metadata", K::Z("ObjectMeta")), ("spec", K::Z("PodSpec"))] }
        }
        "PodSpec" => {
            const {
                &[
                    (
                        "volumes",
                        K::ListMap {
                            keys: &["name"],
                            smp_key: Some("name"),
                            retain: true,
                            ty: "",
                            zero: false,
                        },
                    ),
                    ("initContainers", lm(&["name"], "name", "Container")),
                    (
                        "containers",
                        K::ListMap {
                            keys: &["name"],
                            smp_key: Some("name"),
                            retain: false,
                            ty: "Container",
                            zero: true,
                        },
                    ),
                    ("ephemeralContainers", lm(&["name"], "name", "Container")),
                    ("imagePullSecrets", lm(&["name"], "name", "")),
                    ("hostAliases", lm(&["ip"], "ip", "")),
                    (
                        "topologySpreadConstraints",
                        lm(&["topologyKey", "whenUnsatisfiable"], "topologyKey", "TSC"),
                    ),
                    ("schedulingGates", lm(&["name"], "name", "")),
                    (
                        "resourceClaims",
                        K::ListMap {
                            keys: &["name"],
                            smp_key: Some("name"),
                            retain: true,
                            ty: "",
                            zero: false,
                        },
                    ),
                    ("nodeSelector", K::AtomicMap),
                    ("affinity", K::S("Affinity")),
                ]
            }
        }
        "TSC" => const { &[("labelSelector", K::AtomicMap)] },
        "Affinity" => {
            const {
                &[
                    ("podAffinity", K::S("PodAffinity")),
                    ("podAntiAffinity", K::S("PodAffinity")),
                ]
            }
        }
        "PodAffinity" => &[],
        "Container" => {
            const {
                &[
                    (
                        "ports",
                        K::ListMap {
                            keys: &["containerPort", "protocol"],
                            smp_key: Some("containerPort"),
                            retain: false,
                            ty: "",
                            zero: false,
                        },
                    ),
                    ("env", lm(&["name"], "name", "")),
                    ("volumeMounts", lm(&["mountPath"], "mountPath", "")),
                    ("volumeDevices", lm(&["devicePath"], "devicePath", "")),
                    ("resources", K::Z("Resources")),
                ]
            }
        }
        "Resources" => {
            const {
                &[(
                    "claims",
                    K::ListMap {
                        keys: &["name"],
                        smp_key: None,
                        retain: false,
                        ty: "",
                        zero: false,
                    },
                )]
            }
        }
        "PodStatus" => {
            const {
                &[
                    ("conditions", CONDITIONS),
                    ("podIPs", lm(&["ip"], "ip", "")),
                    ("hostIPs", lm(&["ip"], "ip", "")),
                ]
            }
        }
        "Deployment" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("DeploymentSpec")),
                    ("status", K::Z("WorkloadStatus")),
                ]
            }
        }
        "DeploymentSpec" => {
            const {
                &[
                    ("selector", K::AtomicMap),
                    ("template", K::Z("PodTemplateSpec")),
                    ("strategy", K::RetainZ("")),
                ]
            }
        }
        "ReplicaSet" | "DaemonSet" | "StatefulSet" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("WorkloadSpec")),
                    ("status", K::Z("WorkloadStatus")),
                ]
            }
        }
        "WorkloadSpec" => {
            const {
                &[
                    ("selector", K::AtomicMap),
                    ("template", K::Z("PodTemplateSpec")),
                    ("updateStrategy", K::Z("")),
                ]
            }
        }
        "WorkloadStatus" => const { &[("conditions", CONDITIONS)] },
        "Service" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("ServiceSpec")),
                    ("status", K::Z("ServiceStatus")),
                ]
            }
        }
        "ServiceSpec" => {
            const {
                &[
                    (
                        "ports",
                        K::ListMap {
                            keys: &["port", "protocol"],
                            smp_key: Some("port"),
                            retain: false,
                            ty: "",
                            zero: false,
                        },
                    ),
                    ("selector", K::AtomicMap),
                ]
            }
        }
        "ServiceStatus" => const { &[("loadBalancer", K::Z("")), ("conditions", CONDITIONS)] },
        "Namespace" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("")),
                    ("status", K::Z("NamespaceStatus")),
                ]
            }
        }
        "NamespaceStatus" => const { &[("conditions", CONDITIONS)] },
        "ServiceAccount" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("secrets", lm(&["name"], "name", "")),
                ]
            }
        }
        "Event" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("involvedObject", K::Z("")),
                    ("source", K::Z("")),
                ]
            }
        }
        "Ingress" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("")),
                    ("status", K::Z("IngressStatus")),
                ]
            }
        }
        "IngressStatus" => const { &[("loadBalancer", K::Z(""))] },
        "Lease" => const { &[("metadata", K::Z("ObjectMeta")), ("spec", K::Z(""))] },
        "Job" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("JobSpec")),
                    ("status", K::Z("")),
                ]
            }
        }
        "JobSpec" => {
            const {
                &[
                    ("selector", K::AtomicMap),
                    ("template", K::Z("PodTemplateSpec")),
                ]
            }
        }
        "CronJob" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("CronJobSpec")),
                    ("status", K::Z("")),
                ]
            }
        }
        "CronJobSpec" => const { &[("jobTemplate", K::Z("JobTemplateSpec"))] },
        "JobTemplateSpec" => {
            const { &[("metadata", K::Z("ObjectMeta")), ("spec", K::Z("JobSpec"))] }
        }
        "CustomResourceDefinition" => {
            const {
                &[
                    ("metadata", K::Z("ObjectMeta")),
                    ("spec", K::Z("CRDSpec")),
                    ("status", K::Z("CRDStatus")),
                ]
            }
        }
        "CRDSpec" => const { &[("names", K::Z(""))] },
        "CRDStatus" => {
            const {
                &[
                    (
                        "conditions",
                        K::ListMap {
                            keys: &["type"],
                            smp_key: None,
                            retain: false,
                            ty: "",
                            zero: false,
                        },
                    ),
                    ("acceptedNames", K::Z("")),
                ]
            }
        }
        // ConfigMap, Secret, ControllerRevision and anything with only metadata.
        "Meta" => const { &[("metadata", K::Z("ObjectMeta"))] },
        _ => &[],
    }
}

/// Default values of map-list key fields.
fn key_defaults_for(ty_field: &str) -> Vec<(String, Value)> {
    match ty_field {
        "ports" => vec![("protocol".to_string(), Value::String("TCP".to_string()))],
        _ => Vec::new(),
    }
}

/// Schema of the built-in kinds, from the Kubernetes Go types' `+listType`,
/// `+listMapKey`, `+mapType`, `+structType`, `patchStrategy` and `patchMergeKey` tags.
///
/// Only non-default fields are listed: every list not mentioned is atomic and
/// replaced by strategic merge patches, every object not mentioned is granular.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuiltinSchema {
    root: &'static str,
}

impl BuiltinSchema {
    /// The schema of a built-in kind, or `None` for kinds this crate does not know.
    ///
    /// Known: core/v1 Pod, Service, ConfigMap, Secret, Namespace,
    /// ServiceAccount, Event; events.k8s.io/v1 Event; apps/v1 Deployment,
    /// ReplicaSet, StatefulSet, DaemonSet, ControllerRevision;
    /// networking.k8s.io/v1 Ingress; coordination.k8s.io/v1 Lease;
    /// apiextensions.k8s.io/v1 CustomResourceDefinition; batch/v1 Job, CronJob;
    /// rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding, ClusterRoleBinding.
    pub fn for_kind(api_version: &str, kind: &str) -> Option<BuiltinSchema> {
        let group = api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        let root = match (group, kind) {
            ("", "Pod") => "Pod",
            ("", "Service") => "Service",
            ("", "ConfigMap") | ("", "Secret") => "Meta",
            ("", "Namespace") => "Namespace",
            ("", "ServiceAccount") => "ServiceAccount",
            ("", "Event") => "Event",
            ("events.k8s.io", "Event") => "Meta",
            ("apps", "Deployment") => "Deployment",
            ("apps", "ReplicaSet") => "ReplicaSet",
            ("apps", "StatefulSet") => "StatefulSet",
            ("apps", "DaemonSet") => "DaemonSet",
            ("apps", "ControllerRevision") => "Meta",
            ("networking.k8s.io", "Ingress") => "Ingress",
            ("coordination.k8s.io", "Lease") => "Lease",
            ("batch", "Job") => "Job",
            ("batch", "CronJob") => "CronJob",
            (
                "rbac.authorization.k8s.io",
                "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding",
            ) => "Meta",
            ("apiextensions.k8s.io", "CustomResourceDefinition") => "CustomResourceDefinition",
            _ => return None,
        };
        Some(BuiltinSchema { root })
    }

    /// [`BuiltinSchema::for_kind`] from an object's `apiVersion` and `kind`.
    pub fn for_object(obj: &Value) -> Option<BuiltinSchema> {
        let av = obj.get("apiVersion")?.as_str()?;
        let kind = obj.get("kind")?.as_str()?;
        BuiltinSchema::for_kind(av, kind)
    }

    /// A schema that only knows ObjectMeta (used for the `metadata` of custom resources).
    pub(crate) fn meta_only() -> BuiltinSchema {
        BuiltinSchema { root: "Meta" }
    }
}

impl Schema for BuiltinSchema {
    fn field(&self, path: &[&str]) -> FieldInfo {
        let mut ty: &str = self.root;
        let mut info = FieldInfo::default();
        for (i, name) in path.iter().enumerate() {
            let found = type_fields(ty).iter().find(|(n, _)| n == name);
            let last = i + 1 == path.len();
            let Some((_, k)) = found else {
                // Unknown field (scalar, granular object or atomic list).
                return FieldInfo::default();
            };
            if !last {
                ty = match *k {
                    K::S(t) | K::Z(t) | K::RetainZ(t) => t,
                    K::ListMap { ty, .. } => ty,
                    K::AtomicMap | K::Set { .. } => return FieldInfo::default(),
                };
                continue;
            }
            info = match *k {
                K::S(_) => FieldInfo::default(),
                K::Z(_) => FieldInfo {
                    zero_present: true,
                    ..FieldInfo::default()
                },
                K::RetainZ(_) => FieldInfo {
                    zero_present: true,
                    patch_strategy: PatchStrategy::RetainKeys,
                    ..FieldInfo::default()
                },
                K::AtomicMap => FieldInfo {
                    atomic_map: true,
                    ..FieldInfo::default()
                },
                K::Set { smp_merge } => FieldInfo {
                    list_type: ListType::Set,
                    patch_strategy: if smp_merge {
                        PatchStrategy::Merge {
                            merge_key: None,
                            retain_keys: false,
                        }
                    } else {
                        PatchStrategy::Replace
                    },
                    ..FieldInfo::default()
                },
                K::ListMap {
                    keys,
                    smp_key,
                    retain,
                    zero,
                    ..
                } => FieldInfo {
                    list_type: ListType::Map {
                        keys: keys.iter().map(|s| s.to_string()).collect(),
                    },
                    patch_strategy: match smp_key {
                        Some(k) => PatchStrategy::Merge {
                            merge_key: Some(k.to_string()),
                            retain_keys: retain,
                        },
                        None => PatchStrategy::Replace,
                    },
                    zero_present: zero,
                    key_defaults: key_defaults_for(name),
                    ..FieldInfo::default()
                },
            };
        }
        info
    }

    fn supports_strategic_merge(&self) -> bool {
        true
    }
}

// ---------------------------------------------------------------------------
// Custom resources
// ---------------------------------------------------------------------------

/// Schema of a custom resource, from a CRD version's `openAPIV3Schema`.
///
/// Honours `x-kubernetes-list-type` (atomic/set/map), `x-kubernetes-list-map-keys`,
/// `x-kubernetes-map-type: atomic` and `x-kubernetes-preserve-unknown-fields`;
/// lists without a list type are atomic. `metadata` follows ObjectMeta.
/// Custom resources do not support strategic merge patch.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenApiSchema {
    root: Value,
}

impl OpenApiSchema {
    /// Builds the schema from the `openAPIV3Schema` JSON of one CRD version.
    pub fn new(open_api_v3_schema: Value) -> OpenApiSchema {
        OpenApiSchema {
            root: open_api_v3_schema,
        }
    }

    /// A schema that knows nothing (every object granular, every list atomic).
    pub fn unknown() -> OpenApiSchema {
        OpenApiSchema {
            root: Value::Object(Map::new()),
        }
    }
}

impl Schema for OpenApiSchema {
    fn field(&self, path: &[&str]) -> FieldInfo {
        if path.first() == Some(&"metadata") {
            return BuiltinSchema::meta_only().field(path);
        }
        let mut node: Option<&Value> = Some(&self.root);
        let mut map_element = false;
        for name in path {
            let Some(n) = node else {
                // Below unknown fields: objects are granular maps of unknown entries.
                map_element = true;
                continue;
            };
            // Descend through list items.
            let mut n = n;
            while n.get("type").and_then(Value::as_str) == Some("array") {
                match n.get("items") {
                    Some(items) => n = items,
                    None => break,
                }
            }
            if let Some(p) = n.get("properties").and_then(|p| p.get(*name)) {
                node = Some(p);
                map_element = false;
            } else if let Some(ap) = n.get("additionalProperties").filter(|v| v.is_object()) {
                node = Some(ap);
                map_element = true;
            } else {
                node = None;
                map_element = true;
            }
        }
        let mut info = FieldInfo {
            map_element,
            ..FieldInfo::default()
        };
        let Some(n) = node else {
            return info;
        };
        if n.get("x-kubernetes-map-type").and_then(Value::as_str) == Some("atomic") {
            info.atomic_map = true;
        }
        match n.get("x-kubernetes-list-type").and_then(Value::as_str) {
            Some("set") => info.list_type = ListType::Set,
            Some("map") => {
                let keys: Vec<String> = n
                    .get("x-kubernetes-list-map-keys")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|k| k.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                // Key defaults declared on the item schema.
                if let Some(props) = n.get("items").and_then(|i| i.get("properties")) {
                    for k in &keys {
                        if let Some(d) = props.get(k.as_str()).and_then(|p| p.get("default")) {
                            info.key_defaults.push((k.clone(), d.clone()));
                        }
                    }
                }
                info.list_type = ListType::Map { keys };
            }
            _ => {}
        }
        info
    }

    fn supports_strategic_merge(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(keys: &[&str]) -> ListType {
        ListType::Map {
            keys: keys.iter().map(|s| s.to_string()).collect(),
        }
    }
    fn merge(key: Option<&str>, retain_keys: bool) -> PatchStrategy {
        PatchStrategy::Merge {
            merge_key: key.map(str::to_string),
            retain_keys,
        }
    }

    #[test]
    fn builtin_list_types() {
        let cases: Vec<(&str, &str, &str, &str, ListType)> = vec![
            (
                "containers",
                "apps/v1",
                "Deployment",
                "spec.template.spec.containers",
                map(&["name"]),
            ),
            (
                "pod containers",
                "v1",
                "Pod",
                "spec.containers",
                map(&["name"]),
            ),
            (
                "initContainers",
                "apps/v1",
                "StatefulSet",
                "spec.template.spec.initContainers",
                map(&["name"]),
            ),
            (
                "ephemeralContainers",
                "v1",
                "Pod",
                "spec.ephemeralContainers",
                map(&["name"]),
            ),
            (
                "container ports",
                "apps/v1",
                "DaemonSet",
                "spec.template.spec.containers.ports",
                map(&["containerPort", "protocol"]),
            ),
            (
                "service ports",
                "v1",
                "Service",
                "spec.ports",
                map(&["port", "protocol"]),
            ),
            (
                "env",
                "apps/v1",
                "ReplicaSet",
                "spec.template.spec.containers.env",
                map(&["name"]),
            ),
            (
                "volumeMounts",
                "v1",
                "Pod",
                "spec.containers.volumeMounts",
                map(&["mountPath"]),
            ),
            (
                "volumes",
                "apps/v1",
                "Deployment",
                "spec.template.spec.volumes",
                map(&["name"]),
            ),
            (
                "imagePullSecrets",
                "v1",
                "Pod",
                "spec.imagePullSecrets",
                map(&["name"]),
            ),
            (
                "pod conditions",
                "v1",
                "Pod",
                "status.conditions",
                map(&["type"]),
            ),
            (
                "deployment conditions",
                "apps/v1",
                "Deployment",
                "status.conditions",
                map(&["type"]),
            ),
            (
                "ownerReferences",
                "v1",
                "ConfigMap",
                "metadata.ownerReferences",
                map(&["uid"]),
            ),
            (
                "template ownerReferences",
                "apps/v1",
                "Deployment",
                "spec.template.metadata.ownerReferences",
                map(&["uid"]),
            ),
            (
                "finalizers",
                "v1",
                "Secret",
                "metadata.finalizers",
                ListType::Set,
            ),
            (
                "tolerations",
                "v1",
                "Pod",
                "spec.tolerations",
                ListType::Atomic,
            ),
            (
                "command",
                "v1",
                "Pod",
                "spec.containers.command",
                ListType::Atomic,
            ),
            (
                "args",
                "apps/v1",
                "Deployment",
                "spec.template.spec.containers.args",
                ListType::Atomic,
            ),
            (
                "namespace finalizers",
                "v1",
                "Namespace",
                "spec.finalizers",
                ListType::Atomic,
            ),
            (
                "ingress rules",
                "networking.k8s.io/v1",
                "Ingress",
                "spec.rules",
                ListType::Atomic,
            ),
            (
                "crd versions",
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "spec.versions",
                ListType::Atomic,
            ),
            (
                "crd conditions",
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "status.conditions",
                map(&["type"]),
            ),
            (
                "sa secrets",
                "v1",
                "ServiceAccount",
                "secrets",
                map(&["name"]),
            ),
        ];
        for (name, av, kind, path, want) in cases {
            let s = BuiltinSchema::for_kind(av, kind).expect(name);
            let p: Vec<&str> = path.split('.').collect();
            assert_eq!(s.list_type(&p), want, "{name}");
        }
    }

    #[test]
    fn builtin_patch_strategies() {
        let cases: Vec<(&str, &str, &str, &str, PatchStrategy)> = vec![
            (
                "containers",
                "apps/v1",
                "Deployment",
                "spec.template.spec.containers",
                merge(Some("name"), false),
            ),
            (
                "container ports key containerPort",
                "v1",
                "Pod",
                "spec.containers.ports",
                merge(Some("containerPort"), false),
            ),
            (
                "service ports key port",
                "v1",
                "Service",
                "spec.ports",
                merge(Some("port"), false),
            ),
            (
                "volumes retainKeys",
                "v1",
                "Pod",
                "spec.volumes",
                merge(Some("name"), true),
            ),
            (
                "volumeMounts",
                "v1",
                "Pod",
                "spec.containers.volumeMounts",
                merge(Some("mountPath"), false),
            ),
            (
                "finalizers merge",
                "v1",
                "Pod",
                "metadata.finalizers",
                merge(None, false),
            ),
            (
                "ownerReferences",
                "v1",
                "Pod",
                "metadata.ownerReferences",
                merge(Some("uid"), false),
            ),
            (
                "tolerations replace",
                "v1",
                "Pod",
                "spec.tolerations",
                PatchStrategy::Replace,
            ),
            (
                "args replace",
                "v1",
                "Pod",
                "spec.containers.args",
                PatchStrategy::Replace,
            ),
            (
                "deployment strategy",
                "apps/v1",
                "Deployment",
                "spec.strategy",
                PatchStrategy::RetainKeys,
            ),
            (
                "conditions",
                "v1",
                "Pod",
                "status.conditions",
                merge(Some("type"), false),
            ),
            (
                "crd conditions replace",
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                "status.conditions",
                PatchStrategy::Replace,
            ),
        ];
        for (name, av, kind, path, want) in cases {
            let s = BuiltinSchema::for_kind(av, kind).expect(name);
            let p: Vec<&str> = path.split('.').collect();
            assert_eq!(s.patch_strategy(&p), want, "{name}");
        }
    }

    #[test]
    fn builtin_atomic_maps() {
        let cases: Vec<(&str, &str, &str, &str, bool)> = vec![
            (
                "deployment selector",
                "apps/v1",
                "Deployment",
                "spec.selector",
                true,
            ),
            (
                "statefulset selector",
                "apps/v1",
                "StatefulSet",
                "spec.selector",
                true,
            ),
            ("service selector", "v1", "Service", "spec.selector", true),
            ("nodeSelector", "v1", "Pod", "spec.nodeSelector", true),
            (
                "labels granular",
                "apps/v1",
                "Deployment",
                "metadata.labels",
                false,
            ),
            (
                "template labels granular",
                "apps/v1",
                "Deployment",
                "spec.template.metadata.labels",
                false,
            ),
            ("configmap data granular", "v1", "ConfigMap", "data", false),
        ];
        for (name, av, kind, path, want) in cases {
            let s = BuiltinSchema::for_kind(av, kind).expect(name);
            let p: Vec<&str> = path.split('.').collect();
            assert_eq!(s.is_atomic_map(&p), want, "{name}");
        }
    }

    #[test]
    fn builtin_kinds_known_and_unknown() {
        assert!(BuiltinSchema::for_kind("v1", "Pod").is_some());
        assert!(BuiltinSchema::for_kind("apps/v1", "Pod").is_none());
        assert!(BuiltinSchema::for_kind("example.com/v1", "Widget").is_none());
        assert!(
            BuiltinSchema::for_object(
                &json!({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease"})
            )
            .is_some()
        );
        let s = BuiltinSchema::for_kind("v1", "Pod").expect("pod");
        assert!(s.supports_strategic_merge());
        assert_eq!(
            s.field(&["spec", "containers", "ports"]).key_defaults,
            vec![("protocol".to_string(), json!("TCP"))]
        );
    }

    #[test]
    fn openapi_schema() {
        let s = OpenApiSchema::new(json!({
            "type": "object",
            "properties": {
                "spec": {"type": "object", "properties": {
                    "items": {"type": "array", "items": {"type": "object", "properties": {
                        "name": {"type": "string"}, "port": {"type": "integer"},
                        "proto": {"type": "string", "default": "TCP"},
                        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}}
                    }}, "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name", "proto"]},
                    "plain": {"type": "array", "items": {"type": "string"}},
                    "atomicList": {"type": "array", "x-kubernetes-list-type": "atomic", "items": {"type": "string"}},
                    "sel": {"type": "object", "x-kubernetes-map-type": "atomic"},
                    "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                    "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
                }}
            }
        }));
        assert!(!s.supports_strategic_merge());
        assert_eq!(
            s.list_type(&["spec", "items"]),
            ListType::Map {
                keys: vec!["name".into(), "proto".into()]
            }
        );
        assert_eq!(
            s.field(&["spec", "items"]).key_defaults,
            vec![("proto".to_string(), json!("TCP"))]
        );
        assert_eq!(s.list_type(&["spec", "items", "tags"]), ListType::Set);
        assert_eq!(s.list_type(&["spec", "plain"]), ListType::Atomic);
        assert_eq!(s.list_type(&["spec", "atomicList"]), ListType::Atomic);
        assert!(s.is_atomic_map(&["spec", "sel"]));
        assert!(!s.is_atomic_map(&["spec", "labels"]));
        assert!(s.field(&["spec", "labels", "x"]).map_element);
        assert!(!s.field(&["spec", "plain"]).map_element);
        assert!(s.field(&["spec", "free", "a", "b"]).map_element);
        assert_eq!(s.list_type(&["metadata", "finalizers"]), ListType::Set);
        assert_eq!(
            s.list_type(&["metadata", "ownerReferences"]),
            ListType::Map {
                keys: vec!["uid".into()]
            }
        );
    }
}
