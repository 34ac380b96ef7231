//! The consumer groups view (Kafka).

use super::{Cursor, Pace, Pending};
use crate::model::ConsumerGroup;
use chrono::{DateTime, Utc};

#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    pub list: Vec<ConsumerGroup>,
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub filter: String,
    pub pending: Pending,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub pace: Pace,
}
