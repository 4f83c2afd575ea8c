//! PR-based promotion (issue 17), with real git (a bare remote and a working clone made with
//! the `git` command), the dev cluster, the daemon, and a local HTTP server speaking the
//! documented subset of each forge's REST API, recording every request so the tests assert the
//! exact calls and payloads. Time is driven by the daemon's manual clock (soaks, progress
//! deadlines); every wait is a bounded wait on a condition.

mod common;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use common::world::{GitRepo, wait_for};
use common::{TestCluster, WAIT};
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use rollgit::clock::ManualClock;
use rollgit::config::{Forge, ForgeKind, RawCluster, RawConfig, RawRepo, Secret};
use rollgit::promote::core::PrState;
use rollgit::promote::forge::{ForgeClient, NewPullRequest};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const TOKEN: &str = "forge-token-never-logged";
const GIT_PASSWORD: &str = "git-push-password";

// ---------------------------------------------------------------------------------------------
// A local server speaking a forge's REST API.

/// One request the forge server received.
#[derive(Debug, Clone)]
struct Call {
    method: String,
    /// Path and query.
    uri: String,
    auth: String,
    body: Value,
}

/// A pull request the GitHub-speaking server keeps.
#[derive(Debug, Clone)]
struct Pr {
    number: u64,
    head: String,
    base: String,
    title: String,
    body: String,
    state: String,
    merged: bool,
}

#[derive(Default)]
struct ForgeState {
    calls: Vec<Call>,
    prs: Vec<Pr>,
    comments: Vec<(u64, String)>,
}

/// What the server answers: a function of the request and the state.
type Answer = dyn Fn(&Call, &mut ForgeState) -> (u16, Value) + Send + Sync;

#[derive(Clone)]
struct ForgeServer {
    addr: SocketAddr,
    state: Arc<Mutex<ForgeState>>,
}

impl ForgeServer {
    async fn start(answer: Arc<Answer>) -> Self {
        let state = Arc::new(Mutex::new(ForgeState::default()));
        let st = state.clone();
        let handler = move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let st = st.clone();
            let answer = answer.clone();
            async move {
                let auth = headers
                    .get("authorization")
                    .or_else(|| headers.get("private-token"))
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let call = Call {
                    method: method.to_string(),
                    uri: uri
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    auth,
                    body: serde_json::from_slice(&body).unwrap_or(Value::Null),
                };
                let mut s = st.lock().expect("forge state");
                s.calls.push(call.clone());
                let (code, v) = answer(&call, &mut s);
                (
                    StatusCode::from_u16(code).expect("a status code"),
                    axum::Json(v),
                )
            }
        };
        let router = axum::Router::new().fallback(handler);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, state }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn calls(&self) -> Vec<Call> {
        self.state.lock().expect("forge state").calls.clone()
    }

    /// `METHOD uri` of every request but the state polls (`GET .../pulls/N`).
    fn writes(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| c.method != "GET")
            .map(|c| format!("{} {}", c.method, c.uri))
            .collect()
    }

    fn prs(&self) -> Vec<Pr> {
        self.state.lock().expect("forge state").prs.clone()
    }

    fn comments(&self) -> Vec<(u64, String)> {
        self.state.lock().expect("forge state").comments.clone()
    }

    /// Forgets every pull request (as if none had been opened).
    fn forget_prs(&self) {
        self.state.lock().expect("forge state").prs.clear();
    }

    fn set_merged(&self, number: u64) {
        let mut s = self.state.lock().expect("forge state");
        if let Some(p) = s.prs.iter_mut().find(|p| p.number == number) {
            p.merged = true;
            p.state = "closed".into();
        }
    }

    /// Waits (bounded) until `cond` holds for the server's state.
    async fn wait(&self, what: &str, cond: impl Fn(&ForgeState) -> bool) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if cond(&self.state.lock().expect("forge state")) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{what}: not within {WAIT:?}; requests: {:#?}",
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn github_json(p: &Pr, url: &str) -> Value {
    json!({
        "number": p.number,
        "html_url": format!("{url}/org/deploy/pull/{}", p.number),
        "state": p.state,
        "merged": p.merged,
        "mergeable": true,
        "title": p.title,
        "head": {"ref": p.head},
        "base": {"ref": p.base},
    })
}

/// The documented subset of GitHub's pulls API, on repository `org/deploy`.
fn github_api(url: String) -> Arc<Answer> {
    Arc::new(move |c: &Call, s: &mut ForgeState| {
        let path = c.uri.split('?').next().unwrap_or_default().to_string();
        let query = c.uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if c.auth != format!("Bearer {TOKEN}") {
            return (401, json!({"message": "Bad credentials"}));
        }
        match (c.method.as_str(), parts.as_slice()) {
            ("GET", ["repos", "org", "deploy", "pulls"]) => {
                let head = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("head="))
                    .map(|h| h.replace("%3A", ":").replace("%2F", "/"));
                let list: Vec<Value> = s
                    .prs
                    .iter()
                    .filter(|p| p.state == "open")
                    .filter(|p| {
                        head.as_ref()
                            .is_none_or(|h| *h == format!("org:{}", p.head))
                    })
                    .map(|p| github_json(p, &url))
                    .collect();
                (200, Value::Array(list))
            }
            ("POST", ["repos", "org", "deploy", "pulls"]) => {
                let p = Pr {
                    number: s.prs.len() as u64 + 1,
                    head: c.body["head"].as_str().unwrap_or_default().into(),
                    base: c.body["base"].as_str().unwrap_or_default().into(),
                    title: c.body["title"].as_str().unwrap_or_default().into(),
                    body: c.body["body"].as_str().unwrap_or_default().into(),
                    state: "open".into(),
                    merged: false,
                };
                let v = github_json(&p, &url);
                s.prs.push(p);
                (201, v)
            }
            ("GET", ["repos", "org", "deploy", "pulls", n]) => {
                match s.prs.iter().find(|p| p.number.to_string() == *n) {
                    Some(p) => (200, github_json(p, &url)),
                    None => (404, json!({"message": "Not Found"})),
                }
            }
            ("PATCH", ["repos", "org", "deploy", "pulls", n]) => {
                match s.prs.iter_mut().find(|p| p.number.to_string() == *n) {
                    Some(p) => {
                        if c.body["state"] == "closed" {
                            p.state = "closed".into();
                        }
                        let p = p.clone();
                        (200, github_json(&p, &url))
                    }
                    None => (404, json!({"message": "Not Found"})),
                }
            }
            ("POST", ["repos", "org", "deploy", "issues", n, "comments"]) => {
                let n: u64 = n.parse().unwrap_or_default();
                s.comments
                    .push((n, c.body["body"].as_str().unwrap_or_default().into()));
                (201, json!({"id": s.comments.len()}))
            }
            ("PUT", ["repos", "org", "deploy", "pulls", n, "merge"]) => {
                match s.prs.iter_mut().find(|p| p.number.to_string() == *n) {
                    Some(p) => {
                        p.merged = true;
                        p.state = "closed".into();
                        (200, json!({"merged": true, "sha": "0000000"}))
                    }
                    None => (404, json!({"message": "Not Found"})),
                }
            }
            _ => (404, json!({"message": "Not Found"})),
        }
    })
}

fn gitlab_mr(p: &Pr) -> Value {
    json!({
        "iid": p.number,
        "web_url": format!("https://gitlab.example/g/deploy/-/merge_requests/{}", p.number),
        "state": if p.merged { "merged" } else if p.state == "closed" { "closed" } else { "opened" },
        "detailed_merge_status": "mergeable",
        "source_branch": p.head,
        "target_branch": p.base,
    })
}

/// The documented subset of GitLab's merge requests API, on project `g/deploy`.
fn gitlab_api() -> Arc<Answer> {
    Arc::new(move |c: &Call, s: &mut ForgeState| {
        let path = c.uri.split('?').next().unwrap_or_default().to_string();
        let query = c.uri.split_once('?').map(|(_, q)| q).unwrap_or_default();
        let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
        if c.auth != TOKEN {
            return (401, json!({"message": "401 Unauthorized"}));
        }
        match (c.method.as_str(), parts.as_slice()) {
            ("GET", ["projects", "g%2Fdeploy", "merge_requests"]) => {
                let source = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("source_branch="))
                    .map(|h| h.replace("%2F", "/"));
                let list: Vec<Value> = s
                    .prs
                    .iter()
                    .filter(|p| p.state == "open")
                    .filter(|p| source.as_ref().is_none_or(|b| *b == p.head))
                    .map(gitlab_mr)
                    .collect();
                (200, Value::Array(list))
            }
            ("POST", ["projects", "g%2Fdeploy", "merge_requests"]) => {
                let p = Pr {
                    number: s.prs.len() as u64 + 1,
                    head: c.body["source_branch"].as_str().unwrap_or_default().into(),
                    base: c.body["target_branch"].as_str().unwrap_or_default().into(),
                    title: c.body["title"].as_str().unwrap_or_default().into(),
                    body: c.body["description"].as_str().unwrap_or_default().into(),
                    state: "open".into(),
                    merged: false,
                };
                let v = gitlab_mr(&p);
                s.prs.push(p);
                (201, v)
            }
            ("GET", ["projects", "g%2Fdeploy", "merge_requests", n]) => {
                match s.prs.iter().find(|p| p.number.to_string() == *n) {
                    Some(p) => (200, gitlab_mr(p)),
                    None => (404, json!({"message": "404 Not found"})),
                }
            }
            ("PUT", ["projects", "g%2Fdeploy", "merge_requests", n]) => {
                match s.prs.iter_mut().find(|p| p.number.to_string() == *n) {
                    Some(p) => {
                        if c.body["state_event"] == "close" {
                            p.state = "closed".into();
                        }
                        let p = p.clone();
                        (200, gitlab_mr(&p))
                    }
                    None => (404, json!({"message": "404 Not found"})),
                }
            }
            ("POST", ["projects", "g%2Fdeploy", "merge_requests", n, "notes"]) => {
                let n: u64 = n.parse().unwrap_or_default();
                s.comments
                    .push((n, c.body["body"].as_str().unwrap_or_default().into()));
                (201, json!({"id": s.comments.len()}))
            }
            _ => (404, json!({"message": "404 Not found"})),
        }
    })
}

fn client(kind: ForgeKind, url: String, repo: &str) -> ForgeClient {
    ForgeClient::new(Forge {
        kind,
        url,
        token: Secret::new(TOKEN.into()),
        repo: repo.into(),
        poll_interval: Duration::from_millis(100),
    })
    .expect("a forge client")
}

fn pr_request() -> NewPullRequest<'static> {
    NewPullRequest {
        head: "rollgit/promote/shop/staging/0123456",
        base: "main",
        title: "Promote shop to staging: 0123456 web 1.1",
        body: "body",
    }
}

// ---------------------------------------------------------------------------------------------
// Each forge's client against a local server speaking its API.

#[tokio::test]
async fn github_api_local_server_client_finds_opens_reads_comments_closes_and_merges() {
    let server = ForgeServer::start(github_api("http://placeholder".into())).await;
    let c = client(ForgeKind::Github, server.url(), "org/deploy");
    let head = pr_request().head;
    assert_eq!(c.find_open(head).await.expect("list"), None);
    let pr = c.open(&pr_request()).await.expect("open");
    assert_eq!(pr.number, 1);
    assert_eq!(pr.url, "http://placeholder/org/deploy/pull/1");
    assert_eq!(c.find_open(head).await.expect("list"), Some(pr.clone()));
    assert_eq!(
        c.state(1).await.expect("state"),
        PrState::Open {
            mergeable: Some(true)
        }
    );
    c.comment(1, "superseded").await.expect("comment");
    c.close(1).await.expect("close");
    assert_eq!(c.state(1).await.expect("state"), PrState::Closed);
    c.merge(1).await.expect("merge");
    assert_eq!(c.state(1).await.expect("state"), PrState::Merged);
    let calls = server.calls();
    let lines: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.uri))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /repos/org/deploy/pulls?state=open&head=org%3Arollgit%2Fpromote%2Fshop%2Fstaging%2F0123456",
            "POST /repos/org/deploy/pulls",
            "GET /repos/org/deploy/pulls?state=open&head=org%3Arollgit%2Fpromote%2Fshop%2Fstaging%2F0123456",
            "GET /repos/org/deploy/pulls/1",
            "POST /repos/org/deploy/issues/1/comments",
            "PATCH /repos/org/deploy/pulls/1",
            "GET /repos/org/deploy/pulls/1",
            "PUT /repos/org/deploy/pulls/1/merge",
            "GET /repos/org/deploy/pulls/1",
        ]
    );
    assert!(calls.iter().all(|c| c.auth == format!("Bearer {TOKEN}")));
    assert_eq!(
        calls[1].body,
        json!({"title": "Promote shop to staging: 0123456 web 1.1", "head": "rollgit/promote/shop/staging/0123456", "base": "main", "body": "body"})
    );
    assert_eq!(calls[4].body, json!({"body": "superseded"}));
    assert_eq!(calls[5].body, json!({"state": "closed"}));
    assert_eq!(calls[7].body, json!({"merge_method": "merge"}));
}

#[tokio::test]
async fn github_api_local_server_errors_never_show_the_token() {
    let server = ForgeServer::start(Arc::new(|_: &Call, _: &mut ForgeState| {
        (
            403,
            json!({"message": format!("token {TOKEN} lacks scope")}),
        )
    }))
    .await;
    let c = client(ForgeKind::Github, server.url(), "org/deploy");
    let e = c.open(&pr_request()).await.expect_err("refused");
    let text = rollgit::error_chain(&e);
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("HTTP 403"), "{text}");
    assert!(!e.is_transient());
}

#[tokio::test]
async fn gitlab_api_local_server_client_speaks_merge_requests() {
    let server = ForgeServer::start(Arc::new(|c: &Call, _: &mut ForgeState| {
        let mr = json!({"iid": 5, "web_url": "https://gitlab.example/g/deploy/-/merge_requests/5",
            "state": "opened", "detailed_merge_status": "mergeable",
            "source_branch": "rollgit/promote/shop/staging/0123456"});
        match (c.method.as_str(), c.uri.as_str()) {
            ("GET", u) if u.contains("merge_requests?") => (200, json!([mr])),
            ("GET", _) => (200, mr),
            ("POST", u) if u.ends_with("/merge_requests") => (201, mr),
            _ => (200, json!({})),
        }
    }))
    .await;
    let c = client(ForgeKind::Gitlab, server.url(), "g/deploy");
    let found = c
        .find_open(pr_request().head)
        .await
        .expect("list")
        .expect("found");
    assert_eq!(found.number, 5);
    c.open(&pr_request()).await.expect("open");
    assert_eq!(
        c.state(5).await.expect("state"),
        PrState::Open {
            mergeable: Some(true)
        }
    );
    c.comment(5, "held").await.expect("note");
    c.close(5).await.expect("close");
    c.merge(5).await.expect("merge");
    let calls = server.calls();
    let lines: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.uri))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /projects/g%2Fdeploy/merge_requests?state=opened&source_branch=rollgit%2Fpromote%2Fshop%2Fstaging%2F0123456",
            "POST /projects/g%2Fdeploy/merge_requests",
            "GET /projects/g%2Fdeploy/merge_requests/5",
            "POST /projects/g%2Fdeploy/merge_requests/5/notes",
            "PUT /projects/g%2Fdeploy/merge_requests/5",
            "PUT /projects/g%2Fdeploy/merge_requests/5/merge",
        ]
    );
    assert!(
        calls.iter().all(|c| c.auth == TOKEN),
        "PRIVATE-TOKEN header"
    );
    assert_eq!(
        calls[1].body,
        json!({"source_branch": "rollgit/promote/shop/staging/0123456", "target_branch": "main",
            "title": "Promote shop to staging: 0123456 web 1.1", "description": "body",
            "remove_source_branch": true})
    );
    assert_eq!(calls[3].body, json!({"body": "held"}));
    assert_eq!(calls[4].body, json!({"state_event": "close"}));
}

#[tokio::test]
async fn gitea_api_local_server_client_speaks_pulls() {
    let server = ForgeServer::start(Arc::new(|c: &Call, _: &mut ForgeState| {
        let pr = json!({"number": 3, "html_url": "https://gitea.example/org/deploy/pulls/3",
            "state": "open", "merged": false, "mergeable": false,
            "head": {"ref": "rollgit/promote/shop/staging/0123456"}});
        let other = json!({"number": 2, "html_url": "x", "state": "open",
            "head": {"ref": "feature"}});
        match (c.method.as_str(), c.uri.as_str()) {
            ("GET", u) if u.contains("pulls?") => (200, json!([other, pr])),
            ("GET", _) => (200, pr),
            ("POST", u) if u.ends_with("/pulls") => (201, pr),
            _ => (200, json!({})),
        }
    }))
    .await;
    let c = client(ForgeKind::Gitea, server.url(), "org/deploy");
    let found = c
        .find_open(pr_request().head)
        .await
        .expect("list")
        .expect("found by head.ref");
    assert_eq!(found.number, 3);
    c.open(&pr_request()).await.expect("open");
    assert_eq!(
        c.state(3).await.expect("state"),
        PrState::Open {
            mergeable: Some(false)
        }
    );
    c.comment(3, "held").await.expect("comment");
    c.close(3).await.expect("close");
    c.merge(3).await.expect("merge");
    let calls = server.calls();
    let lines: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.uri))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /repos/org/deploy/pulls?state=open&limit=50",
            "POST /repos/org/deploy/pulls",
            "GET /repos/org/deploy/pulls/3",
            "POST /repos/org/deploy/issues/3/comments",
            "PATCH /repos/org/deploy/pulls/3",
            "POST /repos/org/deploy/pulls/3/merge",
        ]
    );
    assert!(calls.iter().all(|c| c.auth == format!("token {TOKEN}")));
    assert_eq!(calls[5].body, json!({"Do": "merge"}));
}

#[tokio::test]
async fn bitbucket_api_local_server_client_speaks_pullrequests() {
    let server = ForgeServer::start(Arc::new(|c: &Call, _: &mut ForgeState| {
        let pr = json!({"id": 9, "state": "OPEN",
            "links": {"html": {"href": "https://bitbucket.org/ws/deploy/pull-requests/9"}},
            "source": {"branch": {"name": "rollgit/promote/shop/staging/0123456"}}});
        match (c.method.as_str(), c.uri.as_str()) {
            ("GET", u) if u.contains("pullrequests?") => (200, json!({"values": [pr]})),
            ("GET", u) if u.ends_with("/statuses") => {
                (200, json!({"values": [{"state": "SUCCESSFUL"}]}))
            }
            ("GET", _) => (200, pr),
            ("POST", u) if u.ends_with("/pullrequests") => (201, pr),
            _ => (200, json!({})),
        }
    }))
    .await;
    let c = client(ForgeKind::Bitbucket, server.url(), "ws/deploy");
    let found = c
        .find_open(pr_request().head)
        .await
        .expect("list")
        .expect("found");
    assert_eq!(found.url, "https://bitbucket.org/ws/deploy/pull-requests/9");
    c.open(&pr_request()).await.expect("open");
    assert_eq!(
        c.state(9).await.expect("state"),
        PrState::Open {
            mergeable: Some(true)
        },
        "all builds passed"
    );
    c.comment(9, "held").await.expect("comment");
    c.close(9).await.expect("decline");
    c.merge(9).await.expect("merge");
    let calls = server.calls();
    let lines: Vec<String> = calls
        .iter()
        .map(|c| format!("{} {}", c.method, c.uri))
        .collect();
    assert_eq!(
        lines,
        [
            "GET /repositories/ws/deploy/pullrequests?state=OPEN&q=source.branch.name%3D%22rollgit%2Fpromote%2Fshop%2Fstaging%2F0123456%22",
            "POST /repositories/ws/deploy/pullrequests",
            "GET /repositories/ws/deploy/pullrequests/9",
            "GET /repositories/ws/deploy/pullrequests/9/statuses",
            "POST /repositories/ws/deploy/pullrequests/9/comments",
            "POST /repositories/ws/deploy/pullrequests/9/decline",
            "POST /repositories/ws/deploy/pullrequests/9/merge",
        ]
    );
    assert!(calls.iter().all(|c| c.auth == format!("Bearer {TOKEN}")));
    assert_eq!(
        calls[1].body,
        json!({"title": "Promote shop to staging: 0123456 web 1.1", "description": "body",
            "source": {"branch": {"name": "rollgit/promote/shop/staging/0123456"}},
            "destination": {"branch": {"name": "main"}}, "close_source_branch": true})
    );
    assert_eq!(calls[4].body, json!({"content": {"raw": "held"}}));
    assert_eq!(calls[6].body, json!({"merge_strategy": "merge_commit"}));
}

// ---------------------------------------------------------------------------------------------
// The daemon walking a change through a pipeline, with GitHub's API served locally.

/// A stage's directory: a Namespace and a Deployment `web` in it.
fn stage_yaml(env: &str, image: &str, replicas: u32) -> String {
    format!(
        "apiVersion: v1
kind: Namespace
metadata:
  name: {env}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: {env}
spec:
  replicas: {replicas}
  selector:
    matchLabels:
      app: web
  template:
    metadata:
      labels:
        app: web
    spec:
      containers:
      - name: web
        image: {image}
"
    )
}

const DEV: &str = "envs-dev-shop";
const STAGING: &str = "envs-staging-shop";
const PROD: &str = "envs-prod-shop";
/// A stage holding one KubeVela Application is named after it.
const KUBEVELA_STAGING: &str = "shop";

/// A dev cluster, a repository with `envs/{dev,staging,prod}/shop`, GitHub's API served
/// locally, and the daemon with the pipeline dev → staging (soak 10m) → prod (images only).
struct Pipeline {
    daemon: Option<rollgit::daemon::Running>,
    config: rollgit::config::Config,
    cluster: TestCluster,
    client: kube::Client,
    git: GitRepo,
    git_http: http::GitHttpServer,
    forge: ForgeServer,
    clock: ManualClock,
    _state: tempfile::TempDir,
}

impl Pipeline {
    async fn start() -> Self {
        Self::start_with(
            &[
                ("envs/dev/shop/deploy.yaml", stage_yaml("dev", "web:1.0", 1)),
                (
                    "envs/staging/shop/deploy.yaml",
                    stage_yaml("staging", "web:1.0", 2),
                ),
                (
                    "envs/prod/shop/deploy.yaml",
                    stage_yaml("prod", "web:1.0", 3),
                ),
            ],
            "  - {name: dev, path: envs/dev/shop}
  - {name: staging, path: envs/staging/shop, soak: 10m}
  - {name: prod, path: envs/prod/shop, images: true}
",
        )
        .await
    }

    /// The repository holds `files`; the pipeline `shop` has `stages` (YAML list items).
    async fn start_with(files: &[(&str, String)], stages: &str) -> Self {
        Self::start_configured(files, &[], stages, |_| {}).await
    }

    /// [`Pipeline::start_with`], with other branches (`(branch, files)`, each started from
    /// main) and the configuration changed by `tweak` before it is resolved. A `# gitlab`
    /// comment line in `stages` serves GitLab's API (project `g/deploy`) instead of GitHub's.
    async fn start_configured(
        files: &[(&str, String)],
        branches: &[(&str, Vec<(&str, String)>)],
        stages: &str,
        tweak: impl FnOnce(&mut RawConfig),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new(
                "rollgit::promote=debug,rollgit_source=info",
            ))
            .try_init();
        let git = GitRepo::with_remote().await;
        for (path, content) in files {
            git.write(path, content);
        }
        git.commit_and_push("stages").await;
        for (branch, files) in branches {
            git.git(&["checkout", "-q", "-b", branch]).await;
            for (path, content) in files {
                git.write(path, content);
            }
            git.commit(&format!("{branch} stage")).await;
            git.git(&["push", "-q", "origin", branch]).await;
            git.git(&["checkout", "-q", "main"]).await;
        }
        // The bare remote served over smart HTTP: rollgit fetches anonymously and pushes the
        // promotion branches with its configured credentials.
        let git_http = http::GitHttpServer::start(git.dir.path(), "rollgit", GIT_PASSWORD);
        let gitlab = stages.contains("# gitlab");
        let forge = ForgeServer::start(if gitlab {
            gitlab_api()
        } else {
            github_api("https://github.example".into())
        })
        .await;
        let cluster = TestCluster::start_with(|c| {
            c.simulation.ready_delay = Duration::from_millis(100);
            c.simulation.fail_images = vec!["*:broken".into()];
        })
        .await;
        let client = cluster.client().await;
        let state = tempfile::tempdir().expect("temporary state directory");
        let token_file = state.path().join("forge-token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write the token");
        let password_file = state.path().join("git-password");
        std::fs::write(&password_file, GIT_PASSWORD).expect("write the git password");
        let yaml = format!(
            "promotion:
- app: shop
  forge: {{kind: github, url: {url}, tokenFile: {token}, repo: org/deploy, pollInterval: 100ms}}
  stages:
{stages}",
            url = forge.url(),
            token = token_file.display()
        );
        let yaml = if gitlab {
            yaml.replace("kind: github", "kind: gitlab")
                .replace("repo: org/deploy", "project: g/deploy")
        } else {
            yaml
        };
        let mut raw: RawConfig = serde_saphyr::from_str(&yaml).expect("the pipeline parses");
        raw.repos = vec![RawRepo {
            name: Some("deploy".into()),
            url: Some(format!("http://127.0.0.1:{}/remote.git", git_http.port)),
            branch: Some("main".into()),
            paths: vec!["envs/*/shop".into()],
            credentials: Some(rollgit::config::RawCredentials {
                username: Some("rollgit".into()),
                password_file: Some(password_file),
                ..Default::default()
            }),
            interval: Some("500ms".into()),
            ..Default::default()
        }];
        raw.clusters = vec![RawCluster {
            kubeconfig: Some(cluster.kubeconfig.clone()),
            ..Default::default()
        }];
        raw.state_dir = Some(state.path().join("state"));
        tweak(&mut raw);
        let config = raw.resolve("test").expect("the configuration is valid");
        let clock = ManualClock::starting_now();
        let mut p = Self {
            daemon: None,
            config,
            cluster,
            client,
            git,
            git_http,
            forge,
            clock,
            _state: state,
        };
        p.start_daemon().await;
        p
    }

    async fn start_daemon(&mut self) {
        let daemon = rollgit::daemon::start(
            &self.config,
            rollgit::daemon::Options {
                clock: Arc::new(self.clock.clone()),
                ..Default::default()
            },
        )
        .await
        .expect("the daemon starts");
        self.daemon = Some(daemon);
    }

    async fn stop_daemon(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.shutdown().await;
        }
    }

    fn apps(&self) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            "default",
            &rollgit::record::status::application_resource(),
        )
    }

    async fn wait_app(&self, app: &str, what: &str, cond: impl Fn(&Value) -> bool) -> Value {
        wait_for(&self.apps(), app, what, |o: Option<&DynamicObject>| {
            o.is_some_and(|o| cond(&o.data["status"]))
        })
        .await
        .expect("the app exists")
        .data["status"]
            .clone()
    }

    async fn wait_applied(&self, app: &str, commit: &str) -> Value {
        self.wait_app(app, &format!("{app} running at {commit}"), |s| {
            s["lastAppliedCommit"] == commit && s["phase"] == "running" && s["healthy"] == true
        })
        .await
    }

    /// Waits until the promotion out of `app`'s stage is in `state`.
    async fn wait_promotion(&self, app: &str, state: &str) -> Value {
        self.wait_app(app, &format!("promotion out of {app} {state}"), |s| {
            s["promotion"]["state"] == state
        })
        .await["promotion"]
            .clone()
    }

    /// The file `path` on branch `branch` of the remote.
    async fn remote_file(&self, branch: &str, path: &str) -> String {
        let bare = self.git.bare.as_ref().expect("a bare remote");
        common::world::git(
            bare,
            self.git.dir.path(),
            &["show", &format!("{branch}:{path}")],
        )
        .await
    }

    async fn remote_rev(&self, rev: &str) -> String {
        let bare = self.git.bare.as_ref().expect("a bare remote");
        common::world::git(bare, self.git.dir.path(), &["rev-parse", rev]).await
    }

    /// Merges pull request `number` as a person would on the forge: a merge commit of its
    /// branch pushed to main, and the forge reporting it merged.
    async fn merge(&self, number: u64) -> String {
        let pr = self
            .forge
            .prs()
            .into_iter()
            .find(|p| p.number == number)
            .expect("the pull request exists");
        self.git
            .git(&["pull", "-q", "--no-rebase", "origin", "main"])
            .await;
        self.git.git(&["fetch", "-q", "origin", &pr.head]).await;
        self.git
            .git(&[
                "-c",
                "user.name=Reviewer",
                "-c",
                "user.email=reviewer@example.com",
                "merge",
                "-q",
                "--no-ff",
                "FETCH_HEAD",
                "-m",
                &format!("Merge pull request #{number} from {}", pr.head),
            ])
            .await;
        self.git.push().await;
        self.forge.set_merged(number);
        self.git.git(&["rev-parse", "HEAD"]).await
    }

    /// Commits `content` to `path` on main (after pulling what rollgit or merges pushed).
    async fn push(&self, path: &str, content: &str, message: &str) -> String {
        self.git
            .git(&["pull", "-q", "--no-rebase", "origin", "main"])
            .await;
        self.git.write(path, content);
        self.git.commit_and_push(message).await
    }

    async fn rollgit(&self, args: &[&str]) -> (Option<i32>, String, String) {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_rollgit"));
        cmd.args(args)
            .arg("--kubeconfig")
            .arg(&self.cluster.kubeconfig)
            .env_remove("KUBECONFIG")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true);
        let out = tokio::time::timeout(WAIT, cmd.output())
            .await
            .expect("rollgit finishes")
            .expect("rollgit runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

fn short(c: &str) -> &str {
    &c[..7]
}

#[tokio::test]
async fn github_api_local_server_walks_a_dev_commit_through_staging_to_prod() {
    let mut p = Pipeline::start().await;
    let c0 = p.remote_rev("main").await;
    for app in [DEV, STAGING, PROD] {
        p.wait_applied(app, &c0).await;
    }
    let baseline = p.wait_promotion(DEV, "promoted").await;
    assert_eq!(baseline["promotedCommit"], c0.as_str());

    // A change in dev: a new image. Dev soaks 0s: the pull request into staging opens.
    let c1 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.1", 1),
            "web 1.1",
        )
        .await;
    p.wait_applied(DEV, &c1).await;
    let rec = p.wait_promotion(DEV, "open").await;
    let branch = format!("rollgit/promote/shop/staging/{}", short(&c1));
    assert_eq!(rec["pullRequest"]["number"], 1);
    assert_eq!(rec["pullRequest"]["branch"], branch.as_str());
    assert_eq!(rec["pullRequest"]["sourceCommit"], c1.as_str());
    let prs = p.forge.prs();
    assert_eq!(prs.len(), 1);
    assert_eq!(prs[0].head, branch);
    assert_eq!(prs[0].base, "main");
    assert_eq!(
        prs[0].title,
        format!("Promote shop to staging: {} web 1.1", short(&c1))
    );
    let body = &prs[0].body;
    println!("pull request #1: {}\n{body}", prs[0].title);
    for want in [
        "rollgit promotes **shop** from **dev** to **staging**.",
        "- `deploy.yaml` (modified)",
        "- `web`: `web:1.0` → `web:1.1`",
        &format!("- commit: `{c1}` web 1.1"),
        "- apply: succeeded",
        "- health: healthy since ",
    ] {
        assert!(body.contains(want), "{want:?} in the body:\n{body}");
    }
    // The branch carries dev's change onto staging's file; staging keeps its 2 replicas.
    assert_eq!(
        p.remote_file(&branch, "envs/staging/shop/deploy.yaml")
            .await,
        stage_yaml("staging", "web:1.1", 2).trim_end()
    );
    assert_eq!(
        p.remote_rev(&format!("{branch}^")).await,
        c1,
        "the branch is one commit on main's head"
    );
    assert_eq!(
        p.forge.writes(),
        ["POST /repos/org/deploy/pulls"],
        "one pull request, nothing else written"
    );
    let pushes = p.git_http.authorizations();
    assert!(
        pushes.contains(&Some(http::basic("rollgit", GIT_PASSWORD))),
        "the branch was pushed over HTTP with the repository's credentials: {pushes:?}"
    );

    // A reviewer merges it; staging deploys the merge and soaks 10 minutes.
    let merge = p.merge(1).await;
    p.wait_applied(STAGING, &merge).await;
    let rec = p.wait_promotion(DEV, "promoted").await;
    assert_eq!(rec["promotedCommit"], c1.as_str());
    let soak = p.wait_promotion(STAGING, "soaking").await;
    assert_eq!(soak["sourceCommit"], merge.as_str());
    assert_eq!(
        p.forge.prs().len(),
        1,
        "no pull request into prod while soaking"
    );

    let (code, out, err) = p.rollgit(&["promotion", "status", "shop"]).await;
    assert_eq!(code, Some(0), "{err}");
    println!("$ rollgit promotion status shop\n{out}");
    let rows = common::table_columns(&out);
    assert_eq!(rows[0][..5], ["STAGE", "APP", "DEPLOYED", "NEXT", "STATE"]);
    assert_eq!(
        rows[1][..5],
        ["dev", DEV, short(&c1), "staging", "promoted"]
    );
    assert_eq!(
        rows[2][..5],
        ["staging", STAGING, short(&merge), "prod", "soaking"]
    );
    assert_eq!(rows[3][..2], ["prod", PROD]);
    assert_eq!(rows[3][2].len(), 7, "prod's deployed commit: {out}");
    let (code, out, err) = p
        .rollgit(&["promotion", "status", "shop", "-o", "json"])
        .await;
    assert_eq!(code, Some(0), "{err}");
    let doc: Value = serde_json::from_str(&out).expect("one JSON document");
    assert_eq!(doc["pipeline"], "shop");
    let stages = doc["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3);
    assert_eq!(stages[0]["stage"], "dev");
    assert_eq!(stages[0]["deployedCommit"], c1.as_str());
    assert_eq!(stages[0]["promotion"]["promotedCommit"], c1.as_str());
    assert_eq!(stages[1]["promotion"]["state"], "soaking");
    assert_eq!(stages[2]["app"], PROD);
    assert!(stages[2]["promotion"].is_null());

    // The soak passes (the daemon's clock moves): the pull request into prod opens, images only.
    p.clock.advance(Duration::from_secs(600));
    let rec = p.wait_promotion(STAGING, "open").await;
    let prod_branch = format!("rollgit/promote/shop/prod/{}", short(&merge));
    assert_eq!(rec["pullRequest"]["branch"], prod_branch.as_str());
    let prs = p.forge.prs();
    assert_eq!(prs.len(), 2);
    assert!(
        prs[1].body.contains("(container images only)")
            && prs[1].body.contains("- `web`: `web:1.0` → `web:1.1`")
            && prs[1].body.contains("(soak 10m)"),
        "{}",
        prs[1].body
    );
    assert_eq!(
        p.remote_file(&prod_branch, "envs/prod/shop/deploy.yaml")
            .await,
        stage_yaml("prod", "web:1.1", 3).trim_end(),
        "only the image changes in prod"
    );
    let (code, out, _) = p.rollgit(&["promotion", "status", "shop"]).await;
    assert_eq!(code, Some(0));
    println!("$ rollgit promotion status shop\n{out}");
    p.stop_daemon().await;
}

#[tokio::test]
async fn github_api_local_server_restart_opens_no_duplicate_and_a_new_commit_supersedes() {
    let mut p = Pipeline::start().await;
    let c0 = p.remote_rev("main").await;
    p.wait_applied(DEV, &c0).await;
    p.wait_promotion(DEV, "promoted").await;
    let c1 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.1", 1),
            "web 1.1",
        )
        .await;
    p.wait_applied(DEV, &c1).await;
    p.wait_promotion(DEV, "open").await;

    // The daemon stops after opening the pull request but before recording it.
    p.stop_daemon().await;
    let apps = p.apps();
    let patch = json!({"status": {"promotion": {"pullRequest": null, "state": "opening"}}});
    apps.patch(DEV, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("forget the pull request");
    p.start_daemon().await;
    let rec = p.wait_promotion(DEV, "open").await;
    assert_eq!(rec["pullRequest"]["number"], 1, "found, not opened again");
    assert_eq!(p.forge.prs().len(), 1);
    assert_eq!(p.forge.writes(), ["POST /repos/org/deploy/pulls"]);

    // A new dev commit: its pull request replaces the open one, which is closed.
    let c2 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.2", 1),
            "web 1.2",
        )
        .await;
    p.wait_applied(DEV, &c2).await;
    let rec = p
        .wait_app(DEV, "the pull request of c2 recorded", |s| {
            s["promotion"]["pullRequest"]["sourceCommit"] == c2.as_str()
        })
        .await["promotion"]
        .clone();
    assert_eq!(rec["pullRequest"]["number"], 2);
    p.forge
        .wait("the old pull request closed", |s| {
            s.prs.iter().any(|p| p.number == 1 && p.state == "closed")
        })
        .await;
    assert_eq!(
        p.forge.writes(),
        [
            "POST /repos/org/deploy/pulls",
            "POST /repos/org/deploy/pulls",
            "POST /repos/org/deploy/issues/1/comments",
            "PATCH /repos/org/deploy/pulls/1",
        ]
    );
    let comments = p.forge.comments();
    assert_eq!(comments.len(), 1);
    assert!(
        comments[0].1.starts_with("rollgit: superseded by #2") && comments[0].1.contains(&c2),
        "{comments:?}"
    );
    let prs = p.forge.prs();
    assert!(
        prs[1].body.contains("`web:1.0` → `web:1.2`"),
        "{}",
        prs[1].body
    );
    p.stop_daemon().await;
}

#[tokio::test]
async fn github_api_local_server_a_conflict_opens_no_pull_request_and_is_reported() {
    let mut p = Pipeline::start().await;
    let c0 = p.remote_rev("main").await;
    p.wait_applied(DEV, &c0).await;
    p.wait_promotion(DEV, "promoted").await;
    // Staging pins its own image on the same line dev changes.
    p.push(
        "envs/staging/shop/deploy.yaml",
        &stage_yaml("staging", "web:1.0-hotfix", 2),
        "staging hotfix",
    )
    .await;
    let c1 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.1", 1),
            "web 1.1",
        )
        .await;
    p.wait_applied(DEV, &c1).await;
    let rec = p.wait_promotion(DEV, "conflict").await;
    assert_eq!(rec["conflicts"], json!(["deploy.yaml"]));
    assert_eq!(rec["conflictCommit"], c1.as_str());
    assert!(
        rec["message"]
            .as_str()
            .is_some_and(|m| m.contains("conflict with staging in deploy.yaml")),
        "{rec}"
    );
    assert!(p.forge.prs().is_empty(), "no pull request");
    assert!(p.forge.writes().is_empty());
    let (code, out, _) = p
        .rollgit(&["promote-stage", "shop", "--to", "staging"])
        .await;
    assert_eq!(code, Some(1), "asked by hand, it still conflicts: {out}");
    p.stop_daemon().await;
}

/// App `shop` of a stage: component `web` (webservice, `image`) rolled out to 2 pods in one
/// batch, given `deadline` to become ready.
fn webservice(image: &str, deadline: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: shop
  annotations:
    rollgit.dev/progress-deadline: {deadline}
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: {image}
      traits:
        - type: rollout
          properties:
            targetSize: 2
            rolloutBatches:
              - replicas: 2
"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn github_api_local_server_a_failed_rollout_in_staging_holds_promotion_and_closes_the_pr() {
    let mut p = Pipeline::start_with(
        &[
            (
                "envs/staging/shop/app.yaml",
                webservice("registry.example/web:1", "3s"),
            ),
            (
                "envs/prod/shop/deploy.yaml",
                stage_yaml("prod", "registry.example/web:1", 3),
            ),
        ],
        "  - {name: staging, path: envs/staging/shop}
  - {name: prod, path: envs/prod/shop, images: true}
",
    )
    .await;
    let c0 = p.remote_rev("main").await;
    p.wait_applied(KUBEVELA_STAGING, &c0).await;
    p.wait_promotion(KUBEVELA_STAGING, "promoted").await;

    // A good image rolls out in staging: the pull request into prod opens (images only).
    let good = p
        .push(
            "envs/staging/shop/app.yaml",
            &webservice("registry.example/web:2", "3s"),
            "web 2",
        )
        .await;
    p.wait_applied(KUBEVELA_STAGING, &good).await;
    let rec = p.wait_promotion(KUBEVELA_STAGING, "open").await;
    assert_eq!(rec["pullRequest"]["number"], 1);
    let body = p.forge.prs()[0].body.clone();
    println!("{body}");
    assert!(
        body.contains("- rollout `web`: rolloutSucceed (web-v2)"),
        "the rollout's result is evidence: {body}"
    );
    let branch = format!("rollgit/promote/shop/prod/{}", short(&good));
    assert_eq!(
        p.remote_file(&branch, "envs/prod/shop/deploy.yaml").await,
        stage_yaml("prod", "registry.example/web:2", 3).trim_end()
    );

    // A broken image in staging: its rollout misses the deadline and rollgit reverts it.
    let rollouts: Api<DynamicObject> = Api::namespaced_with(
        p.client.clone(),
        "default",
        &kube::core::ApiResource::erase::<rollgit::k8s::Rollout>(&()),
    );
    let bad = p
        .push(
            "envs/staging/shop/app.yaml",
            &webservice("registry.example/web:broken", "3s"),
            "web broken",
        )
        .await;
    wait_for(&rollouts, "web", "the broken batch started", |o| {
        o.is_some_and(|o| {
            let s = &o.data["status"];
            s["targetRevision"] == "web-v3"
                && s["rollingState"] == "rollingInBatches"
                && s["batchStartedAt"].is_string()
        })
    })
    .await;
    // Regression: the worker's status writes never put back an older promotion record.
    let rolling = p
        .wait_app(
            KUBEVELA_STAGING,
            "the promoter saw the broken commit",
            |s| s["promotion"]["sourceCommit"] == bad.as_str(),
        )
        .await["promotion"]
        .clone();
    assert_eq!(rolling["state"], "open", "{rolling}");
    assert_eq!(rolling["pullRequest"]["number"], 1);
    assert_eq!(
        rolling["message"],
        format!("staging is applying or rolling out {}", short(&bad))
    );
    p.clock.advance(Duration::from_secs(4));
    let held = p.wait_promotion(KUBEVELA_STAGING, "held").await;
    let revert = p.remote_rev("main").await;
    assert_ne!(revert, bad, "the revert is on main");
    assert_eq!(held["sourceCommit"], revert.as_str());
    assert!(held["pullRequest"].is_null(), "{held}");
    p.forge
        .wait("the pull request closed", |s| {
            s.prs.iter().any(|p| p.number == 1 && p.state == "closed")
        })
        .await;
    assert_eq!(
        p.forge.writes(),
        [
            "POST /repos/org/deploy/pulls",
            "POST /repos/org/deploy/issues/1/comments",
            "PATCH /repos/org/deploy/pulls/1",
        ]
    );
    let comments = p.forge.comments();
    assert!(
        comments[0]
            .1
            .contains("promotion out of **staging** is held")
            && comments[0].1.contains(&revert),
        "{comments:?}"
    );
    let (code, out, _) = p.rollgit(&["promotion", "status", "shop"]).await;
    assert_eq!(code, Some(0));
    println!("$ rollgit promotion status shop\n{out}");
    assert!(out.contains("held"), "{out}");
    p.stop_daemon().await;
}

#[tokio::test]
async fn github_api_local_server_restart_after_the_push_before_the_pr_opens_it_on_the_pushed_branch()
 {
    let mut p = Pipeline::start().await;
    let c0 = p.remote_rev("main").await;
    p.wait_applied(DEV, &c0).await;
    p.wait_promotion(DEV, "promoted").await;
    let c1 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.1", 1),
            "web 1.1",
        )
        .await;
    p.wait_applied(DEV, &c1).await;
    p.wait_promotion(DEV, "open").await;
    let branch = format!("rollgit/promote/shop/staging/{}", short(&c1));
    let pushed = p.remote_rev(&branch).await;

    // The daemon stopped after pushing the branch, before the forge had the pull request.
    p.stop_daemon().await;
    p.forge.forget_prs();
    let patch = json!({"status": {"promotion": {"pullRequest": null, "state": "opening"}}});
    p.apps()
        .patch(DEV, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .expect("forget the pull request");
    p.start_daemon().await;
    let rec = p.wait_promotion(DEV, "open").await;
    assert_eq!(rec["pullRequest"]["branch"], branch.as_str());
    let prs = p.forge.prs();
    assert_eq!(prs.len(), 1, "one pull request");
    assert_eq!(prs[0].head, branch);
    assert_eq!(
        p.remote_rev(&branch).await,
        pushed,
        "the pushed branch is used as it is (never force-pushed)"
    );
    p.stop_daemon().await;
}

#[tokio::test]
async fn github_api_local_server_promote_stage_opens_the_pr_now_skipping_the_soak() {
    let mut p = Pipeline::start_with(
        &[
            ("envs/dev/shop/deploy.yaml", stage_yaml("dev", "web:1.0", 1)),
            (
                "envs/staging/shop/deploy.yaml",
                stage_yaml("staging", "web:1.0", 2),
            ),
        ],
        "  - {name: dev, path: envs/dev/shop, soak: 1h}
  - {name: staging, path: envs/staging/shop}
",
    )
    .await;
    let c0 = p.remote_rev("main").await;
    p.wait_applied(DEV, &c0).await;
    p.wait_promotion(DEV, "promoted").await;
    let c1 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.1", 1),
            "web 1.1",
        )
        .await;
    p.wait_applied(DEV, &c1).await;
    p.wait_promotion(DEV, "soaking").await;
    assert!(p.forge.prs().is_empty(), "dev soaks an hour");

    let (code, out, err) = p
        .rollgit(&["promote-stage", "shop", "--to", "staging"])
        .await;
    assert_eq!(code, Some(0), "{out}{err}");
    println!("$ rollgit promote-stage shop --to staging\n{out}");
    assert_eq!(
        out.trim(),
        "dev → staging: pull request #1 https://github.example/org/deploy/pull/1 (#1 waits for review)"
    );
    let rec = p.wait_promotion(DEV, "open").await;
    assert_eq!(rec["pullRequest"]["manual"], true);
    let prs = p.forge.prs();
    assert!(
        prs[0]
            .body
            .contains("- opened by `rollgit promote-stage` (soak skipped)"),
        "{}",
        prs[0].body
    );
    let (code, out, _) = p.rollgit(&["promotion", "status", "shop"]).await;
    assert_eq!(code, Some(0));
    assert!(
        out.contains("#1 https://github.example/org/deploy/pull/1 (manual)"),
        "{out}"
    );
    p.stop_daemon().await;
}

#[tokio::test]
async fn github_api_local_server_auto_merge_merges_once_the_forge_says_mergeable() {
    let mut p = Pipeline::start_with(
        &[
            ("envs/dev/shop/deploy.yaml", stage_yaml("dev", "web:1.0", 1)),
            (
                "envs/staging/shop/deploy.yaml",
                stage_yaml("staging", "web:1.0", 2),
            ),
        ],
        "  - {name: dev, path: envs/dev/shop}
  - {name: staging, path: envs/staging/shop, autoMerge: true}
",
    )
    .await;
    let c0 = p.remote_rev("main").await;
    p.wait_applied(DEV, &c0).await;
    p.wait_promotion(DEV, "promoted").await;
    let c1 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.1", 1),
            "web 1.1",
        )
        .await;
    p.forge
        .wait("rollgit merges the pull request", |s| {
            s.calls
                .iter()
                .any(|c| c.method == "PUT" && c.uri == "/repos/org/deploy/pulls/1/merge")
        })
        .await;
    let merge_call = p
        .forge
        .calls()
        .into_iter()
        .find(|c| c.method == "PUT")
        .expect("the merge call");
    assert_eq!(merge_call.body, json!({"merge_method": "merge"}));
    // The forge merges the branch (the test does what GitHub does), and staging deploys it.
    let merge = p.merge(1).await;
    p.wait_applied(STAGING, &merge).await;
    let rec = p.wait_promotion(DEV, "promoted").await;
    assert_eq!(rec["promotedCommit"], c1.as_str());
    assert_eq!(
        p.forge.writes(),
        [
            "POST /repos/org/deploy/pulls",
            "PUT /repos/org/deploy/pulls/1/merge",
        ],
        "merged once"
    );
    p.stop_daemon().await;
}

#[tokio::test]
async fn github_api_local_server_promotes_into_a_stage_on_another_branch() {
    let mut p = Pipeline::start_configured(
        &[("envs/dev/shop/deploy.yaml", stage_yaml("dev", "web:1.0", 1))],
        &[(
            "prod",
            vec![(
                "envs/dev/shop/deploy.yaml",
                stage_yaml("prod", "web:1.0", 3),
            )],
        )],
        "  - {name: dev, path: envs/dev/shop}
  - {name: prod, branch: prod}
",
        |raw| {
            // The prod branch is followed as its own repository, its apps' status objects in
            // their own namespace.
            let mut prod = RawRepo {
                name: Some("deploy-prod".into()),
                branch: Some("prod".into()),
                namespace: Some("prod-apps".into()),
                sync: Some(rollgit::config::RawSync {
                    create_namespace: Some(true),
                    ..Default::default()
                }),
                ..Default::default()
            };
            prod.url = raw.repos[0].url.clone();
            prod.paths = raw.repos[0].paths.clone();
            prod.interval = raw.repos[0].interval.clone();
            prod.credentials = raw.repos[0].credentials.take().map(|c| {
                let copy = rollgit::config::RawCredentials {
                    username: c.username.clone(),
                    password_file: c.password_file.clone(),
                    ..Default::default()
                };
                raw.repos[0].credentials = Some(c);
                copy
            });
            raw.repos.push(prod);
        },
    )
    .await;
    let prod_apps: Api<DynamicObject> = Api::namespaced_with(
        p.client.clone(),
        "prod-apps",
        &rollgit::record::status::application_resource(),
    );
    let c0 = p.remote_rev("main").await;
    let prod0 = p.remote_rev("prod").await;
    p.wait_applied("shop", &c0).await;
    wait_for(&prod_apps, "shop", "prod deployed from its branch", |o| {
        o.is_some_and(|o| o.data["status"]["lastAppliedCommit"] == prod0.as_str())
    })
    .await;
    p.wait_promotion("shop", "promoted").await;

    let c1 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.1", 1),
            "web 1.1",
        )
        .await;
    p.wait_applied("shop", &c1).await;
    let rec = p.wait_promotion("shop", "open").await;
    let branch = format!("rollgit/promote/shop/prod/{}", short(&c1));
    assert_eq!(rec["pullRequest"]["branch"], branch.as_str());
    let prs = p.forge.prs();
    assert_eq!(
        (prs[0].head.as_str(), prs[0].base.as_str()),
        (branch.as_str(), "prod")
    );
    assert_eq!(
        p.remote_rev(&format!("{branch}^")).await,
        prod0,
        "the branch starts at prod's head"
    );
    assert_eq!(
        p.remote_file(&branch, "envs/dev/shop/deploy.yaml").await,
        stage_yaml("prod", "web:1.1", 3).trim_end(),
        "dev's change on prod's file: prod keeps its namespace and replicas"
    );

    // Merged into prod (by the test, as the forge would): prod deploys it from its branch.
    p.git.git(&["fetch", "-q", "origin", "prod", &branch]).await;
    p.git
        .git(&["checkout", "-q", "-B", "prod", "origin/prod"])
        .await;
    p.git
        .git(&[
            "-c",
            "user.name=Reviewer",
            "-c",
            "user.email=reviewer@example.com",
            "merge",
            "-q",
            "--no-ff",
            &format!("origin/{branch}"),
            "-m",
            "Merge pull request #1",
        ])
        .await;
    p.git.git(&["push", "-q", "origin", "prod"]).await;
    let merge = p.git.git(&["rev-parse", "HEAD"]).await;
    p.git.git(&["checkout", "-q", "main"]).await;
    p.forge.set_merged(1);
    wait_for(&prod_apps, "shop", "prod runs the merge", |o| {
        o.is_some_and(|o| {
            o.data["status"]["lastAppliedCommit"] == merge.as_str()
                && o.data["status"]["healthy"] == true
        })
    })
    .await;
    let rec = p.wait_promotion("shop", "promoted").await;
    assert_eq!(rec["promotedCommit"], c1.as_str());
    p.stop_daemon().await;
}

#[tokio::test]
async fn gitlab_api_local_server_opens_a_merge_request_and_a_new_commit_supersedes_it() {
    let mut p = Pipeline::start_with(
        &[
            ("envs/dev/shop/deploy.yaml", stage_yaml("dev", "web:1.0", 1)),
            (
                "envs/staging/shop/deploy.yaml",
                stage_yaml("staging", "web:1.0", 2),
            ),
        ],
        "  # gitlab
  - {name: dev, path: envs/dev/shop}
  - {name: staging, path: envs/staging/shop}
",
    )
    .await;
    let c0 = p.remote_rev("main").await;
    p.wait_applied(DEV, &c0).await;
    p.wait_promotion(DEV, "promoted").await;
    let c1 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.1", 1),
            "web 1.1",
        )
        .await;
    p.wait_applied(DEV, &c1).await;
    let rec = p.wait_promotion(DEV, "open").await;
    assert_eq!(
        rec["pullRequest"]["url"],
        "https://gitlab.example/g/deploy/-/merge_requests/1"
    );
    let calls = p.forge.calls();
    let open = calls
        .iter()
        .find(|c| c.method == "POST")
        .expect("the merge request opened");
    assert_eq!(open.uri, "/projects/g%2Fdeploy/merge_requests");
    assert_eq!(
        open.body["source_branch"],
        format!("rollgit/promote/shop/staging/{}", short(&c1))
    );
    assert_eq!(open.body["target_branch"], "main");
    assert_eq!(open.body["remove_source_branch"], true);
    assert!(
        open.body["description"]
            .as_str()
            .is_some_and(|d| d.contains("- `web`: `web:1.0` → `web:1.1`")),
        "{}",
        open.body
    );

    let c2 = p
        .push(
            "envs/dev/shop/deploy.yaml",
            &stage_yaml("dev", "web:1.2", 1),
            "web 1.2",
        )
        .await;
    p.wait_applied(DEV, &c2).await;
    p.forge
        .wait("the first merge request closed", |s| {
            s.prs.iter().any(|p| p.number == 1 && p.state == "closed")
        })
        .await;
    assert_eq!(
        p.forge.writes(),
        [
            "POST /projects/g%2Fdeploy/merge_requests",
            "POST /projects/g%2Fdeploy/merge_requests",
            "POST /projects/g%2Fdeploy/merge_requests/1/notes",
            "PUT /projects/g%2Fdeploy/merge_requests/1",
        ]
    );
    assert!(
        p.forge.calls().iter().all(|c| c.auth == TOKEN),
        "PRIVATE-TOKEN on every request"
    );
    p.stop_daemon().await;
}

#[path = "../crates/source/tests/support/git_http.rs"]
mod http;
