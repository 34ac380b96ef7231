//! The confirm popup: a question asked before anything irreversible (or costly) happens.

/// Something that needs a yes before it happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfirmAction {
    /// Peek although every read raises the messages' delivery counts.
    ForcePeek,
    /// Replay dead letters to their origin: these keys, or all when empty.
    Replay { queue: String, ids: Vec<String> },
    /// Remove every message, after a backup.
    Purge { queue: String },
    /// Remove these messages, after a backup.
    Delete { queue: String, ids: Vec<String> },
}

/// A question on screen: `y` does `action`, `n` or `Esc` does nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub title: String,
    pub body: String,
    pub action: ConfirmAction,
    /// Destructive actions: the name the user must type (`y` is not enough).
    pub typed: Option<String>,
    /// What has been typed so far.
    pub answer: String,
}
