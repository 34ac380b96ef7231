//! Correlation-ID extraction, backend-neutral: which ID ties a message to its copies and
//! follow-ups. Rules are tried in order; header rules run before any payload is decoded.

use crate::backend::{Backend, BackendError};
use crate::model::{DeathReason, FieldValue, Message, QueueDetail, QueueKind, QueueSummary};
use crate::scan::{ScanOptions, read_all};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

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
    pub fn extract(&self, msg: &Message) -> Option<String> {
        // Parse the body at most once, and only if a body rule is reached.
        let mut body: Option<Option<serde_json::Value>> = None;
        for rule in &self.rules {
            let found = match rule {
                Rule::Property => msg.properties.correlation_id.clone(),
                Rule::Header(name) => msg.headers.get_ignore_case(name).and_then(header_text),
                Rule::Traceparent => msg
                    .headers
                    .get_ignore_case("traceparent")
                    .and_then(FieldValue::as_str)
                    .and_then(traceparent_trace_id)
                    .map(str::to_string),
                // Parsing is the expensive part of a scan: skip it when the field's name is
                // nowhere in the payload.
                Rule::JsonPointer(ptr) if !mentions_key(&msg.payload, ptr) => None,
                Rule::JsonPointer(ptr) => body
                    .get_or_insert_with(|| parse_json_body(&msg.payload))
                    .as_ref()
                    .and_then(|v| v.pointer(ptr))
                    .and_then(json_scalar_text),
                Rule::Key => msg
                    .key
                    .as_ref()
                    .and_then(|k| std::str::from_utf8(k).ok())
                    .map(str::to_string),
            };
            if let Some(id) = found.filter(|s| !s.is_empty()) {
                return Some(id);
            }
        }
        None
    }
}

fn header_text(v: &FieldValue) -> Option<String> {
    match v {
        FieldValue::Void
        | FieldValue::Table(_)
        | FieldValue::Array(_)
        | FieldValue::ByteArray(_) => None,
        FieldValue::LongString(_) | FieldValue::ShortString(_) => v.as_str().map(str::to_string),
        other => Some(other.to_string()),
    }
}

fn json_scalar_text(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Whether the last key of a JSON Pointer appears, quoted, in the payload: a field written
/// with escapes in its name is the one case this misses.
fn mentions_key(payload: &[u8], pointer: &str) -> bool {
    let key = pointer
        .rsplit('/')
        .next()
        .unwrap_or("")
        .replace("~1", "/")
        .replace("~0", "~");
    if key.is_empty() {
        return true;
    }
    let quoted = format!("\"{key}\"");
    memchr::memmem::find(payload, quoted.as_bytes()).is_some()
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
}

/// One place the correlation ID was found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Hop {
    pub queue: String,
    pub kind: QueueKind,
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
    #[serde(skip)]
    pub time: Option<DateTime<Utc>>,
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
        let mut queues: Vec<&str> = self.hops.iter().map(|h| h.queue.as_str()).collect();
        queues.sort();
        queues.dedup();
        let dead = self.hops.iter().filter(|h| h.dead_letter.is_some()).count();
        let last = self
            .hops
            .last()
            .map(|h| h.queue.as_str())
            .unwrap_or("nowhere");
        format!(
            "reached {} queue{}, {dead} dead-lettered, last seen in {last}",
            queues.len(),
            if queues.len() == 1 { "" } else { "s" }
        )
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
}

impl Default for TraceOptions {
    fn default() -> Self {
        Self {
            queues: None,
            since: None,
            extractor: Extractor::default(),
            concurrency: 4,
            page_size: 1_000,
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
pub fn hop_of(m: &Message, kind: QueueKind) -> Hop {
    let deaths = m.deaths();
    let newest = deaths.first();
    let dead_letter = newest.map(|d| DeadLetterHop {
        from: d.queue.clone(),
        reason: d.reason,
        count: d.count,
    });
    let time = newest.and_then(|d| d.time).or(m.timestamp);
    Hop {
        queue: m.queue.clone(),
        kind,
        position: (kind == QueueKind::Queue).then_some(m.position),
        partition: m.partition,
        offset: m.offset,
        timestamp: time.as_ref().map(crate::export::rfc3339),
        exchange: m.exchange.clone(),
        routing_key: m.routing_key.clone(),
        message_id: m.properties.message_id.clone(),
        dead_letter,
        replayed_from: m
            .headers
            .get("x-mqscope-replayed-from")
            .and_then(FieldValue::as_str)
            .map(str::to_string),
        time,
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
    let started = Instant::now();
    let mut queues = backend.list_queues().await?;
    if let Some(p) = &opts.queues {
        queues.retain(|q| glob_matches(p, &q.name));
    }
    let scanned = AtomicU64::new(0);
    // Topics need their partitions (a describe); queues are read from the listing alone.
    let scan = |summary: QueueSummary| {
        let scanned = &scanned;
        async move {
            let name = summary.name.clone();
            let kind = summary.kind;
            let detail = if kind == QueueKind::Topic {
                match backend.describe_queue(&name).await {
                    Ok(d) => d,
                    Err(e) => {
                        return Err(Skipped {
                            queue: name,
                            reason: e.to_string(),
                        });
                    }
                }
            } else {
                QueueDetail {
                    summary,
                    partitions_detail: Vec::new(),
                    arguments: Default::default(),
                    bindings: Vec::new(),
                }
            };
            let scan_opts = ScanOptions {
                page_size: opts.page_size,
                since: opts.since,
                ..ScanOptions::default()
            };
            let mut hops = Vec::new();
            let result = read_all::<BackendError>(
                backend,
                &detail,
                &scan_opts,
                |page| {
                    scanned.fetch_add(page.len() as u64, Ordering::Relaxed);
                    for m in page {
                        if opts
                            .since
                            .is_some_and(|t| m.timestamp.is_some_and(|ts| ts < t))
                        {
                            continue;
                        }
                        if opts.extractor.extract(m).as_deref() == Some(id) {
                            hops.push(hop_of(m, kind));
                        }
                    }
                    Ok(())
                },
                |_| {},
            )
            .await;
            match result {
                Ok(()) => Ok(hops),
                Err(e) => Err(Skipped {
                    queue: name,
                    reason: e.to_string(),
                }),
            }
        }
    };
    let results: Vec<_> = futures::stream::iter(queues.into_iter().map(scan))
        .buffer_unordered(opts.concurrency.max(1))
        .collect()
        .await;
    let mut hops = Vec::new();
    let mut skipped = Vec::new();
    let mut done = 0;
    for r in results {
        match r {
            Ok(h) => {
                done += 1;
                hops.extend(h);
            }
            Err(s) => skipped.push(s),
        }
    }
    hops.sort_by(|a, b| {
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
    });
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

#[cfg(test)]
mod tests {
    use super::*;
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
}
