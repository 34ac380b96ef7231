//! Logs, when asked: after a replay, commit a consumer group past the records replayed or
//! delete them, but never past the first record that was not replayed.

use super::ReplayError;
use super::plan::Plan;
use super::report::{Advanced, Report};
use crate::backend::{Backend, BackendError};
use std::collections::BTreeMap;

/// `--commit-group` and `--delete-records` are for logs whose backend can do them.
pub(super) fn check_advance(
    backend: &dyn Backend,
    plan: &Plan,
    is_log: bool,
) -> Result<(), ReplayError> {
    if plan.commit_group.is_none() && !plan.delete_records {
        return Ok(());
    }
    if !is_log {
        return Err(ReplayError::Invalid(
            "--commit-group and --delete-records are for topics; a queue's replayed messages are removed from it anyway".into(),
        ));
    }
    if backend.advancer().is_none() {
        return Err(BackendError::Unsupported {
            what: "committing groups or deleting records".into(),
            backend: backend.info().kind.as_str(),
        }
        .into());
    }
    Ok(())
}

/// Per partition of a log: the offset after the last record of the unbroken run of replayed
/// records from the first one read, and whether that run is still unbroken. Only that far
/// may a group be committed or records deleted: past it lies a record that was not replayed.
#[derive(Debug, Default)]
pub(super) struct Runs(BTreeMap<i32, (Option<i64>, bool)>);

impl Runs {
    pub(super) fn record(&mut self, partition: Option<i32>, offset: Option<i64>, replayed: bool) {
        let (Some(p), Some(o)) = (partition, offset) else {
            return;
        };
        let (upto, open) = self.0.entry(p).or_insert((None, true));
        if !*open {
            return;
        }
        if replayed {
            *upto = Some(o.saturating_add(1));
        } else {
            *open = false;
        }
    }

    fn upto(&self) -> Vec<(i32, i64)> {
        self.0
            .iter()
            .filter_map(|(p, (upto, _))| upto.map(|u| (*p, u)))
            .collect()
    }
}

/// After a log's replay, when asked: commit the group and delete records up to `runs`.
/// A failure is reported; the replayed copies stand either way.
pub(super) async fn advance(
    backend: &dyn Backend,
    name: &str,
    plan: &Plan,
    runs: &Runs,
    report: &mut Report,
) {
    let Some(advancer) = backend.advancer() else {
        return;
    };
    let upto = runs.upto();
    if upto.is_empty() {
        if plan.commit_group.is_some() || plan.delete_records {
            report.note(format!(
                "no record of \"{name}\" was replayed from the start of its partition: no group committed, no record deleted"
            ));
        }
        return;
    }
    if let Some(group) = &plan.commit_group {
        match advancer.commit_group(name, group, &upto).await {
            Ok(moved) => {
                report.note(format!(
                    "group \"{group}\" committed past the replayed records of \"{name}\" on {} partition(s)",
                    moved.len()
                ));
                if !moved.is_empty() && moved.iter().all(|(_, from, _)| from.is_none()) {
                    report.note(format!(
                        "group \"{group}\" had no committed offset on \"{name}\" before: if that is not the group that reads it, check the name"
                    ));
                }
                report
                    .advanced
                    .extend(moved.into_iter().map(|(partition, from, to)| Advanced {
                        partition,
                        action: "commit",
                        from,
                        to,
                    }));
            }
            Err(e) => {
                report.advance_failed = Some(e.to_string());
                return;
            }
        }
    }
    if plan.delete_records {
        match advancer.delete_records(name, &upto).await {
            Ok(()) => report
                .advanced
                .extend(upto.iter().map(|(partition, to)| Advanced {
                    partition: *partition,
                    action: "delete",
                    from: None,
                    to: *to,
                })),
            Err(e) => report.advance_failed = Some(e.to_string()),
        }
    }
}
