//! The recorded journey merged into a live trace (`trace ID --db FILE`): each recorded
//! envelope becomes a hop, unless the live scan already shows that very copy, and the gaps
//! nothing was recorded in are said beside them.

use super::store::{Gap, Store, StoreError};
use crate::backend::Backend;
use crate::model::envelope::{Envelope, EventKind, SourceKind};
use crate::model::{Delivery, Message};
use crate::ops::trace::follow::live_hop;
use crate::ops::trace::{
    Hop, HopKind, RecordedHop, Sighting, Trace, hop_of, hop_order, picked_up, reroute, sighting_of,
};
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

/// The hop a recorded envelope stands for, at the time it was recorded, and what routing
/// needs of it.
pub fn recorded_hop(e: &Envelope) -> (Hop, Sighting) {
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
    if e.kind == EventKind::Deliver {
        hop.deliveries = vec![Delivery::from_details(&e.source, e.time, &e.details)];
    }
    hop.recorded = Some(RecordedHop {
        event: e.kind,
        details: e.details.clone(),
    });
    (hop, sighting_of(&m))
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
    // Sightings ride beside their hops; a trace without them (built by hand) gets none.
    let keep_sightings = trace.sightings.len() == live_count;
    for e in &envelopes {
        let (hop, sighting) = recorded_hop(e);
        if queues.is_some_and(|p| !hop.concerns(p)) {
            continue;
        }
        if shown_live(&hop, &trace.hops[..live_count]) {
            out.already_live += 1;
            continue;
        }
        trace.hops.push(hop);
        trace.sightings.push(sighting);
        out.added += 1;
    }
    if keep_sightings {
        let mut both: Vec<(Hop, Sighting)> = std::mem::take(&mut trace.hops)
            .into_iter()
            .zip(std::mem::take(&mut trace.sightings))
            .collect();
        both.sort_by(|a, b| hop_order(&a.0, &b.0));
        (trace.hops, trace.sightings) = both.into_iter().unzip();
    } else {
        trace.sightings.clear();
        trace.hops.sort_by(hop_order);
    }
    picked_up(&mut trace.routes, &trace.hops);
    let first = trace.hops.iter().filter_map(|h| h.time).min();
    let last = trace.hops.iter().filter_map(|h| h.time).max();
    if first.is_some() {
        out.gaps = store.gaps(since.max(first), last.map(|_| Utc::now()))?;
    }
    Ok(out)
}

/// [`merge`] from the database at `db`, then the routes worked out again over the merged
/// hops when it added any (the publish it kept may be the journey's start, every copy long
/// consumed). The database is closed before the broker is asked again.
pub async fn merge_routed(
    backend: &dyn Backend,
    trace: &mut Trace,
    db: &std::path::Path,
    since: Option<DateTime<Utc>>,
    queues: Option<&str>,
) -> Result<Recorded, StoreError> {
    let out = {
        let store = Store::open_read(db)?;
        merge(trace, &store, since, queues)?
    };
    if out.added > 0 {
        reroute(backend, trace, queues).await;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::correlation::Extractor;
    use crate::testing::at;

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
            ..Trace::default()
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
