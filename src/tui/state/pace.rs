//! How often a list view reloads itself: the listings' own time sets the pace on a slow broker.

/// After a listing, timed reloads wait this many times as long as it took.
pub const LISTING_PAUSE: u64 = 4;

/// How long a view's last listing took, and so when the next timed one may start: a
/// listing that takes the broker seconds (tens of thousands of queues, hundreds of
/// consumer groups) is followed by a pause four times as long, so mqscope keeps the
/// broker's API busy a fifth of the time at most. `Ctrl-R` lists at once all the same.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pace {
    pub took_ms: Option<u64>,
    /// The tick before which no timed reload starts.
    pub hold_until: u64,
}

impl Pace {
    /// A listing came back at `tick` after `took_ms`.
    pub fn listed(&mut self, tick: u64, took_ms: u64) {
        self.took_ms = Some(took_ms);
        self.hold_until = tick + took_ms.saturating_mul(LISTING_PAUSE).div_ceil(1000);
    }

    pub fn ready(&self, tick: u64) -> bool {
        tick >= self.hold_until
    }

    /// Seconds from one timed listing to the next, when the listings' own time sets the
    /// pace rather than the refresh interval.
    pub fn slow(&self, refresh_secs: u64) -> Option<u64> {
        let took = self.took_ms?;
        let pace = took.saturating_mul(LISTING_PAUSE + 1).div_ceil(1000);
        (pace > refresh_secs).then_some(pace)
    }

    /// The title's words for the pace: `every 2s`, or `every 22s (listing takes 4.3s)`.
    pub fn label(&self, refresh_secs: u64) -> String {
        match self.slow(refresh_secs) {
            Some(p) => format!(
                "every {p}s (listing takes {:.1}s)",
                self.took_ms.unwrap_or(0) as f64 / 1000.0
            ),
            None => format!("every {refresh_secs}s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pace;

    #[test]
    fn a_listing_paces_the_next_only_when_it_is_slow() {
        let mut p = Pace::default();
        assert!(p.ready(0));
        assert_eq!(p.label(2), "every 2s");
        // 1 s on a 10 s interval (exchanges): the interval rules.
        p.listed(100, 1_000);
        assert!(!p.ready(103) && p.ready(104));
        assert_eq!(p.slow(10), None);
        assert_eq!(p.label(10), "every 10s");
        // 3 s on a 2 s interval: 12 s of pause, 15 s from one start to the next.
        p.listed(200, 3_000);
        assert!(!p.ready(211) && p.ready(212));
        assert_eq!(p.slow(2), Some(15));
        assert_eq!(p.label(2), "every 15s (listing takes 3.0s)");
        // A fast one resets it.
        p.listed(300, 40);
        assert!(p.ready(301));
        assert_eq!(p.label(2), "every 2s");
    }
}
