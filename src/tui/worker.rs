//! Runs effects against the backend on the runtime, never on the render loop; every reply
//! goes back as a message carrying the request id it answers.

use super::state::{ConfirmAction, Effect, ReqId};
use super::update::Msg;
use crate::backend::registry::Registry;
use crate::backend::{self, Backend, ConnectOptions, ConnectSettings, PeekRequest};
use crate::config::Target;
use crate::ops::remove;
use crate::ops::replay::{self, ReplayOptions};
use crate::ops::store::JournalError;
use crate::ops::trace::{TraceEvent, TraceOptions};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::sync::mpsc::UnboundedSender;

/// Progress reports from a trace are sent at most this often; hits and finished queues
/// go at once.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

pub struct Worker {
    /// What to connect to; a successful `:vhost` switch changes its virtual host.
    target: Arc<Mutex<Target>>,
    /// Bumped by every connect: a connect that finishes after a newer one started (a
    /// switch of vhost while the old one was still connecting) is dropped.
    generation: Arc<AtomicU64>,
    options: ConnectOptions,
    backend: Arc<Mutex<Option<Arc<dyn Backend>>>>,
    tx: UnboundedSender<Msg>,
    /// Running traces by request: setting the flag stops one after its current page.
    scans: Arc<Mutex<HashMap<ReqId, Arc<AtomicBool>>>>,
    /// Running follows by request: a notification drops the tail.
    follows: Arc<Mutex<HashMap<ReqId, Arc<Notify>>>>,
    /// The recorder's database (the profile's `record_db`): traces merge its journey in.
    record_db: Option<std::path::PathBuf>,
    /// The profile's decoder: a trace's body rules look inside the payloads it reads.
    decoder: Option<Arc<crate::format::decode::Decoder>>,
    /// The profile's schema registry: a page's schemas are fetched before it is shown, so
    /// that opening a message decodes it without waiting.
    registry: Option<Arc<Registry>>,
}

/// How long a page waits for its schemas: a registry that has not answered by then is
/// still asked (its answers are kept), and the page is shown with a note meanwhile.
const PREFETCH_WAIT: Duration = Duration::from_secs(2);

/// Fetch the schemas `messages` are framed with; the note to show when that failed or
/// took longer than [`PREFETCH_WAIT`].
async fn prefetch(registry: &Registry, messages: &[crate::model::Message]) -> Option<String> {
    let bodies = messages
        .iter()
        .flat_map(|m| [Some(&m.payload[..]), m.key.as_deref()])
        .flatten();
    let ids = registry.wanted(bodies);
    match tokio::time::timeout(PREFETCH_WAIT, registry.prefetch(ids)).await {
        Ok(note) => note,
        Err(_) => Some(format!(
            "registry {} is slow to answer: payloads show raw until it does (reopen the message)",
            registry.url()
        )),
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Worker {
    /// A worker for the interactive app: the demo's traffic keeps moving.
    pub fn new(target: Target, settings: ConnectSettings, tx: UnboundedSender<Msg>) -> Self {
        let options = ConnectOptions {
            live: true,
            settings,
            amqp_only: false,
        };
        Self::with_options(target, options, tx)
    }

    pub fn with_options(target: Target, options: ConnectOptions, tx: UnboundedSender<Msg>) -> Self {
        Self {
            target: Arc::new(Mutex::new(target)),
            generation: Arc::default(),
            options,
            backend: Arc::new(Mutex::new(None)),
            tx,
            scans: Arc::default(),
            follows: Arc::default(),
            record_db: None,
            decoder: None,
            registry: None,
        }
    }

    /// Fetch each page's schemas from `registry` (see [`PREFETCH_WAIT`]).
    pub fn with_registry(mut self, registry: Option<Arc<Registry>>) -> Self {
        self.registry = registry;
        self
    }

    /// Traces merge the journey recorded in `db` (the profile's `record_db`) with the scan.
    pub fn with_record_db(mut self, db: Option<std::path::PathBuf>) -> Self {
        self.record_db = db;
        self
    }

    pub fn with_decoder(mut self, decoder: Arc<crate::format::decode::Decoder>) -> Self {
        self.decoder = Some(decoder);
        self
    }

    /// Connect to `target` (the current one, or another vhost's): the reply is
    /// `Connected`, or on failure `ConnectFailed` (a reconnect) or `VhostSwitchFailed`
    /// (a switch, which keeps the current backend and target). The backend and target are
    /// replaced only on success, and only if no newer connect started meanwhile: the
    /// check and the swap happen under the backend's lock, where a newer connect bumps
    /// the generation.
    fn connect(&self, target: Target, switch: bool, tx: UnboundedSender<Msg>) {
        let options = self.options.clone();
        let slot = Arc::clone(&self.backend);
        let current = Arc::clone(&self.target);
        let generation = Arc::clone(&self.generation);
        let mine = {
            let _slot = lock(&slot);
            generation.fetch_add(1, Ordering::SeqCst) + 1
        };
        tokio::spawn(async move {
            let result = backend::connect(&target, &options).await;
            let server = match &result {
                Ok(b) => b.server().await.map(|v| v.status()),
                Err(_) => None,
            };
            let msg = {
                let mut slot = lock(&slot);
                if generation.load(Ordering::SeqCst) != mine {
                    // A newer connect (another vhost) took over.
                    return;
                }
                match result {
                    Ok(b) => {
                        let info = b.info();
                        let has_groups = b.consumer_groups().is_some();
                        let has_exchanges = b.browser().is_some();
                        *slot = Some(b);
                        *lock(&current) = target;
                        Msg::Connected {
                            backend: info.kind.as_str().to_string(),
                            target: info.target,
                            server,
                            has_groups,
                            has_exchanges,
                        }
                    }
                    Err(e) if switch => Msg::VhostSwitchFailed(e.to_string()),
                    Err(e) => Msg::ConnectFailed(e.to_string()),
                }
            };
            let _ = tx.send(msg);
        });
    }

    /// Close the current backend's connection (on quitting).
    pub async fn close(&self) {
        if let Some(backend) = self.current() {
            backend.close().await;
        }
    }

    fn current(&self) -> Option<Arc<dyn Backend>> {
        self.backend
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Load a listing off the render loop and reply with it, when it was taken and how
    /// long it took (the list views show both).
    fn listing<T, Fut>(
        &self,
        load: impl FnOnce(Option<Arc<dyn Backend>>) -> Fut + Send + 'static,
        reply: impl FnOnce(Result<T, String>, chrono::DateTime<chrono::Utc>, u64) -> Msg
        + Send
        + 'static,
    ) where
        T: Send + 'static,
        Fut: std::future::Future<Output = Result<T, String>> + Send + 'static,
    {
        let (b, tx) = (self.current(), self.tx.clone());
        tokio::spawn(async move {
            let started = Instant::now();
            let result = load(b).await;
            let _ = tx.send(reply(result, chrono::Utc::now(), millis(started.elapsed())));
        });
    }

    /// Start an effect; returns at once. `Copy` and `Quit` belong to the terminal loop.
    pub fn run(&self, effect: Effect) {
        let tx = self.tx.clone();
        match effect {
            Effect::Connect => {
                let target = lock(&self.target).clone();
                self.connect(target, false, tx);
            }
            Effect::SwitchVhost(vhost) => {
                // The current backend stays until the new vhost's connection works, so a
                // wrong name or a vhost without permission leaves everything as it was.
                let mut target = lock(&self.target).clone();
                if let Target::Amqp(a) = &mut target {
                    a.vhost = vhost;
                }
                self.connect(target, true, tx);
            }
            Effect::Describe { req, queue } => {
                let b = self.current();
                tokio::spawn(async move {
                    let result = match b {
                        Some(b) => crate::backend::describe_full(b.as_ref(), &queue)
                            .await
                            .map(Box::new)
                            .map_err(|e| e.to_string()),
                        None => Err("not connected".to_string()),
                    };
                    let _ = tx.send(Msg::Described { req, result });
                });
            }
            Effect::LoadVhosts(req) => {
                let b = self.current();
                tokio::spawn(async move {
                    let result = match b.as_ref().and_then(|b| b.browser()) {
                        Some(br) => br
                            .vhosts()
                            .await
                            .map(|v| v.into_iter().map(|v| v.name).collect())
                            .map_err(|e| e.to_string()),
                        None => Err("this backend has no virtual hosts".to_string()),
                    };
                    let _ = tx.send(Msg::VhostsLoaded { req, result });
                });
            }
            Effect::LoadQueues(req) => self.listing(
                |b| async move {
                    match b {
                        Some(b) => b.list_queues().await.map_err(|e| e.to_string()),
                        None => Err("not connected".to_string()),
                    }
                },
                move |result, at, took_ms| Msg::QueuesLoaded {
                    req,
                    result,
                    at,
                    took_ms,
                },
            ),
            Effect::LoadGroups(req) => self.listing(
                |b| async move {
                    match b.as_ref().and_then(|b| b.consumer_groups()) {
                        Some(cg) => cg.list_groups().await.map_err(|e| e.to_string()),
                        None => Err("this backend has no consumer groups".to_string()),
                    }
                },
                move |result, at, took_ms| Msg::GroupsLoaded {
                    req,
                    result,
                    at,
                    took_ms,
                },
            ),
            Effect::LoadExchanges(req) => self.listing(
                |b| async move {
                    match b.as_ref().and_then(|b| b.browser()) {
                        Some(br) => br.routing().await.map_err(|e| e.to_string()),
                        None => Err("this backend has no exchanges".to_string()),
                    }
                },
                move |result, at, took_ms| Msg::ExchangesLoaded {
                    req,
                    result,
                    at,
                    took_ms,
                },
            ),
            Effect::LoadMessages {
                req,
                queue,
                partition,
                from,
                limit,
                force,
            } => {
                let b = self.current();
                let registry = self.registry.clone();
                tokio::spawn(async move {
                    let peek = PeekRequest {
                        from,
                        partition,
                        limit,
                        force,
                    };
                    let result = match b {
                        Some(b) => b.peek(&queue, &peek).await.map_err(|e| e.to_string()),
                        None => Err("not connected".to_string()),
                    };
                    if let (Some(r), Ok(page)) = (&registry, &result)
                        && let Some(note) = prefetch(r, &page.messages).await
                    {
                        let _ = tx.send(Msg::RegistryNote(note));
                    }
                    let _ = tx.send(Msg::MessagesLoaded { req, result });
                });
            }
            Effect::Save { path, contents } => {
                tokio::spawn(async move {
                    let shown = path.display().to_string();
                    let r = tokio::fs::write(&path, contents)
                        .await
                        .map(|_| shown)
                        .map_err(|e| e.to_string());
                    let _ = tx.send(Msg::Saved(r));
                });
            }
            Effect::Modify(action) => {
                let b = self.current();
                tokio::spawn(async move {
                    let result = match b {
                        Some(b) => modify(b.as_ref(), action).await,
                        None => Err("not connected".to_string()),
                    };
                    let _ = tx.send(Msg::Modified(result));
                });
            }
            Effect::Trace { req, id } => self.trace(req, id),
            Effect::CancelTrace(req) => {
                // The scan stops after the page it is reading; a broker read in flight is
                // let finish so its messages go back. Nothing more is reported for it.
                if let Some(flag) = lock(&self.scans).remove(&req) {
                    flag.store(true, Ordering::Relaxed);
                }
            }
            Effect::Follow { req, id } => self.follow(req, id),
            Effect::StopFollow(req) => {
                if let Some(stop) = lock(&self.follows).remove(&req) {
                    // A stored permit also stops a follow still starting its tail.
                    stop.notify_one();
                }
            }
            Effect::Copy(_) | Effect::Quit => {}
        }
    }

    fn trace(&self, req: ReqId, id: String) {
        let tx = self.tx.clone();
        let b = self.current();
        let cancel = Arc::new(AtomicBool::new(false));
        lock(&self.scans).insert(req, Arc::clone(&cancel));
        let scans = Arc::clone(&self.scans);
        let record_db = self.record_db.clone();
        let decoder = self.decoder.clone();
        tokio::spawn(async move {
            let Some(b) = b else {
                lock(&scans).remove(&req);
                let _ = tx.send(Msg::TraceDone {
                    req,
                    result: Err("not connected".into()),
                });
                return;
            };
            let opts = TraceOptions {
                cancel: Some(Arc::clone(&cancel)),
                decoder: decoder.clone(),
                ..TraceOptions::default()
            };
            let started = Instant::now();
            let scanned = AtomicU64::new(0);
            let last = Mutex::new(started);
            let events = tx.clone();
            let on_event = move |event: TraceEvent| match event {
                TraceEvent::Scanned(n) => {
                    let total = scanned.fetch_add(n, Ordering::Relaxed) + n;
                    let mut last = lock(&last);
                    if last.elapsed() >= PROGRESS_EVERY {
                        *last = Instant::now();
                        let _ = events.send(Msg::TraceProgress {
                            req,
                            scanned: total,
                            elapsed_ms: millis(started.elapsed()),
                        });
                    }
                }
                event => {
                    let _ = events.send(Msg::TraceEvent { req, event });
                }
            };
            let result =
                match crate::ops::trace::trace_streaming(b.as_ref(), &id, &opts, &on_event).await {
                    Ok(mut t) => {
                        // Without a database of its own, the demo's trace reads the
                        // journeys its broker kept.
                        let kept = match &record_db {
                            Some(_) => Ok(None),
                            None => crate::ops::record::KeptDb::make(b.as_ref()),
                        };
                        match &kept {
                            Ok(k) => {
                                let db = record_db.clone().or_else(|| k.as_ref().map(|k| k.path()));
                                if let Some(db) = db {
                                    merge_recorded(b.as_ref(), &mut t, &db).await;
                                }
                            }
                            Err(e) => t.skipped.push(crate::ops::trace::Skipped {
                                queue: "the demo's kept journeys".into(),
                                reason: e.to_string(),
                            }),
                        }
                        Ok(Box::new(t))
                    }
                    Err(e) => Err(e.to_string()),
                };
            lock(&scans).remove(&req);
            if !cancel.load(Ordering::Relaxed) {
                let _ = tx.send(Msg::TraceDone { req, result });
            }
        });
    }

    fn follow(&self, req: ReqId, id: String) {
        let tx = self.tx.clone();
        let b = self.current();
        let stop = Arc::new(Notify::new());
        lock(&self.follows).insert(req, Arc::clone(&stop));
        let follows = Arc::clone(&self.follows);
        let decoder = self.decoder.clone();
        tokio::spawn(async move {
            let ended = |error: Option<String>| {
                lock(&follows).remove(&req);
                let _ = tx.send(Msg::FollowEnded { req, error });
            };
            let Some(b) = b else {
                return ended(Some("not connected".into()));
            };
            let opts = TraceOptions {
                decoder,
                ..TraceOptions::default()
            };
            let mut f = tokio::select! {
                _ = stop.notified() => return,
                f = crate::ops::trace::follow::start(b.as_ref(), &id, &opts) => match f {
                    Ok(f) => f,
                    Err(e) => return ended(Some(e.to_string())),
                },
            };
            loop {
                tokio::select! {
                    // Dropping the follower drops its tail, which stops it at the broker.
                    _ = stop.notified() => return,
                    next = f.next_hop() => match next {
                        Some(result) => {
                            let result = result.map(Box::new).map_err(|e| e.to_string());
                            let _ = tx.send(Msg::FollowHop { req, result });
                        }
                        None => return ended(None),
                    },
                }
            }
        });
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Run a confirmed replay, purge or delete through the same ops as the command line (its
/// journal or backup and its audit entry are theirs); returns the line the status bar shows.
async fn modify(b: &dyn Backend, action: ConfirmAction) -> Result<String, String> {
    match action {
        ConfirmAction::ForcePeek => Ok(String::new()),
        ConfirmAction::Replay { queue, ids } => replay(b, &queue, ids).await,
        ConfirmAction::Purge { queue } | ConfirmAction::Delete { queue, .. }
            if b.taker().is_none() =>
        {
            Err(format!(
                "{} cannot remove messages from {queue}",
                b.info().kind.as_str()
            ))
        }
        ConfirmAction::Purge { queue } => remove(b, &queue, &[]).await,
        ConfirmAction::Delete { queue, ids } => remove(b, &queue, &ids).await,
    }
}

/// The status line, and a word when the audit log could not be written.
fn with_audit(line: String, audit: Result<std::path::PathBuf, JournalError>) -> String {
    match audit {
        Err(e) => format!("{line} (audit log not written: {e})"),
        Ok(_) => line,
    }
}

async fn replay(b: &dyn Backend, queue: &str, ids: Vec<String>) -> Result<String, String> {
    let opts = ReplayOptions {
        ids,
        ..ReplayOptions::default()
    };
    let target = b.info().target;
    let prepared = replay::Prepared::new(queue, opts).map_err(|e| e.to_string())?;
    let (mut journal, resume) = replay::start(&target, &prepared).map_err(|e| e.to_string())?;
    let path = journal.path().display().to_string();
    let done = replay::run(b, &prepared, &mut journal, resume, None, &|_, _| {}).await;
    let r = done
        .outcome
        .map_err(|e| format!("replay failed: {e}; resume with: mqscope replay --resume {path}"))?;
    let mut line = format!("replayed {} from {queue}", r.replayed);
    if !r.failed.is_empty() {
        line.push_str(&format!(
            ", {} failed and stay in the queue",
            r.failed.len()
        ));
    }
    if !r.skipped.is_empty() {
        line.push_str(&format!(
            ", {} skipped ({})",
            r.skipped.len(),
            r.skipped[0].reason
        ));
    }
    if let Some(stop) = &r.stopped {
        return Err(format!(
            "{line}; stopped: {stop}; resume with: mqscope replay --resume {path}"
        ));
    }
    Ok(with_audit(line, done.audit))
}

async fn remove(b: &dyn Backend, queue: &str, ids: &[String]) -> Result<String, String> {
    let action = if ids.is_empty() { "purge" } else { "delete" };
    let how = remove::Removing {
        action,
        queue,
        ids,
        force: false,
        keep: remove::Keep::Backup(None),
    };
    let done = remove::run(b, None, how, &|_, _| {})
        .await
        .map_err(|e| format!("nothing removed: {e}"))?;
    let r = done.removal.outcome.map_err(|e| e.to_string())?;
    let mut line = format!("removed {} from {queue}", r.removed);
    // An empty backup is deleted by the removal (as on the command line): name none then.
    if let Some(path) = &done.backup {
        line.push_str(&format!("; backup {path}"));
    }
    if !r.not_found.is_empty() {
        line.push_str(&format!(" ({} not found)", r.not_found.len()));
    }
    match r.stopped {
        Some(stop) => Err(format!("{line}; stopped: {stop}")),
        None => Ok(with_audit(line, done.removal.audit)),
    }
}

/// Merge what the recorder's database holds of the trace's ID; a database that cannot be
/// read is named among the skipped places, and the live trace stands alone.
async fn merge_recorded(b: &dyn Backend, t: &mut crate::ops::trace::Trace, db: &std::path::Path) {
    let merged = crate::ops::record::merge_routed(b, t, db, None, None).await;
    if let Err(e) = merged {
        t.skipped.push(crate::ops::trace::Skipped {
            queue: db.display().to_string(),
            reason: e.to_string(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::local::LocalBackend;
    use crate::backend::local::broker::{LocalBroker, LocalConfig, QueueArgs};
    use crate::backend::local::clock::Clock;
    use crate::ops::journal::Journal;

    #[tokio::test]
    async fn the_tui_refuses_a_replay_while_an_earlier_one_of_its_queue_is_unfinished() {
        let dir = tempfile::tempdir().unwrap();
        // SAFETY: the only test of this crate that reads the state directory.
        unsafe { std::env::set_var("MQSCOPE_STATE_DIR", dir.path()) };
        let broker = Arc::new(LocalBroker::new(
            "t",
            Clock::manual(1_700_000_000_000),
            LocalConfig::default(),
        ));
        broker.declare_queue("dlq", QueueArgs::default()).unwrap();
        let b = LocalBackend::new(broker, "local://t");
        let mut j = Journal::create("earlier").unwrap();
        j.append(&replay::begin_entry(
            "earlier",
            "local://t",
            "dlq",
            &ReplayOptions::default(),
        ))
        .unwrap();
        j.sync().unwrap();
        let r = modify(
            &b,
            ConfirmAction::Replay {
                queue: "dlq".into(),
                ids: Vec::new(),
            },
        )
        .await;
        let e = r.unwrap_err();
        assert!(
            e.contains("did not finish") && e.contains("--resume"),
            "{e}"
        );
    }
}
