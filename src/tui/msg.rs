//! The two vocabularies of the loop: `Msg`, everything that can happen to the app (a key,
//! a tick, a worker's reply), and `Effect`, the work `update` asks the worker to do.

use super::keymap::Key;
use super::state::{ConfirmAction, ReqId};
use crate::backend::{PeekFrom, PeekPage};
use crate::model::topology::Routing;
use crate::model::{ConsumerGroup, QueueSummary};
use crate::ops::trace::{Hop, TraceEvent};
use chrono::{DateTime, Utc};
use std::path::PathBuf;

/// Everything that can happen to the app.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    Key(Key),
    /// Mouse wheel: positive scrolls down.
    Scroll(i32),
    Resize(u16, u16),
    /// One second passed.
    Tick,
    Connected {
        backend: String,
        target: String,
        /// The broker's product and version, where it says (`RabbitMQ 4.3.6`).
        server: Option<String>,
        has_groups: bool,
        has_exchanges: bool,
    },
    ConnectFailed(String),
    /// `:vhost NAME` could not connect there; the old vhost's connection is kept.
    VhostSwitchFailed(String),
    /// `took_ms`, how long the listing took, sets the pace of the next (see `Pace`).
    QueuesLoaded {
        req: ReqId,
        result: Result<Vec<QueueSummary>, String>,
        at: DateTime<Utc>,
        took_ms: u64,
    },
    GroupsLoaded {
        req: ReqId,
        result: Result<Vec<ConsumerGroup>, String>,
        at: DateTime<Utc>,
        took_ms: u64,
    },
    ExchangesLoaded {
        req: ReqId,
        result: Result<Routing, String>,
        at: DateTime<Utc>,
        took_ms: u64,
    },
    VhostsLoaded {
        req: ReqId,
        result: Result<Vec<String>, String>,
    },
    MessagesLoaded {
        req: ReqId,
        result: Result<PeekPage, String>,
    },
    Saved(Result<String, String>),
    /// A replay, purge or delete finished: one line saying what happened, or why not.
    Modified(Result<String, String>),
    /// A running trace found something or finished a queue.
    TraceEvent {
        req: ReqId,
        event: TraceEvent,
    },
    /// Messages read so far and time taken, for the progress line.
    TraceProgress {
        req: ReqId,
        scanned: u64,
        elapsed_ms: u64,
    },
    TraceDone {
        req: ReqId,
        result: Result<Box<crate::ops::trace::Trace>, String>,
    },
    /// A new hop from the live follow, or a problem it survived.
    FollowHop {
        req: ReqId,
        result: Result<Box<Hop>, String>,
    },
    /// The live follow ended (its tail closed or could not start).
    FollowEnded {
        req: ReqId,
        error: Option<String>,
    },
    /// A queue's full description, for the info view.
    Described {
        req: ReqId,
        result: Result<Box<crate::model::QueueDetail>, String>,
    },
    /// The schema registry could not give a page's schemas: their payloads show raw.
    RegistryNote(String),
}

/// Work for the worker; replies come back as messages carrying the same request id.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    Connect,
    LoadQueues(ReqId),
    LoadGroups(ReqId),
    LoadExchanges(ReqId),
    /// List the broker's virtual hosts (for `:vhost` and its completion).
    LoadVhosts(ReqId),
    /// Reconnect to another virtual host of the same broker.
    SwitchVhost(String),
    LoadMessages {
        req: ReqId,
        queue: String,
        partition: Option<i32>,
        from: PeekFrom,
        limit: usize,
        /// The user agreed to a peek the backend warned about.
        force: bool,
    },
    Save {
        path: PathBuf,
        contents: String,
    },
    /// Put text on the clipboard through the terminal (OSC 52).
    Copy(String),
    /// Replay, purge or delete (confirmed by the user); the reply is `Msg::Modified`.
    Modify(ConfirmAction),
    /// Search every queue and topic for a correlation ID, reporting as it goes.
    Trace {
        req: ReqId,
        id: String,
    },
    /// Stop a running trace; nothing more is reported for it.
    CancelTrace(ReqId),
    /// Watch the live tail for new hops of a correlation ID.
    Follow {
        req: ReqId,
        id: String,
    },
    StopFollow(ReqId),
    /// Describe one queue, stream or topic in full (the info view).
    Describe {
        req: ReqId,
        queue: String,
    },
    Quit,
}
