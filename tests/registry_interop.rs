//! `mqscope peek --json` on records written by the serializers users run: Python
//! confluent-kafka's AvroSerializer, ProtobufSerializer and JSONSerializer with its registry
//! client (tests/registry/produce.py), produced into librdkafka's mock cluster and into
//! tansu. The `decoded` value of every record must equal what the same library's deserializers return
//! for it, over the Avro record with every type, a schema evolved between records, a schema
//! referencing another subject's named type, a JSON Schema, and Protobuf (a referenced
//! file, two top-level messages and a nested one: message indexes other than [0]).
//!
//! No Confluent Schema Registry server installs from the registries this machine reaches:
//! the schemas the serializers register are served by a STAND-IN of the registry's REST API
//! (tests/registry/standin.py, Python standard library), which also counts requests, so
//! that each schema id is seen fetched once per mqscope process.
//!
//! scripts/test installs confluent-kafka and names its Python in MQSCOPE_PYTHON_CONFLUENT;
//! without it the tests skip, except under CI=true, where they fail.

mod kafka_mock;
mod tansu;

use assert_cmd::Command;
use base64::Engine;
use kafka_mock::Cluster;
use serde_json::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

fn here(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn python() -> Option<String> {
    match std::env::var("MQSCOPE_PYTHON_CONFLUENT") {
        Ok(p) if Path::new(&p).is_file() => Some(p),
        other => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "MQSCOPE_PYTHON_CONFLUENT must name a Python with confluent-kafka in CI (scripts/test installs it): {other:?}"
            );
            eprintln!("skipping: MQSCOPE_PYTHON_CONFLUENT is not set (scripts/test sets it)");
            None
        }
    }
}

/// A child process killed when dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The stand-in registry (`--garbage`: one that answers every schema request with HTML).
struct StandIn {
    _child: Running,
    url: String,
}

impl StandIn {
    fn start(python: &str, garbage: bool) -> StandIn {
        StandIn::with_args(python, if garbage { &["--garbage"] } else { &[] }, "http")
    }

    fn with_args(python: &str, args: &[&str], scheme: &str) -> StandIn {
        let mut cmd = std::process::Command::new(python);
        cmd.arg(here("tests/registry/standin.py")).args(args);
        let mut child = cmd
            .stdout(Stdio::piped())
            .spawn()
            .expect("the stand-in starts");
        let mut port = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut port)
            .unwrap();
        let url = format!("{scheme}://127.0.0.1:{}", port.trim());
        StandIn {
            _child: Running(child),
            url,
        }
    }

    /// Requests by method and path since the last reset.
    fn counts(&self) -> BTreeMap<String, u64> {
        serde_json::from_str(&http(&self.url, "GET", "/_counts")).unwrap()
    }

    fn reset_counts(&self) {
        http(&self.url, "POST", "/_reset_counts");
    }
}

/// One plain HTTP/1.0 request to the stand-in: its body.
fn http(base: &str, method: &str, path: &str) -> String {
    http_with(base, method, path, "")
}

fn http_with(base: &str, method: &str, path: &str, body: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(addr).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.0\r\nHost: {addr}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text.split_once("\r\n\r\n").unwrap().1.to_string()
}

/// Run the producer script: the deserializers' values by (topic, offset).
fn produce(python: &str, bootstrap: &str, registry: &str, prefix: &str, create: bool) -> Expected {
    // Python makes its Protobuf message classes from a descriptor set (there is no protoc
    // here): protox's compile of the .proto files.
    let dir = tempfile::tempdir().unwrap();
    let desc = dir.path().join("payment.desc");
    let mut compiler = protox::Compiler::new([here("tests/registry/proto")]).unwrap();
    compiler.include_imports(true);
    compiler.open_file("payment.proto").unwrap();
    std::fs::write(&desc, compiler.encode_file_descriptor_set()).unwrap();
    let mut cmd = std::process::Command::new(python);
    cmd.arg(here("tests/registry/produce.py"))
        .args([bootstrap, registry, prefix])
        .arg(here("tests/decode_interop/order.avsc"))
        .arg(&desc);
    if create {
        cmd.arg("create");
    }
    json_lines(cmd.output().unwrap())
        .into_iter()
        .map(|v| {
            let key = (
                v["topic"].as_str().unwrap().to_string(),
                v["offset"].as_i64().unwrap(),
            );
            (key, v)
        })
        .collect()
}

type Expected = BTreeMap<(String, i64), Value>;

/// A command's standard output as JSON lines; it must have succeeded.
fn json_lines(out: std::process::Output) -> Vec<Value> {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("bad JSON {l}: {e}")))
        .collect()
}

struct Env {
    home: tempfile::TempDir,
    config: PathBuf,
}

/// A config file with one profile per registry URL given, named by the key.
fn env(bootstrap: &str, registries: &[(&str, &str)]) -> Env {
    let home = tempfile::tempdir().unwrap();
    let config = home.path().join("config.toml");
    let mut text = String::new();
    for (name, url) in registries {
        text += &format!(
            "[profiles.{name}]\nurl = \"kafka://{bootstrap}\"\nschema_registry = {{ url = \"{url}\" }}\n"
        );
    }
    std::fs::write(&config, text).unwrap();
    Env { home, config }
}

impl Env {
    fn mqscope(&self, profile: &str) -> Command {
        let mut c = Command::cargo_bin("mqscope").unwrap();
        c.env("XDG_CONFIG_HOME", self.home.path())
            .env("XDG_STATE_HOME", self.home.path())
            .env_remove("MQSCOPE_URL")
            .env_remove("MQSCOPE_PROFILE")
            .env_remove("MQSCOPE_CONFIG")
            .env_remove("MQSCOPE_SCHEMA_REGISTRY")
            .arg("--config")
            .arg(&self.config)
            .args(["--profile", profile])
            .timeout(Duration::from_secs(90));
        c
    }

    /// `peek --json` of a whole topic: exit 0 required.
    fn peek(&self, profile: &str, topic: &str) -> Vec<Value> {
        json_lines(
            self.mqscope(profile)
                .args(["peek", "--json", "-n", "50", topic])
                .output()
                .unwrap(),
        )
    }
}

/// A stand-in registry and a mock cluster with the producer script's three topics filled.
fn on_mock(python: &str, prefix: &str) -> (StandIn, Cluster, Expected) {
    let registry = StandIn::start(python, false);
    let c = Cluster::new();
    for t in ["orders", "invoices", "events", "payments"] {
        c.mock
            .0
            .create_topic(&format!("{prefix}-{t}"), 1, 1)
            .unwrap();
    }
    let expected = produce(python, &c.bootstrap(), &registry.url, prefix, false);
    (registry, c, expected)
}

/// A decoder that never asks the registry itself: it finds only what was fetched (or
/// prefetched) already, as the terminal UI's drawing does.
fn prefetched_only(
    reg: &std::sync::Arc<mqscope::backend::registry::Registry>,
) -> mqscope::format::decode::Decoder {
    use mqscope::backend::registry::RegistrySchemas;
    use mqscope::format::decode::{Decoder, LocalSchemas};
    let schemas = RegistrySchemas::new(LocalSchemas::default(), reg.clone(), false);
    Decoder::new(BTreeMap::new(), std::sync::Arc::new(schemas))
}

/// A registry address nothing listens on.
fn closed_port() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// Every record of the three topics decodes to the deserializers' value, says its schema
/// id and subject, and each schema id was fetched once by each mqscope process.
fn check_agreement(e: &Env, registry: &StandIn, prefix: &str, expected: &Expected) {
    assert_eq!(expected.len(), 11, "{expected:?}");
    let mut seen = 0;
    let topics = [
        ("orders", "avro"),
        ("invoices", "avro"),
        ("events", "json"),
        ("payments", "protobuf"),
    ];
    for (topic, format) in topics {
        let topic = format!("{prefix}-{topic}");
        registry.reset_counts();
        let records = e.peek("p", &topic);
        let mut ids = BTreeMap::new();
        for r in &records {
            let key = (topic.clone(), r["offset"].as_i64().unwrap());
            let want = &expected[&key];
            assert_eq!(&r["decoded"], &want["value"], "{key:?}: {r}");
            if let Some(k) = want.get("key") {
                assert_eq!(&r["key_decoded"], k, "{key:?}: {r}");
                let d = &r["key_decoded_as"];
                assert_eq!(d["subject"], format!("{topic}-key"), "{r}");
                *ids.entry(d["schema_id"].as_u64().unwrap()).or_insert(0) += 1;
            }
            let d = &r["decoded_as"];
            assert_eq!(d["format"], format, "{r}");
            assert_eq!(d["subject"], format!("{topic}-value"), "{r}");
            *ids.entry(d["schema_id"].as_u64().unwrap()).or_insert(0) += 1;
            seen += 1;
        }
        let counts = registry.counts();
        for id in ids.keys() {
            assert_eq!(counts[&format!("GET /schemas/ids/{id}")], 1, "{counts:?}");
        }
        if topic.ends_with("orders") {
            // v1 (with a key), v1, then v2 with the new field: the first used twice.
            assert_eq!(ids.values().copied().collect::<Vec<_>>(), [2, 1, 1]);
            let last = records.last().unwrap();
            assert_eq!(last["decoded"]["channel"], "shop");
            assert!(records[0]["decoded"].get("channel").is_none());
        }
        if topic.ends_with("invoices") {
            let refs: u64 = counts
                .iter()
                .filter(|(k, _)| k.starts_with("GET /subjects/") && k.contains("-money/versions/1"))
                .map(|(_, n)| n)
                .sum();
            assert_eq!(refs, 1, "the referenced schema, once: {counts:?}");
        }
        if topic.ends_with("payments") {
            // One file registered, its messages told apart by their indexes.
            assert_eq!(ids.values().copied().collect::<Vec<_>>(), [4]);
            let messages: Vec<_> = records
                .iter()
                .map(|r| r["decoded_as"]["message"].as_str().unwrap_or_default())
                .collect();
            assert_eq!(
                messages,
                [
                    "shop.pay.Payment",
                    "shop.pay.Payment",
                    "shop.pay.Refund",
                    "shop.pay.Payment.Line"
                ]
            );
            // The serializer registered the imported file under its import name, "/" and
            // all.
            let refs = counts
                .get("GET /subjects/shop%2Fmoney.proto/versions/1")
                .copied();
            assert_eq!(refs, Some(1), "the referenced file, once: {counts:?}");
        }
    }
    assert_eq!(seen, expected.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn confluent_serializer_records_on_the_mock_cluster_decode_as_its_deserializers_read_them() {
    let Some(python) = python() else { return };
    let prefix = "registry-mock";
    let (registry, c, expected) = on_mock(&python, prefix);
    let e = env(&c.bootstrap(), &[("p", &registry.url)]);
    check_agreement(&e, &registry, prefix, &expected);

    // A target given by URL alone, the registry by MQSCOPE_SCHEMA_REGISTRY.
    let out = Command::cargo_bin("mqscope")
        .unwrap()
        .env("XDG_CONFIG_HOME", e.home.path())
        .env_remove("MQSCOPE_PROFILE")
        .env_remove("MQSCOPE_CONFIG")
        .env("MQSCOPE_SCHEMA_REGISTRY", &registry.url)
        .args(["--url", &format!("kafka://{}", c.bootstrap())])
        .args(["peek", "--json", "-n", "1", &format!("{prefix}-events")])
        .timeout(Duration::from_secs(90))
        .output()
        .unwrap();
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        r["decoded"],
        expected[&(format!("{prefix}-events"), 0)]["value"]
    );

    // describe names the subjects that apply to the topic.
    let out = e
        .mqscope("p")
        .args(["describe", &format!("{prefix}-orders")])
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "Schema subjects: {prefix}-orders-value, {prefix}-orders-key"
        )),
        "{text}"
    );
    let out = e
        .mqscope("p")
        .args(["describe", "--json", &format!("{prefix}-events")])
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["schema_subjects"],
        serde_json::json!([format!("{prefix}-events-value")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_ids_a_registry_down_or_talking_garbage_leave_the_raw_payload_and_a_reason() {
    let Some(python) = python() else { return };
    let prefix = "registry-bad";
    let (registry, c, _) = on_mock(&python, prefix);
    let garbage = StandIn::start(&python, true);
    let closed = closed_port();
    // A registry that takes the connection and never answers: its port's backlog accepts.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let hung = format!("http://{}", silent.local_addr().unwrap());
    let e = env(
        &c.bootstrap(),
        &[
            ("p", &registry.url),
            ("down", &closed),
            ("garbage", &garbage.url),
            ("hung", &hung),
        ],
    );
    // An id the registry never gave: 999, framed by hand.
    let odd = c.topic("registry-unknown", 1);
    let body = [0u8, 0, 0, 0x03, 0xe7, 0x02, 0x04];
    let m = mqscope::model::Message::new("", 0, bytes::Bytes::copy_from_slice(&body));
    c.produce(&odd, 0, &m, None).await;

    let raw = |r: &Value| {
        base64::engine::general_purpose::STANDARD
            .decode(r["payload"].as_str().unwrap())
            .unwrap()
    };
    let records = e.peek("p", &odd);
    assert_eq!(records.len(), 1);
    let why = records[0]["decode_error"].as_str().unwrap();
    assert!(why.starts_with("schema id 999: registry "), "{why}");
    assert!(
        why.contains("404") && why.contains("Schema 999 not found"),
        "{why}"
    );
    assert_eq!(raw(&records[0]), body);
    assert!(records[0].get("decoded").is_none());

    let orders = format!("{prefix}-orders");
    let started = Instant::now();
    let records = e.peek("down", &orders);
    assert_eq!(records.len(), 3);
    for r in &records {
        let why = r["decode_error"].as_str().unwrap();
        assert!(
            why.contains(&format!("registry {closed} is unreachable")),
            "{why}"
        );
        assert_eq!(raw(r)[0], 0);
    }
    // Said for each record, asked once: a down registry is not waited on per message.
    assert!(started.elapsed() < Duration::from_secs(60));

    // One request's timeout, once: the registry is then remembered as down.
    let records = e.peek("hung", &orders);
    assert_eq!(records.len(), 3);
    for r in &records {
        let why = r["decode_error"].as_str().unwrap();
        assert!(
            why.contains("is unreachable") && why.contains("timed out"),
            "{why}"
        );
    }

    garbage.reset_counts();
    let records = e.peek("garbage", &orders);
    assert_eq!(records.len(), 3);
    for r in &records {
        let why = r["decode_error"].as_str().unwrap();
        assert!(why.contains("no answer mqscope reads"), "{why}");
        assert!(why.contains("GET /schemas/ids/"), "{why}");
        assert_eq!(raw(r)[0], 0);
    }
    let counts = garbage.counts();
    assert!(
        counts.values().all(|n| *n == 1),
        "each id asked once: {counts:?}"
    );
}

#[test]
fn confluent_serializer_records_on_tansu_decode_as_its_deserializers_read_them() {
    let Some(python) = python() else { return };
    let Some(broker) = tansu::start() else {
        return;
    };
    let addr = broker.addr.clone();
    let registry = StandIn::start(&python, false);
    let prefix = "registry-tansu";
    let expected = produce(&python, &addr, &registry.url, prefix, true);
    let e = env(&addr, &[("p", &registry.url)]);
    check_agreement(&e, &registry, prefix, &expected);
}

/// The TUI's decoder never asks the registry itself: its worker fetches a page's schemas
/// first (`Registry::prefetch`), and a registry that cannot be reached is one note.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decoder_that_does_not_fetch_finds_prefetched_schemas_and_an_unreachable_registry_is_a_note()
 {
    use mqscope::backend::registry::{Registry, RegistryAuth, RegistrySettings};
    use mqscope::backend::target::Secret;
    use mqscope::format::decode::Input;
    use std::sync::Arc;

    // The stand-in needs only Python's standard library.
    let python = std::env::var("MQSCOPE_PYTHON_CONFLUENT").unwrap_or_else(|_| "python3".into());
    let registry = StandIn::start(&python, false);
    let answer = http_with(
        &registry.url,
        "POST",
        "/subjects/t-value/versions",
        r#"{"schema": "\"long\""}"#,
    );
    let id: u32 = serde_json::from_str::<Value>(&answer).unwrap()["id"]
        .as_u64()
        .unwrap()
        .try_into()
        .unwrap();
    let settings = |url: &str, auth| RegistrySettings {
        url: url.to_string(),
        auth,
        ca_file: None,
    };
    let reg = Arc::new(
        Registry::new(settings(
            &registry.url,
            RegistryAuth::Bearer(Secret::new("t0k")),
        ))
        .unwrap(),
    );
    let decoder = prefetched_only(&reg);
    let mut body = vec![0u8];
    body.extend(id.to_be_bytes());
    body.push(0x54); // 42
    let input = Input {
        bytes: &body,
        queue: "t",
        ..Input::default()
    };
    // Not fetched yet: left alone, and nothing was asked.
    assert!(decoder.decode(&input).is_none());
    assert_eq!(reg.requests(), 0);
    let other = [0u8, 0, 0, 0x03, 0xe7, 1];
    let ids = reg.wanted([&body[..], &body[..], &other[..], b"{}"]);
    assert_eq!(ids, [id, 999]);
    assert_eq!(reg.prefetch(ids).await, None);
    let got = decoder.decode(&input).unwrap().unwrap();
    assert_eq!(got.value, 42);
    assert_eq!(got.decoded_as.subject.as_deref(), Some("t-value"));
    let e = decoder
        .decode(&Input {
            bytes: &other,
            ..input
        })
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("Schema 999 not found"), "{e}");
    assert_eq!(http(&registry.url, "GET", "/_last_auth"), r#""Bearer t0k""#);
    // Asked once each (by id, then its subject), whatever is decoded again.
    let before = reg.requests();
    assert!(reg.wanted([&body[..], &other[..]]).is_empty());
    assert_eq!(reg.prefetch(vec![id]).await, None);
    assert_eq!(reg.requests(), before);

    let basic = Registry::new(settings(
        &registry.url,
        RegistryAuth::Basic {
            user: "key".into(),
            password: Secret::new("s3cret"),
        },
    ))
    .unwrap();
    basic.schema(id).await.unwrap();
    assert_eq!(
        http(&registry.url, "GET", "/_last_auth"),
        format!(
            "\"Basic {}\"",
            base64::engine::general_purpose::STANDARD.encode("key:s3cret")
        )
    );

    let closed = closed_port();
    let down = Arc::new(Registry::new(settings(&closed, RegistryAuth::None)).unwrap());
    let note = down.prefetch(down.wanted([&body[..]])).await.unwrap();
    assert!(
        note.contains("is unreachable") && note.contains("shown raw"),
        "{note}"
    );
    let decoder = prefetched_only(&down);
    let e = decoder.decode(&input).unwrap().unwrap_err();
    assert!(
        e.to_string()
            .contains(&format!("registry {closed} is unreachable")),
        "{e}"
    );
    // Remembered: a second id is not tried while the registry is down.
    let requests = down.requests();
    assert!(down.schema(999).await.is_err());
    assert_eq!(down.requests(), requests);
}

/// The TUI's path: its worker fetches a page's schemas before handing the page over, so
/// that opening a message decodes it at once from the cache; with the registry down the
/// page still comes, after a note for the status bar, and each message says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tui_worker_fetches_a_pages_schemas_first_and_notes_an_unreachable_registry() {
    use mqscope::backend::registry::{Registry, RegistryAuth, RegistrySettings};
    use mqscope::backend::{ConnectOptions, PeekFrom};
    use mqscope::config::Target;
    use mqscope::format::decode::Input;
    use mqscope::tui::state::Effect;
    use mqscope::tui::update::Msg;
    use mqscope::tui::worker::Worker;
    use std::sync::Arc;

    let Some(python) = python() else { return };
    let prefix = "registry-tui";
    let (registry, c, expected) = on_mock(&python, prefix);
    let closed = closed_port();
    let topic = format!("{prefix}-invoices");
    for (url, reachable) in [(&registry.url, true), (&closed, false)] {
        let reg = Arc::new(
            Registry::new(RegistrySettings {
                url: url.clone(),
                auth: RegistryAuth::None,
                ca_file: None,
            })
            .unwrap(),
        );
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let worker = Worker::with_options(
            Target::parse(&format!("kafka://{}", c.bootstrap())).unwrap(),
            ConnectOptions {
                live: false,
                ..Default::default()
            },
            tx,
        )
        .with_registry(Some(reg.clone()));
        let mut next = async || {
            tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .unwrap()
                .unwrap()
        };
        worker.run(Effect::Connect);
        assert!(matches!(next().await, Msg::Connected { .. }));
        worker.run(Effect::LoadMessages {
            req: 1,
            queue: topic.clone(),
            partition: None,
            from: PeekFrom::Start,
            limit: 10,
            force: false,
        });
        let mut note = None;
        let page = loop {
            match next().await {
                Msg::RegistryNote(n) => note = Some(n),
                Msg::MessagesLoaded { req: 1, result } => break result.unwrap(),
                other => panic!("{other:?}"),
            }
        };
        assert_eq!(page.messages.len(), 2);
        let decoder = prefetched_only(&reg);
        let requests = reg.requests();
        for m in &page.messages {
            let got = decoder.decode(&Input::payload(m)).unwrap();
            if reachable {
                let want = &expected[&(topic.clone(), m.offset.unwrap())]["value"];
                assert_eq!(&got.unwrap().value, want);
            } else {
                let e = got.unwrap_err().to_string();
                assert!(
                    e.contains(&format!("registry {closed} is unreachable")),
                    "{e}"
                );
            }
        }
        // Decoding asked nothing: it found what the worker had fetched (or had failed).
        assert_eq!(reg.requests(), requests);
        match (reachable, note) {
            (true, None) => {}
            (false, Some(n)) => assert!(n.contains("is unreachable"), "{n}"),
            (r, n) => panic!("reachable {r}, note {n:?}"),
        }
        worker.close().await;
    }
}

/// A registry over HTTPS with a certificate from a private CA: trusted with `ca_file`, and
/// refused without it, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_registry_is_trusted_through_the_ca_file_and_refused_without_it() {
    use mqscope::backend::registry::{Registry, RegistryAuth, RegistrySettings};

    let python = std::env::var("MQSCOPE_PYTHON_CONFLUENT").unwrap_or_else(|_| "python3".into());
    let dir = tempfile::tempdir().unwrap();
    let made = std::process::Command::new(here("scripts/rabbitmq-tls.sh"))
        .env("TLS_DIR", dir.path())
        .env("RABBITMQ_CONF", dir.path().join("unused.conf"))
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let pem = |f: &str| dir.path().join(f).display().to_string();
    let registry = StandIn::with_args(
        &python,
        &["--tls", &pem("server.pem"), &pem("server.key")],
        "https",
    );
    let setup = |ca_file| {
        Registry::new(RegistrySettings {
            url: registry.url.clone(),
            auth: RegistryAuth::None,
            ca_file,
        })
        .unwrap()
    };
    // Nothing is registered: the registry's own 404 shows the TLS session and the request
    // went through.
    let trusted = setup(Some(dir.path().join("ca.pem")));
    let e = trusted.schema(1).await.unwrap_err().to_string();
    assert!(e.contains("404") && e.contains("Schema 1 not found"), "{e}");
    let untrusted = setup(None);
    let e = untrusted.schema(1).await.unwrap_err().to_string();
    assert!(
        e.contains("is unreachable") && e.contains("certificate"),
        "{e}"
    );
}
