//! The recorded journey merged into a live trace (`trace ID --db FILE`): each recorded
//! envelope becomes a hop, unless the live scan already shows that very copy, and the gaps
//! nothing was recorded in are said beside them.

use super::store::{Gap, Store, StoreError};
use crate::model::Message;
use crate::model::envelope::{Envelope, EventKind, SourceKind};
use crate::ops::trace::follow::live_hop;
use crate::ops::trace::{Hop, HopKind, RecordedHop, Trace, hop_of, hop_order};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// What the database added to a trace.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Recorded {
    /// The database read.
    pub db: String,
    /// Recorded hops added to the trace.
    pub added: usize,
    /// Recorded hops the live scan showed already (the copy is still there).
    pub already_live: usize,
    /// Times nothing was recorded, within the trace's span: hops may be missing there.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<Gap>,
}

/// The hop a recorded envelope stands for, at the time it was recorded.
pub fn recorded_hop(e: &Envelope) -> Hop {
    let mut m = Message::new(e.source.clone(), 0, e.body.clone());
    m.exchange = e.exchange.clone();
    m.routing_key = e.routing_key.clone();
    m.routed_queues = e.routed_queues.clone();
    m.partition = e.partition;
    m.offset = e.offset;
    m.headers = e.headers.clone();
    m.properties = e.properties.clone();
    m.timestamp = e.published;
    let mut hop = match (e.kind, e.source_kind) {
        (_, SourceKind::Topic) => hop_of(&m, HopKind::Topic),
        (_, SourceKind::Queue) => hop_of(&m, HopKind::Queue),
        // A publish (or dead-lettering) on an exchange: where it went, as a live follow says it.
        (_, SourceKind::Exchange) => live_hop(&m, e.time),
    };
    hop.position = None;
    hop.live = false;
    // When it happened, as recorded: to the millisecond, where `x-death` says the second
    // (a dead letter would otherwise sort before the publish it came from).
    hop.time = Some(e.time);
    hop.timestamp = hop.time.as_ref().map(crate::model::time::rfc3339);
    hop.key = Some(e.message_key.clone());
    hop.recorded = Some(RecordedHop {
        event: e.kind,
        details: e.details.clone(),
    });
    hop
}

/// Whether `hop` (recorded) is a copy the live scan shows: the same log record, or the same
/// message in the same queue.
fn shown_live(hop: &Hop, live: &[Hop]) -> bool {
    live.iter().any(|l| {
        l.same_record(hop)
            || (hop.kind == HopKind::Queue
                && l.kind == HopKind::Queue
                && l.queue == hop.queue
                && l.key.is_some()
                && l.key == hop.key
                && hop
                    .recorded
                    .as_ref()
                    .is_none_or(|r| r.event != EventKind::Deliver))
    })
}

/// Merge `id`'s recorded envelopes from `store` into `trace` (since `since`; on the queues
/// `queues` matches, when given), in time order, and say what was added.
pub fn merge(
    trace: &mut Trace,
    store: &Store,
    since: Option<DateTime<Utc>>,
    queues: Option<&str>,
) -> Result<Recorded, StoreError> {
    let envelopes = store.by_correlation(&trace.correlation_id, since)?;
    let mut out = Recorded {
        db: store.path().display().to_string(),
        ..Recorded::default()
    };
    let live_count = trace.hops.len();
    for e in &envelopes {
        let hop = recorded_hop(e);
        if queues.is_some_and(|p| !hop.concerns(p)) {
            continue;
        }
        if shown_live(&hop, &trace.hops[..live_count]) {
            out.already_live += 1;
            continue;
        }
        trace.hops.push(hop);
        out.added += 1;
    }
    trace.hops.sort_by(hop_order);
    let first = trace.hops.iter().filter_map(|h| h.time).min();
    let last = trace.hops.iter().filter_map(|h| h.time).max();
    if first.is_some() {
        out.gaps = store.gaps(since.max(first), last.map(|_| Utc::now()))?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::correlation::Extractor;

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(s, 0).unwrap()
    }

    #[test]
    fn recorded_events_become_hops_and_live_copies_are_not_doubled() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(&dir.path().join("r.db")).unwrap();
        let mut m = Message::new("orders", 0, b"{}".to_vec());
        m.exchange = Some("orders".into());
        m.routing_key = Some("k".into());
        m.properties.correlation_id = Some("c".into());
        m.routed_queues = Some(vec!["billing".into(), "shipping".into()]);
        let rules = Extractor::default();
        let publish = Envelope::of_tailed(&m, at(10), &rules, 64);
        let details = vec![("consumer".to_string(), "ctag-1".to_string())];
        let taken = Envelope::delivery(&m, "billing", at(11), details.clone(), &rules, 64);
        store.insert(&[publish, taken]).unwrap();

        // The live scan still finds the copy in shipping.
        let mut copy = m.clone();
        copy.queue = "shipping".into();
        copy.routed_queues = None;
        copy.timestamp = Some(at(10));
        let mut trace = Trace {
            correlation_id: "c".into(),
            scanned: 1,
            queues_scanned: 1,
            hops: vec![hop_of(&copy, HopKind::Queue)],
            skipped: vec![],
            elapsed_ms: 0,
        };
        let r = merge(&mut trace, &store, None, None).unwrap();
        assert_eq!((r.added, r.already_live), (2, 0));
        let places: Vec<String> = trace.hops.iter().map(Hop::place).collect();
        assert_eq!(
            places,
            vec!["exchange orders", "shipping#0", "billing"],
            "in time order"
        );
        let delivered = trace.hops[2].recorded.as_ref().unwrap();
        assert_eq!(
            (delivered.event, &delivered.details),
            (EventKind::Deliver, &details)
        );
        assert_eq!(
            trace.hops[0].routed_queues.as_deref(),
            Some(&["billing".to_string(), "shipping".to_string()][..])
        );

        // Only the queues asked for.
        let mut only = Trace {
            hops: vec![],
            ..trace.clone()
        };
        let r = merge(&mut only, &store, None, Some("refunds*")).unwrap();
        assert_eq!(r.added, 0);
    }
}
