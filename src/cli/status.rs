//! `rollgit status [APP]`: the apps rollgit manages, read from their `applications.rollgit.dev`
//! objects: a table, and with an app its details.

use super::KubeArgs;
use super::table::format_table;
use anyhow::Context;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use std::process::ExitCode;

/// Arguments of `rollgit status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// One app, with its details.
    app: Option<String>,
    /// Namespace of the apps' status objects.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    #[command(flatten)]
    kube: KubeArgs,
}

/// The header of `rollgit status`.
pub const HEADER: [&str; 7] = [
    "NAME",
    "COMPONENT",
    "TYPE",
    "PHASE",
    "HEALTHY",
    "STATUS",
    "COMMIT",
];

fn text(v: &Value) -> String {
    v.as_str().map(str::to_string).unwrap_or_else(|| "-".into())
}

/// One row of the table for an app's status (pure).
pub fn row(name: &str, s: &Value) -> Vec<String> {
    vec![
        name.to_string(),
        text(&s["component"]),
        text(&s["componentType"]),
        text(&s["phase"]),
        s["healthy"]
            .as_bool()
            .map(|b| b.to_string())
            .unwrap_or_else(|| "-".into()),
        s["message"].as_str().unwrap_or("").to_string(),
        s["lastAppliedCommit"]
            .as_str()
            .map(|c| c.chars().take(12).collect())
            .unwrap_or_else(|| "-".into()),
    ]
}

/// The details of one app (pure).
pub fn details(name: &str, s: &Value) -> String {
    let mut out = format!("app:                 {name}\n");
    out.push_str(&format!(
        "last applied commit: {}\n",
        text(&s["lastAppliedCommit"])
    ));
    out.push_str(&format!(
        "last attempted:      {}\n",
        text(&s["lastAttemptedCommit"])
    ));
    out.push_str(&format!(
        "publishVersion:      {}\n",
        text(&s["publishVersion"])
    ));
    out.push_str(&format!(
        "objects:             {}\n",
        s["inventory"]["entries"].as_array().map_or(0, Vec::len)
    ));
    out.push_str(&format!(
        "drift corrections:   {}\n",
        s["driftCorrections"].as_u64().unwrap_or(0)
    ));
    for e in s["lastError"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "error:               {}\n",
            e.as_str().unwrap_or_default()
        ));
    }
    out
}

/// `rollgit status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.kube.client().await?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client,
        &args.namespace,
        &rollgit::record::status::application_resource(),
    );
    let list = api
        .list(&ListParams::default())
        .await
        .context("listing applications.rollgit.dev")?;
    let mut rows = vec![HEADER.map(String::from).to_vec()];
    for a in &list.items {
        let name = a.metadata.name.clone().unwrap_or_default();
        if args.app.as_ref().is_some_and(|w| *w != name) {
            continue;
        }
        let s = &a.data["status"];
        rows.push(row(&name, s));
        if args.app.is_some() {
            println!("{}", details(&name, s));
        }
    }
    if let Some(app) = &args.app
        && rows.len() == 1
    {
        anyhow::bail!("no app named {app:?} in namespace {}", args.namespace);
    }
    print!("{}", format_table(&rows));
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_status_becomes_a_row_and_details() {
        let s = json!({"component": "web", "componentType": "webservice", "phase": "running",
            "healthy": true, "message": "", "lastAppliedCommit": "0123456789abcdef",
            "inventory": {"entries": [{}, {}]}, "lastError": ["a.yaml:3: bad"]});
        assert_eq!(
            row("shop", &s),
            [
                "shop",
                "web",
                "webservice",
                "running",
                "true",
                "",
                "0123456789ab"
            ]
        );
        let d = details("shop", &s);
        assert!(d.contains("objects:             2\n"), "{d}");
        assert!(d.contains("error:               a.yaml:3: bad\n"), "{d}");
        assert_eq!(row("x", &json!({}))[1..5], ["-", "-", "-", "-"]);
    }
}
