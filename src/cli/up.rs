//! `rollgit up`: the embedded dev cluster, a demo repository from `examples-repo/`, and the
//! daemon following it, all in one process, with what to try printed.

use anyhow::Context;
use rollgit::config::{RawCluster, RawConfig, RawRepo};
use rollgit::demo;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

/// Arguments of `rollgit up`.
#[derive(clap::Args, Debug)]
pub struct UpArgs {
    /// Address the embedded dev cluster listens on.
    #[arg(long, default_value = "127.0.0.1:6443")]
    listen: SocketAddr,
    /// Directory for rollgit's state (the dev cluster's data, its kubeconfig, the demo repository).
    #[arg(long, default_value = rollgit::config::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// Address of rollgit's webhook and metrics endpoint.
    #[arg(long, default_value = "127.0.0.1:9090")]
    api_listen: SocketAddr,
}

/// `rollgit up`.
pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
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
    let cfg = RawConfig {
        repos: vec![RawRepo {
            name: Some("demo".into()),
            url: Some(repo_dir.display().to_string()),
            branch: Some("main".into()),
            paths: vec!["apps/*".into()],
            interval: Some("30s".into()),
            ..Default::default()
        }],
        clusters: vec![RawCluster {
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
    println!(
        "Roll out a new image in OpenKruise Rollout steps (seed 004: a header match, then 50%, then all):"
    );
    println!("  sed -i 's/demo:1.10.2/demo:1.10.3/' apps/echo/echoserver.yaml");
    println!("  git commit -am 'echoserver: 1.10.3'");
    println!(
        "  kubectl get rollouts.rollouts.kruise.io -w   # STATUS CANARY_STEP CANARY_STATE MESSAGE"
    );
    println!(
        "  rollgit approve rollouts-demo   # step 1 waits for it; rollgit rollout status echo shows the steps"
    );
    println!();
    println!(
        "Roll out a new image in Argo Rollouts canary steps (seed 002: 20%, a pause, 60% for 30 s, then all):"
    );
    println!("  sed -i 's/rollouts-demo:blue/rollouts-demo:yellow/' apps/canary/rollout.yaml");
    println!("  git commit -am 'canary-demo: yellow'");
    println!(
        "  rollgit get rollouts   # NAME STRATEGY STATUS STEP SET-WEIGHT READY DESIRED UP-TO-DATE AVAILABLE"
    );
    println!(
        "  rollgit promote canary-demo   # step 1 pauses for it (or rollgit abort canary-demo: reverted in Git); rollgit rollout status canary shows the steps"
    );
    println!();
    println!("Drift is corrected: try `kubectl scale deploy guestbook --replicas=1`.");
    println!(
        "Webhooks: http://{}/hooks/{{github|gitlab|gitea|generic}}/demo, metrics: /metrics. Ctrl-C stops.",
        args.api_listen
    );
    let result = rollgit::daemon::run(&cfg, Default::default(), super::shutdown_signal()).await;
    cluster.shutdown().await;
    result?;
    Ok(ExitCode::SUCCESS)
}
