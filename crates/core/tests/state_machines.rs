//! The three state machines, one named case per transition (ROLLOUT-SEMANTICS.md §A.6, §B.4–B.5, §C.3, pitfalls D.7–D.9).

mod kubevela {
    use rollgit_core::kubevela::{BatchRollingState as B, RollingState as R, *};

    fn at(r: R, b: B) -> RolloutStatus {
        RolloutStatus {
            rolling_state: r,
            batch_state: b,
            current_batch: 1,
            upgraded_replicas: 2,
            rollout_target_size: 5,
            condition: None,
        }
    }

    #[test]
    fn transition_table() {
        use RolloutEvent as E;
        struct Case {
            name: &'static str,
            from: (R, B),
            event: E,
            to: (R, B),
            batch: i64,
        }
        #[rustfmt::skip]
        let cases = [
            Case { name: "located", from: (R::LocatingTargetApp, B::BatchInitializing), event: E::AppLocated, to: (R::VerifyingSpec, B::BatchInitializing), batch: 1 },
            Case { name: "AppLocated is ignored elsewhere", from: (R::RollingInBatches, B::BatchVerifying), event: E::AppLocated, to: (R::RollingInBatches, B::BatchVerifying), batch: 1 },
            Case { name: "spec verified", from: (R::VerifyingSpec, B::BatchInitializing), event: E::RollingSpecVerified, to: (R::Initializing, B::BatchInitializing), batch: 1 },
            Case { name: "verify error goes straight to rolloutFailed", from: (R::VerifyingSpec, B::BatchInitializing), event: E::Failed("bad spec".into()), to: (R::RolloutFailed, B::BatchInitializing), batch: 1 },
            Case { name: "initialized", from: (R::Initializing, B::BatchReady), event: E::RollingInitialized, to: (R::RollingInBatches, B::BatchInitializing), batch: 1 },
            Case { name: "initialize error goes to rolloutFailing", from: (R::Initializing, B::BatchInitializing), event: E::Failing("no".into()), to: (R::RolloutFailing, B::BatchInitializing), batch: 1 },
            Case { name: "batch initialized", from: (R::RollingInBatches, B::BatchInitializing), event: E::InitializedOneBatch, to: (R::RollingInBatches, B::BatchInRolling), batch: 1 },
            Case { name: "batch rolled", from: (R::RollingInBatches, B::BatchInRolling), event: E::RolloutOneBatch, to: (R::RollingInBatches, B::BatchVerifying), batch: 1 },
            Case { name: "batch available", from: (R::RollingInBatches, B::BatchVerifying), event: E::OneBatchAvailable, to: (R::RollingInBatches, B::BatchFinalizing), batch: 1 },
            Case { name: "batch finished", from: (R::RollingInBatches, B::BatchFinalizing), event: E::FinishedOneBatch, to: (R::RollingInBatches, B::BatchReady), batch: 1 },
            Case { name: "last batch finished: finalising, batch stays batchReady", from: (R::RollingInBatches, B::BatchFinalizing), event: E::AllBatchFinished, to: (R::Finalising, B::BatchReady), batch: 1 },
            Case { name: "same string: RollingFinalized finishes the batches too", from: (R::RollingInBatches, B::BatchFinalizing), event: E::RollingFinalized, to: (R::Finalising, B::BatchReady), batch: 1 },
            Case { name: "approved: next batch", from: (R::RollingInBatches, B::BatchReady), event: E::BatchRolloutApproved, to: (R::RollingInBatches, B::BatchInitializing), batch: 2 },
            Case { name: "batch failure fails the rollout", from: (R::RollingInBatches, B::BatchVerifying), event: E::BatchRolloutFailed, to: (R::RolloutFailed, B::BatchVerifyFailed), batch: 1 },
            Case { name: "batch sub-step error: failing + batchInitializing", from: (R::RollingInBatches, B::BatchInRolling), event: E::Failing("patch".into()), to: (R::RolloutFailing, B::BatchInitializing), batch: 1 },
            Case { name: "finalised: succeed", from: (R::Finalising, B::BatchReady), event: E::RollingFinalized, to: (R::RolloutSucceed, B::BatchReady), batch: 1 },
            Case { name: "same string: AllBatchFinished also finalises", from: (R::Finalising, B::BatchReady), event: E::AllBatchFinished, to: (R::RolloutSucceed, B::BatchReady), batch: 1 },
            Case { name: "failing finalised: failed", from: (R::RolloutFailing, B::BatchInitializing), event: E::RollingFinalized, to: (R::RolloutFailed, B::BatchInitializing), batch: 1 },
            Case { name: "deleting finalised: failed", from: (R::RolloutDeleting, B::BatchInitializing), event: E::RollingFinalized, to: (R::RolloutFailed, B::BatchInitializing), batch: 1 },
            Case { name: "abandoning finalised: reset", from: (R::RolloutAbandoning, B::BatchInitializing), event: E::RollingFinalized, to: (R::LocatingTargetApp, B::BatchInitializing), batch: 0 },
            Case { name: "modified after success: reset", from: (R::RolloutSucceed, B::BatchReady), event: E::RollingModified, to: (R::LocatingTargetApp, B::BatchInitializing), batch: 0 },
            Case { name: "modified after failure: reset", from: (R::RolloutFailed, B::BatchVerifyFailed), event: E::RollingModified, to: (R::LocatingTargetApp, B::BatchInitializing), batch: 0 },
            Case { name: "modified mid-rollout: abandoning", from: (R::RollingInBatches, B::BatchVerifying), event: E::RollingModified, to: (R::RolloutAbandoning, B::BatchInitializing), batch: 1 },
            Case { name: "modified while deleting: illegal", from: (R::RolloutDeleting, B::BatchInitializing), event: E::RollingModified, to: (R::RolloutFailed, B::BatchInitializing), batch: 1 },
            Case { name: "deleted mid-rollout", from: (R::RollingInBatches, B::BatchReady), event: E::RollingDeleted, to: (R::RolloutDeleting, B::BatchInitializing), batch: 1 },
            Case { name: "deleted after success: illegal", from: (R::RolloutSucceed, B::BatchReady), event: E::RollingDeleted, to: (R::RolloutFailed, B::BatchReady), batch: 1 },
            Case { name: "illegal: OneBatchAvailable in batchInRolling", from: (R::RollingInBatches, B::BatchInRolling), event: E::OneBatchAvailable, to: (R::RolloutFailed, B::BatchInRolling), batch: 1 },
            Case { name: "illegal: approve before batchReady", from: (R::RollingInBatches, B::BatchFinalizing), event: E::BatchRolloutApproved, to: (R::RolloutFailed, B::BatchFinalizing), batch: 1 },
            Case { name: "illegal: verified in initializing", from: (R::Initializing, B::BatchInitializing), event: E::RollingSpecVerified, to: (R::RolloutFailed, B::BatchInitializing), batch: 1 },
            Case { name: "illegal: any event in locating except located", from: (R::LocatingTargetApp, B::BatchInitializing), event: E::RollingInitialized, to: (R::RolloutFailed, B::BatchInitializing), batch: 1 },
        ];
        for c in cases {
            let (got, actions) = step(&at(c.from.0, c.from.1), &c.event, 42);
            assert_eq!(
                (got.rolling_state, got.batch_state, got.current_batch),
                (c.to.0, c.to.1, c.batch),
                "{}",
                c.name
            );
            assert_eq!(
                actions.contains(&RolloutAction::Requeue),
                !c.to.0.is_terminal(),
                "{}: terminal states are not requeued",
                c.name
            );
        }
    }

    #[test]
    fn illegal_transition_sets_a_negative_condition() {
        let (s, actions) = step(
            &at(R::RollingInBatches, B::BatchInRolling),
            &RolloutEvent::OneBatchAvailable,
            7,
        );
        let c = s.condition.expect("condition");
        assert_eq!((c.kind, c.status, c.at), ("RolloutFailed", false, 7));
        assert!(
            c.message.contains("OneBatchAvailableEvent"),
            "{}",
            c.message
        );
        assert_eq!(actions, vec![RolloutAction::SetCondition(c.clone())]);
    }

    #[test]
    fn reset_values_and_strings() {
        let r = RolloutStatus::reset();
        assert_eq!(
            (r.current_batch, r.upgraded_replicas, r.rollout_target_size),
            (0, 0, -1)
        );
        assert_eq!(R::RolloutDeleting.as_str(), "RolloutDeletingState");
        assert_eq!(
            RolloutEvent::RollingFinalized.as_str(),
            RolloutEvent::AllBatchFinished.as_str()
        );
        assert_eq!(
            RolloutEvent::AllBatchFinished.as_str(),
            "AllBatchFinishedEvent"
        );
    }

    #[test]
    fn a_two_batch_rollout_with_partition_runs_to_success() {
        use RolloutEvent as E;
        let mut s = RolloutStatus::reset();
        for e in [
            E::AppLocated,
            E::RollingSpecVerified,
            E::RollingInitialized,
            E::InitializedOneBatch,
            E::RolloutOneBatch,
            E::OneBatchAvailable,
            E::FinishedOneBatch,
        ] {
            s = step(&s, &e, 0).0;
        }
        // seed 000 with batchPartition 0: batchReady / rollingInBatches, batch 0
        assert_eq!(
            (
                s.rolling_state.as_str(),
                s.batch_state.as_str(),
                s.current_batch
            ),
            ("rollingInBatches", "batchReady", 0)
        );
        assert!(!batch_partition_allows_next(Some(0), s.current_batch));
        for e in [
            E::BatchRolloutApproved,
            E::InitializedOneBatch,
            E::RolloutOneBatch,
            E::OneBatchAvailable,
            E::AllBatchFinished,
            E::RollingFinalized,
        ] {
            s = step(&s, &e, 0).0;
        }
        assert_eq!(
            (
                s.rolling_state.as_str(),
                s.batch_state.as_str(),
                s.current_batch
            ),
            ("rolloutSucceed", "batchReady", 1)
        );
    }
}

mod argo {
    use rollgit_core::argo::*;
    use rollgit_core::intstr::IntOrString;

    fn steps() -> Vec<CanaryStep> {
        vec![
            CanaryStep::weight(10),
            CanaryStep::pause(Some(IntOrString::str("1h"))),
            CanaryStep::weight(20),
            CanaryStep::pause(None),
        ]
    }
    const READY: ArgoEvent = ArgoEvent::Reconcile {
        at_desired_counts: true,
    };
    const NOT_READY: ArgoEvent = ArgoEvent::Reconcile {
        at_desired_counts: false,
    };

    fn at(i: usize) -> ArgoState {
        ArgoState {
            current_step_index: i,
            ..Default::default()
        }
    }
    fn paused_at(i: usize, start: i64) -> ArgoState {
        ArgoState {
            current_step_index: i,
            pause_conditions: vec![PauseCondition {
                reason: PauseReason::CanaryPauseStep,
                start_time: start,
            }],
            controller_pause: true,
            ..Default::default()
        }
    }

    #[test]
    fn transitions() {
        struct Case {
            name: &'static str,
            from: ArgoState,
            event: ArgoEvent,
            now: i64,
            index: usize,
            paused: bool,
        }
        #[rustfmt::skip]
        let cases = [
            Case { name: "setWeight completes at the desired counts", from: at(0), event: READY, now: 0, index: 1, paused: false },
            Case { name: "setWeight waits for the counts", from: at(0), event: NOT_READY, now: 0, index: 0, paused: false },
            Case { name: "spec.paused blocks completion", from: ArgoState { spec_paused: true, ..at(0) }, event: READY, now: 0, index: 0, paused: false },
            Case { name: "entering a pause adds the condition", from: at(1), event: READY, now: 100, index: 1, paused: true },
            Case { name: "timed pause not expired", from: paused_at(1, 100), event: READY, now: 3700, index: 1, paused: true },
            Case { name: "timed pause expires strictly after start+duration", from: paused_at(1, 100), event: READY, now: 3701, index: 2, paused: false },
            Case { name: "manual pause waits", from: paused_at(3, 0), event: READY, now: 1_000_000, index: 3, paused: true },
            Case { name: "promote clears the pause condition", from: paused_at(3, 0), event: ArgoEvent::Promote(PromoteMode::Plain), now: 5, index: 3, paused: false },
            Case { name: "promote without pause advances one step", from: at(0), event: ArgoEvent::Promote(PromoteMode::Plain), now: 5, index: 1, paused: false },
            Case { name: "promote at the end is capped", from: at(4), event: ArgoEvent::Promote(PromoteMode::Plain), now: 5, index: 4, paused: false },
            Case { name: "promote an inconclusive pause also advances", from: ArgoState { pause_conditions: vec![PauseCondition { reason: PauseReason::InconclusiveAnalysisRun, start_time: 0 }], ..at(2) }, event: ArgoEvent::Promote(PromoteMode::Plain), now: 5, index: 3, paused: false },
            Case { name: "skip-current-step", from: paused_at(1, 0), event: ArgoEvent::Promote(PromoteMode::SkipCurrentStep), now: 5, index: 2, paused: false },
            Case { name: "skip-all-steps", from: at(1), event: ArgoEvent::Promote(PromoteMode::SkipAllSteps), now: 5, index: 4, paused: false },
            Case { name: "abort resets the index to 0", from: paused_at(3, 0), event: ArgoEvent::Abort { stable_is_current: false }, now: 5, index: 0, paused: false },
            Case { name: "abort onto the stable hash skips the steps", from: at(2), event: ArgoEvent::Abort { stable_is_current: true }, now: 5, index: 4, paused: false },
            Case { name: "spec change resets", from: paused_at(3, 0), event: ArgoEvent::SpecChanged, now: 5, index: 0, paused: false },
        ];
        for c in cases {
            let (s, _) = step(&steps(), &c.from, c.event, c.now);
            assert_eq!(s.current_step_index, c.index, "{}", c.name);
            assert_eq!(!s.pause_conditions.is_empty(), c.paused, "{}", c.name);
        }
    }

    #[test]
    fn promote_after_clearing_completes_the_manual_pause() {
        let (s, _) = step(
            &steps(),
            &paused_at(3, 0),
            ArgoEvent::Promote(PromoteMode::Plain),
            5,
        );
        let (s, a) = step(&steps(), &s, READY, 6);
        assert_eq!(s.current_step_index, 4);
        assert!(a.contains(&ArgoAction::Completed));
    }

    #[test]
    fn timed_pause_requeues_at_expiry() {
        let (_, a) = step(&steps(), &paused_at(1, 100), READY, 200);
        assert_eq!(a, vec![ArgoAction::RequeueAt(3701)]);
    }

    #[test]
    fn promote_full_goes_to_100_and_aborted_to_0() {
        let (s, _) = step(&steps(), &at(0), ArgoEvent::Promote(PromoteMode::Full), 0);
        assert!(s.promote_full);
        let (_, a) = step(&steps(), &s, NOT_READY, 0);
        assert_eq!(a, vec![ArgoAction::SetWeight(100)]);
        let (s, _) = step(
            &steps(),
            &at(2),
            ArgoEvent::Abort {
                stable_is_current: false,
            },
            0,
        );
        let (s2, a) = step(&steps(), &s, READY, 0);
        assert_eq!(
            (a, s2.current_step_index),
            (vec![ArgoAction::SetWeight(0)], 0)
        );
    }

    #[test]
    fn same_inputs_same_outputs() {
        let a = step(&steps(), &paused_at(1, 100), READY, 5000);
        let b = step(&steps(), &paused_at(1, 100), READY, 5000);
        assert_eq!(a, b);
    }
}

mod kruise {
    use rollgit_core::intstr::IntOrString;
    use rollgit_core::kruise::*;

    fn ctx(style: RollingStyle) -> StepContext {
        StepContext {
            replicas: 10,
            style,
            steps: vec![
                KruiseStep {
                    replicas: Some(IntOrString::Int(1)),
                    traffic: Some("10%".into()),
                    ..Default::default()
                },
                KruiseStep {
                    replicas: Some(IntOrString::str("50%")),
                    pause_duration: Some(60),
                    ..Default::default()
                },
                KruiseStep {
                    replicas: Some(IntOrString::str("100%")),
                    pause_duration: Some(60),
                    ..Default::default()
                },
            ],
        }
    }
    fn at(step: i64, state: StepState, t: i64) -> CanaryStatus {
        CanaryStatus {
            current_step_index: step,
            next_step_index: if step >= 3 { -1 } else { step + 1 },
            state,
            last_update_time: t,
        }
    }
    const GO: KruiseEvent = KruiseEvent::Reconcile {
        batch_ready: true,
        traffic_done: true,
    };
    const WAIT: KruiseEvent = KruiseEvent::Reconcile {
        batch_ready: false,
        traffic_done: false,
    };

    #[test]
    fn transitions() {
        use StepState::*;
        struct Case {
            name: &'static str,
            style: RollingStyle,
            from: CanaryStatus,
            event: KruiseEvent,
            now: i64,
            to: (i64, StepState),
        }
        let p = RollingStyle::Partition;
        #[rustfmt::skip]
        let cases = [
            Case { name: "before upgrade -> upgrade", style: p, from: at(1, BeforeStepUpgrade, 0), event: GO, now: 0, to: (1, StepUpgrade) },
            Case { name: "upgrade waits for the BatchRelease", style: p, from: at(1, StepUpgrade, 0), event: WAIT, now: 0, to: (1, StepUpgrade) },
            Case { name: "upgrade -> traffic routing", style: p, from: at(1, StepUpgrade, 0), event: GO, now: 0, to: (1, StepTrafficRouting) },
            Case { name: "partition step with replicas >= R skips traffic", style: p, from: at(3, StepUpgrade, 0), event: GO, now: 0, to: (3, StepMetricsAnalysis) },
            Case { name: "canary style step with replicas >= R routes traffic", style: RollingStyle::Canary, from: at(3, StepUpgrade, 0), event: GO, now: 0, to: (3, StepTrafficRouting) },
            Case { name: "traffic routing waits for the router", style: p, from: at(1, StepTrafficRouting, 0), event: WAIT, now: 0, to: (1, StepTrafficRouting) },
            Case { name: "no traffic in the step: routing done", style: p, from: at(2, StepTrafficRouting, 0), event: WAIT, now: 0, to: (2, StepMetricsAnalysis) },
            Case { name: "metrics analysis is a no-op", style: p, from: at(1, StepMetricsAnalysis, 0), event: WAIT, now: 0, to: (1, StepPaused) },
            Case { name: "nil duration waits for approval", style: p, from: at(1, StepPaused, 0), event: GO, now: 99_999, to: (1, StepPaused) },
            Case { name: "duration not elapsed", style: p, from: at(2, StepPaused, 100), event: GO, now: 159, to: (2, StepPaused) },
            Case { name: "duration elapsed", style: p, from: at(2, StepPaused, 100), event: GO, now: 160, to: (2, StepReady) },
            Case { name: "last step at exactly 100% skips its pause", style: p, from: at(3, StepPaused, 100), event: GO, now: 100, to: (3, StepReady) },
            Case { name: "ready -> next step", style: p, from: at(1, StepReady, 0), event: WAIT, now: 0, to: (2, BeforeStepUpgrade) },
            Case { name: "ready at the last step -> completed", style: p, from: at(3, StepReady, 0), event: WAIT, now: 0, to: (3, Completed) },
            Case { name: "approve StepPaused -> StepReady", style: p, from: at(1, StepPaused, 0), event: KruiseEvent::Approve, now: 0, to: (1, StepReady) },
            Case { name: "jump to step 3 with fewer pods updated", style: p, from: at(1, StepPaused, 0), event: KruiseEvent::Jump { next_step_index: 3, updated_replicas: 1 }, now: 0, to: (3, BeforeStepUpgrade) },
            Case { name: "jump back to step 1 whose pods are updated", style: p, from: at(2, StepPaused, 0), event: KruiseEvent::Jump { next_step_index: 1, updated_replicas: 1 }, now: 0, to: (1, StepTrafficRouting) },
            Case { name: "jump to the natural next step is no jump", style: p, from: at(1, StepPaused, 0), event: KruiseEvent::Jump { next_step_index: 2, updated_replicas: 1 }, now: 0, to: (1, StepPaused) },
        ];
        for c in cases {
            let (s, _) = step(&ctx(c.style), &c.from, c.event, c.now)
                .unwrap_or_else(|e| panic!("{}: {e}", c.name));
            assert_eq!((s.current_step_index, s.state), c.to, "{}", c.name);
        }
    }

    #[test]
    fn approve_only_from_step_paused() {
        for st in [
            StepState::BeforeStepUpgrade,
            StepState::StepUpgrade,
            StepState::StepReady,
            StepState::Completed,
        ] {
            let err = step(
                &ctx(RollingStyle::Partition),
                &at(1, st, 0),
                KruiseEvent::Approve,
                0,
            )
            .expect_err("not paused");
            assert_eq!(err, KruiseError::NotPaused(st.as_str()));
        }
    }

    #[test]
    fn jumps_out_of_range_are_rejected() {
        for idx in [0, 4, -1] {
            let r = step(
                &ctx(RollingStyle::Partition),
                &at(1, StepState::StepPaused, 0),
                KruiseEvent::Jump {
                    next_step_index: idx,
                    updated_replicas: 0,
                },
                0,
            );
            assert!(
                matches!(r, Err(KruiseError::JumpOutOfRange { .. })),
                "{idx}: {r:?}"
            );
        }
    }

    #[test]
    fn indexes_are_one_based_and_next_is_minus_one_at_the_end() {
        let s = CanaryStatus::start(3, 0);
        assert_eq!((s.current_step_index, s.next_step_index), (1, 2));
        let (s, _) = step(
            &ctx(RollingStyle::Partition),
            &at(2, StepState::StepReady, 0),
            WAIT,
            0,
        )
        .expect("ok");
        assert_eq!((s.current_step_index, s.next_step_index), (3, -1));
    }

    #[test]
    fn upgrade_writes_batch_partition_step_minus_one() {
        let (_, a) = step(
            &ctx(RollingStyle::Partition),
            &at(2, StepState::StepUpgrade, 0),
            WAIT,
            0,
        )
        .expect("ok");
        assert_eq!(a, vec![KruiseAction::UpgradeBatch { batch_partition: 1 }]);
        let (_, a) = step(
            &ctx(RollingStyle::Partition),
            &at(1, StepState::BeforeStepUpgrade, 0),
            WAIT,
            0,
        )
        .expect("ok");
        assert_eq!(a, vec![KruiseAction::PatchStableServiceSelector]);
        let (_, a) = step(
            &ctx(RollingStyle::Partition),
            &at(2, StepState::StepPaused, 100),
            GO,
            110,
        )
        .expect("ok");
        assert_eq!(a, vec![KruiseAction::RequeueAt(160)]);
    }
}
