//! Application revisions and AppRollout documents (seed 001).

mod common;
use std::collections::BTreeMap;

use common::*;
use rollgit_core::intstr::IntOrString;
use rollgit_render::{
    AppRolloutComponent, ExistingAppRevision, NoRefs, Rendered, RevisionState, SourceFile,
    SourceLocation, existing_app_revision_from_object, existing_revision_from_object, render_app,
    spec_hash,
};
use serde_json::json;

fn render_with(files: &[SourceFile], prev: &RevisionState) -> Rendered {
    match render_app("test-rolling", "default", files, &NoRefs, prev) {
        Ok(r) => r,
        Err(e) => panic!("render failed:\n{e}"),
    }
}

/// The cluster after applying a render: its ControllerRevisions (component and app revisions)
/// read back the way the daemon reads them.
fn state_after(prev: &RevisionState, r: &Rendered) -> RevisionState {
    let mut next = prev.clone();
    let new_objects = r
        .revisions
        .iter()
        .filter(|r| r.is_new)
        .map(|r| &r.controller_revision)
        .chain(
            r.app_revisions
                .iter()
                .filter(|r| r.is_new)
                .map(|r| &r.controller_revision),
        );
    for obj in new_objects {
        match (
            existing_revision_from_object(obj),
            existing_app_revision_from_object(obj),
        ) {
            (Some((component, rev)), None) => next.push(&component, rev),
            (None, Some((application, rev))) => next.push_app(&application, rev),
            other => panic!("a ControllerRevision must read as exactly one kind: {other:?}"),
        }
    }
    next
}

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn strs(v: &[&str]) -> Vec<IntOrString> {
    v.iter().map(|s| IntOrString::str(s)).collect()
}

#[test]
fn seed_001_commit_1_rolls_out_test_rolling_v1() {
    let r = render_with(&fixture("test-rolling-v1"), &RevisionState::default());

    // The component revision and the app revision holding it.
    assert_eq!(r.revisions[0].name, "metrics-provider-v1");
    assert_eq!(r.app_revisions.len(), 1);
    let ar = &r.app_revisions[0];
    let components = map(&[("metrics-provider", "metrics-provider-v1")]);
    assert_eq!(
        (
            ar.application.as_str(),
            ar.name.as_str(),
            ar.number,
            ar.is_new
        ),
        ("test-rolling", "test-rolling-v1", 1, true)
    );
    assert_eq!(ar.components, components);
    assert_eq!(ar.hash, spec_hash(&json!(components)));
    assert_eq!(
        ar.controller_revision,
        json!({
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": "test-rolling-v1.app",
                "namespace": "default",
                "labels": {
                    "app.oam.dev/name": "test-rolling",
                    "rollgit.dev/app-revision": "true",
                },
                "annotations": { "rollgit.dev/spec-hash": ar.hash },
            },
            "revision": 1,
            "data": { "components": { "metrics-provider": "metrics-provider-v1" } },
        })
    );

    // The AppRollout: kept as an OAM document, and typed.
    assert_eq!(r.oam_objects.len(), 1);
    assert_eq!(r.oam_objects[0].key.kind, "AppRollout");
    assert!(r.warnings.is_empty(), "{:?}", r.warnings);
    assert_eq!(r.app_rollouts.len(), 1);
    let ro = &r.app_rollouts[0];
    assert_eq!(ro.name, "rolling-example");
    assert_eq!(ro.source_app_revision, None);
    assert_eq!(ro.target_app_revision, "test-rolling-v1");
    assert_eq!(ro.component_list, ["metrics-provider"]);
    assert_eq!(ro.plan.rollout_strategy.as_deref(), Some("IncreaseFirst"));
    assert_eq!(ro.plan.replicas(), strs(&["10%", "40%", "50%"]));
    assert_eq!(
        (ro.plan.target_size, ro.plan.batch_partition, ro.plan.paused),
        (None, None, false)
    );
    assert_eq!(
        ro.components,
        [AppRolloutComponent {
            component: "metrics-provider".into(),
            source_revision: None,
            target_revision: "metrics-provider-v1".into(),
            component_type: "clonesetservice".into(),
        }]
    );
    assert_eq!(
        ro.source,
        SourceLocation {
            path: "apps/test-rolling-v1/rollout.yaml".into(),
            line: 2
        }
    );

    // The CloneSet belongs to the rollout.
    let cs = r
        .objects
        .iter()
        .find(|o| o.key.kind == "CloneSet")
        .expect("CloneSet");
    assert!(cs.rollout_owned);
    assert!(r.applications[0].components[0].rollout_owned);

    // Serialisable, with the batches as written.
    let v = serde_json::to_value(&r.app_rollouts).expect("serialise");
    assert_eq!(
        v[0]["plan"]["rollout_batches"],
        json!([
            {"replicas": "10%", "webhook_types": []},
            {"replicas": "40%", "webhook_types": []},
            {"replicas": "50%", "webhook_types": []},
        ])
    );
}

#[test]
fn seed_001_commit_2_upgrades_from_v1_to_v2() {
    let s0 = RevisionState::default();
    let r1 = render_with(&fixture("test-rolling-v1"), &s0);
    let s1 = state_after(&s0, &r1);
    assert_eq!(
        s1.applications["test-rolling"],
        [ExistingAppRevision {
            name: "test-rolling-v1".into(),
            number: 1,
            hash: r1.app_revisions[0].hash.clone(),
            components: map(&[("metrics-provider", "metrics-provider-v1")]),
        }]
    );

    let r2 = render_with(&fixture("test-rolling-v2"), &s1);
    assert_eq!(
        (r2.revisions[0].name.as_str(), r2.revisions[0].is_new),
        ("metrics-provider-v2", true)
    );
    let ar = &r2.app_revisions[0];
    assert_eq!(
        (ar.name.as_str(), ar.number, ar.is_new),
        ("test-rolling-v2", 2, true)
    );
    assert_eq!(
        ar.components,
        map(&[("metrics-provider", "metrics-provider-v2")])
    );
    let ro = &r2.app_rollouts[0];
    assert_eq!(ro.source_app_revision.as_deref(), Some("test-rolling-v1"));
    assert_eq!(ro.target_app_revision, "test-rolling-v2");
    assert_eq!(ro.plan.replicas(), [1, 2, 2].map(IntOrString::Int).to_vec());
    assert_eq!(
        ro.components,
        [AppRolloutComponent {
            component: "metrics-provider".into(),
            source_revision: Some("metrics-provider-v1".into()),
            target_revision: "metrics-provider-v2".into(),
            component_type: "clonesetservice".into(),
        }]
    );
    let s2 = state_after(&s1, &r2);

    // Rendering commit 2 again changes nothing: the app revision is reused.
    let r3 = render_with(&fixture("test-rolling-v2"), &s2);
    assert!(!r3.revisions[0].is_new);
    assert_eq!(
        (
            r3.app_revisions[0].name.as_str(),
            r3.app_revisions[0].is_new
        ),
        ("test-rolling-v2", false)
    );
    assert_eq!(r3.app_rollouts, r2.app_rollouts);
    assert_eq!(r3.content_hash, r2.content_hash);

    // Going back to the v1 spec reuses both v1 revisions.
    let mut back = fixture("test-rolling-v1");
    for f in &mut back {
        f.path = f.path.replace("test-rolling-v1", "test-rolling-v2");
    }
    let r4 = render_with(&back, &s2);
    assert_eq!(
        (r4.revisions[0].name.as_str(), r4.revisions[0].is_new),
        ("metrics-provider-v1", false)
    );
    assert_eq!(
        (
            r4.app_revisions[0].name.as_str(),
            r4.app_revisions[0].is_new
        ),
        ("test-rolling-v1", false)
    );
}

#[test]
fn seed_001_commit_2_without_the_cluster_state_names_an_unknown_revision() {
    // Nothing in the cluster: this render decides test-rolling-v1, so v2 does not exist.
    let err = render_app(
        "test-rolling",
        "default",
        &fixture("test-rolling-v2"),
        &NoRefs,
        &RevisionState::default(),
    )
    .expect_err("unknown target");
    assert_eq!(
        err.lines(),
        [
            "apps/test-rolling-v2/rollout.yaml:9: AppRollout \"rolling-example\": targetAppRevisionName \"test-rolling-v2\" is not a revision of an Application in this app (known: test-rolling-v1)"
        ]
    );
    assert_eq!(
        err.0[0].field.as_deref(),
        Some("spec.targetAppRevisionName")
    );
}

const SHOP: &str = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: b\n    - name: refs\n      type: ref-objects\n      properties:\n        objects:\n          - {apiVersion: v1, kind: ConfigMap, name: c}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n";

/// The Application `shop` (components `web` and `refs`) and an AppRollout `r` whose spec body
/// (indented 2) starts on line 6 of `a/rollout.yaml`.
fn shop_with_rollout(spec: &str) -> Vec<SourceFile> {
    vec![
        SourceFile::new("a/app.yaml", SHOP),
        SourceFile::new(
            "a/rollout.yaml",
            format!(
                "apiVersion: core.oam.dev/v1beta1\nkind: AppRollout\nmetadata:\n  name: r\nspec:\n{spec}"
            ),
        ),
    ]
}

const PLAN: &str = "  rolloutPlan:\n    rolloutBatches:\n      - replicas: 1\n";

#[test]
fn app_rollout_errors_table() {
    // (case, spec body from line 6, expected `path:line: message`, field)
    let cases: Vec<(&str, String, &str, &str)> = vec![
        (
            "targetAppRevisionName missing",
            PLAN.into(),
            "a/rollout.yaml:6: AppRollout \"r\": targetAppRevisionName is required",
            "spec.targetAppRevisionName",
        ),
        (
            "targetAppRevisionName unknown",
            format!("  targetAppRevisionName: shop-v9\n{PLAN}"),
            "a/rollout.yaml:6: AppRollout \"r\": targetAppRevisionName \"shop-v9\" is not a revision of an Application in this app (known: shop-v1)",
            "spec.targetAppRevisionName",
        ),
        (
            "targetAppRevisionName not a string",
            format!("  targetAppRevisionName: [shop-v1]\n{PLAN}"),
            "a/rollout.yaml:6: AppRollout \"r\": targetAppRevisionName must be a string, got a list",
            "spec.targetAppRevisionName",
        ),
        (
            "sourceAppRevisionName unknown",
            format!("  targetAppRevisionName: shop-v1\n  sourceAppRevisionName: shop-v0\n{PLAN}"),
            "a/rollout.yaml:7: AppRollout \"r\": sourceAppRevisionName \"shop-v0\" is not a revision of an Application in this app (known: shop-v1)",
            "spec.sourceAppRevisionName",
        ),
        (
            "componentList names no component",
            format!("  targetAppRevisionName: shop-v1\n  componentList:\n    - web\n    - nope\n{PLAN}"),
            "a/rollout.yaml:9: AppRollout \"r\": componentList[1]: \"nope\" is not a component of an Application in this app (components: web, refs)",
            "spec.componentList[1]",
        ),
        (
            "componentList names a component without a workload",
            format!("  targetAppRevisionName: shop-v1\n  componentList: [refs]\n{PLAN}"),
            "a/rollout.yaml:7: AppRollout \"r\": componentList[0]: component \"refs\" (ref-objects) has no workload to roll out",
            "spec.componentList[0]",
        ),
        (
            "componentList entry not a string",
            format!("  targetAppRevisionName: shop-v1\n  componentList:\n    - {{name: web}}\n{PLAN}"),
            "a/rollout.yaml:8: AppRollout \"r\": componentList[0] must be a string, got a mapping",
            "spec.componentList[0]",
        ),
        (
            "rolloutPlan missing",
            "  targetAppRevisionName: shop-v1\n".into(),
            "a/rollout.yaml:6: AppRollout \"r\": rolloutPlan is required",
            "spec.rolloutPlan",
        ),
        (
            "rolloutPlan not a mapping",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan: [1]\n".into(),
            "a/rollout.yaml:7: AppRollout \"r\": rolloutPlan must be a mapping, got a list",
            "spec.rolloutPlan",
        ),
        (
            "no batches",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    rolloutStrategy: IncreaseFirst\n".into(),
            "a/rollout.yaml:8: AppRollout \"r\": rolloutBatches: the rollout plan has no batch (rolloutBatches is required, unless numBatches and targetSize hand the size out)",
            "spec.rolloutPlan.rolloutBatches",
        ),
        (
            "numBatches without targetSize hands nothing out",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    numBatches: 2\n".into(),
            "a/rollout.yaml:8: AppRollout \"r\": rolloutBatches: the rollout plan has no batch (rolloutBatches is required, unless numBatches and targetSize hand the size out)",
            "spec.rolloutPlan.rolloutBatches",
        ),
        (
            "bad strategy",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    rolloutStrategy: Sideways\n    rolloutBatches:\n      - replicas: 1\n".into(),
            "a/rollout.yaml:8: AppRollout \"r\": rolloutStrategy: must be IncreaseFirst or DecreaseFirst, got \"Sideways\"",
            "spec.rolloutPlan.rolloutStrategy",
        ),
        (
            "numBatches disagrees",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    numBatches: 3\n    rolloutBatches:\n      - replicas: 1\n      - replicas: 1\n".into(),
            "a/rollout.yaml:8: AppRollout \"r\": numBatches: must equal the number of rolloutBatches (2), got 3",
            "spec.rolloutPlan.numBatches",
        ),
        (
            "replicas not a number",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    rolloutBatches:\n      - replicas: 1\n      - replicas: ab\n".into(),
            "a/rollout.yaml:10: AppRollout \"r\": rolloutBatches[1].replicas: \"ab\" is not an integer or percent",
            "spec.rolloutPlan.rolloutBatches[1].replicas",
        ),
        (
            "batchPartition negative",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    batchPartition: -1\n    rolloutBatches:\n      - replicas: 1\n".into(),
            "a/rollout.yaml:8: AppRollout \"r\": batchPartition must be an integer >= 0, got -1",
            "spec.rolloutPlan.batchPartition",
        ),
        (
            "paused not a boolean",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    paused: \"yes\"\n    rolloutBatches:\n      - replicas: 1\n".into(),
            "a/rollout.yaml:8: AppRollout \"r\": paused must be a boolean, got a string",
            "spec.rolloutPlan.paused",
        ),
        (
            "plan webhook of a batch type",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    rolloutWebhooks:\n      - {type: initialize-rollout, url: http://a}\n      - {type: pre-batch-rollout, url: http://b}\n    rolloutBatches:\n      - replicas: 1\n".into(),
            "a/rollout.yaml:10: AppRollout \"r\": rolloutWebhooks: type must be initialize-rollout or finalize-rollout, got \"pre-batch-rollout\"",
            "spec.rolloutPlan.rolloutWebhooks[1].type",
        ),
        (
            "batch webhook of a plan type",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    rolloutBatches:\n      - replicas: 1\n        batchRolloutWebhooks:\n          - {type: finalize-rollout, url: http://a}\n".into(),
            "a/rollout.yaml:11: AppRollout \"r\": rolloutBatches[0].batchRolloutWebhooks: type must be pre-batch-rollout or post-batch-rollout, got \"finalize-rollout\"",
            "spec.rolloutPlan.rolloutBatches[0].batchRolloutWebhooks[0].type",
        ),
        (
            "webhook without a type",
            "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    rolloutWebhooks:\n      - {url: http://a}\n    rolloutBatches:\n      - replicas: 1\n".into(),
            "a/rollout.yaml:9: AppRollout \"r\": rolloutWebhooks[0].type is required",
            "spec.rolloutPlan.rolloutWebhooks[0].type",
        ),
    ];
    for (case, spec, expected, field) in cases {
        let err = render(&shop_with_rollout(&spec)).expect_err(case);
        assert_eq!(err.lines(), [expected], "{case}");
        assert_eq!(err.0[0].field.as_deref(), Some(field), "{case}");
    }
}

#[test]
fn app_rollout_without_spec_is_an_error() {
    let files = vec![
        SourceFile::new("a/app.yaml", SHOP),
        SourceFile::new(
            "a/rollout.yaml",
            "apiVersion: core.oam.dev/v1beta1\nkind: AppRollout\nmetadata:\n  name: r\n",
        ),
    ];
    assert_eq!(
        render_err(&files),
        ["a/rollout.yaml:1: AppRollout \"r\": spec is required"]
    );
}

#[test]
fn empty_component_list_rolls_every_component_with_a_workload() {
    let r = render_ok(&shop_with_rollout(&format!(
        "  targetAppRevisionName: shop-v1\n{PLAN}"
    )));
    assert_eq!(
        r.app_revisions[0].components,
        map(&[("refs", "refs-v1"), ("web", "web-v1")])
    );
    let ro = &r.app_rollouts[0];
    assert!(ro.component_list.is_empty());
    assert_eq!(
        ro.components,
        [AppRolloutComponent {
            component: "web".into(),
            source_revision: None,
            target_revision: "web-v1".into(),
            component_type: "webservice".into(),
        }]
    );
    let owned: Vec<(&str, bool)> = r.applications[0]
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.rollout_owned))
        .collect();
    assert_eq!(owned, [("web", true), ("refs", false)]);
    let marked: Vec<&str> = r
        .objects
        .iter()
        .filter(|o| o.rollout_owned)
        .map(|o| o.key.name.as_str())
        .collect();
    assert_eq!(marked, ["web"]);
}

#[test]
fn plan_defaults_batches_from_num_batches_and_target_size() {
    let r = render_ok(&shop_with_rollout(
        "  targetAppRevisionName: shop-v1\n  rolloutPlan:\n    targetSize: 8\n    numBatches: 3\n    batchPartition: 1\n    paused: true\n",
    ));
    let plan = &r.app_rollouts[0].plan;
    assert_eq!(plan.replicas(), [2, 3, 3].map(IntOrString::Int).to_vec());
    assert_eq!(
        (
            plan.target_size,
            plan.num_batches,
            plan.batch_partition,
            plan.paused
        ),
        (Some(8), Some(3), Some(1), true)
    );
}

#[test]
fn unsupported_app_rollout_fields_are_warnings() {
    let r = render_ok(&shop_with_rollout(
        "  targetAppRevisionName: shop-v1\n  revertOnDelete: true\n  rolloutPlan:\n    rolloutBatches:\n      - replicas: 1\n        maxUnavailable: 1\n",
    ));
    let warnings: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "a/rollout.yaml:7: AppRollout \"r\": revertOnDelete is not supported by rollgit and is ignored",
            "a/rollout.yaml:11: AppRollout \"r\": rolloutBatches[0].maxUnavailable is not supported by rollgit and is ignored",
        ]
    );
}

#[test]
fn source_and_target_of_different_applications_is_an_error() {
    let other = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: other\nspec:\n  components:\n    - name: api\n      type: worker\n      properties:\n        image: b\n";
    let mut files = shop_with_rollout(&format!(
        "  sourceAppRevisionName: other-v1\n  targetAppRevisionName: shop-v1\n{PLAN}"
    ));
    files.push(SourceFile::new("a/other.yaml", other));
    assert_eq!(
        render_err(&files),
        [
            "a/rollout.yaml:6: AppRollout \"r\": sourceAppRevisionName \"other-v1\" is a revision of Application \"other\", but targetAppRevisionName \"shop-v1\" is one of \"shop\""
        ]
    );
}

#[test]
fn a_component_missing_from_an_older_target_revision_is_an_error() {
    // The cluster holds shop-v1 with only `web`; `api` was added since.
    let mut prev = RevisionState::default();
    prev.push_app(
        "shop",
        ExistingAppRevision {
            name: "shop-v1".into(),
            number: 1,
            hash: "h1".into(),
            components: map(&[("web", "web-v1")]),
        },
    );
    let app = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: b\n    - name: api\n      type: worker\n      properties:\n        image: b\n";
    let files = vec![
        SourceFile::new("a/app.yaml", app),
        SourceFile::new(
            "a/rollout.yaml",
            format!(
                "apiVersion: core.oam.dev/v1beta1\nkind: AppRollout\nmetadata:\n  name: r\nspec:\n  targetAppRevisionName: shop-v1\n  componentList: [api]\n{PLAN}"
            ),
        ),
    ];
    let err = render_app("a", "default", &files, &NoRefs, &prev).expect_err("missing");
    assert_eq!(
        err.lines(),
        [
            "a/rollout.yaml:7: AppRollout \"r\": componentList[0]: component \"api\" is not in app revision \"shop-v1\""
        ]
    );
    // The render itself decided shop-v2 (web-v1, api-v1): naming it works.
    let files = vec![
        SourceFile::new("a/app.yaml", app),
        SourceFile::new(
            "a/rollout.yaml",
            format!(
                "apiVersion: core.oam.dev/v1beta1\nkind: AppRollout\nmetadata:\n  name: r\nspec:\n  sourceAppRevisionName: shop-v1\n  targetAppRevisionName: shop-v2\n{PLAN}"
            ),
        ),
    ];
    let r = render_app("a", "default", &files, &NoRefs, &prev).expect("v2");
    let rolled: Vec<(&str, Option<&str>, &str)> = r.app_rollouts[0]
        .components
        .iter()
        .map(|c| {
            (
                c.component.as_str(),
                c.source_revision.as_deref(),
                c.target_revision.as_str(),
            )
        })
        .collect();
    assert_eq!(
        rolled,
        [("web", Some("web-v1"), "web-v1"), ("api", None, "api-v1")]
    );
}

#[test]
fn an_application_named_like_its_component_keeps_both_revisions_apart() {
    // Regression: Application `web` with component `web` has app revision `web-v1` and
    // component revision `web-v1`; both are ControllerRevisions, so the app revision's object
    // must have another name, or it replaces the component's workload data.
    let files = [rollgit_render::SourceFile::new(
        "apps/web/app.yaml",
        "apiVersion: core.oam.dev/v1beta1
kind: Application
metadata:
  name: web
spec:
  components:
    - name: web
      type: webservice
      properties:
        image: nginx:1
",
    )];
    let r = render_with(&files, &RevisionState::default());
    assert_eq!(r.revisions[0].name, "web-v1");
    assert_eq!(r.app_revisions[0].name, "web-v1");
    assert_eq!(
        r.revisions[0].controller_revision["metadata"]["name"],
        "web-v1"
    );
    assert_eq!(
        r.app_revisions[0].controller_revision["metadata"]["name"],
        "web-v1.app"
    );
    // Read back, the app revision keeps its KubeVela name.
    let (app, back) =
        rollgit_render::existing_app_revision_from_object(&r.app_revisions[0].controller_revision)
            .expect("an app revision");
    assert_eq!((app.as_str(), back.name.as_str()), ("web", "web-v1"));
}
