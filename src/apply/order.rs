//! The order of an apply, as one kind table. Phases go one after another; the objects of one
//! phase are applied concurrently (bounded), sorted by (namespace, name). Prune walks the
//! phases in reverse, so nothing is deleted before what lives in it.
//!
//! | phase | kinds | why |
//! |---|---|---|
//! | [`Phase::Namespaces`] | core `Namespace` | everything namespaced lives in one |
//! | [`Phase::Definitions`] | `apiextensions.k8s.io` `CustomResourceDefinition` (then wait for Established) | custom resources need their kind served |
//! | [`Phase::Resources`] | everything else | |
//! | [`Phase::Webhooks`] | `admissionregistration.k8s.io` `*WebhookConfiguration` | a webhook applied earlier could reject the objects its own service needs |

use crate::k8s::ObjRef;

/// One phase of an apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Phase {
    /// Namespaces.
    Namespaces,
    /// CustomResourceDefinitions.
    Definitions,
    /// Everything else.
    Resources,
    /// Admission webhook configurations.
    Webhooks,
}

impl Phase {
    /// Every phase, in apply order.
    pub const ALL: [Phase; 4] = [
        Phase::Namespaces,
        Phase::Definitions,
        Phase::Resources,
        Phase::Webhooks,
    ];

    /// The phase of a kind of an API group (`""` for the core group).
    pub fn of(group: &str, kind: &str) -> Phase {
        match (group, kind) {
            ("", "Namespace") => Phase::Namespaces,
            ("apiextensions.k8s.io", "CustomResourceDefinition") => Phase::Definitions,
            ("admissionregistration.k8s.io", k) if k.ends_with("WebhookConfiguration") => {
                Phase::Webhooks
            }
            _ => Phase::Resources,
        }
    }

    /// The phase of an object as written (its `apiVersion` and `kind`).
    pub fn of_object(obj: &serde_json::Value) -> Phase {
        let api_version = obj["apiVersion"].as_str().unwrap_or("");
        let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
        Phase::of(group, obj["kind"].as_str().unwrap_or(""))
    }

    /// Its index in [`Phase::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// `refs` grouped for prune: the phases in reverse, each sorted by (namespace, name).
pub fn prune_order(refs: Vec<ObjRef>) -> Vec<Vec<ObjRef>> {
    let mut stages: Vec<Vec<ObjRef>> = vec![Vec::new(); Phase::ALL.len()];
    for r in refs {
        stages[Phase::of(&r.group, &r.kind).index()].push(r);
    }
    for s in &mut stages {
        s.sort_by(|a, b| (&a.namespace, &a.name, &a.kind).cmp(&(&b.namespace, &b.name, &b.kind)));
    }
    stages.reverse();
    stages.retain(|s| !s.is_empty());
    stages
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn phases_table() {
        let cases = [
            (
                "namespace",
                json!({"apiVersion": "v1", "kind": "Namespace"}),
                Phase::Namespaces,
            ),
            (
                "crd",
                json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}),
                Phase::Definitions,
            ),
            (
                "deployment",
                json!({"apiVersion": "apps/v1", "kind": "Deployment"}),
                Phase::Resources,
            ),
            (
                "a custom kind named Namespace",
                json!({"apiVersion": "example.com/v1", "kind": "Namespace"}),
                Phase::Resources,
            ),
            (
                "webhook",
                json!({"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration"}),
                Phase::Webhooks,
            ),
        ];
        for (name, obj, want) in cases {
            assert_eq!(Phase::of_object(&obj), want, "case {name}");
        }
    }

    #[test]
    fn prune_goes_in_reverse_and_sorted() {
        let r = |group: &str, kind: &str, ns: Option<&str>, name: &str| ObjRef {
            group: group.into(),
            version: "v1".into(),
            kind: kind.into(),
            namespace: ns.map(str::to_string),
            name: name.into(),
        };
        let stages = prune_order(vec![
            r("", "Namespace", None, "shop"),
            r("", "ConfigMap", Some("shop"), "b"),
            r(
                "apiextensions.k8s.io",
                "CustomResourceDefinition",
                None,
                "widgets.example.com",
            ),
            r("", "ConfigMap", Some("shop"), "a"),
        ]);
        let names: Vec<Vec<&str>> = stages
            .iter()
            .map(|s| s.iter().map(|r| r.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            [vec!["a", "b"], vec!["widgets.example.com"], vec!["shop"]]
        );
    }
}
