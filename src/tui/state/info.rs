//! The info view: everything the backend says about one queue.

use super::Pending;

/// The info view: one queue described by its backend.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueInfo {
    pub queue: String,
    pub detail: Option<Box<crate::model::QueueDetail>>,
    pub error: Option<String>,
    pub pending: Pending,
    pub scroll: usize,
}
