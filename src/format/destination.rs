//! The JSON form of a destination, as journals and backups keep it.

use crate::model::destination::Destination;
use serde_json::Value;

/// A destination as JSON, for journals and reports.
pub fn destination_json(d: &Destination) -> Value {
    match d {
        Destination::Exchange {
            exchange,
            routing_key,
        } => serde_json::json!({"exchange": exchange, "routing_key": routing_key}),
        Destination::Topic { topic, partition } => {
            serde_json::json!({"topic": topic, "partition": partition})
        }
    }
}

/// Read a destination back from [`destination_json`].
pub fn destination_from_json(v: &Value) -> Option<Destination> {
    if let Some(topic) = v.get("topic").and_then(Value::as_str) {
        let partition = v
            .get("partition")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok());
        return Some(Destination::Topic {
            topic: topic.to_string(),
            partition,
        });
    }
    Some(Destination::Exchange {
        exchange: v.get("exchange")?.as_str()?.to_string(),
        routing_key: v.get("routing_key")?.as_str()?.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_round_trip() {
        for d in [
            Destination::Exchange {
                exchange: "orders".into(),
                routing_key: "order.created".into(),
            },
            Destination::Topic {
                topic: "t".into(),
                partition: Some(3),
            },
            Destination::Topic {
                topic: "t".into(),
                partition: None,
            },
        ] {
            assert_eq!(destination_from_json(&destination_json(&d)), Some(d));
        }
    }
}
