//! Recorder benchmarks: the rate envelopes go into the database (tailed message to stored
//! row: envelope made, correlation ID extracted, batch inserted in one transaction) with
//! the process's peak memory, and the time of a trace's database query over 10,000,000
//! envelopes, warm. Run with `cargo bench --bench record` (`-- --rows N` for a smaller
//! database; the database is kept in target/ and reused while it holds enough rows;
//! `-- --cache-mib N` for another page cache than the recorder's, in a database of its own).
//!
//! Messages are made from their index (a ~230-byte JSON order, two headers, properties, the
//! publish's routed queues, as RabbitMQ's firehose gives them); ten envelopes share a
//! correlation ID, as a journey through a fan-out and a dead letter would.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use mqscope::model::correlation::Extractor;
use mqscope::model::envelope::Envelope;
use mqscope::model::{FieldValue, Message};
use mqscope::ops::record::Store;
use std::time::{Duration, Instant};

const PER_ID: u64 = 10;
const BATCH: usize = 2_000;

fn corr(i: u64) -> String {
    let j = i / PER_ID;
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        j * 2654435761 % (1 << 32),
        j % 65536,
        j % 4096,
        (j * 7) % 4096,
        j * 97
    )
}

fn make(i: u64) -> Message {
    let corr = corr(i);
    let body = format!(
        "{{\"orderId\":\"ORD-{i}\",\"customer\":\"Zoë Ångström\",\"items\":[{{\"sku\":\"keyboard\",\"qty\":1,\"unitPriceCents\":12900}}],\"totalCents\":12900,\"currency\":\"EUR\",\"correlationId\":\"{corr}\"}}"
    );
    let mut m = Message::new("orders", 0, Bytes::from(body));
    m.properties.message_id = Some(format!("msg-{i:016x}"));
    m.properties.correlation_id = Some(corr);
    m.headers
        .insert("x-order-id", FieldValue::string(format!("ORD-{i}")));
    m.headers.insert("x-tenant", FieldValue::string("eu-west"));
    m.exchange = Some("orders".into());
    m.routing_key = Some("order.created".into());
    m.routed_queues = Some(vec!["billing".into(), "shipping".into()]);
    m
}

fn at(i: u64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_767_225_600_000 + i as i64).unwrap_or_default()
}

/// Peak resident memory so far (VmHWM), in MiB.
fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Insert envelopes `from..to` in batches; returns the seconds it took.
fn ingest(store: &mut Store, from: u64, to: u64, rules: &Extractor) -> f64 {
    let started = Instant::now();
    let mut batch = Vec::with_capacity(BATCH);
    let mut i = from;
    while i < to {
        batch.clear();
        while batch.len() < BATCH && i < to {
            batch.push(Envelope::of_tailed(&make(i), at(i), rules, 1024));
            i += 1;
        }
        store.insert(&batch).expect("insert");
    }
    started.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rows: u64 = args
        .iter()
        .position(|a| a == "--rows")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000_000);
    let cache_mib: Option<u32> = args
        .iter()
        .position(|a| a == "--cache-mib")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok());
    let open = |path: &std::path::Path| {
        let store = Store::open(path).expect("open");
        if let Some(mib) = cache_mib {
            store.set_cache_mib(mib).expect("cache size");
        }
        store
    };
    let rules = Extractor::default();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    std::fs::create_dir_all(&dir).expect("target dir");

    // Ingest into a fresh database: the rate the writer keeps up with.
    let fresh = dir.join("record-bench-ingest.db");
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", fresh.display()));
    }
    let mut store = open(&fresh);
    let n = 1_000_000.min(rows);
    let secs = ingest(&mut store, 0, n, &rules);
    println!(
        "ingest: {n} envelopes in {secs:.2} s = {:.0} envelopes/s (batches of {BATCH}), peak memory {:.1} MiB",
        n as f64 / secs,
        peak_mib()
    );
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", fresh.display()));
    }

    // The trace query over a large database, filled once and kept.
    let big = match cache_mib {
        Some(mib) => dir.join(format!("record-bench-cache{mib}.db")),
        None => dir.join("record-bench.db"),
    };
    let mut store = open(&big);
    let have = store.count().expect("count");
    if have < rows {
        // In steps of a million, so the rate's fall as the file outgrows the page cache
        // shows.
        let mut secs = 0.0;
        let mut at_row = have;
        while at_row < rows {
            let to = (at_row / 1_000_000 + 1) * 1_000_000;
            let to = to.min(rows);
            let step = ingest(&mut store, at_row, to, &rules);
            println!(
                "  {at_row} to {to}: {:.0} envelopes/s, peak memory {:.1} MiB",
                (to - at_row) as f64 / step,
                peak_mib()
            );
            secs += step;
            at_row = to;
        }
        println!(
            "filled {} to {rows} envelopes in {secs:.0} s ({:.0}/s), file {:.2} GB",
            big.display(),
            (rows - have) as f64 / secs,
            std::fs::metadata(&big).map_or(0, |m| m.len()) as f64 / 1e9
        );
    }
    drop(store);
    let store = Store::open_read(&big).expect("open to read");
    let ids: Vec<String> = (0..1_000u64)
        .map(|k| corr((k * 7_919 * PER_ID) % rows))
        .collect();
    // Warm: every id once untimed, then timed.
    for id in &ids {
        store.by_correlation(id, None).expect("query");
    }
    let mut times: Vec<Duration> = Vec::with_capacity(ids.len());
    let mut found = 0usize;
    for id in &ids {
        let t = Instant::now();
        found += store.by_correlation(id, None).expect("query").len();
        times.push(t.elapsed());
    }
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "trace --db query over {rows} envelopes, warm, {} ids: median {:.3} ms, p99 {:.3} ms, max {:.3} ms ({} envelopes each on average)",
        ids.len(),
        ms(times[times.len() / 2]),
        ms(times[times.len() * 99 / 100]),
        ms(times[times.len() - 1]),
        found / ids.len()
    );
}
