//! A replay without touching anything: the safe peek, and the plan applied to what it reads.

use super::advance::check_advance;
use super::plan::{Plan, choose};
use super::report::{Report, group};
use super::{ReplayError, message_key};
use crate::backend::{Backend, BackendError};
use crate::ops::scan::{ScanOptions, read_all};
use std::time::Instant;

/// The plan without touching anything: read the dead letters through the safe peek and
/// say, per destination, how many would go, and which would be skipped and why.
pub async fn dry_run(
    backend: &dyn Backend,
    source: &str,
    plan: &Plan,
) -> Result<Report, ReplayError> {
    let started = Instant::now();
    let mut report = Report {
        source: source.to_string(),
        dry_run: true,
        ..Report::default()
    };
    let detail = backend.describe_queue(source).await?;
    let is_log = detail.summary.kind.is_log();
    check_advance(backend, plan, is_log)?;
    if let Some(group) = &plan.commit_group {
        report.note(format!(
            "would then commit group \"{group}\" past the records replayed, per partition up to the first that is not"
        ));
    }
    if plan.delete_records {
        report.note(
            "would then delete the records replayed, per partition up to the first that is not"
                .to_string(),
        );
    }
    let topology = match backend.taker() {
        Some(t) if !is_log => t.topology().await.ok(),
        _ => None,
    };
    let mut budget = plan.limit;
    let mut notes = Vec::new();
    let scan = ScanOptions {
        force: plan.force,
        ..ScanOptions::default()
    };
    read_all(
        backend,
        &detail,
        &scan,
        |page| {
            for m in page {
                report.scanned += 1;
                let key = message_key(m);
                if let Some((dest, _)) = choose(
                    m,
                    &key,
                    plan,
                    is_log,
                    topology.as_ref(),
                    &mut budget,
                    &mut report,
                ) {
                    report.replayed += 1;
                    *report.destinations.entry(group(&dest)).or_default() += 1;
                }
            }
            Ok::<(), BackendError>(())
        },
        |n| notes.push(n.to_string()),
    )
    .await?;
    for n in notes {
        report.note(n);
    }
    report.elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    Ok(report)
}
