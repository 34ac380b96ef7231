//! A RabbitMQ restart in the middle of a browse session: the same backend keeps working
//! once the broker is back (it reconnects), and the failure in between is a clear error,
//! not a hang or a panic.
//!
//! The broker restarted is a private node this test starts for itself (its own node name,
//! ports and data directory, from the same RabbitMQ install), never the shared one: a
//! restart closes every client's connections and drops every transient queue, and the
//! shared broker may be someone's, or serving another test run at the same time.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable as AmqpTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mqscope::backend::{Backend, PeekRequest};
use std::time::{Duration, Instant};

mod support;
use support::PrivateNode;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_session_recovers_after_a_broker_restart() {
    let Some(node) = PrivateNode::start_for_test("restart", |_, _, _| Ok(())).await else {
        return;
    };
    let url = node.url();
    let backend = node.backend().await;
    // A durable queue with persistent messages survives the restart.
    let name = "mqscope restart ü/1".to_string();
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    // Confirms, so all five are in the queue before the first peek looks at its depth.
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch.queue_declare(
        name.as_str().into(),
        QueueDeclareOptions {
            durable: true,
            ..Default::default()
        },
        AmqpTable::default(),
    )
    .await
    .unwrap();
    for i in 0..5 {
        ch.basic_publish(
            "".into(),
            name.as_str().into(),
            BasicPublishOptions::default(),
            format!("m{i}").as_bytes(),
            BasicProperties::default().with_delivery_mode(2),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    assert_eq!(
        backend
            .peek(&name, &PeekRequest::first(10))
            .await
            .unwrap()
            .messages
            .len(),
        5
    );

    let n = &node;
    tokio::task::block_in_place(|| n.ctl(&["stop_app"])).expect("stop_app");
    let down = tokio::time::timeout(Duration::from_secs(30), backend.list_queues()).await;
    let down_peek = tokio::time::timeout(
        Duration::from_secs(30),
        backend.peek(&name, &PeekRequest::first(1)),
    )
    .await;
    tokio::task::block_in_place(|| n.ctl(&["start_app"])).expect("start_app");
    let down = down.expect("an error within 30 s, not a hang");
    let down_peek = down_peek.expect("an error within 30 s, not a hang");
    assert!(
        down.is_err() && down_peek.is_err(),
        "the broker was down: {down:?} / {down_peek:?}"
    );

    // Back up: the same backend lists and peeks again.
    let deadline = Instant::now() + Duration::from_secs(60);
    let page = loop {
        match backend.peek(&name, &PeekRequest::first(10)).await {
            Ok(p) => break p,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "did not recover within 60 s: {e}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
    assert_eq!(
        page.messages.len(),
        5,
        "the durable messages are all still there"
    );
    assert!(
        backend
            .list_queues()
            .await
            .unwrap()
            .iter()
            .any(|q| q.name == name)
    );
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}
