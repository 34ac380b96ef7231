//! The recorder against a real RabbitMQ with tracing on (scripts/test points this at 3.10,
//! then 4.3 and 4.0): a fan-out with a dead letter, every queue emptied, and `trace --db`
//! still shows each copy; connections killed while recording: tapped again, the time
//! between reported as a gap, nothing recorded twice; the `mqscope record` binary on a
//! database whose disk fills, or whose file system is read-only: a clear error, the broker's
//! queues as they were, and (once there is room) the database intact and recorded into
//! again. Each test has a vhost of its own. Without a reachable server, or without root
//! for the small file systems, the tests skip, except under CI=true, where they fail.

mod recording;
mod support;

use lapin::options::{
    BasicAckOptions, BasicGetOptions, BasicNackOptions, BasicPublishOptions, ConfirmSelectOptions,
    ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
};
use lapin::types::{AMQPValue, FieldTable as AmqpTable, ShortString};
use lapin::{BasicProperties, Connection, ConnectionProperties, ExchangeKind};
use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::backend::rabbitmq::mgmt::Mgmt;
use mqscope::config::{AmqpTarget, Secret, Target, encode_vhost};
use mqscope::ops::record::{RecordEvent, RecordOptions, Store};
use recording::{Binary, Running};
use std::time::Duration;
use support::brokers::rabbit;

fn mgmt() -> Mgmt {
    Mgmt::new(
        &rabbit().mgmt_url,
        "guest",
        Some(Secret::new("guest")),
        false,
    )
    .unwrap()
}

/// A vhost of the test's own with tracing on, deleted when dropped.
struct Vhost {
    name: String,
}

impl Vhost {
    async fn traced(hint: &str) -> Option<Vhost> {
        let name = format!("mqscope-record-{hint}-{}", std::process::id());
        let m = mgmt();
        if let Err(e) = m.create_vhost(&name).await {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "RabbitMQ is not reachable in CI ({e})"
            );
            eprintln!("skipping RabbitMQ test: {e}");
            return None;
        }
        let resp = reqwest::Client::new()
            .put(format!(
                "{}/api/vhosts/{}",
                rabbit().mgmt_url,
                encode_vhost(&name)
            ))
            .basic_auth("guest", Some("guest"))
            .json(&serde_json::json!({ "tracing": true }))
            .send()
            .await
            .unwrap();
        assert!(resp.status().is_success(), "{}", resp.status());
        Some(Vhost { name })
    }

    fn url(&self) -> String {
        rabbit().url_for(&self.name)
    }

    async fn backend(&self) -> RabbitBackend {
        let target: AmqpTarget = match Target::parse(&self.url()) {
            Ok(Target::Amqp(a)) => a,
            other => panic!("not an AMQP URL: {other:?}"),
        };
        RabbitBackend::connect(&target, &rabbit().options())
            .await
            .unwrap()
    }

    /// Close every connection to this vhost, as an operator (or a network fault) would.
    /// rabbitmqctl, not the management API: the API lists new connections only after its
    /// statistics interval. Returns how many were closed.
    fn close_connections(&self) -> usize {
        let out = rabbit()
            .ctl()
            .args([
                "-q",
                "list_connections",
                "--no-table-headers",
                "vhost",
                "pid",
            ])
            .output()
            .unwrap();
        let mut closed = 0;
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            if let Some((vhost, pid)) = line.split_once('\t')
                && vhost == self.name
            {
                let _ = rabbit()
                    .ctl()
                    .args(["-q", "close_connection", pid, "mqscope recorder fault test"])
                    .output();
                closed += 1;
            }
        }
        closed
    }
}

impl Drop for Vhost {
    fn drop(&mut self) {
        let name = self.name.clone();
        // A runtime of its own: drop may run outside one, or inside a finished one.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            let _ = rt.block_on(mgmt().delete_vhost(&name));
        })
        .join();
    }
}

/// `orders` (fanout) to `billing` and `shipping`; `billing` dead-letters through `dlx` to
/// `billing.dlq`.
async fn fan_out(conn: &Connection) -> lapin::Channel {
    let ch = conn.create_channel().await.unwrap();
    for (x, kind) in [
        ("orders", ExchangeKind::Fanout),
        ("dlx", ExchangeKind::Direct),
    ] {
        ch.exchange_declare(
            x.into(),
            kind,
            ExchangeDeclareOptions::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
    }
    let mut billing = AmqpTable::default();
    billing.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("dlx".into()),
    );
    billing.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString("billing".into()),
    );
    for (q, args) in [
        ("billing", billing),
        ("shipping", AmqpTable::default()),
        ("billing.dlq", AmqpTable::default()),
    ] {
        ch.queue_declare(q.into(), QueueDeclareOptions::default(), args)
            .await
            .unwrap();
    }
    for (q, x, k) in [
        ("billing", "orders", ""),
        ("shipping", "orders", ""),
        ("billing.dlq", "dlx", "billing"),
    ] {
        ch.queue_bind(
            q.into(),
            x.into(),
            k.into(),
            QueueBindOptions::default(),
            AmqpTable::default(),
        )
        .await
        .unwrap();
    }
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    ch
}

async fn publish(ch: &lapin::Channel, corr: &str, id: &str) {
    let props = BasicProperties::default()
        .with_correlation_id(ShortString::from(corr.to_string()))
        .with_message_id(ShortString::from(id.to_string()));
    ch.basic_publish(
        "orders".into(),
        "order.created".into(),
        BasicPublishOptions::default(),
        format!("{{\"order\":\"{id}\"}}").as_bytes(),
        props,
    )
    .await
    .unwrap()
    .await
    .unwrap();
}

/// Take one message from `queue` and ack it, or reject it without requeue (dead-letter).
/// A dead letter reaches its queue a moment after the reject: waited for, up to 10 s.
async fn take(ch: &lapin::Channel, queue: &str, reject: bool) {
    let mut tries = 0;
    let m = loop {
        match ch
            .basic_get(queue.into(), BasicGetOptions::default())
            .await
            .unwrap()
        {
            Some(m) => break m,
            None if tries < 100 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None => panic!("no message in {queue} within 10 s"),
        }
    };
    if reject {
        m.delivery
            .acker
            .nack(BasicNackOptions {
                requeue: false,
                ..Default::default()
            })
            .await
            .unwrap();
    } else {
        m.delivery
            .acker
            .ack(BasicAckOptions::default())
            .await
            .unwrap();
    }
}

async fn ready(ch: &lapin::Channel, queue: &str) -> u32 {
    ch.queue_declare(
        queue.into(),
        QueueDeclareOptions {
            passive: true,
            ..Default::default()
        },
        AmqpTable::default(),
    )
    .await
    .unwrap()
    .message_count()
}

/// A vhost with the fan-out, a fixture connection to it, and a recording into a new
/// database running on it.
struct Recording {
    conn: Connection,
    ch: lapin::Channel,
    _dir: tempfile::TempDir,
    db: std::path::PathBuf,
    run: Running,
}

async fn recording(v: &Vhost) -> Recording {
    let conn = Connection::connect(&v.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = fan_out(&conn).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("rec.db");
    let opts = RecordOptions {
        interval: Duration::from_millis(100),
        ..RecordOptions::default()
    };
    let run = Running::start(v.backend().await, &db, opts).await;
    Recording {
        conn,
        ch,
        _dir: dir,
        db,
        run,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tracing_on_trace_db_shows_every_copy_after_the_queues_are_empty() {
    let Some(v) = Vhost::traced("journey").await else {
        return;
    };
    let Recording {
        conn,
        ch,
        _dir,
        db,
        run,
    } = recording(&v).await;
    // The tap takes publishes from the firehose alone, and dead letters from the
    // exchange billing dead-letters to: not a second copy of each publish from orders.
    let bindings = support::api_json(&format!(
        "{}/api/bindings/{}",
        rabbit().mgmt_url,
        encode_vhost(&v.name)
    ))
    .await;
    let mut tapped: Vec<&str> = bindings
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| {
            b["destination"]
                .as_str()
                .unwrap_or("")
                .starts_with("amq.gen-")
        })
        .filter_map(|b| b["source"].as_str())
        // The default exchange's implicit binding of every queue.
        .filter(|x| !x.is_empty())
        .collect();
    tapped.sort();
    tapped.dedup();
    assert_eq!(tapped, ["amq.rabbitmq.trace", "dlx"], "{bindings}");
    publish(&ch, "other", "m-1").await;
    publish(&ch, "wanted", "m-2").await;
    // Billing acks the other and rejects the wanted one; everything else is consumed.
    take(&ch, "billing", false).await;
    take(&ch, "billing", true).await;
    for q in ["shipping", "shipping", "billing.dlq"] {
        take(&ch, q, false).await;
    }
    for q in ["billing", "shipping", "billing.dlq"] {
        assert_eq!(ready(&ch, q).await, 0, "{q} is empty");
    }
    // Two publishes, one dead-lettering, and the five deliveries the takes made.
    run.wait_stored(8).await;
    let (status, _) = run.stop().await;
    assert_eq!((status.stored, status.dropped, status.gaps), (8, 0, 0));

    let got = recording::recorded_fan_out_journey(&db);
    let mut routed = got[0].routed_queues.clone().unwrap();
    routed.sort();
    assert_eq!(
        routed,
        vec!["billing", "shipping"],
        "the firehose says where"
    );

    // The command line: nothing is left on the broker, the database tells the journey.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_mqscope"));
    rabbit().profile_env(&mut cmd);
    let out = cmd
        .args(["trace", "wanted", "--json", "--url", &v.url(), "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let t: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    // The publish, billing's delivery, the dead-lettering and the deliveries from shipping
    // and billing.dlq. The firehose does not time its events; the tail times them as they
    // arrive, in the order the broker sent them, so nothing is timed before the publish.
    // Within one millisecond (several of them share one on a loaded machine) the trace
    // orders by place, so the order is not asserted beyond that.
    let hops = t["hops"].as_array().unwrap();
    let mut seen: Vec<(&str, &str)> = hops
        .iter()
        .map(|h| {
            (
                h["queue"].as_str().unwrap_or(""),
                h["recorded"]["event"].as_str().unwrap_or(""),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("billing", "deliver"),
            ("billing.dlq", "deliver"),
            ("dlx", "dead_letter"),
            ("orders", "publish"),
            ("shipping", "deliver"),
        ],
        "{t}"
    );
    let publish = hops.iter().find(|h| h["queue"] == "orders").unwrap();
    let time = |h: &serde_json::Value| h["timestamp"].as_str().unwrap().to_string();
    assert!(
        hops.iter().all(|h| time(h) >= time(publish)),
        "nothing is timed before its publish: {t}"
    );
    let mut routed: Vec<&str> = publish["routed_queues"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| q.as_str())
        .collect();
    routed.sort();
    assert_eq!(routed, vec!["billing", "shipping"], "{t}");
    let died = hops.iter().find(|h| h["queue"] == "dlx").unwrap();
    assert_eq!(died["dead_letter"]["from"], "billing");
    let shipping = hops.iter().find(|h| h["queue"] == "shipping").unwrap();
    assert_eq!(shipping["deliveries"][0]["user"], "guest");
    assert_eq!(shipping["deliveries"][0]["redelivered"], false);
    assert_eq!(t["recorded"]["added"], 5);
    let fate = |q: &str| {
        t["routes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["queue"] == q)
            .map(|r| r["fate"].clone())
    };
    assert_eq!(fate("billing"), Some("dead-lettered".into()), "{t}");
    assert_eq!(fate("shipping"), Some("picked-up".into()), "{t}");
    conn.close(200, "done".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_killed_while_recording_are_a_gap_and_nothing_is_recorded_twice() {
    let Some(v) = Vhost::traced("kill").await else {
        return;
    };
    // The fixture connection is closed with the recorder's: a new one publishes after.
    let Recording {
        conn: _closed,
        ch,
        _dir,
        db,
        run,
    } = recording(&v).await;
    publish(&ch, "c", "before").await;
    run.wait_stored(1).await;
    assert!(
        v.close_connections() >= 1,
        "the recorder's connection closed"
    );
    run.wait_for("the loss", |e| matches!(e, RecordEvent::Lost { .. }))
        .await;
    run.wait_for("the gap", |e| matches!(e, RecordEvent::Gap(_)))
        .await;
    let conn = Connection::connect(&v.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .unwrap();
    publish(&ch, "c", "after").await;
    run.wait_stored(2).await;
    let (status, events) = run.stop().await;
    assert_eq!(
        (status.stored, status.duplicates, status.gaps),
        (2, 0, 1),
        "{events:?}"
    );
    let s = Store::open_read(&db).unwrap();
    let ids: Vec<String> = s
        .by_correlation("c", None)
        .unwrap()
        .into_iter()
        .map(|e| e.message_id.unwrap())
        .collect();
    assert_eq!(ids, vec!["before", "after"]);
    let gaps = s.gaps(None, None).unwrap();
    assert_eq!(gaps.len(), 1);
    assert!(
        gaps[0].reason.starts_with("broker lost"),
        "{}",
        gaps[0].reason
    );
    assert!(gaps[0].to >= gaps[0].from);
    conn.close(200, "done".into()).await.unwrap();
}

/// A tmpfs of the test's own, `size` big, mounted on a new temporary directory (root only);
/// unmounted when dropped, also after a failed assertion.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir }),
            other => {
                let why = format!("cannot mount a tmpfs (it needs root): {other:?}");
                assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
                eprintln!("skipping: {why}");
                None
            }
        }
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Mount it again with `options` (`size=64m`, `ro`), what is on it kept.
    fn remount(&self, options: &str) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,{options}")])
            .arg(self.path())
            .status()
            .unwrap();
        assert!(status.success(), "remount {options}");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut c = std::process::Command::new("umount");
            if lazy {
                c.arg("-l");
            }
            c.arg(self.dir.path()).status().is_ok_and(|s| s.success())
        };
        // A process still holding a file there (a recorder a failed test left) keeps it
        // busy: detach it then, so the directory can go.
        if !umount(false) {
            umount(true);
        }
    }
}

/// The queues of the vhost and their messages, as the broker counts them.
fn queues(v: &Vhost) -> Vec<(String, u64)> {
    let out = rabbit()
        .ctl()
        .args([
            "-q",
            "list_queues",
            "-p",
            &v.name,
            "--no-table-headers",
            "name",
            "messages",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let mut all: Vec<(String, u64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (name, n) = l.rsplit_once('\t')?;
            Some((name.to_string(), n.trim().parse().ok()?))
        })
        .collect();
    all.sort();
    all
}

/// `mqscope record --json` on the vhost, into `db`.
fn record_binary(v: &Vhost, db: &std::path::Path) -> Binary {
    let url = v.url();
    Binary::start(db, |c| {
        rabbit().profile_env(c).args(["--url", &url]);
    })
}

/// Publish `n` messages of about 1.5 KB (more than the 1,024 bytes of body the recorder
/// keeps) with ids `{prefix}-{i}`.
async fn publish_many(ch: &lapin::Channel, prefix: &str, n: usize) {
    let body = vec![b'x'; 1_500];
    for i in 0..n {
        let props = BasicProperties::default()
            .with_correlation_id(ShortString::from(prefix.to_string()))
            .with_message_id(ShortString::from(format!("{prefix}-{i}")));
        ch.basic_publish(
            "orders".into(),
            "order.created".into(),
            BasicPublishOptions::default(),
            &body,
            props,
        )
        .await
        .unwrap()
        .await
        .unwrap();
    }
}

/// A traced vhost with the fan-out and a connection to it, and a small disk for the
/// database; None (the test skips) without a broker or without root.
async fn fan_out_on_small_disk(
    hint: &str,
    size: &str,
) -> Option<(Vhost, SmallDisk, Connection, lapin::Channel)> {
    let v = Vhost::traced(hint).await?;
    let disk = SmallDisk::mount(size)?;
    let conn = Connection::connect(&v.url(), ConnectionProperties::default())
        .await
        .unwrap();
    let ch = fan_out(&conn).await;
    Some((v, disk, conn, ch))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_the_recorder_with_a_clear_error_and_the_broker_untouched() {
    let Some((v, disk, conn, ch)) = fan_out_on_small_disk("full", "1m").await else {
        return;
    };
    let db = disk.path().join("rec.db");
    let mut rec = record_binary(&v, &db);
    rec.wait_line("a first status", 60, |s| s["connected"] == true)
        .await;
    // About 1.3 KB a row: a 1 MiB file system is full after some 700; publish until the
    // recorder gives up, at most 4,000.
    let mut published = 0;
    while published < 4_000 && rec.running() {
        publish_many(&ch, &format!("fill{published}"), 200).await;
        published += 200;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let ended = rec.ended().await;
    assert!(!ended.status.success(), "{}", ended.err);
    let shown = db.display().to_string();
    assert!(
        ended.err.contains(&shown) && ended.err.contains("the disk is full"),
        "the error names the database and the full disk: {}",
        ended.err
    );
    assert!(!ended.err.contains("panicked"), "{}", ended.err);

    // The broker is untouched: every copy still in its queue, the fixture's publishes go
    // on, and no queue of the recorder's is left behind.
    let n = published as u64;
    assert_eq!(
        queues(&v),
        vec![
            ("billing".to_string(), n),
            ("billing.dlq".to_string(), 0),
            ("shipping".to_string(), n),
        ]
    );
    publish(&ch, "after", "after-1").await;
    assert_eq!(u64::from(ready(&ch, "shipping").await), n + 1);

    // Room again: what was stored is intact, and a new recorder resumes into it.
    disk.remount("size=64m");
    let s = Store::open(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), "ok");
    let before = s.count().unwrap();
    assert!(before > 0, "the batches before the disk filled stay");
    drop(s);
    let rec = record_binary(&v, &db);
    rec.wait_line("a first status", 60, |s| s["connected"] == true)
        .await;
    publish(&ch, "after", "after-2").await;
    rec.wait_line("the new publish stored", 30, |s| {
        s["stored"].as_u64().is_some_and(|n| n >= 1)
    })
    .await;
    let ended = rec.interrupt().await;
    assert!(ended.status.success(), "{}", ended.err);
    let gaps: Vec<serde_json::Value> = ended
        .json()
        .into_iter()
        .filter_map(|l| l.get("gap").cloned())
        .collect();
    assert_eq!(gaps.len(), 1, "the time it was stopped: {:?}", ended.out);
    assert!(gaps[0]["reason"].as_str().unwrap().contains("not running"));
    let s = Store::open_read(&db).unwrap();
    assert_eq!(s.integrity_check().unwrap(), "ok");
    assert_eq!(s.count().unwrap(), before + 1);
    let after: Vec<String> = s
        .by_correlation("after", None)
        .unwrap()
        .into_iter()
        .map(|e| e.message_id.unwrap())
        .collect();
    assert_eq!(after, vec!["after-2"], "published while none ran: after-1");
    drop(s);
    conn.close(200, "done".into()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_file_system_is_refused_with_a_clear_error_and_the_broker_untouched() {
    let Some((v, disk, conn, ch)) = fan_out_on_small_disk("read-only", "4m").await else {
        return;
    };
    publish(&ch, "c", "m-1").await;
    let db = disk.path().join("rec.db");
    drop(Store::open(&db).unwrap());
    disk.remount("ro");
    let ended = record_binary(&v, &db).ended().await;
    assert!(!ended.status.success(), "{}", ended.err);
    assert!(
        ended.err.contains(&*db.display().to_string()) && ended.err.contains("read-only"),
        "{}",
        ended.err
    );
    assert_eq!(
        queues(&v),
        vec![
            ("billing".to_string(), 1),
            ("billing.dlq".to_string(), 0),
            ("shipping".to_string(), 1),
        ],
        "the broker's queues as they were"
    );
    disk.remount("rw");
    assert_eq!(Store::open_read(&db).unwrap().count().unwrap(), 0);
    conn.close(200, "done".into()).await.unwrap();
}
