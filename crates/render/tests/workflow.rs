//! Multi-cluster delivery (seed 003): topology Policies, Workflows and inline workflows are
//! read, and every input rollgit does not run rejects the commit with `path:line`.

mod common;

use common::{fixture, render_err, render_ok};
use rollgit_render::SourceFile;
use rollgit_render::workflow::{
    FleetCluster, StepSpec, Target, check_go_duration, resolve_delivery,
};

fn fleet() -> Vec<FleetCluster> {
    vec![
        FleetCluster {
            name: "cluster-test".into(),
            labels: [("env".to_string(), "test".to_string())].into(),
        },
        FleetCluster {
            name: "cluster-prod".into(),
            labels: [("env".to_string(), "prod".to_string())].into(),
        },
    ]
}

/// Seed 003 with one file replaced.
fn seed_with(path: &str, text: &str) -> Vec<SourceFile> {
    let mut files = fixture("seed003");
    let full = format!("apps/seed003/{path}");
    files.retain(|f| f.path != full);
    files.push(SourceFile::new(full, text));
    files
}

fn seed_file(name: &str) -> String {
    String::from_utf8(
        fixture("seed003")
            .into_iter()
            .find(|f| f.path.ends_with(name))
            .expect("file")
            .content,
    )
    .expect("utf-8")
}

#[test]
fn seed_003_reads_as_two_deploy_steps_the_second_waiting_for_approval() {
    let r = render_ok(&fixture("seed003"));
    let app = &r.applications[0];
    let d = app.delivery.as_ref().expect("a delivery");
    assert_eq!(d.workflow_ref.as_deref(), Some("deploy-demo"));
    let names: Vec<&str> = d.steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["deploy-test", "deploy-prod"]);
    assert!(matches!(
        &d.steps[0].spec,
        StepSpec::Deploy {
            auto: true,
            parallelism: 5,
            ..
        }
    ));
    assert!(matches!(
        &d.steps[1].spec,
        StepSpec::Deploy { auto: false, .. }
    ));
    // The referenced Deployment is the component's, not applied on its own.
    let deployment: Vec<_> = r
        .objects
        .iter()
        .filter(|o| o.key.kind == "Deployment")
        .collect();
    assert_eq!(deployment.len(), 1);
    assert_eq!(deployment[0].component.as_deref(), Some("demo"));
    assert_eq!(r.publish_version, "version1");

    let steps = resolve_delivery(d, &fleet(), "hub").expect("known clusters");
    let t = |c: &str| Target {
        cluster: c.into(),
        namespace: None,
    };
    assert_eq!(steps[0].targets, [t("cluster-test")]);
    assert_eq!(steps[1].targets, [t("cluster-prod")]);
}

#[test]
fn an_unknown_cluster_rejects_the_commit_at_its_line() {
    let r = render_ok(&seed_with(
        "policy-topology.yaml",
        &seed_file("policy-topology.yaml").replace("[\"cluster-prod\"]", "[\"cluster-prd\"]"),
    ));
    let d = r.applications[0].delivery.as_ref().expect("delivery");
    let errs = resolve_delivery(d, &fleet(), "hub").expect_err("unknown cluster");
    let lines: Vec<String> = errs.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "apps/seed003/policy-topology.yaml:17: policy \"cluster-prod\": unknown cluster \"cluster-prd\" (the fleet: local, cluster-test, cluster-prod)"
        ]
    );
}

#[test]
fn local_is_the_repositorys_cluster_and_label_selectors_pick_from_the_fleet() {
    let policies = "apiVersion: core.oam.dev/v1alpha1
kind: Policy
metadata:
  name: cluster-test
  namespace: demo
type: topology
properties:
  clusters: [local]
---
apiVersion: core.oam.dev/v1alpha1
kind: Policy
metadata:
  name: cluster-prod
  namespace: demo
type: topology
properties:
  clusterLabelSelector: {env: prod}
  namespace: demo-prod
";
    let r = render_ok(&seed_with("policy-topology.yaml", policies));
    let d = r.applications[0].delivery.as_ref().expect("delivery");
    let steps = resolve_delivery(d, &fleet(), "hub").expect("resolves");
    assert_eq!(
        steps[0].targets,
        [Target {
            cluster: "hub".into(),
            namespace: None
        }]
    );
    assert_eq!(
        steps[1].targets,
        [Target {
            cluster: "cluster-prod".into(),
            namespace: Some("demo-prod".into())
        }]
    );
    let none = policies.replace("{env: prod}", "{env: staging}");
    let r = render_ok(&seed_with("policy-topology.yaml", &none));
    let d = r.applications[0].delivery.as_ref().expect("delivery");
    let errs = resolve_delivery(d, &fleet(), "hub").expect_err("matches nothing");
    assert_eq!(
        errs[0].to_string(),
        "apps/seed003/policy-topology.yaml:10: policy \"cluster-prod\": clusterLabelSelector env=staging matches no cluster of the fleet"
    );
}

#[test]
fn bad_workflows_reject_the_commit_with_path_and_line() {
    let wf = seed_file("workflow.yaml");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "an unsupported step type names the supported ones",
            wf.replacen("type: deploy", "type: notification", 1),
            "apps/seed003/workflow.yaml:7: workflow step \"deploy-test\": unsupported step type \"notification\" (supported: deploy, suspend)",
        ),
        (
            "a policy that does not exist",
            wf.replace("[\"cluster-prod\"]", "[\"cluster-production\"]"),
            "apps/seed003/workflow.yaml:15: workflow step \"deploy-prod\": no policy \"cluster-production\" in namespace \"demo\" (known: cluster-prod, cluster-test)",
        ),
        (
            "auto must be a boolean",
            wf.replace("auto: false", "auto: \"no\""),
            "apps/seed003/workflow.yaml:14: workflow step \"deploy-prod\": auto must be true or false, got a string",
        ),
        (
            "a step field rollgit does not run",
            wf.replacen(
                "    name: deploy-test\n",
                "    name: deploy-test\n    if: always\n",
                1,
            ),
            "apps/seed003/workflow.yaml:9: workflow step 0: \"if\" is not supported by rollgit (supported: name, type, properties, meta)",
        ),
        (
            "duplicate step names",
            wf.replace("name: deploy-prod", "name: deploy-test"),
            "apps/seed003/workflow.yaml:11: duplicate workflow step name \"deploy-test\" (also at line 7)",
        ),
        (
            "DAG mode",
            wf.replace("steps:\n", "mode:\n  steps: DAG\nsteps:\n"),
            "apps/seed003/workflow.yaml:7: workflow mode steps: \"DAG\" is not supported by rollgit (supported: steps: StepByStep)",
        ),
    ];
    for (name, text, want) in cases {
        let errs = render_err(&seed_with("workflow.yaml", &text));
        assert!(errs.iter().any(|e| e == want), "{name}: {errs:#?}");
    }
}

#[test]
fn suspend_durations_are_go_durations_as_kubevela_parses_them() {
    let cases = [
        ("30s", Ok(30_000_000_000)),
        ("1h30m", Ok(5_400_000_000_000)),
        ("500ms", Ok(500_000_000)),
        ("0", Ok(0)),
        (
            "1min",
            Err("time: unknown unit \"min\" in duration \"1min\""),
        ),
        ("10", Err("time: missing unit in duration \"10\"")),
        ("1d", Err("time: unknown unit \"d\" in duration \"1d\"")),
        ("", Err("time: invalid duration \"\"")),
        ("-5s", Err("invalid duration \"-5s\": must not be negative")),
    ];
    for (text, want) in cases {
        let got = check_go_duration(text);
        match want {
            Ok(ns) => assert_eq!(got, Ok(ns), "{text}"),
            Err(prefix) => assert!(
                got.as_ref().is_err_and(|e| e.starts_with(prefix)),
                "{text}: {got:?}"
            ),
        }
    }
    let inline = |duration: &str| {
        format!(
            "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: demo
  namespace: demo
spec:
  components:
    - name: demo
      type: ref-objects
      properties:
        objects:
          - apiVersion: apps/v1
            kind: Deployment
            name: demo
  policies:
    - name: prod
      type: topology
      properties:
        clusters: [cluster-prod]
  workflow:
    steps:
      - name: wait
        type: suspend
        properties:
          duration: {duration}
      - name: ship
        type: deploy
        properties:
          policies: [prod]
"
        )
    };
    let errs = render_err(&seed_with("app.yaml", &inline("1min")));
    assert!(
        errs.iter().any(|e| e.starts_with(
            "apps/seed003/app.yaml:25: workflow step \"wait\": duration: time: unknown unit \"min\" in duration \"1min\""
        )),
        "{errs:#?}"
    );
    let errs = render_err(&seed_with("app.yaml", &inline("10")));
    assert!(
        errs.iter().any(|e| e.starts_with(
            "apps/seed003/app.yaml:25: workflow step \"wait\": duration must be a Go duration string such as \"30s\" or \"1h30m\", got an integer 10"
        )),
        "{errs:#?}"
    );
    let errs = render_err(&seed_with("app.yaml", &inline("\"10\"")));
    assert!(
        errs.iter().any(|e| e.starts_with(
            "apps/seed003/app.yaml:25: workflow step \"wait\": duration: time: missing unit in duration \"10\""
        )),
        "{errs:#?}"
    );
    let r = render_ok(&seed_with("app.yaml", &inline("90s")));
    let d = r.applications[0].delivery.as_ref().expect("delivery");
    assert_eq!(
        d.steps[0].spec,
        StepSpec::Suspend {
            duration: Some(("90s".into(), 90_000_000_000)),
            message: None
        }
    );
}

#[test]
fn unsupported_policies_and_workflow_refs_are_refused_not_dropped() {
    let override_policy = format!(
        "{}---
apiVersion: core.oam.dev/v1alpha1
kind: Policy
metadata:
  name: bigger
  namespace: demo
type: override
properties:
  components: []
",
        seed_file("policy-topology.yaml")
    );
    let errs = render_err(&seed_with("policy-topology.yaml", &override_policy));
    assert!(
        errs.iter().any(|e| e
            == "apps/seed003/policy-topology.yaml:24: policy \"bigger\": unsupported policy type \"override\" (supported: topology)"),
        "{errs:#?}"
    );
    let errs = render_err(&seed_with(
        "app.yaml",
        &seed_file("app.yaml").replace("ref: deploy-demo", "ref: deploy-dmo"),
    ));
    assert!(
        errs.iter().any(|e| e
            == "apps/seed003/app.yaml:18: spec.workflow.ref: no Workflow \"deploy-dmo\" in namespace \"demo\" among the app's files (found: deploy-demo)"),
        "{errs:#?}"
    );
}

#[test]
fn topology_policies_without_a_workflow_deploy_to_all_of_them_at_once() {
    let app = "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: demo
  namespace: demo
spec:
  components:
    - name: demo
      type: ref-objects
      properties:
        objects:
          - apiVersion: apps/v1
            kind: Deployment
            name: demo
  policies:
    - name: everywhere
      type: topology
      properties:
        clusters: [cluster-test, cluster-prod]
";
    let files = vec![
        SourceFile::new("apps/seed003/app-meta.yaml", seed_file("app-meta.yaml")),
        SourceFile::new("apps/seed003/app.yaml", app),
    ];
    let r = render_ok(&files);
    let d = r.applications[0].delivery.as_ref().expect("delivery");
    let steps = resolve_delivery(d, &fleet(), "hub").expect("resolves");
    assert_eq!(steps.len(), 1);
    let clusters: Vec<&str> = steps[0]
        .targets
        .iter()
        .map(|t| t.cluster.as_str())
        .collect();
    assert_eq!(clusters, ["cluster-prod", "cluster-test"]);
}

#[test]
fn an_application_without_policies_or_workflow_has_no_delivery() {
    let app = seed_file("app.yaml").replace("  workflow:\n    ref: deploy-demo\n", "");
    let files = vec![
        SourceFile::new("apps/seed003/app-meta.yaml", seed_file("app-meta.yaml")),
        SourceFile::new("apps/seed003/app.yaml", app),
    ];
    let r = render_ok(&files);
    assert!(r.applications[0].delivery.is_none());
}

#[test]
fn ref_objects_select_by_labels_in_the_same_commit_and_a_selector_matching_nothing_is_an_error() {
    let config = "apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-a
  namespace: demo
  labels: {app: demo}
data: {k: a}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: demo-b
  namespace: demo
  labels: {app: demo}
data: {k: b}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: other
  namespace: demo
  labels: {app: other}
data: {k: o}
";
    let app = |selector: &str| {
        seed_file("app.yaml").replace(
            "            name: demo\n",
            &format!(
                "            name: demo\n          - apiVersion: v1\n            kind: ConfigMap\n            labelSelector: {selector}\n"
            ),
        )
    };
    let mut files = seed_with("app.yaml", &app("{app: demo}"));
    files.push(SourceFile::new("apps/seed003/config.yaml", config));
    let r = render_ok(&files);
    let mut delivered: Vec<(&str, Option<&str>)> = r
        .objects
        .iter()
        .map(|o| (o.key.name.as_str(), o.component.as_deref()))
        .collect();
    delivered.sort();
    assert_eq!(
        delivered,
        [
            ("demo", Some("demo")),
            ("demo-a", Some("demo")),
            ("demo-b", Some("demo")),
            ("other", None)
        ],
        "the selected ConfigMaps are the component's; the other stays a plain object"
    );
    let mut files = seed_with("app.yaml", &app("{app: nothing}"));
    files.push(SourceFile::new("apps/seed003/config.yaml", config));
    let errs = render_err(&files);
    assert_eq!(
        errs,
        [
            "apps/seed003/app.yaml:17: component \"demo\": ref-objects: labelSelector app=nothing matches no ConfigMap in namespace demo in the repository"
        ]
    );
    let both = seed_file("app.yaml").replace(
        "            name: demo\n",
        "            name: demo\n            labelSelector: {app: demo}\n",
    );
    let errs = render_err(&seed_with("app.yaml", &both));
    assert_eq!(
        errs,
        [
            "apps/seed003/app.yaml:16: component \"demo\": property \"name\" and labelSelector cannot be given together: name one object, or select them by labels"
        ]
    );
}
