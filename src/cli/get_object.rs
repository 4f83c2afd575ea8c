//! `rollgit get KIND NAME [-n NS] --cluster C --config rollgit.yaml`: one object of one cluster
//! of the fleet, as `kubectl amc get KIND NAME -m C` shows it in seed 003: `Run on cluster C`,
//! then the server's table for the object (its columns, as kubectl prints them), or kubectl's
//! `Error from server (NotFound): ...` line and exit 1.

use super::table::format_table;
use anyhow::Context;
use kube::discovery::{Discovery, Scope};
use serde_json::Value;
use std::process::ExitCode;

/// What `rollgit get` was asked for, for one object of one cluster.
pub struct ObjectQuery<'a> {
    /// `deployment`, `deployments`, `Deployment`, `deployments.apps`, ...
    pub resource: &'a str,
    /// The object's name.
    pub name: &'a str,
    /// Its namespace (for a namespaced kind; default: the kubeconfig context's).
    pub namespace: Option<&'a str>,
    /// The cluster's name in the configuration.
    pub cluster: &'a str,
}

/// Prints the object and returns the exit code.
pub async fn run(client: kube::Client, q: ObjectQuery<'_>) -> anyhow::Result<ExitCode> {
    let discovery = Discovery::new(client.clone())
        .run()
        .await
        .with_context(|| format!("discovering the API of cluster {}", q.cluster))?;
    let wanted = q.resource.to_ascii_lowercase();
    let (wanted, group) = match wanted.split_once('.') {
        Some((r, g)) => (r.to_string(), Some(g.to_string())),
        None => (wanted, None),
    };
    let mut found = None;
    for g in discovery.groups() {
        if group.as_deref().is_some_and(|want| want != g.name()) {
            continue;
        }
        for (ar, caps) in g.recommended_resources() {
            if ar.plural == wanted
                || ar.kind.to_ascii_lowercase() == wanted
                || ar.plural.trim_end_matches('s') == wanted
            {
                found = Some((ar, caps));
                break;
            }
        }
        if found.is_some() {
            break;
        }
    }
    let Some((ar, caps)) = found else {
        anyhow::bail!(
            "cluster {}: the server doesn't have a resource type {:?}",
            q.cluster,
            q.resource
        );
    };
    let namespace = q
        .namespace
        .map(str::to_string)
        .unwrap_or_else(|| client.default_namespace().to_string());
    let base = if ar.group.is_empty() {
        format!("/api/{}", ar.version)
    } else {
        format!("/apis/{}/{}", ar.group, ar.version)
    };
    let path = match caps.scope {
        Scope::Namespaced => format!("{base}/namespaces/{namespace}/{}/{}", ar.plural, q.name),
        Scope::Cluster => format!("{base}/{}/{}", ar.plural, q.name),
    };
    println!("Run on cluster {}", q.cluster);
    let request = axum::http::Request::get(&path)
        .header(
            axum::http::header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
        )
        .body(Vec::new())
        .context("building the request")?;
    let table: Value = match client.request(request).await {
        Ok(t) => t,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            let what = if ar.group.is_empty() {
                ar.plural.clone()
            } else {
                format!("{}.{}", ar.plural, ar.group)
            };
            // kubectl's line, as the seed shows it.
            eprintln!(
                "Error from server (NotFound): {what} \"{}\" not found",
                q.name
            );
            return Ok(ExitCode::FAILURE);
        }
        Err(e) => {
            return Err(e).with_context(|| format!("reading {path} from cluster {}", q.cluster));
        }
    };
    print!("{}", object_table(&table));
    Ok(ExitCode::SUCCESS)
}

/// The rows of a `meta.k8s.io/v1` Table as kubectl prints them: the columns of priority 0,
/// headers upper-cased.
pub fn object_table(table: &Value) -> String {
    let columns: Vec<(usize, String)> = table["columnDefinitions"]
        .as_array()
        .map(|cs| {
            cs.iter()
                .enumerate()
                .filter(|(_, c)| c["priority"].as_i64().unwrap_or(0) == 0)
                .map(|(i, c)| {
                    (
                        i,
                        c["name"].as_str().unwrap_or_default().to_ascii_uppercase(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let mut rows = vec![columns.iter().map(|(_, n)| n.clone()).collect::<Vec<_>>()];
    for r in table["rows"].as_array().into_iter().flatten() {
        rows.push(
            columns
                .iter()
                .map(|(i, _)| match &r["cells"][*i] {
                    Value::String(s) => s.clone(),
                    Value::Null => "<none>".into(),
                    other => other.to_string(),
                })
                .collect(),
        );
    }
    format_table(&rows)
}
