//! Leader election and sharding with real `rollgit run` processes on one dev cluster: one
//! writer per shard (the followers' write counters stay 0), a leader killed with SIGKILL
//! mid-rollout replaced within 15 s with no batch redone or skipped, and 30 repositories
//! split over 3 replicas, a dead replica's shards moving within 15 s.

mod common;

use common::TestCluster;
use common::world::{GitRepo, wait_for};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long a dead leader's shards may take to move (the issue's bound).
const TAKEOVER: Duration = Duration::from_secs(15);

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// One `rollgit run --leader-elect` replica named `name` (its Lease identity starts with it).
struct Replica {
    name: String,
    port: u16,
    child: tokio::process::Child,
    state: tempfile::TempDir,
}

impl Replica {
    fn spawn(name: &str, cluster: &TestCluster, args: &[String]) -> Self {
        Self::spawn_with(name, cluster, args, None)
    }

    /// With `config` (a `rollgit.yaml` without `listen`, `stateDir` and `clusters`, which
    /// each replica adds), or with flags.
    fn spawn_with(
        name: &str,
        cluster: &TestCluster,
        args: &[String],
        config: Option<&str>,
    ) -> Self {
        let state = tempfile::tempdir().expect("state dir");
        let port = free_port();
        let log = std::fs::File::create(state.path().join("rollgit.log")).expect("log");
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
        cmd.arg("run").args(args);
        match config {
            Some(yaml) => {
                let file = state.path().join("rollgit.yaml");
                let yaml = format!(
                    "{yaml}listen: 127.0.0.1:{port}\nstateDir: '{}'\nclusters: [{{kubeconfig: '{}'}}]\n",
                    state.path().join("state").display(),
                    cluster.kubeconfig.display()
                );
                std::fs::write(&file, yaml).expect("write the configuration");
                cmd.arg("--config").arg(file);
            }
            None => {
                cmd.args(["--listen", &format!("127.0.0.1:{port}")])
                    .arg("--state-dir")
                    .arg(state.path().join("state"))
                    .arg("--kubeconfig")
                    .arg(&cluster.kubeconfig);
            }
        }
        let child = cmd
            .env_remove("KUBECONFIG")
            .env("POD_NAME", name)
            .env("ROLLGIT_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("rollgit run starts");
        Self {
            name: name.to_string(),
            port,
            child,
            state,
        }
    }

    /// `GET path` on the replica's HTTP server (`None` while it does not answer).
    async fn get(&self, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .ok()?;
        s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).await.ok()?;
        Some(out)
    }

    /// The value of `rollgit_syncs_total` per repository (summed over results).
    async fn syncs(&self) -> BTreeMap<String, f64> {
        let text = self.get("/metrics").await.unwrap_or_default();
        let mut out = BTreeMap::new();
        for line in text
            .lines()
            .filter(|l| l.starts_with("rollgit_syncs_total{"))
        {
            let repo = line
                .split("repo=\"")
                .nth(1)
                .and_then(|r| r.split('"').next())
                .unwrap_or_default();
            let n: f64 = line
                .rsplit(' ')
                .next()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0.0);
            *out.entry(repo.to_string()).or_default() += n;
        }
        out
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.state.path().join("rollgit.log")).unwrap_or_default()
    }
}

/// The replica (by name prefix) holding each Lease `rollgit-<shard>` now.
async fn holders(client: &kube::Client, shards: u32) -> BTreeMap<u32, String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let mut out = BTreeMap::new();
    for shard in 0..shards {
        if let Ok(Some(l)) = leases.get_opt(&format!("rollgit-{shard}")).await
            && let Some(h) = l.spec.and_then(|s| s.holder_identity)
        {
            out.insert(shard, h);
        }
    }
    out
}

fn owner(holder: &str, replicas: &[&str]) -> Option<String> {
    replicas
        .iter()
        .find(|r| holder.starts_with(&format!("{r}-")))
        .map(|r| r.to_string())
}

/// Waits (bounded) until every shard's Lease names one of `replicas`; returns shard → replica.
async fn wait_holders(
    client: &kube::Client,
    shards: u32,
    replicas: &[&str],
    bound: Duration,
) -> BTreeMap<u32, String> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), "default");
    let start = tokio::time::Instant::now();
    // Leases change through their own watch; re-read on every event (or each second).
    let mut events = watcher(leases, watcher::Config::default())
        .default_backoff()
        .boxed();
    loop {
        let now = holders(client, shards).await;
        let owned: BTreeMap<u32, String> = now
            .iter()
            .filter_map(|(s, h)| owner(h, replicas).map(|o| (*s, o)))
            .collect();
        if owned.len() == shards as usize {
            return owned;
        }
        let left = bound.saturating_sub(start.elapsed());
        assert!(
            !left.is_zero(),
            "not every shard held by one of {replicas:?} within {bound:?}: {now:?}"
        );
        let _ = tokio::time::timeout(left.min(Duration::from_secs(1)), events.next()).await;
    }
}

fn app(image: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: failover
spec:
  components:
    - name: api
      type: worker
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
}

/// Two replicas of `rollgit run --leader-elect` following `git` as repository `failover`
/// (`apps/*`, polled every second), once `api` rolled out api-v1: the leader, the follower,
/// and the Rollouts' API.
async fn failover_pair(
    cluster: &TestCluster,
    client: &kube::Client,
    git: &GitRepo,
) -> (Replica, Replica, Api<DynamicObject>) {
    let args: Vec<String> = [
        "--repo",
        &git.url(),
        "--repo-name",
        "failover",
        "--path",
        "apps/*",
        "--interval",
        "1s",
        "--leader-elect",
        "--lease-namespace",
        "default",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let a = Replica::spawn("replica-a", cluster, &args);
    let b = Replica::spawn("replica-b", cluster, &args);
    let ro: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::core::ApiResource::erase::<rollgit::k8s::Rollout>(&()),
    );
    wait_for(
        &ro,
        "api",
        "api-v1 rolled out",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["rollingState"] == "rolloutSucceed"
                    && o.data["status"]["targetRevision"] == "api-v1"
            })
        },
    )
    .await;
    let names = ["replica-a", "replica-b"];
    let leader = wait_holders(client, 1, &names, Duration::from_secs(5)).await[&0].clone();
    if leader == a.name {
        (a, b, ro)
    } else {
        (b, a, ro)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_writer_and_a_leader_killed_mid_rollout_is_replaced_within_15s() {
    let cluster = TestCluster::start_with(|c| {
        c.simulation.ready_delay = Duration::from_millis(1500);
    })
    .await;
    let client = cluster.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs install");
    let git = GitRepo::with_remote().await;
    git.write("apps/failover/app.yaml", &app("example/api:1"));
    git.commit_and_push("api 1").await;
    let (mut leading, mut following, ro) = failover_pair(&cluster, &client, &git).await;
    let (leading, following) = (&mut leading, &mut following);
    // Exactly one writer: the follower synced nothing, and says what it is.
    assert!(
        leading
            .syncs()
            .await
            .get("failover")
            .is_some_and(|n| *n > 0.0)
    );
    assert_eq!(
        following.syncs().await.get("failover"),
        None,
        "{}",
        following.log()
    );
    let ready = following.get("/readyz").await.unwrap_or_default();
    assert!(
        ready.starts_with("HTTP/1.0 200") && ready.contains("leading shards: none; following: 0"),
        "{ready}"
    );

    // Every spec.replicas of api-v2 from here on.
    let seen: Arc<Mutex<Vec<i32>>> = Arc::default();
    let watching = {
        let seen = seen.clone();
        let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
        tokio::spawn(async move {
            // With a backoff: once the dev cluster is gone, a watcher without one retries
            // in a loop that never yields (the runtime could not shut down).
            let mut stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .boxed();
            while let Some(ev) = stream.next().await {
                if let Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) = ev
                    && d.metadata.name.as_deref() == Some("api-v2")
                {
                    let n = d.spec.and_then(|s| s.replicas).unwrap_or(-1);
                    if let Ok(mut v) = seen.lock()
                        && v.last() != Some(&n)
                    {
                        v.push(n);
                    }
                }
            }
        })
    };
    git.write("apps/failover/app.yaml", &app("example/api:2"));
    git.commit_and_push("api 2").await;
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    wait_for(
        &deploys,
        "api-v2",
        "the first batch",
        |d: Option<&Deployment>| {
            d.and_then(|d| d.spec.as_ref()).and_then(|s| s.replicas) == Some(2)
        },
    )
    .await;
    // kill -9 the leader mid-rollout: the follower takes the Lease within 15 s.
    leading.child.kill().await.expect("kill -9 the leader");
    let killed_at = tokio::time::Instant::now();
    let follower = following.name.clone();
    let took = wait_holders(&client, 1, &[follower.as_str()], TAKEOVER).await;
    assert_eq!(took[&0], follower);
    let after = killed_at.elapsed();
    eprintln!("the follower took the Lease {after:?} after the leader was killed");
    assert!(after < TAKEOVER, "taken over after {after:?}");
    wait_for(
        &ro,
        "api",
        "api-v2 rolled out",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["rollingState"] == "rolloutSucceed"
                    && o.data["status"]["targetRevision"] == "api-v2"
            })
        },
    )
    .await;
    watching.abort();
    let sizes = seen.lock().map(|v| v.clone()).unwrap_or_default();
    assert_eq!(sizes, [0, 2, 4, 6], "each batch once, in order");
    assert!(
        following
            .syncs()
            .await
            .get("failover")
            .is_some_and(|n| *n > 0.0)
    );
    following.child.kill().await.expect("kill rollgit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_repositories_split_over_three_replicas_and_a_dead_ones_move() {
    const REPOS: usize = 30;
    const SHARDS: u32 = 6;
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs install");
    let mut gits = Vec::new();
    let mut yaml = String::from("repos:\n");
    for i in 0..REPOS {
        let git = GitRepo::local().await;
        git.write(
            &format!("apps/app-{i}/cm.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\ndata: {{v: \"1\"}}\n"
            ),
        );
        git.commit("first").await;
        yaml.push_str(&format!(
            "- {{name: repo-{i}, url: '{}', paths: ['apps/*'], interval: 1s}}\n",
            git.url()
        ));
        gits.push(git);
    }
    yaml.push_str(&format!(
        "leaderElection: {{namespace: default, shards: {SHARDS}, leaseDuration: 10s, renewDeadline: 7s}}\n"
    ));
    let names = ["replica-a", "replica-b", "replica-c"];
    let mut replicas: Vec<Replica> = names
        .iter()
        .map(|n| Replica::spawn_with(n, &cluster, &[], Some(&yaml)))
        .collect();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let all_applied = |want: &'static str, logs: String| {
        let cms = cms.clone();
        async move {
            let deadline = tokio::time::Instant::now() + common::WAIT;
            loop {
                let list = cms.list(&ListParams::default()).await.expect("list");
                let n = list
                    .items
                    .iter()
                    .filter(|c| {
                        c.metadata
                            .name
                            .as_deref()
                            .is_some_and(|n| n.starts_with("cm-"))
                            && c.data.as_ref().and_then(|d| d.get("v")).map(String::as_str)
                                == Some(want)
                    })
                    .count();
                if n == REPOS {
                    return;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{n} of {REPOS} ConfigMaps at v={want}\n{}",
                    logs.split(' ')
                        .map(|p| std::fs::read_to_string(p)
                            .unwrap_or_default()
                            .chars()
                            .take(3000)
                            .collect::<String>())
                        .collect::<Vec<_>>()
                        .join("\n----\n")
                );
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let logs = |rs: &[Replica]| {
        rs.iter()
            .map(|r| r.state.path().join("rollgit.log").display().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    all_applied("1", logs(&replicas)).await;
    let shard_of = |i: usize| rollgit::config::Config::shard_of(&format!("repo-{i}"), SHARDS);
    let held = wait_holders(&client, SHARDS, &names, Duration::from_secs(10)).await;
    let leaders: BTreeSet<&String> = held.values().collect();
    assert_eq!(leaders.len(), 3, "the replicas split the shards: {held:?}");
    // Each repository synced by exactly one replica: the holder of its shard.
    for i in 0..REPOS {
        let repo = format!("repo-{i}");
        let mut by = Vec::new();
        for r in &replicas {
            if r.syncs().await.contains_key(&repo) {
                by.push(r.name.clone());
            }
        }
        assert_eq!(
            by,
            [held[&shard_of(i)].clone()],
            "{repo} (shard {})",
            shard_of(i)
        );
    }

    // Kill one replica: its shards move to the others within 15 s, and its repositories'
    // next commits land.
    let victim = replicas.remove(0);
    let victim_shards: Vec<u32> = held
        .iter()
        .filter(|(_, r)| **r == victim.name)
        .map(|(s, _)| *s)
        .collect();
    let mut victim = victim;
    victim.child.kill().await.expect("kill -9 a replica");
    let survivors: Vec<&str> = replicas.iter().map(|r| r.name.as_str()).collect();
    let killed_at = tokio::time::Instant::now();
    let moved = wait_holders(&client, SHARDS, &survivors, TAKEOVER).await;
    eprintln!(
        "shards {victim_shards:?} moved {:?} after their replica was killed",
        killed_at.elapsed()
    );
    for s in &victim_shards {
        assert!(
            survivors.contains(&moved[s].as_str()),
            "shard {s}: {moved:?}"
        );
    }
    for (i, git) in gits.iter().enumerate() {
        git.write(
            &format!("apps/app-{i}/cm.yaml"),
            &format!(
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: cm-{i}}}\ndata: {{v: \"2\"}}\n"
            ),
        );
        git.commit("second").await;
    }
    all_applied("2", logs(&replicas)).await;
    for r in &mut replicas {
        r.child.kill().await.expect("kill rollgit");
    }
}

/// Holds the first `Revert …` commit pushed to the bare remote after the ref is updated (a
/// `post-receive` hook, which `git push` waits for) until the test creates `release` in
/// `marks`; `pushed` in `marks` says the revert is on the remote.
fn hold_the_first_revert(bare: &std::path::Path, marks: &std::path::Path) {
    let hook = bare.join("hooks").join("post-receive");
    let m = marks.display();
    std::fs::write(
        &hook,
        format!(
            "#!/bin/sh\n\
             while read old new ref; do\n\
             \x20 if [ ! -e '{m}/pushed' ] && git log -1 --format=%s \"$new\" | grep -q '^Revert '; then\n\
             \x20   touch '{m}/pushed'\n\
             \x20   i=0\n\
             \x20   while [ ! -e '{m}/release' ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i+1)); done\n\
             \x20 fi\n\
             done\n"
        ),
    )
    .expect("write the hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755))
        .expect("make the hook executable");
}

/// Waits (bounded) until `file` exists; a marker file has no watch, so it is polled.
async fn wait_file(file: &std::path::Path, what: &str, logs: &[&Replica]) {
    let deadline = tokio::time::Instant::now() + common::WAIT;
    while !file.exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {:?}\n{}",
            common::WAIT,
            logs.iter()
                .map(|r| r.log())
                .collect::<Vec<_>>()
                .join("\n----\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The worst moment for a failover during a rollback: the leader pushed the revert commit and
/// was killed before it recorded it. The new leader finds the revert in Git (by its trailers)
/// and records it instead of reverting again: exactly one revert commit on the remote, and
/// the Rollout's record names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_killed_after_pushing_a_revert_leaves_exactly_one_revert_commit() {
    let cluster = TestCluster::start_with(|c| {
        c.simulation.ready_delay = Duration::from_millis(300);
        c.simulation.fail_images = vec!["*:broken".into()];
    })
    .await;
    let client = cluster.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs install");
    let git = GitRepo::with_remote().await;
    let with_deadline = |image: &str| {
        app(image).replace(
            "  name: failover\n",
            "  name: failover\n  annotations:\n    rollgit.dev/progress-deadline: 3s\n",
        )
    };
    git.write("apps/failover/app.yaml", &with_deadline("example/api:1"));
    git.commit_and_push("api 1").await;
    let marks = tempfile::tempdir().expect("a directory for the hook's marks");
    hold_the_first_revert(git.bare.as_ref().expect("a bare remote"), marks.path());
    let (mut leading, mut following, ro) = failover_pair(&cluster, &client, &git).await;
    let (leading, following) = (&mut leading, &mut following);
    git.write(
        "apps/failover/app.yaml",
        &with_deadline("example/api:broken"),
    );
    let bad = git.commit_and_push("api broken").await;
    // The leader rolls back after the 3 s deadline and pushes the revert: kill it then.
    wait_file(
        &marks.path().join("pushed"),
        "the revert pushed",
        &[&*leading, &*following],
    )
    .await;
    leading.child.kill().await.expect("kill -9 the leader");
    let killed_at = tokio::time::Instant::now();
    std::fs::write(marks.path().join("release"), "").expect("release the hook");
    let follower = following.name.clone();
    wait_holders(&client, 1, &[follower.as_str()], TAKEOVER).await;
    let after = killed_at.elapsed();
    eprintln!("the follower took the Lease {after:?} after the leader was killed mid-revert");
    assert!(after < TAKEOVER, "taken over after {after:?}");
    let recorded = wait_for(
        &ro,
        "api",
        "the rollback recorded by the new leader",
        |o: Option<&DynamicObject>| {
            o.is_some_and(|o| {
                o.data["status"]["record"]["state"] == "Reverted"
                    && o.data["status"]["record"]["commit"].is_string()
            })
        },
    )
    .await
    .expect("the Rollout exists");
    let record = &recorded.data["status"]["record"];
    let bare = git.bare.as_ref().expect("a bare remote");
    let log = common::world::git(bare, git.dir.path(), &["log", "--format=%H %s", "main"]).await;
    let reverts: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" Revert failover: "))
        .collect();
    assert_eq!(reverts.len(), 1, "exactly one revert commit:\n{log}");
    let revert = reverts[0].split(' ').next().unwrap_or_default();
    assert_eq!(record["commit"], revert, "the record names it: {record}");
    assert_eq!(record["reverts"], serde_json::json!([bad]), "{record}");
    assert!(
        following.log().contains("already in Git"),
        "the new leader found the revert instead of writing one:\n{}",
        following.log()
    );
    following.child.kill().await.expect("kill rollgit");
}

/// `POST path` with `headers` and `body` on a replica's HTTP server; the status code.
async fn post(port: u16, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    let mut req = format!(
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    s.write_all(body).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    out.split(' ').nth(1)?.parse().ok()
}

/// Waits (bounded) until the replica's `/readyz` says its cache of `repo` is warm at `commit`.
async fn wait_warm(r: &Replica, repo: &str, commit: &str) {
    let want = format!("{repo}@{commit}");
    let deadline = tokio::time::Instant::now() + common::WAIT;
    loop {
        let ready = r.get("/readyz").await.unwrap_or_default();
        if ready.contains(&want) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}'s /readyz never said {want}:\n{ready}\n{}",
            r.name,
            r.log()
        );
        // An HTTP endpoint has no watch: ask again shortly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn cm(v: &str) -> String {
    format!("apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: hooked}}\ndata: {{v: \"{v}\"}}\n")
}

/// Waits until ConfigMap `hooked` holds `v`; returns when (bounded by `bound`).
async fn wait_cm(client: &kube::Client, v: &str, bound: Duration, logs: &[&Replica]) {
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let cond = |c: Option<&ConfigMap>| {
        c.and_then(|c| c.data.as_ref())
            .and_then(|d| d.get("v"))
            .is_some_and(|have| have == v)
    };
    let done = tokio::time::timeout(
        bound,
        kube::runtime::wait::await_condition(cms, "hooked", cond),
    )
    .await;
    assert!(
        matches!(done, Ok(Ok(_))),
        "ConfigMap hooked never held v={v} within {bound:?}\n{}",
        logs.iter()
            .map(|r| r.log())
            .collect::<Vec<_>>()
            .join("\n----\n")
    );
}

/// Followers keep their caches warm (they fetch and render each new head, and say so in
/// `/readyz`), a webhook delivered to a follower reaches the leader through the shard's Lease
/// (applied although the leader's poll interval is an hour), and a follower that takes over
/// already holds the newest commit and applies it at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_to_a_follower_reaches_the_leader_and_a_warm_follower_takes_over() {
    let cluster = TestCluster::start().await;
    let client = cluster.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs install");
    let git = GitRepo::with_remote().await;
    git.write("apps/hooked/cm.yaml", &cm("1"));
    let c1 = git.commit_and_push("v1").await;
    let secret_dir = tempfile::tempdir().expect("a directory for the webhook secret");
    let secret_file = secret_dir.path().join("secret");
    std::fs::write(&secret_file, common::world::SECRET).expect("write the webhook secret");
    // The poll interval is an hour: only webhooks bring a new commit during the test.
    let yaml = format!(
        "repos:\n- {{name: hooked, url: '{}', paths: ['apps/*'], interval: 1h, webhook: {{secretFile: '{}'}}}}\n\
         leaderElection: {{namespace: default}}\n",
        git.url(),
        secret_file.display()
    );
    let mut a = Replica::spawn_with("replica-a", &cluster, &[], Some(&yaml));
    let mut b = Replica::spawn_with("replica-b", &cluster, &[], Some(&yaml));
    wait_cm(&client, "1", common::WAIT, &[&a, &b]).await;
    let names = ["replica-a", "replica-b"];
    let leader = wait_holders(&client, 1, &names, Duration::from_secs(5)).await[&0].clone();
    let (leading, following) = if leader == a.name {
        (&mut a, &mut b)
    } else {
        (&mut b, &mut a)
    };
    // The follower fetched and rendered the head, and wrote nothing.
    wait_warm(following, "hooked", &c1).await;
    assert_eq!(following.syncs().await.get("hooked"), None);

    // A webhook delivered to the follower: it fetches, and the leader applies the commit.
    git.write("apps/hooked/cm.yaml", &cm("2"));
    let c2 = git.commit_and_push("v2").await;
    let body = br#"{"ref":"refs/heads/main"}"#;
    let (header, signature) =
        rollgit_source::webhook::Provider::GitHub.sign(common::world::SECRET.as_bytes(), body);
    let signature = signature.as_str();
    let hook = |port: u16| async move {
        post(
            port,
            "/hooks/github/hooked",
            &[("X-GitHub-Event", "push"), (header, signature)],
            body,
        )
        .await
    };
    let code = hook(following.port).await;
    assert!(
        code.is_some_and(|c| c < 300),
        "the follower accepted the webhook: {code:?}"
    );
    wait_warm(following, "hooked", &c2).await;
    wait_cm(&client, "2", common::WAIT, &[&*leading, &*following]).await;
    assert!(
        leading.log().contains("a follower fetched a new head"),
        "the leader learned of it from the Lease:\n{}",
        leading.log()
    );
    assert_eq!(
        following.syncs().await.get("hooked"),
        None,
        "the follower wrote nothing"
    );

    // The leader dies; a commit arrives (webhook to the follower) before the follower takes
    // over: it is warm at that commit while following, then applies it as soon as it leads.
    leading.child.kill().await.expect("kill -9 the leader");
    let killed_at = tokio::time::Instant::now();
    git.write("apps/hooked/cm.yaml", &cm("3"));
    let c3 = git.commit_and_push("v3").await;
    let code = hook(following.port).await;
    assert!(code.is_some_and(|c| c < 300), "{code:?}");
    wait_warm(following, "hooked", &c3).await;
    let follower = following.name.clone();
    wait_holders(&client, 1, &[follower.as_str()], TAKEOVER).await;
    let took = killed_at.elapsed();
    wait_cm(&client, "3", TAKEOVER, &[&*following]).await;
    let applied = killed_at.elapsed();
    eprintln!(
        "the warm follower took the Lease {took:?} after the leader was killed and applied the new commit {:?} later",
        applied - took
    );
    assert!(took < TAKEOVER, "taken over after {took:?}");
    let log = following.log();
    let warmed_at = log
        .find(c3.as_str())
        .expect("the follower logged the warm fetch of the new commit");
    let leading_at = log.find("leading the shard").expect("it leads");
    assert!(
        warmed_at < leading_at,
        "the commit was fetched while following, before leading:\n{log}"
    );
    following.child.kill().await.expect("kill rollgit");
}
