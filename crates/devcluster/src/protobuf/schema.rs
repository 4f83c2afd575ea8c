//! The shape of the generated field table (`table.rs`): message, field and type descriptions
//! that both the table and the decoder use, so that imports run one way (decoder -> table ->
//! schema).

/// One field of a message: (tag, JSON name, type, flags).
pub(crate) type Field = (u32, &'static str, Ty, u8);

/// A message type of the table.
pub(crate) struct Message {
    /// Kubernetes' name for the type (for error messages).
    pub(crate) name: &'static str,
    /// Fields sorted by tag.
    pub(crate) fields: &'static [Field],
}

/// How a field's value is encoded and turned into JSON.
// Not every variant occurs in the packages the table covers today (e.g. `double` fields).
#[allow(dead_code)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ty {
    String,
    Int32,
    Int64,
    Bool,
    Double,
    /// Base64 string in JSON.
    Bytes,
    /// An index into `MESSAGES`.
    Msg(u16),
    /// `meta/v1.Time` {1: seconds, 2: nanos}: RFC 3339 with seconds, `null` when zero.
    Time,
    /// `meta/v1.MicroTime`: RFC 3339 with microseconds, `null` when zero.
    MicroTime,
    /// `meta/v1.Duration` {1: nanoseconds}: Go duration string.
    Duration,
    /// `intstr.IntOrString` {1: type, 2: intVal, 3: strVal}: a JSON number or string.
    IntOrString,
    /// `resource.Quantity` {1: string}.
    Quantity,
    /// `runtime.RawExtension` / `meta/v1.FieldsV1` {1: raw JSON bytes}.
    RawJson,
    /// `{repeated string items = 1}` wrappers (`Verbs`, `ExtraValue`): a JSON array.
    StringList,
}

/// Field flag: a repeated field (JSON array).
pub(crate) const REPEATED: u8 = 1;
/// Field flag: a map (repeated entry messages {1: key, 2: value}; JSON object).
pub(crate) const MAP: u8 = 2;
/// Field flag: keep the zero value of a scalar (required field or Go pointer).
pub(crate) const KEEP_ZERO: u8 = 4;
/// Field flag: a Go struct inlined into its parent in JSON.
pub(crate) const INLINE: u8 = 8;
