//! Replay, purge and delete against a real RabbitMQ, including the faults the dead-letter
//! issue names: the replay's connections closed by the broker midway, and the mqscope process
//! killed with SIGKILL midway; after `--resume`, origin + DLQ holds every message exactly
//! once. The fault closes only the connections of a broker user the test creates for it.
//! Without a reachable server the tests skip, except under CI=true, where they fail.

use lapin::options::{
    ExchangeDeclareOptions, ExchangeDeleteOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable as AmqpTable};
use lapin::{Connection, ConnectionProperties, ExchangeKind};
use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::backend::{Backend, Destination, PeekRequest};
use mqscope::config::Target;
use mqscope::model::{FieldValue, Message};
use mqscope::ops::journal::{self, Journal};
use mqscope::ops::replay::{self, ReplayOptions, Resume};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::brokers::rabbit;

/// guest on vhost `/` of the broker under test (`support::brokers::rabbit`).
fn guest_url() -> &'static str {
    &rabbit().amqp_url
}

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

async fn backend() -> Option<RabbitBackend> {
    let Ok(Target::Amqp(t)) = Target::parse(guest_url()) else {
        panic!("test URL")
    };
    match RabbitBackend::connect(&t, &rabbit().options()).await {
        Ok(b) => Some(b),
        Err(e) if ci() => panic!("RabbitMQ is not reachable in CI: {e}"),
        Err(e) => {
            eprintln!("skipping: {e}");
            None
        }
    }
}

async fn backend_at(url: &str) -> RabbitBackend {
    let Ok(Target::Amqp(t)) = Target::parse(url) else {
        panic!("test guest_url() {url}")
    };
    RabbitBackend::connect(&t, &rabbit().options())
        .await
        .unwrap_or_else(|e| panic!("connect as {url}: {e}"))
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// One test at a time: each moves thousands of messages, and the fault tests time their
/// faults by progress, which a neighbour's load would blur.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Two exchanges and a queue published to directly, all dead-lettering into one DLQ.
struct Scenario {
    prefix: String,
    conn: Connection,
}

impl Scenario {
    fn q(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    fn origins(&self) -> [String; 3] {
        [self.q("billing"), self.q("ledger"), self.q("inbox")]
    }

    async fn new(backend: &RabbitBackend, n: usize) -> Scenario {
        let prefix = format!(
            "mqscope-test-replay-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let conn = Connection::connect(guest_url(), ConnectionProperties::default())
            .await
            .unwrap();
        let s = Scenario { prefix, conn };
        let ch = s.conn.create_channel().await.unwrap();
        for (x, kind) in [
            ("orders", ExchangeKind::Direct),
            ("payments", ExchangeKind::Topic),
            ("dlx", ExchangeKind::Fanout),
        ] {
            ch.exchange_declare(
                s.q(x).as_str().into(),
                kind,
                // Gone once the scenario's queues (and so its bindings) are.
                ExchangeDeclareOptions {
                    auto_delete: true,
                    ..Default::default()
                },
                AmqpTable::default(),
            )
            .await
            .unwrap();
        }
        let mut expires = AmqpTable::default();
        expires.insert("x-expires".into(), AMQPValue::LongInt(300_000));
        let mut with_dlx = expires.clone();
        with_dlx.insert(
            "x-dead-letter-exchange".into(),
            AMQPValue::LongString(s.q("dlx").into()),
        );
        ch.queue_declare(
            s.q("dead").as_str().into(),
            QueueDeclareOptions::default(),
            expires.clone(),
        )
        .await
        .unwrap();
        ch.queue_bind(
            s.q("dead").as_str().into(),
            s.q("dlx").as_str().into(),
            "".into(),
            QueueBindOptions::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
        for q in s.origins() {
            ch.queue_declare(
                q.as_str().into(),
                QueueDeclareOptions::default(),
                with_dlx.clone(),
            )
            .await
            .unwrap();
        }
        for (q, x, k) in [
            ("billing", "orders", "invoice"),
            ("ledger", "payments", "pay.#"),
        ] {
            ch.queue_bind(
                s.q(q).as_str().into(),
                s.q(x).as_str().into(),
                k.into(),
                QueueBindOptions::default(),
                AmqpTable::default(),
            )
            .await
            .unwrap();
        }
        // Publish with mqscope's confirmed batch publisher.
        let items: Vec<(Destination, Message)> = (0..n)
            .map(|i| {
                let mut m = Message::new("", 0, format!("{{\"n\":{i}}}").into_bytes());
                m.properties.message_id = Some(format!("m-{i}"));
                m.properties.delivery_mode = Some(2);
                m.headers.insert("n", FieldValue::I64(i as i64));
                m.headers.insert("tenant", FieldValue::string("acme ü"));
                let (exchange, routing_key) = match i % 3 {
                    0 => (s.q("orders"), "invoice".to_string()),
                    1 => (s.q("payments"), format!("pay.card.{i}")),
                    _ => (String::new(), s.q("inbox")),
                };
                (
                    Destination::Exchange {
                        exchange,
                        routing_key,
                    },
                    m,
                )
            })
            .collect();
        let results = backend.publisher().unwrap().publish_batch(&items).await;
        assert!(results.iter().all(Result::is_ok), "setup publish");
        // Reject everything into the DLQ.
        for q in s.origins() {
            let want = s.ready(&q).await;
            if want == 0 {
                continue;
            }
            let ch = s.conn.create_channel().await.unwrap();
            support::dead_letter_first(&ch, &q, want as usize).await;
            let _ = ch.close(200, "done".into()).await;
        }
        s.wait_for(&s.q("dead"), n as u32).await;
        s
    }

    async fn ready(&self, q: &str) -> u32 {
        let ch = self.conn.create_channel().await.unwrap();
        let r = ch
            .queue_declare(
                q.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                AmqpTable::default(),
            )
            .await
            .unwrap()
            .message_count();
        let _ = ch.close(200, "counted".into()).await;
        r
    }

    /// Messages ready in the origins, together.
    async fn home(&self) -> u32 {
        let mut home = 0;
        for q in self.origins() {
            home += self.ready(&q).await;
        }
        home
    }

    async fn wait_for(&self, q: &str, n: u32) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.ready(q).await != n {
            assert!(Instant::now() < deadline, "{q} never reached {n}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Message ids per queue, read with mqscope's safe peek.
    async fn ids(&self, backend: &RabbitBackend, q: &str) -> Vec<String> {
        backend
            .peek(q, &PeekRequest::first(65_535))
            .await
            .unwrap()
            .messages
            .into_iter()
            .map(|m| m.properties.message_id.unwrap_or_default())
            .collect()
    }

    /// Every message exactly once across the origins and the DLQ.
    async fn check_once(&self, backend: &RabbitBackend, n: usize) {
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        let mut places = self.origins().to_vec();
        places.push(self.q("dead"));
        for q in places {
            for id in self.ids(backend, &q).await {
                *seen.entry(id).or_default() += 1;
            }
        }
        let twice: Vec<_> = seen.iter().filter(|(_, c)| **c > 1).take(5).collect();
        assert!(twice.is_empty(), "duplicated: {twice:?}");
        assert_eq!(seen.len(), n, "every message is somewhere");
    }

    async fn cleanup(self) {
        let Ok(conn) = Connection::connect(guest_url(), ConnectionProperties::default()).await
        else {
            return;
        };
        let Ok(ch) = conn.create_channel().await else {
            return;
        };
        let mut qs = self.origins().to_vec();
        qs.push(self.q("dead"));
        for q in qs {
            let _ = ch.queue_delete(q.as_str().into(), Default::default()).await;
        }
        for x in ["orders", "payments", "dlx"] {
            let _ = ch
                .exchange_delete(self.q(x).as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
}

/// One temporary state directory for this binary's journals and backups, set before any
/// test reads it.
fn state_dir() -> &'static tempfile::TempDir {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        // SAFETY: set once, by the first test to ask, before it starts any client. The
        // environment is written only here, so other threads' getenv (C code included)
        // race with at most this one write, not with one per test.
        unsafe { std::env::set_var("MQSCOPE_STATE_DIR", dir.path()) };
        dir
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_1000_mixed_origins_home_with_headers_and_empty_dlq() {
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let s = Scenario::new(&b, 1_000).await;
    state_dir();
    let plan = ReplayOptions::default().plan().unwrap();
    let mut j = Journal::create("rabbit-mixed").unwrap();
    let r = replay::replay(
        &b,
        &s.q("dead"),
        &plan,
        Some(&mut j),
        Resume::default(),
        &|_, _| {},
    )
    .await
    .unwrap();
    assert!(r.ok(), "{r:?}");
    assert_eq!(r.replayed, 1_000);
    s.wait_for(&s.q("dead"), 0).await;
    assert_eq!(s.ready(&s.q("billing")).await, 334);
    assert_eq!(s.ready(&s.q("ledger")).await, 333);
    assert_eq!(s.ready(&s.q("inbox")).await, 333);
    let ledger = b
        .peek(&s.q("ledger"), &PeekRequest::first(1_000))
        .await
        .unwrap()
        .messages;
    for m in &ledger {
        assert_eq!(
            m.exchange,
            Some(s.q("payments")),
            "through its own exchange"
        );
        let n = m.headers.get("n").and_then(FieldValue::as_i64).unwrap();
        assert_eq!(m.routing_key, Some(format!("pay.card.{n}")));
        assert_eq!(m.payload.as_ref(), format!("{{\"n\":{n}}}").as_bytes());
        assert_eq!(
            m.headers.get("tenant").and_then(|v| v.as_bytes()),
            Some("acme ü".as_bytes())
        );
        assert!(m.headers.get("x-death").is_none());
        assert_eq!(replay::replay_count(m), 1);
        assert_eq!(m.properties.delivery_mode, Some(2));
    }
    s.check_once(&b, 1_000).await;
    s.cleanup().await;
}

fn rabbitmqctl(args: &[&str]) -> String {
    let out = rabbit().ctl().args(args).output();
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        other => panic!("rabbitmqctl {args:?}: {other:?}"),
    }
}

/// A broker user of this test's own, so the fault can close its connections and nobody
/// else's: the broker may be shared, and other test binaries may run at the same time.
/// Deleting the user at the end also closes whatever it still has open.
struct FaultUser {
    name: String,
}

impl FaultUser {
    fn create() -> FaultUser {
        let name = format!("mqscope-test-fault-{}", std::process::id());
        let _ = rabbit().ctl().args(["-q", "delete_user", &name]).output();
        rabbitmqctl(&["-q", "add_user", &name, &name]);
        rabbitmqctl(&["-q", "set_user_tags", &name, "monitoring"]);
        rabbitmqctl(&["-q", "set_permissions", "-p", "/", &name, ".*", ".*", ".*"]);
        FaultUser { name }
    }

    fn url(&self) -> String {
        rabbit().url_as(&format!("{0}:{0}", self.name), "/")
    }

    /// Close every connection of this user, as an operator (or a network fault) would.
    /// rabbitmqctl, not the management API: the API lists new connections only after its
    /// statistics interval. Returns how many were closed.
    fn close_connections(&self) -> usize {
        let list = rabbitmqctl(&[
            "-q",
            "list_connections",
            "--no-table-headers",
            "user",
            "pid",
        ]);
        let mut closed = 0;
        for line in list.lines() {
            let Some((user, pid)) = line.split_once('\t') else {
                continue;
            };
            if user == self.name {
                rabbitmqctl(&["-q", "close_connection", pid, "mqscope fault test"]);
                closed += 1;
            }
        }
        closed
    }
}

impl Drop for FaultUser {
    fn drop(&mut self) {
        let _ = rabbit()
            .ctl()
            .args(["-q", "delete_user", &self.name])
            .output();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_closed_midway_then_resume_loses_and_duplicates_nothing() {
    const N: usize = 10_000;
    let _serial = SERIAL.lock().await;
    let Some(guest) = backend().await else { return };
    let s = Scenario::new(&guest, N).await;
    state_dir();
    // The replay runs as a user of its own, whose connections alone are closed midway.
    let user = FaultUser::create();
    let b = backend_at(&user.url()).await;
    let opts = ReplayOptions::default();
    let plan = opts.plan().unwrap();
    let mut j = Journal::create("rabbit-fault").unwrap();
    j.append(&replay::begin_entry("f", "x", &s.q("dead"), &opts))
        .unwrap();
    let fired = Arc::new(AtomicBool::new(false));
    let f = Arc::clone(&fired);
    let fault = &user;
    let on_progress = move |done: u64, _total: u64| {
        if done >= 1_000 && !f.swap(true, Ordering::SeqCst) {
            // The broker has closed them when this returns: the replay goes on on a dead line.
            let closed = tokio::task::block_in_place(|| fault.close_connections());
            assert!(closed > 0, "the replay's connections were found and closed");
        }
    };
    let first = replay::replay(
        &b,
        &s.q("dead"),
        &plan,
        Some(&mut j),
        Resume::default(),
        &on_progress,
    )
    .await
    .unwrap();
    assert!(
        first.stopped.is_some(),
        "the closed connection stops the replay ({} replayed)",
        first.replayed
    );
    assert!(first.replayed < N as u64);
    eprintln!(
        "interrupted after {} replayed: {:?}",
        first.replayed, first.stopped
    );

    // Resume with a fresh process's view: a new backend and the journal.
    let b2 = backend_at(&user.url()).await;
    let s2 = Scenario {
        prefix: s.prefix.clone(),
        conn: Connection::connect(guest_url(), ConnectionProperties::default())
            .await
            .unwrap(),
    };
    let resume = Resume::from_entries(&journal::load(j.path()).unwrap());
    let second = replay::replay(&b2, &s2.q("dead"), &plan, Some(&mut j), resume, &|_, _| {})
        .await
        .unwrap();
    assert!(second.ok(), "{second:?}");
    eprintln!(
        "resumed: {} replayed, {} already replayed, notes {:?}",
        second.replayed, second.already_replayed, second.notes
    );
    s2.wait_for(&s2.q("dead"), 0).await;
    let home: u32 = {
        let mut t = 0;
        for q in s2.origins() {
            t += s2.ready(&q).await;
        }
        t
    };
    assert_eq!(home, N as u32, "origin + DLQ = start");
    s2.check_once(&b2, N).await;
    s2.cleanup().await;
}

/// The mqscope binary, with a profile that names the broker's management API (each
/// command's `--url` names the rest).
fn mqscope_bin() -> std::process::Command {
    let mut c = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mqscope"));
    c.env_remove("MQSCOPE_URL");
    rabbit().profile_env(&mut c);
    c
}

/// How mqscope shows the broker under test (guest, no password), e.g. in a restore line.
fn shown_guest_url() -> String {
    format!("amqp://guest@{}/%2F", rabbit().authority)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_midway_then_resume_loses_and_duplicates_nothing() {
    const N: usize = 10_000;
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let s = Scenario::new(&b, N).await;
    let state = state_dir();
    let dead = s.q("dead");
    let mut child = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state.path())
        .args(["--url", guest_url(), "replay", &dead, "--yes", "--json"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once it is well under way: copies have landed, but not all. (The dead-letter
    // queue's ready count says little: the replay's consumer holds most of it unacked.)
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut landed = 0;
        for q in s.origins() {
            landed += s.ready(&q).await;
        }
        if landed >= 1_000 && landed < N as u32 {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the replay ended before it could be killed: {status}");
        }
        assert!(Instant::now() < deadline, "the replay never got going");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    child.kill().unwrap();
    let _ = child.wait();

    let out = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state.path())
        .args([
            "--url",
            guest_url(),
            "replay",
            &dead,
            "--resume",
            "--yes",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "resume: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    s.wait_for(&dead, 0).await;
    let home = s.home().await;
    assert_eq!(home, N as u32, "origin + DLQ = start; resume said {report}");
    s.check_once(&b, N).await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unroutable_replay_acks_nothing_and_exits_non_zero() {
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let s = Scenario::new(&b, 300).await;
    let state = state_dir();
    let dead = s.q("dead");
    let before = s.ids(&b, &dead).await;
    let to = format!("exchange:{}", s.q("orders"));
    let out = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state.path())
        .args([
            "--url",
            guest_url(),
            "replay",
            &dead,
            "--to",
            &to,
            "--routing-key",
            "nowhere",
            "--yes",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("could not be replayed"), "{err}");
    assert_eq!(s.ready(&dead).await, 300);
    assert_eq!(s.ids(&b, &dead).await, before, "same messages, same order");
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_backup_restores_identical_bodies_and_headers_and_delete_keeps_order() {
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let s = Scenario::new(&b, 200).await;
    let state = state_dir();
    let dead = s.q("dead");
    let before = b
        .peek(&dead, &PeekRequest::first(200))
        .await
        .unwrap()
        .messages;

    // Delete two from the middle: the rest keep their order.
    let out = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state.path())
        .args([
            "--url",
            guest_url(),
            "delete",
            &dead,
            "--ids",
            "m-30,m-31",
            "--yes",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected: Vec<String> = before
        .iter()
        .filter_map(|m| m.properties.message_id.clone())
        .filter(|id| id != "m-30" && id != "m-31")
        .collect();
    assert_eq!(s.ids(&b, &dead).await, expected);

    let backup = state.path().join("purge backup.jsonl");
    let out = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state.path())
        .args([
            "--url",
            guest_url(),
            "purge",
            &dead,
            "--yes",
            "--json",
            "--backup",
        ])
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(s.ready(&dead).await, 0);
    let restore = mqscope_bin()
        .args(["--url", guest_url(), "publish", "--from"])
        .arg(&backup)
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    s.wait_for(&dead, 198).await;
    let after = b
        .peek(&dead, &PeekRequest::first(200))
        .await
        .unwrap()
        .messages;
    let kept: Vec<&Message> = before
        .iter()
        .filter(|m| !matches!(m.properties.message_id.as_deref(), Some("m-30" | "m-31")))
        .collect();
    assert_eq!(after.len(), kept.len());
    for (a, b) in kept.iter().zip(&after) {
        assert_eq!(a.payload, b.payload);
        assert_eq!(a.headers, b.headers, "headers, x-death included");
        assert_eq!(a.properties, b.properties);
    }
    s.cleanup().await;
}

// ---------------------------------------------------------------------------------------
// The fault matrix: mqscope killed (SIGKILL) at every step of its journal, one at a time,
// through the debug build's crash points (`MQSCOPE_CRASH_AT`), then resumed; and the state
// directory on a tiny tmpfs. After each: origin + DLQ = start, and no message id twice.

/// The steps of a replay batch, in order: the takes journalled, the copies sent, their
/// confirms journalled, the ack sent, the ack answered, the ack journalled.
const REPLAY_STEPS: &[&str] = &[
    "replay.journalled",
    "replay.sent",
    "replay.confirmed",
    "take.ack_sent",
    "replay.acked",
    "replay.acked_journalled",
];

/// The steps of a purge or delete batch: backup lines written, synced, ack sent, answered.
const REMOVE_STEPS: &[&str] = &[
    "remove.written",
    "remove.synced",
    "take.ack_sent",
    "remove.acked",
];

/// Run mqscope and expect it to be killed at `step` (its n-th time there).
fn killed_at(step: &str, nth: u32, state: &std::path::Path, args: &[&str]) {
    use std::os::unix::process::ExitStatusExt;
    let out = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state)
        .env("MQSCOPE_CRASH_AT", format!("{step}:{nth}"))
        .args(args)
        .output()
        .unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGKILL),
        "mqscope {args:?} was to be killed at {step}:{nth}: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run mqscope to the end; returns (success, stdout, stderr).
fn run_in(state: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let out = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state)
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

impl Scenario {
    /// Messages delivered and not acked: a killed client's are returned once the broker
    /// has seen its connection go, which takes a moment.
    async fn settled(&self, q: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let list = rabbitmqctl(&[
                "-q",
                "list_queues",
                "--no-table-headers",
                "name",
                "messages_unacknowledged",
            ]);
            let unacked = list
                .lines()
                .filter_map(|l| l.split_once('\t'))
                .find(|(name, _)| *name == q)
                .map(|(_, n)| n.trim().to_string());
            if unacked.as_deref() == Some("0") {
                return;
            }
            assert!(Instant::now() < deadline, "{q} still has unacked messages");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Message ids in the origins and the DLQ, with how often each is there.
    async fn census(&self, backend: &RabbitBackend) -> BTreeMap<String, u32> {
        let mut seen: BTreeMap<String, u32> = BTreeMap::new();
        let mut places = self.origins().to_vec();
        places.push(self.q("dead"));
        for q in places {
            for id in self.ids(backend, &q).await {
                *seen.entry(id).or_default() += 1;
            }
        }
        seen
    }
}

/// Message ids of a backup file; every line must be a whole record.
fn backup_ids(path: &std::path::Path) -> Vec<String> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        text.is_empty() || text.ends_with('\n'),
        "{} ends mid-line",
        path.display()
    );
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("{} line {}: {e}", path.display(), i + 1));
            v["message_id"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

fn twice(ids: impl IntoIterator<Item = String>) -> Vec<String> {
    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for id in ids {
        *seen.entry(id).or_default() += 1;
    }
    seen.into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(id, _)| id)
        .take(5)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_killed_at_every_journal_step_then_resumed_loses_and_duplicates_nothing() {
    const N: usize = 3_000;
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    for step in REPLAY_STEPS {
        let s = Scenario::new(&b, N).await;
        let state = tempfile::tempdir().unwrap();
        let dead = s.q("dead");
        let replay = [
            "--url",
            guest_url(),
            "replay",
            &dead,
            "--yes",
            "--batch",
            "100",
        ];
        killed_at(step, 3, state.path(), &replay);
        s.settled(&dead).await;
        let between = s.census(&b).await;
        assert_eq!(between.len(), N, "{step}: every message is somewhere");

        // A fresh replay would send again what the killed one left in two places.
        let (ok, _, err) = run_in(state.path(), &replay);
        assert!(!ok && err.contains("did not finish"), "{step}: {err}");

        let (ok, out, err) = run_in(
            state.path(),
            &[
                "--url",
                guest_url(),
                "replay",
                &dead,
                "--resume",
                "--yes",
                "--json",
            ],
        );
        assert!(ok, "{step}: resume: {err}");
        s.wait_for(&dead, 0).await;
        let home = s.home().await;
        assert_eq!(
            home, N as u32,
            "{step}: origin + DLQ = start; resume: {out}"
        );
        s.check_once(&b, N).await;
        s.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn purge_killed_at_every_step_then_resumed_backs_up_each_message_once() {
    const N: usize = 2_500;
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    for step in REMOVE_STEPS {
        let s = Scenario::new(&b, N).await;
        let state = tempfile::tempdir().unwrap();
        let dead = s.q("dead");
        let backup = state.path().join("purged.jsonl");
        let backup_arg = backup.display().to_string();
        killed_at(
            step,
            2,
            state.path(),
            &[
                "--url",
                guest_url(),
                "purge",
                &dead,
                "--yes",
                "--backup",
                &backup_arg,
            ],
        );
        s.settled(&dead).await;
        // Each message is in the queue or the backup (the unanswered batch maybe in both).
        let mut all = s.ids(&b, &dead).await;
        all.extend(backup_ids(&backup));
        let distinct: std::collections::BTreeSet<_> = all.iter().collect();
        assert_eq!(distinct.len(), N, "{step}: every message is somewhere");

        let (ok, _, err) = run_in(
            state.path(),
            &["--url", guest_url(), "purge", &dead, "--yes"],
        );
        assert!(!ok && err.contains("did not finish"), "{step}: {err}");
        let (ok, out, err) = run_in(
            state.path(),
            &[
                "--url",
                guest_url(),
                "purge",
                &dead,
                "--resume",
                "--yes",
                "--json",
            ],
        );
        assert!(ok, "{step}: resume: {err}");
        s.wait_for(&dead, 0).await;
        let ids = backup_ids(&backup);
        assert_eq!(ids.len(), N, "{step}: one backup line per message; {out}");
        assert!(twice(ids).is_empty(), "{step}: backed up twice");

        // The backup restores every message once.
        let (ok, _, err) = run_in(
            state.path(),
            &["--url", guest_url(), "publish", "--from", &backup_arg],
        );
        assert!(ok, "{step}: restore: {err}");
        s.wait_for(&dead, N as u32).await;
        s.check_once(&b, N).await;
        s.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_killed_at_every_step_then_resumed_removes_exactly_the_chosen() {
    const N: usize = 2_500;
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    // Every other message: chosen ones in both batches of the removal.
    let chosen: Vec<String> = (0..N).step_by(2).map(|i| format!("m-{i}")).collect();
    let ids_arg = chosen.join(",");
    for step in REMOVE_STEPS {
        let s = Scenario::new(&b, N).await;
        let state = tempfile::tempdir().unwrap();
        let dead = s.q("dead");
        let backup = state.path().join("deleted.jsonl");
        let backup_arg = backup.display().to_string();
        let before = s.ids(&b, &dead).await;
        killed_at(
            step,
            1,
            state.path(),
            &[
                "--url",
                guest_url(),
                "delete",
                &dead,
                "--ids",
                &ids_arg,
                "--yes",
                "--backup",
                &backup_arg,
            ],
        );
        s.settled(&dead).await;
        let (ok, out, err) = run_in(
            state.path(),
            &[
                "--url",
                guest_url(),
                "delete",
                &dead,
                "--resume",
                "--yes",
                "--json",
            ],
        );
        assert!(ok, "{step}: resume: {err}");
        let kept: Vec<String> = before
            .iter()
            .filter(|id| !chosen.contains(id))
            .cloned()
            .collect();
        s.wait_for(&dead, kept.len() as u32).await;
        assert_eq!(s.ids(&b, &dead).await, kept, "{step}: the rest, in order");
        let mut ids = backup_ids(&backup);
        assert!(
            twice(ids.clone()).is_empty(),
            "{step}: backed up twice; {out}"
        );
        ids.sort();
        let mut want = chosen.clone();
        want.sort();
        assert_eq!(ids, want, "{step}: the backup holds exactly the chosen");
        s.cleanup().await;
    }
}

/// A proxy before the broker that, on its first connection, loses everything the client
/// sends from its first `basic.ack` on (the ack included), as a connection that dies with
/// the ack on its way does, while still passing what the broker sends. When the client
/// goes, so does the broker side, and the broker gives back whatever it never saw acked.
/// Later connections pass through untouched: the network has healed.
fn ack_losing_proxy() -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for (nth, client) in listener.incoming().enumerate() {
            let Ok(mut client) = client else { return };
            std::thread::spawn(move || {
                let Ok(mut server) = std::net::TcpStream::connect(&rabbit().authority) else {
                    return;
                };
                let (mut to_client, mut from_server) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || std::io::copy(&mut from_server, &mut to_client));
                let mut pending: Vec<u8> = Vec::new();
                let mut header_done = false;
                let mut lost = false;
                let mut buf = [0u8; 65536];
                loop {
                    let n = match client.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    if lost {
                        continue;
                    }
                    pending.extend_from_slice(&buf[..n]);
                    if !header_done && pending.len() >= 8 {
                        let _ = server.write_all(&pending[..8]);
                        pending.drain(..8);
                        header_done = true;
                    }
                    // Whole frames only: type, channel, size, payload, frame-end.
                    while header_done && pending.len() >= 7 {
                        let size =
                            u32::from_be_bytes([pending[3], pending[4], pending[5], pending[6]])
                                as usize;
                        if pending.len() < 8 + size {
                            break;
                        }
                        let method = (pending[0] == 1 && size >= 4)
                            .then(|| ((pending[7], pending[8]), (pending[9], pending[10])));
                        if nth == 0 && method == Some(((0, 60), (0, 80))) {
                            lost = true;
                            pending.clear();
                            break;
                        }
                        let _ = server.write_all(&pending[..8 + size]);
                        pending.drain(..8 + size);
                    }
                }
                let _ = server.shutdown(std::net::Shutdown::Both);
            });
        }
    });
    port
}

/// AMQP 0-9-1 never answers a `basic.ack`: an ack that was sent is not an ack the broker
/// has. The journal may say "acked" only once the broker has answered on the same channel;
/// else a resume takes the originals the broker gave back for new dead letters, and sends
/// them a second time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ack_lost_on_the_way_is_not_journalled_as_done_and_resume_sends_nothing_twice() {
    const N: usize = 500;
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let s = Scenario::new(&b, N).await;
    let state = tempfile::tempdir().unwrap();
    let dead = s.q("dead");
    let port = ack_losing_proxy();
    let via_proxy = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let mut child = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state.path())
        .args([
            "--url", &via_proxy, "replay", &dead, "--yes", "--batch", "100",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the journal says a batch was acked (which it must not, as the broker
    // never had that ack), or for long enough that it would have.
    let journals = state.path().join("replays");
    let acked_line = || {
        std::fs::read_dir(&journals)
            .into_iter()
            .flatten()
            .flatten()
            .any(|e| std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("\"t\":\"acked\"")))
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while !acked_line() && Instant::now() < deadline {
        assert!(
            child.try_wait().unwrap().is_none(),
            "the replay ended on its own"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let journalled_as_acked = acked_line();
    child.kill().unwrap();
    let _ = child.wait();
    s.settled(&dead).await;

    let (ok, out, err) = run_in(
        state.path(),
        &[
            "--url", &via_proxy, "replay", &dead, "--resume", "--yes", "--json",
        ],
    );
    assert!(ok, "resume: {err}");
    s.wait_for(&dead, 0).await;
    let home = s.home().await;
    assert_eq!(
        home, N as u32,
        "origin + DLQ = start (journalled as acked: {journalled_as_acked}); resume said {out}"
    );
    assert!(!journalled_as_acked, "an unanswered ack was journalled");
    s.check_once(&b, N).await;
    s.cleanup().await;
}

/// A tmpfs of a given size at a fresh directory, for a state directory that fills up
/// (root only: it mounts); unmounted when dropped.
struct TinyDisk {
    dir: tempfile::TempDir,
}

impl TinyDisk {
    fn mount(size: &str) -> Option<TinyDisk> {
        // SAFETY: geteuid reads no memory of ours.
        if unsafe { libc::geteuid() } != 0 {
            assert!(!ci(), "the full-disk tests mount a tmpfs, which needs root");
            eprintln!("SKIPPED: the full-disk tests need root to mount a tmpfs");
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "mount a tmpfs of {size}");
        Some(TinyDisk { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn grow(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(self.dir.path())
            .status()
            .unwrap()
            .success();
        assert!(ok, "remount at {size}");
    }
}

impl Drop for TinyDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_on_a_full_disk_stops_with_nothing_twice_and_resumes_once_there_is_room() {
    const N: usize = 3_000;
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let Some(disk) = TinyDisk::mount("1m") else {
        return;
    };
    let s = Scenario::new(&b, N).await;
    let dead = s.q("dead");
    let replay = [
        "--url",
        guest_url(),
        "replay",
        &dead,
        "--yes",
        "--batch",
        "200",
    ];
    let (ok, out, err) = run_in(disk.path(), &replay);
    assert!(!ok, "the journal cannot fit: {out}");
    assert!(err.contains("No space left on device"), "{err}");
    s.settled(&dead).await;
    // Stopped with every message once: no copy beside its original.
    let census = s.census(&b).await;
    assert_eq!(census.len(), N, "every message is somewhere");
    let twice: Vec<_> = census.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        twice.is_empty(),
        "copies beside their originals: {twice:?}\n{err}"
    );
    let home = s.home().await;
    assert!(
        err.contains(&format!("{home} cop(ies) confirmed")),
        "the count is exact ({home} at home): {err}"
    );

    // Not again from the start while the journal is unfinished.
    let (ok, _, err) = run_in(disk.path(), &replay);
    assert!(!ok && err.contains("did not finish"), "{err}");

    disk.grow("64m");
    let (ok, out, err) = run_in(
        disk.path(),
        &[
            "--url",
            guest_url(),
            "replay",
            &dead,
            "--resume",
            "--yes",
            "--json",
        ],
    );
    assert!(ok, "resume: {err}");
    s.wait_for(&dead, 0).await;
    let home = s.home().await;
    assert_eq!(home, N as u32, "origin + DLQ = start; {out}");
    s.check_once(&b, N).await;
    s.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_on_a_full_disk_keeps_a_whole_backup_of_exactly_what_it_removed() {
    const N: usize = 3_000;
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let s = Scenario::new(&b, N).await;
    let dead = s.q("dead");

    // No room even for the first batch: nothing removed, and no backup offered.
    let Some(tiny) = TinyDisk::mount("64k") else {
        return;
    };
    let (ok, out, err) = run_in(
        tiny.path(),
        &["--url", guest_url(), "purge", &dead, "--yes"],
    );
    assert!(!ok, "{out}\n{err}");
    assert!(out.contains("removed 0 message(s)"), "{out}\n{err}");
    assert!(!out.contains("restore with"), "nothing to restore: {out}");
    s.settled(&dead).await;
    assert_eq!(s.ready(&dead).await, N as u32);
    drop(tiny);

    // Room for the first batch of backup lines (about 1.1 KB each), not the second.
    let Some(disk) = TinyDisk::mount("1600k") else {
        return;
    };
    let backup = disk.path().join("purged.jsonl");
    let backup_arg = backup.display().to_string();
    let (ok, out, err) = run_in(
        disk.path(),
        &[
            "--url",
            guest_url(),
            "purge",
            &dead,
            "--yes",
            "--backup",
            &backup_arg,
        ],
    );
    assert!(!ok, "the backup cannot fit: {out}");
    assert!(err.contains("No space left on device"), "{err}");
    s.settled(&dead).await;
    let in_backup = backup_ids(&backup);
    let in_queue = s.ids(&b, &dead).await;
    assert!(!in_backup.is_empty() && !in_queue.is_empty(), "{out}");
    assert!(
        out.contains(&format!("removed {} message(s)", in_backup.len())),
        "the count is the backup's: {out}"
    );
    let mut all = in_backup.clone();
    all.extend(in_queue);
    assert_eq!(
        all.len(),
        N,
        "each message in the queue or the backup, not both"
    );
    assert!(twice(all).is_empty());
    // The printed restore names this broker (and the test profile, which holds where the
    // broker's management API is: `mqscope_bin`).
    let restore = out
        .lines()
        .find_map(|l| l.strip_prefix("restore with: mqscope "))
        .unwrap_or_else(|| panic!("no restore line: {out}"));
    assert!(
        restore.contains(&format!("--url '{}' publish --from", shown_guest_url())),
        "{out}"
    );

    disk.grow("64m");
    let (ok, out, err) = run_in(
        disk.path(),
        &["--url", guest_url(), "purge", &dead, "--resume", "--yes"],
    );
    assert!(ok, "resume: {err}\n{out}");
    s.wait_for(&dead, 0).await;
    let ids = backup_ids(&backup);
    assert_eq!(ids.len(), N);
    assert!(twice(ids).is_empty());
    s.cleanup().await;
}

/// Nothing mqscope writes (standard output and error, the audit log, journals, backups)
/// holds the password it was given, through a replay that is killed and resumed, a
/// purge, a restore, a delete and a refused login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_output_journal_backup_or_audit_line_holds_the_password() {
    const PASSWORD: &str = "Zq%Sec9-never-print-me";
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let s = Scenario::new(&b, 300).await;
    let user = format!("mqscope-test-secret-{}", std::process::id());
    let _ = rabbit().ctl().args(["-q", "delete_user", &user]).output();
    rabbitmqctl(&["-q", "add_user", &user, PASSWORD]);
    rabbitmqctl(&["-q", "set_user_tags", &user, "monitoring"]);
    rabbitmqctl(&["-q", "set_permissions", "-p", "/", &user, ".*", ".*", ".*"]);
    let _cleanup = FaultUser { name: user.clone() };
    let encoded = "Zq%25Sec9-never-print-me";
    let url = rabbit().url_as(&format!("{user}:{encoded}"), "/");
    let bad = rabbit().url_as(&format!("{user}:{encoded}-wrong"), "/");
    let state = tempfile::tempdir().unwrap();
    let dead = s.q("dead");
    let backup = state.path().join("b.jsonl").display().to_string();
    let mut printed = String::new();
    let mut run = |args: &[&str], env: &[(&str, &str)]| {
        let out = mqscope_bin()
            .env("MQSCOPE_STATE_DIR", state.path())
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap();
        printed.push_str(&String::from_utf8_lossy(&out.stdout));
        printed.push_str(&String::from_utf8_lossy(&out.stderr));
    };
    run(&["--url", &url, "peek", &dead, "-n", "3", "--json"], &[]);
    run(
        &["--url", &url, "replay", &dead, "--yes", "--batch", "100"],
        &[("MQSCOPE_CRASH_AT", "replay.confirmed:2")],
    );
    run(&["--url", &url, "replay", &dead, "--yes"], &[]);
    run(
        &["--url", &url, "replay", "--resume", "--yes", "--json"],
        &[],
    );
    let home = s.origins()[2].clone();
    run(
        &["--url", &url, "purge", &home, "--yes", "--backup", &backup],
        &[],
    );
    run(&["--url", &url, "publish", "--from", &backup], &[]);
    run(
        &["--url", &url, "delete", &home, "--ids", "m-2", "--yes"],
        &[],
    );
    run(&["--url", &url, "describe", &home], &[]);
    run(&["--url", &bad, "queues"], &[]);
    run(&["--url", &bad, "purge", &home, "--yes"], &[]);
    let mut leaks = Vec::new();
    if printed.contains("Sec9") {
        leaks.push("stdout/stderr".to_string());
    }
    let mut files = 0;
    let mut stack = vec![state.path().to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            files += 1;
            let text = String::from_utf8_lossy(&std::fs::read(&p).unwrap()).into_owned();
            if text.contains("Sec9") {
                leaks.push(p.display().to_string());
            }
        }
    }
    // The audit log, replay and removal journals and the backup were all written.
    assert!(files >= 4, "{files} files written");
    assert!(printed.contains("restore with"), "{printed}");
    assert!(leaks.is_empty(), "the password is in: {leaks:?}");
    s.cleanup().await;
}

/// The restore command a purge prints, run as printed (with the password given as the
/// README says), puts the messages back on the broker they came from; a bare
/// `publish --from` would have sent them into the built-in demo, and is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_printed_restore_command_restores_to_the_broker_the_messages_came_from() {
    let _serial = SERIAL.lock().await;
    let Some(b) = backend().await else { return };
    let s = Scenario::new(&b, 30).await;
    let state = tempfile::tempdir().unwrap();
    let dead = s.q("dead");
    let before = s.ids(&b, &dead).await;
    let (ok, out, err) = run_in(
        state.path(),
        &["--url", guest_url(), "purge", &dead, "--yes"],
    );
    assert!(ok, "{err}");
    let restore = out
        .lines()
        .find_map(|l| l.strip_prefix("restore with: "))
        .unwrap_or_else(|| panic!("no restore line: {out}"))
        .to_string();
    let backup = out
        .lines()
        .find_map(|l| l.strip_prefix("backup: "))
        .unwrap()
        .to_string();
    assert!(
        restore.contains(&format!("--url '{}'", shown_guest_url())),
        "{restore}"
    );

    let bare = mqscope_bin()
        .env("MQSCOPE_STATE_DIR", state.path())
        .env("HOME", state.path())
        .env_remove("XDG_CONFIG_HOME")
        // No profile either: nothing names a broker.
        .env_remove("MQSCOPE_CONFIG")
        .env_remove("MQSCOPE_PROFILE")
        .args(["publish", "--from", &backup])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&bare.stderr);
    assert!(!bare.status.success(), "published into the demo");
    assert!(
        err.contains(&format!("--url '{}'", shown_guest_url())),
        "{err}"
    );

    let bin = assert_cmd::cargo::cargo_bin!("mqscope");
    let printed = restore.replacen("mqscope", &format!("'{}'", bin.display()), 1);
    let run = rabbit()
        .profile_env(&mut std::process::Command::new("sh"))
        .args(["-c", &printed])
        .env("MQSCOPE_STATE_DIR", state.path())
        .env("MQSCOPE_PASSWORD", "guest")
        .env_remove("MQSCOPE_URL")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{printed}: {err}");
    assert!(!err.contains("warning"), "same broker, no warning: {err}");
    s.wait_for(&dead, 30).await;
    assert_eq!(
        s.ids(&b, &dead).await,
        before,
        "the same messages, in order"
    );
    s.cleanup().await;
}
