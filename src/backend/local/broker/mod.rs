//! The in-process broker: AMQP-style exchanges and queues (ack, reject, requeue, TTL,
//! max-length and delivery-limit dead-lettering with RabbitMQ's `x-death` records) and
//! Kafka-style partitioned logs with consumer groups. Thread-safe; memory per queue and
//! per partition is capped by [`LocalConfig`].

mod amqp;
mod log;

pub use log::{kafka_header, murmur2};

use super::clock::Clock;
use crate::model::topology::Topology;
use crate::model::{DeadLetterTarget, FieldTable, Message, Properties, QueueKind, QueueSummary};
use bytes::Bytes;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::broadcast;

/// Errors of the local broker, in AMQP's terms where AMQP has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BrokerError {
    #[error("no queue or topic named \"{0}\"")]
    NoQueue(String),
    #[error("no exchange named \"{0}\"")]
    NoExchange(String),
    #[error("no topic named \"{0}\"")]
    NoTopic(String),
    #[error("topic \"{topic}\" has no partition {partition}")]
    NoPartition { topic: String, partition: i32 },
    #[error("unknown delivery tag {0}")]
    UnknownTag(u64),
    #[error("\"{0}\" already exists with other settings")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
}

/// Memory bounds of the local broker.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// Ready messages kept per queue beyond which the oldest is dead-lettered as `maxlen`
    /// (as if the queue had `x-max-length`), whatever the queue's own settings.
    pub max_queue_messages: usize,
    /// Records kept per topic partition; older ones are dropped and the log start moves.
    pub max_partition_records: usize,
    /// Tap events (publishes, deliveries, log records) the broker keeps of its own, newest
    /// last, for a recorder that starts after them (the demo's history); 0 keeps none.
    pub keep_events: usize,
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            max_queue_messages: 250_000,
            max_partition_records: 250_000,
            keep_events: 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum QueueType {
    #[default]
    Classic,
    Quorum,
}

impl QueueType {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueType::Classic => "classic",
            QueueType::Quorum => "quorum",
        }
    }
}

/// What a queue does when it is full (RabbitMQ `x-overflow`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    #[default]
    DropHead,
    RejectPublish,
    RejectPublishDlx,
}

/// Queue arguments, RabbitMQ's `x-*` settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueArgs {
    pub queue_type: QueueType,
    pub message_ttl_ms: Option<u64>,
    pub max_length: Option<u64>,
    pub overflow: Overflow,
    pub dead_letter_exchange: Option<String>,
    pub dead_letter_routing_key: Option<String>,
    /// Quorum queues: returns allowed before the message is dead-lettered.
    pub delivery_limit: Option<u64>,
}

impl QueueArgs {
    /// The arguments as RabbitMQ would list them: `x-queue-type` and every `x-*` set.
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        use serde_json::json;
        let mut a = serde_json::Map::new();
        a.insert("x-queue-type".into(), json!(self.queue_type.as_str()));
        let mut opt = |k: &str, v: Option<serde_json::Value>| {
            if let Some(v) = v {
                a.insert(k.to_string(), v);
            }
        };
        opt("x-message-ttl", self.message_ttl_ms.map(|v| json!(v)));
        opt("x-max-length", self.max_length.map(|v| json!(v)));
        opt(
            "x-dead-letter-exchange",
            self.dead_letter_exchange.as_ref().map(|v| json!(v)),
        );
        opt(
            "x-dead-letter-routing-key",
            self.dead_letter_routing_key.as_ref().map(|v| json!(v)),
        );
        opt("x-delivery-limit", self.delivery_limit.map(|v| json!(v)));
        if self.max_length.is_some() {
            let o = match self.overflow {
                Overflow::DropHead => "drop-head",
                Overflow::RejectPublish => "reject-publish",
                Overflow::RejectPublishDlx => "reject-publish-dlx",
            };
            opt("x-overflow", Some(json!(o)));
        }
        a
    }
}

/// What a publisher hands over.
#[derive(Debug, Clone, Default)]
pub struct Outgoing {
    pub properties: Properties,
    pub headers: FieldTable,
    pub payload: Bytes,
}

/// A message handed to a consumer by [`LocalBroker::get`].
#[derive(Debug, Clone)]
pub struct Delivery {
    pub tag: u64,
    pub message: Message,
}

/// Something that happened, for live tails: a message published to an exchange (including
/// dead-letter exchanges) or produced to a topic, or one handed to a consumer.
#[derive(Debug, Clone)]
pub struct TapEvent {
    /// Exchange or topic name; for a delivery, the queue.
    pub source: String,
    pub message: Message,
    /// Set when the message was handed to a consumer rather than published.
    pub delivery: Option<crate::model::Delivery>,
}

#[derive(Debug)]
struct Body {
    properties: Properties,
    headers: FieldTable,
    payload: Bytes,
    published_ms: i64,
}

#[derive(Debug, Clone)]
struct Stored {
    seq: u64,
    body: Arc<Body>,
    exchange: String,
    routing_key: String,
    expires_ms: Option<i64>,
    redelivered: bool,
    delivery_count: u64,
}

const RATE_WINDOW_MS: i64 = 10_000;

#[derive(Debug, Default)]
struct Meter {
    published: u64,
    delivered: u64,
    samples: VecDeque<(i64, u64, u64)>,
}

impl Meter {
    fn sample(&mut self, now: i64) {
        if self.samples.back().is_none_or(|(t, _, _)| now - t >= 1_000) {
            self.samples
                .push_back((now, self.published, self.delivered));
        }
        while self
            .samples
            .front()
            .is_some_and(|(t, _, _)| now - t > RATE_WINDOW_MS)
        {
            self.samples.pop_front();
        }
    }

    fn publish(&mut self, now: i64) {
        self.sample(now);
        self.published += 1;
    }

    fn deliver(&mut self, now: i64) {
        self.sample(now);
        self.delivered += 1;
    }

    /// (publish, deliver) per second over the last window.
    fn rates(&self, now: i64) -> (f64, f64) {
        let Some(&(t, p, d)) = self
            .samples
            .iter()
            .find(|(t, _, _)| now - t <= RATE_WINDOW_MS)
        else {
            return (0.0, 0.0);
        };
        let secs = (now - t) as f64 / 1000.0;
        if secs < 0.5 {
            return (0.0, 0.0);
        }
        let per_sec = |n: u64| ((n as f64 / secs) * 100.0).round() / 100.0;
        (per_sec(self.published - p), per_sec(self.delivered - d))
    }
}

#[derive(Debug)]
struct Queue {
    args: QueueArgs,
    ready: VecDeque<Stored>,
    unacked: u64,
    consumers: u32,
    meter: Meter,
}

#[derive(Debug)]
struct Record {
    key: Option<Bytes>,
    headers: FieldTable,
    payload: Bytes,
    timestamp_ms: i64,
}

#[derive(Debug, Default)]
struct Partition {
    start: i64,
    records: VecDeque<Arc<Record>>,
}

impl Partition {
    fn high(&self) -> i64 {
        self.start + self.records.len() as i64
    }
}

#[derive(Debug)]
struct Topic {
    partitions: Vec<Partition>,
    next_unkeyed: usize,
    meter: Meter,
}

#[derive(Debug, Default)]
struct Group {
    committed: BTreeMap<(String, i32), i64>,
    members: u32,
}

#[derive(Debug, Default)]
struct State {
    topology: Topology,
    queues: BTreeMap<String, Queue>,
    topics: BTreeMap<String, Topic>,
    groups: BTreeMap<String, Group>,
    unacked: HashMap<u64, (String, Stored)>,
    next_seq: u64,
    next_tag: u64,
    dead_letter_depth: u32,
}

impl State {
    fn queue(&self, name: &str) -> Result<&Queue, BrokerError> {
        self.queues.get(name).ok_or_else(|| no_queue(name))
    }

    fn queue_mut(&mut self, name: &str) -> Result<&mut Queue, BrokerError> {
        self.queues.get_mut(name).ok_or_else(|| no_queue(name))
    }

    fn topic(&self, name: &str) -> Result<&Topic, BrokerError> {
        self.topics.get(name).ok_or_else(|| no_topic(name))
    }

    fn topic_mut(&mut self, name: &str) -> Result<&mut Topic, BrokerError> {
        self.topics.get_mut(name).ok_or_else(|| no_topic(name))
    }
}

fn no_queue(name: &str) -> BrokerError {
    BrokerError::NoQueue(name.to_string())
}

fn no_topic(name: &str) -> BrokerError {
    BrokerError::NoTopic(name.to_string())
}

/// The local broker. Cheap to share: wrap it in an `Arc`.
pub struct LocalBroker {
    name: String,
    state: Mutex<State>,
    clock: Clock,
    config: LocalConfig,
    taps: broadcast::Sender<TapEvent>,
    /// The last `config.keep_events` tap events.
    kept: Mutex<std::collections::VecDeque<TapEvent>>,
}

impl LocalBroker {
    pub fn new(name: impl Into<String>, clock: Clock, config: LocalConfig) -> Self {
        let (taps, _) = broadcast::channel(4096);
        let mut state = State::default();
        // The AMQP default exchange is implicit; named ones are declared.
        state.topology.exchanges.clear();
        Self {
            name: name.into(),
            state: Mutex::new(state),
            clock,
            config,
            taps,
            kept: Mutex::default(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave the state half-written in a way that
        // matters more than losing the broker entirely, so keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn subscribe(&self) -> broadcast::Receiver<TapEvent> {
        self.taps.subscribe()
    }

    /// Whether anyone takes tap events: a live tail, or the broker's own keeping.
    fn tapped(&self) -> bool {
        self.config.keep_events > 0 || self.taps.receiver_count() > 0
    }

    /// Hand a tap event to the live tails, and keep it when the broker keeps events.
    fn emit(&self, event: TapEvent) {
        if self.config.keep_events > 0 {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            if kept.len() >= self.config.keep_events {
                kept.pop_front();
            }
            kept.push_back(event.clone());
        }
        let _ = self.taps.send(event);
    }

    /// The tap events the broker kept ([`LocalConfig::keep_events`]), oldest first.
    pub fn kept_events(&self) -> Vec<TapEvent> {
        let kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter().cloned().collect()
    }

    // ---- listing ----

    /// Every queue and topic with counts, rates and resolved dead-letter wiring.
    pub fn summaries(&self) -> Vec<QueueSummary> {
        let now = self.clock.now_ms();
        let st = self.lock();
        let mut out = Vec::with_capacity(st.queues.len() + st.topics.len());
        for (name, q) in &st.queues {
            let mut s = QueueSummary::new(name, QueueKind::Queue, q.args.queue_type.as_str());
            s.cluster = Some(self.name.clone());
            s.ready = Some(q.ready.len() as u64);
            s.unacked = Some(q.unacked);
            s.messages = Some(q.ready.len() as u64 + q.unacked);
            s.consumers = Some(u64::from(q.consumers));
            let (p, d) = q.meter.rates(now);
            s.publish_rate = Some(p);
            s.deliver_rate = Some(d);
            s.delivery_limit = q.args.delivery_limit;
            s.message_ttl_ms = q.args.message_ttl_ms;
            s.max_length = q.args.max_length;
            s.arguments = q.args.to_json();
            if let Some(dlx) = &q.args.dead_letter_exchange {
                s.dead_letter = Some(DeadLetterTarget {
                    exchange: dlx.clone(),
                    routing_key: q.args.dead_letter_routing_key.clone(),
                });
            }
            out.push(s);
        }
        for (name, t) in &st.topics {
            let mut s = QueueSummary::new(name, QueueKind::Topic, "topic");
            s.cluster = Some(self.name.clone());
            let total: u64 = t.partitions.iter().map(|p| p.records.len() as u64).sum();
            s.messages = Some(total);
            s.ready = Some(total);
            s.partitions = Some(t.partitions.len() as u32);
            let (p, _) = t.meter.rates(now);
            s.publish_rate = Some(p);
            s.consumers = Some(
                st.groups
                    .values()
                    .filter(|g| g.members > 0 && g.committed.keys().any(|(tn, _)| tn == name))
                    .map(|g| u64::from(g.members))
                    .sum(),
            );
            out.push(s);
        }
        crate::model::deadletter::resolve_dead_letters(&mut out, &st.topology);
        out
    }
}
