//! `rollgit sync APP`: ask the daemon, through the app's `applications.rollgit.dev` object, to
//! fetch and apply the app now (as `argocd app sync` or `flux reconcile` do), then wait for the
//! result. `--allow-mass-prune` lets a prune the daemon held back proceed. Exit 0 when the
//! app's commit is applied (or, for an app that left Git, its objects are pruned and its status
//! object deleted), 1 when it failed or a prune is still held, 3 when the daemon did not answer
//! within the timeout.

use super::KubeArgs;
use anyhow::Context;
use futures::StreamExt;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::runtime::{WatchStreamExt, watcher};
use rollgit::daemon::requests::{ALLOW_MASS_PRUNE, SYNC_REQUESTED};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::Duration;

/// Arguments of `rollgit sync`.
#[derive(clap::Args, Debug)]
pub struct SyncArgs {
    /// The app.
    app: String,
    /// Namespace of the app's status object.
    #[arg(short, long, default_value = "default")]
    namespace: String,
    /// Let a prune that would delete more than half of the app's objects (or all of them)
    /// proceed.
    #[arg(long)]
    allow_mass_prune: bool,
    /// How long to wait for the daemon (0: do not wait).
    #[arg(long, default_value = "5m", value_parser = rollgit::config::parse_duration)]
    timeout: Duration,
    #[command(flatten)]
    kube: KubeArgs,
}

/// The verdict on an app's status once the daemon handled the request (pure): exit code and
/// the line to print.
pub fn verdict(app: &str, status: &Value) -> (u8, String) {
    let phase = status["phase"].as_str().unwrap_or("-");
    let commit = status["lastAppliedCommit"]
        .as_str()
        .map(|c| c.get(..12).unwrap_or(c))
        .unwrap_or("-");
    let synced = status["conditions"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["type"] == "Synced"));
    let ok = synced.is_some_and(|c| c["status"] == "True");
    let why = synced
        .and_then(|c| c["message"].as_str())
        .filter(|m| !m.is_empty())
        .or_else(|| status["message"].as_str())
        .unwrap_or("");
    if ok {
        (0, format!("app {app} synced at {commit} ({phase})"))
    } else {
        (1, format!("app {app} not synced ({phase}): {why}"))
    }
}

/// `rollgit sync`.
pub async fn run(args: SyncArgs) -> anyhow::Result<ExitCode> {
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
    if rollgit::record::status::is_suspended(&live) {
        eprintln!(
            "app {} is suspended: rollgit does not sync it (`rollgit resume {}` syncs it again)",
            args.app, args.app
        );
        return Ok(ExitCode::from(1));
    }
    let token = format!("{}", k8s_openapi::jiff::Timestamp::now().as_nanosecond());
    let mut annotations = json!({ SYNC_REQUESTED: token });
    if args.allow_mass_prune {
        annotations[ALLOW_MASS_PRUNE] = json!(token);
    }
    api.patch(
        &args.app,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": annotations}})),
    )
    .await
    .context("asking the daemon to sync")?;
    if args.timeout.is_zero() {
        println!("sync of app {} requested", args.app);
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
                    "timed out after {} waiting for rollgit to sync app {} (is the daemon running?)",
                    humantime::format_duration(args.timeout),
                    args.app
                );
                return Ok(ExitCode::from(3));
            }
        };
        let o = match ev {
            Ok(watcher::Event::Apply(o)) | Ok(watcher::Event::InitApply(o)) => o,
            // The daemon deletes the status object of an app that left Git once what it
            // applied is pruned (`--allow-mass-prune` on a held prune).
            Ok(watcher::Event::Delete(_)) => {
                println!(
                    "app {} left Git: what it applied is pruned and its status object deleted",
                    args.app
                );
                return Ok(ExitCode::SUCCESS);
            }
            Ok(_) => continue,
            Err(e) => {
                tracing::warn!(error = %rollgit::error_chain(&e), "watching the app; retrying");
                continue;
            }
        };
        let status = &o.data["status"];
        if status["lastSyncRequest"].as_str() == Some(token.as_str()) {
            let (code, line) = verdict(&args.app, status);
            if code == 0 {
                println!("{line}");
            } else {
                eprintln!("{line}");
            }
            return Ok(ExitCode::from(code));
        }
    }
    Ok(ExitCode::from(3))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_table() {
        let synced = json!({"phase": "running", "lastAppliedCommit": "0123456789abcdef",
            "conditions": [{"type": "Synced", "status": "True", "reason": "Applied"}]});
        let held = json!({"phase": "running", "message": "prune held: ...",
            "conditions": [{"type": "Synced", "status": "False", "reason": "PruneHeld",
                "message": "a prune of 3 of the app's 4 objects waits"}]});
        let failed = json!({"phase": "failed", "message": "commit x rejected: a.yaml:3: bad",
            "conditions": [{"type": "Synced", "status": "False", "reason": "SyncFailed",
                "message": "a.yaml:3: bad"}]});
        let cases = [
            (
                "synced",
                synced,
                0,
                "app shop synced at 0123456789ab (running)",
            ),
            (
                "held",
                held,
                1,
                "app shop not synced (running): a prune of 3 of the app's 4 objects waits",
            ),
            (
                "failed",
                failed,
                1,
                "app shop not synced (failed): a.yaml:3: bad",
            ),
        ];
        for (name, status, code, line) in cases {
            assert_eq!(verdict("shop", &status), (code, line.to_string()), "{name}");
        }
    }
}
