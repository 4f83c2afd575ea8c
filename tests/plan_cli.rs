//! `rollgit plan` as a user runs it: the binary, a spec file, the printed plan and the exit code.

use std::process::Command;

fn plan(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .arg("plan")
        .args(args)
        .output()
        .expect("run rollgit plan");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn fixture(name: &str) -> String {
    format!(
        "{}/crates/core/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn argo_canary_json_has_the_documented_shape_and_numbers() {
    let (code, out, err) = plan(&["-f", &fixture("seed002_argo_canary.yaml"), "-o", "json"]);
    assert_eq!(code, 0, "stderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json output");
    assert_eq!(v["flavor"], "argo");
    assert_eq!(v["replicas"], 10);
    assert_eq!(v["maxSurge"], 3);
    assert_eq!(v["maxUnavailable"], 0);
    let steps = v["steps"].as_array().expect("steps");
    let rows: Vec<(i64, i64, i64)> = steps
        .iter()
        .map(|s| {
            (
                s["new"].as_i64().expect("new"),
                s["old"].as_i64().expect("old"),
                s["weight"].as_i64().expect("weight"),
            )
        })
        .collect();
    assert_eq!(rows, vec![(1, 9, 10), (1, 9, 10), (2, 8, 20), (2, 8, 20)]);
    assert_eq!(steps[1]["pause"], 3600);
    assert_eq!(steps[3]["pause"], "manual");
    let keys: Vec<&String> = v.as_object().expect("object").keys().collect();
    assert_eq!(
        keys,
        ["flavor", "replicas", "maxSurge", "maxUnavailable", "steps"]
    );
}

#[test]
fn kubevela_batch_partition_holds_with_a_manual_pause() {
    let (code, out, _) = plan(&["-f", &fixture("seed000_trait_partition.yaml")]);
    assert_eq!(code, 0);
    assert!(out.contains("STEP  NEW  OLD  WEIGHT  PAUSE"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["0", "2", "3", "-", "manual"]),
        "{out}"
    );
}

#[test]
fn replicas_flag_overrides_the_workload_size() {
    let (code, out, _) = plan(&[
        "-f",
        &fixture("seed002_argo_canary.yaml"),
        "--replicas",
        "4",
        "-o",
        "json",
    ]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["replicas"], 4);
}

#[test]
fn invalid_spec_names_file_line_and_rule_and_exits_2() {
    let path = fixture("kubevela_bad_thirds.yaml");
    let (code, out, err) = plan(&["-f", &path]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    assert_eq!(
        err.trim(),
        format!(
            "{path}:9: kubevela: rolloutBatches: sum of all batches except the last (12) must be less than the total size (10)"
        )
    );
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let (code, _, err) = plan(&["-f", "/nonexistent/spec.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("reading /nonexistent/spec.yaml"), "{err}");
}
