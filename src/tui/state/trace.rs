//! The trace view: where one correlation ID went, found hop by hop.

use super::{Cursor, Pending, State};
use crate::ops::trace::graph::Row;
use crate::ops::trace::routes::{Route, RouteBasis};
use crate::ops::trace::{Hop, Skipped};

/// The most hops a trace view keeps; an ID on more messages than this is cut short.
pub const MAX_HOPS: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracePhase {
    Scanning,
    Done,
    Cancelled,
    Failed,
}

/// A trace of one correlation ID: hops as they are found, in time order, and the graph
/// rows drawn from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub id: String,
    pub phase: TracePhase,
    /// The scan under way.
    pub pending: Pending,
    /// The live follow under way.
    pub follow: Pending,
    pub error: Option<String>,
    pub hops: Vec<Hop>,
    pub rows: Vec<Row>,
    /// Hops came in since `rows` were built (large traces rebuild at most per progress
    /// report, not per hit).
    pub rows_stale: bool,
    /// Hops not kept because the view holds at most [`MAX_HOPS`].
    pub dropped: u64,
    pub skipped: Vec<Skipped>,
    /// What the finished trace could not tell (consumer groups it could not list).
    pub notes: Vec<String>,
    pub queues_total: usize,
    pub queues_done: usize,
    pub scanned: u64,
    pub elapsed_ms: u64,
    pub cursor: Cursor,
    /// Where the first publish should have gone and what became of each copy (known once
    /// the scan is done), the publish they start from, and what they assume.
    pub routes: Vec<Route>,
    pub routes_basis: Option<RouteBasis>,
    pub routes_notes: Vec<String>,
}

impl State {
    /// The hop under the trace view's cursor.
    pub fn selected_hop(&self) -> Option<&Hop> {
        self.trace
            .rows
            .get(self.trace.cursor.selected)
            .and_then(|r| self.trace.hops.get(r.hop))
    }
}
