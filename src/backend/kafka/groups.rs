//! Consumer groups: their committed offsets and lag, read as a client that never joins.

use super::client::{Ctx, Settings, map_err};
use super::{KafkaBackend, is_internal};
use crate::backend::{BackendError, ConsumerGroups, Result};
use crate::model::{ConsumerGroup, PartitionLag};
use async_trait::async_trait;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::HashMap;

impl KafkaBackend {
    /// Committed offsets and lag of one group over every partition it has committed on.
    /// Reads with OffsetFetch only, so it works on brokers without group listing.
    pub async fn group_offsets(&self, group: &str) -> Result<ConsumerGroup> {
        let md = self.metadata(None).await?;
        let keys: Vec<(String, i32)> = md
            .topics()
            .iter()
            .filter(|t| !is_internal(t.name()))
            .flat_map(|t| {
                t.partitions()
                    .iter()
                    .map(|p| (t.name().to_string(), p.id()))
            })
            .collect();
        let settings = self.settings.clone();
        let g = group.to_string();
        let committed: Vec<((String, i32), i64)> = tokio::task::spawn_blocking(move || {
            committed_offsets(&settings, &g, &keys).map(|(_, got)| got.into_iter().collect())
        })
        .await
        .map_err(|e| BackendError::Broker(format!("kafka worker failed: {e}")))??;
        let marks = self
            .watermarks(committed.iter().map(|(k, _)| k.clone()).collect())
            .await?;
        let mut partitions: Vec<PartitionLag> = committed
            .into_iter()
            .map(|((topic, partition), off)| {
                let high = marks
                    .get(&(topic.clone(), partition))
                    .map(|m| m.1)
                    .unwrap_or(off);
                PartitionLag {
                    topic,
                    partition,
                    committed: Some(off),
                    high,
                    lag: u64::try_from(high - off).unwrap_or(0),
                }
            })
            .collect();
        partitions.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
        let mut topics: Vec<String> = partitions.iter().map(|p| p.topic.clone()).collect();
        topics.dedup();
        Ok(ConsumerGroup {
            name: group.to_string(),
            state: "unknown".into(),
            members: 0,
            lag: partitions.iter().map(|p| p.lag).sum(),
            topics,
            partitions,
        })
    }
}

#[async_trait]
impl ConsumerGroups for KafkaBackend {
    /// Groups from ListGroups/DescribeGroups, each with committed offsets and lag.
    async fn list_groups(&self) -> Result<Vec<ConsumerGroup>> {
        let listed = self
            .blocking(|c, t, shown| match c.fetch_group_list(None, t) {
                Ok(list) => Ok(list
                    .groups()
                    .iter()
                    .map(|g| {
                        (
                            g.name().to_string(),
                            g.state().to_string(),
                            g.members().len(),
                        )
                    })
                    .collect::<Vec<_>>()),
                Err(e) => Err(groups_err(&e, shown, c.context())),
            })
            .await?;
        let mut out = Vec::with_capacity(listed.len());
        for (name, state, members) in listed {
            let mut g = self.group_offsets(&name).await?;
            g.state = state;
            g.members = u32::try_from(members).unwrap_or(u32::MAX);
            out.push(g);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// OffsetFetch alone: works where ListGroups does not (librdkafka's mock).
    async fn group(&self, name: &str) -> Result<ConsumerGroup> {
        self.group_offsets(name).await
    }
}

/// Brokers without ListGroups (librdkafka's mock answers "Required feature not supported
/// by broker" at once) should say that listing groups is what is missing; a timeout stays
/// "cannot reach", since that is a cluster in trouble.
fn groups_err(e: &KafkaError, shown: &str, ctx: &Ctx) -> BackendError {
    match map_err(e, "listing consumer groups", shown, ctx) {
        BackendError::Unsupported { .. } => BackendError::Unsupported {
            what: format!("listing consumer groups on this broker (ListGroups failed: {e})"),
            backend: "kafka",
        },
        other => other,
    }
}

/// Offsets a group has committed, by topic and partition.
type Committed = HashMap<(String, i32), i64>;

/// A client for `group` (it never joins, nor commits unless told) and the offsets the group
/// has committed on `parts`; partitions without one are left out.
pub(super) fn committed_offsets(
    settings: &Settings,
    group: &str,
    parts: &[(String, i32)],
) -> Result<(BaseConsumer<Ctx>, Committed)> {
    let c: BaseConsumer<Ctx> = settings
        .querier(Some(group))
        .create_with_context(Ctx::default())
        .map_err(|e| BackendError::InvalidArgument(format!("kafka client settings: {e}")))?;
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition(t, *p);
    }
    let got = c.committed_offsets(tpl, settings.timeout).map_err(|e| {
        map_err(
            &e,
            "reading committed offsets",
            &settings.shown(),
            c.context(),
        )
    })?;
    let offsets = got
        .elements()
        .iter()
        .filter_map(|e| match e.offset() {
            Offset::Offset(o) => Some(((e.topic().to_string(), e.partition()), o)),
            _ => None,
        })
        .collect();
    Ok((c, offsets))
}
