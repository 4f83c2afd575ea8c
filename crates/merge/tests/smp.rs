//! Strategic merge patch, one named case per row.

use rollgit_merge::{BuiltinSchema, MergeError, OpenApiSchema, strategic_merge};
use serde_json::{Value, json};

fn pod_schema() -> BuiltinSchema {
    BuiltinSchema::for_kind("v1", "Pod").expect("pod")
}

fn pod(spec: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}, "spec": spec})
}

#[test]
fn strategic_merge_table() {
    let c = |name: &str, image: &str| json!({"name": name, "image": image});
    // (name, original, patch, expected)
    let cases: Vec<(&str, Value, Value, Value)> = vec![
        (
            "scalar replaced, null deletes a key",
            json!({"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"a": "x", "b": null, "c": "3"}}}),
            json!({"metadata": {"name": "p", "labels": {"a": "x", "c": "3"}}}),
        ),
        (
            "containers merged by name, new ones appended",
            pod(json!({"containers": [c("a", "a:1"), c("b", "b:1")]})),
            json!({"spec": {"containers": [{"name": "b", "image": "b:2"}, c("c", "c:1")]}}),
            pod(json!({"containers": [c("a", "a:1"), c("b", "b:2"), c("c", "c:1")]})),
        ),
        (
            "container env merged by name",
            pod(
                json!({"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}]}]}),
            ),
            json!({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}]}]}}),
            pod(
                json!({"containers": [{"name": "a", "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}]}]}),
            ),
        ),
        (
            "container ports merged by containerPort",
            pod(
                json!({"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "http"}]}]}),
            ),
            json!({"spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 443}]}]}}),
            pod(
                json!({"containers": [{"name": "a", "ports": [{"containerPort": 80, "name": "web"}, {"containerPort": 443}]}]}),
            ),
        ),
        (
            "tolerations replaced (no patch strategy)",
            pod(json!({"tolerations": [{"key": "a"}, {"key": "b"}]})),
            json!({"spec": {"tolerations": [{"key": "c"}]}}),
            pod(json!({"tolerations": [{"key": "c"}]})),
        ),
        (
            "args replaced",
            pod(json!({"containers": [{"name": "a", "args": ["1", "2"]}]})),
            json!({"spec": {"containers": [{"name": "a", "args": ["3"]}]}}),
            pod(json!({"containers": [{"name": "a", "args": ["3"]}]})),
        ),
        (
            "finalizers merged as a set",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"finalizers": ["b", "c"]}}),
            json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
        ),
        (
            "$deleteFromPrimitiveList removes set values",
            json!({"metadata": {"finalizers": ["a", "b", "c"]}}),
            json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["b"]}}),
            json!({"metadata": {"finalizers": ["a", "c"]}}),
        ),
        (
            "$patch: delete in a list element removes it by merge key",
            pod(json!({"containers": [c("a", "a:1"), c("b", "b:1")]})),
            json!({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}}),
            pod(json!({"containers": [c("b", "b:1")]})),
        ),
        (
            "$patch: replace in a list replaces it",
            pod(json!({"containers": [c("a", "a:1"), c("b", "b:1")]})),
            json!({"spec": {"containers": [{"$patch": "replace"}, c("z", "z:1")]}}),
            pod(json!({"containers": [c("z", "z:1")]})),
        ),
        (
            "$patch: replace in a map replaces it",
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
            json!({"metadata": {"labels": {"$patch": "replace", "c": "3"}}}),
            json!({"metadata": {"labels": {"c": "3"}}}),
        ),
        (
            "$patch: delete in a map deletes it",
            json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"$patch": "delete"}}}),
            json!({"metadata": {"name": "p"}}),
        ),
        (
            "$patch: merge is the default",
            json!({"metadata": {"labels": {"a": "1"}}}),
            json!({"metadata": {"labels": {"$patch": "merge", "b": "2"}}}),
            json!({"metadata": {"labels": {"a": "1", "b": "2"}}}),
        ),
        (
            "$retainKeys on a volume drops the other union member",
            pod(json!({"volumes": [{"name": "v", "emptyDir": {}}]})),
            json!({"spec": {"volumes": [{"name": "v", "$retainKeys": ["name", "hostPath"], "hostPath": {"path": "/x"}}]}}),
            pod(json!({"volumes": [{"name": "v", "hostPath": {"path": "/x"}}]})),
        ),
        (
            "$setElementOrder orders merged containers",
            pod(json!({"containers": [c("a", "a:1"), c("b", "b:1")]})),
            json!({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}], "containers": [{"name": "a", "image": "a:2"}]}}),
            pod(json!({"containers": [c("b", "b:1"), c("a", "a:2")]})),
        ),
        (
            "$setElementOrder on a primitive list",
            json!({"metadata": {"finalizers": ["a", "b"]}}),
            json!({"metadata": {"$setElementOrder/finalizers": ["b", "a", "c"], "finalizers": ["c"]}}),
            json!({"metadata": {"finalizers": ["b", "a", "c"]}}),
        ),
        (
            "directives in new values are cleaned",
            json!({"metadata": {"name": "p"}}),
            json!({"metadata": {"labels": {"$patch": "replace", "a": "1", "gone": null}}}),
            json!({"metadata": {"name": "p", "labels": {"a": "1"}}}),
        ),
        (
            "ownerReferences merged by uid",
            json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "2", "name": "b"}]}}),
            json!({"metadata": {"ownerReferences": [{"uid": "1", "name": "a"}, {"uid": "2", "name": "b"}]}}),
        ),
        (
            "pod conditions merged by type",
            json!({"status": {"conditions": [{"type": "Ready", "status": "False"}, {"type": "Initialized", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
            json!({"status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"}]}}),
        ),
    ];
    let s = pod_schema();
    for (name, original, patch, expected) in cases {
        match strategic_merge(&original, &patch, &s) {
            Ok(got) => assert_eq!(got, expected, "{name}"),
            Err(e) => panic!("{name}: {e}"),
        }
    }
}

#[test]
fn strategic_merge_workloads() {
    let d = BuiltinSchema::for_kind("apps/v1", "Deployment").expect("deployment");
    let original = json!({"spec": {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}},
        "template": {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:1"}]}}}});
    let patch = json!({"spec": {
        "strategy": {"$retainKeys": ["type"], "type": "Recreate"},
        "template": {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}}});
    let got = strategic_merge(&original, &patch, &d).expect("patch");
    assert_eq!(
        got,
        json!({"spec": {"strategy": {"type": "Recreate"},
        "template": {"spec": {"containers": [{"name": "a", "image": "a:1"}, {"name": "b", "image": "b:2"}]}}}})
    );

    let svc = BuiltinSchema::for_kind("v1", "Service").expect("service");
    let got = strategic_merge(
        &json!({"spec": {"ports": [{"port": 80, "targetPort": 8080}]}}),
        &json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}}),
        &svc,
    )
    .expect("service patch");
    assert_eq!(
        got,
        json!({"spec": {"ports": [{"port": 80, "targetPort": 9090}, {"port": 443}]}})
    );
}

#[test]
fn strategic_merge_errors() {
    let s = pod_schema();
    let cases: Vec<(&str, Value, Value, &str)> = vec![
        (
            "container without merge key",
            pod(json!({"containers": []})),
            json!({"spec": {"containers": [{"image": "x"}]}}),
            "does not contain declared merge key: name",
        ),
        (
            "patch not an object",
            json!({}),
            json!([1]),
            "must be a JSON object",
        ),
        (
            "unknown $patch",
            json!({}),
            json!({"metadata": {"$patch": "explode"}}),
            "unknown patch type",
        ),
        (
            "$retainKeys not a list",
            json!({}),
            json!({"spec": {"$retainKeys": "name"}}),
            "$retainKeys should be a list",
        ),
        (
            "$retainKeys missing a patched key",
            json!({}),
            json!({"spec": {"$retainKeys": ["a"], "b": 1}}),
            "not in $retainKeys",
        ),
        (
            "$patch: delete element without merge key",
            pod(json!({"containers": []})),
            json!({"spec": {"containers": [{"$patch": "delete"}]}}),
            "does not contain declared merge key: name",
        ),
    ];
    for (name, original, patch, msg) in cases {
        match strategic_merge(&original, &patch, &s) {
            Err(e) => assert!(e.to_string().contains(msg), "{name}: {e}"),
            Ok(v) => panic!("{name}: expected an error, got {v}"),
        }
    }
}

#[test]
fn custom_resources_reject_strategic_merge() {
    let s = OpenApiSchema::unknown();
    assert_eq!(
        strategic_merge(&json!({}), &json!({}), &s),
        Err(MergeError::StrategicMergeUnsupported)
    );
}
