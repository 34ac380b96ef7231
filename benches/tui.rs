//! TUI benchmarks: frame render time of the messages view at 200×60 over a queue of
//! 1,000,000 messages, scrolling it end to end (time and resident memory), and opening a
//! 10 MB payload. Run with `cargo bench --bench tui`.
//!
//! The queue is served by `Generated`, a backend that makes each message from its position
//! when asked and holds none, as a remote broker would: what is measured is mqscope's own
//! time and memory, not an in-process broker's.

use async_trait::async_trait;
use bytes::Bytes;
use mqscope::backend::{
    Backend, BackendInfo, BackendKind, PeekFrom, PeekPage, PeekRequest, Result,
};
use mqscope::config::theme::Theme;
use mqscope::model::{FieldValue, Message, QueueDetail, QueueKind, QueueSummary};
use mqscope::tui::keymap::{Key, KeyCode, Keymap};
use mqscope::tui::state::{Effect, State};
use mqscope::tui::update::{Msg, update};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use std::time::{Duration, Instant};

const TOTAL: u64 = 1_000_000;

struct Generated;

fn make(i: u64) -> Message {
    let corr = format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        i * 2654435761 % (1 << 32),
        i % 65536,
        i % 4096,
        (i * 7) % 4096,
        i * 97
    );
    let body = format!(
        "{{\"orderId\":\"ORD-{i}\",\"customer\":\"Zoë Ångström\",\"items\":[{{\"sku\":\"keyboard\",\"qty\":1,\"unitPriceCents\":12900}}],\"totalCents\":12900,\"currency\":\"EUR\",\"correlationId\":\"{corr}\"}}"
    );
    let mut m = Message::new("orders.big", i, Bytes::from(body));
    m.properties.message_id = Some(format!("msg-{i:016x}"));
    m.properties.correlation_id = Some(corr);
    m.headers
        .insert("x-order-id", FieldValue::string(format!("ORD-{i}")));
    m.headers.insert("x-tenant", FieldValue::string("eu-west"));
    m.exchange = Some("orders".into());
    m.routing_key = Some("order.created".into());
    m.timestamp = chrono::DateTime::from_timestamp_millis(1_767_225_600_000 + i as i64 * 10);
    m
}

#[async_trait]
impl Backend for Generated {
    fn info(&self) -> BackendInfo {
        BackendInfo {
            kind: BackendKind::Local,
            target: "generated".into(),
        }
    }
    async fn list_queues(&self) -> Result<Vec<QueueSummary>> {
        let mut q = QueueSummary::new("orders.big", QueueKind::Queue, "classic");
        q.messages = Some(TOTAL);
        Ok(vec![q])
    }
    async fn describe_queue(&self, _: &str) -> Result<QueueDetail> {
        unreachable!("not used by the benchmark")
    }
    async fn peek(&self, _: &str, req: &PeekRequest) -> Result<PeekPage> {
        let from = match req.from {
            PeekFrom::Start => 0,
            PeekFrom::Position(p) => p,
            PeekFrom::Last => TOTAL.saturating_sub(req.limit as u64),
            PeekFrom::Time(_) => 0,
        };
        let to = (from + req.limit as u64).min(TOTAL);
        Ok(PeekPage {
            messages: (from..to).map(make).collect(),
            notes: Vec::new(),
        })
    }
}

fn rss_kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

/// Apply a message and run every effect against the backend synchronously.
fn drive(rt: &tokio::runtime::Runtime, s: &mut State, b: &Generated, msg: Msg) {
    let mut queue = vec![msg];
    while let Some(m) = queue.pop() {
        for e in update(s, m) {
            match e {
                Effect::LoadQueues(req) => {
                    let started = std::time::Instant::now();
                    let result = rt.block_on(b.list_queues()).map_err(|e| e.to_string());
                    queue.push(Msg::QueuesLoaded {
                        req,
                        result,
                        at: chrono::Utc::now(),
                        took_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    });
                }
                Effect::LoadMessages {
                    req,
                    queue: q,
                    partition,
                    from,
                    limit,
                    force,
                } => {
                    let r = PeekRequest {
                        from,
                        partition,
                        limit,
                        force,
                    };
                    let result = rt.block_on(b.peek(&q, &r)).map_err(|e| e.to_string());
                    queue.push(Msg::MessagesLoaded { req, result });
                }
                _ => {}
            }
        }
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let b = Generated;
    let theme = Theme::default_theme();
    let (w, h) = (200, 60);
    let mut s = State::new("local", "generated", None, false, Keymap::default());
    drive(&rt, &mut s, &b, Msg::Resize(w, h));
    drive(
        &rt,
        &mut s,
        &b,
        Msg::Connected {
            backend: "local".into(),
            target: "generated".into(),
            server: None,
            has_groups: false,
            has_exchanges: false,
        },
    );
    drive(&rt, &mut s, &b, Msg::Key(Key::plain(KeyCode::Enter)));
    let mut term = Terminal::new(TestBackend::new(w, h)).expect("terminal");
    let rss_start = rss_kib("VmRSS:");

    // Frame time: scroll a page at a time, drawing every frame (the first few warm up).
    let mut frames = Vec::new();
    let scroll_start = Instant::now();
    let mut pages = 0u64;
    let mut rss_peak_while_scrolling = 0;
    loop {
        let t = Instant::now();
        term.draw(|f| mqscope::tui::ui::draw(f, &s, &theme))
            .expect("draw");
        frames.push(t.elapsed());
        let before = s.selected_message().map(|m| m.position);
        drive(&rt, &mut s, &b, Msg::Key(Key::plain(KeyCode::PageDown)));
        pages += 1;
        if pages.is_multiple_of(1000) {
            rss_peak_while_scrolling = rss_peak_while_scrolling.max(rss_kib("VmRSS:"));
        }
        if s.selected_message().map(|m| m.position) == before {
            break;
        }
    }
    let scroll_time = scroll_start.elapsed();
    let last = s.selected_message().map(|m| m.position).unwrap_or(0);
    assert_eq!(last, TOTAL - 1, "scrolled to the end");
    frames.sort();
    let mean = frames.iter().sum::<Duration>() / frames.len() as u32;
    println!("messages view, {w}x{h}, queue of {TOTAL} messages (generated on demand):");
    println!(
        "  frames drawn: {}  mean {:.3} ms  p50 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        frames.len(),
        mean.as_secs_f64() * 1e3,
        percentile(&frames, 0.5).as_secs_f64() * 1e3,
        percentile(&frames, 0.99).as_secs_f64() * 1e3,
        frames.last().map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0)
    );
    println!(
        "  scrolled end to end by PageDown: {pages} pages in {:.2} s (including generating {TOTAL} messages)",
        scroll_time.as_secs_f64()
    );
    println!(
        "  resident memory: {:.1} MiB at start, {:.1} MiB peak while scrolling, {:.1} MiB high-water mark",
        rss_start as f64 / 1024.0,
        rss_peak_while_scrolling as f64 / 1024.0,
        rss_kib("VmHWM:") as f64 / 1024.0
    );
    println!(
        "  messages held in the window at the end: {}",
        s.messages.window.len()
    );

    // Opening a 10 MB payload: update (prepares lines) plus the first frame.
    let mut big = Message::new("orders.big", 0, Bytes::from(vec![b'x'; 10 * 1024 * 1024]));
    big.properties.content_type = Some("text/plain".into());
    let mut s2 = State::new("local", "generated", None, false, Keymap::default());
    drive(&rt, &mut s2, &b, Msg::Resize(w, h));
    drive(
        &rt,
        &mut s2,
        &b,
        Msg::Connected {
            backend: "local".into(),
            target: "generated".into(),
            server: None,
            has_groups: false,
            has_exchanges: false,
        },
    );
    drive(&rt, &mut s2, &b, Msg::Key(Key::plain(KeyCode::Enter)));
    s2.messages.window = vec![big];
    s2.messages.visible = vec![0];
    s2.messages.cursor = Default::default();
    let t = Instant::now();
    drive(&rt, &mut s2, &b, Msg::Key(Key::plain(KeyCode::Enter)));
    term.draw(|f| mqscope::tui::ui::draw(f, &s2, &theme))
        .expect("draw");
    let open = t.elapsed();
    let t = Instant::now();
    term.draw(|f| mqscope::tui::ui::draw(f, &s2, &theme))
        .expect("draw");
    println!(
        "open a 10 MB text payload: {:.1} ms to the first frame, then {:.3} ms per frame",
        open.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3
    );
}
