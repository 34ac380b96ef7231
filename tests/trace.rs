//! Tracing a correlation ID: exact hops through a fan-out with a dead-lettered copy on the
//! local broker, the demo through the real binary, and that a trace changes nothing.

use bytes::Bytes;
use mqscope::backend::local::LocalBackend;
use mqscope::backend::local::broker::{LocalBroker, LocalConfig, Outgoing, QueueArgs};
use mqscope::backend::local::clock::Clock;
use mqscope::model::topology::ExchangeKind;
use mqscope::model::{DeathReason, FieldTable, FieldValue, Properties};
use mqscope::trace::{TraceOptions, trace};
use std::sync::Arc;

fn order(corr: &str, n: u32) -> Outgoing {
    Outgoing {
        properties: Properties {
            correlation_id: Some(corr.into()),
            message_id: Some(format!("m{n}")),
            ..Properties::default()
        },
        headers: FieldTable::new(),
        payload: Bytes::from(format!("{{\"order\": {n}}}")),
    }
}

#[tokio::test]
async fn fan_out_to_four_queues_with_one_dead_letter_gives_exactly_those_hops() {
    let b = Arc::new(LocalBroker::new(
        "t",
        Clock::manual(1_000_000),
        LocalConfig::default(),
    ));
    b.declare_exchange("orders", ExchangeKind::Fanout).unwrap();
    b.declare_exchange("dlx", ExchangeKind::Direct).unwrap();
    b.declare_queue("billing.dlq", QueueArgs::default())
        .unwrap();
    b.bind_queue("billing.dlq", "dlx", "billing").unwrap();
    b.declare_queue(
        "billing",
        QueueArgs {
            dead_letter_exchange: Some("dlx".into()),
            dead_letter_routing_key: Some("billing".into()),
            ..QueueArgs::default()
        },
    )
    .unwrap();
    for q in ["shipping", "email", "analytics"] {
        b.declare_queue(q, QueueArgs::default()).unwrap();
    }
    for q in ["billing", "shipping", "email", "analytics"] {
        b.bind_queue(q, "orders", "").unwrap();
    }
    // Noise before and after, and the traced order in the middle.
    b.publish("orders", "order.created", order("other-1", 1))
        .unwrap();
    b.clock().advance(1_000);
    b.publish("orders", "order.created", order("wanted", 2))
        .unwrap();
    b.clock().advance(1_000);
    b.publish("orders", "order.created", order("other-3", 3))
        .unwrap();
    // Billing rejects the wanted order (after the first one, which it acks).
    let first = b.get("billing", false).unwrap().unwrap();
    b.ack(first.tag).unwrap();
    b.clock().advance(5_000);
    let d = b.get("billing", false).unwrap().unwrap();
    assert_eq!(
        d.message.properties.correlation_id.as_deref(),
        Some("wanted")
    );
    b.nack(d.tag, false).unwrap();
    // A follow-up carrying the ID only in a header, and one only in its JSON body.
    b.declare_queue("notifications", QueueArgs::default())
        .unwrap();
    let mut invoice = order("", 4);
    invoice.properties.correlation_id = None;
    invoice
        .headers
        .insert("x-correlation-id", FieldValue::string("wanted"));
    b.publish("", "notifications", invoice).unwrap();
    let mut email = order("", 5);
    email.properties.correlation_id = None;
    email.payload = Bytes::from_static(br#"{"correlationId": "wanted", "template": "sent"}"#);
    b.publish("", "notifications", email).unwrap();

    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let before: Vec<_> = b
        .summaries()
        .iter()
        .map(|q| (q.name.clone(), q.messages))
        .collect();
    let t = trace(&backend, "wanted", &TraceOptions::default())
        .await
        .unwrap();
    let after: Vec<_> = b
        .summaries()
        .iter()
        .map(|q| (q.name.clone(), q.messages))
        .collect();
    assert_eq!(before, after, "a trace changes no queue");

    let places: Vec<&str> = t.hops.iter().map(|h| h.queue.as_str()).collect();
    assert_eq!(
        places,
        vec![
            "analytics",
            "email",
            "shipping",
            "billing.dlq",
            "notifications",
            "notifications"
        ]
    );
    let dead: Vec<_> = t
        .hops
        .iter()
        .filter_map(|h| h.dead_letter.as_ref())
        .collect();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].from.as_str(), dead[0].reason, dead[0].count),
        ("billing", DeathReason::Rejected, 1)
    );
    assert_eq!(
        t.hops[3].timestamp.as_deref(),
        Some("1970-01-01T00:16:47.000Z"),
        "the hop time is the death time"
    );
    assert_eq!(t.queues_scanned, 6);
    // Three copies in each plain queue, one left in billing, one dead letter, two follow-ups.
    assert_eq!(t.scanned, 3 * 3 + 1 + 1 + 2);
    assert!(
        t.summary()
            .starts_with("reached 5 queues, 1 dead-lettered, last seen in notifications"),
        "{}",
        t.summary()
    );

    let only = TraceOptions {
        queues: Some("*.dlq".into()),
        ..TraceOptions::default()
    };
    let t = trace(&backend, "wanted", &only).await.unwrap();
    assert_eq!(t.queues_scanned, 1);
    assert_eq!(t.hops.len(), 1);
    assert!(
        trace(&backend, "absent", &TraceOptions::default())
            .await
            .unwrap()
            .hops
            .is_empty()
    );
}

#[test]
fn demo_trace_through_the_binary_finds_the_dead_letter_and_its_origin() {
    let bin = env!("CARGO_BIN_EXE_mqscope");
    let url = "local://demo?clock=fixed";
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .env("XDG_CONFIG_HOME", home.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    };
    let last = run(&[
        "peek",
        "billing.dlq",
        "--last",
        "-n",
        "1",
        "--json",
        "--url",
        url,
    ]);
    let rec: serde_json::Value = serde_json::from_slice(&last).unwrap();
    let id = rec["correlation_id"].as_str().unwrap().to_string();
    let t: serde_json::Value =
        serde_json::from_slice(&run(&["trace", &id, "--json", "--url", url])).unwrap();
    assert_eq!(t["correlation_id"], id.as_str());
    assert!(t["scanned"].as_u64().unwrap() > 10_000);
    assert_eq!(t["queues_scanned"], 14);
    let hops = t["hops"].as_array().unwrap();
    let dlq = hops
        .iter()
        .find(|h| h["queue"] == "billing.dlq")
        .expect("the DLQ hop");
    assert_eq!(dlq["dead_letter"]["from"], "billing");
    assert_eq!(dlq["dead_letter"]["reason"], "rejected");
    assert!(
        hops.iter().any(|h| h["queue"] == "analytics"),
        "the fan-out copy still waiting in analytics"
    );
    for h in hops {
        for f in [
            "queue",
            "kind",
            "timestamp",
            "exchange",
            "routing_key",
            "message_id",
            "dead_letter",
        ] {
            assert!(h.get(f).is_some(), "{f}");
        }
    }
    let times: Vec<&str> = hops
        .iter()
        .filter_map(|h| h["timestamp"].as_str())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "time order: {times:?}"
    );
    let human = String::from_utf8(run(&["trace", &id, "--url", url])).unwrap();
    assert!(
        human.contains("dead-lettered from billing (rejected ×1)"),
        "{human}"
    );
}
