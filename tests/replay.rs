//! Replaying dead letters, purging and deleting on the local broker: destinations from
//! x-death, headers kept, nothing acked before it is confirmed, resumption after faults
//! (a dropped connection before the acks, confirms lost in flight), unroutable copies left
//! in place, backups that restore exactly.

use async_trait::async_trait;
use bytes::Bytes;
use mqscope::backend::local::LocalBackend;
use mqscope::backend::local::broker::{LocalBroker, LocalConfig, Outgoing, QueueArgs};
use mqscope::backend::local::clock::Clock;
use mqscope::backend::{
    Backend, BackendError, BackendInfo, Destination, PeekPage, PeekRequest, Publish,
    PublishReceipt, Take, TakeSession, Taken,
};
use mqscope::model::topology::{ExchangeKind, Topology};
use mqscope::model::{FieldValue, Message, Properties, QueueDetail, QueueSummary};
use mqscope::ops::backup::{self, Backup};
use mqscope::ops::journal::{self, Journal};
use mqscope::ops::replay::{self, REPLAYED_FROM, RemovalResume, ReplayOptions, Resume};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

const TOTAL: usize = 1_000;

/// Journals go to a temporary state directory, shared by the tests of this binary.
fn state_dir() {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        // SAFETY: written once, by the first test to ask, before it starts any work.
        unsafe { std::env::set_var("MQSCOPE_STATE_DIR", dir.path()) };
        dir
    });
}

/// Two exchanges and a queue published to directly, all dead-lettering into `dead`:
/// `billing` (direct exchange `orders`), `ledger` (topic exchange `payments`) and `inbox`
/// (default exchange). TOTAL messages are published and rejected into `dead`.
fn scenario() -> Arc<LocalBroker> {
    scenario_of(TOTAL)
}

fn scenario_of(total: usize) -> Arc<LocalBroker> {
    let b = Arc::new(LocalBroker::new(
        "test",
        Clock::manual(1_700_000_000_000),
        LocalConfig::default(),
    ));
    b.declare_exchange("orders", ExchangeKind::Direct).unwrap();
    b.declare_exchange("payments", ExchangeKind::Topic).unwrap();
    b.declare_exchange("dlx", ExchangeKind::Fanout).unwrap();
    b.declare_queue("dead", QueueArgs::default()).unwrap();
    b.bind_queue("dead", "dlx", "").unwrap();
    for q in ["billing", "ledger", "inbox"] {
        b.declare_queue(
            q,
            QueueArgs {
                dead_letter_exchange: Some("dlx".into()),
                ..QueueArgs::default()
            },
        )
        .unwrap();
    }
    b.bind_queue("billing", "orders", "invoice").unwrap();
    b.bind_queue("ledger", "payments", "pay.#").unwrap();
    for i in 0..total {
        let mut headers = mqscope::model::FieldTable::new();
        headers.insert("n", FieldValue::I64(i as i64));
        headers.insert("tenant", FieldValue::string("acme ü"));
        let out = Outgoing {
            properties: Properties {
                message_id: Some(format!("m-{i}")),
                content_type: Some("application/json".into()),
                ..Properties::default()
            },
            headers,
            payload: Bytes::from(format!("{{\"n\":{i}}}")),
        };
        let (x, k) = match i % 3 {
            0 => ("orders", "invoice".to_string()),
            1 => ("payments", format!("pay.card.{i}")),
            _ => ("", "inbox".to_string()),
        };
        assert_eq!(b.publish(x, &k, out).unwrap().len(), 1);
    }
    for q in ["billing", "ledger", "inbox"] {
        while let Some(d) = b.get(q, false).unwrap() {
            b.nack(d.tag, false).unwrap();
        }
    }
    assert_eq!(b.queue_len("dead").unwrap(), total);
    b
}

fn ids(b: &LocalBroker, q: &str) -> Vec<String> {
    b.peek_queue(q, 0, 100 * TOTAL)
        .unwrap()
        .into_iter()
        .map(|m| m.properties.message_id.unwrap_or_default())
        .collect()
}

fn no_progress(_: u64, _: u64) {}

fn check_all_home_once(b: &LocalBroker) {
    check_all_home_once_of(b, TOTAL)
}

fn check_all_home_once_of(b: &LocalBroker, total: usize) {
    let mut seen = BTreeMap::new();
    for q in ["billing", "ledger", "inbox"] {
        for id in ids(b, q) {
            *seen.entry(id).or_insert(0) += 1;
        }
    }
    let dead = ids(b, "dead");
    for id in &dead {
        *seen.entry(id.clone()).or_insert(0) += 1;
    }
    assert_eq!(seen.len(), total, "every message is somewhere");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "duplicated: {twice:?}");
}

#[tokio::test]
async fn replay_of_1000_mixed_origins_lands_each_at_home_with_headers() {
    state_dir();
    let b = scenario();
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let plan = ReplayOptions::default().plan().unwrap();
    let dry = replay::dry_run(&backend, "dead", &plan).await.unwrap();
    assert_eq!(dry.replayed, TOTAL as u64);
    assert_eq!(dry.destinations.len(), 3, "{:?}", dry.destinations);
    assert_eq!(
        b.queue_len("dead").unwrap(),
        TOTAL,
        "a dry run changes nothing"
    );

    let mut j = Journal::create("mixed-origins").unwrap();
    let report = replay::replay(
        &backend,
        "dead",
        &plan,
        Some(&mut j),
        Resume::default(),
        &no_progress,
    )
    .await
    .unwrap();
    assert!(report.ok(), "{report:?}");
    assert_eq!(report.replayed, TOTAL as u64);
    assert_eq!(b.queue_len("dead").unwrap(), 0, "the DLQ is empty");
    assert_eq!(b.queue_len("billing").unwrap(), 334);
    assert_eq!(b.queue_len("ledger").unwrap(), 333);
    assert_eq!(b.queue_len("inbox").unwrap(), 333);
    check_all_home_once(&b);

    for m in b.peek_queue("ledger", 0, TOTAL).unwrap() {
        // Back through its own exchange, with its own routing key.
        assert_eq!(m.exchange.as_deref(), Some("payments"));
        let n = m.headers.get("n").and_then(FieldValue::as_i64).unwrap();
        assert_eq!(m.routing_key, Some(format!("pay.card.{n}")));
        assert_eq!(m.payload, Bytes::from(format!("{{\"n\":{n}}}")));
        assert_eq!(
            m.headers.get("tenant").and_then(|v| v.as_str()),
            Some("acme ü")
        );
        assert_eq!(
            m.properties.content_type.as_deref(),
            Some("application/json")
        );
        assert!(
            m.headers.get("x-death").is_none(),
            "death headers are dropped"
        );
        assert_eq!(replay::replay_count(&m), 1);
        let from = m
            .headers
            .get(REPLAYED_FROM)
            .and_then(|v| v.as_bytes())
            .unwrap();
        assert!(
            from.starts_with(b"dead@"),
            "{}",
            String::from_utf8_lossy(from)
        );
    }
    let inbox = b.peek_queue("inbox", 0, 1).unwrap();
    assert_eq!(inbox[0].exchange.as_deref(), Some(""));
    assert_eq!(inbox[0].routing_key.as_deref(), Some("inbox"));

    // The journal says what happened, step by step.
    let entries = journal::load(j.path()).unwrap();
    let confirmed = entries
        .iter()
        .filter(|e| matches!(e, journal::Entry::Confirmed { .. }))
        .count();
    assert_eq!(confirmed, TOTAL);
    assert!(matches!(entries.last(), Some(journal::Entry::End { .. })));
}

#[tokio::test]
async fn the_loop_guard_refuses_messages_replayed_too_often() {
    let b = scenario();
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let before = ids(&b, "dead");
    let plan = ReplayOptions {
        max_replays: Some(1),
        ids: vec!["m-0".into()],
        ..ReplayOptions::default()
    }
    .plan()
    .unwrap();
    let r = replay::replay(
        &backend,
        "dead",
        &plan,
        None,
        Resume::default(),
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(r.replayed, 1);
    assert_eq!(r.not_selected, TOTAL as u64 - 1);
    // It dies again, and is back in the DLQ with a replay count of 1.
    let d = b.get("billing", false).unwrap().unwrap();
    b.nack(d.tag, false).unwrap();
    let r = replay::replay(
        &backend,
        "dead",
        &plan,
        None,
        Resume::default(),
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(r.replayed, 0);
    assert_eq!(r.skipped.len(), 1);
    assert!(
        r.skipped[0].reason.contains("loop guard"),
        "{:?}",
        r.skipped
    );
    assert_eq!(b.queue_len("dead").unwrap(), TOTAL);
    // The others kept their order; m-0 died again and is at the end.
    let mut expected: Vec<String> = before.into_iter().filter(|i| i != "m-0").collect();
    expected.push("m-0".into());
    assert_eq!(ids(&b, "dead"), expected);
}

#[tokio::test]
async fn an_unroutable_destination_leaves_everything_in_the_dlq() {
    let b = scenario();
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let before = ids(&b, "dead");
    let plan = ReplayOptions {
        to: Some("exchange:orders".into()),
        routing_key: Some("nowhere".into()),
        ..ReplayOptions::default()
    }
    .plan()
    .unwrap();
    let r = replay::replay(
        &backend,
        "dead",
        &plan,
        None,
        Resume::default(),
        &no_progress,
    )
    .await
    .unwrap();
    assert!(!r.ok());
    assert_eq!(r.replayed, 0);
    assert_eq!(r.failed.len(), TOTAL);
    assert!(
        r.failed[0].reason.contains("routed"),
        "{}",
        r.failed[0].reason
    );
    assert_eq!(
        ids(&b, "dead"),
        before,
        "all still there, in the same order"
    );
}

/// A backend that loses its connection at a chosen moment: after `publish_ok` batches
/// published and confirmed, either the acks fail (the copies are confirmed, the originals
/// not removed) or the confirms are lost (copies delivered, outcome unknown).
struct Faulty {
    inner: LocalBackend,
    fault: Fault,
    batches: AtomicUsize,
    after: usize,
}

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    AckFails,
    ConfirmsLost,
}

#[async_trait]
impl Backend for Faulty {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }
    async fn list_queues(&self) -> Result<Vec<QueueSummary>, BackendError> {
        self.inner.list_queues().await
    }
    async fn describe_queue(&self, name: &str) -> Result<QueueDetail, BackendError> {
        self.inner.describe_queue(name).await
    }
    async fn peek(&self, name: &str, req: &PeekRequest) -> Result<PeekPage, BackendError> {
        self.inner.peek(name, req).await
    }
    fn publisher(&self) -> Option<&dyn Publish> {
        Some(self)
    }
    fn taker(&self) -> Option<&dyn Take> {
        Some(self)
    }
}

fn dropped() -> BackendError {
    BackendError::Unreachable {
        target: "test".into(),
        reason: "connection reset".into(),
    }
}

#[async_trait]
impl Publish for Faulty {
    async fn publish(
        &self,
        dest: &Destination,
        msg: &Message,
    ) -> Result<PublishReceipt, BackendError> {
        self.inner.publisher().unwrap().publish(dest, msg).await
    }
    async fn publish_batch(
        &self,
        items: &[(Destination, Message)],
    ) -> Vec<Result<PublishReceipt, BackendError>> {
        let n = self.batches.fetch_add(1, Ordering::SeqCst);
        let results = self.inner.publisher().unwrap().publish_batch(items).await;
        if self.fault == Fault::ConfirmsLost && n == self.after {
            // Delivered, but the confirms never came back.
            return results.into_iter().map(|_| Err(dropped())).collect();
        }
        results
    }
}

#[async_trait]
impl Take for Faulty {
    async fn take(&self, queue: &str, force: bool) -> Result<Box<dyn TakeSession>, BackendError> {
        let inner = self.inner.taker().unwrap().take(queue, force).await?;
        let fail_acks = self.fault == Fault::AckFails;
        Ok(Box::new(FaultySession {
            inner,
            acks: 0,
            fail_at: if fail_acks { Some(self.after) } else { None },
        }))
    }
    async fn topology(&self) -> Result<Topology, BackendError> {
        self.inner.taker().unwrap().topology().await
    }
}

struct FaultySession {
    inner: Box<dyn TakeSession>,
    acks: usize,
    fail_at: Option<usize>,
}

#[async_trait]
impl TakeSession for FaultySession {
    fn depth(&self) -> u64 {
        self.inner.depth()
    }
    async fn next(&mut self, max: usize) -> Result<Vec<Taken>, BackendError> {
        self.inner.next(max).await
    }
    async fn ack(&mut self, tags: &[u64]) -> Result<(), BackendError> {
        let n = self.acks;
        self.acks += 1;
        if Some(n) == self.fail_at {
            return Err(dropped());
        }
        self.inner.ack(tags).await
    }
    async fn release(self: Box<Self>) -> Result<(), BackendError> {
        self.inner.release().await
    }
}

async fn interrupted_then_resumed(fault: Fault) {
    state_dir();
    // More than two batches, so the fault comes with work before and after it.
    let total = 2 * replay::BATCH + replay::BATCH / 2;
    let b = scenario_of(total);
    let faulty = Faulty {
        inner: LocalBackend::new(Arc::clone(&b), "local://test"),
        fault,
        batches: AtomicUsize::new(0),
        after: 0,
    };
    let opts = ReplayOptions::default();
    let plan = opts.plan().unwrap();
    let id = format!("fault-{}", fault == Fault::AckFails);
    let mut j = Journal::create(&id).unwrap();
    j.append(&replay::begin_entry(&id, "local://test", "dead", &opts))
        .unwrap();
    let first = replay::replay(
        &faulty,
        "dead",
        &plan,
        Some(&mut j),
        Resume::default(),
        &no_progress,
    )
    .await
    .unwrap();
    assert!(first.stopped.is_some(), "the fault stops the replay");
    let done_first = first.replayed;
    assert!(done_first < total as u64);
    // Nothing is lost in between: each message is at home or in the DLQ, maybe both.
    let home: usize = ["billing", "ledger", "inbox"]
        .iter()
        .map(|q| b.queue_len(q).unwrap())
        .sum();
    assert!(home + b.queue_len("dead").unwrap() >= total);

    // Resume on a healthy connection, from the journal.
    let entries = journal::load(j.path()).unwrap();
    let resume = Resume::from_entries(&entries);
    let healthy = LocalBackend::new(Arc::clone(&b), "local://test");
    let second = replay::replay(&healthy, "dead", &plan, Some(&mut j), resume, &no_progress)
        .await
        .unwrap();
    assert!(second.ok(), "{second:?}");
    assert_eq!(b.queue_len("dead").unwrap(), 0);
    check_all_home_once_of(&b, total);
    match fault {
        // The batch whose acks failed is removed without being published again; the one
        // sent while it was being confirmed was settled before the replay stopped.
        Fault::AckFails => assert_eq!(second.already_replayed, replay::BATCH as u64),
        Fault::ConfirmsLost => assert!(
            second
                .notes
                .iter()
                .any(|n| n.contains("found at their destination")),
            "{:?}",
            second.notes
        ),
    }
}

#[tokio::test]
async fn a_connection_lost_before_the_acks_resumes_without_duplicates() {
    interrupted_then_resumed(Fault::AckFails).await;
}

#[tokio::test]
async fn confirms_lost_in_flight_are_found_at_home_not_sent_twice() {
    interrupted_then_resumed(Fault::ConfirmsLost).await;
}

#[tokio::test]
async fn purge_backs_up_everything_first_and_the_backup_restores_exactly() {
    state_dir();
    let b = scenario();
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let before = b.peek_queue("dead", 0, TOTAL).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dead backup.jsonl");
    let mut backup = Backup::create("dead", "local://test", Some(&path)).unwrap();
    let taker = backend.taker().unwrap();
    let r = replay::remove(
        taker,
        "dead",
        &[],
        false,
        Some(&mut backup),
        None,
        RemovalResume::default(),
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(r.removed, TOTAL as u64);
    assert_eq!(b.queue_len("dead").unwrap(), 0);
    let records = mqscope::ops::publish::read_records(path.to_str().unwrap()).unwrap();
    assert_eq!(records.len(), TOTAL, "one backup line per removed message");

    // Restore: every record goes back to the queue it was removed from.
    let items: Vec<(Destination, Message)> = records
        .into_iter()
        .map(|(_, m, to)| (to.expect("backups say where to restore"), m))
        .collect();
    let results = backend.publisher().unwrap().publish_batch(&items).await;
    assert!(results.iter().all(Result::is_ok));
    let after = b.peek_queue("dead", 0, TOTAL).unwrap();
    assert_eq!(after.len(), before.len());
    for (a, b) in before.iter().zip(&after) {
        assert_eq!(a.payload, b.payload);
        assert_eq!(a.headers, b.headers, "headers, x-death included, come back");
        assert_eq!(a.properties, b.properties);
    }
}

#[tokio::test]
async fn delete_removes_chosen_messages_and_keeps_the_rest_in_order() {
    let b = scenario();
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let before = ids(&b, "dead");
    let victims = vec!["m-10".to_string(), "m-500".to_string(), "nope".to_string()];
    let r = replay::remove(
        backend.taker().unwrap(),
        "dead",
        &victims,
        false,
        None,
        None,
        RemovalResume::default(),
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(r.removed, 2);
    assert_eq!(r.not_found, vec!["nope".to_string()]);
    let expected: Vec<String> = before
        .into_iter()
        .filter(|id| id != "m-10" && id != "m-500")
        .collect();
    assert_eq!(ids(&b, "dead"), expected);
}

/// A dead letter published twice is two messages with one key. A resume removes one
/// message per confirmed copy the journal does not record as acked, so a run stopped after
/// the broker removed originals must have recorded it: else the resume takes the twins
/// for them and one of each pair is lost.
#[tokio::test]
async fn a_resume_after_acked_originals_leaves_their_identical_twins() {
    state_dir();
    let n = 2 * replay::BATCH;
    let b = scenario_of(n);
    for m in b.peek_queue("dead", 0, n).unwrap() {
        let twin = Outgoing {
            properties: m.properties.clone(),
            headers: m.headers.clone(),
            payload: m.payload.clone(),
        };
        assert_eq!(b.publish("", "dead", twin).unwrap().len(), 1);
    }
    assert_eq!(b.queue_len("dead").unwrap(), 2 * n);
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let opts = ReplayOptions {
        limit: Some(replay::BATCH as u64),
        ..ReplayOptions::default()
    };
    let id = "twins";
    let mut j = Journal::create(id).unwrap();
    j.append(&replay::begin_entry(id, "local://test", "dead", &opts))
        .unwrap();
    let first = replay::replay(
        &backend,
        "dead",
        &opts.plan().unwrap(),
        Some(&mut j),
        Resume::default(),
        &no_progress,
    )
    .await
    .unwrap();
    assert_eq!(first.replayed, replay::BATCH as u64);
    // Stopped after the originals were removed: the journal says so (the line is synced
    // with the ack), so nothing is left for the resume to remove.
    let entries: Vec<journal::Entry> = journal::load(j.path())
        .unwrap()
        .into_iter()
        .filter(|e| !matches!(e, journal::Entry::End { .. }))
        .collect();
    let resume = Resume::from_entries(&entries);
    assert_eq!(resume.unresolved(), 0);
    let second = replay::replay(
        &backend,
        "dead",
        &ReplayOptions::default().plan().unwrap(),
        None,
        resume,
        &no_progress,
    )
    .await
    .unwrap();
    assert!(second.ok(), "{second:?}");
    assert_eq!(second.already_replayed, 0, "no twin taken for an original");
    assert_eq!(second.replayed, (2 * n - replay::BATCH) as u64);
    // Every message is at home twice, as it was in the dead-letter queue twice.
    assert_eq!(b.queue_len("dead").unwrap(), 0);
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for q in ["billing", "ledger", "inbox"] {
        for id in ids(&b, q) {
            *seen.entry(id).or_default() += 1;
        }
    }
    assert_eq!(seen.len(), n);
    let not_twice: Vec<_> = seen.iter().filter(|(_, c)| **c != 2).collect();
    assert!(not_twice.is_empty(), "{not_twice:?}");
}

/// A broker that pauses deliveries on a queue it is still writing: the first page comes up
/// short, with a note saying so.
struct Stalling {
    inner: LocalBackend,
    stalled: AtomicUsize,
    /// A delivery limit the queue is described with (a quorum queue's).
    limit: Option<u64>,
}

#[async_trait]
impl Backend for Stalling {
    fn info(&self) -> BackendInfo {
        self.inner.info()
    }
    async fn list_queues(&self) -> Result<Vec<QueueSummary>, BackendError> {
        self.inner.list_queues().await
    }
    async fn describe_queue(&self, name: &str) -> Result<QueueDetail, BackendError> {
        let mut detail = self.inner.describe_queue(name).await?;
        detail.summary.delivery_limit = self.limit;
        Ok(detail)
    }
    async fn peek(&self, name: &str, req: &PeekRequest) -> Result<PeekPage, BackendError> {
        let mut page = self.inner.peek(name, req).await?;
        if self.stalled.fetch_add(1, Ordering::SeqCst) == 0 {
            page.messages.truncate(page.messages.len() * 2 / 3);
            page.notes
                .push("only some of the messages asked for arrived in time".into());
        }
        Ok(page)
    }
}

#[tokio::test]
async fn a_dry_run_reads_past_a_page_the_broker_cut_short() {
    state_dir();
    let b = scenario();
    let backend = Stalling {
        inner: LocalBackend::new(Arc::clone(&b), "local://test"),
        stalled: AtomicUsize::new(0),
        limit: None,
    };
    let plan = ReplayOptions::default().plan().unwrap();
    let dry = replay::dry_run(&backend, "dead", &plan).await.unwrap();
    assert_eq!(dry.scanned, TOTAL as u64, "{dry:?}");
    assert_eq!(dry.replayed, TOTAL as u64);
    assert!(backend.stalled.load(Ordering::SeqCst) >= 2);
}

#[tokio::test]
async fn a_queue_with_a_delivery_limit_is_never_read_twice_by_a_scan() {
    // Every queue read starts at the head: reading on past a short page would return the
    // first messages again, a second time towards their delivery limit.
    state_dir();
    let b = scenario();
    let backend = Stalling {
        inner: LocalBackend::new(Arc::clone(&b), "local://test"),
        stalled: AtomicUsize::new(0),
        limit: Some(2),
    };
    let plan = ReplayOptions::default().plan().unwrap();
    let dry = replay::dry_run(&backend, "dead", &plan).await.unwrap();
    assert_eq!(backend.stalled.load(Ordering::SeqCst), 1, "one read only");
    assert!(dry.scanned < TOTAL as u64, "{dry:?}");
}

/// Run `op` under a hang at `step` (its `nth` time there), wait for it to get there, and
/// drop it where it stands, as a crash would.
async fn stopped_dead_at<F>(step: &str, nth: u64, op: F)
where
    F: std::future::Future + Send + 'static,
    F::Output: Send,
{
    let hang = mqscope::fault::Hang::at(step, nth);
    let run = {
        let hang = hang.clone();
        tokio::spawn(async move {
            hang.run(op).await;
        })
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !hang.reached() {
        assert!(!run.is_finished(), "{step}: it ended before the step");
        assert!(std::time::Instant::now() < deadline, "{step} never reached");
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    run.abort();
    let _ = run.await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_stopped_dead_at_every_journal_step_then_resumed_loses_and_duplicates_nothing() {
    state_dir();
    let total = 2 * replay::BATCH + replay::BATCH / 2;
    for step in [
        "replay.journalled",
        "replay.sent",
        "replay.confirmed",
        "replay.acked",
        "replay.acked_journalled",
    ] {
        let b = scenario_of(total);
        let opts = ReplayOptions::default();
        let plan = opts.plan().unwrap();
        let id = format!("dead-at-{step}");
        let mut j = Journal::create(&id).unwrap();
        j.append(&replay::begin_entry(&id, "local://test", "dead", &opts))
            .unwrap();
        j.sync().unwrap();
        let path = j.path().to_path_buf();
        let (broker, first_plan) = (Arc::clone(&b), plan.clone());
        stopped_dead_at(step, 2, async move {
            let backend = LocalBackend::new(broker, "local://test");
            let _ = replay::replay(
                &backend,
                "dead",
                &first_plan,
                Some(&mut j),
                Resume::default(),
                &no_progress,
            )
            .await;
        })
        .await;
        let home: usize = ["billing", "ledger", "inbox"]
            .iter()
            .map(|q| b.queue_len(q).unwrap())
            .sum();
        assert!(
            home + b.queue_len("dead").unwrap() >= total,
            "{step}: nothing lost"
        );

        let entries = journal::load(&path).unwrap();
        let mut j = Journal::open(&path).unwrap();
        let healthy = LocalBackend::new(Arc::clone(&b), "local://test");
        let again = replay::replay(
            &healthy,
            "dead",
            &plan,
            Some(&mut j),
            Resume::from_entries(&entries),
            &no_progress,
        )
        .await
        .unwrap();
        assert!(again.ok(), "{step}: {again:?}");
        assert_eq!(b.queue_len("dead").unwrap(), 0, "{step}");
        check_all_home_once_of(&b, total);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_stopped_dead_at_every_step_then_resumed_backs_up_each_message_once() {
    state_dir();
    let total = 2 * replay::BATCH + replay::BATCH / 2;
    for step in ["remove.written", "remove.synced", "remove.acked"] {
        let b = scenario_of(total);
        let queue = "dead".to_string();
        // A target of its own per step: an unfinished purge holds up others of the same
        // queue on the same broker until it is resumed.
        let target = format!("local://{step}");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("backup.jsonl");
        let (mut backup, mut j) =
            replay::start_removal(&target, &queue, "purge", &[], false, Some(&path)).unwrap();
        let journal_path = j.path().to_path_buf();
        let (broker, q) = (Arc::clone(&b), queue.clone());
        stopped_dead_at(step, 2, async move {
            let backend = LocalBackend::new(broker, "local://test");
            let _ = replay::remove(
                backend.taker().unwrap(),
                &q,
                &[],
                false,
                Some(&mut backup),
                Some(&mut j),
                RemovalResume::default(),
                &no_progress,
            )
            .await;
        })
        .await;

        let keys = backup::backup_keys(&path).unwrap();
        let entries = journal::load(&journal_path).unwrap();
        let mut backup = Backup::open(&path, &target).unwrap();
        let mut j = Journal::open(&journal_path).unwrap();
        let healthy = LocalBackend::new(Arc::clone(&b), "local://test");
        let r = replay::remove(
            healthy.taker().unwrap(),
            &queue,
            &[],
            false,
            Some(&mut backup),
            Some(&mut j),
            RemovalResume::new(&keys, &entries),
            &no_progress,
        )
        .await
        .unwrap();
        assert!(r.stopped.is_none(), "{step}: {r:?}");
        assert_eq!(b.queue_len(&queue).unwrap(), 0, "{step}");
        let ids: Vec<Option<String>> = backup::backup_keys(&path)
            .unwrap()
            .into_iter()
            .map(|(_, id)| id)
            .collect();
        let distinct: std::collections::BTreeSet<_> = ids.iter().collect();
        assert_eq!(ids.len(), total, "{step}: one line per message");
        assert_eq!(distinct.len(), total, "{step}: none twice");
    }
}
