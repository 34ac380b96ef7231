//! The queue list: every queue, stream and topic, filtered and sorted.

use super::{Cursor, Pace, Pending, State};
use crate::model::QueueSummary;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Name,
    Type,
    Messages,
    Ready,
    Unacked,
    Consumers,
    InRate,
    OutRate,
}

impl SortColumn {
    pub const ALL: [SortColumn; 8] = [
        SortColumn::Name,
        SortColumn::Type,
        SortColumn::Messages,
        SortColumn::Ready,
        SortColumn::Unacked,
        SortColumn::Consumers,
        SortColumn::InRate,
        SortColumn::OutRate,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SortColumn::Name => "name",
            SortColumn::Type => "type",
            SortColumn::Messages => "messages",
            SortColumn::Ready => "ready",
            SortColumn::Unacked => "unacked",
            SortColumn::Consumers => "consumers",
            SortColumn::InRate => "in/s",
            SortColumn::OutRate => "out/s",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Queues {
    pub list: Vec<QueueSummary>,
    /// Indices into `list` after filter and sort.
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub sort: SortColumn,
    pub descending: bool,
    pub filter: String,
    /// Only the queues an exchange routes to (its name, and theirs), from the exchanges
    /// view; Esc shows all again.
    pub bound_to: Option<(String, std::collections::BTreeSet<String>)>,
    pub pending: Pending,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub pace: Pace,
}

impl State {
    pub fn selected_queue(&self) -> Option<&QueueSummary> {
        self.queues
            .visible
            .get(self.queues.cursor.selected)
            .and_then(|i| self.queues.list.get(*i))
    }
}
