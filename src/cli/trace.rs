//! `trace` and `tail`: a correlation ID's hops across queues and topics (and, with
//! `--follow`, the ones still to come), and new messages as they are published.

use crate::backend::{Backend, BackendError};
use crate::cli::output;
use crate::cli::{TailArgs, TraceArgs};
use crate::model::correlation::Extractor;
use crate::model::envelope::EventKind;
use crate::model::time::{parse_duration, parse_since};
use crate::ops::record::{Recorded, merge_routed};
use anyhow::{Result, bail};
use chrono::{DateTime, Utc};
use std::io::Write;
use std::path::Path;

pub(super) async fn trace(
    backend: &dyn Backend,
    args: &TraceArgs,
    db: Option<&Path>,
    decoder: std::sync::Arc<crate::format::decode::Decoder>,
    out: &mut dyn Write,
) -> Result<()> {
    let opts = crate::ops::trace::TraceOptions {
        decoder: Some(decoder),
        queues: args.queues.clone(),
        since: args
            .since
            .as_deref()
            .map(|s| parse_since(s, Utc::now()))
            .transpose()?,
        groups: args.groups.clone(),
        ..Default::default()
    };
    // The tail starts before the scan, so nothing published while the scan runs is missed.
    let mut follower = if args.follow {
        Some(crate::ops::trace::follow::start(backend, &args.id, &opts).await?)
    } else {
        None
    };
    for note in follower.iter().flat_map(|f| f.notes()) {
        eprintln!("mqscope: note: {note}");
    }
    let mut t = crate::ops::trace::trace(backend, &args.id, &opts).await?;
    // Without a database of its own, the demo's trace reads the journeys its broker kept,
    // taken after the tail started, so an event is seen by one or the other, never neither.
    let kept = match db {
        Some(_) => None,
        None => crate::ops::record::KeptDb::make(backend)?,
    };
    let db = db
        .map(Path::to_path_buf)
        .or_else(|| kept.as_ref().map(|k| k.path()));
    let recorded = match db.as_deref() {
        Some(path) => {
            Some(merge_routed(backend, &mut t, path, opts.since, opts.queues.as_deref()).await?)
        }
        None => None,
    };
    let start = t.hops.iter().find_map(|h| h.time);
    if args.json {
        #[derive(serde::Serialize)]
        struct WithRecord<'a> {
            #[serde(flatten)]
            trace: &'a crate::ops::trace::Trace,
            #[serde(skip_serializing_if = "Option::is_none")]
            recorded: Option<&'a Recorded>,
        }
        let line = WithRecord {
            trace: &t,
            recorded: recorded.as_ref(),
        };
        serde_json::to_writer(&mut *out, &line)?;
        writeln!(out)?;
    } else {
        writeln!(out, "{}: {}", t.correlation_id, t.summary())?;
        for h in &t.hops {
            write_hop(out, h, start)?;
        }
        for s in &t.skipped {
            writeln!(out, "  skipped {}: {}", s.queue, s.reason)?;
        }
        for n in &t.notes {
            writeln!(out, "  note: {n}")?;
        }
        write_routes(&t, start, out)?;
        if let Some(r) = &recorded {
            writeln!(
                out,
                "recorded: {} hop{} from {} ({} still on the broker)",
                r.added,
                if r.added == 1 { "" } else { "s" },
                r.db,
                r.already_live
            )?;
            for g in &r.gaps {
                writeln!(
                    out,
                    "  not recorded from {} to {}: {}",
                    crate::model::time::rfc3339(&g.from),
                    crate::model::time::rfc3339(&g.to),
                    g.reason
                )?;
            }
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
            write_hop(out, &hop, start)?;
        }
        out.flush()?;
    }
}

/// The first publish's expected routes in time order, a queue a line with its fate and
/// the evidence under it, then what they assume.
fn write_routes(
    t: &crate::ops::trace::Trace,
    start: Option<DateTime<Utc>>,
    out: &mut dyn Write,
) -> Result<()> {
    if let Some(b) = &t.routes_basis {
        let x = if b.exchange.is_empty() {
            "(default)"
        } else {
            &b.exchange
        };
        writeln!(
            out,
            "expected routes of the publish to {x} / {}:",
            b.routing_keys.join(", ")
        )?;
    }
    for r in &t.routes {
        let what = match (&r.dead_lettered_to, r.reason) {
            (Some(to), Some(why)) => format!("{} ({why}) → {to}", r.fate.as_str()),
            _ => r.fate.as_str().to_string(),
        };
        // A fate nothing timed (a consumer took it, it expired) is a gap in the journey.
        let when = match r.time {
            Some(_) => delta(start, r.time),
            None => format!("{:>10}", "no time"),
        };
        writeln!(
            out,
            "  {when}  {:<20} {what}",
            r.queue.as_deref().unwrap_or("(no queue)")
        )?;
        for e in &r.evidence {
            writeln!(out, "              {e}")?;
        }
    }
    for n in &t.routes_notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}

/// A hop for people: its line, then a line per consumer group on a topic record.
fn write_hop(
    out: &mut dyn Write,
    h: &crate::ops::trace::Hop,
    start: Option<DateTime<Utc>>,
) -> std::io::Result<()> {
    writeln!(out, "  {}", hop_line(h, start))?;
    for g in &h.groups {
        writeln!(out, "{:14}{}", "", g.describe())?;
    }
    Ok(())
}

/// Time since the first hop, in a column of its own; `?` when not known.
fn delta(start: Option<DateTime<Utc>>, at: Option<DateTime<Utc>>) -> String {
    match (start, at) {
        (Some(a), Some(b)) => format!("+{:>8.3}s", (b - a).num_milliseconds() as f64 / 1000.0),
        _ => format!("{:>10}", "?"),
    }
}

/// One hop for people: time from the first hop, where, how it got there.
fn hop_line(h: &crate::ops::trace::Hop, start: Option<DateTime<Utc>>) -> String {
    let delta = delta(start, h.time);
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
    let recorded = h
        .recorded
        .as_ref()
        .map(|r| {
            let what = match r.event {
                EventKind::Publish => "published",
                EventKind::Deliver => "delivered to a consumer",
                EventKind::DeadLetter => "dead-lettered",
                EventKind::Record => "produced",
            };
            let by: Vec<String> = r.details.iter().map(|(k, v)| format!("{k} {v}")).collect();
            if by.is_empty() {
                format!("  (recorded: {what})")
            } else {
                format!("  (recorded: {what}, {})", by.join(", "))
            }
        })
        .unwrap_or_default();
    // A delivery says where from itself; the route it was published with is the publish's.
    if !h.deliveries.is_empty() {
        let said: Vec<String> = h.deliveries.iter().map(|d| d.describe()).collect();
        let recorded = if h.recorded.is_some() {
            "  (recorded)"
        } else {
            ""
        };
        return format!("{delta}  {}{live}{recorded}", said.join("; "));
    }
    format!(
        "{delta}  {}{route}{routed}{dead}{replay}{live}{recorded}",
        h.place()
    )
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
        deliveries: false,
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
    let decoder = crate::config::decoder(resolved)?;
    let mut text = Vec::new();
    let mut seen = 0u64;
    // Print as they come: flush each one, a tail is read by people and pipes alike.
    loop {
        if args.count.is_some_and(|n| seen >= n) {
            return Ok(());
        }
        let next = match idle {
            Some(d) => match tokio::time::timeout(d, stream.events.recv()).await {
                Ok(m) => m,
                Err(_) => return Ok(()),
            },
            None => tokio::select! {
                m = stream.events.recv() => m,
                _ = tokio::signal::ctrl_c() => return Ok(()),
            },
        };
        let Some(item) = next else { return Ok(()) };
        // Deliveries were not asked for; a backend that sends them anyway is not shown them.
        let crate::backend::TailEvent::Message(m) = item? else {
            continue;
        };
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
            output::write_message(&m, &extractor, &decoder, &mut text)?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Delivery, GroupProgress, GroupStatus, Message};
    use crate::ops::trace::{HopKind, follow::delivery_hop, hop_of};

    #[test]
    fn a_delivery_reads_as_who_picked_it_up_and_a_record_lists_its_groups() {
        let at = DateTime::from_timestamp(10, 0).unwrap();
        let mut m = Message::new("shipping", 0, bytes::Bytes::new());
        m.exchange = Some("orders".into());
        m.routing_key = Some("order.created".into());
        let d = Delivery {
            queue: "shipping".into(),
            at,
            redelivered: false,
            user: Some("shipping-svc".into()),
            connection: Some("10.0.0.7:50412 -> 10.0.0.2:5672".into()),
            channel: Some(1),
            node: None,
        };
        let hop = delivery_hop(
            crate::backend::Delivered {
                delivery: d,
                message: m.clone(),
            },
            None,
        );
        assert_eq!(
            hop_line(&hop, Some(at)),
            "+   0.000s  picked up from shipping by user shipping-svc on connection 10.0.0.7:50412 -> 10.0.0.2:5672 (channel 1) at 1970-01-01T00:00:10.000Z, redelivered: no  (live)"
        );

        m.partition = Some(0);
        m.offset = Some(4);
        let mut rec = hop_of(&m, HopKind::Topic);
        rec.groups = vec![GroupProgress {
            group: "billing".into(),
            status: GroupStatus::Pending,
            committed: Some(4),
            lag: Some(6),
        }];
        let mut out = Vec::new();
        write_hop(&mut out, &rec, None).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "           ?  shipping[0]@4  via orders / order.created\n              … pending in billing (committed 4, lag 6)\n"
        );
    }
}
