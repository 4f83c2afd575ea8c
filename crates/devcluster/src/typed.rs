//! Reading a JSON object as kube-apiserver's Go types read it.
//!
//! kube-apiserver decodes a request body into the Go struct of its kind (with the
//! case-sensitive, int-preserving `sigs.k8s.io/json` decoder) before anything else looks at it.
//! That decoding is what makes a built-in kind strict, and this module does the same walk over
//! the field table generated for protobuf bodies (`protobuf/table.rs`, which holds every
//! built-in kind's JSON names and types) plus a hand-written table of the apiextensions types:
//!
//! - a field the type does not declare is an *unknown field*: dropped, and reported as a strict
//!   decoding error (`unknown field "spec.replicaz"`) that `fieldValidation` turns into an error
//!   (`Strict`), a warning (`Warn`, the default) or nothing (`Ignore`);
//! - a value of the wrong JSON type is a decoding error with Go's text (`json: cannot unmarshal
//!   string into Go struct field DeploymentSpec.spec.replicas of type int32`), and so is
//!   `[]byte` data that is not base64 (`illegal base64 data at input byte 4`), a timestamp that
//!   is not RFC 3339, a duration or a quantity that does not parse;
//! - `null` is what Go makes of it: an absent field (nil pointer, map or slice, or the zero
//!   value, which the encoder leaves out), and the zero value of a list item or map entry.
//!
//! Kinds without a table (custom resources) are not walked here: their schema does that job.

use crate::protobuf::schema::{INLINE, MAP, REPEATED, Ty};
use crate::protobuf::table::{KINDS, MESSAGES};
use serde_json::{Map, Value};
use std::sync::OnceLock;

/// What decoding found wrong with an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A value Go cannot decode into its field; the text is Go's.
    Invalid(String),
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::Invalid(m) => f.write_str(m),
        }
    }
}

/// The strict decoding errors of a successful decode: `unknown field "spec.x"` (duplicate
/// fields are found while parsing the body, see [`crate::api`]).
pub type StrictErrors = Vec<String>;

/// A field's type, as the walk sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum T {
    /// A type of the generated table (scalars, well-known types, `Msg` into `MESSAGES`).
    Pb(Ty),
    /// A hand-written message (the apiextensions types), an index into [`X_MESSAGES`].
    X(u8),
    /// `JSONSchemaPropsOrArray`: a schema or a list of schemas (custom unmarshaler).
    SchemaOrArray,
    /// `JSONSchemaPropsOrBool`: a schema or a boolean (custom unmarshaler).
    SchemaOrBool,
    /// `JSONSchemaPropsOrStringArray`: a schema or a list of strings (custom unmarshaler).
    SchemaOrStrings,
    /// `apiextensions.JSON`: any JSON.
    Json,
}

/// A message: of the generated table, or hand-written.
#[derive(Debug, Clone, Copy)]
enum M {
    Pb(u16),
    X(u8),
}

struct XMessage {
    name: &'static str,
    fields: &'static [(&'static str, T, u8)],
}

const S: T = T::Pb(Ty::String);
const B: T = T::Pb(Ty::Bool);
const I32: T = T::Pb(Ty::Int32);
const I64: T = T::Pb(Ty::Int64);
const F64: T = T::Pb(Ty::Double);
/// `metav1.ObjectMeta` of a hand-written message: resolved to the table's message at run time.
const OBJECT_META: T = T::X(u8::MAX);

const CRD: u8 = 0;
const SCHEMA: u8 = 5;

/// The `apiextensions.k8s.io/v1` types (absent from the protobuf table), from their Go
/// definitions: JSON names and types.
static X_MESSAGES: [XMessage; 19] = [
    XMessage {
        name: "CustomResourceDefinition",
        fields: &[
            ("metadata", OBJECT_META, 0),
            ("spec", T::X(1), 0),
            ("status", T::X(12), 0),
        ],
    },
    XMessage {
        name: "CustomResourceDefinitionSpec",
        fields: &[
            ("group", S, 0),
            ("names", T::X(2), 0),
            ("scope", S, 0),
            ("versions", T::X(3), REPEATED),
            ("conversion", T::X(13), 0),
            ("preserveUnknownFields", B, 0),
        ],
    },
    XMessage {
        name: "CustomResourceDefinitionNames",
        fields: &[
            ("plural", S, 0),
            ("singular", S, 0),
            ("shortNames", S, REPEATED),
            ("kind", S, 0),
            ("listKind", S, 0),
            ("categories", S, REPEATED),
        ],
    },
    XMessage {
        name: "CustomResourceDefinitionVersion",
        fields: &[
            ("name", S, 0),
            ("served", B, 0),
            ("storage", B, 0),
            ("deprecated", B, 0),
            ("deprecationWarning", S, 0),
            ("schema", T::X(4), 0),
            ("subresources", T::X(7), 0),
            ("additionalPrinterColumns", T::X(10), REPEATED),
            ("selectableFields", T::X(11), REPEATED),
        ],
    },
    XMessage {
        name: "CustomResourceValidation",
        fields: &[("openAPIV3Schema", T::X(SCHEMA), 0)],
    },
    XMessage {
        name: "JSONSchemaProps",
        fields: &[
            ("id", S, 0),
            ("$schema", S, 0),
            ("$ref", S, 0),
            ("description", S, 0),
            ("type", S, 0),
            ("format", S, 0),
            ("title", S, 0),
            ("default", T::Json, 0),
            ("maximum", F64, 0),
            ("exclusiveMaximum", B, 0),
            ("minimum", F64, 0),
            ("exclusiveMinimum", B, 0),
            ("maxLength", I64, 0),
            ("minLength", I64, 0),
            ("pattern", S, 0),
            ("maxItems", I64, 0),
            ("minItems", I64, 0),
            ("uniqueItems", B, 0),
            ("multipleOf", F64, 0),
            ("enum", T::Json, REPEATED),
            ("maxProperties", I64, 0),
            ("minProperties", I64, 0),
            ("required", S, REPEATED),
            ("items", T::SchemaOrArray, 0),
            ("allOf", T::X(SCHEMA), REPEATED),
            ("oneOf", T::X(SCHEMA), REPEATED),
            ("anyOf", T::X(SCHEMA), REPEATED),
            ("not", T::X(SCHEMA), 0),
            ("properties", T::X(SCHEMA), MAP),
            ("additionalProperties", T::SchemaOrBool, 0),
            ("patternProperties", T::X(SCHEMA), MAP),
            ("dependencies", T::SchemaOrStrings, MAP),
            ("additionalItems", T::SchemaOrBool, 0),
            ("definitions", T::X(SCHEMA), MAP),
            ("externalDocs", T::X(6), 0),
            ("example", T::Json, 0),
            ("nullable", B, 0),
            ("x-kubernetes-preserve-unknown-fields", B, 0),
            ("x-kubernetes-embedded-resource", B, 0),
            ("x-kubernetes-int-or-string", B, 0),
            ("x-kubernetes-list-map-keys", S, REPEATED),
            ("x-kubernetes-list-type", S, 0),
            ("x-kubernetes-map-type", S, 0),
            ("x-kubernetes-validations", T::X(14), REPEATED),
        ],
    },
    XMessage {
        name: "ExternalDocumentation",
        fields: &[("description", S, 0), ("url", S, 0)],
    },
    XMessage {
        name: "CustomResourceSubresources",
        fields: &[("status", T::X(8), 0), ("scale", T::X(9), 0)],
    },
    XMessage {
        name: "CustomResourceSubresourceStatus",
        fields: &[],
    },
    XMessage {
        name: "CustomResourceSubresourceScale",
        fields: &[
            ("specReplicasPath", S, 0),
            ("statusReplicasPath", S, 0),
            ("labelSelectorPath", S, 0),
        ],
    },
    XMessage {
        name: "CustomResourceColumnDefinition",
        fields: &[
            ("name", S, 0),
            ("type", S, 0),
            ("format", S, 0),
            ("description", S, 0),
            ("priority", I32, 0),
            ("jsonPath", S, 0),
        ],
    },
    XMessage {
        name: "SelectableField",
        fields: &[("jsonPath", S, 0)],
    },
    XMessage {
        name: "CustomResourceDefinitionStatus",
        fields: &[
            ("conditions", T::X(15), REPEATED),
            ("acceptedNames", T::X(2), 0),
            ("storedVersions", S, REPEATED),
        ],
    },
    XMessage {
        name: "CustomResourceConversion",
        fields: &[("strategy", S, 0), ("webhook", T::X(16), 0)],
    },
    XMessage {
        name: "ValidationRule",
        fields: &[
            ("rule", S, 0),
            ("message", S, 0),
            ("messageExpression", S, 0),
            ("reason", S, 0),
            ("fieldPath", S, 0),
            ("optionalOldSelf", B, 0),
        ],
    },
    XMessage {
        name: "CustomResourceDefinitionCondition",
        fields: &[
            ("type", S, 0),
            ("status", S, 0),
            ("lastTransitionTime", T::Pb(Ty::Time), 0),
            ("reason", S, 0),
            ("message", S, 0),
        ],
    },
    XMessage {
        name: "WebhookConversion",
        fields: &[
            ("clientConfig", T::X(17), 0),
            ("conversionReviewVersions", S, REPEATED),
        ],
    },
    XMessage {
        name: "WebhookClientConfig",
        fields: &[
            ("url", S, 0),
            ("service", T::X(18), 0),
            ("caBundle", T::Pb(Ty::Bytes), 0),
        ],
    },
    XMessage {
        name: "ServiceReference",
        fields: &[
            ("namespace", S, 0),
            ("name", S, 0),
            ("path", S, 0),
            ("port", I32, 0),
        ],
    },
];

fn object_meta_index() -> Option<u16> {
    static INDEX: OnceLock<Option<u16>> = OnceLock::new();
    *INDEX.get_or_init(|| {
        MESSAGES
            .iter()
            .position(|m| m.name == "ObjectMeta")
            .and_then(|i| u16::try_from(i).ok())
    })
}

/// The table message of a built-in `apiVersion`/`kind`, if the dev cluster knows its Go type.
fn root_of(api_version: &str, kind: &str) -> Option<M> {
    if api_version == "apiextensions.k8s.io/v1" && kind == "CustomResourceDefinition" {
        return Some(M::X(CRD));
    }
    KINDS
        .iter()
        .find(|(av, k, _)| *av == api_version && *k == kind)
        .map(|(_, _, i)| M::Pb(*i))
}

/// Whether objects of `api_version`/`kind` have a Go type the walk knows.
pub fn is_typed(api_version: &str, kind: &str) -> bool {
    root_of(api_version, kind).is_some()
}

fn message_name(m: M) -> &'static str {
    match m {
        M::Pb(i) => MESSAGES.get(usize::from(i)).map_or("", |m| m.name),
        M::X(i) => X_MESSAGES.get(usize::from(i)).map_or("", |m| m.name),
    }
}

/// The field `key` of message `m` (looking into inlined structs), with its type and flags.
fn find_field(m: M, key: &str, depth: usize) -> Option<(T, u8)> {
    if depth > 8 {
        return None;
    }
    match m {
        M::Pb(i) => {
            let msg = MESSAGES.get(usize::from(i))?;
            for (_, name, ty, flags) in msg.fields {
                if flags & INLINE != 0 {
                    if let Ty::Msg(sub) = ty
                        && let Some(f) = find_field(M::Pb(*sub), key, depth + 1)
                    {
                        return Some(f);
                    }
                } else if *name == key {
                    return Some((T::Pb(*ty), *flags));
                }
            }
            None
        }
        M::X(i) => X_MESSAGES
            .get(usize::from(i))?
            .fields
            .iter()
            .find(|(name, _, _)| *name == key)
            .map(|(_, t, f)| (*t, *f)),
    }
}

/// The Go type of a value of `t`, as `reflect.Type.String()` prints it.
fn go_type(t: T) -> String {
    match t {
        T::Pb(ty) => match ty {
            Ty::String => "string".into(),
            Ty::Int32 => "int32".into(),
            Ty::Int64 => "int64".into(),
            Ty::Bool => "bool".into(),
            Ty::Double => "float64".into(),
            Ty::Bytes => "[]uint8".into(),
            Ty::Msg(i) => format!("v1.{}", message_name(M::Pb(i))),
            Ty::Time => "v1.Time".into(),
            Ty::MicroTime => "v1.MicroTime".into(),
            Ty::Duration => "v1.Duration".into(),
            Ty::IntOrString => "intstr.IntOrString".into(),
            Ty::Quantity => "resource.Quantity".into(),
            Ty::RawJson => "runtime.RawExtension".into(),
            Ty::StringList => "v1.ExtraValue".into(),
        },
        T::X(u8::MAX) => "v1.ObjectMeta".into(),
        T::X(i) => format!("v1.{}", message_name(M::X(i))),
        T::SchemaOrArray => "v1.JSONSchemaPropsOrArray".into(),
        T::SchemaOrBool => "v1.JSONSchemaPropsOrBool".into(),
        T::SchemaOrStrings => "v1.JSONSchemaPropsOrStringArray".into(),
        T::Json => "v1.JSON".into(),
    }
}

/// How Go's decoder names a JSON value in an `UnmarshalTypeError`.
fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// One step of a path into an object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Seg {
    /// An object key.
    Key(String),
    /// A list index.
    Index(usize),
}

/// Renders a path as the strict decoder does: keys joined with dots, indexes as `[i]`.
pub fn strict_path(segs: &[Seg]) -> String {
    let mut out = String::new();
    for s in segs {
        match s {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// Which decoder's errors to reproduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `sigs.k8s.io/json` into the Go struct (create, update, JSON and merge patches).
    Json,
    /// `runtime.DefaultUnstructuredConverter` from a map (strategic merge patches).
    Unstructured,
}

/// A failure before context is attached.
enum Fail {
    /// Go's `UnmarshalTypeError`: the JSON value's description and the Go type.
    Type { value: String, go_type: String },
    /// Any other error, its text final.
    Other(String),
}

/// Go's `errorContext`: the struct holding the field being decoded, and the JSON names of the
/// struct fields on the way to it (no list indexes, no map keys).
#[derive(Clone, Default)]
struct GoContext {
    go_struct: &'static str,
    fields: Vec<&'static str>,
}

struct Walk {
    mode: Mode,
    /// Paths of unknown fields.
    unknown: Vec<Vec<Seg>>,
    /// Track strict errors (off inside custom unmarshalers, which decode non-strictly).
    strict_on: bool,
    /// Where the walk is: JSON names, list indexes and map keys.
    path: Vec<Seg>,
    ctx: GoContext,
    /// Inside a custom unmarshaler: the context Go's outer decoder attaches to type errors.
    ctx_override: Option<GoContext>,
    error: Option<String>,
    depth: usize,
}

const MAX_DEPTH: usize = 200;

impl Walk {
    fn new(mode: Mode) -> Self {
        Self {
            mode,
            unknown: Vec::new(),
            strict_on: true,
            path: Vec::new(),
            ctx: GoContext::default(),
            ctx_override: None,
            error: None,
            depth: 0,
        }
    }

    fn fail(&mut self, f: Fail) {
        if self.error.is_some() {
            return;
        }
        self.error = Some(match f {
            Fail::Other(s) => s,
            Fail::Type { value, go_type } => {
                let ctx = self.ctx_override.as_ref().unwrap_or(&self.ctx);
                // The unstructured converter hands custom types their JSON: no field context.
                if self.mode == Mode::Unstructured
                    || (ctx.go_struct.is_empty() && ctx.fields.is_empty())
                {
                    format!("json: cannot unmarshal {value} into Go value of type {go_type}")
                } else {
                    format!(
                        "json: cannot unmarshal {value} into Go struct field {}.{} of type {go_type}",
                        ctx.go_struct,
                        ctx.fields.join(".")
                    )
                }
            }
        });
    }

    fn type_fail(&mut self, v: &Value, go_type: String) {
        if self.mode == Mode::Unstructured && self.ctx_override.is_none() {
            let text = unstructured_type_error(v, &go_type);
            self.fail(Fail::Other(text));
            return;
        }
        self.fail(Fail::Type {
            value: json_kind(v).to_string(),
            go_type,
        });
    }

    /// A type error inside a type with its own `UnmarshalJSON` (which decodes into a string or
    /// an int32 itself).
    fn custom_type_fail(&mut self, v: &Value, go_type: &str) {
        self.fail(Fail::Type {
            value: json_kind(v).to_string(),
            go_type: go_type.into(),
        });
    }

    /// Decodes an object into message `m`, dropping unknown fields and nulls.
    fn message(&mut self, m: M, map: &mut Map<String, Value>, root: bool) {
        if self.depth > MAX_DEPTH {
            self.fail(Fail::Other(
                "json: exceeded max depth while decoding the object".into(),
            ));
            return;
        }
        self.depth += 1;
        let name = message_name(m);
        let mut drop: Vec<String> = Vec::new();
        for (key, val) in map.iter_mut() {
            if self.error.is_some() {
                break;
            }
            if root && (key == "apiVersion" || key == "kind") {
                if !val.is_string() && !val.is_null() {
                    self.ctx.go_struct = name;
                    self.ctx
                        .fields
                        .push(if key == "kind" { "kind" } else { "apiVersion" });
                    self.type_fail(val, "string".into());
                    self.ctx.fields.pop();
                }
                continue;
            }
            let field = match m {
                M::X(u8::MAX) => None,
                _ => find_field(m, key, 0),
            };
            let Some((t, flags)) = field else {
                if self.strict_on {
                    let mut p = self.path.clone();
                    p.push(Seg::Key(key.clone()));
                    self.unknown.push(p);
                }
                drop.push(key.clone());
                continue;
            };
            if val.is_null() && t != T::Json && t != T::Pb(Ty::RawJson) {
                drop.push(key.clone());
                continue;
            }
            let saved = std::mem::take(&mut self.ctx);
            self.ctx.go_struct = name;
            self.ctx.fields = saved.fields.clone();
            self.ctx.fields.push(static_name(m, key));
            self.path.push(Seg::Key(key.clone()));
            self.value(val, t, flags);
            self.path.pop();
            if self.error.is_none() {
                self.ctx = saved;
            }
        }
        if !drop.is_empty() {
            map.retain(|k, _| !drop.contains(k));
        }
        self.depth -= 1;
    }

    /// Decodes a field's value: a list, a map or one value.
    fn value(&mut self, v: &mut Value, t: T, flags: u8) {
        if flags & REPEATED != 0 && t != T::Pb(Ty::Bytes) {
            let Value::Array(items) = v else {
                self.type_fail(v, format!("[]{}", go_type(t)));
                return;
            };
            for (i, item) in items.iter_mut().enumerate() {
                self.path.push(Seg::Index(i));
                if item.is_null() {
                    *item = zero_of(t);
                } else {
                    self.one(item, t);
                }
                self.path.pop();
                if self.error.is_some() {
                    return;
                }
            }
        } else if flags & MAP != 0 {
            let Value::Object(entries) = v else {
                self.type_fail(v, format!("map[string]{}", go_type(t)));
                return;
            };
            for (k, item) in entries.iter_mut() {
                self.path.push(Seg::Key(k.clone()));
                if item.is_null() {
                    *item = zero_of(t);
                } else {
                    self.one(item, t);
                }
                self.path.pop();
                if self.error.is_some() {
                    return;
                }
            }
        } else {
            self.one(v, t);
        }
    }

    /// Decodes one value of type `t` (not null).
    fn one(&mut self, v: &mut Value, t: T) {
        match t {
            T::Pb(Ty::String) => {
                if !v.is_string() {
                    self.type_fail(v, "string".into());
                }
            }
            T::Pb(Ty::Int32) => self.int(v, i64::from(i32::MIN), i64::from(i32::MAX), "int32"),
            T::Pb(Ty::Int64) => self.int(v, i64::MIN, i64::MAX, "int64"),
            T::Pb(Ty::Double) => {
                if !v.is_number() {
                    self.type_fail(v, "float64".into());
                }
            }
            T::Pb(Ty::Bool) => {
                if !v.is_boolean() {
                    self.type_fail(v, "bool".into());
                }
            }
            T::Pb(Ty::Bytes) => match v.as_str() {
                Some(s) => {
                    if let Err(at) = go_base64_decoded_len(s) {
                        let text = format!("illegal base64 data at input byte {at}");
                        self.fail(Fail::Other(match self.mode {
                            Mode::Json => text,
                            Mode::Unstructured => format!("error decoding from json: {text}"),
                        }));
                    }
                }
                None => self.type_fail(v, "[]uint8".into()),
            },
            T::Pb(Ty::Msg(i)) => match v {
                Value::Object(map) => self.message(M::Pb(i), map, false),
                _ => self.type_fail(v, go_type(t)),
            },
            T::X(u8::MAX) => match (v, object_meta_index()) {
                (Value::Object(map), Some(i)) => self.message(M::Pb(i), map, false),
                (Value::Object(_), None) => {}
                (v, _) => self.type_fail(v, go_type(t)),
            },
            T::X(i) => match v {
                Value::Object(map) => self.message(M::X(i), map, false),
                _ => self.type_fail(v, go_type(t)),
            },
            T::Pb(Ty::Time) | T::Pb(Ty::MicroTime) => match v.as_str() {
                Some(s) => {
                    let micro = t == T::Pb(Ty::MicroTime);
                    if let Err(e) = check_rfc3339(s, micro) {
                        self.fail(Fail::Other(e));
                    }
                }
                None => self.custom_type_fail(v, "string"),
            },
            T::Pb(Ty::Duration) => match v.as_str() {
                Some(s) => {
                    if rollgit_syntax::parse_go_duration(s).is_none() {
                        self.fail(Fail::Other(format!(
                            "time: invalid duration {}",
                            go_quote(s)
                        )));
                    }
                }
                None => self.custom_type_fail(v, "string"),
            },
            T::Pb(Ty::IntOrString) => match v {
                Value::String(_) => {}
                Value::Number(n) => match n.as_i64() {
                    Some(i) if i32::try_from(i).is_ok() => {}
                    _ => self.fail(Fail::Type {
                        value: format!("number {}", number_text(n)),
                        go_type: "int32".into(),
                    }),
                },
                other => self.custom_type_fail(other, "int32"),
            },
            T::Pb(Ty::Quantity) => {
                let text = match v {
                    Value::String(s) => s.trim().to_string(),
                    Value::Number(n) => number_text(n),
                    other => other.to_string(),
                };
                if let Err(e) = check_quantity(&text) {
                    self.fail(Fail::Other(e.to_string()));
                }
            }
            T::Pb(Ty::RawJson) | T::Json => {}
            T::Pb(Ty::StringList) => match v {
                Value::Array(items) => {
                    for item in items.iter_mut() {
                        if item.is_null() {
                            *item = Value::String(String::new());
                        } else if !item.is_string() {
                            self.type_fail(item, "string".into());
                            return;
                        }
                    }
                }
                _ => self.type_fail(v, go_type(t)),
            },
            T::SchemaOrArray => match v {
                Value::Object(map) => self.custom(|w| w.message(M::X(SCHEMA), map, false)),
                Value::Array(items) => self.custom(|w| {
                    for item in items.iter_mut() {
                        match item {
                            Value::Object(map) => w.message(M::X(SCHEMA), map, false),
                            Value::Null => {}
                            other => w.type_fail(other, "v1.JSONSchemaProps".into()),
                        }
                    }
                }),
                _ => {}
            },
            T::SchemaOrBool => match v {
                Value::Object(map) => self.custom(|w| w.message(M::X(SCHEMA), map, false)),
                Value::Bool(_) => {}
                _ => self.fail(Fail::Other("boolean or JSON schema expected".into())),
            },
            T::SchemaOrStrings => match v {
                Value::Object(map) => self.custom(|w| w.message(M::X(SCHEMA), map, false)),
                Value::Array(items) => self.custom(|w| {
                    for item in items.iter_mut() {
                        if !item.is_string() && !item.is_null() {
                            w.type_fail(item, "string".into());
                        }
                    }
                }),
                _ => {}
            },
        }
    }

    fn int(&mut self, v: &Value, min: i64, max: i64, go: &str) {
        match v {
            Value::Number(n) => match n.as_i64() {
                Some(i) if (min..=max).contains(&i) => {}
                // The unstructured converter takes a whole float for an integer.
                None if self.mode == Mode::Unstructured
                    && n.as_f64().is_some_and(|f| f.fract() == 0.0) => {}
                _ if self.mode == Mode::Unstructured => self.fail(Fail::Other(format!(
                    "cannot convert {} to {go}",
                    if n.is_f64() { "float64" } else { "int64" }
                ))),
                _ => self.fail(Fail::Type {
                    value: format!("number {}", number_text(n)),
                    go_type: go.into(),
                }),
            },
            other => self.type_fail(other, go.into()),
        }
    }

    /// Runs `f` as Go runs a custom `UnmarshalJSON` that calls `json.Unmarshal` again:
    /// non-strict, and a type error takes the outer decoder's context.
    fn custom(&mut self, f: impl FnOnce(&mut Walk)) {
        let strict_on = self.strict_on;
        let outer = self
            .ctx_override
            .clone()
            .unwrap_or_else(|| self.ctx.clone());
        let saved_ctx = std::mem::take(&mut self.ctx);
        self.strict_on = false;
        self.ctx_override = Some(outer);
        f(self);
        self.strict_on = strict_on;
        self.ctx_override = None;
        if self.error.is_none() {
            self.ctx = saved_ctx;
        }
    }
}

/// The field name as a `'static` string (the tables hold every known name).
fn static_name(m: M, key: &str) -> &'static str {
    fn search(m: M, key: &str, depth: usize) -> Option<&'static str> {
        if depth > 8 {
            return None;
        }
        match m {
            M::Pb(i) => {
                for (_, name, ty, flags) in MESSAGES.get(usize::from(i))?.fields {
                    if flags & INLINE != 0 {
                        if let Ty::Msg(sub) = ty
                            && let Some(n) = search(M::Pb(*sub), key, depth + 1)
                        {
                            return Some(n);
                        }
                    } else if *name == key {
                        return Some(name);
                    }
                }
                None
            }
            M::X(i) => X_MESSAGES
                .get(usize::from(i))?
                .fields
                .iter()
                .find(|(n, _, _)| *n == key)
                .map(|(n, _, _)| *n),
        }
    }
    search(m, key, 0).unwrap_or("?")
}

/// The zero value Go puts in a list item or map entry decoded from `null`.
fn zero_of(t: T) -> Value {
    match t {
        T::Pb(Ty::String) | T::Pb(Ty::Bytes) => Value::String(String::new()),
        T::Pb(Ty::Int32) | T::Pb(Ty::Int64) | T::Pb(Ty::IntOrString) => Value::from(0),
        T::Pb(Ty::Double) => Value::from(0.0),
        T::Pb(Ty::Bool) => Value::Bool(false),
        T::Pb(Ty::Msg(_)) | T::X(_) => Value::Object(Map::new()),
        T::Pb(Ty::Quantity) => Value::String("0".into()),
        T::Pb(Ty::Duration) => Value::String("0s".into()),
        T::Pb(Ty::StringList) => Value::Array(Vec::new()),
        T::Pb(Ty::Time)
        | T::Pb(Ty::MicroTime)
        | T::Pb(Ty::RawJson)
        | T::Json
        | T::SchemaOrArray
        | T::SchemaOrBool
        | T::SchemaOrStrings => Value::Null,
    }
}

fn number_text(n: &serde_json::Number) -> String {
    n.to_string()
}

/// Decodes `obj` (a body of `api_version`/`kind`) as kube-apiserver's Go type does: unknown
/// fields and nulls are dropped in place. `Ok` carries the strict decoding errors (unknown
/// fields); `Err` a decoding error. `None`: the kind has no Go type here (a custom resource).
pub fn decode(
    api_version: &str,
    kind: &str,
    obj: &mut Value,
) -> Option<Result<StrictErrors, DecodeError>> {
    decode_with(api_version, kind, obj, Mode::Json).map(|r| {
        r.map(|unknown| {
            unknown
                .iter()
                .map(|p| format!("unknown field {}", go_quote(&strict_path(p))))
                .collect()
        })
    })
}

/// [`decode`] with the errors of `mode`, and the unknown fields as paths.
pub fn decode_with(
    api_version: &str,
    kind: &str,
    obj: &mut Value,
    mode: Mode,
) -> Option<Result<Vec<Vec<Seg>>, DecodeError>> {
    let root = root_of(api_version, kind)?;
    let Value::Object(map) = obj else {
        return Some(Err(DecodeError::Invalid(format!(
            "json: cannot unmarshal {} into Go value of type v1.{kind}",
            json_kind(obj)
        ))));
    };
    let mut w = Walk::new(mode);
    w.message(root, map, true);
    Some(match w.error {
        Some(e) => Err(DecodeError::Invalid(e)),
        None => Ok(w.unknown),
    })
}

/// Decodes `metadata` of a custom resource as `metav1.ObjectMeta`: unknown fields (with
/// paths under `metadata`) and nulls dropped.
pub fn decode_object_meta(meta: &mut Value) -> Result<Vec<Vec<Seg>>, DecodeError> {
    let Some(index) = object_meta_index() else {
        return Ok(Vec::new());
    };
    let Value::Object(map) = meta else {
        return Err(DecodeError::Invalid(format!(
            "json: cannot unmarshal {} into Go value of type v1.ObjectMeta",
            json_kind(meta)
        )));
    };
    let mut w = Walk::new(Mode::Json);
    w.path.push(Seg::Key("metadata".into()));
    w.ctx.fields.push("metadata");
    w.message(M::Pb(index), map, false);
    match w.error {
        Some(e) => Err(DecodeError::Invalid(e)),
        None => Ok(w.unknown),
    }
}

/// The Go kind `reflect` names for an unstructured value.
fn unstructured_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "invalid",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float64",
        Value::Number(_) => "int64",
        Value::String(_) => "string",
        Value::Array(_) => "slice",
        Value::Object(_) => "map",
    }
}

/// The unstructured converter's error for `v` where a Go `go_type` is expected.
fn unstructured_type_error(v: &Value, go_type: &str) -> String {
    let src = unstructured_kind(v);
    if let Some(_elem) = go_type.strip_prefix("[]") {
        return format!("cannot restore slice from {src}");
    }
    if go_type.starts_with("map[") {
        return format!("cannot restore map from {src}");
    }
    if go_type.starts_with("v1.") {
        return format!("cannot restore struct from: {src}");
    }
    match (src, go_type) {
        // int64 converts to string (as a rune), which the converter refuses by name.
        ("int64", "string") => "cannot convert int64 to string".into(),
        (_, dst) => format!("unrecognized type: {dst}"),
    }
}

/// Go's `strconv.Quote`: a double-quoted string with Go escapes.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c.is_control() => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The decoded length of standard base64 as Go's `base64.StdEncoding` reads it (padding
/// required, `\r` and `\n` skipped), or the input offset Go reports in `illegal base64 data at
/// input byte N`.
pub fn go_base64_decoded_len(s: &str) -> Result<usize, usize> {
    let src = s.as_bytes();
    let value = |c: u8| -> Option<u8> {
        match c {
            b'A'..=b'Z' => Some(c - b'A'),
            b'a'..=b'z' => Some(c - b'a' + 26),
            b'0'..=b'9' => Some(c - b'0' + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    };
    let is_nl = |c: u8| c == b'\n' || c == b'\r';
    let mut si = 0usize;
    let mut n = 0usize;
    loop {
        // One quantum of up to four symbols.
        let mut j = 0usize;
        let mut dlen = 4usize;
        while j < 4 {
            if si == src.len() {
                if j == 0 {
                    return Ok(n);
                }
                // Padding is required: a short quantum is corrupt.
                return Err(si - j);
            }
            let c = src[si];
            si += 1;
            if value(c).is_some() {
                j += 1;
                continue;
            }
            if is_nl(c) {
                continue;
            }
            if c != b'=' {
                return Err(si - 1);
            }
            // Padding.
            match j {
                0 | 1 => return Err(si - 1),
                2 => {
                    while si < src.len() && is_nl(src[si]) {
                        si += 1;
                    }
                    if si == src.len() {
                        return Err(src.len());
                    }
                    if src[si] != b'=' {
                        return Err(si - 1);
                    }
                    si += 1;
                }
                _ => {}
            }
            while si < src.len() && is_nl(src[si]) {
                si += 1;
            }
            if si < src.len() {
                return Err(si);
            }
            dlen = j;
            break;
        }
        n += dlen - 1;
        if dlen < 4 {
            return Ok(n);
        }
    }
}

/// Checks a timestamp as `metav1.Time` (`time.RFC3339`) or `metav1.MicroTime`
/// (`2006-01-02T15:04:05.000000Z07:00`) parses it, with Go's `time.ParseError` text.
fn check_rfc3339(s: &str, micro: bool) -> Result<(), String> {
    let layout = if micro {
        "2006-01-02T15:04:05.000000Z07:00"
    } else {
        "2006-01-02T15:04:05Z07:00"
    };
    let cannot = |rest: &str, elem: &str| {
        Err(format!(
            "parsing time {} as {}: cannot parse {} as {}",
            go_quote(s),
            go_quote(layout),
            go_quote(rest),
            go_quote(elem)
        ))
    };
    let out_of_range =
        |what: &str| Err(format!("parsing time {}: {what} out of range", go_quote(s)));
    let b = s.as_bytes();
    let digits = |at: usize, n: usize| -> Option<u32> {
        let part = b.get(at..at + n)?;
        if part.iter().all(u8::is_ascii_digit) {
            std::str::from_utf8(part).ok()?.parse().ok()
        } else {
            None
        }
    };
    let rest = |at: usize| s.get(at..).unwrap_or("");
    let steps: [(usize, usize, &str); 6] = [
        (0, 4, "2006"),
        (5, 2, "01"),
        (8, 2, "02"),
        (11, 2, "15"),
        (14, 2, "04"),
        (17, 2, "05"),
    ];
    let seps: [(usize, u8, &str); 5] = [
        (4, b'-', "-"),
        (7, b'-', "-"),
        (10, b'T', "T"),
        (13, b':', ":"),
        (16, b':', ":"),
    ];
    let mut values = [0u32; 6];
    for (i, (at, n, elem)) in steps.iter().enumerate() {
        if i > 0 {
            let (sat, sc, selem) = seps[i - 1];
            if b.get(sat) != Some(&sc) {
                return cannot(rest(sat), selem);
            }
        }
        match digits(*at, *n) {
            Some(v) => values[i] = v,
            None => return cannot(rest(*at), elem),
        }
    }
    let [_, month, day, hour, minute, second] = values;
    if !(1..=12).contains(&month) {
        return out_of_range("month");
    }
    if !(1..=31).contains(&day) {
        return out_of_range("day");
    }
    if hour > 23 {
        return out_of_range("hour");
    }
    if minute > 59 {
        return out_of_range("minute");
    }
    if second > 59 {
        return out_of_range("second");
    }
    let mut at = 19;
    if b.get(at) == Some(&b'.') || b.get(at) == Some(&b',') {
        let start = at + 1;
        let mut end = start;
        while b.get(end).is_some_and(u8::is_ascii_digit) {
            end += 1;
        }
        if micro && end - start != 6 {
            return cannot(rest(at), ".000000");
        }
        at = end;
    } else if micro {
        return cannot(rest(at), ".000000");
    }
    match b.get(at) {
        Some(b'Z') if at + 1 == b.len() => Ok(()),
        Some(b'+') | Some(b'-')
            if b.len() == at + 6
                && digits(at + 1, 2).is_some()
                && b[at + 3] == b':'
                && digits(at + 4, 2).is_some() =>
        {
            Ok(())
        }
        Some(b'Z') => Err(format!(
            "parsing time {}: extra text: {}",
            go_quote(s),
            go_quote(rest(at + 1))
        )),
        _ => cannot(rest(at), "Z07:00"),
    }
}

/// Why a quantity does not parse, with `resource.ParseQuantity`'s error texts.
pub fn check_quantity(s: &str) -> Result<(), &'static str> {
    const FORMAT: &str = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
    if s.is_empty() {
        return Err(FORMAT);
    }
    let b = s.as_bytes();
    let mut i = 0;
    if b[0] == b'+' || b[0] == b'-' {
        i += 1;
    }
    let num_start = i;
    let mut dots = 0;
    while i < b.len() && (b[i].is_ascii_digit() || b[i] == b'.') {
        if b[i] == b'.' {
            dots += 1;
        }
        i += 1;
    }
    let num = &s[num_start..i];
    if num.is_empty() || num.bytes().all(|c| c == b'.') {
        return Err(FORMAT);
    }
    if dots > 1 {
        return Err("unable to parse numeric part of quantity");
    }
    let suffix = &s[i..];
    if !suffix
        .bytes()
        .all(|c| b"eEinumkKMGTP+-0123456789".contains(&c))
    {
        return Err(FORMAT);
    }
    let ok = match suffix {
        "" | "Ki" | "Mi" | "Gi" | "Ti" | "Pi" | "Ei" | "n" | "u" | "m" | "k" | "M" | "G" | "T"
        | "P" | "E" => true,
        _ => {
            let exp = suffix
                .strip_prefix('e')
                .or_else(|| suffix.strip_prefix('E'));
            match exp {
                Some(e) => {
                    let digits = e.strip_prefix(['+', '-']).unwrap_or(e);
                    !digits.is_empty() && digits.bytes().all(|c| c.is_ascii_digit())
                }
                None => false,
            }
        }
    };
    if ok {
        Ok(())
    } else {
        Err("unable to parse quantity's suffix")
    }
}

/// The list type of a list field, as server-side apply sees it: the key fields of a
/// `listType=map` list (empty for atomic lists and sets).
pub type ListKeys<'a> = &'a dyn Fn(&[&str]) -> Vec<String>;

/// What server-side apply's typed conversion (structured-merge-diff) finds wrong with an
/// applied object of a built-in kind: `.spec.replicaz: field not declared in schema`,
/// `.spec.replicas: expected numeric (int or float), got string`. `list_keys` gives the key
/// fields of the list at a path of field names. `None`: not a built-in kind.
pub fn apply_errors(
    api_version: &str,
    kind: &str,
    obj: &Value,
    list_keys: ListKeys<'_>,
) -> Option<Vec<String>> {
    let root = root_of(api_version, kind)?;
    let mut out = Vec::new();
    let mut names = Vec::new();
    smd_message(root, obj, "", &mut names, list_keys, &mut out, true);
    Some(out)
}

/// [`apply_errors`] for the `metadata` of a custom resource (paths under `.metadata`).
pub fn apply_errors_object_meta(meta: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(i) = object_meta_index() {
        let none = |_: &[&str]| Vec::new();
        let mut names = vec!["metadata".to_string()];
        smd_message(
            M::Pb(i),
            meta,
            ".metadata",
            &mut names,
            &none,
            &mut out,
            false,
        );
    }
    out
}

/// A value as Go's `%v` prints an unstructured value (`map[a:1]`, `[x y]`, `3`).
fn go_v(v: &Value) -> String {
    go_map_text(v)
}

/// A value as Go's `%#v` prints an unstructured value (YAML numbers are float64).
fn go_sharp_v(v: &Value) -> String {
    match v {
        Value::Null => "interface {}(nil)".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_float(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => go_quote(s),
        Value::Array(a) => format!(
            "[]interface {{}}{{{}}}",
            a.iter().map(go_sharp_v).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[string]interface {{}}{{{}}}",
                keys.iter()
                    .map(|k| format!("{}:{}", go_quote(k), go_sharp_v(&m[k.as_str()])))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// Go's `%T` of an unstructured value decoded from YAML.
fn go_type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "<nil>",
        Value::Bool(_) => "bool",
        Value::Number(_) => "float64",
        Value::String(_) => "string",
        Value::Array(_) => "[]interface {}",
        Value::Object(_) => "map[string]interface {}",
    }
}

/// structured-merge-diff's kind of a table type.
enum Smd {
    Numeric,
    String,
    Boolean,
    AnyScalar,
    Any,
    Map(M),
}

fn smd_kind(t: T) -> Smd {
    match t {
        T::Pb(Ty::Int32) | T::Pb(Ty::Int64) | T::Pb(Ty::Double) => Smd::Numeric,
        T::Pb(Ty::String)
        | T::Pb(Ty::Bytes)
        | T::Pb(Ty::Time)
        | T::Pb(Ty::MicroTime)
        | T::Pb(Ty::Duration) => Smd::String,
        T::Pb(Ty::Bool) => Smd::Boolean,
        T::Pb(Ty::IntOrString) | T::Pb(Ty::Quantity) => Smd::AnyScalar,
        T::Pb(Ty::Msg(i)) => Smd::Map(M::Pb(i)),
        T::X(u8::MAX) => object_meta_index().map_or(Smd::Any, |i| Smd::Map(M::Pb(i))),
        T::X(i) => Smd::Map(M::X(i)),
        _ => Smd::Any,
    }
}

fn smd_scalar(kind: &Smd, v: &Value) -> Option<String> {
    let scalar = matches!(v, Value::Bool(_) | Value::Number(_) | Value::String(_));
    match kind {
        Smd::Numeric if !v.is_number() => Some(format!(
            "expected numeric (int or float), got {}",
            go_type_of(v)
        )),
        Smd::String if !v.is_string() => Some(format!(
            "expected string, got &value.valueUnstructured{{Value:{}}}",
            go_sharp_v(v)
        )),
        Smd::Boolean if !v.is_boolean() => Some(format!("expected boolean, got &{{{}}}", go_v(v))),
        Smd::AnyScalar if !scalar => Some(format!("expected any scalar, got &{{{}}}", go_v(v))),
        _ => None,
    }
}

fn smd_message(
    m: M,
    obj: &Value,
    path: &str,
    names: &mut Vec<String>,
    list_keys: ListKeys<'_>,
    out: &mut Vec<String>,
    root: bool,
) {
    let Value::Object(map) = obj else {
        if !obj.is_null() {
            out.push(format!(
                "{}: expected map, got &{{{}}}",
                or_dot(path),
                go_v(obj)
            ));
        }
        return;
    };
    for (key, val) in map {
        let here = format!("{path}.{key}");
        if root && (key == "apiVersion" || key == "kind") {
            if let Some(e) = smd_scalar(&Smd::String, val) {
                out.push(format!("{here}: {e}"));
            }
            continue;
        }
        let field = match m {
            M::X(u8::MAX) => None,
            _ => find_field(m, key, 0),
        };
        let Some((t, flags)) = field else {
            out.push(format!("{here}: field not declared in schema"));
            // structured-merge-diff stops at the first undeclared field of an object.
            return;
        };
        names.push(key.clone());
        smd_value(t, flags, val, &here, names, list_keys, out);
        names.pop();
    }
}

fn or_dot(path: &str) -> &str {
    if path.is_empty() { "." } else { path }
}

fn smd_value(
    t: T,
    flags: u8,
    v: &Value,
    path: &str,
    names: &mut Vec<String>,
    list_keys: ListKeys<'_>,
    out: &mut Vec<String>,
) {
    if v.is_null() {
        return;
    }
    if flags & REPEATED != 0 {
        let Value::Array(items) = v else {
            out.push(format!("{path}: expected list, got &{{{}}}", go_v(v)));
            return;
        };
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let keys = list_keys(&refs);
        for (i, item) in items.iter().enumerate() {
            let element = if keys.is_empty() {
                format!("[{i}]")
            } else {
                let mut sorted = keys.clone();
                sorted.sort();
                let parts: Vec<String> = sorted
                    .iter()
                    .filter_map(|k| item.get(k).map(|kv| format!("{k}={kv}")))
                    .collect();
                if parts.is_empty() {
                    format!("[{i}]")
                } else {
                    format!("[{}]", parts.join(","))
                }
            };
            smd_value(
                t,
                0,
                item,
                &format!("{path}{element}"),
                names,
                list_keys,
                out,
            );
        }
        return;
    }
    if flags & MAP != 0 {
        let Value::Object(entries) = v else {
            out.push(format!("{path}: expected map, got &{{{}}}", go_v(v)));
            return;
        };
        for (k, item) in entries {
            smd_value(t, 0, item, &format!("{path}.{k}"), names, list_keys, out);
        }
        return;
    }
    match smd_kind(t) {
        Smd::Map(m) => smd_message(m, v, path, names, list_keys, out, false),
        Smd::Any => {}
        kind => {
            if let Some(e) = smd_scalar(&kind, v) {
                out.push(format!("{path}: {e}"));
            }
        }
    }
}

/// An object as Go's `json.Marshal` writes a `map[string]interface{}`: keys sorted, compact,
/// `<`, `>` and `&` escaped.
pub fn go_json(v: &Value) -> String {
    let mut out = String::new();
    write_go_json(v, &mut out);
    out
}

fn write_go_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_string(k, out);
                out.push(':');
                write_go_json(&m[k.as_str()], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_go_json(x, out);
            }
            out.push(']');
        }
        Value::String(s) => write_go_string(s, out),
        other => out.push_str(&other.to_string()),
    }
}

fn write_go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// A decoded JSON value as Go prints it with `%v`/`%+v` (`map[a:1 b:[x y]]`).
pub fn go_map_text(v: &Value) -> String {
    match v {
        Value::Null => "<nil>".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => go_number(n),
        Value::String(s) => s.clone(),
        Value::Array(a) => format!(
            "[{}]",
            a.iter().map(go_map_text).collect::<Vec<_>>().join(" ")
        ),
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            format!(
                "map[{}]",
                keys.iter()
                    .map(|k| format!("{k}:{}", go_map_text(&m[k.as_str()])))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
    }
}

/// A number as Go's `%v` prints an `int64` or a `float64` (`%g`, shortest).
pub fn go_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(0.0);
    go_float(f)
}

/// `%v` of a `float64`: `%g` with the shortest representation, exponent when < 1e-4 or ≥ 1e21.
pub fn go_float(f: f64) -> String {
    if f == 0.0 {
        return "0".into();
    }
    let abs = f.abs();
    if (1e-4..1e21).contains(&abs) {
        let s = format!("{f}");
        return s;
    }
    // Rust's `{:e}` is shortest too: 1e21 → "1e21"; Go writes "1e+21".
    let s = format!("{f:e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = match e.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', e),
            };
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(
        api_version: &str,
        kind: &str,
        mut v: Value,
    ) -> (Value, Result<StrictErrors, DecodeError>) {
        let r = decode(api_version, kind, &mut v).expect("typed kind");
        (v, r)
    }

    #[test]
    fn unknown_fields_are_dropped_and_reported_with_paths() {
        let (v, r) = run(
            "apps/v1",
            "Deployment",
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "bogus": 1},
                "spec": {"replicaz": 3, "replicas": 2, "template": {"spec": {"containers": [{"name": "c", "imagez": "x"}]}}}}),
        );
        assert_eq!(
            r,
            Ok(vec![
                r#"unknown field "metadata.bogus""#.to_string(),
                r#"unknown field "spec.replicaz""#.to_string(),
                r#"unknown field "spec.template.spec.containers[0].imagez""#.to_string(),
            ])
        );
        assert_eq!(
            v,
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                "spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "c"}]}}}})
        );
    }

    #[test]
    fn type_errors_read_like_go() {
        let cases = [
            (
                "string for int32",
                json!({"spec": {"replicas": "3"}}),
                "json: cannot unmarshal string into Go struct field DeploymentSpec.spec.replicas of type int32",
            ),
            (
                "fraction for int32",
                json!({"spec": {"replicas": 1.5}}),
                "json: cannot unmarshal number 1.5 into Go struct field DeploymentSpec.spec.replicas of type int32",
            ),
            (
                "number for string in a list item",
                json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": 42}]}}}}),
                "json: cannot unmarshal number into Go struct field Container.spec.template.spec.containers.image of type string",
            ),
            (
                "string for a struct",
                json!({"spec": "x"}),
                "json: cannot unmarshal string into Go struct field Deployment.spec of type v1.DeploymentSpec",
            ),
            (
                "object for a list",
                json!({"spec": {"template": {"spec": {"containers": {}}}}}),
                "json: cannot unmarshal object into Go struct field PodSpec.spec.template.spec.containers of type []v1.Container",
            ),
            (
                "number for a label",
                json!({"metadata": {"labels": {"a": 1}}}),
                "json: cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string",
            ),
            (
                "bool for int-or-string",
                json!({"spec": {"strategy": {"rollingUpdate": {"maxSurge": true}}}}),
                "json: cannot unmarshal bool into Go struct field RollingUpdateDeployment.spec.strategy.rollingUpdate.maxSurge of type int32",
            ),
        ];
        for (name, v, want) in cases {
            let (_, r) = run("apps/v1", "Deployment", v);
            assert_eq!(r, Err(DecodeError::Invalid(want.into())), "{name}");
        }
    }

    #[test]
    fn nulls_are_what_go_makes_of_them() {
        let (v, r) = run(
            "apps/v1",
            "Deployment",
            json!({"metadata": {"name": "w", "labels": null, "annotations": {"a": null}},
                "spec": {"replicas": null, "template": {"spec": {"containers": [{"name": "c", "args": [null, "x"]}]}}}}),
        );
        assert_eq!(r, Ok(vec![]));
        assert_eq!(
            v,
            json!({"metadata": {"name": "w", "annotations": {"a": ""}},
                "spec": {"template": {"spec": {"containers": [{"name": "c", "args": ["", "x"]}]}}}})
        );
    }

    #[test]
    fn secret_data_must_be_base64() {
        let (_, r) = run("v1", "Secret", json!({"data": {"k": "not base64!"}}));
        assert_eq!(
            r,
            Err(DecodeError::Invalid(
                "illegal base64 data at input byte 3".into()
            ))
        );
        let (_, r) = run(
            "v1",
            "Secret",
            json!({"data": {"k": "aGk=", "j": "aGVsbG8="}}),
        );
        assert_eq!(r, Ok(vec![]));
    }

    #[test]
    fn go_base64_offsets() {
        let cases = [
            ("", Ok(0)),
            ("aGk=", Ok(2)),
            ("aGVsbG8=", Ok(5)),
            ("YWJj", Ok(3)),
            ("YQ==", Ok(1)),
            ("YQ", Err(0)),
            ("YWJ", Err(0)),
            ("YW Jj", Err(2)),
            ("YQ=", Err(3)),
            ("Y===", Err(1)),
            ("YQ==x", Err(4)),
            ("aGk=\n", Ok(2)),
            ("YW\nJj", Ok(3)),
        ];
        for (input, want) in cases {
            assert_eq!(go_base64_decoded_len(input), want, "{input:?}");
        }
    }

    #[test]
    fn timestamps_durations_and_quantities() {
        assert!(check_rfc3339("2026-01-02T03:04:05Z", false).is_ok());
        assert!(check_rfc3339("2026-01-02T03:04:05.5+02:00", false).is_ok());
        assert_eq!(
            check_rfc3339("yesterday", false),
            Err(r#"parsing time "yesterday" as "2006-01-02T15:04:05Z07:00": cannot parse "yesterday" as "2006""#.into())
        );
        assert_eq!(
            check_rfc3339("2026-13-02T03:04:05Z", false),
            Err(r#"parsing time "2026-13-02T03:04:05Z": month out of range"#.into())
        );
        assert!(check_rfc3339("2026-01-02T03:04:05.123456Z", true).is_ok());
        for q in ["1", "100m", "1Gi", "0.5", "1e3", "+2k", "1.5E-2"] {
            assert_eq!(check_quantity(q), Ok(()), "{q}");
        }
        for q in ["", "abc", "1GiB", "1.2.3"] {
            assert!(check_quantity(q).is_err(), "{q}");
        }
    }

    #[test]
    fn crd_schema_types_are_strings() {
        let (_, r) = run(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object",
                "properties": {"size": {"type": 42}}}}}]}}),
        );
        assert_eq!(
            r,
            Err(DecodeError::Invalid("json: cannot unmarshal number into Go struct field JSONSchemaProps.spec.versions.schema.openAPIV3Schema.properties.type of type string".into()))
        );
        let (_, r) = run(
            "apiextensions.k8s.io/v1",
            "CustomResourceDefinition",
            json!({"spec": {"versions": [{"name": "v1", "schema": {"openAPIV3Schema": {"type": "object",
                "properties": {"list": {"type": "array", "items": {"type": "string", "bogus": 1}}},
                "additionalProperties": 3}}}]}}),
        );
        assert_eq!(
            r,
            Err(DecodeError::Invalid(
                "boolean or JSON schema expected".into()
            ))
        );
    }

    #[test]
    fn unstructured_mode_errors_read_like_the_converter() {
        let cases = [
            (
                "string for int32",
                json!({"spec": {"replicas": "3"}}),
                "unrecognized type: int32",
            ),
            (
                "fraction for int32",
                json!({"spec": {"replicas": 1.5}}),
                "cannot convert float64 to int32",
            ),
            (
                "int for string",
                json!({"spec": {"template": {"spec": {"containers": [{"name": 1}]}}}}),
                "cannot convert int64 to string",
            ),
            (
                "string for struct",
                json!({"spec": "x"}),
                "cannot restore struct from: string",
            ),
            (
                "map for list",
                json!({"spec": {"template": {"spec": {"containers": {}}}}}),
                "cannot restore slice from map",
            ),
        ];
        for (name, mut v, want) in cases {
            let r =
                decode_with("apps/v1", "Deployment", &mut v, Mode::Unstructured).expect("typed");
            assert_eq!(r, Err(DecodeError::Invalid(want.into())), "{name}");
        }
        let mut whole = json!({"spec": {"replicas": 3.0}});
        assert_eq!(
            decode_with("apps/v1", "Deployment", &mut whole, Mode::Unstructured),
            Some(Ok(vec![]))
        );
    }

    #[test]
    fn apply_errors_read_like_structured_merge_diff() {
        let keys = |p: &[&str]| -> Vec<String> {
            if p.ends_with(&["containers"]) {
                vec!["name".to_string()]
            } else {
                Vec::new()
            }
        };
        let errs = apply_errors(
            "apps/v1",
            "Deployment",
            &json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "w"},
                "spec": {"replicas": "3", "template": {"spec": {"containers": [{"name": "c", "imagez": "x"}]}}}}),
            &keys,
        )
        .expect("typed");
        assert_eq!(
            errs,
            [
                ".spec.replicas: expected numeric (int or float), got string",
                r#".spec.template.spec.containers[name="c"].imagez: field not declared in schema"#
            ]
        );
    }

    #[test]
    fn go_formatting() {
        assert_eq!(
            go_json(&json!({"b": [1, "<x>"], "a": {"z": null, "y": 1.5}})),
            r#"{"a":{"y":1.5,"z":null},"b":[1,"\u003cx\u003e"]}"#
        );
        assert_eq!(
            go_map_text(&json!({"spec": {"replicaz": 3, "x": [true, "s"], "n": null}})),
            "map[spec:map[n:<nil> replicaz:3 x:[true s]]]"
        );
        assert_eq!(go_float(1.5), "1.5");
        assert_eq!(go_float(1e21), "1e+21");
        assert_eq!(go_float(1e-7), "1e-07");
        assert_eq!(go_float(100.0), "100");
    }

    #[test]
    fn go_quote_escapes() {
        assert_eq!(go_quote("a\"b\\c\nd\u{1}"), r#""a\"b\\c\nd\x01""#);
    }
}
