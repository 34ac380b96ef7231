//! Publishing to a topic with an idempotent producer, confirmed before it returns.

use super::KafkaBackend;
use super::client::{Ctx, map_err};
use crate::backend::{BackendError, Destination, Publish, PublishReceipt, Result};
use crate::model::{FieldValue, Message};
use async_trait::async_trait;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

/// Kafka headers are bytes: strings and byte arrays go as they are, null as a null header,
/// and other AMQP-typed values (from an AMQP export) as their text.
fn header_bytes(v: &FieldValue) -> Option<Vec<u8>> {
    match v {
        FieldValue::Void => None,
        other => Some(
            other
                .as_bytes()
                .map(<[u8]>::to_vec)
                .unwrap_or_else(|| other.to_string().into_bytes()),
        ),
    }
}

#[async_trait]
impl Publish for KafkaBackend {
    async fn publish(&self, dest: &Destination, msg: &Message) -> Result<PublishReceipt> {
        let Destination::Topic { topic, partition } = dest else {
            return Err(BackendError::InvalidArgument(
                "Kafka publishes to a topic, not an exchange".into(),
            ));
        };
        // Refuse unknown topics instead of letting a broker auto-create a misspelt one.
        let parts = self.topic_partitions(topic).await?;
        if let Some(p) = partition
            && !parts.iter().any(|i| i.partition == *p)
        {
            return Err(BackendError::InvalidArgument(format!(
                "topic \"{topic}\" has no partition {p} (it has {})",
                parts.len()
            )));
        }
        let shown = self.shown();
        let (producer, ctx) = self
            .producer
            .get_or_try_init(|| async {
                let ctx = Ctx::default();
                self.settings
                    .producer()
                    .create_with_context::<Ctx, FutureProducer<Ctx>>(ctx.clone())
                    .map(|p| (p, ctx))
                    .map_err(|e| {
                        BackendError::InvalidArgument(format!("kafka client settings: {e}"))
                    })
            })
            .await?;
        let mut headers = OwnedHeaders::new_with_capacity(msg.headers.len());
        let values: Vec<(&str, Option<Vec<u8>>)> = msg
            .headers
            .iter()
            .map(|(k, v)| (k, header_bytes(v)))
            .collect();
        for (k, v) in &values {
            headers = headers.insert(Header {
                key: k,
                value: v.as_deref(),
            });
        }
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(topic)
            .payload(&msg.payload[..])
            .headers(headers);
        if let Some(k) = &msg.key {
            record = record.key(&k[..]);
        }
        if let Some(p) = partition {
            record = record.partition(*p);
        }
        let delivery = producer
            .send(record, Timeout::After(self.settings.timeout))
            .await
            .map_err(|(e, _)| map_err(&e, "publishing", &shown, ctx))?;
        Ok(PublishReceipt {
            routed_to: vec![topic.clone()],
            partition: Some(delivery.partition),
            offset: Some(delivery.offset),
        })
    }
}
