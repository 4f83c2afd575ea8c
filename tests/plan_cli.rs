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
        "{}/crates/render/tests/fixtures/plan/{name}",
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
            "{path}:9: AppRollout \"thirds\": rolloutBatches: sum of all batches except the last (12) must be less than the total size (10)"
        )
    );
}

#[test]
fn unreadable_file_is_an_error_not_a_panic() {
    let (code, _, err) = plan(&["-f", "/nonexistent/spec.yaml"]);
    assert_eq!(code, 1);
    assert!(err.contains("reading /nonexistent/spec.yaml"), "{err}");
}

fn json_of(name: &str) -> serde_json::Value {
    let (code, out, err) = plan(&["-f", &fixture(name), "-o", "json"]);
    assert_eq!(code, 0, "stderr: {err}");
    serde_json::from_str(&out).expect("json output")
}

#[test]
fn seed002_json_is_exact() {
    let j = json_of("seed002_argo_canary.yaml");
    assert_eq!(
        j,
        serde_json::json!({
            "flavor": "argo", "replicas": 10, "maxSurge": 3, "maxUnavailable": 0,
            "steps": [
                {"index": 0, "new": 1, "old": 9, "weight": 10, "pause": null},
                {"index": 1, "new": 1, "old": 9, "weight": 10, "pause": 3600},
                {"index": 2, "new": 2, "old": 8, "weight": 20, "pause": null},
                {"index": 3, "new": 2, "old": 8, "weight": 20, "pause": "manual"},
            ]
        })
    );
}

#[test]
fn seed000_json_has_null_fenceposts_and_weights() {
    assert_eq!(
        json_of("seed000_trait_partition.yaml"),
        serde_json::json!({
            "flavor": "kubevela", "replicas": 5, "maxSurge": null, "maxUnavailable": null,
            "steps": [
                {"index": 0, "new": 2, "old": 3, "weight": null, "pause": "manual"},
                {"index": 1, "new": 5, "old": 0, "weight": null, "pause": null},
            ]
        })
    );
}

#[test]
fn table_output_is_the_readme_example_byte_for_byte() {
    let (code, out, err) = plan(&["-f", &fixture("seed002_argo_canary.yaml")]);
    assert_eq!(code, 0, "stderr: {err}");
    assert_eq!(
        out,
        "flavor: argo  replicas: 10  maxSurge: 3  maxUnavailable: 0\n\
         STEP  NEW  OLD  WEIGHT  PAUSE\n\
         0     1    9    10%     -\n\
         1     1    9    10%     3600s\n\
         2     2    8    20%     -\n\
         3     2    8    20%     manual\n"
    );
    let readme = std::fs::read_to_string(format!("{}/README.md", env!("CARGO_MANIFEST_DIR")))
        .expect("README");
    assert!(
        readme.contains(&format!(
            "$ rollgit plan -f crates/render/tests/fixtures/plan/seed002_argo_canary.yaml\n{out}```"
        )),
        "the README's `rollgit plan` example must be this output"
    );
}

#[test]
fn table_for_kruise_shows_dashes_for_missing_values() {
    let (code, t, err) = plan(&["-f", &fixture("seed004_kruise_batches.yaml")]);
    assert_eq!(code, 0, "stderr: {err}");
    let rows: Vec<Vec<&str>> = t
        .lines()
        .skip(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["0", "1", "4", "-", "manual"], "{t}");
    assert_eq!(rows[2], ["2", "5", "0", "100%", "-"], "{t}");
    assert!(
        t.starts_with("flavor: kruise  replicas: 5  maxSurge: -  maxUnavailable: -\n"),
        "{t}"
    );
}

#[test]
fn stdin_is_read_with_dash() {
    let spec = std::fs::read(fixture("seed002_argo_canary.yaml")).expect("fixture");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rollgit"))
        .args(["plan", "-f", "-", "-o", "json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), &spec).expect("write");
    let out = child.wait_with_output().expect("wait");
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(v["replicas"], 10);
}

#[test]
fn an_invalid_trait_is_reported_as_the_daemon_reports_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("app.yaml");
    let text = std::fs::read_to_string(fixture("seed000_trait_first.yaml"))
        .expect("fixture")
        .replace("- replicas: 3", "- replicas: ab");
    std::fs::write(&path, &text).expect("write");
    let path = path.display().to_string();
    let (code, out, err) = plan(&["-f", &path]);
    assert_eq!(code, 2);
    assert!(out.is_empty());
    let daemon = rollgit_render::render_app(
        "app",
        "default",
        &[rollgit_render::SourceFile::new(path.clone(), text)],
        &rollgit_render::NoRefs,
        &rollgit_render::RevisionState::default(),
    )
    .expect_err("the daemon rejects it too");
    assert_eq!(err.trim_end(), daemon.to_string());
    assert_eq!(
        err.trim_end(),
        format!(
            "{path}:19: component \"express-server\": rollout trait: rolloutBatches[1].replicas: \"ab\" is not an integer or percent"
        )
    );
}

/// The rules issue 18 added (ranges, trait types, the batch sum of a first release) and a file
/// name holding control characters: `rollgit plan` prints what the daemon's render reports,
/// escaped, and exits 2.
#[test]
fn stricter_rollout_rules_are_reported_as_the_daemon_reports_them() {
    let dir = tempfile::tempdir().expect("tempdir");
    let original = std::fs::read_to_string(fixture("seed000_trait_first.yaml")).expect("fixture");
    // (case, file name, edit of the fixture, the message after `path:line: `)
    let rows: &[(&str, &str, (&str, &str), &str)] = &[
        (
            "a percent batch over 100%",
            "app.yaml",
            ("- replicas: 3", "- replicas: 150%"),
            "component \"express-server\": rollout trait: rolloutBatches[1].replicas: \"150%\" is more than 100%",
        ),
        (
            "a targetSize past int32",
            "app.yaml",
            ("targetSize: 5", "targetSize: 1000000000000"),
            "component \"express-server\": rollout trait: targetSize must be at most 2147483647 (an int32), got 1000000000000",
        ),
        (
            "int batches short of the size",
            "app.yaml",
            ("- replicas: 3", "- replicas: 2"),
            "component \"express-server\": rollout trait: rolloutBatches: the last batch is an int, so the sum of all batches (4) must equal the total size (5)",
        ),
        (
            "an unknown trait type",
            "app.yaml",
            (
                "        - type: rollout\n",
                "        - type: scaler\n        - type: rollout\n",
            ),
            "component \"express-server\": unknown trait type \"scaler\" (supported: rollout)",
        ),
        (
            "a file name with a newline and an ANSI escape",
            "a\n\x1b[31mpp.yaml",
            ("- replicas: 3", "- replicas: ab"),
            "component \"express-server\": rollout trait: rolloutBatches[1].replicas: \"ab\" is not an integer or percent",
        ),
    ];
    for (case, name, (from, to), message) in rows {
        let path = dir.path().join(name);
        assert!(original.contains(from), "{case}");
        let text = original.replacen(from, to, 1);
        std::fs::write(&path, &text).expect("write");
        let path = path.display().to_string();
        let (code, out, err) = plan(&["-f", &path]);
        assert_eq!((code, out.as_str()), (2, ""), "{case}: {err}");
        let daemon = rollgit_render::render_app(
            "app",
            "default",
            &[rollgit_render::SourceFile::new(path.clone(), text)],
            &rollgit_render::NoRefs,
            &rollgit_render::RevisionState::default(),
        )
        .expect_err(case);
        assert_eq!(err.trim_end(), daemon.to_string(), "{case}");
        assert!(err.trim_end().ends_with(message), "{case}: {err}");
        assert!(
            err.trim_end().starts_with(&*rollgit_syntax::escape(&path)),
            "{case}: {err}"
        );
        assert!(
            !err.trim_end()
                .chars()
                .any(rollgit_syntax::text::needs_escape),
            "{case}: {err:?}"
        );
    }
}
