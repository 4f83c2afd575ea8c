//! Shared helpers for the dev cluster scenario tests: an in-process dev cluster on a free
//! loopback port with its own temporary directory, the real `kubectl`, a kube-rs client, and a
//! minimal raw HTTP client for requests no well-behaved client would send.

#![allow(dead_code)]

pub mod rollouts;
pub mod world;

use rollgit_devcluster::{Config, DevCluster};
use serde_json::Value;
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

/// The real kubectl (a dispatcher that runs the client matching the server's minor version).
pub const KUBECTL: &str = "/usr/bin/kubectl";

/// How long any single kubectl invocation or awaited condition may take.
pub const WAIT: Duration = Duration::from_secs(60);

/// A running dev cluster with a temporary directory for its kubeconfig and kubectl's cache.
pub struct TestCluster {
    pub cluster: DevCluster,
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    cache: PathBuf,
}

/// What a kubectl run produced.
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

/// A raw HTTP response: status code and parsed JSON body (or `Value::Null` when not JSON).
pub struct RawResponse {
    pub code: u16,
    pub body: Value,
    pub text: String,
}

impl TestCluster {
    /// Starts a dev cluster in memory with the default configuration.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// Starts a dev cluster without the simulated controllers and kubelet, as a bare API server
    /// (kube-apiserver without kube-controller-manager): only requests change the store.
    pub async fn start_api_only() -> Self {
        Self::start_with(|c| c.simulation.enabled = false).await
    }

    /// Starts a dev cluster after letting `tweak` adjust the configuration.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        Self::start_in(dir, tweak).await
    }

    /// Starts a dev cluster whose kubeconfig and kubectl cache live in `dir`.
    pub async fn start_in(dir: tempfile::TempDir, tweak: impl FnOnce(&mut Config)) -> Self {
        let kubeconfig = dir.path().join("kubeconfig");
        let cache = dir.path().join("kubectl-cache");
        let mut config = Config {
            listen: "127.0.0.1:0".parse().expect("loopback address"),
            kubeconfig: Some(kubeconfig.clone()),
            ..Config::default()
        };
        tweak(&mut config);
        let cluster = DevCluster::start(config).await.expect("dev cluster starts");
        Self {
            cluster,
            dir,
            kubeconfig,
            cache,
        }
    }

    /// Stops the cluster and hands back its directory (for a restart on the same data).
    pub async fn stop(self) -> tempfile::TempDir {
        self.cluster.shutdown().await;
        self.dir
    }

    /// `(current resourceVersion, number of stored objects)`.
    pub fn store_state(&self) -> (u64, usize) {
        let store = &self.cluster.server().store;
        (store.current_rv(), store.len())
    }

    /// Writes `content` to a file in the test directory and returns its path.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).expect("write test file");
        p
    }

    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut cmd = std::process::Command::new(KUBECTL);
        cmd.env("KUBECONFIG", &self.kubeconfig)
            .env("HOME", self.dir.path())
            .arg("--cache-dir")
            .arg(&self.cache)
            .args(args)
            .stdin(std::process::Stdio::null());
        let mut cmd = tokio::process::Command::from(cmd);
        cmd.kill_on_drop(true);
        cmd
    }

    /// Runs kubectl with `args` (no shell), bounded by [`WAIT`].
    pub async fn kubectl(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(WAIT, self.command(args).output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {WAIT:?}"))
            .expect("kubectl runs");
        Run::from(out)
    }

    /// Runs kubectl with another kubeconfig (a ServiceAccount's, see
    /// [`TestCluster::service_account_kubeconfig`]), bounded by [`WAIT`].
    pub async fn kubectl_with(&self, kubeconfig: &std::path::Path, args: &[&str]) -> Run {
        let mut cmd = self.command(args);
        cmd.env("KUBECONFIG", kubeconfig);
        let out = tokio::time::timeout(WAIT, cmd.output())
            .await
            .unwrap_or_else(|_| panic!("kubectl {args:?} did not finish within {WAIT:?}"))
            .expect("kubectl runs");
        Run::from(out)
    }

    /// Writes a kubeconfig in which the ServiceAccount `namespace/name` (which must exist) is
    /// the user: a token from the dev cluster, valid for an hour, over HTTPS (kubectl sends
    /// credentials only over TLS). Returns its path.
    pub fn service_account_kubeconfig(&self, namespace: &str, name: &str) -> PathBuf {
        let yaml = self
            .cluster
            .service_account_kubeconfig(namespace, name, Duration::from_secs(3600))
            .unwrap_or_else(|| panic!("the ServiceAccount {namespace}/{name} exists"));
        self.file(&format!("{namespace}-{name}.kubeconfig"), &yaml)
    }

    /// A kube-rs client (what rollgit uses) for a kubeconfig such as
    /// [`TestCluster::service_account_kubeconfig`] writes.
    pub async fn client_for(&self, kubeconfig: &std::path::Path) -> kube::Client {
        let yaml = std::fs::read_to_string(kubeconfig).expect("read the kubeconfig");
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("the kubeconfig parses");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kube-rs accepts the kubeconfig");
        kube::Client::try_from(config).expect("kube-rs client")
    }

    /// Runs kubectl and asserts it succeeded; returns stdout.
    pub async fn kubectl_ok(&self, args: &[&str]) -> String {
        let r = self.kubectl(args).await;
        assert_eq!(
            r.code,
            Some(0),
            "kubectl {args:?} failed:\nstdout: {}\nstderr: {}",
            r.stdout,
            r.stderr
        );
        r.stdout
    }

    /// Runs kubectl and asserts it failed; returns stderr.
    pub async fn kubectl_fails(&self, args: &[&str]) -> String {
        let r = self.kubectl(args).await;
        assert_ne!(
            r.code,
            Some(0),
            "kubectl {args:?} unexpectedly succeeded:\nstdout: {}",
            r.stdout
        );
        r.stderr
    }

    /// Runs kubectl with `args` and parses its stdout as JSON (for `-o json`).
    pub async fn kubectl_json(&self, args: &[&str]) -> Value {
        let out = self.kubectl_ok(args).await;
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("kubectl {args:?} JSON: {e}\n{out}"))
    }

    /// A kube-rs client for this cluster, built from its kubeconfig.
    pub async fn client(&self) -> kube::Client {
        let yaml = self.cluster.kubeconfig();
        let kubeconfig = kube::config::Kubeconfig::from_yaml(&yaml).expect("the kubeconfig parses");
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &Default::default())
            .await
            .expect("kube-rs accepts the kubeconfig");
        kube::Client::try_from(config).expect("kube-rs client")
    }

    /// Sends one raw HTTP/1.1 request and returns the status and body. Runs on a blocking
    /// thread; bounded by socket timeouts.
    pub async fn raw(
        &self,
        method: &str,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
    ) -> RawResponse {
        let addr = self.cluster.addr();
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: rollgit-tests/1\r\nAccept: application/json\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        tokio::task::spawn_blocking(move || raw_blocking(addr, head, body))
            .await
            .expect("raw request thread")
    }
}

fn raw_blocking(addr: std::net::SocketAddr, head: String, body: Vec<u8>) -> RawResponse {
    let mut stream = std::net::TcpStream::connect(addr).expect("connect to the dev cluster");
    stream.set_read_timeout(Some(WAIT)).expect("read timeout");
    stream.set_write_timeout(Some(WAIT)).expect("write timeout");
    let mut writer = stream.try_clone().expect("clone the socket");
    // Write on another thread: the server may answer (413) before it has read the whole body.
    let sender = std::thread::spawn(move || {
        let _ = writer.write_all(head.as_bytes());
        let _ = writer.write_all(&body);
        let _ = writer.flush();
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if !raw.is_empty() => {
                // A reset after the response arrived (unread request body) is fine.
                let _ = e;
                break;
            }
            Err(e) => panic!("reading the response: {e}"),
        }
        if response_complete(&raw) {
            break;
        }
    }
    let _ = sender.join();
    parse_response(&raw)
}

fn split_head(raw: &[u8]) -> Option<(String, &[u8])> {
    let pos = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    Some((
        String::from_utf8_lossy(&raw[..pos]).into_owned(),
        &raw[pos + 4..],
    ))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then_some(v.trim())
    })
}

fn response_complete(raw: &[u8]) -> bool {
    let Some((head, body)) = split_head(raw) else {
        return false;
    };
    if let Some(len) = header(&head, "content-length").and_then(|l| l.parse::<usize>().ok()) {
        return body.len() >= len;
    }
    body.ends_with(b"0\r\n\r\n")
}

fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let Some(pos) = body.windows(2).position(|w| w == b"\r\n") else {
            return out;
        };
        let size_text = String::from_utf8_lossy(&body[..pos]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("0").trim(), 16)
            .expect("chunk size");
        if size == 0 {
            return out;
        }
        let start = pos + 2;
        out.extend_from_slice(&body[start..start + size]);
        body = &body[start + size + 2..];
    }
}

fn parse_response(raw: &[u8]) -> RawResponse {
    let (head, body) = split_head(raw)
        .unwrap_or_else(|| panic!("incomplete HTTP response: {}", String::from_utf8_lossy(raw)));
    let code: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .expect("HTTP status code");
    let body = if header(&head, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        dechunk(body)
    } else {
        body.to_vec()
    };
    let text = String::from_utf8_lossy(&body).into_owned();
    RawResponse {
        code,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// Splits `kubectl get` table output into rows of whitespace-separated cells. Headers with
/// spaces (`NOMINATED NODE`) are split too; callers compare against the split form.
pub fn table_rows(out: &str) -> Vec<Vec<String>> {
    out.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect()
}

/// Splits table output into rows of cells using the header's column offsets, which keeps
/// multi-word headers (`NOMINATED NODE`, `LAST SEEN`) and cells with spaces intact.
pub fn table_columns(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines().filter(|l| !l.trim().is_empty());
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    // A column starts where a non-space follows at least two spaces (or at 0).
    let bytes = header.as_bytes();
    let mut starts = vec![0usize];
    for i in 2..bytes.len() {
        if bytes[i] != b' ' && bytes[i - 1] == b' ' && bytes[i - 2] == b' ' {
            starts.push(i);
        }
    }
    let cut = |line: &str| -> Vec<String> {
        starts
            .iter()
            .enumerate()
            .map(|(n, &s)| {
                let e = starts
                    .get(n + 1)
                    .copied()
                    .unwrap_or(line.len())
                    .min(line.len());
                line.get(s.min(line.len())..e)
                    .unwrap_or("")
                    .trim()
                    .to_string()
            })
            .collect()
    };
    std::iter::once(header).chain(lines).map(cut).collect()
}

/// Names of the items of a `List` JSON object, in order.
pub fn item_names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .expect("a list has items")
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .expect("item name")
                .to_string()
        })
        .collect()
}

/// `rollgit run` following `repo`'s `apps/*` every second against `cluster`, with its state in
/// `state` and its log (at `level`) in `state/<log>`: a test kills it and starts it again.
pub fn spawn_rollgit_run(
    cluster: &TestCluster,
    repo: &str,
    state: &std::path::Path,
    log: &str,
    level: &str,
) -> tokio::process::Child {
    let log = std::fs::File::create(state.join(log)).expect("a log file");
    tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .args([
            "run",
            "--repo",
            repo,
            "--path",
            "apps/*",
            "--interval",
            "1s",
        ])
        .arg("--kubeconfig")
        .arg(&cluster.kubeconfig)
        .arg("--state-dir")
        .arg(state)
        .env("ROLLGIT_LOG", level)
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("rollgit run starts")
}
