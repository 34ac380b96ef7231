//! The exchanges view (AMQP): exchanges and every binding.

use super::ListView;
use crate::model::topology::{Binding, ExchangeSummary};

/// The exchanges of the vhost, with every binding (`extra`): the selected exchange's are
/// shown beside the list.
pub type Exchanges = ListView<ExchangeSummary, Vec<Binding>>;

impl Exchanges {
    /// The bindings whose source is `exchange`, in the broker's order.
    pub fn bindings_from(&self, exchange: &str) -> Vec<&Binding> {
        self.extra.iter().filter(|b| b.source == exchange).collect()
    }
}
