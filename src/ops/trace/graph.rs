//! The hop graph: hops grouped by the publish they are copies of, so a fan-out reads as
//! branches under one root, a dead letter hangs under the publish (or record) it came
//! from, and later messages sharing the ID are follow-ups and replays of their own.

use super::{Hop, HopKind};
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// What a root stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootTag {
    /// The first message with the ID.
    Publish,
    /// A later message sharing the ID (an invoice after an order).
    FollowUp,
    /// A copy mqscope's replay re-published (`x-mqscope-replayed-from`).
    Replay,
}

impl RootTag {
    pub fn as_str(self) -> &'static str {
        match self {
            RootTag::Publish => "publish",
            RootTag::FollowUp => "follow-up",
            RootTag::Replay => "replay",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// One publish; `label` says where to (exchange and routing key, or topic).
    Root { tag: RootTag, label: String },
    /// One place a copy of that publish was found.
    Branch { last: bool },
    /// Under a topic record's branch: one consumer group's progress past it (the hop's
    /// `groups[group]`); `under_last` when the branch above is its root's last.
    Group { group: usize, under_last: bool },
}

/// A line of the graph. Every row points at a hop (a root at its publish's first hop), so
/// any row can be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub hop: usize,
    pub kind: RowKind,
}

/// What makes copies one publish. Borrowed: the graph is rebuilt while a scan runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key<'a> {
    /// A log record, and the dead letters that name it as their origin.
    Record(&'a str, i32, i64),
    /// AMQP copies: the properties and route a fan-out keeps on every copy.
    Publish {
        message_id: Option<&'a str>,
        published: Option<DateTime<Utc>>,
        exchange: Option<&'a str>,
        routing_key: Option<&'a str>,
        replayed_from: Option<&'a str>,
    },
    /// Nothing to match it with.
    Alone(usize),
}

fn key(i: usize, h: &Hop) -> Key<'_> {
    if let Some(d) = &h.dead_letter
        && let (Some(p), Some(o)) = (d.partition, d.offset)
    {
        return Key::Record(&d.from, p, o);
    }
    if h.dead_letter.is_none()
        && let (Some(p), Some(o)) = (h.partition, h.offset)
    {
        return Key::Record(&h.queue, p, o);
    }
    if h.message_id.is_none() && h.published.is_none() {
        return Key::Alone(i);
    }
    // A dead letter was last published by its dead-letter exchange; its copies' route is
    // the one its death record keeps.
    let (exchange, routing_key) = match &h.dead_letter {
        Some(d) => (d.exchange.as_deref(), d.routing_key.as_deref()),
        None => (h.exchange.as_deref(), h.routing_key.as_deref()),
    };
    Key::Publish {
        message_id: h.message_id.as_deref(),
        published: h.published,
        exchange,
        routing_key,
        replayed_from: h.replayed_from.as_deref(),
    }
}

/// The graph of `hops` (in time order): roots in the order their first copy appears,
/// each followed by its copies in time order.
pub fn rows(hops: &[Hop]) -> Vec<Row> {
    // Rebuilt on every hit while a scan runs: linear in the hops, not quadratic.
    let mut groups: Vec<(Key, Vec<usize>)> = Vec::new();
    let mut index: HashMap<Key, usize> = HashMap::new();
    for (i, h) in hops.iter().enumerate() {
        let k = key(i, h);
        match index.get(&k) {
            Some(&g) => groups[g].1.push(i),
            None => {
                index.insert(k, groups.len());
                groups.push((k, vec![i]));
            }
        }
    }
    let mut out = Vec::with_capacity(hops.len() + groups.len());
    for (n, (k, members)) in groups.iter().enumerate() {
        let Some(&first) = members.first() else {
            continue;
        };
        let replayed = members.iter().find_map(|&i| hops[i].replayed_from.as_ref());
        let tag = match (replayed, n) {
            (Some(_), _) => RootTag::Replay,
            (None, 0) => RootTag::Publish,
            (None, _) => RootTag::FollowUp,
        };
        let mut label = root_label(k, members, hops);
        if let Some(from) = replayed {
            label.push_str(&format!("  of {from}"));
            if let Some(c) = members.iter().find_map(|&i| hops[i].replay_count) {
                label.push_str(&format!(" (replay {c})"));
            }
        }
        out.push(Row {
            hop: first,
            kind: RowKind::Root { tag, label },
        });
        for (j, &i) in members.iter().enumerate() {
            let last = j + 1 == members.len();
            out.push(Row {
                hop: i,
                kind: RowKind::Branch { last },
            });
            out.extend((0..hops[i].groups.len()).map(|group| Row {
                hop: i,
                kind: RowKind::Group {
                    group,
                    under_last: last,
                },
            }));
        }
    }
    out
}

fn exchange_name(x: &str) -> &str {
    if x.is_empty() { "(default)" } else { x }
}

fn root_label(k: &Key<'_>, members: &[usize], hops: &[Hop]) -> String {
    let alive = members
        .iter()
        .map(|&i| &hops[i])
        .find(|h| h.dead_letter.is_none());
    let mut label = match (k, alive) {
        (Key::Record(topic, ..), Some(_)) => format!("produced to {topic}"),
        (Key::Record(topic, p, o), None) => {
            format!("produced to {topic}[{p}]@{o} (no longer found there)")
        }
        (_, Some(h)) => match (&h.exchange, &h.routing_key) {
            (Some(x), Some(rk)) => format!("published to {} / {rk}", exchange_name(x)),
            (Some(x), None) => format!("published to {}", exchange_name(x)),
            _ if h.kind == HopKind::Topic => format!("produced to {}", h.queue),
            _ => "published".to_string(),
        },
        (_, None) => {
            let d = members.iter().find_map(|&i| hops[i].dead_letter.as_ref());
            match d.map(|d| (&d.exchange, &d.routing_key)) {
                Some((Some(x), Some(rk))) => format!("published to {} / {rk}", exchange_name(x)),
                Some((Some(x), None)) => format!("published to {}", exchange_name(x)),
                _ => "published".to_string(),
            }
        }
    };
    if let Some(id) = members.iter().find_map(|&i| hops[i].message_id.as_ref()) {
        label.push_str(&format!("  message {id}"));
    }
    label
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::DeathReason;
    use crate::ops::trace::DeadLetterHop;

    fn at(s: i64) -> Option<DateTime<Utc>> {
        DateTime::from_timestamp(s, 0)
    }

    fn copy(queue: &str, msg: &str, published: i64, time: i64) -> Hop {
        Hop {
            queue: queue.into(),
            kind: HopKind::Queue,
            position: Some(0),
            partition: None,
            offset: None,
            timestamp: None,
            exchange: Some("orders".into()),
            routing_key: Some("order.created".into()),
            message_id: Some(msg.into()),
            dead_letter: None,
            replayed_from: None,
            replay_count: None,
            live: false,
            routed_queues: None,
            groups: Vec::new(),
            deliveries: Vec::new(),
            recorded: None,
            key: None,
            time: at(time),
            published: at(published),
        }
    }

    fn dead(from: &str, partition: Option<i32>, offset: Option<i64>) -> DeadLetterHop {
        DeadLetterHop {
            from: from.into(),
            reason: DeathReason::Rejected,
            count: 1,
            partition,
            offset,
            error: None,
            exchange: Some("orders".into()),
            routing_key: Some("order.created".into()),
        }
    }

    fn shape(rows: &[Row], hops: &[Hop]) -> Vec<String> {
        rows.iter()
            .map(|r| match &r.kind {
                RowKind::Root { tag, label } => format!("{} {label}", tag.as_str()),
                RowKind::Branch { last } => {
                    format!("{} {}", if *last { "└" } else { "├" }, hops[r.hop].place())
                }
                RowKind::Group { group, under_last } => {
                    let g = &hops[r.hop].groups[*group];
                    let bar = if *under_last { " " } else { "│" };
                    format!("{bar}   {} {}", g.group, g.status.as_str())
                }
            })
            .collect()
    }

    #[test]
    fn fan_out_branches_dead_letters_follow_ups_and_replays() {
        let mut dlq = copy("billing.dlq", "m1", 10, 15);
        dlq.exchange = Some("dlx".into());
        dlq.routing_key = Some("billing".into());
        dlq.dead_letter = Some(dead("billing", None, None));
        let mut invoice = copy("notifications", "m2", 20, 20);
        invoice.exchange = Some(String::new());
        invoice.routing_key = Some("notifications".into());
        let mut replayed = copy("billing", "m1", 10, 30);
        replayed.replayed_from = Some("billing.dlq#0".into());
        replayed.replay_count = Some(2);
        let hops = vec![
            copy("analytics", "m1", 10, 10),
            copy("email", "m1", 10, 10),
            dlq,
            invoice,
            replayed,
        ];
        assert_eq!(
            shape(&rows(&hops), &hops),
            vec![
                "publish published to orders / order.created  message m1",
                "├ analytics#0",
                "├ email#0",
                "└ billing.dlq#0",
                "follow-up published to (default) / notifications  message m2",
                "└ notifications#0",
                "replay published to orders / order.created  message m1  of billing.dlq#0 (replay 2)",
                "└ billing#0",
            ]
        );
    }

    #[test]
    fn kafka_dead_letters_hang_under_their_original_record() {
        let rec = |topic: &str, p: i32, o: i64, t: i64| Hop {
            kind: HopKind::Topic,
            position: None,
            partition: Some(p),
            offset: Some(o),
            exchange: None,
            routing_key: None,
            message_id: None,
            ..copy(topic, "", t, t)
        };
        let mut dlt = rec("payments-dlt", 0, 7, 50);
        dlt.dead_letter = Some(dead("payments", Some(2), Some(41)));
        let mut orphan = rec("payments-dlt", 0, 8, 60);
        orphan.dead_letter = Some(dead("payments", Some(1), Some(3)));
        let hops = vec![
            rec("payments", 2, 41, 40),
            rec("payments", 0, 12, 45),
            dlt,
            orphan,
        ];
        assert_eq!(
            shape(&rows(&hops), &hops),
            vec![
                "publish produced to payments",
                "├ payments[2]@41",
                "└ payments-dlt[0]@7",
                "follow-up produced to payments",
                "└ payments[0]@12",
                "follow-up produced to payments[1]@3 (no longer found there)",
                "└ payments-dlt[0]@8",
            ]
        );
    }

    #[test]
    fn a_records_consumer_groups_hang_under_its_branch() {
        use crate::model::{GroupProgress, GroupStatus};
        let mut rec = Hop {
            kind: HopKind::Topic,
            position: None,
            partition: Some(0),
            offset: Some(4),
            exchange: None,
            routing_key: None,
            ..copy("payments", "m1", 10, 10)
        };
        let g = |name: &str, status| GroupProgress {
            group: name.into(),
            status,
            committed: Some(4),
            lag: Some(1),
        };
        rec.groups = vec![
            g("audit", GroupStatus::Consumed),
            g("billing", GroupStatus::Pending),
        ];
        let mut dlt = rec.clone();
        dlt.queue = "payments-dlt".into();
        dlt.groups.truncate(1);
        dlt.time = at(20);
        dlt.dead_letter = Some(dead("payments", Some(0), Some(4)));
        let hops = vec![rec, dlt];
        assert_eq!(
            shape(&rows(&hops), &hops),
            vec![
                "publish produced to payments  message m1",
                "├ payments[0]@4",
                "│   audit consumed",
                "│   billing pending",
                "└ payments-dlt[0]@4",
                "    audit consumed",
            ]
        );
    }

    #[test]
    fn hops_without_identity_stand_alone() {
        let bare = |q: &str| Hop {
            message_id: None,
            published: None,
            ..copy(q, "", 0, 0)
        };
        let hops = vec![bare("a"), bare("b")];
        let r = rows(&hops);
        assert_eq!(r.len(), 4, "{r:?}");
        assert!(rows(&[]).is_empty());
    }
}
