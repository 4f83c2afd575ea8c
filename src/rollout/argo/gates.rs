//! The gates of an Argo canary: promote, promote `--full`, abort and retry, as the
//! `kubectl argo rollouts` plugin performs them (`pkg/kubectl-argo-rollouts/cmd/{promote,
//! abort,retry}`): JSON merge patches of `status` (through the status subresource, or the
//! object itself where that is not served) and of `spec.paused`. The controller — rollgit's or
//! Argo's — does the rest, so the plugin works against rollgit and `rollgit promote` against
//! Argo.

use kube::api::{Api, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};

/// A gate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// `promote`: past the current pause (or the current step when not paused).
    Promote,
    /// `promote --full`: skip the remaining steps.
    PromoteFull,
    /// `abort`: traffic and replicas back to stable.
    Abort,
    /// `retry`: start the canary again after an abort.
    Retry,
}

/// The patches of a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patches {
    /// Of the object (`spec.paused`).
    pub spec: Option<Value>,
    /// Of the status subresource.
    pub status: Option<Value>,
    /// Of the object when the status subresource is not served (both in one).
    pub unified: Value,
}

/// `GetCurrentCanaryStep`'s index: `None` without steps.
fn current_step_index(rollout: &Value) -> Option<i64> {
    let steps = rollout["spec"]["strategy"]["canary"]["steps"].as_array()?;
    if steps.is_empty() {
        return None;
    }
    Some(rollout["status"]["currentStepIndex"].as_i64().unwrap_or(0))
}

fn steps_len(rollout: &Value) -> i64 {
    rollout["spec"]["strategy"]["canary"]["steps"]
        .as_array()
        .map_or(0, |s| i64::try_from(s.len()).unwrap_or(i64::MAX))
}

/// The patches `gate` makes to `rollout` (the live object), as the plugin computes them.
///
/// ```
/// use rollgit::rollout::argo::gates::{patches, Gate};
/// let r = serde_json::json!({"spec": {"strategy": {"canary": {"steps": [{"pause": {}}, {"setWeight": 50}]}}},
///     "status": {"currentStepIndex": 0, "pauseConditions": [{"reason": "CanaryPauseStep"}]}});
/// assert_eq!(patches(&r, Gate::Promote).status, Some(serde_json::json!({"status": {"pauseConditions": null}})));
/// assert_eq!(patches(&r, Gate::Abort).status, Some(serde_json::json!({"status": {"abort": true}})));
/// ```
pub fn patches(rollout: &Value, gate: Gate) -> Patches {
    let paused = rollout["spec"]["paused"].as_bool().unwrap_or(false);
    let unpause = || paused.then(|| json!({"spec": {"paused": false}}));
    match gate {
        Gate::Abort => Patches {
            spec: None,
            status: Some(json!({"status": {"abort": true}})),
            unified: json!({"status": {"abort": true}}),
        },
        Gate::Retry => Patches {
            spec: None,
            status: Some(json!({"status": {"abort": false}})),
            unified: json!({"status": {"abort": false}}),
        },
        Gate::PromoteFull => {
            let status = &rollout["status"];
            let promoted = status["currentPodHash"] == status["stableRS"];
            Patches {
                spec: unpause(),
                status: (!promoted).then(|| json!({"status": {"promoteFull": true}})),
                unified: json!({"spec": {"paused": false}, "status": {"promoteFull": true}}),
            }
        }
        Gate::Promote => {
            let pause_conditions = rollout["status"]["pauseConditions"]
                .as_array()
                .is_some_and(|p| !p.is_empty());
            let inconclusive = rollout["status"]["canary"]["currentStepAnalysisRunStatus"]["status"]
                == "Inconclusive";
            let controller_pause = rollout["status"]["controllerPause"]
                .as_bool()
                .unwrap_or(false);
            let next =
                current_step_index(rollout).map(|i| if i < steps_len(rollout) { i + 1 } else { i });
            let mut unified =
                json!({"spec": {"paused": false}, "status": {"pauseConditions": null}});
            let status = if inconclusive && pause_conditions && controller_pause {
                next.map(|i| {
                    json!({"status": {"pauseConditions": null, "controllerPause": false, "currentStepIndex": i}})
                })
            } else if pause_conditions {
                Some(json!({"status": {"pauseConditions": null}}))
            } else if let Some(i) = next {
                unified = json!({"spec": {"paused": false}, "status": {"pauseConditions": null, "currentStepIndex": i}});
                Some(json!({"status": {"pauseConditions": null, "currentStepIndex": i}}))
            } else {
                None
            };
            Patches {
                spec: unpause(),
                status,
                unified,
            }
        }
    }
}

/// Performs `gate` on the Rollout `name` (status subresource first; the whole object when the
/// cluster does not serve it, as the plugin does). Returns the Rollout as patched.
pub async fn apply(
    api: &Api<DynamicObject>,
    name: &str,
    gate: Gate,
) -> Result<DynamicObject, kube::Error> {
    let live = api.get(name).await?;
    let value = serde_json::to_value(&live).unwrap_or_default();
    let p = patches(&value, gate);
    let pp = PatchParams {
        field_manager: Some("rollgit-gate".into()),
        ..Default::default()
    };
    let mut out = live;
    let mut spec = p.spec;
    if let Some(status) = &p.status {
        match api.patch_status(name, &pp, &Patch::Merge(status)).await {
            Ok(o) => out = o,
            Err(kube::Error::Api(e)) if e.code == 404 => spec = Some(p.unified.clone()),
            Err(e) => return Err(e),
        }
    }
    if let Some(s) = spec {
        out = api.patch(name, &pp, &Patch::Merge(&s)).await?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rollout(status: Value, paused: bool) -> Value {
        json!({
            "spec": {"paused": paused, "strategy": {"canary": {"steps": [{"setWeight": 10}, {"pause": {}}, {"setWeight": 50}]}}},
            "status": status,
        })
    }

    #[test]
    fn the_patches_are_the_plugins() {
        struct Case {
            name: &'static str,
            rollout: Value,
            gate: Gate,
            spec: Option<Value>,
            status: Option<Value>,
        }
        let cases = [
            Case {
                name: "promote a paused step clears the pause conditions",
                rollout: rollout(
                    json!({"currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep"}]}),
                    false,
                ),
                gate: Gate::Promote,
                spec: None,
                status: Some(json!({"status": {"pauseConditions": null}})),
            },
            Case {
                name: "promote without a pause skips the current step",
                rollout: rollout(json!({"currentStepIndex": 0}), false),
                gate: Gate::Promote,
                spec: None,
                status: Some(json!({"status": {"pauseConditions": null, "currentStepIndex": 1}})),
            },
            Case {
                name: "promote at the end stays at the end",
                rollout: rollout(json!({"currentStepIndex": 3}), false),
                gate: Gate::Promote,
                spec: None,
                status: Some(json!({"status": {"pauseConditions": null, "currentStepIndex": 3}})),
            },
            Case {
                name: "promote unpauses a paused spec",
                rollout: rollout(
                    json!({"currentStepIndex": 1, "pauseConditions": [{"reason": "CanaryPauseStep"}]}),
                    true,
                ),
                gate: Gate::Promote,
                spec: Some(json!({"spec": {"paused": false}})),
                status: Some(json!({"status": {"pauseConditions": null}})),
            },
            Case {
                name: "promote --full mid-canary",
                rollout: rollout(json!({"currentPodHash": "b", "stableRS": "a"}), false),
                gate: Gate::PromoteFull,
                spec: None,
                status: Some(json!({"status": {"promoteFull": true}})),
            },
            Case {
                name: "promote --full of a promoted rollout patches nothing",
                rollout: rollout(json!({"currentPodHash": "a", "stableRS": "a"}), false),
                gate: Gate::PromoteFull,
                spec: None,
                status: None,
            },
            Case {
                name: "abort",
                rollout: rollout(json!({}), false),
                gate: Gate::Abort,
                spec: None,
                status: Some(json!({"status": {"abort": true}})),
            },
            Case {
                name: "retry",
                rollout: rollout(json!({"abort": true}), false),
                gate: Gate::Retry,
                spec: None,
                status: Some(json!({"status": {"abort": false}})),
            },
        ];
        for c in cases {
            let p = patches(&c.rollout, c.gate);
            assert_eq!(p.spec, c.spec, "{}", c.name);
            assert_eq!(p.status, c.status, "{}", c.name);
        }
    }
}
