//! `rollgit up`: the embedded dev cluster, a demo repository from `examples-repo/`, and the
//! daemon following it, all in one process, with what to try printed.

use anyhow::Context;
use rollgit::config::{RawCluster, RawConfig, RawRepo, RawWebhook};
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
    /// Pods whose image matches PATTERN never become Ready in the dev cluster, so a rollout to
    /// such an image fails and is rolled back (a glob such as `*:broken`, else a substring).
    /// Repeatable; replaces the default.
    #[arg(long = "fail-image", value_name = "PATTERN", default_value = DEMO_FAIL_IMAGE)]
    fail_images: Vec<String>,
    /// Dev clusters to start: 1, or 2 for the multi-cluster workflow of seed 003
    /// (`cluster-test`, the hub, on `--listen`, and `cluster-prod` on the next port; the
    /// repository's `fleet/` apps are followed, in namespace `demo`).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    clusters: u8,
}

/// The image pattern the demo's dev cluster fails by default.
pub const DEMO_FAIL_IMAGE: &str = "*:broken";

/// The demo's webhook secret: read from `path`, or generated (32 random hex characters from
/// the OS) and written there (mode 0600) the first time.
fn demo_webhook_secret(path: &std::path::Path) -> anyhow::Result<String> {
    if let Ok(s) = std::fs::read_to_string(path) {
        let s = s.trim().to_string();
        if !s.is_empty() {
            return Ok(s);
        }
    }
    let mut bytes = [0u8; 16];
    {
        use std::io::Read;
        std::fs::File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut bytes))
            .context("reading random bytes for the demo's webhook secret")?;
    }
    let secret: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    {
        use std::io::Write;
        let mut f = opts
            .open(path)
            .with_context(|| format!("writing {}", path.display()))?;
        f.write_all(secret.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(secret)
}

/// `rollgit up`.
pub async fn run(args: UpArgs) -> anyhow::Result<ExitCode> {
    let kubeconfig = args.state_dir.join("kubeconfig");
    let fail_images: Vec<String> = args
        .fail_images
        .iter()
        .filter(|p| !p.is_empty())
        .cloned()
        .collect();
    let cluster = rollgit_devcluster::DevCluster::start(rollgit_devcluster::Config {
        listen: args.listen,
        kubeconfig: Some(kubeconfig.clone()),
        data_dir: Some(args.state_dir.join("devcluster")),
        simulation: rollgit_devcluster::controllers::SimConfig {
            fail_images: fail_images.clone(),
            ..Default::default()
        },
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
    let secret_file = args.state_dir.join("webhook-secret");
    let secret = demo_webhook_secret(&secret_file)?;
    let secret_file = std::fs::canonicalize(&secret_file).unwrap_or(secret_file);
    let mut repos = vec![RawRepo {
        name: Some("demo".into()),
        url: Some(repo_dir.display().to_string()),
        branch: Some("main".into()),
        paths: vec!["apps/*".into()],
        interval: Some("30s".into()),
        webhook: Some(RawWebhook {
            secret_file: Some(secret_file.clone()),
            secret_env: None,
        }),
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
    let fleet = match &prod {
        Some((prod, prod_kc)) => {
            let fleet_cfg = args.state_dir.join("fleet.yaml");
            let text = format!(
                "# The fleet of `rollgit up --clusters 2` (for `rollgit clusters --config`).\nrepos:\n- name: fleet\n  url: {}\n  paths: [\"fleet/*\"]\n  namespace: demo\n  cluster: cluster-test\nclusters:\n- name: cluster-test\n  kubeconfig: {}\n- name: cluster-prod\n  kubeconfig: {}\n",
                repo_dir.display(),
                kc.display(),
                prod_kc.display()
            );
            std::fs::write(&fleet_cfg, text)
                .with_context(|| format!("writing {}", fleet_cfg.display()))?;
            Some(DemoFleet {
                prod_url: prod.url().to_string(),
                prod_kubeconfig: prod_kc.display().to_string(),
                config: fleet_cfg.display().to_string(),
            })
        }
        None => None,
    };
    print!(
        "{}",
        demo_text(&DemoText {
            cluster_url: cluster.url().to_string(),
            repo_dir: repo_dir.display().to_string(),
            created,
            kubeconfig: kc.display().to_string(),
            api_listen: args.api_listen.to_string(),
            fail_images: fail_images.clone(),
            secret: secret.clone(),
            secret_file: secret_file.display().to_string(),
            fleet,
        })
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

/// What the demo's instructions depend on.
pub struct DemoText {
    /// The dev cluster's URL.
    pub cluster_url: String,
    /// The demo repository's directory.
    pub repo_dir: String,
    /// Whether `up` created it now.
    pub created: bool,
    /// The kubeconfig to export.
    pub kubeconfig: String,
    /// rollgit's webhook and metrics address.
    pub api_listen: String,
    /// The images the dev cluster fails.
    pub fail_images: Vec<String>,
    /// The demo's webhook secret (printed here, for the demo only; never logged).
    pub secret: String,
    /// Where it is kept.
    pub secret_file: String,
    /// The second dev cluster of `--clusters 2`.
    pub fleet: Option<DemoFleet>,
}

/// The fleet of `rollgit up --clusters 2`, as the demo's instructions name it.
pub struct DemoFleet {
    /// `cluster-prod`'s URL.
    pub prod_url: String,
    /// `cluster-prod`'s kubeconfig.
    pub prod_kubeconfig: String,
    /// The fleet's configuration file (for `rollgit clusters --config`).
    pub config: String,
}

/// What `rollgit up` prints (pure): how to watch, commit, roll out, fail and roll back, and
/// call the webhook. Every command in it works as printed (tests/up.rs runs them).
pub fn demo_text(d: &DemoText) -> String {
    let mut o = String::new();
    let mut line = |s: &str| {
        o.push_str(s);
        o.push('\n');
    };
    line(&format!(
        "rollgit is up: dev cluster at {}, following {}",
        d.cluster_url, d.repo_dir
    ));
    if d.created {
        line("(created the demo repository from examples-repo/)");
    }
    line("");
    line("Watch what rollgit applied:");
    line(&format!("  export KUBECONFIG={}", d.kubeconfig));
    line(
        "  kubectl get applications.rollgit.dev     # NAME COMPONENT TYPE PHASE HEALTHY STATUS AGE",
    );
    line("  rollgit status                           # the same, and -o json|yaml");
    line("  kubectl get deploy,svc,clonesets -w");
    line("");
    line("Commit a change and watch it land (a file-system watch notices it within a second):");
    line(&format!("  cd {}", d.repo_dir));
    line("  sed -i 's/replicas: 3/replicas: 5/' apps/guestbook/deployment.yaml");
    line("  git commit -am 'guestbook: 5 replicas'");
    line("");
    line("Roll out a new image in batches (2 pods, then 3, each batch waiting for ready pods):");
    line("  sed -i 's/podinfo:4.0.3/podinfo:5.0.2/' apps/express-server/app.yaml");
    line("  git commit -am 'express-server: podinfo 5.0.2'");
    line(
        "  rollgit rollout status express-server --watch   # or: kubectl get rollout express-server -w",
    );
    line("");
    match d.fail_images.first() {
        Some(pattern) => {
            let image = pattern.replace(['*', '?'], "");
            let tag = image.trim_start_matches(':');
            line(&format!(
                "Fail a rollout and watch rollgit roll it back and revert the commit in Git (the dev cluster never readies images matching {}; the demo's progress deadline is {} per batch):",
                d.fail_images.join(", "),
                DEMO_PROGRESS_DEADLINE
            ));
            line(&format!(
                "  sed -i 's/podinfo:[0-9.]*/podinfo:{tag}/' apps/express-server/app.yaml"
            ));
            line(&format!("  git commit -am 'express-server: podinfo {tag}'"));
            line(
                "  rollgit rollout status express-server --watch   # batch 1 is not ready in time: rolled back",
            );
            line(
                "  git log --oneline -2                             # rollgit's revert commit is on top",
            );
            line(
                "  rollgit history express-server                   # failed REV, revert of the commit",
            );
        }
        None => {
            line(
                "Fail a rollout: restart with --fail-image PATTERN (say '*:broken') and commit an image matching it.",
            );
        }
    }
    line("");
    line(
        "Roll out a new image in OpenKruise Rollout steps (seed 004: a header match, then 50%, then all):",
    );
    line("  sed -i 's/demo:1.10.2/demo:1.10.3/' apps/echo/echoserver.yaml");
    line("  git commit -am 'echoserver: 1.10.3'");
    line(
        "  kubectl get rollouts.rollouts.kruise.io -w   # STATUS CANARY_STEP CANARY_STATE MESSAGE",
    );
    line(
        "  rollgit approve rollouts-demo   # step 1 waits for it; rollgit rollout status echo shows the steps",
    );
    line("");
    line(
        "Roll out a new image in Argo Rollouts canary steps (seed 002: 20%, a pause, 60% for 30 s, then all):",
    );
    line("  sed -i 's/rollouts-demo:blue/rollouts-demo:yellow/' apps/canary/rollout.yaml");
    line("  git commit -am 'canary-demo: yellow'");
    line(
        "  rollgit get rollouts   # NAME STRATEGY STATUS STEP SET-WEIGHT READY DESIRED UP-TO-DATE AVAILABLE",
    );
    line(
        "  rollgit promote canary-demo   # step 1 pauses for it (or rollgit abort canary-demo: reverted in Git); rollgit rollout status canary shows the steps",
    );
    line("");
    if let Some(f) = &d.fleet {
        line(&format!(
            "Multi-cluster delivery with approval (seed 003, fleet/demo): cluster-test is the hub above, cluster-prod is at {}:",
            f.prod_url
        ));
        line(
            "  kubectl get app demo -n demo              # workflowSuspending: on test, waiting for approval",
        );
        line(&format!(
            "  kubectl --kubeconfig {} get deploy demo -n demo   # NotFound until approved",
            f.prod_kubeconfig
        ));
        line("  rollgit workflow resume demo -n demo      # deploy-prod runs");
        line(&format!(
            "  rollgit clusters --config {}   # the fleet, reachability and version",
            f.config
        ));
        line("");
    }
    line("Drift is corrected: try `kubectl scale deploy guestbook --replicas=1`.");
    line(
        "Pause an app: `rollgit suspend guestbook` (no sync, no drift correction), `rollgit resume guestbook`.",
    );
    line("");
    line(&format!(
        "Webhooks: this demo's secret is in {} (printed here for the demo only; rollgit never logs it). Trigger a fetch:",
        d.secret_file
    ));
    line(&format!(
        "  curl -X POST -H 'X-Gitlab-Token: {}' http://{}/hooks/gitlab/demo",
        d.secret, d.api_listen
    ));
    line(&format!(
        "Metrics: http://{}/metrics, readiness: /readyz. Ctrl-C stops.",
        d.api_listen
    ));
    o
}

/// The progress deadline of the demo's rollout (the annotation `rollgit.dev/progress-deadline`
/// in `examples-repo/apps/express-server/app.yaml`).
pub const DEMO_PROGRESS_DEADLINE: &str = "20s";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_annotation_is_what_up_says() {
        let app = include_str!("../../examples-repo/apps/express-server/app.yaml");
        assert!(
            app.contains(&format!(
                "rollgit.dev/progress-deadline: {DEMO_PROGRESS_DEADLINE}"
            )),
            "{app}"
        );
    }
}
