//! `rollgit promotion status APP` (each stage of the pipeline: its app, deployed commit,
//! where the promotion to the next stage stands, its pull request, why it waits) and
//! `rollgit promote-stage APP --to STAGE` (open the pull request now, skipping the soak,
//! recorded as manual), both through the stages' `applications.rollgit.dev` objects, where
//! the daemon keeps `status.promotion`.

use super::KubeArgs;
use anyhow::Context;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use rollgit::k8s::crds::{ApplicationStatus, PromotionStatus};
use rollgit::promote::PROMOTE_REQUEST_ANNOTATION;
use serde_json::json;
use std::process::ExitCode;
use std::time::Duration;

/// `rollgit promotion ...`.
#[derive(clap::Subcommand, Debug)]
pub enum PromotionCommand {
    /// Each stage of an app's pipeline: deployed commit, pending pull request, why it waits.
    Status(StatusArgs),
}

/// Arguments of `rollgit promotion status`.
#[derive(clap::Args, Debug)]
pub struct StatusArgs {
    /// The pipeline (`promotion[].app`).
    app: String,
    /// Namespace of the stages' status objects.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Output format: a table, or one JSON/YAML document `{pipeline, stages: [...]}`.
    #[arg(short = 'o', long = "output", value_enum, default_value = "table")]
    output: super::Output,
    #[command(flatten)]
    kube: KubeArgs,
}

/// Arguments of `rollgit promote-stage`.
#[derive(clap::Args, Debug)]
pub struct PromoteStageArgs {
    /// The pipeline (`promotion[].app`).
    app: String,
    /// The stage to open the pull request into.
    #[arg(long)]
    to: String,
    /// Namespace of the stages' status objects.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// How long to wait for the daemon (0: do not wait).
    #[arg(long, default_value = "1m", value_parser = rollgit::config::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    kube: KubeArgs,
}

/// A stage's app and its promotion record.
struct Step {
    app: String,
    status: ApplicationStatus,
    rec: PromotionStatus,
}

/// The steps of pipeline `pipeline`, in pipeline order (pure).
fn steps_of(apps: Vec<(String, ApplicationStatus)>, pipeline: &str) -> Vec<Step> {
    let mut steps: Vec<Step> = apps
        .into_iter()
        .filter_map(|(app, status)| {
            let rec = status.promotion.clone()?;
            (rec.pipeline == pipeline).then_some(Step { app, status, rec })
        })
        .collect();
    // The first stage is the one no step leads to; then follow `to`.
    let mut ordered = Vec::new();
    let mut next = steps
        .iter()
        .position(|s| !steps.iter().any(|o| o.rec.to == s.rec.from));
    while let Some(i) = next {
        let s = steps.remove(i);
        let to = s.rec.to.clone();
        ordered.push(s);
        next = steps.iter().position(|o| o.rec.from == to);
    }
    ordered.extend(steps);
    ordered
}

fn short(c: Option<&str>) -> String {
    c.map(|c| c.get(..7).unwrap_or(c).to_string())
        .unwrap_or_else(|| "-".into())
}

/// The table `rollgit promotion status` prints (pure); `last` is the last stage's app status,
/// when it is in the same namespace.
fn table(steps: &[Step], last: Option<&ApplicationStatus>) -> String {
    let mut rows = vec![vec![
        "STAGE".to_string(),
        "APP".into(),
        "DEPLOYED".into(),
        "NEXT".into(),
        "STATE".into(),
        "PULL-REQUEST".into(),
        "WHY".into(),
    ]];
    for s in steps {
        let pr = s
            .rec
            .pull_request
            .as_ref()
            .map(|p| {
                format!(
                    "#{} {}{}",
                    p.number,
                    p.url,
                    if p.manual { " (manual)" } else { "" }
                )
            })
            .unwrap_or_else(|| "-".into());
        rows.push(vec![
            s.rec.from.clone(),
            s.app.clone(),
            short(s.status.last_applied_commit.as_deref()),
            s.rec.to.clone(),
            s.rec.state.clone(),
            pr,
            s.rec.message.clone(),
        ]);
    }
    if let Some(step) = steps.last() {
        rows.push(vec![
            step.rec.to.clone(),
            step.rec.to_app.clone().unwrap_or_else(|| "-".into()),
            short(last.and_then(|s| s.last_applied_commit.as_deref())),
            "-".into(),
            "-".into(),
            "-".into(),
            "last stage".into(),
        ]);
    }
    super::table::format_table(&rows)
}

/// The document `rollgit promotion status -o json|yaml` prints (pure): each stage with its
/// app, deployed commit and the record of its promotion to the next (`null` for the last).
fn document(pipeline: &str, steps: &[Step], last: Option<&ApplicationStatus>) -> serde_json::Value {
    let mut stages: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| {
            json!({
                "stage": s.rec.from,
                "app": s.app,
                "deployedCommit": s.status.last_applied_commit,
                "promotion": s.rec,
            })
        })
        .collect();
    if let Some(step) = steps.last() {
        stages.push(json!({
            "stage": step.rec.to,
            "app": step.rec.to_app,
            "deployedCommit": last.and_then(|l| l.last_applied_commit.clone()),
            "promotion": null,
        }));
    }
    json!({"pipeline": pipeline, "stages": stages})
}

async fn read(
    kube: &KubeArgs,
    namespace: &str,
) -> anyhow::Result<(Api<DynamicObject>, Vec<(String, ApplicationStatus)>)> {
    let client = kube.client().await?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client.clone(),
        namespace,
        &rollgit::record::status::application_resource(),
    );
    let apps = rollgit::record::status::list_applications(&client, namespace)
        .await
        .context("reading the apps' status objects")?
        .into_iter()
        .filter_map(|(name, o)| {
            let status = serde_json::from_value(o.data.get("status")?.clone()).ok()?;
            Some((name, status))
        })
        .collect();
    Ok((api, apps))
}

/// `rollgit promotion status`.
pub async fn status(args: StatusArgs) -> anyhow::Result<ExitCode> {
    let (_, apps) = read(&args.kube, &args.namespace).await?;
    let last_app = apps.clone();
    let steps = steps_of(apps, &args.app);
    if steps.is_empty() {
        anyhow::bail!(
            "no promotion of pipeline {:?} recorded in namespace {} (is it in the configuration's promotion, and is the daemon running?)",
            args.app,
            args.namespace
        );
    }
    let last = steps
        .last()
        .and_then(|s| s.rec.to_app.as_ref())
        .and_then(|app| last_app.iter().find(|(n, _)| n == app))
        .map(|(_, status)| status);
    if args.output.is_document() {
        args.output.print(&document(&args.app, &steps, last))?;
    } else {
        print!("{}", table(&steps, last));
    }
    Ok(ExitCode::SUCCESS)
}

/// `rollgit promote-stage`.
pub async fn promote_stage(args: PromoteStageArgs) -> anyhow::Result<ExitCode> {
    let (api, apps) = read(&args.kube, &args.namespace).await?;
    let steps = steps_of(apps, &args.app);
    let step = steps
        .iter()
        .find(|s| s.rec.to == args.to)
        .with_context(|| {
            let stages: Vec<&str> = steps.iter().map(|s| s.rec.to.as_str()).collect();
            format!(
                "pipeline {:?} has no recorded step into stage {:?} (steps into: {})",
                args.app,
                args.to,
                stages.join(", ")
            )
        })?;
    let token = format!(
        "{}@{}",
        args.to,
        k8s_openapi::jiff::Timestamp::now().as_nanosecond()
    );
    api.patch(
        &step.app,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {PROMOTE_REQUEST_ANNOTATION: token}}})),
    )
    .await
    .context("asking the daemon to promote")?;
    if args.timeout.is_zero() {
        println!("promotion of {} to {} requested", args.app, args.to);
        return Ok(ExitCode::SUCCESS);
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        let o = api
            .get(&step.app)
            .await
            .context("reading the stage's status")?;
        let rec: Option<PromotionStatus> = o
            .data
            .pointer("/status/promotion")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        if let Some(rec) = rec.filter(|r| r.last_request.as_deref() == Some(token.as_str())) {
            return Ok(match (&rec.pull_request, rec.state.as_str()) {
                (Some(pr), _) => {
                    println!(
                        "{} → {}: pull request #{} {} ({})",
                        rec.from, rec.to, pr.number, pr.url, rec.message
                    );
                    ExitCode::SUCCESS
                }
                (None, "promoted") => {
                    println!("{} → {}: {}", rec.from, rec.to, rec.message);
                    ExitCode::SUCCESS
                }
                (None, _) => {
                    eprintln!("{} → {}: {} ({})", rec.from, rec.to, rec.state, rec.message);
                    ExitCode::from(1)
                }
            });
        }
        if tokio::time::Instant::now() >= deadline {
            eprintln!(
                "timed out after {} waiting for rollgit to promote {} to {} (is the daemon running?)",
                humantime::format_duration(args.timeout),
                args.app,
                args.to
            );
            return Ok(ExitCode::from(3));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(from: &str, to: &str, state: &str) -> (String, ApplicationStatus) {
        (
            format!("envs-{from}-shop"),
            ApplicationStatus {
                last_applied_commit: Some("0123456789".into()),
                promotion: Some(PromotionStatus {
                    pipeline: "shop".into(),
                    from: from.into(),
                    to: to.into(),
                    state: state.into(),
                    message: "why".into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
        )
    }

    #[test]
    fn steps_are_shown_in_pipeline_order() {
        let apps = vec![
            app("staging", "prod", "soaking"),
            app("dev", "staging", "open"),
            ("other".to_string(), ApplicationStatus::default()),
        ];
        let steps = steps_of(apps, "shop");
        let order: Vec<&str> = steps.iter().map(|s| s.rec.from.as_str()).collect();
        assert_eq!(order, ["dev", "staging"]);
        let t = table(&steps, None);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].starts_with("STAGE"), "{t}");
        assert!(lines[1].starts_with("dev"), "{t}");
        assert!(lines[3].starts_with("prod"), "{t}");
    }
}
