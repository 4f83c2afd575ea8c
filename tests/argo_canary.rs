//! Argo Rollouts canaries run from Git by rollgit (issue 14): seed 002's canary committed to a
//! real repository, executed step by step on the dev cluster with Argo's exact counts, pauses
//! driven by the daemon's clock, promoted and aborted through the gates (`rollgit promote`,
//! `rollgit abort`, and the `kubectl argo rollouts` plugin's own patches sent with kubectl),
//! an abort written back to Git as a revert, traffic routing (Service selectors, the NGINX
//! canary Ingress, Gateway API HTTPRoute weights), and the status compared with Argo's format.
//! A watch checks at every ReplicaSet event that availability never drops below what
//! `maxUnavailable` allows.

mod common;

use common::rollouts::{remote_file, remote_log};
use common::world::{GitRepo, World, wait_for};
use common::{TestCluster, WAIT, table_columns};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const HASH: &str = "rollouts-pod-template-hash";

fn argo(w: &World) -> Api<DynamicObject> {
    Api::namespaced_with(
        w.client.clone(),
        "default",
        &rollgit::rollout::argo::resource(),
    )
}

fn replica_sets_api(client: &kube::Client) -> Api<k8s_openapi::api::apps::v1::ReplicaSet> {
    Api::namespaced(client.clone(), "default")
}

/// Waits (bounded) until the cluster serves Argo Rollouts (rollgit installs the CRD when an
/// app needs it).
async fn wait_crd(client: &kube::Client) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    use kube::runtime::wait::{await_condition, conditions};
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    tokio::time::timeout(
        WAIT,
        await_condition(
            crds,
            "rollouts.argoproj.io",
            conditions::is_crd_established(),
        ),
    )
    .await
    .expect("the Argo Rollouts CRD within the bound")
    .expect("watching CRDs");
}

/// Waits until Argo Rollout `name` has a status that describes its spec and satisfies `cond`.
async fn wait_argo(w: &World, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    wait_crd(&w.client).await;
    let found = wait_for(&argo(w), name, what, |o: Option<&DynamicObject>| {
        o.is_some_and(|o| {
            o.data["status"]["observedGeneration"].as_str()
                == o.metadata.generation.map(|g| g.to_string()).as_deref()
                && cond(&o.data["status"])
        })
    })
    .await
    .expect("the rollout exists");
    found.data["status"].clone()
}

/// ReplicaSet hash → spec.replicas of the Rollout `name`'s ReplicaSets.
async fn rs_specs(client: &kube::Client, name: &str) -> BTreeMap<String, i64> {
    replica_sets_api(client)
        .list(&ListParams::default().labels(HASH))
        .await
        .expect("list ReplicaSets")
        .items
        .into_iter()
        .filter(|rs| {
            rs.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&format!("{name}-")))
        })
        .filter_map(|rs| {
            let hash = rs.metadata.labels.as_ref()?.get(HASH)?.clone();
            Some((hash, i64::from(rs.spec.as_ref()?.replicas.unwrap_or(1))))
        })
        .collect()
}

/// Waits (through a ReplicaSet watch, bounded) until the Rollout's canary and stable
/// ReplicaSets have `want` = (canary, stable) replicas, all of them available, and returns
/// the status.
async fn wait_settled(w: &World, name: &str, step: usize, want: (i64, i64)) -> Value {
    let what = format!("{name} at step {step} with {want:?}");
    let deadline = tokio::time::Instant::now() + WAIT;
    let api = replica_sets_api(&w.client);
    // Woken by a change of a ReplicaSet or of the Rollout (its step moves after the counts).
    let mut stream = futures::stream::select(
        watcher(api.clone(), watcher::Config::default().labels(HASH)).map(|_| ()),
        watcher(argo(w), watcher::Config::default()).map(|_| ()),
    )
    .boxed();
    loop {
        let status = argo(w).get(name).await.expect("get the Rollout").data["status"].clone();
        let canary = status["currentPodHash"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
        let list = api
            .list(&ListParams::default().labels(HASH))
            .await
            .expect("list ReplicaSets");
        let counts = |hash: &str| {
            list.items
                .iter()
                .find(|rs| {
                    rs.metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(HASH))
                        .map(String::as_str)
                        == Some(hash)
                })
                .map(|rs| {
                    (
                        i64::from(rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                        i64::from(
                            rs.status
                                .as_ref()
                                .and_then(|s| s.available_replicas)
                                .unwrap_or(0),
                        ),
                    )
                })
                .unwrap_or((0, 0))
        };
        let (c, ca) = counts(&canary);
        let (s, sa) = counts(&stable);
        if status["currentStepIndex"].as_u64() == Some(step as u64)
            && (c, s) == want
            && (ca, sa) == want
        {
            return status;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {WAIT:?}; canary {c}/{ca} stable {s}/{sa}, status {status:#}"
        );
        let _ = tokio::time::timeout_at(deadline, stream.next()).await;
    }
}

/// Available pods per ReplicaSet, and the lowest total seen since `reset()`.
type AvailableSeen = (BTreeMap<String, i64>, Option<i64>);

/// At every ReplicaSet event, the total available pods of the watched Rollout's
/// ReplicaSets; `min()` is the lowest seen since `reset()`.
#[derive(Clone)]
struct Availability {
    state: Arc<Mutex<AvailableSeen>>,
    total: tokio::sync::watch::Sender<i64>,
}

impl Availability {
    fn watch(client: &kube::Client, rollout: &str) -> Self {
        let me = Availability {
            state: Arc::default(),
            total: tokio::sync::watch::channel(0).0,
        };
        let st = me.state.clone();
        let total_tx = me.total.clone();
        let api = replica_sets_api(client);
        let prefix = format!("{rollout}-");
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default().labels(HASH))
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                let Ok(mut s) = st.lock() else { return };
                let (rs, gone) = match ev {
                    Ok(watcher::Event::Apply(rs)) | Ok(watcher::Event::InitApply(rs)) => {
                        (rs, false)
                    }
                    Ok(watcher::Event::Delete(rs)) => (rs, true),
                    _ => continue,
                };
                let name = rs.metadata.name.clone().unwrap_or_default();
                if !name.starts_with(&prefix) {
                    continue;
                }
                if gone {
                    s.0.remove(&name);
                } else {
                    let n = rs
                        .status
                        .as_ref()
                        .and_then(|s| s.available_replicas)
                        .unwrap_or(0);
                    s.0.insert(name, i64::from(n));
                }
                let total: i64 = s.0.values().sum();
                s.1 = Some(s.1.map_or(total, |m| m.min(total)));
                total_tx.send_replace(total);
            }
        });
        me
    }

    /// Waits (bounded) until the watch has seen `n` available pods, then starts counting the
    /// minimum from there.
    async fn reset_at(&self, n: i64) {
        let mut rx = self.total.subscribe();
        tokio::time::timeout(WAIT, rx.wait_for(|t| *t == n))
            .await
            .expect("the availability watch sees the pods within the bound")
            .expect("the watch runs");
        self.reset();
    }

    fn reset(&self) {
        if let Ok(mut s) = self.state.lock() {
            let total: i64 = s.0.values().sum();
            s.1 = Some(total);
        }
    }

    fn min(&self) -> i64 {
        self.state.lock().ok().and_then(|s| s.1).unwrap_or_default()
    }
}

/// The seed's Rollout with `image` and the given canary block (`minReadySeconds` is left out:
/// the dev cluster's kubelet counts it in wall-clock seconds).
fn seed002(image: &str, steps: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: example-rollout
spec:
  replicas: 10
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: {image}
        ports:
        - containerPort: 80
  revisionHistoryLimit: 3
  strategy:
    canary:
      maxSurge: \"25%\"
      maxUnavailable: 0
      steps:
{steps}"
    )
}

const SEED_STEPS: &str = "      - setWeight: 10
      - pause:
          duration: 1h
      - setWeight: 20
      - pause: {}
";

const PATH: &str = "apps/canary/rollout.yaml";

/// The rollgit binary: `ROLLGIT_TEST_BIN` (a copy, for machines where several checkouts share
/// one target directory and rebuild it under each other), nextest's (an archived run), else
/// cargo's.
fn rollgit_bin() -> std::ffi::OsString {
    std::env::var_os("ROLLGIT_TEST_BIN")
        .or_else(|| std::env::var_os("NEXTEST_BIN_EXE_rollgit"))
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_rollgit").into())
}

/// `rollgit ARGS` against the world's cluster.
async fn rollgit(c: &TestCluster, args: &[&str]) -> String {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(rollgit_bin())
            .args(args)
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("rollgit finishes")
    .expect("rollgit runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "rollgit {args:?} failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Pushes the seed's v1 and waits until it is healthy; returns its hash.
async fn deploy_v1(w: &World, steps: &str) -> String {
    w.push(PATH, &seed002("nginx:1.15.4", steps), "example-rollout v1")
        .await;
    let st = wait_argo(w, "example-rollout", "v1 healthy", |s| {
        s["phase"] == "Healthy" && s["availableReplicas"] == 10
    })
    .await;
    let hash = st["stableRS"]
        .as_str()
        .expect("a stable ReplicaSet")
        .to_string();
    assert_eq!(st["currentPodHash"], hash.as_str());
    hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed002_canary_runs_from_git_with_argos_counts_pauses_and_promote() {
    let w = World::start(GitRepo::with_remote().await).await;
    let v1 = deploy_v1(&w, SEED_STEPS).await;
    assert_eq!(
        rs_specs(&w.client, "example-rollout").await,
        BTreeMap::from([(v1.clone(), 10)])
    );
    // The CRD rollgit installed looks as users know it.
    let out = w
        .cluster
        .kubectl_ok(&["get", "rollouts.argoproj.io", "example-rollout"])
        .await;
    let rows = table_columns(&out);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "DESIRED",
            "CURRENT",
            "UP-TO-DATE",
            "AVAILABLE",
            "AGE"
        ]
    );
    assert_eq!(rows[1][..5], ["example-rollout", "10", "10", "10", "10"]);

    let avail = Availability::watch(&w.client, "example-rollout");
    avail.reset_at(10).await;
    w.push(
        PATH,
        &seed002("nginx:1.16.0", SEED_STEPS),
        "example-rollout v2",
    )
    .await;
    // setWeight 10: 1 canary + 9 stable, then the 1h pause.
    let st = wait_settled(&w, "example-rollout", 1, (1, 9)).await;
    let v2 = st["currentPodHash"].as_str().expect("a canary").to_string();
    assert_ne!(v2, v1);
    let st = wait_argo(&w, "example-rollout", "paused for an hour", |s| {
        s["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    })
    .await;
    assert_eq!(st["phase"], "Paused");
    assert_eq!(st["message"], "CanaryPauseStep");
    assert_eq!(st["controllerPause"], true);
    assert_eq!(
        rs_specs(&w.client, "example-rollout").await,
        BTreeMap::from([(v1.clone(), 9), (v2.clone(), 1)])
    );

    // The daemon's clock passes the hour: setWeight 20 (2 + 8), then the indefinite pause.
    w.clock.advance(Duration::from_secs(3601));
    let st = wait_settled(&w, "example-rollout", 3, (2, 8)).await;
    let st = if st["pauseConditions"].is_array() {
        st
    } else {
        wait_argo(&w, "example-rollout", "paused indefinitely", |s| {
            s["pauseConditions"][0]["reason"] == "CanaryPauseStep"
        })
        .await
    };
    assert_eq!(st["currentStepIndex"], 3);
    // Time does not end an indefinite pause: a jump wakes the controller, nothing moves.
    w.clock.advance(Duration::from_secs(24 * 3600));
    let st = wait_argo(&w, "example-rollout", "still paused", |s| {
        s["currentStepIndex"] == 3
    })
    .await;
    assert_eq!(st["phase"], "Paused");

    let out = rollgit(&w.cluster, &["promote", "example-rollout"]).await;
    assert_eq!(out, "rollout 'example-rollout' promoted\n");
    let st = wait_argo(&w, "example-rollout", "v2 promoted and healthy", |s| {
        s["phase"] == "Healthy" && s["stableRS"] == v2.as_str() && s["replicas"] == 10
    })
    .await;
    assert_eq!(st["currentStepIndex"], 4);
    assert_eq!(
        rs_specs(&w.client, "example-rollout").await,
        BTreeMap::from([(v1, 0), (v2, 10)])
    );
    assert_eq!(
        avail.min(),
        10,
        "maxUnavailable 0: never fewer than 10 available pods"
    );
    // The app is healthy and applied at the last commit.
    let head = remote_log(&w.git, "%H").await;
    w.wait_applied("canary", &head).await;
}

/// `rollgit ARGS` against the world's cluster: (exit code, stdout, stderr), whatever the code.
async fn rollgit_code(c: &TestCluster, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(rollgit_bin())
            .args(args)
            .arg("--kubeconfig")
            .arg(&c.kubeconfig)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("rollgit finishes")
    .expect("rollgit runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn get_rollouts_and_rollout_status_show_the_argo_canary_as_the_plugin_does() {
    let w = World::start(GitRepo::with_remote().await).await;
    let v1 = deploy_v1(&w, SEED_STEPS).await;
    w.push(
        PATH,
        &seed002("nginx:1.16.0", SEED_STEPS),
        "example-rollout v2",
    )
    .await;
    let st = wait_settled(&w, "example-rollout", 1, (1, 9)).await;
    let v2 = st["currentPodHash"].as_str().expect("a canary").to_string();
    wait_argo(&w, "example-rollout", "paused for an hour", |s| {
        s["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    })
    .await;

    // `kubectl argo rollouts list rollouts`' columns.
    let (code, out, err) = rollgit_code(&w.cluster, &["get", "rollouts"]).await;
    assert_eq!(code, Some(0), "{err}");
    let rows = table_columns(&out);
    assert_eq!(
        rows[0],
        [
            "NAME",
            "STRATEGY",
            "STATUS",
            "STEP",
            "SET-WEIGHT",
            "READY",
            "DESIRED",
            "UP-TO-DATE",
            "AVAILABLE"
        ],
        "{out}"
    );
    assert_eq!(
        rows[1],
        [
            "example-rollout",
            "Canary",
            "Paused",
            "1/4",
            "10",
            "10/10",
            "10",
            "1",
            "10"
        ],
        "{out}"
    );

    // The steps with the current one marked, the weights and the ReplicaSets.
    let (code, out, err) = rollgit_code(&w.cluster, &["rollout", "status", "canary"]).await;
    assert_eq!(code, Some(3), "not finished: {out}{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..7],
        [
            "example-rollout: Canary, Paused, step 1/4, set weight 10, actual weight 10",
            "  replicas: desired 10, current 10, updated 1, ready 10, available 10",
            "  message: CanaryPauseStep",
            "  ✔ step 0  setWeight: 10",
            "  ▶ step 1  pause: 1h   paused (rollgit promote example-rollout)",
            "    step 2  setWeight: 20",
            "    step 3  pause",
        ],
        "{out}"
    );
    let rs_table: Vec<&str> = lines[7..].iter().map(|l| l.trim_start()).collect();
    let rs_rows = table_columns(&rs_table.join("\n"));
    assert_eq!(
        rs_rows,
        [
            ["REVISION", "REPLICASET", "ROLE", "STATUS", "PODS", "IMAGES"].map(String::from),
            [
                "2".into(),
                format!("example-rollout-{v2}"),
                "canary".into(),
                "Healthy".into(),
                "1/1".into(),
                "nginx:1.16.0".into()
            ],
            [
                "1".into(),
                format!("example-rollout-{v1}"),
                "stable".into(),
                "Healthy".into(),
                "9/9".into(),
                "nginx:1.15.4".into()
            ],
        ],
        "{out}"
    );

    // --watch follows the canary until it is healthy, then exits 0.
    let watch = tokio::spawn({
        let kubeconfig = w.cluster.kubeconfig.clone();
        async move {
            tokio::time::timeout(
                WAIT,
                tokio::process::Command::new(rollgit_bin())
                    .args(["rollout", "status", "canary", "--watch", "--timeout", "2m"])
                    .arg("--kubeconfig")
                    .arg(&kubeconfig)
                    .kill_on_drop(true)
                    .output(),
            )
            .await
            .expect("rollout status --watch ends when the canary is healthy")
            .expect("rollgit runs")
        }
    });
    // The watch has printed the paused canary before it is promoted (bounded, no sleep).
    let out = rollgit(&w.cluster, &["promote", "example-rollout", "--full"]).await;
    assert_eq!(out, "rollout 'example-rollout' fully promoted\n");
    wait_argo(&w, "example-rollout", "v2 healthy", |s| {
        s["phase"] == "Healthy" && s["stableRS"] == v2.as_str()
    })
    .await;
    let out = watch.await.expect("the watch task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "example-rollout: Canary, Healthy, step 4/4, set weight 100, actual weight 100"
        ),
        "{stdout}"
    );
    let (code, out, _) = rollgit_code(&w.cluster, &["rollout", "status", "canary"]).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("  ✔ step 3  pause\n"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// Gates: promote --full, abort (with its revert in Git), retry, and the plugin's own patches.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promote_full_skips_the_remaining_steps_within_max_surge() {
    let w = World::start(GitRepo::with_remote().await).await;
    let v1 = deploy_v1(&w, SEED_STEPS).await;
    let avail = Availability::watch(&w.client, "example-rollout");
    avail.reset_at(10).await;
    w.push(
        PATH,
        &seed002("nginx:1.16.0", SEED_STEPS),
        "example-rollout v2",
    )
    .await;
    let st = wait_settled(&w, "example-rollout", 1, (1, 9)).await;
    let v2 = st["currentPodHash"].as_str().expect("a canary").to_string();
    let out = rollgit(&w.cluster, &["promote", "canary", "--full"]).await;
    assert_eq!(
        out, "rollout 'example-rollout' fully promoted\n",
        "an app names its Argo Rollouts"
    );
    let st = wait_argo(&w, "example-rollout", "v2 fully promoted", |s| {
        s["phase"] == "Healthy" && s["stableRS"] == v2.as_str() && s["replicas"] == 10
    })
    .await;
    assert!(
        st.get("promoteFull").is_none(),
        "cleared once promoted: {st:#}"
    );
    assert_eq!(
        rs_specs(&w.client, "example-rollout").await,
        BTreeMap::from([(v1, 0), (v2, 10)])
    );
    assert_eq!(avail.min(), 10);
}

/// An app with an NGINX-routed canary: Services `web-stable` and `web-canary`, the Ingress `web`
/// to the stable Service, and Rollout `web` (5 replicas) with `steps`.
fn routed_app(image: &str, canary_extra: &str, steps: &str) -> String {
    format!(
        "apiVersion: v1
kind: Service
metadata:
  name: web-stable
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata:
  name: web-canary
spec:
  selector: {{app: web}}
  ports: [{{port: 80, targetPort: 8080}}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: web
  annotations:
    kubernetes.io/ingress.class: nginx
spec:
  rules:
  - host: web.example
    http:
      paths:
      - path: /
        pathType: Prefix
        backend:
          service:
            name: web-stable
            port: {{number: 80}}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 5
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
{canary_extra}      trafficRouting:
        nginx:
          stableIngress: web
          additionalIngressAnnotations:
            canary-by-header: X-Canary
      steps:
{steps}"
    )
}

const ROUTED_STEPS: &str = "      - setWeight: 20
      - pause: {}
      - setWeight: 60
      - pause: {}
";

const WEB: &str = "apps/web/web.yaml";

/// The `rollouts-pod-template-hash` selectors of (web-canary, web-stable).
async fn selectors(w: &World) -> (String, String) {
    let api: Api<k8s_openapi::api::core::v1::Service> = w.api();
    let get = |name: &'static str| {
        let api = api.clone();
        async move {
            let s = api.get(name).await.expect("the Service exists");
            s.spec
                .and_then(|s| s.selector)
                .and_then(|m| m.get(HASH).cloned())
                .unwrap_or_default()
        }
    };
    (get("web-canary").await, get("web-stable").await)
}

/// The canary Ingress's annotations (None when it does not exist).
async fn canary_ingress(w: &World) -> Option<BTreeMap<String, String>> {
    let api: Api<k8s_openapi::api::networking::v1::Ingress> = w.api();
    let i = api
        .get_opt("web-web-canary")
        .await
        .expect("get the canary Ingress")?;
    let rules = i
        .spec
        .as_ref()
        .and_then(|s| s.rules.clone())
        .unwrap_or_default();
    let backend = rules[0].http.as_ref().expect("http").paths[0]
        .backend
        .service
        .as_ref()
        .expect("a service backend")
        .name
        .clone();
    assert_eq!(
        backend, "web-canary",
        "the canary Ingress sends to the canary Service"
    );
    Some(
        i.metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .collect(),
    )
}

fn weight_of(a: &BTreeMap<String, String>) -> (&str, &str) {
    (
        a["nginx.ingress.kubernetes.io/canary"].as_str(),
        a["nginx.ingress.kubernetes.io/canary-weight"].as_str(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_canary_steps_then_abort_returns_traffic_and_is_reverted_in_git() {
    let w = World::start(GitRepo::with_remote().await).await;
    let v1_commit = w
        .push(WEB, &routed_app("web:1", "", ROUTED_STEPS), "web 1")
        .await;
    let st = wait_argo(&w, "web", "v1 healthy", |s| {
        s["phase"] == "Healthy" && s["availableReplicas"] == 5
    })
    .await;
    let v1 = st["stableRS"].as_str().expect("stable").to_string();
    assert_eq!(selectors(&w).await, (v1.clone(), v1.clone()));
    assert_eq!(
        canary_ingress(&w).await,
        None,
        "no canary route while fully promoted"
    );
    // (Not wait_applied: the app's health is refreshed by drift watch events, and the one of a
    // kind applied for the first time starts after the Rollout may already be healthy.)
    w.wait_app("web", "v1 applied", |s| {
        s["lastAppliedCommit"] == v1_commit.as_str()
    })
    .await;

    let v2_commit = w
        .push(WEB, &routed_app("web:2", "", ROUTED_STEPS), "web 2")
        .await;
    // Traffic routing keeps the stable at 100%: 1 canary (20% of 5) + 5 stable.
    let st = wait_settled(&w, "web", 1, (1, 5)).await;
    let v2 = st["currentPodHash"].as_str().expect("canary").to_string();
    let st = wait_argo(&w, "web", "weighted 20", |s| {
        s["canary"]["weights"]["canary"]["weight"] == 20
    })
    .await;
    assert_eq!(st["canary"]["weights"]["stable"]["weight"], 80);
    assert_eq!(
        st["canary"]["weights"]["canary"]["podTemplateHash"],
        v2.as_str()
    );
    assert_eq!(selectors(&w).await, (v2.clone(), v1.clone()));
    let a = canary_ingress(&w).await.expect("the canary Ingress");
    assert_eq!(weight_of(&a), ("true", "20"));
    assert_eq!(
        a["nginx.ingress.kubernetes.io/canary-by-header"],
        "X-Canary"
    );
    assert_eq!(a["kubernetes.io/ingress.class"], "nginx");

    // Promote with the plugin's own patch, sent by kubectl.
    wait_argo(&w, "web", "paused", |s| s["pauseConditions"].is_array()).await;
    w.cluster
        .kubectl_ok(&[
            "patch",
            "rollouts.argoproj.io",
            "web",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"pauseConditions":null}}"#,
        ])
        .await;
    wait_settled(&w, "web", 3, (3, 5)).await;
    let a = canary_ingress(&w).await.expect("the canary Ingress");
    assert_eq!(weight_of(&a), ("true", "60"));

    // Abort: traffic back to stable at once, the canary scaled down after
    // abortScaleDownDelaySeconds (30 s of the daemon's clock), and Git reverted.
    let out = rollgit(&w.cluster, &["abort", "web"]).await;
    assert_eq!(out, "rollout 'web' aborted\n");
    let st = wait_argo(&w, "web", "aborted", |s| {
        s["abort"] == true && s["canary"]["weights"]["canary"]["weight"] == 0
    })
    .await;
    assert_eq!(st["phase"], "Degraded");
    assert_eq!(st["currentStepIndex"], 0);
    // `rollout status` says it failed, as `kubectl argo rollouts status` does for Degraded.
    let (code, out, err) = rollgit_code(&w.cluster, &["rollout", "status", "web"]).await;
    assert_eq!(code, Some(1), "{out}{err}");
    assert!(
        err.contains("error: rollout web is degraded: RolloutAborted"),
        "{err}"
    );
    assert!(out.contains("aborted (rollgit retry web)"), "{out}");
    assert_eq!(selectors(&w).await, (v1.clone(), v1.clone()));
    assert_eq!(
        weight_of(&canary_ingress(&w).await.expect("kept at 0")),
        ("true", "0")
    );
    assert_eq!(
        rs_specs(&w.client, "web").await[&v2],
        3,
        "kept for the abort delay"
    );

    let revert = wait_for(
        &argo(&w),
        "web",
        "the abort recorded in Git",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.metadata
                    .annotations
                    .as_ref()
                    .is_some_and(|a| a.contains_key("rollgit.dev/record"))
            })
        },
    )
    .await
    .expect("the Rollout");
    let record: Value = serde_json::from_str(
        &revert.metadata.annotations.as_ref().expect("annotations")["rollgit.dev/record"],
    )
    .expect("JSON");
    assert_eq!(record["state"], "Reverted", "{record:#}");
    assert_eq!(record["from"], format!("web-{v2}"));
    let commit = record["commit"]
        .as_str()
        .expect("the revert commit")
        .to_string();
    assert_eq!(
        remote_log(&w.git, "%H").await,
        commit,
        "the revert is on the remote"
    );
    let message = remote_log(&w.git, "%B").await;
    assert!(
        message.starts_with(&format!(
            "Revert web: canary web-{v2} aborted, back to web-{v1}"
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!("Reverts: {v2_commit}")),
        "{message}"
    );
    assert!(
        message.contains("Rollgit-Rollout: default/web"),
        "{message}"
    );
    assert!(remote_file(&w.git, WEB).await.contains("image: web:1"));

    // The daemon applies its own revert: v1 again, steps skipped, the canary route gone.
    w.clock.advance(Duration::from_secs(31));
    let st = wait_argo(&w, "web", "back on v1 and healthy", |s| {
        s["phase"] == "Healthy" && s["currentPodHash"] == v1.as_str()
    })
    .await;
    assert!(st.get("abort").is_none());
    assert_eq!(st["currentStepIndex"], 4);
    wait_settled(&w, "web", 4, (5, 5)).await;
    wait_rs(
        &w,
        &format!("web-{v2}"),
        "the aborted canary scaled down",
        0,
    )
    .await;
    wait_for(
        &w.api::<k8s_openapi::api::networking::v1::Ingress>(),
        "web-web-canary",
        "the canary Ingress removed after the rollout",
        |o| o.is_none(),
    )
    .await;
    w.wait_applied("web", &commit).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_an_abort_starts_the_canary_again() {
    let w = World::start_configured(
        GitRepo::with_remote().await,
        |_| {},
        |r| {
            r.write_back = Some(rollgit::config::RawWriteBack {
                revert_rollbacks: Some(false),
                ..Default::default()
            });
        },
    )
    .await;
    deploy_v1(&w, SEED_STEPS).await;
    w.push(PATH, &seed002("nginx:1.16.0", SEED_STEPS), "v2")
        .await;
    wait_settled(&w, "example-rollout", 1, (1, 9)).await;
    rollgit(&w.cluster, &["abort", "example-rollout"]).await;
    wait_settled(&w, "example-rollout", 0, (0, 10)).await;
    let st = wait_argo(&w, "example-rollout", "degraded", |s| {
        s["phase"] == "Degraded"
    })
    .await;
    assert!(
        st["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("RolloutAborted: ")
    );
    let out = rollgit(&w.cluster, &["retry", "example-rollout"]).await;
    assert_eq!(out, "rollout 'example-rollout' retried\n");
    wait_settled(&w, "example-rollout", 1, (1, 9)).await;
    let st = wait_argo(&w, "example-rollout", "paused again", |s| {
        s["phase"] == "Paused"
    })
    .await;
    let p = st["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Progressing"))
        .expect("Progressing");
    assert_ne!(p["reason"], "RolloutAborted");
}

// ---------------------------------------------------------------------------------------------
// A new commit mid-canary, a failing canary, dynamicStableScale.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_commit_mid_canary_drains_the_intermediate_replicaset() {
    let w = World::start(GitRepo::with_remote().await).await;
    let v1 = deploy_v1(&w, SEED_STEPS).await;
    let avail = Availability::watch(&w.client, "example-rollout");
    avail.reset_at(10).await;
    w.push(PATH, &seed002("nginx:1.16.0", SEED_STEPS), "v2")
        .await;
    let st = wait_settled(&w, "example-rollout", 1, (1, 9)).await;
    let v2 = st["currentPodHash"].as_str().expect("canary").to_string();
    w.push(PATH, &seed002("nginx:1.17.0", SEED_STEPS), "v3")
        .await;
    wait_argo(&w, "example-rollout", "v3 is the canary", |s| {
        s["currentPodHash"] != v2.as_str() && s["currentStepIndex"] == 0
    })
    .await;
    let st = wait_settled(&w, "example-rollout", 1, (1, 9)).await;
    let v3 = st["currentPodHash"].as_str().expect("canary").to_string();
    assert_ne!(v3, v2);
    assert_eq!(st["stableRS"], v1.as_str());
    assert_eq!(
        rs_specs(&w.client, "example-rollout").await,
        BTreeMap::from([(v1, 9), (v2, 0), (v3, 1)]),
        "the intermediate canary drained, the new one at step 0's count"
    );
    assert_eq!(avail.min(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_canary_past_its_progress_deadline_is_aborted_and_reverted() {
    let git = GitRepo::with_remote().await;
    let w = World::start_with(git, |c| c.simulation.fail_images = vec!["*:broken".into()]).await;
    let with_deadline = |image: &str| {
        seed002(image, SEED_STEPS).replace(
            "  revisionHistoryLimit: 3\n",
            "  revisionHistoryLimit: 3\n  progressDeadlineSeconds: 60\n  progressDeadlineAbort: true\n",
        )
    };
    w.push(PATH, &with_deadline("nginx:1.15.4"), "v1").await;
    let st = wait_argo(&w, "example-rollout", "v1 healthy", |s| {
        s["phase"] == "Healthy"
    })
    .await;
    let v1 = st["stableRS"].as_str().expect("stable").to_string();
    let bad = w
        .push(PATH, &with_deadline("nginx:broken"), "v2 broken")
        .await;
    // The canary pod is created and never becomes ready; then 61 s of the daemon's clock.
    let st = wait_argo(&w, "example-rollout", "the canary created", |s| {
        s["updatedReplicas"] == 1 && s["currentPodHash"] != v1.as_str()
    })
    .await;
    let v2 = st["currentPodHash"].as_str().expect("canary").to_string();
    w.clock.advance(Duration::from_secs(61));
    let st = wait_argo(&w, "example-rollout", "aborted by the deadline", |s| {
        s["abort"] == true
    })
    .await;
    let p = st["conditions"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["type"] == "Progressing"))
        .expect("Progressing");
    assert_eq!(p["reason"], "RolloutAborted");
    assert_eq!(
        p["message"],
        format!(
            "Rollout aborted update to revision 2: ReplicaSet \"example-rollout-{v2}\" has timed out progressing."
        )
    );
    // Git is reverted and the daemon applies it: v1 healthy again.
    let st = wait_argo(&w, "example-rollout", "back on v1", |s| {
        s["phase"] == "Healthy" && s["currentPodHash"] == v1.as_str()
    })
    .await;
    assert!(st.get("abort").is_none());
    let message = remote_log(&w.git, "%B").await;
    assert!(message.contains(&format!("Reverts: {bad}")), "{message}");
    assert!(message.contains("has timed out progressing"), "{message}");
    assert!(
        remote_file(&w.git, PATH)
            .await
            .contains("image: nginx:1.15.4")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamic_stable_scale_shrinks_the_stable_as_traffic_moves() {
    let w = World::start(GitRepo::with_remote().await).await;
    let app = |image: &str| {
        routed_app(
            image,
            "      dynamicStableScale: true\n",
            "      - setWeight: 40\n      - pause: {}\n",
        )
    };
    w.push(WEB, &app("web:1"), "web 1").await;
    let st = wait_argo(&w, "web", "v1 healthy", |s| {
        s["phase"] == "Healthy" && s["availableReplicas"] == 5
    })
    .await;
    let v1 = st["stableRS"].as_str().expect("stable").to_string();
    let avail = Availability::watch(&w.client, "web");
    avail.reset_at(5).await;
    w.push(WEB, &app("web:2"), "web 2").await;
    // 40% of 5: 2 canary pods, the stable down to ceil(5 × 60%) = 3.
    let st = wait_settled(&w, "web", 1, (2, 3)).await;
    let v2 = st["currentPodHash"].as_str().expect("canary").to_string();
    let a = canary_ingress(&w).await.expect("the canary Ingress");
    assert_eq!(weight_of(&a), ("true", "40"));
    wait_argo(&w, "web", "paused", |s| s["pauseConditions"].is_array()).await;
    gates_apply(&w, "web", rollgit::rollout::argo::gates::Gate::Promote).await;
    wait_argo(&w, "web", "v2 promoted", |s| {
        s["phase"] == "Healthy" && s["stableRS"] == v2.as_str()
    })
    .await;
    wait_rs(
        &w,
        &format!("web-{v1}"),
        "scaled down with no delay (dynamicStableScale)",
        0,
    )
    .await;
    assert_eq!(rs_specs(&w.client, "web").await[&v2], 5);
    wait_for(
        &w.api::<k8s_openapi::api::networking::v1::Ingress>(),
        "web-web-canary",
        "the canary Ingress removed after the rollout",
        |o| o.is_none(),
    )
    .await;
    assert!(
        avail.min() >= 4,
        "maxUnavailable 25% of 5 (1): {}",
        avail.min()
    );
}

/// Waits until ReplicaSet `name` has `n` replicas, spec and status.
async fn wait_rs(w: &World, name: &str, what: &str, n: i32) {
    wait_for(&replica_sets_api(&w.client), name, what, |rs| {
        rs.is_some_and(|rs| {
            rs.spec.as_ref().and_then(|s| s.replicas) == Some(n)
                && rs.status.as_ref().map(|s| s.replicas) == Some(n)
        })
    })
    .await;
}

async fn gates_apply(w: &World, name: &str, gate: rollgit::rollout::argo::gates::Gate) {
    rollgit::rollout::argo::gates::apply(&argo(w), name, gate)
        .await
        .expect("the gate applies");
}

// ---------------------------------------------------------------------------------------------
// The status in Argo's format; what rollgit does not run; delegate mode.

/// The keys of an object, sorted.
fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v
        .as_object()
        .map(|m| m.keys().cloned().collect())
        .unwrap_or_default();
    k.sort();
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_is_written_in_the_format_argo_documents() {
    let w = World::start(GitRepo::with_remote().await).await;
    deploy_v1(&w, SEED_STEPS).await;
    w.push(PATH, &seed002("nginx:1.16.0", SEED_STEPS), "v2")
        .await;
    wait_settled(&w, "example-rollout", 1, (1, 9)).await;
    let st = wait_argo(&w, "example-rollout", "paused", |s| s["phase"] == "Paused").await;
    // `RolloutStatus` of argo-rollouts' types.go, as encoding/json writes it (omitempty).
    assert_eq!(
        keys(&st),
        [
            "HPAReplicas",
            "availableReplicas",
            "blueGreen",
            "canary",
            "conditions",
            "controllerPause",
            "currentPodHash",
            "currentStepHash",
            "currentStepIndex",
            "message",
            "observedGeneration",
            "pauseConditions",
            "phase",
            "readyReplicas",
            "replicas",
            "selector",
            "stableRS",
            "updatedReplicas",
        ],
        "{st:#}"
    );
    assert!(
        st["observedGeneration"].is_string(),
        "a string, as Argo writes it"
    );
    assert_eq!(st["currentStepIndex"], 1);
    assert_eq!(st["selector"], "app=nginx");
    assert_eq!(
        (st["replicas"].as_i64(), st["updatedReplicas"].as_i64()),
        (Some(10), Some(1))
    );
    assert_eq!(st["HPAReplicas"], 10);
    assert_eq!(keys(&st["pauseConditions"][0]), ["reason", "startTime"]);
    assert!(
        st["pauseConditions"][0]["startTime"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z'))
    );
    let types: BTreeMap<String, (String, String)> = st["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .map(|c| {
            assert_eq!(
                keys(c),
                [
                    "lastTransitionTime",
                    "lastUpdateTime",
                    "message",
                    "reason",
                    "status",
                    "type"
                ]
            );
            (
                c["type"].as_str().unwrap_or_default().to_string(),
                (
                    c["status"].as_str().unwrap_or_default().to_string(),
                    c["reason"].as_str().unwrap_or_default().to_string(),
                ),
            )
        })
        .collect();
    let want = |s: &str, r: &str| (s.to_string(), r.to_string());
    assert_eq!(types["Progressing"], want("Unknown", "RolloutPaused"));
    assert_eq!(types["Paused"], want("True", "RolloutPaused"));
    assert_eq!(types["Available"], want("True", "AvailableReason"));
    assert_eq!(types["Completed"], want("False", "RolloutCompleted"));
    assert_eq!(types["Healthy"], want("False", "RolloutHealthy"));
    // The app reads it as Argo CD does: suspended at a pause is not healthy yet.
    let app = w
        .wait_app("canary", "suspended at the pause", |s| {
            s["healthy"] == false
                && s["message"]
                    .as_str()
                    .unwrap_or_default()
                    .contains("Suspended: Rollout is paused (CanaryPauseStep)")
        })
        .await;
    assert_eq!(app["healthy"], false, "{app:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steps_rollgit_does_not_run_reject_the_commit_with_path_and_line() {
    let w = World::start(GitRepo::with_remote().await).await;
    let good = w
        .push(PATH, &seed002("nginx:1.15.4", SEED_STEPS), "v1")
        .await;
    w.wait_applied("canary", &good).await;
    let steps = format!(
        "{SEED_STEPS}      - analysis:\n          templates:\n          - templateName: success-rate\n"
    );
    let bad = w
        .push(PATH, &seed002("nginx:1.16.0", &steps), "with analysis")
        .await;
    let status = w
        .wait_app("canary", "rejected", |s| {
            s["lastAttemptedCommit"] == bad.as_str() && s["phase"] == "failed"
        })
        .await;
    let errors: Vec<&str> = status["lastError"]
        .as_array()
        .expect("lastError")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        errors,
        [
            "apps/canary/rollout.yaml:31: argo: spec.strategy.canary.steps[4].analysis: analysis steps are not run by rollgit's Argo Rollouts executor yet (they come with the analysis issue); run Argo Rollouts' own controller next to rollgit (rolloutControllers.argo: external) to use it"
        ]
    );
    assert_eq!(status["lastAppliedCommit"], good.as_str());
    // A typo beside `pause` is not ignored (Argo's CRD schema refuses it): the commit is
    // rejected at the typo's line.
    let typo = SEED_STEPS.replace(
        "      - pause: {}\n",
        "      - pause: {}\n        setWieght: 30\n",
    );
    let bad = w
        .push(PATH, &seed002("nginx:1.16.0", &typo), "with a typo")
        .await;
    let status = w
        .wait_app("canary", "rejected", |s| {
            s["lastAttemptedCommit"] == bad.as_str() && s["phase"] == "failed"
        })
        .await;
    let errors: Vec<&str> = status["lastError"]
        .as_array()
        .expect("lastError")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        errors,
        [
            "apps/canary/rollout.yaml:31: argo: steps[3].setWieght: unknown field (known: setWeight, pause, setCanaryScale, analysis, experiment, setHeaderRoute, setMirrorRoute, plugin)"
        ]
    );
    assert_eq!(status["lastAppliedCommit"], good.as_str());
    let ro = argo(&w).get("example-rollout").await.expect("the Rollout");
    assert!(
        serde_json::to_string(&ro.data["spec"])
            .unwrap_or_default()
            .contains("nginx:1.15.4"),
        "the cluster keeps the last good state"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_ref_rollgit_cannot_resolve_is_invalid_spec_in_the_status_and_the_apps_health() {
    let w = World::start(GitRepo::with_remote().await).await;
    let rollout = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: orphan
spec:
  replicas: 2
  selector:
    matchLabels:
      app: orphan
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: nowhere
  strategy:
    canary:
      steps:
      - setWeight: 50
";
    let commit = w.push("apps/canary/rollout.yaml", rollout, "orphan").await;
    let st = wait_argo(&w, "orphan", "InvalidSpec recorded", |s| {
        s["phase"] == "Degraded"
    })
    .await;
    let invalid = st["conditions"]
        .as_array()
        .expect("conditions")
        .iter()
        .find(|c| c["type"] == "InvalidSpec")
        .cloned()
        .expect("an InvalidSpec condition");
    assert_eq!(invalid["status"], "True");
    assert_eq!(
        invalid["message"],
        "the workloadRef Deployment nowhere does not exist (yet)"
    );
    assert_eq!(
        st["message"],
        "InvalidSpec: the workloadRef Deployment nowhere does not exist (yet)"
    );
    // The app's health says why, not only the daemon's log.
    w.wait_app("canary", "degraded by its Rollout", |s| {
        s["lastAppliedCommit"] == commit.as_str()
            && s["healthy"] == false
            && s["phase"] == "unhealthy"
            && s["message"]
                .as_str()
                .is_some_and(|m| m.contains("workloadRef Deployment nowhere"))
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_argos_own_controller_rollgit_only_applies_and_reads_health() {
    let w = World::start(GitRepo::with_remote().await).await;
    // Argo Rollouts installed by someone else: its CRD and its controller's Deployment.
    let mut crd = serde_json::to_value(rollgit::rollout::argo::crd::crd()).expect("JSON");
    crd["metadata"]["labels"] = serde_json::json!({"app.kubernetes.io/part-of": "argo-rollouts"});
    let crd_file = w.cluster.file("argo-crd.json", &crd.to_string());
    w.cluster
        .kubectl_ok(&["create", "-f", &crd_file.display().to_string()])
        .await;
    w.cluster
        .kubectl_ok(&["create", "namespace", "argo-rollouts"])
        .await;
    w.cluster
        .kubectl_ok(&[
            "create",
            "deployment",
            "argo-rollouts",
            "-n",
            "argo-rollouts",
            "--image=quay.io/argoproj/argo-rollouts:v1.8.3",
        ])
        .await;
    w.cluster
        .kubectl_ok(&[
            "label",
            "deployment",
            "argo-rollouts",
            "-n",
            "argo-rollouts",
            "app.kubernetes.io/name=argo-rollouts",
        ])
        .await;
    wait_crd(&w.client).await;
    // An analysis step is Argo's to run: the commit is applied.
    let steps = format!(
        "{SEED_STEPS}      - analysis:\n          templates:\n          - templateName: success-rate\n"
    );
    let commit = w.push(PATH, &seed002("nginx:1.15.4", &steps), "v1").await;
    let app = w
        .wait_app("canary", "applied", |s| {
            s["lastAppliedCommit"] == commit.as_str()
        })
        .await;
    assert_eq!(app["healthy"], false, "{app:#}");
    assert!(
        app["message"]
            .as_str()
            .unwrap_or_default()
            .contains("Waiting for rollout spec update to be observed"),
        "{app:#}"
    );
    assert!(
        rs_specs(&w.client, "example-rollout").await.is_empty(),
        "rollgit made no ReplicaSet"
    );
    let ro = argo(&w).get("example-rollout").await.expect("the Rollout");
    assert!(ro.data["status"].is_null(), "rollgit wrote no status");
    // Argo's controller reports a healthy rollout: the app is healthy.
    let status = r#"{"status":{"observedGeneration":"1","phase":"Healthy","currentPodHash":"abc","stableRS":"abc","replicas":10,"updatedReplicas":10,"readyReplicas":10,"availableReplicas":10}}"#;
    w.cluster
        .kubectl_ok(&[
            "patch",
            "rollouts.argoproj.io",
            "example-rollout",
            "--subresource=status",
            "--type=merge",
            "-p",
            status,
        ])
        .await;
    w.wait_app("canary", "healthy from Argo's status", |s| {
        s["healthy"] == true
    })
    .await;
    // The gates patch what the plugin patches, whoever runs the Rollout.
    let out = rollgit(&w.cluster, &["abort", "example-rollout"]).await;
    assert_eq!(out, "rollout 'example-rollout' aborted\n");
    let ro = argo(&w).get("example-rollout").await.expect("the Rollout");
    assert_eq!(ro.data["status"]["abort"], true);
    assert!(rs_specs(&w.client, "example-rollout").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workload_ref_runs_the_deployments_template_and_scales_it_down_on_success() {
    let w = World::start(GitRepo::with_remote().await).await;
    let app = |image: &str| {
        format!(
            "apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 3
  selector:
    matchLabels: {{app: web}}
  template:
    metadata:
      labels: {{app: web}}
    spec:
      containers:
      - name: web
        image: {image}
---
apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 3
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
    scaleDown: onsuccess
  strategy:
    canary:
      steps:
      - setWeight: 50
      - pause: {{}}
"
        )
    };
    w.push("apps/web/web.yaml", &app("web:1"), "web 1").await;
    let st = wait_argo(&w, "web", "v1 healthy", |s| {
        s["phase"] == "Healthy" && s["availableReplicas"] == 3
    })
    .await;
    let v1 = st["stableRS"].as_str().expect("stable").to_string();
    assert_eq!(st["selector"], "app=web", "the Deployment's selector");
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = w.api();
    wait_for(
        &deployments,
        "web",
        "the Deployment scaled to 0 once the Rollout is healthy",
        |d| d.and_then(|d| d.spec.as_ref()?.replicas) == Some(0),
    )
    .await;
    // A new template in the Deployment is a new canary of the Rollout.
    w.push("apps/web/web.yaml", &app("web:2"), "web 2").await;
    let st = wait_settled(&w, "web", 1, (2, 2)).await;
    assert_ne!(st["currentPodHash"], v1.as_str());
    let d = deployments.get("web").await.expect("the Deployment");
    assert_eq!(
        d.spec.and_then(|s| s.replicas),
        Some(0),
        "the apply stage leaves its replicas alone"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateway_api_http_route_weights_follow_the_steps() {
    let w = World::start(GitRepo::with_remote().await).await;
    // Gateway API is CRDs: the HTTPRoute one, with a schema that keeps what it is given.
    let crd = common::rollouts::HTTP_ROUTE_CRD;
    let f = w.cluster.file("httproute-crd.json", crd);
    w.cluster
        .kubectl_ok(&["create", "-f", &f.display().to_string()])
        .await;
    let route = "---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs: [{name: gateway}]
  rules:
  - backendRefs:
    - {name: web-stable, port: 80, weight: 100}
    - {name: web-canary, port: 80, weight: 0}
";
    let app = |image: &str| {
        let text = routed_app(image, "", ROUTED_STEPS).replace(
            "        nginx:\n          stableIngress: web\n          additionalIngressAnnotations:\n            canary-by-header: X-Canary\n",
            "        plugins:\n          argoproj-labs/gatewayAPI:\n            httpRoute: web\n",
        );
        format!("{text}{route}")
    };
    w.push(WEB, &app("web:1"), "web 1").await;
    wait_argo(&w, "web", "v1 healthy", |s| {
        s["phase"] == "Healthy" && s["availableReplicas"] == 5
    })
    .await;
    let routes = common::rollouts::http_routes(&w.client);
    let weights = |o: &DynamicObject| -> (i64, i64) {
        let refs = &o.data["spec"]["rules"][0]["backendRefs"];
        (
            refs[0]["weight"].as_i64().unwrap_or(-1),
            refs[1]["weight"].as_i64().unwrap_or(-1),
        )
    };
    let r = wait_for(
        &routes,
        "web",
        "the HTTPRoute applied by the executor",
        |o| o.is_some(),
    )
    .await
    .expect("route");
    assert_eq!(weights(&r), (100, 0));
    assert_eq!(
        r.data["spec"]["parentRefs"][0]["name"], "gateway",
        "Git's route, as written"
    );
    w.push(WEB, &app("web:2"), "web 2").await;
    wait_settled(&w, "web", 1, (1, 5)).await;
    wait_for(&routes, "web", "20% to the canary", |o| {
        o.is_some_and(|o| weights(o) == (80, 20))
    })
    .await;
    // Promote once the pause is recorded (a promote without one skips a step, as Argo's does).
    wait_argo(&w, "web", "paused at step 1", |s| {
        s["currentStepIndex"] == 1 && s["pauseConditions"].is_array()
    })
    .await;
    gates_apply(&w, "web", rollgit::rollout::argo::gates::Gate::Promote).await;
    wait_for(&routes, "web", "60% to the canary", |o| {
        o.is_some_and(|o| weights(o) == (40, 60))
    })
    .await;
    wait_argo(&w, "web", "paused at step 3", |s| {
        s["currentStepIndex"] == 3 && s["pauseConditions"].is_array()
    })
    .await;
    gates_apply(&w, "web", rollgit::rollout::argo::gates::Gate::Promote).await;
    wait_argo(&w, "web", "v2 promoted", |s| {
        s["phase"] == "Healthy" || s["stableRS"] == s["currentPodHash"]
    })
    .await;
    wait_for(&routes, "web", "all to the stable again", |o| {
        o.is_some_and(|o| weights(o) == (100, 0))
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// A restarted rollgit resumes exactly.

fn spawn_daemon(
    cluster: &TestCluster,
    git: &GitRepo,
    state: &std::path::Path,
    n: usize,
) -> tokio::process::Child {
    common::spawn_rollgit_run(
        cluster,
        &git.url(),
        state,
        &format!("daemon-{n}.log"),
        "rollgit=info",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_rollgit_at_every_step_resumes_the_canary_exactly() {
    let cluster = TestCluster::start_with(|c| {
        c.simulation.ready_delay = Duration::from_millis(300);
    })
    .await;
    let client = cluster.client().await;
    let state = tempfile::tempdir().expect("state dir");
    let git = GitRepo::with_remote().await;
    let steps = "      - setWeight: 10
      - pause: {}
      - setWeight: 20
      - pause: {}
      - setWeight: 50
      - pause: {}
";
    git.write(PATH, &seed002("nginx:1.15.4", steps));
    git.commit_and_push("v1").await;
    let mut n = 0;
    let mut daemon = spawn_daemon(&cluster, &git, state.path(), n);
    wait_crd(&client).await;
    let ro: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &rollgit::rollout::argo::resource(),
    );
    let status_is = |what: &'static str, cond: Box<dyn Fn(&Value) -> bool + Send>| {
        let ro = ro.clone();
        async move {
            wait_for(
                &ro,
                "example-rollout",
                what,
                move |o: Option<&DynamicObject>| o.is_some_and(|o| cond(&o.data["status"])),
            )
            .await
            .expect("the Rollout")
            .data["status"]
                .clone()
        }
    };
    let st = status_is(
        "v1 healthy",
        Box::new(|s| s["phase"] == "Healthy" && s["availableReplicas"] == 10),
    )
    .await;
    let v1 = st["stableRS"].as_str().expect("stable").to_string();

    // Every spec.replicas of every ReplicaSet of the Rollout from here on.
    let seen: Arc<Mutex<BTreeMap<String, Vec<i64>>>> = Arc::default();
    {
        let seen = seen.clone();
        let api = replica_sets_api(&client);
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default().labels(HASH))
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Apply(rs)) | Ok(watcher::Event::InitApply(rs)) = ev {
                    let hash = rs
                        .metadata
                        .labels
                        .as_ref()
                        .and_then(|l| l.get(HASH))
                        .cloned()
                        .unwrap_or_default();
                    let spec = i64::from(rs.spec.and_then(|s| s.replicas).unwrap_or(-1));
                    if let Ok(mut m) = seen.lock() {
                        let v = m.entry(hash).or_default();
                        if v.last() != Some(&spec) {
                            v.push(spec);
                        }
                    }
                }
            }
        });
    }
    git.write(PATH, &seed002("nginx:1.16.0", steps));
    git.commit_and_push("v2").await;
    for (step, counts) in [(1u64, (1, 9)), (3, (2, 8)), (5, (5, 5))] {
        let st = status_is(
            "paused at a step",
            Box::new(move |s| {
                s["currentStepIndex"] == step
                    && s["pauseConditions"].is_array()
                    && s["availableReplicas"] == 10
            }),
        )
        .await;
        let v2 = st["currentPodHash"].as_str().expect("canary").to_string();
        let specs = rs_specs(&client, "example-rollout").await;
        assert_eq!((specs[&v2], specs[&v1]), counts, "step {step}");
        // Kill rollgit at the pause and start it again; the promote is the new one's to run:
        // one step further, never back to the first.
        daemon.kill().await.expect("kill rollgit");
        n += 1;
        daemon = spawn_daemon(&cluster, &git, state.path(), n);
        let out = rollgit(&cluster, &["promote", "example-rollout"]).await;
        assert_eq!(out, "rollout 'example-rollout' promoted\n");
        status_is(
            "one step further",
            Box::new(move |s| s["currentStepIndex"].as_u64() == Some(step + 1)),
        )
        .await;
    }
    let st = status_is(
        "v2 promoted",
        Box::new(|s| {
            s["phase"] == "Healthy" && s["replicas"] == 10 && s["stableRS"] == s["currentPodHash"]
        }),
    )
    .await;
    let v2 = st["stableRS"].as_str().expect("stable").to_string();
    let seen = seen.lock().map(|m| m.clone()).unwrap_or_default();
    // Never back, never skipped: the canary only grows, through each step's count, and the
    // stable only shrinks (between two counts the pace follows each pod's readiness).
    let canary = &seen[&v2];
    let stable = &seen[&v1];
    assert!(
        canary.windows(2).all(|w| w[0] < w[1]),
        "the canary only grows: {canary:?}"
    );
    assert!(
        stable.windows(2).all(|w| w[0] > w[1]),
        "the stable only shrinks: {stable:?}"
    );
    for want in [0, 1, 2, 5, 10] {
        assert!(
            canary.contains(&want),
            "the canary went through {want}: {canary:?}"
        );
    }
    for want in [10, 9, 8, 5, 0] {
        assert!(
            stable.contains(&want),
            "the stable went through {want}: {stable:?}"
        );
    }
    daemon.kill().await.expect("kill rollgit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_repository_has_an_argo_canary_a_user_can_promote() {
    let git = GitRepo::with_remote().await;
    for (path, content) in rollgit::demo::FILES {
        git.write(path, content);
    }
    git.commit_and_push("demo").await;
    let w = World::start(git).await;
    let st = wait_argo(&w, "canary-demo", "the first release", |s| {
        s["phase"] == "Healthy" && s["availableReplicas"] == 5
    })
    .await;
    let blue = st["stableRS"].as_str().expect("stable").to_string();
    // What `rollgit up` tells the user to do.
    let path = "apps/canary/rollout.yaml";
    let yaml = std::fs::read_to_string(w.git.work.join(path)).expect("read the demo app");
    assert!(yaml.contains("rollouts-demo:blue"));
    w.push(
        path,
        &yaml.replace("rollouts-demo:blue", "rollouts-demo:yellow"),
        "canary-demo: yellow",
    )
    .await;
    let st = wait_argo(&w, "canary-demo", "paused at step 1 for a promote", |s| {
        s["currentStepIndex"] == 1 && s["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    })
    .await;
    let yellow = st["currentPodHash"].as_str().expect("canary").to_string();
    assert_ne!(yellow, blue);
    let (code, out, err) = rollgit_code(&w.cluster, &["get", "rollouts"]).await;
    assert_eq!(code, Some(0), "{err}");
    // One table per kind of rollout, a blank line between them: the Argo one.
    let argo_table = out
        .split("\n\n")
        .find(|t| t.starts_with("NAME         STRATEGY"))
        .unwrap_or_default();
    assert_eq!(
        table_columns(argo_table)[1],
        [
            "canary-demo",
            "Canary",
            "Paused",
            "1/4",
            "20",
            "5/5",
            "5",
            "1",
            "5"
        ],
        "{out}"
    );
    let out = rollgit(&w.cluster, &["promote", "canary-demo"]).await;
    assert_eq!(out, "rollout 'canary-demo' promoted\n");
    wait_argo(&w, "canary-demo", "60% for 30 s", |s| {
        s["currentStepIndex"] == 3 && s["pauseConditions"][0]["reason"] == "CanaryPauseStep"
    })
    .await;
    w.clock.advance(Duration::from_secs(31));
    wait_argo(&w, "canary-demo", "all yellow", |s| {
        s["phase"] == "Healthy" && s["stableRS"] == yellow.as_str() && s["availableReplicas"] == 5
    })
    .await;
}
