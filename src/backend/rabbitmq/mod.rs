//! RabbitMQ: listing through the management API, reading and publishing over AMQP 0-9-1
//! with lapin. Peeks never lose, reorder or dead-letter a message: classic queues are read
//! by a consumer whose messages all go back with one `basic.nack(multiple, requeue)`;
//! quorum queues with a delivery limit are read the same way on RabbitMQ 4.3+, where a
//! return by nack does not count towards the limit, and refused unless forced before 4.3,
//! where every return counts; streams are read by offset, which removes nothing.

mod connect;
mod consumer;
pub mod convert;
mod errors;
mod firehose;
pub mod mgmt;
mod peek;
mod publish;
mod queues;
mod stream;
mod tail;
mod take;
mod tls;

use connect::Login;
use errors::{amqp_error, permission_refused};
use queues::Listing;
pub use tls::tls_config;

use super::{
    Backend, BackendError, BackendInfo, BackendKind, Browse, LiveTail, PeekPage, PeekRequest,
    PeekSink, Publish, Purge, Result, Take, capabilities,
};
use crate::backend::target::AmqpTarget;
use crate::model::broker::BrokerVersion;
use crate::model::{Message, QueueDetail, QueueSummary};
use async_trait::async_trait;
use lapin::Connection;
use lapin::options::QueuePurgeOptions;
use lapin::types::ShortString;
use mgmt::Mgmt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// How long the goodbye to the broker may take when a command is done.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A consumer's prefetch is a 16-bit number: the deepest a queue can be peeked.
pub const MAX_PEEK_DEPTH: u64 = 65_535;

pub struct RabbitBackend {
    target: AmqpTarget,
    login: Login,
    shown: String,
    mgmt: Mgmt,
    conn: Mutex<Option<Arc<Connection>>>,
    /// A channel in confirm mode, kept for publishing.
    publish_ch: Mutex<Option<publish::Publishing>>,
    /// CA chain and client identity for amqps://, from the profile.
    tls: lapin::tcp::OwnedTLSConfig,
    peek_seq: std::sync::atomic::AtomicU64,
    /// The last listing of a large vhost, reused while nothing changed.
    listing: Mutex<Option<Listing>>,
    /// Full listings and reused ones, for the tests that check the reuse.
    listing_counts: [std::sync::atomic::AtomicU64; 2],
    /// The broker's product and version, asked once (the management overview).
    version: tokio::sync::OnceCell<BrokerVersion>,
    /// The name every connection of this backend gives the broker (`connection_name`):
    /// unique to it, so a live tail can tell mqscope's own reads from consumers'.
    client_name: String,
}

impl RabbitBackend {
    /// How many queue listings were fetched in full, and how many reused unchanged.
    pub fn listing_counts(&self) -> (u64, u64) {
        let n = |i: usize| self.listing_counts[i].load(std::sync::atomic::Ordering::Relaxed);
        (n(0), n(1))
    }
}

fn short(s: &str) -> Result<ShortString> {
    ShortString::try_new(s.to_string()).map_err(|_| {
        BackendError::InvalidArgument(format!("\"{s}\" is longer than AMQP's 255-byte names"))
    })
}

#[async_trait]
impl Backend for RabbitBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::RabbitMq,
            target: self.shown.clone(),
        }
    }

    async fn list_queues(&self) -> Result<Vec<QueueSummary>> {
        self.queue_listing().await
    }

    async fn describe_queue(&self, name: &str) -> Result<QueueDetail> {
        self.queue_detail(name).await
    }

    async fn peek(&self, name: &str, req: &PeekRequest) -> Result<PeekPage> {
        let mut messages = Vec::new();
        let notes = self
            .peek_with(name, req, &mut PeekSink::Collect(&mut messages))
            .await?;
        Ok(PeekPage { messages, notes })
    }

    async fn peek_into(
        &self,
        name: &str,
        req: &PeekRequest,
        sink: &tokio::sync::mpsc::Sender<Message>,
    ) -> Result<Vec<String>> {
        self.peek_with(name, req, &mut PeekSink::Send(sink)).await
    }

    capabilities! {
        publisher: Publish, purger: Purge, live_tail: LiveTail, taker: Take, browser: Browse,
    }

    fn peek_depth(&self) -> Option<u64> {
        Some(MAX_PEEK_DEPTH)
    }

    async fn close(&self) {
        // Without connection.close RabbitMQ logs a warning, "client unexpectedly closed TCP
        // connection", for every command run: noise in exactly the log an operator reads.
        // All of it within CLOSE_TIMEOUT: a reconnect in progress holds the lock for up to
        // CONNECT_TIMEOUT, and quitting must not wait for it.
        let bye = async {
            let conn = self.conn.lock().await.take();
            if let Some(conn) = conn
                && conn.status().connected()
            {
                let _ = conn.close(200, "mqscope done".into()).await;
            }
        };
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, bye).await;
    }

    async fn server(&self) -> Option<BrokerVersion> {
        self.broker_version().await.ok()
    }
}

#[async_trait]
impl Browse for RabbitBackend {
    async fn vhosts(&self) -> Result<Vec<crate::model::topology::VhostSummary>> {
        self.mgmt.vhosts().await
    }

    async fn exchanges(&self) -> Result<Vec<crate::model::topology::ExchangeSummary>> {
        Ok(self.mgmt.routing(self.vhost()).await?.0)
    }

    async fn bindings(&self) -> Result<Vec<crate::model::topology::Binding>> {
        self.mgmt.bindings(self.vhost()).await
    }

    /// One read of the bindings, so the counts and the list agree.
    async fn routing(&self) -> Result<crate::model::topology::Routing> {
        self.mgmt.routing(self.vhost()).await
    }
}

#[async_trait]
impl Purge for RabbitBackend {
    async fn purge(&self, queue: &str) -> Result<u64> {
        let ch = self.channel().await?;
        let n = ch
            .queue_purge(short(queue)?, QueuePurgeOptions::default())
            .await
            .map_err(|e| amqp_error(&self.shown, self.vhost(), &e))?;
        let _ = ch.close(200, "purged".into()).await;
        Ok(u64::from(n))
    }
}
