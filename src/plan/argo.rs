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
//!   which the executor applies them with their weights;
//! * the `spec.selector` of the canary and stable Services that are in the app is the
//!   executor's: Kubernetes merges a Service's selector as one atomic map, so an apply of Git's
//!   selector would drop the `rollouts-pod-template-hash` the executor adds. The selector
//!   leaves the Service the apply stage applies and travels in the Rollout's
//!   `rollgit.dev/service-selectors` annotation; the executor applies it with the hash.
//!
//! In every mode the Rollout is annotated with the commit and the app's directory, so that an
//! aborted canary can be reverted in Git.

use crate::k8s::argo::{
    COMMIT_ANNOTATION, HTTP_ROUTES_ANNOTATION, PATH_ANNOTATION, SERVICE_SELECTORS_ANNOTATION,
};
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
        let mut selectors = serde_json::Map::new();
        if !external {
            for svc in [
                &a.rollout.routing.canary_service,
                &a.rollout.routing.stable_service,
            ]
            .into_iter()
            .flatten()
            {
                let want = ObjectKey {
                    group: String::new(),
                    kind: "Service".into(),
                    namespace: ns.clone(),
                    name: svc.clone(),
                };
                for o in objects.iter_mut() {
                    if key_of(o) == want
                        && let Some(spec) = o["spec"].as_object_mut()
                        && let Some(sel) = spec.remove("selector")
                    {
                        selectors.insert(svc.clone(), sel);
                    }
                }
            }
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
            if !selectors.is_empty() {
                annotations[SERVICE_SELECTORS_ANNOTATION] =
                    json!(serde_json::to_string(&selectors).unwrap_or_default());
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

    fn ro_annotation<'a>(ro: &'a Value, key: &str) -> Option<&'a str> {
        ro["metadata"]["annotations"][key].as_str()
    }

    #[test]
    fn the_executor_claims_the_selectors_of_the_services_of_the_app() {
        let services = "---
apiVersion: v1
kind: Service
metadata: {name: web-stable}
spec: {selector: {app: web}, ports: [{port: 80}]}
---
apiVersion: v1
kind: Service
metadata: {name: web-canary}
spec: {selector: {app: web}, ports: [{port: 80}]}
";
        let text = format!(
            "{}{services}",
            ROLLOUT.replace("      - analysis: {templates: [{templateName: t}]}\n", "")
        );
        let r = rendered(&text);
        let mut objects: Vec<Value> = r.objects.iter().map(|o| o.object.clone()).collect();
        claim(&r.argo_rollouts, &mut objects, "c1", "apps/web", false).expect("claims");
        for o in objects.iter().filter(|o| o["kind"] == "Service") {
            assert!(o["spec"].get("selector").is_none(), "{o}");
            assert_eq!(o["spec"]["ports"][0]["port"], 80);
        }
        let ro = objects
            .iter()
            .find(|o| o["kind"] == "Rollout")
            .expect("the Rollout");
        let sel: Value = serde_json::from_str(
            ro_annotation(ro, SERVICE_SELECTORS_ANNOTATION).expect("the selectors travel"),
        )
        .expect("JSON");
        assert_eq!(
            sel,
            json!({"web-stable": {"app": "web"}, "web-canary": {"app": "web"}})
        );
    }

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
        assert!(
            ro_annotation(&objects[1], SERVICE_SELECTORS_ANNOTATION).is_none(),
            "the Services are not in the app"
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
