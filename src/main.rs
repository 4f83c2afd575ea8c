//! rollgit: a GitOps reconciler daemon. This is the command-line edge (the I/O shell).

use anyhow::Context;
use clap::{Parser, Subcommand};
use rollgit::{api, config, daemon, demo, diff, history, metrics, plan, rollout_cli};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "rollgit",
    version,
    about = "GitOps reconciler: Git to cluster, with batched and canary rollouts"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a Kubernetes-compatible development API server.
    Devcluster(DevclusterArgs),
    /// Start the embedded dev cluster and print how to use it.
    Up(UpArgs),
    /// Show what a rollout spec (KubeVela, Argo Rollouts, OpenKruise) does at each step.
    Plan(plan::PlanArgs),
    /// Follow Git repositories and keep a cluster in their state.
    Run(RunArgs),
    /// Show the apps rollgit manages and what it recorded for them (read from the cluster).
    Status(StatusArgs),
    /// Show what applying Git's head would change in the cluster (exit 1 when it differs).
    Diff(RunArgs),
    /// List resources rollgit keeps in the cluster: `rollgit get rollouts`.
    Get(GetArgs),
    /// Follow the batched rollouts of an app: `rollgit rollout status APP`.
    #[command(subcommand)]
    Rollout(RolloutCommand),
    /// The commits that changed an app's directory, with what the cluster did with each.
    History(HistoryArgs),
    /// Return an app's directory to an earlier commit's state: one revert commit, pushed.
    /// Exit 1 when it cannot (unknown revision or commit, conflicting revert).
    Rollback(RollbackArgs),
}

/// Which repository an app comes from (as for `rollgit run`), and where its status is.
#[derive(clap::Args, Debug)]
struct RepoSelectArgs {
    /// Configuration file of `rollgit run`: the app's repository is the one its status object
    /// names (or --repo-name).
    #[arg(long, conflicts_with = "repo")]
    config: Option<PathBuf>,
    /// With --config: the name of the app's repository.
    #[arg(long, requires = "config")]
    repo_name: Option<String>,
    /// Repository URL (https, ssh, file) or local repository path.
    #[arg(long, required_unless_present = "config")]
    repo: Option<String>,
    /// Branch (with --repo).
    #[arg(long, default_value = "main")]
    branch: String,
    /// Directory for mirrors and state (default: the configuration's stateDir, else .rollgit).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Namespace of the app's status object and Rollouts.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    kube: KubeArgs,
}

#[derive(clap::Args, Debug)]
struct HistoryArgs {
    /// The app (its directory's name, as `rollgit status` lists it).
    app: String,
    /// How many commits to list (newest first).
    #[arg(long, default_value_t = history::DEFAULT_MAX)]
    max: usize,
    #[command(flatten)]
    source: RepoSelectArgs,
}

#[derive(clap::Args, Debug)]
struct RollbackArgs {
    /// The app.
    app: String,
    /// The component whose rollout decides the commit (without --to), or whose revision --to
    /// names.
    #[arg(long)]
    component: Option<String>,
    /// The state to return to: a commit (at least 7 hex digits) on the branch's first-parent
    /// line, or a component revision (`web-v1`). Default: the stable commit of a failed or
    /// unfinished rollout, else the state before the app's newest commit.
    #[arg(long, value_name = "REVISION|COMMIT")]
    to: Option<String>,
    /// Print the diff and the commits that would be reverted; push nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    source: RepoSelectArgs,
}

/// Which cluster to talk to.
#[derive(clap::Args, Debug)]
struct KubeArgs {
    /// Kubeconfig (default: in-cluster, $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
}

impl KubeArgs {
    async fn client(&self) -> anyhow::Result<kube::Client> {
        rollgit::kubeclient::client_for(&config::Cluster {
            name: "default".into(),
            kubeconfig: self.kubeconfig.clone(),
            context: self.context.clone(),
        })
        .await
    }
}

#[derive(clap::Args, Debug)]
struct GetArgs {
    /// What to list: `rollouts` (rollouts.rollgit.dev; `rollout` works too).
    #[arg(value_parser = ["rollouts", "rollout"])]
    resource: String,
    /// Namespace (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    namespace: Option<String>,
    /// List across all namespaces (adds a NAMESPACE column).
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    #[command(flatten)]
    kube: KubeArgs,
}

#[derive(Subcommand, Debug)]
enum RolloutCommand {
    /// Per-batch progress of an app's rollouts. Exit 0 when all succeeded (for their latest
    /// spec), 1 when one failed or none exists, 3 when one has not finished (or --watch timed
    /// out), 2 on other errors.
    Status(RolloutStatusArgs),
}

#[derive(clap::Args, Debug)]
struct RolloutStatusArgs {
    /// The app (its Rollouts carry the label rollgit.dev/app=APP).
    app: String,
    /// Only this component's Rollout.
    component: Option<String>,
    /// Namespace of the Rollouts (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    namespace: Option<String>,
    /// Follow the rollouts (through a watch) until each has succeeded or failed.
    #[arg(short, long)]
    watch: bool,
    /// How long --watch waits before giving up with exit code 3 (0: no limit).
    #[arg(long, default_value = "10m", value_parser = config::parse_duration)]
    timeout: std::time::Duration,
    #[command(flatten)]
    kube: KubeArgs,
}

#[derive(clap::Args, Debug)]
struct StatusArgs {
    /// One app, with its details.
    app: Option<String>,
    /// Namespace of the apps' status objects.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Kubeconfig (default: in-cluster, $KUBECONFIG or ~/.kube/config).
    #[arg(long)]
    kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    #[arg(long)]
    context: Option<String>,
}

#[derive(clap::Args, Debug)]
struct RunArgs {
    /// Configuration file (repos, clusters, sync policy). Flags below are for the simple case.
    #[arg(long, conflicts_with_all = ["repo", "path", "kubeconfig"])]
    config: Option<PathBuf>,
    /// Repository URL (https, ssh, file) or local repository path.
    #[arg(long)]
    repo: Option<String>,
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
    #[arg(long, default_value = ".rollgit")]
    state_dir: PathBuf,
}

#[derive(clap::Args, Debug)]
struct DevclusterArgs {
    /// Address to listen on (loopback; port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Where to write the kubeconfig for this cluster.
    #[arg(long)]
    kubeconfig: PathBuf,
    /// Keep objects in this directory so they survive a restart (in memory otherwise).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Pods with a container image matching PATTERN never become Ready (CrashLoopBackOff).
    /// A pattern with `*` or `?` is a glob over the whole image (`*:bad`), otherwise a substring.
    /// Repeatable. At run time: the ConfigMap `kube-system/devcluster-faults` (key `fail-images`)
    /// or the Pod annotation `devcluster.rollgit.dev/fail: crash|after=30s`.
    #[arg(long = "fail-image", value_name = "PATTERN")]
    fail_images: Vec<String>,
    /// How long a Pod takes to become Ready (per Pod: annotation `devcluster.rollgit.dev/ready-after`).
    #[arg(long, default_value = "1s", value_parser = humantime_duration)]
    ready_delay: std::time::Duration,
    /// Number of simulated Nodes (`devcluster-node-1` ..).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Serve the API only: no simulated controllers, kubelet or nodes.
    #[arg(long)]
    no_simulation: bool,
}

fn humantime_duration(s: &str) -> Result<std::time::Duration, String> {
    rollgit_devcluster::controllers::parse_duration(s)
}

#[derive(clap::Args, Debug)]
struct UpArgs {
    /// Address the embedded dev cluster listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory for rollgit's state (the dev cluster's data, its kubeconfig, the demo repository).
    #[arg(long, default_value = ".rollgit")]
    state_dir: PathBuf,
    /// Address of rollgit's webhook and metrics endpoint.
    #[arg(long, default_value = "127.0.0.1:9090")]
    api_listen: SocketAddr,
}

async fn wait_for_shutdown() {
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

async fn devcluster(args: DevclusterArgs) -> anyhow::Result<()> {
    let cluster = rollgit_devcluster::DevCluster::start(rollgit_devcluster::Config {
        listen: args.listen,
        kubeconfig: Some(args.kubeconfig.clone()),
        data_dir: args.data_dir,
        simulation: rollgit_devcluster::controllers::SimConfig {
            enabled: !args.no_simulation,
            ready_delay: args.ready_delay,
            nodes: rollgit_devcluster::controllers::default_nodes(args.nodes),
            fail_images: args.fail_images,
            ..Default::default()
        },
        ..Default::default()
    })
    .await
    .context("starting the dev cluster")?;
    println!(
        "dev cluster listening on {}; kubeconfig written to {}",
        cluster.url(),
        args.kubeconfig.display()
    );
    wait_for_shutdown().await;
    cluster.shutdown().await;
    Ok(())
}

async fn up(args: UpArgs) -> anyhow::Result<()> {
    let kubeconfig = args.state_dir.join("kubeconfig");
    let cluster = rollgit_devcluster::DevCluster::start(rollgit_devcluster::Config {
        listen: args.listen,
        kubeconfig: Some(kubeconfig.clone()),
        data_dir: Some(args.state_dir.join("devcluster")),
        ..Default::default()
    })
    .await
    .context("starting the embedded dev cluster")?;
    let repo_dir = args.state_dir.join("demo-repo");
    let created = demo::ensure_repo(&repo_dir)?;
    let repo_dir = std::fs::canonicalize(&repo_dir).unwrap_or(repo_dir);
    let kc = std::fs::canonicalize(&kubeconfig).unwrap_or(kubeconfig);
    let cfg = config::RawConfig {
        repos: vec![config::RawRepo {
            name: Some("demo".into()),
            url: Some(repo_dir.display().to_string()),
            branch: Some("main".into()),
            paths: vec!["apps/*".into()],
            interval: Some("30s".into()),
            ..Default::default()
        }],
        clusters: vec![config::RawCluster {
            name: Some("dev".into()),
            kubeconfig: Some(kc.clone()),
            context: None,
        }],
        listen: Some(args.api_listen.to_string()),
        state_dir: Some(args.state_dir.clone()),
        ..Default::default()
    }
    .resolve("up")?;
    println!(
        "rollgit is up: dev cluster at {}, following {}",
        cluster.url(),
        repo_dir.display()
    );
    if created {
        println!("(created the demo repository from examples-repo/)");
    }
    println!();
    println!("Watch what rollgit applied:");
    println!("  export KUBECONFIG={}", kc.display());
    println!(
        "  kubectl get applications.rollgit.dev     # NAME COMPONENT TYPE PHASE HEALTHY STATUS AGE"
    );
    println!("  kubectl get deploy,svc,clonesets -w");
    println!();
    println!("Commit a change and watch it land (a file-system watch notices it within a second):");
    println!("  cd {}", repo_dir.display());
    println!("  sed -i 's/replicas: 3/replicas: 5/' apps/guestbook/deployment.yaml");
    println!("  git commit -am 'guestbook: 5 replicas'");
    println!();
    println!(
        "Roll out a new image in batches (2 pods, then 3, each batch waiting for ready pods):"
    );
    println!("  sed -i 's/podinfo:4.0.3/podinfo:5.0.2/' apps/express-server/app.yaml");
    println!("  git commit -am 'express-server: podinfo 5.0.2'");
    println!(
        "  kubectl get rollout express-server -w   # TARGET UPGRADED READY BATCH-STATE ROLLING-STATE"
    );
    println!();
    println!("Drift is corrected: try `kubectl scale deploy guestbook --replicas=1`.");
    println!(
        "Webhooks: http://{}/hooks/{{github|gitlab|gitea|generic}}/demo, metrics: /metrics. Ctrl-C stops.",
        args.api_listen
    );
    let result = serve_daemon(cfg).await;
    cluster.shutdown().await;
    result
}

fn resolve_run_config(args: RunArgs) -> anyhow::Result<config::Config> {
    if let Some(path) = &args.config {
        return Ok(config::RawConfig::load(path)?.resolve(&path.display().to_string())?);
    }
    let raw = config::RawConfig {
        repos: vec![config::RawRepo {
            url: args.repo,
            branch: Some(args.branch),
            paths: args.path,
            interval: Some(args.interval),
            namespace: Some(args.namespace),
            ..Default::default()
        }],
        clusters: vec![config::RawCluster {
            name: Some("default".into()),
            kubeconfig: args.kubeconfig,
            context: args.context,
        }],
        sync: config::RawSync {
            progress_deadline: Some(args.progress_deadline),
            ..Default::default()
        },
        listen: args.listen,
        state_dir: Some(args.state_dir),
    };
    Ok(raw.resolve("flags")?)
}

/// Runs the daemon until a shutdown signal.
async fn serve_daemon(cfg: config::Config) -> anyhow::Result<()> {
    let metrics = std::sync::Arc::new(metrics::Metrics::new());
    let triggers = daemon::start(&cfg, metrics.clone()).await?;
    if let Some(addr) = cfg.listen {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("listening on {addr}"))?;
        let app = api::router(triggers, metrics);
        tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "webhook server stopped");
            }
        });
        tracing::info!(%addr, "webhooks at /hooks/{{provider}}/{{repo}}, metrics at /metrics");
    }
    wait_for_shutdown().await;
    Ok(())
}

async fn status(args: StatusArgs) -> anyhow::Result<()> {
    let client = rollgit::kubeclient::client_for(&config::Cluster {
        name: "default".into(),
        kubeconfig: args.kubeconfig,
        context: args.context,
    })
    .await?;
    let api: kube::Api<kube::api::DynamicObject> = kube::Api::namespaced_with(
        client,
        &args.namespace,
        &rollgit::apply::status::application_resource(),
    );
    let list = api
        .list(&kube::api::ListParams::default())
        .await
        .context("listing applications.rollgit.dev (is rollgit installed in this cluster?)")?;
    let mut rows = vec![
        [
            "NAME",
            "COMPONENT",
            "TYPE",
            "PHASE",
            "HEALTHY",
            "STATUS",
            "COMMIT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for a in &list.items {
        let name = a.metadata.name.clone().unwrap_or_default();
        if args.app.as_ref().is_some_and(|w| *w != name) {
            continue;
        }
        let s = &a.data["status"];
        let text =
            |v: &serde_json::Value| v.as_str().map(str::to_string).unwrap_or_else(|| "-".into());
        let commit = s["lastAppliedCommit"]
            .as_str()
            .map(|c| c.chars().take(12).collect())
            .unwrap_or_else(|| "-".into());
        rows.push(vec![
            name.clone(),
            text(&s["component"]),
            text(&s["componentType"]),
            text(&s["phase"]),
            s["healthy"]
                .as_bool()
                .map(|b| b.to_string())
                .unwrap_or_else(|| "-".into()),
            s["message"].as_str().unwrap_or("").to_string(),
            commit,
        ]);
        if args.app.is_some() {
            println!("app:                 {name}");
            println!("last applied commit: {}", text(&s["lastAppliedCommit"]));
            println!("last attempted:      {}", text(&s["lastAttemptedCommit"]));
            println!("publishVersion:      {}", text(&s["publishVersion"]));
            println!(
                "objects:             {}",
                s["inventory"]["entries"].as_array().map_or(0, Vec::len)
            );
            println!(
                "drift corrections:   {}",
                s["driftCorrections"].as_u64().unwrap_or(0)
            );
            for e in s["lastError"].as_array().into_iter().flatten() {
                println!("error:               {}", e.as_str().unwrap_or_default());
            }
            println!();
        }
    }
    if args.app.is_some() && rows.len() == 1 {
        anyhow::bail!(
            "no app named {:?} in namespace {}",
            args.app.unwrap_or_default(),
            args.namespace
        );
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", line.join("   ").trim_end());
    }
    Ok(())
}

/// `rollgit get rollouts`.
async fn get(args: GetArgs) -> anyhow::Result<()> {
    let client = args.kube.client().await?;
    let namespace = args
        .namespace
        .unwrap_or_else(|| client.default_namespace().to_string());
    let items = rollout_cli::list_rollouts(&client, &namespace, args.all_namespaces).await?;
    if items.is_empty() {
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {namespace} namespace.");
        }
        return Ok(());
    }
    let now = k8s_openapi::jiff::Timestamp::now();
    print!(
        "{}",
        rollout_cli::rollouts_table(&items, args.all_namespaces, now)
    );
    Ok(())
}

/// `rollgit rollout status`: the exit code of the rollouts' verdict.
async fn rollout_status(args: RolloutStatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.kube.client().await?;
    let opts = rollout_cli::StatusOptions {
        namespace: args
            .namespace
            .unwrap_or_else(|| client.default_namespace().to_string()),
        app: args.app,
        component: args.component,
        watch: args.watch,
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
    };
    match rollout_cli::rollout_status(&client, &opts).await {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(e @ rollout_cli::RolloutCliError::NotFound { .. }) => {
            eprintln!("error: {e}");
            Ok(ExitCode::from(rollout_cli::EXIT_FAILED))
        }
        Err(e) => Err(e.into()),
    }
}

/// The cluster client, namespace and repository of `rollgit history` and `rollgit rollback`.
async fn app_source(
    sel: &RepoSelectArgs,
    app: &str,
) -> anyhow::Result<(kube::Client, String, history::Source)> {
    let flags_cluster = sel.kube.kubeconfig.is_some() || sel.kube.context.is_some();
    let cfg = match &sel.config {
        Some(path) => config::RawConfig::load(path)?.resolve(&path.display().to_string())?,
        None => config::RawConfig {
            repos: vec![config::RawRepo {
                url: sel.repo.clone(),
                branch: Some(sel.branch.clone()),
                namespace: Some(sel.namespace.clone()),
                ..Default::default()
            }],
            clusters: vec![config::RawCluster {
                name: Some("default".into()),
                kubeconfig: sel.kube.kubeconfig.clone(),
                context: sel.kube.context.clone(),
            }],
            state_dir: sel.state_dir.clone(),
            ..Default::default()
        }
        .resolve("flags")?,
    };
    let state_dir = sel.state_dir.clone().unwrap_or(cfg.state_dir.clone());
    let names = || {
        cfg.repos
            .iter()
            .map(|r| r.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let find = |name: &str| cfg.repos.iter().position(|r| r.name == name);
    let known = match (&sel.config, &sel.repo_name) {
        (None, _) => Some(0),
        (Some(_), Some(name)) => Some(find(name).with_context(|| {
            format!(
                "no repository named {name:?} in the configuration (it has: {})",
                names()
            )
        })?),
        (Some(_), None) => None,
    };
    let cluster = if flags_cluster {
        config::Cluster {
            name: "default".into(),
            kubeconfig: sel.kube.kubeconfig.clone(),
            context: sel.kube.context.clone(),
        }
    } else if let Some(i) = known {
        cfg.clusters[cfg.repos[i].cluster].clone()
    } else if cfg.clusters.len() == 1 {
        cfg.clusters[0].clone()
    } else {
        anyhow::bail!(
            "the configuration has several clusters: name the app's repository with --repo-name, or the cluster with --kubeconfig/--context"
        );
    };
    let client = rollgit::kubeclient::client_for(&cluster).await?;
    let namespace = sel.namespace.clone();
    let ix = match known {
        Some(i) => i,
        None => {
            let view = history::read_app(&client, &namespace, app).await?;
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
    let source = history::Source {
        spec: daemon::repo_spec(repo),
        cache: state_dir.join("repos"),
        identity: repo.identity.clone(),
        roots: repo.paths.clone(),
        namespace: namespace.clone(),
    };
    Ok((client, namespace, source))
}

/// Exit 1 for what the user asked that cannot be done, the error otherwise (exit 2).
fn refusal(e: history::HistoryError) -> anyhow::Result<ExitCode> {
    if !e.is_refusal() {
        return Err(e.into());
    }
    match &e {
        history::HistoryError::Write(rollgit_source::write::WriteError::Conflict {
            paths, ..
        }) => {
            eprintln!(
                "error: the revert conflicts with newer commits in {}; nothing was pushed (resolve it by hand, or choose another --to)",
                paths.join(", ")
            );
        }
        _ => eprintln!("error: {e}"),
    }
    Ok(ExitCode::from(1))
}

/// `rollgit history`.
async fn history_cmd(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let (client, namespace, source) = app_source(&args.source, &args.app).await?;
    match history::history(&client, &namespace, &args.app, &source, args.max).await {
        Ok(text) => {
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refusal(e),
    }
}

/// `rollgit rollback`.
async fn rollback_cmd(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let (client, namespace, source) = app_source(&args.source, &args.app).await?;
    let opts = history::RollbackOptions {
        app: args.app,
        component: args.component,
        to: args.to.as_deref().map(history::ToArg::parse),
        dry_run: args.dry_run,
    };
    match history::rollback(&client, &namespace, &source, &opts).await {
        Ok(outcome) => {
            print!("{}", history::outcome_text(&outcome));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refusal(e),
    }
}

/// `rollgit diff`: true when the cluster differs from Git.
async fn diff_cmd(args: RunArgs) -> anyhow::Result<bool> {
    let cfg = resolve_run_config(args)?;
    let mut differs = false;
    for repo in &cfg.repos {
        let client = rollgit::kubeclient::client_for(&cfg.clusters[repo.cluster]).await?;
        let applier = rollgit::apply::Applier::new(client.clone());
        let cache = cfg.state_dir.join("repos");
        for (app, result) in diff::render_repo(&client, repo, &cache).await? {
            match result {
                Err(errors) => {
                    differs = true;
                    for e in errors {
                        eprintln!("{app}: {e}");
                    }
                }
                Ok((objects, stale)) => {
                    let (text, d) = diff::diff_objects(&applier, &objects, &stale).await?;
                    differs |= d;
                    print!("{text}");
                }
            }
        }
    }
    Ok(differs)
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let cfg = resolve_run_config(args)?;
    serve_daemon(cfg).await
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Plan(args) = &cli.command {
        return plan::run(args);
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ROLLGIT_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let ok = |r: anyhow::Result<()>| r.map(|()| ExitCode::SUCCESS);
        match cli.command {
            Command::Devcluster(a) => ok(devcluster(a).await),
            Command::Up(a) => ok(up(a).await),
            Command::Plan(_) => Ok(ExitCode::SUCCESS),
            Command::Run(a) => ok(run(a).await),
            Command::Status(a) => ok(status(a).await),
            Command::Get(a) => ok(get(a).await),
            Command::Rollout(RolloutCommand::Status(a)) => rollout_status(a).await,
            Command::History(a) => history_cmd(a).await,
            Command::Rollback(a) => rollback_cmd(a).await,
            // Like `kubectl diff`: 0 when equal, 1 when different, more on error.
            Command::Diff(a) => diff_cmd(a)
                .await
                .map(|d| {
                    if d {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    }
                })
                .map_err(|e| e.context("diff")),
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
