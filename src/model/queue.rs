//! Queues, streams, topics and consumer groups as listed by any backend.

use serde::{Deserialize, Serialize};
use std::fmt;

/// What sort of thing holds the messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum QueueKind {
    /// An AMQP queue: consuming removes messages.
    Queue,
    /// An append-only log read by offset (RabbitMQ stream).
    Stream,
    /// A partitioned log read by offset (Kafka topic).
    Topic,
}

impl QueueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueKind::Queue => "queue",
            QueueKind::Stream => "stream",
            QueueKind::Topic => "topic",
        }
    }

    /// Logs are read by offset and a read never removes anything.
    pub fn is_log(self) -> bool {
        matches!(self, QueueKind::Stream | QueueKind::Topic)
    }
}

impl fmt::Display for QueueKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a queue sends its dead letters, as configured (argument or policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterTarget {
    pub exchange: String,
    /// None: the message's own routing keys are used.
    pub routing_key: Option<String>,
}

/// One queue, stream or topic with its counts and dead-letter wiring.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueSummary {
    pub name: String,
    pub kind: QueueKind,
    /// Broker-specific type: classic, quorum, stream, topic.
    #[serde(rename = "type")]
    pub queue_type: String,
    /// RabbitMQ virtual host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vhost: Option<String>,
    /// Kafka cluster or local broker name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<String>,
    /// Messages held: ready plus unacknowledged for queues, retained records for logs.
    pub messages: Option<u64>,
    pub ready: Option<u64>,
    pub unacked: Option<u64>,
    pub consumers: Option<u64>,
    /// Messages per second arriving and being delivered, over the backend's window.
    pub publish_rate: Option<f64>,
    pub deliver_rate: Option<f64>,
    pub partitions: Option<u32>,
    /// The configured dead-letter exchange and routing key.
    pub dead_letter: Option<DeadLetterTarget>,
    /// The queue its dead letters end up in, resolved through the bindings.
    pub dead_letter_queue: Option<String>,
    /// True when some queue dead-letters into this one, or its name says it is a DLQ.
    pub is_dead_letter: bool,
    /// Queues whose dead letters arrive here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dead_letter_sources: Vec<String>,
    /// Quorum queues: returns allowed before a message is dead-lettered or dropped.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delivery_limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_ttl_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_length: Option<u64>,
    /// Acknowledgements per second, where the broker counts them (RabbitMQ).
    #[serde(default)]
    pub ack_rate: Option<f64>,
    /// The policy applied, by name (RabbitMQ); its settings are in the fields above.
    #[serde(default)]
    pub policy: Option<String>,
    /// The queue's own arguments as declared (`x-message-ttl`, ...), as JSON.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub arguments: serde_json::Map<String, serde_json::Value>,
}

impl QueueSummary {
    pub fn new(name: impl Into<String>, kind: QueueKind, queue_type: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            kind,
            queue_type: queue_type.into(),
            vhost: None,
            cluster: None,
            messages: None,
            ready: None,
            unacked: None,
            consumers: None,
            publish_rate: None,
            deliver_rate: None,
            partitions: None,
            dead_letter: None,
            dead_letter_queue: None,
            is_dead_letter: false,
            dead_letter_sources: Vec::new(),
            delivery_limit: None,
            message_ttl_ms: None,
            max_length: None,
            ack_rate: None,
            policy: None,
            arguments: serde_json::Map::new(),
        }
    }
}

/// Name suffixes that mark a dead-letter queue or topic by convention.
pub const DEAD_LETTER_SUFFIXES: &[&str] = &[
    ".dlq",
    "-dlq",
    "_dlq",
    ".dlt",
    "-dlt",
    "_dlt",
    ".dead-letter",
    "-dead-letter",
];

/// Whether a name follows a dead-letter naming convention (case-insensitive).
pub fn looks_like_dead_letter(name: &str, suffixes: &[&str]) -> bool {
    let lower = name.to_lowercase();
    suffixes.iter().any(|s| lower.ends_with(s)) || lower == "dlq" || lower == "dead-letters"
}

/// The source topic a dead-letter topic name points to (`payments-dlt` gives `payments`).
pub fn dead_letter_origin_name(name: &str, suffixes: &[&str]) -> Option<String> {
    let lower = name.to_lowercase();
    suffixes
        .iter()
        .find(|s| lower.ends_with(*s) && name.len() > s.len())
        .map(|s| name[..name.len() - s.len()].to_string())
}

/// One partition of a topic with its watermarks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionInfo {
    pub partition: i32,
    pub low: i64,
    pub high: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader: Option<i32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<i32>,
}

impl PartitionInfo {
    pub fn messages(&self) -> u64 {
        u64::try_from(self.high - self.low).unwrap_or(0)
    }
}

/// A queue or topic in detail: the summary plus what the list leaves out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueDetail {
    #[serde(flatten)]
    pub summary: QueueSummary,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions_detail: Vec<PartitionInfo>,
    /// Topic configs (Kafka), rendered as JSON; a queue's arguments are in the summary.
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub configs: serde_json::Map<String, serde_json::Value>,
    /// Where messages reach this queue from: `exchange -> queue (key)` lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bindings: Vec<String>,
    /// Who consumes it, where the broker says (RabbitMQ).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumer_details: Vec<ConsumerInfo>,
    /// How the broker holds it, where it says (RabbitMQ).
    #[serde(default, skip_serializing_if = "QueueState::is_empty")]
    pub state: QueueState,
    /// Topics: the consumer groups with offsets on it, their lag counted on it alone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub consumer_groups: Vec<ConsumerGroup>,
    /// The broker and its version, where it says (`RabbitMQ 4.3.6`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broker: Option<String>,
    /// Quorum queues with a delivery limit: what a peek costs on this broker's version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peek_rule: Option<String>,
    /// What could not be found out, and why (one line each).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl QueueDetail {
    /// A detail with nothing beyond the summary yet.
    pub fn new(summary: QueueSummary) -> Self {
        Self {
            summary,
            partitions_detail: Vec::new(),
            configs: serde_json::Map::new(),
            bindings: Vec::new(),
            consumer_details: Vec::new(),
            state: QueueState::default(),
            consumer_groups: Vec::new(),
            broker: None,
            peek_rule: None,
            notes: Vec::new(),
        }
    }
}

/// One consumer of a queue, as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerInfo {
    pub tag: String,
    /// The connection it consumes on (`client:port -> broker:port`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// How many unacknowledged messages it may hold; 0 is no limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefetch: Option<u64>,
    /// False: the broker forgets a message once sent (auto-ack).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_required: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive: Option<bool>,
    /// `up`, `single_active`, `waiting` (single active consumer), ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// How the broker holds a queue: its flags, where it lives, what it costs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueueState {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub durable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auto_delete: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exclusive: Option<bool>,
    /// `running`, `idle`, `flow`, `down`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The node it runs on (the leader, for replicated queues).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Replicated queues: every member, and those online now.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub online: Vec<String>,
    /// Bytes of message bodies held, and the queue's memory in all.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_bytes: Option<u64>,
    /// When it last saw activity, as the broker writes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_since: Option<String>,
}

impl QueueState {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// Committed offset and lag of one group on one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionLag {
    pub topic: String,
    pub partition: i32,
    pub committed: Option<i64>,
    pub high: i64,
    pub lag: u64,
}

/// A consumer group and how far behind it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsumerGroup {
    pub name: String,
    pub state: String,
    pub members: u32,
    pub topics: Vec<String>,
    /// Total lag over every partition with a committed offset.
    pub lag: u64,
    pub partitions: Vec<PartitionLag>,
}

impl ConsumerGroup {
    /// The group as seen from one topic: only its partitions, and the lag on them. None
    /// when the group has no offsets there.
    pub fn on_topic(&self, topic: &str) -> Option<ConsumerGroup> {
        let partitions: Vec<PartitionLag> = self
            .partitions
            .iter()
            .filter(|p| p.topic == topic)
            .cloned()
            .collect();
        if partitions.is_empty() && !self.topics.iter().any(|t| t == topic) {
            return None;
        }
        Some(ConsumerGroup {
            name: self.name.clone(),
            state: self.state.clone(),
            members: self.members,
            topics: vec![topic.to_string()],
            lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_seen_from_one_topic() {
        let lag = |topic: &str, partition, lag| PartitionLag {
            topic: topic.into(),
            partition,
            committed: Some(1),
            high: 1 + lag as i64,
            lag,
        };
        let g = ConsumerGroup {
            name: "g".into(),
            state: "Stable".into(),
            members: 2,
            topics: vec!["a".into(), "b".into()],
            lag: 10,
            partitions: vec![lag("a", 0, 3), lag("b", 0, 5), lag("a", 1, 2)],
        };
        let a = g.on_topic("a").unwrap();
        assert_eq!((a.lag, a.partitions.len()), (5, 2));
        assert_eq!(a.topics, ["a"]);
        assert!(g.on_topic("c").is_none());
    }

    #[test]
    fn dead_letter_names() {
        for name in ["billing.dlq", "payments-dlt", "Orders.DLQ", "x_dlq", "dlq"] {
            assert!(looks_like_dead_letter(name, DEAD_LETTER_SUFFIXES), "{name}");
        }
        for name in ["billing", "dlq-consumer", "audit"] {
            assert!(
                !looks_like_dead_letter(name, DEAD_LETTER_SUFFIXES),
                "{name}"
            );
        }
        assert_eq!(
            dead_letter_origin_name("payments-dlt", DEAD_LETTER_SUFFIXES).as_deref(),
            Some("payments")
        );
        assert_eq!(
            dead_letter_origin_name("Orders.DLQ", DEAD_LETTER_SUFFIXES).as_deref(),
            Some("Orders")
        );
        assert_eq!(dead_letter_origin_name(".dlq", DEAD_LETTER_SUFFIXES), None);
    }
}
