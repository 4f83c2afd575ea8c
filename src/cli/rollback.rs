//! `rollgit rollback APP`: return the app's directory to an earlier commit's state with one
//! revert commit, pushed as a fast-forward (the daemon then applies it like any commit).

use super::RepoSelectArgs;
use super::history::refusal;
use rollgit::record::history::{self, RollbackOutcome, Target};
use rollgit::record::revert::{Undone, short};
use std::process::ExitCode;

/// Arguments of `rollgit rollback`.
#[derive(clap::Args, Debug)]
pub struct RollbackArgs {
    /// The app.
    app: String,
    /// The component whose rollout decides the commit (without --to), or whose revision --to
    /// names.
    #[arg(long)]
    component: Option<String>,
    /// The state to return to: a commit (at least 7 hex digits) on the branch's first-parent
    /// line, or a component revision (`web-v1`). Default: the stable commit of a failed or
    /// unfinished rollout, else the state before the app's newest commit.
    #[arg(long, value_name = "REVISION|COMMIT")]
    to: Option<String>,
    /// Print the diff and the commits that would be reverted; push nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    source: RepoSelectArgs,
}

/// `rollgit rollback`.
pub async fn run(args: RollbackArgs) -> anyhow::Result<ExitCode> {
    let (client, namespace, source) = args.source.source(&args.app).await?;
    let opts = history::RollbackOptions {
        app: args.app,
        component: args.component,
        to: args.to.as_deref().map(history::ToArg::parse),
        dry_run: args.dry_run,
    };
    match history::rollback(&client, &namespace, &source, &opts).await {
        Ok(outcome) => {
            print!("{}", outcome_text(&outcome));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => refusal(e),
    }
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
    let list = |reverted: &[Undone]| {
        reverted
            .iter()
            .map(|u| format!("  {} {}\n", short(&u.sha), u.summary))
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
            "Nothing to revert: {} already has the content of {} ({}).\n",
            if path.is_empty() {
                "the repository"
            } else {
                path
            },
            target_text(target),
            target.reason
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(c: char) -> String {
        c.to_string().repeat(40)
    }

    #[test]
    fn outcome_text_table() {
        let target = Target {
            commit: sha('a'),
            revision: Some("web-v1".into()),
            reason: "--to aaaaaaa".into(),
        };
        let reverted = vec![Undone {
            sha: sha('b'),
            summary: "web 2".to_string(),
        }];
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
                "Nothing to revert: apps/shop already has the content of aaaaaaaaaaaa (web-v1) (--to aaaaaaa).\n",
            ),
        ];
        for (case, o, want) in cases {
            assert_eq!(outcome_text(&o), want, "{case}");
        }
    }
}
