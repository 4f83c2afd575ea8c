//! Server-side apply field management: [`apply`], [`update`], [`fieldset_of`].

use std::collections::HashMap;
use std::fmt;

use serde_json::{Map, Value};

use crate::fieldpath::{FieldPath, FieldSet, PathElement};
use crate::managed::{ManagedFieldsEntry, Operation, decode_managed_fields, encode_managed_fields};
use crate::schema::{FieldInfo, ListType, Schema};
use crate::{MergeError, dotted};

/// Metadata fields the server manages: never taken from an applied
/// configuration, never owned, never pruned.
const SERVER_METADATA: &[&str] = &[
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "managedFields",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// Fields the API server strips from every field set (identity and server-set metadata).
const STRIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "creationTimestamp",
    "selfLink",
    "uid",
    "clusterName",
    "generation",
    "managedFields",
    "resourceVersion",
];

/// One field that another manager owns with a different value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Conflict {
    /// The other manager's name.
    pub manager: String,
    /// Its operation.
    pub operation: Operation,
    /// Its apiVersion.
    pub api_version: String,
    /// Its subresource, if any.
    pub subresource: Option<String>,
    /// The field, e.g. `.spec.replicas` or `.spec.template.spec.containers[name="nginx"].image`.
    pub field: String,
    /// The manager identifier the API server sorts conflicts by.
    identifier: String,
}

impl Conflict {
    /// The manager as the API server prints it (`"kubectl" using apps/v1`).
    pub fn manager_display(&self) -> String {
        let e = ManagedFieldsEntry {
            manager: self.manager.clone(),
            operation: self.operation,
            api_version: self.api_version.clone(),
            time: None,
            subresource: self.subresource.clone(),
            fields: FieldSet::new(),
        };
        e.display_name()
    }

    /// The message of the `FieldManagerConflict` status cause:
    /// `conflict with "kubectl" using apps/v1`.
    pub fn cause_message(&self) -> String {
        format!("conflict with {}", self.manager_display())
    }
}

impl fmt::Display for Conflict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "conflict with {}: {}",
            self.manager_display(),
            self.field
        )
    }
}

/// Errors of [`apply`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// Fields owned by other managers would change (HTTP 409, reason Conflict,
    /// one `FieldManagerConflict` cause per conflict). The message is the real
    /// API server's.
    #[error("{}", conflict_message(.0))]
    Conflicts(Vec<Conflict>),
    /// The applied configuration or the live object is malformed (HTTP 400 / 422).
    #[error(transparent)]
    Invalid(#[from] MergeError),
}

/// The API server's message for apply conflicts:
/// `Apply failed with 1 conflict: conflict with "m" using apps/v1: .spec.replicas`, or
/// `Apply failed with N conflicts: conflicts with "a":\n- .x\n- .y\nconflicts with "b":\n- .z`.
pub fn conflict_message(conflicts: &[Conflict]) -> String {
    if conflicts.len() == 1 {
        return format!("Apply failed with 1 conflict: {}", conflicts[0]);
    }
    let mut ids: Vec<&str> = conflicts.iter().map(|c| c.identifier.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    let mut lines = Vec::new();
    for id in ids {
        let mut first = true;
        for c in conflicts.iter().filter(|c| c.identifier == id) {
            if first {
                lines.push(format!("conflicts with {}:", c.manager_display()));
                first = false;
            }
            lines.push(format!("- {}", c.field));
        }
    }
    format!(
        "Apply failed with {} conflicts: {}",
        conflicts.len(),
        lines.join("\n")
    )
}

// ---------------------------------------------------------------------------
// Field sets of values
// ---------------------------------------------------------------------------

/// The fields set in `obj` (structured-merge-diff's `ToFieldSet`), without the
/// identity and server-managed fields the API server never records
/// (apiVersion, kind, metadata.name/namespace/uid/resourceVersion/...).
pub fn fieldset_of(obj: &Value, schema: &dyn Schema) -> Result<FieldSet, MergeError> {
    let mut set = FieldSet::new();
    if let Value::Object(m) = obj {
        let mut names = Vec::new();
        object_to_set(m, &mut names, schema, &mut set)?;
    }
    strip(&mut set);
    set.prune();
    Ok(set)
}

fn object_to_set<'a>(
    m: &'a Map<String, Value>,
    names: &mut Vec<&'a str>,
    schema: &dyn Schema,
    node: &mut FieldSet,
) -> Result<(), MergeError> {
    for (k, v) in m {
        names.push(k);
        let info = schema.field(names);
        let child = node.child_mut(PathElement::Field(k.clone()));
        let r = value_to_set(v, names, schema, &info, child);
        if info.map_element {
            child.set_member(true);
        }
        names.pop();
        r?;
    }
    Ok(())
}

fn value_to_set<'a>(
    v: &'a Value,
    names: &mut Vec<&'a str>,
    schema: &dyn Schema,
    info: &FieldInfo,
    node: &mut FieldSet,
) -> Result<(), MergeError> {
    match v {
        Value::Object(m) => {
            if info.atomic_map {
                node.set_member(true);
            } else {
                object_to_set(m, names, schema, node)?;
            }
        }
        Value::Array(items) => {
            if info.list_type == ListType::Atomic {
                node.set_member(true);
            } else {
                let mut seen: Vec<PathElement> = Vec::with_capacity(items.len());
                for item in items {
                    let pe = item_pe(item, names, info)?;
                    if seen.contains(&pe) {
                        return Err(MergeError::DuplicateKey {
                            path: dotted(names),
                            key: pe.to_string(),
                        });
                    }
                    seen.push(pe.clone());
                    let child = node.child_mut(pe);
                    if let Value::Object(im) = item {
                        object_to_set(im, names, schema, child)?;
                    }
                    child.set_member(true);
                }
            }
        }
        _ => node.set_member(true),
    }
    Ok(())
}

/// The path element of a list item for a `set` or `map` list.
fn item_pe(item: &Value, names: &[&str], info: &FieldInfo) -> Result<PathElement, MergeError> {
    match &info.list_type {
        ListType::Set => match item {
            Value::Object(_) | Value::Array(_) | Value::Null => Err(MergeError::InvalidSetItem {
                path: dotted(names),
                message: format!(
                    "associative list without keys has an element that is not a scalar: {item}"
                ),
            }),
            _ => Ok(PathElement::value(item)),
        },
        ListType::Map { keys } => {
            let Value::Object(m) = item else {
                return Err(MergeError::WrongType {
                    path: dotted(names),
                    message: "associative list with keys may not have non-map elements".to_string(),
                });
            };
            let mut fields = Vec::with_capacity(keys.len());
            for k in keys {
                match m.get(k) {
                    Some(v) => fields.push((k.clone(), v.clone())),
                    None => match info.key_defaults.iter().find(|(n, _)| n == k) {
                        Some((_, d)) => fields.push((k.clone(), d.clone())),
                        None => {
                            return Err(MergeError::MissingListKey {
                                path: dotted(names),
                                key: k.clone(),
                            });
                        }
                    },
                }
            }
            Ok(PathElement::key(fields))
        }
        ListType::Atomic => Err(MergeError::WrongType {
            path: dotted(names),
            message: "atomic list items have no path element".to_string(),
        }),
    }
}

/// Removes what the API server never records from a field set.
fn strip(set: &mut FieldSet) {
    set.remove_child(&PathElement::Field("apiVersion".into()));
    set.remove_child(&PathElement::Field("kind".into()));
    let meta = PathElement::Field("metadata".into());
    let mut empty = false;
    if let Some(m) = set.child(&meta) {
        let mut m = m.clone();
        m.set_member(false);
        for f in STRIPPED_METADATA {
            m.remove_child(&PathElement::Field((*f).into()));
        }
        empty = m.is_empty();
        *set.child_mut(meta.clone()) = m;
    }
    if empty {
        set.remove_child(&meta);
    }
}

// ---------------------------------------------------------------------------
// Merge (applied configuration into live object)
// ---------------------------------------------------------------------------

fn merge_value<'a>(
    lhs: &'a Value,
    rhs: &'a Value,
    names: &mut Vec<&'a str>,
    schema: &dyn Schema,
    info: &FieldInfo,
) -> Result<Value, MergeError> {
    match (lhs, rhs) {
        (Value::Object(l), Value::Object(r)) if !info.atomic_map => {
            Ok(Value::Object(merge_object(l, r, names, schema)?))
        }
        (Value::Array(l), Value::Array(r)) if info.list_type != ListType::Atomic => {
            Ok(Value::Array(merge_list(l, r, names, schema, info)?))
        }
        _ => Ok(rhs.clone()),
    }
}

fn merge_object<'a>(
    l: &'a Map<String, Value>,
    r: &'a Map<String, Value>,
    names: &mut Vec<&'a str>,
    schema: &dyn Schema,
) -> Result<Map<String, Value>, MergeError> {
    let mut out = l.clone();
    for (k, rv) in r {
        if rv.is_null() {
            // An explicit null clears the value (the typed server drops it).
            out.remove(k);
            continue;
        }
        let merged = match l.get(k) {
            Some(lv) => {
                names.push(k);
                let info = schema.field(names);
                let m = merge_value(lv, rv, names, schema, &info);
                names.pop();
                m?
            }
            None => rv.clone(),
        };
        out.insert(k.clone(), merged);
    }
    Ok(out)
}

/// Indexes list items by path element; `strict` rejects duplicates.
fn index_list<'a>(
    items: &'a [Value],
    names: &[&str],
    info: &FieldInfo,
    strict: bool,
) -> Result<(Vec<PathElement>, HashMap<PathElement, &'a Value>), MergeError> {
    let mut order = Vec::with_capacity(items.len());
    let mut map = HashMap::with_capacity(items.len());
    for item in items {
        let pe = match item_pe(item, names, info) {
            Ok(pe) => pe,
            Err(e) if strict => return Err(e),
            Err(_) => continue,
        };
        if map.contains_key(&pe) {
            if strict {
                return Err(MergeError::DuplicateKey {
                    path: dotted(names),
                    key: pe.to_string(),
                });
            }
            continue;
        }
        map.insert(pe.clone(), item);
        order.push(pe);
    }
    Ok((order, map))
}

/// Merges associative lists keeping the live order for untouched items and the
/// applied order for applied items (structured-merge-diff's algorithm).
fn merge_list<'a>(
    l: &'a [Value],
    r: &'a [Value],
    names: &mut Vec<&'a str>,
    schema: &dyn Schema,
    info: &FieldInfo,
) -> Result<Vec<Value>, MergeError> {
    let (rpes, rmap) = index_list(r, names, info, true)?;
    let (lpes, lmap) = index_list(l, names, info, false)?;
    let shared: Vec<&PathElement> = rpes.iter().filter(|pe| lmap.contains_key(*pe)).collect();
    let mut next_shared = 0usize;
    let mut merged_rhs: std::collections::HashSet<&PathElement> = std::collections::HashSet::new();
    let mut out = Vec::with_capacity(l.len().max(r.len()));
    let merge_item = |lv: Option<&'a Value>,
                      rv: &'a Value,
                      names: &mut Vec<&'a str>|
     -> Result<Value, MergeError> {
        match (lv, rv) {
            (Some(Value::Object(lo)), Value::Object(ro)) => {
                Ok(Value::Object(merge_object(lo, ro, names, schema)?))
            }
            _ => Ok(rv.clone()),
        }
    };
    let (mut li, mut ri) = (0usize, 0usize);
    while li < lpes.len() || ri < rpes.len() {
        if li < lpes.len() && ri < rpes.len() {
            let pe = &lpes[li];
            if *pe == rpes[ri] {
                merged_rhs.insert(pe);
                out.push(merge_item(lmap.get(pe).copied(), rmap[pe], names)?);
                li += 1;
                ri += 1;
                next_shared += 1;
                continue;
            }
            if rmap.contains_key(pe) && shared.get(next_shared).is_some_and(|s| *s != pe) {
                li += 1;
                continue;
            }
        }
        if li < lpes.len() {
            let pe = &lpes[li];
            if !rmap.contains_key(pe) {
                out.push(lmap[pe].clone());
                li += 1;
                continue;
            } else if merged_rhs.contains(pe) {
                li += 1;
                continue;
            }
        }
        if ri < rpes.len() {
            let pe = &rpes[ri];
            merged_rhs.insert(pe);
            out.push(merge_item(lmap.get(pe).copied(), rmap[pe], names)?);
            ri += 1;
            if shared.get(next_shared).is_some_and(|s| *s == pe) {
                next_shared += 1;
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Compare (which fields changed between two versions)
// ---------------------------------------------------------------------------

#[derive(Default, Debug)]
struct Comparison {
    added: FieldSet,
    modified: FieldSet,
    removed: FieldSet,
}

/// One side of a comparison: absent, present in the Go zero value of its
/// parent (so not "added" on its own), or a value.
#[derive(Clone, Copy)]
enum Side<'a> {
    Absent,
    Zero,
    Val(&'a Value),
}

impl<'a> Side<'a> {
    fn value(self) -> Option<&'a Value> {
        match self {
            Side::Val(v) => Some(v),
            _ => None,
        }
    }
    fn is_absent(self) -> bool {
        matches!(self, Side::Absent)
    }
    fn empty_like(self) -> bool {
        match self {
            Side::Absent | Side::Zero => true,
            Side::Val(Value::Null) => true,
            Side::Val(Value::Object(m)) => m.is_empty(),
            Side::Val(Value::Array(a)) => a.is_empty(),
            Side::Val(_) => false,
        }
    }
}

fn child_side<'a>(parent: Side<'a>, key: &str, info: &FieldInfo) -> Side<'a> {
    match parent {
        Side::Val(Value::Object(m)) => match m.get(key) {
            Some(v) => Side::Val(v),
            None if info.zero_present => Side::Zero,
            None => Side::Absent,
        },
        Side::Zero | Side::Val(Value::Null) if info.zero_present => Side::Zero,
        _ => Side::Absent,
    }
}

fn compare<'a>(
    lhs: Side<'a>,
    rhs: Side<'a>,
    names: &mut Vec<&'a str>,
    pes: &mut Vec<PathElement>,
    schema: &dyn Schema,
    info: &FieldInfo,
    out: &mut Comparison,
) -> Result<(), MergeError> {
    let is_obj = |s: Side<'a>| matches!(s, Side::Val(Value::Object(_)));
    let is_arr = |s: Side<'a>| matches!(s, Side::Val(Value::Array(_)));
    let obj_or_empty =
        |s: Side<'a>| is_obj(s) || matches!(s, Side::Absent | Side::Zero | Side::Val(Value::Null));
    let arr_or_empty =
        |s: Side<'a>| is_arr(s) || matches!(s, Side::Absent | Side::Zero | Side::Val(Value::Null));
    let both_empty = lhs.empty_like() && rhs.empty_like();

    let map_node = (is_obj(lhs) || is_obj(rhs))
        && obj_or_empty(lhs)
        && obj_or_empty(rhs)
        && !info.atomic_map
        && !both_empty;
    let list_node = (is_arr(lhs) || is_arr(rhs))
        && arr_or_empty(lhs)
        && arr_or_empty(rhs)
        && info.list_type != ListType::Atomic
        && !both_empty;

    if map_node {
        let lm = lhs.value().and_then(Value::as_object);
        let rm = rhs.value().and_then(Value::as_object);
        let mut keys: Vec<&'a String> = Vec::new();
        if let Some(l) = lm {
            keys.extend(l.keys());
        }
        if let Some(r) = rm {
            keys.extend(r.keys().filter(|k| lm.is_none_or(|l| !l.contains_key(*k))));
        }
        for k in keys {
            names.push(k);
            pes.push(PathElement::Field(k.clone()));
            let ci = schema.field(names);
            let r = compare(
                child_side(lhs, k, &ci),
                child_side(rhs, k, &ci),
                names,
                pes,
                schema,
                &ci,
                out,
            );
            pes.pop();
            names.pop();
            r?;
        }
    } else if list_node {
        let empty: &[Value] = &[];
        let l = lhs
            .value()
            .and_then(Value::as_array)
            .map_or(empty, Vec::as_slice);
        let r = rhs
            .value()
            .and_then(Value::as_array)
            .map_or(empty, Vec::as_slice);
        let (lpes, lmap) = index_list(l, names, info, false)?;
        let (rpes, rmap) = index_list(r, names, info, false)?;
        let item_info = FieldInfo::default();
        for pe in lpes
            .iter()
            .chain(rpes.iter().filter(|p| !lmap.contains_key(*p)))
        {
            let ls = lmap.get(pe).map_or(Side::Absent, |v| Side::Val(v));
            let rs = rmap.get(pe).map_or(Side::Absent, |v| Side::Val(v));
            pes.push(pe.clone());
            let res = compare(ls, rs, names, pes, schema, &item_info, out);
            pes.pop();
            res?;
        }
    } else {
        // Leaf: scalars, atomic lists/maps, empty containers, type changes.
        match (lhs.value(), rhs.value()) {
            (None, Some(_)) if lhs.is_absent() => out.added.insert(pes),
            // Zero-present on the left: the zero value is empty.
            (None, Some(r)) if !Side::Val(r).empty_like() => out.modified.insert(pes),
            (Some(_), None) => out.removed.insert(pes),
            (Some(l), Some(r)) if l != r => out.modified.insert(pes),
            _ => {}
        }
        return Ok(());
    }
    // Post-item hook: a non-leaf that appears or disappears is itself a field.
    if lhs.is_absent() && !rhs.is_absent() {
        out.added.insert(pes);
    } else if rhs.is_absent() && !lhs.is_absent() && lhs.value().is_some() {
        out.removed.insert(pes);
    }
    Ok(())
}

fn compare_objects(
    old: Option<&Value>,
    new: &Value,
    schema: &dyn Schema,
) -> Result<Comparison, MergeError> {
    let mut out = Comparison::default();
    let lhs = old.map_or(Side::Zero, Side::Val);
    let mut names = Vec::new();
    let mut pes = Vec::new();
    let root = FieldInfo::default();
    compare(
        lhs,
        Side::Val(new),
        &mut names,
        &mut pes,
        schema,
        &root,
        &mut out,
    )?;
    for s in [&mut out.added, &mut out.modified, &mut out.removed] {
        strip(s);
        s.prune();
    }
    Ok(out)
}

// ---------------------------------------------------------------------------
// Pruning (fields a manager stopped applying)
// ---------------------------------------------------------------------------

fn remove_fields(
    v: &mut Value,
    rm: &FieldSet,
    owned: Option<&FieldSet>,
    names: &mut Vec<String>,
    schema: &dyn Schema,
    key_fields: &[String],
) {
    match v {
        Value::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                if key_fields.contains(&k) {
                    continue;
                }
                let pe = PathElement::Field(k.clone());
                let Some(rc) = rm.child(&pe) else { continue };
                let oc = owned.and_then(|o| o.child(&pe));
                if rc.is_member() && oc.is_none_or(FieldSet::is_empty) {
                    m.remove(&k);
                    continue;
                }
                let Some(child) = m.get_mut(&k) else { continue };
                let was_empty = is_empty_container(child);
                names.push(k.clone());
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let info = schema.field(&refs);
                remove_in(child, rc, oc, names, schema, &info);
                names.pop();
                if !was_empty && is_empty_container(child) {
                    if schema.emptied_becomes_null() {
                        *child = Value::Null;
                    } else if oc.is_none_or(FieldSet::is_empty) {
                        m.remove(&k);
                    }
                }
            }
        }
        Value::Array(_) => {}
        _ => {}
    }
}

fn remove_in(
    v: &mut Value,
    rm: &FieldSet,
    owned: Option<&FieldSet>,
    names: &mut Vec<String>,
    schema: &dyn Schema,
    info: &FieldInfo,
) {
    match v {
        Value::Object(_) if !info.atomic_map => remove_fields(v, rm, owned, names, schema, &[]),
        Value::Array(items) if info.list_type != ListType::Atomic => {
            let key_fields: Vec<String> = match &info.list_type {
                ListType::Map { keys } => keys.clone(),
                _ => Vec::new(),
            };
            let mut out = Vec::with_capacity(items.len());
            for mut item in items.drain(..) {
                let pe = {
                    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                    item_pe(&item, &refs, info)
                };
                let Ok(pe) = pe else {
                    out.push(item);
                    continue;
                };
                let Some(rc) = rm.child(&pe) else {
                    out.push(item);
                    continue;
                };
                let oc = owned.and_then(|o| o.child(&pe));
                if rc.is_member() && oc.is_none_or(FieldSet::is_empty) {
                    continue;
                }
                remove_fields(&mut item, rc, oc, names, schema, &key_fields);
                out.push(item);
            }
            *items = out;
        }
        _ => {}
    }
}

fn is_empty_container(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

// ---------------------------------------------------------------------------
// apply / update
// ---------------------------------------------------------------------------

fn api_version_of(v: &Value) -> String {
    v.get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn managed_fields_of(obj: &Value) -> &Value {
    obj.get("metadata")
        .and_then(|m| m.get("managedFields"))
        .unwrap_or(&Value::Null)
}

fn set_managed_fields(obj: &mut Value, entries: &[ManagedFieldsEntry]) {
    let encoded = encode_managed_fields(entries);
    let empty = encoded.as_array().is_none_or(Vec::is_empty);
    if let Value::Object(m) = obj {
        let meta = m
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(mm) = meta {
            if empty {
                mm.remove("managedFields");
            } else {
                mm.insert("managedFields".into(), encoded);
            }
        }
    }
}

fn without_managed_fields(obj: &Value) -> Value {
    let mut o = obj.clone();
    if let Some(Value::Object(m)) = o.get_mut("metadata") {
        m.remove("managedFields");
    }
    o
}

/// Server-side apply of `applied` by `manager` onto `live` (`None` on create).
///
/// Returns the new object with `metadata.managedFields` updated:
/// - the manager's Apply entry (per manager and subresource) holds exactly the
///   fields of `applied`;
/// - fields it applied before and no longer applies are removed from the object
///   unless another manager owns them;
/// - applied values are merged into live (map-lists by key, sets unioned,
///   atomic lists and objects replaced);
/// - a field owned by another manager whose value would change is a conflict
///   ([`ApplyError::Conflicts`]) unless `force`, which takes it from them;
///   equal values are shared.
///
/// Server-managed metadata (resourceVersion, uid, creationTimestamp,
/// generation, managedFields, ...) is kept from `live`, never from `applied`.
/// `now_rfc3339` stamps the manager's entry when the object changed.
pub fn apply(
    live: Option<&Value>,
    applied: &Value,
    manager: &str,
    force: bool,
    subresource: Option<&str>,
    schema: &dyn Schema,
    now_rfc3339: &str,
) -> Result<Value, ApplyError> {
    let Value::Object(applied_map) = applied else {
        return Err(MergeError::WrongType {
            path: ".".into(),
            message: "the applied configuration must be a JSON object".into(),
        }
        .into());
    };
    if managed_fields_of(applied)
        .as_array()
        .is_some_and(|a| !a.is_empty())
    {
        return Err(MergeError::WrongType {
            path: ".metadata.managedFields".into(),
            message: "metadata.managedFields must be nil".into(),
        }
        .into());
    }
    // Like the API server, unreadable managedFields on the live object are reset.
    let mut entries = live
        .map(|l| decode_managed_fields(managed_fields_of(l)).unwrap_or_default())
        .unwrap_or_default();
    let api_version = match api_version_of(applied) {
        s if !s.is_empty() => s,
        _ => live.map(api_version_of).unwrap_or_default(),
    };

    // The applied configuration without server-managed metadata.
    let mut config = applied_map.clone();
    if let Some(Value::Object(meta)) = config.get_mut("metadata") {
        for f in SERVER_METADATA {
            meta.remove(*f);
        }
    }
    let config = Value::Object(config);
    let new_set = fieldset_of(&config, schema)?;

    let live_v = live
        .map(without_managed_fields)
        .unwrap_or_else(|| Value::Object(Map::new()));
    let mut merged = match &live_v {
        Value::Object(_) => {
            let mut names = Vec::new();
            merge_value(&live_v, &config, &mut names, schema, &FieldInfo::default())?
        }
        _ => config.clone(),
    };

    let me = ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: Operation::Apply,
        api_version: api_version.clone(),
        time: None,
        subresource: subresource.map(str::to_string),
        fields: FieldSet::new(),
    };
    let my_idx = entries.iter().position(|e| e.same_manager(&me));
    let last_set = my_idx.map(|i| entries[i].fields.clone());

    // Prune what this manager applied last time and nobody owns any more.
    if let Some(last) = &last_set {
        let mut owned = new_set.clone();
        for (i, e) in entries.iter().enumerate() {
            if Some(i) != my_idx {
                owned.union_in_place(&e.fields);
            }
        }
        let rm = last.difference(&owned);
        if !rm.is_empty() {
            let mut names = Vec::new();
            remove_fields(&mut merged, &rm, Some(&owned), &mut names, schema, &[]);
        }
    }

    // Conflicts: fields other managers own that this apply changes.
    let cmp = compare_objects(live.map(|_| &live_v), &merged, schema)?;
    let mut changed = cmp.modified.clone();
    changed.union_in_place(&cmp.added);
    let mut conflicts = Vec::new();
    for (i, e) in entries.iter().enumerate() {
        if Some(i) == my_idx {
            continue;
        }
        let c = e.fields.intersection(&changed);
        for p in c.paths() {
            conflicts.push(Conflict {
                manager: e.manager.clone(),
                operation: e.operation,
                api_version: e.api_version.clone(),
                subresource: e.subresource.clone(),
                field: p.to_string(),
                identifier: e.identifier(),
            });
        }
    }
    if !conflicts.is_empty() && !force {
        conflicts.sort_by(|a, b| a.identifier.cmp(&b.identifier));
        return Err(ApplyError::Conflicts(conflicts));
    }
    for (i, e) in entries.iter_mut().enumerate() {
        if Some(i) == my_idx {
            continue;
        }
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
    }

    let object_changed = merged != live_v;
    let set_changed = last_set.as_ref() != Some(&new_set);
    let time = match my_idx {
        Some(i) if !object_changed && !set_changed => entries[i].time.clone(),
        _ => Some(now_rfc3339.to_string()),
    };
    let mine = ManagedFieldsEntry {
        time,
        fields: new_set,
        ..me
    };
    match my_idx {
        Some(i) => entries[i] = mine,
        None => entries.push(mine),
    }
    entries.retain(|e| !e.fields.is_empty());
    set_managed_fields(&mut merged, &entries);
    Ok(merged)
}

/// Field management for a non-apply write (create, update/PUT, JSON patch,
/// merge patch, strategic merge patch) by `manager`.
///
/// The fields that changed between `old` and `new` (every set field on create,
/// `old == None`) become owned by `manager` with operation Update (merged into
/// its existing Update entry for the same apiVersion and subresource) and are
/// taken from every other manager; removed fields are dropped from every set.
///
/// Base managedFields: those in `new` when it carries a non-empty valid list
/// (clients may rewrite them; `[{}]` resets them), else those of `old`. For
/// subresource writes they always come from `old`. If `new` cannot be
/// interpreted with the schema (e.g. a map-list item without its key), the
/// base managedFields are kept unchanged.
pub fn update(
    old: Option<&Value>,
    new: &Value,
    manager: &str,
    subresource: Option<&str>,
    schema: &dyn Schema,
    now_rfc3339: &str,
) -> Value {
    let old_entries = || {
        old.map(|o| decode_managed_fields(managed_fields_of(o)).unwrap_or_default())
            .unwrap_or_default()
    };
    let new_mf = managed_fields_of(new);
    let mut entries = if subresource.is_some() {
        old_entries()
    } else if new_mf
        .as_array()
        .is_some_and(|a| a.len() == 1 && a[0].as_object().is_some_and(Map::is_empty))
    {
        Vec::new()
    } else {
        match decode_managed_fields(new_mf) {
            Ok(e) if !e.is_empty() => e,
            _ => old_entries(),
        }
    };
    let api_version = api_version_of(new);
    let mut out = without_managed_fields(new);
    let old_v = old.map(without_managed_fields);
    let Ok(cmp) = compare_objects(old_v.as_ref(), &out, schema) else {
        set_managed_fields(&mut out, &entries);
        return out;
    };
    let mut changed = cmp.modified;
    changed.union_in_place(&cmp.added);

    let me = ManagedFieldsEntry {
        manager: manager.to_string(),
        operation: Operation::Update,
        api_version,
        time: Some(now_rfc3339.to_string()),
        subresource: subresource.map(str::to_string),
        fields: FieldSet::new(),
    };
    let mut previous = FieldSet::new();
    for e in entries.iter_mut() {
        e.fields = e.fields.difference(&changed).difference(&cmp.removed);
        if e.same_manager(&me) {
            previous = std::mem::take(&mut e.fields);
        }
    }
    let my_idx = entries.iter().position(|e| e.same_manager(&me));
    if changed.is_empty() {
        // No change: the manager keeps what it had (minus removed fields).
        if let Some(i) = my_idx {
            entries[i].fields = previous;
        }
    } else {
        let mine = ManagedFieldsEntry {
            fields: previous.union(&changed),
            ..me
        };
        match my_idx {
            Some(i) => entries[i] = mine,
            None => entries.push(mine),
        }
    }
    entries.retain(|e| !e.fields.is_empty());
    set_managed_fields(&mut out, &entries);
    out
}

/// The paths of a field set as strings (`.spec.replicas`), for messages and tests.
pub fn field_paths(set: &FieldSet) -> Vec<String> {
    set.paths().iter().map(FieldPath::to_string).collect()
}
