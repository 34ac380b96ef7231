//! The state directory, where mqscope keeps what it writes about the changes it makes
//! (replay and removal journals, backups, the audit log): `$XDG_STATE_HOME/mqscope`, else
//! `~/.local/state/mqscope`; `MQSCOPE_STATE_DIR` overrides both. Also the names of the files
//! in it, and the error every one of them reports.

pub mod lines;

use chrono::Utc;
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

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
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

pub(crate) fn ensure_dir(dir: &Path) -> Result<(), JournalError> {
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
}
