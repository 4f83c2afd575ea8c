//! Request bodies: JSON parsed in one pass that also finds duplicate keys (what
//! `sigs.k8s.io/json`'s strict decoder reports as `duplicate field "spec.replicas"`), YAML,
//! and protobuf.

use crate::error::ApiError;
use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// A parsed body and the strict decoding errors of duplicate keys in it.
pub(crate) struct Parsed {
    pub(crate) value: Value,
    pub(crate) duplicates: Vec<String>,
}

struct State {
    path: String,
    duplicates: Vec<String>,
}

struct Seed<'a>(&'a RefCell<State>);

impl<'de> DeserializeSeed<'de> for Seed<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(ValueVisitor(self.0))
    }
}

struct ValueVisitor<'a>(&'a RefCell<State>);

impl<'de> Visitor<'de> for ValueVisitor<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        loop {
            let len = self.0.borrow().path.len();
            self.0
                .borrow_mut()
                .path
                .push_str(&format!("[{}]", out.len()));
            let next = seq.next_element_seed(Seed(self.0));
            self.0.borrow_mut().path.truncate(len);
            match next? {
                Some(v) => out.push(v),
                None => break,
            }
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let len = {
                let mut st = self.0.borrow_mut();
                let len = st.path.len();
                if !st.path.is_empty() {
                    st.path.push('.');
                }
                st.path.push_str(&key);
                if out.contains_key(&key) {
                    let p = st.path.clone();
                    st.duplicates
                        .push(format!("duplicate field {}", crate::typed::go_quote(&p)));
                }
                len
            };
            let v = map.next_value_seed(Seed(self.0));
            self.0.borrow_mut().path.truncate(len);
            out.insert(key, v?);
        }
        Ok(Value::Object(out))
    }
}

/// Parses JSON, recording duplicate keys with their paths.
pub(crate) fn parse_json(body: &[u8]) -> Result<Parsed, serde_json::Error> {
    let state = RefCell::new(State {
        path: String::new(),
        duplicates: Vec::new(),
    });
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Seed(&state).deserialize(&mut de)?;
    de.end()?;
    Ok(Parsed {
        value,
        duplicates: state.into_inner().duplicates,
    })
}

/// Decodes a JSON, YAML or protobuf request body into one object, with the duplicate keys of
/// JSON bodies.
pub(crate) fn decode(body: &[u8], content_type: &str) -> Result<Parsed, ApiError> {
    if body.is_empty() {
        return Err(ApiError::bad_request("the request body is empty"));
    }
    let parsed = if content_type.contains("yaml") {
        match parse_json(body) {
            Ok(p) => p,
            Err(_) => {
                let text = std::str::from_utf8(body)
                    .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
                let value = serde_saphyr::from_str(text).map_err(|e| {
                    ApiError::bad_request(format!("error converting YAML to JSON: {e}"))
                })?;
                Parsed {
                    value,
                    duplicates: Vec::new(),
                }
            }
        }
    } else if content_type.contains("protobuf") {
        Parsed {
            value: crate::protobuf::decode_to_json(body)
                .map_err(|e| ApiError::bad_request(format!("error decoding protobuf body: {e}")))?,
            duplicates: Vec::new(),
        }
    } else if content_type.contains("cbor") {
        return Err(ApiError::unsupported_media_type(content_type));
    } else {
        parse_json(body).map_err(|e| {
            ApiError::bad_request(format!("json: cannot unmarshal the request body: {e}"))
        })?
    };
    if !parsed.value.is_object() {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn duplicate_keys_are_found_with_their_paths_and_the_last_wins() {
        let p = parse_json(
            br#"{"a": 1, "spec": {"list": [{"x": 1, "x": 2}], "b": true, "b": false}, "a": 3}"#,
        )
        .expect("parses");
        assert_eq!(
            p.duplicates,
            [
                r#"duplicate field "spec.list[0].x""#,
                r#"duplicate field "spec.b""#,
                r#"duplicate field "a""#
            ]
        );
        assert_eq!(
            p.value,
            json!({"a": 3, "spec": {"list": [{"x": 2}], "b": false}})
        );
    }

    #[test]
    fn the_same_as_serde_json_without_duplicates() {
        let text = br#"{"n": -1, "u": 18446744073709551615, "f": 1.5, "s": "\u00e9", "z": null, "e": [], "o": {}}"#;
        let p = parse_json(text).expect("parses");
        let plain: Value = serde_json::from_slice(text).expect("parses");
        assert_eq!(p.value, plain);
        assert!(p.duplicates.is_empty());
        assert!(parse_json(b"{} x").is_err(), "trailing characters");
        assert!(parse_json(b"[1,").is_err());
    }
}
