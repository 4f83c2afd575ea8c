//! Valid objects only (issue 19, item 1): what rollgit writes is what kube-apiserver accepts.
//! The dev cluster validates as kube-apiserver 1.33 does (typed fields, `null`s, unknown fields
//! under `fieldValidation=Strict`, and the `null` that server-side apply leaves where it empties
//! a map of a custom resource), so each object rollgit writes is applied to it here as rollgit
//! applies it: plan → apply for the Rollouts and revisions of every seed-000 step, the status
//! object in each phase, and the Rollout status the controller writes.

mod common;

use common::TestCluster;
use rollgit::apply::{Applier, ApplyOptions, ApplyOutcome};
use rollgit::k8s::Inventory;
use rollgit::k8s::crds::{AppSource, ApplicationSpec};
use rollgit::plan::{self, PlanContext};
use rollgit::record::status::{AppStatus, write_status};
use rollgit_render::{AppDir, RevisionState, SourceFile};
use serde_json::{Value, json};
use std::time::Duration;

/// Seed 000's `express-server` webservice with the rollout trait `traits` (YAML lines).
fn seed000_app(revision: &str, image: &str, traits: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: rollout-trait-test
spec:
  components:
    - name: express-server
      type: webservice
      externalRevision: {revision}
      properties:
        image: {image}
        port: 8000
      traits:
        - type: rollout
          properties:
{traits}"
    )
}

/// Plans the app from `yaml` as the daemon does (revisions numbered after `prev`).
fn planned(yaml: &str, prev: &RevisionState, commit: &str) -> (Vec<Value>, RevisionState) {
    let app = AppDir {
        name: "rollout-trait-test".into(),
        dir: "apps/rollout-trait-test".into(),
        referenced: Vec::new(),
        namespace: None,
    };
    let files = [SourceFile::new(
        "apps/rollout-trait-test/app.yaml".to_string(),
        yaml.as_bytes().to_vec(),
    )];
    let rendered = plan::render(&app, "default", &files, None, prev).expect("renders");
    let ctx = PlanContext {
        app: "rollout-trait-test",
        repo: "platform",
        dir: "apps/rollout-trait-test",
        commit,
        progress_deadline: Duration::from_secs(600),
        owner: None,
        argo_external: false,
        kruise_external: false,
        fleet: &[],
        cluster: "default",
    };
    let plan = plan::desired(&rendered, &ctx).expect("plans");
    let mut next = prev.clone();
    for o in &plan.objects {
        if let Some((component, existing)) = rollgit_render::existing_revision_from_object(o) {
            next.push(&component, existing);
        }
    }
    (plan.objects, next)
}

/// Every `null` and empty map under `v` (their paths): what server-side apply may turn into a
/// `null` the schema refuses.
fn nulls_and_empty_maps(v: &Value, path: &str, out: &mut Vec<String>) {
    match v {
        Value::Null => out.push(path.to_string()),
        Value::Object(m) if m.is_empty() => out.push(path.to_string()),
        Value::Object(m) => {
            for (k, x) in m {
                nulls_and_empty_maps(x, &format!("{path}.{k}"), out);
            }
        }
        Value::Array(items) => {
            for (i, x) in items.iter().enumerate() {
                nulls_and_empty_maps(x, &format!("{path}[{i}]"), out);
            }
        }
        _ => {}
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_seed000_step_applies_its_rollout_and_revisions_under_strict_validation() {
    let tc = TestCluster::start_api_only().await;
    let client = tc.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs install");
    let applier = Applier::new(client.clone()).with_namespace("default");
    let batches = "            targetSize: 5
            rolloutBatches:
              - replicas: 2
              - replicas: 3
";
    // Seed 000's transcript: first release in batches, an upgrade in batches, a rollback with
    // targetRevision, then scale-only steps (targetSize and targetRevision, no batches: the
    // step a real kube-apiserver refused as `rolloutPlan: null`).
    let steps = [
        (
            "express-server-v1",
            "stefanprodan/podinfo:4.0.3",
            batches.to_string(),
        ),
        (
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            batches.to_string(),
        ),
        (
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            format!("            targetRevision: express-server-v1\n{batches}"),
        ),
        (
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1\n            targetSize: 7\n".into(),
        ),
        (
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1\n            targetSize: 5\n".into(),
        ),
        (
            "express-server-v3",
            "stefanprodan/podinfo:5.0.3",
            "            targetSize: 5\n".into(),
        ),
    ];
    let mut prev = RevisionState::default();
    let mut inventory = Inventory::default();
    for (i, (revision, image, traits)) in steps.iter().enumerate() {
        let commit = format!("c{i}");
        let (objects, next) = planned(&seed000_app(revision, image, traits), &prev, &commit);
        for o in &objects {
            let mut found = Vec::new();
            nulls_and_empty_maps(o, "", &mut found);
            assert!(
                found.is_empty(),
                "step {i}: {} {} holds null or an empty map at {found:?}",
                o["kind"],
                o["metadata"]["name"]
            );
        }
        let report = match applier
            .apply_app(
                "rollout-trait-test",
                &objects,
                &inventory,
                &ApplyOptions::new(),
            )
            .await
            .expect("apply")
        {
            ApplyOutcome::Applied(r) => r,
            ApplyOutcome::Refused(r) => panic!("step {i} refused: {r:?}"),
        };
        assert!(report.is_ok(), "step {i}: {:?}", report.errors);
        inventory = report.inventory;
        prev = next;
    }
    let rollout = tc
        .kubectl_json(&[
            "get",
            "rollouts.rollgit.dev",
            "express-server",
            "-o",
            "json",
        ])
        .await;
    assert_eq!(rollout["spec"]["targetSize"], 5);
    assert_eq!(rollout["spec"]["targetRevision"], "express-server-v3");
    assert_eq!(
        rollout["spec"]["rolloutPlan"],
        json!({"paused": false}),
        "the batches of earlier steps are gone, the plan stays an object"
    );
}

/// `kubectl apply --server-side` of `body` as rollgit's field manager.
async fn ssa(tc: &TestCluster, name: &str, body: &str) -> common::Run {
    let path = tc.file(name, body);
    tc.kubectl(&[
        "apply",
        "--server-side",
        "--field-manager=rollgit",
        "-f",
        &path.display().to_string(),
    ])
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dev_cluster_refuses_the_null_a_real_apiserver_refuses() {
    let tc = TestCluster::start_api_only().await;
    // A custom resource whose plan has no defaults (as rollgit's Rollout had).
    let crd = tc.file(
        "crd.yaml",
        "apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: plans.example.com
spec:
  group: example.com
  names: {kind: Plan, plural: plans, singular: plan, listKind: PlanList}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                size: {type: integer}
                plan:
                  type: object
                  properties:
                    batches: {type: array, items: {type: integer}}
                    paused: {type: boolean}
",
    );
    tc.kubectl_ok(&["apply", "-f", &crd.display().to_string()])
        .await;
    let plan = |plan: &str| {
        format!(
            "apiVersion: example.com/v1
kind: Plan
metadata: {{name: web, namespace: default}}
spec:
  size: 5
  plan: {plan}
"
        )
    };
    let first = ssa(&tc, "batched.yaml", &plan("{batches: [2, 3]}")).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    // The same manager applies an empty plan: structured-merge-diff (Kubernetes 1.33) removes
    // the batches it no longer applies and leaves `null`, which the schema refuses.
    let emptied = ssa(&tc, "empty.yaml", &plan("{}")).await;
    assert_ne!(emptied.code, Some(0), "{}", emptied.stdout);
    assert!(
        emptied.stderr.contains(
            r#"The Plan "web" is invalid: spec.plan: Invalid value: "null": spec.plan in body must be of type object: "null""#
        ),
        "{}",
        emptied.stderr
    );
    let stored = tc
        .kubectl_json(&["get", "plans.example.com", "web", "-o", "json"])
        .await;
    assert_eq!(
        stored["spec"]["plan"],
        json!({"batches": [2, 3]}),
        "unchanged"
    );
    // A plan that keeps a field, as rollgit sends it: accepted, the batches gone.
    let kept = ssa(&tc, "kept.yaml", &plan("{paused: false}")).await;
    assert_eq!(kept.code, Some(0), "{}", kept.stderr);
    let stored = tc
        .kubectl_json(&["get", "plans.example.com", "web", "-o", "json"])
        .await;
    assert_eq!(stored["spec"]["plan"], json!({"paused": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_object_is_accepted_in_every_phase() {
    let tc = TestCluster::start_api_only().await;
    let client = tc.client().await;
    rollgit::k8s::crds::ensure_crds(&client)
        .await
        .expect("CRDs install");
    let spec = ApplicationSpec {
        source: AppSource {
            repo: "platform".into(),
            url: "https://git.example.com/platform.git".into(),
            branch: "main".into(),
            path: "apps/shop".into(),
            namespace: "platform".into(),
        },
        app: "shop".into(),
        suspend: false,
    };
    let now = k8s_openapi::jiff::Timestamp::now();
    let statuses = [
        AppStatus::starting(),
        AppStatus::rejected(
            "c0ffee",
            None,
            &["apps/shop/a.yaml:3: unknown field".to_string()],
            &Inventory::default(),
        ),
        AppStatus::starting(),
    ];
    for (i, s) in statuses.iter().enumerate() {
        write_status(&client, "default", "shop", &spec, s, now)
            .await
            .unwrap_or_else(|e| panic!("status {i}: {}", rollgit::error_chain(&e)));
    }
    let app = tc
        .kubectl_json(&["get", "applications.rollgit.dev", "shop", "-o", "json"])
        .await;
    assert_eq!(app["status"]["phase"], "starting", "{app:#}");
}
