//! The demo scenario: what it must hold at start, that it repeats for a seed, and that live
//! traffic keeps it moving.

use mqscope::backend::local::broker::LocalConfig;
use mqscope::backend::local::demo::Demo;
use mqscope::backend::local::{self, LocalBackend};
use mqscope::backend::{Backend, ConnectOptions, PeekFrom, PeekRequest};
use mqscope::config::LocalTarget;
use mqscope::model::{DeathReason, DeathSource, QueueKind};
use mqscope::ops::trace::Extractor;
use std::collections::BTreeMap;
use std::sync::Arc;

fn fixed(seed: u64) -> Demo {
    Demo::build(seed, true, LocalConfig::default())
}

fn backend(demo: &Demo) -> LocalBackend {
    LocalBackend::new(Arc::clone(demo.broker()), "local://demo")
}

async fn all(b: &LocalBackend, q: &str) -> Vec<mqscope::model::Message> {
    b.peek(q, &PeekRequest::first(1_000_000))
        .await
        .unwrap()
        .messages
}

#[tokio::test]
async fn holds_the_promised_topology_and_volume() {
    let demo = fixed(42);
    let b = backend(&demo);
    let list = b.list_queues().await.unwrap();
    assert!(list.len() >= 8, "{} queues", list.len());
    let by_name: BTreeMap<_, _> = list.iter().map(|q| (q.name.as_str(), q)).collect();
    let total: u64 = list.iter().filter_map(|q| q.messages).sum();
    assert!(total >= 10_000, "only {total} messages at start");
    for (queue, dlq) in [
        ("billing", "billing.dlq"),
        ("email", "email.dlq"),
        ("shipping", "shipping.dlq"),
        ("refunds", "refunds.dlq"),
        ("payments", "payments-dlt"),
    ] {
        assert_eq!(
            by_name[queue].dead_letter_queue.as_deref(),
            Some(dlq),
            "{queue}"
        );
        assert!(by_name[dlq].is_dead_letter, "{dlq}");
        assert!(!by_name[queue].is_dead_letter, "{queue}");
        assert!(by_name[dlq].messages.unwrap_or(0) > 0, "{dlq} is empty");
    }
    assert_eq!(by_name["payments"].kind, QueueKind::Topic);
    assert_eq!(by_name["payments"].partitions, Some(3));
    assert_eq!(by_name["refunds"].queue_type, "quorum");
}

#[tokio::test]
async fn every_dead_letter_queue_has_the_right_reason_and_origin() {
    let demo = fixed(42);
    let b = backend(&demo);
    for (dlq, origin, reason) in [
        ("billing.dlq", "billing", DeathReason::Rejected),
        ("email.dlq", "email", DeathReason::Expired),
        ("shipping.dlq", "shipping", DeathReason::Maxlen),
        ("refunds.dlq", "refunds", DeathReason::DeliveryLimit),
    ] {
        let msgs = all(&b, dlq).await;
        assert!(!msgs.is_empty(), "{dlq}");
        for m in msgs {
            let d = &m.deaths()[0];
            assert_eq!((d.queue.as_str(), d.reason), (origin, reason), "{dlq}");
            assert!(
                m.properties.correlation_id.is_some(),
                "{dlq} message without correlation id"
            );
        }
    }
    let dlt = all(&b, "payments-dlt").await;
    assert!(!dlt.is_empty());
    for m in dlt {
        let d = &m.deaths()[0];
        assert_eq!(d.source, DeathSource::Spring);
        assert_eq!(d.queue, "payments");
        assert!(d.partition.is_some() && d.offset.is_some() && d.error.is_some());
        // The record the DLT entry came from is still in the source topic.
        let req = PeekRequest {
            from: PeekFrom::Position(d.offset.unwrap() as u64),
            partition: d.partition,
            limit: 1,
            force: false,
        };
        let orig = b.peek("payments", &req).await.unwrap().messages;
        assert_eq!(orig[0].payload, m.payload);
    }
}

#[tokio::test]
async fn correlation_ids_tie_copies_and_follow_ups_together() {
    let demo = fixed(7);
    let b = backend(&demo);
    let ex = Extractor::default();
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut binary = 0;
    for q in b.list_queues().await.unwrap() {
        for m in all(&b, &q.name).await {
            if m.payload_text().is_none() {
                binary += 1;
            }
            if q.name == "analytics" && m.properties.kind.as_deref() == Some("report.daily") {
                continue;
            }
            let id = ex
                .extract(&m)
                .unwrap_or_else(|| panic!("{}#{} has no correlation id", q.name, m.position));
            seen.entry(id).or_default().push(q.name.clone());
        }
    }
    assert!(binary > 0, "the demo holds binary payloads");
    // Some order was seen in several places: copies in queues plus follow-ups.
    let widest = seen.values().map(|v| v.len()).max().unwrap();
    assert!(widest >= 4, "widest fan-out seen: {widest}");
    // The three ways of carrying an id all occur: property, header, JSON body.
    let n = all(&b, "notifications").await;
    assert!(
        n.iter()
            .any(|m| m.headers.get("x-correlation-id").is_some())
    );
    assert!(
        n.iter()
            .any(|m| m.properties.correlation_id.is_none() && m.headers.is_empty())
    );
}

#[tokio::test]
async fn same_seed_same_messages_other_seed_other_messages() {
    let first = |seed| async move {
        let d = fixed(seed);
        let b = backend(&d);
        let mut out = Vec::new();
        for q in ["billing.dlq", "email.dlq", "payments", "labels"] {
            out.extend(all(&b, q).await.into_iter().take(50));
        }
        out
    };
    let a = first(1).await;
    assert_eq!(a, first(1).await);
    assert_ne!(a, first(2).await);
}

#[tokio::test]
async fn live_traffic_moves_counts_and_lag() {
    let mut demo = fixed(42);
    let b = backend(&demo);
    let before = b.list_queues().await.unwrap();
    let lag_before = demo
        .broker()
        .groups()
        .iter()
        .find(|g| g.name == "payments-processor")
        .unwrap()
        .lag;
    assert!(lag_before > 0, "the processor group lags");
    demo.step(30_000);
    let after = b.list_queues().await.unwrap();
    let count = |l: &[mqscope::model::QueueSummary], n: &str| {
        l.iter().find(|q| q.name == n).unwrap().messages
    };
    assert_ne!(count(&before, "analytics"), count(&after, "analytics"));
    assert_ne!(count(&before, "payments"), count(&after, "payments"));
    let lag_after = demo
        .broker()
        .groups()
        .iter()
        .find(|g| g.name == "payments-processor")
        .unwrap()
        .lag;
    assert!(
        lag_after > lag_before,
        "lag grows: {lag_before} -> {lag_after}"
    );
    let audit = demo
        .broker()
        .groups()
        .into_iter()
        .find(|g| g.name == "payments-audit")
        .unwrap();
    assert!(audit.lag < 5, "the audit group keeps up: {}", audit.lag);
    let billing = after.iter().find(|q| q.name == "billing").unwrap();
    assert!(billing.publish_rate.unwrap() > 0.0 && billing.deliver_rate.unwrap() > 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_live_traffic_runs_in_the_background() {
    let target = LocalTarget {
        fixed_clock: true,
        ..LocalTarget::demo(42)
    };
    let backend = local::connect(
        &target,
        &ConnectOptions {
            live: true,
            ..Default::default()
        },
    )
    .unwrap();
    let newest = PeekRequest {
        from: PeekFrom::Last,
        partition: None,
        limit: 1,
        force: false,
    };
    let before = backend.peek("analytics", &newest).await.unwrap();
    // Live traffic: a new last message shows up within a few 250 ms ticks (polled, so a
    // loaded machine only makes it slower).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        let after = backend.peek("analytics", &newest).await.unwrap();
        if before.messages[0].payload != after.messages[0].payload {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no new orders arrived in 15 s"
        );
    }
}
