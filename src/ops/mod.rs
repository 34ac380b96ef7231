//! The operations, free of any front end: options in, a report out, progress by callback.
//! The command line and the terminal UI both call these.

pub mod filter;
pub mod journal;
pub mod peek;
pub mod publish;
pub mod replay;
pub mod scan;
pub mod trace;
