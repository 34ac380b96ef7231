//! How far consumers got: whether each consumer group has read past a log record, and a
//! delivery of a message to a queue's consumer as a broker reports it.

use super::ConsumerGroup;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Whether a group has read past a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupStatus {
    /// The group's committed offset is past the record.
    Consumed,
    /// The group has not read it yet (or has no offset on its partition).
    Pending,
}

impl GroupStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            GroupStatus::Consumed => "consumed",
            GroupStatus::Pending => "pending",
        }
    }
}

/// One consumer group as seen from one record of a topic it has offsets on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupProgress {
    pub group: String,
    pub status: GroupStatus,
    /// The group's committed offset on the record's partition: the next one it reads. None
    /// when it has committed on other partitions of the topic only.
    pub committed: Option<i64>,
    /// How far behind the group is on that partition (high watermark minus committed).
    pub lag: Option<u64>,
}

impl GroupProgress {
    /// "✓ consumed by audit (committed 42, lag 3)" or "… pending in billing (committed 40,
    /// lag 5)".
    pub fn describe(&self) -> String {
        let at = match (self.committed, self.lag) {
            (Some(c), Some(l)) => format!(" (committed {c}, lag {l})"),
            (Some(c), None) => format!(" (committed {c})"),
            _ => " (no offset on this partition)".to_string(),
        };
        match self.status {
            GroupStatus::Consumed => format!("✓ consumed by {}{at}", self.group),
            GroupStatus::Pending => format!("… pending in {}{at}", self.group),
        }
    }
}

/// Where each group with offsets on `topic` stands with the record at `partition` and
/// `offset`, in group name order. Kafka's committed offset is the next to read, so a
/// record is consumed once the committed offset is above it.
pub fn progress_at(
    groups: &[ConsumerGroup],
    topic: &str,
    partition: i32,
    offset: i64,
) -> Vec<GroupProgress> {
    let mut out: Vec<GroupProgress> = groups
        .iter()
        .filter_map(|g| g.on_topic(topic))
        .map(|g| {
            let here = g.partitions.iter().find(|p| p.partition == partition);
            let committed = here.and_then(|p| p.committed);
            GroupProgress {
                status: if committed.is_some_and(|c| c > offset) {
                    GroupStatus::Consumed
                } else {
                    GroupStatus::Pending
                },
                committed,
                lag: here.filter(|p| p.committed.is_some()).map(|p| p.lag),
                group: g.name,
            }
        })
        .collect();
    out.sort_by(|a, b| a.group.cmp(&b.group));
    out
}

/// A message handed to a consumer, as the broker reports it (RabbitMQ's firehose
/// `deliver.<queue>` events; the local broker's consumers).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Delivery {
    pub queue: String,
    /// When it was seen handed over: the firehose does not time its events, so this is
    /// when the tail received the report, within moments of the delivery.
    pub at: DateTime<Utc>,
    /// Delivered before and returned (rejected, nacked, or its consumer went away).
    pub redelivered: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The consumer's connection, as the broker names it (`client:port -> server:port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<i64>,
    /// The broker node that delivered it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

impl Delivery {
    /// What the delivery says beyond its queue and time, by name, as the recorder keeps it.
    pub fn details(&self) -> Vec<(String, String)> {
        let mut out = vec![(
            "redelivered".to_string(),
            if self.redelivered { "yes" } else { "no" }.to_string(),
        )];
        let named = [
            ("user", self.user.clone()),
            ("connection", self.connection.clone()),
            ("channel", self.channel.map(|c| c.to_string())),
            ("node", self.node.clone()),
        ];
        out.extend(
            named
                .into_iter()
                .filter_map(|(k, v)| v.map(|v| (k.to_string(), v))),
        );
        out
    }

    /// The delivery [`Delivery::details`] kept, from `queue` at `at`; names it does not
    /// know are passed over, a channel that is not a number is left out.
    pub fn from_details(queue: &str, at: DateTime<Utc>, details: &[(String, String)]) -> Self {
        let get = |k: &str| details.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        Delivery {
            queue: queue.to_string(),
            at,
            redelivered: get("redelivered").is_some_and(|v| v == "yes"),
            user: get("user"),
            connection: get("connection"),
            channel: get("channel").and_then(|c| c.parse().ok()),
            node: get("node"),
        }
    }

    /// The short form, for where the time is shown beside it: "picked up from shipping by
    /// user shipping-svc, redelivered: no".
    pub fn summary(&self) -> String {
        let by = self
            .user
            .as_ref()
            .map(|u| format!(" by user {u}"))
            .unwrap_or_default();
        format!(
            "picked up from {}{by}, redelivered: {}",
            self.queue,
            if self.redelivered { "yes" } else { "no" }
        )
    }

    /// Where it went: "connection 10.0.0.7:50412 -> 10.0.0.2:5672 (channel 1)", if known.
    pub fn consumer(&self) -> Option<String> {
        let c = self.connection.as_ref()?;
        Some(match self.channel {
            Some(ch) => format!("connection {c} (channel {ch})"),
            None => format!("connection {c}"),
        })
    }

    /// "picked up from shipping by user shipping-svc on connection … at …, redelivered: no".
    pub fn describe(&self) -> String {
        let mut text = format!("picked up from {}", self.queue);
        if let Some(u) = &self.user {
            text.push_str(&format!(" by user {u}"));
        }
        if let Some(c) = self.consumer() {
            text.push_str(&format!(" on {c}"));
        }
        text.push_str(&format!(
            " at {}, redelivered: {}",
            super::time::rfc3339(&self.at),
            if self.redelivered { "yes" } else { "no" }
        ));
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::PartitionLag;

    /// shipping-svc's delivery from `shipping` at `secs`, on channel 1 of 10.0.0.7's
    /// connection to 10.0.0.2.
    fn shipped(secs: i64, redelivered: bool) -> Delivery {
        Delivery {
            queue: "shipping".into(),
            at: DateTime::from_timestamp(secs, 0).unwrap(),
            redelivered,
            user: Some("shipping-svc".into()),
            connection: Some("10.0.0.7:50412 -> 10.0.0.2:5672".into()),
            channel: Some(1),
            node: None,
        }
    }

    #[test]
    fn a_delivery_comes_back_whole_from_its_details() {
        let d = shipped(1_700_000_000, true);
        assert_eq!(Delivery::from_details("shipping", d.at, &d.details()), d);
        let bare = Delivery {
            redelivered: false,
            user: None,
            connection: None,
            channel: None,
            ..d.clone()
        };
        assert_eq!(
            Delivery::from_details("shipping", d.at, &bare.details()),
            bare
        );
    }

    fn group(name: &str, committed: &[(i32, i64)], high: i64) -> ConsumerGroup {
        let partitions: Vec<PartitionLag> = committed
            .iter()
            .map(|&(partition, c)| PartitionLag {
                topic: "payments".into(),
                partition,
                committed: Some(c),
                high,
                lag: u64::try_from(high - c).unwrap_or(0),
            })
            .collect();
        ConsumerGroup {
            name: name.into(),
            state: "Stable".into(),
            members: 1,
            topics: vec!["payments".into()],
            lag: partitions.iter().map(|p| p.lag).sum(),
            partitions,
        }
    }

    #[test]
    fn a_group_past_the_record_consumed_it_and_one_at_it_has_not() {
        let groups = vec![
            group("behind", &[(0, 5)], 10),
            group("ahead", &[(0, 6)], 10),
            group("elsewhere", &[(1, 9)], 10),
        ];
        let p = progress_at(&groups, "payments", 0, 5);
        let shown: Vec<(&str, GroupStatus, Option<i64>, Option<u64>)> = p
            .iter()
            .map(|g| (g.group.as_str(), g.status, g.committed, g.lag))
            .collect();
        assert_eq!(
            shown,
            vec![
                ("ahead", GroupStatus::Consumed, Some(6), Some(4)),
                ("behind", GroupStatus::Pending, Some(5), Some(5)),
                ("elsewhere", GroupStatus::Pending, None, None),
            ],
            "committed is the next offset to read: 5 has not read record 5"
        );
        assert!(progress_at(&groups, "orders", 0, 5).is_empty());
        assert_eq!(p[0].describe(), "✓ consumed by ahead (committed 6, lag 4)");
        assert_eq!(
            p[2].describe(),
            "… pending in elsewhere (no offset on this partition)"
        );
    }

    #[test]
    fn a_delivery_reads_as_a_sentence() {
        let d = shipped(0, false);
        assert_eq!(
            d.describe(),
            "picked up from shipping by user shipping-svc on connection 10.0.0.7:50412 -> 10.0.0.2:5672 (channel 1) at 1970-01-01T00:00:00.000Z, redelivered: no"
        );
        assert_eq!(
            d.summary(),
            "picked up from shipping by user shipping-svc, redelivered: no"
        );
    }
}
