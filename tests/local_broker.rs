//! Semantics of the local broker: routing, dead-lettering (reject, TTL, max-length,
//! delivery limit) with RabbitMQ's x-death records, requeue order, logs and group lag.

use bytes::Bytes;
use mqscope::backend::local::broker::{
    LocalBroker, LocalConfig, Outgoing, Overflow, QueueArgs, QueueType,
};
use mqscope::backend::local::clock::Clock;
use mqscope::model::topology::{DestinationKind, ExchangeKind};
use mqscope::model::{DeathReason, FieldTable, FieldValue, Properties};
use std::sync::Arc;

fn broker() -> LocalBroker {
    LocalBroker::new("test", Clock::manual(1_000_000), LocalConfig::default())
}

fn msg(body: &str) -> Outgoing {
    Outgoing {
        payload: Bytes::from(body.to_string()),
        ..Outgoing::default()
    }
}

fn bodies(b: &LocalBroker, q: &str) -> Vec<String> {
    b.peek_queue(q, 0, 1000)
        .unwrap()
        .into_iter()
        .map(|m| String::from_utf8(m.payload.to_vec()).unwrap())
        .collect()
}

fn with_dlx(dlx: &str, key: Option<&str>) -> QueueArgs {
    QueueArgs {
        dead_letter_exchange: Some(dlx.into()),
        dead_letter_routing_key: key.map(String::from),
        ..QueueArgs::default()
    }
}

#[test]
fn fanout_topic_direct_and_headers_routing() {
    let b = broker();
    b.declare_exchange("fan", ExchangeKind::Fanout).unwrap();
    b.declare_exchange("top", ExchangeKind::Topic).unwrap();
    b.declare_exchange("dir", ExchangeKind::Direct).unwrap();
    b.declare_exchange("hdr", ExchangeKind::Headers).unwrap();
    for q in ["a", "b", "c", "eu"] {
        b.declare_queue(q, QueueArgs::default()).unwrap();
    }
    b.bind_queue("a", "fan", "").unwrap();
    b.bind_queue("b", "fan", "").unwrap();
    b.bind_queue("c", "top", "order.*.eu").unwrap();
    b.bind_queue("a", "dir", "k").unwrap();
    let mut args = FieldTable::new();
    args.insert("x-match", FieldValue::string("all"));
    args.insert("region", FieldValue::string("eu"));
    b.bind("eu", DestinationKind::Queue, "hdr", "", args)
        .unwrap();

    assert_eq!(
        b.publish("fan", "whatever", msg("f")).unwrap(),
        vec!["a", "b"]
    );
    assert_eq!(
        b.publish("top", "order.created.eu", msg("t")).unwrap(),
        vec!["c"]
    );
    assert!(
        b.publish("top", "order.created.us", msg("lost"))
            .unwrap()
            .is_empty()
    );
    assert_eq!(b.publish("dir", "k", msg("d")).unwrap(), vec!["a"]);
    assert_eq!(b.publish("", "b", msg("default")).unwrap(), vec!["b"]);
    let mut m = msg("h");
    m.headers.insert("region", FieldValue::string("eu"));
    assert_eq!(b.publish("hdr", "", m).unwrap(), vec!["eu"]);
    assert!(b.publish("hdr", "", msg("no headers")).unwrap().is_empty());
    assert_eq!(bodies(&b, "a"), vec!["f", "d"]);
    assert_eq!(bodies(&b, "b"), vec!["f", "default"]);
    assert!(b.publish("nope", "", msg("x")).is_err());
    assert!(
        b.publish_mandatory("top", "nothing.here", msg("x"))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn reject_dead_letters_with_x_death_and_requeue_keeps_order() {
    let b = broker();
    b.declare_exchange("orders", ExchangeKind::Direct).unwrap();
    b.declare_exchange("dlx", ExchangeKind::Direct).unwrap();
    b.declare_queue("work", with_dlx("dlx", Some("work.dlq")))
        .unwrap();
    b.declare_queue("work.dlq", QueueArgs::default()).unwrap();
    b.bind_queue("work", "orders", "order.created").unwrap();
    b.bind_queue("work.dlq", "dlx", "work.dlq").unwrap();
    for body in ["m1", "m2", "m3", "m4"] {
        b.publish("orders", "order.created", msg(body)).unwrap();
    }
    let d1 = b.get("work", false).unwrap().unwrap();
    let d2 = b.get("work", false).unwrap().unwrap();
    let d3 = b.get("work", false).unwrap().unwrap();
    // Return the first and third out of order: they go back to their original places.
    b.nack(d3.tag, true).unwrap();
    b.nack(d1.tag, true).unwrap();
    b.nack(d2.tag, false).unwrap();
    assert_eq!(bodies(&b, "work"), vec!["m1", "m3", "m4"]);
    let peeked = b.peek_queue("work", 0, 10).unwrap();
    assert!(peeked[0].redelivered && peeked[1].redelivered && !peeked[2].redelivered);
    assert!(b.nack(d2.tag, true).is_err(), "a tag is settled once");

    let dead = b.peek_queue("work.dlq", 0, 10).unwrap();
    assert_eq!(dead.len(), 1);
    let deaths = dead[0].deaths();
    assert_eq!(deaths.len(), 1);
    let d = &deaths[0];
    assert_eq!(
        (d.queue.as_str(), d.reason, d.count),
        ("work", DeathReason::Rejected, 1)
    );
    assert_eq!(d.exchange.as_deref(), Some("orders"));
    assert_eq!(d.routing_keys, vec!["order.created"]);
    assert_eq!(d.time.unwrap().timestamp(), 1_000);
    assert_eq!(dead[0].exchange.as_deref(), Some("dlx"));
    assert_eq!(dead[0].routing_key.as_deref(), Some("work.dlq"));
    // The x-death entry is written as RabbitMQ does, fields in its order.
    let FieldValue::Array(entries) = dead[0].headers.get("x-death").unwrap() else {
        panic!()
    };
    let keys: Vec<&str> = entries[0]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(
        keys,
        vec![
            "count",
            "reason",
            "queue",
            "time",
            "exchange",
            "routing-keys"
        ]
    );
    assert_eq!(
        dead[0]
            .headers
            .get("x-first-death-reason")
            .and_then(FieldValue::as_str),
        Some("rejected")
    );
}

#[test]
fn ttl_expiry_dead_letters_from_the_head() {
    let b = broker();
    b.declare_queue(
        "email",
        QueueArgs {
            message_ttl_ms: Some(1_000),
            ..with_dlx("", Some("email.dlq"))
        },
    )
    .unwrap();
    b.declare_queue("email.dlq", QueueArgs::default()).unwrap();
    b.publish("", "email", msg("a")).unwrap();
    let mut short = msg("b");
    short.properties = Properties {
        expiration: Some("200".into()),
        ..Properties::default()
    };
    b.publish("", "email", short).unwrap();
    b.clock().advance(500);
    b.expire_all();
    // "b" is past its own TTL but waits behind "a", as in RabbitMQ.
    assert_eq!(bodies(&b, "email"), vec!["a", "b"]);
    b.clock().advance(500);
    b.expire_all();
    assert!(bodies(&b, "email").is_empty());
    let dead = b.peek_queue("email.dlq", 0, 10).unwrap();
    assert_eq!(dead.len(), 2);
    for m in &dead {
        let d = &m.deaths()[0];
        assert_eq!(
            (d.queue.as_str(), d.reason),
            ("email", DeathReason::Expired)
        );
        assert_eq!(d.exchange.as_deref(), Some(""));
        assert_eq!(d.routing_keys, vec!["email"]);
    }
    assert_eq!(
        dead[1].deaths()[0].original_expiration.as_deref(),
        Some("200")
    );
    assert_eq!(
        dead[1].properties.expiration, None,
        "expiration moves into x-death"
    );
}

#[test]
fn max_length_overflow_modes() {
    let b = broker();
    b.declare_exchange("dlx", ExchangeKind::Fanout).unwrap();
    b.declare_queue("dlq", QueueArgs::default()).unwrap();
    b.bind_queue("dlq", "dlx", "").unwrap();
    let capped = |overflow| QueueArgs {
        max_length: Some(3),
        overflow,
        ..with_dlx("dlx", None)
    };
    b.declare_queue("head", capped(Overflow::DropHead)).unwrap();
    b.declare_queue("reject", capped(Overflow::RejectPublish))
        .unwrap();
    b.declare_queue("rejectdlx", capped(Overflow::RejectPublishDlx))
        .unwrap();
    for i in 1..=5 {
        for q in ["head", "reject", "rejectdlx"] {
            b.publish("", q, msg(&format!("{q}{i}"))).unwrap();
        }
    }
    assert_eq!(bodies(&b, "head"), vec!["head3", "head4", "head5"]);
    assert_eq!(bodies(&b, "reject"), vec!["reject1", "reject2", "reject3"]);
    assert_eq!(
        bodies(&b, "rejectdlx"),
        vec!["rejectdlx1", "rejectdlx2", "rejectdlx3"]
    );
    assert_eq!(
        bodies(&b, "dlq"),
        vec!["head1", "rejectdlx4", "head2", "rejectdlx5"]
    );
    for m in b.peek_queue("dlq", 0, 10).unwrap() {
        assert_eq!(m.deaths()[0].reason, DeathReason::Maxlen);
    }
}

#[test]
fn broker_wide_cap_bounds_memory() {
    let b = LocalBroker::new(
        "small",
        Clock::manual(0),
        LocalConfig {
            max_queue_messages: 10,
            max_partition_records: 4,
            keep_events: 0,
        },
    );
    b.declare_queue("q", QueueArgs::default()).unwrap();
    for i in 0..100 {
        b.publish("", "q", msg(&i.to_string())).unwrap();
    }
    assert_eq!(b.queue_len("q").unwrap(), 10);
    assert_eq!(bodies(&b, "q")[0], "90");
    b.declare_topic("t", 1).unwrap();
    for i in 0..10 {
        b.produce(
            "t",
            Some(0),
            None,
            FieldTable::new(),
            Bytes::from(format!("{i}")),
        )
        .unwrap();
    }
    let p = &b.partitions("t").unwrap()[0];
    assert_eq!((p.low, p.high), (6, 10));
    let from_start = b.fetch("t", 0, 0, 100).unwrap();
    assert_eq!(
        from_start[0].offset,
        Some(6),
        "reads below the log start begin at it"
    );
}

#[test]
fn quorum_delivery_limit_dead_letters_after_too_many_returns() {
    let b = broker();
    b.declare_queue(
        "qq",
        QueueArgs {
            queue_type: QueueType::Quorum,
            delivery_limit: Some(2),
            ..with_dlx("", Some("qq.dlq"))
        },
    )
    .unwrap();
    b.declare_queue("qq.dlq", QueueArgs::default()).unwrap();
    b.publish("", "qq", msg("poison")).unwrap();
    for round in 0..3 {
        let d = b.get("qq", false).unwrap().expect("still in the queue");
        assert_eq!(d.message.delivery_count, Some(round));
        b.nack(d.tag, true).unwrap();
    }
    assert!(bodies(&b, "qq").is_empty());
    let dead = b.peek_queue("qq.dlq", 0, 10).unwrap();
    assert_eq!(dead[0].deaths()[0].reason, DeathReason::DeliveryLimit);
}

#[test]
fn dead_letter_cycles_without_rejection_are_dropped() {
    let b = broker();
    b.declare_exchange("to-b", ExchangeKind::Fanout).unwrap();
    b.declare_exchange("to-a", ExchangeKind::Fanout).unwrap();
    let ttl = |dlx: &str| QueueArgs {
        message_ttl_ms: Some(10),
        ..with_dlx(dlx, None)
    };
    b.declare_queue("a", ttl("to-b")).unwrap();
    b.declare_queue("b", ttl("to-a")).unwrap();
    b.bind_queue("b", "to-b", "").unwrap();
    b.bind_queue("a", "to-a", "").unwrap();
    b.publish("", "a", msg("loop")).unwrap();
    for _ in 0..5 {
        b.clock().advance(20);
        b.expire_all();
    }
    assert!(bodies(&b, "a").is_empty() && bodies(&b, "b").is_empty());
}

#[test]
fn consumer_group_lag_and_partitioning() {
    let b = broker();
    b.declare_topic("payments", 3).unwrap();
    let mut placed = Vec::new();
    for i in 0..30 {
        let key = Bytes::from(format!("ORD-{}", i % 5));
        placed.push(
            b.produce(
                "payments",
                None,
                Some(key),
                FieldTable::new(),
                Bytes::from("{}"),
            )
            .unwrap(),
        );
    }
    // The same key always lands on the same partition.
    for i in 0..30 {
        assert_eq!(placed[i].0, placed[i % 5].0);
    }
    let parts = b.partitions("payments").unwrap();
    assert_eq!(parts.iter().map(|p| p.messages()).sum::<u64>(), 30);
    for p in &parts {
        b.commit("g", "payments", p.partition, p.high / 2).unwrap();
    }
    let g = b.groups().into_iter().find(|g| g.name == "g").unwrap();
    let expected: u64 = parts.iter().map(|p| (p.high - p.high / 2) as u64).sum();
    assert_eq!(g.lag, expected);
    assert_eq!(g.partitions.len(), 3);
    assert_eq!(g.state, "Empty");
    assert!(b.commit("g", "payments", 9, 0).is_err());
    assert!(
        b.produce("payments", Some(7), None, FieldTable::new(), Bytes::new())
            .is_err()
    );
}

#[test]
fn offsets_for_times() {
    let b = broker();
    b.declare_topic("t", 1).unwrap();
    for i in 0..5 {
        b.produce(
            "t",
            Some(0),
            None,
            FieldTable::new(),
            Bytes::from(format!("{i}")),
        )
        .unwrap();
        b.clock().advance(1_000);
    }
    assert_eq!(b.offset_for_time("t", 0, 1_002_000).unwrap(), 2);
    assert_eq!(b.offset_for_time("t", 0, 0).unwrap(), 0);
    assert_eq!(b.offset_for_time("t", 0, 9_999_999).unwrap(), 5);
}

#[test]
fn concurrent_publishers_lose_nothing() {
    let b = Arc::new(broker());
    b.declare_queue("q", QueueArgs::default()).unwrap();
    b.declare_topic("t", 4).unwrap();
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let b = Arc::clone(&b);
            std::thread::spawn(move || {
                for i in 0..1000 {
                    b.publish("", "q", msg(&format!("{t}-{i}"))).unwrap();
                    b.produce("t", None, None, FieldTable::new(), Bytes::from("x"))
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(b.queue_len("q").unwrap(), 4000);
    let total: u64 = b
        .partitions("t")
        .unwrap()
        .iter()
        .map(|p| p.messages())
        .sum();
    assert_eq!(total, 4000);
}

#[test]
fn declarations_conflict_clearly() {
    let b = broker();
    b.declare_queue("q", QueueArgs::default()).unwrap();
    b.declare_queue("q", QueueArgs::default()).unwrap();
    assert!(b.declare_queue("q", with_dlx("x", None)).is_err());
    assert!(b.declare_topic("q", 1).is_err());
    assert!(
        b.declare_exchange("amq.direct", ExchangeKind::Direct)
            .is_err()
    );
    assert!(b.bind_queue("q", "missing", "").is_err());
    assert!(b.get("missing", true).is_err());
    assert!(b.ack(12345).is_err());
}

#[test]
fn dead_lettering_removes_the_message_ttl_whatever_the_reason() {
    let b = broker();
    b.declare_queue("work", with_dlx("", Some("work.dlq")))
        .unwrap();
    b.declare_queue("work.dlq", QueueArgs::default()).unwrap();
    let mut m = msg("short-lived");
    m.properties.expiration = Some("1000".into());
    b.publish("", "work", m).unwrap();
    let d = b.get("work", false).unwrap().unwrap();
    b.nack(d.tag, false).unwrap();
    b.clock().advance(10_000);
    b.expire_all();
    let dead = b.peek_queue("work.dlq", 0, 10).unwrap();
    assert_eq!(
        dead.len(),
        1,
        "a rejected message must not expire in its DLQ"
    );
    assert_eq!(dead[0].properties.expiration, None);
    assert_eq!(
        dead[0].deaths()[0].original_expiration.as_deref(),
        Some("1000")
    );
    let mut bad = msg("x");
    bad.properties.expiration = Some("soon".into());
    assert!(
        b.publish("", "work", bad).is_err(),
        "invalid expiration is refused, not ignored"
    );
}

#[test]
fn self_loops_end_instead_of_hanging() {
    let b = broker();
    b.declare_queue(
        "ttl0",
        QueueArgs {
            message_ttl_ms: Some(0),
            ..with_dlx("", Some("ttl0"))
        },
    )
    .unwrap();
    b.declare_queue(
        "full",
        QueueArgs {
            max_length: Some(1),
            ..with_dlx("", Some("full"))
        },
    )
    .unwrap();
    b.publish("", "ttl0", msg("a")).unwrap();
    b.expire_all();
    assert!(bodies(&b, "ttl0").is_empty());
    b.publish("", "full", msg("1")).unwrap();
    b.publish("", "full", msg("2")).unwrap();
    assert_eq!(bodies(&b, "full"), vec!["2"]);
}

#[test]
fn a_rejection_long_ago_does_not_excuse_a_later_cycle() {
    let b = broker();
    b.declare_queue("in", with_dlx("", Some("loop"))).unwrap();
    b.declare_queue(
        "loop",
        QueueArgs {
            message_ttl_ms: Some(5),
            ..with_dlx("", Some("loop"))
        },
    )
    .unwrap();
    b.publish("", "in", msg("m")).unwrap();
    let d = b.get("in", false).unwrap().unwrap();
    b.nack(d.tag, false).unwrap();
    assert_eq!(bodies(&b, "loop"), vec!["m"]);
    b.clock().advance(10);
    b.expire_all();
    assert!(
        bodies(&b, "loop").is_empty(),
        "expired into itself: a cycle, dropped"
    );
}

#[test]
fn cc_and_bcc_add_routes_and_bcc_is_not_delivered() {
    let b = broker();
    b.declare_exchange("x", ExchangeKind::Direct).unwrap();
    for q in ["a", "c", "hidden"] {
        b.declare_queue(q, QueueArgs::default()).unwrap();
    }
    b.bind_queue("a", "x", "a").unwrap();
    b.bind_queue("c", "x", "c").unwrap();
    b.bind_queue("hidden", "x", "h").unwrap();
    let mut m = msg("fan");
    m.headers
        .insert("CC", FieldValue::Array(vec![FieldValue::string("c")]));
    m.headers
        .insert("BCC", FieldValue::Array(vec![FieldValue::string("h")]));
    assert_eq!(b.publish("x", "a", m).unwrap(), vec!["a", "c", "hidden"]);
    for q in ["a", "c", "hidden"] {
        let got = b.peek_queue(q, 0, 1).unwrap();
        assert!(got[0].headers.get("BCC").is_none(), "{q}");
        assert!(got[0].headers.get("CC").is_some(), "{q}");
    }
}

#[test]
fn a_refused_publish_is_not_reported_as_delivered() {
    let b = broker();
    b.declare_queue(
        "tiny",
        QueueArgs {
            max_length: Some(1),
            overflow: Overflow::RejectPublish,
            ..QueueArgs::default()
        },
    )
    .unwrap();
    assert_eq!(b.publish("", "tiny", msg("1")).unwrap(), vec!["tiny"]);
    assert!(b.publish("", "tiny", msg("2")).unwrap().is_empty());
}
