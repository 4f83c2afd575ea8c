//! The forges' REST APIs (the I/O shell of promotion): open a pull request, find the open one
//! of a branch (so that a restart never opens a second), read its state, comment, close, and
//! merge. One client for GitHub, GitLab, Gitea/Forgejo and Bitbucket Cloud; only the
//! documented subset each needs:
//!
//! | operation | GitHub | GitLab | Gitea / Forgejo | Bitbucket Cloud |
//! |---|---|---|---|---|
//! | find | `GET /repos/{o}/{r}/pulls?state=open&head={o}:{branch}` | `GET /projects/{id}/merge_requests?state=opened&source_branch={branch}` | `GET /repos/{o}/{r}/pulls?state=open` (filtered by `head.ref`) | `GET /repositories/{w}/{s}/pullrequests?state=OPEN&q=source.branch.name="{branch}"` |
//! | open | `POST /repos/{o}/{r}/pulls` | `POST /projects/{id}/merge_requests` | `POST /repos/{o}/{r}/pulls` | `POST /repositories/{w}/{s}/pullrequests` |
//! | state | `GET .../pulls/{n}` (`merged`, `mergeable`) | `GET .../merge_requests/{iid}` (`detailed_merge_status`) | `GET .../pulls/{n}` | `GET .../pullrequests/{id}` and its `statuses` |
//! | comment | `POST .../issues/{n}/comments` | `POST .../merge_requests/{iid}/notes` | `POST .../issues/{n}/comments` | `POST .../pullrequests/{id}/comments` |
//! | close | `PATCH .../pulls/{n}` `{state: closed}` | `PUT .../merge_requests/{iid}` `{state_event: close}` | `PATCH .../pulls/{n}` | `POST .../pullrequests/{id}/decline` |
//! | merge | `PUT .../pulls/{n}/merge` | `PUT .../merge_requests/{iid}/merge` | `POST .../pulls/{n}/merge` `{Do: merge}` | `POST .../pullrequests/{id}/merge` |
//!
//! The token goes in a header only (GitHub and Bitbucket `Authorization: Bearer`, GitLab
//! `PRIVATE-TOKEN`, Gitea `Authorization: token`) and never into an error or a log line.

use super::core::PrState;
use crate::config::{Forge, ForgeKind};
use serde_json::{Value, json};
use std::time::Duration;

/// How long one API request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A failed forge request; never contains the token.
#[derive(Debug, thiserror::Error)]
pub enum ForgeError {
    /// The request did not get an answer (connection, timeout).
    #[error("{kind} API: {method} {path}: no answer")]
    Request {
        /// The forge.
        kind: &'static str,
        /// The method.
        method: &'static str,
        /// The API path (no host, no token).
        path: String,
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// The forge answered with an error status.
    #[error("{kind} API: {method} {path}: HTTP {status}: {message}")]
    Status {
        /// The forge.
        kind: &'static str,
        /// The method.
        method: &'static str,
        /// The API path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The start of the answer's body.
        message: String,
    },
    /// The answer is not what the API documents.
    #[error("{kind} API: {method} {path}: unexpected answer: {message}")]
    Answer {
        /// The forge.
        kind: &'static str,
        /// The method.
        method: &'static str,
        /// The API path.
        path: String,
        /// What is missing.
        message: String,
    },
}

impl ForgeError {
    /// Whether retrying later may help (no answer, 5xx, 429).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Request { .. } => true,
            Self::Status { status, .. } => *status >= 500 || *status == 429,
            Self::Answer { .. } => false,
        }
    }
}

/// A pull request as the forge reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    /// Number (GitLab `iid`, Bitbucket `id`).
    pub number: u64,
    /// Web page.
    pub url: String,
}

/// What opening a pull request needs.
#[derive(Debug, Clone)]
pub struct NewPullRequest<'a> {
    /// The pushed branch.
    pub head: &'a str,
    /// The branch it merges into.
    pub base: &'a str,
    /// Title.
    pub title: &'a str,
    /// Body (Markdown).
    pub body: &'a str,
}

/// A client of one forge repository.
#[derive(Clone)]
pub struct ForgeClient {
    forge: Forge,
    http: reqwest::Client,
}

impl std::fmt::Debug for ForgeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForgeClient")
            .field("kind", &self.forge.kind)
            .field("url", &self.forge.url)
            .field("repo", &self.forge.repo)
            .finish()
    }
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
pub fn encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The web page of commit `sha` of repository `repo` on the forge whose API is at `api`
/// (pure): the web address is the API's without its well-known API path (`api.github.com` →
/// `github.com`, GitHub Enterprise's `/api/v3`, GitLab's `/api/v4`, Gitea's and Forgejo's
/// `/api/v1`, `api.bitbucket.org/2.0` → `bitbucket.org`); `None` when the API address does
/// not say where the web pages are, or a GitLab project is named by its number.
pub fn commit_url(kind: ForgeKind, api: &str, repo: &str, sha: &str) -> Option<String> {
    let api = api.trim_end_matches('/');
    let web = match kind {
        ForgeKind::Github if api == "https://api.github.com" => "https://github.com".to_string(),
        ForgeKind::Github => api.strip_suffix("/api/v3")?.to_string(),
        ForgeKind::Gitlab => api.strip_suffix("/api/v4")?.to_string(),
        ForgeKind::Gitea => api.strip_suffix("/api/v1")?.to_string(),
        ForgeKind::Bitbucket if api == "https://api.bitbucket.org/2.0" => {
            "https://bitbucket.org".to_string()
        }
        ForgeKind::Bitbucket => return None,
    };
    Some(match kind {
        ForgeKind::Github | ForgeKind::Gitea => format!("{web}/{repo}/commit/{sha}"),
        ForgeKind::Gitlab if repo.bytes().all(|b| b.is_ascii_digit()) => return None,
        ForgeKind::Gitlab => format!("{web}/{repo}/-/commit/{sha}"),
        ForgeKind::Bitbucket => format!("{web}/{repo}/commits/{sha}"),
    })
}

impl ForgeClient {
    /// A client for `forge`.
    pub fn new(forge: Forge) -> Result<Self, reqwest::Error> {
        // reqwest is built without a bundled crypto provider; rollgit uses ring.
        let _already = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .user_agent(concat!("rollgit/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { forge, http })
    }

    /// Which forge.
    pub fn kind(&self) -> ForgeKind {
        self.forge.kind
    }

    /// How often an open pull request's state is asked for.
    pub fn poll_interval(&self) -> Duration {
        self.forge.poll_interval
    }

    /// `/repos/{owner}/{repo}` and the like: the repository's API path.
    fn repo_path(&self) -> String {
        match self.forge.kind {
            ForgeKind::Github | ForgeKind::Gitea => format!("/repos/{}", self.forge.repo),
            ForgeKind::Gitlab => format!("/projects/{}", encode(&self.forge.repo)),
            ForgeKind::Bitbucket => format!("/repositories/{}", self.forge.repo),
        }
    }

    /// The web page of commit `sha`, where the forge's URL makes it guessable.
    pub fn commit_url(&self, sha: &str) -> Option<String> {
        commit_url(self.forge.kind, &self.forge.url, &self.forge.repo, sha)
    }

    async fn call(
        &self,
        method: &'static str,
        path: String,
        body: Option<Value>,
    ) -> Result<Value, ForgeError> {
        let kind = self.forge.kind.as_str();
        let url = format!("{}{}", self.forge.url, path);
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let token = self.forge.token.expose();
        let mut req = self.http.request(m, &url);
        req = match self.forge.kind {
            ForgeKind::Github => req
                .header("Authorization", format!("Bearer {token}"))
                .header("Accept", "application/vnd.github+json")
                .header("X-GitHub-Api-Version", "2022-11-28"),
            ForgeKind::Gitlab => req.header("PRIVATE-TOKEN", token),
            ForgeKind::Gitea => req.header("Authorization", format!("token {token}")),
            ForgeKind::Bitbucket => req.header("Authorization", format!("Bearer {token}")),
        };
        if let Some(b) = body {
            req = req
                .header("Content-Type", "application/json")
                .body(b.to_string());
        }
        let resp = req.send().await.map_err(|source| ForgeError::Request {
            kind,
            method,
            path: path.clone(),
            source: source.without_url(),
        })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.map_err(|source| ForgeError::Request {
            kind,
            method,
            path: path.clone(),
            source: source.without_url(),
        })?;
        if !(200..300).contains(&status) {
            let mut message: String = text.chars().take(300).collect();
            message = message.replace(token, "<redacted>");
            return Err(ForgeError::Status {
                kind,
                method,
                path,
                status,
                message,
            });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| ForgeError::Answer {
            kind,
            method,
            path,
            message: e.to_string(),
        })
    }

    fn answer_error(&self, method: &'static str, path: &str, message: &str) -> ForgeError {
        ForgeError::Answer {
            kind: self.forge.kind.as_str(),
            method,
            path: path.to_string(),
            message: message.to_string(),
        }
    }

    fn pr_of(
        &self,
        v: &Value,
        method: &'static str,
        path: &str,
    ) -> Result<PullRequest, ForgeError> {
        let (num, url) = match self.forge.kind {
            ForgeKind::Github | ForgeKind::Gitea => (v.get("number"), v.get("html_url")),
            ForgeKind::Gitlab => (v.get("iid"), v.get("web_url")),
            ForgeKind::Bitbucket => (v.get("id"), v.pointer("/links/html/href")),
        };
        let number = num
            .and_then(Value::as_u64)
            .ok_or_else(|| self.answer_error(method, path, "no pull request number"))?;
        Ok(PullRequest {
            number,
            url: url.and_then(Value::as_str).unwrap_or_default().to_string(),
        })
    }

    /// The open pull request whose head is `branch`, if there is one.
    pub async fn find_open(&self, branch: &str) -> Result<Option<PullRequest>, ForgeError> {
        let base = self.repo_path();
        let (path, list_key) = match self.forge.kind {
            ForgeKind::Github => {
                let owner = self.forge.repo.split('/').next().unwrap_or_default();
                (
                    format!(
                        "{base}/pulls?state=open&head={}",
                        encode(&format!("{owner}:{branch}"))
                    ),
                    None,
                )
            }
            ForgeKind::Gitlab => (
                format!(
                    "{base}/merge_requests?state=opened&source_branch={}",
                    encode(branch)
                ),
                None,
            ),
            ForgeKind::Gitea => (format!("{base}/pulls?state=open&limit=50"), None),
            ForgeKind::Bitbucket => (
                format!(
                    "{base}/pullrequests?state=OPEN&q={}",
                    encode(&format!("source.branch.name=\"{branch}\""))
                ),
                Some("values"),
            ),
        };
        let v = self.call("GET", path.clone(), None).await?;
        let list = match list_key {
            Some(k) => v.get(k).cloned().unwrap_or(Value::Null),
            None => v,
        };
        let Some(items) = list.as_array() else {
            return Err(self.answer_error("GET", &path, "not a list"));
        };
        for item in items {
            let head = match self.forge.kind {
                ForgeKind::Github | ForgeKind::Gitea => item.pointer("/head/ref"),
                ForgeKind::Gitlab => item.get("source_branch"),
                ForgeKind::Bitbucket => item.pointer("/source/branch/name"),
            };
            if head.and_then(Value::as_str) == Some(branch) {
                return self.pr_of(item, "GET", &path).map(Some);
            }
        }
        Ok(None)
    }

    /// Opens a pull request.
    pub async fn open(&self, pr: &NewPullRequest<'_>) -> Result<PullRequest, ForgeError> {
        let base = self.repo_path();
        let (path, body) = match self.forge.kind {
            ForgeKind::Github | ForgeKind::Gitea => (
                format!("{base}/pulls"),
                json!({"title": pr.title, "head": pr.head, "base": pr.base, "body": pr.body}),
            ),
            ForgeKind::Gitlab => (
                format!("{base}/merge_requests"),
                json!({
                    "source_branch": pr.head,
                    "target_branch": pr.base,
                    "title": pr.title,
                    "description": pr.body,
                    "remove_source_branch": true,
                }),
            ),
            ForgeKind::Bitbucket => (
                format!("{base}/pullrequests"),
                json!({
                    "title": pr.title,
                    "description": pr.body,
                    "source": {"branch": {"name": pr.head}},
                    "destination": {"branch": {"name": pr.base}},
                    "close_source_branch": true,
                }),
            ),
        };
        let v = self.call("POST", path.clone(), Some(body)).await?;
        self.pr_of(&v, "POST", &path)
    }

    /// Whether pull request `number` is open (and mergeable), merged or closed.
    pub async fn state(&self, number: u64) -> Result<PrState, ForgeError> {
        let base = self.repo_path();
        let path = match self.forge.kind {
            ForgeKind::Github | ForgeKind::Gitea => format!("{base}/pulls/{number}"),
            ForgeKind::Gitlab => format!("{base}/merge_requests/{number}"),
            ForgeKind::Bitbucket => format!("{base}/pullrequests/{number}"),
        };
        let v = self.call("GET", path.clone(), None).await?;
        let text = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default();
        Ok(match self.forge.kind {
            ForgeKind::Github | ForgeKind::Gitea => {
                if v.get("merged").and_then(Value::as_bool) == Some(true) {
                    PrState::Merged
                } else if text("state") == "closed" {
                    PrState::Closed
                } else {
                    PrState::Open {
                        mergeable: v.get("mergeable").and_then(Value::as_bool),
                    }
                }
            }
            ForgeKind::Gitlab => match text("state") {
                "merged" => PrState::Merged,
                "closed" | "locked" => PrState::Closed,
                _ => PrState::Open {
                    mergeable: match text("detailed_merge_status") {
                        "mergeable" => Some(true),
                        "checking" | "unchecked" | "preparing" | "" => None,
                        _ => Some(false),
                    },
                },
            },
            ForgeKind::Bitbucket => match text("state") {
                "MERGED" => PrState::Merged,
                "DECLINED" | "SUPERSEDED" => PrState::Closed,
                _ => {
                    // Bitbucket reports no mergeability: the commit statuses (builds) of
                    // the pull request decide.
                    let spath = format!("{path}/statuses");
                    let s = self.call("GET", spath, None).await?;
                    let states: Vec<&str> = s
                        .get("values")
                        .and_then(Value::as_array)
                        .map(|a| {
                            a.iter()
                                .filter_map(|x| x.get("state").and_then(Value::as_str))
                                .collect()
                        })
                        .unwrap_or_default();
                    PrState::Open {
                        mergeable: if states.iter().all(|s| *s == "SUCCESSFUL") {
                            Some(true)
                        } else if states.contains(&"INPROGRESS") {
                            None
                        } else {
                            Some(false)
                        },
                    }
                }
            },
        })
    }

    /// Comments on pull request `number`.
    pub async fn comment(&self, number: u64, text: &str) -> Result<(), ForgeError> {
        let base = self.repo_path();
        let (path, body) = match self.forge.kind {
            ForgeKind::Github | ForgeKind::Gitea => (
                format!("{base}/issues/{number}/comments"),
                json!({"body": text}),
            ),
            ForgeKind::Gitlab => (
                format!("{base}/merge_requests/{number}/notes"),
                json!({"body": text}),
            ),
            ForgeKind::Bitbucket => (
                format!("{base}/pullrequests/{number}/comments"),
                json!({"content": {"raw": text}}),
            ),
        };
        self.call("POST", path, Some(body)).await.map(drop)
    }

    /// Closes pull request `number` without merging.
    pub async fn close(&self, number: u64) -> Result<(), ForgeError> {
        let base = self.repo_path();
        let (method, path, body) = match self.forge.kind {
            ForgeKind::Github | ForgeKind::Gitea => (
                "PATCH",
                format!("{base}/pulls/{number}"),
                Some(json!({"state": "closed"})),
            ),
            ForgeKind::Gitlab => (
                "PUT",
                format!("{base}/merge_requests/{number}"),
                Some(json!({"state_event": "close"})),
            ),
            ForgeKind::Bitbucket => (
                "POST",
                format!("{base}/pullrequests/{number}/decline"),
                None,
            ),
        };
        self.call(method, path, body).await.map(drop)
    }

    /// Merges pull request `number` (a merge commit).
    pub async fn merge(&self, number: u64) -> Result<(), ForgeError> {
        let base = self.repo_path();
        let (method, path, body) = match self.forge.kind {
            ForgeKind::Github => (
                "PUT",
                format!("{base}/pulls/{number}/merge"),
                json!({"merge_method": "merge"}),
            ),
            ForgeKind::Gitlab => (
                "PUT",
                format!("{base}/merge_requests/{number}/merge"),
                json!({}),
            ),
            ForgeKind::Gitea => (
                "POST",
                format!("{base}/pulls/{number}/merge"),
                json!({"Do": "merge"}),
            ),
            ForgeKind::Bitbucket => (
                "POST",
                format!("{base}/pullrequests/{number}/merge"),
                json!({"merge_strategy": "merge_commit"}),
            ),
        };
        self.call(method, path, Some(body)).await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_links_follow_each_forges_web_addresses() {
        let sha = "0123abcd";
        let cases = [
            (
                ForgeKind::Github,
                "https://api.github.com",
                "org/shop",
                Some("https://github.com/org/shop/commit/0123abcd"),
            ),
            (
                ForgeKind::Github,
                "https://ghe.example.com/api/v3",
                "org/shop",
                Some("https://ghe.example.com/org/shop/commit/0123abcd"),
            ),
            (ForgeKind::Github, "http://127.0.0.1:8080", "org/shop", None),
            (
                ForgeKind::Gitlab,
                "https://gitlab.com/api/v4",
                "group/sub/shop",
                Some("https://gitlab.com/group/sub/shop/-/commit/0123abcd"),
            ),
            (
                ForgeKind::Gitlab,
                "https://gitlab.example.com/api/v4/",
                "group/shop",
                Some("https://gitlab.example.com/group/shop/-/commit/0123abcd"),
            ),
            (ForgeKind::Gitlab, "https://gitlab.com/api/v4", "4242", None),
            (
                ForgeKind::Gitea,
                "https://codeberg.org/api/v1",
                "org/shop",
                Some("https://codeberg.org/org/shop/commit/0123abcd"),
            ),
            (
                ForgeKind::Bitbucket,
                "https://api.bitbucket.org/2.0",
                "team/shop",
                Some("https://bitbucket.org/team/shop/commits/0123abcd"),
            ),
            (
                ForgeKind::Bitbucket,
                "http://127.0.0.1:9000",
                "team/shop",
                None,
            ),
        ];
        for (kind, api, repo, want) in cases {
            assert_eq!(
                commit_url(kind, api, repo, sha).as_deref(),
                want,
                "{kind:?} {api} {repo}"
            );
        }
    }
}
