//! Entry point: parse the command line, run the subcommand, turn failures into one line
//! on standard error and an exit code (0 ok, 1 runtime failure, 2 usage).

use clap::Parser;
use mqscope::cli::Cli;
use std::process::ExitCode;

// Exports and scans allocate a message on librdkafka's reader thread and free it on the
// writer's: glibc's malloc serialises those frees on an arena lock (a fifth of an export's
// CPU time went to malloc, free and that lock), mimalloc does not.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqscope: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(mqscope::run::run(cli));
    // Background tasks (a demo simulation, a live tail) end with the runtime, not after it.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("mqscope: error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// `mqscope peek ... | head` closes our output early; that is not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
