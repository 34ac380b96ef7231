//! The command line: clap arguments, one function per subcommand, human and JSON output.

mod args;
pub mod modify;
pub mod output;
pub mod run;

pub use args::*;
pub use run::run;
