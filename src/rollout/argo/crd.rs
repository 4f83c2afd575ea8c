//! The `rollouts.argoproj.io` CustomResourceDefinition rollgit installs when it runs Argo
//! Rollouts on a cluster that has none: Argo's group, version, names and printer columns (so
//! `kubectl get rollouts.argoproj.io` looks as users know it), with a schema rollgit writes: the
//! spec and status are kept as written (`x-kubernetes-preserve-unknown-fields`), since the one
//! reader of a Rollout is `rollgit_render`'s parser. A CRD someone else installed (Argo's own)
//! is never touched.

use super::CRD_NAME;
use crate::k8s::{FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{await_condition, conditions};
use serde_json::json;

/// Errors of installing the CRD.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Reading or applying it failed.
    #[error("installing CRD {CRD_NAME}")]
    Apply(#[source] kube::Error),
    /// It did not become Established in time.
    #[error("CRD {CRD_NAME} not Established within {}s", crate::k8s::crds::CRD_TIMEOUT.as_secs())]
    NotEstablished,
    /// Watching it failed.
    #[error("waiting for CRD {CRD_NAME} to be Established")]
    Wait(#[source] kube::runtime::wait::Error),
}

/// The CRD rollgit installs.
pub fn crd() -> CustomResourceDefinition {
    let column = |name: &str, ty: &str, path: &str, description: &str| json!({"name": name, "type": ty, "jsonPath": path, "description": description});
    let v = json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": CRD_NAME,
            "labels": {MANAGED_BY_LABEL: MANAGED_BY},
            "annotations": {"rollgit.dev/installed-for": "Argo Rollouts canaries run by rollgit"},
        },
        "spec": {
            "group": super::GROUP,
            "names": {
                "kind": super::KIND,
                "listKind": "RolloutList",
                "plural": "rollouts",
                "singular": "rollout",
                "shortNames": ["ro"],
            },
            "scope": "Namespaced",
            "versions": [{
                "name": "v1alpha1",
                "served": true,
                "storage": true,
                "additionalPrinterColumns": [
                    column("Desired", "integer", ".spec.replicas", "Pods the Rollout wants"),
                    column("Current", "integer", ".status.replicas", "Pods of all its ReplicaSets"),
                    column("Up-to-date", "integer", ".status.updatedReplicas", "Pods of the current pod template"),
                    column("Available", "integer", ".status.availableReplicas", "Pods available for minReadySeconds"),
                    column("Age", "date", ".metadata.creationTimestamp", "Since the Rollout was created"),
                ],
                "schema": {"openAPIV3Schema": {
                    "description": "An Argo Rollouts Rollout (argoproj.io/v1alpha1). rollgit reads its spec with its own parser and writes its status in Argo's format.",
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
                    },
                }},
                "subresources": {
                    "status": {},
                    "scale": {
                        "specReplicasPath": ".spec.replicas",
                        "statusReplicasPath": ".status.HPAReplicas",
                        "labelSelectorPath": ".status.selector",
                    },
                },
            }],
        },
    });
    serde_json::from_value(v).expect("the CRD literal is a CustomResourceDefinition")
}

/// Installs the CRD when the cluster has none (returns whether it did), and waits (bounded)
/// until it is Established.
pub async fn ensure_crd(client: &kube::Client) -> Result<bool, CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    if api
        .get_opt(CRD_NAME)
        .await
        .map_err(CrdError::Apply)?
        .is_some()
    {
        return Ok(false);
    }
    api.patch(
        CRD_NAME,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&crd()),
    )
    .await
    .map_err(CrdError::Apply)?;
    match tokio::time::timeout(
        crate::k8s::crds::CRD_TIMEOUT,
        await_condition(api, CRD_NAME, conditions::is_crd_established()),
    )
    .await
    {
        Ok(Ok(_)) => {
            tracing::info!(crd = CRD_NAME, "installed the Argo Rollouts CRD");
            Ok(true)
        }
        Ok(Err(e)) => Err(CrdError::Wait(e)),
        Err(_) => Err(CrdError::NotEstablished),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_crd_has_argos_names_and_printer_columns() {
        let c = crd();
        assert_eq!(c.spec.group, "argoproj.io");
        assert_eq!(c.spec.names.short_names, Some(vec!["ro".to_string()]));
        let v = &c.spec.versions[0];
        assert_eq!(v.name, "v1alpha1");
        let columns: Vec<(&str, &str)> = v
            .additional_printer_columns
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.json_path.as_str()))
            .collect();
        assert_eq!(
            columns,
            [
                ("Desired", ".spec.replicas"),
                ("Current", ".status.replicas"),
                ("Up-to-date", ".status.updatedReplicas"),
                ("Available", ".status.availableReplicas"),
                ("Age", ".metadata.creationTimestamp"),
            ]
        );
        let scale = v
            .subresources
            .as_ref()
            .and_then(|s| s.scale.as_ref())
            .expect("a scale subresource");
        assert_eq!(scale.status_replicas_path, ".status.HPAReplicas");
    }
}
