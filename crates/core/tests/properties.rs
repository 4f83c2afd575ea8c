//! Property tests: counts never negative, never above R + maxSurge, KubeVela cumulative
//! batches monotone with the last equal to the target, determinism.

use proptest::prelude::*;
use rollgit_core::argo::{self, BasicCanaryInput, ReplicaSet};
use rollgit_core::intstr::IntOrString;
use rollgit_core::{kruise, kubevela};

fn batch() -> impl Strategy<Value = IntOrString> {
    prop_oneof![
        (0i64..20).prop_map(IntOrString::Int),
        (0i64..=100).prop_map(|p| IntOrString::Str(format!("{p}%"))),
    ]
}

proptest! {
    #[test]
    fn weighted_counts_are_bounded(r in 0i64..200, w in 0i64..=100, surge in 0i64..50) {
        let (c, s) = argo::approximate_weighted_counts(r, w, surge);
        prop_assert!(c >= 0 && s >= 0);
        let total = c + s;
        prop_assert!(total == r || (surge > 0 && total == r + 1));
        if r >= 2 && (1..=99).contains(&w) {
            prop_assert!(c > 0 && s > 0, "1..99 never drops a side to 0");
        }
        prop_assert_eq!(argo::approximate_weighted_counts(r, w, surge), (c, s));
    }

    #[test]
    fn basic_canary_stays_within_limits(
        r in 1i64..40, w in 0i64..=100, surge_pct in 0i64..=100, unavail_pct in 0i64..=100,
        new_spec in 0i64..40, stable_spec in 0i64..40,
    ) {
        let (surge, unavail) = argo::resolve_fenceposts(
            Some(&IntOrString::Str(format!("{surge_pct}%"))), Some(&IntOrString::Str(format!("{unavail_pct}%"))), r);
        let unavail = unavail.min(r);
        // start from a state the controller could be in: within R + surge
        let new_spec = new_spec.min(r + surge);
        let stable_spec = stable_spec.min(r + surge - new_spec);
        let input = BasicCanaryInput {
            replicas: r, weight: w, max_surge: surge, max_unavailable: unavail,
            new_rs: Some(ReplicaSet::new(new_spec, new_spec)),
            stable_rs: Some(ReplicaSet::new(stable_spec, stable_spec)),
            older: vec![],
        };
        let (c, s) = argo::basic_canary_counts(&input);
        prop_assert!(c >= 0 && s >= 0, "({c}, {s})");
        prop_assert!(c + s <= r + surge, "({c}, {s}) > {r} + {surge}");
        prop_assert_eq!(argo::basic_canary_counts(&input), (c, s));
        let settled = argo::settle_basic_canary(&input);
        prop_assert!(settled.0 >= 0 && settled.1 >= 0 && settled.0 + settled.1 <= r + surge);
    }

    #[test]
    fn kubevela_batches_monotone_and_end_at_target(
        batches in prop::collection::vec(batch(), 1..6), target in 0i64..100,
    ) {
        let t = kubevela::cumulative_targets(&batches, 0, target);
        prop_assert_eq!(*t.last().expect("non-empty"), target);
        if kubevela::verify_batches_with_rollout(&batches, target).is_ok() {
            for pair in t.windows(2) {
                prop_assert!(pair[0] <= pair[1], "{t:?}");
            }
            prop_assert!(t.iter().all(|&x| (0..=target).contains(&x)), "{t:?}");
        }
        prop_assert_eq!(kubevela::cumulative_targets(&batches, 0, target), t);
    }

    #[test]
    fn kubevela_scales_move_toward_the_target(
        batches in prop::collection::vec(batch(), 1..6), from in 0i64..60, to in 0i64..60,
    ) {
        let t = kubevela::cumulative_targets(&batches, from, to);
        prop_assert_eq!(*t.last().expect("non-empty"), to);
        if kubevela::verify_batches_with_scale(&batches, from, to).is_ok() {
            let lo = from.min(to);
            let hi = from.max(to);
            prop_assert!(t.iter().all(|&x| (lo..=hi).contains(&x)), "{t:?}");
            for pair in t.windows(2) {
                if to >= from { prop_assert!(pair[0] <= pair[1]); } else { prop_assert!(pair[0] >= pair[1]); }
            }
        }
    }

    #[test]
    fn default_batches_sum_to_size(size in 0i64..500, n in 1i64..20) {
        let b = kubevela::default_rollout_batches(size, n);
        prop_assert_eq!(b.len() as i64, n);
        prop_assert_eq!(b.iter().sum::<i64>(), size);
        for pair in b.windows(2) { prop_assert!(pair[0] <= pair[1]); }
        prop_assert!(b[b.len() - 1] - b[0] <= 1);
    }

    #[test]
    fn kruise_counts_within_replicas(step in batch(), r in 0i64..300, n in 0i64..300) {
        let n = n.min(r);
        for kind in [kruise::WorkloadKind::CloneSet, kruise::WorkloadKind::Deployment, kruise::WorkloadKind::DaemonSet,
                     kruise::WorkloadKind::StatefulSet, kruise::WorkloadKind::AdvancedStatefulSetUnordered] {
            let c = kruise::partition_batch_context(kind, &step, r, n);
            prop_assert!((0..=r).contains(&c.planned_updated));
            prop_assert!(c.desired_updated >= 0 && c.desired_stable >= 0, "{kind:?} {c:?}");
            if n == 0 {
                prop_assert!(c.desired_updated + c.desired_stable == r, "{kind:?} {c:?}");
            }
        }
    }

    #[test]
    fn cloneset_percent_partition_is_within_one_percent(stable in 1i64..1000, extra in 1i64..1000) {
        let all = stable + extra;
        let p = kruise::percent_partition(stable, all, &IntOrString::str("50%"));
        let restored = rollgit_core::intstr::strict(&p, all, true).expect("percent");
        // ceil(P·R) never exceeds the intended stable count, and is off by at most 1% of R (+1)
        prop_assert!(restored <= stable || p == IntOrString::str("1%"), "{p:?} {restored} {stable}");
        prop_assert!(stable - restored <= all / 100 + 1, "{p:?} {restored} {stable}");
    }

    #[test]
    fn pause_parsing_never_panics(s in "\\PC{0,12}") {
        let v = argo::pause_duration_seconds(Some(&IntOrString::Str(s.clone())));
        prop_assert_eq!(argo::pause_duration_seconds(Some(&IntOrString::Str(s))), v);
    }
}
