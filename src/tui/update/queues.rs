//! The queue list: loading it, filtering and sorting it, and opening a queue.

use super::list::{self, Listed, load, matching};
use super::messages::reload_messages;
use super::{Effect, State, View, keep_in_view};
use crate::backend::PeekFrom;
use crate::model::{QueueKind, QueueSummary};
use crate::tui::keymap::Action;
use crate::tui::state::SortColumn;
use std::cmp::Ordering;

pub(super) fn load_queues(s: &mut State) -> Effect {
    load(s, |s| &mut s.queues, Effect::LoadQueues)
}

pub(super) fn loaded(s: &mut State, reply: Listed<Vec<QueueSummary>>) -> Vec<Effect> {
    list::reply(s, |s| &mut s.queues, reply, show)
}

/// A new listing: the selected queue stays selected.
fn show(s: &mut State, list: Vec<QueueSummary>) {
    let keep = s.selected_queue().map(|q| q.name.clone());
    s.queues.list = list;
    refilter_queues(s, keep.as_deref());
}

/// `s` sorts by the next column (names and types ascending, numbers descending); `S`
/// reverses the order.
pub(super) fn sort(s: &mut State, action: Action) {
    if action == Action::SortNext {
        let i = SortColumn::ALL
            .iter()
            .position(|c| *c == s.queues.extra.sort)
            .unwrap_or(0);
        s.queues.extra.sort = SortColumn::ALL[(i + 1) % SortColumn::ALL.len()];
        s.queues.extra.descending =
            s.queues.extra.sort != SortColumn::Name && s.queues.extra.sort != SortColumn::Type;
    } else {
        s.queues.extra.descending = !s.queues.extra.descending;
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
    let mut idx = matching(q, |q| &q.name);
    let list = &q.list;
    idx.retain(|i| {
        q.extra
            .bound_to
            .as_ref()
            .is_none_or(|(_, names)| names.contains(&list[*i].name))
    });
    idx.sort_by(|a, b| {
        let (a, b) = (&list[*a], &list[*b]);
        let o = match q.extra.sort {
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
        if q.extra.descending { o.reverse() } else { o }
    });
    q.show(idx, keep, |q| &q.name);
    let rows = s.list_rows();
    keep_in_view(&mut s.queues.cursor, rows);
}
