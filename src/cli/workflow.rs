//! `rollgit workflow resume|suspend|terminate|restart APP`: act on an app's workflow run (as
//! `vela workflow` and `kubectl amc workflow` do) through the Kubernetes API, so it works from
//! any machine with the kubeconfig: the command, with the user the cluster authenticates
//! (a SelfSubjectReview), goes in the annotation `rollgit.dev/workflow-request` of the app's
//! `applications.rollgit.dev` object; the daemon carries it out, records who and when in
//! `status.workflow.lastCommand` and an Event, and the command waits for that.

use super::KubeArgs;
use anyhow::Context;
use futures::StreamExt;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use kube::api::{Api, DynamicObject, Patch, PatchParams, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use rollgit::daemon::requests::{WORKFLOW_REQUESTED, WorkflowRequest};
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

/// `rollgit workflow ...`.
#[derive(clap::Subcommand, Debug)]
pub enum WorkflowCommand {
    /// Resume a suspended workflow: approve the deploy step waiting for approval, end a
    /// suspend step, lift a `suspend`.
    Resume(WorkflowArgs),
    /// Hold the workflow (running steps suspend) until `resume`.
    Suspend(WorkflowArgs),
    /// End the workflow; `resume` then refuses (use `restart`).
    Terminate(WorkflowArgs),
    /// Run the workflow again from its first step.
    Restart(WorkflowArgs),
}

/// Arguments of each `rollgit workflow` command.
#[derive(clap::Args, Debug)]
pub struct WorkflowArgs {
    /// The app.
    app: String,
    /// Namespace of the app's status object (default: the kubeconfig context's).
    #[arg(short, long)]
    namespace: Option<String>,
    /// `resume` only this step.
    #[arg(long)]
    step: Option<String>,
    /// How long to wait for the daemon (0: do not wait).
    #[arg(long, default_value = "1m", value_parser = rollgit::config::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    kube: KubeArgs,
}

/// Who the cluster says the kubeconfig's user is (`unknown` when it cannot say).
pub async fn whoami(client: &kube::Client) -> String {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    match api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
    {
        Ok(r) => r
            .status
            .and_then(|s| s.user_info)
            .and_then(|u| u.username)
            .unwrap_or_else(|| "unknown".into()),
        Err(e) => {
            tracing::debug!(error = %rollgit::error_chain(&e), "SelfSubjectReview failed");
            "unknown".into()
        }
    }
}

/// `rollgit workflow ...`.
pub async fn run(cmd: WorkflowCommand) -> anyhow::Result<ExitCode> {
    let (verb, args) = match cmd {
        WorkflowCommand::Resume(a) => ("resume", a),
        WorkflowCommand::Suspend(a) => ("suspend", a),
        WorkflowCommand::Terminate(a) => ("terminate", a),
        WorkflowCommand::Restart(a) => ("restart", a),
    };
    if args.step.is_some() && verb != "resume" {
        anyhow::bail!("--step is for resume only");
    }
    let client = args.kube.client().await?;
    let namespace = args
        .namespace
        .clone()
        .unwrap_or_else(|| client.default_namespace().to_string());
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        &namespace,
        &rollgit::record::status::application_resource(),
    );
    let app = api
        .get_opt(&args.app)
        .await
        .context("reading the app's status object")?
        .with_context(|| {
            format!(
                "no app named {:?} in namespace {namespace} (rollgit records each app it applies as applications.rollgit.dev)",
                args.app
            )
        })?;
    if app.data["status"]["workflow"].is_null() {
        anyhow::bail!(
            "app {} in namespace {namespace} has no workflow (no topology policy or workflow in Git)",
            args.app
        );
    }
    let user = whoami(&client).await;
    let token = format!("{}", k8s_openapi::jiff::Timestamp::now().as_nanosecond());
    let request = WorkflowRequest {
        token: token.clone(),
        command: verb.into(),
        step: args.step.clone(),
        user,
    };
    let value = serde_json::to_string(&request).context("encoding the request")?;
    api.patch(
        &args.app,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {WORKFLOW_REQUESTED: value}}})),
    )
    .await
    .context("asking the daemon")?;
    if args.timeout.is_zero() {
        println!("{verb} of workflow {} requested", args.app);
        return Ok(ExitCode::SUCCESS);
    }
    let cfg = watcher::Config::default().fields(&format!("metadata.name={}", args.app));
    let mut stream = watcher(api, cfg)
        .backoff(rollgit::k8s::WatchBackoff::default())
        .boxed();
    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        let ev = match tokio::time::timeout_at(deadline, stream.next()).await {
            Ok(Some(ev)) => ev,
            Ok(None) => break,
            Err(_) => {
                eprintln!(
                    "timed out after {} waiting for rollgit to {verb} the workflow of {} (is the daemon running?)",
                    humantime::format_duration(args.timeout),
                    args.app
                );
                return Ok(ExitCode::from(3));
            }
        };
        let o = match ev {
            Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %rollgit::error_chain(&e), "watching the app; retrying");
                continue;
            }
        };
        let wf = &o.data["status"]["workflow"];
        if wf["lastRequest"].as_str() != Some(token.as_str()) {
            continue;
        }
        return match wf["lastRequestError"].as_str().filter(|e| !e.is_empty()) {
            Some(e) => {
                eprintln!("cannot {verb} workflow {}: {e}", args.app);
                Ok(ExitCode::FAILURE)
            }
            None => {
                println!("Successfully {verb} workflow: {}", args.app);
                Ok(ExitCode::SUCCESS)
            }
        };
    }
    eprintln!("the watch of app {} ended", args.app);
    Ok(ExitCode::from(3))
}
