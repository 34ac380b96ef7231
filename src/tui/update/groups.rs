//! The consumer groups view (Kafka): loading and filtering the list.

use super::{Effect, ListFilter, State, View, next_req};
use crate::model::ConsumerGroup;
use crate::tui::state::ReqId;
use chrono::{DateTime, Utc};

pub(super) fn load_groups(s: &mut State) -> Effect {
    let req = next_req(s);
    s.groups.pending.start(req, ());
    Effect::LoadGroups(req)
}

pub(super) fn loaded(
    s: &mut State,
    req: ReqId,
    result: Result<Vec<ConsumerGroup>, String>,
    at: DateTime<Utc>,
    took_ms: u64,
) {
    if s.groups.pending.finish(req).is_none() {
        return;
    }
    match result {
        Ok(list) => {
            super::connection::connection_ok(s);
            s.groups.list = list;
            s.groups.refreshed_at = Some(at);
            s.groups.pace.listed(s.tick, took_ms);
            refilter_groups(s);
        }
        Err(e) => super::connection::connection_failed(s, e),
    }
}

pub(super) fn open_groups(s: &mut State) -> Vec<Effect> {
    if !s.has_groups {
        s.status.info = Some(format!(
            "the {} backend has no consumer groups",
            s.status.backend
        ));
        return Vec::new();
    }
    s.stack = vec![View::Queues, View::Groups];
    vec![load_groups(s)]
}

pub(super) fn refilter_groups(s: &mut State) {
    let g = &mut s.groups;
    let m = ListFilter::new(&g.filter);
    g.visible = (0..g.list.len())
        .filter(|i| g.filter.is_empty() || m.is_match(&g.list[*i].name))
        .collect();
    g.cursor.selected = g.cursor.selected.min(g.visible.len().saturating_sub(1));
}
