//! Publishing messages: reading a `peek --json` export or backup, checking where a backup is
//! restored, choosing each record's destination, and publishing them with one outcome per
//! line (confirmed, refused, or unknown), recorded in the audit log.

use crate::backend::{BackendError, Destination, Publish, PublishReceipt};
use crate::format::destination::destination_from_json;
use crate::format::record::{RecordError, parse_record};
use crate::model::Message;
use crate::model::destination::destination_text;
use crate::ops::audit::{self, AuditEntry};
use crate::ops::backup::BACKUP_OF;
use crate::ops::journal::JournalError;
use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("reading standard input")]
    Stdin(#[source] std::io::Error),
    #[error("cannot read {path}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} line {line}: not valid UTF-8 (at byte {byte} of the line)")]
    NotUtf8 {
        path: String,
        line: usize,
        byte: usize,
    },
    /// The reason is part of the message and not also its `source()`, as it always was.
    #[error("{path} line {line}: not JSON: {reason}")]
    NotJson {
        path: String,
        line: usize,
        reason: serde_json::Error,
    },
    #[error("{path} line {line}: {reason}")]
    BadRecord {
        path: String,
        line: usize,
        reason: RecordError,
    },
    #[error(
        "{path} is a backup from {from}, and this would publish it to the built-in {target}, which is gone when this command ends: name the broker, e.g. mqscope --url '{from}' publish --from '{path}'"
    )]
    GoneWithCommand {
        path: String,
        from: String,
        target: String,
    },
    #[error(
        "message {0}: it names no exchange or topic; say where with --queue, --exchange or --topic"
    )]
    NoDestination(usize),
    #[error(
        "--property sets AMQP properties, which a topic record does not have; send them as headers (-H NAME=VALUE)"
    )]
    PropertiesOnTopic,
    #[error("--key is a topic record's key; an exchange routes by --routing-key")]
    KeyOnExchange,
}

/// Read a JSON Lines file (or standard input) of messages; any bad line stops everything
/// before a single message is sent.
pub fn read_records(path: &str) -> Result<Records, PublishError> {
    Ok(read_file(path)?.0)
}

/// Brokers a file's backup records were removed from (their `backup_of`).
pub type Sources = std::collections::BTreeSet<String>;

/// A file's messages, each with its line and, for a backup record, where it goes back to.
pub type Records = Vec<(usize, Message, Option<Destination>)>;

/// [`read_records`], and the brokers the backup records in it came from.
pub fn read_file(path: &str) -> Result<(Records, Sources), PublishError> {
    let mut sources = Sources::new();
    let (bytes, shown) = if path == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(PublishError::Stdin)?;
        (b, "standard input")
    } else {
        let b = std::fs::read(path).map_err(|source| PublishError::Read {
            path: path.to_string(),
            source,
        })?;
        (b, path)
    };
    let path = shown;
    let mut out = Vec::new();
    // Checked line by line, so that a byte that is not UTF-8 is found by its line.
    for (i, raw) in bytes.split(|b| *b == b'\n').enumerate() {
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = std::str::from_utf8(raw).map_err(|e| PublishError::NotUtf8 {
            path: path.to_string(),
            line: i + 1,
            byte: e.valid_up_to() + 1,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|reason| PublishError::NotJson {
                path: path.to_string(),
                line: i + 1,
                reason,
            })?;
        let m = parse_record(&v).map_err(|reason| PublishError::BadRecord {
            path: path.to_string(),
            line: i + 1,
            reason,
        })?;
        // Backups name the queue their messages were removed from.
        let restore_to = v.get("restore_to").and_then(destination_from_json);
        if let Some(from) = v.get(BACKUP_OF).and_then(serde_json::Value::as_str)
            && !sources.contains(from)
        {
            sources.insert(from.to_string());
        }
        out.push((i + 1, m, restore_to));
    }
    Ok((out, sources))
}

/// A broker as a backup names it, without the user (the same broker is often reached as
/// another user) and in lower case (host names and `%2F` alike).
fn broker_of(target: &str) -> String {
    let (scheme, rest) = target.split_once("://").unwrap_or(("", target));
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    format!("{scheme}://{rest}").to_lowercase()
}

/// A backup is restored where it came from unless the user says otherwise: restoring to
/// another broker is allowed (the brokers it came from are returned, for the front end to
/// say), and to the in-process demo (where a bare `publish` goes when no target is
/// configured, and which is gone when the command ends) refused.
pub fn check_restore_target<'a>(
    path: &str,
    sources: &'a Sources,
    target: &str,
) -> Result<Vec<&'a String>, PublishError> {
    let elsewhere: Vec<&String> = sources
        .iter()
        .filter(|s| broker_of(s) != broker_of(target))
        .collect();
    let Some(first) = elsewhere.first() else {
        return Ok(elsewhere);
    };
    if target.starts_with("local://") && !first.starts_with("local://") {
        return Err(PublishError::GoneWithCommand {
            path: path.to_string(),
            from: first.to_string(),
            target: target.to_string(),
        });
    }
    Ok(elsewhere)
}

/// Where the messages go, as the user said it; each `None` was not said.
#[derive(Debug, Clone, Default)]
pub struct Routing {
    /// A queue, through the default exchange.
    pub queue: Option<String>,
    pub exchange: Option<String>,
    /// Replaces each record's routing key on an exchange.
    pub routing_key: Option<String>,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    /// A topic record goes to the partition it was read from.
    pub keep_partition: bool,
    /// AMQP properties were set (a topic record has none).
    pub properties: bool,
    /// A topic record's key was set (an exchange routes by routing key instead).
    pub key: bool,
}

/// Where one message goes: the routing asked for, else where the record itself came from.
fn destination_for(
    args: &Routing,
    m: &Message,
    restore_to: Option<&Destination>,
) -> Option<Destination> {
    if let Some(q) = &args.queue {
        return Some(Destination::Exchange {
            exchange: String::new(),
            routing_key: q.clone(),
        });
    }
    // An exchange keeps the record's routing key unless --routing-key replaces it.
    let to_exchange = |x: &String| Destination::Exchange {
        exchange: x.clone(),
        routing_key: args
            .routing_key
            .clone()
            .or_else(|| m.routing_key.clone())
            .unwrap_or_default(),
    };
    if let Some(x) = &args.exchange {
        return Some(to_exchange(x));
    }
    if args.topic.is_none()
        && let Some(d) = restore_to
    {
        return Some(d.clone());
    }
    let partition = |m: &Message| {
        args.partition.or(if args.keep_partition {
            m.partition
        } else {
            None
        })
    };
    if let Some(t) = &args.topic {
        return Some(Destination::Topic {
            topic: t.clone(),
            partition: partition(m),
        });
    }
    if m.partition.is_some() && !m.queue.is_empty() {
        return Some(Destination::Topic {
            topic: m.queue.clone(),
            partition: partition(m),
        });
    }
    m.exchange.as_ref().map(to_exchange)
}

/// One message to publish: its line in the file (or its number), and where it goes.
#[derive(Debug, Clone)]
pub struct Item {
    pub line: usize,
    pub dest: Destination,
    pub message: Message,
}

/// Each record's destination; the first record with none, or with flags its destination
/// cannot carry, stops everything before a single message is sent.
pub fn plan(records: Records, routing: &Routing) -> Result<Vec<Item>, PublishError> {
    let mut items = Vec::with_capacity(records.len());
    for (line, m, restore_to) in records {
        let dest = destination_for(routing, &m, restore_to.as_ref())
            .ok_or(PublishError::NoDestination(line))?;
        match dest {
            Destination::Topic { .. } if routing.properties => {
                return Err(PublishError::PropertiesOnTopic);
            }
            Destination::Exchange { .. } if routing.key => {
                return Err(PublishError::KeyOnExchange);
            }
            _ => {}
        }
        items.push(Item {
            line,
            dest,
            message: m,
        });
    }
    Ok(items)
}

/// What became of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The broker confirmed it.
    Published,
    /// Sent, but its confirm was lost with the channel or the connection: publishing it
    /// again may make a second copy.
    Unknown,
    /// Refused, or never sent.
    Failed,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Published => "published",
            Outcome::Unknown => "unknown",
            Outcome::Failed => "failed",
        }
    }
}

/// One line's result.
#[derive(Debug)]
pub struct LineOutcome {
    pub line: usize,
    pub dest: Destination,
    pub result: Result<PublishReceipt, BackendError>,
}

impl LineOutcome {
    pub fn outcome(&self) -> Outcome {
        match &self.result {
            Ok(_) => Outcome::Published,
            Err(BackendError::Unconfirmed(_)) => Outcome::Unknown,
            Err(_) => Outcome::Failed,
        }
    }
}

/// Every line's outcome, in the order they were given.
#[derive(Debug, Default)]
pub struct PublishReport {
    pub lines: Vec<LineOutcome>,
}

impl PublishReport {
    /// The lines with this outcome.
    pub fn lines_with(&self, outcome: Outcome) -> Vec<usize> {
        self.lines
            .iter()
            .filter(|l| l.outcome() == outcome)
            .map(|l| l.line)
            .collect()
    }

    /// How many the broker confirmed.
    pub fn sent(&self) -> usize {
        self.lines_with(Outcome::Published).len()
    }

    /// "N not published", "N unknown": what went wrong, for the summary and the audit log.
    pub fn problems(&self) -> Vec<String> {
        let failed = self.lines_with(Outcome::Failed).len();
        let unknown = self.lines_with(Outcome::Unknown).len();
        let mut problems = Vec::new();
        if failed > 0 {
            problems.push(format!("{failed} not published"));
        }
        if unknown > 0 {
            problems.push(format!("{unknown} unknown"));
        }
        problems
    }
}

/// Publish every item (pipelined where the backend can), each with its own outcome.
pub async fn publish(publisher: &dyn Publish, items: Vec<Item>) -> PublishReport {
    let mut lines = Vec::with_capacity(items.len());
    let mut batch = Vec::with_capacity(items.len());
    for i in items {
        lines.push((i.line, i.dest.clone()));
        batch.push((i.dest, i.message));
    }
    let results = publisher.publish_batch(&batch).await;
    PublishReport {
        lines: lines
            .into_iter()
            .zip(results)
            .map(|((line, dest), result)| LineOutcome { line, dest, result })
            .collect(),
    }
}

/// Record a publish in the audit log: every place it went, and only what the broker
/// confirmed as its count.
pub fn audit(
    report: &PublishReport,
    broker: &str,
    profile: Option<&str>,
) -> Result<PathBuf, JournalError> {
    let places: std::collections::BTreeSet<String> = report
        .lines
        .iter()
        .map(|l| destination_text(&l.dest))
        .collect();
    let place = places.into_iter().collect::<Vec<_>>().join(", ");
    let mut entry = AuditEntry::new(broker, profile, "publish", &place);
    // Only what the broker confirmed counts.
    entry.count = report.sent() as u64;
    let problems = report.problems();
    entry.result = if problems.is_empty() {
        "ok".into()
    } else {
        problems.join(", ")
    };
    audit::audit(&entry)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(s: &[&str]) -> Sources {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_backup_goes_back_to_its_broker_whoever_reaches_it() {
        let from = sources(&["amqp://ops@Rabbit.example/%2F"]);
        let same = check_restore_target("b.jsonl", &from, "amqp://admin@rabbit.example/%2f");
        assert!(same.unwrap().is_empty());
    }

    #[test]
    fn a_backup_to_another_broker_is_said_and_to_the_demo_refused() {
        let from = sources(&["amqp://rabbit-a/%2F"]);
        let other = check_restore_target("b.jsonl", &from, "amqp://rabbit-b/%2F").unwrap();
        assert_eq!(other, vec!["amqp://rabbit-a/%2F"]);
        let demo = check_restore_target("b.jsonl", &from, "local://demo").unwrap_err();
        assert!(
            matches!(demo, PublishError::GoneWithCommand { .. }),
            "{demo}"
        );
    }
}
