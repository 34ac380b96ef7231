//! The confirm popup: asking before a replay, purge, delete or forced peek, the answer
//! keys, and what the worker says when the work is done.

use super::messages::reload_messages;
use super::queues::load_queues;
use super::{Effect, State, View};
use crate::backend::PeekFrom;
use crate::tui::keymap::{Action, Key, KeyCode};
use crate::tui::state::{Confirm, ConfirmAction};

/// A key while a question is on screen: only its answers do anything.
pub(super) fn on_confirm_key(s: &mut State, key: Key, c: Confirm) -> Vec<Effect> {
    if let Some(name) = &c.typed {
        return on_typed_confirm_key(s, key, name);
    }
    match key.code {
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
pub(super) fn ask_to_modify(s: &mut State, action: Action) -> Vec<Effect> {
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

/// A replay, purge or delete finished: say so, and show the queue as it is now.
pub(super) fn modified(s: &mut State, r: Result<String, String>) -> Vec<Effect> {
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
