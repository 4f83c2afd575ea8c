//! Rollout benchmark: rollgit's own overhead per batch, and a 100-component app rolled out at
//! once, with the daemon's memory; compared, in the same run, with the same batches driven by
//! the tool a user would otherwise script them with (`kubectl wait` + `kubectl scale`).
//!
//! Everything runs as child processes of this one: `rollgit devcluster` (simulation on, Pods
//! ready after `--ready-delay 200ms`) and `rollgit run` following a local repository (commits
//! are noticed through its file-system watch; the poll interval is 1 h).
//!
//! **Reaction latency.** One watch on the Deployments (in this process) sees the cluster as
//! rollgit's watch sees it. A component is *settled* at the first event after which each of its
//! Deployments has `status.replicas == readyReplicas == spec.replicas` and has observed its
//! generation: that is when the batch condition rollgit waits for holds in the cluster (IncreaseFirst: the
//! target's batch is ready, then the source has scaled down). The latency is from that event to
//! the next change rollgit makes to the component (a new generation, a Deployment created or
//! deleted). Changes that follow a Git commit made after the settle are not reactions and are
//! not counted. The kubectl baseline is measured with the same watch and the same rule.
//!
//! Run: `cargo bench --bench rollout` (`BENCH_ROUNDS` upgrades of the single component, default
//! 4; `BENCH_COMPONENTS` components in the wide app, default 100).

mod common;

use common::{git, quantile, start_devcluster, status_kib};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::DynamicObject;
use kube::runtime::watcher;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One observed Deployment change.
#[derive(Clone, Debug)]
struct Seen {
    at: Instant,
    component: String,
    name: String,
    /// None: deleted.
    state: Option<DeployState>,
}

#[derive(Clone, Debug, PartialEq)]
struct DeployState {
    generation: i64,
    observed: i64,
    spec: i64,
    replicas: i64,
    ready: i64,
}

impl DeployState {
    fn settled(&self) -> bool {
        self.observed >= self.generation && self.replicas == self.spec && self.ready == self.spec
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn watch_deployments(client: kube::Client) -> Log {
    let log: Log = Arc::default();
    let out = log.clone();
    tokio::spawn(async move {
        let api: Api<Deployment> = Api::namespaced(client, "default");
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(ev) = stream.next().await {
            let at = Instant::now();
            let (d, deleted) = match ev {
                Ok(watcher::Event::Apply(d)) | Ok(watcher::Event::InitApply(d)) => (d, false),
                Ok(watcher::Event::Delete(d)) => (d, true),
                _ => continue,
            };
            let component = d
                .metadata
                .labels
                .as_ref()
                .and_then(|l| l.get("app.oam.dev/component"))
                .cloned()
                .unwrap_or_default();
            let st = d.status.clone().unwrap_or_default();
            let state = (!deleted).then(|| DeployState {
                generation: d.metadata.generation.unwrap_or(0),
                observed: st.observed_generation.unwrap_or(0),
                spec: i64::from(d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1)),
                replicas: i64::from(st.replicas.unwrap_or(0)),
                ready: i64::from(st.ready_replicas.unwrap_or(0)),
            });
            if let Ok(mut l) = out.lock() {
                l.push(Seen {
                    at,
                    component,
                    name: d.metadata.name.clone().unwrap_or_default(),
                    state,
                });
            }
        }
    });
    log
}

/// Reaction latencies of `component` (see the module docs), excluding changes that follow a
/// commit made after the settle (`commits`).
fn reactions(log: &[Seen], component: &str, commits: &[Instant]) -> Vec<Duration> {
    let mut now: BTreeMap<String, DeployState> = BTreeMap::new();
    let mut settled_at: Option<Instant> = None;
    let mut out = Vec::new();
    for s in log.iter().filter(|s| s.component == component) {
        let before = now.get(&s.name).cloned();
        let is_change = match (&before, &s.state) {
            (None, Some(_)) | (Some(_), None) => true,
            (Some(a), Some(b)) => b.generation > a.generation,
            (None, None) => false,
        };
        if is_change && let Some(t) = settled_at.take() {
            let git_in_between = commits.iter().any(|c| *c > t && *c <= s.at);
            if !git_in_between {
                out.push(s.at.duration_since(t));
            }
        }
        match &s.state {
            Some(st) => {
                now.insert(s.name.clone(), st.clone());
            }
            None => {
                now.remove(&s.name);
            }
        }
        let all = !now.is_empty() && now.values().all(DeployState::settled);
        if all && settled_at.is_none() && !is_change {
            settled_at = Some(s.at);
        } else if !all {
            settled_at = None;
        }
    }
    out
}

fn app_yaml(components: &[String], image: &str, size: i64, batches: &[i64]) -> String {
    let mut y = String::from(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: bench\nspec:\n  components:\n",
    );
    for c in components {
        y.push_str(&format!(
            "    - name: {c}\n      type: webservice\n      properties:\n        image: {image}\n      traits:\n        - type: rollout\n          properties:\n            targetSize: {size}\n            rolloutBatches:\n"
        ));
        for b in batches {
            y.push_str(&format!("              - replicas: {b}\n"));
        }
    }
    y
}

async fn wait_all_succeeded(client: &kube::Client, names: &[String], revision: &str) -> Duration {
    let t = Instant::now();
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        "default",
        &kube::core::ApiResource::erase::<rollgit::k8s::Rollout>(&()),
    );
    let mut stream = watcher(api, watcher::Config::default()).boxed();
    let mut done: BTreeMap<String, bool> = names.iter().map(|n| (n.clone(), false)).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(600);
    while done.values().any(|d| !d) {
        let ev = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("the rollouts finish within 10 minutes");
        if let Some(Ok(watcher::Event::Apply(o))) | Some(Ok(watcher::Event::InitApply(o))) = ev {
            let s = &o.data["status"];
            let name = o.metadata.name.clone().unwrap_or_default();
            let want = format!("{name}-{revision}");
            let ok = s["rollingState"] == "rolloutSucceed" && s["targetRevision"] == want;
            if let Some(d) = done.get_mut(&name) {
                *d = ok;
            }
        }
    }
    t.elapsed()
}

fn kubectl(kubeconfig: &Path, args: &[&str]) {
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(kubeconfig)
        .args(args)
        .output()
        .expect("run kubectl");
    assert!(
        out.status.success(),
        "kubectl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn manual_deployment(name: &str, image: &str, replicas: i64) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {name}
  labels: {{app.oam.dev/component: manual}}
spec:
  replicas: {replicas}
  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec: {{containers: [{{name: c, image: {image}}}]}}
"
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let rounds = env("BENCH_ROUNDS", 4).max(1);
    let wide = env("BENCH_COMPONENTS", 100).max(1);
    let bin = env!("CARGO_BIN_EXE_rollgit");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    let (mut cluster, client, kubeconfig) =
        start_devcluster(bin, base, &["--ready-delay", "200ms"]).await;
    let log = watch_deployments(client.clone());
    let mut commits: Vec<Instant> = Vec::new();

    // The repository and the daemon.
    let repo = base.join("repo");
    std::fs::create_dir_all(repo.join("apps/bench")).expect("repo dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    let one = vec!["api".to_string()];
    let batches = [2, 2, 2, 2, 2];
    std::fs::write(
        repo.join("apps/bench/app.yaml"),
        app_yaml(&one, "example/api:1", 10, &batches),
    )
    .expect("write app");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "api 1"]);
    commits.push(Instant::now());
    let mut daemon = Command::new(bin)
        .args(["run", "--repo"])
        .arg(&repo)
        .args(["--path", "apps/*", "--interval", "1h", "--kubeconfig"])
        .arg(&kubeconfig)
        .arg("--state-dir")
        .arg(base.join("state"))
        .env("ROLLGIT_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the daemon");
    let pid = daemon.id();
    wait_all_succeeded(&client, &one, "v1").await;

    // 1. One component, 10 replicas in 5 batches of 2, upgraded `rounds` times.
    let mut total = Duration::ZERO;
    for r in 2..rounds + 2 {
        std::fs::write(
            repo.join("apps/bench/app.yaml"),
            app_yaml(&one, &format!("example/api:{r}"), 10, &batches),
        )
        .expect("write app");
        git(&repo, &["commit", "-q", "-am", &format!("api {r}")]);
        commits.push(Instant::now());
        total += wait_all_succeeded(&client, &one, &format!("v{r}")).await;
    }
    let samples = {
        let l = log.lock().expect("log").clone();
        reactions(&l, "api", &commits)
    };
    eprintln!(
        "rollgit: {} reactions over {rounds} rollouts, each {} s",
        samples.len(),
        total.as_secs_f64() / rounds as f64
    );

    // 2. The same batches driven with kubectl, against the same cluster.
    let manual_yaml = base.join("manual.yaml");
    std::fs::write(
        &manual_yaml,
        manual_deployment("manual-v1", "example/api:1", 10),
    )
    .expect("write");
    kubectl(
        &kubeconfig,
        &["apply", "-f", &manual_yaml.display().to_string()],
    );
    kubectl(
        &kubeconfig,
        &[
            "wait",
            "--for=jsonpath={.status.readyReplicas}=10",
            "deploy/manual-v1",
            "--timeout=60s",
        ],
    );
    let t_manual = Instant::now();
    commits.push(Instant::now());
    std::fs::write(
        &manual_yaml,
        manual_deployment("manual-v2", "example/api:2", 0),
    )
    .expect("write");
    kubectl(
        &kubeconfig,
        &["apply", "-f", &manual_yaml.display().to_string()],
    );
    let mut goal = 0;
    for b in batches {
        goal += b;
        kubectl(
            &kubeconfig,
            &["scale", "deploy/manual-v2", &format!("--replicas={goal}")],
        );
        kubectl(
            &kubeconfig,
            &[
                "wait",
                &format!("--for=jsonpath={{.status.readyReplicas}}={goal}"),
                "deploy/manual-v2",
                "--timeout=60s",
            ],
        );
        kubectl(
            &kubeconfig,
            &[
                "scale",
                "deploy/manual-v1",
                &format!("--replicas={}", 10 - goal),
            ],
        );
        // A zero count is omitted from status, so the last scale-down is not waited for (the
        // script is a little faster there than it could honestly be).
        if goal < 10 {
            kubectl(
                &kubeconfig,
                &[
                    "wait",
                    &format!("--for=jsonpath={{.status.replicas}}={}", 10 - goal),
                    "deploy/manual-v1",
                    "--timeout=60s",
                ],
            );
        }
    }
    kubectl(&kubeconfig, &["delete", "deploy/manual-v1"]);
    let manual_total = t_manual.elapsed();
    let manual = {
        let l = log.lock().expect("log").clone();
        reactions(&l, "manual", &commits)
    };

    // 3. A 100-component app: first release, then every component upgraded at once.
    let names: Vec<String> = (0..wide).map(|i| format!("c{i:03}")).collect();
    std::fs::create_dir_all(repo.join("apps/wide")).expect("dir");
    let wide_yaml =
        |image: &str| app_yaml(&names, image, 2, &[1, 1]).replace("name: bench", "name: wide");
    std::fs::write(repo.join("apps/wide/app.yaml"), wide_yaml("example/w:1")).expect("write");
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "wide 1"]);
    commits.push(Instant::now());
    let first = wait_all_succeeded(&client, &names, "v1").await;
    std::fs::write(repo.join("apps/wide/app.yaml"), wide_yaml("example/w:2")).expect("write");
    git(&repo, &["commit", "-q", "-am", "wide 2"]);
    commits.push(Instant::now());
    let upgrade = wait_all_succeeded(&client, &names, "v2").await;
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    let wide_samples: Vec<Duration> = {
        let l = log.lock().expect("log").clone();
        names
            .iter()
            .flat_map(|n| reactions(&l, n, &commits))
            .collect()
    };

    println!("| measure | rollgit | kubectl wait + scale | ratio |");
    println!("|---|---|---|---|");
    let p50 = quantile(&samples, 0.5);
    let m50 = quantile(&manual, 0.5);
    println!(
        "| batch condition met → next change, p50 ({} / {} samples) | {} | {} | {:.0}× |",
        samples.len(),
        manual.len(),
        ms(p50),
        ms(m50),
        m50.as_secs_f64() / p50.as_secs_f64().max(1e-6)
    );
    let p99 = quantile(&samples, 0.99);
    let m99 = quantile(&manual, 0.99);
    println!(
        "| batch condition met → next change, p99 | {} | {} | {:.0}× |",
        ms(p99),
        ms(m99),
        m99.as_secs_f64() / p99.as_secs_f64().max(1e-6)
    );
    println!(
        "| one rollout, 10 replicas in 5 batches (200 ms readiness) | {:.2} s | {:.2} s | {:.1}× |",
        total.as_secs_f64() / rounds as f64,
        manual_total.as_secs_f64(),
        manual_total.as_secs_f64() / (total.as_secs_f64() / rounds as f64)
    );
    println!(
        "| {wide} components: first release, 2 replicas in batches 1+1 | {:.2} s | | |",
        first.as_secs_f64()
    );
    println!(
        "| {wide} components: upgrade, all at once | {:.2} s | | |",
        upgrade.as_secs_f64()
    );
    println!(
        "| {wide} components: reaction p50 / p99 ({} samples) | {} / {} | | |",
        wide_samples.len(),
        ms(quantile(&wide_samples, 0.5)),
        ms(quantile(&wide_samples, 0.99))
    );
    println!(
        "| daemon resident memory after the {wide}-component upgrade (peak) | {} MiB ({} MiB) | | |",
        rss / 1024,
        hwm / 1024
    );
    let _ = daemon.kill();
    let _ = daemon.wait();
    let _ = cluster.kill();
    let _ = cluster.wait();
}
