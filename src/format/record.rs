//! The JSON Lines message format: what `peek --json` writes, and what `publish --from` and
//! backup restores read back, so an exported message can be re-published exactly.

use crate::format::decode::{DecodeError, Decoded, DecodedAs, Decoder, Input};
use crate::model::correlation::Extractor;
use crate::model::{FieldTable, Message, Properties};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use std::borrow::Cow;

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("not a JSON object")]
    NotAnObject,
    #[error("field \"{field}\": {reason}")]
    Field { field: &'static str, reason: String },
}

fn field(field: &'static str, reason: impl Into<String>) -> RecordError {
    RecordError::Field {
        field,
        reason: reason.into(),
    }
}

/// Text as itself when it is UTF-8, else base64; returns (text, encoding).
pub fn encode_bytes(bytes: &[u8]) -> (String, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (s.to_string(), "utf8"),
        Err(_) => (B64.encode(bytes), "base64"),
    }
}

/// RFC 3339 for times with four-digit years; None for others (a broker's garbage clock),
/// which RFC 3339 cannot write and parsers would refuse.
fn rfc3339_checked(t: &DateTime<Utc>) -> Option<String> {
    use chrono::Datelike;
    (0..=9999)
        .contains(&t.year())
        .then(|| crate::model::time::rfc3339(t))
}

/// Text as itself when it is UTF-8 (borrowed, no copy), else base64.
fn encode_cow(bytes: &[u8]) -> (Cow<'_, str>, &'static str) {
    match std::str::from_utf8(bytes) {
        Ok(s) => (Cow::Borrowed(s), "utf8"),
        Err(_) => (Cow::Owned(B64.encode(bytes)), "base64"),
    }
}

/// Headers in their JSON rendering (see `model::value`).
struct HeadersJson<'a>(&'a crate::model::FieldTable);

impl Serialize for HeadersJson<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize_json(s)
    }
}

/// One message in the JSON Lines format, borrowing from the message so writing a record
/// copies as little as possible. Field order is the format's.
#[derive(Serialize)]
pub struct Record<'a> {
    queue: &'a str,
    position: u64,
    message_id: Option<&'a str>,
    correlation_id: Option<String>,
    timestamp: Option<String>,
    exchange: Option<&'a str>,
    routing_key: Option<&'a str>,
    /// Where the broker routed a tailed publish (RabbitMQ with tracing on).
    #[serde(skip_serializing_if = "Option::is_none")]
    routed_queues: Option<&'a [String]>,
    partition: Option<i32>,
    offset: Option<i64>,
    key: Option<Cow<'a, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_encoding: Option<&'static str>,
    headers: HeadersJson<'a>,
    properties: &'a Properties,
    payload: Cow<'a, str>,
    payload_encoding: &'static str,
    size: usize,
    redelivered: bool,
    delivery_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    delivery_limit: Option<u64>,
    deaths: Vec<crate::model::DeathRecord>,
    /// Queue messages: the key `delete --ids` and `replay --ids` take (logs have offsets).
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
    /// What is inside the payload (see `format::decode`), beside it: never instead of it,
    /// and never read back (`parse_record` takes the payload bytes alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    decoded: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    decoded_as: Option<DecodedAs>,
    /// Why the payload could not be decoded, when a rule or a hint said it should be.
    #[serde(skip_serializing_if = "Option::is_none")]
    decode_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_decoded: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_decoded_as: Option<DecodedAs>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key_decode_error: Option<String>,
}

impl Record<'_> {
    /// The record with what `decoder` finds inside the message's payload and key added.
    pub fn with_decoded(mut self, msg: &Message, decoder: &Decoder) -> Self {
        (self.decoded, self.decoded_as, self.decode_error) =
            split(decoder.decode(&Input::payload(msg)));
        if msg.key.is_some() {
            (self.key_decoded, self.key_decoded_as, self.key_decode_error) =
                split(decoder.decode(&Input::key(msg)));
        }
        self
    }
}

type Parts = (Option<Value>, Option<DecodedAs>, Option<String>);

fn split(outcome: Option<Result<Decoded, DecodeError>>) -> Parts {
    match outcome {
        None => (None, None, None),
        Some(Ok(d)) => (Some(d.value), Some(d.decoded_as), None),
        Some(Err(e)) => (None, None, Some(e.to_string())),
    }
}

pub fn record<'a>(msg: &'a Message, extractor: &Extractor) -> Record<'a> {
    let key = msg.key.as_ref().map(|k| encode_cow(k));
    let (payload, payload_encoding) = encode_cow(&msg.payload);
    Record {
        queue: &msg.queue,
        position: msg.position,
        message_id: msg.properties.message_id.as_deref(),
        correlation_id: extractor.extract(msg),
        timestamp: msg.timestamp.as_ref().and_then(rfc3339_checked),
        exchange: msg.exchange.as_deref(),
        routing_key: msg.routing_key.as_deref(),
        routed_queues: msg.routed_queues.as_deref(),
        partition: msg.partition,
        offset: msg.offset,
        key_encoding: key.as_ref().map(|(_, e)| *e),
        key: key.map(|(k, _)| k),
        headers: HeadersJson(&msg.headers),
        properties: &msg.properties,
        payload,
        payload_encoding,
        size: msg.payload.len(),
        redelivered: msg.redelivered,
        delivery_count: msg.delivery_count,
        delivery_limit: msg.delivery_limit,
        deaths: msg.deaths(),
        fingerprint: msg
            .offset
            .is_none()
            .then(|| crate::model::identity::message_key(msg)),
        decoded: None,
        decoded_as: None,
        decode_error: None,
        key_decoded: None,
        key_decoded_as: None,
        key_decode_error: None,
    }
}

/// One message as a JSON object, fields in a fixed order.
pub fn message_record(msg: &Message, extractor: &Extractor) -> Value {
    serde_json::to_value(record(msg, extractor)).unwrap_or(Value::Null)
}

fn decode_bytes(
    text: &str,
    encoding: Option<&str>,
    which: &'static str,
) -> Result<Bytes, RecordError> {
    match encoding.unwrap_or("utf8") {
        "utf8" => Ok(Bytes::from(text.to_string())),
        "base64" => B64
            .decode(text)
            .map(Bytes::from)
            .map_err(|e| field(which, format!("bad base64: {e}"))),
        other => Err(field(
            which,
            format!("unknown encoding \"{other}\" (utf8 or base64)"),
        )),
    }
}

fn opt_str(o: &Map<String, Value>, name: &'static str) -> Result<Option<String>, RecordError> {
    match o.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(field(name, format!("expected a string, found {other}"))),
    }
}

/// Read one record back into a message. Only what publishing needs must be present:
/// `payload` (and `payload_encoding` when it is base64); everything else is optional.
pub fn parse_record(v: &Value) -> Result<Message, RecordError> {
    let o = v.as_object().ok_or(RecordError::NotAnObject)?;
    let payload_text = opt_str(o, "payload")?.ok_or_else(|| field("payload", "missing"))?;
    let payload_encoding = opt_str(o, "payload_encoding")?;
    let payload = decode_bytes(&payload_text, payload_encoding.as_deref(), "payload")?;
    let mut msg = Message::new(opt_str(o, "queue")?.unwrap_or_default(), 0, payload);
    msg.position = o.get("position").and_then(Value::as_u64).unwrap_or(0);
    msg.exchange = opt_str(o, "exchange")?;
    msg.routing_key = opt_str(o, "routing_key")?;
    msg.partition = match o.get("partition") {
        None | Some(Value::Null) => None,
        Some(p) => Some(
            p.as_i64()
                .and_then(|p| i32::try_from(p).ok())
                .ok_or_else(|| {
                    field(
                        "partition",
                        format!("expected a partition number, found {p}"),
                    )
                })?,
        ),
    };
    msg.offset = o.get("offset").and_then(Value::as_i64);
    if let Some(key) = opt_str(o, "key")? {
        let enc = opt_str(o, "key_encoding")?;
        msg.key = Some(decode_bytes(&key, enc.as_deref(), "key")?);
    }
    if let Some(h) = o.get("headers").filter(|h| !h.is_null()) {
        msg.headers = FieldTable::from_json(h).map_err(|e| field("headers", e.to_string()))?;
    }
    if let Some(p) = o.get("properties").filter(|p| !p.is_null()) {
        msg.properties = serde_json::from_value::<Properties>(p.clone())
            .map_err(|e| field("properties", e.to_string()))?;
        // RabbitMQ closes the channel on any other value, failing the messages after it.
        if let Some(mode) = msg.properties.delivery_mode.filter(|m| !matches!(m, 1 | 2)) {
            return Err(field(
                "properties",
                format!("delivery_mode must be 1 (transient) or 2 (persistent), not {mode}"),
            ));
        }
    }
    if let Some(ts) = opt_str(o, "timestamp")? {
        let t = DateTime::parse_from_rfc3339(&ts).map_err(|e| field("timestamp", e.to_string()))?;
        msg.timestamp = Some(t.with_timezone(&Utc));
    }
    msg.redelivered = o
        .get("redelivered")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    msg.delivery_count = o.get("delivery_count").and_then(Value::as_u64);
    msg.routed_queues = o.get("routed_queues").and_then(Value::as_array).map(|qs| {
        qs.iter()
            .filter_map(Value::as_str)
            .map(str::to_string)
            .collect()
    });
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::FieldValue;
    use serde_json::json;

    #[test]
    fn a_delivery_mode_the_broker_would_refuse_is_refused_first() {
        let rec = json!({"payload": "x", "properties": {"delivery_mode": 7}});
        let e = parse_record(&rec).unwrap_err().to_string();
        assert!(
            e.contains("delivery_mode must be 1 (transient) or 2 (persistent), not 7"),
            "{e}"
        );
        let ok = json!({"payload": "x", "properties": {"delivery_mode": 2}});
        assert_eq!(parse_record(&ok).unwrap().properties.delivery_mode, Some(2));
    }

    #[test]
    fn routed_queues_are_written_only_when_the_broker_said() {
        let mut m = Message::new("orders", 0, "x");
        let rec = message_record(&m, &Extractor::default());
        assert!(rec.get("routed_queues").is_none(), "unknown: left out");
        m.routed_queues = Some(vec![]);
        let rec = message_record(&m, &Extractor::default());
        assert_eq!(rec["routed_queues"], json!([]), "unroutable: an empty list");
        m.routed_queues = Some(vec!["billing".into(), "audit ü".into()]);
        let rec = message_record(&m, &Extractor::default());
        assert_eq!(rec["routed_queues"], json!(["billing", "audit ü"]));
        assert_eq!(parse_record(&rec).unwrap(), m);
    }

    #[test]
    fn record_round_trips_binary_payload_key_headers_and_properties() {
        let mut m = Message::new("q one", 3, Bytes::from_static(b"\x89PNG\r\n\x1a\n\x00\xff"));
        m.key = Some(Bytes::from_static(&[0xff, 0x00]));
        m.partition = Some(2);
        m.offset = Some(99);
        m.exchange = Some("orders".into());
        m.routing_key = Some("order.created".into());
        m.headers.insert("n", FieldValue::I32(7));
        m.headers.insert("ünï", FieldValue::string("códe"));
        m.properties.correlation_id = Some("c-1".into());
        m.properties.delivery_mode = Some(2);
        m.properties.timestamp = Some(1_700_000_000);
        m.timestamp = DateTime::from_timestamp_millis(1_700_000_000_123);
        let rec = message_record(&m, &Extractor::default());
        assert_eq!(rec["payload_encoding"], "base64");
        assert_eq!(rec["key_encoding"], "base64");
        assert_eq!(rec["correlation_id"], "c-1");
        assert_eq!(rec["timestamp"], "2023-11-14T22:13:20.123Z");
        let line = serde_json::to_string(&rec).unwrap();
        let back = parse_record(&serde_json::from_str(&line).unwrap()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn decoded_sits_beside_the_payload_and_is_ignored_when_read_back() {
        let mut m = Message::new("q", 0, Bytes::from_static(&[0x81, 0xa1, b'k', 0x07]));
        m.properties.content_type = Some("application/msgpack".into());
        m.key = Some(Bytes::from_static(b"plain key"));
        let decoder = Decoder::default();
        let rec =
            serde_json::to_value(record(&m, &Extractor::default()).with_decoded(&m, &decoder))
                .unwrap();
        assert_eq!(rec["decoded"], json!({"k": 7}));
        assert_eq!(rec["decoded_as"], json!({"format": "msgpack"}));
        assert_eq!(rec["payload_encoding"], "base64");
        assert!(
            rec.get("key_decoded").is_none(),
            "a plain key is not decoded"
        );
        // Read back (publish --from, restores): the original bytes, whatever decoded says.
        let mut edited = rec.clone();
        edited["decoded"] = json!({"k": 8});
        assert_eq!(parse_record(&edited).unwrap(), m);
        m.payload = Bytes::from_static(&[0x92, 0x01]);
        let rec =
            serde_json::to_value(record(&m, &Extractor::default()).with_decoded(&m, &decoder))
                .unwrap();
        assert!(rec.get("decoded").is_none());
        assert!(
            rec["decode_error"]
                .as_str()
                .unwrap()
                .starts_with("msgpack does not match MessagePack"),
            "{rec}"
        );
        assert_eq!(parse_record(&rec).unwrap(), m);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_record(&json!({"payload": "x", "payload_encoding": "rot13"})).unwrap_err();
        assert!(e.to_string().contains("payload"), "{e}");
        let e = parse_record(&json!({"payload": "x", "properties": {"bogus": 1}})).unwrap_err();
        assert!(e.to_string().contains("properties"), "{e}");
        assert!(parse_record(&json!({"queue": "q"})).is_err());
        assert!(parse_record(&json!([1])).is_err());
    }
}
