//! The built-in local broker as a backend: no server, everything in process. `local://demo`
//! starts the demo scenario, `local://empty` an empty broker.

pub mod broker;
pub mod clock;
pub mod demo;

use super::{
    Backend, BackendError, BackendInfo, BackendKind, Browse, ConnectOptions, ConsumerGroups,
    Delivered, Destination, LiveTail, PeekFrom, PeekPage, PeekRequest, Publish, PublishReceipt,
    Purge, Result, Tail, TailEvent, TailFilter, Take, TakeSession, Taken, capabilities,
};
use crate::backend::target::LocalTarget;
use crate::model::broker::quorum_refusal;
use crate::model::{ConsumerGroup, Message, QueueDetail, QueueKind, QueueSummary};
use async_trait::async_trait;
use broker::{BrokerError, LocalBroker, LocalConfig, Outgoing, TapEvent};
use clock::Clock;
use demo::Demo;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, mpsc};

impl From<BrokerError> for BackendError {
    fn from(e: BrokerError) -> Self {
        match e {
            BrokerError::NoQueue(q) | BrokerError::NoTopic(q) => BackendError::QueueNotFound(q),
            BrokerError::NoExchange(x) => BackendError::ExchangeNotFound(x),
            BrokerError::NoPartition { .. } | BrokerError::Invalid(_) => {
                BackendError::InvalidArgument(e.to_string())
            }
            other => BackendError::Broker(other.to_string()),
        }
    }
}

/// A backend over a [`LocalBroker`], optionally driving the demo's live traffic.
pub struct LocalBackend {
    broker: Arc<LocalBroker>,
    target: String,
    simulation: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for LocalBackend {
    fn drop(&mut self) {
        if let Some(sim) = self.simulation.take() {
            sim.abort();
        }
    }
}

impl LocalBackend {
    pub fn new(broker: Arc<LocalBroker>, target: impl Into<String>) -> Self {
        Self {
            broker,
            target: target.into(),
            simulation: None,
        }
    }

    pub fn broker(&self) -> &Arc<LocalBroker> {
        &self.broker
    }

    fn summary(&self, name: &str) -> Result<QueueSummary> {
        self.broker
            .summaries()
            .into_iter()
            .find(|s| s.name == name)
            .ok_or_else(|| BackendError::QueueNotFound(name.to_string()))
    }

    fn peek_queue(&self, name: &str, req: &PeekRequest) -> Result<PeekPage> {
        let mut notes = Vec::new();
        if req.partition.is_some() {
            notes.push(format!("\"{name}\" is a queue; the partition was ignored"));
        }
        let len = self.broker.queue_len(name)?;
        let from = match &req.from {
            PeekFrom::Start => 0,
            PeekFrom::Position(p) => usize::try_from(*p).unwrap_or(usize::MAX),
            PeekFrom::Time(t) => self.broker.queue_index_at(name, t.timestamp_millis())?.0,
            PeekFrom::Last => len.saturating_sub(req.limit),
        };
        let messages = self.broker.peek_queue(name, from, req.limit)?;
        Ok(PeekPage { messages, notes })
    }

    fn peek_topic(&self, name: &str, req: &PeekRequest) -> Result<PeekPage> {
        let parts = self.broker.partitions(name)?;
        let mut notes = Vec::new();
        let chosen: Vec<_> = match req.partition {
            Some(p) => {
                let info = parts.iter().find(|i| i.partition == p).ok_or_else(|| {
                    BackendError::InvalidArgument(format!(
                        "topic \"{name}\" has no partition {p} (it has {})",
                        parts.len()
                    ))
                })?;
                vec![info.clone()]
            }
            None => parts,
        };
        let mut all: Vec<Message> = Vec::new();
        for p in &chosen {
            let start = match &req.from {
                PeekFrom::Start => p.low,
                PeekFrom::Position(o) => PeekFrom::log_offset(*o, p.partition, p.low, &mut notes),
                PeekFrom::Time(t) => {
                    self.broker
                        .offset_for_time(name, p.partition, t.timestamp_millis())?
                }
                PeekFrom::Last => (p.high - req.limit as i64).max(p.low),
            };
            all.extend(self.broker.fetch(name, p.partition, start, req.limit)?);
        }
        if chosen.len() > 1 {
            all = crate::backend::merge_partitions(all, req.from == PeekFrom::Last, req.limit);
        }
        all.truncate(req.limit);
        Ok(PeekPage {
            messages: all,
            notes,
        })
    }
}

#[async_trait]
impl Backend for LocalBackend {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Local,
            target: self.target.clone(),
        }
    }

    async fn list_queues(&self) -> Result<Vec<QueueSummary>> {
        Ok(self.broker.summaries())
    }

    async fn describe_queue(&self, name: &str) -> Result<QueueDetail> {
        let summary = self.summary(name)?;
        let mut detail = QueueDetail::new(summary);
        if detail.summary.kind == QueueKind::Topic {
            detail.partitions_detail = self.broker.partitions(name)?;
        } else {
            detail.bindings = self.broker.bindings_to(name);
        }
        Ok(detail)
    }

    async fn peek(&self, name: &str, req: &PeekRequest) -> Result<PeekPage> {
        if self.broker.has_topic(name) {
            self.peek_topic(name, req)
        } else if self.broker.has_queue(name) {
            self.peek_queue(name, req)
        } else {
            Err(BackendError::QueueNotFound(name.to_string()))
        }
    }

    capabilities! {
        publisher: Publish, purger: Purge, consumer_groups: ConsumerGroups, live_tail: LiveTail,
        taker: Take, browser: Browse,
    }
}

/// The local broker has one virtual host, `/`, and keeps everything in memory: nothing is
/// durable, and it counts no rates for exchanges.
#[async_trait]
impl Browse for LocalBackend {
    async fn vhosts(&self) -> Result<Vec<crate::model::topology::VhostSummary>> {
        let queues = self.list_queues().await?;
        let sum = |f: fn(&QueueSummary) -> Option<u64>| {
            Some(
                queues
                    .iter()
                    .filter(|q| q.kind == QueueKind::Queue)
                    .filter_map(f)
                    .sum(),
            )
        };
        Ok(vec![crate::model::topology::VhostSummary {
            name: "/".into(),
            messages: sum(|q| q.messages),
            ready: sum(|q| q.ready),
            unacked: sum(|q| q.unacked),
            tracing: false,
            description: Some("the built-in local broker".into()),
            default_queue_type: None,
        }])
    }

    async fn exchanges(&self) -> Result<Vec<crate::model::topology::ExchangeSummary>> {
        let t = self.broker.topology();
        let default = crate::model::topology::Exchange {
            name: String::new(),
            kind: crate::model::topology::ExchangeKind::Direct,
        };
        let mut out: Vec<_> = std::iter::once(&default)
            .chain(t.exchanges.iter())
            .map(|e| crate::model::topology::ExchangeSummary {
                name: e.name.clone(),
                kind: e.kind.as_str().into(),
                durable: false,
                auto_delete: false,
                internal: false,
                alternate_exchange: None,
                policy: None,
                arguments: Default::default(),
                publish_in_rate: None,
                publish_out_rate: None,
                bindings: t.bindings.iter().filter(|b| b.source == e.name).count(),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn bindings(&self) -> Result<Vec<crate::model::topology::Binding>> {
        Ok(self.broker.topology().bindings)
    }
}

#[async_trait]
impl Take for LocalBackend {
    async fn take(&self, queue: &str, force: bool) -> Result<Box<dyn TakeSession>> {
        if self.broker.has_topic(queue) {
            return Err(BackendError::Unsupported {
                what: format!("taking messages out of topic \"{queue}\" (logs are never modified)"),
                backend: "local",
            });
        }
        let args = self
            .broker
            .queue_args(queue)
            .ok_or_else(|| BackendError::QueueNotFound(queue.to_string()))?;
        if let (broker::QueueType::Quorum, Some(limit), false) =
            (args.queue_type, args.delivery_limit, force)
        {
            return Err(BackendError::Refused(quorum_refusal(queue, limit)));
        }
        let depth = self.broker.queue_len(queue)? as u64;
        Ok(Box::new(LocalTake {
            broker: Arc::clone(&self.broker),
            queue: queue.to_string(),
            depth,
            delivered: 0,
            unsettled: Default::default(),
        }))
    }

    async fn topology(&self) -> Result<crate::model::topology::Topology> {
        Ok(self.broker.topology())
    }
}

/// A take session on the local broker: `basic.get` without auto-ack, settled by tag.
struct LocalTake {
    broker: Arc<LocalBroker>,
    queue: String,
    depth: u64,
    delivered: u64,
    unsettled: std::collections::BTreeSet<u64>,
}

impl LocalTake {
    fn give_back(&mut self) -> Result<()> {
        let mut first_error = None;
        for tag in std::mem::take(&mut self.unsettled) {
            if let Err(e) = self.broker.nack(tag, true) {
                first_error.get_or_insert(BackendError::from(e));
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

impl Drop for LocalTake {
    fn drop(&mut self) {
        let _ = self.give_back();
    }
}

#[async_trait]
impl TakeSession for LocalTake {
    fn depth(&self) -> u64 {
        self.depth
    }

    async fn next(&mut self, max: usize) -> Result<Vec<Taken>> {
        let mut out = Vec::new();
        while out.len() < max && self.delivered < self.depth {
            let Some(d) = self.broker.get(&self.queue, false)? else {
                break;
            };
            let mut message = d.message;
            message.position = self.delivered;
            self.delivered += 1;
            self.unsettled.insert(d.tag);
            out.push(Taken {
                tag: d.tag,
                message,
            });
        }
        Ok(out)
    }

    async fn ack(&mut self, tags: &[u64]) -> Result<()> {
        for tag in tags {
            self.broker.ack(*tag)?;
            self.unsettled.remove(tag);
        }
        Ok(())
    }

    async fn release(mut self: Box<Self>) -> Result<()> {
        self.give_back()
    }
}

#[async_trait]
impl Publish for LocalBackend {
    async fn publish(&self, dest: &Destination, msg: &Message) -> Result<PublishReceipt> {
        match dest {
            Destination::Exchange {
                exchange,
                routing_key,
            } => {
                let out = Outgoing {
                    properties: msg.properties.clone(),
                    headers: msg.headers.clone(),
                    payload: msg.payload.clone(),
                };
                // Check routing first so an unroutable message is refused, not dropped.
                let routed = self.broker.publish_mandatory(exchange, routing_key, out)?;
                if routed.is_empty() {
                    return Err(BackendError::Unroutable(format!(
                        "no queue took it (exchange \"{exchange}\", routing key \"{routing_key}\": no binding matches, or the queue is full and rejects publishes)"
                    )));
                }
                Ok(PublishReceipt {
                    routed_to: routed,
                    ..PublishReceipt::default()
                })
            }
            Destination::Topic { topic, partition } => {
                let (p, o) = self.broker.produce(
                    topic,
                    *partition,
                    msg.key.clone(),
                    msg.headers.clone(),
                    msg.payload.clone(),
                )?;
                Ok(PublishReceipt {
                    routed_to: vec![topic.clone()],
                    partition: Some(p),
                    offset: Some(o),
                })
            }
        }
    }
}

#[async_trait]
impl Purge for LocalBackend {
    async fn purge(&self, queue: &str) -> Result<u64> {
        if self.broker.has_topic(queue) {
            return Err(BackendError::Unsupported {
                what: format!("purging topic \"{queue}\""),
                backend: "local",
            });
        }
        Ok(self.broker.purge(queue)?)
    }
}

#[async_trait]
impl ConsumerGroups for LocalBackend {
    async fn list_groups(&self) -> Result<Vec<ConsumerGroup>> {
        Ok(self.broker.groups())
    }
}

#[async_trait]
impl LiveTail for LocalBackend {
    async fn tail(&self, filter: &TailFilter) -> Result<Tail> {
        let mut events = self.broker.subscribe();
        let (tx, rx) = mpsc::channel(1024);
        let sources = filter.sources.clone();
        let deliveries = filter.deliveries;
        tokio::spawn(async move {
            loop {
                let item = match events.recv().await {
                    Ok(TapEvent {
                        message,
                        delivery: Some(delivery),
                        ..
                    }) if deliveries => Ok(TailEvent::Delivery(Delivered { delivery, message })),
                    Ok(ev)
                        if ev.delivery.is_none()
                            && (sources.is_empty() || sources.contains(&ev.source)) =>
                    {
                        Ok(TailEvent::Message(ev.message))
                    }
                    Ok(_) => continue,
                    Err(broadcast::error::RecvError::Lagged(n)) => Err(BackendError::Behind {
                        skipped: n,
                        why: "messages the demo broker's event buffer moved on from".into(),
                    }),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                if tx.send(item).await.is_err() {
                    return;
                }
            }
        });
        Ok(Tail {
            events: rx,
            notes: Vec::new(),
        })
    }

    fn kept(&self) -> Vec<TailEvent> {
        self.broker
            .kept_events()
            .into_iter()
            .map(|ev| match ev.delivery {
                Some(delivery) => TailEvent::Delivery(Delivered {
                    delivery,
                    message: ev.message,
                }),
                None => TailEvent::Message(ev.message),
            })
            .collect()
    }
}

/// Tap events the demo keeps: its ten minutes of history make about 24,000 (publishes,
/// deliveries, dead-letterings, records; 60 MB measured), and the live demo adds about 40 a
/// second, so the oldest go after about ten minutes more.
const DEMO_KEPT_EVENTS: usize = 50_000;

/// Open a local target: `demo` (with its seed and clock) or `empty`.
pub fn connect(target: &LocalTarget, opts: &ConnectOptions) -> Result<Arc<dyn Backend>> {
    let shown = target.to_string();
    match target.scenario.as_str() {
        "demo" => {
            // The demo keeps its own history of events, so a trace can tell the whole
            // journey of an order from before mqscope opened it (see `LiveTail::kept`).
            let config = LocalConfig {
                keep_events: DEMO_KEPT_EVENTS,
                ..LocalConfig::default()
            };
            let demo = Demo::build(target.seed, target.fixed_clock, config);
            let broker = Arc::clone(demo.broker());
            let mut backend = LocalBackend::new(broker, shown);
            if opts.live {
                backend.simulation = Some(spawn_simulation(demo));
            }
            Ok(Arc::new(backend))
        }
        "empty" => {
            let clock = if target.fixed_clock {
                Clock::manual(demo::FIXED_EPOCH_MS)
            } else {
                Clock::system()
            };
            let broker = Arc::new(LocalBroker::new("local", clock, LocalConfig::default()));
            Ok(Arc::new(LocalBackend::new(broker, shown)))
        }
        other => Err(BackendError::InvalidArgument(format!(
            "unknown local scenario \"{other}\" (use local://demo or local://empty)"
        ))),
    }
}

/// Keep the demo moving in real time: a step every 250 ms on the runtime's workers.
fn spawn_simulation(demo: Demo) -> tokio::task::JoinHandle<()> {
    let demo = Arc::new(Mutex::new(demo));
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(Duration::from_millis(250));
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            let demo = Arc::clone(&demo);
            let stepped = tokio::task::spawn_blocking(move || {
                let mut d = demo.lock().unwrap_or_else(|e| e.into_inner());
                d.step(250);
            })
            .await;
            if stepped.is_err() {
                return;
            }
        }
    })
}
