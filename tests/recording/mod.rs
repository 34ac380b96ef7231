//! A recording run in the background for the recorder's tests, on any backend: started
//! (tapping once it says so), waited on, stopped; every event it reported kept.

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
