//! Errors of the source stage.
//!
//! Every variant names the repository by its *redacted* URL (no user-info), and every underlying
//! error is rendered into a [`RedactedError`] whose text has had credential values removed, so that
//! neither `Display`, `Debug` nor the `source()` chain can leak a secret. Text from the repository
//! or the remote (paths, ref names, what gix or the server said) is shown with its control
//! characters escaped ([`rollgit_syntax::escape`]): a file name never forges a log line.

use std::path::PathBuf;

use rollgit_syntax::escape;

/// An underlying error, flattened to text with credentials removed.
///
/// gix errors may quote the URL they failed on (with its user-info) or server responses; they are
/// turned into this type at the boundary of this crate so nothing else ever sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedactedError(String);

impl RedactedError {
    /// Render `err` and its `source()` chain as `a: b: c`, then remove every secret in `secrets`
    /// (credential values, raw URLs) from the text.
    pub(crate) fn new(err: &(dyn std::error::Error + 'static), secrets: &[(&str, &str)]) -> Self {
        let mut parts: Vec<String> = Vec::new();
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        while let Some(e) = cur {
            let text = e.to_string();
            // gix error wrappers often repeat their cause in their own message.
            if !text.is_empty() && !parts.iter().any(|p| p.contains(&text)) {
                parts.push(text);
            }
            cur = e.source();
        }
        Self::from_text(parts.join(": "), secrets)
    }

    /// Scrub `text` of every `(secret, replacement)` pair, then escape its control characters
    /// ([`rollgit_syntax::escape`]): gix quotes paths from the tree and what the remote said.
    pub(crate) fn from_text(text: String, secrets: &[(&str, &str)]) -> Self {
        let mut text = text;
        for (secret, replacement) in secrets {
            if !secret.is_empty() {
                text = text.replace(secret, replacement);
            }
        }
        RedactedError(escape(&text).into_owned())
    }

    /// The scrubbed message, its control characters escaped.
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for RedactedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for RedactedError {}

/// The error of every source-stage operation.
///
/// `repo` fields hold the repository URL with credentials stripped (or the local path).
/// [`SourceError::is_transient`] tells the daemon whether to retry with backoff (network trouble,
/// a lock held by a concurrent writer) or to report and wait for a configuration change or a new
/// commit (bad URL, missing branch, authentication refused, missing object).
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The URL is neither a valid Git URL nor an existing local repository path.
    #[error("{repo}: invalid repository URL or path")]
    InvalidUrl {
        repo: String,
        #[source]
        source: RedactedError,
    },
    /// A `file://` URL or local path does not exist or is not a Git repository.
    #[error("{repo}: repository not found at {path}")]
    RepositoryNotFound { repo: String, path: PathBuf },
    /// The repository (local path or mirror) exists but could not be opened.
    #[error("{repo}: cannot open repository at {path}")]
    OpenRepository {
        repo: String,
        path: PathBuf,
        #[source]
        source: RedactedError,
    },
    /// The bare mirror under the cache directory could not be created.
    #[error("{repo}: cannot create mirror at {path}")]
    InitMirror {
        repo: String,
        path: PathBuf,
        #[source]
        source: RedactedError,
    },
    /// Connecting, listing remote refs or receiving the pack failed.
    #[error("{repo}: fetch failed while {stage}")]
    Fetch {
        repo: String,
        /// What was being done: "connecting", "listing remote refs", "receiving objects", ...
        stage: &'static str,
        transient: bool,
        #[source]
        source: RedactedError,
    },
    /// The remote (or local repository) has no `refs/heads/<branch>`.
    #[error(
        "{repo}: branch {branch:?} does not exist (no refs/heads/{})",
        escape(branch)
    )]
    BranchNotFound { repo: String, branch: String },
    /// A ref could not be read or written.
    #[error("{repo}: cannot resolve {}", escape(reference))]
    Reference {
        repo: String,
        reference: String,
        #[source]
        source: RedactedError,
    },
    /// The commit is not in the repository or is not a commit.
    #[error("{repo}: commit {commit} not found")]
    CommitNotFound {
        repo: String,
        commit: String,
        #[source]
        source: RedactedError,
    },
    /// Reading a tree or a blob of a commit failed.
    #[error("{repo}: cannot read {} at commit {commit}", escape(what))]
    Read {
        repo: String,
        commit: String,
        what: String,
        #[source]
        source: RedactedError,
    },
    /// The tree diff between two commits failed.
    #[error("{repo}: cannot diff {from}..{to}")]
    Diff {
        repo: String,
        from: String,
        to: String,
        #[source]
        source: RedactedError,
    },
    /// A state file under the cache directory could not be read or written.
    #[error("cannot access cache file {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Setting up the file-system watch failed.
    #[error("cannot watch {path}")]
    Watch {
        path: PathBuf,
        #[source]
        source: notify::Error,
    },
}

impl SourceError {
    /// `true` when retrying the same operation later may succeed without anyone changing the
    /// configuration or the repository (network errors, timeouts, lock contention, I/O errors on
    /// the cache). `false` for terminal errors: invalid URL, missing repository or branch,
    /// authentication refused, a commit that does not exist.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Fetch { transient, .. } => *transient,
            SourceError::Reference { .. } | SourceError::Cache { .. } => true,
            SourceError::InitMirror { .. } => true,
            SourceError::InvalidUrl { .. }
            | SourceError::RepositoryNotFound { .. }
            | SourceError::OpenRepository { .. }
            | SourceError::BranchNotFound { .. }
            | SourceError::CommitNotFound { .. }
            | SourceError::Read { .. }
            | SourceError::Diff { .. }
            | SourceError::Watch { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redacted(text: &str) -> RedactedError {
        RedactedError::from_text(text.to_owned(), &[("hunter2", "***")])
    }

    /// Paths, ref names and what the remote said reach a log line or a status message with
    /// their control characters escaped, and secrets are still scrubbed first.
    #[test]
    fn user_controlled_text_is_shown_escaped() {
        let rows: Vec<(&str, String, &str)> = vec![
            (
                "remote message with a forged line and the password",
                redacted("denied\nINFO all good hunter2").to_string(),
                "denied\\nINFO all good ***",
            ),
            (
                "file name with an ANSI escape",
                SourceError::Read {
                    repo: "r".into(),
                    commit: "c".into(),
                    what: "apps/\x1b[31mweb.yaml".into(),
                    source: redacted("boom"),
                }
                .to_string(),
                "r: cannot read apps/\\u{1b}[31mweb.yaml at commit c",
            ),
            (
                "ref name with a newline",
                SourceError::Reference {
                    repo: "r".into(),
                    reference: "refs/heads/a\nb".into(),
                    source: redacted("boom"),
                }
                .to_string(),
                "r: cannot resolve refs/heads/a\\nb",
            ),
            (
                "branch with a carriage return",
                SourceError::BranchNotFound {
                    repo: "r".into(),
                    branch: "a\rb".into(),
                }
                .to_string(),
                "r: branch \"a\\rb\" does not exist (no refs/heads/a\\rb)",
            ),
        ];
        for (case, got, want) in rows {
            assert_eq!(got, want, "{case}");
        }
    }
}
