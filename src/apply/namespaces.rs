//! `createNamespace` (opt-in per repository, as Argo CD's `CreateNamespace=true`): the
//! namespaces an app's objects go to that do not exist are created before anything of the app
//! is applied. rollgit creates them once and never prunes them (they are in no inventory); a
//! Namespace the app itself defines is applied as any other object, not created here.

use crate::k8s::{MANAGED_BY, MANAGED_BY_LABEL};
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, PostParams};
use serde_json::Value;
use std::collections::BTreeSet;

/// Annotation on a namespace rollgit created for an app: the app's name.
pub const CREATED_FOR: &str = "rollgit.dev/created-for";

/// The namespaces `objects` go to (their `metadata.namespace`, and `default_namespace`, where
/// the app's status object lives and objects without one go), less those the app defines
/// (pure).
pub fn wanted_namespaces<'a>(
    objects: impl IntoIterator<Item = &'a Value>,
    default_namespace: &str,
) -> BTreeSet<String> {
    let objects: Vec<&Value> = objects.into_iter().collect();
    let defined: BTreeSet<&str> = objects
        .iter()
        .filter(|o| o["kind"] == "Namespace" && o["apiVersion"] == "v1")
        .filter_map(|o| o["metadata"]["name"].as_str())
        .collect();
    objects
        .iter()
        .filter_map(|o| o["metadata"]["namespace"].as_str())
        .chain(std::iter::once(default_namespace))
        .filter(|ns| !ns.is_empty() && !defined.contains(ns))
        .map(str::to_string)
        .collect()
}

/// Creates each of `namespaces` that does not exist (labelled as rollgit's, annotated with the
/// app); returns those it created. A namespace created meanwhile by someone else is fine.
pub async fn create_missing(
    client: &kube::Client,
    app: &str,
    namespaces: &BTreeSet<String>,
) -> Result<Vec<String>, kube::Error> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut created = Vec::new();
    for ns in namespaces {
        if api.get_opt(ns).await?.is_some() {
            continue;
        }
        let body: Namespace = serde_json::from_value(serde_json::json!({
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": ns,
                "labels": {MANAGED_BY_LABEL: MANAGED_BY},
                "annotations": {CREATED_FOR: app},
            },
        }))
        .map_err(kube::Error::SerdeError)?;
        match api.create(&PostParams::default(), &body).await {
            Ok(_) => {
                tracing::info!(app, namespace = %ns, "namespace created (createNamespace)");
                created.push(ns.clone());
            }
            Err(kube::Error::Api(e)) if e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(created)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wanted_namespaces_table() {
        let cm = |ns: Option<&str>| {
            let mut o = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}});
            if let Some(ns) = ns {
                o["metadata"]["namespace"] = json!(ns);
            }
            o
        };
        let ns = |name: &str| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}});
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let cases: Vec<(&str, Vec<Value>, BTreeSet<String>)> = vec![
            ("no object: the status object's", vec![], set(&["apps"])),
            (
                "objects' namespaces",
                vec![cm(Some("team-a")), cm(None)],
                set(&["apps", "team-a"]),
            ),
            (
                "a namespace the app defines is applied, not created",
                vec![ns("team-a"), cm(Some("team-a"))],
                set(&["apps"]),
            ),
        ];
        for (name, objects, want) in cases {
            assert_eq!(wanted_namespaces(&objects, "apps"), want, "{name}");
        }
    }
}
