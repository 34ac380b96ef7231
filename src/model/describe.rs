//! One queue, stream or topic described in full, as labelled sections: what `mqscope
//! describe` prints and the TUI's info view draws (the JSON form is `QueueDetail` itself).
//! Only what the broker reported is listed; an unknown value is left out, never guessed.

use super::queue::{ConsumerInfo, QueueDetail, QueueKind, QueueState};

/// A titled group of `label: value` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub title: &'static str,
    pub rows: Vec<(String, String)>,
}

impl Section {
    /// The widest label, in characters, so values line up.
    pub fn label_width(&self) -> usize {
        self.rows
            .iter()
            .map(|(l, _)| l.chars().count())
            .max()
            .unwrap_or(0)
    }
}

/// How many queues feeding a dead-letter queue are named; a shared dead-letter queue
/// can have thousands.
const SOURCES_SHOWN: usize = 20;

fn count(n: Option<u64>) -> Option<String> {
    n.map(|n| {
        let s = n.to_string();
        let mut out = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                out.push(',');
            }
            out.push(c);
        }
        out
    })
}

fn rate(r: Option<f64>) -> Option<String> {
    r.map(|r| format!("{r:.1}/s"))
}

/// A JSON value as one line: strings bare, everything else as JSON.
fn json_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Milliseconds as the shortest exact unit: 90000 -> "90 s (90000 ms)".
fn duration_ms(ms: u64) -> String {
    let unit = [
        (86_400_000, "d"),
        (3_600_000, "h"),
        (60_000, "min"),
        (1000, "s"),
    ]
    .into_iter()
    .find(|(u, _)| ms >= *u && ms.is_multiple_of(*u));
    match unit {
        Some((u, name)) => format!("{} {name} ({ms} ms)", ms / u),
        None => format!("{ms} ms"),
    }
}

/// Bytes in the largest binary unit that keeps a digit before the point.
fn bytes(n: u64) -> String {
    let units = ["KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = None;
    for u in units {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = Some(u);
    }
    match unit {
        Some(u) => format!("{v:.1} {u} ({n} B)"),
        None => format!("{n} B"),
    }
}

/// The queue's flags in the management UI's words; None when the broker gave none.
fn features(st: &QueueState) -> Option<String> {
    let mut f = Vec::new();
    match st.durable {
        Some(true) => f.push("durable"),
        Some(false) => f.push("transient"),
        None => {}
    }
    if st.auto_delete == Some(true) {
        f.push("auto-delete");
    }
    if st.exclusive == Some(true) {
        f.push("exclusive");
    }
    (!f.is_empty()).then(|| f.join(", "))
}

/// Replicas, marking those not online now.
fn members(st: &QueueState) -> Option<String> {
    if st.members.is_empty() {
        return None;
    }
    let list: Vec<String> = st
        .members
        .iter()
        .map(|m| {
            if st.online.is_empty() || st.online.contains(m) {
                m.clone()
            } else {
                format!("{m} (offline)")
            }
        })
        .collect();
    Some(list.join(", "))
}

/// One consumer on one line: who, where, and how it takes messages.
fn consumer(c: &ConsumerInfo) -> String {
    let mut parts = Vec::new();
    match (&c.user, &c.connection) {
        (Some(u), Some(conn)) => parts.push(format!("{u} on {conn}")),
        (None, Some(conn)) => parts.push(conn.clone()),
        (Some(u), None) => parts.push(u.clone()),
        (None, None) => {}
    }
    match c.prefetch {
        Some(0) => parts.push("prefetch unlimited".into()),
        Some(n) => parts.push(format!("prefetch {n}")),
        None => {}
    }
    match c.ack_required {
        Some(true) => parts.push("manual ack".into()),
        Some(false) => parts.push("auto-ack".into()),
        None => {}
    }
    if c.exclusive == Some(true) {
        parts.push("exclusive".into());
    }
    if let Some(s) = &c.status {
        parts.push(s.clone());
    }
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

fn rows(v: Vec<(&str, Option<String>)>) -> Vec<(String, Option<String>)> {
    v.into_iter().map(|(l, v)| (l.to_string(), v)).collect()
}

pub fn sections(d: &QueueDetail) -> Vec<Section> {
    let q = &d.summary;
    let mut out = Vec::new();
    let mut push = |title: &'static str, rows: Vec<(String, Option<String>)>| {
        let rows: Vec<(String, String)> = rows
            .into_iter()
            .filter_map(|(l, v)| v.map(|v| (l, v)))
            .collect();
        if !rows.is_empty() {
            out.push(Section { title, rows });
        }
    };
    let kind = match q.kind {
        QueueKind::Queue => "queue",
        QueueKind::Stream => "stream",
        QueueKind::Topic => "topic",
    };
    push(
        "Queue",
        rows(vec![
            ("name", Some(q.name.clone())),
            ("type", Some(format!("{} ({kind})", q.queue_type))),
            ("virtual host", q.vhost.clone()),
            ("cluster", q.cluster.clone()),
            ("broker", d.broker.clone()),
            ("peek", d.peek_rule.clone()),
            ("features", features(&d.state)),
            ("state", d.state.status.clone()),
            ("node", d.state.node.clone()),
            ("members", members(&d.state)),
            ("policy", q.policy.clone()),
        ]),
    );
    push(
        "Depth",
        rows(vec![
            ("messages", count(q.messages)),
            ("ready", count(q.ready)),
            ("unacked", count(q.unacked)),
            ("consumers", count(q.consumers)),
            ("partitions", count(q.partitions.map(u64::from))),
            ("message bytes", d.state.message_bytes.map(bytes)),
            ("memory", d.state.memory_bytes.map(bytes)),
            ("idle since", d.state.idle_since.clone()),
        ]),
    );
    push(
        "Consumers",
        d.consumer_details
            .iter()
            .map(|c| (c.tag.clone(), Some(consumer(c))))
            .collect(),
    );
    push(
        "Rates",
        rows(vec![
            ("in", rate(q.publish_rate)),
            ("out", rate(q.deliver_rate)),
            ("acked", rate(q.ack_rate)),
        ]),
    );
    let target = q.dead_letter.as_ref().map(|t| {
        let ex = if t.exchange.is_empty() {
            "(default exchange)".to_string()
        } else {
            t.exchange.clone()
        };
        match &t.routing_key {
            Some(k) => format!("{ex}, routing key \"{k}\""),
            None => format!("{ex}, the message's own routing key"),
        }
    });
    let resolved = match (&q.dead_letter, &q.dead_letter_queue) {
        (_, Some(dlq)) => Some(dlq.clone()),
        (Some(_), None) => Some("no queue (the target routes nowhere: dropped)".to_string()),
        (None, None) => None,
    };
    let sources = (!q.dead_letter_sources.is_empty()).then(|| {
        let shown = q.dead_letter_sources.len().min(SOURCES_SHOWN);
        let more = q.dead_letter_sources.len() - shown;
        let first = q.dead_letter_sources[..shown].join(", ");
        if more == 0 {
            first
        } else {
            format!("{first} and {more} more (--json lists them all)")
        }
    });
    push(
        "Dead letters",
        rows(vec![
            ("dead-letters to", target),
            ("which reaches", resolved),
            ("receives from", sources),
            (
                "is a dead-letter queue",
                (q.is_dead_letter && q.dead_letter_sources.is_empty())
                    .then(|| "yes (by its name)".to_string()),
            ),
        ]),
    );
    push(
        "Limits",
        rows(vec![
            ("delivery limit", count(q.delivery_limit)),
            ("message TTL", q.message_ttl_ms.map(duration_ms)),
            ("max length", count(q.max_length)),
        ]),
    );
    push(
        "Arguments",
        q.arguments
            .iter()
            .map(|(k, v)| (k.clone(), Some(json_text(v))))
            .collect(),
    );
    push(
        "Partitions",
        d.partitions_detail
            .iter()
            .map(|p| {
                let mut v = format!(
                    "offsets {}–{}, {} messages",
                    p.low,
                    p.high,
                    count(Some(p.messages())).unwrap_or_default()
                );
                if let Some(l) = p.leader {
                    v.push_str(&format!(", leader {l}"));
                }
                if !p.replicas.is_empty() {
                    let r: Vec<String> = p.replicas.iter().map(|r| r.to_string()).collect();
                    v.push_str(&format!(", replicas {}", r.join(",")));
                }
                (p.partition.to_string(), Some(v))
            })
            .collect(),
    );
    push(
        "Consumer groups",
        d.consumer_groups
            .iter()
            .map(|g| {
                let behind: Vec<String> = g
                    .partitions
                    .iter()
                    .filter(|p| p.lag > 0)
                    .map(|p| {
                        format!(
                            "{}: {}",
                            p.partition,
                            count(Some(p.lag)).unwrap_or_default()
                        )
                    })
                    .collect();
                let mut v = format!(
                    "lag {}, {}, {} member{}",
                    count(Some(g.lag)).unwrap_or_default(),
                    g.state,
                    g.members,
                    if g.members == 1 { "" } else { "s" }
                );
                if !behind.is_empty() && g.partitions.len() > 1 {
                    v.push_str(&format!(" (by partition {})", behind.join(", ")));
                }
                (g.name.clone(), Some(v))
            })
            .collect(),
    );
    push(
        "Configs",
        d.configs
            .iter()
            .map(|(k, v)| (k.clone(), Some(json_text(v))))
            .collect(),
    );
    push(
        "Bound from",
        d.bindings
            .iter()
            .map(|b| ("binding".to_string(), Some(b.clone())))
            .collect(),
    );
    push(
        "Notes",
        d.notes
            .iter()
            .map(|n| ("note".to_string(), Some(n.clone())))
            .collect(),
    );
    out
}

/// The sections as plain text, for the terminal: labels aligned within each section.
pub fn text(d: &QueueDetail) -> String {
    let mut s = String::new();
    for (i, sec) in sections(d).iter().enumerate() {
        if i > 0 {
            s.push('\n');
        }
        s.push_str(sec.title);
        s.push('\n');
        let w = sec.label_width();
        for (l, v) in &sec.rows {
            s.push_str(&format!("  {l:<w$}  {v}\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{DeadLetterTarget, PartitionInfo, QueueSummary};

    fn detail(q: QueueSummary) -> QueueDetail {
        QueueDetail::new(q)
    }

    #[test]
    fn lists_what_is_known_and_leaves_out_the_rest() {
        let mut q = QueueSummary::new("orders", QueueKind::Queue, "quorum");
        q.vhost = Some("/".into());
        q.messages = Some(1_234_567);
        q.dead_letter = Some(DeadLetterTarget {
            exchange: String::new(),
            routing_key: None,
        });
        q.delivery_limit = Some(20);
        q.message_ttl_ms = Some(90_000);
        q.policy = Some("ha".into());
        q.arguments
            .insert("x-max-length".into(), serde_json::json!(10));
        let text = text(&detail(q));
        assert!(text.contains("type          quorum (queue)"), "{text}");
        assert!(text.contains("policy        ha"), "{text}");
        assert!(text.contains("messages  1,234,567"), "{text}");
        // Unknown counts and rates are not shown as zero.
        assert!(!text.contains("ready"), "{text}");
        assert!(!text.contains("Rates"), "{text}");
        assert!(text.contains("(default exchange), the message's own routing key"));
        assert!(text.contains("no queue (the target routes nowhere: dropped)"));
        assert!(text.contains("message TTL     90 s (90000 ms)"), "{text}");
        assert!(text.contains("x-max-length  10"), "{text}");
    }

    #[test]
    fn a_shared_dead_letter_queue_names_its_first_sources() {
        let mut q = QueueSummary::new("dl", QueueKind::Queue, "classic");
        q.is_dead_letter = true;
        q.dead_letter_sources = (0..25).map(|i| format!("q{i}")).collect();
        let text = text(&detail(q.clone()));
        assert!(
            text.contains("receives from  q0, q1, q2,")
                && text.contains(", q19 and 5 more (--json lists them all)\n"),
            "{text}"
        );
        assert!(!text.contains("q20"), "{text}");
        q.dead_letter_sources.truncate(20);
        let text = super::text(&detail(q));
        assert!(text.contains(", q19\n"), "{text}");
    }

    #[test]
    fn broker_state_and_consumers() {
        let mut d = detail(QueueSummary::new("q", QueueKind::Queue, "quorum"));
        d.state = QueueState {
            durable: Some(true),
            status: Some("running".into()),
            members: vec!["rabbit@a".into(), "rabbit@b".into()],
            online: vec!["rabbit@a".into()],
            memory_bytes: Some(3 * 1024 * 1024 / 2),
            message_bytes: Some(512),
            ..Default::default()
        };
        d.consumer_details = vec![ConsumerInfo {
            tag: "ctag-1".into(),
            connection: Some("10.0.0.5:5555 -> 10.0.0.1:5672".into()),
            user: Some("billing-svc".into()),
            prefetch: Some(0),
            ack_required: Some(true),
            exclusive: None,
            status: Some("up".into()),
        }];
        let text = text(&d);
        assert!(text.contains("features  durable\n"), "{text}");
        assert!(
            text.contains("members   rabbit@a, rabbit@b (offline)"),
            "{text}"
        );
        assert!(
            text.contains("memory         1.5 MiB (1572864 B)"),
            "{text}"
        );
        assert!(text.contains("message bytes  512 B"), "{text}");
        assert!(
            text.contains(
                "ctag-1  billing-svc on 10.0.0.5:5555 -> 10.0.0.1:5672, prefetch unlimited, manual ack, up"
            ),
            "{text}"
        );
    }

    #[test]
    fn topics_list_partitions_and_configs() {
        let mut d = detail(QueueSummary::new("pay", QueueKind::Topic, "topic"));
        d.partitions_detail = vec![PartitionInfo {
            partition: 0,
            low: 5,
            high: 1005,
            leader: Some(1),
            replicas: vec![1, 2],
        }];
        d.configs
            .insert("retention.ms".into(), serde_json::json!("604800000"));
        let secs = sections(&d);
        let titles: Vec<&str> = secs.iter().map(|s| s.title).collect();
        assert_eq!(titles, ["Queue", "Partitions", "Configs"]);
        assert_eq!(
            secs[1].rows,
            [(
                "0".to_string(),
                "offsets 5–1005, 1,000 messages, leader 1, replicas 1,2".to_string()
            )]
        );
        assert_eq!(secs[2].rows[0].1, "604800000");
        assert_eq!(duration_ms(1500), "1500 ms");
        assert_eq!(duration_ms(7_200_000), "2 h (7200000 ms)");
    }
}
