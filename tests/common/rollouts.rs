//! Rollout helpers shared by the scenario tests: the Rollouts of a world, bounded waits on
//! their status, an app whose component has a rollout trait, and the bare remote's head.

use super::world::{GitRepo, World, wait_for};
use kube::api::{Api, DynamicObject};
use serde_json::Value;
use std::time::Duration;

/// The `rollouts.rollgit.dev` of the world's `default` namespace.
pub fn rollouts(w: &World) -> Api<DynamicObject> {
    Api::namespaced_with(
        w.client.clone(),
        "default",
        &kube::core::ApiResource::erase::<rollgit::k8s::Rollout>(&()),
    )
}

/// Waits until Rollout `name` satisfies `cond` on its status (and describes its latest spec).
pub async fn wait_rollout(
    w: &World,
    name: &str,
    what: &str,
    cond: impl Fn(&Value) -> bool,
) -> Value {
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

pub async fn wait_succeeded(w: &World, name: &str, target: &str, size: i64) -> Value {
    wait_rollout(w, name, &format!("{name} at {target} x{size}"), |s| {
        s["rollingState"] == "rolloutSucceed"
            && s["targetRevision"] == target
            && s["rolloutTargetSize"] == size
            && s["upgradedReadyReplicas"] == size
    })
    .await
}

/// Waits until Rollout `name` rolls a batch of `target` out (its batch clock started).
pub async fn wait_batch_started(w: &World, name: &str, target: &str) {
    wait_rollout(w, name, &format!("a batch of {target} started"), |s| {
        s["targetRevision"] == target
            && s["rollingState"] == "rollingInBatches"
            && s["batchStartedAt"].is_string()
    })
    .await;
}

/// Lets the progress deadline of the batch Rollout `name` rolls out of `target` pass: waits
/// until the batch started and its Deployment (`target`) has all its pods, then moves the
/// daemon's clock past `deadline` (the test drives time instead of waiting it out).
pub async fn pass_the_deadline(w: &World, name: &str, target: &str, deadline: Duration) {
    wait_batch_started(w, name, target).await;
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> = w.api();
    wait_for(&deployments, target, "its pods created", |d| {
        d.and_then(|d| Some((d.spec.as_ref()?.replicas?, d.status.as_ref()?.replicas?)))
            .is_some_and(|(want, have)| want > 0 && have >= want)
    })
    .await;
    w.clock.advance(deadline + Duration::from_secs(1));
}

/// App `shop`: component `web` (webservice, `image`) rolled out to 4 pods in batches of 2 and 2,
/// each batch given `deadline` to become ready.
pub fn webservice_with_rollout(image: &str, deadline: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  annotations:
    rollgit.dev/progress-deadline: {deadline}
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: {image}
      traits:
        - type: rollout
          properties:
            targetSize: 4
            rolloutBatches:
              - replicas: 2
              - replicas: 2
"
    )
}

/// `git log -1 --format=FORMAT main` in the bare remote.
pub async fn remote_log(git: &GitRepo, format: &str) -> String {
    let bare = git.bare.as_ref().expect("a bare remote");
    super::world::git(
        bare,
        git.dir.path(),
        &["log", "-1", &format!("--format={format}"), "main"],
    )
    .await
}

/// A file at the remote's head.
pub async fn remote_file(git: &GitRepo, path: &str) -> String {
    let bare = git.bare.as_ref().expect("a bare remote");
    super::world::git(bare, git.dir.path(), &["show", &format!("main:{path}")]).await
}

/// `rollgit run` as a separate process (so it can be killed), following `git`.
pub fn spawn_daemon(
    cluster: &super::TestCluster,
    git: &GitRepo,
    state: &std::path::Path,
) -> tokio::process::Child {
    let log = std::fs::File::create(state.join(format!(
        "daemon-{}.log",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    )))
    .expect("a log file");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .args([
            "run",
            "--repo",
            &git.url(),
            "--path",
            "apps/*",
            "--interval",
            "1s",
        ])
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--state-dir")
        .arg(state)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("rollgit run starts")
}

/// The Gateway API's HTTPRoute CRD (its schema keeps what it is given, as the dev cluster
/// serves no Gateway API of its own).
pub const HTTP_ROUTE_CRD: &str = r#"{"apiVersion":"apiextensions.k8s.io/v1","kind":"CustomResourceDefinition",
  "metadata":{"name":"httproutes.gateway.networking.k8s.io"},
  "spec":{"group":"gateway.networking.k8s.io","scope":"Namespaced",
    "names":{"kind":"HTTPRoute","listKind":"HTTPRouteList","plural":"httproutes","singular":"httproute"},
    "versions":[{"name":"v1","served":true,"storage":true,
      "schema":{"openAPIV3Schema":{"type":"object","properties":{"spec":{"type":"object","x-kubernetes-preserve-unknown-fields":true},"status":{"type":"object","x-kubernetes-preserve-unknown-fields":true}}}},
      "subresources":{"status":{}}}]}}"#;

/// The HTTPRoutes (`gateway.networking.k8s.io/v1`) of the `default` namespace.
pub fn http_routes(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        "default",
        &rollgit::rollout::argo::traffic::http_route_resource("v1"),
    )
}
