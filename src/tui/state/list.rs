//! What the list views (queues, consumer groups, exchanges) share: a listing loaded on a
//! timer, shown filtered through `visible` under a cursor.

use super::{Cursor, Pace, Pending};
use chrono::{DateTime, Utc};

/// One list view. `X` is what a view keeps beyond the list: the queues' order and
/// exchange filter, the exchanges' bindings.
#[derive(Debug, Clone, PartialEq)]
pub struct ListView<T, X = ()> {
    pub list: Vec<T>,
    /// Indices into `list` after filter (and, for queues, sort).
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub filter: String,
    pub pending: Pending,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub pace: Pace,
    pub extra: X,
}

impl<T, X> ListView<T, X> {
    /// Empty and not loaded yet.
    pub fn new(extra: X) -> Self {
        Self {
            list: Vec::new(),
            visible: Vec::new(),
            cursor: Cursor::default(),
            filter: String::new(),
            pending: Pending::default(),
            refreshed_at: None,
            pace: Pace::default(),
            extra,
        }
    }

    pub fn selected(&self) -> Option<&T> {
        self.visible
            .get(self.cursor.selected)
            .and_then(|i| self.list.get(*i))
    }

    /// Show the rows `visible`, keeping the one named `keep` selected where it still is,
    /// and the cursor on a row.
    pub fn show(&mut self, visible: Vec<usize>, keep: Option<&str>, name: impl Fn(&T) -> &str) {
        self.visible = visible;
        if let Some(keep) = keep
            && let Some(pos) = self
                .visible
                .iter()
                .position(|i| name(&self.list[*i]) == keep)
        {
            self.cursor.selected = pos;
        }
        self.cursor.selected = self
            .cursor
            .selected
            .min(self.visible.len().saturating_sub(1));
    }
}
