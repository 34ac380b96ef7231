//! The consumer groups view (Kafka).

use super::ListView;
use crate::model::ConsumerGroup;

pub type Groups = ListView<ConsumerGroup>;
