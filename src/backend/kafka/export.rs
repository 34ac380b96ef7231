//! Exporting a whole topic, every partition at once, in batches, up to the end as it was
//! when the export started.

use super::peek::{correct_time_lookups, open_reader};
use super::read::{Marks, plan, to_message};
use super::{KafkaBackend, read};
use crate::backend::{BackendError, Export, Keep, PeekFrom, Result};
use crate::model::Message;
use async_trait::async_trait;
use tokio::sync::mpsc;

#[async_trait]
impl Export for KafkaBackend {
    /// One consumer fetches every partition at once, as kcat does; the bounded channel
    /// holds the back pressure, so memory does not grow with the topic.
    async fn export(
        &self,
        name: &str,
        partition: Option<i32>,
        from: &PeekFrom,
        batch: usize,
        into: mpsc::Sender<Vec<Message>>,
    ) -> Result<u64> {
        self.export_with(name, partition, from, batch, None, into)
            .await
    }

    async fn export_matching(
        &self,
        name: &str,
        from: &PeekFrom,
        batch: usize,
        keep: Keep,
        into: mpsc::Sender<Vec<Message>>,
    ) -> Result<u64> {
        self.export_with(name, None, from, batch, Some(keep), into)
            .await
    }
}

impl KafkaBackend {
    /// Both exports: every message, or those `keep` accepts with a batch per `batch` read.
    async fn export_with(
        &self,
        name: &str,
        partition: Option<i32>,
        from: &PeekFrom,
        batch: usize,
        keep: Option<Keep>,
        into: mpsc::Sender<Vec<Message>>,
    ) -> Result<u64> {
        if *from == PeekFrom::Last {
            return Err(BackendError::InvalidArgument(
                "an export reads to the end; it cannot start from the last messages".into(),
            ));
        }
        let all = self.topic_partitions(name).await?;
        if let Some(p) = partition
            && !all.iter().any(|i| i.partition == p)
        {
            return Err(BackendError::InvalidArgument(format!(
                "topic \"{name}\" has no partition {p} (it has {})",
                all.len()
            )));
        }
        let keys: Vec<(String, i32)> = all
            .iter()
            .filter(|i| partition.is_none_or(|p| p == i.partition))
            .map(|i| (name.to_string(), i.partition))
            .collect();
        let marks: Vec<Marks> = self
            .watermarks(keys)
            .await?
            .into_iter()
            .map(|((_, partition), (low, high))| Marks {
                partition,
                low,
                high,
            })
            .collect();
        let by_time = self.time_offsets(name, &marks, from).await?;
        let settings = self.settings.clone();
        let topic = name.to_string();
        let group = self.reader_group.clone();
        let from = from.clone();
        tokio::task::spawn_blocking(move || {
            let shown = settings.shown();
            let reader = open_reader(&settings, &group)?;
            let mut by_time = by_time;
            // An export has nowhere to show notes; a peek from the same time shows them.
            correct_time_lookups(&reader, &topic, &marks, &from, &mut by_time, &settings)?;
            // No limit: each partition to its high watermark.
            let ranges = plan(&marks, &from, usize::MAX, &by_time, &mut Vec::new());
            let batch = batch.max(1);
            let mut read = 0u64;
            // Messages read since the last hand-off; all of them are in `buf` unless filtered.
            let mut pending = 0usize;
            let capacity = if keep.is_some() { 0 } else { batch };
            let mut buf = Vec::with_capacity(capacity);
            let mut open = true;
            read::stream_records(&reader, &topic, &ranges, settings.timeout, &shown, |m| {
                read += 1;
                pending += 1;
                if keep.as_ref().is_none_or(|k| k(&read::RecordView::new(m))) {
                    buf.push(to_message(m));
                }
                if pending >= batch {
                    pending = 0;
                    let full = std::mem::replace(&mut buf, Vec::with_capacity(capacity));
                    open = into.blocking_send(full).is_ok();
                }
                open
            })?;
            if open && pending > 0 {
                // A receiver gone by now has stopped on purpose; nothing is lost to report.
                let _ = into.blocking_send(buf);
            }
            Ok(read)
        })
        .await
        .map_err(|e| BackendError::Broker(format!("kafka worker failed: {e}")))?
    }
}
