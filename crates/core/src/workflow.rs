//! The KubeVela workflow state machine (StepByStep mode) for multi-cluster delivery
//! (ROLLOUT-SEMANTICS.md C.5, seed 003): `deploy` and `suspend` steps run in order, the
//! commands `resume`, `suspend`, `terminate` and `restart` act on the recorded state, and
//! [`reconcile`] decides the next state and what to deploy where.
//!
//! Pure: `now` is an argument (unix seconds), and the same inputs always give the same state
//! (no timestamp churn: times are set only when a step changes phase).
//!
//! * A `deploy` step with `auto: false` first **suspends** with the message
//!   `Waiting approval to the deploy step "<name>"`; `resume` approves it and it deploys.
//! * A running `deploy` step asks the shell to deliver to all its targets
//!   ([`Decision::deploy`]); it succeeds once every target reports [`TargetResult::Healthy`],
//!   fails with the targets' errors while any target fails (the shell retries it with backoff:
//!   a failed deploy step is deployed again on every pass, and succeeds once the targets do),
//!   and stays running while a target is still progressing.
//! * A `suspend` step suspends until `resume`, or until its duration has passed (whole seconds,
//!   rounded up), when it succeeds by itself; [`Decision::wake_at`] says when to look again.
//! * `suspend` (the command) holds the workflow (running steps become suspending) until
//!   `resume`; `terminate` ends it (steps not finished fail with `terminated`), and `resume` then
//!   refuses, as `vela workflow resume` does; `restart` runs it again from the first step.

use serde::{Deserialize, Serialize};

/// What a step does, its targets resolved to cluster names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepKind {
    /// Deliver the app to these clusters.
    Deploy {
        /// `false`: wait for approval (a resume) before deploying.
        auto: bool,
        /// The clusters.
        targets: Vec<String>,
    },
    /// Wait for a resume, or `duration_secs`.
    Suspend {
        /// Seconds to wait before resuming by itself (`None`: wait for a resume).
        duration_secs: Option<i64>,
        /// The message shown while suspended.
        message: Option<String>,
    },
}

/// One step of a workflow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// The step's name (unique in the workflow).
    pub name: String,
    /// What it does.
    pub kind: StepKind,
}

impl Step {
    /// `deploy` or `suspend`.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            StepKind::Deploy { .. } => "deploy",
            StepKind::Suspend { .. } => "suspend",
        }
    }
}

/// A step's phase, as KubeVela names them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepPhase {
    /// Not started.
    #[default]
    Pending,
    /// Deploying, or resumed.
    Running,
    /// Waiting for a resume (approval, a suspend step, or a suspended workflow) or a duration.
    Suspending,
    /// Done.
    Succeeded,
    /// Failed (a deploy step is tried again), or terminated.
    Failed,
    /// Not run.
    Skipped,
}

impl StepPhase {
    /// The phase's text (`succeeded`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Suspending => "suspending",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
        }
    }

    fn done(self) -> bool {
        matches!(self, Self::Succeeded | Self::Skipped)
    }
}

/// The recorded state of one step.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StepState {
    /// The step's name.
    pub name: String,
    /// Its phase.
    pub phase: StepPhase,
    /// Why it is in that phase (empty when there is nothing to say).
    pub message: String,
    /// When it started (unix seconds).
    pub started_at: Option<i64>,
    /// When it ended.
    pub finished_at: Option<i64>,
    /// When a suspend step resumes by itself.
    pub resume_at: Option<i64>,
    /// A deploy step with `auto: false` was approved.
    pub approved: bool,
}

/// The recorded state of one run of a workflow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunState {
    /// What the run delivers (the publishVersion): a new key is a new run.
    pub key: String,
    /// One per step, in order.
    pub steps: Vec<StepState>,
    /// Held by the `suspend` command.
    pub suspended: bool,
    /// Ended by the `terminate` command.
    pub terminated: bool,
    /// When the run started.
    pub started_at: i64,
    /// When its last step succeeded.
    pub finished_at: Option<i64>,
}

/// The workflow's phase, which gives the app's phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkflowPhase {
    /// Steps are running (`runningWorkflow`).
    Running,
    /// Waiting for a resume or a duration (`workflowSuspending`).
    Suspending,
    /// Every step succeeded (`running`).
    Succeeded,
    /// A step failed (`workflowFailed`).
    Failed,
    /// Terminated (`workflowTerminated`).
    Terminated,
}

impl WorkflowPhase {
    /// The app phase KubeVela shows for it.
    pub fn app_phase(self) -> &'static str {
        match self {
            Self::Running => "runningWorkflow",
            Self::Suspending => "workflowSuspending",
            Self::Succeeded => "running",
            Self::Failed => "workflowFailed",
            Self::Terminated => "workflowTerminated",
        }
    }
}

/// What a target of the current deploy step reports after the shell delivered to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetResult {
    /// Applied, every object healthy.
    Healthy,
    /// Applied, not healthy yet (why).
    Progressing(String),
    /// Could not be applied (the error).
    Failed(String),
}

/// What the shell observed for one deploy step, by cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Observed {
    /// The step observed (index).
    pub step: Option<usize>,
    /// Each target's result.
    pub targets: Vec<(String, TargetResult)>,
}

/// The result of [`reconcile`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The next state.
    pub state: RunState,
    /// Deliver step `.0` to the clusters `.1` (then observe and call [`reconcile`] again).
    pub deploy: Option<(usize, Vec<String>)>,
    /// Look again at this time (a suspend step's duration).
    pub wake_at: Option<i64>,
}

/// A workflow command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Resume suspending steps (all, or the one named), approving a deploy step waiting for
    /// approval, and lift a `suspend`.
    Resume {
        /// Only this step.
        step: Option<String>,
    },
    /// Hold the workflow.
    Suspend,
    /// End the workflow.
    Terminate,
    /// Run it again from the first step.
    Restart,
}

/// Why a command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The workflow was terminated.
    #[error("the workflow is terminated: restart it instead")]
    Terminated,
    /// `--step` names no step.
    #[error("no step named {0:?} in the workflow (steps: {1})")]
    NoSuchStep(String, String),
    /// `--step` names a step that is not suspending.
    #[error("step {0:?} is {1}, not suspending")]
    NotSuspending(String, &'static str),
    /// The workflow has finished.
    #[error("the workflow has finished")]
    Finished,
    /// Nothing was suspended.
    #[error("the workflow is not suspended")]
    NotSuspended,
}

/// The message of a deploy step waiting for approval, as KubeVela writes it.
pub fn approval_message(step: &str) -> String {
    format!("Waiting approval to the deploy step \"{step}\"")
}

/// A new run of `steps` keyed `key`, started at `now`.
pub fn start(key: &str, steps: &[Step], now: i64) -> RunState {
    RunState {
        key: key.to_owned(),
        steps: steps
            .iter()
            .map(|s| StepState {
                name: s.name.clone(),
                ..StepState::default()
            })
            .collect(),
        suspended: false,
        terminated: false,
        started_at: now,
        finished_at: None,
    }
}

/// The workflow's phase in `state`.
pub fn phase(state: &RunState) -> WorkflowPhase {
    if state.terminated {
        return WorkflowPhase::Terminated;
    }
    if !state.steps.is_empty() && state.steps.iter().all(|s| s.phase.done()) {
        return WorkflowPhase::Succeeded;
    }
    if state.steps.iter().any(|s| s.phase == StepPhase::Failed) {
        return WorkflowPhase::Failed;
    }
    if state.suspended || state.steps.iter().any(|s| s.phase == StepPhase::Suspending) {
        return WorkflowPhase::Suspending;
    }
    WorkflowPhase::Running
}

/// The state aligned with `steps` (a state recorded for other steps, by an older spec or by
/// hand, is matched by step name; missing steps are pending).
fn aligned(steps: &[Step], state: &RunState) -> RunState {
    let mut out = state.clone();
    out.steps = steps
        .iter()
        .map(|s| {
            state
                .steps
                .iter()
                .find(|x| x.name == s.name)
                .cloned()
                .unwrap_or_else(|| StepState {
                    name: s.name.clone(),
                    ..StepState::default()
                })
        })
        .collect();
    out
}

/// Applies a command to the state (at `now`). `who` is recorded in the messages.
pub fn command(
    steps: &[Step],
    state: &RunState,
    cmd: &Command,
    now: i64,
) -> Result<RunState, CommandError> {
    let mut s = aligned(steps, state);
    match cmd {
        Command::Restart => Ok(start(&state.key, steps, now)),
        Command::Terminate => {
            if s.terminated {
                return Ok(s);
            }
            s.terminated = true;
            s.suspended = false;
            for st in &mut s.steps {
                if !matches!(
                    st.phase,
                    StepPhase::Succeeded | StepPhase::Skipped | StepPhase::Failed
                ) {
                    if st.phase != StepPhase::Pending {
                        st.finished_at = Some(now);
                    }
                    st.phase = if st.phase == StepPhase::Pending {
                        StepPhase::Skipped
                    } else {
                        StepPhase::Failed
                    };
                    st.message = "terminated".into();
                }
            }
            Ok(s)
        }
        Command::Suspend => {
            if s.terminated {
                return Err(CommandError::Terminated);
            }
            if phase(&s) == WorkflowPhase::Succeeded {
                return Err(CommandError::Finished);
            }
            s.suspended = true;
            for st in &mut s.steps {
                if st.phase == StepPhase::Running {
                    st.phase = StepPhase::Suspending;
                    st.message = "suspended".into();
                }
            }
            Ok(s)
        }
        Command::Resume { step } => {
            if s.terminated {
                return Err(CommandError::Terminated);
            }
            if let Some(name) = step {
                let Some(i) = s.steps.iter().position(|x| &x.name == name) else {
                    let names: Vec<&str> = steps.iter().map(|x| x.name.as_str()).collect();
                    return Err(CommandError::NoSuchStep(name.clone(), names.join(", ")));
                };
                if s.steps[i].phase != StepPhase::Suspending && !s.suspended {
                    return Err(CommandError::NotSuspending(
                        name.clone(),
                        s.steps[i].phase.as_str(),
                    ));
                }
                resume_step(&mut s.steps[i]);
                s.suspended = false;
                return Ok(s);
            }
            let any = s.suspended || s.steps.iter().any(|x| x.phase == StepPhase::Suspending);
            if !any {
                if phase(&s) == WorkflowPhase::Succeeded {
                    return Err(CommandError::Finished);
                }
                return Err(CommandError::NotSuspended);
            }
            s.suspended = false;
            for st in &mut s.steps {
                if st.phase == StepPhase::Suspending {
                    resume_step(st);
                }
            }
            Ok(s)
        }
    }
}

fn resume_step(st: &mut StepState) {
    st.phase = StepPhase::Running;
    st.approved = true;
    st.message.clear();
}

/// Decides the next state of a run and what to deploy (see the module docs). `observed` are
/// the results of the shell's last delivery of a deploy step (ignored for other steps).
pub fn reconcile(steps: &[Step], state: &RunState, observed: &Observed, now: i64) -> Decision {
    let mut s = aligned(steps, state);
    let mut decision = Decision {
        state: s.clone(),
        deploy: None,
        wake_at: None,
    };
    if s.terminated || s.suspended {
        return decision;
    }
    for (i, step) in steps.iter().enumerate() {
        let st = &mut s.steps[i];
        if st.phase.done() {
            continue;
        }
        match &step.kind {
            StepKind::Deploy { auto, targets } => {
                if st.phase == StepPhase::Pending {
                    st.started_at = Some(now);
                    if !auto && !st.approved {
                        st.phase = StepPhase::Suspending;
                        st.message = approval_message(&step.name);
                        break;
                    }
                    st.phase = StepPhase::Running;
                }
                if st.phase == StepPhase::Suspending {
                    break;
                }
                // Running or Failed: deliver, and judge what the targets report.
                decision.deploy = Some((i, targets.clone()));
                if observed.step != Some(i) {
                    if st.phase != StepPhase::Failed {
                        st.phase = StepPhase::Running;
                    }
                    break;
                }
                let result = |c: &String| {
                    observed
                        .targets
                        .iter()
                        .find(|(n, _)| n == c)
                        .map(|(_, r)| r)
                };
                let failed: Vec<String> = targets
                    .iter()
                    .filter_map(|c| match result(c) {
                        Some(TargetResult::Failed(e)) => Some(format!("cluster {c}: {e}")),
                        _ => None,
                    })
                    .collect();
                if !failed.is_empty() {
                    st.phase = StepPhase::Failed;
                    st.message = failed.join("; ");
                    break;
                }
                let waiting: Vec<String> = targets
                    .iter()
                    .filter_map(|c| match result(c) {
                        Some(TargetResult::Healthy) => None,
                        Some(TargetResult::Progressing(why)) => Some(format!("cluster {c}: {why}")),
                        Some(TargetResult::Failed(_)) | None => {
                            Some(format!("cluster {c}: not delivered yet"))
                        }
                    })
                    .collect();
                if waiting.is_empty() {
                    st.phase = StepPhase::Succeeded;
                    st.message.clear();
                    st.finished_at = Some(now);
                    decision.deploy = None;
                    continue;
                }
                st.phase = StepPhase::Running;
                st.message = waiting.join("; ");
                break;
            }
            StepKind::Suspend {
                duration_secs,
                message,
            } => {
                if st.phase == StepPhase::Pending {
                    st.phase = StepPhase::Suspending;
                    st.started_at = Some(now);
                    st.resume_at = duration_secs.map(|d| now.saturating_add(d));
                    st.message = message.clone().unwrap_or_default();
                }
                if st.phase == StepPhase::Suspending {
                    match st.resume_at {
                        Some(at) if at <= now => {}
                        Some(at) => {
                            decision.wake_at = Some(at);
                            break;
                        }
                        None => break,
                    }
                }
                // Resumed, or its time has come.
                st.phase = StepPhase::Succeeded;
                st.message.clear();
                st.finished_at = Some(now);
            }
        }
    }
    if phase(&s) == WorkflowPhase::Succeeded && s.finished_at.is_none() {
        s.finished_at = Some(now);
    }
    decision.state = s;
    decision
}

/// Seconds of a Go duration in nanoseconds, rounded up (a `500ms` suspend waits a second).
pub fn duration_secs(nanos: i64) -> i64 {
    let n = nanos.max(0);
    n / 1_000_000_000 + i64::from(n % 1_000_000_000 != 0)
}
