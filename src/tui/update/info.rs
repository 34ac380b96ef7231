//! The info view: one queue described in full, and scrolling through it.

use super::{Effect, State, View, next_req};
use crate::tui::state::{QueueInfo, ReqId};

/// The info view on `queue`: pushed on the stack (Esc returns), its description asked
/// for. Describing again keeps the old one on screen until the new one arrives.
pub(super) fn open_info(s: &mut State, queue: String) -> Vec<Effect> {
    let req = next_req(s);
    if s.info.queue != queue {
        s.info = QueueInfo::default();
        s.info.queue = queue.clone();
    }
    s.info.pending.start(req, ());
    if s.view() != View::Info {
        s.info.scroll = 0;
        s.stack.push(View::Info);
    }
    vec![Effect::Describe { req, queue }]
}

pub(super) fn described(
    s: &mut State,
    req: ReqId,
    result: Result<Box<crate::model::QueueDetail>, String>,
) {
    if s.info.pending.finish(req).is_none() {
        return;
    }
    match result {
        Ok(d) => {
            s.info.detail = Some(d);
            s.info.error = None;
        }
        Err(e) => s.info.error = Some(e),
    }
}

/// `i`: describe the queue the view is about.
pub(super) fn info_of_view(s: &mut State, view: View) -> Vec<Effect> {
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

/// Lines the info view draws (a title and a blank line per section), to bound scrolling.
pub fn info_lines(s: &State) -> usize {
    s.info.detail.as_ref().map_or(1, |d| {
        crate::model::describe::sections(d)
            .iter()
            .map(|sec| sec.rows.len() + 2)
            .sum()
    })
}

pub(super) fn scroll(s: &mut State, delta: isize, rows: usize) {
    let max = info_lines(s).saturating_sub(rows) as isize;
    s.info.scroll = (s.info.scroll as isize + delta).clamp(0, max) as usize;
}
