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
}

pub use rollgit_syntax::parse_duration;

/// The default progress deadline of a rollout batch.
pub const DEFAULT_PROGRESS_DEADLINE: Duration = Duration::from_secs(600);
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
            }],
            sync: RawSync {
                progress_deadline: self.progress_deadline,
                create_namespace: self.create_namespace.then_some(true),
                ..Default::default()
            },
            listen: self.listen,
            state_dir: self.state_dir,
            rollout_controllers: RawRolloutControllers::default(),
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

fn repo_name(url: &str) -> String {
    let last = url
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo");
    let name = last.trim_end_matches(".git");
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
            clusters.push(Cluster {
                name,
                kubeconfig: c.kubeconfig,
                context: c.context,
            });
        }
        if clusters.is_empty() {
            clusters.push(Cluster {
                name: "default".into(),
                kubeconfig: None,
                context: None,
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
        Ok(Config {
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
        ];
        for (name, yaml, want) in cases {
            let err = resolve(yaml).expect_err(name).to_string();
            assert!(err.starts_with(want), "{name}: {err}");
        }
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
