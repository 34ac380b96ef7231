//! The recorder on the local broker: every publish and dead-lettering of a fan-out kept
//! after the queues are emptied, a restart reported as a gap with nothing recorded twice,
//! the buffer's counts adding up, and a broker's own kept history (the demo's) stored first.

mod kafka_mock;
mod local_orders;
mod recording;

use local_orders::{order, orders_broker};
use mqscope::backend::local::LocalBackend;
use mqscope::backend::local::broker::{LocalBroker, LocalConfig, QueueArgs};
use mqscope::backend::local::clock::Clock;
use mqscope::model::envelope::EventKind;
use mqscope::model::topology::ExchangeKind;
use mqscope::ops::record::{RecordEvent, RecordOptions, Status, Store};
use recording::Running;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

fn fan_out() -> Arc<LocalBroker> {
    let b = orders_broker();
    b.declare_exchange("dlx", ExchangeKind::Direct).unwrap();
    b.declare_queue("billing.dlq", QueueArgs::default())
        .unwrap();
    b.bind_queue("billing.dlq", "dlx", "billing").unwrap();
    b.declare_queue(
        "billing",
        QueueArgs {
            dead_letter_exchange: Some("dlx".into()),
            dead_letter_routing_key: Some("billing".into()),
            ..QueueArgs::default()
        },
    )
    .unwrap();
    b.declare_queue("shipping", QueueArgs::default()).unwrap();
    b.bind_queue("billing", "orders", "").unwrap();
    b.bind_queue("shipping", "orders", "").unwrap();
    b
}

async fn start(b: &Arc<LocalBroker>, db: &Path, opts: RecordOptions) -> Running {
    Running::start(LocalBackend::new(Arc::clone(b), "local://test"), db, opts).await
}

/// Stop once `stored` envelopes are written: the final status and every event.
async fn stop_after(run: Running, stored: u64) -> (Status, Vec<RecordEvent>) {
    run.wait_stored(stored).await;
    run.stop().await
}

fn quick() -> RecordOptions {
    RecordOptions {
        interval: Duration::from_millis(20),
        ..RecordOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journey_is_kept_after_every_queue_is_emptied() {
    let b = fan_out();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    let run = start(&b, &db, quick()).await;
    b.publish("orders", "order.created", order("other", 1))
        .unwrap();
    b.publish("orders", "order.created", order("wanted", 2))
        .unwrap();
    // Billing takes the first and rejects the wanted one; shipping takes both; the
    // dead letter is taken by the operations team.
    let first = b.get_by("billing", false, "billing-svc").unwrap().unwrap();
    b.ack(first.tag).unwrap();
    let d = b.get_by("billing", false, "billing-svc").unwrap().unwrap();
    b.nack(d.tag, false).unwrap();
    while b
        .get_by("shipping", true, "shipping-svc")
        .unwrap()
        .is_some()
    {}
    while b.get_by("billing.dlq", true, "ops").unwrap().is_some() {}
    for q in ["billing", "shipping", "billing.dlq"] {
        assert_eq!(b.queue_len(q).unwrap(), 0, "{q} is empty");
    }
    // Two publishes, one dead-lettering, five deliveries.
    let (status, _) = stop_after(run, 8).await;
    assert_eq!((status.received, status.stored, status.dropped), (8, 8, 0));

    // Publish then dead-lettering, as on RabbitMQ; the deliveries beside them.
    recording::recorded_fan_out_journey(&db);
    let s = Store::open_read(&db).unwrap();
    let got = s.by_correlation("wanted", None).unwrap();
    let user = |e: &mqscope::model::envelope::Envelope| {
        e.details
            .iter()
            .find(|(k, _)| k == "user")
            .map(|(_, v)| v.clone())
    };
    let mut kinds: Vec<(EventKind, &str, Option<String>)> = got
        .iter()
        .map(|e| (e.kind, e.source.as_str(), user(e)))
        .collect();
    kinds.sort_by(|a, b| (a.0.as_str(), a.1).cmp(&(b.0.as_str(), b.1)));
    assert_eq!(
        kinds,
        vec![
            (EventKind::DeadLetter, "dlx", None),
            (EventKind::Deliver, "billing", Some("billing-svc".into())),
            (EventKind::Deliver, "billing.dlq", Some("ops".into())),
            (EventKind::Deliver, "shipping", Some("shipping-svc".into())),
            (EventKind::Publish, "orders", None),
        ]
    );
    let publish = got.iter().find(|e| e.kind == EventKind::Publish).unwrap();
    let died = got
        .iter()
        .find(|e| e.kind == EventKind::DeadLetter)
        .unwrap();
    assert_eq!(died.deaths()[0].queue, "billing");
    assert!(
        got.iter().all(|e| e.message_key == publish.message_key),
        "one message, every event of it"
    );
    assert_eq!(&publish.body[..], b"{\"order\": 2}");

    // Every queue is empty, yet the trace over the database gives the journey: the fan-out's
    // routes from the recorded publish, and who took each copy.
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let mut t = mqscope::ops::trace::trace(&backend, "wanted", &Default::default())
        .await
        .unwrap();
    assert!(t.hops.is_empty(), "nothing is left on the broker");
    let r = mqscope::ops::record::merge_routed(&backend, &mut t, &db, None, None)
        .await
        .unwrap();
    assert_eq!(r.added, 5);
    let fate = |q: &str| {
        let r = t.routes.iter().find(|r| r.queue.as_deref() == Some(q));
        r.map(|r| (r.fate.as_str(), r.headline.clone()))
    };
    assert_eq!(
        fate("shipping"),
        Some((
            "picked up",
            "picked up from shipping by user shipping-svc, redelivered: no".to_string()
        )),
        "{:#?}",
        t.routes
    );
    assert_eq!(
        fate("billing").map(|f| f.0),
        Some("dead-lettered"),
        "{:#?}",
        t.routes
    );
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_is_a_gap_and_records_nothing_twice() {
    let b = fan_out();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    let run = start(&b, &db, quick()).await;
    b.publish("orders", "k", order("c", 1)).unwrap();
    let (first, events) = stop_after(run, 1).await;
    assert_eq!(first.stored, 1);
    assert!(
        !events.iter().any(|e| matches!(e, RecordEvent::Gap(_))),
        "a new database has no gap"
    );

    // The recorder is away while this is published.
    b.publish("orders", "k", order("c", 2)).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let run = start(&b, &db, quick()).await;
    // The same message once more (as a replayed tap would give it), and a new one.
    b.publish("orders", "k", order("c", 1)).unwrap();
    b.publish("orders", "k", order("c", 3)).unwrap();
    let (second, events) = stop_after(run, 1).await;
    assert_eq!((second.stored, second.duplicates), (1, 1));
    let gap = events
        .iter()
        .find_map(|e| match e {
            RecordEvent::Gap(g) => Some(g.clone()),
            _ => None,
        })
        .expect("the time away is a gap");
    assert!(gap.reason.contains("not running"), "{}", gap.reason);
    assert!(gap.to > gap.from);

    let s = Store::open_read(&db).unwrap();
    assert_eq!(s.count().unwrap(), 2);
    let ids: Vec<_> = s
        .by_correlation("c", None)
        .unwrap()
        .into_iter()
        .map(|e| e.message_id.unwrap())
        .collect();
    assert_eq!(ids, vec!["m1", "m3"], "m2 was published while away");
    assert_eq!(s.gaps(None, None).unwrap(), vec![gap]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_buffer_cannot_hold_is_dropped_and_counted() {
    let b = fan_out();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    let opts = RecordOptions {
        buffer: 1,
        batch: 1,
        ..quick()
    };
    let run = start(&b, &db, opts).await;
    for n in 0..2_000 {
        b.publish("orders", "k", order(&format!("c{n}"), n))
            .unwrap();
    }
    // Give the tap time to read everything, then stop.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (status, _) = stop_after(run, 0).await;
    let stored = Store::open_read(&db).unwrap().count().unwrap();
    assert_eq!(stored, status.stored);
    assert_eq!(
        status.received,
        status.stored + status.dropped + status.duplicates,
        "{status:?}"
    );
    assert!(status.received > 0);
    assert!(
        status.dropped > 0,
        "a one-envelope buffer behind one-row transactions drops some of 2,000: {status:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_s_kept_history_is_stored_first_and_each_event_once() {
    // A broker that keeps its events, as the demo's does.
    let b = Arc::new(LocalBroker::new(
        "t",
        Clock::manual(1_000_000),
        LocalConfig {
            keep_events: 100,
            ..LocalConfig::default()
        },
    ));
    b.declare_exchange("orders", ExchangeKind::Fanout).unwrap();
    b.declare_queue("shipping", QueueArgs::default()).unwrap();
    b.bind_queue("shipping", "orders", "").unwrap();
    // Before any recorder: an order published and taken by its consumer.
    b.publish("orders", "k", order("early", 1)).unwrap();
    b.get_by("shipping", true, "shipping-svc").unwrap().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    let run = start(&b, &db, quick()).await;
    b.publish("orders", "k", order("late", 2)).unwrap();
    let (first, _) = stop_after(run, 1).await;
    assert_eq!((first.kept, first.stored, first.duplicates), (2, 1, 0));

    // Again into the same database: the history now holds all three events, each stored
    // already; only what comes live is new.
    let run = start(&b, &db, quick()).await;
    b.publish("orders", "k", order("later", 3)).unwrap();
    let (second, _) = stop_after(run, 1).await;
    assert_eq!((second.kept, second.stored, second.duplicates), (0, 1, 0));

    let s = Store::open_read(&db).unwrap();
    assert_eq!(s.count().unwrap(), 4, "each event once");
    let early: Vec<(EventKind, String)> = s
        .by_correlation("early", None)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.source))
        .collect();
    assert_eq!(
        early,
        vec![
            (EventKind::Publish, "orders".to_string()),
            (EventKind::Deliver, "shipping".to_string())
        ],
        "what happened before the recorder, from the broker's history"
    );
    for corr in ["late", "later"] {
        assert_eq!(s.by_correlation(corr, None).unwrap().len(), 1, "{corr}");
    }
    assert_eq!(s.integrity_check().unwrap(), "ok");
}

/// `mqscope record` on the demo broker, into `db`, its output kept.
fn record_binary(db: &Path) -> std::process::Child {
    std::process::Command::new(env!("CARGO_BIN_EXE_mqscope"))
        .args([
            "record",
            "--url",
            "local://demo",
            "--interval",
            "1s",
            "--db",
        ])
        .arg(db)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait (up to 20 s) until the database holds more than `n` envelopes; how many it holds.
fn wait_rows(db: &Path, n: u64) -> u64 {
    for _ in 0..200 {
        if let Ok(s) = Store::open_read(db)
            && let Ok(c) = s.count()
            && c > n
        {
            return c;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no more than {n} envelopes in {} after 20 s", db.display());
}

#[test]
fn killed_with_sigkill_the_recorder_resumes_into_an_intact_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    let mut first = record_binary(&db);
    wait_rows(&db, 0);
    first.kill().unwrap(); // SIGKILL: no chance to finish a batch or say goodbye
    first.wait().unwrap();
    let s = Store::open(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let before = s.count().unwrap();
    drop(s);

    let second = record_binary(&db);
    wait_rows(&db, before);
    // SAFETY: signalling a child process this test started and has not yet waited for.
    unsafe { libc::kill(second.id() as i32, libc::SIGINT) };
    let out = second.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("gap: nothing recorded from") && stdout.contains("not running"),
        "the time it was down is said: {stdout}"
    );
    assert!(stdout.contains("stored"), "status lines: {stdout}");
    // The demo broker of this run kept its own history (the traffic it was seeded with),
    // stored before the live events.
    assert!(stdout.contains("  kept "), "the demo's history: {stdout}");
    let s = Store::open(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), "ok");
    assert!(s.count().unwrap() > before);
    let gaps = s.gaps(None, None).unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    assert!(gaps[0].reason.contains("not running"));
}

#[test]
fn a_read_only_database_is_refused_with_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    drop(Store::open(&db).unwrap());
    // Unwritable even for root: chattr +i where permissions are not enough.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o444)).unwrap();
    let immutable = std::fs::OpenOptions::new().append(true).open(&db).is_ok()
        && std::process::Command::new("chattr")
            .arg("+i")
            .arg(&db)
            .status()
            .is_ok_and(|s| s.success());
    let out = record_binary(&db).wait_with_output().unwrap();
    if immutable {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&db)
            .status();
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("read-only"), "{stderr}");
    assert!(stderr.contains(&*db.display().to_string()), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_kafka_recording_goes_on_from_the_offsets_it_stored() {
    let cluster = kafka_mock::Cluster::new();
    let topic = cluster.topic("rec-payments", 2);
    let record = |n: u32| {
        let mut m = mqscope::model::Message::new(&topic, 0, format!("{{\"n\":{n}}}").into_bytes());
        m.headers.insert(
            "correlation_id",
            mqscope::model::FieldValue::string(format!("pay-{}", n % 2)),
        );
        m
    };
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    let run = Running::start(cluster.backend().await, &db, quick()).await;
    for n in 0..4 {
        cluster
            .produce(&topic, (n % 2) as i32, &record(n), None)
            .await;
    }
    let (first, _) = stop_after(run, 4).await;
    assert_eq!(first.stored, 4);
    // Produced while no recorder runs: a tail from the end would miss these.
    for n in 4..7 {
        cluster
            .produce(&topic, (n % 2) as i32, &record(n), None)
            .await;
    }
    let run = Running::start(cluster.backend().await, &db, quick()).await;
    cluster.produce(&topic, 0, &record(8), None).await;
    let (second, events) = stop_after(run, 4).await;
    assert_eq!((second.stored, second.duplicates), (4, 0), "{events:?}");
    let s = Store::open_read(&db).unwrap();
    assert_eq!(s.count().unwrap(), 8);
    let mut offsets = s.offsets().unwrap();
    offsets.sort();
    assert_eq!(offsets, vec![(topic.clone(), 0, 5), (topic.clone(), 1, 3)]);
    let evens: Vec<_> = s
        .by_correlation("pay-0", None)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.partition, e.offset))
        .collect();
    assert_eq!(evens.len(), 5, "{evens:?}");
    assert!(
        evens
            .iter()
            .all(|(k, p, _)| *k == EventKind::Record && *p == Some(0))
    );
}
