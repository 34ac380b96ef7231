//! The one place state changes: `update(state, msg)` applies a key, a tick or a worker
//! reply and returns the effects to run. No I/O and no waiting here.

use super::keymap::{Action, Key, KeyCode};
use super::state::*;
use crate::backend::{PeekFrom, PeekPage};
use crate::format::record::message_record;
use crate::model::topology::{Binding, DestinationKind, ExchangeSummary};
use crate::model::{ConsumerGroup, FieldTable, FieldValue, Message, QueueKind, QueueSummary};
use crate::ops::trace::{Extractor, Hop, HopKind, TraceEvent, hop_order};
use chrono::{DateTime, Utc};
use regex::Regex;
use std::cmp::Ordering;

/// Everything that can happen to the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(Key),
    /// Mouse wheel: positive scrolls down.
    Scroll(i32),
    Resize(u16, u16),
    /// One second passed.
    Tick,
    Connected {
        backend: String,
        target: String,
        /// The broker's product and version, where it says (`RabbitMQ 4.3.6`).
        server: Option<String>,
        has_groups: bool,
        has_exchanges: bool,
    },
    ConnectFailed(String),
    /// `:vhost NAME` could not connect there; the old vhost's connection is kept.
    VhostSwitchFailed(String),
    /// `took_ms`, how long the listing took, sets the pace of the next (see `Pace`).
    QueuesLoaded {
        req: ReqId,
        result: Result<Vec<QueueSummary>, String>,
        at: DateTime<Utc>,
        took_ms: u64,
    },
    GroupsLoaded {
        req: ReqId,
        result: Result<Vec<ConsumerGroup>, String>,
        at: DateTime<Utc>,
        took_ms: u64,
    },
    ExchangesLoaded {
        req: ReqId,
        result: Result<(Vec<ExchangeSummary>, Vec<Binding>), String>,
        at: DateTime<Utc>,
        took_ms: u64,
    },
    VhostsLoaded {
        req: ReqId,
        result: Result<Vec<String>, String>,
    },
    MessagesLoaded {
        req: ReqId,
        result: Result<PeekPage, String>,
    },
    Saved(Result<String, String>),
    /// A replay, purge or delete finished: one line saying what happened, or why not.
    Modified(Result<String, String>),
    /// A running trace found something or finished a queue.
    TraceEvent {
        req: ReqId,
        event: TraceEvent,
    },
    /// Messages read so far and time taken, for the progress line.
    TraceProgress {
        req: ReqId,
        scanned: u64,
        elapsed_ms: u64,
    },
    TraceDone {
        req: ReqId,
        result: Result<Box<crate::ops::trace::Trace>, String>,
    },
    /// A new hop from the live follow, or a problem it survived.
    FollowHop {
        req: ReqId,
        result: Result<Box<Hop>, String>,
    },
    /// The live follow ended (its tail closed or could not start).
    FollowEnded {
        req: ReqId,
        error: Option<String>,
    },
    /// A queue's full description, for the info view.
    Described {
        req: ReqId,
        result: Result<Box<crate::model::QueueDetail>, String>,
    },
}

pub fn update(s: &mut State, msg: Msg) -> Vec<Effect> {
    let mut fx = apply(s, msg);
    fx.extend(reap_trace(s));
    fx
}

/// A trace no longer on the view stack has nobody to report to: stop its work.
fn reap_trace(s: &mut State) -> Vec<Effect> {
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
        Msg::Tick => on_tick(s),
        Msg::Connected {
            backend,
            target,
            server,
            has_groups,
            has_exchanges,
        } => {
            s.status.backend = backend;
            s.status.server = server;
            s.status.target = target;
            s.status.conn = Conn::Connected;
            s.status.error = None;
            s.has_groups = has_groups;
            s.has_exchanges = has_exchanges;
            s.backend_ready = true;
            vec![load_queues(s)]
        }
        Msg::ConnectFailed(e) => {
            connection_failed(s, e);
            Vec::new()
        }
        Msg::VhostSwitchFailed(e) => {
            s.status.error = Some(format!("could not switch virtual host: {e}"));
            s.status.info = None;
            s.status.conn = Conn::Connected;
            s.backend_ready = true;
            vec![load_queues(s)]
        }
        Msg::QueuesLoaded {
            req,
            result,
            at,
            took_ms,
        } => {
            if s.queues.pending != Some(req) {
                return Vec::new();
            }
            s.queues.pending = None;
            match result {
                Ok(list) => {
                    connection_ok(s);
                    // A failed listing leaves the pace to the reconnection's back-off.
                    s.queues.pace.listed(s.tick, took_ms);
                    let keep = s.selected_queue().map(|q| q.name.clone());
                    s.queues.list = list;
                    s.queues.refreshed_at = Some(at);
                    refilter_queues(s, keep.as_deref());
                }
                Err(e) => connection_failed(s, e),
            }
            Vec::new()
        }
        Msg::GroupsLoaded {
            req,
            result,
            at,
            took_ms,
        } => {
            if s.groups.pending != Some(req) {
                return Vec::new();
            }
            s.groups.pending = None;
            match result {
                Ok(list) => {
                    connection_ok(s);
                    s.groups.list = list;
                    s.groups.refreshed_at = Some(at);
                    s.groups.pace.listed(s.tick, took_ms);
                    refilter_groups(s);
                }
                Err(e) => connection_failed(s, e),
            }
            Vec::new()
        }
        Msg::ExchangesLoaded {
            req,
            result,
            at,
            took_ms,
        } => {
            if s.exchanges.pending != Some(req) {
                return Vec::new();
            }
            s.exchanges.pending = None;
            match result {
                Ok((list, bindings)) => {
                    connection_ok(s);
                    let keep = s.exchanges.selected().map(|e| e.name.clone());
                    s.exchanges.list = list;
                    s.exchanges.bindings = bindings;
                    s.exchanges.refreshed_at = Some(at);
                    s.exchanges.pace.listed(s.tick, took_ms);
                    refilter_exchanges(s, keep.as_deref());
                }
                Err(e) => connection_failed(s, e),
            }
            Vec::new()
        }
        Msg::VhostsLoaded { req, result } => {
            if s.vhosts_pending != Some(req) {
                return Vec::new();
            }
            s.vhosts_pending = None;
            match result {
                Ok(list) => {
                    s.status.info = Some(format!(
                        "virtual hosts: {} (:vhost NAME switches; Tab completes)",
                        list.join(", ")
                    ));
                    s.vhosts = list;
                }
                Err(e) => s.status.error = Some(e),
            }
            Vec::new()
        }
        Msg::MessagesLoaded { req, result } => on_page(s, req, result),
        Msg::Saved(r) => {
            match r {
                Ok(path) => s.status.info = Some(format!("saved {path}")),
                Err(e) => s.status.error = Some(format!("save failed: {e}")),
            }
            Vec::new()
        }
        Msg::Modified(r) => {
            match r {
                Ok(text) => {
                    s.status.error = None;
                    s.status.info = Some(text);
                }
                Err(e) => s.status.error = Some(e),
            }
            s.messages.marked.clear();
            // Show the queue as it is now.
            match s.view() {
                View::Messages => reload_messages(s, PeekFrom::Start),
                View::Queues => vec![load_queues(s)],
                _ => Vec::new(),
            }
        }
        Msg::TraceEvent { req, event } => {
            if s.trace.pending == Some(req) {
                on_trace_event(s, event);
            }
            Vec::new()
        }
        Msg::TraceProgress {
            req,
            scanned,
            elapsed_ms,
        } => {
            if s.trace.pending == Some(req) {
                s.trace.scanned = scanned;
                s.trace.elapsed_ms = elapsed_ms;
                refresh_rows(&mut s.trace);
            }
            Vec::new()
        }
        Msg::TraceDone { req, result } => {
            if s.trace.pending == Some(req) {
                s.trace.pending = None;
                on_trace_done(s, result);
            }
            Vec::new()
        }
        Msg::FollowHop { req, result } => {
            if s.trace.follow == Some(req) {
                match result {
                    Ok(hop) => {
                        insert_hop(&mut s.trace, *hop);
                        refresh_rows(&mut s.trace);
                    }
                    Err(e) => s.status.error = Some(format!("following: {e}")),
                }
            }
            Vec::new()
        }
        Msg::FollowEnded { req, error } => {
            if s.trace.follow == Some(req) {
                s.trace.follow = None;
                match error {
                    Some(e) => s.status.error = Some(format!("cannot follow live: {e}")),
                    None => s.status.info = Some("the live tail ended".into()),
                }
            }
            Vec::new()
        }
        Msg::Described { req, result } => {
            if s.info.pending != Some(req) {
                return Vec::new();
            }
            s.info.pending = None;
            match result {
                Ok(d) => {
                    s.info.detail = Some(d);
                    s.info.error = None;
                }
                Err(e) => s.info.error = Some(e),
            }
            Vec::new()
        }
    }
}

/// The info view on `queue`: pushed on the stack (Esc returns), its description asked
/// for. Describing again keeps the old one on screen until the new one arrives.
fn open_info(s: &mut State, queue: String) -> Vec<Effect> {
    let req = next_req(s);
    if s.info.queue != queue {
        s.info = QueueInfo::default();
        s.info.queue = queue.clone();
    }
    s.info.pending = Some(req);
    if s.view() != View::Info {
        s.info.scroll = 0;
        s.stack.push(View::Info);
    }
    vec![Effect::Describe { req, queue }]
}

/// Why `name` opens nothing: an exchange's name, a near miss of a queue's, or unknown.
/// What the user typed, echoed in a one-line message: cut short, so that a pasted wall of
/// text leaves the advice after it on screen.
fn echo(typed: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 60;
    match typed.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &typed[..end]).into(),
        None => typed.into(),
    }
}

fn not_a_queue(s: &State, name: &str) -> String {
    let base = format!("no queue or topic named \"{}\"", echo(name));
    if s.exchanges.list.iter().any(|e| e.name == name) {
        return format!("{base}: it is an exchange (:exchanges shows where it routes)");
    }
    let names: Vec<&str> = s.queues.list.iter().map(|q| q.name.as_str()).collect();
    let close = crate::model::names::closest(name, &names);
    if close.is_empty() {
        base
    } else {
        format!("{base}; did you mean {}?", close.join(" or "))
    }
}

/// Lines the info view draws (a title and a blank line per section), to bound scrolling.
pub fn info_lines(s: &State) -> usize {
    s.info.detail.as_ref().map_or(1, |d| {
        crate::model::describe::sections(d)
            .iter()
            .map(|sec| sec.rows.len() + 2)
            .sum()
    })
}

/// Open the trace view on `id` and start scanning; a trace already running (or
/// following) is stopped first.
pub fn start_trace(s: &mut State, id: String) -> Vec<Effect> {
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
    t.pending = Some(req);
    t.error = None;
    t.hops.clear();
    t.rows.clear();
    t.rows_stale = false;
    t.dropped = 0;
    t.skipped.clear();
    t.queues_total = 0;
    t.queues_done = 0;
    t.scanned = 0;
    t.elapsed_ms = 0;
    t.cursor = Cursor::default();
    if s.view() != View::Trace {
        s.stack.retain(|v| *v != View::Trace);
        s.stack.push(View::Trace);
    }
    fx.push(Effect::Trace { req, id });
    fx
}

fn on_trace_event(s: &mut State, event: TraceEvent) {
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

fn on_trace_done(s: &mut State, result: Result<Box<crate::ops::trace::Trace>, String>) {
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
            t.scanned = done.scanned;
            t.queues_done = usize::try_from(done.queues_scanned).unwrap_or(usize::MAX);
            t.elapsed_ms = done.elapsed_ms;
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

fn refresh_rows(t: &mut Trace) {
    if t.rows_stale {
        t.rows = crate::ops::trace::graph::rows(&t.hops);
        t.rows_stale = false;
        t.cursor.selected = t.cursor.selected.min(t.rows.len().saturating_sub(1));
    }
}

/// The correlation ID of the message the user is looking at, or why there is none.
fn trace_current(s: &mut State) -> Vec<Effect> {
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
fn jump_to_hop(s: &mut State, hop: &Hop) -> Vec<Effect> {
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
    s.messages.jump = s.messages.pending.map(|(req, _)| Jump {
        req,
        position,
        id: s.trace.id.clone(),
    });
    fx
}

/// After a jump's page arrives: select the hop's message and open it, or say it moved.
fn land_jump(s: &mut State, jump: Jump) {
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

fn next_req(s: &mut State) -> ReqId {
    let r = s.next_req;
    s.next_req += 1;
    r
}

fn load_queues(s: &mut State) -> Effect {
    let req = next_req(s);
    s.queues.pending = Some(req);
    Effect::LoadQueues(req)
}

fn load_groups(s: &mut State) -> Effect {
    let req = next_req(s);
    s.groups.pending = Some(req);
    Effect::LoadGroups(req)
}

fn load_exchanges(s: &mut State) -> Effect {
    let req = next_req(s);
    s.exchanges.pending = Some(req);
    Effect::LoadExchanges(req)
}

fn connection_ok(s: &mut State) {
    if s.status.conn != Conn::Connected {
        s.status.info = Some("connected".into());
    }
    s.status.conn = Conn::Connected;
    s.status.error = None;
}

/// Back off 2, 4, 8, ... up to 30 seconds between attempts.
fn connection_failed(s: &mut State, e: String) {
    let failures = match s.status.conn {
        Conn::Lost { failures, .. } => failures + 1,
        _ => 1,
    };
    let wait = (1u64 << failures.min(5)).min(30);
    s.status.conn = Conn::Lost {
        retry_at: s.tick + wait,
        failures,
    };
    s.status.error = Some(e);
}

fn on_tick(s: &mut State) -> Vec<Effect> {
    s.tick += 1;
    if let Conn::Lost { retry_at, .. } = s.status.conn {
        if s.tick < retry_at {
            return Vec::new();
        }
        if !s.backend_ready {
            s.status.conn = Conn::Connecting;
            return vec![Effect::Connect];
        }
        return refresh_current(s);
    }
    if !s.backend_ready || !s.tick.is_multiple_of(s.refresh_every()) {
        return Vec::new();
    }
    refresh_current(s)
}

/// Reload what the current view lists, unless a load is already under way.
fn refresh_current(s: &mut State) -> Vec<Effect> {
    match s.view() {
        View::Queues if s.queues.pending.is_none() && s.queues.pace.ready(s.tick) => {
            vec![load_queues(s)]
        }
        View::Groups if s.groups.pending.is_none() && s.groups.pace.ready(s.tick) => {
            vec![load_groups(s)]
        }
        View::Exchanges if s.exchanges.pending.is_none() && s.exchanges.pace.ready(s.tick) => {
            vec![load_exchanges(s)]
        }
        View::Info if s.info.pending.is_none() => {
            let q = s.info.queue.clone();
            open_info(s, q)
        }
        _ => Vec::new(),
    }
}

fn on_key(s: &mut State, key: Key) -> Vec<Effect> {
    if let Some(c) = s.confirm.clone() {
        if let Some(name) = &c.typed {
            return on_typed_confirm_key(s, key, name);
        }
        return match key.code {
            KeyCode::Char('y') | KeyCode::Char('Y') => {
                s.confirm = None;
                confirmed(s, c.action)
            }
            KeyCode::Char('n') | KeyCode::Char('N') | KeyCode::Esc => {
                s.confirm = None;
                s.status.info = Some("nothing was done".into());
                Vec::new()
            }
            // Anything else, Ctrl-C included, leaves the question on screen unanswered.
            _ => Vec::new(),
        };
    }
    if s.input.is_some() {
        return on_input_key(s, key);
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

/// A destructive action's question: only the queue's name, typed exactly, then Enter,
/// goes ahead; Esc cancels; nothing else does anything.
fn on_typed_confirm_key(s: &mut State, key: Key, name: &str) -> Vec<Effect> {
    let Some(c) = s.confirm.as_mut() else {
        return Vec::new();
    };
    match key.code {
        KeyCode::Esc => {
            s.confirm = None;
            s.status.info = Some("nothing was done".into());
        }
        KeyCode::Enter if c.answer == name => {
            let action = c.action.clone();
            s.confirm = None;
            return confirmed(s, action);
        }
        KeyCode::Enter => {
            s.status.error = Some(format!("type \"{name}\" exactly to go ahead, or Esc"));
        }
        KeyCode::Backspace => {
            c.answer.pop();
        }
        KeyCode::Char(ch) if !key.ctrl && !key.alt => c.answer.push(ch),
        _ => {}
    }
    Vec::new()
}

/// The user said yes.
fn confirmed(s: &mut State, action: ConfirmAction) -> Vec<Effect> {
    match action {
        ConfirmAction::ForcePeek => {
            s.messages.force = true;
            s.status.error = None;
            let from = s.messages.last_from.clone();
            reload_messages(s, from)
        }
        other => {
            s.status.error = None;
            s.status.info = Some(match &other {
                ConfirmAction::Replay { queue, .. } => format!("replaying from {queue}…"),
                ConfirmAction::Purge { queue } => format!("backing up and purging {queue}…"),
                ConfirmAction::Delete { queue, .. } => {
                    format!("backing up and deleting from {queue}…")
                }
                ConfirmAction::ForcePeek => String::new(),
            });
            vec![Effect::Modify(other)]
        }
    }
}

/// Ask before replaying, purging or deleting; refuse in read-only mode.
fn ask_to_modify(s: &mut State, action: Action) -> Vec<Effect> {
    if s.status.read_only {
        s.status.error = Some("read-only: replay, purge and delete are off".into());
        return Vec::new();
    }
    let view = s.view();
    let queue = match view {
        View::Messages => s.messages.queue.clone(),
        View::Queues => match s.queues.visible.get(s.queues.cursor.selected) {
            Some(i) => s.queues.list[*i].name.clone(),
            None => return Vec::new(),
        },
        _ => return Vec::new(),
    };
    let is_log = match view {
        View::Messages => s.messages.kind.is_log(),
        _ => s
            .queues
            .list
            .iter()
            .any(|q| q.name == queue && q.kind.is_log()),
    };
    if is_log && action != Action::Replay {
        s.status.error = Some(format!("{queue} is a log: nothing can be removed from it"));
        return Vec::new();
    }
    let m = &s.messages;
    let keys = |idx: &[usize]| -> Vec<String> {
        idx.iter()
            .filter_map(|i| m.window.get(*i))
            .map(crate::model::identity::message_key)
            .collect()
    };
    let (title, body, act, typed) = match action {
        Action::Replay => {
            let (what, ids) = if !m.marked.is_empty() {
                (
                    format!("the {} marked message(s)", m.marked.len()),
                    m.marked.iter().cloned().collect(),
                )
            } else if !m.filter.is_empty() {
                let ids = keys(&m.visible);
                (format!("the {} filtered message(s)", ids.len()), ids)
            } else {
                ("every message".to_string(), Vec::new())
            };
            (
                format!("Replay from {queue}?"),
                format!(
                    "Replay {what} in {queue} to where each came from (x-death / DLT headers). Each copy is published with a confirm before its original is removed; a journal makes it resumable (mqscope replay --resume)."
                ),
                ConfirmAction::Replay {
                    queue: queue.clone(),
                    ids,
                },
                None,
            )
        }
        Action::Purge => (
            format!("Purge {queue}?"),
            format!(
                "Remove every message from {queue}. They are written to a backup file first (restore with mqscope publish --from FILE). Type the queue name and Enter to go ahead."
            ),
            ConfirmAction::Purge {
                queue: queue.clone(),
            },
            Some(queue.clone()),
        ),
        Action::Delete => {
            let ids: Vec<String> = if m.marked.is_empty() {
                m.visible
                    .get(m.cursor.selected)
                    .and_then(|i| m.window.get(*i))
                    .map(crate::model::identity::message_key)
                    .into_iter()
                    .collect()
            } else {
                m.marked.iter().cloned().collect()
            };
            if ids.is_empty() {
                return Vec::new();
            }
            (
                format!("Delete from {queue}?"),
                format!(
                    "Remove {} message(s) from {queue}; the others keep their order. They are written to a backup file first. Type the queue name and Enter to go ahead.",
                    ids.len()
                ),
                ConfirmAction::Delete {
                    queue: queue.clone(),
                    ids,
                },
                Some(queue.clone()),
            )
        }
        _ => return Vec::new(),
    };
    s.confirm = Some(Confirm {
        title,
        body,
        action: act,
        typed,
        answer: String::new(),
    });
    Vec::new()
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

pub fn act(s: &mut State, action: Action) -> Vec<Effect> {
    let rows = s.list_rows();
    let page = rows as isize;
    let view = s.view();
    // The cursor moves over, and Enter opens, the rows as drawn: bring them up to date.
    if view == View::Trace {
        refresh_rows(&mut s.trace);
    }
    match action {
        Action::Quit => {
            s.quit = true;
            vec![Effect::Quit]
        }
        Action::Back if view == View::Trace && s.trace.pending.is_some() => {
            if let Some(req) = s.trace.pending.take() {
                s.trace.phase = TracePhase::Cancelled;
                s.status.info = Some("trace cancelled".into());
                return vec![Effect::CancelTrace(req)];
            }
            Vec::new()
        }
        Action::Back => {
            if view == View::Queues && s.queues.bound_to.is_some() {
                // Esc leaves the "bound to an exchange" list for the whole one.
                s.queues.bound_to = None;
                let keep = s.selected_queue().map(|q| q.name.clone());
                refilter_queues(s, keep.as_deref());
                return Vec::new();
            }
            if view == View::Messages {
                s.messages.window.clear();
                s.messages.visible.clear();
                s.messages.pending = None;
                s.messages.force = false;
            }
            if s.stack.len() > 1 {
                s.stack.pop();
            }
            if s.view() == View::Queues {
                return vec![load_queues(s)];
            }
            Vec::new()
        }
        Action::Help => {
            if view == View::Help {
                s.stack.pop();
            } else {
                s.help_scroll = 0;
                s.stack.push(View::Help);
            }
            Vec::new()
        }
        Action::Command => {
            s.input = Some(Input {
                kind: InputKind::Command,
                text: String::new(),
            });
            Vec::new()
        }
        Action::Filter => {
            let text = match view {
                View::Queues => s.queues.filter.clone(),
                View::Groups => s.groups.filter.clone(),
                View::Exchanges => s.exchanges.filter.clone(),
                View::Messages => s.messages.filter.clone(),
                _ => return Vec::new(),
            };
            s.input = Some(Input {
                kind: InputKind::Filter,
                text,
            });
            Vec::new()
        }
        Action::Refresh => match view {
            View::Trace if !s.trace.id.is_empty() => {
                let id = s.trace.id.clone();
                start_trace(s, id)
            }
            View::Queues => vec![load_queues(s)],
            View::Groups => vec![load_groups(s)],
            View::Exchanges => vec![load_exchanges(s)],
            View::Messages => reload_messages(s, PeekFrom::Start),
            View::Info => {
                let q = s.info.queue.clone();
                open_info(s, q)
            }
            _ => Vec::new(),
        },
        Action::Queues => {
            s.stack = vec![View::Queues];
            s.queues.bound_to = None;
            vec![load_queues(s)]
        }
        Action::Groups => open_groups(s),
        Action::Exchanges => open_exchanges(s),
        Action::NextPane => match view {
            View::Message => {
                s.message.pane = match s.message.pane {
                    Pane::Meta => Pane::Payload,
                    Pane::Payload => Pane::Meta,
                };
                Vec::new()
            }
            // Queues, then consumer groups and exchanges where the backend has them.
            View::Queues if s.has_groups => open_groups(s),
            View::Queues | View::Groups if s.has_exchanges => open_exchanges(s),
            View::Groups | View::Exchanges => {
                s.stack = vec![View::Queues];
                vec![load_queues(s)]
            }
            _ => Vec::new(),
        },
        Action::SortNext | Action::SortReverse if view == View::Queues => {
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
            Vec::new()
        }
        Action::Open => match view {
            View::Queues => match s.selected_queue().cloned() {
                Some(q) => open_queue(s, &q),
                None => Vec::new(),
            },
            View::Messages => {
                if let Some(m) = s.selected_message().cloned() {
                    open_message(s, m);
                }
                Vec::new()
            }
            View::Trace => match s.selected_hop().cloned() {
                Some(h) => jump_to_hop(s, &h),
                None => Vec::new(),
            },
            View::Exchanges => match s.exchanges.selected().map(|e| e.name.clone()) {
                Some(name) => show_bound_queues(s, &name),
                None => Vec::new(),
            },
            _ => Vec::new(),
        },
        Action::Trace if matches!(view, View::Messages | View::Message) => trace_current(s),
        Action::Follow if view == View::Trace => match s.trace.follow.take() {
            Some(req) => {
                s.status.info = Some("stopped following".into());
                vec![Effect::StopFollow(req)]
            }
            None if s.trace.id.is_empty() => Vec::new(),
            None => {
                let req = next_req(s);
                s.trace.follow = Some(req);
                s.status.info = Some(format!("following {} live", s.trace.id));
                vec![Effect::Follow {
                    req,
                    id: s.trace.id.clone(),
                }]
            }
        },
        Action::NextPartition | Action::PrevPartition if view == View::Messages => {
            let (Some(p), n) = (s.messages.partition, s.messages.partitions) else {
                return Vec::new();
            };
            let n = n.max(1) as i32;
            let step = if action == Action::NextPartition {
                1
            } else {
                n - 1
            };
            s.messages.partition = Some((p + step) % n);
            reload_messages(s, PeekFrom::Start)
        }
        Action::PayloadMode if view == View::Message => {
            s.message.mode = match s.message.mode {
                PayloadMode::Auto => PayloadMode::Json,
                PayloadMode::Json => PayloadMode::Text,
                PayloadMode::Text => PayloadMode::Hex,
                PayloadMode::Hex => PayloadMode::Auto,
            };
            render_body(&mut s.message);
            Vec::new()
        }
        Action::Wrap if view == View::Message => {
            s.message.wrap = !s.message.wrap;
            Vec::new()
        }
        Action::Save if view == View::Message => match &s.message.msg {
            Some(m) => {
                let rec = message_record(m, &Extractor::default());
                let name = format!(
                    "mqscope-{}-{}.json",
                    sanitize(&m.queue),
                    m.offset.map(|o| o as u64).unwrap_or(m.position)
                );
                vec![Effect::Save {
                    path: s.save_dir.join(name),
                    contents: serde_json::to_string_pretty(&rec).unwrap_or_default() + "\n",
                }]
            }
            None => Vec::new(),
        },
        Action::Copy if view == View::Message => match &s.message.msg {
            Some(m) => {
                s.status.info = Some("payload copied to the clipboard (OSC 52)".into());
                vec![Effect::Copy(
                    String::from_utf8_lossy(&m.payload).into_owned(),
                )]
            }
            None => Vec::new(),
        },
        Action::Mark if view == View::Messages => {
            let m = &mut s.messages;
            if let Some(msg) = m
                .visible
                .get(m.cursor.selected)
                .and_then(|i| m.window.get(*i))
            {
                let key = crate::model::identity::message_key(msg);
                if !m.marked.remove(&key) {
                    m.marked.insert(key);
                }
                let len = m.visible.len();
                move_cursor(&mut m.cursor, len, 1, rows);
            }
            Vec::new()
        }
        Action::Replay | Action::Delete if view == View::Messages => ask_to_modify(s, action),
        Action::Purge if matches!(view, View::Messages | View::Queues) => ask_to_modify(s, action),
        Action::Info => {
            let queue = match view {
                View::Queues => s.selected_queue().map(|q| q.name.clone()),
                View::Messages => Some(s.messages.queue.clone()),
                View::Info => Some(s.info.queue.clone()),
                _ => None,
            };
            match queue {
                Some(q) if !q.is_empty() => open_info(s, q),
                _ => Vec::new(),
            }
        }
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

fn navigate(s: &mut State, view: View, action: Action, delta: isize, rows: usize) -> Vec<Effect> {
    match view {
        View::Queues => {
            let len = s.queues.visible.len();
            move_cursor(&mut s.queues.cursor, len, delta, rows);
            Vec::new()
        }
        View::Groups => {
            let len = s.groups.visible.len();
            move_cursor(&mut s.groups.cursor, len, delta, rows);
            Vec::new()
        }
        View::Exchanges => {
            let len = s.exchanges.visible.len();
            move_cursor(&mut s.exchanges.cursor, len, delta, rows);
            Vec::new()
        }
        View::Messages => {
            let m = &mut s.messages;
            if action == Action::Top && !m.at_start && m.filter.is_empty() {
                return reload_messages(s, PeekFrom::Start);
            }
            if action == Action::Bottom && !m.at_end && m.filter.is_empty() {
                return reload_messages(s, PeekFrom::Last);
            }
            let len = m.visible.len();
            move_cursor(&mut m.cursor, len, delta, rows);
            prefetch(s)
        }
        View::Message => {
            let d = &mut s.message;
            let (scroll, len) = match d.pane {
                Pane::Meta => (&mut d.meta_scroll, d.meta.len()),
                Pane::Payload => {
                    let len = match d.body_kind {
                        BodyKind::Hex => d
                            .msg
                            .as_ref()
                            .map(|m| m.payload.len().div_ceil(16))
                            .unwrap_or(0),
                        _ => d.body.len(),
                    };
                    (&mut d.body_scroll, len)
                }
            };
            let max = len.saturating_sub(1) as isize;
            *scroll = (*scroll as isize + delta).clamp(0, max.max(0)) as usize;
            Vec::new()
        }
        View::Trace => {
            let len = s.trace.rows.len();
            move_cursor(&mut s.trace.cursor, len, delta, rows);
            Vec::new()
        }
        View::Help => {
            s.help_scroll = (s.help_scroll as isize + delta).clamp(0, 200) as usize;
            Vec::new()
        }
        View::Info => {
            let max = info_lines(s).saturating_sub(rows) as isize;
            s.info.scroll = (s.info.scroll as isize + delta).clamp(0, max) as usize;
            Vec::new()
        }
    }
}

fn open_groups(s: &mut State) -> Vec<Effect> {
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

fn open_exchanges(s: &mut State) -> Vec<Effect> {
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

/// `:vhost` lists the virtual hosts; `:vhost NAME` reconnects to one: everything listed
/// is cleared (it belonged to the old one) and the queue list loads again.
fn switch_vhost(s: &mut State, name: &str) -> Vec<Effect> {
    if s.status.backend != "rabbitmq" {
        s.status.error = Some(format!(
            "the {} backend has no virtual hosts to switch between",
            s.status.backend
        ));
        return Vec::new();
    }
    if name.is_empty() {
        let req = next_req(s);
        s.vhosts_pending = Some(req);
        return vec![Effect::LoadVhosts(req)];
    }
    if !s.vhosts.is_empty() && !s.vhosts.iter().any(|v| v == name) {
        s.status.error = Some(format!(
            "no virtual host \"{}\" (there are: {})",
            echo(name),
            s.vhosts.join(", ")
        ));
        return Vec::new();
    }
    s.stack = vec![View::Queues];
    s.queues.list.clear();
    s.queues.visible.clear();
    s.queues.cursor = Cursor::default();
    s.queues.pending = None;
    s.queues.refreshed_at = None;
    s.groups.list.clear();
    s.groups.visible.clear();
    s.groups.pending = None;
    s.exchanges.list.clear();
    s.exchanges.bindings.clear();
    s.exchanges.visible.clear();
    s.exchanges.pending = None;
    // The old vhost's filters mean nothing in the new one.
    s.queues.filter.clear();
    s.queues.bound_to = None;
    s.exchanges.filter.clear();
    s.backend_ready = false;
    s.status.conn = Conn::Connecting;
    s.status.error = None;
    s.status.info = Some(format!("switching to virtual host \"{name}\""));
    vec![Effect::SwitchVhost(name.to_string())]
}

/// Every queue `exchange` has a binding path to, through exchange-to-exchange bindings
/// too, in binding order (whether a message takes a path depends on its routing key).
pub fn queues_bound_to(s: &State, exchange: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut todo = vec![exchange.to_string()];
    let mut seen = std::collections::HashSet::new();
    while let Some(x) = todo.pop() {
        if !seen.insert(x.clone()) {
            continue;
        }
        for b in bindings_from(s, &x) {
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
fn show_bound_queues(s: &mut State, exchange: &str) -> Vec<Effect> {
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

/// The bindings whose source is `exchange`, in the broker's order.
pub fn bindings_from<'a>(s: &'a State, exchange: &str) -> Vec<&'a Binding> {
    s.exchanges
        .bindings
        .iter()
        .filter(|b| b.source == exchange)
        .collect()
}

fn open_queue(s: &mut State, q: &QueueSummary) -> Vec<Effect> {
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

/// Throw the window away and load a fresh page from `from`.
fn reload_messages(s: &mut State, from: PeekFrom) -> Vec<Effect> {
    let req = next_req(s);
    let m = &mut s.messages;
    m.window.clear();
    m.visible.clear();
    m.cursor = Cursor::default();
    m.at_start = from == PeekFrom::Start;
    m.at_end = false;
    m.error = None;
    m.notes.clear();
    let dir = if from == PeekFrom::Last {
        PageDir::End
    } else {
        PageDir::Replace
    };
    m.pending = Some((req, dir));
    m.last_from = from.clone();
    vec![Effect::LoadMessages {
        req,
        queue: m.queue.clone(),
        partition: m.partition,
        from,
        limit: PAGE,
        force: m.force,
    }]
}

/// Jump to a position (queue index or topic offset) or a time, from the command line.
pub fn jump(s: &mut State, from: PeekFrom) -> Vec<Effect> {
    if s.view() != View::Messages {
        s.status.error = Some("open a queue or topic first (Enter on the queue list)".into());
        return Vec::new();
    }
    reload_messages(s, from)
}

fn position_of(m: &Message) -> u64 {
    m.offset
        .and_then(|o| u64::try_from(o).ok())
        .unwrap_or(m.position)
}

/// Load the neighbouring page when the selection nears an edge of the window.
fn prefetch(s: &mut State) -> Vec<Effect> {
    let m = &s.messages;
    if m.pending.is_some() || m.window.is_empty() {
        return Vec::new();
    }
    let raw = m.visible.get(m.cursor.selected).copied().unwrap_or(0);
    let (first, last) = (
        position_of(&m.window[0]),
        position_of(&m.window[m.window.len() - 1]),
    );
    let (dir, from, limit) = if !m.at_end && raw + PREFETCH >= m.window.len() {
        (PageDir::Append, last + 1, PAGE)
    } else if !m.at_start && raw < PREFETCH {
        if first == 0 {
            return Vec::new();
        }
        let from = first.saturating_sub(PAGE as u64);
        (PageDir::Prepend, from, (first - from) as usize)
    } else {
        return Vec::new();
    };
    let req = next_req(s);
    let m = &mut s.messages;
    m.pending = Some((req, dir));
    vec![Effect::LoadMessages {
        req,
        queue: m.queue.clone(),
        partition: m.partition,
        from: PeekFrom::Position(from),
        limit,
        force: m.force,
    }]
}

fn on_page(s: &mut State, req: ReqId, result: Result<PeekPage, String>) -> Vec<Effect> {
    let m = &mut s.messages;
    let Some((pending, dir)) = m.pending else {
        return Vec::new();
    };
    if pending != req {
        return Vec::new();
    }
    m.pending = None;
    let page = match result {
        Ok(p) => p,
        Err(e) => {
            // A refusal is the backend protecting messages: ask before overriding it.
            if let Some(why) = e.strip_prefix("refused: ")
                && !m.force
            {
                s.confirm = Some(Confirm {
                    title: format!("Peek {} anyway?", m.queue),
                    body: why.to_string(),
                    action: ConfirmAction::ForcePeek,
                    typed: None,
                    answer: String::new(),
                });
            }
            m.error = Some(e.clone());
            m.jump = None;
            s.status.error = Some(e);
            return Vec::new();
        }
    };
    let got = page.messages.len();
    m.notes = page.notes;
    let keep_raw = m.visible.get(m.cursor.selected).copied();
    match dir {
        PageDir::Replace => {
            m.at_end = got < PAGE;
            m.at_start = m.at_start || page.messages.first().is_some_and(|f| position_of(f) == 0);
            m.window = page.messages;
        }
        PageDir::End => {
            m.at_end = true;
            m.at_start = page.messages.first().is_none_or(|f| position_of(f) == 0);
            m.window = page.messages;
            m.cursor.selected = usize::MAX;
        }
        PageDir::Append => {
            if got < PAGE {
                m.at_end = true;
            }
            m.window.extend(page.messages);
            if m.window.len() > MAX_WINDOW {
                let cut = m.window.len() - MAX_WINDOW;
                m.window.drain(..cut);
                m.at_start = false;
                if let Some(r) = keep_raw {
                    m.cursor.selected = r.saturating_sub(cut);
                }
            }
        }
        PageDir::Prepend => {
            if got == 0 || page.messages.first().is_some_and(|f| position_of(f) == 0) {
                m.at_start = true;
            }
            let mut new = page.messages;
            new.append(&mut m.window);
            m.window = new;
            if let Some(r) = keep_raw {
                m.cursor.selected = r + got;
            }
            if m.window.len() > MAX_WINDOW {
                m.window.truncate(MAX_WINDOW);
                m.at_end = false;
            }
        }
    }
    refilter_messages(s);
    let rows = s.list_rows();
    let m = &mut s.messages;
    if !m.visible.is_empty() {
        m.cursor.selected = m.cursor.selected.min(m.visible.len() - 1);
    } else {
        m.cursor.selected = 0;
    }
    keep_in_view(&mut m.cursor, rows);
    if let Some(jump) = s.messages.jump.take_if(|j| j.req == req) {
        land_jump(s, jump);
    }
    Vec::new()
}

fn on_input_key(s: &mut State, key: Key) -> Vec<Effect> {
    let Some(input) = s.input.as_mut() else {
        return Vec::new();
    };
    match key.code {
        KeyCode::Esc => {
            let kind = input.kind;
            s.input = None;
            if kind == InputKind::Filter {
                set_filter(s, String::new());
            }
            Vec::new()
        }
        KeyCode::Enter => {
            let Some(input) = s.input.take() else {
                return Vec::new();
            };
            match input.kind {
                InputKind::Filter => {
                    set_filter(s, input.text);
                    Vec::new()
                }
                InputKind::Command => run_command(s, input.text.trim()),
            }
        }
        KeyCode::Backspace => {
            input.text.pop();
            if input.kind == InputKind::Filter {
                let t = input.text.clone();
                set_filter(s, t);
            }
            Vec::new()
        }
        KeyCode::Tab if input.kind == InputKind::Command => {
            if let Some(done) = complete(
                s,
                &s.input.as_ref().map(|i| i.text.clone()).unwrap_or_default(),
            ) && let Some(i) = s.input.as_mut()
            {
                i.text = done;
            }
            Vec::new()
        }
        KeyCode::Char(c) if !key.ctrl && !key.alt => {
            input.text.push(c);
            if input.kind == InputKind::Filter {
                let t = input.text.clone();
                set_filter(s, t);
            }
            Vec::new()
        }
        _ => Vec::new(),
    }
}

fn set_filter(s: &mut State, text: String) {
    match s.view() {
        View::Queues => {
            s.queues.filter = text;
            let keep = s.selected_queue().map(|q| q.name.clone());
            refilter_queues(s, keep.as_deref());
        }
        View::Groups => {
            s.groups.filter = text;
            refilter_groups(s);
        }
        View::Exchanges => {
            s.exchanges.filter = text;
            let keep = s.exchanges.selected().map(|e| e.name.clone());
            refilter_exchanges(s, keep.as_deref());
        }
        View::Messages => {
            s.messages.filter = text;
            s.messages.cursor = Cursor::default();
            refilter_messages(s);
        }
        _ => {}
    }
}

/// A filter matches as a case-insensitive regex when it is one, else as plain text.
pub struct Matcher(Option<Regex>, String);

impl Matcher {
    pub fn new(filter: &str) -> Self {
        let re = regex::RegexBuilder::new(filter)
            .case_insensitive(true)
            .size_limit(1 << 20)
            .build()
            .ok();
        Matcher(re, filter.to_lowercase())
    }

    pub fn is_match(&self, text: &str) -> bool {
        match &self.0 {
            Some(re) => re.is_match(text),
            None => text.to_lowercase().contains(&self.1),
        }
    }
}

fn cmp_opt<T: PartialOrd>(a: Option<T>, b: Option<T>) -> Ordering {
    match (a, b) {
        (Some(a), Some(b)) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
        (Some(_), None) => Ordering::Greater,
        (None, Some(_)) => Ordering::Less,
        (None, None) => Ordering::Equal,
    }
}

fn refilter_queues(s: &mut State, keep: Option<&str>) {
    let q = &mut s.queues;
    let m = Matcher::new(&q.filter);
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

fn refilter_groups(s: &mut State) {
    let g = &mut s.groups;
    let m = Matcher::new(&g.filter);
    g.visible = (0..g.list.len())
        .filter(|i| g.filter.is_empty() || m.is_match(&g.list[*i].name))
        .collect();
    g.cursor.selected = g.cursor.selected.min(g.visible.len().saturating_sub(1));
}

fn refilter_exchanges(s: &mut State, keep: Option<&str>) {
    let x = &mut s.exchanges;
    let m = Matcher::new(&x.filter);
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

/// What a message filter looks at: ids, routing, key, headers and the payload's start.
pub fn message_haystack(m: &Message, ex: &Extractor) -> String {
    let mut h = String::new();
    for part in [
        m.properties.message_id.as_deref(),
        ex.extract(m).as_deref(),
        m.routing_key.as_deref(),
        m.exchange.as_deref(),
    ]
    .into_iter()
    .flatten()
    {
        h.push_str(part);
        h.push('\n');
    }
    if let Some(k) = &m.key {
        h.push_str(&String::from_utf8_lossy(k));
        h.push('\n');
    }
    for (k, v) in m.headers.iter() {
        h.push_str(k);
        h.push('=');
        h.push_str(&v.to_string());
        h.push('\n');
    }
    for d in m.deaths() {
        h.push_str(d.reason.as_str());
        h.push('\n');
    }
    let head = &m.payload[..m.payload.len().min(4096)];
    h.push_str(&String::from_utf8_lossy(head));
    h
}

fn refilter_messages(s: &mut State) {
    let m = &mut s.messages;
    if m.filter.is_empty() {
        m.visible = (0..m.window.len()).collect();
        return;
    }
    let matcher = Matcher::new(&m.filter);
    let ex = Extractor::default();
    m.visible = (0..m.window.len())
        .filter(|i| matcher.is_match(&message_haystack(&m.window[*i], &ex)))
        .collect();
    m.cursor.selected = m.cursor.selected.min(m.visible.len().saturating_sub(1));
}

fn open_message(s: &mut State, m: Message) {
    let d = &mut s.message;
    d.meta = meta_lines(&m);
    d.msg = Some(m);
    d.mode = PayloadMode::Auto;
    d.pane = Pane::Payload;
    d.meta_scroll = 0;
    d.body_scroll = 0;
    render_body(d);
    s.stack.push(View::Message);
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Cut text into display lines of at most [`LINE_CHUNK`] characters, so a single huge
/// line never has to be laid out whole.
fn chunk_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.split('\n') {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() <= LINE_CHUNK {
            out.push(line.to_string());
            continue;
        }
        let mut start = 0;
        while start < line.len() {
            let mut end = (start + LINE_CHUNK).min(line.len());
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            out.push(line[start..end].to_string());
            start = end;
        }
    }
    out
}

/// Resolve the payload mode and prepare the lines the payload pane shows.
pub fn render_body(d: &mut MessageDetail) {
    d.body_scroll = 0;
    let Some(m) = &d.msg else {
        d.body.clear();
        return;
    };
    let text = std::str::from_utf8(&m.payload).ok();
    let pretty = || -> Option<String> {
        if m.payload.len() > PRETTY_LIMIT {
            return None;
        }
        let v: serde_json::Value = serde_json::from_slice(&m.payload).ok()?;
        serde_json::to_string_pretty(&v).ok()
    };
    let (kind, lines) = match d.mode {
        PayloadMode::Hex => (BodyKind::Hex, Vec::new()),
        PayloadMode::Text => match text {
            Some(t) => (BodyKind::Text, chunk_lines(t)),
            None => (
                BodyKind::Text,
                chunk_lines(&String::from_utf8_lossy(&m.payload)),
            ),
        },
        PayloadMode::Json => match pretty() {
            Some(p) => (BodyKind::Json, chunk_lines(&p)),
            None => (
                BodyKind::Text,
                vec!["(not JSON, or too large to pretty-print; p switches mode)".to_string()],
            ),
        },
        PayloadMode::Auto => match (pretty(), text) {
            (Some(p), _) => (BodyKind::Json, chunk_lines(&p)),
            (None, Some(t)) => (BodyKind::Text, chunk_lines(t)),
            (None, None) => (BodyKind::Hex, Vec::new()),
        },
    };
    d.body_kind = kind;
    d.body = lines;
}

fn push_table(out: &mut Vec<String>, t: &FieldTable, depth: usize) {
    for (k, v) in t.iter() {
        push_value(out, k, v, depth);
    }
}

fn push_value(out: &mut Vec<String>, name: &str, v: &FieldValue, depth: usize) {
    let pad = "  ".repeat(depth);
    match v {
        FieldValue::Table(t) => {
            out.push(format!("{pad}{name}: {{{} fields}}", t.len()));
            push_table(out, t, depth + 1);
        }
        FieldValue::Array(items) => {
            out.push(format!("{pad}{name}: [{} items]", items.len()));
            for (i, item) in items.iter().enumerate() {
                push_value(out, &format!("[{i}]"), item, depth + 1);
            }
        }
        other => out.push(format!("{pad}{name}: {other}  ‹{}›", other.type_name())),
    }
}

/// Properties, headers as a tree, and the dead-letter history as a timeline.
pub fn meta_lines(m: &Message) -> Vec<String> {
    let mut out = Vec::new();
    let ex = Extractor::default();
    let place = match (m.partition, m.offset) {
        (Some(p), Some(o)) => format!("{} partition {p} offset {o}", m.queue),
        _ => format!("{} position {}", m.queue, m.position),
    };
    out.push(format!("▸ {place}"));
    if let Some(t) = m.timestamp {
        out.push(format!("  time: {}", crate::model::time::rfc3339(&t)));
    }
    if let Some(c) = ex.extract(m) {
        out.push(format!("  correlation: {c}"));
    }
    if let (Some(x), Some(k)) = (&m.exchange, &m.routing_key) {
        let x = if x.is_empty() {
            "(default)"
        } else {
            x.as_str()
        };
        out.push(format!("  routed: {x} / {k}"));
    }
    if let Some(r) = crate::model::routed_summary(m.routed_queues.as_deref()) {
        out.push(format!("  reached: {r}"));
    }
    if let Some(k) = &m.key {
        out.push(format!("  key: {}", String::from_utf8_lossy(k)));
    }
    out.push(format!(
        "  size: {} B   redelivered: {}{}",
        m.payload.len(),
        if m.redelivered { "yes" } else { "no" },
        match (m.delivery_count, m.delivery_limit) {
            (c, Some(limit)) => format!("   delivery count: {} of {limit}", c.unwrap_or(0)),
            (Some(c), None) => format!("   delivery count: {c}"),
            (None, None) => String::new(),
        }
    ));
    let deaths = m.deaths();
    if !deaths.is_empty() {
        out.push("▸ Dead-letter history (newest first)".into());
        for (i, d) in deaths.iter().enumerate() {
            let when = d
                .time
                .map(|t| crate::model::time::rfc3339(&t))
                .unwrap_or_else(|| "-".into());
            let mut line = format!(
                "  {}. {when}  {} in {} ×{}",
                i + 1,
                d.reason,
                d.queue,
                d.count
            );
            if let Some(x) = &d.exchange {
                let x = if x.is_empty() {
                    "(default)"
                } else {
                    x.as_str()
                };
                line.push_str(&format!("  via {x} {}", d.routing_keys.join(",")));
            }
            if let (Some(p), Some(o)) = (d.partition, d.offset) {
                line.push_str(&format!("  from partition {p} offset {o}"));
            }
            out.push(line);
            if let Some(e) = &d.error {
                out.push(format!("     {e}"));
            }
        }
    }
    if let Ok(serde_json::Value::Object(props)) = serde_json::to_value(&m.properties)
        && !props.is_empty()
    {
        out.push("▸ Properties".into());
        for (k, v) in props {
            out.push(format!(
                "  {k}: {}",
                v.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| v.to_string())
            ));
        }
    }
    if !m.headers.is_empty() {
        out.push(format!("▸ Headers ({})", m.headers.len()));
        push_table(&mut out, &m.headers, 1);
    }
    out
}

/// Complete a command line: command names, then queue names after `q `.
fn complete(s: &State, text: &str) -> Option<String> {
    const COMMANDS: &[&str] = &[
        "queues",
        "groups",
        "exchanges",
        "vhost ",
        "q ",
        "info ",
        "help",
        "offset ",
        "time ",
        "since ",
        "trace ",
        "quit",
    ];
    if let Some(prefix) = text.strip_prefix("vhost ") {
        let names: Vec<&str> = s
            .vhosts
            .iter()
            .map(String::as_str)
            .filter(|n| n.starts_with(prefix))
            .collect();
        return common_prefix(&names).map(|p| format!("vhost {p}"));
    }
    for cmd in ["q ", "info "] {
        if let Some(prefix) = text.strip_prefix(cmd) {
            let names: Vec<&str> = s
                .queues
                .list
                .iter()
                .map(|q| q.name.as_str())
                .filter(|n| n.starts_with(prefix))
                .collect();
            return common_prefix(&names).map(|p| format!("{cmd}{p}"));
        }
    }
    let hits: Vec<&str> = COMMANDS
        .iter()
        .copied()
        .filter(|c| c.starts_with(text))
        .collect();
    common_prefix(&hits).map(str::to_string)
}

fn common_prefix<'a>(items: &[&'a str]) -> Option<&'a str> {
    let first = *items.first()?;
    let mut len = first.len();
    for it in &items[1..] {
        len = len.min(
            first
                .bytes()
                .zip(it.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    Some(&first[..len])
}

fn run_command(s: &mut State, cmd: &str) -> Vec<Effect> {
    let (word, arg) = cmd
        .split_once(' ')
        .map(|(w, a)| (w, a.trim()))
        .unwrap_or((cmd, ""));
    match word {
        "" => Vec::new(),
        "queues" | "qs" => {
            s.stack = vec![View::Queues];
            vec![load_queues(s)]
        }
        "groups" | "g" => open_groups(s),
        "exchanges" | "x" => open_exchanges(s),
        "vhost" | "vh" => switch_vhost(s, arg),
        "help" => act(s, Action::Help),
        "quit" | "q!" => act(s, Action::Quit),
        "q" | "queue" if !arg.is_empty() => {
            match s.queues.list.iter().find(|q| q.name == arg).cloned() {
                Some(q) => {
                    s.stack = vec![View::Queues];
                    open_queue(s, &q)
                }
                None => {
                    s.status.error = Some(not_a_queue(s, arg));
                    Vec::new()
                }
            }
        }
        "info" | "i" | "describe" if !arg.is_empty() => {
            if s.queues.list.iter().any(|q| q.name == arg) {
                open_info(s, arg.to_string())
            } else {
                s.status.error = Some(not_a_queue(s, arg));
                Vec::new()
            }
        }
        "q" => act(s, Action::Quit),
        "trace" | "t" if !arg.is_empty() => start_trace(s, arg.to_string()),
        "trace" | "t" => match s.view() {
            View::Messages | View::Message => trace_current(s),
            _ => {
                s.status.error =
                    Some(":trace needs a correlation ID (or run it from a message)".into());
                Vec::new()
            }
        },
        "offset" | "pos" => match arg.parse::<u64>() {
            Ok(n) => jump(s, PeekFrom::Position(n)),
            Err(_) => {
                s.status.error = Some(format!(":{word} needs a number, not \"{}\"", echo(arg)));
                Vec::new()
            }
        },
        "time" | "since" => match crate::model::time::parse_since(arg, Utc::now()) {
            Ok(t) => jump(s, PeekFrom::Time(t)),
            Err(e) => {
                s.status.error = Some(e.to_string());
                Vec::new()
            }
        },
        other => {
            s.status.error = Some(format!(
                "unknown command :{} (try :queues, :groups, :exchanges, :vhost NAME, :q NAME, :trace ID, :offset N, :since 15m)",
                echo(other)
            ));
            Vec::new()
        }
    }
}
