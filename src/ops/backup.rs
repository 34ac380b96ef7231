//! Backups of removed messages: one `peek --json` record per line, each saying where it
//! goes back to and which broker it came from.

use crate::format::destination::destination_json;
use crate::format::record::message_record;
use crate::model::Message;
use crate::model::correlation::Extractor;
use crate::model::destination::Destination;
use crate::ops::store::lines::Lines;
use crate::ops::store::{JournalError, ensure_dir, file_part, io, state_dir, unique_id};
use serde_json::Value;
use std::path::Path;

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
