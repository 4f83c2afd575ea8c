//! Helpers shared by the benches that run rollgit as child processes.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// `git -C repo ARGS` with a fixed identity; panics on failure.
pub fn git(repo: &Path, args: &[&str]) {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args([
            "-c",
            "user.name=bench",
            "-c",
            "user.email=bench@example.com",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A field of `/proc/PID/status` in KiB (`VmRSS:`, `VmHWM:`), 0 when unreadable.
pub fn status_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// A free loopback address.
pub fn free_addr() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").to_string()
}

/// Starts `rollgit devcluster` (with `extra` flags) as a child process writing its kubeconfig
/// under `base`, and waits (bounded) until it answers.
pub async fn start_devcluster(
    bin: &str,
    base: &Path,
    extra: &[&str],
) -> (Child, kube::Client, PathBuf) {
    let cluster_addr = free_addr();
    let kubeconfig = base.join("kubeconfig");
    let cluster = Command::new(bin)
        .args(["devcluster", "--listen", &cluster_addr])
        .args(extra)
        .arg("--kubeconfig")
        .arg(&kubeconfig)
        .stdout(Stdio::null())
        .spawn()
        .expect("start the dev cluster");
    let deadline = Instant::now() + Duration::from_secs(30);
    let client = loop {
        if let Ok(kc) = kube::config::Kubeconfig::read_from(&kubeconfig)
            && let Ok(cfg) = kube::Config::from_custom_kubeconfig(kc, &Default::default()).await
            && let Ok(client) = kube::Client::try_from(cfg)
            && client.apiserver_version().await.is_ok()
        {
            break client;
        }
        assert!(Instant::now() < deadline, "dev cluster did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    (cluster, client, kubeconfig)
}

/// The `q` quantile (0..=1) of `v`, nearest rank.
pub fn quantile(v: &[Duration], q: f64) -> Duration {
    let mut v = v.to_vec();
    v.sort();
    if v.is_empty() {
        return Duration::ZERO;
    }
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}
