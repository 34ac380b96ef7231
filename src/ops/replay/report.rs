//! What a replay did (or, in a dry run, would do): counts per destination, the messages
//! skipped or failed and why, and notes.

use crate::backend::Destination;
use crate::model::Message;
use crate::model::destination::destination_text;
use crate::ops::is_zero;
use serde::Serialize;
use std::collections::BTreeMap;

/// One message the replay did not replay, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    pub position: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub partition: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
    pub key: String,
    pub message_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub destination: Option<String>,
    pub reason: String,
}

pub(super) fn item(
    m: &Message,
    key: &str,
    dest: Option<&Destination>,
    reason: impl Into<String>,
) -> Item {
    Item {
        position: m.position,
        partition: m.partition,
        offset: m.offset,
        key: key.to_string(),
        message_id: m.properties.message_id.clone(),
        destination: dest.map(destination_text),
        reason: reason.into(),
    }
}

/// What a replay did (or, with `dry_run`, would do).
#[derive(Debug, Clone, Serialize, Default)]
pub struct Report {
    /// The replay's id (its journal's name); a dry run has none.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub replay: String,
    pub source: String,
    pub dry_run: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// Messages looked at.
    pub scanned: u64,
    pub replayed: u64,
    /// Per destination: how many went (or would go) there.
    pub destinations: BTreeMap<String, u64>,
    /// Queues: originals removed from the dead-letter queue because their copies were
    /// confirmed in this run (a log keeps its records).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
    /// Copies confirmed whose originals' removal the broker did not answer (the connection
    /// went): each is at its destination and maybe still in the dead-letter queue too,
    /// until `--resume` removes it without publishing it again.
    #[serde(skip_serializing_if = "is_zero")]
    pub unsure: u64,
    /// Replayed by an earlier, interrupted run: removed from the dead-letter queue now.
    pub already_replayed: u64,
    /// Not chosen by --ids / --filter / --limit: left where they are.
    pub not_selected: u64,
    pub skipped: Vec<Item>,
    pub failed: Vec<Item>,
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
    /// Why the replay stopped before the end, if it did (the rest is still in the queue).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// Logs, when asked: where the group was committed or records deleted, per partition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub advanced: Vec<Advanced>,
    /// Logs: why committing the group or deleting records failed (the replay itself stands).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub advance_failed: Option<String>,
}

/// One partition of a log moved past its replayed records.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Advanced {
    pub partition: i32,
    /// `commit` (a consumer group's offset) or `delete` (records deleted below `to`).
    pub action: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    pub to: i64,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.failed.is_empty() && self.stopped.is_none() && self.advance_failed.is_none()
    }

    pub(super) fn note(&mut self, n: String) {
        if !self.notes.contains(&n) && self.notes.len() < 20 {
            self.notes.push(n);
        }
    }
}

/// Destinations grouped for the report: a queue, an exchange (whatever the key), a topic.
pub(super) fn group(d: &Destination) -> String {
    match d {
        Destination::Exchange { exchange, .. } if !exchange.is_empty() => {
            format!("exchange {exchange}")
        }
        Destination::Topic { topic, .. } => format!("topic {topic}"),
        other => destination_text(other),
    }
}
