//! PATCH: JSON patch, merge patch, strategic merge patch, and server-side apply (field
//! managers, conflicts, `force`).

use super::query::manager_of;
use super::{Ctx, decode_body};
use crate::error::{ApiError, Cause};
use crate::fields;
use crate::store::Change;
use crate::time::now_rfc3339;
use axum::response::Response;
use serde_json::{Value, json};

impl Ctx {
    pub(super) fn patch(&self, name: &str, body: &[u8]) -> Result<Response, ApiError> {
        let ct = self.content_type();
        let manager = manager_of(&self.query, &self.headers)?;
        if body.is_empty() {
            return Err(ApiError::bad_request("the patch body is empty"));
        }
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
        let kind = if ct.starts_with("application/json-patch+json") {
            let p: json_patch::Patch = serde_json::from_slice(body)
                .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?;
            Kind::Json(p)
        } else if ct.starts_with("application/merge-patch+json") {
            Kind::Merge(
                serde_json::from_slice(body)
                    .map_err(|e| ApiError::bad_request(format!("invalid merge patch: {e}")))?,
            )
        } else if ct.starts_with("application/strategic-merge-patch+json") {
            if self.rt.crd.is_some() {
                return Err(ApiError::unsupported_media_type(&ct));
            }
            Kind::Strategic(serde_json::from_slice(body).map_err(|e| {
                ApiError::bad_request(format!("invalid strategic merge patch: {e}"))
            })?)
        } else {
            return Err(ApiError::unsupported_media_type(&ct));
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
                let patched = apply_patch(scale)?;
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
                    let merged = fields::server_side_apply(
                        None, &applied, manager, force, None, &self.rt, &now,
                    )?;
                    let obj = self.prepare_create(merged, manager, true)?;
                    Ok(Change::Put(obj))
                }
                Some(cur) => {
                    let live = self.present_value(cur);
                    let merged = fields::server_side_apply(
                        Some(&live),
                        &applied,
                        manager,
                        force,
                        sub.as_deref(),
                        &self.rt,
                        &now,
                    )?;
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
}
