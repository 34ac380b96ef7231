//! A private RabbitMQ node for tests that would disturb a shared broker: a restart, a TLS
//! listener. Its own node name, loopback ports, configuration and data directory, from the
//! same RabbitMQ install as the shared broker (3.10), or from the Debian root of
//! scripts/rabbitmq-versions under chroot (4.0, 4.3); stopped when dropped, also after a
//! failed assertion. `brokers` lists the shared brokers of each RabbitMQ version to test against.

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

/// A management API resource as JSON, read as guest: `url` is the whole address. An error
/// status is returned as its JSON body (`{"error": "Object Not Found", …}`), not a panic.
pub async fn api_json(url: &str) -> serde_json::Value {
    reqwest::Client::new()
        .get(url)
        .basic_auth("guest", Some("guest"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
        .json()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: not JSON: {e}"))
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

/// Whether process `pid` is a RabbitMQ node whose name starts with `node` (not a reused
/// pid): 3.10 names it on its command line, 4.x only in its environment.
fn runs_node(pid: &str, node: &str) -> bool {
    ["cmdline", "environ"].iter().any(|f| {
        std::fs::read(format!("/proc/{pid}/{f}"))
            .is_ok_and(|c| String::from_utf8_lossy(&c).contains(node))
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
    // The 4.x nodes run in the Debian roots, each with an epmd of its own the listing above
    // does not reach: their directories there say which server process to end.
    let cache =
        std::env::var("MQSCOPE_TEST_CACHE").unwrap_or_else(|_| "/var/cache/mqscope-test".into());
    let dirs = ["4.0", "4.3"]
        .map(|v| Path::new(&cache).join(format!("rabbitmq-{v}/var/lib/mqscope")))
        .into_iter()
        .chain([std::env::temp_dir()]);
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            // "mqscope-test-node-{pid}-{random}"
            if let Some(pid) = name
                .strip_prefix("mqscope-test-node-")
                .and_then(|rest| rest.split('-').next())
                && gone(pid)
            {
                if let Ok(server) = std::fs::read_to_string(e.path().join("pid"))
                    && runs_node(server.trim(), "mqscope-test-")
                {
                    let _ = Command::new("kill").arg(server.trim()).output();
                    // Gone before its directory goes: a node shutting down still writes there.
                    let proc = Path::new("/proc").join(server.trim());
                    for _ in 0..100 {
                        if !proc.exists() {
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(100));
                    }
                }
                let _ = std::fs::remove_dir_all(e.path());
            }
        }
    }
    // A chrooted node's epmd is its own and outlives the node; it carries the node's name
    // in its environment. Never one outside a root: the machine's epmd serves the shared
    // broker, whichever node started it.
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return;
    };
    for p in procs.flatten() {
        let orphan = std::fs::read_to_string(p.path().join("comm"))
            .is_ok_and(|c| c.trim() == "epmd")
            && std::fs::read_link(p.path().join("root")).is_ok_and(|r| r != Path::new("/"))
            && std::fs::read(p.path().join("environ")).is_ok_and(|env| {
                String::from_utf8_lossy(&env).split('\0').any(|v| {
                    v.strip_prefix("RABBITMQ_NODENAME=mqscope-test-")
                        .and_then(|n| n.split('@').next())
                        .and_then(|n| n.rsplit('-').next())
                        .is_some_and(gone)
                })
            });
        if orphan {
            let _ = Command::new("kill").arg(p.file_name()).output();
        }
    }
}

/// A Debian root of `scripts/rabbitmq-versions` (RabbitMQ 4.0 or 4.3, too new for this
/// machine's libc), its nodes run under chroot as the root's `rabbitmq` user.
struct Chroot {
    root: std::path::PathBuf,
    /// The root's `rabbitmq` user as `uid:gid`.
    ids: String,
    /// An epmd of the node's own: its name never meets the shared 4.x nodes'.
    epmd_port: u16,
}

impl Chroot {
    /// The root of `version`, if scripts/rabbitmq-versions made it and prepared it to run
    /// nodes (its /proc mounted, its Erlang cookie written: `start 4.3` does both).
    fn of(version: &str) -> Result<Chroot, String> {
        let cache = std::env::var("MQSCOPE_TEST_CACHE")
            .unwrap_or_else(|_| "/var/cache/mqscope-test".into());
        let root = Path::new(&cache).join(format!("rabbitmq-{version}"));
        let ready = root.join(".mqscope-ready").exists()
            && root.join("proc/self").exists()
            && root.join("var/lib/rabbitmq/.erlang.cookie").exists();
        if !ready || !is_root() {
            return Err(format!(
                "no RabbitMQ {version} root ready to run a node at {} (as root: scripts/rabbitmq-versions start {version})",
                root.display()
            ));
        }
        let passwd = std::fs::read_to_string(root.join("etc/passwd"))
            .map_err(|e| format!("{}: {e}", root.display()))?;
        let ids = passwd
            .lines()
            .find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.len() > 3 && f[0] == "rabbitmq").then(|| format!("{}:{}", f[2], f[3]))
            })
            .ok_or_else(|| format!("no rabbitmq user in {}", root.display()))?;
        let [epmd_port] = free_ports();
        Ok(Chroot {
            root,
            ids,
            epmd_port,
        })
    }

    /// `program` run in the root as its rabbitmq user with nothing but `env`.
    fn command(&self, program: &str, env: &[(String, String)]) -> Command {
        let gid = self.ids.split(':').nth(1).unwrap_or_default();
        let mut c = Command::new("chroot");
        c.arg(format!("--userspec={}", self.ids))
            .arg(format!("--groups={gid}"))
            .arg(&self.root)
            .args(["/usr/bin/env", "-i"]);
        let own = [
            ("HOME", "/var/lib/rabbitmq".to_string()),
            ("PATH", "/usr/sbin:/usr/bin:/sbin:/bin".into()),
            ("LANG", "C.UTF-8".into()),
            ("LC_ALL", "C.UTF-8".into()),
            ("ERL_EPMD_PORT", self.epmd_port.to_string()),
            ("ERL_EPMD_ADDRESS", "127.0.0.1".into()),
        ];
        for (k, v) in own.iter().map(|(k, v)| (*k, v.as_str())) {
            c.arg(format!("{k}={v}"));
        }
        for (k, v) in env {
            c.arg(format!("{k}={v}"));
        }
        c.arg(program);
        c
    }

    /// A path inside the root, as the chrooted node sees it.
    fn inside(&self, path: &Path) -> String {
        Path::new("/")
            .join(path.strip_prefix(&self.root).unwrap_or(path))
            .display()
            .to_string()
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
    /// Where a 4.x node runs; None for the machine's own RabbitMQ.
    chroot: Option<Chroot>,
    /// The environment rabbitmqctl needs for a chrooted node (its paths and ports).
    env: Vec<(String, String)>,
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
        Self::start_version("3.10", name, prepare)
    }

    /// [`Self::start`] on RabbitMQ `version`: "3.10" is the machine's own install, "4.0"
    /// and "4.3" the Debian roots of scripts/rabbitmq-versions.
    pub fn start_version(
        version: &str,
        name: &str,
        prepare: impl FnOnce(&Path, &Path, u16) -> Result<(), String>,
    ) -> Result<PrivateNode, String> {
        sweep_orphans();
        let chroot = match version {
            "3.10" => None,
            v => Some(Chroot::of(v)?),
        };
        let debian = Path::new(DEBIAN_BIN).join("rabbitmq-server").exists();
        let as_rabbitmq = debian && is_root() && chroot.is_none();
        let prefix = format!("mqscope-test-node-{}-", std::process::id());
        let dir = match &chroot {
            // Inside the root, where the chrooted node can reach it.
            Some(c) => tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(c.root.join("var/lib/mqscope"))
                .map_err(|e| format!("node dir in {}: {e}", c.root.display()))?,
            None => tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir()
                .map_err(|e| format!("temp dir: {e}"))?,
        };
        let [amqp_port, mgmt_port, dist_port, spare_port] = free_ports();
        let node = format!("mqscope-test-{name}-{}@localhost", std::process::id());
        let d = dir.path();
        // 4.x nodes are reached from outside their root: guest may log in from there.
        let loopback = if chroot.is_some() {
            "loopback_users = none\n"
        } else {
            ""
        };
        let files = [
            (
                "rabbitmq.conf",
                format!(
                    "management.tcp.port = {mgmt_port}\nmanagement.tcp.ip = 127.0.0.1\n{loopback}"
                ),
            ),
            ("enabled_plugins", "[rabbitmq_management].\n".to_string()),
            ("rabbitmq-env.conf", String::new()),
        ];
        std::fs::create_dir(d.join("conf.d")).map_err(|e| format!("conf.d: {e}"))?;
        for (name, text) in files {
            std::fs::write(d.join(name), text).map_err(|e| format!("{name}: {e}"))?;
        }
        prepare(d, &d.join("rabbitmq.conf"), spare_port)?;
        let owner = match &chroot {
            Some(c) => Some(c.ids.clone()),
            None => as_rabbitmq.then(|| "rabbitmq".to_string()),
        };
        if let Some(owner) = owner {
            let out = Command::new("chown").args(["-R", &owner]).arg(d).output();
            if !out.as_ref().is_ok_and(|o| o.status.success()) {
                return Err(format!("chown {}: {out:?}", d.display()));
            }
        }
        let path = |name: &str| match &chroot {
            Some(c) => c.inside(&d.join(name)),
            None => d.join(name).display().to_string(),
        };
        let env: Vec<(String, String)> = [
            ("RABBITMQ_NODENAME", node.clone()),
            ("RABBITMQ_NODE_IP_ADDRESS", "127.0.0.1".into()),
            ("RABBITMQ_NODE_PORT", amqp_port.to_string()),
            ("RABBITMQ_DIST_PORT", dist_port.to_string()),
            (
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS",
                "-kernel inet_dist_use_interface {127,0,0,1}".into(),
            ),
            ("RABBITMQ_MNESIA_BASE", path("mnesia")),
            ("RABBITMQ_LOG_BASE", path("log")),
            ("RABBITMQ_PID_FILE", path("pid")),
            ("RABBITMQ_CONFIG_FILE", path("rabbitmq.conf")),
            // Not the host's /etc/rabbitmq/conf.d: its listeners are the shared broker's.
            ("RABBITMQ_CONFIG_FILES", path("conf.d")),
            ("RABBITMQ_ADVANCED_CONFIG_FILE", path("advanced.config")),
            ("RABBITMQ_ENABLED_PLUGINS_FILE", path("enabled_plugins")),
            ("RABBITMQ_CONF_ENV_FILE", path("rabbitmq-env.conf")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let mut cmd = if let Some(c) = &chroot {
            let mut c = c.command(&format!("{DEBIAN_BIN}/rabbitmq-server"), &env);
            c.arg("-detached");
            c
        } else if as_rabbitmq {
            let mut c = Command::new("su");
            c.args(["rabbitmq", "-s", "/bin/sh", "-c"])
                .arg(format!("{DEBIAN_BIN}/rabbitmq-server -detached"));
            c
        } else {
            let server = if debian {
                Path::new(DEBIAN_BIN).join("rabbitmq-server")
            } else {
                "rabbitmq-server".into()
            };
            let mut c = Command::new(server);
            c.arg("-detached");
            c
        };
        cmd.current_dir(d);
        if chroot.is_none() {
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
        }
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
            chroot,
            env,
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
        Self::start_version_for_test("3.10", name, prepare).await
    }

    /// [`Self::start_for_test`] on RabbitMQ `version`. A 4.x node is required under CI=true
    /// only when that version's shared broker is part of the run
    /// (`MQSCOPE_TEST_RABBITMQ_4_3_AMQP` and the like, from `scripts/rabbitmq-versions env`).
    pub async fn start_version_for_test(
        version: &'static str,
        name: &'static str,
        prepare: impl FnOnce(&Path, &Path, u16) -> Result<(), String> + Send + 'static,
    ) -> Option<PrivateNode> {
        let started =
            tokio::task::spawn_blocking(move || PrivateNode::start_version(version, name, prepare))
                .await
                .expect("node start task");
        let expected = version == "3.10"
            || std::env::var(format!(
                "MQSCOPE_TEST_RABBITMQ_{}_AMQP",
                version.replace('.', "_")
            ))
            .is_ok_and(|v| !v.is_empty());
        match started {
            Ok(n) => Some(n),
            Err(e) if expected && std::env::var("CI").as_deref() == Ok("true") => {
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
        let mut ctl = match &self.chroot {
            Some(c) => c.command(&format!("{DEBIAN_BIN}/rabbitmqctl"), &self.env),
            None => Command::new("rabbitmqctl"),
        };
        let out = ctl
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
            && runs_node(pid.trim(), &self.node)
        {
            let _ = Command::new("kill").arg(pid.trim()).output();
        }
        // A chrooted node's epmd is its own: it goes with the node.
        if let Some(c) = &self.chroot {
            let _ = c.command("epmd", &[]).arg("-kill").output();
        }
    }
}
