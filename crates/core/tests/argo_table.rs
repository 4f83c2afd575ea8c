//! Argo Rollouts arithmetic, one named case per row (ROLLOUT-SEMANTICS.md §A, pitfalls D.1–D.3, D.6).

use rollgit_core::argo::*;
use rollgit_core::intstr::IntOrString;

fn s(v: &str) -> Option<IntOrString> {
    Some(IntOrString::str(v))
}
fn i(v: i64) -> Option<IntOrString> {
    Some(IntOrString::Int(v))
}

#[test]
fn fenceposts() {
    struct Case {
        name: &'static str,
        surge: Option<IntOrString>,
        unavail: Option<IntOrString>,
        r: i64,
        want: (i64, i64),
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "0%/0% with R=10 forces unavailable 1", surge: s("0%"), unavail: s("0%"), r: 10, want: (0, 1) },
        Case { name: "0%/0% with R=0 forces unavailable 1", surge: s("0%"), unavail: s("0%"), r: 0, want: (0, 1) },
        Case { name: "39%/39% of 10: surge up, unavailable down", surge: s("39%"), unavail: s("39%"), r: 10, want: (4, 3) },
        Case { name: "25%/25% of 1", surge: s("25%"), unavail: s("25%"), r: 1, want: (1, 0) },
        Case { name: "defaults are 25 (percent) of 10", surge: None, unavail: None, r: 10, want: (3, 2) },
        Case { name: "string \"1\" is 1 percent, not 1 pod", surge: s("1"), unavail: s("1"), r: 10, want: (1, 0) },
        Case { name: "int 1 is 1 pod", surge: i(1), unavail: i(1), r: 10, want: (1, 1) },
        Case { name: "int 0 and string 0 still force unavailable 1", surge: i(0), unavail: s("0"), r: 10, want: (0, 1) },
        Case { name: "non-numeric surge: error ignored, both 0", surge: s("abc"), unavail: s("25%"), r: 10, want: (0, 0) },
        Case { name: "non-numeric unavailable: error ignored, both 0", surge: s("25%"), unavail: s("x%"), r: 10, want: (0, 0) },
        Case { name: "100% surge of 3", surge: s("100%"), unavail: i(0), r: 3, want: (3, 0) },
        Case { name: "int above R is kept by resolve", surge: i(20), unavail: i(20), r: 10, want: (20, 20) },
        Case { name: "every percent sign removed", surge: s("%50%"), unavail: i(0), r: 3, want: (2, 0) },
    ];
    for c in cases {
        assert_eq!(
            resolve_fenceposts(c.surge.as_ref(), c.unavail.as_ref(), c.r),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn max_surge_and_max_unavailable() {
    struct Case {
        name: &'static str,
        surge: Option<IntOrString>,
        unavail: Option<IntOrString>,
        r: i64,
        want: (i64, i64),
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "R=0 has no unavailable", surge: s("0%"), unavail: s("0%"), r: 0, want: (0, 0) },
        Case { name: "unavailable capped at R", surge: i(20), unavail: i(20), r: 10, want: (20, 10) },
        Case { name: "defaults with R=4", surge: None, unavail: None, r: 4, want: (1, 1) },
        Case { name: "seed002: 25% surge, 0 unavailable of 10", surge: s("25%"), unavail: i(0), r: 10, want: (3, 0) },
    ];
    for c in cases {
        let spec = CanarySpec {
            replicas: c.r,
            max_surge: c.surge,
            max_unavailable: c.unavail,
            ..Default::default()
        };
        assert_eq!(
            (max_surge(&spec), max_unavailable(&spec)),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn weighted_counts() {
    struct Case {
        name: &'static str,
        r: i64,
        w: i64,
        surge: i64,
        want: (i64, i64),
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "R=0 gives nothing", r: 0, w: 50, surge: 1, want: (0, 0) },
        Case { name: "R=1 W=1 surge 1 keeps both", r: 1, w: 1, surge: 1, want: (1, 1) },
        Case { name: "R=1 W=50 surge 1 keeps both", r: 1, w: 50, surge: 1, want: (1, 1) },
        Case { name: "R=1 W=99 surge 1 keeps both", r: 1, w: 99, surge: 1, want: (1, 1) },
        Case { name: "R=1 W=1 no surge goes to stable", r: 1, w: 1, surge: 0, want: (0, 1) },
        Case { name: "R=1 W=49 no surge goes to stable", r: 1, w: 49, surge: 0, want: (0, 1) },
        Case { name: "R=1 W=50 no surge: tie goes to canary", r: 1, w: 50, surge: 0, want: (1, 0) },
        Case { name: "R=1 W=99 no surge goes to canary", r: 1, w: 99, surge: 0, want: (1, 0) },
        Case { name: "R=3 W=10 surge 1 is 1 of 4", r: 3, w: 10, surge: 1, want: (1, 3) },
        Case { name: "R=10 W=24 surge 1 is 3 of 11", r: 10, w: 24, surge: 1, want: (3, 8) },
        Case { name: "R=10 W=10 exact", r: 10, w: 10, surge: 3, want: (1, 9) },
        Case { name: "seed002: R=10 W=15 is 2 new and 9 old", r: 10, w: 15, surge: 3, want: (2, 9) },
        Case { name: "R=10 W=15 no surge: tie rounds up", r: 10, w: 15, surge: 0, want: (2, 8) },
        Case { name: "R=3 W=50 no surge: tie rounds up", r: 3, w: 50, surge: 0, want: (2, 1) },
        Case { name: "R=4 W=90 no surge never drops stable to 0", r: 4, w: 90, surge: 0, want: (3, 1) },
        Case { name: "R=10 W=1 never drops canary to 0", r: 10, w: 1, surge: 0, want: (1, 9) },
        Case { name: "R=10 W=99 never drops stable to 0", r: 10, w: 99, surge: 0, want: (9, 1) },
        Case { name: "W=0 is all stable", r: 5, w: 0, surge: 1, want: (0, 5) },
        Case { name: "W=100 is all canary", r: 5, w: 100, surge: 1, want: (5, 0) },
        Case { name: "R=2 W=50 exact", r: 2, w: 50, surge: 0, want: (1, 1) },
    ];
    for c in cases {
        assert_eq!(
            approximate_weighted_counts(c.r, c.w, c.surge),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn basic_canary_reconcile() {
    struct Case {
        name: &'static str,
        r: i64,
        w: i64,
        surge: i64,
        unavail: i64,
        new: Option<(i64, i64)>,
        stable: Option<(i64, i64)>,
        older: &'static [(i64, i64)],
        want: (i64, i64),
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "W=20 surge 2: canary surges to 2, stable kept", r: 10, w: 20, surge: 2, unavail: 0, new: Some((0, 0)), stable: Some((10, 10)), older: &[], want: (2, 10) },
        Case { name: "W=20 next reconcile: stable drops to 8", r: 10, w: 20, surge: 2, unavail: 0, new: Some((2, 2)), stable: Some((10, 10)), older: &[], want: (2, 8) },
        Case { name: "W=50 surge 2 unavailable 1", r: 10, w: 50, surge: 2, unavail: 1, new: Some((0, 0)), stable: Some((10, 10)), older: &[], want: (2, 9) },
        Case { name: "0%/0% fences: unavailable 1 lets stable drop first", r: 10, w: 10, surge: 0, unavail: 1, new: Some((0, 0)), stable: Some((10, 10)), older: &[], want: (0, 9) },
        Case { name: "abort W=0: stable scales up first", r: 4, w: 0, surge: 1, unavail: 0, new: Some((4, 4)), stable: Some((0, 0)), older: &[], want: (4, 1) },
        Case { name: "abort next: canary drains once stable is available", r: 4, w: 0, surge: 1, unavail: 0, new: Some((4, 4)), stable: Some((1, 1)), older: &[], want: (3, 1) },
        Case { name: "doc: W=10 unavail 1 surge 1", r: 10, w: 10, surge: 1, unavail: 1, new: Some((0, 0)), stable: Some((10, 10)), older: &[], want: (1, 9) },
        Case { name: "doc: W=30 unavail 0 surge 3", r: 10, w: 30, surge: 3, unavail: 0, new: Some((0, 0)), stable: Some((10, 10)), older: &[], want: (3, 10) },
        Case { name: "doc: W=30 unavail 5 surge 0", r: 10, w: 30, surge: 0, unavail: 5, new: Some((0, 0)), stable: Some((10, 10)), older: &[], want: (0, 7) },
        Case { name: "W=5 surge 1: 1 of 11 beats 1 of 10, so stable stays 10 (the Go doc comment's 9 predates the R+1 option)", r: 10, w: 5, surge: 1, unavail: 1, new: Some((0, 0)), stable: Some((10, 10)), older: &[], want: (1, 10) },
        Case { name: "doc: R=1 W=5 surge 1", r: 1, w: 5, surge: 1, unavail: 0, new: Some((0, 0)), stable: Some((1, 1)), older: &[], want: (1, 1) },
        Case { name: "doc: R=1 W=95 surge 1", r: 1, w: 95, surge: 1, unavail: 0, new: Some((0, 0)), stable: Some((1, 1)), older: &[], want: (1, 1) },
        Case { name: "older RS drains first: nothing scales down", r: 10, w: 50, surge: 1, unavail: 0, new: Some((0, 0)), stable: Some((10, 10)), older: &[(2, 2)], want: (0, 10) },
        Case { name: "no stable: canary goes to R", r: 5, w: 20, surge: 2, unavail: 0, new: Some((3, 3)), stable: None, older: &[], want: (5, 0) },
        Case { name: "unavailable stable pods still count while growing", r: 10, w: 20, surge: 2, unavail: 0, new: Some((2, 2)), stable: Some((10, 5)), older: &[], want: (2, 8) },
        Case { name: "canary not yet available: stable waits", r: 10, w: 20, surge: 2, unavail: 0, new: Some((2, 0)), stable: Some((10, 10)), older: &[], want: (2, 10) },
    ];
    for c in cases {
        let input = BasicCanaryInput {
            replicas: c.r,
            weight: c.w,
            max_surge: c.surge,
            max_unavailable: c.unavail,
            new_rs: c.new.map(|(a, b)| ReplicaSet::new(a, b)),
            stable_rs: c.stable.map(|(a, b)| ReplicaSet::new(a, b)),
            older: c
                .older
                .iter()
                .map(|&(a, b)| ReplicaSet::new(a, b))
                .collect(),
        };
        assert_eq!(basic_canary_counts(&input), c.want, "{}", c.name);
    }
}

#[test]
fn basic_canary_settles_on_the_weighted_targets() {
    for (r, w, surge, unavail) in [
        (10, 20, 2, 0),
        (10, 50, 2, 1),
        (10, 15, 3, 0),
        (5, 33, 1, 1),
        (1, 50, 1, 0),
        (7, 90, 0, 1),
    ] {
        let input = BasicCanaryInput {
            replicas: r,
            weight: w,
            max_surge: surge,
            max_unavailable: unavail,
            new_rs: Some(ReplicaSet::new(0, 0)),
            stable_rs: Some(ReplicaSet::new(r, r)),
            older: vec![],
        };
        assert_eq!(
            settle_basic_canary(&input),
            approximate_weighted_counts(r, w, surge),
            "R={r} W={w}"
        );
    }
}

#[test]
fn adjust_within_limits() {
    struct Case {
        name: &'static str,
        drain: (i64, i64),
        adjust: (i64, i64),
        counts: (i64, i64),
        max: i64,
        min: i64,
        want: (i64, i64),
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "within limits: unchanged", drain: (4, 4), adjust: (1, 1), counts: (3, 1), max: 5, min: 4, want: (3, 1) },
        Case { name: "over the surge: adjust gives back, drain pays", drain: (5, 2), adjust: (3, 3), counts: (5, 3), max: 6, min: 5, want: (3, 3) },
        Case { name: "over the surge with no availability pressure", drain: (5, 5), adjust: (3, 3), counts: (5, 3), max: 6, min: 2, want: (5, 1) },
    ];
    for c in cases {
        let (d, a) = (
            ReplicaSet::new(c.drain.0, c.drain.1),
            ReplicaSet::new(c.adjust.0, c.adjust.1),
        );
        assert_eq!(
            adjust_replica_within_limits(Some(&d), Some(&a), c.counts.0, c.counts.1, c.max, c.min),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn pause_durations() {
    struct Case {
        name: &'static str,
        v: Option<IntOrString>,
        want: i64,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "absent is 0", v: None, want: 0 },
        Case { name: "int is seconds", v: i(10), want: 10 },
        Case { name: "bare string is seconds", v: s("10"), want: 10 },
        Case { name: "10s", v: s("10s"), want: 10 },
        Case { name: "10m", v: s("10m"), want: 600 },
        Case { name: "10h", v: s("10h"), want: 36000 },
        Case { name: "1h", v: s("1h"), want: 3600 },
        Case { name: "1ms truncates to 0", v: s("1ms"), want: 0 },
        Case { name: "500ms truncates to 0", v: s("500ms"), want: 0 },
        Case { name: "1.5s truncates to 1", v: s("1.5s"), want: 1 },
        Case { name: "1h30m", v: s("1h30m"), want: 5400 },
        Case { name: "1.5h", v: s("1.5h"), want: 5400 },
        Case { name: "1m30s", v: s("1m30s"), want: 90 },
        Case { name: ".5m", v: s(".5m"), want: 30 },
        Case { name: "1.s", v: s("1.s"), want: 1 },
        Case { name: "+10s", v: s("+10s"), want: 10 },
        Case { name: "5us", v: s("5us"), want: 0 },
        Case { name: "5µs micro sign", v: s("5\u{b5}s"), want: 0 },
        Case { name: "0 is zero", v: s("0"), want: 0 },
        Case { name: "no d unit", v: s("1d"), want: -1 },
        Case { name: "Kubevela's 1min is not a Go duration", v: s("1min"), want: -1 },
        Case { name: "garbage", v: s("abc"), want: -1 },
        Case { name: "empty", v: s(""), want: -1 },
        Case { name: "dot alone", v: s(".s"), want: -1 },
        Case { name: "unit alone", v: s("s"), want: -1 },
        Case { name: "int32 overflow string", v: s("20000000000"), want: -1 },
        Case { name: "int32 max string", v: s("2147483647"), want: 2147483647 },
        Case { name: "one above int32 max", v: s("2147483648"), want: -1 },
        Case { name: "negative bare string", v: s("-5"), want: -5 },
        Case { name: "negative duration", v: s("-1s"), want: -1 },
        Case { name: "int outside int32", v: i(3_000_000_000), want: -1 },
        Case { name: "duration beyond int32 seconds converts like amd64", v: s("1000000h"), want: i64::from(i32::MIN) },
        Case { name: "duration beyond int64 nanoseconds", v: s("3000000h"), want: -1 },
    ];
    for c in cases {
        assert_eq!(pause_duration_seconds(c.v.as_ref()), c.want, "{}", c.name);
    }
}

#[test]
fn weights_for_the_current_step() {
    let steps = vec![
        CanaryStep::pause(None),
        CanaryStep::weight(10),
        CanaryStep::canary_scale(SetCanaryScale {
            replicas: Some(3),
            ..Default::default()
        }),
        CanaryStep::weight(40),
        CanaryStep::canary_scale(SetCanaryScale {
            match_traffic_weight: true,
            ..Default::default()
        }),
    ];
    let routed = CanarySpec {
        replicas: 10,
        steps: steps.clone(),
        traffic_routing: true,
        ..Default::default()
    };
    let basic = CanarySpec {
        traffic_routing: false,
        ..routed.clone()
    };
    let st = |idx: usize| WeightStatus {
        current_step_index: idx,
        has_stable: true,
        ..Default::default()
    };
    struct Case {
        name: &'static str,
        spec: CanarySpec,
        st: WeightStatus,
        want: (Option<i64>, i64),
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "before any setWeight the weight is 0", spec: basic.clone(), st: st(0), want: (None, 0) },
        Case { name: "setWeight 10", spec: basic.clone(), st: st(1), want: (None, 10) },
        Case { name: "basic canary ignores setCanaryScale", spec: basic.clone(), st: st(2), want: (None, 10) },
        Case { name: "routed canary uses setCanaryScale replicas", spec: routed.clone(), st: st(2), want: (Some(3), 0) },
        Case { name: "setCanaryScale still wins after a later setWeight", spec: routed.clone(), st: st(3), want: (Some(3), 0) },
        Case { name: "matchTrafficWeight cancels", spec: routed.clone(), st: st(4), want: (None, 40) },
        Case { name: "past the last step is 100", spec: basic.clone(), st: st(5), want: (None, 100) },
        Case { name: "promoteFull is 100", spec: basic.clone(), st: WeightStatus { promote_full: true, ..st(1) }, want: (None, 100) },
        Case { name: "no stable RS is 100", spec: basic.clone(), st: WeightStatus { has_stable: false, ..st(1) }, want: (None, 100) },
        Case { name: "current hash is the stable one: 100", spec: basic.clone(), st: WeightStatus { current_is_stable: true, ..st(1) }, want: (None, 100) },
        Case { name: "aborted is 0", spec: basic.clone(), st: WeightStatus { aborted: true, ..st(3) }, want: (None, 0) },
        Case { name: "aborted ignores setCanaryScale", spec: routed.clone(), st: WeightStatus { aborted: true, ..st(2) }, want: (None, 0) },
        Case { name: "aborted keeps setCanaryScale when abortScaleDownDelaySeconds is 0", spec: CanarySpec { abort_scale_down_delay_seconds: Some(0), ..routed.clone() }, st: WeightStatus { aborted: true, ..st(2) }, want: (Some(3), 0) },
    ];
    for c in cases {
        assert_eq!(
            canary_replicas_or_weight(&c.spec, &c.st),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn traffic_routed() {
    let st = WeightStatus {
        has_stable: true,
        ..Default::default()
    };
    let w = |n| vec![CanaryStep::weight(n)];
    struct Case {
        name: &'static str,
        spec: CanarySpec,
        st: WeightStatus,
        weights: Option<TrafficWeights>,
        want: (i64, i64),
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "canary is ceil, stable stays R", spec: CanarySpec { replicas: 10, steps: w(25), traffic_routing: true, ..Default::default() }, st, weights: None, want: (3, 10) },
        Case { name: "setCanaryScale weight 200 of 4 is 8", spec: CanarySpec { replicas: 4, steps: vec![CanaryStep::canary_scale(SetCanaryScale { weight: Some(200), ..Default::default() })], traffic_routing: true, ..Default::default() }, st, weights: None, want: (8, 4) },
        Case { name: "minPodsPerReplicaSet raises a non-zero canary", spec: CanarySpec { replicas: 10, steps: w(5), traffic_routing: true, min_pods_per_replica_set: Some(2), ..Default::default() }, st, weights: None, want: (2, 10) },
        Case { name: "minPodsPerReplicaSet capped at R", spec: CanarySpec { replicas: 1, steps: w(5), traffic_routing: true, min_pods_per_replica_set: Some(2), ..Default::default() }, st, weights: None, want: (1, 1) },
        Case { name: "minPodsPerReplicaSet leaves 0 alone", spec: CanarySpec { replicas: 10, steps: w(0), traffic_routing: true, min_pods_per_replica_set: Some(2), ..Default::default() }, st, weights: None, want: (0, 10) },
        Case { name: "dynamicStableScale: stable follows 100-W", spec: CanarySpec { replicas: 10, steps: w(30), traffic_routing: true, dynamic_stable_scale: true, ..Default::default() }, st, weights: None, want: (3, 7) },
        Case { name: "dynamicStableScale keeps stable for its current traffic", spec: CanarySpec { replicas: 10, steps: w(30), traffic_routing: true, dynamic_stable_scale: true, ..Default::default() }, st, weights: Some(TrafficWeights { canary: 10, stable: 90 }), want: (3, 9) },
        Case { name: "aborted: canary kept for its current traffic", spec: CanarySpec { replicas: 10, steps: w(30), traffic_routing: true, dynamic_stable_scale: true, ..Default::default() }, st: WeightStatus { aborted: true, ..st }, weights: Some(TrafficWeights { canary: 30, stable: 70 }), want: (3, 10) },
        Case { name: "maxTrafficWeight 1000", spec: CanarySpec { replicas: 10, steps: w(250), traffic_routing: true, max_weight: 1000, ..Default::default() }, st, weights: None, want: (3, 10) },
    ];
    for c in cases {
        assert_eq!(
            traffic_routed_counts(&c.spec, &c.st, c.weights),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn abort_walk_down() {
    let spec = CanarySpec {
        replicas: 10,
        traffic_routing: true,
        dynamic_stable_scale: true,
        steps: vec![
            CanaryStep::weight(10),
            CanaryStep::pause(None),
            CanaryStep::weight(50),
            CanaryStep::weight(80),
        ],
        ..Default::default()
    };
    struct Case {
        name: &'static str,
        spec: CanarySpec,
        stable_avail: i64,
        canary_avail: i64,
        want: i64,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "canary 8 available: step below 8 is 50", spec: spec.clone(), stable_avail: 2, canary_avail: 8, want: 50 },
        Case { name: "stable back to 6: target 4 picks 10", spec: spec.clone(), stable_avail: 6, canary_avail: 3, want: 10 },
        Case { name: "stable full: 0", spec: spec.clone(), stable_avail: 10, canary_avail: 0, want: 0 },
        Case { name: "canary availability counts without abortScaleDownDelaySeconds", spec: spec.clone(), stable_avail: 9, canary_avail: 9, want: 80 },
        Case { name: "explicit abortScaleDownDelaySeconds ignores canary availability", spec: CanarySpec { abort_scale_down_delay_seconds: Some(30), ..spec.clone() }, stable_avail: 9, canary_avail: 9, want: 0 },
    ];
    for c in cases {
        assert_eq!(
            abort_walk_down_weight(&c.spec, c.stable_avail, c.canary_avail),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn validation() {
    let base = CanarySpec {
        replicas: 3,
        ..Default::default()
    };
    struct Case {
        name: &'static str,
        spec: CanarySpec,
        want: Result<(), ArgoError>,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "defaults are valid", spec: base.clone(), want: Ok(()) },
        Case { name: "literal 0 and 0% rejected", spec: CanarySpec { max_surge: i(0), max_unavailable: s("0%"), ..base.clone() }, want: Err(ArgoError::BothFencepostsZero) },
        Case { name: "0 and 1 accepted", spec: CanarySpec { max_surge: i(0), max_unavailable: i(1), ..base.clone() }, want: Ok(()) },
        Case { name: "maxSurge oops rejected", spec: CanarySpec { max_surge: s("oops"), ..base.clone() }, want: Err(ArgoError::BadFencepost { field: "maxSurge", value: IntOrString::str("oops") }) },
        Case { name: "maxUnavailable 12.5% rejected", spec: CanarySpec { max_unavailable: s("12.5%"), ..base.clone() }, want: Err(ArgoError::BadFencepost { field: "maxUnavailable", value: IntOrString::str("12.5%") }) },
        Case { name: "maxSurge oops with maxUnavailable 0 is Argo's both-zero error first", spec: CanarySpec { max_surge: s("oops"), max_unavailable: i(0), ..base.clone() }, want: Err(ArgoError::BothFencepostsZero) },
        Case { name: "maxSurge \"1\" accepted (1%)", spec: CanarySpec { max_surge: s("1"), ..base.clone() }, want: Ok(()) },
        Case { name: "maxSurge 25%% accepted (every % removed)", spec: CanarySpec { max_surge: s("25%%"), ..base.clone() }, want: Ok(()) },
        Case { name: "negative maxSurge accepted (Argo does not check)", spec: CanarySpec { max_surge: i(-1), ..base.clone() }, want: Ok(()) },
        Case { name: "setWeight above 100", spec: CanarySpec { steps: vec![CanaryStep::weight(101)], ..base.clone() }, want: Err(ArgoError::SetWeightOutOfRange { index: 0, weight: 101, max_weight: 100 }) },
        Case { name: "setWeight negative", spec: CanarySpec { steps: vec![CanaryStep::weight(-1)], ..base.clone() }, want: Err(ArgoError::SetWeightOutOfRange { index: 0, weight: -1, max_weight: 100 }) },
        Case { name: "setWeight 0 and 100 accepted", spec: CanarySpec { steps: vec![CanaryStep::weight(0), CanaryStep::weight(100)], ..base.clone() }, want: Ok(()) },
        Case { name: "empty step", spec: CanarySpec { steps: vec![CanaryStep::default()], ..base.clone() }, want: Err(ArgoError::EmptyStep(0)) },
        Case { name: "pause 1d rejected", spec: CanarySpec { steps: vec![CanaryStep::pause(s("1d"))], ..base.clone() }, want: Err(ArgoError::BadPauseDuration { index: 0, value: IntOrString::str("1d") }) },
        Case { name: "pause 20000000000 rejected", spec: CanarySpec { steps: vec![CanaryStep::pause(s("20000000000"))], ..base.clone() }, want: Err(ArgoError::BadPauseDuration { index: 0, value: IntOrString::str("20000000000") }) },
        Case { name: "pause 0 accepted", spec: CanarySpec { steps: vec![CanaryStep::pause(i(0))], ..base.clone() }, want: Ok(()) },
        Case { name: "setCanaryScale needs routing", spec: CanarySpec { steps: vec![CanaryStep::canary_scale(SetCanaryScale::default())], ..base.clone() }, want: Err(ArgoError::CanaryScaleWithoutRouting(0)) },
        Case { name: "dynamicStableScale needs routing", spec: CanarySpec { dynamic_stable_scale: true, ..base.clone() }, want: Err(ArgoError::DynamicStableScaleWithoutRouting) },
        Case { name: "dynamicStableScale excludes scaleDownDelaySeconds", spec: CanarySpec { dynamic_stable_scale: true, traffic_routing: true, scale_down_delay_seconds: Some(30), ..base.clone() }, want: Err(ArgoError::DynamicStableScaleWithDelay) },
    ];
    for c in cases {
        assert_eq!(validate(&c.spec), c.want, "{}", c.name);
    }
}
