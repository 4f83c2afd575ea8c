//! Running the `git` command safely: arguments as a list (no shell), a non-interactive
//! environment scrubbed of the caller's repository variables, stdin closed or fed, and a time
//! limit after which git is killed.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use super::{WriteError, Writer};

/// Environment variables of the caller that would redirect git away from the mirror.
const GIT_LOCATION_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_NAMESPACE",
    "GIT_QUARANTINE_PATH",
    "GIT_COMMON_DIR",
];

/// `git --git-dir=<dir>` with a clean, non-interactive environment.
pub(super) fn git_command(git_dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    let mut dir_arg = OsString::from("--git-dir=");
    dir_arg.push(git_dir);
    cmd.arg(dir_arg)
        .args(["-c", "protocol.ext.allow=never"])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("LC_ALL", "C");
    for var in GIT_LOCATION_VARS {
        cmd.env_remove(var);
    }
    cmd
}

pub(super) struct GitOutput {
    pub(super) status: ExitStatus,
    pub(super) stdout: String,
    pub(super) stderr: String,
}

/// Run `cmd` with `input` on stdin (or stdin closed), collecting its output; `Ok(None)` when it
/// did not finish within `timeout` (it is then killed).
fn run_with_timeout(
    mut cmd: Command,
    input: Option<&[u8]>,
    timeout: Duration,
) -> std::io::Result<Option<GitOutput>> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        let input = input.to_vec();
        std::thread::spawn(move || {
            // A child that exits without reading its input is reported by its exit status.
            let _ = stdin.write_all(&input);
        });
    }
    let (tx, rx) = std::sync::mpsc::channel::<(bool, Vec<u8>)>();
    let pipes: [(bool, Option<Box<dyn Read + Send>>); 2] = [
        (
            false,
            child
                .stdout
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
        (
            true,
            child
                .stderr
                .take()
                .map(|p| Box::new(p) as Box<dyn Read + Send>),
        ),
    ];
    for (is_stderr, pipe) in pipes {
        let tx = tx.clone();
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut pipe) = pipe {
                let _ = pipe.read_to_end(&mut buf);
            }
            let _ = tx.send((is_stderr, buf));
        });
    }
    drop(tx);
    let deadline = Instant::now() + timeout;
    let (mut stdout, mut stderr) = (None, None);
    while stdout.is_none() || stderr.is_none() {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok((true, buf)) => stderr = Some(buf),
            Ok((false, buf)) => stdout = Some(buf),
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(None);
            }
        }
    }
    let status = child.wait()?;
    Ok(Some(GitOutput {
        status,
        stdout: String::from_utf8_lossy(&stdout.unwrap_or_default()).into_owned(),
        stderr: String::from_utf8_lossy(&stderr.unwrap_or_default()).into_owned(),
    }))
}

impl Writer<'_> {
    /// Run `cmd` (from [`git_command`]) as `git <operation>`, killed after `timeout`.
    pub(super) fn run(
        &self,
        cmd: Command,
        input: Option<&[u8]>,
        operation: &'static str,
        timeout: Duration,
    ) -> Result<GitOutput, WriteError> {
        match run_with_timeout(cmd, input, timeout) {
            Ok(Some(out)) => Ok(out),
            Ok(None) => Err(WriteError::Timeout {
                repo: self.display.clone(),
                operation,
                timeout,
            }),
            Err(source) => Err(WriteError::SpawnGit {
                repo: self.display.clone(),
                operation,
                source,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_with_timeout_kills_a_hanging_command() {
        let mut cmd = Command::new("tail");
        cmd.args(["-f", "/dev/null"]);
        let started = Instant::now();
        let out = run_with_timeout(cmd, None, Duration::from_millis(200)).expect("spawns");
        assert!(out.is_none(), "timed out");
        assert!(started.elapsed() < Duration::from_secs(20));

        let mut cmd = Command::new("cat");
        cmd.arg("-");
        let out = run_with_timeout(cmd, Some(b"input"), Duration::from_secs(30)).expect("spawns");
        let out = out.expect("cat finishes");
        assert!(out.status.success());
        assert_eq!(out.stdout, "input");
    }
}
