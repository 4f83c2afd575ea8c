//! The lowest layer of the shell: what rollgit writes into Kubernetes and how it talks to a
//! cluster. Every stage uses it; it uses none of them.
//!
//! * the API group and version of rollgit's own resources, the labels, annotations and field
//!   managers on what it applies ([`APP_LABEL`], [`FIELD_MANAGER`], ...);
//! * [`crds`]: the custom resources as typed structs (`applications.rollgit.dev`,
//!   `rollouts.rollgit.dev`); the YAML in `deploy/crds/` is generated from them;
//! * [`objref`]: references to objects ([`ObjRef`]) and an app's [`Inventory`];
//! * [`events`]: Kubernetes Events through kube's recorder;
//! * [`client_for`]: a client for any cluster a kubeconfig reaches (or the in-cluster
//!   ServiceAccount);
//! * [`explain`]: its errors said plainly (refused credentials, missing permissions, TLS
//!   causes, the address that refused a connection).

pub mod argo;
pub mod crds;
pub mod events;
pub mod explain;
pub mod kruise;
pub mod objref;
pub mod scope;

pub use crds::{
    Application, ApplicationSpec, ApplicationStatus, Condition, Rollout, RolloutSpec, RolloutStatus,
};
pub use events::Events;
pub use objref::{Inventory, ObjRef};

use std::path::Path;

/// API group of rollgit's resources.
pub const GROUP: &str = "rollgit.dev";
/// API version of rollgit's resources.
pub const VERSION: &str = "v1alpha1";
/// `rollgit.dev/v1alpha1`.
pub const API_VERSION: &str = "rollgit.dev/v1alpha1";

/// The field manager of everything the apply stage applies (and of rollgit's status objects).
pub const FIELD_MANAGER: &str = "rollgit";
/// The field manager of the rollout stage's writes to workloads.
pub const ROLLOUT_FIELD_MANAGER: &str = "rollgit-rollout";
/// The field manager of the record stage's writes (`status.record` of a Rollout).
pub const RECORD_FIELD_MANAGER: &str = "rollgit-record";

/// `app.kubernetes.io/managed-by: rollgit` on every applied object.
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
/// The value of [`MANAGED_BY_LABEL`].
pub const MANAGED_BY: &str = "rollgit";
/// The app an applied object belongs to.
pub const APP_LABEL: &str = "rollgit.dev/app";
/// The repository (rollgit's name for it) an applied object comes from.
pub const REPO_LABEL: &str = "rollgit.dev/repo";
/// On the workloads a Rollout owns: the Rollout's name.
pub const ROLLOUT_LABEL: &str = "rollgit.dev/rollout";
/// The component revision a workload runs (Deployments: also in the selector and pod
/// template; in-place workloads: an annotation of that name).
pub const REVISION_LABEL: &str = "rollgit.dev/revision";
/// Annotation on an Application overriding the progress deadline of its rollouts.
pub const PROGRESS_DEADLINE_ANNOTATION: &str = "rollgit.dev/progress-deadline";

/// How a health message says that an object waits for a person (the app's phase becomes
/// `stalled`).
pub const STALLED: &str = "Stalled: ";

/// Errors of building a client.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The kubeconfig could not be read.
    #[error("reading kubeconfig {path}")]
    ReadKubeconfig {
        /// The file.
        path: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// The kubeconfig (or its context) does not make a client configuration.
    #[error("kubeconfig {what}")]
    Config {
        /// Which kubeconfig and context.
        what: String,
        #[source]
        source: kube::config::KubeconfigError,
    },
    /// No kubeconfig was given and none could be inferred.
    #[error(
        "no kubeconfig given and none could be inferred (in-cluster, $KUBECONFIG, ~/.kube/config)"
    )]
    Infer(#[source] kube::config::InferConfigError),
    /// The client could not be built (TLS setup).
    #[error("building a client for cluster {cluster}")]
    Build {
        /// The cluster's name.
        cluster: String,
        #[source]
        source: kube::Error,
    },
}

/// A client for the cluster `name` reached through `kubeconfig` (and `context`), or inferred
/// (in-cluster ServiceAccount, `$KUBECONFIG`, `~/.kube/config`) when no kubeconfig is given.
/// TLS, tokens, client certificates and exec plugins are what the kubeconfig says.
pub async fn client_for(
    name: &str,
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> Result<kube::Client, ClientError> {
    client_impersonating(name, kubeconfig, context, None).await
}

/// Who a client acts as (the `Impersonate-User` and `Impersonate-Group` headers).
#[derive(Debug, Clone)]
pub struct Impersonate {
    /// The user name.
    pub user: String,
    /// Its groups.
    pub groups: Vec<String>,
}

impl Impersonate {
    /// The ServiceAccount `namespace/name`. No groups are sent: the API server gives a
    /// ServiceAccount its own (`system:serviceaccounts`, `system:serviceaccounts:NS`), so
    /// rollgit needs only `impersonate` on that ServiceAccount, not on groups.
    pub fn service_account(namespace: &str, name: &str) -> Self {
        Self {
            user: format!("system:serviceaccount:{namespace}:{name}"),
            groups: Vec::new(),
        }
    }
}

/// [`client_for`], acting as `who` when given.
pub async fn client_impersonating(
    name: &str,
    kubeconfig: Option<&Path>,
    context: Option<&str>,
    who: Option<Impersonate>,
) -> Result<kube::Client, ClientError> {
    let opts = kube::config::KubeConfigOptions {
        context: context.map(str::to_string),
        ..Default::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path).map_err(|source| {
                ClientError::ReadKubeconfig {
                    path: path.display().to_string(),
                    source,
                }
            })?;
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|source| ClientError::Config {
                    what: format!("{} (cluster {name})", path.display()),
                    source,
                })?
        }
        None => match context {
            Some(ctx) => kube::Config::from_kubeconfig(&opts)
                .await
                .map_err(|source| ClientError::Config {
                    what: format!("context {ctx}"),
                    source,
                })?,
            None => kube::Config::infer().await.map_err(ClientError::Infer)?,
        },
    };
    let mut config = config;
    if let Some(who) = who {
        config.auth_info.impersonate = Some(who.user);
        if !who.groups.is_empty() {
            config.auth_info.impersonate_groups = Some(who.groups);
        }
    }
    // Scheme, host and port only: never a user or password written into the URL.
    let url = &config.cluster_url;
    let server = format!(
        "{}://{}{}",
        url.scheme_str().unwrap_or("https"),
        url.host().unwrap_or(""),
        url.port_u16().map(|p| format!(":{p}")).unwrap_or_default()
    );
    let builder =
        kube::client::ClientBuilder::try_from(config).map_err(|source| ClientError::Build {
            cluster: name.to_string(),
            source,
        })?;
    // A request that got no answer says which server it was for (kube's own errors, of its
    // auth layers, pass unchanged).
    let tag = tower::util::MapErrLayer::new(move |e: tower::BoxError| -> tower::BoxError {
        if e.is::<kube::Error>() {
            e
        } else {
            Box::new(explain::Unreached {
                server: server.clone(),
                source: e,
            })
        }
    });
    Ok(builder.with_layer(&tag).build())
}

/// The longest a watch waits before it tries again after an error: a watch resumes within a
/// few seconds of the API server coming back, however long it was gone.
pub const WATCH_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(3);

/// The backoff of every watch rollgit holds: exponential from 250 ms with jitter, capped at
/// [`WATCH_BACKOFF_MAX`], reset when the watch works again.
pub struct WatchBackoff {
    current: backon::ExponentialBackoff,
}

impl WatchBackoff {
    fn builder() -> backon::ExponentialBuilder {
        backon::ExponentialBuilder::default()
            .with_min_delay(std::time::Duration::from_millis(250))
            .with_max_delay(WATCH_BACKOFF_MAX)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
    }
}

impl Default for WatchBackoff {
    fn default() -> Self {
        use backon::BackoffBuilder;
        Self {
            current: Self::builder().build(),
        }
    }
}

impl Iterator for WatchBackoff {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<std::time::Duration> {
        self.current.next()
    }
}

impl kube::runtime::utils::Backoff for WatchBackoff {
    fn reset(&mut self) {
        *self = Self::default();
    }
}
