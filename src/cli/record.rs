//! `record`: the live tail into a database until Ctrl-C (or SIGTERM), a status line per
//! interval, and the gaps nothing was recorded in.

use crate::backend::Backend;
use crate::cli::RecordArgs;
use crate::config::Resolved;
use crate::model::time::{parse_ago, rfc3339};
use crate::ops::record::{
    RecordError, RecordEvent, RecordOptions, Retention, Status, Store, record,
};
use anyhow::{Context, Result, anyhow};
use chrono::Utc;
use std::io::Write;
use std::path::PathBuf;

/// The database a command names, or its profile's.
pub(super) fn db_path(given: Option<&PathBuf>, resolved: &Resolved) -> Option<PathBuf> {
    given
        .cloned()
        .or_else(|| resolved.profile.record_db.clone())
}

pub(super) async fn run(
    backend: &dyn Backend,
    resolved: &Resolved,
    args: &RecordArgs,
    out: &mut dyn Write,
) -> Result<()> {
    let Some(db) = db_path(args.db.as_ref(), resolved) else {
        return Err(anyhow!(
            "no database to record into: give --db FILE, or record_db in the profile"
        ));
    };
    let interval = parse_ago("--interval", &args.interval)?
        .to_std()
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| anyhow!("--interval \"{}\": must be positive", args.interval))?;
    let opts = RecordOptions {
        sources: args.sources.clone(),
        queues: args.queues.clone(),
        body_bytes: args.bodies,
        retain: Retention::parse(&args.retain).map_err(|e| anyhow!(e))?,
        buffer: args.buffer.max(1),
        interval,
        // A correlation ID inside Avro or MessagePack bodies is recorded too.
        decoder: Some(std::sync::Arc::new(crate::config::decoder(resolved)?)),
        ..RecordOptions::default()
    };
    let store = Store::open(&db)?;
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel();
    let on_event = move |e: RecordEvent| {
        let _ = tx.send(e);
    };
    // The handlers are in place before anything is stored: a Ctrl-C while the demo's kept
    // history is written stops the recording as one later does, not the process outright.
    use tokio::signal::unix::{SignalKind, signal};
    let mut int = signal(SignalKind::interrupt()).context("listening for Ctrl-C")?;
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let stop = async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    };
    if !args.json {
        eprintln!("mqscope: recording into {} (Ctrl-C stops)", db.display());
    }
    let recording = record(backend, store, &opts, &on_event, stop);
    tokio::pin!(recording);
    let result = loop {
        tokio::select! {
            r = &mut recording => break r,
            Some(e) = events.recv() => show(&e, args.json, out)?,
        }
    };
    while let Ok(e) = events.try_recv() {
        show(&e, args.json, out)?;
    }
    let status = match result {
        // The database's own errors name it already.
        Err(RecordError::Store(e)) => return Err(e.into()),
        r => r.with_context(|| format!("recording into {}", db.display()))?,
    };
    show(&RecordEvent::Status(status), args.json, out)?;
    Ok(())
}

/// One event: status lines and gaps on standard output, the rest on standard error.
fn show(e: &RecordEvent, json: bool, out: &mut dyn Write) -> Result<()> {
    let at = rfc3339(&Utc::now());
    match e {
        RecordEvent::Status(s) if json => {
            #[derive(serde::Serialize)]
            struct Line<'a> {
                at: &'a str,
                #[serde(flatten)]
                status: &'a Status,
            }
            serde_json::to_writer(&mut *out, &Line { at: &at, status: s })?;
            writeln!(out)?;
        }
        RecordEvent::Status(s) => writeln!(out, "{at}  {}", status_line(s))?,
        RecordEvent::Gap(g) if json => {
            serde_json::to_writer(&mut *out, &serde_json::json!({ "at": at, "gap": g }))?;
            writeln!(out)?;
        }
        RecordEvent::Gap(g) => writeln!(
            out,
            "{at}  gap: nothing recorded from {} to {} ({})",
            rfc3339(&g.from),
            rfc3339(&g.to),
            g.reason
        )?,
        RecordEvent::Tapping { notes } => {
            for n in notes {
                eprintln!("mqscope: note: {n}");
            }
        }
        RecordEvent::Warning(w) => eprintln!("mqscope: warning: {w}"),
        RecordEvent::Lost { error } => {
            eprintln!("mqscope: broker lost ({error}); tapping again with backoff")
        }
    }
    out.flush()?;
    Ok(())
}

/// `rate 1234/s  stored 12000  dropped 0 …`: the counts that are not zero after the first three.
fn status_line(s: &Status) -> String {
    let mut line = format!(
        "rate {:.0}/s  stored {}  dropped {}",
        s.rate, s.stored, s.dropped
    );
    for (name, n) in [
        ("kept", s.kept),
        ("duplicates", s.duplicates),
        ("deleted", s.deleted),
        ("gaps", s.gaps),
    ] {
        if n > 0 {
            line.push_str(&format!("  {name} {n}"));
        }
    }
    if !s.connected {
        line.push_str("  (broker lost: tapping again)");
    }
    line
}
