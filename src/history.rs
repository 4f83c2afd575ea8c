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

use crate::apply::APP_LABEL;
use crate::rollout::{rollout_resource, state_of};
use crate::rollout_cli::format_table;
use kube::api::{Api, DynamicObject, ListParams};
use rollgit_core::batch::State;
use rollgit_core::kubevela::RollingState;
use rollgit_source::write::{self, Identity, LogEntry, RevertRequest, WriteError, WriteOutcome};
use rollgit_source::{ObjectId, Repo, RepoSpec, SourceError};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// Default of `rollgit history --max`: rows shown.
pub const DEFAULT_MAX: usize = 50;
/// How many commits of the branch's first-parent line are looked through.
pub const MAX_WALK: usize = 1_000;
/// Hex digits of a short commit id.
pub const SHORT: usize = 12;
/// Fewest hex digits `--to` accepts as an abbreviated commit id.
pub const MIN_ABBREV: usize = 7;
/// How many times a push is redone when the remote keeps moving.
pub const MAX_PUSH_ATTEMPTS: u32 = 5;
/// The header of `rollgit history`.
pub const HISTORY_HEADER: [&str; 6] = ["COMMIT", "DATE", "AUTHOR", "REVISION", "RESULT", "SUMMARY"];

/// Errors of `rollgit history` and `rollgit rollback`.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// Reading the app's status object failed.
    #[error(
        "reading applications.rollgit.dev/{app} in namespace {namespace} (is rollgit installed in this cluster?)"
    )]
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
    /// Reads a Rollout object.
    pub fn from_object(o: &DynamicObject) -> Self {
        let spec = &o.data["spec"];
        let name = o
            .metadata
            .name
            .clone()
            .or_else(|| spec["component"].as_str().map(str::to_string))
            .unwrap_or_default();
        let status = o.data.get("status").cloned().unwrap_or(Value::Null);
        let record = status
            .get("record")
            .filter(|r| r.is_object())
            .map(|r| RecordView {
                state: r["state"].as_str().unwrap_or_default().to_string(),
                commit: r["commit"].as_str().map(str::to_string),
                message: r["message"].as_str().unwrap_or_default().to_string(),
            });
        RolloutView {
            name,
            spec_commit: spec["commit"].as_str().map(str::to_string),
            spec_target: spec["targetRevision"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
            state: state_of(&status),
            record,
        }
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

/// The first [`SHORT`] hex digits of a commit id.
pub fn short(sha: &str) -> &str {
    sha.get(..SHORT).unwrap_or(sha)
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
        if same_commit(r.spec_commit.as_deref(), sha) {
            add(Some(&r.spec_target));
        }
    }
    out
}

/// The RESULT of a commit: `running` (the app's last applied commit), `rolled-out REV` (a
/// Rollout's stable commit), `failed REV` (a Rollout's failed commit), `revert of SHAS` (a
/// commit with `Reverts:` trailers); several joined by `; `, blank for none.
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

/// The rows laid out as a table under [`HISTORY_HEADER`].
pub fn history_table(rows: &[HistoryRow]) -> String {
    let mut table: Vec<Vec<String>> = vec![HISTORY_HEADER.iter().map(|s| s.to_string()).collect()];
    for r in rows {
        table.push(vec![
            r.commit.clone(),
            r.date.clone(),
            r.author.clone(),
            r.revision.clone(),
            r.result.clone(),
            r.summary.clone(),
        ]);
    }
    format_table(&table)
}

/// A few lines per Rollout: its state, target and stable revisions, and its last rollback
/// with the reason (and what the record stage wrote to Git).
pub fn rollout_summary(rollouts: &[RolloutView]) -> String {
    let mut out = String::new();
    for r in rollouts {
        let s = &r.state;
        let target = s
            .target_revision
            .as_deref()
            .filter(|t| !t.is_empty())
            .unwrap_or(&r.spec_target);
        out.push_str(&format!(
            "rollout {}: {}, target {}, stable {}",
            r.name,
            s.rolling_state.as_str(),
            if target.is_empty() { "-" } else { target },
            s.stable_revision.as_deref().unwrap_or("-"),
        ));
        if let Some(f) = &s.failed_revision {
            out.push_str(&format!(", failed {f}"));
        }
        out.push('\n');
        match &s.rollback {
            Some(rb) => {
                out.push_str(&format!(
                    "  last rollback: {} -> {} ({}): {}\n",
                    rb.from,
                    rb.to,
                    if rb.done { "done" } else { "in progress" },
                    rb.reason.trim()
                ));
                if let Some(rec) = &r.record {
                    let commit = rec
                        .commit
                        .as_deref()
                        .map(|c| format!(" {}", short(c)))
                        .unwrap_or_default();
                    out.push_str(&format!(
                        "  recorded in Git: {}{commit}: {}\n",
                        rec.state, rec.message
                    ));
                }
            }
            None => out.push_str("  no rollback\n"),
        }
    }
    out
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
///   the parent of the newest commit that changed the app.
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
            let Some(newest) = input.app_commits.first() else {
                return Err(TargetError::NoCommits {
                    app: input.app.to_string(),
                    branch: input.branch.to_string(),
                    searched: input.line.len(),
                });
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
                    reason: format!(
                        "the state before {}, the app's newest commit",
                        short(newest)
                    ),
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
pub fn rollback_message(
    app: &str,
    path: &str,
    target: &Target,
    reverted: &[(String, String)],
) -> String {
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
    let mut m = format!("Rollback {app} to {}{revision}\n\n", short(&target.commit));
    m.push_str(&format!(
        "rollgit rollback returns {dir} (app {app}) to its state at commit {}{revision}: {}.\n\n",
        target.commit, target.reason
    ));
    m.push_str(if reverted.len() == 1 {
        "This reverts, in the app's directory:\n"
    } else {
        "This reverts, in the app's directory, newest first:\n"
    });
    for (sha, summary) in reverted {
        m.push_str(&format!("  {} {summary}\n", short(sha)));
    }
    m.push('\n');
    for (sha, _) in reverted {
        m.push_str(&format!("Reverts: {sha}\n"));
    }
    m.push_str(&format!("Rollgit-App: {app}\n"));
    m.push_str("Rollgit-Rollback: manual\n");
    m
}

/// Where an app's repository is read from and written to.
#[derive(Debug, Clone)]
pub struct Source {
    /// The repository (with its credentials).
    pub spec: RepoSpec,
    /// The mirror cache (`<state_dir>/repos`).
    pub cache: PathBuf,
    /// Author and committer of the rollback commit.
    pub identity: Identity,
    /// The configured app roots (to tell a nested app's files from the app's); empty: the
    /// app's directory holds only the app.
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
        &crate::apply::status::application_resource(),
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
    let rollouts: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &rollout_resource());
    let list = rollouts
        .list(&ListParams::default().labels(&format!("{APP_LABEL}={app}")))
        .await
        .map_err(|source| HistoryError::ListRollouts {
            app: app.to_string(),
            namespace: namespace.to_string(),
            source,
        })?;
    view.rollouts = list.items.iter().map(RolloutView::from_object).collect();
    view.rollouts.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(view)
}

/// The branch fetched and opened: its head, first-parent line and the app's commits.
struct Branch {
    repo: Repo,
    line: Vec<String>,
    app_commits: Vec<String>,
}

fn prefixes(path: &str) -> Vec<String> {
    vec![path.to_string()]
}

fn open_branch(source: &Source, path: &str) -> Result<Branch, HistoryError> {
    let fetched = rollgit_source::fetch_for_write(&source.spec, &source.cache)?;
    let repo = Repo::open(&source.spec, &source.cache)?;
    let line = repo
        .first_parent_line(fetched.head, MAX_WALK)?
        .iter()
        .map(ToString::to_string)
        .collect();
    let app_commits = repo
        .commits_touching(None, fetched.head, &prefixes(path), MAX_WALK)?
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(Branch {
        repo,
        line,
        app_commits,
    })
}

fn parse_id(s: &str) -> Option<ObjectId> {
    ObjectId::from_hex(s.as_bytes()).ok()
}

/// `rollgit history`: the table of the app's commits (at most `max`, newest first) and the
/// summary of its Rollouts.
pub async fn history(
    client: &kube::Client,
    namespace: &str,
    app: &str,
    source: &Source,
    max: usize,
) -> Result<String, HistoryError> {
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
    let mut out = String::new();
    if commits.is_empty() {
        out.push_str(&format!(
            "no commit in the last {MAX_WALK} commits of branch {} changed {}\n",
            source.spec.branch,
            if view.path.is_empty() {
                "the repository"
            } else {
                &view.path
            }
        ));
    } else {
        out.push_str(&history_table(&history_rows(
            &commits,
            view.last_applied.as_deref(),
            &view.rollouts,
        )));
    }
    if !view.rollouts.is_empty() {
        out.push('\n');
        out.push_str(&rollout_summary(&view.rollouts));
    }
    Ok(out)
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
        reverted: Vec<(String, String)>,
        commit: String,
        branch: String,
    },
    /// `--dry-run`: what would be reverted, and the diff.
    DryRun {
        target: Target,
        reverted: Vec<(String, String)>,
        diff: String,
    },
    /// The app's directory already has the target's content.
    NothingToDo { target: Target, path: String },
}

/// What `rollgit rollback` prints for an outcome.
pub fn outcome_text(o: &RollbackOutcome) -> String {
    let target_text = |t: &Target| {
        format!(
            "{}{}",
            short(&t.commit),
            t.revision
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default()
        )
    };
    let list = |reverted: &[(String, String)]| {
        reverted
            .iter()
            .map(|(sha, summary)| format!("  {} {summary}\n", short(sha)))
            .collect::<String>()
    };
    match o {
        RollbackOutcome::Pushed {
            target,
            reverted,
            commit,
            branch,
        } => format!(
            "Rolled back to {} ({}).\nReverted:\n{}Pushed {} to branch {branch}; rollgit applies it on its next sync (in batches where the app has a rollout).\n",
            target_text(target),
            target.reason,
            list(reverted),
            short(commit),
        ),
        RollbackOutcome::DryRun {
            target,
            reverted,
            diff,
        } => {
            let mut s = format!(
                "Would roll back to {} ({}), reverting:\n{}\n",
                target_text(target),
                target.reason,
                list(reverted)
            );
            s.push_str(diff);
            if !diff.ends_with('\n') {
                s.push('\n');
            }
            s.push_str("(dry run: nothing was committed or pushed)\n");
            s
        }
        RollbackOutcome::NothingToDo { target, path } => format!(
            "Nothing to revert: {} already has the content of {}.\n",
            if path.is_empty() {
                "the repository"
            } else {
                path
            },
            target_text(target)
        ),
    }
}

/// The app's files at `commit`, as the daemon reads them (a nested app's files left out).
fn app_files(
    repo: &Repo,
    commit: ObjectId,
    path: &str,
    roots: &[String],
) -> Result<Vec<rollgit_render::SourceFile>, SourceError> {
    let files = repo.read_files(commit, path)?;
    let apps = if roots.is_empty() {
        Vec::new()
    } else {
        rollgit_render::discover_apps(&repo.list_files(commit)?, roots)
    };
    let me = apps.iter().find(|a| a.dir == path).cloned();
    Ok(files
        .into_iter()
        .filter(|(p, _)| match &me {
            Some(me) => rollgit_render::belongs_to(p, me, &apps),
            None => rollgit_render::is_manifest_path(p),
        })
        .map(|(p, c)| rollgit_render::SourceFile::new(p, c))
        .collect())
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
    let revision_state = crate::daemon::revision_state(client, namespace, &app).await;
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
            let files = app_files(&b.repo, id, &path, &src.roots).ok()?;
            let rendered = rollgit_render::render_app(
                &app,
                &src.namespace,
                &files,
                &rollgit_render::NoRefs,
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
            branch: &src.spec.branch,
            to: opts.to.as_ref(),
            component: opts.component.as_deref(),
            rollouts: &view.rollouts,
            line: &b.line,
            app_commits: &b.app_commits,
            known_revisions: &known,
        };
        let target = choose_target(&input, &mut revisions_at)?;
        let to = parse_id(&target.commit);
        let head = b.line.first().and_then(|h| parse_id(h));
        let commits = match (to, head) {
            (Some(to), Some(head)) => {
                b.repo
                    .commits_touching(Some(to), head, &prefixes(&path), MAX_WALK)?
            }
            _ => Vec::new(),
        };
        if commits.is_empty() {
            return Ok(RollbackOutcome::NothingToDo { target, path });
        }
        let mut reverted = Vec::new();
        for c in &commits {
            let info = b.repo.commit_info(*c)?;
            reverted.push((info.sha, info.summary));
        }
        let req = RevertRequest {
            commits,
            message: rollback_message(&app, &path, &target, &reverted),
            identity: src.identity.clone(),
            paths: (!path.is_empty()).then(|| vec![path.clone()]),
            max_attempts: MAX_PUSH_ATTEMPTS,
        };
        let outcome = if opts.dry_run {
            write::revert_dry_run(&src.spec, &src.cache, &req)?
        } else {
            write::revert(&src.spec, &src.cache, &req)?
        };
        Ok(match outcome {
            WriteOutcome::NothingToDo => RollbackOutcome::NothingToDo { target, path },
            WriteOutcome::DryRun { diff, .. } => RollbackOutcome::DryRun {
                target,
                reverted,
                diff,
            },
            WriteOutcome::Pushed { commit, .. } => RollbackOutcome::Pushed {
                target,
                reverted,
                commit: commit.to_string(),
                branch: src.spec.branch.clone(),
            },
        })
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollgit_core::batch::Rollback;

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
    fn history_table_lays_out_the_rows() {
        let rows = history_rows(
            &[
                commit('b', "web 2", &['a']),
                AppCommit {
                    author: "bot".into(),
                    ..commit('a', "web 1", &[])
                },
            ],
            Some(&sha('b')),
            &[],
        );
        let text = history_table(&rows);
        let want = "\
COMMIT         DATE                   AUTHOR         REVISION   RESULT                            SUMMARY
bbbbbbbbbbbb   2023-11-14T22:13:20Z   Ada Lovelace              running; revert of aaaaaaaaaaaa   web 2
aaaaaaaaaaaa   2023-11-14T22:13:20Z   bot                                                         web 1
";
        assert_eq!(text, want);
    }

    #[test]
    fn rollout_summary_table() {
        let rolled_back = State {
            target_revision: Some("web-v2".into()),
            failed_revision: Some("web-v3".into()),
            rollback: Some(Rollback {
                from: "web-v3".into(),
                to: "web-v2".into(),
                reason: "batch 1 was not ready within 3s\n".into(),
                done: true,
            }),
            ..stable(RollingState::RolloutSucceed, "web-v2", 'b')
        };
        let cases: Vec<(&str, RolloutView, &str)> = vec![
            (
                "never rolled back",
                rollout(
                    "web",
                    Some(('b', "web-v2")),
                    stable(RollingState::RolloutSucceed, "web-v2", 'b'),
                ),
                "rollout web: rolloutSucceed, target web-v2, stable web-v2\n  no rollback\n",
            ),
            (
                "before the first rollout",
                rollout("web", None, State::default()),
                "rollout web: locatingTargetApp, target -, stable -\n  no rollback\n",
            ),
            (
                "rolled back, recorded",
                RolloutView {
                    record: Some(RecordView {
                        state: "Reverted".into(),
                        commit: Some(sha('d')),
                        message: "rollback written to Git as dddddddddddd".into(),
                    }),
                    ..rollout("web", Some(('c', "web-v3")), rolled_back.clone())
                },
                "rollout web: rolloutSucceed, target web-v2, stable web-v2, failed web-v3\n  \
                 last rollback: web-v3 -> web-v2 (done): batch 1 was not ready within 3s\n  \
                 recorded in Git: Reverted dddddddddddd: rollback written to Git as dddddddddddd\n",
            ),
            (
                "rolling back",
                rollout(
                    "web",
                    Some(('c', "web-v3")),
                    State {
                        rollback: rolled_back
                            .rollback
                            .clone()
                            .map(|r| Rollback { done: false, ..r }),
                        ..rolled_back.clone()
                    },
                ),
                "rollout web: rolloutSucceed, target web-v2, stable web-v2, failed web-v3\n  \
                 last rollback: web-v3 -> web-v2 (in progress): batch 1 was not ready within 3s\n",
            ),
        ];
        for (case, r, want) in cases {
            assert_eq!(rollout_summary(&[r]), want, "{case}");
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
                known_revisions: &known,
            };
            let got = choose_target(&input, &mut |c| rendered(c));
            assert_eq!(got, want, "{case}");
        }
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
            (sha('d'), "web 3".to_string()),
            (sha('b'), "web 2".to_string()),
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

    #[test]
    fn outcome_text_table() {
        let target = Target {
            commit: sha('a'),
            revision: Some("web-v1".into()),
            reason: "--to aaaaaaa".into(),
        };
        let reverted = vec![(sha('b'), "web 2".to_string())];
        let cases = [
            (
                "pushed",
                RollbackOutcome::Pushed {
                    target: target.clone(),
                    reverted: reverted.clone(),
                    commit: sha('f'),
                    branch: "main".into(),
                },
                "Rolled back to aaaaaaaaaaaa (web-v1) (--to aaaaaaa).\nReverted:\n  bbbbbbbbbbbb web 2\n\
                 Pushed ffffffffffff to branch main; rollgit applies it on its next sync (in batches where the app has a rollout).\n",
            ),
            (
                "dry run",
                RollbackOutcome::DryRun {
                    target: target.clone(),
                    reverted,
                    diff: "diff --git a/x b/x\n-a\n+b".into(),
                },
                "Would roll back to aaaaaaaaaaaa (web-v1) (--to aaaaaaa), reverting:\n  bbbbbbbbbbbb web 2\n\n\
                 diff --git a/x b/x\n-a\n+b\n(dry run: nothing was committed or pushed)\n",
            ),
            (
                "nothing to do",
                RollbackOutcome::NothingToDo {
                    target,
                    path: "apps/shop".into(),
                },
                "Nothing to revert: apps/shop already has the content of aaaaaaaaaaaa (web-v1).\n",
            ),
        ];
        for (case, o, want) in cases {
            assert_eq!(outcome_text(&o), want, "{case}");
        }
    }
}
