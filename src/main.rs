//! rollgit: a GitOps reconciler daemon. This is the command-line edge (the I/O shell).

mod plan;

use anyhow::Context;
use clap::{Parser, Subcommand};
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
    /// Directory for rollgit's state (the dev cluster's data and its kubeconfig).
    #[arg(long, default_value = ".rollgit")]
    state_dir: PathBuf,
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
    let kc = std::fs::canonicalize(&kubeconfig).unwrap_or(kubeconfig);
    println!("rollgit dev cluster is up at {}", cluster.url());
    println!();
    println!("Use it with kubectl:");
    println!("  export KUBECONFIG={}", kc.display());
    println!("  kubectl get namespaces");
    println!("  kubectl create deployment web --image=nginx:1.27 --replicas=3");
    println!("  kubectl get deployments -o wide");
    println!();
    println!(
        "Objects are kept in {}. Press Ctrl-C to stop.",
        args.state_dir.join("devcluster").display()
    );
    wait_for_shutdown().await;
    cluster.shutdown().await;
    Ok(())
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
        match cli.command {
            Command::Devcluster(a) => devcluster(a).await,
            Command::Up(a) => up(a).await,
            Command::Plan(_) => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
