//! Passwords under faults (issue 14), against the real binary: a user named without a
//! password is never logged in with a made-up one ("guest"), no error shows a password,
//! and a password command that hangs is killed with everything it started. A fake AMQP
//! server writes down what each login sends.

use assert_cmd::Command;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The binary with no user config or environment leaking in.
fn mqscope(home: &tempfile::TempDir) -> Command {
    let mut c = Command::cargo_bin("mqscope").unwrap();
    c.env("XDG_CONFIG_HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env_remove("MQSCOPE_URL")
        .env_remove("MQSCOPE_PROFILE")
        .env_remove("MQSCOPE_CONFIG")
        .env_remove("MQSCOPE_PASSWORD")
        .env_remove("RUST_BACKTRACE")
        // A run that hangs fails the test instead of holding it up.
        .timeout(Duration::from_secs(30));
    c
}

/// Write the config file that `mqscope(home)` reads.
fn config(home: &tempfile::TempDir, text: &str) {
    let dir = home.path().join("mqscope");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("config.toml"), text).unwrap();
}

/// A server that greets like RabbitMQ, writes down the SASL PLAIN response of every
/// login (`\0user\0password`), and hangs up before the login is answered.
struct FakeAmqp {
    port: u16,
    logins: Arc<Mutex<Vec<String>>>,
}

impl FakeAmqp {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let logins: Arc<Mutex<Vec<String>>> = Arc::default();
        let seen = Arc::clone(&logins);
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                if let Ok(Some(response)) = read_login(conn) {
                    seen.lock().unwrap().push(response);
                }
            }
        });
        Self { port, logins }
    }

    /// The logins sent since the last call.
    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.logins.lock().unwrap())
    }
}

/// connection.start, written by hand: frame type 1 on channel 0; class 10 method 10,
/// version 0-9, an empty server-properties table, the mechanisms and the locales.
fn connection_start() -> Vec<u8> {
    let mut p = Vec::new();
    p.extend(10u16.to_be_bytes());
    p.extend(10u16.to_be_bytes());
    p.extend([0u8, 9]);
    p.extend(0u32.to_be_bytes());
    for s in ["PLAIN AMQPLAIN", "en_US"] {
        p.extend((s.len() as u32).to_be_bytes());
        p.extend(s.as_bytes());
    }
    let mut f = vec![1u8, 0, 0];
    f.extend((p.len() as u32).to_be_bytes());
    f.extend(p);
    f.push(0xCE);
    f
}

fn be32(b: &[u8]) -> usize {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
}

/// The SASL response of connection.start-ok (class 10 method 11: client-properties
/// table, mechanism short string, response long string, locale), with NULs shown as `\0`.
fn read_login(mut c: TcpStream) -> std::io::Result<Option<String>> {
    c.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut header = [0u8; 8];
    c.read_exact(&mut header)?;
    if &header != b"AMQP\0\0\x09\x01" {
        return Ok(None);
    }
    c.write_all(&connection_start())?;
    let mut head = [0u8; 7];
    c.read_exact(&mut head)?;
    let mut p = vec![0u8; be32(&head[3..]) + 1];
    c.read_exact(&mut p)?;
    if head[0] != 1 || p[..4] != [0, 10, 0, 11] {
        return Ok(None);
    }
    let mut at = 4;
    at += 4 + be32(&p[at..]);
    at += 1 + p[at] as usize;
    let len = be32(&p[at..]);
    at += 4;
    let response = String::from_utf8_lossy(&p[at..at + len]).replace('\0', "\\0");
    Ok(Some(response))
}

/// An environment variable a case sets.
type Env = Option<(&'static str, &'static str)>;

/// Publishing needs AMQP alone, so the fake server is all a run talks to.
const PUBLISH: [&str; 5] = ["publish", "--body", "x", "--queue", "q"];

#[test]
fn a_user_named_without_a_password_is_never_logged_in_with_a_made_up_one() {
    let server = FakeAmqp::start();
    let port = server.port;
    let home = tempfile::tempdir().unwrap();
    let at = format!("127.0.0.1:{port}/x");
    config(
        &home,
        &format!(
            r#"
[profiles.user-only]
url = "amqp://{at}"
user = "ops"
[profiles.empty-env]
url = "amqp://{at}"
user = "ops"
password_env = "MQSCOPE_TEST_EMPTY_PW"
[profiles.silent-command]
url = "amqp://{at}"
user = "ops"
password_command = "true"
"#
        ),
    );
    let url = |u: &str| vec!["--url".to_string(), format!("amqp://{u}@{at}")];
    let profile = |p: &str| vec!["--profile".to_string(), p.to_string()];
    let cases: Vec<(&str, Vec<String>, Env, &str)> = vec![
        ("user in the URL", url("ops"), None, "none given"),
        ("user and ':' in the URL", url("guest:"), None, "none given"),
        (
            "empty MQSCOPE_PASSWORD",
            url("ops"),
            Some(("MQSCOPE_PASSWORD", "")),
            "MQSCOPE_PASSWORD is empty",
        ),
        (
            "profile user only",
            profile("user-only"),
            None,
            "none given",
        ),
        (
            "empty password_env",
            profile("empty-env"),
            Some(("MQSCOPE_TEST_EMPTY_PW", "")),
            "$MQSCOPE_TEST_EMPTY_PW (password_env) is empty",
        ),
        (
            "password_command printing nothing",
            profile("silent-command"),
            None,
            "password_command printed nothing",
        ),
    ];
    for (what, args, env, why) in cases {
        let mut cmd = mqscope(&home);
        cmd.args(PUBLISH).args(&args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        // Not a terminal: nobody to ask, so a clear error instead.
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            server.take(),
            Vec::<String>::new(),
            "{what}: a login was sent"
        );
        assert_eq!(out.status.code(), Some(1), "{what}: {err}");
        assert_eq!(err.trim_end().lines().count(), 1, "{what}: {err}");
        for needed in [
            "no password for user",
            why,
            "MQSCOPE_PASSWORD",
            "password_env",
            "password_command",
            "the URL",
        ] {
            assert!(err.contains(needed), "{what}: no \"{needed}\" in {err}");
        }
    }
}

#[test]
fn the_password_given_is_the_password_sent_and_no_user_is_still_guest() {
    let server = FakeAmqp::start();
    let port = server.port;
    let home = tempfile::tempdir().unwrap();
    let at = format!("127.0.0.1:{port}/x");
    config(
        &home,
        &format!(
            r#"
[profiles.command]
url = "amqp://{at}"
user = "ops"
password_command = "echo FromCmd2"
[profiles.env]
url = "amqp://{at}"
user = "ops"
password_env = "MQSCOPE_TEST_PW"
"#
        ),
    );
    let cases: Vec<(Vec<String>, Env, &str)> = vec![
        // No user named at all: RabbitMQ's guest/guest, as before.
        (vec![format!("--url=amqp://{at}")], None, "\\0guest\\0guest"),
        (
            vec![format!("--url=amqp://guest:guest@{at}")],
            None,
            "\\0guest\\0guest",
        ),
        (
            vec![format!("--url=amqp://ops:Op%40s1@{at}")],
            None,
            "\\0ops\\0Op@s1",
        ),
        (
            vec![format!("--url=amqp://ops@{at}")],
            Some(("MQSCOPE_PASSWORD", "FromEnv1")),
            "\\0ops\\0FromEnv1",
        ),
        (vec!["--profile=command".into()], None, "\\0ops\\0FromCmd2"),
        (
            vec!["--profile=env".into()],
            Some(("MQSCOPE_TEST_PW", "FromVar3")),
            "\\0ops\\0FromVar3",
        ),
    ];
    for (args, env, sent) in cases {
        let mut cmd = mqscope(&home);
        cmd.args(PUBLISH).args(&args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(1), "the fake server hangs up");
        let logins = server.take();
        assert!(!logins.is_empty(), "{args:?}: no login reached the server");
        assert!(logins.iter().all(|l| l == sent), "{args:?}: {logins:?}");
    }
}

/// The shared broker's management API, when it runs (scripts/test starts it).
fn management_api() -> Option<&'static str> {
    let addr = "127.0.0.1:15672";
    let up = TcpStream::connect_timeout(&addr.parse().ok()?, Duration::from_secs(2)).is_ok();
    if !up && std::env::var("CI").as_deref() == Ok("true") {
        panic!("no RabbitMQ management API at {addr}");
    }
    up.then_some("http://127.0.0.1:15672")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_without_a_password_is_not_blamed_on_tags() {
    use mqscope::backend::ConnectOptions;
    use mqscope::backend::rabbitmq::RabbitBackend;
    use mqscope::backend::rabbitmq::mgmt::Mgmt;
    use mqscope::config::Target;
    let Some(api) = management_api() else { return };
    let e = Mgmt::new(api, "guest", None, false)
        .unwrap()
        .check_login()
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("no password was given"), "{e}");
    assert!(!e.contains("tag"), "{e}");
    // And the backend does not get that far: it sends no made-up password, over AMQP or
    // HTTP, for a user named without one.
    let Ok(Target::Amqp(mut t)) = Target::parse("amqp://guest:guest@127.0.0.1:5672/%2f") else {
        panic!()
    };
    t.password = None;
    let e = match RabbitBackend::connect(&t, &ConnectOptions::default()).await {
        Ok(_) => panic!("connected with no password"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("no password for user \"guest\""), "{e}");
    assert!(!e.contains("tag"), "{e}");
}

#[test]
fn no_error_shows_a_password() {
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().display().to_string();
    config(
        &home,
        r#"
[profiles.mgmt-creds]
url = "amqp://guest:guest@127.0.0.1:5672/%2f"
management_url = "http://guest:Mg9Secret@127.0.0.1:1"
"#,
    );
    let other = |name: &str, text: &str| {
        let path = format!("{dir}/{name}.toml");
        std::fs::write(&path, text).unwrap();
        path
    };
    let bad_mgmt = other(
        "bad-mgmt",
        "[profiles.p]\nurl = \"amqp://127.0.0.1/\"\nmanagement_url = \"http://guest:Mg8Secret@[::1\"\n",
    );
    let bad_url = other(
        "bad-url",
        "[profiles.p]\nurl = \"amqp://guest:Cf%Secret7@127.0.0.1/\"\n",
    );
    let plain = other(
        "plain",
        "[profiles.p]\nurl = \"amqp://127.0.0.1/\"\npassword = \"Pl2Secret\"\n",
    );
    let failing_command = other(
        "failing-command",
        "[profiles.p]\nurl = \"amqp://127.0.0.1:1/\"\nuser = \"ops\"\npassword_command = \"echo Pc6Secret; exit 3\"\n",
    );
    let slow_command = other(
        "slow-command",
        "[profiles.p]\nurl = \"amqp://127.0.0.1:1/\"\nuser = \"ops\"\npassword_command = \"echo Pc7Secret; sleep 30\"\npassword_command_timeout = \"300ms\"\n",
    );
    let kafka_sasl = other(
        "kafka-sasl",
        "[profiles.p]\nurl = \"kafka://127.0.0.1:1\"\nuser = \"ops\"\npassword_command = \"echo Kf5Secret\"\nkafka = { \"security.protocol\" = \"SASL_PLAINTEXT\", \"sasl.mechanism\" = \"PLAIN\" }\n",
    );
    let url = |u: &str| vec!["queues".to_string(), "--url".into(), u.to_string()];
    let with = |file: &str| {
        vec![
            "queues".to_string(),
            "--config".into(),
            file.to_string(),
            "--profile".into(),
            "p".into(),
        ]
    };
    let cases: Vec<(&str, Vec<String>, Env)> = vec![
        ("Sec9", url("amqp://guest:Zq%Sec9@127.0.0.1/"), None),
        ("Pw4Secret", url("amqp://Us%zz:Pw4Secret@127.0.0.1/"), None),
        (
            "Pq8Secret",
            url("amqp://guest:Pq8Secret@127.0.0.1:notaport/"),
            None,
        ),
        (
            "Pq8Secret",
            url("amqp://guest:4242?Pq8Secret@127.0.0.1/"),
            None,
        ),
        (
            "Pq8Secret",
            url("amqp://guest:12/Pq8Secret@127.0.0.1"),
            None,
        ),
        (
            "Pq8Secret",
            url("amqp://guest:12#Pq8Secret@127.0.0.1/"),
            None,
        ),
        (
            "Uh5Secret",
            url("amqp://guest:Uh5Secret@127.0.0.1:1/"),
            None,
        ),
        (
            "Uh5Secret",
            url("amqps://guest:Uh5Secret@127.0.0.1:1/"),
            None,
        ),
        (
            "Wr0ngSecret",
            url("amqp://guest:Wr0ngSecret@127.0.0.1:5672/"),
            None,
        ),
        (
            "Kf4Secret",
            url("kafka://ops:Kf4Secret@127.0.0.1:9092"),
            None,
        ),
        (
            "Mg9Secret",
            vec!["queues".into(), "--profile".into(), "mgmt-creds".into()],
            None,
        ),
        ("Mg8Secret", with(&bad_mgmt), None),
        ("Secret7", with(&bad_url), None),
        ("Pl2Secret", with(&plain), None),
        ("Pc6Secret", with(&failing_command), None),
        ("Pc7Secret", with(&slow_command), None),
        ("Kf5Secret", with(&kafka_sasl), None),
        (
            "Hx2Secret",
            vec!["--help".into()],
            Some(("MQSCOPE_URL", "amqp://guest:Hx2Secret@127.0.0.1:1/")),
        ),
        (
            "Hx3Secret",
            vec!["queues".into()],
            Some(("MQSCOPE_URL", "amqp://guest:Hx3Secret@127.0.0.1:1/")),
        ),
    ];
    // Every case is run, and every leak listed at the end.
    let mut leaks = Vec::new();
    for (secret, args, env) in cases {
        let mut cmd = mqscope(&home);
        cmd.args(&args);
        if let Some((k, v)) = env {
            cmd.env(k, v);
        }
        let out = cmd.output().unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if all.contains(secret) {
            leaks.push(format!("{args:?} {env:?} showed {secret}: {all}"));
        }
        if args != ["--help"] {
            assert_eq!(out.status.code(), Some(1), "{args:?}: {all}");
        }
    }
    assert!(leaks.is_empty(), "{}", leaks.join("\n"));
}

/// Whether a process runs (a zombie has finished: it only waits to be reaped).
fn alive(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, rest)| !rest.starts_with('Z')))
        .unwrap_or(false)
}

/// The processes still running in process group `pgid`.
fn in_group(pgid: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let pid = e.file_name().to_string_lossy().into_owned();
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(") ") else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.len() > 2 && f[2] == pgid && f[0] != "Z" {
            found.push(pid);
        }
    }
    found
}

/// The pids a password command wrote to `file` (the shell's own first), killed on drop
/// so that a failing test leaves no `sleep 60` behind.
struct Pids(PathBuf);

impl Pids {
    fn read(&self) -> Vec<String> {
        std::fs::read_to_string(&self.0)
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    /// Wait until every process it names, and the shell's process group, is gone.
    fn all_gone_within(&self, limit: Duration) -> Result<(), String> {
        let pids = self.read();
        assert!(pids.len() >= 2, "the command wrote {pids:?}");
        let started = Instant::now();
        loop {
            let left: Vec<String> = pids
                .iter()
                .filter(|p| alive(p))
                .cloned()
                .chain(in_group(&pids[0]))
                .collect();
            if left.is_empty() {
                return Ok(());
            }
            if started.elapsed() > limit {
                return Err(format!("still running: {left:?}"));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Pids {
    fn drop(&mut self) {
        for pid in self.read() {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

/// A profile whose password command writes its shell's pid and its background
/// `sleep 60`'s to `pids.txt` (whole, via a rename), then does `then`.
fn command_profile(home: &tempfile::TempDir, port: u16, then: &str, extra: &str) -> Pids {
    let pids = home.path().join("pids.txt");
    let tmp = home.path().join("pids.tmp");
    let (p, t) = (pids.display(), tmp.display());
    config(
        home,
        &format!(
            r#"
[profiles.p]
url = "amqp://127.0.0.1:{port}/x"
user = "ops"
password_command = "sleep 60 & echo $$ $! > {t}; mv {t} {p}; {then}"
{extra}
"#
        ),
    );
    Pids(pids)
}

fn wait_for(path: &Path, limit: Duration) {
    let started = Instant::now();
    while !path.exists() {
        assert!(
            started.elapsed() < limit,
            "{} never appeared",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_hanging_password_command_is_killed_with_its_group_at_the_timeout() {
    let server = FakeAmqp::start();
    let home = tempfile::tempdir().unwrap();
    // No timeout in the profile: the default, 5 s.
    let pids = command_profile(&home, server.port, "wait", "");
    let started = Instant::now();
    let out = mqscope(&home)
        .args(PUBLISH)
        .args(["--profile", "p"])
        .output()
        .unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("password_command did not finish within 5 s (killed)"),
        "{err}"
    );
    assert!(
        took >= Duration::from_secs(5) && took < Duration::from_secs(15),
        "{took:?}"
    );
    pids.all_gone_within(Duration::from_secs(2)).unwrap();
    assert_eq!(server.take(), Vec::<String>::new());

    // A profile's own timeout, shorter.
    let pids = command_profile(
        &home,
        server.port,
        "wait",
        "password_command_timeout = \"1500ms\"",
    );
    let started = Instant::now();
    let out = mqscope(&home)
        .args(PUBLISH)
        .args(["--profile", "p"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("password_command did not finish within 1500 ms (killed)"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    pids.all_gone_within(Duration::from_secs(2)).unwrap();
}

#[test]
fn a_password_command_is_done_when_it_exits_and_what_it_left_running_is_killed() {
    let server = FakeAmqp::start();
    let home = tempfile::tempdir().unwrap();
    // The background sleep holds the command's output open for a minute: the password
    // is what the command printed by the time it exited.
    let pids = command_profile(&home, server.port, "echo Gc3Pass", "");
    let started = Instant::now();
    let out = mqscope(&home)
        .args(PUBLISH)
        .args(["--profile", "p"])
        .output()
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.status.code(), Some(1), "the fake server hangs up");
    assert_eq!(server.take(), vec!["\\0ops\\0Gc3Pass".to_string()]);
    pids.all_gone_within(Duration::from_secs(2)).unwrap();
}

#[test]
fn interrupting_mqscope_kills_its_password_command() {
    let server = FakeAmqp::start();
    let home = tempfile::tempdir().unwrap();
    // The default timeout (5 s) is longer than mqscope may take to go after SIGINT.
    let pids = command_profile(&home, server.port, "wait", "");
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("mqscope"))
        .env("XDG_CONFIG_HOME", home.path())
        .env("XDG_STATE_HOME", home.path())
        .env_remove("MQSCOPE_URL")
        .env_remove("MQSCOPE_PASSWORD")
        .args(PUBLISH)
        .args(["--profile", "p"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_for(&pids.0, Duration::from_secs(10));
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(2) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.is_some(), "mqscope still ran 2 s after SIGINT");
    pids.all_gone_within(Duration::from_secs(2)).unwrap();
    assert_eq!(server.take(), Vec::<String>::new());
}

/// tmux, to give mqscope a real terminal; `None` (the test skips) without it, outside CI.
fn tmux(args: &[&str]) -> Option<String> {
    match std::process::Command::new("tmux").args(args).output() {
        Ok(out) => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        Err(_) if std::env::var("CI").is_err() => None,
        Err(e) => panic!("tmux is required for this test in CI: {e}"),
    }
}

/// The tmux session, killed on drop.
struct Session(String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = tmux(&["kill-session", "-t", &self.0]);
    }
}

impl Session {
    fn wait_for(&self, what: &str) -> String {
        let started = Instant::now();
        loop {
            let screen = tmux(&["capture-pane", "-p", "-t", &self.0]).unwrap_or_default();
            if screen.contains(what) {
                return screen;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no {what:?} on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn at_a_terminal_the_password_is_asked_for_without_echo() {
    if tmux(&["-V"]).is_none() {
        eprintln!("skipping: tmux is not installed");
        return;
    }
    let server = FakeAmqp::start();
    let home = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_mqscope");
    let name = format!("mqscope-password-{}", std::process::id());
    let script = format!(
        "unset MQSCOPE_PASSWORD MQSCOPE_URL MQSCOPE_PROFILE; XDG_CONFIG_HOME='{}' '{bin}' publish --body x --queue q --url amqp://ops@127.0.0.1:{}/x; echo MQSCOPE_EXITED; stty -a | tr ' ' '\\n' | grep -x -e echo -e -echo; sleep 60",
        home.path().display(),
        server.port
    );
    tmux(&[
        "new-session",
        "-d",
        "-s",
        &name,
        "-x",
        "120",
        "-y",
        "20",
        "sh",
        "-c",
        &script,
    ]);
    let s = Session(name);
    s.wait_for("Password for amqp://ops@127.0.0.1");
    tmux(&["send-keys", "-t", &s.0, "-l", "Typed5Pw"]);
    tmux(&["send-keys", "-t", &s.0, "Enter"]);
    let screen = s.wait_for("MQSCOPE_EXITED");
    assert_eq!(server.take(), vec!["\\0ops\\0Typed5Pw".to_string()]);
    assert!(!screen.contains("Typed5Pw"), "echoed:\n{screen}");
    let after = s.wait_for("echo");
    assert!(
        !after.contains("-echo"),
        "the terminal was left without echo:\n{after}"
    );
}
