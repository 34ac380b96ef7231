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

    /// Move time forward (manual), or let a clock shifted into the past catch up with now
    /// (system): real time moves a system clock by itself, so it never runs ahead.
    pub fn advance(&self, ms: i64) {
        if self.manual {
            self.value.fetch_add(ms, Ordering::Relaxed);
        } else {
            let _ = self
                .value
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| {
                    Some((v + ms).min(0))
                });
        }
    }

    /// System clock only: set how far behind real time it runs.
    pub fn set_shift(&self, ms: i64) {
        if !self.manual {
            self.value.store(ms, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_system_clock_catches_up_but_never_runs_ahead() {
        let c = Clock::system();
        c.set_shift(-1_000);
        c.advance(600);
        // Read between two wall-clock readings, so a preempted thread cannot fail it.
        let t0 = chrono::Utc::now().timestamp_millis();
        let v = c.now_ms();
        let t1 = chrono::Utc::now().timestamp_millis();
        assert!(t0 - 400 <= v && v <= t1 - 400, "{t0} {v} {t1}");
        c.advance(10_000);
        let ahead = c.now_ms() - chrono::Utc::now().timestamp_millis();
        assert!(ahead <= 5, "{ahead}");
        let m = Clock::manual(0);
        m.advance(10_000);
        assert_eq!(m.now_ms(), 10_000);
    }
}
