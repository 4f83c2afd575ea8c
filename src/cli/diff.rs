//! `rollgit diff`: what applying Git's head would change in the cluster, as `kubectl diff`
//! shows it: per object, a unified YAML diff of the live object against what a server-side
//! dry-run apply would store, with Secret values masked; objects that left Git show as pruned.
//! The desired side comes from the plan stage, exactly as the daemon applies it. Exit 0 when
//! equal, 1 when different (or an app does not render), 2 on errors.

use super::run::RunArgs;
use rollgit::apply::{Applier, DryRun};
use rollgit::k8s::ObjRef;
use rollgit::plan::read::{Which, read_apps};
use rollgit::plan::{self, PlanContext};
use rollgit::record::status::{existing_owner, read_recorded};
use serde_json::Value;
use std::process::ExitCode;

/// `rollgit diff`.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let cfg = args.diff_config().await?;
    let mut differs = false;
    let fleet = cfg.fleet();
    for repo in &cfg.repos {
        let client = cfg.clusters[repo.cluster].client().await?;
        let applier = Applier::new(client.clone());
        let spec = repo.source_spec();
        let cache = cfg.state_dir.join("repos");
        let roots = repo.paths.clone();
        let (head, snapshot) = tokio::task::spawn_blocking(move || {
            let fetched = rollgit_source::fetch(&spec, &cache)?;
            let r = rollgit_source::Repo::open(&spec, &cache)?;
            let snapshot = read_apps(&r, fetched.head, &roots, Which::All)?;
            Ok::<_, anyhow::Error>((fetched.head, snapshot))
        })
        .await??;
        let commit = head.to_string();
        for (app, files) in &snapshot.read {
            // The status object lives in the KubeVela Application's namespace (an older
            // rollgit kept it in the repository's).
            let home = app.namespace.as_deref().unwrap_or(&repo.namespace);
            let recorded = match read_recorded(&client, home, &app.name).await? {
                Some(r) => r,
                None if home != repo.namespace => {
                    read_recorded(&client, &repo.namespace, &app.name)
                        .await?
                        .unwrap_or_default()
                }
                None => Default::default(),
            };
            let prev =
                plan::revisions::revision_state(&client, home, &app.name, recorded.publish.clone())
                    .await?;
            let rendered =
                match plan::render(app, &repo.namespace, files, snapshot.index.as_ref(), &prev) {
                    Ok(r) => r,
                    Err(errors) => {
                        differs = true;
                        for e in errors {
                            eprintln!("{}: {e}", app.name);
                        }
                        continue;
                    }
                };
            let owner = existing_owner(&client, home, &app.name).await?;
            // The daemon renders an app again only when its files change, at the head it
            // fetched then; while what it renders is unchanged, the commit it recorded is the
            // one its objects name.
            let unchanged =
                recorded.publish.as_ref().map(|(_, hash)| hash) == Some(&rendered.content_hash);
            let commit = match &recorded.last_applied_commit {
                Some(c) if unchanged => c.clone(),
                _ => commit.clone(),
            };
            let ctx = PlanContext {
                app: &app.name,
                repo: &repo.name,
                dir: &app.dir,
                commit: &commit,
                progress_deadline: repo.progress_deadline,
                owner: owner.as_ref().map(|reference| plan::Owner {
                    reference,
                    namespace: home,
                }),
                argo_external: !rendered.argo_rollouts.is_empty()
                    && rollgit::rollout::argo::detect::external(
                        &client,
                        repo.argo_controller,
                        &cfg.watch,
                    )
                    .await,
                kruise_external: rendered.kruise_rollouts.is_empty()
                    || rollgit::rollout::kruise::detect::external(
                        &client,
                        cfg.rollout_controllers.kruise,
                    )
                    .await,
                fleet: &fleet,
                cluster: &cfg.clusters[repo.cluster].name,
            };
            let planned = match plan::desired(&rendered, &ctx) {
                Ok(p) => p,
                Err(errors) => {
                    differs = true;
                    for e in errors {
                        eprintln!("{}: {e}", app.name);
                    }
                    continue;
                }
            };
            for d in applier.dry_run_app(&app.name, &planned.objects).await? {
                if let Some(text) = object_diff(&d) {
                    differs = true;
                    print!("{text}");
                }
            }
            for r in recorded.inventory.diff(&planned.inventory) {
                let live = applier.live(&reference_object(&r)).await?;
                let name = format!("{r} (pruned: no longer in Git)");
                let secret = r.group.is_empty() && r.kind == "Secret";
                let live = live.map(|l| if secret { mask_one(&l) } else { l });
                if let Some(d) = unified(&name, live.as_ref(), None) {
                    differs = true;
                    print!("{d}");
                }
            }
            if let Some(wf) = &planned.workflow {
                differs |= workflow_diff(&cfg, &app.name, wf, &recorded.clusters).await?;
            }
        }
    }
    Ok(if differs {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// What the app's workflow would change in each cluster it delivers to: the objects of the
/// last deploy step targeting the cluster (what the cluster holds once the workflow ran),
/// under a `# cluster NAME (workflow step STEP)` line, and what left Git there. Returns whether
/// anything differs.
async fn workflow_diff(
    cfg: &rollgit::config::Config,
    app: &str,
    wf: &rollgit::plan::workflow::WorkflowPlan,
    delivered: &[rollgit::k8s::crds::ClusterStatus],
) -> anyhow::Result<bool> {
    use anyhow::Context;
    let mut last: std::collections::BTreeMap<&str, usize> = Default::default();
    for (i, step) in wf.steps.iter().enumerate() {
        if matches!(step.spec, rollgit_render::workflow::StepSpec::Deploy { .. }) {
            for t in &step.targets {
                last.insert(t.cluster.as_str(), i);
            }
        }
    }
    let mut differs = false;
    for (cluster, step) in last {
        let Some(c) = cfg.clusters.iter().find(|c| c.name == cluster) else {
            continue;
        };
        let client = c
            .client()
            .await
            .with_context(|| format!("a client for cluster {cluster}"))?;
        let member = Applier::new(client.clone());
        let objects = wf.objects_for(cluster, step);
        let mut header = Some(format!(
            "# cluster {cluster} (workflow step {})\n",
            wf.steps[step].name
        ));
        let mut out = |text: String| {
            differs = true;
            print!("{}{text}", header.take().unwrap_or_default());
        };
        // The workflow creates a missing namespace first: its objects are new there.
        let namespaces: std::collections::BTreeSet<&str> = objects
            .iter()
            .filter_map(|o| o["metadata"]["namespace"].as_str())
            .collect();
        let mut missing = std::collections::BTreeSet::new();
        let ns_api: kube::Api<k8s_openapi::api::core::v1::Namespace> = kube::Api::all(client);
        for ns in namespaces {
            if ns_api.get_opt(ns).await?.is_none() {
                missing.insert(ns.to_string());
            }
        }
        let (new, existing): (Vec<Value>, Vec<Value>) = objects.into_iter().partition(|o| {
            o["metadata"]["namespace"]
                .as_str()
                .is_some_and(|ns| missing.contains(ns))
        });
        for o in &new {
            let Some(r) = ObjRef::from_object(o) else {
                continue;
            };
            let secret = r.group.is_empty() && r.kind == "Secret";
            let o = if secret { mask_one(o) } else { o.clone() };
            if let Some(d) = unified(&r.to_string(), None, Some(&o)) {
                out(d);
            }
        }
        for d in member.dry_run_app(app, &existing).await? {
            if let Some(text) = object_diff(&d) {
                out(text);
            }
        }
        let planned = rollgit::k8s::Inventory::from_objects(
            &new.iter().chain(&existing).cloned().collect::<Vec<_>>(),
        );
        if let Some(held) = delivered.iter().find(|d| d.name == cluster) {
            for r in held.inventory.diff(&planned) {
                let live = member.live(&reference_object(&r)).await?;
                let name = format!("{r} (pruned: no longer in Git)");
                let secret = r.group.is_empty() && r.kind == "Secret";
                let live = live.map(|l| if secret { mask_one(&l) } else { l });
                if let Some(d) = unified(&name, live.as_ref(), None) {
                    out(d);
                }
            }
        }
    }
    Ok(differs)
}

fn reference_object(r: &ObjRef) -> Value {
    serde_json::json!({"apiVersion": r.api_version(), "kind": r.kind,
        "metadata": {"name": r.name, "namespace": r.namespace}})
}

/// The diff of one object of the plan, `None` when the cluster already has it; an object the
/// server refuses shows as an error line.
pub fn object_diff(d: &DryRun) -> Option<String> {
    let name = d.oref.to_string();
    match &d.desired {
        Err(message) => Some(format!("# {name}: cannot be applied: {message}\n")),
        Ok(desired) => {
            let (live, desired) = if d.is_secret {
                mask_secrets(d.live.as_ref(), Some(desired))
            } else {
                (d.live.clone(), Some(desired.clone()))
            };
            unified(&name, live.as_ref(), desired.as_ref())
        }
    }
}

/// Secret values as `kubectl diff` masks them: `***` on both sides when a key is unchanged,
/// `*** (before)` and `*** (after)` when it changed.
pub fn mask_secrets(
    live: Option<&Value>,
    desired: Option<&Value>,
) -> (Option<Value>, Option<Value>) {
    let mut live = live.cloned();
    let mut desired = desired.cloned();
    for field in ["data", "stringData"] {
        let before = live
            .as_ref()
            .map(|l| l[field].clone())
            .unwrap_or(Value::Null);
        let after = desired
            .as_ref()
            .map(|d| d[field].clone())
            .unwrap_or(Value::Null);
        let mask = |side: &mut Option<Value>, other: &Value, tag: &str| {
            if let Some(m) = side.as_mut().and_then(|o| o[field].as_object_mut()) {
                for (k, v) in m.iter_mut() {
                    let same = other.get(k) == Some(v);
                    *v = Value::String(if same {
                        "***".into()
                    } else {
                        format!("*** ({tag})")
                    });
                }
            }
        };
        mask(&mut live, &after, "before");
        mask(&mut desired, &before, "after");
    }
    (live, desired)
}

fn mask_one(v: &Value) -> Value {
    mask_secrets(Some(v), None).0.unwrap_or(Value::Null)
}

/// Server-managed fields that are not part of a diff (as `kubectl diff` leaves them out).
fn normalize(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(m) = v["metadata"].as_object_mut() {
        for k in [
            "managedFields",
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "generation",
            "selfLink",
        ] {
            m.remove(k);
        }
    }
    if let Some(m) = v.as_object_mut() {
        m.remove("status");
    }
    v
}

/// YAML text of an object (empty for none).
pub fn to_yaml(v: Option<&Value>) -> String {
    match v {
        None => String::new(),
        Some(v) => serde_saphyr::to_string(&normalize(v)).unwrap_or_else(|e| format!("# {e}\n")),
    }
}

/// A unified diff of one object, `None` when the two sides are equal.
pub fn unified(name: &str, live: Option<&Value>, desired: Option<&Value>) -> Option<String> {
    let a = to_yaml(live);
    let b = to_yaml(desired);
    if a == b {
        return None;
    }
    let diff = similar::TextDiff::from_lines(&a, &b);
    Some(
        diff.unified_diff()
            .context_radius(3)
            .header(&format!("live/{name}"), &format!("git/{name}"))
            .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_values_are_masked_as_kubectl_diff_masks_them() {
        let live = serde_json::json!({"kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2FtZQ==", "changed": "b2xk", "gone": "eA=="}});
        let desired = serde_json::json!({"kind": "Secret", "metadata": {"name": "s"},
            "data": {"same": "c2FtZQ==", "changed": "bmV3", "added": "eQ=="}});
        let (l, d) = mask_secrets(Some(&live), Some(&desired));
        let (l, d) = (l.expect("live"), d.expect("desired"));
        assert_eq!(
            l["data"],
            serde_json::json!({"same": "***", "changed": "*** (before)", "gone": "*** (before)"})
        );
        assert_eq!(
            d["data"],
            serde_json::json!({"same": "***", "changed": "*** (after)", "added": "*** (after)"})
        );
        let text = unified("Secret default/s", Some(&l), Some(&d)).expect("differs");
        for secret in ["c2FtZQ==", "b2xk", "bmV3", "eQ==", "eA=="] {
            assert!(!text.contains(secret), "{text}");
        }
    }
    use serde_json::json;

    #[test]
    fn equal_after_normalizing_is_no_diff() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a", "resourceVersion": "5", "uid": "u", "managedFields": []}, "data": {"k": "v"}});
        let desired = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "v"}});
        assert_eq!(unified("cm", Some(&live), Some(&desired)), None);
    }

    #[test]
    fn changed_value_shows_as_minus_plus_lines() {
        let live = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "old"}});
        let desired = json!({"kind": "ConfigMap", "metadata": {"name": "a"}, "data": {"k": "new"}});
        let d = unified("cm", Some(&live), Some(&desired)).expect("differs");
        assert!(d.contains("--- live/cm"), "{d}");
        assert!(d.contains("+++ git/cm"), "{d}");
        assert!(d.contains("-  k: old"), "{d}");
        assert!(d.contains("+  k: new"), "{d}");
    }

    #[test]
    fn missing_live_object_is_all_additions() {
        let desired = json!({"kind": "ConfigMap", "metadata": {"name": "a"}});
        let d = unified("cm", None, Some(&desired)).expect("differs");
        assert!(
            d.lines()
                .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
                .count()
                >= 2,
            "{d}"
        );
        assert!(
            !d.lines()
                .any(|l| l.starts_with('-') && !l.starts_with("---")),
            "{d}"
        );
    }
}
