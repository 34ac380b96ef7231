//! Conversions between lapin's AMQP types and mqscope's model, both ways, so a message read
//! from RabbitMQ can be published again with every header type and property intact.

use crate::model::{FieldTable, FieldValue, Message, Properties};
use bytes::Bytes;
use lapin::BasicProperties;
use lapin::types::{AMQPValue, ByteArray, DecimalValue, FieldArray, LongString, ShortString};

pub fn value_from_amqp(v: &AMQPValue) -> FieldValue {
    match v {
        AMQPValue::Boolean(b) => FieldValue::Bool(*b),
        AMQPValue::ShortShortInt(n) => FieldValue::I8(*n),
        AMQPValue::ShortShortUInt(n) => FieldValue::U8(*n),
        AMQPValue::ShortInt(n) => FieldValue::I16(*n),
        AMQPValue::ShortUInt(n) => FieldValue::U16(*n),
        AMQPValue::LongInt(n) => FieldValue::I32(*n),
        AMQPValue::LongUInt(n) => FieldValue::U32(*n),
        AMQPValue::LongLongInt(n) => FieldValue::I64(*n),
        AMQPValue::Float(f) => FieldValue::F32(*f),
        AMQPValue::Double(f) => FieldValue::F64(*f),
        AMQPValue::DecimalValue(d) => FieldValue::Decimal {
            scale: d.scale,
            value: d.value,
        },
        AMQPValue::ShortString(s) => FieldValue::ShortString(s.as_str().to_string()),
        AMQPValue::LongString(s) => FieldValue::LongString(Bytes::copy_from_slice(s.as_bytes())),
        AMQPValue::FieldArray(a) => {
            FieldValue::Array(a.as_slice().iter().map(value_from_amqp).collect())
        }
        AMQPValue::Timestamp(t) => FieldValue::Timestamp(*t),
        AMQPValue::FieldTable(t) => FieldValue::Table(table_from_amqp(t)),
        AMQPValue::ByteArray(b) => FieldValue::ByteArray(Bytes::copy_from_slice(b.as_slice())),
        AMQPValue::Void => FieldValue::Void,
    }
}

pub fn table_from_amqp(t: &lapin::types::FieldTable) -> FieldTable {
    t.inner()
        .iter()
        .map(|(k, v)| (k.as_str().to_string(), value_from_amqp(v)))
        .collect()
}

/// Why a value cannot be sent over AMQP 0-9-1 as RabbitMQ speaks it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("header {path}: {reason}")]
pub struct ToAmqpError {
    pub path: String,
    pub reason: String,
}

fn short(s: &str, path: &str) -> Result<ShortString, ToAmqpError> {
    ShortString::try_new(s.to_string()).map_err(|_| ToAmqpError {
        path: path.to_string(),
        reason: format!("\"{s}\" is longer than the 255 bytes a short string holds"),
    })
}

pub fn value_to_amqp(v: &FieldValue, path: &str) -> Result<AMQPValue, ToAmqpError> {
    Ok(match v {
        FieldValue::Bool(b) => AMQPValue::Boolean(*b),
        FieldValue::I8(n) => AMQPValue::ShortShortInt(*n),
        FieldValue::U8(n) => AMQPValue::ShortShortUInt(*n),
        FieldValue::I16(n) => AMQPValue::ShortInt(*n),
        FieldValue::U16(n) => AMQPValue::ShortUInt(*n),
        FieldValue::I32(n) => AMQPValue::LongInt(*n),
        FieldValue::U32(n) => AMQPValue::LongUInt(*n),
        FieldValue::I64(n) => AMQPValue::LongLongInt(*n),
        FieldValue::U64(n) => {
            // RabbitMQ's dialect has no unsigned 64-bit type; refuse rather than wrap.
            return i64::try_from(*n)
                .map(AMQPValue::LongLongInt)
                .map_err(|_| ToAmqpError {
                    path: path.to_string(),
                    reason: format!("{n} does not fit RabbitMQ's largest integer (signed 64-bit)"),
                });
        }
        FieldValue::F32(f) => AMQPValue::Float(*f),
        FieldValue::F64(f) => AMQPValue::Double(*f),
        FieldValue::Decimal { scale, value } => AMQPValue::DecimalValue(DecimalValue {
            scale: *scale,
            value: *value,
        }),
        FieldValue::ShortString(s) => AMQPValue::ShortString(short(s, path)?),
        FieldValue::LongString(b) => AMQPValue::LongString(LongString::from(b.to_vec())),
        FieldValue::Timestamp(t) => AMQPValue::Timestamp(*t),
        FieldValue::Array(items) => AMQPValue::FieldArray(FieldArray::from(
            items
                .iter()
                .enumerate()
                .map(|(i, it)| value_to_amqp(it, &format!("{path}[{i}]")))
                .collect::<Result<Vec<_>, _>>()?,
        )),
        FieldValue::Table(t) => AMQPValue::FieldTable(table_to_amqp(t, path)?),
        FieldValue::ByteArray(b) => AMQPValue::ByteArray(ByteArray::from(b.to_vec())),
        FieldValue::Void => AMQPValue::Void,
    })
}

pub fn table_to_amqp(t: &FieldTable, path: &str) -> Result<lapin::types::FieldTable, ToAmqpError> {
    let mut out = lapin::types::FieldTable::default();
    for (k, v) in t.iter() {
        let p = if path.is_empty() {
            k.to_string()
        } else {
            format!("{path}.{k}")
        };
        out.insert(short(k, &p)?, value_to_amqp(v, &p)?);
    }
    Ok(out)
}

fn s(v: &Option<ShortString>) -> Option<String> {
    v.as_ref().map(|x| x.as_str().to_string())
}

pub fn properties_from_amqp(p: &BasicProperties) -> Properties {
    Properties {
        content_type: s(p.content_type()),
        content_encoding: s(p.content_encoding()),
        delivery_mode: *p.delivery_mode(),
        priority: *p.priority(),
        correlation_id: s(p.correlation_id()),
        reply_to: s(p.reply_to()),
        expiration: s(p.expiration()),
        message_id: s(p.message_id()),
        timestamp: *p.timestamp(),
        kind: s(p.kind()),
        user_id: s(p.user_id()),
        app_id: s(p.app_id()),
        cluster_id: s(p.cluster_id()),
    }
}

/// Properties from the table the firehose carries them in (its `properties` header: one
/// entry per property that was set, named as in the AMQP spec with underscores).
pub fn properties_from_table(t: &FieldTable) -> Properties {
    let text = |k: &str| t.get(k).and_then(FieldValue::as_str).map(str::to_string);
    let number = |k: &str| t.get(k).and_then(FieldValue::as_i64);
    Properties {
        content_type: text("content_type"),
        content_encoding: text("content_encoding"),
        delivery_mode: number("delivery_mode").and_then(|v| u8::try_from(v).ok()),
        priority: number("priority").and_then(|v| u8::try_from(v).ok()),
        correlation_id: text("correlation_id"),
        reply_to: text("reply_to"),
        expiration: text("expiration"),
        message_id: text("message_id"),
        timestamp: number("timestamp").and_then(|v| u64::try_from(v).ok()),
        kind: text("type"),
        user_id: text("user_id"),
        app_id: text("app_id"),
        cluster_id: text("cluster_id"),
    }
}

/// Properties and headers of `m` as lapin properties, ready to publish.
pub fn properties_to_amqp(m: &Message) -> Result<BasicProperties, ToAmqpError> {
    let p = &m.properties;
    let mut out = BasicProperties::default();
    type P = BasicProperties;
    type SetText = fn(P, ShortString) -> P;
    let texts: [(&str, &Option<String>, SetText); 10] = [
        ("content_type", &p.content_type, P::with_content_type),
        (
            "content_encoding",
            &p.content_encoding,
            P::with_content_encoding,
        ),
        ("correlation_id", &p.correlation_id, P::with_correlation_id),
        ("reply_to", &p.reply_to, P::with_reply_to),
        ("expiration", &p.expiration, P::with_expiration),
        ("message_id", &p.message_id, P::with_message_id),
        ("type", &p.kind, P::with_type),
        ("user_id", &p.user_id, P::with_user_id),
        ("app_id", &p.app_id, P::with_app_id),
        ("cluster_id", &p.cluster_id, P::with_cluster_id),
    ];
    for (name, value, set) in texts {
        if let Some(v) = value {
            out = set(out, short(v, name)?);
        }
    }
    if let Some(v) = p.delivery_mode {
        out = out.with_delivery_mode(v);
    }
    if let Some(v) = p.priority {
        out = out.with_priority(v);
    }
    if let Some(v) = p.timestamp {
        out = out.with_timestamp(v);
    }
    if !m.headers.is_empty() {
        out = out.with_headers(table_to_amqp(&m.headers, "")?);
    }
    Ok(out)
}

/// When it was published, from the AMQP timestamp property (seconds), if it has one.
pub fn publish_time(p: &crate::model::Properties) -> Option<chrono::DateTime<chrono::Utc>> {
    p.timestamp
        .and_then(|s| i64::try_from(s).ok())
        .and_then(|s| chrono::DateTime::from_timestamp(s, 0))
}

pub fn to_message(queue: &str, position: u64, d: &lapin::message::Delivery) -> Message {
    let mut m = Message::new(queue, position, Bytes::copy_from_slice(&d.data));
    m.exchange = Some(d.exchange.as_str().to_string());
    m.routing_key = Some(d.routing_key.as_str().to_string());
    m.properties = properties_from_amqp(&d.properties);
    if let Some(h) = d.properties.headers() {
        m.headers = table_from_amqp(h);
    }
    m.timestamp = publish_time(&m.properties);
    m.redelivered = d.redelivered;
    m.delivery_count = m
        .headers
        .get("x-delivery-count")
        .and_then(|v| v.as_i64())
        .and_then(|c| u64::try_from(c).ok());
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_lapin() {
        let mut inner = FieldTable::new();
        inner.insert("n", FieldValue::I16(-3));
        let table = FieldTable(vec![
            ("a-bool".into(), FieldValue::Bool(true)),
            ("b-i8".into(), FieldValue::I8(-1)),
            ("c-u8".into(), FieldValue::U8(255)),
            ("d-i16".into(), FieldValue::I16(-300)),
            ("e-u16".into(), FieldValue::U16(60000)),
            ("f-i32".into(), FieldValue::I32(-70000)),
            ("g-u32".into(), FieldValue::U32(4_000_000_000)),
            ("h-i64".into(), FieldValue::I64(i64::MIN)),
            ("i-f32".into(), FieldValue::F32(1.5)),
            ("j-f64".into(), FieldValue::F64(-2.25)),
            (
                "k-dec".into(),
                FieldValue::Decimal {
                    scale: 3,
                    value: 12345,
                },
            ),
            ("l-short".into(), FieldValue::ShortString("short".into())),
            (
                "m-long".into(),
                FieldValue::LongString(Bytes::from_static(b"\x00\xffbinary")),
            ),
            ("n-ts".into(), FieldValue::Timestamp(1_700_000_000)),
            (
                "o-array".into(),
                FieldValue::Array(vec![FieldValue::I64(1), FieldValue::Void]),
            ),
            ("p-table".into(), FieldValue::Table(inner)),
            (
                "q-bytes".into(),
                FieldValue::ByteArray(Bytes::from_static(b"\x01\x02")),
            ),
            ("r-void".into(), FieldValue::Void),
        ]);
        let back = table_from_amqp(&table_to_amqp(&table, "").unwrap());
        assert_eq!(back, table);
        let err = value_to_amqp(&FieldValue::U64(u64::MAX), "x").unwrap_err();
        assert!(err.reason.contains("signed 64-bit"), "{err}");
    }

    #[test]
    fn properties_round_trip() {
        let mut m = Message::new("q", 0, Bytes::new());
        m.properties = Properties {
            content_type: Some("application/json".into()),
            content_encoding: Some("gzip".into()),
            delivery_mode: Some(2),
            priority: Some(5),
            correlation_id: Some("c".into()),
            reply_to: Some("r".into()),
            expiration: Some("60000".into()),
            message_id: Some("m".into()),
            timestamp: Some(1_700_000_000),
            kind: Some("t".into()),
            user_id: Some("guest".into()),
            app_id: Some("app".into()),
            cluster_id: Some("cl".into()),
        };
        let p = properties_to_amqp(&m).unwrap();
        assert_eq!(properties_from_amqp(&p), m.properties);
    }
}
