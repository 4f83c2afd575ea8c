//! Pushing a commit with the `git` command: where to (a URL that never carries a password),
//! the credentials (through a credential helper that reads the environment), and what the
//! remote answered (pushed, moved on, or refused).

use super::process::git_command;
use super::{Ctx, PUSH_TIMEOUT, WriteError, Writer};
use crate::error::RedactedError;
use crate::git::{Credentials, Location, ObjectId, RepoSpec, Secrets, redact_url, split_userinfo};

/// The environment variables the credential helper reads.
const USERNAME_VAR: &str = "ROLLGIT_GIT_USERNAME";
const PASSWORD_VAR: &str = "ROLLGIT_GIT_PASSWORD";
/// A git credential helper (run by git through the shell) answering `get` from the environment.
const CREDENTIAL_HELPER: &str = "credential.helper=!f() { test \"$1\" = get || exit 0; printf 'username=%s\\npassword=%s\\n' \"$ROLLGIT_GIT_USERNAME\" \"$ROLLGIT_GIT_PASSWORD\"; }; f";

/// Where and how `git push` sends the commit.
pub(super) struct PushTarget {
    /// The URL without user-info (http/https) or as configured (ssh, git, file, local path).
    url: String,
    credentials: Option<Credentials>,
    ssh: bool,
}

impl PushTarget {
    /// Where `git push` sends the commits of `spec`, which is reached at `location`.
    pub(super) fn new(spec: &RepoSpec, location: Location) -> Self {
        match location {
            Location::Local(_) => PushTarget {
                url: spec.url.clone(),
                credentials: None,
                ssh: false,
            },
            Location::Remote(url) => match url.scheme {
                gix::url::Scheme::Http | gix::url::Scheme::Https => PushTarget {
                    url: push_url(&spec.url, true),
                    credentials: spec.credentials.clone().or_else(|| Secrets::embedded(spec)),
                    ssh: false,
                },
                scheme => PushTarget {
                    url: push_url(&spec.url, false),
                    credentials: None,
                    ssh: scheme == gix::url::Scheme::Ssh,
                },
            },
        }
    }

    /// Why the credentials cannot be handed to git, if they cannot.
    pub(super) fn unusable_credentials(&self) -> Option<&'static str> {
        let c = self.credentials.as_ref()?;
        [c.username(), c.password()]
            .iter()
            .any(|v| v.contains(['\n', '\r', '\0']))
            .then_some(
                "the credentials contain a line break or NUL, which git's credential \
                 protocol cannot carry",
            )
    }
}

impl Writer<'_> {
    /// `git push --porcelain -- <url> <commit>:refs/heads/<branch>`.
    pub(super) fn push(&self, ctx: &Ctx, commit: ObjectId) -> Result<PushStatus, WriteError> {
        self.push_to(ctx, commit, &self.spec.branch)
    }

    /// `git push --porcelain -- <url> <commit>:refs/heads/<branch>` to any branch.
    pub(super) fn push_to(
        &self,
        ctx: &Ctx,
        commit: ObjectId,
        branch: &str,
    ) -> Result<PushStatus, WriteError> {
        let dst = format!("refs/heads/{branch}");
        let mut cmd = git_command(&ctx.git_dir);
        if let Some(c) = &self.target.credentials {
            cmd.args(["-c", "credential.helper=", "-c", CREDENTIAL_HELPER])
                .env(USERNAME_VAR, c.username())
                .env(PASSWORD_VAR, c.password());
        }
        if self.target.ssh && !user_set_ssh_command(&ctx.repo) {
            cmd.env("GIT_SSH_COMMAND", "ssh -o BatchMode=yes");
        }
        cmd.args([
            "-c",
            "push.recurseSubmodules=no",
            "push",
            "--porcelain",
            "--",
        ])
        .arg(&self.target.url)
        .arg(format!("{commit}:{dst}"));
        let out = self.run(cmd, None, "push", PUSH_TIMEOUT)?;
        let redact = |text: &str| {
            RedactedError::from_text(text.to_owned(), &self.secrets.pairs())
                .message()
                .to_owned()
        };
        match classify_push(&out.stdout, &out.stderr, out.status.success(), &dst) {
            PushClass::Pushed => Ok(PushStatus::Pushed),
            PushClass::RemoteMoved(reason) => Ok(PushStatus::RemoteMoved {
                reason: redact(&reason),
            }),
            PushClass::Rejected(reason) => Err(WriteError::PushRejected {
                repo: self.display.clone(),
                branch: branch.to_owned(),
                reason: redact(&reason),
            }),
            PushClass::Failed { transient, message } => Err(WriteError::Push {
                repo: self.display.clone(),
                branch: branch.to_owned(),
                transient,
                source: RedactedError::from_text(message, &self.secrets.pairs()),
            }),
        }
    }
}

/// The URL handed to git: never with a password (it would be visible in the process list);
/// for http(s) without any user-info, which the credential helper supplies instead.
fn push_url(url: &str, http: bool) -> String {
    if http {
        return redact_url(url);
    }
    // scp-like `user@host:path` cannot carry a password.
    match split_userinfo(url)
        .and_then(|(before, userinfo, after)| Some((before, userinfo.split_once(':')?.0, after)))
    {
        Some((before, user, after)) => format!("{before}{user}@{after}"),
        None => url.to_owned(),
    }
}

/// `true` when the user chose how git runs ssh (environment or configuration).
fn user_set_ssh_command(repo: &gix::Repository) -> bool {
    std::env::var_os("GIT_SSH_COMMAND").is_some()
        || std::env::var_os("GIT_SSH").is_some()
        || repo.config_snapshot().string("core.sshCommand").is_some()
}

pub(super) enum PushStatus {
    Pushed,
    RemoteMoved { reason: String },
}

/// What `git push --porcelain` said about the ref `dst`.
#[derive(Debug, PartialEq, Eq)]
enum PushClass {
    Pushed,
    /// The remote has commits we do not: fetch and redo.
    RemoteMoved(String),
    /// The remote refused for another reason.
    Rejected(String),
    /// No decision from the remote (connection, authentication, missing repository).
    Failed {
        transient: bool,
        message: String,
    },
}

/// Classify the result of `git push --porcelain` for the ref `dst`. Porcelain lines are
/// `<flag>\t<src>:<dst>\t<summary>`; flags: ` ` fast-forward, `*` new ref, `=` up to date,
/// `!` rejected.
fn classify_push(stdout: &str, stderr: &str, success: bool, dst: &str) -> PushClass {
    let line = stdout.lines().find_map(|line| {
        let mut parts = line.splitn(3, '\t');
        let flag = parts.next()?;
        let refs = parts.next()?;
        let summary = parts.next()?;
        (flag.len() == 1 && refs.rsplit_once(':').is_some_and(|(_, to)| to == dst))
            .then(|| (flag.to_owned(), summary.to_owned()))
    });
    let remote_lines: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("remote:"))
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    match line {
        Some((flag, _)) if matches!(flag.as_str(), " " | "*" | "=") => PushClass::Pushed,
        Some((flag, summary)) if flag == "!" => {
            let moved = [
                "(fetch first)",
                "(non-fast-forward)",
                "failed to update ref",
                "cannot lock ref",
                "incorrect old value",
            ];
            let remote_said = remote_lines.join(" / ");
            let reason = if remote_said.is_empty() {
                summary.clone()
            } else {
                format!("{summary}: {remote_said}")
            };
            if moved.iter().any(|m| summary.contains(m)) {
                PushClass::RemoteMoved(reason)
            } else {
                PushClass::Rejected(reason)
            }
        }
        Some((flag, summary)) => PushClass::Failed {
            transient: false,
            message: format!("unexpected push status {flag:?}: {summary}"),
        },
        None => {
            let message: Vec<&str> = stderr
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("hint:"))
                .collect();
            let message = message.join("\n");
            if success {
                return PushClass::Failed {
                    transient: false,
                    message: format!("git push reported no status for {dst}: {message}"),
                };
            }
            PushClass::Failed {
                transient: is_transient_push_failure(&message),
                message,
            }
        }
    }
}

/// Network trouble is worth a retry; authentication, a missing repository or a TLS problem
/// need a person. Unknown failures are treated as transient, like fetch errors.
fn is_transient_push_failure(stderr: &str) -> bool {
    let text = stderr.to_ascii_lowercase();
    const TRANSIENT: &[&str] = &[
        "could not resolve host",
        "could not resolve hostname",
        "failed to connect",
        "connection refused",
        "connection timed out",
        "connection reset",
        "connect to host",
        "connection closed by",
        "timed out",
        "operation too slow",
        "early eof",
        "the remote end hung up unexpectedly",
        "returned error: 5",
        "rpc failed",
        "temporary failure",
        "cannot lock ref",
    ];
    const PERMANENT: &[&str] = &[
        "authentication failed",
        "could not read username",
        "could not read password",
        "terminal prompts disabled",
        "permission denied",
        "access denied",
        "invalid username or password",
        "returned error: 401",
        "returned error: 403",
        "returned error: 404",
        "repository not found",
        "does not appear to be a git repository",
        "not found",
        "host key verification failed",
        "ssl certificate problem",
        "certificate verify failed",
        "unsupported protocol",
        "transport 'ext' not allowed",
        "not allowed",
        "insufficient permission",
        "read-only file system",
    ];
    if TRANSIENT.iter().any(|t| text.contains(t)) {
        return true;
    }
    !PERMANENT.iter().any(|p| text.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: &str = "refs/heads/main";

    #[test]
    fn classify_push_table() {
        let sha = "e3c4f22e411d9d4107ce6a51784154cc3726e552";
        let line = |flag: &str, summary: &str| {
            format!("To ../r.git\n{flag}\t{sha}:{DST}\t{summary}\nDone\n")
        };
        let cases: Vec<(&str, String, &str, bool, PushClass)> = vec![
            (
                "fast_forward",
                line(" ", "aaaa..bbbb"),
                "",
                true,
                PushClass::Pushed,
            ),
            ("up_to_date", line("=", "[up to date]"), "", true, PushClass::Pushed),
            (
                "fetch_first",
                line("!", "[rejected] (fetch first)"),
                "hint: pull first",
                false,
                PushClass::RemoteMoved("[rejected] (fetch first)".into()),
            ),
            (
                "non_fast_forward",
                line("!", "[rejected] (non-fast-forward)"),
                "",
                false,
                PushClass::RemoteMoved("[rejected] (non-fast-forward)".into()),
            ),
            (
                "server_side_race",
                line("!", "[remote rejected] (failed to update ref)"),
                "remote: error: cannot lock ref 'refs/heads/main': is at 1 but expected 2",
                false,
                PushClass::RemoteMoved(
                    "[remote rejected] (failed to update ref): error: cannot lock ref 'refs/heads/main': is at 1 but expected 2".into(),
                ),
            ),
            (
                "hook_declined",
                line("!", "[remote rejected] (pre-receive hook declined)"),
                "remote: protected branch        \nerror: failed to push some refs",
                false,
                PushClass::Rejected(
                    "[remote rejected] (pre-receive hook declined): protected branch".into(),
                ),
            ),
            (
                "connection_refused",
                String::new(),
                "fatal: unable to access 'https://example.com/a.git/': Failed to connect to example.com port 443: Connection refused",
                false,
                PushClass::Failed {
                    transient: true,
                    message: "fatal: unable to access 'https://example.com/a.git/': Failed to connect to example.com port 443: Connection refused".into(),
                },
            ),
            (
                "authentication",
                String::new(),
                "remote: Invalid credentials\nfatal: Authentication failed for 'https://example.com/a.git/'",
                false,
                PushClass::Failed {
                    transient: false,
                    message: "remote: Invalid credentials\nfatal: Authentication failed for 'https://example.com/a.git/'".into(),
                },
            ),
            (
                "missing_repository",
                String::new(),
                "fatal: '/nope.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\n\nPlease make sure you have the correct access rights",
                false,
                PushClass::Failed {
                    transient: false,
                    message: "fatal: '/nope.git' does not appear to be a git repository\nfatal: Could not read from remote repository.\nPlease make sure you have the correct access rights".into(),
                },
            ),
            (
                "ssh_unreachable",
                String::new(),
                "ssh: connect to host 127.0.0.1 port 1: Connection refused\nfatal: Could not read from remote repository.",
                false,
                PushClass::Failed {
                    transient: true,
                    message: "ssh: connect to host 127.0.0.1 port 1: Connection refused\nfatal: Could not read from remote repository.".into(),
                },
            ),
            (
                "other_ref_only",
                format!("To x\n \t{sha}:refs/heads/other\taaaa..bbbb\nDone\n"),
                "",
                true,
                PushClass::Failed {
                    transient: false,
                    message: format!("git push reported no status for {DST}: "),
                },
            ),
        ];
        for (name, stdout, stderr, success, want) in cases {
            assert_eq!(
                classify_push(&stdout, stderr, success, DST),
                want,
                "case {name}"
            );
        }
    }

    #[test]
    fn push_url_never_carries_a_password() {
        let cases = [
            (
                "https_userinfo",
                "https://u:pw@example.com/a.git",
                true,
                "https://example.com/a.git",
            ),
            (
                "https_token",
                "https://tok@example.com/a.git",
                true,
                "https://example.com/a.git",
            ),
            (
                "ssh_user_kept",
                "ssh://git@example.com:22/a.git",
                false,
                "ssh://git@example.com:22/a.git",
            ),
            (
                "ssh_password_dropped",
                "ssh://git:pw@example.com/a.git",
                false,
                "ssh://git@example.com/a.git",
            ),
            (
                "scp_like",
                "git@example.com:org/a.git",
                false,
                "git@example.com:org/a.git",
            ),
            ("file", "file:///srv/a.git", false, "file:///srv/a.git"),
            ("local", "/srv/a.git", false, "/srv/a.git"),
        ];
        for (name, url, http, want) in cases {
            assert_eq!(push_url(url, http), want, "case {name}");
        }
    }
}
