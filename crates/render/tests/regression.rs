//! Regression tests, each named after what broke. Every one was found by the fuzzing in
//! `tests/fuzz.rs` (or while writing it) and panicked or aborted the process before its fix.

use rollgit_render::plan::{PlanOptions, plan_document};
use rollgit_render::{NoRefs, RevisionState, SourceFile, render_app};

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/plan/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The single error of planning `text`, as `line: message`.
fn plan_error(text: &str, opts: &PlanOptions) -> String {
    let e = plan_document("spec.yaml", text.as_bytes(), opts).expect_err("rejected");
    let [e] = e.errors() else {
        panic!("one error expected: {e}")
    };
    format!("{}: {}", e.line, e.message)
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .expect("needle present")
        + 1
}

/// 64 nested block mappings, within serde-saphyr's depth budget, overflowed a 2 MiB thread
/// stack in a debug build (about 32 KiB a level) and aborted the whole process.
#[test]
fn deep_block_nesting_overflowed_the_stack() {
    let doc: String = (0..64).map(|d| format!("{}a:\n", " ".repeat(d))).collect();
    let handle = std::thread::Builder::new()
        .stack_size(2 * 1024 * 1024)
        .spawn(move || {
            let files = [SourceFile::new("apps/a/deep.yaml", doc.clone())];
            let e = render_app("a", "default", &files, &NoRefs, &RevisionState::default())
                .expect_err("not an object");
            assert!(
                e.to_string()
                    .starts_with("apps/a/deep.yaml:1: missing apiVersion"),
                "{e}"
            );
            assert!(plan_document("deep.yaml", doc.as_bytes(), &PlanOptions::default()).is_err());
        })
        .expect("thread");
    handle.join().expect("no stack overflow");
}

/// An Argo Rollout's `spec.replicas` of 2^63 − 1 overflowed `weight * replicas` in the traffic
/// routed canary arithmetic; it is an int32 in Argo's types.
#[test]
fn argo_replicas_past_int32_overflowed_the_traffic_weight_arithmetic() {
    let text = fixture("seed002_argo_canary_scale.yaml")
        .replace("replicas: 10", "replicas: 0x7fffffffffffffff");
    assert_eq!(
        plan_error(&text, &PlanOptions::default()),
        format!(
            "{}: argo: spec.replicas: must be an int32 (from -2147483648 to 2147483647), got 9223372036854775807",
            line_of(&text, "replicas: 0x")
        )
    );
}

/// A Kruise Rollout's CloneSet with `spec.replicas` of 2^63 − 1 overflowed `stable * 100` in
/// the percent partition; a workload's replicas is an int32.
#[test]
fn kruise_workload_replicas_past_int32_overflowed_the_partition_arithmetic() {
    let text = fixture("kruise_v1beta1_cloneset.yaml").replacen(
        "replicas: 10",
        "replicas: 0x7fffffffffffffff",
        1,
    );
    assert!(
        text.contains("0x7fff"),
        "the fixture's CloneSet has 10 replicas"
    );
    assert_eq!(
        plan_error(&text, &PlanOptions::default()),
        format!(
            "{}: CloneSet web: spec.replicas must be at most 2147483647 (an int32), got 9223372036854775807",
            line_of(&text, "replicas: 0x")
        )
    );
}

/// Three rollout trait batches of 2^63 − 1 overflowed the sum of `verifyBatchesWithRollout`.
#[test]
fn kubevela_int64_batches_overflowed_the_batch_sum() {
    let big = "              - replicas: 9223372036854775807\n";
    let text = fixture("seed000_trait_first.yaml").replace(
        "              - replicas: 2\n              - replicas: 3\n",
        &big.repeat(3),
    );
    let e =
        plan_document("spec.yaml", text.as_bytes(), &PlanOptions::default()).expect_err("rejected");
    let first = line_of(&text, "9223372036854775807");
    let got: Vec<String> = e
        .errors()
        .iter()
        .map(|e| format!("{}: {}", e.line, e.message))
        .collect();
    let want: Vec<String> = (0..3)
        .map(|i| {
            format!(
                "{}: component \"express-server\": rollout trait: rolloutBatches[{i}].replicas: 9223372036854775807 is more than 2147483647 (an int32)",
                first + i
            )
        })
        .collect();
    assert_eq!(got, want);
}

/// `numBatches: 2147483647` with a `targetSize` made KubeVela's defaulting hand the size out
/// over 2^31 batches: an allocation that aborted the process.
#[test]
fn num_batches_of_int32_max_exhausted_memory() {
    let text = fixture("seed001_approllout_v2.yaml").replace(
        "    rolloutBatches:\n      - replicas: 1\n      - replicas: 2\n      - replicas: 2\n",
        "    targetSize: 5\n    numBatches: 2147483647\n",
    );
    assert_eq!(
        plan_error(&text, &PlanOptions::default()),
        format!(
            "{}: AppRollout \"rolling-example\": numBatches must be at most 1000 (rollgit's limit on batches), got 2147483647",
            line_of(&text, "numBatches")
        )
    );
}
