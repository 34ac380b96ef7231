//! What the unit tests beside the code share (built for tests only).

use std::path::{Path, PathBuf};

/// Write `contents` to the file `name` in `dir`; its path.
pub fn written(dir: &Path, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}

/// A test's instant: `s` seconds after the epoch.
pub fn at(s: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(s, 0)
        .unwrap_or_else(|| panic!("{s} s is outside chrono's range"))
}
