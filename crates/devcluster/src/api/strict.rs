//! Decoding a request's object as kube-apiserver does before anything else sees it: built-in
//! kinds through their Go types ([`crate::typed`]), custom resources through their structural
//! schema ([`crate::schema`]), and `fieldValidation` deciding what unknown and duplicate fields
//! become: an error (`Strict`), a `Warning` header (`Warn`, the default) or nothing (`Ignore`).

use super::Ctx;
use super::query::FieldValidation;
use crate::error::{ApiError, Cause};
use crate::typed::{self, DecodeError, Mode, Seg, go_json, go_map_text};
use serde_json::Value;

/// How a patch's result is shown in its `Invalid` error (`patch: Invalid value: "..."`).
pub(super) enum Shown {
    /// The patched object as Go's `json.Marshal` writes it (JSON and merge patches).
    PatchedJson,
    /// The patch as Go prints a map with `%+v` (strategic merge patches).
    PatchMap(Value),
}

impl Ctx {
    /// Adds a `Warning` to the response.
    pub(super) fn warn(&self, text: impl Into<String>) {
        let text = text.into();
        let mut w = self.warnings.lock().unwrap_or_else(|p| p.into_inner());
        if !w.contains(&text) {
            w.push(text);
        }
    }

    /// The `apiVersion` and `kind` a request body of this request decodes into.
    fn body_type(&self) -> (String, String) {
        if self.sub.as_deref() == Some("scale") {
            return ("autoscaling/v1".into(), "Scale".into());
        }
        (self.rt.api_version(), self.rt.kind.clone())
    }

    /// Decodes `obj` in place (unknown fields and nulls dropped, schema defaults applied to
    /// custom resources): the unknown fields, or the decoding error's text.
    fn decode_in_place(&self, obj: &mut Value, mode: Mode) -> Result<Vec<Vec<Seg>>, DecodeError> {
        let (api_version, kind) = self.body_type();
        if let Some(r) = typed::decode_with(&api_version, &kind, obj, mode) {
            return r;
        }
        match &self.rt.crd {
            Some(crd) => crate::schema::coerce(crd.schema.as_ref(), obj),
            None => Ok(Vec::new()),
        }
    }

    /// Decodes an object the server itself produced (server-side apply's result): nulls dropped,
    /// a custom resource pruned and defaulted; unknown fields are not reported.
    pub(super) fn decode_normalized(&self, obj: &mut Value) -> Result<(), ApiError> {
        self.decode_in_place(obj, Mode::Json)
            .map(drop)
            .map_err(|e| ApiError::unknown(500, e.to_string()))
    }

    /// Applies `fieldValidation` to strict decoding errors: an error made by `fail` from the
    /// `strict decoding error: ...` text, warnings, or nothing.
    fn strict_errors(
        &self,
        directive: FieldValidation,
        errors: Vec<String>,
        fail: impl FnOnce(String) -> ApiError,
    ) -> Result<(), ApiError> {
        if errors.is_empty() {
            return Ok(());
        }
        match directive {
            FieldValidation::Ignore => Ok(()),
            FieldValidation::Warn => {
                for e in errors {
                    self.warn(e);
                }
                Ok(())
            }
            FieldValidation::Strict => Err(fail(format!(
                "strict decoding error: {}",
                errors.join(", ")
            ))),
        }
    }

    /// Decodes the object of a create or update body (`options`: `CreateOptions` or
    /// `UpdateOptions`, for an invalid `fieldValidation`): 400 `<Kind> in version "v1" cannot
    /// be handled as a <Kind>: ...` for a value its type cannot hold, and for unknown or
    /// duplicate fields under `fieldValidation=Strict`.
    pub(super) fn decode_request_object(
        &self,
        obj: &mut Value,
        duplicates: Vec<String>,
        options: &str,
    ) -> Result<(), ApiError> {
        let directive = self.query.field_validation(options)?;
        let (api_version, kind) = self.body_type();
        let version = api_version
            .rsplit_once('/')
            .map_or(api_version.as_str(), |(_, v)| v)
            .to_string();
        let cannot = |text: String| {
            ApiError::bad_request(format!(
                "{kind} in version {version:?} cannot be handled as a {kind}: {text}"
            ))
        };
        let unknown = self
            .decode_in_place(obj, Mode::Json)
            .map_err(|e| cannot(e.to_string()))?;
        let mut errors = duplicates;
        errors.extend(
            unknown
                .iter()
                .map(|p| format!("unknown field {}", typed::go_quote(&typed::strict_path(p)))),
        );
        self.strict_errors(directive, errors, cannot)
    }

    /// Decodes the result of a JSON, merge or strategic merge patch. Errors are 422 with the
    /// cause `patch: Invalid value: "<shown>": <error>`, as kube-apiserver's patch handler
    /// reports them; `patch_errors` are the strict errors of the patch document itself.
    pub(super) fn decode_patched(
        &self,
        patched: &mut Value,
        patch_errors: Vec<String>,
        shown: &Shown,
    ) -> Result<(), ApiError> {
        let directive = self.query.field_validation("PatchOptions")?;
        let mode = match shown {
            Shown::PatchedJson => Mode::Json,
            Shown::PatchMap(_) => Mode::Unstructured,
        };
        let text = |patched: &Value| match shown {
            Shown::PatchedJson => go_json(patched),
            Shown::PatchMap(p) => go_map_text(p),
        };
        let invalid = |value: String, detail: String| {
            ApiError::invalid(
                "",
                "",
                "",
                vec![Cause::invalid("patch", &Value::String(value), &detail)],
            )
        };
        let before = matches!(shown, Shown::PatchedJson).then(|| text(patched));
        let unknown = match self.decode_in_place(patched, mode) {
            Ok(u) => u,
            Err(e) => {
                let value = before.unwrap_or_else(|| text(patched));
                return Err(invalid(value, e.to_string()));
            }
        };
        let mut errors = patch_errors;
        errors.extend(
            unknown
                .iter()
                .map(|p| format!("unknown field {}", typed::go_quote(&typed::strict_path(p)))),
        );
        let value = before.unwrap_or_else(|| text(patched));
        self.strict_errors(directive, errors, |msg| invalid(value, msg))
    }
}
