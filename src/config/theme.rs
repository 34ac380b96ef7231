//! Colour themes: every colour the UI uses is named by what it means (a role), themes are
//! flat TOML files (built in from `themes/`, or the user's own), and single roles can be
//! overridden from the config file. `NO_COLOR` turns colour off but keeps emphasis.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;

macro_rules! roles {
    ($($variant:ident => $name:literal),* $(,)?) => {
        /// What a colour is for.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Role { $($variant),* }

        impl Role {
            pub const ALL: &'static [Role] = &[$(Role::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Role::$variant => $name),* }
            }

            pub fn from_name(name: &str) -> Option<Role> {
                match name { $($name => Some(Role::$variant),)* _ => None }
            }
        }
    };
}

roles! {
    Text => "text",
    Dim => "dim",
    Border => "border",
    BorderFocus => "border_focus",
    Title => "title",
    Header => "header",
    SelectedFg => "selected_fg",
    SelectedBg => "selected_bg",
    Match => "match",
    DeadLetter => "dead_letter",
    Redelivered => "redelivered",
    Ok => "ok",
    Warning => "warning",
    Error => "error",
    BadgeFg => "badge_fg",
    BadgeBg => "badge_bg",
    StatusFg => "status_fg",
    StatusBg => "status_bg",
    HintKey => "hint_key",
    HintText => "hint_text",
    JsonKey => "json_key",
    JsonString => "json_string",
    JsonNumber => "json_number",
    JsonLiteral => "json_literal",
    JsonPunct => "json_punct",
}

/// Themes shipped in the binary.
pub const BUILT_IN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    (
        "catppuccin-mocha",
        include_str!("../../themes/catppuccin-mocha.toml"),
    ),
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ThemeError {
    #[error("unknown theme \"{name}\" (built in: {builtin}; or put {name}.toml in {dir})")]
    Unknown {
        name: String,
        builtin: String,
        dir: String,
    },
    #[error("{file}: {reason}")]
    Invalid { file: String, reason: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    #[allow(dead_code)]
    name: Option<String>,
    #[serde(default)]
    roles: BTreeMap<String, String>,
}

/// A resolved theme: one colour per role.
#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    colors: Vec<Color>,
    /// No colours at all (`NO_COLOR`); emphasis comes from modifiers only.
    pub monochrome: bool,
}

pub fn parse_color(s: &str) -> Option<Color> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("reset") || s.eq_ignore_ascii_case("default") {
        return Some(Color::Reset);
    }
    Color::from_str(s).ok()
}

impl Theme {
    fn from_text(
        name: &str,
        file: &str,
        text: &str,
        base: Option<&Theme>,
    ) -> Result<Theme, ThemeError> {
        let invalid = |reason: String| ThemeError::Invalid {
            file: file.to_string(),
            reason,
        };
        let parsed: ThemeFile =
            toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
        let mut colors = base
            .map(|b| b.colors.clone())
            .unwrap_or_else(|| vec![Color::Reset; Role::ALL.len()]);
        apply(&mut colors, &parsed.roles, file)?;
        if base.is_none()
            && let Some(missing) = Role::ALL
                .iter()
                .find(|r| !parsed.roles.contains_key(r.name()))
        {
            return Err(invalid(format!("role \"{}\" is missing", missing.name())));
        }
        Ok(Theme {
            name: name.to_string(),
            colors,
            monochrome: false,
        })
    }

    pub fn builtin(name: &str) -> Option<Theme> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        Theme::from_text(name, &format!("themes/{name}.toml"), text, None).ok()
    }

    /// The default theme, which is built in and tested.
    pub fn default_theme() -> Theme {
        Theme::builtin("default").unwrap_or(Theme {
            name: "default".into(),
            colors: vec![Color::Reset; Role::ALL.len()],
            monochrome: false,
        })
    }

    /// Find a theme by name: the user's themes directory first, then the built-in ones.
    /// A user theme may set only some roles; the rest come from the default theme.
    pub fn load(name: &str, user_dir: Option<&Path>) -> Result<Theme, ThemeError> {
        if let Some(dir) = user_dir {
            let path = dir.join(format!("{name}.toml"));
            if path.is_file() {
                let file = path.display().to_string();
                let text = std::fs::read_to_string(&path).map_err(|e| ThemeError::Invalid {
                    file: file.clone(),
                    reason: e.to_string(),
                })?;
                let base = Theme::default_theme();
                return Theme::from_text(name, &file, &text, Some(&base));
            }
        }
        Theme::builtin(name).ok_or_else(|| ThemeError::Unknown {
            name: name.to_string(),
            builtin: BUILT_IN
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", "),
            dir: user_dir
                .map(|d| d.display().to_string())
                .unwrap_or_else(|| "the themes directory".into()),
        })
    }

    /// Override single roles, e.g. from the config file's `[colors]` table.
    pub fn with_overrides(
        mut self,
        overrides: &BTreeMap<String, String>,
        file: &str,
    ) -> Result<Theme, ThemeError> {
        apply(&mut self.colors, overrides, file)?;
        Ok(self)
    }

    pub fn monochrome(mut self) -> Theme {
        self.monochrome = true;
        self
    }

    pub fn color(&self, role: Role) -> Color {
        if self.monochrome {
            return Color::Reset;
        }
        self.colors
            .get(role as usize)
            .copied()
            .unwrap_or(Color::Reset)
    }

    /// Foreground style of a role.
    pub fn fg(&self, role: Role) -> Style {
        let s = Style::default().fg(self.color(role));
        if self.monochrome {
            match role {
                Role::Title | Role::Header | Role::HintKey => s.add_modifier(Modifier::BOLD),
                Role::Dim | Role::HintText | Role::Border => s.add_modifier(Modifier::DIM),
                Role::DeadLetter | Role::Error | Role::Match => {
                    s.add_modifier(Modifier::BOLD | Modifier::UNDERLINED)
                }
                _ => s,
            }
        } else {
            s
        }
    }

    pub fn selected(&self) -> Style {
        self.inverse(Role::SelectedFg, Role::SelectedBg)
    }

    pub fn status_bar(&self) -> Style {
        self.inverse(Role::StatusFg, Role::StatusBg)
    }

    pub fn badge(&self) -> Style {
        self.inverse(Role::BadgeFg, Role::BadgeBg)
            .add_modifier(Modifier::BOLD)
    }

    /// Text set off by its own colours, or reversed where there are none (monochrome).
    fn inverse(&self, fg: Role, bg: Role) -> Style {
        if self.monochrome {
            Style::default().add_modifier(Modifier::REVERSED)
        } else {
            Style::default().fg(self.color(fg)).bg(self.color(bg))
        }
    }
}

fn apply(
    colors: &mut [Color],
    roles: &BTreeMap<String, String>,
    file: &str,
) -> Result<(), ThemeError> {
    for (key, value) in roles {
        let role = Role::from_name(key).ok_or_else(|| ThemeError::Invalid {
            file: file.to_string(),
            reason: format!("unknown role \"{key}\""),
        })?;
        let color = parse_color(value).ok_or_else(|| ThemeError::Invalid {
            file: file.to_string(),
            reason: format!(
                "role \"{key}\": \"{value}\" is not a colour (use #rrggbb or a name like lightblue)"
            ),
        })?;
        colors[role as usize] = color;
    }
    Ok(())
}

/// `$XDG_CONFIG_HOME/mqscope/themes`.
pub fn user_themes_dir() -> Option<PathBuf> {
    dirs::config_dir().map(|d| d.join("mqscope").join("themes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::written;

    #[test]
    fn every_built_in_theme_defines_every_role() {
        for (name, text) in BUILT_IN {
            Theme::from_text(name, name, text, None).unwrap_or_else(|e| panic!("{e}"));
        }
    }

    #[test]
    fn user_themes_override_and_errors_name_file_and_key() {
        let dir = tempfile::tempdir().unwrap();
        written(
            dir.path(),
            "mine.toml",
            "[roles]\ndead_letter = \"#010203\"\n",
        );
        let t = Theme::load("mine", Some(dir.path())).unwrap();
        assert_eq!(t.color(Role::DeadLetter), Color::Rgb(1, 2, 3));
        assert_eq!(
            t.color(Role::Text),
            Theme::default_theme().color(Role::Text)
        );

        std::fs::write(
            dir.path().join("bad.toml"),
            "[roles]\ntext = \"not-a-colour\"\n",
        )
        .unwrap();
        let e = Theme::load("bad", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("bad.toml") && e.contains("\"text\""), "{e}");
        std::fs::write(dir.path().join("typo.toml"), "[roles]\ntxet = \"red\"\n").unwrap();
        let e = Theme::load("typo", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("typo.toml") && e.contains("txet"), "{e}");
        let e = Theme::load("nope", Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown theme") && e.contains("light"), "{e}");

        let mut over = BTreeMap::new();
        over.insert("ok".to_string(), "green".to_string());
        let t = Theme::default_theme()
            .with_overrides(&over, "config.toml")
            .unwrap();
        assert_eq!(t.color(Role::Ok), Color::Green);
        over.insert("bogus".to_string(), "green".to_string());
        assert!(
            Theme::default_theme()
                .with_overrides(&over, "config.toml")
                .is_err()
        );
    }

    #[test]
    fn no_color_keeps_emphasis() {
        let t = Theme::default_theme().monochrome();
        assert_eq!(t.color(Role::DeadLetter), Color::Reset);
        assert!(t.selected().add_modifier.contains(Modifier::REVERSED));
    }
}
