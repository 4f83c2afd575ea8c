//! KubeVela rollout plan arithmetic, one named case per row (ROLLOUT-SEMANTICS.md §C.1–C.2, pitfalls D.1, D.4).

use rollgit_core::intstr::IntOrString;
use rollgit_core::kubevela::*;

fn b(items: &[&str]) -> Vec<IntOrString> {
    items
        .iter()
        .map(|v| match (v.strip_prefix("s:"), v.parse::<i64>()) {
            (Some(text), _) => IntOrString::str(text),
            (None, Ok(n)) => IntOrString::Int(n),
            (None, Err(_)) => IntOrString::str(v),
        })
        .collect()
}

#[test]
fn cumulative_batch_targets() {
    struct Case {
        name: &'static str,
        batches: Vec<IntOrString>,
        original: i64,
        target: i64,
        want: Vec<i64>,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "1, 20%, 50%, 2 on 10", batches: b(&["1", "20%", "50%", "2"]), original: 0, target: 10, want: vec![1, 3, 8, 10] },
        Case { name: "seed000 2, 3 on 5", batches: b(&["2", "3"]), original: 0, target: 5, want: vec![2, 5] },
        Case { name: "percents round up per batch", batches: b(&["25%", "25%", "50%"]), original: 0, target: 5, want: vec![2, 4, 5] },
        Case { name: "the last batch's value is ignored", batches: b(&["1", "1"]), original: 0, target: 10, want: vec![1, 10] },
        Case { name: "a bare \"30\" is 30 percent", batches: b(&["s:30", "70%"]), original: 0, target: 10, want: vec![3, 10] },
        Case { name: "single batch is the target", batches: b(&["3"]), original: 0, target: 10, want: vec![10] },
        Case { name: "scale up 5 to 7 by 1s", batches: b(&["1", "1"]), original: 5, target: 7, want: vec![6, 7] },
        Case { name: "scale down 30 to 15", batches: b(&["1", "20%", "50%", "2"]), original: 30, target: 15, want: vec![29, 26, 18, 15] },
        Case { name: "percent of the scale size, not of the target", batches: b(&["50%", "50%"]), original: 10, target: 14, want: vec![12, 14] },
        Case { name: "R=0", batches: b(&["50%", "50%"]), original: 0, target: 0, want: vec![0, 0] },
        Case { name: "R=1 with 10% rounds up to 1", batches: b(&["10%", "90%"]), original: 0, target: 1, want: vec![1, 1] },
        Case { name: "unparsable batch counts 0", batches: b(&["ab", "1"]), original: 0, target: 4, want: vec![0, 4] },
        Case { name: "0% first batch", batches: b(&["0%", "100%"]), original: 0, target: 4, want: vec![0, 4] },
    ];
    for c in cases {
        assert_eq!(
            cumulative_targets(&c.batches, c.original, c.target),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn past_the_last_batch_is_the_literal_unclamped_sum() {
    let batches = b(&["1", "20%", "50%", "2"]);
    assert_eq!(
        calculate_new_batch_target(&batches, 0, 10, 4),
        10,
        "1+2+5+2"
    );
    let batches = b(&["5", "9"]);
    assert_eq!(
        calculate_new_batch_target(&batches, 0, 10, 2),
        14,
        "not clamped"
    );
    assert_eq!(calculate_new_batch_target(&[], 0, 10, 0), 0, "empty plan");
}

#[test]
fn source_goals() {
    struct Case {
        name: &'static str,
        batches: Vec<IntOrString>,
        total: i64,
        want: Vec<i64>,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "20/40/30/10% on 10", batches: b(&["20%", "40%", "30%", "10%"]), total: 10, want: vec![8, 4, 1, 0] },
        Case { name: "seed000 2,3", batches: b(&["2", "3"]), total: 5, want: vec![3, 0] },
        Case { name: "seed001 1,50%,50% on 5", batches: b(&["1", "50%", "50%"]), total: 5, want: vec![4, 1, 0] },
    ];
    for c in cases {
        let got: Vec<i64> = cumulative_targets(&c.batches, 0, c.total)
            .iter()
            .map(|t| source_goal(c.total, *t))
            .collect();
        assert_eq!(got, c.want, "{}", c.name);
    }
}

#[test]
fn default_batches() {
    #[rustfmt::skip]
    let cases: [(&str, i64, i64, Vec<i64>); 8] = [
        ("5 in 5", 5, 5, vec![1, 1, 1, 1, 1]),
        ("8 in 5: remainder on the later batches", 8, 5, vec![1, 1, 2, 2, 2]),
        ("4 in 5: the first batch is empty", 4, 5, vec![0, 1, 1, 1, 1]),
        ("9 in 4", 9, 4, vec![2, 2, 2, 3]),
        ("0 in 3", 0, 3, vec![0, 0, 0]),
        ("7 in 1", 7, 1, vec![7]),
        ("no batches", 7, 0, vec![]),
        ("negative numBatches", 7, -1, vec![]),
    ];
    for (name, size, n, want) in cases {
        assert_eq!(default_rollout_batches(size, n), want, "{name}");
        if n > 0 {
            assert_eq!(
                default_rollout_batches(size, n).iter().sum::<i64>(),
                size,
                "{name}: sums to size"
            );
        }
    }
}

#[test]
fn verify_with_rollout() {
    struct Case {
        name: &'static str,
        batches: Vec<IntOrString>,
        total: i64,
        want: Result<(), KubeVelaError>,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "ints add up", batches: b(&["2", "3"]), total: 5, want: Ok(()) },
        Case { name: "percent last batch is not checked", batches: b(&["1", "50%", "50%"]), total: 5, want: Ok(()) },
        Case { name: "3 x 33% of 10 is 12", batches: b(&["33%", "33%", "33%", "1%"]), total: 10, want: Err(KubeVelaError::LeadingBatchesTooLarge { sum: 12, total: 10 }) },
        Case { name: "leading sum equal to total", batches: b(&["5", "5", "0"]), total: 10, want: Err(KubeVelaError::LeadingBatchesTooLarge { sum: 10, total: 10 }) },
        Case { name: "int last batch short", batches: b(&["2", "2"]), total: 5, want: Err(KubeVelaError::BatchSumMismatch { sum: 4, total: 5 }) },
        Case { name: "int last batch over", batches: b(&["2", "4"]), total: 5, want: Err(KubeVelaError::BatchSumMismatch { sum: 6, total: 5 }) },
        Case { name: "empty plan", batches: vec![], total: 5, want: Err(KubeVelaError::NoBatches) },
        Case { name: "single int batch equal", batches: b(&["5"]), total: 5, want: Ok(()) },
        Case { name: "R=0 cannot have leading sum below 0", batches: b(&["0", "0"]), total: 0, want: Err(KubeVelaError::LeadingBatchesTooLarge { sum: 0, total: 0 }) },
        Case { name: "R=0 always fails: an empty leading sum 0 is not below 0", batches: b(&["0"]), total: 0, want: Err(KubeVelaError::LeadingBatchesTooLarge { sum: 0, total: 0 }) },
        Case { name: "bare 50 means 50 percent", batches: b(&["s:50", "50%"]), total: 3, want: Ok(()) },
        // Regressions: a Rollout edited in the cluster can hold any int64; these overflowed.
        Case { name: "int64 batches overflowed the leading sum", batches: vec![IntOrString::Int(i64::MAX), IntOrString::Int(i64::MAX), IntOrString::Int(1)], total: 5, want: Err(KubeVelaError::LeadingBatchesTooLarge { sum: i64::MAX, total: 5 }) },
        Case { name: "an int64 last batch overflowed the full sum", batches: vec![IntOrString::Int(1), IntOrString::Int(i64::MAX)], total: 5, want: Err(KubeVelaError::BatchSumMismatch { sum: i64::MAX, total: 5 }) },
    ];
    for c in cases {
        assert_eq!(
            verify_batches_with_rollout(&c.batches, c.total),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn verify_with_scale() {
    struct Case {
        name: &'static str,
        batches: Vec<IntOrString>,
        original: i64,
        target: i64,
        want: Result<(), KubeVelaError>,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "5 to 7 by 1, 1", batches: b(&["1", "1"]), original: 5, target: 7, want: Ok(()) },
        Case { name: "5 to 7 reached before the last batch", batches: b(&["2", "0"]), original: 5, target: 7, want: Err(KubeVelaError::ScaleIncreasedTooMuch { original: 5, target: 7, reached: 7 }) },
        Case { name: "7 to 5 by 1, 1", batches: b(&["1", "1"]), original: 7, target: 5, want: Ok(()) },
        Case { name: "7 to 5 reached before the last batch", batches: b(&["100%", "0"]), original: 7, target: 5, want: Err(KubeVelaError::ScaleReducedTooMuch { original: 7, target: 5, reached: 5 }) },
        Case { name: "single batch scale", batches: b(&["2"]), original: 5, target: 7, want: Ok(()) },
        Case { name: "no-op scale with a single batch", batches: b(&["0"]), original: 5, target: 5, want: Ok(()) },
        Case { name: "no-op scale whose batches move", batches: b(&["1", "0"]), original: 5, target: 5, want: Err(KubeVelaError::NoOpScaleMismatch { original: 5, target: 5, reached: 4 }) },
        Case { name: "empty plan", batches: vec![], original: 5, target: 7, want: Err(KubeVelaError::NoBatches) },
        Case { name: "5 to 7, int batches adding to 4", batches: b(&["1", "3"]), original: 5, target: 7, want: Err(KubeVelaError::ScaleSumMismatch { original: 5, target: 7, change: 2, sum: 4 }) },
        Case { name: "7 to 5, int batches adding to 3", batches: b(&["1", "2"]), original: 7, target: 5, want: Err(KubeVelaError::ScaleSumMismatch { original: 7, target: 5, change: 2, sum: 3 }) },
        Case { name: "5 to 7, int batches adding to 1", batches: b(&["1", "0"]), original: 5, target: 7, want: Err(KubeVelaError::ScaleSumMismatch { original: 5, target: 7, change: 2, sum: 1 }) },
        Case { name: "5 to 7, a percent last batch is not checked", batches: b(&["1", "100%"]), original: 5, target: 7, want: Ok(()) },
        Case { name: "5 to 15, a percent before an int last batch", batches: b(&["50%", "5"]), original: 5, target: 15, want: Ok(()) },
        Case { name: "no-op scale whose int last batch moves", batches: b(&["0", "1"]), original: 5, target: 5, want: Err(KubeVelaError::ScaleSumMismatch { original: 5, target: 5, change: 0, sum: 1 }) },
        // Regressions: a Rollout edited in the cluster can hold any int64; these overflowed.
        Case { name: "a scale across all of int64 overflowed the size change", batches: b(&["1", "1"]), original: i64::MIN, target: i64::MAX, want: Err(KubeVelaError::ScaleSumMismatch { original: i64::MIN, target: i64::MAX, change: i64::MAX, sum: 2 }) },
        Case { name: "int64 batches overflowed the size reached", batches: vec![IntOrString::Int(i64::MAX), IntOrString::Int(i64::MAX), IntOrString::Int(0)], original: 5, target: 7, want: Err(KubeVelaError::ScaleIncreasedTooMuch { original: 5, target: 7, reached: i64::MAX }) },
        Case { name: "int64 batches overflowed a scale down", batches: vec![IntOrString::Int(i64::MAX), IntOrString::Int(i64::MAX), IntOrString::Int(0)], original: 7, target: 5, want: Err(KubeVelaError::ScaleReducedTooMuch { original: 7, target: 5, reached: i64::MIN }) },
    ];
    for c in cases {
        assert_eq!(
            verify_batches_with_scale(&c.batches, c.original, c.target),
            c.want,
            "{}",
            c.name
        );
    }
}

#[test]
fn validate_webhook() {
    let ok = RolloutPlan {
        rollout_batches: vec![RolloutBatch::new(2), RolloutBatch::new(3)],
        ..Default::default()
    };
    struct Case {
        name: &'static str,
        plan: RolloutPlan,
        want: Result<(), KubeVelaError>,
    }
    #[rustfmt::skip]
    let cases = [
        Case { name: "plain plan", plan: ok.clone(), want: Ok(()) },
        Case { name: "no batches", plan: RolloutPlan::default(), want: Err(KubeVelaError::NoBatches) },
        Case { name: "negative batchPartition", plan: RolloutPlan { batch_partition: Some(-1), ..ok.clone() }, want: Err(KubeVelaError::NegativeBatchPartition(-1)) },
        Case { name: "batchPartition 0", plan: RolloutPlan { batch_partition: Some(0), ..ok.clone() }, want: Ok(()) },
        Case { name: "numBatches mismatch", plan: RolloutPlan { num_batches: Some(3), ..ok.clone() }, want: Err(KubeVelaError::NumBatchesMismatch { num_batches: 3, batches: 2 }) },
        Case { name: "numBatches match", plan: RolloutPlan { num_batches: Some(2), ..ok.clone() }, want: Ok(()) },
        Case { name: "DecreaseFirst", plan: RolloutPlan { rollout_strategy: Some("DecreaseFirst".into()), ..ok.clone() }, want: Ok(()) },
        Case { name: "unknown strategy", plan: RolloutPlan { rollout_strategy: Some("Sideways".into()), ..ok.clone() }, want: Err(KubeVelaError::BadStrategy("Sideways".into())) },
        Case { name: "0.2 rejected", plan: RolloutPlan { rollout_batches: vec![RolloutBatch::new("0.2")], ..Default::default() }, want: Err(KubeVelaError::BadBatchReplicas { index: 0, value: IntOrString::str("0.2") }) },
        Case { name: "ab rejected", plan: RolloutPlan { rollout_batches: vec![RolloutBatch::new(1), RolloutBatch::new("ab")], ..Default::default() }, want: Err(KubeVelaError::BadBatchReplicas { index: 1, value: IntOrString::str("ab") }) },
        Case { name: "negative int rejected", plan: RolloutPlan { rollout_batches: vec![RolloutBatch::new(-1)], ..Default::default() }, want: Err(KubeVelaError::BadBatchReplicas { index: 0, value: IntOrString::Int(-1) }) },
        Case { name: "lenient 30 accepted", plan: RolloutPlan { rollout_batches: vec![RolloutBatch::new("30")], ..Default::default() }, want: Ok(()) },
        Case { name: "plan webhook must be initialize/finalize", plan: RolloutPlan { webhook_types: vec!["pre-batch-rollout".into()], ..ok.clone() }, want: Err(KubeVelaError::BadRolloutWebhook("pre-batch-rollout".into())) },
        Case { name: "plan webhooks accepted", plan: RolloutPlan { webhook_types: vec!["initialize-rollout".into(), "finalize-rollout".into()], ..ok.clone() }, want: Ok(()) },
        Case { name: "batch webhook must be pre/post", plan: RolloutPlan { rollout_batches: vec![RolloutBatch { replicas: IntOrString::Int(1), webhook_types: vec!["finalize-rollout".into()] }], ..Default::default() }, want: Err(KubeVelaError::BadBatchWebhook { index: 0, kind: "finalize-rollout".into() }) },
    ];
    for c in cases {
        assert_eq!(validate_plan(&c.plan), c.want, "{}", c.name);
    }
}

#[test]
fn defaulting_fills_empty_batches_only() {
    let mut plan = RolloutPlan {
        target_size: Some(8),
        num_batches: Some(5),
        ..Default::default()
    };
    default_plan(&mut plan);
    assert_eq!(plan.replicas(), b(&["1", "1", "2", "2", "2"]));
    let mut kept = RolloutPlan {
        target_size: Some(8),
        num_batches: Some(2),
        rollout_batches: vec![RolloutBatch::new(8)],
        ..Default::default()
    };
    default_plan(&mut kept);
    assert_eq!(kept.replicas(), b(&["8"]));
    assert_eq!(
        validate_plan(&kept),
        Err(KubeVelaError::NumBatchesMismatch {
            num_batches: 2,
            batches: 1
        })
    );
}

/// (name, ready, maxUnavailable, size, cumulative target, verified)
type ReadyRow = (&'static str, i64, Option<IntOrString>, i64, i64, bool);

#[test]
fn batch_partition_and_readiness() {
    #[rustfmt::skip]
    let cases: [(&str, Option<i64>, i64, bool); 5] = [
        ("nil partition always moves on", None, 3, true),
        ("partition 0 holds batch 0", Some(0), 0, false),
        ("partition 1 lets batch 0 move", Some(1), 0, true),
        ("partition 1 holds batch 1", Some(1), 1, false),
        ("partition below current holds", Some(0), 2, false),
    ];
    for (name, p, cur, want) in cases {
        assert_eq!(batch_partition_allows_next(p, cur), want, "{name}");
    }
    #[rustfmt::skip]
    let ready: [ReadyRow; 5] = [
        ("all ready", 4, None, 10, 4, true),
        ("one short without maxUnavailable", 3, None, 10, 4, false),
        ("10% of 10 tolerates one", 3, Some(IntOrString::str("10%")), 10, 4, true),
        ("10% of 5 rounds up to one", 3, Some(IntOrString::str("10%")), 5, 4, true),
        ("int maxUnavailable", 2, Some(IntOrString::Int(2)), 10, 4, true),
    ];
    for (name, r, mu, size, target, want) in ready {
        assert_eq!(
            batch_available(r, mu.as_ref(), size, target),
            want,
            "{name}"
        );
    }
    assert_eq!(cloneset_partition(5, 2), 3);
    assert_eq!(cloneset_partition(5, 5), 0);
}

#[test]
fn deployment_batches() {
    use DeploymentAction::*;
    let obs = |ts, tr, ss, st| DeploymentObservation {
        target_spec: ts,
        target_ready: tr,
        source_spec: ss,
        source_status: st,
    };
    #[rustfmt::skip]
    let cases = [
        ("increase: scale target first", RolloutStrategy::IncreaseFirst, obs(0, 0, 5, 5), ScaleTarget(2)),
        ("increase: wait for target readiness", RolloutStrategy::IncreaseFirst, obs(2, 1, 5, 5), Wait),
        ("increase: then scale source down", RolloutStrategy::IncreaseFirst, obs(2, 2, 5, 5), ScaleSource(3)),
        ("increase: wait for source pods to go", RolloutStrategy::IncreaseFirst, obs(2, 2, 3, 4), Wait),
        ("increase: verified", RolloutStrategy::IncreaseFirst, obs(2, 2, 3, 3), BatchVerified),
        ("decrease: scale source first", RolloutStrategy::DecreaseFirst, obs(0, 0, 5, 5), ScaleSource(3)),
        ("decrease: wait until source status equals goal", RolloutStrategy::DecreaseFirst, obs(0, 0, 3, 4), Wait),
        ("decrease: then target, without readiness wait", RolloutStrategy::DecreaseFirst, obs(0, 0, 3, 3), ScaleTarget(2)),
        ("decrease: verified when target ready", RolloutStrategy::DecreaseFirst, obs(2, 2, 3, 3), BatchVerified),
        ("decrease: not verified before", RolloutStrategy::DecreaseFirst, obs(2, 1, 3, 3), Wait),
    ];
    for (name, strategy, o, want) in cases {
        assert_eq!(deployment_batch_pass(strategy, 5, 2, 0, o), want, "{name}");
    }
    assert_eq!(deployment_total_size(None, 5), Ok(5));
    assert_eq!(deployment_total_size(Some(7), 5), Ok(7));
    assert_eq!(
        deployment_total_size(Some(4), 5),
        Err(KubeVelaError::TargetBelowSource {
            target_size: 4,
            source_size: 5
        })
    );
}

#[test]
fn scale_without_batches_is_one_batch() {
    assert_eq!(scale_batches(&[], 5, 7), b(&["2"]));
    assert_eq!(scale_batches(&[], 7, 3), b(&["4"]));
    assert_eq!(scale_batches(&b(&["1", "1"]), 5, 7), b(&["1", "1"]));
}
