//! Everything the TUI shows, as plain data. Views are named like their drawing code:
//! `state.queues` is drawn by `ui::queues` and changed by `update::queues`.

mod confirm;
mod exchanges;
mod groups;
mod info;
mod list;
mod message;
mod messages;
mod pace;
mod pending;
mod queues;
mod trace;

// `Effect` lives in `msg` with `Msg`; it is named here too, where the worker and the
// tests have always found it.
pub use super::msg::Effect;
pub use confirm::*;
pub use exchanges::*;
pub use groups::*;
pub use info::*;
pub use list::*;
pub use message::*;
pub use messages::*;
pub use pace::*;
pub use pending::*;
pub use queues::*;
pub use trace::*;

use super::keymap::{Keymap, Scope};
use crate::backend::PeekFrom;
use crate::model::QueueKind;
use std::path::PathBuf;

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

/// A scrollable list position: the selected row and the first row on screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub selected: usize,
    pub offset: usize,
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
    pub vhosts_pending: Pending,
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
    /// How payloads are decoded for the message view (the profile's rules and schemas).
    pub decoding: Decoding,
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
            queues: Queues::new(QueueOrder {
                sort: SortColumn::Name,
                descending: false,
                bound_to: None,
            }),
            groups: Groups::new(()),
            exchanges: Exchanges::new(Vec::new()),
            messages: Messages {
                queue: String::new(),
                kind: QueueKind::Queue,
                partitions: 0,
                partition: None,
                window: Vec::new(),
                visible: Vec::new(),
                cursor: Cursor::default(),
                filter: String::new(),
                pending: Pending::default(),
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
                decoded: None,
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
                pending: Pending::default(),
                follow: Pending::default(),
                error: None,
                hops: Vec::new(),
                rows: Vec::new(),
                rows_stale: false,
                dropped: 0,
                skipped: Vec::new(),
                notes: Vec::new(),
                queues_total: 0,
                queues_done: 0,
                scanned: 0,
                elapsed_ms: 0,
                cursor: Cursor::default(),
                routes: Vec::new(),
                routes_basis: None,
                routes_notes: Vec::new(),
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
            vhosts_pending: Pending::default(),
            backend_ready: false,
            refresh_secs: 2,
            tick: 0,
            next_req: 1,
            quit: false,
            width: 100,
            height: 30,
            help_scroll: 0,
            save_dir: std::env::temp_dir(),
            decoding: Decoding::default(),
        }
    }

    pub fn view(&self) -> View {
        self.stack.last().copied().unwrap_or(View::Queues)
    }

    /// Seconds between reloads of the current view's list: exchanges and bindings change
    /// rarely and cost a broker more to list, so at most every 10 s.
    pub fn refresh_every(&self) -> u64 {
        match self.view() {
            // Both read the whole vhost's topology: a slower pace on a large broker.
            View::Exchanges | View::Info => self.refresh_secs.max(10),
            _ => self.refresh_secs.max(1),
        }
    }

    /// Rows available to a list view: the screen less title, table header, borders, the
    /// hint bar and the status bar.
    pub fn list_rows(&self) -> usize {
        usize::from(self.height.saturating_sub(7)).max(1)
    }
}
