//! OpenKruise Rollouts in an app (seed 004): validated with the commit, applied as objects, and
//! listed with the workload of the app they hold.

mod common;

use common::{render_err, render_ok};
use rollgit_core::kruise::RollingStyle;
use rollgit_core::kruise_run::{HeaderMatch, IngressClass, RouteMatch};
use rollgit_render::SourceFile;

const DEPLOYMENT: &str = "apiVersion: apps/v1
kind: Deployment
metadata:
  name: echoserver
spec:
  replicas: 4
  selector:
    matchLabels: {app: echoserver}
  template:
    metadata:
      labels: {app: echoserver}
    spec:
      containers:
        - name: echoserver
          image: openkruise/demo:1.10.2
";

fn rollout(extra_meta: &str, steps: &str, routing: &str) -> String {
    format!(
        "apiVersion: rollouts.kruise.io/v1alpha1
kind: Rollout
metadata:
  name: rollouts-demo
{extra_meta}spec:
  objectRef:
    workloadRef:
      apiVersion: apps/v1
      kind: Deployment
      name: echoserver
  strategy:
    canary:
      steps:
{steps}{routing}"
    )
}

const SEED_STEPS: &str = "        - matches:
            - headers:
                - type: Exact
                  name: User-Agent
                  value: Andriod
          pause: {}
          replicas: 1
        - weight: 50
          replicas: 50%
          pause: {duration: 60}
        - weight: 100
          replicas: 100%
          pause: {duration: 60}
";

const ROUTING: &str = "      trafficRoutings:
        - service: echoserver
          ingress:
            name: echoserver
";

fn files(rollout: &str) -> Vec<SourceFile> {
    vec![
        SourceFile::new("apps/echo/deployment.yaml", DEPLOYMENT),
        SourceFile::new("apps/echo/rollout.yaml", rollout),
    ]
}

#[test]
fn seed004_rollout_is_applied_and_holds_its_deployment() {
    let r = render_ok(&files(&rollout("", SEED_STEPS, ROUTING)));
    assert_eq!(r.kruise_rollouts.len(), 1);
    let k = &r.kruise_rollouts[0];
    assert_eq!(k.namespace, "default");
    let held = k.workload.as_ref().expect("the Deployment of the app");
    assert_eq!(
        (held.group.as_str(), held.kind.as_str(), held.name.as_str()),
        ("apps", "Deployment", "echoserver")
    );
    assert_eq!(
        k.rollout.style,
        RollingStyle::Canary,
        "v1alpha1 without the annotation"
    );
    assert_eq!(k.rollout.steps.len(), 3);
    assert_eq!(
        k.rollout.matches[0],
        vec![RouteMatch {
            headers: vec![HeaderMatch {
                name: "User-Agent".into(),
                value: "Andriod".into(),
                regex: false
            }]
        }]
    );
    assert_eq!(k.rollout.steps[1].traffic.as_deref(), Some("50%"));
    let t = &k.rollout.traffic_routings[0];
    assert_eq!(t.service, "echoserver");
    assert_eq!(t.ingress.as_deref(), Some("echoserver"));
    assert_eq!(t.class, IngressClass::Nginx);
    assert_eq!(t.grace_period_seconds, 3);
    // The Rollout itself is applied, in the app's namespace.
    let obj = r
        .objects
        .iter()
        .find(|o| o.key.kind == "Rollout")
        .expect("the Rollout is an object");
    assert_eq!(obj.object["metadata"]["namespace"], "default");
}

#[test]
fn partition_annotation_and_alb_class() {
    let r = render_ok(&files(&rollout(
        "  annotations:\n    rollouts.kruise.io/rolling-style: partition\n",
        SEED_STEPS,
        "      trafficRoutings:\n        - service: echoserver\n          gracePeriodSeconds: 0\n          ingress:\n            name: echoserver\n            classType: aliyun-alb\n",
    )));
    let k = &r.kruise_rollouts[0];
    assert_eq!(k.rollout.style, RollingStyle::Partition);
    assert_eq!(k.rollout.traffic_routings[0].class, IngressClass::AliyunAlb);
    assert_eq!(k.rollout.traffic_routings[0].grace_period_seconds, 0);
}

#[test]
fn a_regular_expression_header() {
    let steps = "        - matches:
            - headers:
                - type: RegularExpression
                  name: User-Agent
                  value: Andr.*
          replicas: 1
";
    let r = render_ok(&files(&rollout("", steps, ROUTING)));
    assert!(r.kruise_rollouts[0].rollout.matches[0][0].headers[0].regex);
}

#[test]
fn invalid_rollouts_reject_the_commit_with_path_and_line() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "strict percent",
            rollout("", "        - replicas: \"50\"\n", ""),
            "apps/echo/rollout.yaml:14: kruise: steps[0].replicas: replicas must be positive number",
        ),
        (
            "header type",
            rollout(
                "",
                "        - replicas: 1\n          matches:\n            - headers:\n                - type: Prefix\n                  name: a\n                  value: b\n",
                ROUTING,
            ),
            "apps/echo/rollout.yaml:17: kruise: steps[0].matches[0].headers[0].type: must be Exact or RegularExpression, got \"Prefix\"",
        ),
        (
            "no name",
            rollout("", "        - replicas: 1\n", "").replace("      name: echoserver\n", ""),
            "apps/echo/rollout.yaml:1: kruise: spec.objectRef.workloadRef.name: is required",
        ),
    ];
    for (name, text, want) in cases {
        let errs = render_err(&files(&text));
        assert!(
            errs.iter().any(|e| e.starts_with(want)),
            "{name}: want {want:?} in {errs:#?}"
        );
    }
}

/// What OpenKruise runs but rollgit's executor does not is not an error of the render: it is
/// listed in `unsupported` (the plan refuses it only when rollgit is the controller), and the
/// workload is not held.
#[test]
fn what_only_kruise_runs_is_unsupported_not_invalid() {
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "ingress class",
            rollout(
                "",
                "        - replicas: 1\n",
                "      trafficRoutings:\n        - service: echoserver\n          ingress:\n            name: echoserver\n            classType: traefik\n",
            ),
            "apps/echo/rollout.yaml:19: kruise: trafficRoutings[0].ingress.classType: \"traefik\" is not run by rollgit's Kruise Rollout executor (nginx, aliyun-alb or mse)",
        ),
        (
            "custom network refs",
            rollout(
                "",
                "        - replicas: 1\n",
                "      trafficRoutings:\n        - service: echoserver\n          customNetworkRefs:\n            - {apiVersion: networking.istio.io/v1beta1, kind: VirtualService, name: echo}\n",
            ),
            "apps/echo/rollout.yaml:17: kruise: trafficRoutings[0].customNetworkRefs: is not run by rollgit's Kruise Rollout executor",
        ),
        (
            "a path match through a gateway",
            rollout(
                "",
                "        - replicas: 1\n          matches:\n            - path: {type: PathPrefix, value: /beta}\n",
                "      trafficRoutings:\n        - service: echoserver\n          gateway:\n            httpRouteName: echo\n",
            ),
            "apps/echo/rollout.yaml:16: kruise: steps[0].matches[0].path: is not run by rollgit's Kruise Rollout executor (it matches headers)",
        ),
        (
            "daemonset",
            rollout("", "        - replicas: 1\n", "")
                .replace("kind: Deployment", "kind: DaemonSet"),
            "apps/echo/rollout.yaml:1: kruise: spec.objectRef.workloadRef: DaemonSet (apps/v1) is not rolled by rollgit's Kruise Rollout executor",
        ),
        (
            "blue-green",
            rollout("", "        - replicas: 1\n", "").replace("    canary:\n", "    blueGreen:\n"),
            "apps/echo/rollout.yaml:12: kruise: spec.strategy.blueGreen: is not run by rollgit's Kruise Rollout executor",
        ),
    ];
    for (name, text, want) in cases {
        let r = render_ok(&files(&text));
        let k = &r.kruise_rollouts[0];
        let unsupported: Vec<String> = k
            .rollout
            .unsupported
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            unsupported.iter().any(|e| e.starts_with(want)),
            "{name}: want {want:?} in {unsupported:#?}"
        );
        assert!(k.workload.is_none(), "{name}: nothing held");
    }
}

#[test]
fn two_rollouts_of_one_workload_are_an_error() {
    let one = rollout("", "        - replicas: 1\n", "");
    let two = one.replace("name: rollouts-demo", "name: rollouts-two");
    let errs = render_err(&[
        SourceFile::new("apps/echo/deployment.yaml", DEPLOYMENT),
        SourceFile::new("apps/echo/rollout.yaml", one.as_str()),
        SourceFile::new("apps/echo/rollout2.yaml", two.as_str()),
    ]);
    assert!(
        errs.iter().any(|e| e.starts_with(
            "apps/echo/rollout2.yaml:1: kruise: spec.objectRef.workloadRef: Deployment echoserver is already rolled by Rollout rollouts-demo (apps/echo/rollout.yaml:1)"
        )),
        "{errs:#?}"
    );
}

#[test]
fn a_workload_outside_the_app_is_a_warning() {
    let r = render_ok(&[SourceFile::new(
        "apps/echo/rollout.yaml",
        rollout("", "        - replicas: 1\n", "").as_str(),
    )]);
    assert!(r.kruise_rollouts[0].workload.is_none());
    assert!(
        r.warnings.iter().any(|w| w
            .to_string()
            .contains("Deployment echoserver is not in this app")),
        "{:?}",
        r.warnings
    );
}

#[test]
fn a_live_object_in_the_v1alpha1_shape_reads_as_v1alpha1() {
    let text = rollout("", SEED_STEPS, ROUTING);
    let docs: serde_json::Value = serde_saphyr::from_str(&text).expect("yaml");
    let mut live = docs;
    live["apiVersion"] = serde_json::json!("rollouts.kruise.io/v1beta1");
    let r =
        rollgit_render::parse_kruise_rollout_value("default/rollouts-demo", &live).expect("parses");
    assert!(r.v1alpha1);
    assert_eq!(r.style, RollingStyle::Canary);
    assert_eq!(r.steps[2].replicas, Some("100%".into()));
    let bad = serde_json::json!({"apiVersion": "rollouts.kruise.io/v1beta1", "kind": "Rollout",
        "metadata": {"name": "x"}, "spec": {"workloadRef": {"kind": "Deployment", "name": "a"},
        "strategy": {"canary": {"steps": [{"replicas": "50"}]}}}});
    let errs = rollgit_render::parse_kruise_rollout_value("default/x", &bad).expect_err("invalid");
    assert!(
        errs[0].to_string().contains("steps[0].replicas"),
        "{errs:?}"
    );
}

const GATEWAY: &str = "      trafficRoutings:
        - service: echoserver
          gateway:
            httpRouteName: echo
";

/// `trafficRoutings[].gateway.httpRouteName` is run by rollgit (Gateway API HTTPRoute).
#[test]
fn a_gateway_http_route_is_accepted_and_holds_the_workload() {
    for (name, text) in [
        ("v1alpha1", rollout("", SEED_STEPS, GATEWAY)),
        (
            "v1beta1",
            rollout(
                "",
                "        - replicas: 1\n          traffic: 20%\n",
                GATEWAY,
            )
            .replace("v1alpha1", "v1beta1")
            .replace("  objectRef:\n    workloadRef:\n", "  workloadRef:\n")
            .replace(
                "      apiVersion: apps/v1\n      kind: Deployment\n      name: echoserver\n",
                "    apiVersion: apps/v1\n    kind: Deployment\n    name: echoserver\n",
            ),
        ),
    ] {
        let r = render_ok(&files(&text));
        let k = &r.kruise_rollouts[0];
        assert!(
            k.rollout.unsupported.is_empty(),
            "{name}: {:?}",
            k.rollout.unsupported
        );
        assert!(k.workload.is_some(), "{name}: the Deployment is held");
        let t = &k.rollout.traffic_routings[0];
        assert_eq!(t.http_route.as_deref(), Some("echo"), "{name}");
        assert_eq!(t.ingress, None, "{name}");
        assert_eq!(t.service, "echoserver", "{name}");
    }
}

/// What the gateway routing still refuses or rejects names its file, line and field.
#[test]
fn gateway_errors_name_file_line_and_field() {
    let empty = rollout(
        "",
        "        - replicas: 1\n",
        "      trafficRoutings:\n        - service: echoserver\n          gateway:\n            httpRouteName: \"\"\n",
    );
    let errs = match common::render(&files(&empty)) {
        Ok(_) => panic!("an empty httpRouteName renders"),
        Err(e) => e.0,
    };
    let e = errs
        .iter()
        .find(|e| {
            e.to_string()
                .contains("TrafficRouting.Gateway must set the name of HTTPRoute")
        })
        .unwrap_or_else(|| panic!("{errs:#?}"));
    assert_eq!((e.path.as_str(), e.line), ("apps/echo/rollout.yaml", 18));
    assert_eq!(
        e.field.as_deref(),
        Some("spec.strategy.canary.trafficRoutings[0].gateway.httpRouteName")
    );
    let query = rollout(
        "",
        "        - replicas: 1\n          matches:\n            - queryParams: [{name: canary, value: \"1\"}]\n",
        GATEWAY,
    );
    let r = render_ok(&files(&query));
    let u = &r.kruise_rollouts[0].rollout.unsupported;
    let e = u
        .iter()
        .find(|e| e.to_string().contains("queryParams"))
        .unwrap_or_else(|| panic!("{u:#?}"));
    assert_eq!((e.path.as_str(), e.line), ("apps/echo/rollout.yaml", 16));
    assert_eq!(
        e.field.as_deref(),
        Some("spec.strategy.canary.steps[0].matches[0].queryParams")
    );
    assert!(r.kruise_rollouts[0].workload.is_none(), "nothing held");
}
