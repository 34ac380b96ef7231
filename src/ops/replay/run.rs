//! A replay as both front ends run it: what to replay (a new one, or an interrupted one
//! found by its journal), its journal started (refused while an earlier replay of the same
//! queue is unfinished), the run, and its line in the audit log. Also `--abandon`.

use super::OnProgress;
use super::{Plan, ReplayError, ReplayOptions, Report, Resume, check_no_unfinished_replay};
use crate::backend::Backend;
use crate::ops::audit::{self, Audited};
use crate::ops::journal::{self, Entry, Journal};
use crate::ops::store::unique_id;
use serde_json::Value;
use std::path::{Path, PathBuf};

/// A replay before anything is written: its queue, its options and their plan, and the
/// journal of the interrupted run it finishes, if it does.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub source: String,
    pub opts: ReplayOptions,
    pub plan: Plan,
    pub resuming: Option<PathBuf>,
}

impl Prepared {
    /// A new replay of `source`.
    pub fn new(source: &str, opts: ReplayOptions) -> Result<Self, ReplayError> {
        Ok(Self {
            source: source.to_string(),
            plan: opts.plan()?,
            opts,
            resuming: None,
        })
    }

    /// Read bodies with `decoder` for the filter's `body./…` and `key./…` conditions.
    pub fn decoding(mut self, decoder: std::sync::Arc<crate::format::decode::Decoder>) -> Self {
        self.plan.filter = self.plan.filter.map(|f| f.decoding(decoder));
        self
    }

    /// An unfinished replay on `target`, to resume: the journal at `which`, or (when
    /// `which` is empty) the newest unfinished one, of `queue` if given.
    pub fn resume(target: &str, which: &str, queue: Option<&str>) -> Result<Self, ReplayError> {
        let (path, begin) = if which.is_empty() {
            journal::unfinished()?
                .into_iter()
                .find(|(_, b)| match (b, queue) {
                    (Entry::Begin { source, .. }, Some(q)) => source == q,
                    _ => true,
                })
                .ok_or_else(|| {
                    ReplayError::Invalid(format!(
                        "no unfinished replay to resume{}",
                        queue.map(|q| format!(" for \"{q}\"")).unwrap_or_default()
                    ))
                })?
        } else {
            let path = PathBuf::from(which);
            let entries = journal::load(&path)?;
            let begin = entries
                .first()
                .cloned()
                .ok_or_else(|| ReplayError::Invalid(format!("{which} is an empty journal")))?;
            (path, begin)
        };
        let (source, opts) = options_from(&begin).ok_or_else(|| {
            ReplayError::Invalid(format!(
                "{} does not start like a replay journal",
                path.display()
            ))
        })?;
        if let Entry::Begin { target: was, .. } = &begin
            && was != target
        {
            return Err(ReplayError::Invalid(format!(
                "{} was a replay on {was}, not on {target}: connect to that broker to resume it",
                path.display()
            )));
        }
        Ok(Self {
            source,
            plan: opts.plan()?,
            opts,
            resuming: Some(path),
        })
    }
}

/// The journal a replay runs with, and what an interrupted run left: a new replay's
/// journal (refused while an earlier replay of its queue on `target` is unfinished) holds
/// its begin entry, synced; a resumed one's is reopened and read.
pub fn start(target: &str, replay: &Prepared) -> Result<(Journal, Resume), ReplayError> {
    if let Some(path) = &replay.resuming {
        let entries = journal::load(path)?;
        return Ok((Journal::open(path)?, Resume::from_entries(&entries)));
    }
    check_no_unfinished_replay(target, &replay.source)?;
    let id = unique_id();
    let mut j = Journal::create(&id)?;
    j.append(&begin_entry(&id, target, &replay.source, &replay.opts))?;
    j.sync()?;
    Ok((j, Resume::default()))
}

/// Run a started replay and write its audit line (for `profile`, if one was used).
pub async fn run(
    backend: &dyn Backend,
    replay: &Prepared,
    journal: &mut Journal,
    resume: Resume,
    profile: Option<&str>,
    progress: OnProgress<'_>,
) -> Audited<Result<Report, ReplayError>> {
    let source = &replay.source;
    let result = super::replay(
        backend,
        source,
        &replay.plan,
        Some(&mut *journal),
        resume,
        progress,
    )
    .await;
    let journal_shown = journal.path().display().to_string();
    let target = backend.info().target;
    let audit = match &result {
        Err(e) => audit::record(&target, profile, "replay", source, |a| {
            a.journal = Some(journal_shown.clone());
            a.result = format!("error: {e}");
        }),
        Ok(report) => audit::record(&target, profile, "replay", source, |a| {
            a.count = report.replayed;
            a.journal = Some(journal_shown.clone());
            a.result = audit_result(report);
        }),
    };
    let outcome = result.map(|mut r| {
        r.replay = journal
            .path()
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        r
    });
    Audited { outcome, audit }
}

/// How a replay ended, for the audit log.
fn audit_result(report: &Report) -> String {
    if report.ok() {
        return "ok".into();
    }
    format!(
        "{} failed{}",
        report.failed.len(),
        report
            .stopped
            .as_ref()
            .or(report.advance_failed.as_ref())
            .map(|s| format!("; stopped: {s}"))
            .unwrap_or_default()
    )
}

/// `replay --abandon`: the journal at `which`, or (when `which` is empty) the newest
/// unfinished one, of `queue` if given, is set aside so that a new replay of its queue is
/// allowed. Returns the queue and where the journal is kept now.
pub fn abandon(
    target: &str,
    profile: Option<&str>,
    which: &str,
    queue: Option<&str>,
) -> Result<Audited<(String, PathBuf)>, ReplayError> {
    let path = if which.is_empty() {
        journal::unfinished()?
            .into_iter()
            .find(|(_, b)| match (b, queue) {
                (Entry::Begin { source, .. }, Some(q)) => source == q,
                _ => true,
            })
            .map(|(p, _)| p)
            .ok_or_else(|| ReplayError::Invalid("no unfinished replay to abandon".into()))?
    } else {
        PathBuf::from(which)
    };
    let entries = journal::load(&path)?;
    if entries.iter().any(|e| matches!(e, Entry::End { .. })) {
        return Err(invalid(&path, "finished: there is nothing to abandon"));
    }
    let source = match entries.first() {
        Some(Entry::Begin { source, .. }) => source.clone(),
        _ => return Err(invalid(&path, "does not start like a replay journal")),
    };
    let kept = journal::abandon(&path)?;
    let audit = audit::record(target, profile, "replay-abandon", &source, |a| {
        a.journal = Some(kept.display().to_string());
        a.result = "abandoned".into();
    });
    Ok(Audited {
        outcome: (source, kept),
        audit,
    })
}

fn invalid(path: &Path, what: &str) -> ReplayError {
    ReplayError::Invalid(format!("{} {what}", path.display()))
}

/// Replay options from a journal's begin entry.
pub fn options_from(begin: &Entry) -> Option<(String, ReplayOptions)> {
    match begin {
        Entry::Begin {
            source, options, ..
        } => Some((
            source.clone(),
            serde_json::from_value(options.clone()).ok()?,
        )),
        _ => None,
    }
}

/// The journal's first line for a new replay.
pub fn begin_entry(id: &str, target: &str, source: &str, opts: &ReplayOptions) -> Entry {
    Entry::Begin {
        id: id.to_string(),
        time: crate::model::time::rfc3339(&chrono::Utc::now()),
        target: target.to_string(),
        source: source.to_string(),
        options: serde_json::to_value(opts).unwrap_or(Value::Null),
    }
}
