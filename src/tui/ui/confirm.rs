//! The confirm popup: the question over the view, and the keys that answer it.

use crate::config::theme::{Role, Theme};
use crate::tui::state::Confirm;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

/// A question over the view: what will happen, and the two keys that answer it.
pub fn draw(f: &mut Frame, c: &Confirm, t: &Theme, area: Rect) {
    let width = area.width.saturating_sub(8).min(76);
    let inner = usize::from(width.saturating_sub(4)).max(10);
    let body_rows = c.body.chars().count().div_ceil(inner) as u16 + 1;
    let height = (body_rows + 5).min(area.height);
    let r = Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height.saturating_sub(height)) / 2,
        width,
        height,
    );
    f.render_widget(ratatui::widgets::Clear, r);
    let key = |k: &'static str| Span::styled(k, t.fg(Role::HintKey).add_modifier(Modifier::BOLD));
    let answer = match &c.typed {
        Some(name) => Line::from(vec![
            Span::styled(format!("Type {name}: "), t.fg(Role::Text)),
            Span::styled(
                format!("{}▏", c.answer),
                t.fg(Role::Warning).add_modifier(Modifier::BOLD),
            ),
            Span::styled("   ", t.fg(Role::Text)),
            key(" Enter "),
            Span::styled("go ahead  ", t.fg(Role::Text)),
            key(" Esc "),
            Span::styled("cancel", t.fg(Role::Text)),
        ]),
        None => Line::from(vec![
            key(" y "),
            Span::styled("yes, go ahead    ", t.fg(Role::Text)),
            key(" n "),
            Span::styled("/", t.fg(Role::Dim)),
            key(" Esc "),
            Span::styled("no", t.fg(Role::Text)),
        ]),
    };
    let text = vec![
        Line::from(Span::styled(c.body.clone(), t.fg(Role::Text))),
        Line::from(""),
        answer,
    ];
    let block = Block::default()
        .borders(Borders::ALL)
        .border_style(t.fg(Role::Warning))
        .title(
            Line::from(format!(" {} ", c.title))
                .style(t.fg(Role::Warning).add_modifier(Modifier::BOLD)),
        );
    f.render_widget(
        Paragraph::new(text).wrap(Wrap { trim: true }).block(block),
        r,
    );
}
