//! Outages and signals (issue 19): the `rollgit run` binary, as a service manager runs it,
//! exits within 5 s of SIGTERM in every state (API down, a rollout running, a fetch hanging on
//! a server that never answers), and an API outage costs no CPU: the daemon waits, it does
//! not spin. A remote that fails every fetch gets a steady few fetches per poll interval, not
//! a growing storm of retry chains (issue 12).

mod common;

use common::TestCluster;
use common::rollouts::webservice_with_rollout;
use common::world::GitRepo;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long after SIGTERM the daemon may take to exit.
const EXIT_WITHIN: Duration = Duration::from_secs(5);

/// A `rollgit run` process whose stderr goes to a file.
struct Daemon {
    child: tokio::process::Child,
    log: std::path::PathBuf,
    listen: String,
    _dir: tempfile::TempDir,
}

impl Daemon {
    async fn start(repo: &str, kubeconfig: &Path, home: &Path) -> Self {
        let dir = tempfile::tempdir().expect("a directory");
        let log = dir.path().join("rollgit.log");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("a port")
            .local_addr()
            .expect("an address")
            .port();
        let listen = format!("127.0.0.1:{port}");
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"))
            .args([
                "run",
                "--repo",
                repo,
                "--interval",
                "1s",
                "--listen",
                &listen,
            ])
            .arg("--state-dir")
            .arg(dir.path().join("state"))
            .arg("--kubeconfig")
            .arg(kubeconfig)
            .env_remove("KUBECONFIG")
            .env("HOME", home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("ROLLGIT_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .kill_on_drop(true)
            .spawn()
            .expect("rollgit starts");
        Self {
            child,
            log,
            listen,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `/readyz`'s status code and body once the daemon serves it.
    async fn readyz(&self) -> (u16, String) {
        let deadline = Instant::now() + common::WAIT;
        loop {
            if let Ok(r) = http_get(&self.listen, "/readyz").await {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz never answered; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits (bounded) until the log contains `text`.
    async fn wait_log(&self, text: &str) {
        let deadline = Instant::now() + common::WAIT;
        while !self.log().contains(text) {
            assert!(
                Instant::now() < deadline,
                "the log never said {text:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// CPU seconds (user + system) the process used so far.
    fn cpu_seconds(&self) -> f64 {
        let pid = self.child.id().expect("running");
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("/proc stat");
        // Fields after the command name (which may hold spaces) in parentheses.
        let rest = &stat[stat.rfind(')').expect("a command name") + 2..];
        let f: Vec<&str> = rest.split(' ').collect();
        let ticks: f64 =
            f[11].parse::<f64>().expect("utime") + f[12].parse::<f64>().expect("stime");
        let hz = String::from_utf8(
            std::process::Command::new("getconf")
                .arg("CLK_TCK")
                .output()
                .expect("getconf")
                .stdout,
        )
        .expect("text")
        .trim()
        .parse::<f64>()
        .expect("a tick rate");
        ticks / hz
    }

    /// Sends SIGTERM and returns how long the process took to exit, and its exit code.
    async fn terminate(mut self) -> (Duration, Option<i32>, String) {
        let pid = self.child.id().expect("running");
        let sent = Instant::now();
        let kill = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill runs");
        assert!(kill.success());
        let status = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("rollgit still runs 30 s after SIGTERM:\n{}", self.log()))
            .expect("rollgit exits");
        (sent.elapsed(), status.code(), self.log())
    }
}

/// A bare HTTP/1.1 GET: status code and body.
async fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    s.read_to_string(&mut out).await?;
    let code = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    Ok((code, body))
}

fn assert_prompt_exit(what: &str, (took, code, log): (Duration, Option<i32>, String)) {
    assert!(
        took <= EXIT_WITHIN,
        "{what}: rollgit took {took:?} to exit after SIGTERM:\n{log}"
    );
    assert_eq!(code, Some(0), "{what}: exit code after SIGTERM:\n{log}");
    assert!(!log.contains("panicked"), "{what}: a panic:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_outage_costs_no_cpu_and_sigterm_ends_the_wait() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/a/cm.yaml",
        "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: a\ndata:\n  k: v\n",
    );
    git.commit_and_push("a").await;
    // The cluster the kubeconfig names is gone: nothing listens at its address.
    let cluster = TestCluster::start().await;
    let kubeconfig = cluster.kubeconfig.clone();
    let dir = cluster.stop().await;
    let d = Daemon::start(&git.url(), &kubeconfig, git.dir.path()).await;
    let (code, body) = d.readyz().await;
    assert_eq!(code, 503, "not ready while the API is down: {body}");
    assert!(
        body.contains("cluster"),
        "/readyz says what it waits for: {body}"
    );
    d.wait_log("connection refused").await;

    let before = d.cpu_seconds();
    let lines_before = d.log().lines().count();
    let window = Duration::from_secs(3);
    tokio::time::sleep(window).await;
    let used = d.cpu_seconds() - before;
    let lines = d.log().lines().count() - lines_before;
    eprintln!("outage: {used:.3} CPU seconds and {lines} log lines in {window:?}");
    // Spinning would use most of a core; waiting on backoff uses next to nothing.
    assert!(
        used < 0.05 * window.as_secs_f64(),
        "{used:.3} CPU seconds in {window:?} of outage"
    );
    // One line per backoff step (capped at 3 s) for each waiter, not one per attempt.
    assert!(lines <= 12, "{lines} log lines in {window:?}:\n{}", d.log());
    assert_prompt_exit("API down", d.terminate().await);
    drop(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_rollout_exits_promptly_and_a_restart_resumes_it() {
    let git = GitRepo::with_remote().await;
    git.write(
        "apps/shop/app.yaml",
        &webservice_with_rollout("registry.example/web:never-ready", "10m"),
    );
    git.commit_and_push("web").await;
    let cluster = TestCluster::start_with(|c| {
        c.simulation.fail_images = vec!["*:never-ready".into()];
    })
    .await;
    let d = Daemon::start(&git.url(), &cluster.kubeconfig, git.dir.path()).await;
    d.wait_log("rollout state").await;
    assert_prompt_exit("rollout running", d.terminate().await);

    // Nothing half-written: a new daemon picks the rollout up where it was.
    let d = Daemon::start(&git.url(), &cluster.kubeconfig, git.dir.path()).await;
    let (code, body) = d.readyz().await;
    assert!(code == 200 || code == 503, "{code} {body}");
    d.wait_log("applied").await;
    let rollouts = cluster
        .kubectl_json(&["get", "rollouts.rollgit.dev", "web", "-o", "json"])
        .await;
    assert_eq!(
        rollouts["status"]["rollingState"], "rollingInBatches",
        "{rollouts}"
    );
    assert_prompt_exit("rollout resumed", d.terminate().await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_a_fetch_hangs_exits_promptly() {
    // A Git server that accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let (seen_tx, mut seen) = tokio::sync::mpsc::channel::<()>(8);
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
            let _ = seen_tx.try_send(());
        }
    });
    let cluster = TestCluster::start().await;
    let home = tempfile::tempdir().expect("a home");
    let d = Daemon::start(
        &format!("http://{addr}/deploy.git"),
        &cluster.kubeconfig,
        home.path(),
    )
    .await;
    tokio::time::timeout(common::WAIT, seen.recv())
        .await
        .unwrap_or_else(|_| panic!("rollgit never fetched:\n{}", d.log()))
        .expect("a connection");
    assert_prompt_exit("fetch hanging", d.terminate().await);
    server.abort();
}

/// Issue 12, item 3: against a remote that fails every fetch, one retry chain per repository
/// (backoff capped at the poll interval), whatever triggers it: the number of fetches per
/// window does not grow over time, and stays at a few per poll interval (the poll and the
/// retry).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_against_a_failing_remote_do_not_multiply() {
    // A Git server that answers every request with 503 and records when.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let addr = listener.local_addr().expect("an address");
    let started = Instant::now();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Duration>::new()));
    let record = seen.clone();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                if let Ok(mut r) = record.lock() {
                    r.push(started.elapsed());
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    )
                    .await;
            });
        }
    });
    let cluster = TestCluster::start().await;
    let home = tempfile::tempdir().expect("a home");
    let d = Daemon::start(
        &format!("http://{addr}/deploy.git"),
        &cluster.kubeconfig,
        home.path(),
    )
    .await;
    // After the first failure, one window of 3 s for the backoff to ramp up to the poll
    // interval (1 s), then three windows of 3 s.
    d.wait_log("sync failed").await;
    let window = Duration::from_secs(3);
    let from = started.elapsed() + window;
    tokio::time::sleep(window * 4).await;
    let times = seen.lock().map(|t| t.clone()).unwrap_or_default();
    let count = |i: u32| {
        times
            .iter()
            .filter(|t| **t >= from + window * i && **t < from + window * (i + 1))
            .count()
    };
    let counts = [count(0), count(1), count(2)];
    eprintln!("fetches per 3 s window: {counts:?}");
    let log = d.log();
    assert!(
        counts.iter().all(|&c| c >= 1),
        "the daemon keeps trying: {counts:?}\n{log}"
    );
    assert!(
        counts[2] <= counts[0] + 2 && counts[1] <= counts[0] + 2,
        "the fetches per window do not grow: {counts:?}\n{log}"
    );
    assert!(
        counts.iter().all(|&c| c <= 8),
        "a few fetches per poll interval, not a storm: {counts:?}\n{log}"
    );
    server.abort();
    assert_prompt_exit("failing remote", d.terminate().await);
}
