//! Strategic merge patch (`application/strategic-merge-patch+json`).

use serde_json::{Map, Value};

use crate::schema::{PatchStrategy, Schema};
use crate::{MergeError, dotted};

const PATCH: &str = "$patch";
const RETAIN_KEYS: &str = "$retainKeys";
const DELETE_FROM_PRIMITIVE_LIST: &str = "$deleteFromPrimitiveList/";
const SET_ELEMENT_ORDER: &str = "$setElementOrder/";

/// Applies a strategic merge patch to `original`.
///
/// - `null` deletes a key; objects merge recursively.
/// - Lists follow the schema's [`PatchStrategy`]: replaced by default, merged
///   by `patchMergeKey` for lists of objects, merged as sets for lists of scalars.
/// - Directives: `$patch: replace | delete | merge` in objects and in list
///   items, `$retainKeys`, `$deleteFromPrimitiveList/<field>`,
///   `$setElementOrder/<field>`.
///
/// Fails with [`MergeError::StrategicMergeUnsupported`] for schemas that do
/// not support it (custom resources: the server answers 415).
pub fn strategic_merge(
    original: &Value,
    patch: &Value,
    schema: &dyn Schema,
) -> Result<Value, MergeError> {
    if !schema.supports_strategic_merge() {
        return Err(MergeError::StrategicMergeUnsupported);
    }
    let Value::Object(p) = patch else {
        return Err(MergeError::WrongType {
            path: ".".to_string(),
            message: "a strategic merge patch must be a JSON object".to_string(),
        });
    };
    let orig = match original {
        Value::Object(m) => Some(m.clone()),
        Value::Null => None,
        _ => {
            return Err(MergeError::WrongType {
                path: ".".to_string(),
                message: "the original object must be a JSON object".to_string(),
            });
        }
    };
    let mut path = Vec::new();
    let merged = merge_map(orig, p, &mut path, schema)?;
    Ok(Value::Object(merged.unwrap_or_default()))
}

fn invalid(path: &[&str], message: impl Into<String>) -> MergeError {
    MergeError::InvalidDirective {
        path: dotted(path),
        message: message.into(),
    }
}

/// Merges `patch` into `orig`. `None` as a result means the map was deleted
/// (`$patch: delete`).
fn merge_map<'a>(
    orig: Option<Map<String, Value>>,
    patch: &'a Map<String, Value>,
    path: &mut Vec<&'a str>,
    schema: &dyn Schema,
) -> Result<Option<Map<String, Value>>, MergeError> {
    if let Some(d) = patch.get(PATCH) {
        match d.as_str() {
            Some("replace") => {
                let mut out = Map::new();
                for (k, v) in patch {
                    if k == PATCH {
                        continue;
                    }
                    path.push(k.as_str());
                    let cleaned = clean(v, path, schema);
                    path.pop();
                    if let Some(c) = cleaned? {
                        out.insert(k.clone(), c);
                    }
                }
                return Ok(Some(out));
            }
            Some("delete") => return Ok(None),
            Some("merge") => {}
            _ => return Err(invalid(path, format!("unknown patch type: {d}"))),
        }
    }
    let mut out = orig.unwrap_or_default();

    if let Some(rk) = patch.get(RETAIN_KEYS) {
        let Some(list) = rk.as_array() else {
            return Err(invalid(path, "$retainKeys should be a list"));
        };
        let mut keep = Vec::with_capacity(list.len());
        for k in list {
            match k.as_str() {
                Some(s) => keep.push(s),
                None => return Err(invalid(path, "$retainKeys should be a list of strings")),
            }
        }
        for k in patch.keys() {
            if !k.starts_with('$') && !keep.contains(&k.as_str()) {
                return Err(invalid(
                    path,
                    format!("the patch has a field {k:?} that is not in $retainKeys"),
                ));
            }
        }
        out.retain(|k, _| keep.contains(&k.as_str()));
    }

    // $deleteFromPrimitiveList first, so that the same patch may add values back.
    for (k, v) in patch {
        let Some(field) = k.strip_prefix(DELETE_FROM_PRIMITIVE_LIST) else {
            continue;
        };
        let Some(del) = v.as_array() else {
            return Err(invalid(path, format!("{k} should be a list")));
        };
        if let Some(Value::Array(items)) = out.get_mut(field) {
            items.retain(|it| !del.contains(it));
        }
    }

    for (k, pv) in patch {
        if k == PATCH
            || k == RETAIN_KEYS
            || k.starts_with(DELETE_FROM_PRIMITIVE_LIST)
            || k.starts_with(SET_ELEMENT_ORDER)
        {
            continue;
        }
        path.push(k.as_str());
        let result = merge_value(out.remove(k), pv, path, schema);
        path.pop();
        if let Some(v) = result? {
            out.insert(k.clone(), v);
        }
    }

    for (k, v) in patch {
        let Some(field) = k.strip_prefix(SET_ELEMENT_ORDER) else {
            continue;
        };
        let Some(order) = v.as_array() else {
            return Err(invalid(path, format!("{k} should be a list")));
        };
        path.push(field);
        let key = match schema.patch_strategy(path) {
            PatchStrategy::Merge { merge_key, .. } => merge_key,
            _ => None,
        };
        path.pop();
        if let Some(Value::Array(items)) = out.get_mut(field) {
            set_element_order(items, order, key.as_deref());
        }
    }
    Ok(Some(out))
}

/// Merges one patch value into an optional original value; `None` deletes.
fn merge_value<'a>(
    orig: Option<Value>,
    pv: &'a Value,
    path: &mut Vec<&'a str>,
    schema: &dyn Schema,
) -> Result<Option<Value>, MergeError> {
    match pv {
        Value::Null => Ok(None),
        Value::Object(pm) => {
            let om = match orig {
                Some(Value::Object(m)) => Some(m),
                _ => None,
            };
            Ok(merge_map(om, pm, path, schema)?.map(Value::Object))
        }
        Value::Array(pl) => {
            let ol = match orig {
                Some(Value::Array(l)) => Some(l),
                _ => None,
            };
            Ok(Some(Value::Array(merge_list(ol, pl, path, schema)?)))
        }
        scalar => Ok(Some(scalar.clone())),
    }
}

/// Strips directives and nulls from a value that has no original counterpart.
fn clean<'a>(
    v: &'a Value,
    path: &mut Vec<&'a str>,
    schema: &dyn Schema,
) -> Result<Option<Value>, MergeError> {
    merge_value(None, v, path, schema)
}

fn merge_list<'a>(
    orig: Option<Vec<Value>>,
    patch: &'a [Value],
    path: &mut Vec<&'a str>,
    schema: &dyn Schema,
) -> Result<Vec<Value>, MergeError> {
    let strategy = schema.patch_strategy(path);
    let merge_key = match strategy {
        PatchStrategy::Merge { merge_key, .. } => merge_key,
        PatchStrategy::Replace | PatchStrategy::RetainKeys => {
            let mut out = Vec::with_capacity(patch.len());
            for item in patch {
                if let Some(v) = clean(item, path, schema)? {
                    out.push(v);
                }
            }
            return Ok(out);
        }
    };

    // Special elements: {"$patch": "replace"} and {"<key>": x, "$patch": "delete"}.
    let mut replace = false;
    let mut deletes: Vec<Value> = Vec::new();
    let mut regular: Vec<&'a Value> = Vec::new();
    for item in patch {
        let directive = item.as_object().and_then(|m| m.get(PATCH));
        match directive.map(|d| d.as_str()) {
            None => regular.push(item),
            Some(Some("replace")) => replace = true,
            Some(Some("delete")) => match (&merge_key, item.as_object()) {
                (Some(k), Some(m)) => match m.get(k) {
                    Some(kv) => deletes.push(kv.clone()),
                    None => {
                        return Err(MergeError::MissingMergeKey {
                            path: dotted(path),
                            element: item.to_string(),
                            key: k.clone(),
                        });
                    }
                },
                _ => return Err(invalid(path, "$patch: delete needs a merge key")),
            },
            Some(Some("merge")) => regular.push(item),
            _ => {
                return Err(invalid(
                    path,
                    format!("unknown patch type in list: {}", item),
                ));
            }
        }
    }

    let mut out = if replace {
        Vec::new()
    } else {
        orig.unwrap_or_default()
    };

    match &merge_key {
        None => {
            // A set of scalars: union, keeping the original order.
            for item in regular {
                if item.is_object() {
                    return Err(invalid(
                        path,
                        "a list of objects needs a patchMergeKey to be merged",
                    ));
                }
                if !out.contains(item) {
                    out.push(item.clone());
                }
            }
        }
        Some(key) => {
            out.retain(|it| {
                it.get(key.as_str())
                    .is_none_or(|kv| !deletes.iter().any(|d| d == kv))
            });
            for item in regular {
                let Some(pm) = item.as_object() else {
                    return Err(MergeError::WrongType {
                        path: dotted(path),
                        message: format!("list items must be objects, got {item}"),
                    });
                };
                let Some(kv) = pm.get(key.as_str()) else {
                    return Err(MergeError::MissingMergeKey {
                        path: dotted(path),
                        element: item.to_string(),
                        key: key.clone(),
                    });
                };
                let pos = out.iter().position(|o| o.get(key.as_str()) == Some(kv));
                match pos {
                    Some(i) => {
                        let om = match out[i].take() {
                            Value::Object(m) => Some(m),
                            _ => None,
                        };
                        match merge_map(om, pm, path, schema)? {
                            Some(m) => out[i] = Value::Object(m),
                            None => {
                                out.remove(i);
                            }
                        }
                    }
                    None => {
                        if let Some(m) = merge_map(None, pm, path, schema)? {
                            out.push(Value::Object(m));
                        }
                    }
                }
            }
        }
    }
    Ok(out)
}

/// Reorders `items` following `$setElementOrder`: the items named in `order`
/// take the positions such items occupy, in the given order; other items
/// (present only on the server) keep their places.
fn set_element_order(items: &mut [Value], order: &[Value], key: Option<&str>) {
    let ident = |v: &Value| -> Option<Value> {
        match key {
            Some(k) => v.get(k).cloned(),
            None => Some(v.clone()),
        }
    };
    let order_ids: Vec<Value> = order.iter().filter_map(ident).collect();
    let rank = |v: &Value| -> Option<usize> {
        let id = ident(v)?;
        order_ids.iter().position(|o| *o == id)
    };
    let mut slots: Vec<usize> = Vec::new();
    let mut ranked: Vec<(usize, Value)> = Vec::new();
    for (i, it) in items.iter().enumerate() {
        if let Some(r) = rank(it) {
            slots.push(i);
            ranked.push((r, it.clone()));
        }
    }
    ranked.sort_by_key(|(r, _)| *r);
    for (slot, (_, v)) in slots.into_iter().zip(ranked) {
        items[slot] = v;
    }
}
