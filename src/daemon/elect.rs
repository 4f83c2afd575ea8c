//! Leader election and sharding: the repositories are split into shards by a stable hash of
//! their name ([`Config::shard_of`]); each shard has a Lease (`<leaseName>-<shard>`, held
//! with `kube-lease-manager`) and only its holder runs the shard's workers and rollout
//! controllers, so only it applies, writes status, runs rollouts and pushes to Git. Every
//! replica serves the HTTP surface; one that leads no shard is a follower, ready to take a
//! shard whose holder is gone.
//!
//! A holder stops writing before another replica may take its Lease: it confirms every
//! second that the Lease still names it with a renewal younger than `renewDeadline`
//! (shorter than `leaseDuration`), and drops (aborts) the shard's tasks when it cannot. The
//! Lease is renewed every `renewDeadline / 2`, and released on a graceful shutdown so that a
//! follower takes over at once.

use super::{Options, StartError};
use crate::api::{Readiness, Triggers};
use crate::config::{Config, LeaderElection};
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;
use rollgit_source::Trigger;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// How often a holder checks that its Lease is still its own.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// Before campaigning for a free shard, a replica that started less than a lease duration ago
/// waits this long per shard it leads, so that replicas started together (whose processes may
/// start seconds apart on a loaded node) split the shards instead of the fastest taking them
/// all. Later (a failover) a free shard is campaigned for at once.
const STAGGER: Duration = Duration::from_secs(2);

/// The Lease of `shard`.
pub fn lease_name(le: &LeaderElection, shard: u32) -> String {
    format!("{}-{shard}", le.lease_name)
}

/// Runs the daemon under leader election until `shutdown` resolves.
pub async fn run(
    cfg: &Config,
    le: &LeaderElection,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    let Some(cluster) = cfg.clusters.first() else {
        return Ok(());
    };
    // The Leases live in the first cluster.
    let client = cluster.client().await?;
    let triggers = Triggers {
        repos: Arc::new(
            cfg.repos
                .iter()
                .map(|r| (r.name.clone(), (Trigger::new(), r.webhook_secret.clone())))
                .collect(),
        ),
    };
    let readiness = Readiness::default();
    let server = match cfg.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })?;
            let app = crate::api::router(triggers.clone(), opts.metrics.clone(), readiness.clone());
            tracing::info!(%addr, "webhooks at /hooks/{{provider}}/{{repo}}, metrics at /metrics");
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %crate::error_chain(&e), "HTTP server stopped");
                }
            }))
        }
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let turn = Arc::new(tokio::sync::Mutex::new(()));
    let started = tokio::time::Instant::now();
    let mut shards = Vec::new();
    for shard in 0..cfg.shards {
        let shard_cfg = cfg.for_shard(shard);
        if shard_cfg.repos.is_empty() {
            continue;
        }
        let opts = Options {
            triggers: Some(triggers.clone()),
            only_configured_repos: true,
            ..opts.clone()
        };
        let replica = Replica {
            client: client.clone(),
            le: le.clone(),
            readiness: readiness.clone(),
            turn: turn.clone(),
            started,
        };
        shards.push(tokio::spawn(lead_shard(
            replica,
            shard,
            shard_cfg,
            opts,
            stop_rx.clone(),
        )));
    }
    tracing::info!(identity = %le.identity, shards = cfg.shards, namespace = %le.namespace, "leader election: waiting for the shards' Leases");
    shutdown.await;
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(4), futures::future::join_all(shards)).await;
    if let Some(s) = server {
        s.abort();
    }
    Ok(())
}

/// What the shards of one replica share.
struct Replica {
    client: kube::Client,
    le: LeaderElection,
    readiness: Readiness,
    /// One campaign at a time.
    turn: Arc<tokio::sync::Mutex<()>>,
    /// When the replica started (the stagger applies for a lease duration after it).
    started: tokio::time::Instant,
}

/// Campaigns for one shard's Lease for ever: leads while it holds it, follows otherwise.
async fn lead_shard(
    replica: Replica,
    shard: u32,
    cfg: Config,
    opts: Options,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let Replica {
        client,
        le,
        readiness,
        turn,
        started,
    } = replica;
    let name = lease_name(&le, shard);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &le.namespace);
    let set_role = |leading: bool| {
        readiness
            .roles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shard, leading);
        opts.metrics.leading(shard, leading);
    };
    set_role(false);
    let duration = le.lease_duration.as_secs().max(2);
    // Renew every renewDeadline / 2 (kube-lease-manager renews `grace` before expiry).
    let renew_every = (le.renew_deadline.as_secs() / 2).clamp(1, duration - 1);
    let grace = duration - renew_every;
    // One campaign at a time in this replica; a free shard waits STAGGER per shard led while
    // the replicas started together share the shards out.
    let my_turn = turn.lock().await;
    if started.elapsed() < le.lease_duration && !held_by_another(&leases, &name, &le.identity).await
    {
        let leading = readiness
            .roles
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|l| **l)
            .count();
        let wait = STAGGER * u32::try_from(leading).unwrap_or(u32::MAX);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
    let mut backoff = crate::k8s::WatchBackoff::default();
    let mut repeats = crate::Repeats::default();
    let manager = loop {
        let built = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), &name)
            .with_namespace(&le.namespace)
            .with_identity(&le.identity)
            .with_duration(duration)
            .with_grace(grace)
            .build()
            .await;
        match built {
            Ok(m) => break m,
            Err(e) => {
                let text = crate::error_chain(&e);
                if let Some(times) = repeats.note(&text) {
                    tracing::error!(lease = %name, error = %text, times, "cannot reach the shard's Lease; retrying");
                }
                let delay = backoff.next().unwrap_or(crate::k8s::WATCH_BACKOFF_MAX);
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
        }
    };
    let (mut held, manager_task) = manager.watch().await;
    // A free Lease is taken at once: let the next shard campaign when it is (or in 2 s).
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        if !held_by_another(&leases, &name, &le.identity).await {
            let _ = held.wait_for(|h| *h).await;
        }
    })
    .await;
    drop(my_turn);
    let follower = super::warm::Follower {
        leases: leases.clone(),
        lease: name.clone(),
        cache: cfg.state_dir.join("repos"),
        warmed: readiness.warmed.clone(),
    };
    let triggers = opts.triggers.clone().unwrap_or_default();
    loop {
        // Follow until the Lease is ours, keeping the shard's caches warm.
        let warming = Warming::start(&follower, &cfg, &triggers);
        let go = tokio::select! {
            r = held.wait_for(|h| *h) => r.is_ok(),
            _ = stop.wait_for(|s| *s) => false,
        };
        warming.stop().await;
        if !go {
            break;
        }
        tracing::info!(shard, lease = %name, identity = %le.identity, repos = cfg.repos.len(), "leading the shard");
        set_role(true);
        {
            let mut warmed = readiness.warmed.lock().unwrap_or_else(|p| p.into_inner());
            for r in &cfg.repos {
                warmed.remove(&r.name);
            }
        }
        // Followers that fetched a new head (a webhook to them) say so on the Lease.
        let forward = tokio::spawn(super::warm::forward(
            leases.clone(),
            name.clone(),
            triggers.clone(),
        ));
        let _forward = crate::AbortOnDrop(forward.abort_handle());
        let running = match super::start(&cfg, opts.clone()).await {
            Ok(r) => r,
            Err(e) => {
                tracing::error!(shard, error = %crate::error_chain(&e), "starting the shard failed");
                set_role(false);
                break;
            }
        };
        readiness
            .shards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(shard, running.readiness.clone());
        let stopping = tokio::select! {
            _ = held.wait_for(|h| !*h) => false,
            () = lost(&leases, &name, &le) => false,
            _ = stop.wait_for(|s| *s) => true,
        };
        readiness
            .shards
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&shard);
        if stopping {
            // Graceful: passes in flight finish (bounded), then the Lease is released.
            running.shutdown().await;
            set_role(false);
            break;
        }
        // Lost: stop writing now (every task aborted at its next await).
        drop(running);
        set_role(false);
        tracing::warn!(shard, lease = %name, "lost the shard's Lease: stopped writing; following");
    }
    // Closing the channel makes the manager release the Lease (when it holds it).
    drop(held);
    let _ = tokio::time::timeout(Duration::from_secs(2), manager_task).await;
}

/// The warm tasks of one followed shard (one per repository).
struct Warming {
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Warming {
    fn start(f: &super::warm::Follower, cfg: &Config, triggers: &Triggers) -> Self {
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let tasks = cfg
            .repos
            .iter()
            .map(|r| {
                let trigger = triggers
                    .repos
                    .get(&r.name)
                    .map(|(t, _)| t.clone())
                    .unwrap_or_default();
                tokio::spawn(super::warm::follow(
                    f.clone(),
                    r.clone(),
                    trigger,
                    stopped.clone(),
                ))
            })
            .collect();
        Self { stop, tasks }
    }

    /// Stops the tasks, letting a fetch in flight finish (bounded): the workers fetch into
    /// the same mirrors next.
    async fn stop(self) {
        let _ = self.stop.send(true);
        let mut tasks = self.tasks;
        let all = futures::future::join_all(tasks.iter_mut());
        if tokio::time::timeout(super::warm::STOP_WAIT, all)
            .await
            .is_err()
        {
            for t in &tasks {
                t.abort();
            }
        }
    }
}

/// Whether another replica holds the Lease `name` now (named, renewed within its duration).
async fn held_by_another(leases: &Api<Lease>, name: &str, me: &str) -> bool {
    let Ok(Some(lease)) = leases.get_opt(name).await else {
        return false;
    };
    let spec = lease.spec.unwrap_or_default();
    let (Some(holder), Some(renewed), Some(secs)) = (
        spec.holder_identity,
        spec.renew_time,
        spec.lease_duration_seconds,
    ) else {
        return false;
    };
    let renewed: SystemTime = renewed.0.into();
    let valid_until = renewed + Duration::from_secs(u64::try_from(secs).unwrap_or(0));
    holder != me && valid_until > SystemTime::now()
}

/// Resolves when this replica can no longer be sure it holds the Lease: the Lease names
/// another holder, or no renewal younger than `renew_deadline` was seen.
async fn lost(leases: &Api<Lease>, name: &str, le: &LeaderElection) {
    let mut confirmed = SystemTime::now();
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        match leases.get_opt(name).await {
            Ok(Some(lease)) => {
                let spec = lease.spec.unwrap_or_default();
                if spec.holder_identity.as_deref() != Some(le.identity.as_str()) {
                    return;
                }
                if let Some(renewed) = spec.renew_time {
                    let renewed: SystemTime = renewed.0.into();
                    confirmed = confirmed.max(renewed);
                }
            }
            Ok(None) => return,
            Err(e) => {
                tracing::debug!(lease = %name, error = %crate::error_chain(&e), "reading the Lease failed");
            }
        }
        let age = SystemTime::now()
            .duration_since(confirmed)
            .unwrap_or_default();
        if age > le.renew_deadline {
            tracing::warn!(lease = %name, age = ?age, deadline = ?le.renew_deadline, "the Lease was not renewed in time");
            return;
        }
    }
}

/// Which replica holds each shard's Lease now (`None`: no holder), for `rollgit` tools and
/// tests.
pub async fn holders(
    client: &kube::Client,
    le: &LeaderElection,
    shards: u32,
) -> Result<BTreeMap<u32, Option<String>>, kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), &le.namespace);
    let mut out = BTreeMap::new();
    for shard in 0..shards {
        let holder = leases
            .get_opt(&lease_name(le, shard))
            .await?
            .and_then(|l| l.spec)
            .and_then(|s| s.holder_identity);
        out.insert(shard, holder);
    }
    Ok(out)
}
