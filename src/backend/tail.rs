//! What a live tail follows and the stream of events it gives: messages published (or
//! produced, or dead-lettered), and deliveries of messages to consumers.

use super::Result;
use crate::model::{Delivery, Message};
use tokio::sync::mpsc;

/// What to follow live: exchanges or topics by name; empty means everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailFilter {
    pub sources: Vec<String>,
    /// Also report messages handed to consumers, from every queue, where the broker says
    /// (RabbitMQ with tracing on, the local broker); other backends ignore it.
    pub deliveries: bool,
}

/// One thing a live tail saw.
#[derive(Debug, Clone, PartialEq)]
pub enum TailEvent {
    /// A message published to an exchange, produced to a topic, or dead-lettered.
    Message(Message),
    /// A message handed to a consumer: who took it from which queue, and the message.
    Delivery(Delivered),
}

impl TailEvent {
    /// The message published, or the one handed over.
    pub fn message(&self) -> &Message {
        match self {
            TailEvent::Message(m) => m,
            TailEvent::Delivery(d) => &d.message,
        }
    }
}

/// A delivery and the message it handed over (its `queue` is the queue it left).
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    pub delivery: Delivery,
    pub message: Message,
}

/// A live stream of tail events; dropping it stops the tail and frees its resources.
pub struct Tail {
    pub events: mpsc::Receiver<Result<TailEvent>>,
    /// How the tail follows its sources, where the user should know (what it can miss).
    pub notes: Vec<String>,
}
