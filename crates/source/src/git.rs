//! Fetching repositories and reading commits with gix.

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;

use gix::bstr::{BStr, ByteSlice};
use sha2::{Digest, Sha256};

use crate::error::{RedactedError, SourceError};

pub use gix::ObjectId;

/// Credentials for `https://` remotes, already resolved by the daemon (from a file or an
/// environment variable). They are handed to gix's credential callback only, never to a URL,
/// a log line or an error message. `Debug` prints `<redacted>`.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A bearer-style access token (GitHub/Gitea personal access token, GitLab token). It is sent
    /// as the password of HTTP basic authentication with the username `x-access-token`, which
    /// GitHub, Gitea and GitLab all accept for tokens; use [`Credentials::UserPassword`] when a
    /// server needs a particular username (e.g. `oauth2` for GitLab OAuth tokens).
    Token(String),
    /// HTTP basic authentication.
    UserPassword { username: String, password: String },
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Token(_) => f.write_str("Token(<redacted>)"),
            Credentials::UserPassword { username, .. } => f
                .debug_struct("UserPassword")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
        }
    }
}

impl Credentials {
    pub(crate) fn username(&self) -> &str {
        match self {
            Credentials::Token(_) => "x-access-token",
            Credentials::UserPassword { username, .. } => username,
        }
    }
    pub(crate) fn password(&self) -> &str {
        match self {
            Credentials::Token(token) => token,
            Credentials::UserPassword { password, .. } => password,
        }
    }
}

/// What to follow: a repository and one of its branches. `Debug` shows the URL without
/// user-info and the credentials redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct RepoSpec {
    /// `https://…`, `http://…`, `ssh://…`, `user@host:path` (ssh, through the `ssh` binary),
    /// `git://…`, `file://…` (all fetched into a bare mirror), or a local repository path (a
    /// worktree or a bare repository, read in place, never fetched).
    pub url: String,
    /// The branch name, without `refs/heads/`.
    pub branch: String,
    /// Credentials for `https://` remotes. User-info embedded in the URL is used when this is
    /// `None`; it is stripped from the URL in any case.
    pub credentials: Option<Credentials>,
}

impl std::fmt::Debug for RepoSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RepoSpec")
            .field("url", &self.display_url())
            .field("branch", &self.branch)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl RepoSpec {
    /// A spec without credentials.
    pub fn new(url: impl Into<String>, branch: impl Into<String>) -> Self {
        RepoSpec {
            url: url.into(),
            branch: branch.into(),
            credentials: None,
        }
    }

    /// The URL with user-info removed, as used in logs and errors.
    pub fn display_url(&self) -> String {
        redact_url(&self.url)
    }

    /// `true` when the spec names a local repository path that is read in place.
    pub fn is_local_path(&self) -> bool {
        matches!(Location::parse(self), Ok(Location::Local(_)))
    }
}

/// The outcome of [`fetch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResult {
    /// The commit `refs/heads/<branch>` points to (peeled through annotated tags).
    pub head: ObjectId,
    /// `false` when `head` is the same commit the previous `fetch` of this spec with this cache
    /// directory saw (the remote's branch did not move): the daemon can skip render and apply.
    /// `true` on the first fetch.
    pub changed: bool,
    /// The repository to read commits from: the bare mirror, or the local path itself.
    pub git_dir: PathBuf,
    /// Whether a pack was downloaded. `false` for an unchanged remote (gix stopped after the
    /// ref advertisement) and always for local paths.
    pub received_pack: bool,
}

/// Remove the user-info (`user:password@`) of a URL, for logs and error messages.
///
/// Works on strings that are not valid URLs too, and leaves local paths and scp-like
/// `git@host:path` (whose user is not a secret) unchanged.
pub fn redact_url(url: &str) -> String {
    match split_userinfo(url) {
        Some((before, _, after)) => format!("{before}{after}"),
        None => url.to_owned(),
    }
}

/// A `scheme://userinfo@host…` URL cut around its user-info: `(before, userinfo, after)`, with
/// `before` = `scheme://` and `after` = `host…`. `None` without `://` (scp-like `user@host:path`,
/// local paths) or without user-info in the authority (an `@` later in the path does not count).
pub(crate) fn split_userinfo(url: &str) -> Option<(&str, &str, &str)> {
    let start = url.find("://")? + 3;
    let rest = &url[start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let at = rest[..authority_end].rfind('@')?;
    Some((&url[..start], &rest[..at], &rest[at + 1..]))
}

/// Where the bare mirror of `spec` lives under `cache_dir`: one directory per redacted URL
/// (`<sha256 prefix>-<last path segment>.git`), shared by all branches of that URL.
pub fn mirror_path(spec: &RepoSpec, cache_dir: &Path) -> PathBuf {
    let display = spec.display_url();
    let digest = Sha256::digest(display.as_bytes());
    let name: String = display
        .trim_end_matches('/')
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    cache_dir.join(format!("{}-{name}.git", hex::encode(&digest[..8])))
}

/// How a spec is reached.
pub(crate) enum Location {
    /// Read in place.
    Local(PathBuf),
    /// Fetched into a mirror. The URL has its user-info removed.
    Remote(gix::Url),
}

impl Location {
    pub(crate) fn parse(spec: &RepoSpec) -> Result<Location, SourceError> {
        let display = spec.display_url();
        let secrets = Secrets::of(spec);
        let url = gix::url::parse(spec.url.as_bytes().as_bstr()).map_err(|e| {
            SourceError::InvalidUrl {
                repo: display.clone(),
                source: RedactedError::new(&e, &secrets.pairs()),
            }
        })?;
        match url.scheme {
            gix::url::Scheme::File if !spec.url.starts_with("file://") => {
                Ok(Location::Local(PathBuf::from(&spec.url)))
            }
            gix::url::Scheme::File
            | gix::url::Scheme::Git
            | gix::url::Scheme::Ssh
            | gix::url::Scheme::Http
            | gix::url::Scheme::Https => {
                let mut url = url;
                if url.scheme == gix::url::Scheme::Http || url.scheme == gix::url::Scheme::Https {
                    url.user = None;
                    url.password = None;
                }
                Ok(Location::Remote(url))
            }
            other => Err(SourceError::InvalidUrl {
                repo: display,
                source: RedactedError::from_text(
                    format!("unsupported URL scheme {other:?}"),
                    &secrets.pairs(),
                ),
            }),
        }
    }
}

/// The values that must never appear in a message, with what replaces them.
pub(crate) struct Secrets {
    raw_url: String,
    display_url: String,
    values: Vec<String>,
}

impl Secrets {
    pub(crate) fn of(spec: &RepoSpec) -> Self {
        let mut values = Vec::new();
        if let Some(c) = &spec.credentials {
            values.push(c.password().to_owned());
        }
        // User-info embedded in the URL.
        if let Some((_, userinfo, _)) = split_userinfo(&spec.url) {
            values.push(userinfo.to_owned());
            if let Some((_, password)) = userinfo.split_once(':') {
                values.push(password.to_owned());
            }
        }
        Secrets {
            raw_url: spec.url.clone(),
            display_url: redact_url(&spec.url),
            values,
        }
    }

    pub(crate) fn pairs(&self) -> Vec<(&str, &str)> {
        let mut pairs = vec![(self.raw_url.as_str(), self.display_url.as_str())];
        pairs.extend(self.values.iter().map(|v| (v.as_str(), "<redacted>")));
        pairs
    }

    /// The credentials embedded in an `https://user:password@host` URL.
    pub(crate) fn embedded(spec: &RepoSpec) -> Option<Credentials> {
        let url = gix::url::parse(spec.url.as_bytes().as_bstr()).ok()?;
        match (url.user, url.password) {
            (Some(username), Some(password)) => {
                Some(Credentials::UserPassword { username, password })
            }
            (Some(token), None) if matches!(url.scheme, gix::url::Scheme::Https) => {
                Some(Credentials::Token(token))
            }
            _ => None,
        }
    }
}

/// Classify a gix error from a network operation: `true` when a retry with backoff may succeed.
fn is_transient_network_error(err: &gix::Error) -> bool {
    let chain = || {
        let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
        std::iter::from_fn(move || {
            let e = cur?;
            cur = e.source();
            Some(e)
        })
    };
    // gix maps ssh's "connect to host …: Connection refused / No route to host / timed out" to
    // `NotFound` to mark it permanent for interactive use; for a daemon an unreachable server
    // is an outage to wait out, like an HTTP connection error.
    let ssh_unreachable = chain().any(|e| {
        e.downcast_ref::<std::io::Error>().is_some_and(|io| {
            let text = io.to_string();
            text.contains("connect to host")
                || text.contains("Connection closed by")
                || text.contains("Could not resolve hostname")
        })
    });
    if ssh_unreachable {
        return true;
    }
    // Credentials refused locally (e.g. over plain http) or unsupported: a configuration error.
    let auth_config_error = chain().any(|e| {
        matches!(
            e.downcast_ref::<gix::protocol::transport::client::Error>(),
            Some(
                gix::protocol::transport::client::Error::AuthenticationRefused(_)
                    | gix::protocol::transport::client::Error::AuthenticationUnsupported
            )
        )
    });
    if auth_config_error {
        return false;
    }
    if err.is_unauthenticated()
        || err.is_permission_denied()
        || err.is_validation()
        || err.is_unsupported()
        || err.is_not_found()
        || err.is_corrupted()
    {
        return false;
    }
    if err.is_retryable() {
        return true;
    }
    if let Some(io) = chain().find_map(|e| e.downcast_ref::<std::io::Error>()) {
        use std::io::ErrorKind::*;
        return !matches!(
            io.kind(),
            NotFound | PermissionDenied | InvalidInput | InvalidData | Unsupported
        );
    }
    // Anything else on the wire (server hung up, HTTP 5xx, protocol hiccup) is worth a retry
    // with backoff; the daemon caps the backoff.
    true
}

/// Fetch `spec` and resolve its branch.
///
/// * Remote URL: the first call creates a bare mirror at [`mirror_path`] and fetches
///   `refs/heads/<branch>` into `refs/remotes/origin/<branch>` (no tags, nothing else); later
///   calls fetch into the same mirror. When the remote branch has not moved, gix stops after
///   listing the remote refs: no negotiation, no pack, no ref write.
/// * Local repository path: nothing is fetched; the branch is resolved in place, and the last
///   seen head is remembered in a small file under `cache_dir` to compute `changed`.
///
/// Blocking: call it from `spawn_blocking`. Two concurrent fetches of the same mirror may fail
/// with a transient lock error; the daemon's [`crate::Trigger`] serialises fetches per repository.
pub fn fetch(spec: &RepoSpec, cache_dir: &Path) -> Result<FetchResult, SourceError> {
    match Location::parse(spec)? {
        Location::Local(path) => fetch_local(spec, &path, cache_dir),
        Location::Remote(url) => {
            let tracking = format!("refs/remotes/origin/{}", spec.branch);
            fetch_remote(spec, url, cache_dir, &tracking)
        }
    }
}

/// Fetch `spec` for a write ([`crate::write`]) or a command-line tool reading the branch's
/// history, and resolve its branch, without disturbing what [`fetch`] reports: a remote's
/// branch is fetched into the mirror's `refs/rollgit/write/<branch>` instead of
/// `refs/remotes/origin/<branch>` (the objects are shared, so the daemon's next [`fetch`] still
/// reports the remote's new commits as `changed` and downloads almost nothing), and a local
/// repository's branch is resolved in place without touching the last-seen-head file.
/// [`Repo::open`] then reads the fetched commits.
pub fn fetch_for_write(spec: &RepoSpec, cache_dir: &Path) -> Result<FetchResult, SourceError> {
    match Location::parse(spec)? {
        Location::Local(path) => {
            let repo = Repo::open_local(spec, &path)?;
            let head = repo.resolve_branch(&spec.branch)?;
            Ok(FetchResult {
                head,
                changed: true,
                git_dir: repo.git_dir(),
                received_pack: false,
            })
        }
        Location::Remote(url) => {
            let tracking = format!("refs/rollgit/write/{}", spec.branch);
            fetch_remote(spec, url, cache_dir, &tracking)
        }
    }
}

fn fetch_local(spec: &RepoSpec, path: &Path, cache_dir: &Path) -> Result<FetchResult, SourceError> {
    let repo = Repo::open_local(spec, path)?;
    let head = repo.resolve_branch(&spec.branch)?;
    let state = cache_dir.join(format!(
        "local-{}.head",
        hex::encode(&Sha256::digest(spec.display_url().as_bytes())[..8])
    ));
    let previous = match std::fs::read_to_string(&state) {
        Ok(text) => ObjectId::from_hex(text.trim().as_bytes()).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => {
            return Err(SourceError::Cache {
                path: state,
                source,
            });
        }
    };
    let changed = previous != Some(head);
    if changed {
        std::fs::create_dir_all(cache_dir)
            .and_then(|()| std::fs::write(&state, head.to_string()))
            .map_err(|source| SourceError::Cache {
                path: state.clone(),
                source,
            })?;
    }
    tracing::debug!(repo = %spec.display_url(), %head, changed, "resolved local repository");
    Ok(FetchResult {
        head,
        changed,
        git_dir: repo.git_dir(),
        received_pack: false,
    })
}

/// Fetch `refs/heads/<branch>` of `url` into the ref `tracking` of the mirror.
fn fetch_remote(
    spec: &RepoSpec,
    url: gix::Url,
    cache_dir: &Path,
    tracking: &str,
) -> Result<FetchResult, SourceError> {
    let repo_name = spec.display_url();
    let secrets = Secrets::of(spec);
    let redact = |e: &(dyn std::error::Error + 'static)| RedactedError::new(e, &secrets.pairs());
    let fetch_error = |stage: &'static str, e: &gix::Error| SourceError::Fetch {
        repo: repo_name.clone(),
        stage,
        transient: is_transient_network_error(e),
        source: redact(e),
    };

    if url.scheme == gix::url::Scheme::File {
        let path = gix::path::from_bstr(url.path.as_bstr())
            .map(|p| p.into_owned())
            .unwrap_or_default();
        if !path.exists() {
            return Err(SourceError::RepositoryNotFound {
                repo: repo_name,
                path,
            });
        }
    }

    if matches!(url.scheme, gix::url::Scheme::Https | gix::url::Scheme::Http) {
        ensure_tls_provider();
    }

    let mirror = mirror_path(spec, cache_dir);
    if !mirror.join("HEAD").is_file() {
        std::fs::create_dir_all(cache_dir).map_err(|source| SourceError::Cache {
            path: cache_dir.to_owned(),
            source,
        })?;
        gix::init_bare(&mirror).map_err(|e| SourceError::InitMirror {
            repo: repo_name.clone(),
            path: mirror.clone(),
            source: redact(&e),
        })?;
        tracing::info!(repo = repo_name.as_str(), mirror = %mirror.display(), "created mirror");
    }
    let repo = gix::open(&mirror).map_err(|e| SourceError::OpenRepository {
        repo: repo_name.clone(),
        path: mirror.clone(),
        source: redact(&e),
    })?;

    let branch = &spec.branch;
    let read_tracking = |repo: &gix::Repository| -> Result<Option<ObjectId>, SourceError> {
        match repo.try_find_reference(tracking) {
            Ok(Some(mut r)) => {
                r.peel_to_id()
                    .map(|id| Some(id.detach()))
                    .map_err(|e| SourceError::Reference {
                        repo: repo_name.clone(),
                        reference: tracking.to_owned(),
                        source: redact(&e),
                    })
            }
            Ok(None) => Ok(None),
            Err(e) => Err(SourceError::Reference {
                repo: repo_name.clone(),
                reference: tracking.to_owned(),
                source: redact(&e),
            }),
        }
    };
    let before = read_tracking(&repo)?;

    let refspec = format!("+refs/heads/{branch}:{tracking}");
    let remote = repo
        .remote_at(url)
        .and_then(|r| r.with_refspecs([refspec.as_str()], gix::remote::Direction::Fetch))
        .map(|r| r.with_fetch_tags(gix::remote::fetch::Tags::None))
        .map_err(|e| SourceError::InvalidUrl {
            repo: repo_name.clone(),
            source: redact(&e),
        })?;
    let connection = remote
        .connect(gix::remote::Direction::Fetch)
        .map_err(|e| fetch_error("connecting", &e))?;
    // Never prompt and never consult credential helpers: a daemon has no terminal, and the
    // credentials it should use are the ones in its configuration.
    let credentials = spec.credentials.clone().or_else(|| Secrets::embedded(spec));
    let connection = connection.with_credentials(move |action| match action {
        gix::credentials::helper::Action::Get(ctx) => {
            Ok(credentials
                .as_ref()
                .map(|c| gix::credentials::protocol::Outcome {
                    identity: gix::sec::identity::Account {
                        username: c.username().to_owned(),
                        password: c.password().to_owned(),
                        oauth_refresh_token: None,
                    },
                    next: ctx.into(),
                }))
        }
        gix::credentials::helper::Action::Store(_) | gix::credentials::helper::Action::Erase(_) => {
            Ok(None)
        }
    });
    let prepare = connection
        .prepare_fetch(gix::progress::Discard, Default::default())
        .map_err(|e| fetch_error("listing remote refs", &e))?;
    let advertised = prepare
        .ref_map()
        .mappings
        .iter()
        .any(|m| m.local.as_ref().is_some_and(|l| l == tracking));
    if !advertised {
        return Err(SourceError::BranchNotFound {
            repo: repo_name,
            branch: branch.clone(),
        });
    }
    let outcome = prepare
        .with_reflog_message(gix::remote::fetch::RefLogMessage::Prefixed {
            action: "rollgit fetch".into(),
        })
        .receive(gix::progress::Discard, &AtomicBool::new(false))
        .map_err(|e| fetch_error("receiving objects", &e))?;
    let received_pack = matches!(outcome.status, gix::remote::fetch::Status::Change { .. });

    let head = read_tracking(&repo)?.ok_or_else(|| SourceError::BranchNotFound {
        repo: repo_name.clone(),
        branch: branch.clone(),
    })?;
    let changed = before != Some(head);
    tracing::debug!(repo = repo_name.as_str(), %head, changed, received_pack, "fetched");
    Ok(FetchResult {
        head,
        changed,
        git_dir: mirror,
        received_pack,
    })
}

/// gix's reqwest transport uses rustls without a bundled crypto provider (to avoid building
/// aws-lc); install ring, which the daemon links anyway, as the process default. If the daemon
/// installed a provider first, that one stays.
fn ensure_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _already_installed = rustls::crypto::ring::default_provider().install_default();
    });
}

/// The object cache of every repository handle that reads trees: trees are read many times
/// during traversal, diff and merge; keep them decoded.
/// Files read from a tree: full repository paths and contents, sorted by path.
pub type Files = Vec<(String, Vec<u8>)>;

pub(crate) const OBJECT_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// Metadata of one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// Full hex object id.
    pub sha: String,
    /// The first line of the message.
    pub summary: String,
    /// `Name <email>`.
    pub author: String,
    /// Author time, seconds since the Unix epoch.
    pub time: i64,
}

/// A repository to read commits from: a bare mirror or a local repository, opened once and
/// cheap to clone and share across threads. New objects written by later fetches are found
/// without reopening.
#[derive(Clone)]
pub struct Repo {
    inner: gix::ThreadSafeRepository,
    display: String,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("repo", &self.display)
            .field("git_dir", &self.inner.git_dir())
            .finish()
    }
}

impl Repo {
    /// Open the repository `spec` reads from: the local path itself, or the mirror that
    /// [`fetch`] created under `cache_dir` (fetch first; a missing mirror is
    /// [`SourceError::RepositoryNotFound`]).
    pub fn open(spec: &RepoSpec, cache_dir: &Path) -> Result<Repo, SourceError> {
        match Location::parse(spec)? {
            Location::Local(path) => Repo::open_local(spec, &path),
            Location::Remote(_) => {
                let mirror = mirror_path(spec, cache_dir);
                if !mirror.join("HEAD").is_file() {
                    return Err(SourceError::RepositoryNotFound {
                        repo: spec.display_url(),
                        path: mirror,
                    });
                }
                Repo::open_path(spec.display_url(), &mirror)
            }
        }
    }

    fn open_local(spec: &RepoSpec, path: &Path) -> Result<Repo, SourceError> {
        if !path.exists() {
            return Err(SourceError::RepositoryNotFound {
                repo: spec.display_url(),
                path: path.to_owned(),
            });
        }
        Repo::open_path(spec.display_url(), path)
    }

    pub(crate) fn open_path(display: String, path: &Path) -> Result<Repo, SourceError> {
        let inner =
            gix::ThreadSafeRepository::open(path).map_err(|e| open_error(&display, path, &e))?;
        Ok(Repo { inner, display })
    }

    /// The `.git` directory (or the bare repository).
    pub fn git_dir(&self) -> PathBuf {
        self.inner.git_dir().to_owned()
    }

    pub(crate) fn local(&self) -> gix::Repository {
        let mut repo = self.inner.to_thread_local();
        repo.object_cache_size_if_unset(OBJECT_CACHE_BYTES);
        repo
    }

    /// Resolve `refs/heads/<branch>` to a commit.
    pub fn resolve_branch(&self, branch: &str) -> Result<ObjectId, SourceError> {
        let repo = self.local();
        let name = format!("refs/heads/{branch}");
        let reference =
            repo.try_find_reference(name.as_str())
                .map_err(|e| SourceError::Reference {
                    repo: self.display.clone(),
                    reference: name.clone(),
                    source: RedactedError::new(&e, &[]),
                })?;
        let Some(mut reference) = reference else {
            return Err(SourceError::BranchNotFound {
                repo: self.display.clone(),
                branch: branch.to_owned(),
            });
        };
        reference
            .peel_to_id()
            .map(|id| id.detach())
            .map_err(|e| SourceError::Reference {
                repo: self.display.clone(),
                reference: name,
                source: RedactedError::new(&e, &[]),
            })
    }

    pub(crate) fn commit<'r>(
        &self,
        repo: &'r gix::Repository,
        commit: ObjectId,
    ) -> Result<gix::Commit<'r>, SourceError> {
        repo.find_commit(commit)
            .map_err(|e| SourceError::CommitNotFound {
                repo: self.display.clone(),
                commit: commit.to_string(),
                source: RedactedError::new(&e, &[]),
            })
    }

    fn tree<'r>(
        &self,
        repo: &'r gix::Repository,
        commit: ObjectId,
    ) -> Result<gix::Tree<'r>, SourceError> {
        self.commit(repo, commit)?
            .tree()
            .map_err(|e| self.read_error(commit, "the root tree", &e))
    }

    pub(crate) fn read_error(
        &self,
        commit: ObjectId,
        what: &str,
        e: &(dyn std::error::Error + 'static),
    ) -> SourceError {
        SourceError::Read {
            repo: self.display.clone(),
            commit: commit.to_string(),
            what: what.to_owned(),
            source: RedactedError::new(e, &[]),
        }
    }

    /// Every file path (regular and executable blobs) in `commit`, `/`-separated, sorted.
    /// Symlinks and submodules are not files to render and are left out.
    pub fn list_files(&self, commit: ObjectId) -> Result<Vec<String>, SourceError> {
        let repo = self.local();
        let tree = self.tree(&repo, commit)?;
        let mut files: Vec<String> = self
            .blobs_under(&tree, commit, "")?
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        files.sort_unstable();
        Ok(files)
    }

    /// `(path, oid)` of every regular or executable blob below `tree`, paths prefixed with
    /// `prefix` (which is empty or ends in `/`).
    fn blobs_under(
        &self,
        tree: &gix::Tree<'_>,
        commit: ObjectId,
        prefix: &str,
    ) -> Result<Vec<(String, ObjectId)>, SourceError> {
        let mut recorder = gix::traverse::tree::Recorder::default();
        tree.traverse()
            .breadthfirst(&mut recorder)
            .map_err(|e| self.read_error(commit, "the tree", &e))?;
        Ok(recorder
            .records
            .into_iter()
            .filter(|e| is_file(e.mode))
            .map(|e| (format!("{prefix}{}", e.filepath.to_str_lossy()), e.oid))
            .collect())
    }

    /// The contents of every file whose path starts with the directory `prefix` (`"apps/web"`
    /// and `"apps/web/"` both mean the directory; `""` means the whole tree; a prefix naming a
    /// file yields that file). Paths are full repository paths, sorted. A missing prefix yields
    /// an empty list.
    pub fn read_files(&self, commit: ObjectId, prefix: &str) -> Result<Files, SourceError> {
        let mut all = self.read_files_many(commit, &[prefix])?;
        Ok(all.pop().unwrap_or_default())
    }

    /// [`Self::read_files`] for each of `prefixes`, in order, through one object cache: the
    /// trees they share (`apps/` of `apps/*`) are inflated once, not once per prefix, so
    /// reading N apps side by side costs N, not N × the size of their parent directory.
    pub fn read_files_many(
        &self,
        commit: ObjectId,
        prefixes: &[&str],
    ) -> Result<Vec<Files>, SourceError> {
        let repo = self.local();
        let root = self.tree(&repo, commit)?;
        prefixes
            .iter()
            .map(|prefix| self.read_files_in(&repo, &root, commit, prefix))
            .collect()
    }

    fn read_files_in(
        &self,
        repo: &gix::Repository,
        root: &gix::Tree<'_>,
        commit: ObjectId,
        prefix: &str,
    ) -> Result<Files, SourceError> {
        let dir = prefix.trim_matches('/');
        let mut entries: Vec<(String, ObjectId)> = if dir.is_empty() {
            self.blobs_under(root, commit, "")?
        } else {
            let entry = root
                .lookup_entry_by_path(dir)
                .map_err(|e| self.read_error(commit, dir, &e))?;
            match entry {
                None => Vec::new(),
                Some(entry) if entry.mode().is_tree() => {
                    let subtree = repo
                        .find_tree(entry.object_id())
                        .map_err(|e| self.read_error(commit, dir, &e))?;
                    self.blobs_under(&subtree, commit, &format!("{dir}/"))?
                }
                Some(entry) if is_file(entry.mode()) => vec![(dir.to_owned(), entry.object_id())],
                Some(_) => Vec::new(),
            }
        };
        entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        entries
            .into_iter()
            .map(|(path, oid)| {
                let mut blob = repo
                    .find_blob(oid)
                    .map_err(|e| self.read_error(commit, &path, &e))?;
                Ok((path, blob.take_data()))
            })
            .collect()
    }

    /// The contents of the file at `path` in `commit`, or `None` when there is no file there.
    pub fn read_file(&self, commit: ObjectId, path: &str) -> Result<Option<Vec<u8>>, SourceError> {
        let repo = self.local();
        let root = self.tree(&repo, commit)?;
        let path = path.trim_matches('/');
        let entry = root
            .lookup_entry_by_path(path)
            .map_err(|e| self.read_error(commit, path, &e))?;
        match entry {
            Some(entry) if is_file(entry.mode()) => {
                let mut blob = repo
                    .find_blob(entry.object_id())
                    .map_err(|e| self.read_error(commit, path, &e))?;
                Ok(Some(blob.take_data()))
            }
            _ => Ok(None),
        }
    }

    /// The file paths that differ between `from` and `to`: added, modified (content or mode),
    /// deleted, and both the old and the new path of a rename (no rename detection is needed
    /// for that: a rename is a deletion plus an addition). Sorted and deduplicated. Files that
    /// turned into or from symlinks/submodules are listed too.
    ///
    /// Cost is proportional to the changed subtrees, not the tree size: identical subtrees
    /// are skipped by their id.
    pub fn changed_paths(&self, from: ObjectId, to: ObjectId) -> Result<Vec<String>, SourceError> {
        let repo = self.local();
        let diff_error = |e: &(dyn std::error::Error + 'static)| SourceError::Diff {
            repo: self.display.clone(),
            from: from.to_string(),
            to: to.to_string(),
            source: RedactedError::new(e, &[]),
        };
        let old = self.tree(&repo, from)?;
        let new = self.tree(&repo, to)?;
        let mut paths: Vec<String> = tree_changes(&repo, &old, &new)
            .map_err(|e| diff_error(&e))?
            .into_iter()
            .filter_map(|change| {
                use gix::diff::tree::recorder::Change;
                let (path, modes): (&BStr, [gix::objs::tree::EntryMode; 2]) = match &change {
                    Change::Addition {
                        entry_mode, path, ..
                    }
                    | Change::Deletion {
                        entry_mode, path, ..
                    } => (path.as_ref(), [*entry_mode, *entry_mode]),
                    Change::Modification {
                        previous_entry_mode,
                        entry_mode,
                        path,
                        ..
                    } => (path.as_ref(), [*previous_entry_mode, *entry_mode]),
                };
                (!modes[0].is_tree() || !modes[1].is_tree())
                    .then(|| path.to_str_lossy().into_owned())
            })
            .collect();
        paths.sort_unstable();
        paths.dedup();
        Ok(paths)
    }

    /// The commits on `to`'s first-parent line, newest first, down to (not including) `from`,
    /// that changed a path under one of `prefixes` (a prefix `""` matches every path; `"a/b"`
    /// matches `a/b` and `a/b/...`). Stops after `max` commits walked, or at the root. Used to
    /// find the commits that introduced a change to an app (to revert them).
    pub fn commits_touching(
        &self,
        from: Option<ObjectId>,
        to: ObjectId,
        prefixes: &[String],
        max: usize,
    ) -> Result<Vec<ObjectId>, SourceError> {
        let repo = self.local();
        let mut out = Vec::new();
        let mut at = to;
        for _ in 0..max {
            if Some(at) == from {
                break;
            }
            let parent = self
                .commit(&repo, at)?
                .parent_ids()
                .next()
                .map(|p| p.detach());
            let changed = match parent {
                Some(p) => self.changed_paths(p, at)?,
                None => self.list_files(at)?,
            };
            let under = |path: &str| {
                prefixes.iter().any(|pre| {
                    let pre = pre.trim_end_matches('/');
                    pre.is_empty()
                        || path == pre
                        || path.strip_prefix(pre).is_some_and(|r| r.starts_with('/'))
                })
            };
            if changed.iter().any(|p| under(p)) {
                out.push(at);
            }
            match parent {
                Some(p) => at = p,
                None => break,
            }
        }
        Ok(out)
    }

    /// The commits of `to`'s first-parent line, newest first, starting with `to` itself: at
    /// most `max` of them, fewer when the root is reached.
    pub fn first_parent_line(
        &self,
        to: ObjectId,
        max: usize,
    ) -> Result<Vec<ObjectId>, SourceError> {
        let repo = self.local();
        let mut out = Vec::new();
        let mut at = Some(to);
        while let Some(c) = at {
            if out.len() >= max {
                break;
            }
            out.push(c);
            at = self
                .commit(&repo, c)?
                .parent_ids()
                .next()
                .map(|p| p.detach());
        }
        Ok(out)
    }

    /// Sha, summary, author and author time of `commit`.
    pub fn commit_info(&self, commit: ObjectId) -> Result<CommitInfo, SourceError> {
        let repo = self.local();
        let c = self.commit(&repo, commit)?;
        let read = |e: &gix::Error| self.read_error(commit, "the commit", e);
        let summary = c.message().map_err(|e| read(&e))?.summary().to_string();
        let author = c.author().map_err(|e| read(&e))?;
        let author_text = format!("{} <{}>", author.name, author.email);
        let time = c.time().map_err(|e| read(&e))?.seconds;
        Ok(CommitInfo {
            sha: commit.to_string(),
            summary,
            author: author_text,
            time,
        })
    }
}

/// The error of opening the repository at `path`: [`SourceError::RepositoryNotFound`] when
/// there is none, else [`SourceError::OpenRepository`].
pub(crate) fn open_error(repo: &str, path: &Path, e: &gix::Error) -> SourceError {
    if e.is_not_found() {
        SourceError::RepositoryNotFound {
            repo: repo.to_owned(),
            path: path.to_owned(),
        }
    } else {
        SourceError::OpenRepository {
            repo: repo.to_owned(),
            path: path.to_owned(),
            source: RedactedError::new(e, &[]),
        }
    }
}

/// Every change between the trees `old` and `new`, recursively (identical subtrees are skipped
/// by their id; no rename detection).
pub(crate) fn tree_changes(
    repo: &gix::Repository,
    old: &gix::Tree<'_>,
    new: &gix::Tree<'_>,
) -> Result<Vec<gix::diff::tree::recorder::Change>, gix::diff::tree::Error> {
    let mut recorder = gix::diff::tree::Recorder::default();
    gix::diff::tree(
        gix::objs::TreeRefIter::from_bytes(&old.data, old.id.kind()),
        gix::objs::TreeRefIter::from_bytes(&new.data, new.id.kind()),
        gix::diff::tree::State::default(),
        &repo.objects,
        &mut recorder,
    )?;
    Ok(recorder.records)
}

pub(crate) fn is_file(mode: gix::objs::tree::EntryMode) -> bool {
    matches!(
        mode.kind(),
        gix::objs::tree::EntryKind::Blob | gix::objs::tree::EntryKind::BlobExecutable
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redact_url_table() {
        let cases = [
            (
                "https_user_password",
                "https://u:s3cret@example.com/a/b.git",
                "https://example.com/a/b.git",
            ),
            (
                "https_token_only",
                "https://tok@example.com/a.git",
                "https://example.com/a.git",
            ),
            (
                "https_plain",
                "https://example.com/a.git",
                "https://example.com/a.git",
            ),
            (
                "at_in_path_kept",
                "https://example.com/a@b.git",
                "https://example.com/a@b.git",
            ),
            (
                "ssh_user",
                "ssh://git@example.com/a.git",
                "ssh://example.com/a.git",
            ),
            (
                "scp_like_unchanged",
                "git@example.com:a/b.git",
                "git@example.com:a/b.git",
            ),
            ("local_path_unchanged", "/srv/repo", "/srv/repo"),
            ("file_url", "file:///srv/repo.git", "file:///srv/repo.git"),
        ];
        for (name, input, want) in cases {
            assert_eq!(redact_url(input), want, "case {name}");
        }
    }

    #[test]
    fn repo_spec_debug_is_redacted() {
        let spec = RepoSpec {
            url: "https://bot:url-secret@example.com/a.git".into(),
            branch: "main".into(),
            credentials: Some(Credentials::Token("tok-secret".into())),
        };
        let text = format!("{spec:?}");
        assert!(
            !text.contains("url-secret") && !text.contains("tok-secret"),
            "{text}"
        );
        assert!(text.contains("https://example.com/a.git"), "{text}");
    }

    #[test]
    fn credentials_debug_is_redacted() {
        let token = Credentials::Token("ghp_secret".into());
        let basic = Credentials::UserPassword {
            username: "bot".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{token:?}").contains("ghp_secret"));
        assert!(!format!("{basic:?}").contains("hunter2"));
        assert!(format!("{basic:?}").contains("bot"));
    }

    #[test]
    fn mirror_path_is_per_url_without_credentials() {
        let cache = Path::new("/cache");
        let a = RepoSpec::new("https://u:p@example.com/org/app.git", "main");
        let b = RepoSpec::new("https://example.com/org/app.git", "dev");
        let c = RepoSpec::new("https://example.com/org/other.git", "main");
        assert_eq!(mirror_path(&a, cache), mirror_path(&b, cache));
        assert_ne!(mirror_path(&a, cache), mirror_path(&c, cache));
        let p = mirror_path(&a, cache);
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(name.ends_with("-app.git"), "{name}");
    }

    #[test]
    fn ext_scheme_is_rejected() {
        let spec = RepoSpec::new("ext::sh -c touch% /tmp/pwned", "main");
        let err = fetch(&spec, Path::new("/nonexistent-cache")).unwrap_err();
        assert!(matches!(err, SourceError::InvalidUrl { .. }), "{err:?}");
        assert!(!err.is_transient());
    }
}
