//! Render-time validation of KubeVela rollout specs as KubeVela's webhooks and controller
//! would judge them (issue 18), one named case per row: ranges (percents within 0–100%, int32
//! sizes and batches, nothing negative), rollgit's limit on batches, unknown trait types, and
//! the batch sum rule of `verifyBatchesWithRollout`, applied exactly when the render creates the
//! revision rolled out to. `rollgit plan` reports the same errors.

mod common;
use common::*;
use rollgit_render::plan::{PlanOptions, plan_document};
use rollgit_render::{
    NoRefs, RenderErrors, Rendered, RevisionState, SourceFile, existing_app_revision_from_object,
    existing_revision_from_object, render_app,
};

const APP: &str = "apps/web/app.yaml";
const PROPS: &str = "spec.components[0].traits[0].properties";

/// An Application whose component `web` has the rollout trait with `props` (indented 12, the
/// first on line 14) and any more `traits` (indented 8) after it.
fn trait_app(image: &str, props: &str, traits: &str) -> String {
    format!(
        "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: {image}\n      traits:\n        - type: rollout\n          properties:\n{props}{traits}"
    )
}

fn render_in(files: &[SourceFile], prev: &RevisionState) -> Result<Rendered, RenderErrors> {
    render_app("web", "default", files, &NoRefs, prev)
}

/// The cluster after applying `r`: its revisions read back as the daemon reads them.
fn state_after(prev: &RevisionState, r: &Rendered) -> RevisionState {
    let mut next = prev.clone();
    for rev in r.revisions.iter().filter(|r| r.is_new) {
        let (c, e) = existing_revision_from_object(&rev.controller_revision).expect("readable");
        next.push(&c, e);
    }
    for rev in r.app_revisions.iter().filter(|r| r.is_new) {
        let (a, e) = existing_app_revision_from_object(&rev.controller_revision).expect("readable");
        next.push_app(&a, e);
    }
    next
}

/// `Ok(())` or the single error as `(line, message, field)`.
type Outcome = Result<(), (u32, String, String)>;

fn outcome(r: Result<Rendered, RenderErrors>) -> Outcome {
    match r {
        Ok(_) => Ok(()),
        Err(e) => {
            let [e] = e.0.as_slice() else {
                panic!("one error expected:\n{e}")
            };
            Err((
                e.line,
                e.message.clone(),
                e.field.clone().unwrap_or_default(),
            ))
        }
    }
}

fn err(line: u32, message: &str, field: &str) -> Outcome {
    Err((line, message.to_owned(), field.to_owned()))
}

const W: &str = "component \"web\": rollout trait: ";

#[test]
fn rollout_trait_rules_table() {
    let many: String = (0..1001).map(|_| "              - replicas: 0\n").collect();
    let many = format!("            targetSize: 0\n            rolloutBatches:\n{many}");
    // (case, trait properties from line 14, more traits, outcome on a first release)
    #[rustfmt::skip]
    let rows: Vec<(&str, String, &str, Outcome)> = vec![
        ("seed batches adding up to the size", "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 3\n".into(), "", Ok(())),
        ("no batches: one batch of the size", "            targetSize: 5\n".into(), "", Ok(())),
        ("an empty rolloutBatches is rejected, as KubeVela does", "            targetSize: 5\n            rolloutBatches: []\n".into(), "",
            err(15, &format!("{W}rolloutBatches is empty: KubeVela rejects a plan without batches (leave rolloutBatches out for one batch of the whole size, or give numBatches)"), &format!("{PROPS}.rolloutBatches"))),
        ("a percent batch of 100% is the most", "            targetSize: 5\n            rolloutBatches:\n              - replicas: 1\n              - replicas: \"100%\"\n".into(), "", Ok(())),
        ("a percent batch of 150% is rejected", "            targetSize: 5\n            rolloutBatches:\n              - replicas: \"150%\"\n              - replicas: 1\n".into(), "",
            err(16, &format!("{W}rolloutBatches[0].replicas: \"150%\" is more than 100%"), &format!("{PROPS}.rolloutBatches[0].replicas"))),
        ("a bare 150 is 150% (lenient) and rejected", "            targetSize: 5\n            rolloutBatches:\n              - replicas: 1\n              - replicas: \"150\"\n".into(), "",
            err(17, &format!("{W}rolloutBatches[1].replicas: \"150\" is more than 100%"), &format!("{PROPS}.rolloutBatches[1].replicas"))),
        ("a negative percent is rejected", "            targetSize: 5\n            rolloutBatches:\n              - replicas: \"-5%\"\n".into(), "",
            err(16, &format!("{W}rolloutBatches[0].replicas: \"-5%\" is negative"), &format!("{PROPS}.rolloutBatches[0].replicas"))),
        ("a negative batch is rejected", "            targetSize: 5\n            rolloutBatches:\n              - replicas: -1\n".into(), "",
            err(16, &format!("{W}rolloutBatches[0].replicas: -1 is negative"), &format!("{PROPS}.rolloutBatches[0].replicas"))),
        ("a batch past int32 is rejected", "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2147483648\n".into(), "",
            err(16, &format!("{W}rolloutBatches[0].replicas: 2147483648 is more than 2147483647 (an int32)"), &format!("{PROPS}.rolloutBatches[0].replicas"))),
        ("a batch past int64 is rejected", "            targetSize: 5\n            rolloutBatches:\n              - replicas: 18446744073709551615\n".into(), "",
            err(16, &format!("{W}rolloutBatches[0].replicas: 18446744073709551615 is more than 2147483647 (an int32)"), &format!("{PROPS}.rolloutBatches[0].replicas"))),
        ("targetSize past int32 is rejected", "            targetSize: 1000000000000\n".into(), "",
            err(14, &format!("{W}targetSize must be at most 2147483647 (an int32), got 1000000000000"), &format!("{PROPS}.targetSize"))),
        ("targetSize at int32's maximum is accepted", "            targetSize: 2147483647\n".into(), "", Ok(())),
        ("batchPartition past int32 is rejected", "            targetSize: 5\n            batchPartition: 2147483648\n".into(), "",
            err(15, &format!("{W}batchPartition must be at most 2147483647 (an int32), got 2147483648"), &format!("{PROPS}.batchPartition"))),
        ("more than 1000 batches is rollgit's limit", many, "",
            err(15, &format!("{W}rolloutBatches has 1001 batches, more than 1000 (rollgit's limit)"), &format!("{PROPS}.rolloutBatches"))),
        // verifyBatchesWithRollout on a new revision.
        ("int batches short of the size", "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 2\n".into(), "",
            err(15, &format!("{W}rolloutBatches: the last batch is an int, so the sum of all batches (4) must equal the total size (5)"), &format!("{PROPS}.rolloutBatches"))),
        ("int batches over the size", "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 4\n".into(), "",
            err(15, &format!("{W}rolloutBatches: the last batch is an int, so the sum of all batches (6) must equal the total size (5)"), &format!("{PROPS}.rolloutBatches"))),
        ("leading percents reaching the size", "            targetSize: 10\n            rolloutBatches:\n              - replicas: 33%\n              - replicas: 33%\n              - replicas: 33%\n              - replicas: 1%\n".into(), "",
            err(15, &format!("{W}rolloutBatches: sum of all batches except the last (12) must be less than the total size (10)"), &format!("{PROPS}.rolloutBatches"))),
        ("a percent last batch is not summed", "            targetSize: 5\n            rolloutBatches:\n              - replicas: 2\n              - replicas: 10%\n".into(), "", Ok(())),
        ("mixed batches whose int last batch completes the size", "            targetSize: 10\n            rolloutBatches:\n              - replicas: 20%\n              - replicas: 8\n".into(), "", Ok(())),
        // Trait types.
        ("an unknown trait type is rejected, naming the supported ones", "            targetSize: 5\n".into(), "        - type: scaler\n          properties: {replicas: 3}\n",
            err(15, "component \"web\": unknown trait type \"scaler\" (supported: rollout)", "spec.components[0].traits[1].type")),
        ("a trait type that is not a string is rejected", "            targetSize: 5\n".into(), "        - type: [rollout]\n",
            err(15, "component \"web\": trait 1 needs a string type", "spec.components[0].traits[1].type")),
    ];
    for (case, props, traits, want) in rows {
        let text = trait_app("web:1", &props, traits);
        let got = outcome(render_in(&one(APP, &text), &RevisionState::default()));
        assert_eq!(got, want, "{case}");
        // `rollgit plan` reads the same file through the same parsers: the same error.
        let plan = plan_document(APP, text.as_bytes(), &PlanOptions::default());
        match (&want, plan) {
            (Ok(()), Ok(_)) => {}
            (Err((line, message, field)), Err(e)) => {
                let [e] = e.errors() else {
                    panic!("{case}: one plan error expected: {e}")
                };
                assert_eq!(
                    (e.line, &e.message, e.field.as_deref().unwrap_or_default()),
                    (*line, message, field.as_str()),
                    "{case}: plan"
                );
            }
            (want, got) => panic!("{case}: render {want:?}, plan {got:?}"),
        }
    }
}

/// The sum rule holds exactly when the render creates the revision the trait rolls out to;
/// otherwise the run may be a scale of the running revision, whose batches add up to the size
/// change (seed 000's scale 5 → 7 with batches of 1 and 1), and the executor judges it.
#[test]
fn the_sum_rule_applies_to_rollouts_to_a_new_revision_only() {
    let batches = |size: u32, b: &[u32]| -> String {
        let items: String = b
            .iter()
            .map(|n| format!("              - replicas: {n}\n"))
            .collect();
        format!("            targetSize: {size}\n            rolloutBatches:\n{items}")
    };
    let pinned = |rev: &str, rest: String| format!("            targetRevision: {rev}\n{rest}");
    let short = |line: u32| {
        err(
            line,
            &format!(
                "{W}rolloutBatches: the last batch is an int, so the sum of all batches (2) must equal the total size (7)"
            ),
            &format!("{PROPS}.rolloutBatches"),
        )
    };
    // The cluster after web:1 (web-v1) and web:2 (web-v2) were released with 5 pods.
    let s0 = RevisionState::default();
    let r1 = render_in(
        &one(APP, &trait_app("web:1", &batches(5, &[2, 3]), "")),
        &s0,
    )
    .expect("first release");
    let s1 = state_after(&s0, &r1);
    let r2 = render_in(
        &one(APP, &trait_app("web:2", &batches(5, &[2, 3]), "")),
        &s1,
    )
    .expect("upgrade");
    let s2 = state_after(&s1, &r2);
    // (case, image, trait properties, outcome)
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, String, Outcome)> = vec![
        ("a scale of the running revision 5 to 7 by 1 and 1", "web:2", batches(7, &[1, 1]), Ok(())),
        ("a new revision at 7 pods by 1 and 1", "web:3", batches(7, &[1, 1]), short(15)),
        ("a new revision named by targetRevision", "web:3", pinned("web-v3", batches(7, &[1, 1])), short(16)),
        ("a new spec while targetRevision pins the running revision", "web:3", pinned("web-v2", batches(7, &[1, 1])), Ok(())),
        ("a rollback to an existing revision (the executor judges it)", "web:2", pinned("web-v1", batches(7, &[1, 1])), Ok(())),
        ("seed 000's rollback in batches adding up", "web:2", pinned("web-v1", batches(5, &[2, 3])), Ok(())),
        ("seed 000's scale of the rolled-back revision without batches", "web:2", pinned("web-v1", "            targetSize: 7\n".into()), Ok(())),
    ];
    for (case, image, props, want) in rows {
        let got = outcome(render_in(&one(APP, &trait_app(image, &props, "")), &s2));
        assert_eq!(got, want, "{case}");
    }
}

const SHOP: &str = "apiVersion: core.oam.dev/v1beta1\nkind: Application\nmetadata:\n  name: shop\nspec:\n  components:\n    - name: web\n      type: webservice\n      properties:\n        image: IMAGE\n";

/// The Application `shop` with `image`, and an AppRollout `r` to `target` whose plan (indented
/// 4) starts on line 8 of `apps/web/rollout.yaml`.
fn shop_rollout(image: &str, target: &str, plan: &str) -> Vec<SourceFile> {
    vec![
        SourceFile::new(APP, SHOP.replace("IMAGE", image)),
        SourceFile::new(
            "apps/web/rollout.yaml",
            format!(
                "apiVersion: core.oam.dev/v1beta1\nkind: AppRollout\nmetadata:\n  name: r\nspec:\n  targetAppRevisionName: {target}\n  rolloutPlan:\n{plan}"
            ),
        ),
    ]
}

#[test]
fn app_rollout_rules_table() {
    let r = "AppRollout \"r\": ";
    let p = "spec.rolloutPlan";
    let s0 = RevisionState::default();
    let r1 = render_in(
        &shop_rollout(
            "web:1",
            "shop-v1",
            "    targetSize: 5\n    rolloutBatches:\n      - replicas: 5\n",
        ),
        &s0,
    )
    .expect("first release");
    let s1 = state_after(&s0, &r1);
    // (case, image, target, plan from line 8, outcome)
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, &str, &str, Outcome)> = vec![
        ("a percent batch of 150% is rejected", "web:2", "shop-v2", "    rolloutBatches:\n      - replicas: 150%\n", 
            err(9, &format!("{r}rolloutBatches[0].replicas: \"150%\" is more than 100%"), &format!("{p}.rolloutBatches[0].replicas"))),
        ("targetSize past int32 is rejected", "web:2", "shop-v2", "    targetSize: 1000000000000\n    rolloutBatches:\n      - replicas: 1\n",
            err(8, &format!("{r}targetSize must be at most 2147483647 (an int32), got 1000000000000"), &format!("{p}.targetSize"))),
        ("numBatches past rollgit's limit is rejected before batches are handed out", "web:2", "shop-v2", "    targetSize: 5\n    numBatches: 2147483647\n",
            err(9, &format!("{r}numBatches must be at most 1000 (rollgit's limit on batches), got 2147483647"), &format!("{p}.numBatches"))),
        ("to a new revision, int batches short of targetSize", "web:2", "shop-v2", "    targetSize: 5\n    rolloutBatches:\n      - replicas: 1\n      - replicas: 2\n",
            err(9, &format!("{r}rolloutBatches: the last batch is an int, so the sum of all batches (3) must equal the total size (5)"), &format!("{p}.rolloutBatches"))),
        ("to a new revision, batches handed out by numBatches add up", "web:2", "shop-v2", "    targetSize: 5\n    numBatches: 2\n", Ok(())),
        ("to a new revision without targetSize (the size is the workload's: the executor judges it)", "web:2", "shop-v2", "    rolloutBatches:\n      - replicas: 1\n      - replicas: 2\n", Ok(())),
        ("to an existing revision (may be a scale: the executor judges it)", "web:1", "shop-v1", "    targetSize: 7\n    rolloutBatches:\n      - replicas: 1\n      - replicas: 1\n", Ok(())),
    ];
    for (case, image, target, plan, want) in rows {
        let files = shop_rollout(image, target, plan);
        let got = outcome(render_in(&files, &s1));
        assert_eq!(got, want, "{case}");
        // `rollgit plan` on the AppRollout's file reports the same error.
        if let Err((line, message, field)) = &want {
            let e = plan_document(&files[1].path, &files[1].content, &PlanOptions::default())
                .expect_err(case);
            let [e] = e.errors() else {
                panic!("{case}: one plan error expected: {e}")
            };
            assert_eq!(
                (e.line, &e.message, e.field.as_deref().unwrap_or_default()),
                (*line, message, field.as_str()),
                "{case}: plan"
            );
        }
    }
}
