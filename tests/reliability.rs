//! The reliability suite (issue 18, item 5), bounded in time and run by CI; `RELIABILITY.md`
//! lists what it covers and the figures of the last run.
//!
//! * the API server as a dependency that comes and goes: the daemon starts with it down and
//!   syncs once it is up; it is stopped and restarted mid-rollout and the rollout finishes with
//!   no batch redone or skipped;
//! * a corpus of bad commits: each one is rejected whole (nothing of it applied, `path:line` in
//!   the status) and the next good commit applies.

mod common;

use common::WAIT;
use common::world::{GitRepo, World, wait_for};
use futures::StreamExt;
use kube::api::Api;
use kube::runtime::{WatchStreamExt, watcher};
use rollgit::config::{RawCluster, RawConfig, RawRepo};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The API server comes and goes.

/// A dev cluster that can be stopped and started again on the same address and data.
struct Restartable {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    kubeconfig: std::path::PathBuf,
    cluster: Option<rollgit_devcluster::DevCluster>,
}

impl Restartable {
    async fn start() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "rollgit=trace,kube_runtime=debug,rollgit_devcluster=debug",
            ))
            .try_init();
        let dir = tempfile::tempdir().expect("temporary directory");
        let kubeconfig = dir.path().join("kubeconfig");
        let cluster = rollgit_devcluster::DevCluster::start(rollgit_devcluster::Config {
            listen: "127.0.0.1:0".parse().expect("loopback"),
            kubeconfig: Some(kubeconfig.clone()),
            data_dir: Some(dir.path().join("data")),
            simulation: rollgit_devcluster::controllers::SimConfig {
                ready_delay: Duration::from_millis(150),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .expect("dev cluster starts");
        Self {
            addr: cluster.addr(),
            dir,
            kubeconfig,
            cluster: Some(cluster),
        }
    }

    async fn stop(&mut self) {
        if let Some(c) = self.cluster.take() {
            c.shutdown().await;
        }
    }

    async fn restart(&mut self) {
        self.stop().await;
        let cluster = rollgit_devcluster::DevCluster::start(rollgit_devcluster::Config {
            listen: self.addr,
            kubeconfig: Some(self.kubeconfig.clone()),
            data_dir: Some(self.dir.path().join("data")),
            simulation: rollgit_devcluster::controllers::SimConfig {
                ready_delay: Duration::from_millis(150),
                ..Default::default()
            },
            ..Default::default()
        })
        .await
        .expect("dev cluster starts again on the same address");
        self.cluster = Some(cluster);
    }

    async fn client(&self) -> kube::Client {
        rollgit::k8s::client_for("test", Some(&self.kubeconfig), None)
            .await
            .expect("a client")
    }
}

fn daemon_config(
    repo_url: &str,
    kubeconfig: &std::path::Path,
    state: &std::path::Path,
) -> rollgit::config::Config {
    RawConfig {
        repos: vec![RawRepo {
            name: Some("deploy".into()),
            url: Some(repo_url.into()),
            paths: vec!["apps/*".into()],
            interval: Some("24h".into()),
            ..Default::default()
        }],
        clusters: vec![RawCluster {
            kubeconfig: Some(kubeconfig.to_path_buf()),
            ..Default::default()
        }],
        state_dir: Some(state.to_path_buf()),
        ..Default::default()
    }
    .resolve("test")
    .expect("valid configuration")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daemon_starts_with_the_api_down_and_syncs_once_it_is_up() {
    let mut api = Restartable::start().await;
    api.stop().await;
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/shop/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\ndata:\n  key: \"1\"\n",
    );
    git.commit_and_push("shop").await;
    let state = tempfile::tempdir().expect("state directory");
    let cfg = daemon_config(&git.url(), &api.kubeconfig, state.path());
    // It starts although the API server is down, and says it is not ready.
    let daemon = rollgit::daemon::start(&cfg, Default::default())
        .await
        .expect("the daemon starts with the API server down");
    let waiting = daemon.readiness.waiting();
    assert_eq!(waiting, ["repository deploy", "cluster cluster-0"]);

    api.restart().await;
    let client = api.client().await;
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(client, "default");
    wait_for(
        &cms,
        "settings",
        "the app applied once the API is up",
        |o| o.is_some(),
    )
    .await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while !daemon.readiness.waiting().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never ready");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rollout_survives_the_api_server_going_away_mid_rollout() {
    let mut api = Restartable::start().await;
    let git = GitRepo::with_remote().await;
    let app = |image: &str| {
        format!(
            "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
spec:
  components:
    - name: api
      type: webservice
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
    git.write("apps/shop/app.yaml", &app("registry.example/api:1"));
    git.commit_and_push("api 1").await;
    let state = tempfile::tempdir().expect("state directory");
    let cfg = daemon_config(&git.url(), &api.kubeconfig, state.path());
    let daemon = rollgit::daemon::start(&cfg, Default::default())
        .await
        .expect("the daemon starts");
    let client = api.client().await;
    let rollouts: Api<rollgit::k8s::Rollout> = Api::namespaced(client.clone(), "default");
    let succeeded = |target: &'static str| {
        move |o: Option<&rollgit::k8s::Rollout>| {
            o.and_then(|o| o.status.as_ref())
                .and_then(|s| s.valid().ok())
                .is_some_and(|s| {
                    s.rolling_state == "rolloutSucceed"
                        && s.target_revision.as_deref() == Some(target)
                        && s.upgraded_ready_replicas == 6
                })
        }
    };
    wait_for(&rollouts, "api", "v1 rolled out", succeeded("api-v1")).await;

    // Record every size the new revision's Deployment is given.
    let sizes = Arc::new(Mutex::new(Vec::<i32>::new()));
    let record = |client: kube::Client, sizes: Arc<Mutex<Vec<i32>>>| {
        tokio::spawn(async move {
            let deploys: Api<k8s_openapi::api::apps::v1::Deployment> =
                Api::namespaced(client, "default");
            let cfg = watcher::Config::default().fields("metadata.name=api-v2");
            let mut s = watcher(deploys, cfg)
                .default_backoff()
                .applied_objects()
                .boxed();
            while let Some(Ok(d)) = s.next().await {
                let r = d.spec.and_then(|s| s.replicas).unwrap_or(0);
                let mut v = sizes.lock().unwrap_or_else(|p| p.into_inner());
                if v.last() != Some(&r) {
                    v.push(r);
                }
            }
        })
    };
    let watch = record(client.clone(), sizes.clone());
    git.write("apps/shop/app.yaml", &app("registry.example/api:2"));
    git.commit_and_push("api 2").await;
    daemon.triggers.notify("deploy");
    // Once the first batch is under way, the API server goes away and comes back.
    wait_for(&rollouts, "api", "the first batch of v2 started", |o| {
        o.and_then(|o| o.status.as_ref())
            .and_then(|s| s.valid().ok())
            .is_some_and(|s| {
                s.target_revision.as_deref() == Some("api-v2") && s.upgraded_replicas >= 2
            })
    })
    .await;
    watch.abort();
    api.restart().await;
    let client = api.client().await;
    let watch = record(client.clone(), sizes.clone());
    let rollouts: Api<rollgit::k8s::Rollout> = Api::namespaced(client, "default");
    wait_for(
        &rollouts,
        "api",
        "v2 rolled out after the outage",
        succeeded("api-v2"),
    )
    .await;
    watch.abort();
    let sizes = sizes.lock().unwrap_or_else(|p| p.into_inner()).clone();
    assert_eq!(
        sizes,
        [0, 2, 4, 6],
        "each batch once, in order, across the outage"
    );
    daemon.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// A corpus of bad commits.

/// One bad commit: a file written into app `shop` (which also changes the sentinel), and the
/// start of the first error line the status must show.
struct Bad {
    name: &'static str,
    file: &'static str,
    content: String,
    error: &'static str,
}

fn bad(name: &'static str, file: &'static str, content: &str, error: &'static str) -> Bad {
    Bad {
        name,
        file,
        content: content.to_string(),
        error,
    }
}

fn cm(name: &str, data: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n{data}")
}

fn deploy(extra_spec: &str, template_labels: &str, container: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: bad
spec:
{extra_spec}  selector:
    matchLabels: {{app: bad}}
  template:
    metadata:
      labels: {template_labels}
    spec:
      containers:
{container}"
    )
}

const NGINX: &str = "      - name: web\n        image: nginx\n";

fn webservice(properties: &str, traits: &str) -> String {
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
{properties}{traits}"
    )
}

fn rollout_trait(props: &str) -> String {
    format!("      traits:\n        - type: rollout\n          properties:\n{props}")
}

fn corpus() -> Vec<Bad> {
    let ok_labels = "{app: bad}";
    let img = "        image: nginx\n";
    vec![
        // YAML the parser refuses.
        bad(
            "unclosed flow mapping",
            "x.yaml",
            "a: {b: 1\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "tab indentation",
            "x.yaml",
            "a:\n\tb: 1\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "bad indentation",
            "x.yaml",
            "a:\n  b: 1\n c: 2\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "duplicate key",
            "x.yaml",
            &cm("dup", "  k: 1\n  k: 2\n"),
            "apps/shop/x.yaml:",
        ),
        bad(
            "unclosed quote",
            "x.yaml",
            "apiVersion: \"v1\nkind: ConfigMap\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "alias to nothing",
            "x.yaml",
            "a: *nothing\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "not UTF-8",
            "x.yaml",
            "kind: \u{fffd}\u{0}\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "a scalar document",
            "x.yaml",
            "just a string\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "a list document",
            "x.yaml",
            "- a\n- b\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "invalid JSON",
            "x.json",
            "{\"apiVersion\": \"v1\",}",
            "apps/shop/x.json:",
        ),
        // Objects render rejects.
        bad(
            "no kind",
            "x.yaml",
            "apiVersion: v1\nmetadata:\n  name: a\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "no apiVersion",
            "x.yaml",
            "kind: ConfigMap\nmetadata:\n  name: a\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "no name",
            "x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: {}\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "upper-case name",
            "x.yaml",
            &cm("Bad", "  k: v\n"),
            "apps/shop/x.yaml:",
        ),
        bad(
            "name too long",
            "x.yaml",
            &cm(&"a".repeat(254), "  k: v\n"),
            "apps/shop/x.yaml:",
        ),
        bad(
            "name with a slash",
            "x.yaml",
            &cm("a/b", "  k: v\n"),
            "apps/shop/x.yaml:",
        ),
        bad(
            "duplicate object",
            "x.yaml",
            &format!(
                "{}---\n{}",
                cm("twice", "  k: v\n"),
                cm("twice", "  k: w\n")
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "metadata not a mapping",
            "x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata: 3\n",
            "apps/shop/x.yaml:",
        ),
        // Objects the API server refuses (the dry run refuses the commit).
        bad(
            "replicas as a string",
            "x.yaml",
            &deploy("  replicas: \"3\"\n", ok_labels, NGINX),
            "apps/shop/x.yaml:1: Deployment.apps default/bad",
        ),
        bad(
            "selector does not match the template",
            "x.yaml",
            &deploy("", "{app: other}", NGINX),
            "apps/shop/x.yaml:1: Deployment.apps default/bad",
        ),
        bad(
            "no containers",
            "x.yaml",
            &deploy("", ok_labels, "        []\n"),
            "apps/shop/x.yaml:1: Deployment.apps default/bad",
        ),
        bad(
            "negative replicas",
            "x.yaml",
            &deploy("  replicas: -1\n", ok_labels, NGINX),
            "apps/shop/x.yaml:1: Deployment.apps default/bad",
        ),
        bad(
            "container without an image",
            "x.yaml",
            &deploy("", ok_labels, "      - name: web\n"),
            "apps/shop/x.yaml:1: Deployment.apps default/bad",
        ),
        bad(
            "invalid container name",
            "x.yaml",
            &deploy("", ok_labels, "      - name: Web_1\n        image: nginx\n"),
            "apps/shop/x.yaml:1: Deployment.apps default/bad",
        ),
        bad(
            "port 70000",
            "x.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n  - port: 70000\n",
            "apps/shop/x.yaml:1: Service default/bad",
        ),
        bad(
            "service without ports",
            "x.yaml",
            "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  selector: {a: b}\n",
            "apps/shop/x.yaml:1: Service default/bad",
        ),
        bad(
            "invalid label value",
            "x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  labels: {team: \"not a value!\"}\n",
            "apps/shop/x.yaml:1: ConfigMap default/bad",
        ),
        bad(
            "invalid label key",
            "x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\n  labels: {\"-bad\": x}\n",
            "apps/shop/x.yaml:1: ConfigMap default/bad",
        ),
        bad(
            "invalid configmap key",
            "x.yaml",
            &cm("bad", "  \"bad key\": v\n"),
            "apps/shop/x.yaml:1: ConfigMap default/bad",
        ),
        bad(
            "pod without containers",
            "x.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: bad\nspec:\n  containers: []\n",
            "apps/shop/x.yaml:1: Pod default/bad",
        ),
        bad(
            "unknown kind",
            "x.yaml",
            "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\n",
            "apps/shop/x.yaml:1: Gadget.example.com g: the server does not serve kind Gadget",
        ),
        bad(
            "unknown group version",
            "x.yaml",
            "apiVersion: apps/v9\nkind: Deployment\nmetadata:\n  name: g\n",
            "apps/shop/x.yaml:1: Deployment.apps default/g: the server does not serve kind Deployment in apps/v9",
        ),
        bad(
            "a namespace that does not exist",
            "x.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: nowhere\ndata: {}\n",
            "apps/shop/x.yaml:1: ConfigMap nowhere/c",
        ),
        bad(
            "secret data not base64",
            "x.yaml",
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: \"!!!\"\n",
            "apps/shop/x.yaml:1: Secret default/s",
        ),
        bad(
            "ingress without rules or backend",
            "x.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: i\nspec:\n  rules:\n  - http:\n      paths:\n      - path: relative\n        pathType: Prefix\n        backend:\n          service: {name: s, port: {number: 80}}\n",
            "apps/shop/x.yaml:1: Ingress.networking.k8s.io default/i",
        ),
        // KubeVela applications render rejects.
        bad(
            "unknown component type",
            "x.yaml",
            &format!(
                "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: web\n      type: lambda\n      properties:\n{img}"
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "component without an image",
            "x.yaml",
            &webservice("        cmd: [a]\n", ""),
            "apps/shop/x.yaml:",
        ),
        bad(
            "image not a string",
            "x.yaml",
            &webservice("        image: [a]\n", ""),
            "apps/shop/x.yaml:",
        ),
        bad(
            "ports not a list",
            "x.yaml",
            &webservice(&format!("{img}        ports: 80\n"), ""),
            "apps/shop/x.yaml:",
        ),
        bad(
            "port out of range",
            "x.yaml",
            &webservice(&format!("{img}        ports:\n          - port: 0\n"), ""),
            "apps/shop/x.yaml:",
        ),
        bad(
            "replicas negative",
            "x.yaml",
            &webservice(&format!("{img}        replicas: -2\n"), ""),
            "apps/shop/x.yaml:",
        ),
        bad(
            "components not a list",
            "x.yaml",
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components: {}\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "component without a name",
            "x.yaml",
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - type: webservice\n      properties:\n        image: nginx\n",
            "apps/shop/x.yaml:",
        ),
        bad(
            "rollout without targetSize",
            "x.yaml",
            &webservice(
                img,
                &rollout_trait("            rolloutBatches:\n              - replicas: 1\n"),
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "rollout batch not a number",
            "x.yaml",
            &webservice(
                img,
                &rollout_trait(
                    "            targetSize: 2\n            rolloutBatches:\n              - replicas: ab\n",
                ),
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "rollout batch negative",
            "x.yaml",
            &webservice(
                img,
                &rollout_trait(
                    "            targetSize: 2\n            rolloutBatches:\n              - replicas: -1\n",
                ),
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "rollout strategy unknown",
            "x.yaml",
            &webservice(
                img,
                &rollout_trait(
                    "            targetSize: 2\n            rolloutStrategy: Sideways\n",
                ),
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "rollout targetRevision unknown",
            "x.yaml",
            &webservice(
                img,
                &rollout_trait("            targetSize: 2\n            targetRevision: web-v9\n"),
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "two rollout traits",
            "x.yaml",
            &format!(
                "{}        - type: rollout\n          properties:\n            targetSize: 2\n",
                webservice(img, &rollout_trait("            targetSize: 2\n"))
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "rollout batches short of the target size",
            "x.yaml",
            &webservice(
                img,
                &rollout_trait(
                    "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 2\n",
                ),
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "rollout batch of 150%",
            "x.yaml",
            &webservice(
                img,
                &rollout_trait(
                    "            targetSize: 4\n            rolloutBatches:\n              - replicas: 150%\n              - replicas: 2\n",
                ),
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "rollout target size past int32",
            "x.yaml",
            &webservice(
                img,
                &rollout_trait("            targetSize: 1000000000000\n"),
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "unknown trait type",
            "x.yaml",
            &webservice(
                img,
                "      traits:\n        - type: scaler\n          properties:\n            replicas: 3\n",
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "progress deadline not a duration",
            "x.yaml",
            &webservice(img, "").replace(
                "  name: shop\n",
                "  name: shop\n  annotations:\n    rollgit.dev/progress-deadline: soon\n",
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "progress deadline too short",
            "x.yaml",
            &webservice(img, "").replace(
                "  name: shop\n",
                "  name: shop\n  annotations:\n    rollgit.dev/progress-deadline: 10ms\n",
            ),
            "apps/shop/x.yaml:",
        ),
        bad(
            "unknown field in a typed object",
            "x.yaml",
            &deploy("  replicaz: 3\n", ok_labels, NGINX),
            "apps/shop/x.yaml:1: Deployment.apps default/bad",
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_bad_commit_is_rejected_whole_and_the_next_good_one_applies() {
    let git = GitRepo::with_remote().await;
    let sentinel = |v: u32| cm("sentinel", &format!("  value: \"{v}\"\n"));
    git.write("apps/shop/sentinel.yaml", &sentinel(0));
    let c0 = git.commit_and_push("shop: the sentinel").await;
    let w = World::start(git).await;
    w.wait_applied("shop", &c0).await;
    let corpus = corpus();
    assert!(
        corpus.len() >= 50,
        "at least 50 bad commits ({})",
        corpus.len()
    );
    let sentinel_value = || async {
        w.cluster
            .kubectl_ok(&["get", "cm", "sentinel", "-o", "jsonpath={.data.value}"])
            .await
    };
    let mut last_good = c0.clone();
    for (i, case) in corpus.iter().enumerate() {
        let n = u32::try_from(i).unwrap_or(0) + 1;
        // The bad commit also changes the sentinel: that change must not be applied.
        w.git.write("apps/shop/sentinel.yaml", &sentinel(n));
        w.git
            .write(&format!("apps/shop/{}", case.file), &case.content);
        let bad = w.git.commit_and_push(case.name).await;
        w.trigger();
        let s = w
            .wait_app("shop", case.name, |s| {
                s["lastAttemptedCommit"] == bad.as_str()
            })
            .await;
        let first = s["lastError"][0].as_str().unwrap_or_default();
        assert_eq!(s["phase"], "failed", "{}: {s:#}", case.name);
        assert!(
            first.starts_with(case.error),
            "{}: the first error should start with {:?}: {first}",
            case.name,
            case.error
        );
        assert_eq!(s["lastAppliedCommit"], last_good.as_str(), "{}", case.name);
        assert_eq!(
            sentinel_value().await,
            (n - 1).to_string(),
            "{}: nothing of the bad commit is applied",
            case.name
        );
        // The next good commit (the bad file removed) applies.
        w.git.rm(&format!("apps/shop/{}", case.file)).await;
        let good = w.git.commit_and_push(&format!("fix {}", case.name)).await;
        w.trigger();
        w.wait_applied("shop", &good).await;
        assert_eq!(sentinel_value().await, n.to_string(), "{}", case.name);
        last_good = good;
    }
}

// ---------------------------------------------------------------------------------------------
// kill -9 at random points of rollouts.

/// A small deterministic generator (SplitMix64): the same seed, the same kill points.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A delay in `[0, max_ms)` milliseconds.
    fn delay(&mut self, max_ms: u64) -> Duration {
        Duration::from_millis(self.next() % max_ms)
    }
}

/// The seed of the kill points (`ROLLGIT_RELIABILITY_SEED` replays another run).
fn seed() -> u64 {
    std::env::var("ROLLGIT_RELIABILITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20261204)
}

/// Kills `rollgit run` with SIGKILL at random points while revisions v2..=v4 roll out in
/// four batches each, restarting it each time: every rollout ends with each batch applied
/// once, in order, and the last revision running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollgit_killed_at_random_points_never_redoes_or_skips_a_batch() {
    let mut rng = Seeded(seed());
    let cluster = common::TestCluster::start_with(|c| {
        c.simulation.ready_delay = Duration::from_millis(300);
    })
    .await;
    let client = cluster.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs install");
    let state = tempfile::tempdir().expect("state dir");
    let git = GitRepo::with_remote().await;
    let app = |version: u32| {
        format!(
            "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: chaos
spec:
  components:
    - name: api
      type: worker
      properties:
        image: example/api:{version}
      traits:
        - type: rollout
          properties:
            targetSize: 8
            rolloutBatches:
              - replicas: 2
              - replicas: 2
              - replicas: 2
              - replicas: 2
"
        )
    };
    git.write("apps/chaos/app.yaml", &app(1));
    git.commit_and_push("api 1").await;
    let mut daemon = common::rollouts::spawn_daemon(&cluster, &git, state.path());
    let rollouts: Api<rollgit::k8s::Rollout> = Api::namespaced(client.clone(), "default");
    let succeeded = |target: String| {
        move |o: Option<&rollgit::k8s::Rollout>| {
            o.and_then(|o| o.status.as_ref())
                .and_then(|s| s.valid().ok())
                .is_some_and(|s| {
                    s.rolling_state == "rolloutSucceed"
                        && s.target_revision.as_deref() == Some(target.as_str())
                        && s.upgraded_ready_replicas == 8
                })
        }
    };
    wait_for(
        &rollouts,
        "api",
        "api-v1 rolled out",
        succeeded("api-v1".into()),
    )
    .await;
    let mut kills = 0;
    for version in 2..=4u32 {
        let name = format!("api-v{version}");
        let sizes = Arc::new(Mutex::new(Vec::<i32>::new()));
        let watch = {
            let (sizes, name) = (sizes.clone(), name.clone());
            let deploys: Api<k8s_openapi::api::apps::v1::Deployment> =
                Api::namespaced(client.clone(), "default");
            tokio::spawn(async move {
                let cfg = watcher::Config::default().fields(&format!("metadata.name={name}"));
                let mut s = watcher(deploys, cfg)
                    .default_backoff()
                    .applied_objects()
                    .boxed();
                while let Some(Ok(d)) = s.next().await {
                    let r = d.spec.and_then(|s| s.replicas).unwrap_or(0);
                    let mut v = sizes.lock().unwrap_or_else(|p| p.into_inner());
                    if v.last() != Some(&r) {
                        v.push(r);
                    }
                }
            })
        };
        git.write("apps/chaos/app.yaml", &app(version));
        git.commit_and_push(&format!("api {version}")).await;
        // Fault injection: SIGKILL after a random delay, three times during this rollout.
        for _ in 0..3 {
            tokio::time::sleep(rng.delay(700)).await;
            daemon.kill().await.expect("kill rollgit");
            kills += 1;
            daemon = common::rollouts::spawn_daemon(&cluster, &git, state.path());
        }
        wait_for(
            &rollouts,
            "api",
            &format!("{name} rolled out"),
            succeeded(name.clone()),
        )
        .await;
        watch.abort();
        let sizes = sizes.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(
            sizes,
            [0, 2, 4, 6, 8],
            "{name}: each batch once, in order (seed {})",
            seed()
        );
    }
    assert_eq!(kills, 9);
    daemon.kill().await.expect("kill rollgit");
}

// ---------------------------------------------------------------------------------------------
// Concurrent pushes during an automatic revert.

/// Pushes `count` commits to `apps/<name>/` from its own clone of the remote, rebasing and
/// pushing again whenever the remote moved; returns the commits it pushed.
async fn pusher(bare: std::path::PathBuf, name: String, count: u32) -> Vec<String> {
    let dir = tempfile::tempdir().expect("a clone directory");
    let home = dir.path().to_path_buf();
    let git = |args: Vec<String>| {
        let home = home.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            common::world::git(&home.join("work"), &home, &args).await
        }
    };
    common::world::git(
        &home,
        &home,
        &["clone", "-q", bare.to_str().expect("a UTF-8 path"), "work"],
    )
    .await;
    git(vec!["config".into(), "user.name".into(), "Pusher".into()]).await;
    git(vec![
        "config".into(),
        "user.email".into(),
        "pusher@example.com".into(),
    ])
    .await;
    let mut pushed = Vec::new();
    for i in 0..count {
        let path = home.join("work").join(format!("apps/{name}"));
        std::fs::create_dir_all(&path).expect("create the app directory");
        std::fs::write(
            path.join("cm.yaml"),
            cm(&name, &format!("  value: \"{i}\"\n")),
        )
        .expect("write");
        git(vec!["add".into(), "-A".into()]).await;
        git(vec![
            "-c".into(),
            "user.name=Pusher".into(),
            "-c".into(),
            "user.email=pusher@example.com".into(),
            "commit".into(),
            "-q".into(),
            "-m".into(),
            format!("{name} {i}"),
        ])
        .await;
        // Push; when the remote moved, rebase on it and push again (bounded).
        let mut attempts = 0;
        loop {
            attempts += 1;
            assert!(attempts < 50, "{name}: the push never went through");
            let mut cmd = tokio::process::Command::new("git");
            cmd.current_dir(home.join("work"))
                .env("HOME", &home)
                .args(["push", "-q", "origin", "HEAD:main"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            let ok = tokio::time::timeout(WAIT, cmd.status())
                .await
                .expect("git push finishes")
                .expect("git runs")
                .success();
            if ok {
                break;
            }
            git(vec![
                "pull".into(),
                "-q".into(),
                "--rebase".into(),
                "origin".into(),
                "main".into(),
            ])
            .await;
        }
        pushed.push(git(vec!["rev-parse".into(), "HEAD".into()]).await);
    }
    pushed
}

/// While a failed rollout is reverted in Git, three clones push five commits each to other
/// apps: no commit is lost (every one is on the branch), nothing is force-pushed (the first
/// and last heads are ancestors of the final one), and there is exactly one revert.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_pushes_during_a_revert_lose_nothing() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/shop/app.yaml",
        &common::rollouts::webservice_with_rollout("registry.example/web:1", "30s"),
    );
    let start = git.commit_and_push("web 1").await;
    let w = World::start_with(git, |c| c.simulation.fail_images = vec!["*:broken".into()]).await;
    common::rollouts::wait_succeeded(&w, "web", "web-v1", 4).await;
    let bad = w
        .push(
            "apps/shop/app.yaml",
            &common::rollouts::webservice_with_rollout("registry.example/web:broken", "30s"),
            "web: broken",
        )
        .await;
    let bare = w.git.bare.clone().expect("a bare remote");
    let pushers: Vec<_> = ["alpha", "beta", "gamma"]
        .iter()
        .map(|n| tokio::spawn(pusher(bare.clone(), n.to_string(), 5)))
        .collect();
    common::rollouts::pass_the_deadline(&w, "web", "web-v2", Duration::from_secs(30)).await;
    let mut pushed = Vec::new();
    for p in pushers {
        pushed.extend(p.await.expect("the pusher finished"));
    }
    let s = common::rollouts::wait_rollout(&w, "web", "the rollback recorded", |s| {
        s["record"]["state"] == "Reverted"
    })
    .await;
    let revert = s["record"]["commit"]
        .as_str()
        .expect("a revert commit")
        .to_string();
    let log = common::world::git(&bare, w.git.dir.path(), &["log", "--format=%H %s", "main"]).await;
    let shas: Vec<&str> = log.lines().filter_map(|l| l.split(' ').next()).collect();
    for c in pushed.iter().chain([&start, &bad, &revert]) {
        assert!(shas.contains(&c.as_str()), "commit {c} lost:\n{log}");
    }
    let reverts = log.lines().filter(|l| l.contains(" Revert shop:")).count();
    assert_eq!(reverts, 1, "exactly one revert:\n{log}");
    // A linear first-parent history through every head seen: nothing was force-pushed.
    let first_parent = common::world::git(
        &bare,
        w.git.dir.path(),
        &["rev-list", "--first-parent", "main"],
    )
    .await;
    for c in [&start, &bad, &revert] {
        assert!(
            first_parent.lines().any(|l| l == c),
            "{c} is not on the first-parent line"
        );
    }
}
