//! `rollgit history APP`: the commits that changed an app's directory, newest first, with
//! what the cluster did with each, then each Rollout's state and last rollback.

use super::table::format_table;
use super::{Output, RepoSelectArgs};
use rollgit::record::history::{self, HistoryError, HistoryRow, RolloutView};
use rollgit::record::revert::{MAX_WALK, short};
use std::process::ExitCode;

/// The header of `rollgit history`.
pub const HISTORY_HEADER: [&str; 6] = ["COMMIT", "DATE", "AUTHOR", "REVISION", "RESULT", "SUMMARY"];

/// Arguments of `rollgit history`.
#[derive(clap::Args, Debug)]
pub struct HistoryArgs {
    /// The app (its directory's name, as `rollgit status` lists it).
    app: String,
    /// How many commits to list (newest first).
    #[arg(long, default_value_t = history::DEFAULT_MAX)]
    max: usize,
    /// Output format: a table and the Rollouts' state, or one JSON/YAML document.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    source: RepoSelectArgs,
}

/// `rollgit history`.
pub async fn run(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let (client, namespace, source) = args.source.source(&args.app).await?;
    match history::history(&client, &namespace, &args.app, &source, args.max).await {
        Ok(h) if args.output.is_document() => {
            args.output.print(&history_document(&args.app, &h))?;
            Ok(ExitCode::SUCCESS)
        }
        Ok(h) => {
            let mut out = String::new();
            if h.rows.is_empty() {
                out.push_str(&format!(
                    "no commit in the last {MAX_WALK} commits of branch {} changed {}\n",
                    h.branch,
                    if h.path.is_empty() {
                        "the repository"
                    } else {
                        &h.path
                    }
                ));
            } else {
                out.push_str(&history_table(&h.rows));
            }
            if !h.rollouts.is_empty() {
                out.push('\n');
                out.push_str(&rollout_summary(&h.rollouts));
            }
            print!("{out}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refusal(e),
    }
}

/// The `-o json|yaml` document of `rollgit history` (pure): `{"app", "branch", "path",
/// "commits": [{"commit", "date", "author", "revision", "result", "summary"}], "rollouts":
/// [{"name", "rollingState", "targetRevision", "stableRevision", "failedRevision", "rollback":
/// {"from", "to", "reason", "done"} | null, "record": {"state", "commit", "message"} | null}]}`.
pub fn history_document(app: &str, h: &history::History) -> serde_json::Value {
    use serde_json::{Value, json};
    let opt = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_string);
    let commits: Vec<Value> = h
        .rows
        .iter()
        .map(|r| {
            json!({"commit": r.commit, "date": r.date, "author": r.author,
                "revision": opt(Some(&r.revision)), "result": opt(Some(&r.result)),
                "summary": r.summary})
        })
        .collect();
    let rollouts: Vec<Value> = h
        .rollouts
        .iter()
        .map(|r| {
            let s = &r.state;
            let target = s
                .target_revision
                .as_deref()
                .filter(|t| !t.is_empty())
                .or(Some(r.spec_target.as_str()));
            json!({
                "name": r.name,
                "rollingState": s.rolling_state.as_str(),
                "targetRevision": opt(target),
                "stableRevision": s.stable_revision,
                "failedRevision": s.failed_revision,
                "rollback": s.rollback.as_ref().map(|rb| json!({"from": rb.from, "to": rb.to,
                    "reason": rb.reason.trim(), "done": rb.done})),
                "record": r.record.as_ref().map(|rec| json!({"state": rec.state,
                    "commit": rec.commit, "message": rec.message})),
            })
        })
        .collect();
    json!({"app": app, "branch": h.branch, "path": h.path, "commits": commits, "rollouts": rollouts})
}

/// Exit 1 for what the user asked that cannot be done, the error otherwise (exit 2).
pub fn refusal(e: HistoryError) -> anyhow::Result<ExitCode> {
    if !e.is_refusal() {
        return Err(e.into());
    }
    match &e {
        HistoryError::Write(rollgit_source::write::WriteError::Conflict { paths, .. }) => {
            eprintln!(
                "error: the revert conflicts with newer commits in {}; nothing was pushed (resolve it by hand, or choose another --to)",
                paths.join(", ")
            );
        }
        _ => eprintln!("error: {}", rollgit::error_chain(&e)),
    }
    Ok(ExitCode::from(1))
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

#[cfg(test)]
mod tests {
    use super::*;
    use rollgit::record::history::{AppCommit, RecordView, history_rows};
    use rollgit_core::batch::{Rollback, State};
    use rollgit_core::kubevela::RollingState;

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

    fn stable(rolling: RollingState, rev: &str, c: char) -> State {
        State {
            stable_revision: Some(rev.into()),
            stable_commit: Some(sha(c)),
            ..state(rolling)
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
    fn history_document_has_the_documented_fields() {
        let rows = history_rows(&[commit('b', "web 2", &['a'])], Some(&sha('b')), &[]);
        let h = history::History {
            path: "apps/web".into(),
            branch: "main".into(),
            rows,
            rollouts: vec![rollout(
                "web",
                Some(('b', "web-v2")),
                stable(RollingState::RolloutSucceed, "web-v2", 'b'),
            )],
        };
        let d = history_document("web", &h);
        assert_eq!(d["app"], "web");
        assert_eq!(d["path"], "apps/web");
        assert_eq!(d["commits"][0]["commit"], "bbbbbbbbbbbb");
        assert_eq!(d["commits"][0]["result"], "running; revert of aaaaaaaaaaaa");
        assert_eq!(d["commits"][0]["revision"], serde_json::Value::Null);
        assert_eq!(d["rollouts"][0]["rollingState"], "rolloutSucceed");
        assert_eq!(d["rollouts"][0]["targetRevision"], "web-v2");
        assert_eq!(d["rollouts"][0]["rollback"], serde_json::Value::Null);
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
                        from: "web-v3".into(),
                        spec_commit: Some(sha('c')),
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
}
