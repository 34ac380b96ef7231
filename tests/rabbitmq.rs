//! The RabbitMQ backend against a real server (scripts/test starts Debian's rabbitmq-server
//! on loopback, and runs this again against 4.3 and 4.0: `support::brokers::rabbit`): the
//! shared contract suite, then what is special to RabbitMQ: peeks that
//! leave queues untouched, quorum delivery limits, streams, odd vhost and queue names,
//! dead-letter wiring from arguments and policies, and header types on a round trip.
//! Every test makes its own uniquely named queues (which expire when unused) or vhost.
//! Without a reachable server the tests skip, except under CI=true, where they fail.

mod contract;
mod support;

use async_trait::async_trait;
use bytes::Bytes;
use contract::Fixture;
use lapin::options::{
    BasicPublishOptions, ConfirmSelectOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable as AmqpTable};
use lapin::{Connection, ConnectionProperties};
use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::backend::rabbitmq::mgmt::Mgmt;
use mqscope::backend::{
    Backend, BackendError, Browse, ConnectOptions, Destination, PeekFrom, PeekRequest,
};
use mqscope::config::{AmqpTarget, Secret, Target, encode_vhost};
use mqscope::model::{FieldTable, FieldValue, Message, QueueKind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use support::brokers::rabbit;

fn url_for(vhost: &str) -> String {
    rabbit().url_for(vhost)
}

fn target(vhost: &str) -> AmqpTarget {
    match Target::parse(&url_for(vhost)) {
        Ok(Target::Amqp(a)) => a,
        other => panic!("MQSCOPE_TEST_RABBITMQ_AMQP must be an amqp:// URL: {other:?}"),
    }
}

fn mgmt() -> Mgmt {
    Mgmt::new(
        &rabbit().mgmt_url,
        "guest",
        Some(Secret::new("guest")),
        false,
    )
    .unwrap()
}

/// Run `body` against a new vhost of its own (its name starts with `name`), deleted
/// afterwards, also when an assertion in `body` fails. For tests whose tails or policies
/// reach across a whole vhost, so that they and the tests beside them stay apart.
async fn in_own_vhost<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Rabbit) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let vhost = format!("{name} {}", unique("v"));
    let m = mgmt();
    m.create_vhost(&vhost).await.unwrap();
    let vh = vhost.clone();
    let outcome = tokio::spawn(async move {
        let r = Rabbit::on(&vh).await.expect("connect to the new vhost");
        body(r).await
    })
    .await;
    m.delete_vhost(&vhost).await.unwrap();
    if let Err(e) = outcome {
        std::panic::resume_unwind(e.into_panic());
    }
}

/// Test exchanges in a shared vhost go away on their own: auto-delete, so the broker
/// removes each once its last binding goes (the queues bound to it expire).
fn exchange_options() -> lapin::options::ExchangeDeclareOptions {
    lapin::options::ExchangeDeclareOptions {
        auto_delete: true,
        ..Default::default()
    }
}

/// Connect, or explain: skip outside CI, fail loudly in CI.
async fn backend_for(vhost: &str) -> Option<RabbitBackend> {
    match RabbitBackend::connect(&target(vhost), &rabbit().options()).await {
        Ok(b) => Some(b),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("RabbitMQ is not reachable in CI ({e}); scripts/test should have started it")
        }
        Err(e) => {
            eprintln!("skipping RabbitMQ test: {e}");
            None
        }
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

fn unique(hint: &str) -> String {
    format!(
        "mqscope-test-{}-{}-{hint}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

struct Rabbit {
    backend: Arc<RabbitBackend>,
    conn: Connection,
    vhost: String,
}

impl Rabbit {
    async fn on(vhost: &str) -> Option<Rabbit> {
        let backend = backend_for(vhost).await?;
        let conn = Connection::connect(&url_for(vhost), ConnectionProperties::default())
            .await
            .expect("second connection for fixtures");
        Some(Rabbit {
            backend: Arc::new(backend),
            conn,
            vhost: vhost.to_string(),
        })
    }

    async fn new() -> Option<Rabbit> {
        Rabbit::on("/").await
    }

    /// Declare a queue that RabbitMQ deletes two minutes after its last use.
    async fn declare(&self, name: &str, mut args: AmqpTable) {
        let stream = matches!(args.inner().get("x-queue-type"), Some(AMQPValue::LongString(t)) if t.as_bytes() == b"stream");
        if !stream {
            // Streams cannot expire; their tests delete them.
            args.insert("x-expires".into(), AMQPValue::LongInt(120_000));
        }
        let ch = self.conn.create_channel().await.unwrap();
        let durable = args.inner().contains_key("x-queue-type");
        ch.queue_declare(
            name.into(),
            QueueDeclareOptions {
                durable,
                ..Default::default()
            },
            args,
        )
        .await
        .unwrap();
    }

    /// Declare a durable exchange of `kind` (internal ones take publishes from other
    /// exchanges only) with `args`.
    async fn declare_exchange(
        &self,
        name: &str,
        kind: lapin::ExchangeKind,
        internal: bool,
        args: AmqpTable,
    ) {
        let ch = self.conn.create_channel().await.unwrap();
        let opts = lapin::options::ExchangeDeclareOptions {
            durable: true,
            internal,
            ..Default::default()
        };
        ch.exchange_declare(name.into(), kind, opts, args)
            .await
            .unwrap();
        let _ = ch.close(200, "declared".into()).await;
    }

    async fn publish_all(&self, exchange: &str, key: &str, messages: &[Message]) {
        let ch = self.conn.create_channel().await.unwrap();
        ch.confirm_select(ConfirmSelectOptions::default())
            .await
            .unwrap();
        for m in messages {
            let mut m = m.clone();
            // Producers usually stamp a time; peeks from a time rely on it.
            m.properties
                .timestamp
                .get_or_insert(chrono::Utc::now().timestamp() as u64);
            let props = mqscope::backend::rabbitmq::convert::properties_to_amqp(&m).unwrap();
            ch.basic_publish(
                exchange.into(),
                key.into(),
                BasicPublishOptions::default(),
                &m.payload,
                props,
            )
            .await
            .unwrap()
            .await
            .unwrap();
        }
    }

    async fn ready(&self, name: &str) -> u32 {
        let ch = self.conn.create_channel().await.unwrap();
        let q = ch
            .queue_declare(
                name.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                AmqpTable::default(),
            )
            .await
            .unwrap();
        let _ = ch.close(200, "counted".into()).await;
        q.message_count()
    }

    async fn delete_queue(&self, name: &str) {
        let ch = self.conn.create_channel().await.unwrap();
        ch.queue_delete(name.into(), Default::default())
            .await
            .unwrap();
    }

    /// Waits (30 s at most) for a queue's ready count: requeues and dead-lettering land
    /// in the broker a moment after the client's call returns.
    async fn wait_for(&self, name: &str, n: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ready(name).await != n {
            assert!(Instant::now() < deadline, "{name} never reached {n} ready");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

#[async_trait]
impl Fixture for Rabbit {
    fn backend(&self) -> Arc<dyn Backend> {
        self.backend.clone()
    }

    async fn seed(&self, hint: &str, messages: &[Message]) -> String {
        let name = unique(hint);
        self.declare(&name, AmqpTable::default()).await;
        self.publish_all("", &name, messages).await;
        name
    }

    fn destination(&self, queue: &str) -> Destination {
        Destination::Exchange {
            exchange: String::new(),
            routing_key: queue.to_string(),
        }
    }

    fn kind(&self) -> QueueKind {
        QueueKind::Queue
    }

    fn typed_headers(&self) -> bool {
        true
    }

    fn count_settle(&self) -> Duration {
        // The management API refreshes its counts every 5 s.
        Duration::from_secs(12)
    }
}

mod contract_suite {
    use super::*;
    contract_tests!(Rabbit::new());
}

fn bodies(ms: &[Message]) -> Vec<Bytes> {
    ms.iter().map(|m| m.payload.clone()).collect()
}

fn numbered(n: usize) -> Vec<Message> {
    (0..n)
        .map(|i| Message::new("", 0, format!("message {i}")))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_peek_three_times_changes_nothing() {
    let Some(r) = Rabbit::new().await else { return };
    let name = unique("classic");
    r.declare(&name, AmqpTable::default()).await;
    r.publish_all("", &name, &numbered(100)).await;
    let req = PeekRequest::first(100);
    let mut seen = Vec::new();
    for _ in 0..3 {
        let page = r.backend.peek(&name, &req).await.unwrap();
        seen.push(bodies(&page.messages));
        // The count is read once the returns are in: a classic queue answers the count
        // (passive declare) ahead of requeues waiting in its mailbox (FINDINGS).
        r.wait_for(&name, 100).await;
    }
    assert_eq!(seen[0], bodies(&numbered(100)));
    assert_eq!(seen[0], seen[1]);
    assert_eq!(seen[1], seen[2]);
    let later = r.backend.peek(&name, &req).await.unwrap();
    assert!(
        later.messages.iter().all(|m| m.redelivered),
        "peeked messages show as redelivered"
    );
    let window = r
        .backend
        .peek(
            &name,
            &PeekRequest {
                from: PeekFrom::Position(40),
                limit: 5,
                ..PeekRequest::first(5)
            },
        )
        .await
        .unwrap();
    assert_eq!(bodies(&window.messages), bodies(&numbered(45)[40..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peek_whose_reader_stops_early_returns_every_message() {
    let Some(r) = Rabbit::new().await else { return };
    let name = unique("cut-short");
    r.declare(&name, AmqpTable::default()).await;
    r.publish_all("", &name, &numbered(500)).await;
    // The receiver takes five messages and goes, as a writer whose pipe closed does.
    let (tx, mut rx) = tokio::sync::mpsc::channel(1);
    let req = PeekRequest::first(500);
    let read = r.backend.peek_into(&name, &req, &tx);
    let take_five = async move {
        let mut got = Vec::new();
        while got.len() < 5 {
            got.push(rx.recv().await.expect("five messages"));
        }
        got
    };
    let (notes, first) = tokio::join!(read, take_five);
    let notes = notes.unwrap();
    assert!(
        notes.is_empty(),
        "stopping early is not a short read: {notes:?}"
    );
    assert_eq!(bodies(&first), bodies(&numbered(5)));
    r.wait_for(&name, 500).await; // everything read went back
    let page = r.backend.peek(&name, &req).await.unwrap();
    assert_eq!(bodies(&page.messages), bodies(&numbered(500)), "in order");

    // The command: its output closed after 100 bytes, the queue as it was.
    let url = url_for("/");
    let bin = env!("CARGO_BIN_EXE_mqscope");
    let out = rabbit()
        .profile_env(&mut std::process::Command::new("sh"))
        .arg("-c")
        .arg(format!(
            "'{bin}' peek '{name}' -n 500 --url '{url}' | head -c 100 >/dev/null"
        ))
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("mqscope-test-no-config"),
        )
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && err.is_empty(), "{err}");
    r.wait_for(&name, 500).await;
    let page = r.backend.peek(&name, &req).await.unwrap();
    assert_eq!(bodies(&page.messages), bodies(&numbered(500)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queue_with_delivery_limit_is_never_pushed_to_its_dlq() {
    let Some(r) = Rabbit::new().await else { return };
    let name = unique("quorum");
    let dlq = format!("{name}.dlq");
    r.declare(&dlq, AmqpTable::default()).await;
    let mut args = AmqpTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("quorum".into()),
    );
    args.insert("x-delivery-limit".into(), AMQPValue::LongInt(2));
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dlq.clone().into()),
    );
    r.declare(&name, args).await;
    r.publish_all("", &name, &numbered(3)).await;
    if rabbit().version().await >= (4, 3) {
        // From 4.3 on a return by nack (how a peek gives back) does not count towards the
        // delivery limit, so mqscope peeks without --force, and no number of peeks sends
        // anything to the DLQ (tests/rabbitmq_versions.rs has the per-series rules).
        for _ in 0..5 {
            let page = r
                .backend
                .peek(&name, &PeekRequest::first(10))
                .await
                .unwrap();
            assert_eq!(bodies(&page.messages), bodies(&numbered(3)));
            r.wait_for(&name, 3).await;
        }
        assert_eq!(r.ready(&dlq).await, 0, "nothing dead-lettered");
        return;
    }
    for _ in 0..5 {
        match r.backend.peek(&name, &PeekRequest::first(10)).await {
            Err(BackendError::Refused(why)) => assert!(
                why.contains("delivery limit of 2") && why.contains("--force"),
                "{why}"
            ),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(r.ready(&name).await, 3);
    assert_eq!(r.ready(&dlq).await, 0, "nothing dead-lettered");
    // Forced, it reads and shows the delivery count it raised.
    let forced = PeekRequest {
        force: true,
        ..PeekRequest::first(10)
    };
    let page = r.backend.peek(&name, &forced).await.unwrap();
    assert_eq!(bodies(&page.messages), bodies(&numbered(3)));
    assert!(page.notes.iter().any(|n| n.contains("forced")));
    assert!(
        !page
            .notes
            .iter()
            .any(|n| n.contains("over the delivery limit")),
        "{:?}",
        page.notes
    );
    r.wait_for(&name, 3).await;
    assert_eq!(r.ready(&dlq).await, 0);
    // Forced again until the messages are at the limit: the peek that sends them over it
    // says so, and where they went.
    let mut said = None;
    for _ in 0..3 {
        let page = r.backend.peek(&name, &forced).await.unwrap();
        if let Some(n) = page
            .notes
            .iter()
            .find(|n| n.contains("over the delivery limit"))
        {
            said = Some(n.clone());
            break;
        }
        r.wait_for(&name, 3).await;
    }
    let said = said.expect("a note when messages go over the limit");
    assert!(
        said.starts_with("3 of the messages read") && said.contains("dead-lettered them"),
        "{said}"
    );
    r.wait_for(&dlq, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_are_read_by_offset_and_paged() {
    let Some(r) = Rabbit::new().await else { return };
    let name = unique("stream");
    let mut args = AmqpTable::default();
    args.insert(
        "x-queue-type".into(),
        AMQPValue::LongString("stream".into()),
    );
    r.declare(&name, args).await;
    r.publish_all("", &name, &numbered(20)).await;
    let first = r.backend.peek(&name, &PeekRequest::first(5)).await.unwrap();
    assert_eq!(bodies(&first.messages), bodies(&numbered(5)));
    assert_eq!(first.messages[0].offset, Some(0));
    let page = PeekRequest {
        from: PeekFrom::Position(10),
        ..PeekRequest::first(5)
    };
    let second = r.backend.peek(&name, &page).await.unwrap();
    assert_eq!(bodies(&second.messages), bodies(&numbered(15)[10..]));
    assert_eq!(second.messages[0].offset, Some(10));
    let again = r
        .backend
        .peek(&name, &PeekRequest::first(20))
        .await
        .unwrap();
    assert_eq!(again.messages.len(), 20, "a stream read removes nothing");
    // The newest, read right after a publish: before the broker's statistics (which
    // lag by seconds) count it.
    r.publish_all("", &name, &numbered(30)[20..]).await;
    let last = |n: usize| PeekRequest {
        from: PeekFrom::Last,
        ..PeekRequest::first(n)
    };
    let newest = r.backend.peek(&name, &last(3)).await.unwrap();
    assert_eq!(bodies(&newest.messages), bodies(&numbered(30)[27..]));
    assert_eq!(newest.messages[0].offset, Some(27));
    // More than the newest chunk holds: the records before it, in order, no gap.
    let many = r.backend.peek(&name, &last(25)).await.unwrap();
    assert_eq!(bodies(&many.messages), bodies(&numbered(30)[5..]));
    let all = r.backend.peek(&name, &last(100)).await.unwrap();
    assert_eq!(bodies(&all.messages), bodies(&numbered(30)));
    // Nothing asked for, nothing read: from the end or from the start.
    assert!(
        r.backend
            .peek(&name, &last(0))
            .await
            .unwrap()
            .messages
            .is_empty()
    );
    let none = r.backend.peek(&name, &PeekRequest::first(0)).await.unwrap();
    assert!(none.messages.is_empty());
    r.delete_queue(&name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_vhost_and_queue_names() {
    let Some(_) = Rabbit::new().await else { return };
    in_own_vhost("mqscope test/ü", |r| async move {
        let name = format!("queue with spaces/and ü {}", unique("odd"));
        r.declare(&name, AmqpTable::default()).await;
        r.publish_all("", &name, &numbered(2)).await;
        let page = r.backend.peek(&name, &PeekRequest::first(5)).await.unwrap();
        assert_eq!(bodies(&page.messages), bodies(&numbered(2)));
        let list = r.backend.list_queues().await.unwrap();
        let q = list.iter().find(|q| q.name == name).expect("listed");
        assert_eq!(q.vhost.as_deref(), Some(r.vhost.as_str()));
        r.backend.describe_queue(&name).await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_queues_resolve_from_arguments_and_policies() {
    let Some(r) = Rabbit::new().await else { return };
    let base = unique("dlx");
    let (dlx, by_arg, by_policy, dlq) = (
        format!("{base}.x"),
        format!("{base}.arg"),
        format!("{base}.pol"),
        format!("{base}.dlq"),
    );
    let ch = r.conn.create_channel().await.unwrap();
    ch.exchange_declare(
        dlx.as_str().into(),
        lapin::ExchangeKind::Direct,
        exchange_options(),
        AmqpTable::default(),
    )
    .await
    .unwrap();
    r.declare(&dlq, AmqpTable::default()).await;
    ch.queue_bind(
        dlq.as_str().into(),
        dlx.as_str().into(),
        "dead".into(),
        QueueBindOptions::default(),
        AmqpTable::default(),
    )
    .await
    .unwrap();
    let mut args = AmqpTable::default();
    args.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString(dlx.clone().into()),
    );
    args.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString("dead".into()),
    );
    r.declare(&by_arg, args).await;
    r.declare(&by_policy, AmqpTable::default()).await;
    let policy = format!("{base}-policy");
    let client = reqwest::Client::new();
    let put = client
        .put(format!(
            "{}/api/policies/%2F/{}",
            rabbit().mgmt_url,
            encode_vhost(&policy)
        ))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({
            "pattern": format!("^{}$", regex::escape(&by_policy)),
            "definition": {"dead-letter-exchange": dlx, "dead-letter-routing-key": "dead"},
            "apply-to": "queues",
        }))
        .send()
        .await
        .unwrap();
    assert!(put.status().is_success(), "{}", put.status());
    let mut resolved = false;
    for _ in 0..120 {
        let list = r.backend.list_queues().await.unwrap();
        let find = |n: &str| list.iter().find(|q| q.name == n).cloned();
        if let (Some(a), Some(p), Some(d)) = (find(&by_arg), find(&by_policy), find(&dlq))
            && a.dead_letter_queue.as_deref() == Some(dlq.as_str())
            && p.dead_letter_queue.as_deref() == Some(dlq.as_str())
        {
            assert!(d.is_dead_letter);
            assert!(
                d.dead_letter_sources.contains(&by_arg)
                    && d.dead_letter_sources.contains(&by_policy)
            );
            // The policy by name, the queue's own arguments as declared.
            assert_eq!(p.policy.as_deref(), Some(policy.as_str()));
            assert_eq!(a.policy, None);
            assert_eq!(
                a.arguments.get("x-dead-letter-routing-key"),
                Some(&serde_json::json!("dead"))
            );
            assert!(p.arguments.get("x-dead-letter-exchange").is_none());
            assert!(a.ack_rate.is_some());
            // `mqscope describe` (and the TUI's info view) says the same, in words.
            let text = mqscope::model::describe::text(
                &r.backend.describe_queue(&by_policy).await.unwrap(),
            );
            assert!(text.contains(&format!("policy        {policy}")), "{text}");
            assert!(
                text.contains(&format!("dead-letters to  {dlx}, routing key \"dead\"")),
                "{text}"
            );
            assert!(text.contains(&format!("which reaches    {dlq}")), "{text}");
            // Described alone, the dead-letter queue still knows who feeds it, through
            // an argument and through a policy.
            let d = r.backend.describe_queue(&dlq).await.unwrap().summary;
            assert!(d.is_dead_letter);
            assert!(
                d.dead_letter_sources.contains(&by_arg)
                    && d.dead_letter_sources.contains(&by_policy),
                "{:?}",
                d.dead_letter_sources
            );
            resolved = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let _ = client
        .delete(format!(
            "{}/api/policies/%2F/{}",
            rabbit().mgmt_url,
            encode_vhost(&policy)
        ))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
    assert!(
        resolved,
        "both queues show {dlq} as their dead-letter queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_header_type_survives_publish_and_peek() {
    let Some(r) = Rabbit::new().await else { return };
    let name = unique("headers");
    r.declare(&name, AmqpTable::default()).await;
    let mut nested = FieldTable::new();
    nested.insert("inner", FieldValue::I16(-2));
    let headers = FieldTable(vec![
        ("bool".into(), FieldValue::Bool(true)),
        ("i8".into(), FieldValue::I8(-8)),
        ("u8".into(), FieldValue::U8(200)),
        ("i16".into(), FieldValue::I16(-1600)),
        ("u16".into(), FieldValue::U16(65000)),
        ("i32".into(), FieldValue::I32(-70000)),
        ("u32".into(), FieldValue::U32(4_000_000_000)),
        ("i64".into(), FieldValue::I64(i64::MIN)),
        ("f32".into(), FieldValue::F32(1.5)),
        ("f64".into(), FieldValue::F64(0.1)),
        (
            "decimal".into(),
            FieldValue::Decimal {
                scale: 2,
                value: 12345,
            },
        ),
        ("longstr".into(), FieldValue::string("héllo")),
        (
            "binary".into(),
            FieldValue::LongString(Bytes::from_static(b"\x00\xff")),
        ),
        ("timestamp".into(), FieldValue::Timestamp(1_700_000_000)),
        (
            "array".into(),
            FieldValue::Array(vec![FieldValue::I64(1), FieldValue::string("two")]),
        ),
        ("table".into(), FieldValue::Table(nested)),
        (
            "bytes".into(),
            FieldValue::ByteArray(Bytes::from_static(b"\x01\x02")),
        ),
        ("void".into(), FieldValue::Void),
    ]);
    let mut m = Message::new("", 0, Bytes::from_static(b"\x89PNG\r\n\x1a\n\x00binary"));
    m.headers = headers.clone();
    m.properties.content_type = Some("image/png".into());
    m.properties.correlation_id = Some("corr-1".into());
    m.properties.delivery_mode = Some(2);
    m.properties.priority = Some(3);
    m.properties.timestamp = Some(1_700_000_000);
    let publisher = r.backend.publisher().unwrap();
    publisher
        .publish(
            &Destination::Exchange {
                exchange: String::new(),
                routing_key: name.clone(),
            },
            &m,
        )
        .await
        .unwrap();
    let got = r
        .backend
        .peek(&name, &PeekRequest::first(1))
        .await
        .unwrap()
        .messages;
    let got = &got[0];
    assert_eq!(got.payload, m.payload);
    assert_eq!(got.properties, m.properties);
    let mut want: Vec<_> = headers.0.clone();
    let mut have: Vec<_> = got.headers.0.clone();
    want.sort_by(|a, b| a.0.cmp(&b.0));
    have.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(have, want);
    // Through the JSON Lines format and back: the same message.
    let rec = mqscope::format::record::message_record(got, &Default::default());
    let back =
        mqscope::format::record::parse_record(&serde_json::from_str(&rec.to_string()).unwrap())
            .unwrap();
    assert_eq!(back.headers, got.headers);
    assert_eq!(back.properties, got.properties);
    assert_eq!(back.payload, got.payload);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_publish_is_an_error_not_a_loss() {
    let Some(r) = Rabbit::new().await else { return };
    let err = r
        .backend
        .publisher()
        .unwrap()
        .publish(
            &Destination::Exchange {
                exchange: "amq.direct".into(),
                routing_key: unique("nobody"),
            },
            &Message::new("", 0, "x"),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Unroutable(_)), "{err:?}");
}

/// The mqscope binary, told where this broker's management API is (`--url` names the rest).
fn mqscope(args: &[&str]) -> std::process::Output {
    rabbit()
        .profile_env(&mut std::process::Command::new(env!(
            "CARGO_BIN_EXE_mqscope"
        )))
        .args(args)
        .env(
            "XDG_CONFIG_HOME",
            std::env::temp_dir().join("mqscope-test-no-config"),
        )
        .output()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_export_then_publish_reproduces_messages_exactly() {
    let Some(r) = Rabbit::new().await else { return };
    let (from, to) = (unique("export-from"), unique("export-to"));
    r.declare(&from, AmqpTable::default()).await;
    r.declare(&to, AmqpTable::default()).await;
    let mut sent = contract::sample_messages(30);
    sent[0]
        .headers
        .insert("x-typed", FieldValue::Decimal { scale: 1, value: 5 });
    sent[1]
        .headers
        .insert("x-when", FieldValue::Timestamp(1_700_000_000));
    sent[2].headers.insert(
        "x-list",
        FieldValue::Array(vec![FieldValue::I8(1), FieldValue::Void]),
    );
    r.publish_all("", &from, &sent).await;
    let url = url_for("/");
    let export = mqscope(&["peek", &from, "-n", "100", "--json", "--url", &url]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let file = std::env::temp_dir().join(format!("{from}.jsonl"));
    std::fs::write(&file, &export.stdout).unwrap();
    let publish = mqscope(&[
        "publish",
        "--from",
        file.to_str().unwrap(),
        "--queue",
        &to,
        "--url",
        &url,
    ]);
    assert!(
        publish.status.success(),
        "{}",
        String::from_utf8_lossy(&publish.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&publish.stdout).trim(),
        "published 30 of 30 messages (each confirmed by the broker)"
    );
    let again = mqscope(&["peek", &to, "-n", "100", "--json", "--url", &url]);
    let parse = |out: &[u8]| -> Vec<serde_json::Value> {
        String::from_utf8_lossy(out)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (a, b) = (parse(&export.stdout), parse(&again.stdout));
    assert_eq!(a.len(), 30);
    assert_eq!(b.len(), 30);
    for (x, y) in a.iter().zip(&b) {
        for field in [
            "payload",
            "payload_encoding",
            "size",
            "properties",
            "headers",
            "message_id",
            "correlation_id",
        ] {
            assert_eq!(x[field], y[field], "{field}");
        }
    }
    std::fs::remove_file(file).ok();
}

/// `mqscope publish --from FILE --json` with its own state directory (for the audit log):
/// the exit code, each line's receipt, and standard error.
fn publish_from(
    lines: &[serde_json::Value],
    state: &std::path::Path,
) -> (i32, Vec<serde_json::Value>, String) {
    let file = state.join("restore.jsonl");
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&file, text).unwrap();
    let out = rabbit()
        .profile_env(&mut std::process::Command::new(env!(
            "CARGO_BIN_EXE_mqscope"
        )))
        .args(["publish", "--json", "--from", file.to_str().unwrap()])
        .args(["--url", &url_for("/")])
        .env("XDG_CONFIG_HOME", state.join("no-config"))
        .env("MQSCOPE_STATE_DIR", state)
        .output()
        .unwrap();
    let receipts = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (
        out.status.code().unwrap_or(-1),
        receipts,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The audit log's publish entries, oldest first.
fn publish_audits(state: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(state.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|e| e["action"] == "publish")
        .collect()
}

/// A restore whose middle line names a missing exchange: that line fails on its own, with
/// its line number; the lines around it are each delivered once and say so; the counts in
/// the receipts and the audit log are exact; and running it again adds exactly one more
/// copy of each good line (RabbitMQ closes the channel over a missing exchange, and every
/// confirm still out on it used to fail with that error, the line after it never sent).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_from_a_file_with_a_missing_exchange_reports_each_line_and_carries_on() {
    let Some(r) = Rabbit::new().await else { return };
    let (q1, q3) = (unique("restore-1"), unique("restore-3"));
    r.declare(&q1, AmqpTable::default()).await;
    r.declare(&q3, AmqpTable::default()).await;
    let lines = [
        serde_json::json!({"exchange": "", "routing_key": q1, "payload": "one"}),
        serde_json::json!({"exchange": unique("nosuchex"), "routing_key": "k", "payload": "two"}),
        serde_json::json!({"exchange": "", "routing_key": q3, "payload": "three"}),
    ];
    let state = tempfile::tempdir().unwrap();
    for run in 1..=2u32 {
        let (code, receipts, err) = publish_from(&lines, state.path());
        assert_eq!(code, 1, "a line failed: {err}");
        let ok: Vec<bool> = receipts.iter().map(|r| r["ok"] == true).collect();
        assert_eq!(ok, [true, false, true], "{receipts:?}");
        let outcome: Vec<(u64, &str)> = receipts
            .iter()
            .map(|r| (r["line"].as_u64().unwrap(), r["outcome"].as_str().unwrap()))
            .collect();
        assert_eq!(
            outcome,
            [(1, "published"), (2, "failed"), (3, "published")],
            "{receipts:?}"
        );
        assert!(
            receipts[1]["error"]
                .as_str()
                .unwrap()
                .contains(lines[1]["exchange"].as_str().unwrap()),
            "{receipts:?}"
        );
        assert!(
            err.contains("1 of 3 messages were not published (line 2)"),
            "{err}"
        );
        assert_eq!(r.ready(&q1).await, run, "line 1, run {run}");
        assert_eq!(r.ready(&q3).await, run, "line 3, run {run}");
        let audits = publish_audits(state.path());
        assert_eq!(audits.len(), run as usize);
        assert_eq!(audits[run as usize - 1]["count"], 2, "{audits:?}");
        assert_eq!(audits[run as usize - 1]["result"], "1 not published");
    }
    r.delete_queue(&q1).await;
    r.delete_queue(&q3).await;
}

/// A line the broker refuses only when it arrives (an internal exchange exists, so the
/// lookup passes, but publishing to it closes the channel): it fails alone, the line after
/// it goes out on a new channel, and the line before it is delivered once and reported
/// either confirmed or unknown (its confirm may have been lost with the channel), never
/// as failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_closes_the_channel_fails_alone_and_the_lines_after_it_still_go() {
    let Some(r) = Rabbit::new().await else { return };
    let (q1, q3, internal) = (
        unique("closing-1"),
        unique("closing-3"),
        unique("internal-x"),
    );
    r.declare(&q1, AmqpTable::default()).await;
    r.declare(&q3, AmqpTable::default()).await;
    let ch = r.conn.create_channel().await.unwrap();
    ch.exchange_declare(
        internal.as_str().into(),
        lapin::ExchangeKind::Fanout,
        lapin::options::ExchangeDeclareOptions {
            internal: true,
            ..Default::default()
        },
        AmqpTable::default(),
    )
    .await
    .unwrap();
    let lines = [
        serde_json::json!({"exchange": "", "routing_key": q1, "payload": "one"}),
        serde_json::json!({"exchange": internal, "routing_key": "k", "payload": "two"}),
        serde_json::json!({"exchange": "", "routing_key": q3, "payload": "three"}),
    ];
    let state = tempfile::tempdir().unwrap();
    let (code, receipts, err) = publish_from(&lines, state.path());
    ch.exchange_delete(internal.as_str().into(), Default::default())
        .await
        .unwrap();
    assert_eq!(code, 1, "{err}");
    assert_eq!(receipts[2]["ok"], true, "line 3 was sent: {receipts:?}");
    let outcome = |i: usize| receipts[i]["outcome"].as_str().unwrap();
    assert!(
        matches!(outcome(0), "published" | "unknown"),
        "{receipts:?}"
    );
    assert_eq!(
        (outcome(1), outcome(2)),
        ("failed", "published"),
        "{receipts:?}"
    );
    assert!(
        receipts[1]["error"]
            .as_str()
            .unwrap()
            .contains("internal exchange"),
        "{receipts:?}"
    );
    assert_eq!(r.ready(&q1).await, 1);
    assert_eq!(r.ready(&q3).await, 1);
    let confirmed = receipts.iter().filter(|r| r["ok"] == true).count();
    assert_eq!(publish_audits(state.path())[0]["count"], confirmed as u64);
    r.delete_queue(&q1).await;
    r.delete_queue(&q3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_one_binary_message_with_typed_headers_and_properties() {
    let Some(r) = Rabbit::new().await else { return };
    let q = unique("publish-one");
    r.declare(&q, AmqpTable::default()).await;
    let url = url_for("/");
    let body: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let file = std::env::temp_dir().join(format!("{q}.bin"));
    std::fs::write(&file, &body).unwrap();
    let out = mqscope(&[
        "publish",
        "--url",
        &url,
        "--queue",
        &q,
        "--body-file",
        file.to_str().unwrap(),
        "-H",
        "tenant=acme ü",
        "-H",
        "retries:=3",
        "--header",
        r#"small:={"$type":"i16","value":-2}"#,
        "--property",
        "content_type=application/octet-stream",
        "--property",
        "delivery_mode=persistent",
        "--property",
        "timestamp=2026-01-01T00:00:00Z",
        "--property",
        "correlation_id=order-17",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(&file).ok();
    let page = r.backend.peek(&q, &PeekRequest::first(5)).await.unwrap();
    assert_eq!(page.messages.len(), 1);
    let m = &page.messages[0];
    assert_eq!(&m.payload[..], &body[..], "byte for byte");
    assert_eq!(
        m.headers.get("tenant"),
        Some(&FieldValue::LongString("acme ü".into()))
    );
    assert_eq!(m.headers.get("retries"), Some(&FieldValue::I64(3)));
    assert_eq!(m.headers.get("small"), Some(&FieldValue::I16(-2)));
    let p = &m.properties;
    assert_eq!(p.content_type.as_deref(), Some("application/octet-stream"));
    assert_eq!(p.delivery_mode, Some(2));
    assert_eq!(p.timestamp, Some(1_767_225_600));
    assert_eq!(p.correlation_id.as_deref(), Some("order-17"));
    // Mistakes are found before anything is sent.
    for (args, says) in [
        (
            vec!["--property", "colour=red"],
            "--property: unknown field `colour`",
        ),
        (
            vec!["--property", "priority=high"],
            "not a number from 0 to 255",
        ),
        (vec!["-H", "novalue"], "write NAME=TEXT or NAME:=JSON"),
        (vec!["--key", "k"], "--key is a topic record's key"),
    ] {
        let mut all = vec!["publish", "--url", &url, "--queue", &q, "--body", "x"];
        all.extend(args);
        let out = mqscope(&all);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{err}");
    }
    let depth = r.backend.peek(&q, &PeekRequest::first(5)).await.unwrap();
    assert_eq!(depth.messages.len(), 1, "nothing else was published");
    r.delete_queue(&q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_sees_copies_and_leaves_delivery_alone() {
    let Some(r) = Rabbit::new().await else { return };
    let ex = unique("tail-x");
    let q = unique("tail-q");
    let ch = r.conn.create_channel().await.unwrap();
    ch.exchange_declare(
        ex.as_str().into(),
        lapin::ExchangeKind::Fanout,
        exchange_options(),
        AmqpTable::default(),
    )
    .await
    .unwrap();
    r.declare(&q, AmqpTable::default()).await;
    ch.queue_bind(
        q.as_str().into(),
        ex.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        AmqpTable::default(),
    )
    .await
    .unwrap();
    let live = r.backend.live_tail().unwrap();
    let mut tail = live
        .tail(&mqscope::backend::TailFilter {
            sources: vec![ex.clone()],
            ..Default::default()
        })
        .await
        .unwrap();
    r.publish_all(&ex, "k", &numbered(3)).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let m = tokio::time::timeout(Duration::from_secs(5), tail.events.recv())
            .await
            .expect("a tailed message within 5 s")
            .unwrap()
            .unwrap();
        let mqscope::backend::TailEvent::Message(m) = m else {
            panic!("not asked for deliveries: {m:?}")
        };
        assert_eq!(m.exchange.as_deref(), Some(ex.as_str()));
        got.push(m.payload);
    }
    assert_eq!(got, bodies(&numbered(3)));
    assert_eq!(r.ready(&q).await, 3, "real delivery is untouched");
    // This tail's tap: the server-named queue bound to this test's exchange and consumed
    // under this process's tail tag (someone else's tail of the whole vhost may tap the
    // exchange too). The management API shows consumers a stats interval late: poll.
    let ours = format!("mqscope-tail-{}-", std::process::id());
    let mut taps: Vec<String> = Vec::new();
    let mut bindings = serde_json::Value::Null;
    for _ in 0..120 {
        bindings = api_get(&format!(
            "exchanges/{}/{}/bindings/source",
            encode_vhost(&r.vhost),
            encode_vhost(&ex)
        ))
        .await;
        for d in bindings
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|b| b["destination"].as_str())
            .filter(|d| d.starts_with("amq.gen-"))
        {
            let q = api_get(&format!(
                "queues/{}/{}",
                encode_vhost(&r.vhost),
                encode_vhost(d)
            ))
            .await;
            let tags = q["consumer_details"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if tags.iter().any(|c| {
                c["consumer_tag"]
                    .as_str()
                    .is_some_and(|t| t.starts_with(&ours))
            }) {
                taps.push(d.to_string());
            }
        }
        if !taps.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(taps.len(), 1, "one tap queue bound to {ex}: {bindings}");
    // Its description names the tail's consumer and how the broker holds the tap.
    let tap = r.backend.describe_queue(&taps[0]).await.unwrap();
    assert!(
        tap.consumer_details
            .iter()
            .any(|c| c.tag.starts_with(&ours) && c.ack_required == Some(false)),
        "{:?}",
        tap.consumer_details
    );
    assert_eq!(
        (
            tap.state.exclusive,
            tap.state.auto_delete,
            tap.state.durable
        ),
        (Some(true), Some(true), Some(false))
    );
    let listed = r.backend.list_queues().await.unwrap();
    assert!(
        listed.iter().any(|s| taps.contains(&s.name)),
        "the listing shows the tap while the tail runs"
    );
    // What the broker drops from a full tap is dead-lettered to a spill queue of the
    // tail's, counted there: the tail says how many it missed. Five messages put in the
    // spill stand for five dropped.
    let q = api_get(&format!(
        "queues/{}/{}",
        encode_vhost(&r.vhost),
        encode_vhost(&taps[0])
    ))
    .await;
    assert_eq!(q["arguments"]["x-max-length"], 10_000, "{q}");
    let spill = q["arguments"]["x-dead-letter-routing-key"]
        .as_str()
        .unwrap_or_else(|| panic!("the tap dead-letters what it drops: {q}"))
        .to_string();
    assert_eq!(q["arguments"]["x-dead-letter-exchange"], "", "{q}");
    r.publish_all("", &spill, &numbered(5)).await;
    let behind = loop {
        let e = tokio::time::timeout(Duration::from_secs(5), tail.events.recv())
            .await
            .expect("the tail reports what it missed within 5 s")
            .unwrap();
        if let Err(e) = e {
            break e;
        }
    };
    assert!(
        matches!(behind, BackendError::Behind { skipped: 5, .. }),
        "{behind}"
    );
    drop(tail);
    let mut gone = false;
    for _ in 0..120 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let list = r.backend.list_queues().await.unwrap();
        if !list
            .iter()
            .any(|s| taps.contains(&s.name) || s.name == spill)
        {
            gone = true;
            break;
        }
    }
    assert!(
        gone,
        "the tap queue {taps:?} is deleted when the tail stops"
    );
    let err = live
        .tail(&mqscope::backend::TailFilter {
            sources: vec![unique("no-such-exchange")],
            ..Default::default()
        })
        .await
        .err()
        .expect("tailing a missing exchange fails");
    assert!(matches!(err, BackendError::ExchangeNotFound(_)), "{err:?}");
}

/// A management API resource as JSON (guest on the local broker), e.g. `queues/%2F/q`.
async fn api_get(path: &str) -> serde_json::Value {
    support::api_json(&format!("{}/api/{path}", rabbit().mgmt_url)).await
}

/// Turn the firehose on or off in a vhost, as an operator would in the management UI.
async fn set_tracing(vhost: &str, on: bool) {
    let resp = reqwest::Client::new()
        .put(format!(
            "{}/api/vhosts/{}",
            rabbit().mgmt_url,
            encode_vhost(vhost)
        ))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({ "tracing": on }))
        .send()
        .await
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.status());
}

async fn next_tailed(tail: &mut mqscope::backend::Tail) -> Message {
    let event = tokio::time::timeout(Duration::from_secs(5), tail.events.recv())
        .await
        .expect("a tailed message within 5 s")
        .expect("the tail is running")
        .expect("no tail error");
    match event {
        mqscope::backend::TailEvent::Message(m) => m,
        other => panic!("a message, not {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_tail_through_the_firehose_sees_every_publish() {
    let Some(_) = Rabbit::new().await else { return };
    in_own_vhost("mqscope test firehose/ü", |r| async move {
        let live = r.backend.live_tail().unwrap();
        let ex = "orders direct";
        let other = "audit fanout";
        let q = "order queue ü";
        let ch = r.conn.create_channel().await.unwrap();
        for (x, kind) in [
            (ex, lapin::ExchangeKind::Direct),
            (other, lapin::ExchangeKind::Fanout),
        ] {
            ch.exchange_declare(x.into(), kind, exchange_options(), AmqpTable::default())
                .await
                .unwrap();
        }
        r.declare(q, AmqpTable::default()).await;
        ch.queue_bind(
            q.into(),
            ex.into(),
            "bound".into(),
            QueueBindOptions::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();

        // Without tracing: the default exchange cannot be bound, and the user is told how.
        let err = live
            .tail(&mqscope::backend::TailFilter {
                sources: vec!["amq.default".into()],
                ..Default::default()
            })
            .await
            .err()
            .expect("the default exchange needs the firehose");
        assert!(err.to_string().contains("trace_on"), "{err}");
        // A direct exchange is followed by its bound keys, and the tail says so.
        let direct = live
            .tail(&mqscope::backend::TailFilter {
                sources: vec![ex.into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            direct.notes.iter().any(|n| n.contains("1 routing key")),
            "{:?}",
            direct.notes
        );
        drop(direct);

        set_tracing(&r.vhost, true).await;
        let mut tail = live
            .tail(&mqscope::backend::TailFilter {
                sources: vec![ex.into(), "amq.default".into()],
                ..Default::default()
            })
            .await
            .unwrap();
        assert!(
            tail.notes.iter().any(|n| n.contains("firehose")),
            "{:?}",
            tail.notes
        );
        let mut nested = FieldTable::new();
        nested.insert("n", FieldValue::I16(-3));
        let mut routed = Message::new("", 0, "routed");
        routed.properties.correlation_id = Some("c-1".into());
        routed.properties.delivery_mode = Some(2);
        routed.properties.content_type = Some("text/plain".into());
        routed.headers.insert("big", FieldValue::I64(1 << 40));
        routed.headers.insert("nested", FieldValue::Table(nested));
        let unroutable = Message::new("", 0, vec![0u8, 255, 1]);
        let direct_to_queue = Message::new("", 0, "by the default exchange");
        r.publish_all(ex, "bound", std::slice::from_ref(&routed))
            .await;
        r.publish_all(ex, "nobody binds this", std::slice::from_ref(&unroutable))
            .await;
        // Not a source: the tail must not show it.
        r.publish_all(other, "", &numbered(1)).await;
        r.publish_all("", q, std::slice::from_ref(&direct_to_queue))
            .await;

        let a = next_tailed(&mut tail).await;
        assert_eq!(a.exchange.as_deref(), Some(ex));
        assert_eq!(a.routing_key.as_deref(), Some("bound"));
        assert_eq!(a.payload, routed.payload);
        assert_eq!(a.properties.correlation_id.as_deref(), Some("c-1"));
        assert_eq!(a.properties.delivery_mode, Some(2));
        assert_eq!(a.properties.content_type.as_deref(), Some("text/plain"));
        assert!(a.properties.timestamp.is_some());
        assert_eq!(a.headers, routed.headers, "headers keep their AMQP types");
        assert_eq!(a.routed_queues, Some(vec![q.to_string()]), "where it went");
        let b = next_tailed(&mut tail).await;
        assert_eq!(b.routing_key.as_deref(), Some("nobody binds this"));
        assert_eq!(b.payload, unroutable.payload, "binary bodies as they were");
        assert_eq!(b.routed_queues, Some(vec![]), "unroutable: no queue");
        let c = next_tailed(&mut tail).await;
        assert_eq!(c.exchange.as_deref(), Some(""), "the default exchange");
        assert_eq!(c.routing_key.as_deref(), Some(q));
        assert_eq!(c.payload, direct_to_queue.payload);
        assert_eq!(c.routed_queues, Some(vec![q.to_string()]));
        // Dead-lettering is not a publish: the firehose does not see it, the tail still
        // does (once), through its binding to the exchange the message dies into.
        let mut args = AmqpTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(ex.into()),
        );
        args.insert(
            "x-dead-letter-routing-key".into(),
            AMQPValue::LongString("bound".into()),
        );
        args.insert("x-message-ttl".into(), AMQPValue::LongInt(50));
        r.declare("short-lived", args).await;
        r.publish_all("", "short-lived", &[Message::new("", 0, "expires")])
            .await;
        let d = next_tailed(&mut tail).await;
        assert_eq!(
            (d.exchange.as_deref(), d.routing_key.as_deref()),
            (Some(""), Some("short-lived"))
        );
        let e = next_tailed(&mut tail).await;
        assert_eq!(e.exchange.as_deref(), Some(ex), "the dead letter");
        assert_eq!(
            e.routed_queues, None,
            "a binding copy does not say where it went"
        );
        assert_eq!(e.payload.as_ref(), b"expires");
        assert_eq!(
            e.deaths().first().map(|d| d.queue.as_str()),
            Some("short-lived")
        );
        // Through an exchange the tail does not follow, bound to one it does: the firehose
        // reports it under the other exchange, the binding copy is what shows it.
        let side = "side fanout";
        ch.exchange_declare(
            side.into(),
            lapin::ExchangeKind::Fanout,
            exchange_options(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
        ch.exchange_bind(
            ex.into(),
            side.into(),
            "".into(),
            Default::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
        r.publish_all(side, "bound", &[Message::new("", 0, "sideways")])
            .await;
        let f = next_tailed(&mut tail).await;
        assert_eq!(f.payload.as_ref(), b"sideways");
        assert_eq!(f.exchange.as_deref(), Some(side));
        // A dead letter published again as it is (a retry loop): once, not twice.
        let mut again = Message::new("", 0, "retried");
        again.headers = e.headers.clone();
        r.publish_all(ex, "bound", std::slice::from_ref(&again))
            .await;
        let g = next_tailed(&mut tail).await;
        assert_eq!(g.payload.as_ref(), b"retried");
        assert!(g.headers.get("x-death").is_some());
        assert!(
            tokio::time::timeout(Duration::from_millis(500), tail.events.recv())
                .await
                .is_err(),
            "each message once"
        );
        // Tracing turned off while the tail runs: the firehose goes quiet, the bindings
        // still show each publish, once.
        set_tracing(&r.vhost, false).await;
        r.publish_all(ex, "bound", &[Message::new("", 0, "after trace_off")])
            .await;
        let h = next_tailed(&mut tail).await;
        assert_eq!(h.payload.as_ref(), b"after trace_off");
        assert_eq!(h.exchange.as_deref(), Some(ex));
        assert!(
            tokio::time::timeout(Duration::from_millis(500), tail.events.recv())
                .await
                .is_err(),
            "once after tracing went off too"
        );
        assert_eq!(r.ready(q).await, 6, "real delivery is untouched");
        drop(tail);

        // A source that does not exist is an error, not a silent empty tail.
        let err = live
            .tail(&mqscope::backend::TailFilter {
                sources: vec!["no such exchange".into()],
                ..Default::default()
            })
            .await
            .err()
            .expect("tailing a missing exchange fails");
        assert!(matches!(err, BackendError::ExchangeNotFound(_)), "{err:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_finds_the_id_in_property_header_and_body_and_changes_nothing() {
    let Some(r) = Rabbit::new().await else { return };
    let base = unique("trace");
    let (ex, dlx) = (format!("{base}.orders"), format!("{base}.dlx"));
    let queues = [
        format!("{base}.a"),
        format!("{base}.b"),
        format!("{base}.c"),
    ];
    let dlq = format!("{base}.dlq");
    let ch = r.conn.create_channel().await.unwrap();
    for (x, kind) in [
        (&ex, lapin::ExchangeKind::Fanout),
        (&dlx, lapin::ExchangeKind::Fanout),
    ] {
        ch.exchange_declare(
            x.as_str().into(),
            kind,
            exchange_options(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
    }
    r.declare(&dlq, AmqpTable::default()).await;
    ch.queue_bind(
        dlq.as_str().into(),
        dlx.as_str().into(),
        "".into(),
        QueueBindOptions::default(),
        AmqpTable::default(),
    )
    .await
    .unwrap();
    for (i, q) in queues.iter().enumerate() {
        let mut args = AmqpTable::default();
        if i == 0 {
            args.insert(
                "x-dead-letter-exchange".into(),
                AMQPValue::LongString(dlx.clone().into()),
            );
        }
        r.declare(q, args).await;
        ch.queue_bind(
            q.as_str().into(),
            ex.as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
    }
    let id = format!("trace-{base}");
    let mut by_property = Message::new("", 0, "order");
    by_property.properties.correlation_id = Some(id.clone());
    let mut by_header = Message::new("", 0, "invoice");
    by_header
        .headers
        .insert("x-correlation-id", FieldValue::string(id.clone()));
    let by_body = Message::new("", 0, format!("{{\"correlationId\": \"{id}\"}}"));
    let noise = Message::new("", 0, "{\"correlationId\": \"someone-else\"}");
    r.publish_all(&ex, "", &[by_property, noise, by_header, by_body])
        .await;
    // Dead-letter the first queue's copy of the first message (reject, no requeue).
    let got = ch
        .basic_get(
            queues[0].as_str().into(),
            lapin::options::BasicGetOptions::default(),
        )
        .await
        .unwrap()
        .unwrap();
    got.delivery
        .acker
        .reject(lapin::options::BasicRejectOptions { requeue: false })
        .await
        .unwrap();
    let names: Vec<String> = queues.iter().chain([&dlq]).cloned().collect();
    async fn depths(r: &Rabbit, names: &[String]) -> Vec<u32> {
        let mut v = Vec::new();
        for n in names {
            v.push(r.ready(n).await);
        }
        v
    }
    // The dead-lettering of the rejected one lands a moment after the reject.
    r.wait_for(&dlq, 1).await;
    let before = depths(&r, &names).await;
    assert_eq!(before, vec![3, 4, 4, 1]);
    let opts = mqscope::ops::trace::TraceOptions {
        queues: Some(format!("{base}.*")),
        ..Default::default()
    };
    let t = mqscope::ops::trace::trace(r.backend.as_ref(), &id, &opts)
        .await
        .unwrap();
    assert_eq!(
        depths(&r, &names).await,
        before,
        "a trace consumes and moves nothing"
    );
    assert_eq!(t.queues_scanned, 4);
    let count = |q: &str| t.hops.iter().filter(|h| h.queue == q).count();
    assert_eq!(
        (
            count(&queues[0]),
            count(&queues[1]),
            count(&queues[2]),
            count(&dlq)
        ),
        (2, 3, 3, 1)
    );
    let dead = t.hops.iter().find(|h| h.queue == dlq).unwrap();
    let d = dead.dead_letter.as_ref().unwrap();
    assert_eq!(
        (d.from.as_str(), d.reason),
        (queues[0].as_str(), mqscope::model::DeathReason::Rejected)
    );
}

/// `--follow` on RabbitMQ: the live tail's exchange taps report a new publish carrying the
/// ID and, when a copy is rejected, its dead-lettering through the DLX with the reason and
/// the queue it came from; messages of other IDs are not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_reports_new_publishes_and_dead_letters_live() {
    let Some(_) = Rabbit::new().await else { return };
    // Its tail follows every exchange in the vhost: in a vhost of its own, it taps no
    // other test's exchanges.
    in_own_vhost("mqscope test follow", |r| async move {
        let base = unique("follow");
        let (ex, dlx) = (format!("{base}.orders"), format!("{base}.dlx"));
        let (q, dlq) = (format!("{base}.billing"), format!("{base}.dlq"));
        let ch = r.conn.create_channel().await.unwrap();
        for x in [&ex, &dlx] {
            ch.exchange_declare(
                x.as_str().into(),
                lapin::ExchangeKind::Fanout,
                exchange_options(),
                AmqpTable::default(),
            )
            .await
            .unwrap();
        }
        let mut args = AmqpTable::default();
        args.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(dlx.clone().into()),
        );
        r.declare(&q, args).await;
        r.declare(&dlq, AmqpTable::default()).await;
        for (queue, x) in [(&q, &ex), (&dlq, &dlx)] {
            ch.queue_bind(
                queue.as_str().into(),
                x.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                AmqpTable::default(),
            )
            .await
            .unwrap();
        }
        let id = format!("follow-{base}");
        let opts = mqscope::ops::trace::TraceOptions {
            queues: Some(format!("{base}.*")),
            ..Default::default()
        };
        let mut f = mqscope::ops::trace::follow::start(r.backend.as_ref(), &id, &opts)
            .await
            .unwrap();
        let mut order = Message::new("", 0, "order");
        order.properties.correlation_id = Some(id.clone());
        order.properties.message_id = Some("order-1".into());
        let mut noise = Message::new("", 0, "other");
        noise.properties.correlation_id = Some("someone-else".into());
        r.publish_all(&ex, "order.created", &[noise, order]).await;
        // Billing rejects both: only the traced one's dead letter is reported.
        for _ in 0..2 {
            let got = ch
                .basic_get(
                    q.as_str().into(),
                    lapin::options::BasicGetOptions::default(),
                )
                .await
                .unwrap()
                .unwrap();
            got.delivery
                .acker
                .reject(lapin::options::BasicRejectOptions { requeue: false })
                .await
                .unwrap();
        }
        let mut hops = Vec::new();
        while hops.len() < 2 {
            let h = tokio::time::timeout(Duration::from_secs(10), f.next_hop())
                .await
                .expect("a live hop within 10 s")
                .expect("the tail is open")
                .unwrap();
            hops.push(h);
        }
        assert_eq!(
            hops.iter()
                .map(|h| (h.kind, h.queue.as_str()))
                .collect::<Vec<_>>(),
            vec![
                (mqscope::ops::trace::HopKind::Exchange, ex.as_str()),
                (mqscope::ops::trace::HopKind::Exchange, dlx.as_str()),
            ]
        );
        assert!(hops.iter().all(|h| h.live));
        assert_eq!(hops[0].routing_key.as_deref(), Some("order.created"));
        assert_eq!(hops[0].message_id.as_deref(), Some("order-1"));
        let d = hops[1].dead_letter.as_ref().expect("the dead-letter hop");
        assert_eq!(
            (d.from.as_str(), d.reason, d.count),
            (q.as_str(), mqscope::model::DeathReason::Rejected, 1)
        );
        assert!(
            tokio::time::timeout(Duration::from_millis(500), f.next_hop())
                .await
                .is_err(),
            "the other ID's publish and dead letter are not reported"
        );
        // Both hops are one publish in the graph: the dead letter hangs under the order.
        let rows = mqscope::ops::trace::graph::rows(&hops);
        assert_eq!(rows.len(), 3, "{rows:?}");
        drop(f);

        // With tracing on, the broker says which queues a publish reached: a follow
        // limited to one queue reports a publish routed there.
        set_tracing(&r.vhost, true).await;
        let only_billing = mqscope::ops::trace::TraceOptions {
            queues: Some(q.clone()),
            ..Default::default()
        };
        let mut f = mqscope::ops::trace::follow::start(r.backend.as_ref(), &id, &only_billing)
            .await
            .unwrap();
        let mut update = Message::new("", 0, "order updated");
        update.properties.correlation_id = Some(id.clone());
        r.publish_all(&ex, "order.updated", &[update]).await;
        let h = tokio::time::timeout(Duration::from_secs(10), f.next_hop())
            .await
            .expect("a live hop within 10 s")
            .expect("the tail is open")
            .unwrap();
        assert_eq!(
            (h.kind, h.queue.as_str()),
            (mqscope::ops::trace::HopKind::Exchange, ex.as_str())
        );
        assert_eq!(h.routed_queues, Some(vec![q.clone()]));
    })
    .await;
}

/// Browsing routing through the management API, in an odd vhost: exchanges with their
/// type, flags, alternate exchange from an argument and from a policy, binding counts;
/// bindings with typed headers-exchange arguments and exchange-to-exchange destinations;
/// vhosts with tracing. The CLI lists the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exchanges_bindings_and_vhosts_are_listed() {
    let Some(_) = Rabbit::new().await else { return };
    in_own_vhost("mqscope test browse/ü", |r| async move {
        let ch = r.conn.create_channel().await.unwrap();
        let mut ae = AmqpTable::default();
        ae.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString("unrouted".into()),
        );
        r.declare_exchange("orders ü", lapin::ExchangeKind::Topic, false, ae)
            .await;
        for (name, kind, internal) in [
            ("unrouted", lapin::ExchangeKind::Fanout, false),
            ("audit", lapin::ExchangeKind::Topic, true),
            ("by headers", lapin::ExchangeKind::Headers, false),
            ("policy-ae", lapin::ExchangeKind::Direct, false),
        ] {
            r.declare_exchange(name, kind, internal, AmqpTable::default())
                .await;
        }
        r.declare("orders queue", AmqpTable::default()).await;
        ch.queue_bind(
            "orders queue".into(),
            "orders ü".into(),
            "order.*".into(),
            QueueBindOptions::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
        ch.exchange_bind(
            "audit".into(),
            "orders ü".into(),
            "#".into(),
            Default::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
        let mut match_args = AmqpTable::default();
        match_args.insert("x-match".into(), AMQPValue::LongString("all".into()));
        match_args.insert("type".into(), AMQPValue::LongString("order".into()));
        match_args.insert("version".into(), AMQPValue::LongInt(2));
        ch.queue_bind(
            "orders queue".into(),
            "by headers".into(),
            "".into(),
            QueueBindOptions::default(),
            match_args,
        )
        .await
        .unwrap();
        let resp = reqwest::Client::new()
            .put(format!(
                "{}/api/policies/{}/ae",
                rabbit().mgmt_url,
                encode_vhost(&r.vhost)
            ))
            .basic_auth("guest", Some("guest"))
            .json(&serde_json::json!({
                "pattern": "^policy-ae$",
                "definition": {"alternate-exchange": "unrouted"},
                "apply-to": "exchanges",
            }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());

        let browse = r.backend.browser().expect("RabbitMQ lists its routing");
        let mut list = Vec::new();
        for _ in 0..120 {
            list = browse.exchanges().await.unwrap();
            if list
                .iter()
                .any(|e| e.name == "policy-ae" && e.policy.is_some())
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let get = |n: &str| {
            list.iter()
                .find(|e| e.name == n)
                .unwrap_or_else(|| panic!("{n} listed: {list:?}"))
        };
        assert_eq!(list[0].name, "", "the default exchange first");
        let orders = get("orders ü");
        assert_eq!(orders.kind, "topic");
        assert!(orders.durable && !orders.internal && !orders.auto_delete);
        assert_eq!(orders.alternate_exchange.as_deref(), Some("unrouted"));
        assert_eq!(orders.bindings, 2, "to the queue and to audit");
        assert!(get("audit").internal);
        assert_eq!(get("by headers").kind, "headers");
        let by_policy = get("policy-ae");
        assert_eq!(by_policy.policy.as_deref(), Some("ae"));
        assert_eq!(by_policy.alternate_exchange.as_deref(), Some("unrouted"));

        let bindings = browse.bindings().await.unwrap();
        assert!(
            bindings.iter().all(|b| !b.source.is_empty()),
            "no implicit ones"
        );
        let e2e = bindings
            .iter()
            .find(|b| b.destination == "audit")
            .expect("the exchange-to-exchange binding");
        assert_eq!(e2e.source, "orders ü");
        assert_eq!(
            e2e.destination_kind,
            mqscope::model::topology::DestinationKind::Exchange
        );
        let h = bindings
            .iter()
            .find(|b| b.source == "by headers")
            .expect("the headers binding");
        assert_eq!(h.arguments.get("version"), Some(&FieldValue::I64(2)));
        assert_eq!(
            h.arguments.get("x-match").and_then(FieldValue::as_str),
            Some("all")
        );

        let vhosts = browse.vhosts().await.unwrap();
        let this = vhosts.iter().find(|v| v.name == r.vhost).expect("listed");
        assert!(!this.tracing);
        set_tracing(&r.vhost, true).await;
        let vhosts = browse.vhosts().await.unwrap();
        assert!(vhosts.iter().any(|v| v.name == r.vhost && v.tracing));

        // The CLI, with the odd vhost percent-encoded in the URL.
        let url = url_for(&r.vhost);
        let out = mqscope(&["bindings", "--url", &url, "--source", "orders ü", "--json"]);
        assert!(out.status.success(), "{out:?}");
        let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(lines.iter().any(|l| l["destination"] == "audit"
            && l["destination_kind"] == "exchange"
            && l["routing_key"] == "#"));
        let out = mqscope(&["exchanges", "--url", &url, "orders"]);
        assert!(out.status.success(), "{out:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        let row = text
            .lines()
            .find(|l| l.starts_with("orders ü"))
            .unwrap_or_else(|| panic!("{text}"));
        for cell in ["topic", "D", "unrouted"] {
            assert!(row.contains(cell), "{cell} in {row}");
        }
        let out = mqscope(&["vhosts", "--url", &url, "--json"]);
        assert!(out.status.success(), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stdout).lines().any(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["name"] == r.vhost.as_str() && v["tracing"] == true
        }));
    })
    .await;
}

/// The TUI's worker switches virtual host on the same broker: it reconnects there, and the
/// queue list is that vhost's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tui_switches_virtual_host() {
    use mqscope::tui::state::Effect;
    use mqscope::tui::update::Msg;
    let Some(_) = Rabbit::new().await else { return };
    in_own_vhost("mqscope test switch/ü", |r| async move {
        let q = "only in this vhost ü";
        r.declare(q, AmqpTable::default()).await;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let target = Target::parse(&url_for("/")).unwrap();
        let worker = mqscope::tui::worker::Worker::with_options(target, rabbit().options(), tx);
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(20), rx.recv())
                .await
                .expect("a reply within 20 s")
                .expect("the worker is running")
        };
        worker.run(Effect::Connect);
        let Msg::Connected { target: first, .. } = next().await else {
            panic!("connected")
        };
        // A vhost that does not exist: the switch fails, the first connection stays.
        worker.run(Effect::SwitchVhost(format!("{} missing", r.vhost)));
        let Msg::VhostSwitchFailed(e) = next().await else {
            panic!("the switch fails")
        };
        assert!(!e.is_empty());
        worker.run(Effect::LoadQueues(6));
        let Msg::QueuesLoaded {
            req: 6,
            result: Ok(_),
            ..
        } = next().await
        else {
            panic!("the first vhost still lists")
        };
        worker.run(Effect::SwitchVhost(r.vhost.clone()));
        let Msg::Connected { target: second, .. } = next().await else {
            panic!("connected to the other vhost")
        };
        assert_ne!(first, second);
        worker.run(Effect::LoadQueues(7));
        let Msg::QueuesLoaded {
            req: 7,
            result: Ok(list),
            ..
        } = next().await
        else {
            panic!("queues of the new vhost")
        };
        assert_eq!(
            list.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
            [q]
        );
        assert!(
            list.iter()
                .all(|l| l.vhost.as_deref() == Some(r.vhost.as_str()))
        );
    })
    .await;
}

/// With tracing on, `trace --follow` reports each delivery of the traced message to a
/// consumer as a hop: the queue, the consumer's user and connection, and whether it was
/// delivered before. mqscope's own peek of the queue meanwhile is a delivery too, on its
/// own connection, and is not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn follow_reports_deliveries_to_consumers_but_not_its_own_peeks() {
    let Some(_) = Rabbit::new().await else { return };
    in_own_vhost("mqscope test deliveries", |r| async move {
        use mqscope::ops::trace::{TraceOptions, follow, trace};
        let q = "shipping";
        r.declare(q, AmqpTable::default()).await;
        set_tracing(&r.vhost, true).await;
        let user = test_user("shipping-svc", "", ".*").await;
        permit(&user, &r.vhost, ".*").await;
        let id = unique("order");
        let opts = TraceOptions::default();
        let mut f = follow::start(r.backend.as_ref(), &id, &opts).await.unwrap();
        let t = trace(r.backend.as_ref(), &id, &opts).await.unwrap();
        assert!(t.hops.is_empty(), "{:?}", t.hops);
        let mut wanted = Message::new("", 0, "order");
        wanted.properties.correlation_id = Some(id.clone());
        let noise = Message::new("", 0, "noise");
        r.publish_all("", q, &[wanted, noise]).await;

        // The consumer takes it, gives it back, mqscope peeks the queue, the consumer
        // takes it again and keeps it.
        let url = rabbit().url_as(&format!("{}:pw", encode_vhost(&user)), &r.vhost);
        let consumer = Connection::connect(&url, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = consumer.create_channel().await.unwrap();
        let get = || async {
            ch.basic_get(q.into(), lapin::options::BasicGetOptions::default())
                .await
                .unwrap()
                .expect("a message")
        };
        let first = get().await;
        assert_eq!(first.delivery.data, b"order");
        first
            .delivery
            .nack(lapin::options::BasicNackOptions {
                requeue: true,
                ..Default::default()
            })
            .await
            .unwrap();
        let page = r.backend.peek(q, &PeekRequest::first(10)).await.unwrap();
        assert_eq!(page.messages.len(), 2, "mqscope's own read");
        let again = get().await;
        assert_eq!(again.delivery.data, b"order");
        again
            .delivery
            .ack(lapin::options::BasicAckOptions::default())
            .await
            .unwrap();

        let mut hops = Vec::new();
        // The deliveries wait until the management API names mqscope's own connection,
        // which it does at its next statistics round (5 s by default).
        while hops.len() < 3 {
            let hop = tokio::time::timeout(Duration::from_secs(30), f.next_hop())
                .await
                .unwrap_or_else(|_| panic!("three hops within 30 s, got {hops:?}"))
                .expect("the tail is open")
                .unwrap();
            hops.push(hop);
        }
        let extra = tokio::time::timeout(Duration::from_secs(1), f.next_hop()).await;
        consumer.close(200, "done".into()).await.unwrap();
        remove_user(&user).await;
        assert!(
            extra.is_err(),
            "mqscope's own peek is no delivery: {extra:?}"
        );
        assert!(hops[0].deliveries.is_empty(), "the publish: {:?}", hops[0]);
        assert_eq!((hops[0].queue.as_str(), hops[0].live), (q, true));
        let seen: Vec<(String, Option<String>, bool)> = hops[1..]
            .iter()
            .map(|h| {
                assert_eq!(h.queue, q);
                let d = &h.deliveries[0];
                let connection = d.connection.as_deref().unwrap_or("");
                assert!(connection.contains(" -> "), "the broker's name: {d:?}");
                assert!(d.channel.is_some() && d.node.is_some(), "{d:?}");
                (d.queue.clone(), d.user.clone(), d.redelivered)
            })
            .collect();
        assert_eq!(
            seen,
            vec![
                (q.to_string(), Some(user.clone()), false),
                (q.to_string(), Some(user.clone()), true),
            ]
        );
        let line = hops[1].deliveries[0].describe();
        assert!(
            line.starts_with(&format!("picked up from {q} by user {user} on connection "))
                && line.ends_with("redelivered: no"),
            "{line}"
        );
        set_tracing(&r.vhost, false).await;
    })
    .await;
}

/// A broker user of a test's own, with password "pw", these tags and, on vhost `/`, this
/// permission pattern for configure, write and read; deleted with `remove`.
async fn test_user(hint: &str, tags: &str, allowed: &str) -> String {
    let user = unique(hint);
    let made = reqwest::Client::new()
        .put(format!(
            "{}/api/users/{}",
            rabbit().mgmt_url,
            encode_vhost(&user)
        ))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({"password": "pw", "tags": tags}))
        .send()
        .await
        .unwrap();
    assert!(made.status().is_success(), "{}", made.status());
    permit(&user, "/", allowed).await;
    user
}

/// Let `user` configure, write and read what `allowed` matches in `vhost`.
async fn permit(user: &str, vhost: &str, allowed: &str) {
    let permitted = reqwest::Client::new()
        .put(format!(
            "{}/api/permissions/{}/{}",
            rabbit().mgmt_url,
            encode_vhost(vhost),
            encode_vhost(user)
        ))
        .basic_auth("guest", Some("guest"))
        .json(&serde_json::json!({"configure": allowed, "write": allowed, "read": allowed}))
        .send()
        .await
        .unwrap();
    assert!(permitted.status().is_success(), "{}", permitted.status());
}

async fn remove_user(user: &str) {
    let _ = reqwest::Client::new()
        .delete(format!(
            "{}/api/users/{}",
            rabbit().mgmt_url,
            encode_vhost(user)
        ))
        .basic_auth("guest", Some("guest"))
        .send()
        .await;
}

/// The four ways a connection commonly fails each get their own one-line error that says
/// what to do: wrong password, closed port, no management plugin, no monitoring tag.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_errors_each_say_what_to_do() {
    let Some(r) = Rabbit::new().await else { return };
    let connect = |url: String, management: Option<&str>| {
        let settings = mqscope::backend::ConnectSettings {
            management_url: management.map(str::to_string),
            ..Default::default()
        };
        async move {
            let Ok(Target::Amqp(t)) = Target::parse(&url) else {
                panic!("{url}")
            };
            let opts = ConnectOptions {
                settings,
                ..ConnectOptions::default()
            };
            match RabbitBackend::connect(&t, &opts).await {
                Ok(_) => panic!("{url} connected"),
                Err(e) => e,
            }
        }
    };
    let mgmt_url = Some(rabbit().mgmt_url.as_str());
    let wrong = connect(rabbit().url_as("guest:not-the-password", "/"), mgmt_url).await;
    let closed = connect("amqp://guest:guest@127.0.0.1:1/%2f".into(), None).await;
    let no_plugin = connect(rabbit().url_for("/"), Some("http://127.0.0.1:1")).await;
    // A user AMQP accepts but the management API does not: no monitoring tag.
    let user = test_user("untagged", "", ".*").await;
    let untagged_url = rabbit().url_as(&format!("{}:pw", encode_vhost(&user)), "/");
    let untagged = connect(untagged_url.clone(), mgmt_url).await;
    // Publishing needs AMQP alone: the same user may publish.
    let q = unique("amqp-only");
    r.declare(&q, AmqpTable::default()).await;
    let published = mqscope(&[
        "publish",
        "--body",
        "x",
        "--queue",
        &q,
        "--url",
        &untagged_url,
    ]);
    remove_user(&user).await;
    assert!(
        published.status.success(),
        "{}",
        String::from_utf8_lossy(&published.stderr)
    );
    assert_eq!(r.ready(&q).await, 1);
    r.delete_queue(&q).await;

    let (wrong, closed, no_plugin, untagged) = (
        wrong.to_string(),
        closed.to_string(),
        no_plugin.to_string(),
        untagged.to_string(),
    );
    assert!(wrong.contains("wrong user name or password"), "{wrong}");
    assert!(closed.contains("is RabbitMQ running"), "{closed}");
    assert!(
        no_plugin.contains("rabbitmq-plugins enable rabbitmq_management"),
        "{no_plugin}"
    );
    assert!(untagged.contains("set_user_tags"), "{untagged}");
    assert!(!untagged.contains("wrong"), "{untagged}");
    for e in [&wrong, &closed, &no_plugin, &untagged] {
        assert_eq!(e.lines().count(), 1, "one line: {e}");
        assert!(
            !e.contains("not-the-password") && !e.contains(":pw@"),
            "{e}"
        );
    }
}

/// A user whose password is right but whose permissions do not cover the queue is told
/// so, not sent to check a password.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permission_refusal_is_not_called_a_wrong_password() {
    let Some(r) = Rabbit::new().await else { return };
    let q = unique("forbidden");
    r.declare(&q, AmqpTable::default()).await;
    r.publish_all("", &q, &numbered(1)).await;
    let user = test_user("limited", "monitoring", "^mqscope-nothing-of-this-name$").await;
    let url = rabbit().url_as(&format!("{}:pw", encode_vhost(&user)), "/");
    let peek = mqscope(&["peek", &q, "--url", &url]);
    let publish = mqscope(&["publish", "--body", "x", "--queue", &q, "--url", &url]);
    remove_user(&user).await;
    for out in [peek, publish] {
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(&format!("refused for user '{user}'")), "{err}");
        assert!(err.contains("list_user_permissions"), "{err}");
        assert!(!err.contains("password"), "{err}");
    }
    let page = r.backend.peek(&q, &PeekRequest::first(5)).await.unwrap();
    assert_eq!(page.messages.len(), 1, "untouched");
    r.delete_queue(&q).await;
}

/// Past AMQP's prefetch limit a queue cannot be peeked: a window that reaches beyond it
/// is cut there with a note, a start beyond it is refused, and `--all` stops there with a
/// note instead of failing after printing everything it could read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queue_deeper_than_a_peek_reaches_says_where_the_peek_stops() {
    let Some(r) = Rabbit::new().await else { return };
    let q = unique("deep");
    r.declare(&q, AmqpTable::default()).await;
    let n = 65_600;
    let file = std::env::temp_dir().join(format!("{q}.jsonl"));
    let lines: String = (0..n)
        .map(|i| format!("{{\"payload\":\"m{i}\"}}\n"))
        .collect();
    std::fs::write(&file, lines).unwrap();
    let url = url_for("/");
    let out = mqscope(&[
        "publish",
        "--from",
        file.to_str().unwrap(),
        "--queue",
        &q,
        "--url",
        &url,
    ]);
    std::fs::remove_file(&file).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let count = |out: &std::process::Output| String::from_utf8_lossy(&out.stdout).lines().count();
    let near = mqscope(&[
        "peek", &q, "--from", "65500", "-n", "100", "--json", "--url", &url,
    ]);
    assert!(
        near.status.success(),
        "{}",
        String::from_utf8_lossy(&near.stderr)
    );
    assert_eq!(count(&near), 35);
    let err = String::from_utf8_lossy(&near.stderr);
    assert!(err.contains("positions 65500 to 65534 only"), "{err}");
    // The peek's 65,535 returns reach the ready count a moment after it ends (a classic
    // queue answers the next peek's passive declare first): a count read too soon is
    // short, and a position past it is simply empty.
    r.wait_for(&q, n).await;
    let beyond = mqscope(&["peek", &q, "--from", "65535", "--url", &url]);
    assert_eq!(beyond.status.code(), Some(1));
    let err = String::from_utf8_lossy(&beyond.stderr);
    assert!(err.contains("past the first 65535 messages"), "{err}");
    r.wait_for(&q, n).await;
    let all = mqscope(&["peek", &q, "--all", "--json", "--url", &url]);
    assert!(
        all.status.success(),
        "{}",
        String::from_utf8_lossy(&all.stderr)
    );
    assert_eq!(count(&all), 65_535);
    let err = String::from_utf8_lossy(&all.stderr);
    assert!(err.contains("the rest were not read"), "{err}");
    assert_eq!(r.ready(&q).await, n, "nothing consumed");
    r.delete_queue(&q).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tailing_a_queue_by_mistake_says_it_is_a_queue() {
    let Some(r) = Rabbit::new().await else { return };
    let q = unique("tail-mistake");
    r.declare(&q, AmqpTable::default()).await;
    let out = mqscope(&["tail", &q, "--url", &url_for("/")]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("it is a queue"), "{err}");
    assert!(err.contains(&format!("mqscope peek '{q}'")), "{err}");
    r.delete_queue(&q).await;
}

/// The AMQP methods (class, method) a client sent on channel 0, read from the bytes it
/// wrote: the protocol header, then frames of type, channel, size, payload and 0xCE.
fn connection_methods(sent: &[u8]) -> Vec<(u16, u16)> {
    assert!(
        sent.starts_with(b"AMQP"),
        "not an AMQP client: {:?}",
        &sent[..sent.len().min(8)]
    );
    let mut methods = Vec::new();
    let mut at = 8;
    while at + 7 <= sent.len() {
        let kind = sent[at];
        let channel = u16::from_be_bytes([sent[at + 1], sent[at + 2]]);
        let size = u32::from_be_bytes(sent[at + 3..at + 7].try_into().unwrap()) as usize;
        let payload = &sent[at + 7..(at + 7 + size).min(sent.len())];
        if kind == 1 && channel == 0 && payload.len() >= 4 {
            methods.push((
                u16::from_be_bytes([payload[0], payload[1]]),
                u16::from_be_bytes([payload[2], payload[3]]),
            ));
        }
        at += 8 + size;
    }
    methods
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_close_their_connection_instead_of_dropping_it() {
    // Without connection.close RabbitMQ logs "client unexpectedly closed TCP connection" as
    // a warning for every command. A proxy in front of the broker keeps what mqscope sends.
    use std::io::{Read, Write};
    let Some(r) = Rabbit::new().await else { return };
    let q = unique("goodbye");
    r.declare(&q, AmqpTable::default()).await;
    r.publish_all("", &q, &numbered(3)).await;
    let t = target("/");
    let upstream = format!("{}:{}", t.host, t.port);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let proxy = std::thread::spawn(move || {
        let (mut client, _) = listener.accept().unwrap();
        let mut server = std::net::TcpStream::connect(&upstream).unwrap();
        let (mut client_r, mut server_w) =
            (client.try_clone().unwrap(), server.try_clone().unwrap());
        let back = std::thread::spawn(move || std::io::copy(&mut server, &mut client));
        let mut sent = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            match client_r.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    sent.extend_from_slice(&buf[..n]);
                    if server_w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
        let _ = server_w.shutdown(std::net::Shutdown::Both);
        let _ = back.join();
        sent
    });
    let url = format!(
        "amqp://{}:{}@127.0.0.1:{port}/%2f",
        t.user.as_deref().unwrap_or("guest"),
        t.password
            .as_ref()
            .map(|p| p.expose().to_string())
            .unwrap_or_else(|| "guest".into())
    );
    let out = mqscope(&["peek", &q, "-n", "2", "--json", "--url", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let sent = proxy.join().unwrap();
    let methods = connection_methods(&sent);
    // start-ok, tune-ok, open ... and last, close (class 10, method 50).
    assert_eq!(
        methods.last(),
        Some(&(10, 50)),
        "connection methods sent: {methods:?}"
    );
    r.wait_for(&q, 3).await;
    r.delete_queue(&q).await;
}

/// Expected routes against the real broker's topology: a topic exchange whose bindings lead
/// to a queue, and through an exchange-to-exchange binding to an internal headers exchange
/// (one `all` binding with a typed integer, one `any`), plus an alternate exchange for what
/// matches nothing. One order is consumed by a consumer, one copy expires by TTL, one is
/// dead-lettered; a second message matches nothing and goes through the alternate exchange.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_routes_give_each_copy_its_fate_through_topic_headers_and_alternate_exchanges() {
    in_own_vhost("mqscope test routes", |r| async move {
        use futures::StreamExt;
        use mqscope::ops::trace::routes::Fate;
        let ch = r.conn.create_channel().await.unwrap();
        let mut ae = AmqpTable::default();
        ae.insert(
            "alternate-exchange".into(),
            AMQPValue::LongString("unrouted".into()),
        );
        r.declare_exchange("events", lapin::ExchangeKind::Topic, false, ae)
            .await;
        for (name, kind, internal) in [
            ("by header", lapin::ExchangeKind::Headers, true),
            ("unrouted", lapin::ExchangeKind::Fanout, false),
            ("dlx", lapin::ExchangeKind::Fanout, false),
        ] {
            r.declare_exchange(name, kind, internal, AmqpTable::default())
                .await;
        }
        let mut ttl = AmqpTable::default();
        ttl.insert("x-message-ttl".into(), AMQPValue::LongInt(1_000));
        let mut dead_letters = AmqpTable::default();
        dead_letters.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString("dlx".into()),
        );
        for (q, args) in [
            ("consumed", AmqpTable::default()),
            ("expiring", ttl),
            ("rejected", dead_letters),
            ("dead", AmqpTable::default()),
            ("lost and found", AmqpTable::default()),
        ] {
            r.declare(q, args).await;
        }
        let bind = |q: &'static str, x: &'static str, key: &'static str, args: AmqpTable| {
            let ch = ch.clone();
            async move {
                ch.queue_bind(
                    q.into(),
                    x.into(),
                    key.into(),
                    QueueBindOptions::default(),
                    args,
                )
                .await
                .unwrap();
            }
        };
        bind("consumed", "events", "order.*", AmqpTable::default()).await;
        ch.exchange_bind(
            "by header".into(),
            "events".into(),
            "order.#".into(),
            Default::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
        let mut all = AmqpTable::default();
        all.insert("x-match".into(), AMQPValue::LongString("all".into()));
        all.insert("region".into(), AMQPValue::LongString("eu".into()));
        all.insert("level".into(), AMQPValue::LongLongInt(5));
        bind("expiring", "by header", "", all).await;
        let mut any = AmqpTable::default();
        any.insert("x-match".into(), AMQPValue::LongString("any".into()));
        any.insert("tier".into(), AMQPValue::LongString("gold".into()));
        any.insert("region".into(), AMQPValue::LongString("us".into()));
        bind("rejected", "by header", "", any).await;
        bind("dead", "dlx", "", AmqpTable::default()).await;
        bind("lost and found", "unrouted", "", AmqpTable::default()).await;

        let mut order = Message::new("", 0, "order");
        order.properties.correlation_id = Some("routes-order".into());
        order.properties.message_id = Some("order-1".into());
        order.headers.insert("region", FieldValue::string("eu"));
        order.headers.insert("tier", FieldValue::string("gold"));
        // An i32 header against the binding's i64: integers compare by value.
        order.headers.insert("level", FieldValue::I32(5));
        let mut stray = Message::new("", 0, "stray");
        stray.properties.correlation_id = Some("routes-stray".into());
        r.publish_all("events", "order.created", &[order]).await;
        r.publish_all("events", "misc.thing", &[stray]).await;

        // A consumer takes the order from "consumed" and stays, so the queue has one.
        let consumer_ch = r.conn.create_channel().await.unwrap();
        let mut consumer = consumer_ch
            .basic_consume(
                "consumed".into(),
                "".into(),
                Default::default(),
                AmqpTable::default(),
            )
            .await
            .unwrap();
        let d = tokio::time::timeout(Duration::from_secs(10), consumer.next())
            .await
            .expect("the order is delivered")
            .unwrap()
            .unwrap();
        d.acker.ack(Default::default()).await.unwrap();
        // "rejected" rejects it into "dead"; "expiring" lets it expire.
        let got = ch
            .basic_get("rejected".into(), Default::default())
            .await
            .unwrap()
            .unwrap();
        got.delivery
            .acker
            .reject(lapin::options::BasicRejectOptions { requeue: false })
            .await
            .unwrap();
        r.wait_for("dead", 1).await;
        r.wait_for("expiring", 0).await;
        r.wait_for("consumed", 0).await;
        // The management API counts consumers a stats interval late.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let qs = r.backend.list_queues().await.unwrap();
            if qs
                .iter()
                .any(|q| q.name == "consumed" && q.consumers == Some(1))
            {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "no consumer listed on \"consumed\""
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }

        let opts = mqscope::ops::trace::TraceOptions::default();
        let t = mqscope::ops::trace::trace(r.backend.as_ref(), "routes-order", &opts)
            .await
            .unwrap();
        assert_eq!(
            t.hops.iter().map(|h| h.queue.as_str()).collect::<Vec<_>>(),
            ["dead"]
        );
        let basis = t
            .routes_basis
            .clone()
            .expect("routes from the dead letter's origin");
        assert_eq!(
            (basis.exchange.as_str(), basis.routing_keys),
            ("events", vec!["order.created".to_string()])
        );
        let fates: Vec<(&str, Fate)> = t
            .routes
            .iter()
            .map(|r| (r.queue.as_deref().unwrap(), r.fate))
            .collect();
        assert_eq!(
            fates,
            [
                ("rejected", Fate::DeadLettered),
                ("consumed", Fate::Consumed),
                ("expiring", Fate::Expired),
            ],
            "{:#?}",
            t.routes
        );
        let route = |q: &str| {
            t.routes
                .iter()
                .find(|r| r.queue.as_deref() == Some(q))
                .unwrap()
        };
        assert_eq!(route("rejected").dead_lettered_to.as_deref(), Some("dead"));
        assert_eq!(
            route("rejected").reason,
            Some(mqscope::model::DeathReason::Rejected)
        );
        let path = mqscope::model::routing::path_text(&mqscope::model::routing::Destination {
            queue: "expiring".into(),
            path: route("expiring").path.clone(),
        });
        // The broker keeps binding arguments in its own order.
        assert!(
            path.starts_with("events [order.#] → by header [x-match all: ")
                && path.ends_with("] → expiring")
                && path.contains("region=eu")
                && path.contains("level=5"),
            "{path}"
        );
        assert!(
            route("expiring")
                .evidence
                .iter()
                .any(|e| e.contains("time to live 1 s")),
            "{:?}",
            route("expiring").evidence
        );
        assert!(
            route("consumed")
                .evidence
                .iter()
                .any(|e| e.contains("1 consumer")),
            "{:?}",
            route("consumed").evidence
        );

        let t = mqscope::ops::trace::trace(r.backend.as_ref(), "routes-stray", &opts)
            .await
            .unwrap();
        assert_eq!(t.routes.len(), 1, "{:#?}", t.routes);
        let found = &t.routes[0];
        assert_eq!(
            (found.queue.as_deref(), found.fate, found.position),
            (Some("lost and found"), Fate::Found, Some(0))
        );
        assert_eq!(
            mqscope::model::routing::path_text(&mqscope::model::routing::Destination {
                queue: "lost and found".into(),
                path: found.path.clone(),
            }),
            "events (no binding matched: alternate exchange) → unrouted (fanout) → lost and found"
        );
        drop(consumer);
        let _ = consumer_ch.close(200, "done".into()).await;
    })
    .await;
}

/// The headers exchange's value comparison, asked of the broker itself: for each pair of a
/// binding value and a header value, whether the broker delivered the message is what
/// mqscope's routing predicts for the broker's version (3.10 compares with Erlang's `==`,
/// 3.13 and later with `=:=` and header timestamps in milliseconds).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn headers_routing_predicts_what_the_broker_does_with_each_value_type() {
    in_own_vhost("mqscope test header types", |r| async move {
        use mqscope::model::routing::{HeaderEquality, Publish, RoutingTable, route};
        let cases: Vec<(&str, AMQPValue, FieldValue)> = vec![
            ("long vs int", AMQPValue::LongLongInt(5), FieldValue::I32(5)),
            (
                "long vs double",
                AMQPValue::LongLongInt(5),
                FieldValue::F64(5.0),
            ),
            (
                "double vs double",
                AMQPValue::Double(2.5),
                FieldValue::F64(2.5),
            ),
            (
                "string vs int",
                AMQPValue::LongString("5".into()),
                FieldValue::I32(5),
            ),
            (
                "bool vs bool",
                AMQPValue::Boolean(true),
                FieldValue::Bool(true),
            ),
            (
                "timestamp vs timestamp",
                AMQPValue::Timestamp(7),
                FieldValue::Timestamp(7),
            ),
            (
                "long vs timestamp",
                AMQPValue::LongLongInt(7_000),
                FieldValue::Timestamp(7),
            ),
        ];
        let ch = r.conn.create_channel().await.unwrap();
        for (i, (_, bound, _)) in cases.iter().enumerate() {
            let (x, q) = (format!("x{i}"), format!("q{i}"));
            ch.exchange_declare(
                x.as_str().into(),
                lapin::ExchangeKind::Headers,
                Default::default(),
                AmqpTable::default(),
            )
            .await
            .unwrap();
            r.declare(&q, AmqpTable::default()).await;
            let mut args = AmqpTable::default();
            args.insert("n".into(), bound.clone());
            ch.queue_bind(
                q.as_str().into(),
                x.as_str().into(),
                "".into(),
                QueueBindOptions::default(),
                args,
            )
            .await
            .unwrap();
        }
        for (i, (_, _, header)) in cases.iter().enumerate() {
            let mut m = Message::new("", 0, "n");
            m.headers.insert("n", header.clone());
            r.publish_all(&format!("x{i}"), "", &[m]).await;
        }
        let server = r.backend.server().await.expect("the broker's version");
        let eq = HeaderEquality::of_version(server.major, server.minor);
        let (exchanges, bindings) = r.backend.routing().await.unwrap();
        let names: Vec<String> = (0..cases.len()).map(|i| format!("q{i}")).collect();
        let table = RoutingTable::new(&exchanges, &bindings, names.clone());
        let mut wrong = Vec::new();
        for (i, (what, _, header)) in cases.iter().enumerate() {
            let mut headers = FieldTable::new();
            headers.insert("n", header.clone());
            let predicted = !route(&table, &Publish::new(&format!("x{i}"), "", headers), eq)
                .queues
                .is_empty();
            // Confirmed publishes are routed: the count is there at once.
            let delivered = r.ready(&names[i]).await == 1;
            if predicted != delivered {
                wrong.push(format!("{what}: broker {delivered}, mqscope {predicted}"));
            }
        }
        assert!(wrong.is_empty(), "RabbitMQ {}: {wrong:?}", server.version);
    })
    .await;
}

/// `peek --json` adds what is inside each body: a gzip `content_encoding` JSON body, a
/// MessagePack body named by its `content_type`, and Avro through a profile's local `.avsc`
/// mapping; `payload` stays the bytes as sent, and a body that does not decode says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_json_decodes_gzip_msgpack_and_avro_beside_the_raw_payload() {
    use std::io::Write;
    let Some(r) = Rabbit::new().await else { return };
    let queue = unique("decode");
    r.declare(&queue, AmqpTable::default()).await;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(br#"{"order": 7, "items": ["tea"]}"#).unwrap();
    let mut zipped = Message::new(&queue, 0, gz.finish().unwrap());
    zipped.properties.content_encoding = Some("gzip".into());
    zipped.properties.content_type = Some("application/json".into());
    let mut packed = Vec::new();
    rmpv::encode::write_value(
        &mut packed,
        &rmpv::Value::Map(vec![
            ("order".into(), 8.into()),
            ("paid".into(), true.into()),
        ]),
    )
    .unwrap();
    let mut msgpack = Message::new(&queue, 0, packed.clone());
    msgpack.properties.content_type = Some("application/msgpack".into());
    let schema_text = r#"{"type": "record", "name": "Order", "fields": [
        {"name": "order", "type": "long"},
        {"name": "total", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6, "scale": 2}}]}"#;
    let schema = apache_avro::Schema::parse_str(schema_text).unwrap();
    let datum = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
        .build()
        .unwrap()
        .write_value_to_vec(apache_avro::types::Value::Record(vec![
            ("order".into(), apache_avro::types::Value::Long(9)),
            (
                "total".into(),
                apache_avro::types::Value::Decimal(apache_avro::Decimal::from(
                    1250i32.to_be_bytes(),
                )),
            ),
        ]))
        .unwrap();
    // No content type: the profile's mapping alone says it is Avro.
    let avro = Message::new(&queue, 0, datum.clone());
    let mut broken = Message::new(&queue, 0, &b"\x92\x01"[..]);
    broken.properties.content_type = Some("application/msgpack".into());
    r.publish_all("", &queue, &[zipped.clone(), msgpack, avro, broken])
        .await;

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("order.avsc"), schema_text).unwrap();
    let recs = peek_json_decoding(&queue, dir.path(), r#"{ schema = "order.avsc" }"#);
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert_eq!(
        recs[0]["decoded"],
        serde_json::json!({"order": 7, "items": ["tea"]})
    );
    assert_eq!(
        recs[0]["decoded_as"],
        serde_json::json!({"format": "json", "compression": "gzip", "compression_from": "content_encoding"})
    );
    assert_eq!(
        recs[1]["decoded"],
        serde_json::json!({"order": 8, "paid": true})
    );
    assert_eq!(
        recs[1]["decoded_as"],
        serde_json::json!({"format": "msgpack"})
    );
    assert_eq!(
        recs[2]["decoded"],
        serde_json::json!({"order": 9, "total": "12.50"})
    );
    assert_eq!(
        recs[2]["decoded_as"],
        serde_json::json!({"format": "avro", "file": "order.avsc"})
    );
    assert!(recs[3].get("decoded").is_none());
    assert!(
        recs[3]["decode_error"]
            .as_str()
            .unwrap()
            .starts_with("msgpack does not match MessagePack"),
        "{}",
        recs[3]
    );
    // The payloads are the bytes as sent, whatever was decoded from them.
    use base64::Engine;
    let b64 = |s: &serde_json::Value| {
        base64::engine::general_purpose::STANDARD
            .decode(s.as_str().unwrap())
            .unwrap()
    };
    assert_eq!(b64(&recs[0]["payload"]), zipped.payload.to_vec());
    assert_eq!(b64(&recs[1]["payload"]), packed);
    assert_eq!(recs[3]["payload_encoding"], "base64");
}

/// `peek --json` of `queue` through a profile whose `[decode]` maps it by `rule` (inline
/// TOML), with its schema files in `dir`: the records.
fn peek_json_decoding(queue: &str, dir: &std::path::Path, rule: &str) -> Vec<serde_json::Value> {
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.decoding]\nurl = \"{}\"\nmanagement_url = \"{}\"\n\
             [profiles.decoding.decode]\n\"{queue}\" = {rule}\n",
            url_for("/"),
            rabbit().mgmt_url
        ),
    )
    .unwrap();
    let out = mqscope(&[
        "peek",
        queue,
        "-n",
        "10",
        "--json",
        "--config",
        config.to_str().unwrap(),
        "--profile",
        "decoding",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A Protobuf body on a queue the profile maps to a local `.proto` and message type:
/// `peek --json` reads it by the proto3 JSON mapping and names the message; a body cut
/// short says why, beside its raw payload.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_json_decodes_protobuf_through_a_local_proto_mapping() {
    use prost::Message as _;
    let Some(r) = Rabbit::new().await else { return };
    let queue = unique("protobuf");
    r.declare(&queue, AmqpTable::default()).await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("order.proto"),
        r#"syntax = "proto3";
        package shop;
        import "google/protobuf/timestamp.proto";
        enum State { STATE_UNKNOWN = 0; STATE_PAID = 1; }
        message Order {
          string id = 1;
          int64 total_cents = 2;
          repeated string items = 3;
          google.protobuf.Timestamp at = 4;
          State state = 5;
          map<string, string> labels = 6;
        }"#,
    )
    .unwrap();
    let value = serde_json::json!({
        "id": "o-7",
        "total_cents": "1250",
        "items": ["tea", "cup"],
        "at": "2024-03-01T12:34:56Z",
        "state": "STATE_PAID",
        "labels": {"channel": "web"}
    });
    let mut compiler = protox::Compiler::new([dir.path()]).unwrap();
    compiler.open_file("order.proto").unwrap();
    let desc = compiler
        .descriptor_pool()
        .get_message_by_name("shop.Order")
        .unwrap();
    let body = prost_reflect::DynamicMessage::deserialize(desc, &value)
        .unwrap()
        .encode_to_vec();
    // No content type: the profile's mapping alone says it is Protobuf.
    let order = Message::new(&queue, 0, body.clone());
    let cut = Message::new(&queue, 0, body[..body.len() - 3].to_vec());
    r.publish_all("", &queue, &[order, cut]).await;

    let rule = r#"{ schema = "order.proto", message = "shop.Order" }"#;
    let recs = peek_json_decoding(&queue, dir.path(), rule);
    assert_eq!(recs.len(), 2, "{recs:?}");
    assert_eq!(recs[0]["decoded"], value);
    assert_eq!(
        recs[0]["decoded_as"],
        serde_json::json!({"format": "protobuf", "file": "order.proto", "message": "shop.Order"})
    );
    assert!(recs[1].get("decoded").is_none());
    let why = recs[1]["decode_error"].as_str().unwrap();
    assert!(
        why.starts_with("protobuf does not match shop.Order (order.proto): "),
        "{why}"
    );
    use base64::Engine;
    let raw = base64::engine::general_purpose::STANDARD
        .decode(recs[0]["payload"].as_str().unwrap())
        .unwrap();
    assert_eq!(raw, body);
}
