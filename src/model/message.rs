//! A message as mqscope shows it, whatever broker it came from: where it sits, its AMQP
//! properties, typed headers, payload bytes and delivery state.

use super::death::{DeathRecord, parse_deaths};
use super::value::FieldTable;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// AMQP 0-9-1 basic properties. Kafka records have none of these; they stay empty there.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Properties {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_encoding: Option<String>,
    /// 1 = transient, 2 = persistent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_mode: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub priority: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
    /// Per-message TTL in milliseconds, as the decimal string AMQP carries.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// AMQP timestamp: seconds since the Unix epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

impl Properties {
    pub fn is_empty(&self) -> bool {
        *self == Properties::default()
    }
}

/// One message read from a queue, stream or topic partition.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// The queue or topic it was read from.
    pub queue: String,
    /// Index from the head of a queue (0 = next to be delivered), or the offset in a
    /// topic partition or stream.
    pub position: u64,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// Kafka record key.
    pub key: Option<Bytes>,
    /// When the message was published, as precisely as the broker knows it.
    pub timestamp: Option<DateTime<Utc>>,
    /// The exchange and routing key it was last published with (AMQP).
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    pub headers: FieldTable,
    pub properties: Properties,
    pub payload: Bytes,
    /// Delivered before and returned to the queue (AMQP redelivered flag).
    pub redelivered: bool,
    /// How many times it was delivered and returned, where the broker counts it
    /// (quorum queues' `x-delivery-count`).
    pub delivery_count: Option<u64>,
    /// The delivery limit of the quorum queue it was read from, where one applies: shown
    /// beside the count, so a reader sees how close a message is to being dead-lettered.
    pub delivery_limit: Option<u64>,
    /// The queues the broker routed this publish to, where the broker says so (RabbitMQ's
    /// firehose, with tracing on): `Some(vec![])` is an unroutable publish, `None` unknown.
    pub routed_queues: Option<Vec<String>>,
    /// When a live tail received it, where the tail times its events itself: the time of
    /// an event the broker does not time (a RabbitMQ publish, a dead-lettering), taken
    /// before any buffer a consumer of the tail may be slow to drain.
    pub seen: Option<DateTime<Utc>>,
}

impl Message {
    /// A message with only a payload; the rest is filled in by whoever builds it.
    pub fn new(queue: impl Into<String>, position: u64, payload: impl Into<Bytes>) -> Self {
        Self {
            queue: queue.into(),
            position,
            partition: None,
            offset: None,
            key: None,
            timestamp: None,
            exchange: None,
            routing_key: None,
            headers: FieldTable::new(),
            properties: Properties::default(),
            payload: payload.into(),
            redelivered: false,
            delivery_count: None,
            delivery_limit: None,
            routed_queues: None,
            seen: None,
        }
    }

    /// Dead-letter history, newest first, from `x-death` or Kafka dead-letter headers.
    pub fn deaths(&self) -> Vec<DeathRecord> {
        parse_deaths(&self.headers)
    }

    pub fn size(&self) -> usize {
        self.payload.len()
    }

    /// The payload as text, when it is valid UTF-8.
    pub fn payload_text(&self) -> Option<&str> {
        std::str::from_utf8(&self.payload).ok()
    }
}

/// What correlation-ID rules and scan filters read of a message. [`Message`] has it, and so
/// can a backend's raw record, so a scan over millions of records can match each one before
/// (and instead of) building a `Message` from it.
pub trait MessageView {
    /// The AMQP `correlation_id` property.
    fn correlation_property(&self) -> Option<&str>;
    /// The first header named `name` (ASCII case-insensitive) as text, when it has a text
    /// rendering (strings, and numbers and the like on AMQP).
    fn header_text(&self, name: &str) -> Option<std::borrow::Cow<'_, str>>;
    fn payload(&self) -> &[u8];
    fn key(&self) -> Option<&[u8]>;
    fn timestamp(&self) -> Option<DateTime<Utc>>;
}

/// Where a publish was routed, for people: `→ a, b`, `→ no queue (unroutable)`, or
/// nothing when the broker did not say.
pub fn routed_summary(queues: Option<&[String]>) -> Option<String> {
    queues.map(|qs| {
        if qs.is_empty() {
            "→ no queue (unroutable)".to_string()
        } else {
            format!("→ {}", qs.join(", "))
        }
    })
}

impl MessageView for Message {
    fn correlation_property(&self) -> Option<&str> {
        self.properties.correlation_id.as_deref()
    }

    fn header_text(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.headers.get_ignore_case(name).and_then(|v| v.text())
    }

    fn payload(&self) -> &[u8] {
        &self.payload
    }

    fn key(&self) -> Option<&[u8]> {
        self.key.as_deref()
    }

    fn timestamp(&self) -> Option<DateTime<Utc>> {
        self.timestamp
    }
}
