//! Pure Kubernetes object merging for the rollgit dev cluster:
//!
//! - [`schema`]: how lists and maps merge ([`BuiltinSchema`] for built-in kinds,
//!   [`OpenApiSchema`] for custom resources);
//! - [`strategic_merge`]: strategic merge patch with its `$patch`,
//!   `$retainKeys`, `$deleteFromPrimitiveList/` and `$setElementOrder/` directives;
//! - [`apply`] and [`update`]: server-side apply field management with the real
//!   `metadata.managedFields` wire format.
//!
//! Every function is pure: values in, values out.

pub mod fieldpath;
pub mod managed;
pub mod schema;
pub mod smp;
pub mod ssa;

pub use fieldpath::{FieldPath, FieldSet, PathElement};
pub use managed::{ManagedFieldsEntry, Operation, decode_managed_fields, encode_managed_fields};
pub use schema::{BuiltinSchema, FieldInfo, ListType, OpenApiSchema, PatchStrategy, Schema};
pub use smp::strategic_merge;
pub use ssa::{ApplyError, Conflict, apply, fieldset_of, update};

/// Errors of strategic merge patch and of reading objects and field sets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MergeError {
    /// A value has the wrong JSON type (e.g. a patch that is not an object).
    #[error("{path}: {message}")]
    WrongType {
        /// Dotted path of the value.
        path: String,
        /// What was expected.
        message: String,
    },
    /// An element of a merge-keyed list lacks its merge key.
    #[error("{path}: map: {element} does not contain declared merge key: {key}")]
    MissingMergeKey {
        /// Dotted path of the list.
        path: String,
        /// The offending element, as JSON.
        element: String,
        /// The merge key.
        key: String,
    },
    /// An item of a `listType=map` list omits a key field that has no default.
    #[error(
        "{path}: associative list with keys has an element that omits key field {key:?} (and doesn't have default value)"
    )]
    MissingListKey {
        /// Dotted path of the list.
        path: String,
        /// The missing key field.
        key: String,
    },
    /// Two items of a `listType=map`/`set` list have the same key.
    #[error("{path}: duplicate entries for key {key}")]
    DuplicateKey {
        /// Dotted path of the list.
        path: String,
        /// The duplicated key (as shown in field paths).
        key: String,
    },
    /// A `listType=set` item is not a scalar.
    #[error("{path}: {message}")]
    InvalidSetItem {
        /// Dotted path of the list.
        path: String,
        /// Explanation.
        message: String,
    },
    /// A bad `$patch`, `$retainKeys`, `$setElementOrder` or `$deleteFromPrimitiveList` directive.
    #[error("{path}: {message}")]
    InvalidDirective {
        /// Dotted path where the directive appears.
        path: String,
        /// Explanation.
        message: String,
    },
    /// The kind does not support strategic merge patch (custom resources).
    #[error("strategic merge patch is not supported for this kind")]
    StrategicMergeUnsupported,
    /// `metadata.managedFields` or a `fieldsV1` value is malformed.
    #[error("invalid managedFields: {0}")]
    InvalidFieldsV1(String),
}

/// Joins path segments as `.a.b.c` for error messages.
pub(crate) fn dotted(path: &[&str]) -> String {
    let mut s = String::new();
    for p in path {
        s.push('.');
        s.push_str(p);
    }
    if s.is_empty() {
        s.push('.');
    }
    s
}
