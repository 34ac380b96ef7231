//! Correlation-ID extraction, backend-neutral: which ID ties a message to its copies and
//! follow-ups. Rules are tried in order; header rules run before any payload is decoded.

pub mod follow;
pub mod graph;

use crate::backend::{Backend, BackendError, Export, Keep, PeekFrom};
use crate::model::{
    DeathReason, DeathSource, Message, MessageView, QueueDetail, QueueKind, QueueSummary,
};
use crate::scan::{ScanOptions, read_all};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use memchr::memmem::Finder;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Ordering as CmpOrdering;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

/// The header mqscope's replay writes on every copy it re-publishes: where the original was.
pub const REPLAYED_FROM_HEADER: &str = "x-mqscope-replayed-from";
/// How many times that original has been replayed, this copy included.
pub const REPLAY_COUNT_HEADER: &str = "x-mqscope-replay-count";

/// One place a correlation ID can live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "from", content = "name")]
pub enum Rule {
    /// The AMQP `correlation_id` property.
    Property,
    /// A header, matched case-insensitively.
    Header(String),
    /// The trace id inside a W3C `traceparent` header.
    Traceparent,
    /// A string or number in a JSON body, by JSON Pointer.
    JsonPointer(String),
    /// The Kafka record key.
    Key,
}

/// An ordered list of rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extractor {
    pub rules: Vec<Rule>,
}

impl Default for Extractor {
    fn default() -> Self {
        let mut rules = vec![Rule::Property];
        rules.extend(
            [
                "correlation_id",
                "correlation-id",
                "x-correlation-id",
                "correlationId",
            ]
            .into_iter()
            .map(|h| Rule::Header(h.to_string())),
        );
        rules.push(Rule::Traceparent);
        rules.extend(
            [
                "/correlationId",
                "/correlation_id",
                "/metadata/correlationId",
            ]
            .into_iter()
            .map(|p| Rule::JsonPointer(p.to_string())),
        );
        Self { rules }
    }
}

impl Extractor {
    /// The first correlation ID any rule finds.
    pub fn extract(&self, msg: &impl MessageView) -> Option<String> {
        // Parse the body at most once, and only if a body rule is reached.
        let mut body = None;
        self.rules.iter().find_map(|rule| {
            apply(rule, msg, None, &mut body)
                .filter(|s| !s.is_empty())
                .map(Cow::into_owned)
        })
    }

    /// Whether `id` is the message's correlation ID, as `extract(msg) == Some(id)` says.
    /// A scan asks this of every message: build a [`Matcher`] once instead.
    pub fn matches(&self, msg: &impl MessageView, id: &str) -> bool {
        self.matcher(id).matches(msg)
    }

    /// A [`Matcher`] for one ID under these rules.
    pub fn matcher(&self, id: &str) -> Matcher {
        let needles = self
            .rules
            .iter()
            .map(|r| match r {
                Rule::JsonPointer(ptr) => {
                    pointer_key(ptr).map(|k| Finder::new(k.as_bytes()).into_owned())
                }
                _ => None,
            })
            .collect();
        Matcher {
            rules: self.rules.clone(),
            id: id.to_string(),
            id_finder: Finder::new(id.as_bytes()).into_owned(),
            numeric: looks_numeric(id),
            needles,
        }
    }
}

/// Tells whether a message's correlation ID is one given ID, as [`Extractor::extract`]
/// would find it, but quicker: its searches are prepared once, and a JSON body that cannot
/// hold the ID is never parsed (parsing is the expensive part of a scan).
#[derive(Debug, Clone)]
pub struct Matcher {
    rules: Vec<Rule>,
    id: String,
    id_finder: Finder<'static>,
    numeric: bool,
    /// Per rule: for a JSON Pointer, a search for its last key (None: any body may hold it).
    needles: Vec<Option<Finder<'static>>>,
}

impl Matcher {
    pub fn matches(&self, msg: &(impl MessageView + ?Sized)) -> bool {
        let mut body = None;
        for (i, rule) in self.rules.iter().enumerate() {
            let needle = self.needles.get(i).and_then(Option::as_ref);
            if let Rule::JsonPointer(_) = rule
                && body.is_none()
                && self.rules[i..]
                    .iter()
                    .all(|r| matches!(r, Rule::JsonPointer(_)))
                && !self.could_hold(msg.payload())
            {
                // Only body rules are left, and none can give the ID: whatever they give
                // (another ID or nothing), the answer is no.
                return false;
            }
            if let Some(found) = apply(rule, msg, needle, &mut body).filter(|s| !s.is_empty()) {
                return found == self.id;
            }
        }
        false
    }

    /// Whether a JSON payload could hold the ID as a string or number: a string spells it
    /// byte for byte unless written with escapes, and only an ID that looks like a number
    /// could be a number's text written another way (`1e3`).
    fn could_hold(&self, payload: &[u8]) -> bool {
        self.numeric
            || self.id_finder.find(payload).is_some()
            || memchr::memchr(b'\\', payload).is_some()
    }
}

fn looks_numeric(id: &str) -> bool {
    !id.is_empty()
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
}

/// What one rule finds in a message; `body` caches the parsed payload between rules, and
/// `needle` is a prepared search for a JSON Pointer's key (made here when not given).
fn apply<'m>(
    rule: &Rule,
    msg: &'m (impl MessageView + ?Sized),
    needle: Option<&Finder<'_>>,
    body: &mut Option<Option<serde_json::Value>>,
) -> Option<Cow<'m, str>> {
    match rule {
        Rule::Property => msg.correlation_property().map(Cow::Borrowed),
        Rule::Header(name) => msg.header_text(name),
        Rule::Traceparent => match msg.header_text("traceparent")? {
            Cow::Borrowed(t) => traceparent_trace_id(t).map(Cow::Borrowed),
            Cow::Owned(t) => traceparent_trace_id(&t).map(|id| Cow::Owned(id.to_string())),
        },
        // Parsing is the expensive part of a scan: skip it when the field's name is
        // nowhere in the payload.
        Rule::JsonPointer(ptr) if !mentions_key(msg.payload(), ptr, needle) => None,
        Rule::JsonPointer(ptr) => body
            .get_or_insert_with(|| parse_json_body(msg.payload()))
            .as_ref()
            .and_then(|v| v.pointer(ptr))
            .and_then(json_scalar_text)
            .map(Cow::Owned),
        Rule::Key => msg
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .map(Cow::Borrowed),
    }
}

fn json_scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The last key of a JSON Pointer, unescaped; None when it is empty or could be an array
/// index (`/ids/0`), which is never written as a quoted key.
fn pointer_key(pointer: &str) -> Option<Cow<'_, str>> {
    let last = pointer.rsplit('/').next().unwrap_or("");
    if last.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let key = if last.contains('~') {
        Cow::Owned(last.replace("~1", "/").replace("~0", "~"))
    } else {
        Cow::Borrowed(last)
    };
    (!key.is_empty()).then_some(key)
}

/// Whether the last key of a JSON Pointer appears, quoted, in the payload (`needle` is a
/// prepared search for it): a field written with escapes in its name is the one case this
/// misses.
fn mentions_key(payload: &[u8], pointer: &str, needle: Option<&Finder<'_>>) -> bool {
    let Some(key) = pointer_key(pointer) else {
        return true;
    };
    let made;
    let finder = match needle {
        Some(f) => f,
        None => {
            made = Finder::new(key.as_bytes());
            &made
        }
    };
    finder
        .find_iter(payload)
        .any(|at| at > 0 && payload[at - 1] == b'"' && payload.get(at + key.len()) == Some(&b'"'))
}

/// Only bodies that look like a JSON object or array are parsed; anything else, including
/// invalid JSON, simply has no body ID.
fn parse_json_body(payload: &[u8]) -> Option<serde_json::Value> {
    let first = payload.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' && *first != b'[' {
        return None;
    }
    serde_json::from_slice(payload).ok()
}

/// The trace id of a W3C `traceparent` (`version-traceid-parentid-flags`), if well formed.
pub fn traceparent_trace_id(value: &str) -> Option<&str> {
    let mut parts = value.trim().split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent = parts.next()?;
    let _flags = parts.next()?;
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && trace_id.bytes().any(|b| b != b'0')
        && hex(parent, 16);
    valid.then_some(trace_id)
}

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
        timestamp: time.as_ref().map(crate::export::rfc3339),
        exchange: m.exchange.clone(),
        routing_key: m.routing_key.clone(),
        message_id: m.properties.message_id.clone(),
        dead_letter,
        replayed_from: m.header_text(REPLAYED_FROM_HEADER).map(Cow::into_owned),
        replay_count: m
            .header_text(REPLAY_COUNT_HEADER)
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
    use crate::model::FieldValue;
    use bytes::Bytes;

    fn msg(payload: &'static [u8]) -> Message {
        Message::new("q", 0, Bytes::from_static(payload))
    }

    #[test]
    fn property_wins_over_headers_and_body() {
        let mut m = msg(br#"{"correlationId": "body"}"#);
        m.headers
            .insert("X-Correlation-ID", FieldValue::string("header"));
        m.properties.correlation_id = Some("prop".into());
        let ex = Extractor::default();
        assert_eq!(ex.extract(&m).as_deref(), Some("prop"));
        m.properties.correlation_id = None;
        assert_eq!(ex.extract(&m).as_deref(), Some("header"));
        m.headers = Default::default();
        assert_eq!(ex.extract(&m).as_deref(), Some("body"));
    }

    #[test]
    fn nested_pointer_and_numbers() {
        let ex = Extractor::default();
        assert_eq!(
            ex.extract(&msg(br#"{"metadata": {"correlationId": 42}}"#))
                .as_deref(),
            Some("42")
        );
        assert_eq!(ex.extract(&msg(br#"{"correlation_id": ""}"#)), None);
        let by_index = Extractor {
            rules: vec![Rule::JsonPointer("/ids/0".into())],
        };
        let m = msg(br#"{"ids": ["ORD-7", "x"]}"#);
        assert_eq!(by_index.extract(&m).as_deref(), Some("ORD-7"));
        assert!(by_index.matches(&m, "ORD-7"));
    }

    #[test]
    fn traceparent() {
        let mut m = msg(b"");
        m.headers.insert(
            "traceparent",
            FieldValue::string("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(
            Extractor::default().extract(&m).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
            "",
        ] {
            assert_eq!(traceparent_trace_id(bad), None, "{bad}");
        }
    }

    #[test]
    fn invalid_or_binary_bodies_do_not_match() {
        let ex = Extractor::default();
        for body in [
            &b"{\"correlationId\": "[..],
            b"\x00\xff\xfe",
            b"plain text",
            b"[1,2",
            b"",
        ] {
            let m = Message::new("q", 0, Bytes::copy_from_slice(body));
            assert_eq!(ex.extract(&m), None);
        }
    }

    #[test]
    fn globs() {
        assert!(glob_matches("billing*", "billing.dlq"));
        assert!(glob_matches("*.dlq", "email.dlq"));
        assert!(!glob_matches("*.dlq", "email"));
        assert!(glob_matches("pay?ents", "payments"));
        assert!(glob_matches("a.b", "a.b") && !glob_matches("a.b", "axb"));
    }

    #[test]
    fn key_rule_is_opt_in() {
        let mut m = msg(b"");
        m.key = Some(Bytes::from_static(b"ORD-1"));
        assert_eq!(Extractor::default().extract(&m), None);
        let ex = Extractor {
            rules: vec![Rule::Key],
        };
        assert_eq!(ex.extract(&m).as_deref(), Some("ORD-1"));
    }

    #[test]
    fn matches_agrees_with_extract_without_parsing_bodies_that_cannot_hold_the_id() {
        let with_key = {
            let mut ex = Extractor::default();
            ex.rules.push(Rule::Key);
            ex
        };
        let mut cases: Vec<Message> = [
            &br#"{"correlationId":"ORD-1"}"#[..],
            br#"{"correlationId":"ORD-2"}"#,
            br#"{"correlationId":"ORD\u002d1"}"#,
            br#"{"correlation_id":1e3}"#,
            br#"{"correlation_id":1000}"#,
            br#"{"metadata":{"correlationId":"ORD-1"}}"#,
            br#"{"other":"ORD-1"}"#,
            br#"{"correlationId":""}"#,
            b"\x00\xff ORD-1",
            b"",
        ]
        .into_iter()
        .map(msg)
        .collect();
        let mut keyed = msg(br#"{"correlationId":"ORD-2"}"#);
        keyed.key = Some(Bytes::from_static(b"ORD-1"));
        cases.push(keyed);
        let mut unkeyed_body = msg(br#"{"other":1}"#);
        unkeyed_body.key = Some(Bytes::from_static(b"ORD-1"));
        cases.push(unkeyed_body);
        let mut header = msg(br#"{"correlationId":"ORD-2"}"#);
        header
            .headers
            .insert("X-Correlation-ID", FieldValue::string("ORD-1"));
        cases.push(header);
        for ex in [Extractor::default(), with_key] {
            for m in &cases {
                for id in ["ORD-1", "ORD-2", "ORD-1", "1000", "1000.0", ""] {
                    assert_eq!(
                        ex.matches(m, id),
                        ex.extract(m).as_deref() == Some(id),
                        "{id} in {:?} with {:?}",
                        m.payload,
                        ex.rules.last()
                    );
                }
            }
        }
    }
}
