//! A vhost with many queues is listed again only when the broker saw something change:
//! a refresh that finds nothing new reuses the last listing (a listing of every queue
//! saved each time), and a message, a queue deleted and another declared, or a
//! policy change each bring a full listing back.
//!
//! On a private RabbitMQ node (tests/support): whether "nothing changed" depends on the
//! whole broker's counters, which other tests on a shared broker keep moving.

use lapin::options::{BasicPublishOptions, QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable as AmqpTable;
use lapin::{BasicProperties, Connection, ConnectionProperties};
use mqscope::backend::Backend;
use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::config::encode_vhost;
use mqscope::model::QueueSummary;
use std::time::{Duration, Instant};

mod support;
use support::PrivateNode;

const QUEUES: usize = 501;

fn name(i: usize) -> String {
    format!("listing {i:04} ü")
}

/// List until `done` holds for the listing, for at most 30 s (the management statistics
/// arrive every 5 s).
async fn list_until(
    b: &RabbitBackend,
    what: &str,
    done: impl Fn(&[QueueSummary]) -> bool,
) -> Vec<QueueSummary> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let list = b.list_queues().await.expect("listing");
        if done(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "never saw {what}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_large_vhost_is_not_listed_again() {
    let Some(node) = PrivateNode::start_for_test("listing", |_, _, _| Ok(())).await else {
        return;
    };
    let url = node.url();
    let conn = Connection::connect(&url, ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    for i in 0..QUEUES {
        ch.queue_declare(
            name(i).as_str().into(),
            QueueDeclareOptions::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
    }
    let b = node.backend().await;

    // Quiet broker: after the declarations' statistics have settled, refreshes reuse.
    list_until(&b, "a reused listing", |l| {
        assert_eq!(l.len(), QUEUES);
        b.listing_counts().1 > 0
    })
    .await;
    let (full, reused) = b.listing_counts();
    for _ in 0..3 {
        assert_eq!(b.list_queues().await.unwrap().len(), QUEUES);
    }
    assert_eq!(
        b.listing_counts(),
        (full, reused + 3),
        "nothing changed: no full listing"
    );
    let list = b.list_queues().await.unwrap();
    assert!(
        list.iter()
            .all(|q| q.publish_rate.unwrap_or(0.0) == 0.0 && q.deliver_rate.unwrap_or(0.0) == 0.0),
        "nothing moved: rates are zero"
    );

    // A message: seen.
    ch.basic_publish(
        "".into(),
        name(7).as_str().into(),
        BasicPublishOptions::default(),
        b"one",
        BasicProperties::default(),
    )
    .await
    .unwrap();
    list_until(&b, "the new message", |l| {
        l.iter().any(|q| q.name == name(7) && q.messages == Some(1))
    })
    .await;

    // One queue gone and another made: the count is the same, the listing is not.
    ch.queue_delete(name(3).as_str().into(), QueueDeleteOptions::default())
        .await
        .unwrap();
    let newcomer = name(9_999);
    ch.queue_declare(
        newcomer.as_str().into(),
        QueueDeclareOptions::default(),
        AmqpTable::default(),
    )
    .await
    .unwrap();
    list_until(&b, "the swapped queue", |l| {
        l.len() == QUEUES
            && l.iter().any(|q| q.name == newcomer)
            && !l.iter().any(|q| q.name == name(3))
    })
    .await;

    // A policy that dead-letters one queue: its DLQ wiring shows.
    let put = reqwest::Client::new()
        .put(format!(
            "http://127.0.0.1:{}/api/policies/%2F/{}",
            node.mgmt_port,
            encode_vhost("dlx for one")
        ))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({
            "pattern": format!("^{}$", regex::escape(&name(1))),
            "definition": {"dead-letter-exchange": "dlx", "dead-letter-routing-key": "dead"},
            "apply-to": "queues",
        }))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    list_until(&b, "the policy's dead-letter target", |l| {
        l.iter()
            .any(|q| q.name == name(1) && q.dead_letter.is_some())
    })
    .await;
    let (full_after, _) = b.listing_counts();
    assert!(full_after >= full + 3, "each change brought a full listing");
}
