//! Info: one queue, stream or topic described in full, section by section (the same
//! sections `mqscope describe` prints).

use super::panel;
use crate::config::theme::{Role, Theme};
use crate::model::describe::sections;
use crate::tui::state::State;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let info = &s.info;
    let mut title = vec![Span::styled(
        format!(" {} ", info.queue),
        t.fg(Role::Title).add_modifier(Modifier::BOLD),
    )];
    if info.pending.is_some() {
        title.push(Span::styled("describing… ", t.fg(Role::Dim)));
    }
    let mut lines: Vec<Line> = Vec::new();
    if let Some(e) = &info.error {
        lines.push(Line::from(Span::styled(
            format!("cannot describe {}: {e}", info.queue),
            t.fg(Role::Error),
        )));
    }
    if let Some(d) = &info.detail {
        for sec in sections(d) {
            lines.push(Line::from(Span::styled(
                sec.title,
                t.fg(Role::Header).add_modifier(Modifier::BOLD),
            )));
            let w = sec.label_width();
            let value_role = if sec.title == "Dead letters" {
                Role::DeadLetter
            } else {
                Role::Text
            };
            for (label, value) in sec.rows {
                lines.push(Line::from(vec![
                    Span::styled(format!("  {label:<w$}  "), t.fg(Role::Dim)),
                    Span::styled(value, t.fg(value_role)),
                ]));
            }
            lines.push(Line::from(""));
        }
    } else if info.error.is_none() {
        lines.push(Line::from(Span::styled("loading…", t.fg(Role::Dim))));
    }
    let p = Paragraph::new(lines)
        .block(panel(Line::from(title), t, true))
        .scroll((info.scroll.min(u16::MAX as usize) as u16, 0));
    f.render_widget(p, area);
}
