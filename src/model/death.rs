//! Dead-letter history: reading RabbitMQ `x-death` and Kafka dead-letter headers (Spring
//! and Kafka Connect) into one record type, and writing `x-death` the way RabbitMQ does.

use super::value::{FieldTable, FieldValue};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Why a message was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeathReason {
    /// Rejected or nacked without requeue by a consumer (or failed in a Kafka consumer).
    Rejected,
    /// Its time to live ran out.
    Expired,
    /// Pushed out because the queue was over its length limit.
    Maxlen,
    /// Returned more often than a quorum queue's delivery limit allows.
    DeliveryLimit,
}

impl DeathReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DeathReason::Rejected => "rejected",
            DeathReason::Expired => "expired",
            DeathReason::Maxlen => "maxlen",
            DeathReason::DeliveryLimit => "delivery_limit",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "rejected" => DeathReason::Rejected,
            "expired" => DeathReason::Expired,
            "maxlen" => DeathReason::Maxlen,
            "delivery_limit" => DeathReason::DeliveryLimit,
            _ => return None,
        })
    }
}

impl fmt::Display for DeathReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which convention a death record was read from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeathSource {
    /// RabbitMQ's `x-death` header.
    XDeath,
    /// Spring Kafka's `kafka_dlt-*` headers.
    Spring,
    /// Kafka Connect's `__connect.errors.*` headers.
    KafkaConnect,
}

/// One dead-letter event: the message died in `queue` for `reason`, `count` times.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeathRecord {
    /// The queue (or Kafka topic) the message died in.
    pub queue: String,
    pub reason: DeathReason,
    pub count: u64,
    /// The exchange the message had been published to before it died.
    pub exchange: Option<String>,
    pub routing_keys: Vec<String>,
    pub time: Option<DateTime<Utc>>,
    /// Kafka origin partition and offset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// The exception or error the consumer gave, where the convention records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The message's own TTL before it expired (RabbitMQ `original-expiration`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_expiration: Option<String>,
    pub source: DeathSource,
}

/// All death records a message carries, newest first (x-death order), followed by any
/// Kafka dead-letter record.
pub fn parse_deaths(headers: &FieldTable) -> Vec<DeathRecord> {
    let mut out = Vec::new();
    if let Some(FieldValue::Array(entries)) = headers.get("x-death") {
        out.extend(
            entries
                .iter()
                .filter_map(|e| e.as_table())
                .filter_map(parse_x_death_entry),
        );
    }
    out.extend(parse_spring(headers));
    out.extend(parse_kafka_connect(headers));
    out
}

fn text(v: Option<&FieldValue>) -> Option<String> {
    v.and_then(|v| v.as_bytes())
        .map(|b| String::from_utf8_lossy(b).into_owned())
}

fn parse_x_death_entry(entry: &FieldTable) -> Option<DeathRecord> {
    let reason = DeathReason::parse(entry.get("reason")?.as_str()?)?;
    let queue = text(entry.get("queue"))?;
    let time = match entry.get("time") {
        Some(FieldValue::Timestamp(secs)) => i64::try_from(*secs)
            .ok()
            .and_then(|s| DateTime::from_timestamp(s, 0)),
        Some(v) => v.as_i64().and_then(|s| DateTime::from_timestamp(s, 0)),
        None => None,
    };
    let routing_keys = entry
        .get("routing-keys")
        .and_then(FieldValue::as_array)
        .map(|keys| keys.iter().filter_map(|k| text(Some(k))).collect())
        .unwrap_or_default();
    Some(DeathRecord {
        queue,
        reason,
        count: entry
            .get("count")
            .and_then(FieldValue::as_i64)
            .and_then(|c| u64::try_from(c).ok())
            .unwrap_or(1),
        exchange: text(entry.get("exchange")),
        routing_keys,
        time,
        partition: None,
        offset: None,
        error: None,
        original_expiration: text(entry.get("original-expiration")),
        source: DeathSource::XDeath,
    })
}

/// Kafka header integers come as decimal text from most clients and as big-endian
/// binary from Spring (4 bytes for a partition, 8 for offsets and timestamps).
pub fn header_int(v: Option<&FieldValue>) -> Option<i64> {
    let v = v?;
    if let Some(i) = v.as_i64() {
        return Some(i);
    }
    let b = v.as_bytes()?;
    let looks_decimal = !b.is_empty()
        && b.iter()
            .enumerate()
            .all(|(i, c)| c.is_ascii_digit() || (i == 0 && *c == b'-'));
    if looks_decimal {
        return std::str::from_utf8(b).ok()?.parse().ok();
    }
    match b.len() {
        4 => Some(i32::from_be_bytes(b.try_into().ok()?).into()),
        8 => Some(i64::from_be_bytes(b.try_into().ok()?)),
        _ => None,
    }
}

fn millis_time(ms: Option<i64>) -> Option<DateTime<Utc>> {
    ms.and_then(DateTime::from_timestamp_millis)
}

/// The headers a Kafka dead-letter convention records the original record and its error
/// in: Spring's `kafka_dlt-*` and Kafka Connect's `__connect.errors.*` say the same things.
struct KafkaDeadLetter {
    topic: &'static str,
    class: &'static str,
    message: &'static str,
    partition: &'static str,
    offset: &'static str,
    source: DeathSource,
}

const SPRING: KafkaDeadLetter = KafkaDeadLetter {
    topic: "kafka_dlt-original-topic",
    class: "kafka_dlt-exception-fqcn",
    message: "kafka_dlt-exception-message",
    partition: "kafka_dlt-original-partition",
    offset: "kafka_dlt-original-offset",
    source: DeathSource::Spring,
};

const KAFKA_CONNECT: KafkaDeadLetter = KafkaDeadLetter {
    topic: "__connect.errors.topic",
    class: "__connect.errors.exception.class.name",
    message: "__connect.errors.exception.message",
    partition: "__connect.errors.partition",
    offset: "__connect.errors.offset",
    source: DeathSource::KafkaConnect,
};

/// One death, from the original topic's header on: a convention without a count or a
/// time records a single death at an unknown time.
fn parse_kafka(h: &FieldTable, names: &KafkaDeadLetter) -> Option<DeathRecord> {
    let topic = text(h.get(names.topic))?;
    let class = text(h.get(names.class));
    let message = text(h.get(names.message));
    Some(DeathRecord {
        queue: topic,
        reason: DeathReason::Rejected,
        count: 1,
        exchange: None,
        routing_keys: Vec::new(),
        time: None,
        partition: header_int(h.get(names.partition)).and_then(|p| i32::try_from(p).ok()),
        offset: header_int(h.get(names.offset)),
        error: join_error(class, message),
        original_expiration: None,
        source: names.source,
    })
}

/// Spring also counts the attempts and keeps the original record's time.
fn parse_spring(h: &FieldTable) -> Option<DeathRecord> {
    let mut d = parse_kafka(h, &SPRING)?;
    d.count = header_int(h.get("retry_topic-attempts"))
        .and_then(|c| u64::try_from(c).ok())
        .filter(|c| *c > 0)
        .unwrap_or(1);
    d.time = millis_time(header_int(h.get("kafka_dlt-original-timestamp")));
    Some(d)
}

fn parse_kafka_connect(h: &FieldTable) -> Option<DeathRecord> {
    parse_kafka(h, &KAFKA_CONNECT)
}

fn join_error(class: Option<String>, message: Option<String>) -> Option<String> {
    match (class, message) {
        (Some(c), Some(m)) => Some(format!("{c}: {m}")),
        (c, m) => c.or(m),
    }
}

/// What happened to a message, for [`record_death`].
pub struct DeathEvent<'a> {
    pub queue: &'a str,
    pub reason: DeathReason,
    /// The exchange the message was published to before it died.
    pub exchange: &'a str,
    pub routing_keys: &'a [String],
    pub time_secs: u64,
    /// The message's own `expiration` property, which RabbitMQ moves into the record
    /// when the message expired.
    pub original_expiration: Option<&'a str>,
}

/// Update `headers` the way RabbitMQ (3.13 and later) does when it dead-letters a message:
/// the `x-death` entry for the same queue and reason has its count raised and moves to the
/// front (keeping its first time, exchange and keys), or a new entry is put first;
/// `x-first-death-*` are set once and `x-last-death-*` every time. Entry fields are written
/// in the order RabbitMQ 3.13 writes them.
pub fn record_death(headers: &mut FieldTable, ev: &DeathEvent<'_>) {
    let mut entries: Vec<FieldValue> = match headers.remove("x-death") {
        Some(FieldValue::Array(a)) => a,
        _ => Vec::new(),
    };
    let same = entries.iter().position(|e| {
        e.as_table().is_some_and(|t| {
            t.get("queue").and_then(FieldValue::as_str) == Some(ev.queue)
                && t.get("reason").and_then(FieldValue::as_str) == Some(ev.reason.as_str())
        })
    });
    let s = |v: &str| FieldValue::LongString(Bytes::copy_from_slice(v.as_bytes()));
    let entry = match same.map(|i| entries.remove(i)) {
        // A repeat death keeps the first one's time, exchange and keys; only the count
        // rises, and the entry moves to the front.
        Some(FieldValue::Table(mut old)) => {
            let count = old.get("count").and_then(FieldValue::as_i64).unwrap_or(0) + 1;
            old.insert("count", FieldValue::I64(count));
            old
        }
        _ => {
            let mut entry = FieldTable::new();
            if let Some(exp) = ev.original_expiration {
                entry.insert("original-expiration", s(exp));
            }
            entry.insert("count", FieldValue::I64(1));
            entry.insert("reason", s(ev.reason.as_str()));
            entry.insert("queue", s(ev.queue));
            entry.insert("time", FieldValue::Timestamp(ev.time_secs));
            entry.insert("exchange", s(ev.exchange));
            entry.insert(
                "routing-keys",
                FieldValue::Array(ev.routing_keys.iter().map(|k| s(k)).collect()),
            );
            entry
        }
    };
    entries.insert(0, FieldValue::Table(entry));
    headers.insert("x-death", FieldValue::Array(entries));
    if headers.get("x-first-death-queue").is_none() {
        headers.insert("x-first-death-exchange", s(ev.exchange));
        headers.insert("x-first-death-queue", s(ev.queue));
        headers.insert("x-first-death-reason", s(ev.reason.as_str()));
    }
    headers.insert("x-last-death-exchange", s(ev.exchange));
    headers.insert("x-last-death-queue", s(ev.queue));
    headers.insert("x-last-death-reason", s(ev.reason.as_str()));
}

/// A test message rejected once from `queue`, first published to `exchange` with `key`:
/// the identity tests and the replay tests start from the same dead letter.
#[cfg(test)]
pub(crate) fn dead(queue: &str, exchange: &str, key: &str) -> super::message::Message {
    let mut m = super::message::Message::new("dlq", 0, b"{\"n\":1}".to_vec());
    m.properties.message_id = Some("m-1".into());
    m.headers.insert("tenant", FieldValue::string("acme"));
    record_death(
        &mut m.headers,
        &DeathEvent {
            queue,
            reason: DeathReason::Rejected,
            exchange,
            routing_keys: &[key.to_string()],
            time_secs: 1_700_000_000,
            original_expiration: None,
        },
    );
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(
        queue: &'a str,
        reason: DeathReason,
        keys: &'a [String],
        t: u64,
    ) -> DeathEvent<'a> {
        DeathEvent {
            queue,
            reason,
            exchange: "orders",
            routing_keys: keys,
            time_secs: t,
            original_expiration: None,
        }
    }

    #[test]
    fn repeated_death_in_same_queue_counts_and_moves_first() {
        let keys = vec!["order.created".to_string()];
        let mut h = FieldTable::new();
        record_death(&mut h, &event("billing", DeathReason::Rejected, &keys, 100));
        record_death(&mut h, &event("retry", DeathReason::Expired, &keys, 200));
        record_death(&mut h, &event("billing", DeathReason::Rejected, &keys, 300));
        let deaths = parse_deaths(&h);
        assert_eq!(deaths.len(), 2);
        assert_eq!((deaths[0].queue.as_str(), deaths[0].count), ("billing", 2));
        assert_eq!(
            deaths[0].time.unwrap().timestamp(),
            100,
            "first death's time is kept"
        );
        assert_eq!(deaths[0].routing_keys, keys);
        assert_eq!(
            (deaths[1].queue.as_str(), deaths[1].reason),
            ("retry", DeathReason::Expired)
        );
        assert_eq!(
            h.get("x-first-death-queue").and_then(FieldValue::as_str),
            Some("billing")
        );
        assert_eq!(
            h.get("x-last-death-queue").and_then(FieldValue::as_str),
            Some("billing")
        );
        assert_eq!(
            h.get("x-first-death-reason").and_then(FieldValue::as_str),
            Some("rejected")
        );
    }

    #[test]
    fn spring_headers_in_binary_and_text() {
        let mut h = FieldTable::new();
        h.insert("kafka_dlt-original-topic", FieldValue::string("payments"));
        h.insert(
            "kafka_dlt-original-partition",
            FieldValue::LongString(Bytes::copy_from_slice(&2i32.to_be_bytes())),
        );
        h.insert(
            "kafka_dlt-original-offset",
            FieldValue::LongString(Bytes::copy_from_slice(&4242i64.to_be_bytes())),
        );
        h.insert(
            "kafka_dlt-original-timestamp",
            FieldValue::string("1700000000000"),
        );
        h.insert(
            "kafka_dlt-exception-fqcn",
            FieldValue::string("java.lang.IllegalStateException"),
        );
        h.insert(
            "kafka_dlt-exception-message",
            FieldValue::string("card declined"),
        );
        let d = &parse_deaths(&h)[0];
        assert_eq!(d.queue, "payments");
        assert_eq!((d.partition, d.offset), (Some(2), Some(4242)));
        assert_eq!(d.time.unwrap().timestamp_millis(), 1_700_000_000_000);
        assert_eq!(
            d.error.as_deref(),
            Some("java.lang.IllegalStateException: card declined")
        );
        assert_eq!(d.source, DeathSource::Spring);
    }

    #[test]
    fn kafka_connect_headers() {
        let mut h = FieldTable::new();
        h.insert("__connect.errors.topic", FieldValue::string("orders"));
        h.insert("__connect.errors.partition", FieldValue::string("1"));
        h.insert("__connect.errors.offset", FieldValue::string("77"));
        h.insert(
            "__connect.errors.exception.message",
            FieldValue::string("bad json"),
        );
        let d = &parse_deaths(&h)[0];
        assert_eq!(
            (d.queue.as_str(), d.partition, d.offset),
            ("orders", Some(1), Some(77))
        );
        assert_eq!(d.error.as_deref(), Some("bad json"));
    }

    #[test]
    fn malformed_x_death_is_ignored_not_fatal() {
        let mut h = FieldTable::new();
        h.insert(
            "x-death",
            FieldValue::Array(vec![
                FieldValue::I64(1),
                FieldValue::Table(FieldTable::new()),
            ]),
        );
        assert!(parse_deaths(&h).is_empty());
    }
}
