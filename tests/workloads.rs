//! Scenario tests of the dev cluster's simulated controllers, kubelet and fault injection,
//! through the real kubectl and kube-rs watches.

mod common;

use common::{TestCluster, WAIT, table_rows};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::runtime::wait::await_condition;
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::time::Duration;

const READY_DELAY: Duration = Duration::from_millis(150);

async fn cluster() -> TestCluster {
    TestCluster::start_with(|c| {
        c.simulation.ready_delay = READY_DELAY;
        c.simulation.fail_images = vec!["*:bad".into()];
        c.simulation.crash_backoff = Duration::from_millis(300);
    })
    .await
}

fn deployment(name: &str, replicas: i32, image: &str, strategy: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
{strategy}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: app
        image: \"{image}\"
"
    )
}

async fn apply(c: &TestCluster, name: &str, yaml: &str) {
    let f = c.file(name, yaml);
    c.kubectl_ok(&["apply", "-f", f.to_str().expect("utf-8 path")])
        .await;
}

async fn rollout_ok(c: &TestCluster, what: &str) -> String {
    c.kubectl_ok(&["rollout", "status", what, "--timeout=60s"])
        .await
}

/// Waits (through a watch) until the named object satisfies `cond`.
async fn wait_for<K>(api: &Api<K>, name: &str, what: &str, cond: impl Fn(&K) -> bool) -> K
where
    K: Clone
        + std::fmt::Debug
        + Send
        + k8s_openapi::serde::de::DeserializeOwned
        + kube::Resource
        + 'static,
{
    let found = tokio::time::timeout(
        WAIT,
        await_condition(api.clone(), name, move |o: Option<&K>| o.is_some_and(&cond)),
    )
    .await
    .unwrap_or_else(|_| panic!("timed out waiting for {name}: {what}"))
    .expect("watch works");
    found.unwrap_or_else(|| panic!("{name} vanished while waiting for {what}"))
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn owner_name(p: &Pod) -> String {
    p.metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.first())
        .map(|o| o.name.clone())
        .unwrap_or_default()
}

fn revision(rs: &ReplicaSet) -> String {
    rs.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned()
        .unwrap_or_default()
}

async fn replicasets(c: &TestCluster, app: &str) -> BTreeMap<String, ReplicaSet> {
    let api: Api<ReplicaSet> = Api::namespaced(c.client().await, "default");
    api.list(&kube::api::ListParams::default().labels(&format!("app={app}")))
        .await
        .expect("list replicasets")
        .items
        .into_iter()
        .map(|r| (r.metadata.name.clone().unwrap_or_default(), r))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_status_completes_for_five_replicas_with_nodes_and_events() {
    let c = cluster().await;
    let rows = table_rows(&c.kubectl_ok(&["get", "nodes"]).await);
    assert_eq!(
        rows.len(),
        4,
        "a header and three simulated nodes: {rows:?}"
    );
    for r in &rows[1..] {
        assert_eq!(r[1], "Ready", "{r:?}");
        assert_eq!(r[4], "v1.33.0", "{r:?}");
    }
    apply(&c, "web.yaml", &deployment("web", 5, "nginx:1.27", "")).await;
    let out = rollout_ok(&c, "deployment/web").await;
    assert!(out.contains("successfully rolled out"), "{out}");

    let d: Deployment = Api::namespaced(c.client().await, "default")
        .get("web")
        .await
        .expect("get deployment");
    let st = d.status.expect("status");
    assert_eq!(st.observed_generation, Some(1));
    assert_eq!(st.replicas, Some(5));
    assert_eq!(st.updated_replicas, Some(5));
    assert_eq!(st.ready_replicas, Some(5));
    assert_eq!(st.available_replicas, Some(5));
    assert_eq!(st.unavailable_replicas, None);
    let conds = st.conditions.expect("conditions");
    let cond = |t: &str| conds.iter().find(|c| c.type_ == t).expect("condition");
    assert_eq!(
        cond("Available").reason.as_deref(),
        Some("MinimumReplicasAvailable")
    );
    assert_eq!(
        cond("Progressing").reason.as_deref(),
        Some("NewReplicaSetAvailable")
    );

    let rss = replicasets(&c, "web").await;
    assert_eq!(rss.len(), 1);
    let (rs_name, rs) = rss.iter().next().expect("one replicaset");
    let hash = rs.metadata.labels.as_ref().expect("labels")["pod-template-hash"].clone();
    assert_eq!(rs_name, &format!("web-{hash}"));
    assert_eq!(revision(rs), "1");
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let pods = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("list pods")
        .items;
    assert_eq!(pods.len(), 5);
    for p in &pods {
        let name = p.metadata.name.as_deref().unwrap_or_default();
        assert!(
            name.starts_with(&format!("{rs_name}-")) && name.len() == rs_name.len() + 6,
            "{name}"
        );
        let owner = &p.metadata.owner_references.as_ref().expect("owner")[0];
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let spec = p.spec.as_ref().expect("spec");
        assert!(
            spec.node_name
                .as_deref()
                .is_some_and(|n| n.starts_with("devcluster-node-"))
        );
        let s = p.status.as_ref().expect("status");
        assert_eq!(s.phase.as_deref(), Some("Running"));
        assert!(s.pod_ip.is_some() && s.host_ip.is_some() && s.start_time.is_some());
        let cs = &s.container_statuses.as_ref().expect("container statuses")[0];
        assert!(cs.ready && cs.started == Some(true) && cs.restart_count == 0);
        assert!(cs.state.as_ref().and_then(|s| s.running.as_ref()).is_some());
        assert!(pod_ready(p));
    }
    let events = c.kubectl_ok(&["get", "events"]).await;
    for want in [
        "ScalingReplicaSet",
        &format!("Scaled up replica set {rs_name} from 0 to 5"),
        "SuccessfulCreate",
        "Scheduled",
        "Pulled",
        "Created",
        "Started",
    ] {
        assert!(events.contains(want), "events lack {want:?}:\n{events}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_image_never_exceeds_surge_nor_drops_below_min_available() {
    let c = cluster().await;
    let strategy =
        "  strategy:\n    type: RollingUpdate\n    rollingUpdate: {maxSurge: 3, maxUnavailable: 2}";
    apply(
        &c,
        "web.yaml",
        &deployment("web", 10, "nginx:1.27", strategy),
    )
    .await;
    rollout_ok(&c, "deployment/web").await;
    let old = replicasets(&c, "web").await;
    assert_eq!(old.len(), 1);

    // Record every watch event's view of the Pods and check the invariant on each, until all
    // 10 Pods are ready and belong to a ReplicaSet other than the first.
    let old_name = old.keys().next().cloned().expect("old replicaset");
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let checker = tokio::spawn(async move {
        let mut stream =
            std::pin::pin!(watcher(pods, watcher::Config::default().labels("app=web")));
        let mut live: BTreeMap<String, Pod> = BTreeMap::new();
        let mut init: BTreeMap<String, Pod> = BTreeMap::new();
        let mut ready_tx = Some(ready_tx);
        let mut violations = Vec::new();
        let mut checked = 0usize;
        while let Some(ev) = stream.next().await {
            match ev.expect("watch event") {
                watcher::Event::Init => init.clear(),
                watcher::Event::InitApply(p) => {
                    init.insert(p.metadata.name.clone().unwrap_or_default(), p);
                }
                watcher::Event::InitDone => {
                    live = std::mem::take(&mut init);
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                watcher::Event::Apply(p) => {
                    live.insert(p.metadata.name.clone().unwrap_or_default(), p);
                }
                watcher::Event::Delete(p) => {
                    live.remove(p.metadata.name.as_deref().unwrap_or_default());
                }
            }
            if ready_tx.is_some() {
                continue;
            }
            checked += 1;
            let total = live.len();
            let available = live.values().filter(|p| pod_ready(p)).count();
            if total > 10 + 3 || available < 10 - 2 {
                violations.push(format!("{total} pods, {available} available"));
            }
            let owners: std::collections::BTreeSet<String> =
                live.values().map(owner_name).collect();
            if total == 10 && available == 10 && owners.len() == 1 && !owners.contains(&old_name) {
                break;
            }
        }
        (violations, checked)
    });
    tokio::time::timeout(WAIT, ready_rx)
        .await
        .expect("pod watch starts")
        .expect("checker alive");
    c.kubectl_ok(&["set", "image", "deployment/web", "app=nginx:1.28"])
        .await;
    rollout_ok(&c, "deployment/web").await;
    let rss = replicasets(&c, "web").await;
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let new_name = rss
        .iter()
        .find(|(n, _)| !old.contains_key(*n))
        .map(|(n, _)| n.clone())
        .expect("a new replicaset");
    for (n, rs) in &rss {
        let want = if *n == new_name { 10 } else { 0 };
        assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(want), "{n}");
    }
    assert_eq!(revision(&rss[&new_name]), "2");
    let list = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("list pods")
        .items;
    assert_eq!(list.len(), 10);
    assert!(list.iter().all(|p| owner_name(p) == new_name));
    let (violations, checked) = tokio::time::timeout(WAIT, checker)
        .await
        .expect("the watch sees the rollout finish")
        .expect("checker task");
    assert!(violations.is_empty(), "invariant broken: {violations:?}");
    assert!(checked > 20, "the watch saw the rollout ({checked} events)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn faulty_image_ends_in_progress_deadline_exceeded() {
    let c = cluster().await;
    let strategy = "  progressDeadlineSeconds: 2";
    apply(
        &c,
        "web.yaml",
        &deployment("web", 3, "nginx:1.27", strategy),
    )
    .await;
    rollout_ok(&c, "deployment/web").await;
    c.kubectl_ok(&["set", "image", "deployment/web", "app=nginx:bad"])
        .await;
    let err = c
        .kubectl_fails(&["rollout", "status", "deployment/web", "--timeout=60s"])
        .await;
    assert!(err.contains("exceeded its progress deadline"), "{err}");
    let d: Deployment = Api::namespaced(c.client().await, "default")
        .get("web")
        .await
        .expect("get deployment");
    let conds = d.status.and_then(|s| s.conditions).expect("conditions");
    let p = conds
        .iter()
        .find(|c| c.type_ == "Progressing")
        .expect("Progressing");
    assert_eq!(
        (p.status.as_str(), p.reason.as_deref()),
        ("False", Some("ProgressDeadlineExceeded"))
    );
    let a = conds
        .iter()
        .find(|c| c.type_ == "Available")
        .expect("Available");
    assert_eq!(a.status, "True", "the old pods keep it available");

    // The bad Pods crash-loop with a growing restart count and never become Ready.
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let bad = pods
        .list(&kube::api::ListParams::default().labels("app=web"))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .find(|p| {
            p.spec
                .as_ref()
                .is_some_and(|s| s.containers[0].image.as_deref() == Some("nginx:bad"))
        })
        .expect("a pod with the bad image");
    let name = bad.metadata.name.clone().expect("name");
    let p = wait_for(&pods, &name, "restartCount >= 2", |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .is_some_and(|cs| cs[0].restart_count >= 2)
    })
    .await;
    assert!(!pod_ready(&p));
    let cs = &p
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.clone())
        .expect("statuses")[0];
    let waiting = cs
        .state
        .as_ref()
        .and_then(|s| s.waiting.as_ref())
        .expect("waiting");
    assert_eq!(waiting.reason.as_deref(), Some("CrashLoopBackOff"));
    let pods_out = c.kubectl_ok(&["get", "pods"]).await;
    assert!(pods_out.contains("CrashLoopBackOff"), "{pods_out}");
    let events = c.kubectl_ok(&["get", "events"]).await;
    assert!(events.contains("BackOff"), "{events}");
    assert!(
        events.contains("Back-off restarting failed container app"),
        "{events}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_undo_returns_to_the_previous_replicaset() {
    let c = cluster().await;
    apply(&c, "web.yaml", &deployment("web", 3, "nginx:1.27", "")).await;
    rollout_ok(&c, "deployment/web").await;
    let first = replicasets(&c, "web")
        .await
        .into_keys()
        .next()
        .expect("first rs");
    c.kubectl_ok(&["set", "image", "deployment/web", "app=nginx:1.28"])
        .await;
    rollout_ok(&c, "deployment/web").await;
    let history = c
        .kubectl_ok(&["rollout", "history", "deployment/web"])
        .await;
    assert!(
        history.contains("1 ") && history.contains("2 "),
        "{history}"
    );
    c.kubectl_ok(&["rollout", "undo", "deployment/web"]).await;
    rollout_ok(&c, "deployment/web").await;
    let rss = replicasets(&c, "web").await;
    assert_eq!(
        rss.len(),
        2,
        "undo reuses the first ReplicaSet: {:?}",
        rss.keys()
    );
    for (n, rs) in &rss {
        let want = if *n == first { 3 } else { 0 };
        assert_eq!(rs.spec.as_ref().and_then(|s| s.replicas), Some(want), "{n}");
    }
    assert_eq!(revision(&rss[&first]), "3");
    let d = c
        .kubectl_json(&["get", "deployment", "web", "-o", "json"])
        .await;
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "3"
    );
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    let history = c
        .kubectl_ok(&["rollout", "history", "deployment/web"])
        .await;
    assert!(
        history.contains("2 ") && history.contains("3 "),
        "{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale_up_and_down() {
    let c = cluster().await;
    apply(&c, "web.yaml", &deployment("web", 2, "nginx:1.27", "")).await;
    rollout_ok(&c, "deployment/web").await;
    let deployments: Api<Deployment> = Api::namespaced(c.client().await, "default");
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    for n in [7, 1] {
        c.kubectl_ok(&["scale", "deployment/web", &format!("--replicas={n}")])
            .await;
        wait_for(
            &deployments,
            "web",
            "scaled and available",
            |d: &Deployment| {
                let s = d.status.clone().unwrap_or_default();
                s.replicas == Some(n)
                    && s.available_replicas == Some(n)
                    && s.updated_replicas == Some(n)
            },
        )
        .await;
        let list = pods
            .list(&kube::api::ListParams::default().labels("app=web"))
            .await
            .expect("list pods")
            .items;
        assert_eq!(list.len(), n as usize);
        assert!(list.iter().all(pod_ready));
    }
    assert_eq!(
        replicasets(&c, "web").await.len(),
        1,
        "scaling makes no new ReplicaSet"
    );
    let events = c.kubectl_ok(&["get", "events"]).await;
    assert!(
        events.contains("from 2 to 7") && events.contains("from 7 to 1"),
        "{events}"
    );
    assert!(events.contains("SuccessfulDelete"), "{events}");
}

fn image_of(p: &Pod) -> String {
    p.spec
        .as_ref()
        .and_then(|s| s.containers[0].image.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_partition_updates_only_ordinals_at_or_above_it() {
    let c = cluster().await;
    let sts = "apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 4
  serviceName: db
  selector: {matchLabels: {app: db}}
  updateStrategy:
    type: RollingUpdate
    rollingUpdate: {partition: 2}
  template:
    metadata: {labels: {app: db}}
    spec:
      containers: [{name: app, image: \"postgres:16\"}]
";
    apply(&c, "db.yaml", sts).await;
    rollout_ok(&c, "statefulset/db").await;
    let api: Api<StatefulSet> = Api::namespaced(c.client().await, "default");
    let first = api
        .get("db")
        .await
        .expect("get sts")
        .status
        .expect("status");
    let rev1 = first.update_revision.clone().expect("updateRevision");
    assert_eq!(first.current_revision.as_deref(), Some(rev1.as_str()));
    assert_eq!((first.replicas, first.ready_replicas), (4, Some(4)));
    c.kubectl_ok(&["set", "image", "statefulset/db", "app=postgres:17"])
        .await;
    let out = rollout_ok(&c, "statefulset/db").await;
    assert!(out.contains("partitioned roll out complete"), "{out}");
    let st = wait_for(
        &api,
        "db",
        "two updated and all ready",
        |s: &StatefulSet| {
            let st = s.status.clone().unwrap_or_default();
            st.updated_replicas == Some(2)
                && st.ready_replicas == Some(4)
                && st.observed_generation == Some(2)
        },
    )
    .await
    .status
    .expect("status");
    let rev2 = st.update_revision.clone().expect("updateRevision");
    assert_ne!(rev1, rev2);
    assert_eq!(st.current_revision.as_deref(), Some(rev1.as_str()));
    assert_eq!(st.current_replicas, Some(2));
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    for ord in 0..4 {
        let p = pods.get(&format!("db-{ord}")).await.expect("ordinal pod");
        let (image, rev) = if ord >= 2 {
            ("postgres:17", &rev2)
        } else {
            ("postgres:16", &rev1)
        };
        assert_eq!(image_of(&p), image, "db-{ord}");
        assert_eq!(
            &p.metadata.labels.as_ref().expect("labels")["controller-revision-hash"],
            rev,
            "db-{ord}"
        );
    }
    let revs = c
        .kubectl_ok(&["get", "controllerrevisions", "-o", "name"])
        .await;
    assert!(revs.contains(&rev1) && revs.contains(&rev2), "{revs}");
    // Lowering the partition finishes the rollout; the current revision follows.
    c.kubectl_ok(&[
        "patch",
        "statefulset/db",
        "-p",
        r#"{"spec":{"updateStrategy":{"rollingUpdate":{"partition":0}}}}"#,
    ])
    .await;
    rollout_ok(&c, "statefulset/db").await;
    let st = wait_for(&api, "db", "all updated", |s: &StatefulSet| {
        let st = s.status.clone().unwrap_or_default();
        st.updated_replicas == Some(4) && st.ready_replicas == Some(4)
    })
    .await
    .status
    .expect("status");
    assert_eq!(st.current_revision.as_deref(), Some(rev2.as_str()));
    let p0 = pods.get("db-0").await.expect("db-0");
    assert_eq!(image_of(&p0), "postgres:17");
}

const CLONESET_CRD: &str = "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: clonesets.apps.kruise.io}
spec:
  group: apps.kruise.io
  scope: Namespaced
  names: {kind: CloneSet, listKind: CloneSetList, plural: clonesets, singular: cloneset, shortNames: [clone]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    subresources:
      status: {}
      scale: {specReplicasPath: .spec.replicas, statusReplicasPath: .status.replicas, labelSelectorPath: .status.labelSelector}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cloneset_partition_keeps_the_right_number_of_old_pods_in_place() {
    let c = cluster().await;
    apply(&c, "crd.yaml", CLONESET_CRD).await;
    c.kubectl_ok(&[
        "wait",
        "--for=condition=Established",
        "crd/clonesets.apps.kruise.io",
        "--timeout=30s",
    ])
    .await;
    let cs = |image: &str, partition: &str| {
        format!(
            "apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata: {{name: app}}
spec:
  replicas: 5
  selector: {{matchLabels: {{app: app}}}}
  updateStrategy: {{type: InPlaceIfPossible, partition: {partition}, maxUnavailable: 2}}
  template:
    metadata: {{labels: {{app: app}}}}
    spec:
      containers: [{{name: app, image: \"{image}\"}}]
"
        )
    };
    apply(&c, "cs.yaml", &cs("nginx:1.27", "0")).await;
    let get_status = || async {
        c.kubectl_json(&["get", "clonesets.apps.kruise.io", "app", "-o", "json"])
            .await["status"]
            .clone()
    };
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let all_pods = || async {
        pods.list(&kube::api::ListParams::default().labels("app=app"))
            .await
            .expect("list pods")
            .items
    };
    // Wait for 5 ready pods through a watch on the CloneSet.
    let dynamic = kube::discovery::ApiResource {
        group: "apps.kruise.io".into(),
        version: "v1alpha1".into(),
        api_version: "apps.kruise.io/v1alpha1".into(),
        kind: "CloneSet".into(),
        plural: "clonesets".into(),
    };
    let api: Api<kube::api::DynamicObject> =
        Api::namespaced_with(c.client().await, "default", &dynamic);
    let wait_cs = |what: &'static str, f: fn(&serde_json::Value) -> bool| {
        let api = api.clone();
        async move {
            let found = tokio::time::timeout(
                WAIT,
                await_condition(api, "app", move |o: Option<&kube::api::DynamicObject>| {
                    o.is_some_and(|o| f(&o.data["status"]))
                }),
            )
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for the CloneSet: {what}"))
            .expect("watch works");
            found.expect("cloneset exists")
        }
    };
    wait_cs("5 ready", |s| {
        s["readyReplicas"] == 5 && s["updatedReadyReplicas"] == 5
    })
    .await;
    let before: std::collections::BTreeSet<String> = all_pods()
        .await
        .iter()
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let rev1 = get_status().await["updateRevision"]
        .as_str()
        .expect("rev")
        .to_string();

    // 40% of 5 rounds up to 2 pods kept on the old revision.
    apply(&c, "cs.yaml", &cs("nginx:1.28", "\"40%\"")).await;
    wait_cs("3 updated and ready", |s| {
        s["updatedReplicas"] == 3
            && s["updatedReadyReplicas"] == 3
            && s["readyReplicas"] == 5
            && s["observedGeneration"] == 2
    })
    .await;
    let st = get_status().await;
    assert_ne!(st["updateRevision"], rev1.as_str());
    assert_eq!(st["currentRevision"], rev1.as_str());
    assert_eq!(st["expectedUpdatedReplicas"], 3);
    let now = all_pods().await;
    let after: std::collections::BTreeSet<String> =
        now.iter().filter_map(|p| p.metadata.name.clone()).collect();
    assert_eq!(before, after, "in-place update keeps the pods");
    let new_pods: Vec<&Pod> = now.iter().filter(|p| image_of(p) == "nginx:1.28").collect();
    assert_eq!(new_pods.len(), 3);
    assert_eq!(
        now.iter().filter(|p| image_of(p) == "nginx:1.27").count(),
        2
    );
    for p in &new_pods {
        assert_eq!(
            p.metadata.labels.as_ref().expect("labels")["controller-revision-hash"],
            st["updateRevision"].as_str().unwrap_or_default()
        );
        let cs = &p
            .status
            .as_ref()
            .and_then(|s| s.container_statuses.clone())
            .expect("statuses")[0];
        assert_eq!(
            (cs.image.as_str(), cs.restart_count, cs.ready),
            ("nginx:1.28", 1, true)
        );
    }
    // Paused: a partition change does nothing; resumed: everything is updated.
    let paused =
        cs("nginx:1.28", "0").replace("maxUnavailable: 2}", "maxUnavailable: 2, paused: true}");
    apply(&c, "cs.yaml", &paused).await;
    wait_cs("observed paused", |s| s["observedGeneration"] == 3).await;
    assert_eq!(get_status().await["updatedReplicas"], 3);
    apply(&c, "cs.yaml", &cs("nginx:1.28", "0")).await;
    wait_cs("all updated", |s| {
        s["updatedReadyReplicas"] == 5 && s["currentRevision"] == s["updateRevision"]
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn data_dir_restart_keeps_workloads_and_resumes_simulation() {
    let tweak = |c: &mut rollgit_devcluster::Config, dir: &std::path::Path| {
        c.data_dir = Some(dir.join("data"));
        c.simulation.ready_delay = READY_DELAY;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let data = dir.path().to_path_buf();
    let c = TestCluster::start_in(dir, |cfg| tweak(cfg, &data)).await;
    apply(&c, "web.yaml", &deployment("web", 3, "nginx:1.27", "")).await;
    rollout_ok(&c, "deployment/web").await;
    let before = c.kubectl_ok(&["get", "pods", "-o", "name"]).await;
    let dir = c.stop().await;

    let c = TestCluster::start_in(dir, |cfg| tweak(cfg, &data)).await;
    let after = c.kubectl_ok(&["get", "pods", "-o", "name"]).await;
    assert_eq!(before, after, "the pods survive the restart");
    let rows = table_rows(&c.kubectl_ok(&["get", "nodes"]).await);
    assert_eq!(rows.len(), 4, "no duplicate nodes: {rows:?}");
    rollout_ok(&c, "deployment/web").await;
    // The controllers resume: a new rollout and a scale-up complete after the restart.
    c.kubectl_ok(&["set", "image", "deployment/web", "app=nginx:1.28"])
        .await;
    rollout_ok(&c, "deployment/web").await;
    c.kubectl_ok(&["scale", "deployment/web", "--replicas=4"])
        .await;
    rollout_ok(&c, "deployment/web").await;
    let d = c
        .kubectl_json(&["get", "deployment", "web", "-o", "json"])
        .await;
    assert_eq!(d["status"]["availableReplicas"], 4);
    assert_eq!(
        d["metadata"]["annotations"]["deployment.kubernetes.io/revision"],
        "2"
    );
    assert_eq!(replicasets(&c, "web").await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn daemonset_runs_one_pod_per_node_and_rolls() {
    let c = cluster().await;
    let ds = |image: &str| {
        format!(
            "apiVersion: apps/v1
kind: DaemonSet
metadata: {{name: agent}}
spec:
  selector: {{matchLabels: {{app: agent}}}}
  template:
    metadata: {{labels: {{app: agent}}}}
    spec:
      containers: [{{name: app, image: \"{image}\"}}]
"
        )
    };
    apply(&c, "ds.yaml", &ds("fluentd:1")).await;
    rollout_ok(&c, "daemonset/agent").await;
    c.kubectl_ok(&["set", "image", "daemonset/agent", "app=fluentd:2"])
        .await;
    rollout_ok(&c, "daemonset/agent").await;
    let api: Api<DaemonSet> = Api::namespaced(c.client().await, "default");
    let st = wait_for(&api, "agent", "all updated", |d: &DaemonSet| {
        let s = d.status.clone().unwrap_or_default();
        s.updated_number_scheduled == Some(3) && s.number_available == Some(3)
    })
    .await
    .status
    .expect("status");
    assert_eq!(
        (
            st.desired_number_scheduled,
            st.current_number_scheduled,
            st.number_ready
        ),
        (3, 3, 3)
    );
    let pods: Api<Pod> = Api::namespaced(c.client().await, "default");
    let list = pods
        .list(&kube::api::ListParams::default().labels("app=agent"))
        .await
        .expect("list pods")
        .items;
    let nodes: std::collections::BTreeSet<String> = list
        .iter()
        .filter_map(|p| p.spec.as_ref().and_then(|s| s.node_name.clone()))
        .collect();
    assert_eq!((list.len(), nodes.len()), (3, 3), "one pod per node");
    assert!(list.iter().all(|p| image_of(p) == "fluentd:2"));
}
