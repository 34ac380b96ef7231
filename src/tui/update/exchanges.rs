//! The exchanges view (AMQP): loading and filtering it, and following an exchange's
//! bindings to the queues it routes to.

use super::queues::{load_queues, refilter_queues};
use super::{Effect, ListFilter, State, View, keep_in_view, next_req};
use crate::model::topology::{Binding, DestinationKind, ExchangeSummary};
use crate::tui::state::ReqId;
use chrono::{DateTime, Utc};

pub(super) fn load_exchanges(s: &mut State) -> Effect {
    let req = next_req(s);
    s.exchanges.pending.start(req, ());
    Effect::LoadExchanges(req)
}

pub(super) fn loaded(
    s: &mut State,
    req: ReqId,
    result: Result<(Vec<ExchangeSummary>, Vec<Binding>), String>,
    at: DateTime<Utc>,
    took_ms: u64,
) {
    if s.exchanges.pending.finish(req).is_none() {
        return;
    }
    match result {
        Ok((list, bindings)) => {
            super::connection::connection_ok(s);
            let keep = s.exchanges.selected().map(|e| e.name.clone());
            s.exchanges.list = list;
            s.exchanges.bindings = bindings;
            s.exchanges.refreshed_at = Some(at);
            s.exchanges.pace.listed(s.tick, took_ms);
            refilter_exchanges(s, keep.as_deref());
        }
        Err(e) => super::connection::connection_failed(s, e),
    }
}

pub(super) fn open_exchanges(s: &mut State) -> Vec<Effect> {
    if !s.has_exchanges {
        s.status.info = Some(format!(
            "the {} backend has no exchanges (it routes by topic)",
            s.status.backend
        ));
        return Vec::new();
    }
    s.stack = vec![View::Queues, View::Exchanges];
    vec![load_exchanges(s)]
}

/// Every queue `exchange` has a binding path to, through exchange-to-exchange bindings
/// too, in binding order (whether a message takes a path depends on its routing key).
fn queues_bound_to(s: &State, exchange: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo = vec![exchange.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(x) = todo.pop() {
        if !seen.insert(x.clone()) {
            continue;
        }
        for b in s.exchanges.bindings_from(&x) {
            match b.destination_kind {
                DestinationKind::Queue if !out.contains(&b.destination) => {
                    out.push(b.destination.clone())
                }
                DestinationKind::Queue => {}
                DestinationKind::Exchange => todo.push(b.destination.clone()),
            }
        }
    }
    out
}

/// The queues view, filtered down to the queues an exchange routes to.
pub(super) fn show_bound_queues(s: &mut State, exchange: &str) -> Vec<Effect> {
    let queues = queues_bound_to(s, exchange);
    let shown = if exchange.is_empty() {
        "the default exchange"
    } else {
        exchange
    };
    if queues.is_empty() {
        s.status.info = Some(format!("{shown} has no bindings to a queue"));
        return Vec::new();
    }
    let n = queues.len();
    s.queues.bound_to = Some((shown.to_string(), queues.into_iter().collect()));
    s.queues.filter.clear();
    s.stack = vec![View::Queues];
    s.status.info = Some(format!("{n} queue(s) bound to {shown} (Esc: all queues)"));
    let keep = s.selected_queue().map(|q| q.name.clone());
    refilter_queues(s, keep.as_deref());
    vec![load_queues(s)]
}

pub(super) fn refilter_exchanges(s: &mut State, keep: Option<&str>) {
    let x = &mut s.exchanges;
    let m = ListFilter::new(&x.filter);
    x.visible = (0..x.list.len())
        .filter(|i| x.filter.is_empty() || m.is_match(&x.list[*i].name))
        .collect();
    if let Some(name) = keep
        && let Some(pos) = x.visible.iter().position(|i| x.list[*i].name == name)
    {
        x.cursor.selected = pos;
    }
    x.cursor.selected = x.cursor.selected.min(x.visible.len().saturating_sub(1));
    let rows = s.list_rows();
    keep_in_view(&mut s.exchanges.cursor, rows);
}
