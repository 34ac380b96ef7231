//! What a peek does to a quorum queue with a delivery limit, on each RabbitMQ series:
//! 4.3 counts only failed deliveries, so a peek (which gives back by nack) is safe and
//! needs no --force; 4.0 to 4.2 count every return, so it is refused with its exact cost;
//! 3.x as before. Runs against the brokers `scripts/test` starts: 3.10 on the default
//! ports, 4.0 and 4.3 where `MQSCOPE_TEST_RABBITMQ_4_0_AMQP` / `_MGMT` (and `4_3`) say.
//! A broker that is not there skips its test, except under CI=true, where it fails.

use lapin::options::QueueDeclareOptions;
use lapin::types::{AMQPValue, FieldTable as AmqpTable};
use lapin::{Connection, ConnectionProperties};
use serde_json::Value;
use std::time::{Duration, Instant};

fn ci() -> bool {
    std::env::var("CI").as_deref() == Ok("true")
}

/// One broker under test, with a profile file naming both its URLs.
struct Broker {
    amqp: String,
    _dir: tempfile::TempDir,
    config: String,
    state: String,
}

impl Broker {
    /// The broker of `series` ("3.10", "4.0", "4.3"), if it is there.
    fn of(series: &str) -> Option<Broker> {
        let (amqp, mgmt) = match series {
            "3.10" => (
                "amqp://guest:guest@127.0.0.1:5672/%2f".to_string(),
                "http://127.0.0.1:15672".to_string(),
            ),
            _ => {
                let key = format!("MQSCOPE_TEST_RABBITMQ_{}", series.replace('.', "_"));
                match (
                    std::env::var(format!("{key}_AMQP")),
                    std::env::var(format!("{key}_MGMT")),
                ) {
                    (Ok(a), Ok(m)) => (a, m),
                    _ if ci() => panic!("RabbitMQ {series} is not set up in CI ({key}_AMQP)"),
                    _ => {
                        eprintln!("skipping: no RabbitMQ {series} ({key}_AMQP not set)");
                        return None;
                    }
                }
            }
        };
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!("[profiles.t]\nurl = \"{amqp}\"\nmanagement_url = \"{mgmt}\"\n"),
        )
        .unwrap();
        Some(Broker {
            amqp,
            config: config.display().to_string(),
            state: dir.path().join("state").display().to_string(),
            _dir: dir,
        })
    }

    /// mqscope against this broker: (success, stdout, stderr).
    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new(assert_cmd::cargo::cargo_bin!("mqscope"))
            .env_remove("MQSCOPE_URL")
            .env_remove("MQSCOPE_PROFILE")
            .env("MQSCOPE_STATE_DIR", &self.state)
            .args(["--config", &self.config, "--profile", "t"])
            .args(args)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// A quorum queue with a delivery limit of 2 dead-lettering into a classic queue,
    /// holding `n` messages; returns (queue, dead-letter queue, connection).
    async fn limited_queue(&self, tag: &str, n: usize) -> (String, String, Connection) {
        let q = format!("mqscope-test-{tag}-{}", std::process::id());
        let dlq = format!("{q}.dlq");
        let conn = Connection::connect(&self.amqp, ConnectionProperties::default())
            .await
            .unwrap();
        let ch = conn.create_channel().await.unwrap();
        for name in [&q, &dlq] {
            let _ = ch
                .queue_delete(name.as_str().into(), Default::default())
                .await;
        }
        let durable = QueueDeclareOptions {
            durable: true,
            ..Default::default()
        };
        ch.queue_declare(dlq.as_str().into(), durable, AmqpTable::default())
            .await
            .unwrap();
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
            AMQPValue::LongString(dlq.as_str().into()),
        );
        ch.queue_declare(q.as_str().into(), durable, args)
            .await
            .unwrap();
        for i in 0..n {
            let (ok, _, err) = self.run(&[
                "publish",
                "--queue",
                &q,
                "--body",
                &format!("m{i}"),
                "--property",
                &format!("correlation_id=corr-{tag}-{i}"),
            ]);
            assert!(ok, "publish: {err}");
        }
        (q, dlq, conn)
    }
}

/// Ready messages now (a passive declare: exact, unlike the management API).
async fn ready(conn: &Connection, q: &str) -> u32 {
    let ch = conn.create_channel().await.unwrap();
    let n = ch
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
    n
}

/// Payloads of a `peek --json` output, in order.
fn payloads(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            v["payload"].as_str().unwrap_or_default().to_string()
        })
        .collect()
}

async fn cleanup(conn: &Connection, queues: &[&str]) {
    if let Ok(ch) = conn.create_channel().await {
        for q in queues {
            let _ = ch.queue_delete((*q).into(), Default::default()).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_4_3_five_plain_peeks_of_a_limit_2_quorum_queue_dead_letter_nothing_and_trace_reads_it()
{
    let Some(b) = Broker::of("4.3") else { return };
    let (q, dlq, conn) = b.limited_queue("peek43", 5).await;
    let want: Vec<String> = (0..5).map(|i| format!("m{i}")).collect();
    for round in 1..=5 {
        let (ok, out, err) = b.run(&["peek", &q, "-n", "10", "--json"]);
        assert!(ok, "round {round}: {err}");
        assert_eq!(payloads(&out), want, "round {round}: bodies and order");
    }
    // Dead-lettering would be immediate on the return; give the broker a moment anyway.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(ready(&conn, &dlq).await, 0, "nothing dead-lettered");
    assert_eq!(ready(&conn, &q).await, 5);

    let (ok, out, err) = b.run(&["describe", &q]);
    assert!(ok, "{err}");
    assert!(out.contains("RabbitMQ 4.3"), "{out}");
    assert!(out.contains("peek is safe on RabbitMQ 4.3"), "{out}");

    let (ok, out, err) = b.run(&["trace", "corr-peek43-3", "--json"]);
    assert!(ok, "{err}");
    let t: Value = serde_json::from_str(&out).unwrap();
    let hops = t["hops"].as_array().unwrap();
    assert!(
        hops.iter().any(|h| h["queue"] == q.as_str()),
        "the copy in the quorum queue is found: {out}"
    );
    let skipped = t["skipped"].to_string();
    assert!(!skipped.contains(&q), "not skipped: {skipped}");
    cleanup(&conn, &[&q, &dlq]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_4_0_the_peek_is_refused_with_its_cost_and_forced_shows_each_count() {
    let Some(b) = Broker::of("4.0") else { return };
    let (q, dlq, conn) = b.limited_queue("peek40", 3).await;
    let (ok, _, err) = b.run(&["peek", &q, "-n", "10"]);
    assert!(!ok, "refused");
    assert!(
        err.contains("on RabbitMQ 4.0 every return counts towards the delivery limit")
            && err.contains("each peek uses one of the 2 deliveries a message may have")
            && err.contains("--force"),
        "{err}"
    );
    assert_eq!(ready(&conn, &q).await, 3, "the refusal touched nothing");

    let (ok, _, err) = b.run(&["peek", &q, "-n", "10", "--json", "--force"]);
    assert!(ok, "{err}");
    assert!(err.contains("delivery limit 2"), "{err}");
    // The second forced peek sees what the first cost each message.
    let (ok, out, err) = b.run(&["peek", &q, "-n", "10", "--json", "--force"]);
    assert!(ok, "{err}");
    let counts: Vec<(Value, Value)> = out
        .lines()
        .map(|l| {
            let v = serde_json::from_str::<Value>(l).unwrap();
            (v["delivery_count"].clone(), v["delivery_limit"].clone())
        })
        .collect();
    assert_eq!(
        counts,
        vec![(Value::from(1), Value::from(2)); 3],
        "each message's count against the limit: {out}"
    );

    let (ok, out, err) = b.run(&["describe", &q]);
    assert!(ok, "{err}");
    assert!(out.contains("RabbitMQ 4.0"), "{out}");
    assert!(
        out.contains("each peek uses one of the 2 deliveries"),
        "{out}"
    );

    // The trace names the queue it skipped, with the rule.
    let (ok, out, err) = b.run(&["trace", "corr-peek40-1", "--json"]);
    assert!(ok, "{err}");
    let t: Value = serde_json::from_str(&out).unwrap();
    let skipped = t["skipped"].to_string();
    assert!(
        skipped.contains(&q) && skipped.contains("every return counts"),
        "{skipped}"
    );
    cleanup(&conn, &[&q, &dlq]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_3_10_the_peek_is_refused_as_before_and_describe_names_the_version() {
    let Some(b) = Broker::of("3.10") else { return };
    let conn = match Connection::connect(&b.amqp, ConnectionProperties::default()).await {
        Ok(c) => c,
        Err(e) if ci() => panic!("RabbitMQ 3.10 is not reachable in CI: {e}"),
        Err(e) => {
            eprintln!("skipping: {e}");
            return;
        }
    };
    drop(conn);
    let (q, dlq, conn) = b.limited_queue("peek310", 2).await;
    let (ok, _, err) = b.run(&["peek", &q]);
    assert!(!ok);
    assert!(
        err.contains("on RabbitMQ 3.10 every return counts towards the delivery limit"),
        "{err}"
    );
    let (ok, out, err) = b.run(&["describe", &q]);
    assert!(ok, "{err}");
    assert!(out.contains("RabbitMQ 3.10"), "{out}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while ready(&conn, &q).await != 2 {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cleanup(&conn, &[&q, &dlq]).await;
}

/// A management API of another broker than the AMQP URL's (4.3's AMQP, 4.0's API) does
/// not know the vhost: the listing says so and names the setting, rather than reporting
/// a missing queue named after the API's path.
#[test]
fn a_management_api_of_another_broker_is_named_as_such() {
    let (Some(b43), Some(b40)) = (Broker::of("4.3"), Broker::of("4.0")) else {
        return;
    };
    let mgmt43 = std::env::var("MQSCOPE_TEST_RABBITMQ_4_3_MGMT").unwrap();
    let mgmt40 = std::env::var("MQSCOPE_TEST_RABBITMQ_4_0_MGMT").unwrap();
    let vhost = format!("mqscope only on 4.3 ü {}", std::process::id());
    let path = vhost.replace(' ', "%20").replace('ü', "%C3%BC");
    let curl = |method: &str, url: String| {
        let ok = std::process::Command::new("curl")
            .args(["-fsS", "-u", "guest:guest", "-X", method, &url])
            .status()
            .unwrap()
            .success();
        assert!(ok, "{method} {url}");
    };
    curl("PUT", format!("{mgmt43}/api/vhosts/{path}"));
    let (amqp_base, _) = b43.amqp.rsplit_once('/').unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("[profiles.t]\nurl = \"{amqp_base}/{path}\"\nmanagement_url = \"{mgmt40}\"\n"),
    )
    .unwrap();
    let mut elsewhere = b40;
    elsewhere.config = config.display().to_string();
    // A vhost just made may refuse connections for a moment on 4.x.
    let deadline = Instant::now() + Duration::from_secs(10);
    let (ok, err) = loop {
        let (ok, _, err) = elsewhere.run(&["queues"]);
        if !err.contains("access refused") || Instant::now() > deadline {
            break (ok, err);
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    curl("DELETE", format!("{mgmt43}/api/vhosts/{path}"));
    assert!(!ok);
    assert!(
        err.contains(&format!(
            "the management API at {mgmt40} has no /api/queues/"
        )),
        "{err}"
    );
    assert!(err.contains("management_url"), "{err}");
    assert!(!err.contains("no queue or topic named"), "{err}");
}
