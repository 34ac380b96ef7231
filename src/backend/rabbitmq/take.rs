//! Take sessions: messages taken out of a queue under explicit control (for replays,
//! deletes and purges), acked only once dealt with and otherwise given back in place.

use super::consumer::{IDLE, gathered, prefetch_for};
use super::convert::to_message;
use super::{RabbitBackend, amqp_error, short};
use crate::backend::{BackendError, Result, Take, TakeSession, Taken};
use crate::model::broker::quorum_refusal;
use async_trait::async_trait;
use lapin::Channel;
use lapin::options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions, BasicQosOptions};
use lapin::types::FieldTable as AmqpTable;
use std::time::Duration;

/// How long a take session waits between messages once the first has come: the broker
/// streams a prefetch window with gaps far below this.
const TAKE_GAP: Duration = Duration::from_millis(50);

#[async_trait]
impl Take for RabbitBackend {
    async fn take(&self, queue: &str, force: bool) -> Result<Box<dyn TakeSession>> {
        let info = self.mgmt.queue(self.vhost(), queue).await?;
        if info.kind() == "stream" {
            return Err(BackendError::Unsupported {
                what: format!(
                    "removing messages from stream \"{queue}\" (streams are logs: nothing can be taken out)"
                ),
                backend: "rabbitmq",
            });
        }
        if let Some(limit) = self.delivery_limit(&info).await?
            && !force
            && !self.quorum_rule(limit).await?.0
        {
            return Err(BackendError::Refused(quorum_refusal(queue, limit)));
        }
        let ch = self.channel().await?;
        let depth = self.ready_count(&ch, queue).await?;
        let (consumer, tag) = self
            .peek_consumer(&ch, queue, depth.max(1), AmqpTable::default())
            .await?;
        let prefetch = prefetch_for(depth.max(1));
        Ok(Box::new(RabbitTake {
            ch,
            consumer,
            tag,
            queue: queue.to_string(),
            shown: self.shown.clone(),
            vhost: self.vhost().to_string(),
            depth,
            prefetch,
            delivered: 0,
            unsettled: Default::default(),
            released: false,
        }))
    }

    async fn topology(&self) -> Result<crate::model::topology::Topology> {
        let mut topology = self.mgmt.topology(self.vhost()).await?;
        topology.queues = self
            .mgmt
            .queue_names(self.vhost())
            .await?
            .into_iter()
            .collect();
        Ok(topology)
    }
}

/// A take session: a manual-ack consumer on its own channel. Whatever it does not ack goes
/// back with one `basic.nack(multiple, requeue)`, and closing the channel returns anything
/// still in flight, so an error or a dropped session loses nothing.
struct RabbitTake {
    ch: Channel,
    consumer: lapin::Consumer,
    tag: String,
    queue: String,
    shown: String,
    vhost: String,
    depth: u64,
    /// The consumer's prefetch, re-stated to make an ack's round trip.
    prefetch: u16,
    delivered: u64,
    unsettled: std::collections::BTreeSet<u64>,
    released: bool,
}

impl RabbitTake {
    fn fail(&self, e: &lapin::Error) -> BackendError {
        amqp_error(&self.shown, &self.vhost, e)
    }
}

impl Drop for RabbitTake {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        // Closing the channel hands every unacked message back to the queue.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let ch = self.ch.clone();
            rt.spawn(async move {
                let _ = ch.close(200, "take abandoned".into()).await;
            });
        }
    }
}

#[async_trait]
impl TakeSession for RabbitTake {
    fn depth(&self) -> u64 {
        self.depth
    }

    async fn next(&mut self, max: usize) -> Result<Vec<Taken>> {
        let mut out = Vec::new();
        while out.len() < max && self.delivered < self.depth {
            let wait = if out.is_empty() { IDLE } else { TAKE_GAP };
            match gathered(&mut self.consumer, wait).await {
                Ok(Some(Ok(d))) => {
                    let message = to_message(&self.queue, self.delivered, &d);
                    self.delivered += 1;
                    self.unsettled.insert(d.delivery_tag);
                    out.push(Taken {
                        tag: d.delivery_tag,
                        message,
                    });
                }
                Ok(Some(Err(e))) => return Err(self.fail(&e)),
                Ok(None) => {
                    if out.is_empty() {
                        return Err(BackendError::Broker(format!(
                            "the broker ended the consumer on \"{}\" (queue deleted, or the connection closed)",
                            self.queue
                        )));
                    }
                    break;
                }
                Err(_) => break,
            }
        }
        Ok(out)
    }

    async fn ack(&mut self, tags: &[u64]) -> Result<()> {
        let Some(&highest) = tags.iter().max() else {
            return Ok(());
        };
        // One multiple ack when the tags are every unsettled one up to the highest (the
        // usual case: a whole batch replayed), else one ack each.
        let covered = self.unsettled.range(..=highest).count();
        if covered == tags.len() && tags.iter().all(|t| self.unsettled.contains(t)) {
            self.ch
                .basic_ack(highest, BasicAckOptions { multiple: true })
                .await
                .map_err(|e| self.fail(&e))?;
        } else {
            for &t in tags {
                self.ch
                    .basic_ack(t, BasicAckOptions { multiple: false })
                    .await
                    .map_err(|e| self.fail(&e))?;
            }
        }
        for t in tags {
            self.unsettled.remove(t);
        }
        crate::fault::step("take.ack_sent").await;
        // AMQP 0-9-1 never answers a basic.ack, and an ack still in this process's socket
        // buffer is lost when it dies (with deliveries unread, the kernel resets the
        // connection instead of sending it): the broker then gives the "removed" messages
        // back. A synchronous method on the same channel is answered only after the
        // channel has handled every method before it, so once this returns the broker has
        // the acks, and losing the connection now can no longer return those messages.
        // Re-stating the prefetch is harmless: it applies to consumers started later.
        self.ch
            .basic_qos(self.prefetch, BasicQosOptions::default())
            .await
            .map_err(|e| self.fail(&e))?;
        Ok(())
    }

    async fn release(mut self: Box<Self>) -> Result<()> {
        self.released = true;
        let _ = self
            .ch
            .basic_cancel(short(&self.tag)?, BasicCancelOptions::default())
            .await;
        let mut result = Ok(());
        if let Some(&last) = self.unsettled.iter().next_back() {
            let nack = self
                .ch
                .basic_nack(
                    last,
                    BasicNackOptions {
                        multiple: true,
                        requeue: true,
                    },
                )
                .await;
            if let Err(e) = nack {
                result = Err(self.fail(&e));
            }
        }
        // Anything delivered after the cancel and not yet read goes back with the channel.
        let _ = self.ch.close(200, "take done".into()).await;
        result
    }
}
