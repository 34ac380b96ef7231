//! The Kafka backend over librdkafka: topics with watermarks, peeks that only `assign`
//! (no group, no commit), consumer groups with lag, publishing and live tails.
//!
//! librdkafka calls block, so every one runs on the blocking pool with a bounded timeout.

pub mod client;
pub mod read;

use super::{
    Advance, Backend, BackendError, BackendInfo, BackendKind, ConnectOptions, ConsumerGroups,
    Destination, Export, Keep, LiveTail, PeekFrom, PeekPage, PeekRequest, Publish, PublishReceipt,
    Result, Tail, TailFilter,
};
use crate::backend::target::KafkaTarget;
use crate::model::deadletter::pair_dead_letter_topics;
use crate::model::queue::{DEAD_LETTER_SUFFIXES, looks_like_dead_letter};
use crate::model::{
    ConsumerGroup, FieldValue, Message, PartitionInfo, PartitionLag, QueueDetail, QueueKind,
    QueueSummary,
};
use async_trait::async_trait;
use client::{Ctx, Settings, map_err};
use rdkafka::admin::{AdminClient, AdminOptions, ConfigSource, ResourceSpecifier};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::metadata::Metadata;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{Offset, TopicPartitionList};
use read::{Marks, check_time_lookup, merge, plan, read_ranges, to_message};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{OnceCell, mpsc};

/// A connected Kafka cluster. One long-lived group-less consumer answers metadata and
/// offset queries; each peek builds its own reader so reads never share a position.
pub struct KafkaBackend {
    settings: Settings,
    meta: Arc<BaseConsumer<Ctx>>,
    /// Built on first publish; the context is kept to explain delivery failures.
    producer: OnceCell<(FutureProducer<Ctx>, Ctx)>,
    /// Built on first describe, for DescribeConfigs.
    admin: OnceCell<AdminClient<Ctx>>,
    /// Set once the cluster has left DescribeConfigs unanswered, so later describes do
    /// not wait for it again.
    no_configs: AtomicBool,
    /// The throwaway group id readers carry because librdkafka's `assign` needs one.
    reader_group: String,
}

/// A group id no one else uses: the process, the time and a counter.
fn throwaway_group() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "mqscope-peek-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// The longest a describe waits for topic configs.
const CONFIGS_TIMEOUT: Duration = Duration::from_secs(2);

/// Topics whose names start with `__` are the broker's own (offsets, transactions).
pub fn is_internal(topic: &str) -> bool {
    topic.starts_with("__")
}

impl KafkaBackend {
    /// Connect and check the cluster answers, within the settings' timeout.
    pub async fn connect(settings: Settings) -> Result<Self> {
        let ctx = Ctx::default();
        let shown = settings.shown();
        let meta: BaseConsumer<Ctx> = settings
            .querier(None)
            .create_with_context(ctx)
            .map_err(|e| BackendError::InvalidArgument(format!("kafka client settings: {e}")))?;
        let backend = Self {
            settings,
            meta: Arc::new(meta),
            producer: OnceCell::new(),
            admin: OnceCell::new(),
            no_configs: AtomicBool::new(false),
            reader_group: throwaway_group(),
        };
        backend.metadata(None).await.map_err(|e| match e {
            BackendError::Broker(reason) => BackendError::Unreachable {
                target: shown,
                reason,
            },
            other => other,
        })?;
        Ok(backend)
    }

    /// How long one broker operation, or a read without progress, may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// The group id peeks and tails identify with. It is never joined and nothing is
    /// ever committed under it; tests check exactly that.
    pub fn reader_group(&self) -> &str {
        &self.reader_group
    }

    fn shown(&self) -> String {
        self.settings.shown()
    }

    /// Run a blocking librdkafka call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&BaseConsumer<Ctx>, Duration, &str) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let meta = Arc::clone(&self.meta);
        let timeout = self.settings.timeout;
        let shown = self.shown();
        tokio::task::spawn_blocking(move || f(&meta, timeout, &shown))
            .await
            .map_err(|e| BackendError::Broker(format!("kafka worker failed: {e}")))?
    }

    async fn metadata(&self, topic: Option<String>) -> Result<Metadata> {
        self.blocking(move |c, t, shown| {
            c.fetch_metadata(topic.as_deref(), t)
                .map_err(|e| map_err(&e, "reading cluster metadata", shown, c.context()))
        })
        .await
    }

    /// Partitions of one topic with leader and replicas, or QueueNotFound.
    async fn topic_partitions(&self, name: &str) -> Result<Vec<PartitionInfo>> {
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
    async fn watermarks(
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
    async fn offsets_at(
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
    async fn admin(&self) -> Result<&AdminClient<Ctx>> {
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

/// Kafka headers are bytes: strings and byte arrays go as they are, null as a null header,
/// and other AMQP-typed values (from an AMQP export) as their text.
fn header_bytes(v: &FieldValue) -> Option<Vec<u8>> {
    match v {
        FieldValue::Void => None,
        other => Some(
            other
                .as_bytes()
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| other.to_string().into_bytes()),
        ),
    }
}

#[async_trait]
impl Backend for KafkaBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Kafka,
            target: self.shown(),
        }
    }

    async fn list_queues(&self) -> Result<Vec<QueueSummary>> {
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

    async fn describe_queue(&self, name: &str) -> Result<QueueDetail> {
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

    async fn peek(&self, name: &str, req: &PeekRequest) -> Result<PeekPage> {
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
        let by_time = match &req.from {
            PeekFrom::Time(t) => {
                self.offsets_at(
                    name,
                    chosen.iter().map(|m| m.partition).collect(),
                    t.timestamp_millis(),
                )
                .await?
            }
            _ => HashMap::new(),
        };
        let settings = self.settings.clone();
        let topic = name.to_string();
        let group = self.reader_group.clone();
        let from = req.from.clone();
        let limit = req.limit;
        let read_marks = chosen.clone();
        let (messages, notes) = tokio::task::spawn_blocking(move || {
            let shown = settings.shown();
            let reader: BaseConsumer<Ctx> = settings
                .reader(&group)
                .create_with_context(Ctx::default())
                .map_err(|e| {
                    BackendError::InvalidArgument(format!("kafka client settings: {e}"))
                })?;
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
            merge(messages, req.from == PeekFrom::Last, req.limit)
        } else {
            let mut m = messages;
            m.truncate(req.limit);
            m
        };
        Ok(PeekPage { messages, notes })
    }

    fn publisher(&self) -> Option<&dyn Publish> {
        Some(self)
    }

    fn consumer_groups(&self) -> Option<&dyn ConsumerGroups> {
        Some(self)
    }

    fn live_tail(&self) -> Option<&dyn LiveTail> {
        Some(self)
    }

    fn exporter(&self) -> Option<&dyn Export> {
        Some(self)
    }

    fn advancer(&self) -> Option<&dyn Advance> {
        Some(self)
    }
}

#[async_trait]
impl Advance for KafkaBackend {
    /// Commits as a client outside the group (no join, generation -1), which brokers accept
    /// only while the group has no running members.
    async fn commit_group(
        &self,
        topic: &str,
        group: &str,
        upto: &[(i32, i64)],
    ) -> Result<Vec<(i32, Option<i64>, i64)>> {
        let settings = self.settings.clone();
        let (topic, group, upto) = (topic.to_string(), group.to_string(), upto.to_vec());
        tokio::task::spawn_blocking(move || {
            let shown = settings.shown();
            let keys: Vec<(String, i32)> = upto.iter().map(|(p, _)| (topic.clone(), *p)).collect();
            let (c, current) = committed_offsets(&settings, &group, &keys)?;
            let mut commit = TopicPartitionList::new();
            let mut moved = Vec::new();
            for (p, to) in &upto {
                let was = current.get(&(topic.clone(), *p)).copied();
                if was.is_some_and(|w| w >= *to) {
                    continue;
                }
                commit
                    .add_partition_offset(&topic, *p, Offset::Offset(*to))
                    .map_err(|e| map_err(&e, "committing offsets", &shown, c.context()))?;
                moved.push((*p, was, *to));
            }
            if commit.count() > 0 {
                c.commit(&commit, CommitMode::Sync).map_err(|e| {
                    BackendError::Broker(format!(
                        "committing group \"{group}\" on \"{topic}\": {e} (a group with running members refuses commits from outside it; stop them first)"
                    ))
                })?;
            }
            Ok(moved)
        })
        .await
        .map_err(|e| BackendError::Broker(format!("kafka worker failed: {e}")))?
    }

    async fn delete_records(&self, topic: &str, upto: &[(i32, i64)]) -> Result<()> {
        let shown = self.shown();
        let admin = self.admin().await?;
        let mut tpl = TopicPartitionList::new();
        for (p, o) in upto {
            tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
                .map_err(|e| map_err(&e, "deleting records", &shown, admin.inner().context()))?;
        }
        let wait = self.settings.timeout;
        let opts = AdminOptions::new()
            .request_timeout(Some(wait))
            .operation_timeout(Some(wait));
        let what = format!("deleting records of \"{topic}\" (DeleteRecords)");
        // Some brokers never answer an API they lack (librdkafka's mock); the request
        // timeout ends the wait, and this one is a backstop.
        let answer = tokio::time::timeout(
            wait + Duration::from_secs(2),
            admin.delete_records(&tpl, &opts),
        )
        .await
        .map_err(|_| BackendError::Timeout {
            after: wait,
            what: what.clone(),
        })?
        .map_err(|e| map_err(&e, &what, &shown, admin.inner().context()))?;
        for e in answer.elements() {
            if let Err(err) = e.error() {
                return Err(map_err(
                    &err,
                    &format!("{what}, partition {}", e.partition()),
                    &shown,
                    admin.inner().context(),
                ));
            }
        }
        Ok(())
    }
}

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
        let by_time = match from {
            PeekFrom::Time(t) => {
                self.offsets_at(
                    name,
                    marks.iter().map(|m| m.partition).collect(),
                    t.timestamp_millis(),
                )
                .await?
            }
            _ => HashMap::new(),
        };
        let settings = self.settings.clone();
        let topic = name.to_string();
        let group = self.reader_group.clone();
        let from = from.clone();
        tokio::task::spawn_blocking(move || {
            let shown = settings.shown();
            let reader: BaseConsumer<Ctx> = settings
                .reader(&group)
                .create_with_context(Ctx::default())
                .map_err(|e| {
                    BackendError::InvalidArgument(format!("kafka client settings: {e}"))
                })?;
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

#[async_trait]
impl Publish for KafkaBackend {
    async fn publish(&self, dest: &Destination, msg: &Message) -> Result<PublishReceipt> {
        let Destination::Topic { topic, partition } = dest else {
            return Err(BackendError::InvalidArgument(
                "Kafka publishes to a topic, not an exchange".into(),
            ));
        };
        // Refuse unknown topics instead of letting a broker auto-create a misspelt one.
        let parts = self.topic_partitions(topic).await?;
        if let Some(p) = partition
            && !parts.iter().any(|i| i.partition == *p)
        {
            return Err(BackendError::InvalidArgument(format!(
                "topic \"{topic}\" has no partition {p} (it has {})",
                parts.len()
            )));
        }
        let shown = self.shown();
        let (producer, ctx) = self
            .producer
            .get_or_try_init(|| async {
                let ctx = Ctx::default();
                self.settings
                    .producer()
                    .create_with_context::<Ctx, FutureProducer<Ctx>>(ctx.clone())
                    .map(|p| (p, ctx))
                    .map_err(|e| {
                        BackendError::InvalidArgument(format!("kafka client settings: {e}"))
                    })
            })
            .await?;
        let mut headers = OwnedHeaders::new_with_capacity(msg.headers.len());
        let values: Vec<(&str, Option<Vec<u8>>)> = msg
            .headers
            .iter()
            .map(|(k, v)| (k, header_bytes(v)))
            .collect();
        for (k, v) in &values {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .payload(&msg.payload[..])
            .headers(headers);
        if let Some(k) = &msg.key {
            record = record.key(&k[..]);
        }
        if let Some(p) = partition {
            record = record.partition(*p);
        }
        let delivery = producer
            .send(record, Timeout::After(self.settings.timeout))
            .await
            .map_err(|(e, _)| map_err(&e, "publishing", &shown, ctx))?;
        Ok(PublishReceipt {
            routed_to: vec![topic.clone()],
            partition: Some(delivery.partition),
            offset: Some(delivery.offset),
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

#[async_trait]
impl LiveTail for KafkaBackend {
    /// Follow new records of the named topics (all visible topics when none are named)
    /// from their current ends, reading by assignment so no group is created.
    async fn tail(&self, filter: &TailFilter) -> Result<Tail> {
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
        for ((t, p), (_, high)) in &marks {
            tpl.add_partition_offset(t, *p, Offset::Offset(*high))
                .map_err(|e| map_err(&e, "assigning partitions", &shown, reader.context()))?;
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
                        Some(Ok(m)) => Ok(to_message(&m)),
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
        Ok(Tail {
            messages: rx,
            notes: Vec::new(),
        })
    }
}

/// Offsets a group has committed, by topic and partition.
type Committed = HashMap<(String, i32), i64>;

/// A client for `group` (it never joins, nor commits unless told) and the offsets the group
/// has committed on `parts`; partitions without one are left out.
fn committed_offsets(
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

/// For a read from a time, check the broker's "no record that late" answers against the
/// records themselves (see [`check_time_lookup`]) and correct `by_time`; returns a note for
/// each partition corrected.
fn correct_time_lookups(
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

/// Open a Kafka target with the profile's settings from `opts`.
pub async fn connect(target: &KafkaTarget, opts: &ConnectOptions) -> Result<Arc<dyn Backend>> {
    let settings = Settings::from_target(target, &opts.settings)?;
    Ok(Arc::new(KafkaBackend::connect(settings).await?))
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
