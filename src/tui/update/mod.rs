//! The one place state changes: `update(state, msg)` applies a key, a tick or a worker
//! reply and returns the effects to run. No I/O and no waiting here.
//!
//! This file only dispatches: each message and each action goes to the file of the view it
//! belongs to, named like its state (`state::queues`) and its drawing (`ui::queues`).

mod command;
mod confirm;
mod connection;
mod exchanges;
mod groups;
mod help;
mod info;
mod input;
mod list;
mod message;
mod messages;
mod queues;
mod trace;

// `Msg` lives in `msg`; named here too, where the worker and the tests find it.
pub use super::msg::Msg;
pub use info::info_lines;

use super::keymap::{Action, Key, KeyCode};
use super::state::*;
use crate::backend::PeekFrom;
use regex::Regex;

pub fn update(s: &mut State, msg: Msg) -> Vec<Effect> {
    let mut fx = apply(s, msg);
    fx.extend(trace::reap_trace(s));
    fx
}

fn apply(s: &mut State, msg: Msg) -> Vec<Effect> {
    match msg {
        Msg::Key(key) => on_key(s, key),
        Msg::Scroll(n) => {
            let action = if n > 0 { Action::Down } else { Action::Up };
            let mut fx = Vec::new();
            for _ in 0..n.unsigned_abs().min(10) {
                fx.extend(act(s, action));
            }
            fx
        }
        Msg::Resize(w, h) => {
            s.width = w;
            s.height = h;
            let rows = s.list_rows();
            for c in [
                &mut s.queues.cursor,
                &mut s.groups.cursor,
                &mut s.exchanges.cursor,
                &mut s.messages.cursor,
                &mut s.trace.cursor,
            ] {
                keep_in_view(c, rows);
            }
            Vec::new()
        }
        Msg::Tick => connection::on_tick(s),
        Msg::Connected {
            backend,
            target,
            server,
            has_groups,
            has_exchanges,
        } => connection::connected(s, backend, target, server, has_groups, has_exchanges),
        Msg::ConnectFailed(e) => {
            connection::connection_failed(s, e);
            Vec::new()
        }
        Msg::VhostSwitchFailed(e) => connection::vhost_switch_failed(s, e),
        Msg::QueuesLoaded {
            req,
            result,
            at,
            took_ms,
        } => queues::loaded(s, (req, result, at, took_ms)),
        Msg::GroupsLoaded {
            req,
            result,
            at,
            took_ms,
        } => groups::loaded(s, (req, result, at, took_ms)),
        Msg::ExchangesLoaded {
            req,
            result,
            at,
            took_ms,
        } => exchanges::loaded(s, (req, result, at, took_ms)),
        Msg::VhostsLoaded { req, result } => {
            connection::vhosts_loaded(s, req, result);
            Vec::new()
        }
        Msg::MessagesLoaded { req, result } => messages::on_page(s, req, result),
        Msg::RegistryNote(note) => {
            s.status.info = Some(note);
            Vec::new()
        }
        Msg::Saved(r) => {
            message::saved(s, r);
            Vec::new()
        }
        Msg::Modified(r) => confirm::modified(s, r),
        Msg::TraceEvent { req, event } => {
            if s.trace.pending.is_current(req) {
                trace::on_trace_event(s, event);
            }
            Vec::new()
        }
        Msg::TraceProgress {
            req,
            scanned,
            elapsed_ms,
        } => {
            trace::progress(s, req, scanned, elapsed_ms);
            Vec::new()
        }
        Msg::TraceDone { req, result } => {
            if s.trace.pending.finish(req).is_some() {
                trace::on_trace_done(s, result);
            }
            Vec::new()
        }
        Msg::FollowHop { req, result } => {
            trace::follow_hop(s, req, result);
            Vec::new()
        }
        Msg::FollowEnded { req, error } => {
            trace::follow_ended(s, req, error);
            Vec::new()
        }
        Msg::Described { req, result } => {
            info::described(s, req, result);
            Vec::new()
        }
    }
}

fn next_req(s: &mut State) -> ReqId {
    let r = s.next_req;
    s.next_req += 1;
    r
}

fn on_key(s: &mut State, key: Key) -> Vec<Effect> {
    if let Some(c) = s.confirm.clone() {
        return confirm::on_confirm_key(s, key, c);
    }
    if s.input.is_some() {
        return input::on_input_key(s, key);
    }
    if key.ctrl && key.code == KeyCode::Char('c') {
        s.quit = true;
        return vec![Effect::Quit];
    }
    match s.keymap.lookup(s.view().scope(), &key) {
        Some(action) => {
            s.status.info = None;
            act(s, action)
        }
        None => Vec::new(),
    }
}

fn move_cursor(c: &mut Cursor, len: usize, delta: isize, rows: usize) {
    if len == 0 {
        *c = Cursor::default();
        return;
    }
    let target = (c.selected as isize + delta).clamp(0, len as isize - 1);
    c.selected = target as usize;
    keep_in_view(c, rows);
}

fn keep_in_view(c: &mut Cursor, rows: usize) {
    if c.selected < c.offset {
        c.offset = c.selected;
    } else if c.selected >= c.offset + rows {
        c.offset = c.selected + 1 - rows;
    }
}

fn act(s: &mut State, action: Action) -> Vec<Effect> {
    let rows = s.list_rows();
    let page = rows as isize;
    let view = s.view();
    // The cursor moves over, and Enter opens, the rows as drawn: bring them up to date.
    if view == View::Trace {
        trace::refresh_rows(&mut s.trace);
    }
    match action {
        Action::Quit => {
            s.quit = true;
            vec![Effect::Quit]
        }
        Action::Back if view == View::Trace && s.trace.pending.is_some() => trace::cancel(s),
        Action::Back => back(s, view),
        Action::Help => {
            help::toggle(s, view);
            Vec::new()
        }
        Action::Command => {
            input::start_command(s);
            Vec::new()
        }
        Action::Filter => {
            input::start_filter(s, view);
            Vec::new()
        }
        Action::Refresh => refresh(s, view),
        Action::Queues => {
            s.stack = vec![View::Queues];
            s.queues.extra.bound_to = None;
            vec![queues::load_queues(s)]
        }
        Action::Groups => groups::open_groups(s),
        Action::Exchanges => exchanges::open_exchanges(s),
        Action::NextPane => match view {
            View::Message => {
                message::next_pane(s);
                Vec::new()
            }
            // Queues, then consumer groups and exchanges where the backend has them.
            View::Queues if s.has_groups => groups::open_groups(s),
            View::Queues | View::Groups if s.has_exchanges => exchanges::open_exchanges(s),
            View::Groups | View::Exchanges => {
                s.stack = vec![View::Queues];
                vec![queues::load_queues(s)]
            }
            _ => Vec::new(),
        },
        Action::SortNext | Action::SortReverse if view == View::Queues => {
            queues::sort(s, action);
            Vec::new()
        }
        Action::Open => open(s, view),
        Action::Trace if matches!(view, View::Messages | View::Message) => trace::trace_current(s),
        Action::Follow if view == View::Trace => trace::follow(s),
        Action::NextPartition | Action::PrevPartition if view == View::Messages => {
            messages::switch_partition(s, action)
        }
        Action::PayloadMode if view == View::Message => {
            message::next_mode(s);
            Vec::new()
        }
        Action::Wrap if view == View::Message => {
            s.message.wrap = !s.message.wrap;
            Vec::new()
        }
        Action::Save if view == View::Message => message::save(s),
        Action::Copy if view == View::Message => message::copy(s),
        Action::Mark if view == View::Messages => {
            messages::mark(s, rows);
            Vec::new()
        }
        Action::Replay | Action::Delete if view == View::Messages => {
            confirm::ask_to_modify(s, action)
        }
        Action::Purge if matches!(view, View::Messages | View::Queues) => {
            confirm::ask_to_modify(s, action)
        }
        Action::Info => info::info_of_view(s, view),
        Action::Up
        | Action::Down
        | Action::PageUp
        | Action::PageDown
        | Action::Top
        | Action::Bottom => {
            let delta = match action {
                Action::Up => -1,
                Action::Down => 1,
                Action::PageUp => -page,
                Action::PageDown => page,
                Action::Top => isize::MIN / 2,
                _ => isize::MAX / 2,
            };
            navigate(s, view, action, delta, rows)
        }
        _ => Vec::new(),
    }
}

/// Esc: leave the view (or, in the queue list, the "bound to an exchange" filter).
fn back(s: &mut State, view: View) -> Vec<Effect> {
    if view == View::Queues && s.queues.extra.bound_to.is_some() {
        // Esc leaves the "bound to an exchange" list for the whole one.
        s.queues.extra.bound_to = None;
        let keep = s.selected_queue().map(|q| q.name.clone());
        queues::refilter_queues(s, keep.as_deref());
        return Vec::new();
    }
    if view == View::Messages {
        s.messages.window.clear();
        s.messages.visible.clear();
        s.messages.pending.clear();
        s.messages.force = false;
    }
    if s.stack.len() > 1 {
        s.stack.pop();
    }
    if s.view() == View::Queues {
        return vec![queues::load_queues(s)];
    }
    Vec::new()
}

/// Ctrl-R: load the view's contents again now.
fn refresh(s: &mut State, view: View) -> Vec<Effect> {
    match view {
        View::Trace if !s.trace.id.is_empty() => {
            let id = s.trace.id.clone();
            trace::start_trace(s, id)
        }
        View::Queues => vec![queues::load_queues(s)],
        View::Groups => vec![groups::load_groups(s)],
        View::Exchanges => vec![exchanges::load_exchanges(s)],
        View::Messages => messages::reload_messages(s, PeekFrom::Start),
        View::Info => {
            let q = s.info.queue.clone();
            info::open_info(s, q)
        }
        _ => Vec::new(),
    }
}

/// Enter: open what is under the cursor.
fn open(s: &mut State, view: View) -> Vec<Effect> {
    match view {
        View::Queues => match s.selected_queue().cloned() {
            Some(q) => queues::open_queue(s, &q),
            None => Vec::new(),
        },
        View::Messages => {
            if let Some(m) = s.selected_message().cloned() {
                message::open_message(s, m);
            }
            Vec::new()
        }
        View::Trace => match s.selected_hop().cloned() {
            Some(h) => trace::jump_to_hop(s, &h),
            None => Vec::new(),
        },
        View::Exchanges => match s.exchanges.selected().map(|e| e.name.clone()) {
            Some(name) => exchanges::show_bound_queues(s, &name),
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

fn navigate(s: &mut State, view: View, action: Action, delta: isize, rows: usize) -> Vec<Effect> {
    match view {
        View::Queues => list::move_in(&mut s.queues, delta, rows),
        View::Groups => list::move_in(&mut s.groups, delta, rows),
        View::Exchanges => list::move_in(&mut s.exchanges, delta, rows),
        View::Messages => messages::navigate(s, action, delta, rows),
        View::Message => {
            message::scroll(s, delta);
            Vec::new()
        }
        View::Trace => {
            let len = s.trace.rows.len();
            move_cursor(&mut s.trace.cursor, len, delta, rows);
            Vec::new()
        }
        View::Help => {
            help::scroll(s, delta);
            Vec::new()
        }
        View::Info => {
            info::scroll(s, delta, rows);
            Vec::new()
        }
    }
}

/// A filter matches as a case-insensitive regex when it is one, else as plain text.
struct ListFilter(Option<Regex>, String);

impl ListFilter {
    fn new(filter: &str) -> Self {
        let re = regex::RegexBuilder::new(filter)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .ok();
        ListFilter(re, filter.to_lowercase())
    }

    fn is_match(&self, text: &str) -> bool {
        match &self.0 {
            Some(re) => re.is_match(text),
            None => text.to_lowercase().contains(&self.1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{QueueKind, QueueSummary};
    use crate::tui::keymap::Keymap;

    fn connected() -> (State, ReqId) {
        let mut s = State::new("local", "local://demo", None, false, Keymap::default());
        let fx = update(
            &mut s,
            Msg::Connected {
                backend: "local".into(),
                target: "local://demo".into(),
                server: None,
                has_groups: false,
                has_exchanges: false,
            },
        );
        let Some(Effect::LoadQueues(req)) = fx.first().cloned() else {
            panic!("{fx:?}")
        };
        (s, req)
    }

    fn listing(req: ReqId, names: &[&str]) -> Msg {
        Msg::QueuesLoaded {
            req,
            result: Ok(names
                .iter()
                .map(|n| QueueSummary::new(*n, QueueKind::Queue, "classic"))
                .collect()),
            at: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            took_ms: 5,
        }
    }

    #[test]
    fn a_registry_that_cannot_be_reached_is_a_status_note_and_nothing_else() {
        let (mut s, _) = connected();
        let note =
            "registry http://r:8081 is unreachable: connection refused: payloads are shown raw";
        assert!(update(&mut s, Msg::RegistryNote(note.into())).is_empty());
        assert_eq!(s.status.info.as_deref(), Some(note));
        assert_eq!(s.status.error, None);
    }

    #[test]
    fn only_the_newest_listing_is_shown() {
        let (mut s, first) = connected();
        // Ctrl-R asks again before the first listing came back.
        let fx = update(&mut s, Msg::Key(Key::ctrl('r')));
        let Some(Effect::LoadQueues(second)) = fx.first().cloned() else {
            panic!("{fx:?}")
        };
        update(&mut s, listing(first, &["stale"]));
        assert!(s.queues.list.is_empty());
        assert!(s.queues.pending.is_some());
        update(&mut s, listing(second, &["fresh"]));
        assert_eq!(s.queues.list.len(), 1);
        assert_eq!(s.queues.list[0].name, "fresh");
        assert!(s.queues.pending.is_none());
        // Its answer, once more, changes nothing.
        update(&mut s, listing(second, &["again", "twice"]));
        assert_eq!(s.queues.list.len(), 1);
    }

    #[test]
    fn a_filter_is_a_case_insensitive_regex_or_else_plain_text() {
        assert!(ListFilter::new("^ORD.*dlq$").is_match("orders.dlq"));
        assert!(!ListFilter::new("^ord$").is_match("orders"));
        // Not a regex: matched as text.
        assert!(ListFilter::new("a(b").is_match("xA(By"));
    }

    #[test]
    fn the_cursor_stays_on_screen() {
        let mut c = Cursor::default();
        move_cursor(&mut c, 100, 25, 10);
        assert_eq!((c.selected, c.offset), (25, 16));
        move_cursor(&mut c, 100, -20, 10);
        assert_eq!((c.selected, c.offset), (5, 5));
        move_cursor(&mut c, 100, isize::MAX / 2, 10);
        assert_eq!((c.selected, c.offset), (99, 90));
        move_cursor(&mut c, 0, 1, 10);
        assert_eq!(c, Cursor::default());
    }
}
