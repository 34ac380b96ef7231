//! The firehose (`amq.rabbitmq.trace`, with tracing on in a vhost): its `publish.<exchange>`
//! and `deliver.<queue>` notifications decoded, and mqscope's own reads told apart from
//! consumers' deliveries.

use super::convert::{self, publish_time};
use super::mgmt::Mgmt;
use crate::backend::{Delivered, TailEvent};
use crate::model::{Delivery, FieldValue, Message};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// The exchange the firehose routes its notifications through, per vhost.
pub(super) const FIREHOSE: &str = "amq.rabbitmq.trace";

/// A firehose notification.
pub(super) enum Notice {
    /// A publish; `tapped` says the tail's own queue was among the routed ones (the tail's
    /// copy through its bindings follows, to be dropped).
    Publish { message: Message, tapped: bool },
    /// A message handed to a consumer.
    Deliver(Delivered),
}

/// Decode a firehose notification (`rabbit_trace.erl`): the body is the original, and the
/// headers say where it was published (`exchange_name`, `routing_keys`), its `properties`
/// (with the original headers among them) and the `node`. A publish adds `routed_queues`;
/// a delivery `redelivered` (0 or 1), `connection`, `channel` and `user`. `tap`, the queue
/// reading the firehose, is left out of the routed queues. None for anything else.
pub(super) fn decode(
    position: u64,
    d: &lapin::message::Delivery,
    tap: &str,
    now: DateTime<Utc>,
) -> Option<Notice> {
    let key = d.routing_key.as_str();
    let (publish, name) = match (key.strip_prefix("publish."), key.strip_prefix("deliver.")) {
        (Some(x), _) => (true, x),
        (_, Some(q)) => (false, q),
        _ => return None,
    };
    let trace = convert::table_from_amqp(d.properties.headers().as_ref()?);
    let exchange = trace.get("exchange_name")?.as_str()?.to_string();
    let held_in = if publish { &exchange } else { name };
    let mut m = Message::new(held_in, position, Bytes::copy_from_slice(&d.data));
    m.routing_key = trace
        .get("routing_keys")
        .and_then(FieldValue::as_array)
        .and_then(|keys| keys.first())
        .and_then(FieldValue::as_str)
        .map(str::to_string);
    m.exchange = Some(exchange);
    if let Some(props) = trace.get("properties").and_then(FieldValue::as_table) {
        m.properties = convert::properties_from_table(props);
        if let Some(h) = props.get("headers").and_then(FieldValue::as_table) {
            m.headers = h.clone();
        }
    }
    m.timestamp = publish_time(&m.properties);
    m.seen = Some(now);
    let text = |k: &str| {
        trace
            .get(k)
            .and_then(FieldValue::as_str)
            .map(str::to_string)
    };
    if !publish {
        let redelivered = trace
            .get("redelivered")
            .and_then(FieldValue::as_i64)
            .is_some_and(|r| r != 0);
        m.redelivered = redelivered;
        let delivery = Delivery {
            queue: name.to_string(),
            at: now,
            redelivered,
            user: text("user"),
            connection: text("connection"),
            channel: trace.get("channel").and_then(FieldValue::as_i64),
            node: text("node"),
        };
        return Some(Notice::Deliver(Delivered {
            delivery,
            message: m,
        }));
    }
    let mut tapped = false;
    m.routed_queues = trace
        .get("routed_queues")
        .and_then(FieldValue::as_array)
        .map(|qs| {
            qs.iter()
                .filter_map(FieldValue::as_str)
                .filter(|q| {
                    tapped |= *q == tap;
                    *q != tap
                })
                .map(str::to_string)
                .collect()
        });
    Some(Notice::Publish { message: m, tapped })
}

/// How long deliveries wait for the management API to name mqscope's own connections
/// before they are let through as they are: two of its statistics rounds and some.
const OWN_LOOKUP_LIMIT: Duration = Duration::from_secs(15);
/// How often the API is asked meanwhile.
pub(super) const OWN_LOOKUP_EVERY: Duration = Duration::from_millis(500);
/// The most deliveries held meanwhile (a busy vhost delivers thousands a second): the
/// oldest go first, and the tail says how many.
const HELD_MAX: usize = 10_000;

/// mqscope's own reads are deliveries too: every peek takes messages (and gives them
/// back), and the firehose reports each. They come from the backend's own connections,
/// which the broker names only by address; the management API says which of its
/// connections carry this backend's connection name. Until it has, deliveries are held.
pub(super) struct OwnReads {
    mgmt: Mgmt,
    vhost: String,
    client_name: String,
    /// The tail's own queue: copies delivered to it are the tail's, not a consumer's.
    tap: String,
    /// The broker's names of this backend's connections, once known.
    own: Option<HashSet<String>>,
    held: std::collections::VecDeque<Delivered>,
    /// Held deliveries dropped because too many waited.
    dropped: u64,
    give_up: Instant,
}

impl OwnReads {
    /// `wanted`: whether deliveries are followed at all (nothing to look up otherwise).
    pub(super) fn new(mgmt: Mgmt, vhost: &str, client_name: &str, tap: &str, wanted: bool) -> Self {
        Self {
            mgmt,
            vhost: vhost.to_string(),
            client_name: client_name.to_string(),
            tap: tap.to_string(),
            own: (!wanted).then(HashSet::new),
            held: std::collections::VecDeque::new(),
            dropped: 0,
            give_up: Instant::now() + OWN_LOOKUP_LIMIT,
        }
    }

    /// Whether the own connections are still being looked up.
    pub(super) fn looking(&self) -> bool {
        self.own.is_none()
    }

    /// A delivery seen: the events to send now (none while held, or when it is mqscope's).
    pub(super) fn offer(&mut self, d: Delivered) -> Vec<TailEvent> {
        if d.delivery.queue == self.tap {
            return Vec::new();
        }
        match &self.own {
            None => {
                if self.held.len() == HELD_MAX {
                    self.held.pop_front();
                    self.dropped += 1;
                }
                self.held.push_back(d);
                Vec::new()
            }
            Some(own) => keep(own, d).into_iter().collect(),
        }
    }

    /// Ask the management API once more. Returns the held deliveries that are not
    /// mqscope's once the answer is known, and a warning when the lookup gave up.
    pub(super) async fn look_up(&mut self) -> (Vec<TailEvent>, Option<String>) {
        let found = self
            .mgmt
            .connections_named(&self.vhost, &self.client_name)
            .await;
        let mut warning = match found {
            Ok(names) if !names.is_empty() => {
                self.own = Some(names.into_iter().collect());
                None
            }
            _ if Instant::now() < self.give_up => return (Vec::new(), None),
            Ok(_) => Some(format!(
                "the management API did not list mqscope's connection (\"{}\") within {} s: deliveries are shown unfiltered, mqscope's own reads among them",
                self.client_name,
                OWN_LOOKUP_LIMIT.as_secs()
            )),
            Err(e) => Some(format!(
                "could not tell mqscope's own reads from consumers' deliveries ({e}): deliveries are shown unfiltered"
            )),
        };
        if self.dropped > 0 {
            let dropped = format!(
                "{} deliveries were dropped while mqscope's own connection was looked up",
                self.dropped
            );
            warning = Some(match warning {
                Some(w) => format!("{w}; {dropped}"),
                None => dropped,
            });
        }
        let own = self.own.get_or_insert_with(HashSet::new);
        let out = self.held.drain(..).filter_map(|d| keep(own, d)).collect();
        (out, warning)
    }
}

fn keep(own: &HashSet<String>, d: Delivered) -> Option<TailEvent> {
    let ours = d
        .delivery
        .connection
        .as_ref()
        .is_some_and(|c| own.contains(c));
    (!ours).then(|| TailEvent::Delivery(d))
}
