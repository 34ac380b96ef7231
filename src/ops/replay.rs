//! Replaying dead letters to where they came from, and removing messages (purge, delete)
//! behind a backup. Backend-neutral: queue brokers go through the `Take` capability
//! (publish the copy with confirms, and only then ack the original), logs through peeks
//! (the dead-letter topic is never modified). A journal written before each step lets an
//! interrupted replay resume with every message either at its origin exactly once or
//! still in the dead-letter queue.

use crate::backend::{
    Backend, BackendError, Destination, PeekFrom, Publish, Take, TakeSession, Taken,
};
use crate::format::record::message_record;
use crate::model::correlation::Extractor;
use crate::model::topology::Topology;
use crate::model::{FieldTable, FieldValue, Message};
use crate::ops::journal::{self, Entry, Journal, JournalError, destination_json, destination_text};
use crate::ops::scan::{ScanOptions, read_all};
use serde::Serialize;
use serde_json::{Value, json};

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Replays allowed per message before the loop guard refuses (unless forced).
pub const DEFAULT_MAX_REPLAYS: u64 = 3;

pub use crate::model::identity::{
    REPLAY_COUNT, REPLAY_ID, REPLAYED_FROM, is_death_header, message_key, origin_label,
    replay_count,
};
/// The `--filter` language lives in its own file; `peek` uses it too.
pub use crate::ops::filter::Filter;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Invalid(String),
}

/// The copy that is published: the original's payload, properties, key and headers, minus
/// the death headers, plus where it came from and how often it was replayed. Log
/// destinations get text header values (Kafka headers are bytes).
pub fn replayed_copy(m: &Message, key: &str, to_log: bool) -> Message {
    let mut copy = m.clone();
    copy.headers = FieldTable(
        m.headers
            .iter()
            .filter(|(k, _)| !is_death_header(k) && *k != REPLAYED_FROM && *k != REPLAY_ID)
            .filter(|(k, _)| *k != REPLAY_COUNT)
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    );
    let count = replay_count(m) + 1;
    let text = |s: String| FieldValue::LongString(s.into_bytes().into());
    copy.headers.insert(REPLAYED_FROM, text(origin_label(m)));
    copy.headers.insert(
        REPLAY_COUNT,
        if to_log {
            text(count.to_string())
        } else {
            FieldValue::I64(i64::try_from(count).unwrap_or(i64::MAX))
        },
    );
    copy.headers.insert(REPLAY_ID, text(key.to_string()));
    copy.redelivered = false;
    copy.delivery_count = None;
    copy
}

/// An explicit destination (`--to`): `queue:NAME`, `exchange:NAME` (each message keeps
/// its routing key unless one is given), `topic:NAME`, or a bare name (a queue on AMQP
/// brokers, a topic on Kafka).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ToTarget {
    Queue(String),
    Exchange(String),
    Topic(String),
    Bare(String),
}

impl ToTarget {
    pub fn parse(s: &str) -> Result<Self, ReplayError> {
        let (kind, name) = match s.split_once(':') {
            Some((k @ ("queue" | "exchange" | "topic"), n)) => (k, n),
            _ => ("", s),
        };
        if name.is_empty() && kind != "exchange" {
            return Err(ReplayError::Invalid(format!(
                "--to \"{s}\": name a queue (queue:NAME), an exchange (exchange:NAME) or a topic (topic:NAME)"
            )));
        }
        Ok(match kind {
            "queue" => ToTarget::Queue(name.into()),
            "exchange" => ToTarget::Exchange(name.into()),
            "topic" => ToTarget::Topic(name.into()),
            _ => ToTarget::Bare(name.into()),
        })
    }

    pub fn text(&self) -> String {
        match self {
            ToTarget::Queue(n) => format!("queue:{n}"),
            ToTarget::Exchange(n) => format!("exchange:{n}"),
            ToTarget::Topic(n) => format!("topic:{n}"),
            ToTarget::Bare(n) => n.clone(),
        }
    }
}

/// How a RabbitMQ dead letter goes back: through its original exchange and routing key,
/// straight to the queue it died in, or (auto) through the exchange unless that would
/// also deliver it to other queues again (fan-out), in which case straight to its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    #[default]
    Auto,
    Exchange,
    Queue,
}

/// Everything a replay needs to know; kept in the journal so `--resume` runs the same one.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct ReplayOptions {
    pub to: Option<String>,
    #[serde(default)]
    pub routing_key: Option<String>,
    #[serde(default)]
    pub via: Option<String>,
    pub filter: Option<String>,
    #[serde(default)]
    pub ids: Vec<String>,
    pub limit: Option<u64>,
    pub max_replays: Option<u64>,
    #[serde(default)]
    pub force: bool,
    /// Logs: produce to the partition the record came from.
    #[serde(default)]
    pub keep_partition: bool,
    /// Messages per batch (journalled, published, confirmed, acked together).
    #[serde(default)]
    pub batch: Option<usize>,
    /// Logs: afterwards, commit this consumer group past the records replayed.
    #[serde(default)]
    pub commit_group: Option<String>,
    /// Logs: afterwards, delete the records replayed (DeleteRecords).
    #[serde(default)]
    pub delete_records: bool,
}

/// The parsed, checked form of [`ReplayOptions`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub to: Option<ToTarget>,
    pub routing_key: Option<String>,
    pub via: Via,
    pub filter: Option<Filter>,
    pub ids: Vec<String>,
    pub limit: Option<u64>,
    pub max_replays: u64,
    pub force: bool,
    pub keep_partition: bool,
    pub batch: usize,
    pub commit_group: Option<String>,
    pub delete_records: bool,
}

impl ReplayOptions {
    pub fn plan(&self) -> Result<Plan, ReplayError> {
        let via = match self.via.as_deref() {
            None | Some("auto") => Via::Auto,
            Some("exchange") => Via::Exchange,
            Some("queue") => Via::Queue,
            Some(other) => {
                return Err(ReplayError::Invalid(format!(
                    "--via \"{other}\": auto, exchange or queue"
                )));
            }
        };
        Ok(Plan {
            to: self.to.as_deref().map(ToTarget::parse).transpose()?,
            routing_key: self.routing_key.clone(),
            via,
            filter: self.filter.as_deref().map(Filter::parse).transpose()?,
            ids: self.ids.clone(),
            limit: self.limit,
            max_replays: self.max_replays.unwrap_or(DEFAULT_MAX_REPLAYS),
            force: self.force,
            keep_partition: self.keep_partition,
            batch: self.batch.unwrap_or(BATCH).clamp(1, 65_535),
            commit_group: self.commit_group.clone(),
            delete_records: self.delete_records,
        })
    }
}

impl Plan {
    /// Whether the user chose this message (ids and filter; all when neither is given).
    pub fn selects(&self, m: &Message, key: &str) -> bool {
        let by_id = self.ids.is_empty()
            || self
                .ids
                .iter()
                .any(|id| id == key || m.properties.message_id.as_deref() == Some(id.as_str()));
        by_id && self.filter.as_ref().is_none_or(|f| f.matches(m))
    }

    /// Where this message goes, with a note when the choice needs explaining, or why it
    /// cannot be replayed.
    pub fn destination(
        &self,
        m: &Message,
        log_backend: bool,
        topology: Option<&Topology>,
    ) -> Result<(Destination, Option<String>), String> {
        let death = m.deaths().into_iter().next();
        if let Some(to) = &self.to {
            let rk = |m: &Message| {
                self.routing_key.clone().unwrap_or_else(|| {
                    death
                        .as_ref()
                        .and_then(|d| d.routing_keys.first().cloned())
                        .or_else(|| m.routing_key.clone())
                        .unwrap_or_default()
                })
            };
            let dest = match to {
                ToTarget::Topic(t) => Destination::Topic {
                    topic: t.clone(),
                    partition: None,
                },
                ToTarget::Bare(t) if log_backend => Destination::Topic {
                    topic: t.clone(),
                    partition: None,
                },
                ToTarget::Queue(q) | ToTarget::Bare(q) => Destination::Exchange {
                    exchange: String::new(),
                    routing_key: q.clone(),
                },
                ToTarget::Exchange(x) => Destination::Exchange {
                    exchange: x.clone(),
                    routing_key: rk(m),
                },
            };
            return Ok((dest, None));
        }
        let Some(death) = death else {
            return Err(
                "no dead-letter history (no x-death or Kafka DLT headers): say where with --to"
                    .into(),
            );
        };
        if death.partition.is_some()
            || log_backend
            || death.exchange.is_none() && m.offset.is_some()
        {
            // A Kafka dead letter: back to its original topic.
            return Ok((
                Destination::Topic {
                    topic: death.queue.clone(),
                    partition: if self.keep_partition {
                        death.partition
                    } else {
                        None
                    },
                },
                None,
            ));
        }
        let queue = death.queue.clone();
        let exchange = death.exchange.clone().unwrap_or_default();
        let key = death
            .routing_keys
            .first()
            .cloned()
            .unwrap_or_else(|| queue.clone());
        let straight = Destination::Exchange {
            exchange: String::new(),
            routing_key: queue.clone(),
        };
        if exchange.is_empty() {
            // Published straight to the queue: the default exchange with its name.
            return Ok((straight, None));
        }
        let through = Destination::Exchange {
            exchange: exchange.clone(),
            routing_key: key.clone(),
        };
        match self.via {
            Via::Exchange => Ok((through, None)),
            Via::Queue => Ok((straight, None)),
            Via::Auto => {
                let Some(t) = topology else {
                    return Ok((through, None));
                };
                let mut reached: Vec<String> = Vec::new();
                for k in &death.routing_keys {
                    for q in t.route(&exchange, k, &m.headers) {
                        if !reached.contains(&q) {
                            reached.push(q);
                        }
                    }
                }
                if reached == [queue.clone()] {
                    Ok((through, None))
                } else if reached.is_empty() || !reached.contains(&queue) {
                    Ok((
                        straight,
                        Some(format!(
                            "exchange \"{exchange}\" no longer routes key \"{key}\" to \"{queue}\": sent straight to the queue"
                        )),
                    ))
                } else {
                    Ok((
                        straight,
                        Some(format!(
                            "exchange \"{exchange}\" would also deliver it to {} other queue(s) again: sent straight to \"{queue}\" (use --via exchange to go through the exchange)",
                            reached.len() - 1
                        )),
                    ))
                }
            }
        }
    }
}

/// One message the replay did not replay, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub position: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    pub key: String,
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub reason: String,
}

fn item(m: &Message, key: &str, dest: Option<&Destination>, reason: impl Into<String>) -> Item {
    Item {
        position: m.position,
        partition: m.partition,
        offset: m.offset,
        key: key.to_string(),
        message_id: m.properties.message_id.clone(),
        destination: dest.map(destination_text),
        reason: reason.into(),
    }
}

/// What a replay did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// The replay's id (its journal's name); a dry run has none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub replay: String,
    pub source: String,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// Messages looked at.
    pub scanned: u64,
    pub replayed: u64,
    /// Per destination: how many went (or would go) there.
    pub destinations: BTreeMap<String, u64>,
    /// Queues: originals removed from the dead-letter queue because their copies were
    /// confirmed in this run (a log keeps its records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    /// Copies confirmed whose originals' removal the broker did not answer (the connection
    /// went): each is at its destination and maybe still in the dead-letter queue too,
    /// until `--resume` removes it without publishing it again.
    #[serde(skip_serializing_if = "is_zero")]
    pub unsure: u64,
    /// Replayed by an earlier, interrupted run: removed from the dead-letter queue now.
    pub already_replayed: u64,
    /// Not chosen by --ids / --filter / --limit: left where they are.
    pub not_selected: u64,
    pub skipped: Vec<Item>,
    pub failed: Vec<Item>,
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
    /// Why the replay stopped before the end, if it did (the rest is still in the queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Logs, when asked: where the group was committed or records deleted, per partition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advanced: Vec<Advanced>,
    /// Logs: why committing the group or deleting records failed (the replay itself stands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advance_failed: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One partition of a log moved past its replayed records.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Advanced {
    pub partition: i32,
    /// `commit` (a consumer group's offset) or `delete` (records deleted below `to`).
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    pub to: i64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.stopped.is_none() && self.advance_failed.is_none()
    }

    fn note(&mut self, n: String) {
        if !self.notes.contains(&n) && self.notes.len() < 20 {
            self.notes.push(n);
        }
    }
}

/// What an earlier run of the same replay left behind, read from its journal.
#[derive(Debug, Default)]
pub struct Resume {
    /// Copies confirmed by the broker whose originals were not removed yet: count per key.
    confirmed: HashMap<String, u64>,
    /// Copies sent, with no confirm or failure recorded: count per key, with destination
    /// and the copy's headers (to see where it may have landed).
    in_flight: HashMap<String, (u64, Destination, FieldTable)>,
    pub started: Option<chrono::DateTime<chrono::Utc>>,
    /// Keys confirmed in the earlier run (for --limit accounting).
    pub replayed_before: u64,
}

impl Resume {
    pub fn from_entries(entries: &[Entry]) -> Self {
        let mut taken: HashMap<String, (u64, Option<Destination>, FieldTable)> = HashMap::new();
        let mut confirmed: HashMap<String, u64> = HashMap::new();
        let mut settled: HashMap<String, u64> = HashMap::new();
        let mut acked: HashMap<String, u64> = HashMap::new();
        let mut r = Resume::default();
        for e in entries {
            match e {
                Entry::Begin { time, .. } => {
                    r.started = chrono::DateTime::parse_from_rfc3339(time)
                        .ok()
                        .map(|t| t.with_timezone(&chrono::Utc));
                }
                Entry::Take {
                    key, dest, record, ..
                } => {
                    let headers = record
                        .get("headers")
                        .and_then(|h| FieldTable::from_json(h).ok())
                        .unwrap_or_default();
                    let t = taken.entry(key.clone()).or_insert((0, None, headers));
                    t.0 += 1;
                    t.1 = journal::destination_from_json(dest);
                }
                Entry::Confirmed { key } | Entry::Found { key } => {
                    *confirmed.entry(key.clone()).or_default() += 1;
                    *settled.entry(key.clone()).or_default() += 1;
                    r.replayed_before += 1;
                }
                Entry::Failed { key, .. } => *settled.entry(key.clone()).or_default() += 1,
                Entry::Acked { keys } => {
                    for k in keys {
                        *acked.entry(k.clone()).or_default() += 1;
                    }
                }
                Entry::End { .. } => {}
            }
        }
        for (k, n) in &confirmed {
            let left = n.saturating_sub(acked.get(k).copied().unwrap_or(0));
            if left > 0 {
                r.confirmed.insert(k.clone(), left);
            }
        }
        for (k, (n, dest, headers)) in taken {
            let left = n.saturating_sub(settled.get(&k).copied().unwrap_or(0));
            if let (true, Some(dest)) = (left > 0, dest) {
                r.in_flight.insert(k, (left, dest, headers));
            }
        }
        r
    }

    pub fn in_flight(&self) -> u64 {
        self.in_flight.values().map(|v| v.0).sum()
    }

    /// Confirmed copies whose originals were not found (and so not removed).
    pub fn unresolved(&self) -> u64 {
        self.confirmed.values().sum()
    }

    fn take_confirmed(&mut self, key: &str) -> bool {
        match self.confirmed.get_mut(key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Look for copies that were in flight when a replay was interrupted: read the queues
/// their destinations route to (or the topic, from when the replay began) for the replay
/// id header. Found ones count as confirmed.
async fn settle_in_flight(
    backend: &dyn Backend,
    resume: &mut Resume,
    topology: Option<&Topology>,
    report: &mut Report,
) -> Result<(), ReplayError> {
    if resume.in_flight.is_empty() {
        return Ok(());
    }
    let mut places: BTreeMap<String, bool> = BTreeMap::new();
    for (_, dest, headers) in resume.in_flight.values() {
        match dest {
            Destination::Exchange {
                exchange,
                routing_key,
            } => {
                let queues = match (exchange.is_empty(), topology) {
                    (true, _) => vec![routing_key.clone()],
                    (false, Some(t)) => t.route(exchange, routing_key, headers),
                    (false, None) => Vec::new(),
                };
                for q in queues {
                    places.insert(q, false);
                }
            }
            Destination::Topic { topic, .. } => {
                places.insert(topic.clone(), true);
            }
        }
    }
    let mut found: HashMap<String, u64> = HashMap::new();
    for (place, is_log) in places {
        let Ok(detail) = backend.describe_queue(&place).await else {
            continue;
        };
        let opts = ScanOptions {
            since: if is_log { resume.started } else { None },
            ..ScanOptions::default()
        };
        read_all(
            backend,
            &detail,
            &opts,
            |page| {
                for m in page {
                    if let Some(id) = m.headers.get(REPLAY_ID).and_then(|v| v.as_bytes()) {
                        let id = String::from_utf8_lossy(id);
                        if resume.in_flight.contains_key(id.as_ref()) {
                            *found.entry(id.into_owned()).or_default() += 1;
                        }
                    }
                }
                Ok::<(), BackendError>(())
            },
            |_| {},
        )
        .await?;
    }
    let mut found_total = 0;
    for (key, n) in found {
        if let Some((left, _, _)) = resume.in_flight.get(&key) {
            let n = n.min(*left);
            found_total += n;
            *resume.confirmed.entry(key).or_default() += n;
        }
    }
    let total = resume.in_flight();
    report.note(format!(
        "{total} message(s) were being published when the last run stopped: {found_total} found at their destination (not published again), {} not found (replayed now; if a consumer had already taken them, they arrive twice)",
        total - found_total
    ));
    resume.in_flight.clear();
    Ok(())
}

/// Whether a failed publish may still have reached the broker (the connection went away
/// before the confirm came): only refusals the broker spelt out are definite.
pub fn outcome_unknown(e: &BackendError) -> bool {
    match e {
        BackendError::Unroutable(_)
        | BackendError::ExchangeNotFound(_)
        | BackendError::QueueNotFound(_)
        | BackendError::InvalidArgument(_)
        | BackendError::Refused(_)
        | BackendError::Unsupported { .. }
        | BackendError::Auth { .. }
        | BackendError::NotSent(_) => false,
        BackendError::Broker(text) => !text.contains("(nack)"),
        BackendError::Unreachable { .. }
        | BackendError::Timeout { .. }
        | BackendError::Unconfirmed(_) => true,
    }
}

/// Destinations grouped for the report: a queue, an exchange (whatever the key), a topic.
fn group(d: &Destination) -> String {
    match d {
        Destination::Exchange { exchange, .. } if !exchange.is_empty() => {
            format!("exchange {exchange}")
        }
        Destination::Topic { topic, .. } => format!("topic {topic}"),
        other => destination_text(other),
    }
}

/// How many messages go out together: journalled, published (confirms awaited together),
/// then acked in one go.
pub const BATCH: usize = 1_000;

/// Progress, for the TUI and long CLI runs: messages looked at, of how many.
pub type OnProgress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// Replay dead letters from `source`. With `journal` the replay is recorded (and resumable);
/// `resume` carries what an earlier run of it left behind.
pub async fn replay(
    backend: &dyn Backend,
    source: &str,
    plan: &Plan,
    mut journal: Option<&mut Journal>,
    mut resume: Resume,
    progress: OnProgress<'_>,
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let mut report = Report {
        source: source.to_string(),
        journal: journal.as_ref().map(|j| j.path().display().to_string()),
        ..Report::default()
    };
    let publisher = backend
        .publisher()
        .ok_or_else(|| BackendError::Unsupported {
            what: "publishing (a replay publishes copies)".into(),
            backend: backend.info().kind.as_str(),
        })?;
    let detail = backend.describe_queue(source).await?;
    let is_log = detail.summary.kind.is_log();
    check_advance(backend, plan, is_log)?;
    let topology = match backend.taker() {
        Some(t) if !is_log => t.topology().await.ok(),
        _ => None,
    };
    settle_in_flight(backend, &mut resume, topology.as_ref(), &mut report).await?;
    let mut budget = plan.limit.map(|l| l.saturating_sub(resume.replayed_before));
    if is_log || backend.taker().is_none() {
        replay_log(
            backend,
            publisher,
            &detail,
            plan,
            &mut journal,
            &mut resume,
            &mut budget,
            &mut report,
            progress,
        )
        .await?;
    } else if let Some(taker) = backend.taker() {
        replay_queue(
            taker,
            publisher,
            source,
            plan,
            topology.as_ref(),
            &mut journal,
            &mut resume,
            &mut budget,
            &mut report,
            progress,
        )
        .await?;
    }
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    // A stopped replay has no end: `--resume` finds it by that. So has one whose group
    // commit or record deletion failed: a resume replays nothing again and retries that.
    if let (Some(j), None, None) = (journal.as_mut(), &report.stopped, &report.advance_failed) {
        j.append(&Entry::End {
            summary: json!({"replayed": report.replayed, "failed": report.failed.len(), "stopped": report.stopped}),
        })?;
        j.sync()?;
    }
    Ok(report)
}

/// Decide, for one message, whether and where it goes; None when it stays.
fn choose(
    m: &Message,
    key: &str,
    plan: &Plan,
    is_log: bool,
    topology: Option<&Topology>,
    budget: &mut Option<u64>,
    report: &mut Report,
) -> Option<(Destination, Message)> {
    if !plan.selects(m, key) {
        report.not_selected += 1;
        return None;
    }
    if *budget == Some(0) {
        report.not_selected += 1;
        return None;
    }
    let (dest, note) = match plan.destination(m, is_log, topology) {
        Ok(d) => d,
        Err(reason) => {
            report.skipped.push(item(m, key, None, reason));
            return None;
        }
    };
    if let Some(n) = note {
        report.note(n);
    }
    let count = replay_count(m);
    if count >= plan.max_replays && !plan.force {
        report.skipped.push(item(
            m,
            key,
            Some(&dest),
            format!(
                "already replayed {count} time(s), the loop guard's limit (--max-replays {}); it keeps dying: look at why, or --force",
                plan.max_replays
            ),
        ));
        return None;
    }
    if let Some(b) = budget.as_mut() {
        *b -= 1;
    }
    let copy = replayed_copy(m, key, matches!(dest, Destination::Topic { .. }));
    Some((dest, copy))
}

#[allow(clippy::too_many_arguments)]
async fn replay_queue(
    taker: &dyn Take,
    publisher: &dyn Publish,
    source: &str,
    plan: &Plan,
    topology: Option<&Topology>,
    journal: &mut Option<&mut Journal>,
    resume: &mut Resume,
    budget: &mut Option<u64>,
    report: &mut Report,
    progress: OnProgress<'_>,
) -> Result<(), ReplayError> {
    let mut session = taker.take(source, plan.force).await?;
    let depth = session.depth();
    let outcome = replay_queue_batches(
        session.as_mut(),
        publisher,
        plan,
        topology,
        journal,
        resume,
        budget,
        report,
        progress,
        depth,
    )
    .await;
    let unresolved = resume.unresolved();
    if unresolved > 0 && outcome.is_ok() {
        report.note(format!(
            "{unresolved} messages the interrupted run had replayed were no longer in the queue: it had removed them before it stopped"
        ));
    }
    // Whatever happened, everything not acked goes back to its place.
    let released = session.release().await;
    match (outcome, released) {
        (Err(e), _) => {
            report.stopped = Some(e.to_string());
            Ok(())
        }
        (Ok(()), Err(e)) => {
            report.note(format!(
                "returning the messages not replayed failed ({e}); the broker returns them when the channel closes"
            ));
            Ok(())
        }
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// What became of one sent copy, recorded in the journal and the report.
enum Outcome {
    Confirmed,
    Failed,
    /// The broker may or may not have it: neither confirmed nor failed, so a resumed run
    /// looks for it at its destination before sending it again.
    Unknown(BackendError),
}

/// Append `e` unless an earlier write failed; the first failure is kept in `failed`.
fn write(journal: &mut Option<&mut Journal>, e: &Entry, failed: &mut Option<JournalError>) {
    if let (Some(j), None) = (journal.as_deref_mut(), failed.as_ref())
        && let Err(err) = j.append(e)
    {
        *failed = Some(err);
    }
}

/// Sync the journal unless an earlier write failed; the first failure is kept in `failed`.
fn sync(journal: &mut Option<&mut Journal>, failed: &mut Option<JournalError>) {
    if let (Some(j), None) = (journal.as_deref_mut(), failed.as_ref())
        && let Err(err) = j.sync()
    {
        *failed = Some(err);
    }
}

/// Count one copy's outcome in the report and the journal. The report counts what the
/// broker said even when the journal could not be written (`failed` then says why).
fn record(
    journal: &mut Option<&mut Journal>,
    report: &mut Report,
    (key, dest, original): (&str, &Destination, &Message),
    result: crate::backend::Result<crate::backend::PublishReceipt>,
    stays_in: &str,
    failed: &mut Option<JournalError>,
) -> Outcome {
    match result {
        Err(e) if outcome_unknown(&e) => Outcome::Unknown(e),
        Ok(_) => {
            let e = Entry::Confirmed {
                key: key.to_string(),
            };
            write(journal, &e, failed);
            report.replayed += 1;
            *report.destinations.entry(group(dest)).or_default() += 1;
            Outcome::Confirmed
        }
        Err(e) => {
            let entry = Entry::Failed {
                key: key.to_string(),
                error: e.to_string(),
            };
            write(journal, &entry, failed);
            report.failed.push(item(
                original,
                key,
                Some(dest),
                format!("{e}; the original stays in the {stays_in}"),
            ));
            Outcome::Failed
        }
    }
}

/// Journal each message before it is touched, and sync.
fn journal_takes<'a>(
    journal: &mut Option<&mut Journal>,
    takes: impl Iterator<Item = (&'a str, &'a Destination, &'a Message)>,
) -> Result<(), ReplayError> {
    if let Some(j) = journal.as_deref_mut() {
        for (key, dest, original) in takes {
            j.append(&Entry::Take {
                key: key.to_string(),
                position: original.position,
                dest: destination_json(dest),
                record: message_record(original, &Extractor::default()),
            })?;
        }
        j.sync()?;
    }
    Ok(())
}

/// One batch sent and waiting for its confirms.
struct InFlight {
    /// Originals already replayed by an interrupted run: acked without publishing.
    ack_only: Vec<(u64, String)>,
    sent: Vec<(u64, String, Destination, Message)>,
    confirms: Vec<crate::backend::PendingConfirm>,
}

/// Take the next batch, choose and journal what goes where, and send the copies without
/// waiting for their confirms; None at the end of the queue.
#[allow(clippy::too_many_arguments)]
async fn send_next(
    session: &mut dyn TakeSession,
    publisher: &dyn Publish,
    plan: &Plan,
    topology: Option<&Topology>,
    journal: &mut Option<&mut Journal>,
    resume: &mut Resume,
    budget: &mut Option<u64>,
    report: &mut Report,
) -> Result<Option<InFlight>, ReplayError> {
    if plan.ids.is_empty() && plan.filter.is_none() && *budget == Some(0) {
        return Ok(None);
    }
    let batch: Vec<Taken> = session.next(plan.batch).await?;
    if batch.is_empty() {
        return Ok(None);
    }
    report.scanned += batch.len() as u64;
    let mut ack_only = Vec::new();
    let mut sent = Vec::new();
    let mut items = Vec::new();
    for t in batch {
        let key = message_key(&t.message);
        if resume.take_confirmed(&key) {
            ack_only.push((t.tag, key));
            continue;
        }
        if let Some((dest, copy)) = choose(&t.message, &key, plan, false, topology, budget, report)
        {
            items.push((dest.clone(), copy));
            sent.push((t.tag, key, dest, t.message));
        }
    }
    journal_takes(journal, sent.iter().map(|(_, k, d, m)| (k.as_str(), d, m)))?;
    crate::fault::step("replay.journalled").await;
    let confirms = if items.is_empty() {
        Vec::new()
    } else {
        publisher.send_batch(&items).await
    };
    crate::fault::step("replay.sent").await;
    Ok(Some(InFlight {
        ack_only,
        sent,
        confirms,
    }))
}

/// Wait for a batch's confirms, record them, and only then ack the originals. A journal
/// that cannot be written (a full disk) does not hold back the acks of copies the broker
/// confirmed: each of those originals would otherwise stay beside its copy. The journal,
/// cut back to its last sync, still names them as taken, and a resume finds the copies.
async fn settle(
    b: InFlight,
    session: &mut dyn TakeSession,
    journal: &mut Option<&mut Journal>,
    report: &mut Report,
) -> Result<(), ReplayError> {
    let mut to_ack: Vec<u64> = b.ack_only.iter().map(|(t, _)| *t).collect();
    let mut acked_keys: Vec<String> = b.ack_only.into_iter().map(|(_, k)| k).collect();
    let ack_only = acked_keys.len() as u64;
    let mut lost = None;
    let mut journal_failed = None;
    for ((tag, key, dest, original), confirm) in b.sent.iter().zip(b.confirms) {
        let result = confirm.await;
        let outcome = record(
            journal,
            report,
            (key, dest, original),
            result,
            "dead-letter queue",
            &mut journal_failed,
        );
        match outcome {
            Outcome::Confirmed => {
                to_ack.push(*tag);
                acked_keys.push(key.clone());
            }
            Outcome::Failed => {}
            Outcome::Unknown(e) => {
                lost.get_or_insert(e);
            }
        }
    }
    sync(journal, &mut journal_failed);
    crate::fault::step("replay.confirmed").await;
    // Only now, with every copy confirmed (and recorded, if the disk let us), are the
    // originals removed. The ack returns once the broker has it (a round trip on the
    // channel), so a line saying so is never a hope.
    if let Err(e) = session.ack(&to_ack).await {
        report.unsure += to_ack.len() as u64 - ack_only;
        return Err(e.into());
    }
    report.already_replayed += ack_only;
    *report.removed.get_or_insert(0) += to_ack.len() as u64 - ack_only;
    crate::fault::step("replay.acked").await;
    // Synced at once: a resume removes, for each confirmed copy not recorded as acked, one
    // message with the same key, so the time in which the broker has removed originals
    // the journal does not know of (when a twin, a dead letter published twice, would be
    // taken for one) is kept to the moment between the ack's answer and this write.
    write(
        journal,
        &Entry::Acked { keys: acked_keys },
        &mut journal_failed,
    );
    sync(journal, &mut journal_failed);
    crate::fault::step("replay.acked_journalled").await;
    if let Some(e) = journal_failed {
        return Err(e.into());
    }
    match lost {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Two batches in flight: while the broker confirms one, the next is taken, journalled
/// and sent (after the first's sends, so the order is kept). An interruption leaves the
/// second batch journalled as in flight, which a resume resolves.
#[allow(clippy::too_many_arguments)]
async fn replay_queue_batches(
    session: &mut dyn TakeSession,
    publisher: &dyn Publish,
    plan: &Plan,
    topology: Option<&Topology>,
    journal: &mut Option<&mut Journal>,
    resume: &mut Resume,
    budget: &mut Option<u64>,
    report: &mut Report,
    progress: OnProgress<'_>,
    depth: u64,
) -> Result<(), ReplayError> {
    let mut in_flight = send_next(
        session, publisher, plan, topology, journal, resume, budget, report,
    )
    .await?;
    while let Some(current) = in_flight.take() {
        let next = send_next(
            session, publisher, plan, topology, journal, resume, budget, report,
        )
        .await;
        if let Err(e) = settle(current, session, journal, report).await {
            // The next batch is out already: settle it as well, so that no original
            // whose copy the broker confirmed stays behind beside it.
            if let Ok(Some(next)) = next {
                let _ = settle(next, session, journal, report).await;
            }
            return Err(e);
        }
        progress(report.scanned, depth);
        in_flight = next?;
    }
    Ok(())
}

/// `--commit-group` and `--delete-records` are for logs whose backend can do them.
fn check_advance(backend: &dyn Backend, plan: &Plan, is_log: bool) -> Result<(), ReplayError> {
    if plan.commit_group.is_none() && !plan.delete_records {
        return Ok(());
    }
    if !is_log {
        return Err(ReplayError::Invalid(
            "--commit-group and --delete-records are for topics; a queue's replayed messages are removed from it anyway".into(),
        ));
    }
    if backend.advancer().is_none() {
        return Err(BackendError::Unsupported {
            what: "committing groups or deleting records".into(),
            backend: backend.info().kind.as_str(),
        }
        .into());
    }
    Ok(())
}

/// Per partition of a log: the offset after the last record of the unbroken run of replayed
/// records from the first one read, and whether that run is still unbroken. Only that far
/// may a group be committed or records deleted: past it lies a record that was not replayed.
#[derive(Debug, Default)]
struct Runs(BTreeMap<i32, (Option<i64>, bool)>);

impl Runs {
    fn record(&mut self, partition: Option<i32>, offset: Option<i64>, replayed: bool) {
        let (Some(p), Some(o)) = (partition, offset) else {
            return;
        };
        let (upto, open) = self.0.entry(p).or_insert((None, true));
        if !*open {
            return;
        }
        if replayed {
            *upto = Some(o.saturating_add(1));
        } else {
            *open = false;
        }
    }

    fn upto(&self) -> Vec<(i32, i64)> {
        self.0
            .iter()
            .filter_map(|(p, (upto, _))| upto.map(|u| (*p, u)))
            .collect()
    }
}

/// After a log's replay, when asked: commit the group and delete records up to `runs`.
/// A failure is reported; the replayed copies stand either way.
async fn advance(backend: &dyn Backend, name: &str, plan: &Plan, runs: &Runs, report: &mut Report) {
    let Some(advancer) = backend.advancer() else {
        return;
    };
    let upto = runs.upto();
    if upto.is_empty() {
        if plan.commit_group.is_some() || plan.delete_records {
            report.note(format!(
                "no record of \"{name}\" was replayed from the start of its partition: no group committed, no record deleted"
            ));
        }
        return;
    }
    if let Some(group) = &plan.commit_group {
        match advancer.commit_group(name, group, &upto).await {
            Ok(moved) => {
                report.note(format!(
                    "group \"{group}\" committed past the replayed records of \"{name}\" on {} partition(s)",
                    moved.len()
                ));
                if !moved.is_empty() && moved.iter().all(|(_, from, _)| from.is_none()) {
                    report.note(format!(
                        "group \"{group}\" had no committed offset on \"{name}\" before: if that is not the group that reads it, check the name"
                    ));
                }
                report
                    .advanced
                    .extend(moved.into_iter().map(|(partition, from, to)| Advanced {
                        partition,
                        action: "commit",
                        from,
                        to,
                    }));
            }
            Err(e) => {
                report.advance_failed = Some(e.to_string());
                return;
            }
        }
    }
    if plan.delete_records {
        match advancer.delete_records(name, &upto).await {
            Ok(()) => report
                .advanced
                .extend(upto.iter().map(|(partition, to)| Advanced {
                    partition: *partition,
                    action: "delete",
                    from: None,
                    to: *to,
                })),
            Err(e) => report.advance_failed = Some(e.to_string()),
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn replay_log(
    backend: &dyn Backend,
    publisher: &dyn Publish,
    detail: &crate::model::QueueDetail,
    plan: &Plan,
    journal: &mut Option<&mut Journal>,
    resume: &mut Resume,
    budget: &mut Option<u64>,
    report: &mut Report,
    progress: OnProgress<'_>,
) -> Result<(), ReplayError> {
    let total = detail.summary.messages.unwrap_or(0);
    let name = &detail.summary.name;
    let mut runs = Runs::default();
    if let Some(exporter) = backend.exporter() {
        // Stream the log in batches while replaying them: memory stays at a few batches.
        let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Message>>(4);
        let read = exporter.export(name, None, &PeekFrom::Start, plan.batch, tx);
        let send = async {
            // Owning the receiver drops it when this stops early, which ends the export
            // instead of leaving it blocked on a full channel.
            let mut rx = rx;
            while let Some(page) = rx.recv().await {
                replay_log_page(
                    publisher, page, plan, journal, resume, budget, report, progress, total,
                    &mut runs,
                )
                .await?;
                if report.stopped.is_some() {
                    break;
                }
            }
            Ok::<(), ReplayError>(())
        };
        let (read, sent) = tokio::join!(read, send);
        sent?;
        read?;
    } else {
        let mut pages: Vec<Vec<Message>> = Vec::new();
        let mut notes = Vec::new();
        let scan = ScanOptions {
            page_size: plan.batch,
            ..ScanOptions::default()
        };
        read_all(
            backend,
            detail,
            &scan,
            |page| {
                pages.push(page.to_vec());
                Ok::<(), BackendError>(())
            },
            |n| notes.push(n.to_string()),
        )
        .await?;
        for n in notes {
            report.note(n);
        }
        for page in pages {
            replay_log_page(
                publisher, page, plan, journal, resume, budget, report, progress, total, &mut runs,
            )
            .await?;
            if report.stopped.is_some() {
                break;
            }
        }
    }
    if plan.commit_group.is_some() || plan.delete_records {
        advance(backend, name, plan, &runs, report).await;
    }
    if !plan.delete_records {
        report.note(format!(
            "\"{name}\" is a log: its records stay where they are (replaying never modifies it)"
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn replay_log_page(
    publisher: &dyn Publish,
    page: Vec<Message>,
    plan: &Plan,
    journal: &mut Option<&mut Journal>,
    resume: &mut Resume,
    budget: &mut Option<u64>,
    report: &mut Report,
    progress: OnProgress<'_>,
    total: u64,
    runs: &mut Runs,
) -> Result<(), ReplayError> {
    report.scanned += page.len() as u64;
    let mut sending = Vec::new();
    // Each record in order: replayed before (Some(None)), sent as `sending[i]` (Some(Some(i))),
    // or left alone (None); the runs of replayed records are known once confirms are in.
    let mut fate = Vec::with_capacity(page.len());
    for m in page {
        let key = message_key(&m);
        let place = (m.partition, m.offset);
        if resume.take_confirmed(&key) {
            report.already_replayed += 1;
            fate.push((place, Some(None)));
            continue;
        }
        if let Some((dest, copy)) = choose(&m, &key, plan, true, None, budget, report) {
            fate.push((place, Some(Some(sending.len()))));
            sending.push((key, dest, copy, m));
        } else {
            fate.push((place, None));
        }
    }
    if sending.is_empty() {
        for ((p, o), f) in fate {
            runs.record(p, o, f.is_some());
        }
        progress(report.scanned, total);
        return Ok(());
    }
    journal_takes(
        journal,
        sending.iter().map(|(k, d, _, m)| (k.as_str(), d, m)),
    )?;
    let items: Vec<(Destination, Message)> = sending
        .iter()
        .map(|(_, d, c, _)| (d.clone(), c.clone()))
        .collect();
    crate::fault::step("replay.journalled").await;
    let results = publisher.publish_batch(&items).await;
    crate::fault::step("replay.published").await;
    let mut confirmed = vec![false; sending.len()];
    let mut journal_failed = None;
    for (((key, dest, _, original), r), ok) in sending.iter().zip(results).zip(&mut confirmed) {
        match record(
            journal,
            report,
            (key, dest, original),
            r,
            "dead-letter topic",
            &mut journal_failed,
        ) {
            Outcome::Confirmed => *ok = true,
            Outcome::Failed => {}
            Outcome::Unknown(e) => {
                report.stopped.get_or_insert_with(|| e.to_string());
            }
        }
    }
    for ((p, o), f) in fate {
        let replayed = match f {
            Some(None) => true,
            Some(Some(i)) => confirmed[i],
            None => false,
        };
        runs.record(p, o, replayed);
    }
    sync(journal, &mut journal_failed);
    crate::fault::step("replay.confirmed").await;
    progress(report.scanned, total);
    match journal_failed {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// The plan without touching anything: read the dead letters through the safe peek and
/// say, per destination, how many would go, and which would be skipped and why.
pub async fn dry_run(
    backend: &dyn Backend,
    source: &str,
    plan: &Plan,
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let mut report = Report {
        source: source.to_string(),
        dry_run: true,
        ..Report::default()
    };
    let detail = backend.describe_queue(source).await?;
    let is_log = detail.summary.kind.is_log();
    check_advance(backend, plan, is_log)?;
    if let Some(group) = &plan.commit_group {
        report.note(format!(
            "would then commit group \"{group}\" past the records replayed, per partition up to the first that is not"
        ));
    }
    if plan.delete_records {
        report.note(
            "would then delete the records replayed, per partition up to the first that is not"
                .to_string(),
        );
    }
    let topology = match backend.taker() {
        Some(t) if !is_log => t.topology().await.ok(),
        _ => None,
    };
    let mut budget = plan.limit;
    let mut notes = Vec::new();
    let scan = ScanOptions {
        force: plan.force,
        ..ScanOptions::default()
    };
    read_all(
        backend,
        &detail,
        &scan,
        |page| {
            for m in page {
                report.scanned += 1;
                let key = message_key(m);
                if let Some((dest, _)) = choose(
                    m,
                    &key,
                    plan,
                    is_log,
                    topology.as_ref(),
                    &mut budget,
                    &mut report,
                ) {
                    report.replayed += 1;
                    *report.destinations.entry(group(&dest)).or_default() += 1;
                }
            }
            Ok::<(), BackendError>(())
        },
        |n| notes.push(n.to_string()),
    )
    .await?;
    for n in notes {
        report.note(n);
    }
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}

/// What a purge or delete removed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Removal {
    pub queue: String,
    pub removed: u64,
    pub scanned: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Asked for by --ids but not found.
    pub not_found: Vec<String>,
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The journal that lets an interrupted run be finished with `--resume`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// Resumed: messages the interrupted run had backed up, removed now.
    #[serde(skip_serializing_if = "is_zero")]
    pub finished: u64,
    /// Written to the backup, but the broker did not answer their removal (the connection
    /// went): maybe still in the queue too, until `--resume` settles it.
    #[serde(skip_serializing_if = "is_zero")]
    pub unsure: u64,
    pub elapsed_ms: u64,
}

/// A purge or delete, as its journal's begin records it (so that a resume does the same).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct RemovalOptions {
    /// `purge` or `delete`.
    pub action: String,
    /// delete: the message ids or fingerprints asked for.
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub force: bool,
    /// The backup file the removed messages are written to.
    pub backup: String,
}

/// What an interrupted purge or delete left behind: messages written to the backup whose
/// removal the broker never answered (they may still be in the queue), per fingerprint.
#[derive(Debug, Default)]
pub struct RemovalResume {
    unsure: HashMap<String, u64>,
    /// delete: the ids and fingerprints the backup holds already, not to be looked for again.
    found: std::collections::HashSet<String>,
}

impl RemovalResume {
    /// From the backup's records (fingerprint and message id of each) and the journal.
    pub fn new(backed_up: &[(String, Option<String>)], entries: &[Entry]) -> Self {
        let mut r = RemovalResume::default();
        for (key, id) in backed_up {
            *r.unsure.entry(key.clone()).or_default() += 1;
            r.found.insert(key.clone());
            if let Some(id) = id {
                r.found.insert(id.clone());
            }
        }
        for e in entries {
            if let Entry::Acked { keys } = e {
                for k in keys {
                    if let Some(n) = r.unsure.get_mut(k) {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
        r.unsure.retain(|_, n| *n > 0);
        r
    }

    /// Backed up by the interrupted run, removal unanswered.
    pub fn unsure(&self) -> u64 {
        self.unsure.values().sum()
    }

    fn take_unsure(&mut self, key: &str) -> bool {
        match self.unsure.get_mut(key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        }
    }
}

/// Refuse a new replay of `source` while an earlier one on the same broker is unfinished:
/// it may have left copies whose originals are still there (or the other way round), and
/// a new replay would send those a second time. Only its own resume knows which they are.
pub fn check_no_unfinished_replay(target: &str, source: &str) -> Result<(), ReplayError> {
    match journal::unfinished_of(target, source)?.first() {
        Some(open) => Err(ReplayError::Invalid(format!(
            "an earlier replay of \"{source}\" on {target} did not finish ({}): a new one could send some messages twice. Finish it with: mqscope replay --resume {1} (nothing is sent twice), or, after looking at it, give it up with: mqscope replay --abandon {1}",
            open.display(),
            journal::shell_word(&open.display().to_string())
        ))),
        None => Ok(()),
    }
}

/// Start a purge or delete of `queue` with a backup (at `backup_path`, or in the state
/// directory) and a journal of what the broker confirms removing: together they let an
/// interrupted run be finished without a message in two places. Refused while an earlier
/// run on the same queue is unfinished: it may have backed up messages whose removal the
/// broker never answered, which a new run would back up a second time.
pub fn start_removal(
    target: &str,
    queue: &str,
    action: &str,
    ids: &[String],
    force: bool,
    backup_path: Option<&std::path::Path>,
) -> Result<(journal::Backup, Journal), ReplayError> {
    if let Some((path, _)) = journal::unfinished_removals_of(target, queue)?.first() {
        return Err(ReplayError::Invalid(format!(
            "an earlier {action} of \"{queue}\" on {target} did not finish ({}): finish it first with: mqscope {action} {} --resume (nothing is backed up or removed twice)",
            path.display(),
            journal::shell_word(queue)
        )));
    }
    let backup = journal::Backup::create(queue, target, backup_path)?;
    let id = journal::unique_id();
    let mut j = Journal::create_removal(&id)?;
    let opts = RemovalOptions {
        action: action.to_string(),
        ids: ids.to_vec(),
        force,
        backup: backup.path().display().to_string(),
    };
    j.append(&Entry::Begin {
        id: id.clone(),
        time: crate::model::time::rfc3339(&chrono::Utc::now()),
        target: target.to_string(),
        source: queue.to_string(),
        options: serde_json::to_value(&opts).unwrap_or(Value::Null),
    })?;
    j.sync()?;
    Ok((backup, j))
}

/// Remove messages from a queue, each written to `backup` (and synced) before it goes:
/// all of them (`ids` empty) or those whose message id or key is listed. Messages not
/// chosen keep their place and order. With a `journal`, each batch's removal is recorded
/// once the broker has answered it, and `resume` carries what an interrupted run left:
/// messages it backed up whose removal went unanswered are removed now without being
/// written a second time, so the backup holds each removed message exactly once.
#[allow(clippy::too_many_arguments)]
pub async fn remove(
    taker: &dyn Take,
    queue: &str,
    ids: &[String],
    force: bool,
    mut backup: Option<&mut journal::Backup>,
    mut journal: Option<&mut Journal>,
    mut resume: RemovalResume,
    progress: OnProgress<'_>,
) -> Result<Removal, ReplayError> {
    let started = Instant::now();
    let mut out = Removal {
        queue: queue.to_string(),
        backup: backup.as_ref().map(|b| b.path().display().to_string()),
        journal: journal.as_ref().map(|j| j.path().display().to_string()),
        ..Removal::default()
    };
    let fresh = resume.unsure() == 0 && resume.found.is_empty();
    let mut session = match taker.take(queue, force).await {
        Ok(s) => s,
        Err(e) => {
            // Nothing was touched: a new run's journal is closed, so that it does not
            // hold up the next one. A resumed run's stays open: it still has work.
            if let (Some(j), true) = (journal.as_deref_mut(), fresh) {
                let end = Entry::End {
                    summary: json!({"removed": 0, "error": e.to_string()}),
                };
                let _ = j.append(&end).and_then(|_| j.sync());
            }
            return Err(e.into());
        }
    };
    let depth = session.depth();
    let restore_to = Destination::Exchange {
        exchange: String::new(),
        routing_key: queue.to_string(),
    };
    let mut wanted: HashMap<&str, bool> = ids
        .iter()
        .map(|i| (i.as_str(), resume.found.contains(i)))
        .collect();
    let result: Result<(), ReplayError> = async {
        loop {
            let all_found = !ids.is_empty() && wanted.values().all(|found| *found);
            if all_found && resume.unsure() == 0 {
                break;
            }
            let batch = session.next(BATCH).await?;
            if batch.is_empty() {
                break;
            }
            out.scanned += batch.len() as u64;
            let mut chosen = Vec::new();
            let mut keys = Vec::new();
            for t in &batch {
                let key = message_key(&t.message);
                if resume.take_unsure(&key) {
                    // In the backup already: the interrupted run's removal of it was
                    // never answered, and here it is, so it was not removed.
                    chosen.push(t.tag);
                    keys.push(key);
                    out.finished += 1;
                    continue;
                }
                if !ids.is_empty() {
                    let id = t.message.properties.message_id.as_deref();
                    let hit = wanted
                        .iter_mut()
                        .find(|(w, _)| **w == key || Some(**w) == id);
                    match hit {
                        Some((_, found)) => *found = true,
                        None => continue,
                    }
                }
                if let Some(b) = backup.as_deref_mut() {
                    b.write(&t.message, &restore_to)?;
                }
                chosen.push(t.tag);
                keys.push(key);
            }
            if let Some(b) = backup.as_deref_mut() {
                crate::fault::step("remove.written").await;
                b.sync()?;
            }
            crate::fault::step("remove.synced").await;
            if let Err(e) = session.ack(&chosen).await {
                out.unsure = chosen.len() as u64;
                return Err(e.into());
            }
            out.removed += chosen.len() as u64;
            crate::fault::step("remove.acked").await;
            if let Some(j) = journal.as_deref_mut() {
                j.append(&Entry::Acked { keys })?;
                j.sync()?;
            }
            progress(out.scanned, depth);
        }
        Ok(())
    }
    .await;
    let released = session.release().await;
    if let Err(e) = result {
        out.stopped = Some(e.to_string());
    }
    if let Err(e) = released {
        out.notes.push(format!(
            "returning the messages not removed failed ({e}); the broker returns them when the channel closes"
        ));
    }
    let left = resume.unsure();
    if left > 0 && out.stopped.is_none() {
        out.notes.push(format!(
            "{left} message(s) the interrupted run had written to the backup were no longer in the queue: its removal of them had gone through"
        ));
    }
    if let (Some(j), None) = (journal, &out.stopped) {
        j.append(&Entry::End {
            summary: json!({"removed": out.removed}),
        })?;
        j.sync()?;
    }
    out.not_found = wanted
        .into_iter()
        .filter(|(_, found)| !found)
        .map(|(w, _)| w.to_string())
        .collect();
    out.not_found.sort();
    out.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(out)
}

/// Replay options from a journal's begin entry.
pub fn options_from(begin: &Entry) -> Option<(String, ReplayOptions)> {
    match begin {
        Entry::Begin {
            source, options, ..
        } => Some((
            source.clone(),
            serde_json::from_value(options.clone()).ok()?,
        )),
        _ => None,
    }
}

/// The journal's first line for a new replay.
pub fn begin_entry(id: &str, target: &str, source: &str, opts: &ReplayOptions) -> Entry {
    Entry::Begin {
        id: id.to_string(),
        time: crate::model::time::rfc3339(&chrono::Utc::now()),
        target: target.to_string(),
        source: source.to_string(),
        options: serde_json::to_value(opts).unwrap_or(Value::Null),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::death::{DeathEvent, DeathReason, record_death};

    fn dead(queue: &str, exchange: &str, key: &str) -> Message {
        let mut m = Message::new("dlq", 0, b"{\"n\":1}".to_vec());
        m.properties.message_id = Some("m-1".into());
        m.headers.insert("tenant", FieldValue::string("acme"));
        record_death(
            &mut m.headers,
            &DeathEvent {
                queue,
                reason: DeathReason::Rejected,
                exchange,
                routing_keys: &[key.to_string()],
                time_secs: 1_700_000_000,
                original_expiration: None,
            },
        );
        m
    }

    #[test]
    fn keys_ignore_death_headers_and_redelivery() {
        let a = dead("billing", "orders", "order.created");
        let mut b = a.clone();
        b.headers.remove("x-death");
        b.redelivered = true;
        b.position = 7;
        assert_eq!(message_key(&a), message_key(&b));
        let mut c = a.clone();
        c.payload = b"other".to_vec().into();
        assert_ne!(message_key(&a), message_key(&c));
        let mut k = Message::new("t.DLT", 0, Vec::new());
        k.partition = Some(2);
        k.offset = Some(40);
        assert_eq!(message_key(&k), "t.DLT/2@40");
    }

    #[test]
    fn the_copy_drops_death_headers_and_counts_replays() {
        let m = dead("billing", "orders", "order.created");
        let copy = replayed_copy(&m, "k1", false);
        assert!(copy.headers.get("x-death").is_none());
        assert!(
            copy.headers
                .iter()
                .all(|(k, _)| !k.starts_with("x-first-death"))
        );
        assert_eq!(copy.headers.get("tenant"), m.headers.get("tenant"));
        assert_eq!(replay_count(&copy), 1);
        assert_eq!(
            copy.headers.get(REPLAYED_FROM).and_then(|v| v.as_bytes()),
            Some(&b"dlq@0"[..])
        );
        let again = replayed_copy(&copy, "k2", true);
        assert_eq!(replay_count(&again), 2);
        assert_eq!(
            again.headers.get(REPLAY_COUNT).and_then(|v| v.as_bytes()),
            Some(&b"2"[..])
        );
        assert_eq!(copy.payload, m.payload);
        assert_eq!(copy.properties, m.properties);
    }

    #[test]
    fn destinations_from_x_death() {
        let plan = ReplayOptions::default().plan().unwrap();
        let m = dead("billing", "orders", "order.created");
        let (d, note) = plan.destination(&m, false, None).unwrap();
        assert_eq!(
            d,
            Destination::Exchange {
                exchange: "orders".into(),
                routing_key: "order.created".into()
            }
        );
        assert!(note.is_none());
        // Published straight to the queue: the default exchange.
        let m = dead("billing", "", "billing");
        let (d, _) = plan.destination(&m, false, None).unwrap();
        assert_eq!(
            d,
            Destination::Exchange {
                exchange: "".into(),
                routing_key: "billing".into()
            }
        );
        // No history: skipped unless --to.
        let plain = Message::new("dlq", 0, Vec::new());
        assert!(plan.destination(&plain, false, None).is_err());
        let to = ReplayOptions {
            to: Some("queue:retry".into()),
            ..Default::default()
        }
        .plan()
        .unwrap();
        let (d, _) = to.destination(&plain, false, None).unwrap();
        assert_eq!(
            d,
            Destination::Exchange {
                exchange: "".into(),
                routing_key: "retry".into()
            }
        );
    }

    #[test]
    fn fan_out_goes_straight_to_the_queue_that_died() {
        use crate::model::topology::{Binding, DestinationKind, Exchange, ExchangeKind};
        let t = Topology {
            exchanges: vec![Exchange {
                name: "orders".into(),
                kind: ExchangeKind::Fanout,
            }],
            queues: ["billing".to_string(), "shipping".to_string()].into(),
            bindings: ["billing", "shipping"]
                .iter()
                .map(|q| Binding {
                    source: "orders".into(),
                    destination: q.to_string(),
                    destination_kind: DestinationKind::Queue,
                    routing_key: String::new(),
                    arguments: FieldTable::new(),
                })
                .collect(),
        };
        let plan = ReplayOptions::default().plan().unwrap();
        let m = dead("billing", "orders", "order.created");
        let (d, note) = plan.destination(&m, false, Some(&t)).unwrap();
        assert_eq!(
            d,
            Destination::Exchange {
                exchange: "".into(),
                routing_key: "billing".into()
            }
        );
        assert!(note.unwrap().contains("1 other queue"));
        let via = ReplayOptions {
            via: Some("exchange".into()),
            ..Default::default()
        }
        .plan()
        .unwrap();
        let (d, _) = via.destination(&m, false, Some(&t)).unwrap();
        assert!(matches!(d, Destination::Exchange { exchange, .. } if exchange == "orders"));
    }

    #[test]
    fn filters() {
        let m = dead("billing", "orders", "order.created");
        let f = |s: &str| Filter::parse(s).unwrap().matches(&m);
        assert!(f("reason=rejected"));
        assert!(f("queue=billing and exchange=orders"));
        assert!(!f("queue=billing and exchange=payments"));
        assert!(f("header.tenant=acme"));
        assert!(f("body~\"n\":\\s*1"));
        assert!(f("message_id!=m-2"));
        assert!(Filter::parse("colour=red").is_err());
        assert!(Filter::parse("reason").is_err());
        assert!(Filter::parse("body~(").is_err());
    }

    #[test]
    fn resume_state_from_a_journal() {
        let dest = destination_json(&Destination::Exchange {
            exchange: "".into(),
            routing_key: "q".into(),
        });
        let take = |k: &str| Entry::Take {
            key: k.into(),
            position: 0,
            dest: dest.clone(),
            record: json!({"headers": {}}),
        };
        let entries = vec![
            take("a"),
            take("b"),
            take("c"),
            Entry::Confirmed { key: "a".into() },
            Entry::Confirmed { key: "b".into() },
            Entry::Acked {
                keys: vec!["a".into()],
            },
        ];
        let mut r = Resume::from_entries(&entries);
        // b was confirmed but not acked: remove it without publishing again.
        assert!(r.take_confirmed("b"));
        assert!(!r.take_confirmed("b"));
        assert!(!r.take_confirmed("a"));
        // c was in flight.
        assert_eq!(r.in_flight(), 1);
        assert_eq!(r.replayed_before, 2);
    }
}
