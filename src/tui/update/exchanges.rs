//! The exchanges view (AMQP): loading and filtering it, and following an exchange's
//! bindings to the queues it routes to.

use super::list::{self, Listed, load, matching, open};
use super::queues::{load_queues, refilter_queues};
use super::{Effect, State, View, keep_in_view};
use crate::model::topology::{DestinationKind, Routing};

pub(super) fn load_exchanges(s: &mut State) -> Effect {
    load(s, |s| &mut s.exchanges, Effect::LoadExchanges)
}

pub(super) fn loaded(s: &mut State, reply: Listed<Routing>) -> Vec<Effect> {
    list::reply(s, |s| &mut s.exchanges, reply, show)
}

/// A new listing: the selected exchange stays selected.
fn show(s: &mut State, (list, bindings): Routing) {
    let keep = s.exchanges.selected().map(|e| e.name.clone());
    s.exchanges.list = list;
    s.exchanges.extra = bindings;
    refilter_exchanges(s, keep.as_deref());
}

pub(super) fn open_exchanges(s: &mut State) -> Vec<Effect> {
    let has = s.has_exchanges;
    let what = "exchanges (it routes by topic)";
    open(s, has, what, View::Exchanges, load_exchanges)
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
    s.queues.extra.bound_to = Some((shown.to_string(), queues.into_iter().collect()));
    s.queues.filter.clear();
    s.stack = vec![View::Queues];
    s.status.info = Some(format!("{n} queue(s) bound to {shown} (Esc: all queues)"));
    let keep = s.selected_queue().map(|q| q.name.clone());
    refilter_queues(s, keep.as_deref());
    vec![load_queues(s)]
}

pub(super) fn refilter_exchanges(s: &mut State, keep: Option<&str>) {
    let visible = matching(&s.exchanges, |e| &e.name);
    s.exchanges.show(visible, keep, |e| &e.name);
    let rows = s.list_rows();
    keep_in_view(&mut s.exchanges.cursor, rows);
}
