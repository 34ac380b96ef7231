//! Keys as data: one table drives key handling, the help screen and the hint bar. Users
//! rebind actions in the config file's `[keys]` table; conflicts are reported at start.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A key press, independent of the terminal library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub code: KeyCode,
    pub ctrl: bool,
    pub alt: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyCode {
    Char(char),
    Enter,
    Esc,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    Home,
    End,
    Tab,
    BackTab,
    Backspace,
    Delete,
    F(u8),
}

impl Key {
    pub const fn plain(code: KeyCode) -> Self {
        Self {
            code,
            ctrl: false,
            alt: false,
        }
    }

    pub const fn char(c: char) -> Self {
        Self::plain(KeyCode::Char(c))
    }

    pub const fn ctrl(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            ctrl: true,
            alt: false,
        }
    }

    /// Parse `q`, `G`, `enter`, `ctrl-d`, `alt-x`, `pgdn`, `f1`, `space`.
    pub fn parse(s: &str) -> Option<Key> {
        let mut ctrl = false;
        let mut alt = false;
        let mut rest = s;
        loop {
            let lower = rest.to_ascii_lowercase();
            if let Some(r) = lower
                .strip_prefix("ctrl-")
                .or_else(|| lower.strip_prefix("c-"))
            {
                ctrl = true;
                rest = &rest[rest.len() - r.len()..];
            } else if let Some(r) = lower
                .strip_prefix("alt-")
                .or_else(|| lower.strip_prefix("m-"))
            {
                alt = true;
                rest = &rest[rest.len() - r.len()..];
            } else {
                break;
            }
        }
        let code = match rest.to_ascii_lowercase().as_str() {
            "enter" | "return" => KeyCode::Enter,
            "esc" | "escape" => KeyCode::Esc,
            "up" => KeyCode::Up,
            "down" => KeyCode::Down,
            "left" => KeyCode::Left,
            "right" => KeyCode::Right,
            "pgup" | "pageup" => KeyCode::PageUp,
            "pgdn" | "pagedown" => KeyCode::PageDown,
            "home" => KeyCode::Home,
            "end" => KeyCode::End,
            "tab" => KeyCode::Tab,
            "backtab" | "shift-tab" => KeyCode::BackTab,
            "backspace" => KeyCode::Backspace,
            "delete" | "del" => KeyCode::Delete,
            "space" => KeyCode::Char(' '),
            f if f.len() >= 2 && f.starts_with('f') && f[1..].parse::<u8>().is_ok() => {
                KeyCode::F(f[1..].parse().ok()?)
            }
            _ => {
                let mut chars = rest.chars();
                let c = chars.next()?;
                if chars.next().is_some() {
                    return None;
                }
                KeyCode::Char(if ctrl { c.to_ascii_lowercase() } else { c })
            }
        };
        Some(Key { code, ctrl, alt })
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.ctrl {
            f.write_str("Ctrl-")?;
        }
        if self.alt {
            f.write_str("Alt-")?;
        }
        match self.code {
            KeyCode::Char(' ') => f.write_str("Space"),
            KeyCode::Char(c) => write!(f, "{c}"),
            KeyCode::Enter => f.write_str("Enter"),
            KeyCode::Esc => f.write_str("Esc"),
            KeyCode::Up => f.write_str("↑"),
            KeyCode::Down => f.write_str("↓"),
            KeyCode::Left => f.write_str("←"),
            KeyCode::Right => f.write_str("→"),
            KeyCode::PageUp => f.write_str("PgUp"),
            KeyCode::PageDown => f.write_str("PgDn"),
            KeyCode::Home => f.write_str("Home"),
            KeyCode::End => f.write_str("End"),
            KeyCode::Tab => f.write_str("Tab"),
            KeyCode::BackTab => f.write_str("Shift-Tab"),
            KeyCode::Backspace => f.write_str("Backspace"),
            KeyCode::Delete => f.write_str("Del"),
            KeyCode::F(n) => write!(f, "F{n}"),
        }
    }
}

/// Everything a key can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Quit,
    Back,
    Up,
    Down,
    PageUp,
    PageDown,
    Top,
    Bottom,
    Open,
    Filter,
    Command,
    Help,
    Refresh,
    SortNext,
    SortReverse,
    Queues,
    Groups,
    Exchanges,
    NextPane,
    PayloadMode,
    Wrap,
    Save,
    Copy,
    NextPartition,
    PrevPartition,
    Mark,
    Replay,
    Purge,
    Delete,
    Trace,
    Follow,
    Info,
}

impl Action {
    /// Actions that change the broker: hidden and refused in read-only mode.
    pub fn modifies(self) -> bool {
        matches!(self, Action::Replay | Action::Purge | Action::Delete)
    }
}

/// Where a binding applies. `Global` bindings work everywhere unless a view rebinds the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    Global,
    Queues,
    Groups,
    Exchanges,
    Messages,
    Message,
    Trace,
    Info,
    Help,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::Global => "global",
            Scope::Queues => "queues",
            Scope::Groups => "groups",
            Scope::Exchanges => "exchanges",
            Scope::Messages => "messages",
            Scope::Message => "message",
            Scope::Trace => "trace",
            Scope::Info => "info",
            Scope::Help => "help",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub scope: Scope,
    pub keys: Vec<Key>,
    pub action: Action,
    pub desc: &'static str,
    /// Shown in the hint bar (the most useful few per view).
    pub hint: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
}

fn b(scope: Scope, keys: &[Key], action: Action, desc: &'static str, hint: bool) -> Binding {
    Binding {
        scope,
        keys: keys.to_vec(),
        action,
        desc,
        hint,
    }
}

impl Default for Keymap {
    fn default() -> Self {
        use KeyCode::*;
        use Scope::*;
        let k = Key::plain;
        let c = Key::char;
        Keymap {
            bindings: vec![
                b(Global, &[c('q')], Action::Quit, "quit", true),
                b(Global, &[k(Esc)], Action::Back, "back", true),
                b(Global, &[k(Up), c('k')], Action::Up, "up", false),
                b(Global, &[k(Down), c('j')], Action::Down, "down", false),
                b(
                    Global,
                    &[k(PageUp), Key::ctrl('u')],
                    Action::PageUp,
                    "page up",
                    false,
                ),
                b(
                    Global,
                    &[k(PageDown), Key::ctrl('d')],
                    Action::PageDown,
                    "page down",
                    false,
                ),
                b(Global, &[k(Home), c('g')], Action::Top, "first", false),
                b(Global, &[k(End), c('G')], Action::Bottom, "last", false),
                b(Global, &[c('?')], Action::Help, "help", true),
                b(
                    Global,
                    &[c(':')],
                    Action::Command,
                    "command (:queues :groups :exchanges :q NAME)",
                    true,
                ),
                b(
                    Global,
                    &[Key::ctrl('r')],
                    Action::Refresh,
                    "refresh now",
                    false,
                ),
                b(
                    Global,
                    &[k(Tab)],
                    Action::NextPane,
                    "next view or pane",
                    false,
                ),
                b(
                    Queues,
                    &[k(Enter), k(Right), c('l')],
                    Action::Open,
                    "open messages",
                    true,
                ),
                b(
                    Queues,
                    &[c('/')],
                    Action::Filter,
                    "filter (text or regex)",
                    true,
                ),
                b(
                    Queues,
                    &[c('s')],
                    Action::SortNext,
                    "sort by next column",
                    true,
                ),
                b(
                    Queues,
                    &[c('S')],
                    Action::SortReverse,
                    "reverse sort",
                    false,
                ),
                b(Queues, &[c('c')], Action::Groups, "consumer groups", false),
                b(Groups, &[c('/')], Action::Filter, "filter", true),
                b(Groups, &[c('Q')], Action::Queues, "queues", false),
                b(
                    Queues,
                    &[c('x')],
                    Action::Exchanges,
                    "exchanges and bindings",
                    false,
                ),
                b(Exchanges, &[c('/')], Action::Filter, "filter", true),
                b(Exchanges, &[c('Q')], Action::Queues, "queues", true),
                b(
                    Exchanges,
                    &[k(Enter), k(Right), c('l')],
                    Action::Open,
                    "show the queues it routes to",
                    true,
                ),
                b(
                    Messages,
                    &[k(Enter), k(Right), c('l')],
                    Action::Open,
                    "open message",
                    true,
                ),
                b(
                    Messages,
                    &[c('/')],
                    Action::Filter,
                    "filter (loaded messages)",
                    true,
                ),
                b(
                    Messages,
                    &[c(']')],
                    Action::NextPartition,
                    "next partition",
                    false,
                ),
                b(
                    Messages,
                    &[c('[')],
                    Action::PrevPartition,
                    "previous partition",
                    false,
                ),
                b(
                    Messages,
                    &[c('t')],
                    Action::Trace,
                    "trace (its correlation ID)",
                    true,
                ),
                b(
                    Message,
                    &[c('t')],
                    Action::Trace,
                    "trace (its correlation ID)",
                    true,
                ),
                b(
                    Message,
                    &[c('p')],
                    Action::PayloadMode,
                    "payload: auto/json/text/hex",
                    true,
                ),
                b(Message, &[c('w')], Action::Wrap, "wrap lines", true),
                b(
                    Message,
                    &[c('s')],
                    Action::Save,
                    "save message as JSON",
                    true,
                ),
                b(
                    Message,
                    &[c('y')],
                    Action::Copy,
                    "copy payload (OSC 52)",
                    true,
                ),
                b(
                    Queues,
                    &[c('P')],
                    Action::Purge,
                    "purge queue (backup first)",
                    false,
                ),
                b(Messages, &[c(' ')], Action::Mark, "mark", true),
                b(
                    Messages,
                    &[c('R')],
                    Action::Replay,
                    "replay (marked, filtered or all) to origin",
                    true,
                ),
                b(
                    Messages,
                    &[c('D')],
                    Action::Delete,
                    "delete marked (backup first)",
                    false,
                ),
                b(
                    Messages,
                    &[c('P')],
                    Action::Purge,
                    "purge queue (backup first)",
                    false,
                ),
                b(
                    Trace,
                    &[k(Enter), k(Right), c('l')],
                    Action::Open,
                    "open the hop's message",
                    true,
                ),
                b(
                    Trace,
                    &[c('f')],
                    Action::Follow,
                    "follow live (again: stop)",
                    true,
                ),
                b(
                    Trace,
                    &[k(Esc)],
                    Action::Back,
                    "cancel the scan / back",
                    true,
                ),
                b(
                    Trace,
                    &[Key::ctrl('r')],
                    Action::Refresh,
                    "trace again",
                    false,
                ),
                b(Queues, &[c('i')], Action::Info, "info", true),
                b(
                    Messages,
                    &[c('i')],
                    Action::Info,
                    "info about this queue or topic",
                    false,
                ),
                b(Info, &[c('i')], Action::Back, "close info", false),
                b(
                    Info,
                    &[Key::ctrl('r')],
                    Action::Refresh,
                    "describe again",
                    false,
                ),
                b(Help, &[c('?')], Action::Back, "close help", false),
            ],
        }
    }
}

/// `[keys]` in the config file: action name to the keys that trigger it, for example
/// `quit = ["q", "ctrl-c"]`. The keys replace the action's defaults in every view.
pub type KeyOverrides = BTreeMap<String, Vec<String>>;

impl Keymap {
    pub fn lookup(&self, scope: Scope, key: &Key) -> Option<Action> {
        let find = |s: Scope| {
            self.bindings
                .iter()
                .find(|b| b.scope == s && b.keys.contains(key))
                .map(|b| b.action)
        };
        find(scope).or_else(|| {
            if scope == Scope::Global {
                None
            } else {
                find(Scope::Global)
            }
        })
    }

    /// Bindings that apply in a view: its own, then the global ones it does not shadow.
    pub fn for_scope(&self, scope: Scope) -> Vec<&Binding> {
        let own: Vec<&Binding> = self.bindings.iter().filter(|b| b.scope == scope).collect();
        let mut out = own.clone();
        for g in self
            .bindings
            .iter()
            .filter(|b| b.scope == Scope::Global && scope != Scope::Global)
        {
            let shadowed = g
                .keys
                .iter()
                .all(|k| own.iter().any(|o| o.keys.contains(k)));
            if !shadowed {
                out.push(g);
            }
        }
        out
    }

    /// Apply user overrides; returns the keymap and any problems found (unknown actions,
    /// unparsable keys, and keys bound to two actions in one view).
    pub fn with_overrides(mut self, overrides: &KeyOverrides) -> (Keymap, Vec<String>) {
        let mut problems = Vec::new();
        for (name, keys) in overrides {
            let action: Action =
                match serde_json::from_value(serde_json::Value::String(name.clone())) {
                    Ok(a) => a,
                    Err(_) => {
                        problems.push(format!("[keys] unknown action \"{name}\""));
                        continue;
                    }
                };
            let mut parsed = Vec::new();
            for k in keys {
                match Key::parse(k) {
                    Some(key) => parsed.push(key),
                    None => problems.push(format!("[keys] {name}: cannot read key \"{k}\"")),
                }
            }
            if parsed.is_empty() {
                continue;
            }
            let mut found = false;
            for bind in self.bindings.iter_mut().filter(|b| b.action == action) {
                bind.keys = parsed.clone();
                found = true;
            }
            if !found {
                self.bindings
                    .push(b(Scope::Global, &parsed, action, "user binding", false));
            }
        }
        problems.extend(self.conflicts());
        (self, problems)
    }

    /// Keys that mean two different things in the same view.
    pub fn conflicts(&self) -> Vec<String> {
        let mut out = Vec::new();
        for scope in [
            Scope::Global,
            Scope::Queues,
            Scope::Groups,
            Scope::Exchanges,
            Scope::Messages,
            Scope::Message,
            Scope::Trace,
            Scope::Info,
            Scope::Help,
        ] {
            let mut seen: BTreeMap<Key, Action> = BTreeMap::new();
            for bind in self.bindings.iter().filter(|b| b.scope == scope) {
                for k in &bind.keys {
                    if let Some(prev) = seen.insert(*k, bind.action)
                        && prev != bind.action
                    {
                        out.push(format!(
                            "[keys] {k} is bound to both {prev:?} and {:?} in the {} view",
                            bind.action,
                            scope.name()
                        ));
                    }
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_keys() {
        assert_eq!(Key::parse("ctrl-d"), Some(Key::ctrl('d')));
        assert_eq!(Key::parse("C-D"), Some(Key::ctrl('d')));
        assert_eq!(Key::parse("G"), Some(Key::char('G')));
        assert_eq!(Key::parse("enter"), Some(Key::plain(KeyCode::Enter)));
        assert_eq!(Key::parse("f5"), Some(Key::plain(KeyCode::F(5))));
        assert_eq!(Key::parse("space"), Some(Key::char(' ')));
        assert_eq!(Key::parse("nonsense"), None);
        assert_eq!(Key::parse(""), None);
    }

    #[test]
    fn default_map_has_no_conflicts_and_views_shadow_global() {
        let km = Keymap::default();
        assert!(km.conflicts().is_empty(), "{:?}", km.conflicts());
        assert_eq!(
            km.lookup(Scope::Queues, &Key::char('s')),
            Some(Action::SortNext)
        );
        assert_eq!(
            km.lookup(Scope::Message, &Key::char('s')),
            Some(Action::Save)
        );
        assert_eq!(
            km.lookup(Scope::Messages, &Key::char('q')),
            Some(Action::Quit)
        );
        assert_eq!(km.lookup(Scope::Help, &Key::char('?')), Some(Action::Back));
        assert_eq!(
            km.lookup(Scope::Message, &Key::char('t')),
            Some(Action::Trace)
        );
        assert_eq!(
            km.lookup(Scope::Trace, &Key::char('f')),
            Some(Action::Follow)
        );
        assert_eq!(km.lookup(Scope::Queues, &Key::char('f')), None);
        assert_eq!(km.lookup(Scope::Queues, &Key::char('z')), None);
    }

    #[test]
    fn overrides_and_conflicts_are_reported() {
        let mut o = KeyOverrides::new();
        o.insert("quit".into(), vec!["z".into(), "ctrl-c".into()]);
        let (km, problems) = Keymap::default().with_overrides(&o);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            km.lookup(Scope::Queues, &Key::char('z')),
            Some(Action::Quit)
        );
        assert_eq!(km.lookup(Scope::Queues, &Key::char('q')), None);

        let mut o = KeyOverrides::new();
        o.insert("help".into(), vec!["q".into()]);
        o.insert("explode".into(), vec!["e".into()]);
        o.insert("wrap".into(), vec!["ctrl-".into()]);
        let (_, problems) = Keymap::default().with_overrides(&o);
        assert!(
            problems.iter().any(|p| p.contains("explode")),
            "{problems:?}"
        );
        assert!(problems.iter().any(|p| p.contains("both")), "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("cannot read")),
            "{problems:?}"
        );
    }
}
