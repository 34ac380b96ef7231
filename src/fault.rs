//! Crash points for the fault tests. A modifying operation (replay, purge, delete) names
//! each step it passes (`replay.sent`, `take.ack_sent`, …); with
//! `MQSCOPE_CRASH_AT=<step>:<n>` a debug build kills itself with SIGKILL the n-th time it
//! reaches that step, so a test can stop it at every step of its journal, one by one,
//! instead of guessing with sleeps (or, with `MQSCOPE_CRASH_RELEASE`, hold it there while
//! the test stops the broker). In-process tests (the local broker, which dies with
//! the process) run the operation under a [`Hang`] instead: it then waits at the step
//! for ever, and the test drops it, as a crash would.
//!
//! Release builds compile every step to nothing: no user can trip one by accident.

#[cfg(debug_assertions)]
mod armed {
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Where to crash, and how many times that step has been passed.
    pub struct Point {
        pub step: String,
        pub nth: u64,
        pub seen: AtomicU64,
    }

    tokio::task_local! {
        /// Set by [`super::Hang::run`] for the operation it runs, and for nothing else.
        pub static HANG: std::sync::Arc<Point>;
    }

    pub fn from_env() -> &'static Option<Point> {
        static POINT: std::sync::OnceLock<Option<Point>> = std::sync::OnceLock::new();
        POINT.get_or_init(|| {
            let spec = std::env::var("MQSCOPE_CRASH_AT").ok()?;
            let (step, nth) = spec.rsplit_once(':').unwrap_or((spec.as_str(), "1"));
            Some(Point {
                step: step.to_string(),
                nth: nth.parse().unwrap_or(1),
                seen: AtomicU64::new(0),
            })
        })
    }

    impl Point {
        pub fn hit(&self, step: &str) -> bool {
            self.step == step && self.seen.fetch_add(1, Ordering::SeqCst) + 1 == self.nth
        }
    }
}

/// Passing `step`: crash here if a test asked for it.
pub async fn step(step: &str) {
    #[cfg(debug_assertions)]
    {
        if let Some(p) = armed::from_env()
            && p.hit(step)
        {
            if let Some(release) = std::env::var_os("MQSCOPE_CRASH_RELEASE") {
                wait_for(std::path::Path::new(&release)).await;
                return;
            }
            eprintln!("mqscope: MQSCOPE_CRASH_AT: killed at {step}");
            // SAFETY: sends a signal to this process; no memory is read or written.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        if armed::HANG.try_with(|p| p.hit(step)).unwrap_or(false) {
            std::future::pending::<()>().await;
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// Instead of dying at the step (with `MQSCOPE_CRASH_RELEASE=FILE` set): say so by
/// creating `FILE.waiting`, and wait there until `FILE` exists, so that a test can do
/// something to the broker at exactly this point (stop it, close the connection).
#[cfg(debug_assertions)]
async fn wait_for(release: &std::path::Path) {
    let mut waiting = release.as_os_str().to_owned();
    waiting.push(".waiting");
    let _ = std::fs::write(&waiting, b"");
    while !release.exists() {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// In-process tests: an operation run by [`Hang::run`] stops for good the `nth` time it
/// reaches `step` (until the test drops it, as a crash would end it). Other operations of
/// the process, other tests' included, are not affected.
#[cfg(debug_assertions)]
#[derive(Clone)]
pub struct Hang(std::sync::Arc<armed::Point>);

#[cfg(debug_assertions)]
impl Hang {
    pub fn at(step: &str, nth: u64) -> Self {
        Hang(std::sync::Arc::new(armed::Point {
            step: step.to_string(),
            nth,
            seen: std::sync::atomic::AtomicU64::new(0),
        }))
    }

    pub async fn run<F: std::future::Future>(&self, f: F) -> F::Output {
        armed::HANG.scope(self.0.clone(), f).await
    }

    /// Whether the operation has reached the step (and is now stuck there).
    pub fn reached(&self) -> bool {
        self.0.seen.load(std::sync::atomic::Ordering::SeqCst) >= self.0.nth
    }
}
