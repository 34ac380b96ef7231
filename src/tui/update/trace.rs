//! The trace view: scanning for a correlation ID, the hops as they come in, following the
//! live tail, and jumping from a hop to its message.

use super::message::open_message;
use super::messages::{position_of, reload_messages};
use super::{Effect, State, View, keep_in_view, next_req};
use crate::backend::PeekFrom;
use crate::model::QueueKind;
use crate::ops::trace::{Extractor, Hop, HopKind, TraceEvent, hop_order};
use crate::tui::state::*;
use std::cmp::Ordering;

/// A trace no longer on the view stack has nobody to report to: stop its work.
pub(super) fn reap_trace(s: &mut State) -> Vec<Effect> {
    if s.stack.contains(&View::Trace) {
        return Vec::new();
    }
    let mut fx = Vec::new();
    if let Some(req) = s.trace.pending.take() {
        s.trace.phase = TracePhase::Cancelled;
        fx.push(Effect::CancelTrace(req));
    }
    if let Some(req) = s.trace.follow.take() {
        fx.push(Effect::StopFollow(req));
    }
    fx
}

/// Open the trace view on `id` and start scanning; a trace already running (or
/// following) is stopped first.
pub(super) fn start_trace(s: &mut State, id: String) -> Vec<Effect> {
    let mut fx = Vec::new();
    if let Some(old) = s.trace.pending.take() {
        fx.push(Effect::CancelTrace(old));
    }
    if let Some(old) = s.trace.follow.take() {
        fx.push(Effect::StopFollow(old));
    }
    let req = next_req(s);
    let t = &mut s.trace;
    t.id = id.clone();
    t.phase = TracePhase::Scanning;
    t.pending.start(req, ());
    t.error = None;
    t.hops.clear();
    t.rows.clear();
    t.rows_stale = false;
    t.dropped = 0;
    t.skipped.clear();
    t.notes.clear();
    t.queues_total = 0;
    t.queues_done = 0;
    t.scanned = 0;
    t.elapsed_ms = 0;
    t.cursor = Cursor::default();
    t.routes.clear();
    t.routes_basis = None;
    t.routes_notes.clear();
    if s.view() != View::Trace {
        s.stack.retain(|v| *v != View::Trace);
        s.stack.push(View::Trace);
    }
    fx.push(Effect::Trace { req, id });
    fx
}

/// Esc while the scan runs stops it (and stays on what it found).
pub(super) fn cancel(s: &mut State) -> Vec<Effect> {
    if let Some(req) = s.trace.pending.take() {
        s.trace.phase = TracePhase::Cancelled;
        s.status.info = Some("trace cancelled".into());
        return vec![Effect::CancelTrace(req)];
    }
    Vec::new()
}

pub(super) fn on_trace_event(s: &mut State, event: TraceEvent) {
    let t = &mut s.trace;
    match event {
        TraceEvent::Started { queues } => t.queues_total = queues,
        TraceEvent::Hit(hop) => insert_hop(t, *hop),
        TraceEvent::QueueDone { queue, skipped } => {
            t.queues_done += 1;
            refresh_rows(t);
            if let Some(reason) = skipped {
                t.skipped.push(crate::ops::trace::Skipped { queue, reason });
                t.skipped.sort_by(|a, b| a.queue.cmp(&b.queue));
            }
        }
        TraceEvent::Scanned(n) => t.scanned += n,
    }
}

pub(super) fn progress(s: &mut State, req: ReqId, scanned: u64, elapsed_ms: u64) {
    if s.trace.pending.is_current(req) {
        s.trace.scanned = scanned;
        s.trace.elapsed_ms = elapsed_ms;
        refresh_rows(&mut s.trace);
    }
}

pub(super) fn on_trace_done(s: &mut State, result: Result<Box<crate::ops::trace::Trace>, String>) {
    let t = &mut s.trace;
    match result {
        Ok(done) => {
            // The result is the complete, ordered list; hops the live follow added while
            // the scan ran are kept unless the scan found the same record.
            let live: Vec<Hop> = t.hops.drain(..).filter(|h| h.live).collect();
            t.dropped = 0;
            for h in done.hops.into_iter().chain(live) {
                insert_hop(t, h);
            }
            t.skipped = done.skipped;
            t.notes = done.notes;
            t.scanned = done.scanned;
            t.queues_done = usize::try_from(done.queues_scanned).unwrap_or(usize::MAX);
            t.elapsed_ms = done.elapsed_ms;
            t.routes = done.routes;
            t.routes_basis = done.routes_basis;
            t.routes_notes = done.routes_notes;
            t.phase = TracePhase::Done;
            refresh_rows(t);
        }
        Err(e) => {
            t.phase = TracePhase::Failed;
            t.error = Some(e.clone());
            s.status.error = Some(format!("trace failed: {e}"));
        }
    }
}

/// `f`: follow the live tail for new hops, or stop following.
pub(super) fn follow(s: &mut State) -> Vec<Effect> {
    match s.trace.follow.take() {
        Some(req) => {
            s.status.info = Some("stopped following".into());
            vec![Effect::StopFollow(req)]
        }
        None if s.trace.id.is_empty() => Vec::new(),
        None => {
            let req = next_req(s);
            s.trace.follow.start(req, ());
            s.status.info = Some(format!("following {} live", s.trace.id));
            vec![Effect::Follow {
                req,
                id: s.trace.id.clone(),
            }]
        }
    }
}

pub(super) fn follow_hop(s: &mut State, req: ReqId, result: Result<Box<Hop>, String>) {
    if s.trace.follow.is_current(req) {
        match result {
            Ok(hop) => {
                insert_hop(&mut s.trace, *hop);
                refresh_rows(&mut s.trace);
            }
            Err(e) => s.status.error = Some(format!("following: {e}")),
        }
    }
}

pub(super) fn follow_ended(s: &mut State, req: ReqId, error: Option<String>) {
    if s.trace.follow.finish(req).is_some() {
        match error {
            Some(e) => s.status.error = Some(format!("cannot follow live: {e}")),
            None => s.status.info = Some("the live tail ended".into()),
        }
    }
}

/// Put a hop in its place in time; a log record already shown is not shown twice.
fn insert_hop(t: &mut Trace, hop: Hop) {
    if t.hops.iter().any(|h| h.same_record(&hop)) {
        return;
    }
    if t.hops.len() >= MAX_HOPS {
        t.dropped += 1;
        return;
    }
    let at = t
        .hops
        .partition_point(|h| hop_order(h, &hop) != Ordering::Greater);
    t.hops.insert(at, hop);
    t.rows_stale = true;
    if t.hops.len() <= EAGER_ROWS {
        refresh_rows(t);
    }
}

/// Up to this many hops the graph is rebuilt on every hit; beyond, on the next progress
/// report or finished queue, so an ID on thousands of messages does not cost a rebuild each.
const EAGER_ROWS: usize = 1_000;

pub(super) fn refresh_rows(t: &mut Trace) {
    if t.rows_stale {
        t.rows = crate::ops::trace::graph::rows(&t.hops);
        t.rows_stale = false;
        t.cursor.selected = t.cursor.selected.min(t.rows.len().saturating_sub(1));
    }
}

/// The correlation ID of the message the user is looking at, or why there is none.
pub(super) fn trace_current(s: &mut State) -> Vec<Effect> {
    let msg = match s.view() {
        View::Message => s.message.msg.as_ref(),
        View::Messages => s.selected_message(),
        _ => None,
    };
    let Some(msg) = msg else {
        s.status.error = Some("select a message to trace".into());
        return Vec::new();
    };
    match Extractor::default().extract(msg) {
        Some(id) => start_trace(s, id),
        None => {
            s.status.error = Some(
                "this message has no correlation ID (property, correlation headers, traceparent or JSON body)"
                    .into(),
            );
            Vec::new()
        }
    }
}

/// Open the messages view at a hop's message (and the message itself once it loads).
pub(super) fn jump_to_hop(s: &mut State, hop: &Hop) -> Vec<Effect> {
    let kind = match hop.kind {
        HopKind::Queue => QueueKind::Queue,
        HopKind::Stream => QueueKind::Stream,
        HopKind::Topic => QueueKind::Topic,
        HopKind::Exchange => {
            s.status.info = Some(format!(
                "seen live on exchange {}: no stored copy to open",
                hop.queue
            ));
            return Vec::new();
        }
    };
    let position = hop
        .offset
        .and_then(|o| u64::try_from(o).ok())
        .or(hop.position);
    if !hop.deliveries.is_empty() {
        s.status.info = Some(format!(
            "handed to a consumer of {}: no longer in the queue",
            hop.queue
        ));
        return Vec::new();
    }
    let Some(position) = position else {
        s.status.info = Some(format!(
            "seen live in {}: its position is not known",
            hop.queue
        ));
        return Vec::new();
    };
    // One messages state: views of it below the trace are replaced by this one.
    s.stack
        .retain(|v| !matches!(v, View::Messages | View::Message));
    let partitions = s
        .queues
        .list
        .iter()
        .find(|q| q.name == hop.queue)
        .and_then(|q| q.partitions);
    let m = &mut s.messages;
    m.queue = hop.queue.clone();
    m.kind = kind;
    m.partition = if kind == QueueKind::Topic {
        Some(hop.partition.unwrap_or(0))
    } else {
        None
    };
    m.partitions =
        partitions.unwrap_or_else(|| m.partition.map_or(0, |p| u32::try_from(p + 1).unwrap_or(0)));
    m.filter.clear();
    m.force = false;
    s.stack.push(View::Messages);
    let fx = reload_messages(s, PeekFrom::Position(position.saturating_sub(JUMP_CONTEXT)));
    s.messages.jump = s.messages.pending.req().map(|req| Jump {
        req,
        position,
        id: s.trace.id.clone(),
    });
    fx
}

/// After a jump's page arrives: select the hop's message and open it, or say it moved.
pub(super) fn land_jump(s: &mut State, jump: Jump) {
    let m = &s.messages;
    let found = m.visible.iter().position(|i| {
        m.window
            .get(*i)
            .is_some_and(|w| position_of(w) == jump.position)
    });
    let Some(row) = found else {
        s.status.info = Some(format!(
            "position {} is no longer in {}: the queue has moved since the trace",
            jump.position, m.queue
        ));
        return;
    };
    let rows = s.list_rows();
    s.messages.cursor.selected = row;
    keep_in_view(&mut s.messages.cursor, rows);
    let Some(msg) = s.selected_message().cloned() else {
        return;
    };
    if Extractor::default().extract(&msg).as_deref() == Some(jump.id.as_str()) {
        if s.view() == View::Messages {
            open_message(s, msg);
        }
    } else {
        s.status.info = Some(format!(
            "the message at {} no longer carries {}: the queue has moved since the trace (Ctrl-R in the trace scans again)",
            jump.position, jump.id
        ));
    }
}
