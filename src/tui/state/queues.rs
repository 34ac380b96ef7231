//! The queue list: every queue, stream and topic, filtered and sorted.

use super::{ListView, State};
use crate::model::QueueSummary;

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

pub type Queues = ListView<QueueSummary, QueueOrder>;

/// How the queue list is ordered and narrowed beyond its filter.
#[derive(Debug, Clone, PartialEq)]
pub struct QueueOrder {
    pub sort: SortColumn,
    pub descending: bool,
    /// Only the queues an exchange routes to (its name, and theirs), from the exchanges
    /// view; Esc shows all again.
    pub bound_to: Option<(String, std::collections::BTreeSet<String>)>,
}

impl State {
    pub fn selected_queue(&self) -> Option<&QueueSummary> {
        self.queues.selected()
    }
}
