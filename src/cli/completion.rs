//! `rollgit completion SHELL`: a completion script for bash, zsh, fish (or elvish,
//! PowerShell), generated from the command line's own definition (clap_complete).

use clap::CommandFactory;
use std::process::ExitCode;

/// Arguments of `rollgit completion`.
#[derive(clap::Args, Debug)]
pub struct CompletionArgs {
    /// The shell: bash, zsh, fish, elvish or powershell.
    #[arg(value_enum)]
    shell: clap_complete::Shell,
}

/// `rollgit completion`: prints the script on stdout.
pub fn run(args: &CompletionArgs) -> ExitCode {
    let mut cmd = super::Cli::command();
    clap_complete::generate(args.shell, &mut cmd, "rollgit", &mut std::io::stdout());
    ExitCode::SUCCESS
}
