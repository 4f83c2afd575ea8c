//! Kubernetes clients from a kubeconfig (any cluster: TLS, tokens, client certificates), or
//! inferred (in-cluster, `$KUBECONFIG`, `~/.kube/config`).

use crate::config::Cluster;
use anyhow::Context;

/// A client for a configured cluster.
pub async fn client_for(c: &Cluster) -> anyhow::Result<kube::Client> {
    let config = match &c.kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .with_context(|| format!("reading kubeconfig {}", path.display()))?;
            let opts = kube::config::KubeConfigOptions {
                context: c.context.clone(),
                ..Default::default()
            };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .with_context(|| format!("kubeconfig {} (cluster {})", path.display(), c.name))?
        }
        None => match &c.context {
            Some(ctx) => kube::Config::from_kubeconfig(&kube::config::KubeConfigOptions {
                context: Some(ctx.clone()),
                ..Default::default()
            })
            .await
            .with_context(|| format!("kubeconfig context {ctx}"))?,
            None => kube::Config::infer()
                .await
                .context("no kubeconfig given and none could be inferred")?,
        },
    };
    kube::Client::try_from(config).with_context(|| format!("cluster {}", c.name))
}
