//! Keys as data: one table drives key handling, the help screen and the hint bar. The
//! defaults are `default.toml`; users rebind actions in the config file's `[keys]` table
//! (both read by `load`); conflicts are reported at start.

mod key;
mod load;

pub use key::{Key, KeyCode};
pub use load::{DEFAULT_TOML, KeyOverrides};
use serde::Deserialize;
use std::collections::BTreeMap;

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
    pub const ALL: [Scope; 9] = [
        Scope::Global,
        Scope::Queues,
        Scope::Groups,
        Scope::Exchanges,
        Scope::Messages,
        Scope::Message,
        Scope::Trace,
        Scope::Info,
        Scope::Help,
    ];

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
    pub desc: String,
    /// Shown in the hint bar (the most useful few per view).
    pub hint: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keymap {
    pub bindings: Vec<Binding>,
}

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

    /// Keys that mean two different things in the same view.
    pub fn conflicts(&self) -> Vec<String> {
        let mut out = Vec::new();
        for scope in Scope::ALL {
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
    fn default_map_has_no_conflicts_and_views_shadow_global() {
        let km = Keymap::default();
        assert!(km.conflicts().is_empty(), "{:?}", km.conflicts());
        let expected = [
            (Scope::Queues, 's', Some(Action::SortNext)),
            (Scope::Message, 's', Some(Action::Save)),
            (Scope::Messages, 'q', Some(Action::Quit)),
            (Scope::Help, '?', Some(Action::Back)),
            (Scope::Message, 't', Some(Action::Trace)),
            (Scope::Trace, 'f', Some(Action::Follow)),
            (Scope::Queues, 'f', None),
            (Scope::Queues, 'z', None),
        ];
        for (scope, c, action) in expected {
            assert_eq!(km.lookup(scope, &Key::char(c)), action, "{scope:?} {c}");
        }
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
