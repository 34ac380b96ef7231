//! Tracing a correlation ID: exact hops through a fan-out with a dead-lettered copy on the
//! local broker, the demo through the real binary, and that a trace changes nothing.

mod kafka_mock;
mod local_orders;

use bytes::Bytes;
use local_orders::{order, orders_broker};
use mqscope::backend::local::LocalBackend;
use mqscope::backend::local::broker::kafka_header;
use mqscope::backend::local::broker::{LocalBroker, LocalConfig, QueueArgs};
use mqscope::backend::local::clock::Clock;
use mqscope::model::topology::ExchangeKind;
use mqscope::model::{DeathReason, FieldTable, FieldValue};
use mqscope::ops::trace::{HopKind, TraceEvent, TraceOptions, follow, trace, trace_streaming};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[tokio::test]
async fn fan_out_to_four_queues_with_one_dead_letter_gives_exactly_those_hops() {
    let b = orders_broker();
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

/// The binary's output for `args`, which must succeed, with its own config home.
fn run_ok(home: &tempfile::TempDir, args: &[&str]) -> Vec<u8> {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_mqscope"))
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
}

/// The demo's newest message of a queue (`peek` arguments: its name, a partition), and the
/// `trace --json` of its correlation ID.
fn trace_newest(home: &tempfile::TempDir, peek: &[&str]) -> (serde_json::Value, serde_json::Value) {
    let url = "local://demo?clock=fixed";
    let mut args = vec!["peek"];
    args.extend_from_slice(peek);
    args.extend(["--last", "-n", "1", "--json", "--url", url]);
    let rec: serde_json::Value = serde_json::from_slice(&run_ok(home, &args)).unwrap();
    let id = rec["correlation_id"].as_str().unwrap().to_string();
    let t = run_ok(home, &["trace", &id, "--json", "--url", url]);
    (rec, serde_json::from_slice(&t).unwrap())
}

#[test]
fn demo_trace_through_the_binary_finds_the_dead_letter_and_its_origin() {
    let url = "local://demo?clock=fixed";
    let home = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| run_ok(&home, args);
    let (rec, t) = trace_newest(&home, &["billing.dlq"]);
    let id = rec["correlation_id"].as_str().unwrap().to_string();
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
    // The order's expected routes: the four fan-out queues, each with its fate.
    let routes = t["routes"].as_array().expect("routes");
    let mut queues: Vec<&str> = routes
        .iter()
        .map(|r| r["queue"].as_str().unwrap())
        .collect();
    queues.sort();
    assert_eq!(queues, ["analytics", "billing", "email", "shipping"]);
    for r in routes {
        assert!(r["fate"].is_string() && r["evidence"].is_array(), "{r}");
    }
    let billing = routes.iter().find(|r| r["queue"] == "billing").unwrap();
    assert_eq!(billing["fate"], "dead-lettered");
    assert_eq!(billing["dead_lettered_to"], "billing.dlq");
    let analytics = routes.iter().find(|r| r["queue"] == "analytics").unwrap();
    assert_eq!(analytics["fate"], "found");
    // The demo keeps its journeys: a copy shipping or email took is picked up, by its
    // consumer, though nothing of it is left on the broker (or it expired into its DLQ).
    for (queue, user) in [("shipping", "shipping-svc"), ("email", "mailer")] {
        let r = routes.iter().find(|r| r["queue"] == queue).unwrap();
        match r["fate"].as_str() {
            Some("picked-up") => {
                let said = r["evidence"][0].as_str().unwrap();
                assert!(
                    said.starts_with(&format!("picked up from {queue} by user {user}")),
                    "{said}"
                );
                assert!(
                    hops.iter().any(|h| h["queue"] == queue
                        && h["recorded"]["event"] == "deliver"
                        && h["deliveries"][0]["user"] == user),
                    "{queue}'s delivery is a hop of the journey"
                );
            }
            Some("dead-lettered") => {
                assert_eq!(r["dead_lettered_to"], format!("{queue}.dlq"), "{r}")
            }
            _ => panic!("{queue}: {r}"),
        }
    }
    assert_eq!(
        hops.iter()
            .filter(|h| h["recorded"]["event"] == "publish" && h["queue"] == "orders")
            .count(),
        1,
        "the order's publish, recorded"
    );
    assert!(
        hops.iter()
            .any(|h| h["recorded"]["event"] == "publish" && h["queue"] == "events"),
        "follow-ups under the same ID"
    );
    assert!(t["recorded"]["added"].as_u64().unwrap() >= 5, "{t}");
    assert_eq!(t["routes_basis"]["exchange"], "orders");
    assert!(
        t["routes_notes"][0]
            .as_str()
            .unwrap()
            .contains("topology as it is now")
    );
    let human = String::from_utf8(run(&["trace", &id, "--url", url])).unwrap();
    assert!(
        human.contains("dead-lettered from billing (rejected ×1)"),
        "{human}"
    );
    assert!(
        human.contains("expected routes of the publish to orders / order.created:"),
        "{human}"
    );
}

/// The correlation IDs of the demo's twelve newest orders in `billing.dlq`.
async fn newest_rejected_orders(backend: &LocalBackend) -> Vec<String> {
    use mqscope::backend::{Backend, PeekRequest};
    let dead = backend
        .peek("billing.dlq", &PeekRequest::first(1_000_000))
        .await
        .unwrap()
        .messages;
    let extractor = mqscope::ops::trace::Extractor::default();
    dead.iter()
        .rev()
        .take(12)
        .filter_map(|m| extractor.extract(m))
        .collect()
}

/// With the journeys the demo keeps (as `mqscope demo` and `--url local://demo` run it), the
/// same orders' shipping and email copies are picked up by their consumers, by name; the
/// issue's case: billing dead-lettered, shipping and email picked up, analytics waiting.
#[tokio::test]
async fn demo_kept_journeys_say_who_picked_each_copy_up() {
    use mqscope::backend::local::demo::Demo;
    use mqscope::ops::record::{KeptDb, merge_routed};
    use mqscope::ops::trace::routes::Fate;
    let config = LocalConfig {
        keep_events: 50_000,
        ..LocalConfig::default()
    };
    let demo = Demo::build(42, true, config);
    let backend = LocalBackend::new(Arc::clone(demo.broker()), "local://demo");
    let ids = newest_rejected_orders(&backend).await;
    let kept = KeptDb::make(&backend)
        .unwrap()
        .expect("the demo keeps its journeys");
    let mut the_issue_case = 0;
    for id in &ids {
        let mut t = trace(&backend, id, &TraceOptions::default()).await.unwrap();
        merge_routed(&backend, &mut t, &kept.path(), None, None)
            .await
            .unwrap();
        let route = |q: &str| {
            t.routes
                .iter()
                .find(|r| r.queue.as_deref() == Some(q))
                .unwrap_or_else(|| panic!("{id}: no route to {q}: {:?}", t.routes))
        };
        assert_eq!(route("billing").fate, Fate::DeadLettered, "{id}");
        assert_eq!(route("analytics").fate, Fate::Found, "{id}");
        let mut picked = 0;
        for (queue, user) in [("shipping", "shipping-svc"), ("email", "mailer")] {
            let r = route(queue);
            match r.fate {
                Fate::PickedUp => {
                    assert!(
                        r.headline
                            .starts_with(&format!("picked up from {queue} by user {user}")),
                        "{id}: {}",
                        r.headline
                    );
                    assert!(r.time.is_some(), "a delivery says when");
                    picked += 1;
                }
                Fate::DeadLettered => {}
                other => panic!("{id} {queue}: {other:?} {:?}", r.evidence),
            }
        }
        if picked == 2 {
            the_issue_case += 1;
        }
        // Billing's consumer took it before rejecting it: a delivery hop of the journey.
        assert!(
            t.hops.iter().any(|h| h
                .deliveries
                .iter()
                .any(|d| d.queue == "billing" && d.user.as_deref() == Some("billing-svc"))),
            "{id}"
        );
    }
    assert!(the_issue_case >= 1, "no order was picked up by both");
}

/// The demo's rejected orders, traced in process: every one was routed to the four fan-out
/// queues, and each queue's fate agrees with what the scan found. One order is the issue's
/// case exactly: billing dead-lettered, shipping and email consumed, analytics waiting.
#[tokio::test]
async fn demo_dead_letters_give_all_four_fan_out_queues_their_fate() {
    use mqscope::backend::local::demo::Demo;
    use mqscope::ops::trace::routes::Fate;
    let demo = Demo::build(42, true, LocalConfig::default());
    let backend = LocalBackend::new(Arc::clone(demo.broker()), "local://demo");
    let ids = newest_rejected_orders(&backend).await;
    assert_eq!(ids.len(), 12);
    let mut the_issue_case = 0;
    for id in &ids {
        let t = trace(&backend, id, &TraceOptions::default()).await.unwrap();
        let fate = |q: &str| {
            let r = t
                .routes
                .iter()
                .find(|r| r.queue.as_deref() == Some(q))
                .unwrap_or_else(|| panic!("{id}: no route to {q}: {:?}", t.routes));
            (r.fate, r.dead_lettered_to.clone())
        };
        assert_eq!(t.routes.len(), 4, "{id}: {:?}", t.routes);
        assert_eq!(
            fate("billing"),
            (Fate::DeadLettered, Some("billing.dlq".to_string())),
            "{id}"
        );
        assert_eq!(fate("analytics").0, Fate::Found, "{id}");
        let found_in = |q: &str| t.hops.iter().any(|h| h.queue == q);
        for (queue, dlq) in [("shipping", "shipping.dlq"), ("email", "email.dlq")] {
            // Consumed unless its dead letter was found: the queue has a consumer.
            let want = if found_in(dlq) {
                (Fate::DeadLettered, Some(dlq.to_string()))
            } else {
                (Fate::Consumed, None)
            };
            assert_eq!(fate(queue), want, "{id} {queue}");
        }
        let shipping = t
            .routes
            .iter()
            .find(|r| r.queue.as_deref() == Some("shipping"));
        if fate("shipping").0 == Fate::Consumed {
            assert!(
                shipping
                    .unwrap()
                    .evidence
                    .iter()
                    .any(|e| e.contains("1 consumer")),
                "{:?}",
                shipping
            );
        }
        if fate("shipping").0 == Fate::Consumed && fate("email").0 == Fate::Consumed {
            the_issue_case += 1;
        }
        let times: Vec<_> = t
            .routes
            .iter()
            .map(|r| (r.time.is_none(), r.time))
            .collect();
        assert!(times.is_sorted(), "time order, untimed last: {times:?}");
    }
    assert!(
        the_issue_case > 0,
        "no order with shipping and email consumed among {ids:?}"
    );
}

/// Six queues of 300 messages, every hundredth carrying the wanted ID.
fn six_queues() -> Arc<LocalBroker> {
    let b = Arc::new(LocalBroker::new(
        "t",
        Clock::manual(1_000_000),
        LocalConfig::default(),
    ));
    for q in 0..6 {
        let name = format!("q{q}");
        b.declare_queue(&name, QueueArgs::default()).unwrap();
        for n in 0..300 {
            let corr = if n % 100 == 7 { "wanted" } else { "noise" };
            b.publish("", &name, order(corr, n)).unwrap();
            b.clock().advance(1);
        }
    }
    b
}

#[tokio::test]
async fn a_running_trace_streams_hits_and_progress_then_the_same_result() {
    let backend = LocalBackend::new(six_queues(), "local://test");
    let events = Mutex::new(Vec::new());
    let t = trace_streaming(&backend, "wanted", &TraceOptions::default(), &|e| {
        events.lock().unwrap().push(e)
    })
    .await
    .unwrap();
    let events = events.into_inner().unwrap();
    assert_eq!(events.first(), Some(&TraceEvent::Started { queues: 6 }));
    let mut hits: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            TraceEvent::Hit(h) => Some((**h).clone()),
            _ => None,
        })
        .collect();
    hits.sort_by(mqscope::ops::trace::hop_order);
    assert_eq!(hits, t.hops, "every hit streamed before the result");
    assert_eq!(t.hops.len(), 18);
    let done: Vec<_> = events
        .iter()
        .filter(|e| matches!(e, TraceEvent::QueueDone { skipped: None, .. }))
        .collect();
    assert_eq!(done.len(), 6);
    let scanned: u64 = events
        .iter()
        .map(|e| match e {
            TraceEvent::Scanned(n) => *n,
            _ => 0,
        })
        .sum();
    assert_eq!((scanned, t.scanned), (1_800, 1_800));
}

#[tokio::test]
async fn a_cancelled_trace_stops_reading_and_changes_nothing() {
    let b = six_queues();
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let cancel = Arc::new(AtomicBool::new(false));
    let opts = TraceOptions {
        concurrency: 1,
        cancel: Some(Arc::clone(&cancel)),
        ..TraceOptions::default()
    };
    let done = Mutex::new(0);
    let t = trace_streaming(&backend, "wanted", &opts, &|e| match e {
        // Cancel as soon as the first hit arrives: the queue being read is not finished.
        TraceEvent::Hit(_) => cancel.store(true, Ordering::Relaxed),
        TraceEvent::QueueDone { .. } => *done.lock().unwrap() += 1,
        _ => {}
    })
    .await
    .unwrap();
    assert_eq!(
        t.scanned, 300,
        "one queue read, the other five never started"
    );
    assert_eq!((t.queues_scanned, *done.lock().unwrap()), (0, 0));
    assert!(t.skipped.is_empty());
    assert!(b.summaries().iter().all(|q| q.messages == Some(300)));
}

/// The follow's next `n` hops, each within 5 s.
async fn live_hops(f: &mut follow::Follower, n: usize) -> Vec<mqscope::ops::trace::Hop> {
    let mut got = Vec::new();
    while got.len() < n {
        let h = tokio::time::timeout(Duration::from_secs(5), f.next_hop())
            .await
            .expect("a live hop within 5 s")
            .expect("the tail is open")
            .unwrap();
        got.push(h);
    }
    got
}

#[tokio::test]
async fn follow_reports_new_hops_live_once_each() {
    let b = orders_broker();
    b.declare_queue("billing", QueueArgs::default()).unwrap();
    b.bind_queue("billing", "orders", "").unwrap();
    b.declare_topic("payments", 2).unwrap();
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let opts = TraceOptions::default();
    let mut f = follow::start(&backend, "wanted", &opts).await.unwrap();
    let payment = |corr: &str| {
        let mut h = FieldTable::new();
        h.insert("correlation_id", kafka_header(corr.to_string()));
        h
    };
    // Produced after the follow started but found by the scan too: reported once.
    b.produce("payments", Some(1), None, payment("wanted"), Bytes::new())
        .unwrap();
    let t = trace(&backend, "wanted", &opts).await.unwrap();
    assert_eq!(t.hops.len(), 1);
    f.skip(&t.hops);
    b.publish("orders", "order.created", order("noise", 1))
        .unwrap();
    b.clock().advance(500);
    b.publish("orders", "order.created", order("wanted", 2))
        .unwrap();
    b.produce("payments", Some(0), None, payment("noise"), Bytes::new())
        .unwrap();
    b.produce("payments", Some(0), None, payment("wanted"), Bytes::new())
        .unwrap();
    let mut refund = order("wanted", 3);
    refund.properties.correlation_id = None;
    refund.payload = Bytes::from_static(br#"{"correlationId": "wanted"}"#);
    b.declare_queue("refunds", QueueArgs::default()).unwrap();
    b.publish("", "refunds", refund).unwrap();
    let got = live_hops(&mut f, 3).await;
    let seen: Vec<(HopKind, String)> = got.iter().map(|h| (h.kind, h.place())).collect();
    assert_eq!(
        seen,
        vec![
            (HopKind::Exchange, "exchange orders".to_string()),
            (HopKind::Topic, "payments[0]@1".to_string()),
            (HopKind::Queue, "refunds".to_string()),
        ]
    );
    assert!(got.iter().all(|h| h.live));
    assert_eq!(got[0].routing_key.as_deref(), Some("order.created"));
    assert_eq!(got[0].message_id.as_deref(), Some("m2"));
    assert_eq!(
        got[0].timestamp.as_deref(),
        Some("1970-01-01T00:16:40.500Z")
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), f.next_hop())
            .await
            .is_err(),
        "nothing else carries the ID, and the scanned record is not repeated"
    );
    let json = serde_json::to_value(&got[1]).unwrap();
    assert_eq!(json["live"], true);
    assert_eq!(json["kind"], "topic");
}

/// A consumer taking the traced message is a live hop of its own: which queue, which
/// consumer, whether it was delivered before; it hangs under the publish it is a copy of.
/// Publishes without the ID and deliveries of other messages are not shown.
#[tokio::test]
async fn follow_reports_each_delivery_to_a_consumer() {
    let b = orders_broker();
    for q in ["billing", "shipping"] {
        b.declare_queue(q, QueueArgs::default()).unwrap();
        b.bind_queue(q, "orders", "").unwrap();
    }
    let backend = LocalBackend::new(Arc::clone(&b), "local://test");
    let mut f = follow::start(&backend, "wanted", &TraceOptions::default())
        .await
        .unwrap();
    b.publish("orders", "order.created", order("noise", 1))
        .unwrap();
    b.publish("orders", "order.created", order("wanted", 2))
        .unwrap();
    let noise = b
        .get_by("shipping", false, "shipping-svc")
        .unwrap()
        .unwrap();
    b.ack(noise.tag).unwrap();
    let first = b
        .get_by("shipping", false, "shipping-svc")
        .unwrap()
        .unwrap();
    b.nack(first.tag, true).unwrap();
    b.clock().advance(250);
    let again = b
        .get_by("shipping", false, "shipping-svc")
        .unwrap()
        .unwrap();
    b.ack(again.tag).unwrap();
    let got = live_hops(&mut f, 3).await;
    assert!(
        tokio::time::timeout(Duration::from_millis(300), f.next_hop())
            .await
            .is_err(),
        "the noise is neither published nor delivered as far as the follow is concerned"
    );
    assert!(
        got[0].deliveries.is_empty(),
        "the publish first: {:?}",
        got[0]
    );
    let deliveries: Vec<(String, Option<String>, bool, String)> = got[1..]
        .iter()
        .map(|h| {
            assert_eq!((h.kind, h.queue.as_str()), (HopKind::Queue, "shipping"));
            assert!(h.live && h.position.is_none());
            let d = &h.deliveries[0];
            (
                d.queue.clone(),
                d.user.clone(),
                d.redelivered,
                h.timestamp.clone().unwrap(),
            )
        })
        .collect();
    let user = Some("shipping-svc".to_string());
    assert_eq!(
        deliveries,
        vec![
            (
                "shipping".into(),
                user.clone(),
                false,
                "1970-01-01T00:16:40.000Z".into()
            ),
            (
                "shipping".into(),
                user,
                true,
                "1970-01-01T00:16:40.250Z".into()
            ),
        ]
    );
    let json = serde_json::to_value(&got[2]).unwrap();
    assert_eq!(json["deliveries"][0]["redelivered"], true, "{json}");
    assert!(json.get("groups").is_none(), "{json}");
    // One publish: its root, then the two deliveries as its branches.
    let rows = mqscope::ops::trace::graph::rows(&got);
    assert_eq!(rows.len(), 4, "{rows:?}");
}

/// The issue's Kafka case on librdkafka's mock cluster: the ID in three topics and every
/// partition (a header, a JSON body, a traceparent), one record dead-lettered with Spring's
/// headers; then a live follow picks up a new record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_trace_finds_every_partition_in_time_order_with_the_dlt_origin() {
    let c = kafka_mock::Cluster::new();
    let orders = c.topic("orders", 3);
    let payments = c.topic("payments", 2);
    let dlt = c.topic("payments.DLT", 2);
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let base = 1_767_225_600_000i64;
    let rec = |corr_header: Option<(&str, &str)>, body: String| {
        let mut m = mqscope::model::Message::new("", 0, Bytes::from(body));
        if let Some((k, v)) = corr_header {
            m.headers.insert(k, FieldValue::string(v));
        }
        m
    };
    let noise = || rec(Some(("x-correlation-id", "other")), "{}".into());
    // (topic, partition, millis after base, record) in the order they happen.
    let mut plan = Vec::new();
    for p in 0..3 {
        plan.push((orders.clone(), p, 10 * i64::from(p), noise()));
        plan.push((
            orders.clone(),
            p,
            100 + 10 * i64::from(p),
            rec(Some(("X-Correlation-Id", trace_id)), "{}".into()),
        ));
    }
    for p in 0..2 {
        plan.push((payments.clone(), p, 200, noise()));
        plan.push((
            payments.clone(),
            p,
            300 + 100 * i64::from(p),
            rec(
                None,
                format!(r#"{{"metadata": {{"correlationId": "{trace_id}"}}}}"#),
            ),
        ));
    }
    // A follow-up on orders after the failed payment, before its dead letter is written.
    plan.push((
        orders.clone(),
        0,
        450,
        rec(
            Some(("traceparent", &format!("00-{trace_id}-00f067aa0ba902b7-01"))),
            "not json {".into(),
        ),
    ));
    // The dead letter of payments[1]@1 (written at 400): Spring's binary partition, offset
    // and original timestamp; the DLT record itself is stamped when it died.
    let mut dead = rec(Some(("correlation_id", trace_id)), "{}".into());
    let h = &mut dead.headers;
    h.insert("kafka_dlt-original-topic", FieldValue::string(&payments));
    h.insert(
        "kafka_dlt-original-partition",
        FieldValue::LongString(Bytes::copy_from_slice(&1i32.to_be_bytes())),
    );
    h.insert(
        "kafka_dlt-original-offset",
        FieldValue::LongString(Bytes::copy_from_slice(&1i64.to_be_bytes())),
    );
    h.insert(
        "kafka_dlt-original-timestamp",
        FieldValue::LongString(Bytes::copy_from_slice(&(base + 400).to_be_bytes())),
    );
    h.insert(
        "kafka_dlt-exception-fqcn",
        FieldValue::string("org.example.PaymentDeclined"),
    );
    h.insert(
        "kafka_dlt-exception-message",
        FieldValue::string("card expired"),
    );
    plan.push((dlt.clone(), 0, 500, noise()));
    plan.push((dlt.clone(), 1, 600, dead));
    plan.push((
        dlt.clone(),
        0,
        700,
        rec(None, format!(r#"{{"correlation_id": "{trace_id}"}}"#)),
    ));
    for (topic, p, at, m) in &plan {
        c.produce(topic, *p, m, Some(base + at)).await;
    }

    let backend = c.backend().await;
    let opts = TraceOptions::default();
    let mut f = follow::start(&backend, trace_id, &opts).await.unwrap();
    let t = trace(&backend, trace_id, &opts).await.unwrap();
    assert!(t.skipped.is_empty(), "{:?}", t.skipped);
    assert_eq!((t.queues_scanned, t.scanned), (3, plan.len() as u64));
    // A log routes nothing: no expected routes, and the trace says why.
    assert!(t.routes.is_empty() && t.routes_basis.is_none());
    assert!(
        t.routes_notes[0].contains("a log has no routing"),
        "{:?}",
        t.routes_notes
    );
    let places: Vec<String> = t.hops.iter().map(|h| h.place()).collect();
    assert_eq!(
        places,
        vec![
            format!("{orders}[0]@1"),
            format!("{orders}[1]@1"),
            format!("{orders}[2]@1"),
            format!("{payments}[0]@1"),
            format!("{payments}[1]@1"),
            format!("{orders}[0]@2"),
            format!("{dlt}[1]@0"),
            format!("{dlt}[0]@1"),
        ],
        "every partition of all three topics, in time order; the dead letter at the time it died"
    );
    let d = t.hops[6].dead_letter.as_ref().expect("the DLT hop");
    assert_eq!(
        (d.from.as_str(), d.reason, d.count, d.partition, d.offset),
        (
            payments.as_str(),
            DeathReason::Rejected,
            1,
            Some(1),
            Some(1)
        )
    );
    assert_eq!(
        d.error.as_deref(),
        Some("org.example.PaymentDeclined: card expired")
    );
    assert_eq!(
        t.hops[6].timestamp.as_deref(),
        Some("2026-01-01T00:00:00.600Z")
    );
    assert!(t.hops.iter().all(|h| h.kind == HopKind::Topic));
    // In the graph, the dead letter hangs under the payment it came from.
    let rows = mqscope::ops::trace::graph::rows(&t.hops);
    let under: Vec<String> = rows
        .iter()
        .skip_while(|r| t.hops[r.hop].place() != format!("{payments}[1]@1"))
        .take(3)
        .map(|r| t.hops[r.hop].place())
        .collect();
    assert_eq!(
        under,
        vec![
            format!("{payments}[1]@1"),
            format!("{payments}[1]@1"),
            format!("{dlt}[1]@0")
        ],
        "{rows:?}"
    );

    // --since reads each partition from its first record that late (the broker's time
    // index, streamed like an export), and keeps only what is that late.
    let since = TraceOptions {
        since: chrono::DateTime::from_timestamp_millis(base + 350),
        ..TraceOptions::default()
    };
    let late = trace(&backend, trace_id, &since).await.unwrap();
    let places: Vec<String> = late.hops.iter().map(|h| h.place()).collect();
    assert_eq!(
        places,
        vec![
            format!("{payments}[1]@1"),
            format!("{orders}[0]@2"),
            format!("{dlt}[1]@0"),
            format!("{dlt}[0]@1"),
        ]
    );
    assert!(
        late.scanned < t.scanned,
        "{} of {}",
        late.scanned,
        t.scanned
    );

    // Live: a new record with the ID; the scanned ones are not reported again.
    f.skip(&t.hops);
    c.produce(&payments, 0, &noise(), None).await;
    c.produce(
        &payments,
        0,
        &rec(Some(("correlation_id", trace_id)), "{}".into()),
        None,
    )
    .await;
    let h = tokio::time::timeout(Duration::from_secs(15), f.next_hop())
        .await
        .expect("the new record within 15 s")
        .expect("the tail is open")
        .unwrap();
    assert_eq!(h.place(), format!("{payments}[0]@3"));
    assert!(h.live);
}

/// `trace --follow --json` on the live demo: the trace object first, then one JSON line per
/// new hop. An order still waiting near the head of billing is billed (an invoice and a
/// payment) or rejected (a dead letter) within seconds of the demo's traffic starting.
#[test]
fn follow_json_prints_the_trace_then_one_line_per_new_hop() {
    use std::io::{BufRead, BufReader};
    let bin = env!("CARGO_BIN_EXE_mqscope");
    let url = "local://demo?clock=fixed";
    let home = tempfile::tempdir().unwrap();
    let head = std::process::Command::new(bin)
        .args(["peek", "billing", "--from", "10", "-n", "1", "--json"])
        .args(["--url", url])
        .env("XDG_CONFIG_HOME", home.path())
        .output()
        .unwrap();
    let rec: serde_json::Value = serde_json::from_slice(&head.stdout).unwrap();
    let id = rec["correlation_id"].as_str().unwrap().to_string();
    let mut child = std::process::Command::new(bin)
        .args(["trace", &id, "--follow", "--json", "--url", url])
        .env("XDG_CONFIG_HOME", home.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines: Vec<String> = Vec::new();
    // Room for a loaded machine: the bound only matters when the test fails. Read until
    // billing's consumer has picked the order up (a delivery hop).
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !lines.iter().skip(1).any(|l| l.contains("\"deliveries\"")) {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(Ok(l)) => lines.push(l),
            _ => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        lines.len() >= 2,
        "the trace and a live hop within 60 s: {lines:?}"
    );
    let picked: serde_json::Value = lines
        .iter()
        .skip(1)
        .find(|l| l.contains("\"deliveries\""))
        .map(|l| serde_json::from_str(l).unwrap())
        .unwrap_or_else(|| panic!("billing's consumer picked the order up: {lines:?}"));
    assert_eq!(picked["queue"], "billing", "{picked}");
    let d = &picked["deliveries"][0];
    assert_eq!(
        (&d["queue"], &d["user"], &d["redelivered"]),
        (&"billing".into(), &"billing-svc".into(), &false.into()),
        "{picked}"
    );
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(first["correlation_id"], id.as_str());
    assert!(first["hops"].as_array().is_some_and(|h| !h.is_empty()));
    let hop: serde_json::Value = serde_json::from_str(&lines[1]).unwrap();
    assert_eq!(hop["live"], true, "{hop}");
    assert!(hop["queue"].is_string() && hop["kind"].is_string(), "{hop}");
    assert!(hop.get("hops").is_none(), "a hop, not another trace: {hop}");
}

/// Consumption on librdkafka's mock, which cannot list groups: the two groups are named.
/// Record 3 of partition 1: `ahead` committed 4 there (past it), `behind` committed 3 (the
/// next it reads is the record itself), and a group that never committed on the topic is
/// not shown at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_trace_tells_a_group_past_the_record_from_one_behind_it() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::{ClientConfig, Offset, TopicPartitionList};
    let c = kafka_mock::Cluster::new();
    let topic = c.topic("consumed", 2);
    for i in 0..6 {
        let corr = if i == 3 { "wanted" } else { "other" };
        let mut m = mqscope::model::Message::new("", 0, Bytes::from("{}"));
        m.headers.insert("correlation_id", FieldValue::string(corr));
        c.produce(&topic, 1, &m, None).await;
    }
    let commit = |group: &str, offset: i64| {
        let g: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", c.bootstrap())
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&topic, 1, Offset::Offset(offset))
            .unwrap();
        g.commit(&tpl, CommitMode::Sync).unwrap();
    };
    commit("ahead", 4);
    commit("behind", 3);
    let backend = c.backend().await;
    let opts = TraceOptions {
        groups: vec!["behind".into(), "ahead".into(), "idle".into()],
        ..TraceOptions::default()
    };
    let t = trace(&backend, "wanted", &opts).await.unwrap();
    assert_eq!(t.hops.len(), 1, "{:?}", t.hops);
    assert_eq!(t.hops[0].place(), format!("{topic}[1]@3"));
    let json = serde_json::to_value(&t.hops[0]).unwrap();
    assert_eq!(
        json["groups"],
        serde_json::json!([
            {"group": "ahead", "status": "consumed", "committed": 4, "lag": 2},
            {"group": "behind", "status": "pending", "committed": 3, "lag": 3},
        ])
    );
    assert!(
        t.notes
            .iter()
            .any(|n| n.starts_with("consumer groups not listed")),
        "the mock cannot list groups, and the trace says so: {:?}",
        t.notes
    );
    // Without names, nothing to go on: no groups, and a note saying how to name them.
    let t = trace(&backend, "wanted", &TraceOptions::default())
        .await
        .unwrap();
    assert!(t.hops[0].groups.is_empty());
    assert!(
        t.notes.iter().any(|n| n.contains("--group")),
        "{:?}",
        t.notes
    );
}

/// The demo's payments topic has two groups: the audit reader keeps up, the processor lags.
/// Its newest record on a partition is consumed by the one and pending in the other; the
/// human output says so under the record.
#[test]
fn demo_trace_of_a_payment_says_which_groups_read_it() {
    let url = "local://demo?clock=fixed";
    let home = tempfile::tempdir().unwrap();
    let (rec, t) = trace_newest(&home, &["payments", "--partition", "0"]);
    let id = rec["correlation_id"].as_str().unwrap().to_string();
    let hop = t["hops"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["queue"] == "payments")
        .expect("the payments record");
    assert_eq!(hop["offset"], rec["offset"]);
    let groups = hop["groups"].as_array().unwrap();
    let names: Vec<(&str, &str)> = groups
        .iter()
        .map(|g| (g["group"].as_str().unwrap(), g["status"].as_str().unwrap()))
        .collect();
    assert_eq!(
        names,
        [
            ("payments-audit", "consumed"),
            ("payments-processor", "pending")
        ],
        "{hop}"
    );
    let processor = &groups[1];
    assert!(processor["lag"].as_u64().unwrap() > 0, "{processor}");
    assert!(
        processor["committed"].as_i64().unwrap() <= hop["offset"].as_i64().unwrap(),
        "{processor}"
    );
    let human = String::from_utf8(run_ok(&home, &["trace", &id, "--url", url])).unwrap();
    assert!(
        human.contains("✓ consumed by payments-audit")
            && human.contains("… pending in payments-processor"),
        "{human}"
    );
}
