//! Server-side apply and update field management, against the behaviour of
//! the real kube-apiserver.

use rollgit_merge::{
    ApplyError, BuiltinSchema, FieldSet, OpenApiSchema, Schema, apply, decode_managed_fields,
    fieldset_of, ssa::field_paths, update,
};
use serde_json::{Value, json};

const T0: &str = "2024-05-01T10:00:00Z";
const T1: &str = "2024-05-01T10:00:01Z";
const T2: &str = "2024-05-01T10:00:02Z";

fn deploy_schema() -> BuiltinSchema {
    BuiltinSchema::for_kind("apps/v1", "Deployment").expect("deployment schema")
}

fn deployment(replicas: i64, containers: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": containers}}
        }
    })
}

/// The managedFields entries of `obj` as (manager, operation, subresource, field paths).
fn owners(obj: &Value) -> Vec<(String, String, Option<String>, Vec<String>)> {
    let mf = obj["metadata"]["managedFields"].clone();
    decode_managed_fields(&mf)
        .expect("valid managedFields")
        .into_iter()
        .map(|e| {
            (
                e.manager.clone(),
                e.operation.as_str().to_string(),
                e.subresource.clone(),
                field_paths(&e.fields),
            )
        })
        .collect()
}

fn paths_of(obj: &Value, manager: &str) -> Vec<String> {
    owners(obj)
        .into_iter()
        .find(|o| o.0 == manager)
        .map(|o| o.3)
        .unwrap_or_default()
}

fn ok(r: Result<Value, ApplyError>) -> Value {
    match r {
        Ok(v) => v,
        Err(e) => panic!("apply failed: {e}"),
    }
}

#[test]
fn apply_create_records_exact_fields_v1() {
    let s = deploy_schema();
    let mut applied = deployment(
        2,
        json!([{"name": "nginx", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]),
    );
    applied["metadata"]["labels"] = json!({"app": "web"});
    let out = ok(apply(None, &applied, "kubectl", false, None, &s, T0));
    let mf = &out["metadata"]["managedFields"];
    let expected = json!([{
        "manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:app": {}}},
            "f:spec": {
                "f:replicas": {}, "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {"f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {"k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}}}
                    }}}
                }
            }
        }
    }]);
    // Byte-exact, including key order.
    assert_eq!(mf.to_string(), expected.to_string());
    let mut without = out.clone();
    without["metadata"]
        .as_object_mut()
        .expect("meta")
        .remove("managedFields");
    assert_eq!(without, applied);
}

#[test]
fn apply_scenarios() {
    struct Case {
        name: &'static str,
        steps: Vec<(&'static str, Value, bool)>,
        check: fn(&Value),
    }
    fn c(name: &str, image: &str) -> Value {
        json!({"name": name, "image": image})
    }
    let cases = vec![
        Case {
            name: "apply twice with a label removed removes it from the object",
            steps: vec![
                (
                    "kubectl",
                    {
                        let mut d = deployment(1, json!([c("nginx", "nginx")]));
                        d["metadata"]["labels"] = json!({"app": "web", "tier": "front"});
                        d
                    },
                    false,
                ),
                (
                    "kubectl",
                    {
                        let mut d = deployment(1, json!([c("nginx", "nginx")]));
                        d["metadata"]["labels"] = json!({"app": "web"});
                        d
                    },
                    false,
                ),
            ],
            check: |o| {
                assert_eq!(o["metadata"]["labels"], json!({"app": "web"}));
                assert!(!paths_of(o, "kubectl").contains(&".metadata.labels.tier".to_string()));
            },
        },
        Case {
            name: "removing the last label drops the labels map",
            steps: vec![
                (
                    "kubectl",
                    {
                        let mut d = deployment(1, json!([c("nginx", "nginx")]));
                        d["metadata"]["labels"] = json!({"tier": "front"});
                        d
                    },
                    false,
                ),
                (
                    "kubectl",
                    deployment(1, json!([c("nginx", "nginx")])),
                    false,
                ),
            ],
            check: |o| assert!(o["metadata"].get("labels").is_none(), "{o}"),
        },
        Case {
            name: "a removed field still owned by another manager stays",
            steps: vec![
                ("a", deployment(3, json!([c("nginx", "nginx")])), false),
                (
                    "b",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 3}}),
                    false,
                ),
                (
                    "a",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}}),
                    false,
                ),
            ],
            check: |o| {
                assert_eq!(o["spec"]["replicas"], json!(3));
                assert_eq!(paths_of(o, "b"), vec![".spec.replicas"]);
                assert!(!paths_of(o, "a").contains(&".spec.replicas".to_string()));
            },
        },
        Case {
            name: "two managers applying the same value share ownership",
            steps: vec![
                ("a", deployment(2, json!([c("nginx", "nginx")])), false),
                (
                    "b",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 2}}),
                    false,
                ),
            ],
            check: |o| {
                assert!(paths_of(o, "a").contains(&".spec.replicas".to_string()));
                assert_eq!(paths_of(o, "b"), vec![".spec.replicas"]);
            },
        },
        Case {
            name: "force takes ownership from the other manager",
            steps: vec![
                ("a", deployment(2, json!([c("nginx", "nginx")])), false),
                (
                    "b",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 5}}),
                    true,
                ),
            ],
            check: |o| {
                assert_eq!(o["spec"]["replicas"], json!(5));
                assert_eq!(paths_of(o, "b"), vec![".spec.replicas"]);
                assert!(!paths_of(o, "a").contains(&".spec.replicas".to_string()));
                assert!(paths_of(o, "a").contains(&".spec.selector".to_string()));
            },
        },
        Case {
            name: "containers merge by name and each manager keeps its own container",
            steps: vec![
                ("a", deployment(1, json!([c("app", "app:1")])), false),
                (
                    "b",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1"}]}}}}),
                    false,
                ),
                ("a", deployment(1, json!([c("app", "app:2")])), false),
            ],
            check: |o| {
                assert_eq!(
                    o["spec"]["template"]["spec"]["containers"],
                    json!([c("app", "app:2"), c("sidecar", "envoy:1")])
                );
                assert!(paths_of(o, "b").contains(
                    &".spec.template.spec.containers[name=\"sidecar\"].image".to_string()
                ));
                assert!(
                    paths_of(o, "a").contains(
                        &".spec.template.spec.containers[name=\"app\"].image".to_string()
                    )
                );
            },
        },
        Case {
            name: "a container a manager stops applying is removed, the other's stays",
            steps: vec![
                (
                    "a",
                    deployment(1, json!([c("app", "app:1"), c("old", "old:1")])),
                    false,
                ),
                (
                    "b",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"template": {"spec": {"containers": [{"name": "sidecar", "image": "envoy:1"}]}}}}),
                    false,
                ),
                ("a", deployment(1, json!([c("app", "app:1")])), false),
            ],
            check: |o| {
                assert_eq!(
                    o["spec"]["template"]["spec"]["containers"],
                    json!([c("app", "app:1"), c("sidecar", "envoy:1")])
                );
            },
        },
        Case {
            name: "finalizers are a set: union, and removal of one's own item",
            steps: vec![
                (
                    "a",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": ["x/a"]}}),
                    false,
                ),
                (
                    "b",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": ["x/b"]}}),
                    false,
                ),
                (
                    "a",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "finalizers": []}}),
                    false,
                ),
            ],
            check: |o| {
                assert_eq!(o["metadata"]["finalizers"], json!(["x/b"]));
                assert_eq!(paths_of(o, "b"), vec![".metadata.finalizers[=\"x/b\"]"]);
                assert!(paths_of(o, "a").is_empty());
            },
        },
        Case {
            name: "atomic args are replaced as a whole",
            steps: vec![
                (
                    "a",
                    deployment(
                        1,
                        json!([{"name": "app", "image": "i", "args": ["--a", "--b"]}]),
                    ),
                    false,
                ),
                (
                    "a",
                    deployment(1, json!([{"name": "app", "image": "i", "args": ["--c"]}])),
                    false,
                ),
            ],
            check: |o| {
                assert_eq!(
                    o["spec"]["template"]["spec"]["containers"][0]["args"],
                    json!(["--c"])
                );
                assert!(
                    paths_of(o, "a")
                        .contains(&".spec.template.spec.containers[name=\"app\"].args".to_string())
                );
            },
        },
        Case {
            name: "an empty apply drops everything the manager owned and its entry",
            steps: vec![
                (
                    "a",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"x": "1"}}}),
                    false,
                ),
                (
                    "b",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "annotations": {"y": "2"}}}),
                    false,
                ),
                (
                    "a",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}}),
                    false,
                ),
            ],
            check: |o| {
                assert!(o["metadata"].get("labels").is_none());
                assert_eq!(o["metadata"]["annotations"], json!({"y": "2"}));
                let names: Vec<String> = owners(o).into_iter().map(|x| x.0).collect();
                assert_eq!(names, vec!["b"]);
            },
        },
        Case {
            name: "an explicit null in the applied configuration clears the value",
            steps: vec![
                ("a", deployment(3, json!([c("app", "app:1")])), false),
                (
                    "a",
                    {
                        let mut d = deployment(3, json!([c("app", "app:1")]));
                        d["spec"]["replicas"] = Value::Null;
                        d
                    },
                    false,
                ),
            ],
            check: |o| assert!(o["spec"].get("replicas").is_none(), "{o}"),
        },
        Case {
            name: "map-list order: live items kept in place, new applied items appended",
            steps: vec![
                (
                    "a",
                    deployment(1, json!([c("one", "1"), c("two", "2")])),
                    false,
                ),
                (
                    "b",
                    json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                    "spec": {"template": {"spec": {"containers": [c("two", "2"), c("three", "3")]}}}}),
                    false,
                ),
            ],
            check: |o| {
                let names: Vec<&str> = o["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .expect("list")
                    .iter()
                    .map(|c| c["name"].as_str().unwrap_or(""))
                    .collect();
                assert_eq!(names, vec!["one", "two", "three"]);
            },
        },
    ];
    let s = deploy_schema();
    for case in cases {
        let mut live: Option<Value> = None;
        for (i, (manager, cfg, force)) in case.steps.iter().enumerate() {
            let now = [T0, T1, T2][i.min(2)];
            match apply(live.as_ref(), cfg, manager, *force, None, &s, now) {
                Ok(v) => live = Some(v),
                Err(e) => panic!("{}: step {i}: {e}", case.name),
            }
        }
        let out = live.expect("steps");
        let r = std::panic::catch_unwind(|| (case.check)(&out));
        assert!(r.is_ok(), "case failed: {}\nobject: {out:#}", case.name);
    }
}

#[test]
fn apply_conflicts() {
    struct Case {
        name: &'static str,
        live: Value,
        manager: &'static str,
        applied: Value,
        message: &'static str,
        fields: Vec<&'static str>,
    }
    let s = deploy_schema();
    let base = deployment(
        1,
        json!([{"name": "app", "image": "app:1", "args": ["--x"]}]),
    );
    let by_a = ok(apply(None, &base, "a", false, None, &s, T0));
    let csa = update(None, &base, "kubectl-client-side-apply", None, &s, T0);
    let scaled = {
        let mut d = csa.clone();
        d["spec"]["replicas"] = json!(4);
        update(Some(&csa), &d, "kubectl-scale", Some("scale"), &s, T1)
    };
    let cases = vec![
        Case {
            name: "different value than an Apply manager",
            live: by_a.clone(),
            manager: "b",
            applied: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}}),
            message: "Apply failed with 1 conflict: conflict with \"a\": .spec.replicas",
            fields: vec![".spec.replicas"],
        },
        Case {
            name: "different value than an Update manager (client-side apply)",
            live: csa.clone(),
            manager: "kubectl",
            applied: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}}),
            message: "Apply failed with 1 conflict: conflict with \"kubectl-client-side-apply\" using apps/v1: .spec.replicas",
            fields: vec![".spec.replicas"],
        },
        Case {
            name: "replicas set through the scale subresource",
            live: scaled.clone(),
            manager: "kubectl",
            applied: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 2}}),
            message: "Apply failed with 1 conflict: conflict with \"kubectl-scale\" with subresource \"scale\" using apps/v1: .spec.replicas",
            fields: vec![".spec.replicas"],
        },
        Case {
            name: "atomic selector and list",
            live: by_a.clone(),
            manager: "b",
            applied: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"selector": {"matchLabels": {"app": "other"}}, "template": {"spec": {"containers": [{"name": "app", "args": ["--y"]}]}}}}),
            message: "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.selector\n- .spec.template.spec.containers[name=\"app\"].args",
            fields: vec![
                ".spec.selector",
                ".spec.template.spec.containers[name=\"app\"].args",
            ],
        },
        Case {
            name: "conflicts with two managers are grouped by manager",
            live: {
                let mut d = by_a.clone();
                d["metadata"]["labels"] = json!({"team": "x"});
                update(Some(&by_a), &d, "kubectl-edit", None, &s, T1)
            },
            manager: "c",
            applied: json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"team": "y"}},
                "spec": {"replicas": 9}}),
            message: "Apply failed with 2 conflicts: conflicts with \"a\":\n- .spec.replicas\nconflicts with \"kubectl-edit\" using apps/v1:\n- .metadata.labels.team",
            fields: vec![".spec.replicas", ".metadata.labels.team"],
        },
    ];
    for case in cases {
        match apply(
            Some(&case.live),
            &case.applied,
            case.manager,
            false,
            None,
            &s,
            T2,
        ) {
            Err(ApplyError::Conflicts(cs)) => {
                let err = ApplyError::Conflicts(cs.clone());
                assert_eq!(err.to_string(), case.message, "{}", case.name);
                let fields: Vec<&str> = cs.iter().map(|c| c.field.as_str()).collect();
                assert_eq!(fields, case.fields, "{}", case.name);
            }
            Ok(v) => panic!("{}: expected a conflict, got {v:#}", case.name),
            Err(e) => panic!("{}: expected a conflict, got {e}", case.name),
        }
        // With force the same apply succeeds and the applier owns the fields.
        let forced = ok(apply(
            Some(&case.live),
            &case.applied,
            case.manager,
            true,
            None,
            &s,
            T2,
        ));
        for f in &case.fields {
            assert!(
                paths_of(&forced, case.manager).contains(&f.to_string()),
                "{}: {f}",
                case.name
            );
            for (m, _, _, paths) in owners(&forced) {
                if m != case.manager {
                    assert!(
                        !paths.contains(&f.to_string()),
                        "{}: {m} still owns {f}",
                        case.name
                    );
                }
            }
        }
    }
}

#[test]
fn conflict_cause_fields() {
    let s = deploy_schema();
    let live = update(
        None,
        &deployment(1, json!([])),
        "kubectl-client-side-apply",
        None,
        &s,
        T0,
    );
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {"replicas": 3}});
    let Err(ApplyError::Conflicts(cs)) =
        apply(Some(&live), &applied, "kubectl", false, None, &s, T1)
    else {
        panic!("expected conflict");
    };
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].manager, "kubectl-client-side-apply");
    assert_eq!(cs[0].api_version, "apps/v1");
    assert_eq!(
        cs[0].cause_message(),
        "conflict with \"kubectl-client-side-apply\" using apps/v1"
    );
}

#[test]
fn apply_keeps_server_managed_metadata() {
    let s = deploy_schema();
    let mut live = ok(apply(
        None,
        &deployment(1, json!([])),
        "a",
        false,
        None,
        &s,
        T0,
    ));
    live["metadata"]["resourceVersion"] = json!("7");
    live["metadata"]["uid"] = json!("u-1");
    live["metadata"]["creationTimestamp"] = json!(T0);
    live["metadata"]["generation"] = json!(1);
    let mut applied = deployment(2, json!([]));
    applied["metadata"]["resourceVersion"] = json!("999");
    applied["metadata"]["uid"] = json!("other");
    applied["metadata"]["generation"] = json!(42);
    let out = ok(apply(Some(&live), &applied, "a", false, None, &s, T1));
    assert_eq!(out["metadata"]["resourceVersion"], json!("7"));
    assert_eq!(out["metadata"]["uid"], json!("u-1"));
    assert_eq!(out["metadata"]["generation"], json!(1));
    assert_eq!(out["metadata"]["creationTimestamp"], json!(T0));
    assert_eq!(out["spec"]["replicas"], json!(2));
    let paths = paths_of(&out, "a");
    for p in [
        ".metadata.resourceVersion",
        ".metadata.uid",
        ".metadata.name",
        ".apiVersion",
        ".kind",
    ] {
        assert!(!paths.contains(&p.to_string()), "{p} must not be owned");
    }
}

#[test]
fn apply_errors() {
    let s = deploy_schema();
    let cases: Vec<(&str, Value, &str)> = vec![
        ("not an object", json!([1]), "must be a JSON object"),
        (
            "container without a name",
            deployment(1, json!([{"image": "x"}])),
            "omits key field \"name\"",
        ),
        (
            "duplicate containers",
            deployment(1, json!([{"name": "a"}, {"name": "a"}])),
            "duplicate entries for key [name=\"a\"]",
        ),
        (
            "managedFields in the applied configuration",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web",
                "managedFields": [{"manager": "x", "operation": "Apply"}]}}),
            "metadata.managedFields must be nil",
        ),
    ];
    for (name, applied, msg) in cases {
        match apply(None, &applied, "m", false, None, &s, T0) {
            Err(ApplyError::Invalid(e)) => assert!(e.to_string().contains(msg), "{name}: {e}"),
            other => panic!("{name}: expected Invalid, got {other:?}"),
        }
    }
}

#[test]
fn apply_unchanged_keeps_time_and_subresources_are_separate_managers() {
    let s = deploy_schema();
    let d = deployment(1, json!([]));
    let first = ok(apply(None, &d, "a", false, None, &s, T0));
    let again = ok(apply(Some(&first), &d, "a", false, None, &s, T1));
    assert_eq!(again["metadata"]["managedFields"][0]["time"], json!(T0));
    let status = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "status": {"replicas": 1}});
    let with_status = ok(apply(
        Some(&again),
        &status,
        "a",
        false,
        Some("status"),
        &s,
        T2,
    ));
    let o = owners(&with_status);
    assert_eq!(o.len(), 2, "{o:?}");
    assert!(o.iter().any(|x| x.0 == "a"
        && x.2.as_deref() == Some("status")
        && x.3 == vec![".status.replicas"]));
    assert!(
        o.iter()
            .any(|x| x.0 == "a" && x.2.is_none() && x.3.contains(&".spec.replicas".to_string()))
    );
}

#[test]
fn update_create_records_fields_like_the_api_server() {
    let s = deploy_schema();
    let mut d = deployment(
        1,
        json!([{"name": "nginx", "image": "nginx", "ports": [{"containerPort": 80, "protocol": "TCP"}]}]),
    );
    d["metadata"]["labels"] = json!({"app": "web"});
    let out = update(None, &d, "kubectl-create", None, &s, T0);
    let expected = json!([{
        "manager": "kubectl-create", "operation": "Update", "apiVersion": "apps/v1", "time": T0,
        "fieldsType": "FieldsV1",
        "fieldsV1": {
            "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
            "f:spec": {
                "f:replicas": {}, "f:selector": {},
                "f:template": {
                    "f:metadata": {"f:labels": {".": {}, "f:app": {}}},
                    "f:spec": {"f:containers": {"k:{\"name\":\"nginx\"}": {
                        ".": {}, "f:image": {}, "f:name": {},
                        "f:ports": {".": {}, "k:{\"containerPort\":80,\"protocol\":\"TCP\"}": {".": {}, "f:containerPort": {}, "f:protocol": {}}}
                    }}}
                }
            }
        }
    }]);
    assert_eq!(
        out["metadata"]["managedFields"].to_string(),
        expected.to_string()
    );
}

#[test]
fn update_scenarios() {
    let s = deploy_schema();
    let created = update(
        None,
        &deployment(1, json!([{"name": "app", "image": "app:1"}])),
        "creator",
        None,
        &s,
        T0,
    );

    // Another manager changes the image: it owns it, the creator loses it.
    let mut d = created.clone();
    d["spec"]["template"]["spec"]["containers"][0]["image"] = json!("app:2");
    let edited = update(Some(&created), &d, "editor", None, &s, T1);
    let img = ".spec.template.spec.containers[name=\"app\"].image".to_string();
    assert_eq!(paths_of(&edited, "editor"), vec![img.clone()]);
    assert!(!paths_of(&edited, "creator").contains(&img));

    // The same manager again: merged into its entry.
    let mut d2 = edited.clone();
    d2["spec"]["replicas"] = json!(2);
    let edited2 = update(Some(&edited), &d2, "editor", None, &s, T2);
    assert_eq!(
        paths_of(&edited2, "editor"),
        vec![".spec.replicas".to_string(), img.clone()]
    );
    assert_eq!(owners(&edited2).len(), 2);

    // Removing a field removes it from every manager.
    let mut d3 = edited2.clone();
    d3["spec"].as_object_mut().expect("spec").remove("replicas");
    let removed = update(Some(&edited2), &d3, "third", None, &s, T2);
    for (_, _, _, paths) in owners(&removed) {
        assert!(!paths.contains(&".spec.replicas".to_string()));
    }
    assert!(
        owners(&removed).iter().all(|o| o.0 != "third"),
        "no entry for a pure removal"
    );

    // No change: managedFields untouched (times included).
    let same = update(Some(&removed), &removed, "fourth", None, &s, T2);
    assert_eq!(
        same["metadata"]["managedFields"],
        removed["metadata"]["managedFields"]
    );

    // A client may reset managedFields with [{}].
    let mut reset = removed.clone();
    reset["metadata"]["managedFields"] = json!([{}]);
    reset["metadata"]["labels"] = json!({"x": "y"});
    let r = update(Some(&removed), &reset, "resetter", None, &s, T2);
    let o = owners(&r);
    assert_eq!(o.len(), 1, "{o:?}");
    assert_eq!(
        o[0].3,
        vec![
            ".metadata.labels".to_string(),
            ".metadata.labels.x".to_string()
        ]
    );

    // A client that drops managedFields does not erase them.
    let mut dropped = removed.clone();
    dropped["metadata"]
        .as_object_mut()
        .expect("meta")
        .remove("managedFields");
    dropped["metadata"]["annotations"] = json!({"a": "b"});
    let kept = update(Some(&removed), &dropped, "annotator", None, &s, T2);
    assert_eq!(owners(&kept).len(), owners(&removed).len() + 1);

    // An Update then an Apply of the same value: shared, no conflict.
    let applied = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "app", "image": "app:2"}]}}}});
    let shared = ok(apply(Some(&kept), &applied, "kubectl", false, None, &s, T2));
    assert!(paths_of(&shared, "editor").contains(&img));
    assert!(paths_of(&shared, "kubectl").contains(&img));
}

#[test]
fn fieldset_of_excludes_identity() {
    let s = deploy_schema();
    let mut d = deployment(1, json!([]));
    d["metadata"]["uid"] = json!("u");
    d["metadata"]["resourceVersion"] = json!("1");
    d["metadata"]["labels"] = json!({"a": "b"});
    let set = fieldset_of(&d, &s).expect("set");
    assert_eq!(
        field_paths(&set),
        vec![
            ".metadata.labels.a",
            ".spec.replicas",
            ".spec.selector",
            ".spec.template.metadata.labels.app"
        ]
    );
    let round = FieldSet::from_fields_v1(&set.to_fields_v1()).expect("round trip");
    assert_eq!(round, set);
}

#[test]
fn custom_resource_apply_uses_openapi_schema() {
    let s = OpenApiSchema::new(json!({"type": "object", "properties": {
        "spec": {"type": "object", "properties": {
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}}}},
            "hosts": {"type": "array", "items": {"type": "string"}},
            "config": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}
        }}
    }}));
    assert!(!s.supports_strategic_merge());
    let cr = |ports: Value, hosts: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Widget",
        "metadata": {"name": "w"}, "spec": {"ports": ports, "hosts": hosts}})
    };
    let a = ok(apply(
        None,
        &cr(json!([{"name": "http", "port": 80}]), json!(["a"])),
        "a",
        false,
        None,
        &s,
        T0,
    ));
    assert_eq!(
        paths_of(&a, "a"),
        vec![
            ".spec.hosts",
            ".spec.ports[name=\"http\"]",
            ".spec.ports[name=\"http\"].name",
            ".spec.ports[name=\"http\"].port"
        ]
    );
    let b_cfg = cr(json!([{"name": "metrics", "port": 9090}]), json!(["b"]));
    match apply(Some(&a), &b_cfg, "b", false, None, &s, T1) {
        Err(ApplyError::Conflicts(cs)) => {
            let f: Vec<&str> = cs.iter().map(|c| c.field.as_str()).collect();
            assert_eq!(
                f,
                vec![".spec.hosts"],
                "atomic list conflicts, map-list items do not"
            );
        }
        other => panic!("expected conflict on the atomic list, got {other:?}"),
    }
    let b = ok(apply(Some(&a), &b_cfg, "b", true, None, &s, T1));
    assert_eq!(
        b["spec"]["ports"],
        json!([{"name": "http", "port": 80}, {"name": "metrics", "port": 9090}])
    );
    assert_eq!(b["spec"]["hosts"], json!(["b"]));

    // Preserve-unknown-fields objects are granular; nested entries are owned with ".".
    let c = ok(apply(
        None,
        &json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"},
        "spec": {"config": {"a": {"b": 1}}}}),
        "c",
        false,
        None,
        &s,
        T0,
    ));
    assert_eq!(
        c["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {"f:config": {"f:a": {".": {}, "f:b": {}}}}})
    );
}

#[test]
fn update_on_custom_resources_marks_added_objects() {
    let s = OpenApiSchema::unknown();
    let cr = json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1}});
    let out = update(None, &cr, "kubectl-create", None, &s, T0);
    assert_eq!(
        out["metadata"]["managedFields"][0]["fieldsV1"],
        json!({"f:spec": {".": {}, "f:size": {}}})
    );
}

#[test]
fn builtin_schema_is_usable_as_dyn() {
    let s: Box<dyn Schema> = Box::new(deploy_schema());
    let out = ok(apply(
        None,
        &deployment(1, json!([])),
        "a",
        false,
        None,
        s.as_ref(),
        T0,
    ));
    assert_eq!(paths_of(&out, "a").len(), 3);
}

/// A custom resource's schema as the dev cluster merges it: maps emptied by a removal become
/// `null` (structured-merge-diff in Kubernetes 1.33).
struct NullingSchema(OpenApiSchema);

impl Schema for NullingSchema {
    fn field(&self, path: &[&str]) -> rollgit_merge::FieldInfo {
        self.0.field(path)
    }
    fn supports_strategic_merge(&self) -> bool {
        false
    }
    fn emptied_becomes_null(&self) -> bool {
        true
    }
}

#[test]
fn a_map_the_manager_empties_becomes_null_in_a_custom_resource() {
    let schema = NullingSchema(OpenApiSchema::new(json!({
        "type": "object",
        "properties": {"spec": {"type": "object", "properties": {
            "size": {"type": "integer"},
            "plan": {"type": "object", "properties": {
                "batches": {"type": "array", "items": {"type": "integer"}},
                "paused": {"type": "boolean"}}}}}}
    })));
    let cr = |plan: Value| {
        json!({"apiVersion": "example.com/v1", "kind": "Thing",
            "metadata": {"name": "t"}, "spec": {"size": 5, "plan": plan}})
    };
    let first = ok(apply(
        None,
        &cr(json!({"batches": [2, 3]})),
        "m",
        false,
        None,
        &schema,
        "t0",
    ));
    let emptied = ok(apply(
        Some(&first),
        &cr(json!({})),
        "m",
        false,
        None,
        &schema,
        "t1",
    ));
    assert_eq!(emptied["spec"]["plan"], Value::Null, "{emptied:#}");
    let kept = ok(apply(
        Some(&first),
        &cr(json!({"paused": false})),
        "m",
        false,
        None,
        &schema,
        "t1",
    ));
    assert_eq!(kept["spec"]["plan"], json!({"paused": false}), "{kept:#}");
}
