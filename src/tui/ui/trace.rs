//! A trace: the hops of one correlation ID as a tree in time order (each publish with its
//! copies as branches, dead letters with where from and why), the scan's progress or its
//! summary above, and under the tree the first publish's expected routes with the fate of
//! each copy in time order. Only the rows on screen are laid out.

use super::messages::empty_note;
use super::{fit, panel};
use crate::config::theme::{Role, Theme};
use crate::model::GroupStatus;
use crate::ops::trace::graph::{RootTag, RowKind};
use crate::ops::trace::routes::{Fate, Route, TOPOLOGY_NOW};
use crate::ops::trace::{Hop, HopKind, summary_of};
use crate::tui::state::{State, TracePhase};
use chrono::{DateTime, Utc};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

pub fn draw(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let tr = &s.trace;
    let width = usize::from(area.width.saturating_sub(2));
    let mut title = vec![Span::raw(format!(" Trace {} ", fit(&tr.id, 60)))];
    if tr.follow.is_some() {
        title.push(Span::styled(
            "● following live ",
            t.fg(Role::Ok).add_modifier(Modifier::BOLD),
        ));
    }
    let mut lines = vec![status_line(s, t, width), notes_line(s, t, width)];
    let first = tr.hops.iter().find_map(|h| h.time);
    let room = usize::from(area.height.saturating_sub(4));
    let mut routes = routes_lines(s, first, t, width);
    // The routes take what the tree leaves, and at least half the room when both need it.
    let routes_room = routes
        .len()
        .min(room.saturating_sub(tr.rows.len()).max(room / 2));
    routes.truncate(routes_room);
    let rows = room.saturating_sub(routes_room).max(1);
    // The cursor's page assumes the whole room: keep the selected row on screen.
    let mut start = tr.cursor.offset.min(tr.rows.len());
    if tr.cursor.selected >= start + rows {
        start = tr.cursor.selected + 1 - rows;
    }
    let end = (start + rows).min(tr.rows.len());
    for (i, row) in tr.rows[start..end].iter().enumerate() {
        let Some(hop) = tr.hops.get(row.hop) else {
            continue;
        };
        let mut line = match &row.kind {
            RowKind::Root { tag, label } => root_line(hop, *tag, label, first, t, width),
            RowKind::Branch { last } => branch_line(hop, *last, first, t, width),
            RowKind::Group { group, under_last } => group_line(hop, *group, *under_last, t, width),
        };
        if start + i == tr.cursor.selected {
            line = line.style(t.selected());
        }
        lines.push(line);
    }
    lines.extend(routes);
    f.render_widget(
        Paragraph::new(lines).block(panel(Line::from(title), t, true)),
        area,
    );
    if tr.rows.is_empty() {
        let note = match tr.phase {
            TracePhase::Scanning => "Scanning: hops appear here as they are found.",
            TracePhase::Failed => "The trace failed; Ctrl-R tries again.",
            TracePhase::Cancelled => "Cancelled before anything was found.",
            TracePhase::Done => "No message carries this ID.",
        };
        empty_note(f, t, area, note);
    }
}

/// Progress while scanning; the summary once done.
fn status_line<'a>(s: &'a State, t: &Theme, width: usize) -> Line<'a> {
    let tr = &s.trace;
    let scanned = format!(
        "{} messages in {}/{} queues",
        thousands(tr.scanned),
        tr.queues_done,
        tr.queues_total
    );
    match tr.phase {
        TracePhase::Scanning => {
            let rate = tr
                .scanned
                .saturating_mul(1000)
                .checked_div(tr.elapsed_ms)
                .map(|r| format!(", {} msg/s", thousands(r)))
                .unwrap_or_default();
            Line::from(vec![
                Span::styled(
                    "scanning… ",
                    t.fg(Role::Warning).add_modifier(Modifier::BOLD),
                ),
                Span::styled(
                    fit(
                        &format!("{scanned}{rate}; {} hops so far", tr.hops.len()),
                        width.saturating_sub(10),
                    ),
                    t.fg(Role::Text),
                ),
            ])
        }
        TracePhase::Failed => Line::from(Span::styled(
            fit(
                &format!("trace failed: {}", tr.error.as_deref().unwrap_or("unknown")),
                width,
            ),
            t.fg(Role::Error),
        )),
        TracePhase::Done | TracePhase::Cancelled => {
            let summary = summary_of(&tr.hops);
            let tail = if tr.phase == TracePhase::Cancelled {
                format!("  (cancelled after {scanned})")
            } else {
                format!(
                    "  (scanned {} in {} queues, {} ms)",
                    thousands(tr.scanned),
                    tr.queues_done,
                    tr.elapsed_ms
                )
            };
            let room = width.saturating_sub(summary.chars().count());
            Line::from(vec![
                Span::styled(summary, t.fg(Role::Title).add_modifier(Modifier::BOLD)),
                Span::styled(fit(&tail, room), t.fg(Role::Dim)),
            ])
        }
    }
}

/// The expected routes under a blank line: a heading naming the publish and the assumption,
/// then a route a line in time order; a fate nothing timed is a gap and says so.
fn routes_lines<'a>(
    s: &'a State,
    first: Option<DateTime<Utc>>,
    t: &Theme,
    width: usize,
) -> Vec<Line<'a>> {
    let tr = &s.trace;
    if tr.phase == TracePhase::Scanning || (tr.routes.is_empty() && tr.routes_notes.is_empty()) {
        return Vec::new();
    }
    let heading = match &tr.routes_basis {
        Some(b) => {
            let x = if b.exchange.is_empty() {
                "(default)"
            } else {
                &b.exchange
            };
            format!(
                "expected routes of the publish to {x} / {} (topology as it is now)",
                b.routing_keys.join(", ")
            )
        }
        None => "expected routes: none".to_string(),
    };
    let mut out = vec![
        Line::default(),
        Line::from(Span::styled(
            fit(&heading, width),
            t.fg(Role::Header).add_modifier(Modifier::BOLD),
        )),
    ];
    let name_width = tr
        .routes
        .iter()
        .filter_map(|r| r.queue.as_deref())
        .map(|q| q.chars().count())
        .max()
        .unwrap_or(0)
        .clamp(10, 24);
    for r in &tr.routes {
        out.push(route_line(r, first, name_width, t, width));
    }
    for n in tr.routes_notes.iter().filter(|n| *n != TOPOLOGY_NOW) {
        out.push(Line::from(Span::styled(
            fit(&format!("  {n}"), width),
            t.fg(Role::Warning),
        )));
    }
    out
}

fn route_line<'a>(
    r: &Route,
    first: Option<DateTime<Utc>>,
    name_width: usize,
    t: &Theme,
    width: usize,
) -> Line<'a> {
    let (mark, role) = match r.fate {
        Fate::Found => ("✓", Role::Ok),
        // Known, not guessed: a delivery to a consumer was seen.
        Fate::PickedUp => ("→", Role::Ok),
        Fate::DeadLettered => ("✗", Role::DeadLetter),
        Fate::NotRouted => ("∅", Role::Error),
        Fate::NotSearched => ("·", Role::Dim),
        _ => ("?", Role::Warning),
    };
    let when = match r.time {
        Some(_) => delta(first, r.time),
        None => "no time".into(),
    };
    let head = format!("{when:>10}  ");
    let name = format!(
        "{:<name_width$}  ",
        fit(r.queue.as_deref().unwrap_or("(no queue)"), name_width)
    );
    let used = head.chars().count() + 2 + name.chars().count();
    Line::from(vec![
        Span::styled(head, t.fg(Role::Dim)),
        Span::styled(format!("{mark} "), t.fg(role).add_modifier(Modifier::BOLD)),
        Span::styled(name, t.fg(Role::Text).add_modifier(Modifier::BOLD)),
        Span::styled(fit(&r.headline, width.saturating_sub(used)), t.fg(role)),
    ])
}

/// Queues that were skipped and why, or that the view is full.
fn notes_line<'a>(s: &'a State, t: &Theme, width: usize) -> Line<'a> {
    let tr = &s.trace;
    let mut text = String::new();
    if !tr.skipped.is_empty() {
        let parts: Vec<String> = tr
            .skipped
            .iter()
            .map(|k| format!("{} ({})", k.queue, k.reason))
            .collect();
        text = format!("skipped {}: {}", tr.skipped.len(), parts.join("; "));
    }
    for n in &tr.notes {
        if !text.is_empty() {
            text.push_str("  ");
        }
        text.push_str(n);
    }
    if tr.dropped > 0 {
        if !text.is_empty() {
            text.push_str("  ");
        }
        text.push_str(&format!(
            "{} more hops not shown (the view keeps {})",
            thousands(tr.dropped),
            crate::tui::state::MAX_HOPS
        ));
    }
    Line::from(Span::styled(fit(&text, width), t.fg(Role::Warning)))
}

fn delta(first: Option<DateTime<Utc>>, at: Option<DateTime<Utc>>) -> String {
    match (first, at) {
        (Some(a), Some(b)) => {
            let ms = (b - a).num_milliseconds();
            if ms.abs() >= 3_600_000 {
                format!("+{:.1}h", ms as f64 / 3_600_000.0)
            } else {
                format!("+{:.3}s", ms as f64 / 1000.0)
            }
        }
        _ => "?".into(),
    }
}

fn root_line<'a>(
    hop: &Hop,
    tag: RootTag,
    label: &str,
    first: Option<DateTime<Utc>>,
    t: &Theme,
    width: usize,
) -> Line<'a> {
    let role = match tag {
        RootTag::Publish => Role::Title,
        RootTag::FollowUp => Role::Header,
        RootTag::Replay => Role::Match,
    };
    let head = format!("{:>10}  ● ", delta(first, hop.time));
    let tag_text = format!("{:<9} ", tag.as_str());
    let recorded = if hop.recorded.is_some() { RECORDED } else { "" };
    let room = width
        .saturating_sub(head.chars().count() + tag_text.chars().count() + recorded.chars().count());
    Line::from(vec![
        Span::styled(head, t.fg(Role::Dim)),
        Span::styled(tag_text, t.fg(role).add_modifier(Modifier::BOLD)),
        Span::styled(fit(label, room), t.fg(Role::Text)),
        Span::styled(recorded, t.fg(Role::Dim)),
    ])
}

fn branch_line<'a>(
    hop: &Hop,
    last: bool,
    first: Option<DateTime<Utc>>,
    t: &Theme,
    width: usize,
) -> Line<'a> {
    let mut spans = vec![
        Span::styled(format!("{:>10}", delta(first, hop.time)), t.fg(Role::Dim)),
        Span::styled(if last { "    └─ " } else { "    ├─ " }, t.fg(Role::Border)),
    ];
    let mut used = 17;
    let mut push = |spans: &mut Vec<Span<'a>>, text: String, style: Style| {
        let room = width.saturating_sub(used);
        if room == 0 {
            return;
        }
        let text = fit(&text, room);
        used += unicode_width::UnicodeWidthStr::width(text.as_str());
        spans.push(Span::styled(text, style));
    };
    // A delivery says where from itself: "picked up from Q by user U …".
    if !hop.deliveries.is_empty() {
        for d in &hop.deliveries {
            push(&mut spans, d.summary(), t.fg(Role::Ok));
            if let Some(c) = d.consumer() {
                push(&mut spans, format!("  on {c}"), t.fg(Role::Dim));
            }
        }
        if hop.live {
            push(&mut spans, "  live".into(), t.fg(Role::Ok));
        }
        if hop.recorded.is_some() {
            push(&mut spans, RECORDED.into(), t.fg(Role::Dim));
        }
        return Line::from(spans);
    }
    let place_role = match hop.kind {
        HopKind::Exchange => Role::Dim,
        _ => Role::Text,
    };
    push(
        &mut spans,
        hop.place(),
        t.fg(place_role).add_modifier(Modifier::BOLD),
    );
    if hop.kind == HopKind::Topic {
        push(&mut spans, "  topic".into(), t.fg(Role::Dim));
    }
    if let Some(d) = &hop.dead_letter {
        let mut text = format!("  ✗ {} in {} ×{}", d.reason, d.from, d.count);
        if let (Some(p), Some(o)) = (d.partition, d.offset) {
            text.push_str(&format!(" (from [{p}]@{o})"));
        }
        if let Some(e) = &d.error {
            text.push_str(&format!(": {e}"));
        }
        push(&mut spans, text, t.fg(Role::DeadLetter));
        if let (Some(x), Some(k)) = (&hop.exchange, &hop.routing_key) {
            let x = if x.is_empty() { "(default)" } else { x };
            push(&mut spans, format!("  via {x} / {k}"), t.fg(Role::Dim));
        }
    } else if hop.kind == HopKind::Exchange
        && let Some(k) = &hop.routing_key
    {
        push(&mut spans, format!("  / {k}"), t.fg(Role::Dim));
    }
    if let Some(r) = crate::model::routed_summary(hop.routed_queues.as_deref()) {
        let role = match hop.routed_queues.as_deref() {
            Some([]) => Role::Warning,
            _ => Role::Text,
        };
        push(&mut spans, format!("  {r}"), t.fg(role));
    }
    if let Some(r) = &hop.replayed_from {
        let count = hop
            .replay_count
            .map(|c| format!(" (replay {c})"))
            .unwrap_or_default();
        push(
            &mut spans,
            format!("  ↻ replay of {r}{count}"),
            t.fg(Role::Match),
        );
    }
    if hop.live {
        push(&mut spans, "  live".into(), t.fg(Role::Ok));
    }
    if hop.recorded.is_some() {
        push(&mut spans, RECORDED.into(), t.fg(Role::Dim));
    }
    Line::from(spans)
}

/// After a hop read from the recorder's database (`--db`, `record_db`, the demo's kept
/// history), not found on the broker now.
const RECORDED: &str = "  (recorded)";

/// A consumer group's progress past the record above: consumed, or pending with its lag.
fn group_line<'a>(hop: &Hop, group: usize, under_last: bool, t: &Theme, width: usize) -> Line<'a> {
    let Some(g) = hop.groups.get(group) else {
        return Line::default();
    };
    let bar = if under_last {
        "         "
    } else {
        "    │    "
    };
    let role = match g.status {
        GroupStatus::Consumed => Role::Ok,
        GroupStatus::Pending => Role::Warning,
    };
    let room = width.saturating_sub(19);
    Line::from(vec![
        Span::raw(format!("{:>10}", "")),
        Span::styled(bar, t.fg(Role::Border)),
        Span::styled(fit(&g.describe(), room), t.fg(role)),
    ])
}

/// `1234567` as `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn thousands() {
        assert_eq!(super::thousands(0), "0");
        assert_eq!(super::thousands(999), "999");
        assert_eq!(super::thousands(1_000), "1,000");
        assert_eq!(super::thousands(12_345_678), "12,345,678");
    }
}
