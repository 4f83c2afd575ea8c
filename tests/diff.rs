//! `rollgit diff` against what the daemon applied (issue 11, item 6): the daemon and `diff`
//! plan through the same stage, so right after a sync of the demo apps `diff` finds nothing
//! for any of them (no phantom workload of a rollout, no revision differing by its owner, no
//! Rollout shown as pruned), and after a commit that changes one field it shows only that
//! field and exits 1. The built binary, a real bare remote, the dev cluster.

mod common;

use common::WAIT;
use common::rollouts::wait_succeeded;
use common::world::{GitRepo, World};
use std::ffi::OsStr;
use std::process::Stdio;

/// What a rollgit run produced.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// `rollgit diff --repo URL --path PATH` against the world's cluster, with its own state dir.
async fn diff(w: &World, path: &str) -> Out {
    let state = tempfile::tempdir().expect("temporary state directory");
    let url = w.git.url();
    let args: Vec<&OsStr> = vec![
        "diff".as_ref(),
        "--repo".as_ref(),
        url.as_ref(),
        "--repo-name".as_ref(),
        w.repo.as_ref(),
        "--path".as_ref(),
        path.as_ref(),
        "--state-dir".as_ref(),
        state.path().as_os_str(),
        "--kubeconfig".as_ref(),
        w.cluster.kubeconfig.as_os_str(),
    ];
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
    cmd.args(&args)
        .env_remove("KUBECONFIG")
        .env("HOME", w.git.dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("rollgit diff {path} did not finish within {WAIT:?}"))
        .expect("rollgit runs");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The demo apps in a bare remote, applied by the daemon, rollouts done.
async fn demo_world() -> World {
    let git = GitRepo::with_remote().await;
    for (path, content) in rollgit::demo::FILES {
        git.write(path, content);
    }
    let commit = git.commit_and_push("demo").await;
    let w = World::start(git).await;
    for app in [
        "guestbook",
        "express-server",
        "queue-worker",
        "cache",
        "echo",
        "canary",
    ] {
        w.wait_applied(app, &commit).await;
    }
    wait_succeeded(&w, "express-server", "express-server-v1", 5).await;
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_finds_nothing_for_any_demo_app_right_after_a_sync() {
    let w = demo_world().await;
    // One row per app of examples-repo: what `diff` plans is what the daemon applied.
    let apps = [
        "apps/guestbook",
        "apps/express-server",
        "apps/worker",
        "apps/cloneset",
        "apps/echo",
        "apps/canary",
    ];
    for path in apps {
        let out = diff(&w, path).await;
        assert_eq!(
            (out.code, out.stdout.as_str()),
            (Some(0), ""),
            "{path}: diff after a sync\n--- stderr\n{}",
            out.stderr
        );
    }
    // And all of them at once, as `rollgit diff --path 'apps/*'`.
    let out = diff(&w, "apps/*").await;
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), ""),
        "{}",
        out.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_shows_only_the_field_a_commit_changed() {
    let w = demo_world().await;
    let path = "apps/guestbook/deployment.yaml";
    let yaml = std::fs::read_to_string(w.git.work.join(path)).expect("read the demo app");
    assert!(yaml.contains("replicas: 3"), "{yaml}");
    w.git
        .write(path, &yaml.replace("replicas: 3", "replicas: 5"));
    // Pushed, not synced: the daemon only fetches when triggered.
    w.git.commit_and_push("guestbook: 5 replicas").await;
    let out = diff(&w, "apps/*").await;
    assert_eq!(out.code, Some(1), "{}\n{}", out.stdout, out.stderr);
    let changed: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| {
            (l.starts_with('+') || l.starts_with('-'))
                && !l.starts_with("+++")
                && !l.starts_with("---")
        })
        .collect();
    assert_eq!(
        changed,
        ["-  replicas: 3", "+  replicas: 5"],
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("--- live/Deployment.apps default/guestbook"),
        "{}",
        out.stdout
    );
    // With no repository flags: the repositories the apps' status objects name (as under
    // `rollgit up`), the same diff.
    let state = tempfile::tempdir().expect("temporary state directory");
    let state = state.path().display().to_string();
    let (code, stdout, stderr) = w.rollgit(&["diff", "--state-dir", &state]).await;
    assert_eq!(
        (code, stdout.as_str()),
        (Some(1), out.stdout.as_str()),
        "{stderr}"
    );
}
