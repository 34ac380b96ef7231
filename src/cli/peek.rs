//! `mqscope peek`: a window of messages, or every one with `--all`, as readable blocks or
//! JSON Lines, written while the backend is still reading (the reading is `ops::peek`).

use crate::backend::{Backend, PeekFrom, PeekRequest};
use crate::cli::browse::not_found;
use crate::cli::{PeekArgs, output};
use crate::config::Resolved;
use crate::format::decode::Decoder;
use crate::model::Message;
use crate::model::correlation::Extractor;
use crate::model::time::parse_since;
use crate::ops::peek::{self as ops, PeekError, Sink, Tally};
use crate::ops::replay::Filter;
use crate::ops::scan::ScanOptions;
use anyhow::{Result, anyhow};
use chrono::Utc;
use std::io::Write;
use std::sync::Arc;

pub(super) async fn peek(
    backend: &dyn Backend,
    resolved: &Resolved,
    args: &PeekArgs,
    out: &mut dyn Write,
) -> Result<()> {
    // A bad expression is an error before anything is read.
    let filter = args
        .filter
        .as_deref()
        .map(Filter::parse)
        .transpose()
        .map_err(|e| anyhow!("{e}"))?;
    let note = |note: &str| eprintln!("mqscope: note: {note}");
    // A schema file that cannot be read is an error before anything is read, too.
    let decoder = Arc::new(crate::config::decoder(resolved)?);
    // `body./…` conditions read bodies as the record shows them decoded.
    let filter = filter.map(|f| f.decoding(Arc::clone(&decoder)));
    let mut printer = Printer::new(args.out.json, decoder, out);
    let tally = if args.all {
        let opts = ScanOptions {
            from: args.from,
            partition: args.partition,
            page_size: args.page_size,
            force: args.force,
            since: None,
        };
        ops::peek_all(
            backend,
            &args.queue,
            &opts,
            filter.as_ref(),
            &mut printer,
            note,
        )
        .await
    } else {
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
        ops::peek(
            backend,
            &args.queue,
            &req,
            filter.as_ref(),
            &mut printer,
            note,
        )
        .await
    };
    let tally = match tally {
        Ok(t) => t,
        Err(PeekError::NotFound(name)) => return Err(not_found(backend, &name).await),
        Err(PeekError::Backend(e)) => return Err(e.into()),
        // The I/O error itself, so that `main` knows a closed pipe for what it is.
        Err(PeekError::Sink(e)) => return Err(e.into()),
    };
    // `-n` (`usize::MAX` with `--all`).
    let asked = if args.all { usize::MAX } else { args.count };
    finish(filter.as_ref(), asked, tally, args.out.json, out)
}

/// The line a filtered peek ends with (on standard error), and the empty result's.
fn finish(
    filter: Option<&Filter>,
    asked: usize,
    tally: Tally,
    json: bool,
    out: &mut dyn Write,
) -> Result<()> {
    if let Some(f) = filter {
        eprintln!(
            "mqscope: note: {} of {} messages read matched --filter '{}'",
            tally.matched,
            tally.read,
            f.text()
        );
    }
    if !json && tally.matched == 0 {
        if asked == 0 {
            writeln!(out, "(-n 0: nothing asked for)")?;
        } else if tally.read > 0 {
            writeln!(out, "(no message matched)")?;
        } else {
            writeln!(out, "(no messages at that position)")?;
        }
    }
    Ok(())
}

/// Writes messages as JSON Lines or readable text, formatted into `text` (a reusable
/// buffer) and written at once: serde writes many small pieces, and each through
/// `dyn Write` costs more than the bytes it writes.
struct Printer<'a> {
    json: bool,
    extractor: Extractor,
    /// What is inside each payload and key, added to a JSON record beside them.
    decoder: Arc<Decoder>,
    text: Vec<u8>,
    out: &'a mut dyn Write,
}

impl<'a> Printer<'a> {
    fn new(json: bool, decoder: Arc<Decoder>, out: &'a mut dyn Write) -> Self {
        Self {
            json,
            extractor: Extractor::default(),
            decoder,
            text: Vec::new(),
            out,
        }
    }
}

impl Sink for Printer<'_> {
    fn message(&mut self, m: &Message) -> std::io::Result<()> {
        format_message(m, self.json, &self.extractor, &self.decoder, &mut self.text)?;
        // Large messages: hold at most about a megabyte of text besides them.
        if self.text.len() >= 1 << 20 {
            self.out.write_all(&self.text)?;
            self.text.clear();
        }
        Ok(())
    }

    fn end_page(&mut self) -> std::io::Result<()> {
        self.out.write_all(&self.text)?;
        self.text.clear();
        Ok(())
    }
}

/// One message as a JSON line or as readable text, appended to `text`.
fn format_message(
    m: &Message,
    json: bool,
    extractor: &Extractor,
    decoder: &Decoder,
    text: &mut Vec<u8>,
) -> std::io::Result<()> {
    if json {
        let record = crate::format::record::record(m, extractor).with_decoded(m, decoder);
        serde_json::to_writer(&mut *text, &record)?;
        text.push(b'\n');
    } else {
        output::write_message(m, extractor, decoder, &mut *text)?;
    }
    Ok(())
}
