//! Expected routes: every queue the traced publish reaches by the broker's topology as it
//! is now (`model::routing`), and what became of the copy in each: found, dead-lettered,
//! or not there with the evidence for why (consumers, a TTL, a length limit, a queue gone).

use super::{Hop, HopKind, Skipped, Trace, glob_matches};
use crate::backend::Backend;
use crate::model::routing::{
    Destination, HeaderEquality, Leg, Publish, RoutingTable, path_text, route,
};
use crate::model::{DeathReason, DeathRecord, DeathSource, Delivery, Message, QueueSummary};
use chrono::{DateTime, Utc};
use serde::Serialize;

/// What a trace keeps of each message it finds, beside its hop, to work out routes.
#[derive(Debug, Clone, PartialEq)]
pub struct Sighting {
    /// The publish that first sent it on its way (for a dead letter, the one its oldest
    /// `x-death` records); None for a log record, which nothing routes.
    pub publish: Option<Publish>,
    pub message_id: Option<String>,
    pub published: Option<DateTime<Utc>>,
    /// Its own time to live in milliseconds (`expiration`, or the one dead-lettering kept).
    pub expiration_ms: Option<u64>,
    /// Newest first.
    pub deaths: Vec<DeathRecord>,
}

/// Headers a broker adds on the way (dead-lettering, quorum deliveries): not part of the
/// publish that was routed.
fn added_by_broker(name: &str) -> bool {
    name == "x-death"
        || name.starts_with("x-first-death-")
        || name.starts_with("x-last-death-")
        || name == "x-delivery-count"
        || name == "x-acquired-count"
}

/// What routing needs of a message found by the scan.
pub fn sighting_of(m: &Message) -> Sighting {
    let deaths = m.deaths();
    let oldest = deaths
        .iter()
        .rev()
        .find(|d| d.source == DeathSource::XDeath);
    let headers = m.headers.filtered(|k| !added_by_broker(k));
    let publish = match (oldest, &m.exchange) {
        (Some(d), _) => d.exchange.as_ref().map(|x| Publish {
            exchange: x.clone(),
            routing_keys: d.routing_keys.clone(),
            headers: headers.clone(),
        }),
        (None, Some(x)) if m.partition.is_none() => Some(Publish::new(
            x,
            m.routing_key.as_deref().unwrap_or(""),
            headers,
        )),
        _ => None,
    };
    let own = |e: &Option<String>| e.as_deref().and_then(|e| e.trim().parse().ok());
    Sighting {
        publish,
        message_id: m.properties.message_id.clone(),
        published: m.timestamp,
        expiration_ms: own(&m.properties.expiration)
            .or_else(|| oldest.and_then(|d| own(&d.original_expiration))),
        deaths,
    }
}

/// What became of the copy routed to one queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Fate {
    /// Still waiting in the queue.
    Found,
    /// Dead-lettered from the queue: a copy was found where it went.
    DeadLettered,
    /// A consumer was seen taking it: a delivery the live follow saw or the recorder kept.
    PickedUp,
    /// Not there, and the queue has consumers: most likely delivered and acknowledged.
    Consumed,
    /// Not there, and older than the time to live that applies to it there.
    Expired,
    /// Not there, and the queue has a length limit that pushes old messages out.
    Dropped,
    /// The queue no longer exists.
    Removed,
    /// Not there, and nothing says why.
    NotThere,
    /// The queue was not searched (left out by a filter, or skipped).
    NotSearched,
    /// The publish reaches no queue at all.
    NotRouted,
}

impl Fate {
    pub fn as_str(self) -> &'static str {
        match self {
            Fate::Found => "found",
            Fate::DeadLettered => "dead-lettered",
            Fate::PickedUp => "picked up",
            Fate::Consumed => "consumed",
            Fate::Expired => "expired",
            Fate::Dropped => "dropped",
            Fate::Removed => "removed",
            Fate::NotThere => "not there",
            Fate::NotSearched => "not searched",
            Fate::NotRouted => "not routed",
        }
    }
}

/// One expected destination of the traced publish.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Route {
    /// None only when the publish is not routed at all.
    pub queue: Option<String>,
    pub fate: Fate,
    /// What the fate rests on, one fact a line.
    pub evidence: Vec<String>,
    /// The exchanges and bindings that take it there (empty when the current topology
    /// does not route it there).
    pub path: Vec<Leg>,
    /// Found: where it waits. Dead-lettered: the queue it went to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub position: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dead_lettered_to: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<DeathReason>,
    /// When it happened, where the data says (found: its arrival; dead-lettered: the
    /// death); None is a gap nothing recorded.
    #[serde(skip)]
    pub time: Option<DateTime<Utc>>,
    /// The fate and the one fact it rests on most, for a line on screen.
    #[serde(skip)]
    pub headline: String,
}

/// The publish the routes start from and what they assume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteBasis {
    pub exchange: String,
    pub routing_keys: Vec<String>,
}

/// Expected routes and what they rest on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Routes {
    pub routes: Vec<Route>,
    pub basis: Option<RouteBasis>,
    pub notes: Vec<String>,
}

/// The assumption every expected route makes.
pub const TOPOLOGY_NOW: &str = "routes use the topology as it is now: a binding made or removed since the message was published cannot be known";

/// What the trace knows besides its hops, for [`expected`].
pub struct Scope<'a> {
    /// Every queue and topic the backend listed when the trace started.
    pub queues: &'a [QueueSummary],
    /// Whether the trace searched a queue (`--queues` may leave some out).
    pub searched: &'a (dyn Fn(&str) -> bool + Sync),
    pub skipped: &'a [Skipped],
    /// The scan was cancelled: a queue may not have been read to its end.
    pub complete: bool,
    pub now: DateTime<Utc>,
}

/// The expected routes of the first publish in `hops` (time order; `sightings` beside
/// them), through the backend's current topology.
pub async fn expected(
    backend: &dyn Backend,
    hops: &[Hop],
    sightings: &[Sighting],
    scope: &Scope<'_>,
) -> Routes {
    let mut out = Routes::default();
    let Some((first, origin)) = hops.iter().zip(sightings).next() else {
        return out;
    };
    let Some(publish) = origin.publish.clone() else {
        out.notes.push(format!(
            "the first copy is a record of {} {}: a log has no routing, a record stays in the topic it was produced to",
            first.kind.as_str(),
            first.queue
        ));
        return out;
    };
    let Some(browser) = backend.browser() else {
        out.notes.push(format!(
            "the {} backend does not list exchanges and bindings: no expected routes",
            backend.info().kind.as_str()
        ));
        return out;
    };
    let (exchanges, bindings) = match browser.routing().await {
        Ok(r) => r,
        Err(e) => {
            out.notes
                .push(format!("could not read exchanges and bindings: {e}"));
            return out;
        }
    };
    let eq = match backend.server().await {
        Some(v) => HeaderEquality::of_version(v.major, v.minor),
        None => HeaderEquality::Exact,
    };
    let table = RoutingTable::new(
        &exchanges,
        &bindings,
        scope
            .queues
            .iter()
            .filter(|q| !matches!(q.kind, crate::model::QueueKind::Topic))
            .map(|q| q.name.clone()),
    );
    let routed = route(&table, &publish, eq);
    out.basis = Some(RouteBasis {
        exchange: publish.exchange.clone(),
        routing_keys: publish.routing_keys.clone(),
    });
    out.notes.push(TOPOLOGY_NOW.to_string());
    out.notes.extend(routed.notes);
    if !scope.complete {
        out.notes
            .push("the scan was cancelled: a copy may sit where it did not look".into());
    }
    out.routes = fates(&routed.queues, hops, sightings, origin, scope);
    out
}

/// Each destination's fate, then the queues the evidence names that the current topology
/// does not route to, in time order (those without a time last).
pub fn fates(
    routed: &[Destination],
    hops: &[Hop],
    sightings: &[Sighting],
    origin: &Sighting,
    scope: &Scope<'_>,
) -> Vec<Route> {
    let copies: Vec<(&Hop, &Sighting)> = hops
        .iter()
        .zip(sightings)
        .filter(|(h, s)| h.kind != HopKind::Exchange && same_publish(origin, s))
        .collect();
    let mut out: Vec<Route> = routed
        .iter()
        .map(|d| fate_of(&d.queue, d.path.clone(), &copies, origin, scope))
        .collect();
    // Where the evidence says a copy went that the topology no longer sends it.
    let mut elsewhere: Vec<String> = Vec::new();
    for (h, s) in &copies {
        let named = if s.deaths.is_empty() {
            vec![h.queue.clone()]
        } else {
            s.deaths
                .iter()
                .filter(|d| d.source == DeathSource::XDeath)
                .map(|d| d.queue.clone())
                .collect()
        };
        for q in named
            .into_iter()
            .chain(h.routed_queues.iter().flatten().cloned())
        {
            if !routed.iter().any(|d| d.queue == q) && !elsewhere.contains(&q) {
                elsewhere.push(q);
            }
        }
    }
    for q in elsewhere {
        let mut r = fate_of(&q, Vec::new(), &copies, origin, scope);
        r.evidence.insert(
            0,
            "the current topology does not route this publish here: a binding or queue changed since".into(),
        );
        out.push(r);
    }
    if out.is_empty() {
        let keys = origin
            .publish
            .as_ref()
            .map(|p| p.routing_keys.join(", "))
            .unwrap_or_default();
        let exchange = origin
            .publish
            .as_ref()
            .map(|p| p.exchange.as_str())
            .map(|x| if x.is_empty() { "(default)" } else { x })
            .unwrap_or("?");
        out.push(Route {
            queue: None,
            fate: Fate::NotRouted,
            evidence: vec![format!(
                "exchange {exchange} routes key {keys} to no queue, and no alternate exchange takes it"
            )],
            path: Vec::new(),
            position: None,
            dead_lettered_to: None,
            reason: None,
            time: None,
            headline: "not routed: no queue takes it, and no alternate exchange".into(),
        });
    }
    out.sort_by_key(|r| (r.time.is_none(), r.time));
    out
}

/// Copies of one publish share its exchange and routing key and, where known, its message
/// ID and time. Only the first key, the publish's own, counts: the `CC` keys a copy's
/// headers and a dead letter's `x-death` give need not agree (dead-lettering with its own
/// routing key drops the `CC` header).
fn same_publish(a: &Sighting, b: &Sighting) -> bool {
    let same = |x: &Option<Publish>, y: &Option<Publish>| match (x, y) {
        (Some(x), Some(y)) => {
            x.exchange == y.exchange && x.routing_keys.first() == y.routing_keys.first()
        }
        _ => false,
    };
    same(&a.publish, &b.publish)
        && (a.message_id.is_none() || b.message_id.is_none() || a.message_id == b.message_id)
        && (a.published.is_none() || b.published.is_none() || a.published == b.published)
}

fn fate_of(
    queue: &str,
    path: Vec<Leg>,
    copies: &[(&Hop, &Sighting)],
    origin: &Sighting,
    scope: &Scope<'_>,
) -> Route {
    let mut r = Route {
        queue: Some(queue.to_string()),
        fate: Fate::NotThere,
        evidence: Vec::new(),
        path,
        position: None,
        dead_lettered_to: None,
        reason: None,
        time: None,
        headline: String::new(),
    };
    if !r.path.is_empty() {
        r.evidence.push(format!(
            "routed {}",
            path_text(&Destination {
                queue: queue.to_string(),
                path: r.path.clone()
            })
        ));
    }
    // Waiting: a copy the scan found there now (a recorded event or a delivery says where
    // it was, not that it still is).
    let waiting = copies.iter().find(|(h, s)| {
        h.queue == queue
            && h.recorded.is_none()
            && h.deliveries.is_empty()
            && s.deaths.iter().all(|d| d.queue != queue)
    });
    if let Some((h, _)) = waiting {
        r.fate = Fate::Found;
        r.position = h.position.or(h.offset.and_then(|o| u64::try_from(o).ok()));
        r.time = h.time;
        r.evidence.push(format!("waiting at {}", h.place()));
        r.headline = format!("found at {}", h.place());
        return r;
    }
    let died = copies.iter().find_map(|(h, s)| {
        s.deaths
            .iter()
            .find(|d| d.queue == queue && d.source == DeathSource::XDeath)
            .map(|d| (h, d))
    });
    if let Some((h, d)) = died {
        r.fate = Fate::DeadLettered;
        r.dead_lettered_to = Some(h.queue.clone());
        r.reason = Some(d.reason);
        r.time = d.time;
        r.evidence.push(format!(
            "dead-lettered ({} ×{}), now at {}",
            d.reason,
            d.count,
            h.place()
        ));
        r.headline = format!("dead-lettered ({}) → {}", d.reason, h.place());
        return r;
    }
    if let Some(s) = scope.skipped.iter().find(|s| s.queue == queue) {
        r.fate = Fate::NotSearched;
        r.evidence.push(format!("skipped: {}", s.reason));
        r.headline = "not searched: the queue was skipped".into();
        return r;
    }
    if !(scope.searched)(queue) {
        r.fate = Fate::NotSearched;
        r.evidence
            .push("not searched: left out by the queue filter".into());
        r.headline = "not searched (left out by the queue filter)".into();
        return r;
    }
    let Some(q) = scope.queues.iter().find(|q| q.name == queue) else {
        r.fate = Fate::Removed;
        r.evidence.push("the queue no longer exists".into());
        r.headline = "removed: the queue no longer exists".into();
        return r;
    };
    not_there(&mut r, q, origin, scope.now);
    r
}

/// Not in the queue: what the queue's settings say about where it went.
fn not_there(r: &mut Route, q: &QueueSummary, origin: &Sighting, now: DateTime<Utc>) {
    let consumers = q.consumers.unwrap_or(0);
    if consumers > 0 {
        r.evidence.push(format!(
            "not in the queue; it has {consumers} consumer{}: likely delivered and acknowledged (no delivery was recorded)",
            if consumers == 1 { "" } else { "s" }
        ));
    } else if q.consumers == Some(0) {
        r.evidence
            .push("not in the queue; it has no consumers now".into());
    } else {
        r.evidence.push("not in the queue".into());
    }
    let ttl = match (q.message_ttl_ms, origin.expiration_ms) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    };
    let age = origin
        .published
        .and_then(|p| u64::try_from((now - p).num_milliseconds()).ok());
    let expired = match (ttl, age) {
        (Some(t), Some(a)) => {
            r.evidence.push(format!(
                "time to live {}, and the message is {} old: it has expired there if nobody took it first",
                duration(t),
                duration(a)
            ));
            a >= t
        }
        (Some(t), None) => {
            r.evidence.push(format!(
                "time to live {} (when it was published is not known)",
                duration(t)
            ));
            false
        }
        _ => false,
    };
    let limit = q.max_length.map(|n| format!("max-length {n}")).or_else(|| {
        q.arguments
            .get("x-max-length-bytes")
            .and_then(serde_json::Value::as_u64)
            .map(|n| format!("max-length-bytes {n}"))
    });
    if let Some(l) = &limit {
        r.evidence.push(format!(
            "{l}: messages at the head are dropped (or dead-lettered) when it is full"
        ));
    }
    if let Some(dl) = &q.dead_letter {
        let x = if dl.exchange.is_empty() {
            "(default)"
        } else {
            &dl.exchange
        };
        r.evidence.push(format!(
            "it dead-letters to exchange {x}{}; no dead-lettered copy from it was found",
            q.dead_letter_queue
                .as_ref()
                .map(|d| format!(" (queue {d})"))
                .unwrap_or_default()
        ));
    }
    let (fate, why) = if consumers > 0 {
        (
            Fate::Consumed,
            format!(
                "{consumers} consumer{}",
                if consumers == 1 { "" } else { "s" }
            ),
        )
    } else if let (true, Some(t)) = (expired, ttl) {
        (Fate::Expired, format!("time to live {}", duration(t)))
    } else if let Some(l) = limit {
        (Fate::Dropped, l)
    } else {
        (
            Fate::NotThere,
            "no consumers, time to live or length limit to say why".into(),
        )
    };
    r.fate = fate;
    // Only a delivery record could say when: a gap, and named as one.
    r.headline = match fate {
        Fate::NotThere => format!("not there: {why}; when it left is not recorded"),
        f => format!(
            "{}? not in the queue; {why}; when is not recorded",
            f.as_str()
        ),
    };
}

/// Work the routes out again over `trace`'s hops as they are now (recorded hops merged in:
/// the publish the scan could not see may be older than every copy still there), then say
/// which copies consumers were seen taking. `queues` is the trace's `--queues` pattern.
pub async fn reroute(backend: &dyn Backend, trace: &mut Trace, queues: Option<&str>) {
    if trace.sightings.len() != trace.hops.len() {
        return;
    }
    let listed = match backend.list_queues().await {
        Ok(l) => l,
        Err(e) => {
            trace.routes_notes.push(format!(
                "could not list queues to work out routes again: {e}"
            ));
            return;
        }
    };
    let searched = |q: &str| queues.is_none_or(|p| glob_matches(p, q));
    let scope = Scope {
        queues: &listed,
        searched: &searched,
        skipped: &trace.skipped,
        complete: true,
        now: Utc::now(),
    };
    let routes = expected(backend, &trace.hops, &trace.sightings, &scope).await;
    trace.routes = routes.routes;
    trace.routes_basis = routes.basis;
    trace.routes_notes = routes.notes;
    picked_up(&mut trace.routes, &trace.hops);
}

/// Routes whose copy a consumer was seen taking from the queue (in `hops`' deliveries, seen
/// live or recorded) are picked up, by whom and when, instead of what the queue's settings
/// only suggest; the first delivery is the fate's time, each one a line of evidence.
pub fn picked_up(routes: &mut [Route], hops: &[Hop]) {
    for r in routes.iter_mut() {
        let guessed = matches!(
            r.fate,
            Fate::Consumed | Fate::Expired | Fate::Dropped | Fate::NotThere
        );
        let Some(q) = r.queue.as_deref().filter(|_| guessed) else {
            continue;
        };
        let mut taken: Vec<&Delivery> = hops
            .iter()
            .flat_map(|h| &h.deliveries)
            .filter(|d| d.queue == q)
            .collect();
        taken.sort_by_key(|d| d.at);
        taken.dedup();
        let Some(first) = taken.first() else {
            continue;
        };
        r.fate = Fate::PickedUp;
        r.time = Some(first.at);
        r.headline = first.summary();
        r.evidence
            .retain(|e| !e.contains("no delivery was recorded"));
        let seen: Vec<String> = taken.iter().map(|d| d.describe()).collect();
        r.evidence.splice(0..0, seen);
    }
}

/// `850 ms`, `60 s`, `12 min`, `3 h`, `2 d`.
fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms} ms"),
        1_000..120_000 => format!("{} s", ms / 1_000),
        120_000..7_200_000 => format!("{} min", ms / 60_000),
        7_200_000..172_800_000 => format!("{} h", ms / 3_600_000),
        _ => format!("{} d", ms / 86_400_000),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::QueueKind;
    use crate::model::routing::Matched;
    use bytes::Bytes;

    fn at(s: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(s, 0)
    }

    fn message(queue: &str, position: u64) -> Message {
        let mut m = Message::new(queue, position, Bytes::new());
        m.exchange = Some("orders".into());
        m.routing_key = Some("order.created".into());
        m.timestamp = at(1_000);
        m.properties.message_id = Some("m1".into());
        m
    }

    fn dead(queue: &str, from: &str, reason: &str, time: u64) -> Message {
        let mut m = message(queue, 0);
        m.exchange = Some("dlx".into());
        m.routing_key = Some(from.into());
        crate::model::death::record_death(
            &mut m.headers,
            &crate::model::death::DeathEvent {
                queue: from,
                reason: DeathReason::parse(reason).unwrap(),
                exchange: "orders",
                routing_keys: &["order.created".to_string()],
                time_secs: time,
                original_expiration: None,
            },
        );
        m
    }

    fn queue(name: &str, consumers: u64) -> QueueSummary {
        let mut q = QueueSummary::new(name, QueueKind::Queue, "classic");
        q.consumers = Some(consumers);
        q
    }

    fn dest(queue: &str) -> Destination {
        Destination {
            queue: queue.into(),
            path: vec![Leg {
                exchange: "orders".into(),
                matched: Matched::Fanout,
            }],
        }
    }

    #[test]
    fn a_dead_letter_remembers_the_publish_it_came_from() {
        let s = sighting_of(&dead("billing.dlq", "billing", "rejected", 1_005));
        let p = s.publish.unwrap();
        assert_eq!(
            (p.exchange.as_str(), p.routing_keys),
            ("orders", vec!["order.created".to_string()])
        );
        assert!(
            p.headers.get("x-death").is_none() && p.headers.get("x-first-death-queue").is_none()
        );
        let mut record = message("payments", 3);
        record.partition = Some(0);
        assert_eq!(
            sighting_of(&record).publish,
            None,
            "a log record is not routed"
        );
    }

    #[test]
    fn each_expected_queue_gets_its_fate_with_the_evidence() {
        let msgs = [
            message("analytics", 12),
            dead("billing.dlq", "billing", "rejected", 1_005),
        ];
        let hops: Vec<Hop> = msgs
            .iter()
            .map(|m| super::super::hop_of(m, HopKind::Queue))
            .collect();
        let sightings: Vec<Sighting> = msgs.iter().map(sighting_of).collect();
        let mut email = queue("email", 0);
        email.message_ttl_ms = Some(60_000);
        let mut shipping = queue("shipping", 0);
        shipping.max_length = Some(400);
        let mut late = queue("late", 0);
        late.message_ttl_ms = Some(3_600_000);
        let queues = vec![
            queue("analytics", 0),
            queue("billing", 2),
            queue("billing.dlq", 0),
            email,
            shipping,
            queue("audit", 3),
            late,
            queue("quiet", 0),
        ];
        let all = |_: &str| true;
        let scope = Scope {
            queues: &queues,
            searched: &all,
            skipped: &[],
            complete: true,
            now: at(1_000 + 600).unwrap(),
        };
        let routed: Vec<Destination> = [
            "billing",
            "shipping",
            "email",
            "analytics",
            "audit",
            "late",
            "quiet",
            "gone",
        ]
        .into_iter()
        .map(dest)
        .collect();
        let routes = fates(&routed, &hops, &sightings, &sightings[0], &scope);
        // Each route's queue and fate, in order.
        let fates_of = |routes: &[Route]| -> Vec<(String, Fate)> {
            routes
                .iter()
                .map(|r| (r.queue.clone().unwrap_or_default(), r.fate))
                .collect()
        };
        assert_eq!(
            fates_of(&routes),
            [
                ("analytics", Fate::Found),
                ("billing", Fate::DeadLettered),
                ("shipping", Fate::Dropped),
                ("email", Fate::Expired),
                ("audit", Fate::Consumed),
                ("late", Fate::NotThere),
                ("quiet", Fate::NotThere),
                ("gone", Fate::Removed),
            ]
            .map(|(q, f)| (q.to_string(), f)),
            "found and dead-lettered in time order, the rest after"
        );
        assert_eq!(routes[0].position, Some(12));
        assert_eq!(routes[1].dead_lettered_to.as_deref(), Some("billing.dlq"));
        assert_eq!(routes[1].reason, Some(DeathReason::Rejected));
        assert_eq!(routes[1].time, at(1_005));
        assert!(
            routes[3]
                .evidence
                .iter()
                .any(|e| e.contains("time to live 60 s, and the message is 10 min old")),
            "{:?}",
            routes[3].evidence
        );
        assert!(
            routes[4].evidence.iter().any(|e| e.contains("3 consumers")),
            "{:?}",
            routes[4].evidence
        );
        assert!(routes[0].evidence[0].starts_with("routed orders (fanout) → analytics"));

        // Filtered out or skipped: not searched, not guessed.
        let only = |q: &str| q != "audit";
        let skipped = [Skipped {
            queue: "quiet".into(),
            reason: "quorum".into(),
        }];
        let scope = Scope {
            searched: &only,
            skipped: &skipped,
            ..scope
        };
        let routes = fates(&routed, &hops, &sightings, &sightings[0], &scope);
        let fate = |q: &str| {
            routes
                .iter()
                .find(|r| r.queue.as_deref() == Some(q))
                .unwrap()
                .fate
        };
        assert_eq!(
            (fate("audit"), fate("quiet")),
            (Fate::NotSearched, Fate::NotSearched)
        );

        // Nothing routed now, but a copy was found: the topology changed since.
        let changed = fates(&[], &hops, &sightings, &sightings[0], &scope);
        assert_eq!(
            fates_of(&changed),
            [("analytics", Fate::Found), ("billing", Fate::DeadLettered)]
                .map(|(q, f)| (q.to_string(), f))
        );
        assert!(
            changed
                .iter()
                .all(|r| r.evidence[0].contains("does not route this publish here"))
        );
        let none = fates(&[], &[], &[], &sightings[0], &scope);
        assert_eq!(
            (none.len(), none[0].fate, none[0].queue.as_deref()),
            (1, Fate::NotRouted, None)
        );
    }

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(60_000), "60 s");
        assert_eq!(duration(600_000), "10 min");
        assert_eq!(duration(3 * 3_600_000), "3 h");
        assert_eq!(duration(3 * 86_400_000), "3 d");
    }
}
