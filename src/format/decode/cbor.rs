//! CBOR into JSON: like MessagePack (see `msgpack`), with tags 0 and 1 (date-time text and
//! epoch seconds) as RFC 3339 times, bignums (tags 2 and 3) as decimal text, and other tags
//! as `{"tag": n, "value": v}`.

use super::{DecodeError, Decoded, Format, bytes_value, float_value, object_of, whole};
use ciborium::value::Value as Cb;
use serde_json::{Map, Value};

/// Nesting deeper than this is refused: the reader recurses once per level.
const MAX_DEPTH: usize = 128;

pub(super) fn decode(body: &[u8]) -> Result<Decoded, DecodeError> {
    let value: Cb = whole(Format::Cbor, body, |rest| {
        ciborium::de::from_reader_with_recursion_limit(rest, MAX_DEPTH)
            .map_err(|e| DecodeError::mismatch(Format::Cbor, "CBOR", e))
    })?;
    Ok(Decoded::new(to_json(value), Format::Cbor))
}

fn integer(n: i128) -> Value {
    if let Ok(n) = i64::try_from(n) {
        Value::from(n)
    } else if let Ok(n) = u64::try_from(n) {
        Value::from(n)
    } else {
        Value::String(n.to_string())
    }
}

fn to_json(v: Cb) -> Value {
    match v {
        Cb::Null => Value::Null,
        Cb::Bool(b) => Value::Bool(b),
        Cb::Integer(i) => integer(i128::from(i)),
        Cb::Float(f) => float_value(f),
        Cb::Text(s) => Value::String(s),
        Cb::Bytes(b) => bytes_value(&b),
        Cb::Array(items) => Value::Array(items.into_iter().map(to_json).collect()),
        Cb::Map(pairs) => object_of(pairs, to_json),
        Cb::Tag(0, inner) if inner.is_text() => to_json(*inner),
        Cb::Tag(1, inner) => epoch(&inner).unwrap_or_else(|| tagged(1, *inner)),
        Cb::Tag(tag @ (2 | 3), inner) => match inner.as_bytes() {
            Some(b) => bignum(tag == 3, b),
            None => tagged(tag, *inner),
        },
        Cb::Tag(tag, inner) => tagged(tag, *inner),
        // ciborium's Value is non-exhaustive.
        _ => Value::Null,
    }
}

fn tagged(tag: u64, inner: Cb) -> Value {
    let mut o = Map::new();
    o.insert("tag".into(), Value::from(tag));
    o.insert("value".into(), to_json(inner));
    Value::Object(o)
}

/// Tag 1: seconds since the epoch, whole or fractional.
fn epoch(inner: &Cb) -> Option<Value> {
    let t = match inner {
        Cb::Integer(i) => chrono::DateTime::from_timestamp(i64::try_from(*i).ok()?, 0)?,
        Cb::Float(f) if f.is_finite() => {
            chrono::DateTime::from_timestamp_micros((f * 1e6).round() as i64)?
        }
        _ => return None,
    };
    Some(Value::String(super::time_text(&t)))
}

/// Tags 2 and 3: an unsigned big-endian magnitude (3: minus one, negated), as decimal text
/// when it fits 128 bits, else as its bytes.
fn bignum(negative: bool, bytes: &[u8]) -> Value {
    let significant = bytes.iter().skip_while(|&&b| b == 0).count();
    if significant > 15 {
        let mut o = Map::new();
        o.insert("tag".into(), Value::from(if negative { 3 } else { 2 }));
        o.insert("value".into(), bytes_value(bytes));
        return Value::Object(o);
    }
    let n = bytes.iter().fold(0i128, |n, &b| (n << 8) | i128::from(b));
    integer(if negative { -1 - n } else { n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encode(v: &Cb) -> Vec<u8> {
        let mut out = Vec::new();
        ciborium::ser::into_writer(v, &mut out).unwrap();
        out
    }

    #[test]
    fn maps_tags_bignums_and_bytes_become_json() {
        let v = Cb::Map(vec![
            (Cb::from("id"), Cb::from(7)),
            (Cb::from(-3), Cb::from("neg key")),
            (
                Cb::from("when"),
                Cb::Tag(1, Box::new(Cb::from(1_700_000_000))),
            ),
            (
                Cb::from("iso"),
                Cb::Tag(0, Box::new(Cb::from("2024-01-02T03:04:05Z"))),
            ),
            (
                Cb::from("big"),
                Cb::Tag(2, Box::new(Cb::Bytes(vec![1, 0, 0, 0, 0, 0, 0, 0, 0]))),
            ),
            (Cb::from("raw"), Cb::Bytes(vec![0xff])),
            (
                Cb::from("other"),
                Cb::Tag(32, Box::new(Cb::from("http://x"))),
            ),
            (
                Cb::from("list"),
                Cb::Array(vec![Cb::Null, Cb::Bool(false), Cb::Float(1.5)]),
            ),
        ]);
        let d = decode(&encode(&v)).unwrap();
        assert_eq!(d.decoded_as.format, "cbor");
        assert_eq!(
            d.value,
            json!({
                "id": 7, "-3": "neg key", "when": "2023-11-14T22:13:20Z",
                "iso": "2024-01-02T03:04:05Z", "big": "18446744073709551616",
                "raw": {"base64": "/w=="}, "other": {"tag": 32, "value": "http://x"},
                "list": [null, false, 1.5]
            })
        );
    }

    #[test]
    fn truncated_trailing_and_huge_claims_are_reasons() {
        let e = decode(&[0x82, 0x01]).unwrap_err().to_string();
        assert!(e.starts_with("cbor does not match CBOR"), "{e}");
        let e = decode(&[0x01, 0x02]).unwrap_err().to_string();
        assert_eq!(e, "cbor: 1 bytes left over after the value");
        // An array claiming 2^60 items, and a byte string claiming 2^60 bytes.
        assert!(decode(&[0x9b, 0x10, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(&[0x5b, 0x10, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(decode(&vec![0x81; 100_000]).is_err());
    }
}
