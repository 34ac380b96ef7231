//! What a publish is sent to and what the broker confirms of it.

use super::Result;

/// Where a published message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Exchange {
        exchange: String,
        routing_key: String,
    },
    Topic {
        topic: String,
        partition: Option<i32>,
    },
}

/// What the broker confirmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PublishReceipt {
    /// Queues the message was routed to (AMQP), or the topic.
    pub routed_to: Vec<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
}

/// A publish that was sent; awaiting it gives the broker's confirm.
pub type PendingConfirm =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<PublishReceipt>> + Send>>;
