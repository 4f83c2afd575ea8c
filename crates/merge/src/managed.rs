//! `metadata.managedFields`: decoding into per-manager field sets and encoding back.

use std::fmt;

use serde_json::{Map, Value};

use crate::MergeError;
use crate::fieldpath::FieldSet;

/// The operation of a managedFields entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Server-side apply (`"Apply"`).
    Apply,
    /// Any other write: create, update, patch (`"Update"`).
    Update,
}

impl Operation {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Apply => "Apply",
            Operation::Update => "Update",
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of `metadata.managedFields`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManagedFieldsEntry {
    /// The field manager name.
    pub manager: String,
    /// Apply or Update.
    pub operation: Operation,
    /// The apiVersion the fields were written with.
    pub api_version: String,
    /// RFC 3339 time of the last change by this manager.
    pub time: Option<String>,
    /// The subresource written to (`status`, `scale`), if any.
    pub subresource: Option<String>,
    /// The owned fields.
    pub fields: FieldSet,
}

impl ManagedFieldsEntry {
    /// Whether two entries are the same manager in the API server's sense:
    /// same name, operation and subresource, and for Update also the same apiVersion.
    pub fn same_manager(&self, other: &ManagedFieldsEntry) -> bool {
        self.manager == other.manager
            && self.operation == other.operation
            && self.subresource == other.subresource
            && (self.operation == Operation::Apply || self.api_version == other.api_version)
    }

    /// The API server's manager identifier: the JSON of the entry without
    /// fieldsType, fieldsV1 and time (and without apiVersion for appliers).
    /// Conflict messages are ordered by it.
    pub fn identifier(&self) -> String {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        if self.operation == Operation::Update && !self.api_version.is_empty() {
            m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        }
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        Value::Object(m).to_string()
    }

    /// How the API server names this manager in conflict messages:
    /// `"kubectl"`, `"kubectl" with subresource "scale"`, `"x" using apps/v1`.
    pub fn display_name(&self) -> String {
        let mut s = format!("{:?}", self.manager);
        if let Some(sub) = &self.subresource {
            s.push_str(&format!(" with subresource {sub:?}"));
        }
        if self.operation == Operation::Update {
            s.push_str(&format!(" using {}", self.api_version));
        }
        s
    }

    /// Encodes this entry in the wire format.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("manager".into(), Value::String(self.manager.clone()));
        m.insert(
            "operation".into(),
            Value::String(self.operation.as_str().into()),
        );
        m.insert("apiVersion".into(), Value::String(self.api_version.clone()));
        if let Some(t) = &self.time {
            m.insert("time".into(), Value::String(t.clone()));
        }
        m.insert("fieldsType".into(), Value::String("FieldsV1".into()));
        m.insert("fieldsV1".into(), self.fields.to_fields_v1());
        if let Some(s) = &self.subresource {
            m.insert("subresource".into(), Value::String(s.clone()));
        }
        Value::Object(m)
    }
}

fn bad(msg: impl Into<String>) -> MergeError {
    MergeError::InvalidFieldsV1(msg.into())
}

/// Decodes a `metadata.managedFields` array (`null` or absent: no entries).
pub fn decode_managed_fields(
    managed_fields: &Value,
) -> Result<Vec<ManagedFieldsEntry>, MergeError> {
    let list = match managed_fields {
        Value::Null => return Ok(Vec::new()),
        Value::Array(l) => l,
        _ => return Err(bad("managedFields must be a list")),
    };
    let mut out: Vec<ManagedFieldsEntry> = Vec::with_capacity(list.len());
    for (i, e) in list.iter().enumerate() {
        let Value::Object(m) = e else {
            return Err(bad(format!("entry {i} must be an object")));
        };
        let s = |k: &str| -> Result<Option<String>, MergeError> {
            match m.get(k) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(bad(format!("entry {i}: {k} must be a string"))),
            }
        };
        let manager = s("manager")?.unwrap_or_default();
        let operation = match s("operation")?.as_deref() {
            Some("Apply") => Operation::Apply,
            Some("Update") => Operation::Update,
            other => {
                return Err(bad(format!(
                    "entry {i}: operation must be Apply or Update, got {other:?}"
                )));
            }
        };
        match s("fieldsType")?.as_deref() {
            None | Some("FieldsV1") => {}
            Some(t) => return Err(bad(format!("entry {i}: unsupported fieldsType {t:?}"))),
        }
        let fields = match m.get("fieldsV1") {
            None | Some(Value::Null) => FieldSet::new(),
            Some(v) => FieldSet::from_fields_v1(v)?,
        };
        let entry = ManagedFieldsEntry {
            manager,
            operation,
            api_version: s("apiVersion")?.unwrap_or_default(),
            time: s("time")?,
            subresource: s("subresource")?.filter(|s| !s.is_empty()),
            fields,
        };
        if out.iter().any(|o| o.same_manager(&entry)) {
            return Err(bad(format!(
                "duplicate entries for manager {}",
                entry.identifier()
            )));
        }
        out.push(entry);
    }
    Ok(out)
}

/// Encodes entries as a `metadata.managedFields` array, dropping empty ones
/// and sorting like the API server (operation, time, manager, apiVersion, subresource).
pub fn encode_managed_fields(entries: &[ManagedFieldsEntry]) -> Value {
    let mut es: Vec<&ManagedFieldsEntry> =
        entries.iter().filter(|e| !e.fields.is_empty()).collect();
    es.sort_by(|a, b| {
        a.operation
            .cmp(&b.operation)
            .then_with(|| a.time.cmp(&b.time))
            .then_with(|| a.manager.cmp(&b.manager))
            .then_with(|| a.api_version.cmp(&b.api_version))
            .then_with(|| a.subresource.cmp(&b.subresource))
    });
    Value::Array(es.into_iter().map(ManagedFieldsEntry::to_json).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn round_trip_and_sorting() {
        let wire = json!([
            {"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1", "time": "2024-01-01T00:00:00Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}},
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "apps/v1", "time": "2024-01-01T00:00:01Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:replicas": {}}}, "subresource": "status"},
            {"manager": "kubectl-scale", "operation": "Update", "apiVersion": "apps/v1", "time": "2024-01-01T00:00:02Z",
             "fieldsType": "FieldsV1", "fieldsV1": {"f:spec": {"f:replicas": {}}}, "subresource": "scale"}
        ]);
        let entries = decode_managed_fields(&wire).expect("decode");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[1].subresource.as_deref(), Some("status"));
        assert_eq!(encode_managed_fields(&entries), wire);
        let mut reversed = entries.clone();
        reversed.reverse();
        assert_eq!(encode_managed_fields(&reversed), wire);
    }

    #[test]
    fn display_names() {
        let e = |m: &str, op, sub: Option<&str>| ManagedFieldsEntry {
            manager: m.into(),
            operation: op,
            api_version: "apps/v1".into(),
            time: None,
            subresource: sub.map(str::to_string),
            fields: FieldSet::new(),
        };
        assert_eq!(
            e("kubectl", Operation::Apply, None).display_name(),
            "\"kubectl\""
        );
        assert_eq!(
            e("kubectl-client-side-apply", Operation::Update, None).display_name(),
            "\"kubectl-client-side-apply\" using apps/v1"
        );
        assert_eq!(
            e("kubectl", Operation::Update, Some("scale")).display_name(),
            "\"kubectl\" with subresource \"scale\" using apps/v1"
        );
        assert_eq!(
            e("kubectl", Operation::Update, None).identifier(),
            r#"{"manager":"kubectl","operation":"Update","apiVersion":"apps/v1"}"#
        );
    }

    #[test]
    fn invalid_entries() {
        for bad in [
            json!({}),
            json!([1]),
            json!([{"manager": "a", "operation": "Patch"}]),
            json!([{"manager": "a", "operation": "Apply", "fieldsType": "FieldsV2"}]),
            json!([{"manager": "a", "operation": "Apply"}, {"manager": "a", "operation": "Apply"}]),
        ] {
            assert!(decode_managed_fields(&bad).is_err(), "{bad}");
        }
        assert!(
            decode_managed_fields(&Value::Null)
                .expect("null")
                .is_empty()
        );
    }
}
