//! The backend contract against the built-in local broker: its queues and its topics.

mod contract;

use async_trait::async_trait;
use contract::Fixture;
use mqscope::backend::local::LocalBackend;
use mqscope::backend::local::broker::{LocalBroker, LocalConfig, Outgoing, QueueArgs};
use mqscope::backend::local::clock::Clock;
use mqscope::backend::{Backend, Destination};
use mqscope::model::{Message, QueueKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

struct LocalFixture {
    backend: Arc<LocalBackend>,
    topics: bool,
    next: AtomicU32,
}

impl LocalFixture {
    async fn new(topics: bool) -> Option<Self> {
        let broker = Arc::new(LocalBroker::new(
            "contract",
            Clock::system(),
            LocalConfig::default(),
        ));
        Some(Self {
            backend: Arc::new(LocalBackend::new(broker, "local://empty")),
            topics,
            next: AtomicU32::new(0),
        })
    }
}

#[async_trait]
impl Fixture for LocalFixture {
    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    async fn seed(&self, hint: &str, messages: &[Message]) -> String {
        let name = format!("{hint}-{}", self.next.fetch_add(1, Ordering::Relaxed));
        let broker = self.backend.broker();
        if self.topics {
            broker.declare_topic(&name, 1).unwrap();
            for m in messages {
                broker
                    .produce(
                        &name,
                        Some(0),
                        m.key.clone(),
                        m.headers.clone(),
                        m.payload.clone(),
                    )
                    .unwrap();
            }
        } else {
            broker.declare_queue(&name, QueueArgs::default()).unwrap();
            for m in messages {
                let out = Outgoing {
                    properties: m.properties.clone(),
                    headers: m.headers.clone(),
                    payload: m.payload.clone(),
                };
                assert_eq!(broker.publish("", &name, out).unwrap(), vec![name.clone()]);
            }
        }
        name
    }

    fn destination(&self, queue: &str) -> Destination {
        if self.topics {
            Destination::Topic {
                topic: queue.to_string(),
                partition: Some(0),
            }
        } else {
            Destination::Exchange {
                exchange: String::new(),
                routing_key: queue.to_string(),
            }
        }
    }

    fn kind(&self) -> QueueKind {
        if self.topics {
            QueueKind::Topic
        } else {
            QueueKind::Queue
        }
    }

    fn typed_headers(&self) -> bool {
        true
    }
}

mod queues {
    use super::*;
    contract_tests!(LocalFixture::new(false));
}

mod topics {
    use super::*;
    contract_tests!(LocalFixture::new(true));
}
