//! Live tails of topics: a reader that starts at the end and never joins a group.

use super::KafkaBackend;
use super::client::{Ctx, map_err};
use super::read::to_message;
use crate::backend::{Backend, BackendError, LiveTail, Result, Tail, TailEvent, TailFilter};
use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Offset, TopicPartitionList};
use std::time::Duration;
use tokio::sync::mpsc;

#[async_trait]
impl LiveTail for KafkaBackend {
    /// Follow new records of the named topics (all visible topics when none are named)
    /// from their current ends, reading by assignment so no group is created.
    async fn tail(&self, filter: &TailFilter) -> Result<Tail> {
        self.tail_from(filter, &[]).await
    }

    /// As `tail`, the partitions named in `resume` read from the offsets given.
    async fn tail_from(&self, filter: &TailFilter, resume: &[(String, i32, i64)]) -> Result<Tail> {
        let topics: Vec<String> = if filter.sources.is_empty() {
            self.list_queues()
                .await?
                .into_iter()
                .map(|q| q.name)
                .collect()
        } else {
            filter.sources.clone()
        };
        let mut keys = Vec::new();
        for t in &topics {
            for p in self.topic_partitions(t).await? {
                keys.push((t.clone(), p.partition));
            }
        }
        // Start from explicit offsets: "end" resolved later by the fetcher would miss
        // records produced between this call returning and the first fetch.
        let marks = self.watermarks(keys).await?;
        let settings = self.settings.clone();
        let shown = self.shown();
        let reader: BaseConsumer<Ctx> = settings
            .reader(&self.reader_group)
            .set("enable.partition.eof", "false")
            .create_with_context(Ctx::default())
            .map_err(|e| BackendError::InvalidArgument(format!("kafka client settings: {e}")))?;
        let mut tpl = TopicPartitionList::new();
        let (mut resumed, mut lost) = (0usize, 0i64);
        for ((t, p), (low, high)) in &marks {
            let from = match resume.iter().find(|(rt, rp, _)| rt == t && rp == p) {
                Some((_, _, next)) => {
                    resumed += 1;
                    // Deleted by retention meanwhile: what is left, and say what is not.
                    lost += (low - next).max(0);
                    (*next).clamp(*low, *high)
                }
                None => *high,
            };
            tpl.add_partition_offset(t, *p, Offset::Offset(from))
                .map_err(|e| map_err(&e, "assigning partitions", &shown, reader.context()))?;
        }
        let mut notes = Vec::new();
        if resumed > 0 {
            notes.push(format!(
                "resuming {resumed} partition(s) from the offsets given{}",
                if lost > 0 {
                    format!(
                        "; {lost} record(s) were deleted from the topics before they could be read"
                    )
                } else {
                    String::new()
                }
            ));
        }
        reader
            .assign(&tpl)
            .map_err(|e| map_err(&e, "assigning partitions", &shown, reader.context()))?;
        let (tx, rx) = mpsc::channel(1024);
        std::thread::Builder::new()
            .name("mqscope-kafka-tail".into())
            .spawn(move || {
                let mut last_err = String::new();
                while !tx.is_closed() {
                    let item = match reader.poll(Duration::from_millis(200)) {
                        None => continue,
                        Some(Ok(m)) => Ok(TailEvent::Message(to_message(&m))),
                        Some(Err(e)) => {
                            let text = e.to_string();
                            // Report each new problem once, not once per poll.
                            if text == last_err {
                                continue;
                            }
                            last_err = text;
                            Err(map_err(&e, "live tail", &shown, reader.context()))
                        }
                    };
                    if tx.blocking_send(item).is_err() {
                        return;
                    }
                }
            })
            .map_err(|e| BackendError::Broker(format!("cannot start the live tail: {e}")))?;
        Ok(Tail { events: rx, notes })
    }
}
