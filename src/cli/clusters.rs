//! `rollgit clusters --config rollgit.yaml`: the fleet (the configuration's `clusters:`) with
//! each cluster's reachability and Kubernetes version, as topology policies name them.

use super::table::format_table;
use anyhow::Context;
use rollgit::config::{Config, RawConfig};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `rollgit clusters`.
#[derive(clap::Args, Debug)]
pub struct ClustersArgs {
    /// The daemon's configuration file.
    #[arg(long)]
    config: PathBuf,
    /// How long to wait for each cluster.
    #[arg(long, default_value = "5s", value_parser = rollgit::config::parse_duration)]
    timeout: Duration,
}

/// Reads a configuration file.
pub fn load(path: &std::path::Path) -> anyhow::Result<Config> {
    RawConfig::load(path)?
        .resolve(&path.display().to_string())
        .with_context(|| format!("reading {}", path.display()))
}

/// `rollgit clusters`.
pub async fn run(args: ClustersArgs) -> anyhow::Result<ExitCode> {
    let cfg = load(&args.config)?;
    let checks = cfg.clusters.iter().map(|c| async move {
        let reach = tokio::time::timeout(args.timeout, async {
            let client = c.client().await.map_err(|e| rollgit::error_chain(&e))?;
            client
                .apiserver_version()
                .await
                .map_err(|e| rollgit::error_chain(&e))
        })
        .await;
        let (reachable, version) = match reach {
            Ok(Ok(v)) => ("true".to_string(), v.git_version),
            Ok(Err(e)) => ("false".to_string(), e),
            Err(_) => (
                "false".to_string(),
                format!(
                    "no answer within {}",
                    humantime::format_duration(args.timeout)
                ),
            ),
        };
        let labels: Vec<String> = c.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        vec![
            c.name.clone(),
            reachable,
            version,
            if labels.is_empty() {
                "<none>".into()
            } else {
                labels.join(",")
            },
        ]
    });
    let rows = futures::future::join_all(checks).await;
    let all_up = rows.iter().all(|r| r[1] == "true");
    let mut table = vec![
        ["NAME", "REACHABLE", "VERSION", "LABELS"]
            .map(String::from)
            .to_vec(),
    ];
    table.extend(rows);
    print!("{}", format_table(&table));
    Ok(if all_up {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
