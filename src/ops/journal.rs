//! What mqscope keeps on disk about the changes it makes: replay journals (so an
//! interrupted replay resumes without losing or duplicating a message), backups of removed
//! messages (JSON Lines in the `peek --json` format), and the audit log of every modifying
//! action. All of it lives in the XDG state directory (`$XDG_STATE_HOME/mqscope`, else
//! `~/.local/state/mqscope`; `MQSCOPE_STATE_DIR` overrides both).

use crate::backend::Destination;
use crate::format::record::message_record;
use crate::model::Message;
use crate::model::correlation::Extractor;
use crate::model::time::rfc3339;
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
    #[error("{path}: not written since an earlier write failed ({reason})")]
    Stopped { path: String, reason: String },
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

/// A word for a command line mqscope prints (a queue, a journal, a backup, a URL): quoted
/// so that spaces, quotes and `$` read back unchanged when the line is pasted into a shell.
pub fn shell_word(word: &str) -> String {
    format!("'{}'", word.replace('\'', "'\\''"))
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

/// An append-only JSON Lines file that stays whole: a write or sync that fails (a full
/// disk) takes back everything since the last successful sync, so the file always ends
/// with a complete line, and a file that was cut mid-line (a crash) loses that fragment
/// before anything is appended after it, where it would become a broken middle line.
struct Lines {
    path: PathBuf,
    out: BufWriter<File>,
    /// Bytes appended, buffered or not.
    written: u64,
    /// Bytes known to be on disk.
    synced: u64,
}

impl Lines {
    fn open(path: &Path, create_new: bool) -> Result<Self, JournalError> {
        let mut opts = OpenOptions::new();
        if create_new {
            opts.create_new(true);
        } else {
            opts.create(true);
        }
        let file = opts.append(true).read(true).open(path).map_err(io(path))?;
        let whole = whole_length(&file).map_err(io(path))?;
        if whole < file.metadata().map_err(io(path))?.len() {
            file.set_len(whole).map_err(io(path))?;
        }
        Ok(Self {
            path: path.to_path_buf(),
            out: BufWriter::with_capacity(1 << 16, file),
            written: whole,
            synced: whole,
        })
    }

    fn line(&mut self, line: &str) -> Result<(), JournalError> {
        let r = self
            .out
            .write_all(line.as_bytes())
            .and_then(|_| self.out.write_all(b"\n"));
        match r {
            Ok(()) => {
                self.written += line.len() as u64 + 1;
                Ok(())
            }
            Err(e) => Err(self.undo(e)),
        }
    }

    fn sync(&mut self) -> Result<(), JournalError> {
        match self
            .out
            .flush()
            .and_then(|_| self.out.get_ref().sync_data())
        {
            Ok(()) => {
                self.synced = self.written;
                Ok(())
            }
            Err(e) => Err(self.undo(e)),
        }
    }

    /// Drop what was not synced, buffered or written, and report `e`.
    fn undo(&mut self, e: std::io::Error) -> JournalError {
        let err = io(&self.path)(e);
        let Ok(file) = self.out.get_ref().try_clone() else {
            return err;
        };
        // Shrinking a file needs no free space, so this works on the full disk that
        // made the write fail.
        if file.set_len(self.synced).is_err() {
            return err;
        }
        let old = std::mem::replace(&mut self.out, BufWriter::with_capacity(1 << 16, file));
        // Not flushed: its buffer held exactly what is being taken back.
        let _ = old.into_parts();
        self.written = self.synced;
        err
    }
}

/// The length of a file up to and including its last newline.
fn whole_length(file: &File) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    let mut f = file;
    let mut end = len;
    let mut buf = [0u8; 4096];
    while end > 0 {
        let start = end.saturating_sub(buf.len() as u64);
        let n = usize::try_from(end - start).unwrap_or(buf.len());
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..n])?;
        if let Some(i) = buf[..n].iter().rposition(|&b| b == b'\n') {
            return Ok(start + i as u64 + 1);
        }
        end = start;
    }
    Ok(0)
}

/// An append-only JSON Lines journal. Once a write fails it takes no more: a later line
/// that did fit would stand after a gap, and say something the missing lines contradict.
pub struct Journal {
    lines: Lines,
    failed: Option<String>,
}

impl Journal {
    /// Start a new replay journal in `<state>/replays/`.
    pub fn create(id: &str) -> Result<Self, JournalError> {
        Self::create_in(REPLAYS, id)
    }

    /// Start a new purge or delete journal in `<state>/removals/`.
    pub fn create_removal(id: &str) -> Result<Self, JournalError> {
        Self::create_in(REMOVALS, id)
    }

    fn create_in(kind: &str, id: &str) -> Result<Self, JournalError> {
        let dir = state_dir()?.join(kind);
        ensure_dir(&dir)?;
        let path = dir.join(format!("{}.jsonl", file_part(id)));
        Self::open(&path)
    }

    /// Open an existing journal to append to it (a resumed replay).
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        Ok(Self {
            lines: Lines::open(path, false)?,
            failed: None,
        })
    }

    /// Whether a write failed: the journal ends at the last sync before it.
    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    fn check<T>(&mut self, r: Result<T, JournalError>) -> Result<T, JournalError> {
        if let Err(e) = &r {
            self.failed.get_or_insert_with(|| e.to_string());
        }
        r
    }

    fn refuse_after_failure(&self) -> Result<(), JournalError> {
        match &self.failed {
            Some(reason) => Err(JournalError::Stopped {
                path: self.lines.path.display().to_string(),
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    pub fn path(&self) -> &Path {
        &self.lines.path
    }

    pub fn append(&mut self, e: &Entry) -> Result<(), JournalError> {
        let line = serde_json::to_string(e).map_err(|e| JournalError::Bad {
            path: self.lines.path.display().to_string(),
            line: 0,
            reason: e.to_string(),
        })?;
        self.refuse_after_failure()?;
        let r = self.lines.line(&line);
        self.check(r)
    }

    /// Everything appended so far is on disk when this returns. When it fails, the
    /// journal is cut back to where the last successful sync left it.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        self.refuse_after_failure()?;
        let r = self.lines.sync();
        self.check(r)
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

/// Where replay journals are kept, below the state directory.
const REPLAYS: &str = "replays";
/// Where purge and delete journals are kept.
const REMOVALS: &str = "removals";

/// Replay journals in the state directory that never reached their `end`, newest first,
/// with their `begin` entry.
pub fn unfinished() -> Result<Vec<(PathBuf, Entry)>, JournalError> {
    unfinished_in(REPLAYS)
}

/// Purge and delete journals that never reached their `end`, newest first.
pub fn unfinished_removals() -> Result<Vec<(PathBuf, Entry)>, JournalError> {
    unfinished_in(REMOVALS)
}

fn unfinished_in(kind: &str) -> Result<Vec<(PathBuf, Entry)>, JournalError> {
    let dir = state_dir()?.join(kind);
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

/// The unfinished replays of `source` on `target`, newest first.
pub fn unfinished_of(target: &str, source: &str) -> Result<Vec<PathBuf>, JournalError> {
    Ok(of(unfinished()?, target, source)
        .into_iter()
        .map(|(p, _)| p)
        .collect())
}

/// The unfinished purges and deletes of `queue` on `target`, newest first, with their begin.
pub fn unfinished_removals_of(
    target: &str,
    queue: &str,
) -> Result<Vec<(PathBuf, Entry)>, JournalError> {
    Ok(of(unfinished_removals()?, target, queue))
}

fn of(journals: Vec<(PathBuf, Entry)>, target: &str, source: &str) -> Vec<(PathBuf, Entry)> {
    journals
        .into_iter()
        .filter(|(_, b)| {
            matches!(b, Entry::Begin { source: s, target: t, .. } if s == source && t == target)
        })
        .collect()
}

/// Give up an unfinished journal: renamed (which needs no free space) so that it is no
/// longer found as unfinished, and kept for reading. Returns the new path.
pub fn abandon(path: &Path) -> Result<PathBuf, JournalError> {
    let mut name = path.as_os_str().to_owned();
    name.push(".abandoned");
    let to = PathBuf::from(name);
    std::fs::rename(path, &to).map_err(io(path))?;
    Ok(to)
}

/// A backup file of removed messages, one `peek --json` record per line, each with a
/// `restore_to` naming the queue it was removed from so `publish --from` puts it back there,
/// and a `backup_of` naming the broker (without its password), so that a restore aimed at
/// another broker is noticed.
pub struct Backup {
    lines: Lines,
    extractor: Extractor,
    broker: String,
    /// Records on disk (synced).
    pub written: u64,
    pending: u64,
}

impl Backup {
    /// A new backup file of messages from `broker`: `path`, or
    /// `<state>/backups/<queue>-<time>.jsonl`.
    pub fn create(queue: &str, broker: &str, path: Option<&Path>) -> Result<Self, JournalError> {
        let path = match path {
            Some(p) => p.to_path_buf(),
            None => {
                let dir = state_dir()?.join("backups");
                ensure_dir(&dir)?;
                dir.join(format!("{}-{}.jsonl", file_part(queue), unique_id()))
            }
        };
        Ok(Self {
            lines: Lines::open(&path, true)?,
            extractor: Extractor::default(),
            broker: broker.to_string(),
            written: 0,
            pending: 0,
        })
    }

    /// An existing backup, to append to (a resumed purge or delete).
    pub fn open(path: &Path, broker: &str) -> Result<Self, JournalError> {
        let written = backup_keys(path)?.len() as u64;
        Ok(Self {
            lines: Lines::open(path, false)?,
            extractor: Extractor::default(),
            broker: broker.to_string(),
            written,
            pending: 0,
        })
    }

    pub fn path(&self) -> &Path {
        &self.lines.path
    }

    pub fn write(&mut self, m: &Message, restore_to: &Destination) -> Result<(), JournalError> {
        let mut rec = message_record(m, &self.extractor);
        if let Value::Object(o) = &mut rec {
            o.insert("restore_to".into(), destination_json(restore_to));
            o.insert(BACKUP_OF.into(), Value::String(self.broker.clone()));
        }
        match self.lines.line(&rec.to_string()) {
            Ok(()) => {
                self.pending += 1;
                Ok(())
            }
            Err(e) => {
                self.pending = 0;
                Err(e)
            }
        }
    }

    /// Everything written so far is on disk when this returns. When it fails, the file is
    /// cut back to the records synced before, so it never holds a record whose message
    /// was not removed, nor half a line.
    pub fn sync(&mut self) -> Result<(), JournalError> {
        let r = self.lines.sync();
        if r.is_ok() {
            self.written += self.pending;
        }
        self.pending = 0;
        r
    }
}

/// The fingerprint and message id of each whole record in a backup (a last line cut
/// short by a crash is not a record).
pub fn backup_keys(path: &Path) -> Result<Vec<(String, Option<String>)>, JournalError> {
    let text = std::fs::read(path).map_err(io(path))?;
    let whole = text.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
    let mut out = Vec::new();
    for (i, line) in text[..whole].split(|&b| b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let bad = |reason: String| JournalError::Bad {
            path: path.display().to_string(),
            line: i + 1,
            reason,
        };
        let v: Value = serde_json::from_slice(line).map_err(|e| bad(e.to_string()))?;
        let key = v
            .get("fingerprint")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("no fingerprint".into()))?;
        let id = v.get("message_id").and_then(Value::as_str);
        out.push((key.to_string(), id.map(str::to_string)));
    }
    Ok(out)
}

/// The field of a backup record that names the broker its message was removed from.
pub const BACKUP_OF: &str = "backup_of";

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
