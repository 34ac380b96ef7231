//! The journeys a backend kept itself (the built-in demo keeps its history of events): put
//! in a database of their own for one trace that has none, so the demo's traces show copies
//! consumed before mqscope looked, as if a recorder had been running all along.

use super::run::{RecordOptions, record_kept};
use super::store::{Store, StoreError};
use crate::backend::Backend;
use std::path::PathBuf;

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
        let nanos = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let dir = std::env::temp_dir().join(format!("mqscope-kept-{}-{nanos}", std::process::id()));
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
