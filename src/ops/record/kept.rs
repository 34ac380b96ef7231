//! The journeys a backend kept itself (the built-in demo keeps its history of events): put
//! in a database of their own for one trace that has none, so the demo's traces show copies
//! consumed before mqscope looked, as if a recorder had been running all along.

use super::run::{RecordOptions, record_kept};
use super::store::{Store, StoreError};
use crate::backend::Backend;
use std::path::{Path, PathBuf};

/// The start of each database directory's name, before the owner's process id.
const PREFIX: &str = "mqscope-kept-";

/// A database of the events a backend kept, under the temporary directory; deleted when
/// dropped.
pub struct KeptDb {
    dir: PathBuf,
}

impl KeptDb {
    /// The events `backend` kept, stored in a new database; None when it kept none (every
    /// real broker).
    pub fn make(backend: &dyn Backend) -> Result<Option<KeptDb>, StoreError> {
        if backend.live_tail().is_none_or(|l| l.kept().is_empty()) {
            return Ok(None);
        }
        let tmp = std::env::temp_dir();
        sweep_stale(&tmp);
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let dir = tmp.join(format!("{PREFIX}{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| StoreError::Other {
            path: dir.display().to_string(),
            reason: e.to_string(),
        })?;
        let db = KeptDb { dir };
        let mut store = Store::open(&db.path())?;
        record_kept(backend, &mut store, &RecordOptions::default())?;
        Ok(Some(db))
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join("journeys.db")
    }
}

impl Drop for KeptDb {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Remove the databases of processes that are gone without dropping theirs (killed, or
/// stopped by a signal in the middle of a trace). Where there is no `/proc` to tell which
/// processes run, nothing is removed.
fn sweep_stale(tmp: &Path) {
    let proc = Path::new("/proc");
    if !proc.join("self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if !proc.join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn databases_of_processes_that_are_gone_are_swept() {
        let tmp = tempfile::tempdir().expect("temp dir");
        let gone = tmp.path().join(format!("{PREFIX}4294967294-1"));
        let alive = tmp.path().join(format!("{PREFIX}{}-1", std::process::id()));
        let other = tmp.path().join("mqscope-kept-notes");
        for d in [&gone, &alive, &other] {
            std::fs::create_dir_all(d).expect("dir");
            std::fs::write(d.join("journeys.db"), b"x").expect("file");
        }
        sweep_stale(tmp.path());
        assert!(!gone.exists(), "a dead process's database is removed");
        assert!(alive.exists(), "a running process's is kept");
        assert!(other.exists(), "a name that is not ours is left alone");
    }
}
