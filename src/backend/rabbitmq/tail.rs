//! Live tails: copies of what exchanges route (or, with tracing on, the firehose's view of
//! every publish and delivery) through a tap queue of mqscope's own, so real consumers
//! miss nothing.

use super::convert::to_message;
use super::firehose::{FIREHOSE, Notice, OWN_LOOKUP_EVERY, OwnReads, decode};
use super::{RabbitBackend, amqp_error, short};
use crate::backend::{BackendError, LiveTail, Result, Tail, TailEvent, TailFilter};
use crate::model::Message;
use crate::model::topology::ExchangeKind;
use async_trait::async_trait;
use futures::StreamExt;
use lapin::options::{
    BasicConsumeOptions, QueueDeclareOptions, QueueDeleteOptions, QueuePurgeOptions,
};
use lapin::types::{AMQPValue, FieldTable as AmqpTable};

/// What makes two copies of a message the same one: where it was published and all of it.
fn copy_key(m: &Message) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.exchange.hash(&mut h);
    m.routing_key.hash(&mut h);
    m.payload.hash(&mut h);
    format!("{:?}", m.headers).hash(&mut h);
    h.finish()
}

/// The last few thousand keys seen, oldest forgotten first, each as often as inserted. A
/// key is looked up right after it was inserted, so the scan starts at the newest.
#[derive(Default)]
struct RecentSet(std::collections::VecDeque<u64>);

impl RecentSet {
    const CAPACITY: usize = 4_096;

    fn insert(&mut self, key: u64) {
        if self.0.len() == Self::CAPACITY {
            self.0.pop_front();
        }
        self.0.push_back(key);
    }

    /// True (and forgotten once) if `key` is here.
    fn remove(&mut self, key: &u64) -> bool {
        match self.0.iter().rposition(|k| k == key) {
            Some(i) => {
                self.0.remove(i);
                true
            }
            None => false,
        }
    }
}

/// Messages a tap queue may hold before the oldest are dropped: if mqscope falls behind,
/// the broker sheds the copies, not the real traffic.
const TAP_MAX_LENGTH: i64 = 10_000;

/// Queue arguments from (name, value) pairs.
fn table<const N: usize>(pairs: [(&str, AMQPValue); N]) -> AmqpTable {
    let mut t = AmqpTable::default();
    for (k, v) in pairs {
        t.insert(k.into(), v);
    }
    t
}

/// How often the messages the broker dropped from a full tap are counted (and purged).
const SPILL_COUNT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// What the spill holds between counts at most (beyond it the count is a lower bound).
const SPILL_MAX_LENGTH: i64 = 100_000;
const SPILL_MAX_BYTES: i64 = 64 << 20;

/// How long a tap queue without a consumer lives (one whose set-up failed halfway).
const TAP_EXPIRES_MS: i32 = 60_000;

#[async_trait]
impl LiveTail for RabbitBackend {
    /// Follow exchanges through a server-named, exclusive, auto-delete queue: it receives
    /// copies, so real consumers see every message as before, and the broker deletes it
    /// when the tail stops or mqscope dies. With tracing on in the vhost, the queue is
    /// bound to the firehose instead, which sees every publish whatever its routing key
    /// (unroutable ones and the default exchange's included), and, when asked, every
    /// delivery to a consumer; mqscope never turns tracing on itself, since it costs the
    /// broker on every message.
    async fn tail(&self, filter: &TailFilter) -> Result<Tail> {
        let (topology, tracing) = tokio::try_join!(
            self.mgmt.topology(self.vhost()),
            self.mgmt.tracing(self.vhost())
        )?;
        // The default exchange: "" or its alias.
        let wanted: Vec<String> = filter
            .sources
            .iter()
            .map(|s| {
                if s == "amq.default" {
                    String::new()
                } else {
                    s.clone()
                }
            })
            .collect();
        // Whoever names the firehose itself wants its raw notifications.
        let tracing = tracing && !wanted.iter().any(|x| x == FIREHOSE);
        let vhost = self.vhost();
        let mut notes = Vec::new();
        if !tracing && wanted.iter().any(String::is_empty) {
            return Err(BackendError::InvalidArgument(format!(
                "the default exchange cannot be followed by binding a queue to it; turn on tracing for vhost \"{vhost}\" (rabbitmqctl trace_on -p '{vhost}', or the management UI's vhost page) and mqscope follows it through the firehose ({FIREHOSE})"
            )));
        }
        // (exchange, routing key) pairs to bind the tap with. The exchanges themselves
        // too: dead-lettering is not a publish, the firehose never sees it. Following
        // every exchange with tracing on, only those some queue dead-letters to: the
        // firehose has every publish already, and a second copy of each through its
        // exchange would double what the broker delivers to the tap (then, or should
        // the queues' settings not be readable, all of them as without tracing).
        let dead_letter_exchanges = if tracing && wanted.is_empty() {
            self.mgmt.queue_settings(vhost).await.ok().map(|queues| {
                queues
                    .iter()
                    .filter_map(|q| q.setting_str("dead-letter-exchange"))
                    .collect::<std::collections::HashSet<String>>()
            })
        } else {
            None
        };
        let mut bindings: Vec<(String, String)> = Vec::new();
        let sources: Vec<String> = if wanted.is_empty() {
            topology
                .exchanges
                .iter()
                .map(|e| e.name.clone())
                .filter(|n| !n.starts_with("amq."))
                .filter(|n| dead_letter_exchanges.as_ref().is_none_or(|d| d.contains(n)))
                .collect()
        } else {
            wanted.iter().filter(|x| !x.is_empty()).cloned().collect()
        };
        for ex in &sources {
            let kind = topology.exchange(ex).map(|e| e.kind);
            match kind {
                Some(ExchangeKind::Fanout) | Some(ExchangeKind::Headers) => {
                    bindings.push((ex.clone(), String::new()));
                }
                Some(ExchangeKind::Direct) => {
                    // A direct exchange has no wildcard: follow every key it is bound with.
                    let mut keys: Vec<String> = topology
                        .bindings
                        .iter()
                        .filter(|b| b.source == *ex)
                        .map(|b| b.routing_key.clone())
                        .collect();
                    keys.sort();
                    keys.dedup();
                    if !tracing && !filter.sources.is_empty() {
                        notes.push(format!(
                            "direct exchange \"{ex}\": following the {} routing key(s) it is bound with now; messages published with other keys (unroutable ones) are seen only with tracing on (rabbitmqctl trace_on -p '{vhost}')",
                            keys.len()
                        ));
                    }
                    bindings.extend(keys.into_iter().map(|k| (ex.clone(), k)));
                }
                Some(ExchangeKind::Topic) | None => {
                    bindings.push((ex.clone(), "#".into()));
                }
            }
        }
        if tracing {
            if wanted.is_empty() {
                bindings.push((FIREHOSE.into(), "publish.#".into()));
            } else {
                for x in &wanted {
                    bindings.push((FIREHOSE.into(), format!("publish.{x}")));
                }
            }
            notes.push(format!(
                "tracing is on in vhost \"{vhost}\": publishes come through the firehose ({FIREHOSE}), which sees every one whatever its routing key, unroutable ones included; dead letters through the exchanges they are dead-lettered to"
            ));
            if filter.deliveries {
                bindings.push((FIREHOSE.into(), "deliver.#".into()));
            }
        } else if filter.deliveries {
            notes.push(format!(
                "deliveries to consumers are reported only with tracing on in vhost \"{vhost}\" (rabbitmqctl trace_on -p '{vhost}')"
            ));
        }
        let deliveries = tracing && filter.deliveries;
        // With named sources, the firehose's keys are matched as topic patterns: an
        // exchange named with `*` or `#` words would catch others, so filter on the name.
        let only: Option<std::collections::HashSet<String>> =
            (tracing && !wanted.is_empty()).then(|| wanted.iter().cloned().collect());
        let ch = self.channel().await?;
        let fail = |e: lapin::Error| amqp_error(&self.shown, self.vhost(), &e);
        if tracing {
            // Binding to the firehose cannot fail for a missing exchange: ask the broker.
            for x in wanted.iter().filter(|x| !x.is_empty()) {
                let passive = lapin::options::ExchangeDeclareOptions {
                    passive: true,
                    ..Default::default()
                };
                ch.exchange_declare(
                    short(x)?,
                    lapin::ExchangeKind::Topic,
                    passive,
                    AmqpTable::default(),
                )
                .await
                .map_err(|e| self.exchange_error(x, &e))?;
            }
        }
        // Where the broker puts what a full tap drops (dead-lettered with reason maxlen):
        // a queue of the tail's own, declared once the tap is consumed (see below).
        let spill_name = self.consumer_tag("tail-spill");
        let args = table([
            ("x-max-length", AMQPValue::LongLongInt(TAP_MAX_LENGTH)),
            ("x-dead-letter-exchange", AMQPValue::LongString("".into())),
            (
                "x-dead-letter-routing-key",
                AMQPValue::LongString(spill_name.as_str().into()),
            ),
            // Should a bind below fail, the tap never gets a consumer, and auto-delete
            // would never fire on the shared connection: it expires instead.
            ("x-expires", AMQPValue::LongInt(TAP_EXPIRES_MS)),
        ]);
        let opts = QueueDeclareOptions {
            exclusive: true,
            auto_delete: true,
            ..QueueDeclareOptions::default()
        };
        let tap = ch
            .queue_declare("".into(), opts, args)
            .await
            .map_err(fail)?;
        let tap_name = tap.name().as_str().to_string();
        for (ex, key) in &bindings {
            ch.queue_bind(
                short(&tap_name)?,
                short(ex)?,
                short(key)?,
                lapin::options::QueueBindOptions::default(),
                AmqpTable::default(),
            )
            .await
            .map_err(|e| {
                if ex == FIREHOSE && e.to_string().contains("ACCESS_REFUSED") {
                    BackendError::Auth {
                        target: self.shown.clone(),
                        reason: format!(
                            "tracing is on in vhost \"{}\", but this user may not read {FIREHOSE}: grant it read permission there, or turn tracing off to tail through exchange bindings",
                            self.vhost()
                        ),
                    }
                } else {
                    self.exchange_error(ex, &e)
                }
            })?;
        }
        let opts = BasicConsumeOptions {
            no_ack: true,
            exclusive: true,
            ..BasicConsumeOptions::default()
        };
        let mut consumer = ch
            .basic_consume(
                short(&tap_name)?,
                short(&self.consumer_tag("tail"))?,
                opts,
                AmqpTable::default(),
            )
            .await
            .map_err(fail)?;
        // The spill is only counted and purged, never consumed: with tracing on, a
        // delivery from it would be traced into the tap again. It lives as long as the
        // tail (deleted when it stops; exclusive, so with the connection at the latest).
        // Should it fail, closing the channel cancels the tap's consumer, which deletes
        // the tap.
        let args = table([
            ("x-max-length", AMQPValue::LongLongInt(SPILL_MAX_LENGTH)),
            (
                "x-max-length-bytes",
                AMQPValue::LongLongInt(SPILL_MAX_BYTES),
            ),
        ]);
        let opts = QueueDeclareOptions {
            exclusive: true,
            ..QueueDeclareOptions::default()
        };
        if let Err(e) = ch.queue_declare(short(&spill_name)?, opts, args).await {
            let _ = ch.close(200, "tail failed".into()).await;
            return Err(fail(e));
        }
        let (tx, rx) = tokio::sync::mpsc::channel(1024);
        let shown = self.shown.clone();
        let mut own = OwnReads::new(
            self.mgmt.clone(),
            self.vhost(),
            &self.client_name,
            &tap_name,
            deliveries,
        );
        tokio::spawn(async move {
            let mut n = 0u64;
            let mut shown_publishes = RecentSet::default();
            let mut lookup = tokio::time::interval(OWN_LOOKUP_EVERY);
            // What the broker dropped from the full tap: counted by purging the spill.
            let mut count_spill = tokio::time::interval(SPILL_COUNT_EVERY);
            // With tracing on, a publish to an exchange the tap is bound to reaches it twice
            // (the firehose's copy and the exchange's, one shown): losing one copy loses
            // nothing, so the count is of copies, at most that many messages.
            let twice = if tracing {
                "; with tracing on a publish to an exchange the tap is bound to reaches it twice (the firehose's copy and the exchange's), so at most that many messages were missed"
            } else {
                ""
            };
            loop {
                tokio::select! {
                    _ = tx.closed() => break,
                    _ = count_spill.tick() => {
                        let purged = ch
                            .queue_purge(spill_name.as_str().into(), QueuePurgeOptions::default())
                            .await;
                        if let Ok(n) = purged
                            && n > 0
                        {
                            let full = if u64::from(n) >= SPILL_MAX_LENGTH as u64 { "at least " } else { "" };
                            let behind = BackendError::Behind {
                                skipped: u64::from(n),
                                why: format!("{full}that many copies, the oldest, were dropped by the broker from the tap queue, which holds {TAP_MAX_LENGTH} at most{twice}"),
                            };
                            if tx.send(Err(behind)).await.is_err() {
                                break;
                            }
                        }
                    }
                    _ = lookup.tick(), if own.looking() => {
                        let (events, warning) = own.look_up().await;
                        let warning = warning.map(|w| Err(BackendError::Broker(w)));
                        for e in warning.into_iter().chain(events.into_iter().map(Ok)) {
                            if tx.send(e).await.is_err() {
                                break;
                            }
                        }
                    }
                    next = consumer.next() => match next {
                        Some(Ok(d)) => {
                            let m = if tracing && d.exchange.as_str() == FIREHOSE {
                                match decode(n, &d, &tap_name, chrono::Utc::now()) {
                                    Some(Notice::Publish { message: m, tapped }) if only.as_ref().is_none_or(|o| m.exchange.as_ref().is_some_and(|x| o.contains(x))) => {
                                        // The broker routed a copy to the tap through its
                                        // bindings too: the same publish, arriving right
                                        // after this, to be dropped then.
                                        if tapped {
                                            shown_publishes.insert(copy_key(&m));
                                        }
                                        m
                                    }
                                    Some(Notice::Deliver(dv)) => {
                                        n += 1;
                                        for e in own.offer(dv) {
                                            if tx.send(Ok(e)).await.is_err() {
                                                break;
                                            }
                                        }
                                        continue;
                                    }
                                    _ => continue,
                                }
                            } else {
                                let mut m = to_message(d.exchange.as_str(), n, &d);
                                m.queue = d.exchange.as_str().to_string();
                                m.seen = Some(chrono::Utc::now());
                                // A copy through the bindings is shown unless the
                                // firehose showed its publish just before (the broker
                                // taps a publish before it routes it, from the same
                                // process, so the firehose copy comes first). Shown, then:
                                // dead letters (dead-lettering is not a publish), copies
                                // from exchanges the tail does not follow (through an
                                // exchange-to-exchange binding or as an alternate), and
                                // every publish once tracing is turned off mid-tail.
                                if tracing && shown_publishes.remove(&copy_key(&m)) {
                                    continue;
                                }
                                m
                            };
                            n += 1;
                            if tx.send(Ok(TailEvent::Message(m))).await.is_err() {
                                break;
                            }
                        }
                        Some(Err(e)) => {
                            let _ = tx.send(Err(BackendError::Broker(format!("live tail on {shown} stopped: {e}")))).await;
                            break;
                        }
                        None => break,
                    }
                }
            }
            // Closing the channel deletes the auto-delete tap queue.
            let _ = ch
                .queue_delete(spill_name.as_str().into(), QueueDeleteOptions::default())
                .await;
            let _ = ch.close(200, "tail done".into()).await;
        });
        Ok(Tail { events: rx, notes })
    }
}
