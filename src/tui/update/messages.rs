//! The messages view: a window onto a queue or topic, paged in as the cursor nears an
//! edge, filtered, and marked for replay or delete.

use super::trace::land_jump;
use super::{Effect, ListFilter, State, View, keep_in_view, move_cursor, next_req};
use crate::backend::{PeekFrom, PeekPage};
use crate::model::Message;
use crate::ops::trace::Extractor;
use crate::tui::keymap::Action;
use crate::tui::state::*;

/// Throw the window away and load a fresh page from `from`.
pub(super) fn reload_messages(s: &mut State, from: PeekFrom) -> Vec<Effect> {
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
    m.pending.start(req, dir);
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
pub(super) fn jump(s: &mut State, from: PeekFrom) -> Vec<Effect> {
    if s.view() != View::Messages {
        s.status.error = Some("open a queue or topic first (Enter on the queue list)".into());
        return Vec::new();
    }
    reload_messages(s, from)
}

pub(super) fn position_of(m: &Message) -> u64 {
    m.offset
        .and_then(|o| u64::try_from(o).ok())
        .unwrap_or(m.position)
}

/// Up, down, a page or to either end; Home and End past the window load from the queue's
/// start or end.
pub(super) fn navigate(s: &mut State, action: Action, delta: isize, rows: usize) -> Vec<Effect> {
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
    m.pending.start(req, dir);
    vec![Effect::LoadMessages {
        req,
        queue: m.queue.clone(),
        partition: m.partition,
        from: PeekFrom::Position(from),
        limit,
        force: m.force,
    }]
}

pub(super) fn on_page(s: &mut State, req: ReqId, result: Result<PeekPage, String>) -> Vec<Effect> {
    let m = &mut s.messages;
    // A reply to an earlier request (the user moved on since) is dropped.
    let Some(dir) = m.pending.finish(req) else {
        return Vec::new();
    };
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

/// Space marks (or unmarks) the message under the cursor and moves on.
pub(super) fn mark(s: &mut State, rows: usize) {
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
}

/// `]` and `[`: the next or previous partition of a topic, from its start.
pub(super) fn switch_partition(s: &mut State, action: Action) -> Vec<Effect> {
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

/// What a message filter looks at: ids, routing, key, headers and the payload's start.
fn message_haystack(m: &Message, ex: &Extractor) -> String {
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

pub(super) fn refilter_messages(s: &mut State) {
    let m = &mut s.messages;
    if m.filter.is_empty() {
        m.visible = (0..m.window.len()).collect();
        return;
    }
    let matcher = ListFilter::new(&m.filter);
    let ex = Extractor::default();
    m.visible = (0..m.window.len())
        .filter(|i| matcher.is_match(&message_haystack(&m.window[*i], &ex)))
        .collect();
    m.cursor.selected = m.cursor.selected.min(m.visible.len().saturating_sub(1));
}
