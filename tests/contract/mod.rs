//! The backend contract: one set of checks every backend must pass, written against the
//! `Backend` trait only. A backend's test file provides a [`Fixture`] (how to create a
//! queue or topic holding given messages) and expands [`contract_tests!`].

#![allow(dead_code)]

use async_trait::async_trait;
use bytes::Bytes;
use mqscope::backend::{Backend, BackendError, Destination, PeekFrom, PeekRequest};
use mqscope::model::{FieldValue, Message, QueueKind};
use std::sync::Arc;
use std::time::Duration;

#[async_trait]
pub trait Fixture: Send + Sync {
    fn backend(&self) -> Arc<dyn Backend>;

    /// Create a fresh queue or topic (unique per call, based on `hint`) holding `messages`
    /// in this order, and return its name.
    async fn seed(&self, hint: &str, messages: &[Message]) -> String;

    /// Where to publish so a message lands in `queue`.
    fn destination(&self, queue: &str) -> Destination;

    /// What kind of thing `seed` creates.
    fn kind(&self) -> QueueKind;

    /// Whether header values keep their AMQP types (Kafka headers are only bytes).
    fn typed_headers(&self) -> bool;

    /// Whether messages carry AMQP properties (Kafka records have none).
    fn amqp_properties(&self) -> bool {
        self.kind() != QueueKind::Topic
    }

    /// How long listed counts may take to catch up (RabbitMQ's management API lags).
    fn count_settle(&self) -> Duration {
        Duration::from_millis(0)
    }
}

/// A set of messages with text, unicode, binary and typed headers.
pub fn sample_messages(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| {
            let payload: Bytes = match i % 3 {
                0 => Bytes::from(format!("{{\"n\": {i}, \"name\": \"Zoë ✓\"}}")),
                1 => Bytes::from(vec![0u8, 159, 146, 150, i as u8, 0xff]),
                _ => Bytes::from(format!("plain text message {i}")),
            };
            let mut m = Message::new("", 0, payload);
            m.headers
                .insert("x-index", FieldValue::string(i.to_string()));
            m.headers
                .insert("x-unicode", FieldValue::string("日本語 ünïcode"));
            m.properties.message_id = Some(format!("contract-{i}"));
            m.properties.correlation_id = Some(format!("corr-{}", i / 2));
            m
        })
        .collect()
}

fn payloads(ms: &[Message]) -> Vec<Bytes> {
    ms.iter().map(|m| m.payload.clone()).collect()
}

async fn depth(f: &dyn Fixture, name: &str) -> Option<u64> {
    let list = f.backend().list_queues().await.expect("list_queues");
    list.into_iter()
        .find(|q| q.name == name)
        .and_then(|q| q.messages)
}

/// Poll until the listed depth equals `want` or the fixture's settle time runs out.
async fn wait_depth(f: &dyn Fixture, name: &str, want: u64) -> Option<u64> {
    let deadline = tokio::time::Instant::now() + f.count_settle();
    loop {
        let d = depth(f, name).await;
        if d == Some(want) || tokio::time::Instant::now() >= deadline {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn single(from: PeekFrom, limit: usize) -> PeekRequest {
    PeekRequest {
        from,
        partition: None,
        limit,
        force: false,
    }
}

pub async fn lists_seeded_queue(f: &dyn Fixture) {
    let name = f.seed("list", &sample_messages(5)).await;
    assert_eq!(wait_depth(f, &name, 5).await, Some(5), "depth of {name}");
    let list = f.backend().list_queues().await.unwrap();
    let q = list
        .iter()
        .find(|q| q.name == name)
        .expect("seeded queue listed");
    assert_eq!(q.kind, f.kind());
    let detail = f.backend().describe_queue(&name).await.unwrap();
    assert_eq!(detail.summary.name, name);
    assert_eq!(detail.summary.kind, f.kind());
}

pub async fn peek_returns_messages_in_order(f: &dyn Fixture) {
    let sent = sample_messages(6);
    let name = f.seed("order", &sent).await;
    let page = f
        .backend()
        .peek(&name, &PeekRequest::first(10))
        .await
        .unwrap();
    assert_eq!(payloads(&page.messages), payloads(&sent));
    for (i, m) in page.messages.iter().enumerate() {
        assert_eq!(m.queue, name);
        if f.amqp_properties() {
            assert_eq!(
                m.properties.message_id.as_deref(),
                Some(format!("contract-{i}").as_str())
            );
        }
        if f.kind() == QueueKind::Queue {
            assert_eq!(m.position, i as u64);
        }
    }
}

pub async fn peek_does_not_consume(f: &dyn Fixture) {
    let sent = sample_messages(4);
    let name = f.seed("noconsume", &sent).await;
    let b = f.backend();
    let first = b.peek(&name, &PeekRequest::first(10)).await.unwrap();
    let second = b.peek(&name, &PeekRequest::first(10)).await.unwrap();
    let third = b.peek(&name, &PeekRequest::first(2)).await.unwrap();
    assert_eq!(payloads(&first.messages), payloads(&sent));
    assert_eq!(payloads(&second.messages), payloads(&sent));
    assert_eq!(payloads(&third.messages), payloads(&sent[..2]));
    assert_eq!(wait_depth(f, &name, 4).await, Some(4));
}

pub async fn peek_windows(f: &dyn Fixture) {
    let sent = sample_messages(7);
    let name = f.seed("window", &sent).await;
    let b = f.backend();
    let mid = b
        .peek(&name, &single(PeekFrom::Position(2), 3))
        .await
        .unwrap();
    assert_eq!(payloads(&mid.messages), payloads(&sent[2..5]));
    let last = b.peek(&name, &single(PeekFrom::Last, 2)).await.unwrap();
    assert_eq!(payloads(&last.messages), payloads(&sent[5..]));
    let past = b
        .peek(&name, &single(PeekFrom::Position(100), 5))
        .await
        .unwrap();
    assert!(past.messages.is_empty());
    let none = b.peek(&name, &PeekRequest::first(0)).await.unwrap();
    assert!(none.messages.is_empty());
}

pub async fn peek_from_time(f: &dyn Fixture) {
    let sent = sample_messages(3);
    let name = f.seed("time", &sent).await;
    let b = f.backend();
    let all = b.peek(&name, &PeekRequest::first(10)).await.unwrap();
    let past = chrono::DateTime::from_timestamp(0, 0).unwrap();
    let from_epoch = b
        .peek(&name, &single(PeekFrom::Time(past), 10))
        .await
        .unwrap();
    assert_eq!(payloads(&from_epoch.messages), payloads(&all.messages));
    let future = chrono::Utc::now() + chrono::Duration::days(365 * 50);
    let later = b
        .peek(&name, &single(PeekFrom::Time(future), 10))
        .await
        .unwrap();
    assert!(later.messages.is_empty());
}

pub async fn headers_and_binary_survive(f: &dyn Fixture) {
    let mut sent = sample_messages(2);
    sent[0].headers.insert("x-typed", FieldValue::I32(-5));
    sent[0].headers.insert("x-flag", FieldValue::Bool(true));
    let name = f.seed("headers", &sent).await;
    let page = f
        .backend()
        .peek(&name, &PeekRequest::first(10))
        .await
        .unwrap();
    let got = &page.messages;
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].payload, sent[1].payload, "binary payload intact");
    let text = |m: &Message, k: &str| m.headers.get(k).map(|v| v.to_string());
    for (g, s) in got.iter().zip(&sent) {
        for k in ["x-index", "x-unicode"] {
            assert_eq!(text(g, k), text(s, k), "header {k}");
        }
    }
    if f.typed_headers() {
        assert_eq!(got[0].headers.get("x-typed"), Some(&FieldValue::I32(-5)));
        assert_eq!(got[0].headers.get("x-flag"), Some(&FieldValue::Bool(true)));
    }
}

pub async fn unknown_queue_is_not_found(f: &dyn Fixture) {
    let b = f.backend();
    let name = "mqscope-contract-no-such-queue-ü";
    match b.peek(name, &PeekRequest::first(1)).await {
        Err(BackendError::QueueNotFound(n)) => assert_eq!(n, name),
        other => panic!("expected QueueNotFound, got {other:?}"),
    }
    assert!(matches!(
        b.describe_queue(name).await,
        Err(BackendError::QueueNotFound(_))
    ));
}

pub async fn odd_names_work(f: &dyn Fixture) {
    let sent = sample_messages(2);
    let name = f.seed("odd näme ünïcode", &sent).await;
    let page = f
        .backend()
        .peek(&name, &PeekRequest::first(5))
        .await
        .unwrap();
    assert_eq!(payloads(&page.messages), payloads(&sent));
    assert!(
        f.backend()
            .list_queues()
            .await
            .unwrap()
            .iter()
            .any(|q| q.name == name)
    );
}

pub async fn publish_then_peek(f: &dyn Fixture) {
    let b = f.backend();
    let Some(publisher) = b.publisher() else {
        return;
    };
    let name = f.seed("publish", &sample_messages(1)).await;
    let mut m = sample_messages(2).pop().unwrap();
    m.payload = Bytes::from_static(b"\x00published\xff");
    let receipt = publisher.publish(&f.destination(&name), &m).await.unwrap();
    assert!(receipt.routed_to.contains(&name), "{receipt:?}");
    let page = b.peek(&name, &PeekRequest::first(5)).await.unwrap();
    assert_eq!(page.messages.len(), 2);
    assert_eq!(page.messages[1].payload, m.payload);
}

pub async fn purge_empties_queue(f: &dyn Fixture) {
    let b = f.backend();
    let Some(purger) = b.purger() else { return };
    if f.kind() != QueueKind::Queue {
        return;
    }
    let name = f.seed("purge", &sample_messages(3)).await;
    assert_eq!(purger.purge(&name).await.unwrap(), 3);
    assert!(
        b.peek(&name, &PeekRequest::first(5))
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    assert_eq!(wait_depth(f, &name, 0).await, Some(0));
}

/// Queue brokers list their routing: at least one virtual host, and the exchanges with the
/// default exchange (named "") first, then by name. Logs route by topic and have none.
pub async fn browse_lists_routing(f: &dyn Fixture) {
    let b = f.backend();
    let Some(browse) = b.browser() else {
        assert_eq!(
            f.kind(),
            QueueKind::Topic,
            "a queue broker lists its routing"
        );
        return;
    };
    let vhosts = browse.vhosts().await.unwrap();
    assert!(
        !vhosts.is_empty() && vhosts.iter().all(|v| !v.name.is_empty()),
        "{vhosts:?}"
    );
    let exchanges = browse.exchanges().await.unwrap();
    assert_eq!(exchanges.first().map(|e| e.name.as_str()), Some(""));
    assert!(exchanges.windows(2).all(|w| w[0].name < w[1].name));
    assert!(exchanges.iter().all(|e| !e.kind.is_empty()));
    browse.bindings().await.unwrap();
}

/// One `#[tokio::test]` per contract check, for the fixture built by `$make` (an
/// `Option<impl Fixture>` future).
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@each $make;
            lists_seeded_queue, peek_returns_messages_in_order, peek_does_not_consume,
            peek_windows, peek_from_time, headers_and_binary_survive, unknown_queue_is_not_found,
            odd_names_work, publish_then_peek, purge_empties_queue, browse_lists_routing);
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                // `$make` gives None only when its server is unreachable outside CI.
                let Some(fixture) = $make.await else { return };
                contract::$check(&fixture).await;
            }
        )*
    };
}
