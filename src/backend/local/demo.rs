//! The demo scenario: an e-commerce fan-out with dead letters of every kind, a lagging
//! Kafka-style consumer group and a Spring-style dead-letter topic. Deterministic for a
//! given seed (and, with a manual clock, to the millisecond); plays ten minutes of history
//! at start and keeps traffic moving afterwards.

use super::broker::{
    LocalBroker, LocalConfig, Outgoing, Overflow, QueueArgs, QueueType, kafka_header,
};
use super::clock::Clock;
use crate::model::topology::ExchangeKind;
use crate::model::{FieldTable, FieldValue, Properties};
use bytes::Bytes;
use serde_json::json;
use std::sync::Arc;

/// Virtual time played at start so queues, DLQs and lag already exist.
pub const HISTORY_MS: i64 = 600_000;
const STEP_MS: i64 = 100;

/// The fixed start of a manual-clock demo: 2026-01-01T00:00:00Z.
pub const FIXED_EPOCH_MS: i64 = 1_767_225_600_000;

/// SplitMix64: small, fast and good enough for a simulation; seeded, so runs repeat.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5eed_0fd3_0000)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// A random (version 4 shaped) UUID.
    pub fn uuid(&mut self) -> String {
        let a = self.next_u64();
        let b = self.next_u64();
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0x0fff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

/// Per-second rates of the simulated producers and consumers.
struct Rates;
impl Rates {
    const ORDERS: f64 = 6.0;
    const BILLING: f64 = 5.0;
    const SHIPPING: f64 = 4.0;
    const EMAIL: f64 = 2.5;
    const NOTIFICATIONS: f64 = 1.0;
    const AUDIT: f64 = 50.0;
    const LABELS: f64 = 3.0;
    const REFUNDS: f64 = 1.0;
    const PAYMENTS_PROCESSOR: f64 = 3.5;
    const PAYMENTS_AUDIT: f64 = 50.0;
}

const CUSTOMERS: &[&str] = &[
    "Ada Lovelace",
    "Zoë Ångström",
    "李雷",
    "Søren Kierkegaard",
    "José Álvarez",
    "Nadia Øberg",
    "Grace Hopper",
    "Ἀριστοτέλης",
    "Mārtiņš Ozols",
    "Olúwaseun Adé",
];
const PRODUCTS: &[(&str, u64)] = &[
    ("mechanical keyboard", 12900),
    ("usb-c cable", 1299),
    ("27\" monitor", 32900),
    ("ergonomic mouse", 5900),
    ("laptop stand", 3900),
    ("noise-cancelling headphones", 24900),
];
const TENANTS: &[&str] = &["eu-west", "us-east", "ap-south"];

/// The running scenario: owns the random state and the producer/consumer accumulators.
pub struct Demo {
    broker: Arc<LocalBroker>,
    rng: Rng,
    next_order: u64,
    /// Fractional work carried between steps, one slot per producer or consumer.
    acc: [f64; 10],
    /// Next offset each payments group reads, per partition.
    processor_pos: Vec<i64>,
    audit_pos: Vec<i64>,
    /// Which partition each group reads next (processor, audit), round-robin.
    next_partition: [usize; 2],
}

impl Demo {
    /// Build the topology and play the history. With `fixed_clock` everything, timestamps
    /// included, depends only on the seed; otherwise history ends at the current time.
    pub fn build(seed: u64, fixed_clock: bool, config: LocalConfig) -> Self {
        let clock = if fixed_clock {
            Clock::manual(FIXED_EPOCH_MS)
        } else {
            let c = Clock::system();
            c.set_shift(-HISTORY_MS);
            c
        };
        let broker = Arc::new(LocalBroker::new("demo", clock, config));
        declare(&broker);
        let mut demo = Demo {
            broker,
            rng: Rng::new(seed),
            next_order: 100_001,
            acc: [0.0; 10],
            processor_pos: vec![0; 3],
            audit_pos: vec![0; 3],
            next_partition: [0, 0],
        };
        demo.broker.set_group_members("payments-processor", 2);
        demo.broker.set_group_members("payments-audit", 1);
        demo.publish_report();
        let mut played = 0;
        while played < HISTORY_MS {
            demo.step(STEP_MS);
            played += STEP_MS;
        }
        demo
    }

    pub fn broker(&self) -> &Arc<LocalBroker> {
        &self.broker
    }

    /// Advance the simulation by `dt_ms` of virtual time (in steps of at most 100 ms).
    pub fn step(&mut self, dt_ms: i64) {
        let mut left = dt_ms;
        while left > 0 {
            let dt = left.min(STEP_MS);
            left -= dt;
            self.broker.clock().advance(dt);
            self.tick(dt as f64 / 1000.0);
        }
    }

    fn due(&mut self, slot: usize, rate: f64, secs: f64) -> u32 {
        self.acc[slot] += rate * secs;
        let n = self.acc[slot].floor();
        self.acc[slot] -= n;
        n as u32
    }

    fn tick(&mut self, secs: f64) {
        let b = Arc::clone(&self.broker);
        b.expire_all();
        for _ in 0..self.due(0, Rates::ORDERS, secs) {
            self.publish_order();
        }
        for _ in 0..self.due(1, Rates::BILLING, secs) {
            self.consume_billing();
        }
        for _ in 0..self.due(2, Rates::SHIPPING, secs) {
            self.consume_shipping();
        }
        for _ in 0..self.due(3, Rates::EMAIL, secs) {
            self.consume_email();
        }
        for _ in 0..self.due(4, Rates::NOTIFICATIONS, secs) {
            drain_one(&b, "notifications");
        }
        for _ in 0..self.due(5, Rates::AUDIT, secs) {
            drain_one(&b, "audit");
        }
        for _ in 0..self.due(6, Rates::LABELS, secs) {
            drain_one(&b, "labels");
        }
        for _ in 0..self.due(7, Rates::REFUNDS, secs) {
            self.consume_refund();
        }
        let n = self.due(8, Rates::PAYMENTS_PROCESSOR, secs);
        self.consume_payments("payments-processor", n, true);
        let n = self.due(9, Rates::PAYMENTS_AUDIT, secs);
        self.consume_payments("payments-audit", n, false);
    }

    fn now_secs(&self) -> u64 {
        u64::try_from(self.broker.clock().now_ms() / 1000).unwrap_or(0)
    }

    fn json_props(&mut self, kind: &str, app: &str) -> Properties {
        Properties {
            content_type: Some("application/json".into()),
            delivery_mode: Some(2),
            message_id: Some(format!("msg-{:016x}", self.rng.next_u64())),
            timestamp: Some(self.now_secs()),
            kind: Some(kind.into()),
            app_id: Some(app.into()),
            ..Properties::default()
        }
    }

    /// Publish a JSON document; the demo's services ignore a refusal, as a fire-and-forget
    /// producer would.
    fn publish_json(
        &self,
        exchange: &str,
        routing_key: &str,
        properties: Properties,
        headers: FieldTable,
        body: &serde_json::Value,
    ) {
        let msg = Outgoing {
            properties,
            headers,
            payload: Bytes::from(body.to_string()),
        };
        let _ = self.broker.publish(exchange, routing_key, msg);
    }

    fn publish_order(&mut self) {
        let order_no = self.next_order;
        self.next_order += 1;
        let order_id = format!("ORD-{order_no}");
        let corr = self.rng.uuid();
        let customer = *self.rng.pick(CUSTOMERS);
        let tenant = *self.rng.pick(TENANTS);
        let lines = 1 + self.rng.below(3);
        let mut total = 0;
        let items: Vec<_> = (0..lines)
            .map(|_| {
                let (name, price) = *self.rng.pick(PRODUCTS);
                let qty = 1 + self.rng.below(2);
                total += price * qty;
                json!({"sku": name, "qty": qty, "unitPriceCents": price})
            })
            .collect();
        let body = json!({
            "orderId": order_id,
            "customer": customer,
            "items": items,
            "totalCents": total,
            "currency": "EUR",
        });
        let mut props = self.json_props("order.created", "storefront");
        props.correlation_id = Some(corr.clone());
        let mut headers = FieldTable::new();
        headers.insert("x-order-id", FieldValue::string(order_id.clone()));
        headers.insert("x-tenant", FieldValue::string(tenant));
        headers.insert("x-schema-version", FieldValue::I32(3));
        headers.insert("x-express", FieldValue::Bool(self.rng.chance(0.2)));
        self.publish_json("orders", "order.created", props, headers, &body);
        if self.rng.chance(0.1) {
            self.publish_refund(&order_id, &corr);
        }
    }

    /// Refund requests go straight to their queue through the default exchange; one in
    /// five names an order the refund service cannot find and is returned until the
    /// quorum queue's delivery limit dead-letters it.
    fn publish_refund(&mut self, order_id: &str, corr: &str) {
        let poison = self.rng.chance(0.2);
        let body = json!({
            "orderId": if poison { format!("{order_id}-X") } else { order_id.to_string() },
            "reason": if poison { "unknown-order" } else { "customer-request" },
        });
        let mut props = self.json_props("refund.requested", "support-desk");
        props.correlation_id = Some(corr.to_string());
        self.publish_json("", "refunds", props, FieldTable::new(), &body);
    }

    /// One large document, so viewers meet a payload far bigger than a screen.
    fn publish_report(&mut self) {
        let rows: Vec<_> = (0..8000)
            .map(|i| json!({"row": i, "orders": self.rng.below(500), "revenueCents": self.rng.below(10_000_000)}))
            .collect();
        let body = json!({"report": "daily-sales", "correlationId": self.rng.uuid(), "rows": rows});
        let props = self.json_props("report.daily", "reporting");
        self.publish_json("", "analytics", props, FieldTable::new(), &body);
    }

    fn consume_billing(&mut self) {
        let Some(d) = take(&self.broker, "billing", "billing-svc") else {
            return;
        };
        let corr = correlation_of(&d.message);
        if self.rng.chance(0.08) {
            let _ = self.broker.nack(d.tag, false);
            return;
        }
        let _ = self.broker.ack(d.tag);
        let order: serde_json::Value =
            serde_json::from_slice(&d.message.payload).unwrap_or_default();
        let order_id = order["orderId"].as_str().unwrap_or("unknown").to_string();
        let amount = order["totalCents"].as_u64().unwrap_or(0);
        let invoice = json!({
            "invoiceId": format!("INV-{}", order_id.trim_start_matches("ORD-")),
            "orderId": order_id,
            "amountCents": amount,
        });
        let mut headers = FieldTable::new();
        headers.insert("x-correlation-id", FieldValue::string(corr.clone()));
        headers.insert(
            "x-amount",
            FieldValue::Decimal {
                scale: 2,
                value: amount as u32,
            },
        );
        let props = self.json_props("invoice.created", "billing");
        self.publish_json("events", "invoice.created", props, headers, &invoice);
        let payment = json!({
            "paymentId": format!("PAY-{:08x}", self.rng.next_u64() as u32),
            "orderId": order_id,
            "amountCents": amount,
            "currency": "EUR",
            "status": "captured",
        });
        let mut h = FieldTable::new();
        h.insert("correlation_id", kafka_header(corr));
        h.insert("content-type", kafka_header("application/json"));
        let _ = self.broker.produce(
            "payments",
            None,
            Some(Bytes::from(order_id)),
            h,
            Bytes::from(payment.to_string()),
        );
    }

    fn consume_shipping(&mut self) {
        let Some(d) = take(&self.broker, "shipping", "shipping-svc") else {
            return;
        };
        let _ = self.broker.ack(d.tag);
        let order: serde_json::Value =
            serde_json::from_slice(&d.message.payload).unwrap_or_default();
        let order_id = order["orderId"].as_str().unwrap_or("unknown");
        // A protobuf-like binary label: field tags, lengths and raw bytes, not UTF-8.
        let mut label = vec![0x0a, order_id.len() as u8];
        label.extend_from_slice(order_id.as_bytes());
        label.extend_from_slice(&[0x12, 0x08]);
        label.extend_from_slice(&self.rng.next_u64().to_be_bytes());
        label.extend_from_slice(&[0x1a, 0x04, 0xff, 0xfe, 0x00, 0x80]);
        let props = Properties {
            content_type: Some("application/x-protobuf".into()),
            correlation_id: d.message.properties.correlation_id.clone(),
            message_id: Some(format!("label-{:016x}", self.rng.next_u64())),
            timestamp: Some(self.now_secs()),
            kind: Some("shipment.label".into()),
            app_id: Some("shipping".into()),
            ..Properties::default()
        };
        let msg = Outgoing {
            properties: props,
            headers: FieldTable::new(),
            payload: Bytes::from(label),
        };
        let _ = self.broker.publish("events", "shipment.label", msg);
    }

    fn consume_email(&mut self) {
        let Some(d) = take(&self.broker, "email", "mailer") else {
            return;
        };
        let _ = self.broker.ack(d.tag);
        let corr = correlation_of(&d.message);
        let order: serde_json::Value =
            serde_json::from_slice(&d.message.payload).unwrap_or_default();
        let body = json!({
            "correlationId": corr,
            "template": "order-confirmation",
            "orderId": order["orderId"],
            "to": format!("customer{}@example.com", self.rng.below(10_000)),
        });
        let props = self.json_props("email.sent", "mailer");
        self.publish_json("events", "email.sent", props, FieldTable::new(), &body);
    }

    fn consume_refund(&mut self) {
        let Some(d) = take(&self.broker, "refunds", "refunds-svc") else {
            return;
        };
        let unknown = d
            .message
            .payload_text()
            .is_some_and(|t| t.contains("unknown-order"));
        let _ = if unknown {
            self.broker.nack(d.tag, true)
        } else {
            self.broker.ack(d.tag)
        };
    }

    /// Read `n` records for a group round-robin over partitions and commit. The processor
    /// fails some and writes them to `payments-dlt` with Spring's dead-letter headers.
    fn consume_payments(&mut self, group: &str, n: u32, processor: bool) {
        let slot = usize::from(!processor);
        for _ in 0..n {
            let p = self.next_partition[slot];
            self.next_partition[slot] = (p + 1) % 3;
            let pos = if processor {
                self.processor_pos[p]
            } else {
                self.audit_pos[p]
            };
            let Ok(records) = self.broker.fetch("payments", p as i32, pos, 1) else {
                return;
            };
            let Some(r) = records.into_iter().next() else {
                continue;
            };
            let offset = r.offset.unwrap_or(pos);
            if processor && self.rng.chance(0.04) {
                let mut h = r.headers.clone();
                h.insert("kafka_dlt-original-topic", kafka_header("payments"));
                h.insert(
                    "kafka_dlt-original-partition",
                    kafka_header(Bytes::copy_from_slice(&(p as i32).to_be_bytes())),
                );
                h.insert(
                    "kafka_dlt-original-offset",
                    kafka_header(Bytes::copy_from_slice(&offset.to_be_bytes())),
                );
                let ts = r.timestamp.map(|t| t.timestamp_millis()).unwrap_or(0);
                h.insert(
                    "kafka_dlt-original-timestamp",
                    kafka_header(Bytes::copy_from_slice(&ts.to_be_bytes())),
                );
                h.insert(
                    "kafka_dlt-original-consumer-group",
                    kafka_header(group.to_string()),
                );
                h.insert(
                    "kafka_dlt-exception-fqcn",
                    kafka_header("com.example.payments.CardDeclinedException"),
                );
                h.insert(
                    "kafka_dlt-exception-message",
                    kafka_header("issuer declined the capture (code 51)"),
                );
                let _ = self.broker.produce(
                    "payments-dlt",
                    Some(0),
                    r.key.clone(),
                    h,
                    r.payload.clone(),
                );
            }
            let next = offset + 1;
            if processor {
                self.processor_pos[p] = next;
            } else {
                self.audit_pos[p] = next;
            }
            let _ = self.broker.commit(group, "payments", p as i32, next);
        }
    }
}

/// The message's correlation id, or "" when it has none.
fn correlation_of(m: &crate::model::Message) -> String {
    m.properties.correlation_id.clone().unwrap_or_default()
}

/// The next message of `queue` for the service `consumer`, to ack or nack.
fn take(b: &LocalBroker, queue: &str, consumer: &str) -> Option<super::broker::Delivery> {
    b.get_by(queue, false, consumer).ok().flatten()
}

/// One message taken and acked by the queue's consumer, a service named after it.
fn drain_one(b: &LocalBroker, queue: &str) {
    if let Some(d) = take(b, queue, &format!("{queue}-svc")) {
        let _ = b.ack(d.tag);
    }
}

fn declare(b: &LocalBroker) {
    // Declarations of a fixed topology on a fresh broker cannot conflict; a failure here
    // would be a bug in this list, caught by the demo tests.
    let ok = |r: Result<(), super::broker::BrokerError>| debug_assert!(r.is_ok(), "{r:?}");
    ok(b.declare_exchange("orders", ExchangeKind::Fanout));
    ok(b.declare_exchange("orders.dlx", ExchangeKind::Direct));
    ok(b.declare_exchange("shipping.dlx", ExchangeKind::Fanout));
    ok(b.declare_exchange("events", ExchangeKind::Topic));
    let dlq = QueueArgs::default;
    for q in ["billing.dlq", "shipping.dlq", "email.dlq", "refunds.dlq"] {
        ok(b.declare_queue(q, dlq()));
    }
    ok(b.declare_queue(
        "billing",
        QueueArgs {
            dead_letter_exchange: Some("orders.dlx".into()),
            dead_letter_routing_key: Some("billing.dlq".into()),
            ..dlq()
        },
    ));
    ok(b.declare_queue(
        "shipping",
        QueueArgs {
            max_length: Some(400),
            overflow: Overflow::DropHead,
            dead_letter_exchange: Some("shipping.dlx".into()),
            ..dlq()
        },
    ));
    ok(b.declare_queue(
        "email",
        QueueArgs {
            message_ttl_ms: Some(60_000),
            dead_letter_exchange: Some(String::new()),
            dead_letter_routing_key: Some("email.dlq".into()),
            ..dlq()
        },
    ));
    ok(b.declare_queue(
        "analytics",
        QueueArgs {
            max_length: Some(50_000),
            ..dlq()
        },
    ));
    ok(b.declare_queue(
        "refunds",
        QueueArgs {
            queue_type: QueueType::Quorum,
            delivery_limit: Some(3),
            dead_letter_exchange: Some("orders.dlx".into()),
            dead_letter_routing_key: Some("refunds.dlq".into()),
            ..dlq()
        },
    ));
    for q in ["notifications", "audit", "labels"] {
        ok(b.declare_queue(q, dlq()));
    }
    for q in ["billing", "shipping", "email", "analytics"] {
        ok(b.bind_queue(q, "orders", ""));
    }
    ok(b.bind_queue("billing.dlq", "orders.dlx", "billing.dlq"));
    ok(b.bind_queue("refunds.dlq", "orders.dlx", "refunds.dlq"));
    ok(b.bind_queue("shipping.dlq", "shipping.dlx", ""));
    ok(b.bind_queue("notifications", "events", "invoice.*"));
    ok(b.bind_queue("notifications", "events", "email.*"));
    ok(b.bind_queue("audit", "events", "#"));
    ok(b.bind_queue("labels", "events", "shipment.label"));
    for (name, consumers) in [
        ("billing", 2),
        ("shipping", 1),
        ("email", 1),
        ("notifications", 1),
        ("audit", 3),
        ("labels", 1),
        ("refunds", 1),
    ] {
        ok(b.set_consumers(name, consumers));
    }
    ok(b.declare_topic("payments", 3));
    ok(b.declare_topic("payments-dlt", 1));
}
