//! `rollgit suspend APP` / `rollgit resume APP`: set or clear `spec.suspend` on the app's
//! `applications.rollgit.dev` object (through the Kubernetes API, so from any machine with a
//! kubeconfig, as `flux suspend`/`flux resume`), then wait for the daemon to acknowledge: a
//! suspended app shows PHASE `suspended`; a resumed one is synced at once. Exit 0 done, 1 the
//! resumed app did not sync (the reason is printed), 3 the daemon did not answer in time.

use super::KubeArgs;
use anyhow::Context;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::Duration;

/// The field manager of `rollgit suspend`/`resume` (the daemon's own writes never touch
/// `spec.suspend`).
pub const SUSPEND_FIELD_MANAGER: &str = "rollgit-suspend";

/// Arguments of `rollgit suspend` and `rollgit resume`.
#[derive(clap::Args, Debug)]
pub struct SuspendArgs {
    /// The app.
    app: String,
    /// Namespace of the app's status object.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// How long to wait for the daemon to acknowledge (0: do not wait).
    #[arg(long, default_value = "1m", value_parser = rollgit::config::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    kube: KubeArgs,
}

/// Whether the daemon acknowledged the change on this status (pure): a suspension once the
/// phase is `suspended`; a resumption once it is not.
pub fn acknowledged(suspend: bool, status: &Value) -> bool {
    let suspended = status["phase"].as_str() == Some("suspended");
    suspended == suspend
}

/// `rollgit suspend` (`suspend: true`) and `rollgit resume` (`false`).
pub async fn run(args: SuspendArgs, suspend: bool) -> anyhow::Result<ExitCode> {
    let client = args.kube.client().await?;
    let api: Api<DynamicObject> = Api::namespaced_with(
        client,
        &args.namespace,
        &rollgit::record::status::application_resource(),
    );
    let live = api
        .get_opt(&args.app)
        .await
        .context("reading the app's status object")?
        .with_context(|| {
            format!(
                "no app named {:?} in namespace {} (rollgit records each app it applies as applications.rollgit.dev)",
                args.app, args.namespace
            )
        })?;
    let word = if suspend { "suspended" } else { "resumed" };
    if rollgit::record::status::is_suspended(&live) == suspend
        && acknowledged(suspend, &live.data["status"])
    {
        println!("app {} is already {word}", args.app);
        return Ok(ExitCode::SUCCESS);
    }
    // `null` removes the field: a resumed app's spec is what rollgit wrote.
    let value = if suspend { json!(true) } else { Value::Null };
    api.patch(
        &args.app,
        &PatchParams {
            field_manager: Some(SUSPEND_FIELD_MANAGER.into()),
            ..Default::default()
        },
        &Patch::Merge(json!({"spec": {"suspend": value}})),
    )
    .await
    .with_context(|| format!("setting spec.suspend of app {}", args.app))?;
    if args.timeout.is_zero() {
        println!("app {} {word} (not waiting for the daemon)", args.app);
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
            Err(_) => break,
        };
        let o = match ev {
            Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %rollgit::error_chain(&e), "watching the app; retrying");
                continue;
            }
        };
        let status = &o.data["status"];
        if !acknowledged(suspend, status) {
            continue;
        }
        if suspend {
            println!(
                "app {} suspended: rollgit neither applies its commits nor corrects its drift until `rollgit resume {}`",
                args.app, args.app
            );
            return Ok(ExitCode::SUCCESS);
        }
        let (code, line) = super::sync::verdict(&args.app, status);
        if code == 0 {
            println!("app {} resumed; {line}", args.app);
        } else {
            eprintln!("app {} resumed; {line}", args.app);
        }
        return Ok(ExitCode::from(code));
    }
    eprintln!(
        "timed out after {} waiting for rollgit to acknowledge that app {} is {word} (is the daemon running? spec.suspend is set, and it acts on it when it runs)",
        humantime::format_duration(args.timeout),
        args.app
    );
    Ok(ExitCode::from(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acknowledgements_table() {
        let suspended = json!({"phase": "suspended"});
        let running = json!({"phase": "running"});
        let cases = [
            ("suspend seen", true, &suspended, true),
            ("suspend not seen yet", true, &running, false),
            ("resume seen", false, &running, true),
            ("resume not seen yet", false, &suspended, false),
        ];
        for (name, suspend, status, want) in cases {
            assert_eq!(acknowledged(suspend, status), want, "{name}");
        }
    }
}
