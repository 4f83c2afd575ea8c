//! `rollgit promote`, `rollgit abort`, `rollgit retry`: the gates of Argo Rollouts canaries, as
//! the `kubectl argo rollouts` plugin performs them (`rollgit::rollout::argo::gates`), on one
//! Rollout or on every Argo Rollout of an app.

use super::KubeArgs;
use anyhow::Context;
use kube::api::{Api, DynamicObject, ListParams};
use rollgit::rollout::argo::gates::{self, Gate};
use std::process::ExitCode;

/// Arguments of `rollgit promote`.
#[derive(clap::Args, Debug)]
pub struct PromoteArgs {
    /// An Argo Rollout, or an app (its Argo Rollouts carry `rollgit.dev/app=APP`).
    target: String,
    /// Skip the remaining steps, pauses and analysis (still within maxSurge/maxUnavailable).
    #[arg(long)]
    full: bool,
    #[command(flatten)]
    select: SelectArgs,
}

/// Arguments of `rollgit abort` and `rollgit retry`.
#[derive(clap::Args, Debug)]
pub struct GateArgs {
    /// An Argo Rollout, or an app (its Argo Rollouts carry `rollgit.dev/app=APP`).
    target: String,
    #[command(flatten)]
    select: SelectArgs,
}

/// Where the Rollouts are.
#[derive(clap::Args, Debug)]
pub struct SelectArgs {
    /// Namespace (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    namespace: Option<String>,
    #[command(flatten)]
    kube: KubeArgs,
}

/// The Argo Rollouts `target` names in `namespace`: the Rollout of that name, else the app's.
async fn rollouts(
    api: &Api<DynamicObject>,
    target: &str,
    namespace: &str,
) -> anyhow::Result<Vec<String>> {
    let one = api.get_opt(target).await.with_context(|| {
        format!(
            "reading Argo Rollout {namespace}/{target} (is the rollouts.argoproj.io CRD installed?)"
        )
    })?;
    if one.is_some() {
        return Ok(vec![target.to_string()]);
    }
    let of_app = api
        .list(&ListParams::default().labels(&format!("{}={target}", rollgit::k8s::APP_LABEL)))
        .await
        .with_context(|| format!("listing the Argo Rollouts of app {target}"))?;
    let mut names: Vec<String> = of_app
        .items
        .into_iter()
        .filter_map(|o| o.metadata.name)
        .collect();
    names.sort();
    anyhow::ensure!(
        !names.is_empty(),
        "no Argo Rollout named {target:?} and no app {target:?} with Argo Rollouts in namespace {namespace}"
    );
    Ok(names)
}

async fn run_gate(target: &str, select: &SelectArgs, gate: Gate) -> anyhow::Result<ExitCode> {
    let client = select.kube.client().await?;
    let namespace = select
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let api: Api<DynamicObject> =
        Api::namespaced_with(client, &namespace, &rollgit::rollout::argo::resource());
    for name in rollouts(&api, target, &namespace).await? {
        gates::apply(&api, &name, gate)
            .await
            .with_context(|| format!("patching Argo Rollout {namespace}/{name}"))?;
        let done = match gate {
            Gate::Promote => "promoted",
            Gate::PromoteFull => "fully promoted",
            Gate::Abort => "aborted",
            Gate::Retry => "retried",
        };
        println!("rollout '{name}' {done}");
    }
    Ok(ExitCode::SUCCESS)
}

/// `rollgit promote`.
pub async fn promote(args: PromoteArgs) -> anyhow::Result<ExitCode> {
    let gate = if args.full {
        Gate::PromoteFull
    } else {
        Gate::Promote
    };
    run_gate(&args.target, &args.select, gate).await
}

/// `rollgit abort`.
pub async fn abort(args: GateArgs) -> anyhow::Result<ExitCode> {
    run_gate(&args.target, &args.select, Gate::Abort).await
}

/// `rollgit retry`.
pub async fn retry(args: GateArgs) -> anyhow::Result<ExitCode> {
    run_gate(&args.target, &args.select, Gate::Retry).await
}
