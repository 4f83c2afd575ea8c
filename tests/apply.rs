//! Scenario tests of the apply stage (issue 4, items 6 and 8) against the dev cluster, through
//! kube-rs and the real `kubectl`. The module under test is `rollgit::apply`.

mod common;

use common::{TestCluster, WAIT, table_columns};
use kube::api::{Api, DynamicObject};
use kube::core::{ApiResource, GroupVersionKind};
use kube::runtime::wait::await_condition;
use rollgit::apply::{
    self, Applier, ApplyOptions, ApplyOutcome, ApplyReport, Health, HealthStatus, Refused,
};
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

/// Applies `objects` as `app` (prune on or off), expecting the commit to be applied.
async fn apply(
    applier: &Applier,
    app: &str,
    objects: &[Value],
    prune: bool,
    inventory: &Inventory,
) -> ApplyReport {
    apply_with(
        applier,
        app,
        objects,
        inventory,
        &ApplyOptions::new().prune(prune),
    )
    .await
}

async fn apply_with(
    applier: &Applier,
    app: &str,
    objects: &[Value],
    inventory: &Inventory,
    opts: &ApplyOptions,
) -> ApplyReport {
    match applier
        .apply_app(app, objects, inventory, opts)
        .await
        .expect("apply")
    {
        ApplyOutcome::Applied(report) => report,
        ApplyOutcome::Refused(r) => panic!("the commit was refused: {r:?}"),
    }
}

/// Applies `objects` as `app`, expecting the commit to be refused whole.
async fn refused(
    applier: &Applier,
    app: &str,
    objects: &[Value],
    inventory: &Inventory,
) -> Vec<Refused> {
    match applier
        .apply_app(app, objects, inventory, &ApplyOptions::new())
        .await
        .expect("apply")
    {
        ApplyOutcome::Refused(r) => r,
        ApplyOutcome::Applied(report) => panic!("the commit was applied: {report:?}"),
    }
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
    let first = apply(
        &applier,
        "shop",
        &shop("a", true),
        true,
        &Inventory::default(),
    )
    .await;
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
    let second = apply(&applier, "shop", &shop("a", true), true, &first.inventory).await;
    assert_eq!(second.errors, []);
    assert_eq!(second.changed, [], "a no-op apply changes nothing");
    assert_eq!(second.applied.len(), 6);
    // A new CRD is written once more after its create (its Established condition, once its
    // resource is served, as kube-apiserver's establishing controller does): the other
    // objects are as the first apply left them.
    let without_crds = |live: &[Value]| -> Vec<(String, String)> {
        versions(live)
            .into_iter()
            .filter(|(r, _)| !r.starts_with("CustomResourceDefinition"))
            .collect()
    };
    assert_eq!(without_crds(&second.live), without_crds(&first.live));
    assert_eq!(tc.store_state().0, before.0, "no write reached the store");

    // One object changed → exactly one changed.
    let third = apply(&applier, "shop", &shop("b", true), true, &second.inventory).await;
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
    let kept = apply(&applier, "shop", &shop("b", false), false, &third.inventory).await;
    assert_eq!(kept.pruned, []);
    assert_eq!(kept.changed, []);
    assert!(
        kept.inventory
            .contains(&oref("v1", "ConfigMap", Some("shop"), "settings"))
    );
    tc.kubectl_ok(&["get", "cm", "settings", "-n", "shop"])
        .await;

    // Removed with prune on: deleted, and gone from the inventory.
    let pruned = apply(&applier, "shop", &shop("b", false), true, &kept.inventory).await;
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
    apply(
        &applier,
        "other",
        std::slice::from_ref(&other),
        true,
        &Inventory::default(),
    )
    .await;
    let mut claimed = pruned.inventory.clone();
    claimed
        .entries
        .push(ObjRef::from_object(&other).expect("a reference"));
    let r = apply(&applier, "shop", &shop("b", false), true, &claimed).await;
    assert_eq!(r.pruned, []);
    tc.kubectl_ok(&["get", "cm", "shared", "-n", "shop"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_the_api_refuses_refuses_the_commit_whole() {
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
    let before = tc.store_state();
    let r = refused(&applier, "mixed", &objects, &Inventory::default()).await;
    let named: Vec<(Option<usize>, String)> =
        r.iter().map(|r| (r.index, r.object.to_string())).collect();
    assert_eq!(
        named,
        [
            (Some(1), "Secret default/creds".to_string()),
            (Some(2), "Deployment.apps default/bad".to_string())
        ]
    );
    assert!(
        !r[0].message.contains("hunter2"),
        "no Secret data: {}",
        r[0].message
    );
    assert!(r[1].message.contains("Invalid (422)"), "{}", r[1].message);
    assert!(r[1].message.contains("selector"), "{}", r[1].message);
    assert!(!r[1].transient, "the same commit fails the same way");
    // Nothing of the commit reached the cluster: not the valid objects either.
    assert_eq!(tc.store_state().0, before.0, "no write reached the store");
    tc.kubectl_fails(&["get", "cm", "ok"]).await;
    tc.kubectl_fails(&["get", "deploy", "good"]).await;

    // An unknown kind refuses the commit too (it may be served later: transient).
    secret["kind"] = json!("Gadget");
    secret["apiVersion"] = json!("example.com/v1");
    let r = refused(
        &applier,
        "mixed",
        &[configmap("default", "ok", "1"), secret],
        &Inventory::default(),
    )
    .await;
    assert_eq!(r.len(), 1);
    assert!(r[0].message.contains("does not serve kind Gadget"), "{r:?}");
    assert!(r[0].transient);
    tc.kubectl_fails(&["get", "cm", "ok"]).await;

    // The next good commit proceeds.
    let report = apply(
        &applier,
        "mixed",
        &objects[..1],
        true,
        &Inventory::default(),
    )
    .await;
    assert_eq!(report.applied.len(), 1);
    tc.kubectl_ok(&["get", "cm", "ok"]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_apps_object_is_refused_unless_the_commit_adopts_it() {
    let tc = TestCluster::start_api_only().await;
    let applier = Applier::new(tc.client().await);
    apply(
        &applier,
        "billing",
        &[configmap("default", "shared", "b")],
        true,
        &Inventory::default(),
    )
    .await;
    let r = refused(
        &applier,
        "shop",
        &[configmap("default", "shared", "s")],
        &Inventory::default(),
    )
    .await;
    assert_eq!(r.len(), 1);
    assert!(
        r[0].message.contains("belongs to app \"billing\""),
        "{}",
        r[0].message
    );
    assert!(
        r[0].message.contains("rollgit.dev/adopt"),
        "{}",
        r[0].message
    );
    let cm = tc
        .kubectl_json(&["get", "cm", "shared", "-o", "json"])
        .await;
    assert_eq!(cm["data"]["key"], "b", "billing's object is untouched");

    let mut adopting = configmap("default", "shared", "s");
    adopting["metadata"]["annotations"] = json!({"rollgit.dev/adopt": "true"});
    apply(&applier, "shop", &[adopting], true, &Inventory::default()).await;
    let cm = tc
        .kubectl_json(&["get", "cm", "shared", "-o", "json"])
        .await;
    assert_eq!(cm["data"]["key"], "s");
    assert_eq!(cm["metadata"]["labels"][APP_LABEL], "shop");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prune_spares_adopted_objects_protected_namespaces_and_holds_mass_deletes() {
    let tc = TestCluster::start_api_only().await;
    let applier = Applier::new(tc.client().await);
    // An object that existed before rollgit: adopted, not created.
    tc.kubectl_ok(&["create", "configmap", "legacy", "--from-literal=key=old"])
        .await;
    let objects = vec![
        namespace("default"),
        configmap("default", "legacy", "new"),
        configmap("default", "a", "1"),
        configmap("default", "b", "1"),
        configmap("default", "c", "1"),
    ];
    let first = apply(&applier, "shop", &objects, true, &Inventory::default()).await;
    let adopted: Vec<String> = first
        .inventory
        .adopted
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(adopted, ["ConfigMap default/legacy", "Namespace default"]);

    // legacy and the namespace leave Git (2 of 5): neither is deleted.
    let second = apply(&applier, "shop", &objects[2..], true, &first.inventory).await;
    assert_eq!(second.pruned, []);
    assert_eq!(second.held_prune, None);
    tc.kubectl_ok(&["get", "cm", "legacy"]).await;
    tc.kubectl_ok(&["get", "namespace", "default"]).await;
    assert_eq!(
        second.inventory.len(),
        3,
        "what stays is no longer the app's"
    );

    // Two of three leave: more than half, held.
    let third = apply(&applier, "shop", &objects[4..], true, &second.inventory).await;
    let held = third.held_prune.expect("a held prune");
    assert_eq!(held.objects.len(), 2);
    assert_eq!(held.inventory, 3);
    assert_eq!(third.pruned, []);
    assert_eq!(
        third.inventory.len(),
        3,
        "held objects stay in the inventory"
    );
    tc.kubectl_ok(&["get", "cm", "a"]).await;

    // Allowed: pruned.
    let mut allow = ApplyOptions::new();
    allow.allow_mass_prune = true;
    let fourth = apply_with(&applier, "shop", &objects[4..], &third.inventory, &allow).await;
    let pruned: Vec<String> = fourth.pruned.iter().map(ToString::to_string).collect();
    assert_eq!(pruned, ["ConfigMap default/a", "ConfigMap default/b"]);
    tc.kubectl_fails(&["get", "cm", "a"]).await;

    // With pruneAdopted an adopted object is deleted when it leaves.
    tc.kubectl_ok(&["create", "configmap", "legacy2", "--from-literal=key=old"])
        .await;
    let with_legacy = vec![
        configmap("default", "legacy2", "x"),
        configmap("default", "c", "1"),
    ];
    let fifth = apply(&applier, "shop", &with_legacy, true, &fourth.inventory).await;
    let mut prune_adopted = ApplyOptions::new();
    prune_adopted.prune_adopted = true;
    let sixth = apply_with(
        &applier,
        "shop",
        &with_legacy[1..],
        &fifth.inventory,
        &prune_adopted,
    )
    .await;
    assert_eq!(sixth.pruned.len(), 1);
    tc.kubectl_fails(&["get", "cm", "legacy2"]).await;
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
    let report = apply(&applier, "web", &objects, true, &Inventory::default()).await;
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
        held_prune: None,
        last_sync_request: None,
        suspended: false,
        workflow: None,
        clusters: Vec::new(),
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
            namespace: String::new(),
        },
        app: String::new(),
        suspend: false,
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

/// Dry-run APPLY requests the dev cluster has served so far (its `apiserver_request_total`).
async fn dry_runs(tc: &TestCluster) -> u64 {
    let r = tc.raw("GET", "/metrics", "text/plain", Vec::new()).await;
    assert_eq!(r.code, 200, "GET /metrics");
    r.text
        .lines()
        .filter(|l| l.starts_with("apiserver_request_total{dry_run=\"All\""))
        .filter_map(|l| l.rsplit_once(' ')?.1.trim().parse::<u64>().ok())
        .sum()
}

fn configmaps(ns: &str, prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| configmap(ns, &format!("{prefix}-{i}"), "v"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_of_many_apps_skips_only_the_dry_runs_it_can_vouch_for() {
    let tc = TestCluster::start_api_only().await;
    let applier = Applier::new(tc.client().await);
    let mut opts = ApplyOptions::new();
    opts.lookup = Some(apply::SharedLookup::new());
    let none = Inventory::default();
    let with = |extra: Vec<Value>, prefix: &str| {
        let mut objs = configmaps("default", prefix, 4);
        objs.extend(extra);
        objs
    };

    // The first app: one probe of ConfigMaps and one of Services in `default` and the
    // Deployment's dry run, less the first of them, applied for real instead.
    let before = dry_runs(&tc).await;
    let a = with(
        vec![
            deployment("default", "a", 1, "nginx"),
            service("default", "a"),
        ],
        "a",
    );
    let report = apply_with(&applier, "a", &a, &none, &opts).await;
    assert_eq!(report.applied.len(), 6);
    assert_eq!(
        dry_runs(&tc).await - before,
        2,
        "the Deployment and one probe are dry-run"
    );

    // The next app's ConfigMaps and Service are vouched for; its Deployment is applied
    // first, for real.
    let before = dry_runs(&tc).await;
    let b = with(
        vec![
            deployment("default", "b", 1, "nginx"),
            service("default", "b"),
        ],
        "b",
    );
    apply_with(&applier, "b", &b, &none, &opts).await;
    assert_eq!(dry_runs(&tc).await - before, 0, "no dry run");
    tc.kubectl_ok(&["get", "service", "b"]).await;

    let refused_whole = |app: &'static str, objects: Vec<Value>| {
        let (applier, opts, tc) = (&applier, &opts, &tc);
        async move {
            let state = tc.store_state();
            let r = match applier
                .apply_app(app, &objects, &Inventory::default(), opts)
                .await
                .expect("apply")
            {
                ApplyOutcome::Refused(r) => r,
                ApplyOutcome::Applied(report) => panic!("{app}: applied: {report:?}"),
            };
            assert_eq!(
                tc.store_state().0,
                state.0,
                "{app}: no write reached the store"
            );
            r
        }
    };
    // What the local check cannot vouch for is dry-run: an invalid label among valid
    // ConfigMaps refuses the commit whole, with the server's message.
    let mut bad_label = configmap("default", "c-bad", "v");
    bad_label["metadata"]["labels"] = json!({"team": "not a value!"});
    let r = refused_whole("c", with(vec![bad_label], "c")).await;
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].object.to_string(), "ConfigMap default/c-bad");
    assert!(r[0].message.contains("Invalid (422)"), "{}", r[0].message);
    // An invalid ConfigMap key, data that is not a string, an unknown field.
    for (app, bad) in [
        ("d", json!({"data": {"bad key": "v"}})),
        ("e", json!({"data": {"k": 1}})),
        ("f", json!({"datum": {"k": "v"}})),
    ] {
        let mut obj = configmap("default", &format!("{app}-bad"), "v");
        if let (Some(o), Some(extra)) = (obj.as_object_mut(), bad.as_object()) {
            o.remove("data");
            o.extend(extra.clone());
        }
        let r = refused_whole(app, with(vec![obj], app)).await;
        assert_eq!(r.len(), 1, "{app}: {r:?}");
    }
    // A Service the local check cannot vouch for (two ports, one unnamed) is dry-run and
    // refuses the commit whole with the server's field.
    let mut unnamed = service("default", "k");
    unnamed["spec"]["ports"] = json!([{"name": "http", "port": 80}, {"port": 81}]);
    let r = refused_whole("k", with(vec![unnamed], "k")).await;
    assert_eq!(r[0].object.to_string(), "Service default/k", "{r:?}");
    assert!(
        r[0].message.contains("spec.ports[1].name: Required value"),
        "{}",
        r[0].message
    );
    // A namespace that does not exist: a kind and namespace not yet proven is probed.
    let r = refused_whole("g", with(configmaps("nowhere", "g", 2), "g")).await;
    assert_eq!(r[0].object.to_string(), "ConfigMap nowhere/g-0", "{r:?}");
    // A Deployment the server refuses, with vouched-for ConfigMaps: the Deployment is applied
    // first and alone, so nothing else of the commit is.
    let mut bad = deployment("default", "h", 1, "nginx");
    bad["spec"]["template"]["metadata"]["labels"] = json!({"app": "other"});
    let r = refused_whole("h", with(vec![bad], "h")).await;
    assert_eq!(r[0].object.to_string(), "Deployment.apps default/h");
    assert!(!r[0].message.starts_with("apply: "), "{}", r[0].message);
    // Two refused objects: the first needing a dry run is applied first only when the others'
    // dry runs passed.
    let mut bad_svc = service("default", "i");
    bad_svc["spec"]["ports"] = json!([{"port": 70000}]);
    let mut bad_deploy = deployment("default", "i", 1, "nginx");
    bad_deploy["spec"]["replicas"] = json!(-1);
    let r = refused_whole("i", with(vec![bad_svc, bad_deploy], "i")).await;
    assert!(!r.is_empty());
    // An existing object is dry-run (an update): a ConfigMap made immutable refuses a change.
    let mut frozen = configmap("default", "j-frozen", "1");
    frozen["immutable"] = json!(true);
    apply_with(
        &applier,
        "j",
        &with(vec![frozen.clone()], "j"),
        &none,
        &opts,
    )
    .await;
    let mut opts = ApplyOptions::new();
    opts.lookup = Some(apply::SharedLookup::new());
    frozen["data"]["key"] = json!("2");
    let state = tc.store_state();
    match applier
        .apply_app("j", &with(vec![frozen], "j2"), &none, &opts)
        .await
        .expect("apply")
    {
        ApplyOutcome::Refused(r) => {
            assert_eq!(r[0].object.to_string(), "ConfigMap default/j-frozen")
        }
        ApplyOutcome::Applied(report) => panic!("applied: {report:?}"),
    }
    assert_eq!(tc.store_state().0, state.0, "no write reached the store");
    tc.kubectl_fails(&["get", "cm", "j2-0"]).await;
}

/// The requests to `applications` (and `applications/status`) other than reads, by
/// `subresource/verb`, from the dev cluster's `apiserver_request_total`.
async fn application_writes(tc: &TestCluster) -> std::collections::BTreeMap<String, u64> {
    let r = tc.raw("GET", "/metrics", "text/plain", Vec::new()).await;
    assert_eq!(r.code, 200, "GET /metrics");
    let label = |l: &str, k: &str| -> String {
        l.split(&format!("{k}=\"")[..])
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or_default()
            .to_string()
    };
    let mut out = std::collections::BTreeMap::new();
    for l in r.text.lines().filter(|l| {
        l.starts_with("apiserver_request_total{") && l.contains("resource=\"applications\"")
    }) {
        let verb = label(l, "verb");
        if matches!(verb.as_str(), "GET" | "LIST" | "WATCH") {
            continue;
        }
        let n: u64 = l
            .rsplit_once(' ')
            .and_then(|(_, n)| n.trim().parse().ok())
            .unwrap_or(0);
        *out.entry(format!("{}/{verb}", label(l, "subresource")))
            .or_insert(0) += n;
    }
    out
}

/// What `application_writes` counted between `before` and `after`.
fn new_writes(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
) -> Vec<(String, u64)> {
    after
        .iter()
        .map(|(k, n)| (k.clone(), n - before.get(k).copied().unwrap_or(0)))
        .filter(|(_, n)| *n > 0)
        .collect()
}

/// Issue 19: a new app's status object is one request (a create carrying its status), a
/// status change one merge patch that leaves others' fields alone; a cluster whose installed
/// Application CRD still has a status subresource (an older rollgit's) gets the status all the
/// same, in two requests for a new app.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_apps_status_object_is_written_in_one_request_and_an_older_crd_still_works() {
    let tc = TestCluster::start_api_only().await;
    let client = tc.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs installed");
    let spec = |branch: &str| ApplicationSpec {
        source: AppSource {
            repo: "demo".into(),
            url: "file:///demo".into(),
            branch: branch.into(),
            path: "apps/web".into(),
            namespace: String::new(),
        },
        app: String::new(),
        suspend: false,
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let apps = Api::<DynamicObject>::namespaced_with(
        client.clone(),
        "default",
        &app_status::application_resource(),
    );
    let running = app_status(Vec::new(), Health::healthy());

    // A new app: one CREATE, with the status and rollgit's label.
    let before = application_writes(&tc).await;
    let (wrote, created) = app_status::write_status_over(
        &client,
        "default",
        "web",
        &spec("main"),
        &running,
        now,
        None,
    )
    .await
    .expect("status written");
    assert!(wrote);
    assert_eq!(
        new_writes(&before, &application_writes(&tc).await),
        [("/CREATE".to_string(), 1)]
    );
    let live = apps.get("web").await.expect("created");
    assert_eq!(live.data["status"]["phase"], "running");
    assert_eq!(live.data["status"]["lastAppliedCommit"], "0123456789abcdef");
    assert_eq!(live.data["spec"]["source"]["branch"], "main");
    assert_eq!(
        live.metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(MANAGED_BY_LABEL))
            .map(String::as_str),
        Some("rollgit")
    );

    // Others write spec.suspend (`rollgit suspend`), a sync request and status.promotion; the
    // worker, writing over its older copy, leaves them alone in one PATCH.
    let others = json!({
        "metadata": {"annotations": {"rollgit.dev/sync-requested": "t1"}},
        "spec": {"suspend": true},
        "status": {"promotion": {"state": "open", "message": "kept"}},
    });
    apps.patch(
        "web",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&others),
    )
    .await
    .expect("others' writes");
    let failing = AppStatus::rejected(
        "fedcba9876543210",
        Some("0123456789abcdef"),
        &["apps/web/web.yaml:3: did not find expected key".into()],
        &Inventory::default(),
    );
    let before = application_writes(&tc).await;
    let (wrote, written) = app_status::write_status_over(
        &client,
        "default",
        "web",
        &spec("main"),
        &failing,
        now,
        Some(created),
    )
    .await
    .expect("status written");
    assert!(wrote);
    assert_eq!(
        new_writes(&before, &application_writes(&tc).await),
        [("/PATCH".to_string(), 1)]
    );
    for o in [written, apps.get("web").await.expect("get")] {
        assert_eq!(o.data["status"]["phase"], "failed");
        assert_eq!(o.data["status"]["promotion"]["message"], "kept");
        assert_eq!(o.data["spec"]["suspend"], true);
        assert_eq!(
            o.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("rollgit.dev/sync-requested"))
                .map(String::as_str),
            Some("t1")
        );
    }

    // A changed source: the spec is applied, and the status the create wrote stays.
    let live = apps.get("web").await.expect("get");
    app_status::write_status_over(
        &client,
        "default",
        "web",
        &spec("release"),
        &failing,
        now,
        Some(live),
    )
    .await
    .expect("spec written");
    let live = apps.get("web").await.expect("get");
    assert_eq!(live.data["spec"]["source"]["branch"], "release");
    assert_eq!(
        live.data["spec"]["suspend"], true,
        "suspend is not rollgit's"
    );
    assert_eq!(live.data["status"]["phase"], "failed");
    assert_eq!(live.data["status"]["componentType"], "-");
    assert_eq!(live.data["status"]["promotion"]["message"], "kept");

    // An older rollgit's CRD, with the status subresource, installed by the same field manager.
    use kube::CustomResourceExt;
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(client.clone());
    crds.patch(
        "applications.rollgit.dev",
        &kube::api::PatchParams::apply(rollgit::k8s::FIELD_MANAGER).force(),
        &kube::api::Patch::Apply(&rollgit::k8s::Application::crd()),
    )
    .await
    .expect("the older CRD");
    // The writer still believes the CRD has no subresource: the create's response shows the
    // status was dropped, and the status goes to applications/status.
    assert!(!rollgit::k8s::crds::status_subresource());
    let before = application_writes(&tc).await;
    app_status::write_status_over(
        &client,
        "default",
        "legacy",
        &spec("main"),
        &running,
        now,
        None,
    )
    .await
    .expect("status written");
    assert_eq!(
        new_writes(&before, &application_writes(&tc).await),
        [("/CREATE".to_string(), 1), ("status/PATCH".to_string(), 1)]
    );
    assert!(rollgit::k8s::crds::status_subresource(), "learned");
    let live = apps.get("legacy").await.expect("get");
    assert_eq!(live.data["status"]["phase"], "running");
    // From then on a status change goes straight to applications/status.
    let before = application_writes(&tc).await;
    app_status::write_status_over(
        &client,
        "default",
        "legacy",
        &spec("main"),
        &failing,
        now,
        Some(live),
    )
    .await
    .expect("status written");
    assert_eq!(
        new_writes(&before, &application_writes(&tc).await),
        [("status/PATCH".to_string(), 1)]
    );
    assert_eq!(
        apps.get("legacy").await.expect("get").data["status"]["phase"],
        "failed"
    );

    // rollgit installs its own CRD again: the subresource goes, and the writer knows it.
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs installed");
    assert!(!rollgit::k8s::crds::status_subresource());
    let live = apps.get("legacy").await.expect("get");
    let generation = live.metadata.generation;
    let before = application_writes(&tc).await;
    app_status::write_status_over(
        &client,
        "default",
        "legacy",
        &spec("main"),
        &running,
        now,
        Some(live),
    )
    .await
    .expect("status written");
    assert_eq!(
        new_writes(&before, &application_writes(&tc).await),
        [("/PATCH".to_string(), 1)]
    );
    let live = apps.get("legacy").await.expect("get");
    assert_eq!(live.data["status"]["phase"], "running");
    assert!(
        live.metadata.generation > generation,
        "without a status subresource a status change is a new generation, as in kube-apiserver"
    );
}
