//! A workflow run ↔ the app status object's `status.workflow` (KubeVela's layout: `steps` with
//! `phase`, `message`, `firstExecuteTime`, `lastExecuteTime`; `suspend`, `terminated`,
//! `finished`), so that a restarted daemon resumes the run where it was.

use super::WorkflowRun;
use crate::k8s::crds::{Phase, WorkflowStatus, WorkflowStepStatus};
use rollgit_core::workflow::{RunState, StepPhase, StepState, WorkflowPhase, phase};

/// RFC 3339 of unix seconds.
pub fn time(secs: i64) -> String {
    k8s_openapi::jiff::Timestamp::from_second(secs)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// Unix seconds of an RFC 3339 time (`None` when it does not parse).
pub fn secs(text: &str) -> Option<i64> {
    text.parse::<k8s_openapi::jiff::Timestamp>()
        .ok()
        .map(|t| t.as_second())
}

fn step_phase(text: &str) -> Option<StepPhase> {
    Some(match text {
        "pending" => StepPhase::Pending,
        "running" => StepPhase::Running,
        "suspending" => StepPhase::Suspending,
        "succeeded" => StepPhase::Succeeded,
        "failed" => StepPhase::Failed,
        "skipped" => StepPhase::Skipped,
        _ => return None,
    })
}

/// The status of a run.
pub fn status_of(run: &WorkflowRun) -> WorkflowStatus {
    let s = &run.state;
    let steps = run.plan.core_steps();
    let wf_phase = phase(s);
    let message = s
        .steps
        .iter()
        .find(|x| !matches!(x.phase, StepPhase::Succeeded | StepPhase::Skipped))
        .map(|x| x.message.clone())
        .unwrap_or_default();
    WorkflowStatus {
        publish_version: s.key.clone(),
        commit: run.commit.clone(),
        content_hash: run.plan.content_hash.clone(),
        mode: "StepByStep".into(),
        suspend: wf_phase == WorkflowPhase::Suspending,
        held: s.suspended,
        terminated: s.terminated,
        finished: wf_phase == WorkflowPhase::Succeeded,
        message,
        start_time: Some(time(s.started_at)),
        end_time: s.finished_at.map(time),
        steps: s
            .steps
            .iter()
            .zip(&run.plan.steps)
            .zip(&steps)
            .map(|((st, spec), core)| WorkflowStepStatus {
                name: st.name.clone(),
                type_: core.type_name().into(),
                phase: st.phase.as_str().into(),
                message: st.message.clone(),
                first_execute_time: st.started_at.map(time),
                last_execute_time: st.finished_at.map(time),
                resume_time: st.resume_at.map(time),
                approved: st.approved,
                clusters: spec.targets.iter().map(|t| t.cluster.clone()).collect(),
            })
            .collect(),
        last_request: run.last_request.clone(),
        last_request_error: run.last_request_error.clone(),
        last_command: run.last_command.clone(),
    }
}

/// The run state a status records. Unknown phases are an error naming them.
pub fn state_of(ws: &WorkflowStatus) -> Result<RunState, String> {
    let mut steps = Vec::new();
    for st in &ws.steps {
        let phase = step_phase(&st.phase).ok_or_else(|| {
            format!(
                "status.workflow.steps: step {:?} has an unknown phase {:?}",
                st.name, st.phase
            )
        })?;
        steps.push(StepState {
            name: st.name.clone(),
            phase,
            message: st.message.clone(),
            started_at: st.first_execute_time.as_deref().and_then(secs),
            finished_at: st.last_execute_time.as_deref().and_then(secs),
            resume_at: st.resume_time.as_deref().and_then(secs),
            approved: st.approved,
        });
    }
    Ok(RunState {
        key: ws.publish_version.clone(),
        steps,
        suspended: ws.held,
        terminated: ws.terminated,
        started_at: ws.start_time.as_deref().and_then(secs).unwrap_or(0),
        finished_at: ws.end_time.as_deref().and_then(secs),
    })
}

/// The app's phase for a run.
pub fn app_phase(state: &RunState) -> Phase {
    match phase(state) {
        WorkflowPhase::Running => Phase::RunningWorkflow,
        WorkflowPhase::Suspending => Phase::WorkflowSuspending,
        WorkflowPhase::Succeeded => Phase::Running,
        WorkflowPhase::Failed => Phase::WorkflowFailed,
        WorkflowPhase::Terminated => Phase::WorkflowTerminated,
    }
}
