//! Configuration: a raw serde struct read from `rollgit.yaml` (or built from flags), validated
//! once into a resolved configuration. Every error names the field (`repos[0].url: ...`).
//! Credentials and webhook secrets are resolved from files or environment variables here and
//! never printed (their `Debug` is redacted).

use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A configuration error, naming the file and field.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The YAML did not parse or has the wrong shape.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A field is missing or invalid.
    #[error("{path}: {field}: {message}")]
    Invalid {
        /// The file (or `flags`).
        path: String,
        /// The field, such as `repos[0].url`.
        field: String,
        /// What is wrong.
        message: String,
    },
}

/// `rollgit.yaml` as written.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawConfig {
    /// Repositories to follow.
    #[serde(default)]
    pub repos: Vec<RawRepo>,
    /// Clusters by name.
    #[serde(default)]
    pub clusters: Vec<RawCluster>,
    /// Sync policy for every repo unless a repo overrides it.
    #[serde(default)]
    pub sync: RawSync,
    /// Address of the webhook/metrics server.
    pub listen: Option<String>,
    /// Directory for mirrors and state.
    pub state_dir: Option<PathBuf>,
    /// Who runs the rollouts of upstream formats (`{argo: auto, kruise: external}`).
    #[serde(default)]
    pub rollout_controllers: RawRolloutControllers,
    /// Install (server-side apply) rollgit's CRDs at start (default true). With `false` an
    /// admin installs them and rollgit only checks that they are there and recent enough.
    pub install_crds: Option<bool>,
    /// Watch (and write) only these namespaces, so that a Role per namespace suffices
    /// (default: derived from the repositories, see [`WatchScope`]).
    pub watch_namespaces: Option<Vec<String>>,
    /// Leader election: a Lease per shard; only the holder of a shard's Lease writes.
    pub leader_election: Option<RawLeaderElection>,
}

/// `leaderElection`.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawLeaderElection {
    /// Elect a leader per shard (default true when the section is given).
    pub enabled: Option<bool>,
    /// The namespace of the Leases (default: the pod's namespace, else `default`).
    pub namespace: Option<String>,
    /// The prefix of the Leases' names (default `rollgit`: `rollgit-shard-0`, ...).
    pub lease_name: Option<String>,
    /// How long a Lease is valid after its last renewal (default 10s).
    pub lease_duration: Option<String>,
    /// A holder that could not renew for this long stops writing; shorter than the lease
    /// duration (default 7s).
    pub renew_deadline: Option<String>,
    /// Repositories are split into this many shards by a stable hash of their name (default 1).
    pub shards: Option<u32>,
    /// This replica's identity in the Leases (default: the host name and a random suffix).
    pub identity: Option<String>,
}

/// What one repository may apply (as Flux's and Argo CD's tenant lock-down).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawAllow {
    /// Namespace globs its namespaced objects may be in (default: any).
    pub namespaces: Option<Vec<String>>,
    /// `false` (none), `true` (any), or the cluster-scoped kinds it may apply (default: any
    /// when `allow` is absent, none when it is given).
    pub cluster_scoped: Option<ClusterScopedRaw>,
    /// Kind globs (`Deployment`, `apps/*`, `*`) it may apply (default: any).
    pub kinds: Option<Vec<String>>,
}

/// `allow.clusterScoped`: a boolean or a list of kinds.
#[derive(Debug, Deserialize, Clone)]
#[serde(untagged)]
pub enum ClusterScopedRaw {
    /// All (`true`) or none (`false`).
    All(bool),
    /// These kinds.
    Kinds(Vec<String>),
}

/// `rolloutControllers`: per upstream format, `auto` (the default: rollgit, unless the
/// upstream controller runs in the cluster), `rollgit` (rollgit runs them) or `external` (the
/// upstream controller runs them; rollgit only applies them and reads their health).
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRolloutControllers {
    /// Argo Rollouts (`argoproj.io`).
    pub argo: Option<String>,
    /// OpenKruise Rollouts (`rollouts.kruise.io`).
    pub kruise: Option<String>,
}

/// Who runs the Argo Rollouts of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArgoController {
    /// rollgit, unless Argo Rollouts' own controller is found in the cluster.
    #[default]
    Auto,
    /// rollgit (make sure Argo's controller does not run them too).
    Rollgit,
    /// Argo Rollouts' own controller: rollgit applies the Rollouts and reads their health.
    External,
}

impl ArgoController {
    /// The value of `rolloutControllers.argo`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Auto,
            "rollgit" => Self::Rollgit,
            "external" => Self::External,
            _ => return None,
        })
    }
}

/// Who runs the OpenKruise Rollouts of a cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RolloutController {
    /// rollgit, unless the cluster has the upstream controller (its own CRD).
    #[default]
    Detect,
    /// rollgit (a start error when the upstream controller's CRD is there).
    Rollgit,
    /// The upstream controller: rollgit only applies the objects.
    External,
}

impl RolloutController {
    /// The value of `rolloutControllers.kruise`.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "auto" => Self::Detect,
            "rollgit" => Self::Rollgit,
            "external" => Self::External,
            _ => return None,
        })
    }
}

/// The resolved `rolloutControllers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RolloutControllers {
    /// Argo Rollouts.
    pub argo: ArgoController,
    /// OpenKruise Rollouts.
    pub kruise: RolloutController,
}

/// One repository.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawRepo {
    /// Name (defaults to the last URL segment).
    pub name: Option<String>,
    /// URL or local path.
    pub url: Option<String>,
    /// Branch (default `main`).
    pub branch: Option<String>,
    /// App directories or globs (default: the repository root as one app).
    #[serde(default)]
    pub paths: Vec<String>,
    /// Poll interval such as `30s` (default 30s).
    pub interval: Option<String>,
    /// Default namespace for namespaced objects (default `default`).
    pub namespace: Option<String>,
    /// Which cluster (default: the first).
    pub cluster: Option<String>,
    /// Credentials for https.
    pub credentials: Option<RawCredentials>,
    /// Webhook secret.
    pub webhook: Option<RawWebhook>,
    /// Overrides of the sync policy.
    pub sync: Option<RawSync>,
    /// What rollgit writes back to the repository.
    pub write_back: Option<RawWriteBack>,
    /// What the repository may apply (default: anything rollgit's credentials may).
    pub allow: Option<RawAllow>,
    /// Apply as this ServiceAccount of the repository's namespace (impersonated), so that the
    /// tenant's own RBAC decides what lands.
    pub service_account_name: Option<String>,
}

/// What rollgit writes back to a repository, and as whom.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWriteBack {
    /// Record every rollback as a `git revert` commit pushed to the branch (default true).
    pub revert_rollbacks: Option<bool>,
    /// Commit the revisions and publishVersion rollgit decides (`<app>/.rollgit-revisions`),
    /// one commit per change, so Git's history shows every revision (default false).
    pub bumps: Option<bool>,
    /// Commit author and committer name (default `rollgit`).
    pub author_name: Option<String>,
    /// Commit author and committer email (default `rollgit@localhost`).
    pub author_email: Option<String>,
    /// Sign commits with this key (`git commit-tree -S<key>`; an ssh key path or `key::ssh-…`
    /// uses ssh signing).
    pub signing_key: Option<String>,
}

/// Credentials from files or environment variables.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCredentials {
    /// A file holding a token.
    pub token_file: Option<PathBuf>,
    /// An environment variable holding a token.
    pub token_env: Option<String>,
    /// Username (plain; not secret).
    pub username: Option<String>,
    /// An environment variable holding a password.
    pub password_env: Option<String>,
    /// A file holding a password.
    pub password_file: Option<PathBuf>,
}

/// Webhook secret from a file or environment variable.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawWebhook {
    /// A file holding the secret.
    pub secret_file: Option<PathBuf>,
    /// An environment variable holding the secret.
    pub secret_env: Option<String>,
}

/// A cluster.
#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawCluster {
    /// Name.
    pub name: Option<String>,
    /// Kubeconfig path (default: in-cluster or `$KUBECONFIG`/`~/.kube/config`).
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    pub context: Option<String>,
    /// Labels, for topology policies' `clusterLabelSelector`.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
}

/// Sync policy.
#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RawSync {
    /// Delete objects that left Git (default true).
    pub prune: Option<bool>,
    /// Re-apply when someone changes a managed field (default true).
    pub self_heal: Option<bool>,
    /// How long a rollout batch may take to become ready before the rollout fails and is
    /// rolled back (default 10m; an Application can override it with the annotation
    /// `rollgit.dev/progress-deadline`).
    pub progress_deadline: Option<String>,
    /// Let a prune delete more than half of an app's objects, or all of them (default false:
    /// such a prune waits for `rollgit sync APP --allow-mass-prune`).
    pub allow_mass_prune: Option<bool>,
    /// Also prune objects rollgit adopted, that existed before it first applied them
    /// (default false).
    pub prune_adopted: Option<bool>,
    /// Create the namespaces an app's objects (and its status object) go to when they do not
    /// exist (default false, as Argo CD's `CreateNamespace=true`).
    pub create_namespace: Option<bool>,
    /// How many apps of one commit are applied at once (default 8; each applies up to 16
    /// objects at once).
    pub concurrent_apps: Option<usize>,
}

/// A secret value: never shown by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(v: String) -> Self {
        Self(v)
    }
    /// The value, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A validated repository.
#[derive(Debug, Clone)]
pub struct Repo {
    /// Name.
    pub name: String,
    /// URL or local path.
    pub url: String,
    /// Branch.
    pub branch: String,
    /// App directories or globs.
    pub paths: Vec<String>,
    /// Poll interval.
    pub interval: Duration,
    /// Default namespace.
    pub namespace: String,
    /// Index into `Config::clusters`.
    pub cluster: usize,
    /// Token or username/password.
    pub credentials: Option<(Option<String>, Secret)>,
    /// Webhook secret.
    pub webhook_secret: Option<Secret>,
    /// Prune.
    pub prune: bool,
    /// Self-heal.
    pub self_heal: bool,
    /// Let a prune delete more than half of an app's objects without confirmation.
    pub allow_mass_prune: bool,
    /// Prune objects rollgit adopted too.
    pub prune_adopted: bool,
    /// Create missing target namespaces.
    pub create_namespace: bool,
    /// Apps of one commit applied at once (at least 1).
    pub concurrent_apps: usize,
    /// Default progress deadline of a rollout batch.
    pub progress_deadline: Duration,
    /// Record rollbacks as revert commits.
    pub revert_rollbacks: bool,
    /// Commit decided revisions back to Git.
    pub write_back_bumps: bool,
    /// Author, committer and signing key of rollgit's commits.
    pub identity: rollgit_source::write::Identity,
    /// Who runs the Argo Rollouts (`rolloutControllers.argo`).
    pub argo_controller: ArgoController,
    /// What the repository may apply.
    pub allow: Allow,
    /// The ServiceAccount (of `namespace`) rollgit impersonates when applying.
    pub service_account: Option<String>,
}

/// A repository's allowed objects, resolved (the default allows everything).
#[derive(Debug, Clone, Default)]
pub struct Allow {
    /// Namespace globs (`None`: any namespace).
    pub namespaces: Option<Vec<rollgit_syntax::Glob>>,
    /// Cluster-scoped kinds (`None`: any; `Some(empty)`: none).
    pub cluster_scoped: Option<Vec<String>>,
    /// Kind globs, matched against `Kind` and `group/Kind` (`None`: any).
    pub kinds: Option<Vec<rollgit_syntax::Glob>>,
}

impl Allow {
    /// Whether every rule is open (no lock-down).
    pub fn is_open(&self) -> bool {
        self.namespaces.is_none() && self.cluster_scoped.is_none() && self.kinds.is_none()
    }

    /// The namespaces this repository can only ever write to, when its rules name them all
    /// without wildcards and allow nothing cluster-scoped.
    pub fn exact_namespaces(&self) -> Option<Vec<String>> {
        if self.cluster_scoped.as_ref().is_none_or(|k| !k.is_empty()) {
            return None;
        }
        let globs = self.namespaces.as_ref()?;
        globs
            .iter()
            .map(|g| {
                (!rollgit_syntax::glob::has_wildcard(g.as_str())).then(|| g.as_str().to_string())
            })
            .collect()
    }
}

pub use crate::k8s::scope::WatchScope;

/// Leader election, resolved.
#[derive(Debug, Clone)]
pub struct LeaderElection {
    /// The Leases' namespace.
    pub namespace: String,
    /// The Leases' name prefix.
    pub lease_name: String,
    /// Validity of a Lease after its last renewal.
    pub lease_duration: Duration,
    /// How long a holder may fail to renew before it stops writing (< `lease_duration`).
    pub renew_deadline: Duration,
    /// This replica's identity.
    pub identity: String,
}

/// A validated cluster.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Name.
    pub name: String,
    /// Kubeconfig path, if not inferred.
    pub kubeconfig: Option<PathBuf>,
    /// Context.
    pub context: Option<String>,
    /// Labels (topology policies select clusters by them).
    pub labels: std::collections::BTreeMap<String, String>,
}

impl Repo {
    /// The source stage's view of this repository (with its credentials).
    pub fn source_spec(&self) -> rollgit_source::RepoSpec {
        let mut spec = rollgit_source::RepoSpec::new(self.url.clone(), self.branch.clone());
        spec.credentials = self.credentials.as_ref().map(|(user, secret)| match user {
            Some(u) => rollgit_source::Credentials::UserPassword {
                username: u.clone(),
                password: secret.expose().to_string(),
            },
            None => rollgit_source::Credentials::Token(secret.expose().to_string()),
        });
        spec
    }
}

impl Config {
    /// The clusters as topology policies see them.
    pub fn fleet(&self) -> Vec<rollgit_render::workflow::FleetCluster> {
        self.clusters
            .iter()
            .map(|c| rollgit_render::workflow::FleetCluster {
                name: c.name.clone(),
                labels: c.labels.clone(),
            })
            .collect()
    }
}

impl Cluster {
    /// A client for this cluster.
    pub async fn client(&self) -> Result<kube::Client, crate::k8s::ClientError> {
        crate::k8s::client_for(
            &self.name,
            self.kubeconfig.as_deref(),
            self.context.as_deref(),
        )
        .await
    }

    /// A client for this cluster that impersonates the ServiceAccount `namespace/name` (as
    /// `kubectl --as=system:serviceaccount:NS:NAME` with its groups): rollgit's identity needs
    /// the right to `impersonate` it.
    pub async fn client_as(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<kube::Client, crate::k8s::ClientError> {
        crate::k8s::client_impersonating(
            &self.name,
            self.kubeconfig.as_deref(),
            self.context.as_deref(),
            Some(crate::k8s::Impersonate::service_account(namespace, name)),
        )
        .await
    }
}

/// The resolved configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Repositories.
    pub repos: Vec<Repo>,
    /// Clusters.
    pub clusters: Vec<Cluster>,
    /// Webhook/metrics server address.
    pub listen: Option<SocketAddr>,
    /// State directory.
    pub state_dir: PathBuf,
    /// Who runs the rollouts of upstream formats.
    pub rollout_controllers: RolloutControllers,
    /// Install rollgit's CRDs (else only check them).
    pub install_crds: bool,
    /// The namespaces rollgit watches.
    pub watch: WatchScope,
    /// Number of shards repositories are split into (at least 1).
    pub shards: u32,
    /// Leader election (`None`: this process writes everything, as a single replica).
    pub leader_election: Option<LeaderElection>,
}

impl Config {
    /// The shard of repository `name` among `shards`: a stable hash (the first 8 bytes of its
    /// SHA-256), the same in every replica and release.
    pub fn shard_of(name: &str, shards: u32) -> u32 {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(name.as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(&digest[..8]);
        (u64::from_be_bytes(first) % u64::from(shards.max(1))) as u32
    }

    /// This configuration limited to the repositories of `shard`.
    pub fn for_shard(&self, shard: u32) -> Config {
        let mut c = self.clone();
        c.repos
            .retain(|r| Self::shard_of(&r.name, self.shards) == shard);
        c
    }
}

pub use rollgit_syntax::parse_duration;

/// The default progress deadline of a rollout batch.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);

/// Apps of one commit applied at once by default. kube-rs puts no bound on a client's
/// requests (no QPS limit, no cap on connections or requests in flight), so the bound is
/// rollgit's: 8 apps × 16 objects each ([`crate::apply::DEFAULT_CONCURRENCY`]) = at most 128
/// requests in flight, below kube-apiserver's default of 200 mutating requests in flight
/// (`--max-mutating-requests-inflight`).
pub const DEFAULT_CONCURRENT_APPS: usize = 8;
/// The default poll interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(30);
/// The default state directory.
pub const DEFAULT_STATE_DIR: &str = ".rollgit";

/// What the command line says where `rollgit.yaml` is not used: one repository and one
/// cluster. [`Flags::resolve`] validates it exactly as a configuration file.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// The repository's name (default: the last segment of its URL).
    pub repo_name: Option<String>,
    /// Repository URL or local path.
    pub repo: Option<String>,
    /// Branch.
    pub branch: Option<String>,
    /// App directories or globs.
    pub paths: Vec<String>,
    /// Poll interval.
    pub interval: Option<String>,
    /// Default namespace.
    pub namespace: Option<String>,
    /// Progress deadline of a rollout batch.
    pub progress_deadline: Option<String>,
    /// Kubeconfig of the cluster.
    pub kubeconfig: Option<PathBuf>,
    /// Context in the kubeconfig.
    pub context: Option<String>,
    /// Address of the webhook/metrics server.
    pub listen: Option<String>,
    /// State directory.
    pub state_dir: Option<PathBuf>,
    /// Create missing target namespaces.
    pub create_namespace: bool,
    /// `--install-crds`.
    pub install_crds: Option<bool>,
    /// `--watch-namespaces`.
    pub watch_namespaces: Option<Vec<String>>,
    /// `--leader-elect`, with `--shards` and the Leases' namespace.
    pub leader_election: Option<RawLeaderElection>,
}

impl Flags {
    /// The configuration these flags describe (errors name the flag's field as `flags:
    /// repos[0].interval: ...`).
    pub fn resolve(self) -> Result<Config, ConfigError> {
        RawConfig {
            repos: vec![RawRepo {
                name: self.repo_name,
                url: self.repo,
                branch: self.branch,
                paths: self.paths,
                interval: self.interval,
                namespace: self.namespace,
                ..Default::default()
            }],
            clusters: vec![RawCluster {
                name: Some("default".into()),
                kubeconfig: self.kubeconfig,
                context: self.context,
                labels: Default::default(),
            }],
            sync: RawSync {
                progress_deadline: self.progress_deadline,
                create_namespace: self.create_namespace.then_some(true),
                ..Default::default()
            },
            listen: self.listen,
            state_dir: self.state_dir,
            rollout_controllers: RawRolloutControllers::default(),
            install_crds: self.install_crds,
            watch_namespaces: self.watch_namespaces,
            leader_election: self.leader_election,
        }
        .resolve("flags")
    }
}

fn read_secret_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_string())
        .map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn read_secret_env(var: &str) -> Result<String, String> {
    std::env::var(var).map_err(|_| format!("environment variable {var} is not set"))
}

/// The default name of a repository: the last segment of its URL or path without `.git`,
/// made a DNS-1123 label (lower case; any other character becomes `-`; at most 63), `repo`
/// when nothing is left.
fn repo_name(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo");
    let name: String = last
        .trim_end_matches(".git")
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    let name: String = name.trim_matches('-').chars().take(63).collect();
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        "repo".into()
    } else {
        name.to_string()
    }
}

impl RawConfig {
    /// Reads and parses a config file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        serde_saphyr::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// Validates into a [`Config`]. `origin` names the source in errors (a path or `flags`).
    pub fn resolve(self, origin: &str) -> Result<Config, ConfigError> {
        let invalid = |field: String, message: String| ConfigError::Invalid {
            path: origin.to_string(),
            field,
            message,
        };
        let argo_controller = match self.rollout_controllers.argo.as_ref() {
            None => ArgoController::Auto,
            Some(v) => ArgoController::parse(v).ok_or_else(|| {
                invalid(
                    "rolloutControllers.argo".into(),
                    format!("{v:?} must be auto, rollgit or external"),
                )
            })?,
        };
        let mut clusters = Vec::new();
        for (i, c) in self.clusters.into_iter().enumerate() {
            let name = c.name.unwrap_or_else(|| format!("cluster-{i}"));
            if clusters.iter().any(|x: &Cluster| x.name == name) {
                return Err(invalid(
                    format!("clusters[{i}].name"),
                    format!("duplicate cluster name {name:?}"),
                ));
            }
            if let Some(k) = &c.kubeconfig
                && !k.exists()
            {
                return Err(invalid(
                    format!("clusters[{i}].kubeconfig"),
                    format!("{} does not exist", k.display()),
                ));
            }
            for (k, v) in &c.labels {
                if !rollgit_syntax::is_qualified_name(k) || !rollgit_syntax::is_label_value(v) {
                    return Err(invalid(
                        format!("clusters[{i}].labels.{k}"),
                        format!(
                            "{k:?}: {v:?} is not a valid label (a qualified name and a label value)"
                        ),
                    ));
                }
            }
            clusters.push(Cluster {
                name,
                kubeconfig: c.kubeconfig,
                context: c.context,
                labels: c.labels,
            });
        }
        if clusters.is_empty() {
            clusters.push(Cluster {
                name: "default".into(),
                kubeconfig: None,
                context: None,
                labels: Default::default(),
            });
        }
        if self.repos.is_empty() {
            return Err(invalid(
                "repos".into(),
                "at least one repository is required".into(),
            ));
        }
        let mut repos = Vec::new();
        for (i, r) in self.repos.into_iter().enumerate() {
            let f = |name: &str| format!("repos[{i}].{name}");
            let url = r
                .url
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| invalid(f("url"), "required".into()))?;
            // A relative local path (`--repo .`) is made absolute, so that the daemon, its
            // file-system watch and the status objects all name the same directory.
            let url = if rollgit_source::RepoSpec::new(url.as_str(), "main").is_local_path()
                && !Path::new(&url).is_absolute()
            {
                std::fs::canonicalize(&url)
                    .map(|p| p.display().to_string())
                    .unwrap_or(url)
            } else {
                url
            };
            let name = r.name.unwrap_or_else(|| repo_name(&url));
            if !rollgit_syntax::is_dns1123_label(&name) {
                return Err(invalid(
                    f("name"),
                    format!("{name:?} must be a DNS-1123 label (lower-case letters, digits, '-')"),
                ));
            }
            if repos.iter().any(|x: &Repo| x.name == name) {
                return Err(invalid(
                    f("name"),
                    format!("duplicate repository name {name:?}"),
                ));
            }
            let interval = match r.interval {
                Some(s) => parse_duration(&s).map_err(|m| invalid(f("interval"), m))?,
                None => DEFAULT_INTERVAL,
            };
            if interval < Duration::from_millis(100) {
                return Err(invalid(f("interval"), "must be at least 100ms".into()));
            }
            let namespace = r.namespace.unwrap_or_else(|| "default".into());
            if !rollgit_syntax::is_dns1123_label(&namespace) {
                return Err(invalid(
                    f("namespace"),
                    format!("{namespace:?} is not a valid namespace name"),
                ));
            }
            let cluster = match &r.cluster {
                Some(c) => clusters
                    .iter()
                    .position(|x| &x.name == c)
                    .ok_or_else(|| invalid(f("cluster"), format!("no cluster named {c:?}")))?,
                None => 0,
            };
            let credentials = match r.credentials {
                None => None,
                Some(c) => {
                    let secret = match (
                        &c.token_file,
                        &c.token_env,
                        &c.password_env,
                        &c.password_file,
                    ) {
                        (Some(p), None, None, None) => read_secret_file(p),
                        (None, Some(v), None, None) => read_secret_env(v),
                        (None, None, Some(v), None) => read_secret_env(v),
                        (None, None, None, Some(p)) => read_secret_file(p),
                        _ => Err(
                            "give exactly one of tokenFile, tokenEnv, passwordEnv, passwordFile"
                                .into(),
                        ),
                    }
                    .map_err(|m| invalid(f("credentials"), m))?;
                    if (c.password_env.is_some() || c.password_file.is_some())
                        && c.username.is_none()
                    {
                        return Err(invalid(
                            f("credentials.username"),
                            "required with a password".into(),
                        ));
                    }
                    Some((c.username, Secret::new(secret)))
                }
            };
            let webhook_secret = match r.webhook {
                None => None,
                Some(w) => Some(Secret::new(
                    match (&w.secret_file, &w.secret_env) {
                        (Some(p), None) => read_secret_file(p),
                        (None, Some(v)) => read_secret_env(v),
                        _ => Err("give exactly one of secretFile, secretEnv".into()),
                    }
                    .map_err(|m| invalid(f("webhook"), m))?,
                )),
            };
            let write_back = r.write_back.clone().unwrap_or_default();
            let r_has_sync = r.sync.is_some();
            let sync = r.sync.unwrap_or_else(|| self.sync.clone());
            let deadline_field = if sync.progress_deadline.is_some() && r_has_sync {
                f("sync.progressDeadline")
            } else {
                "sync.progressDeadline".to_string()
            };
            let progress_deadline = match sync
                .progress_deadline
                .as_ref()
                .or(self.sync.progress_deadline.as_ref())
            {
                None => DEFAULT_PROGRESS_DEADLINE,
                Some(d) => match parse_duration(d) {
                    Ok(d) if d >= Duration::from_secs(1) => d,
                    Ok(_) => {
                        return Err(invalid(deadline_field, format!("{d:?} is shorter than 1s")));
                    }
                    Err(m) => return Err(invalid(deadline_field, m)),
                },
            };
            let allow = resolve_allow(r.allow.as_ref()).map_err(|(k, m)| invalid(f(&k), m))?;
            if let Some(sa) = &r.service_account_name
                && !rollgit_syntax::is_dns1123_subdomain(sa)
            {
                return Err(invalid(
                    f("serviceAccountName"),
                    format!("{sa:?} is not a valid ServiceAccount name"),
                ));
            }
            let paths = if r.paths.is_empty() {
                vec![String::new()]
            } else {
                r.paths
            };
            repos.push(Repo {
                name,
                url,
                branch: r.branch.unwrap_or_else(|| "main".into()),
                paths,
                interval,
                namespace,
                cluster,
                credentials,
                webhook_secret,
                prune: sync.prune.or(self.sync.prune).unwrap_or(true),
                self_heal: sync.self_heal.or(self.sync.self_heal).unwrap_or(true),
                allow_mass_prune: sync
                    .allow_mass_prune
                    .or(self.sync.allow_mass_prune)
                    .unwrap_or(false),
                prune_adopted: sync
                    .prune_adopted
                    .or(self.sync.prune_adopted)
                    .unwrap_or(false),
                create_namespace: sync
                    .create_namespace
                    .or(self.sync.create_namespace)
                    .unwrap_or(false),
                concurrent_apps: match sync.concurrent_apps.or(self.sync.concurrent_apps) {
                    None => DEFAULT_CONCURRENT_APPS,
                    Some(0) => {
                        return Err(invalid(
                            "sync.concurrentApps".into(),
                            "must be at least 1".into(),
                        ));
                    }
                    Some(n) => n,
                },
                progress_deadline,
                revert_rollbacks: write_back.revert_rollbacks.unwrap_or(true),
                write_back_bumps: write_back.bumps.unwrap_or(false),
                identity: rollgit_source::write::Identity {
                    name: write_back.author_name.unwrap_or_else(|| "rollgit".into()),
                    email: write_back
                        .author_email
                        .unwrap_or_else(|| "rollgit@localhost".into()),
                    signing_key: write_back.signing_key,
                },
                argo_controller,
                allow,
                service_account: r.service_account_name,
            });
        }
        let listen = match self.listen {
            Some(l) => Some(
                l.parse()
                    .map_err(|e| invalid("listen".into(), format!("{l:?}: {e}")))?,
            ),
            None => None,
        };
        let kruise = match self.rollout_controllers.kruise.as_deref() {
            None => RolloutController::Detect,
            Some(v) => RolloutController::parse(v).ok_or_else(|| {
                invalid(
                    "rolloutControllers.kruise".into(),
                    format!("{v:?} must be auto, rollgit or external"),
                )
            })?,
        };
        let watch = match self.watch_namespaces {
            Some(list) if !list.is_empty() => {
                for (i, ns) in list.iter().enumerate() {
                    if !rollgit_syntax::is_dns1123_label(ns) {
                        return Err(invalid(
                            format!("watchNamespaces[{i}]"),
                            format!("{ns:?} is not a valid namespace name"),
                        ));
                    }
                }
                let set: std::collections::BTreeSet<String> = list.into_iter().collect();
                if let Some(r) = repos.iter().find(|r| !set.contains(&r.namespace)) {
                    return Err(invalid(
                        "watchNamespaces".into(),
                        format!(
                            "repository {:?} keeps its status in namespace {:?}, which is not watched",
                            r.name, r.namespace
                        ),
                    ));
                }
                WatchScope::Namespaces(set)
            }
            _ => derive_watch_scope(&repos),
        };
        let mut shards = 1;
        let leader_election = match self.leader_election {
            Some(le) if le.enabled != Some(false) => {
                let field = |k: &str| format!("leaderElection.{k}");
                let dur = |k: &str, v: &Option<String>, default: Duration| match v {
                    None => Ok(default),
                    Some(s) => parse_duration(s).map_err(|m| invalid(field(k), m)),
                };
                let lease_duration =
                    dur("leaseDuration", &le.lease_duration, Duration::from_secs(10))?;
                let renew_deadline =
                    dur("renewDeadline", &le.renew_deadline, Duration::from_secs(7))?;
                if lease_duration < Duration::from_secs(2) {
                    return Err(invalid(
                        field("leaseDuration"),
                        "must be at least 2s".into(),
                    ));
                }
                if renew_deadline >= lease_duration || renew_deadline < Duration::from_secs(1) {
                    return Err(invalid(
                        field("renewDeadline"),
                        "must be at least 1s and shorter than leaseDuration (a holder that cannot renew stops writing before another may take its Lease)".into(),
                    ));
                }
                shards = le.shards.unwrap_or(1);
                if shards == 0 || shards > 1024 {
                    return Err(invalid(
                        field("shards"),
                        "must be between 1 and 1024".into(),
                    ));
                }
                let namespace = le
                    .namespace
                    .or_else(|| std::env::var("POD_NAMESPACE").ok())
                    .unwrap_or_else(|| "default".into());
                if !rollgit_syntax::is_dns1123_label(&namespace) {
                    return Err(invalid(
                        field("namespace"),
                        format!("{namespace:?} is not a valid namespace name"),
                    ));
                }
                let lease_name = le.lease_name.unwrap_or_else(|| "rollgit".into());
                if !rollgit_syntax::is_dns1123_label(&lease_name) {
                    return Err(invalid(
                        field("leaseName"),
                        format!("{lease_name:?} must be a DNS-1123 label"),
                    ));
                }
                let identity = le.identity.unwrap_or_else(default_identity);
                Some(LeaderElection {
                    namespace,
                    lease_name,
                    lease_duration,
                    renew_deadline,
                    identity,
                })
            }
            _ => None,
        };
        Ok(Config {
            install_crds: self.install_crds.unwrap_or(true),
            watch,
            shards,
            leader_election,
            rollout_controllers: RolloutControllers {
                argo: argo_controller,
                kruise,
            },
            repos,
            clusters,
            listen,
            state_dir: self
                .state_dir
                .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR)),
        })
    }
}

/// A replica's default identity in the Leases: the host name (the pod's name in a cluster)
/// and a random suffix, so that a restarted process is a new holder.
fn default_identity() -> String {
    let host = std::env::var("POD_NAME")
        .or_else(|_| std::env::var("HOSTNAME"))
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "rollgit".into());
    let suffix = uuid_suffix();
    format!("{host}-{suffix}")
}

fn uuid_suffix() -> String {
    use sha2::Digest;
    let seed = format!("{}-{:?}", std::process::id(), std::time::SystemTime::now());
    hex_prefix(&sha2::Sha256::digest(seed.as_bytes()))
}

fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(4).map(|b| format!("{b:02x}")).collect()
}

/// The namespaces every repository can only ever write to (see [`Allow::exact_namespaces`]),
/// with their status namespaces: then a Role per namespace suffices. Otherwise the cluster.
fn derive_watch_scope(repos: &[Repo]) -> WatchScope {
    let mut set = std::collections::BTreeSet::new();
    for r in repos {
        match r.allow.exact_namespaces() {
            Some(list) => set.extend(list),
            None => return WatchScope::Cluster,
        }
        set.insert(r.namespace.clone());
    }
    WatchScope::Namespaces(set)
}

/// Resolves `allow`; an error is `(field under the repository, message)`.
pub(crate) fn resolve_allow(raw: Option<&RawAllow>) -> Result<Allow, (String, String)> {
    let Some(raw) = raw else {
        return Ok(Allow::default());
    };
    let globs = |field: &str, list: &Option<Vec<String>>| -> Result<_, (String, String)> {
        list.as_ref()
            .map(|l| {
                l.iter()
                    .enumerate()
                    .map(|(i, p)| {
                        rollgit_syntax::Glob::text(p)
                            .map_err(|e| (format!("allow.{field}[{i}]"), e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()
    };
    let namespaces = globs("namespaces", &raw.namespaces)?;
    let kinds = globs("kinds", &raw.kinds)?;
    let cluster_scoped = match &raw.cluster_scoped {
        None | Some(ClusterScopedRaw::All(false)) => Some(Vec::new()),
        Some(ClusterScopedRaw::All(true)) => None,
        Some(ClusterScopedRaw::Kinds(k)) => Some(k.clone()),
    };
    Ok(Allow {
        namespaces,
        cluster_scoped,
        kinds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(yaml: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = serde_saphyr::from_str(yaml).map_err(|e| ConfigError::Parse {
            path: "t.yaml".into(),
            message: e.to_string(),
        })?;
        raw.resolve("t.yaml")
    }

    #[test]
    fn invalid_configs_name_the_field() {
        let cases = [
            (
                "no repos",
                "repos: []",
                "t.yaml: repos: at least one repository is required",
            ),
            (
                "missing url",
                "repos: [{name: a}]",
                "t.yaml: repos[0].url: required",
            ),
            (
                "bad interval",
                "repos: [{url: /x, interval: soon}]",
                "t.yaml: repos[0].interval: invalid duration",
            ),
            (
                "unknown cluster",
                "repos: [{url: /x, cluster: prod}]",
                "t.yaml: repos[0].cluster: no cluster named \"prod\"",
            ),
            (
                "bad namespace",
                "repos: [{url: /x, namespace: Bad_NS}]",
                "t.yaml: repos[0].namespace:",
            ),
            (
                "duplicate names",
                "repos: [{url: /a/x}, {url: /b/x}]",
                "t.yaml: repos[1].name: duplicate repository name \"x\"",
            ),
            (
                "two secrets",
                "repos: [{url: /x, webhook: {secretEnv: A, secretFile: /f}}]",
                "t.yaml: repos[0].webhook: give exactly one",
            ),
            (
                "bad listen",
                "listen: nowhere\nrepos: [{url: /x}]",
                "t.yaml: listen:",
            ),
            (
                "bad global progress deadline",
                "sync: {progressDeadline: soon}\nrepos: [{url: /x}]",
                "t.yaml: sync.progressDeadline: invalid duration",
            ),
            (
                "repo progress deadline under a second",
                "repos: [{url: /x, sync: {progressDeadline: 10ms}}]",
                "t.yaml: repos[0].sync.progressDeadline: \"10ms\" is shorter than 1s",
            ),
            (
                "unknown Argo controller",
                "rolloutControllers: {argo: argo}\nrepos: [{url: /x}]",
                "t.yaml: rolloutControllers.argo: \"argo\" must be auto, rollgit or external",
            ),
            (
                "unknown Kruise controller",
                "rolloutControllers: {kruise: kruise}\nrepos: [{url: /x}]",
                "t.yaml: rolloutControllers.kruise: \"kruise\" must be auto, rollgit or external",
            ),
            (
                "renew deadline not shorter than the lease",
                "leaderElection: {leaseDuration: 10s, renewDeadline: 10s}\nrepos: [{url: /x}]",
                "t.yaml: leaderElection.renewDeadline: must be at least 1s and shorter than leaseDuration",
            ),
            (
                "no shards",
                "leaderElection: {shards: 0}\nrepos: [{url: /x}]",
                "t.yaml: leaderElection.shards: must be between 1 and 1024",
            ),
            (
                "status namespace not watched",
                "watchNamespaces: [team-a]\nrepos: [{url: /x, namespace: team-b}]",
                "t.yaml: watchNamespaces: repository \"x\" keeps its status in namespace \"team-b\", which is not watched",
            ),
            (
                "bad ServiceAccount name",
                "repos: [{url: /x, serviceAccountName: Bad_SA}]",
                "t.yaml: repos[0].serviceAccountName: \"Bad_SA\" is not a valid ServiceAccount name",
            ),
            (
                "bad namespace glob",
                "repos: [{url: /x, allow: {namespaces: ['team-[a']}}]",
                "t.yaml: repos[0].allow.namespaces[0]:",
            ),
        ];
        for (name, yaml, want) in cases {
            let err = resolve(yaml).expect_err(name).to_string();
            assert!(err.starts_with(want), "{name}: {err}");
        }
    }

    #[test]
    fn watched_namespaces_are_derived_from_exact_allow_rules_only() {
        let c = resolve(
            "repos: [{url: /a, namespace: team-a, allow: {namespaces: [team-a, team-a-jobs]}}, \
             {url: /b, namespace: team-b, allow: {namespaces: [team-b], clusterScoped: false}}]",
        )
        .expect("valid");
        assert_eq!(
            c.watch.namespaces(),
            Some(vec!["team-a".into(), "team-a-jobs".into(), "team-b".into()])
        );
        let cases = [
            (
                "a glob",
                "repos: [{url: /a, allow: {namespaces: [team-*]}}]",
            ),
            (
                "no allow",
                "repos: [{url: /a}, {url: /b, allow: {namespaces: [b]}}]",
            ),
            (
                "cluster-scoped kinds allowed",
                "repos: [{url: /a, allow: {namespaces: [a], clusterScoped: [Namespace]}}]",
            ),
        ];
        for (name, yaml) in cases {
            assert_eq!(
                resolve(yaml).expect(name).watch,
                WatchScope::Cluster,
                "{name}"
            );
        }
    }

    #[test]
    fn shards_are_a_stable_hash_of_the_name() {
        // Fixed values: a release that moved repositories between shards would make two
        // replicas of different versions write the same repository.
        let got: Vec<u32> = ["platform", "team-a", "team-b", "repo-0"]
            .iter()
            .map(|n| Config::shard_of(n, 6))
            .collect();
        assert_eq!(got, [3, 0, 2, 5]);
        assert_eq!(Config::shard_of("anything", 1), 0);
        let spread: std::collections::BTreeSet<u32> = (0..60)
            .map(|i| Config::shard_of(&format!("repo-{i}"), 6))
            .collect();
        assert_eq!(spread.len(), 6, "60 names reach every one of 6 shards");
    }

    #[test]
    fn unknown_field_is_a_parse_error_naming_it() {
        let err = resolve("repos: [{url: /x, brnach: main}]")
            .expect_err("typo")
            .to_string();
        assert!(err.contains("brnach"), "{err}");
    }

    #[test]
    fn defaults_are_filled() {
        let c = resolve("repos: [{url: 'https://example.com/org/deploy.git'}]").expect("valid");
        let r = &c.repos[0];
        assert_eq!(r.name, "deploy");
        assert_eq!(r.branch, "main");
        assert_eq!(r.interval, Duration::from_secs(30));
        assert_eq!(r.namespace, "default");
        assert!(r.prune && r.self_heal);
        assert_eq!(c.clusters.len(), 1);
        assert_eq!(c.rollout_controllers.argo, ArgoController::Auto);
        assert_eq!(c.rollout_controllers.kruise, RolloutController::Detect);
        let c = resolve("rolloutControllers: {argo: external}\nrepos: [{url: /x}]").expect("valid");
        assert_eq!(c.repos[0].argo_controller, ArgoController::External);
        assert_eq!(c.rollout_controllers.argo, ArgoController::External);
        let c =
            resolve("rolloutControllers: {kruise: external}\nrepos: [{url: /x}]").expect("valid");
        assert_eq!(c.rollout_controllers.kruise, RolloutController::External);
    }

    #[test]
    fn default_repository_names_are_dns_labels() {
        let table = [
            ("https://example.com/org/deploy.git", "deploy"),
            ("git@github.com:org/Deploy_Repo.git", "deploy-repo"),
            ("/srv/git/My.Apps/", "my-apps"),
            ("/", "repo"),
            ("..", "repo"),
            (&*format!("/x/{}", "a".repeat(70)), &*"a".repeat(63)),
        ];
        for (url, want) in table {
            let got = super::repo_name(url);
            assert_eq!(got, want, "{url}");
            assert!(rollgit_syntax::is_dns1123_label(&got), "{url}: {got}");
        }
    }

    #[test]
    fn a_relative_local_path_is_made_absolute_and_named_after_its_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let repo = dir.path().join("Team_Deploy");
        std::fs::create_dir(&repo).expect("mkdir");
        // `--repo .` run from inside the repository.
        let rel = pathdiff(&repo);
        let c = resolve(&format!("repos: [{{url: '{rel}'}}]")).expect("valid");
        let canonical = std::fs::canonicalize(&repo).expect("canonical");
        assert_eq!(c.repos[0].url, canonical.display().to_string());
        assert_eq!(c.repos[0].name, "team-deploy");
    }

    /// `path` relative to the current directory (`../..` up to the root, then down).
    fn pathdiff(path: &Path) -> String {
        let cwd = std::env::current_dir().expect("cwd");
        let ups = cwd.components().count().saturating_sub(1);
        let mut s = "../".repeat(ups);
        s.push_str(path.display().to_string().trim_start_matches('/'));
        s
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("secret");
        std::fs::write(&file, "s3cr3t-value\n").expect("write");
        let c = resolve(&format!(
            "repos: [{{url: /x, webhook: {{secretFile: '{}'}}}}]",
            file.display()
        ))
        .expect("valid");
        let shown = format!("{c:?}");
        assert!(!shown.contains("s3cr3t-value"), "{shown}");
        assert_eq!(
            c.repos[0].webhook_secret.as_ref().map(Secret::expose),
            Some("s3cr3t-value")
        );
    }
}
