//! `rollgit get rollouts`: the `rollouts.rollgit.dev` objects as `kubectl get rollout` lays
//! them out (the CRD's printer columns; AGE in kubectl's short form; `-A` adds NAMESPACE),
//! then the Argo Rollouts and the OpenKruise Rollouts with their plugins' columns
//! ([`super::argo_view`], [`super::kruise_view`]); `-o json|yaml` prints [`rollouts_document`].

use super::table::{age, format_table};
use super::{KubeArgs, Output};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, ListParams};
use rollgit::k8s::Rollout;
use serde_json::Value;
use std::process::ExitCode;

/// Arguments of `rollgit get`.
#[derive(clap::Args, Debug)]
pub struct GetArgs {
    /// What to list: `rollouts` (rollouts.rollgit.dev, Argo and Kruise Rollouts; `rollout`
    /// works too); with NAME and `--cluster`, any kind (`deployment`, `configmaps`,
    /// `ingresses.networking.k8s.io`).
    resource: String,
    /// One object (with `--cluster`).
    name: Option<String>,
    /// Read the object from this cluster of the configuration's fleet (as `kubectl amc get
    /// ... -m CLUSTER`).
    #[arg(long, requires = "config", requires = "name")]
    cluster: Option<String>,
    /// The daemon's configuration, naming the clusters (with `--cluster`).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Namespace (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    namespace: Option<String>,
    /// List across all namespaces (adds a NAMESPACE column).
    #[arg(short = 'A', long)]
    all_namespaces: bool,
    /// Output format: kubectl's table, or one JSON/YAML document.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    kube: KubeArgs,
}

/// Errors of listing Rollouts.
#[derive(Debug, thiserror::Error)]
#[error("listing {kind} {scope}")]
pub struct ListError {
    /// The resource listed.
    kind: &'static str,
    /// `in namespace NS` or `in all namespaces`.
    scope: String,
    #[source]
    source: kube::Error,
}

/// `rollgit get rollouts`.
pub async fn run(args: GetArgs) -> anyhow::Result<ExitCode> {
    if let (Some(cluster), Some(config), Some(name)) = (&args.cluster, &args.config, &args.name) {
        let cfg = super::clusters::load(config)?;
        let Some(c) = cfg.clusters.iter().find(|c| &c.name == cluster) else {
            let names: Vec<&str> = cfg.clusters.iter().map(|c| c.name.as_str()).collect();
            anyhow::bail!(
                "no cluster {cluster:?} in {} (the fleet: {})",
                config.display(),
                names.join(", ")
            );
        };
        let client = c.client().await?;
        return super::get_object::run(
            client,
            super::get_object::ObjectQuery {
                resource: &args.resource,
                name,
                namespace: args.namespace.as_deref(),
                cluster,
            },
        )
        .await;
    }
    if !matches!(args.resource.as_str(), "rollouts" | "rollout") || args.name.is_some() {
        anyhow::bail!(
            "rollgit get lists rollouts; for one object of a cluster of the fleet give KIND NAME --cluster C --config FILE"
        );
    }
    let client = args.kube.client().await?;
    let namespace = args
        .namespace
        .unwrap_or_else(|| client.default_namespace().to_string());
    let items = list_rollouts(&client, &namespace, args.all_namespaces).await?;
    let argo = super::argo_view::list_argo(&client, &namespace, args.all_namespaces, None)
        .await
        .map_err(|source| ListError {
            kind: "rollouts.argoproj.io",
            scope: scope(&namespace, args.all_namespaces),
            source,
        })?;
    let kruise = super::kruise_view::list_kruise(&client, &namespace, args.all_namespaces, None)
        .await
        .map_err(|source| ListError {
            kind: "rollouts.rollouts.kruise.io",
            scope: scope(&namespace, args.all_namespaces),
            source,
        })?;
    if args.output.is_document() {
        args.output
            .print(&rollouts_document(&items, &argo, &kruise))?;
        return Ok(ExitCode::SUCCESS);
    }
    if items.is_empty() && argo.is_empty() && kruise.is_empty() {
        if args.all_namespaces {
            eprintln!("No resources found");
        } else {
            eprintln!("No resources found in {namespace} namespace.");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let now = Timestamp::now();
    let mut tables = Vec::new();
    if !items.is_empty() {
        tables.push(rollouts_table(&items, args.all_namespaces, now));
    }
    if !argo.is_empty() {
        tables.push(super::argo_view::argo_table(&argo, args.all_namespaces));
    }
    if !kruise.is_empty() {
        tables.push(super::kruise_view::kruise_table(
            &kruise,
            args.all_namespaces,
            now,
        ));
    }
    print!("{}", tables.join("\n"));
    Ok(ExitCode::SUCCESS)
}

fn scope(namespace: &str, all_namespaces: bool) -> String {
    if all_namespaces {
        "in all namespaces".into()
    } else {
        format!("in namespace {namespace}")
    }
}

/// Lists Rollouts in `namespace`, or in every namespace.
pub async fn list_rollouts(
    client: &kube::Client,
    namespace: &str,
    all_namespaces: bool,
) -> Result<Vec<Rollout>, ListError> {
    let api: Api<Rollout> = if all_namespaces {
        Api::all(client.clone())
    } else {
        Api::namespaced(client.clone(), namespace)
    };
    api.list(&ListParams::default())
        .await
        .map(|l| l.items)
        .map_err(|source| ListError {
            kind: "rollouts.rollgit.dev",
            scope: scope(namespace, all_namespaces),
            source,
        })
}

fn created(meta: &kube::api::ObjectMeta) -> Value {
    meta.creation_timestamp
        .as_ref()
        .map_or(Value::Null, |t| Value::String(t.0.to_string()))
}

fn label(meta: &kube::api::ObjectMeta, key: &str) -> Value {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(key))
        .map_or(Value::Null, |v| Value::String(v.clone()))
}

/// The `-o json|yaml` document of `rollgit get rollouts` (pure), rows sorted by namespace and
/// name: `{"rollouts": [...], "kruiseRollouts": [...]}`, each field as the README documents it
/// (`null` where the status has none yet).
pub fn rollouts_document(
    items: &[Rollout],
    argo: &[kube::api::DynamicObject],
    kruise: &[kube::api::DynamicObject],
) -> Value {
    let mut sorted: Vec<&Rollout> = items.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let rollouts: Vec<Value> = sorted
        .into_iter()
        .map(|o| {
            let s = serde_json::to_value(&o.status).unwrap_or(Value::Null);
            serde_json::json!({
                "namespace": o.metadata.namespace,
                "name": o.metadata.name,
                "app": label(&o.metadata, rollgit::k8s::APP_LABEL),
                "targetSize": s["rolloutTargetSize"],
                "upgradedReplicas": s["upgradedReplicas"],
                "upgradedReadyReplicas": s["upgradedReadyReplicas"],
                "batchRollingState": s["batchRollingState"],
                "rollingState": s["rollingState"],
                "currentBatch": s["currentBatch"],
                "targetRevision": s["targetRevision"],
                "stableRevision": s["stableRevision"],
                "failedRevision": s["failedRevision"],
                "created": created(&o.metadata),
            })
        })
        .collect();
    let mut kruise: Vec<&kube::api::DynamicObject> = kruise.iter().collect();
    kruise.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let kruise: Vec<Value> = kruise
        .into_iter()
        .map(|o| {
            let s = &o.data["status"];
            serde_json::json!({
                "namespace": o.metadata.namespace,
                "name": o.metadata.name,
                "app": label(&o.metadata, rollgit::k8s::APP_LABEL),
                "status": s["phase"],
                "canaryStep": s["currentStepIndex"],
                "canaryState": s["currentStepState"],
                "message": s["message"],
                "created": created(&o.metadata),
            })
        })
        .collect();
    let mut argo: Vec<&kube::api::DynamicObject> = argo.iter().collect();
    argo.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let argo: Vec<Value> = argo
        .into_iter()
        .map(|o| {
            let v = serde_json::to_value(o).unwrap_or(Value::Null);
            let (status, message) = super::argo_view::phase(&v);
            let s = &v["status"];
            serde_json::json!({
                "namespace": o.metadata.namespace,
                "name": o.metadata.name,
                "app": label(&o.metadata, rollgit::k8s::APP_LABEL),
                "status": status,
                "message": message,
                "step": s["currentStepIndex"],
                "setWeight": super::argo_view::set_weight(&v),
                "replicas": v["spec"]["replicas"],
                "readyReplicas": s["readyReplicas"],
                "updatedReplicas": s["updatedReplicas"],
                "availableReplicas": s["availableReplicas"],
                "created": created(&o.metadata),
            })
        })
        .collect();
    serde_json::json!({ "rollouts": rollouts, "argoRollouts": argo, "kruiseRollouts": kruise })
}

/// The header of `rollgit get rollouts` (the CRD's printer columns, as `kubectl get rollout`).
pub const TABLE_HEADER: [&str; 7] = [
    "NAME",
    "TARGET",
    "UPGRADED",
    "READY",
    "BATCH-STATE",
    "ROLLING-STATE",
    "AGE",
];

/// A printer-column cell: the value as kubectl prints it, empty when the field is missing.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The `rollgit get rollouts` table (with a leading NAMESPACE column for all namespaces), rows
/// sorted by namespace and name as the API lists them.
pub fn rollouts_table(items: &[Rollout], all_namespaces: bool, now: Timestamp) -> String {
    let mut header: Vec<String> = TABLE_HEADER.iter().map(|s| s.to_string()).collect();
    if all_namespaces {
        header.insert(0, "NAMESPACE".into());
    }
    let mut sorted: Vec<&Rollout> = items.iter().collect();
    sorted.sort_by(|a, b| {
        (&a.metadata.namespace, &a.metadata.name).cmp(&(&b.metadata.namespace, &b.metadata.name))
    });
    let mut rows = vec![header];
    for o in sorted {
        let status = serde_json::to_value(&o.status).unwrap_or(Value::Null);
        let s = &status;
        let mut row = vec![
            o.metadata.name.clone().unwrap_or_default(),
            cell(&s["rolloutTargetSize"]),
            cell(&s["upgradedReplicas"]),
            cell(&s["upgradedReadyReplicas"]),
            cell(&s["batchRollingState"]),
            cell(&s["rollingState"]),
            age(o.metadata.creation_timestamp.as_ref().map(|t| t.0), now),
        ];
        if all_namespaces {
            row.insert(0, o.metadata.namespace.clone().unwrap_or_default());
        }
        rows.push(row);
    }
    format_table(&rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(name: &str, ns: &str, status: Value) -> Rollout {
        let mut o = Rollout::new(name, Default::default());
        o.metadata.namespace = Some(ns.into());
        o.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2024-01-01T00:00:00Z".parse().expect("timestamp"),
        ));
        o.status = serde_json::from_value(status).expect("any status reads");
        o
    }

    #[test]
    fn table_has_the_printer_columns_laid_out_as_kubectl() {
        let now: Timestamp = "2024-01-01T00:02:00Z".parse().expect("timestamp");
        let items = vec![
            rollout(
                "express-server",
                "default",
                serde_json::json!({"rolloutTargetSize": 5, "upgradedReplicas": 2, "upgradedReadyReplicas": 2, "batchRollingState": "batchReady", "rollingState": "rollingInBatches"}),
            ),
            rollout("a", "default", Value::Null),
        ];
        let t = rollouts_table(&items, false, now);
        assert_eq!(
            t,
            "NAME             TARGET   UPGRADED   READY   BATCH-STATE   ROLLING-STATE      AGE\n\
             a                                                                             2m\n\
             express-server   5        2          2       batchReady    rollingInBatches   2m\n"
        );
        let t = rollouts_table(&items[..1], true, now);
        assert_eq!(
            t.lines().next(),
            Some(
                "NAMESPACE   NAME             TARGET   UPGRADED   READY   BATCH-STATE   ROLLING-STATE      AGE"
            )
        );
        assert!(t.contains("\ndefault     express-server   5 "), "{t}");
    }

    #[test]
    fn the_document_names_every_field() {
        let items = vec![rollout(
            "web",
            "default",
            serde_json::json!({"rolloutTargetSize": 5, "upgradedReplicas": 2, "upgradedReadyReplicas": 1, "batchRollingState": "batchInRolling", "rollingState": "rollingInBatches"}),
        )];
        let d = rollouts_document(&items, &[], &[]);
        let r = &d["rollouts"][0];
        assert_eq!(r["name"], "web");
        assert_eq!(r["namespace"], "default");
        assert_eq!(r["targetSize"], 5);
        assert_eq!(r["upgradedReadyReplicas"], 1);
        assert_eq!(r["rollingState"], "rollingInBatches");
        assert_eq!(r["created"], "2024-01-01T00:00:00Z");
        assert_eq!(d["argoRollouts"], serde_json::json!([]));
        assert_eq!(d["kruiseRollouts"], serde_json::json!([]));
    }
}
