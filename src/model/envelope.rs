//! A recorded envelope: what `mqscope record` keeps of one event in a message's journey (a
//! publish, a delivery, a dead-lettering, a log record), so a trace can tell it after the
//! copies are long consumed. Plain data: the recorder's database stores it, the trace reads it.

use super::correlation::Extractor;
use super::death::DeathRecord;
use super::identity::message_key;
use super::message::{Message, Properties};
use super::value::FieldTable;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What happened to the message at this point of its journey.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// Published to an exchange (RabbitMQ, local broker).
    Publish,
    /// Delivered from a queue to a consumer (RabbitMQ's firehose `deliver.<queue>`).
    Deliver,
    /// Dead-lettered into an exchange by the broker (a copy with a new death record).
    DeadLetter,
    /// Appended to a log (a Kafka record).
    Record,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Publish => "publish",
            EventKind::Deliver => "deliver",
            EventKind::DeadLetter => "dead_letter",
            EventKind::Record => "record",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "publish" => EventKind::Publish,
            "deliver" => EventKind::Deliver,
            "dead_letter" => EventKind::DeadLetter,
            "record" => EventKind::Record,
            _ => return None,
        })
    }
}

/// What the event happened on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    Exchange,
    Queue,
    Topic,
}

impl SourceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Exchange => "exchange",
            SourceKind::Queue => "queue",
            SourceKind::Topic => "topic",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "exchange" => SourceKind::Exchange,
            "queue" => SourceKind::Queue,
            "topic" => SourceKind::Topic,
            _ => return None,
        })
    }
}

/// One recorded event of one message.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub kind: EventKind,
    /// The exchange, queue or topic it happened on.
    pub source: String,
    pub source_kind: SourceKind,
    /// [`message_key`]: the same for every copy and redelivery of one publish.
    pub message_key: String,
    /// As the trace's rules extract it ([`Extractor`]).
    pub correlation_id: Option<String>,
    pub message_id: Option<String>,
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    /// Where the broker routed a publish (RabbitMQ's firehose); `Some(vec![])` unroutable.
    pub routed_queues: Option<Vec<String>>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// When it happened: a log record's own time, a dead-lettering's, else when seen.
    pub time: DateTime<Utc>,
    /// When the message says it was published, where it says.
    pub published: Option<DateTime<Utc>>,
    /// All headers, death records (`x-death`, Kafka DLT headers) among them.
    pub headers: FieldTable,
    pub properties: Properties,
    /// The first bytes of the body (as many as the recorder was asked to keep).
    pub body: Bytes,
    /// The whole body's size.
    pub body_size: u64,
    /// What the event adds beyond the message, by name: a delivery's consumer, connection,
    /// user and redelivered flag. Kept as the broker said it, for people to read.
    pub details: Vec<(String, String)>,
}

impl Envelope {
    /// The envelope of a message a live tail gave: a log record, a copy of a publish (or,
    /// when it carries a death record and came through the exchange's bindings rather
    /// than the firehose, of a dead-lettering), seen at `seen`.
    pub fn of_tailed(
        m: &Message,
        seen: DateTime<Utc>,
        rules: &Extractor,
        body_limit: usize,
    ) -> Self {
        let deaths = m.deaths();
        let (kind, source_kind) = if m.partition.is_some() {
            (EventKind::Record, SourceKind::Topic)
        } else if m.routed_queues.is_none() && !deaths.is_empty() {
            (EventKind::DeadLetter, SourceKind::Exchange)
        } else {
            (EventKind::Publish, SourceKind::Exchange)
        };
        let time = match kind {
            EventKind::Record => m.timestamp.unwrap_or(seen),
            _ => seen,
        };
        let source = match source_kind {
            SourceKind::Exchange => m.exchange.clone().unwrap_or_else(|| m.queue.clone()),
            _ => m.queue.clone(),
        };
        Self::of_message(m, kind, source, source_kind, time, rules, body_limit)
    }

    /// The envelope of a delivery from `queue` at `time`, with what the broker said about it.
    pub fn delivery(
        m: &Message,
        queue: &str,
        time: DateTime<Utc>,
        details: Vec<(String, String)>,
        rules: &Extractor,
        body_limit: usize,
    ) -> Self {
        let mut e = Self::of_message(
            m,
            EventKind::Deliver,
            queue.to_string(),
            SourceKind::Queue,
            time,
            rules,
            body_limit,
        );
        e.details = details;
        e
    }

    fn of_message(
        m: &Message,
        kind: EventKind,
        source: String,
        source_kind: SourceKind,
        time: DateTime<Utc>,
        rules: &Extractor,
        body_limit: usize,
    ) -> Self {
        Envelope {
            kind,
            source,
            source_kind,
            message_key: message_key(m),
            correlation_id: rules.extract(m),
            message_id: m.properties.message_id.clone(),
            exchange: m.exchange.clone(),
            routing_key: m.routing_key.clone(),
            routed_queues: m.routed_queues.clone(),
            partition: m.partition,
            offset: m.offset,
            time,
            published: m.timestamp,
            headers: m.headers.clone(),
            properties: m.properties.clone(),
            // A copy when cut: a slice would keep the whole payload alive in the buffer.
            body: if m.payload.len() > body_limit {
                Bytes::copy_from_slice(&m.payload[..body_limit])
            } else {
                m.payload.clone()
            },
            body_size: m.payload.len() as u64,
            details: Vec::new(),
        }
    }

    /// Dead-letter history, newest first, as the headers carry it.
    pub fn deaths(&self) -> Vec<DeathRecord> {
        super::death::parse_deaths(&self.headers)
    }

    /// What makes this event the same one when it is seen again (a tap replayed after a
    /// restart, a log re-read from a stored offset): the message, where, and what happened.
    /// A dead-lettering also counts its death (a message dead-lettered twice through one
    /// exchange is two events); a delivery its redelivered flag. Two publishes alike in every
    /// field the key covers (ids, timestamp, body, headers) to one exchange are one event.
    pub fn uid(&self) -> i64 {
        let mut h = Sha256::new();
        for part in [
            self.kind.as_str(),
            self.source_kind.as_str(),
            &self.source,
            &self.message_key,
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        if self.kind == EventKind::DeadLetter
            && let Some(d) = self.deaths().first()
        {
            h.update(d.count.to_le_bytes());
            h.update(d.time.map_or(0, |t| t.timestamp()).to_le_bytes());
            h.update(d.queue.as_bytes());
        }
        if self.kind == EventKind::Deliver {
            for (k, v) in &self.details {
                h.update(k.as_bytes());
                h.update([0]);
                h.update(v.as_bytes());
                h.update([0]);
            }
        }
        let d = h.finalize();
        let mut first = [0u8; 8];
        first.copy_from_slice(&d[..8]);
        i64::from_le_bytes(first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::death::dead;
    use crate::testing::at;

    #[test]
    fn tailed_messages_are_classified_by_where_they_came_from() {
        let rules = Extractor::default();
        let mut publish = Message::new("orders", 0, b"{\"correlationId\":\"c-9\"}".to_vec());
        publish.exchange = Some("orders".into());
        publish.routed_queues = Some(vec!["billing".into()]);
        let e = Envelope::of_tailed(&publish, at(5), &rules, 4);
        assert_eq!((e.kind, e.source.as_str()), (EventKind::Publish, "orders"));
        assert_eq!(
            e.correlation_id.as_deref(),
            Some("c-9"),
            "the trace's rules"
        );
        assert_eq!((&e.body[..], e.body_size), (&b"{\"co"[..], 23));
        assert_eq!(e.time, at(5));

        let mut dl = dead("billing", "orders", "order.created");
        dl.exchange = Some("dlx".into());
        let e = Envelope::of_tailed(&dl, at(6), &rules, 100);
        assert_eq!((e.kind, e.source.as_str()), (EventKind::DeadLetter, "dlx"));
        assert_eq!(e.deaths()[0].queue, "billing");

        let mut rec = Message::new("payments", 7, Bytes::new());
        rec.partition = Some(2);
        rec.offset = Some(7);
        rec.timestamp = Some(at(1));
        let e = Envelope::of_tailed(&rec, at(6), &rules, 100);
        assert_eq!(
            (e.kind, e.source_kind),
            (EventKind::Record, SourceKind::Topic)
        );
        assert_eq!(e.time, at(1), "a record keeps its own time");
    }

    #[test]
    fn the_same_event_seen_again_has_the_same_uid_and_others_differ() {
        let rules = Extractor::default();
        let mut m = Message::new("orders", 0, b"x".to_vec());
        m.exchange = Some("orders".into());
        let a = Envelope::of_tailed(&m, at(1), &rules, 10);
        let again = Envelope::of_tailed(&m, at(2), &rules, 10);
        assert_eq!(a.uid(), again.uid(), "seen twice: one event");
        let d = Envelope::delivery(&m, "billing", at(3), vec![], &rules, 10);
        assert_ne!(a.uid(), d.uid(), "a delivery is another event");
        let mut other = m.clone();
        other.exchange = Some("refunds".into());
        assert_ne!(
            a.uid(),
            Envelope::of_tailed(&other, at(1), &rules, 10).uid()
        );
    }
}
