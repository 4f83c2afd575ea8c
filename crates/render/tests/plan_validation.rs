//! `rollgit plan` validates as the source systems do, one named case per rule (ROLLOUT-SEMANTICS.md
//! A.1, C.2): invalid int-or-percent values, KubeVela scales whose int batches miss the size
//! change, and rollout plans without batches. Each error names the field and the rule, at its
//! line; the rows that pass show where each rule stops.

use rollgit_render::plan::{PlanOptions, plan_document};

const PATH: &str = "spec.yaml";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/plan/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn line_of(text: &str, needle: &str) -> u32 {
    let idx = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in\n{text}"));
    u32::try_from(idx + 1).expect("small file")
}

const NONE: PlanOptions = PlanOptions {
    replicas: None,
    from_replicas: None,
};

const fn from(n: u32) -> PlanOptions {
    PlanOptions {
        replicas: None,
        from_replicas: Some(n),
    }
}

enum Want {
    /// The plan's (new, old) per step.
    Plan(&'static [(i64, i64)]),
    /// (the line holding, message, field).
    Error(&'static str, &'static str, &'static str),
}

struct Row {
    name: &'static str,
    fixture: &'static str,
    /// (text, replacement) applied in order.
    edits: &'static [(&'static str, &'static str)],
    opts: PlanOptions,
    want: Want,
}

const TRAIT_BATCHES: &str =
    "            rolloutBatches:\n              - replicas: 2\n              - replicas: 3\n";
const AR_BATCHES: &str =
    "    rolloutBatches:\n      - replicas: 1\n      - replicas: 2\n      - replicas: 2\n";

#[test]
fn plan_validation_rules() {
    #[rustfmt::skip]
    let rows = [
        // Argo: int-or-percent values (A.1).
        Row { name: "argo maxSurge oops is rejected (the controller cannot resolve it)", fixture: "seed002_argo_canary.yaml",
              edits: &[("maxSurge: \"25%\"", "maxSurge: oops"), ("maxUnavailable: 0", "maxUnavailable: 1")], opts: NONE,
              want: Want::Error("maxSurge: oops", "argo: maxSurge: \"oops\" is not an integer or a percent (Argo's controller cannot resolve it and would use maxSurge 0 and maxUnavailable 0)", "spec.strategy.canary.maxSurge") },
        Row { name: "argo maxUnavailable 12.5% is rejected", fixture: "seed002_argo_canary.yaml",
              edits: &[("maxUnavailable: 0", "maxUnavailable: 12.5%")], opts: NONE,
              want: Want::Error("maxUnavailable: 12.5%", "argo: maxUnavailable: \"12.5%\" is not an integer or a percent (Argo's controller cannot resolve it and would use maxSurge 0 and maxUnavailable 0)", "spec.strategy.canary.maxUnavailable") },
        Row { name: "argo maxSurge oops with maxUnavailable 0 is Argo's own both-zero error", fixture: "seed002_argo_canary.yaml",
              edits: &[("maxSurge: \"25%\"", "maxSurge: oops")], opts: NONE,
              want: Want::Error("maxSurge: oops", "argo: maxSurge: MaxSurge and MaxUnavailable both can not be zero", "spec.strategy.canary.maxSurge") },
        Row { name: "argo maxSurge \"1\" is 1% (lenient), accepted", fixture: "seed002_argo_canary.yaml",
              edits: &[("maxSurge: \"25%\"", "maxSurge: \"1\"")], opts: NONE,
              want: Want::Plan(&[(1, 9), (1, 9), (2, 8), (2, 8)]) },
        // KubeVela: scales (C.2, verifyBatchesWithScale).
        Row { name: "kubevela trait scale 5 to 7 with int batches adding to 4", fixture: "seed000_trait_scale_up.yaml",
              edits: &[("targetSize: 7\n", "targetSize: 7\n            rolloutBatches:\n              - replicas: 1\n              - replicas: 3\n")], opts: from(5),
              want: Want::Error("rolloutBatches:", "kubevela: rolloutBatches: the last batch is an int, so the batches must add up to the size change of 2 (from 5 to 7), got 4", "spec.components[0].traits[0].properties.rolloutBatches") },
        Row { name: "kubevela trait scale 7 to 5 with int batches adding to 3", fixture: "seed000_trait_scale_down.yaml",
              edits: &[("targetSize: 5\n", "targetSize: 5\n            rolloutBatches:\n              - replicas: 1\n              - replicas: 2\n")], opts: from(7),
              want: Want::Error("rolloutBatches:", "kubevela: rolloutBatches: the last batch is an int, so the batches must add up to the size change of 2 (from 7 to 5), got 3", "spec.components[0].traits[0].properties.rolloutBatches") },
        Row { name: "kubevela trait scale 5 to 7 with int batches adding to 2", fixture: "seed000_trait_scale_up.yaml",
              edits: &[("targetSize: 7\n", "targetSize: 7\n            rolloutBatches:\n              - replicas: 1\n              - replicas: 1\n")], opts: from(5),
              want: Want::Plan(&[(6, 0), (7, 0)]) },
        Row { name: "kubevela trait scale with a percent last batch is not checked", fixture: "seed000_trait_scale_up.yaml",
              edits: &[("targetSize: 7\n", "targetSize: 7\n            rolloutBatches:\n              - replicas: 1\n              - replicas: \"100%\"\n")], opts: from(5),
              want: Want::Plan(&[(6, 0), (7, 0)]) },
        Row { name: "kubevela AppRollout scale 5 to 5 whose int batches move", fixture: "seed001_approllout_v2.yaml",
              edits: &[], opts: from(5),
              want: Want::Error("rolloutBatches:", "kubevela: rolloutBatches: a scale from 5 to the same size must add up to the target size 5, got 2", "spec.rolloutPlan.rolloutBatches") },
        Row { name: "kubevela AppRollout scale 3 to 5 with int batches adding to 5", fixture: "seed001_approllout_v2.yaml",
              edits: &[("      - replicas: 1\n      - replicas: 2\n      - replicas: 2\n", "      - replicas: 1\n      - replicas: 4\n")], opts: from(3),
              want: Want::Error("rolloutBatches:", "kubevela: rolloutBatches: the last batch is an int, so the batches must add up to the size change of 2 (from 3 to 5), got 5", "spec.rolloutPlan.rolloutBatches") },
        // KubeVela: a rollout (not a scale) keeps its own rule.
        Row { name: "kubevela rollout whose int batches miss the size", fixture: "seed000_trait_first.yaml",
              edits: &[("- replicas: 3", "- replicas: 4")], opts: NONE,
              want: Want::Error("rolloutBatches:", "component \"express-server\": rollout trait: rolloutBatches: the last batch is an int, so the sum of all batches (6) must equal the total size (5)", "spec.components[0].traits[0].properties.rolloutBatches") },
        // KubeVela: plans without batches (C.2 validation, DefaultRolloutBatches).
        Row { name: "kubevela AppRollout without rolloutBatches is rejected", fixture: "seed001_approllout_v2.yaml",
              edits: &[(AR_BATCHES, "")], opts: NONE,
              want: Want::Error("rolloutStrategy:", "AppRollout \"rolling-example\": rolloutBatches: the rollout plan has no batch (rolloutBatches is required, unless numBatches and targetSize hand the size out)", "spec.rolloutPlan.rolloutBatches") },
        Row { name: "kubevela AppRollout with numBatches but no targetSize is rejected", fixture: "seed001_approllout_v2.yaml",
              edits: &[(AR_BATCHES, "    numBatches: 2\n")], opts: NONE,
              want: Want::Error("rolloutStrategy:", "AppRollout \"rolling-example\": rolloutBatches: the rollout plan has no batch (rolloutBatches is required, unless numBatches and targetSize hand the size out)", "spec.rolloutPlan.rolloutBatches") },
        Row { name: "kubevela AppRollout with numBatches and targetSize gets batches handed out", fixture: "seed001_approllout_v2.yaml",
              edits: &[(AR_BATCHES, "    numBatches: 2\n    targetSize: 5\n")], opts: NONE,
              want: Want::Plan(&[(2, 3), (5, 0)]) },
        Row { name: "kubevela AppRollout with numBatches and --replicas gets batches handed out", fixture: "seed001_approllout_v2.yaml",
              edits: &[(AR_BATCHES, "    numBatches: 3\n")], opts: PlanOptions { replicas: Some(8), from_replicas: None },
              want: Want::Plan(&[(2, 8 - 2), (5, 3), (8, 0)]) },
        Row { name: "kubevela trait without batches is one batch (the Rollout controller's scale default)", fixture: "seed000_trait_first.yaml",
              edits: &[(TRAIT_BATCHES, "")], opts: NONE,
              want: Want::Plan(&[(5, 0)]) },
    ];
    for row in rows {
        let mut text = fixture(row.fixture);
        for (a, b) in row.edits {
            assert!(
                text.contains(a),
                "{}: {a:?} not in {}",
                row.name,
                row.fixture
            );
            text = text.replacen(a, b, 1);
        }
        let got = plan_document(PATH, text.as_bytes(), &row.opts);
        match (&row.want, got) {
            (Want::Plan(want), Ok(plan)) => {
                let rows: Vec<(i64, i64)> = plan.steps.iter().map(|s| (s.new, s.old)).collect();
                assert_eq!(rows, *want, "{}", row.name);
            }
            (Want::Error(needle, message, field), Err(e)) => {
                let [e] = e.errors() else {
                    panic!("{}: one error expected: {e}", row.name)
                };
                assert_eq!(
                    (e.line, e.message.as_str(), e.field.as_deref()),
                    (line_of(&text, needle), *message, Some(*field)),
                    "{}",
                    row.name
                );
            }
            (Want::Plan(_), Err(e)) => panic!("{}: {e}", row.name),
            (Want::Error(..), Ok(p)) => panic!("{}: planned {p:?}", row.name),
        }
    }
}

#[test]
fn the_daemon_admits_what_only_a_run_can_check() {
    // A trait's batches are checked against the size when a run starts, not by render: the
    // total is targetSize for a rollout but |targetSize − current| for a scale, which only the
    // cluster knows. Batches 1 + 1 for targetSize 7 are right for a scale from 5.
    let text = fixture("seed000_trait_scale_up.yaml").replacen(
        "targetSize: 7\n",
        "targetSize: 7\n            rolloutBatches:\n              - replicas: 1\n              - replicas: 1\n",
        1,
    );
    let rendered = rollgit_render::render_app(
        "web",
        "default",
        &[rollgit_render::SourceFile::new(
            "apps/web/app.yaml",
            text.as_bytes(),
        )],
        &rollgit_render::NoRefs,
        &rollgit_render::RevisionState::default(),
    );
    // The only error is the unknown targetRevision (no revision state here), not the batches.
    let errors = rendered.expect_err("targetRevision is unknown").0;
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0]
            .message
            .contains("targetRevision \"express-server-v1\" is not a revision"),
        "{errors:?}"
    );
    assert!(plan_document(PATH, text.as_bytes(), &from(5)).is_ok());
    assert!(plan_document(PATH, text.as_bytes(), &NONE).is_err());
}
