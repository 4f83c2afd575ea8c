//! `rollgit plan`: print what a rollout spec will do at each step, before it is pushed.

use std::path::PathBuf;
use std::process::ExitCode;

/// Output format of `rollgit plan`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    /// A table, one row per step.
    Table,
    /// The plan as JSON.
    Json,
}

/// Arguments of `rollgit plan`.
#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    /// The file holding the rollout spec (and optionally its workload); `-` reads stdin.
    #[arg(short = 'f', long = "filename")]
    pub file: PathBuf,
    /// The workload's replicas (overrides the workload size or targetSize).
    #[arg(long)]
    pub replicas: Option<u32>,
    /// The current size, for KubeVela scale plans.
    #[arg(long)]
    pub from_replicas: Option<u32>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    pub output: Output,
}

/// Runs `rollgit plan`: exit 0 with the plan, 2 when the spec is invalid, 1 when unreadable.
pub fn run(args: &PlanArgs) -> ExitCode {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        match std::io::Read::read_to_string(&mut std::io::stdin(), &mut s) {
            Ok(_) => s,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        match std::fs::read_to_string(&args.file) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: reading {}: {e}", args.file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let opts = rollgit_core::PlanOptions {
        replicas: args.replicas,
        from_replicas: args.from_replicas,
    };
    match rollgit_core::plan_from_yaml(&text, &opts) {
        Ok(plan) => {
            match args.output {
                Output::Table => print!("{}", plan.render_table()),
                Output::Json => println!("{}", plan.to_json()),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            let file = args.file.display();
            match e.line() {
                Some(line) => eprintln!("{file}:{line}: {e}"),
                None => eprintln!("{file}: {e}"),
            }
            ExitCode::from(2)
        }
    }
}
