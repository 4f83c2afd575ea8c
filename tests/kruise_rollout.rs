//! OpenKruise Rollouts executed from Git (issue 15): seed 004's transcript replayed with `git
//! commit` and `git push` in place of `kubectl apply`, against the dev cluster, with the real
//! kubectl: the echoserver Deployment, Service and Ingress and the Rollout with the seed's
//! three steps; `rollgit approve` (and kubectl-kruise's status patch); the timed pauses moved
//! on by the injected clock; the partition style; a failed canary reverted in Git; a rollback
//! written in Git; and rollgit killed mid-step.

mod common;

use common::rollouts::{remote_file, remote_log};
use common::world::{GitRepo, World, wait_for};
use common::{TestCluster, WAIT, table_columns};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use rollgit::clock::Clock;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const NS: &str = "default";

fn deployment(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: echoserver
  labels:
    app: echoserver
spec:
  replicas: 4
  selector:
    matchLabels:
      app: echoserver
  template:
    metadata:
      labels:
        app: echoserver
    spec:
      containers:
        - name: echoserver
          # mac m1 can choice image e2eteam/echoserver:2.2-linux-arm.
          image: {image}
          imagePullPolicy: IfNotPresent
          ports:
            - containerPort: 8080
          env:
            - name: NODE_NAME
              value: version1
"
    )
}

const SERVICE: &str = "apiVersion: v1
kind: Service
metadata:
  name: echoserver
  labels:
    app: echoserver
spec:
  ports:
    - port: 80
      targetPort: 8080
      protocol: TCP
      name: http
  selector:
    app: echoserver
";

const INGRESS: &str = "apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: echoserver
  annotations:
    kubernetes.io/ingress.class: nginx
spec:
  rules:
    - http:
        paths:
          - backend:
              service:
                name: echoserver
                port:
                  number: 80
            path: /apis/echo
            pathType: Exact
";

/// Seed 004's Rollout (`extra_annotations` indented 4, e.g. the partition style).
fn rollout(extra_annotations: &str) -> String {
    format!(
        "apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: rollouts-demo
  annotations:
    rollgit.dev/progress-deadline: 30s
{extra_annotations}spec:
  objectRef:
    workloadRef:
      apiVersion: apps/v1
      kind: Deployment
      # Deployment Name
      name: echoserver
  strategy:
    canary:
      steps:
        - matches:
            - headers:
                - type: Exact
                  name: User-Agent
                  value: Andriod
          pause: {{}}
          replicas: 1
        - weight: 50
          replicas: 50%
          pause: {{duration: 60}}
        - weight: 100
          replicas: 100%
          pause: {{duration: 60}}
      trafficRoutings:
        - service: echoserver
          ingress:
            name: echoserver
"
    )
}

const PARTITION: &str = "    rollouts.kruise.io/rolling-style: partition\n";
const V1: &str = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.2";
const V2: &str = "openkruise-registry.cn-shanghai.cr.aliyuncs.com/openkruise/demo:1.10.3";

fn seed_app(git: &GitRepo, image: &str, extra: &str) {
    git.write("apps/echo/echoserver.yaml", &deployment(image));
    git.write("apps/echo/service.yaml", SERVICE);
    git.write("apps/echo/ingress.yaml", INGRESS);
    git.write("apps/echo/rollout.yaml", &rollout(extra));
}

fn kruise_rollouts(client: &kube::Client) -> Api<DynamicObject> {
    Api::namespaced_with(
        client.clone(),
        NS,
        &rollgit::k8s::kruise::rollout_resource(),
    )
}

fn described(o: &DynamicObject) -> bool {
    o.data["status"]["observedGeneration"].as_i64() == o.metadata.generation
}

/// Waits until the Kruise Rollout `name` satisfies `cond` on its status, moving the daemon's
/// clock through the grace periods the executor waits (`status.rollgit.waitUntil`), as the
/// network's time to consume a change would pass. Bounded by [`WAIT`] per wait.
async fn drive(w: &World, name: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
    let api = kruise_rollouts(&w.client);
    for _ in 0..200 {
        let now = w.clock.now().as_second();
        let o = wait_for(&api, name, what, |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                described(o) && (cond(&o.data["status"]) || waiting_after(&o.data["status"], now))
            })
        })
        .await
        .expect("the rollout exists");
        let status = o.data["status"].clone();
        if cond(&status) {
            return status;
        }
        if let Some(until) = wait_until(&status) {
            w.clock
                .advance(Duration::from_secs(u64::try_from(until - now).unwrap_or(0)));
        }
    }
    panic!("{what}: the rollout kept waiting");
}

fn wait_until(status: &Value) -> Option<i64> {
    status["rollgit"]["waitUntil"]
        .as_str()
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(|t| t.as_second())
}

fn waiting_after(status: &Value, now: i64) -> bool {
    wait_until(status).is_some_and(|t| t > now)
}

/// `kubectl get rollouts.rollouts.kruise.io NAME`: STATUS CANARY_STEP CANARY_STATE MESSAGE.
async fn kruise_row(c: &TestCluster, name: &str) -> Vec<String> {
    let out = c
        .kubectl_ok(&["get", "rollouts.rollouts.kruise.io", name, "-n", NS])
        .await;
    let mut rows = table_columns(&out).into_iter();
    let header = rows.next().expect("a header");
    assert_eq!(
        header,
        [
            "NAME",
            "STATUS",
            "CANARY_STEP",
            "CANARY_STATE",
            "MESSAGE",
            "AGE"
        ]
    );
    let row = rows.next().expect("a row");
    assert_eq!(row[0], name);
    row[1..5].to_vec()
}

fn cols(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Ready pods of the app by image.
async fn ready_pods(client: &kube::Client) -> BTreeMap<String, usize> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let mut out = BTreeMap::new();
    for p in pods
        .list(&ListParams::default().labels("app=echoserver"))
        .await
        .expect("list pods")
        .items
    {
        if p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        let ready = p
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"));
        let image = p
            .spec
            .as_ref()
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default();
        if ready {
            *out.entry(image).or_default() += 1;
        }
    }
    out
}

/// Waits (through a pod watch, bounded) until the app's ready pods by image are `want`.
async fn wait_pods(client: &kube::Client, want: &[(&str, usize)]) {
    let want: BTreeMap<String, usize> = want.iter().map(|(i, n)| (i.to_string(), *n)).collect();
    let deadline = tokio::time::Instant::now() + WAIT;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let mut stream = watcher(pods, watcher::Config::default().labels("app=echoserver"))
        .default_backoff()
        .boxed();
    loop {
        let now = ready_pods(client).await;
        if now == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ready pods: want {want:?}, have {now:?}"
        );
        let _ = tokio::time::timeout_at(deadline, stream.next()).await;
    }
}

/// Ready per pod, and the lowest number of ready pods seen.
type ReadyState = (BTreeMap<String, bool>, Option<usize>);

/// The lowest number of ready pods of the app seen at any pod event since the last reset.
#[derive(Clone)]
struct Availability(Arc<Mutex<ReadyState>>, tokio::sync::watch::Receiver<usize>);

impl Availability {
    fn watch(client: kube::Client) -> Self {
        let (tx, rx) = tokio::sync::watch::channel(0);
        let me = Availability(Arc::default(), rx);
        let st = me.0.clone();
        let pods: Api<Pod> = Api::namespaced(client, NS);
        tokio::spawn(async move {
            let mut stream = watcher(pods, watcher::Config::default().labels("app=echoserver"))
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                let Ok(mut s) = st.lock() else { return };
                match ev {
                    Ok(watcher::Event::Apply(p)) | Ok(watcher::Event::InitApply(p)) => {
                        let ready = p.metadata.deletion_timestamp.is_none()
                            && p.status
                                .as_ref()
                                .and_then(|s| s.conditions.as_ref())
                                .is_some_and(|c| {
                                    c.iter().any(|c| c.type_ == "Ready" && c.status == "True")
                                });
                        s.0.insert(p.metadata.name.clone().unwrap_or_default(), ready);
                    }
                    Ok(watcher::Event::Delete(p)) => {
                        s.0.remove(&p.metadata.name.clone().unwrap_or_default());
                    }
                    _ => continue,
                }
                let total = s.0.values().filter(|r| **r).count();
                s.1 = Some(s.1.map_or(total, |m| m.min(total)));
                let _ = tx.send(total);
            }
        });
        me
    }

    /// Waits (bounded) until the watch has seen `ready` pods ready, then starts counting.
    async fn start_at(&mut self, ready: usize) {
        tokio::time::timeout(WAIT, self.1.wait_for(|n| *n == ready))
            .await
            .expect("the pod watch caught up")
            .expect("the pod watch runs");
        self.reset();
    }

    fn reset(&self) {
        if let Ok(mut s) = self.0.lock() {
            let total = s.0.values().filter(|r| **r).count();
            s.1 = Some(total);
        }
    }

    fn min(&self) -> usize {
        self.0.lock().ok().and_then(|s| s.1).unwrap_or_default()
    }
}

/// `rollgit ARGS` with the test cluster's kubeconfig: (exit code, stdout, stderr).
async fn rollgit(c: &TestCluster, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
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

async fn service_selector(client: &kube::Client, name: &str) -> Option<BTreeMap<String, String>> {
    let svc: Api<Service> = Api::namespaced(client.clone(), NS);
    svc.get_opt(name)
        .await
        .expect("get service")
        .map(|s| s.spec.and_then(|s| s.selector).unwrap_or_default())
}

async fn canary_ingress(client: &kube::Client) -> Option<BTreeMap<String, String>> {
    let ing: Api<Ingress> = Api::namespaced(client.clone(), NS);
    ing.get_opt("echoserver-canary")
        .await
        .expect("get ingress")
        .map(|i| i.metadata.annotations.unwrap_or_default())
}

async fn deployment_of(client: &kube::Client, name: &str) -> Option<Deployment> {
    let d: Api<Deployment> = Api::namespaced(client.clone(), NS);
    d.get_opt(name).await.expect("get deployment")
}

fn image_of(d: &Deployment) -> String {
    d.spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .and_then(|s| s.containers.first())
        .and_then(|c| c.image.clone())
        .unwrap_or_default()
}

const PAUSED_1: &str =
    "Rollout is in step(1/3), and you need manually confirm to enter the next step";

/// The first release: rolled out as written, the Rollout Healthy at its last step.
async fn first_release(w: &World) {
    let s = drive(w, "rollouts-demo", "the first release recorded", |s| {
        s["phase"] == "Healthy" && s["canaryStatus"]["currentStepState"] == "Completed"
    })
    .await;
    assert_eq!(s["message"], "workload deployment is completed");
    wait_pods(&w.client, &[(V1, 4)]).await;
    assert_eq!(
        kruise_row(&w.cluster, "rollouts-demo").await,
        cols(&[
            "Healthy",
            "3",
            "Completed",
            "workload deployment is completed"
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed004_transcript_plays_out_from_git() {
    let git = GitRepo::with_remote().await;
    seed_app(&git, V1, "");
    git.commit_and_push("echoserver 1.10.2 and its Rollout")
        .await;
    let w = World::start(git).await;
    let c = &w.cluster;
    first_release(&w).await;
    let mut avail = Availability::watch(w.client.clone());
    wait_pods(&w.client, &[(V1, 4)]).await;
    avail.start_at(4).await;

    // A new image, committed: step 1 waits for approval with one canary pod and the
    // User-Agent=Andriod route.
    w.push(
        "apps/echo/echoserver.yaml",
        &deployment(V2),
        "echoserver 1.10.3",
    )
    .await;
    drive(&w, "rollouts-demo", "step 1 paused", |s| {
        s["currentStepIndex"] == 1 && s["currentStepState"] == "StepPaused"
    })
    .await;
    assert_eq!(
        kruise_row(c, "rollouts-demo").await,
        cols(&["Progressing", "1", "StepPaused", PAUSED_1])
    );
    let ing = canary_ingress(&w.client).await.expect("the canary Ingress");
    assert_eq!(ing["nginx.ingress.kubernetes.io/canary"], "true");
    assert_eq!(
        ing["nginx.ingress.kubernetes.io/canary-by-header"],
        "User-Agent"
    );
    assert_eq!(
        ing["nginx.ingress.kubernetes.io/canary-by-header-value"],
        "Andriod"
    );
    assert!(!ing.contains_key("nginx.ingress.kubernetes.io/canary-weight"));
    assert_eq!(
        ing["kubernetes.io/ingress.class"], "nginx",
        "the stable Ingress's annotations"
    );
    let ingresses: Api<Ingress> = Api::namespaced(w.client.clone(), NS);
    let canary_ing = ingresses
        .get("echoserver-canary")
        .await
        .expect("canary ingress");
    let backend = canary_ing
        .spec
        .as_ref()
        .and_then(|s| s.rules.as_ref())
        .expect("rules")[0]
        .http
        .as_ref()
        .expect("http")
        .paths[0]
        .backend
        .service
        .as_ref()
        .expect("service backend")
        .name
        .clone();
    assert_eq!(backend, "echoserver-canary");
    wait_pods(&w.client, &[(V1, 4), (V2, 1)]).await;
    let canary = deployment_of(&w.client, "echoserver-canary")
        .await
        .expect("the canary Deployment");
    assert_eq!(image_of(&canary), V2);
    let stable = deployment_of(&w.client, "echoserver")
        .await
        .expect("stable");
    assert_eq!(image_of(&stable), V2, "the Deployment keeps Git's spec");
    assert_eq!(stable.spec.as_ref().and_then(|s| s.paused), Some(true));
    let stable_sel = service_selector(&w.client, "echoserver")
        .await
        .expect("svc");
    let canary_sel = service_selector(&w.client, "echoserver-canary")
        .await
        .expect("canary svc");
    assert!(
        stable_sel.contains_key("pod-template-hash"),
        "{stable_sel:?}"
    );
    assert_ne!(
        stable_sel.get("pod-template-hash"),
        canary_sel.get("pod-template-hash")
    );
    // The app says it is rolling, and rollgit's own commands show it.
    let (code, out, _) = rollgit(c, &["get", "rollouts"]).await;
    assert_eq!(code, Some(0));
    assert!(
        out.contains("rollouts-demo   Progressing   1             StepPaused"),
        "{out}"
    );
    let (code, out, _) = rollgit(c, &["rollout", "status", "echo"]).await;
    assert_eq!(code, Some(3), "{out}");
    assert!(
        out.contains("step 1/3  [##########]  1/1 ready   header User-Agent=Andriod, manual approval   waiting for approval (rollgit approve rollouts-demo)"),
        "{out}"
    );

    // Approved: step 2 upgrades half the pods, then waits 60 s with weight 50.
    let seen_upgrade = {
        let api = kruise_rollouts(&w.client);
        tokio::spawn(common::world::first_watched(
            api,
            watcher::Config::default(),
            WAIT,
            |o| {
                o.data["status"]["currentStepIndex"] == 2
                    && o.data["status"]["currentStepState"] == "StepUpgrade"
                    && o.data["status"]["message"]
                        == "Rollout is in step(2/3), and upgrade workload to new version"
            },
        ))
    };
    // The watch is listening once it saw the current state (step 1, paused).
    drive(&w, "rollouts-demo", "still paused", |s| {
        s["currentStepState"] == "StepPaused"
    })
    .await;
    let (code, out, err) = rollgit(c, &["approve", "rollouts-demo"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        "rollout.rollouts.kruise.io/rollouts-demo approved"
    );
    drive(&w, "rollouts-demo", "step 2 paused", |s| {
        s["currentStepIndex"] == 2 && s["currentStepState"] == "StepPaused"
    })
    .await;
    assert!(
        seen_upgrade.await.ok().flatten().is_some(),
        "step 2 went through StepUpgrade"
    );
    assert_eq!(
        kruise_row(c, "rollouts-demo").await,
        cols(&[
            "Progressing",
            "2",
            "StepPaused",
            "Rollout is in step(2/3), and wait duration(60 seconds) to enter the next step"
        ])
    );
    let ing = canary_ingress(&w.client).await.expect("the canary Ingress");
    assert_eq!(ing["nginx.ingress.kubernetes.io/canary-weight"], "50");
    assert!(!ing.contains_key("nginx.ingress.kubernetes.io/canary-by-header"));
    wait_pods(&w.client, &[(V1, 4), (V2, 2)]).await;

    // The 60 s pause ends by itself (the clock moves); step 3 is the last at 100%: no pause.
    w.clock.advance(Duration::from_secs(61));
    let s = drive(&w, "rollouts-demo", "completed", |s| {
        s["phase"] == "Healthy"
    })
    .await;
    assert_eq!(s["canaryStatus"]["currentStepState"], "Completed");
    assert_eq!(
        kruise_row(c, "rollouts-demo").await,
        cols(&[
            "Healthy",
            "3",
            "Completed",
            "Rollout progressing has been completed"
        ])
    );
    wait_pods(&w.client, &[(V2, 4)]).await;
    assert!(
        deployment_of(&w.client, "echoserver-canary")
            .await
            .is_none(),
        "the canary Deployment is gone"
    );
    assert!(
        canary_ingress(&w.client).await.is_none(),
        "the canary Ingress is gone"
    );
    assert!(
        service_selector(&w.client, "echoserver-canary")
            .await
            .is_none()
    );
    let sel = service_selector(&w.client, "echoserver")
        .await
        .expect("svc");
    assert!(!sel.contains_key("pod-template-hash"), "{sel:?}");
    let stable = deployment_of(&w.client, "echoserver")
        .await
        .expect("stable");
    assert_ne!(stable.spec.as_ref().and_then(|s| s.paused), Some(true));
    assert!(avail.min() >= 4, "ready pods dropped to {}", avail.min());
    let app = w
        .wait_app("echo", "healthy", |s| s["healthy"] == true)
        .await;
    assert_eq!(app["phase"], "running");
    let (code, out, _) = rollgit(c, &["rollout", "status", "echo"]).await;
    assert_eq!(code, Some(0), "{out}");
    // Not waiting for approval: approve fails, naming the state.
    let (code, _, err) = rollgit(c, &["approve", "rollouts-demo"]).await;
    assert_eq!(code, Some(1));
    assert!(
        err.contains("is not waiting for approval: its canary state is Completed (step 3)"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partition_style_moves_the_deployments_own_pods_in_batches() {
    let git = GitRepo::with_remote().await;
    seed_app(&git, V1, PARTITION);
    git.commit_and_push("echoserver and a partition-style Rollout")
        .await;
    let w = World::start(git).await;
    let c = &w.cluster;
    first_release(&w).await;
    let mut avail = Availability::watch(w.client.clone());
    wait_pods(&w.client, &[(V1, 4)]).await;
    avail.start_at(4).await;
    w.push(
        "apps/echo/echoserver.yaml",
        &deployment(V2),
        "echoserver 1.10.3",
    )
    .await;
    drive(&w, "rollouts-demo", "step 1 paused", |s| {
        s["currentStepIndex"] == 1 && s["currentStepState"] == "StepPaused"
    })
    .await;
    assert_eq!(
        kruise_row(c, "rollouts-demo").await,
        cols(&["Progressing", "1", "StepPaused", PAUSED_1])
    );
    // No extra Deployment: the Deployment itself, paused, runs one new pod.
    assert!(
        deployment_of(&w.client, "echoserver-canary")
            .await
            .is_none()
    );
    wait_pods(&w.client, &[(V1, 3), (V2, 1)]).await;
    let d = deployment_of(&w.client, "echoserver")
        .await
        .expect("deployment");
    let spec = d.spec.as_ref().expect("spec");
    assert_eq!(spec.paused, Some(true));
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("Recreate")
    );
    let ann = d.metadata.annotations.clone().unwrap_or_default();
    assert!(
        ann.contains_key("rollouts.kruise.io/deployment-strategy"),
        "{ann:?}"
    );
    let ing = canary_ingress(&w.client).await.expect("canary ingress");
    assert_eq!(
        ing["nginx.ingress.kubernetes.io/canary-by-header"],
        "User-Agent"
    );

    // Approved the way kubectl-kruise does it: a merge patch of the status subresource.
    c.kubectl_ok(&[
        "patch",
        "rollouts.rollouts.kruise.io",
        "rollouts-demo",
        "-n",
        NS,
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status":{"canaryStatus":{"currentStepState":"StepReady"}}}"#,
    ])
    .await;
    drive(&w, "rollouts-demo", "step 2 paused", |s| {
        s["currentStepIndex"] == 2 && s["currentStepState"] == "StepPaused"
    })
    .await;
    wait_pods(&w.client, &[(V1, 2), (V2, 2)]).await;
    assert_eq!(
        canary_ingress(&w.client).await.expect("ingress")["nginx.ingress.kubernetes.io/canary-weight"],
        "50"
    );
    // Step 3 replaces every pod: the stable Service selects every version again first.
    w.clock.advance(Duration::from_secs(61));
    drive(&w, "rollouts-demo", "completed", |s| {
        s["phase"] == "Healthy"
    })
    .await;
    assert_eq!(
        kruise_row(c, "rollouts-demo").await,
        cols(&[
            "Healthy",
            "3",
            "Completed",
            "Rollout progressing has been completed"
        ])
    );
    wait_pods(&w.client, &[(V2, 4)]).await;
    let d = deployment_of(&w.client, "echoserver")
        .await
        .expect("deployment");
    let spec = d.spec.as_ref().expect("spec");
    assert_ne!(spec.paused, Some(true));
    assert_eq!(
        spec.strategy.as_ref().and_then(|s| s.type_.as_deref()),
        Some("RollingUpdate"),
        "the strategy is back"
    );
    let ann = d.metadata.annotations.clone().unwrap_or_default();
    assert!(!ann.contains_key("rollouts.kruise.io/deployment-strategy"));
    assert!(!ann.contains_key("rollouts.kruise.io/in-progressing"));
    assert!(canary_ingress(&w.client).await.is_none());
    let sel = service_selector(&w.client, "echoserver")
        .await
        .expect("svc");
    assert!(!sel.contains_key("pod-template-hash"), "{sel:?}");
    assert!(
        avail.min() >= 3,
        "ready pods dropped to {} (maxUnavailable 25% of 4 is 1)",
        avail.min()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restoring_the_deployment_in_git_cancels_the_rollout_quickly() {
    let git = GitRepo::with_remote().await;
    seed_app(&git, V1, "");
    git.commit_and_push("echoserver").await;
    let w = World::start(git).await;
    first_release(&w).await;
    w.push("apps/echo/echoserver.yaml", &deployment(V2), "1.10.3")
        .await;
    drive(&w, "rollouts-demo", "step 1 paused", |s| {
        s["currentStepState"] == "StepPaused"
    })
    .await;
    // The seed's rollback: the Deployment as it was, committed.
    w.push(
        "apps/echo/echoserver.yaml",
        &deployment(V1),
        "back to 1.10.2",
    )
    .await;
    let s = drive(&w, "rollouts-demo", "canceled", |s| s["phase"] == "Healthy").await;
    assert_eq!(s["message"], "Rollout progressing has been canceled");
    wait_pods(&w.client, &[(V1, 4)]).await;
    assert!(
        deployment_of(&w.client, "echoserver-canary")
            .await
            .is_none()
    );
    assert!(canary_ingress(&w.client).await.is_none());
    let d = deployment_of(&w.client, "echoserver")
        .await
        .expect("deployment");
    assert_ne!(d.spec.as_ref().and_then(|s| s.paused), Some(true));
    assert!(
        remote_log(&w.git, "%s").await.contains("back to 1.10.2"),
        "nothing written to Git: the rollback came from Git"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_canary_restores_stable_traffic_and_is_reverted_in_git() {
    let git = GitRepo::with_remote().await;
    seed_app(&git, V1, "");
    let good = deployment(V1);
    git.commit_and_push("echoserver").await;
    let w = World::start_with(git, |c| c.simulation.fail_images = vec!["*:broken".into()]).await;
    first_release(&w).await;
    let bad_commit = w
        .push(
            "apps/echo/echoserver.yaml",
            &deployment("openkruise/demo:broken"),
            "echoserver: a broken build",
        )
        .await;
    drive(&w, "rollouts-demo", "step 1 upgrading", |s| {
        s["currentStepState"] == "StepUpgrade"
    })
    .await;
    // The canary pod never becomes ready: the progress deadline (30 s) passes.
    let dep: Api<Deployment> = w.api();
    wait_for(&dep, "echoserver-canary", "the canary pod created", |d| {
        d.and_then(|d| d.status.as_ref()?.replicas)
            .is_some_and(|r| r >= 1)
    })
    .await;
    w.clock.advance(Duration::from_secs(31));
    let s = drive(&w, "rollouts-demo", "reverted in Git", |s| {
        s["record"]["state"] == "Reverted"
    })
    .await;
    let revert = s["record"]["commit"]
        .as_str()
        .expect("the revert")
        .to_string();
    assert_eq!(s["record"]["reverts"], serde_json::json!([bad_commit]));
    assert_eq!(remote_log(&w.git, "%H").await, revert);
    let message = remote_log(&w.git, "%B").await;
    assert!(message.starts_with("Revert echo: echoserver-"), "{message}");
    assert!(
        message.contains("Rollout failed in step(1/3): 0 of 1 canary pods ready within 30s"),
        "{message}"
    );
    assert!(
        message.contains("not ready: echoserver-canary-"),
        "{message}"
    );
    assert!(
        message.contains("Rollgit-Rollout: default/rollouts-demo"),
        "{message}"
    );
    assert_eq!(
        remote_file(&w.git, "apps/echo/echoserver.yaml").await,
        good.trim_end()
    );
    // rollgit applies its revert: the rollout ends canceled, on the stable template.
    let s = drive(&w, "rollouts-demo", "back to healthy", |s| {
        s["phase"] == "Healthy"
    })
    .await;
    assert_eq!(s["message"], "Rollout progressing has been canceled");
    wait_pods(&w.client, &[(V1, 4)]).await;
    assert!(
        deployment_of(&w.client, "echoserver-canary")
            .await
            .is_none()
    );
    assert!(canary_ingress(&w.client).await.is_none());
    let d = deployment_of(&w.client, "echoserver")
        .await
        .expect("deployment");
    assert_eq!(image_of(&d), V1);
    assert_ne!(d.spec.as_ref().and_then(|s| s.paused), Some(true));
    let app = w.wait_applied("echo", &revert).await;
    assert_eq!(app["healthy"], true);
}

/// `rollgit run` as a separate process (so it can be killed), following `git`.
fn spawn_daemon(
    cluster: &TestCluster,
    git: &GitRepo,
    state: &std::path::Path,
) -> tokio::process::Child {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    common::spawn_rollgit_run(
        cluster,
        &git.url(),
        state,
        &format!("daemon-{n}.log"),
        "rollgit=debug",
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_rollgit_mid_step_resumes_the_step_without_redoing_it() {
    let cluster = TestCluster::start_with(|c| {
        c.simulation.ready_delay = Duration::from_millis(800);
    })
    .await;
    let client = cluster.client().await;
    // Installed by the daemon too; here first so the test can watch Rollouts from the start.
    rollgit::k8s::kruise::ensure(&client, false, true)
        .await
        .expect("the Kruise Rollout CRD installs");
    let state = tempfile::tempdir().expect("state dir");
    let git = GitRepo::with_remote().await;
    // Batches only (no traffic routing, so no grace periods on the wall clock).
    let steps = "apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: rollouts-demo
spec:
  objectRef:
    workloadRef:
      apiVersion: apps/v1
      kind: Deployment
      name: echoserver
  strategy:
    canary:
      steps:
        - pause: {}
          replicas: 1
        - replicas: 50%
          pause: {}
        - replicas: 100%
";
    git.write("apps/echo/echoserver.yaml", &deployment(V1));
    git.write("apps/echo/rollout.yaml", steps);
    git.commit_and_push("echoserver").await;
    let mut daemon = spawn_daemon(&cluster, &git, state.path());
    let ro = kruise_rollouts(&client);
    let healthy = |o: Option<&DynamicObject>| {
        o.is_some_and(|o| described(o) && o.data["status"]["phase"] == "Healthy")
    };
    wait_for(&ro, "rollouts-demo", "first release", healthy).await;

    // Every spec.replicas of the canary Deployment from here on.
    let seen: Arc<Mutex<Vec<i32>>> = Arc::default();
    {
        let seen = seen.clone();
        let api: Api<Deployment> = Api::namespaced(client.clone(), NS);
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) = ev
                    && d.metadata.name.as_deref() == Some("echoserver-canary")
                {
                    let n = d.spec.and_then(|s| s.replicas).unwrap_or(-1);
                    if let Ok(mut v) = seen.lock()
                        && v.last() != Some(&n)
                    {
                        v.push(n);
                    }
                }
            }
        });
    }
    git.write("apps/echo/echoserver.yaml", &deployment(V2));
    git.commit_and_push("1.10.3").await;
    let paused_at = |step: i64| {
        move |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["currentStepIndex"] == step
                    && o.data["status"]["currentStepState"] == "StepPaused"
            })
        }
    };
    wait_for(&ro, "rollouts-demo", "step 1 paused", paused_at(1)).await;
    let uid = deployment_of(&client, "echoserver-canary")
        .await
        .and_then(|d| d.metadata.uid)
        .expect("the canary Deployment");
    // Killed while waiting for approval: started again, it waits still.
    daemon.kill().await.expect("kill rollgit");
    daemon = spawn_daemon(&cluster, &git, state.path());
    let (code, _, err) = rollgit(&cluster, &["approve", "rollout/rollouts-demo"]).await;
    assert_eq!(code, Some(0), "{err}");
    // Killed as soon as step 2's batch is patched, before its pods are ready.
    let dep: Api<Deployment> = Api::namespaced(client.clone(), NS);
    wait_for(&dep, "echoserver-canary", "step 2's batch patched", |d| {
        d.and_then(|d| d.spec.as_ref()?.replicas) == Some(2)
    })
    .await;
    daemon.kill().await.expect("kill rollgit");
    daemon = spawn_daemon(&cluster, &git, state.path());
    wait_for(&ro, "rollouts-demo", "step 2 paused", paused_at(2)).await;
    let again = deployment_of(&client, "echoserver-canary")
        .await
        .and_then(|d| d.metadata.uid)
        .expect("the canary Deployment");
    assert_eq!(again, uid, "the canary Deployment was not made again");
    let (code, _, err) = rollgit(&cluster, &["approve", "rollouts-demo"]).await;
    assert_eq!(code, Some(0), "{err}");
    wait_for(
        &ro,
        "rollouts-demo",
        "completed",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["phase"] == "Healthy"
                    && o.data["status"]["message"] == "Rollout progressing has been completed"
            })
        },
    )
    .await;
    let sizes = seen.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(sizes, [1, 2, 4], "each step's batch once, in order");
    wait_pods(&client, &[(V2, 4)]).await;
    daemon.kill().await.expect("kill rollgit");
}

const CLONESET_CRD: &str = include_str!("../examples-repo/apps/cloneset/crd.yaml");

fn cloneset(image: &str) -> String {
    format!(
        "apiVersion: apps.kruise.io/v1alpha1
kind: CloneSet
metadata:
  name: cache
spec:
  replicas: 4
  selector:
    matchLabels:
      app: cache
  template:
    metadata:
      labels:
        app: cache
    spec:
      containers:
        - name: cache
          image: {image}
---
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: cache
spec:
  workloadRef:
    apiVersion: apps.kruise.io/v1alpha1
    kind: CloneSet
    name: cache
  strategy:
    canary:
      steps:
        - replicas: 1
        - replicas: 50%
          pause: {{duration: 30}}
        - replicas: 100%
"
    )
}

async fn pod_images(client: &kube::Client, selector: &str) -> BTreeMap<String, String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    pods.list(&ListParams::default().labels(selector))
        .await
        .expect("list pods")
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .map(|p| {
            let image = p
                .spec
                .as_ref()
                .and_then(|s| s.containers.first())
                .and_then(|c| c.image.clone())
                .unwrap_or_default();
            (p.metadata.name.unwrap_or_default(), image)
        })
        .collect()
}

/// Waits (bounded, through a watch) until `count` of the pods selected run `image`.
async fn wait_images(client: &kube::Client, selector: &str, image: &str, count: usize) {
    let deadline = tokio::time::Instant::now() + WAIT;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let mut stream = watcher(pods, watcher::Config::default().labels(selector))
        .default_backoff()
        .boxed();
    loop {
        let now = pod_images(client, selector).await;
        if now.values().filter(|i| *i == image).count() == count {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "want {count} pods of {image}, have {now:?}"
        );
        let _ = tokio::time::timeout_at(deadline, stream.next()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1beta1_rollout_moves_a_clonesets_partition_in_place() {
    let git = GitRepo::with_remote().await;
    git.write("apps/kruise/crd.yaml", CLONESET_CRD);
    git.write("apps/cache/cache.yaml", &cloneset("redis:7.2"));
    git.commit_and_push("cache").await;
    let w = World::start(git).await;
    let c = &w.cluster;
    drive(&w, "cache", "first release", |s| s["phase"] == "Healthy").await;
    wait_images(&w.client, "app=cache", "redis:7.2", 4).await;
    let before: Vec<String> = pod_images(&w.client, "app=cache")
        .await
        .into_keys()
        .collect();

    w.push("apps/cache/cache.yaml", &cloneset("redis:7.4"), "redis 7.4")
        .await;
    drive(&w, "cache", "step 1 paused", |s| {
        s["currentStepIndex"] == 1 && s["currentStepState"] == "StepPaused"
    })
    .await;
    wait_images(&w.client, "app=cache", "redis:7.4", 1).await;
    let partition = c
        .kubectl_ok(&[
            "get",
            "cloneset",
            "cache",
            "-o=jsonpath={.spec.updateStrategy.partition}",
        ])
        .await;
    assert_eq!(partition.trim(), "3", "3 pods kept on the old revision");
    let (code, _, err) = rollgit(c, &["approve", "cache"]).await;
    assert_eq!(code, Some(0), "{err}");
    drive(&w, "cache", "step 2 paused", |s| {
        s["currentStepIndex"] == 2 && s["currentStepState"] == "StepPaused"
    })
    .await;
    wait_images(&w.client, "app=cache", "redis:7.4", 2).await;
    let partition = c
        .kubectl_ok(&[
            "get",
            "cloneset",
            "cache",
            "-o=jsonpath={.spec.updateStrategy.partition}",
        ])
        .await;
    assert_eq!(partition.trim(), "50%", "Kruise's percent partition");
    w.clock.advance(Duration::from_secs(31));
    let s = drive(&w, "cache", "completed", |s| s["phase"] == "Healthy").await;
    assert_eq!(s["message"], "Rollout progressing has been completed");
    wait_images(&w.client, "app=cache", "redis:7.4", 4).await;
    let after: Vec<String> = pod_images(&w.client, "app=cache")
        .await
        .into_keys()
        .collect();
    assert_eq!(before, after, "updated in place: the same pods");
    let partition = c
        .kubectl_ok(&[
            "get",
            "cloneset",
            "cache",
            "-o=jsonpath={.spec.updateStrategy.partition}",
        ])
        .await;
    assert_eq!(partition.trim(), "", "the partition is released");
}

fn statefulset(image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: db
spec:
  serviceName: db
  replicas: 3
  selector:
    matchLabels:
      app: db
  template:
    metadata:
      labels:
        app: db
    spec:
      containers:
        - name: db
          image: {image}
---
apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: db
spec:
  workloadRef:
    apiVersion: apps/v1
    kind: StatefulSet
    name: db
  strategy:
    canary:
      steps:
        - replicas: 1
          pause: {{}}
        - replicas: 100%
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_is_rolled_through_its_ordinal_partition() {
    let git = GitRepo::with_remote().await;
    git.write("apps/db/db.yaml", &statefulset("postgres:16"));
    git.commit_and_push("db").await;
    let w = World::start(git).await;
    let c = &w.cluster;
    drive(&w, "db", "first release", |s| s["phase"] == "Healthy").await;
    wait_images(&w.client, "app=db", "postgres:16", 3).await;
    w.push(
        "apps/db/db.yaml",
        &statefulset("postgres:17"),
        "postgres 17",
    )
    .await;
    drive(&w, "db", "step 1 paused", |s| {
        s["currentStepIndex"] == 1 && s["currentStepState"] == "StepPaused"
    })
    .await;
    wait_images(&w.client, "app=db", "postgres:17", 1).await;
    let images = pod_images(&w.client, "app=db").await;
    assert_eq!(
        images.get("db-2").map(String::as_str),
        Some("postgres:17"),
        "the highest ordinal first: {images:?}"
    );
    let partition = c
        .kubectl_ok(&[
            "get",
            "statefulset",
            "db",
            "-o=jsonpath={.spec.updateStrategy.rollingUpdate.partition}",
        ])
        .await;
    assert_eq!(partition.trim(), "2");
    let (code, _, err) = rollgit(c, &["approve", "db"]).await;
    assert_eq!(code, Some(0), "{err}");
    let s = drive(&w, "db", "completed", |s| s["phase"] == "Healthy").await;
    assert_eq!(s["message"], "Rollout progressing has been completed");
    wait_images(&w.client, "app=db", "postgres:17", 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_repository_has_a_kruise_rollout_a_user_can_approve() {
    let git = GitRepo::with_remote().await;
    for (path, content) in rollgit::demo::FILES {
        git.write(path, content);
    }
    git.commit_and_push("demo").await;
    let w = World::start(git).await;
    drive(&w, "rollouts-demo", "the first release", |s| {
        s["phase"] == "Healthy" && s["canaryStatus"]["currentStepState"] == "Completed"
    })
    .await;
    // What `rollgit up` tells the user to do.
    let path = "apps/echo/echoserver.yaml";
    let yaml = std::fs::read_to_string(w.git.work.join(path)).expect("read the demo app");
    assert!(yaml.contains("demo:1.10.2"));
    w.push(
        path,
        &yaml.replace("demo:1.10.2", "demo:1.10.3"),
        "echoserver: 1.10.3",
    )
    .await;
    drive(&w, "rollouts-demo", "step 1 waits for approval", |s| {
        s["currentStepIndex"] == 1 && s["currentStepState"] == "StepPaused"
    })
    .await;
    assert_eq!(
        kruise_row(&w.cluster, "rollouts-demo").await,
        cols(&["Progressing", "1", "StepPaused", PAUSED_1])
    );
    let (code, out, err) = rollgit(&w.cluster, &["approve", "rollouts-demo"]).await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        out.trim(),
        "rollout.rollouts.kruise.io/rollouts-demo approved"
    );
    drive(&w, "rollouts-demo", "step 2 waits 60 s", |s| {
        s["currentStepIndex"] == 2 && s["currentStepState"] == "StepPaused"
    })
    .await;
    w.clock.advance(Duration::from_secs(61));
    drive(&w, "rollouts-demo", "completed", |s| {
        s["phase"] == "Healthy"
    })
    .await;
    wait_pods(&w.client, &[(V2, 4)]).await;
}

/// Delegate mode (issue 15): Kruise's own controller installed next to a running rollgit (its
/// controller Deployment, as Kruise's manifests name it; rollgit's CRD stays) takes the Kruise
/// Rollouts over at once: rollgit applies them from Git (even with what only Kruise runs, a
/// path match) and reads their health, and never holds a workload or writes a status: never
/// two controllers on one Rollout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_kruises_own_controller_rollgit_only_applies_and_reads_health() {
    let w = World::start(GitRepo::with_remote().await).await;
    w.cluster
        .kubectl_ok(&["create", "namespace", "kruise-rollout"])
        .await;
    w.cluster
        .kubectl_ok(&[
            "create",
            "deployment",
            "kruise-rollout-controller-manager",
            "-n",
            "kruise-rollout",
            "--image=openkruise/kruise-rollout:v0.6.1",
        ])
        .await;
    // A path match is Kruise's to run (rollgit's executor matches headers only).
    let with_path = rollout("").replace(
        "        - matches:\n            - headers:",
        "        - matches:\n            - path:\n                type: PathPrefix\n                value: /beta\n              headers:",
    );
    w.git.write("apps/echo/echoserver.yaml", &deployment(V1));
    w.git.write("apps/echo/service.yaml", SERVICE);
    w.git.write("apps/echo/ingress.yaml", INGRESS);
    w.git.write("apps/echo/rollout.yaml", &with_path);
    let v1 = w.git.commit_and_push("echoserver v1, Kruise's").await;
    w.trigger();
    w.wait_app("echo", "v1 applied", |s| {
        s["lastAppliedCommit"] == v1.as_str()
    })
    .await;
    wait_pods(&w.client, &[(V1, 4)]).await;
    // A new image goes straight to the Deployment: rollgit holds nothing (Kruise's webhook
    // would), and writes no Rollout status (Kruise's controller would).
    let v2 = w
        .push(
            "apps/echo/echoserver.yaml",
            &deployment(V2),
            "echoserver v2",
        )
        .await;
    w.wait_app("echo", "v2 applied", |s| {
        s["lastAppliedCommit"] == v2.as_str()
    })
    .await;
    wait_pods(&w.client, &[(V2, 4)]).await;
    let d = deployment_of(&w.client, "echoserver")
        .await
        .expect("the Deployment");
    assert!(
        d.metadata
            .annotations
            .as_ref()
            .is_none_or(|a| !a.contains_key("rollouts.kruise.io/in-progressing")),
        "rollgit did not hold the Deployment: {:?}",
        d.metadata.annotations
    );
    assert_ne!(d.spec.as_ref().and_then(|s| s.paused), Some(true));
    let ro = kruise_rollouts(&w.client)
        .get("rollouts-demo")
        .await
        .expect("the Rollout is applied");
    assert!(
        ro.data["status"].is_null(),
        "rollgit wrote no status: {:#}",
        ro.data["status"]
    );
    // Kruise's controller reports its progress: the app's health follows it.
    w.cluster
        .kubectl_ok(&[
            "patch",
            "rollouts.rollouts.kruise.io",
            "rollouts-demo",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"observedGeneration":1,"phase":"Progressing","currentStepIndex":1,"currentStepState":"StepPaused","message":"Rollout is in step(1/3), and you need manually confirm to enter the next step"}}"#,
        ])
        .await;
    w.wait_app("echo", "progressing from Kruise's status", |s| {
        s["healthy"] == false
            && s["message"]
                .as_str()
                .is_some_and(|m| m.contains("StepPaused"))
    })
    .await;
    w.cluster
        .kubectl_ok(&[
            "patch",
            "rollouts.rollouts.kruise.io",
            "rollouts-demo",
            "--subresource=status",
            "--type=merge",
            "-p",
            r#"{"status":{"phase":"Healthy","currentStepIndex":3,"currentStepState":"Completed","message":"Rollout progressing has been completed"}}"#,
        ])
        .await;
    w.wait_app("echo", "healthy from Kruise's status", |s| {
        s["healthy"] == true
    })
    .await;
    let ro = kruise_rollouts(&w.client)
        .get("rollouts-demo")
        .await
        .expect("the Rollout");
    assert_eq!(
        ro.data["status"]["message"], "Rollout progressing has been completed",
        "rollgit's executor left Kruise's status alone"
    );
}

/// Without Kruise, what only Kruise's own controller runs is refused at its line, naming the
/// way out (`rolloutControllers.kruise: external`), and a Rollout applied by hand that rollgit
/// cannot run says so in its status (`InvalidSpec`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_only_kruise_runs_is_refused_and_invalid_spec_reaches_the_status() {
    let git = GitRepo::with_remote().await;
    seed_app(&git, V1, "");
    git.commit_and_push("echoserver 1.10.2 and its Rollout")
        .await;
    let w = World::start(git).await;
    first_release(&w).await;
    let good = remote_log(&w.git, "%H").await;
    let with_path = rollout("").replace(
        "        - matches:\n            - headers:",
        "        - matches:\n            - path:\n                type: PathPrefix\n                value: /beta\n              headers:",
    );
    let bad = w
        .push("apps/echo/rollout.yaml", &with_path, "a path match")
        .await;
    let status = w
        .wait_app("echo", "rejected", |s| {
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
            "apps/echo/rollout.yaml:18: kruise: steps[0].matches[0].path: is not run by rollgit's Kruise Rollout executor (it matches headers); run OpenKruise's own Rollout controller next to rollgit (rolloutControllers.kruise: external) to use it"
        ]
    );
    assert_eq!(status["lastAppliedCommit"], good.as_str());
    // A blue-green Rollout applied by hand (not from Git) is one rollgit's executor cannot
    // run: it says so in its status (the app's health reads the same condition).
    let bg = w.cluster.file(
        "bluegreen.yaml",
        "apiVersion: rollouts.kruise.io/v1beta1
kind: Rollout
metadata:
  name: bluegreen-demo
  namespace: default
spec:
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: echoserver
  strategy:
    blueGreen:
      steps:
        - replicas: 100%
",
    );
    w.cluster
        .kubectl_ok(&["create", "-f", &bg.display().to_string()])
        .await;
    let o = wait_for(
        &kruise_rollouts(&w.client),
        "bluegreen-demo",
        "InvalidSpec in the status",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                described(o)
                    && o.data["status"]["conditions"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c["type"] == "InvalidSpec"))
            })
        },
    )
    .await
    .expect("the Rollout");
    let message = o.data["status"]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("InvalidSpec: ") && message.contains("strategy.blueGreen"),
        "{message}"
    );
    let condition = o.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|c| c["type"] == "InvalidSpec")
        .cloned()
        .unwrap_or_default();
    assert_eq!(condition["status"], "True");
    assert_eq!(condition["reason"], "InvalidSpec");
    // The Deployment it names is left alone: still rolled by rollouts-demo, all on v1.
    wait_pods(&w.client, &[(V1, 4)]).await;
}

const HTTP_ROUTE: &str = "apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: echoserver
spec:
  parentRefs:
    - name: gateway
  rules:
    - matches:
        - path: {type: PathPrefix, value: /apis/echo}
      backendRefs:
        - {kind: Service, name: echoserver, port: 80}
";

/// The HTTPRoute's `spec.rules`, as `kubectl get httproute -o json` shows them.
async fn route_rules(c: &TestCluster) -> Value {
    let out = c
        .kubectl_ok(&["get", "httproutes", "echoserver", "-n", NS, "-o", "json"])
        .await;
    let route: Value = serde_json::from_str(&out).expect("kubectl prints JSON");
    assert_eq!(
        route["spec"]["parentRefs"][0]["name"], "gateway",
        "Git's route, as written"
    );
    route["spec"]["rules"].clone()
}

/// The field managers of the HTTPRoute's `spec.rules` (`kubectl get --show-managed-fields`).
async fn rules_owners(c: &TestCluster) -> Vec<String> {
    let out = c
        .kubectl_ok(&[
            "get",
            "httproutes",
            "echoserver",
            "-n",
            NS,
            "-o",
            "json",
            "--show-managed-fields",
        ])
        .await;
    let route: Value = serde_json::from_str(&out).expect("kubectl prints JSON");
    route["metadata"]["managedFields"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["fieldsV1"]["f:spec"].get("f:rules").is_some())
        .filter_map(|m| m["manager"].as_str().map(str::to_string))
        .collect()
}

/// Seed 004's steps routed through a Gateway API HTTPRoute (`gateway.httpRouteName`) instead
/// of an Ingress: step 1's header match adds a rule to the canary Service, step 2 weighs the
/// stable and canary backendRefs 50/50, and after the last step the route is Git's again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_http_route_follows_the_steps_and_is_restored() {
    let w = World::start(GitRepo::with_remote().await).await;
    let c = &w.cluster;
    let crd = c.file("httproute-crd.json", common::rollouts::HTTP_ROUTE_CRD);
    c.kubectl_ok(&["create", "-f", &crd.display().to_string()])
        .await;
    let gateway_rollout = rollout("").replace(
        "          ingress:\n            name: echoserver\n",
        "          gateway:\n            httpRouteName: echoserver\n",
    );
    assert!(gateway_rollout.contains("httpRouteName"));
    w.git.write("apps/echo/echoserver.yaml", &deployment(V1));
    w.git.write("apps/echo/service.yaml", SERVICE);
    w.git.write("apps/echo/httproute.yaml", HTTP_ROUTE);
    w.push(
        "apps/echo/rollout.yaml",
        &gateway_rollout,
        "echoserver 1.10.2, its HTTPRoute and its Rollout",
    )
    .await;
    first_release(&w).await;
    let git_rules = serde_json::json!([{
        "matches": [{"path": {"type": "PathPrefix", "value": "/apis/echo"}}],
        "backendRefs": [{"kind": "Service", "name": "echoserver", "port": 80}]
    }]);
    assert_eq!(route_rules(c).await, git_rules);

    // A new image: step 1 adds a rule sending User-Agent=Andriod to the canary Service.
    let v2 = w
        .push(
            "apps/echo/echoserver.yaml",
            &deployment(V2),
            "echoserver 1.10.3",
        )
        .await;
    drive(&w, "rollouts-demo", "step 1 paused", |s| {
        s["currentStepIndex"] == 1 && s["currentStepState"] == "StepPaused"
    })
    .await;
    assert_eq!(
        kruise_row(c, "rollouts-demo").await,
        cols(&["Progressing", "1", "StepPaused", PAUSED_1])
    );
    let header_rule = serde_json::json!({
        "matches": [{"path": {"type": "PathPrefix", "value": "/apis/echo"},
                     "headers": [{"type": "Exact", "name": "User-Agent", "value": "Andriod"}]}],
        "backendRefs": [{"kind": "Service", "name": "echoserver-canary", "port": 80}]
    });
    assert_eq!(
        route_rules(c).await,
        serde_json::json!([git_rules[0], header_rule]),
        "Git's rule, then the canary's header rule"
    );
    let canary_sel = service_selector(&w.client, "echoserver-canary")
        .await
        .expect("the canary Service");
    assert!(
        canary_sel.contains_key("pod-template-hash"),
        "{canary_sel:?}"
    );
    wait_pods(&w.client, &[(V1, 4), (V2, 1)]).await;

    // Approved: step 2 weighs the stable and the canary Service 50/50 (Kruise keeps the header
    // rule: it does not reach the stable Service).
    let (code, _, err) = rollgit(c, &["approve", "rollouts-demo"]).await;
    assert_eq!(code, Some(0), "{err}");
    drive(&w, "rollouts-demo", "step 2 paused", |s| {
        s["currentStepIndex"] == 2 && s["currentStepState"] == "StepPaused"
    })
    .await;
    assert_eq!(
        route_rules(c).await,
        serde_json::json!([
            {"matches": [{"path": {"type": "PathPrefix", "value": "/apis/echo"}}],
             "backendRefs": [{"kind": "Service", "name": "echoserver", "port": 80, "weight": 50},
                             {"kind": "Service", "name": "echoserver-canary", "port": 80, "weight": 50}]},
            header_rule
        ])
    );
    wait_pods(&w.client, &[(V1, 4), (V2, 2)]).await;
    // The rules are the executor's alone (handed over before the apply of 1.10.3), so neither
    // that apply nor drift correction puts Git's back mid-release.
    assert_eq!(
        rules_owners(c).await,
        [rollgit::k8s::kruise::FIELD_MANAGER_KRUISE]
    );

    // The 60 s pause ends by the clock; the last step is 100%: the route is Git's again.
    w.clock.advance(Duration::from_secs(61));
    drive(&w, "rollouts-demo", "completed", |s| {
        s["phase"] == "Healthy"
    })
    .await;
    assert_eq!(
        kruise_row(c, "rollouts-demo").await,
        cols(&[
            "Healthy",
            "3",
            "Completed",
            "Rollout progressing has been completed"
        ])
    );
    assert_eq!(route_rules(c).await, git_rules, "the route restored");
    assert!(
        service_selector(&w.client, "echoserver-canary")
            .await
            .is_none(),
        "the canary Service is gone"
    );
    wait_pods(&w.client, &[(V2, 4)]).await;
    // The apply stage left the executor's rules alone all along (HTTPRoute health is Unknown
    // to rollgit: no Gateway controller runs here).
    let app = w
        .wait_app("echo", "V2 applied", |s| {
            s["phase"] == "running" && s["lastAppliedCommit"] == v2.as_str()
        })
        .await;
    assert_eq!(app["conditions"][1]["status"], "True", "{app}");
    assert_eq!(
        route_rules(c).await,
        git_rules,
        "still Git's rules after the sync"
    );

    // Between releases the route follows Git: a new path in Git reaches the executor's rules.
    w.push(
        "apps/echo/httproute.yaml",
        &HTTP_ROUTE.replace("/apis/echo", "/apis/echo2"),
        "echoserver route: /apis/echo2",
    )
    .await;
    let routes = common::rollouts::http_routes(&w.client);
    wait_for(&routes, "echoserver", "Git's new path in the route", |o| {
        o.is_some_and(|o| {
            o.data["spec"]["rules"][0]["matches"][0]["path"]["value"] == "/apis/echo2"
        })
    })
    .await
    .expect("the route");
    let mut want = git_rules.clone();
    want[0]["matches"][0]["path"]["value"] = serde_json::json!("/apis/echo2");
    assert_eq!(route_rules(c).await, want);
    assert_eq!(
        rules_owners(c).await,
        [rollgit::k8s::kruise::FIELD_MANAGER_KRUISE],
        "the executor applied Git's new rules; the apply stage left them out"
    );
}
