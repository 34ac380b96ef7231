//! Time for the local broker: the system clock (optionally shifted, so the demo can play
//! its history in the past and catch up to now) or a manual clock for deterministic tests.

use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Debug)]
pub struct Clock {
    manual: bool,
    /// Manual: the current time in ms. System: the shift added to the system time.
    value: AtomicI64,
}

impl Clock {
    pub fn system() -> Self {
        Self {
            manual: false,
            value: AtomicI64::new(0),
        }
    }

    /// A clock that stands still at `start_ms` until advanced.
    pub fn manual(start_ms: i64) -> Self {
        Self {
            manual: true,
            value: AtomicI64::new(start_ms),
        }
    }

    pub fn is_manual(&self) -> bool {
        self.manual
    }

    pub fn now_ms(&self) -> i64 {
        let v = self.value.load(Ordering::Relaxed);
        if self.manual {
            v
        } else {
            chrono::Utc::now().timestamp_millis() + v
        }
    }

    /// Move time forward (manual) or reduce the shift into the past (system).
    pub fn advance(&self, ms: i64) {
        self.value.fetch_add(ms, Ordering::Relaxed);
    }

    /// System clock only: set how far behind real time it runs.
    pub fn set_shift(&self, ms: i64) {
        if !self.manual {
            self.value.store(ms, Ordering::Relaxed);
        }
    }
}
