//! A replay from a dead-letter topic asked to move past what it replayed: `--commit-group`
//! commits a group up to the first record of each partition that was not replayed (never
//! backwards), and `--delete-records` on a broker without DeleteRecords (librdkafka's mock)
//! says so and fails the command while the replayed copies stand and the topic is intact.

mod kafka_mock;

use bytes::Bytes;
use kafka_mock::Cluster;
use mqscope::backend::Backend;
use mqscope::model::{FieldValue, Message};
use mqscope::ops::replay::{self, Advanced, ReplayOptions, Resume};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::time::Duration;

/// Dead letter `i` of `original`, or (for `orphan`) a record with no origin header.
fn dead_letter(i: usize, original: &str, orphan: bool) -> Message {
    let mut m = Message::new("", 0, format!("{{\"order\":{i}}}").into_bytes());
    m.key = Some(Bytes::from(format!("order-{i}")));
    if !orphan {
        m.headers
            .insert("kafka_dlt-original-topic", FieldValue::string(original));
    }
    m
}

fn group_client(c: &Cluster, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .unwrap()
}

fn committed(c: &Cluster, group: &str, topic: &str) -> Vec<(i32, Option<i64>)> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition(topic, 0);
    tpl.add_partition(topic, 1);
    group_client(c, group)
        .committed_offsets(tpl, Duration::from_secs(5))
        .unwrap()
        .elements()
        .iter()
        .map(|e| {
            let o = match e.offset() {
                Offset::Offset(o) => Some(o),
                _ => None,
            };
            (e.partition(), o)
        })
        .collect()
}

/// A replay of `dlt` without a journal.
async fn run(
    b: &dyn Backend,
    dlt: &str,
    opts: &ReplayOptions,
) -> Result<replay::Report, replay::ReplayError> {
    replay::replay(b, dlt, &opts.plan()?, None, Resume::default(), &|_, _| {}).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_is_committed_past_what_was_replayed_and_unsupported_deletes_are_reported() {
    let c = Cluster::new();
    let orders = c.topic("orders", 1);
    let dlt = c.topic("orders.DLT", 2);
    // Ten records in each partition; the fourth of partition 1 has no known origin.
    for i in 0..20 {
        let p = (i % 2) as i32;
        c.produce(&dlt, p, &dead_letter(i, &orders, i == 7), None)
            .await;
    }
    let group = "dlt-workers";
    // The group had read two records of partition 0 already; never of partition 1.
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&dlt, 0, Offset::Offset(2))
        .unwrap();
    group_client(&c, group)
        .commit(&tpl, CommitMode::Sync)
        .unwrap();

    let b = c.backend().await;
    let opts = ReplayOptions {
        commit_group: Some(group.into()),
        ..ReplayOptions::default()
    };
    let r = run(&b, &dlt, &opts).await.unwrap();
    assert_eq!(r.replayed, 19, "{r:?}");
    assert_eq!(r.skipped.len(), 1, "the orphan is skipped: {r:?}");
    assert!(r.ok(), "{r:?}");
    assert_eq!(
        r.advanced,
        vec![
            Advanced {
                partition: 0,
                action: "commit",
                from: Some(2),
                to: 10
            },
            Advanced {
                partition: 1,
                action: "commit",
                from: None,
                to: 3
            },
        ],
        "partition 1 stops at the record that was not replayed"
    );
    assert_eq!(
        committed(&c, group, &dlt),
        vec![(0, Some(10)), (1, Some(3))]
    );

    // Asked to delete on a broker without DeleteRecords: a clear failure, nothing lost.
    let before = b.describe_queue(&dlt).await.unwrap().summary.messages;
    let opts = ReplayOptions {
        delete_records: true,
        to: Some(format!("topic:{orders}")),
        ..ReplayOptions::default()
    };
    let r = run(&b, &dlt, &opts).await.unwrap();
    assert_eq!(r.replayed, 20, "{r:?}");
    assert!(!r.ok());
    let why = r.advance_failed.as_deref().unwrap_or_default();
    assert!(why.contains("DeleteRecords"), "{why}");
    assert!(r.advanced.is_empty(), "{r:?}");
    assert_eq!(
        b.describe_queue(&dlt).await.unwrap().summary.messages,
        before,
        "the dead-letter topic is intact"
    );
    // Queues take neither option.
    let local = mqscope::backend::local::connect(
        &mqscope::config::LocalTarget::demo(1),
        &Default::default(),
    )
    .unwrap();
    let e = run(local.as_ref(), "billing.dlq", &opts).await.unwrap_err();
    assert!(e.to_string().contains("for topics"), "{e}");
}
