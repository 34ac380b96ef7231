//! What a peek asks for (where it starts, how many, which partition) and what it gives
//! back: a page of messages with notes, or the messages one by one as they are read.

use crate::model::Message;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;

/// Where a peek starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PeekFrom {
    /// The head of a queue, the oldest retained record of a log.
    Start,
    /// An index from the head of a queue, or an offset in a log.
    Position(u64),
    /// The first message at or after this time.
    Time(DateTime<Utc>),
    /// The last `limit` messages.
    Last,
}

impl PeekFrom {
    /// Where a log read from `Position(o)` starts in a partition whose oldest retained
    /// record is `low`: at `o`, with a note when the log no longer holds it (the read then
    /// starts at `low`).
    pub fn log_offset(o: u64, partition: i32, low: i64, notes: &mut Vec<String>) -> i64 {
        let o = i64::try_from(o).unwrap_or(i64::MAX);
        if o < low {
            notes.push(format!(
                "partition {partition}: offset {o} is below the log start {low}; reading from {low}"
            ));
        }
        o
    }
}

/// Merge what several partitions of a log gave into one time-ordered window of `limit`
/// messages: the first ones, or for `Last` the last ones.
pub fn merge_partitions(mut all: Vec<Message>, last: bool, limit: usize) -> Vec<Message> {
    all.sort_by_key(|m| (m.timestamp, m.partition, m.offset));
    if last {
        let skip = all.len().saturating_sub(limit);
        all.drain(..skip);
    }
    all.truncate(limit);
    all
}

/// A request for a window of messages. Peeks never consume, commit or reorder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeekRequest {
    pub from: PeekFrom,
    /// For partitioned logs: one partition, or None for all partitions merged by time.
    pub partition: Option<i32>,
    pub limit: usize,
    /// Go ahead even where the backend warns the peek could affect messages.
    pub force: bool,
}

impl PeekRequest {
    pub fn first(limit: usize) -> Self {
        Self {
            from: PeekFrom::Start,
            partition: None,
            limit,
            force: false,
        }
    }
}

/// A window of messages and anything the reader should know about how it was read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PeekPage {
    pub messages: Vec<Message>,
    /// Adjustments and warnings, one line each (e.g. an offset below the log start).
    pub notes: Vec<String>,
}

/// Where a peek puts what it reads: gathered into a page, or handed on message by message
/// as they arrive, so a command can write the first while the rest are still coming.
pub enum PeekSink<'a> {
    Collect(&'a mut Vec<Message>),
    Send(&'a mpsc::Sender<Message>),
}

impl PeekSink<'_> {
    /// Hand one message on; false once the receiver has gone (its output failed), so the
    /// reader can stop early.
    pub async fn push(&mut self, m: Message) -> bool {
        match self {
            Self::Collect(v) => {
                v.push(m);
                true
            }
            Self::Send(tx) => tx.send(m).await.is_ok(),
        }
    }

    /// Whether the receiver has gone, so whatever was not read was not wanted.
    pub fn is_closed(&self) -> bool {
        match self {
            Self::Collect(_) => false,
            Self::Send(tx) => tx.is_closed(),
        }
    }
}
