//! rollgit: a GitOps reconciler daemon. This file parses the command line and dispatches to
//! the command's module in `cli/`.

mod cli;

use clap::Parser;
use cli::{Cli, Command, RolloutCommand};
use std::process::ExitCode;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Commands that need neither logs nor the async runtime.
    match &cli.command {
        Command::Plan(args) => return cli::plan::run(args),
        Command::Crds(args) => return cli::crds::run(args),
        Command::Completion(args) => return cli::completion::run(args),
        _ => {}
    }
    let default_filter = match &cli.command {
        Command::Run(_) | Command::Up(_) | Command::Devcluster(_) => cli::DAEMON_LOG,
        _ => cli::COMMAND_LOG,
    };
    cli::init_logging(cli.log_format, default_filter);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Devcluster(a) => cli::devcluster::run(a).await,
            Command::Up(a) => cli::up::run(a).await,
            Command::Run(a) => cli::run::run(a).await,
            Command::Status(a) => cli::status::run(a).await,
            Command::Sync(a) => cli::sync::run(a).await,
            Command::Suspend(a) => cli::suspend::run(a, true).await,
            Command::Resume(a) => cli::suspend::run(a, false).await,
            Command::Diff(a) => cli::diff::run(a).await,
            Command::Get(a) => cli::get::run(a).await,
            Command::Rollout(RolloutCommand::Status(a)) => cli::rollout_status::run(a).await,
            Command::Approve(a) => cli::approve::run(a).await,
            Command::History(a) => cli::history::run(a).await,
            Command::Rollback(a) => cli::rollback::run(a).await,
            Command::Promote(a) => cli::gates::promote(a).await,
            Command::Abort(a) => cli::gates::abort(a).await,
            Command::Retry(a) => cli::gates::retry(a).await,
            Command::Plan(_) | Command::Crds(_) | Command::Completion(_) => Ok(ExitCode::SUCCESS),
            Command::Workflow(c) => cli::workflow::run(c).await,
            Command::Clusters(a) => cli::clusters::run(a).await,
        }
    });
    // A blocking task still running (a `git push` in flight) does not hold the exit: it ends
    // with the process, and every write it makes is atomic (a push is a fast-forward or
    // nothing).
    runtime.shutdown_timeout(std::time::Duration::from_millis(500));
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", rollgit::error_chain(e.as_ref()));
            ExitCode::from(2)
        }
    }
}
