//! Where a published message goes: an exchange with a routing key (a queue is the default
//! exchange with its name), or a topic, and how it reads to people.

/// Where a published message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destination {
    Exchange {
        exchange: String,
        routing_key: String,
    },
    Topic {
        topic: String,
        partition: Option<i32>,
    },
}

/// A destination for people: `exchange "orders" → order.created`, `queue billing`, `topic t`.
pub fn destination_text(d: &Destination) -> String {
    match d {
        Destination::Exchange {
            exchange,
            routing_key,
        } if exchange.is_empty() => format!("queue {routing_key}"),
        Destination::Exchange {
            exchange,
            routing_key,
        } => format!("exchange {exchange} (key {routing_key})"),
        Destination::Topic {
            topic,
            partition: Some(p),
        } => format!("topic {topic} partition {p}"),
        Destination::Topic { topic, .. } => format!("topic {topic}"),
    }
}
