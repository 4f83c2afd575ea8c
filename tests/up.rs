//! `rollgit up` as a new user meets it (issue 12, item 7): the binary, started in an empty
//! directory; the commands it prints are run as printed (the webhook `curl` line, the failing
//! commit, `git log`, `rollgit history` with no flags), and the README shows its output.

mod common;

use common::WAIT;
use kube::api::{Api, DynamicObject};
use kube::runtime::wait::await_condition;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, BufReader};

/// How long the failing rollout may take: the demo's 20 s progress deadline, the rollback and
/// the revert, on a loaded machine.
const FAIL_WAIT: Duration = Duration::from_secs(150);

/// Runs one printed command line with `sh` in `cwd` (`rollgit` is the built binary).
async fn sh(cwd: &Path, home: &Path, kubeconfig: &Path, line: &str) -> (bool, String, String) {
    let bin = PathBuf::from(env!("CARGO_BIN_EXE_rollgit"));
    let path = format!(
        "{}:{}",
        bin.parent().expect("the binary's directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = tokio::time::timeout(
        WAIT,
        tokio::process::Command::new("sh")
            .arg("-c")
            .arg(line)
            .current_dir(cwd)
            .env("PATH", path)
            .env("HOME", home)
            .env("KUBECONFIG", kubeconfig)
            .env("GIT_AUTHOR_NAME", "New User")
            .env("GIT_AUTHOR_EMAIL", "new@example.com")
            .env("GIT_COMMITTER_NAME", "New User")
            .env("GIT_COMMITTER_EMAIL", "new@example.com")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap_or_else(|_| panic!("{line}: not done within {WAIT:?}"))
    .expect("sh runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A printed command without its trailing `# comment`.
fn command(line: &str) -> String {
    let l = line.trim();
    match l.find("   #") {
        Some(i) => l[..i].trim().to_string(),
        None => l.to_string(),
    }
}

/// The lines of the paragraph that starts with `heading`, up to the blank line.
fn paragraph<'a>(text: &'a str, heading: &str) -> Vec<&'a str> {
    text.lines()
        .skip_while(|l| !l.starts_with(heading))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .collect()
}

/// The README's copy of the output: the fenced block after `<!-- rollgit up output -->`.
fn readme_block() -> String {
    let readme = include_str!("../README.md");
    let start = readme
        .find("<!-- rollgit up output -->")
        .expect("the README shows rollgit up's output");
    let rest = &readme[start..];
    let open = rest.find("```text\n").expect("a fenced block") + "```text\n".len();
    let close = rest[open..].find("```").expect("the block ends");
    rest[open..open + close].to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn up_prints_steps_that_work_as_printed_and_the_readme_shows_them() {
    let dir = tempfile::tempdir().expect("a directory");
    let home = dir.path().join("home");
    std::fs::create_dir_all(&home).expect("home");
    let api_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a port")
        .local_addr()
        .expect("an address")
        .port();
    let api = format!("127.0.0.1:{api_port}");
    let stderr = std::fs::File::create(dir.path().join("up.log")).expect("a log file");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .args(["up", "--listen", "127.0.0.1:0", "--api-listen", &api])
        .current_dir(dir.path())
        .env("HOME", &home)
        .env_remove("ROLLGIT_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("rollgit up starts");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut text = String::new();
    let read = tokio::time::timeout(WAIT, async {
        while let Ok(Some(l)) = lines.next_line().await {
            text.push_str(&l);
            text.push('\n');
            if l.contains("Ctrl-C stops.") {
                return;
            }
        }
    })
    .await;
    assert!(
        read.is_ok(),
        "rollgit up printed its steps within {WAIT:?}:\n{text}"
    );
    let state = std::fs::canonicalize(dir.path().join(".rollgit")).expect("the state directory");
    let kubeconfig = state.join("kubeconfig");
    let repo = state.join("demo-repo");
    let secret = std::fs::read_to_string(state.join("webhook-secret")).expect("the secret");
    assert!(
        text.contains(&format!("export KUBECONFIG={}", kubeconfig.display())),
        "{text}"
    );
    assert!(text.contains(&format!("cd {}", repo.display())), "{text}");

    // The README shows this output, with the user's paths, port and secret as placeholders.
    let cluster_url = text
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("rollgit is up: dev cluster at "))
        .and_then(|l| l.split(',').next())
        .expect("the first line names the cluster")
        .to_string();
    let shown = text
        .replace(&cluster_url, "http://127.0.0.1:6443")
        .replace(&state.display().to_string(), "/home/you/.rollgit")
        .replace(secret.trim(), "SECRET")
        .replace(&api, "127.0.0.1:9090");
    assert_eq!(
        readme_block(),
        shown,
        "the README shows what rollgit up prints"
    );

    // The daemon applied the demo (its HTTP server is up by then).
    let client = kube::Client::try_from(
        kube::Config::from_custom_kubeconfig(
            kube::config::Kubeconfig::read_from(&kubeconfig).expect("the kubeconfig"),
            &Default::default(),
        )
        .await
        .expect("a client configuration"),
    )
    .expect("a client");
    {
        use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
        let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
        let established = await_condition(
            crds,
            "applications.rollgit.dev",
            kube::runtime::wait::conditions::is_crd_established(),
        );
        tokio::time::timeout(WAIT, established)
            .await
            .expect("rollgit installed its CRDs")
            .expect("watching the CRD");
    }
    let apps: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &rollgit::record::status::application_resource(),
    );
    let applied = await_condition(apps, "express-server", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| o.data["status"]["phase"] == "running")
    });
    tokio::time::timeout(WAIT, applied)
        .await
        .expect("the demo is applied")
        .expect("watching the app");

    let curl = text
        .lines()
        .find(|l| l.trim_start().starts_with("curl "))
        .expect("a curl line");
    let (ok, out, err) = sh(dir.path(), &home, &kubeconfig, &command(curl)).await;
    assert!(ok, "{curl}: {err}");
    assert_eq!(out, "accepted: fetch triggered\n", "{curl}");

    // Failure → rollback → revert in Git → history, as printed.
    let steps = paragraph(&text, "Fail a rollout");
    assert_eq!(steps.len(), 5, "{steps:?}");
    for step in &steps[..2] {
        let (ok, out, err) = sh(&repo, &home, &kubeconfig, &command(step)).await;
        assert!(ok, "{step}: {out}{err}");
    }
    let rollouts: Api<DynamicObject> = Api::namespaced_with(
        client,
        "default",
        &kube::core::ApiResource::erase::<rollgit::k8s::Rollout>(&()),
    );
    let reverted = await_condition(rollouts, "express-server", |o: Option<&DynamicObject>| {
        o.is_some_and(|o| o.data["status"]["record"]["commit"].is_string())
    });
    tokio::time::timeout(FAIL_WAIT, reverted)
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the failed rollout was reverted within {FAIL_WAIT:?}; log:\n{}",
                std::fs::read_to_string(dir.path().join("up.log")).unwrap_or_default()
            )
        })
        .expect("watching the rollout");
    let (ok, log, err) = sh(&repo, &home, &kubeconfig, &command(steps[3])).await;
    assert!(ok, "{}: {err}", steps[3]);
    assert!(
        log.lines()
            .next()
            .is_some_and(|l| l.contains("express-server")),
        "rollgit's revert is on top:\n{log}"
    );
    let (ok, history, err) = sh(&repo, &home, &kubeconfig, &command(steps[4])).await;
    assert!(ok, "{}: {err}", steps[4]);
    assert!(history.contains("revert of"), "{history}");
    let (_, untracked, _) = sh(&repo, &home, &kubeconfig, "git status --porcelain").await;
    assert_eq!(
        untracked, "",
        "the commands leave nothing in the demo repository"
    );
    let _ = child.start_kill();
    let _ = tokio::time::timeout(WAIT, child.wait()).await;
}
