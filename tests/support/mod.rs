//! A private RabbitMQ node for tests that would disturb a shared broker: a restart, a TLS
//! listener. Its own node name, loopback ports, configuration and data directory, from the
//! same RabbitMQ install as the shared broker; stopped when dropped, also after a failed
//! assertion. `brokers` lists the shared brokers of each RabbitMQ version to test against.

#![allow(dead_code)]

pub mod brokers;

use mqscope::backend::rabbitmq::RabbitBackend;
use mqscope::backend::{ConnectOptions, ConnectSettings};
use mqscope::config::Target;
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

/// Dead-letter the first `n` ready messages of `queue` as a failing consumer would: take
/// them on `ch` (the prefetch covers them all) and reject them together with one multiple
/// nack without requeue.
pub async fn dead_letter_first(ch: &lapin::Channel, queue: &str, n: usize) {
    use futures::StreamExt;
    use lapin::options::{BasicConsumeOptions, BasicNackOptions, BasicQosOptions};
    ch.basic_qos(u16::try_from(n).unwrap(), BasicQosOptions::default())
        .await
        .unwrap();
    let mut consumer = ch
        .basic_consume(
            queue.into(),
            "reject".into(),
            BasicConsumeOptions::default(),
            lapin::types::FieldTable::default(),
        )
        .await
        .unwrap();
    let mut last = 0;
    for _ in 0..n {
        last = consumer.next().await.unwrap().unwrap().delivery_tag;
    }
    let all = BasicNackOptions {
        multiple: true,
        requeue: false,
    };
    ch.basic_nack(last, all).await.unwrap();
}

/// `N` distinct free loopback ports (all held until all are chosen, so none repeats).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<std::net::TcpListener> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("a free loopback port"))
        .collect();
    std::array::from_fn(|i| {
        held[i]
            .local_addr()
            .map(|a| a.port())
            .expect("a bound port")
    })
}

/// Stop the nodes, and remove the directories, of test processes that are gone: a test
/// interrupted with Ctrl-C (or killed) never runs its `Drop`, and its detached node would
/// otherwise run on. Node names and directories carry the test process's id.
fn sweep_orphans() {
    let gone = |pid: &str| {
        !pid.is_empty()
            && pid.bytes().all(|b| b.is_ascii_digit())
            && pid != std::process::id().to_string()
            && !Path::new("/proc").join(pid).exists()
    };
    if let Ok(out) = Command::new("epmd").arg("-names").output() {
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            // "name mqscope-test-restart-1234 at port 40000"
            let Some(name) = line.split_whitespace().nth(1) else {
                continue;
            };
            if name.starts_with("mqscope-test-") && name.rsplit('-').next().is_some_and(gone) {
                let _ = Command::new("rabbitmqctl")
                    .args(["-q", "-n", &format!("{name}@localhost"), "stop"])
                    .output();
            }
        }
    }
    if let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // "mqscope-test-node-{pid}-{random}"
            if let Some(pid) = name
                .strip_prefix("mqscope-test-node-")
                .and_then(|rest| rest.split('-').next())
                && gone(pid)
            {
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
}

/// A RabbitMQ node of this test's own, on loopback ports nobody else uses.
pub struct PrivateNode {
    pub node: String,
    dir: tempfile::TempDir,
    pub amqp_port: u16,
    pub mgmt_port: u16,
    /// A free port for what `prepare` adds (a TLS listener), chosen with the node's own
    /// so it cannot be handed out twice.
    pub spare_port: u16,
}

impl PrivateNode {
    /// Start node `mqscope-test-{name}-{pid}` and wait until it has booted; the reason,
    /// when this machine cannot run one. `prepare` may add files to the node's directory
    /// and lines to its `rabbitmq.conf` (both paths given, and the spare port) before the
    /// node starts.
    pub fn start(
        name: &str,
        prepare: impl FnOnce(&Path, &Path, u16) -> Result<(), String>,
    ) -> Result<PrivateNode, String> {
        sweep_orphans();
        let debian = Path::new(DEBIAN_BIN).join("rabbitmq-server").exists();
        let as_rabbitmq = debian && is_root();
        let dir = tempfile::Builder::new()
            .prefix(&format!("mqscope-test-node-{}-", std::process::id()))
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let [amqp_port, mgmt_port, dist_port, spare_port] = free_ports();
        let node = format!("mqscope-test-{name}-{}@localhost", std::process::id());
        let d = dir.path();
        let files = [
            (
                "rabbitmq.conf",
                format!("management.tcp.port = {mgmt_port}\nmanagement.tcp.ip = 127.0.0.1\n"),
            ),
            ("enabled_plugins", "[rabbitmq_management].\n".to_string()),
            ("rabbitmq-env.conf", String::new()),
        ];
        std::fs::create_dir(d.join("conf.d")).map_err(|e| format!("conf.d: {e}"))?;
        for (name, text) in files {
            std::fs::write(d.join(name), text).map_err(|e| format!("{name}: {e}"))?;
        }
        prepare(d, &d.join("rabbitmq.conf"), spare_port)?;
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
            // Not the host's /etc/rabbitmq/conf.d: its listeners are the shared broker's.
            .env("RABBITMQ_CONFIG_FILES", path("conf.d"))
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
            spare_port,
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

    /// Start a node for a test, off the async runtime: None (the test skips, saying why)
    /// where this machine cannot run one, a panic under CI=true.
    pub async fn start_for_test(
        name: &'static str,
        prepare: impl FnOnce(&Path, &Path, u16) -> Result<(), String> + Send + 'static,
    ) -> Option<PrivateNode> {
        let started = tokio::task::spawn_blocking(move || PrivateNode::start(name, prepare))
            .await
            .expect("node start task");
        match started {
            Ok(n) => Some(n),
            Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
                panic!("a private RabbitMQ node must start in CI: {e}")
            }
            Err(e) => {
                eprintln!("skipping: cannot start a private RabbitMQ node: {e}");
                None
            }
        }
    }

    /// mqscope's backend on this node, once its management listener (which comes up a
    /// moment after AMQP) answers too.
    pub async fn backend(&self) -> RabbitBackend {
        let url = self.url();
        let Ok(Target::Amqp(target)) = Target::parse(&url) else {
            panic!("{url}")
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match RabbitBackend::connect(&target, &self.options()).await {
                Ok(b) => return b,
                Err(e) => {
                    assert!(
                        Instant::now() < deadline,
                        "private node never answered: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }

    /// The node's own directory (configuration, data, logs, and what `prepare` added).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// rabbitmqctl against this node only.
    pub fn ctl(&self, args: &[&str]) -> Result<Output, String> {
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

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.amqp_port)
    }

    pub fn options(&self) -> ConnectOptions {
        ConnectOptions {
            settings: ConnectSettings {
                management_url: Some(format!("http://127.0.0.1:{}", self.mgmt_port)),
                ..ConnectSettings::default()
            },
            ..ConnectOptions::default()
        }
    }
}

impl Drop for PrivateNode {
    fn drop(&mut self) {
        // Stop the whole Erlang node, also when the test failed; then the directory goes.
        if self.ctl(&["stop"]).is_err()
            && let Ok(pid) = std::fs::read_to_string(self.dir.path().join("pid"))
            // Only if that process is still this node, not a reused pid.
            && std::fs::read(format!("/proc/{}/cmdline", pid.trim()))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&self.node))
        {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
    }
}
