//! Peeking a topic: a reader of its own that only `assign`s the partitions read (no
//! group, no commit), merged by time across partitions.

use super::KafkaBackend;
use super::client::{Ctx, Settings};
use super::read::{Marks, check_time_lookup, plan, read_ranges};
use crate::backend::{BackendError, PeekFrom, PeekPage, PeekRequest, Result, merge_partitions};
use rdkafka::consumer::BaseConsumer;
use std::collections::HashMap;

impl KafkaBackend {
    pub(super) async fn peek_page(&self, name: &str, req: &PeekRequest) -> Result<PeekPage> {
        let all = self.topic_partitions(name).await?;
        let ids: Vec<i32> = match req.partition {
            Some(p) if all.iter().any(|i| i.partition == p) => vec![p],
            Some(p) => {
                return Err(BackendError::InvalidArgument(format!(
                    "topic \"{name}\" has no partition {p} (it has {})",
                    all.len()
                )));
            }
            None => all.iter().map(|i| i.partition).collect(),
        };
        // Only the partitions read: one partition stays readable while another's leader
        // is down.
        let marks = self
            .watermarks(ids.iter().map(|p| (name.to_string(), *p)).collect())
            .await?;
        let chosen: Vec<Marks> = ids
            .iter()
            .map(|p| {
                let (low, high) = marks
                    .get(&(name.to_string(), *p))
                    .copied()
                    .unwrap_or((0, 0));
                Marks {
                    partition: *p,
                    low,
                    high,
                }
            })
            .collect();
        let by_time = self.time_offsets(name, &chosen, &req.from).await?;
        let settings = self.settings.clone();
        let topic = name.to_string();
        let group = self.reader_group.clone();
        let from = req.from.clone();
        let limit = req.limit;
        let read_marks = chosen.clone();
        let (messages, notes) = tokio::task::spawn_blocking(move || {
            let shown = settings.shown();
            let reader = open_reader(&settings, &group)?;
            let mut by_time = by_time;
            let mut notes =
                correct_time_lookups(&reader, &topic, &read_marks, &from, &mut by_time, &settings)?;
            let ranges = plan(&read_marks, &from, limit, &by_time, &mut notes);
            let messages = read_ranges(&reader, &topic, &ranges, settings.timeout, &shown)?;
            Ok::<_, BackendError>((messages, notes))
        })
        .await
        .map_err(|e| BackendError::Broker(format!("kafka worker failed: {e}")))??;
        let messages = if chosen.len() > 1 {
            merge_partitions(messages, req.from == PeekFrom::Last, req.limit)
        } else {
            let mut m = messages;
            m.truncate(req.limit);
            m
        };
        Ok(PeekPage { messages, notes })
    }

    /// For a read from a time, where each partition's records from then start, as the
    /// broker answers (`correct_time_lookups` checks its "none that late" answers).
    pub(super) async fn time_offsets(
        &self,
        name: &str,
        marks: &[Marks],
        from: &PeekFrom,
    ) -> Result<HashMap<i32, Option<i64>>> {
        match from {
            PeekFrom::Time(t) => {
                self.offsets_at(
                    name,
                    marks.iter().map(|m| m.partition).collect(),
                    t.timestamp_millis(),
                )
                .await
            }
            _ => Ok(HashMap::new()),
        }
    }
}

/// The reader a peek and an export read with: assigned partitions, no commits.
pub(super) fn open_reader(settings: &Settings, group: &str) -> Result<BaseConsumer<Ctx>> {
    settings
        .reader(group)
        .create_with_context(Ctx::default())
        .map_err(|e| BackendError::InvalidArgument(format!("kafka client settings: {e}")))
}

/// For a read from a time, check the broker's "no record that late" answers against the
/// records themselves (see [`check_time_lookup`]) and correct `by_time`; returns a note for
/// each partition corrected.
pub(super) fn correct_time_lookups(
    reader: &BaseConsumer<Ctx>,
    topic: &str,
    marks: &[Marks],
    from: &PeekFrom,
    by_time: &mut HashMap<i32, Option<i64>>,
    settings: &Settings,
) -> Result<Vec<String>> {
    let PeekFrom::Time(t) = from else {
        return Ok(Vec::new());
    };
    let shown = settings.shown();
    let mut notes = Vec::new();
    for m in marks {
        if by_time.get(&m.partition).copied().flatten().is_some() {
            continue;
        }
        let (found, corrected) = check_time_lookup(
            reader,
            topic,
            *m,
            t.timestamp_millis(),
            settings.timeout,
            &shown,
        )?;
        if corrected {
            notes.push(format!(
                "partition {}: the broker found no offset for that time though later records exist; found it from record timestamps instead",
                m.partition
            ));
            by_time.insert(m.partition, found);
        }
    }
    Ok(notes)
}
