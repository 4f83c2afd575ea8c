//! The promotion state machine of one pipeline step (stage N → stage N+1), pure: no I/O, no
//! clock (`now` is an argument), no randomness. The shell observes the stage's app status,
//! its Git history and the forge, calls [`decide`], performs the [`Action`]s, then records the
//! outcome with [`opened`], [`conflicted`] or [`nothing_to_promote`], and writes the record.
//!
//! A stage is promoted when, at its deployed commit:
//!
//! 1. the apply succeeded and every rollout of the app in it succeeded (the app is settled
//!    and running), and it is healthy;
//! 2. it stayed so for `soak` (measured from the first pass that saw it so, with the injected
//!    clock), unless the promotion was asked for by hand (`rollgit promote-stage`);
//! 3. no automatic revert happened since: when the newest change of the stage's directory is
//!    a revert rollgit made after a failed rollout, promotion out of the stage is **held**
//!    and its open pull request closed with a comment, until a new commit reaches the stage;
//! 4. its changes since the last promotion replay without conflict ([`conflicted`]: no pull
//!    request, the files are reported, until a new commit).
//!
//! A newer deployed commit supersedes an open pull request: the new one is opened and the old
//! one closed with a comment naming it.

use crate::k8s::crds::{PromotionStatus, PullRequestStatus};
use k8s_openapi::jiff::Timestamp;

/// What the shell saw of the stage it promotes from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StageView {
    /// The commit whose objects are in the cluster (`status.lastAppliedCommit`).
    pub deployed: Option<String>,
    /// The apply of the last commit succeeded and no rollout of the app is running or failed.
    pub settled: bool,
    /// Every object of the app is healthy.
    pub healthy: bool,
    /// The newest change of the stage's directory is an automatic revert (a failed rollout).
    pub reverted: bool,
}

/// What the forge says of the recorded pull request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrState {
    /// Open; `mergeable` as the forge reports it (`None`: not computed yet).
    Open { mergeable: Option<bool> },
    /// Merged.
    Merged,
    /// Closed without merging.
    Closed,
}

/// Everything [`decide`] reads.
#[derive(Debug, Clone, Default)]
pub struct Input {
    /// The stage's soak, in seconds.
    pub soak_secs: u64,
    /// Merge pull requests into the next stage when mergeable.
    pub auto_merge: bool,
    /// The stage.
    pub stage: StageView,
    /// The forge's view of the recorded pull request (`None`: none recorded, or unknown).
    pub pr: Option<PrState>,
    /// `rollgit promote-stage` asked to promote now (soak skipped).
    pub manual: bool,
}

/// What the shell does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Replay the stage's changes since `base` up to `source` on the next stage, push the
    /// branch and open (or find) the pull request; then close `supersedes` with a comment.
    Open {
        /// The stage's commit to promote.
        source: String,
        /// The stage's commit of the last promotion.
        base: String,
        /// Asked for by hand.
        manual: bool,
        /// The open pull request the new one replaces.
        supersedes: Option<PullRequestStatus>,
    },
    /// Comment on the pull request and close it.
    Close {
        /// The pull request.
        pr: PullRequestStatus,
        /// The comment.
        comment: String,
    },
    /// Merge the pull request (`autoMerge`, and the forge says it is mergeable).
    Merge {
        /// The pull request.
        pr: PullRequestStatus,
    },
}

/// The record's states.
pub mod state {
    /// Not eligible yet (see the message).
    pub const WAITING: &str = "waiting";
    /// Healthy, waiting for the soak to pass.
    pub const SOAKING: &str = "soaking";
    /// A pull request is open.
    pub const OPEN: &str = "open";
    /// An automatic revert holds promotion out of the stage.
    pub const HELD: &str = "held";
    /// The replay conflicts; no pull request.
    pub const CONFLICT: &str = "conflict";
    /// The next stage has everything the stage has.
    pub const PROMOTED: &str = "promoted";
    /// A pull request is being opened.
    pub const OPENING: &str = "opening";
}

fn short(sha: &str) -> &str {
    sha.get(..7).unwrap_or(sha)
}

/// The branch rollgit pushes for a promotion: `rollgit/promote/<app>/<to-stage>/<short-sha>`.
///
/// ```
/// assert_eq!(
///     rollgit::promote::core::branch_name("shop", "staging", "0123456789abcdef"),
///     "rollgit/promote/shop/staging/0123456"
/// );
/// ```
pub fn branch_name(app: &str, to: &str, source: &str) -> String {
    format!("rollgit/promote/{app}/{to}/{}", short(source))
}

fn parse_time(s: &str) -> Option<i64> {
    s.parse::<Timestamp>().ok().map(|t| t.as_second())
}

fn rfc3339(secs: i64) -> String {
    Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// The next record and the actions, from the last record, what the shell observed and `now`
/// (seconds since the Unix epoch).
pub fn decide(rec: &PromotionStatus, input: &Input, now: i64) -> (PromotionStatus, Vec<Action>) {
    let mut r = rec.clone();
    let mut actions = Vec::new();
    // What became of the recorded pull request.
    if let Some(pr) = r.pull_request.clone() {
        match input.pr {
            Some(PrState::Merged) => {
                r.promoted_commit = Some(pr.source_commit.clone());
                r.pull_request = None;
                r.state = state::PROMOTED.into();
                r.message = format!("#{} merged", pr.number);
            }
            Some(PrState::Closed) => {
                r.declined_commit = Some(pr.source_commit.clone());
                r.pull_request = None;
                r.state = state::WAITING.into();
                r.message = format!(
                    "#{} was closed without merging; waits for a new commit",
                    pr.number
                );
            }
            Some(PrState::Open { .. }) | None => {}
        }
    }
    let Some(deployed) = input.stage.deployed.clone() else {
        r.state = state::WAITING.into();
        r.message = format!("{} has no deployed commit yet", r.from);
        return (r, actions);
    };
    let Some(base) = r.promoted_commit.clone() else {
        // The first pass: what is deployed now is where promotion starts from.
        r.promoted_commit = Some(deployed.clone());
        r.state = state::PROMOTED.into();
        r.message = format!("baseline {}", short(&deployed));
        return (r, actions);
    };
    if input.stage.reverted {
        r.healthy_since = None;
        r.source_commit = Some(deployed.clone());
        r.state = state::HELD.into();
        r.message = format!(
            "held: an automatic revert ({}) in {}; waits for a new commit",
            short(&deployed),
            r.from
        );
        if let Some(pr) = r.pull_request.take() {
            actions.push(Action::Close {
                comment: format!(
                    "rollgit: promotion out of **{}** is held: a rollout there failed and was \
                     reverted automatically ({}). This pull request is closed; a new one is \
                     opened when a new commit succeeds in {}.",
                    r.from, deployed, r.from
                ),
                pr,
            });
        }
        return (r, actions);
    }
    if !input.stage.settled || !input.stage.healthy {
        r.healthy_since = None;
        r.source_commit = Some(deployed.clone());
        if r.pull_request.is_none() {
            r.state = state::WAITING.into();
        }
        r.message = if !input.stage.settled {
            format!("{} is applying or rolling out {}", r.from, short(&deployed))
        } else {
            format!("{} is not healthy at {}", r.from, short(&deployed))
        };
        return (r, actions);
    }
    if let Some(pr) = &r.pull_request
        && pr.source_commit == deployed
    {
        r.state = state::OPEN.into();
        r.message = format!("#{} waits for review", pr.number);
        if input.auto_merge
            && matches!(
                input.pr,
                Some(PrState::Open {
                    mergeable: Some(true)
                })
            )
        {
            r.message = format!("#{} is mergeable: merging", pr.number);
            actions.push(Action::Merge { pr: pr.clone() });
        }
        return (r, actions);
    }
    if base == deployed {
        if r.pull_request.is_none() {
            r.state = state::PROMOTED.into();
            r.message = format!("{} has everything {} has", r.to, r.from);
        }
        return (r, actions);
    }
    if !input.manual {
        if r.declined_commit.as_deref() == Some(&deployed) {
            r.state = state::WAITING.into();
            return (r, actions);
        }
        if r.conflict_commit.as_deref() == Some(&deployed) {
            r.state = state::CONFLICT.into();
            return (r, actions);
        }
    }
    if r.source_commit.as_deref() != Some(&deployed) || r.healthy_since.is_none() {
        r.source_commit = Some(deployed.clone());
        r.healthy_since = Some(rfc3339(now));
    }
    let since = r
        .healthy_since
        .as_deref()
        .and_then(parse_time)
        .unwrap_or(now);
    let until = since.saturating_add(i64::try_from(input.soak_secs).unwrap_or(i64::MAX));
    if now < until && !input.manual {
        r.state = state::SOAKING.into();
        r.message = format!(
            "healthy at {} since {}; soaks until {}",
            short(&deployed),
            rfc3339(since),
            rfc3339(until)
        );
        return (r, actions);
    }
    r.state = state::OPENING.into();
    r.message = format!("opening a pull request for {}", short(&deployed));
    actions.push(Action::Open {
        source: deployed,
        base,
        manual: input.manual,
        supersedes: r.pull_request.clone(),
    });
    (r, actions)
}

/// The record after the pull request `pr` was opened (or found) for `Action::Open`.
pub fn opened(rec: &PromotionStatus, pr: PullRequestStatus) -> PromotionStatus {
    let mut r = rec.clone();
    r.state = state::OPEN.into();
    r.message = format!("#{} waits for review", pr.number);
    r.conflict_commit = None;
    r.conflicts.clear();
    r.pull_request = Some(pr);
    r
}

/// The record after the replay of `source` conflicted on `paths`.
pub fn conflicted(rec: &PromotionStatus, source: &str, paths: &[String]) -> PromotionStatus {
    let mut r = rec.clone();
    r.state = state::CONFLICT.into();
    r.message = format!(
        "the changes of {} conflict with {} in {}; resolve them in Git",
        short(source),
        r.to,
        paths.join(", ")
    );
    r.conflict_commit = Some(source.to_string());
    r.conflicts = paths.to_vec();
    r
}

/// The record when the next stage already has everything `source` would carry.
pub fn nothing_to_promote(rec: &PromotionStatus, source: &str) -> PromotionStatus {
    let mut r = rec.clone();
    r.state = state::PROMOTED.into();
    r.message = format!("{} already has the changes of {}", r.to, short(source));
    r.promoted_commit = Some(source.to_string());
    r
}

/// The comment on a pull request a newer one replaces.
pub fn superseded_comment(new: &PullRequestStatus) -> String {
    format!(
        "rollgit: superseded by #{} ({}), which carries the newer commit {}.",
        new.number, new.url, new.source_commit
    )
}

/// What the body of a promotion pull request says.
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    /// The pipeline.
    pub app: String,
    /// From and to stage.
    pub from: String,
    /// To stage.
    pub to: String,
    /// The stage's commit, and its summary line.
    pub commit: String,
    /// Its summary.
    pub summary: String,
    /// A link to the commit, when the forge has one.
    pub commit_url: Option<String>,
    /// Changed files (relative to the next stage's directory) and how.
    pub files: Vec<(String, &'static str)>,
    /// Images from → to (name, from, to).
    pub images: Vec<(String, String, String)>,
    /// Each rollout (component, result, duration in seconds when known).
    pub rollouts: Vec<(String, String, Option<u64>)>,
    /// The stage's health line (`healthy since ... (soak 10m)`).
    pub health: String,
    /// Opened by hand.
    pub manual: bool,
    /// Only images are carried.
    pub images_only: bool,
}

/// The pull request's title.
pub fn title(e: &Evidence) -> String {
    format!(
        "Promote {} to {}: {} {}",
        e.app,
        e.to,
        short(&e.commit),
        e.summary
    )
}

/// The pull request's body (Markdown).
pub fn body(e: &Evidence) -> String {
    let mut b = format!(
        "rollgit promotes **{}** from **{}** to **{}**{}.\n\n",
        e.app,
        e.from,
        e.to,
        if e.images_only {
            " (container images only)"
        } else {
            ""
        }
    );
    b.push_str("### Files changed\n\n");
    for (path, kind) in &e.files {
        b.push_str(&format!("- `{path}` ({kind})\n"));
    }
    if !e.images.is_empty() {
        b.push_str("\n### Images\n\n");
        for (name, from, to) in &e.images {
            b.push_str(&format!("- `{name}`: `{from}` → `{to}`\n"));
        }
    }
    b.push_str(&format!("\n### Evidence from {}\n\n", e.from));
    match &e.commit_url {
        Some(u) => b.push_str(&format!("- commit: [`{}`]({u}) {}\n", e.commit, e.summary)),
        None => b.push_str(&format!("- commit: `{}` {}\n", e.commit, e.summary)),
    }
    b.push_str("- apply: succeeded\n");
    if e.rollouts.is_empty() {
        b.push_str("- rollouts: none (plain apply)\n");
    }
    for (name, result, secs) in &e.rollouts {
        match secs {
            Some(s) => b.push_str(&format!("- rollout `{name}`: {result} in {s}s\n")),
            None => b.push_str(&format!("- rollout `{name}`: {result}\n")),
        }
    }
    b.push_str(&format!("- health: {}\n", e.health));
    if e.manual {
        b.push_str("- opened by `rollgit promote-stage` (soak skipped)\n");
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";
    const T0: i64 = 1_700_000_000;

    fn rec() -> PromotionStatus {
        PromotionStatus {
            pipeline: "shop".into(),
            from: "dev".into(),
            to: "staging".into(),
            promoted_commit: Some(A.into()),
            ..Default::default()
        }
    }

    fn good(deployed: &str) -> StageView {
        StageView {
            deployed: Some(deployed.into()),
            settled: true,
            healthy: true,
            reverted: false,
        }
    }

    fn pr(n: u64, source: &str) -> PullRequestStatus {
        PullRequestStatus {
            number: n,
            url: format!("https://forge/pr/{n}"),
            branch: branch_name("shop", "staging", source),
            source_commit: source.into(),
            manual: false,
        }
    }

    struct Row {
        case: &'static str,
        rec: PromotionStatus,
        input: Input,
        now: i64,
        state: &'static str,
        actions: Vec<Action>,
    }

    #[test]
    fn decide_table() {
        let soaking = PromotionStatus {
            source_commit: Some(B.into()),
            healthy_since: Some(rfc3339(T0)),
            ..rec()
        };
        let with_pr = PromotionStatus {
            pull_request: Some(pr(7, B)),
            state: state::OPEN.into(),
            ..soaking.clone()
        };
        let input = |stage: StageView| Input {
            soak_secs: 600,
            stage,
            ..Default::default()
        };
        let rows = vec![
            Row {
                case: "first pass records the baseline",
                rec: PromotionStatus {
                    promoted_commit: None,
                    ..rec()
                },
                input: input(good(A)),
                now: T0,
                state: state::PROMOTED,
                actions: vec![],
            },
            Row {
                case: "nothing new since the last promotion",
                rec: rec(),
                input: input(good(A)),
                now: T0,
                state: state::PROMOTED,
                actions: vec![],
            },
            Row {
                case: "a rollout still running waits",
                rec: rec(),
                input: input(StageView {
                    settled: false,
                    ..good(B)
                }),
                now: T0,
                state: state::WAITING,
                actions: vec![],
            },
            Row {
                case: "unhealthy waits",
                rec: rec(),
                input: input(StageView {
                    healthy: false,
                    ..good(B)
                }),
                now: T0,
                state: state::WAITING,
                actions: vec![],
            },
            Row {
                case: "a new healthy commit starts its soak",
                rec: rec(),
                input: input(good(B)),
                now: T0,
                state: state::SOAKING,
                actions: vec![],
            },
            Row {
                case: "one second before the soak ends it still soaks",
                rec: soaking.clone(),
                input: input(good(B)),
                now: T0 + 599,
                state: state::SOAKING,
                actions: vec![],
            },
            Row {
                case: "the soak passed: open",
                rec: soaking.clone(),
                input: input(good(B)),
                now: T0 + 600,
                state: state::OPENING,
                actions: vec![Action::Open {
                    source: B.into(),
                    base: A.into(),
                    manual: false,
                    supersedes: None,
                }],
            },
            Row {
                case: "by hand: open without soaking",
                rec: rec(),
                input: Input {
                    manual: true,
                    ..input(good(B))
                },
                now: T0,
                state: state::OPENING,
                actions: vec![Action::Open {
                    source: B.into(),
                    base: A.into(),
                    manual: true,
                    supersedes: None,
                }],
            },
            Row {
                case: "an open pull request for the deployed commit waits for review",
                rec: with_pr.clone(),
                input: Input {
                    pr: Some(PrState::Open {
                        mergeable: Some(true),
                    }),
                    ..input(good(B))
                },
                now: T0 + 9999,
                state: state::OPEN,
                actions: vec![],
            },
            Row {
                case: "autoMerge merges once the forge says mergeable",
                rec: with_pr.clone(),
                input: Input {
                    auto_merge: true,
                    pr: Some(PrState::Open {
                        mergeable: Some(true),
                    }),
                    ..input(good(B))
                },
                now: T0,
                state: state::OPEN,
                actions: vec![Action::Merge { pr: pr(7, B) }],
            },
            Row {
                case: "autoMerge waits while checks run",
                rec: with_pr.clone(),
                input: Input {
                    auto_merge: true,
                    pr: Some(PrState::Open { mergeable: None }),
                    ..input(good(B))
                },
                now: T0,
                state: state::OPEN,
                actions: vec![],
            },
            Row {
                case: "merged: the commit is promoted",
                rec: with_pr.clone(),
                input: Input {
                    pr: Some(PrState::Merged),
                    ..input(good(B))
                },
                now: T0,
                state: state::PROMOTED,
                actions: vec![],
            },
            Row {
                case: "closed by a person: not opened again for the same commit",
                rec: with_pr.clone(),
                input: Input {
                    pr: Some(PrState::Closed),
                    ..input(good(B))
                },
                now: T0 + 9999,
                state: state::WAITING,
                actions: vec![],
            },
            Row {
                case: "a revert holds and closes the open pull request",
                rec: with_pr.clone(),
                input: Input {
                    pr: Some(PrState::Open { mergeable: None }),
                    ..input(StageView {
                        reverted: true,
                        ..good(C)
                    })
                },
                now: T0,
                state: state::HELD,
                actions: vec![Action::Close {
                    pr: pr(7, B),
                    comment: format!(
                        "rollgit: promotion out of **dev** is held: a rollout there failed and was reverted automatically ({C}). This pull request is closed; a new one is opened when a new commit succeeds in dev."
                    ),
                }],
            },
            Row {
                case: "a newer commit supersedes the open pull request after its soak",
                rec: PromotionStatus {
                    source_commit: Some(C.into()),
                    healthy_since: Some(rfc3339(T0)),
                    ..with_pr.clone()
                },
                input: Input {
                    pr: Some(PrState::Open { mergeable: None }),
                    ..input(good(C))
                },
                now: T0 + 600,
                state: state::OPENING,
                actions: vec![Action::Open {
                    source: C.into(),
                    base: A.into(),
                    manual: false,
                    supersedes: Some(pr(7, B)),
                }],
            },
            Row {
                case: "a conflict is not retried for the same commit",
                rec: PromotionStatus {
                    conflict_commit: Some(B.into()),
                    ..soaking.clone()
                },
                input: input(good(B)),
                now: T0 + 9999,
                state: state::CONFLICT,
                actions: vec![],
            },
            Row {
                case: "a new commit after a conflict is tried again",
                rec: PromotionStatus {
                    conflict_commit: Some(B.into()),
                    ..rec()
                },
                input: Input {
                    soak_secs: 0,
                    ..input(good(C))
                },
                now: T0,
                state: state::OPENING,
                actions: vec![Action::Open {
                    source: C.into(),
                    base: A.into(),
                    manual: false,
                    supersedes: None,
                }],
            },
        ];
        for r in rows {
            let (next, actions) = decide(&r.rec, &r.input, r.now);
            assert_eq!(next.state, r.state, "{}: {}", r.case, next.message);
            assert_eq!(actions, r.actions, "{}", r.case);
        }
    }

    #[test]
    fn the_same_inputs_give_the_same_record() {
        let input = Input {
            soak_secs: 600,
            stage: good(B),
            ..Default::default()
        };
        let (first, _) = decide(&rec(), &input, T0);
        let (second, _) = decide(&first, &input, T0 + 10);
        assert_eq!(first, second, "no timestamp churn while soaking");
    }

    #[test]
    fn outcomes_update_the_record() {
        let r = conflicted(&rec(), B, &["deploy.yaml".into()]);
        assert_eq!(r.state, state::CONFLICT);
        assert_eq!(r.conflict_commit.as_deref(), Some(B));
        assert!(r.message.contains("deploy.yaml"), "{}", r.message);
        let r = opened(&r, pr(3, B));
        assert_eq!(r.state, state::OPEN);
        assert!(r.conflicts.is_empty());
        let r = nothing_to_promote(&rec(), C);
        assert_eq!(r.promoted_commit.as_deref(), Some(C));
    }

    #[test]
    fn the_body_shows_files_images_and_evidence() {
        let e = Evidence {
            app: "shop".into(),
            from: "dev".into(),
            to: "staging".into(),
            commit: B.into(),
            summary: "web 1.1".into(),
            commit_url: None,
            files: vec![("deploy.yaml".into(), "modified")],
            images: vec![("web".into(), "web:1.0".into(), "web:1.1".into())],
            rollouts: vec![("web".into(), "succeeded".into(), Some(42))],
            health: "healthy since 2023-11-14T22:13:20Z (soak 10m)".into(),
            manual: false,
            images_only: false,
        };
        assert_eq!(title(&e), "Promote shop to staging: bbbbbbb web 1.1");
        assert_eq!(
            body(&e),
            format!(
                "rollgit promotes **shop** from **dev** to **staging**.\n\n### Files changed\n\n- `deploy.yaml` (modified)\n\n### Images\n\n- `web`: `web:1.0` → `web:1.1`\n\n### Evidence from dev\n\n- commit: `{B}` web 1.1\n- apply: succeeded\n- rollout `web`: succeeded in 42s\n- health: healthy since 2023-11-14T22:13:20Z (soak 10m)\n"
            )
        );
    }
}
