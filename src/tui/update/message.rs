//! The message view: opening a message, its payload modes, scrolling, saving and copying.

use super::{Effect, State, View};
use crate::format::decode::Input;
use crate::format::record::message_record;
use crate::model::Message;
use crate::ops::trace::Extractor;
use crate::tui::state::{BodyKind, Pane, PayloadMode};
use crate::tui::ui::message::lines::{decoded_line, meta_lines, render_body};

pub(super) fn open_message(s: &mut State, m: Message) {
    let d = &mut s.message;
    d.meta = meta_lines(&m);
    // Decoded once, here: drawing only shows it.
    d.decoded = s.decoding.0.decode(&Input::payload(&m));
    d.meta.extend(decoded_line(d.decoded.as_ref()));
    d.msg = Some(m);
    d.mode = PayloadMode::Auto;
    d.pane = Pane::Payload;
    d.meta_scroll = 0;
    d.body_scroll = 0;
    render_body(d);
    s.stack.push(View::Message);
}

pub(super) fn saved(s: &mut State, r: Result<String, String>) {
    match r {
        Ok(path) => s.status.info = Some(format!("saved {path}")),
        Err(e) => s.status.error = Some(format!("save failed: {e}")),
    }
}

/// Tab: between the properties and the payload.
pub(super) fn next_pane(s: &mut State) {
    s.message.pane = match s.message.pane {
        Pane::Meta => Pane::Payload,
        Pane::Payload => Pane::Meta,
    };
}

/// `p`: auto, decoded (when there is something to decode), JSON, text, hex, and round again.
pub(super) fn next_mode(s: &mut State) {
    s.message.mode = match s.message.mode {
        PayloadMode::Auto if s.message.decoded.is_some() => PayloadMode::Decoded,
        PayloadMode::Auto | PayloadMode::Decoded => PayloadMode::Json,
        PayloadMode::Json => PayloadMode::Text,
        PayloadMode::Text => PayloadMode::Hex,
        PayloadMode::Hex => PayloadMode::Auto,
    };
    render_body(&mut s.message);
}

/// Scroll the pane in focus.
pub(super) fn scroll(s: &mut State, delta: isize) {
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
}

/// `s`: the message as a JSON record, in the save directory.
pub(super) fn save(s: &mut State) -> Vec<Effect> {
    match &s.message.msg {
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
    }
}

/// `y`: the payload to the clipboard.
pub(super) fn copy(s: &mut State) -> Vec<Effect> {
    match &s.message.msg {
        Some(m) => {
            s.status.info = Some("payload copied to the clipboard (OSC 52)".into());
            vec![Effect::Copy(
                String::from_utf8_lossy(&m.payload).into_owned(),
            )]
        }
        None => Vec::new(),
    }
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
