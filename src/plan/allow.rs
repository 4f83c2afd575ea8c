//! Tenant lock-down (as Flux's multi-tenancy lock-down and Argo CD's AppProjects): what a
//! repository may apply (`allow: {namespaces, clusterScoped, kinds}`) and where rollgit
//! watches (`watchNamespaces`). Pure: an object outside the rules is one `path:line` line
//! naming the object and the rule, and any line rejects the app's commit whole.

use crate::config::{Allow, WatchScope};
use rollgit_render::RenderedObject;

/// Where an object lives, once its scope is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement<'a> {
    /// In this namespace.
    Namespace(&'a str),
    /// Cluster-scoped.
    Cluster,
}

/// The lines of the objects `allow` and `watch` refuse for repository `repo` (empty: all
/// allowed). `placement` says where each object lands (its namespace, defaulted by the
/// render or by discovery, or cluster-scoped).
pub fn check<'a>(
    repo: &str,
    objects: &'a [RenderedObject],
    allow: &Allow,
    watch: &WatchScope,
    placement: impl Fn(&'a RenderedObject) -> Placement<'a>,
) -> Vec<String> {
    let mut out = Vec::new();
    for o in objects {
        let key = &o.key;
        let qualified = if key.group.is_empty() {
            key.kind.clone()
        } else {
            format!("{}/{}", key.group, key.kind)
        };
        let refuse = |rule: String| format!("{}: {key}: {rule}", o.source);
        if let Some(kinds) = &allow.kinds
            && !kinds
                .iter()
                .any(|g| g.is_match(&key.kind) || g.is_match(&qualified))
        {
            out.push(refuse(format!(
                "kind {qualified} is not allowed for repository {repo:?} (allow.kinds: {})",
                list(kinds.iter().map(|g| g.as_str()))
            )));
            continue;
        }
        match placement(o) {
            Placement::Cluster => {
                if let Some(kinds) = &allow.cluster_scoped
                    && !kinds.iter().any(|k| *k == key.kind || *k == qualified)
                {
                    let rule = if kinds.is_empty() {
                        "allow.clusterScoped: false".to_string()
                    } else {
                        format!(
                            "allow.clusterScoped: {}",
                            list(kinds.iter().map(String::as_str))
                        )
                    };
                    out.push(refuse(format!(
                        "cluster-scoped {qualified} is not allowed for repository {repo:?} ({rule})"
                    )));
                }
            }
            Placement::Namespace(ns) => {
                if let Some(globs) = &allow.namespaces
                    && !globs.iter().any(|g| g.is_match(ns))
                {
                    out.push(refuse(format!(
                        "namespace {ns:?} is not allowed for repository {repo:?} (allow.namespaces: {})",
                        list(globs.iter().map(|g| g.as_str()))
                    )));
                } else if !watch.contains(ns) {
                    out.push(refuse(format!(
                        "namespace {ns:?} is not watched by rollgit (watchNamespaces: {})",
                        list(
                            watch
                                .namespaces()
                                .unwrap_or_default()
                                .iter()
                                .map(String::as_str)
                        )
                    )));
                }
            }
        }
    }
    out
}

/// The lines of the topology policies whose `namespace` override sends an app's objects to a
/// namespace `allow` refuses (a workflow delivers there as the repository would apply). The
/// objects' own namespaces are checked by [`check`].
pub fn check_policies(
    repo: &str,
    rendered: &rollgit_render::Rendered,
    allow: &Allow,
) -> Vec<String> {
    let Some(globs) = &allow.namespaces else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for d in rendered
        .applications
        .iter()
        .filter_map(|a| a.delivery.as_ref())
    {
        for p in d.policies.values() {
            if let Some(ns) = &p.namespace
                && !globs.iter().any(|g| g.is_match(ns))
            {
                out.push(format!(
                    "{}: policy {:?}: namespace {ns:?} is not allowed for repository {repo:?} (allow.namespaces: {})",
                    p.source,
                    p.name,
                    list(globs.iter().map(|g| g.as_str()))
                ));
            }
        }
    }
    out
}

fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
    let v: Vec<&str> = items.collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RawAllow;

    fn objects(yaml: &str) -> Vec<RenderedObject> {
        let files = [rollgit_render::SourceFile {
            path: "apps/web/all.yaml".into(),
            content: yaml.as_bytes().to_vec(),
        }];
        let prev = rollgit_render::RevisionState::default();
        rollgit_render::render_app("web", "team-a", &files, &rollgit_render::NoRefs, &prev)
            .expect("renders")
            .objects
    }

    fn allow(yaml: &str) -> Allow {
        let raw: RawAllow = serde_saphyr::from_str(yaml).expect("allow parses");
        crate::config::resolve_allow(Some(&raw)).expect("allow resolves")
    }

    fn place(o: &RenderedObject) -> Placement<'_> {
        match o.key.namespace.as_deref() {
            Some(ns) => Placement::Namespace(ns),
            None => Placement::Cluster,
        }
    }

    #[test]
    fn objects_outside_the_rules_are_named_with_their_line_and_rule() {
        let objs = objects(
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ok}\n---\n\
             apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sneaky, namespace: kube-system}\n---\n\
             apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: root}\n\
             roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: other, namespace: team-b}\n",
        );
        let rules = allow("{namespaces: [team-a, team-a-*]}");
        let lines = check("team-a", &objs, &rules, &WatchScope::Cluster, place);
        let cases = [
            (
                "a ClusterRoleBinding",
                "apps/web/all.yaml:9: ClusterRoleBinding.rbac.authorization.k8s.io root: cluster-scoped rbac.authorization.k8s.io/ClusterRoleBinding is not allowed for repository \"team-a\" (allow.clusterScoped: false)",
            ),
            (
                "kube-system",
                "apps/web/all.yaml:5: ConfigMap kube-system/sneaky: namespace \"kube-system\" is not allowed for repository \"team-a\" (allow.namespaces: team-a, team-a-*)",
            ),
            (
                "another tenant's namespace",
                "apps/web/all.yaml:14: Secret team-b/other: namespace \"team-b\" is not allowed",
            ),
        ];
        assert_eq!(lines.len(), 3, "{lines:#?}");
        for (name, want) in cases {
            assert!(
                lines.iter().any(|l| l.starts_with(want)),
                "{name}: {want}\n{lines:#?}"
            );
        }
    }

    #[test]
    fn a_topology_policys_namespace_override_is_checked_against_the_rules() {
        let files = [rollgit_render::SourceFile {
            path: "apps/web/app.yaml".into(),
            content: b"apiVersion: core.oam.dev/v1beta1
kind: Application
metadata: {name: web}
spec:
  components:
    - name: web
      type: webservice
      properties: {image: nginx}
  policies:
    - name: here
      type: topology
      properties: {clusters: [local], namespace: team-a-web}
    - name: there
      type: topology
      properties: {clusters: [local], namespace: kube-system}
"
            .to_vec(),
        }];
        let prev = rollgit_render::RevisionState::default();
        let rendered =
            rollgit_render::render_app("web", "team-a", &files, &rollgit_render::NoRefs, &prev)
                .expect("renders");
        let lines = check_policies(
            "team-a",
            &rendered,
            &allow("{namespaces: [team-a, team-a-*]}"),
        );
        assert_eq!(
            lines,
            [
                "apps/web/app.yaml:13: policy \"there\": namespace \"kube-system\" is not allowed for repository \"team-a\" (allow.namespaces: team-a, team-a-*)"
            ],
            "{lines:#?}"
        );
        assert!(check_policies("team-a", &rendered, &Allow::default()).is_empty());
    }

    #[test]
    fn kinds_and_cluster_scoped_lists_and_the_watch_scope() {
        let objs = objects(
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: team-a}\n---\n\
             apiVersion: v1\nkind: Secret\nmetadata: {name: s}\n---\n\
             apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d, namespace: elsewhere}\n",
        );
        let rules = allow("{clusterScoped: [Namespace], kinds: [Namespace, 'apps/*']}");
        let watch = WatchScope::Namespaces(["team-a".to_string()].into());
        let lines = check("team-a", &objs, &rules, &watch, place);
        assert_eq!(lines.len(), 2, "{lines:#?}");
        assert!(
            lines.iter().any(|l| l.contains(
                "Secret team-a/s: kind Secret is not allowed for repository \"team-a\" (allow.kinds: Namespace, apps/*)"
            )),
            "{lines:#?}"
        );
        assert!(
            lines.iter().any(|l| l.contains(
                "namespace \"elsewhere\" is not watched by rollgit (watchNamespaces: team-a)"
            )),
            "{lines:#?}"
        );
        assert!(check("t", &objs, &Allow::default(), &WatchScope::Cluster, place).is_empty());
    }
}
