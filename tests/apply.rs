//! Scenario tests of the apply stage (issue 4, items 6 and 8) against the dev cluster, through
//! kube-rs and the real `kubectl`. The module under test is `rollgit::apply`.

mod common;

use common::{TestCluster, WAIT, table_columns};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::await_condition;
use rollgit::apply::{self, Applier, Health, HealthStatus};
use rollgit::k8s::crds::{AppSource, ApplicationSpec, ComponentStatus, Phase};
use rollgit::k8s::{APP_LABEL, Inventory, MANAGED_BY_LABEL, ObjRef};
use rollgit::record::status::{self as app_status, AppStatus};
use serde_json::{Value, json};

fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

fn widget_crd() -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
            "versions": [{
                "name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {
                    "spec": {"type": "object", "properties": {"size": {"type": "integer"}}}
                }}}
            }]
        }
    })
}

fn widget(ns: &str, name: &str, size: i64) -> Value {
    json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": name, "namespace": ns}, "spec": {"size": size}})
}

fn deployment(ns: &str, name: &str, replicas: i64, image: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": image}]}
            }
        }
    })
}

fn service(ns: &str, name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": ns},
        "spec": {"selector": {"app": name}, "ports": [{"port": 80, "targetPort": 8080}]}})
}

fn configmap(ns: &str, name: &str, value: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
        "data": {"key": value}})
}

fn oref(api_version: &str, kind: &str, ns: Option<&str>, name: &str) -> ObjRef {
    ObjRef::from_object(&json!({"apiVersion": api_version, "kind": kind,
        "metadata": {"name": name, "namespace": ns}}))
    .expect("a reference")
}

/// `object → resourceVersion` of the live objects in a report.
fn versions(live: &[Value]) -> Vec<(String, String)> {
    live.iter()
        .map(|o| {
            (
                ObjRef::from_object(o).expect("ref").to_string(),
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .expect("resourceVersion")
                    .to_string(),
            )
        })
        .collect()
}

/// What render hands over for the shop app, in render's order (Namespace, CRD, known kinds,
/// custom resources).
fn shop(cm_value: &str, with_cm: bool) -> Vec<Value> {
    let mut objs = vec![
        namespace("shop"),
        widget_crd(),
        service("shop", "web"),
        deployment("shop", "web", 2, "nginx:1.27"),
    ];
    if with_cm {
        objs.insert(2, configmap("shop", "settings", cm_value));
    }
    objs.push(widget("shop", "w1", 3));
    objs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_orders_crds_first_detects_noops_and_changes_and_prunes() {
    // A bare API server: no controller writes status behind our back, so resourceVersions
    // move only when rollgit writes.
    let tc = TestCluster::start_api_only().await;
    let applier = Applier::new(tc.client().await);

    // One call: Namespace + CRD + custom resource + Deployment + Service + ConfigMap.
    let first = applier
        .apply_app("shop", &shop("a", true), true, &Inventory::default())
        .await
        .expect("apply");
    assert_eq!(first.errors, [], "no errors");
    let names: Vec<String> = first.applied.iter().map(ToString::to_string).collect();
    assert_eq!(
        names,
        [
            "Namespace shop",
            "CustomResourceDefinition.apiextensions.k8s.io widgets.example.com",
            "ConfigMap shop/settings",
            "Service shop/web",
            "Deployment.apps shop/web",
            "Widget.example.com shop/w1",
        ]
    );
    assert_eq!(first.changed, first.applied, "everything was created");
    assert_eq!(first.pruned, []);
    assert_eq!(first.inventory.len(), 6);
    let out = tc
        .kubectl_ok(&["get", "widgets", "-n", "shop", "-o", "name"])
        .await;
    assert_eq!(out.trim(), "widget.example.com/w1");

    // rollgit's labels on every object.
    let d = tc
        .kubectl_json(&[
            "get",
            "deploy",
            "web",
            "-n",
            "shop",
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    assert_eq!(d["metadata"]["labels"][MANAGED_BY_LABEL], "rollgit");
    assert_eq!(d["metadata"]["labels"][APP_LABEL], "shop");
    let managers: Vec<&str> = d["metadata"]["managedFields"]
        .as_array()
        .expect("managedFields")
        .iter()
        .filter_map(|m| m["manager"].as_str())
        .collect();
    assert_eq!(managers, ["rollgit"]);

    // Unchanged: nothing changed, the same resourceVersions, no writes to the store.
    let before = tc.store_state();
    let second = applier
        .apply_app("shop", &shop("a", true), true, &first.inventory)
        .await
        .expect("apply");
    assert_eq!(second.errors, []);
    assert_eq!(second.changed, [], "a no-op apply changes nothing");
    assert_eq!(second.applied.len(), 6);
    assert_eq!(versions(&second.live), versions(&first.live));
    assert_eq!(tc.store_state().0, before.0, "no write reached the store");

    // One object changed → exactly one changed.
    let third = applier
        .apply_app("shop", &shop("b", true), true, &second.inventory)
        .await
        .expect("apply");
    assert_eq!(third.errors, []);
    assert_eq!(
        third.changed,
        [oref("v1", "ConfigMap", Some("shop"), "settings")]
    );
    let cm = tc
        .kubectl_json(&["get", "cm", "settings", "-n", "shop", "-o", "json"])
        .await;
    assert_eq!(cm["data"]["key"], "b");

    // Removed with prune off: kept in the cluster and in the inventory.
    let kept = applier
        .apply_app("shop", &shop("b", false), false, &third.inventory)
        .await
        .expect("apply");
    assert_eq!(kept.pruned, []);
    assert_eq!(kept.changed, []);
    assert!(
        kept.inventory
            .contains(&oref("v1", "ConfigMap", Some("shop"), "settings"))
    );
    tc.kubectl_ok(&["get", "cm", "settings", "-n", "shop"])
        .await;

    // Removed with prune on: deleted, and gone from the inventory.
    let pruned = applier
        .apply_app("shop", &shop("b", false), true, &kept.inventory)
        .await
        .expect("apply");
    assert_eq!(pruned.errors, []);
    assert_eq!(
        pruned.pruned,
        [oref("v1", "ConfigMap", Some("shop"), "settings")]
    );
    assert_eq!(pruned.changed, []);
    assert_eq!(pruned.inventory.len(), 5);
    let err = tc
        .kubectl_fails(&["get", "cm", "settings", "-n", "shop"])
        .await;
    assert!(err.contains("NotFound"), "{err}");

    // An object another app took over is not pruned.
    let other = configmap("shop", "shared", "x");
    applier
        .apply_app(
            "other",
            std::slice::from_ref(&other),
            true,
            &Inventory::default(),
        )
        .await
        .expect("apply");
    let claimed = Inventory::from_objects(std::slice::from_ref(&other));
    let r = applier
        .apply_app("shop", &shop("b", false), true, &claimed)
        .await
        .expect("apply");
    assert_eq!(r.pruned, []);
    tc.kubectl_ok(&["get", "cm", "shared", "-n", "shop"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_object_is_reported_and_the_others_are_applied() {
    let tc = TestCluster::start_api_only().await;
    let applier = Applier::new(tc.client().await);
    let mut bad = deployment("default", "bad", 1, "nginx");
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let mut secret = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "creds", "namespace": "default"},
        "stringData": {"bad key!": "hunter2"}});
    let objects = vec![
        configmap("default", "ok", "1"),
        secret.clone(),
        bad,
        deployment("default", "good", 1, "nginx"),
    ];
    let report = applier
        .apply_app("mixed", &objects, true, &Inventory::default())
        .await
        .expect("apply");
    let applied: Vec<String> = report.applied.iter().map(ToString::to_string).collect();
    assert_eq!(
        applied,
        ["ConfigMap default/ok", "Deployment.apps default/good"]
    );
    assert_eq!(report.errors.len(), 2, "{:?}", report.errors);
    let (who, msg) = &report.errors[0];
    assert_eq!(who.to_string(), "Secret default/creds");
    assert!(!msg.contains("hunter2"), "no Secret data in errors: {msg}");
    let (who, msg) = &report.errors[1];
    assert_eq!(who.to_string(), "Deployment.apps default/bad");
    assert!(msg.contains("Invalid (422)"), "{msg}");
    assert!(msg.contains("selector"), "{msg}");
    // A failed object still belongs to the app: it is in the inventory, never pruned.
    assert!(report.inventory.contains(who));
    tc.kubectl_ok(&["get", "cm", "ok"]).await;
    tc.kubectl_fails(&["get", "deploy", "bad"]).await;

    // An unknown kind is reported, and nothing is pruned in that pass.
    secret["kind"] = json!("Gadget");
    secret["apiVersion"] = json!("example.com/v1");
    let objects = vec![configmap("default", "ok", "1"), secret];
    let r = applier
        .apply_app("mixed", &objects, true, &report.inventory)
        .await
        .expect("apply");
    assert_eq!(r.errors.len(), 1);
    assert!(
        r.errors[0].1.contains("does not serve kind Gadget"),
        "{:?}",
        r.errors
    );
    assert_eq!(r.pruned, []);
    tc.kubectl_ok(&["get", "deploy", "good"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deployment_health_goes_from_progressing_to_healthy() {
    let tc = TestCluster::start().await;
    let client = tc.client().await;
    let applier = Applier::new(client.clone());
    let objects = vec![
        deployment("default", "web", 3, "nginx:1.27"),
        service("default", "web"),
    ];
    let report = applier
        .apply_app("web", &objects, true, &Inventory::default())
        .await
        .expect("apply");
    assert_eq!(report.errors, []);
    // Right after the apply the controller has not rolled anything out.
    let h = apply::health(&report.live[0]);
    assert_eq!(h.status, HealthStatus::Progressing, "{h:?}");

    let ar = ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("apps", "v1", "Deployment"),
        "deployments",
    );
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &ar);
    let healthy = |o: Option<&DynamicObject>| {
        o.and_then(|o| serde_json::to_value(o).ok())
            .is_some_and(|v| apply::health(&v).is_healthy())
    };
    tokio::time::timeout(WAIT, await_condition(api, "web", healthy))
        .await
        .expect("healthy within the bound")
        .expect("watch");
    assert_eq!(applier.app_health(&objects).await, Health::healthy());

    // A missing object makes the app Degraded.
    let mut gone = objects.clone();
    gone.push(configmap("default", "never-applied", "x"));
    let h = applier.app_health(&gone).await;
    assert_eq!(h.status, HealthStatus::Degraded);
    assert_eq!(h.message, "ConfigMap default/never-applied: not found");
}

fn app_status(components: Vec<ComponentStatus>, health: Health) -> AppStatus {
    AppStatus {
        phase: Phase::Running,
        health: Health::healthy(),
        message: String::new(),
        last_applied_commit: Some("0123456789abcdef".into()),
        last_attempted_commit: Some("0123456789abcdef".into()),
        last_error: Vec::new(),
        inventory: Inventory::from_objects(&[deployment("default", "express-server", 5, "x")]),
        publish_version: Some("alpha1".into()),
        content_hash: None,
        components,
        drift_corrections: 0,
    }
    .with_health(health)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_get_app_prints_the_seed_columns() {
    let tc = TestCluster::start_api_only().await;
    let client = tc.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs installed");
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("idempotent");
    let spec = ApplicationSpec {
        source: AppSource {
            repo: "demo".into(),
            url: "file:///demo".into(),
            branch: "main".into(),
            path: "apps/rollout".into(),
        },
        app: String::new(),
    };
    let now = k8s_openapi::jiff::Timestamp::now();

    let webservice = vec![ComponentStatus {
        name: "express-server".into(),
        type_: "webservice".into(),
        revision: Some("express-server-v1".into()),
        revision_number: Some(1),
        healthy: true,
        message: String::new(),
    }];
    let status = app_status(webservice, Health::healthy());
    let wrote = app_status::write_status(
        &client,
        "default",
        "rollout-trait-test",
        &spec,
        &status,
        now,
    )
    .await
    .expect("status written");
    assert!(wrote);
    let plain = app_status(
        Vec::new(),
        Health {
            status: HealthStatus::Progressing,
            message: "Deployment.apps default/web: 1 of 3 updated replicas".into(),
        },
    );
    app_status::write_status(&client, "default", "plain", &spec, &plain, now)
        .await
        .expect("status written");

    let out = tc.kubectl_ok(&["get", "app"]).await;
    let rows = table_columns(&out);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "COMPONENT",
            "TYPE",
            "PHASE",
            "HEALTHY",
            "STATUS",
            "AGE"
        ],
        "{out}"
    );
    assert_eq!(
        rows[1][..6],
        [
            "plain",
            "-",
            "-",
            "unhealthy",
            "false",
            "Deployment.apps default/web: 1 of 3 updated replicas"
        ],
        "{out}"
    );
    assert_eq!(
        rows[2][..6],
        [
            "rollout-trait-test",
            "express-server",
            "webservice",
            "running",
            "true",
            ""
        ],
        "{out}"
    );
    assert!(rows[2][6].ends_with('s'), "age in seconds: {out}");
    // The other short name works too.
    let out = tc.kubectl_ok(&["get", "rga", "rollout-trait-test"]).await;
    assert_eq!(table_columns(&out)[1][1], "express-server");

    // The same status again writes nothing.
    let before = tc.store_state();
    let wrote = app_status::write_status(
        &client,
        "default",
        "rollout-trait-test",
        &spec,
        &status,
        now,
    )
    .await
    .expect("status written");
    assert!(!wrote);
    assert_eq!(tc.store_state().0, before.0, "no write");

    // The status carries commits, conditions, inventory, publishVersion, components.
    let app = tc
        .kubectl_json(&["get", "app", "rollout-trait-test", "-o", "json"])
        .await;
    let s = &app["status"];
    assert_eq!(s["lastAppliedCommit"], "0123456789abcdef");
    assert_eq!(s["publishVersion"], "alpha1");
    assert_eq!(s["conditions"][0]["type"], "Ready");
    assert_eq!(s["conditions"][1]["reason"], "Applied");
    assert_eq!(s["inventory"]["entries"][0]["name"], "express-server");
    assert_eq!(s["components"][0]["revision"], "express-server-v1");
    assert_eq!(app["spec"]["source"]["path"], "apps/rollout");

    // A rejected commit: phase failed, lastError, the last good commit kept.
    let rejected = AppStatus::rejected(
        "fedcba9876543210",
        Some("0123456789abcdef"),
        &["apps/rollout/app.yaml:7: did not find expected key".into()],
        &status.inventory,
    );
    app_status::write_status(
        &client,
        "default",
        "rollout-trait-test",
        &spec,
        &rejected,
        now,
    )
    .await
    .expect("status written");
    let app = tc
        .kubectl_json(&["get", "app", "rollout-trait-test", "-o", "json"])
        .await;
    let s = &app["status"];
    assert_eq!(s["phase"], "failed");
    assert_eq!(s["lastAppliedCommit"], "0123456789abcdef");
    assert_eq!(s["lastAttemptedCommit"], "fedcba9876543210");
    assert_eq!(
        s["lastError"],
        json!(["apps/rollout/app.yaml:7: did not find expected key"])
    );
    assert_eq!(s["conditions"][1]["status"], "False");
    assert_eq!(s.get("components"), None, "stale keys are removed");
    let rows = table_columns(&tc.kubectl_ok(&["get", "app", "rollout-trait-test"]).await);
    assert_eq!(rows[1][3], "failed");

    app_status::delete_status(&client, "default", "rollout-trait-test")
        .await
        .expect("deleted");
    app_status::delete_status(&client, "default", "rollout-trait-test")
        .await
        .expect("missing is fine");
}
