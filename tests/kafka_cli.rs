//! The binary against librdkafka's mock cluster: `queues --json`, `peek --all --json`
//! cross-checked with kcat, and the one-line errors of `groups` and an unreachable cluster.

mod kafka_mock;

use assert_cmd::Command;
use bytes::Bytes;
use kafka_mock::Cluster;
use mqscope::model::{FieldValue, Message};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

fn mqscope(home: &tempfile::TempDir) -> Command {
    let mut c = Command::cargo_bin("mqscope").unwrap();
    c.env("XDG_CONFIG_HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env_remove("MQSCOPE_URL")
        .env_remove("MQSCOPE_PROFILE")
        .env_remove("MQSCOPE_CONFIG")
        .env_remove("MQSCOPE_PASSWORD");
    c
}

fn lines(out: &[u8]) -> Vec<Value> {
    String::from_utf8(out.to_vec())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect()
}

/// A topic of `n` messages over 3 partitions with keys (some absent), headers and JSON
/// payloads: what the cross-check compares.
async fn seed(c: &Cluster, n: usize) -> String {
    let t = c.topic("export", 3);
    for i in 0..n {
        let mut m = Message::new(
            "",
            0,
            Bytes::from(format!("{{\"id\":{i},\"note\":\"ünï\"}}")),
        );
        if i % 4 != 0 {
            m.key = Some(Bytes::from(format!("key-{}", i % 7)));
        }
        m.headers
            .insert("trace", FieldValue::string(format!("t-{i}")));
        m.headers.insert("source", FieldValue::string("billing"));
        c.produce(&t, (i % 3) as i32, &m, None).await;
    }
    t
}

/// (partition, offset) -> (key, headers as [name, value] pairs, payload).
type Records = BTreeMap<(i64, i64), (Value, Vec<(String, String)>, String)>;

fn from_mqscope(rows: &[Value]) -> Records {
    rows.iter()
        .map(|r| {
            assert_eq!(r["payload_encoding"], "utf8");
            let headers = r["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            (
                (
                    r["partition"].as_i64().unwrap(),
                    r["offset"].as_i64().unwrap(),
                ),
                (
                    r["key"].clone(),
                    headers,
                    r["payload"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

/// kcat -J writes headers as a flat [name, value, name, value, ...] array.
fn from_kcat(rows: &[Value]) -> Records {
    rows.iter()
        .map(|r| {
            let flat = r["headers"].as_array().cloned().unwrap_or_default();
            let headers = flat
                .chunks(2)
                .map(|kv| {
                    (
                        kv[0].as_str().unwrap().to_string(),
                        kv[1].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            (
                (
                    r["partition"].as_i64().unwrap(),
                    r["offset"].as_i64().unwrap(),
                ),
                (
                    r["key"].clone(),
                    headers,
                    r["payload"].as_str().unwrap().to_string(),
                ),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_all_agrees_with_kcat() {
    let c = Cluster::new();
    let t = seed(&c, 300).await;
    let url = format!("kafka://{}", c.bootstrap());
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home)
        .args([
            "peek",
            &t,
            "--all",
            "--json",
            "--page-size",
            "37",
            "--url",
            &url,
        ])
        .timeout(Duration::from_secs(60))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ours = from_mqscope(&lines(&out.stdout));
    assert_eq!(ours.len(), 300);

    let Ok(kcat) = std::process::Command::new("kcat")
        .args(["-C", "-J", "-e", "-q", "-b", &c.bootstrap(), "-t", &t])
        .output()
    else {
        panic!("kcat is needed for this cross-check (Debian package kcat)");
    };
    assert!(
        kcat.status.success(),
        "{}",
        String::from_utf8_lossy(&kcat.stderr)
    );
    let theirs = from_kcat(&lines(&kcat.stdout));
    assert_eq!(theirs.len(), 300);
    for (k, v) in &theirs {
        assert_eq!(ours.get(k), Some(v), "record {k:?}");
    }
    // A key that is absent is null in both, not an empty string; headers keep their order.
    assert_eq!(ours[&(0, 0)].0, Value::Null);
    assert_eq!(theirs[&(1, 0)].0, json!("key-1"));
    assert_eq!(
        theirs[&(1, 0)].1,
        [
            ("trace".to_string(), "t-1".to_string()),
            ("source".to_string(), "billing".to_string())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queues_and_peek_json_on_kafka() {
    let c = Cluster::new();
    let t = seed(&c, 12).await;
    let url = format!("kafka://{}", c.bootstrap());
    let home = tempfile::tempdir().unwrap();
    let out = mqscope(&home)
        .args(["queues", "--json", "--url", &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = lines(&out.stdout);
    let row = rows.iter().find(|r| r["name"] == json!(t)).unwrap();
    assert_eq!(row["kind"], "topic");
    assert_eq!(row["type"], "topic");
    assert_eq!(row["partitions"], 3);
    assert_eq!(row["messages"], 12);

    let out = mqscope(&home)
        .args([
            "peek",
            &t,
            "--partition",
            "1",
            "--last",
            "-n",
            "2",
            "--json",
            "--url",
            &url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = lines(&out.stdout);
    let offs: Vec<(i64, i64)> = rows
        .iter()
        .map(|r| {
            (
                r["partition"].as_i64().unwrap(),
                r["offset"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(offs, [(1, 2), (1, 3)]);
    assert_eq!(rows[1]["payload"], "{\"id\":10,\"note\":\"ünï\"}");

    // describe: the topic's partitions with their offsets (the mock answers no configs).
    let d = json_ok(mqscope(&home).args(["describe", &t, "--json", "--url", &url]));
    let parts = d[0]["partitions_detail"].as_array().unwrap();
    assert_eq!(parts.len(), 3);
    let total: i64 = parts
        .iter()
        .map(|p| p["high"].as_i64().unwrap() - p["low"].as_i64().unwrap())
        .sum();
    assert_eq!(total, 12);
    // The mock cannot list groups: the description says so instead of failing.
    let notes = d[0]["notes"].as_array().expect("a note");
    assert!(
        notes.iter().any(|n| n
            .as_str()
            .unwrap_or("")
            .contains("consumer groups not listed")),
        "{notes:?}"
    );

    let out = mqscope(&home)
        .args(["groups", "--json", "--url", &url])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("listing consumer groups"), "{err}");
}

#[test]
fn unreachable_cluster_is_one_line_not_a_hang() {
    let home = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let out = mqscope(&home)
        .args(["queues", "--url", "kafka://127.0.0.1:1"])
        .timeout(Duration::from_secs(30))
        .output()
        .unwrap();
    let took = start.elapsed();
    assert!(!out.status.success());
    // The client's own timeout is 8 s; the rest is room for a loaded CI machine.
    assert!(took < Duration::from_secs(20), "{took:?}");
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("cannot reach kafka://127.0.0.1:1"), "{err}");
}

/// Kafka allows any bytes in a header name, and kcat writes them as given: a name that is
/// not UTF-8 must neither panic a read nor hide the record. It shows with U+FFFD in place
/// of the bad byte, and a trace still finds the record by its other headers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_header_name_that_is_not_utf8_is_shown_not_a_panic() {
    use std::io::Write as _;
    use std::os::unix::ffi::OsStrExt;
    let c = Cluster::new();
    let t = c.topic("odd-headers", 1);
    let mut kcat = std::process::Command::new("kcat")
        .args(["-P", "-b", &c.bootstrap(), "-t", &t, "-p", "0"])
        .args(["-H", "x-correlation-id=ord-9", "-H"])
        .arg(std::ffi::OsStr::from_bytes(b"bad\xffname=v"))
        .stdin(std::process::Stdio::piped())
        .spawn()
        .expect("kcat is needed for this test (Debian package kcat)");
    kcat.stdin
        .take()
        .unwrap()
        .write_all(b"{\"order\":9}\n")
        .unwrap();
    assert!(kcat.wait().unwrap().success());
    let url = format!("kafka://{}", c.bootstrap());
    let home = tempfile::tempdir().unwrap();
    // kcat's produce is acknowledged before the mock's high watermark shows it everywhere.
    let deadline = Instant::now() + Duration::from_secs(20);
    let rows = loop {
        let rows = json_ok(mqscope(&home).args(["peek", &t, "--json", "--url", &url]));
        if !rows.is_empty() || Instant::now() > deadline {
            break rows;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["headers"]["bad\u{fffd}name"], "v", "{}", rows[0]);
    assert_eq!(rows[0]["correlation_id"], "ord-9");
    let trace = json_ok(mqscope(&home).args(["trace", "ord-9", "--json", "--url", &url]));
    assert_eq!(
        trace[0]["hops"].as_array().map(Vec::len),
        Some(1),
        "{trace:?}"
    );
}

/// Run a command that must succeed within 30 s; its JSON Lines output.
fn json_ok(c: &mut Command) -> Vec<Value> {
    let out = c.timeout(Duration::from_secs(30)).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines(&out.stdout)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_a_keyed_record_then_find_it_by_key() {
    let c = Cluster::new();
    let t = seed(&c, 30).await;
    let url = format!("kafka://{}", c.bootstrap());
    let home = tempfile::tempdir().unwrap();
    let receipts = json_ok(
        mqscope(&home)
            .args(["publish", "--url", &url, "--topic", &t, "--partition", "2"])
            .args(["--body", "{\"id\":\"new\"}", "--key", "order-ü-1"])
            .args(["-H", "trace=t-new", "--json"]),
    );
    let receipt = &receipts[0];
    assert_eq!(receipt["partition"], 2);
    assert_eq!(receipt["offset"], 10, "after the ten seeded in partition 2");
    // Searching the whole topic by key finds it, and only it.
    let out = mqscope(&home)
        .args(["peek", &t, "--all", "--json", "--url", &url])
        .args(["--filter", "key=order-ü-1"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = lines(&out.stdout);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["key"], "order-ü-1");
    assert_eq!(rows[0]["partition"], 2);
    assert_eq!(rows[0]["offset"], 10);
    assert_eq!(rows[0]["headers"]["trace"], "t-new");
    assert_eq!(rows[0]["payload"], "{\"id\":\"new\"}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 of 31 messages read matched --filter 'key=order-ü-1'"),
        "{err}"
    );
    // Properties are AMQP's: a record has none, and saying one is an error, not a loss.
    let out = mqscope(&home)
        .args(["publish", "--url", &url, "--topic", &t, "--body", "x"])
        .args(["--property", "content_type=text/plain"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("a topic record does not have"), "{err}");
    let row = json_ok(mqscope(&home).args(["queues", "--json", "--url", &url]))
        .into_iter()
        .find(|r| r["name"] == json!(t))
        .unwrap();
    assert_eq!(row["messages"], 31, "nothing was sent");
}

/// Bare Avro records on a topic the profile maps to an `.avsc`: `trace` finds a
/// correlation ID inside them and `--filter 'body./…'` compares decoded fields, where the
/// bytes alone hold neither as JSON.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_and_filter_read_inside_avro_bodies() {
    const SCHEMA: &str = r#"{"type": "record", "name": "Order", "fields": [
        {"name": "orderId", "type": "string"},
        {"name": "correlationId", "type": ["null", "string"], "default": null},
        {"name": "customer", "type": {"type": "record", "name": "Customer",
            "fields": [{"name": "id", "type": "long"}]}}]}"#;
    let schema = apache_avro::Schema::parse_str(SCHEMA).unwrap();
    let c = Cluster::new();
    let t = c.topic("avro-orders", 2);
    for i in 0..6i64 {
        let order = apache_avro::types::Value::Record(vec![
            (
                "orderId".into(),
                apache_avro::types::Value::String(format!("ORD-{i}")),
            ),
            (
                "correlationId".into(),
                apache_avro::types::Value::Union(
                    1,
                    Box::new(apache_avro::types::Value::String(format!("journey-{i}"))),
                ),
            ),
            (
                "customer".into(),
                apache_avro::types::Value::Record(vec![(
                    "id".into(),
                    apache_avro::types::Value::Long(40 + i),
                )]),
            ),
        ]);
        let bytes = apache_avro::writer::datum::GenericDatumWriter::builder(&schema)
            .build()
            .unwrap()
            .write_value_to_vec(order)
            .unwrap();
        c.produce(&t, (i % 2) as i32, &Message::new("", 0, bytes), None)
            .await;
    }
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("mqscope");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("order.avsc"), SCHEMA).unwrap();
    std::fs::write(
        dir.join("config.toml"),
        format!(
            "[profiles.k]\nurl = \"kafka://{}\"\n[profiles.k.decode]\n\"{t}\" = {{ schema = \"order.avsc\" }}\n",
            c.bootstrap()
        ),
    )
    .unwrap();
    let trace = json_ok(mqscope(&home).args(["trace", "journey-3", "--json", "--profile", "k"]));
    let hops = trace[0]["hops"].as_array().unwrap();
    assert_eq!(hops.len(), 1, "{trace:?}");
    assert_eq!(
        (&hops[0]["partition"], &hops[0]["offset"]),
        (&json!(1), &json!(1))
    );
    // Without the mapping the same records hold no ID a trace can see.
    let url = format!("kafka://{}", c.bootstrap());
    let blind = json_ok(mqscope(&home).args(["trace", "journey-3", "--json", "--url", &url]));
    assert_eq!(
        blind[0]["hops"].as_array().map(Vec::len),
        Some(0),
        "{blind:?}"
    );

    let rows = json_ok(mqscope(&home).args([
        "peek",
        &t,
        "--all",
        "--json",
        "--profile",
        "k",
        "--filter",
        "body./customer/id=44 or body./orderId=ORD-1",
    ]));
    let mut found: Vec<&Value> = rows.iter().map(|r| &r["decoded"]["orderId"]).collect();
    found.sort_by_key(|v| v.as_str().unwrap_or_default().to_string());
    assert_eq!(found, [&json!("ORD-1"), &json!("ORD-4")], "{rows:?}");
    // A human peek reads the bodies for the filter too.
    let out = mqscope(&home)
        .args([
            "peek",
            &t,
            "--all",
            "--profile",
            "k",
            "--filter",
            "body./customer/id=45",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[1]@2") && text.contains("ORD-5"), "{text}");
    // ... and shows what is inside them, with the correlation ID found there.
    assert!(
        text.contains(r#"decoded:     avro, schema order.avsc: {"orderId":"ORD-5","correlationId":"journey-5","customer":{"id":45}}"#),
        "{text}"
    );
    assert!(text.contains("correlation: journey-5"), "{text}");
}

/// Confluent-framed Protobuf records on a Kafka topic, read by a profile's `schema_ids`
/// mapping an id to a local `.proto`: the message indexes pick each record's type ([0] is
/// `shop.Order`, [1] the file's second message, `shop.Refund`), with no registry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peek_json_decodes_confluent_framed_protobuf_by_message_index() {
    use prost::Message as _;
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/decode_interop");
    let values: Value =
        serde_json::from_str(&std::fs::read_to_string(here.join("order_pb.json")).unwrap())
            .unwrap();
    let mut compiler = protox::Compiler::new([&here]).unwrap();
    compiler.open_file("order.proto").unwrap();
    let pool = compiler.descriptor_pool();
    let encode = |name: &str, indexes: &[u8]| {
        let desc = pool.get_message_by_name(name).unwrap();
        let msg = prost_reflect::DynamicMessage::deserialize(desc, &values[name]).unwrap();
        let mut body = vec![0, 0, 0, 0, 7];
        body.extend(indexes);
        body.extend(msg.encode_to_vec());
        body
    };
    let c = Cluster::new();
    let t = c.topic("protobuf", 1);
    for body in [encode("shop.Order", &[0]), encode("shop.Refund", &[2, 2])] {
        c.produce(&t, 0, &Message::new("", 0, body), None).await;
    }
    let home = tempfile::tempdir().unwrap();
    std::fs::copy(here.join("order.proto"), home.path().join("order.proto")).unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[profiles.k]\nurl = \"kafka://{}\"\nschema_ids = {{ \"7\" = \"order.proto\" }}\n",
            c.bootstrap()
        ),
    )
    .unwrap();
    let rows = json_ok(mqscope(&home).args([
        "peek",
        &t,
        "-n",
        "2",
        "--json",
        "--config",
        config.to_str().unwrap(),
        "--profile",
        "k",
    ]));
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (row, name) in rows.iter().zip(["shop.Order", "shop.Refund"]) {
        assert_eq!(row["decoded"], values[name], "{name}");
        assert_eq!(
            row["decoded_as"],
            json!({"format": "protobuf", "schema_id": 7, "file": "order.proto", "message": name})
        );
    }
}
