//! The queue side of the local broker, AMQP-style: exchanges, queues and bindings,
//! routing, ack/reject/requeue, TTL, max-length and delivery-limit dead-lettering with
//! RabbitMQ's `x-death` records.

use super::{
    Body, BrokerError, Delivery, LocalBroker, Meter, Outgoing, Overflow, Queue, QueueArgs,
    QueueType, State, Stored, TapEvent,
};
use crate::model::death::{DeathEvent, record_death};
use crate::model::topology::{Binding, DestinationKind, Exchange, ExchangeKind, Topology};
use crate::model::{DeathReason, FieldTable, Message};
use chrono::DateTime;
use std::collections::VecDeque;
use std::sync::Arc;

impl LocalBroker {
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

    pub fn set_consumers(&self, queue: &str, consumers: u32) -> Result<(), BrokerError> {
        let mut st = self.lock();
        let q = st.queue_mut(queue)?;
        q.consumers = consumers;
        Ok(())
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
        keys.extend(crate::model::routing::sender_selected(&headers));
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
        if !self.tapped() {
            return;
        }
        let mut m = Message::new(source, 0, body.payload.clone());
        m.exchange = Some(source.to_string());
        m.routing_key = Some(routing_key.to_string());
        m.headers = body.headers.clone();
        m.properties = body.properties.clone();
        m.timestamp = DateTime::from_timestamp_millis(body.published_ms);
        self.emit(TapEvent {
            source: source.to_string(),
            message: m,
            delivery: None,
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
        routing_keys.extend(crate::model::routing::header_keys(&headers, "CC"));
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

    /// [`expire_head`](Self::expire_head) of a queue that must exist.
    fn expire_head_of(&self, st: &mut State, queue: &str, now: i64) -> Result<(), BrokerError> {
        st.queue(queue)?;
        self.expire_head(st, queue, now);
        Ok(())
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

    /// `basic.get` by mqscope itself (a replay or a remove taking messages): see
    /// [`get_by`](Self::get_by).
    pub fn get(&self, queue: &str, auto_ack: bool) -> Result<Option<Delivery>, BrokerError> {
        self.get_by(queue, auto_ack, "mqscope")
    }

    /// `basic.get` by the consumer `user`: take the next ready message. With `auto_ack` it
    /// is gone; otherwise it waits for [`ack`](Self::ack) or [`nack`](Self::nack) under the
    /// returned tag. Live tails see the delivery, as RabbitMQ's firehose reports one.
    pub fn get_by(
        &self,
        queue: &str,
        auto_ack: bool,
        user: &str,
    ) -> Result<Option<Delivery>, BrokerError> {
        let now = self.clock.now_ms();
        let mut st = self.lock();
        self.expire_head_of(&mut st, queue, now)?;
        let q = st.queue_mut(queue)?;
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
        if self.tapped() {
            let delivery = crate::model::Delivery {
                queue: queue.to_string(),
                at: DateTime::from_timestamp_millis(now).unwrap_or_default(),
                redelivered: message.redelivered,
                user: Some(user.to_string()),
                connection: None,
                channel: None,
                node: Some(self.name().to_string()),
            };
            self.emit(TapEvent {
                source: queue.to_string(),
                message: message.clone(),
                delivery: Some(delivery),
            });
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
        let q = st.queue_mut(queue)?;
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
        self.expire_head_of(&mut st, queue, now)?;
        let q = st.queue(queue)?;
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
        let q = st.queue(queue)?;
        let idx = q
            .ready
            .iter()
            .position(|m| m.body.published_ms >= ms)
            .unwrap_or(q.ready.len());
        Ok((idx, q.ready.len()))
    }

    pub fn queue_len(&self, queue: &str) -> Result<usize, BrokerError> {
        Ok(self.lock().queue(queue)?.ready.len())
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
}

/// Routing keys listed in a `CC` or `BCC` header (an array of strings).
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
