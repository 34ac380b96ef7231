//! Peeking a queue: read the window with a prefetching consumer, then give every message
//! back with one multiple nack, so nothing is lost, reordered or dead-lettered; quorum
//! queues whose returns count towards a delivery limit are refused unless forced.

use super::consumer::{IDLE, gathered};
use super::convert::to_message;
use super::mgmt::MgmtQueue;
use super::{MAX_PEEK_DEPTH, RabbitBackend, amqp_error, short};
use crate::backend::{BackendError, PeekFrom, PeekRequest, PeekSink, Result};
use crate::model::Message;
use lapin::Channel;
use lapin::options::{BasicCancelOptions, BasicNackOptions};
use lapin::types::FieldTable as AmqpTable;

impl RabbitBackend {
    /// Read the first `want` ready messages with a prefetching consumer, handing those in
    /// `window` on as they come, then give every one back with a single multiple nack: order
    /// is kept, nothing is acked, nothing is rejected, and no delivery tag is settled twice.
    /// Returns how many were read.
    async fn take_and_return(
        &self,
        ch: &Channel,
        name: &str,
        want: u64,
        window: &mut Window,
        sink: &mut PeekSink<'_>,
    ) -> Result<u64> {
        let (mut consumer, tag) = self
            .peek_consumer(ch, name, want, AmqpTable::default())
            .await?;
        let mut read = 0;
        let mut last_tag = None;
        let mut failure = None;
        while read < want {
            match gathered(&mut consumer, IDLE).await {
                // Converted and handed on as they come: the broker's delivery is the slow
                // part, and this work would otherwise wait until the last message is in.
                Ok(Some(Ok(d))) => {
                    last_tag = Some(d.delivery_tag);
                    let mut m = to_message(name, read, &d);
                    m.delivery_limit = window.shown_limit;
                    read += 1;
                    if window.keeps(&m) && !sink.push(m).await {
                        break; // nobody is reading any more
                    }
                    if window.left == 0 {
                        break; // the page is full (a time window may fill early)
                    }
                }
                Ok(Some(Err(e))) => {
                    failure = Some(amqp_error(&self.shown, self.vhost(), &e));
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        // A fault test holds the peek here, every message read and unacked, while it stops
        // the queue's leader node.
        crate::fault::step("peek.read").await;
        // Stop deliveries first, so returned messages are not handed straight back to us.
        // The channel applies the two in the order sent, so neither waits for the other,
        // and the cancel asks for no answer (nowait): the channel's close, which the caller
        // awaits, is answered only after both were applied. Deliveries still on their way
        // for the cancelled tag are dropped by lapin and returned by that close.
        let cancel = ch.basic_cancel(short(&tag)?, BasicCancelOptions { nowait: true });
        let nack = async {
            match last_tag {
                Some(last) => {
                    let all = BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    };
                    ch.basic_nack(last, all).await
                }
                None => Ok(()),
            }
        };
        let (_, nack) = futures::future::join(cancel, nack).await;
        if let Err(e) = nack {
            // The channel or connection is gone: RabbitMQ itself returns what it had
            // delivered and not seen acked, in order. Say so, at 3 a.m. it matters.
            return Err(BackendError::Broker(format!(
                "the channel to {} closed before the {read} messages read could be handed back; RabbitMQ returns unacknowledged messages to the queue by itself, so none was consumed ({})",
                self.shown,
                amqp_error(&self.shown, self.vhost(), &e)
            )));
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(read),
        }
    }

    pub(super) async fn peek_with(
        &self,
        name: &str,
        req: &PeekRequest,
        sink: &mut PeekSink<'_>,
    ) -> Result<Vec<String>> {
        // The queue's type and settings, and a channel to read it on with the exact ready
        // count, at the same time (a passive declare only reads; nothing is consumed before
        // the checks). The channel is closed whatever happens (the connection is shared),
        // which also returns anything a failed read left unacked.
        let (info, opened) = tokio::join!(self.mgmt.queue(self.vhost(), name), async {
            let ch = self.channel().await?;
            let ready = self.ready_count(&ch, name).await;
            Ok::<_, BackendError>((ch, ready))
        });
        let (ch, ready) = opened?;
        let notes = self.peek_on(&ch, info, ready, name, req, sink).await;
        let _ = ch.close(200, "peek done".into()).await;
        notes
    }

    /// A peek on `ch` (which the caller closes), given the management API's view of the
    /// queue.
    async fn peek_on(
        &self,
        ch: &Channel,
        info: Result<MgmtQueue>,
        ready: Result<u64>,
        name: &str,
        req: &PeekRequest,
        sink: &mut PeekSink<'_>,
    ) -> Result<Vec<String>> {
        let info = info?;
        if info.kind() == "stream" {
            return self.peek_stream(ch, name, req, sink).await;
        }
        let mut notes = Vec::new();
        // The limit a peek's returns count towards: none where returns by nack are free.
        let mut delivery_limit = None;
        let shown_limit = self.delivery_limit(&info).await?;
        if let Some(limit) = shown_limit {
            let (safe, rule) = self.quorum_rule(limit).await?;
            if !safe {
                if !req.force {
                    return Err(BackendError::Refused(format!(
                        "\"{name}\" is a quorum queue with a delivery limit of {limit}: a peek gives back every message it reads, and {rule}; messages that reach it are dead-lettered or dropped. Peek anyway with --force"
                    )));
                }
                notes.push(format!(
                    "forced peek of a quorum queue with delivery limit {limit}: {rule}; each message's count is in its x-delivery-count"
                ));
                delivery_limit = Some(limit);
            }
        }
        if req.partition.is_some() {
            notes.push(format!("\"{name}\" is a queue; the partition was ignored"));
        }
        let ready = ready?;
        let start = match &req.from {
            PeekFrom::Start | PeekFrom::Time(_) => 0,
            PeekFrom::Position(p) => *p,
            PeekFrom::Last => ready.saturating_sub(req.limit as u64),
        };
        if start >= ready || req.limit == 0 {
            return Ok(notes);
        }
        if start >= MAX_PEEK_DEPTH {
            return Err(BackendError::Refused(format!(
                "position {start} is past the first {MAX_PEEK_DEPTH} messages, the deepest a queue can be peeked (AMQP's prefetch limit); a replay or purge reaches every message"
            )));
        }
        let want = match &req.from {
            // Queues have no time index: read from the head and keep the later ones.
            PeekFrom::Time(_) => ready.min(MAX_PEEK_DEPTH),
            _ => (start + req.limit as u64).min(ready),
        };
        let want = if want > MAX_PEEK_DEPTH {
            notes.push(format!(
                "a queue can be peeked {MAX_PEEK_DEPTH} messages deep at most (AMQP's prefetch limit): positions {start} to {} only, of {ready}",
                MAX_PEEK_DEPTH - 1
            ));
            MAX_PEEK_DEPTH
        } else {
            want
        };
        let mut window = Window {
            start,
            since: match &req.from {
                PeekFrom::Time(t) => Some(*t),
                _ => None,
            },
            left: req.limit,
            delivery_limit,
            shown_limit,
            over_limit: 0,
        };
        let read = self
            .take_and_return(ch, name, want, &mut window, sink)
            .await?;
        if let (Some(limit), n @ 1..) = (delivery_limit, window.over_limit) {
            let fate = match info.setting_str("dead-letter-exchange") {
                Some(x) if !x.is_empty() => format!("dead-lettered them through \"{x}\""),
                Some(_) => "dead-lettered them through the default exchange".to_string(),
                None => "dropped them (the queue has no dead-letter exchange)".to_string(),
            };
            notes.push(format!(
                "{n} of the messages read had already been returned {limit} times or more: this peek's return put them over the delivery limit, and RabbitMQ {fate}"
            ));
        }
        if read < want && window.left > 0 && !sink.is_closed() {
            notes.push(format!(
                "only {read} of the {want} messages asked for arrived within {}s (another consumer took some, or the broker is busy); this window may be incomplete",
                IDLE.as_secs()
            ));
        }
        if window.since.is_some() && window.left > 0 && ready > MAX_PEEK_DEPTH {
            notes.push(format!(
                "only the first {MAX_PEEK_DEPTH} messages were searched for that time"
            ));
        }
        Ok(notes)
    }
}

/// Which of the messages a queue peek reads belong to the page: from position `start`
/// (or, for a time, those stamped at or after it), at most `left` more.
struct Window {
    start: u64,
    since: Option<chrono::DateTime<chrono::Utc>>,
    left: usize,
    /// A quorum queue's delivery limit, when a forced peek reads one anyway.
    delivery_limit: Option<u64>,
    /// A quorum queue's delivery limit, shown with each message read from it.
    shown_limit: Option<u64>,
    /// Messages read that were already at the limit: the return sends them over it.
    over_limit: u64,
}

impl Window {
    fn keeps(&mut self, m: &Message) -> bool {
        if let Some(limit) = self.delivery_limit
            && m.delivery_count.unwrap_or(0) >= limit
        {
            self.over_limit += 1;
        }
        let inside = match self.since {
            Some(t) => m.timestamp.is_some_and(|ts| ts >= t),
            None => m.position >= self.start,
        };
        if !inside || self.left == 0 {
            return false;
        }
        self.left -= 1;
        true
    }
}
