//! `rollgit devcluster`: the dev cluster alone, until Ctrl-C or SIGTERM.

use anyhow::Context;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `rollgit devcluster`.
#[derive(clap::Args, Debug)]
pub struct DevclusterArgs {
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
    #[arg(long, default_value = "1s", value_parser = rollgit::config::parse_duration)]
    ready_delay: std::time::Duration,
    /// Number of simulated Nodes (`devcluster-node-1` ..).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Serve the API only: no simulated controllers, kubelet or nodes.
    #[arg(long)]
    no_simulation: bool,
}

/// `rollgit devcluster`.
pub async fn run(args: DevclusterArgs) -> anyhow::Result<ExitCode> {
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
    super::shutdown_signal().await;
    cluster.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
