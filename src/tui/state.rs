//! Everything the TUI shows, as plain data. Views are named like their drawing code:
//! `state.queues` is drawn by `ui::queues`.

use super::keymap::{Keymap, Scope};
use crate::backend::PeekFrom;
use crate::model::topology::{Binding, ExchangeSummary};
use crate::model::{ConsumerGroup, Message, QueueKind, QueueSummary};
use crate::ops::trace::graph::Row;
use crate::ops::trace::{Hop, Skipped};
use chrono::{DateTime, Utc};
use std::path::PathBuf;

pub type ReqId = u64;

/// Messages loaded per request, and the most kept in memory at once.
pub const PAGE: usize = 200;
pub const MAX_WINDOW: usize = 2_000;
/// Load the next page when the selection is this close to the edge of the window.
pub const PREFETCH: usize = 40;
/// Payloads up to this size are pretty-printed as JSON; larger ones are shown raw.
pub const PRETTY_LIMIT: usize = 2 * 1024 * 1024;
/// Body text is cut into display lines of at most this many characters.
pub const LINE_CHUNK: usize = 4096;
/// The most hops a trace view keeps; an ID on more messages than this is cut short.
pub const MAX_HOPS: usize = 5_000;
/// Messages shown before a hop's message when jumping to it from a trace.
pub const JUMP_CONTEXT: u64 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Queues,
    Groups,
    Exchanges,
    Messages,
    Message,
    Trace,
    /// Everything about one queue (`i`): the backend's description of it.
    Info,
    Help,
}

impl View {
    pub fn scope(self) -> Scope {
        match self {
            View::Queues => Scope::Queues,
            View::Groups => Scope::Groups,
            View::Exchanges => Scope::Exchanges,
            View::Messages => Scope::Messages,
            View::Message => Scope::Message,
            View::Trace => Scope::Trace,
            View::Info => Scope::Info,
            View::Help => Scope::Help,
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            View::Queues => "Queues",
            View::Groups => "Consumer groups",
            View::Exchanges => "Exchanges",
            View::Messages => "Messages",
            View::Message => "Message",
            View::Trace => "Trace",
            View::Info => "Info",
            View::Help => "Help",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Conn {
    Connecting,
    Connected,
    /// Failed; the next attempt is due at `retry_at` (a tick count).
    Lost {
        retry_at: u64,
        failures: u32,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub backend: String,
    /// The broker's product and version once connected, where it says.
    pub server: Option<String>,
    pub target: String,
    pub profile: Option<String>,
    pub read_only: bool,
    pub conn: Conn,
    pub error: Option<String>,
    pub info: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortColumn {
    Name,
    Type,
    Messages,
    Ready,
    Unacked,
    Consumers,
    InRate,
    OutRate,
}

impl SortColumn {
    pub const ALL: [SortColumn; 8] = [
        SortColumn::Name,
        SortColumn::Type,
        SortColumn::Messages,
        SortColumn::Ready,
        SortColumn::Unacked,
        SortColumn::Consumers,
        SortColumn::InRate,
        SortColumn::OutRate,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SortColumn::Name => "name",
            SortColumn::Type => "type",
            SortColumn::Messages => "messages",
            SortColumn::Ready => "ready",
            SortColumn::Unacked => "unacked",
            SortColumn::Consumers => "consumers",
            SortColumn::InRate => "in/s",
            SortColumn::OutRate => "out/s",
        }
    }
}

/// A scrollable list position: the selected row and the first row on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub selected: usize,
    pub offset: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Queues {
    pub list: Vec<QueueSummary>,
    /// Indices into `list` after filter and sort.
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub sort: SortColumn,
    pub descending: bool,
    pub filter: String,
    /// Only the queues an exchange routes to (its name, and theirs), from the exchanges
    /// view; Esc shows all again.
    pub bound_to: Option<(String, std::collections::BTreeSet<String>)>,
    pub pending: Option<ReqId>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub pace: Pace,
}

/// After a listing, timed reloads wait this many times as long as it took.
pub const LISTING_PAUSE: u64 = 4;

/// How long a view's last listing took, and so when the next timed one may start: a
/// listing that takes the broker seconds (tens of thousands of queues, hundreds of
/// consumer groups) is followed by a pause four times as long, so mqscope keeps the
/// broker's API busy a fifth of the time at most. `Ctrl-R` lists at once all the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    pub took_ms: Option<u64>,
    /// The tick before which no timed reload starts.
    pub hold_until: u64,
}

impl Pace {
    /// A listing came back at `tick` after `took_ms`.
    pub fn listed(&mut self, tick: u64, took_ms: u64) {
        self.took_ms = Some(took_ms);
        self.hold_until = tick + took_ms.saturating_mul(LISTING_PAUSE).div_ceil(1000);
    }

    pub fn ready(&self, tick: u64) -> bool {
        tick >= self.hold_until
    }

    /// Seconds from one timed listing to the next, when the listings' own time sets the
    /// pace rather than the refresh interval.
    pub fn slow(&self, refresh_secs: u64) -> Option<u64> {
        let took = self.took_ms?;
        let pace = took.saturating_mul(LISTING_PAUSE + 1).div_ceil(1000);
        (pace > refresh_secs).then_some(pace)
    }

    /// The title's words for the pace: `every 2s`, or `every 22s (listing takes 4.3s)`.
    pub fn label(&self, refresh_secs: u64) -> String {
        match self.slow(refresh_secs) {
            Some(p) => format!(
                "every {p}s (listing takes {:.1}s)",
                self.took_ms.unwrap_or(0) as f64 / 1000.0
            ),
            None => format!("every {refresh_secs}s"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Groups {
    pub list: Vec<ConsumerGroup>,
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub filter: String,
    pub pending: Option<ReqId>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub pace: Pace,
}

/// The exchanges of the vhost, with every binding: the selected exchange's are shown
/// beside the list.
#[derive(Debug, Clone, PartialEq)]
pub struct Exchanges {
    pub list: Vec<ExchangeSummary>,
    pub bindings: Vec<Binding>,
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub filter: String,
    pub pending: Option<ReqId>,
    pub refreshed_at: Option<DateTime<Utc>>,
    pub pace: Pace,
}

impl Exchanges {
    pub fn selected(&self) -> Option<&ExchangeSummary> {
        self.visible
            .get(self.cursor.selected)
            .and_then(|i| self.list.get(*i))
    }
}

/// Which way a page request extends the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageDir {
    Replace,
    /// Replace with the newest messages (a jump to the end).
    End,
    Append,
    Prepend,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Messages {
    pub queue: String,
    pub kind: QueueKind,
    /// Topics: how many partitions, and which one is shown.
    pub partitions: u32,
    pub partition: Option<i32>,
    /// A contiguous run of messages; never more than [`MAX_WINDOW`].
    pub window: Vec<Message>,
    pub visible: Vec<usize>,
    pub cursor: Cursor,
    pub filter: String,
    pub pending: Option<(ReqId, PageDir)>,
    /// The window reaches the head (start) or the tail (end) of the queue.
    pub at_start: bool,
    pub at_end: bool,
    pub notes: Vec<String>,
    pub error: Option<String>,
    /// Where the window was last (re)loaded from, to repeat it after a confirmation.
    pub last_from: PeekFrom,
    /// Peeks of this queue go ahead despite the backend's warning (confirmed by the user;
    /// reset when the queue is left).
    pub force: bool,
    /// Messages marked with space, by key (`replay::message_key`), for replay or delete.
    pub marked: std::collections::BTreeSet<String>,
    /// Opened from a trace: select this message when the page arrives, and open it if it
    /// still carries the traced ID.
    pub jump: Option<Jump>,
}

/// Where a jump from a trace lands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Jump {
    /// The page request that lands it.
    pub req: ReqId,
    /// Queue position or log offset.
    pub position: u64,
    pub id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TracePhase {
    Scanning,
    Done,
    Cancelled,
    Failed,
}

/// A trace of one correlation ID: hops as they are found, in time order, and the graph
/// rows drawn from them.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub id: String,
    pub phase: TracePhase,
    /// The scan under way.
    pub pending: Option<ReqId>,
    /// The live follow under way.
    pub follow: Option<ReqId>,
    pub error: Option<String>,
    pub hops: Vec<Hop>,
    pub rows: Vec<Row>,
    /// Hops came in since `rows` were built (large traces rebuild at most per progress
    /// report, not per hit).
    pub rows_stale: bool,
    /// Hops not kept because the view holds at most [`MAX_HOPS`].
    pub dropped: u64,
    pub skipped: Vec<Skipped>,
    pub queues_total: usize,
    pub queues_done: usize,
    pub scanned: u64,
    pub elapsed_ms: u64,
    pub cursor: Cursor,
}

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadMode {
    Auto,
    Json,
    Text,
    Hex,
}

impl PayloadMode {
    pub fn label(self) -> &'static str {
        match self {
            PayloadMode::Auto => "auto",
            PayloadMode::Json => "json",
            PayloadMode::Text => "text",
            PayloadMode::Hex => "hex",
        }
    }
}

/// What the payload pane shows once the mode is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Text,
    Hex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pane {
    Meta,
    Payload,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MessageDetail {
    pub msg: Option<Message>,
    pub mode: PayloadMode,
    /// Resolved kind and its display lines (empty for hex, which is drawn on demand).
    pub body_kind: BodyKind,
    pub body: Vec<String>,
    /// Properties, headers and dead-letter history as display lines.
    pub meta: Vec<String>,
    pub pane: Pane,
    pub meta_scroll: usize,
    pub body_scroll: usize,
    pub wrap: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputKind {
    Filter,
    Command,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Input {
    pub kind: InputKind,
    pub text: String,
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

/// The info view: one queue described by its backend.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueInfo {
    pub queue: String,
    pub detail: Option<Box<crate::model::QueueDetail>>,
    pub error: Option<String>,
    pub pending: Option<ReqId>,
    pub scroll: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct State {
    pub stack: Vec<View>,
    pub queues: Queues,
    pub groups: Groups,
    pub exchanges: Exchanges,
    pub messages: Messages,
    pub message: MessageDetail,
    pub trace: Trace,
    pub info: QueueInfo,
    pub input: Option<Input>,
    pub confirm: Option<Confirm>,
    pub status: Status,
    pub keymap: Keymap,
    pub has_groups: bool,
    /// The backend lists exchanges and bindings (AMQP brokers).
    pub has_exchanges: bool,
    /// The broker's virtual hosts, once `:vhost` listed them.
    pub vhosts: Vec<String>,
    pub vhosts_pending: Option<ReqId>,
    /// A backend is connected (it may still fail later; see `status.conn`).
    pub backend_ready: bool,
    pub refresh_secs: u64,
    /// Seconds since start, advanced by ticks.
    pub tick: u64,
    pub next_req: ReqId,
    pub quit: bool,
    pub width: u16,
    pub height: u16,
    pub help_scroll: usize,
    /// Where saved messages go.
    pub save_dir: PathBuf,
}

impl State {
    pub fn new(
        backend: &str,
        target: &str,
        profile: Option<String>,
        read_only: bool,
        keymap: Keymap,
    ) -> Self {
        Self {
            stack: vec![View::Queues],
            queues: Queues {
                list: Vec::new(),
                visible: Vec::new(),
                cursor: Cursor::default(),
                sort: SortColumn::Name,
                descending: false,
                filter: String::new(),
                bound_to: None,
                pending: None,
                refreshed_at: None,
                pace: Pace::default(),
            },
            groups: Groups {
                list: Vec::new(),
                visible: Vec::new(),
                cursor: Cursor::default(),
                filter: String::new(),
                pending: None,
                refreshed_at: None,
                pace: Pace::default(),
            },
            exchanges: Exchanges {
                list: Vec::new(),
                bindings: Vec::new(),
                visible: Vec::new(),
                cursor: Cursor::default(),
                filter: String::new(),
                pending: None,
                refreshed_at: None,
                pace: Pace::default(),
            },
            messages: Messages {
                queue: String::new(),
                kind: QueueKind::Queue,
                partitions: 0,
                partition: None,
                window: Vec::new(),
                visible: Vec::new(),
                cursor: Cursor::default(),
                filter: String::new(),
                pending: None,
                at_start: true,
                at_end: false,
                notes: Vec::new(),
                error: None,
                last_from: PeekFrom::Start,
                force: false,
                marked: Default::default(),
                jump: None,
            },
            message: MessageDetail {
                msg: None,
                mode: PayloadMode::Auto,
                body_kind: BodyKind::Text,
                body: Vec::new(),
                meta: Vec::new(),
                pane: Pane::Payload,
                meta_scroll: 0,
                body_scroll: 0,
                wrap: false,
            },
            info: QueueInfo::default(),
            trace: Trace {
                id: String::new(),
                phase: TracePhase::Done,
                pending: None,
                follow: None,
                error: None,
                hops: Vec::new(),
                rows: Vec::new(),
                rows_stale: false,
                dropped: 0,
                skipped: Vec::new(),
                queues_total: 0,
                queues_done: 0,
                scanned: 0,
                elapsed_ms: 0,
                cursor: Cursor::default(),
            },
            input: None,
            confirm: None,
            status: Status {
                backend: backend.to_string(),
                server: None,
                target: target.to_string(),
                profile,
                read_only,
                conn: Conn::Connecting,
                error: None,
                info: None,
            },
            keymap,
            has_groups: false,
            has_exchanges: false,
            vhosts: Vec::new(),
            vhosts_pending: None,
            backend_ready: false,
            refresh_secs: 2,
            tick: 0,
            next_req: 1,
            quit: false,
            width: 100,
            height: 30,
            help_scroll: 0,
            save_dir: std::env::temp_dir(),
        }
    }

    pub fn view(&self) -> View {
        self.stack.last().copied().unwrap_or(View::Queues)
    }

    /// Rows available to a list view: the screen less title, table header, borders, the
    /// hint bar and the status bar.
    /// Seconds between reloads of the current view's list: exchanges and bindings change
    /// rarely and cost a broker more to list, so at most every 10 s.
    pub fn refresh_every(&self) -> u64 {
        match self.view() {
            // Both read the whole vhost's topology: a slower pace on a large broker.
            View::Exchanges | View::Info => self.refresh_secs.max(10),
            _ => self.refresh_secs.max(1),
        }
    }

    pub fn list_rows(&self) -> usize {
        usize::from(self.height.saturating_sub(7)).max(1)
    }

    pub fn selected_queue(&self) -> Option<&QueueSummary> {
        self.queues
            .visible
            .get(self.queues.cursor.selected)
            .and_then(|i| self.queues.list.get(*i))
    }

    /// The hop under the trace view's cursor.
    pub fn selected_hop(&self) -> Option<&Hop> {
        self.trace
            .rows
            .get(self.trace.cursor.selected)
            .and_then(|r| self.trace.hops.get(r.hop))
    }

    pub fn selected_message(&self) -> Option<&Message> {
        self.messages
            .visible
            .get(self.messages.cursor.selected)
            .and_then(|i| self.messages.window.get(*i))
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;

    #[test]
    fn a_listing_paces_the_next_only_when_it_is_slow() {
        let mut p = Pace::default();
        assert!(p.ready(0));
        assert_eq!(p.label(2), "every 2s");
        // 1 s on a 10 s interval (exchanges): the interval rules.
        p.listed(100, 1_000);
        assert!(!p.ready(103) && p.ready(104));
        assert_eq!(p.slow(10), None);
        assert_eq!(p.label(10), "every 10s");
        // 3 s on a 2 s interval: 12 s of pause, 15 s from one start to the next.
        p.listed(200, 3_000);
        assert!(!p.ready(211) && p.ready(212));
        assert_eq!(p.slow(2), Some(15));
        assert_eq!(p.label(2), "every 15s (listing takes 3.0s)");
        // A fast one resets it.
        p.listed(300, 40);
        assert!(p.ready(301));
        assert_eq!(p.label(2), "every 2s");
    }
}
