//! Dev cluster benchmark: creates/s and server-side applies/s through HTTP, watch delivery
//! latency, and resident memory with 10,000 Deployments stored; `kubectl apply --server-side`
//! against the same server in the same run for comparison.
//!
//! The API server alone is measured (`--no-simulation`): no controllers turn the Deployments
//! into Pods; `benches/workloads.rs` measures the simulation.
//!
//! Run: `cargo bench --bench devcluster` (set `BENCH_OBJECTS` to change the 10,000).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

struct Conn {
    io: BufReader<TcpStream>,
}

impl Conn {
    async fn open(addr: &str) -> std::io::Result<Self> {
        let s = TcpStream::connect(addr).await?;
        s.set_nodelay(true)?;
        Ok(Self {
            io: BufReader::new(s),
        })
    }

    async fn send(
        &mut self,
        method: &str,
        path: &str,
        ct: &str,
        body: &[u8],
    ) -> std::io::Result<()> {
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\nContent-Type: {ct}\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        let s = self.io.get_mut();
        s.write_all(head.as_bytes()).await?;
        s.write_all(body).await?;
        Ok(())
    }

    async fn read_head(&mut self) -> std::io::Result<(u16, Option<usize>, bool)> {
        let mut line = String::new();
        self.io.read_line(&mut line).await?;
        let status: u16 = line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let (mut len, mut chunked) = (None, false);
        loop {
            line.clear();
            self.io.read_line(&mut line).await?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let lower = l.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                len = v.trim().parse().ok();
            }
            if lower.starts_with("transfer-encoding:") && lower.contains("chunked") {
                chunked = true;
            }
        }
        Ok((status, len, chunked))
    }

    async fn read_chunk(&mut self) -> std::io::Result<Vec<u8>> {
        let mut line = String::new();
        self.io.read_line(&mut line).await?;
        let n = usize::from_str_radix(line.trim(), 16).unwrap_or(0);
        let mut buf = vec![0; n + 2];
        self.io.read_exact(&mut buf).await?;
        buf.truncate(n);
        Ok(buf)
    }

    async fn request(
        &mut self,
        method: &str,
        path: &str,
        ct: &str,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        self.send(method, path, ct, body).await?;
        let (status, len, chunked) = self.read_head().await?;
        let mut out = Vec::new();
        if let Some(n) = len {
            out.resize(n, 0);
            self.io.read_exact(&mut out).await?;
        } else if chunked {
            loop {
                let c = self.read_chunk().await?;
                if c.is_empty() {
                    break;
                }
                out.extend_from_slice(&c);
            }
        }
        Ok((status, out))
    }
}

fn deployment(name: &str, label: &str) -> String {
    format!(
        r#"{{"apiVersion":"apps/v1","kind":"Deployment","metadata":{{"name":"{name}","labels":{{"app":"{name}","rev":"{label}"}}}},"spec":{{"replicas":3,"selector":{{"matchLabels":{{"app":"{name}"}}}},"template":{{"metadata":{{"labels":{{"app":"{name}"}}}},"spec":{{"containers":[{{"name":"web","image":"nginx:1.27","ports":[{{"containerPort":80}}],"env":[{{"name":"MODE","value":"bench"}}],"resources":{{"requests":{{"cpu":"100m","memory":"64Mi"}}}}}}]}}}}}}}}"#
    )
}

async fn run_parallel<F>(addr: &str, n: usize, workers: usize, make: F) -> Duration
where
    F: Fn(usize) -> (String, String, &'static str, String) + Send + Sync + 'static + Clone,
{
    let start = Instant::now();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let addr = addr.to_string();
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut c = Conn::open(&addr).await.expect("connect");
            let mut i = w;
            while i < n {
                let (method, path, ct, body) = make(i);
                let (status, resp) = c
                    .request(&method, &path, ct, body.as_bytes())
                    .await
                    .expect("request");
                assert!(
                    status < 300,
                    "{method} {path}: {status} {}",
                    String::from_utf8_lossy(&resp)
                );
                i += workers;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    start.elapsed()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: usize = std::env::var("BENCH_OBJECTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let addr = format!("127.0.0.1:{port}");
    let kubeconfig = dir.path().join("kubeconfig");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .args([
            "devcluster",
            "--no-simulation",
            "--listen",
            &addr,
            "--kubeconfig",
        ])
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the dev cluster");
    let pid = child.id();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut probe = loop {
        if let Ok(mut c) = Conn::open(&addr).await
            && let Ok((200, _)) = c.request("GET", "/readyz", "application/json", b"").await
        {
            break c;
        }
        assert!(
            Instant::now() < deadline,
            "dev cluster did not become ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let rss_empty = rss_kib(pid);
    let workers = 8;

    // 1. Creates.
    let created = run_parallel(&addr, n, workers, |i| {
        (
            "POST".into(),
            "/apis/apps/v1/namespaces/default/deployments".into(),
            "application/json",
            deployment(&format!("d{i}"), "a"),
        )
    })
    .await;
    let rss_full = rss_kib(pid);

    // 2. Server-side applies that change each object (a label), with 10,000 stored.
    let applied = run_parallel(&addr, n, workers, |i| {
        let name = format!("d{i}");
        (
            "PATCH".into(),
            format!(
                "/apis/apps/v1/namespaces/default/deployments/{name}?fieldManager=bench&force=true"
            ),
            "application/apply-patch+yaml",
            deployment(&name, "b"),
        )
    })
    .await;

    // 3. Watch delivery latency: a watch on ConfigMaps, then sequential creates.
    let mut watch = Conn::open(&addr).await.expect("watch connect");
    let (_, list) = probe
        .request(
            "GET",
            "/api/v1/namespaces/default/configmaps",
            "application/json",
            b"",
        )
        .await
        .expect("list");
    let rv = serde_json::from_slice::<serde_json::Value>(&list).expect("list json")["metadata"]["resourceVersion"]
        .as_str()
        .unwrap_or("0")
        .to_string();
    watch
        .send(
            "GET",
            &format!("/api/v1/namespaces/default/configmaps?watch=true&resourceVersion={rv}"),
            "application/json",
            b"",
        )
        .await
        .expect("watch");
    let (status, _, chunked) = watch.read_head().await.expect("watch head");
    assert!(status == 200 && chunked, "watch answered {status}");
    let samples = 2_000;
    let mut lat = Vec::with_capacity(samples);
    let mut pending = Vec::new();
    for i in 0..samples {
        let body = format!(
            r#"{{"apiVersion":"v1","kind":"ConfigMap","metadata":{{"name":"w{i}"}},"data":{{"k":"v"}}}}"#
        );
        let t0 = Instant::now();
        probe
            .request(
                "POST",
                "/api/v1/namespaces/default/configmaps",
                "application/json",
                body.as_bytes(),
            )
            .await
            .expect("create cm");
        let needle = format!("\"name\":\"w{i}\"");
        loop {
            if pending
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                pending.clear();
                break;
            }
            let c = watch.read_chunk().await.expect("watch chunk");
            pending.extend_from_slice(&c);
        }
        lat.push(t0.elapsed());
    }
    lat.sort();

    // 4. kubectl apply --server-side of 500 Deployments (one invocation) against the same server.
    let k = 500.min(n);
    let mut manifest = String::new();
    for i in 0..k {
        manifest.push_str(&deployment(&format!("k{i}"), "k"));
        manifest.push('\n');
    }
    let file = dir.path().join("many.json");
    std::fs::write(&file, &manifest).expect("write manifest");
    let t = Instant::now();
    let out = Command::new("kubectl")
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args([
            "apply",
            "--server-side",
            "--field-manager=bench-kubectl",
            "-f",
        ])
        .arg(&file)
        .output()
        .expect("run kubectl");
    let kubectl_time = t.elapsed();
    assert!(
        out.status.success(),
        "kubectl: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let kubectl_rate = k as f64 / kubectl_time.as_secs_f64();
    let apply_rate = n as f64 / applied.as_secs_f64();

    println!("| measure | value |");
    println!("|---|---|");
    println!("| objects | {n} Deployments, {workers} keep-alive HTTP connections |");
    println!("| creates/s | {:.0} |", n as f64 / created.as_secs_f64());
    println!("| server-side applies/s (each changes the object) | {apply_rate:.0} |");
    println!(
        "| watch delivery latency p50 / p99 (create sent → event read) | {:.2} ms / {:.2} ms |",
        percentile(&lat, 0.5).as_secs_f64() * 1e3,
        percentile(&lat, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "| resident memory: empty / with {n} Deployments | {} MiB / {} MiB |",
        rss_empty / 1024,
        rss_full / 1024
    );
    println!(
        "| kubectl apply --server-side of {k} Deployments (one run) | {:.2} s = {kubectl_rate:.0}/s |",
        kubectl_time.as_secs_f64()
    );
    println!(
        "| ratio: HTTP applies/s ÷ kubectl applies/s | {:.1}× |",
        apply_rate / kubectl_rate
    );
    let _ = child.kill();
    let _ = child.wait();
}
