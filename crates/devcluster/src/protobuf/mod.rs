//! Decoding of `application/vnd.kubernetes.protobuf` request bodies into the JSON object the
//! JSON API would have received for the same request.
//!
//! A body is the 4-byte magic `k8s\0` followed by a `runtime.Unknown` envelope: field 1 is a
//! `TypeMeta` {1: apiVersion, 2: kind}, field 2 the encoded object, 3 its content encoding and
//! 4 its content type. The object is decoded with the field table in `protobuf/table.rs`,
//! generated from the k8s-pb prost sources by `tools/gen_protobuf_table.py`, which also holds
//! Kubernetes' exact JSON names.
//!
//! Go's protobuf encoder writes every non-pointer field, zero or not, and its JSON encoder
//! leaves out zero values of `omitempty` fields. So a scalar that arrives with its zero value is
//! dropped unless the table marks it `KEEP_ZERO` (a required field, or a Go pointer where zero
//! means something, e.g. `replicas: 0`). Messages are always kept (an empty one is `{}`), as are
//! map entries and list items. A zero `Time` / `MicroTime` (sent as an empty message) is `null`,
//! as with Go's JSON (`creationTimestamp: null`).

pub(crate) mod schema;
pub(crate) mod table;

use schema::{INLINE, KEEP_ZERO, MAP, REPEATED, Ty};
use serde_json::{Map, Value};
use table::{KINDS, MESSAGES, META_KINDS};

/// The magic prefix of Kubernetes protobuf bodies.
pub const MAGIC: &[u8; 4] = b"k8s\0";

/// Deepest message nesting accepted.
const MAX_DEPTH: usize = 100;

/// Why a protobuf body could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum ProtobufError {
    #[error("not a Kubernetes protobuf body: missing the \"k8s\\0\" magic prefix")]
    BadMagic,
    #[error("truncated protobuf data in {0}")]
    Truncated(&'static str),
    #[error("malformed varint in {0}")]
    BadVarint(&'static str),
    #[error("invalid field key (tag 0) in {0}")]
    BadTag(&'static str),
    #[error("unsupported protobuf wire type {wire_type} in {message}")]
    UnsupportedWireType {
        message: &'static str,
        wire_type: u8,
    },
    #[error("field {field} of {message} has wire type {wire_type}, expected {expected}")]
    WrongWireType {
        message: &'static str,
        field: &'static str,
        wire_type: u8,
        expected: u8,
    },
    #[error("string in {message}.{field} is not valid UTF-8")]
    Utf8 {
        message: &'static str,
        field: &'static str,
    },
    #[error("the protobuf envelope has no apiVersion and kind")]
    MissingTypeMeta,
    #[error("unsupported protobuf content encoding {0:?}")]
    ContentEncoding(String),
    #[error("unsupported content type {0:?} inside the protobuf envelope")]
    ContentType(String),
    #[error("no protobuf schema for apiVersion {api_version:?}, kind {kind:?}")]
    UnknownKind { api_version: String, kind: String },
    #[error("embedded JSON in {message}.{field} is invalid: {source}")]
    EmbeddedJson {
        message: &'static str,
        field: &'static str,
        source: serde_json::Error,
    },
    #[error("timestamp {0}s is outside the years 0000-9999")]
    TimestampRange(i64),
    #[error("protobuf messages nested deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

type Result<T> = std::result::Result<T, ProtobufError>;

/// Decodes a Kubernetes protobuf request body (`k8s\0` + `runtime.Unknown`) into the JSON
/// object the JSON API would have received, with `apiVersion` and `kind` set.
pub fn decode_to_json(body: &[u8]) -> std::result::Result<Value, ProtobufError> {
    decode_depth(body, 0)
}

fn decode_depth(body: &[u8], depth: usize) -> Result<Value> {
    let rest = body.strip_prefix(MAGIC).ok_or(ProtobufError::BadMagic)?;
    let env = decode_envelope(rest)?;
    if !env.content_encoding.is_empty() {
        return Err(ProtobufError::ContentEncoding(env.content_encoding));
    }
    if !env.content_type.is_empty() && !env.content_type.contains("protobuf") {
        return Err(ProtobufError::ContentType(env.content_type));
    }
    if env.api_version.is_empty() || env.kind.is_empty() {
        return Err(ProtobufError::MissingTypeMeta);
    }
    let index =
        message_for(&env.api_version, &env.kind).ok_or_else(|| ProtobufError::UnknownKind {
            api_version: env.api_version.clone(),
            kind: env.kind.clone(),
        })?;
    let fields = decode_message(index, env.raw, depth + 1)?;
    let mut out = Map::with_capacity(fields.len() + 2);
    out.insert("kind".to_owned(), Value::String(env.kind));
    out.insert("apiVersion".to_owned(), Value::String(env.api_version));
    for (k, v) in fields {
        if k != "kind" && k != "apiVersion" {
            out.insert(k, v);
        }
    }
    Ok(Value::Object(out))
}

/// The table's message for a group version and kind.
pub(crate) fn message_for(api_version: &str, kind: &str) -> Option<u16> {
    KINDS
        .iter()
        .find(|(av, k, _)| *av == api_version && *k == kind)
        .map(|(_, _, i)| *i)
        // Kinds of meta/v1 (DeleteOptions, Status, ...) come under any group version.
        .or_else(|| META_KINDS.iter().find(|(k, _)| *k == kind).map(|(_, i)| *i))
}

struct Envelope<'a> {
    api_version: String,
    kind: String,
    raw: &'a [u8],
    content_encoding: String,
    content_type: String,
}

fn decode_envelope(buf: &[u8]) -> Result<Envelope<'_>> {
    const WHERE: &str = "runtime.Unknown";
    let mut env = Envelope {
        api_version: String::new(),
        kind: String::new(),
        raw: &[],
        content_encoding: String::new(),
        content_type: String::new(),
    };
    let mut r = Reader::new(buf, WHERE);
    while !r.is_empty() {
        let (tag, wt) = r.key()?;
        match (tag, wt) {
            (1, 2) => {
                let mut tm = Reader::new(r.len_delimited()?, "TypeMeta");
                while !tm.is_empty() {
                    let (tag, wt) = tm.key()?;
                    match (tag, wt) {
                        (1, 2) => env.api_version = tm.string("TypeMeta", "apiVersion")?,
                        (2, 2) => env.kind = tm.string("TypeMeta", "kind")?,
                        _ => tm.skip(wt)?,
                    }
                }
            }
            (2, 2) => env.raw = r.len_delimited()?,
            (3, 2) => env.content_encoding = r.string(WHERE, "contentEncoding")?,
            (4, 2) => env.content_type = r.string(WHERE, "contentType")?,
            _ => r.skip(wt)?,
        }
    }
    Ok(env)
}

/// A cursor over protobuf wire data.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    fn is_empty(&self) -> bool {
        self.pos >= self.buf.len()
    }

    fn varint(&mut self) -> Result<u64> {
        let mut value: u64 = 0;
        for i in 0..10 {
            let byte = *self
                .buf
                .get(self.pos)
                .ok_or(ProtobufError::Truncated(self.what))?;
            self.pos += 1;
            if i == 9 && byte > 1 {
                return Err(ProtobufError::BadVarint(self.what));
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte < 0x80 {
                return Ok(value);
            }
        }
        Err(ProtobufError::BadVarint(self.what))
    }

    fn key(&mut self) -> Result<(u32, u8)> {
        let key = self.varint()?;
        let tag = u32::try_from(key >> 3).map_err(|_| ProtobufError::BadTag(self.what))?;
        if tag == 0 {
            return Err(ProtobufError::BadTag(self.what));
        }
        // The mask keeps the value below 8.
        Ok((tag, (key & 7) as u8))
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|end| *end <= self.buf.len())
            .ok_or(ProtobufError::Truncated(self.what))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    fn len_delimited(&mut self) -> Result<&'a [u8]> {
        let len = self.varint()?;
        let len = usize::try_from(len).map_err(|_| ProtobufError::Truncated(self.what))?;
        self.take(len)
    }

    fn string(&mut self, message: &'static str, field: &'static str) -> Result<String> {
        let bytes = self.len_delimited()?;
        String::from_utf8(bytes.to_vec()).map_err(|_| ProtobufError::Utf8 { message, field })
    }

    fn fixed64(&mut self) -> Result<[u8; 8]> {
        let mut out = [0u8; 8];
        out.copy_from_slice(self.take(8)?);
        Ok(out)
    }

    fn skip(&mut self, wire_type: u8) -> Result<()> {
        match wire_type {
            0 => self.varint().map(drop),
            1 => self.take(8).map(drop),
            2 => self.len_delimited().map(drop),
            5 => self.take(4).map(drop),
            _ => Err(ProtobufError::UnsupportedWireType {
                message: self.what,
                wire_type,
            }),
        }
    }
}

/// Decodes one message of the table into a JSON object.
fn decode_message(index: u16, buf: &[u8], depth: usize) -> Result<Map<String, Value>> {
    if depth > MAX_DEPTH {
        return Err(ProtobufError::TooDeep);
    }
    let msg = &MESSAGES[usize::from(index)];
    let mut out = Map::new();
    let mut r = Reader::new(buf, msg.name);
    while !r.is_empty() {
        let (tag, wt) = r.key()?;
        let Ok(pos) = msg.fields.binary_search_by_key(&tag, |f| f.0) else {
            r.skip(wt)?;
            continue;
        };
        let (_, name, ty, flags) = msg.fields[pos];
        let ctx = Ctx {
            message: msg.name,
            field: name,
            depth,
        };
        if flags & MAP != 0 {
            ctx.expect(wt, 2)?;
            let (k, v) = decode_map_entry(&ctx, ty, r.len_delimited()?)?;
            let entry = out
                .entry(name.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(m) = entry {
                m.insert(k, v);
            }
        } else if flags & REPEATED != 0 {
            let items = decode_repeated(&ctx, ty, wt, &mut r)?;
            let entry = out
                .entry(name.to_owned())
                .or_insert_with(|| Value::Array(Vec::new()));
            if let Value::Array(a) = entry {
                a.extend(items);
            }
        } else if flags & INLINE != 0 {
            ctx.expect(wt, 2)?;
            let data = r.len_delimited()?;
            if let Ty::Msg(sub) = ty {
                for (k, v) in decode_message(sub, data, depth + 1)? {
                    out.insert(k, v);
                }
            }
        } else {
            let value = decode_value(&ctx, ty, wt, &mut r)?;
            if is_zero_scalar(ty, &value) && flags & KEEP_ZERO == 0 {
                // Last occurrence wins, as in protobuf.
                out.remove(name);
                continue;
            }
            match (out.get_mut(name), value) {
                // A repeated singular message merges into the earlier one.
                (Some(Value::Object(prev)), Value::Object(next)) if matches!(ty, Ty::Msg(_)) => {
                    prev.extend(next);
                }
                (_, value) => {
                    out.insert(name.to_owned(), value);
                }
            }
        }
    }
    Ok(out)
}

/// Where a value is being decoded, for errors.
struct Ctx {
    message: &'static str,
    field: &'static str,
    depth: usize,
}

impl Ctx {
    fn expect(&self, wire_type: u8, expected: u8) -> Result<()> {
        if wire_type == expected {
            Ok(())
        } else {
            Err(ProtobufError::WrongWireType {
                message: self.message,
                field: self.field,
                wire_type,
                expected,
            })
        }
    }
}

fn is_zero_scalar(ty: Ty, value: &Value) -> bool {
    match ty {
        Ty::String | Ty::Bytes => value.as_str() == Some(""),
        Ty::Int32 | Ty::Int64 => value.as_i64() == Some(0),
        Ty::Double => value.as_f64() == Some(0.0),
        Ty::Bool => value.as_bool() == Some(false),
        _ => false,
    }
}

fn wire_type_of(ty: Ty) -> u8 {
    match ty {
        Ty::Int32 | Ty::Int64 | Ty::Bool => 0,
        Ty::Double => 1,
        _ => 2,
    }
}

fn decode_repeated(ctx: &Ctx, ty: Ty, wt: u8, r: &mut Reader<'_>) -> Result<Vec<Value>> {
    let expected = wire_type_of(ty);
    if wt == 2 && expected != 2 {
        // Packed numbers.
        let mut packed = Reader::new(r.len_delimited()?, ctx.message);
        let mut out = Vec::new();
        while !packed.is_empty() {
            out.push(decode_value(ctx, ty, expected, &mut packed)?);
        }
        return Ok(out);
    }
    Ok(vec![decode_value(ctx, ty, wt, r)?])
}

/// Decodes a map entry {1: string key, 2: value}; a missing value is the type's zero value.
fn decode_map_entry(ctx: &Ctx, ty: Ty, buf: &[u8]) -> Result<(String, Value)> {
    let mut r = Reader::new(buf, ctx.message);
    let mut key = String::new();
    let mut value = None;
    while !r.is_empty() {
        let (tag, wt) = r.key()?;
        match tag {
            1 => {
                ctx.expect(wt, 2)?;
                key = r.string(ctx.message, ctx.field)?;
            }
            2 => value = Some(decode_value(ctx, ty, wt, &mut r)?),
            _ => r.skip(wt)?,
        }
    }
    let value = match value {
        Some(v) => v,
        None => match ty {
            Ty::Int32 | Ty::Int64 => Value::from(0),
            Ty::Bool => Value::Bool(false),
            Ty::Double => Value::from(0.0),
            // Everything else is length-delimited: decode an empty one ([0] is length 0).
            _ => decode_value(ctx, ty, 2, &mut Reader::new(&[0], ctx.message))?,
        },
    };
    Ok((key, value))
}

fn decode_value(ctx: &Ctx, ty: Ty, wt: u8, r: &mut Reader<'_>) -> Result<Value> {
    ctx.expect(wt, wire_type_of(ty))?;
    Ok(match ty {
        Ty::String => Value::String(r.string(ctx.message, ctx.field)?),
        // int32 is sign-extended to 64 bits on the wire; truncation is the protobuf rule.
        Ty::Int32 => Value::from(r.varint()? as i32),
        Ty::Int64 => Value::from(r.varint()? as i64),
        Ty::Bool => Value::Bool(r.varint()? != 0),
        Ty::Double => Value::from(f64::from_le_bytes(r.fixed64()?)),
        Ty::Bytes => Value::String(base64(r.len_delimited()?)),
        Ty::Msg(index) => Value::Object(decode_message(index, r.len_delimited()?, ctx.depth + 1)?),
        Ty::Time => time_value(ctx, r.len_delimited()?, false)?,
        Ty::MicroTime => time_value(ctx, r.len_delimited()?, true)?,
        Ty::Duration => {
            let mut nanos = 0i64;
            let mut m = Reader::new(r.len_delimited()?, "Duration");
            while !m.is_empty() {
                match m.key()? {
                    (1, 0) => nanos = m.varint()? as i64,
                    (_, wt) => m.skip(wt)?,
                }
            }
            Value::String(go_duration(nanos))
        }
        Ty::IntOrString => {
            let (mut kind, mut int_val, mut str_val) = (0i64, 0i32, String::new());
            let mut m = Reader::new(r.len_delimited()?, "IntOrString");
            while !m.is_empty() {
                match m.key()? {
                    (1, 0) => kind = m.varint()? as i64,
                    (2, 0) => int_val = m.varint()? as i32,
                    (3, 2) => str_val = m.string("IntOrString", "strVal")?,
                    (_, wt) => m.skip(wt)?,
                }
            }
            if kind == 1 {
                Value::String(str_val)
            } else {
                Value::from(int_val)
            }
        }
        Ty::Quantity => {
            let mut s = String::new();
            let mut m = Reader::new(r.len_delimited()?, "Quantity");
            while !m.is_empty() {
                match m.key()? {
                    (1, 2) => s = m.string("Quantity", "string")?,
                    (_, wt) => m.skip(wt)?,
                }
            }
            // Go's zero Quantity is "0".
            Value::String(if s.is_empty() { "0".to_owned() } else { s })
        }
        Ty::RawJson => {
            let mut raw: &[u8] = &[];
            let mut m = Reader::new(r.len_delimited()?, ctx.message);
            while !m.is_empty() {
                match m.key()? {
                    (1, 2) => raw = m.len_delimited()?,
                    (_, wt) => m.skip(wt)?,
                }
            }
            raw_json(ctx, raw)?
        }
        Ty::StringList => {
            let mut items = Vec::new();
            let mut m = Reader::new(r.len_delimited()?, ctx.message);
            while !m.is_empty() {
                match m.key()? {
                    (1, 2) => items.push(Value::String(m.string(ctx.message, ctx.field)?)),
                    (_, wt) => m.skip(wt)?,
                }
            }
            Value::Array(items)
        }
    })
}

/// The bytes of a `RawExtension` / `FieldsV1`: JSON, or an embedded protobuf object.
fn raw_json(ctx: &Ctx, raw: &[u8]) -> Result<Value> {
    if raw.is_empty() {
        return Ok(Value::Null);
    }
    if raw.starts_with(MAGIC) {
        return decode_depth(raw, ctx.depth + 1);
    }
    serde_json::from_slice(raw).map_err(|source| ProtobufError::EmbeddedJson {
        message: ctx.message,
        field: ctx.field,
        source,
    })
}

/// `Time` / `MicroTime` {1: seconds, 2: nanos}. Go sends the zero time as an empty message,
/// which is `null` in JSON. `Time` keeps whole seconds only, as Go's decoder does.
fn time_value(ctx: &Ctx, buf: &[u8], micro: bool) -> Result<Value> {
    if buf.is_empty() {
        return Ok(Value::Null);
    }
    let (mut seconds, mut nanos) = (0i64, 0i32);
    let mut m = Reader::new(buf, ctx.message);
    while !m.is_empty() {
        match m.key()? {
            (1, 0) => seconds = m.varint()? as i64,
            (2, 0) => nanos = m.varint()? as i32,
            (_, wt) => m.skip(wt)?,
        }
    }
    let micros = if micro {
        // Normalise like Go's time.Unix: nanos outside [0, 1e9) carry into seconds.
        let total = i128::from(seconds) * 1_000_000_000 + i128::from(nanos);
        seconds = i64::try_from(total.div_euclid(1_000_000_000))
            .map_err(|_| ProtobufError::TimestampRange(seconds))?;
        Some(total.rem_euclid(1_000_000_000) / 1_000)
    } else {
        None
    };
    Ok(Value::String(rfc3339(seconds, micros)?))
}

/// Formats Unix seconds as RFC 3339 in UTC, with 6 fractional digits when `micros` is given.
fn rfc3339(seconds: i64, micros: Option<i128>) -> Result<String> {
    let days = seconds.div_euclid(86_400);
    let secs = seconds.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    if !(0..=9999).contains(&year) {
        return Err(ProtobufError::TimestampRange(seconds));
    }
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    Ok(match micros {
        Some(us) => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}.{us:06}Z"),
        None => format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}Z"),
    })
}

/// Formats nanoseconds like Go's `time.Duration.String()`: `1h2m3.5s`, `1.5ms`, `0s`.
fn go_duration(nanos: i64) -> String {
    if nanos == 0 {
        return "0s".to_owned();
    }
    let sign = if nanos < 0 { "-" } else { "" };
    let u = nanos.unsigned_abs();
    fn frac(value: u64, digits: u32) -> String {
        let scale = 10u64.pow(digits);
        let (int, rest) = (value / scale, value % scale);
        if rest == 0 {
            return int.to_string();
        }
        let f = format!("{rest:0width$}", width = digits as usize);
        format!("{int}.{}", f.trim_end_matches('0'))
    }
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}µs", frac(u, 3));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 6));
    }
    let total_secs = u / 1_000_000_000;
    let sub = u % 1_000_000_000;
    let secs = frac((total_secs % 60) * 1_000_000_000 + sub, 9);
    let minutes = total_secs / 60;
    if minutes == 0 {
        return format!("{sign}{secs}s");
    }
    let hours = minutes / 60;
    if hours == 0 {
        return format!("{sign}{}m{secs}s", minutes % 60);
    }
    format!("{sign}{hours}h{}m{secs}s", minutes % 60)
}

/// Standard base64 with padding, as Go's encoding/json writes `[]byte`.
fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A tiny protobuf encoder for building test bodies.
    #[derive(Default)]
    struct Enc(Vec<u8>);

    impl Enc {
        fn new() -> Self {
            Self::default()
        }
        fn varint(&mut self, mut v: u64) {
            while v >= 0x80 {
                self.0.push((v as u8) | 0x80);
                v >>= 7;
            }
            self.0.push(v as u8);
        }
        fn key(&mut self, tag: u32, wt: u8) {
            self.varint(u64::from(tag) << 3 | u64::from(wt));
        }
        fn bytes(mut self, tag: u32, b: &[u8]) -> Self {
            self.key(tag, 2);
            self.varint(b.len() as u64);
            self.0.extend_from_slice(b);
            self
        }
        fn str(self, tag: u32, s: &str) -> Self {
            self.bytes(tag, s.as_bytes())
        }
        fn int(mut self, tag: u32, v: i64) -> Self {
            self.key(tag, 0);
            self.varint(v as u64);
            self
        }
        fn msg(self, tag: u32, m: Enc) -> Self {
            self.bytes(tag, &m.0)
        }
        fn entry(self, tag: u32, k: &str, v: &str) -> Self {
            self.msg(tag, Enc::new().str(1, k).str(2, v))
        }
    }

    fn envelope(api_version: &str, kind: &str, raw: Enc) -> Vec<u8> {
        let mut out = MAGIC.to_vec();
        let env = Enc::new()
            .msg(1, Enc::new().str(1, api_version).str(2, kind))
            .bytes(2, &raw.0)
            .str(3, "")
            .str(4, "");
        out.extend_from_slice(&env.0);
        out
    }

    /// ObjectMeta as Go writes it: every non-pointer field, zero or not.
    fn go_meta(name: &str, labels: &[(&str, &str)]) -> Enc {
        let mut m = Enc::new()
            .str(1, name)
            .str(2, "")
            .str(3, "")
            .str(4, "")
            .str(5, "")
            .str(6, "")
            .int(7, 0)
            .msg(8, Enc::new());
        for (k, v) in labels {
            m = m.entry(11, k, v);
        }
        m
    }

    #[test]
    fn deployment_like_kubectl_create() {
        // kubectl create deployment web --image=nginx:1.27 --replicas=3 --port=80
        let container = Enc::new()
            .str(1, "nginx")
            .str(2, "nginx:1.27")
            .str(5, "")
            .msg(
                6,
                Enc::new()
                    .str(1, "")
                    .int(2, 0)
                    .int(3, 80)
                    .str(4, "")
                    .str(5, ""),
            )
            .msg(8, Enc::new())
            .str(13, "")
            .str(14, "")
            .int(16, 0)
            .int(17, 0)
            .int(18, 0)
            .str(20, "");
        let pod_spec = Enc::new()
            .msg(2, container)
            .str(3, "")
            .str(6, "")
            .str(8, "")
            .int(11, 0)
            .int(12, 0)
            .int(13, 0);
        let spec = Enc::new()
            .int(1, 3)
            .msg(2, Enc::new().entry(1, "app", "web"))
            .msg(
                3,
                Enc::new()
                    .msg(1, go_meta("", &[("app", "web")]))
                    .msg(2, pod_spec),
            )
            .msg(4, Enc::new().str(1, ""))
            .int(5, 0)
            .int(7, 0);
        let status = Enc::new().int(1, 0).int(2, 0).int(3, 0).int(4, 0).int(5, 0);
        let body = envelope(
            "apps/v1",
            "Deployment",
            Enc::new()
                .msg(1, go_meta("web", &[("app", "web")]))
                .msg(2, spec)
                .msg(3, status),
        );
        let got = decode_to_json(&body).unwrap();
        let want = json!({
            "kind": "Deployment",
            "apiVersion": "apps/v1",
            "metadata": {"name": "web", "creationTimestamp": null, "labels": {"app": "web"}},
            "spec": {
                "replicas": 3,
                "selector": {"matchLabels": {"app": "web"}},
                "template": {
                    "metadata": {"creationTimestamp": null, "labels": {"app": "web"}},
                    "spec": {"containers": [{
                        "name": "nginx",
                        "image": "nginx:1.27",
                        "ports": [{"containerPort": 80}],
                        "resources": {}
                    }]}
                },
                "strategy": {}
            },
            "status": {}
        });
        assert_eq!(got, want);
        // The keys come in kubectl's order.
        let keys: Vec<_> = got.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["kind", "apiVersion", "metadata", "spec", "status"]);
    }

    #[test]
    fn explicit_zero_of_pointer_fields_is_kept() {
        let body = envelope(
            "apps/v1",
            "Deployment",
            Enc::new()
                .msg(1, go_meta("web", &[]))
                .msg(2, Enc::new().int(1, 0).int(5, 0)),
        );
        let got = decode_to_json(&body).unwrap();
        assert_eq!(got["spec"], json!({"replicas": 0}));

        // kubectl delete --grace-period=0 sends DeleteOptions under the resource's group.
        let body = envelope(
            "apps/v1",
            "DeleteOptions",
            Enc::new().int(1, 0).str(4, "Foreground"),
        );
        assert_eq!(
            decode_to_json(&body).unwrap(),
            json!({"kind": "DeleteOptions", "apiVersion": "apps/v1",
                   "gracePeriodSeconds": 0, "propagationPolicy": "Foreground"})
        );
    }

    #[test]
    fn secret_bytes_are_base64() {
        let body = envelope(
            "v1",
            "Secret",
            Enc::new()
                .msg(1, go_meta("creds", &[]))
                .msg(2, Enc::new().str(1, "user").bytes(2, b"admin"))
                .msg(2, Enc::new().str(1, "bin").bytes(2, &[0, 1, 2, 0xff]))
                .msg(2, Enc::new().str(1, "empty"))
                .str(3, "Opaque"),
        );
        assert_eq!(
            decode_to_json(&body).unwrap(),
            json!({
                "kind": "Secret", "apiVersion": "v1",
                "metadata": {"name": "creds", "creationTimestamp": null},
                "data": {"user": "YWRtaW4=", "bin": "AAEC/w==", "empty": ""},
                "type": "Opaque"
            })
        );
    }

    #[test]
    fn service_int_or_string_target_port() {
        let port = |name: &str, port: i64, target: Enc| {
            Enc::new()
                .str(1, name)
                .str(2, "TCP")
                .int(3, port)
                .msg(4, target)
                .int(5, 0)
        };
        let spec = Enc::new()
            .msg(
                1,
                port("http", 80, Enc::new().int(1, 0).int(2, 8080).str(3, "")),
            )
            .msg(
                1,
                port("https", 443, Enc::new().int(1, 1).int(2, 0).str(3, "https")),
            )
            .entry(2, "app", "web")
            .str(3, "")
            .str(4, "ClusterIP")
            .str(8, "10.0.0.1")
            .str(18, "10.0.0.1");
        let body = envelope(
            "v1",
            "Service",
            Enc::new()
                .msg(1, go_meta("web", &[]))
                .msg(2, spec)
                .msg(3, Enc::new().msg(1, Enc::new())),
        );
        let got = decode_to_json(&body).unwrap();
        assert_eq!(
            got["spec"],
            json!({
                "ports": [
                    {"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080},
                    {"name": "https", "protocol": "TCP", "port": 443, "targetPort": "https"}
                ],
                "selector": {"app": "web"},
                "type": "ClusterIP",
                "loadBalancerIP": "10.0.0.1",
                "clusterIPs": ["10.0.0.1"],
            })
        );
        assert_eq!(got["spec"]["ports"][1]["targetPort"], json!("https"));
        assert_eq!(got["spec"]["ports"][0]["targetPort"], json!(8080));
        assert_eq!(got["status"], json!({"loadBalancer": {}}));
    }

    #[test]
    fn pod_time_fields() {
        // 2026-01-01T00:00:00Z; Time keeps whole seconds (Go drops the nanos).
        let t = Enc::new().int(1, 1_767_225_600).int(2, 500);
        let status = Enc::new()
            .str(1, "Running")
            .str(5, "10.1.0.7")
            .str(6, "10.2.0.9")
            .msg(7, t)
            .msg(12, Enc::new().str(1, "10.2.0.9"));
        let mut meta = go_meta("p", &[]);
        meta = meta.msg(9, Enc::new().int(1, 951_782_400)); // 2000-02-29T00:00:00Z
        let body = envelope(
            "v1",
            "Pod",
            Enc::new()
                .msg(1, meta)
                .msg(
                    2,
                    Enc::new().msg(2, Enc::new().str(1, "c").str(2, "busybox")),
                )
                .msg(3, status),
        );
        assert_eq!(
            decode_to_json(&body).unwrap(),
            json!({
                "kind": "Pod", "apiVersion": "v1",
                "metadata": {
                    "name": "p", "creationTimestamp": null,
                    "deletionTimestamp": "2000-02-29T00:00:00Z"
                },
                "spec": {"containers": [{"name": "c", "image": "busybox"}]},
                "status": {
                    "phase": "Running", "hostIP": "10.1.0.7", "podIP": "10.2.0.9",
                    "startTime": "2026-01-01T00:00:00Z", "podIPs": [{"ip": "10.2.0.9"}]
                }
            })
        );
    }

    #[test]
    fn lease_micro_time_and_controller_revision_raw_json() {
        let body = envelope(
            "coordination.k8s.io/v1",
            "Lease",
            Enc::new().msg(1, go_meta("l", &[])).msg(
                2,
                Enc::new()
                    .str(1, "me")
                    .int(2, 0)
                    .msg(4, Enc::new().int(1, 1_767_225_600).int(2, 123_456_789)),
            ),
        );
        assert_eq!(
            decode_to_json(&body).unwrap()["spec"],
            json!({"holderIdentity": "me", "leaseDurationSeconds": 0,
                   "renewTime": "2026-01-01T00:00:00.123456Z"})
        );

        let body = envelope(
            "apps/v1",
            "ControllerRevision",
            Enc::new()
                .msg(1, go_meta("r", &[]))
                .msg(2, Enc::new().bytes(1, br#"{"spec":{"x":[1,"a"]}}"#))
                .int(3, 0),
        );
        let got = decode_to_json(&body).unwrap();
        assert_eq!(got["data"], json!({"spec": {"x": [1, "a"]}}));
        assert_eq!(got["revision"], json!(0));
    }

    #[test]
    fn eviction_and_meta_kinds() {
        let body = envelope(
            "policy/v1",
            "Eviction",
            Enc::new()
                .msg(1, go_meta("p", &[]))
                .msg(2, Enc::new().int(1, 30).msg(2, Enc::new().str(1, "u1"))),
        );
        assert_eq!(
            decode_to_json(&body).unwrap(),
            json!({
                "kind": "Eviction", "apiVersion": "policy/v1",
                "metadata": {"name": "p", "creationTimestamp": null},
                "deleteOptions": {"gracePeriodSeconds": 30, "preconditions": {"uid": "u1"}}
            })
        );
        let scale = envelope(
            "autoscaling/v1",
            "Scale",
            Enc::new()
                .msg(1, go_meta("web", &[]))
                .msg(2, Enc::new().int(1, 5)),
        );
        assert_eq!(
            decode_to_json(&scale).unwrap()["spec"],
            json!({"replicas": 5})
        );
    }

    #[test]
    fn probe_handler_and_volume_source_are_inlined() {
        let container = Enc::new().str(1, "c").msg(
            10,
            Enc::new()
                .msg(
                    1,
                    Enc::new().msg(
                        2,
                        Enc::new()
                            .str(1, "/healthz")
                            .msg(2, Enc::new().int(1, 1).str(3, "http")),
                    ),
                )
                .int(2, 5),
        );
        let volume = Enc::new().str(1, "data").msg(
            2,
            Enc::new().msg(2, Enc::new().str(1, "").msg(2, Enc::new().str(1, "1Gi"))),
        );
        let body = envelope(
            "v1",
            "Pod",
            Enc::new().msg(2, Enc::new().msg(1, volume).msg(2, container)),
        );
        assert_eq!(
            decode_to_json(&body).unwrap()["spec"],
            json!({
                "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "1Gi"}}],
                "containers": [{
                    "name": "c",
                    "livenessProbe": {
                        "httpGet": {"path": "/healthz", "port": "http"},
                        "initialDelaySeconds": 5
                    }
                }]
            })
        );
    }

    #[test]
    fn formats() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(999), "999ns");
        assert_eq!(go_duration(1_500), "1.5µs");
        assert_eq!(go_duration(1_500_000), "1.5ms");
        assert_eq!(go_duration(90_000_000_000), "1m30s");
        assert_eq!(go_duration(3_723_500_000_000), "1h2m3.5s");
        assert_eq!(go_duration(-2_000_000_000), "-2s");
        assert_eq!(go_duration(3_600_000_000_000), "1h0m0s");
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(rfc3339(0, None).unwrap(), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(-1, Some(5)).unwrap(), "1969-12-31T23:59:59.000005Z");
        assert_eq!(
            rfc3339(253_402_300_799, None).unwrap(),
            "9999-12-31T23:59:59Z"
        );
        assert!(rfc3339(253_402_300_800, None).is_err());
        assert!(rfc3339(i64::MIN, None).is_err());
    }

    fn fixture_dir() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/protobuf")
    }

    /// Bodies captured from real `kubectl create ...` (see tests/fixtures/protobuf/README.md)
    /// decode to what `kubectl create ... --dry-run=client -o json` prints.
    #[test]
    fn real_kubectl_bodies() {
        let mut checked = Vec::new();
        for entry in std::fs::read_dir(fixture_dir()).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().and_then(|e| e.to_str()) != Some("bin") {
                continue;
            }
            let body = std::fs::read(&path).unwrap();
            let got = decode_to_json(&body).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let want: Value =
                serde_json::from_slice(&std::fs::read(path.with_extension("json")).unwrap())
                    .unwrap();
            assert_eq!(
                got,
                want,
                "{}:
 got {}
want {}",
                path.display(),
                serde_json::to_string_pretty(&got).unwrap(),
                serde_json::to_string_pretty(&want).unwrap()
            );
            checked.push(path.file_stem().unwrap().to_string_lossy().into_owned());
        }
        checked.sort();
        for kind in ["configmap", "deployment", "namespace", "secret", "service"] {
            assert!(
                checked.iter().any(|c| c == kind),
                "no {kind} fixture: {checked:?}"
            );
        }
    }

    #[test]
    fn errors_are_reported() {
        assert!(matches!(decode_to_json(b""), Err(ProtobufError::BadMagic)));
        assert!(matches!(
            decode_to_json(b"{\"kind\":1}"),
            Err(ProtobufError::BadMagic)
        ));
        let unknown = envelope("example.com/v1", "Widget", Enc::new());
        let err = decode_to_json(&unknown).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no protobuf schema for apiVersion \"example.com/v1\", kind \"Widget\""
        );
        assert!(matches!(
            decode_to_json(&envelope("", "", Enc::new())),
            Err(ProtobufError::MissingTypeMeta)
        ));
        // Wrong wire type: metadata.name as a varint.
        let bad = envelope("v1", "ConfigMap", Enc::new().msg(1, Enc::new().int(1, 5)));
        assert!(matches!(
            decode_to_json(&bad),
            Err(ProtobufError::WrongWireType { field: "name", .. })
        ));
        let mut gz = MAGIC.to_vec();
        gz.extend(
            Enc::new()
                .msg(1, Enc::new().str(1, "v1").str(2, "Pod"))
                .str(3, "gzip")
                .0,
        );
        assert!(matches!(
            decode_to_json(&gz),
            Err(ProtobufError::ContentEncoding(_))
        ));
    }

    #[test]
    fn truncated_bodies_fail_without_panicking() {
        let body = std::fs::read(fixture_dir().join("deployment.bin")).unwrap();
        // magic, TypeMeta (key, length, bytes), object (field 2), then two empty strings.
        let type_meta_end = 4 + 2 + usize::from(body[5]);
        for len in (0..body.len() - 4).filter(|len| *len != type_meta_end) {
            assert!(
                decode_to_json(&body[..len]).is_err(),
                "prefix of {len} bytes decoded"
            );
        }
        // Cut right after TypeMeta, the body is a valid object without fields.
        assert_eq!(
            decode_to_json(&body[..type_meta_end]).unwrap(),
            json!({"kind": "Deployment", "apiVersion": "apps/v1"})
        );
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let fixtures: Vec<Vec<u8>> = std::fs::read_dir(fixture_dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().and_then(|e| e.to_str()) == Some("bin"))
            .map(|p| std::fs::read(p).unwrap())
            .collect();
        for round in 0..20_000 {
            let mut body = if round % 2 == 0 {
                // Random bytes after the magic.
                let mut b = MAGIC.to_vec();
                b.extend((0..next() % 64).map(|_| next() as u8));
                b
            } else {
                // A real body with a few bytes flipped.
                let mut b = fixtures[(next() as usize) % fixtures.len()].clone();
                for _ in 0..1 + next() % 4 {
                    let i = 4 + (next() as usize) % (b.len() - 4);
                    b[i] = next() as u8;
                }
                b
            };
            if round % 7 == 0 {
                let cut = (next() as usize) % body.len();
                body.truncate(cut);
            }
            let _ = decode_to_json(&body);
        }
        // Deep nesting (RawExtensions holding protobuf objects) is an error, not a stack
        // overflow.
        let mut deep = envelope("apps/v1", "ControllerRevision", Enc::new());
        for _ in 0..200 {
            let obj = Enc::new().msg(2, Enc::new().bytes(1, &deep));
            deep = envelope("apps/v1", "ControllerRevision", obj);
        }
        assert!(matches!(decode_to_json(&deep), Err(ProtobufError::TooDeep)));
    }
}
