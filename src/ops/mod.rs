//! The operations, free of any front end: options in, a report out, progress by callback.
//! The command line and the terminal UI both call these.

// An operation's input comes from a broker, a file or a user: none of it may panic the
// process. Tests may unwrap (clippy.toml), where a panic is a failed test.
#![deny(clippy::unwrap_used)]

pub mod audit;
pub mod backup;
pub mod journal;
pub mod peek;
pub mod publish;
pub mod record;
pub mod remove;
pub mod replay;
pub mod scan;
pub mod store;
pub mod trace;

/// Count one `key` off `counts`: false when none is left. Resumes use it to settle, one
/// message at a time, what an interrupted run left behind.
pub(crate) fn take_one(counts: &mut std::collections::HashMap<String, u64>, key: &str) -> bool {
    match counts.get_mut(key) {
        Some(n) if *n > 0 => {
            *n -= 1;
            true
        }
        _ => false,
    }
}

/// For `skip_serializing_if`: a report leaves out the counts of things that did not happen.
pub(crate) fn is_zero(n: &u64) -> bool {
    *n == 0
}
