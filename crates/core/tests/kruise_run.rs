//! The Kruise Rollout executor's decisions (`rollgit_core::kruise_run`): the canary Ingress
//! annotations per class, the partition-style Deployment's ReplicaSet arithmetic, and whole
//! releases played against an in-memory workload, one named case per row.

use rollgit_core::intstr::IntOrString;
use rollgit_core::kruise::{KruiseStep, RollingStyle, StepState, WorkloadKind};
use rollgit_core::kruise_run::*;
use std::collections::BTreeMap;

fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn header(name: &str, value: &str, regex: bool) -> RouteMatch {
    RouteMatch {
        headers: vec![HeaderMatch {
            name: name.into(),
            value: value.into(),
            regex,
        }],
    }
}

#[test]
fn canary_ingress_annotations_per_class() {
    const N: &str = "nginx.ingress.kubernetes.io/";
    const A: &str = "alb.ingress.kubernetes.io/";
    struct Case {
        name: &'static str,
        class: IngressClass,
        current: BTreeMap<String, String>,
        weight: Option<i64>,
        matches: Vec<RouteMatch>,
        want: Vec<(String, &'static str)>,
    }
    let n = |k: &str| format!("{N}{k}");
    let a = |k: &str| format!("{A}{k}");
    let cases = vec![
        Case {
            name: "nginx: created with weight 0",
            class: IngressClass::Nginx,
            current: map(&[]),
            weight: Some(0),
            matches: vec![],
            want: vec![(n("canary"), "true"), (n("canary-weight"), "0")],
        },
        Case {
            name: "nginx: an exact header replaces the weight",
            class: IngressClass::Nginx,
            current: map(&[(&n("canary"), "true"), (&n("canary-weight"), "0")]),
            weight: None,
            matches: vec![header("User-Agent", "Andriod", false)],
            want: vec![
                (n("canary"), "true"),
                (n("canary-by-header"), "User-Agent"),
                (n("canary-by-header-value"), "Andriod"),
            ],
        },
        Case {
            name: "nginx: a regular expression is a pattern",
            class: IngressClass::Nginx,
            current: map(&[]),
            weight: None,
            matches: vec![header("User-Agent", "Andr.*", true)],
            want: vec![
                (n("canary"), "true"),
                (n("canary-by-header"), "User-Agent"),
                (n("canary-by-header-pattern"), "Andr.*"),
            ],
        },
        Case {
            name: "nginx: canary-by-cookie is a cookie",
            class: IngressClass::Nginx,
            current: map(&[]),
            weight: None,
            matches: vec![header("canary-by-cookie", "beta", false)],
            want: vec![(n("canary"), "true"), (n("canary-by-cookie"), "beta")],
        },
        Case {
            name: "nginx: a weight step clears the headers, keeps others' annotations",
            class: IngressClass::Nginx,
            current: map(&[
                (&n("canary"), "true"),
                (&n("canary-by-header"), "User-Agent"),
                (&n("canary-by-header-value"), "Andriod"),
                ("kubernetes.io/ingress.class", "nginx"),
            ]),
            weight: Some(50),
            matches: vec![],
            want: vec![
                ("kubernetes.io/ingress.class".into(), "nginx"),
                (n("canary"), "true"),
                (n("canary-weight"), "50"),
            ],
        },
        Case {
            name: "aliyun-alb: its own prefix and an order",
            class: IngressClass::AliyunAlb,
            current: map(&[]),
            weight: Some(50),
            matches: vec![header("User-Agent", "Andriod", false)],
            want: vec![
                (a("canary"), "true"),
                (a("canary-by-header"), "User-Agent"),
                (a("canary-by-header-value"), "Andriod"),
                (a("canary-weight"), "50"),
                (a("order"), "1"),
            ],
        },
        Case {
            name: "mse: nginx's annotations, the gray subset",
            class: IngressClass::Mse,
            current: map(&[
                ("mse.ingress.kubernetes.io/service-subset", "base"),
                ("mse.ingress.kubernetes.io/canary-by-query", "x"),
            ]),
            weight: Some(100),
            matches: vec![],
            want: vec![
                ("mse.ingress.kubernetes.io/service-subset".into(), "gray"),
                (n("canary"), "true"),
                (n("canary-weight"), "100"),
            ],
        },
    ];
    for c in cases {
        let got = canary_ingress_annotations(c.class, &c.current, c.weight, &c.matches);
        let want: BTreeMap<String, String> = c
            .want
            .into_iter()
            .map(|(k, v)| (k, v.to_string()))
            .collect();
        assert_eq!(got, want, "{}", c.name);
    }
}

#[test]
fn deployment_fenceposts_table() {
    let s = |v: &str| IntOrString::str(v);
    let i = IntOrString::Int;
    #[rustfmt::skip]
    type Row = (&'static str, Option<IntOrString>, Option<IntOrString>, i64, (i64, i64));
    let cases: Vec<Row> = vec![
        ("defaults 25% of 4", None, None, 4, (1, 1)),
        (
            "defaults 25% of 10: surge up, unavailable down",
            None,
            None,
            10,
            (3, 2),
        ),
        (
            "both zero makes unavailable 1",
            Some(i(0)),
            Some(i(0)),
            5,
            (0, 1),
        ),
        ("ints as written", Some(i(2)), Some(i(0)), 5, (2, 0)),
        ("percents", Some(s("50%")), Some(s("10%")), 10, (5, 1)),
        (
            "strict: a bare string is 0, both zero",
            Some(s("50")),
            Some(s("1")),
            10,
            (0, 1),
        ),
    ];
    for (name, surge, unavail, r, want) in cases {
        assert_eq!(
            deployment_fenceposts(surge.as_ref(), unavail.as_ref(), r),
            want,
            "{name}"
        );
    }
}

fn rs(replicas: i64, available: i64) -> ReplicaSetObs {
    ReplicaSetObs {
        replicas,
        available,
    }
}

#[test]
fn partition_deployment_scale_table() {
    struct Case {
        name: &'static str,
        r: i64,
        surge: i64,
        unavailable: i64,
        limit: i64,
        new: ReplicaSetObs,
        olds: Vec<ReplicaSetObs>,
        want: (i64, Vec<i64>),
    }
    let cases = vec![
        Case {
            name: "limit 0 moves nothing",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 0,
            new: rs(0, 0),
            olds: vec![rs(4, 4)],
            want: (0, vec![4]),
        },
        Case {
            name: "new scales up first, within the surge",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 2,
            new: rs(0, 0),
            olds: vec![rs(4, 4)],
            want: (1, vec![4]),
        },
        Case {
            name: "surge used up: old scales down by what availability allows",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 2,
            new: rs(1, 0),
            olds: vec![rs(4, 4)],
            want: (1, vec![3]),
        },
        Case {
            name: "new available: old scales down to R - limit",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 2,
            new: rs(1, 1),
            olds: vec![rs(4, 4)],
            want: (1, vec![2]),
        },
        Case {
            name: "then new scales up to the limit",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 2,
            new: rs(1, 1),
            olds: vec![rs(3, 3)],
            want: (2, vec![3]),
        },
        Case {
            name: "old never below R - limit",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 2,
            new: rs(2, 2),
            olds: vec![rs(3, 3)],
            want: (2, vec![2]),
        },
        Case {
            name: "settled at the limit",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 2,
            new: rs(2, 2),
            olds: vec![rs(2, 2)],
            want: (2, vec![2]),
        },
        Case {
            name: "unhealthy old pods go first",
            r: 4,
            surge: 0,
            unavailable: 1,
            limit: 2,
            new: rs(0, 0),
            olds: vec![rs(4, 2)],
            want: (0, vec![3]),
        },
        Case {
            name: "the limit lowered: old scale back up first, the biggest",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 0,
            new: rs(2, 2),
            olds: vec![rs(1, 1), rs(1, 1)],
            want: (2, vec![3, 1]),
        },
        Case {
            name: "the limit lowered, old back: the new ones go",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 0,
            new: rs(2, 2),
            olds: vec![rs(3, 3), rs(1, 1)],
            want: (0, vec![3, 1]),
        },
        Case {
            name: "only the new one active: it takes the limit",
            r: 4,
            surge: 1,
            unavailable: 1,
            limit: 4,
            new: rs(3, 3),
            olds: vec![rs(0, 0)],
            want: (4, vec![0]),
        },
        Case {
            name: "new above R scales down to R",
            r: 3,
            surge: 1,
            unavailable: 1,
            limit: 3,
            new: rs(4, 4),
            olds: vec![],
            want: (3, vec![]),
        },
    ];
    for c in cases {
        assert_eq!(
            partition_deployment_scale(c.r, c.surge, c.unavailable, c.limit, c.new, &c.olds),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn partition_deployment_scale_converges_without_losing_availability() {
    for limit in 0..=5 {
        let (r, surge, unavailable) = (5, 1, 1);
        let mut new = rs(0, 0);
        let mut old = vec![rs(5, 5)];
        for _ in 0..50 {
            let (n, o) = partition_deployment_scale(r, surge, unavailable, limit, new, &old);
            assert!(
                n + o.iter().sum::<i64>() <= r + surge,
                "limit {limit}: surge kept"
            );
            let before = (new, old.clone());
            // Everything becomes available at once.
            new = rs(n, n);
            old = o.iter().map(|x| rs(*x, *x)).collect();
            let available = new.available + old.iter().map(|o| o.available).sum::<i64>();
            assert!(
                available >= r - unavailable,
                "limit {limit}: availability kept"
            );
            if before == (new, old.clone()) {
                break;
            }
        }
        assert_eq!(
            new.replicas, limit,
            "limit {limit}: new settles at the limit"
        );
        assert_eq!(
            old[0].replicas,
            r - limit,
            "limit {limit}: old settles at R - limit"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Whole releases against an in-memory workload.

fn seed004_steps() -> (Vec<KruiseStep>, Vec<Vec<RouteMatch>>) {
    let steps = vec![
        KruiseStep {
            replicas: Some(IntOrString::Int(1)),
            has_matches: true,
            pause_duration: None,
            ..Default::default()
        },
        KruiseStep {
            replicas: Some(IntOrString::str("50%")),
            traffic: Some("50%".into()),
            pause_duration: Some(60),
            ..Default::default()
        },
        KruiseStep {
            replicas: Some(IntOrString::str("100%")),
            traffic: Some("100%".into()),
            pause_duration: Some(60),
            ..Default::default()
        },
    ];
    let matches = vec![vec![header("User-Agent", "Andriod", false)], vec![], vec![]];
    (steps, matches)
}

fn spec(style: RollingStyle) -> RunSpec {
    let (steps, matches) = seed004_steps();
    RunSpec {
        steps,
        matches,
        style,
        kind: WorkloadKind::Deployment,
        traffic: Some(TrafficRouting {
            service: "echoserver".into(),
            ingress: Some(("echoserver".into(), IngressClass::Nginx)),
            http_route: None,
            grace_secs: 3,
        }),
        paused: false,
        failure_threshold: None,
        progress_deadline_secs: 600,
        rollout_hash: "h1".into(),
    }
}

/// A Deployment, its canary and the traffic objects, changed only by the executor's actions
/// (and by `set_template`, as Git's apply would). Pods become ready when `ready` says.
struct Model {
    style: RollingStyle,
    replicas: i64,
    /// Template revisions: (revision, pod hash).
    live: (String, String),
    stable: (String, String),
    held: bool,
    paused: bool,
    under_control: bool,
    canary: Option<i64>,
    partition_updated: i64,
    ready: bool,
    promoted: bool,
    stable_svc: Option<String>,
    canary_svc: Option<String>,
    canary_ingress: Option<BTreeMap<String, String>>,
    /// The HTTPRoute's live rules and Git's, if it exists.
    http_route: Option<(serde_json::Value, Option<serde_json::Value>)>,
    rollbacks: Vec<String>,
}

impl Model {
    fn new(style: RollingStyle) -> Self {
        Model {
            style,
            replicas: 4,
            live: ("r1".into(), "h1".into()),
            stable: ("r1".into(), "h1".into()),
            held: false,
            paused: false,
            under_control: false,
            canary: None,
            partition_updated: 0,
            ready: true,
            promoted: true,
            stable_svc: None,
            canary_svc: None,
            canary_ingress: None,
            http_route: None,
            rollbacks: Vec::new(),
        }
    }

    /// What Git's apply does after rollgit's hold.
    fn set_template(&mut self, rev: &str, hash: &str) {
        self.held = true;
        self.paused = true;
        self.live = (rev.into(), hash.into());
        self.promoted = self.live == self.stable;
    }

    fn obs(&self) -> Observation {
        let canary_style = self.style == RollingStyle::Canary;
        let updated = if canary_style {
            self.canary.unwrap_or(0)
        } else {
            self.partition_updated
        };
        let own_hash = if self.live == self.stable {
            Some(self.stable.1.clone())
        } else if !canary_style && self.partition_updated > 0 {
            Some(self.live.1.clone())
        } else {
            None
        };
        let canary_hash = if canary_style {
            self.canary.map(|_| self.live.1.clone())
        } else {
            own_hash.clone()
        };
        Observation {
            workload: Some(WorkloadObs {
                replicas: self.replicas,
                consistent: true,
                revision: self.live.0.clone(),
                pod_hash: own_hash,
                canary_pod_hash: canary_hash,
                stable_pod_hash: Some(self.stable.1.clone()),
                held: self.held,
                hold_pending: false,
                paused: self.paused,
                under_control: self.under_control,
                updated,
                updated_ready: if self.ready { updated } else { 0 },
                promoted: self.promoted,
                canary_workload: self.canary,
                commit: Some(format!("commit-{}", self.live.0)),
            }),
            traffic: TrafficObs {
                stable_service: Some(ServiceObs {
                    revision: self.stable_svc.clone(),
                }),
                canary_service: self.canary_svc.as_ref().map(|r| ServiceObs {
                    revision: Some(r.clone()),
                }),
                ingress: true,
                canary_ingress: self.canary_ingress.clone(),
                http_route: self.http_route.as_ref().map(|(rules, git)| HttpRouteObs {
                    rules: rules.clone(),
                    git_rules: git.clone(),
                }),
            },
            not_ready_pods: if self.ready {
                vec![]
            } else {
                vec!["echoserver-canary-x".into()]
            },
        }
    }

    fn act(&mut self, a: &Action) {
        match a {
            Action::Hold { .. } => {
                self.held = true;
                self.paused = true;
            }
            Action::Initialize => self.under_control = true,
            Action::UpgradeBatch {
                desired_updated, ..
            } => {
                if self.style == RollingStyle::Canary {
                    let c = self.canary.unwrap_or(0).max(*desired_updated);
                    self.canary = Some(c);
                } else {
                    self.partition_updated = self.partition_updated.max(*desired_updated);
                }
            }
            Action::ScaleCanaryAway => {
                self.canary = None;
                self.partition_updated = 0;
            }
            Action::Resume => {
                self.paused = false;
                self.promoted = true;
                self.stable = self.live.clone();
                self.partition_updated = 0;
            }
            Action::Release => {
                self.held = false;
                self.under_control = false;
                self.canary = None;
            }
            Action::PatchStableService { revision } => self.stable_svc = Some(revision.clone()),
            Action::RestoreStableService => self.stable_svc = None,
            Action::EnsureCanaryService { revision } => self.canary_svc = Some(revision.clone()),
            Action::RemoveCanaryService => self.canary_svc = None,
            Action::CreateCanaryIngress { annotations }
            | Action::PatchCanaryIngress { annotations } => {
                self.canary_ingress = Some(annotations.clone())
            }
            Action::RemoveCanaryIngress => self.canary_ingress = None,
            Action::SetHttpRouteRules { rules } => {
                if let Some(r) = self.http_route.as_mut() {
                    r.0 = rules.clone();
                }
            }
            Action::Rollback { reason } => self.rollbacks.push(reason.clone()),
        }
    }
}

/// Passes until nothing changes without time moving; returns the state and the time.
fn settle(spec: &RunSpec, m: &mut Model, s: &mut RunState, now: &mut i64) {
    for _ in 0..200 {
        let before = m.obs();
        let d = reconcile(spec, s, &before, *now);
        for a in &d.actions {
            m.act(a);
        }
        let moved = d.state != *s || m.obs() != before;
        *s = d.state;
        if !moved {
            // Only a timer can move it on: jump to the earliest one within the grace period.
            match d.requeue_at {
                Some(t)
                    if t > *now
                        && t - *now <= spec.traffic.as_ref().map_or(3, |t| t.grace_secs) =>
                {
                    *now = t;
                }
                _ => return,
            }
        }
    }
    panic!("no fixed point: {s:?}");
}

fn row(s: &RunState) -> (String, i64, &'static str, String) {
    let c = s.canary.as_ref().expect("a canary status");
    (
        s.phase.map(|p| p.as_str()).unwrap_or("").to_string(),
        c.step.current_step_index,
        c.step.state.as_str(),
        s.message.clone(),
    )
}

fn approve(s: &mut RunState) {
    let c = s.canary.as_mut().expect("a canary status");
    assert_eq!(c.step.state, StepState::StepPaused);
    c.step.state = StepState::StepReady;
}

#[test]
fn seed004_canary_style_plays_out() {
    let spec = spec(RollingStyle::Canary);
    let mut m = Model::new(RollingStyle::Canary);
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(
        row(&s),
        (
            "Healthy".into(),
            3,
            "Completed",
            "workload deployment is completed".into()
        )
    );
    assert_eq!(s.stable_commit.as_deref(), Some("commit-r1"));

    // A new image: step 1 holds for approval with one canary pod and the header route.
    m.set_template("r2", "h2");
    settle(&spec, &mut m, &mut s, &mut now);

    assert_eq!(
        row(&s),
        (
            "Progressing".into(),
            1,
            "StepPaused",
            "Rollout is in step(1/3), and you need manually confirm to enter the next step".into()
        )
    );
    assert_eq!(m.canary, Some(1));
    assert_eq!(
        m.stable_svc.as_deref(),
        Some("h1"),
        "stable Service selects stable pods"
    );
    assert_eq!(
        m.canary_svc.as_deref(),
        Some("h2"),
        "canary Service selects canary pods"
    );
    let ing = m.canary_ingress.clone().expect("canary ingress");
    assert_eq!(
        ing["nginx.ingress.kubernetes.io/canary-by-header"],
        "User-Agent"
    );
    assert_eq!(
        ing["nginx.ingress.kubernetes.io/canary-by-header-value"],
        "Andriod"
    );
    assert!(!ing.contains_key("nginx.ingress.kubernetes.io/canary-weight"));
    assert_eq!(s.target_commit.as_deref(), Some("commit-r2"));
    // Waiting for approval: time changes nothing.
    now += 10_000;
    settle(&spec, &mut m, &mut s, &mut now);

    assert_eq!(row(&s).2, "StepPaused");

    // Approved: step 2, weight 50, half the pods, then a 60 s pause.
    approve(&mut s);
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(
        row(&s),
        (
            "Progressing".into(),
            2,
            "StepPaused",
            "Rollout is in step(2/3), and wait duration(60 seconds) to enter the next step".into()
        )
    );
    assert_eq!(m.canary, Some(2));
    let ing = m.canary_ingress.clone().expect("canary ingress");
    assert_eq!(ing["nginx.ingress.kubernetes.io/canary-weight"], "50");
    assert!(!ing.contains_key("nginx.ingress.kubernetes.io/canary-by-header"));
    // 55 s later it still waits; at 60 s it goes on by itself.
    let paused_at = s
        .canary
        .as_ref()
        .map(|c| c.step.last_update_time)
        .unwrap_or_default();
    now = paused_at + 55;
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(row(&s).2, "StepPaused");
    now = paused_at + 60;
    settle(&spec, &mut m, &mut s, &mut now);
    // Step 3 is the last at 100%: no pause; the rollout finalises and completes.
    assert_eq!(
        row(&s),
        (
            "Healthy".into(),
            3,
            "Completed",
            "Rollout progressing has been completed".into()
        )
    );
    assert_eq!(m.canary, None, "the canary Deployment is gone");
    assert_eq!(m.canary_ingress, None);
    assert_eq!(m.canary_svc, None);
    assert_eq!(
        m.stable_svc, None,
        "the stable Service selects every pod again"
    );
    assert!(!m.paused && !m.held);
    assert_eq!(m.stable, m.live, "the Deployment runs the new template");
    assert_eq!(s.stable_commit.as_deref(), Some("commit-r2"));
    let succeeded = s.succeeded.as_ref().expect("Succeeded");
    assert!(succeeded.status);
}

#[test]
fn seed004_partition_style_restores_the_stable_service_before_the_full_step() {
    let spec = spec(RollingStyle::Partition);
    let mut m = Model::new(RollingStyle::Partition);
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    m.set_template("r2", "h2");
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(row(&s).2, "StepPaused");
    assert_eq!(m.partition_updated, 1);
    assert!(m.under_control);
    approve(&mut s);
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!((row(&s).1, row(&s).2), (2, "StepPaused"));
    assert_eq!(m.partition_updated, 2);
    assert_eq!(m.stable_svc.as_deref(), Some("h1"));
    // Step 3 replaces every pod: before it, the stable Service selects all pods again (the
    // ingress-nginx workaround), and its traffic step is skipped.
    now += 60;
    let d = reconcile(&spec, &s, &m.obs(), now);
    s = d.state;
    for a in &d.actions {
        m.act(a);
    }
    let mut restored_at_step3_start = false;
    for _ in 0..10 {
        let d = reconcile(&spec, &s, &m.obs(), now);
        if d.actions.contains(&Action::RestoreStableService)
            && s.canary.as_ref().is_some_and(|c| {
                c.step.current_step_index == 3 && c.step.state == StepState::BeforeStepUpgrade
            })
        {
            restored_at_step3_start = true;
        }
        for a in &d.actions {
            m.act(a);
        }
        s = d.state;
        now += 3;
    }
    assert!(restored_at_step3_start, "{s:?}");
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(
        row(&s),
        (
            "Healthy".into(),
            3,
            "Completed",
            "Rollout progressing has been completed".into()
        )
    );
    assert!(!m.paused && !m.held && !m.under_control);
}

#[test]
fn a_template_back_to_the_stable_one_cancels_quickly() {
    let spec = spec(RollingStyle::Canary);
    let mut m = Model::new(RollingStyle::Canary);
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    m.set_template("r2", "h2");
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(row(&s).2, "StepPaused");
    // Git restores the Deployment (the seed's rollback).
    m.set_template("r1", "h1");
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(
        (row(&s).0, row(&s).3),
        (
            "Healthy".to_string(),
            "Rollout progressing has been canceled".to_string()
        )
    );
    assert_eq!(m.canary, None);
    assert_eq!(m.canary_ingress, None);
    assert_eq!(m.canary_svc, None);
    assert_eq!(m.stable_svc, None);
    assert!(!m.paused && !m.held);
    assert!(s.succeeded.as_ref().is_some_and(|c| !c.status));
    assert!(
        m.rollbacks.is_empty(),
        "a rollback in Git is not reverted again"
    );
}

#[test]
fn a_canary_not_ready_within_the_deadline_is_rolled_back_and_reverted_in_git() {
    let mut spec = spec(RollingStyle::Canary);
    spec.progress_deadline_secs = 30;
    let mut m = Model::new(RollingStyle::Canary);
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    m.ready = false;
    m.set_template("r2", "h2");
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!((row(&s).1, row(&s).2), (1, "StepUpgrade"));
    assert_eq!(m.canary, Some(1));
    // The deadline passes.
    now += 31;
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(m.rollbacks.len(), 1, "told once");
    assert!(
        m.rollbacks[0].starts_with("Rollout failed in step(1/3): 0 of 1 canary pods ready within 30s; not ready: echoserver-canary-x"),
        "{}",
        m.rollbacks[0]
    );
    assert_eq!(m.canary, None, "the canary is scaled away");
    assert_eq!(
        m.stable_svc, None,
        "the stable Service selects the stable pods"
    );
    assert_eq!(m.canary_svc, None);
    assert!(m.paused, "the failed template stays held");
    let p = s.progressing.as_ref().expect("Progressing");
    assert_eq!(p.reason, "RolledBack");
    assert!(
        s.message.ends_with("waiting for Git to revert"),
        "{}",
        s.message
    );
    assert_eq!(s.failure.as_ref().map(|f| f.revision.as_str()), Some("r2"));
    // Nothing is retried while the template is the failed one.
    now += 10_000;
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(m.rollbacks.len(), 1);
    assert_eq!(m.canary, None);
    // Git's revert lands: the rollout ends, canceled, and the workload runs again.
    m.ready = true;
    m.set_template("r1", "h1");
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(
        (row(&s).0, row(&s).3),
        (
            "Healthy".to_string(),
            "Rollout progressing has been canceled".to_string()
        )
    );
    assert!(!m.paused && !m.held);
    assert!(s.failure.is_none());
}

#[test]
fn a_new_template_mid_rollout_starts_again_from_step_one() {
    let spec = spec(RollingStyle::Canary);
    let mut m = Model::new(RollingStyle::Canary);
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    m.set_template("r2", "h2");
    settle(&spec, &mut m, &mut s, &mut now);
    approve(&mut s);
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!((row(&s).1, row(&s).2), (2, "StepPaused"));
    m.set_template("r3", "h3");
    // The old canary goes (the model's canary runs whatever the live template is).
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!((row(&s).1, row(&s).2), (1, "StepPaused"), "{s:?}");
    let c = s.canary.as_ref().expect("canary");
    assert_eq!(c.canary_revision, "r3");
    assert_eq!(c.stable_revision, "h1", "the stable revision is kept");
    assert_eq!(s.target_commit.as_deref(), Some("commit-r3"));
}

#[test]
fn a_paused_spec_holds_the_rollout_and_resumes() {
    let mut spec = spec(RollingStyle::Canary);
    let mut m = Model::new(RollingStyle::Canary);
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    spec.paused = true;
    m.set_template("r2", "h2");
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(
        s.message,
        "Rollout has been paused, you can resume it by kube-cli"
    );
    assert_eq!(m.canary, None);
    spec.paused = false;
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(row(&s).2, "StepPaused");
    assert_eq!(m.canary, Some(1));
}

#[test]
fn grace_periods_wait_on_the_clock() {
    let spec = spec(RollingStyle::Canary);
    let mut m = Model::new(RollingStyle::Canary);
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    m.set_template("r2", "h2");
    // Without time moving, the rollout stops at the first Service change.
    for _ in 0..20 {
        let d = reconcile(&spec, &s, &m.obs(), now);
        for a in &d.actions {
            m.act(a);
        }
        s = d.state;
    }
    assert_eq!(m.stable_svc.as_deref(), Some("h1"));
    assert_eq!(s.wait_until, Some(now + 3));
    let d = reconcile(&spec, &s, &m.obs(), now + 2);
    assert!(d.actions.is_empty());
    assert_eq!(d.requeue_at, Some(now + 3));
}

#[test]
fn same_inputs_same_decision() {
    let spec = spec(RollingStyle::Canary);
    let m = Model::new(RollingStyle::Canary);
    let a = reconcile(&spec, &RunState::default(), &m.obs(), 5);
    let b = reconcile(&spec, &RunState::default(), &m.obs(), 5);
    assert_eq!(a, b);
    let missing = reconcile(&spec, &RunState::default(), &Observation::default(), 5);
    assert_eq!(missing.state.message, "Workload Not Found");
}

/// Seed 004's steps routed through a Gateway API HTTPRoute instead of an Ingress.
fn gateway_spec() -> RunSpec {
    let mut spec = spec(RollingStyle::Canary);
    spec.traffic = Some(TrafficRouting {
        service: "echoserver".into(),
        ingress: None,
        http_route: Some("echoserver".into()),
        grace_secs: 3,
    });
    spec
}

fn git_route() -> serde_json::Value {
    serde_json::json!([{
        "matches": [{"path": {"type": "PathPrefix", "value": "/apis/echo"}}],
        "backendRefs": [{"kind": "Service", "name": "echoserver", "port": 80}]
    }])
}

#[test]
fn seed004_gateway_route_follows_the_steps_and_is_restored() {
    use serde_json::json;
    // (name, Git's rules known, the rules once completed)
    let cases = [
        (
            "a route of the app goes back to Git's rules",
            true,
            git_route(),
        ),
        (
            "a route from elsewhere is restored as Kruise restores it (stable weight 1)",
            false,
            json!([{
                "matches": [{"path": {"type": "PathPrefix", "value": "/apis/echo"}}],
                "backendRefs": [{"kind": "Service", "name": "echoserver", "port": 80, "weight": 1}]
            }]),
        ),
    ];
    for (name, from_git, restored) in cases {
        let spec = gateway_spec();
        let mut m = Model::new(RollingStyle::Canary);
        m.http_route = Some((git_route(), from_git.then(git_route)));
        let mut s = RunState::default();
        let mut now = 1_000;
        settle(&spec, &mut m, &mut s, &mut now);
        assert_eq!(row(&s).2, "Completed", "{name}");
        assert_eq!(
            m.http_route.as_ref().map(|r| &r.0),
            Some(&git_route()),
            "{name}: untouched while healthy"
        );

        m.set_template("r2", "h2");
        settle(&spec, &mut m, &mut s, &mut now);
        assert_eq!(row(&s).1, 1, "{name}");
        assert_eq!(row(&s).2, "StepPaused", "{name}");
        assert_eq!(m.canary_svc.as_deref(), Some("h2"), "{name}");
        assert_eq!(
            m.http_route.as_ref().map(|r| r.0.clone()),
            Some(json!([
                {"matches": [{"path": {"type": "PathPrefix", "value": "/apis/echo"}}],
                 "backendRefs": [{"kind": "Service", "name": "echoserver", "port": 80}]},
                {"matches": [{"path": {"type": "PathPrefix", "value": "/apis/echo"},
                              "headers": [{"type": "Exact", "name": "User-Agent", "value": "Andriod"}]}],
                 "backendRefs": [{"kind": "Service", "name": "echoserver-canary", "port": 80}]}
            ])),
            "{name}: step 1 adds the header rule to the canary Service"
        );

        approve(&mut s);
        settle(&spec, &mut m, &mut s, &mut now);
        assert_eq!((row(&s).1, row(&s).2), (2, "StepPaused"), "{name}");
        assert_eq!(
            m.http_route.as_ref().map(|r| r.0[0]["backendRefs"].clone()),
            Some(json!([
                {"kind": "Service", "name": "echoserver", "port": 80, "weight": 50},
                {"kind": "Service", "name": "echoserver-canary", "port": 80, "weight": 50}
            ])),
            "{name}: step 2 weighs 50/50"
        );

        let paused_at = s
            .canary
            .as_ref()
            .map(|c| c.step.last_update_time)
            .unwrap_or_default();
        now = paused_at + 60;
        settle(&spec, &mut m, &mut s, &mut now);
        assert_eq!(
            row(&s),
            (
                "Healthy".into(),
                3,
                "Completed",
                "Rollout progressing has been completed".into()
            ),
            "{name}"
        );
        assert_eq!(
            m.http_route.as_ref().map(|r| r.0.clone()),
            Some(restored),
            "{name}: restored"
        );
        assert_eq!(
            m.canary_svc, None,
            "{name}: the canary Service is removed after the route"
        );
        assert_eq!(m.stable_svc, None, "{name}");
    }
}

#[test]
fn a_missing_http_route_holds_the_release_before_step_one() {
    let spec = gateway_spec();
    let mut m = Model::new(RollingStyle::Canary);
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    m.set_template("r2", "h2");
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(
        s.message,
        "waiting for the traffic routing's HTTPRoute echoserver, which does not exist"
    );
    assert_eq!(m.canary, None, "no canary pod before the route exists");
    m.http_route = Some((git_route(), Some(git_route())));
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!((row(&s).1, row(&s).2), (1, "StepPaused"));
}

#[test]
fn between_releases_a_route_of_the_app_follows_git() {
    let spec = gateway_spec();
    let mut m = Model::new(RollingStyle::Canary);
    let mut changed = git_route();
    changed[0]["timeouts"] = serde_json::json!({"request": "10s"});
    m.http_route = Some((git_route(), Some(changed.clone())));
    let mut s = RunState::default();
    let mut now = 1_000;
    settle(&spec, &mut m, &mut s, &mut now);
    assert_eq!(m.http_route.as_ref().map(|r| r.0.clone()), Some(changed));
}
