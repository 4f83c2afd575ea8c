//! What a follower does for the shards it does not lead, so that a failover does not start
//! cold, and so that a webhook delivered to it (the Service balances across replicas) is not
//! lost:
//!
//! * **Warm caches**: per repository, it fetches on the poll interval and on every trigger
//!   (a webhook to this replica) into the same mirror the worker uses once the replica leads,
//!   reads the apps of each new head and renders them (errors are the leader's to report; a
//!   follower only logs them at debug). `/readyz` lists the head each repository was warmed
//!   at (`warm: <repo>@<commit>`).
//! * **Telling the leader**: when a follower's fetch finds a new head, it writes that commit
//!   into the shard's Lease as the annotation `requested-at.rollgit.dev/<repo>` (a merge patch of
//!   metadata only: the holder's renewals patch `spec` and never conflict with it). The
//!   holder watches its Lease ([`forward`]) and triggers the repository's fetch when the value
//!   changes, so the new commit is applied without waiting for the leader's own poll.
//!
//! Nothing here writes to the managed clusters or to Git.

use crate::api::Triggers;
use crate::config::Repo;
use futures::StreamExt;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use rollgit_source::{ObjectId, Trigger};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The prefix of the Lease annotation naming, per repository, the newest head a follower
/// fetched (`requested-at.rollgit.dev/<repo>: <commit>`).
pub const REQUESTED_AT_PREFIX: &str = "requested-at.rollgit.dev/";

/// The annotation of repository `repo` on its shard's Lease.
pub fn requested_at(repo: &str) -> String {
    format!("{REQUESTED_AT_PREFIX}{repo}")
}

/// Per repository, the head a follower warmed its cache at (for `/readyz`).
pub type Warmed = Arc<Mutex<BTreeMap<String, String>>>;

/// Errors of one warm pass (logged, then tried again on the next trigger).
#[derive(Debug, thiserror::Error)]
pub enum WarmError {
    /// Fetching or reading the repository failed.
    #[error("fetching and reading {repo}")]
    Fetch {
        repo: String,
        #[source]
        source: crate::plan::read::ReadError,
    },
    /// The blocking task ended abnormally.
    #[error("the fetch task of {repo} ended: {message}")]
    Join { repo: String, message: String },
    /// The Lease could not be annotated.
    #[error("telling the leader of {repo}'s new head through Lease {lease}")]
    Annotate {
        repo: String,
        lease: String,
        #[source]
        source: kube::Error,
    },
}

/// What one follower needs to keep one shard warm.
#[derive(Clone)]
pub struct Follower {
    /// The shard's Lease.
    pub leases: Api<Lease>,
    /// Its name.
    pub lease: String,
    /// Where the mirrors live (`<stateDir>/repos`, as for the worker).
    pub cache: PathBuf,
    /// What `/readyz` shows.
    pub warmed: Warmed,
}

/// Keeps `repo`'s mirror warm until the task is aborted or `stop` turns true: fetches on its
/// poll schedule and on `trigger`, renders each new head, and tells the leader of it.
pub async fn follow(
    f: Follower,
    repo: Repo,
    trigger: Trigger,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let schedule = rollgit_source::PollSchedule::new(&repo.url, repo.interval);
    let poller = tokio::spawn(rollgit_source::poll(trigger.clone(), schedule));
    let _poller = crate::AbortOnDrop(poller.abort_handle());
    trigger.notify();
    let mut last: Option<ObjectId> = None;
    let mut repeats = crate::Repeats::default();
    loop {
        tokio::select! {
            () = trigger.wait() => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        match warm_once(&f, &repo, last).await {
            Ok(head) => {
                repeats.clear();
                last = Some(head);
            }
            Err(e) => {
                let text = crate::error_chain(&e);
                if let Some(times) = repeats.note(&text) {
                    tracing::warn!(repo = %repo.name, error = %text, times, "follower: keeping the cache warm failed; trying again on the next poll");
                }
            }
        }
    }
}

/// One pass: fetch; when the head moved since `last`, render the apps and annotate the Lease.
async fn warm_once(
    f: &Follower,
    repo: &Repo,
    last: Option<ObjectId>,
) -> Result<ObjectId, WarmError> {
    let (spec, cache, roots, ns) = (
        repo.source_spec(),
        f.cache.clone(),
        repo.paths.clone(),
        repo.namespace.clone(),
    );
    let name = repo.name.clone();
    let (head, rendered) = tokio::task::spawn_blocking(move || {
        let fetched = rollgit_source::fetch(&spec, &cache)?;
        if last == Some(fetched.head) {
            return Ok::<_, crate::plan::read::ReadError>((fetched.head, None));
        }
        let r = rollgit_source::Repo::open(&spec, &cache)?;
        let snapshot =
            crate::plan::read::read_apps(&r, fetched.head, &roots, crate::plan::read::Which::All)?;
        let prev = rollgit_render::RevisionState::default();
        let errors = snapshot
            .read
            .iter()
            .filter(|(app, files)| {
                crate::plan::render(app, &ns, files, snapshot.index.as_ref(), &prev).is_err()
            })
            .count();
        Ok((fetched.head, Some((snapshot.read.len(), errors))))
    })
    .await
    .map_err(|e| WarmError::Join {
        repo: name.clone(),
        message: e.to_string(),
    })?
    .map_err(|source| WarmError::Fetch {
        repo: name.clone(),
        source,
    })?;
    let Some((apps, errors)) = rendered else {
        return Ok(head);
    };
    let commit = head.to_string();
    tracing::info!(repo = %name, commit = %commit, apps, render_errors = errors, "follower: fetched and rendered a new head (cache warm)");
    f.warmed
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(name.clone(), commit.clone());
    // The leader may not have seen it yet (a webhook to this replica): say so on the Lease.
    let patch = json!({"metadata": {"annotations": {requested_at(&name): commit}}});
    f.leases
        .patch(&f.lease, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| WarmError::Annotate {
            repo: name,
            lease: f.lease.clone(),
            source,
        })?;
    Ok(head)
}

/// While this replica leads a shard: watches the shard's Lease and triggers a repository's
/// fetch whenever a follower writes a head it has not announced before.
pub async fn forward(leases: Api<Lease>, lease: String, triggers: Triggers) {
    let cfg = watcher::Config::default().fields(&format!("metadata.name={lease}"));
    let mut stream = watcher(leases, cfg)
        .backoff(crate::k8s::WatchBackoff::default())
        .boxed();
    // What the Lease said when this replica took it is not news: its workers fetch at start.
    let mut seen: Option<BTreeMap<String, String>> = None;
    while let Some(ev) = stream.next().await {
        let l = match ev {
            Ok(watcher::Event::Apply(l)) | Ok(watcher::Event::InitApply(l)) => l,
            Ok(_) => continue,
            Err(e) => {
                tracing::debug!(lease = %lease, error = %crate::error_chain(&e), "watching the Lease for followers' requests; the watcher retries");
                continue;
            }
        };
        let now: BTreeMap<String, String> = l
            .metadata
            .annotations
            .unwrap_or_default()
            .into_iter()
            .filter_map(|(k, v)| {
                k.strip_prefix(REQUESTED_AT_PREFIX)
                    .map(|r| (r.to_string(), v))
            })
            .collect();
        if let Some(before) = &seen {
            for repo in news(before, &now) {
                tracing::info!(repo = %repo, commit = %now[&repo], "a follower fetched a new head (a webhook to it): fetching");
                triggers.notify(&repo);
            }
        }
        seen = Some(now);
    }
}

/// The repositories whose announced head changed (pure).
pub fn news(before: &BTreeMap<String, String>, now: &BTreeMap<String, String>) -> Vec<String> {
    now.iter()
        .filter(|(r, c)| before.get(*r) != Some(*c))
        .map(|(r, _)| r.clone())
        .collect()
}

/// How long a follower's shard waits for its warm tasks' fetches in flight before it starts
/// the shard's workers (which fetch into the same mirrors).
pub const STOP_WAIT: Duration = Duration::from_secs(5);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changed_announcements_are_news() {
        let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect()
        };
        let cases = [
            ("nothing new", m(&[("a", "1")]), m(&[("a", "1")]), vec![]),
            ("a new head", m(&[("a", "1")]), m(&[("a", "2")]), vec!["a"]),
            ("a first announcement", m(&[]), m(&[("b", "1")]), vec!["b"]),
            (
                "one of two",
                m(&[("a", "1"), ("b", "1")]),
                m(&[("a", "1"), ("b", "2")]),
                vec!["b"],
            ),
        ];
        for (name, before, now, want) in cases {
            assert_eq!(news(&before, &now), want, "{name}");
        }
        assert_eq!(requested_at("shop"), "requested-at.rollgit.dev/shop");
    }
}
