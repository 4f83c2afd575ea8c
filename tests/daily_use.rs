//! Daily use (issue 12): what a user reads and types around the core loop, tried as a new user
//! would: the `rollgit` binary, the dev cluster, kubectl and real git. Machine-readable output
//! (`-o json|yaml`), shell completion, logs, `suspend`/`resume`, `createNamespace`, metrics,
//! Kustomize/Helm refusals and unknown health.

mod common;

use common::WAIT;
use common::rollouts::{pass_the_deadline, wait_rollout, wait_succeeded, webservice_with_rollout};
use common::world::{GitRepo, World, wait_for};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::Api;
use serde_json::Value;
use std::path::Path;
use std::time::Duration;

fn deployment(name: &str, replicas: i32) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: {replicas}
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {name}}}
    spec:
      containers:
      - name: main
        image: nginx:1.27
"
    )
}

/// Runs the built binary in `cwd` (so nothing lands in the source tree) with the world's
/// kubeconfig: exit code, stdout, stderr.
async fn rollgit_in(w: &World, cwd: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
            .args(args)
            .env("KUBECONFIG", &w.cluster.kubeconfig)
            .env("HOME", w.git.dir.path())
            .current_dir(cwd)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("rollgit {args:?} did not finish within {WAIT:?}"))
    .expect("rollgit runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Waits (bounded) until the daemon installed CRD `name`.
pub async fn wait_crd(client: &kube::Client, name: &str) {
    use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    tokio::time::timeout(
        WAIT,
        kube::runtime::wait::await_condition(
            crds,
            name,
            kube::runtime::wait::conditions::is_crd_established(),
        ),
    )
    .await
    .unwrap_or_else(|_| panic!("CRD {name} established within {WAIT:?}"))
    .unwrap_or_else(|e| panic!("watching CRD {name}: {e}"));
}

fn json(out: &(Option<i32>, String, String)) -> Value {
    serde_json::from_str(&out.1)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}\nstderr: {}", out.1, out.2))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_rollouts_history_and_rollout_status_print_json_and_yaml() {
    let w = World::start(GitRepo::with_remote().await).await;
    w.git.write("apps/web/deploy.yaml", &deployment("web", 1));
    w.git.write(
        "apps/shop/app.yaml",
        &webservice_with_rollout("nginx:1.27", "1m"),
    );
    let c1 = w.git.commit_and_push("web and shop").await;
    w.trigger();
    w.wait_applied("web", &c1).await;
    wait_succeeded(&w, "web", "web-v1", 4).await;
    w.wait_applied("shop", &c1).await;
    let cwd = tempfile::tempdir().expect("a directory");

    let status = rollgit_in(&w, cwd.path(), &["status", "-o", "json"]).await;
    assert_eq!(status.0, Some(0), "{}", status.2);
    let doc = json(&status);
    let apps = doc["apps"].as_array().expect("an apps array");
    let web = apps
        .iter()
        .find(|a| a["name"] == "web")
        .expect("app web listed");
    assert_eq!(web["phase"], "running");
    assert_eq!(web["healthy"], true);
    assert_eq!(web["lastAppliedCommit"], c1.as_str());
    assert_eq!(web["repo"], "deploy");
    assert_eq!(web["path"], "apps/web");
    assert_eq!(web["suspended"], false);
    assert_eq!(web["objects"], 1);
    let yaml = rollgit_in(&w, cwd.path(), &["status", "shop", "-o", "yaml"]).await;
    assert_eq!(yaml.0, Some(0), "{}", yaml.2);
    let doc: Value = serde_saphyr::from_str(&yaml.1).expect("status -o yaml is YAML");
    assert_eq!(doc["apps"].as_array().map(Vec::len), Some(1), "{}", yaml.1);
    assert_eq!(doc["apps"][0]["name"], "shop");
    assert_eq!(doc["apps"][0]["component"], "web");

    let rollouts = rollgit_in(&w, cwd.path(), &["get", "rollouts", "-o", "json"]).await;
    assert_eq!(rollouts.0, Some(0), "{}", rollouts.2);
    let doc = json(&rollouts);
    assert_eq!(doc["rollouts"][0]["name"], "web");
    assert_eq!(doc["rollouts"][0]["app"], "shop");
    assert_eq!(doc["rollouts"][0]["rollingState"], "rolloutSucceed");
    assert_eq!(doc["rollouts"][0]["targetSize"], 4);
    assert_eq!(doc["rollouts"][0]["stableRevision"], "web-v1");

    let rs = rollgit_in(&w, cwd.path(), &["rollout", "status", "shop", "-o", "json"]).await;
    assert_eq!(rs.0, Some(0), "{}", rs.2);
    let doc = json(&rs);
    assert_eq!(doc["result"], "succeeded");
    assert_eq!(doc["rollouts"][0]["verdict"], "succeeded");
    let batches = doc["rollouts"][0]["batches"].as_array().expect("batches");
    assert_eq!(batches.len(), 2, "{doc:#}");
    assert_eq!(batches[1]["goal"], 4);
    assert_eq!(batches[1]["done"], true);

    // No repository flags: the repository is the one the app's status object names.
    let history = rollgit_in(&w, cwd.path(), &["history", "shop", "-o", "json"]).await;
    assert_eq!(history.0, Some(0), "{}", history.2);
    let doc = json(&history);
    assert_eq!(doc["app"], "shop");
    assert_eq!(doc["path"], "apps/shop");
    assert_eq!(doc["commits"][0]["commit"], &c1[..12]);
    assert_eq!(doc["commits"][0]["summary"], "web and shop");
    assert_eq!(doc["rollouts"][0]["name"], "web");
}

#[tokio::test]
async fn completion_scripts_are_valid_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
            .args(["completion", shell])
            .output()
            .expect("rollgit runs");
        assert!(out.status.success(), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["suspend", "resume", "rollback", "output", "log-format"] {
            assert!(script.contains(word), "{shell} completes {word}");
        }
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .args(["completion", "bash"])
        .output()
        .expect("rollgit runs");
    let dir = tempfile::tempdir().expect("a directory");
    let script = dir.path().join("rollgit.bash");
    std::fs::write(&script, &out.stdout).expect("write the script");
    let check = std::process::Command::new("bash")
        .arg("-n")
        .arg(&script)
        .output()
        .expect("bash runs");
    assert!(
        check.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&check.stderr)
    );
}

/// `rollgit run` with stderr to a file (not a terminal) until app `web` is applied, then
/// stopped: its log.
async fn daemon_log(extra: &[&str], env: &[(&str, &str)]) -> String {
    let cluster = common::TestCluster::start().await;
    let git = GitRepo::with_remote().await;
    git.write("apps/web/deploy.yaml", &deployment("web", 1));
    git.commit_and_push("web").await;
    let state = tempfile::tempdir().expect("a directory");
    let log = state.path().join("rollgit.log");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
    cmd.args(["run", "--repo", &git.url(), "--path", "apps/*"])
        .args(extra)
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--state-dir")
        .arg(state.path().join("state"))
        .env_remove("ROLLGIT_LOG")
        .env_remove("NO_COLOR")
        .env("HOME", git.dir.path())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log).expect("a log file"))
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("rollgit runs");
    let client = cluster.client().await;
    wait_crd(&client, "applications.rollgit.dev").await;
    let apps: Api<kube::api::DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &rollgit::record::status::application_resource(),
    );
    wait_for(&apps, "web", "web applied", |o| {
        o.is_some_and(|o| o.data["status"]["lastAppliedCommit"].is_string())
    })
    .await;
    let _ = child.start_kill();
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
    std::fs::read_to_string(&log).expect("the log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_log_shows_each_sync_without_colors_and_json_logs_parse() {
    let text = daemon_log(&[], &[]).await;
    assert!(
        text.contains("new commit") && text.contains("applied"),
        "info lines for the sync by default:\n{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "no ANSI codes when stderr is a file:\n{text}"
    );
    assert!(
        !text.contains("DEBUG"),
        "debug lines only with ROLLGIT_LOG:\n{text}"
    );

    let text = daemon_log(&["--log-format", "json"], &[]).await;
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "some log lines");
    let mut messages = Vec::new();
    for l in &lines {
        let v: Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{l}");
        messages.push(v["fields"]["message"].as_str().unwrap_or("").to_string());
    }
    assert!(messages.iter().any(|m| m == "new commit"), "{messages:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_suspended_app_is_neither_synced_nor_corrected_until_resumed() {
    let w = World::start(GitRepo::with_remote().await).await;
    w.git
        .write("apps/alpha/deploy.yaml", &deployment("alpha", 2));
    w.git.write("apps/beta/deploy.yaml", &deployment("beta", 2));
    let c1 = w.git.commit_and_push("alpha and beta").await;
    w.trigger();
    w.wait_applied("alpha", &c1).await;
    w.wait_applied("beta", &c1).await;
    let cwd = tempfile::tempdir().expect("a directory");

    let out = rollgit_in(&w, cwd.path(), &["suspend", "alpha"]).await;
    assert_eq!(out.0, Some(0), "{}{}", out.1, out.2);
    assert!(out.1.contains("app alpha suspended"), "{}", out.1);
    let (header, row) = w.kubectl_app_row("alpha").await;
    let phase = header.iter().position(|h| h == "PHASE").expect("PHASE");
    assert_eq!(row[phase], "suspended", "kubectl get app shows it");
    let doc = json(&rollgit_in(&w, cwd.path(), &["status", "alpha", "-o", "json"]).await);
    assert_eq!(doc["apps"][0]["suspended"], true);
    assert_eq!(doc["apps"][0]["phase"], "suspended");

    // Drift: alpha's is left alone, beta's is corrected (its event comes after alpha's).
    w.cluster
        .kubectl_ok(&["scale", "deploy", "alpha", "--replicas=5"])
        .await;
    w.cluster
        .kubectl_ok(&["scale", "deploy", "beta", "--replicas=5"])
        .await;
    let deployments: Api<Deployment> = w.api();
    let replicas = |d: Option<&Deployment>| d.and_then(|d| d.spec.as_ref()?.replicas);
    wait_for(&deployments, "beta", "beta corrected", |d| {
        replicas(d) == Some(2)
    })
    .await;
    let alpha = deployments.get("alpha").await.expect("alpha");
    assert_eq!(
        replicas(Some(&alpha)),
        Some(5),
        "a suspended app's drift stays"
    );

    // A new commit: applied to beta, not to alpha.
    w.git
        .write("apps/alpha/deploy.yaml", &deployment("alpha", 3));
    w.git.write("apps/beta/deploy.yaml", &deployment("beta", 3));
    let c2 = w.git.commit_and_push("three each").await;
    w.trigger();
    w.wait_applied("beta", &c2).await;
    let alpha = deployments.get("alpha").await.expect("alpha");
    assert_eq!(
        replicas(Some(&alpha)),
        Some(5),
        "not applied while suspended"
    );
    let status = w.apps().get("alpha").await.expect("alpha's status");
    assert_eq!(status.data["status"]["lastAppliedCommit"], c1.as_str());

    let out = rollgit_in(&w, cwd.path(), &["sync", "alpha", "--timeout", "30s"]).await;
    assert_eq!(out.0, Some(1), "{}{}", out.1, out.2);
    assert!(out.2.contains("suspended"), "{}", out.2);

    let out = rollgit_in(&w, cwd.path(), &["resume", "alpha"]).await;
    assert_eq!(out.0, Some(0), "{}{}", out.1, out.2);
    assert!(
        out.1.contains(&format!("synced at {}", &c2[..12])),
        "{}",
        out.1
    );
    wait_for(&deployments, "alpha", "alpha at Git's 3 replicas", |d| {
        replicas(d) == Some(3)
    })
    .await;
    let (_, row) = w.kubectl_app_row("alpha").await;
    assert_eq!(row[phase], "running");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_namespace_creates_a_missing_target_namespace_when_the_repository_opts_in() {
    let w = World::start_configured(
        GitRepo::with_remote().await,
        |_| {},
        |r| {
            r.sync = Some(rollgit::config::RawSync {
                create_namespace: Some(true),
                ..Default::default()
            })
        },
    )
    .await;
    w.git.write(
        "apps/team/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-x\ndata: {a: b}\n",
    );
    let c1 = w.git.commit_and_push("team-x settings").await;
    w.trigger();
    w.wait_applied("team", &c1).await;
    let ns: Api<Namespace> = Api::all(w.client.clone());
    let created = ns.get("team-x").await.expect("team-x was created");
    let annotations = created.metadata.annotations.unwrap_or_default();
    assert_eq!(
        annotations
            .get("rollgit.dev/created-for")
            .map(String::as_str),
        Some("team")
    );
    w.cluster
        .kubectl_ok(&["get", "configmap", "settings", "-n", "team-x"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_create_namespace_a_missing_namespace_is_refused() {
    let w = World::start(GitRepo::with_remote().await).await;
    w.git.write(
        "apps/team/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: settings\n  namespace: team-y\ndata: {a: b}\n",
    );
    let c1 = w.git.commit_and_push("team-y settings").await;
    w.trigger();
    let status = w
        .wait_app("team", "team refused", |s| {
            s["lastAttemptedCommit"] == c1.as_str() && s["phase"] == "failed"
        })
        .await;
    assert!(
        status["message"].as_str().unwrap_or("").contains("team-y"),
        "{status:#}"
    );
    let ns: Api<Namespace> = Api::all(w.client.clone());
    assert!(ns.get_opt("team-y").await.expect("get").is_none());
}

/// The metrics once `ready` holds of them, bounded by [`WAIT`]: a controller counts a finished
/// rollout right after it recorded the state a test waits for, so the test may look a moment
/// early.
async fn metrics_when(w: &World, what: &str, ready: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let text = w.metrics.encode();
        if ready(&text) {
            return text;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {WAIT:?}\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_failed_syncs_render_errors_once_apps_rollouts_and_rollbacks() {
    let w = World::start_with(GitRepo::with_remote().await, |c| {
        c.simulation.fail_images = vec!["*:bad".into()];
    })
    .await;
    w.git.write("apps/bad/x.yaml", "kind: [\n");
    let bad = w.git.commit_and_push("a bad file").await;
    w.trigger();
    w.wait_app("bad", "bad rejected", |s| {
        s["lastAttemptedCommit"] == bad.as_str() && s["phase"] == "failed"
    })
    .await;
    // The same commit again (a `rollgit sync` re-renders it): still one render error.
    let cwd = tempfile::tempdir().expect("a directory");
    let out = rollgit_in(&w, cwd.path(), &["sync", "bad", "--timeout", "30s"]).await;
    assert_eq!(out.0, Some(1), "{}{}", out.1, out.2);
    let text = w.metrics.encode();
    assert_eq!(
        metric(&text, r#"rollgit_render_errors_total{repo="deploy"}"#),
        Some(1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            r#"rollgit_syncs_total{repo="deploy",result="error"}"#
        )
        .is_some_and(|n| n >= 1.0),
        "a rejected commit is a failed sync: {text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"rollgit_app_info{app="bad",namespace="default",phase="failed",health="Healthy"}"#
        ),
        Some(1.0),
        "{text}"
    );

    w.git.write(
        "apps/shop/app.yaml",
        &webservice_with_rollout("nginx:1.27", "30s"),
    );
    let c1 = w.git.commit_and_push("shop").await;
    w.trigger();
    wait_succeeded(&w, "web", "web-v1", 4).await;
    w.wait_applied("shop", &c1).await;
    let text = metrics_when(&w, "the rollout counted", |t| {
        t.contains(r#"rollgit_rollouts_total{kind="batch",namespace="default",rollout="web",result="succeeded"}"#)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            r#"rollgit_rollouts_total{kind="batch",namespace="default",rollout="web",result="succeeded"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        metric(
            &text,
            r#"rollgit_rollout_step_duration_seconds_count{kind="batch"}"#
        )
        .is_some_and(|n| n >= 2.0),
        "both batches timed: {text}"
    );

    w.git.write(
        "apps/shop/app.yaml",
        &webservice_with_rollout("nginx:bad", "30s"),
    );
    w.git.commit_and_push("shop: a bad image").await;
    w.trigger();
    pass_the_deadline(&w, "web", "web-v2", Duration::from_secs(30)).await;
    // The record stage writes `status.record` after it was told of the rollback.
    wait_rollout(&w, "web", "the rollback of web-v2 recorded", |s| {
        s["failedRevision"] == "web-v2" && s["record"].is_object()
    })
    .await;
    let text = metrics_when(&w, "the failed rollout counted", |t| {
        t.contains(r#"rollgit_rollouts_total{kind="batch",namespace="default",rollout="web",result="failed"}"#)
    })
    .await;
    assert_eq!(
        metric(
            &text,
            r#"rollgit_rollouts_total{kind="batch",namespace="default",rollout="web",result="failed"}"#
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        metric(
            &text,
            r#"rollgit_rollbacks_total{kind="batch",namespace="default",rollout="web"}"#
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kustomize_is_refused_by_name_and_an_unknown_custom_resource_is_never_healthy() {
    let w = World::start(GitRepo::with_remote().await).await;
    w.git.write(
        "apps/kust/kustomization.yaml",
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- deploy.yaml\n",
    );
    w.git.write("apps/kust/deploy.yaml", &deployment("kust", 1));
    w.git.write(
        "apps/gizmo/crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, listKind: WidgetList}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        x-kubernetes-preserve-unknown-fields: true
",
    );
    w.git.write(
        "apps/gizmo/widget.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: gizmo\nspec: {size: 3}\n",
    );
    let c1 = w.git.commit_and_push("kustomize and a widget").await;
    w.trigger();
    let kust = w
        .wait_app("kust", "kust rejected", |s| {
            s["lastAttemptedCommit"] == c1.as_str() && s["phase"] == "failed"
        })
        .await;
    let first = kust["lastError"][0].as_str().unwrap_or("");
    assert!(
        first.starts_with("apps/kust/kustomization.yaml:1: ")
            && first.contains("Kustomize is not rendered by rollgit yet"),
        "{kust:#}"
    );
    assert!(!first.contains("metadata.name"), "{first}");
    let (header, row) = w.kubectl_app_row("kust").await;
    let status_col = header.iter().position(|h| h == "STATUS").expect("STATUS");
    assert!(row[status_col..].join(" ").contains("Kustomize"), "{row:?}");

    let gizmo = w
        .wait_app("gizmo", "gizmo applied", |s| {
            s["lastAppliedCommit"] == c1.as_str() && s["phase"] == "running"
        })
        .await;
    assert_eq!(gizmo["healthy"], false, "{gizmo:#}");
    let ready = gizmo["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(ready["status"], "Unknown", "{gizmo:#}");
    assert!(
        gizmo["message"]
            .as_str()
            .unwrap_or("")
            .contains("no health check for Widget.example.com"),
        "{gizmo:#}"
    );
    let (header, row) = w.kubectl_app_row("gizmo").await;
    let healthy = header.iter().position(|h| h == "HEALTHY").expect("HEALTHY");
    assert_eq!(row[healthy], "false");
}
