//! Scenario tests of `rollgit devcluster` (issue 2, item 4), driven by the real `kubectl` and by
//! kube-rs. Each test starts its own dev cluster in process on 127.0.0.1:0 with its own temporary
//! directory, and asserts what a user of a real kube-apiserver would check.

mod common;

use common::{TestCluster, WAIT, item_names, table_columns};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Pod};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams, WatchEvent,
    WatchParams,
};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::{wait::await_condition, wait::conditions, watcher};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn deployment_yaml(name: &str, labels: &str, replicas: u32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels:
{labels}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: {name}
  template:
    metadata:
      labels:
        app: {name}
    spec:
      containers:
      - name: app
        image: nginx:1.27
"
    )
}

fn api_error(e: kube::Error) -> Box<kube::core::Status> {
    match e {
        kube::Error::Api(s) => s,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(v["metadata"]["labels"].clone()).unwrap_or_default()
}

fn container_names(v: &Value) -> Vec<String> {
    v["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| c["name"].as_str().expect("container name").to_string())
        .collect()
}

// 1 ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_namespaces_lists_the_system_namespaces() {
    let tc = TestCluster::start().await;
    let out = tc.kubectl_ok(&["get", "namespaces"]).await;
    let rows = table_columns(&out);
    assert_eq!(rows[0], ["NAME", "STATUS", "AGE"], "header in {out}");
    let mut names: Vec<&str> = rows[1..].iter().map(|r| r[0].as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
    for r in &rows[1..] {
        assert_eq!(r[1], "Active", "status of {}", r[0]);
        assert!(
            r[2].ends_with('s') && r[2][..r[2].len() - 1].parse::<u32>().is_ok(),
            "age of a fresh namespace is seconds, got {:?}",
            r[2]
        );
    }
    // kube-rs sees the same four.
    let nss = Api::<Namespace>::all(tc.client().await)
        .list(&ListParams::default())
        .await
        .expect("list namespaces");
    let mut names: Vec<String> = nss
        .items
        .iter()
        .map(|n| n.metadata.name.clone().expect("name"))
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["default", "kube-node-lease", "kube-public", "kube-system"]
    );
}

// 2 ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_apply_server_side_and_client_side() {
    let tc = TestCluster::start_api_only().await;
    let f = tc.file(
        "web.yaml",
        &deployment_yaml("web", "    app: web\n    team: blue", 2),
    );
    let f = f.to_str().expect("utf-8 path");
    let out = tc.kubectl_ok(&["apply", "--server-side", "-f", f]).await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let d = tc
        .kubectl_json(&["get", "deploy", "web", "-o", "json"])
        .await;
    assert_eq!(
        labels_of(&d),
        BTreeMap::from([("app".into(), "web".into()), ("team".into(), "blue".into())])
    );
    assert_eq!(d["spec"]["replicas"], 2);
    assert_eq!(d["metadata"]["generation"], 1);

    // Applying again without `team` removes the label this manager owned.
    let f2 = tc.file("web2.yaml", &deployment_yaml("web", "    app: web", 2));
    let out = tc
        .kubectl_ok(&["apply", "--server-side", "-f", f2.to_str().expect("utf-8")])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let d2 = tc
        .kubectl_json(&[
            "get",
            "deploy",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    assert_eq!(
        labels_of(&d2),
        BTreeMap::from([("app".into(), "web".into())])
    );
    assert_eq!(d2["metadata"]["uid"], d["metadata"]["uid"]);
    assert_eq!(d2["metadata"]["generation"], 1, "labels are not spec");
    let managers: Vec<(&str, &str)> = d2["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .map(|m| {
            (
                m["manager"].as_str().expect("manager"),
                m["operation"].as_str().expect("operation"),
            )
        })
        .collect();
    assert_eq!(managers, [("kubectl", "Apply")]);

    // Client-side apply: created, unchanged, configured.
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  mode: fast\n";
    let cmf = tc.file("cm.yaml", cm);
    let cmf = cmf.to_str().expect("utf-8");
    assert_eq!(
        tc.kubectl_ok(&["apply", "-f", cmf]).await.trim(),
        "configmap/settings created"
    );
    let before = tc.store_state();
    assert_eq!(
        tc.kubectl_ok(&["apply", "-f", cmf]).await.trim(),
        "configmap/settings unchanged"
    );
    assert_eq!(
        tc.store_state(),
        before,
        "an unchanged apply writes nothing"
    );
    let got = tc
        .kubectl_json(&["get", "configmap", "settings", "-o", "json"])
        .await;
    let last: Value = serde_json::from_str(
        got["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .expect("last-applied annotation"),
    )
    .expect("last-applied is JSON");
    assert_eq!(last["data"], json!({"mode": "fast"}));
    tc.file("cm.yaml", &cm.replace("fast", "slow"));
    assert_eq!(
        tc.kubectl_ok(&["apply", "-f", cmf]).await.trim(),
        "configmap/settings configured"
    );
    let got = tc
        .kubectl_json(&["get", "configmap", "settings", "-o", "json"])
        .await;
    assert_eq!(got["data"], json!({"mode": "slow"}));
}

// 3 ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_with_selectors_json_and_chunking() {
    let tc = TestCluster::start().await;
    tc.kubectl_ok(&["create", "namespace", "shop"]).await;
    let mut docs = String::new();
    for (name, labels) in [
        ("a", "tier: fe"),
        ("b", "tier: be"),
        ("c", "tier: fe\n    canary: \"true\""),
        ("d", "tier: db"),
        ("e", "tier: be"),
    ] {
        docs.push_str(&format!(
            "---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: shop\n  labels:\n    app: shop\n    {labels}\ndata:\n  k: {name}\n"
        ));
    }
    let f = tc.file("cms.yaml", &docs);
    tc.kubectl_ok(&["create", "-f", f.to_str().expect("utf-8")])
        .await;

    let get = |sel: &'static [&'static str]| {
        let tc = &tc;
        async move {
            let mut args = vec!["get", "configmaps", "-n", "shop", "-o", "json"];
            args.extend_from_slice(sel);
            let list = tc.kubectl_json(&args).await;
            assert_eq!(list["kind"], "List");
            item_names(&list)
        }
    };
    assert_eq!(get(&["-l", "tier=fe"]).await, ["a", "c"]);
    assert_eq!(get(&["-l", "tier!=fe,app=shop"]).await, ["b", "d", "e"]);
    assert_eq!(
        get(&["-l", "tier in (fe,be),!canary"]).await,
        ["a", "b", "e"]
    );
    assert_eq!(
        get(&["-l", "tier notin (fe),canary"]).await,
        Vec::<String>::new()
    );
    assert_eq!(get(&["-l", "canary"]).await, ["c"]);
    assert_eq!(get(&["--field-selector", "metadata.name=d"]).await, ["d"]);
    assert_eq!(
        get(&["--field-selector", "metadata.name!=d", "-l", "tier=be"]).await,
        ["b", "e"]
    );
    assert_eq!(
        get(&[
            "--field-selector",
            "metadata.namespace=shop",
            "-l",
            "tier=db"
        ])
        .await,
        ["d"]
    );

    // One object as JSON: the data and the server-set metadata.
    let c = tc
        .kubectl_json(&["get", "configmap", "c", "-n", "shop", "-o", "json"])
        .await;
    assert_eq!(c["apiVersion"], "v1");
    assert_eq!(c["kind"], "ConfigMap");
    assert_eq!(c["data"], json!({"k": "c"}));
    assert_eq!(
        labels_of(&c),
        BTreeMap::from([
            ("app".into(), "shop".into()),
            ("canary".into(), "true".into()),
            ("tier".into(), "fe".into())
        ])
    );
    assert_eq!(c["metadata"]["namespace"], "shop");
    assert!(c["metadata"]["uid"].as_str().is_some_and(|u| u.len() == 36));
    assert!(
        c["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|r| r.parse::<u64>().is_ok())
    );

    // Pagination: five objects in pages of two are all returned, through three requests.
    let r = tc
        .kubectl(&[
            "get",
            "configmaps",
            "-n",
            "shop",
            "-l",
            "app=shop",
            "--chunk-size=2",
            "-o",
            "json",
            "-v=6",
        ])
        .await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let list: Value = serde_json::from_str(&r.stdout).expect("list JSON");
    assert_eq!(item_names(&list), ["a", "b", "c", "d", "e"]);
    let pages = r
        .stderr
        .lines()
        .filter(|l| l.contains("/api/v1/namespaces/shop/configmaps?") && l.contains("limit=2"))
        .count();
    assert_eq!(pages, 3, "three pages of at most two:\n{}", r.stderr);
    assert_eq!(
        r.stderr.matches("continue=").count(),
        2,
        "two continuations:\n{}",
        r.stderr
    );

    // The same through kube-rs.
    let api = Api::<ConfigMap>::namespaced(tc.client().await, "shop");
    let first = api
        .list(&ListParams::default().labels("app=shop").limit(2))
        .await
        .expect("first page");
    assert_eq!(first.items.len(), 2);
    let token = first.metadata.continue_.expect("a continue token");
    let second = api
        .list(
            &ListParams::default()
                .labels("app=shop")
                .limit(2)
                .continue_token(&token),
        )
        .await
        .expect("second page");
    let names: Vec<_> = second
        .items
        .iter()
        .map(|c| c.metadata.name.clone().expect("name"))
        .collect();
    assert_eq!(names, ["c", "d"]);
}

// 4 ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_and_kube_rs_patches_of_each_type() {
    let tc = TestCluster::start_api_only().await;
    let f = tc.file("web.yaml", &deployment_yaml("web", "    app: web", 1));
    tc.kubectl_ok(&["create", "-f", f.to_str().expect("utf-8")])
        .await;

    let out = tc
        .kubectl_ok(&[
            "patch",
            "deployment",
            "web",
            "--type=json",
            "-p",
            r#"[{"op":"replace","path":"/spec/replicas","value":3},{"op":"add","path":"/metadata/labels/patched","value":"json"}]"#,
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web patched");
    let d = tc
        .kubectl_json(&["get", "deploy", "web", "-o", "json"])
        .await;
    assert_eq!(d["spec"]["replicas"], 3);
    assert_eq!(d["metadata"]["labels"]["patched"], "json");
    assert_eq!(
        d["metadata"]["generation"], 2,
        "a spec change bumps generation"
    );

    tc.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=merge",
        "-p",
        r#"{"metadata":{"labels":{"patched":null,"merged":"yes"}},"spec":{"minReadySeconds":5}}"#,
    ])
    .await;
    let d = tc
        .kubectl_json(&["get", "deploy", "web", "-o", "json"])
        .await;
    assert_eq!(
        labels_of(&d),
        BTreeMap::from([
            ("app".into(), "web".into()),
            ("merged".into(), "yes".into())
        ])
    );
    assert_eq!(d["spec"]["minReadySeconds"], 5);
    assert_eq!(d["spec"]["replicas"], 3);

    // Strategic (kubectl's default): containers merge by name.
    tc.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"busybox:1.36"}]}}}}"#,
    ])
    .await;
    let d = tc
        .kubectl_json(&["get", "deploy", "web", "-o", "json"])
        .await;
    let mut names = container_names(&d);
    names.sort();
    assert_eq!(
        names,
        ["app", "sidecar"],
        "SMP keeps the existing container"
    );
    let containers = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    let app = containers
        .iter()
        .find(|c| c["name"] == "app")
        .expect("app container");
    assert_eq!(app["image"], "nginx:1.27");
    // Strategic: a patch of one container by name changes only that container.
    tc.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "--type=strategic",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"nginx:1.28"}]}}}}"#,
    ])
    .await;
    let d = tc
        .kubectl_json(&["get", "deploy", "web", "-o", "json"])
        .await;
    let images: BTreeMap<String, String> = d["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().expect("name").to_string(),
                c["image"].as_str().expect("image").to_string(),
            )
        })
        .collect();
    assert_eq!(
        images,
        BTreeMap::from([
            ("app".into(), "nginx:1.28".into()),
            ("sidecar".into(), "busybox:1.36".into())
        ])
    );
    // Strategic: `$patch: delete` removes one container by name.
    tc.kubectl_ok(&[
        "patch",
        "deployment",
        "web",
        "-p",
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","$patch":"delete"}]}}}}"#,
    ])
    .await;
    let d = tc
        .kubectl_json(&["get", "deploy", "web", "-o", "json"])
        .await;
    assert_eq!(container_names(&d), ["app"]);

    // kube-rs: each Patch variant.
    let api = Api::<Deployment>::namespaced(tc.client().await, "default");
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"replicas": 4}})),
        )
        .await
        .expect("merge patch");
    assert_eq!(p.spec.as_ref().and_then(|s| s.replicas), Some(4));
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "test", "path": "/spec/replicas", "value": 4},
                    {"op": "replace", "path": "/spec/replicas", "value": 5}
                ]))
                .expect("a JSON patch"),
            ),
        )
        .await
        .expect("json patch");
    assert_eq!(p.spec.as_ref().and_then(|s| s.replicas), Some(5));
    // A failing `test` op is rejected and changes nothing.
    let before = tc.store_state();
    let err = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Json::<()>(
                serde_json::from_value(json!([
                    {"op": "test", "path": "/spec/replicas", "value": 99},
                    {"op": "replace", "path": "/spec/replicas", "value": 6}
                ]))
                .expect("a JSON patch"),
            ),
        )
        .await
        .expect_err("failed test op");
    assert_eq!(api_error(err).code, 422);
    assert_eq!(tc.store_state(), before);
    let p = api
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": "logger", "image": "fluent-bit:3"}
            ]}}}})),
        )
        .await
        .expect("strategic patch");
    let names: Vec<String> = p
        .spec
        .expect("spec")
        .template
        .spec
        .expect("pod spec")
        .containers
        .into_iter()
        .map(|c| c.name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(sorted, ["app", "logger"], "got {names:?}");
    let p = api
        .patch(
            "web",
            &PatchParams::apply("kube-test").force(),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {"name": "web", "annotations": {"owner": "kube-test"}},
                "spec": {"replicas": 7}
            })),
        )
        .await
        .expect("apply patch");
    assert_eq!(p.spec.as_ref().and_then(|s| s.replicas), Some(7));
    assert_eq!(
        p.metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get("owner"))
            .map(String::as_str),
        Some("kube-test")
    );
    let mf = p.metadata.managed_fields.expect("managedFields");
    let applier = mf
        .iter()
        .find(|m| m.manager.as_deref() == Some("kube-test"))
        .expect("kube-test manages fields");
    assert_eq!(applier.operation.as_deref(), Some("Apply"));
}

// 5 ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_update_conflicts_through_kube_rs_and_kubectl_replace() {
    let tc = TestCluster::start_api_only().await;
    let api = Api::<ConfigMap>::namespaced(tc.client().await, "default");
    let mut cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "cfg"},
        "data": {"v": "1"}
    }))
    .expect("configmap");
    let old = api
        .create(&PostParams::default(), &cm)
        .await
        .expect("create");
    let old_rv = old.metadata.resource_version.clone().expect("rv");
    api.patch(
        "cfg",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .expect("patch");

    let before = tc.store_state();
    cm = old.clone();
    cm.data = Some(BTreeMap::from([("v".into(), "stale".into())]));
    let e = api_error(
        api.replace("cfg", &PostParams::default(), &cm)
            .await
            .expect_err("stale replace"),
    );
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(
        e.message,
        "Operation cannot be fulfilled on configmaps \"cfg\": the object has been modified; please apply your changes to the latest version and try again"
    );
    assert_eq!(tc.store_state(), before);

    let stale = format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\n  namespace: default\n  resourceVersion: \"{old_rv}\"\ndata:\n  v: stale\n"
    );
    let f = tc.file("stale.yaml", &stale);
    let f = f.to_str().expect("utf-8");
    let err = tc.kubectl_fails(&["replace", "-f", f]).await;
    assert!(
        err.contains(&format!(
            "Error from server (Conflict): error when replacing \"{f}\": Operation cannot be fulfilled on configmaps \"cfg\": the object has been modified; please apply your changes to the latest version and try again"
        )),
        "{err}"
    );
    assert_eq!(tc.store_state(), before);
    let now = api.get("cfg").await.expect("get");
    assert_eq!(now.data, Some(BTreeMap::from([("v".into(), "2".into())])));

    // With the current resourceVersion the same replace succeeds.
    let cur_rv = now.metadata.resource_version.expect("rv");
    tc.file("stale.yaml", &stale.replace(&old_rv, &cur_rv));
    assert_eq!(
        tc.kubectl_ok(&["replace", "-f", f]).await.trim(),
        "configmap/cfg replaced"
    );
    let now = api.get("cfg").await.expect("get");
    assert_eq!(
        now.data,
        Some(BTreeMap::from([("v".into(), "stale".into())]))
    );
}

// 6 ---------------------------------------------------------------------------------------------

fn manages_replicas(entry: &Value) -> bool {
    entry["fieldsV1"]["f:spec"]
        .as_object()
        .is_some_and(|s| s.contains_key("f:replicas"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_conflict_between_field_managers() {
    let tc = TestCluster::start_api_only().await;
    let alice = tc.file("alice.yaml", &deployment_yaml("web", "    app: web", 2));
    let bob = tc.file("bob.yaml", &deployment_yaml("web", "    app: web", 5));
    let (alice, bob) = (alice.to_str().expect("utf-8"), bob.to_str().expect("utf-8"));
    tc.kubectl_ok(&[
        "apply",
        "--server-side",
        "--field-manager=alice",
        "-f",
        alice,
    ])
    .await;

    let before = tc.store_state();
    let err = tc
        .kubectl_fails(&["apply", "--server-side", "--field-manager=bob", "-f", bob])
        .await;
    assert!(
        err.contains(r#"conflict with "alice": .spec.replicas"#),
        "names alice and .spec.replicas: {err}"
    );
    assert!(err.contains("Apply failed with 1 conflict"), "{err}");
    assert_eq!(tc.store_state(), before, "a conflict writes nothing");

    // The same conflict through kube-rs is a 409 with one cause naming the field.
    let api = Api::<Deployment>::namespaced(tc.client().await, "default");
    let e = api_error(
        api.patch(
            "web",
            &PatchParams::apply("bob"),
            &Patch::Apply(json!({
                "apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": "web"}, "spec": {"replicas": 5}
            })),
        )
        .await
        .expect_err("conflict"),
    );
    assert_eq!(e.code, 409);
    assert_eq!(e.reason, "Conflict");
    assert_eq!(
        e.message,
        r#"Apply failed with 1 conflict: conflict with "alice": .spec.replicas"#
    );
    let causes = e.details.expect("details").causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, ".spec.replicas");
    assert_eq!(causes[0].reason, "FieldManagerConflict");

    let out = tc
        .kubectl_ok(&[
            "apply",
            "--server-side",
            "--field-manager=bob",
            "--force-conflicts",
            "-f",
            bob,
        ])
        .await;
    assert_eq!(out.trim(), "deployment.apps/web serverside-applied");
    let d = tc
        .kubectl_json(&[
            "get",
            "deploy",
            "web",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    assert_eq!(d["spec"]["replicas"], 5);
    let mf = d["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields");
    let entry = |m: &str| {
        mf.iter()
            .find(|e| e["manager"] == m && e["operation"] == "Apply")
            .unwrap_or_else(|| panic!("{m} has an Apply entry in {mf:?}"))
    };
    assert!(manages_replicas(entry("bob")), "bob owns spec.replicas");
    assert!(
        !manages_replicas(entry("alice")),
        "alice lost spec.replicas"
    );
    // Both still own the fields they applied with the same value.
    assert!(entry("alice")["fieldsV1"]["f:spec"]["f:selector"].is_object());
    assert!(entry("bob")["fieldsV1"]["f:spec"]["f:selector"].is_object());
}

// 7 ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_sees_added_modified_deleted_in_order() {
    let tc = TestCluster::start().await;
    let api = Api::<ConfigMap>::namespaced(tc.client().await, "default");
    let list = api.list(&ListParams::default()).await.expect("list");
    let rv = list.metadata.resource_version.expect("list rv");
    let mut stream = api
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .expect("watch")
        .boxed();

    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "w"}, "data": {"v": "1"}}))
            .expect("configmap");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create");
    api.patch(
        "w",
        &PatchParams::default(),
        &Patch::Merge(json!({"data": {"v": "2"}})),
    )
    .await
    .expect("patch");
    api.delete("w", &DeleteParams::default())
        .await
        .expect("delete");

    let mut seen = Vec::new();
    let mut last_rv = rv.parse::<u64>().expect("numeric rv");
    while seen.len() < 3 {
        let ev = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .expect("an event within the bound")
            .expect("watch stream")
            .expect("stream open");
        let (kind, obj) = match ev {
            WatchEvent::Added(o) => ("ADDED", o),
            WatchEvent::Modified(o) => ("MODIFIED", o),
            WatchEvent::Deleted(o) => ("DELETED", o),
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Error(e) => panic!("watch error {e:?}"),
        };
        let orv: u64 = obj
            .metadata
            .resource_version
            .as_deref()
            .expect("rv")
            .parse()
            .expect("numeric rv");
        assert!(orv > last_rv, "resourceVersions increase");
        last_rv = orv;
        seen.push((
            kind,
            obj.metadata.name.expect("name"),
            obj.data.and_then(|d| d.get("v").cloned()),
        ));
    }
    assert_eq!(
        seen,
        [
            ("ADDED", "w".to_string(), Some("1".to_string())),
            ("MODIFIED", "w".to_string(), Some("2".to_string())),
            ("DELETED", "w".to_string(), Some("2".to_string())),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_runtime_watcher_follows_changes() {
    let tc = TestCluster::start().await;
    let api = Api::<ConfigMap>::namespaced(tc.client().await, "default");
    let pre: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "pre", "labels": {"w": "1"}}}))
            .expect("configmap");
    api.create(&PostParams::default(), &pre)
        .await
        .expect("create pre");
    let mut events = watcher(api.clone(), watcher::Config::default().labels("w=1")).boxed();
    let mut next = async || {
        tokio::time::timeout(WAIT, events.try_next())
            .await
            .expect("a watcher event within the bound")
            .expect("watcher ok")
            .expect("watcher open")
    };
    assert!(matches!(next().await, watcher::Event::Init));
    match next().await {
        watcher::Event::InitApply(o) => assert_eq!(o.metadata.name.as_deref(), Some("pre")),
        other => panic!("expected InitApply(pre), got {other:?}"),
    }
    assert!(matches!(next().await, watcher::Event::InitDone));

    let cm: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "live", "labels": {"w": "1"}}}))
            .expect("configmap");
    api.create(&PostParams::default(), &cm)
        .await
        .expect("create live");
    // Not matching the selector: never delivered.
    let other: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "other"}})).expect("configmap");
    api.create(&PostParams::default(), &other)
        .await
        .expect("create other");
    api.delete("live", &DeleteParams::default())
        .await
        .expect("delete live");
    match next().await {
        watcher::Event::Apply(o) => assert_eq!(o.metadata.name.as_deref(), Some("live")),
        other => panic!("expected Apply(live), got {other:?}"),
    }
    match next().await {
        watcher::Event::Delete(o) => assert_eq!(o.metadata.name.as_deref(), Some("live")),
        other => panic!("expected Delete(live), got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_from_a_compacted_resource_version_is_gone() {
    let tc = TestCluster::start_with(|c| c.watch_window = 4).await;
    let api = Api::<ConfigMap>::namespaced(tc.client().await, "default");
    let rv = api
        .list(&ListParams::default())
        .await
        .expect("list")
        .metadata
        .resource_version
        .expect("rv");
    for i in 0..10 {
        let cm: ConfigMap = serde_json::from_value(json!({"metadata": {"name": format!("c{i}")}}))
            .expect("configmap");
        api.create(&PostParams::default(), &cm)
            .await
            .expect("create");
    }
    let status = match api.watch(&WatchParams::default().timeout(30), &rv).await {
        Err(e) => api_error(e),
        Ok(stream) => {
            let mut stream = stream.boxed();
            let ev = tokio::time::timeout(WAIT, stream.try_next())
                .await
                .expect("an event within the bound");
            match ev {
                Ok(Some(WatchEvent::Error(s))) => s,
                Err(e) => api_error(e),
                other => panic!("expected 410 Gone, got {other:?}"),
            }
        }
    };
    assert_eq!(status.code, 410);
    assert_eq!(status.reason, "Expired");
    assert!(
        status
            .message
            .starts_with(&format!("too old resource version: {rv} (")),
        "{}",
        status.message
    );
    // A watch from the current resourceVersion still works.
    let cur = tc.store_state().0.to_string();
    let mut stream = api
        .watch(&WatchParams::default().timeout(30), &cur)
        .await
        .expect("watch from now")
        .boxed();
    api.delete("c0", &DeleteParams::default())
        .await
        .expect("delete");
    loop {
        match tokio::time::timeout(WAIT, stream.try_next())
            .await
            .expect("event")
            .expect("ok")
            .expect("open")
        {
            WatchEvent::Bookmark(_) => continue,
            WatchEvent::Deleted(o) => {
                assert_eq!(o.metadata.name.as_deref(), Some("c0"));
                break;
            }
            other => panic!("expected DELETED c0, got {other:?}"),
        }
    }
}

// 8 ---------------------------------------------------------------------------------------------

async fn make_family(api: &Api<ConfigMap>, owner: &str, deps: &[&str]) -> (String, Vec<String>) {
    let o: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": owner}})).expect("configmap");
    let o = api
        .create(&PostParams::default(), &o)
        .await
        .expect("create owner");
    let uid = o.metadata.uid.expect("owner uid");
    let mut uids = Vec::new();
    for d in deps {
        let dep: ConfigMap = serde_json::from_value(json!({"metadata": {
            "name": d,
            "ownerReferences": [{
                "apiVersion": "v1", "kind": "ConfigMap", "name": owner, "uid": uid,
                "blockOwnerDeletion": true
            }]
        }}))
        .expect("dependent");
        let dep = api
            .create(&PostParams::default(), &dep)
            .await
            .expect("create dependent");
        uids.push(dep.metadata.uid.expect("dependent uid"));
    }
    (uid, uids)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_background_collects_dependents() {
    let tc = TestCluster::start().await;
    let api = Api::<ConfigMap>::namespaced(tc.client().await, "default");
    let (_, uids) = make_family(&api, "owner", &["dep-1", "dep-2"]).await;
    let out = tc.kubectl_ok(&["delete", "configmap", "owner"]).await;
    assert_eq!(out.trim(), "configmap \"owner\" deleted");
    for (name, uid) in ["dep-1", "dep-2"].iter().zip(&uids) {
        tokio::time::timeout(
            WAIT,
            await_condition(api.clone(), name, conditions::is_deleted(uid)),
        )
        .await
        .expect("the dependent is collected within the bound")
        .expect("await_condition");
    }
    assert!(api.get_opt("owner").await.expect("get").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_orphan_keeps_dependents_without_owner_references() {
    let tc = TestCluster::start().await;
    let api = Api::<ConfigMap>::namespaced(tc.client().await, "default");
    let (owner_uid, _) = make_family(&api, "owner", &["dep-1", "dep-2"]).await;
    // An unrelated owner reference is kept.
    let other = make_family(&api, "other", &[]).await.0;
    api.patch(
        "dep-2",
        &PatchParams::default(),
        &Patch::Json::<()>(
            serde_json::from_value(json!([{"op": "add", "path": "/metadata/ownerReferences/-",
                "value": {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": other}}]))
            .expect("json patch"),
        ),
    )
    .await
    .expect("second owner");
    tc.kubectl_ok(&["delete", "configmap", "owner", "--cascade=orphan"])
        .await;
    tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), "owner", conditions::is_deleted(&owner_uid)),
    )
    .await
    .expect("owner deleted within the bound")
    .expect("await_condition");
    let d1 = api.get("dep-1").await.expect("dep-1 kept");
    assert_eq!(d1.metadata.owner_references, None);
    let d2 = api.get("dep-2").await.expect("dep-2 kept");
    let refs: Vec<String> = d2
        .metadata
        .owner_references
        .expect("the other owner reference")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(refs, ["other"]);
}

/// As kube-controller-manager's garbage collector: an owner is looked up in its dependent's
/// namespace, so a dependent naming an owner in another namespace (or one that does not
/// exist) is collected at once, while a cluster-scoped dependent naming a namespaced owner is
/// unresolvable and never collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owners_in_another_namespace_count_as_absent() {
    use k8s_openapi::api::rbac::v1::ClusterRole;
    let tc = TestCluster::start().await;
    let client = tc.client().await;
    tc.kubectl_ok(&["create", "namespace", "elsewhere"]).await;
    let here = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let there = Api::<ConfigMap>::namespaced(client.clone(), "elsewhere");
    let (owner_uid, _) = make_family(&here, "owner", &["marker"]).await;
    let owned_by =
        |uid: &str| json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": uid}]);
    let create = |name: &str, refs: Value| {
        let cm: ConfigMap =
            serde_json::from_value(json!({"metadata": {"name": name, "ownerReferences": refs}}))
                .expect("configmap");
        cm
    };
    let far = there
        .create(&PostParams::default(), &create("far", owned_by(&owner_uid)))
        .await
        .expect("a dependent in another namespace is accepted");
    let ghost = here
        .create(
            &PostParams::default(),
            &create("ghost", owned_by("00000000-0000-0000-0000-000000000000")),
        )
        .await
        .expect("a dependent of a missing owner is accepted");
    for (api, o) in [(&there, &far), (&here, &ghost)] {
        let (name, uid) = (
            o.metadata.name.clone().expect("name"),
            o.metadata.uid.clone().expect("uid"),
        );
        tokio::time::timeout(
            WAIT,
            await_condition(api.clone(), &name, conditions::is_deleted(&uid)),
        )
        .await
        .expect("the dependent is collected within the bound")
        .expect("await_condition");
    }
    // A cluster-scoped dependent of a namespaced owner outlives it.
    let roles = Api::<ClusterRole>::all(client.clone());
    let role: ClusterRole = serde_json::from_value(json!({"metadata": {
        "name": "dangling", "ownerReferences": owned_by(&owner_uid)}}))
    .expect("clusterrole");
    roles
        .create(&PostParams::default(), &role)
        .await
        .expect("create");
    let marker = here
        .get("marker")
        .await
        .expect("the same-namespace dependent stays");
    tc.kubectl_ok(&["delete", "configmap", "owner"]).await;
    // The same-namespace dependent goes with its owner; by then the collector has seen the
    // cluster-scoped one too.
    tokio::time::timeout(
        WAIT,
        await_condition(
            here.clone(),
            "marker",
            conditions::is_deleted(&marker.metadata.uid.expect("uid")),
        ),
    )
    .await
    .expect("collected within the bound")
    .expect("await_condition");
    assert!(
        roles.get_opt("dangling").await.expect("get").is_some(),
        "an unresolvable owner reference never collects"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_foreground_removes_owner_after_dependents() {
    let tc = TestCluster::start().await;
    let api = Api::<ConfigMap>::namespaced(tc.client().await, "default");
    let (owner_uid, _) = make_family(&api, "owner", &["dep-1", "dep-2"]).await;
    let rv = tc.store_state().0.to_string();
    let mut stream = api
        .watch(&WatchParams::default().timeout(60), &rv)
        .await
        .expect("watch")
        .boxed();
    let out = tc
        .kubectl_ok(&["delete", "configmap", "owner", "--cascade=foreground"])
        .await;
    assert_eq!(out.trim(), "configmap \"owner\" deleted");
    let mut log = Vec::new();
    loop {
        let ev = tokio::time::timeout(WAIT, stream.try_next())
            .await
            .expect("an event within the bound")
            .expect("watch")
            .expect("open");
        match ev {
            WatchEvent::Modified(o) => {
                let name = o.metadata.name.clone().expect("name");
                if name == "owner" {
                    assert!(o.metadata.deletion_timestamp.is_some());
                    assert!(
                        o.metadata
                            .finalizers
                            .as_ref()
                            .is_some_and(|f| f.contains(&"foregroundDeletion".to_string())),
                        "the owner waits with the foregroundDeletion finalizer"
                    );
                    log.push(format!("MODIFIED {name}"));
                }
            }
            WatchEvent::Deleted(o) => {
                let name = o.metadata.name.clone().expect("name");
                log.push(format!("DELETED {name}"));
                if name == "owner" {
                    assert_eq!(o.metadata.uid.as_deref(), Some(owner_uid.as_str()));
                    break;
                }
            }
            _ => {}
        }
    }
    assert_eq!(log.first().map(String::as_str), Some("MODIFIED owner"));
    assert_eq!(log.last().map(String::as_str), Some("DELETED owner"));
    let mut middle: Vec<&str> = log[1..log.len() - 1].iter().map(String::as_str).collect();
    middle.dedup();
    middle.retain(|l| l.starts_with("DELETED"));
    middle.sort();
    assert_eq!(middle, ["DELETED dep-1", "DELETED dep-2"], "log {log:?}");
}

// 9 ---------------------------------------------------------------------------------------------

const WIDGET_CRD: &str = r#"apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names:
    plural: widgets
    singular: widget
    kind: Widget
    listKind: WidgetList
    shortNames: [wd]
  versions:
  - name: v1
    served: true
    storage: true
    subresources:
      status: {}
      scale:
        specReplicasPath: .spec.replicas
        statusReplicasPath: .status.replicas
    additionalPrinterColumns:
    - name: Size
      type: integer
      jsonPath: .spec.size
    - name: Color
      type: string
      jsonPath: .spec.color
    - name: Ready
      type: string
      jsonPath: .status.ready
    - name: Age
      type: date
      jsonPath: .metadata.creationTimestamp
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            required: [size]
            properties:
              size:
                type: integer
              color:
                type: string
              replicas:
                type: integer
          status:
            type: object
            properties:
              ready:
                type: string
              replicas:
                type: integer
"#;

/// As kube-apiserver: a new CRD is `Established` by a later write, once its resource is
/// served (the establishing controller's), so a watcher sees it first without the condition,
/// and a client that waits for the condition lists the resource at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crd_is_established_only_once_its_resource_is_served() {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let tc = TestCluster::start().await;
    let client = tc.client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let established = |c: &CustomResourceDefinition| {
        c.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| {
                cs.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
            })
    };
    for i in 0..3 {
        let plural = format!("gadgets{i}");
        let name = format!("{plural}.example.com");
        let mut events = watcher(crds.clone(), watcher::Config::default()).boxed();
        // The watch is running (its first list is done) before the CRD is created.
        tokio::time::timeout(WAIT, async {
            while let Some(ev) = events.try_next().await.expect("watch") {
                if matches!(ev, watcher::Event::InitDone) {
                    return;
                }
            }
        })
        .await
        .expect("the first list within the bound");
        let named = |ev: watcher::Event<CustomResourceDefinition>| match ev {
            watcher::Event::Apply(c) if c.metadata.name.as_deref() == Some(name.as_str()) => {
                Some(c)
            }
            _ => None,
        };
        let mut events = events.try_filter_map(|ev| std::future::ready(Ok(named(ev))));
        let yaml = WIDGET_CRD
            .replace("widgets.example.com", &name)
            .replace("plural: widgets", &format!("plural: {plural}"))
            .replace("singular: widget", &format!("singular: gadget{i}"))
            .replace("kind: Widget", &format!("kind: Gadget{i}"))
            .replace("listKind: WidgetList", &format!("listKind: Gadget{i}List"))
            .replace("shortNames: [wd]", "shortNames: []");
        let f = tc.file(&format!("{plural}.yaml"), &yaml);
        let args = ["create", "-f", f.to_str().expect("utf-8")];
        let create = tc.kubectl_ok(&args);
        let (out, first) =
            tokio::time::timeout(WAIT, futures::future::join(create, events.try_next()))
                .await
                .expect("created and seen within the bound");
        assert!(out.contains("created"), "{out}");
        let first = first.expect("watch").expect("an event");
        assert!(
            !established(&first),
            "seen before it is established: {:?}",
            first.status
        );
        let seen = tokio::time::timeout(WAIT, async {
            while let Some(c) = events.try_next().await.expect("watch") {
                if established(&c) {
                    return c;
                }
            }
            panic!("the watch ended")
        })
        .await
        .expect("established within the bound");
        assert_eq!(seen.metadata.name.as_deref(), Some(name.as_str()));
        let ar = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("example.com", "v1", &format!("Gadget{i}")),
            &plural,
        );
        Api::<DynamicObject>::all_with(client.clone(), &ar)
            .list(&ListParams::default())
            .await
            .unwrap_or_else(|e| panic!("{plural} is established but not served: {e}"));
    }
}

fn widget_ar() -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("example.com", "v1", "Widget"),
        "widgets",
    )
}

async fn install_widgets(tc: &TestCluster) {
    let f = tc.file("crd.yaml", WIDGET_CRD);
    let out = tc
        .kubectl_ok(&["apply", "-f", f.to_str().expect("utf-8")])
        .await;
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com created"
    );
    let out = tc
        .kubectl_ok(&[
            "wait",
            "--for",
            "condition=established",
            "--timeout=30s",
            "crd/widgets.example.com",
        ])
        .await;
    assert_eq!(
        out.trim(),
        "customresourcedefinition.apiextensions.k8s.io/widgets.example.com condition met"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_custom_resources_with_status_scale_and_printer_columns() {
    let tc = TestCluster::start_api_only().await;
    install_widgets(&tc).await;

    let w1 = "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n  color: blue\n  replicas: 1\n";
    let f = tc.file("w1.yaml", w1);
    let f = f.to_str().expect("utf-8");
    assert_eq!(
        tc.kubectl_ok(&["create", "-f", f]).await.trim(),
        "widget.example.com/w1 created"
    );
    let out = tc.kubectl_ok(&["get", "wd"]).await;
    let rows = table_columns(&out);
    assert_eq!(rows[0], ["NAME", "SIZE", "COLOR", "READY", "AGE"], "{out}");
    assert_eq!(rows[1][..4], ["w1", "3", "blue", ""], "{out}");

    // An update of the main resource ignores status.
    let mut w = tc
        .kubectl_json(&["get", "widget", "w1", "-o", "json"])
        .await;
    assert_eq!(w["metadata"]["generation"], 1);
    w["spec"]["color"] = json!("red");
    w["status"] = json!({"ready": "sneaky"});
    let wf = tc.file("w1-update.json", &w.to_string());
    assert_eq!(
        tc.kubectl_ok(&["replace", "-f", wf.to_str().expect("utf-8")])
            .await
            .trim(),
        "widget.example.com/w1 replaced"
    );
    let w = tc
        .kubectl_json(&["get", "widget", "w1", "-o", "json"])
        .await;
    assert_eq!(w["spec"]["color"], "red");
    assert_eq!(
        w.get("status"),
        None,
        "status is not written through the main resource"
    );
    assert_eq!(w["metadata"]["generation"], 2);

    // The status subresource sets status and leaves spec and generation alone.
    tc.kubectl_ok(&[
        "patch",
        "widget",
        "w1",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"ready":"yes","replicas":1},"spec":{"color":"green"}}"#,
    ])
    .await;
    let w = tc
        .kubectl_json(&["get", "widget", "w1", "-o", "json"])
        .await;
    assert_eq!(w["status"], json!({"ready": "yes", "replicas": 1}));
    assert_eq!(w["spec"]["color"], "red");
    assert_eq!(w["metadata"]["generation"], 2);
    let rows = table_columns(&tc.kubectl_ok(&["get", "wd", "w1"]).await);
    assert_eq!(rows[1][..4], ["w1", "3", "red", "yes"]);

    // Scale through the scale subresource.
    assert_eq!(
        tc.kubectl_ok(&["scale", "widget", "w1", "--replicas=4"])
            .await
            .trim(),
        "widget.example.com/w1 scaled"
    );
    let scale = tc
        .kubectl_json(&[
            "get",
            "--raw",
            "/apis/example.com/v1/namespaces/default/widgets/w1/scale",
        ])
        .await;
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["apiVersion"], "autoscaling/v1");
    assert_eq!(scale["spec"]["replicas"], 4);
    assert_eq!(scale["status"]["replicas"], 1);
    let w = tc
        .kubectl_json(&["get", "widget", "w1", "-o", "json"])
        .await;
    assert_eq!(w["spec"]["replicas"], 4);

    // kube-rs: update through the dynamic API, and its status subresource.
    let api: Api<DynamicObject> = Api::namespaced_with(tc.client().await, "default", &widget_ar());
    let mut obj = api.get("w1").await.expect("get w1");
    obj.data["spec"]["size"] = json!(9);
    let obj = api
        .replace("w1", &PostParams::default(), &obj)
        .await
        .expect("replace w1");
    assert_eq!(obj.data["spec"]["size"], 9);
    let obj = api
        .patch_status(
            "w1",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"ready": "no"}})),
        )
        .await
        .expect("patch status");
    assert_eq!(obj.data["status"]["ready"], "no");

    // A custom resource missing a required field is invalid and not stored.
    let before = tc.store_state();
    let bad = tc.file(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: bad\nspec:\n  color: red\n",
    );
    let err = tc
        .kubectl_fails(&["create", "-f", bad.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"The Widget "bad" is invalid: spec.size: Required value"#),
        "{err}"
    );
    let e = api_error(
        api.create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "bad"}, "spec": {"color": "red"}
            }))
            .expect("dynamic object"),
        )
        .await
        .expect_err("invalid"),
    );
    assert_eq!(e.code, 422);
    assert_eq!(e.reason, "Invalid");
    let causes = e.details.expect("details").causes;
    assert_eq!(causes.len(), 1);
    assert_eq!(causes[0].field, "spec.size");
    assert_eq!(causes[0].reason, "FieldValueRequired");
    assert_eq!(tc.store_state(), before);

    assert_eq!(
        tc.kubectl_ok(&["delete", "wd", "w1"]).await.trim(),
        "widget.example.com \"w1\" deleted"
    );
    let err = tc.kubectl_fails(&["get", "widget", "w1"]).await;
    assert!(
        err.contains(r#"Error from server (NotFound): widgets.example.com "w1" not found"#),
        "{err}"
    );
}

// 10 --------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_gets_apiserver_errors_and_changes_nothing() {
    let tc = TestCluster::start_api_only().await;
    tc.kubectl_ok(&["create", "configmap", "keep", "--from-literal=k=v"])
        .await;
    let before = tc.store_state();
    let cms = "/api/v1/namespaces/default/configmaps";

    let check = |what: &str, r: &common::RawResponse, code: u16, reason: &str| {
        assert_eq!(r.code, code, "{what}: {}", r.text);
        assert_eq!(r.body["kind"], "Status", "{what}: {}", r.text);
        assert_eq!(r.body["status"], "Failure", "{what}");
        assert_eq!(r.body["code"], code, "{what}");
        assert_eq!(r.body["reason"], reason, "{what}");
    };

    let r = tc
        .raw(
            "POST",
            cms,
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"x"}"#.to_vec(),
        )
        .await;
    check("malformed JSON create", &r, 400, "BadRequest");
    assert_eq!(tc.store_state(), before);

    let r = tc
        .raw(
            "PUT",
            &format!("{cms}/keep"),
            "application/json",
            b"{not json".to_vec(),
        )
        .await;
    check("malformed JSON update", &r, 400, "BadRequest");
    assert_eq!(tc.store_state(), before);

    let r = tc
        .raw(
            "PATCH",
            &format!("{cms}/keep?fieldManager=t"),
            "application/apply-patch+yaml",
            b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: keep\ndata:\n  - : [".to_vec(),
        )
        .await;
    check("malformed YAML apply", &r, 400, "BadRequest");
    assert_eq!(tc.store_state(), before);

    let r = tc
        .raw(
            "PATCH",
            &format!("{cms}/keep"),
            "application/merge-patch+json",
            b"{\"data\": ".to_vec(),
        )
        .await;
    check("malformed merge patch", &r, 400, "BadRequest");
    assert_eq!(tc.store_state(), before);

    let r = tc
        .raw(
            "POST",
            "/apis/nope.example.com/v1/namespaces/default/things",
            "application/json",
            br#"{"apiVersion":"nope.example.com/v1","kind":"Thing","metadata":{"name":"t"}}"#
                .to_vec(),
        )
        .await;
    check("unknown group", &r, 404, "NotFound");
    assert_eq!(
        r.body["message"],
        "the server could not find the requested resource"
    );
    assert_eq!(tc.store_state(), before);
    let f = tc.file(
        "thing.yaml",
        "apiVersion: nope.example.com/v1\nkind: Thing\nmetadata:\n  name: t\n",
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", f.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"no matches for kind "Thing" in version "nope.example.com/v1""#),
        "{err}"
    );

    let r = tc
        .raw(
            "POST",
            cms,
            "application/json",
            br#"{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"Bad_Name"}}"#.to_vec(),
        )
        .await;
    check("invalid name", &r, 422, "Invalid");
    let cause = &r.body["details"]["causes"][0];
    assert_eq!(cause["field"], "metadata.name");
    assert_eq!(cause["reason"], "FieldValueInvalid");
    assert_eq!(
        r.body["message"],
        r#"ConfigMap "Bad_Name" is invalid: metadata.name: Invalid value: "Bad_Name": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"#
    );
    assert_eq!(tc.store_state(), before);

    let big = format!(
        r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"big"}},"data":{{"k":"{}"}}}}"#,
        "x".repeat(3 * 1024 * 1024 + 1)
    );
    let r = tc
        .raw("POST", cms, "application/json", big.into_bytes())
        .await;
    check("body over 3 MiB", &r, 413, "RequestEntityTooLarge");
    assert_eq!(
        r.body["message"],
        "Request entity too large: limit is 3145728"
    );
    assert_eq!(tc.store_state(), before);

    let r = tc
        .raw(
            "POST",
            "/apis/apps/v1/namespaces/default/deployments",
            "application/json",
            json!({
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "nosel"},
                "spec": {"template": {"metadata": {"labels": {"app": "x"}},
                    "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}
            })
            .to_string()
            .into_bytes(),
        )
        .await;
    check("deployment without selector", &r, 422, "Invalid");
    assert_eq!(r.body["details"]["name"], "nosel");
    assert_eq!(r.body["details"]["group"], "apps");
    assert_eq!(r.body["details"]["kind"], "Deployment");
    let causes = r.body["details"]["causes"].as_array().expect("causes");
    assert!(
        causes
            .iter()
            .any(|c| c["field"] == "spec.selector" && c["reason"] == "FieldValueRequired"),
        "{causes:?}"
    );
    assert!(
        r.body["message"]
            .as_str()
            .is_some_and(|m| m.starts_with(r#"Deployment.apps "nosel" is invalid: "#)
                && m.contains("spec.selector: Required value")),
        "{}",
        r.body["message"]
    );
    assert_eq!(tc.store_state(), before);

    // The same through kubectl create --raw.
    let f = tc.file("broken.json", "{\"apiVersion\": \"v1\", \"kind\":");
    let err = tc
        .kubectl_fails(&["create", "--raw", cms, "-f", f.to_str().expect("utf-8")])
        .await;
    assert!(err.contains("Error from server (BadRequest)"), "{err}");
    assert_eq!(tc.store_state(), before);

    // And nothing was created.
    let list = tc.kubectl_json(&["get", "configmaps", "-o", "json"]).await;
    assert_eq!(item_names(&list), ["keep"]);
}

// 11 --------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_objects_survive_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().join("data");
    let data2 = data.clone();
    let tc = TestCluster::start_in(dir, move |c| {
        c.data_dir = Some(data2);
        c.simulation.enabled = false;
    })
    .await;
    install_widgets(&tc).await;
    tc.kubectl_ok(&["create", "configmap", "kept", "--from-literal=k=v"])
        .await;
    let wf = tc.file(
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 2\n  color: teal\n",
    );
    tc.kubectl_ok(&["create", "-f", wf.to_str().expect("utf-8")])
        .await;
    let cm = tc
        .kubectl_json(&["get", "configmap", "kept", "-o", "json"])
        .await;
    let w = tc
        .kubectl_json(&["get", "widget", "w1", "-o", "json"])
        .await;
    let (rv, len) = tc.store_state();

    let dir = tc.stop().await;
    let data2 = data.clone();
    let tc = TestCluster::start_in(dir, move |c| {
        c.data_dir = Some(data2);
        c.simulation.enabled = false;
    })
    .await;
    assert_eq!(
        tc.store_state(),
        (rv, len),
        "same resourceVersion and objects"
    );
    let cm2 = tc
        .kubectl_json(&["get", "configmap", "kept", "-o", "json"])
        .await;
    assert_eq!(
        cm2, cm,
        "the object is unchanged, uid and resourceVersion included"
    );
    let w2 = tc
        .kubectl_json(&["get", "widget", "w1", "-o", "json"])
        .await;
    assert_eq!(w2, w);
    let rows = table_columns(&tc.kubectl_ok(&["get", "wd"]).await);
    assert_eq!(rows[0], ["NAME", "SIZE", "COLOR", "READY", "AGE"]);
    assert_eq!(rows[1][..3], ["w1", "2", "teal"]);
    // Writes after the restart continue the resourceVersion sequence.
    tc.kubectl_ok(&["label", "configmap", "kept", "after=restart"])
        .await;
    let cm3 = tc
        .kubectl_json(&["get", "configmap", "kept", "-o", "json"])
        .await;
    let rv3: u64 = cm3["metadata"]["resourceVersion"]
        .as_str()
        .expect("rv")
        .parse()
        .expect("numeric");
    assert!(rv3 > rv, "{rv3} > {rv}");
    // A fresh in-memory cluster does not see them.
    let fresh = TestCluster::start().await;
    let err = fresh.kubectl_fails(&["get", "configmap", "kept"]).await;
    assert!(err.contains(r#"configmaps "kept" not found"#), "{err}");
}

// 12 --------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_lists_resources_short_names_and_subresources() {
    let tc = TestCluster::start().await;
    let out = tc.kubectl_ok(&["api-resources"]).await;
    let rows = table_columns(&out);
    assert_eq!(
        rows[0],
        ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    );
    let row = |name: &str| {
        rows.iter()
            .find(|r| r[0] == name)
            .unwrap_or_else(|| panic!("{name} in api-resources:\n{out}"))
            .clone()
    };
    assert_eq!(
        row("deployments"),
        ["deployments", "deploy", "apps/v1", "true", "Deployment"]
    );
    assert_eq!(
        row("namespaces"),
        ["namespaces", "ns", "v1", "false", "Namespace"]
    );
    assert_eq!(
        row("configmaps"),
        ["configmaps", "cm", "v1", "true", "ConfigMap"]
    );
    assert_eq!(
        row("customresourcedefinitions"),
        [
            "customresourcedefinitions",
            "crd,crds",
            "apiextensions.k8s.io/v1",
            "false",
            "CustomResourceDefinition"
        ]
    );

    let apps = tc.kubectl_json(&["get", "--raw", "/apis/apps/v1"]).await;
    assert_eq!(apps["kind"], "APIResourceList");
    assert_eq!(apps["groupVersion"], "apps/v1");
    let res = apps["resources"].as_array().expect("resources");
    let find = |n: &str| {
        res.iter()
            .find(|r| r["name"] == n)
            .unwrap_or_else(|| panic!("{n} in /apis/apps/v1"))
    };
    let d = find("deployments");
    assert_eq!(d["kind"], "Deployment");
    assert_eq!(d["namespaced"], true);
    assert_eq!(d["shortNames"], json!(["deploy"]));
    let mut verbs: Vec<&str> = d["verbs"]
        .as_array()
        .expect("verbs")
        .iter()
        .map(|v| v.as_str().expect("verb"))
        .collect();
    verbs.sort();
    assert_eq!(
        verbs,
        [
            "create",
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "update",
            "watch"
        ]
    );
    assert_eq!(find("deployments/status")["kind"], "Deployment");
    let scale = find("deployments/scale");
    assert_eq!(scale["kind"], "Scale");
    assert_eq!(scale["group"], "autoscaling");
    assert_eq!(scale["version"], "v1");

    // A CRD's type shows up in discovery with its short name.
    install_widgets(&tc).await;
    let out = tc
        .kubectl_ok(&["api-resources", "--api-group=example.com"])
        .await;
    let rows = table_columns(&out);
    assert_eq!(
        rows[1],
        ["widgets", "wd", "example.com/v1", "true", "Widget"]
    );
}

// 13 --------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_tables_for_deployments_pods_and_events() {
    let tc = TestCluster::start().await;
    let client = tc.client().await;
    let f = tc.file("web.yaml", &deployment_yaml("web", "    app: web", 2));
    tc.kubectl_ok(&["create", "-f", f.to_str().expect("utf-8")])
        .await;
    // The simulated controllers roll the Deployment out; wait until it is available.
    let deploys = Api::<Deployment>::namespaced(client.clone(), "default");
    tokio::time::timeout(
        WAIT,
        await_condition(deploys, "web", |d: Option<&Deployment>| {
            d.and_then(|d| d.status.as_ref())
                .is_some_and(|s| s.available_replicas == Some(2) && s.updated_replicas == Some(2))
        }),
    )
    .await
    .expect("web becomes available within the bound")
    .expect("await_condition");
    let out = tc.kubectl_ok(&["get", "deploy"]).await;
    let rows = table_columns(&out);
    assert_eq!(
        rows[0],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"],
        "{out}"
    );
    assert_eq!(rows[1][..4], ["web", "2/2", "2", "2"], "{out}");
    let out = tc.kubectl_ok(&["get", "deploy", "-o", "wide"]).await;
    let rows = table_columns(&out);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "READY",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE",
            "CONTAINERS",
            "IMAGES",
            "SELECTOR"
        ],
        "{out}"
    );
    assert_eq!(rows[1][5..], ["app", "nginx:1.27", "app=web"], "{out}");

    let pod = tc.file(
        "pod.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: solo\nspec:\n  containers:\n  - name: c\n    image: busybox:1.36\n",
    );
    tc.kubectl_ok(&["create", "-f", pod.to_str().expect("utf-8")])
        .await;
    let pods = Api::<Pod>::namespaced(client.clone(), "default");
    let solo = tokio::time::timeout(
        WAIT,
        await_condition(pods, "solo", |p: Option<&Pod>| {
            p.and_then(|p| p.status.as_ref())
                .and_then(|s| s.container_statuses.as_ref())
                .is_some_and(|cs| cs.iter().all(|c| c.ready))
        }),
    )
    .await
    .expect("solo becomes ready within the bound")
    .expect("await_condition")
    .expect("solo exists");
    let status = solo.status.expect("status");
    let out = tc.kubectl_ok(&["get", "pods", "-o", "wide"]).await;
    let rows = table_columns(&out);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "READY",
            "STATUS",
            "RESTARTS",
            "AGE",
            "IP",
            "NODE",
            "NOMINATED NODE",
            "READINESS GATES"
        ],
        "{out}"
    );
    assert_eq!(rows.len(), 4, "two web pods and solo:\n{out}");
    let row = rows
        .iter()
        .find(|r| r[0] == "solo")
        .unwrap_or_else(|| panic!("solo in {out}"));
    let ip = status.pod_ip.expect("a running pod has an IP");
    let node = solo
        .spec
        .expect("spec")
        .node_name
        .expect("a running pod is bound");
    assert_eq!(
        row[1..],
        [
            "1/1",
            "Running",
            "0",
            row[4].as_str(),
            &ip,
            &node,
            "<none>",
            "<none>"
        ],
        "{out}"
    );
    for web in rows[1..].iter().filter(|r| r[0].starts_with("web-")) {
        assert_eq!(web[1..4], ["1/1", "Running", "0"], "{out}");
    }

    let ev = tc.file(
        "event.yaml",
        "apiVersion: v1\nkind: Event\nmetadata:\n  name: solo.audit\ninvolvedObject:\n  apiVersion: v1\n  kind: Pod\n  name: solo\n  namespace: default\nreason: Audited\nmessage: checked by the scenario test\ntype: Warning\nsource:\n  component: tester\ncount: 1\nfirstTimestamp: \"2025-01-01T00:00:00Z\"\nlastTimestamp: \"2025-01-01T00:00:00Z\"\n",
    );
    tc.kubectl_ok(&["create", "-f", ev.to_str().expect("utf-8")])
        .await;
    let out = tc.kubectl_ok(&["get", "events"]).await;
    let rows = table_columns(&out);
    assert_eq!(
        rows[0],
        ["LAST SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"],
        "{out}"
    );
    let audit = rows
        .iter()
        .find(|r| r[2] == "Audited")
        .unwrap_or_else(|| panic!("the Audited event in {out}"));
    assert_eq!(
        audit[1..],
        [
            "Warning",
            "Audited",
            "pod/solo",
            "checked by the scenario test"
        ]
    );
    assert!(
        audit[0].ends_with('d') || audit[0].ends_with('y'),
        "an event from 2025-01-01 was last seen days or years ago: {:?}",
        audit[0]
    );
    // The controllers' own events show up too: the ReplicaSet scaled by the Deployment.
    assert!(
        rows.iter()
            .any(|r| r[2] == "ScalingReplicaSet" && r[3] == "deployment/web"),
        "{out}"
    );
}

// Regressions -----------------------------------------------------------------------------------

/// Server-side apply of an object that did not exist checked its namespace from inside the
/// store's write lock, which deadlocked the whole dev cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_side_apply_create_does_not_deadlock() {
    let tc = TestCluster::start_api_only().await;
    let client = tc.client().await;
    let api = Api::<ConfigMap>::namespaced(client.clone(), "default");
    let applied = tokio::time::timeout(
        WAIT,
        api.patch(
            "fresh",
            &PatchParams::apply("tester"),
            &Patch::Apply(json!({
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "fresh"}, "data": {"k": "v"}
            })),
        ),
    )
    .await
    .expect("apply-create answers within the bound")
    .expect("apply-create");
    assert_eq!(
        applied.data,
        Some(BTreeMap::from([("k".into(), "v".into())]))
    );
    // Into a namespace that does not exist: 404 naming the namespace, nothing stored.
    let before = tc.store_state();
    let missing = Api::<ConfigMap>::namespaced(client, "nowhere");
    let e = api_error(
        tokio::time::timeout(
            WAIT,
            missing.patch(
                "fresh",
                &PatchParams::apply("tester"),
                &Patch::Apply(json!({
                    "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "fresh"}
                })),
            ),
        )
        .await
        .expect("answers within the bound")
        .expect_err("no such namespace"),
    );
    assert_eq!(e.code, 404);
    assert_eq!(e.message, r#"namespaces "nowhere" not found"#);
    assert_eq!(tc.store_state(), before);
    // The server still answers.
    assert!(api.get_opt("fresh").await.expect("get").is_some());
}

/// kubectl validates kinds missing from `/openapi/v3` against `/openapi/v2`; the dev cluster
/// answered 404 there, so `kubectl apply` of an unknown kind failed with "error validating data:
/// the server could not find the requested resource" instead of the server's "no matches for
/// kind".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_v2_is_served_for_kubectl_validation() {
    let tc = TestCluster::start_api_only().await;
    let r = tc
        .raw("GET", "/openapi/v2", "application/json", Vec::new())
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    assert_eq!(r.body["swagger"], "2.0");
    assert_eq!(r.body["info"]["title"], "Kubernetes");
    let f = tc.file(
        "thing.yaml",
        "apiVersion: nope.example.com/v1\nkind: Thing\nmetadata:\n  name: t\n",
    );
    let err = tc
        .kubectl_fails(&["create", "-f", f.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"no matches for kind "Thing" in version "nope.example.com/v1""#),
        "{err}"
    );
    assert!(!err.contains("error validating data"), "{err}");
}

// Strictness (issue 19, item 2) ------------------------------------------------------------------

const REPLICAZ: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicaz: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: nginx:1.27
";

/// kubectl sends `fieldValidation=Strict` for create, replace and client-side apply, nothing
/// for `kubectl patch` (the server's default, `Warn`), and what `--validate` says otherwise; each
/// verb answers an unknown field as kube-apiserver does, and a refused request changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_follow_field_validation_for_each_verb() {
    let tc = TestCluster::start_api_only().await;
    let f = tc.file("web.yaml", REPLICAZ);
    let f = f.to_str().expect("utf-8");
    let before = tc.store_state();
    let err = tc.kubectl_fails(&["create", "-f", f]).await;
    assert!(
        err.contains(r#"Error from server (BadRequest): error when creating "#)
            && err.contains(r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: unknown field "spec.replicaz""#),
        "{err}"
    );
    let err = tc.kubectl_fails(&["apply", "--server-side", "-f", f]).await;
    assert!(
        err.contains("Error from server: failed to create typed patch object (default/web; apps/v1, Kind=Deployment): .spec.replicaz: field not declared in schema"),
        "{err}"
    );
    assert_eq!(tc.store_state(), before, "refused requests store nothing");

    // Warn: created without the field, one warning.
    let r = tc.kubectl(&["create", "-f", f, "--validate=warn"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stdout.trim(), "deployment.apps/web created");
    assert_eq!(r.stderr.trim(), r#"Warning: unknown field "spec.replicaz""#);
    let d = tc
        .kubectl_json(&["get", "deploy", "web", "-o", "json"])
        .await;
    assert!(d["spec"].get("replicaz").is_none(), "{}", d["spec"]);
    assert_eq!(
        d["spec"]["replicas"], 1,
        "defaulted, the unknown field dropped"
    );

    // Update (PUT) and client-side apply (a strategic merge patch) are strict too.
    let before = tc.store_state();
    let err = tc.kubectl_fails(&["replace", "-f", f]).await;
    assert!(
        err.contains(r#"error when replacing "#)
            && err.contains(r#"strict decoding error: unknown field "spec.replicaz""#),
        "{err}"
    );
    let err = tc.kubectl_fails(&["apply", "-f", f]).await;
    assert!(
        err.contains("The request is invalid: patch: Invalid value: \"map[")
            && err
                .trim_end()
                .ends_with(r#"strict decoding error: unknown field "spec.replicaz""#),
        "{err}"
    );
    assert_eq!(tc.store_state(), before);

    // `kubectl patch` sends no fieldValidation: the default, Warn.
    for (kind, patch) in [
        ("merge", r#"{"spec":{"replicaz":3}}"#),
        ("strategic", r#"{"spec":{"replicaz":3}}"#),
        (
            "json",
            r#"[{"op":"add","path":"/spec/replicaz","value":3}]"#,
        ),
    ] {
        let r = tc
            .kubectl(&["patch", "deploy", "web", "--type", kind, "-p", patch])
            .await;
        assert_eq!(r.code, Some(0), "{kind}: {}", r.stderr);
        assert_eq!(
            r.stdout.trim(),
            "deployment.apps/web patched (no change)",
            "{kind}"
        );
        assert_eq!(
            r.stderr.trim(),
            r#"Warning: unknown field "spec.replicaz""#,
            "{kind}"
        );
    }
    assert_eq!(
        tc.store_state(),
        before,
        "a patch that only adds an unknown field is a no-op"
    );

    // Ignore: silent.
    let r = tc.kubectl(&["replace", "-f", f, "--validate=false"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stderr, "");

    // An invalid directive, and a duplicate field under Strict (what no kubectl sends).
    let deploys = "/apis/apps/v1/namespaces/default/deployments";
    let body = br#"{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"dup","name":"dup"},"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"i"}]}}}}"#;
    let before = tc.store_state();
    let r = tc
        .raw(
            "POST",
            &format!("{deploys}?fieldValidation=Sometimes"),
            "application/json",
            body.to_vec(),
        )
        .await;
    assert_eq!(r.code, 422, "{}", r.text);
    assert_eq!(
        r.body["message"],
        r#"CreateOptions.meta.k8s.io "" is invalid: fieldValidation: Unsupported value: "Sometimes": supported values: "", "Ignore", "Strict", "Warn""#
    );
    let r = tc
        .raw(
            "POST",
            &format!("{deploys}?fieldValidation=Strict"),
            "application/json",
            body.to_vec(),
        )
        .await;
    assert_eq!(r.code, 400, "{}", r.text);
    assert_eq!(r.body["reason"], "BadRequest");
    assert_eq!(
        r.body["message"],
        r#"Deployment in version "v1" cannot be handled as a Deployment: strict decoding error: duplicate field "metadata.name""#
    );
    assert_eq!(tc.store_state(), before);
}

/// Values a typed field cannot hold are refused with Go's decoding error; `null` is what Go
/// makes of it (an absent field), so it is neither stored nor served.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typed_fields_refuse_wrong_types_and_drop_nulls() {
    let tc = TestCluster::start_api_only().await;
    let before = tc.store_state();
    let wrong = tc.file(
        "wrong.yaml",
        &REPLICAZ.replace("replicaz: 2", "replicas: two"),
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", wrong.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"Deployment in version "v1" cannot be handled as a Deployment: json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32"#),
        "{err}"
    );
    let image = tc.file(
        "image.yaml",
        &REPLICAZ
            .replace("  replicaz: 2\n", "")
            .replace("image: nginx:1.27", "image: 42"),
    );
    let err = tc
        .kubectl_fails(&["create", "-f", image.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains("json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string"),
        "{err}"
    );
    assert_eq!(tc.store_state(), before);

    let nulls = tc.file(
        "nulls.yaml",
        &REPLICAZ
            .replace(
                "replicaz: 2",
                "replicas: null\n  paused: null\n  strategy: null",
            )
            .replace(
                "  name: web\n",
                "  name: web\n  labels: null\n  annotations: {note: null}\n",
            ),
    );
    tc.kubectl_ok(&["apply", "-f", nulls.to_str().expect("utf-8")])
        .await;
    let d = tc
        .kubectl_json(&["get", "deploy", "web", "-o", "json"])
        .await;
    assert_eq!(d["spec"]["replicas"], 1, "null replicas is defaulted");
    assert_eq!(d["spec"]["strategy"]["type"], "RollingUpdate");
    assert!(d["spec"].get("paused").is_none(), "{}", d["spec"]);
    assert!(d["metadata"].get("labels").is_none(), "{}", d["metadata"]);
    assert_eq!(
        d["metadata"]["annotations"]["note"], "",
        "a null map value is the zero value"
    );
}

/// ConfigMap and Secret data is limited to 1 MiB (the request body to 3 MiB), and Secret data
/// must be base64.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configmap_and_secret_data_limits_and_secret_base64() {
    let tc = TestCluster::start_api_only().await;
    let before = tc.store_state();
    let over = tc.file("over.txt", &"x".repeat(1024 * 1024 + 1));
    let over = over.to_str().expect("utf-8");
    let err = tc
        .kubectl_fails(&["create", "configmap", "big", "--from-file", over])
        .await;
    assert!(
        err.contains(
            r#"ConfigMap "big" is invalid: []: Too long: may not be more than 1048576 bytes"#
        ),
        "{err}"
    );
    let err = tc
        .kubectl_fails(&["create", "secret", "generic", "big", "--from-file", over])
        .await;
    assert!(
        err.contains(
            r#"Secret "big" is invalid: data: Too long: may not be more than 1048576 bytes"#
        ),
        "{err}"
    );
    let huge = tc.file("huge.txt", &"x".repeat(3 * 1024 * 1024 + 1));
    let err = tc
        .kubectl_fails(&[
            "create",
            "configmap",
            "huge",
            "--from-file",
            huge.to_str().expect("utf-8"),
        ])
        .await;
    assert!(
        err.contains("Request entity too large: limit is 3145728"),
        "{err}"
    );
    let secret = tc.file(
        "secret.yaml",
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: creds\ndata:\n  password: not base64!\n",
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", secret.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 3"#),
        "{err}"
    );
    assert_eq!(tc.store_state(), before);
    let at_limit = tc.file("limit.txt", &"x".repeat(1024 * 1024));
    let out = tc
        .kubectl_ok(&[
            "create",
            "configmap",
            "limit",
            "--from-file",
            at_limit.to_str().expect("utf-8"),
        ])
        .await;
    assert_eq!(out.trim(), "configmap/limit created");
    // An Ingress path that is not absolute, as kube-apiserver's ValidateIngressSpec says.
    let ingress = tc.file(
        "ingress.yaml",
        "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: web\nspec:\n  rules:\n  - http:\n      paths:\n      - path: relative\n        pathType: Prefix\n        backend:\n          service: {name: web, port: {number: 80}}\n",
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", ingress.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"The Ingress "web" is invalid: spec.rules[0].http.paths[0].path: Invalid value: "relative": must be an absolute path"#),
        "{err}"
    );
}

const GADGET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gadgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gadgets, singular: gadget, kind: Gadget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, default: 3, minimum: 1}
              mode: {type: string, enum: [a, b], default: a}
              tags: {type: array, items: {type: string}}
              note: {type: string, nullable: true}
";

/// A CRD's schema must be structural and use OpenAPI types; custom resources are pruned of
/// unknown fields (reported per fieldValidation), get their schema defaults, and `null` is
/// dropped from non-nullable fields but refused in list items.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crd_schemas_are_structural_and_custom_resources_get_defaults() {
    let tc = TestCluster::start_api_only().await;
    let before = tc.store_state();
    let not_a_type = tc.file(
        "crd1.yaml",
        &GADGET_CRD.replace("type: integer, default: 3, minimum: 1", "type: notatype"),
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", not_a_type.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"The CustomResourceDefinition "gadgets.example.com" is invalid: spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].type: Unsupported value: "notatype": supported values: "array", "boolean", "integer", "number", "object", "string""#),
        "{err}"
    );
    let number = tc.file(
        "crd2.yaml",
        &GADGET_CRD.replace("type: integer, default: 3, minimum: 1", "type: 42"),
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", number.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"CustomResourceDefinition in version "v1" cannot be handled as a CustomResourceDefinition: json: cannot unmarshal number into Go struct field JSONSchemaProps.spec.versions.schema.openAPIV3Schema.properties.properties.type of type string"#),
        "{err}"
    );
    let non_structural = tc.file(
        "crd3.yaml",
        &GADGET_CRD
            .replace(
                "          spec:\n            type: object\n",
                "          spec:\n",
            )
            .replace("{type: array, items: {type: string}}", "{type: array}"),
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", non_structural.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[tags].items: Required value: must be specified")
            && err.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields"),
        "{err}"
    );
    let bad_default = tc.file("crd4.yaml", &GADGET_CRD.replace("default: 3", "default: 0"));
    let err = tc
        .kubectl_fails(&["apply", "-f", bad_default.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains("spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[size].default: Invalid value: 0:  in body should be greater than or equal to 1"),
        "{err}"
    );
    assert_eq!(tc.store_state(), before, "no invalid CRD is stored");

    let crd = tc.file("crd.yaml", GADGET_CRD);
    tc.kubectl_ok(&["apply", "-f", crd.to_str().expect("utf-8")])
        .await;
    tc.kubectl_ok(&[
        "wait",
        "--for=condition=established",
        "--timeout=30s",
        "crd/gadgets.example.com",
    ])
    .await;
    let g = tc.file(
        "g.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g1\nspec:\n  color: red\n  mode: null\n  note: null\n",
    );
    let g = g.to_str().expect("utf-8");
    let err = tc.kubectl_fails(&["create", "-f", g]).await;
    assert!(
        err.contains(r#"Gadget in version "v1" cannot be handled as a Gadget: strict decoding error: unknown field "spec.color""#),
        "{err}"
    );
    let err = tc.kubectl_fails(&["apply", "--server-side", "-f", g]).await;
    assert!(
        err.contains("failed to create typed patch object (default/g1; example.com/v1, Kind=Gadget): .spec.color: field not declared in schema"),
        "{err}"
    );
    let r = tc.kubectl(&["create", "-f", g, "--validate=warn"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    assert_eq!(r.stderr.trim(), r#"Warning: unknown field "spec.color""#);
    let got = tc
        .kubectl_json(&["get", "gadget", "g1", "-o", "json"])
        .await;
    assert_eq!(
        got["spec"],
        json!({"size": 3, "mode": "a", "note": null}),
        "pruned, defaulted (a non-nullable null too), nullable null kept"
    );
    let before = tc.store_state();
    let null_item = tc.file(
        "g2.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g2\nspec:\n  tags: [null]\n",
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", null_item.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"The Gadget "g2" is invalid: spec.tags[0]: Invalid value: "null": spec.tags[0] in body must be of type string: "null""#),
        "{err}"
    );
    let small = tc.file(
        "g3.yaml",
        "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g3\nspec:\n  size: 0\n  mode: c\n",
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", small.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(
            r#"spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1"#
        ) && err.contains(r#"spec.mode: Unsupported value: "c": supported values: "a", "b""#),
        "{err}"
    );
    assert_eq!(tc.store_state(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn system_namespaces_cannot_be_deleted() {
    let tc = TestCluster::start_api_only().await;
    let before = tc.store_state();
    for ns in ["default", "kube-system", "kube-public"] {
        let err = tc.kubectl_fails(&["delete", "namespace", ns]).await;
        assert_eq!(
            err.trim(),
            format!(
                r#"Error from server (Forbidden): namespaces "{ns}" is forbidden: this namespace may not be deleted"#
            )
        );
    }
    assert_eq!(tc.store_state(), before);
    let out = tc
        .kubectl_ok(&["delete", "namespace", "kube-node-lease", "--dry-run=server"])
        .await;
    assert_eq!(
        out.trim(),
        r#"namespace "kube-node-lease" deleted (server dry run)"#
    );
}

/// batch/v1 Jobs run their Pods to completion (`kubectl wait --for=condition=complete`), fail
/// past their backoff limit, and CronJobs are served and validated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_complete_and_cronjobs_are_served() {
    let tc = TestCluster::start_with(|c| {
        c.simulation.ready_delay = std::time::Duration::from_millis(200);
        c.simulation.fail_images = vec!["*:broken".into()];
    })
    .await;
    let out = tc
        .kubectl_ok(&[
            "create",
            "job",
            "hello",
            "--image=busybox",
            "--",
            "echo",
            "hi",
        ])
        .await;
    assert_eq!(out.trim(), "job.batch/hello created");
    let out = tc
        .kubectl_ok(&[
            "wait",
            "--for=condition=complete",
            "--timeout=30s",
            "job/hello",
        ])
        .await;
    assert_eq!(out.trim(), "job.batch/hello condition met");
    let rows = table_columns(&tc.kubectl_ok(&["get", "jobs"]).await);
    assert_eq!(
        rows[0],
        ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    );
    assert_eq!(rows[1][..3], ["hello", "Complete", "1/1"]);
    let job = tc
        .kubectl_json(&["get", "job", "hello", "-o", "json"])
        .await;
    let types: Vec<&str> = job["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .filter_map(|c| c["type"].as_str())
        .collect();
    assert_eq!(types, ["SuccessCriteriaMet", "Complete"]);
    assert_eq!(job["status"]["succeeded"], 1);
    assert_eq!(job["spec"]["backoffLimit"], 6);
    let uid = job["metadata"]["uid"].as_str().expect("uid");
    assert_eq!(
        job["spec"]["selector"]["matchLabels"]["batch.kubernetes.io/controller-uid"],
        uid
    );
    let pods = table_columns(
        &tc.kubectl_ok(&["get", "pods", "-l", "job-name=hello"])
            .await,
    );
    assert_eq!(pods.len(), 2, "{pods:?}");
    assert_eq!(pods[1][1..3], ["0/1", "Completed"]);

    let failing = tc.file(
        "failing.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: failing\nspec:\n  backoffLimit: 1\n  template:\n    spec:\n      restartPolicy: Never\n      containers:\n      - name: c\n        image: app:broken\n",
    );
    tc.kubectl_ok(&["apply", "-f", failing.to_str().expect("utf-8")])
        .await;
    let out = tc
        .kubectl_ok(&[
            "wait",
            "--for=condition=failed",
            "--timeout=30s",
            "job/failing",
        ])
        .await;
    assert_eq!(out.trim(), "job.batch/failing condition met");
    let job = tc
        .kubectl_json(&["get", "job", "failing", "-o", "json"])
        .await;
    assert_eq!(job["status"]["failed"], 2);
    let failed = job["status"]["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "Failed")
        .expect("a Failed condition")
        .clone();
    assert_eq!(failed["reason"], "BackoffLimitExceeded");
    assert_eq!(
        failed["message"],
        "Job has reached the specified backoff limit"
    );

    let before = tc.store_state();
    let always = tc.file(
        "always.yaml",
        "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: always\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        image: busybox\n",
    );
    let err = tc
        .kubectl_fails(&["apply", "-f", always.to_str().expect("utf-8")])
        .await;
    assert!(
        err.contains(r#"The Job "always" is invalid: spec.template.spec.restartPolicy: Unsupported value: "Always": supported values: "OnFailure", "Never""#),
        "{err}"
    );
    let err = tc
        .kubectl_fails(&[
            "create",
            "cronjob",
            "bad",
            "--image=busybox",
            "--schedule=bad",
        ])
        .await;
    assert!(
        err.contains(r#"CronJob.batch "bad" is invalid: spec.schedule: Invalid value: "bad": expected exactly 5 fields, found 1: [bad]"#),
        "{err}"
    );
    assert_eq!(tc.store_state(), before);

    let out = tc
        .kubectl_ok(&[
            "create",
            "cronjob",
            "nightly",
            "--image=busybox",
            "--schedule=0 3 * * *",
            "--",
            "echo",
            "hi",
        ])
        .await;
    assert_eq!(out.trim(), "cronjob.batch/nightly created");
    let rows = table_columns(&tc.kubectl_ok(&["get", "cronjobs"]).await);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "SCHEDULE",
            "TIMEZONE",
            "SUSPEND",
            "ACTIVE",
            "LAST SCHEDULE",
            "AGE"
        ]
    );
    assert_eq!(
        rows[1][..6],
        ["nightly", "0 3 * * *", "<none>", "False", "0", "<none>"]
    );
    tc.kubectl_ok(&["create", "job", "manual", "--from=cronjob/nightly"])
        .await;
    let out = tc
        .kubectl_ok(&[
            "wait",
            "--for=condition=complete",
            "--timeout=30s",
            "job/manual",
        ])
        .await;
    assert_eq!(out.trim(), "job.batch/manual condition met");
}

// Authentication and RBAC (issue 19 item 3, issue 16 item 5) ------------------------------------

/// Creates the ServiceAccount `default/robot` and returns its kubeconfig (token over HTTPS).
async fn robot(tc: &TestCluster) -> std::path::PathBuf {
    tc.kubectl_ok(&["create", "serviceaccount", "robot"]).await;
    tc.service_account_kubeconfig("default", "robot")
}

fn forbidden(verb: &str, resource: &str, group: &str, scope: &str) -> String {
    format!(
        r#"User "system:serviceaccount:default:robot" cannot {verb} resource "{resource}" in API group "{group}" {scope}"#
    )
}

/// The admin kubeconfig is `system:masters`; a ServiceAccount token is its account, refused
/// everything RBAC does not grant, with kube-apiserver's messages for every verb, subresources
/// and resourceNames; an unknown or revoked token is 401.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_account_tokens_are_authorized_by_rbac() {
    let tc = TestCluster::start_api_only().await;
    let who = table_columns(&tc.kubectl_ok(&["auth", "whoami"]).await);
    assert_eq!(who[1], ["Username", "kubernetes-admin"]);
    assert_eq!(who[2], ["Groups", "[system:masters system:authenticated]"]);
    let sa = robot(&tc).await;
    let out = tc.kubectl_with(&sa, &["auth", "whoami"]).await;
    assert_eq!(out.code, Some(0), "{}", out.stderr);
    let who = table_columns(&out.stdout);
    assert_eq!(who[1], ["Username", "system:serviceaccount:default:robot"]);
    let sa_obj = tc.kubectl_json(&["get", "sa", "robot", "-o", "json"]).await;
    assert_eq!(
        who[2],
        ["UID", sa_obj["metadata"]["uid"].as_str().expect("uid")]
    );
    assert_eq!(
        who[3],
        [
            "Groups",
            "[system:serviceaccounts system:serviceaccounts:default system:authenticated]"
        ]
    );
    assert!(
        who[4][0].starts_with("Extra: authentication.kubernetes.io/credential-id"),
        "{who:?}"
    );

    // Discovery is allowed (system:discovery), resources are not.
    let r = tc
        .kubectl_with(&sa, &["api-resources", "--api-group=apps"])
        .await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = tc.kubectl_with(&sa, &["get", "pods"]).await;
    assert_eq!(
        r.stderr.trim(),
        format!(
            "Error from server (Forbidden): pods is forbidden: {}",
            forbidden("list", "pods", "", r#"in the namespace "default""#)
        )
    );
    let r = tc
        .kubectl_with(&sa, &["auth", "can-i", "list", "pods"])
        .await;
    assert_eq!((r.code, r.stdout.trim()), (Some(1), "no"));

    tc.kubectl_ok(&[
        "create",
        "role",
        "pod-reader",
        "--verb=get,list,watch",
        "--resource=pods",
    ])
    .await;
    tc.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-reads",
        "--role=pod-reader",
        "--serviceaccount=default:robot",
    ])
    .await;
    let r = tc.kubectl_with(&sa, &["get", "pods"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = tc
        .kubectl_with(&sa, &["auth", "can-i", "list", "pods"])
        .await;
    assert_eq!((r.code, r.stdout.trim()), (Some(0), "yes"));
    let r = tc.kubectl_with(&sa, &["delete", "pod", "x"]).await;
    assert_eq!(
        r.stderr.trim(),
        format!(
            r#"Error from server (Forbidden): pods "x" is forbidden: {}"#,
            forbidden("delete", "pods", "", r#"in the namespace "default""#)
        )
    );
    let r = tc.kubectl_with(&sa, &["get", "nodes"]).await;
    assert_eq!(
        r.stderr.trim(),
        format!(
            "Error from server (Forbidden): nodes is forbidden: {}",
            forbidden("list", "nodes", "", "at the cluster scope")
        )
    );
    let r = tc
        .kubectl_with(
            &sa,
            &[
                "get",
                "--raw",
                "/api/v1/namespaces/default/configmaps?watch=1",
            ],
        )
        .await;
    assert!(
        r.stderr.contains(&forbidden(
            "watch",
            "configmaps",
            "",
            r#"in the namespace "default""#
        )),
        "{}",
        r.stderr
    );
    let r = tc
        .kubectl_with(
            &sa,
            &["delete", "--raw", "/api/v1/namespaces/default/configmaps"],
        )
        .await;
    assert!(
        r.stderr.contains(&format!(
            "configmaps is forbidden: {}",
            forbidden(
                "deletecollection",
                "configmaps",
                "",
                r#"in the namespace "default""#
            )
        )),
        "{}",
        r.stderr
    );

    // Subresources and resourceNames.
    tc.kubectl_ok(&["create", "deployment", "web", "--image=nginx:1.27"])
        .await;
    tc.kubectl_ok(&["create", "configmap", "open", "--from-literal=a=1"])
        .await;
    tc.kubectl_ok(&["create", "configmap", "closed", "--from-literal=a=1"])
        .await;
    tc.kubectl_ok(&[
        "create",
        "role",
        "limited",
        "--verb=get,list",
        "--resource=deployments.apps",
    ])
    .await;
    tc.kubectl_ok(&[
        "create",
        "role",
        "one-cm",
        "--verb=get",
        "--resource=configmaps",
        "--resource-name=open",
    ])
    .await;
    tc.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-limited",
        "--role=limited",
        "--serviceaccount=default:robot",
    ])
    .await;
    tc.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-one-cm",
        "--role=one-cm",
        "--serviceaccount=default:robot",
    ])
    .await;
    let r = tc
        .kubectl_with(&sa, &["scale", "deployment", "web", "--replicas=2"])
        .await;
    assert_eq!(
        r.stderr.trim(),
        format!(
            r#"Error from server (Forbidden): deployments.apps "web" is forbidden: {}"#,
            forbidden(
                "patch",
                "deployments/scale",
                "apps",
                r#"in the namespace "default""#
            )
        )
    );
    let r = tc.kubectl_with(&sa, &["get", "configmap", "open"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let r = tc.kubectl_with(&sa, &["get", "configmap", "closed"]).await;
    assert_eq!(
        r.stderr.trim(),
        format!(
            r#"Error from server (Forbidden): configmaps "closed" is forbidden: {}"#,
            forbidden("get", "configmaps", "", r#"in the namespace "default""#)
        )
    );
    tc.kubectl_ok(&[
        "create",
        "role",
        "status-writer",
        "--verb=update",
        "--resource=*/status",
    ])
    .await;
    tc.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-status",
        "--role=status-writer",
        "--serviceaccount=default:robot",
    ])
    .await;
    for (args, want) in [
        (&["update", "pods", "--subresource=status"][..], "yes"),
        (&["update", "services", "--subresource=status"][..], "yes"),
        (
            &["update", "deployments.apps", "--subresource=status"][..],
            "no",
        ),
        (&["update", "pods"][..], "no"),
        (&["get", "configmaps/open"][..], "yes"),
        (&["get", "configmaps/closed"][..], "no"),
    ] {
        let mut full = vec!["auth", "can-i"];
        full.extend_from_slice(args);
        let r = tc.kubectl_with(&sa, &full).await;
        assert_eq!(r.stdout.trim(), want, "can-i {args:?}: {}", r.stderr);
    }

    // kube-rs, rollgit's client, as the ServiceAccount.
    let client = tc.client_for(&sa).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    pods.list(&ListParams::default()).await.expect("allowed");
    let err = api_error(
        Api::<Namespace>::all(client)
            .list(&ListParams::default())
            .await
            .expect_err("forbidden"),
    );
    assert_eq!(err.code, 403);
    assert_eq!(err.reason, "Forbidden");
    assert_eq!(
        err.message,
        format!(
            "namespaces is forbidden: {}",
            forbidden("list", "namespaces", "", "at the cluster scope")
        )
    );

    // Unknown and revoked tokens.
    let bogus = tc.file(
        "bogus.kubeconfig",
        &std::fs::read_to_string(&sa)
            .expect("read")
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("token:") {
                    "    token: bogus"
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n"),
    );
    let r = tc.kubectl_with(&bogus, &["get", "pods"]).await;
    assert_eq!(
        r.stderr.trim(),
        "error: You must be logged in to the server (Unauthorized)"
    );
    tc.kubectl_ok(&["delete", "serviceaccount", "robot"]).await;
    let r = tc.kubectl_with(&sa, &["get", "pods"]).await;
    assert_eq!(
        r.stderr.trim(),
        "error: You must be logged in to the server (Unauthorized)"
    );
}

/// `kubectl --as`/`--as-group` need the `impersonate` verb on users, groups or
/// serviceaccounts; the identity then is the impersonated one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_needs_the_impersonate_verb() {
    let tc = TestCluster::start_api_only().await;
    let sa = robot(&tc).await;
    let r = tc
        .kubectl(&["get", "pods", "--as=system:serviceaccount:default:robot"])
        .await;
    assert!(
        r.stderr.contains(&forbidden(
            "list",
            "pods",
            "",
            r#"in the namespace "default""#
        )),
        "the admin acts as the ServiceAccount: {}",
        r.stderr
    );
    let r = tc.kubectl_with(&sa, &["get", "pods", "--as=bob"]).await;
    assert_eq!(
        r.stderr.trim(),
        format!(
            r#"Error from server (Forbidden): users "bob" is forbidden: {}"#,
            forbidden("impersonate", "users", "", "at the cluster scope")
        )
    );
    tc.kubectl_ok(&[
        "create",
        "clusterrole",
        "impersonate-bob",
        "--verb=impersonate",
        "--resource=users",
        "--resource-name=bob",
    ])
    .await;
    tc.kubectl_ok(&[
        "create",
        "clusterrolebinding",
        "robot-as-bob",
        "--clusterrole=impersonate-bob",
        "--serviceaccount=default:robot",
    ])
    .await;
    let r = tc.kubectl_with(&sa, &["auth", "whoami", "--as=bob"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let who = table_columns(&r.stdout);
    assert_eq!(who[1], ["Username", "bob"]);
    assert_eq!(who[2], ["Groups", "[system:authenticated]"]);
    let r = tc
        .kubectl_with(&sa, &["auth", "whoami", "--as=bob", "--as-group=devs"])
        .await;
    assert!(
        r.stderr.contains(
            "selfsubjectreviews API is not enabled in the cluster or you do not have permission"
        ),
        "a group needs its own permission: {}",
        r.stderr
    );
    let r = tc
        .kubectl_with(&sa, &["get", "pods", "--as=bob", "--as-group=devs"])
        .await;
    assert_eq!(
        r.stderr.trim(),
        format!(
            r#"Error from server (Forbidden): groups "devs" is forbidden: {}"#,
            forbidden("impersonate", "groups", "", "at the cluster scope")
        )
    );
}

/// Nobody writes a Role granting what they do not hold, nor binds a role they could not grant
/// themselves, without the `escalate` or `bind` verb.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rbac_escalation_is_prevented() {
    let tc = TestCluster::start_api_only().await;
    let sa = robot(&tc).await;
    tc.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-admin",
        "--clusterrole=admin",
        "--serviceaccount=default:robot",
    ])
    .await;
    let r = tc
        .kubectl_with(
            &sa,
            &[
                "create",
                "role",
                "viewer",
                "--verb=get,list",
                "--resource=pods",
            ],
        )
        .await;
    assert_eq!(
        r.code,
        Some(0),
        "admin may grant what admin holds: {}",
        r.stderr
    );
    let before = tc.store_state();
    let r = tc
        .kubectl_with(
            &sa,
            &[
                "create",
                "role",
                "nodes",
                "--verb=get,list",
                "--resource=nodes,pods",
            ],
        )
        .await;
    assert_eq!(
        r.stderr.trim(),
        r#"Error from server (Forbidden): roles.rbac.authorization.k8s.io "nodes" is forbidden: user "system:serviceaccount:default:robot" (groups=["system:serviceaccounts" "system:serviceaccounts:default" "system:authenticated"]) is attempting to grant RBAC permissions not currently held:
{APIGroups:[""], Resources:["nodes"], Verbs:["get" "list"]}"#
    );
    let r = tc
        .kubectl_with(
            &sa,
            &[
                "create",
                "rolebinding",
                "steal",
                "--clusterrole=cluster-admin",
                "--serviceaccount=default:robot",
            ],
        )
        .await;
    assert!(
        r.stderr.starts_with(r#"error: failed to create rolebinding: rolebindings.rbac.authorization.k8s.io "steal" is forbidden: user "system:serviceaccount:default:robot""#)
            && r.stderr.contains("is attempting to grant RBAC permissions not currently held:\n{APIGroups:[\"*\"], Resources:[\"*\"], Verbs:[\"*\"]}\n{NonResourceURLs:[\"*\"], Verbs:[\"*\"]}"),
        "{}",
        r.stderr
    );
    assert_eq!(tc.store_state(), before);
    tc.kubectl_ok(&[
        "create",
        "clusterrole",
        "bind-cluster-admin",
        "--verb=bind",
        "--resource=clusterroles",
        "--resource-name=cluster-admin",
    ])
    .await;
    tc.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-may-bind",
        "--clusterrole=bind-cluster-admin",
        "--serviceaccount=default:robot",
    ])
    .await;
    let r = tc
        .kubectl_with(
            &sa,
            &[
                "create",
                "rolebinding",
                "steal",
                "--clusterrole=cluster-admin",
                "--serviceaccount=default:robot",
            ],
        )
        .await;
    assert_eq!(r.code, Some(0), "bind allows it: {}", r.stderr);
}

/// The default policy, the review APIs kubectl and controllers use, and TokenRequest.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_policy_reviews_and_token_requests() {
    let tc = TestCluster::start_api_only().await;
    let roles = table_columns(&tc.kubectl_ok(&["get", "clusterroles"]).await);
    assert_eq!(roles[0], ["NAME", "CREATED AT"]);
    let names: Vec<&str> = roles[1..].iter().map(|r| r[0].as_str()).collect();
    for want in [
        "admin",
        "cluster-admin",
        "edit",
        "system:basic-user",
        "system:discovery",
        "view",
    ] {
        assert!(names.contains(&want), "{want} in {names:?}");
    }
    let bindings = table_columns(
        &tc.kubectl_ok(&["get", "clusterrolebindings", "-o", "wide"])
            .await,
    );
    let admin = bindings
        .iter()
        .find(|r| r[0] == "cluster-admin")
        .expect("the cluster-admin binding");
    assert_eq!(admin[1], "ClusterRole/cluster-admin");
    assert_eq!(admin[4], "system:masters");

    let sa = robot(&tc).await;
    let sar = tc.file(
        "sar.yaml",
        "apiVersion: authorization.k8s.io/v1\nkind: SubjectAccessReview\nspec:\n  user: system:serviceaccount:default:robot\n  groups: [system:serviceaccounts, system:authenticated]\n  resourceAttributes: {namespace: default, verb: get, resource: pods}\n",
    );
    let got = tc
        .kubectl_json(&["create", "-f", sar.to_str().expect("utf-8"), "-o", "json"])
        .await;
    assert_eq!(got["status"], json!({"allowed": false}));
    tc.kubectl_ok(&[
        "create",
        "rolebinding",
        "robot-view",
        "--clusterrole=view",
        "--serviceaccount=default:robot",
    ])
    .await;
    let got = tc
        .kubectl_json(&["create", "-f", sar.to_str().expect("utf-8"), "-o", "json"])
        .await;
    assert_eq!(got["status"]["allowed"], true);
    assert_eq!(
        got["status"]["reason"],
        r#"RBAC: allowed by RoleBinding "robot-view/default" of ClusterRole "view" to ServiceAccount "robot/default""#
    );
    let r = tc
        .kubectl_with(&sa, &["create", "-f", sar.to_str().expect("utf-8")])
        .await;
    assert!(
        r.stderr.contains(r#"subjectaccessreviews.authorization.k8s.io is forbidden: User "system:serviceaccount:default:robot" cannot create resource "subjectaccessreviews""#),
        "{}",
        r.stderr
    );

    let token = tc.kubectl_ok(&["create", "token", "robot"]).await;
    let review = tc.file(
        "tr.yaml",
        &format!(
            "apiVersion: authentication.k8s.io/v1\nkind: TokenReview\nspec:\n  token: {}\n",
            token.trim()
        ),
    );
    let got = tc
        .kubectl_json(&[
            "create",
            "-f",
            review.to_str().expect("utf-8"),
            "-o",
            "json",
        ])
        .await;
    assert_eq!(got["status"]["authenticated"], true);
    assert_eq!(
        got["status"]["user"]["username"],
        "system:serviceaccount:default:robot"
    );
    let err = tc
        .kubectl_fails(&["create", "token", "robot", "--duration=5m"])
        .await;
    assert_eq!(
        err.trim(),
        r#"error: failed to create token: TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: Invalid value: 300: may not specify a duration less than 10 minutes"#
    );
    let err = tc.kubectl_fails(&["create", "token", "nobody"]).await;
    assert_eq!(
        err.trim(),
        r#"error: failed to create token: serviceaccounts "nobody" not found"#
    );
}

/// With `Anonymous::Anonymous`, a request without credentials is `system:anonymous`, as on
/// kube-apiserver: /version is public, discovery and resources are not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_requests_as_kube_apiserver_treats_them() {
    let tc = TestCluster::start_with(|c| {
        c.simulation.enabled = false;
        c.anonymous = rollgit_devcluster::auth::Anonymous::Anonymous;
    })
    .await;
    let r = tc
        .raw("GET", "/version", "application/json", Vec::new())
        .await;
    assert_eq!(r.code, 200, "{}", r.text);
    let r = tc.raw("GET", "/api", "application/json", Vec::new()).await;
    assert_eq!(r.code, 403, "{}", r.text);
    assert_eq!(
        r.body["message"],
        r#"forbidden: User "system:anonymous" cannot get path "/api""#
    );
    let r = tc
        .raw(
            "GET",
            "/api/v1/namespaces/default/pods",
            "application/json",
            Vec::new(),
        )
        .await;
    assert_eq!(r.code, 403);
    assert_eq!(
        r.body["message"],
        r#"pods is forbidden: User "system:anonymous" cannot list resource "pods" in API group "" in the namespace "default""#
    );
    // The admin's token, over TLS, still works for kubectl and kube-rs.
    let admin = tc.file(
        "admin.kubeconfig",
        &tc.cluster
            .token_kubeconfig("admin", tc.cluster.server().auth.admin_token(), "default"),
    );
    let r = tc.kubectl_with(&admin, &["get", "namespaces"]).await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    Api::<Namespace>::all(tc.client_for(&admin).await)
        .list(&ListParams::default())
        .await
        .expect("the admin lists namespaces");
}

/// kubectl sees a Service refused with the fields and messages kube-apiserver gives (port
/// names, duplicates, protocols, target ports), and a valid one with a named target port and
/// a `targetPort: 0` (defaulted to the port) accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_sees_service_ports_validated_as_kube_apiserver_does() {
    let tc = TestCluster::start_api_only().await;
    let bad = tc.file(
        "bad-svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  ports:\n  - name: http\n    port: 80\n  - name: http\n    port: 81\n    protocol: ICMP\n  - port: 82\n    targetPort: Http\n",
    );
    let before = tc.store_state();
    let err = tc
        .kubectl_fails(&["apply", "-f", bad.to_str().expect("utf-8")])
        .await;
    for want in [
        r#"The Service "web" is invalid"#,
        r#"spec.ports[1].name: Duplicate value: "http""#,
        r#"spec.ports[1].protocol: Unsupported value: "ICMP": supported values: "SCTP", "TCP", "UDP""#,
        "spec.ports[2].name: Required value",
        r#"spec.ports[2].targetPort: Invalid value: "Http": must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)"#,
    ] {
        assert!(err.contains(want), "missing {want:?} in:\n{err}");
    }
    assert_eq!(tc.store_state().0, before.0, "nothing stored");

    let good = tc.file(
        "svc.yaml",
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  selector:\n    app: web\n  ports:\n  - name: http\n    port: 80\n    targetPort: http-alt\n  - name: metrics\n    port: 9090\n    targetPort: 0\n",
    );
    tc.kubectl_ok(&["apply", "-f", good.to_str().expect("utf-8")])
        .await;
    let svc = tc
        .kubectl_json(&["get", "service", "web", "-o", "json"])
        .await;
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http-alt");
    assert_eq!(svc["spec"]["ports"][1]["targetPort"], 9090);
}

/// A field selector on an object's content (a Secret's `type`) pages like any list: kubectl
/// with `--chunk-size` gets exactly the selected objects, in pages of at most that many.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_content_field_selector_pages_through_the_selected_objects() {
    let tc = TestCluster::start_api_only().await;
    let mut docs = String::from("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: shop\n");
    for (name, ty) in [
        ("a", "Opaque"),
        ("b", "example.com/token"),
        ("c", "Opaque"),
        ("d", "example.com/token"),
        ("e", "Opaque"),
        ("f", "Opaque"),
    ] {
        docs.push_str(&format!(
            "---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: {name}\n  namespace: shop\ntype: {ty}\n"
        ));
    }
    let f = tc.file("secrets.yaml", &docs);
    tc.kubectl_ok(&["apply", "-f", f.to_str().expect("utf-8")])
        .await;
    let r = tc
        .kubectl(&[
            "get",
            "secrets",
            "-n",
            "shop",
            "--field-selector",
            "type=Opaque",
            "--chunk-size=3",
            "-o",
            "json",
            "-v=6",
        ])
        .await;
    assert_eq!(r.code, Some(0), "{}", r.stderr);
    let list: Value = serde_json::from_str(&r.stdout).expect("list JSON");
    assert_eq!(item_names(&list), ["a", "c", "e", "f"]);
    let pages = r
        .stderr
        .lines()
        .filter(|l| l.contains("/api/v1/namespaces/shop/secrets?") && l.contains("limit=3"))
        .count();
    assert_eq!(pages, 2, "a page of three, then one:\n{}", r.stderr);
}
