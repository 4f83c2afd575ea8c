//! The batch executor's decisions replayed against a tiny simulated cluster: seed 000's
//! transcript step by step (webservice and cloneset), seed 001's AppRollout, failures with
//! rollback, abandoning a run, and restarts at every pass.

use rollgit_core::batch::{Action, Decision, Observation, Spec, State, Style, Workload, reconcile};
use rollgit_core::intstr::IntOrString;
use rollgit_core::kubevela::{BatchRollingState, RollingState, RolloutStrategy};
use std::collections::{BTreeMap, BTreeSet};

/// Workloads whose status follows their spec at once (pods of `failing` revisions never get
/// ready), so each `settle` is "the watch showed the cluster caught up".
#[derive(Default, Clone)]
struct Sim {
    style: Style,
    ws: BTreeMap<String, Workload>,
    failing: BTreeSet<String>,
    /// Partition style: the revision each pod runs.
    pods: Vec<String>,
    /// Each action performed, for assertions.
    log: Vec<Action>,
}

impl Sim {
    fn new(style: Style) -> Self {
        Sim {
            style,
            ..Default::default()
        }
    }

    fn act(&mut self, a: &Action) {
        self.log.push(a.clone());
        match (self.style, a) {
            (
                Style::Deployments,
                Action::ApplyWorkload {
                    revision, replicas, ..
                },
            ) => {
                let w = self.ws.entry(revision.clone()).or_default();
                w.revision = revision.clone();
                w.spec_replicas = *replicas;
            }
            (Style::Deployments, Action::Scale { revision, replicas }) => {
                self.ws
                    .get_mut(revision)
                    .expect("scaled workload exists")
                    .spec_replicas = *replicas;
            }
            (Style::Deployments, Action::Delete { revision }) => {
                self.ws.remove(revision);
            }
            (
                Style::Partition,
                Action::ApplyWorkload {
                    revision,
                    replicas,
                    partition,
                },
            ) => {
                let w = self.ws.entry("w".into()).or_default();
                w.revision = revision.clone();
                w.spec_replicas = *replicas;
                w.partition = partition.unwrap_or(0);
            }
            (Style::Partition, Action::Scale { replicas, .. }) => {
                self.ws.get_mut("w").expect("workload exists").spec_replicas = *replicas;
            }
            (Style::Partition, Action::SetPartition { partition }) => {
                self.ws.get_mut("w").expect("workload exists").partition = *partition;
            }
            (_, Action::Rollback { .. }) => {}
            (s, a) => panic!("{a:?} is not an action for {s:?}"),
        }
    }

    /// The simulated controllers catch up.
    fn settle(&mut self) {
        match self.style {
            Style::Deployments => {
                for w in self.ws.values_mut() {
                    w.status_replicas = w.spec_replicas;
                    w.updated_replicas = w.spec_replicas;
                    w.ready_replicas = if self.failing.contains(&w.revision) {
                        0
                    } else {
                        w.spec_replicas
                    };
                    w.updated_ready_replicas = w.ready_replicas;
                    w.observed = true;
                }
            }
            Style::Partition => {
                let Some(w) = self.ws.get_mut("w") else {
                    return;
                };
                let n = usize::try_from(w.spec_replicas).unwrap_or(0);
                self.pods.truncate(n);
                while self.pods.len() < n {
                    self.pods.push(w.revision.clone());
                }
                // Update pods to the template until `partition` pods are left on others.
                let keep = usize::try_from(w.partition).unwrap_or(0);
                let mut stale = self.pods.iter().filter(|p| **p != w.revision).count();
                for p in self.pods.iter_mut().rev() {
                    if stale <= keep {
                        break;
                    }
                    if *p != w.revision {
                        *p = w.revision.clone();
                        stale -= 1;
                    }
                }
                let updated = self.pods.iter().filter(|p| **p == w.revision).count() as i64;
                let ready = self
                    .pods
                    .iter()
                    .filter(|p| !self.failing.contains(*p))
                    .count() as i64;
                w.status_replicas = self.pods.len() as i64;
                w.updated_replicas = updated;
                w.ready_replicas = ready;
                w.updated_ready_replicas = if self.failing.contains(&w.revision) {
                    0
                } else {
                    updated
                };
                w.observed = true;
            }
        }
    }

    fn obs(&self) -> Observation {
        Observation {
            workloads: self.ws.values().cloned().collect(),
            not_ready_pods: self
                .ws
                .values()
                .filter(|w| self.failing.contains(&w.revision))
                .map(|w| format!("{}-pod", w.revision))
                .collect(),
        }
    }

    /// `(revision, replicas)` for every workload, like `kubectl get deploy`.
    fn deployments(&self) -> Vec<(String, i64)> {
        self.ws
            .values()
            .map(|w| (w.revision.clone(), w.status_replicas))
            .collect()
    }

    fn pods_by_revision(&self) -> BTreeMap<String, usize> {
        let mut m = BTreeMap::new();
        for p in &self.pods {
            *m.entry(p.clone()).or_default() += 1;
        }
        m
    }
}

/// Passes until nothing changes (bounded), starting from `state`, at time `now`.
fn run(spec: &Spec, state: &mut State, sim: &mut Sim, now: i64) -> Vec<Decision> {
    let mut out = Vec::new();
    for _ in 0..50 {
        let d = reconcile(spec, state, &sim.obs(), now);
        for a in &d.actions {
            sim.act(a);
        }
        sim.settle();
        let done = d.actions.is_empty() && d.state == *state;
        *state = d.state.clone();
        out.push(d);
        if done {
            return out;
        }
    }
    panic!("no rest after 50 passes: {state:?}");
}

fn trait_spec(target: &str, size: i64, batches: &[i64], partition: Option<i64>) -> Spec {
    Spec {
        target_revision: target.into(),
        source_revision: None,
        target_size: size,
        batches: batches.iter().map(|b| IntOrString::Int(*b)).collect(),
        batch_partition: partition,
        strategy: RolloutStrategy::IncreaseFirst,
        paused: false,
        max_unavailable: None,
        progress_deadline_secs: 600,
        style: Style::Deployments,
        commit: Some(format!("commit-of-{target}")),
    }
}

fn columns(s: &State) -> (i64, i64, i64, &'static str, &'static str) {
    (
        s.rollout_target_size,
        s.upgraded_replicas,
        s.upgraded_ready_replicas,
        s.batch_rolling_state.as_str(),
        s.rolling_state.as_str(),
    )
}

fn dep(rev: &str, n: i64) -> (String, i64) {
    (rev.to_string(), n)
}

#[test]
fn seed000_webservice_transcript_from_first_release_to_scale_down() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();

    // First release: express-server-v1, 5 replicas in batches of 2 and 3.
    let mut spec = trait_spec("express-server-v1", 5, &[2, 3], None);
    let passes = run(&spec, &mut st, &mut sim, 0);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    assert_eq!(sim.deployments(), [dep("express-server-v1", 5)]);
    // In batches: the Deployment went to 2 before it went to 5.
    let scales: Vec<i64> = sim
        .log
        .iter()
        .filter_map(|a| match a {
            Action::Scale { replicas, .. } => Some(*replicas),
            _ => None,
        })
        .collect();
    assert_eq!(scales, [2, 5]);
    assert!(passes.len() > 2);

    // Upgrade to v2 with batchPartition 0: 2 upgraded, 3 old, held.
    spec = trait_spec("express-server-v2", 5, &[2, 3], Some(0));
    run(&spec, &mut st, &mut sim, 10);
    assert_eq!(columns(&st), (5, 2, 2, "batchReady", "rollingInBatches"));
    assert_eq!(
        sim.deployments(),
        [dep("express-server-v1", 3), dep("express-server-v2", 2)]
    );

    // Lift the partition: the rest rolls, v1 is deleted.
    spec.batch_partition = None;
    run(&spec, &mut st, &mut sim, 20);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    assert_eq!(sim.deployments(), [dep("express-server-v2", 5)]);
    assert_eq!(st.stable_revision.as_deref(), Some("express-server-v2"));

    // Roll back with targetRevision: v1 again, in batches, v2 deleted.
    sim.log.clear();
    spec = trait_spec("express-server-v1", 5, &[2, 3], None);
    run(&spec, &mut st, &mut sim, 30);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    assert_eq!(sim.deployments(), [dep("express-server-v1", 5)]);
    assert!(sim.log.contains(&Action::Scale {
        revision: "express-server-v1".into(),
        replicas: 2
    }));

    // Scale to 7 without batches.
    spec = trait_spec("express-server-v1", 7, &[], None);
    run(&spec, &mut st, &mut sim, 40);
    assert_eq!(columns(&st), (7, 7, 7, "batchReady", "rolloutSucceed"));
    assert_eq!(sim.deployments(), [dep("express-server-v1", 7)]);

    // Scale down to 5.
    spec = trait_spec("express-server-v1", 5, &[], None);
    run(&spec, &mut st, &mut sim, 50);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    assert_eq!(sim.deployments(), [dep("express-server-v1", 5)]);
}

#[test]
fn decrease_first_scales_the_source_down_before_the_target_up() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    let spec = trait_spec("web-v1", 4, &[2, 2], None);
    run(&spec, &mut st, &mut sim, 0);
    sim.log.clear();
    let mut spec = trait_spec("web-v2", 4, &[2, 2], None);
    spec.strategy = RolloutStrategy::DecreaseFirst;
    run(&spec, &mut st, &mut sim, 1);
    let scales: Vec<(String, i64)> = sim
        .log
        .iter()
        .filter_map(|a| match a {
            Action::Scale { revision, replicas } => Some((revision.clone(), *replicas)),
            _ => None,
        })
        .collect();
    assert_eq!(
        scales,
        [
            dep("web-v1", 2),
            dep("web-v2", 2),
            dep("web-v1", 0),
            dep("web-v2", 4)
        ]
    );
    assert_eq!(sim.deployments(), [dep("web-v2", 4)]);
}

#[test]
fn increase_first_never_drops_below_the_size_at_any_pass() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(
        &trait_spec("web-v1", 5, &[2, 3], None),
        &mut st,
        &mut sim,
        0,
    );
    let spec = trait_spec("web-v2", 5, &[1, 2, 2], None);
    for _ in 0..50 {
        let d = reconcile(&spec, &st, &sim.obs(), 1);
        for a in &d.actions {
            sim.act(a);
            let ready: i64 = sim
                .ws
                .values()
                .map(|w| w.ready_replicas.min(w.spec_replicas))
                .sum();
            assert!(ready >= 5, "after {a:?}: {ready} ready pods");
        }
        sim.settle();
        if d.actions.is_empty() && d.state == st {
            break;
        }
        st = d.state;
    }
    assert_eq!(st.rolling_state, RollingState::RolloutSucceed);
}

#[test]
fn restart_before_recording_repeats_the_same_absolute_actions() {
    // Each pass is run twice on the same recorded state (the daemon was killed after acting and
    // before recording): the second pass asks for exactly what the first did, so no batch is
    // redone differently or skipped.
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(
        &trait_spec("web-v1", 5, &[2, 3], None),
        &mut st,
        &mut sim,
        0,
    );
    let spec = trait_spec("web-v2", 5, &[2, 3], None);
    let mut seen_goals = Vec::new();
    for _ in 0..50 {
        let d = reconcile(&spec, &st, &sim.obs(), 1);
        for a in &d.actions {
            sim.act(a);
        }
        sim.settle();
        let again = reconcile(&spec, &st, &sim.obs(), 1);
        // Replaying after the actions landed never goes further back than the recorded batch.
        assert!(
            again.state.target_revision != st.target_revision
                || again.state.current_batch >= st.current_batch,
            "{st:?}\n{again:?}"
        );
        for a in &again.actions {
            if let Action::Scale { revision, replicas } = a
                && revision == "web-v2"
            {
                seen_goals.push(*replicas);
            }
            sim.act(a);
        }
        sim.settle();
        if d.actions.is_empty() && d.state == st {
            break;
        }
        st = d.state;
    }
    assert_eq!(st.rolling_state, RollingState::RolloutSucceed);
    assert_eq!(sim.deployments(), [dep("web-v2", 5)]);
    assert!(
        seen_goals.iter().all(|g| *g == 2 || *g == 5),
        "{seen_goals:?}"
    );
}

#[test]
fn batch_partition_holds_and_a_later_raise_continues() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(
        &trait_spec("a-v1", 10, &[2, 3, 5], None),
        &mut st,
        &mut sim,
        0,
    );
    let mut spec = trait_spec("a-v2", 10, &[2, 3, 5], Some(0));
    run(&spec, &mut st, &mut sim, 1);
    assert_eq!((st.current_batch, st.upgraded_replicas), (0, 2));
    spec.batch_partition = Some(1);
    run(&spec, &mut st, &mut sim, 2);
    assert_eq!((st.current_batch, st.upgraded_replicas), (1, 5));
    assert_eq!(st.rolling_state, RollingState::RollingInBatches);
    assert_eq!(st.batch_rolling_state, BatchRollingState::BatchReady);
    spec.batch_partition = None;
    run(&spec, &mut st, &mut sim, 3);
    assert_eq!(columns(&st), (10, 10, 10, "batchReady", "rolloutSucceed"));
}

#[test]
fn a_new_target_mid_rollout_abandons_and_drains_the_abandoned_revision_first() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(&trait_spec("a-v1", 5, &[2, 3], None), &mut st, &mut sim, 0);
    run(
        &trait_spec("a-v2", 5, &[2, 3], Some(0)),
        &mut st,
        &mut sim,
        1,
    );
    assert_eq!(sim.deployments(), [dep("a-v1", 3), dep("a-v2", 2)]);
    sim.log.clear();
    let spec = trait_spec("a-v3", 5, &[2, 3], None);
    let mut three_at_once = 0;
    for _ in 0..50 {
        let d = reconcile(&spec, &st, &sim.obs(), 2);
        for a in &d.actions {
            sim.act(a);
        }
        sim.settle();
        if sim.ws.values().filter(|w| w.spec_replicas > 0).count() == 3 {
            three_at_once += 1;
        }
        if d.actions.is_empty() && d.state == st {
            break;
        }
        st = d.state;
    }
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    assert_eq!(sim.deployments(), [dep("a-v3", 5)]);
    // The abandoned v2 is drained in the first batch; three revisions run for one batch at most.
    let first_source_scale = sim.log.iter().find_map(|a| match a {
        Action::Scale { revision, replicas } if revision != "a-v3" => {
            Some((revision.clone(), *replicas))
        }
        _ => None,
    });
    assert_eq!(first_source_scale, Some(dep("a-v2", 0)));
    assert!(
        three_at_once <= 1,
        "three revisions for {three_at_once} passes"
    );
}

#[test]
fn a_batch_past_its_deadline_fails_and_rolls_back_to_the_last_good_revision() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(&trait_spec("a-v1", 5, &[2, 3], None), &mut st, &mut sim, 0);
    sim.failing.insert("a-v2".into());
    let spec = trait_spec("a-v2", 5, &[2, 3], None);
    let passes = run(&spec, &mut st, &mut sim, 100);
    // Waiting: the batch asks to be looked at again when its deadline passes.
    assert_eq!(st.rolling_state, RollingState::RollingInBatches);
    assert_eq!(passes.last().and_then(|d| d.requeue_after), Some(600));
    // Within the deadline nothing fails.
    run(&spec, &mut st, &mut sim, 699);
    assert_eq!(st.rolling_state, RollingState::RollingInBatches);
    // At the deadline: rolloutFailed, then a rollback run to v1.
    sim.log.clear();
    let d = reconcile(&spec, &st, &sim.obs(), 700);
    let rb = d.actions.iter().find_map(|a| match a {
        Action::Rollback { from, to, reason } => Some((from.clone(), to.clone(), reason.clone())),
        _ => None,
    });
    let (from, to, reason) = rb.expect("a rollback action");
    assert_eq!((from.as_str(), to.as_str()), ("a-v2", "a-v1"));
    assert!(reason.contains("batch 1 of 2"), "{reason}");
    assert!(reason.contains("0 of 2 pods ready"), "{reason}");
    assert!(reason.contains("a-v2-pod"), "{reason}");
    let failed = d
        .state
        .condition("RolloutFailed")
        .expect("failure condition");
    assert_eq!(failed.reason, "ProgressDeadlineExceeded");
    for a in &d.actions {
        sim.act(a);
    }
    sim.settle();
    st = d.state;
    run(&spec, &mut st, &mut sim, 701);
    assert_eq!(sim.deployments(), [dep("a-v1", 5)]);
    assert_eq!(st.rolling_state, RollingState::RolloutFailed);
    assert_eq!(
        st.condition("RolloutFailed").map(|c| c.reason.as_str()),
        Some("RolledBack")
    );
    assert!(st.rollback.as_ref().is_some_and(|r| r.done));
    // The record stage learns which commits to revert: after v1's, up to v2's.
    assert_eq!(st.stable_commit.as_deref(), Some("commit-of-a-v1"));
    assert_eq!(st.failed_commit.as_deref(), Some("commit-of-a-v2"));
    // Git still asks for v2: nothing moves (no second rollout of the bad revision).
    let d = reconcile(&spec, &st, &sim.obs(), 5000);
    assert!(d.actions.is_empty(), "{:?}", d.actions);
    assert_eq!(d.state, st);
    // Git reverted to v1: the rollout agrees again, with nothing to move.
    let reverted = trait_spec("a-v1", 5, &[2, 3], None);
    sim.log.clear();
    run(&reverted, &mut st, &mut sim, 5001);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    // One condition per type, of the current run: the failed run's RolloutFailed is gone, so
    // RolloutFailed and RolloutSucceed are never True together.
    assert!(
        st.condition("RolloutFailed").is_none(),
        "{:?}",
        st.conditions
    );
    assert!(st.condition("RolloutSucceed").is_some_and(|c| c.status));
    let mut kinds: Vec<&str> = st.conditions.iter().map(|c| c.kind.as_str()).collect();
    let n = kinds.len();
    kinds.sort_unstable();
    kinds.dedup();
    assert_eq!(kinds.len(), n, "{:?}", st.conditions);
    assert!(
        sim.log.iter().all(|a| !matches!(a, Action::Scale { .. })),
        "{:?}",
        sim.log
    );
    // A fixed v3 rolls normally.
    run(
        &trait_spec("a-v3", 5, &[2, 3], None),
        &mut st,
        &mut sim,
        5002,
    );
    assert_eq!(sim.deployments(), [dep("a-v3", 5)]);
}

#[test]
fn a_first_release_that_fails_stays_failed_without_rollback() {
    let mut sim = Sim::new(Style::Deployments);
    sim.failing.insert("a-v1".into());
    let mut st = State::default();
    let spec = trait_spec("a-v1", 3, &[1, 2], None);
    run(&spec, &mut st, &mut sim, 0);
    let d = reconcile(&spec, &st, &sim.obs(), 600);
    assert!(
        !d.actions
            .iter()
            .any(|a| matches!(a, Action::Rollback { .. }))
    );
    assert_eq!(d.state.rolling_state, RollingState::RolloutFailed);
    assert_eq!(
        d.state.batch_rolling_state,
        BatchRollingState::BatchVerifyFailed
    );
    st = d.state;
    let d = reconcile(&spec, &st, &sim.obs(), 601);
    assert!(d.actions.is_empty());
}

#[test]
fn a_plan_that_does_not_add_up_fails_verification_and_a_fixed_one_runs() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(&trait_spec("a-v1", 5, &[2, 2], None), &mut st, &mut sim, 0);
    assert_eq!(st.rolling_state, RollingState::RolloutFailed);
    let c = st.condition("RolloutSpecVerifying").expect("condition");
    assert!(
        c.message.contains("must equal the total size (5)"),
        "{}",
        c.message
    );
    assert!(sim.ws.is_empty());
    run(&trait_spec("a-v1", 5, &[2, 3], None), &mut st, &mut sim, 1);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
}

#[test]
fn seed000_cloneset_updates_in_place_through_the_partition() {
    let mut sim = Sim::new(Style::Partition);
    let mut st = State::default();
    let mut spec = trait_spec("cloneset-server-v1", 5, &[2, 3], None);
    spec.style = Style::Partition;
    run(&spec, &mut st, &mut sim, 0);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    assert_eq!(
        sim.pods_by_revision(),
        BTreeMap::from([("cloneset-server-v1".to_string(), 5)])
    );
    spec.target_revision = "cloneset-server-v2".into();
    spec.batch_partition = Some(0);
    run(&spec, &mut st, &mut sim, 1);
    assert_eq!(columns(&st), (5, 2, 2, "batchReady", "rollingInBatches"));
    assert_eq!(
        sim.pods_by_revision(),
        BTreeMap::from([
            ("cloneset-server-v1".to_string(), 3),
            ("cloneset-server-v2".to_string(), 2)
        ])
    );
    assert_eq!(sim.ws["w"].partition, 3);
    spec.batch_partition = None;
    run(&spec, &mut st, &mut sim, 2);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    assert_eq!(sim.ws.len(), 1, "one workload, updated in place");
    assert_eq!(sim.ws["w"].partition, 0);
}

#[test]
fn seed001_approllout_percent_batches_with_partition_one() {
    // test-rolling-v1 → v2 with batches 1 / 50% / 50% and batchPartition 1 on 5 replicas.
    let mut sim = Sim::new(Style::Partition);
    let mut st = State::default();
    let mut spec = trait_spec("metrics-provider-v1", 5, &[], None);
    spec.style = Style::Partition;
    spec.batches = vec![IntOrString::str("10%"), "40%".into(), "50%".into()];
    run(&spec, &mut st, &mut sim, 0);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    spec.target_revision = "metrics-provider-v2".into();
    spec.source_revision = Some("metrics-provider-v1".into());
    spec.batches = vec![IntOrString::Int(1), "50%".into(), "50%".into()];
    spec.batch_partition = Some(1);
    run(&spec, &mut st, &mut sim, 1);
    // 1, then 1 + ceil(2.5) = 4, held after batch 1.
    assert_eq!(columns(&st), (5, 4, 4, "batchReady", "rollingInBatches"));
    assert_eq!(st.current_batch, 1);
    spec.batch_partition = None;
    run(&spec, &mut st, &mut sim, 2);
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
}

#[test]
fn a_failing_cloneset_rolls_back_in_place() {
    let mut sim = Sim::new(Style::Partition);
    let mut st = State::default();
    let mut spec = trait_spec("c-v1", 5, &[2, 3], None);
    spec.style = Style::Partition;
    run(&spec, &mut st, &mut sim, 0);
    sim.failing.insert("c-v2".into());
    spec.target_revision = "c-v2".into();
    run(&spec, &mut st, &mut sim, 10);
    run(&spec, &mut st, &mut sim, 700);
    assert_eq!(st.rolling_state, RollingState::RolloutFailed);
    assert_eq!(
        sim.pods_by_revision(),
        BTreeMap::from([("c-v1".to_string(), 5)])
    );
    assert_eq!(sim.ws["w"].revision, "c-v1");
}

#[test]
fn paused_plans_do_not_move() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(&trait_spec("a-v1", 4, &[2, 2], None), &mut st, &mut sim, 0);
    let mut spec = trait_spec("a-v2", 4, &[2, 2], None);
    spec.paused = true;
    run(&spec, &mut st, &mut sim, 1);
    assert_eq!(sim.deployments(), [dep("a-v1", 4), dep("a-v2", 0)]);
    assert!(st.condition("BatchPaused").is_some());
    spec.paused = false;
    run(&spec, &mut st, &mut sim, 2);
    assert_eq!(sim.deployments(), [dep("a-v2", 4)]);
}

#[test]
fn a_succeeded_rollout_corrects_scale_drift() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    let spec = trait_spec("a-v1", 4, &[2, 2], None);
    run(&spec, &mut st, &mut sim, 0);
    sim.ws.get_mut("a-v1").expect("exists").spec_replicas = 9;
    sim.settle();
    let d = reconcile(&spec, &st, &sim.obs(), 1);
    assert_eq!(
        d.actions,
        [Action::Scale {
            revision: "a-v1".into(),
            replicas: 4
        }]
    );
}

#[test]
fn state_round_trips_through_json_with_the_seed_names() {
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(
        &trait_spec("a-v1", 5, &[2, 3], Some(0)),
        &mut st,
        &mut sim,
        0,
    );
    let v = serde_json::to_value(&st).expect("serialises");
    assert_eq!(v["rollingState"], "rollingInBatches");
    assert_eq!(v["batchRollingState"], "batchReady");
    assert_eq!(v["upgradedReplicas"], 2);
    let back: State = serde_json::from_value(v).expect("deserialises");
    assert_eq!(back, st);
    let empty: State = serde_json::from_value(serde_json::json!({})).expect("defaults");
    assert_eq!(empty, State::default());
}

#[test]
fn a_scale_whose_int_batches_miss_the_size_change_fails_at_verify() {
    // KubeVela's verifyBatchesWithScale: scaling 5 to 7 with int batches 1 and 3 (4 pods for a
    // change of 2) fails the run before anything moves.
    let mut sim = Sim::new(Style::Deployments);
    let mut st = State::default();
    run(
        &trait_spec("web-v1", 5, &[2, 3], None),
        &mut st,
        &mut sim,
        0,
    );
    assert_eq!(columns(&st), (5, 5, 5, "batchReady", "rolloutSucceed"));
    sim.log.clear();
    run(
        &trait_spec("web-v1", 7, &[1, 3], None),
        &mut st,
        &mut sim,
        10,
    );
    assert_eq!(st.rolling_state, RollingState::RolloutFailed);
    assert!(
        !sim.log.iter().any(|a| matches!(a, Action::Scale { .. })),
        "{:?}",
        sim.log
    );
    assert_eq!(sim.deployments(), [dep("web-v1", 5)]);
    // With batches that add up to the change, the same scale succeeds.
    run(
        &trait_spec("web-v1", 7, &[1, 1], None),
        &mut st,
        &mut sim,
        20,
    );
    assert_eq!(columns(&st), (7, 7, 7, "batchReady", "rolloutSucceed"));
}
