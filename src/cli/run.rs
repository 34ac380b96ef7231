//! Runs the subcommands: resolve the target, connect, call the backend, print a table or
//! JSON Lines. Errors carry one line of context and go up to `main`.

use crate::backend::Destination;
use crate::backend::{self, Backend, BackendError, ConnectOptions, PeekFrom, PeekRequest};
use crate::cli::output;
use crate::cli::{Cli, Command, DemoArgs, PeekArgs, PublishArgs, QueuesArgs, TailArgs, TraceArgs};
use crate::config::theme::Theme;
use crate::config::{self, LocalTarget, Resolved, Selection, Target};
use crate::format::record::parse_record;
use crate::model::Message;
use crate::model::correlation::Extractor;
use crate::model::time::{parse_duration, parse_since};
use anyhow::{Context, Result, anyhow, bail};
use chrono::{DateTime, Utc};
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
    let mut out = output::TextGuard::new(BufWriter::new(stdout), text);
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
            return demo(&args, &sel, cli.global.theme.as_deref(), tui, out).await;
        }
        Some(c) => c,
        None => {
            let resolved = resolve_asking(&sel)?;
            if std::io::stdout().is_terminal() {
                return tui(&resolved, cli.global.theme.as_deref()).await;
            }
            // Not a terminal (a pipe, a script): print what the target holds instead.
            let backend = backend::connect(&resolved.target, &connect_options(&resolved)).await?;
            let result = overview(&resolved, backend.as_ref(), out).await;
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
            Command::Tail(_) => true,
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
        Command::Queues(args) => queues(backend, &args, out).await,
        Command::Peek(args) => peek(backend, &args, out).await,
        Command::Publish(args) => publish(backend, resolved, &args, out).await,
        Command::Tail(args) => tail(backend, &args, out).await,
        Command::Trace(args) => trace(backend, &args, out).await,
        Command::Replay(args) => crate::cli::modify::replay(backend, resolved, &args, out).await,
        Command::Purge(args) => crate::cli::modify::purge(backend, resolved, &args, out).await,
        Command::Delete(args) => crate::cli::modify::delete(backend, resolved, &args, out).await,
        Command::Groups(flag) => groups(backend, flag.json, out).await,
        Command::Describe(args) => {
            let detail = match backend::describe_full(backend, &args.queue).await {
                Ok(d) => d,
                Err(BackendError::QueueNotFound(name)) => {
                    return Err(not_found(backend, &name).await);
                }
                Err(e) => return Err(e.into()),
            };
            if args.out.json {
                writeln!(out, "{}", serde_json::to_string(&detail)?)?;
            } else {
                write!(out, "{}", crate::model::describe::text(&detail))?;
            }
            Ok(())
        }
        Command::Vhosts(flag) => {
            let list = browser(backend, "virtual hosts")?.vhosts().await?;
            json_or_table(&list, flag.json, output::write_vhost_table, out)
        }
        Command::Exchanges(args) => {
            let mut list = browser(backend, "exchanges")?.exchanges().await?;
            if let Some(f) = &args.filter {
                let f = f.to_lowercase();
                list.retain(|e| e.name.to_lowercase().contains(&f));
            }
            json_or_table(&list, args.out.json, output::write_exchange_table, out)
        }
        Command::Bindings(args) => {
            let mut list = browser(backend, "bindings")?.bindings().await?;
            list.retain(|b| {
                args.source.as_ref().is_none_or(|s| &b.source == s)
                    && args
                        .destination
                        .as_ref()
                        .is_none_or(|d| &b.destination == d)
            });
            json_or_table(&list, args.out.json, output::write_binding_table, out)
        }
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
fn connect_options(resolved: &Resolved) -> ConnectOptions {
    ConnectOptions {
        settings: crate::config::connect_settings(resolved),
        ..ConnectOptions::default()
    }
}

async fn queues(backend: &dyn Backend, args: &QueuesArgs, out: &mut dyn Write) -> Result<()> {
    let mut list = backend.list_queues().await?;
    if let Some(f) = &args.filter {
        let f = f.to_lowercase();
        list.retain(|q| q.name.to_lowercase().contains(&f));
    }
    if args.out.json {
        for q in &list {
            serde_json::to_writer(&mut *out, q)?;
            writeln!(out)?;
        }
    } else {
        output::write_queue_table(&list, out)?;
    }
    Ok(())
}

/// The browsing capability, or an error that says where to look instead.
fn browser<'a>(backend: &'a dyn Backend, what: &str) -> Result<&'a dyn crate::backend::Browse> {
    backend.browser().ok_or_else(|| {
        anyhow::anyhow!(
            "the {} backend has no {what}: it routes by topic (list topics with `mqscope queues`)",
            backend.info().kind.as_str()
        )
    })
}

/// JSON Lines (one object per line) or a table.
fn json_or_table<T: serde::Serialize>(
    items: &[T],
    json: bool,
    table: fn(&[T], &mut dyn Write) -> std::io::Result<()>,
    out: &mut dyn Write,
) -> Result<()> {
    if json {
        for i in items {
            serde_json::to_writer(&mut *out, i)?;
            writeln!(out)?;
        }
    } else {
        table(items, out)?;
    }
    Ok(())
}

async fn groups(backend: &dyn Backend, json: bool, out: &mut dyn Write) -> Result<()> {
    let Some(cg) = backend.consumer_groups() else {
        bail!(
            "the {} backend has no consumer groups",
            backend.info().kind.as_str()
        );
    };
    let list = cg.list_groups().await?;
    if json {
        for g in &list {
            serde_json::to_writer(&mut *out, g)?;
            writeln!(out)?;
        }
    } else {
        output::write_group_table(&list, out)?;
    }
    Ok(())
}

/// Clap's check of a `--since` value, so a bad one is a usage error (exit 2).
pub fn valid_since(text: &str) -> Result<String, String> {
    parse_since(text, Utc::now())
        .map(|_| text.to_string())
        .map_err(|e| reason_only(&e.into()))
}

/// The reason without the `--flag "value": ` that clap's own message already gives.
fn reason_only(e: &anyhow::Error) -> String {
    let text = e.to_string();
    match text.split_once("\": ") {
        Some((_, reason)) => reason.to_string(),
        None => text,
    }
}

/// Clap's check of a queue, stream, topic or correlation ID given on the command line. An
/// empty one is most often an unset shell variable, and must not go further: the management
/// API answers a request for the queue "" with the whole queue list, and a replay would
/// journal it. A name of spaces is left alone: RabbitMQ allows it, and it reaches nothing
/// else by mistake.
pub fn valid_name(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("it is empty (an unset shell variable?)".into());
    }
    Ok(text.to_string())
}

/// Clap's check of `replay --to`.
pub fn valid_to(text: &str) -> Result<String, String> {
    crate::ops::replay::ToTarget::parse(text)
        .map(|_| text.to_string())
        .map_err(|e| reason_only(&e.into()))
}

/// Clap's check of an `--idle` value.
pub fn valid_idle(text: &str) -> Result<String, String> {
    parse_duration(text)
        .map(|_| text.to_string())
        .map_err(|e| reason_only(&e.into()))
}

/// `peek --filter`: which of the messages read are printed, and how many were read.
struct PeekFilter {
    filter: Option<crate::ops::replay::Filter>,
    /// `-n` (`usize::MAX` with `--all`).
    asked: usize,
    read: usize,
    matched: usize,
}

impl PeekFilter {
    fn new(args: &PeekArgs) -> Result<Self> {
        let filter = args
            .filter
            .as_deref()
            .map(crate::ops::replay::Filter::parse)
            .transpose()
            .map_err(|e| anyhow!("{e}"))?;
        Ok(Self {
            filter,
            asked: if args.all { usize::MAX } else { args.count },
            read: 0,
            matched: 0,
        })
    }

    fn keep(&mut self, m: &crate::model::Message) -> bool {
        self.read += 1;
        let keep = self.filter.as_ref().is_none_or(|f| f.matches(m));
        self.matched += usize::from(keep);
        keep
    }

    /// The line a filtered peek ends with (on standard error), and the empty result's.
    fn finish(&self, json: bool, out: &mut dyn Write) -> Result<()> {
        if let Some(f) = &self.filter {
            eprintln!(
                "mqscope: note: {} of {} messages read matched --filter '{}'",
                self.matched,
                self.read,
                f.text()
            );
        }
        if !json && self.matched == 0 {
            if self.asked == 0 {
                writeln!(out, "(-n 0: nothing asked for)")?;
            } else if self.read > 0 {
                writeln!(out, "(no message matched)")?;
            } else {
                writeln!(out, "(no messages at that position)")?;
            }
        }
        Ok(())
    }
}

async fn peek(backend: &dyn Backend, args: &PeekArgs, out: &mut dyn Write) -> Result<()> {
    // A bad expression is an error before anything is read.
    let mut chosen = PeekFilter::new(args)?;
    if args.all {
        return peek_all(backend, args, chosen, out).await;
    }
    let from = if args.last {
        PeekFrom::Last
    } else if let Some(s) = &args.since {
        PeekFrom::Time(parse_since(s, Utc::now())?)
    } else if let Some(p) = args.from {
        PeekFrom::Position(p)
    } else {
        PeekFrom::Start
    };
    let req = PeekRequest {
        from,
        partition: args.partition,
        limit: args.count,
        force: args.force,
    };
    // Written while the backend is still reading: a large window's formatting overlaps the
    // broker's delivery instead of following it.
    let (tx, rx) = tokio::sync::mpsc::channel(PEEK_BUFFER);
    let read = async move {
        let notes = backend.peek_into(&args.queue, &req, &tx).await;
        drop(tx);
        notes
    };
    let write = async {
        // Owned here, so a failed write (a closed pipe) drops it and the reader stops.
        let mut rx = rx;
        let extractor = Extractor::default();
        let mut text = Vec::new();
        while let Some(m) = rx.recv().await {
            if !chosen.keep(&m) {
                continue;
            }
            format_message(&m, args.out.json, &extractor, &mut text)?;
            if text.len() >= 1 << 20 {
                out.write_all(&text)?;
                text.clear();
            }
        }
        out.write_all(&text)?;
        anyhow::Ok(())
    };
    let (notes, written) = tokio::join!(read, write);
    let notes = match notes {
        Ok(n) => n,
        Err(BackendError::QueueNotFound(name)) => {
            return Err(not_found(backend, &name).await);
        }
        Err(e) => return Err(e.into()),
    };
    written?;
    for note in &notes {
        eprintln!("mqscope: note: {note}");
    }
    chosen.finish(args.out.json, out)
}

/// How many read messages may wait for the writer of a `peek`.
const PEEK_BUFFER: usize = 1_024;

/// The message of `publish --body` / `--body-file`, with its `--header`, `--property` and
/// `--key`. Built as a `peek --json` record, so it is checked as an imported one is.
fn single_message(args: &PublishArgs) -> Result<Message> {
    use base64::Engine as _;
    let payload = match (&args.body, &args.body_file) {
        (Some(body), _) => body.clone().into_bytes(),
        (None, Some(path)) if path == "-" => {
            let mut b = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
                .context("reading standard input")?;
            b
        }
        (None, Some(path)) => std::fs::read(path).with_context(|| format!("cannot read {path}"))?,
        (None, None) => bail!("say what to publish: --from FILE, --body TEXT or --body-file FILE"),
    };
    let mut headers = serde_json::Map::new();
    for h in &args.headers {
        let (name, value) = if let Some((n, json)) = h.split_once(":=") {
            let v = serde_json::from_str(json)
                .map_err(|e| anyhow!("--header \"{h}\": the value after := is not JSON: {e}"))?;
            (n, v)
        } else if let Some((n, text)) = h.split_once('=') {
            (n, serde_json::Value::String(text.to_string()))
        } else {
            bail!("--header \"{h}\": write NAME=TEXT or NAME:=JSON");
        };
        if name.is_empty() {
            bail!("--header \"{h}\": the name is empty");
        }
        headers.insert(name.to_string(), value);
    }
    let mut properties = serde_json::Map::new();
    for p in &args.properties {
        let Some((name, text)) = p.split_once('=') else {
            bail!("--property \"{p}\": write NAME=VALUE");
        };
        let number = |what: &str| -> Result<serde_json::Value> {
            text.parse::<u64>()
                .map(serde_json::Value::from)
                .map_err(|_| anyhow!("--property {name}: \"{text}\" is not {what}"))
        };
        let value = match name {
            "delivery_mode" => match text {
                "transient" => 1.into(),
                "persistent" => 2.into(),
                _ => number("1, 2, transient or persistent")?,
            },
            "priority" => number("a number from 0 to 255")?,
            "timestamp" => match chrono::DateTime::parse_from_rfc3339(text) {
                Ok(t) => serde_json::Value::from(t.timestamp().max(0)),
                Err(_) => number("seconds since 1970 or an RFC 3339 time")?,
            },
            _ => serde_json::Value::String(text.to_string()),
        };
        properties.insert(name.to_string(), value);
    }
    let mut record = serde_json::json!({
        "payload": base64::engine::general_purpose::STANDARD.encode(&payload),
        "payload_encoding": "base64",
        "headers": headers,
        "properties": properties,
    });
    if let Some(k) = &args.key {
        record["key"] = serde_json::Value::String(k.clone());
    }
    parse_record(&record).map_err(|e| match e {
        crate::format::record::RecordError::Field { field, reason } => {
            let flag = match field {
                "properties" => "--property",
                "headers" => "--header",
                "key" => "--key",
                other => other,
            };
            anyhow!("{flag}: {reason}")
        }
        other => anyhow!("{other}"),
    })
}

/// Read a JSON Lines file (or standard input) of messages; any bad line stops everything
/// before a single message is sent.
pub fn read_records(path: &str) -> Result<Records> {
    Ok(read_file(path)?.0)
}

/// Brokers a file's backup records were removed from (their `backup_of`).
type Sources = std::collections::BTreeSet<String>;

/// A file's messages, each with its line and, for a backup record, where it goes back to.
type Records = Vec<(usize, Message, Option<Destination>)>;

/// [`read_records`], and the brokers the backup records in it came from.
fn read_file(path: &str) -> Result<(Records, Sources)> {
    let mut sources = Sources::new();
    let (bytes, shown) = if path == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b)
            .context("reading standard input")?;
        (b, "standard input")
    } else {
        let b = std::fs::read(path).with_context(|| format!("cannot read {path}"))?;
        (b, path)
    };
    let path = shown;
    let mut out = Vec::new();
    // Checked line by line, so that a byte that is not UTF-8 is found by its line.
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|e| {
            anyhow!(
                "{path} line {}: not valid UTF-8 (at byte {} of the line)",
                i + 1,
                e.valid_up_to() + 1
            )
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| anyhow!("{path} line {}: not JSON: {e}", i + 1))?;
        let m = parse_record(&v).map_err(|e| anyhow!("{path} line {}: {e}", i + 1))?;
        // Backups name the queue their messages were removed from.
        let restore_to = v
            .get("restore_to")
            .and_then(crate::ops::journal::destination_from_json);
        if let Some(from) = v
            .get(crate::ops::journal::BACKUP_OF)
            .and_then(serde_json::Value::as_str)
            && !sources.contains(from)
        {
            sources.insert(from.to_string());
        }
        out.push((i + 1, m, restore_to));
    }
    Ok((out, sources))
}

/// A broker as a backup names it, without the user (the same broker is often reached as
/// another user) and in lower case (host names and `%2F` alike).
fn broker_of(target: &str) -> String {
    let (scheme, rest) = target.split_once("://").unwrap_or(("", target));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{rest}").to_lowercase()
}

/// A backup is restored where it came from unless the user says otherwise: restoring to
/// another broker is said on stderr, and to the in-process demo (where a bare `publish`
/// goes when no target is configured, and which is gone when the command ends) refused.
fn check_restore_target(path: &str, sources: &Sources, target: &str) -> Result<()> {
    let elsewhere: Vec<&String> = sources
        .iter()
        .filter(|s| broker_of(s) != broker_of(target))
        .collect();
    let Some(first) = elsewhere.first() else {
        return Ok(());
    };
    if target.starts_with("local://") && !first.starts_with("local://") {
        bail!(
            "{path} is a backup from {first}, and this would publish it to the built-in {target}, which is gone when this command ends: name the broker, e.g. mqscope --url '{first}' publish --from '{path}'"
        );
    }
    eprintln!(
        "warning: {path} is a backup from {}; publishing it to {target}",
        elsewhere
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}

/// Where one message goes: the flags, else where the record itself came from.
fn destination_for(
    args: &PublishArgs,
    m: &Message,
    restore_to: Option<&Destination>,
) -> Option<Destination> {
    if let Some(q) = &args.queue {
        return Some(Destination::Exchange {
            exchange: String::new(),
            routing_key: q.clone(),
        });
    }
    // An exchange keeps the record's routing key unless --routing-key replaces it.
    let to_exchange = |x: &String| Destination::Exchange {
        exchange: x.clone(),
        routing_key: args
            .routing_key
            .clone()
            .or_else(|| m.routing_key.clone())
            .unwrap_or_default(),
    };
    if let Some(x) = &args.exchange {
        return Some(to_exchange(x));
    }
    if args.topic.is_none()
        && let Some(d) = restore_to
    {
        return Some(d.clone());
    }
    let partition = |m: &Message| {
        args.partition.or(if args.keep_partition {
            m.partition
        } else {
            None
        })
    };
    if let Some(t) = &args.topic {
        return Some(Destination::Topic {
            topic: t.clone(),
            partition: partition(m),
        });
    }
    if m.partition.is_some() && !m.queue.is_empty() {
        return Some(Destination::Topic {
            topic: m.queue.clone(),
            partition: partition(m),
        });
    }
    m.exchange.as_ref().map(to_exchange)
}

async fn publish(
    backend: &dyn Backend,
    resolved: &Resolved,
    args: &PublishArgs,
    out: &mut dyn Write,
) -> Result<()> {
    if resolved.read_only {
        crate::cli::modify::refuse_read_only(resolved, "publish")?;
    }
    let Some(publisher) = backend.publisher() else {
        bail!(
            "the {} backend cannot publish",
            backend.info().kind.as_str()
        );
    };
    let records = match &args.from {
        Some(path) => {
            let (records, sources) = read_file(path)?;
            check_restore_target(path, &sources, &backend.info().target)?;
            records
        }
        None => vec![(1, single_message(args)?, None)],
    };
    let mut items = Vec::with_capacity(records.len());
    for (line, m, restore_to) in records {
        let dest = destination_for(args, &m, restore_to.as_ref()).ok_or_else(|| {
            anyhow!("message {line}: it names no exchange or topic; say where with --queue, --exchange or --topic")
        })?;
        match dest {
            Destination::Topic { .. } if !args.properties.is_empty() => {
                bail!(
                    "--property sets AMQP properties, which a topic record does not have; send them as headers (-H NAME=VALUE)"
                )
            }
            Destination::Exchange { .. } if args.key.is_some() => {
                bail!("--key is a topic record's key; an exchange routes by --routing-key")
            }
            _ => {}
        }
        items.push((line, dest, m));
    }
    let batch: Vec<(Destination, Message)> = items
        .iter()
        .map(|(_, d, m)| (d.clone(), m.clone()))
        .collect();
    let results = publisher.publish_batch(&batch).await;
    // Each line's own outcome: confirmed, refused (or never sent), or unknown (sent, but
    // its confirm was lost with the channel or the connection: publishing it again may
    // make a second copy).
    let mut failed = Vec::new();
    let mut unknown = Vec::new();
    for ((line, dest, _), r) in items.iter().zip(&results) {
        let outcome = match r {
            Ok(_) => "published",
            Err(BackendError::Unconfirmed(_)) => "unknown",
            Err(_) => "failed",
        };
        if args.json {
            let (target, key) = match dest {
                Destination::Exchange {
                    exchange,
                    routing_key,
                } => (exchange.clone(), Some(routing_key.clone())),
                Destination::Topic { topic, .. } => (topic.clone(), None),
            };
            let rec = match r {
                Ok(receipt) => {
                    serde_json::json!({"line": line, "ok": true, "outcome": outcome, "to": target, "routing_key": key,
                    "partition": receipt.partition, "offset": receipt.offset})
                }
                Err(e) => {
                    serde_json::json!({"line": line, "ok": false, "outcome": outcome, "to": target, "routing_key": key, "error": e.to_string()})
                }
            };
            writeln!(out, "{rec}")?;
        }
        if let Err(e) = r {
            if !args.json && args.from.is_some() {
                // One line each, so a restore of thousands says which.
                let verb = if outcome == "unknown" {
                    ""
                } else {
                    "not published: "
                };
                eprintln!("mqscope: line {line}: {verb}{e}");
            }
            match outcome {
                "unknown" => unknown.push(*line),
                _ => failed.push(*line),
            }
        }
    }
    let sent = results.len() - failed.len() - unknown.len();
    let info = backend.info();
    let places: std::collections::BTreeSet<String> = items
        .iter()
        .map(|(_, d, _)| crate::ops::journal::destination_text(d))
        .collect();
    let place = places.into_iter().collect::<Vec<_>>().join(", ");
    let mut entry = crate::ops::journal::AuditEntry::new(
        &info.target,
        resolved.profile_name.as_deref(),
        "publish",
        &place,
    );
    // Only what the broker confirmed counts.
    entry.count = sent as u64;
    let lines = |l: &[usize]| {
        let mut shown: Vec<String> = l.iter().take(10).map(usize::to_string).collect();
        if l.len() > 10 {
            shown.push(format!("and {} more", l.len() - 10));
        }
        shown.join(", ")
    };
    let mut problems = Vec::new();
    if !failed.is_empty() {
        problems.push(format!("{} not published", failed.len()));
    }
    if !unknown.is_empty() {
        problems.push(format!("{} unknown", unknown.len()));
    }
    entry.result = if problems.is_empty() {
        "ok".into()
    } else {
        problems.join(", ")
    };
    if let Err(e) = crate::ops::journal::audit(&entry) {
        eprintln!("warning: could not write the audit log: {e}");
    }
    if !args.json {
        let confirmed = if sent > 0 {
            " (each confirmed by the broker)"
        } else {
            ""
        };
        let rest = if problems.is_empty() {
            String::new()
        } else {
            format!("; {}", problems.join(", "))
        };
        writeln!(
            out,
            "published {sent} of {} messages{confirmed}{rest}",
            results.len()
        )?;
    }
    let line_word = if args.from.is_some() {
        "line"
    } else {
        "message"
    };
    let mut why = Vec::new();
    if !failed.is_empty() {
        why.push(format!(
            "{} of {} messages were not published ({line_word} {})",
            failed.len(),
            results.len(),
            lines(&failed)
        ));
    }
    if !unknown.is_empty() {
        why.push(format!(
            "{} may or may not have reached the broker, their confirm was lost ({line_word} {}): look before publishing them again",
            unknown.len(),
            lines(&unknown)
        ));
    }
    if !why.is_empty() {
        // A single message's own error says it all.
        match results.first() {
            Some(Err(e @ BackendError::Unconfirmed(_))) if args.from.is_none() => bail!("{e}"),
            Some(Err(e)) if args.from.is_none() => bail!("the message was not published: {e}"),
            _ => {}
        }
        bail!("{}", why.join("; "));
    }
    Ok(())
}

/// `peek --all`: page through every message (see `scan::read_all`), writing each page as
/// it arrives so memory stays at one page whatever the size of the topic.
async fn peek_all(
    backend: &dyn Backend,
    args: &PeekArgs,
    mut chosen: PeekFilter,
    out: &mut dyn Write,
) -> Result<()> {
    if let Some(exporter) = backend.exporter() {
        return export_all(backend, exporter, args, chosen, out).await;
    }
    let detail = match backend.describe_queue(&args.queue).await {
        Ok(d) => d,
        Err(BackendError::QueueNotFound(name)) => return Err(not_found(backend, &name).await),
        Err(e) => return Err(e.into()),
    };
    let extractor = Extractor::default();
    let mut text = Vec::new();
    let opts = crate::ops::scan::ScanOptions {
        from: args.from,
        partition: args.partition,
        page_size: args.page_size,
        force: args.force,
        since: None,
    };
    crate::ops::scan::read_all::<anyhow::Error>(
        backend,
        &detail,
        &opts,
        |page| {
            let page = page.iter().filter(|m| chosen.keep(m));
            write_messages(page, args.out.json, &extractor, &mut text, out)
        },
        |note| eprintln!("mqscope: note: {note}"),
    )
    .await?;
    chosen.finish(args.out.json, out)
}

async fn trace(backend: &dyn Backend, args: &TraceArgs, out: &mut dyn Write) -> Result<()> {
    let opts = crate::ops::trace::TraceOptions {
        queues: args.queues.clone(),
        since: args
            .since
            .as_deref()
            .map(|s| parse_since(s, Utc::now()))
            .transpose()?,
        ..Default::default()
    };
    // The tail starts before the scan, so nothing published while the scan runs is missed.
    let mut follower = if args.follow {
        Some(crate::ops::trace::follow::start(backend, &args.id, &opts).await?)
    } else {
        None
    };
    let t = crate::ops::trace::trace(backend, &args.id, &opts).await?;
    let start = t.hops.iter().find_map(|h| h.time);
    if args.json {
        serde_json::to_writer(&mut *out, &t)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}: {}", t.correlation_id, t.summary())?;
        for h in &t.hops {
            writeln!(out, "  {}", hop_line(h, start))?;
        }
        for s in &t.skipped {
            writeln!(out, "  skipped {}: {}", s.queue, s.reason)?;
        }
        writeln!(
            out,
            "scanned {} messages in {} queues and topics in {} ms",
            t.scanned, t.queues_scanned, t.elapsed_ms
        )?;
    }
    let Some(f) = follower.as_mut() else {
        return Ok(());
    };
    f.skip(&t.hops);
    if !args.json {
        writeln!(out, "following live (Ctrl-C stops)")?;
    }
    out.flush()?;
    let mut start = start;
    loop {
        let next = tokio::select! {
            h = f.next_hop() => h,
            _ = tokio::signal::ctrl_c() => return Ok(()),
        };
        let hop = match next {
            None => return Ok(()),
            Some(Ok(h)) => h,
            Some(Err(e)) => {
                eprintln!("mqscope: warning: {e}");
                continue;
            }
        };
        start = start.or(hop.time);
        if args.json {
            serde_json::to_writer(&mut *out, &hop)?;
            writeln!(out)?;
        } else {
            writeln!(out, "  {}", hop_line(&hop, start))?;
        }
        out.flush()?;
    }
}

/// One hop for people: time from the first hop, where, how it got there.
fn hop_line(h: &crate::ops::trace::Hop, start: Option<DateTime<Utc>>) -> String {
    let delta = match (start, h.time) {
        (Some(a), Some(b)) => format!("+{:>8.3}s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => format!("{:>10}", "?"),
    };
    let route = match (&h.exchange, &h.routing_key) {
        (Some(x), Some(k)) if !x.is_empty() => format!("  via {x} / {k}"),
        (Some(_), Some(k)) => format!("  via (default) / {k}"),
        _ => String::new(),
    };
    let dead = h
        .dead_letter
        .as_ref()
        .map(|d| {
            format!(
                "  ← dead-lettered from {} ({} ×{})",
                d.from, d.reason, d.count
            )
        })
        .unwrap_or_default();
    let replay = h
        .replayed_from
        .as_ref()
        .map(|r| format!("  replay of {r}"))
        .unwrap_or_default();
    let routed = crate::model::routed_summary(h.routed_queues.as_deref())
        .map(|r| format!("  {r}"))
        .unwrap_or_default();
    let live = if h.live { "  (live)" } else { "" };
    format!("{delta}  {}{route}{routed}{dead}{replay}{live}", h.place())
}

async fn tail(backend: &dyn Backend, args: &TailArgs, out: &mut dyn Write) -> Result<()> {
    let Some(live) = backend.live_tail() else {
        bail!(
            "the {} backend cannot follow live messages",
            backend.info().kind.as_str()
        );
    };
    let idle = args.idle.as_deref().map(parse_duration).transpose()?;
    let filter = crate::backend::TailFilter {
        sources: args.sources.clone(),
    };
    let mut stream = match live.tail(&filter).await {
        Ok(s) => s,
        // A queue's name where an exchange's was expected: say so, and what to do.
        Err(BackendError::ExchangeNotFound(name))
            if backend.describe_queue(&name).await.is_ok() =>
        {
            bail!(
                "no exchange named \"{name}\": it is a queue. `mqscope peek '{name}'` reads it; to follow what arrives, tail the exchange that routes to it (`mqscope bindings` lists them)"
            )
        }
        Err(e) => return Err(e.into()),
    };
    for note in &stream.notes {
        eprintln!("mqscope: note: {note}");
    }
    let extractor = Extractor::default();
    let mut text = Vec::new();
    let mut seen = 0u64;
    // Print as they come: flush each one, a tail is read by people and pipes alike.
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            return Ok(());
        }
        let next = match idle {
            Some(d) => match tokio::time::timeout(d, stream.messages.recv()).await {
                Ok(m) => m,
                Err(_) => return Ok(()),
            },
            None => tokio::select! {
                m = stream.messages.recv() => m,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            },
        };
        let Some(item) = next else { return Ok(()) };
        let m = item?;
        // When it arrived, beside when it was published (which AMQP publishers often do
        // not say): a tail is live, so arrival is within moments of the publish.
        let received = crate::model::time::rfc3339(&chrono::Utc::now());
        text.clear();
        if args.out.json {
            #[derive(serde::Serialize)]
            struct Tailed<'a> {
                #[serde(flatten)]
                record: crate::format::record::Record<'a>,
                received_at: &'a str,
            }
            let record = crate::format::record::record(&m, &extractor);
            serde_json::to_writer(
                &mut text,
                &Tailed {
                    record,
                    received_at: &received,
                },
            )?;
            text.push(b'\n');
        } else {
            output::write_message(&m, &extractor, &mut text)?;
            // The arrival goes just before the payload, the block's last line.
            let at = text
                .windows(12)
                .rposition(|w| w == b"\n  payload: ")
                .map_or(text.len(), |i| i + 1);
            let line = format!("  received:    {received}\n");
            text.splice(at..at, line.into_bytes());
        }
        out.write_all(&text)?;
        out.flush()?;
        seen += 1;
    }
}

/// Write messages as JSON Lines or readable text, formatted into `text` (a reusable buffer)
/// and written at once: serde writes many small pieces, and each through `dyn Write` costs
/// more than the bytes it writes.
fn write_messages<'a>(
    messages: impl IntoIterator<Item = &'a crate::model::Message>,
    json: bool,
    extractor: &Extractor,
    text: &mut Vec<u8>,
    out: &mut dyn Write,
) -> Result<()> {
    text.clear();
    for m in messages {
        format_message(m, json, extractor, text)?;
        // Large messages: hold at most about a megabyte of text besides them.
        if text.len() >= 1 << 20 {
            out.write_all(text)?;
            text.clear();
        }
    }
    out.write_all(text)?;
    Ok(())
}

/// One message as a JSON line or as readable text, appended to `text`.
fn format_message(
    m: &crate::model::Message,
    json: bool,
    extractor: &Extractor,
    text: &mut Vec<u8>,
) -> Result<()> {
    if json {
        serde_json::to_writer(&mut *text, &crate::format::record::record(m, extractor))?;
        text.push(b'\n');
    } else {
        output::write_message(m, extractor, &mut *text)?;
    }
    Ok(())
}

/// Messages per hand-off from an export to the writer.
const EXPORT_BATCH: usize = 1_000;

/// `peek --all` through a backend's streaming export: fetching and writing overlap, and the
/// channel bounds what is held.
async fn export_all(
    backend: &dyn Backend,
    exporter: &dyn backend::Export,
    args: &PeekArgs,
    mut chosen: PeekFilter,
    out: &mut dyn Write,
) -> Result<()> {
    // Up to four batches in flight: the reader fetches while the writer formats.
    let batch = args.page_size.clamp(1, EXPORT_BATCH);
    let from = args.from.map_or(PeekFrom::Start, PeekFrom::Position);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let extractor = Extractor::default();
    let writing = async {
        // Owning the receiver drops it when writing fails, which stops the export.
        let mut rx: tokio::sync::mpsc::Receiver<Vec<crate::model::Message>> = rx;
        let mut text = Vec::new();
        while let Some(batch) = rx.recv().await {
            let batch = batch.iter().filter(|m| chosen.keep(m));
            write_messages(batch, args.out.json, &extractor, &mut text, out)?;
        }
        Ok::<_, anyhow::Error>(())
    };
    let (exported, wrote) = tokio::join!(
        exporter.export(&args.queue, args.partition, &from, batch, tx),
        writing
    );
    // A write error (a closed pipe) explains an export cut short, so it goes first.
    wrote?;
    match exported {
        Ok(_) => {}
        Err(BackendError::QueueNotFound(name)) => return Err(not_found(backend, &name).await),
        Err(e) => return Err(e.into()),
    }
    chosen.finish(args.out.json, out)
}

/// "no queue named X", with the closest names the broker does have.
async fn not_found(backend: &dyn Backend, name: &str) -> anyhow::Error {
    let base = BackendError::QueueNotFound(name.to_string());
    // An exchange's name where a queue's was expected: say so, and where to look.
    if let Some(b) = backend.browser()
        && let Ok(exchanges) = b.exchanges().await
        && exchanges.iter().any(|e| e.name == name)
    {
        return anyhow!(
            "{base}: \"{name}\" is an exchange; `mqscope bindings --source '{name}'` lists the queues it routes to"
        );
    }
    let Ok(list) = backend.list_queues().await else {
        return base.into();
    };
    let names: Vec<&str> = list.iter().map(|q| q.name.as_str()).collect();
    let close = crate::model::names::closest(name, &names);
    if close.is_empty() {
        base.into()
    } else {
        anyhow!("{base}; did you mean {}?", close.join(" or "))
    }
}

async fn demo(
    args: &DemoArgs,
    sel: &Selection,
    theme: Option<&str>,
    tui: OpenTui,
    out: &mut dyn Write,
) -> Result<()> {
    let target = LocalTarget {
        fixed_clock: args.fixed_clock,
        ..LocalTarget::demo(args.seed)
    };
    // The demo keeps the config's theme, colours and keys, but not its broker.
    let base = config::resolve(&Selection {
        url: Some("local://demo".into()),
        ..sel.clone()
    })?;
    let resolved = Resolved {
        target: Target::Local(target),
        profile_name: None,
        ..base
    };
    if std::io::stdout().is_terminal() {
        return tui(&resolved, theme).await;
    }
    let backend = backend::connect(&resolved.target, &connect_options(&resolved)).await?;
    overview(&resolved, backend.as_ref(), out).await
}

/// What a target holds: queues and topics, and consumer groups where there are any.
async fn overview(resolved: &Resolved, backend: &dyn Backend, out: &mut dyn Write) -> Result<()> {
    let info = backend.info();
    writeln!(out, "{} ({})", info.target, info.kind.as_str())?;
    if let Target::Local(l) = &resolved.target
        && l.scenario == "demo"
    {
        writeln!(
            out,
            "An e-commerce fan-out: orders -> billing, shipping, email, analytics; rejected, expired,\n\
             overflowing and poison messages dead-lettered; a payments topic with a lagging group and\n\
             a Spring-style dead-letter topic. Ten minutes of traffic have been played (seed {}).\n",
            l.seed
        )?;
    }
    let queues = backend.list_queues().await?;
    output::write_queue_table(&queues, out)?;
    if let Some(cg) = backend.consumer_groups() {
        let groups = cg.list_groups().await?;
        if !groups.is_empty() {
            writeln!(out)?;
            output::write_group_table(&groups, out)?;
        }
    }
    writeln!(
        out,
        "\nRun mqscope in a terminal for the interactive view. Scripts can use:\n  mqscope peek billing.dlq -n 5 --url {}\n  mqscope queues --json --url {}",
        info.target, info.target
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_since_is_a_usage_error_without_the_flag_it_came_with() {
        assert_eq!(
            valid_since("5w").unwrap_err(),
            "the unit must be s, m, h or d"
        );
    }
}
