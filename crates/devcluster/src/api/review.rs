//! The APIs that answer a question instead of storing an object: SubjectAccessReview,
//! LocalSubjectAccessReview, SelfSubjectAccessReview (`kubectl auth can-i`),
//! SelfSubjectRulesReview (`kubectl auth can-i --list`), TokenReview, SelfSubjectReview
//! (`kubectl auth whoami`), and TokenRequest (`serviceaccounts/token`, `kubectl create token`).

use super::{Ctx, body, value_response};
use crate::auth::rbac::{Policy, Rule};
use crate::auth::token::{API_AUDIENCE, now_unix};
use crate::auth::{Attributes, UserInfo};
use crate::error::{ApiError, Cause};
use crate::resources::GroupResource;
use crate::store::ObjKey;
use axum::response::Response;
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// The shortest and longest token lifetimes a TokenRequest may ask for.
const MIN_EXPIRATION: i64 = 600;
const MAX_EXPIRATION: i64 = 1 << 32;

fn strs(v: &Value) -> Vec<String> {
    v.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s.as_str().map(str::to_string))
        .collect()
}

/// The attributes a SubjectAccessReview spec asks about.
fn review_attributes(spec: &Value) -> Attributes {
    let ra = &spec["resourceAttributes"];
    if ra.is_object() {
        let s = |k: &str| ra[k].as_str().unwrap_or_default().to_string();
        Attributes {
            verb: s("verb"),
            resource_request: true,
            group: s("group"),
            resource: s("resource"),
            subresource: s("subresource"),
            name: s("name"),
            namespace: s("namespace"),
            path: String::new(),
        }
    } else {
        let nra = &spec["nonResourceAttributes"];
        Attributes {
            verb: nra["verb"].as_str().unwrap_or_default().to_string(),
            path: nra["path"].as_str().unwrap_or_default().to_string(),
            ..Attributes::default()
        }
    }
}

fn attributes_required(spec: &Value) -> Vec<Cause> {
    let has_ra = spec["resourceAttributes"].is_object();
    let has_nra = spec["nonResourceAttributes"].is_object();
    match (has_ra, has_nra) {
        (true, true) => vec![Cause::invalid(
            "spec.nonResourceAttributes",
            &json!(spec["nonResourceAttributes"].to_string()),
            "cannot be specified in combination with resourceAttributes",
        )],
        (false, false) => vec![Cause {
            reason: "FieldValueInvalid".into(),
            message: "Invalid value: \"null\": exactly one of nonResourceAttributes or resourceAttributes must be specified".into(),
            field: "spec.resourceAttributes".into(),
        }],
        _ => Vec::new(),
    }
}

fn rule_lists(rules: &[Rule]) -> (Vec<Value>, Vec<Value>) {
    let mut resource = Vec::new();
    let mut non_resource = Vec::new();
    for r in rules {
        if r.non_resource_urls.is_empty() {
            let mut v =
                json!({"verbs": r.verbs, "apiGroups": r.api_groups, "resources": r.resources});
            if !r.resource_names.is_empty() {
                v["resourceNames"] = json!(r.resource_names);
            }
            resource.push(v);
        } else {
            non_resource.push(json!({"verbs": r.verbs, "nonResourceURLs": r.non_resource_urls}));
        }
    }
    (resource, non_resource)
}

impl Ctx {
    fn review_body(&self, raw: &[u8]) -> Result<Value, ApiError> {
        let parsed = body::decode(raw, &self.content_type())?;
        let mut obj = parsed.value;
        self.check_identity(&mut obj)?;
        self.decode_request_object(&mut obj, parsed.duplicates, "CreateOptions")?;
        if let Some(m) = obj["metadata"].as_object_mut() {
            m.insert("creationTimestamp".into(), Value::Null);
        }
        Ok(obj)
    }

    fn invalid_review(&self, causes: Vec<Cause>) -> ApiError {
        ApiError::invalid(&self.rt.group, &self.rt.kind, "", causes)
    }

    /// The answer of a user's access: `status` of an access review.
    fn access_status(&self, user: &UserInfo, spec: &Value) -> Value {
        let attrs = review_attributes(spec);
        match self.srv.authorize(user, &attrs) {
            Ok(reason) if reason.is_empty() => json!({"allowed": true}),
            Ok(reason) => json!({"allowed": true, "reason": reason}),
            Err(reason) if reason.is_empty() => json!({"allowed": false}),
            Err(reason) => json!({"allowed": false, "reason": reason}),
        }
    }

    /// POST of a review kind.
    pub(super) fn create_review(&self, raw: &[u8]) -> Result<Response, ApiError> {
        let mut obj = self.review_body(raw)?;
        let spec = obj["spec"].clone();
        let status = match (self.rt.group.as_str(), self.rt.kind.as_str()) {
            ("authorization.k8s.io", "SelfSubjectAccessReview") => {
                let causes = attributes_required(&spec);
                if !causes.is_empty() {
                    return Err(self.invalid_review(causes));
                }
                self.access_status(&self.user, &spec)
            }
            (
                "authorization.k8s.io",
                kind @ ("SubjectAccessReview" | "LocalSubjectAccessReview"),
            ) => {
                let mut causes = attributes_required(&spec);
                let groups = strs(&spec["groups"]);
                let name = spec["user"].as_str().unwrap_or_default().to_string();
                if name.is_empty() && groups.is_empty() {
                    causes.push(Cause::invalid(
                        "spec.user",
                        &json!(""),
                        "at least one of user or group must be specified",
                    ));
                }
                let mut spec = spec.clone();
                if kind == "LocalSubjectAccessReview" {
                    let ns = self.namespace.clone().unwrap_or_default();
                    if spec["nonResourceAttributes"].is_object() {
                        causes.push(Cause::invalid(
                            "spec.nonResourceAttributes",
                            &json!(spec["nonResourceAttributes"].to_string()),
                            "disallowed on this kind of request",
                        ));
                    }
                    match spec["resourceAttributes"]["namespace"].as_str() {
                        None | Some("") if spec["resourceAttributes"].is_object() => {
                            spec["resourceAttributes"]["namespace"] = json!(ns);
                        }
                        Some(other) if other != ns => causes.push(Cause::invalid(
                            "spec.resourceAttributes.namespace",
                            &json!(other),
                            "must match metadata.namespace",
                        )),
                        _ => {}
                    }
                }
                if !causes.is_empty() {
                    return Err(self.invalid_review(causes));
                }
                let extra: BTreeMap<String, Vec<String>> = spec["extra"]
                    .as_object()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), strs(v))).collect())
                    .unwrap_or_default();
                let subject = UserInfo {
                    name,
                    uid: spec["uid"].as_str().unwrap_or_default().to_string(),
                    groups,
                    extra,
                };
                let status = self.access_status(&subject, &spec);
                obj["spec"] = spec;
                status
            }
            ("authorization.k8s.io", "SelfSubjectRulesReview") => {
                let ns = spec["namespace"].as_str().unwrap_or_default();
                let policy = Policy::read(&self.srv.store, Some(ns));
                let (rules, errors) = policy.rules_for(&self.user, ns);
                let (resource, non_resource) = rule_lists(&rules);
                let mut status = json!({
                    "resourceRules": resource,
                    "nonResourceRules": non_resource,
                    "incomplete": !errors.is_empty(),
                });
                if !errors.is_empty() {
                    status["evaluationError"] = json!(errors.join(", "));
                }
                status
            }
            ("authentication.k8s.io", "SelfSubjectReview") => {
                json!({"userInfo": self.user.to_json()})
            }
            ("authentication.k8s.io", "TokenReview") => {
                let token = spec["token"].as_str().unwrap_or_default();
                if token.is_empty() {
                    return Err(ApiError::bad_request(
                        "token is required for TokenReview in authentication",
                    ));
                }
                let audiences = strs(&spec["audiences"]);
                match self
                    .srv
                    .auth
                    .review(token, &audiences, &self.srv.store, now_unix())
                {
                    Ok((user, aud)) => json!({
                        "authenticated": true,
                        "user": user.to_json(),
                        "audiences": aud,
                    }),
                    Err(e) => json!({"user": {}, "error": e.to_string()}),
                }
            }
            _ => return Err(ApiError::no_route()),
        };
        obj["status"] = status;
        Ok(value_response(201, &obj))
    }

    /// POST `serviceaccounts/NAME/token`: a TokenRequest.
    pub(super) fn create_token(&self, name: &str, raw: &[u8]) -> Result<Response, ApiError> {
        let parsed = body::decode(raw, &self.content_type())?;
        let mut req = parsed.value;
        match (req["apiVersion"].as_str(), req["kind"].as_str()) {
            (None | Some("authentication.k8s.io/v1"), None | Some("TokenRequest")) => {}
            (av, k) => {
                return Err(ApiError::bad_request(format!(
                    "the API version in the data ({}) does not match the expected API version (authentication.k8s.io/v1)",
                    av.or(k).unwrap_or_default()
                )));
            }
        }
        req["apiVersion"] = json!("authentication.k8s.io/v1");
        req["kind"] = json!("TokenRequest");
        let directive_check = typed_token_request(&mut req);
        if let Err(e) = directive_check {
            return Err(ApiError::bad_request(format!(
                "TokenRequest in version \"v1\" cannot be handled as a TokenRequest: {e}"
            )));
        }
        let namespace = self.namespace.clone().unwrap_or_default();
        let key = ObjKey {
            gr: GroupResource {
                group: String::new(),
                resource: "serviceaccounts".into(),
            },
            namespace: namespace.clone(),
            name: name.to_string(),
        };
        let sa = self
            .srv
            .store
            .get(&key)
            .filter(|e| !e.meta.deleting)
            .ok_or_else(|| ApiError::not_found("", "serviceaccounts", name))?;
        let expiration = req["spec"]["expirationSeconds"].as_i64().unwrap_or(3600);
        let mut causes = Vec::new();
        if expiration < MIN_EXPIRATION {
            causes.push(Cause::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration less than 10 minutes",
            ));
        }
        if expiration > MAX_EXPIRATION {
            causes.push(Cause::invalid(
                "spec.expirationSeconds",
                &json!(expiration),
                "may not specify a duration larger than 2^32 seconds",
            ));
        }
        if !causes.is_empty() {
            return Err(ApiError::invalid(
                "authentication.k8s.io",
                "TokenRequest",
                "",
                causes,
            ));
        }
        let mut audiences = strs(&req["spec"]["audiences"]);
        if audiences.is_empty() {
            audiences = vec![API_AUDIENCE.to_string()];
        }
        let now = now_unix();
        let (token, exp) =
            self.srv
                .auth
                .issue(&namespace, name, &sa.meta.uid, &audiences, expiration, now);
        let expires = humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(exp).unwrap_or(0)),
        )
        .to_string();
        let bound = req["spec"]
            .get("boundObjectRef")
            .cloned()
            .unwrap_or(Value::Null);
        let out = json!({
            "kind": "TokenRequest",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {
                "name": name,
                "namespace": namespace,
                "creationTimestamp": crate::time::now_rfc3339(),
            },
            "spec": {"audiences": audiences, "expirationSeconds": expiration, "boundObjectRef": bound},
            "status": {"token": token, "expirationTimestamp": expires},
        });
        Ok(value_response(201, &out))
    }
}

/// Decodes a TokenRequest body as its Go type does.
fn typed_token_request(req: &mut Value) -> Result<(), crate::typed::DecodeError> {
    match crate::typed::decode("authentication.k8s.io/v1", "TokenRequest", req) {
        Some(Err(e)) => Err(e),
        _ => Ok(()),
    }
}
