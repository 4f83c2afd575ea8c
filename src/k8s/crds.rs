//! rollgit's custom resources as typed structs, and their CustomResourceDefinitions.
//!
//! * `applications.rollgit.dev` ([`Application`], short names `app`, `rga`): one per app, its
//!   source and its last known state; `kubectl get app` shows the columns of seed 000
//!   (NAME COMPONENT TYPE PHASE HEALTHY STATUS AGE).
//! * `rollouts.rollgit.dev` ([`Rollout`], short name `rgro`): one per component rolled out in
//!   batches (a KubeVela `rollout` trait or an AppRollout); its spec comes from Git, its status
//!   is the rollout's state (columns TARGET UPGRADED READY BATCH-STATE ROLLING-STATE AGE).
//!
//! The YAML in `deploy/crds/` is generated from these types ([`crd_yaml`]; `rollgit crds`
//! prints it); a test fails when the files and the types drift apart.
//!
//! A status written by an older rollgit, or edited by hand, may not parse: it is read as
//! [`Checked::Invalid`] (the watch on the resource goes on), and the stage that needs it
//! reports an error naming the object instead of starting from a default.

use super::{FIELD_MANAGER, MANAGED_BY, MANAGED_BY_LABEL};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResource;
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::wait::{Condition as _, await_condition, conditions};
use rollgit_core::intstr::IntOrString;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// How long [`ensure_crds`] waits for a CRD to be Established.
pub const CRD_TIMEOUT: Duration = Duration::from_secs(30);

/// A Kubernetes-style condition (`type`, `status` `True`/`False`, `reason`, `message`,
/// `lastTransitionTime`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    /// The condition's type (`Ready`, `Synced`, `RolloutSucceed`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// `True` or `False`.
    pub status: String,
    /// Why, in CamelCase.
    #[serde(default)]
    pub reason: String,
    /// What happened, for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When `status` last changed (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_transition_time: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// applications.rollgit.dev

/// An app rollgit reconciles from Git, and its last known state.
#[derive(CustomResource, Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[kube(
    group = "rollgit.dev",
    version = "v1alpha1",
    kind = "Application",
    plural = "applications",
    namespaced,
    status = "ApplicationStatus",
    doc = "An app rollgit reconciles from Git, and its last known state.",
    shortname = "app",
    shortname = "rga",
    category = "rollgit",
    label("app.kubernetes.io/managed-by", "rollgit"),
    printcolumn = r#"{"name": "COMPONENT", "type": "string", "jsonPath": ".status.component"}"#,
    printcolumn = r#"{"name": "TYPE", "type": "string", "jsonPath": ".status.componentType"}"#,
    printcolumn = r#"{"name": "PHASE", "type": "string", "jsonPath": ".status.phase"}"#,
    printcolumn = r#"{"name": "HEALTHY", "type": "boolean", "jsonPath": ".status.healthy"}"#,
    printcolumn = r#"{"name": "STATUS", "type": "string", "jsonPath": ".status.message"}"#,
    printcolumn = r#"{"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationSpec {
    /// Where the app comes from.
    #[serde(default)]
    pub source: AppSource,
    /// The app's name in rollgit (its directory's, or its KubeVela Application's).
    #[serde(default)]
    pub app: String,
    /// Set by `rollgit suspend APP` (and cleared by `rollgit resume APP`), as Flux's
    /// `spec.suspend`: the daemon neither applies the app's commits nor corrects its drift
    /// until it is cleared; its PHASE is `suspended`. rollgit's own writes never set it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub suspend: bool,
}

/// Where an app comes from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AppSource {
    /// rollgit's name of the repository.
    #[serde(default)]
    pub repo: String,
    /// The repository's URL (without credentials).
    #[serde(default)]
    pub url: String,
    /// The branch followed.
    #[serde(default)]
    pub branch: String,
    /// The app's directory in the repository (`""` for the root).
    #[serde(default)]
    pub path: String,
    /// The repository's namespace: where the app's objects that name none go (the status
    /// object itself lives in the KubeVela Application's namespace when the app is named
    /// after one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// An app's phase, named as KubeVela's `status.status` where one applies (ROLLOUT-SEMANTICS
/// C.5); `failed` and `stalled` are rollgit's own.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    /// Seen, nothing done yet.
    #[default]
    Starting,
    /// Rendering a new commit.
    Rendering,
    /// Applying, or a rollout in progress.
    RunningWorkflow,
    /// Applied and healthy.
    Running,
    /// Applied, not (yet) healthy.
    Unhealthy,
    /// The last commit was rejected (render) or failed to apply.
    Failed,
    /// Being deleted.
    Deleting,
    /// Waiting for a person: a rollback could not be written to Git (the revert conflicts).
    Stalled,
    /// Not synced: `rollgit suspend APP` set `spec.suspend` (`rollgit resume APP` clears it).
    Suspended,
    /// A workflow step waits for a resume (an approval) or a duration.
    WorkflowSuspending,
    /// A workflow step failed (it is tried again).
    WorkflowFailed,
    /// The workflow was terminated.
    WorkflowTerminated,
}

impl Phase {
    /// The phase's text in the status (`running`, `runningWorkflow`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Rendering => "rendering",
            Self::RunningWorkflow => "runningWorkflow",
            Self::Running => "running",
            Self::Unhealthy => "unhealthy",
            Self::Failed => "failed",
            Self::Deleting => "deleting",
            Self::Stalled => "stalled",
            Self::Suspended => "suspended",
            Self::WorkflowSuspending => "workflowSuspending",
            Self::WorkflowFailed => "workflowFailed",
            Self::WorkflowTerminated => "workflowTerminated",
        }
    }
}

/// One component of an app, with its revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ComponentStatus {
    /// Component name.
    pub name: String,
    /// Component type (`webservice`, `worker`, `cloneset`, ...).
    #[serde(rename = "type")]
    pub type_: String,
    /// Current revision name (`express-server-v2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision: Option<String>,
    /// Current revision number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_number: Option<u64>,
    /// Whether the component's workload is healthy.
    pub healthy: bool,
    /// Why not, in a few words (empty when healthy).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
}

/// The status of an [`Application`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApplicationStatus {
    /// starting, rendering, runningWorkflow, running, unhealthy, failed, deleting or stalled.
    #[serde(default)]
    pub phase: Phase,
    /// Whether every object of the app is healthy.
    #[serde(default)]
    pub healthy: bool,
    /// The STATUS column: why the app is not running and healthy (empty when it is).
    #[serde(default)]
    pub message: String,
    /// The first component's name, `-` for an app of plain YAML.
    #[serde(default)]
    pub component: String,
    /// The first component's type, `-` for an app of plain YAML.
    #[serde(default)]
    pub component_type: String,
    /// The commit whose objects are in the cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_applied_commit: Option<String>,
    /// The last commit rollgit tried (equal to the applied one unless it failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempted_commit: Option<String>,
    /// `app.oam.dev/publishVersion` of the applied commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_version: Option<String>,
    /// Hash of everything the app rendered at `publishVersion` (a restarted daemon knows
    /// whether the next render is a new version).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_hash: Option<String>,
    /// The errors of the last attempt (`path:line: message`, or `object: message`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_error: Vec<String>,
    /// `Ready` (health) and `Synced` (the last commit applied).
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The app's components (KubeVela apps).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<ComponentStatus>,
    /// What the app applied (so a restarted daemon knows what to prune).
    #[serde(default)]
    pub inventory: super::Inventory,
    /// Drift corrections rollgit made for this app.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub drift_corrections: u64,
    /// The objects corrected last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub last_drift_correction: Vec<String>,
    /// A prune held back because it would delete more than half of the app's objects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_prune: Option<HeldPruneStatus>,
    /// The last `rollgit sync` request (the `rollgit.dev/sync-requested` annotation) handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_sync_request: Option<String>,
    /// The app's workflow run (KubeVela's `status.workflow`), when it has topology policies or
    /// a workflow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowStatus>,
    /// What the workflow delivered to each target cluster.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<ClusterStatus>,
    /// The promotion of this app's stage to the next stage of its pipeline (`promotion` in
    /// the configuration), written by the promoter only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion: Option<PromotionStatus>,
}

/// Where the promotion out of one pipeline stage stands (kept on the stage's app status, so
/// that a restarted daemon neither loses nor duplicates a pull request).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PromotionStatus {
    /// The pipeline (`promotion[].app`).
    #[serde(default)]
    pub pipeline: String,
    /// This stage.
    #[serde(default)]
    pub from: String,
    /// The next stage.
    #[serde(default)]
    pub to: String,
    /// The next stage's app, when its status object is found (in the next stage's
    /// repository's namespace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to_app: Option<String>,
    /// waiting, soaking, open, held, conflict or promoted.
    #[serde(default)]
    pub state: String,
    /// Why it waits, in a few words.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// The stage's commit being soaked or promoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_commit: Option<String>,
    /// Since when the stage has been healthy at `sourceCommit` (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_since: Option<String>,
    /// The stage's commit whose changes the next stage last received (a merged pull request,
    /// or the baseline): the base of the next replay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promoted_commit: Option<String>,
    /// A commit whose pull request was closed without merging: not opened again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub declined_commit: Option<String>,
    /// A commit whose replay conflicted: no pull request, until a new commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conflict_commit: Option<String>,
    /// The conflicting files of `conflictCommit`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conflicts: Vec<String>,
    /// The open pull request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<PullRequestStatus>,
    /// The last `rollgit promote-stage` request handled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<String>,
}

/// A pull (merge) request rollgit opened.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PullRequestStatus {
    /// Its number (GitLab: the `iid`).
    pub number: u64,
    /// Its web page.
    #[serde(default)]
    pub url: String,
    /// The branch rollgit pushed.
    pub branch: String,
    /// The stage's commit it carries.
    pub source_commit: String,
    /// Opened by `rollgit promote-stage` (soak skipped).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manual: bool,
}

/// One run of an app's workflow (KubeVela's `status.workflow`, StepByStep).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStatus {
    /// The publishVersion the run delivers: a new one runs the workflow again from the first
    /// step.
    pub publish_version: String,
    /// The commit whose objects the run delivers.
    pub commit: String,
    /// Hash of what the run delivers.
    #[serde(default)]
    pub content_hash: String,
    /// `StepByStep`.
    #[serde(default)]
    pub mode: String,
    /// Held by `rollgit workflow suspend`, or a step waits for a resume.
    #[serde(default)]
    pub suspend: bool,
    /// Held by `rollgit workflow suspend` (until `resume`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub held: bool,
    /// Ended by `rollgit workflow terminate`.
    #[serde(default)]
    pub terminated: bool,
    /// Every step succeeded.
    #[serde(default)]
    pub finished: bool,
    /// The current step's message.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When the run started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<String>,
    /// When it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<String>,
    /// Each step, in order.
    #[serde(default)]
    pub steps: Vec<WorkflowStepStatus>,
    /// The last `rollgit workflow` request handled (its token).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_request: Option<String>,
    /// Why it was refused (empty when it was carried out).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub last_request_error: String,
    /// The last command carried out: who (the kubeconfig user) and when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_command: Option<WorkflowCommandRecord>,
}

/// A workflow command carried out.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowCommandRecord {
    /// `resume`, `suspend`, `terminate` or `restart`.
    pub command: String,
    /// The step (`--step`), if one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// The user, as the cluster authenticated them (SelfSubjectReview).
    pub user: String,
    /// When (RFC 3339).
    pub time: String,
}

/// One step of a workflow run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowStepStatus {
    /// The step's name.
    pub name: String,
    /// `deploy` or `suspend`.
    #[serde(rename = "type")]
    pub type_: String,
    /// pending, running, suspending, succeeded, failed or skipped.
    pub phase: String,
    /// Why (approval, errors, the clusters not healthy yet).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// When it started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_execute_time: Option<String>,
    /// When it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_execute_time: Option<String>,
    /// When a timed suspend step resumes by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_time: Option<String>,
    /// A deploy step with `auto: false` was approved.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub approved: bool,
    /// The clusters it delivers to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub clusters: Vec<String>,
}

/// What the workflow delivered to one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClusterStatus {
    /// The cluster's name in the configuration.
    pub name: String,
    /// The commit whose objects are there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_commit: Option<String>,
    /// Their publishVersion.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish_version: Option<String>,
    /// Whether they are healthy.
    #[serde(default)]
    pub healthy: bool,
    /// Why not, or the last error.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    /// What was applied there (pruned there when it leaves the app).
    #[serde(default)]
    pub inventory: super::Inventory,
}

/// A prune held back until `rollgit sync APP --allow-mass-prune` (or `sync.allowMassPrune`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct HeldPruneStatus {
    /// How many objects it would delete.
    pub count: usize,
    /// Of how many the app has.
    pub inventory: usize,
    /// The first of them.
    #[serde(default)]
    pub objects: Vec<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

// ---------------------------------------------------------------------------------------------
// rollouts.rollgit.dev

/// The spec of a batched rollout of one component, driven from Git.
#[derive(
    CustomResource, Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema,
)]
#[kube(
    group = "rollgit.dev",
    version = "v1alpha1",
    kind = "Rollout",
    plural = "rollouts",
    namespaced,
    status = "Checked<RolloutStatus>",
    doc = "A batched rollout of one component, driven from Git.",
    shortname = "rgro",
    category = "rollgit",
    label("app.kubernetes.io/managed-by", "rollgit"),
    printcolumn = r#"{"name": "TARGET", "type": "integer", "jsonPath": ".status.rolloutTargetSize"}"#,
    printcolumn = r#"{"name": "UPGRADED", "type": "integer", "jsonPath": ".status.upgradedReplicas"}"#,
    printcolumn = r#"{"name": "READY", "type": "integer", "jsonPath": ".status.upgradedReadyReplicas"}"#,
    printcolumn = r#"{"name": "BATCH-STATE", "type": "string", "jsonPath": ".status.batchRollingState"}"#,
    printcolumn = r#"{"name": "ROLLING-STATE", "type": "string", "jsonPath": ".status.rollingState"}"#,
    printcolumn = r#"{"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}"#
)]
#[serde(rename_all = "camelCase", default)]
pub struct RolloutSpec {
    /// The rollgit app the component belongs to.
    pub app: String,
    /// The KubeVela Application (or AppRollout) it comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// Component name.
    pub component: String,
    /// apiVersion and kind of the component's workload.
    pub workload: WorkloadRef,
    /// The component revision (ControllerRevision) to run.
    pub target_revision: String,
    /// Explicit source revision (AppRollout).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    /// Pods wanted.
    #[schemars(range(min = 0))]
    pub target_size: i64,
    /// Batches and hold points.
    pub rollout_plan: PlanSpec,
    /// Seconds a batch may take to become ready.
    #[schemars(range(min = 1), extend("default" = 600))]
    pub progress_deadline_seconds: i64,
    /// The Git commit that set this spec.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The repository (rollgit's name for it) the app comes from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    /// The app's directory in the repository.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// The workload kind a Rollout drives.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRef {
    /// `apps/v1`, `apps.kruise.io/v1alpha1`, ...
    pub api_version: String,
    /// `Deployment`, `CloneSet`, `StatefulSet`.
    pub kind: String,
}

/// One batch of a rollout plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct BatchSpec {
    /// Pods in the batch (int, or percent of the rollout size).
    #[schemars(schema_with = "int_or_string")]
    pub replicas: IntOrString,
}

/// A rollout plan as Git writes it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase", default)]
pub struct PlanSpec {
    /// `IncreaseFirst` (default) or `DecreaseFirst`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout_strategy: Option<String>,
    /// Batches.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rollout_batches: Vec<BatchSpec>,
    /// Hold after this batch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch_partition: Option<i64>,
    /// Nothing moves while true.
    // Always written, so that the plan is never an empty map: server-side apply (Kubernetes
    // 1.33) turns a map it empties into `null`, which the schema refuses (a scale-only step
    // after a batched one would send `rolloutPlan: {}`).
    pub paused: bool,
    /// Pods that may be unready when a batch is judged ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "optional_int_or_string")]
    pub max_unavailable: Option<IntOrString>,
}

/// The status of a [`Rollout`]: the state of KubeVela's rollout state machine as rollgit
/// records it between passes (ROLLOUT-SEMANTICS C.3), what the record stage wrote to Git, and
/// the generation it describes. Optional fields are written as `null` when unset, so that a
/// merge patch of the whole status clears them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RolloutStatus {
    /// locatingTargetApp, verifyingSpec, initializing, rollingInBatches, finalising,
    /// rolloutFailing, rolloutSucceed, rolloutAbandoning or rolloutFailed.
    #[serde(default)]
    pub rolling_state: String,
    /// batchInitializing, batchInRolling, batchVerifying, batchVerifyFailed, batchFinalizing
    /// or batchReady.
    #[serde(default)]
    pub batch_rolling_state: String,
    /// The batch in progress (0-based).
    #[serde(default)]
    pub current_batch: i64,
    /// Pods of the target revision.
    #[serde(default)]
    pub upgraded_replicas: i64,
    /// Ready pods of the target revision.
    #[serde(default)]
    pub upgraded_ready_replicas: i64,
    /// Size of the current run (−1 before one starts).
    #[serde(default)]
    pub rollout_target_size: i64,
    /// Target of the current run.
    #[serde(default)]
    pub target_revision: Option<String>,
    /// Source of the current run.
    #[serde(default)]
    pub source_revision: Option<String>,
    /// Size the run started from (scale runs).
    #[serde(default)]
    pub original_size: i64,
    /// The current run is a scale of one revision.
    #[serde(default)]
    pub scale: bool,
    /// The current run rolls back a failed revision.
    #[serde(default)]
    pub rolling_back: bool,
    /// The last revision rolled out completely.
    #[serde(default)]
    pub stable_revision: Option<String>,
    /// The commit whose spec rolled out `stableRevision`.
    #[serde(default)]
    pub stable_commit: Option<String>,
    /// A revision that failed; not run again while Git asks for it.
    #[serde(default)]
    pub failed_revision: Option<String>,
    /// The commit whose spec asked for `failedRevision`.
    #[serde(default)]
    pub failed_commit: Option<String>,
    /// When the current batch started (RFC 3339).
    #[serde(default)]
    pub batch_started_at: Option<String>,
    /// The latest condition per type.
    #[serde(default)]
    pub conditions: Vec<Condition>,
    /// The last rollback decided.
    #[serde(default)]
    pub rollback: Option<RollbackStatus>,
    /// The generation of the spec this status describes.
    #[serde(default)]
    pub observed_generation: Option<i64>,
    /// KubeVela's name of `stableRevision`.
    #[serde(default)]
    pub last_target_revision: Option<String>,
    /// What the record stage wrote to Git about the last rollback.
    #[serde(default)]
    pub record: Option<RecordStatus>,
}

/// A rollback the rollout stage decided.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RollbackStatus {
    /// The revision that failed.
    pub from: String,
    /// The last good revision, rolled back to.
    pub to: String,
    /// Why (batch, ready counts, pods).
    #[serde(default)]
    pub reason: String,
    /// True once the workloads run `to` again.
    #[serde(default)]
    pub done: bool,
}

/// What the record stage wrote to Git about a rollback (`status.record` of a Rollout).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecordStatus {
    /// `Reverted`, `Stalled` or `NotRecorded`.
    pub state: String,
    /// The revision that failed.
    #[serde(default)]
    pub from: String,
    /// The revision rolled back to.
    #[serde(default)]
    pub to: String,
    /// The commit of the spec in effect when the rollback started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_commit: Option<String>,
    /// The revert commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// The commits it reverts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reverts: Vec<String>,
    /// The paths whose revert conflicts (`Stalled`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    /// What happened.
    #[serde(default)]
    pub message: String,
}

/// A status as read from the cluster: parsed, or kept as written with the reason it does not
/// parse (so one bad object never stops a watch).
#[derive(Debug, Clone, PartialEq)]
pub enum Checked<T> {
    /// It parses.
    Valid(T),
    /// It does not: the value as written and the parser's message.
    Invalid {
        /// The value as written.
        value: serde_json::Value,
        /// Why it does not parse.
        error: String,
    },
}

impl<T> Checked<T> {
    /// The parsed value, or the parser's message.
    pub fn valid(&self) -> Result<&T, &str> {
        match self {
            Checked::Valid(t) => Ok(t),
            Checked::Invalid { error, .. } => Err(error),
        }
    }
}

impl<T: Serialize> Serialize for Checked<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Checked::Valid(t) => t.serialize(s),
            Checked::Invalid { value, .. } => value.serialize(s),
        }
    }
}

impl<'de, T: serde::de::DeserializeOwned> Deserialize<'de> for Checked<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        Ok(match serde_json::from_value::<T>(value.clone()) {
            Ok(t) => Checked::Valid(t),
            Err(e) => Checked::Invalid {
                value,
                error: e.to_string(),
            },
        })
    }
}

impl<T: JsonSchema> JsonSchema for Checked<T> {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        T::schema_name()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }

    fn inline_schema() -> bool {
        T::inline_schema()
    }
}

fn int_or_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-int-or-string": true })
}

fn optional_int_or_string(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({ "x-kubernetes-int-or-string": true, "nullable": true })
}

// ---------------------------------------------------------------------------------------------
// The CustomResourceDefinitions

/// Errors of installing the CRDs.
#[derive(Debug, thiserror::Error)]
pub enum CrdError {
    /// Applying a CRD failed.
    #[error("applying CRD {crd}")]
    Apply {
        crd: String,
        #[source]
        source: kube::Error,
    },
    /// A CRD did not become Established in time.
    #[error("CRD {crd} not Established within {}s", CRD_TIMEOUT.as_secs())]
    NotEstablished { crd: String },
    /// Watching a CRD failed.
    #[error("waiting for CRD {crd} to be Established")]
    Wait {
        crd: String,
        #[source]
        source: kube::runtime::wait::Error,
    },
    /// Reading an installed CRD failed.
    #[error("reading CRD {crd}")]
    Read {
        crd: String,
        #[source]
        source: kube::Error,
    },
    /// A CRD is not installed and rollgit does not install it.
    #[error(
        "CRD {crd} is not installed ({why}); an admin installs it with `rollgit crds | kubectl apply -f -` (or `kubectl apply -k deploy/`)"
    )]
    Missing { crd: String, why: &'static str },
    /// An installed CRD is older than this rollgit.
    #[error(
        "CRD {crd} is older than this rollgit ({why}): it lacks {}; an admin updates it with `rollgit crds | kubectl apply --server-side -f -`",
        missing.join(", ")
    )]
    Outdated {
        crd: String,
        why: &'static str,
        missing: Vec<String>,
    },
    /// An installed CRD is not Established.
    #[error("CRD {crd} is installed but not Established")]
    InstalledNotEstablished { crd: String },
}

/// rollgit's CRDs, as generated from the types. The Application has no status subresource
/// (as Argo CD's Application): its status is rollgit's record of the app, written with the
/// object, so that a new app's status object is created in one request
/// (`crate::record::status`).
pub fn crds() -> Vec<CustomResourceDefinition> {
    use kube::CustomResourceExt;
    let mut app = Application::crd();
    for v in &mut app.spec.versions {
        v.subresources = None;
    }
    vec![app, Rollout::crd()]
}

/// Tells the status writer whether the Application CRD `crd`, as installed, has a status
/// subresource (an older rollgit's CRD, or one an admin keeps); other CRDs are ignored.
fn note_status_subresource(crd: &CustomResourceDefinition) {
    if crd.metadata.name.as_deref() == Some(APPLICATIONS_CRD) {
        set_status_subresource(crd_has_status_subresource(crd));
    }
}

/// Whether the installed Application CRD is believed to have a status subresource (an older
/// rollgit's CRD). Only decides which request a status write tries first: every write checks
/// its response (`crate::record::status::satisfies`) and corrects the belief.
static STATUS_SUBRESOURCE: AtomicBool = AtomicBool::new(false);

/// Records whether the installed Application CRD has a status subresource (the CRD check at
/// start knows; a status write that finds otherwise corrects it).
pub fn set_status_subresource(has: bool) {
    if STATUS_SUBRESOURCE.swap(has, Ordering::Relaxed) != has && has {
        tracing::info!(
            "the installed CRD applications.rollgit.dev has a status subresource (an older rollgit's): \
             a new app's status object takes two requests, and rollgit needs `patch` on applications/status; \
             `rollgit crds | kubectl apply --server-side --force-conflicts -f -` updates it"
        );
    }
}

/// Whether the installed Application CRD is believed to have a status subresource.
pub fn status_subresource() -> bool {
    STATUS_SUBRESOURCE.load(Ordering::Relaxed)
}

/// Whether the CRD `crd` (applications.rollgit.dev as installed) has a status subresource in
/// any version.
pub fn crd_has_status_subresource(crd: &CustomResourceDefinition) -> bool {
    crd.spec
        .versions
        .iter()
        .any(|v| v.subresources.as_ref().is_some_and(|s| s.status.is_some()))
}

/// The name of the Application CRD.
pub const APPLICATIONS_CRD: &str = "applications.rollgit.dev";

/// The file a CRD is kept in under `deploy/crds/`.
pub fn crd_file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("crd"))
}

/// A CRD as the YAML kept in `deploy/crds/`: a header saying where it comes from, then the
/// object.
pub fn crd_yaml(crd: &CustomResourceDefinition) -> String {
    let body = serde_saphyr::to_string(crd).unwrap_or_else(|e| format!("# {e}\n"));
    format!(
        "# Generated from the Rust types in src/k8s/crds.rs (`rollgit crds` prints it); do not edit.\n\
         # Installed by the daemon at start; apply this file yourself when rollgit runs without\n\
         # permission to create CRDs.\n{body}"
    )
}

/// Installs (server-side applies) rollgit's CRDs and waits, bounded, until they are
/// Established; when `install` is false, or the API server forbids rollgit to change CRDs,
/// only checks that the installed ones are Established and hold every version and field this
/// rollgit writes ([`check_crds`]).
pub async fn ensure_crds_with(client: &kube::Client, install: bool) -> Result<(), CrdError> {
    if !install {
        return check_crds(client, "--install-crds=false").await;
    }
    match ensure_crds(client).await {
        Err(CrdError::Apply {
            source: kube::Error::Api(s),
            ..
        }) if s.code == 403 => {
            tracing::info!(reason = %s.message, "rollgit may not change CRDs; checking the installed ones");
            check_crds(client, "rollgit may not patch CRDs").await
        }
        other => other,
    }
}

/// Checks rollgit's installed CRDs: each exists, is Established, serves every version this
/// rollgit writes, and its schema has every field of the types (a CRD of an older rollgit
/// would drop the new fields). Needs only `get` on the two CRDs.
pub async fn check_crds(client: &kube::Client, why: &'static str) -> Result<(), CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for want in crds() {
        let crd = want.metadata.name.clone().unwrap_or_default();
        let have = api.get_opt(&crd).await.map_err(|source| CrdError::Read {
            crd: crd.clone(),
            source,
        })?;
        let Some(have) = have else {
            return Err(CrdError::Missing { crd, why });
        };
        note_status_subresource(&have);
        let missing = missing_in(&want, &have);
        if !missing.is_empty() {
            return Err(CrdError::Outdated { crd, why, missing });
        }
        if !conditions::is_crd_established().matches_object(Some(&have)) {
            return Err(CrdError::InstalledNotEstablished { crd });
        }
    }
    Ok(())
}

/// What `have` lacks of `want`: versions not served (`version v1alpha1`) and schema fields
/// (`field spec.rolloutPlan`), at most 10.
pub fn missing_in(want: &CustomResourceDefinition, have: &CustomResourceDefinition) -> Vec<String> {
    let mut out = Vec::new();
    for v in &want.spec.versions {
        let Some(hv) = have
            .spec
            .versions
            .iter()
            .find(|h| h.name == v.name && h.served)
        else {
            out.push(format!("version {}", v.name));
            continue;
        };
        let schema = |x: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinitionVersion| {
            x.schema
                .as_ref()
                .and_then(|s| s.open_api_v3_schema.as_ref())
                .and_then(|s| serde_json::to_value(s).ok())
                .unwrap_or(serde_json::Value::Null)
        };
        missing_fields(&schema(v), &schema(hv), "", &mut out);
    }
    out.truncate(10);
    out
}

fn missing_fields(
    want: &serde_json::Value,
    have: &serde_json::Value,
    at: &str,
    out: &mut Vec<String>,
) {
    if have.get("x-kubernetes-preserve-unknown-fields") == Some(&serde_json::Value::Bool(true))
        && have.get("properties").is_none()
    {
        return;
    }
    if let Some(props) = want.get("properties").and_then(|p| p.as_object()) {
        for (name, sub) in props {
            let path = if at.is_empty() {
                name.clone()
            } else {
                format!("{at}.{name}")
            };
            match have.get("properties").and_then(|p| p.get(name)) {
                Some(h) => missing_fields(sub, h, &path, out),
                None => {
                    // apiVersion, kind and metadata are the API server's.
                    if !(at.is_empty()
                        && matches!(name.as_str(), "apiVersion" | "kind" | "metadata"))
                    {
                        out.push(format!("field {path}"));
                    }
                }
            }
        }
    }
    for key in ["items", "additionalProperties"] {
        if let (Some(w), Some(h)) = (want.get(key), have.get(key)) {
            missing_fields(w, h, &format!("{at}[]"), out);
        }
    }
}

/// Installs (server-side applies) rollgit's CRDs and waits, bounded, until they are
/// Established.
pub async fn ensure_crds(client: &kube::Client) -> Result<(), CrdError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in crds() {
        let name = crd.metadata.name.clone().unwrap_or_default();
        let mut crd = crd;
        crd.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert(MANAGED_BY_LABEL.into(), MANAGED_BY.into());
        let installed = api
            .patch(
                &name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(&crd),
            )
            .await
            .map_err(|source| CrdError::Apply {
                crd: name.clone(),
                source,
            })?;
        // A subresource another field manager installed stays (server-side apply removes
        // only rollgit's own fields).
        note_status_subresource(&installed);
        match tokio::time::timeout(
            CRD_TIMEOUT,
            await_condition(api.clone(), &name, conditions::is_crd_established()),
        )
        .await
        {
            Ok(Ok(_)) => tracing::debug!(crd = %name, "CRD established"),
            Ok(Err(source)) => return Err(CrdError::Wait { crd: name, source }),
            Err(_) => return Err(CrdError::NotEstablished { crd: name }),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `deploy/crds/` holds exactly what the types generate. To regenerate after changing a
    /// type: `ROLLGIT_WRITE_CRDS=1 cargo test -p rollgit --lib crds_in_deploy`.
    #[test]
    fn crds_in_deploy_match_the_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/crds");
        for crd in crds() {
            let path = dir.join(crd_file_name(&crd));
            let want = crd_yaml(&crd);
            if std::env::var_os("ROLLGIT_WRITE_CRDS").is_some() {
                std::fs::write(&path, &want).expect("write the CRD file");
            }
            let have = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                have == want,
                "{} differs from the types in src/k8s/crds.rs; regenerate with ROLLGIT_WRITE_CRDS=1 cargo test -p rollgit --lib crds_in_deploy",
                path.display()
            );
        }
    }

    #[test]
    fn an_older_crd_names_what_it_lacks() {
        let want = crds().remove(1);
        assert!(missing_in(&want, &want).is_empty());
        let mut old = serde_json::to_value(&want).expect("a CRD serializes");
        let spec = &mut old["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
            ["properties"];
        let removed = spec
            .as_object_mut()
            .and_then(|m| {
                m.keys()
                    .next()
                    .cloned()
                    .and_then(|k| m.remove(&k).map(|_| k))
            })
            .expect("the Rollout spec has fields");
        let old: CustomResourceDefinition = serde_json::from_value(old).expect("still a CRD");
        assert_eq!(missing_in(&want, &old), [format!("field spec.{removed}")]);
        let mut unserved = want.clone();
        unserved.spec.versions[0].served = false;
        assert_eq!(
            missing_in(&want, &unserved),
            [format!("version {}", want.spec.versions[0].name)]
        );
    }

    #[test]
    fn only_the_rollout_has_a_status_subresource() {
        let crds = crds();
        assert_eq!(crds[0].metadata.name.as_deref(), Some(APPLICATIONS_CRD));
        assert!(
            !crd_has_status_subresource(&crds[0]),
            "the Application's status is written with it"
        );
        assert!(
            crd_has_status_subresource(&crds[1]),
            "the Rollout's status is the executor's, written to rollouts/status"
        );
        use kube::CustomResourceExt;
        assert!(
            crd_has_status_subresource(&Application::crd()),
            "an older rollgit's Application CRD (what kube's derive makes) has one"
        );
    }

    #[test]
    fn printer_columns_are_the_seed_columns() {
        let columns = |crd: &CustomResourceDefinition| -> Vec<String> {
            crd.spec.versions[0]
                .additional_printer_columns
                .iter()
                .flatten()
                .map(|c| c.name.clone())
                .collect()
        };
        let crds = crds();
        assert_eq!(
            columns(&crds[0]),
            ["COMPONENT", "TYPE", "PHASE", "HEALTHY", "STATUS", "AGE"]
        );
        assert_eq!(
            crds[0].spec.names.short_names,
            Some(vec!["app".into(), "rga".into()])
        );
        assert_eq!(
            columns(&crds[1]),
            [
                "TARGET",
                "UPGRADED",
                "READY",
                "BATCH-STATE",
                "ROLLING-STATE",
                "AGE"
            ]
        );
    }

    #[test]
    fn an_unreadable_status_is_kept_with_its_reason() {
        let v = serde_json::json!({"currentBatch": "two"});
        let c: Checked<RolloutStatus> = serde_json::from_value(v.clone()).expect("never fails");
        match &c {
            Checked::Invalid { value, error } => {
                assert_eq!(value, &v);
                assert!(
                    error.contains("currentBatch") || error.contains("invalid type"),
                    "{error}"
                );
            }
            Checked::Valid(_) => panic!("a string batch must not parse"),
        }
        assert_eq!(serde_json::to_value(&c).expect("serializes"), v);
    }
}
