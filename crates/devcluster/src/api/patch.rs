//! PATCH: JSON patch, merge patch, strategic merge patch, and server-side apply (field
//! managers, conflicts, `force`). The patched object is decoded as kube-apiserver decodes it
//! (unknown fields per `fieldValidation`, type errors as 422 `patch: Invalid value`); an
//! applied configuration is checked as structured-merge-diff checks it.

use super::body;
use super::query::{FieldValidation, manager_of};
use super::strict::Shown;
use super::{Ctx, decode_body};
use crate::error::{ApiError, Cause};
use crate::fields;
use crate::store::Change;
use crate::time::now_rfc3339;
use crate::typed;
use axum::response::Response;
use serde_json::{Value, json};

/// The fields of one JSON patch operation (`jsonPatchOp`).
const JSON_PATCH_FIELDS: [&str; 4] = ["op", "path", "from", "value"];

impl Ctx {
    pub(super) fn patch(&self, name: &str, body: &[u8]) -> Result<Response, ApiError> {
        let ct = self.content_type();
        let manager = manager_of(&self.query, &self.headers)?;
        if body.is_empty() {
            return Err(ApiError::bad_request("the patch body is empty"));
        }
        let directive = self.query.field_validation("PatchOptions")?;
        if ct.starts_with("application/apply-patch") {
            if self.query.get("fieldManager").is_none() {
                return Err(ApiError::bad_request(
                    "PATCH requests with apply content type must supply fieldManager",
                ));
            }
            let applied = decode_body(body, "application/yaml")?;
            return self.server_side_apply(name, applied, &manager);
        }
        enum Kind {
            Json(json_patch::Patch),
            Merge(Value),
            Strategic(Value),
        }
        let strict = directive != FieldValidation::Ignore;
        let parse = |what: &str| -> Result<body::Parsed, ApiError> {
            body::parse_json(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding patch: {what}{e}")))
        };
        let mut patch_errors = Vec::new();
        let kind = if ct.starts_with("application/json-patch+json") {
            let parsed = parse("")?;
            if strict {
                patch_errors.extend(parsed.duplicates.iter().map(|d| format!("json patch {d}")));
                for (i, op) in parsed.value.as_array().into_iter().flatten().enumerate() {
                    for key in op.as_object().into_iter().flat_map(|o| o.keys()) {
                        if !JSON_PATCH_FIELDS.contains(&key.as_str()) {
                            patch_errors.push(format!(
                                "json patch unknown field {}",
                                typed::go_quote(&format!("[{i}].{key}"))
                            ));
                        }
                    }
                }
            }
            let p: json_patch::Patch = serde_json::from_value(parsed.value)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            Kind::Json(p)
        } else if ct.starts_with("application/merge-patch+json") {
            let parsed = parse("")?;
            if strict {
                patch_errors.extend(parsed.duplicates);
            }
            Kind::Merge(parsed.value)
        } else if ct.starts_with("application/strategic-merge-patch+json") {
            if self.rt.crd.is_some() {
                return Err(ApiError::unsupported_media_type(&ct));
            }
            let parsed = parse("")?;
            if strict {
                patch_errors.extend(parsed.duplicates);
            }
            if !parsed.value.is_object() {
                return Err(ApiError::bad_request(
                    "invalid strategic merge patch: the patch is not a JSON object",
                ));
            }
            Kind::Strategic(parsed.value)
        } else {
            return Err(ApiError::unsupported_media_type(&ct));
        };
        let shown = match &kind {
            Kind::Strategic(p) => Shown::PatchMap(p.clone()),
            _ => Shown::PatchedJson,
        };
        let apply_patch = |mut doc: Value| -> Result<Value, ApiError> {
            match &kind {
                Kind::Json(p) => {
                    json_patch::patch(&mut doc, p).map_err(|e| {
                        ApiError::invalid(
                            &self.rt.group,
                            &self.rt.kind,
                            name,
                            vec![Cause {
                                reason: "FieldValueInvalid".into(),
                                message: format!("the JSON patch could not be applied: {e}"),
                                field: String::new(),
                            }],
                        )
                    })?;
                    Ok(doc)
                }
                Kind::Merge(p) => {
                    json_patch::merge(&mut doc, p);
                    Ok(doc)
                }
                Kind::Strategic(p) => fields::strategic_patch(&doc, p, &self.rt),
            }
        };
        if self.sub.as_deref() == Some("scale") {
            return self.update_scale(name, &manager, |scale| {
                let mut patched = apply_patch(scale)?;
                self.decode_patched(&mut patched, patch_errors.clone(), &shown)?;
                Ok(patched)
            });
        }
        self.commit_update(name, false, |cur| {
            let Some(cur) = cur else { return Ok(None) };
            let doc = self.present_value(cur);
            let mut patched = apply_patch(doc)?;
            if !patched.is_object() {
                return Err(ApiError::bad_request("the patch result is not an object"));
            }
            self.decode_patched(&mut patched, patch_errors.clone(), &shown)?;
            self.check_identity(&mut patched)?;
            if patched["metadata"]["name"].as_str() != Some(name) {
                return Err(ApiError::invalid(
                    &self.rt.group,
                    &self.rt.kind,
                    name,
                    vec![Cause::invalid(
                        "metadata.name",
                        &patched["metadata"]["name"],
                        "field is immutable",
                    )],
                ));
            }
            self.finish_update(cur, patched, &manager, true).map(Some)
        })
    }

    /// What server-side apply's typed conversion rejects in an applied configuration: 500
    /// `failed to create typed patch object (ns/name; group/version, Kind=Kind): ...`.
    fn check_applied(&self, applied: &Value) -> Result<(), ApiError> {
        let errors = match &self.rt.crd {
            None => {
                let keys = |path: &[&str]| fields::list_keys(&self.rt, path);
                typed::apply_errors(&self.rt.api_version(), &self.rt.kind, applied, &keys)
                    .unwrap_or_default()
            }
            Some(crd) => match &crd.schema {
                Some(schema) => crate::schema::apply_errors(applied, schema),
                None => Vec::new(),
            },
        };
        if errors.is_empty() {
            return Ok(());
        }
        let meta = &applied["metadata"];
        let namespace = meta["namespace"].as_str().unwrap_or_default();
        let name = meta["name"].as_str().unwrap_or_default();
        let gv = if self.rt.group.is_empty() {
            format!("/{}", self.rt.version)
        } else {
            self.rt.api_version()
        };
        let text = match errors.as_slice() {
            [one] => one.clone(),
            many => {
                let mut lines = vec!["errors:".to_string()];
                lines.extend(many.iter().map(|e| format!("  {e}")));
                lines.join("\n")
            }
        };
        Err(ApiError::unknown(
            500,
            format!(
                "failed to create typed patch object ({namespace}/{name}; {gv}, Kind={}): {text}",
                self.rt.kind
            ),
        ))
    }

    fn server_side_apply(
        &self,
        name: &str,
        mut applied: Value,
        manager: &str,
    ) -> Result<Response, ApiError> {
        if self.sub.as_deref() == Some("scale") {
            return Err(ApiError::unsupported_media_type(
                "application/apply-patch+yaml",
            ));
        }
        self.check_applied(&applied)?;
        self.check_identity(&mut applied)?;
        match applied["metadata"]["name"].as_str() {
            Some(n) if n == name => {}
            None | Some("") => applied["metadata"]["name"] = json!(name),
            Some(n) => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({n}) does not match the name on the URL ({name})"
                )));
            }
        }
        let force = self.query.flag("force");
        let now = now_rfc3339();
        let sub = self.sub.clone();
        let dry = self.query.dry_run()?;
        let (g, p) = self.gr_name();
        // Creation needs the namespace admission check, which reads the store: do it before
        // taking the store's write lock (reading inside `write` would deadlock), and use its
        // answer only if the object turns out not to exist.
        let admitted = if self.rt.namespaced {
            self.namespace_admits(self.namespace.as_deref().unwrap_or_default())
        } else {
            Ok(())
        };
        let written = self
            .srv
            .store
            .write_optimistic(&self.key(name), dry, |cur| match cur {
                None => {
                    if sub.is_some() {
                        return Err(ApiError::not_found(g, p, name));
                    }
                    admitted.clone()?;
                    let mut merged = fields::server_side_apply(
                        None, &applied, manager, force, None, &self.rt, &now,
                    )?;
                    self.normalize_merged(&mut merged)?;
                    let obj = self.prepare_create(merged, manager, true)?;
                    Ok(Change::Put(obj))
                }
                Some(cur) => {
                    let live = self.present_value(cur);
                    let mut merged = fields::server_side_apply(
                        Some(&live),
                        &applied,
                        manager,
                        force,
                        sub.as_deref(),
                        &self.rt,
                        &now,
                    )?;
                    self.normalize_merged(&mut merged)?;
                    self.finish_update(cur, merged, manager, false)
                }
            })?;
        let e = written
            .entry
            .ok_or_else(|| ApiError::not_found(g, p, name))?;
        if !dry {
            self.after_write(&e, written.deleted);
        }
        self.respond_entry(if written.created { 201 } else { 200 }, &e)
    }

    /// The object server-side apply produced, as the Go type holds it (nulls dropped) or, for a
    /// custom resource, pruned and defaulted by its schema. A custom resource's `null` that
    /// the merge left in a typed field (a map it emptied) is refused first, as kube-apiserver
    /// validates the merged object without decoding it again: 422 `spec.x: Invalid value:
    /// "null": spec.x in body must be of type object: "null"`.
    fn normalize_merged(&self, merged: &mut Value) -> Result<(), ApiError> {
        if let Some(schema) = self.rt.crd.as_ref().and_then(|c| c.schema.as_ref()) {
            let nulls: Vec<Cause> = crate::schema::validate(merged, schema)
                .into_iter()
                .filter(|c| c.message.starts_with("Invalid value: \"null\""))
                .collect();
            if !nulls.is_empty() {
                let name = merged["metadata"]["name"].as_str().unwrap_or_default();
                return Err(ApiError::invalid(
                    &self.rt.group,
                    &self.rt.kind,
                    name,
                    nulls,
                ));
            }
        }
        self.decode_normalized(merged)
    }
}
