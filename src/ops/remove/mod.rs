//! Removing messages from a queue (purge, delete) behind a backup: each message is written
//! to the backup (and synced) before the broker is told to remove it, and a journal of what
//! the broker confirmed removing lets an interrupted run be finished.

mod queue;
mod resume;
mod run;

pub use queue::remove;
pub use resume::RemovalResume;
pub use run::{
    Keep, Removed, Removing, Resumed, check_no_unfinished_removal, resume, run, start_removal,
    taker,
};

use crate::ops::is_zero;
use serde::Serialize;

/// What a purge or delete removed.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Removal {
    pub queue: String,
    pub removed: u64,
    pub scanned: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// Asked for by --ids but not found.
    pub not_found: Vec<String>,
    pub notes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stopped: Option<String>,
    /// The journal that lets an interrupted run be finished with `--resume`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    /// Resumed: messages the interrupted run had backed up, removed now.
    #[serde(skip_serializing_if = "is_zero")]
    pub finished: u64,
    /// Written to the backup, but the broker did not answer their removal (the connection
    /// went): maybe still in the queue too, until `--resume` settles it.
    #[serde(skip_serializing_if = "is_zero")]
    pub unsure: u64,
    pub elapsed_ms: u64,
}

/// A purge or delete, as its journal's begin records it (so that a resume does the same).
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct RemovalOptions {
    /// `purge` or `delete`.
    pub action: String,
    /// delete: the message ids or fingerprints asked for.
    #[serde(default)]
    pub ids: Vec<String>,
    #[serde(default)]
    pub force: bool,
    /// The backup file the removed messages are written to.
    pub backup: String,
}
