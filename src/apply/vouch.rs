//! Which objects of a many-app sync may skip their server-side dry run without weakening the
//! all-or-nothing guarantee (RELIABILITY.md, guarantee 1).
//!
//! The dry run asks the server, for each object, whether it would be accepted. For a few
//! kinds whose whole server-side validation is small, fixed and known (core/v1 ConfigMap,
//! ServiceAccount, and a plain ClusterIP Service), rollgit can answer that question itself
//! for the object's *content*; what it cannot see locally is answered once per kind and
//! namespace per sync instead of once per object:
//!
//! | what the server checks | how it is vouched for |
//! |---|---|
//! | decoding, unknown fields (`fieldValidation=Strict`), types | [`plainly_valid`]: only the fields listed there, each of the right type |
//! | names, labels, annotations, ConfigMap keys, the 1 MiB data limit, a Service's ports and selector | [`plainly_valid`], with kube-apiserver's rules (stricter where unsure) |
//! | a free cluster IP for a Service (allocated on create) | the probe's dry run finds one (dry runs reserve none, so one per Service proved no more); a Service that asks for a given `clusterIP` is dry-run |
//! | immutable fields, an update's conflicts | only creates are vouched for (the object was not in the sync's look-up) |
//! | the namespace exists and is not terminating (NamespaceLifecycle) | one real dry run of the kind in that namespace per sync (the probe) |
//! | RBAC (patch and create of the kind in the namespace, for every name) | two SelfSubjectAccessReviews per kind and namespace per sync |
//! | ResourceQuota | none in the namespace (one LIST per kind and namespace per sync, when served) |
//! | admission webhooks and admission policies | none configured in the cluster (one LIST per kind per sync, when served); off for the rest of the sync once an app applies one |
//!
//! Anything else (any other kind, an object that exists, a field not listed, any doubt, a check
//! that failed) is dry-run as before. [`plainly_valid`] never rejects: it only says whether the
//! dry run can be skipped, so the server's message is still what a refused commit shows.

use super::{Applier, GroupKey, Prepared};
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::api::{Api, ListParams, PostParams};
use rollgit_syntax::{is_dns1123_subdomain, is_label_value, is_qualified_name};
use serde_json::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::OnceCell;
use tracing::debug;

/// The kinds whose presence in the cluster makes admission content-dependent beyond what
/// [`plainly_valid`] sees: `(apiVersion, kind)`.
const ADMISSION_KINDS: [(&str, &str); 6] = [
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io/v1",
        "ValidatingAdmissionPolicy",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "ValidatingAdmissionPolicy",
    ),
    (
        "admissionregistration.k8s.io/v1beta1",
        "MutatingAdmissionPolicy",
    ),
    (
        "admissionregistration.k8s.io/v1alpha1",
        "MutatingAdmissionPolicy",
    ),
];

/// What one sync has established about skipping dry runs (part of the sync's
/// [`super::SharedLookup`]); see the module documentation.
#[derive(Default)]
pub(super) struct Vouching {
    /// No admission webhook or policy is configured (checked once per sync).
    admission: OnceCell<bool>,
    /// Per kind and namespace: rollgit may patch and create every name, and no ResourceQuota
    /// applies.
    groups: Mutex<HashMap<GroupKey, Arc<OnceCell<bool>>>>,
    /// Kinds and namespaces where a real dry run of a plainly valid create passed this sync.
    proven: Mutex<HashSet<GroupKey>>,
    /// Set once an app of the sync applies an admission webhook or policy.
    off: AtomicBool,
}

impl Vouching {
    fn group(&self, key: &GroupKey) -> Arc<OnceCell<bool>> {
        let mut g = self.groups.lock().unwrap_or_else(|p| p.into_inner());
        g.entry(key.clone()).or_default().clone()
    }

    fn is_proven(&self, key: &GroupKey) -> bool {
        self.proven
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(key)
    }

    /// Records that the dry runs of these kinds and namespaces passed.
    pub(super) fn prove(&self, keys: impl IntoIterator<Item = GroupKey>) {
        self.proven
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(keys);
    }

    /// No more dry runs are skipped in this sync (an admission webhook or policy is applied).
    pub(super) fn stop(&self) {
        self.off.store(true, Ordering::Relaxed);
    }
}

/// What [`Applier::vouch`] says of one prepared object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Dry-run it.
    DryRun,
    /// Dry-run it; if it passes, the rest of its kind and namespace in this sync need not be.
    Probe,
    /// Its dry run is skipped.
    Vouched,
}

/// The key of `p`'s kind and namespace.
pub(super) fn key_of(p: &Prepared) -> GroupKey {
    (
        format!("{}/{}", p.ar.api_version, p.ar.plural),
        p.oref.namespace.clone(),
    )
}

impl Applier {
    /// Whether `p` (a create or an update, per the sync's look-up) must be dry-run.
    pub(super) async fn vouch(&self, v: &Vouching, p: &Prepared) -> Verdict {
        if v.off.load(Ordering::Relaxed)
            || p.live_version.is_some()
            || !plainly_valid(&p.oref.group, &p.oref.kind, &p.object)
        {
            return Verdict::DryRun;
        }
        let admission = v
            .admission
            .get_or_init(|| async { self.no_admission_hooks().await })
            .await;
        if !*admission {
            return Verdict::DryRun;
        }
        let key = key_of(p);
        let cell = v.group(&key);
        let allowed = cell
            .get_or_init(|| async { self.group_allowed(p).await })
            .await;
        match (*allowed, v.is_proven(&key)) {
            (false, _) => Verdict::DryRun,
            (true, false) => Verdict::Probe,
            (true, true) => Verdict::Vouched,
        }
    }

    /// True when the cluster has no admission webhook or admission policy (a kind it does not
    /// serve has none); false when one exists or a list fails.
    async fn no_admission_hooks(&self) -> bool {
        let needed: BTreeSet<(String, String)> = ADMISSION_KINDS
            .iter()
            .map(|(av, k)| ((*av).to_string(), (*k).to_string()))
            .collect();
        if let Err(e) = self.ensure_discovered(&needed).await {
            debug!(error = %crate::error_chain(&e), "admission kinds not discovered: every object is dry-run");
            return false;
        }
        for (av, kind) in ADMISSION_KINDS {
            let Some((ar, _)) = self.resolve(av, kind) else {
                continue;
            };
            match self
                .api_for(&ar, None)
                .list_metadata(&ListParams::default().limit(1))
                .await
            {
                Ok(l) if l.items.is_empty() => {}
                Ok(_) => {
                    debug!(
                        kind,
                        "an admission hook is configured: every object is dry-run"
                    );
                    return false;
                }
                Err(e) => {
                    debug!(kind, error = %e, "admission hooks not listed: every object is dry-run");
                    return false;
                }
            }
        }
        true
    }

    /// True when rollgit may patch and create every object of `p`'s kind in its namespace
    /// and no ResourceQuota is in that namespace.
    async fn group_allowed(&self, p: &Prepared) -> bool {
        let Some(ns) = p.oref.namespace.as_deref() else {
            return false;
        };
        for verb in ["patch", "create"] {
            let review = SelfSubjectAccessReview {
                spec: SelfSubjectAccessReviewSpec {
                    resource_attributes: Some(ResourceAttributes {
                        group: Some(p.ar.group.clone()),
                        resource: Some(p.ar.plural.clone()),
                        namespace: Some(ns.to_string()),
                        verb: Some(verb.to_string()),
                        ..ResourceAttributes::default()
                    }),
                    ..SelfSubjectAccessReviewSpec::default()
                },
                ..SelfSubjectAccessReview::default()
            };
            let api: Api<SelfSubjectAccessReview> = Api::all(self.client.clone());
            match api.create(&PostParams::default(), &review).await {
                Ok(r) if r.status.as_ref().is_some_and(|s| s.allowed) => {}
                Ok(_) => return false,
                Err(e) => {
                    debug!(verb, resource = %p.ar.plural, error = %e, "access review failed: dry-run");
                    return false;
                }
            }
        }
        let needed = BTreeSet::from([("v1".to_string(), "ResourceQuota".to_string())]);
        if self.ensure_discovered(&needed).await.is_err() {
            return false;
        }
        match self.resolve("v1", "ResourceQuota") {
            None => true,
            Some((ar, _)) => self
                .api_for(&ar, Some(ns))
                .list_metadata(&ListParams::default().limit(1))
                .await
                .is_ok_and(|l| l.items.is_empty()),
        }
    }
}

/// The most a ConfigMap's data may hold (`core.MaxSecretSize`, 1 MiB).
const MAX_DATA_SIZE: usize = 1024 * 1024;
/// The most all annotations of an object may hold (`TotalAnnotationSizeLimitB`, 256 KiB).
const MAX_ANNOTATIONS_SIZE: usize = 256 * 1024;
/// Larger objects are dry-run: far below kube-apiserver's 3 MiB request limit and etcd's
/// default 1.5 MiB, whatever the encoding adds.
const MAX_VOUCHED_BYTES: usize = 1024 * 1024;

/// Whether kube-apiserver accepts `obj` (prepared: labels added, namespace set) as a create by
/// server-side apply with `fieldValidation=Strict`, as far as its content decides. `false`
/// means "not sure" (the object is dry-run), never "invalid".
pub fn plainly_valid(group: &str, kind: &str, obj: &Value) -> bool {
    let Some(top) = obj.as_object() else {
        return false;
    };
    if !group.is_empty() || obj["apiVersion"] != "v1" || obj["kind"] != kind {
        return false;
    }
    if !serde_json::to_vec(obj).is_ok_and(|b| b.len() <= MAX_VOUCHED_BYTES) {
        return false;
    }
    if !plain_metadata(&obj["metadata"]) {
        return false;
    }
    match kind {
        "ConfigMap" => top.iter().all(|(k, v)| match k.as_str() {
            "apiVersion" | "kind" | "metadata" => true,
            "data" => plain_data(v),
            "immutable" => v.is_boolean(),
            _ => false,
        }),
        "ServiceAccount" => top.iter().all(|(k, v)| match k.as_str() {
            "apiVersion" | "kind" | "metadata" => true,
            "automountServiceAccountToken" => v.is_boolean(),
            _ => false,
        }),
        "Service" => {
            obj["metadata"]["name"]
                .as_str()
                .is_some_and(rollgit_syntax::is_dns1035_label)
                && obj["metadata"]["annotations"]
                    .get(LB_SOURCE_RANGES)
                    .is_none()
                && top.contains_key("spec")
                && top.iter().all(|(k, v)| match k.as_str() {
                    "apiVersion" | "kind" | "metadata" => true,
                    "spec" => plain_service_spec(v),
                    _ => false,
                })
        }
        _ => false,
    }
}

/// The annotation kube-apiserver refuses on a Service that is not a LoadBalancer.
const LB_SOURCE_RANGES: &str = "service.beta.kubernetes.io/load-balancer-source-ranges";

/// A ClusterIP Service's `spec` as `ValidateService` accepts it: a `selector` of valid labels,
/// `type: ClusterIP` (the default) and at least one port; every other field (a `clusterIP`
/// to allocate, `nodePort`, `appProtocol`, IP families, session affinity) is dry-run.
fn plain_service_spec(spec: &Value) -> bool {
    let Some(spec) = spec.as_object() else {
        return false;
    };
    let ports = spec.get("ports").and_then(Value::as_array);
    ports.is_some_and(|p| plain_service_ports(p))
        && spec.iter().all(|(k, v)| match k.as_str() {
            "ports" => true,
            "type" => v == "ClusterIP",
            "selector" => plain_labels(v),
            _ => false,
        })
}

/// `validateServicePort` for each port, and the rules across ports: a name on every port
/// when there are several, unique names, unique `(protocol, port)` pairs.
fn plain_service_ports(ports: &[Value]) -> bool {
    let mut names = HashSet::new();
    let mut pairs = HashSet::new();
    !ports.is_empty()
        && ports.iter().all(|p| {
            let Some(p) = p.as_object() else {
                return false;
            };
            let name = p.get("name").and_then(Value::as_str);
            let protocol = p.get("protocol").map_or(Some("TCP"), Value::as_str);
            let port = p.get("port").and_then(Value::as_u64);
            let fields_ok = p.iter().all(|(k, v)| match k.as_str() {
                "name" => v.as_str().is_some_and(rollgit_syntax::is_dns1123_label),
                "port" => v.as_u64().is_some_and(is_port_number),
                "protocol" => matches!(v.as_str(), Some("TCP" | "UDP" | "SCTP")),
                "targetPort" => match v {
                    Value::String(s) => is_port_name(s),
                    v => v.as_u64().is_some_and(is_port_number),
                },
                _ => false,
            });
            fields_ok
                && (ports.len() == 1 || name.is_some())
                && name.is_none_or(|n| names.insert(n))
                && port.is_some_and(|port| pairs.insert((protocol, port)))
        })
}

/// `IsValidPortNum`: 1 to 65535.
fn is_port_number(n: u64) -> bool {
    (1..=65535).contains(&n)
}

/// `IsValidPortName` (an IANA service name): at most 15 of `[-a-z0-9]`, at least one letter,
/// no `--`, not starting or ending with `-`.
fn is_port_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 15
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && s.bytes().any(|b| b.is_ascii_lowercase())
        && !s.contains("--")
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A map of valid label keys to valid label values (`metadata.labels`, a Service's selector).
fn plain_labels(v: &Value) -> bool {
    v.as_object().is_some_and(|l| {
        l.iter()
            .all(|(k, v)| is_qualified_name(k) && v.as_str().is_some_and(is_label_value))
    })
}

/// `metadata` with a name and namespace, and valid labels and annotations; nothing else.
fn plain_metadata(m: &Value) -> bool {
    let Some(m) = m.as_object() else {
        return false;
    };
    let name_ok = m
        .get("name")
        .and_then(Value::as_str)
        .is_some_and(is_dns1123_subdomain);
    let ns_ok = m
        .get("namespace")
        .and_then(Value::as_str)
        .is_some_and(rollgit_syntax::is_dns1123_label);
    name_ok
        && ns_ok
        && m.iter().all(|(k, v)| match k.as_str() {
            "name" | "namespace" => true,
            "labels" => plain_labels(v),
            "annotations" => v.as_object().is_some_and(|a| {
                let mut total = 0;
                let ok = a.iter().all(|(k, v)| {
                    total += k.len() + v.as_str().map_or(0, str::len);
                    is_qualified_name(k) && v.is_string()
                });
                ok && total <= MAX_ANNOTATIONS_SIZE
            }),
            _ => false,
        })
}

/// A ConfigMap's `data`: string values under valid keys, at most 1 MiB in all.
fn plain_data(d: &Value) -> bool {
    let Some(d) = d.as_object() else {
        return false;
    };
    let mut size = 0;
    d.iter().all(|(k, v)| {
        size += v.as_str().map_or(0, str::len);
        is_config_map_key(k) && v.is_string()
    }) && size <= MAX_DATA_SIZE
}

/// kube-apiserver's `IsConfigMapKey`: at most 253 of `[-._a-zA-Z0-9]`, not `.`, `..` or
/// starting with `..`.
fn is_config_map_key(k: &str) -> bool {
    !k.is_empty()
        && k.len() <= 253
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && k != "."
        && !k.starts_with("..")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cm(metadata: Value, rest: Value) -> Value {
        let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata});
        if let (Some(o), Some(rest)) = (o.as_object_mut(), rest.as_object()) {
            o.extend(rest.clone());
        }
        o
    }

    fn meta() -> Value {
        json!({"name": "c", "namespace": "ns", "labels": {"app.kubernetes.io/managed-by": "rollgit", "rollgit.dev/app": "a"}})
    }

    #[test]
    fn plainly_valid_table() {
        let big = "x".repeat(MAX_DATA_SIZE / 2 + 1);
        let rows: Vec<(&str, &str, Value, bool)> = vec![
            (
                "configmap with data",
                "ConfigMap",
                cm(meta(), json!({"data": {"a.b_C-1": "v"}})),
                true,
            ),
            (
                "configmap, no data",
                "ConfigMap",
                cm(meta(), json!({})),
                true,
            ),
            (
                "configmap immutable",
                "ConfigMap",
                cm(meta(), json!({"immutable": true})),
                true,
            ),
            (
                "immutable not a bool",
                "ConfigMap",
                cm(meta(), json!({"immutable": "yes"})),
                false,
            ),
            (
                "binaryData is dry-run",
                "ConfigMap",
                cm(meta(), json!({"binaryData": {"k": "AA=="}})),
                false,
            ),
            (
                "unknown field",
                "ConfigMap",
                cm(meta(), json!({"datum": {}})),
                false,
            ),
            (
                "data value not a string",
                "ConfigMap",
                cm(meta(), json!({"data": {"k": 1}})),
                false,
            ),
            (
                "data value null",
                "ConfigMap",
                cm(meta(), json!({"data": {"k": null}})),
                false,
            ),
            (
                "data not a map",
                "ConfigMap",
                cm(meta(), json!({"data": []})),
                false,
            ),
            (
                "key with a space",
                "ConfigMap",
                cm(meta(), json!({"data": {"bad key": "v"}})),
                false,
            ),
            (
                "key ..",
                "ConfigMap",
                cm(meta(), json!({"data": {"..a": "v"}})),
                false,
            ),
            (
                "key .",
                "ConfigMap",
                cm(meta(), json!({"data": {".": "v"}})),
                false,
            ),
            (
                "key of 254",
                "ConfigMap",
                cm(meta(), json!({"data": {"k".repeat(254): "v"}})),
                false,
            ),
            (
                "data over 1 MiB",
                "ConfigMap",
                cm(meta(), json!({"data": {"a": big, "b": big}})),
                false,
            ),
            (
                "upper-case name",
                "ConfigMap",
                cm(json!({"name": "C", "namespace": "ns"}), json!({})),
                false,
            ),
            (
                "no namespace",
                "ConfigMap",
                cm(json!({"name": "c"}), json!({})),
                false,
            ),
            (
                "invalid label value",
                "ConfigMap",
                cm(
                    json!({"name": "c", "namespace": "ns", "labels": {"team": "not a value!"}}),
                    json!({}),
                ),
                false,
            ),
            (
                "invalid label key",
                "ConfigMap",
                cm(
                    json!({"name": "c", "namespace": "ns", "labels": {"-bad": "x"}}),
                    json!({}),
                ),
                false,
            ),
            (
                "label value not a string",
                "ConfigMap",
                cm(
                    json!({"name": "c", "namespace": "ns", "labels": {"a": 1}}),
                    json!({}),
                ),
                false,
            ),
            (
                "annotations",
                "ConfigMap",
                cm(
                    json!({"name": "c", "namespace": "ns", "annotations": {"example.com/x": "any text"}}),
                    json!({}),
                ),
                true,
            ),
            (
                "annotation not a string",
                "ConfigMap",
                cm(
                    json!({"name": "c", "namespace": "ns", "annotations": {"x": true}}),
                    json!({}),
                ),
                false,
            ),
            (
                "ownerReferences are dry-run",
                "ConfigMap",
                cm(
                    json!({"name": "c", "namespace": "ns", "ownerReferences": []}),
                    json!({}),
                ),
                false,
            ),
            (
                "generateName is dry-run",
                "ConfigMap",
                cm(
                    json!({"name": "c", "namespace": "ns", "generateName": "c-"}),
                    json!({}),
                ),
                false,
            ),
            (
                "finalizers are dry-run",
                "ConfigMap",
                cm(
                    json!({"name": "c", "namespace": "ns", "finalizers": ["x"]}),
                    json!({}),
                ),
                false,
            ),
            (
                "kind mismatch",
                "ServiceAccount",
                cm(meta(), json!({})),
                false,
            ),
            (
                "serviceaccount",
                "ServiceAccount",
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(), "automountServiceAccountToken": false}),
                true,
            ),
            (
                "serviceaccount with imagePullSecrets",
                "ServiceAccount",
                json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": meta(), "imagePullSecrets": [{"name": "r"}]}),
                false,
            ),
            (
                "a Secret is dry-run",
                "Secret",
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta()}),
                false,
            ),
            (
                "a Deployment is dry-run",
                "Deployment",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta()}),
                false,
            ),
            (
                "another apiVersion",
                "ConfigMap",
                json!({"apiVersion": "v2", "kind": "ConfigMap", "metadata": meta()}),
                false,
            ),
        ];
        for (case, kind, obj, want) in rows {
            assert_eq!(plainly_valid("", kind, &obj), want, "{case}");
        }
        let svc = |spec: Value| json!({"apiVersion": "v1", "kind": "Service", "metadata": meta(), "spec": spec});
        let services: Vec<(&str, Value, bool)> = vec![
            (
                "one port, a selector",
                svc(
                    json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 8080}]}),
                ),
                true,
            ),
            (
                "named ports, protocols, a named targetPort, type ClusterIP",
                svc(json!({"type": "ClusterIP", "ports": [
                    {"name": "http", "port": 80, "targetPort": "http-alt", "protocol": "TCP"},
                    {"name": "dns", "port": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "protocol": "TCP"}]})),
                true,
            ),
            (
                "no spec",
                json!({"apiVersion": "v1", "kind": "Service", "metadata": meta()}),
                false,
            ),
            ("no ports", svc(json!({"selector": {"app": "web"}})), false),
            ("empty ports", svc(json!({"ports": []})), false),
            ("port 0", svc(json!({"ports": [{"port": 0}]})), false),
            (
                "port 65536",
                svc(json!({"ports": [{"port": 65536}]})),
                false,
            ),
            (
                "port as a string",
                svc(json!({"ports": [{"port": "80"}]})),
                false,
            ),
            (
                "port missing",
                svc(json!({"ports": [{"targetPort": 80}]})),
                false,
            ),
            (
                "targetPort 0",
                svc(json!({"ports": [{"port": 80, "targetPort": 0}]})),
                false,
            ),
            (
                "targetPort name over 15",
                svc(json!({"ports": [{"port": 80, "targetPort": "a-very-long-name"}]})),
                false,
            ),
            (
                "targetPort name all digits",
                svc(json!({"ports": [{"port": 80, "targetPort": "8080"}]})),
                false,
            ),
            (
                "targetPort name with --",
                svc(json!({"ports": [{"port": 80, "targetPort": "a--b"}]})),
                false,
            ),
            (
                "targetPort name upper-case",
                svc(json!({"ports": [{"port": 80, "targetPort": "Http"}]})),
                false,
            ),
            (
                "two ports, one unnamed",
                svc(json!({"ports": [{"name": "a", "port": 80}, {"port": 81}]})),
                false,
            ),
            (
                "duplicate port names",
                svc(json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]})),
                false,
            ),
            (
                "duplicate port and protocol (TCP is the default)",
                svc(
                    json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "TCP"}]}),
                ),
                false,
            ),
            (
                "unknown protocol",
                svc(json!({"ports": [{"port": 80, "protocol": "ICMP"}]})),
                false,
            ),
            (
                "port name upper-case",
                svc(json!({"ports": [{"name": "HTTP", "port": 80}]})),
                false,
            ),
            (
                "nodePort",
                svc(json!({"ports": [{"port": 80, "nodePort": 30080}]})),
                false,
            ),
            (
                "appProtocol",
                svc(json!({"ports": [{"port": 80, "appProtocol": "http"}]})),
                false,
            ),
            (
                "type NodePort",
                svc(json!({"type": "NodePort", "ports": [{"port": 80}]})),
                false,
            ),
            (
                "clusterIP",
                svc(json!({"clusterIP": "None", "ports": [{"port": 80}]})),
                false,
            ),
            (
                "invalid selector value",
                svc(json!({"selector": {"app": "a b"}, "ports": [{"port": 80}]})),
                false,
            ),
            (
                "name not an RFC 1035 label",
                json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "1web", "namespace": "ns"}, "spec": {"ports": [{"port": 80}]}}),
                false,
            ),
            (
                "load-balancer source ranges annotation on a ClusterIP Service",
                json!({"apiVersion": "v1", "kind": "Service",
                    "metadata": {"name": "web", "namespace": "ns", "annotations": {LB_SOURCE_RANGES: "10.0.0.0/8"}},
                    "spec": {"ports": [{"port": 80}]}}),
                false,
            ),
        ];
        for (case, obj, want) in services {
            assert_eq!(plainly_valid("", "Service", &obj), want, "Service: {case}");
        }
        assert!(
            !plainly_valid("apps", "ConfigMap", &cm(meta(), json!({}))),
            "a group"
        );
    }
}
