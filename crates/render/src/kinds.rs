//! What rollgit knows about Kubernetes kinds: scope, apply order, name rules.

use std::fmt;

/// Whether objects of a kind live in a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub enum Scope {
    /// Namespaced: the namespace is defaulted when missing.
    Namespaced,
    /// Cluster-scoped: never given a namespace.
    Cluster,
    /// A kind rollgit does not know and no CRD in the app declares: left as written; the
    /// daemon decides with API discovery.
    Unknown,
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → ``).
pub fn group_of(api_version: &str) -> &str {
    match api_version.rsplit_once('/') {
        Some((group, _)) => group,
        None => "",
    }
}

const CLUSTER_SCOPED: &[(&str, &str)] = &[
    ("", "Namespace"),
    ("", "Node"),
    ("", "PersistentVolume"),
    ("", "ComponentStatus"),
    ("apiextensions.k8s.io", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("rbac.authorization.k8s.io", "ClusterRole"),
    ("rbac.authorization.k8s.io", "ClusterRoleBinding"),
    ("storage.k8s.io", "StorageClass"),
    ("storage.k8s.io", "CSIDriver"),
    ("storage.k8s.io", "CSINode"),
    ("storage.k8s.io", "VolumeAttachment"),
    ("scheduling.k8s.io", "PriorityClass"),
    ("node.k8s.io", "RuntimeClass"),
    ("networking.k8s.io", "IngressClass"),
    ("policy", "PodSecurityPolicy"),
    ("certificates.k8s.io", "CertificateSigningRequest"),
    ("flowcontrol.apiserver.k8s.io", "FlowSchema"),
    ("flowcontrol.apiserver.k8s.io", "PriorityLevelConfiguration"),
    (
        "admissionregistration.k8s.io",
        "MutatingWebhookConfiguration",
    ),
    (
        "admissionregistration.k8s.io",
        "ValidatingWebhookConfiguration",
    ),
    ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy"),
    (
        "admissionregistration.k8s.io",
        "ValidatingAdmissionPolicyBinding",
    ),
];

const NAMESPACED: &[(&str, &str)] = &[
    ("", "Pod"),
    ("", "Service"),
    ("", "ConfigMap"),
    ("", "Secret"),
    ("", "ServiceAccount"),
    ("", "PersistentVolumeClaim"),
    ("", "Endpoints"),
    ("", "LimitRange"),
    ("", "ResourceQuota"),
    ("", "ReplicationController"),
    ("", "PodTemplate"),
    ("", "Event"),
    ("apps", "Deployment"),
    ("apps", "StatefulSet"),
    ("apps", "DaemonSet"),
    ("apps", "ReplicaSet"),
    ("apps", "ControllerRevision"),
    ("batch", "Job"),
    ("batch", "CronJob"),
    ("networking.k8s.io", "Ingress"),
    ("networking.k8s.io", "NetworkPolicy"),
    ("policy", "PodDisruptionBudget"),
    ("rbac.authorization.k8s.io", "Role"),
    ("rbac.authorization.k8s.io", "RoleBinding"),
    ("autoscaling", "HorizontalPodAutoscaler"),
    ("coordination.k8s.io", "Lease"),
    ("discovery.k8s.io", "EndpointSlice"),
    ("events.k8s.io", "Event"),
    ("apps.kruise.io", "CloneSet"),
    ("apps.kruise.io", "StatefulSet"),
    ("apps.kruise.io", "DaemonSet"),
    ("rollouts.kruise.io", "Rollout"),
    ("argoproj.io", "Rollout"),
    ("core.oam.dev", "Application"),
    ("core.oam.dev", "Policy"),
    ("core.oam.dev", "Workflow"),
];

/// The scope of a kind rollgit knows (built-in kinds, CloneSet, Rollouts), else `Unknown`.
pub fn scope_of(api_version: &str, kind: &str) -> Scope {
    let group = group_of(api_version);
    if CLUSTER_SCOPED
        .iter()
        .any(|(g, k)| *g == group && *k == kind)
    {
        Scope::Cluster
    } else if NAMESPACED.iter().any(|(g, k)| *g == group && *k == kind) {
        Scope::Namespaced
    } else {
        Scope::Unknown
    }
}

/// Apply order within the namespaced (and cluster-scoped) kinds, after Helm's install order:
/// what others depend on first.
const KIND_ORDER: &[&str] = &[
    "Namespace",
    "CustomResourceDefinition",
    "PriorityClass",
    "StorageClass",
    "PersistentVolume",
    "IngressClass",
    "RuntimeClass",
    "PodSecurityPolicy",
    "ClusterRole",
    "ClusterRoleBinding",
    "ResourceQuota",
    "LimitRange",
    "NetworkPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "ConfigMap",
    "PersistentVolumeClaim",
    "Role",
    "RoleBinding",
    "Service",
    "Endpoints",
    "EndpointSlice",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "ControllerRevision",
    "Deployment",
    "CloneSet",
    "StatefulSet",
    "HorizontalPodAutoscaler",
    "Job",
    "CronJob",
    "Ingress",
    "APIService",
];

/// The sort key of an object in apply order:
///
/// 0. Namespaces, 1. CustomResourceDefinitions, 2. other cluster-scoped kinds, 3. namespaced
///    kinds rollgit knows, 4. kinds it does not know (custom resources, after their CRDs),
/// 5. admission webhook configurations last, so that the Services they call exist first.
///
/// Within a group, kinds follow Helm's install order, then kind, namespace and name.
pub(crate) fn apply_rank(api_version: &str, kind: &str, scope: Scope) -> (u8, usize) {
    let within = KIND_ORDER
        .iter()
        .position(|k| *k == kind)
        .unwrap_or(KIND_ORDER.len());
    let group = group_of(api_version);
    let class = if group.is_empty() && kind == "Namespace" {
        0
    } else if group == "apiextensions.k8s.io" && kind == "CustomResourceDefinition" {
        1
    } else if group == "admissionregistration.k8s.io"
        && matches!(
            kind,
            "MutatingWebhookConfiguration" | "ValidatingWebhookConfiguration"
        )
    {
        5
    } else {
        match scope {
            Scope::Cluster => 2,
            Scope::Namespaced => 3,
            Scope::Unknown => 4,
        }
    };
    (class, within)
}

/// Which name rule a kind's `metadata.name` follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameRule {
    /// RFC 1123 label: at most 63 of `[a-z0-9-]`, alphanumeric at both ends.
    Label,
    /// RFC 1123 subdomain: at most 253, dot-separated labels.
    Subdomain,
    /// RBAC names: any path segment (no `/`, `%`, not `.` or `..`).
    PathSegment,
}

pub(crate) fn name_rule(api_version: &str, kind: &str) -> NameRule {
    let group = group_of(api_version);
    match (group, kind) {
        ("", "Namespace" | "Service") => NameRule::Label,
        ("rbac.authorization.k8s.io", _) => NameRule::PathSegment,
        _ => NameRule::Subdomain,
    }
}

pub use rollgit_syntax::{is_dns1123_label, is_dns1123_subdomain};

/// Checks a name against its rule; `Err` holds the reason.
pub(crate) fn check_name(rule: NameRule, name: &str) -> Result<(), String> {
    let ok = match rule {
        NameRule::Label => is_dns1123_label(name),
        NameRule::Subdomain => is_dns1123_subdomain(name),
        NameRule::PathSegment => {
            !name.is_empty()
                && name != "."
                && name != ".."
                && !name.contains('/')
                && !name.contains('%')
        }
    };
    if ok {
        return Ok(());
    }
    Err(match rule {
        NameRule::Label => "a lowercase RFC 1123 label must consist of at most 63 lower case alphanumeric characters or '-', and must start and end with an alphanumeric character".to_owned(),
        NameRule::Subdomain => "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (at most 253)".to_owned(),
        NameRule::PathSegment => "a name may not be '.' or '..' and may not contain '/' or '%'".to_owned(),
    })
}

/// The identity of an object: API group, kind, namespace and name. Two objects with the same
/// key in one app are duplicates (the version of the API does not matter).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
pub struct ObjectKey {
    /// API group (`` for the core group).
    pub group: String,
    /// Kind.
    pub kind: String,
    /// Namespace, `None` for cluster-scoped (or unknown and unset).
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
}

impl fmt::Display for ObjectKey {
    /// `Deployment.apps demo/web`, `Service demo/web`, `Namespace demo`; control characters
    /// of a kind or name written in a file escaped ([`rollgit_syntax::escape`]).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let e = |s: &str| rollgit_syntax::escape(s).into_owned();
        if self.group.is_empty() {
            write!(f, "{}", e(&self.kind))?;
        } else {
            write!(f, "{}.{}", e(&self.kind), e(&self.group))?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " {}/{}", e(ns), e(&self.name)),
            None => write!(f, " {}", e(&self.name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let cases: &[(&str, NameRule, &str, bool)] = &[
            ("label ok", NameRule::Label, "web-1", true),
            ("label uppercase", NameRule::Label, "Web", false),
            ("label dot", NameRule::Label, "a.b", false),
            ("label leading dash", NameRule::Label, "-a", false),
            ("label 64 chars", NameRule::Label, &"a".repeat(64), false),
            ("subdomain dots", NameRule::Subdomain, "a.b-c.d", true),
            ("subdomain empty label", NameRule::Subdomain, "a..b", false),
            ("subdomain underscore", NameRule::Subdomain, "a_b", false),
            (
                "subdomain part longer than 63, as Kubernetes allows",
                NameRule::Subdomain,
                &format!("{}.b", "a".repeat(64)),
                true,
            ),
            ("rbac colon", NameRule::PathSegment, "system:foo", true),
            ("rbac slash", NameRule::PathSegment, "a/b", false),
        ];
        for (case, rule, name, ok) in cases {
            assert_eq!(check_name(*rule, name).is_ok(), *ok, "{case}");
        }
    }

    #[test]
    fn scopes() {
        let cases: &[(&str, &str, &str, Scope)] = &[
            ("namespace", "v1", "Namespace", Scope::Cluster),
            (
                "crd",
                "apiextensions.k8s.io/v1",
                "CustomResourceDefinition",
                Scope::Cluster,
            ),
            ("deployment", "apps/v1", "Deployment", Scope::Namespaced),
            (
                "cloneset",
                "apps.kruise.io/v1alpha1",
                "CloneSet",
                Scope::Namespaced,
            ),
            ("custom", "example.com/v1", "Widget", Scope::Unknown),
            (
                "clusterrole",
                "rbac.authorization.k8s.io/v1",
                "ClusterRole",
                Scope::Cluster,
            ),
        ];
        for (case, av, kind, scope) in cases {
            assert_eq!(scope_of(av, kind), *scope, "{case}");
        }
    }

    #[test]
    fn object_keys_show_kinds_and_names_escaped() {
        let key = |group: &str, kind: &str, ns: Option<&str>, name: &str| ObjectKey {
            group: group.into(),
            kind: kind.into(),
            namespace: ns.map(Into::into),
            name: name.into(),
        };
        // (case, key, shown)
        let rows = [
            (
                "namespaced, grouped",
                key("apps", "Deployment", Some("demo"), "web"),
                "Deployment.apps demo/web",
            ),
            (
                "cluster-scoped, core",
                key("", "Namespace", None, "demo"),
                "Namespace demo",
            ),
            (
                "a kind with an ANSI escape",
                key("x.io", "K\x1b[2J", Some("d"), "n"),
                "K\\u{1b}[2J.x.io d/n",
            ),
            (
                "a group with a newline",
                key("a\nb", "K", None, "n"),
                "K.a\\nb n",
            ),
        ];
        for (case, k, shown) in rows {
            assert_eq!(k.to_string(), shown, "{case}");
        }
    }
}
