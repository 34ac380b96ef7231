//! The messages view: a window onto one queue or topic, paged in as the cursor moves.

use super::{Cursor, Pending, ReqId, State};
use crate::backend::PeekFrom;
use crate::model::{Message, QueueKind};

/// Messages loaded per request, and the most kept in memory at once.
pub const PAGE: usize = 200;
pub const MAX_WINDOW: usize = 2_000;
/// Load the next page when the selection is this close to the edge of the window.
pub const PREFETCH: usize = 40;
/// Messages shown before a hop's message when jumping to it from a trace.
pub const JUMP_CONTEXT: u64 = 10;

/// Which way a page request extends the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDir {
    Replace,
    /// Replace with the newest messages (a jump to the end).
    End,
    Append,
    Prepend,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Messages {
    pub queue: String,
    pub kind: QueueKind,
    /// Topics: how many partitions, and which one is shown.
    pub partitions: u32,
    pub partition: Option<i32>,
    /// A contiguous run of messages; never more than [`MAX_WINDOW`].
    pub window: Vec<Message>,
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub filter: String,
    pub pending: Pending<PageDir>,
    /// The window reaches the head (start) or the tail (end) of the queue.
    pub at_start: bool,
    pub at_end: bool,
    pub notes: Vec<String>,
    pub error: Option<String>,
    /// Where the window was last (re)loaded from, to repeat it after a confirmation.
    pub last_from: PeekFrom,
    /// Peeks of this queue go ahead despite the backend's warning (confirmed by the user;
    /// reset when the queue is left).
    pub force: bool,
    /// Messages marked with space, by key (`model::identity::message_key`), for replay or delete.
    pub marked: std::collections::BTreeSet<String>,
    /// Opened from a trace: select this message when the page arrives, and open it if it
    /// still carries the traced ID.
    pub jump: Option<Jump>,
}

/// Where a jump from a trace lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    /// The page request that lands it.
    pub req: ReqId,
    /// Queue position or log offset.
    pub position: u64,
    pub id: String,
}

impl State {
    pub fn selected_message(&self) -> Option<&Message> {
        self.messages
            .visible
            .get(self.messages.cursor.selected)
            .and_then(|i| self.messages.window.get(*i))
    }
}
