//! The workflow state machine (ROLLOUT-SEMANTICS.md C.5, seed 003), one named case per row.

use rollgit_core::workflow::{
    Command, CommandError, Observed, RunState, Step, StepKind, StepPhase as P, TargetResult as T,
    WorkflowPhase as W, approval_message, command, duration_secs, phase, reconcile, start,
};

fn deploy(name: &str, auto: bool, targets: &[&str]) -> Step {
    Step {
        name: name.into(),
        kind: StepKind::Deploy {
            auto,
            targets: targets.iter().map(|t| t.to_string()).collect(),
        },
    }
}

fn suspend(name: &str, secs: Option<i64>) -> Step {
    Step {
        name: name.into(),
        kind: StepKind::Suspend {
            duration_secs: secs,
            message: Some("wait for it".into()),
        },
    }
}

/// Seed 003: deploy-test (auto) then deploy-prod (auto: false).
fn seed003() -> Vec<Step> {
    vec![
        deploy("deploy-test", true, &["test"]),
        deploy("deploy-prod", false, &["prod"]),
    ]
}

fn obs(step: usize, targets: &[(&str, T)]) -> Observed {
    Observed {
        step: Some(step),
        targets: targets
            .iter()
            .map(|(c, r)| (c.to_string(), r.clone()))
            .collect(),
    }
}

fn phases(s: &RunState) -> Vec<P> {
    s.steps.iter().map(|x| x.phase).collect()
}

#[test]
fn reconcile_table() {
    struct Case {
        name: &'static str,
        steps: Vec<Step>,
        /// Step phases before (approved flags set for running auto:false steps).
        before: Vec<P>,
        observed: Observed,
        now: i64,
        after: Vec<P>,
        deploy: Option<(usize, Vec<&'static str>)>,
        workflow: W,
        message: Option<(usize, &'static str)>,
    }
    let none = Observed::default();
    let cases = vec![
        Case {
            name: "a new run deploys the first step to its cluster",
            steps: seed003(),
            before: vec![P::Pending, P::Pending],
            observed: none.clone(),
            now: 100,
            after: vec![P::Running, P::Pending],
            deploy: Some((0, vec!["test"])),
            workflow: W::Running,
            message: None,
        },
        Case {
            name: "the first step stays running while its cluster is not healthy",
            steps: seed003(),
            before: vec![P::Running, P::Pending],
            observed: obs(
                0,
                &[("test", T::Progressing("Deployment demo: 0/1 ready".into()))],
            ),
            now: 101,
            after: vec![P::Running, P::Pending],
            deploy: Some((0, vec!["test"])),
            workflow: W::Running,
            message: Some((0, "cluster test: Deployment demo: 0/1 ready")),
        },
        Case {
            name: "healthy on test: the auto:false step suspends BEFORE deploying to prod",
            steps: seed003(),
            before: vec![P::Running, P::Pending],
            observed: obs(0, &[("test", T::Healthy)]),
            now: 102,
            after: vec![P::Succeeded, P::Suspending],
            deploy: None,
            workflow: W::Suspending,
            message: Some((1, "Waiting approval to the deploy step \"deploy-prod\"")),
        },
        Case {
            name: "a suspending approval step deploys nothing on later passes",
            steps: seed003(),
            before: vec![P::Succeeded, P::Suspending],
            observed: none.clone(),
            now: 500,
            after: vec![P::Succeeded, P::Suspending],
            deploy: None,
            workflow: W::Suspending,
            message: None,
        },
        Case {
            name: "an approved (resumed) step deploys to prod",
            steps: seed003(),
            before: vec![P::Succeeded, P::Running],
            observed: none.clone(),
            now: 600,
            after: vec![P::Succeeded, P::Running],
            deploy: Some((1, vec!["prod"])),
            workflow: W::Running,
            message: None,
        },
        Case {
            name: "prod healthy: every step succeeded, the app is running",
            steps: seed003(),
            before: vec![P::Succeeded, P::Running],
            observed: obs(1, &[("prod", T::Healthy)]),
            now: 601,
            after: vec![P::Succeeded, P::Succeeded],
            deploy: None,
            workflow: W::Succeeded,
            message: None,
        },
        Case {
            name: "an unreachable cluster fails its step with the error, deployed again",
            steps: vec![deploy("everywhere", true, &["a", "b"])],
            before: vec![P::Running],
            observed: obs(
                0,
                &[
                    ("a", T::Healthy),
                    ("b", T::Failed("connection refused".into())),
                ],
            ),
            now: 10,
            after: vec![P::Failed],
            deploy: Some((0, vec!["a", "b"])),
            workflow: W::Failed,
            message: Some((0, "cluster b: connection refused")),
        },
        Case {
            name: "a failed step whose cluster came back succeeds",
            steps: vec![deploy("everywhere", true, &["a", "b"])],
            before: vec![P::Failed],
            observed: obs(0, &[("a", T::Healthy), ("b", T::Healthy)]),
            now: 20,
            after: vec![P::Succeeded],
            deploy: None,
            workflow: W::Succeeded,
            message: None,
        },
        Case {
            name: "a failed step is not set running again before the shell delivers",
            steps: vec![deploy("everywhere", true, &["a"])],
            before: vec![P::Failed],
            observed: none.clone(),
            now: 20,
            after: vec![P::Failed],
            deploy: Some((0, vec!["a"])),
            workflow: W::Failed,
            message: None,
        },
        Case {
            name: "observations of another step are not this step's",
            steps: seed003(),
            before: vec![P::Succeeded, P::Running],
            observed: obs(0, &[("test", T::Healthy)]),
            now: 30,
            after: vec![P::Succeeded, P::Running],
            deploy: Some((1, vec!["prod"])),
            workflow: W::Running,
            message: None,
        },
        Case {
            name: "a timed suspend step waits for its time",
            steps: vec![suspend("pause", Some(60)), deploy("d", true, &["a"])],
            before: vec![P::Pending, P::Pending],
            observed: none.clone(),
            now: 1000,
            after: vec![P::Suspending, P::Pending],
            deploy: None,
            workflow: W::Suspending,
            message: Some((0, "wait for it")),
        },
        Case {
            name: "a suspend step without a duration waits for a resume",
            steps: vec![suspend("pause", None), deploy("d", true, &["a"])],
            before: vec![P::Pending, P::Pending],
            observed: none.clone(),
            now: 1000,
            after: vec![P::Suspending, P::Pending],
            deploy: None,
            workflow: W::Suspending,
            message: None,
        },
        Case {
            name: "a resumed suspend step succeeds and the next step deploys",
            steps: vec![suspend("pause", None), deploy("d", true, &["a"])],
            before: vec![P::Running, P::Pending],
            observed: none.clone(),
            now: 1001,
            after: vec![P::Succeeded, P::Running],
            deploy: Some((1, vec!["a"])),
            workflow: W::Running,
            message: None,
        },
        Case {
            name: "an empty deploy target list succeeds at once",
            steps: vec![deploy("nothing", true, &[])],
            before: vec![P::Pending],
            observed: obs(0, &[]),
            now: 1,
            after: vec![P::Succeeded],
            deploy: None,
            workflow: W::Succeeded,
            message: None,
        },
    ];
    for c in cases {
        let mut state = start("v1", &c.steps, 0);
        for (st, p) in state.steps.iter_mut().zip(&c.before) {
            st.phase = *p;
            st.approved = *p == P::Running;
        }
        let d = reconcile(&c.steps, &state, &c.observed, c.now);
        assert_eq!(phases(&d.state), c.after, "{}", c.name);
        let want = c
            .deploy
            .map(|(i, t)| (i, t.iter().map(|s| s.to_string()).collect::<Vec<_>>()));
        assert_eq!(d.deploy, want, "{}", c.name);
        assert_eq!(phase(&d.state), c.workflow, "{}", c.name);
        if let Some((i, m)) = c.message {
            assert_eq!(d.state.steps[i].message, m, "{}", c.name);
        }
    }
}

#[test]
fn seed_003_plays_out_through_resume() {
    let steps = seed003();
    let s = start("version1", &steps, 0);
    let d = reconcile(&steps, &s, &Observed::default(), 1);
    assert_eq!(d.deploy, Some((0, vec!["test".to_string()])));
    let d = reconcile(&steps, &d.state, &obs(0, &[("test", T::Healthy)]), 2);
    assert_eq!(phase(&d.state), W::Suspending);
    assert_eq!(W::Suspending.app_phase(), "workflowSuspending");
    assert_eq!(d.state.steps[1].message, approval_message("deploy-prod"));
    assert_eq!(d.state.steps[0].finished_at, Some(2));
    assert_eq!(d.deploy, None, "prod gets nothing before the approval");
    let resumed = command(&steps, &d.state, &Command::Resume { step: None }, 10).expect("resumes");
    assert_eq!(resumed.steps[1].phase, P::Running);
    let d = reconcile(&steps, &resumed, &Observed::default(), 11);
    assert_eq!(d.deploy, Some((1, vec!["prod".to_string()])));
    let d = reconcile(&steps, &d.state, &obs(1, &[("prod", T::Healthy)]), 12);
    assert_eq!(phase(&d.state), W::Succeeded);
    assert_eq!(W::Succeeded.app_phase(), "running");
    assert_eq!(d.state.finished_at, Some(12));
    // The same inputs give the same state: no churn.
    let again = reconcile(&steps, &d.state, &Observed::default(), 99);
    assert_eq!(again.state, d.state);
    assert_eq!(again.deploy, None);
}

#[test]
fn a_timed_suspend_resumes_by_itself_when_its_time_comes() {
    let steps = vec![suspend("pause", Some(30)), deploy("d", true, &["a"])];
    let d = reconcile(&steps, &start("k", &steps, 0), &Observed::default(), 100);
    assert_eq!(d.wake_at, Some(130));
    assert_eq!(d.state.steps[0].resume_at, Some(130));
    let early = reconcile(&steps, &d.state, &Observed::default(), 129);
    assert_eq!(early.state.steps[0].phase, P::Suspending);
    assert_eq!(early.wake_at, Some(130));
    let due = reconcile(&steps, &d.state, &Observed::default(), 130);
    assert_eq!(due.state.steps[0].phase, P::Succeeded);
    assert_eq!(due.deploy, Some((1, vec!["a".to_string()])));
    assert_eq!(due.wake_at, None);
}

#[test]
fn command_table() {
    let steps = seed003();
    let waiting = {
        let d = reconcile(&steps, &start("v", &steps, 0), &Observed::default(), 1);
        reconcile(&steps, &d.state, &obs(0, &[("test", T::Healthy)]), 2).state
    };
    let running = reconcile(&steps, &start("v", &steps, 0), &Observed::default(), 1).state;
    let terminated = command(&steps, &waiting, &Command::Terminate, 3).expect("terminates");
    let done = {
        let r = command(&steps, &waiting, &Command::Resume { step: None }, 3).expect("resumes");
        reconcile(&steps, &r, &obs(1, &[("prod", T::Healthy)]), 4).state
    };
    struct Case {
        name: &'static str,
        from: RunState,
        cmd: Command,
        want: Result<(Vec<P>, W), CommandError>,
    }
    let cases = vec![
        Case {
            name: "resume approves the waiting deploy step",
            from: waiting.clone(),
            cmd: Command::Resume { step: None },
            want: Ok((vec![P::Succeeded, P::Running], W::Running)),
        },
        Case {
            name: "resume --step names the waiting step",
            from: waiting.clone(),
            cmd: Command::Resume {
                step: Some("deploy-prod".into()),
            },
            want: Ok((vec![P::Succeeded, P::Running], W::Running)),
        },
        Case {
            name: "resume --step of an unknown step is refused",
            from: waiting.clone(),
            cmd: Command::Resume {
                step: Some("deploy-staging".into()),
            },
            want: Err(CommandError::NoSuchStep(
                "deploy-staging".into(),
                "deploy-test, deploy-prod".into(),
            )),
        },
        Case {
            name: "resume --step of a step that is not suspending is refused",
            from: waiting.clone(),
            cmd: Command::Resume {
                step: Some("deploy-test".into()),
            },
            want: Err(CommandError::NotSuspending(
                "deploy-test".into(),
                "succeeded",
            )),
        },
        Case {
            name: "resume of a terminated workflow is refused, as vela does",
            from: terminated.clone(),
            cmd: Command::Resume { step: None },
            want: Err(CommandError::Terminated),
        },
        Case {
            name: "resume with nothing suspended is refused",
            from: running.clone(),
            cmd: Command::Resume { step: None },
            want: Err(CommandError::NotSuspended),
        },
        Case {
            name: "resume of a finished workflow is refused",
            from: done.clone(),
            cmd: Command::Resume { step: None },
            want: Err(CommandError::Finished),
        },
        Case {
            name: "suspend holds a running step",
            from: running.clone(),
            cmd: Command::Suspend,
            want: Ok((vec![P::Suspending, P::Pending], W::Suspending)),
        },
        Case {
            name: "terminate fails the suspending step and skips the pending ones",
            from: running.clone(),
            cmd: Command::Terminate,
            want: Ok((vec![P::Failed, P::Skipped], W::Terminated)),
        },
        Case {
            name: "terminate while waiting for approval",
            from: waiting.clone(),
            cmd: Command::Terminate,
            want: Ok((vec![P::Succeeded, P::Failed], W::Terminated)),
        },
        Case {
            name: "restart runs the workflow again from the first step",
            from: terminated.clone(),
            cmd: Command::Restart,
            want: Ok((vec![P::Pending, P::Pending], W::Running)),
        },
        Case {
            name: "restart of a finished workflow",
            from: done.clone(),
            cmd: Command::Restart,
            want: Ok((vec![P::Pending, P::Pending], W::Running)),
        },
    ];
    for c in cases {
        let got = command(&steps, &c.from, &c.cmd, 50).map(|s| (phases(&s), phase(&s)));
        assert_eq!(got, c.want, "{}", c.name);
    }
}

#[test]
fn a_suspended_workflow_deploys_nothing_until_resumed() {
    let steps = seed003();
    let running = reconcile(&steps, &start("v", &steps, 0), &Observed::default(), 1).state;
    let held = command(&steps, &running, &Command::Suspend, 2).expect("suspends");
    let d = reconcile(&steps, &held, &obs(0, &[("test", T::Healthy)]), 3);
    assert_eq!(d.deploy, None);
    assert_eq!(phase(&d.state), W::Suspending);
    let resumed = command(&steps, &held, &Command::Resume { step: None }, 4).expect("resumes");
    let d = reconcile(&steps, &resumed, &obs(0, &[("test", T::Healthy)]), 5);
    assert_eq!(phases(&d.state), vec![P::Succeeded, P::Suspending]);
}

#[test]
fn a_state_recorded_for_other_steps_is_matched_by_name() {
    let steps = seed003();
    let mut recorded = start("v", &steps[..1], 0);
    recorded.steps[0].phase = P::Succeeded;
    let d = reconcile(&steps, &recorded, &Observed::default(), 5);
    assert_eq!(phases(&d.state), vec![P::Succeeded, P::Suspending]);
}

#[test]
fn durations_round_up_to_whole_seconds() {
    for (nanos, secs) in [
        (0, 0),
        (1, 1),
        (500_000_000, 1),
        (1_000_000_000, 1),
        (1_500_000_000, 2),
        (3_600_000_000_000, 3600),
    ] {
        assert_eq!(duration_secs(nanos), secs, "{nanos}ns");
    }
}
