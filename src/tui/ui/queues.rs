//! The queue list: every queue, stream and topic with depth, rates and dead-letter wiring.

use super::{compact, fit, list_row, list_title, on_screen, panel, rate, refreshed};
use crate::config::theme::{Role, Theme};
use crate::model::QueueKind;
use crate::tui::state::{SortColumn, State};
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Cell, Row, Table};

pub fn draw(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let q = &s.queues;
    let arrow = if q.extra.descending { "↓" } else { "↑" };
    let mut title = list_title("Queues", q, t);
    if let Some((exchange, _)) = &q.extra.bound_to {
        title.push(Span::styled(
            format!("bound to {exchange} "),
            t.fg(Role::Match),
        ));
    }
    title.push(Span::styled(
        format!("sort {} {arrow} ", q.extra.sort.label()),
        t.fg(Role::Dim),
    ));
    let when = refreshed(q);
    // Says why the list moves more slowly than the setting, when it does.
    title.push(Span::styled(
        format!("· {} · {when} ", q.pace.label(s.refresh_secs)),
        t.fg(Role::Dim),
    ));
    let block = panel(Line::from(title), t, true);
    let inner_h = area.height.saturating_sub(3) as usize;
    let name_w = (area.width as usize).saturating_sub(2 + 70).clamp(12, 60);
    let header_cells = [
        ("NAME", SortColumn::Name),
        ("TYPE", SortColumn::Type),
        ("MSGS", SortColumn::Messages),
        ("READY", SortColumn::Ready),
        ("UNACK", SortColumn::Unacked),
        ("CONS", SortColumn::Consumers),
        ("IN/s", SortColumn::InRate),
        ("OUT/s", SortColumn::OutRate),
    ]
    .into_iter()
    .map(|(h, c)| {
        let style = t.fg(Role::Header).add_modifier(Modifier::BOLD);
        if c == q.extra.sort {
            Cell::from(format!("{h}{arrow}")).style(style.add_modifier(Modifier::UNDERLINED))
        } else {
            Cell::from(h).style(style)
        }
    })
    .chain([Cell::from("DEAD LETTERS").style(t.fg(Role::Header).add_modifier(Modifier::BOLD))]);
    let header = Row::new(header_cells);
    let (start, shown) = on_screen(&q.visible, &q.cursor, inner_h);
    let rows = shown.iter().enumerate().map(|(i, idx)| {
        let item = &q.list[*idx];
        let selected = start + i == q.cursor.selected;
        let type_label = match (item.kind, item.partitions) {
            (QueueKind::Topic, Some(p)) => format!("topic/{p}"),
            _ => item.queue_type.clone(),
        };
        let mut name_spans = vec![Span::raw(fit(&item.name, name_w.saturating_sub(5)))];
        if item.is_dead_letter {
            name_spans.push(Span::raw(" "));
            name_spans.push(Span::styled(
                "DLQ",
                if selected { t.selected() } else { t.badge() },
            ));
        }
        let dl = match (&item.dead_letter_queue, item.is_dead_letter) {
            (Some(d), _) => Span::styled(format!("→ {d}"), t.fg(Role::DeadLetter)),
            (None, true) if !item.dead_letter_sources.is_empty() => Span::styled(
                format!("← {}", item.dead_letter_sources.join(", ")),
                t.fg(Role::Dim),
            ),
            _ => Span::raw(""),
        };
        let depth_style = if item.is_dead_letter && item.messages.unwrap_or(0) > 0 {
            t.fg(Role::DeadLetter)
        } else {
            t.fg(Role::Text)
        };
        let row = Row::new(vec![
            Cell::from(Line::from(name_spans)),
            Cell::from(type_label).style(t.fg(Role::Dim)),
            Cell::from(Line::from(compact(item.messages)).right_aligned()).style(depth_style),
            Cell::from(Line::from(compact(item.ready)).right_aligned()),
            Cell::from(Line::from(compact(item.unacked)).right_aligned()),
            Cell::from(Line::from(compact(item.consumers)).right_aligned()),
            Cell::from(Line::from(rate(item.publish_rate)).right_aligned()),
            Cell::from(Line::from(rate(item.deliver_rate)).right_aligned()),
            Cell::from(Line::from(dl)),
        ]);
        list_row(row, selected, t)
    });
    let widths = [
        Constraint::Length(name_w as u16),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Min(10),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .block(block)
        .column_spacing(1);
    f.render_widget(table, area);
    if q.list.is_empty() && q.refreshed_at.is_some() {
        super::messages::empty_note(f, t, area, "No queues or topics on this broker.");
    }
}
