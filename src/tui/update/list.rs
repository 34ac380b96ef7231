//! What loading a list view (queues, consumer groups, exchanges) takes, whichever it is:
//! one request at a time, its reply checked, the view's time and pace set.

use super::connection::{connection_failed, connection_ok};
use super::{Effect, ListFilter, State, View, move_cursor, next_req};
use crate::tui::state::{ListView, ReqId};
use chrono::{DateTime, Utc};

/// Which list view of the state a helper works on.
pub(super) type Pick<T, X> = fn(&mut State) -> &mut ListView<T, X>;

/// Ask for the view's listing; a reply to an earlier request is stale from now on.
pub(super) fn load<T, X>(s: &mut State, view: Pick<T, X>, effect: fn(ReqId) -> Effect) -> Effect {
    let req = next_req(s);
    view(s).pending.start(req, ());
    effect(req)
}

/// A worker's answer to `load`: the request, the listing, when it came and how long it took.
pub(super) type Listed<L> = (ReqId, Result<L, String>, DateTime<Utc>, u64);

/// A listing came back at `at` after `took_ms` (which sets the pace of the next, see
/// `Pace`): `loaded` takes it when it answers the newest request and succeeded. A stale
/// reply is dropped; a failure goes to the connection, and leaves the pace to its back-off.
pub(super) fn reply<T, X, L>(
    s: &mut State,
    view: Pick<T, X>,
    (req, result, at, took_ms): Listed<L>,
    loaded: impl FnOnce(&mut State, L),
) -> Vec<Effect> {
    if view(s).pending.finish(req).is_none() {
        return Vec::new();
    }
    match result {
        Ok(list) => {
            connection_ok(s);
            let tick = s.tick;
            let v = view(s);
            v.refreshed_at = Some(at);
            v.pace.listed(tick, took_ms);
            loaded(s, list);
        }
        Err(e) => connection_failed(s, e),
    }
    Vec::new()
}

/// Open a view the backend may not have (`what` names its rows in the note saying so).
pub(super) fn open(
    s: &mut State,
    available: bool,
    what: &str,
    view: View,
    load: fn(&mut State) -> Effect,
) -> Vec<Effect> {
    if !available {
        s.status.info = Some(format!("the {} backend has no {what}", s.status.backend));
        return Vec::new();
    }
    s.stack = vec![View::Queues, view];
    vec![load(s)]
}

/// Move a list view's cursor over its visible rows; nothing to do beyond that.
pub(super) fn move_in<T, X>(v: &mut ListView<T, X>, delta: isize, rows: usize) -> Vec<Effect> {
    move_cursor(&mut v.cursor, v.visible.len(), delta, rows);
    Vec::new()
}

/// The rows whose name matches the view's filter, in list order.
pub(super) fn matching<T, X>(v: &ListView<T, X>, name: impl Fn(&T) -> &str) -> Vec<usize> {
    let m = ListFilter::new(&v.filter);
    (0..v.list.len())
        .filter(|i| v.filter.is_empty() || m.is_match(name(&v.list[*i])))
        .collect()
}
