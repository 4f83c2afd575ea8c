//! Argo Rollouts in an app: applied as written, read with the one Argo parser, an invalid one
//! rejecting the commit with `path:line`, and what rollgit's executor does not run listed
//! (with `path:line`) for the plan stage.

mod common;

use common::{one, render_err, render_ok};
use rollgit_core::argo_exec::ScaleDown;

const PATH: &str = "apps/app/rollout.yaml";

fn rollout(canary: &str) -> String {
    format!(
        "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: example-rollout
spec:
  replicas: 10
  selector:
    matchLabels:
      app: nginx
  template:
    metadata:
      labels:
        app: nginx
    spec:
      containers:
      - name: nginx
        image: nginx:1.15.4
  strategy:
    canary:
{canary}"
    )
}

const SEED002: &str = "      maxSurge: \"25%\"
      maxUnavailable: 0
      steps:
      - setWeight: 10
      - pause:
          duration: 1h
      - setWeight: 20
      - pause: {}
";

#[test]
fn the_seed_rollout_is_applied_and_read() {
    let r = render_ok(&one(PATH, &rollout(SEED002)));
    assert_eq!(r.objects.len(), 1, "the Rollout itself is applied");
    assert_eq!(r.objects[0].object["metadata"]["namespace"], "default");
    assert_eq!(r.argo_rollouts.len(), 1);
    let a = &r.argo_rollouts[0];
    assert_eq!(a.key.name, "example-rollout");
    assert_eq!(a.key.namespace.as_deref(), Some("default"));
    assert_eq!(a.rollout.canary.replicas, 10);
    assert_eq!(a.rollout.canary.steps.len(), 4);
    assert!(
        a.rollout.unsupported.is_empty(),
        "{:?}",
        a.rollout.unsupported
    );
    assert_eq!(a.rollout.source.to_string(), format!("{PATH}:1"));
}

#[test]
fn an_invalid_rollout_rejects_the_commit_with_path_and_line() {
    let cases = [
        (
            "setWeight out of range",
            SEED002.replace("setWeight: 20", "setWeight: 120"),
            "apps/app/rollout.yaml:26: argo: steps[2].setWeight: SetWeight needs to be between 0 and 100, got 120",
        ),
        (
            "a pause in days",
            SEED002.replace("duration: 1h", "duration: 1d"),
            "apps/app/rollout.yaml:25: argo: steps[1].pause.duration: Duration needs to be greater than 0, got \"1d\"",
        ),
        (
            "traffic routing without services",
            format!(
                "{SEED002}      trafficRouting:\n        nginx:\n          stableIngress: web\n"
            ),
            "apps/app/rollout.yaml:28: argo: trafficRouting: Canary service and Stable service must to be set to use Traffic Routing",
        ),
        (
            "nginx without a stable Ingress",
            format!(
                "      canaryService: c\n      stableService: s\n{SEED002}      trafficRouting:\n        nginx: {{annotationPrefix: x}}\n"
            ),
            "apps/app/rollout.yaml:31: argo: trafficRouting.nginx.stableIngress: is required",
        ),
    ];
    for (name, canary, want) in cases {
        let errors = render_err(&one(PATH, &rollout(&canary)));
        assert_eq!(errors, [want], "{name}");
    }
}

#[test]
fn a_selector_that_misses_the_template_labels_is_rejected() {
    let text =
        rollout(SEED002).replace("      app: nginx\n  template", "      app: web\n  template");
    let errors = render_err(&one(PATH, &text));
    assert_eq!(
        errors,
        [
            "apps/app/rollout.yaml:7: argo: spec.selector: `selector` does not match template `labels`"
        ]
    );
}

#[test]
fn steps_rollgit_does_not_run_are_listed_with_their_lines() {
    let canary = "      steps:
      - setWeight: 10
      - analysis:
          templates:
          - templateName: success-rate
      - experiment:
          templates: []
      - setHeaderRoute:
          name: h
      - setMirrorRoute:
          name: m
";
    let r = render_ok(&one(PATH, &rollout(canary)));
    let lines: Vec<String> = r.argo_rollouts[0]
        .rollout
        .unsupported
        .iter()
        .map(|e| {
            format!(
                "{}:{}: {}",
                e.path,
                e.line,
                e.field.clone().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(
        lines,
        [
            "apps/app/rollout.yaml:22: spec.strategy.canary.steps[1].analysis",
            "apps/app/rollout.yaml:25: spec.strategy.canary.steps[2].experiment",
            "apps/app/rollout.yaml:27: spec.strategy.canary.steps[3].setHeaderRoute",
            "apps/app/rollout.yaml:29: spec.strategy.canary.steps[4].setMirrorRoute",
        ]
    );
    let first = r.argo_rollouts[0].rollout.unsupported[0].to_string();
    assert_eq!(
        first,
        "apps/app/rollout.yaml:22: argo: spec.strategy.canary.steps[1].analysis: analysis steps are not run by rollgit's Argo Rollouts executor yet (they come with the analysis issue); run Argo Rollouts' own controller next to rollgit (rolloutControllers.argo: external) to use it"
    );
}

#[test]
fn blue_green_and_other_routers_are_listed_not_rejected() {
    let bg = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: bg
spec:
  replicas: 2
  strategy:
    blueGreen:
      activeService: web
";
    let r = render_ok(&one(PATH, bg));
    assert_eq!(r.argo_rollouts[0].rollout.unsupported.len(), 1);
    assert_eq!(
        r.argo_rollouts[0].rollout.unsupported[0].field.as_deref(),
        Some("spec.strategy.blueGreen")
    );
    let istio = format!(
        "      canaryService: c\n      stableService: s\n{SEED002}      trafficRouting:\n        istio:\n          virtualService: {{name: vs}}\n"
    );
    let r = render_ok(&one(PATH, &rollout(&istio)));
    let u = &r.argo_rollouts[0].rollout.unsupported;
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].line, 31);
}

#[test]
fn traffic_routers_and_workload_refs_are_read() {
    let canary = format!(
        "      canaryService: web-canary
      stableService: web-stable
      dynamicStableScale: true
      abortScaleDownDelaySeconds: 10
{SEED002}      trafficRouting:
        nginx:
          stableIngress: web
          additionalIngressAnnotations:
            canary-by-header: X-Canary
        plugins:
          argoproj-labs/gatewayAPI:
            httpRoute: web-route
            namespace: default
"
    );
    let r = render_ok(&one(PATH, &rollout(&canary)));
    let a = &r.argo_rollouts[0].rollout;
    assert_eq!(a.routing.canary_service.as_deref(), Some("web-canary"));
    let nginx = a.routing.nginx.as_ref().expect("nginx");
    assert_eq!(nginx.stable_ingresses, ["web"]);
    assert_eq!(nginx.annotation_prefix, "nginx.ingress.kubernetes.io");
    assert_eq!(
        nginx.additional_ingress_annotations["canary-by-header"],
        "X-Canary"
    );
    let gw = a.routing.gateway_api.as_ref().expect("gateway API");
    assert_eq!(gw.http_routes, ["web-route"]);
    assert!(a.canary.dynamic_stable_scale && a.canary.traffic_routing);
    assert_eq!(a.canary.abort_scale_down_delay_seconds, Some(10));

    let w = "apiVersion: argoproj.io/v1alpha1
kind: Rollout
metadata:
  name: web
spec:
  replicas: 3
  workloadRef:
    apiVersion: apps/v1
    kind: Deployment
    name: web
    scaleDown: onsuccess
  strategy:
    canary:
      steps:
      - setWeight: 50
";
    let r = render_ok(&one(PATH, w));
    let wr = r.argo_rollouts[0]
        .rollout
        .workload_ref
        .as_ref()
        .expect("workloadRef");
    assert_eq!((wr.kind.as_str(), wr.name.as_str()), ("Deployment", "web"));
    assert_eq!(wr.scale_down, ScaleDown::OnSuccess);
    let both = w.replace("  strategy:", "  template: {}\n  strategy:");
    assert_eq!(
        render_err(&one(PATH, &both)),
        [
            "apps/app/rollout.yaml:12: argo: spec.template: template must be empty for workload reference rollout"
        ]
    );
}

#[test]
fn a_live_rollout_is_read_by_the_same_parser() {
    let r = render_ok(&one(PATH, &rollout(SEED002)));
    let live = &r.objects[0].object;
    let read = rollgit_render::read_argo_object("rollouts/default/example-rollout", live)
        .expect("the live object reads");
    assert_eq!(read.canary, r.argo_rollouts[0].rollout.canary);
}
