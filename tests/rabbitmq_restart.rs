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
use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::backend::{Backend, ConnectOptions, PeekRequest};
use mqscope::config::{Profile, Target};
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// Debian's wrappers refuse to run the server as root and switch rabbitmqctl to the
/// `rabbitmq` user; the real scripts live here.
const DEBIAN_BIN: &str = "/usr/lib/rabbitmq/bin";

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// A RabbitMQ node of this test's own, on loopback ports nobody else uses.
struct PrivateNode {
    node: String,
    dir: tempfile::TempDir,
    amqp_port: u16,
    mgmt_port: u16,
}

impl PrivateNode {
    /// Start the node and wait until it has booted; the reason, when this machine
    /// cannot run one.
    fn start() -> Result<PrivateNode, String> {
        let debian = Path::new(DEBIAN_BIN).join("rabbitmq-server").exists();
        let as_rabbitmq = debian && is_root();
        let dir = tempfile::Builder::new()
            .prefix("mqscope-test-node-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let (amqp_port, mgmt_port, dist_port) = (free_port(), free_port(), free_port());
        let node = format!("mqscope-test-restart-{}@localhost", std::process::id());
        let d = dir.path();
        let files = [
            (
                "rabbitmq.conf",
                format!("management.tcp.port = {mgmt_port}\nmanagement.tcp.ip = 127.0.0.1\n"),
            ),
            ("enabled_plugins", "[rabbitmq_management].\n".to_string()),
            ("rabbitmq-env.conf", String::new()),
        ];
        for (name, text) in files {
            std::fs::write(d.join(name), text).map_err(|e| format!("{name}: {e}"))?;
        }
        if as_rabbitmq {
            let out = Command::new("chown")
                .args(["-R", "rabbitmq"])
                .arg(d)
                .output();
            if !out.as_ref().is_ok_and(|o| o.status.success()) {
                return Err(format!("chown {}: {out:?}", d.display()));
            }
        }
        let mut cmd = if as_rabbitmq {
            let mut c = Command::new("su");
            c.args(["rabbitmq", "-s", "/bin/sh", "-c"])
                .arg(format!("{DEBIAN_BIN}/rabbitmq-server -detached"));
            c
        } else if debian {
            let mut c = Command::new(Path::new(DEBIAN_BIN).join("rabbitmq-server"));
            c.arg("-detached");
            c
        } else {
            let mut c = Command::new("rabbitmq-server");
            c.arg("-detached");
            c
        };
        let path = |name: &str| d.join(name).display().to_string();
        cmd.current_dir(d)
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1")
            .env("RABBITMQ_NODE_PORT", amqp_port.to_string())
            .env("RABBITMQ_DIST_PORT", dist_port.to_string())
            .env(
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}",
            )
            .env("RABBITMQ_MNESIA_BASE", path("mnesia"))
            .env("RABBITMQ_LOG_BASE", path("log"))
            .env("RABBITMQ_PID_FILE", path("pid"))
            .env("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf"))
            .env("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins"))
            .env("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf"));
        match cmd.output() {
            Ok(o) if o.status.success() => {}
            other => return Err(format!("rabbitmq-server -detached: {other:?}")),
        }
        let me = PrivateNode {
            node,
            dir,
            amqp_port,
            mgmt_port,
        };
        // -detached returns at once; the node registers with epmd a moment later.
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            if me.ctl(&["await_startup"]).is_ok() {
                return Ok(me);
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "node {} did not start within 90 s; its log is in {}",
                    me.node,
                    me.dir.path().join("log").display()
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// rabbitmqctl against this node only.
    fn ctl(&self, args: &[&str]) -> Result<Output, String> {
        let out = Command::new("rabbitmqctl")
            .args(["-q", "-n", &self.node])
            .args(args)
            .output()
            .map_err(|e| format!("rabbitmqctl: {e}"))?;
        if out.status.success() {
            Ok(out)
        } else {
            Err(format!(
                "rabbitmqctl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        }
    }

    fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    fn options(&self) -> ConnectOptions {
        let mut profile = Profile::default();
        profile.url = self.url();
        profile.management_url = Some(format!("http://127.0.0.1:{}", self.mgmt_port));
        ConnectOptions {
            profile: Some(profile),
            ..ConnectOptions::default()
        }
    }
}

impl Drop for PrivateNode {
    fn drop(&mut self) {
        // Stop the whole Erlang node, also when the test failed; then the directory goes.
        if self.ctl(&["stop"]).is_err()
            && let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid"))
        {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browse_session_recovers_after_a_broker_restart() {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let node = match tokio::task::spawn_blocking(PrivateNode::start)
        .await
        .expect("start task")
    {
        Ok(n) => n,
        Err(e) if ci => panic!("a private RabbitMQ node must start in CI: {e}"),
        Err(e) => return eprintln!("skipping: cannot start a private RabbitMQ node: {e}"),
    };
    let url = node.url();
    let Ok(Target::Amqp(target)) = Target::parse(&url) else {
        panic!("test URL")
    };
    // The management listener comes up a moment after AMQP.
    let deadline = Instant::now() + Duration::from_secs(60);
    let backend = loop {
        match RabbitBackend::connect(&target, &node.options()).await {
            Ok(b) => break b,
            Err(e) => {
                assert!(
                    Instant::now() < deadline,
                    "private node never answered: {e}"
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
    };
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
