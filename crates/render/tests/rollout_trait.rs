//! The `rollout` trait, typed and validated (seed 000), and which workloads a rollout owns.

mod common;
use common::*;
use rollgit_core::intstr::IntOrString;
use rollgit_render::{
    NoRefs, Rendered, RevisionState, RolloutTrait, SourceFile, SourceLocation,
    existing_revision_from_object, render_app,
};
use serde_json::json;

const SEED_000: &str = "apps/rollout-trait-test/app.yaml";

/// Seed 000's Application with the trait's properties block (indented 12; the first property
/// is on line 17).
fn seed_000_app(external: &str, image: &str, trait_props: &str) -> Vec<SourceFile> {
    one(
        SEED_000,
        &format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: rollout-trait-test\nspec:\n  components:\n    - name: express-server\n      type: webservice\n      externalRevision: {external}\n      properties:\n        image: {image}\n      traits:\n        - type: rollout\n          # comment\n          properties:\n            # comment\n{trait_props}"
        ),
    )
}

fn render_with(files: &[SourceFile], prev: &RevisionState) -> Rendered {
    match render_app("rollout-trait-test", "default", files, &NoRefs, prev) {
        Ok(r) => r,
        Err(e) => panic!("render failed:\n{e}"),
    }
}

/// The cluster after applying a render: its component revisions read back.
fn state_after(prev: &RevisionState, r: &Rendered) -> RevisionState {
    let mut next = prev.clone();
    for rev in r.revisions.iter().filter(|r| r.is_new) {
        let (component, existing) =
            existing_revision_from_object(&rev.controller_revision).expect("readable");
        next.push(&component, existing);
    }
    next
}

fn rollout_of(r: &Rendered) -> &RolloutTrait {
    r.applications[0].components[0]
        .rollout
        .as_ref()
        .expect("rollout trait")
}

fn ints(v: &[i64]) -> Vec<IntOrString> {
    v.iter().map(|i| IntOrString::Int(*i)).collect()
}

const BATCHES_2_3: &str = "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 3\n";

#[test]
fn seed_000_first_release_is_typed_and_owns_the_deployment() {
    let r = render_with(
        &seed_000_app(
            "express-server-v1",
            "stefanprodan/podinfo:4.0.3",
            BATCHES_2_3,
        ),
        &RevisionState::default(),
    );
    assert_eq!(
        rollout_of(&r),
        &RolloutTrait {
            target_revision: None,
            target_size: 5,
            rollout_batches: ints(&[2, 3]),
            batch_partition: None,
            rollout_strategy: None,
            source: SourceLocation {
                path: SEED_000.into(),
                line: 13
            },
        }
    );
    assert_eq!(
        rollout_of(&r).strategy(),
        rollgit_core::kubevela::RolloutStrategy::IncreaseFirst
    );
    let c = &r.applications[0].components[0];
    assert!(c.rollout_owned);
    assert_eq!(c.revision.as_deref(), Some("express-server-v1"));
    let d = r.objects.iter().find(|o| o.workload).expect("workload");
    assert_eq!(d.key.kind, "Deployment");
    assert!(d.rollout_owned);
    // Serialised as written: ints stay ints.
    let v = serde_json::to_value(c).expect("serialise");
    assert_eq!(v["rollout"]["rollout_batches"], json!([2, 3]));
    assert_eq!(v["rollout_owned"], json!(true));
}

#[test]
fn the_fixture_reads_the_same_as_the_seed() {
    let r = render_ok(&fixture("rollout-trait-test"));
    let t = rollout_of(&r);
    assert_eq!(
        (t.target_size, t.rollout_batches.clone()),
        (5, ints(&[2, 3]))
    );
    assert_eq!(t.source.to_string(), "apps/rollout-trait-test/app.yaml:14");
}

#[test]
fn seed_000_upgrade_rollback_and_scale() {
    let s0 = RevisionState::default();
    let r1 = render_with(
        &seed_000_app(
            "express-server-v1",
            "stefanprodan/podinfo:4.0.3",
            BATCHES_2_3,
        ),
        &s0,
    );
    let s1 = state_after(&s0, &r1);

    // The upgrade rolls only the first batch.
    let r2 = render_with(
        &seed_000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetSize: 5\n            batchPartition: 0\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 3\n",
        ),
        &s1,
    );
    let t = rollout_of(&r2);
    assert_eq!(
        (
            t.target_revision.as_deref(),
            t.target_size,
            t.rollout_batches.clone(),
            t.batch_partition
        ),
        (None, 5, ints(&[2, 3]), Some(0))
    );
    assert_eq!(r2.revisions[0].name, "express-server-v2");
    let s2 = state_after(&s1, &r2);

    // Rollback to v1, which the cluster holds.
    let r3 = render_with(
        &seed_000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1\n            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 3\n",
        ),
        &s2,
    );
    let t = rollout_of(&r3);
    assert_eq!(t.target_revision.as_deref(), Some("express-server-v1"));
    assert_eq!(t.rollout_batches, ints(&[2, 3]));
    assert_eq!(
        r3.revisions[0].name, "express-server-v2",
        "the spec's revision is unchanged"
    );

    // Scale to 7 without batches: no batches, not an error (the rollout stage decides).
    let r4 = render_with(
        &seed_000_app(
            "express-server-v2",
            "stefanprodan/podinfo:5.0.2",
            "            targetRevision: express-server-v1\n            targetSize: 7\n",
        ),
        &s2,
    );
    let t = rollout_of(&r4);
    assert_eq!((t.target_size, t.rollout_batches.len()), (7, 0));

    // targetRevision naming the revision decided in this very render is fine too.
    let r5 = render_with(
        &seed_000_app(
            "express-server-v1",
            "stefanprodan/podinfo:4.0.3",
            "            targetRevision: express-server-v1\n            targetSize: 5\n",
        ),
        &s0,
    );
    assert_eq!(
        rollout_of(&r5).target_revision.as_deref(),
        Some("express-server-v1")
    );
}

#[test]
fn seed_000_rollback_to_a_revision_the_cluster_does_not_hold_is_an_error() {
    let files = seed_000_app(
        "express-server-v2",
        "stefanprodan/podinfo:5.0.2",
        "            targetRevision: express-server-v1\n            targetSize: 5\n",
    );
    let err = render_app(
        "rollout-trait-test",
        "default",
        &files,
        &NoRefs,
        &RevisionState::default(),
    )
    .expect_err("unknown targetRevision");
    assert_eq!(
        err.lines(),
        [
            "apps/rollout-trait-test/app.yaml:17: component \"express-server\": rollout trait: targetRevision \"express-server-v1\" is not a revision of component \"express-server\" (known: express-server-v2)"
        ]
    );
    assert_eq!(
        err.0[0].field.as_deref(),
        Some("spec.components[0].traits[0].properties.targetRevision")
    );

    // With v2 and v3 in the cluster, the list names them all, in revision order.
    let mut prev = RevisionState::default();
    let r = render_with(
        &seed_000_app("express-server-v3", "img:3", "            targetSize: 1\n"),
        &prev,
    );
    prev = state_after(&prev, &r);
    let r = render_with(
        &seed_000_app(
            "express-server-v10",
            "img:10",
            "            targetSize: 1\n",
        ),
        &prev,
    );
    prev = state_after(&prev, &r);
    let err = render_app(
        "rollout-trait-test",
        "default",
        &seed_000_app(
            "express-server-v10",
            "img:10",
            "            targetRevision: express-server-v9\n            targetSize: 1\n",
        ),
        &NoRefs,
        &prev,
    )
    .expect_err("unknown");
    assert_eq!(
        err.lines(),
        [
            "apps/rollout-trait-test/app.yaml:17: component \"express-server\": rollout trait: targetRevision \"express-server-v9\" is not a revision of component \"express-server\" (known: express-server-v3, express-server-v10)"
        ]
    );
}

#[test]
fn trait_validation_errors_table() {
    let file = "apps/rollout-trait-test/app.yaml";
    let p = "spec.components[0].traits[0].properties";
    // (case, trait properties block from line 17, expected `path:line: message`, field)
    let cases: &[(&str, &str, &str, String)] = &[
        (
            "targetSize missing",
            "            rolloutBatches:\n              - replicas: 2\n",
            "17: component \"express-server\": rollout trait: targetSize is required",
            format!("{p}.targetSize"),
        ),
        (
            "targetSize negative",
            "            targetSize: -1\n",
            "17: component \"express-server\": rollout trait: targetSize must be an integer >= 0, got -1",
            format!("{p}.targetSize"),
        ),
        (
            "targetSize a string",
            "            targetSize: \"5\"\n",
            "17: component \"express-server\": rollout trait: targetSize must be an integer >= 0, got \"5\"",
            format!("{p}.targetSize"),
        ),
        (
            "targetSize a fraction",
            "            targetSize: 2.5\n",
            "17: component \"express-server\": rollout trait: targetSize must be an integer >= 0, got 2.5",
            format!("{p}.targetSize"),
        ),
        (
            "batchPartition negative",
            "            targetSize: 5\n            batchPartition: -1\n",
            "18: component \"express-server\": rollout trait: batchPartition must be an integer >= 0, got -1",
            format!("{p}.batchPartition"),
        ),
        (
            "rolloutStrategy unknown",
            "            targetSize: 5\n            rolloutStrategy: Sideways\n",
            "18: component \"express-server\": rollout trait: rolloutStrategy must be IncreaseFirst or DecreaseFirst, got \"Sideways\"",
            format!("{p}.rolloutStrategy"),
        ),
        (
            "targetRevision not a string",
            "            targetSize: 5\n            targetRevision: 1\n",
            "18: component \"express-server\": rollout trait: targetRevision must be a string, got an integer",
            format!("{p}.targetRevision"),
        ),
        (
            "replicas not a number",
            "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: ab\n",
            "20: component \"express-server\": rollout trait: rolloutBatches[1].replicas: \"ab\" is not an integer or percent",
            format!("{p}.rolloutBatches[1].replicas"),
        ),
        (
            "replicas a fraction string",
            "            targetSize: 5\n            rolloutBatches:\n              - replicas: \"0.2\"\n",
            "19: component \"express-server\": rollout trait: rolloutBatches[0].replicas: \"0.2\" is not an integer or percent",
            format!("{p}.rolloutBatches[0].replicas"),
        ),
        (
            "replicas a fraction number",
            "            targetSize: 5\n            rolloutBatches:\n              - replicas: 0.5\n",
            "19: component \"express-server\": rollout trait: rolloutBatches[0].replicas: 0.5 is not an integer or percent",
            format!("{p}.rolloutBatches[0].replicas"),
        ),
        (
            "replicas negative",
            "            targetSize: 5\n            rolloutBatches:\n              - replicas: -1\n",
            "19: component \"express-server\": rollout trait: rolloutBatches[0].replicas: -1 is negative",
            format!("{p}.rolloutBatches[0].replicas"),
        ),
        (
            "replicas negative percent",
            "            targetSize: 5\n            rolloutBatches:\n              - replicas: \"-10%\"\n",
            "19: component \"express-server\": rollout trait: rolloutBatches[0].replicas: \"-10%\" is negative",
            format!("{p}.rolloutBatches[0].replicas"),
        ),
        (
            "replicas missing",
            "            targetSize: 5\n            rolloutBatches:\n              - podList: [a]\n",
            "19: component \"express-server\": rollout trait: rolloutBatches[0].replicas is required",
            format!("{p}.rolloutBatches[0].replicas"),
        ),
        (
            "replicas a list",
            "            targetSize: 5\n            rolloutBatches:\n              - replicas: [1]\n",
            "19: component \"express-server\": rollout trait: rolloutBatches[0].replicas: must be an integer or a percent, got a list",
            format!("{p}.rolloutBatches[0].replicas"),
        ),
        (
            "batch not a mapping",
            "            targetSize: 5\n            rolloutBatches:\n              - 2\n",
            "19: component \"express-server\": rollout trait: rolloutBatches[0] must be a mapping, got an integer",
            format!("{p}.rolloutBatches[0]"),
        ),
        (
            "rolloutBatches not a list",
            "            targetSize: 5\n            rolloutBatches: 2\n",
            "18: component \"express-server\": rollout trait: rolloutBatches must be a list, got an integer",
            format!("{p}.rolloutBatches"),
        ),
    ];
    for (case, props, expected, field) in cases {
        let err = render_app(
            "a",
            "default",
            &seed_000_app("express-server-v1", "img:1", props),
            &NoRefs,
            &RevisionState::default(),
        )
        .expect_err(case);
        assert_eq!(err.lines(), [format!("{file}:{expected}")], "{case}");
        assert_eq!(err.0[0].field.as_deref(), Some(field.as_str()), "{case}");
    }
}

#[test]
fn trait_shape_errors() {
    let app = |traits: &str| {
        one(
            "a/app.yaml",
            &format!(
                "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: b\n      traits:\n{traits}"
            ),
        )
    };
    // (case, traits block from line 12, expected errors)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "properties not a mapping",
            "        - type: rollout\n          properties: [1]\n",
            &[
                "a/app.yaml:13: component \"web\": rollout trait: properties must be a mapping, got a list",
            ],
        ),
        (
            "no properties: targetSize is still required",
            "        - type: rollout\n",
            &["a/app.yaml:12: component \"web\": rollout trait: targetSize is required"],
        ),
        (
            "two rollout traits, an unknown trait between them",
            "        - type: rollout\n          properties: {targetSize: 1}\n        - type: scaler\n        - type: rollout\n          properties: {targetSize: 2}\n",
            &[
                "a/app.yaml:14: component \"web\": unknown trait type \"scaler\" (supported: rollout)",
                "a/app.yaml:15: component \"web\": more than one rollout trait (the first is at line 12)",
            ],
        ),
    ];
    for (case, traits, expected) in cases {
        assert_eq!(render_err(&app(traits)), *expected, "{case}");
    }
}

#[test]
fn rollout_trait_on_ref_objects_is_an_error() {
    let files = one(
        "a/app.yaml",
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: refs\n      type: ref-objects\n      properties:\n        objects:\n          - {apiVersion: v1, kind: ConfigMap, name: c}\n      traits:\n        - type: rollout\n          properties: {targetSize: 1}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    let err = render(&files).expect_err("ref-objects");
    assert_eq!(
        err.lines(),
        [
            "a/app.yaml:13: component \"refs\": the rollout trait needs a component with one workload (webservice, worker, cloneset, clonesetservice), not ref-objects"
        ]
    );
    assert_eq!(
        err.0[0].field.as_deref(),
        Some("spec.components[0].traits[0]")
    );
}

#[test]
fn percent_batches_follow_kubevela_lenient_rules() {
    let r = render_with(
        &seed_000_app(
            "express-server-v1",
            "img:1",
            "            targetSize: 10\n            rolloutStrategy: DecreaseFirst\n            rolloutBatches:\n              - replicas: \"30\"\n              - replicas: 20%\n              - replicas: 5\n",
        ),
        &RevisionState::default(),
    );
    let t = rollout_of(&r);
    assert_eq!(
        t.rollout_batches,
        [
            IntOrString::str("30"),
            IntOrString::str("20%"),
            IntOrString::Int(5)
        ]
    );
    assert_eq!(t.rollout_strategy.as_deref(), Some("DecreaseFirst"));
    assert_eq!(
        t.strategy(),
        rollgit_core::kubevela::RolloutStrategy::DecreaseFirst
    );
    // Serialised as the int or the string.
    let v = serde_json::to_value(t).expect("serialise");
    assert_eq!(v["rollout_batches"], json!(["30", "20%", 5]));
}

#[test]
fn unknown_trait_properties_are_warnings() {
    let r = render_with(
        &seed_000_app(
            "express-server-v1",
            "img:1",
            "            targetSize: 2\n            canaryMetric: x\n            rolloutBatches:\n              - replicas: 2\n                maxUnavailable: 1\n",
        ),
        &RevisionState::default(),
    );
    let warnings: Vec<String> = r.warnings.iter().map(ToString::to_string).collect();
    assert_eq!(
        warnings,
        [
            "apps/rollout-trait-test/app.yaml:18: component \"express-server\": rollout trait: canaryMetric is not supported by rollgit and is ignored",
            "apps/rollout-trait-test/app.yaml:21: component \"express-server\": rollout trait: rolloutBatches[0].maxUnavailable is not supported by rollgit and is ignored",
        ]
    );
    assert_eq!(rollout_of(&r).rollout_batches, ints(&[2]));
}

#[test]
fn only_the_workload_of_a_rollout_owned_component_is_marked() {
    let files = one(
        "a/app.yaml",
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: b\n        ports: [{port: 80, expose: true}]\n      traits:\n        - type: rollout\n          properties: {targetSize: 3}\n    - name: plain\n      type: worker\n      properties:\n        image: b\n",
    );
    let r = render_ok(&files);
    let marks: Vec<(&str, &str, bool)> = r
        .objects
        .iter()
        .map(|o| (o.key.kind.as_str(), o.key.name.as_str(), o.rollout_owned))
        .collect();
    assert_eq!(
        marks,
        [
            ("Service", "web", false),
            ("Deployment", "plain", false),
            ("Deployment", "web", true),
        ]
    );
    let owned: Vec<(&str, bool)> = r.applications[0]
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.rollout_owned))
        .collect();
    assert_eq!(owned, [("web", true), ("plain", false)]);
    assert!(r.applications[0].components[1].rollout.is_none());
}

#[test]
fn rollout_template_annotation_owns_every_workload_of_the_application() {
    let files = one(
        "a/app.yaml",
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\n  annotations:\n    app.oam.dev/rollout-template: \"true\"\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: b\n        ports: [{port: 80, expose: true}]\n    - name: refs\n      type: ref-objects\n      properties:\n        objects:\n          - {apiVersion: v1, kind: ConfigMap, name: c}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    );
    let r = render_ok(&files);
    let owned: Vec<(&str, bool)> = r.applications[0]
        .components
        .iter()
        .map(|c| (c.name.as_str(), c.rollout_owned))
        .collect();
    assert_eq!(
        owned,
        [("web", true), ("refs", false)],
        "ref-objects has no workload"
    );
    let marked: Vec<&str> = r
        .objects
        .iter()
        .filter(|o| o.rollout_owned)
        .map(|o| o.key.kind.as_str())
        .collect();
    assert_eq!(marked, ["Deployment"]);

    // "false" (or anything but "true") owns nothing.
    let text = String::from_utf8(files[0].content.clone())
        .expect("utf8")
        .replace("\"true\"", "\"false\"");
    let r = render_ok(&one("a/app.yaml", &text));
    assert!(r.objects.iter().all(|o| !o.rollout_owned));
}
