//! The in-process broker: AMQP-style exchanges and queues (ack, reject, requeue, TTL,
//! max-length and delivery-limit dead-lettering with RabbitMQ's `x-death` records) and
//! Kafka-style partitioned logs with consumer groups. Thread-safe; memory per queue and
//! per partition is capped by [`LocalConfig`].

use super::clock::Clock;
use crate::model::death::{DeathEvent, record_death};
use crate::model::topology::{Binding, DestinationKind, Exchange, ExchangeKind, Topology};
use crate::model::{
    ConsumerGroup, DeadLetterTarget, DeathReason, FieldTable, FieldValue, Message, PartitionInfo,
    PartitionLag, Properties, QueueKind, QueueSummary,
};
use bytes::Bytes;
use chrono::DateTime;
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
}

impl Default for LocalConfig {
    fn default() -> Self {
        Self {
            max_queue_messages: 250_000,
            max_partition_records: 250_000,
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
/// dead-letter exchanges) or produced to a topic.
#[derive(Debug, Clone)]
pub struct TapEvent {
    /// Exchange or topic name.
    pub source: String,
    pub message: Message,
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

/// The local broker. Cheap to share: wrap it in an `Arc`.
pub struct LocalBroker {
    name: String,
    state: Mutex<State>,
    clock: Clock,
    config: LocalConfig,
    taps: broadcast::Sender<TapEvent>,
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

    // ---- declarations ----

    pub fn declare_exchange(&self, name: &str, kind: ExchangeKind) -> Result<(), BrokerError> {
        if name.is_empty() || name.starts_with("amq.") {
            return Err(BrokerError::Invalid(format!(
                "exchange name \"{name}\" is reserved"
            )));
        }
        let mut st = self.lock();
        match st.topology.exchange(name) {
            Some(e) if e.kind != kind => Err(BrokerError::Conflict(name.to_string())),
            Some(_) => Ok(()),
            None => {
                st.topology.exchanges.push(Exchange {
                    name: name.to_string(),
                    kind,
                });
                Ok(())
            }
        }
    }

    pub fn declare_queue(&self, name: &str, args: QueueArgs) -> Result<(), BrokerError> {
        if name.is_empty() {
            return Err(BrokerError::Invalid("queue name must not be empty".into()));
        }
        let mut st = self.lock();
        if st.topics.contains_key(name) {
            return Err(BrokerError::Conflict(name.to_string()));
        }
        match st.queues.get(name) {
            Some(q) if q.args != args => Err(BrokerError::Conflict(name.to_string())),
            Some(_) => Ok(()),
            None => {
                st.topology.queues.insert(name.to_string());
                st.queues.insert(
                    name.to_string(),
                    Queue {
                        args,
                        ready: VecDeque::new(),
                        unacked: 0,
                        consumers: 0,
                        meter: Meter::default(),
                    },
                );
                Ok(())
            }
        }
    }

    pub fn bind_queue(&self, queue: &str, exchange: &str, key: &str) -> Result<(), BrokerError> {
        self.bind(
            queue,
            DestinationKind::Queue,
            exchange,
            key,
            FieldTable::new(),
        )
    }

    pub fn bind_exchange(
        &self,
        destination: &str,
        source: &str,
        key: &str,
    ) -> Result<(), BrokerError> {
        self.bind(
            destination,
            DestinationKind::Exchange,
            source,
            key,
            FieldTable::new(),
        )
    }

    /// Bind with arguments (headers exchanges match on them).
    pub fn bind(
        &self,
        destination: &str,
        kind: DestinationKind,
        source: &str,
        key: &str,
        arguments: FieldTable,
    ) -> Result<(), BrokerError> {
        let mut st = self.lock();
        if st.topology.exchange(source).is_none() {
            return Err(BrokerError::NoExchange(source.to_string()));
        }
        let exists = match kind {
            DestinationKind::Queue => st.queues.contains_key(destination),
            DestinationKind::Exchange => st.topology.exchange(destination).is_some(),
        };
        if !exists {
            return Err(match kind {
                DestinationKind::Queue => BrokerError::NoQueue(destination.to_string()),
                DestinationKind::Exchange => BrokerError::NoExchange(destination.to_string()),
            });
        }
        let b = Binding {
            source: source.to_string(),
            destination: destination.to_string(),
            destination_kind: kind,
            routing_key: key.to_string(),
            arguments,
        };
        if !st.topology.bindings.contains(&b) {
            st.topology.bindings.push(b);
        }
        Ok(())
    }

    pub fn declare_topic(&self, name: &str, partitions: u32) -> Result<(), BrokerError> {
        if name.is_empty() || partitions == 0 {
            return Err(BrokerError::Invalid(
                "a topic needs a name and at least one partition".into(),
            ));
        }
        let mut st = self.lock();
        if st.queues.contains_key(name) {
            return Err(BrokerError::Conflict(name.to_string()));
        }
        match st.topics.get(name) {
            Some(t) if t.partitions.len() != partitions as usize => {
                Err(BrokerError::Conflict(name.to_string()))
            }
            Some(_) => Ok(()),
            None => {
                st.topics.insert(
                    name.to_string(),
                    Topic {
                        partitions: (0..partitions).map(|_| Partition::default()).collect(),
                        next_unkeyed: 0,
                        meter: Meter::default(),
                    },
                );
                Ok(())
            }
        }
    }

    pub fn set_consumers(&self, queue: &str, consumers: u32) -> Result<(), BrokerError> {
        let mut st = self.lock();
        let q = st
            .queues
            .get_mut(queue)
            .ok_or_else(|| BrokerError::NoQueue(queue.to_string()))?;
        q.consumers = consumers;
        Ok(())
    }

    pub fn set_group_members(&self, group: &str, members: u32) {
        self.lock()
            .groups
            .entry(group.to_string())
            .or_default()
            .members = members;
    }

    // ---- AMQP side ----

    /// Publish to an exchange (`""` is the default exchange). Returns the queues reached;
    /// an empty list means the message was unroutable and is gone, as in AMQP.
    pub fn publish(
        &self,
        exchange: &str,
        routing_key: &str,
        msg: Outgoing,
    ) -> Result<Vec<String>, BrokerError> {
        self.publish_inner(exchange, routing_key, msg, false)
    }

    /// Publish with AMQP's `mandatory` flag: an unroutable message is handed back (an empty
    /// list, nothing stored or tapped) instead of silently dropped.
    pub fn publish_mandatory(
        &self,
        exchange: &str,
        routing_key: &str,
        msg: Outgoing,
    ) -> Result<Vec<String>, BrokerError> {
        self.publish_inner(exchange, routing_key, msg, true)
    }

    fn publish_inner(
        &self,
        exchange: &str,
        routing_key: &str,
        msg: Outgoing,
        mandatory: bool,
    ) -> Result<Vec<String>, BrokerError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        if !exchange.is_empty() && st.topology.exchange(exchange).is_none() {
            return Err(BrokerError::NoExchange(exchange.to_string()));
        }
        if let Some(exp) = &msg.properties.expiration
            && exp.parse::<u64>().is_err()
        {
            return Err(BrokerError::Invalid(format!(
                "expiration must be a whole number of milliseconds, not \"{exp}\" (PRECONDITION_FAILED)"
            )));
        }
        let mut headers = msg.headers;
        // Sender-selected distribution: CC and BCC add routing keys; BCC is never delivered.
        let mut keys = vec![routing_key.to_string()];
        keys.extend(header_keys(&headers, "CC"));
        keys.extend(header_keys(&headers, "BCC"));
        headers.remove("BCC");
        let body = Arc::new(Body {
            properties: msg.properties,
            headers,
            payload: msg.payload,
            published_ms: now,
        });
        let mut targets: Vec<String> = Vec::new();
        for k in &keys {
            for q in st.topology.route(exchange, k, &body.headers) {
                if !targets.contains(&q) {
                    targets.push(q);
                }
            }
        }
        if mandatory && targets.is_empty() {
            return Ok(targets);
        }
        self.tap(exchange, routing_key, &body);
        let mut accepted = Vec::with_capacity(targets.len());
        for q in targets {
            if self.enqueue(&mut st, &q, Arc::clone(&body), exchange, routing_key, now) {
                accepted.push(q);
            }
        }
        Ok(accepted)
    }

    fn tap(&self, source: &str, routing_key: &str, body: &Arc<Body>) {
        if self.taps.receiver_count() == 0 {
            return;
        }
        let mut m = Message::new(source, 0, body.payload.clone());
        m.exchange = Some(source.to_string());
        m.routing_key = Some(routing_key.to_string());
        m.headers = body.headers.clone();
        m.properties = body.properties.clone();
        m.timestamp = DateTime::from_timestamp_millis(body.published_ms);
        let _ = self.taps.send(TapEvent {
            source: source.to_string(),
            message: m,
        });
    }

    /// Store a message in a queue, applying TTL and length limits. Returns false when the
    /// queue refused it (`reject-publish`, or dead-lettered at once by `reject-publish-dlx`).
    fn enqueue(
        &self,
        st: &mut State,
        queue: &str,
        body: Arc<Body>,
        exchange: &str,
        key: &str,
        now: i64,
    ) -> bool {
        let Some(q) = st.queues.get(queue) else {
            return false;
        };
        let ttl = q.args.message_ttl_ms;
        let per_message = body
            .properties
            .expiration
            .as_deref()
            .and_then(|e| e.parse::<u64>().ok());
        let expires_ms = match (ttl, per_message) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
        .map(|ms| now.saturating_add(i64::try_from(ms).unwrap_or(i64::MAX)));
        let limit = q
            .args
            .max_length
            .map(|m| usize::try_from(m).unwrap_or(usize::MAX))
            .unwrap_or(usize::MAX)
            .min(self.config.max_queue_messages);
        let overflow = q.args.overflow;
        let full = q.ready.len() >= limit;
        st.next_seq += 1;
        let stored = Stored {
            seq: st.next_seq,
            body,
            exchange: exchange.to_string(),
            routing_key: key.to_string(),
            expires_ms,
            redelivered: false,
            delivery_count: 0,
        };
        if full {
            match overflow {
                Overflow::RejectPublish => return false,
                Overflow::RejectPublishDlx => {
                    self.dead_letter(st, queue, stored, DeathReason::Maxlen, now);
                    return false;
                }
                Overflow::DropHead => {}
            }
        }
        let Some(q) = st.queues.get_mut(queue) else {
            return false;
        };
        q.meter.publish(now);
        q.ready.push_back(stored);
        let mut dropped = Vec::new();
        while q.ready.len() > limit {
            match q.ready.pop_front() {
                Some(old) => dropped.push(old),
                None => break,
            }
        }
        for old in dropped {
            self.dead_letter(st, queue, old, DeathReason::Maxlen, now);
        }
        true
    }

    /// Route a dead message through its queue's dead-letter exchange, writing `x-death`
    /// as RabbitMQ does. Without a dead-letter exchange the message is dropped.
    fn dead_letter(
        &self,
        st: &mut State,
        queue: &str,
        stored: Stored,
        reason: DeathReason,
        now: i64,
    ) {
        let Some(args) = st.queues.get(queue).map(|q| q.args.clone()) else {
            return;
        };
        let Some(dlx) = args.dead_letter_exchange else {
            return;
        };
        if !dlx.is_empty() && st.topology.exchange(&dlx).is_none() {
            return;
        }
        // Cycle detection below makes runaway recursion impossible; this bound is a second
        // line of defence against a topology that slips past it.
        if st.dead_letter_depth >= 32 {
            return;
        }
        let mut headers = stored.body.headers.clone();
        let mut properties = stored.body.properties.clone();
        // RabbitMQ removes the message's own TTL on every dead-lettering and keeps it in
        // the record, so it cannot expire again in the dead-letter queue.
        let original_expiration = properties.expiration.take();
        let mut routing_keys = vec![stored.routing_key.clone()];
        routing_keys.extend(header_keys(&headers, "CC"));
        record_death(
            &mut headers,
            &DeathEvent {
                queue,
                reason,
                exchange: &stored.exchange,
                routing_keys: &routing_keys,
                time_secs: u64::try_from(now / 1000).unwrap_or(0),
                original_expiration: original_expiration.as_deref(),
            },
        );
        let keys = match &args.dead_letter_routing_key {
            Some(k) => {
                headers.remove("CC");
                vec![k.clone()]
            }
            None => routing_keys,
        };
        let body = Arc::new(Body {
            properties,
            headers,
            payload: stored.body.payload.clone(),
            published_ms: stored.body.published_ms,
        });
        let deaths = crate::model::death::parse_deaths(&body.headers);
        let mut targets: Vec<String> = Vec::new();
        for key in &keys {
            for t in st.topology.route(&dlx, key, &body.headers) {
                if !targets.contains(&t) && !is_cycle(&deaths, reason, &t) {
                    targets.push(t);
                }
            }
        }
        self.tap(&dlx, &keys[0], &body);
        st.dead_letter_depth += 1;
        for target in targets {
            self.enqueue(st, &target, Arc::clone(&body), &dlx, &keys[0], now);
        }
        st.dead_letter_depth -= 1;
    }

    fn expire_head(&self, st: &mut State, queue: &str, now: i64) {
        loop {
            let Some(q) = st.queues.get_mut(queue) else {
                return;
            };
            let expired = q
                .ready
                .front()
                .is_some_and(|m| m.expires_ms.is_some_and(|e| e <= now));
            if !expired {
                return;
            }
            if let Some(m) = q.ready.pop_front() {
                self.dead_letter(st, queue, m, DeathReason::Expired, now);
            }
        }
    }

    /// Dead-letter every expired message at the head of every queue (RabbitMQ expires
    /// from the head), as the broker's timer would.
    pub fn expire_all(&self) {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let names: Vec<String> = st.queues.keys().cloned().collect();
        for name in names {
            self.expire_head(&mut st, &name, now);
        }
    }

    /// `basic.get`: take the next ready message. With `auto_ack` it is gone; otherwise it
    /// waits for [`ack`](Self::ack) or [`nack`](Self::nack) under the returned tag.
    pub fn get(&self, queue: &str, auto_ack: bool) -> Result<Option<Delivery>, BrokerError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        if !st.queues.contains_key(queue) {
            return Err(BrokerError::NoQueue(queue.to_string()));
        }
        self.expire_head(&mut st, queue, now);
        let Some(q) = st.queues.get_mut(queue) else {
            return Err(BrokerError::NoQueue(queue.to_string()));
        };
        let Some(stored) = q.ready.pop_front() else {
            return Ok(None);
        };
        q.meter.deliver(now);
        let message = to_message(queue, 0, &stored, q.args.queue_type);
        st.next_tag += 1;
        let tag = st.next_tag;
        if !auto_ack {
            if let Some(q) = st.queues.get_mut(queue) {
                q.unacked += 1;
            }
            st.unacked.insert(tag, (queue.to_string(), stored));
        }
        Ok(Some(Delivery { tag, message }))
    }

    pub fn ack(&self, tag: u64) -> Result<(), BrokerError> {
        let mut st = self.lock();
        let (queue, _) = st
            .unacked
            .remove(&tag)
            .ok_or(BrokerError::UnknownTag(tag))?;
        if let Some(q) = st.queues.get_mut(&queue) {
            q.unacked = q.unacked.saturating_sub(1);
        }
        Ok(())
    }

    /// `basic.nack`/`basic.reject`: requeue (to its original place) or dead-letter. On a
    /// quorum queue each return counts towards the delivery limit.
    pub fn nack(&self, tag: u64, requeue: bool) -> Result<(), BrokerError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let (queue, mut stored) = st
            .unacked
            .remove(&tag)
            .ok_or(BrokerError::UnknownTag(tag))?;
        let Some(q) = st.queues.get_mut(&queue) else {
            return Ok(());
        };
        q.unacked = q.unacked.saturating_sub(1);
        if !requeue {
            self.dead_letter(&mut st, &queue, stored, DeathReason::Rejected, now);
            return Ok(());
        }
        stored.redelivered = true;
        if q.args.queue_type == QueueType::Quorum {
            stored.delivery_count += 1;
            if q.args
                .delivery_limit
                .is_some_and(|limit| stored.delivery_count > limit)
            {
                self.dead_letter(&mut st, &queue, stored, DeathReason::DeliveryLimit, now);
                return Ok(());
            }
        }
        let at = q.ready.partition_point(|m| m.seq < stored.seq);
        q.ready.insert(at, stored);
        Ok(())
    }

    /// Remove every ready message; returns how many.
    pub fn purge(&self, queue: &str) -> Result<u64, BrokerError> {
        let mut st = self.lock();
        let q = st
            .queues
            .get_mut(queue)
            .ok_or_else(|| BrokerError::NoQueue(queue.to_string()))?;
        let n = q.ready.len() as u64;
        q.ready.clear();
        Ok(n)
    }

    /// Read ready messages without taking them: `from` is an index from the head.
    pub fn peek_queue(
        &self,
        queue: &str,
        from: usize,
        limit: usize,
    ) -> Result<Vec<Message>, BrokerError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        if !st.queues.contains_key(queue) {
            return Err(BrokerError::NoQueue(queue.to_string()));
        }
        self.expire_head(&mut st, queue, now);
        let q = st
            .queues
            .get(queue)
            .ok_or_else(|| BrokerError::NoQueue(queue.to_string()))?;
        Ok(q.ready
            .iter()
            .enumerate()
            .skip(from)
            .take(limit)
            .map(|(i, m)| to_message(queue, i as u64, m, q.args.queue_type))
            .collect())
    }

    /// Index of the first ready message published at or after `ms`, and the queue length.
    pub fn queue_index_at(&self, queue: &str, ms: i64) -> Result<(usize, usize), BrokerError> {
        let st = self.lock();
        let q = st
            .queues
            .get(queue)
            .ok_or_else(|| BrokerError::NoQueue(queue.to_string()))?;
        let idx = q
            .ready
            .iter()
            .position(|m| m.body.published_ms >= ms)
            .unwrap_or(q.ready.len());
        Ok((idx, q.ready.len()))
    }

    pub fn queue_len(&self, queue: &str) -> Result<usize, BrokerError> {
        let st = self.lock();
        st.queues
            .get(queue)
            .map(|q| q.ready.len())
            .ok_or_else(|| BrokerError::NoQueue(queue.to_string()))
    }

    /// The exchanges, bindings and queues it routes with, as they are now.
    pub fn topology(&self) -> Topology {
        self.lock().topology.clone()
    }

    pub fn has_queue(&self, name: &str) -> bool {
        self.lock().queues.contains_key(name)
    }

    pub fn has_topic(&self, name: &str) -> bool {
        self.lock().topics.contains_key(name)
    }

    pub fn queue_args(&self, name: &str) -> Option<QueueArgs> {
        self.lock().queues.get(name).map(|q| q.args.clone())
    }

    /// `exchange -> queue (key)` lines for bindings to this queue.
    pub fn bindings_to(&self, queue: &str) -> Vec<String> {
        let st = self.lock();
        st.topology
            .bindings
            .iter()
            .filter(|b| b.destination == queue && b.destination_kind == DestinationKind::Queue)
            .map(|b| format!("{} -> {} ({})", b.source, b.destination, b.routing_key))
            .collect()
    }

    // ---- log side ----

    /// Append a record. Without a partition, a key picks one by hash (Kafka's murmur2), and
    /// no key picks round-robin. Returns (partition, offset).
    pub fn produce(
        &self,
        topic: &str,
        partition: Option<i32>,
        key: Option<Bytes>,
        headers: FieldTable,
        payload: Bytes,
    ) -> Result<(i32, i64), BrokerError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        let t = st
            .topics
            .get_mut(topic)
            .ok_or_else(|| BrokerError::NoTopic(topic.to_string()))?;
        let n = t.partitions.len();
        let p = match partition {
            Some(p) => {
                usize::try_from(p)
                    .ok()
                    .filter(|i| *i < n)
                    .ok_or(BrokerError::NoPartition {
                        topic: topic.to_string(),
                        partition: p,
                    })?
            }
            None => match &key {
                Some(k) => (murmur2(k) & 0x7fff_ffff) as usize % n,
                None => {
                    t.next_unkeyed = (t.next_unkeyed + 1) % n;
                    t.next_unkeyed
                }
            },
        };
        let record = Arc::new(Record {
            key,
            headers,
            payload,
            timestamp_ms: now,
        });
        let part = &mut t.partitions[p];
        part.records.push_back(Arc::clone(&record));
        while part.records.len() > self.config.max_partition_records {
            part.records.pop_front();
            part.start += 1;
        }
        let offset = part.high() - 1;
        t.meter.publish(now);
        let partition = p as i32;
        if self.taps.receiver_count() > 0 {
            let m = record_message(topic, partition, offset, &record);
            let _ = self.taps.send(TapEvent {
                source: topic.to_string(),
                message: m,
            });
        }
        Ok((partition, offset))
    }

    /// Up to `max` records of one partition from `offset` (clamped to the log start).
    pub fn fetch(
        &self,
        topic: &str,
        partition: i32,
        offset: i64,
        max: usize,
    ) -> Result<Vec<Message>, BrokerError> {
        let st = self.lock();
        let part = partition_of(&st, topic, partition)?;
        let from = offset.max(part.start);
        let skip = usize::try_from(from - part.start).unwrap_or(usize::MAX);
        Ok(part
            .records
            .iter()
            .skip(skip)
            .take(max)
            .enumerate()
            .map(|(i, r)| record_message(topic, partition, from + i as i64, r))
            .collect())
    }

    /// First offset of a partition whose timestamp is at or after `ms` (the high watermark
    /// when there is none), like Kafka's `offsets_for_times`.
    pub fn offset_for_time(
        &self,
        topic: &str,
        partition: i32,
        ms: i64,
    ) -> Result<i64, BrokerError> {
        let st = self.lock();
        let part = partition_of(&st, topic, partition)?;
        let idx = part.records.partition_point(|r| r.timestamp_ms < ms);
        Ok(part.start + idx as i64)
    }

    pub fn partitions(&self, topic: &str) -> Result<Vec<PartitionInfo>, BrokerError> {
        let st = self.lock();
        let t = st
            .topics
            .get(topic)
            .ok_or_else(|| BrokerError::NoTopic(topic.to_string()))?;
        Ok(t.partitions
            .iter()
            .enumerate()
            .map(|(i, p)| PartitionInfo {
                partition: i as i32,
                low: p.start,
                high: p.high(),
                leader: Some(0),
                replicas: vec![0],
            })
            .collect())
    }

    /// Commit a group's next offset to read on one partition.
    pub fn commit(
        &self,
        group: &str,
        topic: &str,
        partition: i32,
        offset: i64,
    ) -> Result<(), BrokerError> {
        let mut st = self.lock();
        partition_of(&st, topic, partition)?;
        st.groups
            .entry(group.to_string())
            .or_default()
            .committed
            .insert((topic.to_string(), partition), offset);
        Ok(())
    }

    pub fn committed(&self, group: &str, topic: &str, partition: i32) -> Option<i64> {
        self.lock()
            .groups
            .get(group)
            .and_then(|g| g.committed.get(&(topic.to_string(), partition)).copied())
    }

    pub fn groups(&self) -> Vec<ConsumerGroup> {
        let st = self.lock();
        st.groups
            .iter()
            .map(|(name, g)| {
                let mut topics: Vec<String> = g.committed.keys().map(|(t, _)| t.clone()).collect();
                topics.dedup();
                let partitions: Vec<PartitionLag> = g
                    .committed
                    .iter()
                    .map(|((topic, p), off)| {
                        let high = st
                            .topics
                            .get(topic)
                            .and_then(|t| t.partitions.get(*p as usize))
                            .map(Partition::high)
                            .unwrap_or(*off);
                        PartitionLag {
                            topic: topic.clone(),
                            partition: *p,
                            committed: Some(*off),
                            high,
                            lag: u64::try_from(high - off).unwrap_or(0),
                        }
                    })
                    .collect();
                ConsumerGroup {
                    name: name.clone(),
                    state: if g.members > 0 { "Stable" } else { "Empty" }.to_string(),
                    members: g.members,
                    topics,
                    lag: partitions.iter().map(|p| p.lag).sum(),
                    partitions,
                }
            })
            .collect()
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

/// Routing keys listed in a `CC` or `BCC` header (an array of strings).
fn header_keys(headers: &FieldTable, name: &str) -> Vec<String> {
    headers
        .get(name)
        .and_then(FieldValue::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// RabbitMQ's cycle rule: dead-lettering into `target` is a cycle when the message already
/// died in `target` and no death since then (the current one included) was a rejection.
fn is_cycle(deaths: &[crate::model::DeathRecord], reason: DeathReason, target: &str) -> bool {
    if reason == DeathReason::Rejected {
        return false;
    }
    for d in deaths
        .iter()
        .filter(|d| d.source == crate::model::DeathSource::XDeath)
    {
        if d.reason == DeathReason::Rejected {
            return false;
        }
        if d.queue == target {
            return true;
        }
    }
    false
}

fn partition_of<'a>(
    st: &'a State,
    topic: &str,
    partition: i32,
) -> Result<&'a Partition, BrokerError> {
    let t = st
        .topics
        .get(topic)
        .ok_or_else(|| BrokerError::NoTopic(topic.to_string()))?;
    usize::try_from(partition)
        .ok()
        .and_then(|i| t.partitions.get(i))
        .ok_or(BrokerError::NoPartition {
            topic: topic.to_string(),
            partition,
        })
}

fn to_message(queue: &str, position: u64, m: &Stored, qt: QueueType) -> Message {
    let mut msg = Message::new(queue, position, m.body.payload.clone());
    msg.timestamp = DateTime::from_timestamp_millis(m.body.published_ms);
    msg.exchange = Some(m.exchange.clone());
    msg.routing_key = Some(m.routing_key.clone());
    msg.headers = m.body.headers.clone();
    msg.properties = m.body.properties.clone();
    msg.redelivered = m.redelivered;
    if qt == QueueType::Quorum {
        msg.delivery_count = Some(m.delivery_count);
    }
    msg
}

fn record_message(topic: &str, partition: i32, offset: i64, r: &Record) -> Message {
    let mut m = Message::new(topic, u64::try_from(offset).unwrap_or(0), r.payload.clone());
    m.partition = Some(partition);
    m.offset = Some(offset);
    m.key = r.key.clone();
    m.headers = r.headers.clone();
    m.timestamp = DateTime::from_timestamp_millis(r.timestamp_ms);
    m
}

/// Kafka's default partitioner hash (murmur2, seed 0x9747b28c), so keys land where a
/// Java producer would put them.
pub fn murmur2(data: &[u8]) -> u32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let len = data.len();
    let mut h: u32 = 0x9747_b28c ^ (len as u32);
    let chunks = data.chunks_exact(4);
    let tail = chunks.remainder();
    for c in chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    match tail.len() {
        3 => {
            h ^= u32::from(tail[2]) << 16;
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        2 => {
            h ^= u32::from(tail[1]) << 8;
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        1 => {
            h ^= u32::from(tail[0]);
            h = h.wrapping_mul(M);
        }
        _ => {}
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h
}

/// A header value of a Kafka record (they are byte strings).
pub fn kafka_header(value: impl Into<Bytes>) -> FieldValue {
    FieldValue::LongString(value.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur2_matches_kafka() {
        // Values from Kafka's own partitioner tests (Utils.murmur2).
        assert_eq!(murmur2(b"21") as i32, -973932308);
        assert_eq!(murmur2(b"foobar") as i32, -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string") as i32, -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string") as i32, -1486304829);
        assert_eq!(
            murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8") as i32,
            -58897971
        );
        assert_eq!(murmur2(b"abc") as i32, 479470107);
    }
}
