//! Help: every binding of the view underneath, generated from the keymap.

use super::panel;
use crate::config::theme::{Role, Theme};
use crate::tui::keymap::Scope;
use crate::tui::state::State;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

/// The scope whose keys the help screen explains: the view it was opened from.
pub fn help_scope(s: &State) -> Scope {
    s.stack
        .iter()
        .rev()
        .nth(1)
        .map(|v| v.scope())
        .unwrap_or(Scope::Queues)
}

pub fn draw(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let scope = help_scope(s);
    let mut lines = vec![Line::from(Span::styled(
        format!("Keys in the {} view", scope.name()),
        t.fg(Role::Header).add_modifier(Modifier::BOLD),
    ))];
    for b in s.keymap.for_scope(scope) {
        // Read-only mode hides what it refuses.
        if s.status.read_only && b.action.modifies() {
            continue;
        }
        let keys: Vec<String> = b.keys.iter().map(|k| k.to_string()).collect();
        lines.push(Line::from(vec![
            Span::styled(
                format!("  {:<22}", keys.join(" / ")),
                t.fg(Role::HintKey).add_modifier(Modifier::BOLD),
            ),
            Span::styled(b.desc.to_string(), t.fg(Role::Text)),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Commands (after :)",
        t.fg(Role::Header).add_modifier(Modifier::BOLD),
    )));
    for (c, d) in [
        (":queues", "the queue list"),
        (":groups", "consumer groups"),
        (":exchanges", "exchanges and where they route (AMQP)"),
        (
            ":vhost [NAME]",
            "list virtual hosts, or switch to one (RabbitMQ)",
        ),
        (":q NAME", "open a queue or topic (Tab completes)"),
        (":info NAME", "describe a queue or topic (as i does)"),
        (
            ":trace ID",
            "trace a correlation ID across every queue and topic",
        ),
        (":offset N", "jump to a position or offset"),
        (
            ":since 15m / :time T",
            "jump to a time (RFC 3339 or a duration ago)",
        ),
        (":quit", "quit"),
    ] {
        lines.push(Line::from(vec![
            Span::styled(format!("  {c:<22}"), t.fg(Role::HintKey)),
            Span::styled(d, t.fg(Role::Text)),
        ]));
    }
    lines.push(Line::from(""));
    lines.push(Line::from(Span::styled(
        "Ctrl-C always quits. Keys can be rebound in the config file's [keys] table.",
        t.fg(Role::Dim),
    )));
    let p = Paragraph::new(lines)
        .block(panel(" Help ", t, true))
        .scroll((s.help_scroll.min(u16::MAX as usize) as u16, 0));
    f.render_widget(p, area);
}
