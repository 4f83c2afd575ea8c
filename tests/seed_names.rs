//! Seed names (issue 12, item 1) as a user checks them: an app holding a KubeVela Application
//! is named after it (`kubectl get app rollout-trait-test`, as in seed 000), wherever the file
//! is, the repository root too; plain-YAML apps keep their directory's name; `rollgit history`
//! and `rollgit rollback` work under the Application's name; an app at the repository root has
//! its automatic revert and its bump write-back pushed. The built binary, the dev cluster,
//! kubectl and real git; every wait is bounded ([`WAIT`]).

mod common;

use common::rollouts::{
    pass_the_deadline, remote_file, remote_log, wait_rollout, wait_succeeded,
    webservice_with_rollout,
};
use common::world::{GitRepo, World};
use common::{WAIT, table_columns};
use k8s_openapi::api::core::v1::Event;
use kube::api::Api;
use kube::runtime::watcher;
use std::ffi::OsStr;
use std::process::Stdio;
use std::time::Duration;

/// Seed 000's Application (`rollout-trait-test`, component `express-server`), without a rollout.
fn seed000(image: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
  - name: express-server
    type: webservice
    properties:
      image: {image}
      replicas: 1
"
    )
}

fn config_map(name: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  a: \"1\"\n")
}

/// What a rollgit run produced: exit code, stdout, stderr.
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

/// The rollgit binary with `args` plus the repository, state and cluster flags (as
/// `rollback_cli.rs` runs it), bounded by [`WAIT`].
async fn rollgit(w: &World, state: &std::path::Path, args: &[&str]) -> Out {
    let url = w.git.url();
    let mut all: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    all.extend([
        "--repo".as_ref(),
        url.as_ref(),
        "--repo-name".as_ref(),
        w.repo.as_ref(),
        "--state-dir".as_ref(),
        state.as_os_str(),
        "--kubeconfig".as_ref(),
        w.cluster.kubeconfig.as_os_str(),
    ]);
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
    cmd.args(&all)
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

/// The NAME column of `kubectl get app`.
async fn app_names(w: &World) -> Vec<String> {
    let out = w.cluster.kubectl_ok(&["get", "app"]).await;
    table_columns(&out)
        .into_iter()
        .skip(1)
        .map(|r| r[0].clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_000_at_the_repository_root_is_kubectl_get_app_rollout_trait_test() {
    let git = GitRepo::with_remote().await;
    git.write("app.yaml", &seed000("stefanprodan/podinfo:4.0.3"));
    let c1 = git.commit_and_push("seed 000").await;
    // No app roots: the whole repository is one app.
    let w = World::start_configured(git, |_| {}, |r| r.paths = Vec::new()).await;
    w.wait_applied("rollout-trait-test", &c1).await;
    let (header, row) = w.kubectl_app_row("rollout-trait-test").await;
    assert_eq!(header[0], "NAME");
    assert_eq!(row[0], "rollout-trait-test");
    assert_eq!(app_names(&w).await, ["rollout-trait-test"]);
    let err = w.cluster.kubectl_fails(&["get", "app", "root"]).await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    let out = w
        .cluster
        .kubectl_ok(&[
            "get",
            "deploy",
            "-l",
            "rollgit.dev/app=rollout-trait-test",
            "-o=jsonpath={.items[*].metadata.name}",
        ])
        .await;
    assert_eq!(out.trim(), "express-server", "labelled with the app's name");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_yaml_keeps_its_directory_name_and_history_and_rollback_find_the_application() {
    let git = GitRepo::with_remote().await;
    git.write("apps/web/cm.yaml", &config_map("web-config"));
    git.write(
        "apps/express/app.yaml",
        &seed000("stefanprodan/podinfo:4.0.3"),
    );
    let c1 = git.commit_and_push("web and express v1").await;
    let w = World::start(git).await;
    w.wait_applied("web", &c1).await;
    w.wait_applied("rollout-trait-test", &c1).await;
    assert_eq!(app_names(&w).await, ["rollout-trait-test", "web"]);
    let c2 = w
        .push(
            "apps/express/app.yaml",
            &seed000("stefanprodan/podinfo:5.0.2"),
            "express v2",
        )
        .await;
    let s = w.wait_applied("rollout-trait-test", &c2).await;
    assert_eq!(s["publishVersion"], "alpha2", "{s}");
    let state = tempfile::tempdir().expect("a state directory for the CLI");

    let out = rollgit(&w, state.path(), &["history", "rollout-trait-test"]).await;
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains(&c1[..12]) && out.stdout.contains(&c2[..12]),
        "both commits of apps/express: {out}"
    );

    let out = rollgit(
        &w,
        state.path(),
        &[
            "rollback",
            "rollout-trait-test",
            "--to",
            "express-server-v1",
        ],
    )
    .await;
    assert_eq!(out.code, Some(0), "{out}");
    let revert = remote_log(&w.git, "%H").await;
    assert_eq!(remote_log(&w.git, "%P").await, c2, "one revert on top");
    assert!(
        remote_file(&w.git, "apps/express/app.yaml")
            .await
            .contains("podinfo:4.0.3")
    );
    w.trigger();
    w.wait_applied("rollout-trait-test", &revert).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_keeps_its_name_when_not_read_again_and_when_its_yaml_breaks() {
    let git = GitRepo::with_remote().await;
    git.write("apps/web/cm.yaml", &config_map("web-config"));
    let good = seed000("stefanprodan/podinfo:4.0.3");
    git.write("apps/express/app.yaml", &good);
    let c1 = git.commit_and_push("web and express").await;
    let w = World::start(git).await;
    w.wait_applied("rollout-trait-test", &c1).await;
    w.wait_applied("web", &c1).await;
    // A commit to `web` only: the other app is not read again, and stays as it is.
    let c2 = w
        .push(
            "apps/web/cm.yaml",
            &config_map("web-config").replace("\"1\"", "\"2\""),
            "web: a=2",
        )
        .await;
    w.wait_applied("web", &c2).await;
    assert_eq!(app_names(&w).await, ["rollout-trait-test", "web"]);
    let s = w.wait_applied("rollout-trait-test", &c1).await;
    assert_eq!(s["lastAttemptedCommit"], c1.as_str(), "{s}");
    // A file that does not parse fails the app under its name: nothing is renamed or pruned.
    let bad = w
        .push(
            "apps/express/app.yaml",
            &format!("{good}  oops: [\n"),
            "express: broken YAML",
        )
        .await;
    let s = w
        .wait_app("rollout-trait-test", "the broken commit failed", |s| {
            s["lastAttemptedCommit"] == bad.as_str()
        })
        .await;
    assert_eq!(s["phase"], "failed", "{s}");
    assert_eq!(s["lastAppliedCommit"], c1.as_str(), "{s}");
    assert_eq!(app_names(&w).await, ["rollout-trait-test", "web"]);
    w.cluster
        .kubectl_ok(&["get", "deploy", "express-server"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_renamed_in_git_is_the_old_app_gone_and_a_new_one() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/express/app.yaml",
        &seed000("stefanprodan/podinfo:4.0.3"),
    );
    let c1 = git.commit_and_push("express").await;
    let w = World::start(git).await;
    w.wait_applied("rollout-trait-test", &c1).await;
    let renamed =
        seed000("stefanprodan/podinfo:4.0.3").replace("rollout-trait-test", "express-app");
    let c2 = w
        .push("apps/express/app.yaml", &renamed, "express renamed")
        .await;
    // The old app's prune of everything waits (the mass-prune guard); the new app's objects
    // are the old app's until then.
    let old = w
        .wait_app("rollout-trait-test", "its prune held", |s| {
            s["message"]
                .as_str()
                .is_some_and(|m| m.contains("left Git"))
        })
        .await;
    assert!(
        old["message"]
            .as_str()
            .is_some_and(|m| m.contains("rollgit sync rollout-trait-test --allow-mass-prune")),
        "{old}"
    );
    let new = w
        .wait_app("express-app", "refused", |s| {
            s["lastAttemptedCommit"] == c2.as_str()
        })
        .await;
    assert_ne!(new["lastAppliedCommit"], c2.as_str(), "{new}");
    let out = w
        .rollgit(&[
            "sync",
            "rollout-trait-test",
            "--allow-mass-prune",
            "--timeout",
            "20s",
        ])
        .await;
    assert_eq!(out.0, Some(0), "{out:?}");
    assert!(out.1.contains("app rollout-trait-test left Git"), "{out:?}");
    let err = w
        .cluster
        .kubectl_fails(&["get", "app", "rollout-trait-test"])
        .await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}\nsync: {out:?}"
    );
    let out = w
        .rollgit(&["sync", "express-app", "--timeout", "20s"])
        .await;
    assert_eq!(out.0, Some(0), "{out:?}");
    w.wait_applied("express-app", &c2).await;
    assert_eq!(app_names(&w).await, ["express-app"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_apps_with_one_name_reject_the_commit_naming_the_file_and_line() {
    let git = GitRepo::with_remote().await;
    git.write("apps/web/cm.yaml", &config_map("web-config"));
    let c1 = git.commit_and_push("web").await;
    let w = World::start(git).await;
    w.wait_applied("web", &c1).await;
    // An Application named like the plain app `web`, in another directory.
    let clash = w
        .push(
            "apps/alpha/app.yaml",
            &seed000("stefanprodan/podinfo:4.0.3").replace("rollout-trait-test", "web"),
            "alpha, named web",
        )
        .await;
    // `kubectl get app web` says so, naming both: the status of the app already running.
    let s = w
        .wait_app("web", "the clash shown in its status", |s| {
            s["lastAttemptedCommit"] == clash.as_str()
        })
        .await;
    assert_eq!(s["phase"], "failed", "{s}");
    assert_eq!(s["lastAppliedCommit"], c1.as_str(), "{s}");
    assert!(
        s["lastError"][0].as_str().is_some_and(|e| e.contains(
            "app name \"web\" is given by the KubeVela Application at apps/alpha/app.yaml:4 (metadata.name) and by the directory apps/web"
        )),
        "{s}"
    );
    let (_, row) = w.kubectl_app_row("web").await;
    assert!(row.iter().any(|c| c == "failed"), "{row:?}");
    let state = tempfile::tempdir().expect("a state directory for the CLI");
    let out = rollgit(&w, state.path(), &["diff", "--path", "apps/*"]).await;
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(
            "app name \"web\" is given by the KubeVela Application at apps/alpha/app.yaml:4 (metadata.name) and by the directory apps/web"
        ),
        "{out}"
    );
    // The Application renamed: it applies under its own name, and `web` stays as it was.
    let fix = w
        .push(
            "apps/alpha/app.yaml",
            &seed000("stefanprodan/podinfo:4.0.3").replace("rollout-trait-test", "alpha-app"),
            "alpha renamed",
        )
        .await;
    w.wait_applied("alpha-app", &fix).await;
    assert_eq!(app_names(&w).await, ["alpha-app", "web"]);
    // `web` is synced again at the fix: its status no longer shows the clash.
    let s = w.wait_applied("web", &fix).await;
    assert_eq!(s["lastError"], serde_json::json!(null), "{s}");
    w.cluster
        .kubectl_ok(&["get", "configmap", "web-config"])
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_app_has_its_automatic_revert_pushed() {
    let git = GitRepo::with_remote().await;
    let good = webservice_with_rollout("registry.example/web:1", "3s");
    git.write("app.yaml", &good);
    git.commit_and_push("web 1").await;
    let w = World::start_configured(
        git,
        |c| c.simulation.fail_images = vec!["*:broken".into()],
        |r| r.paths = Vec::new(),
    )
    .await;
    wait_succeeded(&w, "web", "web-v1", 4).await;
    let bad = w
        .push(
            "app.yaml",
            &webservice_with_rollout("registry.example/web:broken", "3s"),
            "web: broken build",
        )
        .await;
    pass_the_deadline(&w, "web", "web-v2", Duration::from_secs(3)).await;
    let s = wait_rollout(&w, "web", "rollback recorded in Git", |s| {
        s["record"]["state"] == "Reverted"
    })
    .await;
    let revert = s["record"]["commit"]
        .as_str()
        .expect("the revert commit")
        .to_string();
    assert_eq!(remote_log(&w.git, "%H").await, revert);
    assert_eq!(remote_log(&w.git, "%P").await, bad);
    assert_eq!(remote_file(&w.git, "app.yaml").await, good.trim_end());
    let app = w.wait_applied("shop", &revert).await;
    assert_eq!(app["healthy"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_app_has_its_revisions_written_back() {
    let git = GitRepo::with_remote().await;
    git.write("app.yaml", &seed000("stefanprodan/podinfo:4.0.3"));
    let c1 = git.commit_and_push("seed 000").await;
    let w = World::start_configured(
        git,
        |_| {},
        |r| {
            r.paths = Vec::new();
            r.write_back = Some(rollgit::config::RawWriteBack {
                bumps: Some(true),
                ..Default::default()
            });
        },
    )
    .await;
    w.wait_applied("rollout-trait-test", &c1).await;
    let events: Api<Event> = w.api();
    let written = common::world::first_watched(
        events,
        watcher::Config::default().fields("reason=RevisionsWrittenBack"),
        WAIT,
        |_| true,
    )
    .await
    .expect("an Event names the bump commit");
    let message = written.message.unwrap_or_default();
    assert!(
        message.starts_with(".rollgit-revisions committed to Git as "),
        "{message}"
    );
    assert_eq!(remote_log(&w.git, "%P").await, c1);
    let file = remote_file(&w.git, ".rollgit-revisions").await;
    assert!(
        file.contains("  express-server: express-server-v1"),
        "{file}"
    );
}

/// A repository that creates the namespaces its objects go to (`createNamespace`).
fn creating_namespaces(r: &mut rollgit::config::RawRepo) {
    r.sync = Some(rollgit::config::RawSync {
        create_namespace: Some(true),
        ..Default::default()
    });
}

/// Seed 003's shape: a KubeVela Application `demo` in namespace `demo`, followed by a
/// repository whose namespace is `default`.
fn demo_in_its_namespace(image: &str) -> String {
    webservice_with_rollout(image, "30s")
        .replace("  name: shop\n", "  name: demo\n  namespace: demo\n")
}

/// The status object `demo` in namespace `ns`, if any.
async fn status_object(w: &World, ns: &str) -> Option<kube::api::DynamicObject> {
    let api: Api<kube::api::DynamicObject> = w.apps_in(ns);
    api.get_opt("demo").await.expect("read the status object")
}

/// Waits until the status object `demo/demo` reports `commit` applied, running and healthy.
async fn wait_demo_applied(w: &World, commit: &str) -> kube::api::DynamicObject {
    wait_demo_at(w, "demo", commit).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_003_an_application_in_its_own_namespace_has_its_status_object_there() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/demo/app.yaml",
        &demo_in_its_namespace("registry.example/web:1"),
    );
    let c1 = git.commit_and_push("demo").await;
    let w = World::start_configured(git, |_| {}, creating_namespaces).await;
    let app = wait_demo_applied(&w, &c1).await;
    let out = w
        .cluster
        .kubectl_ok(&["get", "app", "demo", "-n", "demo"])
        .await;
    let rows = table_columns(&out);
    assert_eq!(
        (rows[0][0].as_str(), rows[1][0].as_str()),
        ("NAME", "demo"),
        "{out}"
    );
    let err = w.cluster.kubectl_fails(&["get", "app", "demo"]).await;
    assert!(
        err.contains("NotFound") || err.contains("not found"),
        "{err}"
    );
    // Its Rollout and revisions name it as their owner, in the same namespace, so that
    // kube-controller-manager's garbage collector keeps them (it deletes a dependent whose
    // owner is in another namespace, and so does the dev cluster's).
    let uid = app.metadata.uid.clone().expect("uid");
    let rollouts: Api<kube::api::DynamicObject> = Api::namespaced_with(
        w.client.clone(),
        "demo",
        &kube::api::ApiResource::erase::<rollgit::k8s::Rollout>(&()),
    );
    let rollout = common::world::wait_for(&rollouts, "web", "the Rollout succeeded", |o| {
        o.is_some_and(|o| o.data["status"]["rollingState"] == "rolloutSucceed")
    })
    .await
    .expect("the Rollout exists");
    let owners = rollout
        .metadata
        .owner_references
        .clone()
        .unwrap_or_default();
    assert_eq!(owners.len(), 1, "{owners:?}");
    assert_eq!(owners[0].uid, uid);
    let revision: Api<k8s_openapi::api::apps::v1::ControllerRevision> =
        Api::namespaced(w.client.clone(), "demo");
    let rev = revision
        .get("web-v1")
        .await
        .expect("the component revision");
    assert_eq!(rev.metadata.owner_references.expect("an owner")[0].uid, uid);

    // The CLI finds it with -n, as kubectl does; `status -A` lists it with its namespace.
    let (code, out, err) = w.rollgit(&["status", "-A"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let rows = table_columns(&out);
    assert_eq!(rows[0][0], "NAMESPACE", "{out}");
    assert!(
        rows.iter().any(|r| r[0] == "demo" && r[1] == "demo"),
        "{out}"
    );
    let state = tempfile::tempdir().expect("a state directory for the CLI");
    let state_dir = state.path().to_string_lossy().to_string();
    let (code, out, err) = w
        .rollgit(&["history", "demo", "-n", "demo", "--state-dir", &state_dir])
        .await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains(&c1[..12]), "{out}");
    // Suspension reaches the daemon from the Application's namespace.
    let (code, out, err) = w.rollgit(&["suspend", "demo", "-n", "demo"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    let c2 = w
        .push(
            "apps/demo/app.yaml",
            &demo_in_its_namespace("registry.example/web:2"),
            "demo v2",
        )
        .await;
    let api: Api<kube::api::DynamicObject> = w.apps_in("demo");
    let suspended = common::world::wait_for(&api, "demo", "suspended, c2 not applied", |o| {
        o.is_some_and(|o| o.data["status"]["phase"] == "suspended")
    })
    .await
    .expect("it exists");
    assert_eq!(suspended.data["status"]["lastAppliedCommit"], c1.as_str());
    let (code, out, err) = w.rollgit(&["resume", "demo", "-n", "demo"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    common::world::wait_for(&api, "demo", "resumed, c2 applied", |o| {
        o.is_some_and(|o| o.data["status"]["lastAttemptedCommit"] == c2.as_str())
    })
    .await;
    assert!(
        status_object(&w, "default").await.is_none(),
        "nothing in the repository's namespace"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_status_object_an_older_rollgit_kept_in_the_repository_namespace_moves_home() {
    let git = GitRepo::with_remote().await;
    let app = demo_in_its_namespace("registry.example/web:1");
    git.write("apps/demo/app.yaml", &app);
    let cm = |name: &str| {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  namespace: demo\ndata:\n  a: \"1\"\n"
        )
    };
    for name in ["keep-a", "keep-b", "extra"] {
        git.write(&format!("apps/demo/{name}.yaml"), &cm(name));
    }
    let c1 = git.commit_and_push("demo").await;
    let w = World::start_configured(git, |_| {}, creating_namespaces).await;
    wait_demo_applied(&w, &c1).await;
    // As an older rollgit left it: the status object in the repository's namespace (and none
    // in the Application's), while a commit removing `extra` lands.
    let w = w
        .restart_daemon_with(async |client, git| {
            let resource = rollgit::record::status::application_resource();
            let home: Api<kube::api::DynamicObject> =
                Api::namespaced_with(client.clone(), "demo", &resource);
            let old: Api<kube::api::DynamicObject> =
                Api::namespaced_with(client.clone(), "default", &resource);
            let live = home.get("demo").await.expect("the status object");
            let copy = serde_json::json!({
                "apiVersion": resource.api_version,
                "kind": resource.kind,
                "metadata": {"name": "demo", "namespace": "default",
                    "labels": live.metadata.labels.clone()},
                "spec": live.data["spec"].clone(),
                "status": live.data["status"].clone(),
            });
            let made = old
                .create(
                    &Default::default(),
                    &serde_json::from_value(copy.clone()).expect("object"),
                )
                .await
                .expect("create the old copy");
            if made.data["status"].is_null() {
                old.patch_status(
                    "demo",
                    &Default::default(),
                    &kube::api::Patch::Merge(serde_json::json!({"status": copy["status"]})),
                )
                .await
                .expect("its status");
            }
            home.delete("demo", &kube::api::DeleteParams::orphan())
                .await
                .expect("delete the new copy");
            git.rm("apps/demo/extra.yaml").await;
        })
        .await;
    let c2 = w.git.commit_and_push("demo: no extra").await;
    w.trigger();
    wait_demo_applied(&w, &c2).await;
    // The inventory was taken over from the old copy: `extra` is pruned, not orphaned.
    let cms: Api<k8s_openapi::api::core::v1::ConfigMap> = Api::namespaced(w.client.clone(), "demo");
    common::world::wait_for(&cms, "extra", "extra pruned", |o| o.is_none()).await;
    cms.get("keep-a").await.expect("keep-a stays");
    let old: Api<kube::api::DynamicObject> = w.apps_in("default");
    common::world::wait_for(&old, "demo", "the old copy deleted", |o| o.is_none()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_whose_namespace_is_missing_shows_why_in_the_repository_namespace() {
    let git = GitRepo::with_remote().await;
    let app = |image: &str| {
        seed000(image).replace(
            "  name: rollout-trait-test\n",
            "  name: demo\n  namespace: later\n",
        )
    };
    git.write("apps/demo/app.yaml", &app("stefanprodan/podinfo:4.0.3"));
    let c1 = git.commit_and_push("demo in namespace later").await;
    let w = World::start(git).await;
    // Nothing can be applied (namespace `later` does not exist, and the repository does not
    // create namespaces): the refusal is where the user can read it.
    let s = w
        .wait_app("demo", "the refusal shown", |s| {
            s["lastAttemptedCommit"] == c1.as_str()
        })
        .await;
    assert_eq!(s["phase"], "failed", "{s}");
    assert!(s["lastError"].to_string().contains("later"), "{s}");
    w.cluster
        .kubectl_ok(&["create", "namespace", "later"])
        .await;
    let c2 = w
        .push(
            "apps/demo/app.yaml",
            &app("stefanprodan/podinfo:5.0.2"),
            "demo v2",
        )
        .await;
    wait_demo_at(&w, "later", &c2).await;
    let repo_ns: Api<kube::api::DynamicObject> = w.apps();
    common::world::wait_for(
        &repo_ns,
        "demo",
        "the repository namespace's copy deleted",
        |o| o.is_none(),
    )
    .await;
}

/// Waits until the status object `ns/demo` reports `commit` applied, running and healthy.
async fn wait_demo_at(w: &World, ns: &str, commit: &str) -> kube::api::DynamicObject {
    let api: Api<kube::api::DynamicObject> = w.apps_in(ns);
    common::world::wait_for(&api, "demo", &format!("{ns}/demo at {commit}"), |o| {
        o.is_some_and(|o| {
            let s = &o.data["status"];
            s["lastAppliedCommit"] == commit && s["phase"] == "running" && s["healthy"] == true
        })
    })
    .await
    .expect("it exists")
}
