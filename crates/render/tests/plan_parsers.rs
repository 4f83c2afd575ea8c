//! `rollgit plan` reads rollout specs with the daemon's parsers: the same file gives the same
//! `path:line` errors through `render_app` (the daemon) and `plan_document` (the CLI), and the
//! Argo and Kruise parsers name the field and the rule of every mistake.

use rollgit_render::plan::{PlanOptions, plan_document};
use rollgit_render::{NoRefs, RenderError, RevisionState, SourceFile, render_app};

const PATH: &str = "apps/web/app.yaml";

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/plan/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn daemon_errors(content: &[u8]) -> Vec<RenderError> {
    match render_app(
        "web",
        "default",
        &[SourceFile::new(PATH, content)],
        &NoRefs,
        &RevisionState::default(),
    ) {
        Ok(_) => Vec::new(),
        Err(e) => e.0,
    }
}

fn plan_errors(content: &[u8], opts: &PlanOptions) -> Vec<RenderError> {
    match plan_document(PATH, content, opts) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors().to_vec(),
    }
}

fn line_of(text: &str, needle: &str) -> u32 {
    let idx = text
        .lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in\n{text}"));
    u32::try_from(idx + 1).expect("small file")
}

/// (case, what to replace in the fixture, by what, the line holding, the message)
type Row = (
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    &'static str,
);

fn same_errors_through_both(fixture_name: &str, rows: &[Row]) {
    let base = fixture(fixture_name);
    for (case, from, to, needle, message) in rows {
        assert!(base.contains(from), "{case}: {from:?} not in the fixture");
        let text = base.replacen(from, to, 1);
        let daemon = daemon_errors(text.as_bytes());
        let plan = plan_errors(text.as_bytes(), &PlanOptions::default());
        assert_eq!(plan, daemon, "{case}: plan and the daemon disagree");
        let [e] = plan.as_slice() else {
            panic!("{case}: one error expected, got {plan:?}")
        };
        assert_eq!(
            (e.line, e.message.as_str()),
            (line_of(&text, needle), *message),
            "{case}"
        );
    }
}

#[test]
fn an_invalid_rollout_trait_gives_the_same_path_line_error_through_plan_and_the_daemon() {
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("batch replicas not a number", "- replicas: 3", "- replicas: ab", "replicas: ab",
         "component \"express-server\": rollout trait: rolloutBatches[1].replicas: \"ab\" is not an integer or percent"),
        ("batch replicas a fraction", "- replicas: 2", "- replicas: \"0.2\"", "replicas: \"0.2\"",
         "component \"express-server\": rollout trait: rolloutBatches[0].replicas: \"0.2\" is not an integer or percent"),
        ("negative targetSize", "targetSize: 5", "targetSize: -1", "targetSize",
         "component \"express-server\": rollout trait: targetSize must be an integer >= 0, got -1"),
        ("targetSize as a string", "targetSize: 5", "targetSize: \"5\"", "targetSize",
         "component \"express-server\": rollout trait: targetSize must be an integer >= 0, got \"5\""),
        ("missing targetSize (at the first property)", "            targetSize: 5\n", "", "rolloutBatches:",
         "component \"express-server\": rollout trait: targetSize is required"),
        ("unknown strategy", "targetSize: 5", "targetSize: 5\n            rolloutStrategy: Sideways", "rolloutStrategy",
         "component \"express-server\": rollout trait: rolloutStrategy must be IncreaseFirst or DecreaseFirst, got \"Sideways\""),
        ("negative batchPartition", "targetSize: 5", "targetSize: 5\n            batchPartition: -1", "batchPartition",
         "component \"express-server\": rollout trait: batchPartition must be an integer >= 0, got -1"),
        ("batches not a list", "            rolloutBatches:\n              - replicas: 2\n              - replicas: 3\n", "            rolloutBatches: 3\n", "rolloutBatches",
         "component \"express-server\": rollout trait: rolloutBatches must be a list, got an integer"),
        ("a batch not a mapping", "- replicas: 2", "- 2", "- 2",
         "component \"express-server\": rollout trait: rolloutBatches[0] must be a mapping, got an integer"),
        ("two rollout traits", "        - type: rollout\n", "        - type: rollout\n          properties: {targetSize: 1}\n        - type: rollout # the second\n", "# the second",
         "component \"express-server\": more than one rollout trait (the first is at line 14)"),
    ];
    same_errors_through_both("seed000_trait_first.yaml", rows);
}

#[test]
fn an_invalid_app_rollout_gives_the_same_path_line_error_through_plan_and_the_daemon() {
    #[rustfmt::skip]
    let rows: &[Row] = &[
        ("numBatches disagrees", "    rolloutStrategy: \"IncreaseFirst\"\n", "    rolloutStrategy: \"IncreaseFirst\"\n    numBatches: 2\n", "numBatches",
         "AppRollout \"rolling-example\": numBatches: must equal the number of rolloutBatches (3), got 2"),
        ("unknown strategy", "\"IncreaseFirst\"", "\"Sideways\"", "Sideways",
         "AppRollout \"rolling-example\": rolloutStrategy: must be IncreaseFirst or DecreaseFirst, got \"Sideways\""),
        ("batch replicas a fraction", "      - replicas: 1\n", "      - replicas: \"0.2\"\n", "replicas: \"0.2\"",
         "AppRollout \"rolling-example\": rolloutBatches[0].replicas: \"0.2\" is not an integer or percent"),
        ("no targetAppRevisionName", "  targetAppRevisionName: test-rolling-v2\n", "", "sourceAppRevisionName",
         "AppRollout \"rolling-example\": targetAppRevisionName is required"),
        ("rolloutPlan not a mapping", "  rolloutPlan:\n", "  rolloutPlan: 3\n  x:\n", "rolloutPlan: 3",
         "AppRollout \"rolling-example\": rolloutPlan must be a mapping, got an integer"),
        ("a plan-level webhook of a batch type", "    rolloutStrategy: \"IncreaseFirst\"\n", "    rolloutStrategy: \"IncreaseFirst\"\n    rolloutWebhooks:\n      - type: pre-batch-rollout\n", "type: pre-batch-rollout",
         "AppRollout \"rolling-example\": rolloutWebhooks: type must be initialize-rollout or finalize-rollout, got \"pre-batch-rollout\""),
    ];
    same_errors_through_both("seed001_approllout_v2.yaml", rows);
}

#[test]
fn yaml_the_daemon_rejects_is_rejected_by_plan_with_the_same_error() {
    let rows: &[(&str, &[u8])] = &[
        ("unclosed bracket", b"kind: Rollout\nspec: [1,\n"),
        ("duplicate key", b"kind: Rollout\nkind: Rollout\n"),
        ("not UTF-8", b"kind: Rollout\nmetadata:\n  name: \xff\n"),
    ];
    for (case, content) in rows {
        let daemon = daemon_errors(content);
        assert!(!daemon.is_empty(), "{case}: the daemon accepts it");
        assert_eq!(
            plan_errors(content, &PlanOptions::default()),
            daemon,
            "{case}"
        );
    }
}

#[test]
fn yaml_1_2_booleans_and_a_bom_are_read_as_the_daemon_reads_them() {
    // `yes` is a string for the daemon (YAML 1.2 booleans), so it is not a boolean here either.
    let text = fixture("seed002_argo_dynamic_stable.yaml")
        .replace("dynamicStableScale: true", "dynamicStableScale: yes");
    let errors = plan_errors(text.as_bytes(), &PlanOptions::default());
    assert_eq!(
        errors
            .iter()
            .map(|e| e.message.as_str())
            .collect::<Vec<_>>(),
        ["argo: dynamicStableScale: must be a boolean, got a string"]
    );
    let mut bom = b"\xef\xbb\xbf".to_vec();
    bom.extend_from_slice(fixture("seed002_argo_canary.yaml").as_bytes());
    let plan = plan_document(PATH, &bom, &PlanOptions::default()).expect("a BOM is skipped");
    assert_eq!(plan.replicas, 10);
}

#[test]
fn a_valid_trait_is_typed_by_the_daemon_as_plan_plans_it() {
    let text = fixture("seed000_trait_partition.yaml");
    let rendered = render_app(
        "web",
        "default",
        &[SourceFile::new(PATH, text.as_bytes())],
        &NoRefs,
        &RevisionState::default(),
    )
    .expect("renders");
    let t = rendered.applications[0].components[0]
        .rollout
        .as_ref()
        .expect("typed trait");
    let from_daemon = rollgit_core::plan::kubevela_plan(
        &t.rollout_batches,
        t.batch_partition,
        t.target_size,
        None,
    )
    .expect("valid");
    let from_plan = plan_document(PATH, text.as_bytes(), &PlanOptions::default()).expect("plans");
    assert_eq!(from_plan, from_daemon);
}

fn field_table(fixture_name: &str, rows: &[(&str, &str, &str, &str, &str, &str)]) {
    let base = fixture(fixture_name);
    for (case, from, to, needle, message, field) in rows {
        assert!(base.contains(from), "{case}: {from:?} not in the fixture");
        let text = base.replacen(from, to, 1);
        let opts = PlanOptions {
            replicas: Some(10),
            from_replicas: None,
        };
        let errors = plan_errors(text.as_bytes(), &opts);
        let [e] = errors.as_slice() else {
            panic!("{case}: one error expected, got {errors:?}")
        };
        assert_eq!(
            (e.line, e.message.as_str(), e.field.as_deref()),
            (line_of(&text, needle), *message, Some(*field)),
            "{case}"
        );
    }
}

#[test]
fn argo_rollout_errors_name_field_rule_and_line() {
    #[rustfmt::skip]
    let rows: &[(&str, &str, &str, &str, &str, &str)] = &[
        ("setWeight not an integer", "setWeight: 10", "setWeight: ten", "setWeight: ten",
         "argo: steps[0].setWeight: must be an integer, got \"ten\"", "spec.strategy.canary.steps[0].setWeight"),
        ("setWeight above 100", "setWeight: 10", "setWeight: 110", "setWeight: 110",
         "argo: steps[0].setWeight: SetWeight needs to be between 0 and 100, got 110", "spec.strategy.canary.steps[0].setWeight"),
        ("pause not a mapping", "- pause: {}", "- pause: 5", "- pause: 5",
         "argo: steps[3].pause: must be a mapping, got an integer", "spec.strategy.canary.steps[3].pause"),
        ("pause with a d unit", "duration: 1h", "duration: 1d", "duration: 1d",
         "argo: steps[1].pause.duration: Duration needs to be greater than 0, got \"1d\"", "spec.strategy.canary.steps[1].pause.duration"),
        ("an empty step", "- setWeight: 20", "- {}", "- {}",
         "argo: steps[2]: Step must have one of the following set: experiment, setWeight, setCanaryScale, pause, analysis, setHeaderRoute, setMirrorRoute or plugin", "spec.strategy.canary.steps[2]"),
        ("a step not a mapping", "- setWeight: 20", "- 20", "- 20",
         "argo: steps[2]: must be a mapping, got an integer", "spec.strategy.canary.steps[2]"),
        ("maxSurge a list", "maxSurge: \"25%\"", "maxSurge: [1]", "maxSurge",
         "argo: maxSurge: must be an integer or a string, got a list", "spec.strategy.canary.maxSurge"),
        ("both fenceposts zero", "maxSurge: \"25%\"", "maxSurge: 0%", "maxSurge",
         "argo: maxSurge: MaxSurge and MaxUnavailable both can not be zero", "spec.strategy.canary.maxSurge"),
        ("setCanaryScale without trafficRouting", "- setWeight: 20", "- setCanaryScale: {replicas: 2}", "setCanaryScale",
         "argo: steps[2].setCanaryScale: SetCanaryScale requires TrafficRouting to be set", "spec.strategy.canary.steps[2].setCanaryScale"),
        ("dynamicStableScale without trafficRouting", "maxUnavailable: 0", "maxUnavailable: 0\n      dynamicStableScale: true", "dynamicStableScale",
         "argo: dynamicStableScale: DynamicStableScale requires TrafficRouting to be set", "spec.strategy.canary.dynamicStableScale"),
        ("negative replicas", "replicas: 10", "replicas: -1", "replicas: -1",
         "argo: spec.replicas: must be >= 0, got -1", "spec.replicas"),
        ("replicas as a string", "replicas: 10", "replicas: \"10\"", "replicas: \"10\"",
         "argo: spec.replicas: must be an integer, got \"10\"", "spec.replicas"),
        ("steps not a list", "      steps:\n", "      steps: 3\n      x:\n", "steps: 3",
         "argo: steps: must be a list, got an integer", "spec.strategy.canary.steps"),
        ("blue-green", "    canary:\n", "    blueGreen:\n", "strategy:",
         "argo: spec.strategy.canary: is required (rollgit reads the canary strategy; blue-green is not supported)", "spec.strategy.canary"),
    ];
    field_table("seed002_argo_canary.yaml", rows);
}

#[test]
fn kruise_rollout_errors_name_field_rule_and_line() {
    #[rustfmt::skip]
    let rows: &[(&str, &str, &str, &str, &str, &str)] = &[
        ("a percent without %", "replicas: 50%", "replicas: \"50\"", "replicas: \"50\"",
         "kruise: steps[1].replicas: replicas must be positive number, or a percentage with \"0%\" < canaryReplicas <= \"100%\", got \"50\"", "spec.strategy.canary.steps[1].replicas"),
        ("replicas a list", "replicas: 50%", "replicas: [1]", "replicas: [1]",
         "kruise: steps[1].replicas: must be an integer or a string, got a list", "spec.strategy.canary.steps[1].replicas"),
        ("a step without replicas", "        - replicas: 50%\n          pause: {duration: 60}\n", "        - pause: {duration: 60}\n", "- pause: {duration: 60}",
         "kruise: steps[1].replicas: replicas cannot be empty", "spec.strategy.canary.steps[1].replicas"),
        ("decreasing percents", "replicas: 100%", "replicas: 40%", "replicas: 40%",
         "kruise: steps[2].replicas: Steps.CanaryReplicas must be a non decreasing sequence (\"50%\" then \"40%\")", "spec.strategy.canary.steps[2].replicas"),
        ("a weight above 100", "weight: 100", "weight: 150", "weight: 150",
         "kruise: steps[2].traffic: traffic must be percentage with \"0%\" < traffic <= \"100%\" in canary strategy, got \"150%\"", "spec.strategy.canary.steps[2].weight"),
        ("no steps", "      steps:\n", "      steps: []\n      x:\n", "steps: []",
         "kruise: steps: The number of Canary.Steps cannot be empty", "spec.strategy.canary.steps"),
        ("pause duration not an integer", "pause: {duration: 60}", "pause: {duration: 1m}", "duration: 1m",
         "kruise: steps[1].pause.duration: must be an integer, got \"1m\"", "spec.strategy.canary.steps[1].pause.duration"),
    ];
    field_table("seed004_kruise_batches.yaml", rows);
    #[rustfmt::skip]
    let v1beta1: &[(&str, &str, &str, &str, &str, &str)] = &[
        ("traffic 0%", "traffic: 10%", "traffic: 0%", "traffic: 0%",
         "kruise: steps[0].traffic: traffic must be percentage with \"0%\" < traffic <= \"100%\" in canary strategy, got \"0%\"", "spec.strategy.canary.steps[0].traffic"),
        ("traffic a list", "traffic: 10%", "traffic: [10]", "traffic: [10]",
         "kruise: steps[0].traffic: must be a string like \"20%\", got a list", "spec.strategy.canary.steps[0].traffic"),
        ("above the partition-percent-limit with traffic", "replicas: 30%", "replicas: 60%", "replicas: 60%",
         "kruise: steps[1].replicas: For partition style rollout: step[x].replicas must not greater than partition-percent-limit (50%) if traffic specified, got \"60%\"", "spec.strategy.canary.steps[1].replicas"),
        ("workloadRef not a mapping", "  workloadRef:\n    apiVersion: apps.kruise.io/v1alpha1\n    kind: CloneSet\n    name: web\n", "  workloadRef: web\n", "workloadRef: web",
         "kruise: spec.workloadRef: must be a mapping, got a string", "spec.workloadRef"),
    ];
    field_table("kruise_v1beta1_cloneset.yaml", v1beta1);
}

#[test]
fn kruise_style_follows_the_workload_and_the_version() {
    let beta = fixture("kruise_v1beta1_cloneset.yaml");
    // v1beta1, a Deployment with enableExtraWorkloadForCanary: canary style, so the stable keeps
    // all 10 until the last step.
    let canary = beta
        .replace("kind: CloneSet\n    name", "kind: Deployment\n    name")
        .replace(
            "    canary:\n",
            "    canary:\n      enableExtraWorkloadForCanary: true\n",
        );
    let p = plan_document(
        PATH,
        canary.as_bytes(),
        &PlanOptions {
            replicas: Some(10),
            from_replicas: None,
        },
    )
    .expect("plans");
    let rows: Vec<(i64, i64)> = p.steps.iter().map(|s| (s.new, s.old)).collect();
    assert_eq!(rows, [(1, 10), (3, 10), (10, 0)]);
    // The same on a CloneSet: partition style whatever the flag says.
    let cloneset = beta.replace(
        "    canary:\n",
        "    canary:\n      enableExtraWorkloadForCanary: true\n",
    );
    let p = plan_document(PATH, cloneset.as_bytes(), &PlanOptions::default()).expect("plans");
    let rows: Vec<(i64, i64)> = p.steps.iter().map(|s| (s.new, s.old)).collect();
    assert_eq!(rows, [(1, 9), (3, 7), (10, 0)]);
}
