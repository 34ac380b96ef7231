//! Drawing: a function of the state and the theme only. Each view has its own file,
//! named like its state; this file lays out the frame around them.

pub mod confirm;
pub mod exchanges;
pub mod groups;
pub mod help;
pub mod info;
pub mod message;
pub mod messages;
pub mod queues;
pub mod trace;

use crate::config::theme::{Role, Theme};
use crate::tui::state::{Conn, Cursor, InputKind, ListView, State, View};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, Wrap};

/// Below this the layout cannot show a useful table; a note says so instead.
pub const MIN_WIDTH: u16 = 60;
pub const MIN_HEIGHT: u16 = 15;

pub fn draw(f: &mut Frame, s: &State, t: &Theme) {
    let area = f.area();
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        let msg = format!(
            "Terminal too small: {}×{}.\nmqscope needs at least {MIN_WIDTH}×{MIN_HEIGHT}.",
            area.width, area.height
        );
        f.render_widget(
            Paragraph::new(msg)
                .style(t.fg(Role::Warning))
                .wrap(Wrap { trim: true }),
            area,
        );
        return;
    }
    let input_rows = u16::from(s.input.is_some());
    let [title, main, input, hints, status] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(input_rows),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(area);
    draw_title(f, s, t, title);
    match s.view() {
        View::Queues => queues::draw(f, s, t, main),
        View::Groups => groups::draw(f, s, t, main),
        View::Exchanges => exchanges::draw(f, s, t, main),
        View::Messages => messages::draw(f, s, t, main),
        View::Message => message::draw(f, s, t, main),
        View::Trace => trace::draw(f, s, t, main),
        View::Info => info::draw(f, s, t, main),
        View::Help => help::draw(f, s, t, main),
    }
    if let Some(i) = &s.input {
        let prompt = match i.kind {
            InputKind::Filter => "/",
            InputKind::Command => ":",
        };
        // The prompt and the cursor take a column each; the typing is at the end.
        let room = usize::from(input.width).saturating_sub(2);
        let line = Line::from(vec![
            Span::styled(prompt, t.fg(Role::HintKey).add_modifier(Modifier::BOLD)),
            Span::styled(tail_to_fit(&i.text, room), t.fg(Role::Text)),
            Span::styled("█", t.fg(Role::Dim)),
        ]);
        f.render_widget(Paragraph::new(line), input);
    }
    if let Some(c) = &s.confirm {
        confirm::draw(f, c, t, main);
    }
    draw_hints(f, s, t, hints);
    draw_status(f, s, t, status);
}

/// `text` if it fits in `cols` columns, else `…` and as much of its end as fits: a line
/// being typed shows where the typing is. Only what is shown is measured.
fn tail_to_fit(text: &str, cols: usize) -> std::borrow::Cow<'_, str> {
    use unicode_width::UnicodeWidthChar;
    // Where the longest end of `text` that fits in `room` columns starts.
    let tail = |room: usize| {
        let mut used = 0;
        let mut from = text.len();
        for (i, c) in text.char_indices().rev() {
            used += c.width().unwrap_or(0);
            if used > room {
                break;
            }
            from = i;
        }
        from
    };
    if tail(cols) == 0 {
        return text.into();
    }
    format!("…{}", &text[tail(cols.saturating_sub(1))..]).into()
}

/// A bordered block titled in the theme's colours.
pub fn panel<'a>(title: impl Into<Line<'a>>, t: &Theme, focused: bool) -> Block<'a> {
    Block::default()
        .borders(Borders::ALL)
        .border_style(t.fg(if focused {
            Role::BorderFocus
        } else {
            Role::Border
        }))
        .title(
            title
                .into()
                .style(t.fg(Role::Title).add_modifier(Modifier::BOLD)),
        )
}

/// The part of a list on screen: from the cursor's first row, as many as `height` holds,
/// with the position of the first (to tell which row is selected).
pub fn on_screen<'v>(visible: &'v [usize], cursor: &Cursor, height: usize) -> (usize, &'v [usize]) {
    let start = cursor.offset.min(visible.len());
    let end = (start + height).min(visible.len());
    (start, &visible[start..end])
}

/// A list row in the theme's selected style, else in the text style.
pub fn list_row<'a>(row: Row<'a>, selected: bool, t: &Theme) -> Row<'a> {
    if selected {
        row.style(t.selected())
    } else {
        row.style(t.fg(Role::Text))
    }
}

/// A list view's title: its name, the rows shown of all, and the filter if there is one.
pub fn list_title<T, X>(name: &str, v: &ListView<T, X>, t: &Theme) -> Vec<Span<'static>> {
    let mut title = vec![Span::raw(format!(
        " {name} ({}/{}) ",
        v.visible.len(),
        v.list.len()
    ))];
    if !v.filter.is_empty() {
        title.push(Span::styled(format!("/{} ", v.filter), t.fg(Role::Match)));
    }
    title
}

/// When a list was last loaded, for its title.
pub fn refreshed<T, X>(v: &ListView<T, X>) -> String {
    v.refreshed_at
        .map(|at| at.format("%H:%M:%S").to_string())
        .unwrap_or_else(|| "loading…".into())
}

/// A table with its header in a focused panel.
pub fn draw_table<'a, R, C>(
    f: &mut Frame,
    area: Rect,
    t: &Theme,
    title: impl Into<Line<'a>>,
    header: Row<'a>,
    rows: R,
    widths: C,
) where
    R: IntoIterator,
    R::Item: Into<Row<'a>>,
    C: IntoIterator,
    C::Item: Into<Constraint>,
{
    f.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(panel(title, t, true)),
        area,
    );
}

fn draw_title(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let mut crumbs: Vec<Span> = vec![Span::styled(" mqscope ", t.badge())];
    for v in &s.stack {
        crumbs.push(Span::styled(" › ", t.fg(Role::Dim)));
        let name = match v {
            View::Messages => s.messages.queue.clone(),
            other => other.title().to_string(),
        };
        crumbs.push(Span::styled(name, t.fg(Role::Title)));
    }
    f.render_widget(Paragraph::new(Line::from(crumbs)), area);
}

fn draw_hints(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let mut spans = Vec::new();
    if let Some(c) = &s.confirm {
        let keys: &[(&str, &str)] = if c.typed.is_some() {
            &[("Enter", "go ahead"), ("Esc", "cancel")]
        } else {
            &[("y", "yes"), ("n", "no"), ("Esc", "no")]
        };
        for (k, d) in keys {
            spans.push(Span::styled(
                format!(" {k} "),
                t.fg(Role::HintKey).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(format!("{d} "), t.fg(Role::HintText)));
        }
    } else if s.input.is_some() {
        for (k, d) in [("Enter", "apply"), ("Esc", "cancel"), ("Tab", "complete")] {
            spans.push(Span::styled(
                format!(" {k} "),
                t.fg(Role::HintKey).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(format!("{d} "), t.fg(Role::HintText)));
        }
    } else {
        for b in s
            .keymap
            .for_scope(s.view().scope())
            .into_iter()
            .filter(|b| b.hint && !(s.status.read_only && b.action.modifies()))
        {
            let key = b.keys.first().map(|k| k.to_string()).unwrap_or_default();
            spans.push(Span::styled(
                format!(" {key} "),
                t.fg(Role::HintKey).add_modifier(Modifier::BOLD),
            ));
            spans.push(Span::styled(
                format!("{} ", short(&b.desc)),
                t.fg(Role::HintText),
            ));
        }
    }
    f.render_widget(Paragraph::new(Line::from(spans)), area);
}

fn short(desc: &str) -> &str {
    desc.split(" (").next().unwrap_or(desc)
}

fn draw_status(f: &mut Frame, s: &State, t: &Theme, area: Rect) {
    let st = &s.status;
    let (dot, role, word) = match st.conn {
        Conn::Connecting => ("◌", Role::Warning, "connecting".to_string()),
        Conn::Connected => ("●", Role::Ok, "connected".to_string()),
        Conn::Lost { retry_at, .. } => (
            "●",
            Role::Error,
            format!(
                "disconnected, retry in {}s",
                retry_at.saturating_sub(s.tick)
            ),
        ),
    };
    let bar = t.status_bar();
    let mut spans = vec![
        Span::styled(format!(" {dot} "), bar.patch(t.fg(role))),
        Span::styled(format!("{word}  "), bar),
        Span::styled(
            format!(
                "{} {}",
                st.server.as_deref().unwrap_or(&st.backend),
                st.target
            ),
            bar,
        ),
    ];
    if let Some(p) = &st.profile {
        spans.push(Span::styled(format!("  profile {p}"), bar));
    }
    if st.read_only {
        spans.push(Span::styled(
            "  READ-ONLY",
            bar.patch(t.fg(Role::Warning)).add_modifier(Modifier::BOLD),
        ));
    }
    if let Some(e) = &st.error {
        spans.push(Span::styled(
            format!("  ✗ {e}"),
            bar.patch(t.fg(Role::Error)),
        ));
    } else if let Some(i) = &st.info {
        spans.push(Span::styled(format!("  {i}"), bar));
    }
    f.render_widget(Paragraph::new(Line::from(spans)).style(bar), area);
}

/// `1234567` as `1.2M`, for narrow count columns.
pub fn compact(n: Option<u64>) -> String {
    match n {
        None => "-".into(),
        Some(n) if n >= 10_000_000 => format!("{:.1}M", n as f64 / 1e6),
        Some(n) if n >= 100_000 => format!("{}k", n / 1000),
        Some(n) => n.to_string(),
    }
}

pub fn rate(r: Option<f64>) -> String {
    match r {
        None => "-".into(),
        Some(r) if r >= 100.0 => format!("{r:.0}"),
        Some(r) => format!("{r:.1}"),
    }
}

/// Cut text to `width` display columns, marking a cut with `…`; control characters
/// (from broker data) become spaces so they cannot drive the terminal.
pub fn fit(text: &str, width: usize) -> String {
    use unicode_width::UnicodeWidthChar;
    let clean = |c: char| if c.is_control() { ' ' } else { c };
    let total: usize = text.chars().map(|c| clean(c).width().unwrap_or(0)).sum();
    if total <= width {
        return text.chars().map(clean).collect();
    }
    let mut out = String::new();
    let mut w = 0;
    for c in text.chars().map(clean) {
        let cw = c.width().unwrap_or(0);
        if w + cw + 1 > width {
            break;
        }
        out.push(c);
        w += cw;
    }
    if width > 0 {
        out.push('…');
    }
    out
}
