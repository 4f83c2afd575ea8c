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
    /// Dev clusters to start: 1, or 2 for the multi-cluster workflow of seed 003
    /// (`cluster-test`, the hub, on `--listen`, and `cluster-prod` on the next port; the
    /// repository's `fleet/` apps are followed, in namespace `demo`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    clusters: u8,
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
    let prod = if args.clusters == 2 {
        let listen = SocketAddr::new(args.listen.ip(), args.listen.port().saturating_add(1));
        let kubeconfig = args.state_dir.join("kubeconfig-prod");
        let prod = rollgit_devcluster::DevCluster::start(rollgit_devcluster::Config {
            listen,
            kubeconfig: Some(kubeconfig.clone()),
            data_dir: Some(args.state_dir.join("devcluster-prod")),
            ..Default::default()
        })
        .await
        .context("starting the second dev cluster (cluster-prod)")?;
        // Seed 003's prerequisite: the app's namespace exists on the hub.
        let client =
            rollgit::k8s::client_for("cluster-test", Some(&kubeconfig_of(&args)), None).await?;
        ensure_namespace(&client, "demo").await?;
        Some((
            prod,
            std::fs::canonicalize(&kubeconfig).unwrap_or(kubeconfig),
        ))
    } else {
        None
    };
    let repo_dir = args.state_dir.join("demo-repo");
    let created = demo::ensure_repo(&repo_dir)?;
    let repo_dir = std::fs::canonicalize(&repo_dir).unwrap_or(repo_dir);
    let kc = std::fs::canonicalize(&kubeconfig).unwrap_or(kubeconfig);
    let mut repos = vec![RawRepo {
        name: Some("demo".into()),
        url: Some(repo_dir.display().to_string()),
        branch: Some("main".into()),
        paths: vec!["apps/*".into()],
        interval: Some("30s".into()),
        ..Default::default()
    }];
    let mut clusters = vec![RawCluster {
        name: Some(
            if prod.is_some() {
                "cluster-test"
            } else {
                "dev"
            }
            .into(),
        ),
        kubeconfig: Some(kc.clone()),
        context: None,
        labels: Default::default(),
    }];
    if let Some((_, prod_kc)) = &prod {
        repos.push(RawRepo {
            name: Some("fleet".into()),
            url: Some(repo_dir.display().to_string()),
            branch: Some("main".into()),
            paths: vec!["fleet/*".into()],
            interval: Some("30s".into()),
            namespace: Some("demo".into()),
            cluster: Some("cluster-test".into()),
            ..Default::default()
        });
        clusters.push(RawCluster {
            name: Some("cluster-prod".into()),
            kubeconfig: Some(prod_kc.clone()),
            context: None,
            labels: Default::default(),
        });
    }
    let cfg = RawConfig {
        repos,
        clusters,
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
    if let Some((prod, prod_kc)) = &prod {
        println!(
            "Multi-cluster delivery with approval (seed 003, fleet/demo): cluster-test is the hub above, cluster-prod is at {}:",
            prod.url()
        );
        println!(
            "  kubectl get app demo -n demo              # workflowSuspending: on test, waiting for approval"
        );
        println!(
            "  kubectl --kubeconfig {} get deploy demo -n demo   # NotFound until approved",
            prod_kc.display()
        );
        println!("  rollgit workflow resume demo -n demo      # deploy-prod runs");
        let fleet_cfg = args.state_dir.join("fleet.yaml");
        let text = format!(
            "# The fleet of `rollgit up --clusters 2` (for `rollgit clusters --config`).\nrepos:\n- name: fleet\n  url: {}\n  paths: [\"fleet/*\"]\n  namespace: demo\n  cluster: cluster-test\nclusters:\n- name: cluster-test\n  kubeconfig: {}\n- name: cluster-prod\n  kubeconfig: {}\n",
            repo_dir.display(),
            kc.display(),
            prod_kc.display()
        );
        std::fs::write(&fleet_cfg, text)
            .with_context(|| format!("writing {}", fleet_cfg.display()))?;
        println!(
            "  rollgit clusters --config {}   # the fleet, reachability and version",
            fleet_cfg.display()
        );
        println!();
    }
    println!("Drift is corrected: try `kubectl scale deploy guestbook --replicas=1`.");
    println!(
        "Webhooks: http://{}/hooks/{{github|gitlab|gitea|generic}}/demo, metrics: /metrics. Ctrl-C stops.",
        args.api_listen
    );
    let result = rollgit::daemon::run(&cfg, Default::default(), super::shutdown_signal()).await;
    cluster.shutdown().await;
    if let Some((prod, _)) = prod {
        prod.shutdown().await;
    }
    result?;
    Ok(ExitCode::SUCCESS)
}

fn kubeconfig_of(args: &UpArgs) -> PathBuf {
    args.state_dir.join("kubeconfig")
}

/// Creates namespace `ns` when it does not exist.
async fn ensure_namespace(client: &kube::Client, ns: &str) -> anyhow::Result<()> {
    use k8s_openapi::api::core::v1::Namespace;
    let api: kube::Api<Namespace> = kube::Api::all(client.clone());
    if api.get_opt(ns).await?.is_some() {
        return Ok(());
    }
    let body = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(ns.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match api.create(&kube::api::PostParams::default(), &body).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 409 => Ok(()),
        Err(e) => Err(e).with_context(|| format!("creating namespace {ns}")),
    }
}
