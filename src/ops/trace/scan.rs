//! The trace scan: every queue and topic read without consuming, concurrently, looking for
//! one correlation ID; hops stream out as they are found.

use crate::backend::{Backend, BackendError, Export, Keep, PeekFrom};
use crate::format::decode::{Decoder, Input};
use crate::model::correlation::{Extractor, IdMatcher};
use crate::model::{Message, MessageView, QueueDetail, QueueKind, QueueSummary};
use crate::ops::scan::{ScanOptions, read_all};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use super::hop::{Hop, hop_of, hop_order, summary_of};
use super::routes::{Route, RouteBasis, Scope, Sighting, expected, sighting_of};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    pub queue: String,
    pub reason: String,
}

/// Everything one trace found, hops in time order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Trace {
    pub correlation_id: String,
    pub scanned: u64,
    pub queues_scanned: u64,
    pub hops: Vec<Hop>,
    /// Queues that could not be read safely or at all, and why.
    pub skipped: Vec<Skipped>,
    /// What the trace could not tell (consumer groups it could not list).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
    /// Where the first publish should have gone by the topology as it is now, and what
    /// became of each copy (`routes::expected`).
    pub routes: Vec<Route>,
    /// The publish the routes start from.
    pub routes_basis: Option<RouteBasis>,
    /// What the routes assume, and why there are none when there are none.
    pub routes_notes: Vec<String>,
    /// What routing needs of each hop, beside it (same order as `hops`), so the routes can
    /// be worked out again when recorded hops join the trace.
    #[serde(skip)]
    pub sightings: Vec<Sighting>,
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
    /// Consumer groups to check topic records against besides those the broker lists
    /// (read by name: brokers without group listing answer these).
    pub groups: Vec<String>,
    /// Reads what is inside payloads (Avro, Protobuf, MessagePack, compressed bodies), so
    /// the body rules find an ID there; None: payloads are read as JSON only.
    pub decoder: Option<Arc<Decoder>>,
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
            groups: Vec::new(),
            decoder: None,
        }
    }
}

/// Whether a payload the decoder reads (the queue's or topic's mapping, its content type,
/// Confluent framing, compression) holds the ID where the body rules look. Plain JSON is
/// not decoded again: the matcher has read it already.
pub(super) fn holds_decoded(
    decoder: Option<&Decoder>,
    matcher: &IdMatcher,
    m: &(impl MessageView + ?Sized),
    input: Input<'_>,
) -> bool {
    match decoder.and_then(|d| d.decode(&input)) {
        Some(Ok(decoded)) => matcher.matches_decoded(m, &decoded.value),
        _ => false,
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
    let listed = backend.list_queues().await?;
    let mut queues = listed.clone();
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
    let mut found: Vec<(Hop, Sighting)> = Vec::new();
    let mut skipped = Vec::new();
    let mut done = 0;
    let mut complete = !is_cancelled(opts);
    for r in results.into_iter().flatten() {
        match r {
            Ok((h, whole)) => {
                done += u64::from(whole);
                complete &= whole;
                found.extend(h);
            }
            Err(s) => skipped.push(s),
        }
    }
    found.sort_by(|a, b| hop_order(&a.0, &b.0));
    let (mut hops, sightings): (Vec<Hop>, Vec<Sighting>) = found.into_iter().unzip();
    skipped.sort_by(|a, b| a.queue.cmp(&b.queue));
    let notes = if is_cancelled(opts) {
        Vec::new()
    } else {
        super::attach_groups(backend, opts, &mut hops).await
    };
    let searched = |q: &str| opts.queues.as_ref().is_none_or(|p| glob_matches(p, q));
    let scope = Scope {
        queues: &listed,
        searched: &searched,
        skipped: &skipped,
        complete,
        now: Utc::now(),
    };
    let routes = expected(backend, &hops, &sightings, &scope).await;
    Ok(Trace {
        sightings,
        routes: routes.routes,
        routes_basis: routes.basis,
        routes_notes: routes.notes,
        correlation_id: id.to_string(),
        scanned: scanned.load(Ordering::Relaxed),
        queues_scanned: done,
        hops,
        skipped,
        notes,
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
) -> Result<(Vec<(Hop, Sighting)>, bool), Skipped> {
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
                if matcher.matches(m)
                    || holds_decoded(opts.decoder.as_deref(), &matcher, m, Input::payload(m))
                {
                    let hop = hop_of(m, kind);
                    on_event(TraceEvent::Hit(Box::new(hop.clone())));
                    hops.push((hop, sighting_of(m)));
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
) -> Result<(Vec<(Hop, Sighting)>, bool), BackendError> {
    let (tx, rx) = tokio::sync::mpsc::channel::<Vec<Message>>(4);
    let from = opts.since.map_or(PeekFrom::Start, PeekFrom::Time);
    let batch = opts.page_size.clamp(1, 1_000);
    let keep: Keep = {
        let (matcher, since) = (opts.extractor.matcher(id), opts.since);
        let (decoder, topic) = (opts.decoder.clone(), name.to_string());
        Arc::new(move |m: &dyn MessageView| {
            // A log's time index finds the first record that late; later ones may still
            // carry earlier times.
            let early = since.is_some_and(|t| m.timestamp().is_some_and(|ts| ts < t));
            let input = Input {
                bytes: m.payload(),
                queue: &topic,
                ..Input::default()
            };
            !early && (matcher.matches(m) || holds_decoded(decoder.as_deref(), &matcher, m, input))
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
                hops.push((hop, sighting_of(m)));
            }
            if is_cancelled(opts) {
                complete = false;
                // Stop the export, but keep the hits of batches already on their way.
                rx.close();
                while let Some(found) = rx.recv().await {
                    for m in &found {
                        let hop = hop_of(m, QueueKind::Topic);
                        on_event(TraceEvent::Hit(Box::new(hop.clone())));
                        hops.push((hop, sighting_of(m)));
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
