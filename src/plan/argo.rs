//! What the Argo Rollouts of a render ask of the plan (pure).
//!
//! When rollgit is the controller of an app's Argo Rollouts:
//!
//! * what rollgit's executor does not run ([`rollgit_render::ArgoRollout::unsupported`]:
//!   analysis and experiment steps, header and mirror routes, blue-green, other traffic routers)
//!   rejects the commit with `path:line: message`, never skipped silently;
//! * the `spec.replicas` of a `workloadRef` Deployment that scales down (`onsuccess`,
//!   `progressively`) is the executor's: it is left out of what the apply stage applies, so
//!   drift correction never scales it back up;
//! * the HTTPRoutes of the Gateway API router that are in the app are the executor's (it sets
//!   their `backendRefs` weights, which the apply stage would reset): they leave the apply
//!   stage's objects and travel in the Rollout's `rollgit.dev/http-routes` annotation, from
//!   which the executor applies them with their weights.
//!
//! In every mode the Rollout is annotated with the commit and the app's directory, so that an
//! aborted canary can be reverted in Git.

use crate::rollout::argo::{COMMIT_ANNOTATION, HTTP_ROUTES_ANNOTATION, PATH_ANNOTATION};
use rollgit_core::argo_exec::ScaleDown;
use rollgit_render::{ArgoRolloutInfo, ObjectKey};
use serde_json::{Value, json};

fn key_of(o: &Value) -> ObjectKey {
    let api_version = o["apiVersion"].as_str().unwrap_or_default();
    ObjectKey {
        group: rollgit_render::group_of(api_version).to_string(),
        kind: o["kind"].as_str().unwrap_or_default().to_string(),
        namespace: o["metadata"]["namespace"].as_str().map(str::to_string),
        name: o["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    }
}

/// Applies the Argo Rollouts' claims to `objects` (the apply stage's list, already labelled).
/// `external`: Argo's own controller runs them. Errors are `path:line: message`.
pub fn claim(
    argo: &[ArgoRolloutInfo],
    objects: &mut Vec<Value>,
    commit: &str,
    dir: &str,
    external: bool,
) -> Result<(), Vec<String>> {
    if !external {
        let errors: Vec<String> = argo
            .iter()
            .flat_map(|a| a.rollout.unsupported.iter().map(ToString::to_string))
            .collect();
        if !errors.is_empty() {
            return Err(errors);
        }
    }
    for a in argo {
        let ns = a.key.namespace.clone();
        let mut routes: Vec<Value> = Vec::new();
        if !external {
            if let Some(w) = &a.rollout.workload_ref
                && w.scale_down != ScaleDown::Never
            {
                let want = ObjectKey {
                    group: rollgit_render::group_of(&w.api_version).to_string(),
                    kind: w.kind.clone(),
                    namespace: ns.clone(),
                    name: w.name.clone(),
                };
                for o in objects.iter_mut() {
                    if key_of(o) == want
                        && let Some(spec) = o["spec"].as_object_mut()
                    {
                        spec.remove("replicas");
                    }
                }
            }
            if let Some(gw) = &a.rollout.routing.gateway_api {
                let route_ns = gw.namespace.clone().or_else(|| ns.clone());
                objects.retain(|o| {
                    let k = key_of(o);
                    let mine = k.group == "gateway.networking.k8s.io"
                        && k.kind == "HTTPRoute"
                        && (k.namespace.is_none() || k.namespace == route_ns)
                        && gw.http_routes.contains(&k.name);
                    if mine {
                        routes.push(o.clone());
                    }
                    !mine
                });
            }
        }
        for o in objects.iter_mut() {
            if key_of(o) != a.key {
                continue;
            }
            let mut annotations = json!({COMMIT_ANNOTATION: commit, PATH_ANNOTATION: dir});
            if !routes.is_empty() {
                annotations[HTTP_ROUTES_ANNOTATION] =
                    json!(serde_json::to_string(&routes).unwrap_or_default());
            }
            if !o["metadata"]["annotations"].is_object() {
                o["metadata"]["annotations"] = json!({});
            }
            if let (Some(have), Some(add)) = (
                o["metadata"]["annotations"].as_object_mut(),
                annotations.as_object(),
            ) {
                for (k, v) in add {
                    have.insert(k.clone(), v.clone());
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollgit_render::{NoRefs, RevisionState, SourceFile, render_app};

    const ROLLOUT: &str = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 4
  workloadRef: {apiVersion: apps/v1, kind: Deployment, name: web, scaleDown: progressively}
  strategy:
    canary:
      canaryService: web-canary
      stableService: web-stable
      trafficRouting:
        plugins:
          argoproj-labs/gatewayAPI: {httpRoute: web}
      steps:
      - setWeight: 25
      - analysis: {templates: [{templateName: t}]}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: web, image: web:1}]}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  rules:
  - backendRefs: [{name: web-stable, port: 80}, {name: web-canary, port: 80}]
";

    fn rendered(text: &str) -> rollgit_render::Rendered {
        let files = [SourceFile::new("apps/web/app.yaml", text)];
        render_app("web", "default", &files, &NoRefs, &RevisionState::default()).expect("renders")
    }

    #[test]
    fn unsupported_steps_reject_the_commit_unless_argo_runs_them() {
        let r = rendered(ROLLOUT);
        let mut objects: Vec<Value> = r.objects.iter().map(|o| o.object.clone()).collect();
        let err = claim(
            &r.argo_rollouts,
            &mut objects.clone(),
            "c1",
            "apps/web",
            false,
        )
        .expect_err("analysis is not run by rollgit");
        assert_eq!(err.len(), 1);
        assert!(
            err[0]
                .starts_with("apps/web/app.yaml:17: argo: spec.strategy.canary.steps[1].analysis:"),
            "{err:?}"
        );
        claim(&r.argo_rollouts, &mut objects, "c1", "apps/web", true).expect("Argo runs it");
        let ro = objects
            .iter()
            .find(|o| o["kind"] == "Rollout")
            .expect("the Rollout");
        assert_eq!(ro["metadata"]["annotations"][COMMIT_ANNOTATION], "c1");
        assert_eq!(objects.len(), 3, "nothing is claimed in delegate mode");
    }

    #[test]
    fn the_executor_claims_the_deployment_replicas_and_the_http_route() {
        let r =
            rendered(&ROLLOUT.replace("      - analysis: {templates: [{templateName: t}]}\n", ""));
        let mut objects: Vec<Value> = r.objects.iter().map(|o| o.object.clone()).collect();
        claim(&r.argo_rollouts, &mut objects, "c1", "apps/web", false).expect("claims");
        let kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
        assert_eq!(
            kinds,
            ["Deployment", "Rollout"],
            "the HTTPRoute is the executor's"
        );
        assert!(objects[0]["spec"].get("replicas").is_none());
        let ro = &objects[1];
        assert_eq!(ro["metadata"]["annotations"][PATH_ANNOTATION], "apps/web");
        let routes: Vec<Value> = serde_json::from_str(
            ro["metadata"]["annotations"][HTTP_ROUTES_ANNOTATION]
                .as_str()
                .expect("the routes travel with the Rollout"),
        )
        .expect("JSON");
        assert_eq!(routes[0]["metadata"]["name"], "web");
    }
}
