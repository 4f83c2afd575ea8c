//! `rollgit rollout status APP` over every kind of rollout an app can have: its batched
//! `rollouts.rollgit.dev` Rollouts, its Argo Rollouts and its OpenKruise Rollouts (all
//! labelled `rollgit.dev/app=APP`; `COMPONENT` names one). An app with batched rollouts only
//! gets [`rollout_status`]'s per-batch view (bars on a terminal); any other mix is printed as
//! plain text, each Rollout with its own view ([`super::argo_view`], [`super::kruise_view`]),
//! and with `--watch` followed through watches on all of them (and the Argo ReplicaSets) until
//! each has succeeded or failed, the timeout passes, or the watches end.

use super::argo_view::{RsInfo, argo_verdict, argo_view, list_argo, replica_sets_of};
use super::kruise_view::{kruise_verdict, kruise_view, list_kruise, replicas_of};
use super::rollout_status::{
    EXIT_FAILED, EXIT_UNFINISHED, Observed, RolloutCliError, StatusOptions, Verdict, exit_code,
    rollout_status,
};
use futures::StreamExt;
use kube::api::{Api, DynamicObject, ListParams};
use kube::runtime::{WatchStreamExt, watcher};
use rollgit::k8s::{APP_LABEL, Rollout};
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Write;

/// What one look at the cluster found for the app.
#[derive(Default)]
struct Snapshot {
    batch: BTreeMap<String, Observed>,
    argo: BTreeMap<String, (Value, Vec<RsInfo>)>,
    kruise: BTreeMap<String, (Value, Option<i64>)>,
}

impl Snapshot {
    fn is_empty(&self) -> bool {
        self.batch.is_empty() && self.argo.is_empty() && self.kruise.is_empty()
    }

    fn verdicts(&self) -> Vec<(String, Verdict)> {
        let mut out: Vec<(String, Verdict)> = self
            .batch
            .iter()
            .map(|(n, o)| (n.clone(), o.verdict()))
            .collect();
        out.extend(
            self.argo
                .iter()
                .map(|(n, (o, _))| (n.clone(), argo_verdict(o))),
        );
        out.extend(
            self.kruise
                .iter()
                .map(|(n, (o, _))| (n.clone(), kruise_verdict(o))),
        );
        out
    }

    fn code(&self) -> u8 {
        exit_code(self.verdicts().iter().map(|(_, v)| v))
    }

    fn text(&self) -> String {
        let mut lines = Vec::new();
        for o in self.batch.values() {
            lines.extend(o.view().lines());
        }
        for (o, rss) in self.argo.values() {
            lines.extend(argo_view(o, rss));
        }
        for (o, replicas) in self.kruise.values() {
            lines.extend(kruise_view(o, *replicas));
        }
        let mut s = lines.join("\n");
        s.push('\n');
        s
    }
}

fn list_error(opts: &StatusOptions) -> impl Fn(kube::Error) -> RolloutCliError + '_ {
    move |source| RolloutCliError::List {
        scope: format!("in namespace {}", opts.namespace),
        source,
    }
}

fn named(o: &DynamicObject, component: Option<&str>) -> bool {
    component.is_none_or(|c| o.metadata.name.as_deref() == Some(c))
}

async fn snapshot(
    client: &kube::Client,
    opts: &StatusOptions,
) -> Result<Snapshot, RolloutCliError> {
    let selector = format!("{APP_LABEL}={}", opts.app);
    let component = opts.component.as_deref();
    let ns = opts.namespace.as_str();
    let mut snap = Snapshot::default();
    let batch: Api<Rollout> = Api::namespaced(client.clone(), ns);
    let listed = match batch.list(&ListParams::default().labels(&selector)).await {
        Ok(l) => l.items,
        Err(kube::Error::Api(e)) if e.code == 404 => Vec::new(),
        Err(e) => return Err(list_error(opts)(e)),
    };
    for o in &listed {
        let wanted = component
            .is_none_or(|c| o.metadata.name.as_deref() == Some(c) || o.spec.component == c);
        if wanted {
            let r = Observed::from_object(o);
            snap.batch.insert(r.name.clone(), r);
        }
    }
    for o in list_argo(client, ns, false, Some(&selector))
        .await
        .map_err(list_error(opts))?
    {
        if !named(&o, component) {
            continue;
        }
        let v = serde_json::to_value(&o).unwrap_or(Value::Null);
        let rss = replica_sets_of(client, ns, &v).await;
        snap.argo
            .insert(o.metadata.name.clone().unwrap_or_default(), (v, rss));
    }
    for o in list_kruise(client, ns, false, Some(&selector))
        .await
        .map_err(list_error(opts))?
    {
        if !named(&o, component) {
            continue;
        }
        let v = serde_json::to_value(&o).unwrap_or(Value::Null);
        let replicas = replicas_of(client, ns, &v).await;
        snap.kruise
            .insert(o.metadata.name.clone().unwrap_or_default(), (v, replicas));
    }
    Ok(snap)
}

fn report(code: u8, snap: &Snapshot, watched: bool) {
    for (name, v) in snap.verdicts() {
        match v {
            Verdict::Failed(why) if code == EXIT_FAILED => eprintln!("error: rollout {name} {why}"),
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

/// The `-o json|yaml` document of `rollgit rollout status` for any mix of rollouts (pure): as
/// [`super::rollout_status::status_document`], with each Argo Rollout (`"kind":
/// "rollouts.argoproj.io"`: `phase`, `step`, `setWeight`) and Kruise Rollout (`"kind":
/// "rollouts.kruise.io"`: `phase`, `currentStepIndex`, `currentStepState`) after the batched
/// ones, each with its `verdict` and `message`.
fn document(opts: &StatusOptions, snap: &Snapshot, code: u8) -> Value {
    use super::rollout_status::{result_word, status_document, verdict_words};
    let mut doc = status_document(opts, &snap.batch, code);
    let mut rollouts = match doc["rollouts"].take() {
        Value::Array(a) => a,
        _ => Vec::new(),
    };
    for (name, (o, _)) in &snap.argo {
        let (verdict, message) = verdict_words(&argo_verdict(o));
        rollouts.push(serde_json::json!({
            "name": name,
            "kind": "rollouts.argoproj.io",
            "phase": super::argo_view::phase(o).0,
            "step": o["status"]["currentStepIndex"],
            "setWeight": super::argo_view::set_weight(o),
            "verdict": verdict,
            "message": message,
        }));
    }
    for (name, (o, _)) in &snap.kruise {
        let s = &o["status"];
        let (verdict, message) = verdict_words(&kruise_verdict(o));
        rollouts.push(serde_json::json!({
            "name": name,
            "kind": "rollouts.kruise.io",
            "phase": s["phase"],
            "currentStepIndex": s["currentStepIndex"],
            "currentStepState": s["currentStepState"],
            "verdict": verdict,
            "message": message,
        }));
    }
    doc["rollouts"] = Value::Array(rollouts);
    doc["result"] = Value::from(result_word(code));
    doc
}

fn finish(opts: &StatusOptions, snap: &Snapshot, code: u8, watched: bool) {
    if opts.output.is_document()
        && let Err(e) = opts.output.print(&document(opts, snap, code))
    {
        eprintln!("error: printing the document: {e:#}");
    }
    report(code, snap, watched);
}

fn show(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// `rollgit rollout status APP [COMPONENT]` over every kind of rollout (see the module
/// documentation): prints them and returns the exit code.
pub async fn any_status(
    client: &kube::Client,
    opts: &StatusOptions,
) -> Result<u8, RolloutCliError> {
    let mut snap = snapshot(client, opts).await?;
    if snap.is_empty() {
        return Err(RolloutCliError::NotFound {
            app: opts.app.clone(),
            component: opts.component.clone(),
            namespace: opts.namespace.clone(),
        });
    }
    if snap.argo.is_empty() && snap.kruise.is_empty() {
        return rollout_status(client, opts).await;
    }
    let quiet = opts.output.is_document();
    let mut last = snap.text();
    if !quiet {
        show(&last);
    }
    let mut code = snap.code();
    if !opts.watch || code != EXIT_UNFINISHED {
        finish(opts, &snap, code, false);
        return Ok(code);
    }
    let selector = format!("{APP_LABEL}={}", opts.app);
    let ns = opts.namespace.as_str();
    let config = || watcher::Config::default().labels(&selector);
    // Any change of the app's Rollouts (or of an Argo Rollout's ReplicaSets) is a reason to
    // look again; the watchers retry their errors with a backoff.
    let mut streams = vec![
        watcher(Api::<Rollout>::namespaced(client.clone(), ns), config())
            .default_backoff()
            .map(|_| ())
            .boxed(),
    ];
    if !snap.argo.is_empty() {
        streams.push(
            watcher(
                Api::<DynamicObject>::namespaced_with(
                    client.clone(),
                    ns,
                    &rollgit::rollout::argo::resource(),
                ),
                config(),
            )
            .default_backoff()
            .map(|_| ())
            .boxed(),
        );
        streams.push(
            watcher(
                Api::<DynamicObject>::namespaced_with(
                    client.clone(),
                    ns,
                    &rollgit::rollout::argo::replica_set_resource(),
                ),
                watcher::Config::default().labels(rollgit::rollout::argo::HASH_LABEL),
            )
            .default_backoff()
            .map(|_| ())
            .boxed(),
        );
    }
    if !snap.kruise.is_empty() {
        streams.push(
            watcher(
                Api::<DynamicObject>::namespaced_with(
                    client.clone(),
                    ns,
                    &rollgit::k8s::kruise::rollout_resource(),
                ),
                config(),
            )
            .default_backoff()
            .map(|_| ())
            .boxed(),
        );
    }
    let mut changes = futures::stream::select_all(streams);
    let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    loop {
        let next = match deadline {
            Some(d) => match tokio::time::timeout_at(d, changes.next()).await {
                Ok(n) => n,
                Err(_) => {
                    let t = humantime::format_duration(opts.timeout.unwrap_or_default());
                    eprintln!(
                        "timed out after {t} waiting for the rollouts of app {} to finish",
                        opts.app
                    );
                    finish(opts, &snap, EXIT_UNFINISHED, true);
                    return Ok(EXIT_UNFINISHED);
                }
            },
            None => changes.next().await,
        };
        if next.is_none() {
            // The watchers' streams do not end; if they do, stop instead of spinning.
            eprintln!(
                "the watches of app {}'s rollouts ended before they finished",
                opts.app
            );
            code = EXIT_UNFINISHED;
            break;
        }
        snap = snapshot(client, opts).await?;
        if snap.is_empty() {
            return Err(RolloutCliError::NotFound {
                app: opts.app.clone(),
                component: opts.component.clone(),
                namespace: opts.namespace.clone(),
            });
        }
        let text = snap.text();
        if text != last {
            if !quiet {
                show(&text);
            }
            last = text;
        }
        code = snap.code();
        if code != EXIT_UNFINISHED {
            break;
        }
    }
    finish(opts, &snap, code, true);
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollgit::k8s::RolloutSpec;
    use serde_json::json;

    #[test]
    fn an_app_with_batches_and_a_kruise_rollout_shows_both() {
        let spec = RolloutSpec {
            component: "web".into(),
            target_revision: "web-v1".into(),
            target_size: 2,
            ..Default::default()
        };
        let mut snap = Snapshot::default();
        snap.batch.insert(
            "web".into(),
            Observed::from_object(&Rollout::new("web", spec)),
        );
        let kruise = json!({
            "apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout",
            "metadata": {"name": "rollouts-demo", "generation": 1},
            "spec": {"workloadRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "echoserver"},
                "strategy": {"canary": {"steps": [{"replicas": 1, "pause": {}}]}}},
            "status": {"observedGeneration": 1, "phase": "Healthy",
                "canaryStatus": {"currentStepIndex": 1, "currentStepState": "Completed"}},
        });
        snap.kruise
            .insert("rollouts-demo".into(), (kruise, Some(4)));
        let text = snap.text();
        assert!(text.starts_with("web: web-v1, 2 replicas"), "{text}");
        assert!(
            text.contains("\nrollouts-demo: Deployment echoserver, 4 replicas"),
            "{text}"
        );
        // The batch rollout has no status yet: the app has not finished.
        assert_eq!(snap.code(), EXIT_UNFINISHED);
        let names: Vec<String> = snap.verdicts().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["web", "rollouts-demo"]);
    }
}
