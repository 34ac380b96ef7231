//! A hop: one place a copy of the traced message was seen, with how it got there (routed,
//! dead-lettered, replayed), and the order hops are shown in.

use crate::model::envelope::EventKind;
use crate::model::identity::{REPLAY_COUNT, REPLAYED_FROM, message_key};
use crate::model::{
    DeathReason, DeathSource, Delivery, GroupProgress, Message, MessageView, QueueKind,
};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering as CmpOrdering;

/// How a copy got into a dead-letter queue: from where, why, how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterHop {
    pub from: String,
    pub reason: DeathReason,
    pub count: u64,
    /// Kafka: the partition and offset of the original record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// The consumer's exception or error, where the dead-letter convention records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exchange and routing key the message had before it died (`x-death`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
}

/// A hop read from the recorder's database (`trace --db`): what happened then, which the
/// broker may no longer show (a copy long consumed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RecordedHop {
    /// publish, deliver, dead_letter or record.
    pub event: EventKind,
    /// What the broker said of the event, by name: a delivery's consumer, connection, user.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<(String, String)>,
}

/// What holds a hop: a queue, stream or topic read by a scan, or an exchange a live
/// follow saw a message published to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HopKind {
    Queue,
    Stream,
    Topic,
    Exchange,
}

impl HopKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HopKind::Queue => "queue",
            HopKind::Stream => "stream",
            HopKind::Topic => "topic",
            HopKind::Exchange => "exchange",
        }
    }
}

impl From<QueueKind> for HopKind {
    fn from(k: QueueKind) -> Self {
        match k {
            QueueKind::Queue => HopKind::Queue,
            QueueKind::Stream => HopKind::Stream,
            QueueKind::Topic => HopKind::Topic,
        }
    }
}

/// One place the correlation ID was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    pub queue: String,
    pub kind: HopKind,
    pub position: Option<u64>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// When it reached this queue: the dead-lettering time for a dead letter, else the
    /// message's own time.
    pub timestamp: Option<String>,
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    pub message_id: Option<String>,
    pub dead_letter: Option<DeadLetterHop>,
    /// `x-mqscope-replayed-from`, when mqscope replayed this copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_from: Option<String>,
    /// `x-mqscope-replay-count`: how many times the original has been replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_count: Option<u64>,
    /// Seen by `--follow` as it happened, not found by the scan.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
    /// A live publish's queues, where the broker says (RabbitMQ with tracing on); an
    /// empty list is an unroutable publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routed_queues: Option<Vec<String>>,
    /// A topic record: each consumer group with offsets on the topic, and whether it has
    /// read past the record.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<GroupProgress>,
    /// Seen live: the message handed to a consumer of this queue (RabbitMQ with tracing
    /// on, the local broker).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub deliveries: Vec<Delivery>,
    /// Read from the recorder's database, not found on the broker now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<RecordedHop>,
    /// The message's identity ([`message_key`]): copies and events of one publish share it.
    #[serde(skip)]
    pub key: Option<String>,
    #[serde(skip)]
    pub time: Option<DateTime<Utc>>,
    /// When the message itself was published (a dead letter keeps its original's time):
    /// copies of one publish share it.
    #[serde(skip)]
    pub published: Option<DateTime<Utc>>,
}

impl Hop {
    /// Where in its queue or log the message sits, as `name#position` or `name[p]@offset`.
    pub fn place(&self) -> String {
        match (self.kind, self.partition, self.offset, self.position) {
            (HopKind::Exchange, ..) => format!("exchange {}", self.queue),
            (_, Some(p), Some(o), _) => format!("{}[{p}]@{o}", self.queue),
            (_, None, Some(o), _) => format!("{}@{o}", self.queue),
            (_, _, _, Some(pos)) => format!("{}#{pos}", self.queue),
            _ => self.queue.clone(),
        }
    }

    /// The identity of a stored record, so one seen twice (by the scan and the live
    /// follow) is reported once. Queue positions move; only log offsets identify.
    pub fn record_key(&self) -> Option<(String, Option<i32>, i64)> {
        self.offset
            .filter(|_| self.kind != HopKind::Exchange)
            .map(|o| (self.queue.clone(), self.partition, o))
    }

    /// Whether this hop concerns the queues `pattern` (`*`, `?`) names: it is in one, the
    /// broker routed the publish to one, or the copy died in one.
    pub fn concerns(&self, pattern: &str) -> bool {
        use super::glob_matches;
        glob_matches(pattern, &self.queue)
            || self
                .routed_queues
                .iter()
                .flatten()
                .any(|q| glob_matches(pattern, q))
            || self
                .dead_letter
                .as_ref()
                .is_some_and(|d| glob_matches(pattern, &d.from))
    }

    /// Whether both are the same stored record ([`Hop::record_key`] without allocating).
    pub fn same_record(&self, other: &Hop) -> bool {
        self.offset.is_some()
            && self.kind != HopKind::Exchange
            && other.kind != HopKind::Exchange
            && self.offset == other.offset
            && self.partition == other.partition
            && self.queue == other.queue
    }
}

/// Time order: hops without a time last, ties broken by place.
pub fn hop_order(a: &Hop, b: &Hop) -> CmpOrdering {
    (
        a.time.is_none(),
        a.time,
        &a.queue,
        a.partition,
        a.offset,
        a.position,
    )
        .cmp(&(
            b.time.is_none(),
            b.time,
            &b.queue,
            b.partition,
            b.offset,
            b.position,
        ))
}

/// One line: how many queues it reached, how many copies died, where it was last seen.
pub fn summary_of(hops: &[Hop]) -> String {
    let mut queues: Vec<&str> = hops
        .iter()
        .filter(|h| h.kind != HopKind::Exchange)
        .map(|h| h.queue.as_str())
        .collect();
    queues.sort();
    queues.dedup();
    let dead = hops.iter().filter(|h| h.dead_letter.is_some()).count();
    let Some(last) = hops.last().map(|h| match h.kind {
        HopKind::Exchange => format!("exchange {}", h.queue),
        _ => h.queue.clone(),
    }) else {
        return "found nowhere".to_string();
    };
    format!(
        "reached {} queue{}, {dead} dead-lettered, last seen in {last}",
        queues.len(),
        if queues.len() == 1 { "" } else { "s" }
    )
}

/// The hop a matching message makes.
pub fn hop_of(m: &Message, kind: impl Into<HopKind>) -> Hop {
    let kind = kind.into();
    let deaths = m.deaths();
    let newest = deaths.first();
    let dead_letter = newest.map(|d| DeadLetterHop {
        from: d.queue.clone(),
        reason: d.reason,
        count: d.count,
        partition: d.partition,
        offset: d.offset,
        error: d.error.clone(),
        exchange: d.exchange.clone(),
        routing_key: d.routing_keys.first().cloned(),
    });
    // `x-death` times the dead-lettering itself. Kafka dead-letter headers time the
    // original record instead; the dead-letter record's own timestamp is when it died.
    let time = match newest {
        Some(d) if d.source == DeathSource::XDeath => d.time.or(m.timestamp),
        _ => m.timestamp,
    };
    Hop {
        queue: m.queue.clone(),
        kind,
        position: (kind == HopKind::Queue).then_some(m.position),
        partition: m.partition,
        offset: m.offset,
        timestamp: time.as_ref().map(crate::model::time::rfc3339),
        exchange: m.exchange.clone(),
        routing_key: m.routing_key.clone(),
        message_id: m.properties.message_id.clone(),
        dead_letter,
        replayed_from: m.header_text(REPLAYED_FROM).map(Cow::into_owned),
        replay_count: m
            .header_text(REPLAY_COUNT)
            .and_then(|t| t.trim().parse().ok()),
        live: false,
        routed_queues: m.routed_queues.clone(),
        groups: Vec::new(),
        deliveries: Vec::new(),
        recorded: None,
        key: Some(message_key(m)),
        time,
        published: m.timestamp,
    }
}
