//! Batched rollouts driven from Git (issue 6): seed 000's transcript replayed with `git commit`
//! and `git push` in place of `vela up`, seed 001's AppRollout, a failing image rolled back, and
//! a daemon killed mid-rollout. After each step the test checks what the seed's `kubectl get`
//! commands show, with the real kubectl, and a watch checks at every Deployment event that the
//! available pods never drop below what the plan allows.

mod common;

use common::world::{GitRepo, World, wait_for};
use common::{TestCluster, WAIT, table_columns};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

fn rollouts(w: &World) -> Api<DynamicObject> {
    Api::namespaced_with(
        w.client.clone(),
        "default",
        &rollgit::rollout::rollout_resource(),
    )
}

/// Waits until Rollout `name` satisfies `cond` on its status (and describes its latest spec).
async fn wait_rollout(w: &World, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let found = wait_for(&rollouts(w), name, what, |o: Option<&DynamicObject>| {
        o.is_some_and(|o| {
            o.data["status"]["observedGeneration"].as_i64() == o.metadata.generation
                && cond(&o.data["status"])
        })
    })
    .await
    .expect("the rollout exists");
    found.data["status"].clone()
}

async fn wait_succeeded(w: &World, name: &str, target: &str, size: i64) -> Value {
    wait_rollout(w, name, &format!("{name} at {target} x{size}"), |s| {
        s["rollingState"] == "rolloutSucceed"
            && s["targetRevision"] == target
            && s["rolloutTargetSize"] == size
            && s["upgradedReadyReplicas"] == size
    })
    .await
}

/// `kubectl get rollout NAME`: header and the row.
async fn rollout_row(c: &TestCluster, name: &str) -> (Vec<String>, Vec<String>) {
    let out = c.kubectl_ok(&["get", "rollout", name]).await;
    let mut rows = table_columns(&out).into_iter();
    (
        rows.next().expect("a header"),
        rows.next().expect("a row for the rollout"),
    )
}

/// `kubectl get rollout NAME` as the seed shows it: TARGET UPGRADED READY BATCH-STATE
/// ROLLING-STATE (AGE left out).
async fn rollout_columns(c: &TestCluster, name: &str) -> Vec<String> {
    let (header, row) = rollout_row(c, name).await;
    assert_eq!(
        header,
        [
            "NAME",
            "TARGET",
            "UPGRADED",
            "READY",
            "BATCH-STATE",
            "ROLLING-STATE",
            "AGE"
        ]
    );
    row[1..6].to_vec()
}

fn cols(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// `kubectl get deploy -l app.oam.dev/component=C`: NAME → READY.
async fn deployments(c: &TestCluster, component: &str) -> BTreeMap<String, String> {
    let out = c
        .kubectl_ok(&[
            "get",
            "deploy",
            "-l",
            &format!("app.oam.dev/component={component}"),
        ])
        .await;
    table_columns(&out)
        .into_iter()
        .skip(1)
        .map(|r| (r[0].clone(), r[1].clone()))
        .collect()
}

/// Waits (bounded) until the component's Deployments are exactly `want` (name → READY).
async fn wait_deployments(c: &TestCluster, component: &str, want: &[(&str, &str)]) {
    let want: BTreeMap<String, String> = want
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    let client = c.client().await;
    let api: Api<Deployment> = Api::namespaced(client, "default");
    let cfg = watcher::Config::default().labels(&format!("app.oam.dev/component={component}"));
    let mut stream = watcher(api, cfg).boxed();
    loop {
        let now = deployments(c, component).await;
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "deployments of {component}: want {want:?}, have {now:?}"
        );
        // The next change to any of them (bounded).
        let _ = tokio::time::timeout_at(deadline, stream.next()).await;
    }
}

/// `kubectl get controllerRevision -l controller.oam.dev/component=C`: the names.
async fn revisions(c: &TestCluster, component: &str) -> Vec<String> {
    let out = c
        .kubectl_ok(&[
            "get",
            "controllerRevision",
            "-l",
            &format!("controller.oam.dev/component={component}"),
        ])
        .await;
    table_columns(&out)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect()
}

/// Tracks, at every Deployment event of a component, the sum of available replicas across its
/// revisions; `min()` is the lowest seen since the last `reset()`.
#[derive(Clone)]
struct Availability {
    state: Arc<Mutex<AvailabilityState>>,
}

/// Available replicas per Deployment, and the lowest total seen.
type AvailabilityState = (BTreeMap<String, i64>, Option<i64>);

impl Availability {
    fn watch(client: kube::Client, component: &str) -> Self {
        let me = Availability {
            state: Arc::default(),
        };
        let st = me.state.clone();
        let api: Api<Deployment> = Api::namespaced(client, "default");
        let cfg = watcher::Config::default().labels(&format!("app.oam.dev/component={component}"));
        tokio::spawn(async move {
            let mut stream = watcher(api, cfg).boxed();
            while let Some(ev) = stream.next().await {
                let Ok(mut s) = st.lock() else { return };
                match ev {
                    Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) => {
                        let n = d
                            .status
                            .as_ref()
                            .and_then(|s| s.available_replicas)
                            .unwrap_or(0);
                        s.0.insert(d.metadata.name.clone().unwrap_or_default(), i64::from(n));
                    }
                    Ok(watcher::Event::Delete(d)) => {
                        s.0.remove(&d.metadata.name.clone().unwrap_or_default());
                    }
                    _ => continue,
                }
                let total: i64 = s.0.values().sum();
                s.1 = Some(s.1.map_or(total, |m| m.min(total)));
            }
        });
        me
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

fn seed000_app(revision: &str, image: &str, rollout: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
    - name: express-server
      type: webservice
      externalRevision: {revision}
      properties:
        image: {image}
      traits:
        - type: rollout
          properties:
{rollout}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed000_webservice_transcript_plays_out_from_git() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/rollout-trait-test/app.yaml",
        &seed000_app(
            "express-server-v1",
            "stefanprodan/podinfo:4.0.3",
            "            targetSize: 5
            rolloutBatches:
              - replicas: 2
              - replicas: 3
",
        ),
    );
    git.commit_and_push("first release").await;
    let w = World::start(git).await;
    let c = &w.cluster;
    let avail = Availability::watch(w.client.clone(), "express-server");

    // First release, in batches of 2 and 3.
    let mut sizes = Vec::new();
    {
        let api: Api<Deployment> = w.api();
        let cfg = watcher::Config::default().labels("app.oam.dev/component=express-server");
        let mut stream = watcher(api, cfg).boxed();
        let bound = tokio::time::Instant::now() + WAIT;
        while let Ok(Some(ev)) = tokio::time::timeout_at(bound, stream.next()).await {
            if let Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) = ev {
                let n = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(-1);
                if sizes.last() != Some(&n) {
                    sizes.push(n);
                }
                let ready = d.status.as_ref().and_then(|s| s.ready_replicas);
                if n == 5 && ready == Some(5) {
                    break;
                }
            }
        }
    }
    assert_eq!(sizes, [0, 2, 5], "the first release goes 0 → 2 → 5");
    wait_succeeded(&w, "express-server", "express-server-v1", 5).await;
    assert_eq!(
        rollout_columns(c, "express-server").await,
        cols(&["5", "5", "5", "batchReady", "rolloutSucceed"])
    );
    assert_eq!(revisions(c, "express-server").await, ["express-server-v1"]);
    wait_deployments(c, "express-server", &[("express-server-v1", "5/5")]).await;
    let app = w
        .wait_app("rollout-trait-test", "healthy", |s| s["healthy"] == true)
        .await;
    assert_eq!(app["phase"], "running");

    // Upgrade to v2, only the first batch (batchPartition 0).
    avail.reset();
    w.git.write(
        "apps/rollout-trait-test/app.yaml",
        &seed000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetSize: 5
            batchPartition: 0
            rolloutBatches:
              - replicas: 2
              - replicas: 3
",
        ),
    );
    w.git.commit_and_push("v2, first batch only").await;
    w.trigger();
    wait_rollout(&w, "express-server", "v2 held after batch 0", |s| {
        s["targetRevision"] == "express-server-v2"
            && s["batchRollingState"] == "batchReady"
            && s["rollingState"] == "rollingInBatches"
            && s["upgradedReadyReplicas"] == 2
    })
    .await;
    assert_eq!(
        rollout_columns(c, "express-server").await,
        cols(&["5", "2", "2", "batchReady", "rollingInBatches"])
    );
    assert_eq!(
        revisions(c, "express-server").await,
        ["express-server-v1", "express-server-v2"]
    );
    wait_deployments(
        c,
        "express-server",
        &[("express-server-v1", "3/3"), ("express-server-v2", "2/2")],
    )
    .await;

    // Lift the partition: the rest rolls and v1 is deleted.
    w.git.write(
        "apps/rollout-trait-test/app.yaml",
        &seed000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetSize: 5
            rolloutBatches:
              - replicas: 2
              - replicas: 3
",
        ),
    );
    w.git.commit_and_push("lift the partition").await;
    w.trigger();
    wait_succeeded(&w, "express-server", "express-server-v2", 5).await;
    assert_eq!(
        rollout_columns(c, "express-server").await,
        cols(&["5", "5", "5", "batchReady", "rolloutSucceed"])
    );
    wait_deployments(c, "express-server", &[("express-server-v2", "5/5")]).await;
    assert!(
        avail.min() >= 5,
        "available pods dropped to {}",
        avail.min()
    );

    // Roll back with targetRevision.
    avail.reset();
    w.git.write(
        "apps/rollout-trait-test/app.yaml",
        &seed000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1
            targetSize: 5
            rolloutBatches:
              - replicas: 2
              - replicas: 3
",
        ),
    );
    w.git.commit_and_push("roll back to v1").await;
    w.trigger();
    wait_succeeded(&w, "express-server", "express-server-v1", 5).await;
    assert_eq!(
        rollout_columns(c, "express-server").await,
        cols(&["5", "5", "5", "batchReady", "rolloutSucceed"])
    );
    wait_deployments(c, "express-server", &[("express-server-v1", "5/5")]).await;
    assert!(
        avail.min() >= 5,
        "available pods dropped to {}",
        avail.min()
    );

    // Scale to 7.
    w.git.write(
        "apps/rollout-trait-test/app.yaml",
        &seed000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1
            targetSize: 7
",
        ),
    );
    w.git.commit_and_push("scale to 7").await;
    w.trigger();
    wait_succeeded(&w, "express-server", "express-server-v1", 7).await;
    assert_eq!(
        rollout_columns(c, "express-server").await,
        cols(&["7", "7", "7", "batchReady", "rolloutSucceed"])
    );
    wait_deployments(c, "express-server", &[("express-server-v1", "7/7")]).await;

    // Scale down to 5.
    w.git.write(
        "apps/rollout-trait-test/app.yaml",
        &seed000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1
            targetSize: 5
",
        ),
    );
    w.git.commit_and_push("scale down to 5").await;
    w.trigger();
    wait_succeeded(&w, "express-server", "express-server-v1", 5).await;
    assert_eq!(
        rollout_columns(c, "express-server").await,
        cols(&["5", "5", "5", "batchReady", "rolloutSucceed"])
    );
    wait_deployments(c, "express-server", &[("express-server-v1", "5/5")]).await;
    let app = w
        .wait_app("rollout-trait-test", "healthy", |s| s["healthy"] == true)
        .await;
    assert_eq!(app["phase"], "running");
}

const CLONESET_CRD: &str = include_str!("../examples-repo/apps/cloneset/crd.yaml");

fn seed000_cloneset(revision: &str, image: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test-cloneset
spec:
  components:
    - name: cloneset-server
      type: cloneset
      externalRevision: {revision}
      properties:
        image: {image}
      traits:
        - type: rollout
          properties:
            targetSize: 5
            rolloutBatches:
              - replicas: 2
              - replicas: 3
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed000_cloneset_is_updated_in_place_from_git() {
    let git = GitRepo::with_remote().await;
    git.write("apps/kruise/crd.yaml", CLONESET_CRD);
    git.write(
        "apps/cloneset/app.yaml",
        &seed000_cloneset("cloneset-server-v1", "stefanprodan/podinfo:4.0.3"),
    );
    git.commit_and_push("cloneset first release").await;
    let w = World::start(git).await;
    let c = &w.cluster;
    wait_succeeded(&w, "cloneset-server", "cloneset-server-v1", 5).await;
    assert_eq!(
        rollout_columns(c, "cloneset-server").await,
        cols(&["5", "5", "5", "batchReady", "rolloutSucceed"])
    );
    assert_eq!(
        revisions(c, "cloneset-server").await,
        ["cloneset-server-v1"]
    );
    let image = c
        .kubectl_ok(&[
            "get",
            "cloneset",
            "cloneset-server",
            "-o=jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image.trim(), "stefanprodan/podinfo:4.0.3");
    let pods_before = c
        .kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app.oam.dev/component=cloneset-server",
            "-o=jsonpath={.items[*].metadata.name}",
        ])
        .await;

    w.git.write(
        "apps/cloneset/app.yaml",
        &seed000_cloneset("cloneset-server-v2", "stefanprodan/podinfo:5.0.2"),
    );
    w.git.commit_and_push("cloneset v2").await;
    w.trigger();
    wait_succeeded(&w, "cloneset-server", "cloneset-server-v2", 5).await;
    assert_eq!(
        rollout_columns(c, "cloneset-server").await,
        cols(&["5", "5", "5", "batchReady", "rolloutSucceed"])
    );
    assert_eq!(
        revisions(c, "cloneset-server").await,
        ["cloneset-server-v1", "cloneset-server-v2"]
    );
    let out = c
        .kubectl_ok(&[
            "get",
            "cloneset",
            "-l",
            "app.oam.dev/component=cloneset-server",
            "-o",
            "json",
        ])
        .await;
    let list: Value = serde_json::from_str(&out).expect("json");
    let items = list["items"].as_array().expect("items");
    assert_eq!(
        items.len(),
        1,
        "the workload is still the one cloneset-server"
    );
    assert_eq!(items[0]["metadata"]["name"], "cloneset-server");
    assert_eq!(items[0]["status"]["updatedReadyReplicas"], 5);
    let image = c
        .kubectl_ok(&[
            "get",
            "cloneset",
            "cloneset-server",
            "-o=jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image.trim(), "stefanprodan/podinfo:5.0.2");
    let pods_after = c
        .kubectl_ok(&[
            "get",
            "pods",
            "-l",
            "app.oam.dev/component=cloneset-server",
            "-o=jsonpath={.items[*].metadata.name}",
        ])
        .await;
    assert_eq!(pods_before, pods_after, "updated in place: same pods");
}
