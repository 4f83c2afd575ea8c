//! Query-string parameters: parsing, `dryRun`, `fieldManager`, label and field selectors, and
//! `continue` tokens for paged lists.

use crate::error::ApiError;
use crate::resources::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{Entry, ObjKey};
use axum::http::{HeaderMap, header};
use std::collections::HashMap;

/// Parsed query parameters.
pub(super) struct Query(pub(super) HashMap<String, String>);

impl Query {
    pub(super) fn parse(q: Option<&str>) -> Self {
        let mut m = HashMap::new();
        if let Some(q) = q {
            for (k, v) in form_urlencoded::parse(q.as_bytes()) {
                m.insert(k.into_owned(), v.into_owned());
            }
        }
        Self(m)
    }
    pub(super) fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }
    pub(super) fn flag(&self, k: &str) -> bool {
        matches!(self.get(k), Some("true") | Some("1"))
    }
    pub(super) fn dry_run(&self) -> Result<bool, ApiError> {
        match self.get("dryRun") {
            None => Ok(false),
            Some("All") => Ok(true),
            Some(other) => Err(ApiError::bad_request(format!(
                "unsupported dry run option {other:?}, supported values: All"
            ))),
        }
    }

    /// The `fieldValidation` directive (`Warn` when absent, as in kube-apiserver); `options`
    /// names the options kind an invalid value is reported against (`CreateOptions`).
    pub(super) fn field_validation(&self, options: &str) -> Result<FieldValidation, ApiError> {
        match self.get("fieldValidation") {
            None | Some("Warn") => Ok(FieldValidation::Warn),
            Some("Strict") => Ok(FieldValidation::Strict),
            Some("Ignore") => Ok(FieldValidation::Ignore),
            Some(other) => Err(ApiError::invalid(
                "meta.k8s.io",
                options,
                "",
                vec![crate::error::Cause::not_supported(
                    "fieldValidation",
                    &serde_json::json!(other),
                    &["", "Ignore", "Strict", "Warn"],
                )],
            )),
        }
    }
}

/// What a write does with unknown and duplicate fields (`fieldValidation`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum FieldValidation {
    /// Drop them silently.
    Ignore,
    /// Drop them and send a `Warning` header for each (the default).
    Warn,
    /// Fail the request naming them all.
    Strict,
}

/// How a write names its field manager.
pub(super) fn manager_of(query: &Query, headers: &HeaderMap) -> Result<String, ApiError> {
    if let Some(m) = query.get("fieldManager") {
        if m.len() > 128 {
            return Err(ApiError::bad_request(
                "fieldManager: Too long: may not be more than 128 bytes",
            ));
        }
        return Ok(m.to_string());
    }
    let ua = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    Ok(ua.split('/').next().unwrap_or("unknown").to_string())
}

impl Query {
    /// The `labelSelector` and `fieldSelector` parameters (field selectors depend on the `kind`).
    pub(super) fn selectors(&self, kind: &str) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let label = LabelSelector::parse(self.get("labelSelector").unwrap_or(""))
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        let field = FieldSelector::parse(self.get("fieldSelector").unwrap_or(""), kind)
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok((label, field))
    }
}

/// Whether the object stored as `namespace`/`name` is selected by both selectors. Fields are those of
/// the object as `rt` serves it (an Event stored through `events.k8s.io/v1` has
/// `involvedObject` when listed as a core `v1` Event, as in kube-apiserver).
pub(super) fn matches(
    label: &LabelSelector,
    field: &FieldSelector,
    rt: &ResourceType,
    namespace: &str,
    name: &str,
    e: &Entry,
) -> bool {
    if !label.matches(&e.meta.labels) {
        return false;
    }
    if field.is_empty() {
        return true;
    }
    if field.metadata_only() {
        field.matches_meta(namespace, name)
    } else {
        let mut v = e.value();
        crate::convert::to_version(rt, &mut v);
        field.matches(&v)
    }
}

/// `s` from the hex of its UTF-8 bytes, if it is that.
fn unhex(s: &str) -> Option<String> {
    String::from_utf8(hex::decode(s).ok()?).ok()
}

pub(super) fn encode_continue(key: &ObjKey, rv: u64) -> String {
    format!(
        "{rv}-{}-{}",
        hex::encode(&key.namespace),
        hex::encode(&key.name)
    )
}

pub(super) fn decode_continue(token: &str) -> Result<(String, String, u64), ApiError> {
    let bad = || {
        ApiError::bad_request(
            "continue key is not valid: incorrect encoded start resourceVersion (version meta.k8s.io/v1)",
        )
    };
    let mut parts = token.splitn(3, '-');
    let rv = parts.next().and_then(|r| r.parse().ok()).ok_or_else(bad)?;
    let ns = parts.next().and_then(unhex).ok_or_else(bad)?;
    let name = parts.next().and_then(unhex).ok_or_else(bad)?;
    Ok((ns, name, rv))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resources::GroupResource;

    #[test]
    fn continue_token_round_trips() {
        let key = ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "pods".into(),
            },
            namespace: "a-b".into(),
            name: "x.y".into(),
        };
        let t = encode_continue(&key, 42);
        assert_eq!(
            decode_continue(&t).expect("valid"),
            ("a-b".into(), "x.y".into(), 42)
        );
        assert!(decode_continue("garbage").is_err());
        assert!(decode_continue("42-6-6162").is_err(), "odd hex");
        assert!(decode_continue("42-zz-6162").is_err(), "not hex");
        assert!(decode_continue("42-ff-6162").is_err(), "not UTF-8");
    }
}
