//! The daemon: wiring only. It builds a client per cluster, installs rollgit's CRDs (and
//! OpenKruise's Rollout CRD where rollgit runs Kruise Rollouts), starts one
//! [`worker::RepoWorker`] per repository (source → render → plan → apply → record), one
//! rollout controller per cluster and one Kruise Rollout controller where rollgit runs them
//! (whose rollbacks the record stage writes to the apps' repositories), and serves the HTTP
//! surface ([`crate::api`]).

pub mod worker;

use crate::api::Triggers;
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
    /// rollgit's CRDs could not be installed.
    #[error("installing rollgit's CRDs")]
    Crds(#[from] crate::k8s::crds::CrdError),
    /// The OpenKruise Rollout CRD could not be installed.
    #[error("installing the OpenKruise Rollout CRD")]
    KruiseCrd(#[from] crate::k8s::kruise::KruiseCrdError),
    /// rollgit is configured to run Kruise Rollouts where Kruise's own controller does.
    #[error(
        "rolloutControllers.kruise is rollgit, but cluster {cluster} has OpenKruise's own Rollout CRD (Kruise runs its Rollouts there): set rolloutControllers.kruise to external, or remove Kruise"
    )]
    KruiseExternal { cluster: String },
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
    let mut kruise = Vec::new();
    for (client, cluster) in clients.iter().zip(&cfg.clusters) {
        crate::k8s::crds::ensure_crds(client).await?;
        let wanted = cfg.rollout_controllers.kruise;
        let who = crate::k8s::kruise::ensure(client, wanted == RolloutController::External).await?;
        if who == KruiseController::External && wanted == RolloutController::Rollgit {
            return Err(StartError::KruiseExternal {
                cluster: cluster.name.clone(),
            });
        }
        tracing::info!(cluster = %cluster.name, kruise = ?who, "who runs OpenKruise Rollouts");
        kruise.push(who == KruiseController::Rollgit);
    }
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
            opts.metrics.clone(),
            opts.clock.clone(),
            writer,
        )
        .with_kruise_hold(kruise[repo.cluster]);
        tasks.push(tokio::spawn(worker.run()));
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let stopped = futures::FutureExt::shared(async move {
        let _ = stopped.await;
    });
    let mut controllers = Vec::new();
    for ((client, writers), kruise) in clients.iter().zip(writers).zip(kruise) {
        let recorder = Arc::new(GitRecorder::new(client.clone(), writers));
        controllers.push(tokio::spawn(crate::rollout::run(
            client.clone(),
            opts.clock.clone(),
            recorder.clone(),
            stopped.clone(),
        )));
        if kruise {
            controllers.push(tokio::spawn(crate::rollout::kruise::run(
                client.clone(),
                opts.clock.clone(),
                recorder,
                stopped.clone(),
            )));
        }
    }
    Ok(Running {
        triggers: Triggers {
            repos: Arc::new(map),
        },
        metrics: opts.metrics,
        tasks,
        stop: Some(stop),
        controllers,
    })
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
            let app = crate::api::router(running.triggers.clone(), running.metrics.clone());
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
