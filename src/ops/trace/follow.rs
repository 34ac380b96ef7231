//! Following a correlation ID live: new hops as the backend's live tail sees them, after
//! (or while) a scan reports the past.

use super::{Hop, HopKind, TraceOptions, hop_of};
use crate::backend::{Backend, BackendError, Tail, TailFilter};
use crate::model::Message;
use std::collections::HashSet;

/// A live tail filtered down to one correlation ID. Dropping it stops the tail.
pub struct Follower {
    tail: Tail,
    id: String,
    opts: TraceOptions,
    seen: HashSet<(String, Option<i32>, i64)>,
}

/// Start watching every exchange and topic for `id`. Start it before a scan to miss
/// nothing in between; [`Follower::skip`] then drops records the scan already reported.
pub async fn start(
    backend: &dyn Backend,
    id: &str,
    opts: &TraceOptions,
) -> Result<Follower, BackendError> {
    let Some(live) = backend.live_tail() else {
        return Err(BackendError::Unsupported {
            what: "following live messages".into(),
            backend: backend.info().kind.as_str(),
        });
    };
    let tail = live.tail(&TailFilter::default()).await?;
    Ok(Follower {
        tail,
        id: id.to_string(),
        opts: opts.clone(),
        seen: HashSet::new(),
    })
}

impl Follower {
    /// Records already reported elsewhere (by the scan) are not reported again.
    pub fn skip<'a>(&mut self, hops: impl IntoIterator<Item = &'a Hop>) {
        self.seen
            .extend(hops.into_iter().filter_map(Hop::record_key));
    }

    /// The next new hop; an `Err` is a problem the tail reports and survives (it fell
    /// behind, a broker is away); `None` when the tail has ended.
    pub async fn next_hop(&mut self) -> Option<Result<Hop, BackendError>> {
        loop {
            let m = match self.tail.messages.recv().await? {
                Ok(m) => m,
                Err(e) => return Some(Err(e)),
            };
            if self.opts.extractor.extract(&m).as_deref() != Some(self.id.as_str()) {
                continue;
            }
            let hop = live_hop(&m, chrono::Utc::now());
            // A publish counts as in the chosen queues if it was published there or, where
            // the broker says where it went, routed to one of them.
            if let Some(p) = &self.opts.queues
                && !hop.concerns(p)
            {
                continue;
            }
            if let Some(k) = hop.record_key()
                && !self.seen.insert(k)
            {
                continue;
            }
            return Some(Ok(hop));
        }
    }
}

/// The hop a tailed message makes: a topic record is a hop in its topic; a publish to the
/// default exchange is one to the queue its routing key names; any other publish is a hop
/// on its exchange, with the queues it reached where the broker says (RabbitMQ's firehose).
pub fn live_hop(m: &Message, now: chrono::DateTime<chrono::Utc>) -> Hop {
    let mut hop = if m.partition.is_some() {
        hop_of(m, HopKind::Topic)
    } else {
        let mut h = hop_of(m, HopKind::Exchange);
        match (m.exchange.as_deref(), m.routing_key.as_deref()) {
            (Some(""), Some(key)) => {
                h.kind = HopKind::Queue;
                h.queue = key.to_string();
            }
            (Some(x), _) => h.queue = x.to_string(),
            _ => {}
        }
        h.position = None;
        h
    };
    hop.live = true;
    hop.time = hop.time.or(Some(now));
    hop.published = hop.published.or(Some(now));
    hop.timestamp = hop.time.as_ref().map(crate::model::time::rfc3339);
    hop
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use chrono::DateTime;

    #[test]
    fn tailed_messages_become_hops_where_they_went() {
        let now = DateTime::from_timestamp(100, 0).unwrap();
        let mut m = Message::new("orders", 0, Bytes::new());
        m.exchange = Some("orders".into());
        m.routing_key = Some("order.created".into());
        let h = live_hop(&m, now);
        assert_eq!((h.kind, h.queue.as_str()), (HopKind::Exchange, "orders"));
        assert!(h.live && h.position.is_none() && h.record_key().is_none());
        assert_eq!(h.time, Some(now), "no timestamp: the time it was seen");
        assert_eq!(h.routed_queues, None, "where it went: not said");
        m.routed_queues = Some(vec!["billing".into(), "shipping".into()]);
        let h = live_hop(&m, now);
        assert_eq!(
            h.routed_queues, m.routed_queues,
            "where it went, as the broker said"
        );
        m.routed_queues = None;

        m.exchange = Some(String::new());
        m.routing_key = Some("refunds".into());
        let h = live_hop(&m, now);
        assert_eq!((h.kind, h.queue.as_str()), (HopKind::Queue, "refunds"));

        let mut r = Message::new("payments", 9, Bytes::new());
        r.partition = Some(1);
        r.offset = Some(9);
        r.timestamp = DateTime::from_timestamp(90, 0);
        let h = live_hop(&r, now);
        assert_eq!(h.kind, HopKind::Topic);
        assert_eq!(h.time, r.timestamp);
        assert_eq!(h.record_key(), Some(("payments".into(), Some(1), 9)));
        assert_eq!(h.place(), "payments[1]@9");
    }
}
