//! GitOps daemon benchmark: a generated Git repository of 1,000 apps / 10,000 objects, followed
//! by `rollgit run` against the dev cluster.
//!
//! Measured, in one run:
//! - **initial sync**: daemon start → every app's `applied` log line (then the labelled objects
//!   are counted in the cluster to confirm all 10,000 are there);
//! - **resident memory** of the daemon process after the initial sync (`VmRSS`, and the peak
//!   `VmHWM`, from `/proc/PID/status`);
//! - **no-op poll**: CPU time (utime + stime from `/proc/PID/stat`) of the daemon for one
//!   webhook-triggered sync when the branch did not move, averaged over many triggers, the idle
//!   rate measured just before subtracted;
//! - **one-file change**: `git commit` of a changed image in one app's Deployment → the new image
//!   seen on a watch of the dev cluster, and → that app's `applied` log line; the daemon must
//!   re-apply that app only (its log and every other object's resourceVersion are checked);
//! - `kubectl apply --server-side -R -f apps/` of the same 10,000 objects into another namespace
//!   of the same dev cluster, after the daemon stopped, and the ratio to the initial sync.
//!
//! Both the dev cluster and the daemon run as child processes of this one (the built `rollgit`
//! binary), so the daemon's CPU and memory are its own: nothing of the API server, the bench's
//! client or kubectl is counted. The dev cluster runs with `--no-simulation`: no controllers turn
//! the Deployments into ReplicaSets and Pods, so the figures are rollgit's and the API server's,
//! not the simulated kubelet's (the Deployments ask for 1 replica; without the simulation that
//! is only a field, and with it 1,000 Pods would be simulated during the sync).
//!
//! The repository is a local path, so commits are noticed through the daemon's file-system watch
//! on the refs (no poll interval in the one-file-change figure); the poll interval is 1 h so that
//! no poll lands in the measurements (any that does is counted as a sync, not hidden).
//!
//! Run: `cargo bench --bench gitops` (`BENCH_APPS` changes the 1,000 apps; `BENCH_CHANGES` the
//! number of one-file changes, `BENCH_NOOPS` the number of no-op triggers; `BENCH_RSS_TRACE=1`
//! prints the daemon's resident memory every 0.5 s, `BENCH_SELF_HEAL=false` runs it without
//! drift watches).

mod common;

use common::{free_addr, git, status_kib};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Service, ServiceAccount};
use kube::Api;
use kube::api::ListParams;
use kube::runtime::watcher;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Objects per app: a Deployment, a Service, a ServiceAccount and 7 ConfigMaps.
const OBJECTS_PER_APP: usize = 10;
const CONFIGMAPS_PER_APP: usize = 7;
const WEBHOOK_SECRET: &str = "bench-webhook-secret";

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn app_name(i: usize) -> String {
    format!("app-{i:04}")
}

fn deployment_yaml(app: &str, image: &str) -> String {
    format!(
        "apiVersion: apps/v1
kind: Deployment
metadata:
  name: {app}
  labels:
    app: {app}
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {app}
  template:
    metadata:
      labels:
        app: {app}
    spec:
      serviceAccountName: {app}
      containers:
        - name: web
          image: {image}
          ports:
            - containerPort: 8080
          env:
            - name: APP
              value: {app}
          envFrom:
            - configMapRef:
                name: {app}-cfg-0
          resources:
            requests:
              cpu: 50m
              memory: 64Mi
"
    )
}

fn write_app(root: &Path, i: usize) {
    let app = app_name(i);
    let dir = root.join("apps").join(&app);
    std::fs::create_dir_all(&dir).expect("create app dir");
    std::fs::write(
        dir.join("deployment.yaml"),
        deployment_yaml(&app, "nginx:1.27"),
    )
    .expect("write deployment");
    std::fs::write(
        dir.join("service.yaml"),
        format!(
            "apiVersion: v1
kind: Service
metadata:
  name: {app}
spec:
  selector:
    app: {app}
  ports:
    - name: http
      port: 80
      targetPort: 8080
---
apiVersion: v1
kind: ServiceAccount
metadata:
  name: {app}
"
        ),
    )
    .expect("write service");
    let mut cms = String::new();
    for c in 0..CONFIGMAPS_PER_APP {
        cms.push_str(&format!(
            "---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {app}-cfg-{c}
data:
  LOG_LEVEL: info
  FEATURE_{c}: \"on\"
  config.json: '{{\"app\": \"{app}\", \"part\": {c}, \"replicas\": 1}}'
"
        ));
    }
    std::fs::write(dir.join("config.yaml"), cms).expect("write configmaps");
}

/// utime + stime of a process, in clock ticks (USER_HZ = 100 on Linux).
fn cpu_ticks(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = stat.rsplit(')').next().expect("stat format");
    let f: Vec<&str> = after.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

/// On-CPU time of a process's live threads in ns (`/proc/PID/task/*/schedstat`), and how many
/// threads there are: finer than [`cpu_ticks`], but a thread that exits takes its time with it
/// (so the thread count is compared before and after).
fn cpu_ns(pid: u32) -> BTreeMap<String, u64> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task")).expect("read task dir") {
        let e = e.expect("task entry");
        if let Ok(s) = std::fs::read_to_string(e.path().join("schedstat")) {
            let ns = s
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
            out.insert(e.file_name().to_string_lossy().into_owned(), ns);
        }
    }
    out
}

/// CPU ns spent between two [`cpu_ns`] snapshots by the threads alive at both, and how many
/// threads of the first snapshot are gone.
fn cpu_ns_delta(a: &BTreeMap<String, u64>, b: &BTreeMap<String, u64>) -> (u64, usize) {
    let mut spent = 0;
    let mut gone = 0;
    for (tid, ns) in a {
        match b.get(tid) {
            Some(later) => spent += later.saturating_sub(*ns),
            None => gone += 1,
        }
    }
    // Threads started in between: all of their time is in the window.
    spent += b
        .iter()
        .filter(|(tid, _)| !a.contains_key(*tid))
        .map(|(_, ns)| ns)
        .sum::<u64>();
    (spent, gone)
}

/// What the daemon's log says (`ROLLGIT_LOG=warn,rollgit::daemon=info,rollgit_source=debug`).
#[derive(Debug)]
enum Log {
    /// `applied app=… errors=N` (one per app re-applied).
    Applied { app: String, errors: usize },
    /// `new commit … affected=N`.
    NewCommit { affected: usize },
    /// `resolved local repository … changed=…` (one per fetch).
    Resolved { changed: bool },
    /// A warning or error line.
    Warn(String),
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let start = line.find(&format!(" {name}="))? + name.len() + 2;
    line[start..].split_whitespace().next()
}

fn parse_log(line: &str) -> Option<Log> {
    if line.contains(" WARN ") || line.contains(" ERROR ") {
        return Some(Log::Warn(line.to_string()));
    }
    if line.contains("rollgit::daemon: applied ") {
        return Some(Log::Applied {
            app: field(line, "app")?.to_string(),
            errors: field(line, "errors")?.parse().ok()?,
        });
    }
    if line.contains("rollgit::daemon: new commit") {
        return Some(Log::NewCommit {
            affected: field(line, "affected")?.parse().ok()?,
        });
    }
    if line.contains("resolved local repository") {
        return Some(Log::Resolved {
            changed: field(line, "changed")? == "true",
        });
    }
    None
}

/// Reads the daemon's stderr on a thread; every recognised line with the time it was read.
fn follow_log(child: &mut Child) -> mpsc::UnboundedReceiver<(Instant, Log)> {
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(ev) = parse_log(&line) {
                let _ = tx.send((Instant::now(), ev));
            }
        }
    });
    rx
}

async fn next_log(
    rx: &mut mpsc::UnboundedReceiver<(Instant, Log)>,
    within: Duration,
    what: &str,
) -> (Instant, Log) {
    match tokio::time::timeout(within, rx.recv()).await {
        Ok(Some(ev)) => ev,
        Ok(None) => panic!("the daemon exited while waiting for {what}"),
        Err(_) => panic!("no {what} within {within:?}"),
    }
}

/// resourceVersion of every object the daemon applied, by `kind/name`.
async fn labelled_versions(client: &kube::Client, ns: &str) -> BTreeMap<String, String> {
    let lp = ListParams::default().labels("rollgit.dev/repo=bench");
    let mut out = BTreeMap::new();
    macro_rules! list {
        ($t:ty, $kind:literal) => {
            let api: Api<$t> = Api::namespaced(client.clone(), ns);
            for o in api.list(&lp).await.expect("list").items {
                out.insert(
                    format!("{}/{}", $kind, o.metadata.name.unwrap_or_default()),
                    o.metadata.resource_version.unwrap_or_default(),
                );
            }
        };
    }
    list!(Deployment, "Deployment");
    list!(Service, "Service");
    list!(ServiceAccount, "ServiceAccount");
    list!(ConfigMap, "ConfigMap");
    out
}

async fn post_webhook(addr: &str, repo: &str) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect webhook");
    let body = "{}";
    let req = format!(
        "POST /hooks/gitlab/{repo} HTTP/1.1\r\nHost: bench\r\nX-Gitlab-Token: {WEBHOOK_SECRET}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("send webhook");
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.expect("read webhook");
    resp.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1e3)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let apps = env("BENCH_APPS", 1_000);
    let changes = env("BENCH_CHANGES", 5).max(1);
    let noops = env("BENCH_NOOPS", 30).max(1);
    let objects = apps * OBJECTS_PER_APP;
    let bin = env!("CARGO_BIN_EXE_rollgit");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();

    // 1. The repository: apps/app-NNNN/{deployment,service,config}.yaml, one commit.
    let repo = base.join("repo");
    let t = Instant::now();
    std::fs::create_dir_all(&repo).expect("repo dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    for i in 0..apps {
        write_app(&repo, i);
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "1,000 apps"]);
    eprintln!(
        "generated {apps} apps / {objects} objects in {:.1} s",
        t.elapsed().as_secs_f64()
    );

    // 2. The dev cluster, API only.
    let (mut cluster, client, kubeconfig) =
        common::start_devcluster(bin, base, &["--no-simulation"]).await;

    // 3. The daemon, from a config file (the flags have no webhook secret).
    let listen = free_addr();
    let config = base.join("rollgit.yaml");
    std::fs::write(
        &config,
        format!(
            "repos:
  - name: bench
    url: {repo}
    branch: main
    paths: [\"apps/*\"]
    interval: 1h
    webhook:
      secretEnv: BENCH_WEBHOOK_SECRET
clusters:
  - name: dev
    kubeconfig: {kubeconfig}
listen: {listen}
stateDir: {state}
sync:
  selfHeal: {self_heal}
",
            repo = repo.display(),
            kubeconfig = kubeconfig.display(),
            state = base.join("state").display(),
            self_heal = std::env::var("BENCH_SELF_HEAL").unwrap_or_else(|_| "true".into()),
        ),
    )
    .expect("write config");
    let started = Instant::now();
    let mut daemon = Command::new(bin)
        .args(["run", "--config"])
        .arg(&config)
        .env(
            "ROLLGIT_LOG",
            "warn,rollgit::daemon=info,rollgit_source=debug",
        )
        .env("NO_COLOR", "1")
        .env("BENCH_WEBHOOK_SECRET", WEBHOOK_SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let pid = daemon.id();
    let mut log = follow_log(&mut daemon);
    if std::env::var_os("BENCH_RSS_TRACE").is_some() {
        tokio::spawn(async move {
            let t = Instant::now();
            loop {
                eprintln!(
                    "rss trace {:5.1} s: VmRSS {} MiB, RssAnon {} MiB, RssFile {} MiB",
                    t.elapsed().as_secs_f64(),
                    status_kib(pid, "VmRSS:") / 1024,
                    status_kib(pid, "RssAnon:") / 1024,
                    status_kib(pid, "RssFile:") / 1024
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
    }

    // Initial sync: every app applied.
    let mut applied = BTreeSet::new();
    let mut app_errors = 0;
    let mut warnings = Vec::new();
    let mut rendered_at = None;
    let sync_deadline = Duration::from_secs(900);
    while applied.len() < apps {
        let left = sync_deadline.saturating_sub(started.elapsed());
        match next_log(&mut log, left, "the initial sync").await {
            (_, Log::Applied { app, errors }) => {
                app_errors += errors;
                applied.insert(app);
            }
            (at, Log::NewCommit { .. }) => rendered_at = Some(at),
            (_, Log::Warn(w)) => warnings.push(w),
            _ => {}
        }
    }
    let initial_sync = started.elapsed();
    let rss_at_synced = status_kib(pid, "VmRSS:");
    let to_new_commit = rendered_at.map(|t| t.duration_since(started));
    assert_eq!(app_errors, 0, "apply errors in the initial sync");
    let versions = labelled_versions(&client, "default").await;
    assert_eq!(
        versions.len(),
        objects,
        "labelled objects in the cluster after the initial sync"
    );
    eprintln!(
        "initial sync: {:.1} s, {} warnings",
        initial_sync.as_secs_f64(),
        warnings.len()
    );
    for w in warnings.iter().take(5) {
        eprintln!("  {w}");
    }

    // Memory after the initial sync, once the status writes and watches settled.
    tokio::time::sleep(Duration::from_secs(3)).await;
    while log.try_recv().is_ok() {}
    let rss = status_kib(pid, "VmRSS:");
    let hwm = status_kib(pid, "VmHWM:");
    eprintln!(
        "daemon VmRSS when the last app was applied: {} MiB; 3 s later: {} MiB; peak {} MiB",
        rss_at_synced / 1024,
        rss / 1024,
        hwm / 1024
    );

    // No-op polls: webhook → fetch → head unchanged. The idle rate first, over as long a time.
    let idle_window = Duration::from_secs(5);
    let c0 = cpu_ticks(pid);
    let n0 = cpu_ns(pid);
    tokio::time::sleep(idle_window).await;
    let idle_ticks = cpu_ticks(pid) - c0;
    let (idle_ns, _) = cpu_ns_delta(&n0, &cpu_ns(pid));
    let mut latencies = Vec::new();
    let mut resolved = 0usize;
    let mut unexpected = Vec::new();
    let c0 = cpu_ticks(pid);
    let n0 = cpu_ns(pid);
    let t0 = Instant::now();
    for _ in 0..noops {
        let sent = Instant::now();
        assert_eq!(post_webhook(&listen, "bench").await, 202, "webhook refused");
        loop {
            match next_log(&mut log, Duration::from_secs(10), "the no-op fetch").await {
                (at, Log::Resolved { changed: false }) => {
                    resolved += 1;
                    latencies.push(at.duration_since(sent));
                    break;
                }
                (_, other) => unexpected.push(format!("{other:?}")),
            }
        }
        // Let the sync finish and the webhook connection close before the next trigger.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let noop_window = t0.elapsed();
    let noop_ticks = cpu_ticks(pid) - c0;
    let (noop_ns, threads_exited) = cpu_ns_delta(&n0, &cpu_ns(pid));
    while let Ok((_, ev)) = log.try_recv() {
        match ev {
            Log::Resolved { .. } => resolved += 1,
            other => unexpected.push(format!("{other:?}")),
        }
    }
    assert!(
        unexpected.is_empty(),
        "a no-op trigger did more than fetch: {unexpected:?}"
    );
    let idle_in_window = idle_ticks as f64 * noop_window.as_secs_f64() / idle_window.as_secs_f64();
    let noop_cpu_ms = ((noop_ticks as f64 - idle_in_window).max(0.0) * 10.0) / resolved as f64;
    let idle_ns_in_window = idle_ns as f64 * noop_window.as_secs_f64() / idle_window.as_secs_f64();
    let noop_sched_ms = (noop_ns as f64 - idle_ns_in_window).max(0.0) / 1e6 / resolved as f64;
    eprintln!(
        "no-op: {resolved} fetches in {:.1} s; ticks {noop_ticks} (idle {idle_ticks} per {idle_window:?}); schedstat {:.1} ms (idle {:.1} ms); threads exited {threads_exited}",
        noop_window.as_secs_f64(),
        noop_ns as f64 / 1e6,
        idle_ns as f64 / 1e6
    );

    // One-file changes: a new image in one app's Deployment.
    let mut to_visible = Vec::new();
    let mut to_applied = Vec::new();
    let mut commit_times = Vec::new();
    for round in 0..changes {
        let i = (apps / 2 + round * 97) % apps;
        let app = app_name(i);
        let image = format!("nginx:1.28.{round}");
        let before = labelled_versions(&client, "default").await;
        let api: Api<Deployment> = Api::namespaced(client.clone(), "default");
        let mut watch = watcher(
            api,
            watcher::Config::default().labels(&format!("rollgit.dev/app={app}")),
        )
        .boxed();
        loop {
            match watch.next().await {
                Some(Ok(watcher::Event::InitDone)) => break,
                Some(Ok(_)) => {}
                other => panic!("watch: {other:?}"),
            }
        }
        std::fs::write(
            repo.join("apps").join(&app).join("deployment.yaml"),
            deployment_yaml(&app, &image),
        )
        .expect("edit deployment");
        git(&repo, &["add", "-A"]);
        let t0 = Instant::now();
        git(&repo, &["commit", "-q", "-m", &format!("{app}: {image}")]);
        commit_times.push(t0.elapsed());
        let visible = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(ev) = watch.next().await {
                if let Ok(watcher::Event::Apply(d)) = ev {
                    let img = d
                        .spec
                        .and_then(|s| s.template.spec)
                        .and_then(|s| s.containers.first().and_then(|c| c.image.clone()));
                    if img.as_deref() == Some(image.as_str()) {
                        return t0.elapsed();
                    }
                }
            }
            panic!("watch ended");
        })
        .await
        .expect("the change did not reach the cluster within 30 s");
        to_visible.push(visible);
        let mut reapplied = Vec::new();
        let mut affected = None;
        loop {
            let (at, ev) = next_log(&mut log, Duration::from_secs(30), "the app's apply").await;
            match ev {
                Log::Applied { app: a, errors } => {
                    assert_eq!(errors, 0, "apply errors for {a}");
                    reapplied.push(a.clone());
                    if a == app {
                        to_applied.push(at.duration_since(t0));
                        break;
                    }
                }
                Log::NewCommit { affected: n } => affected = Some(n),
                Log::Resolved { .. } => {}
                Log::Warn(w) => eprintln!("warning: {w}"),
            }
        }
        // Anything else re-applied shows up shortly after; give it time to.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        while let Ok((_, ev)) = log.try_recv() {
            if let Log::Applied { app: a, .. } = ev {
                reapplied.push(a);
            }
        }
        assert_eq!(reapplied, vec![app.clone()], "apps re-applied");
        assert_eq!(affected, Some(1), "apps the commit affected");
        let after = labelled_versions(&client, "default").await;
        let changed: Vec<&String> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(*v))
            .map(|(k, _)| k)
            .collect();
        assert_eq!(
            changed,
            vec![&format!("Deployment/{app}")],
            "objects whose resourceVersion changed"
        );
    }

    // The daemon's job is done: stop it, then kubectl the same objects into another namespace.
    let _ = daemon.kill();
    let _ = daemon.wait();
    let kubectl = |args: &[&str]| {
        let out = Command::new("kubectl")
            .arg("--kubeconfig")
            .arg(&kubeconfig)
            .arg("--cache-dir")
            .arg(base.join("kube-cache"))
            .args(args)
            .output()
            .expect("run kubectl");
        assert!(
            out.status.success(),
            "kubectl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    kubectl(&["create", "namespace", "kubectl-bench"]);
    // The files as they were generated (the one-file changes reverted), as one directory tree.
    let plain: PathBuf = base.join("plain");
    for i in 0..apps {
        write_app(&plain, i);
    }
    let apps_dir = plain.join("apps");
    let t = Instant::now();
    let out = kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=bench-kubectl",
        "-n",
        "kubectl-bench",
        "-R",
        "-f",
        apps_dir.to_str().expect("utf-8 path"),
    ]);
    let kubectl_time = t.elapsed();
    let kubectl_objects = out.split(|b| *b == b'\n').filter(|l| !l.is_empty()).count();
    assert_eq!(kubectl_objects, objects, "objects kubectl applied");
    let _ = cluster.kill();
    let _ = cluster.wait();

    let noop_latency = median(latencies);
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "| measure | value | target |");
    let _ = writeln!(out, "|---|---|---|");
    let _ = writeln!(
        out,
        "| repository | {apps} apps / {objects} objects (Deployment, Service, ServiceAccount, {CONFIGMAPS_PER_APP} ConfigMaps per app), local path | |"
    );
    let _ = writeln!(
        out,
        "| initial sync: daemon start → every app applied | {:.1} s = {:.0} objects/s (fetch + render done at {}) | |",
        initial_sync.as_secs_f64(),
        objects as f64 / initial_sync.as_secs_f64(),
        to_new_commit.map(ms).unwrap_or_else(|| "?".into())
    );
    let _ = writeln!(
        out,
        "| resident memory after the initial sync (peak) | {} MiB ({} MiB) | < 100 MiB |",
        rss / 1024,
        hwm / 1024
    );
    let _ = writeln!(
        out,
        "| no-op poll: daemon CPU per trigger (head unchanged), mean of {resolved} | {noop_sched_ms:.2} ms by schedstat, {noop_cpu_ms:.1} ms by utime+stime (webhook → fetch done: {} median) | < 20 ms |",
        format_args!("{:.1} ms", noop_latency.as_secs_f64() * 1e3)
    );
    let _ = writeln!(
        out,
        "| one-file change: `git commit` → new image seen on a watch, median / max of {changes} | {} / {} | < 1 s |",
        ms(median(to_visible.clone())),
        ms(*to_visible.iter().max().expect("rounds"))
    );
    let _ = writeln!(
        out,
        "| one-file change: `git commit` → app applied and status written, median / max | {} / {} (only that app re-applied, only its Deployment's resourceVersion changed) | |",
        ms(median(to_applied.clone())),
        ms(*to_applied.iter().max().expect("rounds"))
    );
    let _ = writeln!(
        out,
        "| `kubectl apply --server-side -R -f apps/` of the same {objects} objects (another namespace, same dev cluster) | {:.1} s = {:.0} objects/s | |",
        kubectl_time.as_secs_f64(),
        objects as f64 / kubectl_time.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| ratio: kubectl time ÷ rollgit initial sync | {:.2}× |  |",
        kubectl_time.as_secs_f64() / initial_sync.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "\n(git commit itself took {} median; included in the one-file-change times.)",
        ms(median(commit_times))
    );
}
