//! Entry point: parse the command line, run the subcommand, turn failures into one line
//! on standard error and an exit code (0 ok, 1 runtime failure, 2 usage).

use clap::Parser;
use mqscope::cli::{Cli, Command};
use std::process::ExitCode;

// Exports and scans allocate a message on librdkafka's reader thread and free it on the
// writer's: glibc's malloc serialises those frees on an arena lock (a fifth of an export's
// CPU time went to malloc, free and that lock), mimalloc does not.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    no_huge_pages();
    let cli = Cli::parse();
    // A subcommand is one task (the command, run by block_on on this thread) that waits on
    // the broker most of the time: a single worker beside it, for lapin's own tasks
    // (heartbeats, channel replies), wakes less than a pool (a peek of 10,000 messages:
    // half the context switches). The worker stays separate from this thread so that a
    // blocking moment here (a yes/no question, a write to a paused pager) never stops
    // the heartbeats, or the broker drops the connection a minute later. The terminal
    // UI keeps the full pool, so that no work on a backend's answer holds up a frame.
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if !matches!(cli.command, Some(Command::Demo(_)) | None) {
        builder.worker_threads(1);
    }
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mqscope: error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(mqscope::cli::run(cli, mqscope::tui::open));
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

/// Keep the kernel from backing mimalloc's memory with transparent huge pages. mimalloc
/// asks for them (madvise), and then each fresh region's first touch faults in and zeroes
/// 2 MiB at once, compacting memory first when it is fragmented: two thirds of a
/// one-message peek's CPU time went there (perf), and its CPU time ranged 8.5-40 ms over
/// five runs, against 12-13 ms without huge pages. A command-line tool's heap of a few
/// tens of megabytes gains nothing from them.
fn no_huge_pages() {
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and reads or writes none of
    // our memory; a failure (an old kernel) leaves things as they were, which is fine.
    unsafe {
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

/// `mqscope peek ... | head` closes our output early; that is not a failure.
fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
