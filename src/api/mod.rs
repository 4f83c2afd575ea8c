//! rollgit's own HTTP endpoints: webhooks (`POST /hooks/{provider}/{repo}`), `/livez` (and
//! `/healthz`: the process serves), `/readyz` (every cluster has rollgit's CRDs and every
//! repository was synced once) and `/metrics`. Webhooks are hints: a verified delivery triggers a fetch from the remote; the
//! payload is never trusted. A missing or bad signature gets 401 and triggers nothing.

use crate::config::Secret;
use crate::metrics::Metrics;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use rollgit_source::Trigger;
use rollgit_source::webhook::{self, Provider};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Whether the daemon caught up: each cluster's CRDs installed and each repository synced
/// once since start. Under leader election, the shards this replica leads (a follower is
/// ready: it serves read-only HTTP and takes over when a leader goes).
#[derive(Clone, Default)]
pub struct Readiness {
    /// One flag per cluster and per repository, with what it stands for.
    pub parts: Arc<Vec<(String, Arc<std::sync::atomic::AtomicBool>)>>,
    /// The readiness of each shard this replica leads now.
    pub shards: Arc<std::sync::Mutex<BTreeMap<u32, Readiness>>>,
    /// Per shard, whether this replica leads it (empty without leader election).
    pub roles: Arc<std::sync::Mutex<BTreeMap<u32, bool>>>,
    /// Per repository of the shards this replica follows, the head its cache was warmed at.
    pub warmed: Arc<std::sync::Mutex<BTreeMap<String, String>>>,
}

impl Readiness {
    /// The parts not ready yet (of the shards this replica leads, too).
    pub fn waiting(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .parts
            .iter()
            .filter(|(_, ready)| !ready.load(std::sync::atomic::Ordering::Relaxed))
            .map(|(what, _)| what.clone())
            .collect();
        let shards = self.shards.lock().unwrap_or_else(|p| p.into_inner());
        for r in shards.values() {
            out.extend(r.waiting());
        }
        out
    }

    /// What this replica leads and follows, for `/readyz` under leader election.
    pub fn roles(&self) -> Option<String> {
        let roles = self.roles.lock().unwrap_or_else(|p| p.into_inner());
        if roles.is_empty() {
            return None;
        }
        let of = |leading: bool| {
            let v: Vec<String> = roles
                .iter()
                .filter(|(_, l)| **l == leading)
                .map(|(s, _)| s.to_string())
                .collect();
            if v.is_empty() {
                "none".to_string()
            } else {
                v.join(",")
            }
        };
        let warmed = self.warmed.lock().unwrap_or_else(|p| p.into_inner());
        let warm = if warmed.is_empty() {
            String::new()
        } else {
            format!(
                "\nwarm: {}",
                warmed
                    .iter()
                    .map(|(repo, commit)| format!("{repo}@{commit}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        Some(format!(
            "leading shards: {}; following: {}{warm}",
            of(true),
            of(false)
        ))
    }
}

/// What the HTTP surface reaches: each repository's trigger and webhook secret, by name.
#[derive(Clone, Default)]
pub struct Triggers {
    /// Repo name → (trigger, webhook secret).
    pub repos: Arc<BTreeMap<String, (Trigger, Option<Secret>)>>,
}

impl Triggers {
    /// Asks the worker of `repo` to fetch now; false when there is no such repository.
    pub fn notify(&self, repo: &str) -> bool {
        match self.repos.get(repo) {
            Some((t, _)) => {
                t.notify();
                true
            }
            None => false,
        }
    }
}

#[derive(Clone)]
struct AppState {
    triggers: Triggers,
    metrics: Arc<Metrics>,
    readiness: Readiness,
}

/// The router.
pub fn router(triggers: Triggers, metrics: Arc<Metrics>, readiness: Readiness) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/livez", get(|| async { "ok" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics_text))
        .route("/hooks/{provider}/{repo}", post(hook))
        .route("/hooks/{provider}", post(hook_single))
        .with_state(AppState {
            triggers,
            metrics,
            readiness,
        })
}

async fn ready(State(st): State<AppState>) -> axum::response::Response {
    let waiting = st.readiness.waiting();
    let roles = st
        .readiness
        .roles()
        .map(|r| format!("{r}\n"))
        .unwrap_or_default();
    if waiting.is_empty() {
        (StatusCode::OK, format!("ok\n{roles}")).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for: {}\n{roles}", waiting.join(", ")),
        )
            .into_response()
    }
}

async fn metrics_text(State(st): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        st.metrics.encode(),
    )
}

async fn hook_single(
    State(st): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    let only = match st.triggers.repos.keys().next() {
        Some(r) if st.triggers.repos.len() == 1 => r.clone(),
        _ => {
            return (
                StatusCode::NOT_FOUND,
                "several repositories are configured: use /hooks/{provider}/{repo}",
            )
                .into_response();
        }
    };
    deliver(&st, &provider, &only, &headers, &body)
}

async fn hook(
    State(st): State<AppState>,
    Path((provider, repo)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> axum::response::Response {
    deliver(&st, &provider, &repo, &headers, &body)
}

fn deliver(
    st: &AppState,
    provider: &str,
    repo: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> axum::response::Response {
    let Some(provider) = Provider::from_name(provider) else {
        return (StatusCode::NOT_FOUND, "unknown webhook provider").into_response();
    };
    let Some((trigger, secret)) = st.triggers.repos.get(repo) else {
        return (StatusCode::NOT_FOUND, "unknown repository").into_response();
    };
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| {
            v.to_str()
                .ok()
                .map(|v| (k.as_str().to_string(), v.to_string()))
        })
        .collect();
    let secret = secret
        .as_ref()
        .map(|s| s.expose().as_bytes())
        .unwrap_or_default();
    let resp = webhook::handle(provider, &headers, body, secret, trigger);
    st.metrics.webhook(
        repo,
        if resp.status < 300 {
            "accepted"
        } else {
            "refused"
        },
    );
    (
        StatusCode::from_u16(resp.status).unwrap_or(StatusCode::UNAUTHORIZED),
        resp.body,
    )
        .into_response()
}
