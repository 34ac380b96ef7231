//! The exchanges view (AMQP): exchanges and every binding.

use super::{Cursor, Pace, Pending};
use crate::model::topology::{Binding, ExchangeSummary};
use chrono::{DateTime, Utc};

/// The exchanges of the vhost, with every binding: the selected exchange's are shown
/// beside the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchanges {
    pub list: Vec<ExchangeSummary>,
    pub bindings: Vec<Binding>,
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub filter: String,
    pub pending: Pending,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub pace: Pace,
}

impl Exchanges {
    pub fn selected(&self) -> Option<&ExchangeSummary> {
        self.visible
            .get(self.cursor.selected)
            .and_then(|i| self.list.get(*i))
    }

    /// The bindings whose source is `exchange`, in the broker's order.
    pub fn bindings_from(&self, exchange: &str) -> Vec<&Binding> {
        self.bindings
            .iter()
            .filter(|b| b.source == exchange)
            .collect()
    }
}
