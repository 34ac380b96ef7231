//! Commands typed after `:`: running them, completing them, and the messages that say
//! why a name opens nothing.

use super::connection::switch_vhost;
use super::exchanges::open_exchanges;
use super::groups::open_groups;
use super::info::open_info;
use super::messages::jump;
use super::queues::{load_queues, open_queue};
use super::trace::{start_trace, trace_current};
use super::{Effect, State, View, act};
use crate::backend::PeekFrom;
use crate::tui::keymap::Action;
use chrono::Utc;

pub(super) fn run_command(s: &mut State, cmd: &str) -> Vec<Effect> {
    let (word, arg) = cmd
        .split_once(' ')
        .map(|(w, a)| (w, a.trim()))
        .unwrap_or((cmd, ""));
    match word {
        "" => Vec::new(),
        "queues" | "qs" => {
            s.stack = vec![View::Queues];
            vec![load_queues(s)]
        }
        "groups" | "g" => open_groups(s),
        "exchanges" | "x" => open_exchanges(s),
        "vhost" | "vh" => switch_vhost(s, arg),
        "help" => act(s, Action::Help),
        "quit" | "q!" => act(s, Action::Quit),
        "q" | "queue" if !arg.is_empty() => {
            match s.queues.list.iter().find(|q| q.name == arg).cloned() {
                Some(q) => {
                    s.stack = vec![View::Queues];
                    open_queue(s, &q)
                }
                None => {
                    s.status.error = Some(not_a_queue(s, arg));
                    Vec::new()
                }
            }
        }
        "info" | "i" | "describe" if !arg.is_empty() => {
            if s.queues.list.iter().any(|q| q.name == arg) {
                open_info(s, arg.to_string())
            } else {
                s.status.error = Some(not_a_queue(s, arg));
                Vec::new()
            }
        }
        "q" => act(s, Action::Quit),
        "trace" | "t" if !arg.is_empty() => start_trace(s, arg.to_string()),
        "trace" | "t" => match s.view() {
            View::Messages | View::Message => trace_current(s),
            _ => {
                s.status.error =
                    Some(":trace needs a correlation ID (or run it from a message)".into());
                Vec::new()
            }
        },
        "offset" | "pos" => match arg.parse::<u64>() {
            Ok(n) => jump(s, PeekFrom::Position(n)),
            Err(_) => {
                s.status.error = Some(format!(":{word} needs a number, not \"{}\"", echo(arg)));
                Vec::new()
            }
        },
        "time" | "since" => match crate::model::time::parse_since(arg, Utc::now()) {
            Ok(t) => jump(s, PeekFrom::Time(t)),
            Err(e) => {
                s.status.error = Some(e.to_string());
                Vec::new()
            }
        },
        other => {
            s.status.error = Some(format!(
                "unknown command :{} (try :queues, :groups, :exchanges, :vhost NAME, :q NAME, :trace ID, :offset N, :since 15m)",
                echo(other)
            ));
            Vec::new()
        }
    }
}

/// Complete a command line: command names, then queue names after `q `.
pub(super) fn complete(s: &State, text: &str) -> Option<String> {
    const COMMANDS: &[&str] = &[
        "queues",
        "groups",
        "exchanges",
        "vhost ",
        "q ",
        "info ",
        "help",
        "offset ",
        "time ",
        "since ",
        "trace ",
        "quit",
    ];
    if let Some(prefix) = text.strip_prefix("vhost ") {
        let names: Vec<&str> = s
            .vhosts
            .iter()
            .map(String::as_str)
            .filter(|n| n.starts_with(prefix))
            .collect();
        return common_prefix(&names).map(|p| format!("vhost {p}"));
    }
    for cmd in ["q ", "info "] {
        if let Some(prefix) = text.strip_prefix(cmd) {
            let names: Vec<&str> = s
                .queues
                .list
                .iter()
                .map(|q| q.name.as_str())
                .filter(|n| n.starts_with(prefix))
                .collect();
            return common_prefix(&names).map(|p| format!("{cmd}{p}"));
        }
    }
    let hits: Vec<&str> = COMMANDS
        .iter()
        .copied()
        .filter(|c| c.starts_with(text))
        .collect();
    common_prefix(&hits).map(str::to_string)
}

fn common_prefix<'a>(items: &[&'a str]) -> Option<&'a str> {
    let first = *items.first()?;
    let mut len = first.len();
    for it in &items[1..] {
        len = len.min(
            first
                .bytes()
                .zip(it.bytes())
                .take_while(|(a, b)| a == b)
                .count(),
        );
    }
    while !first.is_char_boundary(len) {
        len -= 1;
    }
    Some(&first[..len])
}

/// What the user typed, echoed in a one-line message: cut short, so that a pasted wall of
/// text leaves the advice after it on screen.
pub(super) fn echo(typed: &str) -> std::borrow::Cow<'_, str> {
    const MAX: usize = 60;
    match typed.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &typed[..end]).into(),
        None => typed.into(),
    }
}

/// Why `name` opens nothing: an exchange's name, a near miss of a queue's, or unknown.
fn not_a_queue(s: &State, name: &str) -> String {
    let base = format!("no queue or topic named \"{}\"", echo(name));
    if s.exchanges.list.iter().any(|e| e.name == name) {
        return format!("{base}: it is an exchange (:exchanges shows where it routes)");
    }
    let names: Vec<&str> = s.queues.list.iter().map(|q| q.name.as_str()).collect();
    let close = crate::model::names::closest(name, &names);
    if close.is_empty() {
        base
    } else {
        format!("{base}; did you mean {}?", close.join(" or "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completion_stops_where_the_candidates_part() {
        assert_eq!(common_prefix(&["orders", "orders.dlq"]), Some("orders"));
        assert_eq!(common_prefix(&["ex", "qu"]), Some(""));
        assert_eq!(common_prefix(&[]), None);
        // Never inside a character.
        assert_eq!(common_prefix(&["é1", "è2"]), Some(""));
    }

    #[test]
    fn a_long_echo_is_cut_short() {
        assert_eq!(echo("short"), "short");
        let long = "x".repeat(100);
        assert_eq!(echo(&long).chars().count(), 61);
        assert!(echo(&long).ends_with('…'));
    }
}
