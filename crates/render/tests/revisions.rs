//! Component revisions and publishVersion (the plan stage's pure half).

mod common;
use common::*;
use std::collections::BTreeMap;

use rollgit_render::{
    ExistingAppRevision, ExistingRevision, NoRefs, RevisionState, SourceFile,
    existing_app_revision_from_object, existing_revision_from_object, next_publish_version,
    plan_app_revision, plan_revision, render_app, revision_number_of, spec_hash,
};
use serde_json::json;

fn seed_000_app(external: &str, image: &str, trait_props: &str) -> Vec<SourceFile> {
    one(
        "apps/rollout-trait-test/app.yaml",
        &format!(
            "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: rollout-trait-test\nspec:\n  components:\n    - name: express-server\n      type: webservice\n      externalRevision: {external}\n      properties:\n        image: {image}\n      traits:\n        - type: rollout\n          properties:\n{trait_props}"
        ),
    )
}

/// The cluster after applying a render: its ControllerRevisions read back.
fn state_after(prev: &RevisionState, r: &rollgit_render::Rendered) -> RevisionState {
    let mut next = prev.clone();
    for rev in r.revisions.iter().filter(|r| r.is_new) {
        let (component, existing) =
            existing_revision_from_object(&rev.controller_revision).expect("readable");
        next.push(&component, existing);
    }
    next.publish = Some((r.publish_version.clone(), r.content_hash.clone()));
    next
}

/// `kubectl get controllerrevision -l controller.oam.dev/component=express-server` columns.
fn listing(state: &RevisionState, component: &str) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = state.components[component]
        .iter()
        .map(|r| (r.name.clone(), r.number))
        .collect();
    rows.sort();
    rows
}

#[test]
fn seed_000_controllerrevisions_v1_then_v2() {
    let batches = "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 3\n";
    let s0 = RevisionState::default();
    let r1 = render_app(
        "rollout-trait-test",
        "default",
        &seed_000_app("express-server-v1", "stefanprodan/podinfo:4.0.3", batches),
        &NoRefs,
        &s0,
    )
    .expect("v1");
    let rev = &r1.revisions[0];
    assert_eq!(
        (rev.name.as_str(), rev.number, rev.is_new),
        ("express-server-v1", 1, true)
    );
    let cr = &rev.controller_revision;
    assert_eq!(cr["apiVersion"], "apps/v1");
    assert_eq!(cr["kind"], "ControllerRevision");
    assert_eq!(
        cr.pointer("/metadata/name"),
        Some(&json!("express-server-v1"))
    );
    assert_eq!(
        cr.pointer("/metadata/labels/controller.oam.dev~1component"),
        Some(&json!("express-server"))
    );
    assert_eq!(
        cr.pointer("/metadata/labels/app.oam.dev~1name"),
        Some(&json!("rollout-trait-test"))
    );
    assert_eq!(cr["revision"], 1);
    assert_eq!(
        cr.pointer("/data/spec/template/spec/containers/0/image"),
        Some(&json!("stefanprodan/podinfo:4.0.3"))
    );
    assert_eq!(
        cr.pointer("/data/metadata/annotations"),
        None,
        "data has no publishVersion"
    );
    let s1 = state_after(&s0, &r1);
    assert_eq!(
        listing(&s1, "express-server"),
        [("express-server-v1".into(), 1)]
    );

    // Upgrade: new image, externalRevision v2 → a second revision.
    let partition = "            targetSize: 5\n            batchPartition: 0\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 3\n";
    let r2 = render_app(
        "rollout-trait-test",
        "default",
        &seed_000_app("express-server-v2", "stefanprodan/podinfo:5.0.2", partition),
        &NoRefs,
        &s1,
    )
    .expect("v2");
    assert_eq!(
        (
            r2.revisions[0].name.as_str(),
            r2.revisions[0].number,
            r2.revisions[0].is_new
        ),
        ("express-server-v2", 2, true)
    );
    assert!(r2.publish_version_changed);
    assert_eq!(r2.publish_version, "alpha2");
    let s2 = state_after(&s1, &r2);
    assert_eq!(
        listing(&s2, "express-server"),
        [
            ("express-server-v1".into(), 1),
            ("express-server-v2".into(), 2)
        ]
    );

    // Rollback and scaling only change the trait: the revision is reused, nothing new.
    for props in [
        "            targetRevision: express-server-v1\n            targetSize: 5\n",
        "            targetRevision: express-server-v1\n            targetSize: 7\n",
    ] {
        let r = render_app(
            "rollout-trait-test",
            "default",
            &seed_000_app("express-server-v2", "stefanprodan/podinfo:5.0.2", props),
            &NoRefs,
            &s2,
        )
        .expect("reuse");
        assert_eq!(
            (r.revisions[0].name.as_str(), r.revisions[0].is_new),
            ("express-server-v2", false)
        );
        assert_eq!(listing(&state_after(&s2, &r), "express-server").len(), 2);
    }
}

#[test]
fn external_revision_with_a_different_spec_is_an_error() {
    let s0 = RevisionState::default();
    let r1 = render_app(
        "a",
        "default",
        &seed_000_app("express-server-v1", "img:1", "            targetSize: 1\n"),
        &NoRefs,
        &s0,
    )
    .expect("v1");
    let s1 = state_after(&s0, &r1);
    let err = render_app(
        "a",
        "default",
        &seed_000_app("express-server-v1", "img:2", "            targetSize: 1\n"),
        &NoRefs,
        &s1,
    )
    .expect_err("conflict");
    let lines = err.lines();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("apps/rollout-trait-test/app.yaml:9: component \"express-server\": externalRevision \"express-server-v1\" already exists with a different spec"),
        "{lines:?}"
    );
    assert_eq!(
        err.0[0].field.as_deref(),
        Some("spec.components[0].externalRevision")
    );
}

fn existing(name: &str, number: u64, hash: &str) -> ExistingRevision {
    ExistingRevision {
        name: name.into(),
        number,
        hash: hash.into(),
    }
}

#[test]
fn plan_revision_table() {
    let data = json!({"spec": {"image": "a"}});
    let h = spec_hash(&data);
    // (case, external, existing, expected (name, number, is_new) or error)
    type Case<'a> = (
        &'a str,
        Option<&'a str>,
        Vec<ExistingRevision>,
        Result<(&'a str, u64, bool), ()>,
    );
    let cases: Vec<Case> = vec![
        ("first revision", None, vec![], Ok(("web-v1", 1, true))),
        (
            "same hash reused",
            None,
            vec![existing("web-v1", 1, &h)],
            Ok(("web-v1", 1, false)),
        ),
        (
            "changed hash bumps",
            None,
            vec![existing("web-v1", 1, "x")],
            Ok(("web-v2", 2, true)),
        ),
        (
            "bump from the max",
            None,
            vec![existing("web-v1", 1, "x"), existing("web-v7", 7, "y")],
            Ok(("web-v8", 8, true)),
        ),
        (
            "back to an old spec reuses it",
            None,
            vec![existing("web-v1", 1, &h), existing("web-v2", 2, "y")],
            Ok(("web-v1", 1, false)),
        ),
        (
            "external new",
            Some("web-v1"),
            vec![],
            Ok(("web-v1", 1, true)),
        ),
        (
            "external new, number taken",
            Some("web-v1"),
            vec![existing("web-v3", 1, "z")],
            Ok(("web-v1", 2, true)),
        ),
        (
            "external without number",
            Some("web-blue"),
            vec![existing("web-v3", 3, "z")],
            Ok(("web-blue", 4, true)),
        ),
        (
            "external reused",
            Some("web-v1"),
            vec![existing("web-v1", 1, &h)],
            Ok(("web-v1", 1, false)),
        ),
        (
            "external conflict",
            Some("web-v1"),
            vec![existing("web-v1", 1, "other")],
            Err(()),
        ),
        (
            "auto name skips an external name",
            None,
            vec![existing("web-v2", 1, "x")],
            Ok(("web-v3", 3, true)),
        ),
    ];
    for (case, external, prev, expected) in cases {
        let got = plan_revision("shop", Some("ns"), "web", external, &data, &prev)
            .map(|r| (r.name, r.number, r.is_new));
        match expected {
            Ok((n, num, new)) => assert_eq!(got, Ok((n.to_owned(), num, new)), "{case}"),
            Err(()) => assert!(got.is_err(), "{case}: {got:?}"),
        }
    }
}

#[test]
fn revision_numbers_as_kubevela_extracts_them() {
    let cases: &[(&str, &str, Option<u64>)] = &[
        ("v prefix", "express-server-v2", Some(2)),
        ("bare number", "web-3", Some(3)),
        ("no dash", "xx", None),
        ("trailing dash", "yy-", None),
        ("dotted", "zz-0.1", None),
    ];
    for (case, name, n) in cases {
        assert_eq!(revision_number_of(name), *n, "{case}");
    }
}

#[test]
fn publish_version_table() {
    // (case, previous, content hash, expected)
    type Case<'a> = (
        &'a str,
        Option<(&'a str, &'a str)>,
        &'a str,
        (&'a str, bool),
    );
    let cases: &[Case] = &[
        ("first", None, "h1", ("alpha1", true)),
        ("unchanged", Some(("alpha1", "h1")), "h1", ("alpha1", false)),
        ("changed", Some(("alpha1", "h1")), "h2", ("alpha2", true)),
        ("carry", Some(("alpha9", "h1")), "h2", ("alpha10", true)),
        ("numeric", Some(("3", "h1")), "h2", ("4", true)),
        (
            "user version",
            Some(("version1", "h1")),
            "h2",
            ("version2", true),
        ),
        (
            "no number",
            Some(("stable", "h1")),
            "h2",
            ("stable-2", true),
        ),
    ];
    for (case, prev, hash, (v, changed)) in cases {
        assert_eq!(
            next_publish_version(*prev, hash),
            ((*v).to_owned(), *changed),
            "{case}"
        );
    }
}

#[test]
fn unchanged_content_keeps_version_and_revision() {
    let files = fixture("rollout-trait-test");
    let s0 = RevisionState::default();
    let r1 = render_app("a", "default", &files, &NoRefs, &s0).expect("r1");
    let s1 = state_after(&s0, &r1);
    let r2 = render_app("a", "default", &files, &NoRefs, &s1).expect("r2");
    assert_eq!(r2.publish_version, r1.publish_version);
    assert!(!r2.publish_version_changed);
    assert!(!r2.revisions[0].is_new);
    assert_eq!(r1.objects, r2.objects);
    assert_eq!(r1.content_hash, r2.content_hash);
}

#[test]
fn publish_version_bumps_on_any_change_and_lands_on_workloads() {
    let app = |extra: &str| {
        vec![
            SourceFile::new(
                "a/app.yaml",
                application("webservice", "        image: b\n"),
            ),
            SourceFile::new(
                "a/cm.yaml",
                format!(
                    "apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{k: \"{extra}\"}}\n"
                ),
            ),
        ]
    };
    let s0 = RevisionState::default();
    let r1 = render_app("a", "default", &app("1"), &NoRefs, &s0).expect("r1");
    let s1 = state_after(&s0, &r1);
    let r2 = render_app("a", "default", &app("2"), &NoRefs, &s1).expect("r2");
    assert_eq!(
        (r1.publish_version.as_str(), r2.publish_version.as_str()),
        ("alpha1", "alpha2")
    );
    // The ConfigMap changed, not the workload: same component revision.
    assert!(!r2.revisions[0].is_new);
    let w = r2.objects.iter().find(|o| o.workload).expect("workload");
    assert_eq!(
        w.object
            .pointer("/metadata/annotations/app.oam.dev~1publishVersion"),
        Some(&json!("alpha2"))
    );
    let cm = r2
        .objects
        .iter()
        .find(|o| o.key.kind == "ConfigMap")
        .expect("cm");
    assert_eq!(cm.object.pointer("/metadata/annotations"), None);
}

#[test]
fn spec_hash_ignores_key_order() {
    assert_eq!(
        spec_hash(&json!({"a": 1, "b": [1, {"c": 2, "d": 3}]})),
        spec_hash(&json!({"b": [1, {"d": 3, "c": 2}], "a": 1}))
    );
    assert_ne!(
        spec_hash(&json!({"a": [1, 2]})),
        spec_hash(&json!({"a": [2, 1]}))
    );
}

fn map(entries: &[(&str, &str)]) -> BTreeMap<String, String> {
    entries
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn existing_app(name: &str, number: u64, hash: &str) -> ExistingAppRevision {
    ExistingAppRevision {
        name: name.into(),
        number,
        hash: hash.into(),
        components: BTreeMap::new(),
    }
}

#[test]
fn plan_app_revision_table() {
    let components = map(&[("web", "web-v3")]);
    let h = spec_hash(&json!(components));
    // (case, existing, expected (name, number, is_new))
    type Case<'a> = (&'a str, Vec<ExistingAppRevision>, (&'a str, u64, bool));
    let cases: Vec<Case> = vec![
        ("first", vec![], ("shop-v1", 1, true)),
        (
            "same hash reused",
            vec![existing_app("shop-v1", 1, &h)],
            ("shop-v1", 1, false),
        ),
        (
            "changed bumps from the max",
            vec![
                existing_app("shop-v1", 1, "x"),
                existing_app("shop-v4", 4, "y"),
            ],
            ("shop-v5", 5, true),
        ),
        (
            "back to an old content reuses it",
            vec![
                existing_app("shop-v1", 1, &h),
                existing_app("shop-v2", 2, "y"),
            ],
            ("shop-v1", 1, false),
        ),
        (
            "a taken name is skipped",
            vec![existing_app("shop-v2", 1, "x")],
            ("shop-v3", 3, true),
        ),
    ];
    for (case, prev, (name, number, is_new)) in cases {
        let r = plan_app_revision("shop", Some("ns"), &components, &prev);
        assert_eq!(
            (r.name.as_str(), r.number, r.is_new),
            (name, number, is_new),
            "{case}"
        );
        assert_eq!(r.hash, h, "{case}");
    }
}

#[test]
fn app_revisions_read_back_and_component_revisions_do_not_mix() {
    let components = map(&[("a", "a-v1"), ("b", "b-v2")]);
    let r = plan_app_revision("shop", Some("ns"), &components, &[]);
    let (application, back) =
        existing_app_revision_from_object(&r.controller_revision).expect("app revision");
    assert_eq!(application, "shop");
    assert_eq!(
        back,
        ExistingAppRevision {
            name: "shop-v1".into(),
            number: 1,
            hash: r.hash.clone(),
            components: components.clone(),
        }
    );
    assert_eq!(existing_revision_from_object(&r.controller_revision), None);

    // Without the hash annotation, the hash is that of data.components.
    let mut bare = r.controller_revision.clone();
    if let Some(meta) = bare.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("annotations");
    }
    assert_eq!(
        existing_app_revision_from_object(&bare).map(|(_, b)| b.hash),
        Some(r.hash.clone())
    );

    // A component revision is not an app revision.
    let comp =
        plan_revision("shop", Some("ns"), "a", None, &json!({}), &[]).expect("component revision");
    assert_eq!(
        existing_app_revision_from_object(&comp.controller_revision),
        None
    );
    assert!(existing_revision_from_object(&comp.controller_revision).is_some());
}

#[test]
fn every_application_gets_an_app_revision_reused_while_unchanged() {
    let files = fixture("rollout-trait-test");
    let s0 = RevisionState::default();
    let r1 = render_app("a", "default", &files, &NoRefs, &s0).expect("r1");
    let ar = &r1.app_revisions[0];
    assert_eq!(
        (
            ar.application.as_str(),
            ar.name.as_str(),
            ar.number,
            ar.is_new
        ),
        ("rollout-trait-test", "rollout-trait-test-v1", 1, true)
    );
    assert_eq!(
        ar.components,
        map(&[("express-server", "express-server-v1")])
    );
    let mut s1 = state_after(&s0, &r1);
    let (application, back) =
        existing_app_revision_from_object(&ar.controller_revision).expect("readable");
    s1.push_app(&application, back);
    let r2 = render_app("a", "default", &files, &NoRefs, &s1).expect("r2");
    assert_eq!(
        (
            r2.app_revisions[0].name.as_str(),
            r2.app_revisions[0].is_new
        ),
        ("rollout-trait-test-v1", false)
    );
}
