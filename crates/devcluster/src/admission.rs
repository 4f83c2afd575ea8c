//! What a real apiserver does to an object before storing it: defaulting, validation (with the
//! field paths and messages kube-apiserver uses), immutability, and custom-resource pruning.

use crate::error::Cause;
use crate::resources::ResourceType;
use crate::selector::LabelSelector;
use rollgit_syntax::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name,
};
use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

fn name_rule(kind: &str) -> (fn(&str) -> bool, &'static str) {
    match kind {
        "Namespace" => (
            is_dns1123_label,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
        ),
        "Service" => (
            is_dns1035_label,
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')",
        ),
        _ => (
            is_dns1123_subdomain,
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')",
        ),
    }
}

/// Checks `metadata.name` against the rule of the kind.
pub fn validate_name(kind: &str, name: &str) -> Option<Cause> {
    let (ok, msg) = name_rule(kind);
    (!ok(name)).then(|| Cause::invalid("metadata.name", &json!(name), msg))
}

fn validate_metadata(obj: &Value, causes: &mut Vec<Cause>) {
    let m = &obj["metadata"];
    if let Some(labels) = m.get("labels") {
        match labels.as_object() {
            Some(l) => {
                for (k, v) in l {
                    if !is_qualified_name(k) {
                        causes.push(Cause::invalid(
                            "metadata.labels",
                            &json!(k),
                            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                        ));
                    }
                    match v.as_str() {
                        Some(s) if is_label_value(s) => {}
                        Some(s) => causes.push(Cause::invalid(
                            "metadata.labels",
                            &json!(s),
                            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                        )),
                        None => causes.push(Cause::type_invalid(
                            format!("metadata.labels.{k}"),
                            v,
                            "string",
                        )),
                    }
                }
            }
            None if labels.is_null() => {}
            None => causes.push(Cause::type_invalid("metadata.labels", labels, "object")),
        }
    }
    if let Some(ann) = m.get("annotations") {
        match ann.as_object() {
            Some(a) => {
                let mut total = 0;
                for (k, v) in a {
                    total += k.len() + v.as_str().map_or(0, str::len);
                    if !is_qualified_name(k) {
                        causes.push(Cause::invalid(
                            "metadata.annotations",
                            &json!(k),
                            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character",
                        ));
                    }
                    if !v.is_string() {
                        causes.push(Cause::type_invalid(
                            format!("metadata.annotations.{k}"),
                            v,
                            "string",
                        ));
                    }
                }
                if total > 256 * 1024 {
                    causes.push(Cause {
                        reason: "FieldValueTooLong".into(),
                        message: "Too long: must have at most 262144 bytes".into(),
                        field: "metadata.annotations".into(),
                    });
                }
            }
            None if ann.is_null() => {}
            None => causes.push(Cause::type_invalid("metadata.annotations", ann, "object")),
        }
    }
}

fn labels_of(v: &Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn validate_containers(spec: &Value, base: &str, causes: &mut Vec<Cause>) {
    match spec.get("containers").and_then(Value::as_array) {
        Some(cs) if !cs.is_empty() => {
            for (i, c) in cs.iter().enumerate() {
                let p = format!("{base}.containers[{i}]");
                match c.get("name").and_then(Value::as_str) {
                    None | Some("") => causes.push(Cause::required(format!("{p}.name"))),
                    Some(n) if !is_dns1123_label(n) => causes.push(Cause::invalid(
                        format!("{p}.name"),
                        &json!(n),
                        "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
                    )),
                    Some(_) => {}
                }
                match c.get("image").and_then(Value::as_str) {
                    None | Some("") => causes.push(Cause::required(format!("{p}.image"))),
                    Some(_) => {}
                }
                for (j, port) in c
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    match port.get("containerPort").and_then(Value::as_i64) {
                        Some(n) if (1..=65535).contains(&n) => {}
                        Some(n) => causes.push(Cause::invalid(
                            format!("{p}.ports[{j}].containerPort"),
                            &json!(n),
                            "must be between 1 and 65535, inclusive",
                        )),
                        None => {
                            causes.push(Cause::required(format!("{p}.ports[{j}].containerPort")))
                        }
                    }
                }
            }
        }
        _ => causes.push(Cause::required(format!("{base}.containers"))),
    }
}

fn validate_workload(obj: &Value, kind: &str, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    if let Some(r) = spec.get("replicas") {
        match r.as_i64() {
            Some(n) if n >= 0 => {}
            Some(n) => causes.push(Cause::invalid(
                "spec.replicas",
                &json!(n),
                "must be greater than or equal to 0",
            )),
            None if r.is_null() => {}
            None => causes.push(Cause::type_invalid("spec.replicas", r, "integer")),
        }
    }
    let selector = spec.get("selector").filter(|s| !s.is_null());
    let template_labels = labels_of(&spec["template"]["metadata"]["labels"]);
    match selector {
        None => causes.push(Cause::required("spec.selector")),
        Some(sel) => match LabelSelector::from_object(sel) {
            Ok(s) if s.is_empty() => causes.push(Cause::invalid(
                "spec.selector",
                sel,
                "empty selector is invalid for deployment",
            )),
            Ok(s) => {
                if !s.matches(&template_labels) {
                    let shown: Vec<String> = template_labels
                        .iter()
                        .map(|(k, v)| format!("{k}:{v}"))
                        .collect();
                    causes.push(Cause::invalid(
                        "spec.template.metadata.labels",
                        &json!(format!("map[{}]", shown.join(" "))),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            Err(e) => causes.push(Cause::invalid("spec.selector", sel, &e.to_string())),
        },
    }
    if spec.get("template").is_none_or(Value::is_null) {
        causes.push(Cause::required("spec.template"));
    } else {
        validate_containers(&spec["template"]["spec"], "spec.template.spec", causes);
    }
    if kind == "Deployment"
        && let Some(t) = spec["strategy"].get("type").and_then(Value::as_str)
        && t != "RollingUpdate"
        && t != "Recreate"
    {
        causes.push(Cause::not_supported(
            "spec.strategy.type",
            &json!(t),
            &["Recreate", "RollingUpdate"],
        ));
    }
}

fn validate_service(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let ty = spec["type"].as_str().unwrap_or("ClusterIP");
    if !["ClusterIP", "NodePort", "LoadBalancer", "ExternalName"].contains(&ty) {
        causes.push(Cause::not_supported(
            "spec.type",
            &json!(ty),
            &["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"],
        ));
    }
    let headless = spec["clusterIP"].as_str() == Some("None");
    let ports = spec["ports"].as_array().cloned().unwrap_or_default();
    if ports.is_empty() && ty != "ExternalName" && !headless {
        causes.push(Cause::required("spec.ports"));
    }
    for (i, p) in ports.iter().enumerate() {
        match p.get("port").and_then(Value::as_i64) {
            Some(n) if (1..=65535).contains(&n) => {}
            Some(n) => causes.push(Cause::invalid(
                format!("spec.ports[{i}].port"),
                &json!(n),
                "must be between 1 and 65535, inclusive",
            )),
            None => causes.push(Cause::required(format!("spec.ports[{i}].port"))),
        }
        if ports.len() > 1
            && p.get("name")
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
        {
            causes.push(Cause::required(format!("spec.ports[{i}].name")));
        }
    }
}

fn validate_data_keys(obj: &Value, field: &str, causes: &mut Vec<Cause>) {
    if let Some(d) = obj.get(field).and_then(Value::as_object) {
        for (k, v) in d {
            let ok = !k.is_empty()
                && k.len() <= 253
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
            if !ok {
                causes.push(Cause::invalid(
                    format!("{field}[{k}]"),
                    &json!(k),
                    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')",
                ));
            }
            if !v.is_string() {
                causes.push(Cause::type_invalid(format!("{field}[{k}]"), v, "string"));
            }
        }
    } else if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
        causes.push(Cause::type_invalid(field, v, "object"));
    }
}

fn validate_crd(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let group = spec["group"].as_str().unwrap_or_default();
    if group.is_empty() {
        causes.push(Cause::required("spec.group"));
    } else if !group.contains('.') || !is_dns1123_subdomain(group) {
        causes.push(Cause::invalid(
            "spec.group",
            &json!(group),
            "should be a domain with at least one dot",
        ));
    }
    let plural = spec["names"]["plural"].as_str().unwrap_or_default();
    let kind = spec["names"]["kind"].as_str().unwrap_or_default();
    if plural.is_empty() {
        causes.push(Cause::required("spec.names.plural"));
    } else if !is_dns1123_label(plural) {
        causes.push(Cause::invalid(
            "spec.names.plural",
            &json!(plural),
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-'",
        ));
    }
    if kind.is_empty() {
        causes.push(Cause::required("spec.names.kind"));
    }
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if !plural.is_empty() && !group.is_empty() && name != format!("{plural}.{group}") {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be spec.names.plural+\".\"+spec.group",
        ));
    }
    match spec["scope"].as_str() {
        Some("Namespaced") | Some("Cluster") => {}
        Some(other) => causes.push(Cause::not_supported(
            "spec.scope",
            &json!(other),
            &["Cluster", "Namespaced"],
        )),
        None => causes.push(Cause::required("spec.scope")),
    }
    let versions = spec["versions"].as_array().cloned().unwrap_or_default();
    if versions.is_empty() {
        causes.push(Cause::required("spec.versions"));
    }
    let storage = versions
        .iter()
        .filter(|v| v["storage"].as_bool() == Some(true))
        .count();
    if !versions.is_empty() && storage != 1 {
        causes.push(Cause::invalid(
            "spec.versions",
            &json!(
                versions
                    .iter()
                    .map(|v| v["name"].clone())
                    .collect::<Vec<_>>()
            ),
            "must have exactly one version marked as storage version",
        ));
    }
    for (i, v) in versions.iter().enumerate() {
        if v["name"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("spec.versions[{i}].name")));
        }
        if v["schema"]["openAPIV3Schema"].is_null() {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: schemas are required".into(),
                field: format!("spec.versions[{i}].schema.openAPIV3Schema"),
            });
        }
    }
}

/// Validates a custom resource against its version's `openAPIV3Schema`, pruning unknown fields
/// (as a structural schema does) and collecting type, enum, range and required errors.
pub fn prune_and_validate(v: &mut Value, schema: &Value, path: &str, causes: &mut Vec<Cause>) {
    if v.is_null() && schema["nullable"].as_bool() == Some(true) {
        return;
    }
    let ty = schema["type"].as_str().unwrap_or("");
    let int_or_string = schema["x-kubernetes-int-or-string"].as_bool() == Some(true);
    let type_ok = match ty {
        _ if int_or_string => v.is_i64() || v.is_u64() || v.is_string(),
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "integer" => v.is_i64() || v.is_u64(),
        "number" => v.is_number(),
        "boolean" => v.is_boolean(),
        _ => true,
    };
    if !type_ok {
        causes.push(Cause::type_invalid(
            path,
            v,
            if int_or_string {
                "integer or string"
            } else {
                ty
            },
        ));
        return;
    }
    if let Some(allowed) = schema["enum"].as_array()
        && !allowed.contains(v)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        causes.push(Cause::not_supported(path, v, &refs));
    }
    if let Some(n) = v.as_f64() {
        if let Some(min) = schema["minimum"].as_f64()
            && n < min
        {
            causes.push(Cause::invalid(
                path,
                v,
                &format!("should be greater than or equal to {min}"),
            ));
        }
        if let Some(max) = schema["maximum"].as_f64()
            && n > max
        {
            causes.push(Cause::invalid(
                path,
                v,
                &format!("should be less than or equal to {max}"),
            ));
        }
    }
    if let (Some(s), Some(p)) = (v.as_str(), schema["pattern"].as_str()) {
        // Patterns are not evaluated (no regex engine here); record nothing rather than guess.
        let _ = (s, p);
    }
    let child = |name: &str| {
        if path.is_empty() {
            name.to_string()
        } else {
            format!("{path}.{name}")
        }
    };
    match v {
        Value::Object(map) => {
            let preserve = schema["x-kubernetes-preserve-unknown-fields"].as_bool() == Some(true);
            if let Some(props) = schema["properties"].as_object() {
                if !preserve {
                    map.retain(|k, _| props.contains_key(k));
                }
                for (k, sub) in props {
                    if let Some(val) = map.get_mut(k) {
                        prune_and_validate(val, sub, &child(k), causes);
                    }
                }
            } else if let Some(additional) = schema.get("additionalProperties") {
                if additional.is_object() {
                    for (k, val) in map.iter_mut() {
                        prune_and_validate(val, additional, &child(k), causes);
                    }
                }
            } else if !preserve && ty == "object" {
                map.clear();
            }
            for r in schema["required"].as_array().into_iter().flatten() {
                if let Some(r) = r.as_str()
                    && !map.contains_key(r)
                {
                    causes.push(Cause::required(child(r)));
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for (i, it) in items.iter_mut().enumerate() {
                    prune_and_validate(it, item_schema, &format!("{path}[{i}]"), causes);
                }
            }
        }
        _ => {}
    }
}

/// Validates an object of a type, returning the causes of a 422.
pub fn validate(rt: &ResourceType, obj: &mut Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if let Some(c) = validate_name(&rt.kind, &name) {
        causes.push(c);
    }
    validate_metadata(obj, &mut causes);
    if let Some(crd) = &rt.crd {
        if let Some(schema) = &crd.schema {
            let mut top = Map::new();
            if let Some(m) = obj.as_object_mut() {
                for key in ["apiVersion", "kind", "metadata"] {
                    if let Some(v) = m.remove(key) {
                        top.insert(key.to_string(), v);
                    }
                }
            }
            let mut without_meta = schema.clone();
            if let Some(props) = without_meta["properties"].as_object_mut() {
                for key in ["apiVersion", "kind", "metadata"] {
                    props.remove(key);
                }
            }
            if let Some(req) = without_meta["required"].as_array_mut() {
                req.retain(|r| !matches!(r.as_str(), Some("apiVersion" | "kind" | "metadata")));
            }
            prune_and_validate(obj, &without_meta, "", &mut causes);
            if let Some(m) = obj.as_object_mut() {
                let rest = std::mem::take(m);
                m.extend(top);
                m.extend(rest);
            }
        }
        return causes;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            validate_workload(obj, &rt.kind, &mut causes)
        }
        ("", "Pod") => validate_containers(&obj["spec"], "spec", &mut causes),
        ("", "Service") => validate_service(obj, &mut causes),
        ("", "ConfigMap") => {
            validate_data_keys(obj, "data", &mut causes);
            validate_data_keys(obj, "binaryData", &mut causes);
        }
        ("", "Secret") => {
            validate_data_keys(obj, "data", &mut causes);
            validate_data_keys(obj, "stringData", &mut causes);
        }
        ("apps", "ControllerRevision") if !obj["revision"].is_i64() => {
            causes.push(Cause::required("revision"));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => validate_crd(obj, &mut causes),
        ("coordination.k8s.io", "Lease") => {
            if let Some(d) = obj["spec"].get("leaseDurationSeconds")
                && d.as_i64().is_none_or(|n| n <= 0)
                && !d.is_null()
            {
                causes.push(Cause::invalid(
                    "spec.leaseDurationSeconds",
                    d,
                    "must be greater than 0",
                ));
            }
        }
        _ => {}
    }
    causes
}

/// Fields that may not change after creation, as a real apiserver enforces.
pub fn validate_immutable(rt: &ResourceType, old: &Value, new: &Value) -> Vec<Cause> {
    let mut causes = Vec::new();
    let check = |path: &[&str], field: &str, causes: &mut Vec<Cause>| {
        let get = |v: &Value| path.iter().fold(v.clone(), |acc, p| acc[*p].clone());
        let (o, n) = (get(old), get(new));
        if o != n {
            causes.push(Cause::invalid(field, &n, "field is immutable"));
        }
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            check(&["spec", "selector"], "spec.selector", &mut causes)
        }
        ("", "Service") if new["spec"]["clusterIP"].is_string() => {
            check(&["spec", "clusterIP"], "spec.clusterIP", &mut causes)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            check(&["spec", "group"], "spec.group", &mut causes);
            check(
                &["spec", "names", "plural"],
                "spec.names.plural",
                &mut causes,
            );
        }
        _ => {}
    }
    if (rt.kind == "Secret" || rt.kind == "ConfigMap")
        && old["immutable"].as_bool() == Some(true)
        && old.get("data") != new.get("data")
    {
        causes.push(Cause {
            reason: "FieldValueForbidden".into(),
            message: "Forbidden: field is immutable when `immutable` is set".into(),
            field: "data".into(),
        });
    }
    causes
}

fn set_default(obj: &mut Value, key: &str, v: Value) {
    if let Some(m) = obj.as_object_mut()
        && m.get(key).is_none_or(Value::is_null)
    {
        m.insert(key.to_string(), v);
    }
}

fn default_pod_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    set_default(spec, "restartPolicy", json!("Always"));
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    set_default(spec, "securityContext", json!({}));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs {
                let image = c["image"].as_str().unwrap_or_default().to_string();
                let tag = image.rsplit('/').next().unwrap_or_default();
                let pull = if image.contains('@') {
                    "IfNotPresent"
                } else if !tag.contains(':') || tag.ends_with(":latest") {
                    "Always"
                } else {
                    "IfNotPresent"
                };
                set_default(c, "imagePullPolicy", json!(pull));
                set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "terminationMessagePolicy", json!("File"));
                set_default(c, "resources", json!({}));
                if let Some(ports) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ports {
                        set_default(p, "protocol", json!("TCP"));
                    }
                }
            }
        }
    }
}

/// Applies the defaults a real apiserver sets, so that stored objects look like a real cluster's
/// (and field ownership behaves the same). `cluster_ip` is the next free service IP.
pub fn apply_defaults(rt: &ResourceType, obj: &mut Value, cluster_ip: impl FnOnce() -> String) {
    if rt.crd.is_some() {
        return;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", kind @ ("Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")) => {
            let spec = &mut obj["spec"];
            if kind != "DaemonSet" {
                set_default(spec, "replicas", json!(1));
            }
            match kind {
                "Deployment" => {
                    set_default(spec, "revisionHistoryLimit", json!(10));
                    set_default(spec, "progressDeadlineSeconds", json!(600));
                    set_default(
                        spec,
                        "strategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                    );
                    if spec["strategy"]["type"] == "RollingUpdate" {
                        let ru = &mut spec["strategy"]["rollingUpdate"];
                        if ru.is_null() {
                            *ru = json!({});
                        }
                        set_default(ru, "maxUnavailable", json!("25%"));
                        set_default(ru, "maxSurge", json!("25%"));
                    } else if spec["strategy"]["type"].is_null() {
                        spec["strategy"]["type"] = json!("RollingUpdate");
                    }
                }
                "StatefulSet" => {
                    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                    set_default(spec, "revisionHistoryLimit", json!(10));
                    set_default(
                        spec,
                        "updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                    );
                    set_default(
                        spec,
                        "persistentVolumeClaimRetentionPolicy",
                        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                    );
                }
                "DaemonSet" => {
                    set_default(spec, "revisionHistoryLimit", json!(10));
                    set_default(
                        spec,
                        "updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                    );
                }
                _ => {}
            }
            default_pod_spec(&mut obj["spec"]["template"]["spec"]);
        }
        ("", "Pod") => default_pod_spec(&mut obj["spec"]),
        ("", "Service") => {
            let spec = &mut obj["spec"];
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "sessionAffinity", json!("None"));
            if spec["type"] != "ExternalName" {
                if spec["clusterIP"].as_str().is_none_or(str::is_empty) {
                    let ip = cluster_ip();
                    spec["clusterIP"] = json!(ip);
                    spec["clusterIPs"] = json!([ip]);
                }
                set_default(spec, "ipFamilies", json!(["IPv4"]));
                set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
                set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            }
            if let Some(ports) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ports {
                    set_default(p, "protocol", json!("TCP"));
                    let port = p["port"].clone();
                    set_default(p, "targetPort", port);
                }
            }
        }
        ("", "Secret") => {
            set_default(obj, "type", json!("Opaque"));
            // stringData is write-only: merged into data (base64) and dropped.
            if let Some(sd) = obj.as_object_mut().and_then(|m| m.remove("stringData"))
                && let Some(sd) = sd.as_object()
            {
                let data = obj
                    .as_object_mut()
                    .map(|m| m.entry("data").or_insert_with(|| json!({})));
                if let Some(Value::Object(data)) = data {
                    for (k, v) in sd {
                        data.insert(
                            k.clone(),
                            json!(base64_encode(v.as_str().unwrap_or_default().as_bytes())),
                        );
                    }
                }
            }
        }
        ("", "Namespace") => {
            obj["spec"]["finalizers"] = json!(["kubernetes"]);
            let labels = &mut obj["metadata"]["labels"];
            if labels.is_null() {
                *labels = json!({});
            }
            let name = obj["metadata"]["name"].clone();
            obj["metadata"]["labels"]["kubernetes.io/metadata.name"] = name;
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            if let Some(vs) = obj["spec"]["versions"].as_array_mut() {
                for v in vs {
                    set_default(v, "served", json!(true));
                }
            }
            set_default(&mut obj["spec"], "conversion", json!({"strategy": "None"}));
            let kind = obj["spec"]["names"]["kind"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            set_default(
                &mut obj["spec"]["names"],
                "singular",
                json!(kind.to_lowercase()),
            );
            set_default(
                &mut obj["spec"]["names"],
                "listKind",
                json!(format!("{kind}List")),
            );
        }
        _ => {}
    }
}

/// Standard base64 (with padding), as Secret data is stored.
pub fn base64_encode(data: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::builtins;

    fn rt(kind: &str) -> ResourceType {
        builtins()
            .into_iter()
            .find(|t| t.kind == kind)
            .expect("builtin")
    }

    #[test]
    fn name_rules_table() {
        let cases = [
            ("subdomain with dots", "ConfigMap", "a.b-c", true),
            ("upper case rejected", "ConfigMap", "Web", false),
            ("underscore rejected", "Deployment", "my_app", false),
            ("namespace no dots", "Namespace", "a.b", false),
            ("service must start with a letter", "Service", "1web", false),
            ("service label", "Service", "web-1", true),
            ("empty rejected", "Pod", "", false),
            ("trailing dash rejected", "Pod", "web-", false),
        ];
        for (name, kind, value, ok) in cases {
            assert_eq!(validate_name(kind, value).is_none(), ok, "{name}");
        }
    }

    #[test]
    fn deployment_without_selector_is_invalid_with_field_path() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {"template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let causes = validate(&rt("Deployment"), &mut d);
        assert_eq!(causes, vec![Cause::required("spec.selector")]);
    }

    #[test]
    fn selector_must_match_template_labels() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let causes = validate(&rt("Deployment"), &mut d);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        assert!(
            causes[0]
                .message
                .contains("`selector` does not match template `labels`")
        );
    }

    #[test]
    fn container_image_is_required() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        let causes = validate(&rt("Pod"), &mut p);
        assert_eq!(causes, vec![Cause::required("spec.containers[0].image")]);
    }

    #[test]
    fn crd_schema_prunes_unknown_fields_and_checks_types() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {"size": {"type": "integer", "minimum": 1}, "mode": {"type": "string", "enum": ["a", "b"]}}}}});
        let mut v = json!({"spec": {"size": 0, "mode": "c", "extra": true}, "junk": 1});
        let mut causes = Vec::new();
        prune_and_validate(&mut v, &schema, "", &mut causes);
        assert_eq!(v, json!({"spec": {"size": 0, "mode": "c"}}));
        let fields: Vec<&str> = causes.iter().map(|c| c.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.size", "spec.mode"]);
        let mut missing = json!({"spec": {}});
        let mut causes = Vec::new();
        prune_and_validate(&mut missing, &schema, "", &mut causes);
        assert_eq!(causes, vec![Cause::required("spec.size")]);
    }

    #[test]
    fn defaults_match_a_real_apiserver() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:1.25", "ports": [{"containerPort": 80}]}]}}}});
        apply_defaults(&rt("Deployment"), &mut d, || unreachable!());
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
    }

    #[test]
    fn base64_matches_known_vectors() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }
}
