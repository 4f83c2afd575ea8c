//! `rollgit rollback` and `rollgit history` as a user runs them: the built binary against a
//! real bare remote (made with the `git` command) and a dev cluster where the daemon, started
//! in-process, follows the remote. Two images are rolled out; a manual rollback to the first
//! one's revision is written as one revert commit that the daemon then rolls out in batches.
//! Every wait is bounded (watches under [`WAIT`]).

mod common;

use common::WAIT;
use common::rollouts::{
    remote_file, remote_log, wait_rollout, wait_succeeded, webservice_with_rollout,
};
use common::world::{GitRepo, World};
use std::process::Stdio;

/// What a rollgit run produced.
struct Out {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl std::fmt::Display for Out {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs the rollgit binary with `args`, bounded by [`WAIT`].
async fn run(w: &World, args: &[&std::ffi::OsStr]) -> Out {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
    cmd.args(args)
        .env_remove("KUBECONFIG")
        .env("HOME", w.git.dir.path())
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("rollgit {args:?} did not finish within {WAIT:?}"))
        .expect("rollgit runs");
    Out {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs the rollgit binary with `args` plus the repository, state and cluster flags.
async fn rollgit(w: &World, state: &std::path::Path, args: &[&str]) -> Out {
    let url = w.git.url();
    let mut all: Vec<&std::ffi::OsStr> = args.iter().map(std::ffi::OsStr::new).collect();
    all.extend([
        "--repo".as_ref(),
        url.as_ref(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "--kubeconfig".as_ref(),
        w.cluster.kubeconfig.as_os_str(),
    ]);
    run(w, &all).await
}

fn short(sha: &str) -> &str {
    &sha[..12]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_rollback_is_one_revert_commit_the_daemon_rolls_out() {
    let git = GitRepo::with_remote().await;
    let v1 = webservice_with_rollout("registry.example/web:1", "30s");
    git.write("apps/shop/app.yaml", &v1);
    let c1 = git.commit_and_push("web 1").await;
    let w = World::start(git).await;
    wait_succeeded(&w, "web", "web-v1", 4).await;
    w.git.write(
        "apps/shop/app.yaml",
        &webservice_with_rollout("registry.example/web:2", "30s"),
    );
    let c2 = w.git.commit_and_push("web 2").await;
    w.trigger();
    wait_succeeded(&w, "web", "web-v2", 4).await;
    w.wait_applied("shop", &c2).await;
    let state = tempfile::tempdir().expect("a state directory for the CLI");
    let state = state.path();

    // An unknown revision: exit 1, naming the revisions there are.
    let out = rollgit(&w, state, &["rollback", "shop", "--to", "web-v9"]).await;
    assert_eq!(out.code, Some(1), "{out}");
    assert!(
        out.stderr.contains("\"web-v9\"") && out.stderr.contains("known revisions: web-v1, web-v2"),
        "{out}"
    );

    // A dry run shows the diff and the commit it would revert, and pushes nothing.
    let out = rollgit(
        &w,
        state,
        &["rollback", "shop", "--to", "web-v1", "--dry-run"],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout
            .contains("-        image: registry.example/web:2\n")
            && out
                .stdout
                .contains("+        image: registry.example/web:1\n"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains(&format!("Would roll back to {} (web-v1)", short(&c1)))
            && out.stdout.contains(&format!("  {} web 2\n", short(&c2))),
        "{out}"
    );
    assert_eq!(
        remote_log(&w.git, "%H").await,
        c2,
        "a dry run pushes nothing"
    );

    // The rollback: one revert commit on top of the head, with the trailers.
    let out = rollgit(&w, state, &["rollback", "shop", "--to", "web-v1"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    let rollback = remote_log(&w.git, "%H").await;
    assert_ne!(rollback, c2);
    assert!(
        out.stdout.contains(&format!("Pushed {}", short(&rollback))),
        "{out}"
    );
    assert_eq!(remote_log(&w.git, "%P").await, c2, "a fast-forward");
    let message = remote_log(&w.git, "%B").await;
    assert!(
        message.starts_with(&format!("Rollback shop to {} (web-v1)\n", short(&c1))),
        "{message}"
    );
    for trailer in [
        format!("Reverts: {c2}"),
        "Rollgit-App: shop".into(),
        "Rollgit-Rollback: manual".into(),
    ] {
        assert!(message.contains(&trailer), "{trailer} in {message}");
    }
    assert_eq!(
        remote_log(&w.git, "%an <%ae>").await,
        "rollgit <rollgit@localhost>"
    );
    assert_eq!(
        remote_file(&w.git, "apps/shop/app.yaml").await,
        v1.trim_end()
    );

    // The daemon applies it like any commit: the rollout goes back to web-v1, in batches.
    w.trigger();
    wait_rollout(&w, "web", "rolling back to web-v1", |s| {
        s["targetRevision"] == "web-v1"
    })
    .await;
    let s = wait_succeeded(&w, "web", "web-v1", 4).await;
    assert_eq!(s["stableRevision"], "web-v1", "{s}");
    assert_eq!(s["stableCommit"], rollback.as_str(), "{s}");
    w.wait_applied("shop", &rollback).await;

    // The history: three commits, newest first, with what the cluster did with each.
    let out = rollgit(&w, state, &["history", "shop"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    let out_history = out.stdout.clone();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines[0].starts_with("COMMIT ")
            && lines[0].contains(" DATE ")
            && lines[0].contains(" RESULT ")
            && lines[0].ends_with("SUMMARY"),
        "{out}"
    );
    let rows: Vec<&str> = lines[1..]
        .iter()
        .take_while(|l| !l.is_empty())
        .copied()
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    for (row, sha) in rows.iter().zip([&rollback, &c2, &c1]) {
        assert!(row.starts_with(&format!("{} ", short(sha))), "{row}\n{out}");
        assert!(row.contains("Z   "), "an RFC 3339 UTC date: {row}");
    }
    assert!(
        rows[0].contains("web-v1")
            && rows[0].contains("running; rolled-out web-v1; revert of ")
            && rows[0].contains(&format!("revert of {}", short(&c2)))
            && rows[0].ends_with(&format!("Rollback shop to {} (web-v1)", short(&c1))),
        "{out}"
    );
    assert!(
        rows[1].ends_with("web 2") && !rows[1].contains("running"),
        "{out}"
    );
    assert!(
        rows[2].ends_with("web 1") && rows[2].contains("Test User"),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("rollout web: rolloutSucceed, target web-v1, stable web-v1"),
        "{out}"
    );

    // Asking again: the app's directory already has that content.
    let out = rollgit(&w, state, &["rollback", "shop", "--to", &c1[..7]]).await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.starts_with("Nothing to revert: apps/shop"),
        "{out}"
    );
    assert_eq!(remote_log(&w.git, "%H").await, rollback, "nothing pushed");

    // Without --to, the rollout having succeeded: the state before the app's newest commit
    // made by someone else (rollgit's own rollback commit is never undone that way), which
    // the directory already has.
    let out = rollgit(&w, state, &["rollback", "shop", "--dry-run"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.starts_with(&format!(
            "Nothing to revert: apps/shop already has the content of {} (web-v1) (the state before {}, the app's newest commit not made by rollgit (after it: rollgit's {}))",
            short(&c1),
            short(&c2),
            short(&rollback)
        )),
        "{out}"
    );

    // With the configuration of `rollgit run`: the repository is the one the app's status
    // names, the cluster the configured one.
    let config = state.join("rollgit.yaml");
    std::fs::write(
        &config,
        format!(
            "repos:\n- name: deploy\n  url: {}\n  paths: [\"apps/*\"]\nclusters:\n- kubeconfig: {}\nstateDir: {}\n",
            w.git.url(),
            w.cluster.kubeconfig.display(),
            state.join("from-config").display()
        ),
    )
    .expect("write the configuration");
    let args = [
        "history".as_ref(),
        "shop".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
    ];
    let from_config = run(&w, &args).await;
    assert_eq!(from_config.code, Some(0), "{from_config}");
    assert_eq!(from_config.stdout, out_history, "the same history");
    assert!(
        state.join("from-config/repos").is_dir(),
        "the configured stateDir"
    );
    let args = [
        "history".as_ref(),
        "shop".as_ref(),
        "--config".as_ref(),
        config.as_os_str(),
        "--repo-name".as_ref(),
        "nope".as_ref(),
    ];
    let unknown = run(&w, &args).await;
    assert_eq!(unknown.code, Some(2), "{unknown}");
    assert!(
        unknown
            .stderr
            .contains("no repository named \"nope\" in the configuration (it has: deploy)"),
        "{unknown}"
    );
}
