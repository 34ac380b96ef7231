//! Replay and removal journals: written before each step, so that an interrupted replay,
//! purge or delete resumes with no message lost or handled twice.

use crate::ops::store::lines::Lines;
use crate::ops::store::{ensure_dir, file_part, io, state_dir};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Path, PathBuf};

pub use crate::ops::store::{JournalError, unique_id};

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

#[cfg(test)]
mod tests {
    use super::*;

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
