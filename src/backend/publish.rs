//! What a publish is sent to and what the broker confirms of it.

use super::Result;

/// Where a published message goes (plain data, so journals and front ends can name it).
pub use crate::model::destination::Destination;

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
