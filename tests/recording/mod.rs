//! A recording run in the background for the recorder's tests, on any backend: started
//! (tapping once it says so), waited on, stopped; every event it reported kept. And the
//! `mqscope record` binary as a process of its own, its output read as it comes.

#![allow(dead_code)]

use mqscope::backend::Backend;
use mqscope::model::envelope::{Envelope, EventKind};
use mqscope::ops::record::{RecordEvent, RecordOptions, Status, Store, record};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Running {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<Status, String>>,
    events: Arc<Mutex<Vec<RecordEvent>>>,
}

impl Running {
    /// Record from `backend` into `db` until stopped; returns once it is tapping.
    pub async fn start(backend: impl Backend + 'static, db: &Path, opts: RecordOptions) -> Running {
        let store = Store::open(db).unwrap();
        let events = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let seen = Arc::clone(&events);
        let task = tokio::spawn(async move {
            let on = move |e: RecordEvent| seen.lock().unwrap().push(e);
            let r = record(&backend, store, &opts, &on, async {
                let _ = stopped.await;
            })
            .await
            .map_err(|e| e.to_string());
            backend.close().await;
            r
        });
        let run = Running { stop, task, events };
        run.wait_for("tapping", |e| matches!(e, RecordEvent::Tapping { .. }))
            .await;
        run
    }

    /// Wait (up to 20 s) for an event `want` accepts.
    pub async fn wait_for(&self, what: &str, want: impl Fn(&RecordEvent) -> bool) {
        for _ in 0..400 {
            if self.events.lock().unwrap().iter().any(&want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {what} within 20 s: {:?}", self.events.lock().unwrap());
    }

    /// Wait for a status saying at least `n` envelopes are stored.
    pub async fn wait_stored(&self, n: u64) {
        self.wait_for(
            &format!("{n} stored"),
            |e| matches!(e, RecordEvent::Status(s) if s.stored >= n),
        )
        .await;
    }

    /// Stop it: its final status and every event it reported.
    pub async fn stop(self) -> (Status, Vec<RecordEvent>) {
        self.stop.send(()).unwrap();
        let status = self.task.await.unwrap().unwrap();
        let events = self.events.lock().unwrap().clone();
        (status, events)
    }
}

/// The journey both fan-out tests record for "wanted": its publish on `orders`, then its
/// dead-lettering through `dlx` from `billing`; the database intact. Its envelopes, the
/// deliveries to consumers (each test checks its own) left out.
pub fn recorded_fan_out_journey(db: &Path) -> Vec<Envelope> {
    let s = Store::open_read(db).unwrap();
    let mut got = s.by_correlation("wanted", None).unwrap();
    got.retain(|e| e.kind != EventKind::Deliver);
    let kinds: Vec<(EventKind, &str)> = got.iter().map(|e| (e.kind, e.source.as_str())).collect();
    assert_eq!(
        kinds,
        vec![
            (EventKind::Publish, "orders"),
            (EventKind::DeadLetter, "dlx")
        ]
    );
    assert_eq!(got[1].deaths()[0].queue, "billing");
    assert_eq!(s.integrity_check().unwrap(), "ok");
    got
}

/// `mqscope record --json` as a process of its own (the real binary, as a user runs it):
/// its standard output (status lines and gaps, JSON) and error kept as they come; killed
/// when dropped unless it was waited for.
pub struct Binary {
    child: Option<std::process::Child>,
    out: Arc<Mutex<Vec<String>>>,
    err: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// How a recorder process ended: its exit status, its output lines, its error lines.
pub struct Ended {
    pub status: std::process::ExitStatus,
    pub out: Vec<String>,
    pub err: String,
}

impl Ended {
    /// The JSON lines of standard output.
    pub fn json(&self) -> Vec<serde_json::Value> {
        self.out
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

impl Binary {
    /// `mqscope record --json --interval 1s --db DB`, with `setup` adding the target (a
    /// `--url`, a profile's environment).
    pub fn start(db: &Path, setup: impl FnOnce(&mut std::process::Command)) -> Binary {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mqscope"));
        cmd.args(["record", "--json", "--interval", "1s", "--db"])
            .arg(db)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        setup(&mut cmd);
        // A test process killed outright (Ctrl-C on the run) takes its recorder with it.
        // SAFETY: prctl is async-signal-safe, and nothing else runs between fork and exec.
        unsafe {
            use std::os::unix::process::CommandExt;
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().unwrap();
        let (out, err) = (Arc::default(), Arc::default());
        let keep = |from: Box<dyn std::io::Read + Send>, into: &Arc<Mutex<Vec<String>>>| {
            let into = Arc::clone(into);
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(from).lines().map_while(Result::ok) {
                    into.lock().unwrap().push(line);
                }
            })
        };
        let readers = vec![
            keep(Box::new(child.stdout.take().unwrap()), &out),
            keep(Box::new(child.stderr.take().unwrap()), &err),
        ];
        Binary {
            child: Some(child),
            out,
            err,
            readers,
        }
    }

    /// Wait (up to `secs`) for a JSON line of standard output `want` accepts; it.
    pub async fn wait_line(
        &self,
        what: &str,
        secs: u64,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        for _ in 0..secs * 10 {
            let found = self
                .out
                .lock()
                .unwrap()
                .iter()
                .filter_map(|l| serde_json::from_str(l).ok())
                .find(&want);
            if let Some(v) = found {
                return v;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "no {what} within {secs} s; output: {:?}; errors: {:?}",
            self.out.lock().unwrap(),
            self.err.lock().unwrap()
        );
    }

    /// Whether the process still runs.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().is_ok_and(|s| s.is_none()))
    }

    /// Ctrl-C, as a user stops it, then its end.
    pub async fn interrupt(self) -> Ended {
        if let Some(c) = &self.child {
            // SAFETY: signalling a child process this test started and has not waited for.
            unsafe { libc::kill(c.id() as i32, libc::SIGINT) };
        }
        self.ended().await
    }

    /// Its end (up to 60 s), however it comes.
    pub async fn ended(mut self) -> Ended {
        let mut child = self.child.take().unwrap();
        let status = tokio::task::spawn_blocking(move || {
            for _ in 0..600 {
                if let Some(s) = child.try_wait().unwrap() {
                    return s;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            panic!("mqscope record did not end within 60 s");
        })
        .await
        .unwrap();
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        Ended {
            status,
            out: self.out.lock().unwrap().clone(),
            err: self.err.lock().unwrap().join("\n"),
        }
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}
