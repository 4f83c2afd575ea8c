//! `rollgit approve ROLLOUT [-n NS]`: approves an OpenKruise Rollout's paused step, as
//! `kubectl-kruise rollout approve` does (the status subresource, StepPaused → StepReady).
//! Exit 0 approved, 1 when the Rollout does not exist or is not waiting for approval (the
//! message says its state), 2 on other errors.

use super::KubeArgs;
use rollgit::rollout::kruise::approve::{ApproveError, approve};
use std::process::ExitCode;

/// Arguments of `rollgit approve`.
#[derive(clap::Args, Debug)]
pub struct ApproveArgs {
    /// The Rollout (`NAME`, or `rollout/NAME` as kubectl-kruise takes it).
    rollout: String,
    /// Namespace (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    namespace: Option<String>,
    #[command(flatten)]
    kube: KubeArgs,
}

/// The Rollout's name in `NAME`, `rollout/NAME`, `rollouts/NAME` or
/// `rollouts.rollouts.kruise.io/NAME`.
pub fn rollout_name(arg: &str) -> &str {
    match arg.split_once('/') {
        Some((
            "rollout" | "rollouts" | "rollout.rollouts.kruise.io" | "rollouts.rollouts.kruise.io",
            name,
        )) => name,
        _ => arg,
    }
}

/// `rollgit approve`.
pub async fn run(args: ApproveArgs) -> anyhow::Result<ExitCode> {
    let client = args.kube.client().await?;
    let namespace = args
        .namespace
        .unwrap_or_else(|| client.default_namespace().to_string());
    let name = rollout_name(&args.rollout);
    match approve(&client, &namespace, name).await {
        Ok(_) => {
            println!("rollout.rollouts.kruise.io/{name} approved");
            Ok(ExitCode::SUCCESS)
        }
        Err(e @ (ApproveError::NotFound { .. } | ApproveError::NotPaused { .. })) => {
            eprintln!("error: {}", rollgit::error_chain(&e));
            Ok(ExitCode::from(1))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_as_kubectl_kruise_takes_them() {
        assert_eq!(rollout_name("rollouts-demo"), "rollouts-demo");
        assert_eq!(rollout_name("rollout/rollouts-demo"), "rollouts-demo");
        assert_eq!(rollout_name("rollouts/rollouts-demo"), "rollouts-demo");
        assert_eq!(
            rollout_name("rollouts.rollouts.kruise.io/rollouts-demo"),
            "rollouts-demo"
        );
    }
}
