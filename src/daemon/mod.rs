//! The daemon: wiring only. It builds a client per cluster, installs rollgit's CRDs (and
//! OpenKruise's Rollout CRD where rollgit runs Kruise Rollouts) once its API server answers,
//! starts one [`worker::RepoWorker`] per repository (source → render → plan → apply → record),
//! and per cluster one rollout controller, one Argo Rollouts controller and one Kruise Rollout
//! controller where rollgit runs them (whose rollbacks and aborts the record stage writes to
//! the apps' repositories), and serves the HTTP surface ([`crate::api`]).

pub mod elect;
pub mod requests;
pub mod warm;
pub mod worker;

use crate::api::{Readiness, Triggers};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, RolloutController};
use crate::k8s::kruise::Controller as KruiseController;
use crate::metrics::Metrics;
use crate::record::revert::Writer;
use crate::record::rollback::{GitRecorder, RepoWriter};
use std::collections::BTreeMap;
use std::sync::Arc;
use worker::RepoWorker;

/// Errors of starting the daemon.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A cluster's client could not be built.
    #[error(transparent)]
    Client(#[from] crate::k8s::ClientError),
    /// The HTTP server could not listen.
    #[error("listening on {addr}")]
    Listen {
        addr: std::net::SocketAddr,
        #[source]
        source: std::io::Error,
    },
}

/// What the daemon runs with besides its configuration.
#[derive(Clone)]
pub struct Options {
    /// The metrics it counts into.
    pub metrics: Arc<Metrics>,
    /// The clock its stages read.
    pub clock: SharedClock,
    /// The repositories' triggers, when they outlive this start (leader election: the HTTP
    /// server holds them while shards come and go). `None`: made here.
    pub triggers: Option<Triggers>,
    /// Whether the rollout controllers handle only the objects of the configured repositories
    /// (a shard's); otherwise every Rollout in the watched namespaces.
    pub only_configured_repos: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            metrics: Arc::new(Metrics::new()),
            clock: Arc::new(SystemClock),
            triggers: None,
            only_configured_repos: false,
        }
    }
}

/// A started daemon: its tasks run until it is dropped.
pub struct Running {
    /// The repositories' triggers (for webhooks, and tests).
    pub triggers: Triggers,
    /// Its metrics.
    pub metrics: Arc<Metrics>,
    /// Whether it caught up (for `/readyz`).
    pub readiness: Readiness,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    controllers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stops the workers, lets the rollout controllers finish the passes in flight (bounded),
    /// and returns.
    pub async fn shutdown(mut self) {
        for t in &self.tasks {
            t.abort();
        }
        drop(self.stop.take());
        let controllers = std::mem::take(&mut self.controllers);
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(4),
            futures::future::join_all(controllers),
        )
        .await;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in self.tasks.iter().chain(self.controllers.iter()) {
            t.abort();
        }
    }
}

/// Starts a worker per repository and a rollout controller per cluster.
pub async fn start(cfg: &Config, opts: Options) -> Result<Running, StartError> {
    let mut clients = Vec::new();
    for c in &cfg.clusters {
        clients.push(c.client().await?);
    }
    let target = crate::k8s::scope::Target {
        namespaces: cfg.watch.clone(),
        repos: opts
            .only_configured_repos
            .then(|| cfg.repos.iter().map(|r| r.name.clone()).collect()),
    };
    let install = cfg.install_crds;
    let mut parts = Vec::new();
    // Each cluster's CRDs, installed once its API server answers; workers wait for them.
    let crds: Vec<(
        tokio::sync::watch::Sender<bool>,
        tokio::sync::watch::Receiver<bool>,
    )> = clients
        .iter()
        .map(|_| tokio::sync::watch::channel(false))
        .collect();
    // Who runs each cluster's Kruise Rollouts, asked again on every pass and apply.
    let kruise: Vec<Arc<crate::rollout::kruise::Detector>> = clients
        .iter()
        .map(|c| {
            Arc::new(crate::rollout::kruise::Detector::new(
                c.clone(),
                cfg.rollout_controllers.kruise,
            ))
        })
        .collect();
    let mut map = BTreeMap::new();
    let mut writers: Vec<BTreeMap<String, RepoWriter>> =
        clients.iter().map(|_| BTreeMap::new()).collect();
    let cache = cfg.state_dir.join("repos");
    let fleet = crate::rollout::workflow::Fleet::new(
        cfg.clusters
            .iter()
            .zip(&clients)
            .map(|(c, client)| (c.name.clone(), client.clone())),
    );
    let mut tasks = Vec::new();
    for repo in &cfg.repos {
        let trigger = opts
            .triggers
            .as_ref()
            .and_then(|t| t.repos.get(&repo.name))
            .map(|(t, _)| t.clone())
            .unwrap_or_default();
        map.insert(
            repo.name.clone(),
            (trigger.clone(), repo.webhook_secret.clone()),
        );
        let writer = RepoWriter {
            writer: Writer::of(repo, cache.clone()),
            revert_rollbacks: repo.revert_rollbacks,
            trigger: trigger.clone(),
        };
        writers[repo.cluster].insert(repo.name.clone(), writer.clone());
        let mut worker = RepoWorker::new(
            repo.clone(),
            cache.clone(),
            clients[repo.cluster].clone(),
            trigger,
            &opts,
            writer,
            crds[repo.cluster].1.clone(),
        )
        .with_kruise(kruise[repo.cluster].clone())
        .with_scope(cfg.watch.clone());
        let local = &cfg.clusters[repo.cluster].name;
        let mut repo_fleet = fleet.clone();
        if let Some(sa) = &repo.service_account {
            // The tenant's own RBAC decides what its objects may do: applied, pruned and
            // read for health as its ServiceAccount, by the plain apply and by the workflows'
            // deliveries to the repository's cluster.
            let as_sa = cfg.clusters[repo.cluster]
                .client_as(&repo.namespace, sa)
                .await?;
            repo_fleet = fleet.with_client(local, as_sa.clone());
            worker = worker.with_apply_client(as_sa);
        }
        worker = worker.with_fleet(repo_fleet, cfg.fleet(), local);
        parts.push((format!("repository {}", repo.name), worker.readiness()));
        tasks.push(tokio::spawn(worker.run()));
    }
    let promoter = crate::promote::Promoter::new(cfg, &clients, opts.clock.clone());
    if !promoter.is_empty() {
        tasks.push(tokio::spawn(promoter.run()));
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = futures::FutureExt::shared(async move {
        let _ = stopped.await;
    });
    let mut controllers = Vec::new();
    for ((((client, writers), cluster), (crds_ready, _)), kruise) in clients
        .iter()
        .zip(writers)
        .zip(&cfg.clusters)
        .zip(crds)
        .zip(kruise)
    {
        let recorder =
            Arc::new(GitRecorder::new(client.clone(), writers).with_metrics(opts.metrics.clone()));
        let argo = cfg.rollout_controllers.argo;
        let wanted = cfg.rollout_controllers.kruise;
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        parts.push((format!("cluster {}", cluster.name), ready.clone()));
        let (client, clock, stopped) = (client.clone(), opts.clock.clone(), stopped.clone());
        let target = target.clone();
        let name = cluster.name.clone();
        // The CRDs are installed before `start` returns when the API server answers; when it
        // is down, the daemon starts anyway and installs them once it is up.
        let installed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            crate::k8s::crds::ensure_crds_with(&client, install)
                .await
                .ok()?;
            crate::k8s::kruise::ensure(&client, wanted == RolloutController::External, install)
                .await
                .ok()
        })
        .await
        .ok()
        .flatten();
        controllers.push(tokio::spawn(async move {
            let who = match installed {
                Some(who) => who,
                None => {
                    install_crds(&client, &name, install).await;
                    install_kruise_crd(&client, &name, wanted, install).await
                }
            };
            if who == KruiseController::External && wanted == RolloutController::Rollgit {
                tracing::error!(cluster = %name, "rolloutControllers.kruise is rollgit, but the cluster has OpenKruise's own Rollout controller (Kruise runs its Rollouts there): rollgit leaves them to Kruise; set rolloutControllers.kruise to external, or remove Kruise");
            }
            tracing::info!(cluster = %name, kruise = ?who, "who runs OpenKruise Rollouts (asked again on every pass)");
            ready.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = crds_ready.send(true);
            let batch = crate::rollout::run(
                client.clone(),
                clock.clone(),
                recorder.clone(),
                target.clone(),
                stopped.clone(),
            );
            let argo = crate::rollout::argo::run(
                client.clone(),
                clock.clone(),
                recorder.clone(),
                argo,
                target.clone(),
                stopped.clone(),
            );
            // Where rollgit's Kruise Rollout CRD is served (not configured external, no
            // Kruise controller found at start), rollgit's Kruise executor runs, and each pass
            // asks the detector whether Kruise's own controller has them since (delegate mode).
            // Elsewhere it does not watch Kruise Rollouts at all (an identity with namespaced
            // rights may not even list them).
            if wanted == RolloutController::External || who != KruiseController::Rollgit {
                futures::future::join(batch, argo).await;
            } else {
                let kruise =
                    crate::rollout::kruise::run(client, clock, recorder, target, kruise, stopped);
                futures::future::join3(batch, argo, kruise).await;
            }
        }));
    }
    Ok(Running {
        triggers: Triggers {
            repos: Arc::new(map),
        },
        metrics: opts.metrics,
        readiness: Readiness {
            parts: Arc::new(parts),
            ..Readiness::default()
        },
        tasks,
        stop: Some(stop),
        controllers,
    })
}

/// Installs rollgit's CRDs in a cluster, trying again (capped backoff, one log line per
/// doubling of a repeated error) until the API server answers.
async fn install_crds(client: &kube::Client, cluster: &str, install: bool) {
    let mut backoff = crate::k8s::WatchBackoff::default();
    let mut repeats = crate::Repeats::default();
    loop {
        match crate::k8s::crds::ensure_crds_with(client, install).await {
            Ok(()) => return,
            Err(e) => {
                let text = crate::error_chain(&e);
                if let Some(times) = repeats.note(&text) {
                    tracing::error!(cluster, error = %text, times, "rollgit's CRDs are not ready; trying again");
                }
                let delay = backoff.next().unwrap_or(crate::k8s::WATCH_BACKOFF_MAX);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Decides who runs a cluster's Kruise Rollouts (installing rollgit's Rollout CRD when rollgit
/// does), trying again until the API server answers.
async fn install_kruise_crd(
    client: &kube::Client,
    cluster: &str,
    wanted: RolloutController,
    install: bool,
) -> KruiseController {
    let mut backoff = crate::k8s::WatchBackoff::default();
    let mut repeats = crate::Repeats::default();
    loop {
        match crate::k8s::kruise::ensure(client, wanted == RolloutController::External, install)
            .await
        {
            Ok(who) => return who,
            Err(e) => {
                let text = crate::error_chain(&e);
                if let Some(times) = repeats.note(&text) {
                    tracing::warn!(cluster, error = %text, times, "cannot install the OpenKruise Rollout CRD yet; trying again");
                }
                let delay = backoff.next().unwrap_or(crate::k8s::WATCH_BACKOFF_MAX);
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Runs the daemon (and its HTTP server when the configuration says where) until `shutdown`
/// resolves.
pub async fn run(
    cfg: &Config,
    opts: Options,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), StartError> {
    if let Some(le) = &cfg.leader_election {
        return elect::run(cfg, le, opts, shutdown).await;
    }
    let running = start(cfg, opts).await?;
    let server = match cfg.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .map_err(|source| StartError::Listen { addr, source })?;
            let app = crate::api::router(
                running.triggers.clone(),
                running.metrics.clone(),
                running.readiness.clone(),
            );
            tracing::info!(%addr, "webhooks at /hooks/{{provider}}/{{repo}}, metrics at /metrics");
            Some(tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, app).await {
                    tracing::error!(error = %crate::error_chain(&e), "webhook server stopped");
                }
            }))
        }
        None => None,
    };
    shutdown.await;
    if let Some(s) = server {
        s.abort();
    }
    running.shutdown().await;
    Ok(())
}
