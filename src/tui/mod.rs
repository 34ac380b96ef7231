//! The terminal UI: state, pure updates, key map, the worker, and the event loop that ties
//! them to a real terminal.

pub mod keymap;
pub mod msg;
pub mod state;
pub mod ui;
pub mod update;
pub mod worker;

use crate::config::Resolved;
use crate::config::theme::Theme;
use anyhow::{Context, Result};
use crossterm::event::{Event, EventStream, KeyEventKind, MouseEventKind};
use futures::StreamExt;
use futures::future::BoxFuture;
use keymap::{Key, KeyCode, Keymap};
use state::{Effect, State};
use std::io::Write;
use std::time::Duration;
use tokio::time::{Instant, sleep_until};
use update::{Msg, update};
use worker::Worker;

/// Pick the theme (flag, then config, then default), apply colour overrides and NO_COLOR.
pub fn choose_theme(resolved: &Resolved, flag: Option<&str>) -> Result<Theme> {
    let name = flag.or(resolved.theme.as_deref()).unwrap_or("default");
    let dir = crate::config::theme::user_themes_dir();
    let theme = Theme::load(name, dir.as_deref())?;
    let file = resolved.config_path.as_deref().unwrap_or("config");
    let theme = theme.with_overrides(&resolved.colors, &format!("{file} [colors]"))?;
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    Ok(if no_color { theme.monochrome() } else { theme })
}

/// Open the terminal UI on a resolved target: theme and keys from the flag and the config.
pub fn open<'a>(resolved: &'a Resolved, theme_flag: Option<&'a str>) -> BoxFuture<'a, Result<()>> {
    Box::pin(start(resolved, theme_flag))
}

async fn start(resolved: &Resolved, theme_flag: Option<&str>) -> Result<()> {
    let theme = choose_theme(resolved, theme_flag)?;
    let (keymap, problems) = Keymap::default().with_overrides(&resolved.keys);
    run(resolved, theme, keymap, problems).await
}

/// At most one frame per this interval.
const FRAME: Duration = Duration::from_millis(16);

/// Translate a crossterm key into ours.
pub fn key_from(ev: &crossterm::event::KeyEvent) -> Option<Key> {
    use crossterm::event::{KeyCode as C, KeyModifiers as M};
    let code = match ev.code {
        C::Char(c) => KeyCode::Char(c),
        C::Enter => KeyCode::Enter,
        C::Esc => KeyCode::Esc,
        C::Up => KeyCode::Up,
        C::Down => KeyCode::Down,
        C::Left => KeyCode::Left,
        C::Right => KeyCode::Right,
        C::PageUp => KeyCode::PageUp,
        C::PageDown => KeyCode::PageDown,
        C::Home => KeyCode::Home,
        C::End => KeyCode::End,
        C::Tab => KeyCode::Tab,
        C::BackTab => KeyCode::BackTab,
        C::Backspace => KeyCode::Backspace,
        C::Delete => KeyCode::Delete,
        C::F(n) => KeyCode::F(n),
        _ => return None,
    };
    Some(Key {
        code,
        ctrl: ev.modifiers.contains(M::CONTROL),
        alt: ev.modifiers.contains(M::ALT),
    })
}

/// Put the terminal back as we found it. Safe to call more than once.
fn restore_terminal() {
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    ratatui::restore();
}

/// Run the TUI until the user quits. The terminal is restored on every exit path,
/// including panics (the hook installed here runs before the default one).
pub async fn run(
    resolved: &Resolved,
    theme: Theme,
    keymap: Keymap,
    warnings: Vec<String>,
) -> Result<()> {
    let target = resolved.target.clone();
    let mut state = State::new(
        match &target {
            crate::config::Target::Local(_) => "local",
            crate::config::Target::Amqp(_) => "rabbitmq",
            crate::config::Target::Kafka(_) => "kafka",
        },
        &target.redacted(),
        resolved.profile_name.clone(),
        resolved.read_only,
        keymap,
    );
    let mut warnings = warnings;
    // A schema file or registry setting that cannot be read leaves the rest of the TUI
    // usable: said, not fatal. The decoder never asks the registry itself (drawing must not
    // wait on it): the worker fetches each page's schemas before it is shown.
    let registry = crate::config::registry(resolved).unwrap_or_else(|e| {
        warnings.push(e.to_string());
        None
    });
    match crate::config::decoder_with(resolved, registry.clone(), false) {
        Ok(d) => state.decoding = crate::tui::state::Decoding(std::sync::Arc::new(d)),
        Err(e) => warnings.push(e.to_string()),
    }
    if !warnings.is_empty() {
        state.status.error = Some(warnings.join("; "));
    }
    let prev_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        restore_terminal();
        prev_hook(info);
    }));
    let mut terminal = ratatui::try_init()
        .context("cannot open the terminal (is this an interactive terminal?)")?;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let worker = Worker::new(target, crate::config::connect_settings(resolved), tx)
        .with_record_db(resolved.profile.record_db.clone())
        .with_registry(registry)
        .with_decoder(std::sync::Arc::clone(&state.decoding.0));
    let result = event_loop(&mut terminal, &mut state, &theme, &worker, rx).await;
    restore_terminal();
    // After the terminal is back: a broker slow to answer must not hold the screen.
    worker.close().await;
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    state: &mut State,
    theme: &Theme,
    worker: &Worker,
    mut rx: tokio::sync::mpsc::UnboundedReceiver<Msg>,
) -> Result<()> {
    let size = terminal.size()?;
    update(state, Msg::Resize(size.width, size.height));
    terminal.draw(|f| crate::tui::ui::draw(f, state, theme))?;
    worker.run(Effect::Connect);
    let mut events = EventStream::new();
    let mut ticks = tokio::time::interval(Duration::from_secs(1));
    ticks.tick().await;
    let mut sigterm =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    let mut dirty = false;
    let mut next_frame = Instant::now();
    loop {
        let msg = tokio::select! {
            ev = events.next() => match ev {
                Some(Ok(Event::Key(k))) if k.kind != KeyEventKind::Release => key_from(&k).map(Msg::Key),
                Some(Ok(Event::Mouse(m))) => match m.kind {
                    MouseEventKind::ScrollDown => Some(Msg::Scroll(3)),
                    MouseEventKind::ScrollUp => Some(Msg::Scroll(-3)),
                    _ => None,
                },
                Some(Ok(Event::Resize(w, h))) => Some(Msg::Resize(w, h)),
                Some(Ok(_)) => None,
                Some(Err(e)) => return Err(e).context("reading terminal input"),
                None => return Ok(()),
            },
            Some(reply) = rx.recv() => Some(reply),
            _ = ticks.tick() => Some(Msg::Tick),
            _ = async { match sigterm.as_mut() { Some(s) => { s.recv().await; } None => std::future::pending().await } } => return Ok(()),
            _ = sleep_until(next_frame), if dirty => {
                terminal.draw(|f| crate::tui::ui::draw(f, state, theme))?;
                dirty = false;
                next_frame = Instant::now() + FRAME;
                None
            }
        };
        let Some(msg) = msg else { continue };
        for effect in update(state, msg) {
            match effect {
                Effect::Quit => return Ok(()),
                Effect::Copy(text) => osc52(&text),
                other => worker.run(other),
            }
        }
        if state.quit {
            return Ok(());
        }
        // Every message may change what is on screen; drawing is capped at one per frame.
        dirty = true;
    }
}

/// Copy to the clipboard through the terminal (works over SSH in most terminals).
fn osc52(text: &str) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::STANDARD.encode(text.as_bytes());
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{b64}\x07");
    let _ = out.flush();
}
