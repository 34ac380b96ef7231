//! A window of messages over a queue or topic partition, loaded page by page.

use super::{draw_table, fit, list_row, on_screen};
use crate::config::theme::{Role, Theme};
use crate::format::text::payload_preview;
use crate::model::correlation::Extractor;
use crate::model::time::rfc3339;
use crate::model::{Message, QueueKind};
use crate::tui::state::State;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Clear, Paragraph, Row};

pub fn draw(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let m = &s.messages;
    let mut title = vec![Span::raw(format!(" {} ", m.queue))];
    if let (QueueKind::Topic, Some(p)) = (m.kind, m.partition) {
        title.push(Span::styled(
            format!("partition {p}/{} ", m.partitions.max(1)),
            t.fg(Role::Dim),
        ));
    }
    if let (Some(a), Some(b)) = (m.window.first(), m.window.last()) {
        title.push(Span::styled(
            format!(
                "{}–{} loaded{} ",
                pos(a),
                pos(b),
                if m.at_end { ", end" } else { "" }
            ),
            t.fg(Role::Dim),
        ));
    }
    if !m.filter.is_empty() {
        title.push(Span::styled(
            format!("/{} ({} match) ", m.filter, m.visible.len()),
            t.fg(Role::Match),
        ));
    }
    if !m.marked.is_empty() {
        title.push(Span::styled(
            format!("● {} marked ", m.marked.len()),
            t.fg(Role::Warning),
        ));
    }
    if m.pending.is_some() {
        title.push(Span::styled("loading… ", t.fg(Role::Warning)));
    }
    let inner_h = area.height.saturating_sub(3) as usize;
    let header = Row::new([
        "POS",
        "TIME",
        "CORRELATION",
        "SIZE",
        "DLV",
        "DEAD LETTER",
        "PAYLOAD",
    ])
    .style(t.fg(Role::Header).add_modifier(Modifier::BOLD));
    let ex = Extractor::default();
    let (start, shown) = on_screen(&m.visible, &m.cursor, inner_h);
    let preview_w = (area.width as usize)
        .saturating_sub(2 + 8 + 13 + 24 + 8 + 5 + 22 + 7)
        .max(8);
    let rows = shown.iter().enumerate().map(|(i, idx)| {
        let msg = &m.window[*idx];
        let time = msg
            .timestamp
            .map(|ts| ts.format("%H:%M:%S%.3f").to_string())
            .unwrap_or_else(|| "-".into());
        let dlv = match (msg.delivery_count, msg.redelivered) {
            (c, _) if msg.delivery_limit.is_some() && c.unwrap_or(0) > 0 => Span::styled(
                format!("{}/{}", c.unwrap_or(0), msg.delivery_limit.unwrap_or(0)),
                t.fg(Role::Redelivered),
            ),
            (Some(c), _) if c > 0 => Span::styled(format!("{c}×"), t.fg(Role::Redelivered)),
            (_, true) => Span::styled("re", t.fg(Role::Redelivered)),
            _ => Span::raw(""),
        };
        let death = msg
            .deaths()
            .first()
            .map(|d| {
                Span::styled(
                    fit(&format!("{} in {}", d.reason, d.queue), 22),
                    t.fg(Role::DeadLetter),
                )
            })
            .unwrap_or_else(|| Span::raw(""));
        let marked =
            !m.marked.is_empty() && m.marked.contains(&crate::model::identity::message_key(msg));
        let position = if marked {
            Line::from(vec![
                Span::styled("● ", t.fg(Role::Warning)),
                Span::raw(pos(msg)),
            ])
        } else {
            Line::from(pos(msg))
        };
        let row = Row::new(vec![
            Cell::from(position.right_aligned()),
            Cell::from(time).style(t.fg(Role::Dim)),
            Cell::from(fit(&ex.extract(msg).unwrap_or_default(), 24)),
            Cell::from(Line::from(size(msg.payload.len())).right_aligned()),
            Cell::from(Line::from(dlv)),
            Cell::from(Line::from(death)),
            Cell::from(fit(
                &payload_preview(&msg.payload[..msg.payload.len().min(512)], preview_w),
                preview_w,
            ))
            .style(t.fg(Role::Dim)),
        ]);
        list_row(row, start + i == m.cursor.selected, t)
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(12),
        Constraint::Length(24),
        Constraint::Length(7),
        Constraint::Length(4),
        Constraint::Length(22),
        Constraint::Min(8),
    ];
    draw_table(f, area, t, title, header, rows, widths);
    if let Some(e) = &m.error {
        empty_note(f, t, area, &format!("Could not read {}: {e}", m.queue));
    } else if m.window.is_empty() && m.pending.is_none() {
        empty_note(f, t, area, "No messages here.");
    } else if m.visible.is_empty() && m.pending.is_none() {
        empty_note(f, t, area, "No loaded message matches the filter.");
    }
}

fn pos(m: &Message) -> String {
    m.offset
        .map(|o| o.to_string())
        .unwrap_or_else(|| m.position.to_string())
}

fn size(n: usize) -> String {
    match n {
        n if n >= 1 << 20 => format!("{:.1}M", n as f64 / (1u64 << 20) as f64),
        n if n >= 10 << 10 => format!("{}k", n >> 10),
        n => n.to_string(),
    }
}

/// A one-line note in the middle of an empty list.
pub fn empty_note(f: &mut Frame, t: &Theme, area: Rect, text: &str) {
    if area.height < 5 || area.width < 10 {
        return;
    }
    let w = (text.chars().count() as u16 + 4).min(area.width - 4);
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + area.height / 2,
        w,
        1,
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(fit(text, w as usize))
            .style(t.fg(Role::Dim))
            .centered(),
        r,
    );
}

/// Time of a message for the detail view.
pub fn when(m: &Message) -> String {
    m.timestamp
        .as_ref()
        .map(rfc3339)
        .unwrap_or_else(|| "-".into())
}
