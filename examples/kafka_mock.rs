//! A librdkafka mock Kafka cluster for trying mqscope (and comparing it with kcat) without
//! a server: three brokers on loopback, one topic seeded with JSON messages carrying keys
//! and headers. Prints the bootstrap servers, then serves until stdin closes.
//!
//! `cargo run --release --example kafka_mock -- orders 16 300000 [header|body]`
//! The mock keeps at most 5 MiB per partition, so large seeds need more partitions.
//! With `header` each record also carries a correlation ID `ord-NNNNNNNN` (its number) in
//! an `x-correlation-id` header; with `body`, as `"correlationId"` in its JSON payload.

use futures::future::join_all;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use std::io::Read;
use std::time::{Duration, Instant};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let topic = args.first().map(String::as_str).unwrap_or("orders");
    let partitions: i32 = args.get(1).map(|s| s.parse()).transpose()?.unwrap_or(3);
    let messages: usize = args.get(2).map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let id_in = args.get(3).map(String::as_str).unwrap_or("");
    anyhow::ensure!(
        ["", "header", "body"].contains(&id_in),
        "the fourth argument is header or body"
    );
    let mock = MockCluster::new(3)?;
    mock.create_topic(topic, partitions, 1)?;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", mock.bootstrap_servers())
        .set("linger.ms", "20")
        .set("queue.buffering.max.messages", "1000000")
        .create()?;
    let start = Instant::now();
    for chunk in (0..messages).collect::<Vec<_>>().chunks(20_000) {
        let sends = chunk.iter().map(|i| {
            let id = format!("ord-{i:08}");
            let in_body = if id_in == "body" {
                format!("\"correlationId\":\"{id}\",")
            } else {
                String::new()
            };
            let payload = format!(
                "{{{in_body}\"order_id\":\"ORD-{i:08}\",\"customer\":\"C-{:05}\",\"amount\":{}.{:02},\"currency\":\"EUR\",\"items\":[{{\"sku\":\"SKU-{:04}\",\"qty\":{}}}],\"note\":\"ünïcode ✓\"}}",
                i % 50_000,
                i % 997,
                i % 100,
                i % 1000,
                1 + i % 5
            );
            let key = format!("C-{:05}", i % 50_000);
            let trace = format!("trace-{i}");
            let producer = &producer;
            async move {
                let mut headers = OwnedHeaders::new();
                if id_in == "header" {
                    headers = headers.insert(Header {
                        key: "x-correlation-id",
                        value: Some(id.as_bytes()),
                    });
                }
                let headers = headers
                    .insert(Header {
                        key: "trace-id",
                        value: Some(trace.as_bytes()),
                    })
                    .insert(Header {
                        key: "source",
                        value: Some("checkout".as_bytes()),
                    })
                    .insert(Header {
                        key: "schema",
                        value: Some("order.v1".as_bytes()),
                    });
                producer
                    .send(
                        FutureRecord::to(topic)
                            .key(&key)
                            .payload(&payload)
                            .headers(headers),
                        Duration::from_secs(30),
                    )
                    .await
                    .map_err(|(e, _)| e)
            }
        });
        for r in join_all(sends).await {
            r?;
        }
    }
    eprintln!(
        "seeded {messages} messages into {topic} ({partitions} partitions) in {:.1}s",
        start.elapsed().as_secs_f32()
    );
    println!("{}", mock.bootstrap_servers());
    // Serve until whoever started us closes our stdin.
    let _ = tokio::task::spawn_blocking(|| std::io::stdin().read_to_end(&mut Vec::new())).await;
    Ok(())
}
