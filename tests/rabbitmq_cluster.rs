//! A three-node RabbitMQ 4.3 cluster (`scripts/rabbitmq-versions start cluster`, named to
//! the tests in `MQSCOPE_TEST_RABBITMQ_CLUSTER_AMQP` / `_MGMT`, first node first): quorum
//! queues whose leader is on another node than the one mqscope connects to are listed,
//! described with their leader and members, and peeked; the leader's node stopped in the
//! middle of a peek and of a replay loses nothing, and `replay --resume` finishes the job.
//! Without the cluster the test skips, except under CI=true, where it fails.

mod support;

use lapin::{Connection, ConnectionProperties};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const N: usize = 1_000;

struct Cluster {
    amqp: Vec<String>,
    mgmt: Vec<String>,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn get() -> Option<Cluster> {
        let list = |k: &str| {
            std::env::var(k)
                .ok()
                .map(|v| v.split(',').map(str::to_string).collect::<Vec<_>>())
        };
        match (
            list("MQSCOPE_TEST_RABBITMQ_CLUSTER_AMQP"),
            list("MQSCOPE_TEST_RABBITMQ_CLUSTER_MGMT"),
        ) {
            (Some(amqp), Some(mgmt)) if amqp.len() == 3 && mgmt.len() == 3 => {
                let dir = tempfile::tempdir().unwrap();
                let mut config = String::new();
                for (i, (a, m)) in amqp.iter().zip(&mgmt).enumerate() {
                    config.push_str(&format!(
                        "[profiles.node{}]\nurl = \"{a}\"\nmanagement_url = \"{m}\"\n",
                        i + 1
                    ));
                }
                std::fs::write(dir.path().join("config.toml"), config).unwrap();
                Some(Cluster { amqp, mgmt, dir })
            }
            _ if std::env::var("CI").as_deref() == Ok("true") => {
                panic!(
                    "the RabbitMQ cluster is not set up in CI (MQSCOPE_TEST_RABBITMQ_CLUSTER_AMQP)"
                )
            }
            _ => {
                eprintln!("skipping: no RabbitMQ cluster (MQSCOPE_TEST_RABBITMQ_CLUSTER_AMQP)");
                None
            }
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// mqscope through node 1 (the leader of the test's queues is on node 2).
    fn mqscope(&self, env: &[(&str, &Path)], args: &[&str]) -> std::process::Child {
        std::process::Command::new(assert_cmd::cargo::cargo_bin!("mqscope"))
            .env_remove("MQSCOPE_URL")
            .env_remove("MQSCOPE_PROFILE")
            .env("MQSCOPE_STATE_DIR", self.state())
            .envs(env.iter().copied())
            .arg("--config")
            .arg(self.dir.path().join("config.toml"))
            .args(["--profile", "node1"])
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn run(&self, args: &[&str]) -> (bool, String, String) {
        let out = self.mqscope(&[], args).wait_with_output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// rabbitmqctl against node `n` (1 to 3).
    fn ctl(&self, n: usize, args: &[&str]) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rabbitmq-versions");
        let out = std::process::Command::new(script)
            .arg("ctl")
            .arg(format!("cluster{n}"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?} on node {n}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    async fn http(&self, node: usize, method: reqwest::Method, path: &str, body: Value) -> Value {
        let r = reqwest::Client::new()
            .request(method, format!("{}{path}", self.mgmt[node - 1]))
            .basic_auth("guest", Some("guest"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// A quorum queue led by node 2: declared there, with the leader where the client is.
    async fn quorum_on_node2(&self, name: &str, args: Value) {
        let mut arguments =
            json!({"x-queue-type": "quorum", "x-queue-leader-locator": "client-local"});
        if let (Some(a), Some(extra)) = (arguments.as_object_mut(), args.as_object()) {
            a.extend(extra.clone());
        }
        let path = format!("/api/queues/%2F/{name}");
        let _ = reqwest::Client::new()
            .delete(format!("{}{path}", self.mgmt[1]))
            .basic_auth("guest", Some("guest"))
            .send()
            .await;
        self.http(
            2,
            reqwest::Method::PUT,
            &path,
            json!({"durable": true, "arguments": arguments}),
        )
        .await;
    }

    /// Message ids in a queue, read with a peek through node 1 (safe on 4.3).
    fn ids(&self, q: &str) -> Vec<String> {
        let (ok, out, err) = self.run(&["peek", q, "-n", "5000", "--json"]);
        assert!(ok, "peek {q}: {err}");
        out.lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["message_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    }

    /// Wait until node 2 is back and `q` answers with `n` ready messages through node 1.
    async fn settle(&self, q: &str, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let v = self
                .http(
                    1,
                    reqwest::Method::GET,
                    &format!("/api/queues/%2F/{q}"),
                    Value::Null,
                )
                .await;
            let online = v["online"].as_array().map_or(0, Vec::len);
            if v["messages_ready"].as_u64() == Some(n as u64) && online == 3 {
                return;
            }
            assert!(Instant::now() < deadline, "{q} never settled at {n}: {v}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

/// Hold an mqscope process at `step` (a debug build's crash point, in hold mode) while
/// node 2, the leader, stops; then let it go on, and start node 2 again.
async fn leader_down_at(c: &Cluster, step: &str, args: &[&str]) -> (bool, String) {
    let release = c
        .dir
        .path()
        .join(format!("release-{}", step.replace('.', "-")));
    let at = format!("{step}:1");
    let mut child = c.mqscope(
        &[
            ("MQSCOPE_CRASH_AT", Path::new(&at)),
            ("MQSCOPE_CRASH_RELEASE", &release),
        ],
        args,
    );
    // Both pipes read from the start: a peek's JSON passes the 64 KiB a pipe holds (it
    // writes a megabyte at a time), and a writer blocked on a full pipe never reaches the
    // step.
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let mut waiting = release.clone().into_os_string();
    waiting.push(".waiting");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !Path::new(&waiting).exists() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("mqscope ended before {step}: {status}: {}", joined(stderr));
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{step} never reached: {}", joined(stderr));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::task::block_in_place(|| c.ctl(2, &["stop_app"]));
    std::fs::write(&release, b"").unwrap();
    let status = tokio::task::block_in_place(|| child.wait()).unwrap();
    tokio::task::block_in_place(|| c.ctl(2, &["start_app"]));
    let _ = joined(stdout);
    (status.success(), joined(stderr))
}

/// A child's pipe read to its end on a thread of its own.
fn drain<R: std::io::Read + Send + 'static>(pipe: Option<R>) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = Vec::new();
        if let Some(mut p) = pipe {
            let _ = p.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    })
}

/// What a [`drain`] thread read.
fn joined(reader: std::thread::JoinHandle<String>) -> String {
    reader.join().unwrap_or_default()
}

fn census(lists: &[Vec<String>]) -> BTreeMap<String, u32> {
    let mut seen = BTreeMap::new();
    for l in lists {
        for id in l {
            *seen.entry(id.clone()).or_insert(0) += 1;
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quorum_queues_led_by_another_node_are_listed_described_peeked_and_survive_the_leader_going_down()
 {
    let Some(c) = Cluster::get() else { return };
    let q = format!("mqscope-cluster-orders-{}", std::process::id());
    let dlq = format!("{q}.dlq");
    c.quorum_on_node2(&dlq, json!({})).await;
    c.quorum_on_node2(
        &q,
        json!({"x-dead-letter-exchange": "", "x-dead-letter-routing-key": dlq}),
    )
    .await;

    // N messages published through node 1, then rejected into the dead-letter queue.
    let file = c.dir.path().join("orders.jsonl");
    let lines: Vec<String> = (0..N)
        .map(|i| json!({"payload": format!("{{\"n\":{i}}}"), "properties": {"message_id": format!("o-{i}")}}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).unwrap();
    let (ok, _, err) = c.run(&["publish", "--queue", &q, "--from", file.to_str().unwrap()]);
    assert!(ok, "publish: {err}");
    let conn = Connection::connect(&c.amqp[0], ConnectionProperties::default())
        .await
        .unwrap();
    let ch = conn.create_channel().await.unwrap();
    support::dead_letter_first(&ch, &q, N).await;
    let _ = conn.close(200, "set up".into()).await;
    c.settle(&dlq, N).await;

    // Listed and described through node 1: the leader is node 2, all three are members.
    let (ok, out, err) = c.run(&["queues"]);
    assert!(ok && out.contains(&q) && out.contains(&dlq), "{out}{err}");
    let (ok, out, err) = c.run(&["describe", &dlq, "--json"]);
    assert!(ok, "{err}");
    let d: Value = serde_json::from_str(&out).unwrap();
    let text = d.to_string();
    assert!(text.contains("rabbit2@localhost"), "leader: {text}");
    for node in ["rabbit1@localhost", "rabbit3@localhost"] {
        assert!(text.contains(node), "member {node}: {text}");
    }
    let before = c.ids(&dlq);
    assert_eq!(before.len(), N, "peeked through node 1, without --force");

    // The leader goes down while a peek holds every message unacked.
    let (ok, err) = leader_down_at(&c, "peek.read", &["peek", &dlq, "-n", "5000", "--json"]).await;
    eprintln!("peek with its leader gone: ok {ok}: {err}");
    c.settle(&dlq, N).await;
    let seen = census(&[c.ids(&dlq)]);
    assert_eq!(seen.len(), N, "every dead letter is still there");
    assert!(seen.values().all(|n| *n == 1), "none twice");

    // The leader goes down in the middle of a replay (a batch sent, its confirms due).
    let (ok, err) = leader_down_at(
        &c,
        "replay.sent",
        &["replay", &dlq, "--yes", "--batch", "100"],
    )
    .await;
    eprintln!("replay with its leader gone: ok {ok}: {err}");
    if !ok {
        assert!(err.contains("--resume"), "says how to go on: {err}");
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let (ok, _, err) = c.run(&["replay", "--resume", "--yes"]);
            if ok {
                break;
            }
            assert!(Instant::now() < deadline, "resume never succeeded: {err}");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    c.settle(&q, N).await;
    let seen = census(&[c.ids(&q), c.ids(&dlq)]);
    assert_eq!(seen.len(), N, "origin + DLQ = start");
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(twice.is_empty(), "twice: {twice:?}");
    assert!(c.ids(&dlq).is_empty(), "the resume finished the job");

    for name in [&q, &dlq] {
        let _ = reqwest::Client::new()
            .delete(format!("{}/api/queues/%2F/{name}", c.mgmt[0]))
            .basic_auth("guest", Some("guest"))
            .send()
            .await;
    }
}
