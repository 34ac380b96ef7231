//! Reading RabbitMQ streams by offset (which removes nothing): from the start, an offset or
//! a time, and the newest records found by reading from `last`.

use super::consumer::gathered;
use super::convert::to_message;
use super::{MAX_PEEK_DEPTH, RabbitBackend, amqp_error, short};
use crate::backend::{PeekFrom, PeekRequest, PeekSink, Result};
use crate::model::Message;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicCancelOptions};
use lapin::types::{AMQPValue, FieldTable as AmqpTable};
use std::time::Duration;

/// How long a stream read waits for the next record: a stream's end is an ordinary gap.
const STREAM_IDLE: Duration = Duration::from_millis(800);
/// The pause that ends the newest chunk of a stream, read from `last`: its records come
/// in one burst.
const STREAM_GAP: Duration = Duration::from_millis(250);
/// How long `--last` reads a stream that is written without pause before it takes the
/// newest records read so far.
const STREAM_LAST_MAX: Duration = Duration::from_secs(2);

impl RabbitBackend {
    pub(super) async fn peek_stream(
        &self,
        ch: &Channel,
        name: &str,
        req: &PeekRequest,
        sink: &mut PeekSink<'_>,
    ) -> Result<Vec<String>> {
        // Nothing asked for: no consumer at all (one would deliver a record anyway).
        if req.limit == 0 {
            return Ok(Vec::new());
        }
        let offset = match &req.from {
            PeekFrom::Start => AMQPValue::LongString("first".into()),
            PeekFrom::Position(p) => AMQPValue::LongLongInt(i64::try_from(*p).unwrap_or(i64::MAX)),
            PeekFrom::Time(t) => AMQPValue::Timestamp(u64::try_from(t.timestamp()).unwrap_or(0)),
            PeekFrom::Last => {
                for m in self.stream_last(ch, name, req.limit).await? {
                    if !sink.push(m).await {
                        break;
                    }
                }
                return Ok(Vec::new());
            }
        };
        let mut read = 0;
        let mut each = |m| {
            read += 1;
            (Some(m), read < req.limit)
        };
        self.read_stream(
            ch,
            name,
            offset,
            req.limit,
            STREAM_IDLE,
            Some(sink),
            &mut each,
        )
        .await
        .map(|_| Vec::new())
    }

    /// The newest `limit` records of a stream. Its length comes from neither the
    /// management API nor a passive declare until their statistics catch up (seconds
    /// after a publish), so the end is found by reading: from `last` (the newest chunk)
    /// to the first gap, then, if that chunk holds fewer than `limit`, the records just
    /// before it.
    async fn stream_last(&self, ch: &Channel, name: &str, limit: usize) -> Result<Vec<Message>> {
        let mut newest: std::collections::VecDeque<Message> = std::collections::VecDeque::new();
        let started = std::time::Instant::now();
        self.read_stream(
            ch,
            name,
            AMQPValue::LongString("last".into()),
            limit,
            STREAM_GAP,
            None,
            &mut |m| {
                if newest.len() == limit {
                    newest.pop_front();
                }
                newest.push_back(m);
                // A stream written without pause has no gap: the newest as of now.
                (None, started.elapsed() < STREAM_LAST_MAX)
            },
        )
        .await?;
        let first = newest.front().and_then(|m| m.offset);
        let missing = limit - newest.len();
        if let (Some(first), true) = (first, missing > 0) {
            let from = first
                .saturating_sub(i64::try_from(missing).unwrap_or(i64::MAX))
                .max(0);
            let mut before = Vec::new();
            if from < first {
                self.read_stream(
                    ch,
                    name,
                    AMQPValue::LongLongInt(from),
                    missing,
                    STREAM_IDLE,
                    None,
                    &mut |m| {
                        let go_on = m.offset.is_some_and(|o| o + 1 < first);
                        if m.offset.is_some_and(|o| o < first) {
                            before.push(m);
                        }
                        (None, go_on)
                    },
                )
                .await?;
            }
            before.extend(newest);
            return Ok(before);
        }
        Ok(newest.into())
    }

    /// Read a stream from `offset` with a consumer of its own, handing each record to
    /// `each`, which keeps it or gives it back for `sink`, and says whether to go on; the
    /// read also ends when no record comes for `idle`. Each `window` records are acked
    /// together (on a stream that only grants credit), so more than `window` can be read.
    #[allow(clippy::too_many_arguments)]
    async fn read_stream(
        &self,
        ch: &Channel,
        name: &str,
        offset: AMQPValue,
        window: usize,
        idle: Duration,
        mut sink: Option<&mut PeekSink<'_>>,
        each: &mut (dyn FnMut(Message) -> (Option<Message>, bool) + Send),
    ) -> Result<()> {
        let mut args = AmqpTable::default();
        args.insert("x-stream-offset".into(), offset);
        let (mut consumer, tag) = self.peek_consumer(ch, name, window as u64, args).await?;
        // The consumer's prefetch, as peek_consumer sets it.
        let credit = (window as u64).clamp(1, MAX_PEEK_DEPTH);
        let mut read = 0u64;
        let mut outcome = Ok(());
        loop {
            match gathered(&mut consumer, idle).await {
                Ok(Some(Ok(d))) => {
                    let offset = d
                        .properties
                        .headers()
                        .as_ref()
                        .and_then(|h| h.inner().get("x-stream-offset").cloned())
                        .and_then(|v| match v {
                            AMQPValue::LongLongInt(o) => Some(o),
                            _ => None,
                        });
                    let mut m = to_message(
                        name,
                        offset.and_then(|o| u64::try_from(o).ok()).unwrap_or(0),
                        &d,
                    );
                    m.offset = offset;
                    // Credit for the next window once this one is spent; nothing is
                    // removed from a stream.
                    read += 1;
                    if read.is_multiple_of(credit) {
                        let all = BasicAckOptions { multiple: true };
                        let _ = ch.basic_ack(d.delivery_tag, all).await;
                    }
                    let (pass, go_on) = each(m);
                    if let (Some(m), Some(sink)) = (pass, sink.as_deref_mut())
                        && !sink.push(m).await
                    {
                        break;
                    }
                    if !go_on {
                        break;
                    }
                }
                Ok(Some(Err(e))) => {
                    outcome = Err(amqp_error(&self.shown, self.vhost(), &e));
                    break;
                }
                Ok(None) | Err(_) => break,
            }
        }
        let _ = ch
            .basic_cancel(short(&tag)?, BasicCancelOptions::default())
            .await;
        outcome
    }
}
