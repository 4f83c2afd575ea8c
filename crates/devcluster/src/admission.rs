//! What a real apiserver does to an object before storing it: defaulting, validation (with the
//! field paths and messages kube-apiserver uses), immutability, and custom-resource pruning.

use crate::error::Cause;
use crate::resources::ResourceType;
use crate::selector::LabelSelector;
use rollgit_syntax::{
    is_dns1035_label, is_dns1123_label, is_dns1123_subdomain, is_label_value, is_qualified_name,
};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// `IsDNS1123Label`'s message.
const DNS1123_LABEL_MESSAGE: &str = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
/// `IsQualifiedName`'s message for the name part.
const QUALIFIED_NAME_MESSAGE: &str = "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')";
/// `IsValidLabelValue`'s message.
const LABEL_VALUE_MESSAGE: &str = "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')";

fn name_rule(kind: &str) -> (fn(&str) -> bool, &'static str) {
    match kind {
        "Namespace" => (is_dns1123_label, DNS1123_LABEL_MESSAGE),
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

/// The RBAC kinds' names: any path segment (`system:basic-user` is one).
fn path_segment_name(name: &str) -> Option<&'static str> {
    if name == "." || name == ".." {
        return Some(if name == "." {
            "may not be '.'"
        } else {
            "may not be '..'"
        });
    }
    if name.contains('/') {
        return Some("may not contain '/'");
    }
    if name.contains('%') {
        return Some("may not contain '%'");
    }
    None
}

/// Checks `metadata.name` against the rule of the kind.
pub fn validate_name(kind: &str, name: &str) -> Option<Cause> {
    if matches!(
        kind,
        "Role" | "ClusterRole" | "RoleBinding" | "ClusterRoleBinding"
    ) {
        if name.is_empty() {
            return Some(Cause::required("metadata.name"));
        }
        return path_segment_name(name).map(|m| Cause::invalid("metadata.name", &json!(name), m));
    }
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
                            QUALIFIED_NAME_MESSAGE,
                        ));
                    }
                    match v.as_str() {
                        Some(s) if is_label_value(s) => {}
                        Some(s) => causes.push(Cause::invalid(
                            "metadata.labels",
                            &json!(s),
                            LABEL_VALUE_MESSAGE,
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
                            QUALIFIED_NAME_MESSAGE,
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
                    causes.push(too_long("metadata.annotations", 256 * 1024));
                }
            }
            None if ann.is_null() => {}
            None => causes.push(Cause::type_invalid("metadata.annotations", ann, "object")),
        }
    }
}

/// The most a ConfigMap's or Secret's data may hold (`core.MaxSecretSize`, 1 MiB).
pub const MAX_DATA_SIZE: usize = 1024 * 1024;

fn too_long(field: &str, max: usize) -> Cause {
    Cause {
        reason: "FieldValueTooLong".into(),
        message: format!("Too long: may not be more than {max} bytes"),
        field: field.into(),
    }
}

/// The bytes a `data` map holds: string lengths, or decoded lengths of base64 values.
fn data_size(data: &Value, base64: bool) -> usize {
    data.as_object()
        .map(|m| {
            m.values()
                .filter_map(Value::as_str)
                .map(|s| {
                    if base64 {
                        crate::typed::go_base64_decoded_len(s).unwrap_or(s.len())
                    } else {
                        s.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
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

fn strings_of(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// `ValidatePolicyRule` over a Role's or ClusterRole's rules.
fn validate_rules(obj: &Value, namespaced: bool, causes: &mut Vec<Cause>) {
    for (i, rule) in obj["rules"].as_array().into_iter().flatten().enumerate() {
        let p = format!("rules[{i}]");
        if strings_of(&rule["verbs"]).is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: verbs must contain at least one value".into(),
                field: format!("{p}.verbs"),
            });
        }
        let urls = strings_of(&rule["nonResourceURLs"]);
        if !urls.is_empty() {
            let shown = json!(format!(
                "[]string{{{}}}",
                urls.iter()
                    .map(|u| crate::typed::go_quote(u))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            if namespaced {
                causes.push(Cause::invalid(
                    format!("{p}.nonResourceURLs"),
                    &shown,
                    "namespaced rules cannot apply to non-resource URLs",
                ));
            }
            if !strings_of(&rule["apiGroups"]).is_empty()
                || !strings_of(&rule["resources"]).is_empty()
                || !strings_of(&rule["resourceNames"]).is_empty()
            {
                causes.push(Cause::invalid(
                    format!("{p}.nonResourceURLs"),
                    &shown,
                    "rules cannot apply to both regular resources and non-resource URLs",
                ));
            }
            continue;
        }
        if strings_of(&rule["apiGroups"]).is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: resource rules must supply at least one api group".into(),
                field: format!("{p}.apiGroups"),
            });
        }
        if strings_of(&rule["resources"]).is_empty() {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: resource rules must supply at least one resource".into(),
                field: format!("{p}.resources"),
            });
        }
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`: the role reference and subjects.
fn validate_binding(obj: &Value, namespaced: bool, causes: &mut Vec<Cause>) {
    const RBAC: &str = "rbac.authorization.k8s.io";
    let role_ref = &obj["roleRef"];
    let group = role_ref["apiGroup"].as_str().unwrap_or_default();
    if group != RBAC {
        causes.push(Cause::not_supported(
            "roleRef.apiGroup",
            &json!(group),
            &[RBAC],
        ));
    }
    let kind = role_ref["kind"].as_str().unwrap_or_default();
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        causes.push(Cause::not_supported("roleRef.kind", &json!(kind), kinds));
    }
    match role_ref["name"].as_str().unwrap_or_default() {
        "" => causes.push(Cause::required("roleRef.name")),
        n => {
            if let Some(m) = path_segment_name(n) {
                causes.push(Cause::invalid("roleRef.name", &json!(n), m));
            }
        }
    }
    for (i, sub) in obj["subjects"].as_array().into_iter().flatten().enumerate() {
        let p = format!("subjects[{i}]");
        let name = sub["name"].as_str().unwrap_or_default();
        if name.is_empty() {
            causes.push(Cause::required(format!("{p}.name")));
        }
        let api_group = sub["apiGroup"].as_str().unwrap_or_default();
        match sub["kind"].as_str().unwrap_or_default() {
            "ServiceAccount" => {
                if !name.is_empty() && !is_dns1123_subdomain(name) {
                    causes.push(Cause::invalid(
                        format!("{p}.name"),
                        &json!(name),
                        name_rule("ServiceAccount").1,
                    ));
                }
                if !api_group.is_empty() {
                    causes.push(Cause::not_supported(
                        format!("{p}.apiGroup"),
                        &json!(api_group),
                        &[""],
                    ));
                }
                if !namespaced && sub["namespace"].as_str().is_none_or(str::is_empty) {
                    causes.push(Cause::required(format!("{p}.namespace")));
                }
            }
            "User" | "Group" => {
                if api_group != RBAC {
                    causes.push(Cause::not_supported(
                        format!("{p}.apiGroup"),
                        &json!(api_group),
                        &[RBAC],
                    ));
                }
            }
            other => causes.push(Cause::not_supported(
                format!("{p}.kind"),
                &json!(other),
                &["ServiceAccount", "User", "Group"],
            )),
        }
    }
}

fn non_negative(spec: &Value, key: &str, base: &str, causes: &mut Vec<Cause>) {
    if let Some(n) = spec.get(key).and_then(Value::as_i64)
        && n < 0
    {
        causes.push(Cause::invalid(
            format!("{base}.{key}"),
            &json!(n),
            "must be greater than or equal to 0",
        ));
    }
}

/// A Job's spec (also a CronJob's `jobTemplate.spec`), as `ValidateJobSpec` checks it.
fn validate_job_spec(spec: &Value, base: &str, causes: &mut Vec<Cause>) {
    for key in [
        "parallelism",
        "completions",
        "activeDeadlineSeconds",
        "backoffLimit",
        "ttlSecondsAfterFinished",
    ] {
        non_negative(spec, key, base, causes);
    }
    let manual = spec["manualSelector"].as_bool() == Some(true);
    match spec.get("selector").filter(|s| !s.is_null()) {
        None if manual => causes.push(Cause::required(format!("{base}.selector"))),
        None => {}
        Some(sel) => match LabelSelector::from_object(sel) {
            Ok(s) => {
                let labels = labels_of(&spec["template"]["metadata"]["labels"]);
                if !s.matches(&labels) {
                    let shown: Vec<String> =
                        labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                    causes.push(Cause::invalid(
                        format!("{base}.template.metadata.labels"),
                        &json!(format!("map[{}]", shown.join(" "))),
                        "`selector` does not match template `labels`",
                    ));
                }
            }
            Err(e) => causes.push(Cause::invalid(
                format!("{base}.selector"),
                sel,
                &e.to_string(),
            )),
        },
    }
    let pod_spec = &spec["template"]["spec"];
    validate_containers(pod_spec, &format!("{base}.template.spec"), causes);
    match pod_spec["restartPolicy"].as_str() {
        Some("OnFailure" | "Never") => {}
        other => causes.push(Cause::not_supported(
            format!("{base}.template.spec.restartPolicy"),
            &json!(other.unwrap_or_default()),
            &["OnFailure", "Never"],
        )),
    }
    if let Some(mode) = spec["completionMode"].as_str()
        && mode != "NonIndexed"
        && mode != "Indexed"
    {
        causes.push(Cause::not_supported(
            format!("{base}.completionMode"),
            &json!(mode),
            &["NonIndexed", "Indexed"],
        ));
    }
}

fn validate_cronjob(obj: &Value, causes: &mut Vec<Cause>) {
    let name = obj["metadata"]["name"].as_str().unwrap_or_default();
    if name.len() > 52 {
        causes.push(Cause::invalid(
            "metadata.name",
            &json!(name),
            "must be no more than 52 characters",
        ));
    }
    let spec = &obj["spec"];
    match spec["schedule"].as_str() {
        None | Some("") => causes.push(Cause::required("spec.schedule")),
        Some(s) if s.contains("TZ") => causes.push(Cause::invalid(
            "spec.schedule",
            &json!(s),
            "cannot use TZ or CRON_TZ in schedule, use timeZone field instead",
        )),
        Some(s) => {
            if let Err(e) = check_cron_schedule(s) {
                causes.push(Cause::invalid("spec.schedule", &json!(s), &e));
            }
        }
    }
    match spec["concurrencyPolicy"].as_str() {
        Some("Allow" | "Forbid" | "Replace") => {}
        other => causes.push(Cause::not_supported(
            "spec.concurrencyPolicy",
            &json!(other.unwrap_or_default()),
            &["Allow", "Forbid", "Replace"],
        )),
    }
    for key in [
        "startingDeadlineSeconds",
        "successfulJobsHistoryLimit",
        "failedJobsHistoryLimit",
    ] {
        non_negative(spec, key, "spec", causes);
    }
    validate_job_spec(
        &spec["jobTemplate"]["spec"],
        "spec.jobTemplate.spec",
        causes,
    );
}

/// Checks a schedule as `cron.ParseStandard` (robfig/cron v3) parses it, with its errors.
pub fn check_cron_schedule(schedule: &str) -> Result<(), String> {
    let s = schedule.trim();
    if let Some(d) = s.strip_prefix('@') {
        return match d {
            "yearly" | "annually" | "monthly" | "weekly" | "daily" | "midnight" | "hourly" => {
                Ok(())
            }
            _ => match d.strip_prefix("every ") {
                Some(dur) if rollgit_syntax::parse_go_duration(dur.trim()).is_some() => Ok(()),
                Some(dur) => Err(format!(
                    "failed to parse duration {s}: time: invalid duration {}",
                    crate::typed::go_quote(dur.trim())
                )),
                None => Err(format!("unrecognized descriptor: {s}")),
            },
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(format!(
            "expected exactly 5 fields, found {}: [{}]",
            fields.len(),
            fields.join(" ")
        ));
    }
    const MONTHS: [&str; 12] = [
        "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
    ];
    const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
    let bounds: [(u32, u32, &[&str]); 5] = [
        (0, 59, &[]),
        (0, 23, &[]),
        (1, 31, &[]),
        (1, 12, &MONTHS),
        (0, 6, &DAYS),
    ];
    for (field, (min, max, names)) in fields.iter().zip(bounds) {
        for expr in field.split(',') {
            check_cron_range(expr, min, max, names)?;
        }
    }
    Ok(())
}

fn check_cron_range(expr: &str, min: u32, max: u32, names: &[&str]) -> Result<(), String> {
    let number = |s: &str| -> Result<u32, String> {
        if let Some(i) = names.iter().position(|n| n.eq_ignore_ascii_case(s)) {
            let first = if min == 1 { 1 } else { 0 };
            return Ok(first + i as u32);
        }
        match s.parse::<i64>() {
            Ok(n) if n < 0 => Err(format!("negative number ({n}) not allowed: {s}")),
            Ok(n) => u32::try_from(n).map_err(|_| format!("failed to parse int from {s}")),
            Err(_) => Err(format!(
                "failed to parse int from {s}: strconv.Atoi: parsing {}: invalid syntax",
                crate::typed::go_quote(s)
            )),
        }
    };
    let parts: Vec<&str> = expr.split('/').collect();
    if parts.len() > 2 {
        return Err(format!("too many slashes: {expr}"));
    }
    let range: Vec<&str> = parts[0].split('-').collect();
    let (start, end) = match range.as_slice() {
        ["*" | "?"] => (min, max),
        [one] => {
            let n = number(one)?;
            (n, if parts.len() == 2 { max } else { n })
        }
        [a, b] => (number(a)?, number(b)?),
        _ => return Err(format!("too many hyphens: {expr}")),
    };
    if let Some(step) = parts.get(1) {
        match number(step) {
            Ok(0) => return Err(format!("step of range should be a positive number: {expr}")),
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    if start < min {
        return Err(format!(
            "beginning of range ({start}) below minimum ({min}): {expr}"
        ));
    }
    if end > max {
        return Err(format!(
            "end of range ({end}) above maximum ({max}): {expr}"
        ));
    }
    if start > end {
        return Err(format!(
            "beginning of range ({start}) beyond end of range ({end}): {expr}"
        ));
    }
    Ok(())
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
    let mut names = std::collections::HashSet::new();
    let mut pairs = std::collections::HashSet::new();
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
        let at = format!("spec.ports[{i}]");
        match p
            .get("name")
            .and_then(Value::as_str)
            .filter(|n| !n.is_empty())
        {
            None if ports.len() > 1 => causes.push(Cause::required(format!("{at}.name"))),
            None => {}
            Some(n) if !is_dns1123_label(n) => causes.push(Cause::invalid(
                format!("{at}.name"),
                &json!(n),
                DNS1123_LABEL_MESSAGE,
            )),
            Some(n) if !names.insert(n) => causes.push(Cause::duplicate(
                format!("{at}.name"),
                &crate::typed::go_quote(n),
            )),
            Some(_) => {}
        }
        let protocol = p["protocol"].as_str().unwrap_or("TCP");
        if !["SCTP", "TCP", "UDP"].contains(&protocol) {
            causes.push(Cause::not_supported(
                format!("{at}.protocol"),
                &json!(protocol),
                &["SCTP", "TCP", "UDP"],
            ));
        }
        match &p["targetPort"] {
            Value::String(name) => {
                for m in port_name_messages(name) {
                    causes.push(Cause::invalid(format!("{at}.targetPort"), &json!(name), m));
                }
            }
            Value::Number(n) if !n.as_i64().is_some_and(|n| (1..=65535).contains(&n)) => causes
                .push(Cause::invalid(
                    format!("{at}.targetPort"),
                    &json!(n),
                    "must be between 1 and 65535, inclusive",
                )),
            _ => {}
        }
        if ty == "ClusterIP" && p.get("nodePort").and_then(Value::as_i64).unwrap_or(0) != 0 {
            causes.push(Cause::forbidden(
                format!("{at}.nodePort"),
                "may not be used when `type` is 'ClusterIP'",
            ));
        }
        if let Some(port) = p.get("port").and_then(Value::as_i64)
            && !pairs.insert((protocol, port))
        {
            // kube-apiserver prints the Go value of the (protocol, port) key.
            causes.push(Cause::duplicate(
                at,
                &format!(
                    "core.ServicePort{{Name:\"\", Protocol:\"{protocol}\", AppProtocol:(*string)(nil), Port:{port}, TargetPort:intstr.IntOrString{{Type:0, IntVal:0, StrVal:\"\"}}, NodePort:0}}"
                ),
            ));
        }
    }
    if let Some(selector) = spec.get("selector").and_then(Value::as_object) {
        for (k, v) in selector {
            if !is_qualified_name(k) {
                causes.push(Cause::invalid(
                    "spec.selector",
                    &json!(k),
                    QUALIFIED_NAME_MESSAGE,
                ));
            }
            if let Some(v) = v.as_str().filter(|v| !is_label_value(v)) {
                causes.push(Cause::invalid(
                    "spec.selector",
                    &json!(v),
                    LABEL_VALUE_MESSAGE,
                ));
            }
        }
    }
}

/// `IsValidPortName`'s messages for an IANA service name (`targetPort`, a container port's
/// name).
fn port_name_messages(name: &str) -> Vec<&'static str> {
    let mut out = Vec::new();
    if name.len() > 15 {
        out.push("must be no more than 15 characters");
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        || name.is_empty()
    {
        out.push("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)");
    }
    if !name.bytes().any(|b| b.is_ascii_lowercase()) {
        out.push("must contain at least one letter (a-z)");
    }
    if name.contains("--") {
        out.push("must not contain consecutive hyphens");
    }
    if name.starts_with('-') || name.ends_with('-') {
        out.push("must not begin or end with a hyphen");
    }
    out
}

/// kube-apiserver's `ValidateIngressSpec`: a default backend or rules, and each HTTP path with
/// a supported `pathType` and, for `Exact` and `Prefix` (and a non-empty
/// `ImplementationSpecific`), an absolute path.
fn validate_ingress(obj: &Value, causes: &mut Vec<Cause>) {
    let spec = &obj["spec"];
    let rules = spec["rules"].as_array().cloned().unwrap_or_default();
    if rules.is_empty() && spec["defaultBackend"].is_null() {
        causes.push(Cause::invalid(
            "spec",
            &json!(rules),
            "either `defaultBackend` or `rules` must be specified",
        ));
    }
    for (i, rule) in rules.iter().enumerate() {
        if rule["http"].is_null() {
            continue;
        }
        let base = format!("spec.rules[{i}].http.paths");
        let paths = rule["http"]["paths"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if paths.is_empty() {
            causes.push(Cause::required(base.clone()));
        }
        for (j, p) in paths.iter().enumerate() {
            let at = format!("{base}[{j}]");
            let path = p["path"].as_str().unwrap_or_default();
            match p["pathType"].as_str() {
                None => causes.push(Cause {
                    reason: "FieldValueRequired".into(),
                    message: "Required value: pathType must be specified".into(),
                    field: format!("{at}.pathType"),
                }),
                Some("Exact" | "Prefix") if !path.starts_with('/') => causes.push(Cause::invalid(
                    format!("{at}.path"),
                    &json!(path),
                    "must be an absolute path",
                )),
                Some("ImplementationSpecific") if !path.is_empty() && !path.starts_with('/') => {
                    causes.push(Cause::invalid(
                        format!("{at}.path"),
                        &json!(path),
                        "must be an absolute path",
                    ))
                }
                Some("Exact" | "Prefix" | "ImplementationSpecific") => {}
                Some(other) => causes.push(Cause::not_supported(
                    format!("{at}.pathType"),
                    &json!(other),
                    &["Exact", "ImplementationSpecific", "Prefix"],
                )),
            }
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

fn validate_crd(obj: &Value, old: Option<&Value>, causes: &mut Vec<Cause>) {
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
    // On update, checks a stored CRD already failed are not required of it (ratcheting).
    let old_schemas: Vec<&Value> = old
        .and_then(|o| o["spec"]["versions"].as_array())
        .into_iter()
        .flatten()
        .map(|v| &v["schema"]["openAPIV3Schema"])
        .filter(|s| s.is_object())
        .collect();
    let require_structural = old_schemas.iter().all(|s| crate::schema::is_structural(s));
    let require_valid_types = old_schemas
        .iter()
        .all(|s| crate::schema::has_valid_types(s));
    for (i, v) in versions.iter().enumerate() {
        if v["name"].as_str().is_none_or(str::is_empty) {
            causes.push(Cause::required(format!("spec.versions[{i}].name")));
        }
        let schema = &v["schema"]["openAPIV3Schema"];
        if schema.is_null() {
            causes.push(Cause {
                reason: "FieldValueRequired".into(),
                message: "Required value: schemas are required".into(),
                field: format!("spec.versions[{i}].schema.openAPIV3Schema"),
            });
        } else {
            let checks = crate::schema::SchemaChecks {
                require_structural,
                require_valid_types,
                status_subresource: v["subresources"]["status"].is_object(),
            };
            causes.extend(crate::schema::validate_crd_schema(
                schema,
                &format!("spec.versions[{i}].schema"),
                checks,
            ));
        }
    }
}

/// Validates an object of a type (`old`: the stored object an update replaces), returning the
/// causes of a 422.
pub fn validate(rt: &ResourceType, obj: &mut Value, old: Option<&Value>) -> Vec<Cause> {
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
            causes.extend(crate::schema::validate(obj, schema));
        }
        return causes;
    }
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet") => {
            validate_workload(obj, &rt.kind, &mut causes)
        }
        ("", "Pod") => validate_containers(&obj["spec"], "spec", &mut causes),
        ("batch", "Job") => validate_job_spec(&obj["spec"], "spec", &mut causes),
        ("rbac.authorization.k8s.io", "Role") => validate_rules(obj, true, &mut causes),
        ("rbac.authorization.k8s.io", "ClusterRole") => validate_rules(obj, false, &mut causes),
        ("rbac.authorization.k8s.io", "RoleBinding") => validate_binding(obj, true, &mut causes),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            validate_binding(obj, false, &mut causes)
        }
        ("batch", "CronJob") => validate_cronjob(obj, &mut causes),
        ("", "Service") => validate_service(obj, &mut causes),
        ("networking.k8s.io", "Ingress") => validate_ingress(obj, &mut causes),
        ("", "ConfigMap") => {
            validate_data_keys(obj, "data", &mut causes);
            validate_data_keys(obj, "binaryData", &mut causes);
            let size = data_size(&obj["data"], false) + data_size(&obj["binaryData"], true);
            if size > MAX_DATA_SIZE {
                causes.push(too_long("[]", MAX_DATA_SIZE));
            }
        }
        ("", "Secret") => {
            validate_data_keys(obj, "data", &mut causes);
            validate_data_keys(obj, "stringData", &mut causes);
            if data_size(&obj["data"], true) > MAX_DATA_SIZE {
                causes.push(too_long("data", MAX_DATA_SIZE));
            }
        }
        ("apps", "ControllerRevision") if !obj["revision"].is_i64() => {
            causes.push(Cause::required("revision"));
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => validate_crd(obj, old, &mut causes),
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
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding")
            if old["roleRef"] != new["roleRef"] =>
        {
            causes.push(Cause::invalid(
                "roleRef",
                &json!(new["roleRef"].to_string()),
                "cannot change roleRef",
            ));
        }
        ("batch", "Job") => {
            check(&["spec", "selector"], "spec.selector", &mut causes);
            check(&["spec", "template"], "spec.template", &mut causes);
            check(
                &["spec", "completionMode"],
                "spec.completionMode",
                &mut causes,
            );
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

/// `SetDefaults_Job`, and the pod template's defaults.
fn default_job_spec(spec: &mut Value) {
    if !spec.is_object() {
        return;
    }
    if spec.get("completions").is_none_or(Value::is_null)
        && spec.get("parallelism").is_none_or(Value::is_null)
    {
        spec["completions"] = json!(1);
        spec["parallelism"] = json!(1);
    }
    set_default(spec, "parallelism", json!(1));
    set_default(spec, "backoffLimit", json!(6));
    set_default(spec, "completionMode", json!("NonIndexed"));
    set_default(spec, "suspend", json!(false));
    let replacement = if spec["podFailurePolicy"].is_object() {
        "Failed"
    } else {
        "TerminatingOrFailed"
    };
    set_default(spec, "podReplacementPolicy", json!(replacement));
    set_default(spec, "manualSelector", json!(false));
    default_pod_spec(&mut spec["template"]["spec"]);
}

/// The Job strategy's `generateSelector`: unless `manualSelector`, the Job selects its Pods by
/// its uid, and its template carries the labels (new and legacy names).
fn generate_job_selector(obj: &mut Value) {
    if obj["spec"]["manualSelector"].as_bool() == Some(true) {
        return;
    }
    let uid = obj["metadata"]["uid"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let name = obj["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if uid.is_empty() || obj["spec"]["selector"].is_object() {
        return;
    }
    let labels = &mut obj["spec"]["template"]["metadata"]["labels"];
    if !labels.is_object() {
        *labels = json!({});
    }
    for (k, v) in [
        ("batch.kubernetes.io/controller-uid", &uid),
        ("batch.kubernetes.io/job-name", &name),
        ("controller-uid", &uid),
        ("job-name", &name),
    ] {
        labels[k] = json!(v);
    }
    obj["spec"]["selector"] = json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}});
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
        ("batch", "Job") => {
            default_job_spec(&mut obj["spec"]);
            generate_job_selector(obj);
            let template_labels = obj["spec"]["template"]["metadata"]["labels"].clone();
            if template_labels.is_object()
                && obj["metadata"]["labels"]
                    .as_object()
                    .is_none_or(|l| l.is_empty())
            {
                obj["metadata"]["labels"] = template_labels;
            }
        }
        ("rbac.authorization.k8s.io", "RoleBinding" | "ClusterRoleBinding") => {
            if obj["roleRef"].is_object() {
                set_default(
                    &mut obj["roleRef"],
                    "apiGroup",
                    json!("rbac.authorization.k8s.io"),
                );
            }
            for sub in obj["subjects"].as_array_mut().into_iter().flatten() {
                let group = match sub["kind"].as_str() {
                    Some("ServiceAccount") => "",
                    Some("User" | "Group") => "rbac.authorization.k8s.io",
                    _ => continue,
                };
                if sub.get("apiGroup").is_none_or(Value::is_null) && !group.is_empty() {
                    sub["apiGroup"] = json!(group);
                }
            }
        }
        ("batch", "CronJob") => {
            let spec = &mut obj["spec"];
            set_default(spec, "concurrencyPolicy", json!("Allow"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "successfulJobsHistoryLimit", json!(3));
            set_default(spec, "failedJobsHistoryLimit", json!(1));
            if spec["jobTemplate"]["spec"].is_object() {
                default_pod_spec(&mut spec["jobTemplate"]["spec"]["template"]["spec"]);
            }
        }
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
                    // SetDefaults_Service: an absent, 0 or "" targetPort is the port.
                    if p["targetPort"] == json!(0) || p["targetPort"] == json!("") {
                        p["targetPort"] = Value::Null;
                    }
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
        let causes = validate(&rt("Deployment"), &mut d, None);
        assert_eq!(causes, vec![Cause::required("spec.selector")]);
    }

    #[test]
    fn selector_must_match_template_labels() {
        let mut d = json!({"metadata": {"name": "web"}, "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": {"metadata": {"labels": {"app": "db"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}});
        let causes = validate(&rt("Deployment"), &mut d, None);
        assert_eq!(causes.len(), 1);
        assert_eq!(causes[0].field, "spec.template.metadata.labels");
        assert!(
            causes[0]
                .message
                .contains("`selector` does not match template `labels`")
        );
    }

    /// Service validation as kube-apiserver's `ValidateService` (after defaulting), by the
    /// field and message each broken rule gives.
    #[test]
    fn service_rules_table() {
        let dup = "Duplicate value: core.ServicePort{Name:\"\", Protocol:\"TCP\", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:\"\"}, NodePort:0}";
        let bad_name = format!("Invalid value: \"HTTP\": {DNS1123_LABEL_MESSAGE}");
        let bad_selector = format!("Invalid value: \"a b\": {LABEL_VALUE_MESSAGE}");
        type Row<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>);
        let rows: Vec<Row<'_>> = vec![
            (
                "valid",
                json!({"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": 0}]}),
                vec![],
            ),
            (
                "named target port, two protocols on one port",
                json!({"ports": [{"name": "dns", "port": 53, "protocol": "UDP", "targetPort": "dns"},
                                 {"name": "dns-tcp", "port": 53, "targetPort": "dns-tcp"}]}),
                vec![],
            ),
            (
                "no ports",
                json!({}),
                vec![("spec.ports", "Required value")],
            ),
            (
                "second port unnamed",
                json!({"ports": [{"name": "a", "port": 80}, {"port": 81}]}),
                vec![("spec.ports[1].name", "Required value")],
            ),
            (
                "duplicate names",
                json!({"ports": [{"name": "a", "port": 80}, {"name": "a", "port": 81}]}),
                vec![("spec.ports[1].name", "Duplicate value: \"a\"")],
            ),
            (
                "duplicate port and protocol",
                json!({"ports": [{"name": "a", "port": 80}, {"name": "b", "port": 80, "protocol": "TCP"}]}),
                vec![("spec.ports[1]", dup)],
            ),
            (
                "unsupported protocol",
                json!({"ports": [{"port": 80, "protocol": "ICMP"}]}),
                vec![(
                    "spec.ports[0].protocol",
                    "Unsupported value: \"ICMP\": supported values: \"SCTP\", \"TCP\", \"UDP\"",
                )],
            ),
            (
                "target port out of range",
                json!({"ports": [{"port": 80, "targetPort": 70000}]}),
                vec![(
                    "spec.ports[0].targetPort",
                    "Invalid value: 70000: must be between 1 and 65535, inclusive",
                )],
            ),
            (
                "target port name of digits and over 15",
                json!({"ports": [{"port": 80, "targetPort": "1234567890123456"}]}),
                vec![
                    (
                        "spec.ports[0].targetPort",
                        "Invalid value: \"1234567890123456\": must be no more than 15 characters",
                    ),
                    (
                        "spec.ports[0].targetPort",
                        "Invalid value: \"1234567890123456\": must contain at least one letter (a-z)",
                    ),
                ],
            ),
            (
                "nodePort on a ClusterIP Service",
                json!({"ports": [{"port": 80, "nodePort": 30080}]}),
                vec![(
                    "spec.ports[0].nodePort",
                    "Forbidden: may not be used when `type` is 'ClusterIP'",
                )],
            ),
            (
                "port name not a label",
                json!({"ports": [{"name": "HTTP", "port": 80}]}),
                vec![("spec.ports[0].name", &bad_name)],
            ),
            (
                "selector value",
                json!({"selector": {"app": "a b"}, "ports": [{"port": 80}]}),
                vec![("spec.selector", &bad_selector)],
            ),
        ];
        for (case, spec, want) in rows {
            let mut svc = json!({"metadata": {"name": "web", "namespace": "ns"}, "spec": spec});
            apply_defaults(&rt("Service"), &mut svc, || "10.96.0.10".to_string());
            let got: Vec<(String, String)> = validate(&rt("Service"), &mut svc, None)
                .into_iter()
                .map(|c| (c.field, c.message))
                .collect();
            let want: Vec<(String, String)> = want
                .into_iter()
                .map(|(f, m)| (f.to_string(), m.to_string()))
                .collect();
            assert_eq!(got, want, "{case}");
        }
    }

    #[test]
    fn container_image_is_required() {
        let mut p = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c"}]}});
        let causes = validate(&rt("Pod"), &mut p, None);
        assert_eq!(causes, vec![Cause::required("spec.containers[0].image")]);
    }

    #[test]
    fn configmap_and_secret_data_over_1_mib_are_too_long() {
        let big = "x".repeat(MAX_DATA_SIZE + 1);
        let mut cm = json!({"metadata": {"name": "c"}, "data": {"k": big}});
        let causes = validate(&rt("ConfigMap"), &mut cm, None);
        assert_eq!(causes, vec![too_long("[]", MAX_DATA_SIZE)]);
        assert_eq!(
            causes[0].message,
            "Too long: may not be more than 1048576 bytes"
        );
        let mut at_limit =
            json!({"metadata": {"name": "c"}, "data": {"k": "x".repeat(MAX_DATA_SIZE)}});
        assert!(validate(&rt("ConfigMap"), &mut at_limit, None).is_empty());
        let encoded = base64_encode(&vec![0u8; MAX_DATA_SIZE + 1]);
        let mut secret = json!({"metadata": {"name": "s"}, "data": {"k": encoded}});
        assert_eq!(
            validate(&rt("Secret"), &mut secret, None),
            vec![too_long("data", MAX_DATA_SIZE)]
        );
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
