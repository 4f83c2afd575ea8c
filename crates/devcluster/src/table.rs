//! `meta.k8s.io/v1` Table responses: the columns `kubectl get` prints, for built-in kinds and for
//! custom resources' `additionalPrinterColumns`.

use crate::resources::{PrinterColumn, ResourceType};
use serde_json::{Value, json};
use std::time::{Duration, SystemTime};

/// Formats an age the way kubectl and the apiserver do (`duration.HumanDuration`).
pub fn human_duration(d: Duration) -> String {
    let seconds = d.as_secs();
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let dy = (hours / 24) % 365;
        return if dy == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{dy}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn age_of(ts: &Value, now: SystemTime) -> String {
    match ts.as_str().and_then(|s| humantime::parse_rfc3339(s).ok()) {
        Some(t) => human_duration(now.duration_since(t).unwrap_or_default()),
        None => "<unknown>".into(),
    }
}

fn col(name: &str, ty: &str, priority: i64, description: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": ty, "format": format, "description": description, "priority": priority})
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn n(v: &Value) -> i64 {
    v.as_i64().unwrap_or(0)
}

fn or_none(v: String) -> String {
    if v.is_empty() { "<none>".into() } else { v }
}

fn containers_images(spec: &Value) -> (String, String) {
    let cs = spec["containers"].as_array().cloned().unwrap_or_default();
    let names: Vec<String> = cs.iter().map(|c| s(&c["name"])).collect();
    let images: Vec<String> = cs.iter().map(|c| s(&c["image"])).collect();
    (names.join(","), images.join(","))
}

fn selector_text(sel: &Value) -> String {
    crate::selector::LabelSelector::from_object(sel)
        .map(|s| s.to_query())
        .unwrap_or_default()
}

fn map_selector_text(sel: &Value) -> String {
    sel.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", s(v)))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

fn pod_status(o: &Value) -> (String, String, i64) {
    let statuses = o["status"]["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let total = o["spec"]["containers"].as_array().map_or(0, Vec::len);
    let ready = statuses
        .iter()
        .filter(|c| c["ready"].as_bool() == Some(true))
        .count();
    let restarts: i64 = statuses.iter().map(|c| n(&c["restartCount"])).sum();
    let mut reason = s(&o["status"]["phase"]);
    if let Some(r) = o["status"]["reason"].as_str() {
        reason = r.to_string();
    }
    for c in &statuses {
        if let Some(w) = c["state"]["waiting"]["reason"].as_str() {
            reason = w.to_string();
        } else if let Some(t) = c["state"]["terminated"]["reason"].as_str() {
            reason = t.to_string();
        }
    }
    if o["metadata"]["deletionTimestamp"].is_string() {
        reason = "Terminating".into();
    }
    (format!("{ready}/{total}"), or_none(reason), restarts)
}

fn service_ports(spec: &Value) -> String {
    let ports: Vec<String> = spec["ports"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|p| {
            let proto = p["protocol"].as_str().unwrap_or("TCP");
            match p.get("nodePort").and_then(Value::as_i64) {
                Some(np) => format!("{}:{np}/{proto}", n(&p["port"])),
                None => format!("{}/{proto}", n(&p["port"])),
            }
        })
        .collect();
    or_none(ports.join(","))
}

/// Column definitions and a row function for a built-in kind.
fn builtin_columns(kind: &str) -> Vec<Value> {
    let name = col(
        "Name",
        "string",
        0,
        "Name must be unique within a namespace.",
    );
    let age = col(
        "Age",
        "string",
        0,
        "CreationTimestamp is a timestamp representing the server time when this object was created.",
    );
    match kind {
        "Namespace" => vec![
            name,
            col("Status", "string", 0, "The status of the namespace"),
            age,
        ],
        "ConfigMap" => vec![
            name,
            col("Data", "string", 0, "Data contains the configuration data."),
            age,
        ],
        "Secret" => vec![
            name,
            col(
                "Type",
                "string",
                0,
                "Used to facilitate programmatic handling of secret data.",
            ),
            col("Data", "string", 0, "Data contains the secret data."),
            age,
        ],
        "Service" => vec![
            name,
            col("Type", "string", 0, "The type of the service."),
            col("Cluster-IP", "string", 0, "The IP address of the service."),
            col(
                "External-IP",
                "string",
                0,
                "The external IP address of the service.",
            ),
            col("Port(s)", "string", 0, "The ports of the service."),
            age,
            col(
                "Selector",
                "string",
                1,
                "Route service traffic to pods with label keys and values matching this selector.",
            ),
        ],
        "ServiceAccount" => vec![
            name,
            col(
                "Secrets",
                "string",
                0,
                "Secrets is a list of the secrets in the same namespace that pods running using this ServiceAccount are allowed to use.",
            ),
            age,
        ],
        "Pod" => vec![
            name,
            col(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            col(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            col(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted.",
            ),
            age,
            col("IP", "string", 1, "IP address allocated to the pod."),
            col(
                "Node",
                "string",
                1,
                "Name of the node the pod is scheduled on.",
            ),
            col(
                "Nominated Node",
                "string",
                1,
                "nominatedNodeName is set only when this pod preempts other pods on the node.",
            ),
            col(
                "Readiness Gates",
                "string",
                1,
                "If specified, all readiness gates will be evaluated for pod readiness.",
            ),
        ],
        "Node" => vec![
            name,
            col("Status", "string", 0, "The status of the node"),
            col("Roles", "string", 0, "The roles of the node"),
            age,
            col(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
        ],
        "Event" => vec![
            col(
                "Last Seen",
                "string",
                0,
                "Time when last this event was observed.",
            ),
            col(
                "Type",
                "string",
                0,
                "Type of this event (Normal, Warning), new types could be added in the future.",
            ),
            col(
                "Reason",
                "string",
                0,
                "This should be a short, machine understandable string that gives the reason for this event being generated.",
            ),
            col(
                "Object",
                "string",
                0,
                "The object that this event is about.",
            ),
            col(
                "Message",
                "string",
                0,
                "A human-readable description of the status of this operation.",
            ),
        ],
        "Deployment" => vec![
            name,
            col("Ready", "string", 0, "Number of the pod with ready state"),
            col(
                "Up-to-date",
                "string",
                0,
                "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
            ),
            col(
                "Available",
                "string",
                0,
                "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
            ),
            age,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col(
                "Selector",
                "string",
                1,
                "Label selector for pods. Existing ReplicaSets whose pods are selected by this will be the ones affected by this deployment.",
            ),
        ],
        "ReplicaSet" => vec![
            name,
            col(
                "Desired",
                "integer",
                0,
                "Replicas is the number of desired replicas.",
            ),
            col(
                "Current",
                "integer",
                0,
                "Replicas is the most recently observed number of replicas.",
            ),
            col(
                "Ready",
                "integer",
                0,
                "The number of ready replicas for this replica set.",
            ),
            age,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col(
                "Selector",
                "string",
                1,
                "Selector is a label query over pods that should match the replica count.",
            ),
        ],
        "StatefulSet" => vec![
            name,
            col("Ready", "string", 0, "Number of the pod with ready state"),
            age,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
        ],
        "DaemonSet" => vec![
            name,
            col(
                "Desired",
                "integer",
                0,
                "The total number of nodes that should be running the daemon pod.",
            ),
            col(
                "Current",
                "integer",
                0,
                "The number of nodes that are running at least 1 daemon pod and are supposed to run the daemon pod.",
            ),
            col(
                "Ready",
                "integer",
                0,
                "numberReady is the number of nodes that should be running the daemon pod and have one or more of the daemon pod running and ready.",
            ),
            col(
                "Up-to-date",
                "integer",
                0,
                "The total number of nodes that are running updated daemon pod",
            ),
            col(
                "Available",
                "integer",
                0,
                "The number of nodes that should be running the daemon pod and have one or more of the daemon pod running and available (ready for at least spec.minReadySeconds)",
            ),
            col(
                "Node Selector",
                "string",
                0,
                "NodeSelector is a selector which must be true for the pod to fit on a node.",
            ),
            age,
        ],
        "ControllerRevision" => vec![
            name,
            col("Controller", "string", 0, "Controller of the object"),
            col(
                "Revision",
                "integer",
                0,
                "Revision indicates the revision of the state represented by Data.",
            ),
            age,
        ],
        "Ingress" => vec![
            name,
            col(
                "Class",
                "string",
                0,
                "The name of the IngressClass resource that should be used.",
            ),
            col(
                "Hosts",
                "string",
                0,
                "Hosts that incoming requests are matched against before the ingress rule",
            ),
            col(
                "Address",
                "string",
                0,
                "Address is a list containing ingress points for the load-balancer",
            ),
            col(
                "Ports",
                "string",
                0,
                "Ports of TLS configurations that open",
            ),
            age,
        ],
        "Lease" => vec![
            name,
            col(
                "Holder",
                "string",
                0,
                "HolderIdentity contains the identity of the holder of a current lease.",
            ),
            age,
        ],
        "CustomResourceDefinition" => vec![
            name,
            col(
                "Created At",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ],
        "Job" => vec![
            name,
            col("Status", "string", 0, "Status of the job."),
            col(
                "Completions",
                "string",
                0,
                "The number of pods which reached phase Succeeded.",
            ),
            col(
                "Duration",
                "string",
                0,
                "Time required to complete the job.",
            ),
            age,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col(
                "Selector",
                "string",
                1,
                "Selector used to find pods managed by this job.",
            ),
        ],
        "CronJob" => vec![
            name,
            col("Schedule", "string", 0, "The schedule in Cron format."),
            col(
                "Timezone",
                "string",
                0,
                "The time zone name for the given schedule.",
            ),
            col(
                "Suspend",
                "boolean",
                0,
                "This flag tells the controller to suspend subsequent executions.",
            ),
            col(
                "Active",
                "integer",
                0,
                "A list of pointers to currently running jobs.",
            ),
            col(
                "Last Schedule",
                "string",
                0,
                "Information when was the last time the job was successfully scheduled.",
            ),
            age,
            col(
                "Containers",
                "string",
                1,
                "Names of each container in the template.",
            ),
            col(
                "Images",
                "string",
                1,
                "Images referenced by each container in the template.",
            ),
            col(
                "Selector",
                "string",
                1,
                "Selector used to find pods managed by this job.",
            ),
        ],
        "Role" | "ClusterRole" => vec![
            name,
            col(
                "Created At",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ],
        "RoleBinding" | "ClusterRoleBinding" => vec![
            name,
            col(
                "Role",
                "string",
                0,
                "Role references the role this binding refers to.",
            ),
            age,
            col("Users", "string", 1, "Users in the binding"),
            col("Groups", "string", 1, "Groups in the binding"),
            col(
                "ServiceAccounts",
                "string",
                1,
                "ServiceAccounts in the binding",
            ),
        ],
        _ => vec![name, age],
    }
}

/// The users, groups and service accounts (`ns/name`) a binding names.
fn subjects_text(o: &Value) -> (String, String, String) {
    let (mut users, mut groups, mut sas) = (Vec::new(), Vec::new(), Vec::new());
    for sub in o["subjects"].as_array().into_iter().flatten() {
        match sub["kind"].as_str() {
            Some("User") => users.push(s(&sub["name"])),
            Some("Group") => groups.push(s(&sub["name"])),
            Some("ServiceAccount") => {
                sas.push(format!("{}/{}", s(&sub["namespace"]), s(&sub["name"])))
            }
            _ => {}
        }
    }
    (users.join(", "), groups.join(", "), sas.join(", "))
}

fn job_duration(st: &Value, now: SystemTime) -> String {
    let start = st["startTime"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok());
    let end = st["completionTime"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok());
    match (start, end) {
        (None, _) => String::new(),
        (Some(a), None) => human_duration(now.duration_since(a).unwrap_or_default()),
        (Some(a), Some(b)) => human_duration(b.duration_since(a).unwrap_or_default()),
    }
}

fn has_condition(st: &Value, ty: &str) -> bool {
    st["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == ty && c["status"] == "True")
}

fn builtin_cells(kind: &str, o: &Value, now: SystemTime) -> Vec<Value> {
    let name = json!(s(&o["metadata"]["name"]));
    let age = json!(age_of(&o["metadata"]["creationTimestamp"], now));
    let spec = &o["spec"];
    let st = &o["status"];
    match kind {
        "Namespace" => vec![name, json!(s(&st["phase"])), age],
        "ConfigMap" => {
            let count = o["data"].as_object().map_or(0, |m| m.len())
                + o["binaryData"].as_object().map_or(0, |m| m.len());
            vec![name, json!(count), age]
        }
        "Secret" => vec![
            name,
            json!(s(&o["type"])),
            json!(o["data"].as_object().map_or(0, |m| m.len())),
            age,
        ],
        "Service" => {
            let external = st["loadBalancer"]["ingress"]
                .as_array()
                .map(|a| a.iter().map(|i| s(&i["ip"])).collect::<Vec<_>>().join(","))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(|| {
                    if spec["type"] == "LoadBalancer" {
                        "<pending>".into()
                    } else {
                        "<none>".into()
                    }
                });
            vec![
                name,
                json!(s(&spec["type"])),
                json!(or_none(s(&spec["clusterIP"]))),
                json!(external),
                json!(service_ports(spec)),
                age,
                json!(or_none(map_selector_text(&spec["selector"]))),
            ]
        }
        "ServiceAccount" => vec![
            name,
            json!(o["secrets"].as_array().map_or(0, Vec::len)),
            age,
        ],
        "Pod" => {
            let (ready, status, restarts) = pod_status(o);
            vec![
                name,
                json!(ready),
                json!(status),
                json!(restarts),
                age,
                json!(or_none(s(&st["podIP"]))),
                json!(or_none(s(&spec["nodeName"]))),
                json!(or_none(s(&st["nominatedNodeName"]))),
                json!(readiness_gates(o)),
            ]
        }
        "Node" => {
            let ready = st["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["type"] == "Ready")
                .map(|c| c["status"] == "True")
                .unwrap_or(false);
            vec![
                name,
                json!(if ready { "Ready" } else { "NotReady" }),
                json!("<none>"),
                age,
                json!(s(&st["nodeInfo"]["kubeletVersion"])),
            ]
        }
        "Event" => {
            let last = if o["lastTimestamp"].is_string() {
                &o["lastTimestamp"]
            } else if o["eventTime"].is_string() {
                &o["eventTime"]
            } else {
                &o["metadata"]["creationTimestamp"]
            };
            let involved = &o["involvedObject"];
            let object = format!(
                "{}/{}",
                s(&involved["kind"]).to_lowercase(),
                s(&involved["name"])
            );
            vec![
                json!(age_of(last, now)),
                json!(s(&o["type"])),
                json!(s(&o["reason"])),
                json!(object),
                json!(s(&o["message"])),
            ]
        }
        "Deployment" => {
            let (c, i) = containers_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(&st["readyReplicas"]),
                    n(&spec["replicas"])
                )),
                json!(n(&st["updatedReplicas"])),
                json!(n(&st["availableReplicas"])),
                age,
                json!(c),
                json!(i),
                json!(selector_text(&spec["selector"])),
            ]
        }
        "ReplicaSet" => {
            let (c, i) = containers_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(n(&spec["replicas"])),
                json!(n(&st["replicas"])),
                json!(n(&st["readyReplicas"])),
                age,
                json!(c),
                json!(i),
                json!(selector_text(&spec["selector"])),
            ]
        }
        "StatefulSet" => {
            let (c, i) = containers_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    n(&st["readyReplicas"]),
                    n(&spec["replicas"])
                )),
                age,
                json!(c),
                json!(i),
            ]
        }
        "DaemonSet" => vec![
            name,
            json!(n(&st["desiredNumberScheduled"])),
            json!(n(&st["currentNumberScheduled"])),
            json!(n(&st["numberReady"])),
            json!(n(&st["updatedNumberScheduled"])),
            json!(n(&st["numberAvailable"])),
            json!(or_none(map_selector_text(
                &spec["template"]["spec"]["nodeSelector"]
            ))),
            age,
        ],
        "ControllerRevision" => {
            let controller = o["metadata"]["ownerReferences"]
                .as_array()
                .and_then(|a| a.iter().find(|r| r["controller"].as_bool() == Some(true)))
                .map(|r| {
                    let api = s(&r["apiVersion"]);
                    let group = api.split_once('/').map(|(g, _)| g).unwrap_or("");
                    let kind = s(&r["kind"]).to_lowercase();
                    if group.is_empty() {
                        format!("{kind}/{}", s(&r["name"]))
                    } else {
                        format!("{kind}.{group}/{}", s(&r["name"]))
                    }
                })
                .unwrap_or_else(|| "<none>".into());
            vec![name, json!(controller), json!(n(&o["revision"])), age]
        }
        "Ingress" => {
            let hosts: Vec<String> = spec["rules"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["host"].as_str().map(str::to_string))
                .collect();
            let address: Vec<String> = st["loadBalancer"]["ingress"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|i| s(&i["ip"]))
                .collect();
            let ports = if spec["tls"].as_array().is_some_and(|t| !t.is_empty()) {
                "80, 443"
            } else {
                "80"
            };
            vec![
                name,
                json!(or_none(s(&spec["ingressClassName"]))),
                json!(if hosts.is_empty() {
                    "*".to_string()
                } else {
                    hosts.join(",")
                }),
                json!(address.join(",")),
                json!(ports),
                age,
            ]
        }
        "Lease" => vec![name, json!(s(&spec["holderIdentity"])), age],
        "CustomResourceDefinition" | "Role" | "ClusterRole" => {
            vec![name, json!(s(&o["metadata"]["creationTimestamp"]))]
        }
        "Job" => {
            let status = if has_condition(st, "Complete") {
                "Complete"
            } else if has_condition(st, "Failed") {
                "Failed"
            } else if o["metadata"]["deletionTimestamp"].is_string() {
                "Terminating"
            } else if has_condition(st, "Suspended") {
                "Suspended"
            } else if has_condition(st, "FailureTarget") {
                "FailureTarget"
            } else if has_condition(st, "SuccessCriteriaMet") {
                "SuccessCriteriaMet"
            } else {
                "Running"
            };
            let succeeded = n(&st["succeeded"]);
            let completions = match spec["completions"].as_i64() {
                Some(c) => format!("{succeeded}/{c}"),
                None if n(&spec["parallelism"]) > 1 => {
                    format!("{succeeded}/1 of {}", n(&spec["parallelism"]))
                }
                None => format!("{succeeded}/1"),
            };
            let (c, i) = containers_images(&spec["template"]["spec"]);
            vec![
                name,
                json!(status),
                json!(completions),
                json!(job_duration(st, now)),
                age,
                json!(c),
                json!(i),
                json!(selector_text(&spec["selector"])),
            ]
        }
        "CronJob" => {
            let last = match st["lastScheduleTime"] {
                Value::String(_) => age_of(&st["lastScheduleTime"], now),
                _ => "<none>".to_string(),
            };
            let suspend = match spec["suspend"].as_bool() {
                Some(true) => "True",
                Some(false) => "False",
                None => "<unset>",
            };
            let job_spec = &spec["jobTemplate"]["spec"];
            let (c, i) = containers_images(&job_spec["template"]["spec"]);
            vec![
                name,
                json!(s(&spec["schedule"])),
                json!(or_none(s(&spec["timeZone"]))),
                json!(suspend),
                json!(st["active"].as_array().map_or(0, Vec::len)),
                json!(last),
                age,
                json!(c),
                json!(i),
                json!(or_none(selector_text(&job_spec["selector"]))),
            ]
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let (users, groups, sas) = subjects_text(o);
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    s(&o["roleRef"]["kind"]),
                    s(&o["roleRef"]["name"])
                )),
                age,
                json!(users),
                json!(groups),
                json!(sas),
            ]
        }
        _ => vec![name, age],
    }
}

/// Evaluates the subset of JSONPath that printer columns use: `.a.b`, `[N]`, `[*]`
/// and `[?(@.type=="Ready")]` filters. Several results are joined with commas.
pub fn json_path(obj: &Value, path: &str) -> Vec<Value> {
    let mut current = vec![obj.clone()];
    let p = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut rest = p.trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(r) = rest.strip_prefix('.') {
            let end = r.find(['.', '[']).unwrap_or(r.len());
            let key = &r[..end];
            current = current
                .into_iter()
                .filter_map(|v| v.get(key).cloned())
                .collect();
            rest = &r[end..];
        } else if let Some(r) = rest.strip_prefix('[') {
            let Some(end) = r.find(']') else {
                return vec![];
            };
            let inner = &r[..end];
            rest = &r[end + 1..];
            if inner == "*" {
                current = current
                    .into_iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .collect();
            } else if let Ok(i) = inner.parse::<usize>() {
                current = current
                    .into_iter()
                    .filter_map(|v| v.get(i).cloned())
                    .collect();
            } else if let Some(f) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let Some((field, want)) = f.split_once("==") else {
                    return vec![];
                };
                let want = want.trim().trim_matches(|c| c == '"' || c == '\'');
                let field = field.trim();
                current = current
                    .into_iter()
                    .flat_map(|v| v.as_array().cloned().unwrap_or_default())
                    .filter(|item| {
                        let got = json_path(item, &format!(".{field}"));
                        got.first().is_some_and(|g| s(g) == want)
                    })
                    .collect();
            } else {
                return vec![];
            }
        } else {
            return vec![];
        }
    }
    current
}

fn crd_cells(columns: &[PrinterColumn], o: &Value, now: SystemTime) -> Vec<Value> {
    let mut cells = vec![json!(s(&o["metadata"]["name"]))];
    if columns.is_empty() {
        cells.push(json!(age_of(&o["metadata"]["creationTimestamp"], now)));
        return cells;
    }
    for c in columns {
        let found = json_path(o, &c.json_path);
        let cell = match found.as_slice() {
            [] => Value::Null,
            [one] if c.type_ == "date" => json!(age_of(one, now)),
            [one] => match (c.type_.as_str(), one) {
                ("integer", Value::Number(_)) | ("number", Value::Number(_)) => one.clone(),
                ("boolean", Value::Bool(_)) => one.clone(),
                (_, Value::String(_)) => one.clone(),
                (_, other) => json!(other.to_string()),
            },
            many => json!(many.iter().map(s).collect::<Vec<_>>().join(",")),
        };
        cells.push(cell);
    }
    cells
}

/// The column definitions for a type.
pub fn columns(rt: &ResourceType) -> Vec<Value> {
    match &rt.crd {
        Some(crd) if !crd.columns.is_empty() => {
            let mut cols = vec![col(
                "Name",
                "string",
                0,
                "Name must be unique within a namespace. Is required when creating resources, although some resources may allow a client to request the generation of an appropriate name automatically. Name is primarily intended for creation idempotence and configuration definition. Cannot be updated. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
            )];
            for c in &crd.columns {
                let ty = if c.type_ == "date" {
                    "date"
                } else {
                    c.type_.as_str()
                };
                cols.push(json!({"name": c.name, "type": ty, "format": c.format, "description": c.description, "priority": c.priority}));
            }
            cols
        }
        Some(_) => vec![
            col(
                "Name",
                "string",
                0,
                "Name must be unique within a namespace.",
            ),
            col(
                "Age",
                "date",
                0,
                "CreationTimestamp is a timestamp representing the server time when this object was created.",
            ),
        ],
        None => builtin_columns(&rt.kind),
    }
}

/// The cells of one object's row.
pub fn cells(rt: &ResourceType, obj: &Value, now: SystemTime) -> Vec<Value> {
    match &rt.crd {
        Some(crd) => crd_cells(&crd.columns, obj, now),
        None => builtin_cells(&rt.kind, obj, now),
    }
}

/// One Table row, with the object's metadata as a PartialObjectMetadata (or the whole object).
pub fn row(rt: &ResourceType, obj: &Value, now: SystemTime, include_object: &str) -> Value {
    let object = match include_object {
        "None" => Value::Null,
        "Object" => obj.clone(),
        _ => json!({
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"],
        }),
    };
    json!({"cells": cells(rt, obj, now), "object": object})
}

/// A whole Table.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    resource_version: &str,
    continue_token: Option<&str>,
    now: SystemTime,
    include_object: &str,
) -> Value {
    let mut meta = json!({"resourceVersion": resource_version});
    if let Some(c) = continue_token {
        meta["continue"] = json!(c);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": meta,
        "columnDefinitions": columns(rt),
        "rows": objects.iter().map(|o| row(rt, o, now, include_object)).collect::<Vec<_>>(),
    })
}

/// The Readiness Gates cell: `<none>`, or how many of the pod's gates have a True condition.
fn readiness_gates(pod: &Value) -> String {
    let Some(gates) = pod["spec"]["readinessGates"]
        .as_array()
        .filter(|g| !g.is_empty())
    else {
        return "<none>".into();
    };
    let conditions = pod["status"]["conditions"].as_array();
    let met = gates
        .iter()
        .filter(|g| {
            conditions.is_some_and(|cs| {
                cs.iter()
                    .any(|c| c["type"] == g["conditionType"] && c["status"] == "True")
            })
        })
        .count();
    format!("{met}/{}", gates.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_duration_table() {
        let cases = [
            ("zero", 0, "0s"),
            ("under two minutes", 119, "119s"),
            ("two minutes", 120, "2m"),
            ("minutes and seconds", 185, "3m5s"),
            ("ten minutes", 600, "10m"),
            ("under three hours", 179 * 60, "179m"),
            ("hours and minutes", 3 * 3600 + 60, "3h1m"),
            ("hours", 10 * 3600, "10h"),
            ("days and hours", 50 * 3600, "2d2h"),
            ("days", 10 * 86400, "10d"),
            ("years and days", 3 * 365 * 86400 + 5 * 86400, "3y5d"),
        ];
        for (name, secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{name}");
        }
    }

    #[test]
    fn json_path_subset() {
        let o = json!({"status": {"conditions": [{"type": "A", "status": "False"}, {"type": "Ready", "status": "True"}]}, "spec": {"n": 3}});
        assert_eq!(json_path(&o, ".spec.n"), vec![json!(3)]);
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            vec![json!("True")]
        );
        assert_eq!(
            json_path(&o, ".status.conditions[0].type"),
            vec![json!("A")]
        );
        assert!(json_path(&o, ".missing.x").is_empty());
    }

    #[test]
    fn deployment_row_shows_ready_over_desired() {
        let rt = crate::resources::builtins()
            .into_iter()
            .find(|t| t.kind == "Deployment")
            .expect("deployment");
        let d = json!({"metadata": {"name": "web", "creationTimestamp": "2026-01-01T00:00:00Z"}, "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "nginx"}]}}}, "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}});
        let c = cells(
            &rt,
            &d,
            humantime::parse_rfc3339("2026-01-01T00:05:00Z").expect("time"),
        );
        assert_eq!(
            c[..5],
            [json!("web"), json!("2/3"), json!(3), json!(2), json!("5m")]
        );
    }
}
