//! The backend contract: a small base every broker offers (list, describe, peek) plus
//! optional capabilities (publish, purge, consumer groups, live tail) that callers check
//! for. What they take and give back is beside them (`peek.rs`, `publish.rs`, `tail.rs`,
//! `info.rs`); opening one is in `connect.rs`, its errors in `error.rs`, what it connects to
//! in `target.rs`; the schema registry client in `registry/`; each broker's implementation is in a folder of its own.

// What a backend handles comes from a broker, a file or a user: a surprise there is an
// error to report, never a panic (tests may unwrap: see clippy.toml).
#![deny(clippy::unwrap_used)]

mod connect;
mod describe;
mod error;
mod info;
pub mod kafka;
pub mod local;
mod peek;
mod publish;
pub mod rabbitmq;
pub mod registry;
mod tail;
pub mod target;

pub use connect::{
    ConnectOptions, ConnectSettings, PasswordLookup, connect, kafka_properties_shown,
};
pub use describe::describe_full;
pub use error::{BackendError, Result};
pub use info::{BackendInfo, BackendKind};
pub use peek::{PeekFrom, PeekPage, PeekRequest, PeekSink, merge_partitions};
pub use publish::{Destination, PendingConfirm, PublishReceipt};
pub use tail::{Delivered, Tail, TailEvent, TailFilter};

use crate::model::{ConsumerGroup, Message, QueueDetail, QueueSummary};
use async_trait::async_trait;
use tokio::sync::mpsc;

/// The capability getters of [`Backend`]: `default:` declares them in the trait, answering
/// None; a backend lists those it implements itself (`capabilities!(publisher: Publish)`),
/// each answering `Some(self)`.
macro_rules! capabilities {
    (default: $($getter:ident: $cap:ident),* $(,)?) => {
        $(
            #[doc = concat!("The [`", stringify!($cap), "`] capability, where the backend has it.")]
            fn $getter(&self) -> Option<&dyn $cap> {
                None
            }
        )*
    };
    ($($getter:ident: $cap:ident),* $(,)?) => {
        $(
            fn $getter(&self) -> Option<&dyn $cap> {
                Some(self)
            }
        )*
    };
}
pub(crate) use capabilities;

/// The broker-neutral base every backend implements.
#[async_trait]
pub trait Backend: Send + Sync {
    fn info(&self) -> BackendInfo;

    async fn list_queues(&self) -> Result<Vec<QueueSummary>>;

    async fn describe_queue(&self, name: &str) -> Result<QueueDetail>;

    /// Read a window of messages without consuming, committing or reordering anything.
    async fn peek(&self, name: &str, req: &PeekRequest) -> Result<PeekPage>;

    /// The same window as `peek`, each message sent to `sink` as soon as it is read;
    /// returns the page's notes. By default the whole page is read first.
    async fn peek_into(
        &self,
        name: &str,
        req: &PeekRequest,
        sink: &mpsc::Sender<Message>,
    ) -> Result<Vec<String>> {
        let page = self.peek(name, req).await?;
        for m in page.messages {
            if sink.send(m).await.is_err() {
                break;
            }
        }
        Ok(page.notes)
    }

    capabilities! {
        default: publisher: Publish, purger: Purge, consumer_groups: ConsumerGroups,
        live_tail: LiveTail, exporter: Export, taker: Take, browser: Browse, advancer: Advance,
    }

    /// How many messages from its head a queue can be peeked (RabbitMQ: AMQP's prefetch
    /// limit); None for no limit.
    fn peek_depth(&self) -> Option<u64> {
        None
    }

    /// Say goodbye to the broker before the process ends, so it logs a closed session and
    /// not a lost client. Best effort: a broker already gone is not an error here.
    async fn close(&self) {}

    /// The broker's product and version, where the backend can tell (RabbitMQ).
    async fn server(&self) -> Option<crate::model::broker::BrokerVersion> {
        None
    }
}

/// Capability: move past a log's records once they are dealt with, for a replay asked to
/// (logs are never modified otherwise). `upto` holds, per partition, the first offset to
/// keep.
#[async_trait]
pub trait Advance: Send + Sync {
    /// Move `group`'s committed offsets on `topic` forward to `upto` (never backwards); returns
    /// per partition the offset before (None: none committed) and after.
    async fn commit_group(
        &self,
        topic: &str,
        group: &str,
        upto: &[(i32, i64)],
    ) -> Result<Vec<(i32, Option<i64>, i64)>>;

    /// Delete `topic`'s records below `upto` (Kafka's DeleteRecords); brokers without it
    /// answer `Unsupported`.
    async fn delete_records(&self, topic: &str, upto: &[(i32, i64)]) -> Result<()>;
}

/// Capability: publish a message (properties, headers, payload and key from `msg`) and
/// return only once the broker has confirmed it. An unroutable message is an error.
#[async_trait]
pub trait Publish: Send + Sync {
    async fn publish(&self, dest: &Destination, msg: &Message) -> Result<PublishReceipt>;

    /// Publish many, one result per item in order. Backends that can pipeline (send all,
    /// then collect confirms) override this; the default sends one at a time.
    async fn publish_batch(&self, items: &[(Destination, Message)]) -> Vec<Result<PublishReceipt>> {
        let mut out = Vec::with_capacity(items.len());
        for (dest, msg) in items {
            out.push(self.publish(dest, msg).await);
        }
        out
    }

    /// Send many in order without waiting for the broker: one future per item resolves
    /// with its confirm. Everything is sent when this returns, so a later call's messages
    /// follow these. Backends without pipelining publish (and confirm) one at a time.
    async fn send_batch(&self, items: &[(Destination, Message)]) -> Vec<PendingConfirm> {
        self.publish_batch(items)
            .await
            .into_iter()
            .map(|r| Box::pin(std::future::ready(r)) as PendingConfirm)
            .collect()
    }
}

/// Capability: remove every ready message from a queue, returning how many went.
#[async_trait]
pub trait Purge: Send + Sync {
    async fn purge(&self, queue: &str) -> Result<u64>;
}

/// Capability: consumer groups with committed offsets and lag.
#[async_trait]
pub trait ConsumerGroups: Send + Sync {
    async fn list_groups(&self) -> Result<Vec<ConsumerGroup>>;

    /// One group by name, with its committed offsets and lag (a group with none has no
    /// partitions). Brokers that cannot list groups may still answer this (Kafka's
    /// OffsetFetch); by default it is looked up in the listing.
    async fn group(&self, name: &str) -> Result<ConsumerGroup> {
        let listed = self.list_groups().await?;
        Ok(listed
            .into_iter()
            .find(|g| g.name == name)
            .unwrap_or_else(|| ConsumerGroup {
                name: name.to_string(),
                state: "unknown".into(),
                members: 0,
                topics: Vec::new(),
                lag: 0,
                partitions: Vec::new(),
            }))
    }
}

/// Capability: follow new messages without disturbing delivery.
#[async_trait]
pub trait LiveTail: Send + Sync {
    async fn tail(&self, filter: &TailFilter) -> Result<Tail>;

    /// [`LiveTail::tail`], a log's partitions named in `resume` (topic, partition, the first
    /// offset not yet seen, as a recorder stored it) read from there, clamped to what the
    /// partition still holds. Queue brokers have nothing to resume: a plain tail.
    async fn tail_from(&self, filter: &TailFilter, resume: &[(String, i32, i64)]) -> Result<Tail> {
        let _ = resume;
        self.tail(filter).await
    }

    /// Events the broker itself kept from before any tail was opened, oldest first: the
    /// built-in demo keeps its history, so its journeys can be recorded after the fact.
    /// Real brokers keep none.
    fn kept(&self) -> Vec<TailEvent> {
        Vec::new()
    }
}

/// Capability: stream every message of a log, all partitions at once, in the order they
/// arrive (not merged by time), up to the end as it was when the export started. Messages
/// travel in batches (a hand-off per message costs more than the message); memory is
/// bounded by the channel: the export waits while the receiver is behind.
#[async_trait]
pub trait Export: Send + Sync {
    /// Send every message of `name` (one partition, or all) from `from` (each partition's
    /// start, an offset, or each partition's first record at or after a time; `Last` is
    /// refused) into `into` in batches of at most `batch`; returns how many were sent.
    /// Stops early, without error, when the receiver is dropped.
    async fn export(
        &self,
        name: &str,
        partition: Option<i32>,
        from: &PeekFrom,
        batch: usize,
        into: mpsc::Sender<Vec<Message>>,
    ) -> Result<u64>;

    /// Like [`Export::export`] over every partition, but only the messages `keep` accepts
    /// are sent: one batch (often empty) for every `batch` messages read and one for the
    /// rest, so the receiver can count progress; returns how many were read. The filter
    /// runs where the messages are read, so the ones it drops never cross threads (a trace
    /// of a large topic keeps a handful of a million).
    async fn export_matching(
        &self,
        name: &str,
        from: &PeekFrom,
        batch: usize,
        keep: Keep,
        into: mpsc::Sender<Vec<Message>>,
    ) -> Result<u64>;
}

/// Which messages an [`Export::export_matching`] sends: asked of each record as read, before
/// it is turned into a [`Message`].
pub type Keep = std::sync::Arc<dyn Fn(&dyn crate::model::MessageView) -> bool + Send + Sync>;

/// A message delivered to a [`TakeSession`] and not yet settled: until it is acked it
/// still belongs to the queue, and goes back to its place if the session ends any other way.
#[derive(Debug, Clone)]
pub struct Taken {
    pub tag: u64,
    pub message: Message,
}

/// Capability: take messages out of a queue under explicit control, for replays, deletes
/// and purges that must never lose one. Queue brokers only; logs are never modified.
#[async_trait]
pub trait Take: Send + Sync {
    /// Open a session over `queue`. It delivers, in queue order, at most the number of
    /// messages the queue holds now (so a queue that refills as fast as it drains still
    /// ends). `force` allows it on a quorum queue whose delivery limit a return would touch.
    async fn take(&self, queue: &str, force: bool) -> Result<Box<dyn TakeSession>>;

    /// The exchanges, bindings and queues the broker routes with (the queue's virtual host),
    /// so a replay can tell where a message will land before it publishes it.
    async fn topology(&self) -> Result<crate::model::topology::Topology>;
}

/// Capability: browse an AMQP broker's routing: its virtual hosts, and the exchanges and
/// bindings of the one connected to. Logs (Kafka) have none of these.
#[async_trait]
pub trait Browse: Send + Sync {
    /// The virtual hosts this user may see, with their message totals.
    async fn vhosts(&self) -> Result<Vec<crate::model::topology::VhostSummary>>;
    /// The exchanges of the connected virtual host, the default exchange first.
    async fn exchanges(&self) -> Result<Vec<crate::model::topology::ExchangeSummary>>;
    /// The bindings of the connected virtual host, the default exchange's implicit ones
    /// left out.
    async fn bindings(&self) -> Result<Vec<crate::model::topology::Binding>>;

    /// Both at once, for a view that shows the one beside the other.
    async fn routing(&self) -> Result<crate::model::topology::Routing> {
        tokio::try_join!(self.exchanges(), self.bindings())
    }
}

/// One take session: see [`Take`]. Every path out of it must end in [`TakeSession::release`]
/// (dropping it releases too, on a best-effort basis, as a dropped connection would).
#[async_trait]
pub trait TakeSession: Send {
    /// How many messages the queue held when the session opened: the most it delivers.
    fn depth(&self) -> u64;

    /// The next messages, at most `max`; empty at the end (all `depth` delivered, or none
    /// arrived within the backend's idle time).
    async fn next(&mut self, max: usize) -> Result<Vec<Taken>>;

    /// Remove these messages from the queue for good.
    async fn ack(&mut self, tags: &[u64]) -> Result<()>;

    /// Give every delivered message that was not acked back to the queue, in its original
    /// place, and end the session.
    async fn release(self: Box<Self>) -> Result<()>;
}
