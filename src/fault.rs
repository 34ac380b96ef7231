//! Crash points for the fault tests. A modifying operation (replay, purge, delete) names
//! each step it passes (`replay.sent`, `take.ack_sent`, …); with
//! `MQSCOPE_CRASH_AT=<step>:<n>` a debug build kills itself with SIGKILL the n-th time it
//! reaches that step, so a test can stop it at every step of its journal, one by one,
//! instead of guessing with sleeps. In-process tests (the local broker, which dies with
//! the process) arm a step with [`arm_hang`] instead: the operation then waits there for
//! ever, and the test drops it, as a crash would.
//!
//! Release builds compile every step to nothing: no user can trip one by accident.

#[cfg(debug_assertions)]
mod armed {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Where to crash, and how many times that step has been passed.
    pub struct Point {
        pub step: String,
        pub nth: u64,
        pub seen: AtomicU64,
    }

    pub static HANG: Mutex<Option<Point>> = Mutex::new(None);

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
            eprintln!("mqscope: MQSCOPE_CRASH_AT: killed at {step}");
            // SAFETY: sends a signal to this process; no memory is read or written.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
        let hang = armed::HANG
            .lock()
            .map(|g| g.as_ref().is_some_and(|p| p.hit(step)))
            .unwrap_or(false);
        if hang {
            std::future::pending::<()>().await;
        }
    }
    #[cfg(not(debug_assertions))]
    let _ = step;
}

/// In-process tests: the `nth` time any operation of this process reaches `step`, it
/// stops there for good (until the test drops it). `None` disarms.
#[cfg(debug_assertions)]
pub fn arm_hang(at: Option<(&str, u64)>) {
    if let Ok(mut g) = armed::HANG.lock() {
        *g = at.map(|(step, nth)| armed::Point {
            step: step.to_string(),
            nth,
            seen: std::sync::atomic::AtomicU64::new(0),
        });
    }
}

/// Whether the armed hang step has been reached (the operation is now stuck there).
#[cfg(debug_assertions)]
pub fn hang_reached() -> bool {
    armed::HANG
        .lock()
        .map(|g| {
            g.as_ref()
                .is_some_and(|p| p.seen.load(std::sync::atomic::Ordering::SeqCst) >= p.nth)
        })
        .unwrap_or(false)
}
