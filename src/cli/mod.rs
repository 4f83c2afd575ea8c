//! The command line, at the edge: one file per command, each with its arguments and its
//! `run`; the flags several commands share are here. Commands use the stages (`rollgit::…`);
//! no stage uses a command.

pub mod app_status;
pub mod approve;
pub mod argo_view;
pub mod clusters;
pub mod completion;
pub mod crds;

pub mod devcluster;
pub mod diff;
pub mod gates;
pub mod get;
pub mod get_object;
pub mod history;
pub mod kruise_view;
pub mod plan;
pub mod promotion;
pub mod rollback;
pub mod rollout_status;
pub mod run;
pub mod status;
pub mod suspend;
pub mod sync;
pub mod table;
pub mod up;
pub mod workflow;

use anyhow::Context;
use clap::{Parser, Subcommand};
use rollgit::config::{Config, Flags, RawConfig};
use rollgit::record::history::Source;
use rollgit::record::revert::Writer;
use std::path::PathBuf;

/// rollgit's command line.
#[derive(Parser, Debug)]
#[command(
    name = "rollgit",
    version,
    about = "GitOps reconciler: Git to cluster, with batched and canary rollouts"
)]
pub struct Cli {
    /// Log format on stderr: `text` (colored only on a terminal, and never with NO_COLOR set)
    /// or `json` (one object per line).
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "ROLLGIT_LOG_FORMAT"
    )]
    pub log_format: LogFormat,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// How log lines are written.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (`timestamp`, `level`, `target`, `fields.message`, fields).
    Json,
}

/// Output format of the commands that read state (`status`, `get rollouts`, `history`,
/// `rollout status`).
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Output {
    /// kubectl-style tables and lines.
    #[default]
    Table,
    /// One JSON document (the shape is documented in the README).
    Json,
    /// The same document as YAML.
    Yaml,
}

impl Output {
    /// True for the machine-readable formats.
    pub fn is_document(self) -> bool {
        self != Output::Table
    }

    /// Prints `doc` on stdout in this format (`Table`: nothing; the command prints its table).
    pub fn print(self, doc: &serde_json::Value) -> anyhow::Result<()> {
        match self {
            Output::Table => {}
            Output::Json => println!("{}", serde_json::to_string_pretty(doc)?),
            Output::Yaml => print!("{}", serde_saphyr::to_string(doc)?),
        }
        Ok(())
    }
}

/// The commands.
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run a Kubernetes-compatible development API server.
    Devcluster(devcluster::DevclusterArgs),
    /// Start the embedded dev cluster and print how to use it.
    Up(up::UpArgs),
    /// Show what a rollout spec (KubeVela, Argo Rollouts, OpenKruise) does at each step.
    Plan(plan::PlanArgs),
    /// Follow Git repositories and keep a cluster in their state.
    Run(run::RunArgs),
    /// Show the apps rollgit manages and what it recorded for them (read from the cluster).
    Status(status::StatusArgs),
    /// Fetch and apply an app now, and wait for the result (exit 0 synced, 1 failed, 3 no
    /// answer in time).
    Sync(sync::SyncArgs),
    /// Stop syncing an app (no apply, no drift correction) until `rollgit resume APP`, through
    /// its status object (as `flux suspend`); its PHASE becomes `suspended`.
    Suspend(suspend::SuspendArgs),
    /// Sync a suspended app again, and wait for the result (exit 0 synced, 1 failed, 3 no
    /// answer in time).
    Resume(suspend::SuspendArgs),
    /// Show what applying Git's head would change in the cluster (exit 1 when it differs).
    Diff(run::RunArgs),
    /// List resources rollgit keeps in the cluster: `rollgit get rollouts`.
    Get(get::GetArgs),
    /// Follow the rollouts of an app (batched, Argo, Kruise): `rollgit rollout status APP`.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// Approve an OpenKruise Rollout's paused step (as `kubectl-kruise rollout approve`). Exit 1
    /// when it is not waiting for approval.
    Approve(approve::ApproveArgs),
    /// The commits that changed an app's directory, with what the cluster did with each.
    History(history::HistoryArgs),
    /// Return an app's directory to an earlier commit's state: one revert commit, pushed.
    /// Exit 1 when it cannot (unknown revision or commit, conflicting revert).
    Rollback(rollback::RollbackArgs),
    /// Print rollgit's CustomResourceDefinitions (for clusters where an admin installs them).
    Crds(crds::CrdsArgs),
    /// Promote an Argo Rollouts canary (or every one of an app): past its pause, or with
    /// --full to the end, as `kubectl argo rollouts promote`.
    Promote(gates::PromoteArgs),
    /// Abort an Argo Rollouts canary: traffic and replicas back to stable (rollgit, as its
    /// controller, then reverts the canary's commits in Git).
    Abort(gates::GateArgs),
    /// Retry an aborted Argo Rollouts canary from its first step.
    Retry(gates::GateArgs),
    /// Print a shell completion script: `rollgit completion bash > /etc/bash_completion.d/rollgit`.
    Completion(completion::CompletionArgs),
    /// Act on an app's multi-cluster workflow (KubeVela `Workflow`, seed 003).
    #[command(subcommand)]
    Workflow(workflow::WorkflowCommand),
    /// The fleet: the configuration's clusters, reachability and version.
    Clusters(clusters::ClustersArgs),
    /// PR-based promotion between stages: `rollgit promotion status APP`.
    #[command(subcommand)]
    Promotion(promotion::PromotionCommand),
    /// Open the promotion pull request into a stage now (soak skipped, recorded as manual).
    /// Exit 0 opened (or nothing to promote), 1 refused (held, conflict), 3 no answer in time.
    PromoteStage(promotion::PromoteStageArgs),
}

/// `rollgit rollout ...`.
#[derive(Subcommand, Debug)]
pub enum RolloutCommand {
    /// Progress of an app's rollouts (batches, Argo canary steps, Kruise steps). Exit 0 when
    /// all succeeded (for their latest spec), 1 when one failed or none exists, 3 when one has
    /// not finished (or --watch timed out), 2 on other errors.
    Status(rollout_status::RolloutStatusArgs),
}

/// Which cluster to talk to.
#[derive(clap::Args, Debug, Clone)]
pub struct KubeArgs {
    /// Kubeconfig (default: in-cluster, $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    pub context: Option<String>,
}

impl KubeArgs {
    /// A client for the cluster these flags name.
    pub async fn client(&self) -> anyhow::Result<kube::Client> {
        Ok(rollgit::k8s::client_for(
            "default",
            self.kubeconfig.as_deref(),
            self.context.as_deref(),
        )
        .await?)
    }

    fn given(&self) -> bool {
        self.kubeconfig.is_some() || self.context.is_some()
    }
}

/// Which repository an app comes from (as for `rollgit run`), and where its status is.
#[derive(clap::Args, Debug)]
pub struct RepoSelectArgs {
    /// Configuration file of `rollgit run`: the app's repository is the one its status object
    /// names (or --repo-name).
    #[arg(long, conflicts_with = "repo")]
    config: Option<PathBuf>,
    /// With --config: the name of the app's repository.
    #[arg(long, requires = "config")]
    repo_name: Option<String>,
    /// Repository URL (https, ssh, file) or local repository path (default: the one the app's
    /// status object names, `spec.source.url`, with its branch and directory).
    #[arg(long)]
    repo: Option<String>,
    /// Branch (with --repo; default `main`, or without --repo the one the app's status object
    /// names).
    #[arg(long)]
    branch: Option<String>,
    /// Directory for mirrors and state (default: the configuration's stateDir, else .rollgit).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Namespace of the app's status object and Rollouts.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    kube: KubeArgs,
}

impl RepoSelectArgs {
    /// The cluster client, namespace and repository of `app`.
    pub async fn source(&self, app: &str) -> anyhow::Result<(kube::Client, String, Source)> {
        if self.config.is_none() && self.repo.is_none() {
            return self.source_from_status(app).await;
        }
        let cfg: Config = match &self.config {
            Some(path) => RawConfig::load(path)?.resolve(&path.display().to_string())?,
            None => Flags {
                repo: self.repo.clone(),
                branch: Some(self.branch.clone().unwrap_or_else(|| "main".into())),
                namespace: Some(self.namespace.clone()),
                kubeconfig: self.kube.kubeconfig.clone(),
                context: self.kube.context.clone(),
                state_dir: self.state_dir.clone(),
                ..Flags::default()
            }
            .resolve()?,
        };
        let state_dir = self.state_dir.clone().unwrap_or(cfg.state_dir.clone());
        let names = || {
            cfg.repos
                .iter()
                .map(|r| r.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let find = |name: &str| cfg.repos.iter().position(|r| r.name == name);
        let known = match (&self.config, &self.repo_name) {
            (None, _) => Some(0),
            (Some(_), Some(name)) => Some(find(name).with_context(|| {
                format!(
                    "no repository named {name:?} in the configuration (it has: {})",
                    names()
                )
            })?),
            (Some(_), None) => None,
        };
        let client = if self.kube.given() {
            self.kube.client().await?
        } else if let Some(i) = known {
            cfg.clusters[cfg.repos[i].cluster].client().await?
        } else if cfg.clusters.len() == 1 {
            cfg.clusters[0].client().await?
        } else {
            anyhow::bail!(
                "the configuration has several clusters: name the app's repository with --repo-name, or the cluster with --kubeconfig/--context"
            );
        };
        let namespace = self.namespace.clone();
        let ix = match known {
            Some(i) => i,
            None => {
                let view = rollgit::record::history::read_app(&client, &namespace, app).await?;
                let name = view.repo.with_context(|| {
                    format!("the status of app {app} names no repository: use --repo-name")
                })?;
                find(&name).with_context(|| {
                    format!(
                        "app {app} comes from repository {name:?}, which the configuration does not have (it has: {})",
                        names()
                    )
                })?
            }
        };
        let repo = &cfg.repos[ix];
        let source = Source {
            writer: Writer::of(repo, state_dir.join("repos")),
            roots: repo.paths.clone(),
            // Where the daemon renders the app: the repository's namespace (the app's
            // status object is in its KubeVela Application's, given with -n).
            namespace: if self.config.is_some() {
                repo.namespace.clone()
            } else {
                namespace.clone()
            },
        };
        Ok((client, namespace, source))
    }
}

impl RepoSelectArgs {
    /// Without --config or --repo: the repository, branch and directory the app's status
    /// object names (as the daemon that applies it recorded them), so `history`, `rollback`
    /// and `diff` work with no flags where the daemon runs (`rollgit up`).
    async fn source_from_status(
        &self,
        app: &str,
    ) -> anyhow::Result<(kube::Client, String, Source)> {
        let client = self.kube.client().await?;
        let namespace = self.namespace.clone();
        let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
            client.clone(),
            &namespace,
            &rollgit::record::status::application_resource(),
        );
        let o = api
            .get_opt(app)
            .await
            .with_context(|| format!("reading the status object of app {app} in namespace {namespace}"))?
            .with_context(|| {
                format!(
                    "no app named {app:?} in namespace {namespace} (rollgit records each app it applies as applications.rollgit.dev): give its repository with --repo or --config"
                )
            })?;
        let source = &o.data["spec"]["source"];
        let text = |k: &str| {
            source[k]
                .as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
        };
        let url = text("url").with_context(|| {
            format!(
                "the status of app {app} names no repository URL: give it with --repo or --config"
            )
        })?;
        // The repository's namespace, where the daemon renders the app (the status object
        // may live in the KubeVela Application's).
        let repo_namespace = text("namespace").unwrap_or_else(|| namespace.clone());
        let cfg = Flags {
            repo_name: text("repo"),
            repo: Some(url),
            branch: self.branch.clone().or_else(|| text("branch")),
            paths: text("path").into_iter().collect(),
            namespace: Some(repo_namespace.clone()),
            kubeconfig: self.kube.kubeconfig.clone(),
            context: self.kube.context.clone(),
            state_dir: self.state_dir.clone(),
            ..Flags::default()
        }
        .resolve()
        .with_context(|| format!("the repository the status of app {app} names"))?;
        let repo = &cfg.repos[0];
        let state_dir = self.state_dir.clone().unwrap_or(cfg.state_dir.clone());
        let source = Source {
            writer: Writer::of(repo, state_dir.join("repos")),
            roots: repo.paths.clone(),
            namespace: repo_namespace,
        };
        Ok((client, namespace, source))
    }
}

/// The default log filter of the long-running commands (`run`, `up`, `devcluster`): rollgit's
/// own info lines (each sync, rollout step, rollback and revert), only warnings of the
/// libraries it uses.
pub const DAEMON_LOG: &str = "warn,rollgit=info";
/// The default log filter of the one-shot commands: warnings only (their output is on stdout).
pub const COMMAND_LOG: &str = "warn";

/// Whether log lines may carry ANSI colors: only on a terminal, and never when `NO_COLOR` is
/// set to a non-empty value (<https://no-color.org>).
pub fn colors_allowed(terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// Logs to stderr at `ROLLGIT_LOG` (default `default_filter`), as text or JSON lines.
pub fn init_logging(format: LogFormat, default_filter: &str) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("ROLLGIT_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder
            .with_ansi(colors_allowed(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            ))
            .init(),
        LogFormat::Json => builder
            .json()
            .with_ansi(false)
            .with_current_span(false)
            .init(),
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colors_only_on_a_terminal_without_no_color() {
        let cases = [
            ("terminal", true, None, true),
            ("not a terminal", false, None, false),
            ("NO_COLOR=1", true, Some("1"), false),
            ("NO_COLOR empty is unset", true, Some(""), true),
            ("NO_COLOR, not a terminal", false, Some("1"), false),
        ];
        for (name, terminal, no_color, want) in cases {
            assert_eq!(
                colors_allowed(terminal, no_color.map(OsStr::new)),
                want,
                "{name}"
            );
        }
    }

    #[test]
    fn documents_print_as_json_and_yaml() {
        let doc = serde_json::json!({"apps": [{"name": "shop", "healthy": true}]});
        assert!(Output::Json.is_document() && Output::Yaml.is_document());
        assert!(!Output::Table.is_document());
        let yaml = serde_saphyr::to_string(&doc).expect("yaml");
        let back: serde_json::Value = serde_saphyr::from_str(&yaml).expect("parses back");
        assert_eq!(back, doc);
    }
}
