//! The workloads OpenKruise Rollouts hold (pure): for each Kruise Rollout of a render whose
//! workload the same app applies, that workload is **held**. It is still applied with Git's
//! spec, but without the fields the Kruise executor owns while it rolls (Kruise's webhook and
//! controller set them: `spec.paused` of a Deployment, the partition of a CloneSet or
//! StatefulSet, and, partition style, a Deployment's `spec.strategy`, which Git's value goes to
//! an annotation for), and with annotations naming Git's pod template and commit. The worker
//! holds it (paused, as Kruise's webhook does) before applying a new template
//! ([`crate::rollout::kruise::hold`]), so the template change waits for the Rollout's steps.
//!
//! The Rollout itself is applied as written, with the app's directory and the progress
//! deadline of its steps in annotations.

use crate::k8s::PROGRESS_DEADLINE_ANNOTATION;
use crate::k8s::kruise::{
    COMMIT_ANNOTATION, GIT_RULES_ANNOTATION, GIT_SELECTOR_ANNOTATION, GIT_STRATEGY_ANNOTATION,
    PATH_ANNOTATION, TEMPLATE_HASH_ANNOTATION,
};
use rollgit_core::kruise::RollingStyle;
use rollgit_render::{KruiseRolloutInfo, group_of};
use serde_json::{Value, json};
use std::time::Duration;

/// A Kruise Rollout's stable Service in the same app: once it exists, its selector is the
/// executor's (Git's selector, narrowed to the stable pods while a release routes traffic),
/// and the worker hands it over before the apply leaves it out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldService {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The Kruise Rollout routing through it.
    pub rollout: String,
}

/// A Kruise Rollout's Gateway API HTTPRoute in the same app: once it exists, its `spec.rules`
/// are the executor's (Git's rules between releases, each step's route during one), and the
/// worker hands them over before the apply leaves them out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldRoute {
    /// Namespace.
    pub namespace: String,
    /// `apiVersion` (`gateway.networking.k8s.io/v1` or `v1beta1`).
    pub api_version: String,
    /// Name.
    pub name: String,
    /// The Kruise Rollout routing through it.
    pub rollout: String,
}

/// A workload a Kruise Rollout holds: what the worker needs to hold it before an apply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldWorkload {
    /// Namespace.
    pub namespace: String,
    /// `apiVersion`.
    pub api_version: String,
    /// `kind` (Deployment, StatefulSet, CloneSet).
    pub kind: String,
    /// Name.
    pub name: String,
    /// The Kruise Rollout holding it.
    pub rollout: String,
    /// The hash of the pod template Git asks for ([`TEMPLATE_HASH_ANNOTATION`]).
    pub template_hash: String,
}

fn key_of(o: &Value) -> (String, String, String, String) {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        group_of(o["apiVersion"].as_str().unwrap_or_default()).to_string(),
        s(&o["kind"]),
        s(&o["metadata"]["namespace"]),
        s(&o["metadata"]["name"]),
    )
}

fn remove(v: &mut Value, path: &[&str]) {
    let (last, parents) = match path.split_last() {
        Some(x) => x,
        None => return,
    };
    let mut cur = v;
    for p in parents {
        match cur.get_mut(*p) {
            Some(next) => cur = next,
            None => return,
        }
    }
    if let Some(m) = cur.as_object_mut() {
        m.remove(*last);
    }
}

/// What the Kruise Rollouts of a render hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Held {
    /// Workloads.
    pub workloads: Vec<HeldWorkload>,
    /// Stable Services.
    pub services: Vec<HeldService>,
    /// HTTPRoutes.
    pub routes: Vec<HeldRoute>,
}

/// Prepares the held workloads, the stable Services and the Kruise Rollouts among `objects`
/// (the render's objects to apply) and returns what is held. Errors (an invalid progress
/// deadline annotation) are `path:line: message`.
pub fn hold_workloads(
    rollouts: &[KruiseRolloutInfo],
    objects: &mut [Value],
    commit: &str,
    dir: &str,
    default_deadline: Duration,
) -> Result<Held, Vec<String>> {
    let mut held = Vec::new();
    let mut services = Vec::new();
    let mut routes = Vec::new();
    let mut errors = Vec::new();
    for info in rollouts {
        let r = &info.rollout;
        // The stable Service: Git's selector in an annotation (the executor applies it).
        if let Some(t) = r.traffic_routings.first() {
            let want = (
                String::new(),
                "Service".to_string(),
                info.namespace.clone(),
                t.service.clone(),
            );
            if let Some(o) = objects.iter_mut().find(|o| key_of(o) == want) {
                let selector = o["spec"]["selector"].clone();
                o["metadata"]["annotations"][GIT_SELECTOR_ANNOTATION] = json!(selector.to_string());
                services.push(HeldService {
                    namespace: info.namespace.clone(),
                    name: t.service.clone(),
                    rollout: r.name.clone(),
                });
            }
            // The HTTPRoute: Git's rules in an annotation (the executor applies them).
            if let Some(route) = &t.http_route
                && r.unsupported.is_empty()
            {
                // A custom resource's namespace may be left to the apply stage (discovery).
                let mine = |o: &Value| {
                    let (group, kind, ns, name) = key_of(o);
                    group == "gateway.networking.k8s.io"
                        && kind == "HTTPRoute"
                        && (ns.is_empty() || ns == info.namespace)
                        && name == *route
                };
                if let Some(o) = objects.iter_mut().find(|o| mine(o)) {
                    let rules = match &o["spec"]["rules"] {
                        Value::Null => json!([]),
                        r => r.clone(),
                    };
                    if !o["metadata"]["annotations"].is_object() {
                        o["metadata"]["annotations"] = json!({});
                    }
                    o["metadata"]["annotations"][GIT_RULES_ANNOTATION] = json!(rules.to_string());
                    routes.push(HeldRoute {
                        namespace: info.namespace.clone(),
                        api_version: o["apiVersion"]
                            .as_str()
                            .unwrap_or("gateway.networking.k8s.io/v1")
                            .to_string(),
                        name: route.clone(),
                        rollout: r.name.clone(),
                    });
                }
            }
        }
        // The Rollout: where it comes from and how long a step may take.
        if let Some(o) = objects.iter_mut().find(|o| {
            key_of(o)
                == (
                    rollgit_render::KRUISE_ROLLOUT_GROUP.to_string(),
                    "Rollout".into(),
                    info.namespace.clone(),
                    r.name.clone(),
                )
        }) {
            let annotations = &mut o["metadata"]["annotations"];
            if !annotations.is_object() {
                *annotations = json!({});
            }
            annotations[PATH_ANNOTATION] = json!(dir);
            match annotations[PROGRESS_DEADLINE_ANNOTATION].as_str() {
                None => {
                    annotations[PROGRESS_DEADLINE_ANNOTATION] =
                        json!(format!("{}s", default_deadline.as_secs().max(1)));
                }
                Some(v) => match rollgit_syntax::parse_duration(v) {
                    Ok(d) if d >= Duration::from_secs(1) => {}
                    Ok(_) => errors.push(format!(
                        "{}: kruise: metadata.annotations.{PROGRESS_DEADLINE_ANNOTATION}: {v:?} is shorter than 1s",
                        r.source
                    )),
                    Err(m) => errors.push(format!(
                        "{}: kruise: metadata.annotations.{PROGRESS_DEADLINE_ANNOTATION}: {m}",
                        r.source
                    )),
                },
            }
        }
        let Some(k) = &info.workload else {
            continue;
        };
        let want = (
            k.group.clone(),
            k.kind.clone(),
            k.namespace
                .clone()
                .unwrap_or_else(|| info.namespace.clone()),
            k.name.clone(),
        );
        let Some(o) = objects.iter_mut().find(|o| key_of(o) == want) else {
            continue;
        };
        match k.kind.as_str() {
            "Deployment" => {
                remove(o, &["spec", "paused"]);
                if r.style == RollingStyle::Partition {
                    let strategy = o["spec"]
                        .as_object_mut()
                        .and_then(|s| s.remove("strategy"))
                        .unwrap_or_else(|| json!({}));
                    o["metadata"]["annotations"][GIT_STRATEGY_ANNOTATION] =
                        json!(strategy.to_string());
                }
            }
            "CloneSet" => remove(o, &["spec", "updateStrategy", "partition"]),
            "StatefulSet" => remove(o, &["spec", "updateStrategy", "rollingUpdate", "partition"]),
            _ => {}
        }
        let template_hash = rollgit_render::spec_hash(&o["spec"]["template"]);
        let annotations = &mut o["metadata"]["annotations"];
        if !annotations.is_object() {
            *annotations = json!({});
        }
        annotations[TEMPLATE_HASH_ANNOTATION] = json!(template_hash);
        annotations[COMMIT_ANNOTATION] = json!(commit);
        held.push(HeldWorkload {
            namespace: want.2,
            api_version: o["apiVersion"].as_str().unwrap_or("apps/v1").to_string(),
            kind: k.kind.clone(),
            name: k.name.clone(),
            rollout: r.name.clone(),
            template_hash,
        });
    }
    if errors.is_empty() {
        Ok(Held {
            workloads: held,
            services,
            routes,
        })
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rollgit_render::{AppDir, RevisionState, SourceFile};

    fn render(rollout_meta: &str, deployment_extra: &str) -> rollgit_render::Rendered {
        let deployment = format!(
            "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: echo\nspec:\n  replicas: 4\n{deployment_extra}  selector:\n    matchLabels: {{app: echo}}\n  template:\n    metadata:\n      labels: {{app: echo}}\n    spec:\n      containers:\n        - name: echo\n          image: echo:1\n"
        );
        let rollout = format!(
            "apiVersion: rollouts.kruise.io/v1alpha1\nkind: Rollout\nmetadata:\n  name: echo\n{rollout_meta}spec:\n  objectRef:\n    workloadRef:\n      apiVersion: apps/v1\n      kind: Deployment\n      name: echo\n  strategy:\n    canary:\n      steps:\n        - replicas: 1\n"
        );
        let app = AppDir {
            name: "echo".into(),
            dir: "apps/echo".into(),
            referenced: Vec::new(),
            namespace: None,
        };
        let files = [
            SourceFile::new("apps/echo/deploy.yaml", deployment),
            SourceFile::new("apps/echo/rollout.yaml", rollout),
        ];
        crate::plan::render(&app, "default", &files, None, &RevisionState::default())
            .expect("renders")
    }

    fn objects(r: &rollgit_render::Rendered) -> Vec<Value> {
        r.objects.iter().map(|o| o.object.clone()).collect()
    }

    #[test]
    fn the_held_deployment_keeps_its_spec_without_what_the_executor_owns() {
        let r = render("", "  paused: false\n  strategy: {type: Recreate}\n");
        let mut objs = objects(&r);
        let held = hold_workloads(
            &r.kruise_rollouts,
            &mut objs,
            "c0ffee",
            "apps/echo",
            Duration::from_secs(600),
        )
        .expect("plans")
        .workloads;
        assert_eq!(held.len(), 1);
        assert_eq!(
            (
                held[0].kind.as_str(),
                held[0].name.as_str(),
                held[0].rollout.as_str()
            ),
            ("Deployment", "echo", "echo")
        );
        let d = objs
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("deployment");
        assert!(
            d["spec"].get("paused").is_none(),
            "paused is the executor's"
        );
        assert_eq!(
            d["spec"]["strategy"]["type"], "Recreate",
            "canary style: the strategy stays Git's"
        );
        assert_eq!(
            d["spec"]["template"]["spec"]["containers"][0]["image"],
            "echo:1"
        );
        assert_eq!(d["metadata"]["annotations"][COMMIT_ANNOTATION], "c0ffee");
        assert_eq!(
            d["metadata"]["annotations"][TEMPLATE_HASH_ANNOTATION],
            json!(held[0].template_hash)
        );
        let ro = objs
            .iter()
            .find(|o| o["kind"] == "Rollout")
            .expect("rollout");
        assert_eq!(ro["metadata"]["annotations"][PATH_ANNOTATION], "apps/echo");
        assert_eq!(
            ro["metadata"]["annotations"][PROGRESS_DEADLINE_ANNOTATION],
            "600s"
        );
    }

    #[test]
    fn the_http_route_of_a_gateway_routing_carries_gits_rules_in_an_annotation() {
        let r = render("", "");
        let rollout = r
            .objects
            .iter()
            .find(|o| o.object["kind"] == "Rollout")
            .map(|o| o.object.clone())
            .expect("rollout");
        let mut text = serde_json::to_string(&rollout).expect("json");
        text = text.replace(
            r#""steps":[{"replicas":1}]"#,
            r#""steps":[{"replicas":1,"weight":20}],"trafficRoutings":[{"service":"echo","gateway":{"httpRouteName":"echo"}}]"#,
        );
        assert!(text.contains("httpRouteName"), "{text}");
        let app = AppDir {
            name: "echo".into(),
            dir: "apps/echo".into(),
            referenced: Vec::new(),
            namespace: None,
        };
        let deployment = "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: echo\nspec:\n  replicas: 4\n  selector:\n    matchLabels: {app: echo}\n  template:\n    metadata:\n      labels: {app: echo}\n    spec:\n      containers:\n        - name: echo\n          image: echo:1\n";
        let route = "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata:\n  name: echo\nspec:\n  rules:\n    - backendRefs: [{name: echo, port: 80}]\n";
        let other = route.replace("name: echo\nspec", "name: other\nspec");
        let files = [
            SourceFile::new("apps/echo/deploy.yaml", deployment),
            SourceFile::new("apps/echo/rollout.yaml", text.as_str()),
            SourceFile::new("apps/echo/route.yaml", route),
            SourceFile::new("apps/echo/other.yaml", other.as_str()),
        ];
        let r = crate::plan::render(&app, "default", &files, None, &RevisionState::default())
            .expect("renders");
        let mut objs = objects(&r);
        let held = hold_workloads(
            &r.kruise_rollouts,
            &mut objs,
            "c",
            "apps/echo",
            Duration::from_secs(600),
        )
        .expect("plans");
        assert_eq!(
            held.routes,
            vec![HeldRoute {
                namespace: "default".into(),
                api_version: "gateway.networking.k8s.io/v1".into(),
                name: "echo".into(),
                rollout: "echo".into(),
            }]
        );
        let annotated = |name: &str| {
            objs.iter()
                .find(|o| o["kind"] == "HTTPRoute" && o["metadata"]["name"] == name)
                .and_then(|o| o["metadata"]["annotations"][GIT_RULES_ANNOTATION].as_str())
                .map(|a| serde_json::from_str::<Value>(a).expect("json"))
        };
        assert_eq!(
            annotated("echo"),
            Some(json!([{"backendRefs": [{"name": "echo", "port": 80}]}]))
        );
        assert_eq!(
            annotated("other"),
            None,
            "another route is not the Rollout's"
        );
        let route = objs
            .iter()
            .find(|o| o["kind"] == "HTTPRoute" && o["metadata"]["name"] == "echo")
            .expect("route");
        assert!(
            route["spec"]["rules"].is_array(),
            "the plan keeps the rules (the worker removes them once the executor co-owns them)"
        );
    }

    #[test]
    fn partition_style_carries_gits_strategy_in_an_annotation() {
        let r = render(
            "  annotations:\n    rollouts.kruise.io/rolling-style: partition\n",
            "  strategy:\n    rollingUpdate: {maxSurge: 0}\n",
        );
        let mut objs = objects(&r);
        hold_workloads(
            &r.kruise_rollouts,
            &mut objs,
            "c",
            "d",
            Duration::from_secs(1),
        )
        .expect("plans");
        let d = objs
            .iter()
            .find(|o| o["kind"] == "Deployment")
            .expect("deployment");
        assert!(d["spec"].get("strategy").is_none());
        let git: Value = serde_json::from_str(
            d["metadata"]["annotations"][GIT_STRATEGY_ANNOTATION]
                .as_str()
                .expect("annotation"),
        )
        .expect("json");
        assert_eq!(git["rollingUpdate"]["maxSurge"], 0);
    }

    #[test]
    fn a_bad_progress_deadline_rejects_the_commit() {
        let r = render(
            "  annotations:\n    rollgit.dev/progress-deadline: soon\n",
            "",
        );
        let mut objs = objects(&r);
        let errs = hold_workloads(
            &r.kruise_rollouts,
            &mut objs,
            "c",
            "d",
            Duration::from_secs(1),
        )
        .expect_err("rejected");
        assert!(
            errs[0].starts_with("apps/echo/rollout.yaml:1: kruise: metadata.annotations.rollgit.dev/progress-deadline:"),
            "{errs:?}"
        );
    }
}
