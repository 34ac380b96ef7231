//! Consumer groups with their lag, per partition.

use super::{draw_table, fit, list_row, on_screen};
use crate::config::theme::{Role, Theme};
use crate::tui::state::State;
use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::style::Modifier;
use ratatui::text::Line;
use ratatui::widgets::{Cell, Row};

pub fn draw(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let g = &s.groups;
    let mut title = format!(" Consumer groups ({}) ", g.visible.len());
    if !g.filter.is_empty() {
        title.push_str(&format!("/{} ", g.filter));
    }
    if g.pace.slow(s.refresh_every()).is_some() {
        title.push_str(&format!("· {} ", g.pace.label(s.refresh_every())));
    }
    let inner_h = area.height.saturating_sub(3) as usize;
    let header = Row::new([
        "GROUP",
        "STATE",
        "MEMBERS",
        "TOPICS",
        "LAG",
        "LAG PER PARTITION",
    ])
    .style(t.fg(Role::Header).add_modifier(Modifier::BOLD));
    let (start, shown) = on_screen(&g.visible, &g.cursor, inner_h);
    let rows = shown.iter().enumerate().map(|(i, idx)| {
        let grp = &g.list[*idx];
        let per: Vec<String> = grp
            .partitions
            .iter()
            .map(|p| format!("{}/{}:{}", p.topic, p.partition, p.lag))
            .collect();
        let lag_style = if grp.lag > 0 {
            t.fg(Role::Warning)
        } else {
            t.fg(Role::Ok)
        };
        let row = Row::new(vec![
            Cell::from(fit(&grp.name, 40)),
            Cell::from(grp.state.clone()),
            Cell::from(Line::from(grp.members.to_string()).right_aligned()),
            Cell::from(grp.topics.join(",")),
            Cell::from(Line::from(grp.lag.to_string()).right_aligned()).style(lag_style),
            Cell::from(per.join(" ")).style(t.fg(Role::Dim)),
        ]);
        list_row(row, start + i == g.cursor.selected, t)
    });
    let widths = [
        Constraint::Percentage(25),
        Constraint::Length(10),
        Constraint::Length(8),
        Constraint::Percentage(20),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    draw_table(f, area, t, title, header, rows, widths);
}
