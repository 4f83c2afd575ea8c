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
#[allow(unused_imports)]
use common::rollouts as _;
use common::world::{GitRepo, World, wait_for};
use common::{TestCluster, WAIT, table_columns};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::watcher;
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
        await_condition(crds, "rollouts.argoproj.io", conditions::is_crd_established()),
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
        let status = argo(w)
            .get(name)
            .await
            .expect("get the Rollout")
            .data["status"]
            .clone();
        let canary = status["currentPodHash"].as_str().unwrap_or_default().to_string();
        let stable = status["stableRS"].as_str().unwrap_or_default().to_string();
        let list = api
            .list(&ListParams::default().labels(HASH))
            .await
            .expect("list ReplicaSets");
        let counts = |hash: &str| {
            list.items
                .iter()
                .find(|rs| rs.metadata.labels.as_ref().and_then(|l| l.get(HASH)).map(String::as_str) == Some(hash))
                .map(|rs| {
                    (
                        i64::from(rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                        i64::from(rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0)),
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

/// At every ReplicaSet event, the total available pods of the watched Rollout's
/// ReplicaSets; `min()` is the lowest seen since `reset()`.
#[derive(Clone)]
struct Availability {
    state: Arc<Mutex<(BTreeMap<String, i64>, Option<i64>)>>,
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
            let mut stream = watcher(api, watcher::Config::default().labels(HASH)).boxed();
            while let Some(ev) = stream.next().await {
                let Ok(mut s) = st.lock() else { return };
                let (rs, gone) = match ev {
                    Ok(watcher::Event::Apply(rs)) | Ok(watcher::Event::InitApply(rs)) => (rs, false),
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
                    let n = rs.status.as_ref().and_then(|s| s.available_replicas).unwrap_or(0);
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

/// The rollgit binary: cargo's, or `ROLLGIT_TEST_BIN` (a copy, for machines where several
/// checkouts share one target directory and rebuild it under each other).
fn rollgit_bin() -> std::ffi::OsString {
    std::env::var_os("ROLLGIT_TEST_BIN").unwrap_or_else(|| env!("CARGO_BIN_EXE_rollgit").into())
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
    let hash = st["stableRS"].as_str().expect("a stable ReplicaSet").to_string();
    assert_eq!(st["currentPodHash"], hash.as_str());
    hash
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed002_canary_runs_from_git_with_argos_counts_pauses_and_promote() {
    let w = World::start(GitRepo::with_remote().await).await;
    let v1 = deploy_v1(&w, SEED_STEPS).await;
    assert_eq!(rs_specs(&w.client, "example-rollout").await, BTreeMap::from([(v1.clone(), 10)]));
    // The CRD rollgit installed looks as users know it.
    let out = w
        .cluster
        .kubectl_ok(&["get", "rollouts.argoproj.io", "example-rollout"])
        .await;
    let rows = table_columns(&out);
    assert_eq!(rows[0], ["NAME", "DESIRED", "CURRENT", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(rows[1][..5], ["example-rollout", "10", "10", "10", "10"]);

    let avail = Availability::watch(&w.client, "example-rollout");
    avail.reset_at(10).await;
    w.push(PATH, &seed002("nginx:1.16.0", SEED_STEPS), "example-rollout v2")
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
    assert_eq!(rs_specs(&w.client, "example-rollout").await, BTreeMap::from([(v1.clone(), 9), (v2.clone(), 1)]));

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
    let st = wait_argo(&w, "example-rollout", "still paused", |s| s["currentStepIndex"] == 3).await;
    assert_eq!(st["phase"], "Paused");

    let out = rollgit(&w.cluster, &["promote", "example-rollout"]).await;
    assert_eq!(out, "rollout 'example-rollout' promoted\n");
    let st = wait_argo(&w, "example-rollout", "v2 promoted and healthy", |s| {
        s["phase"] == "Healthy" && s["stableRS"] == v2.as_str() && s["replicas"] == 10
    })
    .await;
    assert_eq!(st["currentStepIndex"], 4);
    assert_eq!(rs_specs(&w.client, "example-rollout").await, BTreeMap::from([(v1, 0), (v2, 10)]));
    assert_eq!(avail.min(), 10, "maxUnavailable 0: never fewer than 10 available pods");
    // The app is healthy and applied at the last commit.
    let head = remote_log(&w.git, "%H").await;
    w.wait_applied("canary", &head).await;
}
