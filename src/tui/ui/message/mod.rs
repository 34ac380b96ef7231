//! One message: properties, headers as a tree and dead-letter history above; the payload
//! below as coloured JSON, text or a hex dump. Only the visible lines are styled.

pub mod lines;

use super::panel;
use crate::config::theme::{Role, Theme};
use crate::tui::state::{BodyKind, Pane, State};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

pub fn draw(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let d = &s.message;
    let Some(msg) = &d.msg else {
        f.render_widget(
            Paragraph::new("no message").block(panel(" Message ", t, true)),
            area,
        );
        return;
    };
    let meta_h = (d.meta.len() as u16 + 2).min(area.height / 2).max(3);
    let [top, bottom] =
        Layout::vertical([Constraint::Length(meta_h), Constraint::Min(3)]).areas(area);

    let rows = top.height.saturating_sub(2) as usize;
    let meta: Vec<Line> = d
        .meta
        .iter()
        .skip(d.meta_scroll)
        .take(rows)
        .map(|l| meta_line(l, t))
        .collect();
    f.render_widget(
        Paragraph::new(meta).block(panel(" Details ", t, d.pane == Pane::Meta)),
        top,
    );

    let rows = bottom.height.saturating_sub(2) as usize;
    let width = bottom.width.saturating_sub(2) as usize;
    let lines: Vec<Line> = match d.body_kind {
        BodyKind::Hex => hex_lines(&msg.payload, d.body_scroll, rows, t),
        BodyKind::Json | BodyKind::Decoded => d
            .body
            .iter()
            .skip(d.body_scroll)
            .take(rows)
            .map(|l| json_line(l, t))
            .collect(),
        BodyKind::Text => d
            .body
            .iter()
            .skip(d.body_scroll)
            .take(rows)
            .map(|l| {
                Line::styled(
                    super::fit(l, if d.wrap { usize::MAX } else { width }),
                    t.fg(Role::Text),
                )
            })
            .collect(),
    };
    let total = match d.body_kind {
        BodyKind::Hex => msg.payload.len().div_ceil(16),
        _ => d.body.len(),
    };
    let title = format!(
        " Payload · {} B · {} (mode {}) · line {}/{}{} ",
        msg.payload.len(),
        match d.body_kind {
            BodyKind::Json => "json",
            BodyKind::Decoded => "decoded",
            BodyKind::Text => "text",
            BodyKind::Hex => "hex",
        },
        d.mode.label(),
        (d.body_scroll + 1).min(total.max(1)),
        total,
        if d.wrap { " · wrap" } else { "" }
    );
    let mut p = Paragraph::new(lines).block(panel(title, t, d.pane == Pane::Payload));
    if d.wrap {
        p = p.wrap(Wrap { trim: false });
    }
    f.render_widget(p, bottom);
}

fn meta_line<'a>(l: &'a str, t: &Theme) -> Line<'a> {
    if let Some(rest) = l.strip_prefix("▸ ") {
        return Line::styled(format!("▸ {rest}"), t.fg(Role::Header));
    }
    let trimmed = l.trim_start();
    let death =
        trimmed.chars().next().is_some_and(|c| c.is_ascii_digit()) && trimmed.contains(" in ");
    if death {
        return Line::styled(super::fit(l, 500), t.fg(Role::DeadLetter));
    }
    match l.split_once(": ") {
        Some((k, v)) => {
            let (v, ty) = match v.rsplit_once("  ‹") {
                Some((v, ty)) => (v, format!("  ‹{ty}")),
                None => (v, String::new()),
            };
            Line::from(vec![
                Span::styled(format!("{k}: "), t.fg(Role::JsonKey)),
                Span::styled(super::fit(v, 400), t.fg(Role::Text)),
                Span::styled(ty, t.fg(Role::Dim)),
            ])
        }
        None => Line::styled(super::fit(l, 500), t.fg(Role::Text)),
    }
}

/// Colour one line of pretty-printed JSON: keys, strings, numbers, literals, punctuation.
pub fn json_line<'a>(line: &'a str, t: &Theme) -> Line<'a> {
    let mut spans: Vec<Span> = Vec::new();
    let bytes = line.as_bytes();
    let mut i = 0;
    let push = |spans: &mut Vec<Span<'a>>, text: &'a str, style: Style| {
        spans.push(Span::styled(text, style))
    };
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        if c == b'"' {
            i += 1;
            while i < bytes.len() && bytes[i] != b'"' {
                i += if bytes[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(bytes.len());
            let rest = line[i..].trim_start();
            let role = if rest.starts_with(':') {
                Role::JsonKey
            } else {
                Role::JsonString
            };
            push(&mut spans, &line[start..i], t.fg(role));
        } else if c == b'-' || c.is_ascii_digit() {
            while i < bytes.len()
                && matches!(bytes[i], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                i += 1;
            }
            push(&mut spans, &line[start..i], t.fg(Role::JsonNumber));
        } else if c.is_ascii_alphabetic() {
            while i < bytes.len() && bytes[i].is_ascii_alphabetic() {
                i += 1;
            }
            push(&mut spans, &line[start..i], t.fg(Role::JsonLiteral));
        } else {
            while i < bytes.len()
                && !matches!(bytes[i], b'"' | b'-' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z')
            {
                i += 1;
            }
            push(&mut spans, &line[start..i], t.fg(Role::JsonPunct));
        }
    }
    Line::from(spans)
}

/// Rows of a hex dump, made only for the rows on screen.
fn hex_lines(payload: &[u8], first_row: usize, rows: usize, t: &Theme) -> Vec<Line<'static>> {
    (first_row..first_row + rows)
        .map_while(|r| {
            let start = r * 16;
            (start < payload.len()).then(|| {
                let chunk = &payload[start..(start + 16).min(payload.len())];
                let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
                let ascii: String = chunk
                    .iter()
                    .map(|b| {
                        if b.is_ascii_graphic() || *b == b' ' {
                            *b as char
                        } else {
                            '.'
                        }
                    })
                    .collect();
                Line::from(vec![
                    Span::styled(format!("{start:08x}  "), t.fg(Role::Dim)),
                    Span::styled(format!("{:<48} ", hex.join(" ")), t.fg(Role::JsonNumber)),
                    Span::styled(ascii, t.fg(Role::Text)),
                ])
            })
        })
        .collect()
}
