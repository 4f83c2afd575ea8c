//! CustomResourceDefinition schemas as apiextensions-apiserver treats them.
//!
//! - [`validate_crd_schema`]: a version's `openAPIV3Schema` must be structural (every node
//!   typed, `items` with arrays, nothing but `name`/`generateName` under root `metadata`,
//!   value validations only over structurally specified fields), use only the OpenAPI v3
//!   types, and carry defaults that are pruned and valid. Errors are the field paths and
//!   messages kube-apiserver gives (`spec.versions[0].schema.openAPIV3Schema.properties[spec]
//!   .type: Unsupported value: "notatype": ...`).
//! - [`coerce`]: a custom resource is decoded like an unstructured object: unknown fields are
//!   pruned (and reported, for `fieldValidation`), non-nullable `null`s without a default are
//!   dropped, and `default:` values are applied.
//! - [`validate`]: value validation of a custom resource with kube-openapi's messages (types,
//!   `null`, enums, bounds, lengths, patterns, item counts, required fields).
//!
//! CEL rules (`x-kubernetes-validations`) are accepted but not evaluated.

use crate::error::Cause;
use crate::typed::{self, DecodeError, Seg};
use serde_json::{Map, Value, json};

/// The OpenAPI v3 types a schema may name, sorted as kube-apiserver lists them.
const TYPES: [&str; 6] = ["array", "boolean", "integer", "number", "object", "string"];

/// A Go `field.Path` under construction.
#[derive(Clone)]
struct P(String);

impl P {
    fn child(&self, name: &str) -> P {
        if self.0.is_empty() {
            P(name.to_string())
        } else {
            P(format!("{}.{name}", self.0))
        }
    }
    fn key(&self, k: &str) -> P {
        P(format!("{}[{k}]", self.0))
    }
    fn index(&self, i: usize) -> P {
        P(format!("{}[{i}]", self.0))
    }
}

fn required(p: &P, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueRequired".into(),
        message: if detail.is_empty() {
            "Required value".into()
        } else {
            format!("Required value: {detail}")
        },
        field: p.0.clone(),
    }
}

fn forbidden(p: &P, detail: &str) -> Cause {
    Cause {
        reason: "FieldValueForbidden".into(),
        message: format!("Forbidden: {detail}"),
        field: p.0.clone(),
    }
}

fn str_of<'a>(s: &'a Value, key: &str) -> &'a str {
    s.get(key).and_then(Value::as_str).unwrap_or("")
}

fn flag(s: &Value, key: &str) -> bool {
    s.get(key).and_then(Value::as_bool) == Some(true)
}

fn props(s: &Value) -> Option<&Map<String, Value>> {
    s.get("properties").and_then(Value::as_object)
}

/// `additionalProperties` as a schema (not `true`/`false`).
fn additional_schema(s: &Value) -> Option<&Value> {
    s.get("additionalProperties").filter(|a| a.is_object())
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Level {
    Root,
    Item,
    Field,
}

/// Which checks a CRD version's schema gets (kube-apiserver ratchets them on update: a schema
/// that was already non-structural, or already used an invalid type, may stay so).
#[derive(Debug, Clone, Copy)]
pub struct SchemaChecks {
    /// The schema must be structural.
    pub require_structural: bool,
    /// Every `type` must be one of the OpenAPI v3 types.
    pub require_valid_types: bool,
    /// The version has a status subresource (the root may only hold certain fields).
    pub status_subresource: bool,
}

/// The errors of a CRD version's `openAPIV3Schema` at `base`
/// (`spec.versions[0].schema`): structural errors (sorted by text, as kube-apiserver sorts
/// them) first, then the OpenAPI schema errors.
pub fn validate_crd_schema(schema: &Value, base: &str, checks: SchemaChecks) -> Vec<Cause> {
    let root = P(base.to_string()).child("openAPIV3Schema");
    let mut out = Vec::new();
    if checks.status_subresource
        && let Some(t) = schema.get("type").and_then(Value::as_str)
        && t != "object"
    {
        out.push(Cause::invalid(
            format!("{base}.openAPIV3Schema.type"),
            &json!(t),
            r#"only "object" is allowed as the type at the root of the schema if the status subresource is enabled"#,
        ));
    }
    if flag(schema, "nullable") {
        out.push(forbidden(
            &P(format!("{base}.openAPIV3Schema.nullable")),
            "nullable cannot be true at the root",
        ));
    }
    if checks.require_structural {
        let mut structural = Vec::new();
        structural_invariants(schema, Level::Root, &root, &mut structural);
        completeness(schema, &root, &root, &mut structural);
        structural.sort_by_key(cause_text);
        if structural.is_empty() {
            defaults(schema, &root, true, false, &mut structural);
        }
        out.extend(structural);
    }
    openapi_errors(schema, &root, true, false, checks, &mut out);
    out
}

fn cause_text(c: &Cause) -> String {
    format!("{}: {}", c.field, c.message)
}

/// Whether a version's schema has structural errors (for ratcheting on update).
pub fn is_structural(schema: &Value) -> bool {
    let mut errs = Vec::new();
    structural_invariants(schema, Level::Root, &P(String::new()), &mut errs);
    completeness(schema, &P(String::new()), &P(String::new()), &mut errs);
    errs.is_empty()
}

/// Whether every `type` in the schema is an OpenAPI v3 type (for ratcheting on update).
pub fn has_valid_types(schema: &Value) -> bool {
    let mut ok = true;
    walk_schemas(schema, &mut |s| {
        if let Some(t) = s.get("type").and_then(Value::as_str)
            && !t.is_empty()
            && !TYPES.contains(&t)
        {
            ok = false;
        }
    });
    ok
}

fn walk_schemas(s: &Value, f: &mut dyn FnMut(&Value)) {
    if !s.is_object() {
        return;
    }
    f(s);
    if let Some(p) = props(s) {
        for v in p.values() {
            walk_schemas(v, f);
        }
    }
    if let Some(i) = s.get("items") {
        match i {
            Value::Array(a) => a.iter().for_each(|x| walk_schemas(x, f)),
            other => walk_schemas(other, f),
        }
    }
    if let Some(a) = additional_schema(s) {
        walk_schemas(a, f);
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for x in s.get(key).and_then(Value::as_array).into_iter().flatten() {
            walk_schemas(x, f);
        }
    }
    if let Some(n) = s.get("not") {
        walk_schemas(n, f);
    }
}

fn is_int_or_string_any_of(s: &Value) -> bool {
    let pattern = |a: &Value| {
        a.as_array().is_some_and(|a| {
            a.len() == 2 && a[0] == json!({"type": "integer"}) && a[1] == json!({"type": "string"})
        })
    };
    s.get("anyOf").is_some_and(pattern)
        || s.get("allOf")
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .and_then(|f| f.get("anyOf"))
            .is_some_and(pattern)
}

fn structural_invariants(s: &Value, lvl: Level, p: &P, out: &mut Vec<Cause>) {
    if !s.is_object() {
        return;
    }
    let ty = str_of(s, "type");
    if ty == "array" && s.get("items").is_none_or(Value::is_null) {
        out.push(required(&p.child("items"), "must be specified"));
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        structural_invariants(items, Level::Item, &p.child("items"), out);
    }
    if let Some(pr) = props(s) {
        for (k, v) in pr {
            structural_invariants(v, Level::Field, &p.child("properties").key(k), out);
        }
    }
    if s.get("additionalProperties").is_some_and(|a| !a.is_null()) {
        if lvl == Level::Root {
            out.push(forbidden(
                &p.child("additionalProperties"),
                "must not be used at the root",
            ));
        }
        if let Some(a) = additional_schema(s) {
            structural_invariants(a, Level::Field, &p.child("additionalProperties"), out);
        }
    }
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let preserve = flag(s, "x-kubernetes-preserve-unknown-fields");
    let embedded = flag(s, "x-kubernetes-embedded-resource");
    if int_or_string && preserve {
        out.push(Cause::invalid(
            p.child("x-kubernetes-preserve-unknown-fields").0,
            &json!(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    if int_or_string && embedded {
        out.push(Cause::invalid(
            p.child("x-kubernetes-embedded-resource").0,
            &json!(true),
            "must be false if x-kubernetes-int-or-string is true",
        ));
    }
    // Value validations (allOf, anyOf, oneOf, not) may not carry structure of their own.
    let skip_any_of = s.get("anyOf").is_some() && is_int_or_string_any_of(s);
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, nested) in s
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            if key == "anyOf" && skip_any_of && s.get("allOf").is_none() {
                continue;
            }
            let np = p.child(key).index(i);
            nested_invariants(nested, &np, key == "allOf" && i == 0 && skip_any_of, out);
        }
    }
    if let Some(n) = s.get("not") {
        nested_invariants(n, &p.child("not"), false, out);
    }
    if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
        && let Err(e) = regex::Regex::new(pattern)
    {
        out.push(Cause::invalid(
            p.child("pattern").0,
            &json!(pattern),
            &format!(
                "must be a valid regular expression, but isn't: {}",
                e.to_string().lines().last().unwrap_or_default().trim()
            ),
        ));
    }
    if embedded && ty != "object" {
        if ty.is_empty() {
            out.push(required(
                &p.child("type"),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        } else {
            out.push(Cause::invalid(
                p.child("type").0,
                &json!(ty),
                "must be object if x-kubernetes-embedded-resource is true",
            ));
        }
    } else if ty.is_empty() && !int_or_string && !preserve {
        let detail = match lvl {
            Level::Root => "must not be empty at the root",
            Level::Item => "must not be empty for specified array items",
            Level::Field => "must not be empty for specified object fields",
        };
        out.push(required(&p.child("type"), detail));
    }
    if embedded && s.get("additionalProperties").is_some_and(|a| !a.is_null()) {
        out.push(forbidden(
            &p.child("additionalProperties"),
            "must not be used if x-kubernetes-embedded-resource is set",
        ));
    }
    if lvl == Level::Root && !ty.is_empty() && ty != "object" {
        out.push(Cause::invalid(
            p.child("type").0,
            &json!(ty),
            "must be object at the root",
        ));
    }
    let check_meta = lvl == Level::Root || embedded;
    if let Some(pr) = props(s) {
        for key in ["kind", "apiVersion"] {
            if check_meta
                && let Some(k) = pr.get(key)
                && str_of(k, "type") != "string"
            {
                out.push(Cause::invalid(
                    p.child("properties").key(key).child("type").0,
                    &json!(str_of(k, "type")),
                    "must be string",
                ));
            }
        }
        if let Some(meta) = pr.get("metadata") {
            let mp = p.child("properties").key("metadata");
            if check_meta && str_of(meta, "type") != "object" {
                out.push(Cause::invalid(
                    mp.child("type").0,
                    &json!(str_of(meta, "type")),
                    "must be object",
                ));
            }
            if lvl == Level::Root {
                let mut rest = meta.as_object().cloned().unwrap_or_default();
                rest.remove("type");
                rest.remove("default");
                if let Some(Value::Object(mprops)) = rest.get("properties") {
                    let only_names = mprops.keys().all(|k| k == "name" || k == "generateName");
                    if only_names {
                        rest.remove("properties");
                    }
                }
                if !rest.is_empty() {
                    out.push(forbidden(
                        &mp,
                        "must not specify anything other than name and generateName, but metadata is implicitly specified",
                    ));
                }
            }
        }
    }
    if embedded && !preserve && props(s).is_none_or(Map::is_empty) {
        out.push(required(
            &p.child("properties"),
            "must not be empty if x-kubernetes-embedded-resource is true without x-kubernetes-preserve-unknown-fields",
        ));
    }
}

/// A schema under a logical junctor must not declare types, defaults, descriptions or
/// extensions: those belong to the structural part.
fn nested_invariants(v: &Value, p: &P, skip_any_of: bool, out: &mut Vec<Cause>) {
    if !v.is_object() {
        return;
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        if key == "anyOf" && skip_any_of {
            continue;
        }
        for (i, nested) in v
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            nested_invariants(nested, &p.child(key).index(i), false, out);
        }
    }
    if let Some(n) = v.get("not") {
        nested_invariants(n, &p.child("not"), false, out);
    }
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        nested_invariants(items, &p.child("items"), false, out);
    }
    if let Some(pr) = props(v) {
        for (k, f) in pr {
            nested_invariants(f, &p.child("properties").key(k), false, out);
        }
    }
    let forbid = |key: &str, detail: &str, out: &mut Vec<Cause>| {
        out.push(forbidden(&p.child(key), detail));
    };
    if !str_of(v, "type").is_empty() {
        forbid("type", "must be empty to be structural", out);
    }
    if v.get("additionalProperties").is_some_and(|a| !a.is_null()) {
        forbid(
            "additionalProperties",
            "must be undefined to be structural",
            out,
        );
    }
    if v.get("default").is_some_and(|d| !d.is_null()) {
        forbid("default", "must be undefined to be structural", out);
    }
    if !str_of(v, "title").is_empty() {
        forbid("title", "must be empty to be structural", out);
    }
    if !str_of(v, "description").is_empty() {
        forbid("description", "must be empty to be structural", out);
    }
    if flag(v, "nullable") {
        forbid("nullable", "must be false to be structural", out);
    }
    if flag(v, "x-kubernetes-preserve-unknown-fields") {
        forbid(
            "x-kubernetes-preserve-unknown-fields",
            "must be false to be structural",
            out,
        );
    }
    if flag(v, "x-kubernetes-embedded-resource") {
        forbid(
            "x-kubernetes-embedded-resource",
            "must be false to be structural",
            out,
        );
    }
    if flag(v, "x-kubernetes-int-or-string") {
        forbid(
            "x-kubernetes-int-or-string",
            "must be false to be structural",
            out,
        );
    }
    if v.get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        forbid(
            "x-kubernetes-list-map-keys",
            "must be empty to be structural",
            out,
        );
    }
    if v.get("x-kubernetes-list-type")
        .is_some_and(|x| !x.is_null())
    {
        forbid(
            "x-kubernetes-list-type",
            "must be undefined to be structural",
            out,
        );
    }
    if v.get("x-kubernetes-map-type").is_some_and(|x| !x.is_null()) {
        forbid(
            "x-kubernetes-map-type",
            "must be undefined to be structural",
            out,
        );
    }
    if v.get("x-kubernetes-validations")
        .and_then(Value::as_array)
        .is_some_and(|a| !a.is_empty())
    {
        forbid(
            "x-kubernetes-validations",
            "must be empty to be structural",
            out,
        );
    }
    if props(v).is_some_and(|pr| pr.contains_key("metadata")) {
        out.push(forbidden(
            &p.child("properties").key("metadata"),
            "must not be specified in a nested context",
        ));
    }
}

/// Every field a value validation names must also be specified structurally.
fn completeness(s: &Value, sp: &P, vp: &P, out: &mut Vec<Cause>) {
    if !s.is_object() {
        return;
    }
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, nested) in s
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            nested_completeness(nested, Some(s), sp, &vp.child(key).index(i), out);
        }
    }
    if let Some(n) = s.get("not") {
        nested_completeness(n, Some(s), sp, &vp.child("not"), out);
    }
    if let Some(pr) = props(s) {
        for (k, f) in pr {
            let fp = sp.child("properties").key(k);
            completeness(f, &fp, &fp, out);
        }
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        let ip = sp.child("items");
        completeness(items, &ip, &ip, out);
    }
    if let Some(a) = additional_schema(s) {
        let ap = sp.child("additionalProperties");
        completeness(a, &ap, &ap, out);
    }
}

fn nested_completeness(v: &Value, s: Option<&Value>, sp: &P, vp: &P, out: &mut Vec<Cause>) {
    if !v.is_object() {
        return;
    }
    let Some(s) = s else {
        out.push(required(sp, &format!("because it is defined in {}", vp.0)));
        return;
    };
    for key in ["allOf", "anyOf", "oneOf"] {
        for (i, nested) in v
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            nested_completeness(nested, Some(s), sp, &vp.child(key).index(i), out);
        }
    }
    if let Some(n) = v.get("not") {
        nested_completeness(n, Some(s), sp, &vp.child("not"), out);
    }
    if let Some(items) = v.get("items").filter(|i| i.is_object()) {
        nested_completeness(
            items,
            s.get("items").filter(|i| i.is_object()),
            &sp.child("items"),
            &vp.child("items"),
            out,
        );
    }
    if let Some(pr) = props(v) {
        for (k, f) in pr {
            match props(s).and_then(|sp| sp.get(k)) {
                Some(sf) => nested_completeness(
                    f,
                    Some(sf),
                    &sp.child("properties").key(k),
                    &vp.child("properties").key(k),
                    out,
                ),
                None => out.push(required(
                    &sp.child("properties").key(k),
                    &format!(
                        "because it is defined in {}",
                        vp.child("properties").key(k).0
                    ),
                )),
            }
        }
    }
}

/// Defaults must be pruned (no unknown fields) and valid against their schema.
fn defaults(s: &Value, p: &P, root: bool, in_meta: bool, out: &mut Vec<Cause>) {
    if !s.is_object() {
        return;
    }
    if let Some(d) = s.get("default").filter(|d| !d.is_null())
        && !in_meta
    {
        let mut pruned = d.clone();
        let mut unknown = Vec::new();
        prune(
            &mut pruned,
            Some(s),
            flag(s, "x-kubernetes-embedded-resource"),
            &mut Vec::new(),
            &mut unknown,
        );
        let dp = p.child("default");
        if &pruned != d {
            out.push(Cause::invalid(
                dp.0.clone(),
                d,
                "must not have unknown fields",
            ));
        } else {
            validate_value(d, s, "", &dp.0, out);
        }
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        defaults(items, &p.child("items"), false, in_meta, out);
    }
    if let Some(pr) = props(s) {
        for (k, f) in pr {
            let meta = (root || flag(s, "x-kubernetes-embedded-resource"))
                && matches!(k.as_str(), "metadata" | "apiVersion" | "kind");
            defaults(
                f,
                &p.child("properties").key(k),
                false,
                in_meta || meta,
                out,
            );
        }
    }
}

fn openapi_errors(
    s: &Value,
    p: &P,
    root: bool,
    in_meta: bool,
    checks: SchemaChecks,
    out: &mut Vec<Cause>,
) {
    if !s.is_object() {
        return;
    }
    let ty = str_of(s, "type");
    if checks.require_valid_types && !ty.is_empty() && !TYPES.contains(&ty) {
        out.push(Cause::not_supported(p.child("type").0, &json!(ty), &TYPES));
    }
    if !str_of(s, "id").is_empty() {
        out.push(forbidden(&p.child("id"), "id is not supported"));
    }
    if s.get("additionalItems").is_some_and(|v| !v.is_null()) {
        out.push(forbidden(
            &p.child("additionalItems"),
            "additionalItems is not supported",
        ));
    }
    if s.get("patternProperties")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        out.push(forbidden(
            &p.child("patternProperties"),
            "patternProperties is not supported",
        ));
    }
    if s.get("definitions")
        .and_then(Value::as_object)
        .is_some_and(|m| !m.is_empty())
    {
        out.push(forbidden(
            &p.child("definitions"),
            "definitions is not supported",
        ));
    }
    if s.get("dependencies").is_some_and(|v| !v.is_null()) {
        out.push(forbidden(
            &p.child("dependencies"),
            "dependencies is not supported",
        ));
    }
    if !str_of(s, "$ref").is_empty() {
        out.push(forbidden(&p.child("$ref"), "$ref is not supported"));
    }
    if ty == "null" {
        out.push(forbidden(
            &p.child("type"),
            "type cannot be set to null, use nullable as an alternative",
        ));
    }
    if s.get("items").is_some_and(Value::is_array) {
        out.push(forbidden(
            &p.child("items"),
            "items must be a schema object and not an array",
        ));
    }
    if in_meta && flag(s, "x-kubernetes-embedded-resource") {
        out.push(forbidden(
            &p.child("x-kubernetes-embedded-resource"),
            "must not be used inside of resource meta",
        ));
    }
    if root && s.get("default").is_some_and(|d| !d.is_null()) {
        out.push(forbidden(&p.child("default"), "must not be set"));
    }
    if flag(s, "uniqueItems") {
        out.push(forbidden(
            &p.child("uniqueItems"),
            "uniqueItems cannot be set to true since the runtime complexity becomes quadratic",
        ));
    }
    if let Some(a) = s.get("additionalProperties").filter(|a| !a.is_null()) {
        if props(s).is_some_and(|pr| !pr.is_empty()) && a != &Value::Bool(true) {
            out.push(forbidden(
                &p.child("additionalProperties"),
                "additionalProperties and properties are mutual exclusive",
            ));
        }
        if a.is_object() {
            openapi_errors(
                a,
                &p.child("additionalProperties"),
                false,
                in_meta,
                checks,
                out,
            );
        }
    }
    if let Some(pr) = props(s) {
        for (k, f) in pr {
            let meta = (root || flag(s, "x-kubernetes-embedded-resource"))
                && matches!(k.as_str(), "metadata" | "apiVersion" | "kind");
            let fp = p.child("properties").key(k);
            if root && meta && f.get("default").is_some_and(|d| !d.is_null()) {
                out.push(forbidden(
                    &fp.child("default"),
                    &format!("must not be set in top-level {k}"),
                ));
            }
            openapi_errors(f, &fp, false, in_meta || meta, checks, out);
        }
    }
    if let Some(n) = s.get("not") {
        openapi_errors(n, &p.child("not"), false, in_meta, checks, out);
    }
    for key in ["allOf", "oneOf", "anyOf"] {
        for (i, x) in s
            .get(key)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .enumerate()
        {
            openapi_errors(x, &p.child(key).index(i), false, in_meta, checks, out);
        }
    }
    if let Some(items) = s.get("items").filter(|i| i.is_object()) {
        openapi_errors(items, &p.child("items"), false, in_meta, checks, out);
    }
    if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(false)) {
        out.push(Cause::invalid(
            p.child("x-kubernetes-preserve-unknown-fields").0,
            &json!(false),
            "must be true or undefined",
        ));
    }
    if let Some(mt) = s.get("x-kubernetes-map-type").and_then(Value::as_str) {
        if ty != "object" {
            if ty.is_empty() {
                out.push(required(
                    &p.child("type"),
                    "must be object if x-kubernetes-map-type is specified",
                ));
            } else {
                out.push(Cause::invalid(
                    p.child("type").0,
                    &json!(ty),
                    "must be object if x-kubernetes-map-type is specified",
                ));
            }
        }
        if mt != "atomic" && mt != "granular" {
            out.push(Cause::not_supported(
                p.child("x-kubernetes-map-type").0,
                &json!(mt),
                &["atomic", "granular"],
            ));
        }
    }
    let list_type = s.get("x-kubernetes-list-type").and_then(Value::as_str);
    if let Some(lt) = list_type {
        if ty != "array" {
            if ty.is_empty() {
                out.push(required(
                    &p.child("type"),
                    "must be array if x-kubernetes-list-type is specified",
                ));
            } else {
                out.push(Cause::invalid(
                    p.child("type").0,
                    &json!(ty),
                    "must be array if x-kubernetes-list-type is specified",
                ));
            }
        }
        if !matches!(lt, "atomic" | "set" | "map") {
            out.push(Cause::not_supported(
                p.child("x-kubernetes-list-type").0,
                &json!(lt),
                &["atomic", "set", "map"],
            ));
        }
    }
    let keys: Vec<&str> = s
        .get("x-kubernetes-list-map-keys")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if !keys.is_empty() {
        match list_type {
            None => out.push(required(
                &p.child("x-kubernetes-list-type"),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
            Some("map") => {}
            Some(other) => out.push(Cause::invalid(
                p.child("x-kubernetes-list-type").0,
                &json!(other),
                "must be map if x-kubernetes-list-map-keys is non-empty",
            )),
        }
    }
    if list_type == Some("map") {
        if keys.is_empty() {
            out.push(required(
                &p.child("x-kubernetes-list-map-keys"),
                "must not be empty if x-kubernetes-list-type is map",
            ));
        }
        match s.get("items").filter(|i| i.is_object()) {
            None => out.push(required(
                &p.child("items"),
                "must have a schema if x-kubernetes-list-type is map",
            )),
            Some(items) if str_of(items, "type") != "object" => out.push(Cause::invalid(
                p.child("items").child("type").0,
                &json!(str_of(items, "type")),
                "must be object if parent array's x-kubernetes-list-type is map",
            )),
            Some(_) => {}
        }
    }
}

// ------------------------------------------------------------------------------------------
// Custom resources
// ------------------------------------------------------------------------------------------

const META_FIELDS: [&str; 3] = ["apiVersion", "kind", "metadata"];

/// Decodes a custom resource as kube-apiserver's unstructured decoder with the version's
/// schema: `metadata` as ObjectMeta, unknown fields pruned, non-nullable `null`s without a
/// default dropped, `default:` values applied. Returns the unknown fields (metadata's first,
/// then the pruned ones sorted, as kube-apiserver reports them).
pub fn coerce(schema: Option<&Value>, obj: &mut Value) -> Result<Vec<Vec<Seg>>, DecodeError> {
    let mut unknown = Vec::new();
    if let Some(meta) = obj.get_mut("metadata").filter(|m| !m.is_null()) {
        unknown.extend(typed::decode_object_meta(meta)?);
    }
    let Some(schema) = schema else {
        return Ok(unknown);
    };
    if flag(schema, "x-kubernetes-preserve-unknown-fields") && props(schema).is_none() {
        default(obj, schema);
        return Ok(unknown);
    }
    let mut pruned = Vec::new();
    prune(obj, Some(schema), true, &mut Vec::new(), &mut pruned);
    pruned.sort_by_key(|p| typed::strict_path(p));
    unknown.extend(pruned);
    prune_nulls(obj, Some(schema));
    default(obj, schema);
    Ok(unknown)
}

fn prune(
    x: &mut Value,
    s: Option<&Value>,
    embedded: bool,
    path: &mut Vec<Seg>,
    unknown: &mut Vec<Vec<Seg>>,
) {
    if let Some(s) = s
        && flag(s, "x-kubernetes-preserve-unknown-fields")
    {
        skip_prune(x, s, path, unknown);
        return;
    }
    match x {
        Value::Object(map) => {
            let Some(s) = s else {
                for k in map.keys() {
                    let mut p = path.clone();
                    p.push(Seg::Key(k.clone()));
                    unknown.push(p);
                }
                map.clear();
                return;
            };
            let embedded = embedded || flag(s, "x-kubernetes-embedded-resource");
            let mut drop = Vec::new();
            for (k, v) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                let sub = props(s)
                    .and_then(|p| p.get(k))
                    .or_else(|| additional_schema(s));
                if let Some(sub) = sub {
                    path.push(Seg::Key(k.clone()));
                    prune(v, Some(sub), false, path, unknown);
                    path.pop();
                } else if s.get("additionalProperties") == Some(&Value::Bool(true)) {
                    // Any value: keep it as it is.
                } else {
                    let mut p = path.clone();
                    p.push(Seg::Key(k.clone()));
                    unknown.push(p);
                    drop.push(k.clone());
                }
            }
            if !drop.is_empty() {
                map.retain(|k, _| !drop.contains(k));
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.get("items")).filter(|i| i.is_object());
            for (i, item) in items.iter_mut().enumerate() {
                path.push(Seg::Index(i));
                prune(item, item_schema, false, path, unknown);
                path.pop();
            }
        }
        _ => {}
    }
}

fn skip_prune(x: &mut Value, s: &Value, path: &mut Vec<Seg>, unknown: &mut Vec<Vec<Seg>>) {
    match x {
        Value::Object(map) => {
            let embedded = flag(s, "x-kubernetes-embedded-resource");
            for (k, v) in map.iter_mut() {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                if let Some(sub) = props(s)
                    .and_then(|p| p.get(k))
                    .or_else(|| additional_schema(s))
                {
                    path.push(Seg::Key(k.clone()));
                    prune(v, Some(sub), false, path, unknown);
                    path.pop();
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(Seg::Index(i));
                    skip_prune(item, item_schema, path, unknown);
                    path.pop();
                }
            }
        }
        _ => {}
    }
}

fn field_schema<'a>(s: Option<&'a Value>, k: &str) -> Option<&'a Value> {
    let s = s?;
    props(s)
        .and_then(|p| p.get(k))
        .or_else(|| additional_schema(s))
}

/// Drops object fields that are `null` where the schema is not nullable and has no default.
fn prune_nulls(x: &mut Value, s: Option<&Value>) {
    match x {
        Value::Object(map) => {
            let mut drop = Vec::new();
            for (k, v) in map.iter_mut() {
                let sub = field_schema(s, k);
                if v.is_null()
                    && let Some(sub) = sub
                    && !flag(sub, "nullable")
                    && sub.get("default").is_none_or(Value::is_null)
                {
                    drop.push(k.clone());
                } else {
                    prune_nulls(v, sub);
                }
            }
            if !drop.is_empty() {
                map.retain(|k, _| !drop.contains(k));
            }
        }
        Value::Array(items) => {
            let item_schema = s.and_then(|s| s.get("items")).filter(|i| i.is_object());
            for item in items {
                prune_nulls(item, item_schema);
            }
        }
        _ => {}
    }
}

fn non_nullable_null(x: Option<&Value>, s: &Value) -> bool {
    x.is_some_and(Value::is_null) && !flag(s, "nullable")
}

/// Applies `default:` values where a field is absent (or a non-nullable `null`).
pub fn default(x: &mut Value, s: &Value) {
    match x {
        Value::Object(map) => {
            if let Some(pr) = props(s) {
                for (k, prop) in pr {
                    let Some(d) = prop.get("default").filter(|d| !d.is_null()) else {
                        continue;
                    };
                    if !map.contains_key(k) || non_nullable_null(map.get(k), prop) {
                        map.insert(k.clone(), d.clone());
                    }
                }
            }
            for (k, v) in map.iter_mut() {
                if let Some(prop) = props(s).and_then(|p| p.get(k)) {
                    default(v, prop);
                } else if let Some(a) = additional_schema(s) {
                    if non_nullable_null(Some(v), a)
                        && let Some(d) = a.get("default").filter(|d| !d.is_null())
                    {
                        *v = d.clone();
                    }
                    default(v, a);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for item in items.iter_mut() {
                    if non_nullable_null(Some(item), item_schema)
                        && let Some(d) = item_schema.get("default").filter(|d| !d.is_null())
                    {
                        *item = d.clone();
                    }
                    default(item, item_schema);
                }
            }
        }
        _ => {}
    }
}

/// Value validation of a custom resource against its version's schema (the root's
/// `apiVersion`, `kind` and `metadata` are the server's business, not the schema's).
pub fn validate(obj: &Value, schema: &Value) -> Vec<Cause> {
    let mut s = schema.clone();
    if let Some(pr) = s.get_mut("properties").and_then(Value::as_object_mut) {
        for k in META_FIELDS {
            pr.remove(k);
        }
    }
    if let Some(req) = s.get_mut("required").and_then(Value::as_array_mut) {
        req.retain(|r| !matches!(r.as_str(), Some("apiVersion" | "kind" | "metadata")));
    }
    let mut body = obj.clone();
    if let Some(m) = body.as_object_mut() {
        for k in META_FIELDS {
            m.remove(k);
        }
    }
    let mut out = Vec::new();
    validate_value(&body, &s, "", "", &mut out);
    out
}

/// The JSON type kube-openapi names a value by.
fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn type_matches(v: &Value, ty: &str) -> bool {
    match ty {
        "object" => v.is_object(),
        "array" => v.is_array(),
        "string" => v.is_string(),
        "boolean" => v.is_boolean(),
        "number" => v.is_number(),
        "integer" => v.is_i64() || v.is_u64() || v.as_f64().is_some_and(|f| f.fract() == 0.0),
        _ => true,
    }
}

fn num_text(v: &Value) -> String {
    match v {
        Value::Number(n) => typed::go_number(n),
        other => other.to_string(),
    }
}

/// Validates `v` against `s`; `name` is kube-openapi's path (in messages), `field` the prefix
/// of the causes' field paths.
fn validate_value(v: &Value, s: &Value, name: &str, field: &str, out: &mut Vec<Cause>) {
    if !s.is_object() {
        return;
    }
    let errpath = if name.is_empty() || name == "." {
        field.to_string()
    } else if field.is_empty() {
        name.to_string()
    } else {
        format!("{field}.{name}")
    };
    let in_body = |msg: &str| format!("{name} in body {msg}");
    let int_or_string = flag(s, "x-kubernetes-int-or-string");
    let ty = if int_or_string {
        "integer,string"
    } else {
        str_of(s, "type")
    };
    if v.is_null() {
        if !ty.is_empty() && !flag(s, "nullable") {
            out.push(Cause {
                reason: "FieldValueTypeInvalid".into(),
                message: format!(
                    "Invalid value: \"null\": {}",
                    in_body(&format!("must be of type {ty}: \"null\""))
                ),
                field: errpath,
            });
        }
        return;
    }
    let ok = if int_or_string {
        type_matches(v, "integer") || v.is_string()
    } else {
        type_matches(v, ty)
    };
    if !ok {
        let actual = json_type(v);
        out.push(Cause {
            reason: "FieldValueTypeInvalid".into(),
            message: format!(
                "Invalid value: {}: {}",
                typed::go_quote(actual),
                in_body(&format!(
                    "must be of type {ty}: {}",
                    typed::go_quote(actual)
                ))
            ),
            field: errpath,
        });
        return;
    }
    for sub in s
        .get("allOf")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        validate_value(v, sub, name, field, out);
    }
    for (key, want_one) in [("anyOf", false), ("oneOf", true)] {
        let Some(alts) = s.get(key).and_then(Value::as_array) else {
            continue;
        };
        if key == "anyOf" && int_or_string {
            continue;
        }
        let passing = alts
            .iter()
            .filter(|alt| {
                let mut errs = Vec::new();
                validate_value(v, alt, name, field, &mut errs);
                errs.is_empty()
            })
            .count();
        let bad = if want_one { passing != 1 } else { passing == 0 };
        if bad {
            let what = if want_one {
                "must validate one and only one schema (oneOf)"
            } else {
                "must validate at least one schema (anyOf)"
            };
            out.push(Cause::invalid(
                errpath.clone(),
                &json!(""),
                &format!("{name:?} {what}"),
            ));
        }
    }
    if let Some(not) = s.get("not") {
        let mut errs = Vec::new();
        validate_value(v, not, name, field, &mut errs);
        if errs.is_empty() {
            out.push(Cause::invalid(
                errpath.clone(),
                &json!(""),
                &format!("{name:?} must not validate the schema (not)"),
            ));
        }
    }
    if let Some(s_str) = v.as_str() {
        let len = s_str.chars().count() as i64;
        if let Some(max) = s.get("maxLength").and_then(Value::as_i64)
            && len > max
        {
            out.push(Cause {
                reason: "FieldValueTooLong".into(),
                message: format!("Too long: may not be more than {max} bytes"),
                field: errpath.clone(),
            });
        }
        if let Some(min) = s.get("minLength").and_then(Value::as_i64)
            && len < min
        {
            out.push(Cause::invalid(
                errpath.clone(),
                v,
                &in_body(&format!("should be at least {min} chars long")),
            ));
        }
        if let Some(pattern) = s.get("pattern").and_then(Value::as_str)
            && let Ok(re) = regex::Regex::new(pattern)
            && !re.is_match(s_str)
        {
            out.push(Cause::invalid(
                errpath.clone(),
                v,
                &in_body(&format!("should match '{pattern}'")),
            ));
        }
    }
    if let Some(n) = v.as_f64() {
        let bound = |key: &str, excl_key: &str, over: bool, out: &mut Vec<Cause>| {
            let Some(b) = s.get(key).and_then(Value::as_f64) else {
                return;
            };
            let exclusive = flag(s, excl_key);
            let fails = match (over, exclusive) {
                (true, false) => n > b,
                (true, true) => n >= b,
                (false, false) => n < b,
                (false, true) => n <= b,
            };
            if fails {
                let rel = match (over, exclusive) {
                    (true, false) => "less than or equal to",
                    (true, true) => "less than",
                    (false, false) => "greater than or equal to",
                    (false, true) => "greater than",
                };
                out.push(Cause::invalid(
                    errpath.clone(),
                    v,
                    &in_body(&format!("should be {rel} {}", num_text(&s[key]))),
                ));
            }
        };
        bound("maximum", "exclusiveMaximum", true, out);
        bound("minimum", "exclusiveMinimum", false, out);
        if let Some(m) = s.get("multipleOf").and_then(Value::as_f64)
            && m > 0.0
            && (n / m).fract() != 0.0
        {
            out.push(Cause::invalid(
                errpath.clone(),
                v,
                &in_body(&format!(
                    "should be a multiple of {}",
                    num_text(&s["multipleOf"])
                )),
            ));
        }
    }
    if let Some(allowed) = s.get("enum").and_then(Value::as_array)
        && !allowed.contains(v)
    {
        let names: Vec<String> = allowed
            .iter()
            .map(|a| a.as_str().map_or_else(|| a.to_string(), str::to_string))
            .collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        out.push(Cause::not_supported(errpath.clone(), v, &refs));
    }
    match v {
        Value::Array(items) => {
            let count = items.len() as i64;
            if let Some(max) = s.get("maxItems").and_then(Value::as_i64)
                && count > max
            {
                out.push(Cause {
                    reason: "FieldValueTooMany".into(),
                    message: format!("Too many: {count}: must have at most {max} items"),
                    field: errpath.clone(),
                });
            }
            if let Some(min) = s.get("minItems").and_then(Value::as_i64)
                && count < min
            {
                out.push(Cause::invalid(
                    errpath.clone(),
                    &json!(count),
                    &in_body(&format!("should have at least {min} items")),
                ));
            }
            if let Some(item_schema) = s.get("items").filter(|i| i.is_object()) {
                for (i, item) in items.iter().enumerate() {
                    validate_value(item, item_schema, &format!("{name}[{i}]"), field, out);
                }
            }
        }
        Value::Object(map) => {
            let count = map.len() as i64;
            if let Some(max) = s.get("maxProperties").and_then(Value::as_i64)
                && count > max
            {
                out.push(Cause {
                    reason: "FieldValueTooMany".into(),
                    message: format!("Too many: {count}: must have at most {max} items"),
                    field: errpath.clone(),
                });
            }
            if let Some(min) = s.get("minProperties").and_then(Value::as_i64)
                && count < min
            {
                out.push(Cause::invalid(
                    errpath.clone(),
                    &json!(count),
                    &in_body(&format!("should have at least {min} properties")),
                ));
            }
            let child = |k: &str| {
                if name.is_empty() {
                    k.to_string()
                } else {
                    format!("{name}.{k}")
                }
            };
            for r in s
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(r) = r.as_str()
                    && !map.contains_key(r)
                {
                    let n = child(r);
                    let f = if field.is_empty() {
                        n
                    } else {
                        format!("{field}.{n}")
                    };
                    out.push(Cause::required(f));
                }
            }
            for (k, val) in map {
                if let Some(sub) = props(s).and_then(|p| p.get(k)) {
                    validate_value(val, sub, &child(k), field, out);
                } else if let Some(a) = additional_schema(s) {
                    validate_value(val, a, &child(k), field, out);
                }
            }
        }
        _ => {}
    }
}

/// What server-side apply's typed conversion rejects in an applied custom resource: fields
/// the schema does not declare, values of the wrong type (structured-merge-diff's texts).
pub fn apply_errors(obj: &Value, schema: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(map) = obj.as_object() else {
        return out;
    };
    for (k, v) in map {
        match k.as_str() {
            "apiVersion" | "kind" => {
                if !v.is_string() && !v.is_null() {
                    out.push(format!(
                        ".{k}: expected string, got &value.valueUnstructured{{Value:{}}}",
                        typed::go_map_text(v)
                    ));
                }
            }
            "metadata" => out.extend(typed::apply_errors_object_meta(v)),
            _ => {
                if flag(schema, "x-kubernetes-preserve-unknown-fields") {
                    if let Some(sub) = field_schema(Some(schema), k) {
                        smd_schema(v, sub, &format!(".{k}"), &mut out);
                    }
                    continue;
                }
                match field_schema(Some(schema), k) {
                    Some(sub) => smd_schema(v, sub, &format!(".{k}"), &mut out),
                    None => {
                        out.push(format!(".{k}: field not declared in schema"));
                        return out;
                    }
                }
            }
        }
    }
    out
}

fn smd_schema(v: &Value, s: &Value, path: &str, out: &mut Vec<String>) {
    if v.is_null() {
        return;
    }
    let got = |v: &Value| typed::go_map_text(v);
    if flag(s, "x-kubernetes-int-or-string") {
        if v.is_object() || v.is_array() {
            out.push(format!("{path}: expected any scalar, got &{{{}}}", got(v)));
        }
        return;
    }
    match str_of(s, "type") {
        "integer" | "number" if !v.is_number() => {
            let t = match v {
                Value::Bool(_) => "bool",
                Value::String(_) => "string",
                Value::Array(_) => "[]interface {}",
                _ => "map[string]interface {}",
            };
            out.push(format!("{path}: expected numeric (int or float), got {t}"));
        }
        "string" if !v.is_string() => out.push(format!(
            "{path}: expected string, got &value.valueUnstructured{{Value:{}}}",
            got(v)
        )),
        "boolean" if !v.is_boolean() => {
            out.push(format!("{path}: expected boolean, got &{{{}}}", got(v)));
        }
        "array" => {
            let Value::Array(items) = v else {
                out.push(format!("{path}: expected list, got &{{{}}}", got(v)));
                return;
            };
            let Some(item_schema) = s.get("items").filter(|i| i.is_object()) else {
                return;
            };
            let keys: Vec<&str> = s
                .get("x-kubernetes-list-map-keys")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            for (i, item) in items.iter().enumerate() {
                let mut sorted = keys.clone();
                sorted.sort_unstable();
                let parts: Vec<String> = sorted
                    .iter()
                    .filter_map(|k| item.get(*k).map(|kv| format!("{k}={kv}")))
                    .collect();
                let element = if parts.is_empty() {
                    format!("[{i}]")
                } else {
                    format!("[{}]", parts.join(","))
                };
                smd_schema(item, item_schema, &format!("{path}{element}"), out);
            }
        }
        "object" => {
            let Value::Object(map) = v else {
                out.push(format!("{path}: expected map, got &{{{}}}", got(v)));
                return;
            };
            let preserve = flag(s, "x-kubernetes-preserve-unknown-fields")
                || s.get("additionalProperties") == Some(&Value::Bool(true));
            let embedded = flag(s, "x-kubernetes-embedded-resource");
            for (k, val) in map {
                if embedded && META_FIELDS.contains(&k.as_str()) {
                    continue;
                }
                match field_schema(Some(s), k) {
                    Some(sub) => smd_schema(val, sub, &format!("{path}.{k}"), out),
                    None if preserve => {}
                    None => {
                        out.push(format!("{path}.{k}: field not declared in schema"));
                        return;
                    }
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checks() -> SchemaChecks {
        SchemaChecks {
            require_structural: true,
            require_valid_types: true,
            status_subresource: false,
        }
    }

    fn errors(schema: Value) -> Vec<String> {
        validate_crd_schema(&schema, "spec.versions[0].schema", checks())
            .iter()
            .map(cause_text)
            .collect()
    }

    #[test]
    fn crd_schema_errors_table() {
        let cases: Vec<(&str, Value, Vec<&str>)> = vec![
            (
                "a valid schema",
                json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {"size": {"type": "integer", "default": 1}}}}}),
                vec![],
            ),
            (
                "an unknown type",
                json!({"type": "object", "properties": {"spec": {"type": "notatype"}}}),
                vec![
                    r#"spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Unsupported value: "notatype": supported values: "array", "boolean", "integer", "number", "object", "string""#,
                ],
            ),
            (
                "a field without a type",
                json!({"type": "object", "properties": {"spec": {"properties": {"a": {"type": "string"}}}}}),
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[spec].type: Required value: must not be empty for specified object fields",
                ],
            ),
            (
                "an array without items",
                json!({"type": "object", "properties": {"list": {"type": "array"}}}),
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[list].items: Required value: must be specified",
                ],
            ),
            (
                "a root that is not an object",
                json!({"type": "string"}),
                vec![
                    r#"spec.versions[0].schema.openAPIV3Schema.type: Invalid value: "string": must be object at the root"#,
                ],
            ),
            (
                "types under anyOf",
                json!({"type": "object", "properties": {"x": {"type": "string", "anyOf": [{"type": "string"}]}}}),
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[x].anyOf[0].type: Forbidden: must be empty to be structural",
                ],
            ),
            (
                "metadata restricted beyond names",
                json!({"type": "object", "properties": {"metadata": {"type": "object", "properties": {"labels": {"type": "object"}}}}}),
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.properties[metadata]: Forbidden: must not specify anything other than name and generateName, but metadata is implicitly specified",
                ],
            ),
            (
                "a default of the wrong type",
                json!({"type": "object", "properties": {"size": {"type": "integer", "default": "big"}}}),
                vec![
                    r#"spec.versions[0].schema.openAPIV3Schema.properties[size].default: Invalid value: "string":  in body must be of type integer: "string""#,
                ],
            ),
            (
                "preserve-unknown-fields false",
                json!({"type": "object", "x-kubernetes-preserve-unknown-fields": false}),
                vec![
                    "spec.versions[0].schema.openAPIV3Schema.x-kubernetes-preserve-unknown-fields: Invalid value: false: must be true or undefined",
                ],
            ),
        ];
        for (name, schema, want) in cases {
            assert_eq!(errors(schema), want, "{name}");
        }
    }

    #[test]
    fn custom_resources_are_pruned_nulled_and_defaulted() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "properties": {
            "size": {"type": "integer", "default": 3},
            "mode": {"type": "string"},
            "note": {"type": "string", "nullable": true},
            "tags": {"type": "array", "items": {"type": "string"}},
            "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}}});
        let mut v = json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w", "bogus": 1},
            "spec": {"mode": null, "note": null, "extra": true, "tags": [null], "free": {"any": 1}}, "junk": 1});
        let unknown = coerce(Some(&schema), &mut v).expect("decodes");
        let paths: Vec<String> = unknown.iter().map(|p| typed::strict_path(p)).collect();
        assert_eq!(paths, ["metadata.bogus", "junk", "spec.extra"]);
        assert_eq!(
            v,
            json!({"apiVersion": "x/v1", "kind": "W", "metadata": {"name": "w"},
                "spec": {"note": null, "tags": [null], "free": {"any": 1}, "size": 3}})
        );
        let causes: Vec<String> = validate(&v, &schema).iter().map(cause_text).collect();
        assert_eq!(
            causes,
            [
                r#"spec.tags[0]: Invalid value: "null": spec.tags[0] in body must be of type string: "null""#
            ]
        );
    }

    #[test]
    fn value_validation_messages() {
        let schema = json!({"type": "object", "properties": {"spec": {"type": "object", "required": ["size"], "properties": {
            "size": {"type": "integer", "minimum": 1, "maximum": 10},
            "mode": {"type": "string", "enum": ["a", "b"]},
            "name": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
            "count": {"type": "integer"}}}}});
        let cases = [
            (
                "below the minimum",
                json!({"spec": {"size": 0}}),
                vec![
                    "spec.size: Invalid value: 0: spec.size in body should be greater than or equal to 1",
                ],
            ),
            (
                "above the maximum",
                json!({"spec": {"size": 11}}),
                vec![
                    "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
                ],
            ),
            (
                "not in the enum",
                json!({"spec": {"size": 1, "mode": "c"}}),
                vec![r#"spec.mode: Unsupported value: "c": supported values: "a", "b""#],
            ),
            (
                "required missing",
                json!({"spec": {}}),
                vec!["spec.size: Required value"],
            ),
            (
                "wrong type",
                json!({"spec": {"size": 1, "count": "x"}}),
                vec![
                    r#"spec.count: Invalid value: "string": spec.count in body must be of type integer: "string""#,
                ],
            ),
            (
                "too long and not matching",
                json!({"spec": {"size": 1, "name": "ABCD"}}),
                vec![
                    "spec.name: Too long: may not be more than 3 bytes",
                    r#"spec.name: Invalid value: "ABCD": spec.name in body should match '^[a-z]+$'"#,
                ],
            ),
        ];
        for (name, v, want) in cases {
            let got: Vec<String> = validate(&v, &schema).iter().map(cause_text).collect();
            assert_eq!(got, want, "{name}");
        }
    }
}
