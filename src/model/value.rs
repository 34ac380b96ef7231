//! AMQP-typed header values and their one lossless JSON rendering, shared by peek output and publish input.
//!
//! The JSON form is meant to be read by people first: the common types map to plain JSON
//! (`longstr` to a string, `long` to an integer, `double` to a float, `bool`, `void` to
//! null, arrays and tables), and every other type is a small tagged object such as
//! `{"$type": "i32", "value": 5}` or `{"$type": "bytes", "base64": "AAE="}`. A table that
//! itself has a `$type` key is wrapped as `{"$type": "table", "value": {...}}`, so the
//! rendering can always be read back to the exact value it came from.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use std::fmt;

/// One AMQP 0-9-1 field value (RabbitMQ's dialect), also used for Kafka header values,
/// which are byte strings (`LongString`) or null (`Void`).
#[derive(Debug, Clone, PartialEq)]
pub enum FieldValue {
    Bool(bool),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Decimal {
        scale: u8,
        value: u32,
    },
    ShortString(String),
    /// AMQP `longstr`: bytes, usually but not necessarily UTF-8.
    LongString(Bytes),
    /// AMQP timestamp: seconds since the Unix epoch.
    Timestamp(u64),
    Array(Vec<FieldValue>),
    Table(FieldTable),
    ByteArray(Bytes),
    Void,
}

/// An AMQP table: an ordered list of named values (order is kept as the broker sent it).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FieldTable(pub Vec<(String, FieldValue)>);

/// Why a JSON value could not be read back as a field value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{path}: {reason}")]
pub struct ValueError {
    pub path: String,
    pub reason: String,
}

const TYPE_KEY: &str = "$type";

impl FieldTable {
    pub fn new() -> Self {
        Self(Vec::new())
    }

    pub fn get(&self, key: &str) -> Option<&FieldValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// Case-insensitive lookup, for header names that different clients spell differently.
    pub fn get_ignore_case(&self, key: &str) -> Option<&FieldValue> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }

    /// Replace the value of `key` in place, or append it.
    pub fn insert(&mut self, key: impl Into<String>, value: FieldValue) {
        let key = key.into();
        match self.0.iter_mut().find(|(k, _)| *k == key) {
            Some(slot) => slot.1 = value,
            None => self.0.push((key, value)),
        }
    }

    pub fn remove(&mut self, key: &str) -> Option<FieldValue> {
        let idx = self.0.iter().position(|(k, _)| k == key)?;
        Some(self.0.remove(idx).1)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &FieldValue)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// A copy of the entries whose names `keep` accepts, in their order.
    pub fn filtered(&self, keep: impl Fn(&str) -> bool) -> FieldTable {
        FieldTable(self.0.iter().filter(|(k, _)| keep(k)).cloned().collect())
    }

    pub fn to_json(&self) -> Value {
        let map: Map<String, Value> = self
            .0
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        if map.contains_key(TYPE_KEY) {
            json!({ TYPE_KEY: "table", "value": Value::Object(map) })
        } else {
            Value::Object(map)
        }
    }

    /// Write [`FieldTable::to_json`]'s rendering straight to a serializer, without building
    /// a `Value` first: exports and peeks write every message's headers, and the
    /// fingerprint of every queue message hashes them.
    pub fn serialize_json<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.serialize_json_where(|_| true, s)
    }

    /// [`FieldTable::serialize_json`] of the entries whose names `keep` accepts.
    pub fn serialize_json_where<S: serde::Serializer>(
        &self,
        keep: impl Fn(&str) -> bool,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        use serde::ser::{Serialize, SerializeMap};
        let kept = || self.0.iter().filter(|(k, _)| keep(k));
        // A `$type` key is wrapped and a repeated name keeps its first place with its last
        // value: both rare, both left to `to_json`, which defines them.
        let mut names = std::collections::HashSet::new();
        let plain = kept().all(|(k, _)| k != TYPE_KEY && names.insert(k.as_str()));
        if !plain {
            let table: FieldTable = kept().cloned().collect();
            return table.to_json().serialize(s);
        }
        let mut map = s.serialize_map(Some(kept().count()))?;
        for (k, v) in kept() {
            map.serialize_entry(k, &Json(v))?;
        }
        map.end()
    }

    /// Read a table back from its JSON rendering (a plain object, or a wrapped `table`).
    pub fn from_json(value: &Value) -> Result<Self, ValueError> {
        match FieldValue::from_json_at(value, "")? {
            FieldValue::Table(t) => Ok(t),
            _ => Err(ValueError {
                path: "/".into(),
                reason: "expected an object of headers".into(),
            }),
        }
    }
}

impl FromIterator<(String, FieldValue)> for FieldTable {
    fn from_iter<T: IntoIterator<Item = (String, FieldValue)>>(iter: T) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl FieldValue {
    /// A UTF-8 long string, the type most headers are written as.
    pub fn string(s: impl Into<String>) -> Self {
        FieldValue::LongString(Bytes::from(s.into()))
    }

    /// The value as a correlation ID or other text would read it: strings as they are,
    /// numbers and other scalars as their text; None for null, tables, arrays, byte arrays
    /// and strings that are not UTF-8.
    pub fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            FieldValue::Void
            | FieldValue::Table(_)
            | FieldValue::Array(_)
            | FieldValue::ByteArray(_) => None,
            FieldValue::LongString(_) | FieldValue::ShortString(_) => {
                self.as_str().map(std::borrow::Cow::Borrowed)
            }
            other => Some(std::borrow::Cow::Owned(other.to_string())),
        }
    }

    /// The value as text when it is a string type holding valid UTF-8.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            FieldValue::ShortString(s) => Some(s),
            FieldValue::LongString(b) => std::str::from_utf8(b).ok(),
            _ => None,
        }
    }

    /// Raw bytes of a string or byte-array value.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            FieldValue::ShortString(s) => Some(s.as_bytes()),
            FieldValue::LongString(b) | FieldValue::ByteArray(b) => Some(b),
            _ => None,
        }
    }

    /// Any integer type widened to i64 (u64 values above i64::MAX give None).
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            FieldValue::I8(v) => Some(v.into()),
            FieldValue::U8(v) => Some(v.into()),
            FieldValue::I16(v) => Some(v.into()),
            FieldValue::U16(v) => Some(v.into()),
            FieldValue::I32(v) => Some(v.into()),
            FieldValue::U32(v) => Some(v.into()),
            FieldValue::I64(v) => Some(v),
            FieldValue::U64(v) => i64::try_from(v).ok(),
            FieldValue::Timestamp(v) => i64::try_from(v).ok(),
            _ => None,
        }
    }

    pub fn as_table(&self) -> Option<&FieldTable> {
        match self {
            FieldValue::Table(t) => Some(t),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[FieldValue]> {
        match self {
            FieldValue::Array(a) => Some(a),
            _ => None,
        }
    }

    /// Short name of the AMQP type, as used in the `$type` tag.
    pub fn type_name(&self) -> &'static str {
        match self {
            FieldValue::Bool(_) => "bool",
            FieldValue::I8(_) => "i8",
            FieldValue::U8(_) => "u8",
            FieldValue::I16(_) => "i16",
            FieldValue::U16(_) => "u16",
            FieldValue::I32(_) => "i32",
            FieldValue::U32(_) => "u32",
            FieldValue::I64(_) => "i64",
            FieldValue::U64(_) => "u64",
            FieldValue::F32(_) => "f32",
            FieldValue::F64(_) => "f64",
            FieldValue::Decimal { .. } => "decimal",
            FieldValue::ShortString(_) => "shortstr",
            FieldValue::LongString(_) => "longstr",
            FieldValue::Timestamp(_) => "timestamp",
            FieldValue::Array(_) => "array",
            FieldValue::Table(_) => "table",
            FieldValue::ByteArray(_) => "bytes",
            FieldValue::Void => "void",
        }
    }

    pub fn to_json(&self) -> Value {
        let tagged = |v: Value| json!({ TYPE_KEY: self.type_name(), "value": v });
        match self {
            FieldValue::Bool(b) => Value::Bool(*b),
            FieldValue::I64(v) => json!(v),
            FieldValue::F64(v) if v.is_finite() => json!(v),
            FieldValue::F64(v) => tagged(json!(non_finite_name(*v))),
            FieldValue::F32(v) if v.is_finite() => tagged(json!(f64::from(*v))),
            FieldValue::F32(v) => tagged(json!(non_finite_name(f64::from(*v)))),
            FieldValue::I8(v) => tagged(json!(v)),
            FieldValue::U8(v) => tagged(json!(v)),
            FieldValue::I16(v) => tagged(json!(v)),
            FieldValue::U16(v) => tagged(json!(v)),
            FieldValue::I32(v) => tagged(json!(v)),
            FieldValue::U32(v) => tagged(json!(v)),
            FieldValue::U64(v) => tagged(json!(v)),
            FieldValue::Decimal { scale, value } => {
                json!({ TYPE_KEY: "decimal", "scale": scale, "value": value })
            }
            FieldValue::ShortString(s) => tagged(json!(s)),
            FieldValue::LongString(b) => match std::str::from_utf8(b) {
                Ok(s) => Value::String(s.to_owned()),
                Err(_) => json!({ TYPE_KEY: "longstr", "base64": B64.encode(b) }),
            },
            FieldValue::Timestamp(secs) => match timestamp_rfc3339(*secs) {
                Some(text) => tagged(json!(text)),
                None => tagged(json!(secs)),
            },
            FieldValue::Array(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            FieldValue::Table(t) => t.to_json(),
            FieldValue::ByteArray(b) => json!({ TYPE_KEY: "bytes", "base64": B64.encode(b) }),
            FieldValue::Void => Value::Null,
        }
    }

    /// Write [`FieldValue::to_json`]'s rendering straight to a serializer.
    pub fn serialize_json<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Serialize, SerializeMap, SerializeSeq};
        fn tagged<S: serde::Serializer, V: serde::Serialize + ?Sized>(
            s: S,
            type_name: &str,
            key: &str,
            v: &V,
        ) -> Result<S::Ok, S::Error> {
            let mut map = s.serialize_map(Some(2))?;
            map.serialize_entry(TYPE_KEY, type_name)?;
            map.serialize_entry(key, v)?;
            map.end()
        }
        let name = self.type_name();
        match self {
            FieldValue::Bool(b) => s.serialize_bool(*b),
            FieldValue::I64(v) => s.serialize_i64(*v),
            FieldValue::F64(v) if v.is_finite() => s.serialize_f64(*v),
            FieldValue::F64(v) => tagged(s, name, "value", non_finite_name(*v)),
            FieldValue::F32(v) if v.is_finite() => tagged(s, name, "value", &f64::from(*v)),
            FieldValue::F32(v) => tagged(s, name, "value", non_finite_name(f64::from(*v))),
            FieldValue::I8(v) => tagged(s, name, "value", v),
            FieldValue::U8(v) => tagged(s, name, "value", v),
            FieldValue::I16(v) => tagged(s, name, "value", v),
            FieldValue::U16(v) => tagged(s, name, "value", v),
            FieldValue::I32(v) => tagged(s, name, "value", v),
            FieldValue::U32(v) => tagged(s, name, "value", v),
            FieldValue::U64(v) => tagged(s, name, "value", v),
            FieldValue::Decimal { scale, value } => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry(TYPE_KEY, name)?;
                map.serialize_entry("scale", scale)?;
                map.serialize_entry("value", value)?;
                map.end()
            }
            FieldValue::ShortString(v) => tagged(s, name, "value", v),
            FieldValue::LongString(b) => match std::str::from_utf8(b) {
                Ok(text) => s.serialize_str(text),
                Err(_) => tagged(s, name, "base64", &B64.encode(b)),
            },
            FieldValue::Timestamp(secs) => match timestamp_rfc3339(*secs) {
                Some(text) => tagged(s, name, "value", &text),
                None => tagged(s, name, "value", secs),
            },
            FieldValue::Array(items) => {
                let mut seq = s.serialize_seq(Some(items.len()))?;
                for v in items {
                    seq.serialize_element(&Json(v))?;
                }
                seq.end()
            }
            FieldValue::Table(t) => t.serialize_json(s),
            FieldValue::ByteArray(b) => tagged(s, name, "base64", &B64.encode(b)),
            FieldValue::Void => ().serialize(s),
        }
    }

    /// Read a value back from its JSON rendering.
    pub fn from_json(value: &Value) -> Result<Self, ValueError> {
        Self::from_json_at(value, "")
    }

    fn from_json_at(value: &Value, path: &str) -> Result<Self, ValueError> {
        let err = |reason: String| ValueError {
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            reason,
        };
        match value {
            Value::Null => Ok(FieldValue::Void),
            Value::Bool(b) => Ok(FieldValue::Bool(*b)),
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    Ok(FieldValue::I64(i))
                } else if n.is_u64() {
                    Err(err(format!(
                        "{n} does not fit a signed 64-bit integer; write {{\"$type\": \"u64\", \"value\": {n}}}"
                    )))
                } else {
                    Ok(FieldValue::F64(n.as_f64().unwrap_or(f64::NAN)))
                }
            }
            Value::String(s) => Ok(FieldValue::LongString(Bytes::from(s.clone()))),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, v)| Self::from_json_at(v, &format!("{path}/{i}")))
                .collect::<Result<Vec<_>, _>>()
                .map(FieldValue::Array),
            Value::Object(map) => match map.get(TYPE_KEY) {
                None => map
                    .iter()
                    .map(|(k, v)| {
                        Self::from_json_at(v, &format!("{path}/{}", escape_pointer(k)))
                            .map(|fv| (k.clone(), fv))
                    })
                    .collect::<Result<FieldTable, _>>()
                    .map(FieldValue::Table),
                Some(Value::String(tag)) => Self::from_tagged(tag, map, path).map_err(err),
                Some(other) => Err(err(format!("\"$type\" must be a string, found {other}"))),
            },
        }
    }

    fn from_tagged(tag: &str, map: &Map<String, Value>, path: &str) -> Result<Self, String> {
        let value = || {
            map.get("value")
                .ok_or_else(|| format!("\"{tag}\" needs a \"value\""))
        };
        let int = |lo: i128, hi: i128| -> Result<i128, String> {
            let v = value()?;
            let n = v
                .as_i64()
                .map(i128::from)
                .or_else(|| v.as_u64().map(i128::from))
                .ok_or_else(|| format!("\"{tag}\" value must be an integer, found {v}"))?;
            if n < lo || n > hi {
                return Err(format!("{n} is out of range for {tag}"));
            }
            Ok(n)
        };
        let float = || -> Result<f64, String> {
            match value()? {
                Value::Number(n) => n.as_f64().ok_or_else(|| "not a number".to_string()),
                Value::String(s) => match s.as_str() {
                    "NaN" => Ok(f64::NAN),
                    "inf" | "Infinity" => Ok(f64::INFINITY),
                    "-inf" | "-Infinity" => Ok(f64::NEG_INFINITY),
                    other => Err(format!("\"{other}\" is not a float")),
                },
                other => Err(format!("\"{tag}\" value must be a number, found {other}")),
            }
        };
        let base64 = || -> Result<Bytes, String> {
            let text = map
                .get("base64")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("\"{tag}\" needs a \"base64\" string"))?;
            B64.decode(text)
                .map(Bytes::from)
                .map_err(|e| format!("bad base64: {e}"))
        };
        // The casts below are safe: `int` has already checked each range.
        Ok(match tag {
            "bool" => FieldValue::Bool(
                value()?
                    .as_bool()
                    .ok_or_else(|| "\"bool\" value must be true or false".to_string())?,
            ),
            "i8" => FieldValue::I8(int(i8::MIN.into(), i8::MAX.into())? as i8),
            "u8" => FieldValue::U8(int(0, u8::MAX.into())? as u8),
            "i16" => FieldValue::I16(int(i16::MIN.into(), i16::MAX.into())? as i16),
            "u16" => FieldValue::U16(int(0, u16::MAX.into())? as u16),
            "i32" => FieldValue::I32(int(i32::MIN.into(), i32::MAX.into())? as i32),
            "u32" => FieldValue::U32(int(0, u32::MAX.into())? as u32),
            "i64" => FieldValue::I64(int(i64::MIN.into(), i64::MAX.into())? as i64),
            "u64" => FieldValue::U64(int(0, u64::MAX.into())? as u64),
            "f32" => FieldValue::F32(float()? as f32),
            "f64" => FieldValue::F64(float()?),
            "decimal" => {
                let scale = map
                    .get("scale")
                    .and_then(Value::as_u64)
                    .and_then(|s| u8::try_from(s).ok())
                    .ok_or_else(|| "\"decimal\" needs a \"scale\" from 0 to 255".to_string())?;
                FieldValue::Decimal {
                    scale,
                    value: int(0, u32::MAX.into())? as u32,
                }
            }
            "shortstr" => {
                let s = value()?
                    .as_str()
                    .ok_or_else(|| "\"shortstr\" value must be a string".to_string())?;
                if s.len() > 255 {
                    return Err(format!(
                        "a shortstr holds at most 255 bytes, this has {}",
                        s.len()
                    ));
                }
                FieldValue::ShortString(s.to_owned())
            }
            "longstr" => match map.get("value") {
                Some(Value::String(s)) => FieldValue::LongString(Bytes::from(s.clone())),
                _ => FieldValue::LongString(base64()?),
            },
            "bytes" => FieldValue::ByteArray(base64()?),
            "timestamp" => match value()? {
                Value::String(s) => {
                    let t = DateTime::parse_from_rfc3339(s)
                        .map_err(|e| format!("bad RFC 3339 time \"{s}\": {e}"))?;
                    FieldValue::Timestamp(u64::try_from(t.timestamp()).map_err(|_| {
                        format!("{s} is before 1970, which an AMQP timestamp cannot hold")
                    })?)
                }
                _ => FieldValue::Timestamp(int(0, u64::MAX.into())? as u64),
            },
            "table" => match value()? {
                Value::Object(inner) => {
                    let mut t = FieldTable::new();
                    for (k, v) in inner {
                        let fv = Self::from_json_at(v, &format!("{path}/{}", escape_pointer(k)))
                            .map_err(|e| e.to_string())?;
                        t.0.push((k.clone(), fv));
                    }
                    FieldValue::Table(t)
                }
                other => return Err(format!("\"table\" value must be an object, found {other}")),
            },
            "array" => match value()? {
                Value::Array(_) => Self::from_json_at(value()?, path).map_err(|e| e.to_string())?,
                other => return Err(format!("\"array\" value must be an array, found {other}")),
            },
            "void" => FieldValue::Void,
            other => return Err(format!("unknown \"$type\" \"{other}\"")),
        })
    }
}

fn non_finite_name(v: f64) -> &'static str {
    if v.is_nan() {
        "NaN"
    } else if v > 0.0 {
        "inf"
    } else {
        "-inf"
    }
}

fn escape_pointer(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// An AMQP timestamp (seconds) as RFC 3339, when it is within chrono's range.
pub fn timestamp_rfc3339(secs: u64) -> Option<String> {
    let secs = i64::try_from(secs).ok()?;
    let t = DateTime::<Utc>::from_timestamp(secs, 0)?;
    // RFC 3339 has four-digit years; anything else is written as a number so it reads back.
    use chrono::Datelike;
    (0..=9999)
        .contains(&t.year())
        .then(|| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
}

/// A value that serializes as its JSON rendering.
struct Json<'a>(&'a FieldValue);

impl serde::Serialize for Json<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_json(s)
    }
}

/// Compact one-line rendering for tables and the TUI: strings unquoted when printable.
impl fmt::Display for FieldValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Bool(b) => write!(f, "{b}"),
            FieldValue::I8(v) => write!(f, "{v}"),
            FieldValue::U8(v) => write!(f, "{v}"),
            FieldValue::I16(v) => write!(f, "{v}"),
            FieldValue::U16(v) => write!(f, "{v}"),
            FieldValue::I32(v) => write!(f, "{v}"),
            FieldValue::U32(v) => write!(f, "{v}"),
            FieldValue::I64(v) => write!(f, "{v}"),
            FieldValue::U64(v) => write!(f, "{v}"),
            FieldValue::F32(v) => write!(f, "{v}"),
            FieldValue::F64(v) => write!(f, "{v}"),
            FieldValue::Decimal { scale, value } => {
                let digits = value.to_string();
                let scale = usize::from(*scale);
                if scale == 0 {
                    write!(f, "{digits}")
                } else if digits.len() > scale {
                    let (int, frac) = digits.split_at(digits.len() - scale);
                    write!(f, "{int}.{frac}")
                } else {
                    write!(f, "0.{digits:0>scale$}")
                }
            }
            FieldValue::ShortString(s) => write!(f, "{}", s.escape_default()),
            FieldValue::LongString(b) => match std::str::from_utf8(b) {
                Ok(s)
                    if !s
                        .chars()
                        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) =>
                {
                    write!(f, "{s}")
                }
                _ => write_binary(f, b),
            },
            FieldValue::Timestamp(secs) => match timestamp_rfc3339(*secs) {
                Some(t) => write!(f, "{t}"),
                None => write!(f, "{secs}"),
            },
            FieldValue::Array(items) => {
                write!(f, "[")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{item}")?;
                }
                write!(f, "]")
            }
            FieldValue::Table(t) => {
                write!(f, "{{")?;
                for (i, (k, v)) in t.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{}: {v}", k.escape_default())?;
                }
                write!(f, "}}")
            }
            FieldValue::ByteArray(b) => write_binary(f, b),
            FieldValue::Void => write!(f, "null"),
        }
    }
}

/// Short binary values (such as big-endian integers in Kafka headers) as hex, longer ones
/// by size.
fn write_binary(f: &mut fmt::Formatter<'_>, b: &[u8]) -> fmt::Result {
    if b.len() <= 16 {
        write!(f, "0x")?;
        for byte in b {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    } else {
        write!(f, "<{} bytes>", b.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn every_type() -> FieldTable {
        let mut nested = FieldTable::new();
        nested.insert("$type", FieldValue::string("looks like a tag"));
        nested.insert("n", FieldValue::I32(-7));
        FieldTable(vec![
            ("bool".into(), FieldValue::Bool(true)),
            ("i8".into(), FieldValue::I8(-8)),
            ("u8".into(), FieldValue::U8(200)),
            ("i16".into(), FieldValue::I16(-1600)),
            ("u16".into(), FieldValue::U16(65000)),
            ("i32".into(), FieldValue::I32(i32::MIN)),
            ("u32".into(), FieldValue::U32(u32::MAX)),
            ("i64".into(), FieldValue::I64(i64::MAX)),
            ("u64".into(), FieldValue::U64(u64::MAX)),
            ("f32".into(), FieldValue::F32(1.1)),
            ("f64".into(), FieldValue::F64(0.1 + 0.2)),
            ("f64 whole".into(), FieldValue::F64(3.0)),
            ("nan".into(), FieldValue::F64(f64::NAN)),
            (
                "dec".into(),
                FieldValue::Decimal {
                    scale: 2,
                    value: 12345,
                },
            ),
            ("short".into(), FieldValue::ShortString("s".into())),
            ("long".into(), FieldValue::string("héllo wörld ✓")),
            (
                "binary long".into(),
                FieldValue::LongString(Bytes::from_static(&[0, 159, 146, 150])),
            ),
            ("ts".into(), FieldValue::Timestamp(1_700_000_000)),
            ("huge ts".into(), FieldValue::Timestamp(u64::MAX)),
            (
                "ms as seconds".into(),
                FieldValue::Timestamp(1_700_000_000_000),
            ),
            (
                "array".into(),
                FieldValue::Array(vec![
                    FieldValue::I64(1),
                    FieldValue::string("two"),
                    FieldValue::Void,
                ]),
            ),
            ("tagged table".into(), FieldValue::Table(nested)),
            (
                "bytes".into(),
                FieldValue::ByteArray(Bytes::from_static(b"\x00\x01\xff")),
            ),
            ("void".into(), FieldValue::Void),
            ("a/b~c".into(), FieldValue::Table(FieldTable::new())),
        ])
    }

    #[test]
    fn every_type_round_trips_through_json_text() {
        let table = every_type();
        let text = serde_json::to_string(&table.to_json()).unwrap();
        let back = FieldTable::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back.len(), table.len());
        for ((k1, v1), (k2, v2)) in table.iter().zip(back.iter()) {
            assert_eq!(k1, k2);
            match (v1, v2) {
                (FieldValue::F64(a), FieldValue::F64(b)) if a.is_nan() => assert!(b.is_nan()),
                _ => assert_eq!(v1, v2, "key {k1}"),
            }
        }
    }

    #[test]
    fn common_types_are_plain_json() {
        let t = FieldTable(vec![
            ("s".into(), FieldValue::string("x")),
            ("n".into(), FieldValue::I64(3)),
            ("b".into(), FieldValue::Bool(false)),
            ("v".into(), FieldValue::Void),
        ]);
        assert_eq!(
            t.to_json(),
            json!({"s": "x", "n": 3, "b": false, "v": null})
        );
        assert_eq!(
            FieldValue::I32(5).to_json(),
            json!({"$type": "i32", "value": 5})
        );
        assert_eq!(
            FieldValue::Timestamp(0).to_json(),
            json!({"$type": "timestamp", "value": "1970-01-01T00:00:00Z"})
        );
    }

    #[test]
    fn bad_input_names_the_path() {
        let err =
            FieldTable::from_json(&json!({"a": {"b": {"$type": "i8", "value": 999}}})).unwrap_err();
        assert_eq!(err.path, "/a/b");
        assert!(err.reason.contains("out of range"), "{err}");
        let err = FieldTable::from_json(&json!({"x": {"$type": "nope", "value": 1}})).unwrap_err();
        assert!(err.reason.contains("unknown"), "{err}");
        assert!(FieldTable::from_json(&json!([1])).is_err());
        assert!(FieldTable::from_json(&json!({"big": 18446744073709551615u64})).is_err());
    }

    #[test]
    fn display_is_compact() {
        assert_eq!(
            FieldValue::Decimal { scale: 2, value: 5 }.to_string(),
            "0.05"
        );
        assert_eq!(
            FieldValue::Decimal {
                scale: 2,
                value: 12345
            }
            .to_string(),
            "123.45"
        );
        assert_eq!(
            FieldValue::LongString(Bytes::from_static(&[0xff, 0])).to_string(),
            "0xff00"
        );
        assert_eq!(
            FieldValue::LongString(Bytes::from_static(&[0, 0, 0, 2])).to_string(),
            "0x00000002"
        );
        assert_eq!(
            FieldValue::ByteArray(Bytes::from(vec![1u8; 20])).to_string(),
            "<20 bytes>"
        );
    }

    #[test]
    fn direct_serialization_writes_what_to_json_does() {
        let kafka = FieldTable(vec![
            ("trace-id".into(), FieldValue::string("t-1")),
            ("ünï \"q\"".into(), FieldValue::string("códe\n")),
            ("null".into(), FieldValue::Void),
        ]);
        let repeated = FieldTable(vec![
            ("h".into(), FieldValue::string("first")),
            ("h".into(), FieldValue::string("second")),
        ]);
        let binary = FieldTable(vec![(
            "b".into(),
            FieldValue::LongString(Bytes::from_static(b"\xff\x00")),
        )]);
        let tagged = FieldTable(vec![("$type".into(), FieldValue::string("x"))]);
        // The rare shapes deep down: a repeated name and a `$type` key in nested tables,
        // tables in arrays, non-finite floats of both widths.
        let nested = FieldTable(vec![
            ("every".into(), FieldValue::Table(every_type())),
            ("repeated".into(), FieldValue::Table(repeated.clone())),
            (
                "tables".into(),
                FieldValue::Array(vec![
                    FieldValue::Table(tagged.clone()),
                    FieldValue::Table(kafka.clone()),
                    FieldValue::Array(vec![FieldValue::Void, FieldValue::F32(f32::NEG_INFINITY)]),
                ]),
            ),
            ("inf".into(), FieldValue::F64(f64::INFINITY)),
            ("f32 nan".into(), FieldValue::F32(f32::NAN)),
            ("-0".into(), FieldValue::F64(-0.0)),
            ("tiny".into(), FieldValue::F64(5e-324)),
        ]);
        for t in [
            kafka,
            repeated,
            binary,
            tagged,
            every_type(),
            nested,
            FieldTable::new(),
        ] {
            let mut direct = Vec::new();
            t.serialize_json(&mut serde_json::Serializer::new(&mut direct))
                .unwrap();
            assert_eq!(
                String::from_utf8(direct).unwrap(),
                serde_json::to_string(&t.to_json()).unwrap()
            );
        }
    }
}
