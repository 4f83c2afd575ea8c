//! Workload simulation benchmark: time for 100 Deployments × 10 replicas to become available,
//! and the CPU the dev cluster uses at rest with those 1,000 Pods (the simulation is
//! event-driven, so at rest it should use almost none; target < 2% of one core).
//!
//! Run: `cargo bench --bench workloads` (`BENCH_DEPLOYMENTS`, `BENCH_REPLICAS`, `BENCH_REST_SECS`
//! change the sizes). The dev cluster runs in this process, so `/proc/self/stat` is its CPU.

use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use kube::Api;
use kube::api::PostParams;
use kube::runtime::watcher;
use std::collections::HashSet;
use std::time::{Duration, Instant};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// utime + stime of this process, in clock ticks (USER_HZ = 100 on Linux).
fn cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    let after = stat.rsplit(')').next().expect("stat format");
    let f: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = f[11].parse().expect("utime");
    let stime: u64 = f[12].parse().expect("stime");
    utime + stime
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(run());
}

async fn run() {
    let deployments = env("BENCH_DEPLOYMENTS", 100);
    let replicas = env("BENCH_REPLICAS", 10);
    let rest = env("BENCH_REST_SECS", 10);
    let dir = tempfile::tempdir().expect("tempdir");
    let cluster = rollgit_devcluster::DevCluster::start(rollgit_devcluster::Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        kubeconfig: Some(dir.path().join("kubeconfig")),
        ..Default::default()
    })
    .await
    .expect("dev cluster");
    let kubeconfig =
        kube::config::Kubeconfig::from_yaml(&cluster.kubeconfig()).expect("kubeconfig");
    let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
        .await
        .expect("config");
    let client = kube::Client::try_from(config).expect("client");
    let api: Api<Deployment> = Api::namespaced(client, "default");

    let (tx, rx) = tokio::sync::oneshot::channel();
    let watch_api = api.clone();
    let want = deployments as usize;
    let waiter = tokio::spawn(async move {
        let mut done = HashSet::new();
        let mut stream = std::pin::pin!(watcher(watch_api, watcher::Config::default()));
        let mut tx = Some(tx);
        while let Some(ev) = stream.next().await {
            let d = match ev.expect("watch") {
                watcher::Event::InitDone => {
                    if let Some(t) = tx.take() {
                        let _ = t.send(());
                    }
                    continue;
                }
                watcher::Event::Apply(d) | watcher::Event::InitApply(d) => d,
                _ => continue,
            };
            let s = d.status.clone().unwrap_or_default();
            let r = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            if s.available_replicas == Some(r) && s.updated_replicas == Some(r) {
                done.insert(d.metadata.name.clone().unwrap_or_default());
                if done.len() == want {
                    return;
                }
            }
        }
    });
    rx.await.expect("watch started");
    let start = Instant::now();
    for i in 0..deployments {
        let d: Deployment = serde_json::from_value(serde_json::json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": format!("bench-{i}")},
            "spec": {
                "replicas": replicas,
                "selector": {"matchLabels": {"app": format!("bench-{i}")}},
                "template": {
                    "metadata": {"labels": {"app": format!("bench-{i}")}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1.27"}]},
                },
            },
        }))
        .expect("deployment");
        api.create(&PostParams::default(), &d)
            .await
            .expect("create");
    }
    tokio::time::timeout(Duration::from_secs(600), waiter)
        .await
        .expect("all deployments available within 10 minutes")
        .expect("waiter");
    let available = start.elapsed();
    let pods = cluster
        .server()
        .store
        .list(
            &rollgit_devcluster::resources::GroupResource {
                group: String::new(),
                resource: "pods".into(),
            },
            None,
            None,
        )
        .1
        .len();
    // Let the last status writes and events settle, then measure at rest.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let t0 = cpu_ticks();
    let w0 = Instant::now();
    tokio::time::sleep(Duration::from_secs(rest)).await;
    let ticks = cpu_ticks() - t0;
    let wall = w0.elapsed().as_secs_f64();
    let cpu_pct = ticks as f64 / 100.0 / wall * 100.0;
    println!("| measure | value |");
    println!("|---|---|");
    println!("| deployments × replicas | {deployments} × {replicas} ({pods} pods) |");
    println!(
        "| time until all available (ready delay 1 s) | {:.2} s |",
        available.as_secs_f64()
    );
    println!("| CPU at rest over {rest} s | {cpu_pct:.2}% of one core |");
    cluster.shutdown().await;
}
