//! The simulated kubelet and scheduler: Nodes, Pod binding, readiness after a delay, container
//! statuses, in-place image updates, and injected faults (crash loops).

use super::client::ClientError;
use super::events::{self, Kind};
use super::util::{self, fnv32a, parse_time, set_condition};
use super::{FAIL_ANNOTATION, KUBELET, Outcome, READY_AFTER_ANNOTATION, Sim, gr, key, live_object};
use crate::store::ObjKey;
use rollgit_syntax::{Glob, parse_duration};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, SystemTime};
use tokio::time::Instant;

/// The longest crash-loop back-off, as the kubelet's.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// Whether `image` matches `pattern`: a glob (`*`, `?`) over the whole reference when the
/// pattern has wildcards, a substring otherwise.
pub fn image_matches(pattern: &str, image: &str) -> bool {
    if pattern.is_empty() {
        return false;
    }
    if !pattern.contains(['*', '?']) {
        return image.contains(pattern);
    }
    Glob::text(&star_and_question_only(pattern)).is_ok_and(|g| g.is_match(image))
}

/// `pattern` as a [`Glob::text`] pattern in which only `*` and `?` are wildcards: globset's
/// other special characters are escaped, and a run of `*` is one `*` (globset reads `/**/` as
/// "any number of path segments", which here is just "anything").
fn star_and_question_only(pattern: &str) -> String {
    let mut out = String::with_capacity(pattern.len() + 4);
    for c in pattern.chars() {
        match c {
            '*' if out.ends_with('*') => {}
            '\\' | '[' | ']' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

fn parse_pairs(v: &Value) -> Vec<(String, Duration)> {
    v.as_str()
        .unwrap_or_default()
        .split(['\n', ','])
        .filter_map(|l| {
            let (p, d) = l.trim().rsplit_once('=')?;
            Some((p.trim().to_string(), parse_duration(d).ok()?))
        })
        .collect()
}

/// Faults switched on at run time through the `devcluster-faults` ConfigMap.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// `fail-images`: patterns whose Pods crash-loop.
    pub fail_images: Vec<String>,
    /// `fail-after`: patterns whose Pods become Ready, then crash after the duration.
    pub fail_after: Vec<(String, Duration)>,
    /// `ready-delays`: readiness delay per pattern.
    pub ready_delays: Vec<(String, Duration)>,
}

impl Faults {
    /// Reads the ConfigMap's `data`.
    pub fn from_data(data: &Value) -> Self {
        Self {
            fail_images: data["fail-images"]
                .as_str()
                .unwrap_or_default()
                .split(['\n', ','])
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            fail_after: parse_pairs(&data["fail-after"]),
            ready_delays: parse_pairs(&data["ready-delays"]),
        }
    }
}

/// What is wrong with a Pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing.
    None,
    /// Never Ready: crash loop.
    Crash,
    /// Ready, then crash loop after the duration.
    After(Duration),
}

/// Parses the `devcluster.rollgit.dev/fail` annotation.
pub fn parse_fail(s: &str) -> Option<Fault> {
    let s = s.trim();
    match s {
        "crash" | "true" => Some(Fault::Crash),
        "none" | "false" | "" => Some(Fault::None),
        _ => s
            .strip_prefix("after=")
            .and_then(|d| parse_duration(d).ok())
            .map(Fault::After),
    }
}

fn images(pod: &Value) -> Vec<String> {
    pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_string))
        .collect()
}

/// A Pod's fault, from its annotation, the run-time ConfigMap or the start-time patterns.
pub fn fault_of(sim: &Sim, pod: &Value) -> Fault {
    if let Some(f) = pod["metadata"]["annotations"][FAIL_ANNOTATION]
        .as_str()
        .and_then(parse_fail)
    {
        return f;
    }
    let imgs = images(pod);
    let any = |p: &str| imgs.iter().any(|i| image_matches(p, i));
    if sim
        .cfg
        .fail_images
        .iter()
        .chain(&sim.faults.fail_images)
        .any(|p| any(p))
    {
        return Fault::Crash;
    }
    if let Some((_, d)) = sim.faults.fail_after.iter().find(|(p, _)| any(p)) {
        return Fault::After(*d);
    }
    Fault::None
}

/// A Pod's readiness delay.
pub fn delay_of(sim: &Sim, pod: &Value) -> Duration {
    if let Some(d) = pod["metadata"]["annotations"][READY_AFTER_ANNOTATION]
        .as_str()
        .and_then(|s| parse_duration(s).ok())
    {
        return d;
    }
    let imgs = images(pod);
    sim.faults
        .ready_delays
        .iter()
        .chain(&sim.cfg.image_ready_delays)
        .find(|(p, _)| imgs.iter().any(|i| image_matches(p, i)))
        .map_or(sim.cfg.ready_delay, |(_, d)| *d)
}

/// The kubelet's memory of one Pod.
#[derive(Debug, Clone)]
struct PodSim {
    ready_at: Instant,
    restarts: i64,
    images: Vec<String>,
    crashing: bool,
    next_restart: Option<Instant>,
    fail_at: Option<Instant>,
}

/// The kubelet's memory of all Pods.
#[derive(Debug, Default)]
pub struct State {
    pods: HashMap<String, PodSim>,
    next_ip: HashMap<String, u32>,
}

impl State {
    /// Forgets a deleted Pod.
    pub fn forget(&mut self, uid: &str) {
        self.pods.remove(uid);
    }
}

fn node_index(sim: &Sim, node: &str) -> usize {
    sim.cfg.nodes.iter().position(|n| n == node).unwrap_or(0)
}

/// Picks a node for a new Pod, spreading by name.
pub fn pick_node(sim: &Sim, pod_name: &str) -> Option<String> {
    if sim.cfg.nodes.is_empty() {
        return None;
    }
    let i = fnv32a(pod_name.as_bytes()) as usize % sim.cfg.nodes.len();
    Some(sim.cfg.nodes[i].clone())
}

fn host_ip(i: usize) -> String {
    format!("172.18.0.{}", i + 2)
}

/// Creates the simulated Nodes (Ready, kubelet v1.33.0) if they do not exist.
pub async fn register_nodes(sim: &Sim) {
    let nodes = gr("", "nodes");
    for (i, name) in sim.cfg.nodes.iter().enumerate() {
        let k = key("", "nodes", "", name);
        if sim.store.get(&k).is_none() {
            let node = json!({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {
                    "name": name,
                    "labels": {
                        "beta.kubernetes.io/arch": "amd64",
                        "beta.kubernetes.io/os": "linux",
                        "kubernetes.io/arch": "amd64",
                        "kubernetes.io/hostname": name,
                        "kubernetes.io/os": "linux",
                    },
                    "annotations": {"node.alpha.kubernetes.io/ttl": "0"},
                },
                "spec": {"podCIDR": format!("10.244.{i}.0/24"), "podCIDRs": [format!("10.244.{i}.0/24")]},
            });
            if let Err(e) = sim.client.create(&nodes, "", &node, KUBELET).await {
                tracing::warn!(node = %name, error = %e, "could not register a node");
                continue;
            }
        }
        let Some(e) = sim.store.get(&k) else { continue };
        let mut v = e.value();
        if v["status"]["nodeInfo"]["kubeletVersion"] == "v1.33.0"
            && v["status"]["conditions"].is_array()
        {
            continue;
        }
        let now = crate::time::now_rfc3339();
        let cond = |t: &str, s: &str, reason: &str, msg: &str| {
            json!({"type": t, "status": s, "reason": reason, "message": msg,
                   "lastHeartbeatTime": now, "lastTransitionTime": now})
        };
        v["status"] = json!({
            "capacity": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "allocatable": {"cpu": "8", "memory": "32Gi", "pods": "110", "ephemeral-storage": "100Gi"},
            "conditions": [
                cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                cond("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [
                {"type": "InternalIP", "address": host_ip(i)},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": "amd64",
                "bootID": uuid::Uuid::new_v4().to_string(),
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.8.0",
                "kubeProxyVersion": "v1.33.0",
                "kubeletVersion": "v1.33.0",
                "machineID": format!("{:032x}", fnv32a(name.as_bytes())),
                "operatingSystem": "linux",
                "osImage": "rollgit devcluster",
                "systemUUID": uuid::Uuid::new_v4().to_string(),
            },
        });
        if let Err(e) = sim.client.update_status(&nodes, "", &v, KUBELET).await {
            tracing::warn!(node = %name, error = %e, "could not set a node's status");
        }
    }
}

/// How the Pod's containers look now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum View {
    Creating,
    Running {
        ready: bool,
    },
    Crashing,
    /// The containers exited and will not restart (`restartPolicy: Never`/`OnFailure`).
    Terminated {
        succeeded: bool,
    },
}

fn backoff(base: Duration, restarts: i64) -> Duration {
    let shift = restarts.clamp(0, 16) as u32;
    base.saturating_mul(1u32 << shift).min(MAX_BACKOFF)
}

/// Reconciles one Pod: binds it to a node, then moves its status along.
pub async fn reconcile(sim: &mut Sim, k: &ObjKey) -> Result<Outcome, ClientError> {
    let mut out = Outcome::default();
    let Some((pod, uid)) = live_object(sim, k) else {
        return Ok(out);
    };
    if matches!(
        pod["status"]["phase"].as_str(),
        Some("Succeeded") | Some("Failed")
    ) {
        return Ok(out);
    }
    let name = k.name.clone();
    // `Never` and `OnFailure` Pods run to completion: Ready after the delay, done one delay
    // later. `Never` Pods that crash fail; `OnFailure` ones restart in a crash loop.
    let restart_policy = pod["spec"]["restartPolicy"]
        .as_str()
        .unwrap_or("Always")
        .to_string();
    let node = pod["spec"]["nodeName"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if node.is_empty() {
        let Some(node) = pick_node(sim, &name) else {
            return Ok(out);
        };
        sim.client
            .merge_patch(
                &k.gr,
                &k.namespace,
                &name,
                &json!({"spec": {"nodeName": node}}),
                "kube-scheduler",
            )
            .await?;
        return Ok(out);
    }
    let now = Instant::now();
    let fault = fault_of(sim, &pod);
    let delay = delay_of(sim, &pod);
    let imgs = images(&pod);
    let status_imgs: Vec<String> = pod["status"]["containerStatuses"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["image"].as_str().map(str::to_string))
        .collect();
    let first_sight = util::condition(&pod, "PodScheduled").is_none();
    let st = sim.kubelet.pods.entry(uid.clone()).or_insert_with(|| {
        let restarts = pod["status"]["containerStatuses"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| util::int(&c["restartCount"]))
            .max()
            .unwrap_or(0);
        let ready_now = util::pod_ready(&pod) && fault == Fault::None;
        PodSim {
            ready_at: if ready_now { now } else { now + delay },
            restarts,
            images: if status_imgs.is_empty() {
                imgs.clone()
            } else {
                status_imgs.clone()
            },
            crashing: false,
            next_restart: None,
            fail_at: None,
        }
    });
    let mut restarted = false;
    if st.images != imgs {
        // An in-place update: the container restarts with the new image.
        st.images = imgs.clone();
        st.ready_at = now + delay;
        st.restarts += 1;
        st.crashing = false;
        st.next_restart = None;
        st.fail_at = None;
    }
    let mut view = if now < st.ready_at {
        if st.restarts == 0 && !util::pod_ready(&pod) && !st.crashing {
            View::Creating
        } else {
            View::Running { ready: false }
        }
    } else {
        View::Running { ready: true }
    };
    match fault {
        Fault::None => {
            if st.crashing {
                st.crashing = false;
                st.restarts += 1;
                st.ready_at = now + delay;
                st.next_restart = None;
                view = View::Running { ready: false };
            }
            st.fail_at = None;
        }
        Fault::Crash => {
            if now >= st.ready_at && !st.crashing {
                st.crashing = true;
                st.restarts += 1;
                st.next_restart = Some(now + backoff(sim.cfg.crash_backoff, st.restarts - 1));
                restarted = true;
            }
        }
        Fault::After(d) => {
            if now >= st.ready_at && !st.crashing {
                let at = *st.fail_at.get_or_insert(st.ready_at.max(now) + d);
                if now >= at {
                    st.crashing = true;
                    st.restarts += 1;
                    st.next_restart = Some(now + backoff(sim.cfg.crash_backoff, st.restarts - 1));
                    restarted = true;
                } else {
                    out.at(at);
                }
            }
        }
    }
    if st.crashing && restart_policy == "Never" {
        view = View::Terminated { succeeded: false };
    } else if !st.crashing && restart_policy != "Always" && now >= st.ready_at {
        let done_at = st.ready_at + delay;
        if now >= done_at {
            view = View::Terminated { succeeded: true };
        } else {
            out.at(done_at);
        }
    }
    if let View::Terminated { .. } = view {
        // Terminal: nothing more to schedule.
    } else if st.crashing {
        if let Some(nr) = st.next_restart
            && now >= nr
        {
            // The container restarted and crashed again.
            st.restarts += 1;
            st.next_restart = Some(now + backoff(sim.cfg.crash_backoff, st.restarts - 1));
            restarted = true;
        }
        view = View::Crashing;
        if let Some(nr) = st.next_restart {
            out.at(nr);
        }
    } else if now < st.ready_at {
        out.at(st.ready_at);
    }
    let restarts = if restart_policy == "Never" {
        0
    } else {
        st.restarts
    };
    let node_i = node_index(sim, &node);
    let pod_ip = match pod["status"]["podIP"].as_str() {
        Some(ip) => ip.to_string(),
        None => {
            let n = sim.kubelet.next_ip.entry(node.clone()).or_insert(2);
            let ip = format!("10.244.{node_i}.{}", *n % 254 + 1);
            *n += 1;
            ip
        }
    };
    let status = build_status(&pod, view, restarts, &pod_ip, &host_ip(node_i), &node);
    if status != pod["status"] {
        let mut v = pod.clone();
        v["status"] = status;
        let written = sim
            .client
            .update_status(&k.gr, &k.namespace, &v, KUBELET)
            .await?;
        if first_sight {
            let c = &sim.client;
            let ns = &k.namespace;
            events::record(
                c,
                &written,
                Kind::Normal,
                "Scheduled",
                &format!("Successfully assigned {ns}/{name} to {node}"),
                "default-scheduler",
                None,
            )
            .await;
            for ctr in pod["spec"]["containers"].as_array().into_iter().flatten() {
                let cn = ctr["name"].as_str().unwrap_or_default();
                let image = ctr["image"].as_str().unwrap_or_default();
                events::record(
                    c,
                    &written,
                    Kind::Normal,
                    "Pulled",
                    &format!("Container image \"{image}\" already present on machine"),
                    KUBELET,
                    Some(&node),
                )
                .await;
                events::record(
                    c,
                    &written,
                    Kind::Normal,
                    "Created",
                    &format!("Created container: {cn}"),
                    KUBELET,
                    Some(&node),
                )
                .await;
                events::record(
                    c,
                    &written,
                    Kind::Normal,
                    "Started",
                    &format!("Started container {cn}"),
                    KUBELET,
                    Some(&node),
                )
                .await;
            }
        }
        if restarted && restart_policy != "Never" {
            for ctr in pod["spec"]["containers"].as_array().into_iter().flatten() {
                let cn = ctr["name"].as_str().unwrap_or_default();
                events::record(
                    &sim.client,
                    &written,
                    Kind::Warning,
                    "BackOff",
                    &format!(
                        "Back-off restarting failed container {cn} in pod {name}_{}({uid})",
                        k.namespace
                    ),
                    KUBELET,
                    Some(&node),
                )
                .await;
            }
        }
    }
    Ok(out)
}

fn build_status(
    pod: &Value,
    view: View,
    restarts: i64,
    pod_ip: &str,
    host_ip: &str,
    node: &str,
) -> Value {
    let old = &pod["status"];
    let now = crate::time::now_rfc3339();
    let ready = matches!(view, View::Running { ready: true });
    let terminated = match view {
        View::Terminated { succeeded } => Some(succeeded),
        _ => None,
    };
    let names: Vec<&str> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let cond = |t: &str, ok: bool, reason: Option<&str>, msg: Option<String>| {
        let mut c = json!({"type": t, "status": if ok { "True" } else { "False" },
                           "lastProbeTime": null, "lastTransitionTime": now});
        if let (false, Some(r)) = (ok, reason) {
            c["reason"] = json!(r);
        }
        if let (false, Some(m)) = (ok, msg) {
            c["message"] = json!(m);
        }
        c
    };
    let unready = format!("containers with unready status: [{}]", names.join(" "));
    let (reason, message) = match terminated {
        Some(true) => ("PodCompleted", None),
        Some(false) => ("PodFailed", None),
        None => ("ContainersNotReady", Some(unready)),
    };
    let mut conds = old["conditions"].clone();
    conds = set_condition(
        &conds,
        cond(
            "PodReadyToStartContainers",
            view != View::Creating && terminated.is_none(),
            None,
            None,
        ),
    );
    conds = set_condition(&conds, cond("Initialized", true, None, None));
    conds = set_condition(&conds, cond("Ready", ready, Some(reason), message.clone()));
    conds = set_condition(
        &conds,
        cond("ContainersReady", ready, Some(reason), message),
    );
    conds = set_condition(&conds, cond("PodScheduled", true, None, None));
    let order = [
        "PodReadyToStartContainers",
        "Initialized",
        "Ready",
        "ContainersReady",
        "PodScheduled",
    ];
    if let Some(list) = conds.as_array_mut() {
        list.sort_by_key(|c| {
            order
                .iter()
                .position(|o| c["type"] == *o)
                .unwrap_or(order.len())
        });
    }
    let old_cs = old["containerStatuses"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let uid = pod["metadata"]["uid"].as_str().unwrap_or_default();
    let statuses: Vec<Value> = pod["spec"]["containers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let cn = c["name"].as_str().unwrap_or_default();
            let image = c["image"].as_str().unwrap_or_default();
            let prev = old_cs.iter().find(|s| s["name"] == cn);
            let same = |kind: &str| {
                prev.filter(|p| p["restartCount"] == restarts && p["image"] == image && p["state"].get(kind).is_some())
            };
            let cid = format!("containerd://{:08x}{:08x}", fnv32a(format!("{uid}/{cn}").as_bytes()), fnv32a(format!("{uid}/{cn}/{restarts}").as_bytes()));
            let (state, last) = match view {
                View::Creating => (json!({"waiting": {"reason": "ContainerCreating"}}), json!({})),
                View::Terminated { succeeded } => {
                    let started = prev.and_then(|p| p["state"]["running"]["startedAt"].as_str().map(str::to_string)).unwrap_or_else(|| now.clone());
                    let (code, reason) = if succeeded { (0, "Completed") } else { (1, "Error") };
                    (
                        json!({"terminated": {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": now, "containerID": cid}}),
                        prev.map_or_else(|| json!({}), |p| p["lastState"].clone()),
                    )
                }
                View::Running { .. } => {
                    let state = same("running").map_or_else(|| json!({"running": {"startedAt": now}}), |p| p["state"].clone());
                    let last = prev.map_or_else(|| json!({}), |p| if p["restartCount"] == restarts { p["lastState"].clone() } else { json!({}) });
                    (state, last)
                }
                View::Crashing => {
                    if let Some(p) = same("waiting") {
                        (p["state"].clone(), p["lastState"].clone())
                    } else {
                        let started = prev.and_then(|p| p["state"]["running"]["startedAt"].as_str().map(str::to_string)).unwrap_or_else(|| now.clone());
                        (
                            json!({"waiting": {"reason": "CrashLoopBackOff", "message": format!("back-off 10s restarting failed container={cn} pod={}_{}({uid})", pod["metadata"]["name"].as_str().unwrap_or_default(), pod["metadata"]["namespace"].as_str().unwrap_or_default())}}),
                            json!({"terminated": {"exitCode": 1, "reason": "Error", "startedAt": started, "finishedAt": now, "containerID": cid}}),
                        )
                    }
                }
            };
            let mut s = json!({
                "name": cn,
                "image": image,
                "imageID": format!("docker.io/library/{}@sha256:{:064x}", image.split(':').next().unwrap_or(image).rsplit('/').next().unwrap_or(image), u128::from(fnv32a(image.as_bytes()))),
                "ready": ready,
                "started": matches!(view, View::Running { .. }),
                "restartCount": restarts,
                "state": state,
                "lastState": last,
            });
            if view != View::Creating {
                s["containerID"] = json!(cid);
            }
            s
        })
        .collect();
    let phase = match view {
        View::Creating => "Pending",
        View::Terminated { succeeded: true } => "Succeeded",
        View::Terminated { succeeded: false } => "Failed",
        _ => "Running",
    };
    let mut status = json!({
        "phase": phase,
        "conditions": conds,
        "hostIP": host_ip,
        "hostIPs": [{"ip": host_ip}],
        "podIP": pod_ip,
        "podIPs": [{"ip": pod_ip}],
        "startTime": old.get("startTime").filter(|t| t.is_string()).cloned().unwrap_or_else(|| json!(now)),
        "containerStatuses": statuses,
        "qosClass": old.get("qosClass").cloned().unwrap_or_else(|| json!("BestEffort")),
    });
    let _ = node;
    if parse_time(&status["startTime"]).is_none() {
        status["startTime"] = json!(now);
    }
    let _ = SystemTime::now();
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_patterns() {
        let cases = [
            ("glob suffix", "*:bad", "nginx:bad", true),
            ("glob suffix no match", "*:bad", "nginx:bad2", false),
            ("substring", "bad", "registry/nginx:bad-1", true),
            ("substring no match", "broken", "nginx:1.27", false),
            ("question mark", "nginx:1.2?", "nginx:1.27", true),
            ("glob whole", "busybox*", "nginx:busybox", false),
            (
                "glob spans slashes",
                "*/web:*",
                "registry.example.com/team/web:1",
                true,
            ),
            ("double star is a star", "reg/**/web", "reg//web", true),
            (
                "double star needs the slashes",
                "reg/**/web",
                "reg/web",
                false,
            ),
            ("brackets are literal", "web[1]*", "web[1]:2", true),
            ("brackets are no class", "web[12]*", "web1:2", false),
            ("braces are literal", "{a,b}*", "{a,b}:1", true),
            ("backslash is literal", "a\\b*", "a\\b:1", true),
            ("empty", "", "nginx", false),
        ];
        for (name, p, i, want) in cases {
            assert_eq!(image_matches(p, i), want, "{name}");
        }
    }

    #[test]
    fn fail_annotation() {
        assert_eq!(parse_fail("crash"), Some(Fault::Crash));
        assert_eq!(
            parse_fail("after=30s"),
            Some(Fault::After(Duration::from_secs(30)))
        );
        assert_eq!(parse_fail("none"), Some(Fault::None));
        assert_eq!(parse_fail("sometimes"), None);
    }

    #[test]
    fn faults_configmap() {
        let f = Faults::from_data(
            &json!({"fail-images": "*:bad\nbroken, other", "fail-after": "x=1s", "ready-delays": "slow=2s\nfast=10ms"}),
        );
        assert_eq!(f.fail_images, vec!["*:bad", "broken", "other"]);
        assert_eq!(
            f.fail_after,
            vec![("x".to_string(), Duration::from_secs(1))]
        );
        assert_eq!(f.ready_delays.len(), 2);
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let b = Duration::from_secs(10);
        assert_eq!(backoff(b, 0), Duration::from_secs(10));
        assert_eq!(backoff(b, 2), Duration::from_secs(40));
        assert_eq!(backoff(b, 9), MAX_BACKOFF);
    }
}
