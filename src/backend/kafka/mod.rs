//! The Kafka backend over librdkafka: topics with watermarks, peeks that only `assign`
//! (no group, no commit), consumer groups with lag, publishing and live tails.
//!
//! librdkafka calls block, so every one runs on the blocking pool with a bounded timeout.

mod advance;
pub mod client;
mod export;
mod groups;
mod peek;
mod publish;
pub mod read;
mod tail;
mod topics;

use super::{
    Advance, Backend, BackendError, BackendInfo, BackendKind, ConnectOptions, ConsumerGroups,
    Export, LiveTail, PeekPage, PeekRequest, Publish, Result, capabilities,
};
use crate::backend::target::KafkaTarget;
use crate::model::{QueueDetail, QueueSummary};
use async_trait::async_trait;
use client::{Ctx, Settings};
use rdkafka::admin::AdminClient;
use rdkafka::consumer::BaseConsumer;
use rdkafka::producer::FutureProducer;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;
use tokio::sync::OnceCell;

/// A connected Kafka cluster. One long-lived group-less consumer answers metadata and
/// offset queries; each peek builds its own reader so reads never share a position.
pub struct KafkaBackend {
    settings: Settings,
    meta: Arc<BaseConsumer<Ctx>>,
    /// Built on first publish; the context is kept to explain delivery failures.
    producer: OnceCell<(FutureProducer<Ctx>, Ctx)>,
    /// Built on first describe, for DescribeConfigs.
    admin: OnceCell<AdminClient<Ctx>>,
    /// Set once the cluster has left DescribeConfigs unanswered, so later describes do
    /// not wait for it again.
    no_configs: AtomicBool,
    /// The throwaway group id readers carry because librdkafka's `assign` needs one.
    reader_group: String,
}

/// A group id no one else uses: the process, the time and a counter.
fn throwaway_group() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "mqscope-peek-{}-{nanos:x}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// Topics whose names start with `__` are the broker's own (offsets, transactions).
pub fn is_internal(topic: &str) -> bool {
    topic.starts_with("__")
}

impl KafkaBackend {
    /// Connect and check the cluster answers, within the settings' timeout.
    pub async fn connect(settings: Settings) -> Result<Self> {
        let ctx = Ctx::default();
        let shown = settings.shown();
        let meta: BaseConsumer<Ctx> = settings
            .querier(None)
            .create_with_context(ctx)
            .map_err(|e| BackendError::InvalidArgument(format!("kafka client settings: {e}")))?;
        let backend = Self {
            settings,
            meta: Arc::new(meta),
            producer: OnceCell::new(),
            admin: OnceCell::new(),
            no_configs: AtomicBool::new(false),
            reader_group: throwaway_group(),
        };
        backend.metadata(None).await.map_err(|e| match e {
            BackendError::Broker(reason) => BackendError::Unreachable {
                target: shown,
                reason,
            },
            other => other,
        })?;
        Ok(backend)
    }

    /// How long one broker operation, or a read without progress, may take.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.settings.timeout = timeout;
        self
    }

    /// The group id peeks and tails identify with. It is never joined and nothing is
    /// ever committed under it; tests check exactly that.
    pub fn reader_group(&self) -> &str {
        &self.reader_group
    }

    fn shown(&self) -> String {
        self.settings.shown()
    }

    /// Run a blocking librdkafka call on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&BaseConsumer<Ctx>, Duration, &str) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let meta = Arc::clone(&self.meta);
        let timeout = self.settings.timeout;
        let shown = self.shown();
        tokio::task::spawn_blocking(move || f(&meta, timeout, &shown))
            .await
            .map_err(|e| BackendError::Broker(format!("kafka worker failed: {e}")))?
    }
}

#[async_trait]
impl Backend for KafkaBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Kafka,
            target: self.shown(),
        }
    }

    async fn list_queues(&self) -> Result<Vec<QueueSummary>> {
        self.queue_listing().await
    }

    async fn describe_queue(&self, name: &str) -> Result<QueueDetail> {
        self.queue_detail(name).await
    }

    async fn peek(&self, name: &str, req: &PeekRequest) -> Result<PeekPage> {
        self.peek_page(name, req).await
    }

    capabilities! {
        publisher: Publish, consumer_groups: ConsumerGroups, live_tail: LiveTail,
        exporter: Export, advancer: Advance,
    }
}

/// Open a Kafka target with the profile's settings from `opts`.
pub async fn connect(target: &KafkaTarget, opts: &ConnectOptions) -> Result<Arc<dyn Backend>> {
    let settings = Settings::from_target(target, &opts.settings)?;
    Ok(Arc::new(KafkaBackend::connect(settings).await?))
}
