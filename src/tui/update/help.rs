//! The help screen: opening and closing it, and scrolling.

use super::{State, View};

/// `?` opens the keys of the view underneath; `?` again closes them.
pub(super) fn toggle(s: &mut State, view: View) {
    if view == View::Help {
        s.stack.pop();
    } else {
        s.help_scroll = 0;
        s.stack.push(View::Help);
    }
}

pub(super) fn scroll(s: &mut State, delta: isize) {
    s.help_scroll = (s.help_scroll as isize + delta).clamp(0, 200) as usize;
}
