//! Peeking without taking anything: a window from a position, or every message of a queue
//! or topic, kept or dropped by a filter. Messages go to a [`Sink`] as they arrive, so the
//! sink's work overlaps the broker's delivery and memory stays bounded.

use crate::backend::{Backend, BackendError, Export, PeekFrom, PeekRequest};
use crate::model::Message;
use crate::ops::replay::Filter;
use crate::ops::scan::{self, ScanOptions};

#[derive(Debug, thiserror::Error)]
pub enum PeekError {
    /// No queue or topic of that name (a front end may say which names are close).
    #[error("{}", BackendError::QueueNotFound(.0.clone()))]
    NotFound(String),
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The sink failed (a closed pipe); reading stopped.
    #[error(transparent)]
    Sink(std::io::Error),
}

/// Where a peek's messages go, as they arrive.
pub trait Sink {
    /// One message the filter kept.
    fn message(&mut self, m: &Message) -> std::io::Result<()>;

    /// The end of a page (or of the window): hand on whatever is held.
    fn end_page(&mut self) -> std::io::Result<()>;
}

/// How many messages were read, and how many of them the filter kept.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    pub read: usize,
    pub matched: usize,
}

/// The filter, counting what it sees.
struct Chooser<'a> {
    filter: Option<&'a Filter>,
    tally: Tally,
}

impl<'a> Chooser<'a> {
    fn new(filter: Option<&'a Filter>) -> Self {
        Self {
            filter,
            tally: Tally::default(),
        }
    }

    fn keep(&mut self, m: &Message) -> bool {
        self.tally.read += 1;
        let keep = self.filter.is_none_or(|f| f.matches(m));
        self.tally.matched += usize::from(keep);
        keep
    }
}

/// How many read messages may wait for the sink of a `peek`.
const PEEK_BUFFER: usize = 1_024;

/// A window of `queue`, each message the filter keeps handed to `sink` while the backend
/// is still reading; the backend's notes go to `on_note` once all went well.
pub async fn peek(
    backend: &dyn Backend,
    queue: &str,
    req: &PeekRequest,
    filter: Option<&Filter>,
    sink: &mut dyn Sink,
    mut on_note: impl FnMut(&str),
) -> Result<Tally, PeekError> {
    let mut chosen = Chooser::new(filter);
    // Written while the backend is still reading: a large window's formatting overlaps the
    // broker's delivery instead of following it.
    let (tx, rx) = tokio::sync::mpsc::channel(PEEK_BUFFER);
    let read = async move {
        let notes = backend.peek_into(queue, req, &tx).await;
        drop(tx);
        notes
    };
    let write = async {
        // Owned here, so a failed write (a closed pipe) drops it and the reader stops.
        let mut rx = rx;
        while let Some(m) = rx.recv().await {
            if !chosen.keep(&m) {
                continue;
            }
            sink.message(&m)?;
        }
        sink.end_page()
    };
    let (notes, written) = tokio::join!(read, write);
    let notes = match notes {
        Ok(n) => n,
        Err(BackendError::QueueNotFound(name)) => return Err(PeekError::NotFound(name)),
        Err(e) => return Err(e.into()),
    };
    written.map_err(PeekError::Sink)?;
    for note in &notes {
        on_note(note);
    }
    Ok(chosen.tally)
}

/// `peek --all`: page through every message (see `scan::read_all`), handing each page to
/// `sink` as it arrives so memory stays at one page whatever the size of the topic. A
/// backend's streaming export is used where it has one. `opts.since` is not used.
pub async fn peek_all(
    backend: &dyn Backend,
    queue: &str,
    opts: &ScanOptions,
    filter: Option<&Filter>,
    sink: &mut dyn Sink,
    on_note: impl FnMut(&str),
) -> Result<Tally, PeekError> {
    if let Some(exporter) = backend.exporter() {
        return export_all(exporter, queue, opts, filter, sink).await;
    }
    let detail = match backend.describe_queue(queue).await {
        Ok(d) => d,
        Err(BackendError::QueueNotFound(name)) => return Err(PeekError::NotFound(name)),
        Err(e) => return Err(e.into()),
    };
    let mut chosen = Chooser::new(filter);
    scan::read_all::<PeekError>(
        backend,
        &detail,
        opts,
        |page| {
            for m in page.iter().filter(|m| chosen.keep(m)) {
                sink.message(m).map_err(PeekError::Sink)?;
            }
            sink.end_page().map_err(PeekError::Sink)
        },
        on_note,
    )
    .await?;
    Ok(chosen.tally)
}

/// Messages per hand-off from an export to the sink.
const EXPORT_BATCH: usize = 1_000;

/// `peek --all` through a backend's streaming export: fetching and writing overlap, and the
/// channel bounds what is held.
async fn export_all(
    exporter: &dyn Export,
    queue: &str,
    opts: &ScanOptions,
    filter: Option<&Filter>,
    sink: &mut dyn Sink,
) -> Result<Tally, PeekError> {
    // Up to four batches in flight: the reader fetches while the writer formats.
    let batch = opts.page_size.clamp(1, EXPORT_BATCH);
    let from = opts.from.map_or(PeekFrom::Start, PeekFrom::Position);
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    let mut chosen = Chooser::new(filter);
    let writing = async {
        // Owning the receiver drops it when writing fails, which stops the export.
        let mut rx: tokio::sync::mpsc::Receiver<Vec<Message>> = rx;
        while let Some(batch) = rx.recv().await {
            for m in batch.iter().filter(|m| chosen.keep(m)) {
                sink.message(m)?;
            }
            sink.end_page()?;
        }
        Ok::<_, std::io::Error>(())
    };
    let (exported, wrote) = tokio::join!(
        exporter.export(queue, opts.partition, &from, batch, tx),
        writing
    );
    // A write error (a closed pipe) explains an export cut short, so it goes first.
    wrote.map_err(PeekError::Sink)?;
    match exported {
        Ok(_) => {}
        Err(BackendError::QueueNotFound(name)) => return Err(PeekError::NotFound(name)),
        Err(e) => return Err(e.into()),
    }
    Ok(chosen.tally)
}
