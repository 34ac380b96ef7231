//! A three-broker librdkafka mock cluster for the Kafka tests, with a plain producer for
//! seeding that is independent of the backend under test.

#![allow(dead_code)]

use mqscope::backend::kafka::KafkaBackend;
use mqscope::backend::kafka::client::Settings;
use mqscope::model::Message;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// librdkafka's mock API is thread-safe: every call posts an operation to the mock
/// cluster's own thread and waits for it. The Rust wrapper only lacks the marker traits
/// because it holds a raw pointer.
pub struct Mock(pub MockCluster<'static, DefaultProducerContext>);
unsafe impl Send for Mock {}
unsafe impl Sync for Mock {}

pub struct Cluster {
    pub mock: Mock,
    pub producer: FutureProducer,
    next: AtomicU32,
}

impl Cluster {
    pub fn new() -> Self {
        let mock = MockCluster::new(3).unwrap();
        let producer = ClientConfig::new()
            .set("bootstrap.servers", mock.bootstrap_servers())
            .set("message.timeout.ms", "5000")
            .create()
            .unwrap();
        Self {
            mock: Mock(mock),
            producer,
            next: AtomicU32::new(0),
        }
    }

    pub fn bootstrap(&self) -> String {
        self.mock.0.bootstrap_servers()
    }

    pub fn settings(&self, timeout: Duration) -> Settings {
        let mut s = Settings::new(self.bootstrap().split(',').map(String::from).collect());
        s.timeout = timeout;
        s
    }

    pub async fn backend(&self) -> KafkaBackend {
        KafkaBackend::connect(self.settings(Duration::from_secs(5)))
            .await
            .unwrap()
    }

    /// A fresh topic name from a hint, and the topic created with `partitions`.
    pub fn topic(&self, hint: &str, partitions: i32) -> String {
        let name = format!("{hint}-{}", self.next.fetch_add(1, Ordering::Relaxed));
        self.mock.0.create_topic(&name, partitions, 1).unwrap();
        name
    }

    /// Produce one message (key, headers as their byte form, payload) and wait for it.
    pub async fn produce(
        &self,
        topic: &str,
        partition: i32,
        m: &Message,
        timestamp_ms: Option<i64>,
    ) -> (i32, i64) {
        let values: Vec<(String, Option<Vec<u8>>)> = m
            .headers
            .iter()
            .map(|(k, v)| {
                let bytes = v
                    .as_bytes()
                    .map(<[u8]>::to_vec)
                    .unwrap_or_else(|| v.to_string().into_bytes());
                (k.to_string(), Some(bytes))
            })
            .collect();
        let mut headers = OwnedHeaders::new();
        for (k, v) in &values {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut rec: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .partition(partition)
            .payload(&m.payload[..])
            .headers(headers);
        if let Some(k) = &m.key {
            rec = rec.key(&k[..]);
        }
        if let Some(ts) = timestamp_ms {
            rec = rec.timestamp(ts);
        }
        let d = self
            .producer
            .send(rec, Duration::from_secs(5))
            .await
            .unwrap();
        (d.partition, d.offset)
    }
}
