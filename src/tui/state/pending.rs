//! The request a view waits for: only the newest counts, and a reply to any other is
//! stale and dropped here, in one place (the idea of gitui's `asyncjob`).

/// Worker requests and their replies carry the same id.
pub type ReqId = u64;

/// The newest request of one kind still under way, and what it was for (`T`: which way a
/// page extends the window, say). Starting another makes the earlier one's reply stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pending<T = ()> {
    newest: Option<(ReqId, T)>,
}

impl<T> Default for Pending<T> {
    fn default() -> Self {
        Self { newest: None }
    }
}

impl<T> Pending<T> {
    /// `req` is now the request that counts.
    pub fn start(&mut self, req: ReqId, what: T) {
        self.newest = Some((req, what));
    }

    /// A reply to `req` arrived: what it was for if it is the newest request (which is
    /// then no longer under way), or `None` if it is stale and must be dropped.
    pub fn finish(&mut self, req: ReqId) -> Option<T> {
        self.newest
            .take_if(|(r, _)| *r == req)
            .map(|(_, what)| what)
    }

    /// A report about `req` that does not end it (progress, a hit) is for the newest.
    pub fn is_current(&self, req: ReqId) -> bool {
        self.req() == Some(req)
    }

    /// Forget the request (to cancel it, or because what it was for is gone): whatever it
    /// answers from now on is stale. Its id, to tell the worker.
    pub fn take(&mut self) -> Option<ReqId> {
        self.newest.take().map(|(r, _)| r)
    }

    pub fn clear(&mut self) {
        self.newest = None;
    }

    pub fn req(&self) -> Option<ReqId> {
        self.newest.as_ref().map(|(r, _)| *r)
    }

    pub fn is_some(&self) -> bool {
        self.newest.is_some()
    }

    pub fn is_none(&self) -> bool {
        self.newest.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::Pending;

    #[test]
    fn only_the_newest_request_is_answered() {
        let mut p: Pending<&str> = Pending::default();
        assert_eq!(p.finish(1), None);
        p.start(1, "first");
        p.start(2, "second");
        assert!(!p.is_current(1) && p.is_current(2));
        assert_eq!(p.finish(1), None);
        assert!(p.is_some());
        assert_eq!(p.finish(2), Some("second"));
        assert!(p.is_none());
        assert_eq!(p.finish(2), None);
    }

    #[test]
    fn a_cancelled_request_is_stale() {
        let mut p = Pending::default();
        p.start(7, ());
        assert_eq!(p.take(), Some(7));
        assert_eq!(p.finish(7), None);
        assert_eq!(p.take(), None);
    }
}
