//! Unit tests of the replay plan: message identity, the copy, destinations, filters, and
//! the resume state read from a journal.

use super::*;
use crate::backend::Destination;
use crate::format::destination::destination_json;
use crate::model::death::dead;
use crate::model::topology::Topology;
use crate::model::{FieldTable, Message};

#[test]
fn keys_ignore_death_headers_and_redelivery() {
    let a = dead("billing", "orders", "order.created");
    let mut b = a.clone();
    b.headers.remove("x-death");
    b.redelivered = true;
    b.position = 7;
    assert_eq!(message_key(&a), message_key(&b));
    let mut c = a.clone();
    c.payload = b"other".to_vec().into();
    assert_ne!(message_key(&a), message_key(&c));
    let mut k = Message::new("t.DLT", 0, Vec::new());
    k.partition = Some(2);
    k.offset = Some(40);
    assert_eq!(message_key(&k), "t.DLT/2@40");
}

#[test]
fn the_copy_drops_death_headers_and_counts_replays() {
    let m = dead("billing", "orders", "order.created");
    let copy = replayed_copy(&m, "k1", false);
    assert!(copy.headers.get("x-death").is_none());
    assert!(
        copy.headers
            .iter()
            .all(|(k, _)| !k.starts_with("x-first-death"))
    );
    assert_eq!(copy.headers.get("tenant"), m.headers.get("tenant"));
    assert_eq!(replay_count(&copy), 1);
    assert_eq!(
        copy.headers.get(REPLAYED_FROM).and_then(|v| v.as_bytes()),
        Some(&b"dlq@0"[..])
    );
    let again = replayed_copy(&copy, "k2", true);
    assert_eq!(replay_count(&again), 2);
    assert_eq!(
        again.headers.get(REPLAY_COUNT).and_then(|v| v.as_bytes()),
        Some(&b"2"[..])
    );
    assert_eq!(copy.payload, m.payload);
    assert_eq!(copy.properties, m.properties);
}

#[test]
fn destinations_from_x_death() {
    let plan = ReplayOptions::default().plan().unwrap();
    // Published to an exchange, and straight to the queue (the default exchange).
    for (exchange, routing_key) in [("orders", "order.created"), ("", "billing")] {
        let m = dead("billing", exchange, routing_key);
        let (d, note) = plan.destination(&m, false, None).unwrap();
        assert_eq!(
            d,
            Destination::Exchange {
                exchange: exchange.into(),
                routing_key: routing_key.into()
            }
        );
        assert!(note.is_none());
    }
    // No history: skipped unless --to.
    let plain = Message::new("dlq", 0, Vec::new());
    assert!(plan.destination(&plain, false, None).is_err());
    let to = ReplayOptions {
        to: Some("queue:retry".into()),
        ..Default::default()
    }
    .plan()
    .unwrap();
    let (d, _) = to.destination(&plain, false, None).unwrap();
    assert_eq!(
        d,
        Destination::Exchange {
            exchange: "".into(),
            routing_key: "retry".into()
        }
    );
}

#[test]
fn fan_out_goes_straight_to_the_queue_that_died() {
    use crate::model::topology::{Binding, DestinationKind, Exchange, ExchangeKind};
    let t = Topology {
        exchanges: vec![Exchange {
            name: "orders".into(),
            kind: ExchangeKind::Fanout,
        }],
        queues: ["billing".to_string(), "shipping".to_string()].into(),
        bindings: ["billing", "shipping"]
            .iter()
            .map(|q| Binding {
                source: "orders".into(),
                destination: q.to_string(),
                destination_kind: DestinationKind::Queue,
                routing_key: String::new(),
                arguments: FieldTable::new(),
            })
            .collect(),
    };
    let plan = ReplayOptions::default().plan().unwrap();
    let m = dead("billing", "orders", "order.created");
    let (d, note) = plan.destination(&m, false, Some(&t)).unwrap();
    assert_eq!(
        d,
        Destination::Exchange {
            exchange: "".into(),
            routing_key: "billing".into()
        }
    );
    assert!(note.unwrap().contains("1 other queue"));
    let via = ReplayOptions {
        via: Some("exchange".into()),
        ..Default::default()
    }
    .plan()
    .unwrap();
    let (d, _) = via.destination(&m, false, Some(&t)).unwrap();
    assert!(matches!(d, Destination::Exchange { exchange, .. } if exchange == "orders"));
}

#[test]
fn filters() {
    let m = dead("billing", "orders", "order.created");
    let f = |s: &str| Filter::parse(s).unwrap().matches(&m);
    assert!(f("reason=rejected"));
    assert!(f("queue=billing and exchange=orders"));
    assert!(!f("queue=billing and exchange=payments"));
    assert!(f("header.tenant=acme"));
    assert!(f("body~\"n\":\\s*1"));
    assert!(f("message_id!=m-2"));
    assert!(Filter::parse("colour=red").is_err());
    assert!(Filter::parse("reason").is_err());
    assert!(Filter::parse("body~(").is_err());
}

#[test]
fn resume_state_from_a_journal() {
    let dest = destination_json(&Destination::Exchange {
        exchange: "".into(),
        routing_key: "q".into(),
    });
    let take = |k: &str| Entry::Take {
        key: k.into(),
        position: 0,
        dest: dest.clone(),
        record: json!({"headers": {}}),
    };
    let entries = vec![
        take("a"),
        take("b"),
        take("c"),
        Entry::Confirmed { key: "a".into() },
        Entry::Confirmed { key: "b".into() },
        Entry::Acked {
            keys: vec!["a".into()],
        },
    ];
    let mut r = Resume::from_entries(&entries);
    // b was confirmed but not acked: remove it without publishing again.
    assert!(r.take_confirmed("b"));
    assert!(!r.take_confirmed("b"));
    assert!(!r.take_confirmed("a"));
    // c was in flight.
    assert_eq!(r.in_flight(), 1);
    assert_eq!(r.replayed_before, 2);
}
