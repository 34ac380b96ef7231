//! What a replay does with each message: the options as the user gave them, their checked
//! form (the plan), where a message goes, and the copy that is published.

use super::report::{Report, item};
use super::{
    BATCH, DEFAULT_MAX_REPLAYS, Filter, REPLAY_COUNT, REPLAY_ID, REPLAYED_FROM, ReplayError,
    is_death_header, origin_label, replay_count,
};
use crate::backend::Destination;
use crate::model::topology::Topology;
use crate::model::{FieldValue, Message};
use serde::Serialize;

/// The copy that is published: the original's payload, properties, key and headers, minus
/// the death headers, plus where it came from and how often it was replayed. Log
/// destinations get text header values (Kafka headers are bytes).
pub fn replayed_copy(m: &Message, key: &str, to_log: bool) -> Message {
    let mut copy = m.clone();
    copy.headers = m.headers.filtered(|k| {
        !is_death_header(k) && k != REPLAYED_FROM && k != REPLAY_ID && k != REPLAY_COUNT
    });
    let count = replay_count(m) + 1;
    let text = |s: String| FieldValue::LongString(s.into_bytes().into());
    copy.headers.insert(REPLAYED_FROM, text(origin_label(m)));
    copy.headers.insert(
        REPLAY_COUNT,
        if to_log {
            text(count.to_string())
        } else {
            FieldValue::I64(i64::try_from(count).unwrap_or(i64::MAX))
        },
    );
    copy.headers.insert(REPLAY_ID, text(key.to_string()));
    copy.redelivered = false;
    copy.delivery_count = None;
    copy
}

/// An explicit destination (`--to`): `queue:NAME`, `exchange:NAME` (each message keeps
/// its routing key unless one is given), `topic:NAME`, or a bare name (a queue on AMQP
/// brokers, a topic on Kafka).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ToTarget {
    Queue(String),
    Exchange(String),
    Topic(String),
    Bare(String),
}

impl ToTarget {
    pub fn parse(s: &str) -> Result<Self, ReplayError> {
        let (kind, name) = match s.split_once(':') {
            Some((k @ ("queue" | "exchange" | "topic"), n)) => (k, n),
            _ => ("", s),
        };
        if name.is_empty() && kind != "exchange" {
            return Err(ReplayError::Invalid(format!(
                "--to \"{s}\": name a queue (queue:NAME), an exchange (exchange:NAME) or a topic (topic:NAME)"
            )));
        }
        Ok(match kind {
            "queue" => ToTarget::Queue(name.into()),
            "exchange" => ToTarget::Exchange(name.into()),
            "topic" => ToTarget::Topic(name.into()),
            _ => ToTarget::Bare(name.into()),
        })
    }

    pub fn text(&self) -> String {
        match self {
            ToTarget::Queue(n) => format!("queue:{n}"),
            ToTarget::Exchange(n) => format!("exchange:{n}"),
            ToTarget::Topic(n) => format!("topic:{n}"),
            ToTarget::Bare(n) => n.clone(),
        }
    }
}

/// How a RabbitMQ dead letter goes back: through its original exchange and routing key,
/// straight to the queue it died in, or (auto) through the exchange unless that would
/// also deliver it to other queues again (fan-out), in which case straight to its queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    #[default]
    Auto,
    Exchange,
    Queue,
}

/// Everything a replay needs to know; kept in the journal so `--resume` runs the same one.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
pub struct ReplayOptions {
    pub to: Option<String>,
    #[serde(default)]
    pub routing_key: Option<String>,
    #[serde(default)]
    pub via: Option<String>,
    pub filter: Option<String>,
    #[serde(default)]
    pub ids: Vec<String>,
    pub limit: Option<u64>,
    pub max_replays: Option<u64>,
    #[serde(default)]
    pub force: bool,
    /// Logs: produce to the partition the record came from.
    #[serde(default)]
    pub keep_partition: bool,
    /// Messages per batch (journalled, published, confirmed, acked together).
    #[serde(default)]
    pub batch: Option<usize>,
    /// Logs: afterwards, commit this consumer group past the records replayed.
    #[serde(default)]
    pub commit_group: Option<String>,
    /// Logs: afterwards, delete the records replayed (DeleteRecords).
    #[serde(default)]
    pub delete_records: bool,
}

/// The parsed, checked form of [`ReplayOptions`].
#[derive(Debug, Clone)]
pub struct Plan {
    pub to: Option<ToTarget>,
    pub routing_key: Option<String>,
    pub via: Via,
    pub filter: Option<Filter>,
    pub ids: Vec<String>,
    pub limit: Option<u64>,
    pub max_replays: u64,
    pub force: bool,
    pub keep_partition: bool,
    pub batch: usize,
    pub commit_group: Option<String>,
    pub delete_records: bool,
}

impl ReplayOptions {
    pub fn plan(&self) -> Result<Plan, ReplayError> {
        let via = match self.via.as_deref() {
            None | Some("auto") => Via::Auto,
            Some("exchange") => Via::Exchange,
            Some("queue") => Via::Queue,
            Some(other) => {
                return Err(ReplayError::Invalid(format!(
                    "--via \"{other}\": auto, exchange or queue"
                )));
            }
        };
        Ok(Plan {
            to: self.to.as_deref().map(ToTarget::parse).transpose()?,
            routing_key: self.routing_key.clone(),
            via,
            filter: self.filter.as_deref().map(Filter::parse).transpose()?,
            ids: self.ids.clone(),
            limit: self.limit,
            max_replays: self.max_replays.unwrap_or(DEFAULT_MAX_REPLAYS),
            force: self.force,
            keep_partition: self.keep_partition,
            batch: self.batch.unwrap_or(BATCH).clamp(1, 65_535),
            commit_group: self.commit_group.clone(),
            delete_records: self.delete_records,
        })
    }
}

impl Plan {
    /// Whether the user chose this message (ids and filter; all when neither is given).
    pub fn selects(&self, m: &Message, key: &str) -> bool {
        let by_id = self.ids.is_empty()
            || self
                .ids
                .iter()
                .any(|id| id == key || m.properties.message_id.as_deref() == Some(id.as_str()));
        by_id && self.filter.as_ref().is_none_or(|f| f.matches(m))
    }

    /// Where this message goes, with a note when the choice needs explaining, or why it
    /// cannot be replayed.
    pub fn destination(
        &self,
        m: &Message,
        log_backend: bool,
        topology: Option<&Topology>,
    ) -> Result<(Destination, Option<String>), String> {
        let death = m.deaths().into_iter().next();
        if let Some(to) = &self.to {
            let rk = |m: &Message| {
                self.routing_key.clone().unwrap_or_else(|| {
                    death
                        .as_ref()
                        .and_then(|d| d.routing_keys.first().cloned())
                        .or_else(|| m.routing_key.clone())
                        .unwrap_or_default()
                })
            };
            let dest = match to {
                ToTarget::Topic(t) => Destination::Topic {
                    topic: t.clone(),
                    partition: None,
                },
                ToTarget::Bare(t) if log_backend => Destination::Topic {
                    topic: t.clone(),
                    partition: None,
                },
                ToTarget::Queue(q) | ToTarget::Bare(q) => Destination::Exchange {
                    exchange: String::new(),
                    routing_key: q.clone(),
                },
                ToTarget::Exchange(x) => Destination::Exchange {
                    exchange: x.clone(),
                    routing_key: rk(m),
                },
            };
            return Ok((dest, None));
        }
        let Some(death) = death else {
            return Err(
                "no dead-letter history (no x-death or Kafka DLT headers): say where with --to"
                    .into(),
            );
        };
        if death.partition.is_some()
            || log_backend
            || death.exchange.is_none() && m.offset.is_some()
        {
            // A Kafka dead letter: back to its original topic.
            return Ok((
                Destination::Topic {
                    topic: death.queue.clone(),
                    partition: if self.keep_partition {
                        death.partition
                    } else {
                        None
                    },
                },
                None,
            ));
        }
        let queue = death.queue.clone();
        let exchange = death.exchange.clone().unwrap_or_default();
        let key = death
            .routing_keys
            .first()
            .cloned()
            .unwrap_or_else(|| queue.clone());
        let straight = Destination::Exchange {
            exchange: String::new(),
            routing_key: queue.clone(),
        };
        if exchange.is_empty() {
            // Published straight to the queue: the default exchange with its name.
            return Ok((straight, None));
        }
        let through = Destination::Exchange {
            exchange: exchange.clone(),
            routing_key: key.clone(),
        };
        match self.via {
            Via::Exchange => Ok((through, None)),
            Via::Queue => Ok((straight, None)),
            Via::Auto => {
                let Some(t) = topology else {
                    return Ok((through, None));
                };
                let mut reached: Vec<String> = Vec::new();
                for k in &death.routing_keys {
                    for q in t.route(&exchange, k, &m.headers) {
                        if !reached.contains(&q) {
                            reached.push(q);
                        }
                    }
                }
                if reached == [queue.clone()] {
                    Ok((through, None))
                } else if reached.is_empty() || !reached.contains(&queue) {
                    Ok((
                        straight,
                        Some(format!(
                            "exchange \"{exchange}\" no longer routes key \"{key}\" to \"{queue}\": sent straight to the queue"
                        )),
                    ))
                } else {
                    Ok((
                        straight,
                        Some(format!(
                            "exchange \"{exchange}\" would also deliver it to {} other queue(s) again: sent straight to \"{queue}\" (use --via exchange to go through the exchange)",
                            reached.len() - 1
                        )),
                    ))
                }
            }
        }
    }
}

/// Decide, for one message, whether and where it goes; None when it stays.
pub(super) fn choose(
    m: &Message,
    key: &str,
    plan: &Plan,
    is_log: bool,
    topology: Option<&Topology>,
    budget: &mut Option<u64>,
    report: &mut Report,
) -> Option<(Destination, Message)> {
    if !plan.selects(m, key) {
        report.not_selected += 1;
        return None;
    }
    if *budget == Some(0) {
        report.not_selected += 1;
        return None;
    }
    let (dest, note) = match plan.destination(m, is_log, topology) {
        Ok(d) => d,
        Err(reason) => {
            report.skipped.push(item(m, key, None, reason));
            return None;
        }
    };
    if let Some(n) = note {
        report.note(n);
    }
    let count = replay_count(m);
    if count >= plan.max_replays && !plan.force {
        report.skipped.push(item(
            m,
            key,
            Some(&dest),
            format!(
                "already replayed {count} time(s), the loop guard's limit (--max-replays {}); it keeps dying: look at why, or --force",
                plan.max_replays
            ),
        ));
        return None;
    }
    if let Some(b) = budget.as_mut() {
        *b -= 1;
    }
    let copy = replayed_copy(m, key, matches!(dest, Destination::Topic { .. }));
    Some((dest, copy))
}
