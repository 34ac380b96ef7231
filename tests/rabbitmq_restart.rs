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

/// The broker restarted in the middle of a replay: the replay stops with a clear error,
/// and once the broker is back `--resume` finishes it with every message once, at home or
/// in the dead-letter queue, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_cut_by_a_broker_restart_resumes_with_every_message_once() {
    use lapin::options::{ExchangeDeclareOptions, QueueBindOptions};
    use lapin::types::AMQPValue;
    const N: usize = 3_000;
    let Some(node) = PrivateNode::start_for_test("replay-restart", |_, _, _| Ok(())).await else {
        return;
    };
    let url = node.url();
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    let durable = QueueDeclareOptions {
        durable: true,
        ..Default::default()
    };
    ch.exchange_declare(
        "dlx".into(),
        lapin::ExchangeKind::Fanout,
        ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        },
        AmqpTable::default(),
    )
    .await
    .unwrap();
    ch.queue_declare("dead".into(), durable, AmqpTable::default())
        .await
        .unwrap();
    ch.queue_bind(
        "dead".into(),
        "dlx".into(),
        "".into(),
        QueueBindOptions::default(),
        AmqpTable::default(),
    )
    .await
    .unwrap();
    let mut args = AmqpTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("dlx".into()),
    );
    ch.queue_declare("work".into(), durable, args)
        .await
        .unwrap();
    for i in 0..N {
        ch.basic_publish(
            "".into(),
            "work".into(),
            BasicPublishOptions::default(),
            format!("{{\"n\":{i}}}").as_bytes(),
            BasicProperties::default()
                .with_delivery_mode(2)
                .with_message_id(format!("m-{i}").into()),
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
    // Every one rejected into the dead-letter queue.
    let rej = conn.create_channel().await.unwrap();
    support::dead_letter_first(&rej, "work", N).await;
    let _ = conn.close(200, "set up".into()).await;
    let count = |q: &str| -> u32 {
        let out = node
            .ctl(&[
                "-q",
                "list_queues",
                "--no-table-headers",
                "name",
                "messages",
            ])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        out.lines()
            .filter_map(|l| l.split_once('\t'))
            .find(|(n, _)| *n == q)
            .and_then(|(_, c)| c.trim().parse().ok())
            .unwrap_or(0)
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while count("dead") != N as u32 {
        assert!(Instant::now() < deadline, "dead never reached {N}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let state = tempfile::tempdir().unwrap();
    // The node's management API is on a port of its own: a profile says where.
    let config = state.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.node]\nurl = \"{url}\"\nmanagement_url = \"http://127.0.0.1:{}\"\n",
            node.mgmt_port
        ),
    )
    .unwrap();
    let config = config.display().to_string();
    let bin = assert_cmd::cargo::cargo_bin!("mqscope");
    // Held with a batch's copies sent and their confirms not yet in (a batch before it
    // is home), while the broker goes down.
    let release = state.path().join("release");
    let mut child = std::process::Command::new(bin)
        .env("MQSCOPE_STATE_DIR", state.path())
        .env("MQSCOPE_CRASH_AT", "replay.sent:3")
        .env("MQSCOPE_CRASH_RELEASE", &release)
        .args(["--config", &config, "--profile", "node"])
        .args(["replay", "dead", "--yes", "--batch", "100"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let waiting = state.path().join("release.waiting");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !waiting.exists() {
        if let Ok(Some(status)) = child.try_wait() {
            let mut err = String::new();
            let _ = std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err);
            panic!("the replay ended before the third batch: {status}: {err}");
        }
        assert!(Instant::now() < deadline, "the replay never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let n = &node;
    tokio::task::block_in_place(|| n.ctl(&["stop_app"])).expect("stop_app");
    std::fs::write(&release, b"").unwrap();
    let out = tokio::task::block_in_place(|| child.wait_with_output()).unwrap();
    tokio::task::block_in_place(|| n.ctl(&["start_app"])).expect("start_app");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "the broker went down under it");
    assert!(err.contains("--resume"), "says how to go on: {err}");

    let deadline = Instant::now() + Duration::from_secs(60);
    let resumed = loop {
        let r = std::process::Command::new(bin)
            .env("MQSCOPE_STATE_DIR", state.path())
            .args(["--config", &config, "--profile", "node"])
            .args(["replay", "--resume", "--yes", "--json"])
            .output()
            .unwrap();
        let e = String::from_utf8_lossy(&r.stderr).into_owned();
        if r.status.success() || Instant::now() > deadline {
            break (r.status.success(), e);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert!(resumed.0, "resume: {}", resumed.1);
    let backend = node.backend().await;
    let mut seen = std::collections::BTreeMap::new();
    for q in ["work", "dead"] {
        for m in backend
            .peek(q, &PeekRequest::first(2 * N))
            .await
            .unwrap()
            .messages
        {
            *seen
                .entry(m.properties.message_id.unwrap_or_default())
                .or_insert(0) += 1;
        }
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "twice: {twice:?}");
    assert_eq!(seen.len(), N, "every message is somewhere");
    assert_eq!(count("dead"), 0, "the resume finished the job");
}
