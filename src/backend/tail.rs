//! What a live tail follows and the stream of messages it gives.

use super::Result;
use crate::model::Message;
use tokio::sync::mpsc;

/// What to follow live: exchanges or topics by name; empty means everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TailFilter {
    pub sources: Vec<String>,
}

/// A live stream of new messages; dropping it stops the tail and frees its resources.
pub struct Tail {
    pub messages: mpsc::Receiver<Result<Message>>,
    /// How the tail follows its sources, where the user should know (what it can miss).
    pub notes: Vec<String>,
}
