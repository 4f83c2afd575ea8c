//! OpenKruise Rollout arithmetic, one named case per row (ROLLOUT-SEMANTICS.md §B.1–B.3, pitfalls D.1, D.5).

use rollgit_core::intstr::IntOrString;
use rollgit_core::kruise::*;

fn s(v: &str) -> IntOrString {
    IntOrString::str(v)
}
fn i(v: i64) -> IntOrString {
    IntOrString::Int(v)
}

#[test]
fn batch_replicas() {
    #[rustfmt::skip]
    let cases: [(&str, IntOrString, i64, i64); 12] = [
        ("50% of 5 rounds up", s("50%"), 5, 3),
        ("20% of 10", s("20%"), 10, 2),
        ("1% of 1 rounds up to 1", s("1%"), 1, 1),
        ("100% of 7", s("100%"), 7, 7),
        ("200% clamps to R", s("200%"), 4, 4),
        ("int 200 clamps to R", i(200), 4, 4),
        ("int as-is", i(3), 10, 3),
        ("strict: bare 50 is 0", s("50"), 10, 0),
        ("negative int clamps to 0", i(-2), 10, 0),
        ("R=0", s("50%"), 0, 0),
        ("0%", s("0%"), 10, 0),
        ("33% of 10 is 4", s("33%"), 10, 4),
    ];
    for (name, v, r, want) in cases {
        assert_eq!(calculate_batch_replicas(&v, r), want, "{name}");
    }
}

#[test]
fn cloneset_percent_partition() {
    #[rustfmt::skip]
    let cases: [(&str, i64, i64, IntOrString, IntOrString); 8] = [
        ("70 percent kept", 7, 10, s("30%"), s("70%")),
        ("floor of stable share", 2, 3, s("34%"), s("66%")),
        ("stable ≥ R is 100%", 10, 10, s("0%"), s("100%")),
        ("stable ≤ 0 is 0%", 0, 10, s("100%"), s("0%")),
        ("1% rule when floor is 0 of a big set", 1, 200, s("99%"), s("1%")),
        ("no 1% rule when the step is 100%", 1, 200, s("100%"), s("0%")),
        ("R=1 stable 0", 0, 1, s("50%"), s("0%")),
        ("ceil(P·R) within 1%: 3 of 7", 3, 7, s("58%"), s("42%")),
    ];
    for (name, stable, all, step, want) in cases {
        assert_eq!(percent_partition(stable, all, &step), want, "{name}");
    }
}

#[test]
fn partition_contexts() {
    struct Case {
        name: &'static str,
        kind: WorkloadKind,
        step: IntOrString,
        r: i64,
        n: i64,
        want: (i64, i64, i64, IntOrString),
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "CloneSet int step: int partition of old pods", kind: WorkloadKind::CloneSet, step: i(2), r: 10, n: 0, want: (2, 2, 8, i(8)) },
        Case { name: "CloneSet percent step: percent partition", kind: WorkloadKind::CloneSet, step: s("30%"), r: 10, n: 0, want: (3, 3, 7, s("70%")) },
        Case { name: "CloneSet 100%", kind: WorkloadKind::CloneSet, step: s("100%"), r: 10, n: 0, want: (10, 10, 0, s("0%")) },
        Case { name: "CloneSet rollback in batches: 20% of R-n", kind: WorkloadKind::CloneSet, step: s("20%"), r: 20, n: 10, want: (4, 12, 8, s("40%")) },
        Case { name: "Advanced StatefulSet unordered: int partition", kind: WorkloadKind::AdvancedStatefulSetUnordered, step: s("30%"), r: 10, n: 0, want: (3, 3, 7, i(7)) },
        Case { name: "StatefulSet ordinal partition", kind: WorkloadKind::StatefulSet, step: s("30%"), r: 10, n: 0, want: (3, 3, 7, i(7)) },
        Case { name: "StatefulSet rollback in batches adds n back", kind: WorkloadKind::StatefulSet, step: s("20%"), r: 20, n: 10, want: (4, 12, 18, i(18)) },
        Case { name: "DaemonSet int partition", kind: WorkloadKind::DaemonSet, step: s("50%"), r: 5, n: 0, want: (3, 3, 2, i(2)) },
        Case { name: "Deployment partition = pods to update, 90% of 5 capped at 4", kind: WorkloadKind::Deployment, step: s("90%"), r: 5, n: 0, want: (5, 4, 1, s("90%")) },
        Case { name: "Deployment 100% is not capped", kind: WorkloadKind::Deployment, step: s("100%"), r: 5, n: 0, want: (5, 5, 0, s("100%")) },
        Case { name: "Deployment int is not capped", kind: WorkloadKind::Deployment, step: i(5), r: 5, n: 0, want: (5, 5, 0, i(5)) },
        Case { name: "Deployment R=1 is not capped", kind: WorkloadKind::Deployment, step: s("50%"), r: 1, n: 0, want: (1, 1, 0, s("50%")) },
    ];
    for c in cases {
        let got = partition_batch_context(c.kind, &c.step, c.r, c.n);
        assert_eq!(
            (
                got.planned_updated,
                got.desired_updated,
                got.desired_stable,
                got.desired_partition
            ),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn deployment_limits_and_patch_direction() {
    #[rustfmt::skip]
    let cases: [(&str, IntOrString, i64, i64); 6] = [
        ("90% of 5", s("90%"), 5, 4),
        ("99% of 100 is 99", s("99%"), 100, 99),
        ("99% of 1000 is 990", s("99%"), 1000, 990),
        ("50% of 2 is 1", s("50%"), 2, 1),
        ("200% capped at R-1", s("200%"), 5, 4),
        ("R=0", s("50%"), 0, 0),
    ];
    for (name, p, r, want) in cases {
        assert_eq!(deployment_new_rs_limit(&p, r), want, "{name}");
    }
    assert!(
        should_patch_deployment_partition(&s("20%"), &s("50%")),
        "deployment partition only goes up"
    );
    assert!(!should_patch_deployment_partition(&s("50%"), &s("20%")));
    assert!(
        should_patch_cloneset_partition(&s("80%"), &s("50%"), 10),
        "cloneset partition only goes down"
    );
    assert!(!should_patch_cloneset_partition(&i(5), &i(8), 10));
    assert_eq!(canary_style_replicas(&s("20%"), 10), 2);
}

#[test]
fn batch_readiness() {
    struct Case {
        name: &'static str,
        desired: i64,
        obs: BatchObservation,
        want: bool,
    }
    let o = |u, r, t: Option<&str>, id: Option<(i64, i64)>| BatchObservation {
        updated: u,
        updated_ready: r,
        failure_threshold: t.map(IntOrString::str),
        rollout_id_pods: id,
    };
    #[rustfmt::skip]
    let cases = [
        Case { name: "all updated and ready", desired: 3, obs: o(3, 3, None, None), want: true },
        Case { name: "not enough updated", desired: 3, obs: o(2, 2, None, None), want: false },
        Case { name: "nil threshold: all must be ready", desired: 3, obs: o(3, 2, None, None), want: false },
        Case { name: "threshold of updated replicas, rounded up", desired: 5, obs: o(5, 4, Some("10%"), None), want: true },
        Case { name: "threshold too small", desired: 5, obs: o(5, 3, Some("10%"), None), want: false },
        Case { name: "desired > 0 needs one ready", desired: 1, obs: o(1, 0, Some("100%"), None), want: false },
        Case { name: "desired 0 is ready", desired: 0, obs: o(0, 0, None, None), want: true },
        Case { name: "rollout-id labels missing", desired: 2, obs: o(2, 2, None, Some((2, 1))), want: false },
        Case { name: "rollout-id labels present", desired: 2, obs: o(2, 2, None, Some((2, 2))), want: true },
    ];
    for c in cases {
        assert_eq!(is_batch_ready(c.desired, &c.obs), c.want, "{}", c.name);
    }
}

fn st(r: IntOrString) -> KruiseStep {
    KruiseStep {
        replicas: Some(r),
        ..Default::default()
    }
}
fn tr(r: IntOrString, t: &str) -> KruiseStep {
    KruiseStep {
        replicas: Some(r),
        traffic: Some(t.to_string()),
        ..Default::default()
    }
}

#[test]
fn step_validation() {
    struct Case {
        name: &'static str,
        steps: Vec<KruiseStep>,
        style: RollingStyle,
        ok: bool,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "int and percent steps", steps: vec![st(i(1)), st(s("50%")), st(s("100%"))], style: RollingStyle::Partition, ok: true },
        Case { name: "no steps", steps: vec![], style: RollingStyle::Partition, ok: false },
        Case { name: "missing replicas", steps: vec![KruiseStep::default()], style: RollingStyle::Partition, ok: false },
        Case { name: "strict: 50 without %", steps: vec![st(s("50"))], style: RollingStyle::Partition, ok: false },
        Case { name: "int 0", steps: vec![st(i(0))], style: RollingStyle::Partition, ok: false },
        Case { name: "0%", steps: vec![st(s("0%"))], style: RollingStyle::Partition, ok: false },
        Case { name: "101%", steps: vec![st(s("101%"))], style: RollingStyle::Partition, ok: false },
        Case { name: "int above 100 is fine", steps: vec![st(i(150))], style: RollingStyle::Partition, ok: true },
        Case { name: "decreasing percents", steps: vec![st(s("50%")), st(s("20%"))], style: RollingStyle::Partition, ok: false },
        Case { name: "decreasing ints", steps: vec![st(i(5)), st(i(2))], style: RollingStyle::Partition, ok: false },
        Case { name: "int then smaller percent is not compared", steps: vec![st(i(5)), st(s("20%"))], style: RollingStyle::Partition, ok: true },
        Case { name: "equal steps allowed", steps: vec![st(s("20%")), st(s("20%"))], style: RollingStyle::Partition, ok: true },
        Case { name: "canary traffic 0% rejected", steps: vec![tr(i(1), "0%")], style: RollingStyle::Canary, ok: false },
        Case { name: "blue-green traffic 0% allowed", steps: vec![tr(i(1), "0%")], style: RollingStyle::BlueGreen, ok: true },
        Case { name: "traffic without %", steps: vec![tr(i(1), "20")], style: RollingStyle::Canary, ok: false },
        Case { name: "traffic above 100%", steps: vec![tr(i(1), "120%")], style: RollingStyle::Canary, ok: false },
        Case { name: "partition + traffic: 50% is the limit", steps: vec![tr(s("50%"), "50%")], style: RollingStyle::Partition, ok: true },
        Case { name: "partition + traffic: 51% too many", steps: vec![tr(s("51%"), "50%")], style: RollingStyle::Partition, ok: false },
        Case { name: "partition + matches: 100% too many", steps: vec![KruiseStep { replicas: Some(s("100%")), has_matches: true, ..Default::default() }], style: RollingStyle::Partition, ok: false },
        Case { name: "partition + traffic with int replicas is not limited", steps: vec![tr(i(9), "50%")], style: RollingStyle::Partition, ok: true },
        Case { name: "canary style has no partition limit", steps: vec![tr(s("100%"), "100%")], style: RollingStyle::Canary, ok: true },
    ];
    for c in cases {
        assert_eq!(
            validate_steps(&c.steps, c.style, 50).is_ok(),
            c.ok,
            "{}: {:?}",
            c.name,
            validate_steps(&c.steps, c.style, 50)
        );
    }
}

#[test]
fn v1alpha1_conversion() {
    let s1 = KruiseStep::from_v1alpha1(None, Some(20), false, Some(60));
    assert_eq!(
        (s1.replicas, s1.traffic.as_deref(), s1.pause_duration),
        (Some(s("20%")), Some("20%"), Some(60))
    );
    let s2 = KruiseStep::from_v1alpha1(Some(i(1)), Some(50), true, None);
    assert_eq!(
        (s2.replicas, s2.traffic.as_deref(), s2.has_matches),
        (Some(i(1)), Some("50%"), true)
    );
    let s3 = KruiseStep::from_v1alpha1(Some(s("30%")), None, false, None);
    assert_eq!((s3.replicas, s3.traffic), (Some(s("30%")), None));
}

#[test]
fn recalculate_after_steps_change() {
    let steps = vec![st(s("20%")), st(s("50%")), st(s("100%"))];
    #[rustfmt::skip]
    let cases: [(&str, i64, i64); 4] = [("2 of 10 is step 1", 2, 1), ("3 of 10 is step 2", 3, 2), ("5 of 10 is step 2", 5, 2), ("past every step is the last", 11, 3)];
    for (name, batch, want) in cases {
        assert_eq!(recalculate_step(&steps, 10, batch), want, "{name}");
    }
}
