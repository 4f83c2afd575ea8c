//! `rollgit devcluster`: a Kubernetes-compatible API server for development and tests.
//!
//! It speaks the Kubernetes REST API over HTTP on loopback, so `kubectl` and kube-rs talk to it
//! as to a real cluster: discovery, CRUD with resourceVersion concurrency, JSON/merge/strategic
//! patches, server-side apply with field managers, watches with bookmarks, label and field
//! selectors, Table output, CRDs, status and scale subresources, garbage collection, and an
//! optional data directory that survives restarts.

pub mod admission;
pub mod api;
pub mod controllers;
pub mod convert;
pub mod discovery;
pub mod error;
pub mod fields;
pub mod gc;
pub mod protobuf;
pub mod resources;
pub mod selector;
pub mod store;
pub mod table;
pub mod time;

use crate::api::Server;
use crate::resources::GroupResource;
use crate::store::{Change, ObjKey, Store};
use serde_json::json;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;

/// How to run a dev cluster.
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (port 0 picks a free port).
    pub listen: SocketAddr,
    /// Where to write a kubeconfig for the cluster, if anywhere.
    pub kubeconfig: Option<PathBuf>,
    /// Where to keep objects across restarts; in memory only when `None`.
    pub data_dir: Option<PathBuf>,
    /// How many changes are kept for watches resuming from an older resourceVersion.
    pub watch_window: usize,
    /// How often watches that asked for bookmarks get one.
    pub bookmark_every: Duration,
    /// The simulated controllers, kubelet and faults.
    pub simulation: controllers::SimConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            kubeconfig: None,
            data_dir: None,
            watch_window: store::DEFAULT_LOG_CAP,
            bookmark_every: Duration::from_secs(10),
            simulation: controllers::SimConfig::default(),
        }
    }
}

/// Errors starting a dev cluster.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The data directory could not be opened.
    #[error("opening the data directory")]
    DataDir(#[from] store::StoreError),
    /// The listen address could not be bound.
    #[error("listening on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The kubeconfig could not be written.
    #[error("writing the kubeconfig {path}")]
    Kubeconfig {
        /// The path.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// A running dev cluster.
pub struct DevCluster {
    addr: SocketAddr,
    server: Arc<Server>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<()>>,
}

const SYSTEM_NAMESPACES: [&str; 4] = ["default", "kube-system", "kube-public", "kube-node-lease"];

fn bootstrap(srv: &Server) {
    let store = &srv.store;
    for ns in SYSTEM_NAMESPACES {
        let key = ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "namespaces".into(),
            },
            namespace: String::new(),
            name: ns.to_string(),
        };
        let res = store.write(&key, false, |cur, _| {
            if cur.is_some() {
                return Ok(Change::Unchanged);
            }
            Ok(Change::Put(json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": ns,
                    "uid": uuid::Uuid::new_v4().to_string(),
                    "creationTimestamp": crate::time::now_rfc3339(),
                    "labels": {"kubernetes.io/metadata.name": ns},
                },
                "spec": {"finalizers": ["kubernetes"]},
                "status": {"phase": "Active"},
            })))
        });
        if let Err(e) = res {
            tracing::error!(namespace = ns, error = %e, "could not create a system namespace");
        }
    }
}

impl DevCluster {
    /// Starts a dev cluster and, if configured, writes its kubeconfig.
    pub async fn start(config: Config) -> Result<Self, StartError> {
        let store = Arc::new(match &config.data_dir {
            Some(dir) => Store::open(dir, config.watch_window)?,
            None => Store::new(config.watch_window),
        });
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| StartError::Bind {
            addr: config.listen,
            source,
        })?;
        let server = Arc::new(Server::new(
            store.clone(),
            addr.to_string(),
            config.bookmark_every,
        ));
        bootstrap(&server);
        let mut tasks = vec![tokio::spawn(gc::run(store.clone()))];
        if config.simulation.enabled {
            tasks.push(controllers::start(server.clone(), config.simulation.clone()).await);
        }
        let app = axum::Router::new()
            .fallback(api::handle)
            .with_state(server.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.push(tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = rx.await;
            });
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "dev cluster server stopped");
            }
        }));
        let cluster = Self {
            addr,
            server,
            shutdown: Some(tx),
            tasks,
        };
        if let Some(path) = &config.kubeconfig {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|source| StartError::Kubeconfig {
                    path: path.clone(),
                    source,
                })?;
            }
            std::fs::write(path, cluster.kubeconfig()).map_err(|source| {
                StartError::Kubeconfig {
                    path: path.clone(),
                    source,
                }
            })?;
        }
        tracing::info!(%addr, "dev cluster listening");
        Ok(cluster)
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The server URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The shared server state (store and registry), for in-process controllers and tests.
    pub fn server(&self) -> &Arc<Server> {
        &self.server
    }

    /// A kubeconfig that kubectl and kube-rs accept.
    pub fn kubeconfig(&self) -> String {
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: rollgit-dev\n  cluster:\n    server: {}\ncontexts:\n- name: rollgit-dev\n  context:\n    cluster: rollgit-dev\n    user: rollgit-dev\n    namespace: default\ncurrent-context: rollgit-dev\nusers:\n- name: rollgit-dev\n  user: {{}}\npreferences: {{}}\n",
            self.url()
        )
    }

    /// Stops serving and waits for the server task.
    pub async fn shutdown(mut self) {
        self.server.stop();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        for t in self.tasks.drain(..) {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        self.server.stop();
        for t in &self.tasks {
            t.abort();
        }
    }
}
