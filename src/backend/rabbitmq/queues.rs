//! Listing and describing queues through the management API: a large vhost's listing is
//! reused while the broker says nothing changed, and a quorum queue's delivery limit is
//! found from its arguments, its policy or the broker's default.

use super::mgmt::MgmtQueue;
use super::{RabbitBackend, amqp_error, short};
use crate::backend::{BackendError, Result};
use crate::model::broker::{BrokerVersion, QuorumReturns};
use crate::model::{DeadLetterTarget, QueueDetail, QueueKind, QueueSummary};
use lapin::Channel;
use lapin::options::QueueDeclareOptions;
use lapin::types::FieldTable as AmqpTable;
use std::time::Duration;

/// A queue listing, the broker's change fingerprint taken just before it, and when that
/// fingerprint was first seen.
pub(super) struct Listing {
    fingerprint: Option<String>,
    since: std::time::Instant,
    taken: std::time::Instant,
    queues: Vec<QueueSummary>,
}

/// Some of a queue's figures (its depth, the policy applied) reach the management API only
/// with the next statistics emission (every 5 s by default), after the change already
/// moved the fingerprint: a listing is reused only if it was taken this long after its
/// fingerprint first appeared.
const LISTING_SETTLE: Duration = Duration::from_secs(12);

/// From this many queues on (one management page), a refresh first asks whether anything
/// changed, and reuses the last listing when nothing did.
const REUSE_LISTING_FROM: usize = 500;

/// A reused listing is still replaced this often: queue states (a quorum leader moving, a
/// queue going down) change no counter.
const LISTING_MAX_AGE: Duration = Duration::from_secs(30);

impl RabbitBackend {
    pub(super) async fn queue_listing(&self) -> Result<Vec<QueueSummary>> {
        // A large vhost is listed again only when the broker saw something change.
        let mut last = self.listing.lock().await;
        let fingerprint = match last.as_ref() {
            Some(_) => self.mgmt.change_fingerprint(self.vhost()).await.ok(),
            None => None,
        };
        if let Some(l) = last.as_ref()
            && fingerprint.is_some()
            && l.fingerprint == fingerprint
            && l.taken.duration_since(l.since) >= LISTING_SETTLE
            && l.taken.elapsed() < LISTING_MAX_AGE
        {
            self.listing_counts[1].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            // Nothing was published or delivered since: the rate now is zero.
            let mut out = l.queues.clone();
            for q in &mut out {
                q.publish_rate = q.publish_rate.map(|_| 0.0);
                q.deliver_rate = q.deliver_rate.map(|_| 0.0);
            }
            return Ok(out);
        }
        // What the listing shows is the state when it starts: its time for the settling.
        let started = std::time::Instant::now();
        // Both asked at once; when both fail, the queue list's error is the one told (the
        // same every time, not whichever answer came first).
        let (queues, topology) = tokio::join!(
            self.mgmt.queues(self.vhost()),
            self.mgmt.topology(self.vhost()),
        );
        let (queues, mut topology) = (queues?, topology?);
        topology.queues = queues.iter().map(|q| q.name.clone()).collect();
        let mut out: Vec<QueueSummary> = queues.iter().map(|q| self.summary(q)).collect();
        crate::model::deadletter::resolve_dead_letters(&mut out, &topology);
        self.listing_counts[0].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Kept with the fingerprint taken before it (none the first time a vhost turns
        // out large: that listing is never reused, the next one is).
        let since = match last.as_ref() {
            Some(l) if fingerprint.is_some() && l.fingerprint == fingerprint => l.since,
            _ => started,
        };
        *last = (out.len() >= REUSE_LISTING_FROM).then(|| Listing {
            fingerprint,
            since,
            taken: started,
            queues: out.clone(),
        });
        Ok(out)
    }

    pub(super) async fn queue_detail(&self, name: &str) -> Result<QueueDetail> {
        // The queue's own page for its numbers and settings; the others' settings only,
        // to know where its dead letters go and which queues dead-letter into it.
        let (q, topology, all) = tokio::join!(
            self.mgmt.queue(self.vhost(), name),
            self.mgmt.topology(self.vhost()),
            self.mgmt.queue_settings(self.vhost()),
        );
        // In this order when more than one failed: the queue's own error says most.
        let (q, mut topology, all) = (q?, topology?, all?);
        let mut list: Vec<QueueSummary> = all
            .iter()
            .filter(|other| other.name != name)
            .map(|other| self.summary(other))
            .collect();
        list.push(self.summary(&q));
        topology.queues = list.iter().map(|s| s.name.clone()).collect();
        crate::model::deadletter::resolve_dead_letters(&mut list, &topology);
        let Some(summary) = list.pop() else {
            return Err(BackendError::QueueNotFound(name.to_string()));
        };
        let bindings = topology
            .bindings
            .iter()
            .filter(|b| b.destination == name)
            .map(|b| format!("{} -> {} ({})", b.source, b.destination, b.routing_key))
            .collect();
        let version = self.broker_version().await.ok();
        let peek_rule = match (self.delivery_limit(&q).await, &version) {
            (Ok(Some(limit)), Some(v)) => Some(format!(
                "delivery limit {limit}: {}",
                v.quorum_returns().rule(v, Some(limit))
            )),
            _ => None,
        };
        Ok(QueueDetail {
            bindings,
            consumer_details: q.consumers(),
            state: q.state(),
            broker: version.map(|v| v.label()),
            peek_rule,
            ..QueueDetail::new(summary)
        })
    }

    /// Exact ready count now (the management API lags by its stats interval).
    pub(super) async fn ready_count(&self, ch: &Channel, queue: &str) -> Result<u64> {
        let opts = QueueDeclareOptions {
            passive: true,
            ..QueueDeclareOptions::default()
        };
        match ch
            .queue_declare(short(queue)?, opts, AmqpTable::default())
            .await
        {
            Ok(q) => Ok(u64::from(q.message_count())),
            Err(e) if e.to_string().contains("NOT_FOUND") || e.to_string().contains("no queue") => {
                Err(BackendError::QueueNotFound(queue.to_string()))
            }
            Err(e) => Err(amqp_error(&self.shown, self.vhost(), &e)),
        }
    }

    /// The broker's product and version, asked once per backend.
    pub async fn broker_version(&self) -> Result<BrokerVersion> {
        self.version
            .get_or_try_init(|| async {
                let o = self.mgmt.overview().await?;
                Ok(BrokerVersion::new(
                    o.product_name.as_deref().unwrap_or("RabbitMQ"),
                    o.product_version.as_deref().unwrap_or(&o.rabbitmq_version),
                ))
            })
            .await
            .cloned()
    }

    /// What a quorum queue with `limit` costs a peek on this broker, in a sentence, and
    /// whether the peek leaves delivery counts alone.
    pub(super) async fn quorum_rule(&self, limit: u64) -> Result<(bool, String)> {
        let v = self.broker_version().await?;
        let returns = v.quorum_returns();
        Ok((returns.peek_is_safe(), returns.rule(&v, Some(limit))))
    }

    /// The delivery limit a quorum queue enforces: its argument or policy, or RabbitMQ
    /// 4's default of 20 when neither sets one.
    pub(super) async fn delivery_limit(&self, q: &MgmtQueue) -> Result<Option<u64>> {
        if q.kind() != "quorum" {
            return Ok(None);
        }
        if let Some(limit) = q.setting_u64("delivery-limit") {
            // -1 (or anything negative) means unlimited on RabbitMQ 4.
            return Ok(Some(limit));
        }
        let unlimited_negative = q
            .setting("delivery-limit")
            .and_then(|v| v.as_i64())
            .is_some_and(|v| v < 0);
        if unlimited_negative {
            return Ok(None);
        }
        let default = match self.broker_version().await?.quorum_returns() {
            QuorumReturns::Every { default_limit } => default_limit,
            QuorumReturns::OnlyFailed => Some(20),
        };
        Ok(default)
    }

    fn summary(&self, q: &MgmtQueue) -> QueueSummary {
        let kind = if q.kind() == "stream" {
            QueueKind::Stream
        } else {
            QueueKind::Queue
        };
        let mut s = QueueSummary::new(&q.name, kind, q.kind());
        s.vhost = Some(q.vhost.clone());
        s.messages = q.messages;
        s.ready = q.messages_ready;
        s.unacked = q.messages_unacknowledged;
        s.consumers = q.consumers;
        let stats = q.message_stats.as_ref();
        s.publish_rate = Some(
            stats
                .and_then(|m| m.publish_details.as_ref())
                .map(|r| r.rate)
                .unwrap_or(0.0),
        );
        s.deliver_rate = Some(
            stats
                .and_then(|m| m.deliver_get_details.as_ref())
                .map(|r| r.rate)
                .unwrap_or(0.0),
        );
        s.ack_rate = Some(
            stats
                .and_then(|m| m.ack_details.as_ref())
                .map(|r| r.rate)
                .unwrap_or(0.0),
        );
        s.policy = q.policy.clone();
        s.arguments = q.arguments.clone();
        s.delivery_limit = q.setting_u64("delivery-limit");
        s.message_ttl_ms = q.setting_u64("message-ttl");
        s.max_length = q.setting_u64("max-length");
        if let Some(dlx) = q.setting_str("dead-letter-exchange") {
            s.dead_letter = Some(DeadLetterTarget {
                exchange: dlx,
                routing_key: q.setting_str("dead-letter-routing-key"),
            });
        }
        s
    }
}
