//! Formats that outlive a process: the JSON Lines record of one message (peek --json,
//! backups, journals), the payload decoders (what is inside a body) and the text helpers
//! that make payloads safe to show.

pub mod decode;
pub mod destination;
pub mod record;
pub mod text;
