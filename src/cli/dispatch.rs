//! Runs a subcommand: resolve the target, connect with the options the command needs, hand
//! it to its file (browse, peek, publish, trace, modify, demo). Errors carry one line of
//! context and go up to `main`.

use crate::backend::{self, Backend, ConnectOptions};
use crate::cli::{Cli, Command, browse, demo, guard, peek, publish, record, trace};
use crate::config::theme::Theme;
use crate::config::{self, Resolved, Selection};
use anyhow::{Context, Result, bail};
use futures::future::BoxFuture;
use std::io::{BufWriter, IsTerminal, Write};

/// The terminal UI, handed in by `main`: the command line decides when it opens (no
/// subcommand, or `demo`, on a terminal) without depending on it.
pub type OpenTui = for<'a> fn(&'a Resolved, Option<&'a str>) -> BoxFuture<'a, Result<()>>;

pub async fn run(cli: Cli, tui: OpenTui) -> Result<()> {
    let stdout = std::io::stdout();
    let text = !cli.command.as_ref().is_some_and(Command::writes_json);
    // Text is for a terminal: names, ids and headers come from whoever published, and an
    // escape sequence among them must not reach it as one.
    let mut out = guard::TextGuard::new(BufWriter::new(stdout), text);
    let result = dispatch(cli, tui, &mut out).await;
    out.flush().context("writing output")?;
    result
}

async fn dispatch(cli: Cli, tui: OpenTui, out: &mut dyn Write) -> Result<()> {
    let sel = Selection {
        url: cli.global.url.clone(),
        profile: cli.global.profile.clone(),
        config: cli.global.config.clone(),
        read_only: cli.global.read_only,
    };
    // A bad --theme is a usage mistake wherever it is given; say so before doing anything.
    if let Some(name) = cli.global.theme.as_deref() {
        Theme::load(name, crate::config::theme::user_themes_dir().as_deref())?;
    }
    let command = match cli.command {
        Some(Command::Demo(args)) => {
            return demo::demo(&args, &sel, cli.global.theme.as_deref(), tui, out).await;
        }
        Some(c) => c,
        None => {
            let resolved = resolve_asking(&sel)?;
            if std::io::stdout().is_terminal() {
                return tui(&resolved, cli.global.theme.as_deref()).await;
            }
            // Not a terminal (a pipe, a script): print what the target holds instead.
            let backend = backend::connect(&resolved.target, &connect_options(&resolved)).await?;
            let result = browse::overview(&resolved, backend.as_ref(), out).await;
            backend.close().await;
            return result;
        }
    };
    let resolved = resolve_asking(&sel)?;
    let opts = ConnectOptions {
        // Publishing needs AMQP alone: no management tag asked for.
        amqp_only: matches!(command, Command::Publish(_)),
        // The demo broker only has new messages while its traffic runs.
        live: match &command {
            Command::Tail(_) | Command::Record(_) => true,
            Command::Trace(args) => args.follow,
            _ => false,
        },
        ..connect_options(&resolved)
    };
    let backend = backend::connect(&resolved.target, &opts).await?;
    let result = command_on(backend.as_ref(), &resolved, command, out).await;
    backend.close().await;
    result
}

/// One subcommand on a connected backend.
async fn command_on(
    backend: &dyn Backend,
    resolved: &Resolved,
    command: Command,
    out: &mut dyn Write,
) -> Result<()> {
    match command {
        Command::Queues(args) => browse::queues(backend, &args, out).await,
        Command::Peek(args) => peek::peek(backend, resolved, &args, out).await,
        Command::Publish(args) => publish::publish(backend, resolved, &args, out).await,
        Command::Tail(args) => trace::tail(backend, resolved, &args, out).await,
        Command::Trace(args) => {
            let db = record::db_path(args.db.as_ref(), resolved);
            // The body rules look inside Avro, Protobuf, MessagePack and compressed bodies
            // the profile maps; a schema file that cannot be read is an error up front.
            let decoder = std::sync::Arc::new(crate::config::decoder(resolved)?);
            trace::trace(backend, &args, db.as_deref(), decoder, out).await
        }
        Command::Record(args) => record::run(backend, resolved, &args, out).await,
        Command::Replay(args) => crate::cli::modify::replay(backend, resolved, &args, out).await,
        Command::Purge(args) => crate::cli::modify::purge(backend, resolved, &args, out).await,
        Command::Delete(args) => crate::cli::modify::delete(backend, resolved, &args, out).await,
        Command::Groups(flag) => browse::groups(backend, flag.json, out).await,
        Command::Describe(args) => browse::describe(backend, resolved, &args, out).await,
        Command::Vhosts(flag) => browse::vhosts(backend, flag.json, out).await,
        Command::Exchanges(args) => browse::exchanges(backend, &args, out).await,
        Command::Bindings(args) => browse::bindings(backend, &args, out).await,
        Command::Demo(_) => bail!("the demo runs without a connection to a broker"),
    }
}

/// Pick the target, asking at the terminal for the password of a user named without
/// one; without a terminal to ask at, that is an error saying where a password goes.
fn resolve_asking(sel: &Selection) -> Result<Resolved> {
    Ok(config::resolve_asking(sel, &|question| {
        if !crate::config::password::can_ask() {
            return None;
        }
        crate::config::password::ask_on_terminal(question)
            .ok()
            .flatten()
    })?)
}

/// How to connect to a resolved target: one-shot, with its profile's settings.
pub(super) fn connect_options(resolved: &Resolved) -> ConnectOptions {
    ConnectOptions {
        settings: crate::config::connect_settings(resolved),
        ..ConnectOptions::default()
    }
}
