//! `mqscope publish`: one message built from flags, or a `peek --json` export or backup
//! restored with `--from`; `ops::publish` reads, routes and publishes, and this file prints
//! each line's outcome (confirmed, refused, or unknown) and the summary.

use crate::backend::{Backend, BackendError, Destination};
use crate::cli::PublishArgs;
use crate::config::Resolved;
use crate::format::record::parse_record;
use crate::model::Message;
use crate::ops::publish::{self as ops, Outcome, Routing};
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
            let (records, sources) = ops::read_file(path)?;
            let target = &backend.info().target;
            let elsewhere = ops::check_restore_target(path, &sources, target)?;
            if !elsewhere.is_empty() {
                eprintln!(
                    "warning: {path} is a backup from {}; publishing it to {target}",
                    elsewhere
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            records
        }
        None => vec![(1, single_message(args)?, None)],
    };
    let items = ops::plan(records, &routing(args))?;
    let report = ops::publish(publisher, items).await;
    // Each line's own outcome: confirmed, refused (or never sent), or unknown (sent, but
    // its confirm was lost with the channel or the connection: publishing it again may
    // make a second copy).
    for l in &report.lines {
        let outcome = l.outcome().as_str();
        if args.json {
            let (target, key) = match &l.dest {
                Destination::Exchange {
                    exchange,
                    routing_key,
                } => (exchange.clone(), Some(routing_key.clone())),
                Destination::Topic { topic, .. } => (topic.clone(), None),
            };
            let line = l.line;
            let rec = match &l.result {
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
        if let Err(e) = &l.result
            && !args.json
            && args.from.is_some()
        {
            // One line each, so a restore of thousands says which.
            let verb = if outcome == "unknown" {
                ""
            } else {
                "not published: "
            };
            eprintln!("mqscope: line {}: {verb}{e}", l.line);
        }
    }
    let failed = report.lines_with(Outcome::Failed);
    let unknown = report.lines_with(Outcome::Unknown);
    let sent = report.sent();
    let info = backend.info();
    if let Err(e) = ops::audit(&report, &info.target, resolved.profile_name.as_deref()) {
        eprintln!("warning: could not write the audit log: {e}");
    }
    let lines = |l: &[usize]| {
        let mut shown: Vec<String> = l.iter().take(10).map(usize::to_string).collect();
        if l.len() > 10 {
            shown.push(format!("and {} more", l.len() - 10));
        }
        shown.join(", ")
    };
    let problems = report.problems();
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
            report.lines.len()
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
            report.lines.len(),
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
        match report.lines.first().map(|l| &l.result) {
            Some(Err(e @ BackendError::Unconfirmed(_))) if args.from.is_none() => bail!("{e}"),
            Some(Err(e)) if args.from.is_none() => bail!("the message was not published: {e}"),
            _ => {}
        }
        bail!("{}", why.join("; "));
    }
    Ok(())
}

/// Where the flags say the messages go.
fn routing(args: &PublishArgs) -> Routing {
    Routing {
        queue: args.queue.clone(),
        exchange: args.exchange.clone(),
        routing_key: args.routing_key.clone(),
        topic: args.topic.clone(),
        partition: args.partition,
        keep_partition: args.keep_partition,
        properties: !args.properties.is_empty(),
        key: args.key.is_some(),
    }
}
