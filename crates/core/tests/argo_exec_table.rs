//! The Argo canary controller's pass (`rollgit_core::argo_exec::reconcile`) driven against a
//! simulated cluster: ReplicaSets get their pods at once and make them available when the
//! simulated kubelet ticks, time moves only when a case says so. Each case checks the counts
//! ROLLOUT-SEMANTICS.md A and the seed 002 transcript give, and that availability never drops
//! below `replicas − maxUnavailable` at any observed state.

use rollgit_core::argo::{CanarySpec, CanaryStep, PauseReason, SetCanaryScale};
use rollgit_core::argo_exec::*;
use rollgit_core::intstr::IntOrString;

/// A simulated cluster and the controller's recorded status.
struct Sim {
    spec: ExecSpec,
    status: Status,
    rss: Vec<ObservedRs>,
    now: i64,
    /// Pods become available only when the kubelet ticks.
    ready: bool,
    /// The lowest total availability seen since the first rollout completed.
    min_available: Option<i64>,
    routes: Vec<Action>,
    workload_replicas: Option<i64>,
    passes: usize,
}

impl Sim {
    fn new(spec: ExecSpec) -> Self {
        Sim {
            spec,
            status: Status::default(),
            rss: Vec::new(),
            now: 1_000_000,
            ready: true,
            min_available: None,
            routes: Vec::new(),
            workload_replicas: None,
            passes: 0,
        }
    }

    fn rs(&self, hash: &str) -> Option<&ObservedRs> {
        self.rss.iter().find(|r| r.hash == hash)
    }

    fn spec_of(&self, hash: &str) -> i64 {
        self.rs(hash).map_or(0, |r| r.spec)
    }

    fn available(&self) -> i64 {
        self.rss.iter().map(|r| r.available).sum()
    }

    /// One pass; returns whether it changed anything.
    fn pass(&mut self) -> bool {
        self.passes += 1;
        assert!(self.passes < 10_000, "the controller does not settle");
        if let (Some(ws), Some(w)) = (self.workload_replicas, self.spec.workload.as_mut()) {
            w.replicas = ws;
        }
        let d = reconcile(&self.spec, &self.status, &self.rss, self.now);
        let mut changed = d.status != self.status;
        for a in &d.actions {
            match a {
                Action::CreateReplicaSet {
                    hash,
                    revision,
                    replicas,
                } => {
                    self.rss.push(ObservedRs {
                        hash: hash.clone(),
                        revision: *revision,
                        spec: *replicas,
                        replicas: *replicas,
                        ..Default::default()
                    });
                    changed = true;
                }
                Action::ScaleReplicaSet { hash, replicas } => {
                    let rs = self
                        .rss
                        .iter_mut()
                        .find(|r| r.hash == *hash)
                        .expect("scales a ReplicaSet that exists");
                    if rs.spec != *replicas {
                        changed = true;
                    }
                    rs.spec = *replicas;
                    rs.replicas = *replicas;
                    // Scaling down removes available pods first only when none are unready.
                    rs.available = rs.available.min(*replicas);
                    rs.ready = rs.ready.min(*replicas);
                }
                Action::SetScaleDownDeadline { hash, at } => {
                    if let Some(rs) = self.rss.iter_mut().find(|r| r.hash == *hash)
                        && rs.scale_down_deadline != *at
                    {
                        rs.scale_down_deadline = *at;
                        changed = true;
                    }
                }
                Action::SetRevision { hash, revision } => {
                    if let Some(rs) = self.rss.iter_mut().find(|r| r.hash == *hash) {
                        rs.revision = *revision;
                        changed = true;
                    }
                }
                Action::DeleteReplicaSet { hash } => {
                    self.rss.retain(|r| r.hash != *hash);
                    changed = true;
                }
                Action::SetServiceSelector { service, hash } => {
                    for s in [&mut self.spec.stable_service, &mut self.spec.canary_service]
                        .into_iter()
                        .flatten()
                    {
                        if s.name == *service && s.selector.as_deref() != Some(hash) {
                            s.selector = Some(hash.clone());
                            s.managed = true;
                            changed = true;
                        }
                    }
                }
                Action::SetCanaryWeight { .. } | Action::RemoveCanaryRoute => {
                    if self.routes.last() != Some(a) {
                        self.routes.push(a.clone());
                    }
                }
                Action::ScaleWorkload { replicas } => {
                    if self.workload_replicas != Some(*replicas) {
                        self.workload_replicas = Some(*replicas);
                        changed = true;
                    }
                }
            }
        }
        self.status = d.status;
        self.watch_availability();
        changed
    }

    fn watch_availability(&mut self) {
        if self.status.stable_rs.is_empty()
            || self.status.phase == Phase::Progressing && self.min_available.is_none()
        {
            if self.status.phase == Phase::Healthy {
                self.min_available = Some(self.available());
            }
            return;
        }
        let a = self.available();
        self.min_available = Some(self.min_available.map_or(a, |m| m.min(a)));
    }

    /// The kubelet: every pod becomes ready and available.
    fn tick(&mut self) -> bool {
        if !self.ready {
            return false;
        }
        let mut changed = false;
        for rs in &mut self.rss {
            if rs.available != rs.replicas || rs.ready != rs.replicas {
                rs.available = rs.replicas;
                rs.ready = rs.replicas;
                changed = true;
            }
        }
        self.watch_availability();
        changed
    }

    /// Passes and kubelet ticks until nothing changes.
    fn settle(&mut self) {
        loop {
            let mut any = false;
            while self.pass() {
                any = true;
            }
            if self.tick() {
                any = true;
            }
            if !any {
                break;
            }
        }
    }

    fn template(&mut self, hash: &str) {
        self.spec.pod_hash = hash.to_string();
        self.settle();
    }

    fn advance(&mut self, secs: i64) {
        self.now += secs;
        self.settle();
    }

    /// `kubectl argo rollouts promote` (no flags): clears the pause conditions.
    fn promote(&mut self) {
        if self.status.pause_conditions.is_empty() {
            let n = self.spec.canary.steps.len();
            self.status.current_step_index = self.status.current_step_index.map(|i| (i + 1).min(n));
        }
        self.status.pause_conditions.clear();
        self.spec.paused = false;
        self.settle();
    }

    fn counts(&self, canary: &str, stable: &str) -> (i64, i64) {
        (self.spec_of(canary), self.spec_of(stable))
    }
}

fn seed002(weights: &[i64]) -> CanarySpec {
    let steps = vec![
        CanaryStep::weight(weights[0]),
        CanaryStep::pause(Some(IntOrString::str("1h"))),
        CanaryStep::weight(weights[1]),
        CanaryStep::pause(None),
    ];
    CanarySpec {
        replicas: 10,
        max_surge: Some(IntOrString::str("25%")),
        max_unavailable: Some(IntOrString::Int(0)),
        steps,
        ..Default::default()
    }
}

fn deployed(canary: CanarySpec) -> Sim {
    let mut sim = Sim::new(ExecSpec::new("example-rollout", canary, "v1", "steps"));
    sim.settle();
    assert_eq!(sim.status.phase, Phase::Healthy, "{:?}", sim.status);
    assert_eq!(sim.status.stable_rs, "v1");
    sim
}

#[test]
fn the_first_deploy_marks_the_template_stable_and_scales_it_up() {
    let sim = deployed(seed002(&[10, 20]));
    assert_eq!(sim.spec_of("v1"), 10);
    assert_eq!(sim.status.current_step_index, Some(4));
    assert_eq!(sim.status.available_replicas, 10);
    let completed = sim
        .status
        .condition("Completed")
        .expect("a Completed condition");
    assert_eq!(
        (completed.status.as_str(), completed.reason.as_str()),
        ("True", "RolloutCompleted")
    );
    let progressing = sim.status.condition("Progressing").expect("Progressing");
    assert_eq!(progressing.reason, "NewReplicaSetAvailable");
    assert_eq!(
        progressing.message,
        "ReplicaSet \"example-rollout-v1\" has successfully progressed."
    );
}

#[test]
fn seed002_steps_with_argos_counts_pauses_and_promote() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.template("v2");
    // setWeight 10: 1 canary + 9 stable; then the 1h pause.
    assert_eq!(sim.counts("v2", "v1"), (1, 9), "setWeight 10");
    assert_eq!(sim.status.current_step_index, Some(1));
    assert_eq!(sim.status.pause_conditions.len(), 1);
    assert_eq!(
        sim.status.pause_conditions[0].reason,
        PauseReason::CanaryPauseStep
    );
    assert!(sim.status.controller_pause);
    assert_eq!(sim.status.phase, Phase::Paused);
    assert_eq!(sim.status.message, "CanaryPauseStep");
    let started = sim.status.pause_conditions[0].start_time;
    let d = reconcile(&sim.spec, &sim.status, &sim.rss, sim.now);
    assert_eq!(
        d.requeue_at,
        Some(started + 3601),
        "a timer at the pause's end"
    );
    // Exactly at the end of the hour the pause holds; one second later it is over.
    sim.advance(started + 3600 - sim.now);
    assert_eq!(sim.status.current_step_index, Some(1));
    sim.advance(1);
    assert_eq!(sim.counts("v2", "v1"), (2, 8), "setWeight 20");
    assert_eq!(
        sim.status.current_step_index,
        Some(3),
        "at the indefinite pause"
    );
    assert_eq!(sim.status.phase, Phase::Paused);
    // Time does not end an indefinite pause.
    sim.advance(100_000);
    assert_eq!(sim.status.current_step_index, Some(3));
    sim.promote();
    assert_eq!(sim.counts("v2", "v1"), (10, 0));
    assert_eq!(sim.status.stable_rs, "v2");
    assert_eq!(sim.status.current_step_index, Some(4));
    assert_eq!(sim.status.phase, Phase::Healthy);
    assert!(sim.status.pause_conditions.is_empty());
    assert!(!sim.status.controller_pause);
    assert_eq!(
        sim.min_available,
        Some(10),
        "maxUnavailable 0: never below 10 available"
    );
}

#[test]
fn fifteen_percent_rounds_to_two_canaries_and_nine_stable() {
    let mut sim = deployed(seed002(&[15, 20]));
    sim.template("v2");
    assert_eq!(sim.counts("v2", "v1"), (2, 9));
    assert_eq!(sim.min_available, Some(10));
}

#[test]
fn promote_full_skips_the_remaining_steps_within_surge() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.template("v2");
    sim.status.promote_full = true;
    sim.settle();
    assert_eq!(sim.counts("v2", "v1"), (10, 0));
    assert_eq!(sim.status.stable_rs, "v2");
    assert!(!sim.status.promote_full);
    assert_eq!(sim.min_available, Some(10));
}

#[test]
fn abort_returns_the_replicas_to_stable_and_resets_the_step() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.template("v2");
    sim.status.abort = true;
    sim.settle();
    assert_eq!(sim.counts("v2", "v1"), (0, 10));
    assert_eq!(sim.status.current_step_index, Some(0));
    assert_eq!(sim.status.phase, Phase::Degraded);
    assert!(sim.status.pause_conditions.is_empty());
    let p = sim.status.condition("Progressing").expect("Progressing");
    assert_eq!(
        (p.status.as_str(), p.reason.as_str()),
        ("False", "RolloutAborted")
    );
    assert_eq!(p.message, "Rollout aborted update to revision 2");
    assert!(sim.status.message.starts_with("RolloutAborted: "));
    let d = reconcile(&sim.spec, &sim.status, &sim.rss, sim.now);
    assert_eq!(
        d.aborted,
        Some(Aborted {
            canary_hash: "v2".into(),
            stable_hash: "v1".into(),
            message: "Rollout aborted update to revision 2".into()
        })
    );
    assert_eq!(sim.min_available, Some(10));
    // The template goes back to the stable one (the revert): healthy again, steps skipped.
    sim.template("v1");
    assert_eq!(sim.status.phase, Phase::Healthy, "{:?}", sim.status);
    assert!(!sim.status.abort);
    assert_eq!(sim.status.current_step_index, Some(4));
}

#[test]
fn retry_after_abort_starts_the_steps_again() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.template("v2");
    sim.status.abort = true;
    sim.settle();
    sim.status.abort = false;
    sim.settle();
    assert_eq!(sim.counts("v2", "v1"), (1, 9));
    assert_eq!(sim.status.current_step_index, Some(1));
    assert_eq!(sim.status.phase, Phase::Paused);
}

#[test]
fn a_new_template_mid_canary_drains_the_intermediate_replicaset() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.template("v2");
    assert_eq!(sim.counts("v2", "v1"), (1, 9));
    sim.template("v3");
    assert_eq!(sim.spec_of("v2"), 0, "the intermediate canary is drained");
    assert_eq!(sim.counts("v3", "v1"), (1, 9));
    assert_eq!(sim.status.current_step_index, Some(1));
    assert_eq!(sim.status.stable_rs, "v1");
    assert_eq!(sim.min_available, Some(10));
    assert_eq!(sim.rs("v3").map(|r| r.revision), Some(3));
}

#[test]
fn a_template_back_to_stable_mid_canary_skips_the_steps() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.template("v2");
    sim.template("v1");
    assert_eq!(sim.counts("v1", "v2"), (10, 0));
    assert_eq!(sim.status.current_step_index, Some(4));
    assert_eq!(sim.status.phase, Phase::Healthy);
    assert_eq!(
        sim.rs("v1").map(|r| r.revision),
        Some(3),
        "the template comes back as revision 3"
    );
}

#[test]
fn spec_paused_holds_every_step() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.spec.paused = true;
    sim.template("v2");
    assert_eq!(sim.counts("v2", "v1"), (0, 10));
    assert_eq!(sim.status.phase, Phase::Paused);
    assert_eq!(sim.status.message, "manually paused");
    sim.spec.paused = false;
    sim.settle();
    assert_eq!(sim.counts("v2", "v1"), (1, 9));
}

#[test]
fn without_steps_the_canary_is_a_rolling_update() {
    let canary = CanarySpec {
        replicas: 4,
        max_surge: Some(IntOrString::Int(1)),
        max_unavailable: Some(IntOrString::Int(0)),
        ..Default::default()
    };
    let mut sim = deployed(canary);
    sim.template("v2");
    assert_eq!(sim.counts("v2", "v1"), (4, 0));
    assert_eq!(sim.status.stable_rs, "v2");
    assert_eq!(sim.status.current_step_index, None);
    assert_eq!(sim.min_available, Some(4));
}

#[test]
fn a_progress_deadline_with_abort_aborts_the_canary() {
    let mut spec = seed002(&[10, 20]);
    spec.replicas = 4;
    let mut sim = deployed(spec);
    sim.spec.progress_deadline_seconds = 60;
    sim.spec.progress_deadline_abort = true;
    sim.ready = false;
    sim.template("v2");
    assert_eq!(
        sim.counts("v2", "v1"),
        (1, 4),
        "the canary pod never becomes ready"
    );
    let d = reconcile(&sim.spec, &sim.status, &sim.rss, sim.now);
    let wake = d.requeue_at.expect("a timer at the progress deadline");
    sim.advance(wake - sim.now);
    assert!(sim.status.abort, "{:?}", sim.status);
    assert_eq!(sim.counts("v2", "v1"), (0, 4));
    let p = sim.status.condition("Progressing").expect("Progressing");
    assert_eq!(
        p.message,
        "Rollout aborted update to revision 2: ReplicaSet \"example-rollout-v2\" has timed out progressing."
    );
    assert_eq!(sim.status.phase, Phase::Degraded);
}

#[test]
fn a_progress_deadline_without_abort_only_degrades() {
    let mut spec = seed002(&[10, 20]);
    spec.replicas = 4;
    let mut sim = deployed(spec);
    sim.spec.progress_deadline_seconds = 60;
    sim.ready = false;
    sim.template("v2");
    sim.advance(61);
    assert!(!sim.status.abort);
    let p = sim.status.condition("Progressing").expect("Progressing");
    assert_eq!(p.reason, "ProgressDeadlineExceeded");
    assert_eq!(sim.status.phase, Phase::Degraded);
}

fn routed(dynamic: bool) -> ExecSpec {
    let canary = CanarySpec {
        replicas: 10,
        max_surge: Some(IntOrString::str("25%")),
        max_unavailable: Some(IntOrString::Int(0)),
        steps: vec![
            CanaryStep::weight(30),
            CanaryStep::pause(None),
            CanaryStep::weight(60),
            CanaryStep::pause(None),
        ],
        traffic_routing: true,
        dynamic_stable_scale: dynamic,
        ..Default::default()
    };
    let mut spec = ExecSpec::new("web", canary, "v1", "steps");
    spec.stable_service = Some(ServiceObs {
        name: "web-stable".into(),
        ..Default::default()
    });
    spec.canary_service = Some(ServiceObs {
        name: "web-canary".into(),
        ..Default::default()
    });
    spec
}

fn selectors(sim: &Sim) -> (Option<String>, Option<String>) {
    (
        sim.spec
            .canary_service
            .as_ref()
            .and_then(|s| s.selector.clone()),
        sim.spec
            .stable_service
            .as_ref()
            .and_then(|s| s.selector.clone()),
    )
}

fn weight(sim: &Sim) -> Option<i64> {
    sim.status.weights.as_ref().map(|w| w.canary.weight)
}

#[test]
fn traffic_routing_sets_weights_and_selectors_at_each_step() {
    let mut sim = Sim::new(routed(false));
    sim.settle();
    assert_eq!(selectors(&sim), (Some("v1".into()), Some("v1".into())));
    assert_eq!(sim.routes.last(), Some(&Action::RemoveCanaryRoute));
    sim.template("v2");
    assert_eq!(
        sim.counts("v2", "v1"),
        (3, 10),
        "stable stays at 100% without dynamicStableScale"
    );
    assert_eq!(weight(&sim), Some(30));
    assert_eq!(selectors(&sim), (Some("v2".into()), Some("v1".into())));
    assert_eq!(
        sim.routes.last(),
        Some(&Action::SetCanaryWeight {
            weight: 30,
            canary_hash: "v2".into(),
            stable_hash: "v1".into()
        })
    );
    sim.promote();
    assert_eq!(sim.counts("v2", "v1"), (6, 10));
    assert_eq!(weight(&sim), Some(60));
    sim.promote();
    // Fully promoted: the route is removed, the old stable waits scaleDownDelaySeconds.
    assert_eq!(sim.status.stable_rs, "v2");
    assert_eq!(sim.counts("v2", "v1"), (10, 10));
    assert_eq!(sim.routes.last(), Some(&Action::RemoveCanaryRoute));
    assert_eq!(selectors(&sim), (Some("v2".into()), Some("v2".into())));
    let deadline = sim
        .rs("v1")
        .and_then(|r| r.scale_down_deadline)
        .expect("a scale-down deadline");
    assert_eq!(deadline, sim.now + 30);
    sim.advance(31);
    assert_eq!(sim.spec_of("v1"), 0);
}

#[test]
fn dynamic_stable_scale_shrinks_the_stable_as_the_weight_grows() {
    let mut sim = Sim::new(routed(true));
    sim.settle();
    sim.template("v2");
    assert_eq!(sim.counts("v2", "v1"), (3, 7));
    assert_eq!(weight(&sim), Some(30));
    sim.promote();
    assert_eq!(sim.counts("v2", "v1"), (6, 4));
    assert_eq!(weight(&sim), Some(60));
    assert_eq!(sim.min_available, Some(10));
    sim.promote();
    assert_eq!(sim.counts("v2", "v1"), (10, 0));
    assert_eq!(sim.status.stable_rs, "v2");
}

#[test]
fn a_routed_abort_sends_traffic_back_then_scales_the_canary_down_after_the_delay() {
    let mut sim = Sim::new(routed(false));
    sim.settle();
    sim.template("v2");
    sim.status.abort = true;
    sim.settle();
    assert_eq!(weight(&sim), Some(0));
    assert_eq!(selectors(&sim), (Some("v1".into()), Some("v1".into())));
    assert_eq!(sim.spec_of("v2"), 3, "kept for abortScaleDownDelaySeconds");
    sim.advance(31);
    assert_eq!(sim.spec_of("v2"), 0);
}

#[test]
fn a_dynamic_abort_walks_the_weight_down() {
    let mut sim = Sim::new(routed(true));
    sim.settle();
    sim.template("v2");
    sim.promote();
    assert_eq!(sim.counts("v2", "v1"), (6, 4));
    sim.status.abort = true;
    sim.settle();
    assert_eq!(sim.counts("v2", "v1"), (0, 10));
    assert_eq!(weight(&sim), Some(0));
    assert_eq!(sim.min_available, Some(10));
}

#[test]
fn set_canary_scale_sets_the_canary_count_outright() {
    let mut spec = routed(false);
    spec.canary.steps = vec![
        CanaryStep::canary_scale(SetCanaryScale {
            replicas: Some(2),
            ..Default::default()
        }),
        CanaryStep::weight(0),
        CanaryStep::pause(None),
    ];
    let mut sim = Sim::new(spec);
    sim.settle();
    sim.template("v2");
    assert_eq!(sim.counts("v2", "v1"), (2, 10));
    assert_eq!(weight(&sim), Some(0));
    assert_eq!(sim.status.current_step_index, Some(2));
}

#[test]
fn workload_ref_scale_down_on_success_after_the_first_revision_is_healthy() {
    let mut spec = ExecSpec::new("web", seed002(&[10, 20]), "v1", "steps");
    spec.workload = Some(WorkloadObs {
        scale_down: ScaleDown::OnSuccess,
        replicas: 10,
    });
    let mut sim = Sim::new(spec);
    sim.workload_replicas = Some(10);
    sim.settle();
    assert_eq!(sim.workload_replicas, Some(0));
}

#[test]
fn old_empty_replicasets_beyond_the_history_limit_are_deleted() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.spec.revision_history_limit = 1;
    for v in ["v2", "v3", "v4"] {
        sim.template(v);
        sim.status.promote_full = true;
        sim.settle();
    }
    let hashes: Vec<&str> = sim.rss.iter().map(|r| r.hash.as_str()).collect();
    assert_eq!(hashes, ["v3", "v4"]);
}

#[test]
fn a_pass_that_changes_nothing_writes_the_same_status() {
    let mut sim = deployed(seed002(&[10, 20]));
    sim.template("v2");
    let again = reconcile(&sim.spec, &sim.status, &sim.rss, sim.now + 5);
    assert_eq!(again.status, sim.status, "no timestamp churn");
    assert!(again.actions.is_empty(), "{:?}", again.actions);
}

#[test]
fn step_strings_name_the_step_as_argo_events_do() {
    let cases = [
        ("setWeight", CanaryStep::weight(10), "setWeight: 10"),
        ("indefinite pause", CanaryStep::pause(None), "pause"),
        (
            "timed pause",
            CanaryStep::pause(Some(IntOrString::str("1h"))),
            "pause: 1h",
        ),
        (
            "seconds",
            CanaryStep::pause(Some(IntOrString::Int(30))),
            "pause: 30",
        ),
    ];
    for (name, step, want) in cases {
        assert_eq!(step_string(&step), want, "{name}");
    }
}
