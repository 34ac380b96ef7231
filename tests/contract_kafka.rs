//! The backend contract against librdkafka's mock Kafka cluster (three brokers, no server).

mod contract;
mod kafka_mock;

use async_trait::async_trait;
use contract::Fixture;
use kafka_mock::Cluster;
use mqscope::backend::kafka::KafkaBackend;
use mqscope::backend::{Backend, Destination};
use mqscope::model::{Message, QueueKind};
use std::sync::Arc;

struct KafkaFixture {
    cluster: Cluster,
    backend: Arc<KafkaBackend>,
}

impl KafkaFixture {
    /// The mock cluster is in process, so it is always there.
    async fn new() -> Option<Self> {
        let cluster = Cluster::new();
        let backend = Arc::new(cluster.backend().await);
        Some(Self { cluster, backend })
    }
}

#[async_trait]
impl Fixture for KafkaFixture {
    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    async fn seed(&self, hint: &str, messages: &[Message]) -> String {
        let name = self.cluster.topic(hint, 1);
        for m in messages {
            self.cluster.produce(&name, 0, m, None).await;
        }
        name
    }

    fn destination(&self, queue: &str) -> Destination {
        Destination::Topic {
            topic: queue.to_string(),
            partition: Some(0),
        }
    }

    fn kind(&self) -> QueueKind {
        QueueKind::Topic
    }

    /// Kafka header values are bytes; the contract compares their text only.
    fn typed_headers(&self) -> bool {
        false
    }

    fn amqp_properties(&self) -> bool {
        false
    }
}

contract_tests!(KafkaFixture::new());
