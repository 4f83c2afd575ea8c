//! Request counting, as kube-apiserver's `apiserver_request_total` counter: every request a
//! client makes (the simulated controllers' in-process requests are not counted), by verb,
//! group, resource, subresource and `dryRun`, served at `/metrics` in the Prometheus text
//! format (`kubectl get --raw /metrics`).

use axum::http::{HeaderMap, Method, header};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;

/// One series of the counter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Series {
    verb: &'static str,
    group: String,
    resource: String,
    subresource: String,
    dry_run: bool,
}

/// Requests counted since the server started.
#[derive(Default)]
pub struct RequestCounter {
    counts: Mutex<BTreeMap<Series, u64>>,
}

/// What one resource request is, for the counter.
pub(super) struct Counted<'a> {
    pub method: &'a Method,
    pub headers: &'a HeaderMap,
    pub group: &'a str,
    pub resource: &'a str,
    pub subresource: Option<&'a str>,
    /// Whether the request names one object.
    pub named: bool,
    pub watch: bool,
    pub dry_run: bool,
}

/// kube-apiserver's verb label of a request.
fn verb(c: &Counted<'_>) -> &'static str {
    let apply = c
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/apply-patch"));
    match *c.method {
        Method::GET if c.watch => "WATCH",
        Method::GET if c.named => "GET",
        Method::GET => "LIST",
        Method::POST => "CREATE",
        Method::PUT => "UPDATE",
        Method::PATCH if apply => "APPLY",
        Method::PATCH => "PATCH",
        Method::DELETE if c.named => "DELETE",
        Method::DELETE => "DELETECOLLECTION",
        _ => "OTHER",
    }
}

impl RequestCounter {
    /// Counts a resource request.
    pub(super) fn resource(&self, c: &Counted<'_>) {
        self.add(Series {
            verb: verb(c),
            group: c.group.to_string(),
            resource: c.resource.to_string(),
            subresource: c.subresource.unwrap_or_default().to_string(),
            dry_run: c.dry_run,
        });
    }

    /// Counts a request that names no resource (discovery, `/version`, OpenAPI).
    pub(super) fn other(&self) {
        self.add(Series {
            verb: "GET",
            group: String::new(),
            resource: String::new(),
            subresource: String::new(),
            dry_run: false,
        });
    }

    fn add(&self, s: Series) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        *counts.entry(s).or_default() += 1;
    }

    /// The counter in the Prometheus text format.
    pub fn render(&self) -> String {
        let counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::from(
            "# HELP apiserver_request_total Counter of apiserver requests broken out for each verb, dry run value, group, resource and subresource.\n# TYPE apiserver_request_total counter\n",
        );
        for (s, n) in counts.iter() {
            let _ = writeln!(
                out,
                "apiserver_request_total{{dry_run=\"{}\",group=\"{}\",resource=\"{}\",subresource=\"{}\",verb=\"{}\"}} {n}",
                if s.dry_run { "All" } else { "" },
                s.group,
                s.resource,
                s.subresource,
                s.verb
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verbs_follow_kube_apiserver() {
        let mut apply = HeaderMap::new();
        apply.insert(
            header::CONTENT_TYPE,
            "application/apply-patch+yaml".parse().expect("header"),
        );
        let plain = HeaderMap::new();
        let c = RequestCounter::default();
        for (method, headers, named, watch, dry_run) in [
            (Method::PATCH, &apply, true, false, true),
            (Method::PATCH, &apply, true, false, false),
            (Method::PATCH, &plain, true, false, false),
            (Method::GET, &plain, true, false, false),
            (Method::GET, &plain, false, false, false),
            (Method::GET, &plain, false, true, false),
        ] {
            c.resource(&Counted {
                method: &method,
                headers,
                group: "",
                resource: "configmaps",
                subresource: None,
                named,
                watch,
                dry_run,
            });
        }
        c.other();
        let text = c.render();
        for verb in ["APPLY", "PATCH", "GET", "LIST", "WATCH"] {
            assert!(
                text.contains(&format!(
                    "resource=\"configmaps\",subresource=\"\",verb=\"{verb}\"}} 1"
                )),
                "{verb}: {text}"
            );
        }
        assert!(text.contains("dry_run=\"All\",group=\"\",resource=\"configmaps\",subresource=\"\",verb=\"APPLY\"} 1"), "{text}");
        assert!(
            text.contains("resource=\"\",subresource=\"\",verb=\"GET\"} 1"),
            "{text}"
        );
    }
}
