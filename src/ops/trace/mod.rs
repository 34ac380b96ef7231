//! Tracing a correlation ID: every place its copies sit, read without consuming, in the
//! order they happened (`graph` shapes them into a journey, `follow` keeps watching).

pub mod follow;
pub mod graph;

use crate::backend::{Backend, BackendError, Export, Keep, PeekFrom};
pub use crate::model::correlation::{Extractor, IdMatcher, Rule, traceparent_trace_id};
use crate::model::identity::{REPLAY_COUNT, REPLAYED_FROM};
use crate::model::{
    DeathReason, DeathSource, Message, MessageView, QueueDetail, QueueKind, QueueSummary,
};
use crate::ops::scan::{ScanOptions, read_all};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering as CmpOrdering;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// How a copy got into a dead-letter queue: from where, why, how often.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetterHop {
    pub from: String,
    pub reason: DeathReason,
    pub count: u64,
    /// Kafka: the partition and offset of the original record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    /// The consumer's exception or error, where the dead-letter convention records one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The exchange and routing key the message had before it died (`x-death`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exchange: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routing_key: Option<String>,
}

/// What holds a hop: a queue, stream or topic read by a scan, or an exchange a live
/// follow saw a message published to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HopKind {
    Queue,
    Stream,
    Topic,
    Exchange,
}

impl HopKind {
    pub fn as_str(self) -> &'static str {
        match self {
            HopKind::Queue => "queue",
            HopKind::Stream => "stream",
            HopKind::Topic => "topic",
            HopKind::Exchange => "exchange",
        }
    }
}

impl From<QueueKind> for HopKind {
    fn from(k: QueueKind) -> Self {
        match k {
            QueueKind::Queue => HopKind::Queue,
            QueueKind::Stream => HopKind::Stream,
            QueueKind::Topic => HopKind::Topic,
        }
    }
}

/// One place the correlation ID was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    pub queue: String,
    pub kind: HopKind,
    pub position: Option<u64>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
    /// When it reached this queue: the dead-lettering time for a dead letter, else the
    /// message's own time.
    pub timestamp: Option<String>,
    pub exchange: Option<String>,
    pub routing_key: Option<String>,
    pub message_id: Option<String>,
    pub dead_letter: Option<DeadLetterHop>,
    /// `x-mqscope-replayed-from`, when mqscope replayed this copy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replayed_from: Option<String>,
    /// `x-mqscope-replay-count`: how many times the original has been replayed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay_count: Option<u64>,
    /// Seen by `--follow` as it happened, not found by the scan.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub live: bool,
    /// A live publish's queues, where the broker says (RabbitMQ with tracing on); an
    /// empty list is an unroutable publish.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub routed_queues: Option<Vec<String>>,
    #[serde(skip)]
    pub time: Option<DateTime<Utc>>,
    /// When the message itself was published (a dead letter keeps its original's time):
    /// copies of one publish share it.
    #[serde(skip)]
    pub published: Option<DateTime<Utc>>,
}

impl Hop {
    /// Where in its queue or log the message sits, as `name#position` or `name[p]@offset`.
    pub fn place(&self) -> String {
        match (self.kind, self.partition, self.offset, self.position) {
            (HopKind::Exchange, ..) => format!("exchange {}", self.queue),
            (_, Some(p), Some(o), _) => format!("{}[{p}]@{o}", self.queue),
            (_, None, Some(o), _) => format!("{}@{o}", self.queue),
            (_, _, _, Some(pos)) => format!("{}#{pos}", self.queue),
            _ => self.queue.clone(),
        }
    }

    /// The identity of a stored record, so one seen twice (by the scan and the live
    /// follow) is reported once. Queue positions move; only log offsets identify.
    pub fn record_key(&self) -> Option<(String, Option<i32>, i64)> {
        self.offset
            .filter(|_| self.kind != HopKind::Exchange)
            .map(|o| (self.queue.clone(), self.partition, o))
    }

    /// Whether both are the same stored record ([`Hop::record_key`] without allocating).
    pub fn same_record(&self, other: &Hop) -> bool {
        self.offset.is_some()
            && self.kind != HopKind::Exchange
            && other.kind != HopKind::Exchange
            && self.offset == other.offset
            && self.partition == other.partition
            && self.queue == other.queue
    }
}

/// Time order: hops without a time last, ties broken by place.
pub fn hop_order(a: &Hop, b: &Hop) -> CmpOrdering {
    (
        a.time.is_none(),
        a.time,
        &a.queue,
        a.partition,
        a.offset,
        a.position,
    )
        .cmp(&(
            b.time.is_none(),
            b.time,
            &b.queue,
            b.partition,
            b.offset,
            b.position,
        ))
}

/// One line: how many queues it reached, how many copies died, where it was last seen.
pub fn summary_of(hops: &[Hop]) -> String {
    let mut queues: Vec<&str> = hops
        .iter()
        .filter(|h| h.kind != HopKind::Exchange)
        .map(|h| h.queue.as_str())
        .collect();
    queues.sort();
    queues.dedup();
    let dead = hops.iter().filter(|h| h.dead_letter.is_some()).count();
    let Some(last) = hops.last().map(|h| match h.kind {
        HopKind::Exchange => format!("exchange {}", h.queue),
        _ => h.queue.clone(),
    }) else {
        return "found nowhere".to_string();
    };
    format!(
        "reached {} queue{}, {dead} dead-lettered, last seen in {last}",
        queues.len(),
        if queues.len() == 1 { "" } else { "s" }
    )
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub queue: String,
    pub reason: String,
}

/// Everything one trace found, hops in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trace {
    pub correlation_id: String,
    pub scanned: u64,
    pub queues_scanned: u64,
    pub hops: Vec<Hop>,
    /// Queues that could not be read safely or at all, and why.
    pub skipped: Vec<Skipped>,
    pub elapsed_ms: u64,
}

impl Trace {
    /// One line: how many queues it reached, how many copies died, where it was last seen.
    pub fn summary(&self) -> String {
        summary_of(&self.hops)
    }
}

/// Which queues to search and from when.
#[derive(Debug, Clone)]
pub struct TraceOptions {
    /// Shell-style pattern on queue and topic names (`*`, `?`); None searches everything.
    pub queues: Option<String>,
    /// Skip messages older than this; on logs the read starts there.
    pub since: Option<DateTime<Utc>>,
    pub extractor: Extractor,
    /// Queues read at the same time.
    pub concurrency: usize,
    pub page_size: usize,
    /// Set to stop the scan: it ends after the page being read, without error, with what
    /// it found so far. A read in flight is let finish rather than dropped, so a broker
    /// peek always returns its messages to the queue.
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            queues: None,
            since: None,
            extractor: Extractor::default(),
            concurrency: 4,
            page_size: 1_000,
            cancel: None,
        }
    }
}

/// `*` and `?` as in a shell, everything else literal.
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    regex::Regex::new(&re).is_ok_and(|r| r.is_match(name))
}

/// The hop a matching message makes.
pub fn hop_of(m: &Message, kind: impl Into<HopKind>) -> Hop {
    let kind = kind.into();
    let deaths = m.deaths();
    let newest = deaths.first();
    let dead_letter = newest.map(|d| DeadLetterHop {
        from: d.queue.clone(),
        reason: d.reason,
        count: d.count,
        partition: d.partition,
        offset: d.offset,
        error: d.error.clone(),
        exchange: d.exchange.clone(),
        routing_key: d.routing_keys.first().cloned(),
    });
    // `x-death` times the dead-lettering itself. Kafka dead-letter headers time the
    // original record instead; the dead-letter record's own timestamp is when it died.
    let time = match newest {
        Some(d) if d.source == DeathSource::XDeath => d.time.or(m.timestamp),
        _ => m.timestamp,
    };
    Hop {
        queue: m.queue.clone(),
        kind,
        position: (kind == HopKind::Queue).then_some(m.position),
        partition: m.partition,
        offset: m.offset,
        timestamp: time.as_ref().map(crate::model::time::rfc3339),
        exchange: m.exchange.clone(),
        routing_key: m.routing_key.clone(),
        message_id: m.properties.message_id.clone(),
        dead_letter,
        replayed_from: m.header_text(REPLAYED_FROM).map(Cow::into_owned),
        replay_count: m
            .header_text(REPLAY_COUNT)
            .and_then(|t| t.trim().parse().ok()),
        live: false,
        routed_queues: m.routed_queues.clone(),
        time,
        published: m.timestamp,
    }
}

/// What a running trace reports as it goes, before its result.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceEvent {
    /// How many queues and topics will be read.
    Started { queues: usize },
    /// A place the ID was found, as soon as it is found (not in time order).
    Hit(Box<Hop>),
    /// One queue or topic was read to its end, or skipped (and why).
    QueueDone {
        queue: String,
        skipped: Option<String>,
    },
    /// This many more messages were read.
    Scanned(u64),
}

/// Why a queue's read stopped early.
enum Stop {
    Backend(BackendError),
    Cancelled,
}

impl From<BackendError> for Stop {
    fn from(e: BackendError) -> Self {
        Stop::Backend(e)
    }
}

/// Search every queue and topic (or those `opts.queues` names) for `id`, reading through
/// the backend's peek, so nothing is consumed, reordered or dead-lettered. Queues are read
/// `opts.concurrency` at a time; a queue the backend refuses to read safely (a quorum queue
/// near its delivery limit) is skipped and named.
pub async fn trace(
    backend: &dyn Backend,
    id: &str,
    opts: &TraceOptions,
) -> Result<Trace, BackendError> {
    trace_streaming(backend, id, opts, &|_| {}).await
}

/// [`trace`], reporting each hit, each finished queue and the messages read through
/// `on_event` while it runs (from the task running the trace; keep it quick).
pub async fn trace_streaming(
    backend: &dyn Backend,
    id: &str,
    opts: &TraceOptions,
    on_event: &(dyn Fn(TraceEvent) + Send + Sync),
) -> Result<Trace, BackendError> {
    let started = Instant::now();
    let mut queues = backend.list_queues().await?;
    if let Some(p) = &opts.queues {
        queues.retain(|q| glob_matches(p, &q.name));
    }
    on_event(TraceEvent::Started {
        queues: queues.len(),
    });
    let scanned = AtomicU64::new(0);
    // Topics need their partitions (a describe); queues are read from the listing alone.
    let scan = |summary: QueueSummary| {
        let scanned = &scanned;
        async move {
            if is_cancelled(opts) {
                return None;
            }
            let queue = summary.name.clone();
            let result = scan_one(backend, id, opts, summary, scanned, on_event).await;
            match &result {
                // Read only in part: neither done nor skipped.
                Ok((_, false)) => {}
                Ok((_, true)) => on_event(TraceEvent::QueueDone {
                    queue,
                    skipped: None,
                }),
                Err(s) => on_event(TraceEvent::QueueDone {
                    queue,
                    skipped: Some(s.reason.clone()),
                }),
            }
            Some(result)
        }
    };
    let results: Vec<_> = futures::stream::iter(queues.into_iter().map(scan))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut hops = Vec::new();
    let mut skipped = Vec::new();
    let mut done = 0;
    for r in results.into_iter().flatten() {
        match r {
            Ok((h, complete)) => {
                done += u64::from(complete);
                hops.extend(h);
            }
            Err(s) => skipped.push(s),
        }
    }
    hops.sort_by(hop_order);
    skipped.sort_by(|a, b| a.queue.cmp(&b.queue));
    Ok(Trace {
        correlation_id: id.to_string(),
        scanned: scanned.load(Ordering::Relaxed),
        queues_scanned: done,
        hops,
        skipped,
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
    })
}

/// Read one queue or topic for `id`: its hits, or why it was skipped. A cancelled read
/// returns what it found so far and says it is incomplete.
async fn scan_one(
    backend: &dyn Backend,
    id: &str,
    opts: &TraceOptions,
    summary: QueueSummary,
    scanned: &AtomicU64,
    on_event: &(dyn Fn(TraceEvent) + Send + Sync),
) -> Result<(Vec<Hop>, bool), Skipped> {
    let name = summary.name.clone();
    let kind = summary.kind;
    let skipped = |e: BackendError| Skipped {
        queue: name.clone(),
        reason: e.to_string(),
    };
    if kind == QueueKind::Topic
        && let Some(exporter) = backend.exporter()
    {
        return scan_export(exporter, id, opts, &name, scanned, on_event)
            .await
            .map_err(skipped);
    }
    let detail = if kind == QueueKind::Topic {
        backend.describe_queue(&name).await.map_err(skipped)?
    } else {
        QueueDetail::new(summary)
    };
    let scan_opts = ScanOptions {
        page_size: opts.page_size,
        since: opts.since,
        ..ScanOptions::default()
    };
    let matcher = opts.extractor.matcher(id);
    let mut hops = Vec::new();
    let result = read_all::<Stop>(
        backend,
        &detail,
        &scan_opts,
        |page| {
            scanned.fetch_add(page.len() as u64, Ordering::Relaxed);
            on_event(TraceEvent::Scanned(page.len() as u64));
            for m in page {
                if opts
                    .since
                    .is_some_and(|t| m.timestamp.is_some_and(|ts| ts < t))
                {
                    continue;
                }
                if matcher.matches(m) {
                    let hop = hop_of(m, kind);
                    on_event(TraceEvent::Hit(Box::new(hop.clone())));
                    hops.push(hop);
                }
            }
            if is_cancelled(opts) {
                return Err(Stop::Cancelled);
            }
            Ok(())
        },
        |_| {},
    )
    .await;
    match result {
        Ok(()) => Ok((hops, true)),
        Err(Stop::Cancelled) => Ok((hops, false)),
        Err(Stop::Backend(e)) => Err(skipped(e)),
    }
}

/// Read a whole topic through the backend's streaming export (all partitions at once,
/// from `--since` where given) for `id`, matching where the records are read. A cancelled
/// read returns what it found so far and says it is incomplete.
async fn scan_export(
    exporter: &dyn Export,
    id: &str,
    opts: &TraceOptions,
    name: &str,
    scanned: &AtomicU64,
    on_event: &(dyn Fn(TraceEvent) + Send + Sync),
) -> Result<(Vec<Hop>, bool), BackendError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Message>>(4);
    let from = opts.since.map_or(PeekFrom::Start, PeekFrom::Time);
    let batch = opts.page_size.clamp(1, 1_000);
    let keep: Keep = {
        let (matcher, since) = (opts.extractor.matcher(id), opts.since);
        Arc::new(move |m: &dyn MessageView| {
            // A log's time index finds the first record that late; later ones may still
            // carry earlier times.
            let early = since.is_some_and(|t| m.timestamp().is_some_and(|ts| ts < t));
            !early && matcher.matches(m)
        })
    };
    let mut hops = Vec::new();
    let mut complete = true;
    let mut counted = 0u64;
    let count = |n: u64| {
        scanned.fetch_add(n, Ordering::Relaxed);
        on_event(TraceEvent::Scanned(n));
    };
    let check = async {
        // Owning the receiver drops it on cancel, which stops the export.
        let mut rx = rx;
        // Each batch stands for `batch` records read, but the last for fewer: count each
        // one when the next arrives, and the last from what the export says it read.
        let mut behind = 0u64;
        while let Some(found) = rx.recv().await {
            if behind > 0 {
                count(behind);
                counted += behind;
            }
            behind = batch as u64;
            for m in &found {
                let hop = hop_of(m, QueueKind::Topic);
                on_event(TraceEvent::Hit(Box::new(hop.clone())));
                hops.push(hop);
            }
            if is_cancelled(opts) {
                complete = false;
                // Stop the export, but keep the hits of batches already on their way.
                rx.close();
                while let Some(found) = rx.recv().await {
                    for m in &found {
                        let hop = hop_of(m, QueueKind::Topic);
                        on_event(TraceEvent::Hit(Box::new(hop.clone())));
                        hops.push(hop);
                    }
                }
                return;
            }
        }
    };
    let (read, ()) = tokio::join!(
        exporter.export_matching(name, &from, batch, keep, tx),
        check
    );
    let read = read?;
    if read > counted {
        count(read - counted);
    }
    Ok((hops, complete))
}

fn is_cancelled(opts: &TraceOptions) -> bool {
    opts.cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches("billing*", "billing.dlq"));
        assert!(glob_matches("*.dlq", "email.dlq"));
        assert!(!glob_matches("*.dlq", "email"));
        assert!(glob_matches("pay?ents", "payments"));
        assert!(glob_matches("a.b", "a.b") && !glob_matches("a.b", "axb"));
    }
}
