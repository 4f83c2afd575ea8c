//! `rollgit history APP` and `rollgit rollback APP`: an app's Git history next to what the
//! cluster did with it, and a manual rollback written to Git as one revert commit.
//!
//! Both read the app's `applications.rollgit.dev` object (its directory in the repository and
//! the last applied commit) and its `rollouts.rollgit.dev` Rollouts (stable, failed and target
//! revisions with their commits), and the branch's first-parent line fetched into the mirror
//! cache (without disturbing what the daemon's own fetch reports).
//!
//! * **history** lists the commits that changed the app's directory, newest first, with what
//!   the cluster knows about each ([`history_rows`], [`history_table`]), then a summary of each
//!   Rollout ([`rollout_summary`]).
//! * **rollback** picks the commit whose state the app's directory returns to
//!   ([`choose_target`]), reverts every later commit that changed the directory, restricted
//!   to it, in ONE commit ([`rollback_message`], trailers `Reverts:`, `Rollgit-App:`,
//!   `Rollgit-Rollback: manual`), and pushes it as a fast-forward with
//!   [`rollgit_source::write::revert`] (redone when the remote moved; a conflicting revert is not
//!   pushed). It never touches the cluster's workloads: the daemon applies the revert like any
//!   commit, in batches where the app has a rollout.
//!
//! The deciding and rendering are pure and table-tested; [`history`] and [`rollback`] are the
//! I/O shell.

use super::revert::{MAX_WALK, Range, Reverted, Undone, Writer, short};
use crate::k8s::crds::Checked;
use crate::k8s::{APP_LABEL, Rollout};
use crate::rollout::state_of;
use kube::api::{Api, DynamicObject, ListParams};
use rollgit_core::batch::State;
use rollgit_core::kubevela::RollingState;
use rollgit_source::write::{LogEntry, WriteError};
use rollgit_source::{ObjectId, Repo, SourceError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Default of `rollgit history --max`: rows shown.
pub const DEFAULT_MAX: usize = 50;
/// Fewest hex digits `--to` accepts as an abbreviated commit id.
pub const MIN_ABBREV: usize = 7;

/// Errors of `rollgit history` and `rollgit rollback`.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading the app's status object failed.
    #[error("reading applications.rollgit.dev/{app} in namespace {namespace}")]
    ReadApp {
        app: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    /// The app has no status object.
    #[error(
        "no app named {app:?} in namespace {namespace} (rollgit records each app it applies as applications.rollgit.dev/{app})"
    )]
    AppNotFound { app: String, namespace: String },
    /// Listing the app's Rollouts failed.
    #[error("listing the rollouts of app {app} in namespace {namespace}")]
    ListRollouts {
        app: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    /// A Rollout's status does not describe a state.
    #[error("the status of rollout {namespace}/{name} does not parse: {message}")]
    InvalidRollout {
        namespace: String,
        name: String,
        message: String,
    },
    /// Reading the app's revisions failed.
    #[error("listing the ControllerRevisions of app {app} in namespace {namespace}")]
    ListRevisions {
        app: String,
        namespace: String,
        #[source]
        source: kube::Error,
    },
    /// Reading the repository failed.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// Writing (or computing) the revert failed.
    #[error(transparent)]
    Write(#[from] WriteError),
    /// The commit to return to cannot be chosen.
    #[error(transparent)]
    Target(#[from] TargetError),
    /// A blocking Git task did not finish.
    #[error("reading Git failed: {0}")]
    Join(#[from] tokio::task::JoinError),
}

impl HistoryError {
    /// Whether the user asked for something that cannot be done (exit 1), as opposed to a
    /// failure to read or write (exit 2).
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            HistoryError::AppNotFound { .. }
                | HistoryError::Target(_)
                | HistoryError::Write(WriteError::Conflict { .. })
        )
    }
}

/// Why [`choose_target`] found no commit to return to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TargetError {
    /// `--to COMMIT` names no commit of the branch's first-parent line.
    #[error(
        "commit {given:?} is not on the first-parent line of branch {branch} (looked through its last {searched} commits)"
    )]
    CommitNotOnBranch {
        given: String,
        branch: String,
        searched: usize,
    },
    /// `--to COMMIT` is an abbreviation of several commits.
    #[error("commit {given:?} is ambiguous: {}", .matches.join(", "))]
    AmbiguousCommit { given: String, matches: Vec<String> },
    /// No commit of the app renders the revision.
    #[error(
        "no commit of app {app} renders revision {revision:?}{}; known revisions: {}",
        .component.as_ref().map(|c| format!(" for component {c}")).unwrap_or_default(),
        if .known.is_empty() { "none".to_string() } else { .known.join(", ") }
    )]
    UnknownRevision {
        app: String,
        revision: String,
        component: Option<String>,
        known: Vec<String>,
    },
    /// `--component` names no Rollout of the app.
    #[error(
        "app {app} has no rollout of component {component:?} (its rollouts: {})",
        if .rollouts.is_empty() { "none".to_string() } else { .rollouts.join(", ") }
    )]
    NoSuchComponent {
        app: String,
        component: String,
        rollouts: Vec<String>,
    },
    /// Unfinished Rollouts of the app last succeeded at different commits.
    #[error(
        "the unfinished rollouts of app {app} last succeeded at different commits ({}); choose one with --component or --to",
        .commits.join(", ")
    )]
    AmbiguousRollouts { app: String, commits: Vec<String> },
    /// No commit on the branch changed the app.
    #[error(
        "no commit in the last {searched} commits of branch {branch} changed the directory of app {app}"
    )]
    NoCommits {
        app: String,
        branch: String,
        searched: usize,
    },
    /// The newest commit of the app has no parent to return to.
    #[error("commit {commit} created app {app}: there is no earlier state to return to")]
    NoPrevious { app: String, commit: String },
}

/// One commit that changed an app's directory, as `rollgit history` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppCommit {
    /// Full hex id.
    pub sha: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// `Name <email>`.
    pub author: String,
    /// First line of the message.
    pub summary: String,
    /// The `Reverts:` trailers.
    pub reverts: Vec<String>,
}

impl AppCommit {
    /// From a commit read with its trailers.
    pub fn from_entry(e: &LogEntry) -> Self {
        AppCommit {
            sha: e.commit.to_string(),
            time: e.time,
            author: e.author.clone(),
            summary: e.summary.clone(),
            reverts: e.reverts.iter().map(ToString::to_string).collect(),
        }
    }
}

/// What the record stage wrote about a Rollout's last rollback (`status.record`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordView {
    /// `Reverted`, `Stalled` or `NotRecorded`.
    pub state: String,
    /// The revert commit.
    pub commit: Option<String>,
    /// What happened.
    pub message: String,
    /// The revision that failed.
    pub from: String,
    /// The commit whose spec asked for `from` (the failed commit).
    pub spec_commit: Option<String>,
}

/// One Rollout of the app as read from the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RolloutView {
    /// Object name (the component).
    pub name: String,
    /// `spec.commit`: the commit whose spec is in effect.
    pub spec_commit: Option<String>,
    /// `spec.targetRevision`: the revision that commit asks for.
    pub spec_target: String,
    /// The recorded state.
    pub state: State,
    /// `status.record`.
    pub record: Option<RecordView>,
}

impl RolloutView {
    /// Reads a Rollout object; its status must describe a state.
    pub fn from_object(o: &Rollout) -> Result<Self, String> {
        let name = o
            .metadata
            .name
            .clone()
            .unwrap_or_else(|| o.spec.component.clone());
        let status = match &o.status {
            None => None,
            Some(Checked::Valid(s)) => Some(s),
            Some(Checked::Invalid { error, .. }) => return Err(error.clone()),
        };
        let state = match status {
            None => State::default(),
            Some(s) => state_of(s)?,
        };
        let record = status.and_then(|s| s.record.as_ref()).map(|r| RecordView {
            state: r.state.clone(),
            commit: r.commit.clone(),
            message: r.message.clone(),
            from: r.from.clone(),
            spec_commit: r.spec_commit.clone(),
        });
        Ok(RolloutView {
            name,
            spec_commit: o.spec.commit.clone(),
            spec_target: o.spec.target_revision.clone(),
            state,
            record,
        })
    }
}

/// What the cluster knows about an app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AppView {
    /// `spec.source.repo`: rollgit's name of the repository.
    pub repo: Option<String>,
    /// `spec.source.branch`.
    pub branch: Option<String>,
    /// `spec.source.path`: the app's directory (`""` for the repository root).
    pub path: String,
    /// `status.lastAppliedCommit`.
    pub last_applied: Option<String>,
    /// The app's Rollouts, by name.
    pub rollouts: Vec<RolloutView>,
}

impl AppView {
    /// Reads an `applications.rollgit.dev` object (without its Rollouts).
    pub fn from_object(o: &DynamicObject) -> Self {
        let source = &o.data["spec"]["source"];
        let text = |v: &Value| v.as_str().map(str::to_string);
        AppView {
            repo: text(&source["repo"]),
            branch: text(&source["branch"]),
            path: source["path"]
                .as_str()
                .unwrap_or_default()
                .trim_matches('/')
                .to_string(),
            last_applied: text(&o.data["status"]["lastAppliedCommit"]),
            rollouts: Vec::new(),
        }
    }
}

/// One row of `rollgit history`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryRow {
    pub commit: String,
    pub date: String,
    pub author: String,
    pub revision: String,
    pub result: String,
    pub summary: String,
}

fn same_commit(a: Option<&str>, b: &str) -> bool {
    a.is_some_and(|a| !a.is_empty() && a.eq_ignore_ascii_case(b))
}

/// RFC 3339 in UTC of Unix seconds (`1970-01-01T00:00:00Z`).
pub fn rfc3339_utc(unix: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The name of `Name <email>`.
fn author_name(author: &str) -> &str {
    match author.find(" <") {
        Some(i) if author.ends_with('>') => &author[..i],
        _ => author,
    }
}

/// The revisions the Rollouts know for `sha`: stable, failed, and the target its spec asks
/// for, in Rollout order, without repeats.
fn revisions_of(sha: &str, rollouts: &[RolloutView]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut add = |r: Option<&String>| {
        if let Some(r) = r.filter(|r| !r.is_empty())
            && !out.contains(r)
        {
            out.push(r.clone());
        }
    };
    for r in rollouts {
        let s = &r.state;
        if same_commit(s.stable_commit.as_deref(), sha) {
            add(s.stable_revision.as_ref());
        }
        if same_commit(s.failed_commit.as_deref(), sha) {
            add(s.failed_revision.as_ref());
        }
        if let Some(rec) = &r.record
            && same_commit(rec.spec_commit.as_deref(), sha)
        {
            add(Some(&rec.from));
        }
        if same_commit(r.spec_commit.as_deref(), sha) {
            add(Some(&r.spec_target));
        }
    }
    out
}

/// The RESULT of a commit: `running` (the app's last applied commit), `rolled-out REV` (a
/// Rollout's stable commit), `failed REV` (a Rollout's failed commit, or the commit its last
/// rollback record names, kept after the rollback), `revert of SHAS` (a commit with
/// `Reverts:` trailers); several joined by `; `, blank for none.
fn result_of(c: &AppCommit, last_applied: Option<&str>, rollouts: &[RolloutView]) -> String {
    let mut parts: Vec<String> = Vec::new();
    if same_commit(last_applied, &c.sha) {
        parts.push("running".into());
    }
    for r in rollouts {
        let s = &r.state;
        if same_commit(s.stable_commit.as_deref(), &c.sha) {
            parts.push(format!(
                "rolled-out {}",
                s.stable_revision.as_deref().unwrap_or("?")
            ));
        }
    }
    for r in rollouts {
        let s = &r.state;
        if same_commit(s.failed_commit.as_deref(), &c.sha) {
            parts.push(format!(
                "failed {}",
                s.failed_revision.as_deref().unwrap_or("?")
            ));
        }
        if let Some(rec) = &r.record
            && !rec.from.is_empty()
            && same_commit(rec.spec_commit.as_deref(), &c.sha)
        {
            parts.push(format!("failed {}", rec.from));
        }
    }
    if !c.reverts.is_empty() {
        let shas: Vec<&str> = c.reverts.iter().map(|s| short(s)).collect();
        parts.push(format!("revert of {}", shas.join(" ")));
    }
    parts.dedup();
    parts.join("; ")
}

/// The rows of `rollgit history`, one per commit, in the commits' order (newest first).
pub fn history_rows(
    commits: &[AppCommit],
    last_applied: Option<&str>,
    rollouts: &[RolloutView],
) -> Vec<HistoryRow> {
    commits
        .iter()
        .map(|c| HistoryRow {
            commit: short(&c.sha).to_string(),
            date: rfc3339_utc(c.time),
            author: author_name(&c.author).to_string(),
            revision: revisions_of(&c.sha, rollouts).join(", "),
            result: result_of(c, last_applied, rollouts),
            summary: c.summary.clone(),
        })
        .collect()
}

/// What `--to` names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ToArg {
    /// A full or abbreviated commit id (lower case).
    Commit(String),
    /// A component revision name (`web-v1`).
    Revision(String),
}

impl ToArg {
    /// At least [`MIN_ABBREV`] hex digits (and at most 40) is a commit id; anything else a
    /// revision name.
    pub fn parse(s: &str) -> ToArg {
        let t = s.trim();
        if (MIN_ABBREV..=40).contains(&t.len()) && t.bytes().all(|b| b.is_ascii_hexdigit()) {
            ToArg::Commit(t.to_ascii_lowercase())
        } else {
            ToArg::Revision(t.to_string())
        }
    }
}

/// Everything [`choose_target`] decides from.
#[derive(Debug, Clone, Copy)]
pub struct TargetInput<'a> {
    /// The app.
    pub app: &'a str,
    /// The branch (for messages).
    pub branch: &'a str,
    /// `--to`.
    pub to: Option<&'a ToArg>,
    /// `--component`.
    pub component: Option<&'a str>,
    /// The app's Rollouts.
    pub rollouts: &'a [RolloutView],
    /// The branch head's first-parent line, newest first (full ids), at most [`MAX_WALK`].
    pub line: &'a [String],
    /// The commits of `line` that changed the app's directory, newest first.
    pub app_commits: &'a [String],
    /// The newest of `app_commits` that rollgit made (its reverts and write-backs: a
    /// `Rollgit-App:` trailer), up to the newest commit made by someone else.
    pub rollgit_made: &'a [String],
    /// Revisions of the app's components that exist in the cluster (ControllerRevisions).
    pub known_revisions: &'a [String],
}

/// The commit whose state the app's directory returns to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Full id.
    pub commit: String,
    /// The revision(s) that commit renders for the component(s), if known (`web-v1`).
    pub revision: Option<String>,
    /// Why this commit.
    pub reason: String,
}

/// Chooses the commit to return to (see the module docs of `rollgit rollback`):
///
/// * `--to COMMIT`: the commit of the first-parent line it abbreviates;
/// * `--to REVISION`: a Rollout's stable commit when that is its stable revision, else the
///   newest commit of the app whose render gives that revision (`revisions_at(commit)`: the
///   revision of each component, `None` when the commit does not render);
/// * neither: the stable commit of the (selected) Rollouts that failed or are rolling, else
///   the parent of the newest commit that changed the app not made by rollgit (a rollgit
///   revert is never undone this way: that would bring the failed change back).
pub fn choose_target(
    input: &TargetInput<'_>,
    revisions_at: &mut dyn FnMut(&str) -> Option<BTreeMap<String, String>>,
) -> Result<Target, TargetError> {
    let selected: Vec<&RolloutView> = input
        .rollouts
        .iter()
        .filter(|r| input.component.is_none_or(|c| r.name == c))
        .collect();
    let label = |commit: &str,
                 revisions_at: &mut dyn FnMut(&str) -> Option<BTreeMap<String, String>>|
     -> Option<String> {
        let known = revisions_of(commit, input.rollouts);
        let rendered: Vec<String> = revisions_at(commit)
            .unwrap_or_default()
            .into_iter()
            .filter(|(c, _)| input.component.is_none_or(|w| w == c))
            .map(|(_, r)| r)
            .collect();
        let all = if rendered.is_empty() { known } else { rendered };
        (!all.is_empty()).then(|| all.join(", "))
    };
    match input.to {
        Some(ToArg::Commit(given)) => {
            let matches: Vec<&String> = input
                .line
                .iter()
                .filter(|c| c.to_ascii_lowercase().starts_with(given.as_str()))
                .collect();
            match matches.as_slice() {
                [] => Err(TargetError::CommitNotOnBranch {
                    given: given.clone(),
                    branch: input.branch.to_string(),
                    searched: input.line.len(),
                }),
                [one] => Ok(Target {
                    commit: (*one).clone(),
                    revision: label(one, revisions_at),
                    reason: format!("--to {given}"),
                }),
                many => Err(TargetError::AmbiguousCommit {
                    given: given.clone(),
                    matches: many.iter().map(|c| short(c).to_string()).collect(),
                }),
            }
        }
        Some(ToArg::Revision(revision)) => {
            for r in &selected {
                if r.state.stable_revision.as_deref() == Some(revision.as_str())
                    && let Some(sc) = &r.state.stable_commit
                    && input.line.iter().any(|c| c.eq_ignore_ascii_case(sc))
                {
                    return Ok(Target {
                        commit: sc.clone(),
                        revision: Some(revision.clone()),
                        reason: format!(
                            "the commit that last rolled out {revision} (rollout {})",
                            r.name
                        ),
                    });
                }
            }
            let mut seen: BTreeSet<String> = input.known_revisions.iter().cloned().collect();
            for r in &selected {
                let s = &r.state;
                seen.extend(
                    [&s.stable_revision, &s.failed_revision, &s.target_revision]
                        .into_iter()
                        .flatten()
                        .cloned(),
                );
            }
            for commit in input.app_commits {
                let Some(revisions) = revisions_at(commit) else {
                    continue;
                };
                let mut found = false;
                for (component, name) in revisions {
                    if input.component.is_some_and(|c| c != component) {
                        continue;
                    }
                    found |= name == *revision;
                    seen.insert(name);
                }
                if found {
                    return Ok(Target {
                        commit: commit.clone(),
                        revision: Some(revision.clone()),
                        reason: format!("the newest commit that renders {revision}"),
                    });
                }
            }
            seen.retain(|s| !s.is_empty());
            Err(TargetError::UnknownRevision {
                app: input.app.to_string(),
                revision: revision.clone(),
                component: input.component.map(str::to_string),
                known: seen.into_iter().collect(),
            })
        }
        None => {
            if let Some(c) = input.component
                && selected.is_empty()
            {
                return Err(TargetError::NoSuchComponent {
                    app: input.app.to_string(),
                    component: c.to_string(),
                    rollouts: input.rollouts.iter().map(|r| r.name.clone()).collect(),
                });
            }
            let unfinished: Vec<&&RolloutView> = selected
                .iter()
                .filter(|r| r.state.rolling_state != RollingState::RolloutSucceed)
                .filter(|r| r.state.stable_commit.is_some())
                .collect();
            let commits: BTreeSet<&String> = unfinished
                .iter()
                .filter_map(|r| r.state.stable_commit.as_ref())
                .collect();
            match commits.len() {
                0 => {}
                1 => {
                    let r = unfinished[0];
                    let commit = r.state.stable_commit.clone().unwrap_or_default();
                    return Ok(Target {
                        revision: r.state.stable_revision.clone(),
                        reason: format!(
                            "rollout {} is {}: back to the commit that last rolled out {}",
                            r.name,
                            r.state.rolling_state.as_str(),
                            r.state
                                .stable_revision
                                .as_deref()
                                .unwrap_or("its stable revision")
                        ),
                        commit,
                    });
                }
                _ => {
                    return Err(TargetError::AmbiguousRollouts {
                        app: input.app.to_string(),
                        commits: commits.iter().map(|c| short(c).to_string()).collect(),
                    });
                }
            }
            let skipped: Vec<&String> = input
                .app_commits
                .iter()
                .take_while(|c| input.rollgit_made.contains(c))
                .collect();
            let Some(newest) = input
                .app_commits
                .iter()
                .find(|c| !input.rollgit_made.contains(c))
                .or(input.app_commits.first())
            else {
                return Err(TargetError::NoCommits {
                    app: input.app.to_string(),
                    branch: input.branch.to_string(),
                    searched: input.line.len(),
                });
            };
            let newest_is = if skipped.is_empty() || skipped.contains(&newest) {
                "the app's newest commit".to_string()
            } else {
                let shas: Vec<&str> = skipped.iter().map(|c| short(c)).collect();
                format!(
                    "the app's newest commit not made by rollgit (after it: rollgit's {})",
                    shas.join(", ")
                )
            };
            let parent = input
                .line
                .iter()
                .position(|c| c == newest)
                .and_then(|i| input.line.get(i + 1));
            match parent {
                Some(p) => Ok(Target {
                    commit: p.clone(),
                    revision: label(p, revisions_at),
                    reason: format!("the state before {}, {newest_is}", short(newest)),
                }),
                None => Err(TargetError::NoPrevious {
                    app: input.app.to_string(),
                    commit: short(newest).to_string(),
                }),
            }
        }
    }
}

/// The message of a manual rollback commit: summary, what and why, the reverted commits, and
/// the trailers `Reverts:` (one per commit), `Rollgit-App:` and `Rollgit-Rollback: manual`.
pub fn rollback_message(app: &str, path: &str, target: &Target, undone: &[Undone]) -> String {
    let revision = target
        .revision
        .as_deref()
        .map(|r| format!(" ({r})"))
        .unwrap_or_default();
    let dir = if path.is_empty() {
        "the repository".to_string()
    } else {
        path.to_string()
    };
    let (list, trailers) = super::revert::undone_text(undone);
    format!(
        "Rollback {app} to {}{revision}\n\n\
         rollgit rollback returns {dir} (app {app}) to its state at commit {}{revision}: {}.\n\n\
         {list}\n{trailers}Rollgit-App: {app}\nRollgit-Rollback: manual\n",
        short(&target.commit),
        target.commit,
        target.reason
    )
}

/// Where an app's repository is read from and written to.
#[derive(Debug, Clone)]
pub struct Source {
    /// The repository, its mirror, and the identity of the rollback commit.
    pub writer: Writer,
    /// The configured app roots (which files make the app).
    pub roots: Vec<String>,
    /// Namespace the daemon renders the app in.
    pub namespace: String,
}

/// Reads the app's status object and its Rollouts.
pub async fn read_app(
    client: &kube::Client,
    namespace: &str,
    app: &str,
) -> Result<AppView, HistoryError> {
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &super::status::application_resource(),
    );
    let o = api
        .get_opt(app)
        .await
        .map_err(|source| HistoryError::ReadApp {
            app: app.to_string(),
            namespace: namespace.to_string(),
            source,
        })?
        .ok_or_else(|| HistoryError::AppNotFound {
            app: app.to_string(),
            namespace: namespace.to_string(),
        })?;
    let mut view = AppView::from_object(&o);
    let rollouts: Api<Rollout> = Api::namespaced(client.clone(), namespace);
    let list = rollouts
        .list(&ListParams::default().labels(&format!("{APP_LABEL}={app}")))
        .await
        .map_err(|source| HistoryError::ListRollouts {
            app: app.to_string(),
            namespace: namespace.to_string(),
            source,
        })?;
    for r in &list.items {
        view.rollouts
            .push(
                RolloutView::from_object(r).map_err(|message| HistoryError::InvalidRollout {
                    namespace: namespace.to_string(),
                    name: r.metadata.name.clone().unwrap_or_default(),
                    message,
                })?,
            );
    }
    view.rollouts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(view)
}

/// The branch fetched and opened: its first-parent line and the app's commits (newest first).
struct Branch {
    repo: Repo,
    line: Vec<String>,
    app_commits: Vec<String>,
    /// The newest app commits rollgit made, up to the newest made by someone else.
    rollgit_made: Vec<String>,
}

fn open_branch(source: &Source, path: &str) -> Result<Branch, HistoryError> {
    let spec = &source.writer.spec;
    let cache = &source.writer.cache;
    let fetched = rollgit_source::fetch_for_write(spec, cache)?;
    let repo = Repo::open(spec, cache)?;
    let line = repo
        .first_parent_line(fetched.head, MAX_WALK)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let touching = repo.commits_touching(None, fetched.head, &[path.to_string()], MAX_WALK)?;
    let mut rollgit_made = Vec::new();
    for c in &touching {
        let entry = repo.log_entry(*c)?;
        if !entry.trailers.iter().any(|(k, _)| k == ROLLGIT_APP_TRAILER) {
            break;
        }
        rollgit_made.push(c.to_string());
    }
    Ok(Branch {
        repo,
        line,
        app_commits: touching.iter().map(ToString::to_string).collect(),
        rollgit_made,
    })
}

/// The trailer every commit rollgit makes carries (reverts, rollbacks, write-backs).
pub const ROLLGIT_APP_TRAILER: &str = "Rollgit-App";

fn parse_id(s: &str) -> Option<ObjectId> {
    ObjectId::from_hex(s.as_bytes()).ok()
}

/// What `rollgit history` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct History {
    /// The app's directory (`""`: the repository).
    pub path: String,
    /// The branch.
    pub branch: String,
    /// One row per commit that changed the directory, newest first.
    pub rows: Vec<HistoryRow>,
    /// The app's Rollouts.
    pub rollouts: Vec<RolloutView>,
}

/// `rollgit history`: the app's commits (at most `max`, newest first) with what the cluster
/// did with each, and its Rollouts.
pub async fn history(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    source: &Source,
    max: usize,
) -> Result<History, HistoryError> {
    let view = read_app(client, namespace, app).await?;
    let src = source.clone();
    let path = view.path.clone();
    let commits = tokio::task::spawn_blocking(move || -> Result<Vec<AppCommit>, HistoryError> {
        let b = open_branch(&src, &path)?;
        b.app_commits
            .iter()
            .take(max)
            .filter_map(|c| parse_id(c))
            .map(|c| Ok(AppCommit::from_entry(&b.repo.log_entry(c)?)))
            .collect()
    })
    .await??;
    Ok(History {
        rows: history_rows(&commits, view.last_applied.as_deref(), &view.rollouts),
        path: view.path,
        branch: source.writer.spec.branch.clone(),
        rollouts: view.rollouts,
    })
}

/// What `rollgit rollback` is asked.
#[derive(Debug, Clone)]
pub struct RollbackOptions {
    pub app: String,
    pub component: Option<String>,
    pub to: Option<ToArg>,
    pub dry_run: bool,
}

/// What `rollgit rollback` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollbackOutcome {
    /// The revert commit is on the remote branch.
    Pushed {
        target: Target,
        reverted: Vec<Undone>,
        commit: String,
        branch: String,
    },
    /// `--dry-run`: what would be reverted, and the diff.
    DryRun {
        target: Target,
        reverted: Vec<Undone>,
        diff: String,
    },
    /// The app's directory already has the target's content.
    NothingToDo { target: Target, path: String },
}

/// `rollgit rollback`: chooses the commit, then reverts (or, with `dry_run`, shows) the later
/// commits that changed the app's directory, as one commit pushed to the branch.
pub async fn rollback(
    client: &kube::Client,
    namespace: &str,
    source: &Source,
    opts: &RollbackOptions,
) -> Result<RollbackOutcome, HistoryError> {
    let app = opts.app.clone();
    let view = read_app(client, namespace, &app).await?;
    let revision_state = crate::plan::revisions::revision_state(client, namespace, &app, None)
        .await
        .map_err(|source| HistoryError::ListRevisions {
            app: app.clone(),
            namespace: namespace.to_string(),
            source,
        })?;
    let mut known: Vec<String> = revision_state
        .components
        .iter()
        .filter(|(c, _)| opts.component.as_ref().is_none_or(|w| w == *c))
        .flat_map(|(_, revs)| revs.iter().map(|r| r.name.clone()))
        .collect();
    known.sort();
    known.dedup();
    let src = source.clone();
    let opts = opts.clone();
    tokio::task::spawn_blocking(move || {
        let path = view.path.clone();
        let b = open_branch(&src, &path)?;
        let mut revisions_at = |commit: &str| -> Option<BTreeMap<String, String>> {
            let id = parse_id(commit)?;
            let (dir, files, index) =
                crate::plan::read::read_app_at(&b.repo, id, &src.roots, &app, &path).ok()?;
            let rendered = crate::plan::render(
                &dir,
                &src.namespace,
                &files,
                index.as_ref(),
                &revision_state,
            )
            .ok()?;
            Some(
                rendered
                    .revisions
                    .iter()
                    .map(|r| (r.component.clone(), r.name.clone()))
                    .collect(),
            )
        };
        let input = TargetInput {
            app: &app,
            branch: &src.writer.spec.branch,
            to: opts.to.as_ref(),
            component: opts.component.as_deref(),
            rollouts: &view.rollouts,
            line: &b.line,
            app_commits: &b.app_commits,
            rollgit_made: &b.rollgit_made,
            known_revisions: &known,
        };
        let target = choose_target(&input, &mut revisions_at)?;
        let (Some(to), Some(head)) = (
            parse_id(&target.commit),
            b.line.first().and_then(|h| parse_id(h)),
        ) else {
            return Ok(RollbackOutcome::NothingToDo { target, path });
        };
        let range = Range {
            path: &path,
            after: Some(to),
            upto: head,
        };
        let message = |undone: &[Undone]| rollback_message(&app, &path, &target, undone);
        Ok(
            match super::revert::revert_app(&src.writer, &b.repo, range, &message, opts.dry_run)? {
                Reverted::NothingToDo => RollbackOutcome::NothingToDo { target, path },
                Reverted::DryRun { diff, undone } => RollbackOutcome::DryRun {
                    target,
                    reverted: undone,
                    diff,
                },
                Reverted::Pushed { commit, undone } => RollbackOutcome::Pushed {
                    target,
                    reverted: undone,
                    commit,
                    branch: src.writer.spec.branch.clone(),
                },
            },
        )
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 40-hex commit id made of one repeated digit.
    fn sha(c: char) -> String {
        c.to_string().repeat(40)
    }

    fn commit(c: char, summary: &str, reverts: &[char]) -> AppCommit {
        AppCommit {
            sha: sha(c),
            time: 1_700_000_000,
            author: "Ada Lovelace <ada@example.com>".into(),
            summary: summary.into(),
            reverts: reverts.iter().map(|r| sha(*r)).collect(),
        }
    }

    fn state(rolling: RollingState) -> State {
        State {
            rolling_state: rolling,
            ..State::default()
        }
    }

    fn rollout(name: &str, spec: Option<(char, &str)>, st: State) -> RolloutView {
        RolloutView {
            name: name.into(),
            spec_commit: spec.map(|(c, _)| sha(c)),
            spec_target: spec.map(|(_, t)| t.to_string()).unwrap_or_default(),
            state: st,
            record: None,
        }
    }

    fn stable(rolling: RollingState, rev: &str, c: char) -> State {
        State {
            stable_revision: Some(rev.into()),
            stable_commit: Some(sha(c)),
            ..state(rolling)
        }
    }

    #[test]
    fn history_rows_table() {
        let failed_web = State {
            failed_revision: Some("web-v3".into()),
            failed_commit: Some(sha('c')),
            target_revision: Some("web-v2".into()),
            ..stable(RollingState::RolloutFailed, "web-v2", 'b')
        };
        let web_ok = stable(RollingState::RolloutSucceed, "web-v2", 'b');
        let api_ok = stable(RollingState::RolloutSucceed, "api-v1", 'b');
        // (case, commit, last applied, rollouts, REVISION, RESULT)
        type Case = (
            &'static str,
            AppCommit,
            Option<String>,
            Vec<RolloutView>,
            &'static str,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (
                "unknown to the cluster",
                commit('a', "first", &[]),
                None,
                vec![],
                "",
                "",
            ),
            (
                "the applied commit",
                commit('a', "first", &[]),
                Some(sha('a')),
                vec![],
                "",
                "running",
            ),
            (
                "applied and rolled out",
                commit('b', "second", &[]),
                Some(sha('b')),
                vec![rollout("web", Some(('b', "web-v2")), web_ok.clone())],
                "web-v2",
                "running; rolled-out web-v2",
            ),
            (
                "the stable commit of a failed rollout",
                commit('b', "second", &[]),
                Some(sha('d')),
                vec![rollout("web", Some(('d', "web-v2")), failed_web.clone())],
                "web-v2",
                "rolled-out web-v2",
            ),
            (
                "the failed commit",
                commit('c', "broken", &[]),
                Some(sha('d')),
                vec![rollout("web", Some(('d', "web-v2")), failed_web.clone())],
                "web-v3",
                "failed web-v3",
            ),
            (
                "an automatic revert, applied, its spec in effect",
                commit('d', "Revert shop: web-v3 failed", &['c']),
                Some(sha('d')),
                vec![rollout("web", Some(('d', "web-v2")), failed_web)],
                "web-v2",
                "running; revert of cccccccccccc",
            ),
            (
                "a manual rollback of two commits",
                commit('e', "Rollback shop to aaaaaaaaaaaa", &['d', 'c']),
                None,
                vec![],
                "",
                "revert of dddddddddddd cccccccccccc",
            ),
            (
                "two rollouts, same commit",
                commit('b', "second", &[]),
                None,
                vec![
                    rollout("api", None, api_ok),
                    rollout("web", Some(('b', "web-v2")), web_ok),
                ],
                "api-v1, web-v2",
                "rolled-out api-v1; rolled-out web-v2",
            ),
            (
                "a spec commit still rolling",
                commit('f', "web 4", &[]),
                None,
                vec![rollout(
                    "web",
                    Some(('f', "web-v4")),
                    stable(RollingState::RollingInBatches, "web-v2", 'b'),
                )],
                "web-v4",
                "",
            ),
        ];
        for (case, c, applied, rollouts, revision, result) in cases {
            let rows = history_rows(std::slice::from_ref(&c), applied.as_deref(), &rollouts);
            assert_eq!(rows.len(), 1, "{case}");
            let r = &rows[0];
            assert_eq!(r.commit, short(&c.sha), "{case}");
            assert_eq!(r.commit.len(), 12, "{case}");
            assert_eq!(r.date, "2023-11-14T22:13:20Z", "{case}");
            assert_eq!(r.author, "Ada Lovelace", "{case}");
            assert_eq!(r.revision, revision, "{case}: REVISION");
            assert_eq!(r.result, result, "{case}: RESULT");
            assert_eq!(r.summary, c.summary, "{case}");
        }
    }

    #[test]
    fn to_arg_parse_table() {
        let cases = [
            ("web-v1", ToArg::Revision("web-v1".into())),
            ("abc1234", ToArg::Commit("abc1234".into())),
            ("ABC1234DEF", ToArg::Commit("abc1234def".into())),
            ("abc123", ToArg::Revision("abc123".into())),
            ("deadbeefg", ToArg::Revision("deadbeefg".into())),
            (
                "0123456789012345678901234567890123456789",
                ToArg::Commit("0123456789012345678901234567890123456789".into()),
            ),
            (
                "01234567890123456789012345678901234567890",
                ToArg::Revision("01234567890123456789012345678901234567890".into()),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ToArg::parse(input), want, "{input}");
        }
    }

    /// The branch of the target-selection cases, newest first: `e` (other app), `d` (web
    /// 3), `c` (other app), `b` (web 2), `a` (web 1, the app's first commit), `0` (root).
    fn line() -> Vec<String> {
        "edcba0".chars().map(sha).collect()
    }

    fn app_commits() -> Vec<String> {
        "dba".chars().map(sha).collect()
    }

    /// What each commit renders: web-v3 at d, web-v2 at b (and c, e), web-v1 at a; the
    /// `api` component exists from b on.
    fn rendered(commit: &str) -> Option<BTreeMap<String, String>> {
        let web = match commit.chars().next()? {
            'e' | 'd' => "web-v3",
            'c' | 'b' => "web-v2",
            'a' => "web-v1",
            _ => return None,
        };
        let mut m = BTreeMap::from([("web".to_string(), web.to_string())]);
        if commit.starts_with(['b', 'c', 'd', 'e']) {
            m.insert("api".into(), "api-v1".into());
        }
        Some(m)
    }

    #[test]
    fn choose_target_table() {
        let line = line();
        let app_commits = app_commits();
        let known = vec!["web-v1".to_string(), "web-v2".into(), "web-v3".into()];
        let succeeded = vec![rollout(
            "web",
            Some(('d', "web-v3")),
            stable(RollingState::RolloutSucceed, "web-v3", 'd'),
        )];
        let rolling = vec![rollout(
            "web",
            Some(('d', "web-v3")),
            stable(RollingState::RollingInBatches, "web-v2", 'b'),
        )];
        let failed = vec![rollout(
            "web",
            Some(('d', "web-v3")),
            State {
                failed_revision: Some("web-v3".into()),
                failed_commit: Some(sha('d')),
                ..stable(RollingState::RolloutFailed, "web-v2", 'b')
            },
        )];
        let stable_off_branch = vec![rollout(
            "web",
            Some(('d', "web-v3")),
            stable(RollingState::RolloutSucceed, "web-v1", '9'),
        )];
        let two_unfinished = vec![
            rollout(
                "api",
                None,
                stable(RollingState::RolloutFailed, "api-v1", 'a'),
            ),
            rollout(
                "web",
                None,
                stable(RollingState::RollingInBatches, "web-v2", 'b'),
            ),
        ];
        let commit = |c: char, revision: Option<&str>, reason: &str| {
            Ok(Target {
                commit: sha(c),
                revision: revision.map(str::to_string),
                reason: reason.to_string(),
            })
        };
        let ambiguous_line: Vec<String> = vec![
            format!("abcdef1{}", "0".repeat(33)),
            format!("abcdef1{}", "1".repeat(33)),
        ];
        // (case, --to, --component, rollouts, line, app commits, want)
        type Case<'a> = (
            &'a str,
            Option<ToArg>,
            Option<&'a str>,
            &'a [RolloutView],
            &'a [String],
            &'a [String],
            Result<Target, TargetError>,
        );
        let cases: Vec<Case<'_>> = vec![
            (
                "--to an abbreviated commit",
                Some(ToArg::parse("bbbbbbb")),
                None,
                &succeeded,
                &line,
                &app_commits,
                commit('b', Some("api-v1, web-v2"), "--to bbbbbbb"),
            ),
            (
                "--to a full commit in upper case, one component",
                Some(ToArg::parse(&sha('A'))),
                Some("web"),
                &succeeded,
                &line,
                &app_commits,
                commit('a', Some("web-v1"), &format!("--to {}", sha('a'))),
            ),
            (
                "--to a commit of another app's change",
                Some(ToArg::parse("ccccccc")),
                Some("web"),
                &succeeded,
                &line,
                &app_commits,
                commit('c', Some("web-v2"), "--to ccccccc"),
            ),
            (
                "--to a commit that does not render",
                Some(ToArg::parse("0000000")),
                None,
                &[],
                &line,
                &app_commits,
                commit('0', None, "--to 0000000"),
            ),
            (
                "--to a commit off the branch",
                Some(ToArg::parse("9999999")),
                None,
                &succeeded,
                &line,
                &app_commits,
                Err(TargetError::CommitNotOnBranch {
                    given: "9999999".into(),
                    branch: "main".into(),
                    searched: 6,
                }),
            ),
            (
                "--to an ambiguous abbreviation",
                Some(ToArg::parse("abcdef1")),
                None,
                &[],
                &ambiguous_line,
                &[],
                Err(TargetError::AmbiguousCommit {
                    given: "abcdef1".into(),
                    matches: vec!["abcdef100000".into(), "abcdef111111".into()],
                }),
            ),
            (
                "--to the stable revision",
                Some(ToArg::parse("web-v2")),
                None,
                &rolling,
                &line,
                &app_commits,
                commit(
                    'b',
                    Some("web-v2"),
                    "the commit that last rolled out web-v2 (rollout web)",
                ),
            ),
            (
                "--to an older revision: the newest commit rendering it",
                Some(ToArg::parse("web-v1")),
                None,
                &succeeded,
                &line,
                &app_commits,
                commit('a', Some("web-v1"), "the newest commit that renders web-v1"),
            ),
            (
                "--to the stable revision whose commit left the branch",
                Some(ToArg::parse("web-v1")),
                None,
                &stable_off_branch,
                &line,
                &app_commits,
                commit('a', Some("web-v1"), "the newest commit that renders web-v1"),
            ),
            (
                "--to another component's revision",
                Some(ToArg::parse("api-v1")),
                Some("api"),
                &succeeded,
                &line,
                &app_commits,
                commit('d', Some("api-v1"), "the newest commit that renders api-v1"),
            ),
            (
                "--to a revision of the wrong component",
                Some(ToArg::parse("api-v1")),
                Some("web"),
                &succeeded,
                &line,
                &app_commits,
                Err(TargetError::UnknownRevision {
                    app: "shop".into(),
                    revision: "api-v1".into(),
                    component: Some("web".into()),
                    known: vec!["web-v1".into(), "web-v2".into(), "web-v3".into()],
                }),
            ),
            (
                "--to an unknown revision",
                Some(ToArg::parse("web-v9")),
                None,
                &rolling,
                &line,
                &app_commits,
                Err(TargetError::UnknownRevision {
                    app: "shop".into(),
                    revision: "web-v9".into(),
                    component: None,
                    known: vec![
                        "api-v1".into(),
                        "web-v1".into(),
                        "web-v2".into(),
                        "web-v3".into(),
                    ],
                }),
            ),
            (
                "a failed rollout: back to its stable commit",
                None,
                None,
                &failed,
                &line,
                &app_commits,
                commit(
                    'b',
                    Some("web-v2"),
                    "rollout web is rolloutFailed: back to the commit that last rolled out web-v2",
                ),
            ),
            (
                "a rolling rollout: back to its stable commit",
                None,
                Some("web"),
                &rolling,
                &line,
                &app_commits,
                commit(
                    'b',
                    Some("web-v2"),
                    "rollout web is rollingInBatches: back to the commit that last rolled out web-v2",
                ),
            ),
            (
                "succeeded: the state before the app's newest commit",
                None,
                None,
                &succeeded,
                &line,
                &app_commits,
                commit(
                    'c',
                    Some("api-v1, web-v2"),
                    "the state before dddddddddddd, the app's newest commit",
                ),
            ),
            (
                "no rollouts: the state before the app's newest commit",
                None,
                None,
                &[],
                &line,
                &app_commits,
                commit(
                    'c',
                    Some("api-v1, web-v2"),
                    "the state before dddddddddddd, the app's newest commit",
                ),
            ),
            (
                "unfinished rollouts, one chosen",
                None,
                Some("api"),
                &two_unfinished,
                &line,
                &app_commits,
                commit(
                    'a',
                    Some("api-v1"),
                    "rollout api is rolloutFailed: back to the commit that last rolled out api-v1",
                ),
            ),
            (
                "unfinished rollouts disagree",
                None,
                None,
                &two_unfinished,
                &line,
                &app_commits,
                Err(TargetError::AmbiguousRollouts {
                    app: "shop".into(),
                    commits: vec!["aaaaaaaaaaaa".into(), "bbbbbbbbbbbb".into()],
                }),
            ),
            (
                "an unknown component",
                None,
                Some("db"),
                &succeeded,
                &line,
                &app_commits,
                Err(TargetError::NoSuchComponent {
                    app: "shop".into(),
                    component: "db".into(),
                    rollouts: vec!["web".into()],
                }),
            ),
            (
                "no commit changed the app",
                None,
                None,
                &[],
                &line,
                &[],
                Err(TargetError::NoCommits {
                    app: "shop".into(),
                    branch: "main".into(),
                    searched: 6,
                }),
            ),
            (
                "the app's only commit is the root",
                None,
                None,
                &[],
                &line[5..],
                &line[5..],
                Err(TargetError::NoPrevious {
                    app: "shop".into(),
                    commit: "000000000000".into(),
                }),
            ),
        ];
        for (case, to, component, rollouts, line, app_commits, want) in cases {
            let input = TargetInput {
                app: "shop",
                branch: "main",
                to: to.as_ref(),
                component,
                rollouts,
                line,
                app_commits,
                rollgit_made: &[],
                known_revisions: &known,
            };
            let got = choose_target(&input, &mut |c| rendered(c));
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn no_target_never_undoes_a_rollgit_revert() {
        // d is rollgit's revert of a failed change: the newest commit by someone else is b.
        let (line, app_commits) = (line(), app_commits());
        let input = TargetInput {
            app: "shop",
            branch: "main",
            to: None,
            component: None,
            rollouts: &[],
            line: &line,
            app_commits: &app_commits,
            rollgit_made: &[sha('d')],
            known_revisions: &[],
        };
        let got = choose_target(&input, &mut |c| rendered(c));
        assert_eq!(
            got,
            Ok(Target {
                commit: sha('a'),
                revision: Some("web-v1".into()),
                reason: "the state before bbbbbbbbbbbb, the app's newest commit not made by rollgit (after it: rollgit's dddddddddddd)".into(),
            })
        );
        // Only rollgit's commits: the newest, as before.
        let only: Vec<String> = vec![sha('d')];
        let input = TargetInput {
            app_commits: &only,
            rollgit_made: &only,
            ..input
        };
        let got = choose_target(&input, &mut |c| rendered(c));
        assert_eq!(got.map(|t| t.commit), Ok(sha('c')));
    }

    #[test]
    fn target_errors_name_what_is_known() {
        let e = TargetError::UnknownRevision {
            app: "shop".into(),
            revision: "web-v9".into(),
            component: None,
            known: vec!["web-v1".into(), "web-v2".into()],
        };
        assert_eq!(
            e.to_string(),
            "no commit of app shop renders revision \"web-v9\"; known revisions: web-v1, web-v2"
        );
        let e = TargetError::NoSuchComponent {
            app: "shop".into(),
            component: "db".into(),
            rollouts: vec![],
        };
        assert_eq!(
            e.to_string(),
            "app shop has no rollout of component \"db\" (its rollouts: none)"
        );
    }

    #[test]
    fn rollback_message_has_the_trailers() {
        let target = Target {
            commit: sha('a'),
            revision: Some("web-v1".into()),
            reason: "the newest commit that renders web-v1".into(),
        };
        let reverted = vec![
            Undone {
                sha: sha('d'),
                summary: "web 3".to_string(),
            },
            Undone {
                sha: sha('b'),
                summary: "web 2".to_string(),
            },
        ];
        let m = rollback_message("shop", "apps/shop", &target, &reverted);
        let want = format!(
            "Rollback shop to aaaaaaaaaaaa (web-v1)

rollgit rollback returns apps/shop (app shop) to its state at commit {a} (web-v1): the newest commit that renders web-v1.

This reverts, in the app's directory, newest first:
  dddddddddddd web 3
  bbbbbbbbbbbb web 2

Reverts: {d}
Reverts: {b}
Rollgit-App: shop
Rollgit-Rollback: manual
",
            a = sha('a'),
            b = sha('b'),
            d = sha('d'),
        );
        assert_eq!(m, want);
        let one = rollback_message(
            "root",
            "",
            &Target {
                revision: None,
                ..target
            },
            &reverted[..1],
        );
        assert!(
            one.starts_with("Rollback root to aaaaaaaaaaaa\n\nrollgit rollback returns the repository (app root)"),
            "{one}"
        );
        assert!(
            one.contains("This reverts, in the app's directory:\n  dddddddddddd web 3\n"),
            "{one}"
        );
    }
}
