//! Following a correlation ID live: new hops as the backend's live tail sees them, after
//! (or while) a scan reports the past; deliveries to consumers are hops of their own.

use super::{Hop, HopKind, TraceOptions, hop_of};
use crate::backend::{Backend, BackendError, Delivered, Tail, TailEvent, TailFilter};
use crate::format::decode::Input;
use crate::model::Message;
use crate::model::correlation::IdMatcher;
use chrono::{DateTime, Utc};
use std::collections::{HashSet, VecDeque};

/// A live tail filtered down to one correlation ID. Dropping it stops the tail.
pub struct Follower {
    tail: Tail,
    matcher: IdMatcher,
    opts: TraceOptions,
    seen: HashSet<(String, Option<i32>, i64)>,
    /// When recent publishes were seen, by what makes a copy the same message, so a
    /// delivery of one hangs under its publish when the message carries no time.
    published: VecDeque<(u64, DateTime<Utc>)>,
}

/// How many publishes [`Follower`] remembers the time of.
const PUBLISHES_KEPT: usize = 1_024;

/// Start watching every exchange and topic (and deliveries to consumers, where the broker
/// reports them) for `id`. Start it before a scan to miss nothing in between;
/// [`Follower::skip`] then drops records the scan already reported.
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
    let filter = TailFilter {
        deliveries: true,
        ..TailFilter::default()
    };
    let tail = live.tail(&filter).await?;
    Ok(Follower {
        tail,
        matcher: opts.extractor.matcher(id),
        opts: opts.clone(),
        seen: HashSet::new(),
        published: VecDeque::new(),
    })
}

impl Follower {
    /// Records already reported elsewhere (by the scan) are not reported again.
    pub fn skip<'a>(&mut self, hops: impl IntoIterator<Item = &'a Hop>) {
        self.seen
            .extend(hops.into_iter().filter_map(Hop::record_key));
    }

    /// How the tail follows its sources, where the user should know.
    pub fn notes(&self) -> &[String] {
        &self.tail.notes
    }

    /// The next new hop; an `Err` is a problem the tail reports and survives (it fell
    /// behind, a broker is away); `None` when the tail has ended.
    pub async fn next_hop(&mut self) -> Option<Result<Hop, BackendError>> {
        loop {
            let hop = match self.tail.events.recv().await? {
                Err(e) => return Some(Err(e)),
                Ok(TailEvent::Message(m)) => {
                    if !self.wanted(&m) {
                        continue;
                    }
                    let hop = live_hop(&m, Utc::now());
                    if hop.kind != HopKind::Topic
                        && let Some(at) = hop.published
                    {
                        if self.published.len() == PUBLISHES_KEPT {
                            self.published.pop_front();
                        }
                        self.published.push_back((copy_key(&m), at));
                    }
                    hop
                }
                Ok(TailEvent::Delivery(d)) => {
                    if !self.wanted(&d.message) {
                        continue;
                    }
                    let key = copy_key(&d.message);
                    let at = self
                        .published
                        .iter()
                        .rev()
                        .find(|(k, _)| *k == key)
                        .map(|(_, at)| *at);
                    delivery_hop(d, at)
                }
            };
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

    fn wanted(&self, m: &Message) -> bool {
        self.matcher.matches(m)
            || super::scan::holds_decoded(
                self.opts.decoder.as_deref(),
                &self.matcher,
                m,
                Input::payload(m),
            )
    }
}

/// What makes two sightings of a message the same one: where it was published, its id and
/// its body.
fn copy_key(m: &Message) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    m.exchange.hash(&mut h);
    m.routing_key.hash(&mut h);
    m.properties.message_id.hash(&mut h);
    m.payload.hash(&mut h);
    h.finish()
}

/// The hop a delivery makes: the queue it was taken from, when, by whom. `published` is
/// when its publish was seen, for a message that does not say when it was published.
pub fn delivery_hop(d: Delivered, published: Option<DateTime<Utc>>) -> Hop {
    let Delivered { delivery, message } = d;
    let mut hop = hop_of(&message, HopKind::Queue);
    hop.queue = delivery.queue.clone();
    hop.position = None;
    hop.partition = None;
    hop.offset = None;
    hop.live = true;
    hop.time = Some(delivery.at);
    hop.timestamp = Some(crate::model::time::rfc3339(&delivery.at));
    hop.published = hop.published.or(published).or(Some(delivery.at));
    hop.deliveries = vec![delivery];
    hop
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
