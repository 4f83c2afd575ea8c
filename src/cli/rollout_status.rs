//! `rollgit rollout status`: an app's `rollouts.rollgit.dev` Rollouts as per-batch progress.
//!
//! The rendering is pure ([`render_status`], [`verdict`]); the batch goals come from the plan
//! in `rollgit_core` ([`batch::batch_goals`]), never from arithmetic of this module. The I/O
//! shell ([`rollout_status`]) lists the Rollouts once and, with `--watch`, follows a watch on
//! them, redrawing on every change (indicatif bars on a terminal, plain lines otherwise) until
//! each is terminal or the timeout passes.

use super::{KubeArgs, Output};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use kube::api::{Api, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use rollgit::k8s::crds::Checked;
use rollgit::k8s::{APP_LABEL, Rollout, RolloutSpec};
use rollgit::rollout::{core_spec, state_of};
use rollgit_core::batch::{self, State};
use rollgit_core::kubevela::{self, BatchRollingState, RollingState};
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `rollgit rollout status`.
#[derive(clap::Args, Debug)]
pub struct RolloutStatusArgs {
    /// The app (its Rollouts carry the label rollgit.dev/app=APP).
    app: String,
    /// Only this component's Rollout.
    component: Option<String>,
    /// Namespace of the Rollouts (default: the kubeconfig context's, else `default`).
    #[arg(short, long)]
    namespace: Option<String>,
    /// Follow the rollouts (through a watch) until each has succeeded or failed.
    #[arg(short, long)]
    watch: bool,
    /// How long --watch waits before giving up with exit code 3 (0: no limit).
    #[arg(long, default_value = "10m", value_parser = rollgit::config::parse_duration)]
    timeout: Duration,
    /// Output format: lines with progress bars, or one JSON/YAML document (with --watch,
    /// printed once the rollouts finish or the timeout passes).
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: Output,
    #[command(flatten)]
    kube: KubeArgs,
}

/// `rollgit rollout status`: the exit code of the rollouts' verdict.
pub async fn run(args: RolloutStatusArgs) -> anyhow::Result<ExitCode> {
    let client = args.kube.client().await?;
    let opts = StatusOptions {
        namespace: args
            .namespace
            .unwrap_or_else(|| client.default_namespace().to_string()),
        app: args.app,
        component: args.component,
        watch: args.watch,
        timeout: (!args.timeout.is_zero()).then_some(args.timeout),
        output: args.output,
    };
    let result = super::app_status::any_status(&client, &opts).await;
    match result {
        Ok(code) => Ok(ExitCode::from(code)),
        Err(e @ RolloutCliError::NotFound { .. }) => {
            eprintln!("error: {}", rollgit::error_chain(&e));
            Ok(ExitCode::from(EXIT_FAILED))
        }
        Err(e) => Err(e.into()),
    }
}
/// Characters of a batch's progress bar.
pub const BAR_WIDTH: usize = 10;

/// Exit code: every rollout succeeded and describes its latest spec.
pub const EXIT_SUCCEEDED: u8 = 0;
/// Exit code: a rollout failed (or none was found).
pub const EXIT_FAILED: u8 = 1;
/// Exit code: a rollout has not finished (without `--watch`, or when the timeout passed).
pub const EXIT_UNFINISHED: u8 = 3;

/// Errors of the rollout commands.
#[derive(Debug, thiserror::Error)]
pub enum RolloutCliError {
    /// Listing the Rollouts failed.
    #[error("listing rollouts.rollgit.dev {scope}")]
    List {
        /// `in namespace NS` or `in all namespaces`.
        scope: String,
        #[source]
        source: kube::Error,
    },
    /// The app has no Rollout (or none of the component).
    #[error("no rollout of app {app:?}{} in namespace {namespace} (rollouts carry the label {APP_LABEL}={app})", .component.as_ref().map(|c| format!(", component {c:?}")).unwrap_or_default())]
    NotFound {
        /// The app asked for.
        app: String,
        /// The component asked for.
        component: Option<String>,
        /// Namespace searched.
        namespace: String,
    },
}

/// One batch of a rollout's plan, as `rollgit rollout status` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchLine {
    /// 1-based batch number.
    pub number: usize,
    /// Batches in the plan.
    pub count: usize,
    /// Ready pods of the target revision counted for this batch (at most `goal`).
    pub ready: i64,
    /// Cumulative pods of the target revision after this batch (the plan's goal).
    pub goal: i64,
    /// The batch is complete.
    pub done: bool,
    /// `done`, `failed`, `batchInRolling`, `held by batchPartition 0`, `pending`, ...
    pub note: String,
}

impl BatchLine {
    /// `batch 1/2` (the bar's prefix).
    pub fn prefix(&self) -> String {
        format!("batch {}/{}", self.number, self.count)
    }

    /// `2/2 ready   done` (what follows the bar).
    pub fn message(&self) -> String {
        format!("{}/{} ready   {}", self.ready, self.goal, self.note)
    }
}

/// What `rollgit rollout status` shows for one rollout: a header line, one line per batch, and
/// notes (failure, rollback, pause).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusView {
    /// `express-server: express-server-v1 → express-server-v2, 5 replicas, rollingInBatches (batchReady)`.
    pub header: String,
    /// One per batch of the plan.
    pub batches: Vec<BatchLine>,
    /// Indented notes after the batches.
    pub notes: Vec<String>,
}

impl StatusView {
    /// The view as plain text lines (no escape codes).
    pub fn lines(&self) -> Vec<String> {
        let mut out = vec![self.header.clone()];
        for b in &self.batches {
            out.push(format!(
                "  {}  [{}]  {}",
                b.prefix(),
                bar(b.ready, b.goal, b.done),
                b.message()
            ));
        }
        for n in &self.notes {
            out.push(format!("  {n}"));
        }
        out
    }
}

/// A plain progress bar of [`BAR_WIDTH`] characters: `#` for the ready share of the goal, `-`
/// for the rest (a batch with a goal of 0 is full once done).
pub fn bar(ready: i64, goal: i64, done: bool) -> String {
    let width = BAR_WIDTH as i64;
    let filled = if goal <= 0 {
        if done { width } else { 0 }
    } else {
        ready.clamp(0, goal) * width / goal
    };
    let filled = usize::try_from(filled).unwrap_or(0);
    format!("{}{}", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled))
}

fn replicas(n: i64) -> String {
    if n == 1 {
        "1 replica".into()
    } else {
        format!("{n} replicas")
    }
}

/// The per-batch view of a rollout from its spec and recorded state (pure).
pub fn status_view(spec: &RolloutSpec, state: &State) -> StatusView {
    let rs = state.rolling_state;
    let bs = state.batch_rolling_state;
    let started = state.target_revision.is_some()
        && !matches!(
            rs,
            RollingState::LocatingTargetApp
                | RollingState::VerifyingSpec
                | RollingState::Initializing
        );
    // The run the state describes; before one starts, the spec's.
    let mut run = state.clone();
    if run.rollout_target_size < 0 || run.target_revision.is_none() {
        run.rollout_target_size = spec.target_size.max(0);
    }
    let size = run.rollout_target_size;
    let target = state
        .target_revision
        .clone()
        .unwrap_or_else(|| spec.target_revision.clone());
    let source = if state.target_revision.is_some() {
        state.source_revision.clone()
    } else {
        spec.source_revision.clone()
    };
    let revisions = if state.rolling_back {
        let from = source
            .or_else(|| state.rollback.as_ref().map(|r| r.from.clone()))
            .unwrap_or_else(|| "-".into());
        format!("{from} → {target} (rollback)")
    } else if let Some(src) = source {
        format!("{src} → {target}")
    } else if state.target_revision.is_some() && state.scale {
        if state.original_size == 0 {
            format!("{target} (first release)")
        } else if state.original_size == size {
            target
        } else {
            format!("{target} (scale {} → {size})", state.original_size)
        }
    } else {
        target
    };
    let state_text =
        if rs == RollingState::RollingInBatches || bs == BatchRollingState::BatchVerifyFailed {
            format!("{} ({})", rs.as_str(), bs.as_str())
        } else {
            rs.as_str().to_string()
        };
    let name = if spec.component.is_empty() {
        "-"
    } else {
        spec.component.as_str()
    };
    let header = format!("{name}: {revisions}, {}, {state_text}", replicas(size));

    let goals = batch::batch_goals(&core_spec(spec), &run);
    let count = goals.len();
    let current = usize::try_from(state.current_batch).unwrap_or(0);
    let all_done = matches!(rs, RollingState::RolloutSucceed | RollingState::Finalising);
    let paused = spec.rollout_plan.paused && !rs.is_terminal();
    let held_after = (rs == RollingState::RollingInBatches
        && bs == BatchRollingState::BatchReady
        && !kubevela::batch_partition_allows_next(
            spec.rollout_plan.batch_partition,
            state.current_batch,
        ))
    .then_some(current);
    let batches = goals
        .iter()
        .enumerate()
        .map(|(i, &goal)| {
            let note: String = if all_done || (started && i < current) {
                "done".into()
            } else if !started {
                if paused { "paused" } else { "pending" }.into()
            } else if i == current {
                match (bs, rs) {
                    (BatchRollingState::BatchReady, _) => "done".into(),
                    (BatchRollingState::BatchVerifyFailed, _) => "failed".into(),
                    (BatchRollingState::BatchInitializing, RollingState::RollingInBatches)
                        if paused =>
                    {
                        "paused".into()
                    }
                    (b, RollingState::RollingInBatches) => b.as_str().into(),
                    _ => "stopped".into(),
                }
            } else if held_after.is_some_and(|h| i == h + 1) {
                format!(
                    "held by batchPartition {}",
                    spec.rollout_plan.batch_partition.unwrap_or_default()
                )
            } else if rs == RollingState::RollingInBatches {
                "pending".into()
            } else {
                "not started".into()
            };
            let done = note == "done";
            let counted = started && (i <= current || all_done);
            let ready = if counted {
                state.upgraded_ready_replicas.clamp(0, goal.max(0))
            } else {
                0
            };
            BatchLine {
                number: i + 1,
                count,
                ready,
                goal,
                done,
                note,
            }
        })
        .collect();

    let mut notes = Vec::new();
    if paused {
        notes.push("paused: rolloutPlan.paused is true".to_string());
    }
    if state.rolling_back
        && !rs.is_terminal()
        && let Some(r) = &state.rollback
    {
        notes.push(format!("rolling back: {} failed: {}", r.from, r.reason));
    }
    if rs == RollingState::RolloutFailed {
        notes.push(failure_message(state));
    }
    StatusView {
        header,
        batches,
        notes,
    }
}

/// `failed (Reason): message` from the RolloutFailed condition.
fn failure_message(state: &State) -> String {
    match state.condition(RollingState::RolloutFailed.condition_type()) {
        Some(c) if !c.reason.is_empty() && c.reason != "Failed" => {
            format!("failed ({}): {}", c.reason, c.message)
        }
        Some(c) if !c.message.is_empty() => format!("failed: {}", c.message),
        _ => "failed".into(),
    }
}

/// `rollgit rollout status`'s text for one rollout (pure): the header, a line per batch of the
/// plan with its bar, and the notes.
///
/// ```text
/// express-server: express-server-v1 → express-server-v2, 5 replicas, rollingInBatches (batchReady)
///   batch 1/2  [##########]  2/2 ready   done
///   batch 2/2  [----------]  0/5 ready   held by batchPartition 0
/// ```
#[cfg(test)]
pub fn render_status(spec: &RolloutSpec, state: &State) -> String {
    let mut s = status_view(spec, state).lines().join("\n");
    s.push('\n');
    s
}

/// Where a rollout stands, for the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// `rolloutSucceed` for the latest spec.
    Succeeded,
    /// `rolloutFailed` for the latest spec (the RolloutFailed condition's text).
    Failed(String),
    /// Still going, or the status does not describe the latest spec yet (why).
    Unfinished(String),
}

/// The verdict of a rollout whose status records `state` for `observed_generation`, its spec
/// being at `generation`. A status that describes an older spec is unfinished, whatever its
/// state (as `kubectl rollout status` waits for the controller to observe the spec).
pub fn verdict(
    state: &State,
    generation: Option<i64>,
    observed_generation: Option<i64>,
) -> Verdict {
    let generation = generation.unwrap_or(0);
    match observed_generation {
        Some(o) if o >= generation => {}
        Some(o) => {
            return Verdict::Unfinished(format!(
                "waiting for the rollout controller to observe generation {generation} (status describes {o})"
            ));
        }
        None => {
            return Verdict::Unfinished(
                "waiting for the rollout controller to record a status".into(),
            );
        }
    }
    match state.rolling_state {
        RollingState::RolloutSucceed => Verdict::Succeeded,
        RollingState::RolloutFailed => Verdict::Failed(failure_message(state)),
        RollingState::RollingInBatches => Verdict::Unfinished(format!(
            "{} ({}), batch {}",
            state.rolling_state.as_str(),
            state.batch_rolling_state.as_str(),
            state.current_batch + 1
        )),
        other => Verdict::Unfinished(other.as_str().into()),
    }
}

/// The exit code of several verdicts: 1 when any failed, 0 when all succeeded, 3 otherwise.
pub fn exit_code<'a>(verdicts: impl IntoIterator<Item = &'a Verdict>) -> u8 {
    let mut all_succeeded = true;
    for v in verdicts {
        match v {
            Verdict::Failed(_) => return EXIT_FAILED,
            Verdict::Unfinished(_) => all_succeeded = false,
            Verdict::Succeeded => {}
        }
    }
    if all_succeeded {
        EXIT_SUCCEEDED
    } else {
        EXIT_UNFINISHED
    }
}

/// One Rollout as read from the cluster.
#[derive(Debug, Clone)]
pub struct Observed {
    /// Object name (the component).
    pub name: String,
    /// Its spec (defaults where unreadable).
    pub spec: RolloutSpec,
    /// Its recorded state.
    pub state: State,
    /// `metadata.generation`.
    pub generation: Option<i64>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// Why its status does not parse, if it does not.
    pub invalid: Option<String>,
}

impl Observed {
    /// Reads a Rollout object.
    pub fn from_object(o: &Rollout) -> Self {
        let name = o.metadata.name.clone().unwrap_or_default();
        let mut spec = o.spec.clone();
        if spec.component.is_empty() {
            spec.component = name.clone();
        }
        let (state, observed_generation, invalid) = match &o.status {
            None => (State::default(), None, None),
            Some(Checked::Valid(s)) => match state_of(s) {
                Ok(state) => (state, s.observed_generation, None),
                Err(e) => (State::default(), s.observed_generation, Some(e)),
            },
            Some(Checked::Invalid { error, .. }) => (State::default(), None, Some(error.clone())),
        };
        Observed {
            name,
            spec,
            state,
            generation: o.metadata.generation,
            observed_generation,
            invalid,
        }
    }

    /// Its verdict (a status that does not parse fails it).
    pub fn verdict(&self) -> Verdict {
        match &self.invalid {
            Some(e) => Verdict::Failed(format!("has a status that does not parse: {e}")),
            None => verdict(&self.state, self.generation, self.observed_generation),
        }
    }

    /// Its view, with a note when the status describes an older spec.
    pub fn view(&self) -> StatusView {
        let mut v = status_view(&self.spec, &self.state);
        if let Verdict::Unfinished(why) = self.verdict()
            && why.starts_with("waiting")
        {
            v.notes.push(why);
        }
        v
    }
}

/// Whether a Rollout is the one asked for (any of the app's when no component is given).
fn wanted(o: &Rollout, component: Option<&str>) -> bool {
    match component {
        None => true,
        Some(c) => o.metadata.name.as_deref() == Some(c) || o.spec.component == c,
    }
}

/// What `rollgit rollout status` is asked.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// Namespace of the Rollouts.
    pub namespace: String,
    /// The app (label `rollgit.dev/app`).
    pub app: String,
    /// Only this component's Rollout.
    pub component: Option<String>,
    /// Follow changes until every rollout is terminal.
    pub watch: bool,
    /// Bound of the watch (`None`: unbounded).
    pub timeout: Option<Duration>,
    /// Lines (`Table`) or one document at the end.
    pub output: Output,
}

/// `succeeded`, `failed` or `unfinished`: an exit code as the document says it.
pub fn result_word(code: u8) -> &'static str {
    match code {
        EXIT_SUCCEEDED => "succeeded",
        EXIT_FAILED => "failed",
        _ => "unfinished",
    }
}

/// A verdict as the document says it: (`verdict`, `message`).
pub fn verdict_words(v: &Verdict) -> (&'static str, Option<String>) {
    match v {
        Verdict::Succeeded => ("succeeded", None),
        Verdict::Failed(why) => ("failed", Some(why.clone())),
        Verdict::Unfinished(why) => ("unfinished", Some(why.clone())),
    }
}

/// The `-o json|yaml` document of `rollgit rollout status` (pure): `{"app", "namespace",
/// "result", "rollouts": [{"name", "kind": "rollouts.rollgit.dev", "rollingState",
/// "batchRollingState", "sourceRevision", "targetRevision", "stableRevision", "size",
/// "currentBatch", "verdict", "message", "batches": [{"number", "count", "ready", "goal",
/// "done", "note"}], "notes"}]}`.
pub fn status_document(
    opts: &StatusOptions,
    objects: &BTreeMap<String, Observed>,
    code: u8,
) -> serde_json::Value {
    use serde_json::json;
    let rollouts: Vec<serde_json::Value> = objects
        .values()
        .map(|o| {
            let view = o.view();
            let (verdict, message) = verdict_words(&o.verdict());
            let st = &o.state;
            let batches: Vec<serde_json::Value> = view
                .batches
                .iter()
                .map(|b| {
                    json!({"number": b.number, "count": b.count, "ready": b.ready,
                        "goal": b.goal, "done": b.done, "note": b.note})
                })
                .collect();
            json!({
                "name": o.name,
                "kind": "rollouts.rollgit.dev",
                "rollingState": st.rolling_state.as_str(),
                "batchRollingState": st.batch_rolling_state.as_str(),
                "sourceRevision": st.source_revision,
                "targetRevision": st.target_revision.clone().or_else(|| Some(o.spec.target_revision.clone()).filter(|t| !t.is_empty())),
                "stableRevision": st.stable_revision,
                "size": if st.rollout_target_size >= 0 { st.rollout_target_size } else { o.spec.target_size.max(0) },
                "currentBatch": st.current_batch,
                "verdict": verdict,
                "message": message,
                "batches": batches,
                "notes": view.notes,
            })
        })
        .collect();
    json!({"app": opts.app, "namespace": opts.namespace, "result": result_word(code), "rollouts": rollouts})
}

/// `rollgit rollout status`: prints each rollout of the app and returns the exit code
/// ([`EXIT_SUCCEEDED`], [`EXIT_FAILED`], [`EXIT_UNFINISHED`]). With `watch`, follows a watch on
/// the Rollouts, redrawing on every change, until all are terminal or the timeout passes.
pub async fn rollout_status(
    client: &kube::Client,
    opts: &StatusOptions,
) -> Result<u8, RolloutCliError> {
    let api: Api<Rollout> = Api::namespaced(client.clone(), &opts.namespace);
    let selector = format!("{APP_LABEL}={}", opts.app);
    let not_found = || RolloutCliError::NotFound {
        app: opts.app.clone(),
        component: opts.component.clone(),
        namespace: opts.namespace.clone(),
    };
    let component = opts.component.as_deref();
    let listed = api
        .list(&ListParams::default().labels(&selector))
        .await
        .map_err(|source| RolloutCliError::List {
            scope: format!("in namespace {}", opts.namespace),
            source,
        })?;
    let mut objects: BTreeMap<String, Observed> = listed
        .items
        .iter()
        .filter(|o| wanted(o, component))
        .map(|o| {
            let r = Observed::from_object(o);
            (r.name.clone(), r)
        })
        .collect();
    if objects.is_empty() {
        return Err(not_found());
    }
    let mut screen = if opts.output.is_document() {
        Screen::Silent
    } else {
        Screen::new(opts.watch && std::io::stdout().is_terminal())
    };
    screen.show(&objects);
    let mut code = exit_code(&verdicts(&objects));
    if !opts.watch || code != EXIT_UNFINISHED {
        screen.finish();
        print_document(opts, &objects, code);
        report(code, &objects, false);
        return Ok(code);
    }

    let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    let mut stream = watcher(api, watcher::Config::default().labels(&selector))
        .backoff(rollgit::k8s::WatchBackoff::default())
        .boxed();
    let mut relisting: Option<BTreeMap<String, Observed>> = None;
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, stream.next()).await {
                Ok(n) => n,
                Err(_) => {
                    screen.finish();
                    let t = humantime::format_duration(opts.timeout.unwrap_or_default());
                    eprintln!(
                        "timed out after {t} waiting for the rollouts of app {} to finish",
                        opts.app
                    );
                    print_document(opts, &objects, EXIT_UNFINISHED);
                    report(EXIT_UNFINISHED, &objects, true);
                    return Ok(EXIT_UNFINISHED);
                }
            },
            None => stream.next().await,
        };
        let Some(event) = next else {
            // The watcher's stream does not end; treat an end as unfinished.
            break;
        };
        match event {
            Ok(watcher::Event::Init) => {
                relisting = Some(BTreeMap::new());
                continue;
            }
            Ok(watcher::Event::InitApply(o)) => {
                if wanted(&o, component) {
                    let r = Observed::from_object(&o);
                    relisting
                        .get_or_insert_with(BTreeMap::new)
                        .insert(r.name.clone(), r);
                }
                continue;
            }
            Ok(watcher::Event::InitDone) => {
                objects = relisting.take().unwrap_or_default();
            }
            Ok(watcher::Event::Apply(o)) => {
                if !wanted(&o, component) {
                    continue;
                }
                let r = Observed::from_object(&o);
                objects.insert(r.name.clone(), r);
            }
            Ok(watcher::Event::Delete(o)) => {
                if let Some(n) = &o.metadata.name {
                    objects.remove(n);
                }
            }
            Err(e) => {
                tracing::warn!(error = %rollgit::error_chain(&e), "watching rollouts failed; retrying");
                continue;
            }
        }
        if objects.is_empty() {
            screen.finish();
            return Err(not_found());
        }
        screen.show(&objects);
        code = exit_code(&verdicts(&objects));
        if code != EXIT_UNFINISHED {
            break;
        }
    }
    screen.finish();
    print_document(opts, &objects, code);
    report(code, &objects, true);
    Ok(code)
}

fn print_document(opts: &StatusOptions, objects: &BTreeMap<String, Observed>, code: u8) {
    if let Err(e) = opts.output.print(&status_document(opts, objects, code)) {
        eprintln!("error: printing the document: {e:#}");
    }
}

fn verdicts(objects: &BTreeMap<String, Observed>) -> Vec<Verdict> {
    objects.values().map(Observed::verdict).collect()
}

/// The closing lines on stderr: why the exit code is not 0.
fn report(code: u8, objects: &BTreeMap<String, Observed>, watched: bool) {
    for (name, o) in objects {
        match o.verdict() {
            Verdict::Failed(why) if code == EXIT_FAILED => {
                eprintln!("error: rollout {name} {why}");
            }
            Verdict::Unfinished(why) if code == EXIT_UNFINISHED => {
                let hint = if watched {
                    ""
                } else {
                    " (--watch waits for it)"
                };
                eprintln!("rollout {name} has not finished: {why}{hint}");
            }
            _ => {}
        }
    }
}

/// One line of the terminal view.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Line {
    Text(String),
    Batch(BatchLine),
}

impl Line {
    fn same_kind(&self, other: &Line) -> bool {
        matches!(
            (self, other),
            (Line::Text(_), Line::Text(_)) | (Line::Batch(_), Line::Batch(_))
        )
    }
}

fn screen_lines(objects: &BTreeMap<String, Observed>) -> Vec<Line> {
    let mut out = Vec::new();
    for o in objects.values() {
        let v = o.view();
        out.push(Line::Text(v.header.clone()));
        out.extend(v.batches.iter().cloned().map(Line::Batch));
        out.extend(v.notes.iter().map(|n| Line::Text(format!("  {n}"))));
    }
    out
}

fn plain_text(objects: &BTreeMap<String, Observed>) -> String {
    objects
        .values()
        .map(|o| {
            let mut s = o.view().lines().join("\n");
            s.push('\n');
            s
        })
        .collect()
}

/// Where the status is drawn: plain lines (printed again on each change), or indicatif bars
/// redrawn in place on a terminal.
enum Screen {
    /// Nothing drawn (a document is printed at the end).
    Silent,
    Plain {
        last: String,
    },
    Bars {
        multi: MultiProgress,
        bars: Vec<(Line, ProgressBar)>,
    },
}

impl Screen {
    fn new(terminal: bool) -> Self {
        if terminal {
            Screen::Bars {
                multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
                bars: Vec::new(),
            }
        } else {
            Screen::Plain {
                last: String::new(),
            }
        }
    }

    fn show(&mut self, objects: &BTreeMap<String, Observed>) {
        match self {
            Screen::Silent => {}
            Screen::Plain { last } => {
                let text = plain_text(objects);
                if text != *last {
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(text.as_bytes());
                    let _ = out.flush();
                    *last = text;
                }
            }
            Screen::Bars { multi, bars } => {
                let lines = screen_lines(objects);
                let same_shape = lines.len() == bars.len()
                    && lines
                        .iter()
                        .zip(bars.iter())
                        .all(|(a, (b, _))| a.same_kind(b));
                if !same_shape {
                    for (_, pb) in bars.drain(..) {
                        pb.finish_and_clear();
                        multi.remove(&pb);
                    }
                    for l in &lines {
                        let pb = multi.add(ProgressBar::new(1).with_style(style_for(l)));
                        bars.push((l.clone(), pb));
                    }
                }
                // Each setter draws (rate-limited), so an update may leave a line stale until
                // the next one: every changed line is drawn again, forced, once all are set.
                let mut changed = Vec::new();
                for (l, (old, pb)) in lines.into_iter().zip(bars.iter_mut()) {
                    if same_shape && *old == l {
                        continue;
                    }
                    match &l {
                        Line::Text(t) => pb.set_message(t.clone()),
                        Line::Batch(b) => {
                            let (len, pos) = if b.goal > 0 {
                                (b.goal, b.ready.clamp(0, b.goal))
                            } else {
                                (1, i64::from(b.done))
                            };
                            pb.set_length(u64::try_from(len).unwrap_or(1));
                            pb.set_position(u64::try_from(pos).unwrap_or(0));
                            pb.set_prefix(b.prefix());
                            pb.set_message(b.message());
                        }
                    }
                    *old = l;
                    changed.push(pb.clone());
                }
                for pb in changed {
                    pb.force_draw();
                }
            }
        }
    }

    /// Leaves the last drawing on screen.
    fn finish(&mut self) {
        if let Screen::Bars { bars, .. } = self {
            for (_, pb) in bars.iter() {
                pb.abandon();
            }
        }
    }
}

fn style_for(line: &Line) -> ProgressStyle {
    let template = match line {
        Line::Text(_) => "{msg}",
        Line::Batch(_) => "  {prefix}  [{bar:10}]  {msg}",
    };
    ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#-")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollgit::k8s::crds::{BatchSpec, PlanSpec, WorkloadRef};
    use rollgit_core::batch::{Condition, Rollback};
    use rollgit_core::intstr::IntOrString;

    fn spec(batches: &[i64], partition: Option<i64>, size: i64) -> RolloutSpec {
        RolloutSpec {
            app: "demo".into(),
            application: Some("demo".into()),
            component: "express-server".into(),
            workload: WorkloadRef {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
            },
            target_revision: "express-server-v2".into(),
            source_revision: None,
            target_size: size,
            rollout_plan: PlanSpec {
                rollout_batches: batches
                    .iter()
                    .map(|b| BatchSpec {
                        replicas: IntOrString::Int(*b),
                    })
                    .collect(),
                batch_partition: partition,
                ..Default::default()
            },
            progress_deadline_seconds: 600,
            commit: None,
            ..Default::default()
        }
    }

    fn running(target: &str, source: Option<&str>, size: i64) -> State {
        State {
            rolling_state: RollingState::RollingInBatches,
            batch_rolling_state: BatchRollingState::BatchInRolling,
            rollout_target_size: size,
            target_revision: Some(target.into()),
            source_revision: source.map(str::to_string),
            ..State::default()
        }
    }

    fn condition(kind: &str, reason: &str, message: &str) -> Condition {
        Condition {
            kind: kind.into(),
            status: false,
            reason: reason.into(),
            message: message.into(),
            at: 0,
        }
    }

    #[test]
    fn render_status_table() {
        let held = State {
            batch_rolling_state: BatchRollingState::BatchReady,
            upgraded_replicas: 2,
            upgraded_ready_replicas: 2,
            ..running("express-server-v2", Some("express-server-v1"), 5)
        };
        let first_release = State {
            scale: true,
            original_size: 0,
            current_batch: 0,
            batch_rolling_state: BatchRollingState::BatchVerifying,
            upgraded_replicas: 3,
            upgraded_ready_replicas: 1,
            ..running("express-server-v1", None, 3)
        };
        let succeeded = State {
            rolling_state: RollingState::RolloutSucceed,
            batch_rolling_state: BatchRollingState::BatchReady,
            current_batch: 1,
            upgraded_replicas: 5,
            upgraded_ready_replicas: 5,
            stable_revision: Some("express-server-v2".into()),
            ..running("express-server-v2", Some("express-server-v1"), 5)
        };
        let failed = State {
            rolling_state: RollingState::RolloutFailed,
            batch_rolling_state: BatchRollingState::BatchVerifyFailed,
            current_batch: 0,
            upgraded_replicas: 2,
            upgraded_ready_replicas: 0,
            failed_revision: Some("express-server-v2".into()),
            conditions: vec![condition(
                "RolloutFailed",
                "ProgressDeadlineExceeded",
                "batch 1 of 2 (express-server-v2) was not ready within 600s: 0 of 2 pods ready",
            )],
            ..running("express-server-v2", Some("express-server-v1"), 5)
        };
        let reason =
            "batch 1 of 2 (express-server-v2) was not ready within 600s: 0 of 2 pods ready";
        let rolling_back = State {
            rolling_back: true,
            current_batch: 1,
            batch_rolling_state: BatchRollingState::BatchVerifying,
            upgraded_replicas: 4,
            upgraded_ready_replicas: 3,
            rollback: Some(Rollback {
                from: "express-server-v2".into(),
                to: "express-server-v1".into(),
                reason: reason.into(),
                done: false,
            }),
            ..running("express-server-v1", Some("express-server-v2"), 5)
        };
        let rolled_back = State {
            rolling_state: RollingState::RolloutFailed,
            batch_rolling_state: BatchRollingState::BatchReady,
            upgraded_replicas: 5,
            upgraded_ready_replicas: 5,
            conditions: vec![condition(
                "RolloutFailed",
                "RolledBack",
                &format!(
                    "rolled back to express-server-v1 after express-server-v2 failed: {reason}"
                ),
            )],
            rollback: Some(Rollback {
                done: true,
                ..rolling_back.rollback.clone().expect("rollback")
            }),
            current_batch: 1,
            ..rolling_back.clone()
        };
        let scale = State {
            scale: true,
            original_size: 5,
            batch_rolling_state: BatchRollingState::BatchInRolling,
            upgraded_replicas: 5,
            upgraded_ready_replicas: 5,
            ..running("express-server-v2", None, 7)
        };
        let not_started = State::default();
        let paused = State {
            batch_rolling_state: BatchRollingState::BatchInitializing,
            ..running("express-server-v2", Some("express-server-v1"), 5)
        };
        let mut paused_spec = spec(&[2, 3], None, 5);
        paused_spec.rollout_plan.paused = true;

        let cases: Vec<(&str, RolloutSpec, State, &str)> = vec![
            (
                "held by partition",
                spec(&[2, 3], Some(0), 5),
                held,
                "express-server: express-server-v1 → express-server-v2, 5 replicas, rollingInBatches (batchReady)
  batch 1/2  [##########]  2/2 ready   done
  batch 2/2  [----------]  0/5 ready   held by batchPartition 0
",
            ),
            (
                "first release, no batches",
                spec(&[], None, 3),
                first_release,
                "express-server: express-server-v1 (first release), 3 replicas, rollingInBatches (batchVerifying)
  batch 1/1  [###-------]  1/3 ready   batchVerifying
",
            ),
            (
                "succeeded",
                spec(&[2, 3], None, 5),
                succeeded,
                "express-server: express-server-v1 → express-server-v2, 5 replicas, rolloutSucceed
  batch 1/2  [##########]  2/2 ready   done
  batch 2/2  [##########]  5/5 ready   done
",
            ),
            (
                "failed with reason",
                spec(&[2, 3], None, 5),
                failed,
                "express-server: express-server-v1 → express-server-v2, 5 replicas, rolloutFailed (batchVerifyFailed)
  batch 1/2  [----------]  0/2 ready   failed
  batch 2/2  [----------]  0/5 ready   not started
  failed (ProgressDeadlineExceeded): batch 1 of 2 (express-server-v2) was not ready within 600s: 0 of 2 pods ready
",
            ),
            (
                "rolling back",
                spec(&[2, 3], None, 5),
                rolling_back,
                "express-server: express-server-v2 → express-server-v1 (rollback), 5 replicas, rollingInBatches (batchVerifying)
  batch 1/2  [##########]  2/2 ready   done
  batch 2/2  [######----]  3/5 ready   batchVerifying
  rolling back: express-server-v2 failed: batch 1 of 2 (express-server-v2) was not ready within 600s: 0 of 2 pods ready
",
            ),
            (
                "rolled back",
                spec(&[2, 3], None, 5),
                rolled_back,
                "express-server: express-server-v2 → express-server-v1 (rollback), 5 replicas, rolloutFailed
  batch 1/2  [##########]  2/2 ready   done
  batch 2/2  [##########]  5/5 ready   done
  failed (RolledBack): rolled back to express-server-v1 after express-server-v2 failed: batch 1 of 2 (express-server-v2) was not ready within 600s: 0 of 2 pods ready
",
            ),
            (
                "scale without batches: one batch of the difference",
                spec(&[], None, 7),
                scale,
                "express-server: express-server-v2 (scale 5 → 7), 7 replicas, rollingInBatches (batchInRolling)
  batch 1/1  [#######---]  5/7 ready   batchInRolling
",
            ),
            (
                "not started: the spec's plan",
                spec(&[1, 4], None, 5),
                not_started,
                "express-server: express-server-v2, 5 replicas, locatingTargetApp
  batch 1/2  [----------]  0/1 ready   pending
  batch 2/2  [----------]  0/5 ready   pending
",
            ),
            (
                "paused",
                paused_spec,
                paused,
                "express-server: express-server-v1 → express-server-v2, 5 replicas, rollingInBatches (batchInitializing)
  batch 1/2  [----------]  0/2 ready   paused
  batch 2/2  [----------]  0/5 ready   pending
  paused: rolloutPlan.paused is true
",
            ),
        ];
        for (what, spec, state, want) in cases {
            assert_eq!(render_status(&spec, &state), want, "{what}");
        }
    }

    #[test]
    fn scale_batches_come_from_the_plan() {
        // Scale 2 → 6 in the spec's batches [1, 3]: goals 3 then 6.
        let state = State {
            scale: true,
            original_size: 2,
            current_batch: 1,
            batch_rolling_state: BatchRollingState::BatchVerifying,
            upgraded_ready_replicas: 4,
            ..running("express-server-v2", None, 6)
        };
        let v = status_view(&spec(&[1, 3], None, 6), &state);
        let goals: Vec<(i64, i64, &str)> = v
            .batches
            .iter()
            .map(|b| (b.ready, b.goal, b.note.as_str()))
            .collect();
        assert_eq!(goals, [(3, 3, "done"), (4, 6, "batchVerifying")]);
    }

    #[test]
    fn bars() {
        assert_eq!(bar(0, 5, false), "----------");
        assert_eq!(bar(2, 5, false), "####------");
        assert_eq!(bar(5, 5, true), "##########");
        assert_eq!(bar(9, 5, true), "##########");
        assert_eq!(bar(0, 0, true), "##########");
        assert_eq!(bar(0, 0, false), "----------");
    }

    #[test]
    fn verdicts_and_exit_codes() {
        let ok = State {
            rolling_state: RollingState::RolloutSucceed,
            ..State::default()
        };
        assert_eq!(verdict(&ok, Some(2), Some(2)), Verdict::Succeeded);
        assert!(matches!(
            verdict(&ok, Some(3), Some(2)),
            Verdict::Unfinished(w) if w.contains("generation 3")
        ));
        assert!(matches!(
            verdict(&ok, Some(1), None),
            Verdict::Unfinished(_)
        ));
        let failed = State {
            rolling_state: RollingState::RolloutFailed,
            conditions: vec![condition(
                "RolloutFailed",
                "ProgressDeadlineExceeded",
                "boom",
            )],
            ..State::default()
        };
        assert_eq!(
            verdict(&failed, Some(1), Some(1)),
            Verdict::Failed("failed (ProgressDeadlineExceeded): boom".into())
        );
        let going = running("v2", None, 5);
        let s = Verdict::Succeeded;
        let f = Verdict::Failed(String::new());
        let u = verdict(&going, Some(1), Some(1));
        assert_eq!(
            u,
            Verdict::Unfinished("rollingInBatches (batchInRolling), batch 1".into())
        );
        assert_eq!(exit_code([&s, &s]), EXIT_SUCCEEDED);
        assert_eq!(exit_code([&s, &u]), EXIT_UNFINISHED);
        assert_eq!(exit_code([&u, &f, &s]), EXIT_FAILED);
    }
}
