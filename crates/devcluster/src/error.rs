//! API errors rendered as `metav1.Status`, with the codes and reasons a real kube-apiserver gives.

use serde_json::{Value, json};

/// One field-level cause of an `Invalid` (422) or conflict error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    /// Machine-readable reason, such as `FieldValueRequired` or `FieldValueInvalid`.
    pub reason: String,
    /// Human-readable message, such as `Required value`.
    pub message: String,
    /// The field path, such as `spec.selector`.
    pub field: String,
}

impl Cause {
    /// A `FieldValueRequired` cause for `field`.
    pub fn required(field: impl Into<String>) -> Self {
        Self {
            reason: "FieldValueRequired".into(),
            message: "Required value".into(),
            field: field.into(),
        }
    }

    /// A `FieldValueInvalid` cause: `Invalid value: <value>: <detail>`.
    pub fn invalid(field: impl Into<String>, value: &Value, detail: &str) -> Self {
        let shown = match value {
            Value::String(s) => crate::typed::go_quote(s),
            Value::Number(n) => crate::typed::go_number(n),
            other => other.to_string(),
        };
        Self {
            reason: "FieldValueInvalid".into(),
            message: format!("Invalid value: {shown}: {detail}"),
            field: field.into(),
        }
    }

    /// A `FieldValueNotSupported` cause listing the accepted values.
    pub fn not_supported(field: impl Into<String>, value: &Value, allowed: &[&str]) -> Self {
        let list: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        Self {
            reason: "FieldValueNotSupported".into(),
            message: format!(
                "Unsupported value: {value}: supported values: {}",
                list.join(", ")
            ),
            field: field.into(),
        }
    }

    /// A `FieldValueDuplicate` cause: `Duplicate value: <shown>` (`shown` as the server
    /// prints the value: a quoted string, a Go struct).
    pub fn duplicate(field: impl Into<String>, shown: &str) -> Self {
        Self {
            reason: "FieldValueDuplicate".into(),
            message: format!("Duplicate value: {shown}"),
            field: field.into(),
        }
    }

    /// A `FieldValueForbidden` cause: `Forbidden: <detail>`.
    pub fn forbidden(field: impl Into<String>, detail: &str) -> Self {
        Self {
            reason: "FieldValueForbidden".into(),
            message: format!("Forbidden: {detail}"),
            field: field.into(),
        }
    }

    /// A `FieldValueTypeInvalid` cause.
    pub fn type_invalid(field: impl Into<String>, value: &Value, expected: &str) -> Self {
        Self {
            reason: "FieldValueTypeInvalid".into(),
            message: format!("Invalid value: {value}: must be of type {expected}"),
            field: field.into(),
        }
    }

    fn text(&self) -> String {
        if self.field.is_empty() {
            self.message.clone()
        } else {
            format!("{}: {}", self.field, self.message)
        }
    }
}

/// An error answered to a client as a `metav1.Status` object. Boxed, so that results stay
/// small on the hot path; its fields are reached through `Deref` ([`StatusError`]).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ApiError(Box<StatusError>);

impl std::ops::Deref for ApiError {
    type Target = StatusError;
    fn deref(&self) -> &StatusError {
        &self.0
    }
}

impl std::ops::DerefMut for ApiError {
    fn deref_mut(&mut self) -> &mut StatusError {
        &mut self.0
    }
}

/// The content of an [`ApiError`]: what `metav1.Status` carries.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code} {reason}: {message}")]
pub struct StatusError {
    /// HTTP status code.
    pub code: u16,
    /// `metav1.StatusReason`, such as `NotFound`.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
    /// `details.name`.
    pub name: Option<String>,
    /// `details.group`.
    pub group: Option<String>,
    /// `details.kind`.
    pub kind: Option<String>,
    /// `details.causes`.
    pub causes: Vec<Cause>,
    /// `details.retryAfterSeconds`.
    pub retry_after: Option<u32>,
}

/// `plural.group` as the apiserver writes a resource in messages (`deployments.apps`, `pods`).
pub fn qualified(group: &str, plural: &str) -> String {
    if group.is_empty() {
        plural.to_string()
    } else {
        format!("{plural}.{group}")
    }
}

impl ApiError {
    fn base(code: u16, reason: &'static str, message: String) -> Self {
        Self(Box::new(StatusError {
            code,
            reason,
            message,
            name: None,
            group: None,
            kind: None,
            causes: Vec::new(),
            retry_after: None,
        }))
    }

    fn with_target(mut self, group: &str, kind: &str, name: &str) -> Self {
        self.group = Some(group.to_string());
        self.kind = Some(kind.to_string());
        self.name = Some(name.to_string());
        self
    }

    /// 404 for an object: `deployments.apps "web" not found`.
    pub fn not_found(group: &str, plural: &str, name: &str) -> Self {
        Self::base(
            404,
            "NotFound",
            format!("{} {name:?} not found", qualified(group, plural)),
        )
        .with_target(group, plural, name)
    }

    /// 404 for a path that names no resource.
    pub fn no_route() -> Self {
        Self::base(
            404,
            "NotFound",
            "the server could not find the requested resource".into(),
        )
    }

    /// 409 on create of an existing object.
    pub fn already_exists(group: &str, plural: &str, name: &str) -> Self {
        Self::base(
            409,
            "AlreadyExists",
            format!("{} {name:?} already exists", qualified(group, plural)),
        )
        .with_target(group, plural, name)
    }

    /// 409 on a stale `resourceVersion`.
    pub fn stale(group: &str, plural: &str, name: &str) -> Self {
        Self::base(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} {name:?}: the object has been modified; please apply your changes to the latest version and try again",
                qualified(group, plural)
            ),
        )
        .with_target(group, plural, name)
    }

    /// 409 for server-side apply conflicts between field managers.
    pub fn apply_conflict(
        group: &str,
        plural: &str,
        name: &str,
        message: String,
        causes: Vec<Cause>,
    ) -> Self {
        let mut e = Self::base(409, "Conflict", message).with_target(group, plural, name);
        e.causes = causes;
        e
    }

    /// 422 with field causes: `Deployment.apps "web" is invalid: spec.selector: Required value`.
    pub fn invalid(group: &str, kind: &str, name: &str, causes: Vec<Cause>) -> Self {
        let qualified_kind = if group.is_empty() {
            kind.to_string()
        } else {
            format!("{kind}.{group}")
        };
        let text = match causes.as_slice() {
            [one] => one.text(),
            many => format!(
                "[{}]",
                many.iter().map(Cause::text).collect::<Vec<_>>().join(", ")
            ),
        };
        let mut e = Self::base(
            422,
            "Invalid",
            format!("{qualified_kind} {name:?} is invalid: {text}"),
        )
        .with_target(group, kind, name);
        e.causes = causes;
        e
    }

    /// 400.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::base(400, "BadRequest", message.into())
    }

    /// 405.
    pub fn method_not_allowed(message: impl Into<String>) -> Self {
        Self::base(405, "MethodNotAllowed", message.into())
    }

    /// 415.
    pub fn unsupported_media_type(content_type: &str) -> Self {
        Self::base(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml (got {content_type:?})"
            ),
        )
    }

    /// 413.
    pub fn too_large(limit: usize) -> Self {
        Self::base(
            413,
            "RequestEntityTooLarge",
            format!("Request entity too large: limit is {limit}"),
        )
    }

    /// 410 for a watch or list from a compacted resourceVersion.
    pub fn gone(requested: u64, oldest: u64) -> Self {
        Self::base(
            410,
            "Expired",
            format!("too old resource version: {requested} ({oldest})"),
        )
    }

    /// 403 (used for namespaces being terminated and similar admission refusals).
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::base(403, "Forbidden", message.into())
    }

    /// An error that is not a `metav1.Status` in kube-apiserver: `code`, an empty reason.
    pub fn unknown(code: u16, message: impl Into<String>) -> Self {
        Self::base(code, "", message.into())
    }

    /// 401.
    pub fn unauthorized() -> Self {
        Self::base(401, "Unauthorized", "Unauthorized".into())
    }

    /// 403 for a resource, as `errors.NewForbidden` words it: `pods "web" is forbidden: <why>`,
    /// `pods is forbidden: <why>` without a name, `forbidden: <why>` without a resource.
    pub fn forbidden_resource(group: &str, resource: &str, name: &str, why: &str) -> Self {
        let message = if resource.is_empty() {
            format!("forbidden: {why}")
        } else if name.is_empty() {
            format!("{} is forbidden: {why}", qualified(group, resource))
        } else {
            format!(
                "{} {name:?} is forbidden: {why}",
                qualified(group, resource)
            )
        };
        Self::base(403, "Forbidden", message).with_target(group, resource, name)
    }

    /// 500.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::base(500, "InternalError", message.into())
    }

    /// 503 (the server is going away).
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::base(503, "ServiceUnavailable", message.into())
    }

    /// 406.
    pub fn not_acceptable(message: impl Into<String>) -> Self {
        Self::base(406, "NotAcceptable", message.into())
    }

    /// The `metav1.Status` body.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if self.reason.is_empty()
            && let Some(m) = status.as_object_mut()
        {
            m.remove("reason");
        }
        let mut details = serde_json::Map::new();
        if let Some(n) = self.name.as_ref().filter(|n| !n.is_empty()) {
            details.insert("name".into(), json!(n));
        }
        if let Some(g) = &self.group
            && !g.is_empty()
        {
            details.insert("group".into(), json!(g));
        }
        if let Some(k) = self.kind.as_ref().filter(|k| !k.is_empty()) {
            details.insert("kind".into(), json!(k));
        }
        if !self.causes.is_empty() {
            let causes: Vec<Value> = self
                .causes
                .iter()
                .map(|c| json!({"reason": c.reason, "message": c.message, "field": c.field}))
                .collect();
            details.insert("causes".into(), Value::Array(causes));
        }
        if let Some(r) = self.retry_after {
            details.insert("retryAfterSeconds".into(), json!(r));
        }
        if !details.is_empty() {
            status["details"] = Value::Object(details);
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_matches_apiserver_text() {
        let e = ApiError::not_found("apps", "deployments", "web");
        assert_eq!(e.message, "deployments.apps \"web\" not found");
        let s = e.to_status();
        assert_eq!(s["reason"], "NotFound");
        assert_eq!(s["details"]["group"], "apps");
        assert_eq!(s["code"], 404);
    }

    #[test]
    fn invalid_with_two_causes_lists_both() {
        let e = ApiError::invalid(
            "apps",
            "Deployment",
            "web",
            vec![
                Cause::required("spec.selector"),
                Cause::required("spec.template.spec.containers"),
            ],
        );
        assert_eq!(
            e.message,
            "Deployment.apps \"web\" is invalid: [spec.selector: Required value, spec.template.spec.containers: Required value]"
        );
        assert_eq!(
            e.to_status()["details"]["causes"][1]["field"],
            "spec.template.spec.containers"
        );
    }
}
