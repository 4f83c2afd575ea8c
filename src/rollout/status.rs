//! The Rollout's status as written to the cluster ([`RolloutStatus`]) and the pure core's
//! [`State`], converted both ways. A status that does not describe a state (an unknown
//! `rollingState`, a bad timestamp) is an error naming the field, never a default.

use crate::k8s::crds::{Condition as WireCondition, RecordStatus, RollbackStatus, RolloutStatus};
use k8s_openapi::jiff::Timestamp;
use rollgit_core::batch::{Condition, Rollback, State};
use rollgit_core::kubevela::{BatchRollingState, RollingState};

/// The status to write for `state`, describing the spec at `generation`. `record` (the
/// record stage's) is left out: the caller keeps or clears it.
pub fn status_of(state: &State, generation: i64) -> RolloutStatus {
    RolloutStatus {
        rolling_state: state.rolling_state.as_str().into(),
        batch_rolling_state: state.batch_rolling_state.as_str().into(),
        current_batch: state.current_batch,
        upgraded_replicas: state.upgraded_replicas,
        upgraded_ready_replicas: state.upgraded_ready_replicas,
        rollout_target_size: state.rollout_target_size,
        target_revision: state.target_revision.clone(),
        source_revision: state.source_revision.clone(),
        original_size: state.original_size,
        scale: state.scale,
        rolling_back: state.rolling_back,
        stable_revision: state.stable_revision.clone(),
        stable_commit: state.stable_commit.clone(),
        failed_revision: state.failed_revision.clone(),
        failed_commit: state.failed_commit.clone(),
        batch_started_at: state.batch_started_at.map(rfc3339),
        conditions: state
            .conditions
            .iter()
            .map(|c| WireCondition {
                type_: c.kind.clone(),
                status: if c.status { "True" } else { "False" }.into(),
                reason: c.reason.clone(),
                message: c.message.clone(),
                last_transition_time: Some(rfc3339(c.at)),
            })
            .collect(),
        rollback: state.rollback.as_ref().map(|r| RollbackStatus {
            from: r.from.clone(),
            to: r.to.clone(),
            reason: r.reason.clone(),
            done: r.done,
        }),
        observed_generation: Some(generation),
        last_target_revision: state.stable_revision.clone(),
        record: None,
    }
}

/// The state a recorded status describes. An empty `rollingState` (nothing recorded yet)
/// is the start state.
pub fn state_of(status: &RolloutStatus) -> Result<State, String> {
    let start = State::default();
    let rolling_state = match status.rolling_state.as_str() {
        "" => start.rolling_state,
        s => RollingState::parse(s).ok_or_else(|| format!("rollingState: unknown state {s:?}"))?,
    };
    let batch_rolling_state = match status.batch_rolling_state.as_str() {
        "" => start.batch_rolling_state,
        s => BatchRollingState::parse(s)
            .ok_or_else(|| format!("batchRollingState: unknown state {s:?}"))?,
    };
    let batch_started_at = match &status.batch_started_at {
        None => None,
        Some(t) => Some(parse_rfc3339(t).map_err(|e| format!("batchStartedAt: {e}"))?),
    };
    let mut conditions = Vec::with_capacity(status.conditions.len());
    for (i, c) in status.conditions.iter().enumerate() {
        let at = match &c.last_transition_time {
            None => 0,
            Some(t) => {
                parse_rfc3339(t).map_err(|e| format!("conditions[{i}].lastTransitionTime: {e}"))?
            }
        };
        let status = match c.status.as_str() {
            "True" => true,
            "False" | "Unknown" => false,
            other => {
                return Err(format!(
                    "conditions[{i}].status: {other:?} is not True or False"
                ));
            }
        };
        conditions.push(Condition {
            kind: c.type_.clone(),
            status,
            reason: c.reason.clone(),
            message: c.message.clone(),
            at,
        });
    }
    Ok(State {
        rolling_state,
        batch_rolling_state,
        current_batch: status.current_batch,
        upgraded_replicas: status.upgraded_replicas,
        upgraded_ready_replicas: status.upgraded_ready_replicas,
        rollout_target_size: if status.rolling_state.is_empty() {
            start.rollout_target_size
        } else {
            status.rollout_target_size
        },
        target_revision: status.target_revision.clone(),
        source_revision: status.source_revision.clone(),
        original_size: status.original_size,
        scale: status.scale,
        rolling_back: status.rolling_back,
        stable_revision: status.stable_revision.clone(),
        stable_commit: status.stable_commit.clone(),
        failed_revision: status.failed_revision.clone(),
        failed_commit: status.failed_commit.clone(),
        batch_started_at,
        conditions,
        rollback: status.rollback.as_ref().map(|r| Rollback {
            from: r.from.clone(),
            to: r.to.clone(),
            reason: r.reason.clone(),
            done: r.done,
        }),
    })
}

/// RFC 3339 in UTC of Unix seconds.
/// Whether a commit other than the one whose spec rolled back, and other than the revert commit
/// the record stage wrote, changed the spec since `record` was written.
pub fn record_spec_moved(record: &RecordStatus, spec_commit: Option<&str>) -> bool {
    let same = |c: &Option<String>| c.is_some() && c.as_deref() == spec_commit;
    !(record.spec_commit.as_deref() == spec_commit || same(&record.commit))
}

/// Whether the record stage's `record` of the last rollback can go: a commit other than the
/// one whose spec rolled back, and other than the revert commit the record stage wrote
/// itself, changed the spec since (`spec_commit`), and the rollout of that spec to a revision
/// other than the one rolled back to has succeeded (`state`). Until then the record stays, so
/// `status`, `history` and the Rollout show the last rollback.
pub fn record_is_stale(record: &RecordStatus, spec_commit: Option<&str>, state: &State) -> bool {
    record_spec_moved(record, spec_commit)
        && state.rolling_state == RollingState::RolloutSucceed
        && state
            .target_revision
            .as_deref()
            .is_some_and(|t| t != record.to)
}

pub fn rfc3339(unix: i64) -> String {
    Timestamp::from_second(unix)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn parse_rfc3339(s: &str) -> Result<i64, String> {
    s.parse::<Timestamp>()
        .map(|t| t.as_second())
        .map_err(|e| format!("{s:?} is not an RFC 3339 time: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_stays_until_a_new_commit_changes_the_spec() {
        let record = |spec: Option<&str>, commit: Option<&str>| RecordStatus {
            spec_commit: spec.map(Into::into),
            commit: commit.map(Into::into),
            ..RecordStatus::default()
        };
        // (record's spec commit, revert commit, spec commit now, stale)
        let table = [
            (Some("bad"), Some("revert"), Some("bad"), false),
            (Some("bad"), Some("revert"), Some("revert"), false),
            (Some("bad"), Some("revert"), Some("later"), true),
            (Some("bad"), None, Some("bad"), false),
            (Some("bad"), None, Some("later"), true),
            (None, None, None, false),
            (None, None, Some("first"), true),
            (Some("bad"), None, None, true),
        ];
        let succeeded = |target: &str| State {
            rolling_state: RollingState::RolloutSucceed,
            target_revision: Some(target.into()),
            ..State::default()
        };
        for (spec, commit, now, stale) in table {
            let mut r = record(spec, commit);
            r.to = "web-v1".into();
            r.from = "web-v2".into();
            // A later rollout of another revision succeeded: gone as soon as the spec moved.
            assert_eq!(
                super::record_is_stale(&r, now, &succeeded("web-v3")),
                stale,
                "{spec:?} {commit:?} now {now:?}"
            );
            // Until then it stays: the new spec's rollout is running, or it went back to the
            // revision rolled back to.
            assert!(
                !super::record_is_stale(&r, now, &rolling()),
                "{spec:?} {commit:?} now {now:?}"
            );
            assert!(
                !super::record_is_stale(&r, now, &succeeded("web-v1")),
                "{spec:?} {commit:?} now {now:?}"
            );
        }
    }

    fn rolling() -> State {
        State {
            rolling_state: RollingState::RollingInBatches,
            batch_rolling_state: BatchRollingState::BatchInRolling,
            current_batch: 1,
            upgraded_replicas: 2,
            upgraded_ready_replicas: 1,
            rollout_target_size: 5,
            target_revision: Some("web-v2".into()),
            source_revision: Some("web-v1".into()),
            stable_revision: Some("web-v1".into()),
            stable_commit: Some("a".repeat(40)),
            failed_revision: Some("web-v3".into()),
            failed_commit: Some("b".repeat(40)),
            batch_started_at: Some(1_700_000_000),
            conditions: vec![Condition {
                kind: "RolloutInBatches".into(),
                status: true,
                reason: "RollingInBatches".into(),
                message: "batch 2".into(),
                at: 1_700_000_000,
            }],
            rollback: Some(Rollback {
                from: "web-v3".into(),
                to: "web-v1".into(),
                reason: "batch 1 not ready".into(),
                done: true,
            }),
            ..State::default()
        }
    }

    #[test]
    fn a_state_survives_the_round_trip_through_the_cluster() {
        let cases = [("start", State::default()), ("rolling", rolling())];
        for (name, state) in cases {
            let status = status_of(&state, 7);
            assert_eq!(status.observed_generation, Some(7), "{name}");
            let json = serde_json::to_value(&status).expect("serializes");
            let back: RolloutStatus = serde_json::from_value(json).expect("parses");
            assert_eq!(state_of(&back), Ok(state), "{name}");
        }
    }

    #[test]
    fn the_wire_names_are_the_seeds() {
        let v = serde_json::to_value(status_of(&rolling(), 3)).expect("serializes");
        assert_eq!(v["rollingState"], "rollingInBatches");
        assert_eq!(v["batchRollingState"], "batchInRolling");
        assert_eq!(v["batchStartedAt"], "2023-11-14T22:13:20Z");
        assert_eq!(v["conditions"][0]["status"], "True");
        assert_eq!(v["lastTargetRevision"], "web-v1");
        // Unset optional fields are written as null: a merge patch of the status clears them.
        let start = serde_json::to_value(status_of(&State::default(), 1)).expect("serializes");
        assert!(start.get("targetRevision").is_some_and(|v| v.is_null()));
    }

    #[test]
    fn a_status_that_describes_no_state_is_an_error_naming_the_field() {
        let bad = |f: fn(&mut RolloutStatus)| {
            let mut s = status_of(&rolling(), 1);
            f(&mut s);
            state_of(&s).expect_err("must not parse")
        };
        assert!(bad(|s| s.rolling_state = "sailing".into()).starts_with("rollingState:"));
        assert!(bad(|s| s.batch_rolling_state = "x".into()).starts_with("batchRollingState:"));
        assert!(
            bad(|s| s.batch_started_at = Some("yesterday".into())).starts_with("batchStartedAt:")
        );
        assert!(
            bad(|s| s.conditions[0].status = "Maybe".into()).starts_with("conditions[0].status")
        );
    }

    #[test]
    fn an_empty_status_is_the_start_state() {
        assert_eq!(state_of(&RolloutStatus::default()), Ok(State::default()));
    }
}
