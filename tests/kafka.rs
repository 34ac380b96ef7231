//! Kafka-specific behaviour on librdkafka's three-broker mock cluster: headers and keys,
//! offset, time and last-N peeks, merging partitions by time, reads that leave no group
//! or commit, lag from committed offsets, live tails, and brokers that go away.

mod kafka_mock;

use bytes::Bytes;
use chrono::DateTime;
use kafka_mock::Cluster;
use mqscope::backend::kafka::KafkaBackend;
use mqscope::backend::kafka::client::Settings;
use mqscope::backend::{Backend, BackendError, Destination, PeekFrom, PeekRequest, TailFilter};
use mqscope::model::{FieldValue, Message};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::{Duration, Instant};

fn req(from: PeekFrom, partition: Option<i32>, limit: usize) -> PeekRequest {
    PeekRequest {
        from,
        partition,
        limit,
        force: false,
    }
}

fn text(s: &str) -> Message {
    Message::new("", 0, Bytes::from(s.to_string()))
}

fn payloads(ms: &[Message]) -> Vec<String> {
    ms.iter()
        .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_keeps_key_headers_and_partition() {
    let c = Cluster::new();
    let b = c.backend().await;
    let t = c.topic("headers", 3);
    let mut m = text("hello");
    m.key = Some(Bytes::from_static(b"\x00key\xff"));
    m.headers.insert(
        "bin",
        FieldValue::LongString(Bytes::from_static(b"\x00\x01\xff")),
    );
    m.headers.insert("gone", FieldValue::Void);
    m.headers.insert("n", FieldValue::I32(-5));
    let dest = Destination::Topic {
        topic: t.clone(),
        partition: Some(2),
    };
    let publisher = b.publisher().unwrap();
    let r1 = publisher.publish(&dest, &m).await.unwrap();
    let r2 = publisher.publish(&dest, &m).await.unwrap();
    assert_eq!((r1.partition, r1.offset), (Some(2), Some(0)));
    assert_eq!((r2.partition, r2.offset), (Some(2), Some(1)));
    let page = b
        .peek(&t, &req(PeekFrom::Start, Some(2), 10))
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 2);
    let got = &page.messages[1];
    assert_eq!(
        (got.partition, got.offset, got.position),
        (Some(2), Some(1), 1)
    );
    assert_eq!(got.queue, t);
    assert_eq!(got.key, m.key);
    assert!(got.timestamp.is_some());
    assert_eq!(
        got.headers.get("bin"),
        Some(&FieldValue::LongString(Bytes::from_static(b"\x00\x01\xff")))
    );
    assert_eq!(got.headers.get("gone"), Some(&FieldValue::Void));
    assert_eq!(
        got.headers.get("n"),
        Some(&FieldValue::LongString(Bytes::from_static(b"-5")))
    );
    // Unknown topics and partitions are refused rather than auto-created.
    let bad = Destination::Topic {
        topic: format!("{t}-nope"),
        partition: None,
    };
    assert!(matches!(
        publisher.publish(&bad, &m).await,
        Err(BackendError::QueueNotFound(_))
    ));
    let bad_p = Destination::Topic {
        topic: t.clone(),
        partition: Some(7),
    };
    assert!(matches!(
        publisher.publish(&bad_p, &m).await,
        Err(BackendError::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peeks_by_offset_time_and_last_n_on_one_partition() {
    let c = Cluster::new();
    let b = c.backend().await;
    let t = c.topic("windows", 2);
    for i in 0..10 {
        c.produce(&t, 1, &text(&format!("m{i}")), Some(1_000_000 + i * 1000))
            .await;
    }
    c.produce(&t, 0, &text("other"), Some(1_000_000)).await;
    let p1 = |from, n| req(from, Some(1), n);
    let page = b.peek(&t, &p1(PeekFrom::Position(3), 2)).await.unwrap();
    assert_eq!(payloads(&page.messages), ["m3", "m4"]);
    assert_eq!(page.messages[0].offset, Some(3));
    let at = DateTime::from_timestamp_millis(1_006_500).unwrap();
    let page = b.peek(&t, &p1(PeekFrom::Time(at), 10)).await.unwrap();
    assert_eq!(payloads(&page.messages), ["m7", "m8", "m9"]);
    // The mock answers every ListOffsets by time with "none"; the backend notices and
    // says so. A real broker answers and leaves no note.
    assert!(
        page.notes.iter().any(|n| n.contains("record timestamps")),
        "{:?}",
        page.notes
    );
    let exact = DateTime::from_timestamp_millis(1_002_000).unwrap();
    let page = b.peek(&t, &p1(PeekFrom::Time(exact), 2)).await.unwrap();
    assert_eq!(payloads(&page.messages), ["m2", "m3"]);
    let page = b.peek(&t, &p1(PeekFrom::Last, 3)).await.unwrap();
    assert_eq!(payloads(&page.messages), ["m7", "m8", "m9"]);
    let page = b.peek(&t, &p1(PeekFrom::Last, 50)).await.unwrap();
    assert_eq!(page.messages.len(), 10);
    let page = b.peek(&t, &p1(PeekFrom::Position(10), 5)).await.unwrap();
    assert!(page.messages.is_empty());
    let e = b.peek(&t, &p1(PeekFrom::Start, 0)).await.unwrap();
    assert!(e.messages.is_empty());
    assert!(matches!(
        b.peek(&t, &req(PeekFrom::Start, Some(9), 1)).await,
        Err(BackendError::InvalidArgument(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_partitions_merge_in_time_order() {
    let c = Cluster::new();
    let b = c.backend().await;
    let t = c.topic("merge", 3);
    // Timestamps interleave across partitions; each partition is in time order itself.
    let plan = [
        (0, 10),
        (1, 20),
        (2, 30),
        (1, 40),
        (0, 50),
        (2, 60),
        (2, 70),
        (0, 80),
    ];
    for (i, (p, ts)) in plan.iter().enumerate() {
        c.produce(&t, *p, &text(&format!("t{ts}-{i}")), Some(5_000_000 + ts))
            .await;
    }
    let all = b.peek(&t, &PeekRequest::first(100)).await.unwrap();
    let times: Vec<i64> = all
        .messages
        .iter()
        .map(|m| m.timestamp.unwrap().timestamp_millis() - 5_000_000)
        .collect();
    assert_eq!(times, [10, 20, 30, 40, 50, 60, 70, 80]);
    let first3 = b.peek(&t, &PeekRequest::first(3)).await.unwrap();
    assert_eq!(payloads(&first3.messages), ["t10-0", "t20-1", "t30-2"]);
    let last3 = b.peek(&t, &req(PeekFrom::Last, None, 3)).await.unwrap();
    assert_eq!(payloads(&last3.messages), ["t60-5", "t70-6", "t80-7"]);
    let since = DateTime::from_timestamp_millis(5_000_045).unwrap();
    let later = b
        .peek(&t, &req(PeekFrom::Time(since), None, 2))
        .await
        .unwrap();
    assert_eq!(payloads(&later.messages), ["t50-4", "t60-5"]);
    let list = b.list_queues().await.unwrap();
    let q = list.iter().find(|q| q.name == t).unwrap();
    assert_eq!((q.partitions, q.messages), (Some(3), Some(8)));
}

/// After peeks the readers' throwaway group has nothing committed, and a real group's
/// commits are exactly what that group made (the mock does store commits, so a reader
/// that committed would be seen).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peeks_leave_no_group_and_no_commit() {
    let c = Cluster::new();
    let b = c.backend().await;
    let t = c.topic("nocommit", 2);
    for i in 0..6 {
        c.produce(&t, i % 2, &text(&format!("x{i}")), None).await;
    }
    // A real group commits offset 1 on partition 0: lag is computed from OffsetFetch.
    let group = format!("billing-{t}");
    let g: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&t, 0, Offset::Offset(1)).unwrap();
    g.commit(&tpl, CommitMode::Sync).unwrap();
    for from in [PeekFrom::Start, PeekFrom::Last, PeekFrom::Position(1)] {
        let page = b.peek(&t, &req(from, None, 10)).await.unwrap();
        assert!(!page.messages.is_empty());
    }
    let lag = b.group_offsets(&group).await.unwrap();
    assert_eq!(lag.topics, std::slice::from_ref(&t));
    assert_eq!(lag.partitions.len(), 1, "{lag:?}");
    let p = &lag.partitions[0];
    assert_eq!(
        (p.partition, p.committed, p.high, p.lag),
        (0, Some(1), 3, 2)
    );
    assert_eq!(lag.lag, 2);
    let tail = b
        .live_tail()
        .unwrap()
        .tail(&TailFilter {
            sources: vec![t.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    c.produce(&t, 1, &text("tailed"), None).await;
    drop(tail);
    // Give a reader that wrongly auto-committed on close the time to do it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let readers = b.group_offsets(b.reader_group()).await.unwrap();
    assert!(
        readers.partitions.is_empty(),
        "peeks committed: {readers:?}"
    );
    assert!(b.reader_group().starts_with("mqscope-peek-"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_hides_internal_topics_and_pairs_dead_letters() {
    let c = Cluster::new();
    let b = c.backend().await;
    c.mock.0.create_topic("payments", 2, 1).unwrap();
    c.mock.0.create_topic("payments-dlt", 1, 1).unwrap();
    c.mock.0.create_topic("__internal_state", 1, 1).unwrap();
    c.produce("payments", 1, &text("a"), None).await;
    c.produce("payments", 1, &text("b"), None).await;
    let list = b.list_queues().await.unwrap();
    assert!(!list.iter().any(|q| q.name.starts_with("__")), "{list:?}");
    let pay = list.iter().find(|q| q.name == "payments").unwrap();
    assert_eq!(pay.queue_type, "topic");
    assert_eq!(pay.messages, Some(2));
    assert_eq!(pay.dead_letter_queue.as_deref(), Some("payments-dlt"));
    let dlt = list.iter().find(|q| q.name == "payments-dlt").unwrap();
    assert!(dlt.is_dead_letter);
    assert_eq!(dlt.dead_letter_sources, ["payments"]);
    // The mock leaves DescribeConfigs unanswered: the first describe waits a bounded
    // while for it, later ones do not ask again; both show partitions without configs.
    let start = Instant::now();
    let first = b.describe_queue("payments-dlt").await.unwrap();
    // Bounds say "no hang", not "fast": twelve mock clusters share two cores in CI.
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert!(first.configs.is_empty(), "{:?}", first.configs);
    let start = Instant::now();
    let d = b.describe_queue("payments").await.unwrap();
    // Under the 2 s configs wait: it did not ask (and wait) again.
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
    assert!(d.configs.is_empty(), "{:?}", d.configs);
    let e = b.topic_configs("payments").await.unwrap_err();
    eprintln!("describe configs on the mock: {e}");
    assert!(
        matches!(
            e,
            BackendError::Timeout { .. } | BackendError::Unreachable { .. }
        ),
        "{e:?}"
    );
    assert_eq!(d.partitions_detail.len(), 2);
    let p1 = &d.partitions_detail[1];
    assert_eq!((p1.partition, p1.low, p1.high), (1, 0, 2));
    assert!(p1.leader.is_some());
    assert_eq!(p1.replicas.len(), 1);
    assert_eq!(d.summary.dead_letter_queue.as_deref(), Some("payments-dlt"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_listing_on_the_mock_is_reported_unsupported() {
    let c = Cluster::new();
    let b = c.backend().await;
    let start = Instant::now();
    let e = b
        .consumer_groups()
        .unwrap()
        .list_groups()
        .await
        .unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(e, BackendError::Unsupported { .. }), "{e:?}");
    assert!(e.to_string().contains("listing consumer groups"), "{e}");
    eprintln!("groups on the mock after {:?}: {e}", start.elapsed());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_follows_new_records_only() {
    let c = Cluster::new();
    let b = c.backend().await;
    let t = c.topic("tail", 2);
    c.produce(&t, 0, &text("before"), None).await;
    let mut tail = b
        .live_tail()
        .unwrap()
        .tail(&TailFilter {
            sources: vec![t.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    c.produce(&t, 1, &text("after-1"), None).await;
    c.produce(&t, 0, &text("after-2"), None).await;
    let mut got = Vec::new();
    while got.len() < 2 {
        let m = tokio::time::timeout(Duration::from_secs(10), tail.events.recv())
            .await
            .expect("tail delivers within 10s")
            .expect("tail open")
            .unwrap();
        got.push(String::from_utf8_lossy(&m.message().payload).into_owned());
    }
    got.sort();
    assert_eq!(got, ["after-1", "after-2"]);
    assert!(matches!(
        b.live_tail()
            .unwrap()
            .tail(&TailFilter {
                sources: vec!["no-such-topic".into()],
                ..Default::default()
            })
            .await,
        Err(BackendError::QueueNotFound(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_topics_are_not_created_by_peeks() {
    let c = Cluster::new();
    let b = c.backend().await;
    for _ in 0..2 {
        assert!(matches!(
            b.peek("ghost", &PeekRequest::first(1)).await,
            Err(BackendError::QueueNotFound(_))
        ));
    }
    assert!(
        !b.list_queues()
            .await
            .unwrap()
            .iter()
            .any(|q| q.name == "ghost")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_cluster_fails_fast_with_one_line() {
    let mut s = Settings::new(vec!["127.0.0.1:1".into()]);
    s.timeout = Duration::from_secs(2);
    let start = Instant::now();
    let e = match KafkaBackend::connect(s).await {
        Err(e) => e,
        Ok(_) => panic!("connected to a closed port"),
    };
    assert!(
        start.elapsed() < Duration::from_secs(12),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(e, BackendError::Unreachable { .. }), "{e:?}");
    let line = e.to_string();
    eprintln!("unreachable after {:?}: {line}", start.elapsed());
    assert!(
        !line.contains('\n') && line.contains("127.0.0.1:1"),
        "{line}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_down_is_reported_then_recovers() {
    let c = Cluster::new();
    let b = KafkaBackend::connect(c.settings(Duration::from_secs(2)))
        .await
        .unwrap();
    let t = c.topic("down", 3);
    for p in 0..3 {
        c.mock.0.partition_leader(&t, p, Some(p + 1)).unwrap();
        c.produce(&t, p, &text(&format!("p{p}")), None).await;
    }
    let before = b.peek(&t, &PeekRequest::first(10)).await.unwrap();
    assert_eq!(before.messages.len(), 3);
    c.mock.0.broker_down(2).unwrap();
    let start = Instant::now();
    let e = b.peek(&t, &PeekRequest::first(10)).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "{:?}",
        start.elapsed()
    );
    assert!(matches!(e, BackendError::Unreachable { .. }), "{e:?}");
    eprintln!("broker down after {:?}: {e}", start.elapsed());
    // Other partitions stay readable while their leaders are up.
    let p0 = b
        .peek(&t, &req(PeekFrom::Start, Some(0), 10))
        .await
        .unwrap();
    assert_eq!(payloads(&p0.messages), ["p0"]);
    c.mock.0.broker_up(2).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match b.peek(&t, &PeekRequest::first(10)).await {
            Ok(page) if page.messages.len() == 3 => break,
            other if Instant::now() > deadline => panic!("no recovery: {other:?}"),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_streams_every_partition_and_stops_when_dropped() {
    let c = Cluster::new();
    let b = c.backend().await;
    let t = c.topic("export", 3);
    for i in 0..60 {
        c.produce(&t, i % 3, &text(&format!("e{i}")), None).await;
    }
    let exporter = b.exporter().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Message>>(2);
    let reading = async {
        let mut got = Vec::new();
        while let Some(batch) = rx.recv().await {
            assert!(batch.len() <= 7);
            got.extend(batch);
        }
        got
    };
    let (sent, got) = tokio::join!(exporter.export(&t, None, &PeekFrom::Start, 7, tx), reading);
    assert_eq!(sent.unwrap(), 60);
    let mut keys: Vec<(i32, i64)> = got
        .iter()
        .map(|m| (m.partition.unwrap(), m.offset.unwrap()))
        .collect();
    keys.sort_unstable();
    let want: Vec<(i32, i64)> = (0..3).flat_map(|p| (0..20).map(move |o| (p, o))).collect();
    assert_eq!(keys, want);
    // From an offset, one partition.
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let n = exporter
        .export(&t, Some(2), &PeekFrom::Position(15), 100, tx)
        .await
        .unwrap();
    assert_eq!(n, 5);
    let batch = rx.recv().await.unwrap();
    assert_eq!(batch.first().and_then(|m| m.offset), Some(15));
    // A receiver that goes away ends the export early, without an error or a hang.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let start = Instant::now();
    let first = async {
        let b = rx.recv().await;
        drop(rx);
        b
    };
    let (sent, first) = tokio::join!(exporter.export(&t, None, &PeekFrom::Start, 5, tx), first);
    assert_eq!(first.map(|b| b.len()), Some(5));
    assert!(sent.unwrap() < 60);
    assert!(start.elapsed() < Duration::from_secs(15));
}

/// An export from a time starts each partition at its first record that late (what
/// `trace --since` reads a topic from), and one from the last messages is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_from_a_time_starts_each_partition_there() {
    let c = Cluster::new();
    let b = c.backend().await;
    let t = c.topic("export-time", 2);
    let base = 1_767_225_600_000i64;
    // Partition 0 at 0, 10, ..., 90 ms; partition 1 at 5, 15, ..., 95 ms.
    for i in 0..10 {
        for p in 0..2 {
            let at = base + 10 * i + 5 * i64::from(p);
            c.produce(&t, p, &text(&format!("p{p}-{i}")), Some(at))
                .await;
        }
    }
    let exporter = b.exporter().unwrap();
    let from = PeekFrom::Time(DateTime::from_timestamp_millis(base + 62).unwrap());
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Message>>(8);
    let reading = async {
        let mut got = Vec::new();
        while let Some(batch) = rx.recv().await {
            got.extend(batch);
        }
        got
    };
    let (sent, got) = tokio::join!(exporter.export(&t, None, &from, 100, tx), reading);
    assert_eq!(sent.unwrap(), 7);
    let mut keys: Vec<(i32, i64)> = got
        .iter()
        .map(|m| (m.partition.unwrap(), m.offset.unwrap()))
        .collect();
    keys.sort_unstable();
    // p0: 70, 80, 90 ms (offsets 7..10); p1: 65, 75, 85, 95 ms (offsets 6..10).
    assert_eq!(
        keys,
        [(0, 7), (0, 8), (0, 9), (1, 6), (1, 7), (1, 8), (1, 9)]
    );
    // Later than everything: nothing, and no hang.
    let late = PeekFrom::Time(DateTime::from_timestamp_millis(base + 1_000).unwrap());
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    assert_eq!(exporter.export(&t, None, &late, 100, tx).await.unwrap(), 0);
    let (tx, _rx) = tokio::sync::mpsc::channel(8);
    assert!(matches!(
        exporter.export(&t, None, &PeekFrom::Last, 100, tx).await,
        Err(BackendError::InvalidArgument(_))
    ));
}
