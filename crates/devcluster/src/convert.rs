//! Conversion between the versions a stored object can be read at: custom resources served at
//! several versions (the `None` strategy: only `apiVersion` changes), and core/v1 Events read
//! through events.k8s.io/v1 and back.

use crate::resources::ResourceType;
use serde_json::{Map, Value, json};

fn rename(from: &mut Map<String, Value>, to: &mut Map<String, Value>, a: &str, b: &str) {
    if let Some(v) = from.remove(a) {
        to.insert(b.to_string(), v);
    }
}

/// Rewrites `obj` in place so it is as `rt`'s group/version serves it.
pub fn to_version(rt: &ResourceType, obj: &mut Value) {
    let from = obj["apiVersion"].as_str().unwrap_or_default().to_string();
    let to = rt.api_version();
    if from == to {
        return;
    }
    if rt.kind == "Event" {
        let Some(mut src) = obj.as_object().cloned() else {
            return;
        };
        let mut out = Map::new();
        out.insert("apiVersion".into(), json!(to));
        out.insert("kind".into(), json!("Event"));
        src.remove("apiVersion");
        src.remove("kind");
        if let Some(m) = src.remove("metadata") {
            out.insert("metadata".into(), m);
        }
        let pairs: &[(&str, &str)] = if to == "events.k8s.io/v1" {
            &[
                ("involvedObject", "regarding"),
                ("message", "note"),
                ("reportingComponent", "reportingController"),
                ("source", "deprecatedSource"),
                ("firstTimestamp", "deprecatedFirstTimestamp"),
                ("lastTimestamp", "deprecatedLastTimestamp"),
                ("count", "deprecatedCount"),
            ]
        } else {
            &[
                ("regarding", "involvedObject"),
                ("note", "message"),
                ("reportingController", "reportingComponent"),
                ("deprecatedSource", "source"),
                ("deprecatedFirstTimestamp", "firstTimestamp"),
                ("deprecatedLastTimestamp", "lastTimestamp"),
                ("deprecatedCount", "count"),
            ]
        };
        for (a, b) in pairs {
            rename(&mut src, &mut out, a, b);
        }
        if to == "events.k8s.io/v1"
            && !out.contains_key("reportingController")
            && let Some(c) = out
                .get("deprecatedSource")
                .and_then(|s| s.get("component"))
                .cloned()
        {
            out.insert("reportingController".into(), c);
        }
        for (k, v) in src {
            out.entry(k).or_insert(v);
        }
        *obj = Value::Object(out);
        return;
    }
    obj["apiVersion"] = json!(to);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_event_reads_as_events_v1_and_back() {
        let types = crate::resources::builtins();
        let ev1 = types
            .iter()
            .find(|t| t.group == "events.k8s.io")
            .expect("events.k8s.io");
        let core = types
            .iter()
            .find(|t| t.kind == "Event" && t.group.is_empty())
            .expect("core event");
        let original = json!({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e"}, "involvedObject": {"kind": "Pod", "name": "p"}, "message": "hi", "reason": "Started", "count": 2});
        let mut v = original.clone();
        to_version(ev1, &mut v);
        assert_eq!(v["regarding"]["name"], "p");
        assert_eq!(v["note"], "hi");
        assert_eq!(v["deprecatedCount"], 2);
        to_version(core, &mut v);
        assert_eq!(v, original);
    }
}
