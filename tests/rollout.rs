//! Batched rollouts driven from Git (issue 6): seed 000's transcript replayed with `git commit`
//! and `git push` in place of `vela up`, seed 001's AppRollout, a failing image rolled back, and
//! a daemon killed mid-rollout. After each step the test checks what the seed's `kubectl get`
//! commands show, with the real kubectl, and a watch checks at every Deployment event that the
//! available pods never drop below what the plan allows.

mod common;

use common::rollouts::{
    pass_the_deadline, remote_file, remote_log, spawn_daemon, wait_batch_started, wait_rollout,
    wait_succeeded, webservice_with_rollout,
};
use common::world::{GitRepo, World, wait_for};
use common::{TestCluster, WAIT, table_columns};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

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
    let mut stream = watcher(api, cfg).default_backoff().boxed();
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
            let mut stream = watcher(api, cfg).default_backoff().boxed();
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
        let mut stream = watcher(api, cfg).default_backoff().boxed();
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
    w.push(
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
        "v2, first batch only",
    )
    .await;
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
    w.push(
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
        "lift the partition",
    )
    .await;
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
    w.push(
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
        "roll back to v1",
    )
    .await;
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
    w.push(
        "apps/rollout-trait-test/app.yaml",
        &seed000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1
            targetSize: 7
",
        ),
        "scale to 7",
    )
    .await;
    wait_succeeded(&w, "express-server", "express-server-v1", 7).await;
    assert_eq!(
        rollout_columns(c, "express-server").await,
        cols(&["7", "7", "7", "batchReady", "rolloutSucceed"])
    );
    wait_deployments(c, "express-server", &[("express-server-v1", "7/7")]).await;

    // Scale down to 5.
    w.push(
        "apps/rollout-trait-test/app.yaml",
        &seed000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1
            targetSize: 5
",
        ),
        "scale down to 5",
    )
    .await;
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

    w.push(
        "apps/cloneset/app.yaml",
        &seed000_cloneset("cloneset-server-v2", "stefanprodan/podinfo:5.0.2"),
        "cloneset v2",
    )
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_image_fails_the_rollout_and_rolls_back_in_batches() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/shop/app.yaml",
        &webservice_with_rollout("registry.example/web:1", "3s"),
    );
    git.commit_and_push("web 1").await;
    // Without writing the rollback to Git (see the revert tests for that): the rollout stays
    // failed while Git asks for the failed revision.
    let w = World::start_configured(
        git,
        |c| c.simulation.fail_images = vec!["*:broken".into()],
        |r| {
            r.write_back = Some(rollgit::config::RawWriteBack {
                revert_rollbacks: Some(false),
                ..Default::default()
            })
        },
    )
    .await;
    let c = &w.cluster;
    wait_succeeded(&w, "web", "web-v1", 4).await;
    let avail = Availability::watch(w.client.clone(), "web");
    wait_deployments(c, "web", &[("web-v1", "4/4")]).await;
    avail.reset();

    w.push(
        "apps/shop/app.yaml",
        &webservice_with_rollout("registry.example/web:broken", "3s"),
        "web broken",
    )
    .await;
    pass_the_deadline(&w, "web", "web-v2", Duration::from_secs(3)).await;
    let s = wait_rollout(&w, "web", "rolled back after the deadline", |s| {
        s["rollingState"] == "rolloutFailed" && s["rollback"]["done"] == true
    })
    .await;
    assert_eq!(s["rollback"]["from"], "web-v2");
    assert_eq!(s["rollback"]["to"], "web-v1");
    assert_eq!(s["failedRevision"], "web-v2");
    let failed = s["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "RolloutFailed"))
        .expect("a RolloutFailed condition")
        .clone();
    assert_eq!(failed["reason"], "RolledBack");
    let msg = failed["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("web-v2 failed: batch 1 of 2 (web-v2) was not ready within 3s")
            && msg.contains("0 of 2 pods ready")
            && msg.contains("not ready: web-v2-"),
        "{msg}"
    );
    wait_deployments(c, "web", &[("web-v1", "4/4")]).await;
    assert!(
        avail.min() >= 4,
        "available pods dropped to {}",
        avail.min()
    );
    assert_eq!(
        rollout_columns(c, "web").await,
        cols(&["4", "4", "4", "batchReady", "rolloutFailed"])
    );
    // The app says so.
    let app = w
        .wait_app("shop", "unhealthy", |s| s["healthy"] == false)
        .await;
    assert!(
        app["message"]
            .as_str()
            .unwrap_or_default()
            .contains("web-v2"),
        "{app}"
    );
    let events = c
        .kubectl_ok(&[
            "get",
            "events",
            "--field-selector",
            "involvedObject.kind=Rollout,involvedObject.name=web",
            "-o",
            "jsonpath={.items[*].reason}",
        ])
        .await;
    assert!(events.contains("RolloutFailed"), "{events}");

    // Syncing the same commit again does not start a second rollout of the bad revision.
    let api: Api<Deployment> = w.api();
    let cfg = watcher::Config::default().labels("app.oam.dev/component=web");
    let w2 = first_deployment_named(api, cfg, "web-v2");
    w.trigger();
    assert!(
        w2.await.is_none(),
        "web-v2 was created again after the rollback"
    );
}

/// Whether a Deployment `name` appears within two seconds (None: it did not).
async fn first_deployment_named(
    api: Api<Deployment>,
    cfg: watcher::Config,
    name: &str,
) -> Option<Deployment> {
    common::world::first_watched(api, cfg, std::time::Duration::from_secs(2), |d| {
        d.metadata.name.as_deref() == Some(name)
    })
    .await
}

const SEED001_APP_V1: &str =
    include_str!("../crates/render/tests/fixtures/test-rolling-v1/app.yaml");
const SEED001_ROLLOUT_V1: &str =
    include_str!("../crates/render/tests/fixtures/test-rolling-v1/rollout.yaml");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed001_approllout_rolls_app_revisions_from_git() {
    let git = GitRepo::with_remote().await;
    git.write("apps/kruise/crd.yaml", CLONESET_CRD);
    git.write("apps/test-rolling/app.yaml", SEED001_APP_V1);
    git.write("apps/test-rolling/rollout.yaml", SEED001_ROLLOUT_V1);
    git.commit_and_push("test-rolling v1 and its AppRollout")
        .await;
    let w = World::start(git).await;
    let c = &w.cluster;
    let s = wait_succeeded(&w, "metrics-provider", "metrics-provider-v1", 5).await;
    assert!(s["sourceRevision"].is_null(), "{s}");
    c.kubectl_ok(&["get", "controllerrevision", "test-rolling-v1.app"])
        .await;
    let image = c
        .kubectl_ok(&[
            "get",
            "cloneset",
            "metrics-provider",
            "-o=jsonpath={.spec.template.spec.containers[0].image}",
        ])
        .await;
    assert_eq!(image.trim(), "stefanprodan/podinfo:4.0.6");

    // The image changes (app revision test-rolling-v2) and the AppRollout moves v1 → v2 in
    // batches of 1, 50%, 50%, held after the second batch.
    w.git.write(
        "apps/test-rolling/app.yaml",
        &SEED001_APP_V1.replace("podinfo:4.0.6", "podinfo:5.0.2"),
    );
    let rollout = |partition: &str| {
        format!(
            "apiVersion: core.oam.dev/v1beta1
kind: AppRollout
metadata:
  name: rolling-example
spec:
  sourceAppRevisionName: test-rolling-v1
  targetAppRevisionName: test-rolling-v2
  componentList:
    - metrics-provider
  rolloutPlan:
    rolloutStrategy: \"IncreaseFirst\"
    rolloutBatches:
      - replicas: 1
      - replicas: 50%
      - replicas: 50%
{partition}"
        )
    };
    w.push(
        "apps/test-rolling/rollout.yaml",
        &rollout("    batchPartition: 1\n"),
        "v2, held after batch 1",
    )
    .await;
    let s = wait_rollout(&w, "metrics-provider", "held after batch 1", |s| {
        s["targetRevision"] == "metrics-provider-v2"
            && s["currentBatch"] == 1
            && s["batchRollingState"] == "batchReady"
    })
    .await;
    assert_eq!(s["sourceRevision"], "metrics-provider-v1");
    // 1 + ceil(50% of 5) = 4 pods updated in place, 1 left on v1.
    assert_eq!(
        rollout_columns(c, "metrics-provider").await,
        cols(&["5", "4", "4", "batchReady", "rollingInBatches"])
    );
    c.kubectl_ok(&["get", "controllerrevision", "test-rolling-v2.app"])
        .await;

    w.push(
        "apps/test-rolling/rollout.yaml",
        &rollout(""),
        "lift the partition",
    )
    .await;
    wait_succeeded(&w, "metrics-provider", "metrics-provider-v2", 5).await;
    assert_eq!(
        rollout_columns(c, "metrics-provider").await,
        cols(&["5", "5", "5", "batchReady", "rolloutSucceed"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_rollgit_mid_rollout_resumes_without_redoing_or_skipping_a_batch() {
    let cluster = TestCluster::start_with(|c| {
        c.simulation.ready_delay = std::time::Duration::from_millis(800);
    })
    .await;
    let client = cluster.client().await;
    // Installed by the daemon too; here first so the test can watch Rollouts from the start.
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs install");
    let state = tempfile::tempdir().expect("state dir");
    let git = GitRepo::with_remote().await;
    let app = |image: &str| {
        format!(
            "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: resume
spec:
  components:
    - name: api
      type: worker
      properties:
        image: {image}
      traits:
        - type: rollout
          properties:
            targetSize: 6
            rolloutBatches:
              - replicas: 2
              - replicas: 2
              - replicas: 2
"
        )
    };
    git.write("apps/resume/app.yaml", &app("example/api:1"));
    git.commit_and_push("api 1").await;
    let mut daemon = spawn_daemon(&cluster, &git, state.path());
    let ro: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::core::ApiResource::erase::<rollgit::k8s::Rollout>(&()),
    );
    wait_for(
        &ro,
        "api",
        "api-v1 rolled out",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["rollingState"] == "rolloutSucceed"
                    && o.data["status"]["targetRevision"] == "api-v1"
            })
        },
    )
    .await;

    // Record every spec.replicas of api-v2 from here on.
    let seen: Arc<Mutex<Vec<i64>>> = Arc::default();
    {
        let seen = seen.clone();
        let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) = ev
                    && d.metadata.name.as_deref() == Some("api-v2")
                {
                    let n = i64::from(d.spec.and_then(|s| s.replicas).unwrap_or(-1));
                    if let Ok(mut v) = seen.lock()
                        && v.last() != Some(&n)
                    {
                        v.push(n);
                    }
                }
            }
        });
    }
    git.write("apps/resume/app.yaml", &app("example/api:2"));
    git.commit_and_push("api 2").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    // Kill rollgit as soon as each of the first two batches is patched, and start it again.
    for goal in [2, 4] {
        wait_for(
            &deploys,
            "api-v2",
            &format!("api-v2 scaled to {goal}"),
            |d: Option<&Deployment>| {
                d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas) == Some(goal)
            },
        )
        .await;
        daemon.kill().await.expect("kill rollgit");
        daemon = spawn_daemon(&cluster, &git, state.path());
    }
    wait_for(
        &ro,
        "api",
        "api-v2 rolled out",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["rollingState"] == "rolloutSucceed"
                    && o.data["status"]["targetRevision"] == "api-v2"
            })
        },
    )
    .await;
    let sizes = seen.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(sizes, [0, 2, 4, 6], "each batch once, in order");
    assert!(
        deploys.get_opt("api-v1").await.expect("get").is_none(),
        "api-v1 deleted after the rollout"
    );
    daemon.kill().await.expect("kill rollgit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_repository_rolls_out_a_new_image_in_batches() {
    let git = GitRepo::with_remote().await;
    for (path, content) in rollgit::demo::FILES {
        git.write(path, content);
    }
    git.commit_and_push("demo").await;
    let w = World::start(git).await;
    wait_succeeded(&w, "express-server", "express-server-v1", 5).await;
    // What `rollgit up` tells the user to do.
    let app = "apps/express-server/app.yaml";
    let yaml = std::fs::read_to_string(w.git.work.join(app)).expect("read the demo app");
    assert!(yaml.contains("podinfo:4.0.3"));
    w.git
        .write(app, &yaml.replace("podinfo:4.0.3", "podinfo:5.0.2"));
    w.git.commit_and_push("express-server: podinfo 5.0.2").await;
    w.trigger();
    wait_rollout(&w, "express-server", "first batch of v2 ready", |s| {
        s["targetRevision"] == "express-server-v2" && s["upgradedReadyReplicas"] == 2
    })
    .await;
    wait_succeeded(&w, "express-server", "express-server-v2", 5).await;
    wait_deployments(
        &w.cluster,
        "express-server",
        &[("express-server-v2", "5/5")],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollback_is_recorded_as_a_git_revert_and_git_and_the_cluster_agree() {
    let git = GitRepo::with_remote().await;
    let good = webservice_with_rollout("registry.example/web:1", "3s");
    git.write("apps/shop/app.yaml", &good);
    git.write(
        "apps/other/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: \"1\"\n",
    );
    git.commit_and_push("web 1").await;
    let w = World::start_with(git, |c| c.simulation.fail_images = vec!["*:broken".into()]).await;
    wait_succeeded(&w, "web", "web-v1", 4).await;
    let bad = webservice_with_rollout("registry.example/web:broken", "3s");
    let bad_commit = w
        .push("apps/shop/app.yaml", &bad, "web: broken build")
        .await;
    wait_batch_started(&w, "web", "web-v2").await;
    // Another commit (another app) lands while the bad one is rolling out.
    w.git.write(
        "apps/other/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: other\ndata:\n  a: \"2\"\n",
    );
    let other_commit = w.git.commit_and_push("other: a=2").await;
    w.clock.advance(Duration::from_secs(4));

    // The rollback is written to Git as a revert of the bad commit, on top of the other one.
    let s = wait_rollout(&w, "web", "rollback recorded in Git", |s| {
        s["record"]["state"] == "Reverted"
    })
    .await;
    let revert = s["record"]["commit"]
        .as_str()
        .expect("the revert commit")
        .to_string();
    assert_eq!(s["record"]["reverts"], serde_json::json!([bad_commit]));
    assert_eq!(remote_log(&w.git, "%H").await, revert);
    assert_eq!(
        remote_log(&w.git, "%P").await,
        other_commit,
        "no force push: on top of the other commit"
    );
    let message = remote_log(&w.git, "%B").await;
    assert!(
        message.starts_with("Revert shop: web-v2 failed, rolled back to web-v1"),
        "{message}"
    );
    assert!(
        message.contains(&format!("Reverts: {bad_commit}")),
        "{message}"
    );
    assert!(
        message.contains("Rollgit-Rollout: default/web"),
        "{message}"
    );
    assert!(message.contains("was not ready within 3s"), "{message}");
    assert_eq!(
        remote_log(&w.git, "%an <%ae>").await,
        "rollgit <rollgit@localhost>"
    );
    // The working tree of the remote's head is the last good state, and keeps the other change.
    assert_eq!(
        remote_file(&w.git, "apps/shop/app.yaml").await,
        good.trim_end()
    );
    assert!(
        remote_file(&w.git, "apps/other/cm.yaml")
            .await
            .contains("a: \"2\"")
    );

    // rollgit applies its own revert: Git and the cluster agree, on v1, and the rollout says so.
    let s = wait_succeeded(&w, "web", "web-v1", 4).await;
    assert!(s["failedRevision"].is_null(), "{s}");
    wait_deployments(&w.cluster, "web", &[("web-v1", "4/4")]).await;
    let app = w.wait_applied("shop", &revert).await;
    assert_eq!(app["healthy"], true);
    // The rollback stays on record, and the conditions are the current run's only.
    let s = rollout_status(&w, "web").await;
    assert_eq!(s["record"]["state"], "Reverted", "{s}");
    assert_eq!(s["record"]["from"], "web-v2", "{s}");
    let kinds: Vec<&str> = s["conditions"]
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["type"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        kinds.contains(&"RolloutSucceed") && !kinds.contains(&"RolloutFailed"),
        "{s}"
    );

    // `rollgit history` (no repository flags: the app's status object names it) shows the
    // failed commit and rollgit's revert of it.
    let short = |c: &str| c[..12].to_string();
    let state = tempfile::tempdir().expect("a state directory for the CLI");
    let state = state.path().display().to_string();
    let (code, out, err) = w.rollgit(&["history", "shop", "--state-dir", &state]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let row = |sha: &str| {
        out.lines()
            .find(|l| l.starts_with(&short(sha)))
            .unwrap_or_else(|| panic!("a row for {sha} in\n{out}"))
            .to_string()
    };
    assert!(row(&bad_commit).contains("failed web-v2"), "{out}");
    assert!(
        row(&revert).contains(&format!("revert of {}", short(&bad_commit))),
        "{out}"
    );

    // `rollgit rollback` with no --to never undoes rollgit's revert: it targets the state
    // before the newest commit made by someone else, which the app already has.
    let (code, out, err) = w
        .rollgit(&["rollback", "shop", "--dry-run", "--state-dir", &state])
        .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(
        out.starts_with("Nothing to revert: apps/shop already has the content of")
            && out.contains(&format!(
                "the state before {}, the app's newest commit not made by rollgit (after it: rollgit's {})",
                short(&bad_commit),
                short(&revert)
            )),
        "{out}{err}"
    );
    assert_eq!(remote_log(&w.git, "%H").await, revert, "nothing pushed");
}

/// The Rollout `name`'s status now.
async fn rollout_status(w: &World, name: &str) -> serde_json::Value {
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        w.cluster.client().await,
        "default",
        &kube::core::ApiResource::erase::<rollgit::k8s::Rollout>(&()),
    );
    let o = api.get(name).await.expect("the Rollout");
    o.data["status"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflicting_revert_is_not_pushed_and_the_app_is_stalled() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/shop/app.yaml",
        &webservice_with_rollout("registry.example/web:1", "3s"),
    );
    git.commit_and_push("web 1").await;
    let w = World::start_with(git, |c| c.simulation.fail_images = vec!["*:broken".into()]).await;
    wait_succeeded(&w, "web", "web-v1", 4).await;
    w.push(
        "apps/shop/app.yaml",
        &webservice_with_rollout("registry.example/web:broken", "3s"),
        "web: broken build",
    )
    .await;
    wait_batch_started(&w, "web", "web-v2").await;
    // Someone edits the same line before the failure (not synced yet): the revert conflicts.
    w.git.write(
        "apps/shop/app.yaml",
        &webservice_with_rollout("registry.example/web:broken # still broken", "3s"),
    );
    let head = w.git.commit_and_push("web: comment").await;
    w.clock.advance(Duration::from_secs(4));
    let s = wait_rollout(&w, "web", "revert conflict recorded", |s| {
        s["record"]["state"] == "Stalled"
    })
    .await;
    assert_eq!(
        s["record"]["paths"],
        serde_json::json!(["apps/shop/app.yaml"])
    );
    assert_eq!(remote_log(&w.git, "%H").await, head, "nothing pushed");
    // The cluster stays rolled back; the app says it is stalled and why.
    wait_deployments(&w.cluster, "web", &[("web-v1", "4/4")]).await;
    let app = w
        .wait_app("shop", "stalled", |s| s["phase"] == "stalled")
        .await;
    let msg = app["message"].as_str().unwrap_or_default();
    assert!(
        msg.contains("apps/shop/app.yaml") && msg.contains("Stalled: "),
        "{msg}"
    );
    let (_, row) = w.kubectl_app_row("shop").await;
    assert_eq!(row[3], "stalled");
    assert_eq!(row[4], "false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decided_revisions_are_written_back_one_commit_per_change_without_loops() {
    let git = GitRepo::with_remote().await;
    let app = |image: &str| {
        format!(
            "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: {image}
"
        )
    };
    git.write("apps/shop/app.yaml", &app("registry.example/web:1"));
    let c1 = git.commit_and_push("web 1").await;
    let w = World::start_configured(
        git,
        |_| {},
        |r| {
            r.write_back = Some(rollgit::config::RawWriteBack {
                bumps: Some(true),
                ..Default::default()
            })
        },
    )
    .await;
    // The daemon applies c1 and writes the bump commit (an Event on the app names it).
    let bump1 = written_back(&w, &c1).await;
    assert_eq!(remote_log(&w.git, "%H").await, bump1);
    assert_eq!(remote_log(&w.git, "%P").await, c1);
    assert_eq!(remote_log(&w.git, "%an").await, "rollgit");
    let file = remote_file(&w.git, "apps/shop/.rollgit-revisions").await;
    assert!(file.contains("publishVersion: alpha1"), "{file}");
    assert!(file.contains("  web: web-v1"), "{file}");
    assert_eq!(
        common::world::git(
            w.git.bare.as_ref().expect("bare"),
            w.git.dir.path(),
            &["show", "--format=", "--name-only", "main"],
        )
        .await,
        "apps/shop/.rollgit-revisions",
        "the bump commit changes nothing else"
    );

    // A new image: one more revision, one more bump commit.
    w.git.git(&["pull", "-q", "--ff-only"]).await;
    w.git
        .write("apps/shop/app.yaml", &app("registry.example/web:2"));
    let c2 = w.git.commit_and_push("web 2").await;
    w.trigger();
    let bump2 = written_back(&w, &c2).await;
    let file = remote_file(&w.git, "apps/shop/.rollgit-revisions").await;
    assert!(
        file.contains("publishVersion: alpha2") && file.contains("  web: web-v2"),
        "{file}"
    );
    let history = common::world::git(
        w.git.bare.as_ref().expect("bare"),
        w.git.dir.path(),
        &["log", "--format=%H", "main"],
    )
    .await;
    assert_eq!(
        history.lines().collect::<Vec<_>>(),
        [bump2.as_str(), c2.as_str(), bump1.as_str(), c1.as_str()],
        "exactly one bump commit per change"
    );
    // The bump commits change a file the renderer does not read: syncing them decides nothing
    // new, so no further commit comes.
    let events: Api<k8s_openapi::api::core::v1::Event> = w.api();
    let (b1, b2) = (bump1.clone(), bump2.clone());
    let again = common::world::first_watched(
        events,
        watcher::Config::default().fields("reason=RevisionsWrittenBack"),
        std::time::Duration::from_secs(2),
        move |e| {
            let m = e.message.as_deref().unwrap_or_default();
            !m.ends_with(b1.as_str()) && !m.ends_with(b2.as_str())
        },
    );
    w.trigger();
    assert!(again.await.is_none(), "a bump commit made another bump");
    assert_eq!(remote_log(&w.git, "%H").await, bump2);
}

/// Waits (through a watch on Events) until rollgit wrote revisions back on top of `parent`,
/// and returns that commit.
async fn written_back(w: &World, parent: &str) -> String {
    let events: Api<k8s_openapi::api::core::v1::Event> = w.api();
    let cfg = watcher::Config::default().fields("reason=RevisionsWrittenBack");
    let bound = tokio::time::Instant::now() + WAIT;
    let mut stream = watcher(events, cfg).default_backoff().boxed();
    while let Ok(Some(ev)) = tokio::time::timeout_at(bound, stream.next()).await {
        if let Ok(watcher::Event::Apply(e)) | Ok(watcher::Event::InitApply(e)) = ev {
            let msg = e.message.unwrap_or_default();
            let Some(sha) = msg.rsplit(' ').next() else {
                continue;
            };
            if remote_parent(w, sha).await.as_deref() == Some(parent) {
                return sha.to_string();
            }
        }
    }
    panic!("no revisions written back on top of {parent} within {WAIT:?}");
}

/// The first parent of `commit` in the remote, if it exists there.
async fn remote_parent(w: &World, commit: &str) -> Option<String> {
    let bare = w.git.bare.as_ref()?;
    let out = tokio::process::Command::new("git")
        .args(["--git-dir"])
        .arg(bare)
        .args(["log", "-1", "--format=%P", commit])
        .output()
        .await
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_repository_gets_the_revert_of_a_failed_image_in_its_working_tree() {
    // As `rollgit up` runs it: the demo repository is a local working tree followed in place.
    let dir = tempfile::tempdir().expect("temporary directory");
    let work = dir.path().join("demo-repo");
    rollgit::demo::ensure_repo(&work).expect("the demo repository is created");
    let git = GitRepo {
        dir,
        work,
        bare: None,
    };
    // The demo app's own annotation (`rollgit.dev/progress-deadline: 20s`) sets its deadline.
    let w = World::start_with(git, |c| c.simulation.fail_images = vec!["*:broken".into()]).await;
    wait_succeeded(&w, "express-server", "express-server-v1", 5).await;
    let path = "apps/express-server/app.yaml";
    let good = std::fs::read_to_string(w.git.work.join(path)).expect("read the demo app");
    w.git
        .write(path, &good.replace("podinfo:4.0.3", "podinfo:broken"));
    w.git.commit("express-server: a broken image").await;
    w.trigger();
    pass_the_deadline(
        &w,
        "express-server",
        "express-server-v2",
        Duration::from_secs(20),
    )
    .await;
    let s = wait_rollout(&w, "express-server", "the rollback written to Git", |s| {
        s["record"]["state"] == "Reverted"
    })
    .await;
    // The revert is the branch's head and the working tree has the good image again.
    let head = w.git.git(&["rev-parse", "HEAD"]).await;
    assert_eq!(s["record"]["commit"], head.as_str());
    assert_eq!(
        std::fs::read_to_string(w.git.work.join(path)).expect("read the demo app"),
        good
    );
    assert_eq!(w.git.git(&["status", "--porcelain"]).await, "");
    wait_succeeded(&w, "express-server", "express-server-v1", 5).await;
}
