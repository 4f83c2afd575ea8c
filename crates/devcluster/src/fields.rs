//! Field management and strategic merge patch, through the pure `rollgit-merge` crate.

use crate::error::{ApiError, Cause};
use crate::resources::ResourceType;
use rollgit_merge::{ApplyError, BuiltinSchema, OpenApiSchema, Schema};
use serde_json::Value;

/// The merge schema of a resource type.
fn schema_of(rt: &ResourceType) -> Box<dyn Schema> {
    if let Some(crd) = &rt.crd {
        return Box::new(CustomResourceSchema(match &crd.schema {
            Some(s) => OpenApiSchema::new(s.clone()),
            None => OpenApiSchema::unknown(),
        }));
    }
    match BuiltinSchema::for_kind(&rt.api_version(), &rt.kind) {
        Some(s) => Box::new(s),
        None => Box::new(OpenApiSchema::unknown()),
    }
}

/// A custom resource's schema: as its OpenAPI schema says, and a map or list that server-side
/// apply empties becomes `null` (structured-merge-diff as Kubernetes 1.33 runs it), which the
/// schema's validation then refuses where the field is typed.
struct CustomResourceSchema(OpenApiSchema);

impl Schema for CustomResourceSchema {
    fn field(&self, path: &[&str]) -> rollgit_merge::FieldInfo {
        self.0.field(path)
    }

    fn supports_strategic_merge(&self) -> bool {
        self.0.supports_strategic_merge()
    }

    fn emptied_becomes_null(&self) -> bool {
        true
    }
}

/// The key fields of the list at `path` (field names from the root) when server-side apply
/// treats it as a `listType=map`; empty otherwise.
pub fn list_keys(rt: &ResourceType, path: &[&str]) -> Vec<String> {
    match schema_of(rt).list_type(path) {
        rollgit_merge::ListType::Map { keys } => keys,
        _ => Vec::new(),
    }
}

/// Records a non-apply write (create, update, patch) in `metadata.managedFields`.
pub fn record_update(
    old: Option<&Value>,
    new: Value,
    manager: &str,
    subresource: Option<&str>,
    rt: &ResourceType,
    now: &str,
) -> Result<Value, ApiError> {
    let schema = schema_of(rt);
    Ok(rollgit_merge::update(
        old,
        &new,
        manager,
        subresource,
        schema.as_ref(),
        now,
    ))
}

/// Server-side apply of `applied` onto `live`.
pub fn server_side_apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    rt: &ResourceType,
    now: &str,
) -> Result<Value, ApiError> {
    let schema = schema_of(rt);
    let name = applied["metadata"]["name"].as_str().unwrap_or_default();
    rollgit_merge::apply(
        live,
        applied,
        manager,
        force,
        subresource,
        schema.as_ref(),
        now,
    )
    .map_err(|e| match e {
        ApplyError::Conflicts(conflicts) => {
            let message = rollgit_merge::ssa::conflict_message(&conflicts);
            let causes = conflicts
                .iter()
                .map(|c| Cause {
                    reason: "FieldManagerConflict".into(),
                    message: c.cause_message(),
                    field: c.field.clone(),
                })
                .collect();
            ApiError::apply_conflict(&rt.group, &rt.plural, name, message, causes)
        }
        ApplyError::Invalid(m) => ApiError::invalid(
            &rt.group,
            &rt.kind,
            name,
            vec![Cause {
                reason: "FieldValueInvalid".into(),
                message: m.to_string(),
                field: String::new(),
            }],
        ),
    })
}

/// Applies a strategic merge patch.
pub fn strategic_patch(
    original: &Value,
    patch: &Value,
    rt: &ResourceType,
) -> Result<Value, ApiError> {
    let schema = schema_of(rt);
    rollgit_merge::strategic_merge(original, patch, schema.as_ref()).map_err(|e| match e {
        rollgit_merge::MergeError::StrategicMergeUnsupported => {
            ApiError::unsupported_media_type("application/strategic-merge-patch+json")
        }
        other => ApiError::bad_request(other.to_string()),
    })
}
