//! Never half-apply, never delete what is not ours (issue 18, items 1 and 2), through the
//! daemon as a user meets it: a commit whose object the API refuses is rejected whole with
//! `path:line` in the status, and the next good commit proceeds; a commit that removes most of
//! an app holds its prune until `rollgit sync APP --allow-mass-prune`. Real git, the dev
//! cluster, the built binary.

mod common;

use common::world::{GitRepo, World};

fn configmap(name: &str, value: &str) -> String {
    format!(
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\ndata:\n  key: \"{value}\"\n"
    )
}

fn deployment(name: &str, template_app: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
spec:
  replicas: 1
  selector:
    matchLabels: {{app: {name}}}
  template:
    metadata:
      labels: {{app: {template_app}}}
    spec:
      containers:
      - name: web
        image: nginx:1.27
"
    )
}

async fn cm_value(w: &World, name: &str) -> String {
    w.cluster
        .kubectl_ok(&["get", "cm", name, "-o", "jsonpath={.data.key}"])
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_the_api_refuses_is_rejected_whole_and_the_next_good_one_applies() {
    let git = GitRepo::with_remote().await;
    git.write("apps/shop/settings.yaml", &configmap("settings", "1"));
    git.write("apps/shop/web.yaml", &deployment("web", "web"));
    let c1 = git.commit_and_push("shop 1").await;
    let w = World::start(git).await;
    w.wait_applied("shop", &c1).await;

    // One valid change and one object the API server refuses (its selector does not match its
    // template): nothing of the commit is applied.
    w.git
        .write("apps/shop/settings.yaml", &configmap("settings", "2"));
    w.git
        .write("apps/shop/bad.yaml", &deployment("bad", "other"));
    let c2 = w.git.commit_and_push("shop 2 with a bad deployment").await;
    w.trigger();
    let s = w
        .wait_app("shop", "the commit rejected", |s| {
            s["lastAttemptedCommit"] == c2.as_str() && s["phase"] == "failed"
        })
        .await;
    assert_eq!(
        s["lastAppliedCommit"],
        c1.as_str(),
        "the cluster keeps the last good commit"
    );
    let error = s["lastError"][0].as_str().unwrap_or_default();
    assert!(
        error.starts_with("apps/shop/bad.yaml:1: Deployment.apps default/bad: Invalid (422)"),
        "{s:#}"
    );
    assert_eq!(
        cm_value(&w, "settings").await,
        "1",
        "the valid change was not applied"
    );
    w.cluster.kubectl_fails(&["get", "deploy", "bad"]).await;

    // The next good commit proceeds.
    w.git.rm("apps/shop/bad.yaml").await;
    let c3 = w
        .git
        .commit_and_push("shop 3: drop the bad deployment")
        .await;
    w.trigger();
    w.wait_applied("shop", &c3).await;
    assert_eq!(cm_value(&w, "settings").await, "2");
}

/// `rollgit sync APP ...` against the world's cluster.
async fn sync(w: &World, app: &str, extra: &[&str]) -> (Option<i32>, String, String) {
    let mut args = vec!["sync", app, "--timeout", "60s"];
    args.extend_from_slice(extra);
    w.rollgit(&args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prune_of_most_of_an_app_waits_for_rollgit_sync_allow_mass_prune() {
    let git = GitRepo::with_remote().await;
    for n in ["a", "b", "c", "d"] {
        git.write(&format!("apps/shop/{n}.yaml"), &configmap(n, "1"));
    }
    let c1 = git.commit_and_push("shop: four settings").await;
    let w = World::start(git).await;
    w.wait_applied("shop", &c1).await;

    // A mistake: three of four files removed. The prune is held, nothing is deleted.
    for n in ["a", "b", "c"] {
        w.git.rm(&format!("apps/shop/{n}.yaml")).await;
    }
    let c2 = w.git.commit_and_push("shop: oops").await;
    w.trigger();
    let s = w
        .wait_app("shop", "the prune held", |s| {
            s["lastAttemptedCommit"] == c2.as_str() && s["heldPrune"]["count"] == 3
        })
        .await;
    assert_eq!(s["heldPrune"]["inventory"], 4);
    let synced = s["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Synced"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(synced["reason"], "PruneHeld", "{s:#}");
    for n in ["a", "b", "c"] {
        w.cluster.kubectl_ok(&["get", "cm", n]).await;
    }

    // A plain `rollgit sync` applies again and says the prune still waits (exit 1).
    let (code, _, err) = sync(&w, "shop", &[]).await;
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("waits for `rollgit sync APP --allow-mass-prune`"),
        "{err}"
    );

    // Confirmed: pruned, and synced.
    let (code, out, err) = sync(&w, "shop", &["--allow-mass-prune"]).await;
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("app shop synced at"), "{out}");
    for n in ["a", "b", "c"] {
        w.cluster.kubectl_fails(&["get", "cm", n]).await;
    }
    w.cluster.kubectl_ok(&["get", "cm", "d"]).await;
}
