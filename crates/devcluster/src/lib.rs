//! `rollgit devcluster`: a Kubernetes-compatible API server for development and tests.
//!
//! It speaks the Kubernetes REST API over HTTP on loopback, so `kubectl` and kube-rs talk to it
//! as to a real cluster: discovery, CRUD with resourceVersion concurrency, JSON/merge/strategic
//! patches, server-side apply with field managers, watches with bookmarks, label and field
//! selectors, Table output, CRDs, status and scale subresources, garbage collection, and an
//! optional data directory that survives restarts. Requests are authenticated (bearer tokens:
//! the admin token of its kubeconfig, ServiceAccount tokens) and authorized by RBAC
//! ([`auth`]), and objects are decoded and validated as strictly as kube-apiserver does.

pub mod admission;
pub mod api;
pub mod auth;
pub mod controllers;
pub mod convert;
pub mod discovery;
pub mod error;
pub mod fields;
pub mod gc;
pub mod protobuf;
pub mod resources;
pub mod schema;
pub mod selector;
pub mod store;
pub mod table;
pub mod time;
pub mod tls;
pub mod typed;

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
    /// What a request without credentials is (the admin by default).
    pub anonymous: auth::Anonymous,
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
            anonymous: auth::Anonymous::default(),
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
    /// The token signing key in the data directory could not be read or created.
    #[error("reading the signing key in {dir}")]
    SigningKey {
        /// The data directory.
        dir: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// TLS could not be set up.
    #[error("setting up TLS")]
    Tls(#[from] tls::TlsError),
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
    /// The serving certificate (PEM): the CA of HTTPS kubeconfigs.
    ca_pem: String,
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
        let keys = match &config.data_dir {
            Some(dir) => {
                auth::token::Auth::load_or_create(dir).map_err(|source| StartError::SigningKey {
                    dir: dir.clone(),
                    source,
                })?
            }
            None => auth::token::Auth::generate(),
        };
        let server = Arc::new(Server::new(
            store.clone(),
            addr.to_string(),
            config.bookmark_every,
            keys,
            config.anonymous,
        ));
        bootstrap(&server);
        auth::bootstrap::create(&server.store);
        let mut tasks = vec![tokio::spawn(gc::run(store.clone()))];
        if config.simulation.enabled {
            tasks.push(controllers::start(server.clone(), config.simulation.clone()).await);
        }
        let cert = tls::serving_cert(config.data_dir.as_deref(), addr.ip())?;
        let tls_config = tls::server_config(&cert)?;
        let app = axum::Router::new()
            .fallback(api::handle)
            .with_state(server.clone());
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tasks.push(tokio::spawn(tls::serve(listener, app, tls_config, rx)));
        let cluster = Self {
            addr,
            server,
            ca_pem: tls::pem(&cert.cert_der),
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

    /// The HTTPS URL of the same port, `https://127.0.0.1:PORT`.
    pub fn https_url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The serving certificate, PEM (the certificate authority of HTTPS kubeconfigs).
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// A kubeconfig that kubectl and kube-rs accept, as the cluster admin (`kubernetes-admin`,
    /// group `system:masters`), over plain HTTP (kubectl sends no credentials there: a request
    /// without them is the admin, see [`auth::Anonymous`]).
    pub fn kubeconfig(&self) -> String {
        kubeconfig_for(
            &self.url(),
            None,
            "rollgit-dev",
            self.server.auth.admin_token(),
            "default",
        )
    }

    /// A kubeconfig that authenticates with the bearer `token` over HTTPS (kubectl sends
    /// credentials only to TLS servers), trusting the dev cluster's certificate.
    pub fn token_kubeconfig(&self, user: &str, token: &str, namespace: &str) -> String {
        kubeconfig_for(
            &self.https_url(),
            Some(&self.ca_pem),
            user,
            token,
            namespace,
        )
    }

    /// Issues a token for the ServiceAccount `namespace/name` (as `kubectl create token` does,
    /// valid for `expiration`), or `None` when the ServiceAccount does not exist.
    pub fn service_account_token(
        &self,
        namespace: &str,
        name: &str,
        expiration: Duration,
    ) -> Option<String> {
        let key = ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "serviceaccounts".into(),
            },
            namespace: namespace.to_string(),
            name: name.to_string(),
        };
        let sa = self.server.store.get(&key).filter(|e| !e.meta.deleting)?;
        let secs = i64::try_from(expiration.as_secs()).unwrap_or(i64::MAX / 2);
        let (token, _) = self.server.auth.issue(
            namespace,
            name,
            &sa.meta.uid,
            &[auth::token::API_AUDIENCE.to_string()],
            secs,
            auth::token::now_unix(),
        );
        Some(token)
    }

    /// A kubeconfig in which the ServiceAccount `namespace/name` is the user (its token valid
    /// for `expiration`, namespace `namespace`), or `None` when it does not exist.
    pub fn service_account_kubeconfig(
        &self,
        namespace: &str,
        name: &str,
        expiration: Duration,
    ) -> Option<String> {
        let token = self.service_account_token(namespace, name, expiration)?;
        Some(self.token_kubeconfig(&format!("{namespace}-{name}"), &token, namespace))
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

/// A kubeconfig for `server` (trusting `ca_pem` for HTTPS) whose user authenticates with the
/// bearer `token`.
pub fn kubeconfig_for(
    server: &str,
    ca_pem: Option<&str>,
    user: &str,
    token: &str,
    namespace: &str,
) -> String {
    let ca = ca_pem
        .map(|pem| {
            format!(
                "    certificate-authority-data: {}\n",
                admission::base64_encode(pem.as_bytes())
            )
        })
        .unwrap_or_default();
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: rollgit-dev\n  cluster:\n    server: {server}\n{ca}contexts:\n- name: rollgit-dev\n  context:\n    cluster: rollgit-dev\n    user: {user}\n    namespace: {namespace}\ncurrent-context: rollgit-dev\nusers:\n- name: {user}\n  user:\n    token: {token}\npreferences: {{}}\n"
    )
}

impl Drop for DevCluster {
    fn drop(&mut self) {
        self.server.stop();
        for t in &self.tasks {
            t.abort();
        }
    }
}
