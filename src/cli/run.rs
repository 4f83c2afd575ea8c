//! `rollgit run`: follow the configured repositories (or one given by flags) and keep the
//! clusters in their state until Ctrl-C or SIGTERM.

use rollgit::config::{Config, Flags, RawCluster, RawConfig, RawLeaderElection, RawRepo};
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `rollgit run` (and `rollgit diff`).
#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// Configuration file (repos, clusters, sync policy). Flags below are for the simple case.
    #[arg(long, conflicts_with_all = ["repo", "path", "kubeconfig"])]
    config: Option<PathBuf>,
    /// Repository URL (https, ssh, file) or local repository path.
    #[arg(long)]
    repo: Option<String>,
    /// The repository's name in rollgit (default: the last segment of its URL; `.` or a path
    /// ending in `/` takes the directory's name).
    #[arg(long, requires = "repo")]
    repo_name: Option<String>,
    /// Branch to follow.
    #[arg(long, default_value = "main")]
    branch: String,
    /// App directory or glob in the repository (repeatable; default: the whole repository).
    #[arg(long)]
    path: Vec<String>,
    /// Kubeconfig of the target cluster (default: in-cluster, $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
    /// Poll interval.
    #[arg(long, default_value = "30s")]
    interval: String,
    /// How long a rollout batch may take to become ready before the rollout fails and is rolled
    /// back (an Application's annotation `rollgit.dev/progress-deadline` overrides it).
    #[arg(long, default_value = "10m")]
    progress_deadline: String,
    /// Default namespace for namespaced objects.
    #[arg(long, default_value = "default")]
    namespace: String,
    /// Address for webhooks, /healthz and /metrics.
    #[arg(long)]
    listen: Option<String>,
    /// Directory for mirrors and state.
    #[arg(long, default_value = rollgit::config::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Create the namespaces the apps' objects go to when they do not exist
    /// (`sync.createNamespace: true`).
    #[arg(long)]
    create_namespace: bool,
    /// Install rollgit's CRDs at start (`false`: an admin installed them; rollgit only checks
    /// them, and needs no right to change CRDs). Overrides `installCrds` of the config.
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    install_crds: Option<bool>,
    /// Watch only these namespaces (comma-separated), so that a Role per namespace suffices
    /// (default: derived from the repositories' `allow`, else the whole cluster).
    #[arg(long, value_delimiter = ',')]
    watch_namespaces: Vec<String>,
    /// Elect a leader per shard with Leases: only the holder of a shard's Lease writes.
    #[arg(long)]
    leader_elect: bool,
    /// Split the repositories into this many shards, each with its own Lease (with
    /// `--leader-elect`).
    #[arg(long, requires = "leader_elect")]
    shards: Option<u32>,
    /// The namespace of the Leases (default: $POD_NAMESPACE, else `default`).
    #[arg(long, requires = "leader_elect")]
    lease_namespace: Option<String>,
    /// How long a Lease is valid after its last renewal.
    #[arg(long, requires = "leader_elect")]
    lease_duration: Option<String>,
    /// A leader that could not renew for this long stops writing (shorter than the lease
    /// duration).
    #[arg(long, requires = "leader_elect")]
    renew_deadline: Option<String>,
}

impl RunArgs {
    /// The configuration: the file's, or the one the flags describe.
    pub fn config(self) -> anyhow::Result<Config> {
        let leader_election = self.leader_elect.then(|| RawLeaderElection {
            enabled: Some(true),
            namespace: self.lease_namespace.clone(),
            shards: self.shards,
            lease_duration: self.lease_duration.clone(),
            renew_deadline: self.renew_deadline.clone(),
            ..Default::default()
        });
        let watch_namespaces =
            (!self.watch_namespaces.is_empty()).then(|| self.watch_namespaces.clone());
        if let Some(path) = &self.config {
            let mut raw = RawConfig::load(path)?;
            if self.install_crds.is_some() {
                raw.install_crds = self.install_crds;
            }
            if watch_namespaces.is_some() {
                raw.watch_namespaces = watch_namespaces;
            }
            if leader_election.is_some() {
                raw.leader_election = leader_election;
            }
            return Ok(raw.resolve(&path.display().to_string())?);
        }
        Ok(Flags {
            repo_name: self.repo_name,
            repo: self.repo,
            branch: Some(self.branch),
            paths: self.path,
            interval: Some(self.interval),
            namespace: Some(self.namespace),
            progress_deadline: Some(self.progress_deadline),
            kubeconfig: self.kubeconfig,
            context: self.context,
            listen: self.listen,
            state_dir: Some(self.state_dir),
            create_namespace: self.create_namespace,
            install_crds: self.install_crds,
            watch_namespaces,
            leader_election,
        }
        .resolve()?)
    }
}

impl RunArgs {
    /// The configuration of `rollgit diff`: from `--config` or `--repo` as for `run`; with
    /// neither, the repositories the apps' status objects in `--namespace` name (their URL,
    /// branch and directory, as the daemon that applies them recorded them), so `rollgit diff`
    /// works with no flags where the daemon runs (`rollgit up`).
    pub async fn diff_config(self) -> anyhow::Result<Config> {
        use anyhow::Context;
        if self.config.is_some() || self.repo.is_some() {
            return self.config();
        }
        let client = rollgit::k8s::client_for(
            "default",
            self.kubeconfig.as_deref(),
            self.context.as_deref(),
        )
        .await?;
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            client,
            &self.namespace,
            &rollgit::record::status::application_resource(),
        );
        let apps = api
            .list(&kube::api::ListParams::default())
            .await
            .with_context(|| {
                format!(
                    "listing the apps' status objects (applications.rollgit.dev) in namespace {} to find their repositories",
                    self.namespace
                )
            })?;
        let mut repos: std::collections::BTreeMap<String, RawRepo> = Default::default();
        for o in &apps.items {
            let source = &o.data["spec"]["source"];
            let text = |k: &str| source[k].as_str().map(str::to_string);
            let (Some(name), Some(url)) = (text("repo"), text("url")) else {
                continue;
            };
            let r = repos.entry(name.clone()).or_insert_with(|| RawRepo {
                name: Some(name),
                url: Some(url),
                branch: text("branch"),
                // The repository's namespace as the daemon recorded it (the status object
                // may live in a KubeVela Application's namespace).
                namespace: Some(text("namespace").unwrap_or_else(|| self.namespace.clone())),
                ..RawRepo::default()
            });
            // An app at the repository's root is the whole repository (no paths).
            if let Some(path) = text("path").filter(|p| !p.is_empty())
                && !r.paths.contains(&path)
            {
                r.paths.push(path);
            }
        }
        anyhow::ensure!(
            !repos.is_empty(),
            "no app in namespace {} names its repository (no applications.rollgit.dev there): give the repository with --repo or --config",
            self.namespace
        );
        Ok(RawConfig {
            repos: repos.into_values().collect(),
            clusters: vec![RawCluster {
                name: Some("default".into()),
                kubeconfig: self.kubeconfig,
                context: self.context,
                labels: Default::default(),
            }],
            state_dir: Some(self.state_dir),
            ..RawConfig::default()
        }
        .resolve("the apps' status objects")?)
    }
}

/// `rollgit run`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.config()?;
    rollgit::daemon::run(&cfg, Default::default(), super::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}
