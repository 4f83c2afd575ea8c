//! What an app's workflow delivers (pure): an Application with topology policies or a
//! workflow ([`rollgit_render::workflow`]) has its components' objects delivered to the
//! fleet by the workflow executor ([`crate::rollout::workflow`]), step by step, never by the
//! plain apply: objects referenced by `ref-objects` never pass a gate by another road.
//!
//! The clusters the policies name are checked here against the configuration's fleet: an
//! unknown cluster rejects the commit whole (`path:line`).

use rollgit_core::workflow::{Step, StepKind, duration_secs};
use rollgit_render::workflow::{FleetCluster, ResolvedStep, StepSpec, resolve_delivery};
use rollgit_render::{Rendered, canonical_json, hex_sha256};
use serde_json::Value;
use std::collections::BTreeSet;

/// The workflow of an app, ready for the executor.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkflowPlan {
    /// The KubeVela Application.
    pub application: String,
    /// Its steps, targets resolved.
    pub steps: Vec<ResolvedStep>,
    /// The objects each deploy step delivers (labelled as the app's), in apply order.
    pub objects: Vec<Value>,
    /// Where each object comes from in Git.
    pub sources: Vec<Option<String>>,
    /// The run key: the app's publishVersion.
    pub publish_version: String,
    /// The Application sets `app.oam.dev/publishVersion` itself: only a new value delivers
    /// a change (ROLLOUT-SEMANTICS.md C.5).
    pub explicit_publish_version: bool,
    /// sha256 over what is delivered (objects and steps).
    pub content_hash: String,
}

impl WorkflowPlan {
    /// The steps for the pure state machine.
    pub fn core_steps(&self) -> Vec<Step> {
        self.steps
            .iter()
            .map(|s| Step {
                name: s.name.clone(),
                kind: match &s.spec {
                    StepSpec::Deploy { auto, .. } => StepKind::Deploy {
                        auto: *auto,
                        targets: s.targets.iter().map(|t| t.cluster.clone()).collect(),
                    },
                    StepSpec::Suspend { duration, message } => StepKind::Suspend {
                        duration_secs: duration.as_ref().map(|(_, ns)| duration_secs(*ns)),
                        message: message.clone(),
                    },
                },
            })
            .collect()
    }

    /// The objects for one target: namespaced objects moved to the policy's namespace when
    /// it sets one.
    pub fn objects_for(&self, cluster: &str, step: usize) -> Vec<Value> {
        let ns = self
            .steps
            .get(step)
            .and_then(|s| s.targets.iter().find(|t| t.cluster == cluster))
            .and_then(|t| t.namespace.clone());
        self.objects
            .iter()
            .map(|o| {
                let mut o = o.clone();
                if let Some(ns) = &ns
                    && o["metadata"].get("namespace").is_some()
                {
                    o["metadata"]["namespace"] = Value::String(ns.clone());
                }
                o
            })
            .collect()
    }
}

/// The components an Application with a delivery owns, and its plan; `None` when no
/// Application of the render has topology policies or a workflow. Errors are `path:line`.
pub fn workflow_of(
    rendered: &Rendered,
    fleet: &[FleetCluster],
    local: &str,
) -> Result<Option<(BTreeSet<String>, WorkflowPlan)>, Vec<String>> {
    let Some(app) = rendered.applications.iter().find(|a| a.delivery.is_some()) else {
        return Ok(None);
    };
    let Some(delivery) = app.delivery.as_ref() else {
        return Ok(None);
    };
    let mut errors = Vec::new();
    for c in &app.components {
        if c.rollout.is_some() || c.rollout_owned {
            errors.push(format!(
                "{}: component {:?}: a rollout trait under a workflow is not supported by rollgit: deliver it with the workflow's deploy steps, or roll it out in an app without a workflow",
                c.source, c.name
            ));
        }
    }
    let steps = match resolve_delivery(delivery, fleet, local) {
        Ok(s) => s,
        Err(es) => {
            errors.extend(es.iter().map(ToString::to_string));
            Vec::new()
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let components: BTreeSet<String> = app.components.iter().map(|c| c.name.clone()).collect();
    let hash = hex_sha256(
        canonical_json(&serde_json::json!({
            "steps": steps,
            "objects": rendered
                .objects
                .iter()
                .filter(|o| o.component.as_ref().is_some_and(|c| components.contains(c)))
                .map(|o| &o.object)
                .collect::<Vec<_>>(),
        }))
        .as_bytes(),
    );
    Ok(Some((
        components,
        WorkflowPlan {
            application: app.name.clone(),
            steps,
            objects: Vec::new(),
            sources: Vec::new(),
            publish_version: rendered.publish_version.clone(),
            explicit_publish_version: app
                .annotations
                .contains_key(rollgit_render::PUBLISH_VERSION_ANNOTATION),
            content_hash: hash,
        },
    )))
}
