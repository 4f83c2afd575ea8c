//! Initial sync benchmark (issue 19): API requests per applied object, and objects/s next to a
//! raw server-side-apply client and to `kubectl apply --server-side`, in one run against one
//! dev cluster.
//!
//! A generated Git repository of `BENCH_APPS` apps (default 1,000) of `BENCH_OBJECTS_PER_APP`
//! objects each (default 10: a Deployment, a Service, a ServiceAccount and ConfigMaps) is
//! followed by `rollgit run` (a child process) against `rollgit devcluster --no-simulation`
//! (another child process). Measured:
//! - **requests per applied object**: the dev cluster's `apiserver_request_total` counter
//!   (`/metrics`, as kube-apiserver's) read just before the daemon starts and when its log says
//!   the last app was applied, divided by the objects applied; every request of the daemon is
//!   counted (CRD install, discovery, controllers' watches, look-ups, dry runs, applies, status
//!   writes), by verb;
//! - **rollgit objects/s**: daemon start → the last app's `applied` log line;
//! - **raw SSA objects/s**: the same objects, as the same JSON, server-side applied (force,
//!   `fieldValidation=Strict`) by this process over 8 keep-alive HTTP/1.1 connections into
//!   another namespace, right after the daemon's sync, in the same run;
//! - **kubectl objects/s**: `kubectl apply --server-side -R -f` of the same files into a third
//!   namespace;
//! - **where the sync's time goes**: when the daemon logged the commit (fetch and read done),
//!   its first and last `applied` line, and the CPU time (utime + stime, `/proc/PID/stat`) the
//!   daemon and the dev cluster used from the daemon's start to its last `applied` line, next
//!   to the dev cluster's CPU time for the raw client's applies.
//!
//! Run: `cargo bench --bench sync` (`BENCH_APPS`, `BENCH_OBJECTS_PER_APP` change the shape;
//! `BENCH_CONCURRENT_APPS` sets `sync.concurrentApps`).

mod common;

use common::git;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The objects of app `i`: a Deployment, a Service, a ServiceAccount, then ConfigMaps.
fn app_objects(i: usize, per_app: usize) -> Vec<Value> {
    let app = format!("app-{i:04}");
    let mut out = vec![
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": app, "labels": {"app": app}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": app}},
                "template": {"metadata": {"labels": {"app": app}},
                    "spec": {"serviceAccountName": app, "containers": [{"name": "web",
                        "image": "nginx:1.27", "ports": [{"containerPort": 8080}],
                        "env": [{"name": "APP", "value": app}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}}]}}}}),
        json!({"apiVersion": "v1", "kind": "Service", "metadata": {"name": app},
            "spec": {"selector": {"app": app},
                "ports": [{"name": "http", "port": 80, "targetPort": 8080}]}}),
        json!({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": app}}),
    ];
    let mut c = 0;
    while out.len() < per_app {
        out.push(json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": format!("{app}-cfg-{c}")},
            "data": {"LOG_LEVEL": "info", format!("FEATURE_{c}"): "on",
                "config.json": format!("{{\"app\": \"{app}\", \"part\": {c}}}")}}));
        c += 1;
    }
    out.truncate(per_app);
    out
}

/// Writes app `i` under `root/apps/` as one multi-document YAML file (JSON documents).
fn write_app(root: &Path, i: usize, per_app: usize) {
    let dir = root.join("apps").join(format!("app-{i:04}"));
    std::fs::create_dir_all(&dir).expect("create app dir");
    let docs: Vec<String> = app_objects(i, per_app)
        .iter()
        .map(|o| serde_json::to_string(o).expect("json"))
        .collect();
    std::fs::write(dir.join("objects.yaml"), docs.join("\n---\n") + "\n").expect("write app");
}

/// One keep-alive HTTP/1.1 connection to the dev cluster (loopback HTTP: the admin).
struct Conn {
    io: tokio::io::BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: &str) -> Self {
        let s = TcpStream::connect(addr).await.expect("connect");
        s.set_nodelay(true).expect("nodelay");
        Self {
            io: tokio::io::BufReader::new(s),
        }
    }

    /// Sends a request and reads its response (Content-Length or chunked).
    async fn request(&mut self, method: &str, path: &str, ct: &str, body: &[u8]) -> (u16, Vec<u8>) {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.io.get_mut();
        s.write_all(head.as_bytes()).await.expect("send");
        s.write_all(body).await.expect("send body");
        let mut line = String::new();
        self.io.read_line(&mut line).await.expect("status line");
        let status = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (mut len, mut chunked) = (None, false);
        loop {
            line.clear();
            self.io.read_line(&mut line).await.expect("header");
            let l = line.trim_end().to_ascii_lowercase();
            if l.is_empty() {
                break;
            }
            if let Some(v) = l.strip_prefix("content-length:") {
                len = v.trim().parse().ok();
            }
            if l.starts_with("transfer-encoding:") && l.contains("chunked") {
                chunked = true;
            }
        }
        let mut out = Vec::new();
        if let Some(n) = len {
            out.resize(n, 0);
            self.io.read_exact(&mut out).await.expect("body");
        } else if chunked {
            loop {
                line.clear();
                self.io.read_line(&mut line).await.expect("chunk size");
                let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
                let mut buf = vec![0; n + 2];
                self.io.read_exact(&mut buf).await.expect("chunk");
                if n == 0 {
                    break;
                }
                buf.truncate(n);
                out.extend_from_slice(&buf);
            }
        }
        (status, out)
    }
}

/// utime + stime of a process, in seconds (USER_HZ = 100 on Linux).
fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read stat");
    let after = stat.rsplit(')').next().expect("stat format");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime");
    ticks as f64 / 100.0
}

/// The URL path of `obj` in namespace `ns`.
fn object_path(obj: &Value, ns: &str) -> String {
    let plural = match obj["kind"].as_str().unwrap_or_default() {
        "Deployment" => "deployments",
        "Service" => "services",
        "ServiceAccount" => "serviceaccounts",
        _ => "configmaps",
    };
    let base = match obj["apiVersion"].as_str().unwrap_or_default() {
        "v1" => "/api/v1".to_string(),
        gv => format!("/apis/{gv}"),
    };
    format!(
        "{base}/namespaces/{ns}/{plural}/{}",
        obj["metadata"]["name"].as_str().unwrap_or_default()
    )
}

/// `apiserver_request_total` of the dev cluster, by its labels.
async fn request_counts(addr: &str) -> BTreeMap<String, u64> {
    let mut c = Conn::open(addr).await;
    let (status, body) = c.request("GET", "/metrics", "text/plain", b"").await;
    assert_eq!(status, 200, "GET /metrics");
    String::from_utf8_lossy(&body)
        .lines()
        .filter_map(|l| l.strip_prefix("apiserver_request_total{"))
        .filter_map(|l| {
            let (labels, n) = l.rsplit_once("} ")?;
            Some((labels.to_string(), n.trim().parse().ok()?))
        })
        .collect()
}

/// `verb` (with ` dry-run` for dry runs) and resource of a series' labels.
fn series_name(labels: &str) -> String {
    let get = |k: &str| {
        labels
            .split(',')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
            .map(|v| v.trim_end_matches('"').to_string())
            .unwrap_or_default()
    };
    let verb = get("verb");
    let dry = if get("dry_run").is_empty() {
        ""
    } else {
        " (dry run)"
    };
    let resource = match (get("resource"), get("subresource")) {
        (r, _) if r.is_empty() => "discovery, /version, OpenAPI".to_string(),
        (r, s) if s.is_empty() => r,
        (r, s) => format!("{r}/{s}"),
    };
    format!("{verb}{dry} {resource}")
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let apps = env("BENCH_APPS", 1_000);
    let per_app = env("BENCH_OBJECTS_PER_APP", 10).max(1);
    let concurrent_apps = env("BENCH_CONCURRENT_APPS", 8).max(1);
    let objects = apps * per_app;
    let bin = env!("CARGO_BIN_EXE_rollgit");
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();

    // The repository: apps/app-NNNN/objects.yaml, one commit.
    let repo = base.join("repo");
    std::fs::create_dir_all(&repo).expect("repo dir");
    git(&repo, &["init", "-q", "-b", "main"]);
    for i in 0..apps {
        write_app(&repo, i, per_app);
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "apps"]);

    let (mut cluster, _client, kubeconfig) =
        common::start_devcluster(bin, base, &["--no-simulation"]).await;
    let server = kube::config::Kubeconfig::read_from(&kubeconfig)
        .expect("kubeconfig")
        .clusters
        .first()
        .and_then(|c| c.cluster.as_ref())
        .and_then(|c| c.server.clone())
        .expect("server URL");
    let addr = server.trim_start_matches("http://").to_string();
    let mut admin = Conn::open(&addr).await;
    for ns in ["rollgit-bench", "raw-bench", "kubectl-bench"] {
        let body = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
        let (status, resp) = admin
            .request(
                "POST",
                "/api/v1/namespaces",
                "application/json",
                body.to_string().as_bytes(),
            )
            .await;
        assert!(
            status < 300,
            "create {ns}: {}",
            String::from_utf8_lossy(&resp)
        );
    }

    // rollgit: daemon start → every app's `applied` line; requests counted in between.
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
    namespace: rollgit-bench
clusters:
  - name: dev
    kubeconfig: {kubeconfig}
stateDir: {state}
sync:
  concurrentApps: {concurrent_apps}
",
            repo = repo.display(),
            kubeconfig = kubeconfig.display(),
            state = base.join("state").display(),
        ),
    )
    .expect("write config");
    let before = request_counts(&addr).await;
    let cluster_cpu_before = cpu_secs(cluster.id());
    let started = Instant::now();
    let mut daemon = Command::new(bin)
        .args(["run", "--config"])
        .arg(&config)
        .env("ROLLGIT_LOG", "warn,rollgit::daemon=info")
        .env("NO_COLOR", "1")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the daemon");
    let stderr = daemon.stderr.take().expect("piped stderr");
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let daemon_pid = daemon.id();
    let mut applied = 0;
    let mut warnings = Vec::new();
    let (mut commit_seen, mut first_applied) = (None, None);
    let deadline = started + Duration::from_secs(900);
    while applied < apps {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(l)) => l,
            Ok(None) => panic!("the daemon exited during the initial sync"),
            Err(_) => panic!("the initial sync did not finish within 900 s"),
        };
        // `INFO rollgit::daemon::worker: applied app=… errors=0`
        if line.contains(": applied app=") {
            assert!(line.contains(" errors=0"), "{line}");
            applied += 1;
            first_applied.get_or_insert_with(|| started.elapsed());
        } else if line.contains(": new commit ") {
            commit_seen.get_or_insert_with(|| started.elapsed());
        } else if line.contains(" WARN ") || line.contains(" ERROR ") {
            warnings.push(line);
        }
    }
    let rollgit_time = started.elapsed();
    let daemon_cpu = cpu_secs(daemon_pid);
    let cluster_cpu = cpu_secs(cluster.id()) - cluster_cpu_before;
    let after = request_counts(&addr).await;
    // The watches started once the apps were applied: their first lists, counted apart.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let settled = request_counts(&addr).await;
    let _ = daemon.kill();
    let _ = daemon.wait();
    for w in warnings.iter().take(5) {
        eprintln!("daemon warning: {w}");
    }
    let mut by_series: BTreeMap<String, u64> = BTreeMap::new();
    let mut total = 0u64;
    for (labels, n) in &after {
        let d = n - before.get(labels).copied().unwrap_or(0);
        if d > 0 {
            *by_series.entry(series_name(labels)).or_default() += d;
            total += d;
        }
    }
    let later: u64 = settled
        .iter()
        .map(|(l, n)| n - after.get(l).copied().unwrap_or(0))
        .sum();
    let (status, body) = admin
        .request(
            "GET",
            "/api/v1/namespaces/rollgit-bench/configmaps?labelSelector=rollgit.dev%2Frepo%3Dbench",
            "application/json",
            b"",
        )
        .await;
    assert_eq!(status, 200);
    let cms: Value = serde_json::from_slice(&body).expect("configmap list");
    let want_cms = (0..apps)
        .flat_map(|i| app_objects(i, per_app))
        .filter(|o| o["kind"] == "ConfigMap")
        .count();
    assert_eq!(
        cms["items"].as_array().map_or(0, Vec::len),
        want_cms,
        "ConfigMaps rollgit applied"
    );

    // Raw server-side apply of the same objects, 8 connections, into another namespace.
    let bodies: Vec<(String, String)> = (0..apps)
        .flat_map(|i| app_objects(i, per_app))
        .map(|o| {
            (
                object_path(&o, "raw-bench")
                    + "?fieldManager=bench&force=true&fieldValidation=Strict",
                o.to_string(),
            )
        })
        .collect();
    let bodies = std::sync::Arc::new(bodies);
    let workers = 8;
    let raw_cpu_before = cpu_secs(cluster.id());
    let t = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let bodies = bodies.clone();
        let addr = addr.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&addr).await;
            let mut i = w;
            while i < bodies.len() {
                let (path, body) = &bodies[i];
                let (status, resp) = c
                    .request(
                        "PATCH",
                        path,
                        "application/apply-patch+yaml",
                        body.as_bytes(),
                    )
                    .await;
                assert!(
                    status < 300,
                    "{path}: {status} {}",
                    String::from_utf8_lossy(&resp)
                );
                i += workers;
            }
        }));
    }
    for task in tasks {
        task.await.expect("raw client");
    }
    let raw_time = t.elapsed();
    let raw_cluster_cpu = cpu_secs(cluster.id()) - raw_cpu_before;

    // kubectl apply --server-side of the same files, into a third namespace.
    let t = Instant::now();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(base.join("kube-cache"))
        .args([
            "apply",
            "--server-side",
            "--field-manager=bench-kubectl",
            "-n",
            "kubectl-bench",
            "-R",
            "-f",
        ])
        .arg(repo.join("apps"))
        .output()
        .expect("run kubectl");
    let kubectl_time = t.elapsed();
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubectl_objects = out
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .count();
    assert_eq!(kubectl_objects, objects, "objects kubectl applied");
    let _ = cluster.kill();
    let _ = cluster.wait();

    let rate = |d: Duration| objects as f64 / d.as_secs_f64();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "| measure | value | target |");
    let _ = writeln!(out, "|---|---|---|");
    let _ = writeln!(
        out,
        "| repository | {apps} apps × {per_app} objects = {objects} (Deployment, Service, ServiceAccount, ConfigMaps), `sync.concurrentApps: {concurrent_apps}` | |"
    );
    let _ = writeln!(
        out,
        "| API requests per applied object, daemon start → last app applied | {:.2} ({total} requests) | ≤ 1.1 |",
        total as f64 / objects as f64
    );
    let _ = writeln!(
        out,
        "| rollgit initial sync | {:.2} s = {:.0} objects/s | |",
        rollgit_time.as_secs_f64(),
        rate(rollgit_time)
    );
    let _ = writeln!(
        out,
        "| raw server-side apply, 8 connections, same objects | {:.2} s = {:.0} objects/s | |",
        raw_time.as_secs_f64(),
        rate(raw_time)
    );
    let _ = writeln!(
        out,
        "| `kubectl apply --server-side -R -f apps/` | {:.2} s = {:.0} objects/s | |",
        kubectl_time.as_secs_f64(),
        rate(kubectl_time)
    );
    let _ = writeln!(
        out,
        "| rollgit ÷ raw SSA (objects/s) | {:.0} % | ≥ 80 % |",
        100.0 * raw_time.as_secs_f64() / rollgit_time.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "| rollgit ÷ kubectl (objects/s) | {:.1}× | ≥ 20× |",
        kubectl_time.as_secs_f64() / rollgit_time.as_secs_f64()
    );
    let secs = |d: Option<Duration>| {
        d.map_or_else(|| "-".to_string(), |d| format!("{:.2} s", d.as_secs_f64()))
    };
    let _ = writeln!(
        out,
        "\nwhere the sync's time goes: commit logged (fetched, read) at {}, first app applied at {}, last at {:.2} s; CPU during the sync: daemon {daemon_cpu:.2} s, dev cluster {cluster_cpu:.2} s (for the raw client's applies: {raw_cluster_cpu:.2} s)",
        secs(commit_seen),
        secs(first_applied),
        rollgit_time.as_secs_f64(),
    );
    let _ = writeln!(
        out,
        "\nrequests of the initial sync, by verb and resource:\n"
    );
    let _ = writeln!(out, "| requests | count | per object |");
    let _ = writeln!(out, "|---|---|---|");
    let mut series: Vec<(String, u64)> = by_series.into_iter().collect();
    series.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    for (name, n) in series {
        let _ = writeln!(out, "| {name} | {n} | {:.3} |", n as f64 / objects as f64);
    }
    let _ = writeln!(
        out,
        "\n(in the 3 s after the last app was applied, {later} more requests: the watches' first lists and status writes of health.)"
    );
}
