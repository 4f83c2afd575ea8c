//! The Rollouts one render asks for: one per component with a KubeVela `rollout` trait, and one
//! per component an AppRollout rolls (pure).

use crate::k8s::PROGRESS_DEADLINE_ANNOTATION;
use crate::k8s::crds::{BatchSpec, PlanSpec, RolloutSpec, WorkloadRef};
use serde_json::Value;
use std::time::Duration;

/// The Rollouts one render asks for: one per component with a `rollout` trait, and one per
/// component an AppRollout rolls (a trait wins over an AppRollout for the same component).
/// Errors are `path:line: message`, like render errors: the commit is rejected whole.
pub fn specs_for(
    r: &rollgit_render::Rendered,
    app: &str,
    commit: &str,
    default_deadline: Duration,
) -> Result<Vec<(String, RolloutSpec)>, Vec<String>> {
    let mut out: Vec<(String, RolloutSpec)> = Vec::new();
    let mut errors = Vec::new();
    let workload_of =
        |key: &Option<rollgit_render::ObjectKey>| -> Option<(WorkloadRef, Value, String)> {
            let key = key.as_ref()?;
            let o = r.objects.iter().find(|o| o.key == *key)?;
            Some((
                WorkloadRef {
                    api_version: o.object["apiVersion"].as_str()?.to_string(),
                    kind: o.object["kind"].as_str()?.to_string(),
                },
                o.object.clone(),
                o.object["metadata"]["namespace"]
                    .as_str()
                    .unwrap_or("default")
                    .to_string(),
            ))
        };
    for a in &r.applications {
        let deadline = match a.annotations.get(PROGRESS_DEADLINE_ANNOTATION) {
            None => default_deadline,
            Some(v) => match rollgit_syntax::parse_duration(v) {
                Ok(d) if d >= Duration::from_secs(1) => d,
                Ok(_) => {
                    errors.push(format!(
                        "{}: metadata.annotations.{PROGRESS_DEADLINE_ANNOTATION}: {v:?} is shorter than 1s",
                        a.source
                    ));
                    continue;
                }
                Err(m) => {
                    errors.push(format!(
                        "{}: metadata.annotations.{PROGRESS_DEADLINE_ANNOTATION}: {m}",
                        a.source
                    ));
                    continue;
                }
            },
        };
        let deadline = i64::try_from(deadline.as_secs()).unwrap_or(i64::MAX);
        for c in &a.components {
            let Some(t) = &c.rollout else { continue };
            let Some((workload, _, ns)) = workload_of(&c.workload) else {
                continue;
            };
            let Some(target) = t.target_revision.clone().or(c.revision.clone()) else {
                continue;
            };
            out.push((
                ns,
                RolloutSpec {
                    app: app.into(),
                    application: Some(a.name.clone()),
                    component: c.name.clone(),
                    workload,
                    target_revision: target,
                    source_revision: None,
                    target_size: t.target_size,
                    rollout_plan: PlanSpec {
                        rollout_strategy: t.rollout_strategy.clone(),
                        rollout_batches: t
                            .rollout_batches
                            .iter()
                            .map(|b| BatchSpec {
                                replicas: b.clone(),
                            })
                            .collect(),
                        batch_partition: t.batch_partition,
                        paused: false,
                        max_unavailable: None,
                    },
                    progress_deadline_seconds: deadline,
                    commit: Some(commit.into()),
                    repo: None,
                    path: None,
                },
            ));
        }
        for ar in &r.app_rollouts {
            for rc in &ar.components {
                if out.iter().any(|(_, s)| s.component == rc.component) {
                    continue;
                }
                let Some(c) = a.components.iter().find(|c| c.name == rc.component) else {
                    continue;
                };
                let Some((workload, object, ns)) = workload_of(&c.workload) else {
                    continue;
                };
                let size = ar
                    .plan
                    .target_size
                    .or(object["spec"]["replicas"].as_i64())
                    .unwrap_or(1);
                out.push((
                    ns,
                    RolloutSpec {
                        app: app.into(),
                        application: Some(a.name.clone()),
                        component: rc.component.clone(),
                        workload,
                        target_revision: rc.target_revision.clone(),
                        source_revision: rc.source_revision.clone(),
                        target_size: size,
                        rollout_plan: PlanSpec {
                            rollout_strategy: ar.plan.rollout_strategy.clone(),
                            rollout_batches: ar
                                .plan
                                .rollout_batches
                                .iter()
                                .map(|b| BatchSpec {
                                    replicas: b.replicas.clone(),
                                })
                                .collect(),
                            batch_partition: ar.plan.batch_partition,
                            paused: ar.plan.paused,
                            max_unavailable: None,
                        },
                        progress_deadline_seconds: deadline,
                        commit: Some(commit.into()),
                        repo: None,
                        path: None,
                    },
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}
