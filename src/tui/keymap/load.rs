//! Reading keys files: the default keymap (`default.toml`, compiled in) and the user's
//! `[keys]` overrides go through the same reading of action names and keys.

use super::{Action, Binding, Key, Keymap, Scope};
use serde::Deserialize;
use std::collections::BTreeMap;

/// The keys mqscope starts with: one table per view, a `desc` per binding.
pub const DEFAULT_TOML: &str = include_str!("default.toml");

/// `[keys]` in the config file: action name to the keys that trigger it, for example
/// `quit = ["q", "ctrl-c"]`. The keys replace the action's defaults in every view.
pub type KeyOverrides = BTreeMap<String, Vec<String>>;

/// An action by the name a keys file gives it (`page_down`).
fn action_named(name: &str) -> Option<Action> {
    serde_json::from_value(serde_json::Value::String(name.to_string())).ok()
}

/// The keys a keys file lists for `place`; each one that cannot be read is reported and
/// left out.
fn read_keys(place: &str, keys: &[String], problems: &mut Vec<String>) -> Vec<Key> {
    let mut parsed = Vec::new();
    for k in keys {
        match Key::parse(k) {
            Some(key) => parsed.push(key),
            None => problems.push(format!("{place}: cannot read key \"{k}\"")),
        }
    }
    parsed
}

/// One view's table in the default keys file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Table {
    keymap: Vec<Entry>,
}

/// One binding, in the shape of yazi's keymap files: `on` the keys, `run` the action.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    on: Vec<String>,
    run: String,
    desc: String,
    #[serde(default)]
    hint: bool,
}

impl Keymap {
    /// Read a keys file in the shape of `default.toml`. What cannot be read is reported
    /// and left out, so a mistake costs a binding, never the keymap: only Ctrl-C (which
    /// needs no binding) is sure to work without one.
    pub fn from_toml(text: &str) -> (Keymap, Vec<String>) {
        let mut problems = Vec::new();
        let mut tables: BTreeMap<String, Table> = match toml::from_str(text) {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("default keys: {e}"));
                BTreeMap::new()
            }
        };
        let mut bindings = Vec::new();
        for scope in Scope::ALL {
            let Some(table) = tables.remove(scope.name()) else {
                continue;
            };
            for entry in table.keymap {
                let place = format!("default keys [{}] {}", scope.name(), entry.run);
                let Some(action) = action_named(&entry.run) else {
                    problems.push(format!("{place}: unknown action"));
                    continue;
                };
                let keys = read_keys(&place, &entry.on, &mut problems);
                if keys.is_empty() {
                    problems.push(format!("{place}: no keys"));
                    continue;
                }
                bindings.push(Binding {
                    scope,
                    keys,
                    action,
                    desc: entry.desc,
                    hint: entry.hint,
                });
            }
        }
        for name in tables.keys() {
            problems.push(format!("default keys: no view named [{name}]"));
        }
        (Keymap { bindings }, problems)
    }

    /// Apply user overrides; returns the keymap and any problems found (unknown actions,
    /// unparsable keys, and keys bound to two actions in one view).
    pub fn with_overrides(mut self, overrides: &KeyOverrides) -> (Keymap, Vec<String>) {
        let mut problems = Vec::new();
        for (name, keys) in overrides {
            let Some(action) = action_named(name) else {
                problems.push(format!("[keys] unknown action \"{name}\""));
                continue;
            };
            let parsed = read_keys(&format!("[keys] {name}"), keys, &mut problems);
            if parsed.is_empty() {
                continue;
            }
            let mut found = false;
            for bind in self.bindings.iter_mut().filter(|b| b.action == action) {
                bind.keys = parsed.clone();
                found = true;
            }
            if !found {
                self.bindings.push(Binding {
                    scope: Scope::Global,
                    keys: parsed,
                    action,
                    desc: "user binding".to_string(),
                    hint: false,
                });
            }
        }
        problems.extend(self.conflicts());
        (self, problems)
    }
}

impl Default for Keymap {
    /// The compiled-in keys. The unit test below reads the same file, so a mistake in it
    /// fails the build's tests rather than reaching a user (who would lose one binding).
    fn default() -> Self {
        Keymap::from_toml(DEFAULT_TOML).0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_keys_file_reads_without_a_problem() {
        let (km, problems) = Keymap::from_toml(DEFAULT_TOML);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(km.bindings.len(), 47);
        for scope in Scope::ALL {
            assert!(
                km.bindings.iter().any(|b| b.scope == scope),
                "no keys for the {} view",
                scope.name()
            );
        }
        assert!(km.bindings.iter().all(|b| !b.desc.is_empty()));
    }

    #[test]
    fn a_malformed_keys_file_is_reported_not_a_panic() {
        let (km, problems) = Keymap::from_toml("[global\nkeymap = ");
        assert!(km.bindings.is_empty());
        assert_eq!(problems.len(), 1, "{problems:?}");
        let (km, problems) = Keymap::from_toml(
            r#"
            [global]
            keymap = [
              { on = ["q"], run = "quit", desc = "quit", hint = true },
              { on = ["x"], run = "explode", desc = "boom" },
              { on = ["ctrl-"], run = "help", desc = "help" },
            ]
            [nowhere]
            keymap = []
            "#,
        );
        assert_eq!(km.bindings.len(), 1);
        assert_eq!(
            km.lookup(Scope::Queues, &Key::char('q')),
            Some(Action::Quit)
        );
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(
            problems.iter().any(|p| p.contains("explode")),
            "{problems:?}"
        );
        assert!(
            problems.iter().any(|p| p.contains("nowhere")),
            "{problems:?}"
        );
    }
}
