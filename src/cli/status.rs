//! `rollgit status [APP]`: the apps rollgit manages, read from their `applications.rollgit.dev`
//! objects: a table, and with an app its details; `-o json|yaml` prints [`document`].

use super::table::format_table;
use super::{KubeArgs, Output};
use anyhow::Context;
use kube::api::{Api, DynamicObject, ListParams};
use serde_json::Value;
use std::process::ExitCode;

/// Arguments of `rollgit status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// One app, with its details.
    app: Option<String>,
    /// Namespace of the apps' status objects (an app named after a KubeVela Application has
    /// its status object in the Application's namespace).
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// The apps of every namespace (a NAMESPACE column comes first, as in kubectl).
    #[arg(short = 'A', long, conflicts_with = "namespace")]
    all_namespaces: bool,
    /// Output format: a table (and details with APP), or one JSON/YAML document.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
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

/// One app in the `-o json|yaml` document (pure): a stable shape, documented in the README.
pub fn app_document(name: &str, namespace: &str, o: &Value) -> Value {
    let s = &o["status"];
    let source = &o["spec"]["source"];
    let opt_str = |v: &Value| v.as_str().map_or(Value::Null, |s| Value::String(s.into()));
    serde_json::json!({
        "name": name,
        "namespace": namespace,
        "repo": opt_str(&source["repo"]),
        "path": opt_str(&source["path"]),
        "suspended": o["spec"]["suspend"].as_bool().unwrap_or(false),
        "phase": opt_str(&s["phase"]),
        "healthy": s["healthy"].as_bool(),
        "message": s["message"].as_str().unwrap_or(""),
        "component": opt_str(&s["component"]),
        "componentType": opt_str(&s["componentType"]),
        "lastAppliedCommit": opt_str(&s["lastAppliedCommit"]),
        "lastAttemptedCommit": opt_str(&s["lastAttemptedCommit"]),
        "publishVersion": opt_str(&s["publishVersion"]),
        "objects": s["inventory"]["entries"].as_array().map_or(0, Vec::len),
        "driftCorrections": s["driftCorrections"].as_u64().unwrap_or(0),
        "errors": s["lastError"].as_array().cloned().unwrap_or_default(),
        "conditions": s["conditions"].as_array().cloned().unwrap_or_default(),
    })
}

/// `rollgit status`.
pub async fn run(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.kube.client().await?;
    let resource = rollgit::record::status::application_resource();
    let api: Api<DynamicObject> = if args.all_namespaces {
        Api::all_with(client, &resource)
    } else {
        Api::namespaced_with(client, &args.namespace, &resource)
    };
    let list = api
        .list(&ListParams::default())
        .await
        .context("listing applications.rollgit.dev")?;
    let mut header = HEADER.map(String::from).to_vec();
    if args.all_namespaces {
        header.insert(0, "NAMESPACE".into());
    }
    let mut rows = vec![header];
    let mut apps = Vec::new();
    let mut details_text = String::new();
    for a in &list.items {
        let name = a.metadata.name.clone().unwrap_or_default();
        let namespace = a.metadata.namespace.clone().unwrap_or_default();
        if args.app.as_ref().is_some_and(|w| *w != name) {
            continue;
        }
        let s = &a.data["status"];
        let mut r = row(&name, s);
        if args.all_namespaces {
            r.insert(0, namespace.clone());
        }
        rows.push(r);
        apps.push(app_document(&name, &namespace, &a.data));
        if args.app.is_some() {
            details_text.push_str(&format!("{}\n", details(&name, s)));
        }
    }
    if let Some(app) = &args.app
        && apps.is_empty()
    {
        if args.all_namespaces {
            anyhow::bail!("no app named {app:?} in any namespace");
        }
        anyhow::bail!(
            "no app named {app:?} in namespace {} (an app named after a KubeVela Application has its status in the Application's namespace: give it with -n, or look with -A)",
            args.namespace
        );
    }
    if args.output.is_document() {
        args.output.print(&serde_json::json!({ "apps": apps }))?;
    } else {
        print!("{details_text}{}", format_table(&rows));
    }
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

    #[test]
    fn the_document_has_a_stable_shape() {
        let o = json!({"spec": {"source": {"repo": "demo", "path": "apps/web"}, "suspend": true},
            "status": {"phase": "running", "healthy": false, "lastAppliedCommit": "abc",
                "inventory": {"entries": [{}]}, "lastError": ["a.yaml:3: bad"]}});
        let d = app_document("web", "default", &o);
        assert_eq!(d["name"], "web");
        assert_eq!(d["repo"], "demo");
        assert_eq!(d["path"], "apps/web");
        assert_eq!(d["suspended"], true);
        assert_eq!(d["healthy"], false);
        assert_eq!(d["objects"], 1);
        assert_eq!(d["errors"], json!(["a.yaml:3: bad"]));
        assert_eq!(d["publishVersion"], Value::Null);
        let empty = app_document("x", "ns", &json!({}));
        assert_eq!(empty["healthy"], Value::Null);
        assert_eq!(empty["suspended"], false);
        assert_eq!(empty["objects"], 0);
    }
}
