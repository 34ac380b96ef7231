//! The recording loop: the backend's live tail, a bounded buffer that drops (and counts)
//! rather than hold the tap back, and a writer thread that stores batches. A lost broker
//! is tapped again with backoff, and the time nothing was recorded is stored as a gap.

use super::store::{Gap, Retention, Store, StoreError};
use crate::backend::{Backend, BackendError, TailEvent, TailFilter};
use crate::format::decode::{Decoder, Input};
use crate::model::correlation::Extractor;
use crate::model::envelope::Envelope;
use crate::ops::trace::glob_matches;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// What to record and how.
#[derive(Debug, Clone)]
pub struct RecordOptions {
    /// Exchanges or topics to tap; empty taps all of them.
    pub sources: Vec<String>,
    /// Keep only envelopes on, or routed to, queues and topics this pattern (`*`, `?`)
    /// matches; None keeps all.
    pub queues: Option<String>,
    pub extractor: Extractor,
    /// How many bytes of each body to keep.
    pub body_bytes: usize,
    pub retain: Retention,
    /// Envelopes held between the tap and the writer; beyond it they are dropped, counted.
    pub buffer: usize,
    /// Envelopes written per transaction, at most.
    pub batch: usize,
    /// How often a status is reported.
    pub interval: Duration,
    /// How often retention is enforced.
    pub retention_every: Duration,
    /// The longest wait between attempts to tap a lost broker again.
    pub backoff_max: Duration,
    /// Reads inside payloads for a correlation ID the rules cannot see in their bytes.
    pub decoder: Option<Arc<Decoder>>,
}

impl Default for RecordOptions {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            queues: None,
            extractor: Extractor::default(),
            body_bytes: 1024,
            retain: Retention::default(),
            buffer: 20_000,
            batch: 2_000,
            interval: Duration::from_secs(5),
            retention_every: Duration::from_secs(60),
            backoff_max: Duration::from_secs(30),
            decoder: None,
        }
    }
}

/// Where a recording stands: one status line.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Status {
    /// Envelopes tapped per second over the last interval.
    pub rate: f64,
    /// Messages the tap gave since the start.
    pub received: u64,
    /// Envelopes stored since the start (not counting ones recorded before, nor the kept).
    pub stored: u64,
    /// Envelopes of the broker's own history (the demo keeps its events) stored at the
    /// start, the ones already in the database not counted.
    pub kept: u64,
    /// Envelopes seen that were recorded already (a replayed tap).
    pub duplicates: u64,
    /// Envelopes dropped because the writer was behind and the buffer full.
    pub dropped: u64,
    /// Envelopes deleted by retention.
    pub deleted: u64,
    /// Times nothing was recorded (broker away, recorder stopped), since the start.
    pub gaps: u64,
    pub connected: bool,
}

/// What a recording reports as it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum RecordEvent {
    /// Tapping (again): what the tail says about what it can miss.
    Tapping {
        notes: Vec<String>,
    },
    /// The tail reported a problem; it goes on.
    Warning(String),
    /// The broker was lost; tapping again with backoff.
    Lost {
        error: String,
    },
    /// A time nothing was recorded, now stored.
    Gap(Gap),
    Status(Status),
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error("the recorder's writer stopped unexpectedly: {0}")]
    Writer(String),
}

/// What travels from the tap to the writer.
enum Item {
    Envelope(Box<Envelope>),
    Gap(Gap),
    /// The recorder is alive (no envelope may come for a while): say so in the database,
    /// and enforce retention when due.
    Tick,
}

#[derive(Default)]
struct Counters {
    stored: AtomicU64,
    duplicates: AtomicU64,
    deleted: AtomicU64,
}

/// Record what `backend`'s live tail gives into `store` until `stop` resolves (or the
/// store fails: a full disk, a file made read-only). A broker that cannot be tapped at the
/// start is an error; one lost later is tapped again, and the time between is a gap. A
/// database a recorder wrote before gets a gap from its last sign of life to now. What the
/// backend kept of its own history (the demo's events) is stored first, at the times it
/// happened.
pub async fn record(
    backend: &dyn Backend,
    mut store: Store,
    opts: &RecordOptions,
    on_event: &(dyn Fn(RecordEvent) + Send + Sync),
    stop: impl std::future::Future<Output = ()>,
) -> Result<Status, RecordError> {
    let Some(live) = backend.live_tail() else {
        return Err(BackendError::Unsupported {
            what: "recording (it needs a live tail)".into(),
            backend: backend.info().kind.as_str(),
        }
        .into());
    };
    // Logs go on from the offsets recorded (a replayed record is stored once).
    let db = store.path().to_path_buf();
    // Deliveries to consumers too, where the broker reports them: who took each copy.
    let filter = TailFilter {
        sources: opts.sources.clone(),
        deliveries: true,
    };
    let mut resume = store.offsets()?;
    // Tap first: a broker refusing it is the user's to hear about before anything is written.
    let mut tail = Some(live.tail_from(&filter, &resume).await?);
    let started = now_ms();
    let mut status = Status {
        connected: true,
        ..Status::default()
    };
    if let Some(last) = store.last_alive()? {
        let gap = Gap {
            from: last,
            to: started,
            reason: "the recorder was not running".into(),
        };
        store.add_gap(&gap)?;
        status.gaps += 1;
        on_event(RecordEvent::Gap(gap));
    }
    // Alive from now: a recorder killed while it stores the kept history below leaves a
    // gap from here for the next one to report.
    store.mark_alive(started)?;
    // Then what the broker kept from before (the demo's history): read after the tap
    // started, so an event is in one or the other (one in both is stored once, by its uid).
    let kept = live.kept();
    let (store, kept) = if kept.is_empty() {
        (store, Ok(0))
    } else {
        let opts = opts.clone();
        tokio::task::spawn_blocking(move || {
            let n = store_kept(&mut store, &kept, &opts);
            (store, n)
        })
        .await
        .map_err(|e| RecordError::Writer(e.to_string()))?
    };
    status.kept = kept?;
    let counters = Arc::new(Counters::default());
    let (tx, rx) = mpsc::channel::<Item>(opts.buffer.max(1));
    let writer = {
        let (counters, retain, batch, every) = (
            Arc::clone(&counters),
            opts.retain,
            opts.batch.max(1),
            opts.retention_every,
        );
        tokio::task::spawn_blocking(move || write_loop(store, rx, &counters, retain, batch, every))
    };
    let mut ticker = tokio::time::interval(opts.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut last_tick = (Instant::now(), 0u64);
    let mut lost: Option<(DateTime<Utc>, String)> = None;
    let mut last_error: Option<String> = None;
    let mut backoff = Duration::from_millis(500);
    let mut retry_at = tokio::time::Instant::now();
    tokio::pin!(stop);
    let update = |status: &mut Status| {
        status.stored = counters.stored.load(Ordering::Relaxed);
        status.duplicates = counters.duplicates.load(Ordering::Relaxed);
        status.deleted = counters.deleted.load(Ordering::Relaxed);
    };
    if let Some(t) = &tail {
        on_event(RecordEvent::Tapping {
            notes: t.notes.clone(),
        });
    }
    let mut writer_gone = false;
    loop {
        let tapping = tail.is_some();
        let next = async {
            match tail.as_mut() {
                Some(t) => t.events.recv().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {
                let (at, before) = last_tick;
                let secs = at.elapsed().as_secs_f64().max(1e-3);
                status.rate = (status.received - before) as f64 / secs;
                last_tick = (Instant::now(), status.received);
                update(&mut status);
                on_event(RecordEvent::Status(status.clone()));
                if tapping && tx.try_send(Item::Tick).is_err() && tx.is_closed() {
                    writer_gone = true;
                    break;
                }
            }
            _ = tokio::time::sleep_until(retry_at), if !tapping => {
                // What the writer has stored by now: read beside it (WAL lets both).
                match Store::open_read(&db).and_then(|s| s.offsets()) {
                    Ok(offsets) => resume = offsets,
                    Err(e) => on_event(RecordEvent::Warning(format!("reading the recorded offsets: {e}"))),
                }
                match live.tail_from(&filter, &resume).await {
                    Ok(t) => {
                        if let Some((from, error)) = lost.take() {
                            let gap = Gap { from, to: now_ms(), reason: format!("broker lost: {error}") };
                            if tx.send(Item::Gap(gap.clone())).await.is_err() {
                                writer_gone = true;
                                break;
                            }
                            status.gaps += 1;
                            on_event(RecordEvent::Gap(gap));
                        }
                        on_event(RecordEvent::Tapping { notes: t.notes.clone() });
                        tail = Some(t);
                        status.connected = true;
                        backoff = Duration::from_millis(500);
                    }
                    Err(e) => {
                        on_event(RecordEvent::Warning(format!("tapping again failed: {e}; next try in {} s", backoff.as_secs_f64())));
                        retry_at = tokio::time::Instant::now() + backoff;
                        backoff = (backoff * 2).min(opts.backoff_max);
                    }
                }
            }
            m = next => match m {
                Some(Ok(event)) => {
                    status.received += 1;
                    let env = envelope_of(&event, Utc::now(), opts);
                    if !wanted(&env, opts.queues.as_deref()) {
                        continue;
                    }
                    match tx.try_send(Item::Envelope(Box::new(env))) {
                        Ok(()) => {}
                        Err(mpsc::error::TrySendError::Full(_)) => status.dropped += 1,
                        Err(mpsc::error::TrySendError::Closed(_)) => {
                            writer_gone = true;
                            break;
                        }
                    }
                }
                Some(Err(e)) => {
                    // Events the tap lost before they reached the recorder are dropped
                    // as much as those its own buffer could not hold.
                    let text = e.to_string();
                    on_event(RecordEvent::Warning(text.clone()));
                    match &e {
                        BackendError::Behind { skipped, .. } => status.dropped += skipped,
                        _ => last_error = Some(text),
                    }
                }
                None => {
                    // The tail ended: the broker (or the connection to it) is gone.
                    let error = last_error.take().unwrap_or_else(|| "the live tail ended".to_string());
                    on_event(RecordEvent::Lost { error: error.clone() });
                    lost = Some((now_ms(), error));
                    tail = None;
                    status.connected = false;
                    retry_at = tokio::time::Instant::now() + backoff;
                }
            }
        }
    }
    if let Some((from, error)) = lost.take().filter(|_| !writer_gone) {
        let gap = Gap {
            from,
            to: now_ms(),
            reason: format!("broker lost: {error}; the recorder stopped before it was back"),
        };
        if tx.send(Item::Gap(gap.clone())).await.is_ok() {
            status.gaps += 1;
            on_event(RecordEvent::Gap(gap));
        }
    }
    drop(tail);
    drop(tx);
    let result = writer
        .await
        .map_err(|e| RecordError::Writer(e.to_string()))?;
    update(&mut status);
    result?;
    Ok(status)
}

/// Now, to the millisecond the database keeps.
fn now_ms() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_millis(now.timestamp_millis()).unwrap_or(now)
}

/// The envelope of what a tail gave, seen at `seen` unless the tail timed it itself (the
/// time it arrived, not when this loop got to it: a delivery the tail timed must not come
/// before its publish); a delivery keeps who took it. A correlation ID the rules do not
/// find in the payload's bytes is looked for in what the decoder makes of them (Avro,
/// MessagePack, compressed bodies).
fn envelope_of(event: &TailEvent, seen: DateTime<Utc>, opts: &RecordOptions) -> Envelope {
    let mut envelope = plain_envelope(event, seen, opts);
    if envelope.correlation_id.is_none()
        && let Some(decoder) = &opts.decoder
    {
        let m = match event {
            TailEvent::Message(m) => m,
            TailEvent::Delivery(d) => &d.message,
        };
        if let Some(Ok(decoded)) = decoder.decode(&Input::payload(m)) {
            envelope.correlation_id = opts.extractor.extract_decoded(m, &decoded.value);
        }
    }
    envelope
}

fn plain_envelope(event: &TailEvent, seen: DateTime<Utc>, opts: &RecordOptions) -> Envelope {
    match event {
        TailEvent::Message(m) => {
            Envelope::of_tailed(m, m.seen.unwrap_or(seen), &opts.extractor, opts.body_bytes)
        }
        TailEvent::Delivery(d) => Envelope::delivery(
            &d.message,
            &d.delivery.queue,
            d.delivery.at,
            d.delivery.details(),
            &opts.extractor,
            opts.body_bytes,
        ),
    }
}

/// Store the events the backend kept from before any tail (the demo's history), as the
/// recorder would have had it been running: what `opts.queues` matches, at the time each
/// happened. Returns how many were stored (an event already there is not stored again).
pub fn record_kept(
    backend: &dyn Backend,
    store: &mut Store,
    opts: &RecordOptions,
) -> Result<u64, StoreError> {
    match backend.live_tail() {
        Some(live) => store_kept(store, &live.kept(), opts),
        None => Ok(0),
    }
}

/// Store `kept` events, each at the time it happened; how many were new.
fn store_kept(
    store: &mut Store,
    kept: &[TailEvent],
    opts: &RecordOptions,
) -> Result<u64, StoreError> {
    let envelopes: Vec<Envelope> = kept
        .iter()
        .map(|ev| {
            // When it happened, not now: a delivery's own time, a dead-lettering's (the
            // newest death, to the second: never before the publish), else the publish's.
            let m = ev.message();
            let died = m.deaths().first().and_then(|d| d.time);
            let at = match (died, m.timestamp) {
                (Some(d), Some(p)) => d.max(p),
                (d, p) => d.or(p).unwrap_or_else(Utc::now),
            };
            envelope_of(ev, at, opts)
        })
        .filter(|e| wanted(e, opts.queues.as_deref()))
        .collect();
    let mut stored = 0;
    for chunk in envelopes.chunks(opts.batch.max(1)) {
        stored += store.insert(chunk)?;
    }
    Ok(stored)
}

fn wanted(e: &Envelope, pattern: Option<&str>) -> bool {
    // Whether an envelope concerns the queues asked for: it happened on one, or was routed
    // or dead-lettered from one.
    let Some(p) = pattern else { return true };
    glob_matches(p, &e.source)
        || e.routed_queues.iter().flatten().any(|q| glob_matches(p, q))
        || e.deaths().iter().any(|d| glob_matches(p, &d.queue))
        || (e.exchange.as_deref() == Some("")
            && e.routing_key.as_deref().is_some_and(|k| glob_matches(p, k)))
}

/// The writer: batches from the buffer, one transaction each, until the tap hangs up.
fn write_loop(
    mut store: Store,
    mut rx: mpsc::Receiver<Item>,
    counters: &Counters,
    retain: Retention,
    batch: usize,
    every: Duration,
) -> Result<(), StoreError> {
    let mut envelopes: Vec<Envelope> = Vec::with_capacity(batch);
    let mut retained_at: Option<Instant> = None;
    let mut alive_at = Instant::now();
    let enforce = |store: &mut Store, at: &mut Option<Instant>| -> Result<(), StoreError> {
        if retain != Retention::default() && at.is_none_or(|t| t.elapsed() >= every) {
            let n = store.enforce(&retain, Utc::now())?;
            counters.deleted.fetch_add(n, Ordering::Relaxed);
            *at = Some(Instant::now());
        }
        Ok(())
    };
    enforce(&mut store, &mut retained_at)?;
    while let Some(first) = rx.blocking_recv() {
        let mut items = vec![first];
        while envelopes.len() + items.len() < batch {
            match rx.try_recv() {
                Ok(i) => items.push(i),
                Err(_) => break,
            }
        }
        let mut tick = false;
        for item in items {
            match item {
                Item::Envelope(e) => envelopes.push(*e),
                Item::Gap(g) => store.add_gap(&g)?,
                Item::Tick => tick = true,
            }
        }
        if !envelopes.is_empty() {
            let added = store.insert(&envelopes)?;
            counters.stored.fetch_add(added, Ordering::Relaxed);
            counters
                .duplicates
                .fetch_add(envelopes.len() as u64 - added, Ordering::Relaxed);
            envelopes.clear();
        }
        if tick || alive_at.elapsed() >= Duration::from_secs(1) {
            store.mark_alive(Utc::now())?;
            alive_at = Instant::now();
            enforce(&mut store, &mut retained_at)?;
        }
    }
    store.mark_alive(Utc::now())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Delivery, Message};

    #[test]
    fn a_correlation_id_inside_a_decoded_body_is_recorded() {
        let mut packed = Vec::new();
        let body = rmpv::Value::Map(vec![(
            rmpv::Value::from("correlationId"),
            rmpv::Value::from("journey-9"),
        )]);
        rmpv::encode::write_value(&mut packed, &body).expect("packed");
        let mut m = Message::new("orders", 0, packed);
        m.properties.content_type = Some("application/msgpack".into());
        let event = TailEvent::Message(m);
        let blind = RecordOptions::default();
        assert_eq!(envelope_of(&event, Utc::now(), &blind).correlation_id, None);
        let reading = RecordOptions {
            decoder: Some(Arc::new(Decoder::default())),
            ..RecordOptions::default()
        };
        let envelope = envelope_of(&event, Utc::now(), &reading);
        assert_eq!(envelope.correlation_id.as_deref(), Some("journey-9"));
    }

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(ms).unwrap()
    }

    #[test]
    fn a_publish_the_tail_timed_keeps_that_time_so_its_delivery_never_comes_first() {
        let opts = RecordOptions::default();
        let mut m = Message::new("orders", 0, &b"{}"[..]);
        m.exchange = Some("orders".into());
        m.routed_queues = Some(vec!["billing".into()]);
        // The tail took the publish at 1.000 s and billing's delivery at 1.001 s; this
        // loop, behind on a loaded machine, gets to the publish at 1.004 s.
        m.seen = Some(at(1_000));
        let publish = envelope_of(&TailEvent::Message(m.clone()), at(1_004), &opts);
        let delivered = TailEvent::Delivery(crate::backend::Delivered {
            delivery: Delivery {
                queue: "billing".into(),
                at: at(1_001),
                redelivered: false,
                user: None,
                connection: None,
                channel: None,
                node: None,
            },
            message: m.clone(),
        });
        let delivery = envelope_of(&delivered, at(1_005), &opts);
        assert_eq!((publish.time, delivery.time), (at(1_000), at(1_001)));
        assert!(publish.time < delivery.time);
        // A tail that does not time its events: the time this loop saw it.
        m.seen = None;
        let untimed = envelope_of(&TailEvent::Message(m), at(1_004), &opts);
        assert_eq!(untimed.time, at(1_004));
    }
}
