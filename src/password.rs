//! Where a password comes from when the URL has none: `MQSCOPE_PASSWORD`, the profile's
//! environment variable, its command, or the person at the terminal. An empty answer counts as none: handed on,
//! it became lapin's default password, "guest".

use crate::config::{ConfigError, Profile, Secret};
use std::io::Write;
use std::process::{Command, Stdio};

/// What the password sources gave.
#[derive(Debug, Default)]
pub struct Lookup {
    pub secret: Option<Secret>,
    /// The sources that were there but empty, for the message that asks for a password.
    pub empty: Vec<String>,
}

/// The password from `MQSCOPE_PASSWORD`, the profile's variable, or its command, in that
/// order; the first that is not empty wins.
pub fn password_for(profile: &Profile) -> Result<Option<Secret>, ConfigError> {
    lookup(profile).map(|l| l.secret)
}

/// Like [`password_for`], and also says which sources were empty.
pub fn lookup(profile: &Profile) -> Result<Lookup, ConfigError> {
    let mut found = Lookup::default();
    // Set but empty (`MQSCOPE_PASSWORD= mqscope ...`, a template that filled in nothing)
    // is not a password anybody chose.
    match std::env::var("MQSCOPE_PASSWORD") {
        Ok(p) if !p.is_empty() => return Ok(with(found, p)),
        Ok(_) => found.empty.push("MQSCOPE_PASSWORD is empty".into()),
        Err(_) => {}
    }
    if let Some(var) = &profile.password_env {
        match std::env::var(var) {
            Ok(p) if !p.is_empty() => return Ok(with(found, p)),
            Ok(_) => found.empty.push(format!("${var} (password_env) is empty")),
            Err(_) => {
                return Err(ConfigError::Password(format!(
                    "the profile reads its password from ${var}, which is not set"
                )));
            }
        }
    }
    if let Some(cmd) = &profile.password_command {
        let p = run_command(cmd)?;
        if !p.is_empty() {
            return Ok(with(found, p));
        }
        found.empty.push("password_command printed nothing".into());
    }
    Ok(found)
}

fn with(mut found: Lookup, password: String) -> Lookup {
    found.secret = Some(Secret::new(password));
    found
}

/// Run `cmd` with `sh -c` and return what it printed, without the line end.
fn run_command(cmd: &str) -> Result<String, ConfigError> {
    let out = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| ConfigError::Password(format!("cannot run password_command: {e}")))?;
    if !out.status.success() {
        return Err(ConfigError::Password(format!(
            "password_command failed ({})",
            out.status
        )));
    }
    let text = String::from_utf8(out.stdout).map_err(|_| {
        ConfigError::Password("password_command printed something that is not UTF-8".into())
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_string())
}

/// Whether a password can be asked for: someone is at a terminal to type it and to see
/// the question.
pub fn can_ask() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stderr().is_terminal()
}

/// Ask at the terminal, without echo. `None` when the person gives up (Esc, Ctrl-C,
/// Ctrl-D) or enters nothing.
pub fn ask_on_terminal(prompt: &str) -> std::io::Result<Option<Secret>> {
    use crossterm::event::{Event, KeyCode, KeyEventKind, KeyModifiers, read};
    /// Raw mode is left on every way out, or the shell is left without echo.
    struct Raw;
    impl Drop for Raw {
        fn drop(&mut self) {
            let _ = crossterm::terminal::disable_raw_mode();
        }
    }
    let mut err = std::io::stderr();
    write!(err, "{prompt}")?;
    err.flush()?;
    // Raw mode, so Ctrl-C comes as a key (a signal would leave the terminal raw).
    crossterm::terminal::enable_raw_mode()?;
    let raw = Raw;
    let mut text = String::new();
    let entered = loop {
        match read()? {
            Event::Key(k) if k.kind != KeyEventKind::Release => match k.code {
                KeyCode::Enter => break true,
                KeyCode::Char('c' | 'd') if k.modifiers.contains(KeyModifiers::CONTROL) => {
                    break false;
                }
                KeyCode::Esc => break false,
                KeyCode::Backspace => {
                    text.pop();
                }
                KeyCode::Char(c) => text.push(c),
                _ => {}
            },
            Event::Paste(p) => text.push_str(&p),
            _ => {}
        }
    };
    drop(raw);
    writeln!(err)?;
    Ok((entered && !text.is_empty()).then(|| Secret::new(text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_that_prints_nothing_gives_no_password() {
        let mut profile = Profile::default();
        profile.password_command = Some("true".into());
        // MQSCOPE_PASSWORD is read first; these tests run without it.
        if std::env::var_os("MQSCOPE_PASSWORD").is_some() {
            return;
        }
        let found = lookup(&profile).unwrap();
        assert!(found.secret.is_none());
        assert_eq!(found.empty, vec!["password_command printed nothing"]);
    }
}
