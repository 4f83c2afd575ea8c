//! Plain Kubernetes YAML: pass-through, namespaces, apply order, errors, duplicates.

mod common;
use common::*;
use rollgit_render::{ObjectKey, Scope};
use serde_json::json;

fn kinds_in_order(r: &rollgit_render::Rendered) -> Vec<String> {
    r.objects
        .iter()
        .map(|o| format!("{}/{}", o.key.kind, o.key.name))
        .collect()
}

#[test]
fn plain_fixture_renders_in_apply_order() {
    let r = render_ok(&fixture("plain"));
    assert_eq!(
        kinds_in_order(&r),
        [
            "Namespace/shop",
            "CustomResourceDefinition/widgets.example.com",
            "ClusterRole/shop:reader",
            "ConfigMap/web-config",
            "Service/web",
            "Deployment/web",
            "Widget/gizmo",
        ]
    );
    let ns = |kind: &str| {
        r.objects
            .iter()
            .find(|o| o.key.kind == kind)
            .and_then(|o| o.object.pointer("/metadata/namespace").cloned())
    };
    assert_eq!(ns("Namespace"), None);
    assert_eq!(ns("ClusterRole"), None);
    assert_eq!(ns("CustomResourceDefinition"), None);
    assert_eq!(ns("Deployment"), Some(json!("default")));
    assert_eq!(ns("ConfigMap"), Some(json!("default")));
    // The CRD in the app declares Widget namespaced.
    assert_eq!(ns("Widget"), Some(json!("default")));
    let widget = r
        .objects
        .iter()
        .find(|o| o.key.kind == "Widget")
        .expect("widget");
    assert_eq!(widget.scope, Scope::Namespaced);
    assert_eq!(widget.source.path, "apps/plain/app.yaml");
    assert_eq!(widget.source.line, 33);
    assert!(r.applications.is_empty());
    assert!(r.revisions.is_empty());
    assert_eq!(r.content_hash.len(), 64);
}

#[test]
fn plain_objects_pass_through_unchanged_but_namespace() {
    let r = render_ok(&one(
        "a/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: other\ndata:\n  k: v\n  n: \"1\"\n",
    ));
    assert_eq!(
        r.objects[0].object,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "other"}, "data": {"k": "v", "n": "1"}})
    );
    assert_eq!(
        r.objects[0].key,
        ObjectKey {
            group: String::new(),
            kind: "ConfigMap".into(),
            namespace: Some("other".into()),
            name: "c".into()
        }
    );
}

#[test]
fn scope_and_namespace_table() {
    // (case, document, expected namespace, expected scope)
    let cases: &[(&str, &str, Option<&str>, Scope)] = &[
        (
            "namespaced defaulted",
            "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n",
            Some("default"),
            Scope::Namespaced,
        ),
        (
            "namespaced explicit",
            "apiVersion: v1\nkind: Secret\nmetadata: {name: s, namespace: x}\n",
            Some("x"),
            Scope::Namespaced,
        ),
        (
            "namespace kind",
            "apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n",
            None,
            Scope::Cluster,
        ),
        (
            "crd",
            "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: a.b.c}\n",
            None,
            Scope::Cluster,
        ),
        (
            "clusterrolebinding",
            "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata: {name: x}\n",
            None,
            Scope::Cluster,
        ),
        (
            "cluster-scoped namespace dropped",
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: fast, namespace: x}\n",
            None,
            Scope::Cluster,
        ),
        (
            "unknown kind left alone",
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n",
            None,
            Scope::Unknown,
        ),
        (
            "unknown kind explicit ns",
            "apiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t, namespace: n}\n",
            Some("n"),
            Scope::Unknown,
        ),
        (
            "cloneset",
            "apiVersion: apps.kruise.io/v1alpha1\nkind: CloneSet\nmetadata: {name: c}\n",
            Some("default"),
            Scope::Namespaced,
        ),
    ];
    for (case, doc, ns, scope) in cases {
        let r = render_ok(&one("a/x.yaml", doc));
        let o = &r.objects[0];
        assert_eq!(
            o.object
                .pointer("/metadata/namespace")
                .and_then(|v| v.as_str()),
            *ns,
            "{case}"
        );
        assert_eq!(o.key.namespace.as_deref(), *ns, "{case}");
        assert_eq!(o.scope, *scope, "{case}");
    }
}

#[test]
fn non_manifest_files_and_empty_documents_are_ignored() {
    let files = vec![
        rollgit_render::SourceFile::new("a/README.md", "apiVersion: [broken"),
        rollgit_render::SourceFile::new("a/empty.yaml", ""),
        rollgit_render::SourceFile::new("a/comments.yml", "# nothing\n---\n---\n"),
        rollgit_render::SourceFile::new(
            "a/X.YAML",
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n...\n",
        ),
    ];
    let r = render_ok(&files);
    assert_eq!(r.objects.len(), 1);
}

#[test]
fn error_messages_table() {
    // (case, path, content, expected errors)
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "not a mapping",
            "a/x.yaml",
            "- 1\n- 2\n",
            &["a/x.yaml:1: a Kubernetes object must be a mapping, got a list"],
        ),
        (
            "scalar document",
            "a/x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: a}\n---\nhello\n",
            &["a/x.yaml:5: a Kubernetes object must be a mapping, got a string"],
        ),
        (
            "missing apiVersion kind name",
            "a/x.yaml",
            "spec: {}\n",
            &[
                "a/x.yaml:1: missing apiVersion",
                "a/x.yaml:1: missing kind",
                "a/x.yaml:1: missing metadata.name",
            ],
        ),
        (
            "missing name in metadata",
            "a/x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  labels: {a: b}\n",
            &["a/x.yaml:4: missing metadata.name"],
        ),
        (
            "generateName",
            "a/x.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  generateName: p-\n",
            &[
                "a/x.yaml:4: missing metadata.name (generateName is not supported: rollgit applies objects by name)",
            ],
        ),
        (
            "kind not a string",
            "a/x.yaml",
            "apiVersion: v1\nkind: [a]\nmetadata: {name: a}\n",
            &["a/x.yaml:2: kind must be a non-empty string, got a list"],
        ),
        (
            "invalid name",
            "a/x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: My_Config\n",
            &[
                "a/x.yaml:4: invalid metadata.name \"My_Config\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (at most 253)",
            ],
        ),
        (
            "service name with dot",
            "a/x.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: a.b\n",
            &[
                "a/x.yaml:4: invalid metadata.name \"a.b\": a lowercase RFC 1123 label must consist of at most 63 lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            ],
        ),
        (
            "invalid namespace",
            "a/x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  namespace: Prod\n",
            &[
                "a/x.yaml:5: invalid metadata.namespace \"Prod\": a lowercase RFC 1123 label must consist of at most 63 lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            ],
        ),
        (
            "invalid utf8",
            "a/x.yaml",
            "a: 1\nb: \u{fffd}\n",
            &["a/x.yaml:1: a Kubernetes object must be a mapping, got a string"],
        ),
    ];
    for (case, path, content, expected) in cases {
        let got = render_err(&one(path, content));
        if *case == "invalid utf8" {
            continue; // covered below with real invalid bytes
        }
        assert_eq!(got, *expected, "{case}");
    }
}

#[test]
fn invalid_utf8_is_an_error_with_its_line() {
    let files = vec![rollgit_render::SourceFile::new(
        "a/x.yaml",
        b"a: 1\nb: \xff\n".to_vec(),
    )];
    assert_eq!(render_err(&files), ["a/x.yaml:2: file is not valid UTF-8"]);
}

#[test]
fn unparsable_yaml_reports_the_parser_line() {
    let got = render_err(&one(
        "apps/web/deploy.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: [1, 2\n  j: 3\n",
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("apps/web/deploy.yaml:"), "{got:?}");
    assert!(got[0].contains(": invalid YAML: "), "{got:?}");
    let line: u32 = got[0]
        .split(':')
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("line");
    assert!((6..=8).contains(&line), "{got:?}");
}

#[test]
fn bad_indentation_is_reported() {
    let got = render_err(&one(
        "a/x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n   labels: x\n",
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("a/x.yaml:"), "{got:?}");
}

#[test]
fn duplicate_keys_in_a_mapping_are_an_error() {
    let got = render_err(&one(
        "a/x.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\n  name: b\n",
    ));
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(got[0].starts_with("a/x.yaml:5: invalid YAML: "), "{got:?}");
}

#[test]
fn all_errors_of_the_app_are_collected_across_files() {
    let files = vec![
        rollgit_render::SourceFile::new("a/1.yaml", "key: [unclosed\n"),
        rollgit_render::SourceFile::new(
            "a/2.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: ok}\n",
        ),
        rollgit_render::SourceFile::new("a/3.yaml", "- not an object\n"),
    ];
    let got = render_err(&files);
    assert_eq!(got.len(), 3, "{got:?}");
    assert!(got[0].starts_with("a/1.yaml:"), "{got:?}");
    assert_eq!(got[1], "a/2.yaml:3: missing metadata.name");
    assert_eq!(
        got[2],
        "a/3.yaml:1: a Kubernetes object must be a mapping, got a list"
    );
}

#[test]
fn duplicates_table() {
    let cm = |ns: &str| format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n{ns}");
    // (case, files, expected errors; empty = no duplicate)
    type Case<'a> = (&'a str, Vec<(&'a str, String)>, Vec<&'a str>);
    let cases: Vec<Case> = vec![
        (
            "same file",
            vec![("a/x.yaml", format!("{}---\n{}", cm(""), cm("")))],
            vec!["a/x.yaml:6: duplicate object ConfigMap default/c (also defined at a/x.yaml:1)"],
        ),
        (
            "two files, defaulted and explicit namespace",
            vec![("a/x.yaml", cm("")), ("a/y.yaml", cm("  namespace: default\n"))],
            vec!["a/y.yaml:1: duplicate object ConfigMap default/c (also defined at a/x.yaml:1)"],
        ),
        (
            "different namespaces are not duplicates",
            vec![("a/x.yaml", cm("")), ("a/y.yaml", cm("  namespace: other\n"))],
            vec![],
        ),
        (
            "different api versions of one group are duplicates",
            vec![
                ("a/x.yaml", "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n".to_owned()),
                ("a/y.yaml", "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata: {name: h}\n".to_owned()),
            ],
            vec!["a/y.yaml:1: duplicate object HorizontalPodAutoscaler.autoscaling default/h (also defined at a/x.yaml:1)"],
        ),
        (
            "same name in different groups is fine",
            vec![
                ("a/x.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: h}\n".to_owned()),
                ("a/y.yaml", "apiVersion: example.com/v1\nkind: Deployment\nmetadata: {name: h, namespace: default}\n".to_owned()),
            ],
            vec![],
        ),
        (
            "cluster-scoped",
            vec![
                ("a/x.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n".to_owned()),
                ("a/y.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n".to_owned()),
            ],
            vec!["a/y.yaml:1: duplicate object Namespace n (also defined at a/x.yaml:1)"],
        ),
        (
            "component output against a plain object",
            vec![
                ("a/app.yaml", application("webservice", "        image: nginx\n")),
                ("a/web.yaml", "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\n".to_owned()),
            ],
            vec!["a/web.yaml:1: duplicate object Deployment.apps default/web (also defined at a/app.yaml:7)"],
        ),
    ];
    for (case, files, expected) in cases {
        let files: Vec<_> = files
            .into_iter()
            .map(|(p, c)| rollgit_render::SourceFile::new(p, c))
            .collect();
        match render(&files) {
            Ok(_) => assert!(expected.is_empty(), "{case}: expected {expected:?}"),
            Err(e) => assert_eq!(e.lines(), expected, "{case}"),
        }
    }
}

#[test]
fn render_error_display_is_path_line_message() {
    let e = rollgit_render::RenderError {
        path: "apps/web/x.yaml".into(),
        line: 7,
        field: Some("spec".into()),
        message: "boom".into(),
    };
    assert_eq!(e.to_string(), "apps/web/x.yaml:7: boom");
}

#[test]
fn apply_order_is_deterministic_whatever_the_file_order() {
    let mut files = fixture("plain");
    let a = render_ok(&files);
    files.reverse();
    let b = render_ok(&files);
    assert_eq!(a.objects, b.objects);
    assert_eq!(a.content_hash, b.content_hash);
}

#[test]
fn webhooks_go_last_and_unknown_kinds_after_known() {
    let r = render_ok(&one(
        "a/x.yaml",
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: v}\n---\napiVersion: example.com/v1\nkind: Thing\nmetadata: {name: t}\n---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\napiVersion: v1\nkind: ServiceAccount\nmetadata: {name: sa}\n---\napiVersion: v1\nkind: Namespace\nmetadata: {name: n}\n",
    ));
    assert_eq!(
        kinds_in_order(&r),
        [
            "Namespace/n",
            "ServiceAccount/sa",
            "Service/s",
            "Thing/t",
            "ValidatingWebhookConfiguration/v"
        ]
    );
}

#[test]
fn kustomize_and_helm_input_is_refused_naming_the_tool() {
    use rollgit_render::SourceFile;
    let kustomization = "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deployment.yaml\n";
    let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec: {}\n";
    let cases: Vec<(&str, Vec<SourceFile>, Vec<&str>)> = vec![
        (
            "kustomization.yaml",
            vec![
                SourceFile::new("apps/web/kustomization.yaml", kustomization),
                SourceFile::new("apps/web/deployment.yaml", deployment),
            ],
            vec![
                "apps/web/kustomization.yaml:1: a Kustomize kustomization: Kustomize is not rendered by rollgit yet; commit plain YAML (the output of `kustomize build`) or a KubeVela Application instead",
            ],
        ),
        (
            "kustomization.yml",
            vec![SourceFile::new("apps/web/kustomization.yml", kustomization)],
            vec![
                "apps/web/kustomization.yml:1: a Kustomize kustomization: Kustomize is not rendered by rollgit yet; commit plain YAML (the output of `kustomize build`) or a KubeVela Application instead",
            ],
        ),
        (
            "Kustomization, without an extension",
            vec![SourceFile::new("apps/web/Kustomization", kustomization)],
            vec![
                "apps/web/Kustomization:1: a Kustomize kustomization: Kustomize is not rendered by rollgit yet; commit plain YAML (the output of `kustomize build`) or a KubeVela Application instead",
            ],
        ),
        (
            "a Helm chart, its templates not read",
            vec![
                SourceFile::new(
                    "apps/web/Chart.yaml",
                    "apiVersion: v2\nname: web\nversion: 0.1.0\n",
                ),
                SourceFile::new("apps/web/values.yaml", "replicas: 2\n"),
                SourceFile::new(
                    "apps/web/templates/deployment.yaml",
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n",
                ),
            ],
            vec![
                "apps/web/Chart.yaml:1: a Helm chart: Helm is not rendered by rollgit yet; commit plain YAML (the output of `helm template`) or a KubeVela Application instead",
            ],
        ),
    ];
    for (name, files, want) in cases {
        let got = render_err(&files);
        assert_eq!(got, want, "{name}");
        assert!(
            got.iter().all(|l| !l.contains("missing metadata.name")),
            "{name}"
        );
    }
    assert!(rollgit_render::is_manifest_path("apps/web/Kustomization"));
}
