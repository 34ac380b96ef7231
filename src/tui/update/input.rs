//! The input line: typing a filter (applied as it is typed) or a command (run on Enter).

use super::command::{complete, run_command};
use super::exchanges::refilter_exchanges;
use super::groups::refilter_groups;
use super::messages::refilter_messages;
use super::queues::refilter_queues;
use super::{Effect, State, View};
use crate::tui::keymap::{Key, KeyCode};
use crate::tui::state::{Cursor, Input, InputKind};

/// `:` opens an empty command line.
pub(super) fn start_command(s: &mut State) {
    s.input = Some(Input {
        kind: InputKind::Command,
        text: String::new(),
    });
}

/// `/` edits the view's filter, in views that have one.
pub(super) fn start_filter(s: &mut State, view: View) {
    let text = match view {
        View::Queues => s.queues.filter.clone(),
        View::Groups => s.groups.filter.clone(),
        View::Exchanges => s.exchanges.filter.clone(),
        View::Messages => s.messages.filter.clone(),
        _ => return,
    };
    s.input = Some(Input {
        kind: InputKind::Filter,
        text,
    });
}

pub(super) fn on_input_key(s: &mut State, key: Key) -> Vec<Effect> {
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
