//! MessagePack into JSON: maps with non-text keys get their key's JSON text, binary is
//! text or base64 (see `bytes_value`), the timestamp extension (-1) is an RFC 3339 time,
//! and other extensions are `{"ext": type, "data": bytes}`.

use super::{DecodeError, Decoded, Format, bytes_value, float_value, object_of, whole};
use rmpv::Value as Mp;
use serde_json::{Map, Value};

/// Nesting deeper than this is refused: the reader recurses once per level.
const MAX_DEPTH: usize = 128;

pub(super) fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let value = whole(Format::Msgpack, body, |rest| {
        rmpv::decode::read_value_with_max_depth(rest, MAX_DEPTH)
            .map_err(|e| DecodeError::mismatch(Format::Msgpack, "MessagePack", e))
    })?;
    Ok(Decoded::new(to_json(value), Format::Msgpack))
}

fn to_json(v: Mp) -> Value {
    match v {
        Mp::Nil => Value::Null,
        Mp::Boolean(b) => Value::Bool(b),
        Mp::Integer(i) => match (i.as_i64(), i.as_u64()) {
            (Some(n), _) => Value::from(n),
            (None, Some(n)) => Value::from(n),
            (None, None) => Value::Null,
        },
        Mp::F32(f) => float_value(f64::from(f)),
        Mp::F64(f) => float_value(f),
        Mp::String(s) => match s.into_str() {
            Some(s) => Value::String(s),
            None => Value::Null,
        },
        Mp::Binary(b) => bytes_value(&b),
        Mp::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Mp::Map(pairs) => object_of(pairs, to_json),
        Mp::Ext(-1, data) => timestamp(&data).unwrap_or_else(|| ext(-1, &data)),
        Mp::Ext(kind, data) => ext(kind, &data),
    }
}

fn ext(kind: i8, data: &[u8]) -> Value {
    let mut o = Map::new();
    o.insert("ext".into(), Value::from(kind));
    o.insert("data".into(), bytes_value(data));
    Value::Object(o)
}

/// The timestamp extension's three layouts (32-bit seconds; 30-bit nanoseconds and 34-bit
/// seconds; 32-bit nanoseconds and 64-bit seconds) as RFC 3339.
fn timestamp(data: &[u8]) -> Option<Value> {
    let (secs, nanos) = match data.len() {
        4 => (i64::from(u32::from_be_bytes(data.try_into().ok()?)), 0),
        8 => {
            let n = u64::from_be_bytes(data.try_into().ok()?);
            ((n & 0x3_ffff_ffff) as i64, (n >> 34) as u32)
        }
        12 => (
            i64::from_be_bytes(data[4..].try_into().ok()?),
            u32::from_be_bytes(data[..4].try_into().ok()?),
        ),
        _ => return None,
    };
    let t = chrono::DateTime::from_timestamp(secs, nanos)?;
    Some(Value::String(super::time_text(&t)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_arrays_binary_and_odd_keys_become_json() {
        let v = Mp::Map(vec![
            (Mp::from("id"), Mp::from(7)),
            (Mp::from("big"), Mp::from(u64::MAX)),
            (Mp::from("tags"), Mp::Array(vec![Mp::from("a"), Mp::Nil])),
            (Mp::from(1), Mp::Boolean(true)),
            (Mp::from("raw"), Mp::Binary(vec![0xff, 0x00])),
            (Mp::from("half"), Mp::F32(0.5)),
            (Mp::from("nan"), Mp::F64(f64::NAN)),
            (
                Mp::from("ts"),
                Mp::Ext(-1, 1_700_000_000u32.to_be_bytes().to_vec()),
            ),
            (Mp::from("x"), Mp::Ext(5, b"hi".to_vec())),
        ]);
        let mut body = Vec::new();
        rmpv::encode::write_value(&mut body, &v).unwrap();
        let d = decode(&body).unwrap();
        assert_eq!(d.decoded_as.format, "msgpack");
        assert_eq!(
            d.value,
            json!({
                "id": 7, "big": u64::MAX, "tags": ["a", null], "1": true,
                "raw": {"base64": "/wA="}, "half": 0.5, "nan": "NaN",
                "ts": "2023-11-14T22:13:20Z", "x": {"ext": 5, "data": "hi"}
            })
        );
    }

    #[test]
    fn truncated_trailing_and_too_deep_input_are_reasons() {
        let e = decode(&[0x92, 0x01]).unwrap_err().to_string();
        assert!(e.starts_with("msgpack does not match MessagePack"), "{e}");
        let e = decode(&[0x01, 0x02]).unwrap_err().to_string();
        assert_eq!(e, "msgpack: 1 bytes left over after the value");
        // An array32 claiming four billion items, with none there.
        let e = decode(&[0xdd, 0xff, 0xff, 0xff, 0xff]).unwrap_err();
        assert!(matches!(e, DecodeError::Mismatch { .. }), "{e}");
        let deep = vec![0x91; 100_000];
        assert!(decode(&deep).is_err());
    }
}
