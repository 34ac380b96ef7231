//! The queue list: loading it, filtering and sorting it, and opening a queue.

use super::messages::reload_messages;
use super::{Effect, ListFilter, State, View, keep_in_view, next_req};
use crate::backend::PeekFrom;
use crate::model::{QueueKind, QueueSummary};
use crate::tui::keymap::Action;
use crate::tui::state::{ReqId, SortColumn};
use chrono::{DateTime, Utc};
use std::cmp::Ordering;

pub(super) fn load_queues(s: &mut State) -> Effect {
    let req = next_req(s);
    s.queues.pending.start(req, ());
    Effect::LoadQueues(req)
}

/// `took_ms`, how long the listing took, sets the pace of the next (see `Pace`).
pub(super) fn loaded(
    s: &mut State,
    req: ReqId,
    result: Result<Vec<QueueSummary>, String>,
    at: DateTime<Utc>,
    took_ms: u64,
) {
    if s.queues.pending.finish(req).is_none() {
        return;
    }
    match result {
        Ok(list) => {
            super::connection::connection_ok(s);
            // A failed listing leaves the pace to the reconnection's back-off.
            s.queues.pace.listed(s.tick, took_ms);
            let keep = s.selected_queue().map(|q| q.name.clone());
            s.queues.list = list;
            s.queues.refreshed_at = Some(at);
            refilter_queues(s, keep.as_deref());
        }
        Err(e) => super::connection::connection_failed(s, e),
    }
}

/// `s` sorts by the next column (names and types ascending, numbers descending); `S`
/// reverses the order.
pub(super) fn sort(s: &mut State, action: Action) {
    if action == Action::SortNext {
        let i = SortColumn::ALL
            .iter()
            .position(|c| *c == s.queues.sort)
            .unwrap_or(0);
        s.queues.sort = SortColumn::ALL[(i + 1) % SortColumn::ALL.len()];
        s.queues.descending =
            s.queues.sort != SortColumn::Name && s.queues.sort != SortColumn::Type;
    } else {
        s.queues.descending = !s.queues.descending;
    }
    let keep = s.selected_queue().map(|q| q.name.clone());
    refilter_queues(s, keep.as_deref());
}

pub(super) fn open_queue(s: &mut State, q: &QueueSummary) -> Vec<Effect> {
    let m = &mut s.messages;
    m.queue = q.name.clone();
    m.kind = q.kind;
    m.partitions = q.partitions.unwrap_or(0);
    m.partition = if q.kind == QueueKind::Topic {
        Some(0)
    } else {
        None
    };
    m.filter.clear();
    m.marked.clear();
    s.stack.push(View::Messages);
    reload_messages(s, PeekFrom::Start)
}

fn cmp_opt<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}

pub(super) fn refilter_queues(s: &mut State, keep: Option<&str>) {
    let q = &mut s.queues;
    let m = ListFilter::new(&q.filter);
    let mut idx: Vec<usize> = (0..q.list.len())
        .filter(|i| q.filter.is_empty() || m.is_match(&q.list[*i].name))
        .filter(|i| {
            q.bound_to
                .as_ref()
                .is_none_or(|(_, names)| names.contains(&q.list[*i].name))
        })
        .collect();
    let list = &q.list;
    idx.sort_by(|a, b| {
        let (a, b) = (&list[*a], &list[*b]);
        let o = match q.sort {
            SortColumn::Name => a.name.cmp(&b.name),
            SortColumn::Type => a.queue_type.cmp(&b.queue_type),
            SortColumn::Messages => cmp_opt(a.messages, b.messages),
            SortColumn::Ready => cmp_opt(a.ready, b.ready),
            SortColumn::Unacked => cmp_opt(a.unacked, b.unacked),
            SortColumn::Consumers => cmp_opt(a.consumers, b.consumers),
            SortColumn::InRate => cmp_opt(a.publish_rate, b.publish_rate),
            SortColumn::OutRate => cmp_opt(a.deliver_rate, b.deliver_rate),
        }
        .then_with(|| a.name.cmp(&b.name));
        if q.descending { o.reverse() } else { o }
    });
    q.visible = idx;
    if let Some(name) = keep
        && let Some(pos) = q.visible.iter().position(|i| q.list[*i].name == name)
    {
        q.cursor.selected = pos;
    }
    q.cursor.selected = q.cursor.selected.min(q.visible.len().saturating_sub(1));
    let rows = s.list_rows();
    keep_in_view(&mut s.queues.cursor, rows);
}
