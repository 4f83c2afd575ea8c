//! The default RBAC policy kube-apiserver creates at start (its bootstrap policy), as far as
//! the dev cluster needs it: `cluster-admin` (bound to `system:masters`), the user-facing
//! `admin`, `edit` and `view` with the `system:aggregate-to-*` roles they aggregate,
//! `system:discovery` and `system:basic-user` (bound to `system:authenticated`),
//! `system:public-info-viewer` (also bound to `system:unauthenticated`), `system:auth-delegator`
//! and `system:monitoring`. Objects are created when missing and left alone otherwise.

use super::rbac::Rule;
use crate::resources::GroupResource;
use crate::store::{Change, ObjKey, Store};
use serde_json::{Value, json};

const RW: &[&str] = &["create", "delete", "deletecollection", "patch", "update"];
const READ: &[&str] = &["get", "list", "watch"];
const ALL: &[&str] = &[
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

fn r(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Rule {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    Rule {
        verbs: v(verbs),
        api_groups: v(groups),
        resources: v(resources),
        ..Rule::default()
    }
}

fn urls(verbs: &[&str], paths: &[&str]) -> Rule {
    let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
    Rule {
        verbs: v(verbs),
        non_resource_urls: v(paths),
        ..Rule::default()
    }
}

fn aggregate_to_view() -> Vec<Rule> {
    vec![
        r(
            READ,
            &[""],
            &[
                "configmaps",
                "endpoints",
                "persistentvolumeclaims",
                "persistentvolumeclaims/status",
                "pods",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "serviceaccounts",
                "services",
                "services/status",
            ],
        ),
        r(
            READ,
            &[""],
            &[
                "bindings",
                "events",
                "limitranges",
                "namespaces/status",
                "pods/log",
                "pods/status",
                "replicationcontrollers/status",
                "resourcequotas",
                "resourcequotas/status",
            ],
        ),
        r(READ, &[""], &["namespaces"]),
        r(READ, &["discovery.k8s.io"], &["endpointslices"]),
        r(
            READ,
            &["apps"],
            &[
                "controllerrevisions",
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "statefulsets",
                "statefulsets/scale",
                "statefulsets/status",
            ],
        ),
        r(
            READ,
            &["autoscaling"],
            &[
                "horizontalpodautoscalers",
                "horizontalpodautoscalers/status",
            ],
        ),
        r(
            READ,
            &["batch"],
            &["cronjobs", "cronjobs/status", "jobs", "jobs/status"],
        ),
        r(
            READ,
            &["extensions"],
            &[
                "daemonsets",
                "daemonsets/status",
                "deployments",
                "deployments/scale",
                "deployments/status",
                "ingresses",
                "ingresses/status",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicasets/status",
                "replicationcontrollers/scale",
            ],
        ),
        r(
            READ,
            &["policy"],
            &["poddisruptionbudgets", "poddisruptionbudgets/status"],
        ),
        r(
            READ,
            &["networking.k8s.io"],
            &["ingresses", "ingresses/status", "networkpolicies"],
        ),
    ]
}

fn aggregate_to_edit() -> Vec<Rule> {
    vec![
        r(
            READ,
            &[""],
            &[
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
                "secrets",
                "services/proxy",
            ],
        ),
        r(&["impersonate"], &[""], &["serviceaccounts"]),
        r(
            RW,
            &[""],
            &[
                "pods",
                "pods/attach",
                "pods/exec",
                "pods/portforward",
                "pods/proxy",
            ],
        ),
        r(&["create"], &[""], &["pods/eviction"]),
        r(
            RW,
            &[""],
            &[
                "configmaps",
                "events",
                "persistentvolumeclaims",
                "replicationcontrollers",
                "replicationcontrollers/scale",
                "secrets",
                "serviceaccounts",
                "services",
                "services/proxy",
            ],
        ),
        r(&["create"], &[""], &["serviceaccounts/token"]),
        r(
            RW,
            &["apps"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "replicasets",
                "replicasets/scale",
                "statefulsets",
                "statefulsets/scale",
            ],
        ),
        r(RW, &["autoscaling"], &["horizontalpodautoscalers"]),
        r(RW, &["batch"], &["cronjobs", "jobs"]),
        r(
            RW,
            &["extensions"],
            &[
                "daemonsets",
                "deployments",
                "deployments/rollback",
                "deployments/scale",
                "ingresses",
                "networkpolicies",
                "replicasets",
                "replicasets/scale",
                "replicationcontrollers/scale",
            ],
        ),
        r(RW, &["policy"], &["poddisruptionbudgets"]),
        r(
            RW,
            &["networking.k8s.io"],
            &["ingresses", "networkpolicies"],
        ),
        r(ALL, &["coordination.k8s.io"], &["leases"]),
    ]
}

fn aggregate_to_admin() -> Vec<Rule> {
    vec![
        r(
            &["create"],
            &["authorization.k8s.io"],
            &["localsubjectaccessreviews"],
        ),
        r(
            ALL,
            &["rbac.authorization.k8s.io"],
            &["rolebindings", "roles"],
        ),
    ]
}

/// Rules of several roles, in order, without repeats (what the aggregation controller writes).
fn union(parts: &[Vec<Rule>]) -> Vec<Rule> {
    let mut out: Vec<Rule> = Vec::new();
    for r in parts.iter().flatten() {
        if !out.contains(r) {
            out.push(r.clone());
        }
    }
    out
}

fn meta(name: &str, extra_labels: &[(&str, &str)]) -> Value {
    let mut labels = json!({"kubernetes.io/bootstrapping": "rbac-defaults"});
    for (k, v) in extra_labels {
        labels[*k] = json!(v);
    }
    json!({
        "name": name,
        "labels": labels,
        "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
    })
}

fn cluster_role(
    name: &str,
    labels: &[(&str, &str)],
    rules: &[Rule],
    aggregate: Option<&str>,
) -> Value {
    let mut v = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": meta(name, labels),
        "rules": rules.iter().map(Rule::to_json).collect::<Vec<_>>(),
    });
    if let Some(label) = aggregate {
        v["aggregationRule"] = json!({"clusterRoleSelectors": [{"matchLabels": {label: "true"}}]});
    }
    v
}

fn binding(name: &str, role: &str, groups: &[&str]) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": meta(name, &[]),
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": groups.iter().map(|g| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g})).collect::<Vec<_>>(),
    })
}

/// The default ClusterRoles and ClusterRoleBindings.
pub fn policy() -> Vec<Value> {
    let view = aggregate_to_view();
    let edit = union(&[aggregate_to_edit(), view.clone()]);
    let admin = union(&[edit.clone(), aggregate_to_admin()]);
    const TO_ADMIN: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-admin", "true");
    const TO_EDIT: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-edit", "true");
    const TO_VIEW: (&str, &str) = ("rbac.authorization.k8s.io/aggregate-to-view", "true");
    let discovery = &[
        "/api",
        "/api/*",
        "/apis",
        "/apis/*",
        "/healthz",
        "/livez",
        "/openapi",
        "/openapi/*",
        "/readyz",
        "/version",
        "/version/",
    ];
    vec![
        cluster_role(
            "cluster-admin",
            &[],
            &[r(&["*"], &["*"], &["*"]), urls(&["*"], &["*"])],
            None,
        ),
        cluster_role("admin", &[], &admin, Some(TO_ADMIN.0)),
        cluster_role("edit", &[TO_ADMIN], &edit, Some(TO_EDIT.0)),
        cluster_role("view", &[TO_EDIT], &view, Some(TO_VIEW.0)),
        cluster_role(
            "system:aggregate-to-admin",
            &[TO_ADMIN],
            &aggregate_to_admin(),
            None,
        ),
        cluster_role(
            "system:aggregate-to-edit",
            &[TO_EDIT],
            &aggregate_to_edit(),
            None,
        ),
        cluster_role(
            "system:aggregate-to-view",
            &[TO_VIEW],
            &aggregate_to_view(),
            None,
        ),
        cluster_role("system:discovery", &[], &[urls(&["get"], discovery)], None),
        cluster_role(
            "system:basic-user",
            &[],
            &[
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["selfsubjectaccessreviews", "selfsubjectrulesreviews"],
                ),
                r(
                    &["create"],
                    &["authentication.k8s.io"],
                    &["selfsubjectreviews"],
                ),
            ],
            None,
        ),
        cluster_role(
            "system:public-info-viewer",
            &[],
            &[urls(
                &["get"],
                &["/healthz", "/livez", "/readyz", "/version", "/version/"],
            )],
            None,
        ),
        cluster_role(
            "system:auth-delegator",
            &[],
            &[
                r(&["create"], &["authentication.k8s.io"], &["tokenreviews"]),
                r(
                    &["create"],
                    &["authorization.k8s.io"],
                    &["subjectaccessreviews"],
                ),
            ],
            None,
        ),
        cluster_role(
            "system:monitoring",
            &[],
            &[urls(
                &["get"],
                &[
                    "/healthz",
                    "/healthz/*",
                    "/livez",
                    "/livez/*",
                    "/metrics",
                    "/metrics/slis",
                    "/readyz",
                    "/readyz/*",
                ],
            )],
            None,
        ),
        binding("cluster-admin", "cluster-admin", &[super::MASTERS]),
        binding(
            "system:discovery",
            "system:discovery",
            &[super::AUTHENTICATED],
        ),
        binding(
            "system:basic-user",
            "system:basic-user",
            &[super::AUTHENTICATED],
        ),
        binding(
            "system:public-info-viewer",
            "system:public-info-viewer",
            &[super::AUTHENTICATED, super::UNAUTHENTICATED],
        ),
        binding(
            "system:monitoring",
            "system:monitoring",
            &["system:monitoring"],
        ),
    ]
}

/// Creates the default policy objects that are missing.
pub fn create(store: &Store) {
    for obj in policy() {
        let resource = match obj["kind"].as_str() {
            Some("ClusterRole") => "clusterroles",
            _ => "clusterrolebindings",
        };
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let key = ObjKey {
            gr: GroupResource {
                group: super::rbac::GROUP.into(),
                resource: resource.into(),
            },
            namespace: String::new(),
            name: name.clone(),
        };
        let res = store.write(&key, false, |cur, _| {
            if cur.is_some() {
                return Ok(Change::Unchanged);
            }
            let mut v = obj.clone();
            v["metadata"]["uid"] = json!(uuid::Uuid::new_v4().to_string());
            v["metadata"]["creationTimestamp"] = json!(crate::time::now_rfc3339());
            Ok(Change::Put(v))
        });
        if let Err(e) = res {
            tracing::error!(name, error = %e, "could not create a default RBAC object");
        }
    }
}
