//! The plan stage's pure half: spec hashes, component revisions and publishVersion.
//!
//! # Component revisions (KubeVela, ROLLOUT-SEMANTICS.md C.5)
//!
//! Each component's rendered workload is hashed ([`spec_hash`]: sha256 over canonical JSON,
//! keys sorted). Given the revisions that already exist for the component (the daemon reads
//! them from the ControllerRevisions labelled `controller.oam.dev/component=<component>`, see
//! [`existing_revision_from_object`]):
//!
//! | case | result |
//! |---|---|
//! | no `externalRevision`, an existing revision has the same hash | reuse it (highest number wins) |
//! | no `externalRevision`, no match | new `<component>-v<N>`, N = max existing + 1 (1 when none) |
//! | `externalRevision: X`, X exists with the same hash | reuse X |
//! | `externalRevision: X`, X exists with another hash | error naming the component |
//! | `externalRevision: X`, X does not exist | new revision named X; its number is the `-v<N>` / last `-` segment of X when that number is free, else max + 1 |
//!
//! # Application revisions
//!
//! KubeVela names app revisions `<application>-v<N>`. rollgit's app revision is the map
//! component name → component revision name of every component of the Application that has a
//! revision ([`plan_app_revision`]); its hash is the [`spec_hash`] of that map. An existing app
//! revision with the same hash is reused (highest number wins), else `<application>-v<N>` is
//! created, N = max existing + 1. It is stored as a ControllerRevision labelled
//! `app.oam.dev/name` and `rollgit.dev/app-revision: "true"` (no `controller.oam.dev/component`
//! label: [`existing_revision_from_object`] ignores it, [`existing_app_revision_from_object`]
//! reads it back).
//!
//! # publishVersion
//!
//! `app.oam.dev/publishVersion` changes exactly when the app's content hash changes (see
//! [`next_publish_version`]). An explicit annotation on the `Application` in Git wins.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

/// Label on ControllerRevisions naming their component (as KubeVela).
pub const COMPONENT_LABEL: &str = "controller.oam.dev/component";
/// Label naming the (KubeVela) application.
pub const APP_NAME_LABEL: &str = "app.oam.dev/name";
/// Label naming the component on workloads and pods.
pub const APP_COMPONENT_LABEL: &str = "app.oam.dev/component";
/// The publish version annotation.
pub const PUBLISH_VERSION_ANNOTATION: &str = "app.oam.dev/publishVersion";
/// Annotation on ControllerRevisions holding the spec hash of `data`.
pub const SPEC_HASH_ANNOTATION: &str = "rollgit.dev/spec-hash";
/// Label (value `"true"`) on the ControllerRevisions that hold application revisions.
pub const APP_REVISION_LABEL: &str = "rollgit.dev/app-revision";

/// Writes `v` as JSON with object keys sorted, no whitespace: the input of every hash.
pub fn canonical_json(v: &Value) -> String {
    let mut out = String::new();
    write_canonical(v, &mut out);
    out
}

/// Appends the canonical JSON of `v` ([`canonical_json`]) to `out`.
pub fn write_canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => write_canonical_object(map, out, |_| false),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        Value::String(s) => write_json_string(s, out),
        Value::Number(n) => {
            use std::fmt::Write as _;
            let _ = write!(out, "{n}");
        }
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Null => out.push_str("null"),
    }
}

/// Appends the canonical JSON of the object `map` to `out`, without the keys `skip` names
/// (values are written by [`write_canonical`]).
pub fn write_canonical_object(
    map: &serde_json::Map<String, Value>,
    out: &mut String,
    skip: impl Fn(&str) -> bool,
) {
    let mut keys: Vec<&String> = map.keys().filter(|k| !skip(k)).collect();
    keys.sort_unstable();
    out.push('{');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(k, out);
        out.push(':');
        if let Some(child) = map.get(*k) {
            write_canonical(child, out);
        }
    }
    out.push('}');
}

/// Appends `s` as a JSON string, escaped exactly as serde_json escapes it.
pub fn write_json_string(s: &str, out: &mut String) {
    if s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.push_str(&Value::String(s.to_owned()).to_string());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Lower-case hex sha256 of the canonical JSON of `v`.
pub fn spec_hash(v: &Value) -> String {
    hex_sha256(canonical_json(v).as_bytes())
}

/// sha256 of `bytes`, lower-case hex.
pub fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A component revision that exists in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingRevision {
    /// ControllerRevision name (`express-server-v1`).
    pub name: String,
    /// Its `revision` field.
    pub number: u64,
    /// Its spec hash (annotation `rollgit.dev/spec-hash`, or the hash of its `data`).
    pub hash: String,
}

/// An application revision that exists in the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingAppRevision {
    /// ControllerRevision name (`test-rolling-v1`).
    pub name: String,
    /// Its `revision` field.
    pub number: u64,
    /// Its hash (annotation `rollgit.dev/spec-hash`, or the hash of `data.components`).
    pub hash: String,
    /// Component name → component revision name (`data.components`).
    pub components: BTreeMap<String, String>,
}

/// What the cluster already holds for an app: revisions per component and per Application,
/// and the last publishVersion with the content hash it was given for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RevisionState {
    /// Component name → its existing revisions, any order.
    pub components: BTreeMap<String, Vec<ExistingRevision>>,
    /// Application name → its existing app revisions, any order.
    pub applications: BTreeMap<String, Vec<ExistingAppRevision>>,
    /// The last `(publishVersion, content_hash)` recorded for the app.
    pub publish: Option<(String, String)>,
}

impl RevisionState {
    /// Adds an existing revision of `component`.
    pub fn push(&mut self, component: &str, revision: ExistingRevision) {
        self.components
            .entry(component.to_owned())
            .or_default()
            .push(revision);
    }

    /// Adds an existing app revision of the Application `application`.
    pub fn push_app(&mut self, application: &str, revision: ExistingAppRevision) {
        self.applications
            .entry(application.to_owned())
            .or_default()
            .push(revision);
    }
}

/// The revision decided for one component.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ComponentRevision {
    /// Component name.
    pub component: String,
    /// The KubeVela Application the component belongs to.
    pub application: String,
    /// Revision name: `externalRevision`, or `<component>-v<N>`.
    pub name: String,
    /// Revision number (the ControllerRevision's `revision`).
    pub number: u64,
    /// Spec hash of the rendered workload.
    pub hash: String,
    /// True when no revision with this name exists yet: the daemon creates
    /// `controller_revision`.
    pub is_new: bool,
    /// The complete `apps/v1` ControllerRevision to apply (without ownerReferences, which need
    /// the owner's uid: the daemon adds them).
    pub controller_revision: Value,
}

/// Number of a revision name as KubeVela's `ExtractRevision`: the last `-` segment with a
/// leading `v` stripped (`web-v3` → 3). `None` for `xx`, `yy-`, `zz-0.1`.
pub fn revision_number_of(name: &str) -> Option<u64> {
    let (_, last) = name.rsplit_once('-')?;
    let digits = last.strip_prefix('v').unwrap_or(last);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Why a revision cannot be decided.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RevisionError {
    /// The externalRevision exists with another spec.
    #[error(
        "component \"{component}\": externalRevision \"{name}\" already exists with a different spec (hash {existing:.12}, now {new:.12}); set a new externalRevision"
    )]
    ExternalRevisionConflict {
        /// Component.
        component: String,
        /// The externalRevision.
        name: String,
        /// Hash of the existing revision.
        existing: String,
        /// Hash of the rendered spec.
        new: String,
    },
}

/// Decides the revision of one component (see the module docs for the rules).
///
/// `data` is the component's rendered workload spec (without the publishVersion annotation);
/// it becomes the ControllerRevision's `data`.
pub fn plan_revision(
    application: &str,
    namespace: Option<&str>,
    component: &str,
    external: Option<&str>,
    data: &Value,
    existing: &[ExistingRevision],
) -> Result<ComponentRevision, RevisionError> {
    let hash = spec_hash(data);
    let max = existing.iter().map(|r| r.number).max().unwrap_or(0);
    let (name, number, is_new) = match external {
        Some(ext) => match existing.iter().find(|r| r.name == ext) {
            Some(r) if r.hash == hash => (r.name.clone(), r.number, false),
            Some(r) => {
                return Err(RevisionError::ExternalRevisionConflict {
                    component: component.to_owned(),
                    name: ext.to_owned(),
                    existing: r.hash.clone(),
                    new: hash,
                });
            }
            None => {
                let number = revision_number_of(ext)
                    .filter(|n| *n > 0 && existing.iter().all(|r| r.number != *n))
                    .unwrap_or(max + 1);
                (ext.to_owned(), number, true)
            }
        },
        None => match existing
            .iter()
            .filter(|r| r.hash == hash)
            .max_by_key(|r| r.number)
        {
            Some(r) => (r.name.clone(), r.number, false),
            None => {
                let mut n = max + 1;
                // Never reuse a name that exists (an external name may look like `-vN`).
                while existing
                    .iter()
                    .any(|r| r.name == format!("{component}-v{n}"))
                {
                    n += 1;
                }
                (format!("{component}-v{n}"), n, true)
            }
        },
    };
    let controller_revision = controller_revision(
        application,
        namespace,
        component,
        &name,
        number,
        &hash,
        data,
    );
    Ok(ComponentRevision {
        component: component.to_owned(),
        application: application.to_owned(),
        name,
        number,
        hash,
        is_new,
        controller_revision,
    })
}

fn controller_revision(
    application: &str,
    namespace: Option<&str>,
    component: &str,
    name: &str,
    number: u64,
    hash: &str,
    data: &Value,
) -> Value {
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    metadata.insert(
        "labels".into(),
        json!({ COMPONENT_LABEL: component, APP_NAME_LABEL: application }),
    );
    metadata.insert("annotations".into(), json!({ SPEC_HASH_ANNOTATION: hash }));
    json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": Value::Object(metadata),
        "revision": number,
        "data": data,
    })
}

/// Reads a live ControllerRevision back into `(component, ExistingRevision)`. The hash is
/// the `rollgit.dev/spec-hash` annotation, or the hash of `data` when it is missing.
/// App revisions (label `rollgit.dev/app-revision: "true"`) give `None`.
pub fn existing_revision_from_object(obj: &Value) -> Option<(String, ExistingRevision)> {
    if is_app_revision(obj) {
        return None;
    }
    let metadata = obj.get("metadata")?;
    let component = metadata.get("labels")?.get(COMPONENT_LABEL)?.as_str()?;
    let name = metadata.get("name")?.as_str()?;
    let number = obj.get("revision")?.as_u64()?;
    let hash = match metadata
        .get("annotations")
        .and_then(|a| a.get(SPEC_HASH_ANNOTATION))
        .and_then(Value::as_str)
    {
        Some(h) => h.to_owned(),
        None => spec_hash(obj.get("data").unwrap_or(&Value::Null)),
    };
    Some((
        component.to_owned(),
        ExistingRevision {
            name: name.to_owned(),
            number,
            hash,
        },
    ))
}

fn is_app_revision(obj: &Value) -> bool {
    obj.pointer("/metadata/labels")
        .and_then(|l| l.get(APP_REVISION_LABEL))
        .and_then(Value::as_str)
        == Some("true")
}

/// The application revision decided for one KubeVela Application.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppRevision {
    /// The Application's name.
    pub application: String,
    /// Revision name: `<application>-v<N>`.
    pub name: String,
    /// Revision number.
    pub number: u64,
    /// [`spec_hash`] of `components`.
    pub hash: String,
    /// True when no app revision with this name exists yet: the daemon creates
    /// `controller_revision`.
    pub is_new: bool,
    /// Component name → component revision name.
    pub components: BTreeMap<String, String>,
    /// The complete `apps/v1` ControllerRevision to apply (without ownerReferences).
    pub controller_revision: Value,
}

/// Decides the app revision of one Application from its components' revisions (component
/// name → component revision name), given the app revisions that exist (see the module docs).
pub fn plan_app_revision(
    application: &str,
    namespace: Option<&str>,
    components: &BTreeMap<String, String>,
    existing: &[ExistingAppRevision],
) -> AppRevision {
    let content = json!(components);
    let hash = spec_hash(&content);
    let (name, number, is_new) = match existing
        .iter()
        .filter(|r| r.hash == hash)
        .max_by_key(|r| r.number)
    {
        Some(r) => (r.name.clone(), r.number, false),
        None => {
            let mut n = existing.iter().map(|r| r.number).max().unwrap_or(0) + 1;
            while existing
                .iter()
                .any(|r| r.name == format!("{application}-v{n}"))
            {
                n += 1;
            }
            (format!("{application}-v{n}"), n, true)
        }
    };
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(app_revision_object_name(&name)));
    if let Some(ns) = namespace {
        metadata.insert("namespace".into(), json!(ns));
    }
    metadata.insert(
        "labels".into(),
        json!({ APP_NAME_LABEL: application, APP_REVISION_LABEL: "true" }),
    );
    metadata.insert("annotations".into(), json!({ SPEC_HASH_ANNOTATION: hash }));
    let controller_revision = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": Value::Object(metadata),
        "revision": number,
        "data": { "components": content },
    });
    AppRevision {
        application: application.to_owned(),
        name,
        number,
        hash,
        is_new,
        components: components.clone(),
        controller_revision,
    }
}

/// Suffix of the ControllerRevision that stores an app revision: `test-rolling-v1` is stored
/// as `test-rolling-v1.app`, so it never takes the name of a component revision (an
/// Application `web` with a component `web` has both `web-v1`s; component names have no dot).
pub const APP_REVISION_OBJECT_SUFFIX: &str = ".app";

/// The ControllerRevision name of app revision `name`.
pub fn app_revision_object_name(name: &str) -> String {
    format!("{name}{APP_REVISION_OBJECT_SUFFIX}")
}

/// Reads a live app-revision ControllerRevision back into `(application,
/// ExistingAppRevision)`; `None` for anything else (component revisions included). The hash is
/// the `rollgit.dev/spec-hash` annotation, or the hash of `data.components` when it is missing.
pub fn existing_app_revision_from_object(obj: &Value) -> Option<(String, ExistingAppRevision)> {
    if !is_app_revision(obj) {
        return None;
    }
    let metadata = obj.get("metadata")?;
    let application = metadata.get("labels")?.get(APP_NAME_LABEL)?.as_str()?;
    let object_name = metadata.get("name")?.as_str()?;
    let name = object_name
        .strip_suffix(APP_REVISION_OBJECT_SUFFIX)
        .unwrap_or(object_name);
    let number = obj.get("revision")?.as_u64()?;
    let content = obj
        .pointer("/data/components")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let components: BTreeMap<String, String> = content
        .as_object()?
        .iter()
        .map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
        .collect::<Option<_>>()?;
    let hash = match metadata
        .get("annotations")
        .and_then(|a| a.get(SPEC_HASH_ANNOTATION))
        .and_then(Value::as_str)
    {
        Some(h) => h.to_owned(),
        None => spec_hash(&content),
    };
    Some((
        application.to_owned(),
        ExistingAppRevision {
            name: name.to_owned(),
            number,
            hash,
            components,
        },
    ))
}

/// The first publishVersion given to an app.
pub const FIRST_PUBLISH_VERSION: &str = "alpha1";

/// The app's next `app.oam.dev/publishVersion`, and whether it changed.
///
/// * no previous version → `alpha1` (the form of KubeVela's docs), changed;
/// * same content hash as before → the previous version, unchanged (no churn);
/// * otherwise the trailing number is incremented, keeping the prefix
///   (`alpha1` → `alpha2`, `version9` → `version10`, `3` → `4`); a version without a trailing
///   number gets `-2` appended (`stable` → `stable-2`).
pub fn next_publish_version(prev: Option<(&str, &str)>, content_hash: &str) -> (String, bool) {
    match prev {
        None => (FIRST_PUBLISH_VERSION.to_owned(), true),
        Some((version, hash)) if hash == content_hash => (version.to_owned(), false),
        Some((version, _)) => (bump_version(version), true),
    }
}

fn bump_version(version: &str) -> String {
    let digits_start = version
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_digit())
        .last()
        .map(|(i, _)| i);
    match digits_start {
        Some(i) => {
            let (prefix, digits) = version.split_at(i);
            match digits.parse::<u64>() {
                Ok(n) => format!("{prefix}{}", n.saturating_add(1)),
                Err(_) => format!("{version}-2"),
            }
        }
        None if version.is_empty() => FIRST_PUBLISH_VERSION.to_owned(),
        None => format!("{version}-2"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The canonical JSON as it was first written (every key and scalar through
    /// `Value::to_string`): hashes stored in clusters (`rollgit.dev/spec-hash`, `contentHash`)
    /// depend on it staying byte for byte the same.
    fn oracle(v: &Value) -> String {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let parts: Vec<String> = keys
                    .iter()
                    .map(|k| format!("{}:{}", Value::String((*k).clone()), oracle(&map[*k])))
                    .collect();
                format!("{{{}}}", parts.join(","))
            }
            Value::Array(items) => {
                let parts: Vec<String> = items.iter().map(oracle).collect();
                format!("[{}]", parts.join(","))
            }
            other => other.to_string(),
        }
    }

    #[test]
    fn canonical_json_is_unchanged_byte_for_byte() {
        let cases = [
            (
                "scalars",
                json!([
                    null,
                    true,
                    false,
                    0,
                    -7,
                    18446744073709551615u64,
                    1.5,
                    1e300,
                    ""
                ]),
            ),
            (
                "keys sorted at every depth",
                json!({"b": {"z": 1, "a": [2, {"y": 1, "x": 0}]}, "a": 1}),
            ),
            (
                "strings that need escaping",
                json!({"q\"uote": "a\"b", "back\\slash": "c\\d", "nl": "x\ny\r\t\u{8}\u{c}\u{1}\u{1f}", "del": "\u{7f}"}),
            ),
            (
                "non-ASCII",
                json!({"ключ": "значение", "emoji": "🚀", "é": "\u{2028}"}),
            ),
            (
                "a Deployment",
                json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "labels": {"app": "web"}},
                    "spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "c", "image": "nginx:1", "args": ["--a=\"b\""]}]}}}}),
            ),
        ];
        for (name, v) in cases {
            assert_eq!(canonical_json(&v), oracle(&v), "{name}");
        }
    }

    #[test]
    fn skipped_keys_leave_the_object_out_of_the_hash() {
        let v = json!({"status": {"a": 1}, "spec": {"b": 2}, "kind": "X"});
        let mut out = String::new();
        write_canonical_object(v.as_object().expect("an object"), &mut out, |k| {
            k == "status"
        });
        assert_eq!(out, r#"{"kind":"X","spec":{"b":2}}"#);
    }
}
