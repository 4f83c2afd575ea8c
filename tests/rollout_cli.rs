//! `rollgit get rollouts` and `rollgit rollout status` as a user runs them: the built binary
//! against a dev cluster holding Rollouts whose status the test patches to given states (no
//! rollout controller runs, so only the test changes them). Checks the table against the real
//! kubectl's, the per-batch output, the exit codes 0/1/3, and that `--watch` returns once the
//! status turns to rolloutSucceed. Every wait is bounded.

mod common;

use common::{TestCluster, WAIT, table_columns};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, Patch, PatchParams, PostParams};
use rollgit::k8s::Rollout;
use rollgit::k8s::crds::{BatchSpec, PlanSpec, RolloutSpec, WorkloadRef};
use rollgit::rollout::status_of;
use rollgit_core::batch::{Condition, State};
use rollgit_core::intstr::IntOrString;
use rollgit_core::kubevela::{BatchRollingState, RollingState};
use serde_json::json;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

/// What a rollgit run produced.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn command(tc: &TestCluster, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
    cmd.args(args)
        .arg("--kubeconfig")
        .arg(&tc.kubeconfig)
        .env_remove("KUBECONFIG")
        .env("HOME", tc.dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true);
    cmd
}

/// Runs the rollgit binary with `args` and `--kubeconfig`, bounded by [`WAIT`].
async fn rollgit(tc: &TestCluster, args: &[&str]) -> Out {
    let out = tokio::time::timeout(WAIT, command(tc, args).output())
        .await
        .unwrap_or_else(|_| panic!("rollgit {args:?} did not finish within {WAIT:?}"))
        .expect("rollgit runs");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn spec(component: &str, batches: &[i64], partition: Option<i64>, size: i64) -> RolloutSpec {
    RolloutSpec {
        app: "demo".into(),
        application: Some("demo".into()),
        component: component.into(),
        workload: WorkloadRef {
            api_version: "apps/v1".into(),
            kind: "Deployment".into(),
        },
        target_revision: format!("{component}-v2"),
        source_revision: None,
        target_size: size,
        rollout_plan: PlanSpec {
            rollout_batches: batches
                .iter()
                .map(|b| BatchSpec {
                    replicas: IntOrString::Int(*b),
                })
                .collect(),
            batch_partition: partition,
            ..Default::default()
        },
        progress_deadline_seconds: 600,
        commit: Some("0123456789abcdef".into()),
        ..Default::default()
    }
}

fn api(tc_client: &kube::Client, ns: &str) -> Api<Rollout> {
    Api::namespaced(tc_client.clone(), ns)
}

/// Creates (server-side applies) the Rollout of `spec` in `ns`; returns its generation.
async fn create(client: &kube::Client, ns: &str, spec: &RolloutSpec) -> i64 {
    let o = api(client, ns)
        .patch(
            &spec.component,
            &PatchParams::apply("rollgit-test").force(),
            &Patch::Apply(&json!({
                "apiVersion": "rollgit.dev/v1alpha1",
                "kind": "Rollout",
                "metadata": {"name": spec.component, "namespace": ns,
                    "labels": {"rollgit.dev/app": spec.app}},
                "spec": spec,
            })),
        )
        .await
        .expect("apply the Rollout");
    o.metadata.generation.expect("a generation")
}

/// Writes `state` to the Rollout's status subresource, describing `generation`.
async fn set_status(client: &kube::Client, ns: &str, name: &str, state: &State, generation: i64) {
    api(client, ns)
        .patch_status(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({ "status": status_of(state, generation) })),
        )
        .await
        .expect("patch the Rollout's status");
}

fn held(component: &str) -> State {
    State {
        rolling_state: RollingState::RollingInBatches,
        batch_rolling_state: BatchRollingState::BatchReady,
        current_batch: 0,
        upgraded_replicas: 2,
        upgraded_ready_replicas: 2,
        rollout_target_size: 5,
        target_revision: Some(format!("{component}-v2")),
        source_revision: Some(format!("{component}-v1")),
        stable_revision: Some(format!("{component}-v1")),
        ..State::default()
    }
}

fn succeeded(component: &str) -> State {
    State {
        rolling_state: RollingState::RolloutSucceed,
        batch_rolling_state: BatchRollingState::BatchReady,
        current_batch: 1,
        upgraded_replicas: 5,
        upgraded_ready_replicas: 5,
        stable_revision: Some(format!("{component}-v2")),
        ..held(component)
    }
}

const FAILURE: &str =
    "batch 1 of 2 (express-server-v2) was not ready within 600s: 0 of 2 pods ready";

fn failed(component: &str) -> State {
    State {
        rolling_state: RollingState::RolloutFailed,
        batch_rolling_state: BatchRollingState::BatchVerifyFailed,
        current_batch: 0,
        upgraded_replicas: 2,
        upgraded_ready_replicas: 0,
        failed_revision: Some(format!("{component}-v2")),
        conditions: vec![Condition {
            kind: "RolloutFailed".into(),
            status: false,
            reason: "ProgressDeadlineExceeded".into(),
            message: FAILURE.into(),
            at: 1_700_000_000,
        }],
        ..held(component)
    }
}

/// A dev cluster (API only: no controller changes a Rollout) with rollgit's CRDs.
async fn cluster() -> (TestCluster, kube::Client) {
    let tc = TestCluster::start_api_only().await;
    let client = tc.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("rollgit's CRDs install");
    (tc, client)
}

/// Each line without its last cell (AGE), trailing spaces trimmed: the layout before AGE.
fn without_age(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            let l = l.trim_end();
            l[..l.rfind(' ').unwrap_or(0)].trim_end().to_string()
        })
        .collect()
}

fn is_age(s: &str) -> bool {
    s.len() >= 2 && s.ends_with('s') && s[..s.len() - 1].chars().all(|c| c.is_ascii_digit())
}

#[tokio::test]
async fn get_rollouts_prints_the_columns_kubectl_prints() {
    let (tc, client) = cluster().await;
    let g = create(
        &client,
        "default",
        &spec("express-server", &[2, 3], Some(0), 5),
    )
    .await;
    set_status(
        &client,
        "default",
        "express-server",
        &held("express-server"),
        g,
    )
    .await;

    let out = rollgit(&tc, &["get", "rollouts"]).await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let rows = table_columns(&out.stdout);
    assert_eq!(
        rows[0],
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
    assert_eq!(rows.len(), 2, "{}", out.stdout);
    // Seed 000's `kubectl get rollout` row after the first batch, held by batchPartition 0.
    assert_eq!(
        rows[1][..6],
        [
            "express-server",
            "5",
            "2",
            "2",
            "batchReady",
            "rollingInBatches"
        ]
    );
    assert!(is_age(&rows[1][6]), "AGE {:?}", rows[1][6]);
    // Laid out exactly as the real kubectl lays out the CRD's printer columns.
    let kubectl = tc.kubectl_ok(&["get", "rollouts"]).await;
    assert_eq!(without_age(&out.stdout), without_age(&kubectl));
    // `rollout` is accepted too.
    let single = rollgit(&tc, &["get", "rollout"]).await;
    assert_eq!(without_age(&single.stdout), without_age(&out.stdout));

    // Another namespace: -n and -A.
    Api::<Namespace>::all(client.clone())
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "team"}})).expect("namespace"),
        )
        .await
        .expect("create namespace team");
    let g = create(&client, "team", &spec("worker", &[], None, 3)).await;
    let mut done = succeeded("worker");
    done.rollout_target_size = 3;
    done.upgraded_replicas = 3;
    done.upgraded_ready_replicas = 3;
    set_status(&client, "team", "worker", &done, g).await;

    let out = rollgit(&tc, &["get", "rollouts", "-n", "team"]).await;
    let rows = table_columns(&out.stdout);
    assert_eq!(
        rows[1][..6],
        ["worker", "3", "3", "3", "batchReady", "rolloutSucceed"]
    );
    let out = rollgit(&tc, &["get", "rollouts", "-A"]).await;
    assert_eq!(out.code, Some(0), "stderr: {}", out.stderr);
    let rows = table_columns(&out.stdout);
    assert_eq!(rows[0][..2], ["NAMESPACE", "NAME"]);
    let names: Vec<(&str, &str)> = rows[1..]
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    assert_eq!(names, [("default", "express-server"), ("team", "worker")]);
    let kubectl = tc.kubectl_ok(&["get", "rollouts", "-A"]).await;
    assert_eq!(without_age(&out.stdout), without_age(&kubectl));

    let out = rollgit(&tc, &["get", "rollouts", "-n", "empty"]).await;
    assert_eq!(out.code, Some(0));
    assert_eq!(out.stdout, "");
    assert!(
        out.stderr
            .contains("No resources found in empty namespace."),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn rollout_status_prints_batches_and_exits_like_kubectl() {
    let (tc, client) = cluster().await;
    let g = create(
        &client,
        "default",
        &spec("express-server", &[2, 3], Some(0), 5),
    )
    .await;
    let w = create(&client, "default", &spec("worker", &[], None, 5)).await;
    set_status(&client, "default", "worker", &succeeded("worker"), w).await;

    // Held by batchPartition 0: not finished, exit 3.
    set_status(
        &client,
        "default",
        "express-server",
        &held("express-server"),
        g,
    )
    .await;
    let out = rollgit(&tc, &["rollout", "status", "demo"]).await;
    assert_eq!(
        out.code,
        Some(3),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert_eq!(
        out.stdout,
        "express-server: express-server-v1 → express-server-v2, 5 replicas, rollingInBatches (batchReady)
  batch 1/2  [##########]  2/2 ready   done
  batch 2/2  [----------]  0/5 ready   held by batchPartition 0
worker: worker-v1 → worker-v2, 5 replicas, rolloutSucceed
  batch 1/1  [##########]  5/5 ready   done
"
    );
    assert!(
        out.stderr
            .contains("rollout express-server has not finished"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains('\u{1b}'),
        "no escape codes off a terminal"
    );

    // One component: the worker alone, succeeded: exit 0.
    let out = rollgit(&tc, &["rollout", "status", "demo", "worker"]).await;
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(out.stdout.starts_with("worker: "), "{}", out.stdout);
    assert!(!out.stdout.contains("express-server"), "{}", out.stdout);

    // Both succeeded: exit 0.
    set_status(
        &client,
        "default",
        "express-server",
        &succeeded("express-server"),
        g,
    )
    .await;
    let out = rollgit(&tc, &["rollout", "status", "demo", "-n", "default"]).await;
    assert_eq!(
        out.code,
        Some(0),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains(
            "express-server: express-server-v1 → express-server-v2, 5 replicas, rolloutSucceed\n  batch 1/2  [##########]  2/2 ready   done\n  batch 2/2  [##########]  5/5 ready   done\n"
        ),
        "{}",
        out.stdout
    );

    // A new spec the controller has not observed yet: the succeeded status is stale, exit 3.
    let mut bigger = spec("express-server", &[2, 3], Some(0), 6);
    bigger.commit = Some("fedcba9876543210".into());
    let g2 = create(&client, "default", &bigger).await;
    assert_eq!(g2, g + 1, "a spec change bumps the generation");
    let out = rollgit(&tc, &["rollout", "status", "demo", "express-server"]).await;
    assert_eq!(
        out.code,
        Some(3),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout
            .contains(&format!("observe generation {g2} (status describes {g})")),
        "{}",
        out.stdout
    );

    // Failed: exit 1, with the RolloutFailed condition's message.
    let mut f = failed("express-server");
    f.rollout_target_size = 6;
    set_status(&client, "default", "express-server", &f, g2).await;
    let out = rollgit(&tc, &["rollout", "status", "demo"]).await;
    assert_eq!(
        out.code,
        Some(1),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(
        out.stdout.contains(&format!(
            "  batch 1/2  [----------]  0/2 ready   failed\n  batch 2/2  [----------]  0/6 ready   not started\n  failed (ProgressDeadlineExceeded): {FAILURE}\n"
        )),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains(&format!(
            "error: rollout express-server failed (ProgressDeadlineExceeded): {FAILURE}"
        )),
        "{}",
        out.stderr
    );

    // No rollout of the app (or of the component): exit 1 with a clear message.
    let out = rollgit(&tc, &["rollout", "status", "nope"]).await;
    assert_eq!(out.code, Some(1));
    assert!(
        out.stderr
            .contains("no rollout of app \"nope\" in namespace default"),
        "{}",
        out.stderr
    );
    let out = rollgit(&tc, &["rollout", "status", "demo", "db"]).await;
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("component \"db\""), "{}", out.stderr);
}

#[tokio::test]
async fn rollout_status_watch_returns_when_the_rollout_succeeds() {
    let (tc, client) = cluster().await;
    let g = create(
        &client,
        "default",
        &spec("express-server", &[2, 3], Some(0), 5),
    )
    .await;
    set_status(
        &client,
        "default",
        "express-server",
        &held("express-server"),
        g,
    )
    .await;

    // Bounded watch that cannot finish: exit 3, saying it timed out.
    let out = rollgit(
        &tc,
        &["rollout", "status", "demo", "--watch", "--timeout", "2s"],
    )
    .await;
    assert_eq!(
        out.code,
        Some(3),
        "stdout: {}\nstderr: {}",
        out.stdout,
        out.stderr
    );
    assert!(out.stderr.contains("timed out after 2s"), "{}", out.stderr);

    // A watch that is running when the status turns to rolloutSucceed exits 0.
    let mut child = command(
        &tc,
        &["rollout", "status", "demo", "-w", "--timeout", "60s"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .expect("start rollgit rollout status --watch");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    // Its first drawing: the held rollout.
    tokio::time::timeout(WAIT, async {
        while let Some(line) = stdout.next_line().await.expect("read stdout") {
            let held_line = line.contains("held by batchPartition 0");
            seen.push(line);
            if held_line {
                return;
            }
        }
        panic!("rollgit ended before drawing the held rollout: {seen:?}");
    })
    .await
    .expect("the first drawing within the bound");
    assert_eq!(
        child.try_wait().expect("poll the watch"),
        None,
        "--watch waits while the rollout is held"
    );

    set_status(
        &client,
        "default",
        "express-server",
        &succeeded("express-server"),
        g,
    )
    .await;
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("--watch exits within the bound once the rollout succeeded")
        .expect("wait for rollgit");
    while let Some(line) = stdout.next_line().await.expect("read stdout") {
        seen.push(line);
    }
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        e.read_to_string(&mut stderr).await.expect("read stderr");
    }
    assert_eq!(status.code(), Some(0), "stdout: {seen:?}\nstderr: {stderr}");
    assert!(
        seen.iter().any(|l| l
            == "express-server: express-server-v1 → express-server-v2, 5 replicas, rolloutSucceed"),
        "the watch redrew the succeeded rollout: {seen:?}"
    );
    assert_eq!(
        seen.last().map(String::as_str),
        Some("  batch 2/2  [##########]  5/5 ready   done")
    );
}
