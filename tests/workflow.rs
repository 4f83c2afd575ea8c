//! Multi-cluster delivery from Git (issue 13, seed 003) across TWO dev clusters: the hub
//! `cluster-test` (the repository's cluster, where the app's status object lives, and the
//! test target) and `cluster-prod`. Seed 003's files are committed as written (namespace
//! `demo`, Policies `cluster-test`/`cluster-prod`, Workflow `deploy-demo`, a `ref-objects`
//! Deployment, publishVersion `version1`).

mod common;

use common::world::{GitRepo, wait_for};
use common::{TestCluster, WAIT, table_columns};
use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Api, DynamicObject};
use rollgit::clock::ManualClock;
use rollgit::config::{RawCluster, RawConfig, RawRepo};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

const APP_META: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  labels:
    app: demo
  name: demo
  namespace: demo
spec:
  replicas: 1
  selector:
    matchLabels:
      app: demo
  template:
    metadata:
      labels:
        app: demo
    spec:
      containers:
      - image: registry.cn-hangzhou.aliyuncs.com/acs/rollouts-demo:red
        name: demo
";

const POLICIES: &str = "apiVersion: core.oam.dev/v1alpha1
kind: Policy
metadata:
  name: cluster-test
  namespace: demo
type: topology
properties:
  clusters: [\"cluster-test\"]
---
apiVersion: core.oam.dev/v1alpha1
kind: Policy
metadata:
  name: cluster-prod
  namespace: demo
type: topology
properties:
  clusters: [\"cluster-prod\"]
";

const WORKFLOW: &str = "apiVersion: core.oam.dev/v1alpha1
kind: Workflow
metadata:
  name: deploy-demo
  namespace: demo
steps:
  - type: deploy
    name: deploy-test
    properties:
      policies: [\"cluster-test\"]
  - type: deploy
    name: deploy-prod
    properties:
      auto: false
      policies: [\"cluster-prod\"]
";

fn app_yaml(publish_version: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: demo
  namespace: demo
  annotations:
    app.oam.dev/publishVersion: {publish_version}
spec:
  components:
    - name: demo
      type: ref-objects
      properties:
        objects:
          - apiVersion: apps/v1
            kind: Deployment
            name: demo
  workflow:
    ref: deploy-demo
"
    )
}

/// Two dev clusters and a Git repository holding seed 003 under `apps/demo`.
struct Fleet {
    test: TestCluster,
    prod: TestCluster,
    git: GitRepo,
    state: tempfile::TempDir,
}

impl Fleet {
    async fn start() -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("rollgit=debug"))
            .try_init();
        let test = TestCluster::start_with(|c| {
            c.simulation.ready_delay = Duration::from_millis(150);
        })
        .await;
        let prod = Self::start_prod(tempfile::tempdir().expect("tempdir"), None).await;
        // Seed 003's prerequisite: the namespace of the app exists on the hub.
        test.kubectl_ok(&["create", "namespace", "demo"]).await;
        let git = GitRepo::with_remote().await;
        git.write("apps/demo/app-meta.yaml", APP_META);
        git.write("apps/demo/policy-topology.yaml", POLICIES);
        git.write("apps/demo/workflow.yaml", WORKFLOW);
        git.write("apps/demo/app.yaml", &app_yaml("version1"));
        git.commit_and_push("seed 003").await;
        Self {
            test,
            prod,
            git,
            state: tempfile::tempdir().expect("state dir"),
        }
    }

    /// The prod cluster, keeping its objects in `dir/data` (and listening on `addr` when given,
    /// for a restart where the daemon's kubeconfig points).
    async fn start_prod(dir: tempfile::TempDir, addr: Option<std::net::SocketAddr>) -> TestCluster {
        let data = dir.path().join("data");
        TestCluster::start_in(dir, move |c| {
            c.simulation.ready_delay = Duration::from_millis(150);
            c.data_dir = Some(data);
            if let Some(a) = addr {
                c.listen = a;
            }
        })
        .await
    }

    fn raw_config(&self, interval: &str) -> RawConfig {
        RawConfig {
            repos: vec![RawRepo {
                name: Some("fleet".into()),
                url: Some(self.git.url()),
                branch: Some("main".into()),
                paths: vec!["apps/*".into()],
                interval: Some(interval.into()),
                namespace: Some("demo".into()),
                cluster: Some("cluster-test".into()),
                ..Default::default()
            }],
            clusters: vec![
                RawCluster {
                    name: Some("cluster-test".into()),
                    kubeconfig: Some(self.test.kubeconfig.clone()),
                    ..Default::default()
                },
                RawCluster {
                    name: Some("cluster-prod".into()),
                    kubeconfig: Some(self.prod.kubeconfig.clone()),
                    ..Default::default()
                },
            ],
            state_dir: Some(self.state.path().join("state")),
            ..Default::default()
        }
    }

    /// The daemon in-process on a manual clock (polling every second: a commit lands without
    /// a trigger).
    async fn daemon(&self, clock: &ManualClock) -> rollgit::daemon::Running {
        let config = self.raw_config("1s").resolve("test").expect("valid");
        rollgit::daemon::start(
            &config,
            rollgit::daemon::Options {
                metrics: Arc::new(rollgit::metrics::Metrics::new()),
                clock: Arc::new(clock.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("the daemon starts")
    }

    /// The configuration as a file, for `rollgit run --config`.
    fn config_file(&self) -> std::path::PathBuf {
        let text = format!(
            "repos:
- name: fleet
  url: {}
  branch: main
  paths: [\"apps/*\"]
  interval: 1s
  namespace: demo
  cluster: cluster-test
clusters:
- name: cluster-test
  kubeconfig: {}
- name: cluster-prod
  kubeconfig: {}
stateDir: {}
",
            self.git.url(),
            self.test.kubeconfig.display(),
            self.prod.kubeconfig.display(),
            self.state.path().join("state").display()
        );
        let path = self.state.path().join("rollgit.yaml");
        std::fs::write(&path, text).expect("write the configuration");
        path
    }

    async fn apps(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.test.client().await,
            "demo",
            &rollgit::record::status::application_resource(),
        )
    }

    /// Waits until the app's status satisfies `cond`.
    async fn wait_app(&self, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let found = wait_for(
            &self.apps().await,
            "demo",
            what,
            |o: Option<&DynamicObject>| o.is_some_and(|o| cond(&o.data["status"])),
        )
        .await
        .expect("exists");
        found.data["status"].clone()
    }

    /// `rollgit ARGS --kubeconfig <hub>`.
    async fn rollgit(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut all: Vec<&str> = args.to_vec();
        let kc = self.test.kubeconfig.to_str().expect("utf-8");
        all.extend(["--kubeconfig", kc]);
        self.rollgit_without_kubeconfig(&all).await
    }

    /// `rollgit ARGS`.
    async fn rollgit_without_kubeconfig(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
        cmd.args(args)
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(WAIT, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("rollgit {args:?} did not finish within {WAIT:?}"))
            .expect("rollgit runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn step<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["workflow"]["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|x| x["name"] == name))
        .unwrap_or(&Value::Null)
}

fn suspending_for_approval(s: &Value) -> bool {
    s["phase"] == "workflowSuspending" && step(s, "deploy-prod")["phase"] == "suspending"
}

/// The Deployment `demo/demo` of a cluster, once `cond` holds for it.
async fn wait_deployment(
    c: &TestCluster,
    what: &str,
    cond: impl Fn(&Deployment) -> bool,
) -> Deployment {
    let api: Api<Deployment> = Api::namespaced(c.client().await, "demo");
    wait_for(&api, "demo", what, |d: Option<&Deployment>| {
        d.is_some_and(&cond)
    })
    .await
    .expect("exists")
}

fn ready_with(image: &'static str) -> impl Fn(&Deployment) -> bool {
    move |d| {
        let spec_image = d
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .map(|p| p.containers[0].image.clone().unwrap_or_default());
        spec_image.as_deref().is_some_and(|i| i.ends_with(image))
            && d.status.as_ref().and_then(|s| s.ready_replicas) == Some(1)
    }
}

async fn assert_not_found_on(c: &TestCluster) {
    let out = c
        .kubectl_fails(&["get", "deployment", "demo", "-n", "demo"])
        .await;
    // The namespace too may not exist there yet: the workflow delivered nothing.
    assert!(
        out.contains("Error from server (NotFound): deployments.apps \"demo\" not found")
            || out.contains("Error from server (NotFound): namespaces \"demo\" not found"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_goes_to_test_waits_for_approval_and_reaches_prod_on_resume() {
    let fleet = Fleet::start().await;
    let clock = ManualClock::starting_now();
    let daemon = fleet.daemon(&clock).await;

    // After the commit: suspending, deployed on test, NotFound on prod.
    let s = fleet
        .wait_app("seed 003 waits for approval", suspending_for_approval)
        .await;
    assert_eq!(step(&s, "deploy-test")["phase"], "succeeded");
    assert_eq!(
        step(&s, "deploy-prod")["message"],
        "Waiting approval to the deploy step \"deploy-prod\""
    );
    let out = fleet
        .test
        .kubectl_ok(&["get", "app", "demo", "-n", "demo"])
        .await;
    let rows = table_columns(&out);
    assert_eq!(s["healthy"], true, "{s:#}");
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
        ]
    );
    assert_eq!(
        rows[1][..6],
        [
            "demo",
            "demo",
            "ref-objects",
            "workflowSuspending",
            "true",
            ""
        ]
    );
    let out = fleet
        .test
        .kubectl_ok(&["get", "deployment", "demo", "-n", "demo"])
        .await;
    let rows = table_columns(&out);
    assert_eq!(rows[1][..4], ["demo", "1/1", "1", "1"], "{out}");
    assert_not_found_on(&fleet.prod).await;
    // As `kubectl amc get deployment demo -n demo -m <cluster>` in the seed.
    let config = fleet.config_file();
    let config = config.to_str().expect("utf-8");
    let get = |cluster: &'static str| {
        [
            "get",
            "deployment",
            "demo",
            "-n",
            "demo",
            "--cluster",
            cluster,
            "--config",
        ]
        .into_iter()
        .map(String::from)
        .chain([config.to_string()])
        .collect::<Vec<String>>()
    };
    let args = get("cluster-prod");
    let (code, stdout, stderr) = fleet
        .rollgit(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert_eq!(stdout, "Run on cluster cluster-prod\n");
    assert_eq!(
        stderr.trim(),
        "Error from server (NotFound): deployments.apps \"demo\" not found"
    );
    let args = get("cluster-test");
    let (code, stdout, stderr) = fleet
        .rollgit(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines[0], "Run on cluster cluster-test");
    let rows = table_columns(&lines[1..].join("\n"));
    assert_eq!(
        rows[0][..4],
        ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"],
        "{stdout}"
    );
    assert_eq!(rows[1][..4], ["demo", "1/1", "1", "1"], "{stdout}");
    assert_eq!(s["clusters"][0]["name"], "cluster-test");
    assert_eq!(s["clusters"][0]["healthy"], true);
    assert_eq!(s["workflow"]["publishVersion"], "version1");

    // Resume: prod gets it, the app is running.
    let (code, stdout, stderr) = fleet
        .rollgit(&["workflow", "resume", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "Successfully resume workflow: demo");
    wait_deployment(
        &fleet.prod,
        "prod runs red",
        ready_with("rollouts-demo:red"),
    )
    .await;
    let s = fleet
        .wait_app("running after the resume", |s| s["phase"] == "running")
        .await;
    assert_eq!(step(&s, "deploy-prod")["phase"], "succeeded");
    assert_eq!(s["workflow"]["lastCommand"]["command"], "resume");
    assert_eq!(s["workflow"]["lastCommand"]["user"], "kubernetes-admin");
    let events = fleet
        .test
        .kubectl_ok(&[
            "get",
            "events",
            "-n",
            "demo",
            "--field-selector",
            "reason=WorkflowResumed",
        ])
        .await;
    assert!(events.contains("resume by kubernetes-admin"), "{events}");
    let out = fleet
        .prod
        .kubectl_ok(&["get", "deployment", "demo", "-n", "demo"])
        .await;
    assert_eq!(table_columns(&out)[1][..2], ["demo", "1/1"], "{out}");

    // A finished workflow cannot be resumed.
    let (code, _, stderr) = fleet
        .rollgit(&["workflow", "resume", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(1));
    assert!(stderr.contains("the workflow has finished"), "{stderr}");

    // A new image with a new publishVersion goes to test and waits again; prod keeps red.
    fleet.git.write(
        "apps/demo/app-meta.yaml",
        &APP_META.replace(":red", ":blue"),
    );
    fleet.git.write("apps/demo/app.yaml", &app_yaml("version2"));
    fleet.git.commit_and_push("blue, version2").await;
    wait_deployment(
        &fleet.test,
        "test runs blue",
        ready_with("rollouts-demo:blue"),
    )
    .await;
    let s = fleet
        .wait_app("version2 waits for approval", |s| {
            s["workflow"]["publishVersion"] == "version2" && suspending_for_approval(s)
        })
        .await;
    assert_eq!(step(&s, "deploy-test")["phase"], "succeeded");
    let prod: Api<Deployment> = Api::namespaced(fleet.prod.client().await, "demo");
    let d = prod.get("demo").await.expect("prod keeps its Deployment");
    assert!(ready_with("rollouts-demo:red")(&d), "prod still runs red");

    // A change without a new publishVersion is not delivered.
    fleet.git.write(
        "apps/demo/app-meta.yaml",
        &APP_META.replace(":red", ":green"),
    );
    let green = fleet.git.commit_and_push("green, still version2").await;
    fleet
        .wait_app("the green commit was seen", |s| {
            s["lastAttemptedCommit"] == green.as_str()
        })
        .await;
    let test: Api<Deployment> = Api::namespaced(fleet.test.client().await, "demo");
    let d = test.get("demo").await.expect("test keeps its Deployment");
    assert!(ready_with("rollouts-demo:blue")(&d), "test still runs blue");
    let s = fleet
        .wait_app("still waiting", suspending_for_approval)
        .await;
    assert_eq!(s["workflow"]["publishVersion"], "version2");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_cluster_rejects_the_commit_and_nothing_is_delivered() {
    let fleet = Fleet::start().await;
    fleet.git.write(
        "apps/demo/policy-topology.yaml",
        &POLICIES.replace("[\"cluster-prod\"]", "[\"cluster-prd\"]"),
    );
    fleet.git.commit_and_push("typo").await;
    let clock = ManualClock::starting_now();
    let daemon = fleet.daemon(&clock).await;
    let s = fleet.wait_app("rejected", |s| s["phase"] == "failed").await;
    assert_eq!(
        s["lastError"][0],
        "apps/demo/policy-topology.yaml:17: policy \"cluster-prod\": unknown cluster \"cluster-prd\" (the fleet: local, cluster-test, cluster-prod)"
    );
    assert_not_found_on(&fleet.test).await;
    assert_not_found_on(&fleet.prod).await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timed_suspend_step_resumes_by_itself_on_the_clock() {
    let fleet = Fleet::start().await;
    fleet.git.write(
        "apps/demo/workflow.yaml",
        &WORKFLOW.replace(
            "  - type: deploy\n    name: deploy-prod\n    properties:\n      auto: false\n",
            "  - type: suspend\n    name: soak\n    properties:\n      duration: 1h\n  - type: deploy\n    name: deploy-prod\n    properties:\n",
        ),
    );
    fleet.git.commit_and_push("soak an hour on test").await;
    let clock = ManualClock::starting_now();
    let daemon = fleet.daemon(&clock).await;
    let s = fleet
        .wait_app("soaking", |s| {
            s["phase"] == "workflowSuspending" && step(s, "soak")["phase"] == "suspending"
        })
        .await;
    let started = step(&s, "soak")["firstExecuteTime"]
        .as_str()
        .map(str::to_owned);
    let resume = step(&s, "soak")["resumeTime"].as_str().map(str::to_owned);
    let secs = |t: &Option<String>| {
        t.as_deref()
            .and_then(|t| t.parse::<k8s_openapi::jiff::Timestamp>().ok())
            .map(|t| t.as_second())
            .expect("a time")
    };
    assert_eq!(secs(&resume) - secs(&started), 3600);
    wait_deployment(
        &fleet.test,
        "test runs red",
        ready_with("rollouts-demo:red"),
    )
    .await;
    assert_not_found_on(&fleet.prod).await;
    clock.advance(Duration::from_secs(59 * 60));
    let s = fleet
        .wait_app("still soaking after 59 minutes", |s| {
            step(s, "soak")["phase"] == "suspending"
        })
        .await;
    assert_eq!(s["phase"], "workflowSuspending");
    assert_not_found_on(&fleet.prod).await;
    clock.advance(Duration::from_secs(61));
    wait_deployment(
        &fleet.prod,
        "prod runs red after the hour",
        ready_with("rollouts-demo:red"),
    )
    .await;
    let s = fleet.wait_app("running", |s| s["phase"] == "running").await;
    assert_eq!(step(&s, "soak")["phase"], "succeeded");
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_fails_its_step_and_is_delivered_once_back() {
    let mut fleet = Fleet::start().await;
    let clock = ManualClock::starting_now();
    let daemon = fleet.daemon(&clock).await;
    fleet
        .wait_app("waits for approval", suspending_for_approval)
        .await;
    // Prod goes away.
    let config = fleet.config_file();
    let addr = fleet.prod.cluster.addr();
    let placeholder = TestCluster::start().await;
    let prod = std::mem::replace(&mut fleet.prod, placeholder);
    let prod_dir = prod.stop().await;
    let (code, stdout, stderr) = fleet
        .rollgit_without_kubeconfig(&["clusters", "--config", config.to_str().expect("utf-8")])
        .await;
    assert_eq!(code, Some(1), "one cluster is down: {stdout}{stderr}");
    let rows = table_columns(&stdout);
    assert_eq!(rows[0], ["NAME", "REACHABLE", "VERSION", "LABELS"]);
    assert_eq!(
        rows[1][..3],
        ["cluster-test", "true", "v1.33.0"],
        "{stdout}"
    );
    assert_eq!(rows[2][..2], ["cluster-prod", "false"], "{stdout}");
    let (code, stdout, stderr) = fleet
        .rollgit(&["workflow", "resume", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let s = fleet
        .wait_app("the prod step fails", |s| s["phase"] == "workflowFailed")
        .await;
    let message = step(&s, "deploy-prod")["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(message.starts_with("cluster cluster-prod: "), "{message}");
    assert_eq!(step(&s, "deploy-prod")["phase"], "failed");
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("cluster cluster-prod")),
        "the STATUS column names the cluster: {s:#}"
    );
    // Test is not affected.
    wait_deployment(
        &fleet.test,
        "test keeps red",
        ready_with("rollouts-demo:red"),
    )
    .await;
    // Prod comes back where it was: the step is tried again and succeeds.
    fleet.prod = Fleet::start_prod(prod_dir, Some(addr)).await;
    wait_deployment(
        &fleet.prod,
        "prod runs red",
        ready_with("rollouts-demo:red"),
    )
    .await;
    fleet.wait_app("running", |s| s["phase"] == "running").await;
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_while_suspended_resumes_where_the_workflow_was() {
    let fleet = Fleet::start().await;
    let config = fleet.config_file();
    let spawn = |n: u32| {
        let log = std::fs::File::create(fleet.state.path().join(format!("daemon-{n}.log")))
            .expect("a log file");
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
            .args(["run", "--config"])
            .arg(&config)
            .env("ROLLGIT_LOG", "debug")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("rollgit run starts")
    };
    let mut daemon = spawn(1);
    // The daemon installs its CRDs once it runs.
    let crds: Api<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition> =
        Api::all(fleet.test.client().await);
    wait_for(&crds, "applications.rollgit.dev", "rollgit's CRD", |c| {
        c.is_some()
    })
    .await;
    let before = fleet
        .wait_app("waits for approval", suspending_for_approval)
        .await;
    // A change under the same publishVersion is not delivered, and must not be after a
    // restart either.
    fleet.git.write(
        "apps/demo/app-meta.yaml",
        &APP_META.replace(":red", ":green"),
    );
    let green = fleet.git.commit_and_push("green, still version1").await;
    fleet
        .wait_app("the green commit was seen", |s| {
            s["lastAttemptedCommit"] == green.as_str()
        })
        .await;
    // kill -9.
    daemon.kill().await.expect("SIGKILL");
    let mut daemon = spawn(2);
    // The new daemon takes the run over: the approval is carried out, with no new run.
    let (code, stdout, stderr) = fleet
        .rollgit(&["workflow", "resume", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    wait_deployment(
        &fleet.prod,
        "prod runs red",
        ready_with("rollouts-demo:red"),
    )
    .await;
    let after = fleet.wait_app("running", |s| s["phase"] == "running").await;
    let test: Api<Deployment> = Api::namespaced(fleet.test.client().await, "demo");
    let d = test.get("demo").await.expect("test keeps its Deployment");
    assert!(ready_with("rollouts-demo:red")(&d), "test still runs red");
    assert_eq!(after["workflow"]["commit"], before["workflow"]["commit"]);
    assert_eq!(
        after["workflow"]["startTime"],
        before["workflow"]["startTime"]
    );
    assert_eq!(
        step(&after, "deploy-test")["lastExecuteTime"],
        step(&before, "deploy-test")["lastExecuteTime"],
        "deploy-test was not run again"
    );
    daemon.kill().await.expect("SIGKILL");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn terminate_refuses_a_later_resume_and_restart_runs_the_workflow_again() {
    let fleet = Fleet::start().await;
    let clock = ManualClock::starting_now();
    let daemon = fleet.daemon(&clock).await;
    let before = fleet
        .wait_app("waits for approval", suspending_for_approval)
        .await;
    let (code, stdout, stderr) = fleet
        .rollgit(&["workflow", "terminate", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    assert_eq!(stdout.trim(), "Successfully terminate workflow: demo");
    let s = fleet
        .wait_app("terminated", |s| s["phase"] == "workflowTerminated")
        .await;
    assert_eq!(step(&s, "deploy-prod")["phase"], "failed");
    assert_eq!(step(&s, "deploy-prod")["message"], "terminated");
    let (code, _, stderr) = fleet
        .rollgit(&["workflow", "resume", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr.trim(),
        "cannot resume workflow demo: the workflow is terminated: restart it instead"
    );
    assert_not_found_on(&fleet.prod).await;
    clock.advance(Duration::from_secs(60));
    let (code, stdout, stderr) = fleet
        .rollgit(&["workflow", "restart", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    let s = fleet
        .wait_app("waits for approval again", |s| {
            suspending_for_approval(s)
                && s["workflow"]["startTime"] != before["workflow"]["startTime"]
        })
        .await;
    assert_eq!(step(&s, "deploy-test")["phase"], "succeeded");
    let (code, _, stderr) = fleet
        .rollgit(&[
            "workflow",
            "resume",
            "demo",
            "-n",
            "demo",
            "--step",
            "deploy-staging",
        ])
        .await;
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("no step named \"deploy-staging\""),
        "{stderr}"
    );
    daemon.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_leaves_git_is_pruned_from_every_cluster_its_workflow_delivered_to() {
    let fleet = Fleet::start().await;
    let clock = ManualClock::starting_now();
    let daemon = fleet.daemon(&clock).await;
    fleet
        .wait_app("waits for approval", suspending_for_approval)
        .await;
    let (code, stdout, stderr) = fleet
        .rollgit(&["workflow", "resume", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    fleet.wait_app("running", |s| s["phase"] == "running").await;
    fleet.git.rm("apps/demo").await;
    fleet.git.commit_and_push("demo leaves").await;
    // Deleting everything an app has in a cluster waits for a confirmation, as for one cluster.
    let s = fleet
        .wait_app("the prune is held", |s| {
            s["message"]
                .as_str()
                .is_some_and(|m| m.contains("--allow-mass-prune"))
        })
        .await;
    assert!(
        s["message"]
            .as_str()
            .is_some_and(|m| m.contains("in cluster cluster-")),
        "{s:#}"
    );
    let (code, stdout, stderr) = fleet
        .rollgit(&[
            "sync",
            "demo",
            "-n",
            "demo",
            "--allow-mass-prune",
            "--timeout",
            "0",
        ])
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    for c in [&fleet.test, &fleet.prod] {
        let api: Api<Deployment> = Api::namespaced(c.client().await, "demo");
        wait_for(&api, "demo", "the Deployment is pruned", |d| d.is_none()).await;
    }
    wait_for(&fleet.apps().await, "demo", "the status object goes", |o| {
        o.is_none()
    })
    .await;
    daemon.shutdown().await;
}

/// `kubectl set image deployment/demo demo=IMAGE -n demo` on cluster `c`.
async fn set_image(c: &TestCluster, image: &str) {
    let container = format!("demo={image}");
    c.kubectl_ok(&["set", "image", "deployment/demo", &container, "-n", "demo"])
        .await;
}

/// Self-heal reaches the fleet: what the workflow delivered, changed or deleted in a cluster
/// by someone, is applied again there (the hub as well as another cluster), and counted; and
/// `rollgit diff` shows, per cluster, what the workflow has still to deliver.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_a_workflow_delivered_is_put_back_when_changed_in_its_cluster() {
    let fleet = Fleet::start().await;
    let clock = ManualClock::starting_now();
    let daemon = fleet.daemon(&clock).await;
    fleet
        .wait_app("seed 003 waits for approval", suspending_for_approval)
        .await;
    // `rollgit diff` shows what the workflow still has to deliver, per cluster: prod's
    // Deployment (and namespace) are new, test is in sync.
    let config = fleet.config_file();
    let config = config.to_str().expect("utf-8");
    let (code, stdout, stderr) = fleet
        .rollgit_without_kubeconfig(&["diff", "--config", config])
        .await;
    assert_eq!(code, Some(1), "{stdout}{stderr}");
    assert!(
        stdout.starts_with("# cluster cluster-prod (workflow step deploy-prod)\n"),
        "{stdout}"
    );
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[1..3],
        [
            "--- live/Deployment.apps demo/demo",
            "+++ git/Deployment.apps demo/demo"
        ],
        "{stdout}"
    );
    assert!(
        stdout.contains("+      - image: registry.cn-hangzhou.aliyuncs.com/acs/rollouts-demo:red"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("cluster-test"),
        "test is in sync: {stdout}"
    );
    let (code, stdout, stderr) = fleet
        .rollgit(&["workflow", "resume", "demo", "-n", "demo"])
        .await;
    assert_eq!(code, Some(0), "{stdout}{stderr}");
    fleet
        .wait_app("running after the resume", |s| s["phase"] == "running")
        .await;
    let (code, stdout, stderr) = fleet
        .rollgit_without_kubeconfig(&["diff", "--config", config])
        .await;
    assert_eq!((code, stdout.as_str()), (Some(0), ""), "{stderr}");
    wait_deployment(
        &fleet.prod,
        "prod runs red",
        ready_with("rollouts-demo:red"),
    )
    .await;
    // Someone changes the image on prod: rollgit puts Git's back.
    set_image(&fleet.prod, "registry.example/evil:1").await;
    wait_deployment(
        &fleet.prod,
        "prod runs red again",
        ready_with("rollouts-demo:red"),
    )
    .await;
    // Someone deletes it on the hub: rollgit delivers it again.
    let before = wait_deployment(
        &fleet.test,
        "test runs red",
        ready_with("rollouts-demo:red"),
    )
    .await
    .metadata
    .uid;
    fleet
        .test
        .kubectl_ok(&["delete", "deployment", "demo", "-n", "demo"])
        .await;
    let after = wait_deployment(&fleet.test, "test runs red again", |d| {
        d.metadata.uid != before && ready_with("rollouts-demo:red")(d)
    })
    .await;
    assert_ne!(after.metadata.uid, before);
    let s = fleet
        .wait_app("both corrections counted", |s| {
            s["driftCorrections"].as_u64().is_some_and(|n| n >= 2)
        })
        .await;
    assert_eq!(s["phase"], "running", "{s:#}");
    // A new daemon (the run taken over from the status) corrects drift there too.
    daemon.shutdown().await;
    let _daemon = fleet.daemon(&clock).await;
    set_image(&fleet.prod, "registry.example/evil:2").await;
    wait_deployment(
        &fleet.prod,
        "prod runs red after the restart",
        ready_with("rollouts-demo:red"),
    )
    .await;
}
