//! Reading a whole queue or topic page by page through a backend's safe peek, with memory
//! bounded by one page: logs partition by partition up to the high watermark seen when the
//! read began (so a growing topic still ends), queues by position until a short page.

use crate::backend::{Backend, BackendError, PeekFrom, PeekRequest};
use crate::model::{Message, QueueDetail};

/// The deepest window a queue is read in at once (AMQP's prefetch limit).
const QUEUE_WINDOW: usize = 65_535;

/// What to read and how.
#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Start at this position (queue index or log offset).
    pub from: Option<u64>,
    /// Logs: only this partition.
    pub partition: Option<i32>,
    pub page_size: usize,
    pub force: bool,
    /// Logs: start each partition at the first record at or after this time (the broker's
    /// time index); queues have none, so callers filter their messages themselves.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
}

impl Default for ScanOptions {
    fn default() -> Self {
        Self {
            from: None,
            partition: None,
            page_size: 1_000,
            force: false,
            since: None,
        }
    }
}

/// Call `on_page` with every page of `detail`'s queue or topic, in order; notes the backend
/// adds are passed to `on_note`. Stops at the first error from the backend or a callback.
pub async fn read_all<E>(
    backend: &dyn Backend,
    detail: &QueueDetail,
    opts: &ScanOptions,
    mut on_page: impl FnMut(&[Message]) -> Result<(), E>,
    mut on_note: impl FnMut(&str),
) -> Result<(), E>
where
    E: From<BackendError>,
{
    let name = &detail.summary.name;
    // A queue can only be peeked from its head, so every page re-reads the ones before it:
    // read it in one window as deep as the queue (up to AMQP's prefetch limit) instead.
    let page_size = if detail.summary.kind.is_log() {
        opts.page_size
    } else {
        let depth = detail
            .summary
            .messages
            .map_or(0, |n| usize::try_from(n).unwrap_or(usize::MAX));
        depth.min(QUEUE_WINDOW).max(opts.page_size)
    }
    .max(1);
    let request = |from: u64, partition: Option<i32>| PeekRequest {
        from: PeekFrom::Position(from),
        partition,
        limit: page_size,
        force: opts.force,
    };
    if detail.summary.kind.is_log() && !detail.partitions_detail.is_empty() {
        let parts: Vec<_> = detail
            .partitions_detail
            .iter()
            .filter(|p| opts.partition.is_none_or(|want| want == p.partition))
            .collect();
        if let Some(want) = opts.partition
            && parts.is_empty()
        {
            return Err(BackendError::InvalidArgument(format!(
                "\"{name}\" has no partition {want}"
            ))
            .into());
        }
        for p in parts {
            let mut next = opts
                .from
                .unwrap_or(0)
                .max(u64::try_from(p.low).unwrap_or(0));
            let end = u64::try_from(p.high).unwrap_or(0);
            let mut first = opts.since.map(PeekFrom::Time);
            while next < end {
                let mut req = request(next, Some(p.partition));
                if let Some(from) = first.take() {
                    req.from = from;
                }
                let page = backend.peek(name, &req).await?;
                page.notes.iter().for_each(|n| on_note(n));
                let page: Vec<_> = page
                    .messages
                    .into_iter()
                    .take_while(|m| m.position < end)
                    .collect();
                let Some(last) = page.last() else { break };
                next = last.position + 1;
                on_page(&page)?;
            }
        }
    } else {
        let mut next = opts.from.unwrap_or(0);
        // A queue is read from its head every time, so a second read returns the first
        // messages again: under a delivery limit that costs each of them one more
        // delivery, so such a queue is read once, whatever the page says.
        let read_once = detail.summary.delivery_limit.is_some();
        loop {
            if let Some(depth) = backend.peek_depth()
                && next >= depth
            {
                on_note(&format!(
                    "only the first {depth} messages of a queue can be read without consuming them (AMQP's prefetch limit); the rest were not read"
                ));
                break;
            }
            let page = backend.peek(name, &request(next, None)).await?;
            page.notes.iter().for_each(|n| on_note(n));
            let n = page.messages.len();
            on_page(&page.messages)?;
            // A short page is the end of the queue, unless the backend said why it came
            // up short (a broker busy writing a queue just filled can pause deliveries
            // for seconds): then the next page says, at the cost of one more request.
            if n == 0 || (n < page_size && (page.notes.is_empty() || read_once)) {
                break;
            }
            next += n as u64;
        }
    }
    Ok(())
}
