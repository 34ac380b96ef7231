//! A RabbitMQ restart in the middle of a browse session: the same backend keeps working
//! once the broker is back (it reconnects), and the failure in between is a clear error,
//! not a hang or a panic. Its own test binary, so the restart disturbs no other test.

use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::FieldTable as AmqpTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::backend::{Backend, ConnectOptions, PeekRequest};
use mqscope::config::Target;
use std::process::Command;
use std::time::{Duration, Instant};

const URL: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

fn rabbitmqctl(args: &[&str]) -> bool {
    Command::new("rabbitmqctl")
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_session_recovers_after_a_broker_restart() {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let Ok(Target::Amqp(target)) = Target::parse(URL) else {
        panic!("test URL")
    };
    let backend = match RabbitBackend::connect(&target, &ConnectOptions::default()).await {
        Ok(b) => b,
        Err(e) if ci => panic!("RabbitMQ is not reachable in CI: {e}"),
        Err(e) => return eprintln!("skipping: {e}"),
    };
    if !rabbitmqctl(&["-q", "status"]) {
        assert!(!ci, "rabbitmqctl must work in CI to restart the broker");
        return eprintln!("skipping: rabbitmqctl cannot reach the broker");
    }
    // A durable queue with persistent messages survives the restart.
    let name = format!("mqscope-test-restart-{}", std::process::id());
    let conn = Connection::connect(URL, ConnectionProperties::default())
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

    assert!(rabbitmqctl(&["stop_app"]), "stop_app");
    let down = tokio::time::timeout(Duration::from_secs(30), backend.list_queues()).await;
    let down_peek = tokio::time::timeout(
        Duration::from_secs(30),
        backend.peek(&name, &PeekRequest::first(1)),
    )
    .await;
    assert!(rabbitmqctl(&["start_app"]), "start_app");
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
    let conn = Connection::connect(URL, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.queue_delete(name.as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
}
