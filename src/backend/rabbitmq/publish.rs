//! Publishing to RabbitMQ with publisher confirms, and one true outcome per message even
//! when one of them makes the broker close the channel.
//!
//! A publish the broker refuses outright (an exchange that does not exist, an internal
//! exchange, no write permission) closes the whole AMQP channel, and lapin then fails every
//! confirm still out on that channel with the same error: the message before it, which the
//! broker had routed, and the ones after it, which the broker threw away unread, all look
//! alike. So: a named exchange is first looked up with a passive declare on a channel of
//! its own (a missing one then fails its own messages and closes nothing), and when the
//! channel closes anyway, the messages still out are told apart by their place in the order
//! sent: those after the one the broker names never arrived and are sent again on a new
//! channel; those before it reached the broker unconfirmed, an outcome nobody can know.

use super::{RabbitBackend, amqp_error, convert, permission_refused, short};
use crate::backend::{BackendError, Destination, PendingConfirm, Publish, PublishReceipt, Result};
use crate::model::Message;
use async_trait::async_trait;
use lapin::options::{BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions};
use lapin::types::FieldTable as AmqpTable;
use lapin::{Channel, Confirmation, ErrorKind};
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// Confirms awaited together: enough to keep the pipe full, few enough to bound memory.
const PUBLISH_WINDOW: usize = 4_096;

/// The kept confirm-mode channel, with its ledger.
pub(super) struct Publishing {
    ch: Channel,
    ledger: Arc<Mutex<Ledger>>,
}

/// What publishing on one channel has learnt: the named exchanges seen to exist, and the
/// messages sent whose confirm is still out, in the order sent, with their exchange.
#[derive(Debug, Default)]
struct Ledger {
    known: HashSet<String>,
    next: u64,
    out: BTreeMap<u64, String>,
    /// Set by the first confirm that fails with the channel's closing error.
    closed: Option<Closed>,
}

/// How the broker closed a channel, and which messages it may have closed it over.
#[derive(Debug, Clone)]
struct Closed {
    /// The broker's words (`NOT_FOUND - no exchange 'x' in vhost '/'`), or lapin's error
    /// when the connection went rather than the channel.
    reason: String,
    /// Whether it was the channel (a soft error, which names the message's exchange), not
    /// the connection: only then does the order sent say anything.
    channel: bool,
    /// The first and last outstanding message sent to the exchange the reason names:
    /// the broker closed the channel over one of them.
    culprits: Option<(u64, u64)>,
}

/// Whether the broker's reason is about exchange `x` (RabbitMQ calls the default one
/// `amq.default` in its refusals).
fn names_exchange(reason: &str, x: &str) -> bool {
    let x = if x.is_empty() { "amq.default" } else { x };
    reason.contains(&format!("exchange '{x}' in vhost"))
}

/// What a confirm lost to a closed channel means for one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// The message the broker closed the channel over: refused, not delivered.
    Refused,
    /// Sent before it: the broker had it, and closed the channel before confirming it.
    Unknown,
    /// Sent after it: the broker discards everything on a closing channel.
    NotSent,
}

impl Closed {
    fn new(e: &lapin::Error, out: &BTreeMap<u64, String>) -> Self {
        let (reason, channel) = match e.kind() {
            ErrorKind::ProtocolError(amqp) if e.is_amqp_soft_error() => {
                (amqp.get_message().to_string(), true)
            }
            _ => (e.to_string(), false),
        };
        // Nothing but publishing happens on this channel, so the broker closed it over one
        // of the messages still out: one sent to the exchange it names, if any is.
        let named: Vec<u64> = out
            .iter()
            .filter(|(_, x)| names_exchange(&reason, x))
            .map(|(seq, _)| *seq)
            .collect();
        let candidates: Vec<u64> = if named.is_empty() {
            out.keys().copied().collect()
        } else {
            named
        };
        let culprits = match (channel, candidates.first(), candidates.last()) {
            (true, Some(first), Some(last)) => Some((*first, *last)),
            _ => None,
        };
        Self {
            reason,
            channel,
            culprits,
        }
    }

    /// Which one message `seq` is, by its place among the messages sent on the channel.
    fn lost(&self, seq: u64) -> Lost {
        match self.culprits {
            Some((c, last)) if c == last && seq == c => Lost::Refused,
            // A message sent after the last one that could have closed the channel was
            // dropped by the broker unread, even if it left here before the close arrived.
            Some((_, last)) if seq > last => Lost::NotSent,
            _ => Lost::Unknown,
        }
    }

    fn error(&self, seq: u64, exchange: &str, shown: &str) -> BackendError {
        let reason = &self.reason;
        if !self.channel {
            return BackendError::Unconfirmed(format!(
                "the connection failed before the broker confirmed it ({reason}); it may have been delivered"
            ));
        }
        match self.lost(seq) {
            Lost::Refused => refusal(shown, exchange, reason),
            Lost::NotSent => BackendError::NotSent(format!(
                "the broker closed the channel over an earlier message ({reason})"
            )),
            Lost::Unknown => BackendError::Unconfirmed(format!(
                "the broker closed the channel ({reason}) before confirming it; it may have been delivered"
            )),
        }
    }
}

/// The broker's refusal of the message it closed the channel over.
fn refusal(shown: &str, exchange: &str, reason: &str) -> BackendError {
    if reason.starts_with("NOT_FOUND") {
        BackendError::ExchangeNotFound(exchange.to_string())
    } else if let Some(refused) = permission_refused(shown, reason) {
        refused
    } else {
        BackendError::Refused(format!("the broker closed the channel over it: {reason}"))
    }
}

fn lock(ledger: &Mutex<Ledger>) -> MutexGuard<'_, Ledger> {
    // A panic while holding it leaves only bookkeeping behind, still worth reading.
    ledger
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Why lapin would not send a message: a channel already closed means it never left.
fn unsent(e: &lapin::Error, ledger: &Ledger) -> BackendError {
    let why = ledger
        .closed
        .as_ref()
        .map_or_else(|| e.to_string(), |c| c.reason.clone());
    match e.kind() {
        ErrorKind::InvalidChannelState(..)
        | ErrorKind::InvalidChannel(_)
        | ErrorKind::InvalidConnectionState(_) => {
            BackendError::NotSent(format!("its channel had closed ({why})"))
        }
        ErrorKind::ProtocolError(_) if e.is_amqp_soft_error() => {
            BackendError::NotSent(format!("its channel had closed ({why})"))
        }
        _ => BackendError::Unconfirmed(format!(
            "sending it failed ({e}); it may have reached the broker"
        )),
    }
}

/// What a publisher confirm says about one message.
fn outcome(exchange: &str, routing_key: &str, c: Confirmation) -> Result<PublishReceipt> {
    match c {
        Confirmation::Ack(None) => Ok(PublishReceipt {
            // AMQP does not say which queues took it; the default exchange names one.
            routed_to: if exchange.is_empty() {
                vec![routing_key.to_string()]
            } else {
                Vec::new()
            },
            ..PublishReceipt::default()
        }),
        Confirmation::Ack(Some(_)) => Err(BackendError::Unroutable(format!(
            "no queue is bound to exchange \"{exchange}\" for routing key \"{routing_key}\""
        ))),
        Confirmation::Nack(_) => Err(BackendError::Broker(format!(
            "the broker refused the message (nack) on exchange \"{exchange}\""
        ))),
        Confirmation::NotRequested => Err(BackendError::Broker(
            "publisher confirms were not enabled".into(),
        )),
    }
}

impl RabbitBackend {
    /// The kept confirm-mode channel, opened on first use or after it closed.
    async fn publish_channel(&self) -> Result<(Channel, Arc<Mutex<Ledger>>)> {
        let mut guard = self.publish_ch.lock().await;
        if let Some(p) = guard.as_ref()
            && p.ch.status().connected()
        {
            return Ok((p.ch.clone(), Arc::clone(&p.ledger)));
        }
        let ch = self.channel().await?;
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .map_err(|e| amqp_error(&self.shown, self.vhost(), &e))?;
        let ledger = Arc::new(Mutex::new(Ledger::default()));
        *guard = Some(Publishing {
            ch: ch.clone(),
            ledger: Arc::clone(&ledger),
        });
        Ok((ch, ledger))
    }

    /// The named exchanges among `items` that do not exist, each looked up once per
    /// publishing channel with a passive declare on a channel of its own, which the broker
    /// closes instead of the publishing one. A lookup that fails otherwise (the connection)
    /// decides nothing: the publish then says what is wrong.
    async fn missing_exchanges(
        &self,
        items: &[&(Destination, Message)],
        ledger: &Mutex<Ledger>,
    ) -> HashSet<String> {
        let mut missing = HashSet::new();
        let mut wanted: Vec<&str> = Vec::new();
        {
            let l = lock(ledger);
            for (dest, _) in items {
                if let Destination::Exchange { exchange, .. } = dest
                    && !exchange.is_empty()
                    && !l.known.contains(exchange)
                    && !wanted.contains(&exchange.as_str())
                {
                    wanted.push(exchange);
                }
            }
        }
        let mut scratch: Option<Channel> = None;
        for x in wanted {
            let Ok(name) = short(x) else { continue };
            if scratch.as_ref().is_none_or(|c| !c.status().connected()) {
                scratch = self.channel().await.ok();
            }
            let Some(ch) = scratch.as_ref() else { break };
            let passive = ExchangeDeclareOptions {
                passive: true,
                ..Default::default()
            };
            match ch
                .exchange_declare(
                    name,
                    lapin::ExchangeKind::Direct,
                    passive,
                    AmqpTable::default(),
                )
                .await
            {
                Ok(()) => {
                    lock(ledger).known.insert(x.to_string());
                }
                Err(e) if e.to_string().contains("NOT_FOUND") => {
                    missing.insert(x.to_string());
                }
                Err(_) => {}
            }
        }
        if let Some(ch) = scratch
            && ch.status().connected()
        {
            let _ = ch.close(200, "exchanges looked up".into()).await;
        }
        missing
    }

    /// Send on the kept confirm channel, in order; each future waits for its confirm and
    /// says what became of its own message (see the module's note).
    async fn send(&self, items: &[&(Destination, Message)]) -> Vec<PendingConfirm> {
        let failed = |e: BackendError| Box::pin(std::future::ready(Err(e))) as PendingConfirm;
        let (ch, ledger) = match self.publish_channel().await {
            Ok(c) => c,
            Err(e) => return items.iter().map(|_| failed(e.clone())).collect(),
        };
        let missing = self.missing_exchanges(items, &ledger).await;
        let mut pending: Vec<PendingConfirm> = Vec::with_capacity(items.len());
        for (dest, msg) in items {
            let Destination::Exchange {
                exchange,
                routing_key,
            } = dest
            else {
                pending.push(failed(BackendError::InvalidArgument(
                    "RabbitMQ publishes to an exchange with a routing key, not to a topic".into(),
                )));
                continue;
            };
            if missing.contains(exchange) {
                pending.push(failed(BackendError::ExchangeNotFound(exchange.clone())));
                continue;
            }
            let args = convert::properties_to_amqp(msg)
                .map_err(|e| BackendError::InvalidArgument(e.to_string()))
                .and_then(|props| Ok((short(exchange)?, short(routing_key)?, props)));
            let (x, key, props) = match args {
                Ok(a) => a,
                Err(e) => {
                    pending.push(failed(e));
                    continue;
                }
            };
            let seq = {
                let mut l = lock(&ledger);
                let seq = l.next;
                l.next += 1;
                l.out.insert(seq, exchange.clone());
                seq
            };
            let opts = BasicPublishOptions {
                mandatory: true,
                ..BasicPublishOptions::default()
            };
            match ch.basic_publish(x, key, opts, &msg.payload, props).await {
                Ok(confirm) => {
                    let (exchange, key) = (exchange.clone(), routing_key.clone());
                    let shown = self.shown.clone();
                    let ledger = Arc::clone(&ledger);
                    pending.push(Box::pin(async move {
                        let c = confirm.await;
                        let mut l = lock(&ledger);
                        match c {
                            Ok(c) => {
                                l.out.remove(&seq);
                                outcome(&exchange, &key, c)
                            }
                            Err(e) => {
                                // The first to hear of the close decides for all: the
                                // messages then out are still in the ledger.
                                let closed = match &l.closed {
                                    Some(c) => c.clone(),
                                    None => {
                                        let c = Closed::new(&e, &l.out);
                                        l.closed = Some(c.clone());
                                        c
                                    }
                                };
                                l.out.remove(&seq);
                                Err(closed.error(seq, &exchange, &shown))
                            }
                        }
                    }));
                }
                Err(e) => {
                    let mut l = lock(&ledger);
                    l.out.remove(&seq);
                    pending.push(failed(unsent(&e, &l)));
                }
            }
        }
        pending
    }
}

#[async_trait]
impl Publish for RabbitBackend {
    async fn publish(&self, dest: &Destination, msg: &Message) -> Result<PublishReceipt> {
        let mut results = self.publish_batch(&[(dest.clone(), msg.clone())]).await;
        results
            .pop()
            .unwrap_or_else(|| Err(BackendError::Broker("nothing was published".into())))
    }

    /// Send a window of messages, then wait for all their confirms; every message is
    /// mandatory, so an unroutable one comes back as an error instead of vanishing. When
    /// one message closes the channel, the ones after it, which the broker dropped unread,
    /// go again on a new channel: a file restored carries on past a bad line.
    async fn publish_batch(&self, items: &[(Destination, Message)]) -> Vec<Result<PublishReceipt>> {
        let mut out: Vec<Option<Result<PublishReceipt>>> = vec![None; items.len()];
        for start in (0..items.len()).step_by(PUBLISH_WINDOW) {
            let mut todo: Vec<usize> = (start..items.len().min(start + PUBLISH_WINDOW)).collect();
            while !todo.is_empty() {
                let batch: Vec<&(Destination, Message)> = todo.iter().map(|&i| &items[i]).collect();
                let mut again = Vec::new();
                for (&i, confirm) in todo.iter().zip(self.send(&batch).await) {
                    match confirm.await {
                        Err(BackendError::NotSent(why)) => again.push((i, why)),
                        r => out[i] = Some(r),
                    }
                }
                // Each round settles the message that closed the channel, at least; one
                // that settles nothing (the channel closes before anything goes) stops.
                if again.len() == todo.len() {
                    for (i, why) in again {
                        out[i] = Some(Err(BackendError::NotSent(why)));
                    }
                    break;
                }
                todo = again.into_iter().map(|(i, _)| i).collect();
            }
        }
        out.into_iter()
            .map(|r| r.unwrap_or_else(|| Err(BackendError::Broker("nothing was published".into()))))
            .collect()
    }

    /// Send on the kept confirm channel, in order; each future waits for its confirm. A
    /// message the broker dropped because an earlier one closed the channel comes back as
    /// `NotSent`, for the caller to send again.
    async fn send_batch(&self, items: &[(Destination, Message)]) -> Vec<PendingConfirm> {
        let refs: Vec<&(Destination, Message)> = items.iter().collect();
        self.send(&refs).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn out(exchanges: &[&str]) -> BTreeMap<u64, String> {
        exchanges
            .iter()
            .enumerate()
            .map(|(i, x)| (i as u64, x.to_string()))
            .collect()
    }

    fn closed_over(reason: &str, out: &BTreeMap<u64, String>) -> Closed {
        let amqp = lapin::protocol::AMQPError::new(
            lapin::protocol::AMQPErrorKind::Soft(lapin::protocol::AMQPSoftError::NOTFOUND),
            reason.into(),
        );
        Closed::new(&lapin::Error::from(ErrorKind::ProtocolError(amqp)), out)
    }

    #[test]
    fn the_message_that_closed_the_channel_is_told_from_those_around_it() {
        let sent = out(&["", "nosuchex", ""]);
        let c = closed_over("NOT_FOUND - no exchange 'nosuchex' in vhost '/'", &sent);
        assert_eq!(
            (c.lost(0), c.lost(1), c.lost(2)),
            (Lost::Unknown, Lost::Refused, Lost::NotSent)
        );
        // Sent after the close was decided: dropped too.
        assert_eq!(c.lost(7), Lost::NotSent);
        assert_eq!(
            c.error(1, "nosuchex", "t"),
            BackendError::ExchangeNotFound("nosuchex".into())
        );
        assert!(matches!(c.error(0, "", "t"), BackendError::Unconfirmed(_)));
        assert!(matches!(c.error(2, "", "t"), BackendError::NotSent(_)));
    }

    #[test]
    fn two_messages_that_could_have_closed_it_leave_both_unknown() {
        // The exchange was deleted between two publishes to it: either closed the channel.
        let sent = out(&["gone", "", "gone", ""]);
        let c = closed_over("NOT_FOUND - no exchange 'gone' in vhost '/'", &sent);
        assert_eq!(
            [c.lost(0), c.lost(1), c.lost(2), c.lost(3)],
            [Lost::Unknown, Lost::Unknown, Lost::Unknown, Lost::NotSent]
        );
    }

    #[test]
    fn a_close_that_names_no_exchange_sent_is_over_one_of_those_out() {
        let sent = out(&["a", "b"]);
        let why = "PRECONDITION_FAILED - message size 9 is larger than 8";
        let c = closed_over(why, &sent);
        assert_eq!(
            (c.lost(0), c.lost(1), c.lost(2)),
            (Lost::Unknown, Lost::Unknown, Lost::NotSent)
        );
        // With one message out, it is that one.
        let c = closed_over(why, &out(&["a"]));
        assert!(matches!(c.error(0, "a", "t"), BackendError::Refused(_)));
        // The default exchange is amq.default in the broker's words.
        let c = closed_over(
            "ACCESS_REFUSED - access to exchange 'amq.default' in vhost '/' refused for user 'u'",
            &out(&["x", "", "y"]),
        );
        assert_eq!(
            (c.lost(0), c.lost(1), c.lost(2)),
            (Lost::Unknown, Lost::Refused, Lost::NotSent)
        );
        assert!(matches!(c.error(1, "", "t"), BackendError::Auth { .. }));
        // And a lost connection says nothing about order at all.
        let io = lapin::Error::from(ErrorKind::IOError(Arc::new(std::io::Error::other("reset"))));
        let c = Closed::new(&io, &sent);
        assert!(matches!(c.error(1, "b", "t"), BackendError::Unconfirmed(_)));
    }
}
