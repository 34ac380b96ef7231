//! Exchanges, bindings and queues of a virtual host, and routing through them (the rules are in
//! `routing`): used by the local broker to
//! deliver, and by every AMQP backend to resolve which queue a dead-letter exchange feeds.

use super::routing::{ExchangeRule, HeaderEquality, Network, Rule, route_queues};
use super::value::FieldTable;
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

    /// The queues a message published to `exchange` with `routing_key` reaches, in the
    /// order they are reached, without duplicates (RabbitMQ's rules: `model::routing`).
    /// The headers' `CC` and `BCC` are not read here: callers that want them pass each key.
    pub fn route(&self, exchange: &str, routing_key: &str, headers: &FieldTable) -> Vec<String> {
        route_queues(
            self,
            exchange,
            &[routing_key],
            headers,
            HeaderEquality::Exact,
        )
    }
}

/// A topology knows no alternate exchanges and only the four standard exchange types.
impl Network for Topology {
    fn exchange(&self, name: &str) -> Option<ExchangeRule<'_>> {
        Topology::exchange(self, name).map(|e| ExchangeRule {
            rule: Rule::Known(e.kind),
            alternate: None,
        })
    }

    fn for_each_binding(&self, exchange: &str, f: &mut dyn FnMut(&Binding)) {
        for b in self.bindings.iter().filter(|b| b.source == exchange) {
            f(b);
        }
    }

    fn has_queue(&self, name: &str) -> bool {
        self.queues.contains(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
