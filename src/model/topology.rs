//! AMQP routing as a pure function of exchanges and bindings: used by the local broker to
//! deliver, and by every AMQP backend to resolve which queue a dead-letter exchange feeds.

use super::value::{FieldTable, FieldValue};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExchangeKind {
    Direct,
    Fanout,
    Topic,
    Headers,
}

impl ExchangeKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "direct" => ExchangeKind::Direct,
            "fanout" => ExchangeKind::Fanout,
            "topic" => ExchangeKind::Topic,
            "headers" => ExchangeKind::Headers,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ExchangeKind::Direct => "direct",
            ExchangeKind::Fanout => "fanout",
            ExchangeKind::Topic => "topic",
            ExchangeKind::Headers => "headers",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exchange {
    pub name: String,
    pub kind: ExchangeKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DestinationKind {
    Queue,
    Exchange,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Binding {
    pub source: String,
    pub destination: String,
    pub destination_kind: DestinationKind,
    pub routing_key: String,
    /// Headers-exchange match arguments (`x-match` and the values to match), in the typed
    /// JSON rendering of headers.
    #[serde(serialize_with = "table_json", skip_deserializing)]
    pub arguments: FieldTable,
}

fn table_json<S: serde::Serializer>(t: &FieldTable, s: S) -> Result<S::Ok, S::Error> {
    t.serialize_json(s)
}

/// One virtual host, as a browser lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VhostSummary {
    pub name: String,
    pub messages: Option<u64>,
    pub ready: Option<u64>,
    pub unacked: Option<u64>,
    /// Whether the firehose is on (RabbitMQ's `trace_on`): `tail` then sees every publish.
    pub tracing: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_queue_type: Option<String>,
}

/// A vhost's exchanges and its bindings, read together so the exchanges' binding counts
/// and the list agree.
pub type Routing = (Vec<ExchangeSummary>, Vec<Binding>);

/// One exchange, as a browser lists it. The default exchange is named `""`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExchangeSummary {
    pub name: String,
    /// `direct`, `fanout`, `topic`, `headers`, or a plugin's type (`x-delayed-message`).
    #[serde(rename = "type")]
    pub kind: String,
    pub durable: bool,
    pub auto_delete: bool,
    /// Internal exchanges take no publishes from clients, only from other exchanges.
    pub internal: bool,
    /// Where messages that match no binding go: the `alternate-exchange` argument or policy.
    pub alternate_exchange: Option<String>,
    /// The policy applied to it, if any.
    pub policy: Option<String>,
    #[serde(serialize_with = "table_json")]
    pub arguments: FieldTable,
    /// Messages per second published to it, and routed on by it.
    pub publish_in_rate: Option<f64>,
    pub publish_out_rate: Option<f64>,
    /// Bindings with this exchange as their source.
    pub bindings: usize,
}

/// Exchanges, queue names and bindings of one virtual host.
#[derive(Debug, Clone, Default)]
pub struct Topology {
    pub exchanges: Vec<Exchange>,
    pub queues: BTreeSet<String>,
    pub bindings: Vec<Binding>,
}

impl Topology {
    pub fn exchange(&self, name: &str) -> Option<&Exchange> {
        self.exchanges.iter().find(|e| e.name == name)
    }

    /// The queues a message published to `exchange` with `routing_key` reaches, in binding
    /// order without duplicates. The default exchange (`""`) routes to the queue named by
    /// the key. Exchange-to-exchange bindings are followed once each (no loops).
    pub fn route(&self, exchange: &str, routing_key: &str, headers: &FieldTable) -> Vec<String> {
        let mut out = Vec::new();
        let mut seen_exchanges = BTreeSet::new();
        self.route_into(
            exchange,
            routing_key,
            headers,
            &mut seen_exchanges,
            &mut out,
        );
        out
    }

    fn route_into(
        &self,
        exchange: &str,
        key: &str,
        headers: &FieldTable,
        seen: &mut BTreeSet<String>,
        out: &mut Vec<String>,
    ) {
        if !seen.insert(exchange.to_string()) {
            return;
        }
        if exchange.is_empty() {
            if self.queues.contains(key) && !out.iter().any(|q| q == key) {
                out.push(key.to_string());
            }
            return;
        }
        let Some(ex) = self.exchange(exchange) else {
            return;
        };
        for b in self.bindings.iter().filter(|b| b.source == exchange) {
            let hit = match ex.kind {
                ExchangeKind::Fanout => true,
                ExchangeKind::Direct => b.routing_key == key,
                ExchangeKind::Topic => topic_matches(&b.routing_key, key),
                ExchangeKind::Headers => headers_match(&b.arguments, headers),
            };
            if !hit {
                continue;
            }
            match b.destination_kind {
                DestinationKind::Queue => {
                    if !out.contains(&b.destination) {
                        out.push(b.destination.clone());
                    }
                }
                DestinationKind::Exchange => {
                    self.route_into(&b.destination, key, headers, seen, out)
                }
            }
        }
    }
}

/// AMQP topic matching: words split on `.`, `*` matches one word, `#` zero or more.
/// Dynamic programming over (pattern word, key word), so no pattern can take more than
/// pattern length × key length steps.
pub fn topic_matches(pattern: &str, key: &str) -> bool {
    let p: Vec<&str> = if pattern.is_empty() {
        Vec::new()
    } else {
        pattern.split('.').collect()
    };
    let k: Vec<&str> = if key.is_empty() {
        Vec::new()
    } else {
        key.split('.').collect()
    };
    // can[j]: the pattern words so far match the first j key words.
    let mut can = vec![false; k.len() + 1];
    can[0] = true;
    for word in &p {
        let mut next = vec![false; k.len() + 1];
        if *word == "#" {
            let mut any = false;
            for j in 0..=k.len() {
                any |= can[j];
                next[j] = any;
            }
        } else {
            for j in 1..=k.len() {
                next[j] = can[j - 1] && (*word == "*" || *word == k[j - 1]);
            }
        }
        can = next;
    }
    can[k.len()]
}

/// Headers-exchange matching: `x-match` is `all` (default), `any`, `all-with-x` or
/// `any-with-x`; keys starting with `x-` count only in the `-with-x` modes; a void value
/// matches on presence alone.
pub fn headers_match(args: &FieldTable, headers: &FieldTable) -> bool {
    let (any, with_x) = match args
        .get("x-match")
        .and_then(FieldValue::as_str)
        .unwrap_or("all")
    {
        "any" => (true, false),
        "any-with-x" => (true, true),
        "all-with-x" => (false, true),
        _ => (false, false),
    };
    let mut wanted = args
        .iter()
        .filter(|(k, _)| *k != "x-match" && (with_x || !k.starts_with("x-")))
        .peekable();
    if wanted.peek().is_none() {
        return !any;
    }
    let one = |(k, v): (&str, &FieldValue)| match headers.get(k) {
        Some(actual) => matches!(v, FieldValue::Void) || same_value(actual, v),
        None => false,
    };
    if any {
        wanted.any(one)
    } else {
        wanted.all(one)
    }
}

/// Values compare as RabbitMQ compares them: numbers by value, strings by bytes.
fn same_value(a: &FieldValue, b: &FieldValue) -> bool {
    if a == b {
        return true;
    }
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    matches!((a.as_bytes(), b.as_bytes()), (Some(x), Some(y)) if x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_patterns() {
        assert!(topic_matches("invoice.*", "invoice.created"));
        assert!(!topic_matches("invoice.*", "invoice.created.eu"));
        assert!(topic_matches("invoice.#", "invoice.created.eu"));
        assert!(topic_matches("invoice.#", "invoice"));
        assert!(topic_matches("#", ""));
        assert!(topic_matches("#", "a.b.c"));
        assert!(topic_matches("*.created", "order.created"));
        assert!(!topic_matches("*.created", "created"));
        assert!(topic_matches("a.#.z", "a.z"));
        assert!(topic_matches("a.#.z", "a.b.c.z"));
        assert!(!topic_matches("a.#.z", "a.b.c"));
        assert!(topic_matches("#.#.#", "a"));
        let long_key = vec!["w"; 200].join(".");
        let hashes = vec!["#"; 100].join(".") + ".x";
        assert!(!topic_matches(&hashes, &long_key), "finishes quickly");
    }

    fn topo() -> Topology {
        let q = |s: &str, d: &str, k: &str| Binding {
            source: s.into(),
            destination: d.into(),
            destination_kind: DestinationKind::Queue,
            routing_key: k.into(),
            arguments: FieldTable::new(),
        };
        let mut e2e = q("events", "fan", "#");
        e2e.destination_kind = DestinationKind::Exchange;
        Topology {
            exchanges: vec![
                Exchange {
                    name: "orders".into(),
                    kind: ExchangeKind::Fanout,
                },
                Exchange {
                    name: "dlx".into(),
                    kind: ExchangeKind::Direct,
                },
                Exchange {
                    name: "events".into(),
                    kind: ExchangeKind::Topic,
                },
                Exchange {
                    name: "fan".into(),
                    kind: ExchangeKind::Fanout,
                },
            ],
            queues: ["a", "b", "c", "a.dlq", "audit"]
                .into_iter()
                .map(String::from)
                .collect(),
            bindings: vec![
                q("orders", "a", ""),
                q("orders", "b", "ignored"),
                q("dlx", "a.dlq", "a"),
                q("events", "c", "invoice.*"),
                e2e,
                q("fan", "audit", ""),
                q("fan", "c", ""),
            ],
        }
    }

    #[test]
    fn routes_through_every_exchange_kind() {
        let t = topo();
        let none = FieldTable::new();
        assert_eq!(t.route("orders", "x", &none), vec!["a", "b"]);
        assert_eq!(t.route("dlx", "a", &none), vec!["a.dlq"]);
        assert!(t.route("dlx", "b", &none).is_empty());
        assert_eq!(t.route("", "audit", &none), vec!["audit"]);
        assert!(t.route("", "missing", &none).is_empty());
        assert!(t.route("nope", "a", &none).is_empty());
        // c is reached directly and through the exchange-to-exchange binding: once.
        assert_eq!(
            t.route("events", "invoice.created", &none),
            vec!["c", "audit"]
        );
    }

    #[test]
    fn headers_exchange_all_and_any() {
        let mut args = FieldTable::new();
        args.insert("x-match", FieldValue::string("any"));
        args.insert("region", FieldValue::string("eu"));
        args.insert("tier", FieldValue::string("gold"));
        let mut h = FieldTable::new();
        h.insert("region", FieldValue::string("eu"));
        assert!(headers_match(&args, &h));
        args.insert("x-match", FieldValue::string("all"));
        assert!(!headers_match(&args, &h));
        h.insert("tier", FieldValue::ShortString("gold".into()));
        assert!(headers_match(&args, &h));
    }
}
