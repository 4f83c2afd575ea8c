//! RBAC: the Roles, ClusterRoles, RoleBindings and ClusterRoleBindings in the store decide what
//! a user may do, with kube-apiserver's rule matching (`*`, `*/subresource`, `resourceNames`,
//! non-resource URL prefixes), its allow reasons (`RBAC: allowed by ClusterRoleBinding "x" of
//! ClusterRole "y" to User "z"`) and resolution errors (a binding to a missing role), the
//! rules of a user for SelfSubjectRulesReview, and the escalation check that keeps a user from
//! granting (or binding) permissions they do not hold.
//!
//! ClusterRole aggregation is resolved when rules are read: a ClusterRole with an
//! `aggregationRule` has its own rules and those of every ClusterRole its selectors match (no
//! controller rewrites the stored `rules`; the bootstrap roles are stored with theirs).

use super::{Attributes, UserInfo};
use crate::resources::GroupResource;
use crate::selector::LabelSelector;
use crate::store::Store;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

/// The RBAC API group.
pub const GROUP: &str = "rbac.authorization.k8s.io";

/// One rule of a Role or ClusterRole.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Rule {
    /// Verbs (`*` for all).
    pub verbs: Vec<String>,
    /// API groups (`*` for all).
    pub api_groups: Vec<String>,
    /// Resources, `resource/subresource`, `*/subresource`, or `*`.
    pub resources: Vec<String>,
    /// Object names (empty: any).
    pub resource_names: Vec<String>,
    /// Non-resource URLs (a trailing `*` is a prefix).
    pub non_resource_urls: Vec<String>,
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

impl Rule {
    /// A rule from its JSON.
    pub fn from_json(v: &Value) -> Self {
        Self {
            verbs: strings(&v["verbs"]),
            api_groups: strings(&v["apiGroups"]),
            resources: strings(&v["resources"]),
            resource_names: strings(&v["resourceNames"]),
            non_resource_urls: strings(&v["nonResourceURLs"]),
        }
    }

    /// The rule as JSON (Go's field order).
    pub fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("verbs".into(), json!(self.verbs));
        if !self.api_groups.is_empty() {
            m.insert("apiGroups".into(), json!(self.api_groups));
        }
        if !self.resources.is_empty() {
            m.insert("resources".into(), json!(self.resources));
        }
        if !self.resource_names.is_empty() {
            m.insert("resourceNames".into(), json!(self.resource_names));
        }
        if !self.non_resource_urls.is_empty() {
            m.insert("nonResourceURLs".into(), json!(self.non_resource_urls));
        }
        Value::Object(m)
    }

    /// `rbacv1helpers.CompactString`: `{APIGroups:[""], Resources:["pods"], Verbs:["get"]}`.
    pub fn compact_string(&self) -> String {
        let q = |v: &[String]| {
            format!(
                "[{}]",
                v.iter()
                    .map(|s| crate::typed::go_quote(s))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        };
        let mut parts = Vec::new();
        if !self.api_groups.is_empty() {
            parts.push(format!("APIGroups:{}", q(&self.api_groups)));
        }
        if !self.resources.is_empty() {
            parts.push(format!("Resources:{}", q(&self.resources)));
        }
        if !self.non_resource_urls.is_empty() {
            parts.push(format!("NonResourceURLs:{}", q(&self.non_resource_urls)));
        }
        if !self.resource_names.is_empty() {
            parts.push(format!("ResourceNames:{}", q(&self.resource_names)));
        }
        if !self.verbs.is_empty() {
            parts.push(format!("Verbs:{}", q(&self.verbs)));
        }
        format!("{{{}}}", parts.join(", "))
    }

    /// Whether the rule allows a request (`RuleAllows`).
    pub fn allows(&self, a: &Attributes) -> bool {
        if !has(&self.verbs, &a.verb) {
            return false;
        }
        if !a.resource_request {
            return self
                .non_resource_urls
                .iter()
                .any(|u| u == "*" || u == &a.path || prefix_match(u, &a.path));
        }
        let combined = if a.subresource.is_empty() {
            a.resource.clone()
        } else {
            format!("{}/{}", a.resource, a.subresource)
        };
        has(&self.api_groups, &a.group)
            && resource_matches(&self.resources, &combined, &a.subresource)
            && (self.resource_names.is_empty() || self.resource_names.contains(&a.name))
    }
}

fn has(set: &[String], item: &str) -> bool {
    set.iter().any(|s| s == "*" || s == item)
}

fn prefix_match(rule_url: &str, path: &str) -> bool {
    rule_url
        .strip_suffix('*')
        .is_some_and(|p| path.starts_with(p.trim_end_matches('*')))
}

fn resource_matches(rule: &[String], combined: &str, sub: &str) -> bool {
    rule.iter().any(|r| {
        r == "*"
            || r == combined
            || (!sub.is_empty()
                && r.len() == sub.len() + 2
                && r.starts_with("*/")
                && r.ends_with(sub))
    })
}

/// A binding's subject.
#[derive(Debug, Clone)]
struct Subject {
    kind: String,
    name: String,
    namespace: String,
}

impl Subject {
    fn applies_to(&self, user: &UserInfo, binding_namespace: &str) -> bool {
        match self.kind.as_str() {
            "User" => user.name == self.name,
            "Group" => user.groups.contains(&self.name),
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                !ns.is_empty() && user.name == UserInfo::service_account_name(ns, &self.name)
            }
            _ => false,
        }
    }

    fn describe(&self, binding_namespace: &str) -> String {
        match self.kind.as_str() {
            "ServiceAccount" => {
                let ns = if self.namespace.is_empty() {
                    binding_namespace
                } else {
                    &self.namespace
                };
                format!("{} {:?}", self.kind, format!("{}/{ns}", self.name))
            }
            _ => format!("{} {:?}", self.kind, self.name),
        }
    }
}

#[derive(Debug, Clone)]
struct Binding {
    name: String,
    namespace: String,
    role_kind: String,
    role_name: String,
    subjects: Vec<Subject>,
}

impl Binding {
    fn from_json(v: &Value) -> Self {
        Self {
            name: v["metadata"]["name"].as_str().unwrap_or_default().into(),
            namespace: v["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .into(),
            role_kind: v["roleRef"]["kind"].as_str().unwrap_or_default().into(),
            role_name: v["roleRef"]["name"].as_str().unwrap_or_default().into(),
            subjects: v["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| Subject {
                    kind: s["kind"].as_str().unwrap_or_default().into(),
                    name: s["name"].as_str().unwrap_or_default().into(),
                    namespace: s["namespace"].as_str().unwrap_or_default().into(),
                })
                .collect(),
        }
    }

    fn describe(&self, subject: &Subject) -> String {
        if self.namespace.is_empty() {
            format!(
                "ClusterRoleBinding {:?} of {} {:?} to {}",
                self.name,
                self.role_kind,
                self.role_name,
                subject.describe("")
            )
        } else {
            format!(
                "RoleBinding {:?} of {} {:?} to {}",
                format!("{}/{}", self.name, self.namespace),
                self.role_kind,
                self.role_name,
                subject.describe(&self.namespace)
            )
        }
    }
}

#[derive(Debug, Clone)]
struct ClusterRole {
    rules: Vec<Rule>,
    labels: BTreeMap<String, String>,
    aggregation: Vec<LabelSelector>,
}

/// The RBAC objects of the store, read for one decision.
pub struct Policy {
    cluster_roles: BTreeMap<String, ClusterRole>,
    roles: BTreeMap<(String, String), Vec<Rule>>,
    cluster_role_bindings: Vec<Binding>,
    role_bindings: Vec<Binding>,
}

fn gr(resource: &str) -> GroupResource {
    GroupResource {
        group: GROUP.into(),
        resource: resource.into(),
    }
}

fn rules_of(v: &Value) -> Vec<Rule> {
    v["rules"]
        .as_array()
        .into_iter()
        .flatten()
        .map(Rule::from_json)
        .collect()
}

impl Policy {
    /// Reads the RBAC objects (`namespace`: the RoleBindings and Roles of that namespace only;
    /// `None`: none of them).
    pub fn read(store: &Store, namespace: Option<&str>) -> Self {
        let mut cluster_roles = BTreeMap::new();
        for (k, e) in store.list(&gr("clusterroles"), None, None).1 {
            let v = e.value();
            let labels = v["metadata"]["labels"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            let aggregation = v["aggregationRule"]["clusterRoleSelectors"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| LabelSelector::from_object(s).ok())
                .collect();
            cluster_roles.insert(
                k.name,
                ClusterRole {
                    rules: rules_of(&v),
                    labels,
                    aggregation,
                },
            );
        }
        let cluster_role_bindings = store
            .list(&gr("clusterrolebindings"), None, None)
            .1
            .into_iter()
            .map(|(_, e)| Binding::from_json(&e.value()))
            .collect();
        let (mut roles, mut role_bindings) = (BTreeMap::new(), Vec::new());
        if let Some(ns) = namespace.filter(|n| !n.is_empty()) {
            for (k, e) in store.list(&gr("roles"), Some(ns), None).1 {
                roles.insert((k.namespace, k.name), rules_of(&e.value()));
            }
            role_bindings = store
                .list(&gr("rolebindings"), Some(ns), None)
                .1
                .into_iter()
                .map(|(_, e)| Binding::from_json(&e.value()))
                .collect();
        }
        Self {
            cluster_roles,
            roles,
            cluster_role_bindings,
            role_bindings,
        }
    }

    /// The rules of a ClusterRole, aggregated ones included.
    fn cluster_role_rules(&self, name: &str) -> Result<Vec<Rule>, String> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        self.collect_cluster_role(name, &mut seen, &mut out)?;
        Ok(out)
    }

    fn collect_cluster_role(
        &self,
        name: &str,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<Rule>,
    ) -> Result<(), String> {
        if !seen.insert(name.to_string()) {
            return Ok(());
        }
        let role = self
            .cluster_roles
            .get(name)
            .ok_or_else(|| format!("clusterrole.{GROUP} {name:?} not found"))?;
        for r in &role.rules {
            if !out.contains(r) {
                out.push(r.clone());
            }
        }
        if role.aggregation.is_empty() {
            return Ok(());
        }
        for (other, cr) in &self.cluster_roles {
            if other != name && role.aggregation.iter().any(|s| s.matches(&cr.labels)) {
                self.collect_cluster_role(other, seen, out)?;
            }
        }
        Ok(())
    }

    fn binding_rules(&self, b: &Binding) -> Result<Vec<Rule>, String> {
        match b.role_kind.as_str() {
            "ClusterRole" => self.cluster_role_rules(&b.role_name),
            "Role" => self
                .roles
                .get(&(b.namespace.clone(), b.role_name.clone()))
                .cloned()
                .ok_or_else(|| format!("role.{GROUP} {:?} not found", b.role_name)),
            other => Err(format!("unknown role reference kind: {other:?}")),
        }
    }

    /// Walks the bindings that apply to `user` in `namespace` (cluster-wide ones first), giving
    /// `visit` each rule with the binding that grants it; `visit` returns `false` to stop.
    fn visit(
        &self,
        user: &UserInfo,
        namespace: &str,
        errors: &mut Vec<String>,
        mut visit: impl FnMut(&str, &Rule) -> bool,
    ) {
        let bindings = self.cluster_role_bindings.iter().chain(
            self.role_bindings
                .iter()
                .filter(|b| !namespace.is_empty() && b.namespace == namespace),
        );
        for b in bindings {
            let Some(subject) = b.subjects.iter().find(|s| s.applies_to(user, &b.namespace)) else {
                continue;
            };
            match self.binding_rules(b) {
                Ok(rules) => {
                    let source = b.describe(subject);
                    for r in &rules {
                        if !visit(&source, r) {
                            return;
                        }
                    }
                }
                Err(e) => errors.push(e),
            }
        }
    }

    /// Authorizes `attrs` for `user`: `Ok(reason)` when allowed, `Err(reason)` when not (the
    /// reason then lists resolution errors, as `RBAC: ...`, or is empty).
    pub fn authorize(&self, user: &UserInfo, attrs: &Attributes) -> Result<String, String> {
        if user.is_privileged() {
            return Ok(String::new());
        }
        let mut errors = Vec::new();
        let mut allowed = None;
        self.visit(user, &attrs.namespace, &mut errors, |source, rule| {
            if rule.allows(attrs) {
                allowed = Some(format!("RBAC: allowed by {source}"));
                false
            } else {
                true
            }
        });
        match allowed {
            Some(reason) => Ok(reason),
            None if errors.is_empty() => Err(String::new()),
            None if errors.len() == 1 => Err(format!("RBAC: {}", errors[0])),
            None => Err(format!("RBAC: [{}]", errors.join(", "))),
        }
    }

    /// Every rule that applies to `user` in `namespace` (cluster-wide and that namespace's),
    /// and the errors met resolving them.
    pub fn rules_for(&self, user: &UserInfo, namespace: &str) -> (Vec<Rule>, Vec<String>) {
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        if user.is_privileged() {
            rules.push(Rule {
                verbs: vec!["*".into()],
                api_groups: vec!["*".into()],
                resources: vec!["*".into()],
                ..Rule::default()
            });
            rules.push(Rule {
                verbs: vec!["*".into()],
                non_resource_urls: vec!["*".into()],
                ..Rule::default()
            });
        }
        self.visit(user, namespace, &mut errors, |_, rule| {
            rules.push(rule.clone());
            true
        });
        (rules, errors)
    }

    /// The rules a role reference grants (for a binding's escalation check).
    pub fn role_ref_rules(
        &self,
        kind: &str,
        name: &str,
        namespace: &str,
    ) -> Result<Vec<Rule>, String> {
        let b = Binding {
            name: String::new(),
            namespace: namespace.to_string(),
            role_kind: kind.to_string(),
            role_name: name.to_string(),
            subjects: Vec::new(),
        };
        match kind {
            "ClusterRole" => self
                .cluster_role_rules(name)
                .map_err(|_| format!("clusterroles.{GROUP} {name:?} not found")),
            _ => self
                .binding_rules(&b)
                .map_err(|_| format!("roles.{GROUP} {name:?} not found")),
        }
    }
}

/// Splits rules into one verb, group, resource (and name) each (`BreakdownRule`).
fn breakdown(rule: &Rule) -> Vec<Rule> {
    let mut out = Vec::new();
    for g in &rule.api_groups {
        for r in &rule.resources {
            for v in &rule.verbs {
                if rule.resource_names.is_empty() {
                    out.push(Rule {
                        verbs: vec![v.clone()],
                        api_groups: vec![g.clone()],
                        resources: vec![r.clone()],
                        ..Rule::default()
                    });
                } else {
                    for n in &rule.resource_names {
                        out.push(Rule {
                            verbs: vec![v.clone()],
                            api_groups: vec![g.clone()],
                            resources: vec![r.clone()],
                            resource_names: vec![n.clone()],
                            ..Rule::default()
                        });
                    }
                }
            }
        }
    }
    for u in &rule.non_resource_urls {
        for v in &rule.verbs {
            out.push(Rule {
                verbs: vec![v.clone()],
                non_resource_urls: vec![u.clone()],
                ..Rule::default()
            });
        }
    }
    out
}

fn has_all(set: &[String], items: &[String]) -> bool {
    items.iter().all(|i| set.contains(i))
}

fn resource_covers_all(set: &[String], covers: &[String]) -> bool {
    if set.iter().any(|s| s == "*") || has_all(set, covers) {
        return true;
    }
    covers.iter().all(|path| {
        set.contains(path)
            || path
                .split_once('/')
                .is_some_and(|(_, sub)| set.contains(&format!("*/{sub}")))
    })
}

fn rule_covers(owner: &Rule, sub: &Rule) -> bool {
    let verbs = owner.verbs.iter().any(|v| v == "*") || has_all(&owner.verbs, &sub.verbs);
    let groups =
        owner.api_groups.iter().any(|g| g == "*") || has_all(&owner.api_groups, &sub.api_groups);
    let resources = resource_covers_all(&owner.resources, &sub.resources);
    let urls = sub.non_resource_urls.iter().all(|p| {
        owner
            .non_resource_urls
            .iter()
            .any(|o| o == p || prefix_match(o, p))
    });
    let names = if sub.resource_names.is_empty() {
        owner.resource_names.is_empty()
    } else {
        owner.resource_names.is_empty() || has_all(&owner.resource_names, &sub.resource_names)
    };
    verbs && groups && resources && urls && names
}

/// The parts of `requested` that `owner` does not cover (`Covers`), compacted as kube-apiserver
/// reports them.
pub fn missing(owner: &[Rule], requested: &[Rule]) -> Vec<Rule> {
    let uncovered: Vec<Rule> = requested
        .iter()
        .flat_map(breakdown)
        .filter(|sub| !owner.iter().any(|o| rule_covers(o, sub)))
        .collect();
    // CompactRules: simple rules of one group, resource and name gather their verbs.
    let mut out: Vec<Rule> = Vec::new();
    for r in uncovered {
        let simple = r.api_groups.len() == 1
            && r.resources.len() == 1
            && r.resource_names.len() <= 1
            && r.non_resource_urls.is_empty();
        if simple
            && let Some(existing) = out.iter_mut().find(|e| {
                e.api_groups == r.api_groups
                    && e.resources == r.resources
                    && e.resource_names == r.resource_names
                    && e.non_resource_urls.is_empty()
            })
        {
            existing.verbs.extend(r.verbs);
            continue;
        }
        out.push(r);
    }
    out
}

/// The text of kube-apiserver's escalation refusal.
pub fn escalation_message(user: &UserInfo, missing: &[Rule], errors: &[String]) -> String {
    let mut lines: Vec<String> = missing.iter().map(Rule::compact_string).collect();
    lines.sort();
    lines.dedup();
    let groups = format!(
        "[{}]",
        user.groups
            .iter()
            .map(|g| crate::typed::go_quote(g))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut msg = format!(
        "user {:?} (groups={groups}) is attempting to grant RBAC permissions not currently held:\n{}",
        user.name,
        lines.join("\n")
    );
    if !errors.is_empty() {
        msg.push_str(&format!("; resolution errors: [{}]", errors.join(", ")));
    }
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(verbs: &[&str], groups: &[&str], resources: &[&str]) -> Rule {
        Rule {
            verbs: verbs.iter().map(|s| s.to_string()).collect(),
            api_groups: groups.iter().map(|s| s.to_string()).collect(),
            resources: resources.iter().map(|s| s.to_string()).collect(),
            ..Rule::default()
        }
    }

    fn req(verb: &str, group: &str, resource: &str, sub: &str, name: &str) -> Attributes {
        Attributes {
            verb: verb.into(),
            resource_request: true,
            group: group.into(),
            resource: resource.into(),
            subresource: sub.into(),
            name: name.into(),
            namespace: "ns".into(),
            path: String::new(),
        }
    }

    #[test]
    fn rule_matching_table() {
        let cases = [
            (
                "exact",
                rule(&["get"], &[""], &["pods"]),
                req("get", "", "pods", "", "p"),
                true,
            ),
            (
                "other verb",
                rule(&["get"], &[""], &["pods"]),
                req("list", "", "pods", "", ""),
                false,
            ),
            (
                "other group",
                rule(&["get"], &["apps"], &["pods"]),
                req("get", "", "pods", "", "p"),
                false,
            ),
            (
                "star verbs",
                rule(&["*"], &[""], &["pods"]),
                req("delete", "", "pods", "", "p"),
                true,
            ),
            (
                "star resources cover subresources",
                rule(&["get"], &["apps"], &["*"]),
                req("get", "apps", "deployments", "scale", "d"),
                true,
            ),
            (
                "resource does not cover its subresource",
                rule(&["get"], &["apps"], &["deployments"]),
                req("get", "apps", "deployments", "scale", "d"),
                false,
            ),
            (
                "resource/subresource",
                rule(&["update"], &["apps"], &["deployments/scale"]),
                req("update", "apps", "deployments", "scale", "d"),
                true,
            ),
            (
                "*/subresource",
                rule(&["update"], &[""], &["*/status"]),
                req("update", "", "pods", "status", "p"),
                true,
            ),
            (
                "*/subresource is not the resource",
                rule(&["update"], &[""], &["*/status"]),
                req("update", "", "pods", "", "p"),
                false,
            ),
        ];
        for (name, r, a, want) in cases {
            assert_eq!(r.allows(&a), want, "{name}");
        }
        let mut named = rule(&["get"], &[""], &["configmaps"]);
        named.resource_names = vec!["app".into()];
        assert!(named.allows(&req("get", "", "configmaps", "", "app")));
        assert!(!named.allows(&req("get", "", "configmaps", "", "other")));
        assert!(
            !named.allows(&req("list", "", "configmaps", "", "")),
            "list has no name"
        );
        let urls = Rule {
            verbs: vec!["get".into()],
            non_resource_urls: vec!["/apis/*".into(), "/version".into()],
            ..Rule::default()
        };
        let path = |p: &str| Attributes {
            verb: "get".into(),
            path: p.into(),
            ..Attributes::default()
        };
        assert!(urls.allows(&path("/apis/apps/v1")));
        assert!(urls.allows(&path("/version")));
        assert!(!urls.allows(&path("/api")));
    }

    #[test]
    fn missing_rules_are_compacted_and_described_like_kube_apiserver() {
        let owner = vec![rule(&["get", "list", "watch"], &[""], &["pods"])];
        let requested = vec![
            rule(&["get", "delete", "create"], &[""], &["pods"]),
            rule(&["get"], &["apps"], &["deployments"]),
        ];
        let m = missing(&owner, &requested);
        let lines: Vec<String> = m.iter().map(Rule::compact_string).collect();
        assert_eq!(
            lines,
            [
                r#"{APIGroups:[""], Resources:["pods"], Verbs:["delete" "create"]}"#,
                r#"{APIGroups:["apps"], Resources:["deployments"], Verbs:["get"]}"#
            ]
        );
        let user = UserInfo {
            name: "system:serviceaccount:ns:robot".into(),
            groups: vec![
                "system:serviceaccounts".into(),
                "system:authenticated".into(),
            ],
            ..UserInfo::default()
        };
        assert_eq!(
            escalation_message(&user, &m[..1], &[]),
            "user \"system:serviceaccount:ns:robot\" (groups=[\"system:serviceaccounts\" \"system:authenticated\"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"\"], Resources:[\"pods\"], Verbs:[\"delete\" \"create\"]}"
        );
        assert!(missing(&[rule(&["*"], &["*"], &["*"])], &requested).is_empty());
        assert!(
            missing(
                &[rule(&["get"], &["apps"], &["*/scale"])],
                &[rule(&["get"], &["apps"], &["deployments/scale"])]
            )
            .is_empty()
        );
    }
}
