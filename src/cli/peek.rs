//! `mqscope peek`: a window of messages, or every one with `--all`, as readable blocks or
//! JSON Lines, written while the backend is still reading.

use crate::backend::{self, Backend, BackendError, PeekFrom, PeekRequest};
use crate::cli::browse::not_found;
use crate::cli::{PeekArgs, output};
use crate::model::correlation::Extractor;
use crate::model::time::parse_since;
use anyhow::{Result, anyhow};
use chrono::Utc;
use std::io::Write;

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

pub(super) async fn peek(
    backend: &dyn Backend,
    args: &PeekArgs,
    out: &mut dyn Write,
) -> Result<()> {
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
