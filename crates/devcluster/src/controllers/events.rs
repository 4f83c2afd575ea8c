//! core/v1 Events, as the controllers and the kubelet of a real cluster record them.

use super::client::Client;
use super::gr;
use serde_json::{Value, json};

/// Normal or Warning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// An expected step.
    Normal,
    /// Something went wrong.
    Warning,
}

/// Records one Event about `obj` (any stored object) from `component`.
pub async fn record(
    client: &Client,
    obj: &Value,
    kind: Kind,
    reason: &str,
    message: &str,
    component: &str,
    host: Option<&str>,
) {
    let meta = &obj["metadata"];
    let namespace = meta["namespace"].as_str().unwrap_or("default");
    let name = meta["name"].as_str().unwrap_or_default();
    let now = crate::time::now_rfc3339();
    let suffix = format!("{:016x}", uuid::Uuid::new_v4().as_u128() as u64);
    let mut source = json!({"component": component});
    if let Some(h) = host {
        source["host"] = json!(h);
    }
    let ev = json!({
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": format!("{name}.{suffix}"), "namespace": namespace},
        "involvedObject": {
            "apiVersion": obj["apiVersion"],
            "kind": obj["kind"],
            "namespace": namespace,
            "name": name,
            "uid": meta["uid"],
            "resourceVersion": meta["resourceVersion"],
        },
        "reason": reason,
        "message": message,
        "source": source,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "eventTime": Value::Null,
        "count": 1,
        "type": match kind { Kind::Normal => "Normal", Kind::Warning => "Warning" },
        "reportingComponent": component,
        "reportingInstance": host.map(str::to_string).unwrap_or_default(),
        "action": "",
    });
    if let Err(e) = client
        .create(&gr("", "events"), namespace, &ev, component)
        .await
    {
        tracing::debug!(error = %e, reason, "could not record an event");
    }
}
