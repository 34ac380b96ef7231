//! Replaying a Spring-style dead-letter topic to its original topic on librdkafka's mock
//! cluster: keys, headers and payloads arrive intact (minus the DLT headers, plus the
//! replay headers), each record goes back once, partitions are kept where asked, and the
//! dead-letter topic itself is not modified.

mod kafka_mock;

use bytes::Bytes;
use kafka_mock::Cluster;
use mqscope::backend::{Backend, PeekRequest};
use mqscope::model::{FieldValue, Message};
use mqscope::ops::journal::{self, Journal};
use mqscope::ops::replay::{self, REPLAY_COUNT, REPLAYED_FROM, ReplayOptions, Resume};

fn spring_dead_letter(i: usize, original: &str, partition: i32) -> Message {
    let mut m = Message::new("", 0, format!("{{\"order\":{i}}}").into_bytes());
    m.key = Some(Bytes::from(format!("order-{i}")));
    m.headers.insert(
        "traceparent",
        FieldValue::string(format!("00-{i:032x}-{i:016x}-01")),
    );
    m.headers.insert(
        "bin",
        FieldValue::ByteArray(Bytes::from(vec![0u8, 255, i as u8])),
    );
    let h = |v: Vec<u8>| FieldValue::LongString(Bytes::from(v));
    m.headers
        .insert("kafka_dlt-original-topic", h(original.as_bytes().to_vec()));
    m.headers.insert(
        "kafka_dlt-original-partition",
        h(partition.to_be_bytes().to_vec()),
    );
    m.headers.insert(
        "kafka_dlt-original-offset",
        h((i as i64).to_be_bytes().to_vec()),
    );
    m.headers.insert(
        "kafka_dlt-exception-message",
        h(b"boom: payment declined".to_vec()),
    );
    m
}

/// One temporary state directory for this binary's journals, set before any test reads it.
fn state_dir() {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        // SAFETY: written once, by the first test to ask, before it starts any client.
        unsafe { std::env::set_var("MQSCOPE_STATE_DIR", dir.path()) };
        dir
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spring_dlt_replays_to_its_topic_with_key_and_headers_and_the_dlt_is_untouched() {
    state_dir();
    let c = Cluster::new();
    let orders = c.topic("orders", 3);
    let dlt = c.topic("orders.DLT", 2);
    const N: usize = 60;
    for i in 0..N {
        let p = (i % 3) as i32;
        c.produce(
            &dlt,
            (i % 2) as i32,
            &spring_dead_letter(i, &orders, p),
            None,
        )
        .await;
    }
    let b = c.backend().await;
    let before = b.describe_queue(&dlt).await.unwrap().summary.messages;

    let opts = ReplayOptions {
        keep_partition: true,
        ..ReplayOptions::default()
    };
    let plan = opts.plan().unwrap();
    let dry = replay::dry_run(&b, &dlt, &plan).await.unwrap();
    assert_eq!(dry.replayed, N as u64);
    assert_eq!(
        dry.destinations.get(&format!("topic {orders}")),
        Some(&(N as u64))
    );

    let mut j = Journal::create("kafka").unwrap();
    j.append(&replay::begin_entry("kafka", "mock", &dlt, &opts))
        .unwrap();
    let r = replay::replay(&b, &dlt, &plan, Some(&mut j), Resume::default(), &|_, _| {})
        .await
        .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.replayed, N as u64);

    // The DLT is as it was.
    assert_eq!(
        b.describe_queue(&dlt).await.unwrap().summary.messages,
        before
    );
    // Every record is back in its original partition, once.
    let got = b
        .peek(&orders, &PeekRequest::first(10 * N))
        .await
        .unwrap()
        .messages;
    assert_eq!(got.len(), N);
    let mut seen = std::collections::BTreeSet::new();
    for m in &got {
        let key = String::from_utf8(m.key.clone().unwrap().to_vec()).unwrap();
        let i: usize = key.trim_start_matches("order-").parse().unwrap();
        assert!(seen.insert(i), "order {i} twice");
        assert_eq!(m.partition, Some((i % 3) as i32), "kept its partition");
        assert_eq!(m.payload, Bytes::from(format!("{{\"order\":{i}}}")));
        let header = |k: &str| {
            m.headers
                .get(k)
                .and_then(|v| v.as_bytes())
                .map(<[u8]>::to_vec)
        };
        assert_eq!(
            header("bin"),
            Some(vec![0u8, 255, i as u8]),
            "binary header intact"
        );
        assert_eq!(
            header("traceparent"),
            Some(format!("00-{i:032x}-{i:016x}-01").into_bytes())
        );
        assert!(
            header("kafka_dlt-original-topic").is_none(),
            "DLT headers dropped"
        );
        assert_eq!(header(REPLAY_COUNT), Some(b"1".to_vec()));
        let from = String::from_utf8(header(REPLAYED_FROM).unwrap()).unwrap();
        assert!(from.starts_with(&format!("{dlt}/")), "{from}");
    }

    // Running the journal again (a resume) sends nothing twice.
    let entries = journal::load(j.path()).unwrap();
    let again = replay::replay(
        &b,
        &dlt,
        &plan,
        None,
        Resume::from_entries(&entries),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(again.replayed, 0);
    assert_eq!(again.already_replayed, N as u64);
    let after = b
        .peek(&orders, &PeekRequest::first(10 * N))
        .await
        .unwrap()
        .messages;
    assert_eq!(after.len(), N);
}

/// The steps of a log replay's batch: the takes journalled, the copies confirmed, their
/// confirms journalled.
const LOG_STEPS: &[&str] = &["replay.journalled", "replay.published", "replay.confirmed"];

/// Stopped dead at each step of its journal (the operation dropped where it stands, as a
/// crash would leave it), then resumed from the journal: each record is back once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_replay_stopped_at_every_journal_step_then_resumed_sends_each_record_once() {
    state_dir();
    const N: usize = 300;
    for step in LOG_STEPS {
        let c = Cluster::new();
        let orders = c.topic("orders", 2);
        let dlt = c.topic("orders.DLT", 1);
        for i in 0..N {
            c.produce(&dlt, 0, &spring_dead_letter(i, &orders, 0), None)
                .await;
        }
        let b = std::sync::Arc::new(c.backend().await);
        let opts = ReplayOptions {
            batch: Some(100),
            ..ReplayOptions::default()
        };
        let plan = opts.plan().unwrap();
        let id = format!("log-{step}");
        let mut j = Journal::create(&id).unwrap();
        j.append(&replay::begin_entry(&id, "mock", &dlt, &opts))
            .unwrap();
        j.sync().unwrap();
        let path = j.path().to_path_buf();
        let hang = mqscope::fault::Hang::at(step, 2);
        let run = {
            let (b, dlt, plan, hang) = (b.clone(), dlt.clone(), plan.clone(), hang.clone());
            tokio::spawn(async move {
                hang.run(replay::replay(
                    b.as_ref(),
                    &dlt,
                    &plan,
                    Some(&mut j),
                    Resume::default(),
                    &|_, _| {},
                ))
                .await
                .map(|_| ())
            })
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !hang.reached() {
            assert!(
                !run.is_finished(),
                "{step}: the replay ended before the step"
            );
            assert!(std::time::Instant::now() < deadline, "{step} never reached");
            tokio::time::sleep(std::time::Duration::from_millis(2)).await;
        }
        run.abort();
        let _ = run.await;

        let entries = journal::load(&path).unwrap();
        let mut j = Journal::open(&path).unwrap();
        let again = replay::replay(
            b.as_ref(),
            &dlt,
            &plan,
            Some(&mut j),
            Resume::from_entries(&entries),
            &|_, _| {},
        )
        .await
        .unwrap();
        assert!(again.ok(), "{step}: {again:?}");
        let got = b
            .peek(&orders, &PeekRequest::first(10 * N))
            .await
            .unwrap()
            .messages;
        let mut seen = std::collections::BTreeMap::new();
        for m in &got {
            let key = String::from_utf8(m.key.clone().unwrap().to_vec()).unwrap();
            *seen.entry(key).or_insert(0) += 1;
        }
        let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
        assert!(twice.is_empty(), "{step}: sent twice: {twice:?}");
        assert_eq!(seen.len(), N, "{step}: every record is back");
    }
}
