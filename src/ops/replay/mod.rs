//! Replaying dead letters to where they came from. Backend-neutral: queue brokers go
//! through the `Take` capability (publish the copy with confirms, and only then ack the
//! original), logs through peeks (the dead-letter topic is never modified). A journal
//! written before each step lets an interrupted replay resume with every message either at
//! its origin exactly once or still in the dead-letter queue.
//!
//! Here: the errors, the limits and `replay`, which picks an engine. Where each message goes
//! is `plan.rs`; the two engines are `queue.rs` and `log.rs` (with `outcome.rs`, what they
//! record of each copy, and `advance.rs`, moving a log's group past the replayed records);
//! what an interrupted run left is `resume.rs`; `dry_run.rs` says what a replay would do;
//! `run.rs` is a replay as the command line and the terminal UI both run it (journal,
//! audit line); `report.rs` is what comes back.

mod advance;
mod dry_run;
pub mod filter;
mod log;
mod outcome;
mod plan;
mod queue;
mod report;
mod resume;
mod run;

/// The `--filter` language lives in its own file; `peek` uses it too.
pub use filter::Filter;

pub use crate::model::identity::{
    REPLAY_COUNT, REPLAY_ID, REPLAYED_FROM, is_death_header, message_key, origin_label,
    replay_count,
};
pub use dry_run::dry_run;
pub use outcome::outcome_unknown;
pub use plan::{Plan, ReplayOptions, ToTarget, Via, replayed_copy};
pub use report::{Advanced, Item, Report};
pub use resume::{Resume, check_no_unfinished_replay};
pub use run::{Prepared, abandon, begin_entry, options_from, run, start};
// Purge and delete live in `ops::remove`; their old paths stay for the tests that use them.
pub use crate::ops::remove::{RemovalResume, remove, start_removal};

use advance::check_advance;
use log::replay_log;
use queue::replay_queue;
use resume::settle_in_flight;

use crate::backend::{Backend, BackendError};
use crate::ops::journal::{Entry, Journal, JournalError};
use serde_json::json;
use std::time::Instant;

/// Replays allowed per message before the loop guard refuses (unless forced).
pub const DEFAULT_MAX_REPLAYS: u64 = 3;

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Backend(#[from] BackendError),
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("{0}")]
    Invalid(String),
}

/// How many messages go out together: journalled, published (confirms awaited together),
/// then acked in one go.
pub const BATCH: usize = 1_000;

/// Progress, for the TUI and long CLI runs: messages looked at, of how many.
pub type OnProgress<'a> = &'a (dyn Fn(u64, u64) + Send + Sync);

/// A replay under way, as both engines carry it from batch to batch: the plan, the journal,
/// what an interrupted run left, how many more the limit lets go, the report, and who hears
/// of progress.
struct Replaying<'a> {
    plan: &'a Plan,
    journal: Option<&'a mut Journal>,
    resume: Resume,
    budget: Option<u64>,
    report: Report,
    progress: OnProgress<'a>,
}

/// Replay dead letters from `source`. With `journal` the replay is recorded (and resumable);
/// `resume` carries what an earlier run of it left behind.
pub async fn replay(
    backend: &dyn Backend,
    source: &str,
    plan: &Plan,
    journal: Option<&mut Journal>,
    mut resume: Resume,
    progress: OnProgress<'_>,
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let mut report = Report {
        source: source.to_string(),
        journal: journal.as_ref().map(|j| j.path().display().to_string()),
        ..Report::default()
    };
    let publisher = backend
        .publisher()
        .ok_or_else(|| BackendError::Unsupported {
            what: "publishing (a replay publishes copies)".into(),
            backend: backend.info().kind.as_str(),
        })?;
    let detail = backend.describe_queue(source).await?;
    let is_log = detail.summary.kind.is_log();
    check_advance(backend, plan, is_log)?;
    let topology = match backend.taker() {
        Some(t) if !is_log => t.topology().await.ok(),
        _ => None,
    };
    settle_in_flight(backend, &mut resume, topology.as_ref(), &mut report).await?;
    let budget = plan.limit.map(|l| l.saturating_sub(resume.replayed_before));
    let mut run = Replaying {
        plan,
        journal,
        resume,
        budget,
        report,
        progress,
    };
    if is_log || backend.taker().is_none() {
        replay_log(backend, publisher, &detail, &mut run).await?;
    } else if let Some(taker) = backend.taker() {
        replay_queue(taker, publisher, source, topology.as_ref(), &mut run).await?;
    }
    let Replaying {
        mut journal,
        mut report,
        ..
    } = run;
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    // A stopped replay has no end: `--resume` finds it by that. So has one whose group
    // commit or record deletion failed: a resume replays nothing again and retries that.
    if let (Some(j), None, None) = (journal.as_mut(), &report.stopped, &report.advance_failed) {
        j.append(&Entry::End {
            summary: json!({"replayed": report.replayed, "failed": report.failed.len(), "stopped": report.stopped}),
        })?;
        j.sync()?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests;
