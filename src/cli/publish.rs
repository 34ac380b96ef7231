//! `mqscope publish`: one message from flags, or a `peek --json` export or backup restored
//! with `--from`, each line with its own outcome (confirmed, refused, or unknown).

use crate::backend::{Backend, BackendError, Destination};
use crate::cli::PublishArgs;
use crate::config::Resolved;
use crate::format::record::parse_record;
use crate::model::Message;
use anyhow::{Context, Result, anyhow, bail};
use std::io::Write;

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

pub(super) async fn publish(
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
