//! `rollgit plan`: print what a rollout spec will do at each step, before it is pushed.
//!
//! The file is read by `rollgit_render::plan::plan_document` with the daemon's own parsers and
//! the plan computed by rollgit-core; this module only reads the file and prints: the table
//! ([`render_table`]) or the JSON ([`to_json`]) documented in the README.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use rollgit_render::plan::{Pause, Plan, PlanOptions, plan_document};
use serde_json::{Value, json};

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
    let content = if args.file.as_os_str() == "-" {
        let mut buf = Vec::new();
        match std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf) {
            Ok(_) => buf,
            Err(e) => {
                eprintln!("error: reading stdin: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        match std::fs::read(&args.file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: reading {}: {e}", args.file.display());
                return ExitCode::FAILURE;
            }
        }
    };
    let opts = PlanOptions {
        replicas: args.replicas,
        from_replicas: args.from_replicas,
    };
    match plan_document(&args.file.display().to_string(), &content, &opts) {
        Ok(plan) => {
            match args.output {
                Output::Table => print!("{}", render_table(&plan)),
                Output::Json => println!("{}", to_json(&plan)),
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            // Every error is `FILE:LINE: message` (or `FILE: message`), one per line.
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}

/// The JSON form printed by `rollgit plan -o json`: `{"flavor", "replicas", "maxSurge",
/// "maxUnavailable", "steps": [{"index", "new", "old", "weight", "pause"}]}`, pause `null`,
/// `"manual"` or seconds.
pub fn to_json(plan: &Plan) -> Value {
    let steps: Vec<Value> = plan
        .steps
        .iter()
        .map(|s| {
            let pause = match s.pause {
                None => Value::Null,
                Some(Pause::Manual) => json!("manual"),
                Some(Pause::Seconds(n)) => json!(n),
            };
            json!({"index": s.index, "new": s.new, "old": s.old, "weight": s.weight, "pause": pause})
        })
        .collect();
    json!({
        "flavor": plan.flavor.as_str(),
        "replicas": plan.replicas,
        "maxSurge": plan.max_surge,
        "maxUnavailable": plan.max_unavailable,
        "steps": steps,
    })
}

/// The human table: a summary line, then STEP NEW OLD WEIGHT PAUSE, columns padded to the
/// widest cell, no trailing spaces.
pub fn render_table(plan: &Plan) -> String {
    let opt = |v: Option<i64>| v.map_or("-".to_string(), |n| n.to_string());
    let mut out = format!(
        "flavor: {}  replicas: {}  maxSurge: {}  maxUnavailable: {}\n",
        plan.flavor.as_str(),
        plan.replicas,
        opt(plan.max_surge),
        opt(plan.max_unavailable)
    );
    let rows: Vec<[String; 5]> = plan
        .steps
        .iter()
        .map(|s| {
            [
                s.index.to_string(),
                s.new.to_string(),
                s.old.to_string(),
                s.weight.map_or("-".into(), |w| format!("{w}%")),
                match s.pause {
                    None => "-".into(),
                    Some(Pause::Manual) => "manual".into(),
                    Some(Pause::Seconds(n)) => format!("{n}s"),
                },
            ]
        })
        .collect();
    let header = ["STEP", "NEW", "OLD", "WEIGHT", "PAUSE"];
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.len());
        }
    }
    let mut line = |cells: [&str; 5]| {
        let mut l = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(c);
            } else {
                let _ = write!(l, "{c:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header);
    for r in &rows {
        line([&r[0], &r[1], &r[2], &r[3], &r[4]]);
    }
    out
}
