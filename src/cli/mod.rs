//! The command line: clap arguments, one file per subcommand group, human and JSON output.
//! `dispatch` connects and hands each subcommand to its file; the work itself is in `ops`.

mod args;
mod browse;
mod demo;
mod dispatch;
mod guard;
pub mod modify;
pub mod output;
mod peek;
mod publish;
mod record;
mod trace;
pub mod validate;

pub use args::*;
pub use dispatch::{OpenTui, run};
