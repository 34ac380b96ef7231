//! Topics and partitions: metadata, watermarks and offsets by time (one ListOffsets round
//! for many partitions), topic configs, and the listing and description built from them.

use super::client::{Ctx, map_err};
use super::{KafkaBackend, is_internal};
use crate::backend::{BackendError, Result};
use crate::model::deadletter::pair_dead_letter_topics;
use crate::model::queue::{DEAD_LETTER_SUFFIXES, looks_like_dead_letter};
use crate::model::{PartitionInfo, QueueDetail, QueueKind, QueueSummary};
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::metadata::Metadata;
use rdkafka::{Offset, TopicPartitionList};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

/// The longest a describe waits for topic configs.
const CONFIGS_TIMEOUT: Duration = Duration::from_secs(2);

impl KafkaBackend {
    pub(super) async fn metadata(&self, topic: Option<String>) -> Result<Metadata> {
        self.blocking(move |c, t, shown| {
            c.fetch_metadata(topic.as_deref(), t)
                .map_err(|e| map_err(&e, "reading cluster metadata", shown, c.context()))
        })
        .await
    }

    /// Partitions of one topic with leader and replicas, or QueueNotFound.
    pub(super) async fn topic_partitions(&self, name: &str) -> Result<Vec<PartitionInfo>> {
        let md = self.metadata(Some(name.to_string())).await?;
        let topic = md
            .topics()
            .iter()
            .find(|t| t.name() == name)
            .ok_or_else(|| BackendError::QueueNotFound(name.to_string()))?;
        if let Some(err) = topic.error() {
            let code = RDKafkaErrorCode::from(err);
            if matches!(
                code,
                RDKafkaErrorCode::UnknownTopicOrPartition | RDKafkaErrorCode::UnknownTopic
            ) {
                return Err(BackendError::QueueNotFound(name.to_string()));
            }
            return Err(BackendError::Broker(format!(
                "metadata for topic \"{name}\": {code}"
            )));
        }
        if topic.partitions().is_empty() {
            return Err(BackendError::QueueNotFound(name.to_string()));
        }
        let mut parts: Vec<PartitionInfo> = topic.partitions().iter().map(partition_info).collect();
        parts.sort_by_key(|p| p.partition);
        Ok(parts)
    }

    /// Low and high watermarks of many partitions in two batched ListOffsets rounds
    /// (earliest, latest) instead of one round trip per partition.
    pub(super) async fn watermarks(
        &self,
        parts: Vec<(String, i32)>,
    ) -> Result<HashMap<(String, i32), (i64, i64)>> {
        if parts.is_empty() {
            return Ok(HashMap::new());
        }
        self.blocking(move |c, t, shown| {
            let low = list_offsets(c, &parts, Offset::Beginning, t, shown)?;
            let high = list_offsets(c, &parts, Offset::End, t, shown)?;
            Ok(parts
                .into_iter()
                .map(|k| {
                    let l = low.get(&k).copied().unwrap_or(0);
                    let h = high.get(&k).copied().unwrap_or(l);
                    (k, (l, h.max(l)))
                })
                .collect())
        })
        .await
    }

    async fn partitions_with_marks(&self, name: &str) -> Result<Vec<PartitionInfo>> {
        let mut parts = self.topic_partitions(name).await?;
        let keys = parts
            .iter()
            .map(|p| (name.to_string(), p.partition))
            .collect();
        let marks = self.watermarks(keys).await?;
        for p in &mut parts {
            if let Some((l, h)) = marks.get(&(name.to_string(), p.partition)) {
                p.low = *l;
                p.high = *h;
            }
        }
        Ok(parts)
    }

    /// First offset at or after `ms` per partition; None where no record is that late.
    pub(super) async fn offsets_at(
        &self,
        topic: &str,
        parts: Vec<i32>,
        ms: i64,
    ) -> Result<HashMap<i32, Option<i64>>> {
        let topic = topic.to_string();
        self.blocking(move |c, t, shown| {
            let keys: Vec<(String, i32)> = parts.iter().map(|p| (topic.clone(), *p)).collect();
            let found = list_offsets(c, &keys, Offset::Offset(ms), t, shown)?;
            Ok(parts
                .iter()
                .map(|p| (*p, found.get(&(topic.clone(), *p)).copied()))
                .collect())
        })
        .await
    }

    /// The admin client, made on first use.
    pub(super) async fn admin(&self) -> Result<&AdminClient<Ctx>> {
        self.admin
            .get_or_try_init(|| async {
                self.settings
                    .querier(None)
                    .create_with_context::<Ctx, AdminClient<Ctx>>(Ctx::default())
                    .map_err(|e| {
                        BackendError::InvalidArgument(format!("kafka client settings: {e}"))
                    })
            })
            .await
    }

    /// A topic's configs that matter to a reader (retention, cleanup) and every one set
    /// away from its default; sensitive values masked. Brokers without DescribeConfigs
    /// (librdkafka's mock) give an error the caller may ignore.
    pub async fn topic_configs(
        &self,
        name: &str,
    ) -> Result<serde_json::Map<String, serde_json::Value>> {
        let shown = self.shown();
        let admin = self.admin().await?;
        // Configs are optional extras: a broker that does not answer (librdkafka's mock
        // leaves DescribeConfigs unanswered) must not hold up a describe for long.
        let wait = self.settings.timeout.min(CONFIGS_TIMEOUT);
        let opts = AdminOptions::new().request_timeout(Some(wait));
        let spec = ResourceSpecifier::Topic(name);
        let answer = tokio::time::timeout(wait, admin.describe_configs([&spec], &opts))
            .await
            .map_err(|_| BackendError::Timeout {
                after: wait,
                what: format!("describing the configs of \"{name}\""),
            })?
            .map_err(|e| {
                map_err(
                    &e,
                    "describing topic configs",
                    &shown,
                    admin.inner().context(),
                )
            })?;
        let mut out = serde_json::Map::new();
        for r in answer {
            let r = r.map_err(|code| {
                BackendError::Broker(format!("describing the configs of \"{name}\": {code}"))
            })?;
            for e in r.entries {
                let wanted = ["cleanup.policy", "retention.ms", "retention.bytes"]
                    .contains(&e.name.as_str())
                    || !(e.is_default || matches!(e.source, ConfigSource::Default));
                if !wanted {
                    continue;
                }
                let v = if e.is_sensitive {
                    serde_json::json!("***")
                } else {
                    serde_json::json!(e.value)
                };
                out.insert(e.name, v);
            }
        }
        Ok(out)
    }

    pub(super) async fn queue_listing(&self) -> Result<Vec<QueueSummary>> {
        let md = self.metadata(None).await?;
        let mut topics: BTreeMap<String, Vec<PartitionInfo>> = BTreeMap::new();
        for t in md.topics() {
            if is_internal(t.name()) || t.error().is_some() {
                continue;
            }
            let parts = t.partitions().iter().map(partition_info).collect();
            topics.insert(t.name().to_string(), parts);
        }
        let keys = topics
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(|p| (t.clone(), p.partition)))
            .collect();
        let marks = self.watermarks(keys).await?;
        let mut list: Vec<QueueSummary> = topics
            .iter_mut()
            .map(|(name, parts)| {
                for p in parts.iter_mut() {
                    if let Some((l, h)) = marks.get(&(name.clone(), p.partition)) {
                        p.low = *l;
                        p.high = *h;
                    }
                }
                summary(name, parts)
            })
            .collect();
        pair_dead_letter_topics(&mut list);
        Ok(list)
    }

    pub(super) async fn queue_detail(&self, name: &str) -> Result<QueueDetail> {
        let parts = self.partitions_with_marks(name).await?;
        let mut s = summary(name, &parts);
        // Pairing needs the other topics' names (not their counts, which cost a round of
        // ListOffsets per broker).
        let md = self.metadata(None).await?;
        let mut names: Vec<QueueSummary> = md
            .topics()
            .iter()
            .filter(|t| !is_internal(t.name()))
            .map(|t| summary(t.name(), &[]))
            .collect();
        pair_dead_letter_topics(&mut names);
        if let Some(listed) = names.into_iter().find(|q| q.name == name) {
            s.dead_letter_queue = listed.dead_letter_queue;
            s.dead_letter_sources = listed.dead_letter_sources;
            s.is_dead_letter = listed.is_dead_letter;
        }
        // Configs are extra: a broker without DescribeConfigs still gets its partitions shown.
        let configs = if self.no_configs.load(Ordering::Relaxed) {
            serde_json::Map::new()
        } else {
            match self.topic_configs(name).await {
                Ok(a) => a,
                // The cluster answered metadata a moment ago, so "unreachable" here means
                // this request went unanswered.
                Err(
                    BackendError::Timeout { .. }
                    | BackendError::Unsupported { .. }
                    | BackendError::Unreachable { .. },
                ) => {
                    self.no_configs.store(true, Ordering::Relaxed);
                    serde_json::Map::new()
                }
                Err(_) => serde_json::Map::new(),
            }
        };
        Ok(QueueDetail {
            partitions_detail: parts,
            configs,
            ..QueueDetail::new(s)
        })
    }
}

/// One ListOffsets round for many partitions: `at` is a time in ms, or Beginning/End for
/// the watermarks. Partitions the broker has no answer for are left out.
fn list_offsets(
    c: &BaseConsumer<Ctx>,
    parts: &[(String, i32)],
    at: Offset,
    timeout: Duration,
    shown: &str,
) -> Result<HashMap<(String, i32), i64>> {
    let mut tpl = TopicPartitionList::new();
    for (t, p) in parts {
        tpl.add_partition_offset(t, *p, at)
            .map_err(|e| map_err(&e, "listing offsets", shown, c.context()))?;
    }
    let got = c
        .offsets_for_times(tpl, timeout)
        .map_err(|e| map_err(&e, "listing offsets", shown, c.context()))?;
    let mut out = HashMap::new();
    for e in got.elements() {
        if let Err(err) = e.error() {
            return Err(map_err(
                &err,
                &format!(
                    "listing offsets of {} partition {}",
                    e.topic(),
                    e.partition()
                ),
                shown,
                c.context(),
            ));
        }
        if let Offset::Offset(o) = e.offset() {
            out.insert((e.topic().to_string(), e.partition()), o);
        }
    }
    Ok(out)
}

fn summary(name: &str, parts: &[PartitionInfo]) -> QueueSummary {
    let mut s = QueueSummary::new(name, QueueKind::Topic, "topic");
    s.partitions = u32::try_from(parts.len()).ok();
    s.messages = Some(parts.iter().map(PartitionInfo::messages).sum());
    s.is_dead_letter = looks_like_dead_letter(name, DEAD_LETTER_SUFFIXES);
    s
}

/// A partition from metadata, watermarks still to be filled in.
fn partition_info(p: &rdkafka::metadata::MetadataPartition) -> PartitionInfo {
    PartitionInfo {
        partition: p.id(),
        low: 0,
        high: 0,
        leader: (p.leader() >= 0).then_some(p.leader()),
        replicas: p.replicas().to_vec(),
    }
}
