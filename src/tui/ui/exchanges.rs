//! Exchanges with their type, flags and rates, and beside them the selected exchange's
//! bindings: where it routes (queues and exchanges, with keys and arguments) and which
//! exchanges route into it.

use super::{draw_table, fit, list_title, on_screen, panel, rate, refreshed};
use crate::config::theme::{Role, Theme};
use crate::model::topology::{DestinationKind, ExchangeSummary};
use crate::tui::state::State;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Paragraph, Row, Wrap};

/// Below this width the bindings pane is left out: the list needs the room.
const PANE_MIN_WIDTH: u16 = 90;

pub fn draw(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    if area.width >= PANE_MIN_WIDTH {
        let [list, pane] =
            Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
                .areas(area);
        draw_list(f, s, t, list);
        draw_bindings(f, s, t, pane);
    } else {
        draw_list(f, s, t, area);
    }
}

/// The default exchange has no name; the management UI calls it this.
fn label(name: &str) -> &str {
    if name.is_empty() {
        "(AMQP default)"
    } else {
        name
    }
}

fn features(e: &ExchangeSummary) -> String {
    [(e.durable, "D"), (e.auto_delete, "AD"), (e.internal, "I")]
        .iter()
        .filter(|(on, _)| *on)
        .map(|(_, f)| *f)
        .collect::<Vec<_>>()
        .join(" ")
}

fn draw_list(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let x = &s.exchanges;
    let mut title = list_title("Exchanges", x, t);
    let when = refreshed(x);
    title.push(Span::styled(
        format!("· {} · {when} ", s.exchanges.pace.label(s.refresh_every())),
        t.fg(Role::Dim),
    ));
    let inner_h = area.height.saturating_sub(3) as usize;
    // The name takes what the other columns (and the gaps between them) leave.
    let name_w = (area.width as usize)
        .saturating_sub(2 + 33 + 5)
        .clamp(10, 80);
    let header = Row::new(["NAME", "TYPE", "FEAT", "IN/s", "OUT/s", "BIND"])
        .style(t.fg(Role::Header).add_modifier(Modifier::BOLD));
    let (start, shown) = on_screen(&x.visible, &x.cursor, inner_h);
    let rows = shown.iter().enumerate().map(|(i, idx)| {
        let e = &x.list[*idx];
        let name_style = if e.name.is_empty() || e.name.starts_with("amq.") {
            t.fg(Role::Dim)
        } else {
            t.fg(Role::Text)
        };
        let row = Row::new(vec![
            Cell::from(fit(label(&e.name), name_w)).style(name_style),
            Cell::from(e.kind.clone()),
            Cell::from(features(e)).style(t.fg(Role::Dim)),
            Cell::from(Line::from(rate(e.publish_in_rate)).right_aligned()),
            Cell::from(Line::from(rate(e.publish_out_rate)).right_aligned()),
            Cell::from(Line::from(e.bindings.to_string()).right_aligned()),
        ]);
        if start + i == x.cursor.selected {
            row.style(t.selected())
        } else {
            row
        }
    });
    let widths = [
        Constraint::Length(name_w as u16),
        Constraint::Length(8),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(5),
    ];
    draw_table(f, area, t, title, header, rows, widths);
}

fn draw_bindings(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let Some(e) = s.exchanges.selected() else {
        f.render_widget(
            Paragraph::new("no exchange selected")
                .style(t.fg(Role::Dim))
                .block(panel(" Bindings ", t, false)),
            area,
        );
        return;
    };
    let dim = t.fg(Role::Dim);
    let text = t.fg(Role::Text);
    let mut lines = vec![Line::from(vec![
        Span::styled(
            label(&e.name).to_string(),
            text.add_modifier(Modifier::BOLD),
        ),
        Span::styled(format!("  {}  {}", e.kind, features(e)), dim),
    ])];
    if let Some(ae) = &e.alternate_exchange {
        lines.push(Line::from(vec![
            Span::styled("unroutable → ", dim),
            Span::styled(ae.clone(), text),
        ]));
    }
    if let Some(p) = &e.policy {
        lines.push(Line::from(vec![
            Span::styled("policy ", dim),
            Span::styled(p.clone(), text),
        ]));
    }
    if !e.arguments.is_empty() {
        lines.push(Line::from(Span::styled(
            format!("arguments {}", e.arguments.to_json()),
            dim,
        )));
    }
    let out = s.exchanges.bindings_from(&e.name);
    lines.push(Line::default());
    if e.name.is_empty() {
        lines.push(Line::from(Span::styled(
            "routes to the queue its routing key names",
            dim,
        )));
    } else if out.is_empty() {
        lines.push(Line::from(Span::styled(
            "routes nowhere: no bindings",
            t.fg(Role::Warning),
        )));
    } else {
        lines.push(Line::from(Span::styled(
            format!("routes to ({})", out.len()),
            t.fg(Role::Header).add_modifier(Modifier::BOLD),
        )));
    }
    for b in &out {
        let (arrow, role) = match b.destination_kind {
            DestinationKind::Queue => ("→ ", Role::Text),
            DestinationKind::Exchange => ("⇒ exchange ", Role::Title),
        };
        let mut spans = vec![
            Span::styled(arrow, dim),
            Span::styled(b.destination.clone(), t.fg(role)),
        ];
        if !b.routing_key.is_empty() {
            spans.push(Span::styled(format!("  key {}", b.routing_key), dim));
        }
        if !b.arguments.is_empty() {
            spans.push(Span::styled(format!("  {}", b.arguments.to_json()), dim));
        }
        lines.push(Line::from(spans));
    }
    let incoming: Vec<_> = s
        .exchanges
        .extra
        .iter()
        .filter(|b| b.destination_kind == DestinationKind::Exchange && b.destination == e.name)
        .collect();
    if !incoming.is_empty() {
        lines.push(Line::default());
        lines.push(Line::from(Span::styled(
            format!("routed into from ({})", incoming.len()),
            t.fg(Role::Header).add_modifier(Modifier::BOLD),
        )));
        for b in incoming {
            let mut spans = vec![
                Span::styled("⇐ ", dim),
                Span::styled(b.source.clone(), t.fg(Role::Title)),
            ];
            if !b.routing_key.is_empty() {
                spans.push(Span::styled(format!("  key {}", b.routing_key), dim));
            }
            lines.push(Line::from(spans));
        }
    }
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(panel(" Bindings ", t, false)),
        area,
    );
}
