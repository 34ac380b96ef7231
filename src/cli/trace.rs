//! `trace` and `tail`: a correlation ID's hops across queues and topics (and, with
//! `--follow`, the ones still to come), and new messages as they are published.

use crate::backend::{Backend, BackendError};
use crate::cli::output;
use crate::cli::{TailArgs, TraceArgs};
use crate::model::correlation::Extractor;
use crate::model::time::{parse_duration, parse_since};
use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use std::io::Write;

pub(super) async fn trace(
    backend: &dyn Backend,
    args: &TraceArgs,
    out: &mut dyn Write,
) -> Result<()> {
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

pub(super) async fn tail(
    backend: &dyn Backend,
    resolved: &crate::config::Resolved,
    args: &TailArgs,
    out: &mut dyn Write,
) -> Result<()> {
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
    // What is inside each body, beside it, as `peek --json` has it.
    let decoder = if args.out.json {
        crate::config::decoder(resolved)?
    } else {
        crate::format::decode::Decoder::default()
    };
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
            let record = crate::format::record::record(&m, &extractor).with_decoded(&m, &decoder);
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
