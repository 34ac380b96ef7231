//! `mqscope record` (the binary) while its RabbitMQ restarts, tracing on: it taps again once
//! the broker is back, records what comes after, stores the outage as a gap and says so in
//! its JSON output, and records nothing twice.
//!
//! The broker restarted is a private node this test starts for itself (tests/support), never
//! a shared one: a restart closes every client's connections. On 3.10 (the machine's own
//! install), 4.3 and 4.0 (the Debian roots of scripts/rabbitmq-versions, under chroot).

mod recording;
mod support;

use chrono::{DateTime, Utc};
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions,
    QueueDeclareOptions,
};
use lapin::types::{FieldTable as AmqpTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use mqscope::model::envelope::EventKind;
use mqscope::ops::record::Store;
use recording::Binary;
use std::time::{Duration, Instant};
use support::PrivateNode;

/// A channel with confirms on the node, its connection retried (up to 90 s) while the node
/// boots.
async fn channel(url: &str) -> (Connection, lapin::Channel) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match Connection::connect(url, ConnectionProperties::default()).await {
            Ok(conn) => {
                let ch = conn.create_channel().await.unwrap();
                ch.confirm_select(ConfirmSelectOptions::default())
                    .await
                    .unwrap();
                return (conn, ch);
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "no connection within 90 s: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    }
}

/// Publish `id` (correlation `c`) on the durable fan-out `orders`, confirmed.
async fn publish(ch: &lapin::Channel, id: &str) -> Result<(), lapin::Error> {
    let props = BasicProperties::default()
        .with_correlation_id(ShortString::from("c"))
        .with_message_id(ShortString::from(id.to_string()))
        .with_delivery_mode(2);
    ch.basic_publish(
        "orders".into(),
        "".into(),
        BasicPublishOptions::default(),
        format!("{{\"order\":\"{id}\"}}").as_bytes(),
        props,
    )
    .await?
    .await?;
    Ok(())
}

/// Whether tracing is on in the node's vhost `/`.
fn tracing_on(node: &PrivateNode) -> bool {
    let out = node
        .ctl(&["list_vhosts", "--no-table-headers", "name", "tracing"])
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["/", "true"])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_while_recording_is_a_gap_and_nothing_is_recorded_twice_on_3_10() {
    restart_while_recording("3.10").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_while_recording_is_a_gap_and_nothing_is_recorded_twice_on_4_3() {
    restart_while_recording("4.3").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_while_recording_is_a_gap_and_nothing_is_recorded_twice_on_4_0() {
    restart_while_recording("4.0").await;
}

async fn restart_while_recording(version: &'static str) {
    let Some(node) =
        PrivateNode::start_version_for_test(version, "rec-restart", |_, _, _| Ok(())).await
    else {
        return;
    };
    // The management listener comes up a moment after AMQP: the recorder needs both.
    drop(node.backend().await);
    let overview =
        support::api_json(&format!("http://127.0.0.1:{}/api/overview", node.mgmt_port)).await;
    let running = overview["rabbitmq_version"].as_str().unwrap_or_default();
    assert!(
        running.starts_with(&format!("{version}.")),
        "RabbitMQ {running}"
    );
    node.ctl(&["trace_on"]).unwrap();
    let (conn, ch) = channel(&node.url()).await;
    // Durable, so the fan-out is there again after the restart.
    ch.exchange_declare(
        "orders".into(),
        ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        AmqpTable::default(),
    )
    .await
    .unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.queue_declare("shipping".into(), durable, AmqpTable::default())
        .await
        .unwrap();
    ch.queue_bind(
        "shipping".into(),
        "orders".into(),
        "".into(),
        QueueBindOptions::default(),
        AmqpTable::default(),
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.node]\nurl = \"{}\"\nmanagement_url = \"http://127.0.0.1:{}\"\n",
            node.url(),
            node.mgmt_port
        ),
    )
    .unwrap();
    let rec = Binary::start(&db, |c| {
        c.env("MQSCOPE_CONFIG", &config)
            .env("MQSCOPE_PROFILE", "node");
    });
    rec.wait_line("a first status", 60, |v| v["connected"] == true)
        .await;
    for id in ["before-1", "before-2", "before-3"] {
        publish(&ch, id).await.unwrap();
    }
    rec.wait_line("the three stored", 30, |v| {
        v["stored"].as_u64().is_some_and(|n| n >= 3)
    })
    .await;

    let stopping: DateTime<Utc> = Utc::now();
    tokio::task::block_in_place(|| node.ctl(&["stop_app"])).expect("stop_app");
    // The broker is away: publishing fails (the connection was closed), and a new
    // connection is refused. What a publisher loses here no recorder can see.
    assert!(publish(&ch, "during").await.is_err(), "the broker is down");
    assert!(
        Connection::connect(&node.url(), ConnectionProperties::default())
            .await
            .is_err(),
        "the broker refuses connections while down"
    );
    rec.wait_line("a status saying the broker is lost", 30, |v| {
        v["connected"] == false
    })
    .await;
    let starting: DateTime<Utc> = Utc::now();
    tokio::task::block_in_place(|| node.ctl(&["start_app"])).expect("start_app");
    assert!(
        tracing_on(&node),
        "tracing stays on in the vhost across stop_app and start_app"
    );
    let gap_line = rec
        .wait_line("the gap", 120, |v| v.get("gap").is_some())
        .await;
    assert!(
        gap_line["gap"]["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("broker lost")),
        "{gap_line}"
    );
    let (conn2, ch2) = channel(&node.url()).await;
    for id in ["after-1", "after-2", "after-3"] {
        publish(&ch2, id).await.unwrap();
    }
    rec.wait_line("the three after stored", 30, |v| {
        v["stored"].as_u64().is_some_and(|n| n >= 6) && v["connected"] == true
    })
    .await;
    let ended = rec.interrupt().await;
    assert!(ended.status.success(), "{}", ended.err);
    let last = ended.json().pop().unwrap();
    assert_eq!(
        (&last["stored"], &last["duplicates"], &last["gaps"]),
        (&6.into(), &0.into(), &1.into()),
        "{last}"
    );
    assert_eq!(last["connected"], true);
    assert!(
        ended.err.contains("broker lost"),
        "the loss is said on standard error: {}",
        ended.err
    );

    let s = Store::open_read(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let mut ids: Vec<(EventKind, String)> = s
        .by_correlation("c", None)
        .unwrap()
        .into_iter()
        .map(|e| (e.kind, e.message_id.unwrap()))
        .collect();
    ids.sort_by(|a, b| a.1.cmp(&b.1));
    let publish = |id: &str| (EventKind::Publish, id.to_string());
    assert_eq!(
        ids,
        vec![
            publish("after-1"),
            publish("after-2"),
            publish("after-3"),
            publish("before-1"),
            publish("before-2"),
            publish("before-3"),
        ],
        "each publish once; the one refused while down never happened"
    );
    let gaps = s.gaps(None, None).unwrap();
    assert_eq!(gaps.len(), 1, "{gaps:?}");
    let g = &gaps[0];
    assert!(g.reason.starts_with("broker lost"), "{}", g.reason);
    // The gap covers the outage: it opens after the stop began and before the broker was
    // started again, and closes only once the broker was back.
    assert!(
        stopping <= g.from && g.from <= starting && g.to >= starting,
        "gap {g:?}; stop began {stopping}, start began {starting}"
    );
    // The broker's own copies are untouched by the recorder: all six are in shipping.
    let depth = node
        .ctl(&["list_queues", "--no-table-headers", "name", "messages"])
        .unwrap();
    assert!(
        String::from_utf8_lossy(&depth.stdout)
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["shipping", "6"]),
        "{}",
        String::from_utf8_lossy(&depth.stdout)
    );
    let _ = conn2.close(200, "done".into()).await;
    drop(conn);
}
