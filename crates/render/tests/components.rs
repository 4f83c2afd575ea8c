//! KubeVela Application components: webservice, worker, cloneset, clonesetservice, ref-objects.

mod common;
use common::*;
use rollgit_render::{ObjectIndex, RenderedObject, RevisionState, SourceFile, render_app};
use serde_json::{Value, json};

fn find<'a>(r: &'a rollgit_render::Rendered, kind: &str) -> &'a RenderedObject {
    r.objects
        .iter()
        .find(|o| o.key.kind == kind)
        .unwrap_or_else(|| panic!("no {kind} in {:#?}", r.objects))
}

fn container(r: &rollgit_render::Rendered, kind: &str) -> Value {
    find(r, kind)
        .object
        .pointer("/spec/template/spec/containers/0")
        .cloned()
        .expect("container")
}

#[test]
fn seed_000_webservice_renders_a_kubevela_deployment() {
    let r = render_ok(&fixture("rollout-trait-test"));
    assert_eq!(r.objects.len(), 1, "no ports exposed → no Service");
    let d = find(&r, "Deployment");
    assert!(d.workload);
    assert_eq!(d.component.as_deref(), Some("express-server"));
    assert_eq!(
        d.object,
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "express-server",
                "namespace": "default",
                "labels": {
                    "app.oam.dev/name": "rollout-trait-test",
                    "app.oam.dev/component": "express-server",
                    "workload.oam.dev/type": "webservice",
                },
                "annotations": { "app.oam.dev/publishVersion": "alpha1" },
            },
            "spec": {
                "selector": { "matchLabels": { "app.oam.dev/component": "express-server" } },
                "template": {
                    "metadata": { "labels": {
                        "app.oam.dev/name": "rollout-trait-test",
                        "app.oam.dev/component": "express-server",
                    } },
                    "spec": { "containers": [ {
                        "name": "express-server",
                        "image": "stefanprodan/podinfo:4.0.3",
                    } ] },
                },
            },
        })
    );
    // The Application itself is not applied; it is described.
    assert_eq!(r.applications.len(), 1);
    let app = &r.applications[0];
    assert_eq!(app.name, "rollout-trait-test");
    assert_eq!(app.namespace, "default");
    let c = &app.components[0];
    assert_eq!(c.name, "express-server");
    assert_eq!(c.component_type, "webservice");
    assert_eq!(c.external_revision.as_deref(), Some("express-server-v1"));
    assert_eq!(c.revision.as_deref(), Some("express-server-v1"));
    assert_eq!(
        c.trait_properties("rollout"),
        Some(&json!({"targetSize": 5, "rolloutBatches": [{"replicas": 2}, {"replicas": 3}]}))
    );
    assert_eq!(c.source.line, 8);
}

#[test]
fn seed_000_cloneset_renders_a_kruise_cloneset_named_after_the_component() {
    let r = render_ok(&fixture("rollout-trait-test-cloneset"));
    let c = find(&r, "CloneSet");
    assert_eq!(c.object["apiVersion"], "apps.kruise.io/v1alpha1");
    assert_eq!(
        c.object.pointer("/metadata/name"),
        Some(&json!("cloneset-server"))
    );
    assert_eq!(
        c.object.pointer("/spec/selector/matchLabels"),
        Some(&json!({"app.oam.dev/component": "cloneset-server"}))
    );
    assert_eq!(
        container(&r, "CloneSet")["image"],
        json!("stefanprodan/podinfo:4.0.3")
    );
    assert_eq!(r.revisions[0].name, "cloneset-server-v1");
}

#[test]
fn seed_001_clonesetservice_renders_like_cloneset() {
    let files: Vec<SourceFile> = fixture("test-rolling-v1")
        .into_iter()
        .filter(|f| f.path.ends_with("app.yaml"))
        .collect();
    let r = render_ok(&files);
    assert_eq!(
        r.objects.len(),
        1,
        "port (older form) is not exposed → no Service"
    );
    let c = find(&r, "CloneSet");
    assert!(c.workload);
    assert_eq!(c.component.as_deref(), Some("metrics-provider"));
    assert_eq!(
        c.object,
        json!({
            "apiVersion": "apps.kruise.io/v1alpha1",
            "kind": "CloneSet",
            "metadata": {
                "name": "metrics-provider",
                "namespace": "default",
                "labels": {
                    "app.oam.dev/name": "test-rolling",
                    "app.oam.dev/component": "metrics-provider",
                    "workload.oam.dev/type": "clonesetservice",
                },
                "annotations": { "app.oam.dev/publishVersion": "alpha1" },
            },
            "spec": {
                "replicas": 5,
                "selector": { "matchLabels": { "app.oam.dev/component": "metrics-provider" } },
                "template": {
                    "metadata": { "labels": {
                        "app.oam.dev/name": "test-rolling",
                        "app.oam.dev/component": "metrics-provider",
                    } },
                    "spec": { "containers": [ {
                        "name": "metrics-provider",
                        "image": "stefanprodan/podinfo:4.0.6",
                        "ports": [ { "containerPort": 8080 } ],
                        "command": ["./podinfo", "stress-cpu=1"],
                    } ] },
                },
                "updateStrategy": { "type": "InPlaceIfPossible" },
            },
        })
    );
    assert_eq!(
        r.applications[0].components[0].component_type,
        "clonesetservice"
    );
    assert_eq!(r.revisions[0].name, "metrics-provider-v1");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

#[test]
fn properties_table() {
    // (case, component type, properties block, JSON pointer into the workload, expected)
    let cases: &[(&str, &str, &str, &str, Value)] = &[
        (
            "image",
            "worker",
            "        image: busybox\n",
            "/spec/template/spec/containers/0/image",
            json!("busybox"),
        ),
        (
            "cmd",
            "worker",
            "        image: b\n        cmd: [sleep, \"10\"]\n",
            "/spec/template/spec/containers/0/command",
            json!(["sleep", "10"]),
        ),
        (
            "args",
            "worker",
            "        image: b\n        args: [--v]\n",
            "/spec/template/spec/containers/0/args",
            json!(["--v"]),
        ),
        (
            "env",
            "webservice",
            "        image: b\n        env:\n          - name: A\n            value: \"1\"\n          - name: B\n            valueFrom: {secretKeyRef: {name: s, key: k}}\n",
            "/spec/template/spec/containers/0/env",
            json!([{"name": "A", "value": "1"}, {"name": "B", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]),
        ),
        (
            "cpu and memory",
            "webservice",
            "        image: b\n        cpu: \"0.5\"\n        memory: 256Mi\n",
            "/spec/template/spec/containers/0/resources",
            json!({"limits": {"cpu": "0.5", "memory": "256Mi"}, "requests": {"cpu": "0.5", "memory": "256Mi"}}),
        ),
        (
            "bare number cpu",
            "worker",
            "        image: b\n        cpu: 0.5\n",
            "/spec/template/spec/containers/0/resources/limits/cpu",
            json!("0.5"),
        ),
        (
            "replicas",
            "webservice",
            "        image: b\n        replicas: 3\n",
            "/spec/replicas",
            json!(3),
        ),
        (
            "no replicas by default",
            "webservice",
            "        image: b\n",
            "/spec/replicas",
            Value::Null,
        ),
        (
            "labels on workload",
            "webservice",
            "        image: b\n        labels: {team: a}\n",
            "/metadata/labels/team",
            json!("a"),
        ),
        (
            "labels on pods",
            "webservice",
            "        image: b\n        labels: {team: a}\n",
            "/spec/template/metadata/labels/team",
            json!("a"),
        ),
        (
            "labels cannot override the selector",
            "webservice",
            "        image: b\n        labels: {app.oam.dev/component: x}\n",
            "/spec/template/metadata/labels/app.oam.dev~1component",
            json!("web"),
        ),
        (
            "annotations on pods",
            "worker",
            "        image: b\n        annotations: {a: b}\n",
            "/spec/template/metadata/annotations",
            json!({"a": "b"}),
        ),
        (
            "annotations on workload",
            "worker",
            "        image: b\n        annotations: {a: b}\n",
            "/metadata/annotations/a",
            json!("b"),
        ),
        (
            "probes pass through",
            "webservice",
            "        image: b\n        livenessProbe: {httpGet: {path: /, port: 80}}\n        readinessProbe: {tcpSocket: {port: 80}}\n",
            "/spec/template/spec/containers/0/readinessProbe",
            json!({"tcpSocket": {"port": 80}}),
        ),
        (
            "liveness",
            "webservice",
            "        image: b\n        livenessProbe: {httpGet: {path: /, port: 80}}\n",
            "/spec/template/spec/containers/0/livenessProbe",
            json!({"httpGet": {"path": "/", "port": 80}}),
        ),
        (
            "imagePullPolicy",
            "webservice",
            "        image: b\n        imagePullPolicy: Always\n",
            "/spec/template/spec/containers/0/imagePullPolicy",
            json!("Always"),
        ),
        (
            "ports",
            "webservice",
            "        image: b\n        ports:\n          - port: 80\n            expose: true\n          - port: 53\n            protocol: UDP\n            name: dns\n",
            "/spec/template/spec/containers/0/ports",
            json!([{"containerPort": 80, "protocol": "TCP", "name": "port-80"}, {"containerPort": 53, "protocol": "UDP", "name": "dns"}]),
        ),
        (
            "older port",
            "webservice",
            "        image: b\n        port: 8080\n",
            "/spec/template/spec/containers/0/ports",
            json!([{"containerPort": 8080}]),
        ),
        (
            "worker type label",
            "worker",
            "        image: b\n",
            "/metadata/labels/workload.oam.dev~1type",
            json!("worker"),
        ),
        (
            "cloneset update strategy",
            "cloneset",
            "        image: b\n        updateStrategyType: InPlaceIfPossible\n",
            "/spec/updateStrategy/type",
            json!("InPlaceIfPossible"),
        ),
        (
            "clonesetservice update strategy",
            "clonesetservice",
            "        image: b\n        updateStrategyType: InPlaceOnly\n",
            "/spec/updateStrategy/type",
            json!("InPlaceOnly"),
        ),
        (
            "clonesetservice kind",
            "clonesetservice",
            "        image: b\n",
            "/kind",
            json!("CloneSet"),
        ),
        (
            "imagePullSecrets",
            "worker",
            "        image: b\n        imagePullSecrets: [reg]\n",
            "/spec/template/spec/imagePullSecrets",
            json!([{"name": "reg"}]),
        ),
    ];
    for (case, ty, props, pointer, expected) in cases {
        let r = render_ok(&one("a/app.yaml", &application(ty, props)));
        let w = r.objects.iter().find(|o| o.workload).expect("workload");
        assert_eq!(
            w.object.pointer(pointer).cloned().unwrap_or(Value::Null),
            *expected,
            "{case}"
        );
    }
}

#[test]
fn services_table() {
    // (case, type, properties, expected Service spec or None)
    let cases: &[(&str, &str, &str, Option<Value>)] = &[
        ("no ports", "webservice", "        image: b\n", None),
        (
            "port not exposed",
            "webservice",
            "        image: b\n        ports: [{port: 80}]\n",
            None,
        ),
        (
            "older port is not exposed",
            "webservice",
            "        image: b\n        port: 80\n",
            None,
        ),
        (
            "exposed port",
            "webservice",
            "        image: b\n        ports: [{port: 80, expose: true}, {port: 9090}]\n",
            Some(
                json!({"selector": {"app.oam.dev/component": "web"}, "ports": [{"name": "port-80", "port": 80, "targetPort": 80}], "type": "ClusterIP"}),
            ),
        ),
        (
            "exposeType and udp",
            "webservice",
            "        image: b\n        exposeType: NodePort\n        ports: [{port: 53, expose: true, protocol: UDP, name: dns}]\n",
            Some(
                json!({"selector": {"app.oam.dev/component": "web"}, "ports": [{"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"}], "type": "NodePort"}),
            ),
        ),
        (
            "worker never has a Service",
            "worker",
            "        image: b\n        ports: [{port: 80, expose: true}]\n",
            None,
        ),
        (
            "cloneset exposes like webservice",
            "cloneset",
            "        image: b\n        ports: [{port: 80, expose: true}]\n",
            Some(
                json!({"selector": {"app.oam.dev/component": "web"}, "ports": [{"name": "port-80", "port": 80, "targetPort": 80}], "type": "ClusterIP"}),
            ),
        ),
        (
            "clonesetservice exposes like cloneset",
            "clonesetservice",
            "        image: b\n        ports: [{port: 80, expose: true}]\n",
            Some(
                json!({"selector": {"app.oam.dev/component": "web"}, "ports": [{"name": "port-80", "port": 80, "targetPort": 80}], "type": "ClusterIP"}),
            ),
        ),
    ];
    for (case, ty, props, expected) in cases {
        let r = render_ok(&one("a/app.yaml", &application(ty, props)));
        let svc = r.objects.iter().find(|o| o.key.kind == "Service");
        assert_eq!(
            svc.map(|s| s.object["spec"].clone()),
            expected.clone(),
            "{case}"
        );
        if let Some(s) = svc {
            assert_eq!(
                s.object.pointer("/metadata/name"),
                Some(&json!("web")),
                "{case}"
            );
            assert!(!s.workload, "{case}");
            assert_eq!(
                s.object.pointer("/metadata/annotations"),
                None,
                "{case}: publishVersion only on workloads"
            );
        }
    }
}

#[test]
fn component_errors_table() {
    let app = |body: &str| {
        format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n{body}"
        )
    };
    // (case, file content, expected errors)
    let cases: Vec<(&str, String, Vec<&str>)> = vec![
        (
            "unknown component type",
            app("  components:\n    - name: web\n      type: foo\n"),
            vec![
                "a/app.yaml:8: unknown component type \"foo\" (supported: webservice, worker, cloneset, clonesetservice, ref-objects)",
            ],
        ),
        (
            "missing image",
            application("webservice", "        cmd: [a]\n"),
            vec!["a/app.yaml:10: component \"web\": missing required property \"image\""],
        ),
        (
            "missing properties entirely",
            app("  components:\n    - name: web\n      type: worker\n"),
            vec!["a/app.yaml:7: component \"web\": missing required property \"image\""],
        ),
        (
            "image of the wrong type",
            application("webservice", "        image: 42\n"),
            vec![
                "a/app.yaml:10: component \"web\": property \"image\" must be a string, got an integer",
            ],
        ),
        (
            "env value must be a string",
            application(
                "webservice",
                "        image: b\n        env:\n          - name: PORT\n            value: 8080\n",
            ),
            vec![
                "a/app.yaml:13: component \"web\": property \"value\" must be a string, got an integer",
            ],
        ),
        (
            "port out of range",
            application(
                "webservice",
                "        image: b\n        ports: [{port: 70000}]\n",
            ),
            vec![
                "a/app.yaml:11: component \"web\": property \"port\" must be between 1 and 65535, got 70000",
            ],
        ),
        (
            "ports not a list",
            application("webservice", "        image: b\n        ports: 80\n"),
            vec![
                "a/app.yaml:11: component \"web\": property \"ports\" must be a list, got an integer",
            ],
        ),
        (
            "replicas negative",
            application("worker", "        image: b\n        replicas: -1\n"),
            vec![
                "a/app.yaml:11: component \"web\": property \"replicas\" must be between 0 and 2147483647, got -1",
            ],
        ),
        (
            "labels values must be strings",
            application("worker", "        image: b\n        labels: {a: 1}\n"),
            vec![
                "a/app.yaml:11: component \"web\": property \"labels.a\" must be a string, got an integer",
            ],
        ),
        (
            "bad imagePullPolicy",
            application(
                "worker",
                "        image: b\n        imagePullPolicy: Sometimes\n",
            ),
            vec![
                "a/app.yaml:11: component \"web\": property \"imagePullPolicy\" must be one of Always, Never, IfNotPresent, got \"Sometimes\"",
            ],
        ),
        (
            "invalid component name",
            app(
                "  components:\n    - name: Web\n      type: worker\n      properties: {image: b}\n",
            ),
            vec![
                "a/app.yaml:7: invalid component name \"Web\": a lowercase RFC 1123 label must consist of at most 63 lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
            ],
        ),
        (
            "components not a list",
            app("  components: {}\n"),
            vec!["a/app.yaml:6: Application: spec.components must be a list, got a mapping"],
        ),
        (
            "duplicate component names",
            app(
                "  components:\n    - name: web\n      type: worker\n      properties: {image: a}\n    - name: web\n      type: worker\n      properties: {image: b}\n",
            ),
            vec!["a/app.yaml:10: duplicate component name \"web\" (also defined at a/app.yaml:7)"],
        ),
        (
            "several errors at once",
            app(
                "  components:\n    - name: a\n      type: bar\n    - name: b\n      type: worker\n      properties: {image: [x]}\n",
            ),
            vec![
                "a/app.yaml:8: unknown component type \"bar\" (supported: webservice, worker, cloneset, clonesetservice, ref-objects)",
                "a/app.yaml:11: component \"b\": property \"image\" must be a string, got a list",
            ],
        ),
    ];
    for (case, content, expected) in cases {
        assert_eq!(render_err(&one("a/app.yaml", &content)), expected, "{case}");
    }
}

#[test]
fn field_of_an_error_names_the_property() {
    let err = render(&one(
        "a/app.yaml",
        &application("webservice", "        image: 42\n"),
    ))
    .expect_err("bad");
    assert_eq!(
        err.0[0].field.as_deref(),
        Some("spec.components[0].properties.image")
    );
}

#[test]
fn unknown_properties_are_warnings() {
    let r = render_ok(&one(
        "a/app.yaml",
        &application("webservice", "        image: b\n        volumeMounts: {}\n"),
    ));
    assert_eq!(
        r.warnings
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        [
            "a/app.yaml:11: component \"web\": property \"volumeMounts\" is not supported by rollgit and is ignored"
        ]
    );
}

#[test]
fn application_namespace_applies_to_its_components() {
    let content = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\n  namespace: prod\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: b\n        ports: [{port: 80, expose: true}]\n";
    let r = render_ok(&one("a/app.yaml", content));
    for o in &r.objects {
        assert_eq!(o.key.namespace.as_deref(), Some("prod"));
    }
    assert_eq!(r.applications[0].namespace, "prod");
    assert_eq!(
        r.revisions[0]
            .controller_revision
            .pointer("/metadata/namespace"),
        Some(&json!("prod"))
    );
}

#[test]
fn seed_003_ref_objects_uses_the_apps_own_deployment_once() {
    let r = render_ok(&fixture("ref-objects-demo"));
    assert_eq!(r.objects.len(), 1, "{:#?}", r.objects);
    let d = &r.objects[0];
    assert_eq!(d.key.to_string(), "Deployment.apps demo/demo");
    assert_eq!(d.component.as_deref(), Some("demo"));
    assert_eq!(
        d.object.pointer("/metadata/labels/app"),
        Some(&json!("demo"))
    );
    assert_eq!(
        d.object.pointer("/metadata/labels/app.oam.dev~1component"),
        Some(&json!("demo"))
    );
    // The explicit publishVersion of the Application is honoured.
    assert_eq!(r.publish_version, "version1");
    assert_eq!(
        d.object
            .pointer("/metadata/annotations/app.oam.dev~1publishVersion"),
        Some(&json!("version1"))
    );
    // Policies and the Workflow are kept, not applied.
    let oam: Vec<String> = r.oam_objects.iter().map(|o| o.key.to_string()).collect();
    assert_eq!(
        oam,
        [
            "Policy.core.oam.dev demo/cluster-prod",
            "Policy.core.oam.dev demo/cluster-test",
            "Workflow.core.oam.dev demo/deploy-demo"
        ]
    );
    assert_eq!(r.applications[0].workflow, json!({"ref": "deploy-demo"}));
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
}

fn ref_app(objects: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: shared\n      type: ref-objects\n      properties:\n        objects:\n{objects}"
    )
}

#[test]
fn ref_objects_from_elsewhere_in_the_repo() {
    let repo = vec![
        SourceFile::new(
            "shared/config.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  resourceVersion: \"12\"\ndata: {a: b}\nstatus: {x: 1}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: token, namespace: other}\n",
        ),
        SourceFile::new("shared/broken.yaml", "{{{"),
    ];
    let index = ObjectIndex::from_files(&repo);
    let files = one(
        "apps/a/app.yaml",
        &ref_app(
            "          - apiVersion: v1\n            kind: ConfigMap\n            name: settings\n",
        ),
    );
    let r = render_app("a", "shop-ns", &files, &index, &RevisionState::default()).expect("renders");
    assert_eq!(
        r.objects[0].object,
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings", "namespace": "shop-ns", "labels": {"app.oam.dev/name": "shop", "app.oam.dev/component": "shared"}}, "data": {"a": "b"}})
    );
    assert_eq!(r.referenced_paths, ["shared/config.yaml"]);
    assert_eq!(r.objects[0].source.path, "shared/config.yaml");

    // A Secret in another namespace is not the one wanted.
    let files = one(
        "apps/a/app.yaml",
        &ref_app("          - apiVersion: v1\n            kind: Secret\n            name: token\n"),
    );
    let err =
        render_app("a", "shop-ns", &files, &index, &RevisionState::default()).expect_err("missing");
    assert_eq!(
        err.lines(),
        [
            "apps/a/app.yaml:11: component \"shared\": ref-objects: Secret shop-ns/token not found in the repository"
        ]
    );
    // With the namespace named, it is.
    let files = one(
        "apps/a/app.yaml",
        &ref_app(
            "          - apiVersion: v1\n            kind: Secret\n            name: token\n            namespace: other\n",
        ),
    );
    let r = render_app("a", "shop-ns", &files, &index, &RevisionState::default()).expect("renders");
    assert_eq!(r.objects[0].key.to_string(), "Secret other/token");
}

#[test]
fn ref_objects_ambiguous_and_missing_fields() {
    let repo = vec![
        SourceFile::new(
            "x/a.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        ),
        SourceFile::new(
            "y/b.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
        ),
    ];
    let index = ObjectIndex::from_files(&repo);
    let files = one(
        "apps/a/app.yaml",
        &ref_app("          - apiVersion: v1\n            kind: ConfigMap\n            name: c\n"),
    );
    let err =
        render_app("a", "ns", &files, &index, &RevisionState::default()).expect_err("ambiguous");
    assert_eq!(
        err.lines(),
        [
            "apps/a/app.yaml:11: component \"shared\": ref-objects: ConfigMap ns/c is ambiguous, found at x/a.yaml:1, y/b.yaml:1"
        ]
    );
    let files = one(
        "apps/a/app.yaml",
        &ref_app("          - kind: ConfigMap\n            name: c\n"),
    );
    let err = render_app("a", "ns", &files, &index, &RevisionState::default()).expect_err("bad");
    assert_eq!(
        err.lines(),
        ["apps/a/app.yaml:11: component \"shared\": missing required property \"apiVersion\""]
    );
}

#[test]
fn oam_definitions_are_not_applied_and_warned_about() {
    let r = render_ok(&one(
        "a/x.yaml",
        "apiVersion: core.oam.dev/v1beta1\nkind: ComponentDefinition\nmetadata: {name: mine}\n",
    ));
    assert!(r.objects.is_empty());
    assert_eq!(r.oam_objects.len(), 1);
    assert_eq!(r.warnings.len(), 1);
}
