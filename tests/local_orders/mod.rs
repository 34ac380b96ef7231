//! Orders on the local broker, shared by the trace and recorder tests: one JSON order with a
//! correlation ID, and a broker on a manual clock with a fanout exchange `orders`.

use bytes::Bytes;
use mqscope::backend::local::broker::{LocalBroker, LocalConfig, Outgoing};
use mqscope::backend::local::clock::Clock;
use mqscope::model::topology::ExchangeKind;
use mqscope::model::{FieldTable, Properties};
use std::sync::Arc;

/// Order `n` under the correlation ID `corr`: `{"order": n}`, message id `m{n}`.
pub fn order(corr: &str, n: u32) -> Outgoing {
    Outgoing {
        properties: Properties {
            correlation_id: Some(corr.into()),
            message_id: Some(format!("m{n}")),
            ..Properties::default()
        },
        headers: FieldTable::new(),
        payload: Bytes::from(format!("{{\"order\": {n}}}")),
    }
}

/// A local broker on a manual clock with a fanout exchange `orders`.
pub fn orders_broker() -> Arc<LocalBroker> {
    let b = Arc::new(LocalBroker::new(
        "t",
        Clock::manual(1_000_000),
        LocalConfig::default(),
    ));
    b.declare_exchange("orders", ExchangeKind::Fanout).unwrap();
    b
}
