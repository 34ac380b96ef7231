//! What mqscope keeps on disk about the changes it makes: replay journals (so an
//! interrupted replay resumes without losing or duplicating a message), backups of removed
//! messages (JSON Lines in the `peek --json` format), and the audit log of every modifying
//! action. All of it lives in the XDG state directory (`$XDG_STATE_HOME/mqscope`, else
//! `~/.local/state/mqscope`; `MQSCOPE_STATE_DIR` overrides both).

use crate::backend::Destination;
use crate::export::{message_record, rfc3339};
use crate::model::Message;
use crate::trace::Extractor;
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("no state directory: set XDG_STATE_HOME or HOME (or MQSCOPE_STATE_DIR)")]
    NoStateDir,
    /// The OS error is part of the message and not also its `source()`: a chain printed
    /// in full (`{:#}`) would otherwise say it twice.
    #[error("{path}: {error}")]
    Io { path: String, error: std::io::Error },
    #[error("{path} line {line}: {reason}")]
    Bad {
        path: String,
        line: usize,
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |error| JournalError::Io {
        path: path.display().to_string(),
        error,
    }
}

/// The directory mqscope keeps its journals, backups and audit log in.
pub fn state_dir() -> Result<PathBuf, JournalError> {
    if let Some(dir) = std::env::var_os("MQSCOPE_STATE_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .map(|d| d.join("mqscope"))
        .ok_or(JournalError::NoStateDir)
}

fn ensure_dir(dir: &Path) -> Result<(), JournalError> {
    std::fs::create_dir_all(dir).map_err(io(dir))
}

/// A name safe as a file name part: queue names may hold `/`, spaces and anything else.
pub fn file_part(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || c == '-' || c == '_' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .take(80)
        .collect();
    if s.is_empty() || s.starts_with('.') {
        format!("q{s}")
    } else {
        s
    }
}

/// A timestamp for file names and ids: sortable, no colons.
pub fn stamp() -> String {
    Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string()
}

/// An id no other operation shares: the time, this process, and a count within it (two
/// operations of one process can start in the same millisecond).
pub fn unique_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("{}-{}-{n}", stamp(), std::process::id())
}

/// A destination as JSON, for journals and reports.
pub fn destination_json(d: &Destination) -> Value {
    match d {
        Destination::Exchange {
            exchange,
            routing_key,
        } => serde_json::json!({"exchange": exchange, "routing_key": routing_key}),
        Destination::Topic { topic, partition } => {
            serde_json::json!({"topic": topic, "partition": partition})
        }
    }
}

/// Read a destination back from [`destination_json`].
pub fn destination_from_json(v: &Value) -> Option<Destination> {
    if let Some(topic) = v.get("topic").and_then(Value::as_str) {
        let partition = v
            .get("partition")
            .and_then(Value::as_i64)
            .and_then(|p| i32::try_from(p).ok());
        return Some(Destination::Topic {
            topic: topic.to_string(),
            partition,
        });
    }
    Some(Destination::Exchange {
        exchange: v.get("exchange")?.as_str()?.to_string(),
        routing_key: v.get("routing_key")?.as_str()?.to_string(),
    })
}

/// A destination for people: `exchange "orders" → order.created`, `queue billing`, `topic t`.
pub fn destination_text(d: &Destination) -> String {
    match d {
        Destination::Exchange {
            exchange,
            routing_key,
        } if exchange.is_empty() => format!("queue {routing_key}"),
        Destination::Exchange {
            exchange,
            routing_key,
        } => format!("exchange {exchange} (key {routing_key})"),
        Destination::Topic {
            topic,
            partition: Some(p),
        } => format!("topic {topic} partition {p}"),
        Destination::Topic { topic, .. } => format!("topic {topic}"),
    }
}

/// One line of a replay journal.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Entry {
    /// The replay and everything needed to run it again.
    Begin {
        id: String,
        time: String,
        target: String,
        source: String,
        options: Value,
    },
    /// About to publish a copy of this message: written (and synced) before it is touched.
    Take {
        key: String,
        position: u64,
        dest: Value,
        record: Value,
    },
    /// The broker confirmed the copy.
    Confirmed {
        key: String,
    },
    /// The copy was refused; the original stays where it is.
    Failed {
        key: String,
        error: String,
    },
    /// The originals were removed from the dead-letter queue.
    Acked {
        keys: Vec<String>,
    },
    /// Found at its destination after an interruption: not published again.
    Found {
        key: String,
    },
    End {
        summary: Value,
    },
}

/// An append-only JSON Lines journal.
pub struct Journal {
    path: PathBuf,
    out: BufWriter<File>,
}

impl Journal {
    /// Start a new journal in `<state>/replays/`.
    pub fn create(id: &str) -> Result<Self, JournalError> {
        let dir = state_dir()?.join("replays");
        ensure_dir(&dir)?;
        let path = dir.join(format!("{}.jsonl", file_part(id)));
        Self::open(&path)
    }

    /// Open an existing journal to append to it (a resumed replay).
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(path))?;
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn append(&mut self, e: &Entry) -> Result<(), JournalError> {
        let line = serde_json::to_string(e).map_err(|e| JournalError::Bad {
            path: self.path.display().to_string(),
            line: 0,
            reason: e.to_string(),
        })?;
        self.out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(io(&self.path))
    }

    /// Everything appended so far is on disk when this returns.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.out.flush().map_err(io(&self.path))?;
        self.out.get_ref().sync_data().map_err(io(&self.path))
    }
}

/// Read a journal. A last line cut short (the process was killed while writing it) is
/// ignored; any other bad line is an error.
pub fn load(path: &Path) -> Result<Vec<Entry>, JournalError> {
    let text = std::fs::read_to_string(path).map_err(io(path))?;
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Entry>(line) {
            Ok(e) => out.push(e),
            Err(_) if i + 1 == lines.len() && !text.ends_with('\n') => break,
            Err(e) => {
                return Err(JournalError::Bad {
                    path: path.display().to_string(),
                    line: i + 1,
                    reason: e.to_string(),
                });
            }
        }
    }
    Ok(out)
}

/// Journals in the state directory that never reached their `end`, newest first, with
/// their `begin` entry.
pub fn unfinished() -> Result<Vec<(PathBuf, Entry)>, JournalError> {
    let dir = state_dir()?.join("replays");
    let Ok(read) = std::fs::read_dir(&dir) else {
        return Ok(Vec::new());
    };
    let mut paths: Vec<PathBuf> = read
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    paths.reverse();
    let mut out = Vec::new();
    for p in paths {
        let Ok(entries) = load(&p) else { continue };
        let finished = entries.iter().any(|e| matches!(e, Entry::End { .. }));
        if let (false, Some(begin @ Entry::Begin { .. })) = (finished, entries.first()) {
            out.push((p, begin.clone()));
        }
    }
    Ok(out)
}

/// A backup file of removed messages, one `peek --json` record per line, each with a
/// `restore_to` naming the queue it was removed from so `publish --from` puts it back there.
pub struct Backup {
    path: PathBuf,
    out: BufWriter<File>,
    extractor: Extractor,
    pub written: u64,
}

impl Backup {
    /// A new backup file: `path`, or `<state>/backups/<queue>-<time>.jsonl`.
    pub fn create(queue: &str, path: Option<&Path>) -> Result<Self, JournalError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let dir = state_dir()?.join("backups");
                ensure_dir(&dir)?;
                dir.join(format!("{}-{}.jsonl", file_part(queue), unique_id()))
            }
        };
        let file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .open(&path)
            .map_err(io(&path))?;
        Ok(Self {
            path,
            out: BufWriter::with_capacity(1 << 16, file),
            extractor: Extractor::default(),
            written: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn write(&mut self, m: &Message, restore_to: &Destination) -> Result<(), JournalError> {
        let mut rec = message_record(m, &self.extractor);
        if let Value::Object(o) = &mut rec {
            o.insert("restore_to".into(), destination_json(restore_to));
        }
        let line = rec.to_string();
        self.out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"))
            .map_err(io(&self.path))?;
        self.written += 1;
        Ok(())
    }

    /// Everything written so far is on disk when this returns.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.out.flush().map_err(io(&self.path))?;
        self.out.get_ref().sync_data().map_err(io(&self.path))
    }
}

/// One modifying action, for the audit log.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry<'a> {
    pub time: String,
    pub user: String,
    pub profile: Option<&'a str>,
    pub broker: &'a str,
    pub action: &'a str,
    pub queue: &'a str,
    pub count: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub journal: Option<String>,
    pub result: String,
}

/// Who runs mqscope, for the audit log: `$USER`, `$LOGNAME`, else the user id's name in
/// /etc/passwd (a container or a cron job often sets neither), else `uid N`.
fn current_user() -> String {
    if let Some(u) = ["USER", "LOGNAME"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|u| !u.is_empty())
    {
        return u;
    }
    let uid = std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .ok();
    let Some(uid) = uid else {
        return "unknown".into();
    };
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&uid.to_string().as_str())).then(|| f[0].to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"))
}

impl<'a> AuditEntry<'a> {
    pub fn new(broker: &'a str, profile: Option<&'a str>, action: &'a str, queue: &'a str) -> Self {
        Self {
            time: rfc3339(&Utc::now()),
            user: current_user(),
            profile,
            broker,
            action,
            queue,
            count: 0,
            backup: None,
            journal: None,
            result: String::new(),
        }
    }
}

/// Append one line to `<state>/audit.jsonl` and sync it.
pub fn audit(entry: &AuditEntry<'_>) -> Result<PathBuf, JournalError> {
    let dir = state_dir()?;
    ensure_dir(&dir)?;
    let path = dir.join("audit.jsonl");
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .map_err(io(&path))?;
    let line = serde_json::to_string(entry).unwrap_or_default();
    f.write_all(format!("{line}\n").as_bytes())
        .and_then(|_| f.sync_data())
        .map_err(io(&path))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_parts_are_safe() {
        assert_eq!(file_part("billing.dlq"), "billing.dlq");
        assert_eq!(file_part("a/b c"), "a_b_c");
        assert_eq!(file_part(".."), "q..");
        assert_eq!(file_part(""), "q");
        assert_eq!(file_part("ünï"), "ünï");
    }

    #[test]
    fn destinations_round_trip() {
        for d in [
            Destination::Exchange {
                exchange: "orders".into(),
                routing_key: "order.created".into(),
            },
            Destination::Topic {
                topic: "t".into(),
                partition: Some(3),
            },
            Destination::Topic {
                topic: "t".into(),
                partition: None,
            },
        ] {
            assert_eq!(destination_from_json(&destination_json(&d)), Some(d));
        }
    }

    #[test]
    fn a_cut_last_line_is_ignored_but_not_a_bad_middle_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("j.jsonl");
        let good = serde_json::to_string(&Entry::Confirmed { key: "k".into() }).unwrap();
        std::fs::write(&p, format!("{good}\n{good}\n{{\"t\":\"conf")).unwrap();
        assert_eq!(load(&p).unwrap().len(), 2);
        std::fs::write(&p, format!("{good}\nnot json\n{good}\n")).unwrap();
        let e = load(&p).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
