//! `rollgit diff` and `rollgit status`: what Git wants against what the cluster has, and what
//! rollgit recorded, read from the cluster.

use crate::apply::{self, Applier};
use serde_json::Value;

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

/// Diffs rendered objects against the cluster. Returns the diff text and whether anything differs.
pub async fn diff_objects(
    applier: &Applier,
    objects: &[Value],
    stale: &[apply::ObjRef],
) -> anyhow::Result<(String, bool)> {
    let mut out = String::new();
    let mut differs = false;
    for o in objects {
        let name = apply::ObjRef::from_object(o)
            .map(|r| r.to_string())
            .unwrap_or_default();
        let live = applier.live(o).await?;
        let desired = applier.dry_run_apply(o).await?;
        if let Some(d) = unified(&name, live.as_ref(), desired.as_ref().or(Some(o))) {
            differs = true;
            out.push_str(&d);
        }
    }
    for r in stale {
        let live = applier
            .live(&serde_json::json!({"apiVersion": r.api_version(), "kind": r.kind, "metadata": {"name": r.name, "namespace": r.namespace}}))
            .await?;
        if let Some(d) = unified(
            &format!("{r} (pruned: no longer in Git)"),
            live.as_ref(),
            None,
        ) {
            differs = true;
            out.push_str(&d);
        }
    }
    Ok((out, differs))
}

/// Renders every app of a repository at its branch head, as the daemon would, for `rollgit diff`.
/// Returns per app the objects to apply and the objects that left Git (from the recorded
/// inventory), or the app's render errors.
pub async fn render_repo(
    client: &kube::Client,
    repo: &crate::config::Repo,
    cache: &std::path::Path,
) -> anyhow::Result<
    Vec<(
        String,
        Result<(Vec<Value>, Vec<apply::ObjRef>), Vec<String>>,
    )>,
> {
    let spec = crate::daemon::repo_spec(repo);
    let roots = repo.paths.clone();
    let cache = cache.to_path_buf();
    let read = tokio::task::spawn_blocking(move || {
        let fetched = rollgit_source::fetch(&spec, &cache)?;
        let r = rollgit_source::Repo::open(&spec, &cache)?;
        let files = r.list_files(fetched.head)?;
        let apps = rollgit_render::discover_apps(&files, &roots);
        let mut out = Vec::new();
        for a in &apps {
            let files: Vec<rollgit_render::SourceFile> = r
                .read_files(fetched.head, &a.dir)?
                .into_iter()
                .filter(|(p, _)| rollgit_render::belongs_to(p, a, &apps))
                .map(|(p, c)| rollgit_render::SourceFile::new(p, c))
                .collect();
            out.push((a.name.clone(), files));
        }
        Ok::<_, rollgit_source::SourceError>(out)
    })
    .await??;
    let mut result = Vec::new();
    for (app, files) in read {
        let recorded = apply::read_recorded(client, &repo.namespace, &app)
            .await
            .unwrap_or_default();
        let mut state = crate::daemon::revision_state(client, &repo.namespace, &app).await;
        state.publish = recorded.publish.clone();
        match rollgit_render::render_app(
            &app,
            &repo.namespace,
            &files,
            &rollgit_render::NoRefs,
            &state,
        ) {
            Err(errs) => result.push((app, Err(errs.0.iter().map(ToString::to_string).collect()))),
            Ok(r) => {
                let mut objects: Vec<Value> = r.objects.iter().map(|o| o.object.clone()).collect();
                for rev in &r.revisions {
                    objects.push(rev.controller_revision.clone());
                }
                for o in &mut objects {
                    o["metadata"]["labels"][crate::daemon::REPO_LABEL] =
                        serde_json::json!(repo.name);
                    o["metadata"]["labels"][apply::APP_LABEL] = serde_json::json!(app);
                    o["metadata"]["labels"][apply::MANAGED_BY_LABEL] = serde_json::json!("rollgit");
                }
                let next = apply::Inventory::from_objects(&objects);
                let stale = recorded.inventory.diff(&next);
                result.push((app, Ok((objects, stale))));
            }
        }
    }
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
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
