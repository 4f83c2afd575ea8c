//! The daemon: wiring only. It builds a client per cluster, installs rollgit's CRDs (and
//! OpenKruise's Rollout CRD where rollgit runs Kruise Rollouts) once its API server answers,
//! starts one [`worker::RepoWorker`] per repository (source → render → plan → apply → record),
//! and per cluster one rollout controller, one Argo Rollouts controller and one Kruise Rollout
//! controller where rollgit runs them (whose rollbacks and aborts the record stage writes to
//! the apps' repositories), and serves the HTTP surface ([`crate::api`]).

pub mod requests;
pub mod worker;

use crate::api::{Readiness, Triggers};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{Config, RolloutController};
use crate::k8s::kruise::Controller as KruiseController;
use crate::metrics::Metrics;
use crate::record::revert::Writer;
use crate::record::rollback::{GitRecorder, RepoWriter};
use rollgit_source::Trigger;
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
}

impl Default for Options {
    fn default() -> Self {
        Self {
            metrics: Arc::new(Metrics::new()),
            clock: Arc::new(SystemClock),
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
    let mut parts = Vec::new();
    // Each cluster's CRDs, installed once its API server answers; workers wait for them.
    let crds: Vec<(
        tokio::sync::watch::Sender<bool>,
        tokio::sync::watch::Receiver<bool>,
    )> = clients
        .iter()
        .map(|_| tokio::sync::watch::channel(false))
        .collect();
    // Whether rollgit runs each cluster's Kruise Rollouts, decided with the CRDs.
    let kruise: Vec<Arc<std::sync::atomic::AtomicBool>> =
        clients.iter().map(|_| Arc::default()).collect();
    let mut map = BTreeMap::new();
    let mut writers: Vec<BTreeMap<String, RepoWriter>> =
        clients.iter().map(|_| BTreeMap::new()).collect();
    let cache = cfg.state_dir.join("repos");
    let mut tasks = Vec::new();
    for repo in &cfg.repos {
        let trigger = Trigger::new();
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
        let worker = RepoWorker::new(
            repo.clone(),
            cache.clone(),
            clients[repo.cluster].clone(),
            trigger,
            &opts,
            writer,
            crds[repo.cluster].1.clone(),
        )
        .with_kruise_hold(kruise[repo.cluster].clone());
        parts.push((format!("repository {}", repo.name), worker.readiness()));
        tasks.push(tokio::spawn(worker.run()));
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
        let name = cluster.name.clone();
        // The CRDs are installed before `start` returns when the API server answers; when it
        // is down, the daemon starts anyway and installs them once it is up.
        let installed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            crate::k8s::crds::ensure_crds(&client).await.ok()?;
            crate::k8s::kruise::ensure(&client, wanted == RolloutController::External)
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
                    install_crds(&client, &name).await;
                    install_kruise_crd(&client, &name, wanted).await
                }
            };
            let runs_kruise = who == KruiseController::Rollgit;
            if !runs_kruise && wanted == RolloutController::Rollgit {
                tracing::error!(cluster = %name, "rolloutControllers.kruise is rollgit, but the cluster has OpenKruise's own Rollout CRD (Kruise runs its Rollouts there): rollgit leaves them to Kruise; set rolloutControllers.kruise to external, or remove Kruise");
            }
            tracing::info!(cluster = %name, kruise = ?who, "who runs OpenKruise Rollouts");
            kruise.store(runs_kruise, std::sync::atomic::Ordering::Relaxed);
            ready.store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = crds_ready.send(true);
            let batch = crate::rollout::run(
                client.clone(),
                clock.clone(),
                recorder.clone(),
                stopped.clone(),
            );
            let argo = crate::rollout::argo::run(
                client.clone(),
                clock.clone(),
                recorder.clone(),
                argo,
                stopped.clone(),
            );
            if runs_kruise {
                let kruise = crate::rollout::kruise::run(client, clock, recorder, stopped);
                futures::future::join3(batch, argo, kruise).await;
            } else {
                futures::future::join(batch, argo).await;
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
        },
        tasks,
        stop: Some(stop),
        controllers,
    })
}

/// Installs rollgit's CRDs in a cluster, trying again (capped backoff, one log line per
/// doubling of a repeated error) until the API server answers.
async fn install_crds(client: &kube::Client, cluster: &str) {
    let mut backoff = crate::k8s::WatchBackoff::default();
    let mut repeats = crate::Repeats::default();
    loop {
        match crate::k8s::crds::ensure_crds(client).await {
            Ok(()) => return,
            Err(e) => {
                let text = crate::error_chain(&e);
                if let Some(times) = repeats.note(&text) {
                    tracing::warn!(cluster, error = %text, times, "cannot install rollgit's CRDs yet; trying again");
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
) -> KruiseController {
    let mut backoff = crate::k8s::WatchBackoff::default();
    let mut repeats = crate::Repeats::default();
    loop {
        match crate::k8s::kruise::ensure(client, wanted == RolloutController::External).await {
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
