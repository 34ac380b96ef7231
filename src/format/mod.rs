//! Formats that outlive a process: the JSON Lines record of one message (peek --json,
//! backups, journals) and the text helpers that make payloads safe to show.

pub mod destination;
pub mod record;
pub mod text;
