//! The consumer every read uses (peeks, streams, takes): a manual-ack consumer whose
//! prefetch covers its window, named for the management UI, and read without a wake-up
//! per message.

use super::{MAX_PEEK_DEPTH, RabbitBackend, amqp_error, short};
use crate::backend::Result;
use futures::StreamExt;
use lapin::Channel;
use lapin::options::{BasicConsumeOptions, BasicQosOptions};
use lapin::types::FieldTable as AmqpTable;
use std::time::Duration;

/// How long a queue peek waits for the next message. The window never asks for more than
/// the exact ready count, so a gap means a slow broker (recovering, busy) or a competing
/// consumer, not the end of the queue: wait generously, and say so if it comes up short.
pub(super) const IDLE: Duration = Duration::from_secs(2);
/// How long a reader that has drained what arrived lets the next deliveries gather before
/// it looks again (see `gathered`).
const GATHER: Duration = Duration::from_millis(1);

/// The consumer's next delivery, waiting at most `wait`, like `timeout(wait, next())`, but
/// without going to sleep on every message. lapin hands each delivery over from its own
/// I/O thread, so a reader faster than the broker is woken once per message: on a 10,000
/// message peek that was 4,000-11,000 context switches and half of mqscope's CPU time,
/// taken from the broker's own schedulers when both share a machine. A reader that finds
/// nothing waiting sleeps a millisecond first, and then takes whatever came in one go.
pub(super) async fn gathered(
    consumer: &mut lapin::Consumer,
    wait: Duration,
) -> std::result::Result<Option<lapin::Result<lapin::message::Delivery>>, tokio::time::error::Elapsed>
{
    if let Some(ready) = futures::FutureExt::now_or_never(consumer.next()) {
        return Ok(ready);
    }
    let nap = GATHER.min(wait);
    tokio::time::sleep(nap).await;
    tokio::time::timeout(wait - nap, consumer.next()).await
}

impl RabbitBackend {
    /// A manual-ack consumer whose prefetch covers the whole window (at most 65,535),
    /// so the broker sends it without waiting for acks; returns it with its tag.
    pub(super) async fn peek_consumer(
        &self,
        ch: &Channel,
        name: &str,
        window: u64,
        args: AmqpTable,
    ) -> Result<(lapin::Consumer, String)> {
        let fail = |e: lapin::Error| amqp_error(&self.shown, self.vhost(), &e);
        let prefetch = prefetch_for(window);
        let tag = self.consumer_tag("peek");
        // Sent back to back: the channel applies them in order, so the prefetch holds
        // before the first delivery, one round trip sooner.
        let (qos, consumer) = futures::future::join(
            ch.basic_qos(prefetch, BasicQosOptions::default()),
            ch.basic_consume(
                short(name)?,
                short(&tag)?,
                BasicConsumeOptions::default(),
                args,
            ),
        )
        .await;
        qos.map_err(fail)?;
        Ok((consumer.map_err(fail)?, tag))
    }

    /// A consumer tag that tells an operator looking at the management UI's consumers
    /// what this one is (`peek` or `tail`) and which mqscope process holds it.
    pub(super) fn consumer_tag(&self, purpose: &str) -> String {
        let n = self
            .peek_seq
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("mqscope-{purpose}-{}-{n}", std::process::id())
    }
}

/// The prefetch that covers a window of messages (at most 65,535).
pub(super) fn prefetch_for(window: u64) -> u16 {
    u16::try_from(window.clamp(1, MAX_PEEK_DEPTH)).unwrap_or(u16::MAX)
}
