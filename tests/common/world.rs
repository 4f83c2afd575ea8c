//! A GitOps world for scenario tests: a real bare remote and a working clone made with the
//! `git` command, a dev cluster, and the daemon started in-process following the remote.

use super::{TestCluster, WAIT, table_columns};
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::wait::await_condition;
use kube::runtime::{WatchStreamExt, watcher};
use rollgit::api::Triggers;
use rollgit::clock::ManualClock;
use rollgit::config::{RawCluster, RawConfig, RawRepo, RawWebhook};
use rollgit::metrics::Metrics;
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Long enough that the poller never fires during a test: changes arrive only through the
/// trigger under test.
pub const INTERVAL: &str = "24h";
/// The webhook secret every test repository is configured with.
pub const SECRET: &str = "s3cret-webhook-key";

// ---------------------------------------------------------------------------------------------
// Git, as a user runs it.

/// A git working tree (a clone of a bare remote, or a standalone local repository).
pub struct GitRepo {
    pub dir: tempfile::TempDir,
    pub work: PathBuf,
    pub bare: Option<PathBuf>,
}

pub async fn git(cwd: &Path, home: &Path, args: &[&str]) -> String {
    let mut cmd = tokio::process::Command::new("git");
    cmd.current_dir(cwd)
        .env("HOME", home)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(WAIT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("git {args:?} did not finish within {WAIT:?}"))
        .expect("git runs");
    assert!(
        out.status.success(),
        "git {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl GitRepo {
    /// `git init --bare remote.git` and `git clone` it into `work`.
    pub async fn with_remote() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for git");
        let bare = dir.path().join("remote.git");
        let work = dir.path().join("work");
        let home = dir.path();
        git(
            home,
            home,
            &["init", "-q", "--bare", "-b", "main", "remote.git"],
        )
        .await;
        git(home, home, &["clone", "-q", "remote.git", "work"]).await;
        git(&work, home, &["symbolic-ref", "HEAD", "refs/heads/main"]).await;
        Self {
            dir,
            work,
            bare: Some(bare),
        }
    }

    /// `git init` of a standalone repository (followed as a local path, never pushed).
    pub async fn local() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory for git");
        let work = dir.path().join("work");
        git(
            dir.path(),
            dir.path(),
            &["init", "-q", "-b", "main", "work"],
        )
        .await;
        Self {
            dir,
            work,
            bare: None,
        }
    }

    /// What the daemon follows: the bare remote as a `file://` URL (fetched into a mirror), or
    /// the local repository's path (read in place, watched).
    pub fn url(&self) -> String {
        match &self.bare {
            Some(b) => format!("file://{}", b.display()),
            None => self.work.display().to_string(),
        }
    }

    pub fn write(&self, path: &str, content: &str) {
        let p = self.work.join(path);
        std::fs::create_dir_all(p.parent().expect("a file has a parent"))
            .expect("create directories");
        std::fs::write(&p, content).expect("write a file in the working tree");
    }

    pub async fn git(&self, args: &[&str]) -> String {
        git(&self.work, self.dir.path(), args).await
    }

    /// `git rm` (a file or, with `-r`, a directory).
    pub async fn rm(&self, path: &str) {
        self.git(&["rm", "-q", "-r", path]).await;
    }

    /// `git add -A && git commit`; returns the new commit's id.
    pub async fn commit(&self, message: &str) -> String {
        self.git(&["add", "-A"]).await;
        self.git(&[
            "-c",
            "user.name=Test User",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            "commit",
            "-q",
            "-m",
            message,
        ])
        .await;
        self.git(&["rev-parse", "HEAD"]).await
    }

    pub async fn push(&self) {
        self.git(&["push", "-q", "origin", "main"]).await;
    }

    /// Commit and push; returns the commit id.
    pub async fn commit_and_push(&self, message: &str) -> String {
        let c = self.commit(message).await;
        self.push().await;
        c
    }
}

/// One scenario's world: a dev cluster, a repository, and the daemon following it.
pub struct World {
    /// First, so it stops before the repository and cluster it follows go.
    pub daemon: rollgit::daemon::Running,
    pub cluster: TestCluster,
    pub client: kube::Client,
    pub git: GitRepo,
    pub repo: String,
    pub triggers: Triggers,
    pub metrics: Arc<Metrics>,
    /// The daemon's clock: it stands still until a test moves it ([`World::advance`]).
    pub clock: ManualClock,
    /// The daemon's configuration (for [`World::restart_daemon`]).
    pub config: rollgit::config::Config,
    pub _state: tempfile::TempDir,
}

impl World {
    /// Starts a dev cluster and the daemon following `git` (apps under `apps/*`). The daemon's
    /// first sync happens on start, as in production.
    pub async fn start(git: GitRepo) -> Self {
        Self::start_with(git, |_| {}).await
    }

    /// [`World::start`] with the dev cluster's configuration changed by `tweak` (after the
    /// 150 ms readiness delay is set).
    pub async fn start_with(
        git: GitRepo,
        tweak: impl FnOnce(&mut rollgit_devcluster::Config),
    ) -> Self {
        Self::start_configured(git, tweak, |_| {}).await
    }

    /// [`World::start_with`], with the repository's configuration changed by `repo_tweak`.
    pub async fn start_configured(
        git: GitRepo,
        tweak: impl FnOnce(&mut rollgit_devcluster::Config),
        repo_tweak: impl FnOnce(&mut RawRepo),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "rollgit=debug,rollgit_source=debug",
            ))
            .try_init();
        let cluster = TestCluster::start_with(|c| {
            c.simulation.ready_delay = Duration::from_millis(150);
            tweak(c);
        })
        .await;
        let client = cluster.client().await;
        let state = tempfile::tempdir().expect("temporary state directory");
        let secret_file = state.path().join("webhook-secret");
        std::fs::write(&secret_file, format!("{SECRET}\n")).expect("write the webhook secret");
        let repo = "deploy".to_string();
        let mut raw_repo = RawRepo {
            name: Some(repo.clone()),
            url: Some(git.url()),
            branch: Some("main".into()),
            paths: vec!["apps/*".into()],
            interval: Some(INTERVAL.into()),
            webhook: Some(RawWebhook {
                secret_file: Some(secret_file),
                secret_env: None,
            }),
            ..Default::default()
        };
        repo_tweak(&mut raw_repo);
        let config = RawConfig {
            repos: vec![raw_repo],
            clusters: vec![RawCluster {
                kubeconfig: Some(cluster.kubeconfig.clone()),
                ..Default::default()
            }],
            state_dir: Some(state.path().join("state")),
            ..Default::default()
        }
        .resolve("test")
        .expect("the test configuration is valid");
        let metrics = Arc::new(Metrics::new());
        let clock = ManualClock::starting_now();
        let daemon = start_daemon(&config, &metrics, &clock).await;
        Self {
            cluster,
            client,
            git,
            repo,
            triggers: daemon.triggers.clone(),
            metrics,
            clock,
            daemon,
            config,
            _state: state,
        }
    }

    /// Stops the daemon, then starts a new one with the same configuration, clock and
    /// metrics (as a restart or an upgrade of rollgit would).
    #[allow(dead_code)]
    pub async fn restart_daemon(self) -> Self {
        self.restart_daemon_with(async |_, _| {}).await
    }

    /// [`World::restart_daemon`], running `between` (with the cluster's client and the
    /// repository) while no daemon runs.
    #[allow(dead_code)]
    pub async fn restart_daemon_with(
        self,
        between: impl AsyncFnOnce(&kube::Client, &GitRepo),
    ) -> Self {
        let World {
            daemon,
            cluster,
            client,
            git,
            repo,
            triggers: _,
            metrics,
            clock,
            config,
            _state,
        } = self;
        daemon.shutdown().await;
        between(&client, &git).await;
        let daemon = start_daemon(&config, &metrics, &clock).await;
        Self {
            triggers: daemon.triggers.clone(),
            daemon,
            cluster,
            client,
            git,
            repo,
            metrics,
            clock,
            config,
            _state,
        }
    }

    /// Writes `path` in the working clone, commits and pushes it, and asks the daemon to fetch
    /// (as a webhook would). Returns the commit.
    pub async fn push(&self, path: &str, content: &str, message: &str) -> String {
        self.git.write(path, content);
        let commit = self.git.commit_and_push(message).await;
        self.trigger();
        commit
    }

    /// Asks the daemon to fetch, as the poller would.
    pub fn trigger(&self) {
        self.triggers
            .repos
            .get(&self.repo)
            .expect("the repository is configured")
            .0
            .notify();
    }

    /// Runs the built `rollgit` binary with `args` against the world's cluster (its kubeconfig
    /// appended), bounded by [`WAIT`]: exit code, stdout, stderr.
    pub async fn rollgit(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig)
            .env_remove("KUBECONFIG")
            .env("HOME", self.git.dir.path())
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

    /// Serves `rollgit::api::router` on a free loopback port.
    pub async fn serve_api(&self) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let router = rollgit::api::router(
            self.triggers.clone(),
            self.metrics.clone(),
            self.daemon.readiness.clone(),
        );
        tokio::spawn(async move { axum::serve(listener, router).await });
        addr
    }

    pub fn apps(&self) -> Api<DynamicObject> {
        self.apps_in("default")
    }

    /// The status objects (`applications.rollgit.dev`) of namespace `ns`.
    pub fn apps_in(&self, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            ns,
            &rollgit::record::status::application_resource(),
        )
    }

    pub fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        K::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), "default")
    }

    /// Waits (bounded by [`WAIT`], through a watch) until the Application `app` satisfies
    /// `cond` on its status, and returns it.
    pub async fn wait_app(&self, app: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        let found = wait_for(&self.apps(), app, what, |o: Option<&DynamicObject>| {
            o.is_some_and(|o| cond(&o.data["status"]))
        })
        .await
        .expect("the condition holds only for an existing object");
        found.data["status"].clone()
    }

    /// Waits until app `app` reports `commit` as applied, `running` and healthy.
    pub async fn wait_applied(&self, app: &str, commit: &str) -> Value {
        self.wait_app(app, &format!("{app} running at {commit}"), |s| {
            s["lastAppliedCommit"] == commit && s["phase"] == "running" && s["healthy"] == true
        })
        .await
    }

    /// `kubectl get app NAME`, as header and row cells.
    pub async fn kubectl_app_row(&self, app: &str) -> (Vec<String>, Vec<String>) {
        let out = self.cluster.kubectl_ok(&["get", "app", app]).await;
        let mut rows = table_columns(&out).into_iter();
        let header = rows.next().expect("a header row");
        let row = rows.next().expect("a row for the app");
        (header, row)
    }

    pub async fn resource_version<K>(&self, name: &str) -> String
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        self.api::<K>()
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("get {name}: {e}"))
            .meta()
            .resource_version
            .clone()
            .expect("a stored object has a resourceVersion")
    }
}

/// The daemon of `config`, in-process, on `clock`.
async fn start_daemon(
    config: &rollgit::config::Config,
    metrics: &Arc<Metrics>,
    clock: &ManualClock,
) -> rollgit::daemon::Running {
    rollgit::daemon::start(
        config,
        rollgit::daemon::Options {
            metrics: metrics.clone(),
            clock: Arc::new(clock.clone()),
            ..Default::default()
        },
    )
    .await
    .expect("the daemon starts")
}

/// Waits, through a watch bounded by [`WAIT`], until `cond` holds for the object `name`
/// (`None` while it does not exist). Panics with the last state seen when it does not.
pub async fn wait_for<K>(
    api: &Api<K>,
    name: &str,
    what: &str,
    cond: impl Fn(Option<&K>) -> bool,
) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    match tokio::time::timeout(WAIT, await_condition(api.clone(), name, cond)).await {
        Ok(r) => r.unwrap_or_else(|e| panic!("watching {name} ({what}): {e}")),
        Err(_) => {
            let now = api.get_opt(name).await;
            panic!("{what}: not within {WAIT:?}; {name} is now {now:#?}")
        }
    }
}

/// The first object of a (label-selected) watch that satisfies `pred`, bounded by `bound`.
pub async fn first_watched<K>(
    api: Api<K>,
    cfg: watcher::Config,
    bound: Duration,
    pred: impl Fn(&K) -> bool,
) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug + Send + 'static,
{
    let stream = watcher(api, cfg).applied_objects();
    let mut stream = std::pin::pin!(stream);
    tokio::time::timeout(bound, async {
        while let Some(o) = stream.next().await {
            if let Ok(o) = o
                && pred(&o)
            {
                return Some(o);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}
